/*
 * The built-ins the engine decides itself, with Fission Workflows' inputs,
 * defaults, outputs and messages: noop (its `default` input, or nothing),
 * compose (its `default` when that is its one input, else every input as
 * one map), fail (fails with its `default`, else "fail function
 * triggered"), sleep (its `default`: a duration such as "300ms", "1.5s",
 * "2h45m", or a number of ms; 1 s when none; outputs nothing).
 *
 * The control-flow built-ins output a task or a workflow, which the engine
 * runs as a dynamic task (run.h, TaskAdded), as Fission Workflows does:
 *   if       `if` (a bool), `then`, `else`: the chosen one (or nothing)
 *   switch   `switch` (a string), `cases` [{case, action}], `default`: the
 *            action of the case equal to it, else the default
 *   foreach  `foreach` (a list), `do` (a task), `collect` (default true),
 *            `sequential` (default false), Flint's `maxConcurrency` (at
 *            most that many items at once: item k waits for item k-N): a
 *            workflow of tasks do_0..do_N-1, each `do` with the input
 *            `_item`, and `collector`, the list of their outputs (or
 *            nothing without collect)
 *   repeat   `times` (a number), `do` (a task): do_0..do_N-1 one after the
 *            other, each with `_prev` (and `prev`) the previous one's
 *            output; outputs the last one's
 *   while    `expr` (a bool), `limit` (a number), `do`, `delay` (a
 *            duration, a durable sleep between rounds): while expr holds,
 *            a workflow of `action` (do, with `_prev`, the previous
 *            round's output, and `_count`, the round) and
 *            `condition` (this while again, expr evaluated anew);
 *            outputs `_prev` once expr is false; "while limit exceeded"
 *            after limit rounds
 *   javascript `expr` run with `args` (a map: each key a variable; else
 *            the variable `arg`), in the sandboxed evaluator (exprc.h),
 *            never in flintd: its value
 *   http     a request on the engine's HTTP client (http_task.c)
 */
#include "wf/engine_internal.h"

#include "base/buf.h"
#include "base/error.h"

#include <errno.h>
#include <stdarg.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int run_noop(const struct fl_wf_task *def, json_t *inputs, json_t **out, char **error)
{
    json_t *v = json_object_get(inputs, "default");
    *out = v ? json_incref(v) : json_null();
    return 0;
}

static int run_compose(const struct fl_wf_task *def, json_t *inputs, json_t **out, char **error)
{
    json_t *v = json_object_get(inputs, "default");
    if (json_object_size(inputs) == 0)
        *out = json_null();
    else if (json_object_size(inputs) == 1 && v != NULL)
        *out = json_incref(v);
    else
        *out = json_deep_copy(inputs);
    return *out ? 0 : FL_ENOMEM;
}

static int run_fail(const struct fl_wf_task *def, json_t *inputs, json_t **out, char **error)
{
    json_t *v = json_object_get(inputs, "default");
    if (json_is_string(v))
        *error = strdup(json_string_value(v));
    else if (v != NULL && !json_is_null(v))
        *error = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    else
        *error = strdup("fail function triggered");
    return *error ? FL_EINVAL : FL_ENOMEM;
}

/* Fission Workflows' name of a value's type, for messages. */
static const char *type_name(json_t *v)
{
    return v == NULL || json_is_null(v) ? "nil"
           : json_is_string(v)          ? "string"
           : json_is_number(v)          ? "number"
           : json_is_boolean(v)         ? "bool"
           : json_is_array(v)           ? "list"
                                        : "map";
}

