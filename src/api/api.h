/*
 * The control API: JSON over HTTP on flintd's API listener (docs/api.md).
 *
 *   GET  /healthz                       no token needed; 503 until the daemon is ready
 *   GET  /v1/status
 *   POST /v1/code                       the body is stored by its SHA-256
 *   GET|POST        /v1/{plural}         list, create
 *   GET|PUT|DELETE  /v1/{plural}/{name}  get, update (with the revision read), delete
 *   ANY  /v1/functions/{name}/invoke    call the function with this request
 *                                       (Prefer: respond-async: accepted, 202)
 *   GET  /v1/functions/{name}/logs      ?tail=N (default 100, 0: all) &follow=1
 *   /v1/invocations, /v1/deadletters    async invocations (invocations.c)
 *   GET  /metrics                       Prometheus text format
 *
 * for every kind of the registry (kinds/kinds.h: environments, functions,
 * routes). Every other request needs "Authorization: Bearer <token>"
 * (checked before its body is read, with fl_api_check_headers()). Specs
 * are checked with the kind's check (the parsers the executor and router
 * use), and references with the store (a function's environment and code,
 * a route's function), so nothing is stored that flintd would refuse.
 *
 * Spec and status apart: the store holds {"spec": ...} per resource, what
 * the user declared. A resource's status is asked of the daemon (the
 * status callback) each time it is read, never stored; a PUT's "status" is
 * ignored, and a PUT whose spec is the one stored makes no new revision.
 */
#ifndef FLINT_API_API_H
#define FLINT_API_API_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/metrics.h"
#include "async/async.h"
#include "exec/executor.h"
#include "exec/logs.h"
#include "http/server.h"
#include "invoke/invoke.h"
#include "store/store.h"
#include "wf/exprc.h"

struct fl_api;
struct fl_mq;
struct fl_wf_engine;

struct fl_api_config {
    const char *data_dir;         /* code goes to DATA/code/sha256/ */
    const char *token;            /* the bearer token */
    struct fl_store *store;       /* not owned */
    const char *version;          /* for /v1/status */
    const char *api_addr;         /* for /v1/status */
    const char *router_addr;      /* for /v1/status */
    size_t max_code_bytes;        /* largest code upload; the listener's body limit must allow it */
    const char *sandbox;          /* the sandbox mode, for /v1/status */
    struct fl_executor *executor; /* function status; may be NULL */
    struct fl_invoker *invoker;   /* invocations; may be NULL */
    struct fl_async *async;       /* async invocations and dead letters; may be NULL */
    struct fl_wf_engine *workflows; /* workflow invocations; may be NULL */
    struct fl_mq *mq;               /* dead letters a NATS trigger holds; may be NULL */
    struct fl_logbook *logs;        /* function logs; may be NULL */
    struct fl_metrics *metrics;     /* GET /metrics; may be NULL */
    /* the expression evaluators: a write of a kind with expressions (a
     * workflow) sends them there, compile only, before the check; may be
     * NULL: their syntax is not checked */
    struct fl_wf_exprc *exprc;
    /* Whether the daemon has applied kind/name at revision (0: its
     * deletion). Writes are answered once it has (asked again at each
     * fl_api_applied()), or after 2 s, so a client can call what it just
     * deployed. May be NULL. */
    bool (*applied)(void *data, const char *kind, const char *name, uint64_t revision);
    void *applied_data;
    /* Whether the daemon has loaded what the store held at start: until
     * then GET /healthz answers 503 "starting". May be NULL. */
    bool (*ready)(void *data);
    /* kind/name's status as the daemon sees it now (detail: for a GET of
     * that one resource): a new value the API owns, or NULL for {}. Called
     * with applied_data. May be NULL: every status is {}. */
    json_t *(*status)(void *data, const char *kind, const char *name, bool detail);
};

/* A new API (the config's strings are copied). 0 or FL_ENOMEM. */
int fl_api_new(uv_loop_t *loop, const struct fl_api_config *cfg, struct fl_api **out);
void fl_api_free(struct fl_api *api);

/* The daemon applied a change of kind/name (its follower's put or remove
 * callback ran): the writes waiting for it are answered now if applied()
 * says it holds their revision. */
void fl_api_applied(struct fl_api *api, const char *kind, const char *name);

/* End every log stream being followed (they never end by themselves), so
 * that a stopping flintd's drain waits only for requests that finish. */
void fl_api_end_streams(struct fl_api *api);

/* The API listener's handler; data is the struct fl_api. */
void fl_api_handle(struct fl_http_request *req, void *data);

/*
 * The API listener's headers hook (fl_http_headers_cb; data is the struct
 * fl_api): a request without the token (but GET /healthz) is refused 401
 * as soon as its headers are in, so an unauthenticated upload is never
 * read, let alone held. fl_api_handle() checks the token as well, for a
 * server without the hook.
 */
int fl_api_check_headers(const struct fl_http_request *req, void *data, const char **code,
                         const char **message);

#endif
