/*
 * The invoker: one typed way to call a function or a workflow, used by every
 * entry (the router and the API today; the async queue, MQ and cron triggers
 * and the workflow engine as they come).
 *
 *   entry (router, API, ...)        fl_invoke_start(request)  -> outcome callback
 *     -> invoker: copies what it must, makes the invocation id, counts, keeps
 *        the deadline
 *     -> the handler registered for the target's kind (functions: the
 *        executor, wired by fl_invoker_serve_functions(); workflows: the
 *        engine, once it exists)
 *
 * The invoker knows its targets only through handlers registered at start,
 * so a module above it (the workflow engine) can register itself and call
 * the invoker for its own tasks without the invoker depending on it. A kind
 * nobody registered answers every call FL_INVOKE_NOT_FOUND ("workflows are
 * not served yet").
 *
 * A request is typed (struct fl_invoke_request); so is its outcome (struct
 * fl_invoke_outcome): the target's response, or an error kind with a stable
 * code and a message. Every outcome also carries its HTTP form (status,
 * headers, body: the response itself, or the JSON error {"error": {"code",
 * "message", "invocation"}}), so an HTTP entry passes it on unchanged and
 * the others read the kind.
 *
 * Capacity: fl_invoker_capacity() says how many calls a target can run at
 * once and how many run and wait now, so that a consumer that takes work
 * from a queue (MQ, async) stops while a function is saturated, and
 * fl_invoker_watch_room() tells it once when the target has room again.
 *
 * fl_invoke_http() is the HTTP entry's half: an HTTP request mapped to a
 * typed one, the outcome written back; the router and the API are thin
 * adapters over it.
 *
 * Everything runs on the loop's thread.
 */
#ifndef FLINT_INVOKE_INVOKE_H
#define FLINT_INVOKE_INVOKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/id.h"
#include "base/metrics.h"
#include "http/server.h" /* struct fl_http_header, struct fl_http_request */

/* A target's name: the longest a resource name can be. */
#define FL_INVOKE_NAME_MAX 253

/*
 * The header budget of one call. A target gets at most
 * FL_INVOKE_MAX_HEADERS headers besides the invoker's own X-Flint-Function,
 * -Invocation-Id, -Attempt and -Trigger: the added (trusted) ones first, at
 * most FL_INVOKE_MAX_ADDED of them with FL_INVOKE_ADDED_BYTES of names and
 * values together (more: fl_invoke_start() fails with FL_ETOOBIG), then the
 * caller's in what is left (past it they are dropped). Nothing can
 * overflow: every count is checked before anything is copied.
 */
#define FL_INVOKE_MAX_HEADERS 124
#define FL_INVOKE_MAX_ADDED   64
#define FL_INVOKE_ADDED_BYTES 16384

enum fl_invoke_kind { FL_INVOKE_FUNCTION, FL_INVOKE_WORKFLOW, FL_INVOKE_NKINDS };

struct fl_invoke_target {
    enum fl_invoke_kind kind;
    const char *name;
};

/* Who called: reaches a function as X-Flint-Trigger. */
enum fl_invoke_trigger {
    FL_TRIGGER_HTTP,     /* "http": the router */
    FL_TRIGGER_API,      /* "api": POST /v1/functions/{name}/invoke */
    FL_TRIGGER_ASYNC,    /* "async" */
    FL_TRIGGER_MQ,       /* "mq" */
    FL_TRIGGER_CRON,     /* "cron" */
    FL_TRIGGER_WORKFLOW, /* "workflow": a task of a workflow */
    FL_TRIGGER_COUNT
};

/* The trigger's name ("http"); "http" for a value out of range. */
const char *fl_invoke_trigger_name(enum fl_invoke_trigger t);

/* "function" or "workflow" ("unknown" out of range). */
const char *fl_invoke_kind_name(enum fl_invoke_kind k);

