/*
 * The executor (see executor.h).
 *
 * Objects and who owns what:
 *   struct env       one per environment; owns its warm pool of generic
 *                    instances (state IDLE once healthy).
 *   struct function  one per function name (a deleted one lingers, marked
 *                    removed, until its instances and build are gone); owns
 *                    its build state, its specialized instances and its
 *                    queue of waiting invocations.
 *   struct instance  one sandboxed process: STARTING (spawned, probing
 *                    /healthz), IDLE (generic, healthy, in a pool),
 *                    SPECIALIZING, READY, STOPPING. Freed after its
 *                    sandbox has exited and its timer is closed.
 *   struct fl_invocation  one call: QUEUED on its function, or RUNNING on
 *                    an instance, then answered and freed.
 *
 * The hot path, for a READY instance with room: invoke -> pick the least
 * busy instance -> one fl_http_client request over its Unix socket ->
 * response passed through. Nothing is copied but the header array.
 */
#include "exec/executor.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/id.h"
#include "base/log.h"
#include "base/queue.h"
#include "base/str.h"
#include "exec/build.h"
#include "exec/sweep.h"
#include "http/client.h"
#include "http/parse.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LAST_ERR_MAX    512  /* the tail of an instance's stderr kept for error messages */
#define MAX_HEADERS     128  /* headers passed to an instance */
#define FLINT_HEADERS   4    /* of which X-Flint-Function, -Invocation-Id, -Attempt, -Trigger */
#define MAX_EXTRA       64   /* of which trusted extras, at most (the rest: the caller's) */
#define STOP_GRACE_MS   2000 /* SIGTERM to SIGKILL when an instance is stopped */
#define PROBE_MAX_MS    10   /* longest pause between /healthz probes */
#define RESTART_MAX_MS  30000
#define REFILL_DELAY_MS 20  /* after a warm instance is taken */
#define BROKEN_GRACE_MS 200 /* a connection broke: wait this long for the exit's cause */

enum inst_state { INST_STARTING, INST_IDLE, INST_SPECIALIZING, INST_READY, INST_STOPPING };

static const char *const state_names[] = {"starting", "idle", "specializing", "ready", "stopping"};

enum build_state { BUILD_NONE, BUILD_RUNNING, BUILD_OK, BUILD_FAILED };

static const char *const build_names[] = {"none", "running", "ok", "failed"};

struct instance;
struct function;

struct env {
    struct fl_executor *ex;
    char name[FL_NAME_MAX + 1];
    bool removed;
    bool backoff_passed;
    int refs; /* instances started from it */
    int64_t revision;
    struct fl_env_spec spec;
    char runtime_dir[PATH_MAX];
    struct fl_queue pool; /* generic instances (struct instance): STARTING or IDLE */
    int pool_starting, pool_idle;
    int failures; /* consecutive generic instances that never became healthy */
    uv_timer_t refill_timer;
    struct fl_queue node; /* in ex->envs; in none once removed */
};

struct fl_invocation {
    struct fl_executor *ex;
    struct function *fn;
    struct instance *inst;
    struct fl_executor_request req; /* not read once sent or canceled */
    fl_executor_cb cb;
    void *data;
    struct fl_http_call *call;
    char id[40];
    uint64_t enqueued_ns;
    bool queued;
    bool queue_full;     /* answered 429 from the loop */
    bool too_many_extra; /* more than MAX_EXTRA trusted headers: answered 500 from the loop */
    bool unservable;     /* its function cannot serve (failed build or load, no environment):
                          * queued from the loop, where dispatch() answers why */
    bool canceled;
    bool instance_died; /* its instance exited under it */
    bool head;          /* a HEAD request: the answer's Content-Length goes on */
    /* in one of: its function's queue (queued), its instance's inflight
     * (inst set, sent or waiting for the instance's exit), ex->early */
    struct fl_queue node;
};

struct instance {
    struct fl_executor *ex;
    unsigned serial;
    char id[40];
    enum inst_state state;
    struct env *env;     /* its pool's environment while generic */
    struct function *fn; /* once taken for a function */
    int64_t fn_revision, env_revision;
    bool generic;  /* started without function-specific settings */
    bool draining; /* finish in-flight requests, then stop */
    bool was_healthy;
    bool pipelining;               /* its runtime takes pipelined requests (X-Flint-Pipelining) */
    bool linking;                  /* its code is being linked on the thread pool: keep it */
    bool closed;                   /* gone but for that link: link_done() frees it */
    char build_key[FL_SHA256_HEX]; /* the build it was given ("" before) */
    char dir[PATH_MAX];
    char target[PATH_MAX + 16];
    struct fl_sandbox *sb;
    void *publish; /* its publish socket (cfg.publish), or NULL */
    struct fl_http_call *probe;
    uv_timer_t timer; /* health probes, then nothing */
    uint64_t started_ns, deadline_ns, last_used_ns;
    unsigned probe_delay_ms;
    unsigned active;
    struct fl_queue inflight; /* struct fl_invocation sent to it */
    char last_err[LAST_ERR_MAX];
    char exit_reason[160];
    struct fl_queue node; /* in fn->instances once taken, else in env->pool */
};

struct function {
    struct fl_executor *ex;
    char name[FL_NAME_MAX + 1];
    int64_t revision;
    struct fl_fn_spec spec;
    bool removed;
    enum build_state build;
    unsigned build_gen;
    int builds_pending; /* callbacks due: keep the struct alive */
    char deploy_dir[PATH_MAX];
    char build_key[FL_SHA256_HEX]; /* the current revision's build ("" if none yet) */
    char entry[256];
    char *build_log;
    char *load_error;          /* the current revision failed to load: every call gets it */
    struct fl_queue instances; /* struct instance, newest first */
    struct fl_queue queue;     /* struct fl_invocation waiting, oldest first */
    size_t queued;
    bool room_wanted; /* reported full by fl_executor_capacity(): say when it has room */
    uv_timer_t queue_timer;
    uint64_t invocations, errors, cold_starts;
    struct fl_queue node; /* in ex->fns */
};

struct fl_executor {
    uv_loop_t *loop;
    struct fl_executor_config cfg;
    char data_dir[PATH_MAX];
    char runtimes_dir[PATH_MAX];
    char run_dir[PATH_MAX];
    struct fl_sandbox_mode mode;
    struct fl_builder *builder;
    struct fl_http_client *client;
    struct fl_queue envs; /* struct env, newest first */
    struct fl_queue fns;  /* struct function, newest first */
    unsigned next_serial;
    uv_timer_t tick;
    uv_timer_t early_timer; /* answers errors found inside fl_executor_invoke() */
    struct fl_queue early;  /* struct fl_invocation answered from early_timer */
    int instances_alive;
    int handles_open;
    int work_pending; /* file-tree work on the thread pool */
    uv_timer_t gc_timer;
    bool functions_loaded, gc_running;
    bool closing, builder_closing;
    void (*done)(void *data);
    void *done_data;
    void (*room)(void *data, const char *function);
    void *room_data;
};

#define ENV_OF(q)  FL_QUEUE_DATA(q, struct env, node)
#define FN_OF(q)   FL_QUEUE_DATA(q, struct function, node)
#define INST_OF(q) FL_QUEUE_DATA(q, struct instance, node)
#define INV_OF(q)  FL_QUEUE_DATA(q, struct fl_invocation, node)

/* The invocation waiting longest for fn, or NULL. */
static struct fl_invocation *queue_first(const struct function *fn)
{
    struct fl_queue *q = fl_queue_first(&fn->queue);
    return q != NULL ? INV_OF(q) : NULL;
}

static void dispatch(struct function *fn);
static void instance_stop(struct instance *inst, const char *why);
static void function_maybe_free(struct function *fn);
static void pool_refill(struct env *e);
static void on_refill_timer(uv_timer_t *t);
static void function_build(struct function *fn);
static void close_step(struct fl_executor *ex);
static void instance_specialize(struct instance *inst);
static void env_maybe_free(struct env *e);
static void inflight_unlink(struct fl_invocation *inv);
static void room_check(struct function *fn);
static void publish_close(struct instance *inst);

void fl_executor_config_init(struct fl_executor_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->queue_max = 1000;
    cfg->queue_wait_ms = 10000;
    cfg->start_timeout_ms = 30000;
    cfg->tick_ms = 1000;
    cfg->max_response_bytes = 16u << 20;
    cfg->gc_interval_ms = 5 * 60 * 1000;
    cfg->build_grace_ms = 60 * 60 * 1000;
    cfg->code_grace_ms = 60 * 60 * 1000;
}

/* ---- lookups ---- */

static struct env *env_find(struct fl_executor *ex, const char *name)
{
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &ex->envs)
    {
        if (strcmp(ENV_OF(q)->name, name) == 0)
            return ENV_OF(q);
    }
    return NULL;
}

static struct function *fn_find(struct fl_executor *ex, const char *name)
{
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &ex->fns)
    {
        struct function *f = FN_OF(q);
        if (!f->removed && strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}

static uint64_t now_ns(void)
{
    return fl_clock_mono_ns();
}

/* ---- metrics ---- */

static void count_by(struct fl_executor *ex, const char *name, const char *help, const char *label,
                     const char *value, double n)
{
    if (ex->cfg.metrics == NULL)
        return;
    struct fl_metric *m = fl_metrics_counter(ex->cfg.metrics, name, help, 1, &label);
    fl_metric_add(m, &value, n);
}

static void count(struct fl_executor *ex, const char *name, const char *help, const char *label,
                  const char *value)
{
    count_by(ex, name, help, label, value, 1);
}

static void observe_wait(struct function *fn, struct fl_invocation *inv)
{
    struct fl_metrics *metrics = fn->ex->cfg.metrics;
    if (metrics == NULL)
        return;
    static const char *const labels[] = {"function"};
    static const double bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};
    struct fl_metric *m =
        fl_metrics_histogram(metrics, "flint_queue_wait_seconds",
                             "Time requests waited in a function's queue for an instance.", 1,
                             labels, sizeof(bounds) / sizeof(bounds[0]), bounds);
    const char *values[] = {fn->name};
    fl_metric_observe(m, values, (double)(now_ns() - inv->enqueued_ns) / 1e9);
}

/* ---- function logs ---- */

