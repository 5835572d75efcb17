/* Unit tests for src/exec/spec: environment and function specs. */
#include "runner.h"

#include "base/error.h"
#include "base/str.h"
#include "exec/spec.h"

#define SHA  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CODE "\"code\": {\"sha256\": \"" SHA "\", \"filename\": \"hello.py\"}"

static void env_invalid(const char *json, const char *message)
{
    struct fl_env_spec s;
    struct fl_buf err;
    json_t *spec = json_loads(json, 0, NULL);
    ASSERT(spec != NULL);
    fl_buf_init(&err, 1024);
    ASSERT_EQ(fl_env_spec_parse(spec, &s, &err), FL_EINVAL);
    if (strstr(err.data, message) == NULL)
        fl_test_fail(__FILE__, __LINE__, "'%s' does not contain '%s'", err.data, message);
    fl_buf_release(&err);
    json_decref(spec);
}

static void fn_invalid(const char *json, const char *message)
{
    struct fl_fn_spec s;
    struct fl_buf err;
    json_t *spec = json_loads(json, 0, NULL);
    ASSERT(spec != NULL);
    fl_buf_init(&err, 1024);
    ASSERT_EQ(fl_fn_spec_parse(spec, &s, &err), FL_EINVAL);
    if (strstr(err.data, message) == NULL)
        fl_test_fail(__FILE__, __LINE__, "'%s' does not contain '%s'", err.data, message);
    fl_buf_release(&err);
    json_decref(spec);
}

TEST(environment_defaults_and_fields)
{
    struct fl_env_spec s;
    struct fl_buf err;
    fl_buf_init(&err, 1024);
    json_t *spec = json_loads("{\"runtime\": \"python\"}", 0, NULL);
    ASSERT_OK(fl_env_spec_parse(spec, &s, &err));
    ASSERT_EQ(s.runtime, FL_RUNTIME_PYTHON);
    ASSERT_EQ(s.poolsize, FL_DEFAULT_POOLSIZE);
    ASSERT(s.network);
    ASSERT(s.builder == NULL && s.command == NULL);
    ASSERT_EQ(s.limits.memory_bytes, FL_DEFAULT_MEMORY);
    ASSERT_EQ(s.limits.processes, FL_DEFAULT_PROCESSES);
    fl_env_spec_release(&s);
    json_decref(spec);

    spec = json_loads("{\"runtime\": \"custom\", \"command\": [\"/usr/bin/env\", \"ruby\"],"
                      " \"builder\": \"make\", \"poolsize\": 0, \"network\": false,"
                      " \"limits\": {\"memory\": \"1G\", \"cpuSeconds\": 5, \"processes\": 8,"
                      " \"cpus\": 0.5}}",
                      0, NULL);
    ASSERT_OK(fl_env_spec_parse(spec, &s, &err));
    ASSERT_EQ(s.runtime, FL_RUNTIME_CUSTOM);
    ASSERT_STR_EQ(s.command[1], "ruby");
    ASSERT(s.command[2] == NULL);
    ASSERT_STR_EQ(s.builder, "make");
    ASSERT_EQ(s.poolsize, 0);
    ASSERT(!s.network);
    ASSERT_EQ(s.limits.memory_bytes, 1ULL << 30);
    ASSERT_EQ(s.limits.cpu_seconds, 5);
    ASSERT_EQ(s.limits.open_files, FL_DEFAULT_OPEN_FILES);
    ASSERT_EQ(s.limits.processes, 8);
    ASSERT_EQ(s.limits.cpu_millis, 500);
    ASSERT_STR_EQ(fl_runtime_name(s.runtime), "custom");
    fl_env_spec_release(&s);
    json_decref(spec);
    fl_buf_release(&err);
}

