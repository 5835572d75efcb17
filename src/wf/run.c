/* A workflow invocation's state folded from its events (see run.h). */
#include "wf/run.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const task_status_names[FL_WF_TASK_NSTATUS] = {
    "pending", "scheduled", "running", "retrying", "succeeded", "failed"};
static const char *const run_status_names[FL_WF_RUN_NSTATUS] = {"running", "succeeded", "failed",
                                                                "canceled"};

const char *fl_wf_task_status_name(enum fl_wf_task_status s)
{
    return (unsigned)s < FL_WF_TASK_NSTATUS ? task_status_names[s] : "unknown";
}

const char *fl_wf_run_status_name(enum fl_wf_run_status s)
{
    return (unsigned)s < FL_WF_RUN_NSTATUS ? run_status_names[s] : "unknown";
}

int fl_wf_run_status_parse(const char *name)
{
    for (int i = 0; name != NULL && i < FL_WF_RUN_NSTATUS; i++)
        if (strcmp(name, run_status_names[i]) == 0)
            return i;
    return -1;
}

void fl_wf_stream_name(char out[FL_WF_STREAM_MAX], const char *id)
{
    snprintf(out, FL_WF_STREAM_MAX, FL_WF_STREAM_PREFIX "%.36s", id);
}

void fl_wf_run_init(struct fl_wf_run *r, const char *id)
{
    memset(r, 0, sizeof(*r));
    fl_strlcpy(r->id, id ? id : "", sizeof(r->id));
}

static void task_release(struct fl_wf_task_run *t)
{
    free(t->id);
    json_decref(t->inputs);
    json_decref(t->output);
    json_decref(t->headers);
    free(t->error);
    free(t->caught);
    free(t->requires_at);
}

void fl_wf_run_release(struct fl_wf_run *r)
{
    for (size_t i = 0; i < r->ntasks; i++)
        task_release(&r->tasks[i]);
    free(r->tasks);
    free(r->index);
    for (size_t i = 0; i < r->nadded; i++) {
        fl_wf_release(r->added[i]);
        free(r->added[i]);
    }
    free(r->added);
    if (r->created)
        fl_wf_release(&r->wf);
    json_decref(r->definition);
    json_decref(r->inputs);
    json_decref(r->output);
    json_decref(r->headers);
    free(r->error);
    memset(r, 0, sizeof(*r));
}

/* FNV-1a of the n bytes of a then the bytes of the string b. */
static uint64_t id_hash(const char *a, size_t n, const char *b)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)a[i]) * 1099511628211ull;
    for (; *b != '\0'; b++)
        h = (h ^ (unsigned char)*b) * 1099511628211ull;
    return h;
}

/* The task whose id is scope (n bytes) then id, by the index: its index,
 * or -1. */
static int indexed_task(const struct fl_wf_run *r, const char *scope, size_t n, const char *id)
{
    size_t mask = r->index_cap - 1, len = strlen(id);
    for (size_t k = id_hash(scope, n, id) & mask; r->index[k] != 0; k = (k + 1) & mask) {
        const char *other = r->tasks[r->index[k] - 1].id;
        if (strncmp(other, scope, n) == 0 && strlen(other + n) == len &&
            memcmp(other + n, id, len) == 0)
            return (int)r->index[k] - 1;
    }
    return -1;
}

/* Put task i in the index. */
static void index_put(struct fl_wf_run *r, size_t i)
{
    size_t mask = r->index_cap - 1;
    size_t k = id_hash("", 0, r->tasks[i].id) & mask;
    while (r->index[k] != 0)
        k = (k + 1) & mask;
    r->index[k] = (uint32_t)i + 1;
}

/* An index with room for the run's tasks, once they grew: made again when
 * more than half full. Without memory, there is none (ids are compared). */
static void index_grow(struct fl_wf_run *r)
{
    if (r->index != NULL && r->ntasks * 2 <= r->index_cap)
        return;
    size_t cap = 64;
    while (cap < r->ntasks * 4)
        cap *= 2;
    free(r->index);
    r->index = calloc(cap, sizeof(*r->index));
    r->index_cap = r->index ? cap : 0;
    for (size_t i = 0; r->index != NULL && i < r->ntasks; i++)
        index_put(r, i);
}

int fl_wf_run_task(const struct fl_wf_run *r, const char *id)
{
    if (id != NULL && r->index != NULL)
        return indexed_task(r, "", 0, id);
    for (size_t i = 0; id != NULL && i < r->ntasks; i++)
        if (strcmp(r->tasks[i].id, id) == 0)
            return (int)i;
    return -1;
}

