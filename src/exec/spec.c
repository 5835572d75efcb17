#include "exec/spec.h"

#include "base/error.h"
#include "base/str.h"
#include "topics/topics.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *runtime_names[] = {"c", "binary", "python", "node", "custom"};

const char *fl_runtime_name(enum fl_runtime r)
{
    return runtime_names[r];
}

static int fail(struct fl_buf *err, const char *field, const char *fmt, const char *detail)
{
    fl_buf_reset(err);
    fl_buf_appendf(err, "spec.%s: ", field);
    fl_buf_appendf(err, fmt, detail ? detail : "");
    return FL_EINVAL;
}

int fl_name_check(const char *name, struct fl_buf *err)
{
    size_t n = strlen(name);
    bool ok = n >= 1 && n <= FL_NAME_MAX && isalnum((unsigned char)name[0]);
    for (size_t i = 0; ok && i < n; i++)
        ok = islower((unsigned char)name[i]) || isdigit((unsigned char)name[i]) || name[i] == '-';
    if (ok)
        return 0;
    fl_buf_reset(err);
    fl_buf_appendf(err,
                   "name: must be 1 to 63 lowercase letters, digits and '-', starting with "
                   "a letter or digit, not '%.80s'",
                   name);
    return FL_EINVAL;
}

int fl_spec_check_fields(json_t *spec, const char *const *allowed, const char *what,
                         struct fl_buf *err)
{
    const char *key;
    json_t *value;
    if (!json_is_object(spec)) {
        fl_buf_reset(err);
        fl_buf_appends(err, "spec: must be an object");
        return FL_EINVAL;
    }
    json_object_foreach(spec, key, value)
    {
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known)
            return fail(err, key, "is not a field of %s", what);
    }
    return 0;
}

/* v (present) as a whole number within [min, max] into *out; else FL_EINVAL
 * with "<where>.<field>: must be ..." in err. */
static int int_value(json_t *v, const char *where, const char *field, int64_t min, int64_t max,
                     int64_t *out, struct fl_buf *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        fl_buf_reset(err);
        fl_buf_appendf(err, "%s.%s: must be a whole number from %lld to %lld", where, field,
                       (long long)min, (long long)max);
        if (json_is_integer(v))
            fl_buf_appendf(err, ", not %lld", (long long)json_integer_value(v));
        return FL_EINVAL;
    }
    *out = json_integer_value(v);
    return 0;
}

static int get_int(json_t *spec, const char *field, const char *path, int64_t min, int64_t max,
                   int64_t fallback, int64_t *out, struct fl_buf *err)
{
    json_t *v = json_object_get(spec, field);
    if (v == NULL || json_is_null(v)) {
        *out = fallback;
        return 0;
    }
    return int_value(v, "spec", path, min, max, out, err);
}

/* v (present) as a duration within [min_ms, max_ms]: a string such as
 * "30s", or a whole number of seconds; else FL_EINVAL with
 * "<where>.<field>: must be ..." in err. */
static int duration_value(json_t *v, const char *where, const char *field, int64_t min_ms,
                          int64_t max_ms, int64_t *out, struct fl_buf *err)
{
    int64_t ms = -1;
    if (json_is_string(v))
        fl_parse_duration_ms(json_string_value(v), &ms);
    else if (json_is_integer(v) && json_integer_value(v) >= 0 &&
             json_integer_value(v) <= INT64_MAX / 1000)
        ms = json_integer_value(v) * 1000;
    if (ms < min_ms || ms > max_ms) {
        fl_buf_reset(err);
        fl_buf_appendf(err,
                       "%s.%s: must be a duration like \"30s\", \"500ms\" or \"5m\" from "
                       "%lldms to %llds",
                       where, field, (long long)min_ms, (long long)(max_ms / 1000));
        return FL_EINVAL;
    }
    *out = ms;
    return 0;
}

static int get_duration(json_t *spec, const char *field, int64_t min_ms, int64_t max_ms,
                        int64_t fallback, int64_t *out, struct fl_buf *err)
{
    json_t *v = json_object_get(spec, field);
    if (v == NULL || json_is_null(v)) {
        *out = fallback;
        return 0;
    }
    return duration_value(v, "spec", field, min_ms, max_ms, out, err);
}

static int get_string(json_t *spec, const char *field, size_t max, char **out, struct fl_buf *err)
{
    json_t *v = json_object_get(spec, field);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        fl_buf_reset(err);
        fl_buf_appendf(err, "spec.%s: must be a non-empty string of at most %zu bytes", field, max);
        return FL_EINVAL;
    }
    *out = fl_strndup(json_string_value(v), json_string_length(v));
    return *out ? 0 : FL_ENOMEM;
}

