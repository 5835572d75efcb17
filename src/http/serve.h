/*
 * Serving one handler until told to stop: the main loop of runtimes and
 * small servers (benchmarks), which would otherwise each repeat it.
 */
#ifndef FLINT_HTTP_SERVE_H
#define FLINT_HTTP_SERVE_H

#include <stdbool.h>
#include <stddef.h>

#include "http/server.h"

/* The listen address named by a runtime's FLINT_LISTEN value: "fd:N" (a
 * listening socket flintd bound and handed over) and "unix:PATH" as they
 * are, "tcp:HOST:PORT" as HOST:PORT. 0, or FL_EINVAL for anything
 * else (including NULL). */
int fl_http_listen_address(const char *flint_listen, char *out, size_t size);

/*
 * Serve handler (with data) on addr on the default loop, with cfg (NULL:
 * defaults), ignoring SIGPIPE, until SIGTERM or SIGINT; on_stop (may be
 * NULL) runs first then. Returns 0 after a stop, or 1 after printing
 * "<program>: <why>" to stderr if the listener cannot start.
 */
int fl_http_serve(const char *program, const char *addr, const struct fl_http_server_config *cfg,
                  fl_http_handler handler, void *data, void (*on_stop)(void));

/* A runtime's answer to GET /healthz: 200 {"status":"ok"}; with pipelining,
 * X-Flint-Pipelining: 1 too, which tells the executor that this server reads
 * pipelined requests on a connection and answers them in order, so that
 * calls may share one (docs/runtime-contract.md). Only for a runtime whose
 * calls run one at a time anyway: behind a slow call on a shared
 * connection, quick ones wait. */
void fl_http_respond_healthz(struct fl_http_request *req, bool pipelining);

#endif