/* The index of task id of the workflow whose prefix is scope (n bytes). */
static int scoped_task(const struct fl_wf_run *r, const char *scope, size_t n, const char *id)
{
    if (r->index != NULL) {
        /* the ids of its tasks are scope + id, and no other task's is */
        int i = indexed_task(r, scope, n, id);
        return i >= 0 && r->tasks[i].scope_len == n ? i : -1;
    }
    size_t len = strlen(id);
    for (size_t i = 0; i < r->ntasks; i++) {
        const char *other = r->tasks[i].id;
        if (r->tasks[i].scope_len == n && strncmp(other, scope, n) == 0 &&
            strlen(other + n) == len && memcmp(other + n, id, len) == 0)
            return (int)i;
    }
    return -1;
}

bool fl_wf_run_deps_met(const struct fl_wf_run *r, size_t i)
{
    const struct fl_wf_task_run *t = &r->tasks[i];
    for (size_t k = 0; k < t->def->nrequires; k++) {
        int d = t->requires_at != NULL && t->requires_at[k] >= 0
                    ? t->requires_at[k]
                    : scoped_task(r, t->id, t->scope_len, t->def->requires[k]);
        if (d < 0 || r->tasks[d].status != FL_WF_TASK_SUCCEEDED)
            return false;
    }
    return true;
}

int fl_wf_run_lookup(const struct fl_wf_run *r, size_t from, const char *id)
{
    const struct fl_wf_task_run *t = &r->tasks[from];
    int i = t->scope_len > 0 ? scoped_task(r, t->id, t->scope_len, id) : -1;
    return i >= 0 ? i : scoped_task(r, "", 0, id);
}

