/* HTTP pieces shared by the server, the client and the runtimes: see parse.h. */
#include "http/parse.h"

#include "base/error.h"
#include "base/str.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* ---- URLs ---- */

static int url_fail(struct fl_buf *err, const char *why)
{
    if (err != NULL) {
        fl_buf_reset(err);
        fl_buf_appends(err, why);
    }
    return FL_EINVAL;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Whether the n bytes at s are a DNS name: dot-separated labels of 1 to 63
 * letters, digits and '-', neither starting nor ending with '-'. */
static bool is_dns_name(const char *s, size_t n)
{
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
                return false;
            label = 0;
        } else if (isalnum((unsigned char)s[i]) || s[i] == '-') {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

/* Parse the authority (host and port: n bytes at s) into out. */
static int url_authority(const char *s, size_t n, struct fl_http_url *out, struct fl_buf *err)
{
    const char *host = s, *port = NULL;
    size_t host_len;
    if (memchr(s, '@', n) != NULL)
        return url_fail(err, "must not hold a user name or password ('@')");
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL)
            return url_fail(err, "has an IPv6 address without its closing ']'");
        host = s + 1;
        host_len = (size_t)(close - host);
        if (close + 1 < s + n) {
            if (close[1] != ':')
                return url_fail(err, "has something other than ':PORT' after the IPv6 address");
            port = close + 2;
        }
        out->host_is_ipv6 = true;
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon != NULL && memchr(colon + 1, ':', (size_t)(s + n - colon - 1)) != NULL)
            return url_fail(err, "has more than one ':' (an IPv6 address goes in [brackets])");
        host_len = colon ? (size_t)(colon - s) : n;
        port = colon ? colon + 1 : NULL;
    }
    if (host_len == 0)
        return url_fail(err, "has no host");
    if (host_len > FL_HTTP_URL_HOST_MAX)
        return url_fail(err, "has a host longer than 253 bytes");
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';

    out->port = 80;
    if (port != NULL) {
        size_t digits = (size_t)(s + n - port);
        int64_t v = 0;
        bool ok = digits >= 1 && digits <= 5;
        for (size_t i = 0; ok && i < digits; i++) {
            ok = port[i] >= '0' && port[i] <= '9';
            v = v * 10 + (port[i] - '0');
        }
        if (!ok || v < 1 || v > 65535)
            return url_fail(err, "has a port that is not a number from 1 to 65535");
        out->port = (uint16_t)v;
    }

    unsigned char ip[16];
    if (out->host_is_ipv6) {
        if (strchr(out->host, '%') != NULL || uv_inet_pton(AF_INET6, out->host, ip) != 0)
            return url_fail(err, "has a host in [brackets] that is not an IPv6 address");
    } else if (strspn(out->host, "0123456789.") == host_len) {
        if (uv_inet_pton(AF_INET, out->host, ip) != 0)
            return url_fail(err, "has a host that is not a valid IPv4 address");
    } else {
        if (!is_dns_name(out->host, host_len))
            return url_fail(err, "has a host that is neither a name (letters, digits, '-' and "
                                 "dots), an IPv4 address nor an [IPv6] address");
        for (size_t i = 0; i < host_len; i++)
            out->host[i] = (char)tolower((unsigned char)out->host[i]);
        out->host_is_name = true;
    }
    snprintf(out->address, sizeof(out->address), out->host_is_ipv6 ? "[%s]:%u" : "%s:%u", out->host,
             (unsigned)out->port);
    return 0;
}

int fl_http_url_parse(const char *url, struct fl_http_url *out, struct fl_buf *err)
{
    static const char scheme[] = "http://";
    memset(out, 0, sizeof(*out));
    if (url == NULL || *url == '\0')
        return url_fail(err, "is empty: give an http://HOST:PORT/path URL");
    size_t n = strlen(url);
    if (n > FL_HTTP_URL_MAX)
        return url_fail(err, "is longer than 2048 bytes");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= ' ' || c >= 0x7f)
            return url_fail(err, "must not hold spaces, control characters or bytes past ASCII "
                                 "(percent-encode them)");
        if (c == '#')
            return url_fail(err, "must not hold a fragment ('#')");
        if (c == '%' && (i + 2 >= n || !is_hex(url[i + 1]) || !is_hex(url[i + 2])))
            return url_fail(err, "has a '%' that is not followed by two hex digits");
    }
    if (n >= 8 && strncasecmp(url, "https://", 8) == 0)
        return url_fail(err, "only http:// URLs are supported, not https://");
    if (n < sizeof(scheme) - 1 || strncasecmp(url, scheme, sizeof(scheme) - 1) != 0)
        return url_fail(err, "must start with http://");
    const char *authority = url + sizeof(scheme) - 1;
    size_t alen = strcspn(authority, "/?");
    int rc = url_authority(authority, alen, out, err);
    if (rc < 0)
        return rc;
    const char *rest = authority + alen;
    snprintf(out->target, sizeof(out->target), "%s%s", *rest == '/' ? "" : "/", rest);
    return 0;
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

static int hex_value(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

bool fl_http_query_value(const char *query, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    for (const char *p = query; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= klen && strncmp(p, key, klen) == 0 && (len == klen || p[klen] == '=')) {
            const char *v = p + klen + (len > klen ? 1 : 0), *vend = p + len;
            size_t n = 0;
            while (v < vend && n + 1 < size) {
                int hi, lo;
                if (*v == '%' && vend - v >= 3 && (hi = hex_value(v[1])) >= 0 &&
                    (lo = hex_value(v[2])) >= 0) {
                    out[n++] = (char)(hi * 16 + lo);
                    v += 3;
                } else {
                    out[n++] = *v == '+' ? ' ' : *v;
                    v++;
                }
            }
            out[n] = '\0';
            return true;
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}
