/*
 * The HTTP/1.1 server: see server.h for the contract.
 *
 * A connection parses with http-parser into the request at the tail of
 * its queue; complete requests are dispatched to the handler in order
 * after each parse step (never from inside a parser callback, so a
 * handler may answer at once without re-entering the parser). Responses
 * are serialized into their request and written from the head of the
 * queue only, which keeps pipelined answers in order. Reading pauses when
 * too many requests are in flight or the client does not read what we
 * write, so one connection's memory stays bounded.
 *
 * After a response that closes the connection (an error, Connection:
 * close, HTTP/1.0, shutdown), the write side is shut down and input is
 * read and discarded for a moment before closing ("lingering close"), so
 * the client sees the answer instead of a reset.
 *
 * Connections admitted count against max_connections and, by client
 * address, in a hash table of peers (struct peer). Those idle (nothing in
 * flight or unsent) wait in the server's idle list, oldest first: the
 * first is closed when a new connection needs its place. Each connection
 * counts what it holds (conn_held()) into the shared budget after every
 * step (conn_account()); connections that wait for the budget to drain sit
 * in the server's waiting list, which a timer walks while it is not empty.
 */
#include "http/server.h"

#include "base/buf.h"
#include "base/error.h"
#include "base/id.h"
#include "base/log.h"
#include "base/queue.h"
#include "base/str.h"
#include "http/parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_BUFFER_SIZE  (64 * 1024)
#define MAX_WRITE_QUEUED  (1u << 20) /* pause reading past this much unsent output */
#define LINGER_MS         2000
#define HEADER_SLACK      256 /* room for the path/query copies beside the headers */
#define MAX_HEADERS_LIMIT 4096
#define MAX_SPARE         8 /* finished requests a connection keeps for reuse */
#define PEER_BUCKETS      1024
#define BUDGET_POLL_MS    10         /* how often waiting connections look at the budget */
#define SHED_BYTES        (1u << 20) /* unread answers that close a connection when over */

struct fl_http_budget {
    size_t limit;
    size_t used; /* what every connection of every server using it holds */
    size_t peak;
};

/* The connections admitted from one client address (an IPv6 one: its /64). */
struct peer {
    struct peer *next; /* in its bucket */
    unsigned conns;
    unsigned char len; /* of key: 4 (IPv4) or 8 (IPv6 /64) */
    unsigned char key[8];
};

enum req_state {
    REQ_PARSING,    /* the parser is filling it */
    REQ_COMPLETE,   /* parsed, not yet given to the handler */
    REQ_DISPATCHED, /* the handler has it */
    REQ_STREAMING,  /* the handler began a streamed response */
    REQ_FINISHED,   /* the response is complete in out (or sent) */
};

struct conn;

struct request {
    struct fl_http_request pub; /* first: handlers get &pub */
    struct conn *conn;          /* NULL once the connection is gone */
    struct fl_queue node;       /* in the connection's queue or spares */
    enum req_state state;
    struct fl_buf store;          /* target, header names and values, path, query */
    struct fl_http_fields fields; /* the headers, in store */
    struct fl_http_header *headers;
    size_t headers_cap;
    struct fl_buf body;
    struct fl_buf out; /* serialized response not yet handed to the socket */
    size_t header_bytes;
    bool headers_done; /* later header callbacks are trailers: ignored */
    bool is_head;
    bool close_after; /* close the connection once this response is out */
    bool aborted;
    bool error; /* the server answered it (a parse error or limit) */
    fl_http_abort_cb abort_cb;
    void *abort_data;
};

struct listener {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    struct fl_http_server *srv;
    struct listener *next;
    char addr[300];
    char unix_path[256];
};

struct conn {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    uv_timer_t timer;
    struct fl_http_server *srv;
    struct fl_queue node; /* in srv->conns */
    const char *listener;
    char remote[64];
    http_parser parser;
    struct fl_queue queue; /* struct request: the queue, oldest first */
    unsigned nqueue;
    unsigned writes_pending;
    struct fl_buf pending; /* input not parsed yet (parser paused) */
    struct fl_queue spare; /* finished requests kept for reuse, buffers and all */
    unsigned nspare;
    bool reading;
    bool stop_parsing; /* an error or a closing request: ignore further input */
    bool closing;      /* uv_close called (or about to be) */
    bool lingering;
    bool dispatching;
    bool parsing;            /* inside http_parser_execute() */
    uint64_t deadline;       /* loop time the current phase ends; 0: none */
    uint64_t armed_deadline; /* when the libuv timer fires; 0: not armed */
    int handles_open;        /* the stream and the timer */
    bool admitted;           /* counted in nadmitted (and its peer's conns) */
    bool refused;            /* answered 503 at once: counted in nrefused */
    unsigned char peer_len;  /* 0: a peer that is not counted (Unix, adopted) */
    unsigned char peer_key[8];
    struct peer *peer;
    struct fl_queue idle_link; /* in srv->idle while idle */
    struct fl_queue wait_link; /* in srv->waiting while it waits for the budget */
    size_t held;               /* bytes counted in the budget */
};

struct fl_http_server {
    uv_loop_t *loop;
    struct fl_http_server_config cfg;
    fl_http_handler handler;
    void *data;
    struct listener *listeners;
    struct listener *retired; /* closed by fl_http_server_close(), freed with the server:
                               * connections still name them (c->listener) */
    struct fl_queue conns;    /* struct conn, newest first */
    unsigned nconns;          /* every connection, until its handles are closed */
    unsigned nadmitted;       /* those served, against max_connections */
    unsigned nrefused;        /* those being answered 503 */
    struct fl_queue idle;     /* admitted connections with nothing in flight, oldest first */
    struct fl_queue waiting;  /* connections waiting for the budget, oldest first */
    struct peer *peers[PEER_BUCKETS];
    uint64_t peer_seed;
    size_t budget_max;       /* the budget's bytes past which this server sheds */
    uv_timer_t budget_timer; /* walks the waiting list while it is not empty */
    bool budget_timer_on;
    int handles_open; /* listeners + drain timer + budget timer */
    bool stopping;
    bool drain_open; /* the drain timer is running */
    uv_timer_t drain_timer;
    void (*done)(void *data);
    void *done_data;
    char read_buffer[READ_BUFFER_SIZE];
    bool read_buffer_busy;
    time_t date_sec;
    char date[40]; /* "Date: Tue, 24 Nov 2026 11:32:02 GMT\r\n" */
    size_t date_len;
    http_parser_settings settings;
};

void fl_http_server_config_init(struct fl_http_server_config *cfg)
{
    cfg->max_header_bytes = 16 * 1024;
    cfg->max_headers = 100;
    cfg->max_body_bytes = 1024 * 1024;
    cfg->header_timeout_ms = 10000;
    cfg->body_timeout_ms = 30000;
    cfg->idle_timeout_ms = 60000;
    cfg->max_connections = 4096;
    cfg->max_connections_per_address = 0;
    cfg->max_pipeline = 32;
    cfg->on_headers = NULL;
    cfg->budget = NULL;
    cfg->budget_percent = 100;
}

int fl_http_budget_new(size_t limit, struct fl_http_budget **out)
{
    if (limit == 0)
        return FL_EINVAL;
    struct fl_http_budget *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return FL_ENOMEM;
    b->limit = limit;
    *out = b;
    return 0;
}

void fl_http_budget_free(struct fl_http_budget *budget)
{
    free(budget);
}

size_t fl_http_budget_used(const struct fl_http_budget *budget)
{
    return budget->used;
}

size_t fl_http_budget_peak(const struct fl_http_budget *budget)
{
    return budget->peak;
}

/* Whether the budget is spent, as far as srv is concerned. */
static bool budget_over(const struct fl_http_server *srv)
{
    return srv->cfg.budget != NULL && srv->cfg.budget->used > srv->budget_max;
}

/* Whether a new request announcing a body of that many bytes must be
 * refused: the budget is spent, or the body would not fit. */
static bool budget_refuses(const struct fl_http_server *srv, uint64_t announced)
{
    const struct fl_http_budget *b = srv->cfg.budget;
    return b != NULL && (b->used > srv->budget_max || announced > srv->budget_max - b->used);
}

