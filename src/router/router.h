/*
 * The router: flintd's public HTTP entry. It follows the store's routes
 * (store/follow.h) into a route table (router/routes.h) and sends each
 * request to the function its route names, through the invoker:
 *
 *   client -> router listener -> route match -> fl_invoke_http()
 *          -> invoker -> executor -> instance over its Unix socket
 *          -> outcome written back
 *
 * {param} segments reach the function as X-Flint-Param-<name> headers.
 * No route: 404; a route for other methods only: 405 with Allow; a route
 * to a workflow: 501 until the workflow engine serves workflows. A client
 * that goes away cancels its invocation.
 */
#ifndef FLINT_ROUTER_ROUTER_H
#define FLINT_ROUTER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "base/metrics.h"
#include "http/server.h"
#include "invoke/invoke.h"
#include "store/follow.h"
#include "store/store.h"

struct fl_router;

/* A router following store's routes, calling through inv (both borrowed;
 * metrics, for requests no function answers, may be NULL). 0 or a
 * negative error. */
int fl_router_new(struct fl_store *store, struct fl_invoker *inv, struct fl_metrics *metrics,
                  struct fl_router **out);
void fl_router_free(struct fl_router *r);

/* The router listener's handler; data is the struct fl_router. */
void fl_router_handle(struct fl_http_request *req, void *data);

/* The follower of routes (to know whether a route change is applied). */
struct fl_follower *fl_router_follower(struct fl_router *r);

/* Call changed(data, name) after each route put or removal is applied
 * (changed NULL: nobody). */
void fl_router_on_change(struct fl_router *r, void (*changed)(void *data, const char *name),
                         void *data);

/* Whether the routes in the store at start have been loaded. */
bool fl_router_synced(const struct fl_router *r);

/* Routes known now (for status). */
size_t fl_router_routes(const struct fl_router *r);

#endif