TEST(environment_errors_name_the_field)
{
    env_invalid("[]", "spec: must be an object");
    env_invalid("{}", "spec.runtime: is required");
    env_invalid("{\"runtime\": \"cobol\"}",
                "spec.runtime: must be c, binary, python, node or custom, not 'cobol'");
    env_invalid("{\"runtime\": \"python\", \"image\": \"x\"}",
                "spec.image: is not a field of an environment");
    env_invalid("{\"runtime\": \"python\", \"poolsize\": 65}",
                "spec.poolsize: must be a whole number from 0 to 64, not 65");
    env_invalid("{\"runtime\": \"python\", \"poolsize\": \"2\"}",
                "spec.poolsize: must be a whole number");
    env_invalid("{\"runtime\": \"custom\"}", "spec.command: a custom runtime needs");
    env_invalid("{\"runtime\": \"custom\", \"command\": [1]}",
                "spec.command: must hold only strings");
    env_invalid("{\"runtime\": \"python\", \"command\": [\"x\"]}",
                "spec.command: is only for runtime custom");
    env_invalid("{\"runtime\": \"python\", \"network\": \"no\"}",
                "spec.network: must be true or false");
    env_invalid("{\"runtime\": \"python\", \"limits\": {\"memory\": \"1T\"}}",
                "spec.limits.memory");
    env_invalid("{\"runtime\": \"python\", \"limits\": {\"memory\": \"1M\"}}", "from 16M to 64G");
    env_invalid("{\"runtime\": \"python\", \"limits\": {\"cpus\": 0}}",
                "spec.limits.cpus: must be a number of cores from 0.01 to 256");
    env_invalid("{\"runtime\": \"python\", \"limits\": {\"cpus\": \"half\"}}", "spec.limits.cpus");
    env_invalid("{\"runtime\": \"python\", \"limits\": {\"disk\": 1}}",
                "spec.limits.disk: is not a limit");
    env_invalid("{\"runtime\": \"python\", \"builder\": \"\"}",
                "spec.builder: must be a non-empty string");
}

TEST(function_defaults_and_fields)
{
    struct fl_fn_spec s;
    struct fl_buf err;
    fl_buf_init(&err, 1024);
    json_t *spec = json_loads("{\"environment\": \"python\", " CODE "}", 0, NULL);
    ASSERT_OK(fl_fn_spec_parse(spec, &s, &err));
    ASSERT_STR_EQ(s.environment, "python");
    ASSERT_STR_EQ(s.code_sha256, SHA);
    ASSERT_STR_EQ(s.code_filename, "hello.py");
    ASSERT(s.entrypoint == NULL);
    ASSERT_EQ(s.timeout_ms, FL_DEFAULT_TIMEOUT_MS);
    ASSERT_EQ(s.idle_timeout_ms, FL_DEFAULT_IDLE_MS);
    ASSERT_EQ(s.concurrency, FL_DEFAULT_CONCURRENCY);
    ASSERT_EQ(s.requests_per_instance, 1);
    ASSERT_EQ(s.min_scale, 0);
    ASSERT_EQ(json_object_size(s.env), 0);
    ASSERT_EQ(s.limits.memory_bytes, 0); /* the environment's */
    fl_fn_spec_release(&s);
    json_decref(spec);

    spec =
        json_loads("{\"environment\": \"py-3\", " CODE ", \"entrypoint\": \"hello.main\","
                   " \"functionTimeout\": \"500ms\", \"idleTimeout\": \"5m\", \"concurrency\": 10,"
                   " \"requestsPerInstance\": 4, \"minScale\": 2, \"env\": {\"GREETING\": \"hi\"},"
                   " \"limits\": {\"memory\": \"64M\"}}",
                   0, NULL);
    ASSERT_OK(fl_fn_spec_parse(spec, &s, &err));
    ASSERT_STR_EQ(s.entrypoint, "hello.main");
    ASSERT_EQ(s.timeout_ms, 500);
    ASSERT_EQ(s.idle_timeout_ms, 300000);
    ASSERT_EQ(s.concurrency, 10);
    ASSERT_EQ(s.requests_per_instance, 4);
    ASSERT_EQ(s.min_scale, 2);
    ASSERT_STR_EQ(json_string_value(json_object_get(s.env, "GREETING")), "hi");
    ASSERT_EQ(s.limits.memory_bytes, 64ULL << 20);
    fl_fn_spec_release(&s);
    json_decref(spec);
    fl_buf_release(&err);
}

