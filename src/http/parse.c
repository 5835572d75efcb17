/* HTTP pieces shared by the server, the client and the runtimes: see parse.h. */
#include "http/parse.h"

#include "base/error.h"
#include "base/str.h"

#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <uv.h>

/* ---- addresses ---- */

int fl_http_addr_parse(const char *addr, unsigned flags, struct fl_http_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (addr == NULL)
        return FL_EINVAL;
    if (fl_str_has_prefix(addr, "unix:")) {
        size_t n = strlen(addr + 5);
        if (n == 0 || n >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return FL_EINVAL;
        out->is_unix = true;
        out->path = addr + 5;
        return 0;
    }
    char host[256];
    const char *colon = strrchr(addr, ':');
    int64_t port;
    int64_t min_port = (flags & FL_HTTP_ADDR_PORT_ZERO) ? 0 : 1;
    if (colon == NULL || fl_parse_i64(colon + 1, min_port, 65535, &port) < 0)
        return FL_EINVAL;
    size_t n = (size_t)(colon - addr);
    if (n == 0 || n >= sizeof(host))
        return FL_EINVAL;
    if (addr[0] == '[') {
        if (n < 3 || addr[n - 1] != ']')
            return FL_EINVAL;
        memcpy(host, addr + 1, n - 2);
        host[n - 2] = '\0';
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&out->sa) == 0 ? 0 : FL_EINVAL;
    }
    memcpy(host, addr, n);
    host[n] = '\0';
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&out->sa) == 0 ? 0 : FL_EINVAL;
}

/* ---- a header block being parsed ---- */

void fl_http_fields_init(struct fl_http_fields *f)
{
    memset(f, 0, sizeof(*f));
}

void fl_http_fields_reset(struct fl_http_fields *f)
{
    f->n = 0;
    f->in_value = false;
}

void fl_http_fields_release(struct fl_http_fields *f)
{
    free(f->index);
    fl_http_fields_init(f);
}

int fl_http_fields_add_name(struct fl_http_fields *f, struct fl_buf *store, const char *at,
                            size_t len, size_t max)
{
    if (f->n == 0 || f->in_value) {
        if (f->n >= max)
            return FL_ERANGE;
        if (f->n == f->cap) {
            size_t cap = f->cap ? f->cap * 2 : 16;
            struct fl_http_field *index = realloc(f->index, cap * sizeof(*index));
            if (index == NULL)
                return FL_ENOMEM;
            f->index = index;
            f->cap = cap;
        }
        /* close the previous value (or what the store held: the target) */
        if (store->len > 0) {
            int rc = fl_buf_appendc(store, '\0');
            if (rc < 0)
                return rc;
        }
        f->index[f->n] = (struct fl_http_field){.name_off = store->len};
        f->n++;
        f->in_value = false;
    }
    f->index[f->n - 1].name_len += len;
    return fl_buf_append(store, at, len);
}

int fl_http_fields_add_value(struct fl_http_fields *f, struct fl_buf *store, const char *at,
                             size_t len)
{
    if (f->n == 0)
        return FL_EINVAL;
    struct fl_http_field *h = &f->index[f->n - 1];
    if (!f->in_value) {
        int rc = fl_buf_appendc(store, '\0');
        if (rc < 0)
            return rc;
        h->value_off = store->len;
        f->in_value = true;
    }
    h->value_len += len;
    return fl_buf_append(store, at, len);
}

void fl_http_fields_expose(const struct fl_http_fields *f, const char *base,
                           struct fl_http_header *out)
{
    for (size_t i = 0; i < f->n; i++) {
        const struct fl_http_field *h = &f->index[i];
        out[i].name = base + h->name_off;
        out[i].name_len = h->name_len;
        out[i].value = h->value_off ? base + h->value_off : "";
        out[i].value_len = h->value_len;
    }
}

/* ---- header names and lines ---- */

bool fl_http_header_settable(const char *name, size_t name_len, const char *value, size_t value_len)
{
    return fl_str_is_token(name, name_len) && !fl_str_has_ctl(value, value_len) &&
           !fl_str_ieq(name, name_len, "content-length") &&
           !fl_str_ieq(name, name_len, "transfer-encoding");
}

bool fl_http_is_hop_by_hop(const char *name, size_t len)
{
    static const char *const names[] = {
        "connection", "keep-alive", "transfer-encoding", "content-length", "te",
        "trailer",    "upgrade",    "proxy-connection",  "expect"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (fl_str_ieq(name, len, names[i]))
            return true;
    return false;
}

int fl_http_append_content_length(struct fl_buf *out, uint64_t n)
{
    char digits[FL_U64_CHARS];
    size_t len = fl_fmt_u64(digits, n);
    int rc = fl_buf_append(out, "Content-Length: ", 16);
    rc = rc ? rc : fl_buf_append(out, digits, len);
    return rc ? rc : fl_buf_append(out, "\r\n", 2);
}
