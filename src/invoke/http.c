/*
 * The HTTP entries' half of the invoker (fl_invoke_http() in invoke.h): an
 * HTTP request mapped to a typed one, and the outcome written back. The
 * router and the API's invoke are this and a few lines each.
 *
 * Nothing is allocated here: the headers passed on and the added ones are
 * arrays on the stack (struct fl_invoke_http_mapped, which the async entry
 * uses too), which fl_invoke_start() copies into the call; the
 * request itself is the callback's data (no state of our own), and stays
 * valid until it is answered.
 */
#include "invoke/invoke.h"

#include "base/error.h"
#include "base/str.h"

#include <string.h>

/* Whether header h is named in drop (NULL-terminated, lower case). */
static bool dropped(const struct fl_http_header *h, const char *const *drop)
{
    for (; drop != NULL && *drop != NULL; drop++)
        if (fl_str_ieq(h->name, h->name_len, *drop))
            return true;
    return false;
}

/* The client's address without its port ("10.0.0.7:5123" -> "10.0.0.7",
 * "::1:5123" -> "::1"); 0 for a Unix socket peer. */
static size_t client_address(const char *remote)
{
    const char *colon = strrchr(remote, ':');
    return colon != NULL && colon > remote ? (size_t)(colon - remote) : 0;
}

/*
 * X-Forwarded-For: the proxies before us, then the client, as a proxy adds
 * it (the function sees who called, as behind any gateway). Written into
 * out (FL_INVOKE_XFF_MAX bytes); its length, or 0 when there is no client address.
 */
static size_t forwarded_for(const struct fl_http_request *req, char *out)
{
    size_t addr_len = req->remote != NULL ? client_address(req->remote) : 0;
    if (addr_len == 0 || addr_len > FL_INVOKE_XFF_MAX - FL_INVOKE_XFF_BEFORE_MAX - 2)
        return 0;
    size_t before_len = 0, n = 0;
    const char *before = fl_http_request_header(req, "x-forwarded-for", &before_len);
    if (before != NULL && before_len > 0 && before_len <= FL_INVOKE_XFF_BEFORE_MAX) {
        memcpy(out, before, before_len);
        memcpy(out + before_len, ", ", 2);
        n = before_len + 2;
    }
    memcpy(out + n, req->remote, addr_len);
    n += addr_len;
    out[n] = '\0';
    return n;
}

static void on_outcome(const struct fl_invoke_outcome *o, void *data)
{
    struct fl_http_request *req = data;
    /* a canceled call's answer goes nowhere: it only frees req */
    fl_http_respond(req, o->status, o->headers, o->nheaders, o->body, o->body_len);
}

static void on_abort(struct fl_http_request *req, void *data)
{
    fl_invoke_cancel(data); /* answers req 499 */
}

void fl_invoke_http_map(const struct fl_http_request *req, const struct fl_invoke_http *how,
                        struct fl_invoke_http_mapped *m)
{
    size_t nheaders = 0;
    for (size_t i = 0; i < req->nheaders && nheaders < FL_INVOKE_MAX_HEADERS; i++)
        if (!dropped(&req->headers[i], how->drop) && !dropped(&req->headers[i], how->drop_more))
            m->headers[nheaders++] = req->headers[i];
    size_t nadded = how->nadded < FL_INVOKE_MAX_ADDED ? how->nadded : FL_INVOKE_MAX_ADDED;
    if (nadded > 0)
        memcpy(m->added, how->added, nadded * sizeof(m->added[0]));
    size_t xff_len = forwarded_for(req, m->xff);
    if (xff_len > 0 && nadded < FL_INVOKE_MAX_ADDED)
        m->added[nadded++] = (struct fl_http_header){"X-Forwarded-For", 15, m->xff, xff_len};
    m->req =
        (struct fl_invoke_request){.target = how->target,
                                   .method = req->method,
                                   .path = how->path ? how->path : req->path,
                                   /* "/x?" keeps its '?': the target sees the request as sent */
                                   .query = how->path                         ? how->query
                                            : req->target_len > req->path_len ? req->query
                                                                              : NULL,
                                   .headers = m->headers,
                                   .nheaders = nheaders,
                                   .added = m->added,
                                   .nadded = nadded,
                                   .body = req->body,
                                   .body_len = req->body_len,
                                   .trigger = how->trigger};
}

void fl_invoke_http(struct fl_invoker *inv, struct fl_http_request *req,
                    const struct fl_invoke_http *how)
{
    struct fl_invoke_http_mapped m;
    fl_invoke_http_map(req, how, &m);
    struct fl_invoke *call;
    int rc = fl_invoke_start(inv, &m.req, on_outcome, req, &call);
    if (rc == FL_ETOOBIG) {
        fl_http_respond_error(req, 500, "too_many_headers",
                              "the call of '%s' carries more added headers (parameters) than a "
                              "function takes",
                              how->target.name);
        return;
    }
    if (rc == FL_ECANCELED) {
        fl_http_respond_error(req, 503, "stopping", "flintd is stopping");
        return;
    }
    if (rc < 0) {
        fl_http_respond_error(req, 503, "out_of_memory", "flintd is out of memory");
        return;
    }
    fl_http_request_on_abort(req, on_abort, call);
}
