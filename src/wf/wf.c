/* Workflow definitions: parsing (see wf.h). Validation is in validate.c. */
#include "wf/wf.h"
#include "wf/internal.h"

#include "base/error.h"
#include "base/str.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const fl_wf_builtins[] = {"noop",   "compose", "if",    "switch", "foreach",
                                      "repeat", "while",   "sleep", "fail",   "javascript",
                                      "http",   "nop",     NULL};

bool fl_wf_is_builtin(const char *name)
{
    for (size_t i = 0; name != NULL && fl_wf_builtins[i] != NULL; i++)
        if (strcmp(name, fl_wf_builtins[i]) == 0)
            return true;
    return false;
}

const char *fl_wf_run_name(const char *run)
{
    if (run == NULL || strncmp(run, "fission://", 10) != 0)
        return run;
    const char *slash = strrchr(run + 10, '/');
    return slash != NULL ? slash + 1 : run + 10;
}

/* ---- errors ---- */

/* Enough for every listed error of FL_WF_MAX_ERRORS, each with its path. */
#define ERRORS_MAX (64 * 1024)

void fl_wf_errors_init(struct fl_wf_errors *e)
{
    fl_buf_init(&e->text, ERRORS_MAX);
    e->n = 0;
}

void fl_wf_errors_release(struct fl_wf_errors *e)
{
    fl_buf_release(&e->text);
    e->n = 0;
}

void fl_wf_error(struct fl_wf_errors *e, const char *path, const char *fmt, ...)
{
    if (e->n++ >= FL_WF_MAX_ERRORS)
        return;
    size_t mark = e->text.len;
    va_list ap;
    va_start(ap, fmt);
    int rc = 0;
    if (path != NULL && path[0] != '\0')
        rc = fl_buf_appendf(&e->text, "%s: ", path);
    if (rc == 0)
        rc = fl_buf_vappendf(&e->text, fmt, ap);
    if (rc == 0)
        rc = fl_buf_appendc(&e->text, '\n');
    va_end(ap);
    if (rc < 0 && e->text.data != NULL) {
        /* no room: the error is counted, its half line is not kept */
        e->text.len = mark;
        e->text.data[mark] = '\0';
    }
}

void fl_wf_errors_join(const struct fl_wf_errors *e, struct fl_buf *out)
{
    const char *p = e->text.data != NULL ? e->text.data : "";
    size_t listed = 0;
    while (*p != '\0') {
        size_t n = strcspn(p, "\n");
        fl_buf_appendf(out, "%s%.*s", listed > 0 ? "; " : "", (int)n, p);
        listed++;
        p += n + (p[n] == '\n');
    }
    if (e->n > listed)
        fl_buf_appendf(out, "%s(%zu more)", listed > 0 ? "; " : "", e->n - listed);
}

/* ---- expressions ---- */

bool fl_wf_is_expr(const char *s, size_t n)
{
    return n >= 2 && s[0] == '{' && s[n - 1] == '}' && memchr(s, '\n', n) == NULL;
}

int fl_wf_each_expr(json_t *v, int (*fn)(void *arg, const char *src, size_t n), void *arg)
{
    int rc = 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (fl_wf_is_expr(s, n))
            rc = fn(arg, s + 1, n - 2);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            rc = fl_wf_each_expr(item, fn, arg);
            if (rc != 0)
                break;
        }
    } else if (json_is_object(v)) {
        const char *key;
        json_t *item;
        json_object_foreach(v, key, item)
        {
            rc = fl_wf_each_expr(item, fn, arg);
            if (rc != 0)
                break;
        }
    }
    return rc;
}

static int found_expr(void *arg, const char *src, size_t n)
{
    return 1;
}

/* ---- parsing ---- */

/* What a parse carries down the levels. */
struct parser {
    struct fl_wf_errors *errs;
    size_t ntasks; /* at every level so far */
    bool too_many; /* said once */
};

static const char *const wf_fields[] = {"apiVersion", "description", "output",
                                        "timeout",    "tasks",       NULL};
static const char *const task_fields[] = {"run",     "inputs", "requires", "retry",
                                          "timeout", "catch",  "id",       NULL};

static bool field_known(const char *const *fields, const char *key)
{
    for (size_t i = 0; fields[i] != NULL; i++)
        if (strcmp(fields[i], key) == 0)
            return true;
    return false;
}

