/*
 * The router: flintd's public HTTP entry. It holds the store's routes in a
 * route table (router/routes.h), put and removed through its kind hooks
 * (flintd's follower of routes calls them, see kinds/follow.h), and sends
 * each request to the function its route names, through the invoker:
 *
 *   client -> router listener -> route match -> fl_invoke_http()
 *          -> invoker -> executor -> instance over its Unix socket
 *          -> outcome written back
 *
 * {param} segments reach the function as X-Flint-Param-<name> headers.
 * No route: 404; a route for other methods only: 405 with Allow; a route
 * to a workflow: 501 until the workflow engine serves workflows. A client
 * that goes away cancels its invocation. A route to a topic publishes the
 * request as a message instead (fl_router_use_topics()).
 */
#ifndef FLINT_ROUTER_ROUTER_H
#define FLINT_ROUTER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "base/metrics.h"
#include "http/server.h"
#include "invoke/invoke.h"
#include "kinds/kinds.h"

struct fl_router;

/* A router with no routes, calling through inv (borrowed; metrics, for
 * requests no function answers, may be NULL). 0 or FL_ENOMEM. */
int fl_router_new(struct fl_invoker *inv, struct fl_metrics *metrics, struct fl_router **out);
void fl_router_free(struct fl_router *r);

/* Make the calls of async routes (and of routes that allow it, when the
 * caller asks with Prefer: respond-async) async invocations through async
 * (borrowed). Without it every call is synchronous. */
struct fl_async;
void fl_router_use_async(struct fl_router *r, struct fl_async *async);

/* Publish the calls of routes to topics to store's topics (borrowed;
 * topics/topics.h says how a request becomes a message): 202 once durable,
 * 404 topic_not_found for a topic that does not exist. Without it such
 * routes answer 503. */
struct fl_store;
void fl_router_use_topics(struct fl_router *r, struct fl_store *store);

/* Serve routes to workflows through engine (borrowed): a call through the
 * invoker (its output is the answer), or with the route's async (or a
 * caller's Prefer: respond-async where the route allows it) 202 once the
 * invocation is durable. Without it such routes answer 501. */
struct fl_wf_engine;
void fl_router_use_workflows(struct fl_router *r, struct fl_wf_engine *engine);

/* The router listener's handler; data is the struct fl_router. */
void fl_router_handle(struct fl_http_request *req, void *data);

/* The router as the part that runs routes (kinds/kinds.def): put checks
 * the spec and replaces the route of that name in the table (a refused
 * spec leaves the table as it was), remove takes it out. part is the
 * struct fl_router. */
extern const struct fl_kind_hooks fl_router_route_hooks;

/* Routes known now (for status). */
size_t fl_router_routes(const struct fl_router *r);

#endif
