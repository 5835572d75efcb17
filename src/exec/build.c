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
#include "base/queue.h"
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
 * notes on the exit and the output (the same bound reads a cached log back
 * whole) */
#define LOG_BUF_MAX (FL_BUILD_LOG_MAX + 512)

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
    struct fl_queue node; /* in its job's waiters */
};

/*
 * A job's life: made on the loop and listed (later requests for its key
 * wait on it); prepare_work (thread pool) removes what a killed flintd
 * left of it and makes its directories; the sandbox runs the script;
 * finish_work (thread pool) normalizes and bounds the output and records
 * the log and status; then the waiters are answered and the job freed
 * once its timer is closed.
 */
struct job {
    struct fl_builder *b;
    char key[FL_SHA256_HEX];
    char dir[PATH_MAX];
    struct fl_buf log;
    struct fl_queue waiters; /* struct waiter, newest first */
    struct fl_sandbox *sb;
    uv_timer_t timer; /* the wall-clock bound */
    uv_work_t work;   /* prepare_work, then finish_work */
    int err;          /* flintd's own failure, for the waiters */
    bool timed_out, canceled;
    bool ok;            /* the build's outcome, once it ran */
    bool log_truncated; /* past FL_BUILD_LOG_MAX: later lines are dropped */
    /* what the sandbox is started with, copied from the input */
    char code_path[PATH_MAX];
    char runtime_dir[PATH_MAX]; /* "" for none */
    char env_code[PATH_MAX + 16], env_out[PATH_MAX + 16], env_kind[32], env_name[300],
        env_runtime[64];
    char *env_builder;
    struct fl_limits limits;
    bool network;
    struct fl_queue node; /* in b->jobs */
};

/* A result found on disk, answered from the loop. */
struct ready {
    char key[FL_SHA256_HEX];
    bool ok;
    struct waiter w;
    struct fl_queue node; /* in b->ready */
};

struct fl_builder {
    uv_loop_t *loop;
    char dir[PATH_MAX];
    struct fl_sandbox_mode mode;
    struct fl_tree_limits output; /* the bounds of a build's output */
    struct fl_queue jobs;         /* struct job, newest first */
    struct fl_queue ready;        /* struct ready, newest first */
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

void fl_build_key(const struct fl_build_input *in, char key[FL_SHA256_HEX])
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

#define WAITER_OF(q) FL_QUEUE_DATA(q, struct waiter, node)
#define JOB_OF(q)    FL_QUEUE_DATA(q, struct job, node)
#define READY_OF(q)  FL_QUEUE_DATA(q, struct ready, node)

/* Call every waiter of the queue waiters; they stay in it. */
static void answer(struct fl_queue *waiters, int err, struct fl_builder *b, const char *key,
                   bool ok, const char *log, bool cached)
{
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, waiters)
    {
        struct waiter *w = WAITER_OF(q);
        char deploy[PATH_MAX];
        int rc = fl_path_fmt(deploy, sizeof(deploy), "%s/%s/out/deploy", b->dir, key);
        struct fl_build_result res = {
            .ok = ok, .key = key, .deploy_dir = deploy, .log = log ? log : "", .cached = cached};
        rc = err < 0 ? err : rc;
        w->cb(rc, rc == 0 ? &res : NULL, w->data);
    }
}

static void maybe_done(struct fl_builder *b);

static void on_ready_timer(uv_timer_t *t)
{
    struct fl_builder *b = t->data;
    struct fl_queue list, *q;
    fl_queue_init(&list);
    fl_queue_append(&list, &b->ready); /* those that come while answering wait */
    while ((q = fl_queue_first(&list)) != NULL) {
        struct ready *r = READY_OF(q);
        fl_queue_remove(q);
        char path[PATH_MAX + 16];
        struct fl_buf log;
        fl_buf_init(&log, LOG_BUF_MAX);
        if (fl_path_fmt(path, sizeof(path), "%s/%s/build.log", b->dir, r->key) == 0)
            fl_file_read(path, &log);
        struct fl_queue one;
        fl_queue_init(&one);
        fl_queue_insert_tail(&one, &r->w.node);
        answer(&one, b->closing ? FL_ECANCELED : 0, b, r->key, r->ok, log.data, true);
        fl_buf_release(&log);
        free(r);
    }
}

