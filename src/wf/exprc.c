/*
 * The expression client: see exprc.h.
 *
 * An evaluator's life:
 *
 *   STARTING  its sandbox spawned and an empty batch sent; the answer
 *             makes it IDLE (FL_WF_EXPRC_START_MS without one: killed)
 *   IDLE      warm, waiting for a batch
 *   BUSY      one batch sent, its deadline running
 *   DYING     killed, or its channel ended; waits for its sandbox's exit
 *
 * A batch whose evaluator is killed for a known reason (the deadline, a
 * bad frame) fails at once; one whose evaluator just ended (its channel
 * closed, a write refused) fails at the sandbox's exit, whose cause
 * (memory, a signal, an exit status) is the message.
 *
 * An evaluator is one allocation with three things to end: its channel
 * (a uv_pipe_t over a socketpair), its timer and its sandbox (whose exit
 * callback comes once the tree is gone). It is freed when all three have,
 * and its slot is started again at the sandbox's exit, so the pool never
 * holds more than procs processes. The pool is freed once no evaluator is
 * left and its own timer is closed: that takes a turn of the loop at
 * least, so a callback may free the pool without pulling memory from under
 * the code that called it.
 */
#include "wf/exprc.h"

#include "base/buf.h"
#include "base/error.h"
#include "base/log.h"
#include "base/queue.h"
#include "exec/sandbox.h"
#include "wf/expr.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RESTART_MIN_MS 100  /* the pause after the first failed start */
#define RESTART_MAX_MS 5000 /* and the longest, doubling in between */
#define READ_CHUNK     65536
#define READ_KEEP      (1u << 20) /* bytes of read buffer kept between answers */

struct batch {
    struct fl_queue node; /* in the pool's queue while it waits */
    char *frame;          /* the length prefix and the JSON (NULL once sent) */
    size_t len;
    bool check; /* "check": true: check_deadline_ms */
    fl_wf_exprc_cb cb;
    void *data;
};

enum ev_state { EV_STARTING, EV_IDLE, EV_BUSY, EV_DYING };

struct evaluator {
    struct fl_wf_exprc *pool;
    unsigned slot;
    enum ev_state state;
    struct fl_sandbox *sb; /* NULL once it has exited */
    uv_pipe_t chan;
    uv_timer_t timer;
    int ends;            /* of chan, timer and sandbox, those not ended yet */
    bool chan_closed, timer_closed, stopped;
    bool warm;           /* it answered its empty batch */
    bool awaiting;       /* a frame was sent and its answer has not come */
    struct batch *batch; /* BUSY (or DYING, waiting for the cause) */
    struct fl_buf in;    /* the answer frame being read */
};

struct fl_wf_exprc {
    uv_loop_t *loop;
    struct fl_sandbox_mode mode; /* the sandboxes point at it: lives until they end */
    char program[PATH_MAX];
    char dir[PATH_MAX];
    char heap_arg[32], cpu_arg[16], check_cpu_arg[16];
    unsigned deadline_ms, check_deadline_ms, procs, queue_max;
    size_t mem_max;
    struct evaluator **slots; /* procs of them; NULL: empty */
    struct fl_queue queue;    /* struct batch waiting, oldest first */
    size_t queued, queued_bytes;
    unsigned alive;     /* evaluators allocated */
    unsigned fails;     /* starts in a row that failed before the evaluator was warm */
    uv_timer_t restart; /* starts the empty slots after a pause */
    bool restart_closed;
    bool closing;
    char start_error[300]; /* why the last start failed */
};

/* The empty batch that tells an evaluator is warm, and its length prefix. */
static const char warmup_json[] = "{\"exprs\":[],\"check\":true}";

static void pump(struct fl_wf_exprc *c);
static void slot_emptied(struct fl_wf_exprc *c);

/* The CPU time batch b may use (the warm-up's, with none: a check's). */
static unsigned batch_deadline(const struct fl_wf_exprc *c, const struct batch *b)
{
    return b != NULL && !b->check ? c->deadline_ms : c->check_deadline_ms;
}

/* How long the client waits for an answer to a batch that may use ms of
 * CPU time: the evaluator bounds the CPU time itself, this only ends one
 * that stopped making progress (stopped, or starved for minutes). */