static void unknown_fields(struct parser *p, json_t *obj, const char *const *fields,
                           const char *path, const char *what)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (field_known(fields, key))
            continue;
        char where[WF_PATH_MAX];
        wf_path_join(where, sizeof(where), path, key);
        struct fl_buf list;
        fl_buf_init(&list, 256);
        for (size_t i = 0; fields[i] != NULL; i++)
            fl_buf_appendf(&list, "%s%s", i > 0 ? ", " : "", fields[i]);
        fl_wf_error(p->errs, where, "is not a field of %s (%s)", what, list.data);
        fl_buf_release(&list);
    }
}

/* A duration field: 0 when absent or null; else parsed, bounded. */
static int parse_timeout(struct parser *p, json_t *v, const char *path, int64_t *out)
{
    *out = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    int64_t ms = 0;
    if (!json_is_string(v) || fl_parse_duration_ms(json_string_value(v), &ms) < 0 || ms <= 0 ||
        ms > 365LL * 24 * 3600 * 1000) {
        fl_wf_error(p->errs, path, "must be a duration from 1ms to 365d, like 30s or 5m");
        return 0;
    }
    *out = ms;
    return 0;
}

/* A copy of s, or NULL (FL_ENOMEM for the caller). */
static char *dup_str(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static int parse_task(struct parser *p, json_t *v, const char *id, const char *path, int depth,
                      struct fl_wf_task *t);
static int parse_wf(struct parser *p, json_t *def, const char *path, int depth, struct fl_wf *wf);

/* A new inline task or workflow from a map, or neither. */
static int parse_inline(struct parser *p, json_t *v, const char *key, const char *path, int depth,
                        struct fl_wf_input *in)
{
    if (!json_is_object(v))
        return 0;
    bool task = json_object_get(v, "run") != NULL;
    bool workflow = !task && json_object_get(v, "tasks") != NULL;
    if (!task && !workflow)
        return 0;
    if (depth + 1 > FL_WF_MAX_NESTING) {
        fl_wf_error(p->errs, path, "inline tasks and workflows nest more than %d deep",
                    FL_WF_MAX_NESTING);
        return 0;
    }
    if (task) {
        in->task = calloc(1, sizeof(*in->task));
        if (in->task == NULL)
            return FL_ENOMEM;
        return parse_task(p, v, key, path, depth + 1, in->task);
    }
    in->workflow = calloc(1, sizeof(*in->workflow));
    if (in->workflow == NULL)
        return FL_ENOMEM;
    return parse_wf(p, v, path, depth + 1, in->workflow);
}

static int add_input(struct parser *p, struct fl_wf_task *t, const char *key, json_t *v,
                     const char *path, int depth)
{
    struct fl_wf_input *in = &t->inputs[t->ninputs];
    memset(in, 0, sizeof(*in));
    in->key = strdup(key);
    if (in->key == NULL)
        return FL_ENOMEM;
    in->value = json_incref(v);
    t->ninputs++;
    int rc = parse_inline(p, v, key, path, depth, in);
    if (rc < 0)
        return rc;
    if (in->task == NULL && in->workflow == NULL)
        in->has_expr = fl_wf_each_expr(v, found_expr, NULL) != 0;
    return 0;
}

static int parse_inputs(struct parser *p, json_t *v, const char *path, int depth,
                        struct fl_wf_task *t)
{
    char where[WF_PATH_MAX];
    wf_path_join(where, sizeof(where), path, "inputs");
    if (v == NULL || json_is_null(v))
        return 0;
    size_t n = json_is_object(v) ? json_object_size(v) : 1;
    if (n == 0)
        return 0;
    t->inputs = calloc(n, sizeof(*t->inputs));
    if (t->inputs == NULL)
        return FL_ENOMEM;
    if (!json_is_object(v)) /* a scalar or a list: the input "default" */
        return add_input(p, t, "default", v, where, depth);
    const char *key;
    json_t *item;
    int rc = 0;
    json_object_foreach(v, key, item)
    {
        char at[WF_PATH_MAX];
        wf_path_join(at, sizeof(at), where, key);
        rc = add_input(p, t, key, item, at, depth);
        if (rc < 0)
            break;
    }
    return rc;
}

static int parse_requires(struct parser *p, json_t *v, const char *path, struct fl_wf_task *t)
{
    char where[WF_PATH_MAX];
    wf_path_join(where, sizeof(where), path, "requires");
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_array(v)) {
        fl_wf_error(p->errs, where, "must be a list of task ids");
        return 0;
    }
    if (json_array_size(v) == 0)
        return 0;
    t->requires = calloc(json_array_size(v), sizeof(*t->requires));
    if (t->requires == NULL)
        return FL_ENOMEM;
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item)) {
            fl_wf_error(p->errs, where, "must be a list of task ids (item %zu is not a string)",
                        i + 1);
            continue;
        }
        t->requires[t->nrequires] = strdup(json_string_value(item));
        if (t->requires[t->nrequires] == NULL)
            return FL_ENOMEM;
        t->nrequires++;
    }
    return 0;
}