static int parse_limits(json_t *spec, bool for_function, struct fl_limits *out, struct fl_buf *err)
{
    static const char *const fields[] = {"memory",    "cpus",      "cpuSeconds",
                                         "openFiles", "processes", NULL};
    json_t *limits = json_object_get(spec, "limits");
    if (for_function)
        memset(out, 0, sizeof(*out));
    else {
        out->memory_bytes = FL_DEFAULT_MEMORY;
        out->cpu_seconds = FL_DEFAULT_CPU_SECONDS;
        out->open_files = FL_DEFAULT_OPEN_FILES;
        out->processes = FL_DEFAULT_PROCESSES;
    }
    if (limits == NULL || json_is_null(limits))
        return 0;
    if (!json_is_object(limits))
        return fail(err, "limits", "must be an object like {memory: 256M, cpuSeconds: 60}%s", NULL);
    const char *key;
    json_t *value;
    json_object_foreach(limits, key, value)
    {
        bool known = false;
        for (size_t i = 0; fields[i] != NULL; i++)
            known |= strcmp(key, fields[i]) == 0;
        if (!known) {
            fl_buf_reset(err);
            fl_buf_appendf(err,
                           "spec.limits.%s: is not a limit (memory, cpus, cpuSeconds, "
                           "openFiles, processes)",
                           key);
            return FL_EINVAL;
        }
    }
    json_t *memory = json_object_get(limits, "memory");
    if (memory != NULL) {
        uint64_t bytes = 0;
        int rc = FL_EINVAL;
        if (json_is_string(memory))
            rc = fl_parse_size(json_string_value(memory), &bytes);
        else if (json_is_integer(memory) && json_integer_value(memory) > 0)
            rc = (bytes = (uint64_t)json_integer_value(memory), 0);
        if (rc < 0 || bytes < (16ULL << 20) || bytes > (64ULL << 30))
            return fail(err, "limits.memory",
                        "must be a size like \"256M\" or \"1G\" from 16M to 64G%s", NULL);
        out->memory_bytes = bytes;
    }
    json_t *cpus = json_object_get(limits, "cpus");
    if (cpus != NULL) {
        double v = json_is_number(cpus) ? json_number_value(cpus) : -1;
        if (v < 0.01 || v > 256)
            return fail(err, "limits.cpus",
                        "must be a number of cores from 0.01 to 256, like 0.5 or 2%s", NULL);
        out->cpu_millis = (int64_t)(v * 1000 + 0.5);
    }
    int64_t fallback;
    fallback = out->cpu_seconds;
    if (get_int(limits, "cpuSeconds", "limits.cpuSeconds", 1, 86400 * 365, fallback,
                &out->cpu_seconds, err) < 0)
        return FL_EINVAL;
    fallback = out->open_files;
    if (get_int(limits, "openFiles", "limits.openFiles", 16, 1 << 20, fallback, &out->open_files,
                err) < 0)
        return FL_EINVAL;
    fallback = out->processes;
    if (get_int(limits, "processes", "limits.processes", 1, 4096, fallback, &out->processes, err) <
        0)
        return FL_EINVAL;
    return 0;
}

void fl_env_spec_release(struct fl_env_spec *s)
{
    for (size_t i = 0; s->command != NULL && s->command[i] != NULL; i++)
        free(s->command[i]);
    free(s->command);
    free(s->builder);
    memset(s, 0, sizeof(*s));
}