static unsigned wall_bound(unsigned ms)
{
    unsigned long long wall = (unsigned long long)ms * FL_WF_EXPRC_WALL_FACTOR;
    if (wall < FL_WF_EXPRC_WALL_MIN_MS)
        wall = FL_WF_EXPRC_WALL_MIN_MS;
    return wall > UINT_MAX ? UINT_MAX : (unsigned)wall;
}

/* ---- the pool's memory ---- */

static void maybe_free_pool(struct fl_wf_exprc *c)
{
    if (!c->closing || c->alive > 0 || !c->restart_closed)
        return;
    free(c->slots);
    free(c);
}

static void on_restart_closed(uv_handle_t *h)
{
    struct fl_wf_exprc *c = h->data;
    c->restart_closed = true;
    maybe_free_pool(c);
}

/* ---- batches ---- */

/* Give a batch its end and free it. The callback may eval or free the
 * pool (which then lives on until the loop turns). */
static void batch_finish(struct batch *b, int status, json_t *answer, const char *error)
{
    fl_wf_exprc_cb cb = b->cb;
    void *data = b->data;
    free(b->frame);
    free(b);
    cb(data, status, answer, error);
}

static struct batch *queue_take(struct fl_wf_exprc *c)
{
    struct fl_queue *q = fl_queue_first(&c->queue);
    if (q == NULL)
        return NULL;
    fl_queue_remove(q);
    struct batch *b = FL_QUEUE_DATA(q, struct batch, node);
    c->queued--;
    c->queued_bytes -= b->len;
    return b;
}

static void fail_queue(struct fl_wf_exprc *c, int status, const char *message)
{
    struct batch *b;
    while ((b = queue_take(c)) != NULL)
        batch_finish(b, status, NULL, message);
}

/* ---- one evaluator ---- */

static void ev_end(struct evaluator *ev)
{
    if (--ev->ends > 0)
        return;
    struct fl_wf_exprc *c = ev->pool;
    fl_buf_release(&ev->in);
    free(ev);
    c->alive--;
    maybe_free_pool(c);
}

static void ev_handle_closed(uv_handle_t *h)
{
    ev_end(h->data);
}

static void ev_close_chan(struct evaluator *ev)
{
    if (!ev->chan_closed) {
        ev->chan_closed = true;
        uv_close((uv_handle_t *)&ev->chan, ev_handle_closed);
    }
}

/* Stop using ev: close its channel and timer and kill its sandbox's tree.
 * Its batch, if any, stays for the caller or the exit. */
static void ev_kill(struct evaluator *ev)
{
    ev->state = EV_DYING;
    ev_close_chan(ev);
    if (!ev->timer_closed) {
        ev->timer_closed = true;
        uv_close((uv_handle_t *)&ev->timer, ev_handle_closed);
    }
    if (ev->sb != NULL && !ev->stopped) {
        ev->stopped = true;
        fl_sandbox_stop(ev->sb, 0); /* SIGTERM, then SIGKILL at once */
    }
}

static void on_exit_grace(uv_timer_t *t)
{
    ev_kill(t->data);
}

/* ev's channel ended: the evaluator is ending (it exits when a batch has
 * used up its CPU time, or when it cannot go on). Its exit says why, and
 * stopping it now would put our own signal in the place of that cause, so
 * it gets FL_WF_EXPRC_EXIT_GRACE_MS to exit first. */
static void ev_channel_ended(struct evaluator *ev)
{
    ev->state = EV_DYING;
    ev_close_chan(ev);
    uv_timer_start(&ev->timer, on_exit_grace, FL_WF_EXPRC_EXIT_GRACE_MS, 0);
}

