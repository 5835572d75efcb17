/*
 * The workflow engine's invocations (engine.h says what it does): each a
 * cached fold of its stream, a single writer of it, the calls and the
 * timer it has under way.
 *
 *   step(inv): fold what the outbox holds (outcomes, fired timers, a
 *              cancel), decide what follows (tasks whose dependencies are
 *              met, built-ins decided at once, the invocation's end), fold
 *              those too, and append the whole batch at the sequence last
 *              written;
 *   act(inv):  once the batch is durable, do what it decided: call the
 *              functions of started attempts, arm the timer for the
 *              earliest timer, answer the callers of an ended invocation.
 *
 * Replay makes the same state, and act() on it re-dispatches what was
 * started and not finished: recovery is act() after a fold.
 */
#include "wf/engine_internal.h"

#include "async/async.h" /* fl_retry_delay_ms */
#include "async/history.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/str.h"
#include "http/client.h"
#include "wf/exprc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One task's runtime: what is under way for it in this flintd. */
struct trun {
    struct dispatch *call;  /* the function call under way, or NULL */
    struct http_task *http; /* the http built-in's request under way, or NULL */
    bool outcome_pending;   /* its outcome is in the outbox, not yet folded */
    int64_t busy_until;     /* a busy function (or evaluator): again at this wall ms */
    bool evaluating;        /* its inputs' expressions are being evaluated */
    json_t *resolved;       /* owned: their values put in, the inputs to schedule with */
    char *expr_error;       /* owned: or why they could not be evaluated */
};

/* A sync caller waiting for the invocation's end. */
struct waiter {
    struct fl_queue link;
    struct fl_invoke *call;
    struct inv *inv;                /* NULL: answered by the kick (not found) */
    char workflow[FL_NAME_MAX + 1]; /* for the kick's answer */
};

struct inv {
    struct fl_queue link; /* fl_wf_engine.invs */
    struct fl_wf_engine *e;
    struct fl_wf_run run;
    uint64_t last_seq;
    json_t *outbox; /* [[type, data], ...] decided, not yet appended */
    struct trun *rt;
    size_t nrt;            /* runtimes in rt: one per task of run */
    unsigned evaluating;   /* batches out to the evaluators, at most ENGINE_EVALS_MAX */
    json_t *scope;         /* owned: the last expression scope made (scope_for()) */
    char *scope_of;        /* owned: the prefix of the workflow it is for */
    size_t scope_len;      /* its length */
    uint64_t scope_events; /* the events folded when it was made */
    struct fl_queue waiters;
    fl_wf_submit_cb submit_cb; /* told when InvocationCreated is durable */
    void *submit_data;
    uv_timer_t timer;
    bool appending, created, gone, freeing;
    bool broken;  /* an event did not fold: this copy of the state goes */
    unsigned ops; /* appends and calls whose callbacks are still to come */
};

/* One attempt's call of a function. */
struct dispatch {
    struct inv *inv;
    size_t task;
    uint32_t attempt;
    bool canceled;
    struct fl_invoke *call;
    json_t *inputs; /* a reference: the header values and a string body point into it */
    char *body;     /* a JSON body made of the inputs, or NULL */
    struct fl_http_header headers[FL_INVOKE_MAX_HEADERS];
};

static void step(struct inv *inv);
static void act(struct inv *inv);
static void add_flow(struct inv *inv, json_t *batch, size_t i, json_t *flow);
static int inv_tasks_grow(struct inv *inv);
static void inv_release(struct inv *inv);

/* ---- the engine's operations ---- */

void engine_op(struct fl_wf_engine *e)
{
    e->ops++;
}

static void maybe_done(struct fl_wf_engine *e)
{
    if (!e->closing || e->ops > 0 || !fl_queue_empty(&e->invs))
        return;
    void (*done)(void *) = e->done;
    void *data = e->done_data;
    struct fl_queue *q;
    while ((q = fl_queue_first(&e->defs)) != NULL) {
        struct wdef *d = FL_QUEUE_DATA(q, struct wdef, link);
        fl_queue_remove(q);
        json_decref(d->spec);
        free(d);
    }
    free(e);
    if (done != NULL)
        done(data);
}

void engine_op_done(struct fl_wf_engine *e)
{
    e->ops--;
    maybe_done(e);
}

struct wdef *engine_def(struct fl_wf_engine *e, const char *name)
{
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &e->defs)
    {
        struct wdef *d = FL_QUEUE_DATA(q, struct wdef, link);
        if (strcmp(d->name, name) == 0)
            return d;
    }
    return NULL;
}

int fl_wf_engine_put(struct fl_wf_engine *e, const char *name, uint64_t revision, json_t *spec)
{
    struct wdef *d = engine_def(e, name);
    if (d == NULL) {
        d = calloc(1, sizeof(*d));
        if (d == NULL)
            return FL_ENOMEM;
        fl_strlcpy(d->name, name, sizeof(d->name));
        fl_queue_insert_tail(&e->defs, &d->link);
    }
    json_decref(d->spec);
    d->spec = json_incref(spec);
    d->revision = revision;
    return 0;
}

void fl_wf_engine_remove(struct fl_wf_engine *e, const char *name)
{
    struct wdef *d = engine_def(e, name);
    if (d == NULL)
        return;
    fl_queue_remove(&d->link);
    json_decref(d->spec);
    free(d);
}

struct inv *engine_find(struct fl_wf_engine *e, const char *id)
{
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &e->invs)
    {
        struct inv *inv = FL_QUEUE_DATA(q, struct inv, link);
        if (!inv->gone && strcmp(inv->run.id, id) == 0)
            return inv;
    }
    return NULL;
}

size_t fl_wf_engine_running(const struct fl_wf_engine *e)
{
    size_t n = 0;
    const struct fl_queue *q;
    for (q = e->invs.next; q != &e->invs; q = q->next)
        n++;
    return n;
}

/* ---- events ---- */

/* Fold (type, data) into inv's state and add it to batch. data is stolen.
 * "at" is set to now unless given. */
static void emit(struct inv *inv, json_t *batch, const char *type, json_t *data)
{
    if (data == NULL)
        data = json_object();
    if (data == NULL)
        return;
    if (json_object_get(data, "at") == NULL)
        json_object_set_new(data, "at", json_integer(fl_clock_wall_ms()));
    int rc = fl_wf_run_apply(&inv->run, type, data);
    if (rc == 0)
        rc = inv_tasks_grow(inv);
    if (rc < 0) {
        fl_log(FL_LOG_ERROR, "wf", "an event the engine made does not fold",
               "invocation=%s type=%s err=%s", inv->run.id, type, fl_errname(rc));
        inv->broken = true; /* not appended: step() reads the stream again */
    }
    json_array_append_new(batch, json_pack("[s,o]", type, data));
}

/* Queue an event for the next append (an outcome, a fired timer). */
static void post(struct inv *inv, const char *type, json_t *data)
{
    if (data == NULL)
        return;
    if (json_object_get(data, "at") == NULL)
        json_object_set_new(data, "at", json_integer(fl_clock_wall_ms()));
    json_array_append_new(inv->outbox, json_pack("[s,o]", type, data));
}

/* ---- the invocation's life ---- */

static void on_timer_closed(uv_handle_t *h)
{
    struct inv *inv = h->data;
    struct fl_wf_engine *e = inv->e;
    fl_wf_run_release(&inv->run);
    json_decref(inv->outbox);
    json_decref(inv->scope);
    free(inv->scope_of);
    for (size_t i = 0; inv->rt != NULL && i < inv->nrt; i++) {
        json_decref(inv->rt[i].resolved);
        free(inv->rt[i].expr_error);
    }
    free(inv->rt);
    free(inv);
    engine_op_done(e);
}

/* Free inv once nothing of it is under way. */
static void inv_maybe_free(struct inv *inv)
{
    if (!inv->gone || inv->ops > 0 || inv->freeing)
        return;
    inv->freeing = true;
    fl_queue_remove(&inv->link);
    uv_close((uv_handle_t *)&inv->timer, on_timer_closed);
}

/* Answer a sync caller with the invocation's end (or why it has none). */
static void answer(struct fl_invoke *call, const struct fl_wf_run *r, int status, const char *code,
                   const char *message)
{
    struct fl_http_header h[3];
    size_t nh = 0;
    if (r != NULL)
        h[nh++] = (struct fl_http_header){"X-Flint-Invocation-Id", 21, r->id, strlen(r->id)};
    char *body = NULL;
    const char *text = NULL;
    size_t len = 0;
    enum fl_invoke_error kind = FL_INVOKE_OK;
    if (r != NULL && r->status == FL_WF_RUN_SUCCEEDED) {
        const char *ctype = fl_wf_header_get(r->headers, "Content-Type");
        if (json_is_string(r->output)) {
            text = json_string_value(r->output);
            len = json_string_length(r->output);
            if (ctype == NULL)
                ctype = "text/plain; charset=utf-8";
        } else if (r->output != NULL && !json_is_null(r->output)) {
            body = json_dumps(r->output, JSON_COMPACT | JSON_ENCODE_ANY);
            text = body;
            len = body ? strlen(body) : 0;
            ctype = "application/json";
        }
        if (ctype != NULL)
            h[nh++] = (struct fl_http_header){"Content-Type", 12, ctype, strlen(ctype)};
        status = 200;
    } else {
        kind = status == 503   ? FL_INVOKE_UNAVAILABLE
               : status == 404 ? FL_INVOKE_NOT_FOUND
                               : FL_INVOKE_FAILED;
        json_t *err = json_pack("{s:s,s:s}", "code", code, "message", message);
        if (r != NULL && err != NULL) {
            json_object_set_new(err, "invocation", json_string(r->id));
            if (r->failed_task[0] != '\0')
                json_object_set_new(err, "task", json_string(r->failed_task));
        }
        json_t *o = json_pack("{s:o}", "error", err);
        body = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        text = body;
        len = body ? strlen(body) : 0;
        h[nh++] = (struct fl_http_header){"Content-Type", 12, "application/json", 16};
    }
    const struct fl_invoke_outcome o = {.error = kind,
                                        .status = status,
                                        .headers = h,
                                        .nheaders = nh,
                                        .body = text ? text : "",
                                        .body_len = len,
                                        .code = kind == FL_INVOKE_OK ? NULL : code,
                                        .message = kind == FL_INVOKE_OK ? NULL : message,
                                        .invocation_id = r ? r->id : NULL};
    fl_invoke_finish(call, &o);
    free(body);
}

/* Answer every sync caller of inv, with its end or with (status, code,
 * message) when it has none. */