const char *fl_http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

/* ---- requests ---- */

#define REQ_OF(q)         FL_QUEUE_DATA(q, struct request, node)
#define CONN_OF(q, field) FL_QUEUE_DATA(q, struct conn, field)

/* The oldest request of c's queue (the next to answer), or NULL. */
static struct request *conn_first(const struct conn *c)
{
    struct fl_queue *q = fl_queue_first(&c->queue);
    return q != NULL ? REQ_OF(q) : NULL;
}

/* The newest request of c's queue (the one the parser fills), or NULL. */
static struct request *conn_last(const struct conn *c)
{
    struct fl_queue *q = fl_queue_last(&c->queue);
    return q != NULL ? REQ_OF(q) : NULL;
}

/* The request after r in c's queue, or NULL. */
static struct request *conn_next(const struct conn *c, const struct request *r)
{
    struct fl_queue *q = fl_queue_next(&c->queue, &r->node);
    return q != NULL ? REQ_OF(q) : NULL;
}

/* A new request at the tail of c's queue. */
static void conn_push(struct conn *c, struct request *r)
{
    fl_queue_insert_tail(&c->queue, &r->node);
    c->nqueue++;
}

/* Reset r for a new request on c, keeping its buffers' memory. */
static void request_reset(struct request *r, struct conn *c)
{
    struct fl_buf store = r->store, body = r->body, out = r->out;
    struct fl_http_fields fields = r->fields;
    struct fl_http_header *headers = r->headers;
    size_t headers_cap = r->headers_cap;

    memset(r, 0, sizeof(*r));
    r->store = store;
    r->body = body;
    r->out = out;
    r->fields = fields;
    fl_http_fields_reset(&r->fields);
    r->headers = headers;
    r->headers_cap = headers_cap;
    fl_buf_reset(&r->store);
    fl_buf_reset(&r->body);
    fl_buf_reset(&r->out);
    r->conn = c;
    r->state = REQ_PARSING;
    r->pub.listener = c->listener;
    r->pub.remote = c->remote;
    r->pub.method = "";
    r->pub.target = r->pub.path = r->pub.query = r->pub.body = "";
}