/* Kill ev for a reason known now, and fail its batch with it. */
static void ev_fail(struct evaluator *ev, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void ev_fail(struct evaluator *ev, int status, const char *fmt, ...)
{
    char message[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    struct batch *b = ev->batch;
    ev->batch = NULL;
    bool starting = !ev->warm;
    fl_log(status == FL_ETIMEDOUT ? FL_LOG_INFO : FL_LOG_WARN, "expr",
           "killing an expression evaluator", "slot=%u why=\"%s\"", ev->slot, message);
    if (starting)
        snprintf(ev->pool->start_error, sizeof(ev->pool->start_error), "%s", message);
    ev_kill(ev);
    if (b != NULL)
        batch_finish(b, status, NULL, message);
}

/* Why an evaluator ended, from how its sandbox did (b: the batch it held,
 * or NULL). */
static int exit_cause(const struct fl_wf_exprc *c, bool warm, const struct batch *b,
                      enum fl_sandbox_exit how, int status, char *msg, size_t size)
{
    switch (how) {
    case FL_EXIT_MEMORY:
        snprintf(msg, size, "expression used more than the evaluator's %zu bytes of memory",
                 c->mem_max);
        return FL_ETOOBIG;
    case FL_EXIT_CPU:
        snprintf(msg, size, "the expression evaluator used up its CPU time");
        return FL_EPIPE;
    case FL_EXIT_SIGNAL:
    case FL_EXIT_STOPPED:
        snprintf(msg, size, "the expression evaluator was killed (signal %d)", status);
        return FL_EPIPE;
    case FL_EXIT_NORMAL:
        break;
    }
    if (status == FL_WF_EXPR_EXIT_CPU && b != NULL) {
        snprintf(msg, size, "expression took longer than %u ms", batch_deadline(c, b));
        return FL_ETIMEDOUT;
    }
    if (status == 1 && warm) { /* flint-expr: out of memory outside a script */
        snprintf(msg, size, "the expression evaluator ran out of memory");
        return FL_ETOOBIG;
    }
    snprintf(msg, size, "the expression evaluator exited (status %d)", status);
    return FL_EPIPE;
}

static void on_sandbox_exit(struct fl_sandbox *sb, enum fl_sandbox_exit how, int status, void *data)
{
    struct evaluator *ev = data;
    struct fl_wf_exprc *c = ev->pool;
    char message[200];
    int err = exit_cause(c, ev->warm, ev->batch, how, status, message, sizeof(message));
    ev->sb = NULL;
    ev_kill(ev);
    if (c->slots[ev->slot] == ev)
        c->slots[ev->slot] = NULL;
    struct batch *b = ev->batch;
    ev->batch = NULL;
    bool was_warm = ev->warm;
    bool closing = c->closing;
    ev_end(ev); /* the sandbox's end; when closing, c may be gone now */
    if (closing)
        return;
    if (!was_warm) {
        c->fails++;
        if (c->start_error[0] == '\0' || b == NULL)
            snprintf(c->start_error, sizeof(c->start_error), "%s", message);
    }
    if (b != NULL) {
        fl_log(FL_LOG_WARN, "expr", "an expression evaluator ended under a batch", "why=\"%s\"",
               message);
        batch_finish(b, err, NULL, message);
    }
    if (!c->closing)
        slot_emptied(c);
}

static void on_line(struct fl_sandbox *sb, bool is_stderr, const char *line, size_t len, void *data)
{
    struct evaluator *ev = data;
    fl_log(FL_LOG_WARN, "expr", "the expression evaluator wrote", "slot=%u line=\"%.*s\"", ev->slot,
           (int)(len < 300 ? len : 300), line);
}

static void on_deadline(uv_timer_t *t)
{
    struct evaluator *ev = t->data;
    if (!ev->warm)
        ev_fail(ev, FL_EIO, "the expression evaluator did not start within %u ms",
                FL_WF_EXPRC_START_MS);
    else
        ev_fail(ev, FL_ETIMEDOUT, "the expression evaluator did not answer within %u ms",
                wall_bound(batch_deadline(ev->pool, ev->batch)));
}

/* One write to an evaluator: its own request (a uv_write_t may not be used
 * again before its callback, which can come after the answer), and the
 * frame it owns from then on. */
struct write_req {
    uv_write_t req;
    struct evaluator *ev;
    char *owned; /* freed with the request; NULL: a static frame */
};

static void on_written(uv_write_t *w, int status)
{
    struct write_req *wr = (struct write_req *)w;
    struct evaluator *ev = wr->ev; /* alive: closing its channel calls this first */
    free(wr->owned);
    free(wr);
    if (status < 0 && ev->state != EV_DYING)
        ev_kill(ev); /* it went away: its exit says why */
}

/* Send a frame to ev and start its deadline: 0, the frame given to the
 * write when owned (the caller's no more); or FL_ENOMEM, FL_EPIPE (the
 * caller keeps the frame and kills ev). */
static int ev_send(struct evaluator *ev, char *frame, size_t len, bool owned, unsigned deadline_ms)
{
    struct write_req *wr = malloc(sizeof(*wr));
    if (wr == NULL)
        return FL_ENOMEM;
    wr->ev = ev;
    wr->owned = owned ? frame : NULL;
    uv_buf_t buf = uv_buf_init(frame, (unsigned)len);
    if (uv_write(&wr->req, (uv_stream_t *)&ev->chan, &buf, 1, on_written) < 0) {
        free(wr);
        return FL_EPIPE;
    }
    ev->awaiting = true;
    uv_timer_start(&ev->timer, on_deadline, deadline_ms, 0);
    return 0;
}

/* A whole answer frame (n bytes of text) from ev. */
static void on_answer(struct evaluator *ev, const char *text, size_t n)
{
    struct fl_wf_exprc *c = ev->pool;
    json_t *answer = json_loadb(text, n, 0, NULL);
    json_t *results = json_object_get(answer, "results");
    const char *refused = json_string_value(json_object_get(answer, "error"));
    if (!json_is_array(results) && (refused == NULL || !ev->warm)) {
        json_decref(answer);
        ev_fail(ev, FL_EPROTO, "the expression evaluator sent a bad frame");
        return;
    }
    uv_timer_stop(&ev->timer);
    ev->awaiting = false;
    if (!ev->warm) {
        json_decref(answer);
        ev->warm = true;
        ev->state = EV_IDLE;
        c->fails = 0;
        c->start_error[0] = '\0';
        pump(c);
        return;
    }
    struct batch *b = ev->batch;
    ev->batch = NULL;
    ev->state = EV_IDLE;
    pump(c);
    if (json_is_array(results)) {
        batch_finish(b, 0, answer, NULL);
    } else {
        /* the evaluator refused the batch as a whole (too many expressions,
         * a scope it cannot read) and goes on */
        char message[300];
        snprintf(message, sizeof(message), "%s", refused);
        batch_finish(b, FL_EINVAL, NULL, message);
    }
    json_decref(answer);
}

static size_t frame_length(const struct fl_buf *in)
{
    const unsigned char *p = (const unsigned char *)in->data;
    return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | (size_t)p[3];
}

/* Read the length first, then no more than the rest of the frame. */
static void alloc_in(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct evaluator *ev = h->data;
    size_t want = ev->in.len < 4 ? 4 : 4 + frame_length(&ev->in);
    size_t room = want > ev->in.len ? want - ev->in.len : 1;
    if (room > READ_CHUNK)
        room = READ_CHUNK;
    if (fl_buf_grow(&ev->in, room) < 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(ev->in.data + ev->in.len, (unsigned)room);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct evaluator *ev = s->data;
    if (ev->state == EV_DYING || n == 0)
        return;
    if (n == UV_ENOBUFS) {
        ev_fail(ev, FL_ENOMEM, "out of memory reading the expression evaluator's answer");
        return;
    }
    if (n < 0) {
        ev_channel_ended(ev); /* its exit says why */
        return;
    }
    ev->in.len += (size_t)n;
    if (ev->in.len < 4)
        return;
    size_t len = frame_length(&ev->in);
    if (len == 0 || len > FL_WF_EXPR_FRAME_MAX) {
        ev_fail(ev, FL_EPROTO, "the expression evaluator sent a bad frame (%zu bytes)", len);
        return;
    }
    if (ev->in.len < 4 + len)
        return;
    if (ev->in.len > 4 + len || !ev->awaiting) {
        ev_fail(ev, FL_EPROTO, "the expression evaluator sent a frame nobody asked for");
        return;
    }
    ev->in.len = 0;
    on_answer(ev, ev->in.data + 4, len);
    if (ev->in.cap > READ_KEEP) /* ev lives until the loop turns, even if closed */
        fl_buf_release(&ev->in);
}

/* Start an evaluator in slot: its sandbox with one end of a socketpair as
 * fd 3, the other end on the loop, and the empty batch sent. 0, or an
 * error (nothing started). */
static int ev_start(struct fl_wf_exprc *c, unsigned slot)
{
    struct evaluator *ev = calloc(1, sizeof(*ev));
    if (ev == NULL)
        return FL_ENOMEM;
    ev->pool = c;
    ev->slot = slot;
    ev->state = EV_STARTING;
    fl_buf_init(&ev->in, 4 + (size_t)FL_WF_EXPR_FRAME_MAX);
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        int rc = -errno;
        free(ev);
        return rc;
    }
    char prog[PATH_MAX + 16];
    const char *base = strrchr(c->program, '/');
    if (c->mode.bwrap) /* its directory is bound at /runtime */
        snprintf(prog, sizeof(prog), "/runtime/%s", base != NULL ? base + 1 : c->program);
    else
        snprintf(prog, sizeof(prog), "%s", c->program);
    const char *argv[] = {prog,     "--fd",       "3",       "--heap",         c->heap_arg,
                          "--cpu-ms", c->cpu_arg, "--check-cpu-ms", c->check_cpu_arg, NULL};
    const char *env[] = {
        "PATH=/usr/bin:/bin",
        "LANG=C.UTF-8",
#if defined(__SANITIZE_ADDRESS__)
        /* a sanitized build's evaluator keeps its freed memory
         * within its bound; nothing is left to find at its kill */
        "ASAN_OPTIONS=quarantine_size_mb=8:detect_leaks=0",
#endif
        NULL
    };
    struct fl_sandbox_spec spec = {
        .argv = argv,
        .env = env,
        .runtime_dir = c->dir,
        .listen_fd = fds[1],
        .tmp_bytes = 1u << 20,
        .limits = {.memory_bytes = c->mem_max, .open_files = 64, .processes = 16},
    };
    int rc = fl_sandbox_spawn(c->loop, &c->mode, &spec, on_line, on_sandbox_exit, ev, &ev->sb);
    close(fds[1]);
    if (rc < 0) {
        close(fds[0]);
        free(ev);
        return rc;
    }
    c->alive++;
    ev->ends = 3;
    c->slots[slot] = ev;
    uv_pipe_init(c->loop, &ev->chan, 0);
    uv_timer_init(c->loop, &ev->timer);
    ev->chan.data = ev->timer.data = ev;
    rc = uv_pipe_open(&ev->chan, fds[0]);
    if (rc < 0)
        close(fds[0]);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&ev->chan, alloc_in, on_read);
    if (rc == 0) {
        static char warmup[4 + sizeof(warmup_json) - 1] = {0, 0, 0, sizeof(warmup_json) - 1};
        memcpy(warmup + 4, warmup_json, sizeof(warmup_json) - 1);
        rc = ev_send(ev, warmup, sizeof(warmup), false, FL_WF_EXPRC_START_MS);
    }
    if (rc < 0) /* the sandbox runs: it ends as any other, at its exit */
        ev_fail(ev, FL_EIO, "cannot talk to the expression evaluator: %s", fl_strerror(rc));
    return 0;
}

static void start_empty_slots(struct fl_wf_exprc *c);

static void on_restart(uv_timer_t *t)
{
    start_empty_slots(t->data);
}

/* Starts keep failing: fail what waits when nothing could answer it, and
 * try again after a pause that doubles with each failure. */
static void restart_later(struct fl_wf_exprc *c)
{
    bool any = false;
    for (unsigned i = 0; i < c->procs; i++)
        any = any || c->slots[i] != NULL;
    if (!any) {
        char message[400];
        snprintf(message, sizeof(message), "cannot start the expression evaluator: %s",
                 c->start_error[0] != '\0' ? c->start_error : "it ended at once");
        fail_queue(c, FL_EIO, message);
        if (c->closing)
            return;
    }
    if (uv_is_active((uv_handle_t *)&c->restart))
        return;
    uint64_t pause = RESTART_MIN_MS;
    for (unsigned i = 1; i < c->fails && pause < RESTART_MAX_MS; i++)
        pause *= 2;
    uv_timer_start(&c->restart, on_restart, pause < RESTART_MAX_MS ? pause : RESTART_MAX_MS, 0);
}

static void start_empty_slots(struct fl_wf_exprc *c)
{
    for (unsigned i = 0; i < c->procs && !c->closing; i++) {
        if (c->slots[i] != NULL)
            continue;
        int rc = ev_start(c, i);
        if (rc < 0) {
            c->fails++;
            snprintf(c->start_error, sizeof(c->start_error), "%s", fl_strerror(rc));
            fl_log(FL_LOG_ERROR, "expr", "cannot start an expression evaluator", "err=\"%s\"",
                   fl_strerror(rc));
            restart_later(c);
            return;
        }
    }
}

/* An evaluator's slot is empty: start another now, or later when starts
 * keep failing. */
static void slot_emptied(struct fl_wf_exprc *c)
{
    if (c->fails == 0)
        start_empty_slots(c);
    else
        restart_later(c);
}

/* Give waiting batches to idle evaluators, oldest first. */
static void pump(struct fl_wf_exprc *c)
{
    for (unsigned i = 0; i < c->procs && !fl_queue_empty(&c->queue); i++) {
        struct evaluator *ev = c->slots[i];
        if (ev == NULL || ev->state != EV_IDLE)
            continue;
        struct batch *b = queue_take(c);
        ev->batch = b;
        ev->state = EV_BUSY;
        if (ev_send(ev, b->frame, b->len, true, wall_bound(batch_deadline(c, b))) == 0) {
            b->frame = NULL; /* the write's now */
        } else {
            /* not this batch's fault: it goes back first in line */
            ev->batch = NULL;
            fl_queue_insert_head(&c->queue, &b->node);
            c->queued++;
            c->queued_bytes += b->len;
            ev_kill(ev);
        }
    }
}

/* ---- the interface ---- */

int fl_wf_exprc_find_program(char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (size > 0)
        out[0] = '\0';
    if (n <= 0)
        return FL_ENOENT;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return FL_ENOENT;
    *slash = '\0';
    static const char *const candidates[] = {"%s/flint-expr", "%s/../bin/flint-expr"};
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        int len = snprintf(out, size, candidates[i], exe);
        if (len > 0 && (size_t)len < size && access(out, X_OK) == 0)
            return 0;
    }
    if (size > 0)
        out[0] = '\0';
    return FL_ENOENT;
}

