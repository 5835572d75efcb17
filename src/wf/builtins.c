/*
 * The built-ins the engine decides itself, with Fission Workflows' inputs,
 * defaults, outputs and messages: noop (its `default` input, or nothing),
 * compose (its `default` when that is its one input, else every input as
 * one map), fail (fails with its `default`, else "fail function
 * triggered"), sleep (its `default`: a duration such as "300ms", "1.5s",
 * "2h45m", or a number of ms; 1 s when none; outputs nothing).
 */
#include "wf/engine_internal.h"

#include "base/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int run_noop(json_t *inputs, json_t **out, char **error)
{
    json_t *v = json_object_get(inputs, "default");
    *out = v ? json_incref(v) : json_null();
    return 0;
}

static int run_compose(json_t *inputs, json_t **out, char **error)
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

static int run_fail(json_t *inputs, json_t **out, char **error)
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

static const struct builtin builtins[] = {
    {"noop", BUILTIN_NOW, run_noop},       {"nop", BUILTIN_NOW, run_noop},
    {"compose", BUILTIN_NOW, run_compose}, {"fail", BUILTIN_NOW, run_fail},
    {"sleep", BUILTIN_SLEEP, NULL},        {"if", BUILTIN_MISSING, NULL},
    {"switch", BUILTIN_MISSING, NULL},     {"foreach", BUILTIN_MISSING, NULL},
    {"repeat", BUILTIN_MISSING, NULL},     {"while", BUILTIN_MISSING, NULL},
    {"javascript", BUILTIN_MISSING, NULL}, {"http", BUILTIN_MISSING, NULL},
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