/* Fail with a message made from fmt: always FL_EINVAL (or FL_ENOMEM). */
static int fail_with(char **error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_with(char **error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vasprintf(error, fmt, ap);
    va_end(ap);
    if (rc < 0) {
        *error = NULL;
        return FL_ENOMEM;
    }
    return FL_EINVAL;
}

/* A value as Go's %v shows it in Fission Workflows' messages. */
static char *shown(json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("<nil>");
    if (s != NULL && strlen(s) > 200)
        s[200] = '\0';
    return s;
}

/* Input key, required: 0 and *v, or FL_EINVAL ("input 'key' is not set"). */
static int ensure_input(json_t *inputs, const char *key, json_t **v, char **error)
{
    *v = json_object_get(inputs, key);
    if (*v == NULL)
        return fail_with(error, "input '%s' is not set", key);
    return 0;
}

/* An optional bool input: 0 and *out (def when absent), or FL_EINVAL. */
static int bool_input(json_t *inputs, const char *key, bool def, bool *out, char **error)
{
    json_t *v = json_object_get(inputs, key);
    *out = def;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return fail_with(error, "%s could not be parsed into a boolean: '%s' is a %s", key,
                         json_is_string(v) ? json_string_value(v) : "value", type_name(v));
    *out = json_is_true(v);
    return 0;
}

/* An integer input (a JSON integer, a whole real, or a decimal integer as
 * a string): 0, or FL_EINVAL. */
static int int_input(json_t *v, const char *key, json_int_t *out, char **error)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_real(v) && json_real_value(v) == (double)(json_int_t)json_real_value(v)) {
        *out = (json_int_t)json_real_value(v);
        return 0;
    }
    if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < 20) {
        /* a number as text, as a text/plain request body gives it */
        char *end;
        errno = 0;
        long long n = strtoll(json_string_value(v), &end, 10);
        if (errno == 0 && *end == '\0') {
            *out = (json_int_t)n;
            return 0;
        }
    }
    return fail_with(error, "input '%s' needs to be a number, but was '%s'", key, type_name(v));
}

/* The task a `do` names: its inputs as a map (a scalar or list `inputs`
 * is the input `default`). A new value, or NULL. */
static json_t *task_copy(json_t *task)
{
    json_t *t = json_deep_copy(task);
    json_t *in = json_object_get(t, "inputs");
    if (t == NULL || in == NULL || json_is_object(in))
        return t;
    json_object_set_new(t, "inputs", json_pack("{s:O}", "default", in));
    return t;
}

static int set_input(json_t *task, const char *key, json_t *value)
{
    json_t *in = json_object_get(task, "inputs");
    if (in == NULL || json_is_null(in)) {
        in = json_object();
        json_object_set_new(task, "inputs", in);
    }
    return json_object_set_new(in, key, value);
}

static int require(json_t *task, const char *id)
{
    json_t *req = json_object_get(task, "requires");
    if (!json_is_array(req)) {
        req = json_array();
        json_object_set_new(task, "requires", req);
    }
    return json_array_append_new(req, json_string(id));
}

static const char *const task_keys[] = {"run",     "inputs", "requires", "retry",
                                        "timeout", "catch",  "id",       NULL};
static const char *const wf_keys[] = {"apiVersion", "description", "output",
                                      "timeout",    "tasks",       NULL};

static bool only_keys(json_t *o, const char *const *keys)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool known = false;
        for (size_t i = 0; keys[i] != NULL && !known; i++)
            known = strcmp(keys[i], k) == 0;
        if (!known)
            return false;
    }
    return true;
}

json_t *builtin_flow(json_t *v)
{
    if (!json_is_object(v))
        return NULL;
    if (json_is_string(json_object_get(v, "run")) && only_keys(v, task_keys))
        return json_pack("{s:s,s:{s:O}}", "output", "main", "tasks", "main", v);
    if (json_is_object(json_object_get(v, "tasks")) &&
        json_is_string(json_object_get(v, "output")) && only_keys(v, wf_keys))
        return json_incref(v);
    return NULL;
}

static bool is_task(json_t *v)
{
    return json_is_object(v) && json_is_string(json_object_get(v, "run"));
}

static int run_if(const struct fl_wf_task *def, json_t *inputs, json_t **out, char **error)
{
    json_t *cond;
    if (ensure_input(inputs, "if", &cond, error) < 0)
        return FL_EINVAL;
    if (!json_is_boolean(cond)) {
        char *v = shown(cond);
        int rc = fail_with(error, "condition '%s' needs to be a 'bool', but was '%s'", v ? v : "?",
                           type_name(cond));
        free(v);
        return rc;
    }
    json_t *branch = json_object_get(inputs, json_is_true(cond) ? "then" : "else");
    *out = branch ? json_incref(branch) : json_null();
    return 0;
}