static int parse_retry(struct parser *p, json_t *v, const char *path, struct fl_wf_task *t)
{
    t->retry = FL_WF_RETRY_DEFAULT;
    if (v == NULL || json_is_null(v))
        return 0;
    char where[WF_PATH_MAX];
    wf_path_join(where, sizeof(where), path, "retry");
    struct fl_buf why;
    fl_buf_init(&why, 1024);
    int rc = fl_retry_policy_parse(v, where, &t->retry, &why);
    if (rc == FL_ENOMEM) {
        fl_buf_release(&why);
        return rc;
    }
    if (rc < 0)
        fl_wf_error(p->errs, "", "%s", why.data != NULL ? why.data : "is not a retry policy");
    else
        t->has_retry = true;
    fl_buf_release(&why);
    return 0;
}

/* One task from v (an object, or null for a noop task). */
static int parse_task(struct parser *p, json_t *v, const char *id, const char *path, int depth,
                      struct fl_wf_task *t)
{
    t->retry = FL_WF_RETRY_DEFAULT;
    t->id = strdup(id);
    if (t->id == NULL)
        return FL_ENOMEM;
    if (++p->ntasks > FL_WF_MAX_TASKS && !p->too_many) {
        p->too_many = true;
        fl_wf_error(p->errs, path, "the definition has more than %d tasks", FL_WF_MAX_TASKS);
    }
    if (v != NULL && !json_is_null(v) && !json_is_object(v)) {
        fl_wf_error(p->errs, path, "must be a task: {run, inputs, requires}");
        v = NULL;
    }
    if (v == NULL || json_is_null(v)) {
        t->run = strdup("noop");
        return t->run == NULL ? FL_ENOMEM : 0;
    }
    unknown_fields(p, v, task_fields, path, "a task");
    char where[WF_PATH_MAX];
    json_t *run = json_object_get(v, "run");
    const char *name = "noop";
    wf_path_join(where, sizeof(where), path, "run");
    if (run != NULL && !json_is_null(run)) {
        if (!json_is_string(run) || json_string_length(run) > FL_WF_RUN_MAX ||
            fl_str_has_ctl(json_string_value(run), json_string_length(run)) ||
            fl_wf_run_name(json_string_value(run))[0] == '\0')
            fl_wf_error(p->errs, where, "must be the name of a built-in, a function or a workflow");
        else
            name = fl_wf_run_name(json_string_value(run));
    }
    t->run = strdup(name);
    if (t->run == NULL)
        return FL_ENOMEM;
    json_t *id_field = json_object_get(v, "id");
    wf_path_join(where, sizeof(where), path, "id");
    if (id_field != NULL && !json_is_null(id_field) && !json_is_string(id_field))
        fl_wf_error(p->errs, where, "must be a string (it is ignored: the key is the task's id)");
    int rc = parse_inputs(p, json_object_get(v, "inputs"), path, depth, t);
    if (rc == 0)
        rc = parse_requires(p, json_object_get(v, "requires"), path, t);
    if (rc == 0)
        rc = parse_retry(p, json_object_get(v, "retry"), path, t);
    wf_path_join(where, sizeof(where), path, "timeout");
    if (rc == 0)
        rc = parse_timeout(p, json_object_get(v, "timeout"), where, &t->timeout_ms);
    json_t *c = json_object_get(v, "catch");
    wf_path_join(where, sizeof(where), path, "catch");
    if (rc == 0 && c != NULL && !json_is_null(c)) {
        if (!json_is_object(c) || json_object_get(c, "run") == NULL) {
            fl_wf_error(p->errs, where, "must be an inline task: {run, inputs}");
        } else if (depth + 1 > FL_WF_MAX_NESTING) {
            fl_wf_error(p->errs, where, "inline tasks and workflows nest more than %d deep",
                        FL_WF_MAX_NESTING);
        } else {
            t->catch_task = calloc(1, sizeof(*t->catch_task));
            if (t->catch_task == NULL)
                return FL_ENOMEM;
            t->catch_spec = json_incref(c);
            rc = parse_task(p, c, "catch", where, depth + 1, t->catch_task);
        }
    }
    return rc;
}

