/*
 * The HTTP/1.1 client: see client.h for the contract.
 *
 * Each target has a pool: a list of idle connections (most recently used
 * first), a count of open ones, and a queue of calls waiting for a
 * connection. A call is serialized once, when it is made; it is written
 * when it gets a connection, and the response is parsed into the call.
 * The user's callback always runs outside the parser (after
 * http_parser_execute returns) and never from inside
 * fl_http_client_request(), so callbacks may start or cancel requests.
 */
#include "http/client.h"

#include "base/buf.h"
#include "base/error.h"
#include "base/queue.h"
#include "base/str.h"
#include "http/parse.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_BUFFER_SIZE (64 * 1024)
#define NBUCKETS         64

enum call_state { CALL_QUEUED, CALL_ACTIVE, CALL_DONE };
enum conn_state { CONN_CONNECTING, CONN_BUSY, CONN_IDLE, CONN_CLOSING };

struct target;
struct conn;

struct fl_http_call {
    struct fl_http_client *client;
    struct target *target;
    struct conn *conn;
    /* in its target's queue while CALL_QUEUED, in its connection's calls
     * (in order) while CALL_ACTIVE */
    struct fl_queue node;
    enum call_state state;
    struct fl_buf request; /* serialized, written whole */
    bool idempotent;
    bool pipeline;
    bool written;
    bool retried;
    bool detached;  /* canceled after it was written: its answer is dropped */
    bool timed_out; /* its response was due and did not come */
    uint64_t timeout_ms;
    uint64_t deadline; /* loop time its response is due, once written */
    fl_http_client_cb cb;
    fl_http_client_head_cb on_head;
    fl_http_client_body_cb on_body;
    void *data;
    /* the response */
    int status;
    struct fl_buf store;          /* header names and values, NUL-terminated */
    struct fl_http_fields fields; /* the headers, in store */
    struct fl_http_header *headers;
    bool headers_done;
    bool complete;
    int error; /* set by a parser callback: FL_ETOOBIG, FL_ECANCELED... */
    struct fl_buf body;
};

/*
 * A connection carries its calls in order: the first is the one whose
 * response is being read, and those from `unsent` on are not written yet.
 * A connection either carries one call at a time, or (pipelined) up to
 * pipeline_depth calls that all asked for pipelining; those are written
 * in batches, once per loop iteration (flush_pending), so that the
 * requests of many clients leave in one system call.
 */
struct conn {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    uv_connect_t connect_req;
    uv_timer_t timer;
    struct fl_http_client *client;
    struct target *target;
    struct fl_queue idle_link;  /* in the target's idle list */
    struct fl_queue all_link;   /* in the client's list of connections */
    struct fl_queue pipe_link;  /* in the target's pipelined connections (pipelined) */
    struct fl_queue dirty_link; /* in the client's list of connections to flush */
    bool stream_open;           /* the stream handle was initialized */
    enum conn_state state;
    struct fl_queue calls;       /* struct fl_http_call, in order: the first is being answered */
    struct fl_http_call *unsent; /* the first of calls not written yet, or NULL */
    unsigned ncalls;
    uint64_t armed; /* the deadline the timer is set for while busy; 0: none */
    http_parser parser;
    bool reused;    /* it served a request before this one */
    bool got_bytes; /* response bytes arrived for the first call */
    int handles_open;
};

struct target {
    struct target *next; /* in its hash bucket */
    char *key;
    struct fl_http_addr addr; /* a path into key for a Unix socket */
    struct fl_queue idle;     /* idle connections, most recent first */
    unsigned nidle;
    unsigned nconns;       /* open or opening */
    struct fl_queue pipes; /* connections carrying pipelined calls */
    unsigned npipes;
    struct fl_queue queue; /* struct fl_http_call waiting for a connection, oldest first */
    unsigned nqueued;
};

struct fl_http_client {
    uv_loop_t *loop;
    struct fl_http_client_config cfg;
    struct target *buckets[NBUCKETS];
    http_parser_settings settings;
    char read_buffer[READ_BUFFER_SIZE];
    struct fl_queue conns; /* every connection not yet freed */
    struct fl_queue dirty; /* connections with calls to write, newest first */
    uv_check_t flush_check;
    uv_prepare_t flush_prepare;
    bool closing;
    int handles_open;
    void (*done)(void *data);
    void *done_data;
};

