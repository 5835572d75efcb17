/* The router (see router.h). */
#include "router/router.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/str.h"
#include "router/routes.h"
#include "store/follow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fl_router {
    struct fl_store *store;
    struct fl_executor *ex;
    struct fl_metrics *metrics;
    struct fl_route_table *table;
    struct fl_follower *follower;
    bool synced;
};

/* One forwarded request: the invocation and the X-Flint-Param-* headers it
 * carries (they must live as long as the invocation). */
struct forward {
    struct fl_http_request *req;
    struct fl_invocation *inv;
    struct fl_metrics *metrics;
    uint64_t start_ns;
    char function[FL_NAME_MAX + 1];
    size_t nextra;
    struct fl_http_header extra[FL_ROUTE_MAX_PARAMS + 1]; /* and X-Forwarded-For */
    const char *target;
    struct fl_http_header *headers; /* req's, but those dropped (into req's memory) */
    size_t nheaders;
    _Alignas(struct fl_http_header) char storage[]; /* the headers, the target, and the names and
                                                       values of extra */
};

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

static void observe(struct forward *f, int status)
{
    if (f->metrics == NULL)
        return;
    char code[FL_U64_CHARS];
    fl_fmt_u64(code, (uint64_t)(status > 0 ? status : 0));
    static const char *const labels[] = {"function", "code"};
    struct fl_metric *calls =
        fl_metrics_counter(f->metrics, "flint_invocations_total",
                           "Synchronous invocations by function and HTTP status.", 2, labels);
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    struct fl_metric *seconds = fl_metrics_histogram(
        f->metrics, "flint_invocation_seconds", "Time from request to response, by function.", 1,
        labels, sizeof(bounds) / sizeof(bounds[0]), bounds);
    fl_metric_add(calls, (const char *[]){f->function, code}, 1);
    fl_metric_observe(seconds, (const char *[]){f->function},
                      (double)(fl_clock_mono_ns() - f->start_ns) / 1e9);
}

static void on_result(const struct fl_invoke_result *res, void *data)
{
    struct forward *f = data;
    observe(f, res->status);
    fl_http_respond(f->req, res->status, res->headers, res->nheaders, res->body, res->body_len);
    free(f);
}

static void on_abort(struct fl_http_request *req, void *data)
{
    struct forward *f = data;
    fl_executor_cancel(f->inv);
    observe(f, 499);
    fl_http_respond(req, 499, NULL, 0, NULL, 0); /* nobody reads it; frees req */
    free(f);
}

void fl_router_forward(struct fl_executor *ex, struct fl_metrics *metrics,
                       struct fl_http_request *req, const char *function, const char *target,
                       const struct fl_http_header *extra, size_t nextra, const char *const *drop,
                       const char *trigger)
{
    size_t bytes = req->nheaders * sizeof(struct fl_http_header) + strlen(target) + 1;
    if (nextra > FL_ROUTE_MAX_PARAMS)
        nextra = FL_ROUTE_MAX_PARAMS;
    for (size_t i = 0; i < nextra; i++)
        bytes += extra[i].name_len + extra[i].value_len + 2;
    /* X-Forwarded-For: the proxies before us, then the client, as a proxy
     * adds it (the function sees who called, as behind any gateway) */
    size_t addr_len = req->remote != NULL ? client_address(req->remote) : 0;
    size_t before_len = 0;
    const char *before =
        addr_len > 0 ? fl_http_request_header(req, "x-forwarded-for", &before_len) : NULL;
    if (before_len > 1024)
        before = NULL, before_len = 0; /* not ours to carry */
    if (addr_len > 0)
        bytes += before_len + 2 + addr_len + 1;
    struct forward *f = malloc(sizeof(*f) + bytes);
    if (f == NULL) {
        fl_http_respond_error(req, 503, "out_of_memory", "flintd is out of memory");
        return;
    }
    f->req = req;
    f->metrics = metrics;
    f->start_ns = fl_clock_mono_ns();
    fl_strlcpy(f->function, function, sizeof(f->function));
    f->nextra = nextra;
    f->headers = (struct fl_http_header *)(void *)f->storage;
    f->nheaders = 0;
    for (size_t i = 0; i < req->nheaders; i++)
        if (!dropped(&req->headers[i], drop))
            f->headers[f->nheaders++] = req->headers[i];
    char *p = f->storage + req->nheaders * sizeof(struct fl_http_header);
    memcpy(p, target, strlen(target) + 1);
    f->target = p;
    p += strlen(target) + 1;
    for (size_t i = 0; i < nextra; i++) {
        memcpy(p, extra[i].name, extra[i].name_len);
        p[extra[i].name_len] = '\0';
        f->extra[i].name = p;
        f->extra[i].name_len = extra[i].name_len;
        p += extra[i].name_len + 1;
        memcpy(p, extra[i].value, extra[i].value_len);
        p[extra[i].value_len] = '\0';
        f->extra[i].value = p;
        f->extra[i].value_len = extra[i].value_len;
        p += extra[i].value_len + 1;
    }
    if (addr_len > 0) {
        char *v = p;
        if (before != NULL && before_len > 0) {
            memcpy(p, before, before_len);
            memcpy(p + before_len, ", ", 2);
            p += before_len + 2;
        }
        memcpy(p, req->remote, addr_len);
        p += addr_len;
        *p++ = '\0';
        f->extra[f->nextra++] =
            (struct fl_http_header){"X-Forwarded-For", 15, v, (size_t)(p - 1 - v)};
    }
    struct fl_invoke_request ireq = {.function = f->function,
                                     .method = req->method,
                                     .target = f->target,
                                     .headers = f->headers,
                                     .nheaders = f->nheaders,
                                     .extra = f->extra,
                                     .nextra = f->nextra,
                                     .body = req->body,
                                     .body_len = req->body_len,
                                     .trigger = trigger};
    int rc = fl_executor_invoke(ex, &ireq, on_result, f, &f->inv);
    if (rc < 0) {
        free(f);
        fl_http_respond_error(req, 503, "out_of_memory", "flintd is out of memory");
        return;
    }
    fl_http_request_on_abort(req, on_abort, f);
}