static void answer_waiters(struct inv *inv, int status, const char *code, const char *message)
{
    struct fl_queue *q;
    while ((q = fl_queue_first(&inv->waiters)) != NULL) {
        struct waiter *w = FL_QUEUE_DATA(q, struct waiter, link);
        fl_queue_remove(q);
        struct fl_invoke *call = w->call;
        fl_invoke_set_state(call, NULL);
        free(w);
        if (fl_wf_run_ended(&inv->run)) {
            const struct fl_wf_run *r = &inv->run;
            char msg[1024];
            if (r->status == FL_WF_RUN_FAILED && r->failed_task[0] != '\0')
                snprintf(msg, sizeof(msg), "task '%s' failed: %s", r->failed_task,
                         r->error ? r->error : "failed");
            else
                snprintf(msg, sizeof(msg), "%s", r->error ? r->error : "failed");
            answer(call, r, 500,
                   r->status == FL_WF_RUN_CANCELED ? "invocation_canceled" : "workflow_failed",
                   msg);
        } else {
            answer(call, &inv->run, status, code, message);
        }
    }
}

/* Cancel the calls under way (their outcomes are dropped). */
static void cancel_calls(struct inv *inv)
{
    for (size_t i = 0; i < inv->run.ntasks; i++) {
        struct dispatch *d = inv->rt[i].call;
        if (inv->rt[i].http != NULL) {
            http_task_cancel(inv->rt[i].http);
            inv->rt[i].http = NULL;
        }
        if (d == NULL)
            continue;
        inv->rt[i].call = NULL;
        d->canceled = true;
        if (d->call != NULL)
            fl_invoke_cancel(d->call); /* its callback runs now and frees d */
    }
}

/* The invocation leaves this engine: ended, broken, or the engine stops. */
static void inv_release(struct inv *inv)
{
    if (inv->gone)
        return;
    inv->gone = true;
    uv_timer_stop(&inv->timer);
    cancel_calls(inv);
    inv_maybe_free(inv);
}

static struct inv *inv_new(struct fl_wf_engine *e, const char *id)
{
    struct inv *inv = calloc(1, sizeof(*inv));
    if (inv == NULL)
        return NULL;
    inv->outbox = json_array();
    if (inv->outbox == NULL) {
        free(inv);
        return NULL;
    }
    inv->e = e;
    fl_wf_run_init(&inv->run, id);
    fl_queue_init(&inv->waiters);
    uv_timer_init(e->loop, &inv->timer);
    inv->timer.data = inv;
    engine_op(e); /* given back when the timer is closed */
    fl_queue_insert_tail(&e->invs, &inv->link);
    return inv;
}

/* The task runtimes, once the run has its tasks. */
static int inv_tasks(struct inv *inv)
{
    inv->rt = calloc(inv->run.ntasks ? inv->run.ntasks : 1, sizeof(*inv->rt));
    inv->nrt = inv->rt ? inv->run.ntasks : 0;
    return inv->rt ? 0 : FL_ENOMEM;
}

/* A runtime for each of the run's tasks, once dynamic ones were added:
 * 0, or FL_ENOMEM. */
static int inv_tasks_grow(struct inv *inv)
{
    if (inv->rt == NULL || inv->nrt >= inv->run.ntasks)
        return 0;
    struct trun *rt = realloc(inv->rt, inv->run.ntasks * sizeof(*rt));
    if (rt == NULL)
        return FL_ENOMEM;
    memset(rt + inv->nrt, 0, (inv->run.ntasks - inv->nrt) * sizeof(*rt));
    inv->rt = rt;
    inv->nrt = inv->run.ntasks;
    return 0;
}

/* ---- appending ---- */

struct append {
    struct inv *inv;
    size_t n;
    bool created; /* the InvocationCreated append */
};

static void on_appended(int err, const struct fl_store_result *res, void *data)
{
    struct append *ap = data;
    struct inv *inv = ap->inv;
    struct fl_wf_engine *e = inv->e;
    inv->ops--;
    inv->appending = false;
    if (err == 0)
        inv->last_seq = res->seq + ap->n - 1;
    if (ap->created) {
        fl_wf_submit_cb cb = inv->submit_cb;
        inv->submit_cb = NULL;
        if (cb != NULL)
            cb(err, inv->run.id, inv->submit_data);
    }
    free(ap);
    if (err < 0) {
        /* the stream is the truth: this copy of the state may be ahead of
         * it, so it goes; a created invocation is read back from the
         * store in a moment */
        fl_log(FL_LOG_ERROR, "wf", "cannot record an invocation's events", "invocation=%s err=%s",
               inv->run.id, fl_errname(err));
        answer_waiters(inv, 503, "store_unavailable", "the store failed to record the invocation");
        bool reload = inv->created && !e->closing;
        char id[FL_UUID_STRLEN + 1];
        fl_strlcpy(id, inv->run.id, sizeof(id));
        inv_release(inv);
        if (reload)
            engine_recover(e, id);
        engine_op_done(e);
        return;
    }
    inv->created = true;
    if (e->closing || inv->gone) {
        inv_maybe_free(inv);
        engine_op_done(e);
        return;
    }
    act(inv);
    if (!inv->gone)
        step(inv);
    engine_op_done(e);
}

/* Append batch (stolen) at the last sequence. */
static int append(struct inv *inv, json_t *batch, bool created)
{
    struct fl_wf_engine *e = inv->e;
    size_t n = json_array_size(batch);
    struct fl_event_in *ev = calloc(n, sizeof(*ev));
    char **texts = calloc(n, sizeof(*texts));
    struct append *ap = calloc(1, sizeof(*ap));
    int rc = ev && texts && ap ? 0 : FL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *pair = json_array_get(batch, i);
        texts[i] = json_dumps(json_array_get(pair, 1), JSON_COMPACT);
        if (texts[i] == NULL) {
            rc = FL_ENOMEM;
            break;
        }
        ev[i] = (struct fl_event_in){json_string_value(json_array_get(pair, 0)), texts[i],
                                     strlen(texts[i])};
    }
    char stream[FL_WF_STREAM_MAX];
    fl_wf_stream_name(stream, inv->run.id);
    if (rc == 0) {
        *ap = (struct append){inv, n, created};
        rc = fl_store_append(e->store, stream, ev, n, created ? 0 : inv->last_seq, on_appended, ap);
    }
    if (rc == 0) {
        inv->appending = true;
        inv->ops++;
        engine_op(e);
    } else {
        free(ap);
    }
    for (size_t i = 0; texts != NULL && i < n; i++)
        free(texts[i]);
    free(texts);
    free(ev);
    json_decref(batch);
    return rc;
}

/* ---- deciding ---- */

/* A task's inputs as written: {key: value}. Inline tasks and workflows
 * stay the maps they are. */
static json_t *static_inputs(const struct fl_wf_task *t, bool *has_expr)
{
    json_t *o = json_object();
    *has_expr = false;
    for (size_t i = 0; o != NULL && i < t->ninputs; i++) {
        json_object_set(o, t->inputs[i].key, t->inputs[i].value);
        if (t->inputs[i].has_expr)
            *has_expr = true;
    }
    return o;
}

/* Task i's output was flow (a workflow spec, stolen): add it as a dynamic
 * task (run.h, TaskAdded, with the fields of extra: stolen, may be NULL),
 * or fail the task when it cannot run. With "catch" in extra, flow is task
 * i's catch (it failed for good): one that cannot run fails the
 * invocation. Pointers into inv->run.tasks move. */
static void add_flow_as(struct inv *inv, json_t *batch, size_t i, json_t *flow, json_t *extra)
{
    bool catch = json_is_true(json_object_get(extra, "catch"));
    struct fl_wf_task_run *t = &inv->run.tasks[i];
    struct fl_wf wf;
    struct fl_wf_errors errs;
    const struct fl_wf_lookup lookup = {NULL, NULL, NULL};
    struct fl_buf why;
    fl_wf_errors_init(&errs);
    fl_buf_init(&why, 4096);
    int rc = fl_wf_parse(flow, &wf, &errs);
    if (rc == 0)
        rc = fl_wf_validate(&wf, &lookup, &errs);
    if (rc == 0 && inv->run.ntasks + wf.ntasks > FL_WF_RUN_MAX_TASKS) {
        fl_buf_appendf(&why,
                       "the task '%s' added %zu tasks to the %zu of this invocation, more "
                       "than the %d one may have",
                       t->id, wf.ntasks, inv->run.ntasks, FL_WF_RUN_MAX_TASKS);
        rc = FL_ETOOBIG;
    } else if (rc < 0) {
        fl_buf_appendf(&why, "the task '%s' %s that cannot run: ", t->id,
                       catch                                   ? "has as its catch a task"
                       : json_object_get(extra, "run") != NULL ? "runs a workflow"
                                                               : "output a task");
        fl_wf_errors_join(&errs, &why);
    }
    fl_wf_release(&wf);
    fl_wf_errors_release(&errs);
    json_t *data = rc == 0 ? json_pack("{s:s,s:o}", "task", t->id, "workflow", flow) : NULL;
    if (data != NULL && extra != NULL)
        json_object_update(data, extra);
    json_decref(extra);
    if (rc == 0)
        emit(inv, batch, "TaskAdded", data);
    else if (catch)
        emit(inv, batch, "InvocationFailed",
             json_pack("{s:s,s:s}", "task", t->id, "error", why.data ? why.data : "out of memory"));
    else
        emit(inv, batch, "TaskFailed",
             json_pack("{s:s,s:i,s:s,s:b}", "task", t->id, "attempt", (int)t->attempt, "error",
                       why.data ? why.data : "out of memory", "retry", 0));
    if (rc < 0)
        json_decref(flow);
    fl_buf_release(&why);
}

static void add_flow(struct inv *inv, json_t *batch, size_t i, json_t *flow)
{
    add_flow_as(inv, batch, i, flow, NULL);
}

/* Task i failed for good and has a catch: add it (run.h, TaskAdded with
 * "catch"), as a workflow of one task "catch" whose input `error` (unless
 * it sets one) is the failure's message. A catch's `requires` mean
 * nothing (it runs once its task failed) and are left out. */