static void fn_note(struct function *fn, const struct instance *inst, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fn_note(struct function *fn, const struct instance *inst, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (fn->ex->cfg.logs != NULL) {
        struct fl_log_line line = {.ts_ms = fl_clock_wall_ms(),
                                   .function = fn->name,
                                   .revision = inst ? inst->fn_revision : fn->revision,
                                   .instance = inst ? inst->id : "",
                                   .stream = "flint",
                                   .text = text,
                                   .len = strlen(text)};
        fl_logbook_append(fn->ex->cfg.logs, &line);
    }
    char q[600];
    fl_log(FL_LOG_INFO, "exec", "function", "function=%s note=%s", fn->name,
           fl_log_quote(q, sizeof(q), text));
}

/* ---- answering ---- */

static void inv_free(struct fl_invocation *inv)
{
    free(inv);
}

static void queue_unlink(struct fl_invocation *inv)
{
    struct function *fn = inv->fn;
    fl_queue_remove(&inv->node);
    inv->queued = false;
    fn->queued--;
}

static void respond(struct fl_invocation *inv, int status, const struct fl_http_header *headers,
                    size_t nheaders, const char *body, size_t body_len, const char *error_code,
                    const char *error_message)
{
    /* every answer names its invocation, to find it in the logs (an
     * instance's own X-Flint-Invocation-Id was dropped in on_response) */
    struct fl_http_header all[MAX_HEADERS + 1];
    size_t n = nheaders < MAX_HEADERS ? nheaders : MAX_HEADERS;
    memcpy(all, headers, n * sizeof(all[0]));
    all[n++] = (struct fl_http_header){"X-Flint-Invocation-Id", 21, inv->id, strlen(inv->id)};
    struct fl_executor_result res = {.status = status,
                                     .headers = all,
                                     .nheaders = n,
                                     .body = body,
                                     .body_len = body_len,
                                     .error_code = error_code,
                                     .error_message = error_message,
                                     .invocation_id = inv->id};
    if (inv->fn != NULL) {
        inv->fn->invocations++;
        if (error_code != NULL || status >= 500)
            inv->fn->errors++;
    }
    if (!inv->canceled) /* else its caller is gone: the answer goes nowhere */
        inv->cb(&res, inv->data);
    inv_free(inv);
}

/* Answer with the executor's own JSON error. */
static void respond_error(struct fl_invocation *inv, int status, const char *code, const char *fmt,
                          ...) __attribute__((format(printf, 4, 5)));

static void respond_error(struct fl_invocation *inv, int status, const char *code, const char *fmt,
                          ...)
{
    char message[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    json_t *doc = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code, "message", message,
                            "invocation", inv->id);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    static const struct fl_http_header json_type = {"Content-Type", 12, "application/json", 16};
    const char *fallback = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
    const char *body = text ? text : fallback;
    respond(inv, status, &json_type, 1, body, strlen(body), code, message);
    free(text);
}

/* The request's instance went away under it: 503 when flintd is stopping
 * it, else 502 with why it died. */
static void respond_instance_gone(struct fl_invocation *inv, const struct instance *inst)
{
    if (inv->ex->closing)
        respond_error(inv, 503, "stopping", "flintd is stopping");
    else
        respond_error(inv, 502, "instance_crashed",
                      "function '%s' crashed while handling the request: %s%s%s", inv->fn->name,
                      inst->exit_reason, inst->last_err[0] ? "; last error output: " : "",
                      inst->last_err);
}

static void on_early_timer(uv_timer_t *t)
{
    struct fl_executor *ex = t->data;
    struct function *fn;
    struct fl_queue *q;
    while ((q = fl_queue_first(&ex->early)) != NULL) {
        struct fl_invocation *inv = INV_OF(q);
        fl_queue_remove(q);
        if (ex->closing)
            respond_error(inv, 503, "stopping", "flintd is stopping");
        else if (inv->too_many_extra)
            respond_error(inv, 500, "too_many_headers",
                          "the call of '%s' carries %zu added headers (parameters, topics); at "
                          "most %d reach a function",
                          inv->req.function, inv->req.nextra, MAX_EXTRA);
        else if (inv->unservable && (fn = fn_find(ex, inv->req.function)) != NULL) {
            inv->fn = fn;
            inv->queued = true;
            inv->enqueued_ns = now_ns();
            fl_queue_insert_tail(&fn->queue, &inv->node);
            fn->queued++;
            dispatch(fn);
        } else if (inv->queue_full)
            respond_error(inv, 429, "queue_full",
                          "function '%s' has %zu requests waiting for an instance, its limit",
                          inv->req.function, ex->cfg.queue_max);
        else
            respond_error(inv, 404, "function_not_found", "function '%s' not found",
                          inv->req.function);
    }
}

/* ---- instances ---- */

/* ---- file-tree work, on the thread pool ---- */

/*
 * Linking a build into an instance and removing an instance's directory
 * walk trees of any size (a build may hold 200k files): they run on
 * libuv's thread pool, never on the loop. ex->work_pending counts them;
 * the executor is not freed before they are done (close_step), and an
 * instance whose link is under way is freed only after it (link_done).
 */
struct tree_work {
    uv_work_t req;
    struct fl_executor *ex;
    struct instance *inst; /* linked into; NULL for a removal */
    char src[PATH_MAX];
    char dst[PATH_MAX + 16];
    int rc;
};

static void link_work(uv_work_t *req)
{
    struct tree_work *w = req->data;
    w->rc = fl_link_tree(w->src, w->dst, NULL);
}

static void remove_work(uv_work_t *req)
{
    struct tree_work *w = req->data;
    w->rc = fl_remove_tree(w->dst);
}

static void remove_done(uv_work_t *req, int status)
{
    struct tree_work *w = req->data;
    struct fl_executor *ex = w->ex;
    if (w->rc < 0)
        fl_log(FL_LOG_WARN, "exec", "cannot remove a directory", "dir=%s err=\"%s\"", w->dst,
               fl_strerror(w->rc));
    free(w);
    ex->work_pending--;
    close_step(ex);
}

/* Remove the tree at path on the thread pool (here, if the pool refuses). */
static void remove_later(struct fl_executor *ex, const char *path)
{
    struct tree_work *w = calloc(1, sizeof(*w));
    if (w != NULL) {
        w->ex = ex;
        w->req.data = w;
        fl_strlcpy(w->dst, path, sizeof(w->dst));
        if (uv_queue_work(ex->loop, &w->req, remove_work, remove_done) == 0) {
            ex->work_pending++;
            return;
        }
        free(w);
    }
    fl_remove_tree(path);
}

/* The instance is gone (process exited, timer closed, no link under way):
 * its directory goes, and so does it. */
static void instance_free(struct instance *inst)
{
    struct fl_executor *ex = inst->ex;
    struct env *e = inst->env;
    remove_later(ex, inst->dir);
    free(inst);
    if (e != NULL) {
        e->refs--;
        env_maybe_free(e);
    }
    ex->instances_alive--;
    close_step(ex);
}

static void instance_closed(uv_handle_t *h)
{
    struct instance *inst = h->data;
    inst->closed = true;
    if (!inst->linking)
        instance_free(inst);
}

static void describe_exit(struct instance *inst, enum fl_sandbox_exit how, int status,
                          const struct fl_limits *limits)
{
    switch (how) {
    case FL_EXIT_MEMORY:
        snprintf(inst->exit_reason, sizeof(inst->exit_reason), "out of memory (limit %llu MiB)",
                 (unsigned long long)(limits->memory_bytes >> 20));
        break;
    case FL_EXIT_CPU:
        snprintf(inst->exit_reason, sizeof(inst->exit_reason), "CPU time limit (%llds) reached",
                 (long long)limits->cpu_seconds);
        break;
    case FL_EXIT_SIGNAL:
        snprintf(inst->exit_reason, sizeof(inst->exit_reason), "killed by signal %d (%s)", status,
                 strsignal(status));
        break;
    case FL_EXIT_STOPPED:
        if (inst->exit_reason[0] == '\0')
            snprintf(inst->exit_reason, sizeof(inst->exit_reason), "stopped");
        break;
    case FL_EXIT_NORMAL:
        snprintf(inst->exit_reason, sizeof(inst->exit_reason), "exited with status %d", status);
        break;
    }
}

static const struct fl_limits *instance_limits(const struct instance *inst, struct fl_limits *out);

static void on_instance_exit(struct fl_sandbox *sb, enum fl_sandbox_exit how, int status,
                             void *data)
{
    struct instance *inst = data;
    struct fl_executor *ex = inst->ex;
    struct fl_limits limits;
    bool was_stopping = inst->state == INST_STOPPING;
    inst->sb = NULL;
    publish_close(inst);
    describe_exit(inst, how, status, instance_limits(inst, &limits));
    if (inst->probe != NULL)
        fl_http_client_cancel(inst->probe);
    uv_timer_stop(&inst->timer);

    struct function *fn = inst->fn;
    struct env *e = inst->env;
    enum inst_state state = inst->state;
    if (fn != NULL && !was_stopping)
        fn_note(fn, inst, "instance exited: %s%s%s", inst->exit_reason,
                inst->last_err[0] ? "; last error output: " : "", inst->last_err);
    else if (fn == NULL && !ex->closing && !was_stopping)
        fl_log(FL_LOG_WARN, "exec", "generic instance exited", "environment=%s reason=\"%s\"",
               e ? e->name : "?", inst->exit_reason);

    /* its requests fail, each with the reason */
    inst->state = INST_STOPPING;
    struct fl_queue *q;
    while ((q = fl_queue_first(&inst->inflight)) != NULL) {
        struct fl_invocation *inv = INV_OF(q);
        inv->instance_died = true;
        if (inv->call != NULL) {
            fl_http_client_cancel(inv->call); /* on_response unlinks and answers */
            continue;
        }
        inflight_unlink(inv); /* its connection broke before: answer now */
        respond_instance_gone(inv, inst);
    }
    if (e != NULL && fn == NULL) {
        if (state == INST_STARTING)
            e->pool_starting--;
        else if (state == INST_IDLE)
            e->pool_idle--;
        if (!inst->was_healthy && !was_stopping)
            e->failures++;
    }
    bool never_ready = fn != NULL && !inst->was_healthy && !was_stopping;
    fl_queue_remove(&inst->node); /* from fn->instances or env->pool */
    inst->state = INST_STOPPING;
    uv_close((uv_handle_t *)&inst->timer, instance_closed);

    if (ex->closing)
        return;
    if (e != NULL && fn == NULL)
        pool_refill(e);
    if (fn != NULL) {
        if (never_ready && fn->queued > 0 && fl_queue_empty(&fn->instances)) {
            /* nothing else is coming for the waiting requests */
            struct fl_invocation *inv;
            while ((inv = queue_first(fn)) != NULL) {
                queue_unlink(inv);
                respond_error(inv, 502, "instance_failed",
                              "function '%s' could not start an instance: %s%s%s", fn->name,
                              inst->exit_reason, inst->last_err[0] ? "; " : "", inst->last_err);
            }
        }
        dispatch(fn);
        function_maybe_free(fn);
    }
}

static void on_instance_line(struct fl_sandbox *sb, bool is_stderr, const char *line, size_t len,
                             void *data)
{
    struct instance *inst = data;
    if (is_stderr && len > 0) {
        size_t n = len < LAST_ERR_MAX - 1 ? len : LAST_ERR_MAX - 1;
        memcpy(inst->last_err, line + (len - n), n);
        inst->last_err[n] = '\0';
    }
    struct function *fn = inst->fn;
    if (fn == NULL) {
        char q[300];
        fl_log(FL_LOG_DEBUG, "exec", "generic instance output", "environment=%s line=%s",
               inst->env ? inst->env->name : "?", fl_log_quote(q, sizeof(q), line));
        return;
    }
    if (inst->ex->cfg.logs == NULL)
        return;
    struct fl_log_line l = {.ts_ms = fl_clock_wall_ms(),
                            .function = fn->name,
                            .revision = inst->fn_revision,
                            .instance = inst->id,
                            .stream = is_stderr ? "stderr" : "stdout",
                            .text = line,
                            .len = len};
    fl_logbook_append(inst->ex->cfg.logs, &l);
}

static const struct fl_limits *instance_limits(const struct instance *inst, struct fl_limits *out)
{
    const struct env *e = inst->env;
    memset(out, 0, sizeof(*out));
    if (e != NULL)
        *out = e->spec.limits;
    if (!inst->generic && inst->fn != NULL) {
        const struct fl_limits *f = &inst->fn->spec.limits;
        if (f->memory_bytes)
            out->memory_bytes = f->memory_bytes;
        if (f->cpu_seconds)
            out->cpu_seconds = f->cpu_seconds;
        if (f->open_files)
            out->open_files = f->open_files;
        if (f->processes)
            out->processes = f->processes;
        if (f->cpu_millis)
            out->cpu_millis = f->cpu_millis;
    }
    return out;
}

static void probe_schedule(struct instance *inst);

static void on_probe(int err, const struct fl_http_client_response *resp, void *data)
{
    struct instance *inst = data;
    inst->probe = NULL;
    if (err == FL_ECANCELED || inst->state != INST_STARTING)
        return;
    if (err == 0 && resp->status == 200) {
        size_t len;
        const char *pipelining = fl_http_client_header(resp, "X-Flint-Pipelining", &len);
        inst->was_healthy = true;
        inst->pipelining = pipelining != NULL && len == 1 && pipelining[0] == '1';
        uint64_t took = (now_ns() - inst->started_ns) / 1000000;
        if (inst->fn == NULL) {
            struct env *e = inst->env;
            e->pool_starting--;
            e->pool_idle++;
            e->failures = 0;
            inst->state = INST_IDLE;
            fl_log(FL_LOG_DEBUG, "exec", "warm instance ready",
                   "environment=%s instance=%s ms=%llu", e->name, inst->id,
                   (unsigned long long)took);
            /* a function may be waiting for exactly this */
            struct fl_queue *q, *tmp;
            FL_QUEUE_FOREACH(q, tmp, &inst->ex->fns)
            {
                struct function *fn = FN_OF(q);
                if (!fn->removed && fn->queued > 0 && strcmp(fn->spec.environment, e->name) == 0)
                    dispatch(fn);
            }
        } else {
            instance_specialize(inst);
        }
        return;
    }
    probe_schedule(inst);
}

static void on_probe_timer(uv_timer_t *t)
{
    struct instance *inst = t->data;
    if (inst->state != INST_STARTING || inst->sb == NULL)
        return;
    if (now_ns() > inst->deadline_ns) {
        snprintf(inst->exit_reason, sizeof(inst->exit_reason),
                 "did not answer GET /healthz within %llu ms",
                 (unsigned long long)inst->ex->cfg.start_timeout_ms);
        inst->was_healthy = false;
        fl_sandbox_stop(inst->sb, 0);
        /* stays STARTING so the exit counts as a failed start */
        return;
    }
    struct fl_http_client_request req = {.target = inst->target,
                                         .method = "GET",
                                         .path = "/healthz",
                                         .timeout_ms = 2000,
                                         .idempotent = true};
    if (fl_http_client_request(inst->ex->client, &req, on_probe, inst, &inst->probe) < 0)
        probe_schedule(inst);
}

static void probe_schedule(struct instance *inst)
{
    uv_timer_start(&inst->timer, on_probe_timer, inst->probe_delay_ms, 0);
    if (inst->probe_delay_ms < PROBE_MAX_MS)
        inst->probe_delay_ms++;
}

/* A listening Unix socket bound at path, for an instance to serve on: flintd
 * only ever connects to sockets it made itself. The descriptor, or a
 * negative error. */
static int listen_unix(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || listen(fd, 1024) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* Its publish socket, if publishing is on: p/publish in its directory
 * (executor.h). On failure the instance starts without one. */
static void publish_open(struct instance *inst, char *dir, size_t dir_size)
{
    const struct fl_executor_publish *p = inst->ex->cfg.publish;
    char path[PATH_MAX + 16];
    dir[0] = '\0';
    if (p == NULL)
        return;
    int rc = fl_path_join(dir, dir_size, inst->dir, "p");
    rc = rc ? rc : fl_path_join(path, sizeof(path), dir, "publish");
    if (rc == 0 && mkdir(dir, 0755) != 0)
        rc = -errno;
    rc = rc ? rc : p->open(p->data, path, &inst->publish);
    if (rc < 0) {
        fl_log(FL_LOG_WARN, "exec", "an instance starts without its publish socket",
               "dir=%s err=\"%s\"", inst->dir, fl_strerror(rc));
        inst->publish = NULL;
        dir[0] = '\0';
    }
}

static void publish_assign(struct instance *inst)
{
    if (inst->publish != NULL && inst->fn != NULL)
        inst->ex->cfg.publish->assign(inst->publish, inst->fn->name);
}

static void publish_close(struct instance *inst)
{
    if (inst->publish != NULL)
        inst->ex->cfg.publish->close(inst->publish);
    inst->publish = NULL;
}

/*
 * Start an instance: generic for env's pool (fn NULL), or for fn with its
 * own settings. Its directory gets code/ (-> /code) and sock/ (-> /run/flint).
 */
static struct instance *instance_start(struct fl_executor *ex, struct env *e, struct function *fn)
{
    struct instance *inst = calloc(1, sizeof(*inst));
    if (inst == NULL)
        return NULL;
    inst->ex = ex;
    inst->serial = ++ex->next_serial;
    fl_uuid7(inst->id);
    inst->env = e;
    inst->env_revision = e->revision;
    inst->generic = fn == NULL;
    inst->state = INST_STARTING;
    fl_queue_init(&inst->inflight);
    fl_queue_init(&inst->node);
    char code[PATH_MAX + 8], sock[PATH_MAX + 8], pub_dir[PATH_MAX + 8];
    int path_rc = fl_path_fmt(inst->dir, sizeof(inst->dir), "%s/%x", ex->run_dir, inst->serial);
    path_rc = path_rc ? path_rc : fl_path_join(code, sizeof(code), inst->dir, "code");
    path_rc = path_rc ? path_rc : fl_path_join(sock, sizeof(sock), inst->dir, "s");
    path_rc = path_rc ? path_rc : fl_path_fmt(inst->target, sizeof(inst->target), "unix:%s", sock);
    if (path_rc < 0) {
        fl_log(FL_LOG_ERROR, "exec", "cannot name an instance directory", "run_dir=%s err=\"%s\"",
               ex->run_dir, fl_strerror(path_rc));
        free(inst);
        return NULL;
    }
    fl_remove_tree(inst->dir);
    /* the instance directory is flintd's alone: the sandbox gets code/ as
     * a descriptor and its listening socket bound here, never a path in it */
    int listen_fd = -1;
    if (mkdir(inst->dir, 0700) != 0 || mkdir(code, 0755) != 0 ||
        (listen_fd = listen_unix(sock)) < 0) {
        int err = listen_fd < -1 ? listen_fd : -errno;
        fl_log(FL_LOG_ERROR, "exec", "cannot make an instance directory", "dir=%s err=\"%s\"",
               inst->dir, fl_strerror(err));
        fl_remove_tree(inst->dir);
        free(inst);
        return NULL;
    }

    publish_open(inst, pub_dir, sizeof(pub_dir));

    bool inside = ex->mode.bwrap;
    const char *rt = inside ? "/runtime" : e->runtime_dir;
    char prog[PATH_MAX + 64], script[PATH_MAX + 64];
    const char *argv_buf[4];
    const char *const *argv = argv_buf;
    switch (e->spec.runtime) {
    case FL_RUNTIME_C:
    case FL_RUNTIME_BINARY:
        snprintf(prog, sizeof(prog), "%s/flint-runtime-%s", rt, fl_runtime_name(e->spec.runtime));
        argv_buf[0] = prog;
        argv_buf[1] = NULL;
        break;
    case FL_RUNTIME_PYTHON:
        snprintf(script, sizeof(script), "%s/flint_runtime.py", rt);
        argv_buf[0] = "/usr/bin/python3";
        argv_buf[1] = "-u";
        argv_buf[2] = script;
        argv_buf[3] = NULL;
        break;
    case FL_RUNTIME_NODE:
        snprintf(script, sizeof(script), "%s/flint_runtime.js", rt);
        argv_buf[0] = "/usr/bin/node";
        argv_buf[1] = script;
        argv_buf[2] = NULL;
        break;
    case FL_RUNTIME_CUSTOM:
        argv = (const char *const *)e->spec.command;
        break;
    }

    /* the environment: the basics, the contract's, then the function's own */
    const char *env_vars[300];
    size_t n = 0;
    char listen[PATH_MAX + 32], fn_var[128], id_var[64];
    env_vars[n++] = "PATH=/usr/local/bin:/usr/bin:/bin";
    env_vars[n++] = "HOME=/tmp";
    env_vars[n++] = "LANG=C.UTF-8";
    env_vars[n++] = "PYTHONDONTWRITEBYTECODE=1";
    snprintf(listen, sizeof(listen), "FLINT_LISTEN=fd:3");
    env_vars[n++] = listen;
    snprintf(id_var, sizeof(id_var), "FLINT_INSTANCE=%s", inst->id);
    env_vars[n++] = id_var;
    char publish_var[PATH_MAX + 64];
    if (inst->publish != NULL) {
        if (inside)
            snprintf(publish_var, sizeof(publish_var), "FLINT_PUBLISH=unix:/run/flint/publish");
        else
            snprintf(publish_var, sizeof(publish_var), "FLINT_PUBLISH=unix:%s/publish", pub_dir);
        env_vars[n++] = publish_var;
    }
    char *owned[260];
    size_t nowned = 0;
    if (fn != NULL) {
        snprintf(fn_var, sizeof(fn_var), "FLINT_FUNCTION=%s", fn->name);
        env_vars[n++] = fn_var;
        const char *key;
        json_t *value;
        json_object_foreach(fn->spec.env, key, value)
        {
            if (nowned == 256)
                break;
            size_t len = strlen(key) + strlen(json_string_value(value)) + 2;
            char *kv = malloc(len);
            if (kv == NULL)
                continue;
            snprintf(kv, len, "%s=%s", key, json_string_value(value));
            owned[nowned++] = kv;
            env_vars[n++] = kv;
        }
        inst->fn = fn;
        inst->fn_revision = fn->revision;
        publish_assign(inst);
    }
    env_vars[n] = NULL;

    struct fl_limits limits;
    struct fl_sandbox_spec spec = {.argv = argv,
                                   .env = env_vars,
                                   .code_dir = code,
                                   .runtime_dir =
                                       e->spec.runtime == FL_RUNTIME_CUSTOM ? NULL : e->runtime_dir,
                                   .listen_fd = listen_fd,
                                   .publish_dir = inst->publish != NULL ? pub_dir : NULL,
                                   .limits = *instance_limits(inst, &limits),
                                   .network = e->spec.network};
    int rc = fl_sandbox_spawn(ex->loop, &ex->mode, &spec, on_instance_line, on_instance_exit, inst,
                              &inst->sb);
    close(listen_fd); /* the instance holds it now */
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
    if (rc < 0) {
        if (fn != NULL)
            fn_note(fn, inst, "cannot start an instance: %s", fl_strerror(rc));
        publish_close(inst);
        fl_remove_tree(inst->dir);
        free(inst);
        return NULL;
    }
    uv_timer_init(ex->loop, &inst->timer);
    inst->timer.data = inst;
    ex->instances_alive++;
    e->refs++;
    inst->started_ns = now_ns();
    inst->last_used_ns = inst->started_ns;
    inst->deadline_ns = inst->started_ns + ex->cfg.start_timeout_ms * 1000000ULL;
    inst->probe_delay_ms = 1;
    probe_schedule(inst);
    if (fn != NULL) {
        fl_queue_insert_head(&fn->instances, &inst->node);
        fn->cold_starts++;
        count(ex, "flint_instance_starts_total",
              "Instances given to functions: taken from a warm pool, or started new.", "from",
              "new");
    } else {
        fl_queue_insert_head(&e->pool, &inst->node);
        e->pool_starting++;
    }
    return inst;
}

static void instance_stop(struct instance *inst, const char *why)
{
    if (inst->state == INST_STOPPING || inst->sb == NULL)
        return;
    if (inst->exit_reason[0] == '\0')
        fl_strlcpy(inst->exit_reason, why, sizeof(inst->exit_reason));
    if (inst->fn == NULL && inst->env != NULL) {
        if (inst->state == INST_STARTING)
            inst->env->pool_starting--;
        else if (inst->state == INST_IDLE)
            inst->env->pool_idle--;
    }
    inst->state = INST_STOPPING;
    if (inst->probe != NULL)
        fl_http_client_cancel(inst->probe);
    uv_timer_stop(&inst->timer);
    fl_sandbox_stop(inst->sb, STOP_GRACE_MS);
}

/* ---- the warm pool ---- */

static void on_refill_timer(uv_timer_t *t)
{
    struct env *e = t->data;
    e->backoff_passed = true;
    pool_refill(e);
}

/* Start generic instances up to poolsize. After failed starts, wait (100 ms
 * doubling to 30 s) and try one at a time, so a broken environment does not
 * spin. */
static void pool_refill(struct env *e)
{
    struct fl_executor *ex = e->ex;
    if (ex->closing || e->removed)
        return;
    int want = (int)e->spec.poolsize;
    if (e->failures > 0) {
        if (!e->backoff_passed) {
            if (!uv_is_active((uv_handle_t *)&e->refill_timer)) {
                uint64_t delay = 100ULL << (e->failures < 9 ? e->failures : 9);
                uv_timer_start(&e->refill_timer, on_refill_timer,
                               delay < RESTART_MAX_MS ? delay : RESTART_MAX_MS, 0);
            }
            return;
        }
        want = e->pool_starting + 1 < want ? e->pool_starting + 1 : want;
    }
    e->backoff_passed = false;
    while (e->pool_starting + e->pool_idle < want)
        if (instance_start(ex, e, NULL) == NULL)
            break;
}

static void env_timer_closed(uv_handle_t *h)
{
    struct env *e = h->data;
    struct fl_executor *ex = e->ex;
    fl_env_spec_release(&e->spec);
    free(e);
    ex->handles_open--;
    close_step(ex);
}

static void env_maybe_free(struct env *e)
{
    if (!e->removed || e->refs > 0 || uv_is_closing((uv_handle_t *)&e->refill_timer))
        return;
    fl_queue_remove(&e->node);
    uv_close((uv_handle_t *)&e->refill_timer, env_timer_closed);
}

/* ---- specialization ---- */

static void fail_queue(struct function *fn, int status, const char *code, const char *message)
{
    struct fl_invocation *inv;
    while ((inv = queue_first(fn)) != NULL) {
        queue_unlink(inv);
        respond_error(inv, status, code, "%s", message);
    }
}

static void on_specialized(int err, const struct fl_http_client_response *resp, void *data)
{
    struct instance *inst = data;
    inst->probe = NULL;
    if (err == FL_ECANCELED || inst->state != INST_SPECIALIZING)
        return;
    struct function *fn = inst->fn;
    if (err == 0 && resp->status >= 200 && resp->status < 300) {
        inst->state = INST_READY;
        inst->last_used_ns = now_ns();
        fl_sandbox_mark(inst->sb); /* what runs now is the instance's own */
        fl_log(FL_LOG_DEBUG, "exec", "instance specialized", "function=%s instance=%s us=%llu",
               fn->name, inst->id, (unsigned long long)((now_ns() - inst->started_ns) / 1000));
        dispatch(fn);
        return;
    }
    char message[1400];
    if (err == 0) {
        json_t *doc = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, NULL);
        const char *m =
            json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
        snprintf(message, sizeof(message), "function '%s' failed to load: %.1000s", fn->name,
                 m                ? m
                 : resp->body_len ? resp->body
                                  : "no reason given");
        json_decref(doc);
    } else {
        snprintf(message, sizeof(message),
                 "function '%s' failed to load: the instance %s while loading it (%s)%s%s",
                 fn->name, err == FL_ETIMEDOUT ? "did not answer" : "failed", fl_strerror(err),
                 inst->last_err[0] ? "; last error output: " : "", inst->last_err);
    }
    fn_note(fn, inst, "%s", message);
    if (inst->fn_revision == fn->revision) {
        free(fn->load_error);
        fn->load_error = fl_strndup(message, strlen(message));
    }
    instance_stop(inst, "failed to load the function");
    fail_queue(fn, 500, "function_load_failed", message);
}

static void link_done(uv_work_t *req, int status);

/* Give a taken instance its function's build: linked into code/f on the
 * thread pool (it stays SPECIALIZING, never picked), then link_done()
 * calls POST /v2/specialize. */
static void instance_specialize(struct instance *inst)
{
    struct function *fn = inst->fn;
    struct fl_executor *ex = inst->ex;
    inst->state = INST_SPECIALIZING;
    fl_strlcpy(inst->build_key, fn->build_key, sizeof(inst->build_key));
    struct tree_work *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        instance_stop(inst, "out of memory");
        return;
    }
    w->ex = ex;
    w->inst = inst;
    w->req.data = w;
    fl_strlcpy(w->src, fn->deploy_dir, sizeof(w->src));
    snprintf(w->dst, sizeof(w->dst), "%s/code/f", inst->dir);
    int rc = uv_queue_work(ex->loop, &w->req, link_work, link_done);
    if (rc < 0) {
        free(w);
        fn_note(fn, inst, "cannot place the build in the instance: %s", fl_strerror(rc));
        instance_stop(inst, "cannot place the code");
        return;
    }
    inst->linking = true;
    ex->work_pending++;
}