/* Room for n more tasks: 0 or FL_ENOMEM. Pointers into tasks move. */
static int tasks_reserve(struct fl_wf_run *r, size_t n)
{
    if (r->ntasks + n <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 8;
    while (cap < r->ntasks + n)
        cap *= 2;
    struct fl_wf_task_run *tasks = realloc(r->tasks, cap * sizeof(*tasks));
    if (tasks == NULL)
        return FL_ENOMEM;
    memset(tasks + r->cap, 0, (cap - r->cap) * sizeof(*tasks));
    r->tasks = tasks;
    r->cap = cap;
    return 0;
}

/* Resolve what task i requires (in its own workflow) to indices once, so
 * that checking its dependencies at every step does not compare names (a
 * chain of n tasks compared O(n^2) names per step). Without memory for it,
 * nothing is resolved and each name is looked up when checked. */
static void resolve_requires(struct fl_wf_run *r, size_t i)
{
    struct fl_wf_task_run *t = &r->tasks[i];
    if (t->def->nrequires == 0)
        return;
    t->requires_at = malloc(t->def->nrequires * sizeof(*t->requires_at));
    for (size_t k = 0; t->requires_at != NULL && k < t->def->nrequires; k++)
        t->requires_at[k] = scoped_task(r, t->id, t->scope_len, t->def->requires[k]);
}

/* Add the tasks of wf to r, their ids prefixed with scope (n bytes). */
static int tasks_add(struct fl_wf_run *r, struct fl_wf *wf, const char *scope, size_t n, int parent)
{
    int rc = tasks_reserve(r, wf->ntasks);
    for (size_t i = 0; rc == 0 && i < wf->ntasks; i++) {
        struct fl_wf_task_run *t = &r->tasks[r->ntasks];
        size_t len = n + strlen(wf->tasks[i].id) + 1;
        memset(t, 0, sizeof(*t));
        t->id = malloc(len);
        if (t->id == NULL)
            return FL_ENOMEM;
        snprintf(t->id, len, "%.*s%s", (int)n, scope, wf->tasks[i].id);
        t->def = &wf->tasks[i];
        t->scope_len = n;
        t->parent = parent;
        t->child = -1;
        r->ntasks++;
        if (r->index != NULL && r->ntasks * 2 <= r->index_cap)
            index_put(r, r->ntasks - 1);
        else
            index_grow(r);
    }
    for (size_t i = r->ntasks - (rc == 0 ? wf->ntasks : 0); rc == 0 && i < r->ntasks; i++)
        resolve_requires(r, i);
    return rc;
}

/* ---- the events ---- */

static int64_t at_of(json_t *data)
{
    return (int64_t)json_integer_value(json_object_get(data, "at"));
}

/* Replace *slot with a new reference to v (NULL stays NULL). */
static void set_json(json_t **slot, json_t *v)
{
    json_t *old = *slot;
    *slot = v ? json_incref(v) : NULL;
    json_decref(old);
}

static int set_text(char **slot, const char *s)
{
    char *copy = s ? strdup(s) : NULL;
    if (s != NULL && copy == NULL)
        return FL_ENOMEM;
    free(*slot);
    *slot = copy;
    return 0;
}

static int on_created(struct fl_wf_run *r, json_t *data)
{
    if (r->created)
        return FL_ECORRUPT;
    const char *workflow = json_string_value(json_object_get(data, "workflow"));
    json_t *def = json_object_get(data, "definition");
    if (workflow == NULL || !json_is_object(def))
        return FL_ECORRUPT;
    struct fl_wf_errors errs;
    fl_wf_errors_init(&errs);
    int rc = fl_wf_parse(def, &r->wf, &errs);
    fl_wf_errors_release(&errs);
    if (rc < 0) {
        fl_wf_release(&r->wf);
        memset(&r->wf, 0, sizeof(r->wf));
        return rc == FL_ENOMEM ? rc : FL_ECORRUPT;
    }
    r->created = true; /* from here on, released with the run */
    rc = tasks_add(r, &r->wf, "", 0, -1);
    if (rc < 0)
        return rc;
    fl_strlcpy(r->workflow, workflow, sizeof(r->workflow));
    r->revision = (uint64_t)json_integer_value(json_object_get(data, "revision"));
    set_json(&r->definition, def);
    set_json(&r->inputs, json_object_get(data, "inputs"));
    const char *trigger = json_string_value(json_object_get(data, "trigger"));
    fl_strlcpy(r->trigger, trigger ? trigger : "api", sizeof(r->trigger));
    r->created_ms = at_of(data);
    r->status = FL_WF_RUN_RUNNING;
    return 0;
}

/* The task an event names, or NULL. */
static struct fl_wf_task_run *task_of(struct fl_wf_run *r, json_t *data)
{
    int i = fl_wf_run_task(r, json_string_value(json_object_get(data, "task")));
    return i < 0 ? NULL : &r->tasks[i];
}

static int on_scheduled(struct fl_wf_run *r, json_t *data)
{
    struct fl_wf_task_run *t = task_of(r, data);
    if (t == NULL)
        return FL_ECORRUPT;
    set_json(&t->inputs, json_object_get(data, "inputs"));
    t->status = FL_WF_TASK_SCHEDULED;
    t->scheduled_ms = at_of(data);
    return 0;
}

static int on_started(struct fl_wf_run *r, json_t *data)
{
    struct fl_wf_task_run *t = task_of(r, data);
    json_int_t attempt = json_integer_value(json_object_get(data, "attempt"));
    if (t == NULL || attempt < 1)
        return FL_ECORRUPT;
    t->attempt = (uint32_t)attempt;
    t->status = FL_WF_TASK_RUNNING;
    if (t->started_ms == 0)
        t->started_ms = at_of(data);
    return 0;
}

static int on_succeeded(struct fl_wf_run *r, json_t *data)
{
    struct fl_wf_task_run *t = task_of(r, data);
    if (t == NULL)
        return FL_ECORRUPT;
    json_t *out = json_object_get(data, "output");
    set_json(&t->output, out ? out : json_null());
    set_json(&t->headers, json_object_get(data, "headers"));
    t->status = FL_WF_TASK_SUCCEEDED;
    t->ended_ms = at_of(data);
    t->timer[0] = '\0';
    return set_text(&t->error, NULL);
}

static int on_failed(struct fl_wf_run *r, json_t *data)
{
    struct fl_wf_task_run *t = task_of(r, data);
    if (t == NULL)
        return FL_ECORRUPT;
    const char *error = json_string_value(json_object_get(data, "error"));
    int rc = set_text(&t->error, error ? error : "failed");
    if (json_is_true(json_object_get(data, "retry"))) {
        t->status = FL_WF_TASK_RETRYING;
    } else {
        t->status = FL_WF_TASK_FAILED;
        t->ended_ms = at_of(data);
        t->timer[0] = '\0';
    }
    return rc;
}

static int on_timer_started(struct fl_wf_run *r, json_t *data)
{
    struct fl_wf_task_run *t = task_of(r, data);
    const char *timer = json_string_value(json_object_get(data, "timer"));
    if (t == NULL || timer == NULL || (strcmp(timer, "sleep") != 0 && strcmp(timer, "retry") != 0))
        return FL_ECORRUPT;
    fl_strlcpy(t->timer, timer, sizeof(t->timer));
    t->fire_at = (int64_t)json_integer_value(json_object_get(data, "fireAt"));
    return 0;
}

static int on_timer_fired(struct fl_wf_run *r, json_t *data)
{
    struct fl_wf_task_run *t = task_of(r, data);
    if (t == NULL)
        return FL_ECORRUPT;
    t->timer[0] = '\0';
    return 0;
}

static int on_task_added(struct fl_wf_run *r, json_t *data)
{
    int p = fl_wf_run_task(r, json_string_value(json_object_get(data, "task")));
    json_t *def = json_object_get(data, "workflow");
    bool catch = json_is_true(json_object_get(data, "catch"));
    /* a dynamic task is added to a running task once; a catch to one that
     * failed for good and was not caught yet */
    if (p < 0 || !json_is_object(def) ||
        (catch ? r->tasks[p].status != FL_WF_TASK_FAILED || r->tasks[p].caught != NULL
               : r->tasks[p].child >= 0))
        return FL_ECORRUPT;
    struct fl_wf *wf = calloc(1, sizeof(*wf));
    struct fl_wf **added = realloc(r->added, (r->nadded + 1) * sizeof(*added));
    if (added != NULL)
        r->added = added;
    if (wf == NULL || added == NULL) {
        free(wf);
        return FL_ENOMEM;
    }
    struct fl_wf_errors errs;
    fl_wf_errors_init(&errs);
    int rc = fl_wf_parse(def, wf, &errs);
    fl_wf_errors_release(&errs);
    bool has_output = false;
    for (size_t i = 0; rc == 0 && wf->output != NULL && i < wf->ntasks; i++)
        has_output = has_output || strcmp(wf->tasks[i].id, wf->output) == 0;
    if (rc == 0 && (r->ntasks + wf->ntasks > FL_WF_RUN_MAX_TASKS || !has_output))
        rc = FL_ECORRUPT;
    if (rc < 0) {
        fl_wf_release(wf);
        free(wf);
        return rc == FL_ENOMEM ? rc : FL_ECORRUPT;
    }
    r->added[r->nadded++] = wf;
    size_t root = (size_t)p;
    while (r->tasks[root].parent >= 0)
        root = (size_t)r->tasks[root].parent;
    size_t first = r->ntasks;
    json_t *scope = json_sprintf("%s:%zu/", r->tasks[root].id, r->nadded);
    rc = scope ? tasks_add(r, wf, json_string_value(scope), json_string_length(scope), p)
               : FL_ENOMEM;
    for (size_t i = first; rc == 0 && i < r->ntasks; i++)
        if (strcmp(r->tasks[i].def->id, wf->output) == 0)
            r->tasks[p].child = (int)i;
    json_decref(scope);
    if (rc == 0 && json_is_true(json_object_get(data, "run")))
        r->tasks[p].runs_workflow = true;
    if (rc == 0 && catch) {
        struct fl_wf_task_run *t = &r->tasks[p];
        rc = set_text(&t->caught, t->error ? t->error : "failed");
        t->status = FL_WF_TASK_RUNNING;
        t->ended_ms = 0;
    }
    return rc;
}

static int on_inv_succeeded(struct fl_wf_run *r, json_t *data)
{
    if (fl_wf_run_ended(r))
        return 0;
    json_t *out = json_object_get(data, "output");
    set_json(&r->output, out ? out : json_null());
    set_json(&r->headers, json_object_get(data, "headers"));
    r->status = FL_WF_RUN_SUCCEEDED;
    r->ended_ms = at_of(data);
    return 0;
}

static int on_inv_failed(struct fl_wf_run *r, json_t *data)
{
    if (fl_wf_run_ended(r))
        return 0;
    const char *task = json_string_value(json_object_get(data, "task"));
    const char *error = json_string_value(json_object_get(data, "error"));
    fl_strlcpy(r->failed_task, task ? task : "", sizeof(r->failed_task));
    r->status = FL_WF_RUN_FAILED;
    r->ended_ms = at_of(data);
    return set_text(&r->error, error ? error : "failed");
}

static int on_inv_canceled(struct fl_wf_run *r, json_t *data)
{
    if (fl_wf_run_ended(r))
        return 0;
    const char *reason = json_string_value(json_object_get(data, "reason"));
    r->status = FL_WF_RUN_CANCELED;
    r->ended_ms = at_of(data);
    return set_text(&r->error, reason ? reason : "canceled");
}

static const struct {
    const char *type;
    int (*apply)(struct fl_wf_run *r, json_t *data);
} events[] = {
    {"InvocationCreated", on_created},
    {"TaskScheduled", on_scheduled},
    {"TaskStarted", on_started},
    {"TaskSucceeded", on_succeeded},
    {"TaskFailed", on_failed},
    {"TaskAdded", on_task_added},
    {"TimerStarted", on_timer_started},
    {"TimerFired", on_timer_fired},
    {"InvocationSucceeded", on_inv_succeeded},
    {"InvocationFailed", on_inv_failed},
    {"InvocationCanceled", on_inv_canceled},
};

int fl_wf_run_apply(struct fl_wf_run *r, const char *type, json_t *data)
{
    if (type == NULL || !json_is_object(data))
        return FL_ECORRUPT;
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        if (strcmp(type, events[i].type) != 0)
            continue;
        if (!r->created && i != 0)
            return FL_ECORRUPT;
        int rc = events[i].apply(r, data);
        if (rc == 0)
            r->events++;
        return rc;
    }
    return FL_ECORRUPT;
}

