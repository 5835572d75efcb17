/*
 * The workflow engine: runs invocations of workflow definitions (wf.h),
 * event-sourced, so that flintd can be killed at any moment and every
 * invocation carries on where it was.
 *
 * Durable state, all in the store (store/store.h):
 *
 *   stream "wf/<id>"   the invocation's events (run.h lists them and their
 *                      data). The first, InvocationCreated, holds a copy of
 *                      the definition it runs (the store keeps only a
 *                      resource's current value, so the invocation pins its
 *                      revision by copying it) and its inputs.
 *
 * One writer per invocation: every append gives the sequence the engine
 * last wrote (expected-sequence append), so a second writer, or a lost
 * write, is a conflict and never a fork. Every decision (a task scheduled
 * with its inputs, an attempt started, a timer started, the invocation
 * ended) is appended before it is acted on; the state is the fold of the
 * stream (run.h), cached in memory while the invocation runs and rebuilt
 * by replay. Outcomes that arrive while an append is under way wait in the
 * invocation's outbox and go out with the next append.
 *
 * Scheduling: a task is scheduled the moment every task it requires has
 * succeeded (no waves); independent tasks run at once, as many as their
 * functions take (a function that is full answers busy and the attempt is
 * made again a moment later, with the same idempotency key). Built-ins
 * that need no waiting (noop, compose, fail) are decided and recorded in
 * the same append that schedules them; sleep is a durable timer
 * (TimerStarted/TimerFired) that fires after a restart at its time.
 *
 * Expressions: a task whose inputs hold `{...}` strings (wf.h's has_expr)
 * has them all evaluated in one batch by the evaluator pool (exprc.h) once
 * its dependencies are met, with $ = {Workflow, Invocation, Tasks}; the task
 * waits meanwhile (the invocation goes on with others) and is scheduled with
 * the values put in, which TaskScheduled records, so a task once scheduled
 * is never evaluated again. An expression that throws, a missed deadline or
 * no evaluator fails the task: "inputs.<key>: {<source>}: <message>". A
 * pool that stays busy holds a task back; the engine's close waits for the
 * batches it sent (each bounded by the pool's deadline).
 *
 * A function task is called through the invoker as any entry calls a
 * function: its inputs are the request (`body`, else `default`, as the
 * body: a string as it is, any other value as JSON; `headers`, `query`,
 * `method`, POST by default), with X-Flint-Invocation-Id (the workflow
 * invocation's id), X-Flint-Attempt, X-Flint-Workflow, X-Flint-Task-Id and
 * X-Flint-Idempotency-Key "<invocation>/<task>/<attempt>", the same for
 * every dispatch of that attempt. A 2xx answer is the task's output (JSON
 * when its Content-Type says so, a string otherwise); any other answer or
 * error fails the attempt, and the task's retry policy (wf.h: one attempt
 * by default) decides whether a "retry" timer starts another, after a
 * backoff with full jitter (async.h's fl_retry_delay_ms()).
 *
 * Recovery: when flintd starts (once fl_wf_engine_config.ready says the
 * functions are loaded) the engine lists the "wf/" streams, replays those
 * that have not ended and re-dispatches what was started and not finished,
 * with the same attempt and idempotency key; a finished task is never run
 * again. Ended invocations are deleted with their streams once older than
 * the retention.
 *
 * Everything runs on the loop's thread.
 */
#ifndef FLINT_WF_ENGINE_H
#define FLINT_WF_ENGINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "base/metrics.h"
#include "http/server.h"
#include "invoke/invoke.h"
#include "store/store.h"

struct fl_wf_engine;
struct fl_wf_exprc;

struct fl_wf_engine_config {
    struct fl_store *store;     /* borrowed */
    struct fl_invoker *invoker; /* borrowed; the engine registers as its workflows' handler */
    struct fl_metrics *metrics; /* borrowed; may be NULL */
    struct fl_wf_exprc *exprc;  /* borrowed; NULL: expressions fail their task */
    int64_t retention_ms;       /* ended invocations kept; 0: 72 h */
    size_t max_output;          /* bytes of a task's output kept; 0: 256 KiB */
    /* Whether the functions the store holds are loaded (may be NULL):
     * recovery waits for it, so that a task re-dispatched after a restart
     * never meets a function the executor does not know yet. */
    bool (*ready)(void *data);
    void *ready_data;
};

/* A new engine, registered with the invoker as the handler of workflows.
 * 0, or FL_ENOMEM / the invoker's error. */