TEST(function_errors_name_the_field)
{
    fn_invalid("{" CODE "}", "spec.environment: is required");
    fn_invalid("{\"environment\": \"Py\", " CODE "}", "spec.environment: 'Py' is not a valid");
    fn_invalid("{\"environment\": \"py\"}", "spec.code: is required");
    fn_invalid("{\"environment\": \"py\", \"code\": {\"sha256\": \"abc\", \"filename\": \"a\"}}",
               "spec.code.sha256: must be 64");
    fn_invalid("{\"environment\": \"py\", \"code\": {\"sha256\": \"" SHA
               "\", \"filename\": \"../a\"}}",
               "spec.code.filename");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"functionTimeout\": \"soon\"}",
               "spec.functionTimeout: must be a duration");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"functionTimeout\": \"1ms\"}",
               "spec.functionTimeout");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"concurrency\": 0}",
               "spec.concurrency: must be a whole number from 1 to 1000, not 0");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"minScale\": 9}",
               "spec.minScale: 9 is more than spec.concurrency (5)");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"env\": {\"FLINT_X\": \"1\"}}",
               "spec.env: 'FLINT_X' cannot be set: FLINT_* is read by Flint");
    /* what the loader and the runtimes read before the function runs */
    fn_invalid("{\"environment\": \"py\", " CODE ", \"env\": {\"LD_PRELOAD\": \"/tmp/x.so\"}}",
               "spec.env: 'LD_PRELOAD' cannot be set: LD_* is read by the dynamic loader");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"env\": {\"LD_LIBRARY_PATH\": \"/tmp\"}}",
               "'LD_LIBRARY_PATH' cannot be set");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"env\": {\"GLIBC_TUNABLES\": \"x\"}}",
               "'GLIBC_TUNABLES' cannot be set: GLIBC_TUNABLES is read by the dynamic loader");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"env\": {\"PYTHONSTARTUP\": \"x\"}}",
               "'PYTHONSTARTUP' cannot be set");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"env\": {\"NODE_OPTIONS\": \"x\"}}",
               "'NODE_OPTIONS' cannot be set");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"env\": {\"1A\": \"1\"}}",
               "'1A' is not a usable");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"env\": {\"A\": 1}}",
               "the value of 'A' must be a string");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"timeout\": 3}",
               "spec.timeout: is not a field of a function");
}

TEST(names_are_checked)
{
    struct fl_buf err;
    fl_buf_init(&err, 256);
    ASSERT_OK(fl_name_check("hello-world-2", &err));
    ASSERT_OK(fl_name_check("9lives", &err));
    ASSERT_EQ(fl_name_check("", &err), FL_EINVAL);
    ASSERT_EQ(fl_name_check("-x", &err), FL_EINVAL);
    ASSERT_EQ(fl_name_check("Hello", &err), FL_EINVAL);
    ASSERT_EQ(fl_name_check("a/b", &err), FL_EINVAL);
    ASSERT(strstr(err.data, "not 'a/b'") != NULL);
    char long_name[80];
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    ASSERT_EQ(fl_name_check(long_name, &err), FL_EINVAL);
    long_name[63] = '\0';
    ASSERT_OK(fl_name_check(long_name, &err));
    fl_buf_release(&err);
}

/* fl_retry_policy_parse() of json over start: 0 and *out, or FL_EINVAL
 * with message in the error and start unchanged. */
static void retry_parse(const char *json, struct fl_retry_policy start, int want,
                        const char *message, struct fl_retry_policy *out)
{
    struct fl_buf err;
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    ASSERT(v != NULL);
    fl_buf_init(&err, 1024);
    *out = start;
    ASSERT_EQ(fl_retry_policy_parse(v, "spec.retry", out, &err), want);
    if (want < 0) {
        if (strstr(err.data, message) == NULL)
            fl_test_fail(__FILE__, __LINE__, "'%s' does not contain '%s'", err.data, message);
        ASSERT_EQ(out->max_attempts, start.max_attempts);
        ASSERT_EQ(out->backoff_ms, start.backoff_ms);
        ASSERT_EQ(out->max_backoff_ms, start.max_backoff_ms);
    }
    fl_buf_release(&err);
    json_decref(v);
}