static int parse_api_version(struct parser *p, json_t *v, struct fl_wf *wf, const char *path)
{
    char where[WF_PATH_MAX];
    wf_path_join(where, sizeof(where), path, "apiVersion");
    fl_strlcpy(wf->api_version, "v1", sizeof(wf->api_version));
    if (v == NULL || json_is_null(v))
        return 0;
    bool ok = (json_is_integer(v) && json_integer_value(v) == 1) ||
              (json_is_string(v) && (strcmp(json_string_value(v), "1") == 0 ||
                                     strcasecmp(json_string_value(v), "v1") == 0));
    if (!ok)
        fl_wf_error(p->errs, where, "unknown API version: Flint reads v1");
    return 0;
}

static int parse_wf(struct parser *p, json_t *def, const char *path, int depth, struct fl_wf *wf)
{
    char where[WF_PATH_MAX];
    if (!json_is_object(def)) {
        fl_wf_error(p->errs, path, "a workflow must be a map: {output, tasks}");
        return 0;
    }
    unknown_fields(p, def, wf_fields, path, "a workflow");
    int rc = parse_api_version(p, json_object_get(def, "apiVersion"), wf, path);
    json_t *desc = json_object_get(def, "description");
    wf_path_join(where, sizeof(where), path, "description");
    if (desc != NULL && !json_is_null(desc)) {
        if (!json_is_string(desc)) {
            fl_wf_error(p->errs, where, "must be text");
        } else {
            wf->description = dup_str(json_string_value(desc));
            if (wf->description == NULL)
                return FL_ENOMEM;
        }
    }
    json_t *output = json_object_get(def, "output");
    wf_path_join(where, sizeof(where), path, "output");
    if (output == NULL || json_is_null(output)) {
        fl_wf_error(p->errs, where,
                    "is required: the id of the task whose output is the workflow's");
    } else if (!json_is_string(output)) {
        fl_wf_error(p->errs, where, "must be a task id");
    } else {
        wf->output = dup_str(json_string_value(output));
        if (wf->output == NULL)
            return FL_ENOMEM;
    }
    wf_path_join(where, sizeof(where), path, "timeout");
    parse_timeout(p, json_object_get(def, "timeout"), where, &wf->timeout_ms);
    json_t *tasks = json_object_get(def, "tasks");
    wf_path_join(where, sizeof(where), path, "tasks");
    if (tasks == NULL || json_is_null(tasks) ||
        (json_is_object(tasks) && json_object_size(tasks) == 0)) {
        fl_wf_error(p->errs, where, "a workflow needs at least one task");
        return rc;
    }
    if (!json_is_object(tasks)) {
        fl_wf_error(p->errs, where, "must be a map of task id to task");
        return rc;
    }
    wf->tasks = calloc(json_object_size(tasks), sizeof(*wf->tasks));
    if (wf->tasks == NULL)
        return FL_ENOMEM;
    const char *id;
    json_t *task;
    json_object_foreach(tasks, id, task)
    {
        char at[WF_PATH_MAX];
        wf_path_join(at, sizeof(at), where, id);
        size_t n = strlen(id);
        if (n == 0 || n > FL_WF_ID_MAX || fl_str_has_ctl(id, n))
            fl_wf_error(p->errs, at, "a task id must be 1 to %d bytes without control characters",
                        FL_WF_ID_MAX);
        rc = parse_task(p, task, id, at, depth, &wf->tasks[wf->ntasks]);
        wf->ntasks++;
        if (rc < 0)
            break;
    }
    return rc;
}