int fl_wf_exprc_new(uv_loop_t *loop, const struct fl_wf_exprc_config *cfg, struct fl_wf_exprc **out)
{
    if (cfg->program == NULL || cfg->program[0] == '\0')
        return FL_EINVAL;
    struct fl_wf_exprc *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return FL_ENOMEM;
    c->loop = loop;
    if (realpath(cfg->program, c->program) == NULL) {
        int rc = -errno;
        free(c);
        return rc;
    }
    snprintf(c->dir, sizeof(c->dir), "%s", c->program);
    *strrchr(c->dir, '/') = '\0'; /* realpath's answer is absolute */
    if (c->dir[0] == '\0')
        snprintf(c->dir, sizeof(c->dir), "/");
    if (cfg->mode != NULL)
        c->mode = *cfg->mode;
    else
        fl_sandbox_probe(&c->mode, false);
    if (c->mode.launcher[0] == '\0') {
        free(c);
        return FL_ENOENT;
    }
    c->deadline_ms = cfg->deadline_ms ? cfg->deadline_ms : FL_WF_EXPR_DEADLINE_MS;
    c->check_deadline_ms = cfg->check_deadline_ms ? cfg->check_deadline_ms : FL_WF_EXPRC_CHECK_MS;
    c->procs = cfg->procs ? cfg->procs : 1;
    c->queue_max = cfg->queue_max ? cfg->queue_max : FL_WF_EXPRC_QUEUE_DEFAULT;
    c->mem_max = cfg->mem_max ? cfg->mem_max : FL_WF_EXPRC_MEM_DEFAULT;
    size_t heap = c->mem_max / 2 < FL_WF_EXPR_HEAP ? c->mem_max / 2 : FL_WF_EXPR_HEAP;
    if (heap < (1u << 20))
        heap = 1u << 20;
    snprintf(c->heap_arg, sizeof(c->heap_arg), "%zu", heap);
    snprintf(c->cpu_arg, sizeof(c->cpu_arg), "%u", c->deadline_ms);
    snprintf(c->check_cpu_arg, sizeof(c->check_cpu_arg), "%u", c->check_deadline_ms);
    fl_queue_init(&c->queue);
    c->slots = calloc(c->procs, sizeof(*c->slots));
    if (c->slots == NULL) {
        free(c);
        return FL_ENOMEM;
    }
    /* the first start tells whether the pool can work at all: when it
     * cannot, nothing was made that the loop would have to close */
    int rc = ev_start(c, 0);
    if (rc < 0) {
        free(c->slots);
        free(c);
        return rc;
    }
    uv_timer_init(loop, &c->restart);
    c->restart.data = c;
    for (unsigned i = 1; i < c->procs; i++) {
        rc = ev_start(c, i);
        if (rc < 0) { /* the others come later */
            c->fails++;
            snprintf(c->start_error, sizeof(c->start_error), "%s", fl_strerror(rc));
            restart_later(c);
            break;
        }
    }
    *out = c;
    return 0;
}