int fl_wf_engine_new(uv_loop_t *loop, const struct fl_wf_engine_config *cfg,
                     struct fl_wf_engine **out);

/* Stop: calls under way are canceled (their attempts are re-dispatched by
 * the next start, with the same key), timers stopped, sync callers
 * answered 503 "stopping"; done (may be NULL) runs from the loop once
 * every store operation has come back and the engine is freed. Close it
 * before the invoker and the store. */
void fl_wf_engine_close(struct fl_wf_engine *e, void (*done)(void *data), void *data);

/* ---- definitions (fed by the workflow kind's follower, kind.c) ---- */

/* The store holds spec for workflow name at revision: new invocations of
 * name run it. 0 or FL_ENOMEM. */
int fl_wf_engine_put(struct fl_wf_engine *e, const char *name, uint64_t revision, json_t *spec);
void fl_wf_engine_remove(struct fl_wf_engine *e, const char *name);

/* ---- starting ---- */

/* The inputs of an invocation made of an HTTP-like request (Fission
 * Workflows' mapping): {"body", "default": the body (JSON when it parses
 * as JSON and its Content-Type is JSON or absent, else the text; "" when
 * empty), "headers": fl_wf_headers_json(), "query": {name: value},
 * "method"}. A body that is no UTF-8 text is left out. A new value, or
 * NULL. */
json_t *fl_wf_inputs_of(const struct fl_invoke_request *req);

/* Headers as workflows see them (a request's in the inputs, a task's
 * output headers): {Canonical-Name: value}, each name in the canonical form
 * Fission Workflows shows (Go's: the first letter and each letter after a
 * hyphen upper case, the rest lower case), the last of a repeated name
 * winning. A new value, or NULL. */
json_t *fl_wf_headers_json(const struct fl_http_header *h, size_t n);

/* The value of header name in such a map, its name matched without regard
 * to case (events written before names were canonical hold them in lower
 * case), or NULL. */
const char *fl_wf_header_get(json_t *headers, const char *name);

/* What fl_wf_engine_submit() tells once the invocation is durable: err 0
 * and its id, or FL_ENOENT (no such workflow), the store's error. */
typedef void (*fl_wf_submit_cb)(int err, const char *id, void *data);

/* Start an invocation of req->target.name with req's inputs and answer cb
 * (from the loop, never from inside this call) once InvocationCreated is
 * durable. 0, or an error and cb never runs. */
int fl_wf_engine_submit(struct fl_wf_engine *e, const struct fl_invoke_request *req,
                        fl_wf_submit_cb cb, void *data);

/* The HTTP entries' async half: start req's invocation of how->target and
 * answer 202 {"invocation", "status": "running"} with Location
 * /v1/invocations/<id> once it is durable (404 workflow_not_found, 503). */
void fl_wf_engine_http_async(struct fl_wf_engine *e, struct fl_http_request *req,
                             const struct fl_invoke_http *how);

/* ---- reading and steering (the API's /v1/invocations) ----
 * Each answers cb once, from the loop: err 0 and a JSON value it owns
 * during the call, or FL_ENOENT (no such workflow invocation),
 * FL_ECONFLICT (it has ended), the store's error. */
typedef void (*fl_wf_json_cb)(int err, json_t *value, void *data);

/* One invocation (run.h's fl_wf_run_json, detail: with inputs). */
int fl_wf_engine_get(struct fl_wf_engine *e, const char *id, bool detail, fl_wf_json_cb cb,
                     void *data);
/* Its events: {"events": [{"seq", "type", "at", "data"}]}. */
int fl_wf_engine_events(struct fl_wf_engine *e, const char *id, fl_wf_json_cb cb, void *data);
/* A page of invocations, oldest first: {"items": [summaries], "next"}.
 * workflow and status (NULL: any) filter; FL_EINVAL for an unknown status. */
int fl_wf_engine_list(struct fl_wf_engine *e, const char *workflow, const char *status,
                      size_t limit, const char *after, fl_wf_json_cb cb, void *data);
/* Cancel a running invocation: InvocationCanceled is appended, running
 * calls are canceled, timers stopped: {"invocation", "status"}. */
int fl_wf_engine_cancel(struct fl_wf_engine *e, const char *id, fl_wf_json_cb cb, void *data);

/* Invocations running in this engine now (for tests and status). */
size_t fl_wf_engine_running(const struct fl_wf_engine *e);

#endif
