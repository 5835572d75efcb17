/*
 * The router: flintd's public HTTP entry. It follows the store's routes
 * (store/follow.h) into a route table (router/routes.h) and sends each
 * request to the function its route names, through the executor:
 *
 *   client -> router listener -> route match -> fl_executor_invoke()
 *          -> instance over its Unix socket -> response passed back
 *
 * {param} segments reach the function as X-Flint-Param-<name> headers.
 * No route: 404; a route for other methods only: 405 with Allow; a route
 * to a workflow: 501 until workflows exist. A client that goes away
 * cancels its invocation.
 */
#ifndef FLINT_ROUTER_ROUTER_H
#define FLINT_ROUTER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "base/metrics.h"
#include "exec/executor.h"
#include "http/server.h"
#include "store/follow.h"
#include "store/store.h"

struct fl_router;

/* A router following store's routes, invoking through ex (both borrowed;
 * metrics may be NULL). 0 or a negative error. */
int fl_router_new(struct fl_store *store, struct fl_executor *ex, struct fl_metrics *metrics,
                  struct fl_router **out);
void fl_router_free(struct fl_router *r);

/* The router listener's handler; data is the struct fl_router. */
void fl_router_handle(struct fl_http_request *req, void *data);

/* The follower of routes (to know whether a route change is applied). */
struct fl_follower *fl_router_follower(struct fl_router *r);

/* Whether the routes in the store at start have been loaded. */
bool fl_router_synced(const struct fl_router *r);

/* Routes known now (for status). */
size_t fl_router_routes(const struct fl_router *r);

/*
 * Invoke function with req (its method, the given target, headers and
 * body), answer req with the result and finish it. extra headers (copied)
 * are added as trusted X-Flint-* headers. Headers of req named in drop (a
 * NULL-terminated list of lower-case names, or NULL) are not passed on: the
 * API's invoke drops the caller's credentials, which are the operator's,
 * never the function's. Used by the router and by the API's POST
 * /v1/functions/{name}/invoke. metrics may be NULL.
 */
void fl_router_forward(struct fl_executor *ex, struct fl_metrics *metrics,
                       struct fl_http_request *req, const char *function, const char *target,
                       const struct fl_http_header *extra, size_t nextra, const char *const *drop,
                       const char *trigger);

#endif