static void link_done(uv_work_t *req, int status)
{
    struct tree_work *w = req->data;
    struct instance *inst = w->inst;
    struct fl_executor *ex = w->ex;
    int rc = w->rc;
    free(w);
    ex->work_pending--;
    inst->linking = false;
    if (inst->closed) { /* it went while its code was linked */
        instance_free(inst);
        return;
    }
    if (inst->state != INST_SPECIALIZING) /* stopping: its exit comes */
        return;
    struct function *fn = inst->fn;
    if (rc < 0) {
        fn_note(fn, inst, "cannot place the build in the instance: %s", fl_strerror(rc));
        instance_stop(inst, "cannot place the code");
        return;
    }
    char dst[PATH_MAX + 16], filepath[PATH_MAX + 300];
    snprintf(dst, sizeof(dst), "%s/code/f", inst->dir);
    const char *base = ex->mode.bwrap ? "/code/f" : dst;
    if (fn->entry[0] != '\0')
        snprintf(filepath, sizeof(filepath), "%s/%s", base, fn->entry);
    else
        snprintf(filepath, sizeof(filepath), "%s", base);
    json_t *doc = json_pack("{s:s}", "filepath", filepath);
    if (doc != NULL && fn->spec.entrypoint != NULL)
        json_object_set_new(doc, "functionName", json_string(fn->spec.entrypoint));
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (body == NULL) {
        instance_stop(inst, "out of memory");
        return;
    }
    static const struct fl_http_header json_type = {"Content-Type", 12, "application/json", 16};
    struct fl_http_client_request creq = {.target = inst->target,
                                          .method = "POST",
                                          .path = "/v2/specialize",
                                          .headers = &json_type,
                                          .nheaders = 1,
                                          .body = body,
                                          .body_len = strlen(body),
                                          .timeout_ms = (uint64_t)fn->spec.timeout_ms};
    rc = fl_http_client_request(ex->client, &creq, on_specialized, inst, &inst->probe);
    free(body);
    if (rc < 0)
        instance_stop(inst, "cannot send /v2/specialize");
}