static struct request *request_new(struct conn *c)
{
    struct fl_queue *q = fl_queue_first(&c->spare);
    struct request *r;
    if (q != NULL) {
        r = REQ_OF(q);
        fl_queue_remove(q);
        c->nspare--;
        request_reset(r, c);
        return r;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    fl_buf_init(&r->store,
                2 * c->srv->cfg.max_header_bytes + 2 * c->srv->cfg.max_headers + HEADER_SLACK);
    fl_buf_init(&r->body, c->srv->cfg.max_body_bytes);
    fl_buf_init(&r->out, (size_t)-1 / 2);
    request_reset(r, c);
    return r;
}

static void request_free(struct request *r)
{
    fl_buf_release(&r->store);
    fl_buf_release(&r->body);
    fl_buf_release(&r->out);
    fl_http_fields_release(&r->fields);
    free(r->headers);
    free(r);
}

/* Done with r: keep it for c's next request if c lives on, else free it.
 * Buffers that grew large are not kept. */
static void request_done(struct conn *c, struct request *r)
{
    if (c == NULL || c->closing || c->nspare >= MAX_SPARE || r->body.cap > 64 * 1024 ||
        r->out.cap > 64 * 1024) {
        request_free(r);
        return;
    }
    fl_queue_insert_head(&c->spare, &r->node);
    c->nspare++;
}

const char *fl_http_request_header(const struct fl_http_request *req, const char *name, size_t *len)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct fl_http_header *h = &req->headers[i];
        if (fl_str_ieq(h->name, h->name_len, name)) {
            if (len != NULL)
                *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

void fl_http_request_on_abort(struct fl_http_request *req, fl_http_abort_cb cb, void *data)
{
    struct request *r = (struct request *)req;
    r->abort_cb = cb;
    r->abort_data = data;
}

bool fl_http_request_aborted(const struct fl_http_request *req)
{
    return ((const struct request *)req)->conn == NULL;
}

/* ---- connection life ---- */

static void conn_flush(struct conn *c);
static void conn_resume_reading(struct conn *c);
static void conn_parse(struct conn *c, const char *data, size_t len);
static void conn_dispatch(struct conn *c);
static void conn_abort(struct conn *c);

static void server_timer_closed(uv_handle_t *h);

/* ---- client addresses ---- */

static size_t peer_bucket(const struct fl_http_server *srv, const unsigned char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL ^ srv->peer_seed; /* FNV-1a, seeded */
    for (size_t i = 0; i < len; i++) {
        h ^= key[i];
        h *= 1099511628211ULL;
    }
    return (size_t)((h ^ (h >> 32)) & (PEER_BUCKETS - 1));
}

static struct peer *peer_find(const struct fl_http_server *srv, const struct conn *c)
{
    for (struct peer *p = srv->peers[peer_bucket(srv, c->peer_key, c->peer_len)]; p != NULL;
         p = p->next)
        if (p->len == c->peer_len && memcmp(p->key, c->peer_key, p->len) == 0)
            return p;
    return NULL;
}

/* Count c among its address's connections. 0 or FL_ENOMEM. */
static int peer_add(struct fl_http_server *srv, struct conn *c)
{
    struct peer *p = peer_find(srv, c);
    if (p == NULL) {
        p = calloc(1, sizeof(*p));
        if (p == NULL)
            return FL_ENOMEM;
        p->len = c->peer_len;
        memcpy(p->key, c->peer_key, p->len);
        size_t b = peer_bucket(srv, p->key, p->len);
        p->next = srv->peers[b];
        srv->peers[b] = p;
    }
    p->conns++;
    c->peer = p;
    return 0;
}

static void peer_release(struct fl_http_server *srv, struct conn *c)
{
    struct peer *p = c->peer;
    c->peer = NULL;
    if (p == NULL || --p->conns > 0)
        return;
    struct peer **pp = &srv->peers[peer_bucket(srv, p->key, p->len)];
    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    free(p);
}

/* ---- the budget and idleness ---- */

/* What c holds now: parked input, headers, bodies, answers not yet
 * handed to the socket and those the socket has not taken. */
static size_t conn_held(const struct conn *c)
{
    size_t n = c->pending.len + uv_stream_get_write_queue_size(&c->h.stream);
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &c->queue)
    {
        const struct request *r = REQ_OF(q);
        n += r->store.len + r->body.len + r->out.len;
    }
    return n;
}

static void conn_set_held(struct conn *c, size_t held)
{
    struct fl_http_budget *b = c->srv->cfg.budget;
    if (b == NULL)
        return;
    b->used = b->used - c->held + held;
    c->held = held;
    if (b->used > b->peak)
        b->peak = b->used;
}

/* After a step: count what c holds. While the budget is spent, a client
 * that leaves more than SHED_BYTES of answers unread loses its connection
 * (its requests in flight are abandoned, as when it hangs up). */
static void conn_account(struct conn *c)
{
    if (c->srv->cfg.budget == NULL || c->closing)
        return;
    conn_set_held(c, conn_held(c));
    if (c->held > SHED_BYTES && budget_over(c->srv) &&
        uv_stream_get_write_queue_size(&c->h.stream) > 0) {
        FL_LOG_LIMITED(FL_LOG_WARN, "http",
                       "closed a connection that leaves its answers unread while the budget of "
                       "bytes in flight is spent",
                       "remote=%s held=%zu", c->remote, c->held);
        conn_abort(c);
    }
}

static void on_budget_timer(uv_timer_t *t);

/* c waits (reading stopped, pipelined requests not started) until the
 * budget has room again. */
static void conn_wait(struct conn *c)
{
    struct fl_http_server *srv = c->srv;
    if (!fl_queue_linked(&c->wait_link))
        fl_queue_insert_tail(&srv->waiting, &c->wait_link);
    if (!srv->budget_timer_on) {
        srv->budget_timer_on = true;
        uv_timer_start(&srv->budget_timer, on_budget_timer, BUDGET_POLL_MS, BUDGET_POLL_MS);
    }
}

/* Whether c must wait for the budget: it holds bytes, and it is spent. */
static bool conn_must_wait(struct conn *c)
{
    if (c->held == 0 || !budget_over(c->srv))
        return false;
    conn_wait(c);
    return true;
}

static void on_budget_timer(uv_timer_t *t)
{
    struct fl_http_server *srv = t->data;
    /* oldest first; one that must wait again means the budget is spent */
    while (!fl_queue_empty(&srv->waiting) && !budget_over(srv)) {
        struct conn *c = CONN_OF(srv->waiting.next, wait_link);
        fl_queue_remove(&c->wait_link);
        conn_dispatch(c);
        conn_resume_reading(c);
    }
    if (fl_queue_empty(&srv->waiting)) {
        uv_timer_stop(t);
        srv->budget_timer_on = false;
    }
}

/* Keep c in the idle list while nothing is in flight, unsent or parked:
 * the first there is closed when a new connection needs its place. */
static void conn_idle_update(struct conn *c)
{
    bool idle = c->admitted && !c->closing && !c->lingering && !c->stop_parsing &&
                c->writes_pending == 0 && fl_queue_empty(&c->queue) && c->pending.len == 0;
    if (idle && !fl_queue_linked(&c->idle_link))
        fl_queue_insert_tail(&c->srv->idle, &c->idle_link);
    else if (!idle && fl_queue_linked(&c->idle_link))
        fl_queue_remove(&c->idle_link);
}

/* c stops counting: against the budget, the limits, the lists. */
static void conn_release(struct conn *c)
{
    struct fl_http_server *srv = c->srv;
    conn_set_held(c, 0);
    fl_queue_remove(&c->idle_link);
    fl_queue_remove(&c->wait_link);
    if (c->admitted) {
        c->admitted = false;
        srv->nadmitted--;
        peer_release(srv, c);
    }
    if (c->refused) {
        c->refused = false;
        srv->nrefused--;
    }
}

static void server_maybe_done(struct fl_http_server *srv)
{
    if (!srv->stopping || srv->nconns > 0)
        return;
    if (!uv_is_closing((uv_handle_t *)&srv->budget_timer)) {
        uv_close((uv_handle_t *)&srv->budget_timer, server_timer_closed);
        return;
    }
    if (srv->drain_open) {
        srv->drain_open = false;
        uv_close((uv_handle_t *)&srv->drain_timer, server_timer_closed);
        return;
    }
    if (srv->handles_open > 0)
        return;
    void (*done)(void *) = srv->done;
    void *data = srv->done_data;
    while (srv->retired != NULL) {
        struct listener *l = srv->retired;
        srv->retired = l->next;
        free(l);
    }
    free(srv);
    if (done != NULL)
        done(data);
}

static void conn_handle_closed(uv_handle_t *handle)
{
    struct conn *c = handle->data;
    if (--c->handles_open > 0)
        return;
    struct fl_http_server *srv = c->srv;
    /* Requests the handler holds become orphans; the rest go now. */
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &c->queue)
    {
        struct request *r = REQ_OF(q);
        fl_queue_remove(q);
        if (r->state == REQ_DISPATCHED || r->state == REQ_STREAMING) {
            r->conn = NULL;
            r->aborted = true;
            if (r->abort_cb != NULL)
                r->abort_cb(&r->pub, r->abort_data);
        } else {
            request_free(r);
        }
    }
    fl_buf_release(&c->pending);
    FL_QUEUE_FOREACH(q, tmp, &c->spare)
    {
        fl_queue_remove(q);
        request_free(REQ_OF(q));
    }
    fl_queue_remove(&c->node);
    srv->nconns--;
    free(c);
    server_maybe_done(srv);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->reading = false;
    conn_release(c);
    uv_close(&c->h.handle, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void on_linger_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    free(req);
}

/* The last response is out: shut down the write side and drain input
 * briefly before closing, so the client reads the answer, not a reset. */
static void conn_linger(struct conn *c)
{
    if (c->lingering || c->closing)
        return;
    c->lingering = true;
    c->stop_parsing = true;
    conn_idle_update(c);
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (req == NULL || uv_shutdown(req, &c->h.stream, on_shutdown) != 0) {
        free(req);
        conn_close(c);
        return;
    }
    c->armed_deadline = 0;
    uv_timer_start(&c->timer, on_linger_timeout, LINGER_MS, 0);
    conn_resume_reading(c);
}

/* The client is gone or broke the protocol beyond answering. */
static void conn_abort(struct conn *c)
{
    conn_close(c);
}

static void on_timeout(uv_timer_t *t);

/* Set the deadline of the current phase (0: none). The libuv timer is
 * only moved when the deadline comes earlier than it is armed for; when it
 * fires early, on_timeout() re-arms it for the rest. This keeps timer-heap
 * work off the per-request path. */
static void conn_set_timer(struct conn *c, uint64_t ms)
{
    if (c->closing || c->lingering)
        return;
    if (ms == 0) {
        c->deadline = 0;
        return;
    }
    uint64_t now = uv_now(c->srv->loop);
    c->deadline = now + ms;
    if (c->armed_deadline == 0 || c->armed_deadline > c->deadline) {
        uv_timer_start(&c->timer, on_timeout, ms, 0);
        c->armed_deadline = c->deadline;
    }
}

/* After progress: pick the timer that applies now. */
static void conn_update_timer(struct conn *c)
{
    struct request *t = conn_last(c);
    conn_idle_update(c);
    if (c->closing || c->lingering)
        return;
    /* A request has begun (its first byte was parsed): the header or body
     * timer the parser set runs on, however slowly its bytes come. */
    if (t != NULL && t->state == REQ_PARSING)
        return;
    if (c->nqueue == 0)
        conn_set_timer(c, c->srv->cfg.idle_timeout_ms);
    else
        conn_set_timer(c, 0); /* handlers are working; they have their own timeouts */
}

/* ---- writing ---- */

struct write_req {
    uv_write_t req;
    struct conn *conn;
    char *data; /* what is written: inline below, or a detached buffer */
    char inline_data[];
};

#define INLINE_WRITE_MAX (16 * 1024)

static void on_write(uv_write_t *w, int status)
{
    struct write_req *wr = (struct write_req *)w;
    struct conn *c = wr->conn;
    if (wr->data != wr->inline_data)
        free(wr->data);
    free(wr);
    c->writes_pending--;
    if (c->closing)
        return;
    if (status < 0) {
        conn_abort(c);
        return;
    }
    conn_account(c);
    if (c->closing)
        return;
    conn_idle_update(c);
    if (c->writes_pending == 0 && c->stop_parsing && fl_queue_empty(&c->queue)) {
        conn_linger(c);
        return;
    }
    if (!c->reading && !c->stop_parsing)
        conn_resume_reading(c);
}

/* Hand out's bytes to the socket: small outputs are copied (out keeps its
 * memory for the next response), large ones handed over. 0 or a negative
 * error (the connection is aborted). */
static int conn_write(struct conn *c, struct fl_buf *out)
{
    if (out->len == 0)
        return 0;
    if (c->writes_pending == 0) {
        /* Most answers fit the socket buffer: write them now, which spares
         * a write request and libuv's re-arming of the epoll watcher. */
        uv_buf_t now = uv_buf_init(out->data, (unsigned)out->len);
        int n = uv_try_write(&c->h.stream, &now, 1);
        if (n == (int)out->len) {
            fl_buf_reset(out);
            return 0;
        }
        if (n > 0) {
            fl_buf_consume(out, (size_t)n);
        } else if (n != UV_EAGAIN) {
            conn_abort(c);
            return n;
        }
    }
    size_t len = out->len;
    bool copy = len <= INLINE_WRITE_MAX;
    struct write_req *wr = malloc(sizeof(*wr) + (copy ? len : 0));
    if (wr == NULL) {
        conn_abort(c);
        return FL_ENOMEM;
    }
    wr->conn = c;
    if (copy) {
        memcpy(wr->inline_data, out->data, len);
        wr->data = wr->inline_data;
        fl_buf_reset(out);
    } else {
        wr->data = fl_buf_detach(out, &len);
    }
    uv_buf_t buf = uv_buf_init(wr->data, (unsigned)len);
    int rc = uv_write(&wr->req, &c->h.stream, &buf, 1, on_write);
    if (rc < 0) {
        if (wr->data != wr->inline_data)
            free(wr->data);
        free(wr);
        conn_abort(c);
        return rc;
    }
    c->writes_pending++;
    return 0;
}

/* Hand a run of answers to the socket: with nothing queued yet, one
 * writev for all of them (pipelined answers of one read leave in one
 * system call), then whatever is left is queued in order. */
#define FLUSH_MAX 64

static int conn_write_run(struct conn *c, struct request **run, size_t n)
{
    if (n > 1 && c->writes_pending == 0) {
        uv_buf_t bufs[FLUSH_MAX];
        for (size_t i = 0; i < n; i++)
            bufs[i] = uv_buf_init(run[i]->out.data, (unsigned)run[i]->out.len);
        int w = uv_try_write(&c->h.stream, bufs, (unsigned)n);
        if (w < 0 && w != UV_EAGAIN) {
            conn_abort(c);
            return w;
        }
        for (size_t i = 0, left = w > 0 ? (size_t)w : 0; i < n && left > 0; i++) {
            size_t take = left < run[i]->out.len ? left : run[i]->out.len;
            fl_buf_consume(&run[i]->out, take);
            left -= take;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (conn_write(c, &run[i]->out) < 0)
            return FL_ECANCELED;
    return 0;
}

/* Write what the head of the queue has ready, in order. */
static void conn_flush_queue(struct conn *c)
{
    while (!fl_queue_empty(&c->queue) && !c->closing) {
        struct request *run[FLUSH_MAX];
        size_t n = 0;
        for (struct request *r = conn_first(c); r != NULL && n < FLUSH_MAX; r = conn_next(c, r)) {
            if (r->state != REQ_FINISHED && r->state != REQ_STREAMING)
                break;
            run[n++] = r;
            if (r->state == REQ_STREAMING || r->close_after)
                break;
        }
        if (n == 0)
            break;
        if (conn_write_run(c, run, n) < 0)
            return;
        for (size_t i = 0; i < n; i++) {
            struct request *r = run[i];
            if (r->state == REQ_STREAMING)
                goto done;
            /* finished and handed over: it leaves the queue */
            fl_queue_remove(&r->node);
            c->nqueue--;
            bool close_after = r->close_after;
            request_done(c, r);
            if (close_after) {
                c->stop_parsing = true;
                /* Nothing after a closing response is answered. */
                struct request *next;
                while ((next = conn_first(c)) != NULL && next->state != REQ_DISPATCHED &&
                       next->state != REQ_STREAMING) {
                    fl_queue_remove(&next->node);
                    request_free(next);
                    c->nqueue--;
                }
                if (c->writes_pending == 0 && fl_queue_empty(&c->queue))
                    conn_linger(c);
                return;
            }
        }
    }
done:
    if (c->closing)
        return;
    if (fl_queue_empty(&c->queue) && c->stop_parsing && c->writes_pending == 0) {
        conn_linger(c);
        return;
    }
    if (!c->reading && !c->stop_parsing)
        conn_resume_reading(c);
    conn_update_timer(c);
}

static void conn_flush(struct conn *c)
{
    conn_flush_queue(c);
    /* a pipelined request that waited for the budget is now the next to
     * answer: it may go (never from inside the parser) */
    if (!c->closing && !c->dispatching && !c->parsing && !fl_queue_empty(&c->queue) &&
        conn_first(c)->state == REQ_COMPLETE)
        conn_dispatch(c);
    conn_account(c);
}

static const char *date_header(struct fl_http_server *srv)
{
    time_t now = time(NULL);
    if (now != srv->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        srv->date_len =
            strftime(srv->date, sizeof(srv->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        srv->date_sec = now;
    }
    return srv->date;
}

/* body_len LENGTH_UNKNOWN: a HEAD answer to be streamed, whose length is
 * only known if the handler says it. */
#define LENGTH_UNKNOWN SIZE_MAX

/* Serialize the status line and headers into r->out. */
static int write_head(struct request *r, struct fl_http_server *srv, int status,
                      const struct fl_http_header *headers, size_t nheaders, bool chunked,
                      size_t body_len)
{
    const struct fl_http_header *length = NULL; /* one the handler gave */
    struct fl_buf *out = &r->out;
    size_t estimate = 128 + (body_len == LENGTH_UNKNOWN ? 0 : body_len);
    for (size_t i = 0; i < nheaders; i++)
        estimate += headers[i].name_len + headers[i].value_len + 4;
    int rc = fl_buf_grow(out, estimate);
    if (rc < 0)
        return rc;
    if (r->conn != NULL && (r->conn->srv->stopping || !r->pub.keep_alive))
        r->close_after = true;
    if (status == 200)
        rc = fl_buf_append(out, "HTTP/1.1 200 OK\r\n", 17);
    else
        rc = fl_buf_appendf(out, "HTTP/1.1 %d %s\r\n", status, fl_http_status_text(status));
    const char *date = date_header(srv); /* before reading date_len */
    if (rc == 0)
        rc = fl_buf_append(out, date, srv->date_len);
    for (size_t i = 0; i < nheaders && rc == 0; i++) {
        const struct fl_http_header *h = &headers[i];
        /* A header with a line break would split the response: refuse. */
        if (memchr(h->name, '\n', h->name_len) || memchr(h->value, '\n', h->value_len) ||
            memchr(h->name, '\r', h->name_len) || memchr(h->value, '\r', h->value_len))
            return FL_EINVAL;
        if (fl_str_ieq(h->name, h->name_len, "content-length")) {
            length = h; /* the body decides, but for HEAD (below) */
            continue;
        }
        if (fl_str_ieq(h->name, h->name_len, "date"))
            continue; /* the server's, written above: one per answer */
        rc = fl_buf_append(out, h->name, h->name_len);
        rc = rc ? rc : fl_buf_append(out, ": ", 2);
        rc = rc ? rc : fl_buf_append(out, h->value, h->value_len);
        rc = rc ? rc : fl_buf_append(out, "\r\n", 2);
    }
    bool has_body = status != 204 && status != 304 && status >= 200;
    if (rc == 0 && chunked) {
        rc = fl_buf_appends(out, "Transfer-Encoding: chunked\r\n");
    } else if (rc == 0 && has_body && r->is_head && length != NULL) {
        /* the length a GET would have had, as a proxied handler knows it */
        rc = fl_buf_append(out, "Content-Length: ", 16);
        rc = rc ? rc : fl_buf_append(out, length->value, length->value_len);
        rc = rc ? rc : fl_buf_append(out, "\r\n", 2);
    } else if (rc == 0 && has_body && body_len != LENGTH_UNKNOWN) {
        rc = fl_http_append_content_length(out, body_len);
    }
    if (rc == 0 && r->close_after)
        rc = fl_buf_appends(out, "Connection: close\r\n");
    else if (rc == 0 && r->pub.http_minor == 0)
        rc = fl_buf_appends(out, "Connection: keep-alive\r\n");
    if (rc == 0)
        rc = fl_buf_append(out, "\r\n", 2);
    return rc;
}

static void request_finished(struct request *r)
{
    r->state = REQ_FINISHED;
    struct conn *c = r->conn;
    if (c != NULL && !c->dispatching)
        conn_flush(c);
}

int fl_http_respond(struct fl_http_request *req, int status, const struct fl_http_header *headers,
                    size_t nheaders, const void *body, size_t body_len)
{
    struct request *r = (struct request *)req;
    if (r->conn == NULL) {
        request_free(r);
        return FL_ECANCELED;
    }
    struct fl_http_server *srv = r->conn->srv;
    fl_buf_reset(&r->out);
    int rc = write_head(r, srv, status, headers, nheaders, false, body_len);
    if (rc == 0 && !r->is_head && body_len > 0)
        rc = fl_buf_append(&r->out, body, body_len);
    if (rc < 0) {
        static const char fallback[] = "{\"error\":{\"code\":\"internal\","
                                       "\"message\":\"cannot build the response\"}}";
        FL_LOG_LIMITED(FL_LOG_ERROR, "http", "cannot build a response", "status=%d err=%s", status,
                       fl_strerror(rc));
        fl_buf_reset(&r->out);
        struct fl_http_header ct = {"Content-Type", 12, "application/json", 16};
        r->close_after = true;
        if (write_head(r, srv, 500, &ct, 1, false, sizeof(fallback) - 1) == 0 && !r->is_head)
            fl_buf_append(&r->out, fallback, sizeof(fallback) - 1);
    }
    request_finished(r);
    return rc == FL_EINVAL ? FL_EINVAL : rc < 0 ? FL_ENOMEM : 0;
}

static int append_json_string(struct fl_buf *b, const char *s)
{
    int rc = fl_buf_appendc(b, '"');
    for (; *s != '\0' && rc == 0; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rc = fl_buf_appendc(b, '\\') ? FL_ENOMEM : fl_buf_appendc(b, (char)c);
        else if (c < 0x20)
            rc = fl_buf_appendf(b, "\\u%04x", c);
        else
            rc = fl_buf_appendc(b, (char)c);
    }
    return rc ? rc : fl_buf_appendc(b, '"');
}

int fl_http_respond_error(struct fl_http_request *req, int status, const char *code,
                          const char *fmt, ...)
{
    char message[1024];
    struct fl_buf body;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    fl_buf_init(&body, 4096);
    fl_buf_appends(&body, "{\"error\":{\"code\":");
    append_json_string(&body, code);
    fl_buf_appends(&body, ",\"message\":");
    append_json_string(&body, message);
    fl_buf_appends(&body, "}}");
    struct fl_http_header ct = {"Content-Type", 12, "application/json", 16};
    int rc = fl_http_respond(req, status, &ct, 1, body.data, body.len);
    fl_buf_release(&body);
    return rc;
}

int fl_http_stream_begin(struct fl_http_request *req, int status,
                         const struct fl_http_header *headers, size_t nheaders)
{
    struct request *r = (struct request *)req;
    if (r->conn == NULL)
        return FL_ECANCELED;
    int rc = write_head(r, r->conn->srv, status, headers, nheaders, !r->is_head,
                        r->is_head ? LENGTH_UNKNOWN : 0);
    if (rc < 0)
        return rc;
    r->state = REQ_STREAMING;
    if (!r->conn->dispatching)
        conn_flush(r->conn);
    return 0;
}

int fl_http_stream_write(struct fl_http_request *req, const void *data, size_t len)
{
    struct request *r = (struct request *)req;
    if (r->conn == NULL)
        return FL_ECANCELED;
    if (len == 0 || r->is_head)
        return 0;
    size_t queued = r->out.len + uv_stream_get_write_queue_size(&r->conn->h.stream);
    if (queued + len > FL_HTTP_STREAM_MAX_BUFFERED)
        return FL_EAGAIN;
    int rc = fl_buf_appendf(&r->out, "%zx\r\n", len);
    if (rc == 0)
        rc = fl_buf_append(&r->out, data, len);
    if (rc == 0)
        rc = fl_buf_append(&r->out, "\r\n", 2);
    if (rc < 0)
        return rc;
    if (conn_first(r->conn) == r && !r->conn->dispatching)
        conn_flush(r->conn);
    else
        conn_account(r->conn);
    return 0;
}

int fl_http_stream_end(struct fl_http_request *req)
{
    struct request *r = (struct request *)req;
    if (r->conn == NULL) {
        request_free(r);
        return FL_ECANCELED;
    }
    if (!r->is_head && fl_buf_append(&r->out, "0\r\n\r\n", 5) < 0)
        r->close_after = true; /* the client sees a cut stream, never a wrong one */
    request_finished(r);
    return 0;
}

/* The server answers the request being parsed itself (limits, bad input),
 * then stops reading this connection. */
static void answer_parse_error(struct conn *c, int status, const char *code, const char *message)
{
    struct request *r = conn_last(c);
    if (r == NULL || r->state != REQ_PARSING) {
        r = request_new(c);
        if (r == NULL) {
            conn_abort(c);
            return;
        }
        conn_push(c, r);
    }
    c->stop_parsing = true;
    r->error = true;
    r->pub.keep_alive = false;
    r->close_after = true;
    r->is_head = false;
    r->state = REQ_DISPATCHED;
    FL_LOG_LIMITED(FL_LOG_DEBUG, "http", "refused a request", "status=%d remote=%s reason=%s",
                   status, c->remote, code);
    bool was = c->dispatching;
    c->dispatching = true; /* flush below, after the state is consistent */
    fl_http_respond_error(&r->pub, status, code, "%s", message);
    c->dispatching = was;
    if (!was)
        conn_flush(c);
}

static void on_timeout(uv_timer_t *t)
{
    struct conn *c = t->data;
    struct request *r = conn_last(c);
    uint64_t now = uv_now(c->srv->loop);
    c->armed_deadline = 0;
    if (c->deadline == 0)
        return; /* the phase that set it is over */
    if (now < c->deadline) {
        uv_timer_start(&c->timer, on_timeout, c->deadline - now, 0);
        c->armed_deadline = c->deadline;
        return;
    }
    if (r != NULL && r->state == REQ_PARSING) {
        answer_parse_error(c, 408, "timeout",
                           r->headers_done ? "the request body did not arrive in time"
                                           : "the request headers did not arrive in time");
        return;
    }
    conn_close(c); /* idle keep-alive connection */
}

/* ---- parsing ---- */

static struct conn *parser_conn(http_parser *p)
{
    return p->data;
}

static int header_limit(struct conn *c, struct request *r, size_t more)
{
    r->header_bytes += more;
    if (r->header_bytes > c->srv->cfg.max_header_bytes) {
        answer_parse_error(c, 431, "headers_too_large", "the request headers are too large");
        return -1;
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = parser_conn(p);
    struct request *r = request_new(c);
    if (r == NULL)
        return -1;
    conn_push(c, r);
    fl_queue_remove(&c->idle_link); /* busy from its first byte */
    conn_set_timer(c, c->srv->cfg.header_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = parser_conn(p);
    struct request *r = conn_last(c);
    if (header_limit(c, r, len) < 0)
        return -1;
    if (r->store.cap == 0 && fl_buf_grow(&r->store, 1024) < 0)
        return -1;
    return fl_buf_append(&r->store, at, len) == 0 ? 0 : -1;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = parser_conn(p);
    struct request *r = conn_last(c);
    if (header_limit(c, r, len) < 0)
        return -1;
    /* http-parser takes "Transfer-Encoding : chunked" as a header named
     * "Transfer-Encoding ": a proxy behind us may read it as the framing */
    if (len > 0 && !fl_str_is_token(at, len)) {
        answer_parse_error(c, 400, "bad_request",
                           "malformed request: a header name is not a token");
        return -1;
    }
    if (r->headers_done)
        return 0; /* a trailer: counted, not kept */
    int rc = fl_http_fields_add_name(&r->fields, &r->store, at, len, c->srv->cfg.max_headers);
    if (rc == FL_ERANGE) {
        answer_parse_error(c, 431, "too_many_headers", "the request has too many headers");
        return -1;
    }
    return rc == 0 ? 0 : -1;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = parser_conn(p);
    struct request *r = conn_last(c);
    if (header_limit(c, r, len) < 0)
        return -1;
    /* http-parser lets a control character through as a value's first byte */
    if (fl_str_has_ctl(at, len)) {
        answer_parse_error(c, 400, "bad_request",
                           "malformed request: a header value holds a control character");
        return -1;
    }
    if (r->headers_done)
        return 0;
    return fl_http_fields_add_value(&r->fields, &r->store, at, len) == 0 ? 0 : -1;
}

/* Where the origin form starts in an absolute-form target
 * ("http://host:80/x?y" -> "/x?y", RFC 9112 3.2.2); 0 for any other form. */
static size_t origin_start(const char *t, size_t len)
{
    size_t i = len >= 7 && fl_str_ieq(t, 7, "http://")    ? 7
               : len >= 8 && fl_str_ieq(t, 8, "https://") ? 8
                                                          : 0;
    while (i > 0 && i < len && t[i] != '/' && t[i] != '?')
        i++;
    return i;
}

/* Point the public fields into the store, now that it stops growing. */
static int finish_headers(struct conn *c, struct request *r)
{
    /* The store holds: target \0 [name \0 value \0]... ; add path \0 query \0,
     * and for an absolute-form target, its origin form \0 first. */
    size_t nheaders = r->fields.n;
    size_t target_len = nheaders ? r->fields.index[0].name_off - 1 : r->store.len;
    if (fl_buf_appendc(&r->store, '\0') < 0)
        return -1;
    size_t target_off = 0, start = origin_start(r->store.data, target_len);
    /* Grow once first: the copies below read from the store itself. */
    if (fl_buf_grow(&r->store, (start > 0 ? 2 * target_len + 2 : target_len) + 2) < 0)
        return -1;
    if (start > 0) {
        target_off = r->store.len;
        if (start == target_len || r->store.data[start] != '/')
            fl_buf_appendc(&r->store, '/'); /* "http://host" and "http://host?q" mean "/" */
        fl_buf_append(&r->store, r->store.data + start, target_len - start);
        target_len = r->store.len - target_off;
        fl_buf_appendc(&r->store, '\0');
    }
    const char *t = r->store.data + target_off;
    size_t path_off = r->store.len;
    const char *q = memchr(t, '?', target_len);
    size_t path_len = q ? (size_t)(q - t) : target_len;
    size_t query_len = q ? target_len - path_len - 1 : 0;
    size_t query_src = target_off + (q ? path_len + 1 : 0);
    fl_buf_append(&r->store, t, path_len);
    fl_buf_appendc(&r->store, '\0');
    size_t query_off = r->store.len;
    fl_buf_append(&r->store, r->store.data + query_src, query_len);
    fl_buf_appendc(&r->store, '\0');
    if (nheaders > r->headers_cap) {
        struct fl_http_header *h = realloc(r->headers, r->fields.cap * sizeof(*h));
        if (h == NULL)
            return -1;
        r->headers = h;
        r->headers_cap = r->fields.cap;
    }
    const char *base = r->store.data;
    if (target_off == 0)
        r->store.data[target_len] = '\0';
    fl_http_fields_expose(&r->fields, base, r->headers);
    r->pub.target = base + target_off;
    r->pub.target_len = target_len;
    r->pub.path = base + path_off;
    r->pub.path_len = path_len;
    r->pub.query = base + query_off;
    r->pub.query_len = query_len;
    r->pub.headers = r->headers;
    r->pub.nheaders = nheaders;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = parser_conn(p);
    struct request *r = conn_last(c);
    if (finish_headers(c, r) < 0)
        return -1;
    r->headers_done = true;
    r->pub.method = http_method_str((enum http_method)p->method);
    r->pub.http_major = p->http_major;
    r->pub.http_minor = p->http_minor;
    r->pub.keep_alive = http_should_keep_alive(p) != 0;
    r->is_head = p->method == HTTP_HEAD;
    if (p->http_major != 1) {
        answer_parse_error(c, 505, "http_version", "only HTTP/1.0 and HTTP/1.1 are supported");
        return -1;
    }
    if (r->pub.target_len == 0) {
        answer_parse_error(c, 400, "bad_request", "the request has no target");
        return -1;
    }
    if (p->upgrade) {
        answer_parse_error(c, 501, "not_implemented", "protocol upgrades are not supported");
        return -1;
    }
    bool has_length = (p->flags & F_CHUNKED) == 0 && p->content_length != ULLONG_MAX;
    if (has_length && p->content_length > c->srv->cfg.max_body_bytes) {
        char message[128];
        snprintf(message, sizeof(message), "the request body is larger than %zu bytes",
                 c->srv->cfg.max_body_bytes);
        answer_parse_error(c, 413, "body_too_large", message);
        return -1;
    }
    if (c->srv->cfg.on_headers != NULL) {
        const char *code = "refused", *message = "the request was refused";
        int status = c->srv->cfg.on_headers(&r->pub, c->srv->data, &code, &message);
        if (status != 0) {
            answer_parse_error(c, status >= 400 && status <= 599 ? status : 500, code, message);
            return -1;
        }
    }
    if (budget_refuses(c->srv, has_length ? p->content_length : 0)) {
        answer_parse_error(c, 503, "overloaded",
                           "the server holds too many bytes in flight; try again later");
        return -1;
    }
    size_t len;
    const char *expect = fl_http_request_header(&r->pub, "expect", &len);
    if (expect != NULL && fl_str_ieq(expect, len, "100-continue") && r->pub.http_minor >= 1 &&
        conn_first(c) == r) {
        struct fl_buf cont;
        fl_buf_init(&cont, 64);
        fl_buf_appends(&cont, "HTTP/1.1 100 Continue\r\n\r\n");
        if (conn_write(c, &cont) < 0) {
            fl_buf_release(&cont);
            return -1;
        }
        fl_buf_release(&cont);
    }
    conn_set_timer(c, c->srv->cfg.body_timeout_ms);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = parser_conn(p);
    struct request *r = conn_last(c);
    if (fl_buf_append(&r->body, at, len) < 0) {
        char message[128];
        snprintf(message, sizeof(message), "the request body is larger than %zu bytes",
                 c->srv->cfg.max_body_bytes);
        answer_parse_error(c, 413, "body_too_large", message);
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = parser_conn(p);
    struct request *r = conn_last(c);
    r->pub.body = r->body.data ? r->body.data : "";
    r->pub.body_len = r->body.len;
    r->state = REQ_COMPLETE;
    if (!r->pub.keep_alive) {
        /* nothing after this request is read */
        c->stop_parsing = true;
        http_parser_pause(p, 1);
    } else if (c->nqueue >= c->srv->cfg.max_pipeline) {
        http_parser_pause(p, 1);
    }
    return 0;
}

static void conn_parse(struct conn *c, const char *data, size_t len)
{
    if (c->stop_parsing || c->closing)
        return;
    c->parsing = true;
    size_t done = http_parser_execute(&c->parser, &c->srv->settings, data, len);
    c->parsing = false;
    enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
    if (c->closing)
        return;
    bool from_pending = c->pending.len > 0 && data == c->pending.data;
    if (err == HPE_PAUSED) {
        /* Keep what is left for when the queue drains (unless nothing
         * more is to be read from this connection). */
        if (from_pending)
            fl_buf_consume(&c->pending, c->stop_parsing ? len : done);
        else if (!c->stop_parsing && done < len &&
                 fl_buf_append(&c->pending, data + done, len - done) < 0) {
            conn_abort(c);
            return;
        }
        if (c->reading) {
            uv_read_stop(&c->h.stream);
            c->reading = false;
        }
        return;
    }
    if (from_pending)
        fl_buf_reset(&c->pending);
    if (err != HPE_OK && !c->stop_parsing) {
        if (err == HPE_CB_message_begin || err == HPE_CB_url || err == HPE_CB_header_field ||
            err == HPE_CB_header_value || err == HPE_CB_headers_complete || err == HPE_CB_body) {
            /* a callback failed without answering: out of memory */
            answer_parse_error(c, 500, "internal", "out of memory");
        } else {
            char message[200];
            snprintf(message, sizeof(message), "malformed request: %s",
                     http_errno_description(err));
            answer_parse_error(c, 400, "bad_request", message);
        }
    }
}

static void conn_dispatch(struct conn *c)
{
    if (c->dispatching)
        return;
    c->dispatching = true;
    /* the handler may answer at once, never take a request off the queue
     * while dispatching (conn_flush waits): the walk reads on after it */
    for (struct request *r = conn_first(c); r != NULL && !c->closing; r = conn_next(c, r)) {
        if (r->state != REQ_COMPLETE)
            continue;
        if (r != conn_first(c) && budget_over(c->srv)) {
            conn_wait(c); /* its answer would have to be held: not now */
            break;
        }
        r->state = REQ_DISPATCHED;
        c->srv->handler(&r->pub, c->srv->data);
    }
    c->dispatching = false;
    if (!c->closing)
        conn_flush(c);
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = handle->data;
    struct fl_http_server *srv = c->srv;
    if (srv->read_buffer_busy) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    srv->read_buffer_busy = true;
    buf->base = srv->read_buffer;
    buf->len = sizeof(srv->read_buffer);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    if (buf->base == c->srv->read_buffer)
        c->srv->read_buffer_busy = false;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        if (c->lingering) {
            conn_close(c);
            return;
        }
        /* EOF or an error: the client is gone. Like nginx's default for
         * proxied requests, work in flight for it is abandoned (handlers
         * are told through their abort callback), so that a client that
         * hangs up never holds an instance slot. */
        conn_abort(c);
        return;
    }
    if (c->lingering)
        return; /* drain and discard */
    /* The server's read buffer is reused by the next read: whatever the
     * parser leaves unparsed is copied into c->pending by conn_parse(). */
    conn_parse(c, buf->base, (size_t)nread);
    conn_dispatch(c);
    if (c->closing || c->lingering)
        return;
    conn_account(c);
    if (!c->closing && c->reading &&
        (uv_stream_get_write_queue_size(&c->h.stream) > MAX_WRITE_QUEUED || conn_must_wait(c))) {
        uv_read_stop(&c->h.stream);
        c->reading = false;
    }
}

static void conn_resume_reading(struct conn *c)
{
    if (c->closing || c->reading)
        return;
    if (!c->lingering) {
        if (c->stop_parsing)
            return;
        if (c->nqueue >= c->srv->cfg.max_pipeline)
            return;
        if (uv_stream_get_write_queue_size(&c->h.stream) > MAX_WRITE_QUEUED)
            return;
        if (conn_must_wait(c))
            return;
        if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            if (c->pending.len > 0) {
                conn_parse(c, c->pending.data, c->pending.len);
                conn_dispatch(c);
                /* Answers written in there may have resumed reading
                 * already, from a nested call: starting twice fails. */
                if (c->closing || c->reading || c->stop_parsing ||
                    HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED)
                    return;
            }
        }
    }
    if (uv_read_start(&c->h.stream, alloc_cb, read_cb) == 0)
        c->reading = true;
    else
        conn_abort(c);
}

/* ---- accepting ---- */

static void format_peer(struct conn *c, bool is_unix)
{
    if (is_unix) {
        fl_strlcpy(c->remote, "unix", sizeof(c->remote));
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            uv_ip4_name(sin, host, sizeof(host));
            port = ntohs(sin->sin_port);
            memcpy(c->peer_key, &sin->sin_addr, 4);
            c->peer_len = 4;
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(sin6, host, sizeof(host));
            port = ntohs(sin6->sin6_port);
            /* an IPv4 client over IPv6 is its IPv4 address; any other is
             * its /64, which one host usually has whole */
            const unsigned char *a = sin6->sin6_addr.s6_addr;
            bool mapped = IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr);
            c->peer_len = mapped ? 4 : 8;
            memcpy(c->peer_key, mapped ? a + 12 : a, c->peer_len);
        }
    }
    snprintf(c->remote, sizeof(c->remote), "%s:%d", host, port);
}

static struct conn *conn_new(struct fl_http_server *srv, const char *listener)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->srv = srv;
    c->listener = listener;
    c->h.handle.data = c;
    c->timer.data = c;
    c->parser.data = c;
    fl_queue_init(&c->idle_link);
    fl_queue_init(&c->wait_link);
    fl_queue_init(&c->queue);
    fl_queue_init(&c->spare);
    fl_buf_init(&c->pending, READ_BUFFER_SIZE * 2);
    http_parser_init(&c->parser, HTTP_REQUEST);
    return c;
}

/* Admit c, closing the connection idle longest if the server is full.
 * NULL, or why c cannot be served. */
static const char *conn_admit(struct fl_http_server *srv, struct conn *c)
{
    if (srv->stopping)
        return "the server is stopping";
    bool counted = srv->cfg.max_connections_per_address > 0 && c->peer_len > 0;
    if (counted) {
        const struct peer *p = peer_find(srv, c);
        if (p != NULL && p->conns >= srv->cfg.max_connections_per_address)
            return "too many connections from this address";
    }
    if (srv->nadmitted >= srv->cfg.max_connections) {
        if (fl_queue_empty(&srv->idle))
            return "the server has too many connections";
        struct conn *oldest = CONN_OF(srv->idle.next, idle_link);
        FL_LOG_LIMITED(FL_LOG_DEBUG, "http", "closed an idle connection to make room",
                       "remote=%s for=%s", oldest->remote, c->remote);
        conn_close(oldest);
    }
    if (counted && peer_add(srv, c) < 0)
        return "the server is out of memory";
    srv->nadmitted++;
    c->admitted = true;
    return NULL;
}

static void conn_start(struct fl_http_server *srv, struct conn *c)
{
    uv_timer_init(srv->loop, &c->timer);
    c->handles_open = 2;
    fl_queue_insert_head(&srv->conns, &c->node);
    srv->nconns++;
    const char *refusal = conn_admit(srv, c);
    if (refusal != NULL) {
        /* Answer 503 and close: a request that never comes is fine too.
         * As many may be answered at once as may be served; past that,
         * they are closed without a word. */
        struct request *r = srv->nrefused < srv->cfg.max_connections ? request_new(c) : NULL;
        if (r == NULL) {
            conn_close(c);
            return;
        }
        c->refused = true;
        srv->nrefused++;
        conn_push(c, r);
        c->stop_parsing = true;
        r->state = REQ_DISPATCHED;
        r->close_after = true;
        FL_LOG_LIMITED(FL_LOG_WARN, "http", "refused a connection", "remote=%s reason=\"%s\"",
                       c->remote, refusal);
        fl_http_respond_error(&r->pub, 503, "too_many_connections", "%s; try again later", refusal);
        return;
    }
    conn_set_timer(c, srv->cfg.idle_timeout_ms);
    conn_idle_update(c); /* nothing sent yet: the first to go if room is needed */
    conn_resume_reading(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    struct fl_http_server *srv = l->srv;
    if (status < 0) {
        FL_LOG_LIMITED(FL_LOG_WARN, "http", "accept failed", "listener=%s err=%s", l->addr,
                       uv_strerror(status));
        return;
    }
    struct conn *c = conn_new(srv, l->addr);
    if (c == NULL)
        return;
    bool is_unix = l->unix_path[0] != '\0';
    int rc = is_unix ? uv_pipe_init(srv->loop, &c->h.pipe, 0) : uv_tcp_init(srv->loop, &c->h.tcp);
    if (rc == 0)
        rc = uv_accept(server, &c->h.stream);
    if (rc < 0) {
        if (rc == 0 || c->h.handle.type != UV_UNKNOWN_HANDLE) {
            c->handles_open = 1;
            c->closing = true;
            uv_close(&c->h.handle, (uv_close_cb)free);
        } else {
            free(c);
        }
        return;
    }
    if (!is_unix)
        uv_tcp_nodelay(&c->h.tcp, 1);
    format_peer(c, is_unix);
    conn_start(srv, c);
}

int fl_http_server_adopt(struct fl_http_server *srv, int fd)
{
    struct conn *c = conn_new(srv, "adopted");
    if (c == NULL)
        return FL_ENOMEM;
    int rc = uv_pipe_init(srv->loop, &c->h.pipe, 0);
    if (rc < 0) {
        free(c);
        return rc;
    }
    rc = uv_pipe_open(&c->h.pipe, fd);
    if (rc < 0) {
        c->handles_open = 1;
        c->closing = true;
        uv_close(&c->h.handle, (uv_close_cb)free);
        return rc;
    }
    fl_strlcpy(c->remote, "adopted", sizeof(c->remote));
    conn_start(srv, c);
    return 0;
}

int fl_http_server_new(uv_loop_t *loop, const struct fl_http_server_config *cfg,
                       fl_http_handler handler, void *data, struct fl_http_server **out)
{
    struct fl_http_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return FL_ENOMEM;
    srv->loop = loop;
    if (cfg != NULL)
        srv->cfg = *cfg;
    else
        fl_http_server_config_init(&srv->cfg);
    if (srv->cfg.max_headers > MAX_HEADERS_LIMIT)
        srv->cfg.max_headers = MAX_HEADERS_LIMIT;
    if (srv->cfg.max_pipeline == 0)
        srv->cfg.max_pipeline = 1;
    if (srv->cfg.budget_percent == 0)
        srv->cfg.budget_percent = 100;
    if (srv->cfg.budget != NULL) {
        size_t limit = srv->cfg.budget->limit, pct = srv->cfg.budget_percent;
        srv->budget_max = limit / 100 * pct + limit % 100 * pct / 100;
    }
    fl_queue_init(&srv->idle);
    fl_queue_init(&srv->waiting);
    fl_queue_init(&srv->conns);
    if (fl_random_bytes(&srv->peer_seed, sizeof(srv->peer_seed)) < 0)
        srv->peer_seed = (uint64_t)(uintptr_t)srv; /* the table works all the same */
    uv_timer_init(loop, &srv->budget_timer);
    srv->budget_timer.data = srv;
    srv->handles_open++; /* closed once the last connection is */
    srv->handler = handler;
    srv->data = data;
    http_parser_settings_init(&srv->settings);
    srv->settings.on_message_begin = on_message_begin;
    srv->settings.on_url = on_url;
    srv->settings.on_header_field = on_header_field;
    srv->settings.on_header_value = on_header_value;
    srv->settings.on_headers_complete = on_headers_complete;
    srv->settings.on_body = on_body;
    srv->settings.on_message_complete = on_message_complete;
    *out = srv;
    return 0;
}

unsigned fl_http_server_connections(const struct fl_http_server *srv)
{
    return srv->nconns;
}

static void listener_closed(uv_handle_t *h)
{
    struct listener *l = h->data;
    struct fl_http_server *srv = l->srv;
    if (l->unix_path[0] != '\0')
        unlink(l->unix_path);
    if (srv->stopping) {
        l->next = srv->retired;
        srv->retired = l;
    } else {
        free(l); /* a listener that never listened */
    }
    srv->handles_open--;
    server_maybe_done(srv);
}

int fl_http_server_listen(struct fl_http_server *srv, const char *addr, char *bound,
                          size_t boundsize, char *err, size_t errsize)
{
    struct listener *l = calloc(1, sizeof(*l));
    int rc;
    char scratch[8];
    if (err == NULL) {
        err = scratch;
        errsize = sizeof(scratch);
    }
    if (l == NULL)
        return FL_ENOMEM;
    l->srv = srv;
    l->h.handle.data = l;
    struct fl_http_addr parsed;
    bool is_fd = fl_str_has_prefix(addr, "fd:");
    int parse_rc = is_fd ? 0 : fl_http_addr_parse(addr, FL_HTTP_ADDR_PORT_ZERO, &parsed);
    if (is_fd) {
        /* a listening socket made by whoever started us (flintd, for an
         * instance): kept from the programs this one may start */
        int64_t fd;
        if (fl_parse_i64(addr + 3, 3, INT32_MAX, &fd) < 0 ||
            fcntl((int)fd, F_SETFD, FD_CLOEXEC) != 0) {
            snprintf(err, errsize, "bad listening descriptor in '%s'", addr);
            free(l);
            return FL_EINVAL;
        }
        uv_pipe_init(srv->loop, &l->h.pipe, 0);
        rc = uv_pipe_open(&l->h.pipe, (uv_file)fd);
        fl_strlcpy(l->addr, addr, sizeof(l->addr));
    } else if (fl_str_has_prefix(addr, "unix:")) {
        const char *path = parsed.path;
        if (parse_rc < 0 ||
            fl_strlcpy(l->unix_path, path, sizeof(l->unix_path)) >= sizeof(l->unix_path) - 1) {
            snprintf(err, errsize, "bad unix socket path in '%s'", addr);
            free(l);
            return FL_EINVAL;
        }
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(path); /* stale socket from a previous run */
        uv_pipe_init(srv->loop, &l->h.pipe, 0);
        rc = uv_pipe_bind(&l->h.pipe, path);
        if (rc == 0)
            chmod(path, 0660);
    } else {
        if (parse_rc < 0) {
            snprintf(err, errsize, "bad address '%s': use HOST:PORT, [V6]:PORT or unix:PATH", addr);
            free(l);
            return FL_EINVAL;
        }
        uv_tcp_init(srv->loop, &l->h.tcp);
        rc = uv_tcp_bind(&l->h.tcp, (const struct sockaddr *)&parsed.sa, 0);
    }
    if (rc == 0)
        rc = uv_listen(&l->h.stream, 511, on_connection);
    if (rc < 0) {
        snprintf(err, errsize, "cannot listen on '%s': %s", addr, uv_strerror(rc));
        l->unix_path[0] = '\0'; /* not ours to unlink */
        srv->handles_open++;
        uv_close(&l->h.handle, listener_closed);
        return rc;
    }
    if (l->unix_path[0] != '\0') {
        snprintf(l->addr, sizeof(l->addr), "unix:%s", l->unix_path);
    } else if (fl_str_has_prefix(addr, "fd:")) {
        /* named above */
    } else {
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        char host[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &len);
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            snprintf(l->addr, sizeof(l->addr), "[%s]:%d", host, port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            snprintf(l->addr, sizeof(l->addr), "%s:%d", host, port);
        }
    }
    if (bound != NULL)
        fl_strlcpy(bound, l->addr, boundsize);
    l->next = srv->listeners;
    srv->listeners = l;
    srv->handles_open++;
    return 0;
}

static void server_timer_closed(uv_handle_t *h)
{
    struct fl_http_server *srv = h->data;
    srv->handles_open--;
    server_maybe_done(srv);
}

/* The drain is over: what is still owed to a client is cut, and said so,
 * one line per request (the first few) and a count. */
static void on_drain_timeout(uv_timer_t *t)
{
    struct fl_http_server *srv = t->data;
    static const char *const states[] = {"parsing", "waiting", "running", "streaming", "unsent"};
    unsigned cut = 0;
    struct fl_queue *cq, *ctmp, *q, *tmp;
    FL_QUEUE_FOREACH(cq, ctmp, &srv->conns)
    {
        const struct conn *c = CONN_OF(cq, node);
        FL_QUEUE_FOREACH(q, tmp, &c->queue)
        {
            const struct request *r = REQ_OF(q);
            if (r->state == REQ_PARSING)
                continue;
            if (++cut <= 10)
                fl_log(FL_LOG_WARN, "http", "the drain ended before a request was answered: cut",
                       "listener=%s method=%s path=\"%.200s\" state=%s", c->listener,
                       r->pub.method ? r->pub.method : "?", r->pub.path ? r->pub.path : "",
                       states[r->state]);
        }
    }
    if (cut > 0)
        fl_log(FL_LOG_WARN, "http", "requests cut by the end of the drain", "count=%u", cut);
    FL_QUEUE_FOREACH(cq, ctmp, &srv->conns)
    {
        conn_close(CONN_OF(cq, node));
    }
    server_maybe_done(srv); /* closes the timer once no connection is left */
}

/* Whether a connection has nothing the server owes its client. */
static bool conn_is_idle(const struct conn *c)
{
    if (c->writes_pending > 0)
        return false;
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &c->queue)
    {
        if (REQ_OF(q)->state != REQ_PARSING)
            return false;
    }
    return true;
}

void fl_http_server_close(struct fl_http_server *srv, uint64_t drain_ms, void (*done)(void *data),
                          void *data)
{
    srv->stopping = true;
    srv->done = done;
    srv->done_data = data;
    for (struct listener *l = srv->listeners; l != NULL; l = l->next)
        uv_close(&l->h.handle, listener_closed);
    srv->listeners = NULL;
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &srv->conns)
    {
        struct conn *c = CONN_OF(q, node);
        if (conn_is_idle(c)) {
            conn_close(c);
        } else {
            c->stop_parsing = true;
            if (c->reading) {
                uv_read_stop(&c->h.stream);
                c->reading = false;
            }
        }
    }
    srv->drain_timer.data = srv;
    uv_timer_init(srv->loop, &srv->drain_timer);
    srv->handles_open++;
    srv->drain_open = true;
    uv_timer_start(&srv->drain_timer, on_drain_timeout, drain_ms ? drain_ms : 1, 0);
    server_maybe_done(srv);
}
