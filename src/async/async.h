/*
 * Async invocations: a call accepted now, run at least once later, retried
 * with backoff, and ended succeeded, failed, canceled or dead (a dead
 * letter an operator can inspect, redrive or purge). The API's
 * `Prefer: respond-async`, async routes and the cron triggers submit here;
 * the calls themselves go through the invoker like every other.
 *
 * Durable state, all in the store (store/store.h), so that a flintd killed
 * at any moment carries on:
 *
 *   topic "async/<function>"   one message per accepted invocation: the
 *                              request (headers: a JSON object with the
 *                              method, path, query, headers, trigger,
 *                              policy, callback; data: the body), message
 *                              id = invocation id. Interest retention: a
 *                              message goes once its invocation has ended
 *                              (dead letters stay until redriven or
 *                              purged). One durable consumer, "run".
 *   stream "inv/<id>"          the invocation's history, one event per step:
 *                              "queued" (the request, made from the message
 *                              by whoever begins the history: the worker
 *                              that takes the message, with its first
 *                              attempt's event, or a cancel), "attempt" (each
 *                              attempt's outcome, and whether it ended the
 *                              invocation), "canceled", "redriven",
 *                              "callback". Its status is folded from these
 *                              (history.h); until the history begins, from
 *                              the message alone (status queued).
 *   stream "idem/<fn>/<hash>"  an Idempotency-Key's first invocation id,
 *                              appended with expect 0: the one compare-and-
 *                              set that makes a key run once.
 *   topic "async-callbacks"    outcomes still to be POSTed to a callback URL.
 *
 * Accepting is one durable write on the path of the answer: the message
 * (with an idempotency key, the key's compare-and-set append first). An
 * attempt: the consumer's delivery (its count is the attempt number since
 * the last redrive, durable before the call starts), a read of the
 * history (an invocation that ended or was canceled is not run again; none
 * yet: its first attempt), the call, one "attempt" event (the first one
 * appended with the queued event, expecting an empty stream, so that the
 * history begins once whoever comes first; after a cancel that began it,
 * after that), then the ack: ACK (succeeded), TERM (failed, canceled), NAK
 * with the backoff (retrying) or DEAD (attempts used up). A flintd killed
 * during an attempt gets the message back after the consumer's ack wait;
 * the lost attempt is recorded as such and counts. The history is always
 * written before the message is acked, so an invocation is always in one
 * of the two: its message, or its history.
 *
 * Capacity: per function, at most half of its slots (at least one) run
 * async attempts, and none is fetched while the invoker says the function
 * is full, so an async backlog never starves synchronous calls; the
 * invoker's room watch resumes it.
 *
 * Everything runs on the loop's thread.
 */
#ifndef FLINT_ASYNC_ASYNC_H
#define FLINT_ASYNC_ASYNC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/metrics.h"
#include "exec/spec.h" /* struct fl_retry_policy */
#include "http/server.h"
#include "invoke/invoke.h"
#include "store/store.h"

struct fl_async;

/* The delay before attempt `attempt + 1` after attempt `attempt` failed:
 * a random time in [0, min(max_backoff, backoff * 2^(attempt-1))] (full
 * jitter), never less than 1 ms. */
int64_t fl_retry_delay_ms(const struct fl_retry_policy *p, uint32_t attempt);

struct fl_async_config {
    struct fl_store *store;     /* borrowed */
    struct fl_invoker *invoker; /* borrowed */
    struct fl_metrics *metrics; /* borrowed; may be NULL */
    int64_t retention_ms;       /* finished invocations kept; 0: 72 h */
    size_t max_body;            /* the largest request body accepted */
    /* The retry policy of a function (its spec's `retry`, or the
     * defaults): 0, or FL_ENOENT when there is no such function. */
    int (*policy_of)(void *data, const char *function, struct fl_retry_policy *out);
    void *policy_data;
    /* Whether the functions the store holds are loaded (may be NULL):
     * until then nothing is fetched, so that an invocation queued before
     * a restart never meets a function the executor does not know yet. */
    bool (*ready)(void *data);
    void *ready_data;
};

/* A new async module; it starts consuming the queues the store holds at
 * once. 0 or a negative error. */
int fl_async_new(uv_loop_t *loop, const struct fl_async_config *cfg, struct fl_async **out);

/* Stop fetching, cancel the attempts under way (their messages come back
 * after the next start's ack wait, and count), stop the sweep; done runs
 * from the loop once nothing is left. Close it before the invoker and the
 * store. */
void fl_async_close(struct fl_async *a, void (*done)(void *data), void *data);

/* ---- submitting ---- */