/* ---- scaling ---- */

static bool uses_pool(const struct function *fn)
{
    const struct fl_limits *l = &fn->spec.limits;
    return json_object_size(fn->spec.env) == 0 && l->memory_bytes == 0 && l->cpu_seconds == 0 &&
           l->open_files == 0 && l->processes == 0 && l->cpu_millis == 0;
}

static bool is_current(const struct instance *inst, const struct function *fn, const struct env *e)
{
    return !inst->draining && inst->state != INST_STOPPING && inst->fn_revision == fn->revision &&
           e != NULL && inst->env == e && inst->env_revision == e->revision;
}

/* One more instance for fn: a warm one from the pool if it can, else a new
 * one. false if none could be had. */
static bool start_for(struct function *fn, struct env *e)
{
    if (uses_pool(fn)) {
        struct fl_queue *q, *tmp;
        FL_QUEUE_FOREACH(q, tmp, &e->pool)
        {
            struct instance *inst = INST_OF(q);
            if (inst->state != INST_IDLE || inst->env_revision != e->revision)
                continue;
            fl_queue_remove(&inst->node);
            e->pool_idle--;
            inst->fn = fn;
            inst->fn_revision = fn->revision;
            publish_assign(inst);
            fl_queue_insert_head(&fn->instances, &inst->node);
            inst->started_ns = now_ns();
            fn->cold_starts++;
            count(fn->ex, "flint_instance_starts_total",
                  "Instances given to functions: taken from a warm pool, or started new.", "from",
                  "pool");
            instance_specialize(inst);
            /* refill a moment later: starting a process blocks the loop for
             * a few milliseconds, which this specialization should not wait */
            if (!uv_is_active((uv_handle_t *)&e->refill_timer))
                uv_timer_start(&e->refill_timer, on_refill_timer, REFILL_DELAY_MS, 0);
            return true;
        }
    }
    return instance_start(fn->ex, e, fn) != NULL;
}

static void scale_up(struct function *fn)
{
    struct env *e = env_find(fn->ex, fn->spec.environment);
    if (e == NULL) {
        char message[256];
        snprintf(message, sizeof(message), "environment '%s' of function '%s' not found",
                 fn->spec.environment, fn->name);
        fail_queue(fn, 503, "environment_not_found", message);
        return;
    }
    size_t live = 0, coming = 0;
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &fn->instances)
    {
        struct instance *inst = INST_OF(q);
        if (!is_current(inst, fn, e))
            continue;
        live++;
        if (inst->state != INST_READY)
            coming++;
    }
    size_t rpi = (size_t)fn->spec.requests_per_instance;
    /* generic instances still starting will be taken as they become idle */
    size_t soon = uses_pool(fn) ? (size_t)e->pool_starting : 0;
    while (fn->queued > (coming + soon) * rpi && live < (size_t)fn->spec.concurrency) {
        if (!start_for(fn, e))
            break;
        live++;
        coming++;
    }
}

/* ---- invocations ---- */

static void on_response(int err, const struct fl_http_client_response *resp, void *data);

static void inflight_unlink(struct fl_invocation *inv)
{
    fl_queue_remove(&inv->node);
}