void fl_http_client_config_init(struct fl_http_client_config *cfg)
{
    cfg->max_idle = 16;
    cfg->max_conns = 256;
    cfg->max_queued = 4096;
    cfg->pipeline_conns = 2;
    cfg->pipeline_depth = 64;
    cfg->connect_timeout_ms = 5000;
    cfg->response_timeout_ms = 60000;
    cfg->idle_timeout_ms = 60000;
    cfg->max_header_bytes = 64 * 1024;
    cfg->max_response_bytes = 16u << 20;
}

#define CALL_OF(q)        FL_QUEUE_DATA(q, struct fl_http_call, node)
#define CONN_OF(q, field) FL_QUEUE_DATA(q, struct conn, field)

static void call_start(struct fl_http_call *call, bool fresh_connection);
static void pump_queue(struct target *t);
static void conn_close(struct conn *c);

/* ---- targets ---- */

static unsigned hash_key(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % NBUCKETS;
}

static struct target *target_get(struct fl_http_client *client, const char *key, int *err)
{
    unsigned b = hash_key(key);
    for (struct target *t = client->buckets[b]; t != NULL; t = t->next)
        if (strcmp(t->key, key) == 0)
            return t;
    struct target *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        *err = FL_ENOMEM;
        return NULL;
    }
    fl_queue_init(&t->idle);
    fl_queue_init(&t->pipes);
    fl_queue_init(&t->queue);
    t->key = fl_strndup(key, strlen(key));
    *err = t->key != NULL ? fl_http_addr_parse(t->key, 0, &t->addr) : FL_ENOMEM;
    if (*err < 0) {
        free(t->key);
        free(t);
        return NULL;
    }
    t->next = client->buckets[b];
    client->buckets[b] = t;
    return t;
}

unsigned fl_http_client_connections(struct fl_http_client *client, const char *target)
{
    for (struct target *t = client->buckets[hash_key(target)]; t != NULL; t = t->next)
        if (strcmp(t->key, target) == 0)
            return t->nconns;
    return 0;
}

/* ---- calls ---- */

static void call_free(struct fl_http_call *call)
{
    fl_buf_release(&call->request);
    fl_buf_release(&call->store);
    fl_buf_release(&call->body);
    fl_http_fields_release(&call->fields);
    free(call->headers);
    free(call);
}

static void response_reset(struct fl_http_call *call)
{
    call->status = 0;
    fl_buf_reset(&call->store);
    fl_buf_reset(&call->body);
    fl_http_fields_reset(&call->fields);
    free(call->headers);
    call->headers = NULL;
    call->headers_done = false;
    call->complete = false;
    call->error = 0;
}

const char *fl_http_client_header(const struct fl_http_client_response *resp, const char *name,
                                  size_t *len)
{
    for (size_t i = 0; i < resp->nheaders; i++) {
        if (fl_str_ieq(resp->headers[i].name, resp->headers[i].name_len, name)) {
            if (len != NULL)
                *len = resp->headers[i].value_len;
            return resp->headers[i].value;
        }
    }
    return NULL;
}

/* Run the user's callback (unless it ran when the call was detached). */
static void call_notify(struct fl_http_call *call, int err)
{
    struct fl_http_client_response resp;
    if (err == 0) {
        memset(&resp, 0, sizeof(resp));
        resp.status = call->status;
        resp.headers = call->headers;
        resp.nheaders = call->fields.n;
        if (call->on_body == NULL) {
            resp.body = call->body.data ? call->body.data : "";
            resp.body_len = call->body.len;
        }
    }
    call->cb(err, err == 0 ? &resp : NULL, call->data);
}

/* Run the user's callback and free the call. */
static void call_finish(struct fl_http_call *call, int err)
{
    call->state = CALL_DONE;
    if (!call->detached)
        call_notify(call, err);
    call_free(call);
}

static void queue_remove(struct target *t, struct fl_http_call *call)
{
    fl_queue_remove(&call->node);
    t->nqueued--;
}

static void queue_push(struct target *t, struct fl_http_call *call)
{
    call->state = CALL_QUEUED;
    fl_queue_insert_tail(&t->queue, &call->node);
    t->nqueued++;
}

/* ---- connections ---- */

static void client_maybe_free(struct fl_http_client *client)
{
    if (client->closing && client->handles_open == 0) {
        for (int b = 0; b < NBUCKETS; b++) {
            while (client->buckets[b] != NULL) {
                struct target *t = client->buckets[b];
                client->buckets[b] = t->next;
                free(t->key);
                free(t);
            }
        }
        void (*done)(void *) = client->done;
        void *data = client->done_data;
        free(client);
        if (done != NULL)
            done(data);
    }
}