static int run_switch(const struct fl_wf_task *def, json_t *inputs, json_t **out, char **error)
{
    json_t *sw, *cases = json_object_get(inputs, "cases"), *c;
    if (ensure_input(inputs, "switch", &sw, error) < 0)
        return FL_EINVAL;
    if (!json_is_string(sw))
        return fail_with(error, "input 'switch' needs to be a 'string', but was '%s'",
                         type_name(sw));
    if (cases != NULL && !json_is_null(cases) && !json_is_array(cases))
        return fail_with(error, "input 'cases' needs to be a 'list', but was '%s'",
                         type_name(cases));
    json_t *action = NULL;
    size_t i;
    json_array_foreach(cases, i, c)
    {
        if (!json_is_object(c))
            return fail_with(error, "invalid case provided");
        json_t *key = json_object_get(c, "case");
        if (key == NULL)
            return fail_with(error, "case in switch does not have a key");
        if (!json_is_string(key))
            return fail_with(error, "case key should be a string");
        if (strcmp(json_string_value(key), json_string_value(sw)) == 0) {
            action = json_object_get(c, "action"); /* the last equal case wins, as a map does */
            if (action == NULL)
                action = json_null();
        }
    }
    if (action == NULL)
        action = json_object_get(inputs, "default");
    *out = action ? json_incref(action) : json_null();
    return 0;
}

/* The `do` input of foreach and repeat: a task. */
static int do_task(json_t *inputs, json_t **task, char **error)
{
    if (ensure_input(inputs, "do", task, error) < 0)
        return FL_EINVAL;
    if (json_is_object(*task) && json_object_get(*task, "tasks") != NULL)
        return fail_with(error, "foreach does not support workflow inputs (yet)");
    if (!is_task(*task))
        return fail_with(error, "input 'do' is not a validType type (expected: [task], was: %s)",
                         type_name(*task));
    return 0;
}

#define FOREACH_MAX_ITEMS (FL_WF_MAX_TASKS - 1) /* and the collector: one definition */

static int run_foreach(const struct fl_wf_task *def, json_t *inputs, json_t **out, char **error)
{
    json_t *list, *task, *item;
    bool collect, sequential;
    json_int_t max = 0;
    if (ensure_input(inputs, "foreach", &list, error) < 0)
        return FL_EINVAL;
    if (!json_is_array(list)) {
        char *v = shown(list);
        int rc = fail_with(error, "condition '%s' needs to be a 'array', but was '%s'", v ? v : "?",
                           type_name(list));
        free(v);
        return rc;
    }
    if (json_array_size(list) > FOREACH_MAX_ITEMS)
        return fail_with(error, "foreach has %zu items, more than the %d it takes",
                         json_array_size(list), FOREACH_MAX_ITEMS);
    if (do_task(inputs, &task, error) < 0 ||
        bool_input(inputs, "collect", true, &collect, error) < 0 ||
        bool_input(inputs, "sequential", false, &sequential, error) < 0)
        return FL_EINVAL;
    json_t *mc = json_object_get(inputs, "maxConcurrency");
    if (mc != NULL && !json_is_null(mc) &&
        (int_input(mc, "maxConcurrency", &max, error) < 0 || max < 1))
        return *error ? FL_EINVAL
                      : fail_with(error, "input 'maxConcurrency' needs to be at least 1");
    if (sequential)
        max = 1;
    json_t *tasks = json_object(),
           *collector = json_pack("{s:s,s:[]}", "run", "compose", "requires");
    json_t *outputs = json_array(); /* each "{output('do_k')}", looked up by the engine */
    int rc = tasks && collector && outputs ? 0 : FL_ENOMEM;
    size_t k;
    json_array_foreach(list, k, item)
    {
        char id[32], before[32];
        snprintf(id, sizeof(id), "do_%zu", k);
        json_t *t = task_copy(task);
        if (t == NULL || set_input(t, "_item", json_incref(item)) < 0) {
            json_decref(t);
            rc = FL_ENOMEM;
            break;
        }
        json_object_del(t, "requires");
        if (max > 0 && k >= (size_t)max) {
            snprintf(before, sizeof(before), "do_%zu", k - (size_t)max);
            require(t, before);
        }
        json_object_set_new(tasks, id, t);
        require(collector, id);
        if (json_array_append_new(outputs, json_sprintf("{output('%s')}", id)) < 0)
            rc = FL_ENOMEM;
    }
    if (rc == 0 && collect) {
        set_input(collector, "default", outputs);
        outputs = NULL;
    }
    json_decref(outputs);
    if (rc == 0) {
        json_object_set_new(tasks, "collector", collector);
        collector = NULL;
        *out =
            json_pack("{s:s,s:s,s:o}", "apiVersion", "v1", "output", "collector", "tasks", tasks);
        tasks = NULL;
        rc = *out ? 0 : FL_ENOMEM;
    }
    json_decref(tasks);
    json_decref(collector);
    return rc;
}