static void send_to(struct instance *inst, struct fl_invocation *inv)
{
    struct function *fn = inv->fn;
    const struct fl_executor_request *r = &inv->req;
    struct fl_http_header headers[MAX_HEADERS];
    size_t n = 0;
    /* the budget: X-Flint-* last, the extras before them (at most
     * MAX_EXTRA, fl_executor_invoke() refused more), the caller's headers
     * in what is left; no subtraction here can go below zero */
    size_t nextra = r->nextra < MAX_EXTRA ? r->nextra : MAX_EXTRA;
    size_t room = MAX_HEADERS - FLINT_HEADERS - nextra;
    for (size_t i = 0; i < r->nheaders && n < room; i++) {
        const struct fl_http_header *h = &r->headers[i];
        if (fl_http_is_hop_by_hop(h->name, h->name_len) ||
            (h->name_len >= 8 && strncasecmp(h->name, "x-flint-", 8) == 0))
            continue;
        bool replaced = false; /* by an extra of the same name */
        for (size_t k = 0; k < nextra && !replaced; k++)
            replaced = r->extra[k].name_len == h->name_len &&
                       strncasecmp(r->extra[k].name, h->name, h->name_len) == 0;
        if (!replaced)
            headers[n++] = *h;
    }
    for (size_t i = 0; i < nextra; i++)
        headers[n++] = r->extra[i];
    char attempt[FL_U64_CHARS];
    size_t attempt_len = fl_fmt_u64(attempt, (uint64_t)(r->attempt > 0 ? r->attempt : 1));
    const char *trigger = r->trigger ? r->trigger : "http";
    headers[n++] = (struct fl_http_header){"X-Flint-Function", 16, fn->name, strlen(fn->name)};
    headers[n++] = (struct fl_http_header){"X-Flint-Invocation-Id", 21, inv->id, strlen(inv->id)};
    headers[n++] = (struct fl_http_header){"X-Flint-Attempt", 15, attempt, attempt_len};
    headers[n++] = (struct fl_http_header){"X-Flint-Trigger", 15, trigger, strlen(trigger)};
    struct fl_http_client_request req = {.target = inst->target,
                                         .method = r->method,
                                         .path = r->target,
                                         .headers = headers,
                                         .nheaders = n,
                                         .body = r->body,
                                         .body_len = r->body_len,
                                         .timeout_ms = (uint64_t)fn->spec.timeout_ms,
                                         .pipeline = inst->pipelining};
    inv->head = strcmp(r->method, "HEAD") == 0;
    inv->inst = inst;
    fl_queue_insert_head(&inst->inflight, &inv->node);
    inst->active++;
    int rc = fl_http_client_request(inst->ex->client, &req, on_response, inv, &inv->call);
    if (rc < 0) {
        inflight_unlink(inv);
        inst->active--;
        inv->call = NULL;
        respond_error(inv, 503, "instance_unreachable",
                      "cannot send the request to an instance of '%s': %s", fn->name,
                      fl_strerror(rc));
    }
}

static void on_broken_timer(uv_timer_t *t)
{
    struct instance *inst = t->data;
    struct fl_limits limits;
    /* a process killed for memory can take longer than the grace to be
     * reaped (its memory freed first): the cgroup says so already */
    if (inst->sb != NULL && fl_sandbox_oom_killed(inst->sb))
        describe_exit(inst, FL_EXIT_MEMORY, SIGKILL, instance_limits(inst, &limits));
    else
        fl_strlcpy(inst->exit_reason, "it closed the connection without a response",
                   sizeof(inst->exit_reason));
    instance_stop(inst, inst->exit_reason);
}

static void on_response(int err, const struct fl_http_client_response *resp, void *data)
{
    struct fl_invocation *inv = data;
    struct instance *inst = inv->inst;
    struct function *fn = inv->fn;
    struct fl_executor *ex = fn->ex;
    inflight_unlink(inv);
    inv->call = NULL;
    inst->active--;
    inst->last_used_ns = now_ns();
    if (err == 0) {
        struct fl_http_header headers[MAX_HEADERS];
        size_t n = 0;
        /* an answer to HEAD has no body: its Content-Length is the one news
         * of the length, and goes on to the caller */
        bool head = inv->head;
        for (size_t i = 0; i < resp->nheaders && n < MAX_HEADERS; i++) {
            const struct fl_http_header *h = &resp->headers[i];
            /* Date goes on (a workflow's outputHeaders() shows it); an
             * HTTP answer carries the server's own */
            if ((!fl_http_is_hop_by_hop(h->name, h->name_len) ||
                 (head && fl_str_ieq(h->name, h->name_len, "content-length"))) &&
                !fl_str_ieq(h->name, h->name_len, "x-flint-invocation-id")) /* respond() says */
                headers[n++] = *h;
        }
        respond(inv, resp->status, headers, n, resp->body ? resp->body : "", resp->body_len, NULL,
                NULL);
    } else if (ex->closing || inv->instance_died) {
        respond_instance_gone(inv, inst);
    } else if (err == FL_ETIMEDOUT) {
        fn_note(fn, inst, "request %s timed out after %lld ms; instance recycled", inv->id,
                (long long)fn->spec.timeout_ms);
        respond_error(inv, 504, "function_timeout",
                      "function '%s' did not answer within its functionTimeout (%lld ms)", fn->name,
                      (long long)fn->spec.timeout_ms);
        instance_stop(inst, "timed out");
    } else if (err == FL_ETOOBIG) {
        respond_error(inv, 502, "response_too_large",
                      "the response of function '%s' is larger than %zu bytes", fn->name,
                      ex->cfg.max_response_bytes);
    } else if (err == FL_EPROTO) {
        /* the instance lives but speaks no valid HTTP: nothing more it
         * says on that connection can be trusted */
        fn_note(fn, inst, "request %s: the instance answered malformed HTTP; instance recycled",
                inv->id);
        respond_error(inv, 502, "bad_response",
                      "function '%s' answered with malformed HTTP (see the runtime contract)",
                      fn->name);
        instance_stop(inst, "answered malformed HTTP");
    } else {
        /* the connection broke: most likely the instance is dying; answer
         * when its exit tells why */
        fl_queue_insert_head(&inst->inflight, &inv->node);
        if (inst->sb != NULL && inst->state != INST_STOPPING && !inst->draining) {
            /* give a crash a moment to be reported as what it is, then stop */
            inst->draining = true;
            uv_timer_start(&inst->timer, on_broken_timer, BROKEN_GRACE_MS, 0);
        }
        return;
    }
    if (inst->state != INST_STOPPING && inst->active == 0 &&
        (inst->draining || inst->fn_revision != fn->revision))
        instance_stop(inst, "replaced by a new revision");
    dispatch(fn);
}

static void queue_timer_update(struct function *fn);

static void on_queue_timer(uv_timer_t *t)
{
    struct function *fn = t->data;
    struct fl_executor *ex = fn->ex;
    uint64_t now = now_ns(), wait = ex->cfg.queue_wait_ms * 1000000ULL;
    struct fl_invocation *inv;
    while ((inv = queue_first(fn)) != NULL && now - inv->enqueued_ns >= wait) {
        queue_unlink(inv);
        struct env *e = env_find(ex, fn->spec.environment);
        size_t ready = 0;
        struct fl_queue *q, *tmp;
        FL_QUEUE_FOREACH(q, tmp, &fn->instances)
        {
            if (is_current(INST_OF(q), fn, e) && INST_OF(q)->state == INST_READY)
                ready++;
        }
        if (ready >= (size_t)fn->spec.concurrency)
            respond_error(inv, 429, "concurrency_limit",
                          "function '%s' is at its limit of %lld instances with %lld requests "
                          "each, and the request waited %llu ms",
                          fn->name, (long long)fn->spec.concurrency,
                          (long long)fn->spec.requests_per_instance,
                          (unsigned long long)ex->cfg.queue_wait_ms);
        else
            respond_error(inv, 503, "no_instance",
                          "no instance of function '%s' became ready within %llu ms (%s)", fn->name,
                          (unsigned long long)ex->cfg.queue_wait_ms,
                          fn->build == BUILD_RUNNING ? "still building" : "instances starting");
    }
    queue_timer_update(fn);
    room_check(fn);
}

static void queue_timer_update(struct function *fn)
{
    const struct fl_invocation *first = queue_first(fn);
    if (first == NULL) {
        uv_timer_stop(&fn->queue_timer);
        return;
    }
    uint64_t due = first->enqueued_ns + fn->ex->cfg.queue_wait_ms * 1000000ULL;
    uint64_t now = now_ns();
    uv_timer_start(&fn->queue_timer, on_queue_timer, due > now ? (due - now) / 1000000 + 1 : 0, 0);
}

/* ---- capacity ---- */

static uint64_t fn_running(const struct function *fn)
{
    uint64_t running = 0;
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &fn->instances)
    {
        running += INST_OF(q)->active;
    }
    return running;
}

static uint64_t fn_slots(const struct function *fn)
{
    return (uint64_t)fn->spec.concurrency * (uint64_t)fn->spec.requests_per_instance;
}

/* A function reported full has room again, or is gone: say so, once. */
static void room_check(struct function *fn)
{
    if (!fn->room_wanted || (!fn->removed && (fn->queued > 0 || fn_running(fn) >= fn_slots(fn))))
        return;
    fn->room_wanted = false;
    if (fn->ex->room != NULL)
        fn->ex->room(fn->ex->room_data, fn->name);
}

int fl_executor_capacity(struct fl_executor *ex, const char *name, struct fl_executor_capacity *out)
{
    struct function *fn = ex->closing ? NULL : fn_find(ex, name);
    if (fn == NULL)
        return FL_ENOENT;
    out->slots = fn_slots(fn);
    out->running = fn_running(fn);
    out->queued = fn->queued;
    out->queue_max = ex->cfg.queue_max;
    if (out->queued > 0 || out->running >= out->slots)
        fn->room_wanted = true;
    return 0;
}

void fl_executor_on_room(struct fl_executor *ex, void (*room)(void *data, const char *function),
                         void *data)
{
    ex->room = room;
    ex->room_data = data;
}

static struct instance *pick(struct function *fn)
{
    struct env *e = env_find(fn->ex, fn->spec.environment);
    struct instance *best = NULL;
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &fn->instances)
    {
        struct instance *inst = INST_OF(q);
        if (inst->state != INST_READY || !is_current(inst, fn, e) ||
            inst->active >= (unsigned)fn->spec.requests_per_instance)
            continue;
        if (best == NULL || inst->active < best->active)
            best = inst;
    }
    return best;
}

static void dispatch(struct function *fn)
{
    if (fn->ex->closing)
        return;
    while (!fl_queue_empty(&fn->queue)) {
        if (fn->load_error != NULL) {
            fail_queue(fn, 500, "function_load_failed", fn->load_error);
            break;
        }
        if (fn->build == BUILD_FAILED) {
            char message[1200];
            const char *log = fn->build_log ? fn->build_log : "";
            size_t len = strlen(log);
            snprintf(message, sizeof(message), "function '%s' failed to build: %s", fn->name,
                     len > 900 ? log + len - 900 : log);
            fail_queue(fn, 500, "build_failed", message);
            break;
        }
        if (fn->build != BUILD_OK) {
            if (env_find(fn->ex, fn->spec.environment) == NULL)
                scale_up(fn); /* fails the queue with a clear error */
            break;
        }
        struct instance *inst = pick(fn);
        if (inst == NULL) {
            scale_up(fn);
            break;
        }
        struct fl_invocation *inv = queue_first(fn);
        queue_unlink(inv);
        observe_wait(fn, inv);
        send_to(inst, inv);
    }
    queue_timer_update(fn);
    room_check(fn);
}