static void add_catch(struct inv *inv, json_t *batch, size_t i)
{
    const struct fl_wf_task_run *t = &inv->run.tasks[i];
    json_t *task = json_deep_copy(t->def->catch_spec);
    json_t *err = json_string(t->error ? t->error : "failed");
    json_t *in = task ? json_object_get(task, "inputs") : NULL;
    if (task != NULL && (in == NULL || json_is_null(in)))
        json_object_set_new(task, "inputs", json_pack("{s:O}", "error", err));
    else if (task != NULL && !json_is_object(in))
        json_object_set_new(task, "inputs", json_pack("{s:O,s:O}", "default", in, "error", err));
    else if (task != NULL && json_object_get(in, "error") == NULL)
        json_object_set(in, "error", err);
    if (task != NULL)
        json_object_del(task, "requires");
    json_decref(err);
    json_t *flow =
        task ? json_pack("{s:s,s:{s:o}}", "output", "catch", "tasks", "catch", task) : NULL;
    if (flow == NULL) {
        inv->broken = true; /* no memory: read the stream again later */
        return;
    }
    add_flow_as(inv, batch, i, flow, json_pack("{s:b}", "catch", 1));
}

/* The end of the dynamic task added for task i, as task i's own; when it
 * was task i's catch and failed, the error names both failures. */
static void child_outcome(struct inv *inv, json_t *batch, size_t i)
{
    const struct fl_wf_task_run *t = &inv->run.tasks[i];
    const struct fl_wf_task_run *c = &inv->run.tasks[t->child];
    if (c->status == FL_WF_TASK_FAILED && t->caught != NULL) {
        json_t *error =
            json_sprintf("%s; its catch failed too: %s", t->caught, c->error ? c->error : "failed");
        emit(inv, batch, "TaskFailed",
             json_pack("{s:s,s:i,s:s,s:b}", "task", t->id, "attempt", (int)t->attempt, "error",
                       error ? json_string_value(error) : "failed", "retry", 0));
        json_decref(error);
        return;
    }
    if (c->status == FL_WF_TASK_SUCCEEDED) {
        json_t *data =
            json_pack("{s:s,s:O}", "task", t->id, "output", c->output ? c->output : json_null());
        if (data != NULL && c->headers != NULL)
            json_object_set(data, "headers", c->headers);
        emit(inv, batch, "TaskSucceeded", data);
    } else if (c->status == FL_WF_TASK_FAILED) {
        emit(inv, batch, "TaskFailed",
             json_pack("{s:s,s:i,s:s,s:b}", "task", t->id, "attempt", (int)t->attempt, "error",
                       c->error ? c->error : "failed", "retry", 0));
    }
}

/* Task i names no built-in: when no function has that name and a workflow
 * has, it runs that workflow's current definition as its dynamic task
 * (TaskAdded with "run", the revision pinned there), unless workflows run
 * within each other deeper than ENGINE_WORKFLOW_DEPTH (a cycle, A runs B
 * runs A, ends there with the chain in the error). A function is called by
 * act() once TaskStarted is durable. */
static void run_workflow(struct inv *inv, json_t *batch, size_t i)
{
    struct fl_wf_engine *e = inv->e;
    const struct fl_wf_task_run *t = &inv->run.tasks[i];
    const struct fl_invoke_target target = {FL_INVOKE_FUNCTION, t->def->run};
    struct fl_invoke_capacity cap;
    struct wdef *def = engine_def(e, t->def->run);
    if (def == NULL || fl_invoker_capacity(e->invoker, &target, &cap) != FL_ENOENT)
        return;
    const char *names[ENGINE_WORKFLOW_DEPTH + 1];
    size_t n = 0;
    names[n++] = def->name;
    for (int p = t->parent; p >= 0 && n <= ENGINE_WORKFLOW_DEPTH; p = inv->run.tasks[p].parent)
        if (inv->run.tasks[p].runs_workflow)
            names[n++] = inv->run.tasks[p].def->run;
    if (n > ENGINE_WORKFLOW_DEPTH) {
        struct fl_buf why;
        fl_buf_init(&why, 8192);
        fl_buf_appendf(&why, "workflows run within each other more than %d deep: %s -> ...",
                       ENGINE_WORKFLOW_DEPTH, inv->run.workflow);
        while (n > 0)
            fl_buf_appendf(&why, " -> %s", names[--n]);
        emit(inv, batch, "TaskFailed",
             json_pack("{s:s,s:i,s:s,s:b}", "task", t->id, "attempt", (int)t->attempt, "error",
                       why.data ? why.data : "workflows run within each other too deep", "retry",
                       0));
        fl_buf_release(&why);
        return;
    }
    add_flow_as(inv, batch, i, json_deep_copy(def->spec),
                json_pack("{s:b,s:s,s:I}", "run", 1, "name", def->name, "revision",
                          (json_int_t)def->revision));
}

/* Start attempt `attempt` of task i; a built-in decided at once gets its
 * outcome in the same batch. */
static void start_attempt(struct inv *inv, json_t *batch, size_t i, uint32_t attempt)
{
    struct fl_wf_task_run *t = &inv->run.tasks[i];
    const char *id = t->id;
    emit(inv, batch, "TaskStarted", json_pack("{s:s,s:i}", "task", id, "attempt", (int)attempt));
    const struct builtin *b = builtin_find(t->def->run);
    if (b == NULL) {
        run_workflow(inv, batch, i); /* t moves */
        return;
    }
    json_t *out = NULL, *flow;
    char *error = NULL;
    char why[256];
    int64_t ms;
    switch (b->kind) {
    case BUILTIN_NOW:
        if (b->run(t->def, t->inputs, &out, &error) != 0) {
        } else if ((flow = builtin_flow(out)) != NULL) {
            json_decref(out);
            add_flow(inv, batch, i, flow); /* t moves */
            break;
        } else {
            emit(inv, batch, "TaskSucceeded", json_pack("{s:s,s:o}", "task", id, "output", out));
            break;
        }
        emit(inv, batch, "TaskFailed",
             json_pack("{s:s,s:i,s:s,s:b}", "task", id, "attempt", (int)attempt, "error",
                       error ? error : "out of memory", "retry", 0));
        free(error);
        break;
    case BUILTIN_EVAL:
    case BUILTIN_HTTP:
        break; /* act() runs it once this is durable */
    case BUILTIN_SLEEP:
        if (builtin_sleep_ms(t->inputs, &ms, why, sizeof(why)) == 0)
            emit(inv, batch, "TimerStarted",
                 json_pack("{s:s,s:s,s:I}", "task", id, "timer", "sleep", "fireAt",
                           (json_int_t)(fl_clock_wall_ms() + ms)));
        else
            emit(inv, batch, "TaskFailed",
                 json_pack("{s:s,s:i,s:s,s:b}", "task", id, "attempt", (int)attempt, "error", why,
                           "retry", 0));
        break;
    case BUILTIN_MISSING:
        snprintf(why, sizeof(why), "the built-in '%s' is not run by this version of flintd yet",
                 b->name);
        emit(inv, batch, "TaskFailed",
             json_pack("{s:s,s:i,s:s,s:b}", "task", id, "attempt", (int)attempt, "error", why,
                       "retry", 0));
        break;
    }
}

/* ---- expressions ---- */

/* One task's expressions on their way to the evaluator (exprc.h). */
struct evaluation {
    struct inv *inv;
    size_t task;
    bool js;       /* a javascript task's run, not its inputs */
    json_t *where; /* per expression: "inputs.<key>: {<source>}", for errors */
};

struct collect {
    json_t *exprs, *where;
    json_t *sources; /* each expression as written (exprs may wrap it) */
    const char *key;
    bool first; /* a reserved input's whole value: its value goes into $ */
};

/*
 * The order a task's inputs are evaluated in: first those whose key starts
 * with '_' (the ones control-flow built-ins add: _item, _prev, _count, as
 * Fission Workflows' priority), then the others; in each pass, in the
 * definition's order. An expression that is a reserved input's whole
 * value also sets $.Tasks[taskId].Inputs[key], so the others see its value
 * (`{ task().Inputs._prev + 1 }`), as they would in Fission Workflows.
 */
static bool input_in_pass(const struct fl_wf_input *in, int pass)
{
    return in->has_expr && (in->key[0] == '_') == (pass == 0);
}

static int collect_expr(void *arg, const char *src, size_t n)
{
    struct collect *c = arg;
    int shown = n > 200 ? 200 : (int)n;
    json_t *text = json_stringn(src, n);
    if (json_array_append_new(c->sources, json_stringn(src, n)) < 0) {
        json_decref(text);
        return FL_ENOMEM;
    }
    if (c->first && text != NULL) {
        json_t *key = json_string(c->key);
        char *k = key ? json_dumps(key, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
        json_t *set =
            k ? json_sprintf("$.Tasks[taskId].Inputs[%s] = (%.*s)", k, (int)n, src) : NULL;
        free(k);
        json_decref(key);
        json_decref(text);
        text = set;
    }
    if (json_array_append_new(c->exprs, text) < 0 ||
        json_array_append_new(c->where, json_sprintf("inputs.%s: {%.*s%s}", c->key, shown, src,
                                                     (size_t)shown < n ? "..." : "")) < 0)
        return FL_ENOMEM;
    return 0;
}

/* v with each expression (fl_wf_is_expr) replaced by the next of values,
 * from *k on, in fl_wf_each_expr()'s order. A new reference, or NULL. */
static json_t *substitute(json_t *v, json_t *values, size_t *k)
{
    json_t *out = NULL, *item;
    if (json_is_string(v) && fl_wf_is_expr(json_string_value(v), json_string_length(v))) {
        json_t *value = json_array_get(values, (*k)++);
        return value ? json_incref(value) : json_null();
    }
    if (json_is_array(v)) {
        size_t i;
        out = json_array();
        json_array_foreach(v, i, item)
        {
            if (out != NULL && json_array_append_new(out, substitute(item, values, k)) < 0) {
                json_decref(out);
                out = NULL;
            }
        }
        return out;
    }
    if (json_is_object(v)) {
        const char *key;
        out = json_object();
        json_object_foreach(v, key, item)
        {
            if (out != NULL && json_object_set_new(out, key, substitute(item, values, k)) < 0) {
                json_decref(out);
                out = NULL;
            }
        }
        return out;
    }
    return json_incref(v);
}

/* The scope $ of task current's expressions, Fission Workflows' shape: {Workflow: {Id,
 * Name, Revision, Status}, Invocation: {Id, CreatedAt, Inputs}, Tasks:
 * {id: {Id, Function, Status, CreatedAt, UpdatedAt, Requires, Inputs (as
 * scheduled, else as written), Output, OutputHeaders}}}. New, or NULL. */
static json_t *expr_scope(const struct fl_wf_run *r, size_t current)
{
    json_t *tasks = json_object();
    const struct fl_wf_task_run *cur = &r->tasks[current];
    for (size_t i = 0; tasks != NULL && i < r->ntasks; i++) {
        const struct fl_wf_task_run *t = &r->tasks[i];
        bool has_expr;
        /* the top level, and the tasks of the current one's own added
         * workflow by their ids in it (over the top level's) */
        if (t->scope_len != 0 &&
            (t->scope_len != cur->scope_len || strncmp(t->id, cur->id, t->scope_len) != 0))
            continue;
        json_t *requires = json_array();
        for (size_t k = 0; requires != NULL && k < t->def->nrequires; k++)
            json_array_append_new(requires, json_string(t->def->requires[k]));
        json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:o,s:o,s:O,s:o,s:s?}", "Id", t->id, "Function",
                              t->def->run, "Status", fl_wf_task_status_name(t->status), "CreatedAt",
                              (json_int_t)t->scheduled_ms, "UpdatedAt",
                              (json_int_t)(t->ended_ms     ? t->ended_ms
                                           : t->started_ms ? t->started_ms
                                                           : t->scheduled_ms),
                              "Requires", requires, "Inputs",
                              t->inputs ? json_incref(t->inputs) : static_inputs(t->def, &has_expr),
                              "Output", t->output ? t->output : json_null(), "OutputHeaders",
                              t->headers ? json_incref(t->headers) : json_object(), "Error",
                              t->caught ? t->caught : t->error);
        if (o == NULL || json_object_set_new(tasks, t->id + t->scope_len, o) < 0) {
            json_decref(tasks);
            tasks = NULL;
        }
    }
    if (tasks == NULL)
        return NULL;
    /* in a workflow a task runs, the invocation's inputs are that task's */
    json_t *inputs = r->inputs;
    for (int p = cur->parent; p >= 0; p = r->tasks[p].parent)
        if (r->tasks[p].runs_workflow) {
            inputs = r->tasks[p].inputs;
            break;
        }
    return json_pack("{s:{s:s,s:s,s:I,s:s},s:{s:s,s:I,s:o},s:o}", "Workflow", "Id", r->workflow,
                     "Name", r->workflow, "Revision", (json_int_t)r->revision, "Status", "ready",
                     "Invocation", "Id", r->id, "CreatedAt", (json_int_t)r->created_ms, "Inputs",
                     inputs ? json_incref(inputs) : json_object(), "Tasks", tasks);
}

