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
static uint64_t max_output_files; /* 0: the default */

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
    ASSERT(snprintf(cmd, sizeof(cmd),
                    "mkdir -p '%s/include/flint' && cp runtimes/c/build '%s/' && "
                    "cp include/flint/fn.h '%s/include/flint/' && chmod -R a+rX '%s'",
                    runtime_dir, runtime_dir, runtime_dir, runtime_dir) < (int)sizeof(cmd));
    ASSERT_OK(system(cmd));
    snprintf(dir, sizeof(dir), "%s/builds", fl_test_tmpdir());
    struct fl_builder_config cfg;
    fl_builder_config_init(&cfg);
    cfg.dir = dir;
    cfg.mode = &mode;
    cfg.max_output_files = max_output_files;
    ASSERT_OK(fl_builder_new(&loop, &cfg, &builder));
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

/* Run the build of in (its code path and hash filled in from text) to
 * its end. */
static struct outcome *run_build(const char *text, struct fl_build_input in)
{
    char path[PATH_MAX], sha[FL_SHA256_HEX];
    blob(text, path, sizeof(path), sha);
    in.code_path = path;
    in.code_sha256 = sha;
    struct outcome *o = calloc(1, sizeof(*o));
    ASSERT_OK(fl_builder_build(builder, &in, on_built, o));
    while (!o->done)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_OK(o->err);
    return o;
}

static struct outcome *build(const char *text, const char *filename)
{
    return run_build(text, (struct fl_build_input){.code_filename = filename,
                                                   .runtime = FL_RUNTIME_C,
                                                   .runtime_dir = runtime_dir});
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

/* A python build with an environment's builder command (also its code:
 * the command is what is tested). */
static struct outcome *build_with(const char *builder_cmd)
{
    return run_build(builder_cmd, (struct fl_build_input){.code_filename = "app.py",
                                                          .runtime = FL_RUNTIME_PYTHON,
                                                          .builder = builder_cmd});
}

static mode_t mode_in(const char *deploy, const char *name, struct stat *st)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s", deploy, name);
    if (lstat(p, st) != 0)
        return 0;
    return st->st_mode;
}

TEST_TIMEOUT(a_builders_output_loses_every_power_it_tried_to_keep, 60)
{
    setup();
    struct outcome *o = build_with("printf x > suid && chmod 4755 suid && "
                                   "printf x > sgid && chmod 2775 sgid && "
                                   "mkdir open && chmod 1777 open && printf y > open/w && "
                                   "chmod 666 open/w && mkfifo fifo && mkfifo open/fifo && "
                                   "ln -s /etc/shadow shadow && ln -s /etc etc");
    if (!o->ok)
        fl_test_fail(__FILE__, __LINE__, "build failed:\n%s", o->log);
    struct stat st;
    ASSERT_EQ(mode_in(o->deploy, "suid", &st) & 07777, 0755);
    ASSERT_EQ(st.st_uid, 0);
    ASSERT_EQ(st.st_gid, 0);
    ASSERT_EQ(mode_in(o->deploy, "sgid", &st) & 07777, 0755);
    ASSERT_EQ(mode_in(o->deploy, "app.py", &st) & 07777, 0644);
    ASSERT_EQ(mode_in(o->deploy, "open", &st) & 07777, 0755);
    ASSERT_EQ(mode_in(o->deploy, "open/w", &st) & 07777, 0644);
    ASSERT_EQ(mode_in(o->deploy, "fifo", &st), 0);
    ASSERT_EQ(mode_in(o->deploy, "open/fifo", &st), 0);
    ASSERT(S_ISLNK(mode_in(o->deploy, "shadow", &st)));
    ASSERT(S_ISLNK(mode_in(o->deploy, "etc", &st)));
    ASSERT(strstr(o->log, "removed 2 special files") != NULL);
    /* the root of the output too */
    ASSERT_EQ(mode_in(o->deploy, ".", &st) & 07777, 0755);
    outcome_free(o);
    teardown();
}

TEST_TIMEOUT(a_build_whose_output_is_over_the_file_bound_fails_clearly, 60)
{
    max_output_files = 100;
    setup();
    struct outcome *o = build_with("i=0; while [ $i -lt 150 ]; do : > f$i; i=$((i+1)); done");
    ASSERT(!o->ok);
    ASSERT(strstr(o->log, "build: the output has more than 100 files and directories") != NULL);
    /* under the bound, the same kind of build passes */
    struct outcome *fine = build_with("i=0; while [ $i -lt 90 ]; do : > f$i; i=$((i+1)); done");
    if (!fine->ok)
        fl_test_fail(__FILE__, __LINE__, "build failed:\n%s", fine->log);
    outcome_free(o);
    outcome_free(fine);
    teardown();
}

TEST_TIMEOUT(a_build_that_swaps_its_output_for_a_link_fails, 60)
{
    setup();
    /* /tmp: inside the sandbox a private directory (the script's last
     * chmod -R goes through the link and succeeds); outside, the host's */
    struct stat before, after;
    ASSERT_OK(stat("/tmp", &before));
    struct outcome *o = build_with("cd .. && rm -rf deploy && ln -s /tmp deploy");
    ASSERT(!o->ok);
    if (strstr(o->log, "build: the output directory is a symbolic link") == NULL)
        fl_test_fail(__FILE__, __LINE__, "unexpected log:\n%s", o->log);
    ASSERT_OK(stat("/tmp", &after)); /* not normalized through the link */
    ASSERT_EQ(after.st_mode, before.st_mode);
    ASSERT_EQ(after.st_uid, before.st_uid);
    outcome_free(o);
    teardown();
}