int fl_env_spec_parse(json_t *spec, struct fl_env_spec *out, struct fl_buf *err)
{
    static const char *const fields[] = {"runtime", "command", "builder", "poolsize",
                                         "network", "limits",  NULL};
    int rc;

    memset(out, 0, sizeof(*out));
    rc = fl_spec_check_fields(spec, fields,
                              "an environment (runtime, command, builder, poolsize, "
                              "network, limits)",
                              err);
    if (rc < 0)
        return rc;
    const char *runtime = json_string_value(json_object_get(spec, "runtime"));
    if (runtime == NULL)
        return fail(err, "runtime", "is required: c, binary, python, node or custom%s", NULL);
    size_t r;
    for (r = 0; r < sizeof(runtime_names) / sizeof(runtime_names[0]); r++)
        if (strcmp(runtime, runtime_names[r]) == 0)
            break;
    if (r == sizeof(runtime_names) / sizeof(runtime_names[0]))
        return fail(err, "runtime", "must be c, binary, python, node or custom, not '%s'", runtime);
    out->runtime = (enum fl_runtime)r;

    json_t *command = json_object_get(spec, "command");
    if (out->runtime == FL_RUNTIME_CUSTOM) {
        size_t n = json_array_size(command);
        if (!json_is_array(command) || n == 0 || n > 64)
            return fail(err, "command",
                        "a custom runtime needs the instance command as a list of 1 to 64 "
                        "strings%s",
                        NULL);
        out->command = calloc(n + 1, sizeof(char *));
        if (out->command == NULL)
            return FL_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            json_t *arg = json_array_get(command, i);
            if (!json_is_string(arg) || strlen(json_string_value(arg)) != json_string_length(arg)) {
                fl_env_spec_release(out);
                return fail(err, "command", "must hold only strings%s", NULL);
            }
            out->command[i] = fl_strndup(json_string_value(arg), json_string_length(arg));
            if (out->command[i] == NULL) {
                fl_env_spec_release(out);
                return FL_ENOMEM;
            }
        }
    } else if (command != NULL) {
        return fail(err, "command", "is only for runtime custom (this one is '%s')", runtime);
    }
    rc = get_string(spec, "builder", 4096, &out->builder, err);
    if (rc == 0)
        rc = get_int(spec, "poolsize", "poolsize", 0, 64, FL_DEFAULT_POOLSIZE, &out->poolsize, err);
    json_t *network = json_object_get(spec, "network");
    if (rc == 0 && network != NULL && !json_is_boolean(network))
        rc = fail(err, "network", "must be true or false%s", NULL);
    out->network = network == NULL || json_is_true(network);
    if (rc == 0)
        rc = parse_limits(spec, false, &out->limits, err);
    if (rc < 0)
        fl_env_spec_release(out);
    return rc;
}

void fl_fn_spec_release(struct fl_fn_spec *s)
{
    free(s->code_filename);
    free(s->entrypoint);
    json_decref(s->env);
    for (size_t i = 0; i < s->npublishes; i++)
        free(s->publishes[i]);
    free(s->publishes);
    memset(s, 0, sizeof(*s));
}

static int parse_code(json_t *spec, struct fl_fn_spec *out, struct fl_buf *err)
{
    json_t *code = json_object_get(spec, "code");
    const char *sha = json_string_value(json_object_get(code, "sha256"));
    const char *filename = json_string_value(json_object_get(code, "filename"));
    if (!json_is_object(code) || sha == NULL || filename == NULL || json_object_size(code) != 2)
        return fail(err, "code", "is required: {sha256, filename} as answered by POST /v1/code%s",
                    NULL);
    bool hex = strlen(sha) == 64;
    for (size_t i = 0; hex && i < 64; i++)
        hex = isdigit((unsigned char)sha[i]) || (sha[i] >= 'a' && sha[i] <= 'f');
    if (!hex)
        return fail(err, "code.sha256", "must be 64 lowercase hex digits, not '%.80s'", sha);
    size_t n = strlen(filename);
    if (n == 0 || n > 255 || strchr(filename, '/') != NULL || strcmp(filename, ".") == 0 ||
        strcmp(filename, "..") == 0)
        return fail(err, "code.filename", "must be a plain file name, not '%.80s'", filename);
    memcpy(out->code_sha256, sha, 65);
    out->code_filename = fl_strndup(filename, n);
    return out->code_filename ? 0 : FL_ENOMEM;
}

/* Variable names a function may not set: what the dynamic loader, libc and
 * Flint's runtimes read before the function's own code runs. Inside the
 * sandbox they would only hurt the function itself, but they are the
 * classic way from an environment to code execution, so they never travel. */
static const struct {
    const char *name;
    bool prefix;
    const char *reader;
} reserved_env[] = {
    {"FLINT_", true, "Flint"},
    {"LD_", true, "the dynamic loader"},
    {"GLIBC_TUNABLES", false, "the dynamic loader"},
    {"GCONV_PATH", false, "the C library"},
    {"PYTHON", true, "the python runtime's interpreter"},
    {"NODE_OPTIONS", false, "the node runtime's interpreter"},
    {"NODE_PATH", false, "the node runtime's interpreter"},
};

#define ENV_TOTAL_MAX (256u << 10) /* all of a function's variables, names and values */