TEST(retry_policy_whole_and_partial_over_what_was_there)
{
    struct fl_retry_policy p;
    retry_parse("{\"maxAttempts\": 5, \"backoff\": \"250ms\", \"maxBackoff\": \"1h\"}",
                FL_RETRY_DEFAULT, 0, NULL, &p);
    ASSERT_EQ(p.max_attempts, 5);
    ASSERT_EQ(p.backoff_ms, 250);
    ASSERT_EQ(p.max_backoff_ms, 3600000);
    /* a field left out keeps what was there: the defaults ... */
    retry_parse("{\"maxAttempts\": 1}", FL_RETRY_DEFAULT, 0, NULL, &p);
    ASSERT_EQ(p.max_attempts, 1);
    ASSERT_EQ(p.backoff_ms, 1000);
    ASSERT_EQ(p.max_backoff_ms, 300000);
    /* ... or a function's policy under a route's */
    struct fl_retry_policy fn = {7, 2000, 60000};
    retry_parse("{\"backoff\": \"10ms\", \"maxBackoff\": null}", fn, 0, NULL, &p);
    ASSERT_EQ(p.max_attempts, 7);
    ASSERT_EQ(p.backoff_ms, 10);
    ASSERT_EQ(p.max_backoff_ms, 60000);
    /* whole seconds as numbers, like every duration of a spec; the bounds */
    retry_parse("{\"backoff\": 2, \"maxBackoff\": \"24h\", \"maxAttempts\": 100}", FL_RETRY_DEFAULT,
                0, NULL, &p);
    ASSERT_EQ(p.backoff_ms, 2000);
    ASSERT_EQ(p.max_backoff_ms, 86400000);
    ASSERT_EQ(p.max_attempts, FL_RETRY_MAX_ATTEMPTS);
    /* absent or null: nothing changes */
    retry_parse("null", fn, 0, NULL, &p);
    ASSERT_EQ(p.max_attempts, 7);
    ASSERT_EQ(p.backoff_ms, 2000);
    retry_parse("{}", fn, 0, NULL, &p);
    ASSERT_EQ(p.max_backoff_ms, 60000);
    p = fn;
    struct fl_buf err;
    fl_buf_init(&err, 256);
    ASSERT_OK(fl_retry_policy_parse(NULL, "spec.retry", &p, &err));
    ASSERT_EQ(p.max_attempts, 7);
    fl_buf_release(&err);
}

TEST(retry_policy_errors_name_the_field_and_change_nothing)
{
    static const struct {
        const char *json, *message;
    } bad[] = {
        {"[]", "spec.retry: must be an object"},
        {"\"3\"", "spec.retry: must be an object"},
        {"{\"attempts\": 3}",
         "spec.retry.attempts: is not a field of retry (maxAttempts, backoff, maxBackoff)"},
        {"{\"maxAttempts\": 0}",
         "spec.retry.maxAttempts: must be a whole number from 1 to 100, not 0"},
        {"{\"maxAttempts\": 101}", "not 101"},
        {"{\"maxAttempts\": \"3\"}", "spec.retry.maxAttempts: must be a whole number"},
        {"{\"maxAttempts\": 2.5}", "spec.retry.maxAttempts: must be a whole number"},
        {"{\"backoff\": \"soon\"}", "spec.retry.backoff: must be a duration like"},
        {"{\"backoff\": \"5ms\"}", "spec.retry.backoff: must be a duration like \"30s\", "
                                   "\"500ms\" or \"5m\" from 10ms to 86400s"},
        {"{\"maxBackoff\": \"25h\"}", "spec.retry.maxBackoff: must be a duration"},
        {"{\"maxBackoff\": -1}", "spec.retry.maxBackoff: must be a duration"},
        {"{\"maxBackoff\": true}", "spec.retry.maxBackoff: must be a duration"},
    };
    struct fl_retry_policy p;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        retry_parse(bad[i].json, FL_RETRY_DEFAULT, FL_EINVAL, bad[i].message, &p);
    /* maxBackoff below backoff, given together or over what was there */
    retry_parse("{\"backoff\": \"10s\", \"maxBackoff\": \"5s\"}", FL_RETRY_DEFAULT, FL_EINVAL,
                "spec.retry.maxBackoff: 5s is below the backoff (10s)", &p);
    retry_parse("{\"backoff\": \"10m\"}", FL_RETRY_DEFAULT, FL_EINVAL,
                "spec.retry.maxBackoff: 5m is below the backoff (10m)", &p);
    retry_parse("{\"maxBackoff\": \"1500ms\"}", (struct fl_retry_policy){3, 2000, 60000}, FL_EINVAL,
                "spec.retry.maxBackoff: 1500ms is below the backoff (2s)", &p);
    /* equal is fine: a constant delay */
    retry_parse("{\"backoff\": \"5m\"}", FL_RETRY_DEFAULT, 0, NULL, &p);
    ASSERT_EQ(p.backoff_ms, p.max_backoff_ms);
    /* the message names where the policy is */
    struct fl_buf err;
    fl_buf_init(&err, 256);
    json_t *v = json_pack("{s:i}", "maxAttempts", 0);
    p = FL_RETRY_DEFAULT;
    ASSERT_EQ(fl_retry_policy_parse(v, "spec.triggers[0].retry", &p, &err), FL_EINVAL);
    ASSERT(fl_str_has_prefix(err.data, "spec.triggers[0].retry.maxAttempts: "));
    json_decref(v);
    fl_buf_release(&err);
}