/* ---- jobs ---- */

static void job_free(struct job *j)
{
    fl_buf_release(&j->log);
    free(j->env_builder);
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

/* Answer the waiters and let the job go (once its timer is closed). */
static void job_end(struct job *j)
{
    struct fl_builder *b = j->b;
    fl_queue_remove(&j->node);
    answer(&j->waiters, j->canceled ? FL_ECANCELED : j->err, b, j->key, j->ok, j->log.data, false);
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &j->waiters)
    {
        fl_queue_remove(q);
        free(WAITER_OF(q));
    }
    uv_close((uv_handle_t *)&j->timer, job_timer_closed);
}

/* Why a build's output was refused, for its log. */
static void note_output_error(struct job *j, int rc, const struct fl_tree_stats *st)
{
    const struct fl_tree_limits *lim = &j->b->output;
    if (rc == FL_ETOOBIG && st->entries > lim->max_entries)
        fl_buf_appendf(&j->log,
                       "build: the output has more than %llu files and directories, the "
                       "builder's limit\n",
                       (unsigned long long)lim->max_entries);
    else if (rc == FL_ETOOBIG)
        fl_buf_appendf(&j->log,
                       "build: the output is larger than %llu bytes, the builder's limit\n",
                       (unsigned long long)lim->max_bytes);
    else if (rc == FL_ERANGE)
        fl_buf_appendf(&j->log, "build: the output is nested deeper than %u directories\n",
                       lim->max_depth ? lim->max_depth : FL_TREE_MAX_DEPTH);
    else if (rc == -ELOOP)
        fl_buf_appends(&j->log, "build: the output directory is a symbolic link\n");
    else
        fl_buf_appendf(&j->log, "build: cannot check the output: %s\n", fl_strerror(rc));
}

/* On the thread pool: make a successful build's output inert and check
 * its bounds (fl_normalize_tree), then record the log and, last, the
 * status. */
static void finish_work(uv_work_t *w)
{
    struct job *j = w->data;
    char path[PATH_MAX + 16];
    if (j->ok) {
        struct fl_tree_stats st;
        snprintf(path, sizeof(path), "%s/out/deploy", j->dir);
        int rc = fl_normalize_tree(path, &j->b->output, &st);
        if (rc < 0) {
            note_output_error(j, rc, &st);
            j->ok = false;
        } else if (st.removed > 0) {
            fl_buf_appendf(&j->log,
                           "build: removed %llu special files (fifos, sockets, devices) from the "
                           "output\n",
                           (unsigned long long)st.removed);
        }
    }
    snprintf(path, sizeof(path), "%s/build.log", j->dir);
    j->err = fl_file_write_atomic(path, j->log.data ? j->log.data : "", j->log.len);
    snprintf(path, sizeof(path), "%s/status", j->dir);
    if (j->err == 0)
        j->err = fl_file_write_atomic(path, j->ok ? "ok\n" : "failed\n", j->ok ? 3 : 7);
}

static void finish_done(uv_work_t *w, int status)
{
    struct job *j = w->data;
    if (j->err < 0)
        fl_log(FL_LOG_ERROR, "build", "cannot record a build", "key=%s err=\"%s\"", j->key,
               fl_strerror(j->err));
    fl_log(j->ok ? FL_LOG_INFO : FL_LOG_WARN, "build", j->ok ? "built" : "build failed",
           "key=%.12s", j->key);
    job_end(j);
}

static void on_exit_done(struct fl_sandbox *sb, enum fl_sandbox_exit how, int status, void *data)
{
    struct job *j = data;
    bool ok = how == FL_EXIT_NORMAL && status == 0 && !j->timed_out;
    j->sb = NULL;
    j->ok = ok;
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
    if (j->canceled) {
        job_end(j);
        return;
    }
    j->work.data = j;
    int rc = uv_queue_work(j->b->loop, &j->work, finish_work, finish_done);
    if (rc < 0) {
        j->err = rc;
        job_end(j);
    }
}