int fl_executor_invoke(struct fl_executor *ex, const struct fl_executor_request *req,
                       fl_executor_cb cb, void *data, struct fl_invocation **handle)
{
    struct fl_invocation *inv = calloc(1, sizeof(*inv));
    if (inv == NULL)
        return FL_ENOMEM;
    inv->ex = ex;
    inv->req = *req;
    inv->cb = cb;
    inv->data = data;
    if (req->invocation_id != NULL)
        fl_strlcpy(inv->id, req->invocation_id, sizeof(inv->id));
    else
        fl_uuid7(inv->id);
    if (handle != NULL)
        *handle = inv;
    inv->too_many_extra = req->nextra > MAX_EXTRA;
    struct function *fn = ex->closing ? NULL : fn_find(ex, req->function);
    if (fn == NULL || inv->too_many_extra) {
        fl_queue_insert_head(&ex->early, &inv->node);
        uv_timer_start(&ex->early_timer, on_early_timer, 0, 0);
        return 0;
    }
    inv->fn = fn;
    /* the hot path: a ready instance with room, nothing waiting before us */
    if (fl_queue_empty(&fn->queue) && fn->build == BUILD_OK && fn->load_error == NULL) {
        struct instance *inst = pick(fn);
        if (inst != NULL) {
            send_to(inst, inv);
            return 0;
        }
    }
    /* what dispatch() would answer at once (never from inside this call) */
    inv->unservable = fn->load_error != NULL || fn->build == BUILD_FAILED ||
                      (fn->build != BUILD_OK && env_find(ex, fn->spec.environment) == NULL);
    if (fn->queued >= ex->cfg.queue_max || inv->unservable) {
        inv->queue_full = !inv->unservable; /* answered from the loop */
        fl_queue_insert_head(&ex->early, &inv->node);
        uv_timer_start(&ex->early_timer, on_early_timer, 0, 0);
        return 0;
    }
    inv->queued = true;
    inv->enqueued_ns = now_ns();
    fl_queue_insert_tail(&fn->queue, &inv->node);
    fn->queued++;
    dispatch(fn);
    return 0;
}

void fl_executor_cancel(struct fl_invocation *inv)
{
    if (inv->queued) {
        struct function *fn = inv->fn;
        queue_unlink(inv);
        inv_free(inv);
        queue_timer_update(fn);
        room_check(fn);
        return;
    }
    if (inv->call != NULL) {
        /* the function still runs: its slot stays taken until the instance
         * answers, or times out and is recycled; on_response frees it */
        inv->canceled = true;
        return;
    }
    /* in ex->early, or waiting for its dying instance's exit in its
     * inflight (inv->inst set) */
    if (fl_queue_linked(&inv->node)) {
        fl_queue_remove(&inv->node);
        inv_free(inv);
    }
}

/* ---- builds ---- */

struct build_ctx {
    struct function *fn;
    unsigned gen;
};

static void on_built(int err, const struct fl_build_result *res, void *data)
{
    struct build_ctx *ctx = data;
    struct function *fn = ctx->fn;
    fn->builds_pending--;
    bool current = ctx->gen == fn->build_gen && !fn->removed && !fn->ex->closing;
    free(ctx);
    if (!current) {
        function_maybe_free(fn);
        return;
    }
    free(fn->build_log);
    fn->build_log = NULL;
    count(fn->ex, "flint_builds_total", "Builds by result (ok, failed, cached, error).", "result",
          err < 0       ? "error"
          : !res->ok    ? "failed"
          : res->cached ? "cached"
                        : "ok");
    if (err < 0) {
        fn->build = BUILD_FAILED;
        char message[256];
        snprintf(message, sizeof(message), "flint could not run the build: %s", fl_strerror(err));
        fn->build_log = fl_strndup(message, strlen(message));
        fn_note(fn, NULL, "%s", message);
    } else {
        fn->build = res->ok ? BUILD_OK : BUILD_FAILED;
        fn->build_log = fl_strndup(res->log, strlen(res->log));
        fl_strlcpy(fn->deploy_dir, res->deploy_dir, sizeof(fn->deploy_dir));
        if (!res->ok) {
            size_t len = strlen(res->log);
            fn_note(fn, NULL, "build failed: %s", len > 800 ? res->log + len - 800 : res->log);
        } else if (!res->cached) {
            fn_note(fn, NULL, "built revision %lld", (long long)fn->revision);
        }
    }
    dispatch(fn);
}

/* fn's build could not be run: its calls get why. */
static void function_build_failed(struct function *fn, const char *what, int err)
{
    fn->build = BUILD_FAILED;
    char message[256];
    snprintf(message, sizeof(message), "%s: %s", what, fl_strerror(err));
    free(fn->build_log);
    fn->build_log = fl_strndup(message, strlen(message));
    fn_note(fn, NULL, "%s", message);
    dispatch(fn);
}

static void function_build(struct function *fn)
{
    struct fl_executor *ex = fn->ex;
    struct env *e = env_find(ex, fn->spec.environment);
    fn->build_gen++;
    free(fn->load_error);
    fn->load_error = NULL;
    fn->build_key[0] = '\0';
    if (e == NULL) {
        fn->build = BUILD_NONE; /* built when its environment appears */
        dispatch(fn);
        return;
    }
    char code_path[PATH_MAX];
    int rc = fl_path_fmt(code_path, sizeof(code_path), "%s/code/sha256/%s", ex->data_dir,
                         fn->spec.code_sha256);
    if (rc < 0) {
        function_build_failed(fn, "flint could not run the build", rc);
        return;
    }
    struct fl_build_input in = {.code_path = code_path,
                                .code_sha256 = fn->spec.code_sha256,
                                .code_filename = fn->spec.code_filename,
                                .runtime = e->spec.runtime,
                                .builder = e->spec.builder,
                                .runtime_dir =
                                    e->spec.runtime == FL_RUNTIME_CUSTOM
                                        ? NULL /* a custom runtime has no files of ours */
                                        : e->runtime_dir,
                                .network = e->spec.network};
    fl_build_entry(&in, fn->entry, sizeof(fn->entry));
    fl_build_key(&in, fn->build_key);
    struct build_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        fn->build = BUILD_FAILED;
        return;
    }
    ctx->fn = fn;
    ctx->gen = fn->build_gen;
    fn->build = BUILD_RUNNING;
    rc = fl_builder_build(ex->builder, &in, on_built, ctx);
    if (rc < 0) {
        free(ctx);
        function_build_failed(fn, "flint could not start the build", rc);
        return;
    }
    fn->builds_pending++;
}

/* ---- what exists ---- */

/* Every instance of fn (or of every function of env e) drains and stops. */
static void drain_instances(struct function *fn, const char *why)
{
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &fn->instances)
    {
        struct instance *inst = INST_OF(q);
        inst->draining = true;
        if (inst->active == 0)
            instance_stop(inst, why);
    }
}

static void function_timer_closed(uv_handle_t *h)
{
    struct function *fn = h->data;
    struct fl_executor *ex = fn->ex;
    if (ex->cfg.metrics != NULL && fn_find(ex, fn->name) == NULL) {
        static const char *const names[] = {"flint_instances", "flint_queued"};
        static const char *const labels2[] = {"function", "state"};
        for (int st = INST_STARTING; st <= INST_STOPPING; st++) {
            const char *values[] = {fn->name, state_names[st]};
            fl_metric_remove(fl_metrics_gauge(ex->cfg.metrics, names[0], "", 2, labels2), values);
        }
        const char *label = "function";
        fl_metric_remove(fl_metrics_gauge(ex->cfg.metrics, names[1], "", 1, &label),
                         (const char *[]){fn->name});
    }
    fl_fn_spec_release(&fn->spec);
    free(fn->build_log);
    free(fn->load_error);
    free(fn);
    ex->handles_open--;
    close_step(ex);
}

static void function_maybe_free(struct function *fn)
{
    bool gone = fn->removed || fn->ex->closing;
    if (!gone || !fl_queue_empty(&fn->instances) || fn->builds_pending > 0 ||
        !fl_queue_empty(&fn->queue) || uv_is_closing((uv_handle_t *)&fn->queue_timer))
        return;
    fl_queue_remove(&fn->node);
    uv_close((uv_handle_t *)&fn->queue_timer, function_timer_closed);
}

/* Every generic instance of e's pool stops. */
static void stop_pool(struct env *e, const char *why)
{
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &e->pool)
    {
        instance_stop(INST_OF(q), why);
    }
}

/* Every instance of every function of the environment name drains. */
static void drain_environment(struct fl_executor *ex, const char *name, const char *why)
{
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &ex->fns)
    {
        struct function *fn = FN_OF(q);
        if (strcmp(fn->spec.environment, name) == 0)
            drain_instances(fn, why);
    }
}

int fl_executor_set_environment(struct fl_executor *ex, const char *name, int64_t revision,
                                struct fl_env_spec *spec)
{
    struct env *e = env_find(ex, name);
    if (ex->closing || (e != NULL && e->revision == revision)) {
        fl_env_spec_release(spec);
        return 0;
    }
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e == NULL) {
            fl_env_spec_release(spec);
            return FL_ENOMEM;
        }
        e->ex = ex;
        fl_strlcpy(e->name, name, sizeof(e->name));
        uv_timer_init(ex->loop, &e->refill_timer);
        e->refill_timer.data = e;
        ex->handles_open++;
        fl_queue_init(&e->pool);
        fl_queue_insert_head(&ex->envs, &e->node);
    } else {
        fl_env_spec_release(&e->spec);
        stop_pool(e, "its environment changed");
        drain_environment(ex, name, "its environment changed");
    }
    e->spec = *spec;
    e->revision = revision;
    e->failures = 0;
    /* fl_executor_new() refused a runtimes directory too long for this */
    if (fl_path_join(e->runtime_dir, sizeof(e->runtime_dir), ex->runtimes_dir,
                     fl_runtime_name(e->spec.runtime)) < 0)
        fl_log(FL_LOG_ERROR, "exec", "runtime directory name too long", "environment=%s", name);
    fl_log(FL_LOG_INFO, "exec", "environment", "name=%s revision=%lld runtime=%s poolsize=%lld",
           name, (long long)revision, fl_runtime_name(e->spec.runtime),
           (long long)e->spec.poolsize);
    pool_refill(e);
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &ex->fns)
    {
        struct function *fn = FN_OF(q);
        if (!fn->removed && strcmp(fn->spec.environment, name) == 0)
            function_build(fn);
    }
    return 0;
}

void fl_executor_remove_environment(struct fl_executor *ex, const char *name)
{
    struct env *e = env_find(ex, name);
    if (e == NULL)
        return;
    e->removed = true;
    uv_timer_stop(&e->refill_timer);
    stop_pool(e, "its environment was deleted");
    drain_environment(ex, name, "its environment was deleted");
    /* a new environment of this name is a new struct; this one goes with its
     * last instance */
    fl_queue_remove(&e->node);
    env_maybe_free(e);
}

