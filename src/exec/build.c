/*
 * Builds, cached by key on disk (see build.h for the layout).
 *
 * A build is one sandboxed sh running the script below: unpack, then the
 * builder. Its output lines go to the build log; its exit decides the
 * status. Requests for a key being built wait on the running job.
 */
#include "exec/build.h"

#include "base/buf.h"
#include "base/error.h"
#include "base/log.h"
#include "base/sha256.h"
#include "base/str.h"
#include "base/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUILD_WALL_MS (10 * 60 * 1000)
#define KEY_VERSION   "flint-build-1"
/* the log as kept: FL_BUILD_LOG_MAX of output, the truncation mark and the
 * exit's note (the same bound reads a cached log back whole) */
#define LOG_BUF_MAX (FL_BUILD_LOG_MAX + 256)

/* Unpack FLINT_CODE and build it in the sandbox's private /tmp (a tmpfs of
 * FL_BUILD_TMP_MAX bytes: an archive bomb or a runaway builder fills it and
 * fails), then, with nothing else of the build left running, copy the
 * deployment out to FLINT_OUT/deploy on the host. */
static const char build_script[] =
    "set -eu\n"
    "work=$(mktemp -d); src=$work/src; deploy=$work/deploy\n"
    "mkdir -p \"$src\"\n"
    "case $FLINT_KIND in\n"
    "  tar) tar -xzf \"$FLINT_CODE\" -C \"$src\" --no-same-owner --no-same-permissions ;;\n"
    "  zip) unzip -q \"$FLINT_CODE\" -d \"$src\" ;;\n"
    "  *) cp \"$FLINT_CODE\" \"$src/$FLINT_NAME\" ;;\n"
    "esac\n"
    "chmod -R a+rX \"$src\"\n"
    "pkg=$src\n"
    "if [ \"$FLINT_KIND\" = file ]; then\n"
    "  pkg=$src/$FLINT_NAME\n"
    "  [ \"$FLINT_RUNTIME\" != binary ] || chmod a+x \"$pkg\"\n"
    "fi\n"
    "if [ \"$FLINT_RUNTIME\" = c ]; then\n"
    "  mkdir -p \"$deploy\"\n"
    "  (SRC_PKG=$pkg DEPLOY_PKG=$deploy/fn.so sh -c \"$FLINT_BUILDER\")\n"
    "elif [ -n \"$FLINT_BUILDER\" ]; then\n"
    "  cp -a \"$src\" \"$deploy\"\n"
    "  (cd \"$deploy\" && SRC_PKG=$pkg DEPLOY_PKG=$deploy sh -c \"$FLINT_BUILDER\")\n"
    "else\n"
    "  mv \"$src\" \"$deploy\"\n"
    "fi\n"
    "# whatever the builder left running (the sandbox's uid is this build's\n"
    "# alone) must not write while the deployment is copied out\n"
    "kill -KILL -1 2>/dev/null || true\n"
    "chmod -R a+rX \"$deploy\"\n"
    "cp -a \"$deploy\" \"$FLINT_OUT/deploy\"\n";

struct waiter {
    fl_build_cb cb;
    void *data;
    struct waiter *next;
};

struct job {
    struct fl_builder *b;
    char key[FL_SHA256_HEX];
    char dir[PATH_MAX];
    struct fl_buf log;
    struct waiter *waiters;
    struct fl_sandbox *sb;
    uv_timer_t timer; /* the wall-clock bound */
    bool timed_out, canceled;
    bool log_truncated; /* past FL_BUILD_LOG_MAX: later lines are dropped */
    struct job *next;
};

/* A result found on disk, answered from the loop. */
struct ready {
    char key[FL_SHA256_HEX];
    bool ok;
    struct waiter w;
    struct ready *next;
};

struct fl_builder {
    uv_loop_t *loop;
    char dir[PATH_MAX];
    struct fl_sandbox_mode mode;
    struct job *jobs;
    struct ready *ready;
    uv_timer_t ready_timer;
    int jobs_running;
    bool closing;
    void (*done)(void *data);
    void *done_data;
};

enum code_kind { KIND_FILE, KIND_TAR, KIND_ZIP };

static enum code_kind code_kind(const char *filename)
{
    if (filename == NULL)
        return KIND_FILE;
    if (fl_str_has_suffix(filename, ".tar.gz") || fl_str_has_suffix(filename, ".tgz"))
        return KIND_TAR;
    if (fl_str_has_suffix(filename, ".zip"))
        return KIND_ZIP;
    return KIND_FILE;
}