#define REPEAT_MAX_TIMES FL_WF_MAX_TASKS

static int run_repeat(const struct fl_wf_task *def, json_t *inputs, json_t **out, char **error)
{
    json_t *n = json_object_get(inputs, "times"), *task = json_object_get(inputs, "do");
    json_int_t times;
    if (n == NULL)
        return fail_with(error, "repeat needs 'times'");
    if (int_input(n, "times", &times, error) < 0)
        return FL_EINVAL;
    if (task == NULL)
        return fail_with(error, "repeat needs 'do'");
    if (!is_task(task))
        return fail_with(error, "input 'do' is not a validType type (expected: [task], was: %s)",
                         type_name(task));
    if (times > REPEAT_MAX_TIMES)
        return fail_with(error, "repeat %lld times is more than the %d it takes", (long long)times,
                         REPEAT_MAX_TIMES);
    if (times <= 0) {
        *out = json_null();
        return 0;
    }
    json_t *tasks = json_object();
    for (json_int_t k = 0; tasks != NULL && k < times; k++) {
        char id[32], prev[64], expr[96];
        snprintf(id, sizeof(id), "do_%lld", (long long)k);
        json_t *t = task_copy(task);
        if (t == NULL) {
            json_decref(tasks);
            return FL_ENOMEM;
        }
        json_object_del(t, "requires");
        if (k > 0) {
            snprintf(prev, sizeof(prev), "do_%lld", (long long)k - 1);
            snprintf(expr, sizeof(expr), "{output('%s')}", prev);
            require(t, prev);
            set_input(t, "_prev", json_string(expr));
            set_input(t, "prev", json_string(expr));
        }
        json_object_set_new(tasks, id, t);
    }
    char last[32];
    snprintf(last, sizeof(last), "do_%lld", (long long)times - 1);
    *out = tasks ? json_pack("{s:s,s:s,s:o}", "apiVersion", "v1", "output", last, "tasks", tasks)
                 : NULL;
    return *out ? 0 : FL_ENOMEM;
}

/* The value of input key as the task's definition writes it (the source
 * of an expression, not its value), or NULL. */
static json_t *written(const struct fl_wf_task *def, const char *key)
{
    for (size_t i = 0; def != NULL && i < def->ninputs; i++)
        if (strcmp(def->inputs[i].key, key) == 0)
            return def->inputs[i].value;
    return NULL;
}

static int go_duration_ms(const char *s, int64_t *ms);