static void conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->handles_open > 0)
        return;
    struct fl_http_client *client = c->client;
    fl_queue_remove(&c->all_link);
    free(c);
    client->handles_open--;
    client_maybe_free(client);
}

static void idle_remove(struct conn *c)
{
    if (!fl_queue_linked(&c->idle_link))
        return;
    fl_queue_remove(&c->idle_link);
    c->target->nidle--;
}

static bool is_pipelined(const struct conn *c)
{
    return fl_queue_linked(&c->pipe_link);
}

static void pipe_add(struct conn *c)
{
    fl_queue_insert_head(&c->target->pipes, &c->pipe_link);
    c->target->npipes++;
}

static void pipe_remove(struct conn *c)
{
    if (!is_pipelined(c))
        return;
    fl_queue_remove(&c->pipe_link);
    c->target->npipes--;
}

static void dirty_add(struct conn *c)
{
    if (!fl_queue_linked(&c->dirty_link))
        fl_queue_insert_head(&c->client->dirty, &c->dirty_link);
}

/* The call c is answering (the first of its calls), or NULL. */
static struct fl_http_call *conn_first(const struct conn *c)
{
    struct fl_queue *q = fl_queue_first(&c->calls);
    return q != NULL ? CALL_OF(q) : NULL;
}

/* The call after call on c, or NULL. */
static struct fl_http_call *conn_next(const struct conn *c, const struct fl_http_call *call)
{
    struct fl_queue *q = fl_queue_next(&c->calls, &call->node);
    return q != NULL ? CALL_OF(q) : NULL;
}

static void conn_push(struct conn *c, struct fl_http_call *call)
{
    call->state = CALL_ACTIVE;
    call->conn = c;
    fl_queue_insert_tail(&c->calls, &call->node);
    if (c->unsent == NULL)
        c->unsent = call;
    c->ncalls++;
}

static void conn_unlink(struct conn *c, struct fl_http_call *call)
{
    if (c->unsent == call)
        c->unsent = conn_next(c, call);
    fl_queue_remove(&call->node);
    call->conn = NULL;
    c->ncalls--;
}

/* Take c's calls off it into calls (an empty head), in order; they point
 * to no connection. */
static void conn_take_calls(struct conn *c, struct fl_queue *calls)
{
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &c->calls)
    {
        CALL_OF(q)->conn = NULL;
    }
    fl_queue_append(calls, &c->calls);
    c->unsent = NULL;
    c->ncalls = 0;
}