void fl_build_entry(const struct fl_build_input *in, char *out, size_t size)
{
    if (in->runtime == FL_RUNTIME_C)
        fl_strlcpy(out, "fn.so", size);
    else if (code_kind(in->code_filename) == KIND_FILE)
        fl_strlcpy(out, in->code_filename ? in->code_filename : "code", size);
    else
        fl_strlcpy(out, "", size);
}

static void build_key(const struct fl_build_input *in, char key[FL_SHA256_HEX])
{
    struct fl_sha256 h;
    const char *parts[] = {KEY_VERSION, in->code_sha256, in->code_filename ? in->code_filename : "",
                           fl_runtime_name(in->runtime), in->builder ? in->builder : ""};
    fl_sha256_init(&h);
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        fl_sha256_update(&h, parts[i], strlen(parts[i]) + 1);
    fl_sha256_final_hex(&h, key);
}

/* ---- answering ---- */

static void answer(struct waiter *w, int err, struct fl_builder *b, const char *key, bool ok,
                   const char *log, bool cached)
{
    while (w != NULL) {
        struct waiter *next = w->next;
        char deploy[PATH_MAX];
        snprintf(deploy, sizeof(deploy), "%s/%s/out/deploy", b->dir, key);
        struct fl_build_result res = {
            .ok = ok, .key = key, .deploy_dir = deploy, .log = log ? log : "", .cached = cached};
        w->cb(err, err == 0 ? &res : NULL, w->data);
        w = next;
    }
}

static void maybe_done(struct fl_builder *b);

static void on_ready_timer(uv_timer_t *t)
{
    struct fl_builder *b = t->data;
    struct ready *list = b->ready;
    b->ready = NULL;
    while (list != NULL) {
        struct ready *r = list;
        list = r->next;
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/%s/build.log", b->dir, r->key);
        struct fl_buf log;
        fl_buf_init(&log, LOG_BUF_MAX);
        fl_file_read(path, &log);
        r->w.next = NULL;
        answer(&r->w, b->closing ? FL_ECANCELED : 0, b, r->key, r->ok, log.data, true);
        fl_buf_release(&log);
        free(r);
    }
}

/* ---- jobs ---- */

static void job_free(struct job *j)
{
    fl_buf_release(&j->log);
    free(j);
}

static void job_timer_closed(uv_handle_t *h)
{
    struct job *j = h->data;
    struct fl_builder *b = j->b;
    job_free(j);
    b->jobs_running--;
    maybe_done(b);
}

static void job_unlink(struct job *j)
{
    for (struct job **p = &j->b->jobs; *p != NULL; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            return;
        }
    }
}

static void on_line(struct fl_sandbox *sb, bool is_stderr, const char *line, size_t len, void *data)
{
    struct job *j = data;
    if (j->log_truncated)
        return;
    if (j->log.len + len + 1 > FL_BUILD_LOG_MAX) {
        /* the buffer has room past the bound for this and the exit's note */
        fl_buf_appends(&j->log, "... (build log truncated)\n");
        j->log_truncated = true;
        return;
    }
    fl_buf_append(&j->log, line, len);
    fl_buf_appendc(&j->log, '\n');
}