/* A request the router answered itself, no function called: counted by
 * status, so that an operator sees 404s and 405s pile up. */
static void count_unrouted(struct fl_router *r, const char *status)
{
    if (r->metrics == NULL)
        return;
    static const char *const labels[] = {"code"};
    struct fl_metric *m = fl_metrics_counter(
        r->metrics, "flint_router_unrouted_total",
        "Requests the router answered without a function, by HTTP status.", 1, labels);
    fl_metric_add(m, (const char *[]){status}, 1);
}

void fl_router_handle(struct fl_http_request *req, void *data)
{
    struct fl_router *r = data;
    struct fl_route_match m;
    int rc = fl_route_table_match(r->table, req->method, req->path, req->path_len, &m);
    if (rc == FL_ENOENT) {
        count_unrouted(r, "404");
        fl_http_respond_error(req, 404, "no_route", "no route for %s %.200s", req->method,
                              req->path);
        return;
    }
    if (rc == FL_EACCES) {
        count_unrouted(r, "405");
        char allow[128];
        fl_route_methods_format(m.allowed, allow, sizeof(allow));
        struct fl_http_header h[2] = {{"Allow", 5, allow, strlen(allow)},
                                      {"Content-Type", 12, "application/json", 16}};
        char body[512];
        int n = snprintf(body, sizeof(body),
                         "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"%.32s is not "
                         "allowed here; allowed: %s\"}}",
                         req->method, allow);
        /* snprintf says what it would have written: never send past body */
        size_t len = n < 0 ? 0 : (size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1;
        fl_http_respond(req, 405, h, 2, body, len);
        return;
    }
    if (rc == FL_EINVAL) {
        count_unrouted(r, "400");
        fl_http_respond_error(req, 400, "bad_path_parameter",
                              "a path parameter decodes to a control character");
        return;
    }
    if (rc < 0) {
        count_unrouted(r, "414");
        fl_http_respond_error(req, 414, "path_too_long",
                              "the path has more segments or a longer parameter than a route "
                              "can take");
        return;
    }
    if (m.route->target_kind != FL_TARGET_FUNCTION) {
        count_unrouted(r, "501");
        fl_http_respond_error(req, 501, "not_implemented",
                              "route '%s' targets workflow '%s': "
                              "workflows are not served yet",
                              m.route->name, m.route->target_name);
        return;
    }
    struct fl_http_header extra[FL_ROUTE_MAX_PARAMS];
    char names[FL_ROUTE_MAX_PARAMS][96];
    for (size_t i = 0; i < m.nparams; i++) {
        size_t len = strlen(m.params[i].name);
        if (len > sizeof(names[i]) - 15)
            len = sizeof(names[i]) - 15;
        memcpy(names[i], "X-Flint-Param-", 14);
        memcpy(names[i] + 14, m.params[i].name, len);
        names[i][14 + len] = '\0';
        extra[i] = (struct fl_http_header){names[i], 14 + len, m.params[i].value,
                                           strlen(m.params[i].value)};
    }
    fl_router_forward(r->ex, r->metrics, req, m.route->target_name, req->target, extra, m.nparams,
                      NULL, "http");
}

/* ---- following the store ---- */

static void on_put(void *data, const char *name, uint64_t revision, json_t *value)
{
    struct fl_router *r = data;
    struct fl_buf err;
    fl_buf_init(&err, 512);
    if (fl_route_table_put(r->table, name, json_object_get(value, "spec"), &err) < 0)
        fl_log(FL_LOG_ERROR, "router", "route refused", "route=%s err=\"%s\"", name,
               err.data ? err.data : "");
    else
        fl_log(FL_LOG_INFO, "router", "route", "name=%s revision=%llu", name,
               (unsigned long long)revision);
    fl_buf_release(&err);
}

static void on_synced(void *data)
{
    struct fl_router *r = data;
    r->synced = true;
}

static void on_remove(void *data, const char *name, uint64_t revision)
{
    struct fl_router *r = data;
    fl_route_table_remove(r->table, name);
    fl_log(FL_LOG_INFO, "router", "route removed", "name=%s", name);
}

int fl_router_new(struct fl_store *store, struct fl_executor *ex, struct fl_metrics *metrics,
                  struct fl_router **out)
{
    struct fl_router *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return FL_ENOMEM;
    r->store = store;
    r->ex = ex;
    r->metrics = metrics;
    r->table = fl_route_table_new();
    if (r->table == NULL) {
        free(r);
        return FL_ENOMEM;
    }
    static const struct fl_follow_callbacks cbs = {
        .put = on_put, .remove = on_remove, .synced = on_synced};
    int rc = fl_store_follow(store, "route", &cbs, r, &r->follower);
    if (rc < 0) {
        fl_route_table_free(r->table);
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void fl_router_free(struct fl_router *r)
{
    if (r == NULL)
        return;
    fl_store_unfollow(r->follower);
    fl_route_table_free(r->table);
    free(r);
}

size_t fl_router_routes(const struct fl_router *r)
{
    return fl_route_table_size(r->table);
}

struct fl_follower *fl_router_follower(struct fl_router *r)
{
    return r->follower;
}

bool fl_router_synced(const struct fl_router *r)
{
    return r->synced;
}