static int run_while(const struct fl_wf_task *def, json_t *inputs, json_t **out, char **error)
{
    json_t *cond, *limit_v, *action;
    json_int_t limit, count = 0;
    int64_t delay = 0;
    if (ensure_input(inputs, "expr", &cond, error) < 0)
        return FL_EINVAL;
    if (!json_is_boolean(cond))
        return fail_with(error, "input 'expr' is not a validType type (expected: [bool], was: %s)",
                         type_name(cond));
    if (ensure_input(inputs, "limit", &limit_v, error) < 0)
        return FL_EINVAL;
    if (int_input(limit_v, "limit", &limit, error) < 0) {
        free(*error);
        return fail_with(error, "failed to format limit to a number: '%s' is a %s",
                         json_is_string(limit_v) ? json_string_value(limit_v) : "value",
                         type_name(limit_v));
    }
    json_t *c = json_object_get(inputs, "_count");
    if (c != NULL && int_input(c, "_count", &count, error) < 0)
        return FL_EINVAL;
    json_t *d = json_object_get(inputs, "delay");
    if (d != NULL && !json_is_null(d)) {
        if (!json_is_string(d))
            return fail_with(error, "failed to parse delay (%s) to string", type_name(d));
        if (go_duration_ms(json_string_value(d), &delay) < 0)
            return fail_with(error, "failed to parse duration: time: invalid duration \"%.100s\"",
                             json_string_value(d));
    }
    if (ensure_input(inputs, "do", &action, error) < 0)
        return FL_EINVAL;
    if (!json_is_true(cond)) {
        json_t *prev = json_object_get(inputs, "_prev");
        *out = prev ? json_incref(prev) : json_null();
        return 0;
    }
    if (count >= limit)
        return fail_with(error, "while limit exceeded");
    json_t *act = is_task(action) ? task_copy(action) : json_incref(action);
    if (act == NULL)
        return FL_ENOMEM;
    if (is_task(act)) {
        /* the previous round's output as a value: the action runs as a
         * dynamic task of its own, where `action` is not a task */
        json_t *prev = json_object_get(inputs, "_prev");
        json_object_del(act, "requires");
        if (count > 0 && prev != NULL)
            set_input(act, "_prev", json_incref(prev));
        set_input(act, "_count", json_integer(count + 1));
    }
    json_t *src = written(def, "expr");
    char delay_text[32];
    snprintf(delay_text, sizeof(delay_text), "%lldms", (long long)delay);
    json_t *condition = json_pack("{s:s,s:{s:O,s:s,s:O,s:O,s:I,s:s},s:[s]}", "run", "while",
                                  "inputs", "expr", src ? src : cond, "delay", delay_text, "limit",
                                  limit_v, "do", act, "_count", (json_int_t)(count + 1), "_prev",
                                  "{ $.Tasks.action.Output }", "requires", "action");
    json_t *wf = json_pack("{s:s,s:s,s:{s:{s:s,s:{s:o}},s:o}}", "apiVersion", "v1", "output",
                           "condition", "tasks", "action", "run", "noop", "inputs", "default", act,
                           "condition", condition);
    if (wf != NULL && delay > 0) {
        json_t *tasks = json_object_get(wf, "tasks");
        json_object_set_new(
            tasks, "wait",
            json_pack("{s:s,s:{s:s}}", "run", "sleep", "inputs", "default", delay_text));
        require(json_object_get(tasks, "action"), "wait");
    }
    *out = wf;
    return wf ? 0 : FL_ENOMEM;
}

