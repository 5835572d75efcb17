/*
 * Unit tests for src/exec/build: real builds with the repository's c
 * builder (runtimes/c/build) in the real sandbox of this machine.
 */
#include "runner.h"

#include "base/error.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "exec/build.h"

#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static uv_loop_t loop;
static struct fl_sandbox_mode mode;
static struct fl_builder *builder;
static char runtime_dir[PATH_MAX];

struct outcome {
    bool done;
    int err;
    bool ok, cached;
    char deploy[PATH_MAX];
    char *log;
};

static void on_built(int err, const struct fl_build_result *res, void *data)
{
    struct outcome *o = data;
    o->done = true;
    o->err = err;
    if (res == NULL)
        return;
    o->ok = res->ok;
    o->cached = res->cached;
    snprintf(o->deploy, sizeof(o->deploy), "%s", res->deploy_dir);
    o->log = strdup(res->log);
}

static void outcome_free(struct outcome *o)
{
    free(o->log);
    free(o);
}

static void setup(void)
{
    ASSERT_OK(uv_loop_init(&loop));
    fl_sandbox_probe(&mode, false);
    /* the c runtime's directory as the build installs it: its builder and
     * fn.h, from the checkout the tests run in */
    char dir[PATH_MAX + 16], cmd[3 * PATH_MAX];
    snprintf(runtime_dir, sizeof(runtime_dir), "%s/runtime-c", fl_test_tmpdir());
    snprintf(cmd, sizeof(cmd),
             "mkdir -p '%s/include/flint' && cp runtimes/c/build '%s/' && "
             "cp include/flint/fn.h '%s/include/flint/' && chmod -R a+rX '%s'",
             runtime_dir, runtime_dir, runtime_dir, runtime_dir);
    ASSERT_OK(system(cmd));
    snprintf(dir, sizeof(dir), "%s/builds", fl_test_tmpdir());
    ASSERT_OK(fl_builder_new(&loop, dir, &mode, &builder));
}

static bool closed;

static void on_closed(void *data)
{
    closed = true;
}

static void teardown(void)
{
    fl_builder_close(builder, on_closed, NULL);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&loop));
}

/* Store text as a code blob the way the API does: named by its SHA-256. */
static void blob(const char *text, char *path, size_t size, char sha[FL_SHA256_HEX])
{
    struct fl_sha256 h;
    fl_sha256_init(&h);
    fl_sha256_update(&h, text, strlen(text));
    fl_sha256_final_hex(&h, sha);
    snprintf(path, size, "%s/%s", fl_test_tmpdir(), sha);
    ASSERT_OK(fl_file_write_atomic(path, text, strlen(text)));
    ASSERT_OK(chmod(path, 0644));
}

static struct outcome *build(const char *text, const char *filename)
{
    char path[PATH_MAX], sha[FL_SHA256_HEX];
    blob(text, path, sizeof(path), sha);
    struct fl_build_input in = {.code_path = path,
                                .code_sha256 = sha,
                                .code_filename = filename,
                                .runtime = FL_RUNTIME_C,
                                .runtime_dir = runtime_dir};
    struct outcome *o = calloc(1, sizeof(*o));
    ASSERT_OK(fl_builder_build(builder, &in, on_built, o));
    while (!o->done)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_OK(o->err);
    return o;
}

static const char good[] = "#include <flint/fn.h>\n"
                           "int handler(const struct flint_request *q, struct flint_response *r)\n"
                           "{ return flint_response_write(r, \"ok\", 2) < 0; }\n";

TEST_TIMEOUT(a_c_function_is_built_once_then_cached, 60)
{
    setup();
    struct outcome *o = build(good, "fn.c");
    if (!o->ok)
        fl_test_fail(__FILE__, __LINE__, "build failed:\n%s", o->log);
    ASSERT(!o->cached);
    char so[PATH_MAX + 8];
    snprintf(so, sizeof(so), "%s/fn.so", o->deploy);
    ASSERT(access(so, R_OK) == 0);
    struct outcome *again = build(good, "fn.c");
    ASSERT(again->ok);
    ASSERT(again->cached);
    ASSERT_STR_EQ(again->deploy, o->deploy);
    outcome_free(o);
    outcome_free(again);
    teardown();
}

TEST_TIMEOUT(a_failed_build_keeps_its_log_within_the_bound, 60)
{
    setup();
    /* thousands of errors: far more compiler output than the log keeps */
    size_t cap = 400000, used = 0;
    char *text = malloc(cap);
    used += (size_t)snprintf(text + used, cap - used, "#include <flint/fn.h>\n");
    for (int i = 0; i < 3000 && used < cap - 100; i++)
        used +=
            (size_t)snprintf(text + used, cap - used, "int f%d(void) { return nope_%d; }\n", i, i);
    struct outcome *o = build(text, "many.c");
    ASSERT(!o->ok);
    size_t len = strlen(o->log);
    ASSERT(len > FL_BUILD_LOG_MAX / 2);
    ASSERT(len <= FL_BUILD_LOG_MAX + 256);
    ASSERT(strstr(o->log, "many.c") != NULL);
    /* the mark and the exit's note both arrive whole, in that order */
    const char *mark = strstr(o->log, "... (build log truncated)\n");
    ASSERT(mark != NULL);
    ASSERT(strstr(mark, "build: failed with exit status") != NULL);
    /* read back from the cache, the log is the same */
    struct outcome *cached = build(text, "many.c");
    ASSERT(cached->cached && !cached->ok);
    ASSERT_STR_EQ(cached->log, o->log);
    free(text);
    outcome_free(o);
    outcome_free(cached);
    teardown();
}