int fl_wf_exprc_eval(struct fl_wf_exprc *c, json_t *request, fl_wf_exprc_cb cb, void *data)
{
    if (c->closing)
        return FL_ECLOSED;
    if (!json_is_object(request) || cb == NULL)
        return FL_EINVAL;
    if (c->queued >= c->queue_max)
        return FL_EAGAIN;
    char *text = json_dumps(request, JSON_COMPACT);
    if (text == NULL)
        return FL_ENOMEM;
    size_t n = strlen(text);
    if (n > FL_WF_EXPR_FRAME_MAX) {
        free(text);
        return FL_ETOOBIG;
    }
    if (c->queued_bytes + n > FL_WF_EXPRC_QUEUE_BYTES && c->queued > 0) {
        free(text);
        return FL_EAGAIN;
    }
    struct batch *b = calloc(1, sizeof(*b));
    char *frame = malloc(4 + n);
    if (b == NULL || frame == NULL) {
        free(b);
        free(frame);
        free(text);
        return FL_ENOMEM;
    }
    frame[0] = (char)(n >> 24);
    frame[1] = (char)(n >> 16);
    frame[2] = (char)(n >> 8);
    frame[3] = (char)n;
    memcpy(frame + 4, text, n);
    free(text);
    b->frame = frame;
    b->len = 4 + n;
    b->check = json_is_true(json_object_get(request, "check"));
    b->cb = cb;
    b->data = data;
    fl_queue_insert_tail(&c->queue, &b->node);
    c->queued++;
    c->queued_bytes += b->len;
    pump(c);
    return 0;
}