struct fl_invoke_request {
    struct fl_invoke_target target;
    const char *method; /* "GET" */
    const char *path;   /* as the target sees it, e.g. "/users/7" (not decoded) */
    const char *query;  /* after '?' ("" for "/x?"), or NULL for no '?' at all */
    /* the caller's headers: hop-by-hop ones and X-Flint-* never reach a
     * function; a caller's header named like an added one is replaced */
    const struct fl_http_header *headers;
    size_t nheaders;
    /* trusted headers the entry adds (X-Flint-Param-*, X-Forwarded-For,
     * an MQ trigger's X-Flint-Topic) */
    const struct fl_http_header *added;
    size_t nadded;
    const void *body;
    size_t body_len;
    const char *invocation_id; /* NULL: a new UUIDv7 (FL_UUID_STRLEN at most) */
    unsigned attempt;          /* X-Flint-Attempt; 0 means 1 */
    uint64_t deadline_ns;      /* fl_clock_mono_ns() past which the caller gives up: the
                                * outcome is then FL_INVOKE_TIMEOUT (504
                                * "deadline_exceeded") and the target's call is
                                * canceled; 0: none but the target's own timeout */
    enum fl_invoke_trigger trigger;
    /* what X-Flint-Trigger says ("route/NAME", "timetrigger/NAME"; at most
     * FL_INVOKE_TRIGGER_MAX bytes, else FL_EINVAL); NULL: the trigger's
     * name ("http") */
    const char *trigger_name;
};

#define FL_INVOKE_TRIGGER_MAX 300

/* What became of a call. */
enum fl_invoke_error {
    FL_INVOKE_OK,           /* the target answered: its response, whatever its status */
    FL_INVOKE_NOT_FOUND,    /* no such target (404) */
    FL_INVOKE_BUSY,         /* over its limits: concurrency, queue (429) */
    FL_INVOKE_UNAVAILABLE,  /* cannot run now: no instance in time, unreachable,
                             * flintd stopping, out of memory (503) */
    FL_INVOKE_FAILED,       /* cannot run at all: failed build or load (500) */
    FL_INVOKE_TIMEOUT,      /* no answer within its timeout or the deadline (504) */
    FL_INVOKE_CRASH,        /* its instance died under it (502) */
    FL_INVOKE_BAD_RESPONSE, /* it answered malformed HTTP (502) */
    FL_INVOKE_TOO_LARGE,    /* its answer is larger than allowed (502) */
    FL_INVOKE_CANCELED,     /* fl_invoke_cancel(): the caller is gone (499) */
    FL_INVOKE_NERRORS
};

/* "ok", "not_found", "busy", ... (for logs and typed consumers). */
const char *fl_invoke_error_name(enum fl_invoke_error e);

/* The HTTP status an error kind is answered with (above); 200 for OK. */
int fl_invoke_error_status(enum fl_invoke_error e);

/* An outcome, valid only during the callback that gets it. */
struct fl_invoke_outcome {
    enum fl_invoke_error error;
    /* the HTTP form: the target's response, or the JSON error */
    int status;
    const struct fl_http_header *headers; /* with X-Flint-Invocation-Id */
    size_t nheaders;
    const char *body;
    size_t body_len;
    const char *code;          /* an error's stable code ("function_timeout"); NULL if OK */
    const char *message;       /* an error's message for people; NULL if OK */
    const char *invocation_id; /* the call's id */
};

typedef void (*fl_invoke_cb)(const struct fl_invoke_outcome *outcome, void *data);

struct fl_invoker;
struct fl_invoke; /* one call */

/* A new invoker on loop; metrics (borrowed, may be NULL) gets
 * flint_invocations_total{function,code} and
 * flint_invocation_seconds{function} for every call of a function. 0 or
 * FL_ENOMEM. */
int fl_invoker_new(uv_loop_t *loop, struct fl_metrics *metrics, struct fl_invoker **out);

/* Close: every call still under way is canceled at its handler and answered
 * FL_INVOKE_UNAVAILABLE ("stopping"); watches are dropped; done (may be
 * NULL) runs from the loop once the invoker is freed. Close the handlers'
 * modules first (the executor answers its calls when it closes). */