static void on_exit_done(struct fl_sandbox *sb, enum fl_sandbox_exit how, int status, void *data)
{
    struct job *j = data;
    struct fl_builder *b = j->b;
    bool ok = how == FL_EXIT_NORMAL && status == 0 && !j->timed_out;
    j->sb = NULL;
    uv_timer_stop(&j->timer);
    if (!ok) {
        if (j->timed_out)
            fl_buf_appendf(&j->log, "build: stopped after %d minutes\n", BUILD_WALL_MS / 60000);
        else if (how == FL_EXIT_MEMORY)
            fl_buf_appends(&j->log, "build: stopped: out of memory\n");
        else if (how == FL_EXIT_CPU)
            fl_buf_appends(&j->log, "build: stopped: CPU time limit\n");
        else if (how == FL_EXIT_SIGNAL)
            fl_buf_appendf(&j->log, "build: killed by signal %d\n", status);
        else if (how == FL_EXIT_NORMAL)
            fl_buf_appendf(&j->log, "build: failed with exit status %d\n", status);
    }
    int err = 0;
    if (!j->canceled) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/build.log", j->dir);
        err = fl_file_write_atomic(path, j->log.data ? j->log.data : "", j->log.len);
        snprintf(path, sizeof(path), "%s/status", j->dir);
        if (err == 0)
            err = fl_file_write_atomic(path, ok ? "ok\n" : "failed\n", ok ? 3 : 7);
        if (err < 0)
            fl_log(FL_LOG_ERROR, "build", "cannot record a build", "key=%s err=\"%s\"", j->key,
                   fl_strerror(err));
        fl_log(ok ? FL_LOG_INFO : FL_LOG_WARN, "build", ok ? "built" : "build failed", "key=%.12s",
               j->key);
    }
    job_unlink(j);
    struct waiter *w = j->waiters;
    j->waiters = NULL;
    answer(w, j->canceled ? FL_ECANCELED : err, b, j->key, ok, j->log.data, false);
    while (w != NULL) {
        struct waiter *next = w->next;
        free(w);
        w = next;
    }
    uv_close((uv_handle_t *)&j->timer, job_timer_closed);
}

static void on_job_timer(uv_timer_t *t)
{
    struct job *j = t->data;
    j->timed_out = true;
    if (j->sb != NULL)
        fl_sandbox_stop(j->sb, 1000);
}

static int job_start(struct fl_builder *b, struct job *j, const struct fl_build_input *in)
{
    char out[PATH_MAX + 8], runtime_build[PATH_MAX + 8];
    snprintf(out, sizeof(out), "%s/out", j->dir);
    fl_remove_tree(j->dir);
    if (mkdir(j->dir, 0700) != 0 || mkdir(out, 0755) != 0)
        return -errno;
    bool inside = b->mode.bwrap;
    enum code_kind kind = code_kind(in->code_filename);
    const char *name = in->code_filename ? in->code_filename : "code";
    if (strchr(name, '/') != NULL || name[0] == '.')
        return FL_EINVAL;
    const char *builder = in->builder;
    if (builder == NULL && in->runtime == FL_RUNTIME_C) {
        snprintf(runtime_build, sizeof(runtime_build), "%s/build",
                 inside ? "/runtime" : in->runtime_dir);
        builder = runtime_build;
    }
    char env_code[PATH_MAX + 16], env_out[PATH_MAX + 16], env_kind[32], env_name[300],
        env_runtime[64];
    char *env_builder = NULL;
    snprintf(env_code, sizeof(env_code), "FLINT_CODE=%s", inside ? "/code" : in->code_path);
    snprintf(env_out, sizeof(env_out), "FLINT_OUT=%s", inside ? "/run/flint" : out);
    snprintf(env_kind, sizeof(env_kind), "FLINT_KIND=%s",
             kind == KIND_TAR   ? "tar"
             : kind == KIND_ZIP ? "zip"
                                : "file");
    snprintf(env_name, sizeof(env_name), "FLINT_NAME=%s", name);
    snprintf(env_runtime, sizeof(env_runtime), "FLINT_RUNTIME=%s", fl_runtime_name(in->runtime));
    size_t blen = strlen(builder ? builder : "") + 32;
    env_builder = malloc(blen);
    if (env_builder == NULL)
        return FL_ENOMEM;
    snprintf(env_builder, blen, "FLINT_BUILDER=%s", builder ? builder : "");
    const char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin",
                         "HOME=/tmp",
                         "LANG=C.UTF-8",
                         env_code,
                         env_out,
                         env_kind,
                         env_name,
                         env_runtime,
                         env_builder,
                         NULL};
    const char *argv[] = {"/bin/sh", "-c", build_script, "flint-build", NULL};
    struct fl_sandbox_spec spec = {.argv = argv,
                                   .env = env,
                                   .code_dir = in->code_path,
                                   .runtime_dir = in->runtime_dir,
                                   .out_dir = out,
                                   .listen_fd = -1,
                                   .limits = in->limits,
                                   .network = in->network};
    spec.tmp_bytes = FL_BUILD_TMP_MAX;
    if (spec.limits.memory_bytes == 0)
        spec.limits.memory_bytes = 2ULL << 30;
    if (spec.limits.cpu_seconds == 0)
        spec.limits.cpu_seconds = 600;
    if (spec.limits.open_files == 0)
        spec.limits.open_files = 1024;
    if (spec.limits.processes == 0)
        spec.limits.processes = 128;
    int rc = fl_sandbox_spawn(b->loop, &b->mode, &spec, on_line, on_exit_done, j, &j->sb);
    free(env_builder);
    return rc;
}