static int parse_env_vars(json_t *spec, struct fl_fn_spec *out, struct fl_buf *err)
{
    json_t *env = json_object_get(spec, "env");
    if (env == NULL || json_is_null(env)) {
        out->env = json_object();
        return out->env ? 0 : FL_ENOMEM;
    }
    if (!json_is_object(env) || json_object_size(env) > 256)
        return fail(err, "env", "must be an object of at most 256 NAME: value pairs%s", NULL);
    const char *key;
    json_t *value;
    size_t total = 0;
    json_object_foreach(env, key, value)
    {
        bool ok = (isalpha((unsigned char)key[0]) || key[0] == '_') && strlen(key) <= 128;
        for (size_t i = 0; ok && key[i] != '\0'; i++)
            ok = isalnum((unsigned char)key[i]) || key[i] == '_';
        if (!ok)
            return fail(err, "env",
                        "'%.80s' is not a usable variable name (letters, digits, '_'; not "
                        "starting with a digit)",
                        key);
        for (size_t i = 0; i < sizeof(reserved_env) / sizeof(reserved_env[0]); i++) {
            bool hit = reserved_env[i].prefix ? fl_str_has_prefix(key, reserved_env[i].name)
                                              : strcmp(key, reserved_env[i].name) == 0;
            if (hit) {
                char why[256];
                snprintf(why, sizeof(why), "'%.80s' cannot be set: %s%s is read by %s", key,
                         reserved_env[i].name, reserved_env[i].prefix ? "*" : "",
                         reserved_env[i].reader);
                return fail(err, "env", "%s", why);
            }
        }
        if (!json_is_string(value) || json_string_length(value) > 32768 ||
            strlen(json_string_value(value)) != json_string_length(value))
            return fail(err, "env", "the value of '%.80s' must be a string of at most 32 KiB", key);
        total += strlen(key) + json_string_length(value) + 2;
        if (total > ENV_TOTAL_MAX)
            return fail(err, "env", "the variables add up to more than 256 KiB%s", "");
    }
    out->env = json_incref(env);
    return 0;
}

/* `publishes`: a list of users' topic names (src/topics' one rule), each
 * once. */
static int parse_publishes(json_t *spec, struct fl_fn_spec *out, struct fl_buf *err)
{
    json_t *list = json_object_get(spec, "publishes");
    if (list == NULL || json_is_null(list))
        return 0;
    if (!json_is_array(list) || json_array_size(list) > FL_PUBLISHES_MAX) {
        fl_buf_reset(err);
        fl_buf_appendf(err, "spec.publishes: must be a list of at most %d topic names",
                       FL_PUBLISHES_MAX);
        return FL_EINVAL;
    }
    size_t n = json_array_size(list);
    if (n == 0)
        return 0;
    out->publishes = calloc(n, sizeof(*out->publishes));
    if (out->publishes == NULL)
        return FL_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(list, i));
        if (name == NULL || strlen(name) != json_string_length(json_array_get(list, i))) {
            fl_buf_reset(err);
            fl_buf_appendf(err, "spec.publishes[%zu]: must be a topic name", i);
            return FL_EINVAL;
        }
        int rc = fl_topic_name_check(name, err);
        if (rc < 0) {
            char why[512];
            fl_strlcpy(why, err->data ? err->data : "", sizeof(why));
            fl_buf_reset(err);
            fl_buf_appendf(err, "spec.publishes[%zu]: %s", i, why);
            return rc;
        }
        for (size_t j = 0; j < out->npublishes; j++)
            if (strcmp(out->publishes[j], name) == 0) {
                fl_buf_reset(err);
                fl_buf_appendf(err, "spec.publishes[%zu]: '%s' is listed twice", i, name);
                return FL_EINVAL;
            }
        out->publishes[i] = fl_strndup(name, strlen(name));
        if (out->publishes[i] == NULL)
            return FL_ENOMEM;
        out->npublishes++;
    }
    return 0;
}

/* ms as the shortest duration text that says it exactly ("5m", "1500ms"). */
#define RETRY_MIN_MS 10
#define RETRY_MAX_MS 86400000