int fl_executor_set_function(struct fl_executor *ex, const char *name, int64_t revision,
                             struct fl_fn_spec *spec)
{
    struct function *fn = fn_find(ex, name);
    if (ex->closing || (fn != NULL && fn->revision == revision)) {
        fl_fn_spec_release(spec);
        return 0;
    }
    if (fn == NULL) {
        fn = calloc(1, sizeof(*fn));
        if (fn == NULL) {
            fl_fn_spec_release(spec);
            return FL_ENOMEM;
        }
        fn->ex = ex;
        fl_strlcpy(fn->name, name, sizeof(fn->name));
        uv_timer_init(ex->loop, &fn->queue_timer);
        fn->queue_timer.data = fn;
        ex->handles_open++;
        fl_queue_init(&fn->instances);
        fl_queue_init(&fn->queue);
        fl_queue_insert_head(&ex->fns, &fn->node);
    } else {
        drain_instances(fn, "replaced by a new revision");
        fl_fn_spec_release(&fn->spec);
    }
    fn->spec = *spec;
    fn->revision = revision;
    fl_log(FL_LOG_INFO, "exec", "function", "name=%s revision=%lld environment=%s", name,
           (long long)revision, fn->spec.environment);
    function_build(fn);
    return 0;
}

void fl_executor_remove_function(struct fl_executor *ex, const char *name)
{
    struct function *fn = fn_find(ex, name);
    if (fn == NULL)
        return;
    fn->removed = true;
    char message[128];
    snprintf(message, sizeof(message), "function '%s' was deleted", name);
    fail_queue(fn, 404, "function_not_found", message);
    drain_instances(fn, "its function was deleted");
    room_check(fn);
    if (ex->cfg.logs != NULL)
        fl_logbook_remove(ex->cfg.logs, name);
    function_maybe_free(fn);
}

/* ---- the tick: idle reaping and minScale ---- */

static void on_tick(uv_timer_t *t)
{
    struct fl_executor *ex = t->data;
    uint64_t now = now_ns();
    struct fl_queue *fq, *ftmp, *q, *tmp;
    FL_QUEUE_FOREACH(fq, ftmp, &ex->fns)
    {
        struct function *fn = FN_OF(fq);
        struct env *e = env_find(ex, fn->spec.environment);
        if (fn->removed || e == NULL)
            continue;
        size_t live = 0;
        FL_QUEUE_FOREACH(q, tmp, &fn->instances)
        {
            if (is_current(INST_OF(q), fn, e))
                live++;
        }
        uint64_t idle_ns = (uint64_t)fn->spec.idle_timeout_ms * 1000000ULL;
        /* what calls started and left running (a daemon, a setsid'd child)
         * ends once no call runs on the instance any more */
        FL_QUEUE_FOREACH(q, tmp, &fn->instances)
        {
            struct instance *inst = INST_OF(q);
            int n = inst->state == INST_READY && inst->active == 0 && inst->sb != NULL
                        ? fl_sandbox_end_strays(inst->sb)
                        : 0;
            if (n > 0)
                fn_note(fn, inst, "ended %d process%s its calls left running", n,
                        n == 1 ? "" : "es");
        }
        FL_QUEUE_FOREACH(q, tmp, &fn->instances)
        {
            struct instance *inst = INST_OF(q);
            if (live <= (size_t)fn->spec.min_scale)
                break;
            if (inst->state == INST_READY && inst->active == 0 && is_current(inst, fn, e) &&
                now - inst->last_used_ns >= idle_ns) {
                instance_stop(inst, "idle");
                live--;
            }
        }
        if (fn->build == BUILD_OK && fn->load_error == NULL)
            while (live < (size_t)fn->spec.min_scale && start_for(fn, e))
                live++;
    }
}

/* ---- collection of builds and code nobody uses ---- */

/* The builds in use: every current revision's, and every instance's. */
static size_t builds_in_use(struct fl_executor *ex, const char **out, size_t max)
{
    size_t n = 0;
    struct fl_queue *fq, *ftmp, *q, *tmp;
    FL_QUEUE_FOREACH(fq, ftmp, &ex->fns)
    {
        struct function *fn = FN_OF(fq);
        if (!fn->removed && fn->build_key[0] != '\0' && n < max)
            out[n++] = fn->build_key;
        FL_QUEUE_FOREACH(q, tmp, &fn->instances)
        {
            struct instance *inst = INST_OF(q);
            if (inst->build_key[0] != '\0' && n < max)
                out[n++] = inst->build_key;
        }
    }
    return n;
}

/* The code blobs in use: every function's. */
static size_t code_in_use(struct fl_executor *ex, const char **out, size_t max)
{
    size_t n = 0;
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &ex->fns)
    {
        struct function *fn = FN_OF(q);
        if (!fn->removed && n < max)
            out[n++] = fn->spec.code_sha256;
    }
    return n;
}

typedef size_t (*in_use_list_fn)(struct fl_executor *ex, const char **out, size_t max);

/* Room for what a list of names in use can hold: a name per function and
 * per instance, and more. */
static size_t in_use_max(const struct fl_executor *ex)
{
    size_t max = 2 * (size_t)ex->instances_alive + 64;
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &ex->fns)
    {
        max += 2;
    }
    return max;
}

static bool listed(struct fl_executor *ex, in_use_list_fn list, const char *name)
{
    size_t max = in_use_max(ex);
    const char **names = malloc(max * sizeof(*names));
    if (names == NULL)
        return true; /* when in doubt, keep */
    size_t n = list(ex, names, max);
    bool found = n == max; /* a list cut short keeps everything */
    for (size_t i = 0; i < n && !found; i++)
        found = strcmp(names[i], name) == 0;
    free(names);
    return found;
}

static bool build_in_use(const char *name, void *data)
{
    struct fl_executor *ex = data;
    return ex->closing || fl_builder_busy(ex->builder, name) || listed(ex, builds_in_use, name);
}

static bool code_in_use_now(const char *name, void *data)
{
    struct fl_executor *ex = data;
    return ex->closing || listed(ex, code_in_use, name);
}

static int sweep(struct fl_executor *ex, const char *sub, in_use_list_fn list, uint64_t grace_ms,
                 bool (*in_use)(const char *, void *), fl_sweep_cb cb);

static void gc_done(int err, size_t removed, void *data, const char *what)
{
    struct fl_executor *ex = data;
    ex->work_pending--;
    if (err < 0)
        fl_log(FL_LOG_WARN, "exec", "collection failed", "what=%s err=\"%s\"", what,
               fl_strerror(err));
    if (removed > 0)
        fl_log(FL_LOG_INFO, "exec", "collected", "what=%s removed=%zu", what, removed);
    count_by(ex, "flint_gc_removed_total", "Unused builds and code blobs removed.", "what", what,
             (double)removed);
}

static void code_swept(int err, size_t removed, void *data)
{
    struct fl_executor *ex = data;
    gc_done(err, removed, data, "code");
    ex->gc_running = false;
    count(ex, "flint_gc_runs_total", "Collections of unused builds and code run.", "result",
          err < 0 ? "error" : "ok");
    close_step(ex);
}

static void builds_swept(int err, size_t removed, void *data)
{
    struct fl_executor *ex = data;
    gc_done(err, removed, data, "build");
    if (ex->closing || sweep(ex, "code/sha256", code_in_use, ex->cfg.code_grace_ms, code_in_use_now,
                             code_swept) < 0) {
        ex->gc_running = false;
        close_step(ex);
    }
}

/* Start sweeping DATA/<sub>, keeping what list says is in use. */
static int sweep(struct fl_executor *ex, const char *sub, in_use_list_fn list, uint64_t grace_ms,
                 bool (*in_use)(const char *, void *), fl_sweep_cb cb)
{
    size_t max = in_use_max(ex);
    const char **keep = malloc(max * sizeof(*keep));
    if (keep == NULL)
        return FL_ENOMEM;
    char dir[PATH_MAX + 16];
    int rc = fl_path_join(dir, sizeof(dir), ex->data_dir, sub);
    if (rc < 0) {
        free(keep);
        return rc;
    }
    struct fl_sweep_spec spec = {.dir = dir,
                                 .keep = keep,
                                 .nkeep = list(ex, keep, max),
                                 .grace_ms = grace_ms,
                                 .in_use = in_use,
                                 .data = ex};
    rc = spec.nkeep == max ? FL_ETOOBIG : fl_sweep_start(ex->loop, &spec, cb, ex);
    free(keep);
    if (rc == 0)
        ex->work_pending++;
    return rc;
}

static void on_gc_timer(uv_timer_t *t)
{
    struct fl_executor *ex = t->data;
    if (ex->closing || !ex->functions_loaded || ex->gc_running)
        return;
    int rc = sweep(ex, "builds", builds_in_use, ex->cfg.build_grace_ms, build_in_use, builds_swept);
    if (rc < 0)
        fl_log(FL_LOG_WARN, "exec", "cannot collect", "err=\"%s\"", fl_strerror(rc));
    else
        ex->gc_running = true;
}

void fl_executor_functions_loaded(struct fl_executor *ex)
{
    ex->functions_loaded = true;
}

/* ---- status ---- */

static json_t *instance_json(const struct instance *inst)
{
    uint64_t now = now_ns();
    return json_pack("{s:s,s:s,s:I,s:i,s:b,s:I,s:s,s:b,s:b}", "id", inst->id, "state",
                     state_names[inst->state], "revision", (json_int_t)inst->fn_revision, "active",
                     (int)inst->active, "draining", inst->draining, "idleMs",
                     (json_int_t)((now - inst->last_used_ns) / 1000000), "socket", inst->target,
                     "pipelining", inst->pipelining, "linking", inst->linking);
}

static json_t *function_json(const struct function *fn, bool with_log)
{
    json_t *instances = json_array();
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &fn->instances)
    {
        json_array_append_new(instances, instance_json(INST_OF(q)));
    }
    json_t *j =
        json_pack("{s:s,s:I,s:s,s:s,s:o,s:I,s:I,s:I,s:I}", "name", fn->name, "revision",
                  (json_int_t)fn->revision, "environment", fn->spec.environment, "build",
                  build_names[fn->build], "instances", instances, "queued", (json_int_t)fn->queued,
                  "invocations", (json_int_t)fn->invocations, "errors", (json_int_t)fn->errors,
                  "instanceStarts", (json_int_t)fn->cold_starts);
    if (j != NULL && fn->load_error != NULL)
        json_object_set_new(j, "loadError", json_string(fn->load_error));
    if (j != NULL && with_log && fn->build_log != NULL)
        json_object_set_new(j, "buildLog", json_string(fn->build_log));
    return j;
}

json_t *fl_executor_status(struct fl_executor *ex)
{
    json_t *envs = json_array(), *fns = json_array();
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &ex->envs)
    {
        const struct env *e = ENV_OF(q);
        json_array_append_new(envs, json_pack("{s:s,s:I,s:s,s:{s:I,s:i,s:i}}", "name", e->name,
                                              "revision", (json_int_t)e->revision, "runtime",
                                              fl_runtime_name(e->spec.runtime), "pool", "size",
                                              (json_int_t)e->spec.poolsize, "ready", e->pool_idle,
                                              "starting", e->pool_starting));
    }
    FL_QUEUE_FOREACH(q, tmp, &ex->fns)
    {
        if (!FN_OF(q)->removed)
            json_array_append_new(fns, function_json(FN_OF(q), false));
    }
    return json_pack("{s:o,s:o}", "environments", envs, "functions", fns);
}