/* Close c; its calls must have been taken off it. */
static void conn_close(struct conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    if (c->state == CONN_IDLE)
        idle_remove(c);
    pipe_remove(c);
    fl_queue_remove(&c->dirty_link);
    c->state = CONN_CLOSING;
    c->target->nconns--;
    if (c->stream_open)
        uv_close(&c->h.handle, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

/* c failed with err: close it. Calls not written yet go elsewhere (unless
 * no connection could be made); written ones are sent once more if the
 * pooled connection was dead and they are idempotent, else fail. */
static void conn_fail(struct conn *c, int err)
{
    struct target *t = c->target;
    struct fl_http_client *client = c->client;
    bool reused = c->reused, got_bytes = c->got_bytes;
    struct fl_queue calls, *q;
    fl_queue_init(&calls);
    conn_take_calls(c, &calls);
    conn_close(c);
    /* each call leaves the list before anything is done with it: it may go
     * on another connection or the queue, and callbacks run */
    for (bool first = true; (q = fl_queue_first(&calls)) != NULL; first = false) {
        struct fl_http_call *call = CALL_OF(q);
        fl_queue_remove(q);
        if (call->detached) {
            call_free(call);
        } else if (client->closing) {
            call_finish(call, FL_ECANCELED);
        } else if (!call->written) {
            if (err == FL_ECONNECT)
                call_finish(call, FL_ECONNECT);
            else
                call_start(call, false);
        } else if (call->timed_out) {
            call_finish(call, FL_ETIMEDOUT);
        } else if (err == FL_ESENT && reused && !(first && got_bytes) && call->idempotent &&
                   !call->retried) {
            /* the pooled connection was dead: once more, on a new one */
            call->retried = true;
            call->written = false;
            response_reset(call);
            call_start(call, true);
        } else {
            call_finish(call, first && call->error ? call->error : err);
        }
    }
    pump_queue(t);
}

static void on_timer(uv_timer_t *timer);

/* Make c's timer fire by the earliest response due. A timer set for an
 * earlier deadline is left alone (it finds nothing expired and re-arms),
 * which spares a timer move per response. */
static void conn_arm_timer(struct conn *c)
{
    uint64_t due = 0;
    for (struct fl_http_call *call = conn_first(c); call != c->unsent; call = conn_next(c, call))
        if (due == 0 || call->deadline < due)
            due = call->deadline;
    if (due == 0) {
        uv_timer_stop(&c->timer);
        c->armed = 0;
        return;
    }
    if (c->armed != 0 && c->armed <= due && uv_is_active((uv_handle_t *)&c->timer))
        return;
    uint64_t now = uv_now(c->client->loop);
    uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
    c->armed = due;
}

/* c carries no call: back to the pool, or closed. */
static void conn_idle(struct conn *c)
{
    struct target *t = c->target;
    pipe_remove(c);
    if (c->client->closing || t->nidle >= c->client->cfg.max_idle) {
        conn_close(c);
        return;
    }
    c->state = CONN_IDLE;
    c->armed = 0;
    fl_queue_insert_head(&t->idle, &c->idle_link);
    t->nidle++;
    uv_timer_start(&c->timer, on_timer, c->client->cfg.idle_timeout_ms, 0);
}

static void on_timer(uv_timer_t *timer)
{
    struct conn *c = timer->data;
    switch (c->state) {
    case CONN_CONNECTING:
        conn_fail(c, FL_ECONNECT);
        break;
    case CONN_BUSY: {
        uint64_t now = uv_now(c->client->loop);
        c->armed = 0;
        bool expired = false;
        for (struct fl_http_call *call = conn_first(c); call != c->unsent;
             call = conn_next(c, call)) {
            if (call->deadline <= now) {
                call->timed_out = true;
                expired = true;
            }
        }
        if (expired)
            conn_fail(c, FL_ESENT);
        else
            conn_arm_timer(c);
        break;
    }
    case CONN_IDLE:
        conn_close(c);
        break;
    case CONN_CLOSING:
        break;
    }
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = handle->data;
    buf->base = c->client->read_buffer;
    buf->len = sizeof(c->client->read_buffer);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    struct target *t = c->target;
    if (nread == 0 || c->state == CONN_CLOSING)
        return;
    struct fl_http_call *first = conn_first(c);
    if (c->state != CONN_BUSY || first == NULL || !first->written) {
        /* an idle connection the server closed, or bytes nobody asked for */
        if (first == NULL)
            conn_close(c);
        else
            conn_fail(c, nread < 0 ? FL_ESENT : FL_EPROTO);
        return;
    }
    if (nread < 0) {
        /* EOF ends a response that runs until close; anything else fails */
        struct fl_http_call *call = first;
        if (nread == UV_EOF && c->got_bytes)
            http_parser_execute(&c->parser, &c->client->settings, NULL, 0);
        if (!call->complete) {
            conn_fail(c, call->error ? call->error : FL_ESENT);
            return;
        }
        conn_unlink(c, call);
        conn_fail(c, FL_ESENT); /* the calls behind it, if any */
        call_finish(call, 0);
        return;
    }
    const char *data = buf->base;
    size_t len = (size_t)nread;
    c->got_bytes = true;
    for (;;) {
        struct fl_http_call *call = conn_first(c);
        size_t done = http_parser_execute(&c->parser, &c->client->settings, data, len);
        if (!call->complete) {
            if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
                conn_fail(c, call->error ? call->error : FL_EPROTO);
            return;
        }
        data += done;
        len -= done;
        bool keep = http_should_keep_alive(&c->parser);
        http_parser_pause(&c->parser, 0);
        conn_unlink(c, call);
        c->reused = true;
        c->got_bytes = len > 0;
        struct fl_http_call *next = conn_first(c);
        bool next_written = next != NULL && next->written;
        if (!keep || (len > 0 && !next_written)) {
            /* closing, or bytes past the last response: trust nothing more */
            if (!keep) {
                /* A server that answers "close" processes nothing after
                 * that answer (RFC 9112, 9.6): the calls behind it were
                 * not acted on, and go out again on another connection. */
                for (struct fl_http_call *n = next; n != NULL; n = conn_next(c, n))
                    n->written = false;
                c->unsent = next;
            }
            if (next != NULL)
                conn_fail(c, keep ? FL_EPROTO : FL_ESENT);
            else
                conn_close(c);
            call_finish(call, 0);
            pump_queue(t);
            return;
        }
        call_finish(call, 0); /* may cancel calls or close the client */
        if (c->state == CONN_CLOSING)
            return;
        next = conn_first(c);
        if (next == NULL) {
            conn_idle(c);
            pump_queue(t);
            return;
        }
        conn_arm_timer(c);
        pump_queue(t); /* there is room on c now */
        next = conn_first(c);
        if (len == 0 || c->state == CONN_CLOSING || next == NULL || !next->written)
            return;
    }
}

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    if (status < 0 && status != UV_ECANCELED && c->state == CONN_BUSY)
        conn_fail(c, FL_ESENT);
}

#define WRITE_BATCH 64

/* Write c's unsent calls: one writev for up to WRITE_BATCH of them. */
static void conn_write_unsent(struct conn *c)
{
    uint64_t now = uv_now(c->client->loop);
    while (c->unsent != NULL && c->state == CONN_BUSY) {
        uv_buf_t bufs[WRITE_BATCH];
        unsigned n = 0;
        for (; c->unsent != NULL && n < WRITE_BATCH; c->unsent = conn_next(c, c->unsent)) {
            struct fl_http_call *call = c->unsent;
            bufs[n++] = uv_buf_init(call->request.data, (unsigned)call->request.len);
            call->written = true;
            call->deadline =
                now + (call->timeout_ms ? call->timeout_ms : c->client->cfg.response_timeout_ms);
        }
        /* uv_try_write is EAGAIN while an earlier write is queued */
        int w = uv_try_write(&c->h.stream, bufs, n);
        if (w < 0 && w != UV_EAGAIN) {
            conn_fail(c, FL_ESENT);
            return;
        }
        /* skip what was written: i whole buffers, then left bytes of the next */
        unsigned i = 0;
        size_t left = w > 0 ? (size_t)w : 0;
        for (; i < n && left >= bufs[i].len; i++)
            left -= bufs[i].len;
        if (i < n) {
            bufs[i].base += left;
            bufs[i].len -= (unsigned)left;
            /* The calls' buffers outlive the write: a call leaves only
             * after its connection is closed (which cancels the write) or
             * answered. */
            uv_write_t *req = malloc(sizeof(*req));
            if (req == NULL) {
                conn_fail(c, FL_ESENT);
                return;
            }
            req->data = c;
            if (uv_write(req, &c->h.stream, bufs + i, n - i, on_write) < 0) {
                free(req);
                conn_fail(c, FL_ESENT);
                return;
            }
        }
    }
    if (c->state == CONN_BUSY)
        conn_arm_timer(c);
}

/* Write every connection with calls waiting: from the loop's check and
 * prepare phases, so requests made during one iteration leave together. */
static void flush_dirty(struct fl_http_client *client)
{
    struct fl_queue *q;
    while ((q = fl_queue_first(&client->dirty)) != NULL) {
        fl_queue_remove(q);
        conn_write_unsent(CONN_OF(q, dirty_link));
    }
}

static void on_flush_check(uv_check_t *h)
{
    flush_dirty(h->data);
}

static void on_flush_prepare(uv_prepare_t *h)
{
    flush_dirty(h->data);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        conn_fail(c, FL_ECONNECT);
        return;
    }
    if (c->h.handle.type == UV_TCP)
        uv_tcp_nodelay(&c->h.tcp, 1);
    if (uv_read_start(&c->h.stream, alloc_cb, read_cb) < 0) {
        conn_fail(c, FL_ECONNECT);
        return;
    }
    uv_timer_stop(&c->timer);
    c->state = CONN_BUSY;
    if (fl_queue_empty(&c->calls)) { /* its calls were canceled while connecting */
        conn_idle(c);
        pump_queue(c->target);
        return;
    }
    dirty_add(c);
}