void fl_wf_exprc_free(struct fl_wf_exprc *c)
{
    if (c == NULL || c->closing)
        return;
    c->closing = true;
    uv_timer_stop(&c->restart);
    uv_close((uv_handle_t *)&c->restart, on_restart_closed);
    /* take every batch first: a callback may not see one of them later */
    struct fl_queue running;
    fl_queue_init(&running);
    for (unsigned i = 0; i < c->procs; i++) {
        struct evaluator *ev = c->slots[i];
        if (ev == NULL)
            continue;
        if (ev->batch != NULL)
            fl_queue_insert_tail(&running, &ev->batch->node);
        ev->batch = NULL;
        ev_kill(ev);
    }
    struct fl_queue *q;
    while ((q = fl_queue_first(&running)) != NULL) {
        fl_queue_remove(q);
        batch_finish(FL_QUEUE_DATA(q, struct batch, node), FL_ECANCELED, NULL,
                     "the expression evaluators were stopped");
    }
    fail_queue(c, FL_ECANCELED, "the expression evaluators were stopped");
    maybe_free_pool(c);
}

int fl_wf_exprc_pid(const struct fl_wf_exprc *c, unsigned i)
{
    if (i >= c->procs || c->slots[i] == NULL || !c->slots[i]->warm ||
        c->slots[i]->state == EV_DYING || c->slots[i]->sb == NULL)
        return -1;
    return fl_sandbox_pid(c->slots[i]->sb);
}