/* expr_scope() for task i, shared by the tasks of one workflow (the top
 * level, or one added workflow) while the fold is unchanged: the tasks a
 * foreach starts together evaluate with one scope, not one each. A new
 * reference, or NULL. */
static json_t *scope_for(struct inv *inv, size_t i)
{
    const struct fl_wf_task_run *t = &inv->run.tasks[i];
    if (inv->scope != NULL && inv->scope_events == inv->run.events &&
        inv->scope_len == t->scope_len && strncmp(inv->scope_of, t->id, t->scope_len) == 0)
        return json_incref(inv->scope);
    json_t *scope = expr_scope(&inv->run, i);
    char *of = strndup(t->id, t->scope_len);
    json_decref(inv->scope);
    free(inv->scope_of);
    inv->scope = NULL;
    inv->scope_of = NULL;
    if (scope != NULL && of != NULL) {
        inv->scope = json_incref(scope);
        inv->scope_of = of;
        inv->scope_len = t->scope_len;
        inv->scope_events = inv->run.events;
    } else {
        free(of);
    }
    return scope;
}

/* Why an evaluation failed as a whole, naming its first expression. */
static char *eval_failure(json_t *where, const char *error)
{
    size_t n = json_array_size(where);
    json_t *s = json_sprintf("%s: %s%s", json_string_value(json_array_get(where, 0)), error,
                             n > 1 ? " (evaluating the task's expressions together)" : "");
    char *out = s ? strdup(json_string_value(s)) : NULL;
    json_decref(s);
    return out;
}

static void js_outcome(struct inv *inv, size_t i, int status, json_t *answer, const char *error);
static json_t *resolved_inputs(const struct fl_wf_task *def, json_t *written, json_t *values);

static void on_evaluated(void *data, int status, json_t *answer, const char *error)
{
    struct evaluation *ev = data;
    struct inv *inv = ev->inv;
    struct fl_wf_engine *e = inv->e;
    inv->ops--;
    inv->evaluating--;
    if (inv->gone || e->closing) {
        json_decref(ev->where);
        free(ev);
        inv_maybe_free(inv);
        engine_op_done(e);
        return;
    }
    struct trun *rt = &inv->rt[ev->task];
    const struct fl_wf_task_run *t = &inv->run.tasks[ev->task];
    rt->evaluating = false;
    if (ev->js) {
        js_outcome(inv, ev->task, status, answer, error);
    } else if (status == FL_EAGAIN) {
        rt->busy_until = fl_clock_wall_ms() + ENGINE_BUSY_RETRY_MS; /* the queue is full */
    } else if (status < 0) {
        rt->expr_error = eval_failure(ev->where, error ? error : fl_errname(status));
    } else {
        json_t *results = json_object_get(answer, "results");
        json_t *values = json_array();
        for (size_t k = 0; values != NULL && k < json_array_size(ev->where); k++) {
            json_t *r = json_array_get(results, k);
            json_t *err = json_object_get(r, "error");
            if (r == NULL || err != NULL) {
                json_t *why =
                    json_sprintf("%s: %s", json_string_value(json_array_get(ev->where, k)),
                                 err ? json_string_value(err) : "the evaluator gave no result");
                rt->expr_error = why ? strdup(json_string_value(why)) : NULL;
                json_decref(why);
                break;
            }
            json_t *v = json_object_get(r, "value");
            json_array_append(values, v ? v : json_null());
        }
        if (rt->expr_error == NULL && values != NULL) {
            bool has_expr;
            json_t *written = static_inputs(t->def, &has_expr);
            rt->resolved = resolved_inputs(t->def, written, values);
            json_decref(written);
        }
        json_decref(values);
        if (rt->resolved == NULL && rt->expr_error == NULL)
            rt->expr_error = strdup("out of memory evaluating the task's expressions");
    }
    json_decref(ev->where);
    free(ev);
    step(inv);
    engine_op_done(e);
}

/* Whether src (n bytes between the braces) is a plain lookup,
 * output('ID') with spaces around, ID without quotes or backslashes:
 * then ID into id. */
static bool plain_output(const char *src, size_t n, char *id, size_t size)
{
    while (n > 0 && (*src == ' ' || *src == '\t'))
        src++, n--;
    while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\t'))
        n--;
    if (n < 11 || strncmp(src, "output(", 7) != 0 || src[n - 1] != ')' ||
        (src[7] != '\'' && src[7] != '"') || src[n - 2] != src[7])
        return false;
    size_t len = n - 10;
    if (len == 0 || len >= size || memchr(src + 8, '\\', len) || memchr(src + 8, '\'', len) ||
        memchr(src + 8, '"', len))
        return false;
    memcpy(id, src + 8, len);
    id[len] = '\0';
    return true;
}

/* Every expression of exprs is a plain output() lookup: their values from
 * the fold, as the evaluator would give them (a task that does not exist
 * or has no output: null), a new array; else NULL. Spares the evaluator a
 * round trip, and keeps a foreach's collector of a thousand outputs fast. */
static json_t *plain_values(const struct fl_wf_run *r, size_t i, json_t *exprs)
{
    json_t *values = json_array(), *e;
    size_t k;
    char id[FL_WF_ID_MAX * 2 + 32];
    json_array_foreach(exprs, k, e)
    {
        if (!plain_output(json_string_value(e), json_string_length(e), id, sizeof(id))) {
            json_decref(values);
            return NULL;
        }
        int t = fl_wf_run_lookup(r, i, id);
        json_t *v = t >= 0 && r->tasks[t].output ? r->tasks[t].output : json_null();
        if (values != NULL && json_array_append(values, v) < 0) {
            json_decref(values);
            values = NULL;
        }
    }
    return values;
}

/* inputs as written (static_inputs()) with values put in for each
 * expression in the order collect_expr() took them: a new value or NULL. */
static json_t *resolved_inputs(const struct fl_wf_task *def, json_t *written, json_t *values)
{
    size_t k = 0;
    json_t *resolved = json_copy(written);
    for (int pass = 0; pass < 2 && resolved != NULL; pass++)
        for (size_t j = 0; j < def->ninputs; j++) {
            const struct fl_wf_input *in = &def->inputs[j];
            if (input_in_pass(in, pass))
                json_object_set_new(resolved, in->key,
                                    substitute(json_object_get(written, in->key), values, &k));
        }
    return resolved;
}

/*
 * Task i's inputs, its expressions evaluated: 0 and *inputs (a new value)
 * when it has none or they have been evaluated; 1 while they are being
 * evaluated (one batch for the task, sent from here: the task waits and
 * its outcome comes through step()); a negative FL_E* with *inputs (as
 * written) and why when they cannot be.
 */
static int resolve_inputs(struct inv *inv, size_t i, json_t **inputs, char *why, size_t size)
{
    struct fl_wf_engine *e = inv->e;
    const struct fl_wf_task *def = inv->run.tasks[i].def;
    struct trun *rt = &inv->rt[i];
    bool has_expr;
    if (rt->evaluating || (rt->busy_until > 0 && rt->busy_until > fl_clock_wall_ms()))
        return 1;
    if (rt->resolved != NULL) {
        *inputs = rt->resolved;
        rt->resolved = NULL;
        return 0;
    }
    *inputs = static_inputs(def, &has_expr);
    if (*inputs == NULL)
        return FL_ENOMEM;
    if (!has_expr)
        return 0;
    if (rt->expr_error != NULL) {
        snprintf(why, size, "%s", rt->expr_error);
        return FL_EINVAL;
    }
    if (inv->evaluating >= ENGINE_EVALS_MAX) {
        json_decref(*inputs);
        *inputs = NULL;
        return 1; /* on_evaluated() steps it in when one comes back */
    }
    if (e->exprc == NULL) {
        snprintf(why, size,
                 "this flintd has no expression evaluator (flint-expr could not start), and an "
                 "input of task '%s' is an expression",
                 def->id);
        return FL_ENOTSUP;
    }
    struct evaluation *ev = calloc(1, sizeof(*ev));
    struct collect c = {json_array(), json_array(), json_array(), NULL, false};
    json_t *scope = scope_for(inv, i);
    int rc = ev && c.exprs && c.where && c.sources && scope ? 0 : FL_ENOMEM;
    for (int pass = 0; pass < 2; pass++)
        for (size_t k = 0; rc == 0 && k < def->ninputs; k++) {
            const struct fl_wf_input *in = &def->inputs[k];
            c.key = in->key;
            c.first = pass == 0 && json_is_string(in->value);
            if (input_in_pass(in, pass))
                rc = fl_wf_each_expr(in->value, collect_expr, &c);
        }
    json_t *plain = rc == 0 ? plain_values(&inv->run, i, c.sources) : NULL;
    json_decref(c.sources);
    if (plain != NULL) {
        json_t *resolved = resolved_inputs(def, *inputs, plain);
        json_decref(plain);
        json_decref(scope);
        json_decref(c.exprs);
        json_decref(c.where);
        free(ev);
        json_decref(*inputs);
        *inputs = resolved;
        return resolved ? 0 : FL_ENOMEM;
    }
    json_t *req = NULL;
    if (rc == 0) {
        req = json_pack("{s:s,s:o,s:O,s:b}", "task",
                        inv->run.tasks[i].id + inv->run.tasks[i].scope_len, "scope", scope, "exprs",
                        c.exprs, "check", 0); /* takes scope, even when it fails */
        rc = req != NULL ? 0 : FL_ENOMEM;
    } else {
        json_decref(scope);
    }
    if (rc == 0) {
        *ev = (struct evaluation){inv, i, false, c.where};
        rc = fl_wf_exprc_eval(e->exprc, req, on_evaluated, ev);
    }
    json_decref(req);
    json_decref(c.exprs);
    if (rc == 0) {
        rt->evaluating = true;
        inv->evaluating++;
        inv->ops++;
        engine_op(e);
        json_decref(*inputs);
        *inputs = NULL;
        return 1;
    }
    json_decref(c.where);
    free(ev);
    if (rc == FL_EAGAIN || rc == FL_ENOMEM) {
        rt->busy_until = fl_clock_wall_ms() + ENGINE_BUSY_RETRY_MS; /* again later */
        json_decref(*inputs);
        *inputs = NULL;
        return 1;
    }
    snprintf(why, size, "the expressions of task '%s' cannot be evaluated: %s", def->id,
             rc == FL_ETOOBIG ? "their scope is too big for the evaluator" : fl_strerror(rc));
    return rc;
}