int fl_retry_policy_parse(json_t *v, const char *where, struct fl_retry_policy *out,
                          struct fl_buf *err)
{
    static const char *const fields[] = {"maxAttempts", "backoff", "maxBackoff", NULL};
    struct fl_retry_policy p = *out;
    const char *key;
    json_t *value;
    int64_t n;

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v)) {
        fl_buf_reset(err);
        fl_buf_appendf(err,
                       "%s: must be an object like {maxAttempts: 3, backoff: 1s, "
                       "maxBackoff: 5m}",
                       where);
        return FL_EINVAL;
    }
    json_object_foreach(v, key, value)
    {
        bool known = false;
        for (size_t i = 0; fields[i] != NULL && !known; i++)
            known = strcmp(key, fields[i]) == 0;
        if (!known) {
            fl_buf_reset(err);
            fl_buf_appendf(err,
                           "%s.%.80s: is not a field of retry (maxAttempts, backoff, "
                           "maxBackoff)",
                           where, key);
            return FL_EINVAL;
        }
        if (json_is_null(value))
            continue;
        bool attempts = strcmp(key, "maxAttempts") == 0;
        int rc = attempts ? int_value(value, where, key, 1, FL_RETRY_MAX_ATTEMPTS, &n, err)
                          : duration_value(value, where, key, RETRY_MIN_MS, RETRY_MAX_MS, &n, err);
        if (rc < 0)
            return rc;
        if (attempts)
            p.max_attempts = (uint32_t)n;
        else if (strcmp(key, "backoff") == 0)
            p.backoff_ms = n;
        else
            p.max_backoff_ms = n;
    }
    if (p.max_backoff_ms < p.backoff_ms) {
        char max[32], backoff[32];
        fl_fmt_duration_ms(p.max_backoff_ms, max, sizeof(max));
        fl_fmt_duration_ms(p.backoff_ms, backoff, sizeof(backoff));
        fl_buf_reset(err);
        fl_buf_appendf(err, "%s.maxBackoff: %s is below the backoff (%s); it must not be", where,
                       max, backoff);
        return FL_EINVAL;
    }
    *out = p;
    return 0;
}

int fl_fn_spec_parse(json_t *spec, struct fl_fn_spec *out, struct fl_buf *err)
{
    static const char *const fields[] = {"environment",
                                         "code",
                                         "entrypoint",
                                         "functionTimeout",
                                         "idleTimeout",
                                         "concurrency",
                                         "requestsPerInstance",
                                         "minScale",
                                         "env",
                                         "limits",
                                         "retry",
                                         "publishes",
                                         NULL};
    int rc;

    memset(out, 0, sizeof(*out));
    out->retry = FL_RETRY_DEFAULT;
    rc = fl_spec_check_fields(spec, fields,
                              "a function (environment, code, entrypoint, "
                              "functionTimeout, idleTimeout, concurrency, "
                              "requestsPerInstance, minScale, env, limits, retry, "
                              "publishes)",
                              err);
    if (rc < 0)
        return rc;
    const char *env = json_string_value(json_object_get(spec, "environment"));
    if (env == NULL)
        return fail(err, "environment", "is required: the name of an environment%s", NULL);
    rc = fl_name_check(env, err);
    if (rc < 0)
        return fail(err, "environment", "'%.80s' is not a valid environment name", env);
    fl_strlcpy(out->environment, env, sizeof(out->environment));
    rc = parse_code(spec, out, err);
    if (rc == 0)
        rc = get_string(spec, "entrypoint", 256, &out->entrypoint, err);
    if (rc == 0)
        rc = get_duration(spec, "functionTimeout", 10, 86400000, FL_DEFAULT_TIMEOUT_MS,
                          &out->timeout_ms, err);
    if (rc == 0)
        rc = get_duration(spec, "idleTimeout", 1000, 86400000 * 7LL, FL_DEFAULT_IDLE_MS,
                          &out->idle_timeout_ms, err);
    if (rc == 0)
        rc = get_int(spec, "concurrency", "concurrency", 1, 1000, FL_DEFAULT_CONCURRENCY,
                     &out->concurrency, err);
    if (rc == 0)
        rc = get_int(spec, "requestsPerInstance", "requestsPerInstance", 1, 10000, 1,
                     &out->requests_per_instance, err);
    if (rc == 0)
        rc = get_int(spec, "minScale", "minScale", 0, 1000, 0, &out->min_scale, err);
    if (rc == 0 && out->min_scale > out->concurrency) {
        fl_buf_reset(err);
        fl_buf_appendf(err, "spec.minScale: %lld is more than spec.concurrency (%lld)",
                       (long long)out->min_scale, (long long)out->concurrency);
        rc = FL_EINVAL;
    }
    if (rc == 0)
        rc = parse_env_vars(spec, out, err);
    if (rc == 0)
        rc = parse_limits(spec, true, &out->limits, err);
    if (rc == 0)
        rc = fl_retry_policy_parse(json_object_get(spec, "retry"), "spec.retry", &out->retry, err);
    if (rc == 0)
        rc = parse_publishes(spec, out, err);
    if (rc < 0)
        fl_fn_spec_release(out);
    return rc;
}