static void on_job_timer(uv_timer_t *t)
{
    struct job *j = t->data;
    j->timed_out = true;
    if (j->sb != NULL)
        fl_sandbox_stop(j->sb, 1000);
}

/* Copy what the sandbox will be started with from in. 0, FL_EINVAL (a
 * code file name that is a path) or FL_ENOMEM. */
static int job_setup(struct fl_builder *b, struct job *j, const struct fl_build_input *in)
{
    char runtime_build[PATH_MAX + 8];
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
    fl_strlcpy(j->code_path, in->code_path, sizeof(j->code_path));
    fl_strlcpy(j->runtime_dir, in->runtime_dir ? in->runtime_dir : "", sizeof(j->runtime_dir));
    j->limits = in->limits;
    j->network = in->network;
    snprintf(j->env_code, sizeof(j->env_code), "FLINT_CODE=%s", inside ? "/code" : in->code_path);
    snprintf(j->env_out, sizeof(j->env_out), "FLINT_OUT=%s%s", inside ? "/run/flint" : j->dir,
             inside ? "" : "/out");
    snprintf(j->env_kind, sizeof(j->env_kind), "FLINT_KIND=%s",
             kind == KIND_TAR   ? "tar"
             : kind == KIND_ZIP ? "zip"
                                : "file");
    snprintf(j->env_name, sizeof(j->env_name), "FLINT_NAME=%s", name);
    snprintf(j->env_runtime, sizeof(j->env_runtime), "FLINT_RUNTIME=%s",
             fl_runtime_name(in->runtime));
    size_t blen = strlen(builder ? builder : "") + 32;
    j->env_builder = malloc(blen);
    if (j->env_builder == NULL)
        return FL_ENOMEM;
    snprintf(j->env_builder, blen, "FLINT_BUILDER=%s", builder ? builder : "");
    return 0;
}

/* On the thread pool: remove what an earlier, unfinished run of this key
 * left (a tree of any size), and make the job's directories. */
static void prepare_work(uv_work_t *w)
{
    struct job *j = w->data;
    char out[PATH_MAX + 8];
    snprintf(out, sizeof(out), "%s/out", j->dir);
    j->err = fl_remove_tree(j->dir);
    if (j->err == 0 && (mkdir(j->dir, 0700) != 0 || mkdir(out, 0755) != 0))
        j->err = -errno;
}

/* Back on the loop: start the build's sandbox. */
static void prepare_done(uv_work_t *w, int status)
{
    struct job *j = w->data;
    struct fl_builder *b = j->b;
    if (j->err == 0 && status < 0)
        j->err = status;
    if (j->canceled || j->err < 0) {
        if (j->err < 0)
            fl_log(FL_LOG_ERROR, "build", "cannot start a build", "key=%.12s err=\"%s\"", j->key,
                   fl_strerror(j->err));
        job_end(j);
        return;
    }
    char out[PATH_MAX + 8];
    snprintf(out, sizeof(out), "%s/out", j->dir);
    const char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin",
                         "HOME=/tmp",
                         "LANG=C.UTF-8",
                         j->env_code,
                         j->env_out,
                         j->env_kind,
                         j->env_name,
                         j->env_runtime,
                         j->env_builder,
                         NULL};
    const char *argv[] = {"/bin/sh", "-c", build_script, "flint-build", NULL};
    struct fl_sandbox_spec spec = {.argv = argv,
                                   .env = env,
                                   .code_dir = j->code_path,
                                   .runtime_dir = j->runtime_dir[0] ? j->runtime_dir : NULL,
                                   .out_dir = out,
                                   .listen_fd = -1,
                                   .tmp_bytes = FL_BUILD_TMP_MAX,
                                   .limits = j->limits,
                                   .network = j->network};
    if (spec.limits.memory_bytes == 0)
        spec.limits.memory_bytes = 2ULL << 30;
    if (spec.limits.cpu_seconds == 0)
        spec.limits.cpu_seconds = 600;
    if (spec.limits.open_files == 0)
        spec.limits.open_files = 1024;
    if (spec.limits.processes == 0)
        spec.limits.processes = 128;
    j->err = fl_sandbox_spawn(b->loop, &b->mode, &spec, on_line, on_exit_done, j, &j->sb);
    if (j->err < 0) {
        fl_log(FL_LOG_ERROR, "build", "cannot start a build", "key=%.12s err=\"%s\"", j->key,
               fl_strerror(j->err));
        job_end(j);
        return;
    }
    uv_timer_start(&j->timer, on_job_timer, BUILD_WALL_MS, 0);
}