int fl_builder_build(struct fl_builder *b, const struct fl_build_input *in, fl_build_cb cb,
                     void *data)
{
    if (b->closing)
        return FL_ECANCELED;
    if (in->code_path == NULL || in->code_sha256 == NULL || strlen(in->code_sha256) != 64)
        return FL_EINVAL;
    char key[FL_SHA256_HEX];
    build_key(in, key);

    struct waiter *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return FL_ENOMEM;
    w->cb = cb;
    w->data = data;
    for (struct job *j = b->jobs; j != NULL; j = j->next) {
        if (strcmp(j->key, key) == 0) {
            w->next = j->waiters;
            j->waiters = w;
            return 0;
        }
    }
    free(w);

    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s/status", b->dir, key);
    char status[16] = "";
    struct fl_buf sbuf;
    fl_buf_init(&sbuf, sizeof(status));
    if (fl_file_read(path, &sbuf) == 0 && sbuf.data != NULL)
        fl_strlcpy(status, sbuf.data, sizeof(status));
    fl_buf_release(&sbuf);
    if (strcmp(status, "ok\n") == 0 || strcmp(status, "failed\n") == 0) {
        struct ready *r = calloc(1, sizeof(*r));
        if (r == NULL)
            return FL_ENOMEM;
        memcpy(r->key, key, sizeof(key));
        r->ok = status[0] == 'o';
        r->w.cb = cb;
        r->w.data = data;
        r->next = b->ready;
        b->ready = r;
        uv_timer_start(&b->ready_timer, on_ready_timer, 0, 0);
        return 0;
    }

    struct job *j = calloc(1, sizeof(*j));
    w = calloc(1, sizeof(*w));
    if (j == NULL || w == NULL) {
        free(j);
        free(w);
        return FL_ENOMEM;
    }
    w->cb = cb;
    w->data = data;
    j->b = b;
    j->waiters = w;
    memcpy(j->key, key, sizeof(key));
    snprintf(j->dir, sizeof(j->dir), "%s/%s", b->dir, key);
    fl_buf_init(&j->log, LOG_BUF_MAX);
    int rc = job_start(b, j, in);
    if (rc < 0) {
        fl_log(FL_LOG_ERROR, "build", "cannot start a build", "key=%.12s err=\"%s\"", key,
               fl_strerror(rc));
        fl_buf_release(&j->log);
        free(j);
        free(w);
        return rc;
    }
    uv_timer_init(b->loop, &j->timer);
    j->timer.data = j;
    uv_timer_start(&j->timer, on_job_timer, BUILD_WALL_MS, 0);
    j->next = b->jobs;
    b->jobs = j;
    b->jobs_running++;
    fl_log(FL_LOG_INFO, "build", "building", "key=%.12s runtime=%s", key,
           fl_runtime_name(in->runtime));
    return 0;
}

int fl_builder_new(uv_loop_t *loop, const char *dir, const struct fl_sandbox_mode *mode,
                   struct fl_builder **out)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    struct fl_builder *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return FL_ENOMEM;
    b->loop = loop;
    fl_strlcpy(b->dir, dir, sizeof(b->dir));
    b->mode = *mode;
    uv_timer_init(loop, &b->ready_timer);
    b->ready_timer.data = b;
    *out = b;
    return 0;
}

static void ready_timer_closed(uv_handle_t *h)
{
    struct fl_builder *b = h->data;
    if (b->done)
        b->done(b->done_data);
    free(b);
}

static void maybe_done(struct fl_builder *b)
{
    if (!b->closing || b->jobs_running > 0 || uv_is_closing((uv_handle_t *)&b->ready_timer))
        return;
    on_ready_timer(&b->ready_timer); /* answers what is left with FL_ECANCELED */
    uv_close((uv_handle_t *)&b->ready_timer, ready_timer_closed);
}

void fl_builder_close(struct fl_builder *b, void (*done)(void *data), void *data)
{
    b->closing = true;
    b->done = done;
    b->done_data = data;
    for (struct job *j = b->jobs; j != NULL; j = j->next) {
        j->canceled = true;
        if (j->sb != NULL)
            fl_sandbox_stop(j->sb, 200);
    }
    maybe_done(b);
}