/* Post the outcome of javascript task i's evaluation. */
static void js_outcome(struct inv *inv, size_t i, int status, json_t *answer, const char *error)
{
    struct trun *rt = &inv->rt[i];
    const struct fl_wf_task_run *t = &inv->run.tasks[i];
    if (status == FL_EAGAIN) {
        rt->busy_until = fl_clock_wall_ms() + ENGINE_BUSY_RETRY_MS; /* the queue is full */
        return;
    }
    json_t *results = json_object_get(answer, "results");
    json_t *err = NULL;
    for (size_t k = 0; status == 0 && err == NULL && k < json_array_size(results); k++)
        err = json_object_get(json_array_get(results, k), "error");
    json_t *value = json_object_get(json_array_get(results, 1), "value");
    rt->outcome_pending = true;
    if (status == 0 && err == NULL && value != NULL) {
        post(inv, "TaskSucceeded", json_pack("{s:s,s:O}", "task", t->id, "output", value));
        return;
    }
    char why[1024];
    snprintf(why, sizeof(why), "javascript: %s",
             status < 0 ? (error ? error : fl_errname(status))
             : err      ? json_string_value(err)
                        : "the evaluator gave no result");
    post(inv, "TaskFailed",
         json_pack("{s:s,s:i,s:s,s:b}", "task", t->id, "attempt", (int)t->attempt, "error", why,
                   "retry", 0));
}

/* Run javascript task i's attempt: its expr in the evaluator. */
static void js_start(struct inv *inv, size_t i)
{
    struct fl_wf_engine *e = inv->e;
    struct trun *rt = &inv->rt[i];
    const struct fl_wf_task_run *t = &inv->run.tasks[i];
    json_t *exprs = NULL, *req = NULL;
    char *error = NULL;
    int rc = builtin_js_exprs(t->inputs, &exprs, &error);
    if (rc == 0 && e->exprc == NULL) {
        rc = FL_ENOTSUP;
        error = strdup("this flintd has no expression evaluator (flint-expr could not start)");
    }
    struct evaluation *ev = rc == 0 ? calloc(1, sizeof(*ev)) : NULL;
    if (rc == 0) {
        req = json_pack("{s:s,s:o,s:o,s:b}", "task", t->id + t->scope_len, "scope",
                        scope_for(inv, i), "exprs", exprs, "check", 0);
        exprs = NULL;
        rc = req && ev ? 0 : FL_ENOMEM;
    }
    if (rc == 0) {
        *ev = (struct evaluation){inv, i, true, NULL};
        rc = fl_wf_exprc_eval(e->exprc, req, on_evaluated, ev);
    }
    json_decref(req);
    json_decref(exprs);
    if (rc == 0) {
        rt->evaluating = true;
        inv->evaluating++;
        inv->ops++;
        engine_op(e);
        return;
    }
    free(ev);
    if (rc == FL_EAGAIN || rc == FL_ENOMEM) {
        rt->busy_until = fl_clock_wall_ms() + ENGINE_BUSY_RETRY_MS;
        free(error);
        return;
    }
    rt->outcome_pending = true;
    char why[1024];
    snprintf(why, sizeof(why), "%s%s",
             error ? "" : "javascript: ", error ? error : fl_strerror(rc));
    post(inv, "TaskFailed",
         json_pack("{s:s,s:i,s:s,s:b}", "task", t->id, "attempt", (int)t->attempt, "error", why,
                   "retry", 0));
    free(error);
    rt->busy_until = fl_clock_wall_ms(); /* the timer steps it in at once */
}

/* Schedule the tasks whose dependencies are met (and what built-ins decide
 * at once), until nothing more is ready. */
static void schedule(struct inv *inv, json_t *batch)
{
    bool more = true;
    while (more && !fl_wf_run_ended(&inv->run)) {
        more = false;
        for (size_t i = 0; i < inv->run.ntasks; i++) {
            struct fl_wf_task_run *t = &inv->run.tasks[i];
            if (t->status == FL_WF_TASK_RUNNING && t->child >= 0) {
                enum fl_wf_task_status cs = inv->run.tasks[t->child].status;
                if (cs == FL_WF_TASK_SUCCEEDED || cs == FL_WF_TASK_FAILED) {
                    child_outcome(inv, batch, i);
                    more = true;
                }
                continue;
            }
            if (t->status == FL_WF_TASK_FAILED && t->def->catch_spec != NULL && t->caught == NULL) {
                add_catch(inv, batch, i); /* t moves */
                more = true;
                continue;
            }
            if (t->status == FL_WF_TASK_SCHEDULED) {
                start_attempt(inv, batch, i, t->attempt + 1);
                more = true;
                continue;
            }
            if (t->status != FL_WF_TASK_PENDING || !fl_wf_run_deps_met(&inv->run, i))
                continue;
            json_t *inputs = NULL;
            char why[1024];
            int rc = resolve_inputs(inv, i, &inputs, why, sizeof(why));
            if (rc == FL_ENOMEM && inputs == NULL)
                return;
            if (rc == 1)
                continue; /* its expressions are being evaluated */
            emit(inv, batch, "TaskScheduled",
                 json_pack("{s:s,s:o}", "task", t->id, "inputs", inputs ? inputs : json_null()));
            if (rc < 0)
                emit(inv, batch, "TaskFailed",
                     json_pack("{s:s,s:i,s:s,s:b}", "task", t->id, "attempt", 0, "error", why,
                               "retry", 0));
            else
                start_attempt(inv, batch, i, 1);
            more = true;
        }
    }
}

/* Whether task i's failure was handed to a task that caught it: it is in
 * the dynamic workflow of a task whose catch was added after it (the
 * catch, not this failure, decides how that task ends). */
static bool failure_caught(const struct fl_wf_run *r, size_t i)
{
    for (int p = r->tasks[i].parent; p >= 0; p = r->tasks[p].parent)
        if (r->tasks[p].caught != NULL && r->tasks[p].child > (int)i)
            return true;
    return false;
}

/* The invocation's end, if it has come. */
static void conclude(struct inv *inv, json_t *batch)
{
    struct fl_wf_run *r = &inv->run;
    if (fl_wf_run_ended(r))
        return;
    if (r->wf.timeout_ms > 0 && fl_clock_wall_ms() >= r->created_ms + r->wf.timeout_ms) {
        char d[32], why[96];
        snprintf(why, sizeof(why), "the workflow's timeout of %s passed",
                 fl_fmt_duration_ms(r->wf.timeout_ms, d, sizeof(d)));
        emit(inv, batch, "InvocationFailed", json_pack("{s:s,s:s}", "task", "", "error", why));
        return;
    }
    bool all = true;
    for (size_t i = 0; i < r->ntasks; i++) {
        const struct fl_wf_task_run *t = &r->tasks[i];
        if (t->status == FL_WF_TASK_FAILED && failure_caught(r, i))
            continue;
        if (t->status == FL_WF_TASK_FAILED) {
            emit(inv, batch, "InvocationFailed",
                 json_pack("{s:s,s:s}", "task", t->id, "error", t->error ? t->error : ""));
            return;
        }
        if (t->status != FL_WF_TASK_SUCCEEDED)
            all = false;
    }
    if (!all)
        return;
    int out = fl_wf_run_task(r, r->wf.output);
    json_t *data = json_pack("{s:O}", "output",
                             out >= 0 && r->tasks[out].output ? r->tasks[out].output : json_null());
    if (data != NULL && out >= 0 && r->tasks[out].headers != NULL)
        json_object_set(data, "headers", r->tasks[out].headers);
    emit(inv, batch, "InvocationSucceeded", data);
}

static void step(struct inv *inv)
{
    if (inv->appending || inv->gone || inv->e->closing)
        return;
    json_t *batch = json_array();
    if (batch == NULL)
        return;
    size_t n = json_array_size(inv->outbox);
    for (size_t k = 0; k < n; k++) {
        json_t *pair = json_array_get(inv->outbox, k);
        const char *type = json_string_value(json_array_get(pair, 0));
        json_t *data = json_array_get(pair, 1);
        int i = fl_wf_run_task(&inv->run, json_string_value(json_object_get(data, "task")));
        if (strcmp(type, "TaskAdded") == 0 && i >= 0)
            add_flow(inv, batch, (size_t)i, json_incref(json_object_get(data, "workflow")));
        else
            emit(inv, batch, type, json_incref(data));
    }
    json_array_clear(inv->outbox);
    for (size_t i = 0; i < inv->run.ntasks; i++)
        inv->rt[i].outcome_pending = false;
    schedule(inv, batch);
    conclude(inv, batch);
    if (inv->broken) {
        /* this copy of the state is not the stream's: read it again */
        json_decref(batch);
        struct fl_wf_engine *e = inv->e;
        char id[FL_UUID_STRLEN + 1];
        fl_strlcpy(id, inv->run.id, sizeof(id));
        answer_waiters(inv, 503, "engine_error", "the engine could not record the invocation");
        inv_release(inv);
        engine_recover(e, id);
        return;
    }
    if (json_array_size(batch) == 0) {
        json_decref(batch);
        act(inv);
        return;
    }
    int rc = append(inv, batch, false);
    if (rc < 0) {
        fl_log(FL_LOG_ERROR, "wf", "cannot record an invocation's events", "invocation=%s err=%s",
               inv->run.id, fl_errname(rc));
        answer_waiters(inv, 503, "store_unavailable", "the store failed to record the invocation");
        inv_release(inv);
    }
}

