/*
 * What the engine's files share (engine.h says what the engine does):
 * engine.c runs invocations, builtins.c holds the built-ins, engine_api.c
 * reads, lists, cancels and starts them for the API.
 */
#ifndef FLINT_WF_ENGINE_INTERNAL_H
#define FLINT_WF_ENGINE_INTERNAL_H

#include "base/queue.h"
#include "wf/engine.h"
#include "wf/run.h"

#define ENGINE_TICK_MS       1000
#define ENGINE_BUSY_RETRY_MS 100 /* a busy function is called again after about this */
/* Expression batches one invocation has out at once: a foreach of a
 * thousand items evaluates its items a few at a time, so making their
 * requests never holds the loop past an evaluator's deadline. */
#define ENGINE_EVALS_MAX 8
/* Workflows run as tasks within each other (A runs B runs ...), at most:
 * a cycle (A runs B runs A) fails its task there. */
#define ENGINE_WORKFLOW_DEPTH 10
#define ENGINE_OUTPUT_DEFAULT (256u * 1024)
#define ENGINE_RETENTION_DEF  (72LL * 3600 * 1000)
/* A function's output of these types is a task / a workflow to run as a
 * dynamic task (run.h, TaskAdded). */
#define FL_WF_CTYPE_TASK     "application/vnd.flint.task+json"
#define FL_WF_CTYPE_WORKFLOW "application/vnd.flint.workflow+json"
#define FL_WF_JS_ARGS_MAX    (1u << 20) /* bytes of javascript's args as JSON */

struct fl_http_client;

/* A workflow as the store holds it now. */
struct wdef {
    struct fl_queue link; /* fl_wf_engine.defs */
    char name[FL_NAME_MAX + 1];
    uint64_t revision;
    json_t *spec;
};

struct fl_wf_engine {
    uv_loop_t *loop;
    struct fl_store *store;
    struct fl_invoker *invoker;
    struct fl_metrics *metrics;
    struct fl_wf_exprc *exprc;
    struct fl_http_client *http; /* the http built-in's, made at its first use */
    int64_t retention_ms;
    size_t max_output;
    bool (*ready)(void *data);
    void *ready_data;
    struct fl_queue defs;    /* struct wdef */
    struct fl_queue invs;    /* struct inv, running here */
    struct fl_queue failing; /* struct waiter: sync calls answered by the kick */
    uv_timer_t tick, kick;
    bool recovered, recovering, sweeping;
    int64_t next_sweep_ms;
    unsigned ops; /* store operations and handles still to come back */
    bool closing;
    void (*done)(void *data);
    void *done_data;
};

/* Count an operation in flight; its end calls engine_op_done(). */
void engine_op(struct fl_wf_engine *e);
void engine_op_done(struct fl_wf_engine *e);

/* The definition of workflow name, or NULL. */
struct wdef *engine_def(struct fl_wf_engine *e, const char *name);

/* Make and run an invocation of def with inputs (a reference taken): cb
 * (may be NULL) once InvocationCreated is durable; call (may be NULL) a
 * sync caller answered when it ends. id: the invocation's id. 0, or an
 * error and neither is told. */
int engine_create(struct fl_wf_engine *e, struct wdef *def, const char *id, json_t *inputs,
                  const char *trigger, struct fl_invoke *call, fl_wf_submit_cb cb, void *data);

/* The invocation id running here, or NULL. */
struct inv;
struct inv *engine_find(struct fl_wf_engine *e, const char *id);

/* inv's cached fold when it is what the stream holds (no append under
 * way: nothing folded that is not durable), else NULL. Borrowed: valid
 * until the loop runs on. */
const struct fl_wf_run *engine_durable_run(const struct inv *inv);

/* Ask a running invocation to cancel: 0, or FL_ECONFLICT (it has ended). */
int engine_cancel(struct inv *inv, const char *reason);

/* Load "wf/<id>" and run it if it has not ended (recovery). */
int engine_recover(struct fl_wf_engine *e, const char *id);

/* ---- built-ins (builtins.c) ---- */

enum builtin_kind {
    BUILTIN_NOW,     /* decided at once from its inputs */
    BUILTIN_SLEEP,   /* a durable timer */
    BUILTIN_EVAL,    /* javascript: evaluated by the expression evaluator */
    BUILTIN_HTTP,    /* http: a request on the engine's HTTP client (http_task.c) */
    BUILTIN_MISSING, /* not run by this engine yet: the task fails saying so */
};

struct builtin {
    const char *name;
    enum builtin_kind kind;
    /* BUILTIN_NOW: from the task's definition (def) and its inputs as
     * scheduled: 0 and *out (a new value; a task or a workflow spec, see
     * builtin_flow(), runs as a dynamic task), or FL_EINVAL and *error (a
     * new string) */
    int (*run)(const struct fl_wf_task *def, json_t *inputs, json_t **out, char **error);
};

/* The built-in called name, or NULL (a function). */
const struct builtin *builtin_find(const char *name);

/* Whether v (an output) is a task ({run, ...} with only a task's fields)
 * or a workflow ({output, tasks, ...} with only a workflow's): its
 * workflow spec (a task T as {"output": "main", "tasks": {"main": T}}), a
 * new value; else NULL. */
json_t *builtin_flow(json_t *v);

/* javascript's evaluation request from its inputs: 0 and *exprs (a new
 * array: a line setting `args` up, then `expr`), or FL_EINVAL and *error
 * (a new string). */
int builtin_js_exprs(json_t *inputs, json_t **exprs, char **error);

/* sleep's duration from its inputs: 0 and *ms, or FL_EINVAL and why. */
int builtin_sleep_ms(json_t *inputs, int64_t *ms, char *why, size_t size);

/* ---- the http built-in (http_task.c) ---- */

struct http_task;

/* The outcome: output and headers (borrowed for the call), or error. */
typedef void (*http_task_cb)(void *data, json_t *output, json_t *headers, const char *error);

/* A task attempt's idempotency key, "<invocation>/<task>/<attempt>". */
#define ENGINE_KEY_MAX (FL_UUID_STRLEN + 2 * FL_WF_ID_MAX + 48)

/* Send the request http's inputs describe (see http_task.c), bounded by
 * timeout_ms (0: 30 s), with the header X-Flint-Idempotency-Key: key
 * (copied) unless the inputs set it. 0 and *out, and cb runs once later
 * (never inside this call) unless the task is canceled; or a negative
 * FL_E* and why (bad inputs: FL_EINVAL), and cb never runs. */
int http_task_start(struct fl_wf_engine *e, json_t *inputs, int64_t timeout_ms, const char *key,
                    http_task_cb cb, void *data, struct http_task **out, char *why, size_t size);

/* Cancel: cb never runs; the task frees itself once its request or name
 * lookup has come back. */
void http_task_cancel(struct http_task *t);

#endif