int fl_wf_parse(json_t *def, struct fl_wf *out, struct fl_wf_errors *errs)
{
    memset(out, 0, sizeof(*out));
    struct parser p = {.errs = errs};
    size_t before = errs->n;
    int rc = parse_wf(&p, def, "", 0, out);
    if (rc < 0)
        return rc;
    return errs->n > before ? FL_EINVAL : 0;
}

static void task_release(struct fl_wf_task *t)
{
    free(t->id);
    free(t->run);
    for (size_t i = 0; i < t->ninputs; i++) {
        struct fl_wf_input *in = &t->inputs[i];
        free(in->key);
        json_decref(in->value);
        if (in->task != NULL) {
            task_release(in->task);
            free(in->task);
        }
        if (in->workflow != NULL) {
            fl_wf_release(in->workflow);
            free(in->workflow);
        }
    }
    free(t->inputs);
    for (size_t i = 0; i < t->nrequires; i++)
        free(t->requires[i]);
    free(t->requires);
    if (t->catch_task != NULL) {
        task_release(t->catch_task);
        free(t->catch_task);
    }
    json_decref(t->catch_spec);
    memset(t, 0, sizeof(*t));
}

void fl_wf_release(struct fl_wf *wf)
{
    for (size_t i = 0; i < wf->ntasks; i++)
        task_release(&wf->tasks[i]);
    free(wf->tasks);
    free(wf->description);
    free(wf->output);
    memset(wf, 0, sizeof(*wf));
}

int fl_wf_check(json_t *def, const struct fl_wf_lookup *lookup, struct fl_wf_errors *errs)
{
    struct fl_wf wf;
    size_t before = errs->n;
    int rc = fl_wf_parse(def, &wf, errs);
    if (rc != FL_ENOMEM)
        rc = fl_wf_validate(&wf, lookup, errs);
    fl_wf_release(&wf);
    if (rc == FL_ENOMEM)
        return rc;
    return errs->n > before ? FL_EINVAL : 0;
}

/* ---- targets of a raw definition ---- */

static int each_target_wf(json_t *def, int depth, int (*fn)(void *arg, const char *name),
                          void *arg);

static int each_target_task(json_t *task, int depth, int (*fn)(void *arg, const char *name),
                            void *arg)
{
    if (!json_is_object(task) || depth > FL_WF_MAX_NESTING)
        return 0;
    const char *run = fl_wf_run_name(json_string_value(json_object_get(task, "run")));
    int rc = 0;
    if (run != NULL && run[0] != '\0' && !fl_wf_is_builtin(run))
        rc = fn(arg, run);
    json_t *inputs = json_object_get(task, "inputs");
    if (rc == 0 && json_is_object(inputs)) {
        const char *key;
        json_t *v;
        json_object_foreach(inputs, key, v)
        {
            if (!json_is_object(v))
                continue;
            if (json_object_get(v, "run") != NULL)
                rc = each_target_task(v, depth + 1, fn, arg);
            else if (json_object_get(v, "tasks") != NULL)
                rc = each_target_wf(v, depth + 1, fn, arg);
            if (rc != 0)
                break;
        }
    }
    if (rc == 0)
        rc = each_target_task(json_object_get(task, "catch"), depth + 1, fn, arg);
    return rc;
}

static int each_target_wf(json_t *def, int depth, int (*fn)(void *arg, const char *name), void *arg)
{
    json_t *tasks = json_object_get(def, "tasks");
    if (!json_is_object(tasks) || depth > FL_WF_MAX_NESTING)
        return 0;
    const char *id;
    json_t *task;
    json_object_foreach(tasks, id, task)
    {
        int rc = each_target_task(task, depth, fn, arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int fl_wf_each_target(json_t *def, int (*fn)(void *arg, const char *name), void *arg)
{
    return each_target_wf(def, 0, fn, arg);
}

void wf_path_join(char *out, size_t size, const char *base, const char *key)
{
    size_t used = strnlen(base, size - 1);
    memmove(out, base, used);
    if (used > 0 && used + 1 < size)
        out[used++] = '.';
    size_t n = strnlen(key, FL_WF_ID_MAX);
    if (n > size - 1 - used)
        n = size - 1 - used;
    memcpy(out + used, key, n);
    out[used + n] = '\0';
}