/* ---- calling functions ---- */

static void dispatch_free(struct dispatch *d)
{
    json_decref(d->inputs);
    free(d->body);
    free(d);
}

/* A function's output of type application/vnd.flint.task+json or
 * workflow+json: its workflow spec (a new value), or NULL and why. */
static json_t *attempt_flow(const struct fl_wf_task_run *t, const char *ctype,
                            const struct fl_invoke_outcome *o, char *error, size_t size)
{
    json_error_t jerr;
    bool task = strncasecmp(ctype, FL_WF_CTYPE_TASK, strlen(FL_WF_CTYPE_TASK)) == 0;
    json_t *v = json_loadb(o->body, o->body_len, 0, &jerr);
    json_t *flow = NULL;
    if (v == NULL)
        snprintf(error, size, "the output of function '%s' is %s but not JSON: %s", t->def->run,
                 ctype, jerr.text);
    else if (!json_is_object(v))
        snprintf(error, size, "the output of function '%s' is %s but not a map", t->def->run,
                 ctype);
    else if (task)
        flow = json_pack("{s:s,s:{s:O}}", "output", "main", "tasks", "main", v);
    else
        flow = json_incref(v);
    json_decref(v);
    if (flow == NULL && error[0] == '\0')
        snprintf(error, size, "out of memory reading the output of function '%s'", t->def->run);
    return flow;
}

/* The idempotency key of task i's running attempt into out. */
static void attempt_key(const struct inv *inv, size_t i, char *out, size_t size)
{
    const struct fl_wf_task_run *t = &inv->run.tasks[i];
    snprintf(out, size, "%s/%s/%u", inv->run.id, t->id, (unsigned)t->attempt);
}

/* Attempt `attempt` of task i failed with error: TaskFailed for the
 * outbox, and a retry timer when the task's policy allows another. */
static void fail_attempt(struct inv *inv, size_t i, uint32_t attempt, const char *error)
{
    const struct fl_wf_task_run *t = &inv->run.tasks[i];
    const struct fl_retry_policy *p = &t->def->retry;
    bool retry = attempt < p->max_attempts;
    post(inv, "TaskFailed",
         json_pack("{s:s,s:i,s:s,s:b}", "task", t->id, "attempt", (int)attempt, "error", error,
                   "retry", retry));
    if (retry)
        post(inv, "TimerStarted",
             json_pack("{s:s,s:s,s:I}", "task", t->id, "timer", "retry", "fireAt",
                       (json_int_t)(fl_clock_wall_ms() + fl_retry_delay_ms(p, attempt))));
}

/* The outcome of a function attempt as events for the outbox. */
static void attempt_outcome(struct inv *inv, size_t i, uint32_t attempt,
                            const struct fl_invoke_outcome *o)
{
    struct fl_wf_engine *e = inv->e;
    struct fl_wf_task_run *t = &inv->run.tasks[i];
    const char *id = t->id;
    char error[1024] = "";
    json_t *output = NULL, *flow = NULL;
    if (o->error == FL_INVOKE_OK && o->status >= 200 && o->status < 300) {
        const char *ctype = NULL;
        for (size_t k = 0; k < o->nheaders; k++)
            if (o->headers[k].name_len == 12 &&
                strncasecmp(o->headers[k].name, "content-type", 12) == 0)
                ctype = o->headers[k].value;
        if (o->body_len > e->max_output)
            snprintf(error, sizeof(error),
                     "the output of function '%s' is %zu bytes, more than the %zu a task keeps",
                     t->def->run, o->body_len, e->max_output);
        else if (ctype != NULL &&
                 (strncasecmp(ctype, FL_WF_CTYPE_TASK, strlen(FL_WF_CTYPE_TASK)) == 0 ||
                  strncasecmp(ctype, FL_WF_CTYPE_WORKFLOW, strlen(FL_WF_CTYPE_WORKFLOW)) == 0))
            flow = attempt_flow(t, ctype, o, error, sizeof(error));
        else if (ctype != NULL && strstr(ctype, "json") != NULL)
            output = json_loadb(o->body, o->body_len, JSON_DECODE_ANY, NULL);
        if (error[0] == '\0' && output == NULL && flow == NULL)
            output = o->body_len ? json_stringn(o->body, o->body_len) : json_null();
        if (error[0] == '\0' && output == NULL && flow == NULL)
            snprintf(error, sizeof(error), "the output of function '%s' is not text", t->def->run);
    } else if (o->error == FL_INVOKE_OK) {
        snprintf(error, sizeof(error), "function '%s' answered %d: %.*s", t->def->run, o->status,
                 (int)(o->body_len < 600 ? o->body_len : 600), o->body ? o->body : "");
    } else {
        snprintf(error, sizeof(error), "function '%s': %s", t->def->run,
                 o->message ? o->message : fl_invoke_error_name(o->error));
    }
    if (flow != NULL) {
        post(inv, "TaskAdded", json_pack("{s:s,s:o}", "task", id, "workflow", flow));
        return;
    }
    if (output != NULL) {
        json_t *h = fl_wf_headers_json(o->headers, o->nheaders);
        post(inv, "TaskSucceeded",
             json_pack("{s:s,s:o,s:o}", "task", id, "output", output, "headers",
                       h ? h : json_object()));
        return;
    }
    fail_attempt(inv, i, attempt, error);
}

/* One http task's request: the task it runs for. */
struct http_run {
    struct inv *inv;
    size_t task;
    uint32_t attempt;
};

static void on_http(void *data, json_t *output, json_t *headers, const char *error)
{
    struct http_run *h = data;
    struct inv *inv = h->inv;
    struct fl_wf_engine *e = inv->e;
    inv->ops--;
    inv->rt[h->task].http = NULL;
    if (!inv->gone && !e->closing) {
        inv->rt[h->task].outcome_pending = true;
        if (error != NULL)
            fail_attempt(inv, h->task, h->attempt, error);
        else
            post(inv, "TaskSucceeded",
                 json_pack("{s:s,s:O,s:o}", "task", inv->run.tasks[h->task].id, "output", output,
                           "headers", headers ? json_incref(headers) : json_object()));
    }
    free(h);
    if (!inv->gone && !e->closing)
        step(inv);
    inv_maybe_free(inv);
}

/* Run http task i's attempt: its request on the engine's HTTP client. */
static void http_start(struct inv *inv, size_t i)
{
    const struct fl_wf_task_run *t = &inv->run.tasks[i];
    struct http_run *h = calloc(1, sizeof(*h));
    char why[1024];
    int rc = FL_ENOMEM;
    snprintf(why, sizeof(why), "out of memory");
    if (h != NULL) {
        *h = (struct http_run){inv, i, t->attempt};
        char key[ENGINE_KEY_MAX];
        attempt_key(inv, i, key, sizeof(key));
        rc = http_task_start(inv->e, t->inputs, t->def->timeout_ms, key, on_http, h,
                             &inv->rt[i].http, why, sizeof(why));
    }
    if (rc == 0) {
        inv->ops++;
        return;
    }
    free(h);
    inv->rt[i].outcome_pending = true;
    fail_attempt(inv, i, t->attempt, why);
    inv->rt[i].busy_until = fl_clock_wall_ms(); /* the timer steps it in at once */
}

static void on_call(const struct fl_invoke_outcome *o, void *data)
{
    struct dispatch *d = data;
    struct inv *inv = d->inv;
    struct fl_wf_engine *e = inv->e;
    inv->ops--;
    if (d->canceled || inv->gone || e->closing) {
        dispatch_free(d);
        inv_maybe_free(inv);
        engine_op_done(e);
        return;
    }
    struct trun *rt = &inv->rt[d->task];
    rt->call = NULL;
    if (o->error == FL_INVOKE_BUSY) {
        /* full: the same attempt again in a moment, nothing recorded */
        rt->busy_until = fl_clock_wall_ms() + ENGINE_BUSY_RETRY_MS + (int64_t)(d->task % 50);
    } else {
        rt->outcome_pending = true;
        attempt_outcome(inv, d->task, d->attempt, o);
    }
    dispatch_free(d);
    step(inv);
    engine_op_done(e);
}