int fl_wf_run_fold(struct fl_wf_run *r, const struct fl_record *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_t *data = json_loadb(ev[i].data, ev[i].len, 0, NULL);
        if (data == NULL)
            return FL_ECORRUPT;
        int rc = fl_wf_run_apply(r, ev[i].type, data);
        json_decref(data);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- the API's form ---- */

static void set_time(json_t *o, const char *key, int64_t ms)
{
    char buf[40];
    json_object_set_new(o, key,
                        ms > 0 ? json_string(fl_clock_format(ms, buf, sizeof(buf))) : json_null());
}

static json_t *task_json(const struct fl_wf_run *r, const struct fl_wf_task_run *t, bool detail)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "id", json_string(t->id));
    json_object_set_new(o, "run", json_string(t->def->run));
    json_object_set_new(o, "status", json_string(fl_wf_task_status_name(t->status)));
    json_object_set_new(o, "attempts", json_integer(t->attempt));
    if (t->parent >= 0)
        json_object_set_new(o, "parent", json_string(r->tasks[t->parent].id));
    if (detail)
        json_object_set(o, "inputs", t->inputs ? t->inputs : json_null());
    json_object_set(o, "output", t->output ? t->output : json_null());
    json_object_set_new(o, "error", t->error ? json_string(t->error) : json_null());
    if (t->caught != NULL)
        json_object_set_new(o, "caughtError", json_string(t->caught));
    if (t->runs_workflow)
        json_object_set_new(o, "runsWorkflow", json_true());
    set_time(o, "scheduledAt", t->scheduled_ms);
    set_time(o, "startedAt", t->started_ms);
    set_time(o, "endedAt", t->ended_ms);
    json_object_set_new(o, "durationMs",
                        t->ended_ms && t->started_ms ? json_integer(t->ended_ms - t->started_ms)
                                                     : json_null());
    if (t->timer[0] != '\0') {
        json_object_set_new(o, "timer", json_string(t->timer));
        set_time(o, "fireAt", t->fire_at);
    }
    return o;
}

