/* The router (see router.h). */
#include "router/router.h"

#include "async/async.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/str.h"
#include "router/routes.h"
#include "topics/topics.h"
#include "wf/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fl_router {
    struct fl_invoker *invoker;
    struct fl_metrics *metrics;
    struct fl_route_table *table;
    struct fl_async *async;         /* NULL: every call is synchronous */
    struct fl_store *store;         /* routes to topics publish here; NULL: not served */
    struct fl_wf_engine *workflows; /* routes to workflows; NULL: 501 */
};

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

/* A route to a topic: the request becomes a message, with the method, the
 * target as requested, the route and its parameters as headers of Flint's. */
static void publish(struct fl_router *r, struct fl_http_request *req, const struct fl_route *route,
                    const struct fl_http_header *params, size_t nparams)
{
    if (r->store == NULL) {
        count_unrouted(r, "503");
        fl_http_respond_error(req, 503, "unavailable", "routes to topics are not served");
        return;
    }
    struct fl_http_header added[FL_ROUTE_MAX_PARAMS + 3] = {
        {"X-Flint-Method", 14, req->method, strlen(req->method)},
        {"X-Flint-Path", 12, req->target, req->target_len},
        {"X-Flint-Route", 13, route->name, strlen(route->name)},
    };
    memcpy(&added[3], params, nparams * sizeof(params[0]));
    const struct fl_topic_http how = {route->target_name, added, nparams + 3};
    fl_topic_publish_http(r->store, req, &how);
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
    if (m.route->target_kind == FL_TARGET_WORKFLOW && r->workflows == NULL) {
        count_unrouted(r, "501");
        fl_http_respond_error(req, 501, "not_implemented",
                              "route '%s' targets workflow '%s': "
                              "workflows are not served yet",
                              m.route->name, m.route->target_name);
        return;
    }
    struct fl_http_header params[FL_ROUTE_MAX_PARAMS];
    char names[FL_ROUTE_MAX_PARAMS][96];
    for (size_t i = 0; i < m.nparams; i++) {
        size_t len = strlen(m.params[i].name);
        if (len > sizeof(names[i]) - 15)
            len = sizeof(names[i]) - 15;
        memcpy(names[i], "X-Flint-Param-", 14);
        memcpy(names[i] + 14, m.params[i].name, len);
        names[i][14 + len] = '\0';
        params[i] = (struct fl_http_header){names[i], 14 + len, m.params[i].value,
                                            strlen(m.params[i].value)};
    }
    if (m.route->target_kind == FL_TARGET_TOPIC) {
        publish(r, req, m.route, params, m.nparams);
        return;
    }
    bool workflow = m.route->target_kind == FL_TARGET_WORKFLOW;
    const struct fl_invoke_http how = {
        .target = {workflow ? FL_INVOKE_WORKFLOW : FL_INVOKE_FUNCTION, m.route->target_name},
        .added = params,
        .nadded = m.nparams,
        .trigger = FL_TRIGGER_HTTP};
    const struct fl_route *route = m.route;
    if (workflow && (route->async || (route->allow_async && fl_async_preferred(req)))) {
        fl_wf_engine_http_async(r->workflows, req, &how);
        return;
    }
    if (r->async != NULL && (route->async || (route->allow_async && fl_async_preferred(req)))) {
        char trigger[8 + FL_NAME_MAX];
        snprintf(trigger, sizeof(trigger), "route/%s", route->name);
        const struct fl_async_http async = {.call = how,
                                            .trigger_name = trigger,
                                            .retry = route->has_retry ? &route->retry : NULL,
                                            .callback_url = route->callback};
        fl_async_http(r->async, req, &async);
        return;
    }
    fl_invoke_http(r->invoker, req, &how);
}

void fl_router_use_async(struct fl_router *r, struct fl_async *async)
{
    r->async = async;
}

void fl_router_use_workflows(struct fl_router *r, struct fl_wf_engine *engine)
{
    r->workflows = engine;
}

void fl_router_use_topics(struct fl_router *r, struct fl_store *store)
{
    r->store = store;
}

/* ---- the routes, as the store has them ---- */

static int route_put(void *part, const char *name, uint64_t revision, json_t *spec,
                     struct fl_buf *err)
{
    struct fl_router *r = part;
    int rc = fl_route_table_put(r->table, name, spec, err);
    if (rc == 0)
        fl_log(FL_LOG_INFO, "router", "route", "name=%s revision=%llu", name,
               (unsigned long long)revision);
    return rc;
}

static void route_remove(void *part, const char *name)
{
    struct fl_router *r = part;
    fl_route_table_remove(r->table, name);
    fl_log(FL_LOG_INFO, "router", "route removed", "name=%s", name);
}

const struct fl_kind_hooks fl_router_route_hooks = {.put = route_put, .remove = route_remove};

int fl_router_new(struct fl_invoker *inv, struct fl_metrics *metrics, struct fl_router **out)
{
    struct fl_router *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return FL_ENOMEM;
    r->invoker = inv;
    r->metrics = metrics;
    r->table = fl_route_table_new();
    if (r->table == NULL) {
        free(r);
        return FL_ENOMEM;
    }
    *out = r;
    return 0;
}

void fl_router_free(struct fl_router *r)
{
    if (r == NULL)
        return;
    fl_route_table_free(r->table);
    free(r);
}

size_t fl_router_routes(const struct fl_router *r)
{
    return fl_route_table_size(r->table);
}