TEST(function_retry_defaults_and_spec)
{
    struct fl_fn_spec s;
    struct fl_buf err;
    fl_buf_init(&err, 1024);
    json_t *spec = json_loads("{\"environment\": \"py\", " CODE "}", 0, NULL);
    ASSERT_OK(fl_fn_spec_parse(spec, &s, &err));
    ASSERT_EQ(s.retry.max_attempts, 3);
    ASSERT_EQ(s.retry.backoff_ms, 1000);
    ASSERT_EQ(s.retry.max_backoff_ms, 300000);
    fl_fn_spec_release(&s);
    json_decref(spec);
    spec = json_loads("{\"environment\": \"py\", " CODE
                      ", \"retry\": {\"maxAttempts\": 10, \"backoff\": \"100ms\"}}",
                      0, NULL);
    ASSERT_OK(fl_fn_spec_parse(spec, &s, &err));
    ASSERT_EQ(s.retry.max_attempts, 10);
    ASSERT_EQ(s.retry.backoff_ms, 100);
    ASSERT_EQ(s.retry.max_backoff_ms, 300000);
    fl_fn_spec_release(&s);
    json_decref(spec);
    fl_buf_release(&err);
    fn_invalid("{\"environment\": \"py\", " CODE ", \"retry\": {\"maxBackoff\": \"100ms\"}}",
               "spec.retry.maxBackoff: 100ms is below the backoff (1s)");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"retry\": {\"tries\": 2}}",
               "spec.retry.tries: is not a field of retry");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"retry\": 3}",
               "spec.retry: must be an object");
}

TEST(function_publishes_are_topic_names_each_once)
{
    struct fl_fn_spec s;
    struct fl_buf err;
    fl_buf_init(&err, 1024);
    json_t *spec = json_loads("{\"environment\": \"py\", " CODE "}", 0, NULL);
    ASSERT_OK(fl_fn_spec_parse(spec, &s, &err));
    ASSERT_EQ(s.npublishes, 0);
    ASSERT(s.publishes == NULL);
    fl_fn_spec_release(&s);
    json_decref(spec);
    spec = json_loads(
        "{\"environment\": \"py\", " CODE ", \"publishes\": [\"orders\", \"a.b-c_d\"]}", 0, NULL);
    ASSERT_OK(fl_fn_spec_parse(spec, &s, &err));
    ASSERT_EQ(s.npublishes, 2);
    ASSERT_STR_EQ(s.publishes[0], "orders");
    ASSERT_STR_EQ(s.publishes[1], "a.b-c_d");
    fl_fn_spec_release(&s);
    json_decref(spec);
    fl_buf_release(&err);
    fn_invalid("{\"environment\": \"py\", " CODE ", \"publishes\": \"orders\"}",
               "spec.publishes: must be a list of at most 64 topic names");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"publishes\": [\"ok\", 7]}",
               "spec.publishes[1]: must be a topic name");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"publishes\": [\"async/f\"]}",
               "spec.publishes[0]: topic: a name is 1 to 256");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"publishes\": [\"async-callbacks\"]}",
               "spec.publishes[0]: topic: 'async-callbacks' is Flint's own topic");
    fn_invalid("{\"environment\": \"py\", " CODE ", \"publishes\": [\"a\", \"b\", \"a\"]}",
               "spec.publishes[2]: 'a' is listed twice");
    char big[4096] = "{\"environment\": \"py\", " CODE ", \"publishes\": [";
    for (int i = 0; i <= FL_PUBLISHES_MAX; i++)
        snprintf(big + strlen(big), sizeof(big) - strlen(big), "%s\"t%d\"", i ? ", " : "", i);
    fl_strlcpy(big + strlen(big), "]}", sizeof(big) - strlen(big));
    fn_invalid(big, "spec.publishes: must be a list of at most 64");
}