static struct conn *conn_open(struct fl_http_client *client, struct target *t)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->client = client;
    c->target = t;
    fl_queue_init(&c->idle_link);
    fl_queue_init(&c->pipe_link);
    fl_queue_init(&c->dirty_link);
    fl_queue_init(&c->calls);
    c->state = CONN_CONNECTING;
    c->h.handle.data = c;
    c->timer.data = c;
    c->connect_req.data = c;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    uv_timer_init(client->loop, &c->timer);
    c->handles_open = 1;
    int rc = t->addr.is_unix ? uv_pipe_init(client->loop, &c->h.pipe, 0)
                             : uv_tcp_init(client->loop, &c->h.tcp);
    if (rc == 0) {
        c->stream_open = true;
        c->handles_open++;
        if (t->addr.is_unix)
            uv_pipe_connect(&c->connect_req, &c->h.pipe, t->addr.path, on_connect);
        else
            rc = uv_tcp_connect(&c->connect_req, &c->h.tcp, (struct sockaddr *)&t->addr.sa,
                                on_connect);
    }
    fl_queue_insert_head(&client->conns, &c->all_link);
    client->handles_open++;
    t->nconns++;
    /* A failure to start connecting is reported from the loop, like any
     * other connect error, never from inside the caller. */
    uv_timer_start(&c->timer, on_timer, rc < 0 ? 0 : client->cfg.connect_timeout_ms, 0);
    return c;
}