void fl_invoker_close(struct fl_invoker *inv, void (*done)(void *data), void *data);

/*
 * Start a call. The invoker copies the request but for the body and the
 * names and values of the caller's headers, which must stay valid until the
 * callback runs (an HTTP entry's request does). cb runs exactly once: from
 * the loop, never from inside this call, or from inside fl_invoke_cancel().
 * If call is not NULL the call is stored there, valid until cb runs.
 * Returns 0, or FL_EINVAL (no method, path or name, a name longer than
 * FL_INVOKE_NAME_MAX or an invocation id longer than a UUID's),
 * FL_ETOOBIG (over the added-header budget), FL_ECANCELED (the invoker is
 * closing), FL_ENOMEM, or the handler's own error; cb never runs then.
 */
int fl_invoke_start(struct fl_invoker *inv, const struct fl_invoke_request *req, fl_invoke_cb cb,
                    void *data, struct fl_invoke **call);

/* The caller is gone: cb runs now, before this returns, with
 * FL_INVOKE_CANCELED (status 499). A function already running goes on and
 * keeps its slot until it answers or times out (see fl_executor_cancel()),
 * so that a caller who hangs up never frees room for more work than the
 * function can take. */
void fl_invoke_cancel(struct fl_invoke *call);

/* The call's invocation id (made at start if none was given). */
const char *fl_invoke_id(const struct fl_invoke *call);

/* ---- capacity ---- */

struct fl_invoke_capacity {
    uint64_t slots;     /* calls it runs at once at most (a function: concurrency x
                         * requestsPerInstance) */
    uint64_t running;   /* calls running now, those whose caller left included */
    uint64_t queued;    /* calls waiting for a slot */
    uint64_t queue_max; /* calls that may wait; past it calls are refused (BUSY) */
};

/* Whether a consumer that can wait should stop taking work for the target:
 * every slot is taken or calls wait already. */
bool fl_invoke_capacity_full(const struct fl_invoke_capacity *c);

/* The target's capacity now. 0, FL_ENOENT (no such target) or FL_ENOTSUP
 * (its kind says nothing of capacity). */
int fl_invoker_capacity(struct fl_invoker *inv, const struct fl_invoke_target *t,
                        struct fl_invoke_capacity *out);

struct fl_invoke_room;
typedef void (*fl_invoke_room_cb)(void *data, const struct fl_invoke_target *t);

/*
 * Tell cb once, from the loop, when t has room again after being full (or
 * is gone, or its kind says nothing of capacity): cb runs at the next loop
 * turn if t is not full now. The watch ends when cb runs; the handle (if
 * out is not NULL) is valid until then, for fl_invoker_unwatch_room().
 * 0, FL_EINVAL (no name) or FL_ENOMEM (no callback then).
 */
int fl_invoker_watch_room(struct fl_invoker *inv, const struct fl_invoke_target *t,
                          fl_invoke_room_cb cb, void *data, struct fl_invoke_room **out);
void fl_invoker_unwatch_room(struct fl_invoker *inv, struct fl_invoke_room *w);

/* ---- handlers: what serves a kind of target ---- */

/*
 * A kind's handler. start() gets the call (fl_invoke_request_of() says what
 * to call) and returns 0, then finishes it later with fl_invoke_finish(),
 * exactly once and never from inside start(), unless the call is canceled
 * first; or it returns a negative error and does nothing more
 * (fl_invoke_start() returns that error). cancel(): the call is over for its caller;
 * after it returns, the handler never finishes or touches the call again.
 * capacity() (may be NULL) fills out for name: 0 or FL_ENOENT. Whenever a
 * target the handler said was full has room again (or is gone), it calls
 * fl_invoker_room().
 */
struct fl_invoke_handler {
    int (*start)(void *data, struct fl_invoke *call);
    void (*cancel)(void *data, struct fl_invoke *call);
    int (*capacity)(void *data, const char *name, struct fl_invoke_capacity *out);
};