/* Percent-encode s into out for a query (RFC 3986 unreserved kept). */
static int query_append(struct fl_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        int rc = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                         c == '-' || c == '.' || c == '_' || c == '~'
                     ? fl_buf_appendc(out, (char)c)
                     : fl_buf_appendf(out, "%%%c%c", hex[c >> 4], hex[c & 15]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Call the function of task i's running attempt. */
static void dispatch(struct inv *inv, size_t i)
{
    struct fl_wf_engine *e = inv->e;
    struct fl_wf_task_run *t = &inv->run.tasks[i];
    struct dispatch *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return;
    d->inv = inv;
    d->task = i;
    d->attempt = t->attempt;
    d->inputs = t->inputs ? json_incref(t->inputs) : json_object();
    json_t *in = d->inputs;
    /* the body: `body`, else `default` */
    json_t *b = json_object_get(in, "body");
    if (b == NULL)
        b = json_object_get(in, "default");
    const char *body = "";
    size_t body_len = 0;
    bool is_json = false;
    if (json_is_string(b)) {
        body = json_string_value(b);
        body_len = json_string_length(b);
    } else if (b != NULL && !json_is_null(b)) {
        d->body = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
        body = d->body ? d->body : "";
        body_len = strlen(body);
        is_json = true;
    }
    size_t nh = 0;
    bool has_ctype = false;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(in, "headers"), k, v)
    {
        if (!json_is_string(v) || nh + 1 >= FL_INVOKE_MAX_HEADERS)
            continue;
        if (strcasecmp(k, "content-type") == 0)
            has_ctype = true;
        d->headers[nh++] =
            (struct fl_http_header){k, strlen(k), json_string_value(v), json_string_length(v)};
    }
    if (is_json && !has_ctype)
        d->headers[nh++] = (struct fl_http_header){"Content-Type", 12, "application/json", 16};
    /* the query: a map, or a string as it is */
    struct fl_buf query;
    fl_buf_init(&query, 16384);
    json_t *q = json_object_get(in, "query");
    const char *query_text = NULL;
    if (json_is_string(q)) {
        query_text = json_string_value(q);
    } else if (json_is_object(q)) {
        json_object_foreach(q, k, v)
        {
            char num[64];
            const char *value = json_is_string(v) ? json_string_value(v) : NULL;
            if (value == NULL && json_is_number(v)) {
                snprintf(num, sizeof(num), "%g", json_number_value(v));
                value = num;
            }
            if (value == NULL)
                continue;
            if ((query.len > 0 && fl_buf_appendc(&query, '&') < 0) || query_append(&query, k) < 0 ||
                fl_buf_appendc(&query, '=') < 0 || query_append(&query, value) < 0)
                break;
        }
        query_text = query.len > 0 ? query.data : NULL;
    }
    const char *method = json_string_value(json_object_get(in, "method"));
    char key[ENGINE_KEY_MAX], trigger[16 + FL_NAME_MAX];
    attempt_key(inv, i, key, sizeof(key));
    snprintf(trigger, sizeof(trigger), "workflow/%s", inv->run.workflow);
    const struct fl_http_header added[] = {
        {"X-Flint-Workflow", 16, inv->run.workflow, strlen(inv->run.workflow)},
        {"X-Flint-Task-Id", 15, t->id, strlen(t->id)},
        {"X-Flint-Idempotency-Key", 23, key, strlen(key)},
    };
    const struct fl_invoke_request req = {
        .target = {FL_INVOKE_FUNCTION, t->def->run},
        .method = method && method[0] ? method : "POST",
        .path = "/",
        .query = query_text,
        .headers = d->headers,
        .nheaders = nh,
        .added = added,
        .nadded = sizeof(added) / sizeof(added[0]),
        .body = body,
        .body_len = body_len,
        .invocation_id = inv->run.id,
        .attempt = t->attempt,
        .deadline_ns = t->def->timeout_ms > 0
                           ? fl_clock_mono_ns() + (uint64_t)t->def->timeout_ms * 1000000ull
                           : 0,
        .trigger = FL_TRIGGER_WORKFLOW,
        .trigger_name = trigger,
    };
    inv->rt[i].call = d;
    inv->rt[i].busy_until = 0;
    inv->ops++;
    engine_op(e);
    int rc = fl_invoke_start(e->invoker, &req, on_call, d, &d->call);
    fl_buf_release(&query);
    if (rc == 0)
        return;
    inv->ops--;
    engine_op_done(e);
    inv->rt[i].call = NULL;
    dispatch_free(d);
    if (rc == FL_ECANCELED || rc == FL_ENOMEM) {
        inv->rt[i].busy_until = fl_clock_wall_ms() + 1000; /* again later */
        return;
    }
    char message[128];
    snprintf(message, sizeof(message), "the invoker refused the request: %s", fl_errname(rc));
    const struct fl_invoke_outcome o = {
        .error = FL_INVOKE_FAILED, .status = 500, .code = "cannot_start", .message = message};
    inv->rt[i].outcome_pending = true;
    attempt_outcome(inv, i, t->attempt, &o);
}

/* ---- timers ---- */

static void on_timer(uv_timer_t *h)
{
    struct inv *inv = h->data;
    if (inv->appending || inv->gone || inv->e->closing)
        return; /* act() arms it again once the append is durable */
    int64_t now = fl_clock_wall_ms();
    for (size_t i = 0; i < inv->run.ntasks; i++) {
        struct fl_wf_task_run *t = &inv->run.tasks[i];
        if (t->timer[0] == '\0' || t->fire_at > now || inv->rt[i].outcome_pending)
            continue;
        inv->rt[i].outcome_pending = true;
        post(inv, "TimerFired", json_pack("{s:s,s:s}", "task", t->id, "timer", t->timer));
        if (strcmp(t->timer, "sleep") == 0)
            post(inv, "TaskSucceeded", json_pack("{s:s,s:n}", "task", t->id, "output"));
        else
            post(inv, "TaskStarted",
                 json_pack("{s:s,s:i}", "task", t->id, "attempt", (int)t->attempt + 1));
    }
    step(inv);
}

/* Arm the timer for the earliest thing due: a task's timer, a busy
 * function to call again, the workflow's timeout. */
static void arm(struct inv *inv)
{
    int64_t next = INT64_MAX, now = fl_clock_wall_ms();
    for (size_t i = 0; i < inv->run.ntasks; i++) {
        const struct fl_wf_task_run *t = &inv->run.tasks[i];
        if (t->timer[0] != '\0' && t->fire_at < next)
            next = t->fire_at;
        if (inv->rt[i].busy_until > 0 && inv->rt[i].busy_until < next)
            next = inv->rt[i].busy_until;
    }
    if (inv->run.wf.timeout_ms > 0 && inv->run.created_ms + inv->run.wf.timeout_ms < next)
        next = inv->run.created_ms + inv->run.wf.timeout_ms;
    if (next == INT64_MAX) {
        uv_timer_stop(&inv->timer);
        return;
    }
    uv_timer_start(&inv->timer, on_timer, next > now ? (uint64_t)(next - now) : 0, 0);
}

static void on_timer_busy(struct inv *inv)
{
    int64_t now = fl_clock_wall_ms();
    for (size_t i = 0; i < inv->run.ntasks; i++)
        if (inv->rt[i].busy_until > 0 && inv->rt[i].busy_until <= now)
            inv->rt[i].busy_until = 0;
}

/* Do what the durable state says is to be done. */
static void act(struct inv *inv)
{
    if (inv->appending || inv->gone)
        return;
    if (fl_wf_run_ended(&inv->run)) {
        answer_waiters(inv, 500, "workflow_failed", "failed");
        inv_release(inv);
        return;
    }
    on_timer_busy(inv);
    for (size_t i = 0; i < inv->run.ntasks && !inv->gone; i++) {
        const struct fl_wf_task_run *t = &inv->run.tasks[i];
        const struct trun *rt = &inv->rt[i];
        if (t->status != FL_WF_TASK_RUNNING || t->timer[0] != '\0' || t->child >= 0 ||
            rt->call != NULL || rt->outcome_pending || rt->busy_until != 0 || rt->evaluating)
            continue;
        const struct builtin *b = builtin_find(t->def->run);
        if (b == NULL)
            dispatch(inv, i);
        else if (b->kind == BUILTIN_EVAL && inv->evaluating < ENGINE_EVALS_MAX)
            js_start(inv, i);
        else if (b->kind == BUILTIN_HTTP && inv->rt[i].http == NULL)
            http_start(inv, i);
    }
    if (!inv->gone)
        arm(inv);
}

/* ---- creating ---- */

int engine_create(struct fl_wf_engine *e, struct wdef *def, const char *id, json_t *inputs,
                  const char *trigger, struct fl_invoke *call, fl_wf_submit_cb cb, void *data)
{
    if (e->closing)
        return FL_ECANCELED;
    struct inv *inv = inv_new(e, id);
    if (inv == NULL)
        return FL_ENOMEM;
    json_t *batch = json_array();
    json_t *created =
        json_pack("{s:s,s:I,s:O,s:O,s:s}", "workflow", def->name, "revision",
                  (json_int_t)def->revision, "definition", def->spec, "inputs",
                  inputs ? inputs : json_object(), "trigger", trigger ? trigger : "api");
    struct waiter *w = call ? calloc(1, sizeof(*w)) : NULL;
    if (batch == NULL || created == NULL || (call != NULL && w == NULL)) {
        json_decref(batch);
        json_decref(created);
        free(w);
        inv_release(inv);
        return FL_ENOMEM;
    }
    emit(inv, batch, "InvocationCreated", created);
    if (!inv->run.created || inv_tasks(inv) < 0) {
        json_decref(batch);
        free(w);
        inv_release(inv);
        return inv->run.created ? FL_ENOMEM : FL_EINVAL;
    }
    /* the first tasks go out with it: one durable write starts the run */
    schedule(inv, batch);
    conclude(inv, batch);
    inv->submit_cb = cb;
    inv->submit_data = data;
    int rc = append(inv, batch, true);
    if (rc < 0) {
        free(w);
        inv->submit_cb = NULL;
        inv_release(inv);
        return rc;
    }
    if (w != NULL) {
        w->call = call;
        w->inv = inv;
        fl_invoke_set_state(call, w);
        fl_queue_insert_tail(&inv->waiters, &w->link);
    }
    return 0;
}

const struct fl_wf_run *engine_durable_run(const struct inv *inv)
{
    return inv->appending || inv->gone || inv->broken || !inv->run.created ? NULL : &inv->run;
}

int engine_cancel(struct inv *inv, const char *reason)
{
    if (fl_wf_run_ended(&inv->run))
        return FL_ECONFLICT;
    for (size_t i = 0; i < json_array_size(inv->outbox); i++)
        if (strcmp(json_string_value(json_array_get(json_array_get(inv->outbox, i), 0)),
                   "InvocationCanceled") == 0)
            return 0;
    post(inv, "InvocationCanceled", json_pack("{s:s}", "reason", reason));
    step(inv);
    return 0;
}

/* ---- recovery ---- */

struct load {
    struct fl_wf_engine *e;
    struct inv *inv;
    uint64_t from;
};

static void on_loaded(int err, const struct fl_store_result *res, void *data)
{
    struct load *l = data;
    struct fl_wf_engine *e = l->e;
    struct inv *inv = l->inv;
    inv->ops--;
    int rc = err;
    if (rc == 0 && !e->closing && !inv->gone)
        rc = fl_wf_run_fold(&inv->run, res->records, res->n);
    if (rc == 0 && res->n > 0)
        inv->last_seq = res->records[res->n - 1].seq;
    if (rc == 0 && !e->closing && !inv->gone && res->seq != 0) {
        l->from = res->seq;
        char stream[FL_WF_STREAM_MAX];
        fl_wf_stream_name(stream, inv->run.id);
        rc = fl_store_read(e->store, stream, l->from, 0, on_loaded, l);
        if (rc == 0) {
            inv->ops++;
            return; /* the op goes on */
        }
    }
    free(l);
    if (rc < 0 || e->closing || inv->gone || !inv->run.created || fl_wf_run_ended(&inv->run)) {
        if (rc < 0 && rc != FL_ECANCELED)
            fl_log(FL_LOG_ERROR, "wf", "cannot replay an invocation", "invocation=%s err=%s",
                   inv->run.id, fl_errname(rc));
        inv->gone = true;
        inv_maybe_free(inv);
        engine_op_done(e);
        return;
    }
    if (inv_tasks(inv) < 0) {
        inv->gone = true;
        inv_maybe_free(inv);
        engine_op_done(e);
        return;
    }
    inv->created = true;
    inv->appending = false;
    fl_log(FL_LOG_INFO, "wf", "invocation resumed", "invocation=%s workflow=%s events=%llu",
           inv->run.id, inv->run.workflow, (unsigned long long)inv->run.events);
    act(inv);
    if (!inv->gone)
        step(inv);
    engine_op_done(e);
}

int engine_recover(struct fl_wf_engine *e, const char *id)
{
    if (engine_find(e, id) != NULL)
        return 0;
    struct inv *inv = inv_new(e, id);
    struct load *l = calloc(1, sizeof(*l));
    if (inv == NULL || l == NULL) {
        free(l);
        if (inv != NULL)
            inv_release(inv);
        return FL_ENOMEM;
    }
    /* not findable until loaded: a cancel meanwhile reads the store */
    inv->appending = true;
    *l = (struct load){e, inv, 1};
    char stream[FL_WF_STREAM_MAX];
    fl_wf_stream_name(stream, id);
    int rc = fl_store_read(e->store, stream, 1, 0, on_loaded, l);
    if (rc < 0) {
        free(l);
        inv_release(inv);
        return rc;
    }
    inv->ops++;
    engine_op(e);
    return 0;
}

/* ---- start-up, the tick and the sweep ---- */

struct scan {
    struct fl_wf_engine *e;
    bool sweep;
    char after[FL_CURSOR_MAX];
};

static int scan_page(struct scan *s);

/* UUIDv7's time: its first 48 bits, ms since the epoch. */
static int64_t uuid_ms(const char *id)
{
    int64_t ms = 0;
    int digits = 0;
    for (const char *p = id; *p != '\0' && digits < 12; p++) {
        if (*p == '-')
            continue;
        int v = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
        if (v < 0)
            return 0;
        ms = ms * 16 + v;
        digits++;
    }
    return ms;
}

struct sweep_one {
    struct fl_wf_engine *e;
    char stream[FL_WF_STREAM_MAX];
};

static void on_swept(int err, const struct fl_store_result *res, void *data)
{
    struct sweep_one *s = data;
    if (err < 0 && err != FL_ENOENT)
        fl_log(FL_LOG_WARN, "wf", "cannot delete an old invocation", "stream=%s err=%s", s->stream,
               fl_errname(err));
    engine_op_done(s->e);
    free(s);
}

static void on_last_event(int err, const struct fl_store_result *res, void *data)
{
    struct sweep_one *s = data;
    struct fl_wf_engine *e = s->e;
    bool old = false;
    if (err == 0 && res->n == 1 && !e->closing) {
        const char *t = res->records[0].type;
        if (strcmp(t, "InvocationSucceeded") == 0 || strcmp(t, "InvocationFailed") == 0 ||
            strcmp(t, "InvocationCanceled") == 0)
            old = res->records[0].ts_ms + e->retention_ms < fl_clock_wall_ms();
    }
    if (old && fl_store_stream_delete(e->store, s->stream, on_swept, s) == 0)
        return;
    engine_op_done(e);
    free(s);
}

static void on_streams(int err, const struct fl_store_result *res, void *data)
{
    struct scan *s = data;
    struct fl_wf_engine *e = s->e;
    bool more = err == 0 && res->next != NULL && !e->closing;
    int64_t horizon = fl_clock_wall_ms() - e->retention_ms;
    for (size_t i = 0; err == 0 && !e->closing && i < res->n; i++) {
        const char *id = res->records[i].key + strlen(FL_WF_STREAM_PREFIX);
        if (!s->sweep) {
            engine_recover(e, id); /* ended ones are dropped once read */
            continue;
        }
        if (uuid_ms(id) >= horizon) {
            more = false; /* ids are in time order: the rest are younger */
            break;
        }
        if (engine_find(e, id) != NULL)
            continue;
        struct sweep_one *one = calloc(1, sizeof(*one));
        if (one == NULL)
            break;
        one->e = e;
        fl_strlcpy(one->stream, res->records[i].key, sizeof(one->stream));
        if (fl_store_read(e->store, one->stream, res->records[i].seq, 1, on_last_event, one) == 0)
            engine_op(e);
        else
            free(one);
    }
    if (more) {
        fl_strlcpy(s->after, res->next, sizeof(s->after));
        if (scan_page(s) == 0) {
            engine_op_done(e);
            return;
        }
    }
    if (err < 0)
        fl_log(FL_LOG_ERROR, "wf",
               s->sweep ? "cannot sweep old invocations" : "cannot list the invocations to resume",
               "err=%s", fl_errname(err));
    if (s->sweep)
        e->sweeping = false;
    else if (err == 0)
        e->recovered = true;
    e->recovering = false;
    free(s);
    engine_op_done(e);
}

static int scan_page(struct scan *s)
{
    struct fl_page page = {256, s->after[0] ? s->after : NULL};
    int rc = fl_store_streams(s->e->store, FL_WF_STREAM_PREFIX, &page, on_streams, s);
    if (rc == 0)
        engine_op(s->e);
    return rc;
}

static void scan_start(struct fl_wf_engine *e, bool sweep)
{
    struct scan *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return;
    s->e = e;
    s->sweep = sweep;
    if (scan_page(s) < 0) {
        free(s);
        return;
    }
    if (sweep)
        e->sweeping = true;
    else
        e->recovering = true;
}

static void on_tick(uv_timer_t *h)
{
    struct fl_wf_engine *e = h->data;
    if (e->closing)
        return;
    if (!e->recovered && !e->recovering && (e->ready == NULL || e->ready(e->ready_data)))
        scan_start(e, false);
    int64_t now = fl_clock_wall_ms();
    if (e->recovered && !e->sweeping && now >= e->next_sweep_ms) {
        e->next_sweep_ms = now + 60000;
        scan_start(e, true);
    }
}

/* ---- the invoker's handler of workflows ---- */

static void on_kick(uv_timer_t *h)
{
    struct fl_wf_engine *e = h->data;
    struct fl_queue *q;
    while ((q = fl_queue_first(&e->failing)) != NULL) {
        struct waiter *w = FL_QUEUE_DATA(q, struct waiter, link);
        fl_queue_remove(q);
        fl_invoke_set_state(w->call, NULL);
        char msg[128 + FL_NAME_MAX];
        snprintf(msg, sizeof(msg), "workflow '%s' does not exist", w->workflow);
        struct fl_invoke *call = w->call;
        free(w);
        answer(call, NULL, e->closing ? 503 : 404, e->closing ? "stopping" : "workflow_not_found",
               e->closing ? "flintd is stopping" : msg);
    }
}

static int handler_start(void *data, struct fl_invoke *call)
{
    struct fl_wf_engine *e = data;
    const struct fl_invoke_request *req = fl_invoke_request_of(call);
    struct wdef *def = engine_def(e, req->target.name);
    if (def == NULL) {
        struct waiter *w = calloc(1, sizeof(*w));
        if (w == NULL)
            return FL_ENOMEM;
        w->call = call;
        fl_strlcpy(w->workflow, req->target.name, sizeof(w->workflow));
        fl_invoke_set_state(call, w);
        fl_queue_insert_tail(&e->failing, &w->link);
        uv_timer_start(&e->kick, on_kick, 0, 0);
        return 0;
    }
    json_t *inputs = fl_wf_inputs_of(req);
    if (inputs == NULL)
        return FL_ENOMEM;
    char trigger[FL_INVOKE_TRIGGER_MAX + 1];
    fl_strlcpy(trigger,
               req->trigger_name ? req->trigger_name : fl_invoke_trigger_name(req->trigger),
               sizeof(trigger));
    int rc = engine_create(e, def, fl_invoke_id(call), inputs, trigger, call, NULL, NULL);
    json_decref(inputs);
    return rc;
}

static void handler_cancel(void *data, struct fl_invoke *call)
{
    struct waiter *w = fl_invoke_state(call);
    if (w == NULL)
        return;
    /* the caller left: the invocation goes on without it */
    fl_queue_remove(&w->link);
    fl_invoke_set_state(call, NULL);
    free(w);
}

static const struct fl_invoke_handler handler = {.start = handler_start, .cancel = handler_cancel};

/* ---- the engine ---- */

int fl_wf_engine_new(uv_loop_t *loop, const struct fl_wf_engine_config *cfg,
                     struct fl_wf_engine **out)
{
    struct fl_wf_engine *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return FL_ENOMEM;
    e->loop = loop;
    e->store = cfg->store;
    e->invoker = cfg->invoker;
    e->metrics = cfg->metrics;
    e->exprc = cfg->exprc;
    e->retention_ms = cfg->retention_ms > 0 ? cfg->retention_ms : ENGINE_RETENTION_DEF;
    e->max_output = cfg->max_output ? cfg->max_output : ENGINE_OUTPUT_DEFAULT;
    e->ready = cfg->ready;
    e->ready_data = cfg->ready_data;
    fl_queue_init(&e->defs);
    fl_queue_init(&e->invs);
    fl_queue_init(&e->failing);
    int rc = fl_invoker_register(e->invoker, FL_INVOKE_WORKFLOW, &handler, e);
    if (rc < 0) {
        free(e);
        return rc;
    }
    uv_timer_init(loop, &e->tick);
    uv_timer_init(loop, &e->kick);
    e->tick.data = e->kick.data = e;
    engine_op(e);
    engine_op(e);
    e->next_sweep_ms = fl_clock_wall_ms() + 5000;
    uv_timer_start(&e->tick, on_tick, 0, 200);
    *out = e;
    return 0;
}

static void on_engine_timer_closed(uv_handle_t *h)
{
    engine_op_done(h->data);
}

static void on_http_client_closed(void *data)
{
    engine_op_done(data);
}

void fl_wf_engine_close(struct fl_wf_engine *e, void (*done)(void *data), void *data)
{
    e->closing = true;
    e->done = done;
    e->done_data = data;
    on_kick(&e->kick); /* answers "stopping" */
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &e->invs)
    {
        struct inv *inv = FL_QUEUE_DATA(q, struct inv, link);
        answer_waiters(inv, 503, "stopping", "flintd is stopping");
        inv_release(inv);
    }
    uv_close((uv_handle_t *)&e->tick, on_engine_timer_closed);
    uv_close((uv_handle_t *)&e->kick, on_engine_timer_closed);
    if (e->http != NULL) {
        engine_op(e);
        fl_http_client_close(e->http, on_http_client_closed, e);
        e->http = NULL;
    }
}