struct fl_async_request {
    struct fl_invoke_target target; /* a function (workflows: FL_ENOTSUP for now) */
    const char *method;
    const char *path;
    const char *query; /* NULL: none */
    const struct fl_http_header *headers;
    size_t nheaders;
    /* trusted headers that reach the function on every attempt (a cron
     * fire's X-Flint-Scheduled-Time); counted in the invoker's budget */
    const struct fl_http_header *added;
    size_t nadded;
    const void *body;
    size_t body_len;
    enum fl_invoke_trigger trigger;
    const char *trigger_name;            /* "api", "route/NAME", "timetrigger/NAME" */
    const struct fl_retry_policy *retry; /* NULL: the function's */
    const char *idempotency_key;         /* NULL: none; at most 256 bytes */
    const char *callback_url;            /* NULL: none; http://HOST:PORT/path */
};

/* What became of a submission: err 0 and the invocation's id (duplicate:
 * the idempotency key's first invocation, nothing new was queued), or a
 * negative error: FL_ENOENT (no such function), FL_EINVAL (a bad callback
 * URL or key), FL_ETOOBIG (body over max_body), -ENOSPC, or the store's
 * error. id is valid during the call. */
typedef void (*fl_async_submit_cb)(int err, const char *id, bool duplicate, void *data);

/* Accept r: cb runs once the invocation is durable (from the loop, never
 * from inside this call). The request is copied. 0, or an error and cb
 * never runs: FL_EINVAL for a key of the wrong size, or a method, path,
 * query or header name that is not UTF-8 text (it could not be stored as
 * it came); FL_EAGAIN for a function not known while the functions the
 * store holds are still being loaded (cfg->ready false: try again). */
int fl_async_submit(struct fl_async *a, const struct fl_async_request *r, fl_async_submit_cb cb,
                    void *data);

/*
 * The HTTP entries' half: accept req as fl_invoke_http() would call it
 * (how->call: its target, path, added and dropped headers), without the
 * headers that steer an async call (Prefer, Idempotency-Key,
 * X-Flint-Callback-Url), and answer it 202 {"invocation", "status":
 * "queued"} with Location and Preference-Applied once durable, or with
 * the error. The callback is how->callback_url, else (if
 * allow_caller_callback: the API, never a public route) the caller's
 * X-Flint-Callback-Url.
 */
struct fl_async_http {
    struct fl_invoke_http call;
    const char *trigger_name;            /* "api", "route/NAME" */
    const struct fl_retry_policy *retry; /* NULL: the function's */
    const char *callback_url;
    bool allow_caller_callback;
};

void fl_async_http(struct fl_async *a, struct fl_http_request *req,
                   const struct fl_async_http *how);

/* Whether req asks to be answered asynchronously (Prefer: respond-async,
 * as one of the preferences of any Prefer header). */
bool fl_async_preferred(const struct fl_http_request *req);

/* ---- reading and steering (the API's /v1/invocations, /v1/deadletters) ----
 * Each answers cb once, from the loop, with err 0 and a JSON value it
 * owns during the call, or a negative error (FL_ENOENT: no such
 * invocation, FL_ECONFLICT: it has ended) and NULL. */

typedef void (*fl_async_json_cb)(int err, json_t *value, void *data);

/* One invocation as docs/api.md shows it (with_body: its request body too). */
int fl_async_get(struct fl_async *a, const char *id, bool with_body, fl_async_json_cb cb,
                 void *data);

/* A page of invocations, newest first: {"items": [...], "next"}. function
 * and status (NULL: any) filter; dead: only dead letters (async ones and
 * message-queue triggers' alike). At most 2000 invocations are read for one
 * page: a page may hold fewer items than asked for, and "next" goes on. */
int fl_async_list(struct fl_async *a, const char *function, const char *status, bool dead,
                  size_t limit, const char *after, fl_async_json_cb cb, void *data);

/* Cancel id: {invocation}. */
int fl_async_cancel(struct fl_async *a, const char *id, fl_async_json_cb cb, void *data);

/* Redrive or purge the dead letter id, or (id NULL) every dead letter of
 * function (NULL: of every function): {"redriven": [ids]} or
 * {"purged": [ids]}. A message-queue trigger's dead letter is redriven in
 * place, in its trigger's consumer (the same invocation id, its attempts
 * going on; publishing it anew would hand it to the topic's other
 * consumers too); one whose consumer is gone (the trigger deleted or moved
 * to another topic) cannot be: FL_ENOTSUP, and a purge records it purged.
 * With id NULL, a letter that fails is logged and skipped. */
int fl_async_redrive(struct fl_async *a, const char *id, const char *function, fl_async_json_cb cb,
                     void *data);
int fl_async_purge(struct fl_async *a, const char *id, const char *function, fl_async_json_cb cb,
                   void *data);

#endif
