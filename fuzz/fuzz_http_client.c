/*
 * libFuzzer target: arbitrary bytes from a server into the HTTP client.
 *
 * Function instances run users' code, so what they answer is untrusted
 * input to the executor's client. Each input is one exchange: its first
 * two bytes choose the calls (how many, which are pipelined, idempotent,
 * streamed, and which one is cancelled after the first loop turn), the
 * rest is what a server on a Unix socket, driven by the same loop, writes
 * on the first connection once requests arrive there, before closing it;
 * later connections are closed at once. The loop then runs until every call's callback has run and
 * the client holds no connection. An exchange that does not settle within a bounded number of loop
 * turns is a hang, and aborts. Run it with `make fuzz`.
 */
#include "http/client.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CALLS_MAX 8
#define TURNS_MAX 10000

static uv_loop_t loop;
static uv_pipe_t listener;
static struct fl_http_client *client;
static char target[128];

static struct exchange {
    const uint8_t *answer;
    size_t answer_len;
    unsigned accepted;
    unsigned open; /* server-side connections not yet closed */
    unsigned pending;
    struct fl_http_call *calls[CALLS_MAX];
    unsigned stop_after; /* a streamed call gives up after this many body pieces */
} ex;

struct peer {
    uv_pipe_t pipe;
    uv_write_t write;
    bool answered;
    char buf[4096];
};

static void peer_closed(uv_handle_t *h)
{
    free(h->data);
    ex.open--;
}

static void peer_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct peer *p = h->data;
    *buf = uv_buf_init(p->buf, sizeof(p->buf));
}

static void peer_written(uv_write_t *w, int status)
{
    struct peer *p = w->data;
    uv_close((uv_handle_t *)&p->pipe, peer_closed);
}

/* The answer goes out once the first requests are in (whatever they say),
 * so that the client reads it rather than failing to write. */
static void peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct peer *p = s->data;
    if (n == 0 || p->answered)
        return;
    uv_read_stop(s);
    if (n < 0) {
        uv_close((uv_handle_t *)&p->pipe, peer_closed);
        return;
    }
    p->answered = true;
    uv_buf_t b = uv_buf_init((char *)ex.answer, (unsigned)ex.answer_len);
    if (uv_write(&p->write, s, &b, 1, peer_written) != 0)
        uv_close((uv_handle_t *)&p->pipe, peer_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct peer *p = calloc(1, sizeof(*p));
    if (p == NULL)
        abort();
    uv_pipe_init(&loop, &p->pipe, 0);
    p->pipe.data = p;
    p->write.data = p;
    ex.open++;
    if (uv_accept(server, (uv_stream_t *)&p->pipe) != 0) {
        uv_close((uv_handle_t *)&p->pipe, peer_closed);
        return;
    }
    if (ex.accepted++ > 0 || ex.answer_len == 0) {
        uv_close((uv_handle_t *)&p->pipe, peer_closed);
        return;
    }
    if (uv_read_start((uv_stream_t *)&p->pipe, peer_alloc, peer_read) != 0)
        uv_close((uv_handle_t *)&p->pipe, peer_closed);
}

static void on_done(int err, const struct fl_http_client_response *resp, void *data)
{
    struct fl_http_call **slot = data;
    if ((err == 0) != (resp != NULL))
        abort(); /* the contract: a response exactly when there is no error */
    if (resp != NULL) {
        if (resp->status < 100 || resp->status > 999)
            abort();
        size_t len = 0;
        const char *v = fl_http_client_header(resp, "content-type", &len);
        if (v != NULL && len > 0 && memchr(v, '\0', len) != NULL)
            abort();
        if (resp->body != NULL && resp->body_len > 0) {
            volatile char last = resp->body[resp->body_len - 1]; /* readable whole */
            (void)last;
        }
    }
    if (*slot == NULL)
        abort(); /* a callback ran twice */
    *slot = NULL;
    ex.pending--;
}

static int on_head(const struct fl_http_client_response *head, void *data)
{
    return head->status == 299; /* one way of giving up early */
}

static int on_body(const char *chunk, size_t len, void *data)
{
    if (len > 0 && chunk[len - 1] == '\x7f')
        return 1;
    return ex.stop_after-- == 0;
}

static char socket_path[96];

static void remove_socket(void)
{
    unlink(socket_path);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as in flintd: a closed peer is an error, not a signal */
    uv_loop_init(&loop);
    snprintf(socket_path, sizeof(socket_path), "/tmp/flint-fuzz-client.%d.sock", (int)getpid());
    unlink(socket_path);
    atexit(remove_socket);
    snprintf(target, sizeof(target), "unix:%s", socket_path);
    if (uv_pipe_init(&loop, &listener, 0) != 0 || uv_pipe_bind(&listener, socket_path) != 0 ||
        uv_listen((uv_stream_t *)&listener, 64, on_connection) != 0)
        abort();
    struct fl_http_client_config cfg;
    fl_http_client_config_init(&cfg);
    cfg.max_idle = 2;
    cfg.max_conns = 4;
    cfg.max_queued = 16;
    cfg.pipeline_conns = 1;
    cfg.pipeline_depth = 4;
    cfg.max_header_bytes = 1024;
    cfg.max_response_bytes = 2048;
    /* every exchange ends with the server closing; a timer only bounds a hang */
    cfg.connect_timeout_ms = 1000;
    cfg.response_timeout_ms = 1000;
    if (fl_http_client_new(&loop, &cfg, &client) < 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (client == NULL)
        setup();
    if (size < 2)
        return 0;
    uint8_t shape = data[0], flags = data[1];
    memset(&ex, 0, sizeof(ex));
    ex.answer = data + 2;
    ex.answer_len = size - 2;
    ex.stop_after = flags >> 4;
    unsigned n = 1 + (shape & 7);
    unsigned cancel = (shape >> 3) & 7; /* 0: none */
    for (unsigned i = 0; i < n; i++) {
        bool pipelined = (shape & 0x40) != 0;
        bool idempotent = (flags >> (i & 3)) & 1;
        bool streamed = (shape & 0x80) != 0 && (i & 1) != 0;
        struct fl_http_header h = {"X-Call", 6, "x", 1};
        struct fl_http_client_request req = {.target = target,
                                             .method = idempotent ? "GET" : "POST",
                                             .path = "/",
                                             .headers = &h,
                                             .nheaders = 1,
                                             .body = idempotent ? NULL : "body",
                                             .body_len = idempotent ? 0 : 4,
                                             .idempotent = idempotent,
                                             .pipeline = pipelined};
        int rc = streamed
                     ? fl_http_client_request_stream(client, &req, on_head, on_body, on_done,
                                                     &ex.calls[i], &ex.calls[i])
                     : fl_http_client_request(client, &req, on_done, &ex.calls[i], &ex.calls[i]);
        if (rc == 0)
            ex.pending++;
        else
            ex.calls[i] = NULL;
    }
    unsigned turns = 0;
    while (ex.pending > 0 || ex.open > 0 || fl_http_client_connections(client, target) > 0) {
        uv_run(&loop, UV_RUN_ONCE);
        if (turns == 0 && cancel > 0 && cancel <= n && ex.calls[cancel - 1] != NULL)
            fl_http_client_cancel(ex.calls[cancel - 1]);
        if (++turns > TURNS_MAX) {
            fprintf(stderr,
                    "exchange did not settle: %u calls pending, %u server connections, "
                    "%u client connections\n",
                    ex.pending, ex.open, fl_http_client_connections(client, target));
            abort();
        }
    }
    return 0;
}