/* An idle connection of t (unless fresh), or a new one, or NULL. */
static struct conn *conn_take(struct fl_http_client *client, struct target *t, bool fresh)
{
    if (!fresh && !fl_queue_empty(&t->idle)) {
        struct conn *c = CONN_OF(fl_queue_first(&t->idle), idle_link);
        idle_remove(c);
        uv_timer_stop(&c->timer);
        c->state = CONN_BUSY;
        return c;
    }
    if (t->nconns < client->cfg.max_conns)
        return conn_open(client, t);
    return NULL;
}

/* A connection for call: pipelined calls spread over up to pipeline_conns
 * connections, then share the least busy one with room. */
static struct conn *conn_for(struct fl_http_call *call, bool fresh)
{
    struct target *t = call->target;
    struct fl_http_client *client = call->client;
    if (!call->pipeline || fresh)
        return conn_take(client, t, fresh);
    struct conn *best = NULL;
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &t->pipes)
    {
        struct conn *c = CONN_OF(q, pipe_link);
        if (c->ncalls < client->cfg.pipeline_depth && (best == NULL || c->ncalls < best->ncalls))
            best = c;
    }
    if (best != NULL && t->npipes >= client->cfg.pipeline_conns)
        return best;
    struct conn *c = conn_take(client, t, false);
    if (c == NULL)
        return best;
    pipe_add(c);
    return c;
}

/* Put call on c; it is written from the loop, with whatever else comes. */
static void call_attach(struct fl_http_call *call, struct conn *c)
{
    conn_push(c, call);
    if (c->state == CONN_BUSY)
        dirty_add(c);
}

/* Give call a connection, or a place in the queue. */
static void call_start(struct fl_http_call *call, bool fresh)
{
    struct conn *c = conn_for(call, fresh);
    if (c != NULL)
        call_attach(call, c);
    else
        queue_push(call->target, call);
}

/* Give waiting calls, oldest first, the connections that have room. */
static void pump_queue(struct target *t)
{
    struct fl_queue *q;
    while ((q = fl_queue_first(&t->queue)) != NULL) {
        struct fl_http_call *call = CALL_OF(q);
        struct conn *c = conn_for(call, false);
        if (c == NULL)
            return;
        queue_remove(t, call);
        call_attach(call, c);
    }
}

/* ---- response parsing ---- */

static struct fl_http_call *parser_call(http_parser *p)
{
    return conn_first(p->data);
}

static int header_bytes(struct fl_http_call *call, size_t more)
{
    if (call->store.len + more > call->client->cfg.max_header_bytes) {
        call->error = FL_ETOOBIG;
        return -1;
    }
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct fl_http_call *call = parser_call(p);
    if (header_bytes(call, len + 1) < 0)
        return -1;
    if (call->headers_done)
        return 0; /* trailers are not kept */
    return fl_http_fields_add_name(&call->fields, &call->store, at, len, SIZE_MAX) == 0 ? 0 : -1;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct fl_http_call *call = parser_call(p);
    if (header_bytes(call, len + 1) < 0)
        return -1;
    /* http-parser lets a control character through as a value's first byte */
    if (fl_str_has_ctl(at, len)) {
        call->error = FL_EPROTO;
        return -1;
    }
    if (call->headers_done)
        return 0;
    return fl_http_fields_add_value(&call->fields, &call->store, at, len) == 0 ? 0 : -1;
}

static int on_headers_complete(http_parser *p)
{
    struct fl_http_call *call = parser_call(p);
    if (fl_buf_appendc(&call->store, '\0') < 0)
        return -1;
    call->headers_done = true;
    call->status = p->status_code;
    if (call->fields.n > 0) {
        call->headers = malloc(call->fields.n * sizeof(*call->headers));
        if (call->headers == NULL)
            return -1;
        fl_http_fields_expose(&call->fields, call->store.data, call->headers);
    }
    if (call->on_head != NULL) {
        struct fl_http_client_response head = {
            .status = call->status, .headers = call->headers, .nheaders = call->fields.n};
        if (call->on_head(&head, call->data) != 0) {
            call->error = FL_ECANCELED;
            return -1;
        }
    }
    /* A HEAD response, 1xx, 204 and 304 have no body. */
    bool is_head = call->request.len >= 5 && memcmp(call->request.data, "HEAD ", 5) == 0;
    return is_head ? 1 : 0;
}