int builtin_js_exprs(json_t *inputs, json_t **exprs, char **error)
{
    json_t *expr, *args = json_object_get(inputs, "args");
    if (ensure_input(inputs, "expr", &expr, error) < 0)
        return FL_EINVAL;
    if (!json_is_string(expr))
        return fail_with(error,
                         "input 'expr' is not a validType type (expected: [string], was: %s)",
                         type_name(expr));
    /* JSON is JavaScript once U+2028 and U+2029 are escaped: ASCII only */
    struct fl_buf setup;
    fl_buf_init(&setup, FL_WF_JS_ARGS_MAX);
    int rc = 0;
    if (json_is_object(args)) {
        const char *k;
        json_t *v;
        json_object_foreach(args, k, v)
        {
            json_t *key = json_string(k);
            char *ks = key ? json_dumps(key, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
            char *vs = json_dumps(v, JSON_ENCODE_ANY | JSON_ENSURE_ASCII | JSON_COMPACT);
            if (ks == NULL || vs == NULL || fl_buf_appendf(&setup, "this[%s] = %s;\n", ks, vs) < 0)
                rc = FL_ETOOBIG;
            json_decref(key);
            free(ks);
            free(vs);
        }
    } else {
        char *vs = json_dumps(args ? args : json_null(),
                              JSON_ENCODE_ANY | JSON_ENSURE_ASCII | JSON_COMPACT);
        if (vs == NULL || fl_buf_appendf(&setup, "var arg = %s;\n", vs) < 0)
            rc = FL_ETOOBIG;
        free(vs);
    }
    if (rc == 0 && fl_buf_appends(&setup, "undefined") < 0)
        rc = FL_ETOOBIG;
    if (rc == 0)
        *exprs = json_pack("[s,O]", setup.data, expr);
    fl_buf_release(&setup);
    if (rc < 0)
        return fail_with(error, "the args of javascript are more than %u bytes of JSON",
                         (unsigned)FL_WF_JS_ARGS_MAX);
    return *exprs ? 0 : FL_ENOMEM;
}

static const struct builtin builtins[] = {
    {"noop", BUILTIN_NOW, run_noop},       {"nop", BUILTIN_NOW, run_noop},
    {"compose", BUILTIN_NOW, run_compose}, {"fail", BUILTIN_NOW, run_fail},
    {"sleep", BUILTIN_SLEEP, NULL},        {"if", BUILTIN_NOW, run_if},
    {"switch", BUILTIN_NOW, run_switch},   {"foreach", BUILTIN_NOW, run_foreach},
    {"repeat", BUILTIN_NOW, run_repeat},   {"while", BUILTIN_NOW, run_while},
    {"javascript", BUILTIN_EVAL, NULL},    {"http", BUILTIN_HTTP, NULL},
};

const struct builtin *builtin_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof(builtins) / sizeof(builtins[0]); i++)
        if (strcmp(name, builtins[i].name) == 0)
            return &builtins[i];
    return NULL;
}

/* Go's time.ParseDuration, as Fission Workflows reads sleep's input: a
 * sequence of decimal numbers, each with a unit (ns, us, µs, ms, s, m,
 * h), an optional sign; rounded to whole ms. */
static int parse_go_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"\xce\xbcs", 1e-3},
                 {"ms", 1},    {"s", 1000},  {"m", 60000},        {"h", 3600000}};
    double total = 0;
    bool neg = false;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (*s == '\0')
        return FL_EINVAL;
    while (*s != '\0') {
        char *end;
        if (!((*s >= '0' && *s <= '9') || *s == '.'))
            return FL_EINVAL;
        double v = strtod(s, &end);
        if (end == s)
            return FL_EINVAL;
        s = end;
        size_t best = 0, which = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t n = strlen(units[i].unit);
            if (strncmp(s, units[i].unit, n) == 0 && n > best) {
                best = n;
                which = i;
            }
        }
        if (best == 0)
            return FL_EINVAL;
        total += v * units[which].ms;
        s += best;
    }
    if (total > 1e15)
        return FL_ERANGE;
    *ms = (int64_t)llround(neg ? -total : total);
    return 0;
}

static int go_duration_ms(const char *s, int64_t *ms)
{
    return parse_go_duration(s, ms);
}

int builtin_sleep_ms(json_t *inputs, int64_t *ms, char *why, size_t size)
{
    json_t *v = json_object_get(inputs, "default");
    *ms = 1000;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_number(v)) {
        double d = json_number_value(v);
        if (d > 1e15 || d < -1e15) {
            snprintf(why, size, "sleep: %g ms is out of range", d);
            return FL_EINVAL;
        }
        *ms = (int64_t)d;
    } else if (!json_is_string(v) || parse_go_duration(json_string_value(v), ms) < 0) {
        if (json_is_string(v))
            snprintf(why, size, "time: invalid duration \"%.100s\"", json_string_value(v));
        else
            snprintf(why, size, "invalid input '%s'",
                     json_is_object(v)  ? "object"
                     : json_is_array(v) ? "array"
                                        : "boolean");
        return FL_EINVAL;
    }
    if (*ms < 0)
        *ms = 0;
    return 0;
}