json_t *fl_wf_run_json(const struct fl_wf_run *r, bool detail)
{
    json_t *o = json_object(), *tasks = json_array();
    if (o == NULL || tasks == NULL) {
        json_decref(o);
        json_decref(tasks);
        return NULL;
    }
    json_object_set_new(o, "invocation", json_string(r->id));
    json_object_set_new(o, "kind", json_string("workflow"));
    json_object_set_new(o, "workflow", json_string(r->workflow));
    json_object_set_new(o, "revision", json_integer((json_int_t)r->revision));
    json_object_set_new(o, "status", json_string(fl_wf_run_status_name(r->status)));
    json_object_set_new(o, "trigger", json_string(r->trigger));
    set_time(o, "createdAt", r->created_ms);
    set_time(o, "endedAt", r->ended_ms);
    json_object_set_new(o, "durationMs",
                        r->ended_ms ? json_integer(r->ended_ms - r->created_ms) : json_null());
    json_object_set(o, "output", r->output ? r->output : json_null());
    json_object_set_new(o, "error", r->error ? json_string(r->error) : json_null());
    json_object_set_new(o, "failedTask",
                        r->failed_task[0] ? json_string(r->failed_task) : json_null());
    if (detail)
        json_object_set(o, "inputs", r->inputs ? r->inputs : json_null());
    for (size_t i = 0; i < r->ntasks; i++)
        json_array_append_new(tasks, task_json(r, &r->tasks[i], detail));
    json_object_set_new(o, "tasks", tasks);
    return o;
}