void fl_executor_update_metrics(struct fl_executor *ex)
{
    struct fl_metrics *metrics = ex->cfg.metrics;
    if (metrics == NULL)
        return;
    static const char *const fn_labels[] = {"function", "state"};
    static const char *const env_labels[] = {"environment", "state"};
    static const char *const q_label[] = {"function"};
    struct fl_metric *instances = fl_metrics_gauge(
        metrics, "flint_instances", "Instances of each function by state.", 2, fn_labels);
    struct fl_metric *queued = fl_metrics_gauge(
        metrics, "flint_queued", "Requests waiting for an instance, by function.", 1, q_label);
    struct fl_metric *pool =
        fl_metrics_gauge(metrics, "flint_pool_instances",
                         "Generic instances of each environment's warm pool.", 2, env_labels);
    struct fl_queue *fq, *ftmp, *q, *tmp;
    FL_QUEUE_FOREACH(fq, ftmp, &ex->fns)
    {
        struct function *fn = FN_OF(fq);
        if (fn->removed)
            continue;
        int counts[INST_STOPPING + 1] = {0};
        FL_QUEUE_FOREACH(q, tmp, &fn->instances)
        {
            counts[INST_OF(q)->state]++;
        }
        for (int st = INST_STARTING; st <= INST_STOPPING; st++) {
            if (st == INST_IDLE)
                continue; /* a function's instances are never idle generics */
            const char *values[] = {fn->name, state_names[st]};
            fl_metric_set(instances, values, counts[st]);
        }
        const char *values[] = {fn->name};
        fl_metric_set(queued, values, (double)fn->queued);
    }
    FL_QUEUE_FOREACH(q, tmp, &ex->envs)
    {
        const struct env *e = ENV_OF(q);
        const char *ready[] = {e->name, "ready"}, *starting[] = {e->name, "starting"};
        fl_metric_set(pool, ready, e->pool_idle);
        fl_metric_set(pool, starting, e->pool_starting);
    }
}

int fl_executor_function_retry(struct fl_executor *ex, const char *name,
                               struct fl_retry_policy *out)
{
    struct function *f = fn_find(ex, name);
    if (f == NULL)
        return FL_ENOENT;
    *out = f->spec.retry;
    return 0;
}

int fl_executor_function_publishes(struct fl_executor *ex, const char *name, char *const **topics,
                                   size_t *n)
{
    struct function *f = fn_find(ex, name);
    if (f == NULL || f->removed)
        return FL_ENOENT;
    *topics = f->spec.publishes;
    *n = f->spec.npublishes;
    return 0;
}

json_t *fl_executor_function_status(struct fl_executor *ex, const char *name)
{
    struct function *fn = fn_find(ex, name);
    return fn ? function_json(fn, true) : NULL;
}

/* ---- life ---- */

#define TMP_RUN_PREFIX "/tmp/flint-run-"
/* what the executor adds to the data and runtimes directories' names at
 * most (code/sha256/<64 hex>, run-dir, a runtime's name) */
#define DIR_ROOM 128

/* DATA/run-dir: names the run directory under /tmp, while there is one. */
static int run_dir_note(const char *data_dir, char *out, size_t size)
{
    return fl_path_join(out, size, data_dir, "run-dir");
}

/* Remove the run directory an earlier flintd of this data directory made
 * under /tmp, as DATA/run-dir names it: it was killed before removing it.
 * Only a directory of ours by that name is touched. */
static void remove_old_tmp_run_dir(const char *data_dir)
{
    char note[PATH_MAX];
    if (run_dir_note(data_dir, note, sizeof(note)) < 0)
        return;
    struct fl_buf old;
    fl_buf_init(&old, 256);
    struct stat st;
    if (fl_file_read(note, &old) == 0 && old.len > strlen(TMP_RUN_PREFIX) &&
        strncmp(old.data, TMP_RUN_PREFIX, strlen(TMP_RUN_PREFIX)) == 0 &&
        memchr(old.data, '\0', old.len) == NULL &&
        strchr(old.data + strlen(TMP_RUN_PREFIX), '/') == NULL && lstat(old.data, &st) == 0 &&
        S_ISDIR(st.st_mode) && st.st_uid == geteuid())
        fl_remove_tree(old.data);
    fl_buf_release(&old);
    unlink(note);
}

static int make_run_dir(struct fl_executor *ex)
{
    /* a socket path must fit in sun_path (108): DIR/run/<hex>/s */
    int rc = fl_path_join(ex->run_dir, sizeof(ex->run_dir), ex->data_dir, "run");
    if (rc < 0)
        return rc;
    fl_remove_tree(ex->run_dir); /* left by an earlier flintd */
    remove_old_tmp_run_dir(ex->data_dir);
    if (strlen(ex->run_dir) + 24 > 100) {
        char tmpl[] = TMP_RUN_PREFIX "XXXXXX";
        if (mkdtemp(tmpl) == NULL)
            return -errno;
        fl_strlcpy(ex->run_dir, tmpl, sizeof(ex->run_dir));
        /* so that the next flintd can remove it if this one is killed */
        char note[PATH_MAX];
        rc = run_dir_note(ex->data_dir, note, sizeof(note));
        return rc < 0 ? rc : fl_file_write_atomic(note, tmpl, strlen(tmpl));
    }
    if (mkdir(ex->run_dir, 0700) != 0)
        return -errno;
    return 0;
}

int fl_executor_new(uv_loop_t *loop, const struct fl_executor_config *cfg, struct fl_executor **out)
{
    struct fl_executor *ex = calloc(1, sizeof(*ex));
    if (ex == NULL)
        return FL_ENOMEM;
    ex->loop = loop;
    fl_queue_init(&ex->envs);
    fl_queue_init(&ex->fns);
    fl_queue_init(&ex->early);
    ex->cfg = *cfg;
    ex->mode = *cfg->mode;
    ex->cfg.mode = &ex->mode;
    fl_strlcpy(ex->data_dir, cfg->data_dir, sizeof(ex->data_dir));
    fl_strlcpy(ex->runtimes_dir, cfg->runtimes_dir, sizeof(ex->runtimes_dir));
    ex->cfg.data_dir = ex->data_dir;
    ex->cfg.runtimes_dir = ex->runtimes_dir;
    char builds[PATH_MAX + 16];
    /* every path the executor makes below these must fit PATH_MAX */
    int rc = strlen(cfg->data_dir) + DIR_ROOM >= sizeof(ex->data_dir) ||
                     strlen(cfg->runtimes_dir) + DIR_ROOM >= sizeof(ex->runtimes_dir)
                 ? -ENAMETOOLONG
                 : make_run_dir(ex);
    if (rc == 0)
        rc = fl_path_join(builds, sizeof(builds), ex->data_dir, "builds");
    struct fl_builder_config bcfg;
    fl_builder_config_init(&bcfg);
    bcfg.dir = builds;
    bcfg.mode = &ex->mode;
    bcfg.max_output_files = cfg->build_max_files;
    bcfg.max_output_bytes = cfg->build_max_bytes;
    if (rc == 0)
        rc = fl_builder_new(loop, &bcfg, &ex->builder);
    struct fl_http_client_config ccfg;
    fl_http_client_config_init(&ccfg);
    ccfg.max_response_bytes = cfg->max_response_bytes;
    ccfg.connect_timeout_ms = 2000;
    ccfg.max_idle = 64;
    /* runtimes that take pipelined calls run them one at a time: one
     * connection carries them in the fewest writes and wake-ups (a second
     * opens only when 64 are unanswered) */
    ccfg.pipeline_conns = 1;
    if (rc == 0)
        rc = fl_http_client_new(loop, &ccfg, &ex->client);
    if (rc < 0) {
        if (ex->builder != NULL)
            fl_builder_close(ex->builder, NULL, NULL);
        free(ex);
        return rc;
    }
    uv_timer_init(loop, &ex->tick);
    uv_timer_init(loop, &ex->early_timer);
    uv_timer_init(loop, &ex->gc_timer);
    ex->tick.data = ex->early_timer.data = ex->gc_timer.data = ex;
    ex->handles_open = 3;
    uv_timer_start(&ex->tick, on_tick, cfg->tick_ms, cfg->tick_ms);
    if (cfg->gc_interval_ms > 0)
        uv_timer_start(&ex->gc_timer, on_gc_timer, cfg->gc_interval_ms, cfg->gc_interval_ms);
    *out = ex;
    return 0;
}

static void client_closed(void *data)
{
    struct fl_executor *ex = data;
    void (*done)(void *) = ex->done;
    void *done_data = ex->done_data;
    /* every instance has stopped: their sockets and code links go */
    fl_remove_tree(ex->run_dir);
    if (strncmp(ex->run_dir, TMP_RUN_PREFIX, strlen(TMP_RUN_PREFIX)) == 0) {
        char note[PATH_MAX];
        if (run_dir_note(ex->data_dir, note, sizeof(note)) == 0)
            unlink(note);
    }
    free(ex);
    if (done)
        done(done_data);
}

static void builder_closed(void *data)
{
    struct fl_executor *ex = data;
    ex->builder = NULL;
    close_step(ex);
}

static void executor_timer_closed(uv_handle_t *h)
{
    struct fl_executor *ex = h->data;
    ex->handles_open--;
    close_step(ex);
}

/* The end of closing, step by step as things go away: instances, then
 * builds, functions and environments, then timers and the client. */
static void close_step(struct fl_executor *ex)
{
    if (!ex->closing || ex->instances_alive > 0 || ex->work_pending > 0)
        return;
    if (!ex->builder_closing) {
        ex->builder_closing = true;
        uv_close((uv_handle_t *)&ex->tick, executor_timer_closed);
        on_early_timer(&ex->early_timer);
        uv_close((uv_handle_t *)&ex->early_timer, executor_timer_closed);
        uv_close((uv_handle_t *)&ex->gc_timer, executor_timer_closed);
        fl_builder_close(ex->builder, builder_closed, ex);
        return;
    }
    if (ex->builder != NULL)
        return; /* its running builds are stopping */
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &ex->fns)
    {
        function_maybe_free(FN_OF(q));
    }
    FL_QUEUE_FOREACH(q, tmp, &ex->envs)
    {
        ENV_OF(q)->removed = true;
        env_maybe_free(ENV_OF(q));
    }
    if (ex->handles_open > 0 || ex->client == NULL)
        return;
    struct fl_http_client *client = ex->client;
    ex->client = NULL;
    fl_http_client_close(client, client_closed, ex);
}

void fl_executor_close(struct fl_executor *ex, void (*done)(void *data), void *data)
{
    ex->closing = true;
    ex->done = done;
    ex->done_data = data;
    struct fl_queue *fq, *ftmp, *q, *tmp, *first;
    FL_QUEUE_FOREACH(fq, ftmp, &ex->fns)
    {
        struct function *fn = FN_OF(fq);
        fail_queue(fn, 503, "stopping", "flintd is stopping");
        FL_QUEUE_FOREACH(q, tmp, &fn->instances)
        {
            struct instance *inst = INST_OF(q);
            while ((first = fl_queue_first(&inst->inflight)) != NULL && INV_OF(first)->call != NULL)
                fl_http_client_cancel(INV_OF(first)->call); /* answers 503 */
            instance_stop(inst, "flintd is stopping");
        }
    }
    FL_QUEUE_FOREACH(fq, ftmp, &ex->envs)
    {
        struct env *e = ENV_OF(fq);
        uv_timer_stop(&e->refill_timer);
        stop_pool(e, "flintd is stopping");
    }
    close_step(ex);
}