/* Serve kind with h (kept) and data, replacing the not-found default. 0 or
 * FL_EINVAL (kind out of range). */
int fl_invoker_register(struct fl_invoker *inv, enum fl_invoke_kind kind,
                        const struct fl_invoke_handler *h, void *data);

/* For handlers: the call's request, as copied (its strings live as long as
 * the call), and its path and query as one request target ("/x?y=1"). */
const struct fl_invoke_request *fl_invoke_request_of(const struct fl_invoke *call);
const char *fl_invoke_uri(const struct fl_invoke *call);

/* For handlers: a slot for the handler's own state of the call (NULL at
 * start). */
void fl_invoke_set_state(struct fl_invoke *call, void *state);
void *fl_invoke_state(const struct fl_invoke *call);

/*
 * For handlers: the call is done. An outcome with error FL_INVOKE_OK is the
 * target's response (status, headers, body). An error may bring its own
 * HTTP form (status, headers, body) or leave body NULL: the invoker then
 * answers fl_invoke_error_status() with the JSON error made of code and
 * message. The outcome is only read during the call. The call is freed.
 */
void fl_invoke_finish(struct fl_invoke *call, const struct fl_invoke_outcome *outcome);

/* For handlers: t has room again, or is gone. The watches of t run from the
 * loop. */
void fl_invoker_room(struct fl_invoker *inv, const struct fl_invoke_target *t);

/* ---- the executor as the handler of functions ---- */

struct fl_executor;

/* Serve functions with ex (borrowed; close the invoker after it): calls go
 * to fl_executor_invoke(), and the executor's room for a saturated
 * function comes back as fl_invoker_room(). 0 or a negative error. */
int fl_invoker_serve_functions(struct fl_invoker *inv, struct fl_executor *ex);

/* ---- the HTTP entries' half ---- */

struct fl_invoke_http {
    struct fl_invoke_target target;
    const char *path;                   /* NULL: the request's own path and query */
    const char *query;                  /* with path: the query (NULL: none) */
    const struct fl_http_header *added; /* e.g. X-Flint-Param-* (X-Forwarded-For is added) */
    size_t nadded;
    const char *const *drop;      /* the caller's headers not passed on: NULL-terminated
                                   * lower-case names, or NULL */
    const char *const *drop_more; /* more of them (an entry's own on top of how's) */
    enum fl_invoke_trigger trigger;
};

/* An HTTP request mapped to a typed one (fl_invoke_http_map()): req points
 * into the arrays here and into the HTTP request, which must outlive it. */
#define FL_INVOKE_XFF_BEFORE_MAX 1024 /* a longer X-Forwarded-For is not ours to carry */
#define FL_INVOKE_XFF_MAX        (FL_INVOKE_XFF_BEFORE_MAX + 2 + 256)
struct fl_invoke_http_mapped {
    struct fl_invoke_request req;
    struct fl_http_header headers[FL_INVOKE_MAX_HEADERS];
    struct fl_http_header added[FL_INVOKE_MAX_ADDED];
    char xff[FL_INVOKE_XFF_MAX + 1];
};

/* Map req as fl_invoke_http() does (its headers but the dropped ones,
 * how's added ones and X-Forwarded-For, its body) into m, without starting
 * anything: for entries that do something else with the call (the async
 * queue). */
void fl_invoke_http_map(const struct fl_http_request *req, const struct fl_invoke_http *how,
                        struct fl_invoke_http_mapped *m);

/*
 * Call how->target with req: its method, path and query (or how's), its
 * headers but those in how->drop, how's added headers and an
 * X-Forwarded-For naming the client after the proxies before it, and its
 * body. req is answered with the outcome's HTTP form and finished; a client
 * that goes away cancels the call (see fl_invoke_cancel()). A call that
 * cannot start is answered 503 (out_of_memory, stopping), or 500
 * too_many_headers for a request over the budget.
 */
void fl_invoke_http(struct fl_invoker *inv, struct fl_http_request *req,
                    const struct fl_invoke_http *how);

#endif