static struct job *job_find(const struct fl_builder *b, const char *key)
{
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &b->jobs)
    {
        if (strcmp(JOB_OF(q)->key, key) == 0)
            return JOB_OF(q);
    }
    return NULL;
}

bool fl_builder_busy(const struct fl_builder *b, const char *key)
{
    if (job_find(b, key) != NULL)
        return true;
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &b->ready)
    {
        if (strcmp(READY_OF(q)->key, key) == 0)
            return true;
    }
    return false;
}

int fl_builder_build(struct fl_builder *b, const struct fl_build_input *in, fl_build_cb cb,
                     void *data)
{
    if (b->closing)
        return FL_ECANCELED;
    if (in->code_path == NULL || in->code_sha256 == NULL || strlen(in->code_sha256) != 64)
        return FL_EINVAL;
    char key[FL_SHA256_HEX];
    fl_build_key(in, key);

    struct waiter *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return FL_ENOMEM;
    w->cb = cb;
    w->data = data;
    struct job *running = job_find(b, key);
    if (running != NULL) {
        fl_queue_insert_head(&running->waiters, &w->node);
        return 0;
    }
    free(w);

    char path[PATH_MAX];
    int rc = fl_path_fmt(path, sizeof(path), "%s/%s/status", b->dir, key);
    if (rc < 0)
        return rc;
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
        fl_queue_insert_head(&b->ready, &r->node);
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
    fl_queue_init(&j->waiters);
    fl_queue_insert_head(&j->waiters, &w->node);
    memcpy(j->key, key, sizeof(key));
    fl_buf_init(&j->log, LOG_BUF_MAX);
    rc = fl_path_join(j->dir, sizeof(j->dir), b->dir, key);
    if (rc == 0)
        rc = job_setup(b, j, in);
    j->work.data = j;
    if (rc == 0)
        rc = uv_queue_work(b->loop, &j->work, prepare_work, prepare_done);
    if (rc < 0) {
        fl_log(FL_LOG_ERROR, "build", "cannot start a build", "key=%.12s err=\"%s\"", key,
               fl_strerror(rc));
        job_free(j);
        free(w);
        return rc;
    }
    uv_timer_init(b->loop, &j->timer);
    j->timer.data = j;
    fl_queue_insert_head(&b->jobs, &j->node);
    b->jobs_running++;
    fl_log(FL_LOG_INFO, "build", "building", "key=%.12s runtime=%s", key,
           fl_runtime_name(in->runtime));
    return 0;
}

void fl_builder_config_init(struct fl_builder_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_output_files = FL_BUILD_MAX_FILES;
    cfg->max_output_bytes = FL_BUILD_MAX_BYTES;
}

int fl_builder_new(uv_loop_t *loop, const struct fl_builder_config *cfg, struct fl_builder **out)
{
    /* DIR/<key>/out/deploy and the files beside it must fit PATH_MAX */
    if (strlen(cfg->dir) + FL_SHA256_HEX + 32 >= PATH_MAX)
        return -ENAMETOOLONG;
    if (mkdir(cfg->dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    struct fl_builder *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return FL_ENOMEM;
    b->loop = loop;
    fl_queue_init(&b->jobs);
    fl_queue_init(&b->ready);
    fl_strlcpy(b->dir, cfg->dir, sizeof(b->dir));
    b->mode = *cfg->mode;
    b->output.max_entries = cfg->max_output_files ? cfg->max_output_files : FL_BUILD_MAX_FILES;
    b->output.max_bytes = cfg->max_output_bytes ? cfg->max_output_bytes : FL_BUILD_MAX_BYTES;
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
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &b->jobs)
    {
        struct job *j = JOB_OF(q);
        j->canceled = true;
        if (j->sb != NULL)
            fl_sandbox_stop(j->sb, 200);
    }
    maybe_done(b);
}