static int on_body_data(http_parser *p, const char *at, size_t len)
{
    struct fl_http_call *call = parser_call(p);
    if (call->on_body != NULL) {
        if (call->on_body(at, len, call->data) != 0) {
            call->error = FL_ECANCELED;
            return -1;
        }
        return 0;
    }
    if (fl_buf_append(&call->body, at, len) < 0) {
        call->error = FL_ETOOBIG;
        return -1;
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct fl_http_call *call = parser_call(p);
    if (call->status < 200) {
        /* an interim response (100 Continue): the real one follows */
        response_reset(call);
        return 0;
    }
    call->complete = true;
    http_parser_pause(p, 1);
    return 0;
}

/* ---- the API ---- */

int fl_http_client_new(uv_loop_t *loop, const struct fl_http_client_config *cfg,
                       struct fl_http_client **out)
{
    struct fl_http_client *client = calloc(1, sizeof(*client));
    if (client == NULL)
        return FL_ENOMEM;
    client->loop = loop;
    fl_queue_init(&client->conns);
    fl_queue_init(&client->dirty);
    if (cfg != NULL)
        client->cfg = *cfg;
    else
        fl_http_client_config_init(&client->cfg);
    if (client->cfg.max_conns == 0)
        client->cfg.max_conns = 1;
    if (client->cfg.pipeline_conns == 0)
        client->cfg.pipeline_conns = 1;
    if (client->cfg.pipeline_depth == 0)
        client->cfg.pipeline_depth = 1;
    http_parser_settings_init(&client->settings);
    client->settings.on_message_begin = on_message_begin;
    client->settings.on_header_field = on_header_field;
    client->settings.on_header_value = on_header_value;
    client->settings.on_headers_complete = on_headers_complete;
    client->settings.on_body = on_body_data;
    client->settings.on_message_complete = on_message_complete;
    uv_check_init(loop, &client->flush_check);
    uv_prepare_init(loop, &client->flush_prepare);
    client->flush_check.data = client;
    client->flush_prepare.data = client;
    uv_check_start(&client->flush_check, on_flush_check);
    uv_prepare_start(&client->flush_prepare, on_flush_prepare);
    uv_unref((uv_handle_t *)&client->flush_check);
    uv_unref((uv_handle_t *)&client->flush_prepare);
    client->handles_open = 2;
    *out = client;
    return 0;
}

static int serialize(struct fl_http_call *call, const struct fl_http_client_request *req)
{
    struct fl_buf *b = &call->request;
    bool has_host = false;
    if (req->method == NULL || req->path == NULL || *req->method == '\0' ||
        strpbrk(req->method, " \r\n") != NULL || req->path[0] != '/' ||
        strpbrk(req->path, " \r\n") != NULL)
        return FL_EINVAL;
    int rc = fl_buf_grow(b, 256 + strlen(req->path) + req->body_len);
    rc = rc ? rc : fl_buf_appends(b, req->method);
    rc = rc ? rc : fl_buf_appendc(b, ' ');
    rc = rc ? rc : fl_buf_appends(b, req->path);
    rc = rc ? rc : fl_buf_append(b, " HTTP/1.1\r\n", 11);
    for (size_t i = 0; i < req->nheaders && rc == 0; i++) {
        const struct fl_http_header *h = &req->headers[i];
        if (!fl_http_header_settable(h->name, h->name_len, h->value, h->value_len))
            return FL_EINVAL;
        has_host |= fl_str_ieq(h->name, h->name_len, "host");
        rc = fl_buf_append(b, h->name, h->name_len);
        rc = rc ? rc : fl_buf_append(b, ": ", 2);
        rc = rc ? rc : fl_buf_append(b, h->value, h->value_len);
        rc = rc ? rc : fl_buf_append(b, "\r\n", 2);
    }
    if (rc == 0 && !has_host) {
        rc = fl_buf_append(b, "Host: ", 6);
        rc = rc ? rc
                : fl_buf_appends(b, fl_str_has_prefix(req->target, "unix:") ? "localhost"
                                                                            : req->target);
        rc = rc ? rc : fl_buf_append(b, "\r\n", 2);
    }
    bool needs_length = req->body_len > 0 || strcmp(req->method, "POST") == 0 ||
                        strcmp(req->method, "PUT") == 0 || strcmp(req->method, "PATCH") == 0;
    if (rc == 0 && needs_length)
        rc = fl_http_append_content_length(b, req->body_len);
    rc = rc ? rc : fl_buf_append(b, "\r\n", 2);
    if (rc == 0 && req->body_len > 0)
        rc = fl_buf_append(b, req->body, req->body_len);
    return rc;
}

int fl_http_client_request_stream(struct fl_http_client *client,
                                  const struct fl_http_client_request *req,
                                  fl_http_client_head_cb on_head, fl_http_client_body_cb on_body,
                                  fl_http_client_cb cb, void *data, struct fl_http_call **out)
{
    if (client->closing)
        return FL_ECANCELED;
    int rc;
    struct target *t = target_get(client, req->target ? req->target : "", &rc);
    if (t == NULL)
        return rc;
    if (fl_queue_empty(&t->idle) && t->nconns >= client->cfg.max_conns &&
        t->nqueued >= client->cfg.max_queued)
        return FL_EAGAIN;
    struct fl_http_call *call = calloc(1, sizeof(*call));
    if (call == NULL)
        return FL_ENOMEM;
    call->client = client;
    call->target = t;
    call->cb = cb;
    call->on_head = on_head;
    call->on_body = on_body;
    call->data = data;
    call->idempotent = req->idempotent;
    call->pipeline = req->pipeline;
    call->timeout_ms = req->timeout_ms;
    fl_buf_init(&call->request, (size_t)-1 / 2);
    fl_buf_init(&call->store, client->cfg.max_header_bytes + 1);
    fl_buf_init(&call->body, client->cfg.max_response_bytes);
    rc = serialize(call, req);
    if (rc < 0) {
        call_free(call);
        return rc;
    }
    if (out != NULL)
        *out = call;
    call_start(call, false);
    return 0;
}

int fl_http_client_request(struct fl_http_client *client, const struct fl_http_client_request *req,
                           fl_http_client_cb cb, void *data, struct fl_http_call **call)
{
    return fl_http_client_request_stream(client, req, NULL, NULL, cb, data, call);
}

static void flush_handle_closed(uv_handle_t *h)
{
    struct fl_http_client *client = h->data;
    client->handles_open--;
    client_maybe_free(client);
}

void fl_http_client_cancel(struct fl_http_call *call)
{
    if (call->state == CALL_QUEUED) {
        queue_remove(call->target, call);
        call_finish(call, FL_ECANCELED);
        return;
    }
    if (call->state != CALL_ACTIVE || call->conn == NULL || call->detached)
        return;
    struct conn *c = call->conn;
    struct target *t = c->target;
    if (call->written && is_pipelined(c)) {
        /* others share the connection: its answer is dropped when it comes */
        call->detached = true;
        call_notify(call, FL_ECANCELED);
        return;
    }
    conn_unlink(c, call);
    if (call->written) {
        /* alone on its connection, maybe half written or answered: close it */
        conn_fail(c, FL_ESENT);
    } else if (fl_queue_empty(&c->calls) && c->state == CONN_BUSY) {
        conn_idle(c); /* a connecting one joins the pool once open */
    }
    call_finish(call, FL_ECANCELED);
    pump_queue(t);
}

void fl_http_client_close(struct fl_http_client *client, void (*done)(void *data), void *data)
{
    client->closing = true;
    client->done = done;
    client->done_data = data;
    client->handles_open++; /* held while callbacks run below */
    for (int b = 0; b < NBUCKETS; b++) {
        for (struct target *t = client->buckets[b]; t != NULL; t = t->next) {
            struct fl_queue *q;
            while ((q = fl_queue_first(&t->queue)) != NULL) {
                queue_remove(t, CALL_OF(q));
                call_finish(CALL_OF(q), FL_ECANCELED);
            }
        }
    }
    struct fl_queue *cq, *ctmp, *q;
    FL_QUEUE_FOREACH(cq, ctmp, &client->conns)
    {
        struct conn *c = CONN_OF(cq, all_link);
        if (c->state == CONN_CLOSING)
            continue;
        struct fl_queue calls;
        fl_queue_init(&calls);
        conn_take_calls(c, &calls);
        conn_close(c);
        while ((q = fl_queue_first(&calls)) != NULL) {
            fl_queue_remove(q);
            call_finish(CALL_OF(q), FL_ECANCELED);
        }
    }
    uv_close((uv_handle_t *)&client->flush_check, flush_handle_closed);
    uv_close((uv_handle_t *)&client->flush_prepare, flush_handle_closed);
    client->handles_open--;
    client_maybe_free(client);
}
