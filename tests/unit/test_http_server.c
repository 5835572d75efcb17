/*
 * Unit tests for src/http/server: a real server on its own loop thread,
 * driven through real sockets by the test.
 *
 * The handler serves:
 *   /hello         200 "hello"
 *   /echo          200 "<method> <target>|<header count>|<x-test header>|<body>"
 *   /delay/N       answers "delay N" after N ms (from a timer)
 *   /big           200 with 16 KiB of 'x'
 *   /stream        a chunked response "a", "b", "c"
 *   /conns         the number of open connections
 *   /aborts        how many requests were told their client left
 *   /shutdown      answers, then closes the server with a 2 s drain
 *   /hold          keeps the request unanswered (body and all) until /release
 *   /release       answers every request held, then itself
 *   /budget        "<used> <peak>" of the fixture's budget
 *
 * A fixture started with a budget has a second server on the same loop,
 * without a budget (fx.control_port), to ask /budget and /release of while
 * the first is over it.
 */
#include "runner.h"

#include "base/error.h"
#include "http/serve.h"
#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct fixture {
    uv_loop_t loop;
    uv_async_t wake;
    struct fl_http_server *srv;
    pthread_t thread;
    struct fl_http_budget *budget;
    char addr[300];
    char unix_addr[300];
    int port;
    int aborts;
    int delays_started;  /* atomic: /delay requests the handler got */
    int delays_answered; /* atomic: and answered (their clients gone or not) */
    bool shutdown_requested;
    struct fl_http_server *control;
    int control_port;
    int servers_open;
    struct fl_http_request *held[64];
    int nheld;
};

static struct fixture fx;

struct delayed {
    uv_timer_t timer;
    struct fl_http_request *req;
    int ms;
};

static void delayed_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_delay(uv_timer_t *t)
{
    struct delayed *d = t->data;
    char body[64];
    int n = snprintf(body, sizeof(body), "delay %d", d->ms);
    fl_http_respond(d->req, 200, NULL, 0, body, (size_t)n);
    __atomic_add_fetch(&fx.delays_answered, 1, __ATOMIC_SEQ_CST);
    uv_close((uv_handle_t *)t, delayed_closed);
}

static void on_abort(struct fl_http_request *req, void *data)
{
    fx.aborts++;
}

static void server_done(void *data)
{
    if (data == &fx.control)
        fx.control = NULL;
    else
        fx.srv = NULL;
    if (--fx.servers_open == 0)
        uv_close((uv_handle_t *)&fx.wake, NULL);
}

static void close_servers(uint64_t drain_ms)
{
    if (fx.srv != NULL)
        fl_http_server_close(fx.srv, drain_ms, server_done, NULL);
    if (fx.control != NULL)
        fl_http_server_close(fx.control, drain_ms, server_done, &fx.control);
}

static void handler(struct fl_http_request *req, void *data)
{
    char body[8192];
    int n;
    if (strcmp(req->path, "/hello") == 0) {
        struct fl_http_header ct = {"Content-Type", 12, "text/plain", 10};
        fl_http_respond(req, 200, &ct, 1, "hello", 5);
    } else if (strcmp(req->path, "/echo") == 0) {
        const char *x = fl_http_request_header(req, "X-Test", NULL);
        n = snprintf(body, sizeof(body), "%s %s|%zu|%s|%.*s", req->method, req->target,
                     req->nheaders, x ? x : "-", (int)req->body_len, req->body);
        fl_http_respond(req, 200, NULL, 0, body, (size_t)n);
    } else if (strncmp(req->path, "/delay/", 7) == 0) {
        struct delayed *d = calloc(1, sizeof(*d));
        __atomic_add_fetch(&fx.delays_started, 1, __ATOMIC_SEQ_CST);
        d->req = req;
        d->ms = (int)strtol(req->path + 7, NULL, 10);
        d->timer.data = d;
        fl_http_request_on_abort(req, on_abort, NULL);
        uv_timer_init(&fx.loop, &d->timer);
        uv_timer_start(&d->timer, on_delay, (uint64_t)d->ms, 0);
    } else if (strcmp(req->path, "/big") == 0) {
        static char big[16 * 1024];
        memset(big, 'x', sizeof(big));
        fl_http_respond(req, 200, NULL, 0, big, sizeof(big));
    } else if (strcmp(req->path, "/stream") == 0) {
        fl_http_stream_begin(req, 200, NULL, 0);
        fl_http_stream_write(req, "a", 1);
        fl_http_stream_write(req, "b", 1);
        fl_http_stream_write(req, "c", 1);
        fl_http_stream_end(req);
    } else if (strcmp(req->path, "/proxied") == 0) {
        /* a proxy answering HEAD passes on the length it was told */
        struct fl_http_header h[] = {{"Content-Length", 14, "1234", 4},
                                     {"date", 4, "Thu, 01 Jan 1970 00:00:00 GMT", 29}};
        fl_http_respond(req, 200, h, 2, "", 0);
    } else if (strcmp(req->path, "/conns") == 0) {
        n = snprintf(body, sizeof(body), "%u", fl_http_server_connections(fx.srv));
        fl_http_respond(req, 200, NULL, 0, body, (size_t)n);
    } else if (strcmp(req->path, "/aborts") == 0) {
        n = snprintf(body, sizeof(body), "%d", fx.aborts);
        fl_http_respond(req, 200, NULL, 0, body, (size_t)n);
    } else if (strcmp(req->path, "/shutdown") == 0) {
        fl_http_respond(req, 200, NULL, 0, "bye", 3);
        close_servers(2000);
    } else if (strcmp(req->path, "/hold") == 0 && fx.nheld < 64) {
        fx.held[fx.nheld++] = req;
    } else if (strcmp(req->path, "/release") == 0) {
        for (int i = 0; i < fx.nheld; i++)
            fl_http_respond(fx.held[i], 200, NULL, 0, "released", 8);
        n = snprintf(body, sizeof(body), "%d", fx.nheld);
        fx.nheld = 0;
        fl_http_respond(req, 200, NULL, 0, body, (size_t)n);
    } else if (strcmp(req->path, "/budget") == 0) {
        n = snprintf(body, sizeof(body), "%zu %zu", fl_http_budget_used(fx.budget),
                     fl_http_budget_peak(fx.budget));
        fl_http_respond(req, 200, NULL, 0, body, (size_t)n);
    } else {
        fl_http_respond_error(req, 404, "not_found", "no route for '%s'", req->path);
    }
}

static void on_wake(uv_async_t *a)
{
    close_servers(100);
}

static void *loop_thread(void *arg)
{
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    return NULL;
}

static void start_server(const struct fl_http_server_config *cfg)
{
    char err[256];
    memset(&fx, 0, sizeof(fx));
    ASSERT_OK(uv_loop_init(&fx.loop));
    ASSERT_OK(uv_async_init(&fx.loop, &fx.wake, on_wake));
    ASSERT_OK(fl_http_server_new(&fx.loop, cfg, handler, NULL, &fx.srv));
    fx.servers_open = 1;
    ASSERT_OK(
        fl_http_server_listen(fx.srv, "127.0.0.1:0", fx.addr, sizeof(fx.addr), err, sizeof(err)));
    if (cfg != NULL && cfg->budget != NULL) {
        char bound[300];
        fx.budget = cfg->budget;
        ASSERT_OK(fl_http_server_new(&fx.loop, NULL, handler, NULL, &fx.control));
        fx.servers_open = 2;
        ASSERT_OK(fl_http_server_listen(fx.control, "127.0.0.1:0", bound, sizeof(bound), err,
                                        sizeof(err)));
        fx.control_port = (int)strtol(strrchr(bound, ':') + 1, NULL, 10);
    }
    char path[300];
    snprintf(path, sizeof(path), "unix:%s/http.sock", fl_test_tmpdir());
    ASSERT_OK(
        fl_http_server_listen(fx.srv, path, fx.unix_addr, sizeof(fx.unix_addr), err, sizeof(err)));
    fx.port = (int)strtol(strrchr(fx.addr, ':') + 1, NULL, 10);
    ASSERT(fx.port > 0);
    ASSERT_OK(pthread_create(&fx.thread, NULL, loop_thread, NULL));
}

static void stop_server(void)
{
    uv_async_send(&fx.wake);
    pthread_join(fx.thread, NULL);
    ASSERT(fx.srv == NULL);
    ASSERT_OK(uv_loop_close(&fx.loop));
}

/* A connection to port from the address source (any loopback address
 * is this machine's: 127.0.0.2 is another client). */
static int connect_from(const char *source, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in from = {.sin_family = AF_INET};
    inet_pton(AF_INET, source, &from.sin_addr);
    ASSERT_OK(bind(fd, (struct sockaddr *)&from, sizeof(from)));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    ASSERT_OK(connect(fd, (struct sockaddr *)&sin, sizeof(sin)));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int connect_tcp(void)
{
    return connect_from("127.0.0.1", fx.port);
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        ASSERT(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* Read bytes until n are buffered or EOF; returns bytes in buf. */
struct reader {
    int fd;
    char buf[1 << 20];
    size_t len;
    bool eof;
};

static bool fill(struct reader *r)
{
    struct pollfd p = {.fd = r->fd, .events = POLLIN};
    if (poll(&p, 1, 10000) <= 0)
        fl_test_fail(__FILE__, __LINE__, "no answer within 10 s (have %zu bytes: %.*s)", r->len,
                     (int)r->len, r->buf);
    ssize_t n = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len - 1, 0);
    if (n <= 0) {
        r->eof = true;
        return false;
    }
    r->len += (size_t)n;
    r->buf[r->len] = '\0';
    return true;
}

struct response {
    int status;
    char head[4096];
    char body[1 << 16];
    size_t body_len;
};

/* Read one response (Content-Length or chunked). Returns false on EOF first. */
static bool read_response(struct reader *r, struct response *out, bool head_request)
{
    char *end;
    while ((end = strstr(r->buf, "\r\n\r\n")) == NULL)
        if (!fill(r))
            return false;
    size_t head_len = (size_t)(end - r->buf) + 4;
    ASSERT(head_len < sizeof(out->head));
    memcpy(out->head, r->buf, head_len);
    out->head[head_len] = '\0';
    ASSERT(sscanf(out->head, "HTTP/1.1 %d", &out->status) == 1);
    memmove(r->buf, r->buf + head_len, r->len - head_len + 1);
    r->len -= head_len;
    out->body_len = 0;
    if (out->status == 100)
        return true;
    const char *cl = strcasestr(out->head, "\r\ncontent-length: ");
    if (strcasestr(out->head, "\r\ntransfer-encoding: chunked") != NULL && !head_request) {
        for (;;) {
            while (strstr(r->buf, "\r\n") == NULL)
                ASSERT(fill(r));
            size_t size = strtoul(r->buf, NULL, 16);
            size_t line = (size_t)(strstr(r->buf, "\r\n") - r->buf) + 2;
            while (r->len < line + size + 2)
                ASSERT(fill(r));
            memcpy(out->body + out->body_len, r->buf + line, size);
            out->body_len += size;
            memmove(r->buf, r->buf + line + size + 2, r->len - line - size - 2 + 1);
            r->len -= line + size + 2;
            if (size == 0)
                break;
        }
    } else if (cl != NULL && !head_request) {
        size_t n = strtoul(cl + 18, NULL, 10);
        while (r->len < n)
            ASSERT(fill(r));
        memcpy(out->body, r->buf, n);
        out->body_len = n;
        memmove(r->buf, r->buf + n, r->len - n + 1);
        r->len -= n;
    }
    out->body[out->body_len] = '\0';
    return true;
}

static void expect_eof(struct reader *r)
{
    size_t before = r->len;
    while (!r->eof)
        fill(r);
    if (r->len != before)
        fl_test_fail(__FILE__, __LINE__, "expected the connection to close, got: %s",
                     r->buf + before);
}

static struct reader *reader_new(int fd)
{
    struct reader *r = calloc(1, sizeof(*r));
    r->fd = fd;
    return r;
}

/* One request on a fresh connection; returns the response. */
static void roundtrip(const char *request, struct response *resp)
{
    int fd = connect_tcp();
    struct reader *r = reader_new(fd);
    send_str(fd, request);
    ASSERT(read_response(r, resp, strncmp(request, "HEAD", 4) == 0));
    close(fd);
    free(r);
}

static struct response resp;

TEST(simple_get_and_not_found)
{
    start_server(NULL);
    roundtrip("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &resp);
    ASSERT_EQ(resp.status, 200);
    ASSERT_STR_EQ(resp.body, "hello");
    ASSERT(strstr(resp.head, "\r\nDate: ") != NULL);
    ASSERT(strstr(resp.head, "\r\nContent-Type: text/plain\r\n") != NULL);
    roundtrip("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", &resp);
    ASSERT_EQ(resp.status, 404);
    ASSERT_STR_EQ(resp.body, "{\"error\":{\"code\":\"not_found\",\"message\":\"no route for "
                             "'/nope'\"}}");
    stop_server();
}

TEST(path_and_query_are_right_for_every_target_length)
{
    start_server(NULL);
    int fd = connect_tcp();
    struct reader *r = reader_new(fd);
    char path[600], req[1200], want[700];
    for (int n = 1; n < 500; n += 7) {
        path[0] = '/';
        for (int i = 1; i < n; i++)
            path[i] = (char)('a' + i % 26);
        path[n] = '\0';
        snprintf(req, sizeof(req), "GET %s?q=%d HTTP/1.1\r\nHost: h\r\nX-Pad: %.*s\r\n\r\n", path,
                 n, n % 97, path);
        send_str(fd, req);
        ASSERT(read_response(r, &resp, false));
        ASSERT_EQ(resp.status, 404);
        snprintf(want, sizeof(want), "no route for '%s'", path);
        if (strstr(resp.body, want) == NULL)
            fl_test_fail(__FILE__, __LINE__, "length %d: %s", n, resp.body);
    }
    close(fd);
    free(r);
    stop_server();
}

TEST(absolute_form_targets_are_served_in_origin_form)
{
    start_server(NULL);
    roundtrip("GET http://example.com/echo?a=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", &resp);
    ASSERT_EQ(resp.status, 200);
    ASSERT_STR_EQ(resp.body, "GET /echo?a=1|1|-|");
    roundtrip("GET HTTPS://example.com:8443/echo HTTP/1.1\r\nHost: example.com\r\n\r\n", &resp);
    ASSERT_STR_EQ(resp.body, "GET /echo|1|-|");
    const char *root[] = {"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
                          "GET http://example.com?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"};
    for (size_t i = 0; i < 2; i++) {
        roundtrip(root[i], &resp);
        ASSERT_EQ(resp.status, 404);
        ASSERT(strstr(resp.body, "no route for '/'") != NULL);
    }
    stop_server();
}

TEST(keep_alive_and_echo)
{
    start_server(NULL);
    int fd = connect_tcp();
    struct reader *r = reader_new(fd);
    for (int i = 0; i < 5; i++) {
        send_str(fd, "POST /echo?a=1&b=2 HTTP/1.1\r\nHost: x\r\nX-Test: yes\r\n"
                     "Content-Length: 4\r\n\r\nbody");
        ASSERT(read_response(r, &resp, false));
        ASSERT_EQ(resp.status, 200);
        ASSERT_STR_EQ(resp.body, "POST /echo?a=1&b=2|3|yes|body");
    }
    send_str(fd, "GET /conns HTTP/1.1\r\n\r\n");
    ASSERT(read_response(r, &resp, false));
    ASSERT_STR_EQ(resp.body, "1"); /* one connection served all of them */
    close(fd);
    free(r);
    stop_server();
}

TEST(pipelined_answers_keep_request_order)
{
    start_server(NULL);
    int fd = connect_tcp();
    struct reader *r = reader_new(fd);
    /* the first answer comes last from its handler, yet must be written first */
    send_str(fd, "GET /delay/150 HTTP/1.1\r\n\r\nGET /delay/0 HTTP/1.1\r\n\r\n"
                 "GET /hello HTTP/1.1\r\n\r\nGET /stream HTTP/1.1\r\n\r\n");
    ASSERT(read_response(r, &resp, false));
    ASSERT_STR_EQ(resp.body, "delay 150");
    ASSERT(read_response(r, &resp, false));
    ASSERT_STR_EQ(resp.body, "delay 0");
    ASSERT(read_response(r, &resp, false));
    ASSERT_STR_EQ(resp.body, "hello");
    ASSERT(read_response(r, &resp, false));
    ASSERT_STR_EQ(resp.body, "abc");
    close(fd);
    free(r);
    stop_server();
}

TEST(many_pipelined_requests_past_the_in_flight_limit)
{
    struct fl_http_server_config cfg;
    fl_http_server_config_init(&cfg);
    cfg.max_pipeline = 4;
    start_server(&cfg);
    int fd = connect_tcp();
    struct reader *r = reader_new(fd);
    char all[200 * 64];
    size_t n = 0;
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(all + n, sizeof(all) - n, "GET /echo?i=%d HTTP/1.1\r\n\r\n", i);
    send_all(fd, all, n);
    for (int i = 0; i < 200; i++) {
        char want[64];
        ASSERT(read_response(r, &resp, false));
        snprintf(want, sizeof(want), "GET /echo?i=%d|0|-|", i);
        ASSERT_STR_EQ(resp.body, want);
    }
    close(fd);
    free(r);
    stop_server();
}

/* More requests than max_pipeline (32 by default) in one write: the
 * answers that free the queue resume reading from inside the resumption
 * that parsed them, which used to start reading twice (UV_EALREADY) and
 * abort the connection after 32 answers. */
TEST(two_hundred_pipelined_requests_in_one_write_are_all_answered_in_order)
{
    static const char *const paths[] = {"echo", "stream", "delay/0", "big"};
    start_server(NULL);
    for (int round = 0; round < 4; round++) {
        int fd = connect_tcp();
        struct reader *r = reader_new(fd);
        char all[200 * 64];
        size_t n = 0;
        for (int i = 0; i < 200; i++)
            n += (size_t)snprintf(all + n, sizeof(all) - n, "GET /%s?i=%d HTTP/1.1\r\n\r\n",
                                  paths[round], i);
        send_all(fd, all, n);
        for (int i = 0; i < 200; i++) {
            if (!read_response(r, &resp, false))
                fl_test_fail(__FILE__, __LINE__, "/%s: the connection closed after %d answers",
                             paths[round], i);
            ASSERT_EQ(resp.status, 200);
            if (round == 0) {
                char want[64];
                snprintf(want, sizeof(want), "GET /echo?i=%d|0|-|", i);
                ASSERT_STR_EQ(resp.body, want);
            }
        }
        /* and the connection serves on */
        send_str(fd, "GET /hello HTTP/1.1\r\n\r\n");
        if (!read_response(r, &resp, false))
            fl_test_fail(__FILE__, __LINE__, "/%s: the connection closed after 200 answers",
                         paths[round]);
        ASSERT_STR_EQ(resp.body, "hello");
        close(fd);
        free(r);
    }
    stop_server();
}

TEST(requests_split_at_every_byte_boundary)
{
    start_server(NULL);
    const char *req = "POST /echo?q=split HTTP/1.1\r\nHost: example\r\nX-Test: value\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    size_t len = strlen(req);
    int fd = connect_tcp();
    struct reader *r = reader_new(fd);
    for (size_t split = 1; split < len; split++) {
        send_all(fd, req, split);
        usleep(500);
        send_all(fd, req + split, len - split);
        ASSERT(read_response(r, &resp, false));
        ASSERT_EQ(resp.status, 200);
        ASSERT_STR_EQ(resp.body, "POST /echo?q=split|3|value|abcde");
    }
    /* and one byte at a time */
    for (size_t i = 0; i < len; i++)
        send_all(fd, req + i, 1);
    ASSERT(read_response(r, &resp, false));
    ASSERT_STR_EQ(resp.body, "POST /echo?q=split|3|value|abcde");
    close(fd);
    free(r);
    stop_server();
}

TEST(chunked_bodies_with_trailers_and_errors)
{
    start_server(NULL);
    roundtrip("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
              "5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
              &resp);
    ASSERT_EQ(resp.status, 200);
    ASSERT_STR_EQ(resp.body, "POST /echo|1|-|hello");
    roundtrip("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", &resp);
    ASSERT_STR_EQ(resp.body, "POST /echo|1|-|");
    roundtrip("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n", &resp);
    ASSERT_EQ(resp.status, 400);
    ASSERT(strstr(resp.body, "\"code\":\"bad_request\"") != NULL);
    ASSERT(strstr(resp.head, "Connection: close") != NULL);
    stop_server();
}

TEST(malformed_requests_get_400_and_others_are_served)
{
    start_server(NULL);
    const char *bad[] = {
        "GARBAGE\r\n\r\n",
        "GET /x HTTP/1.1\r\nBad Header\r\n\r\n",
        "POST /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        "POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "GET /x\x01y HTTP/1.1\r\n\r\n",
        /* control characters where a header value starts */
        "GET /x HTTP/1.1\r\nX-A:\x01b\r\n\r\n",
        "GET /x HTTP/1.1\r\nX-A: \x7f\r\n\r\n",
        /* a header name that is not a token: a proxy behind us could read
         * "Transfer-Encoding : chunked" as the framing (request smuggling) */
        "POST /x HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        "GET /x HTTP/1.1\r\nX A: b\r\n\r\n",
        "GET /x HTTP/1.1\r\nX-A\t: b\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int fd = connect_tcp();
        struct reader *r = reader_new(fd);
        send_str(fd, bad[i]);
        ASSERT(read_response(r, &resp, false));
        if (resp.status != 400)
            fl_test_fail(__FILE__, __LINE__, "case %zu: status %d", i, resp.status);
        ASSERT(strstr(resp.body, "malformed request") != NULL);
        expect_eof(r);
        close(fd);
        free(r);
    }
    roundtrip("GET /x HTTP/9.9\r\n\r\n", &resp);
    ASSERT_EQ(resp.status, 505);
    ASSERT(strstr(resp.body, "only HTTP/1.0 and HTTP/1.1") != NULL);
    roundtrip("GET /hello HTTP/1.1\r\n\r\n", &resp);
    ASSERT_EQ(resp.status, 200);
    stop_server();
}

TEST(limits_answer_431_and_413)
{
    struct fl_http_server_config cfg;
    fl_http_server_config_init(&cfg);
    cfg.max_header_bytes = 1024;
    cfg.max_headers = 5;
    cfg.max_body_bytes = 100;
    start_server(&cfg);
    char req[8192];
    char big[2000];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(req, sizeof(req), "GET /hello HTTP/1.1\r\nX-Big: %s\r\n\r\n", big);
    roundtrip(req, &resp);
    ASSERT_EQ(resp.status, 431);
    ASSERT(strstr(resp.body, "headers_too_large") != NULL);

    snprintf(req, sizeof(req), "GET /%s HTTP/1.1\r\n\r\n", big); /* a long target counts too */
    roundtrip(req, &resp);
    ASSERT_EQ(resp.status, 431);

    roundtrip("GET /hello HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\n\r\n", &resp);
    ASSERT_EQ(resp.status, 431);
    ASSERT(strstr(resp.body, "too_many_headers") != NULL);

    roundtrip("POST /echo HTTP/1.1\r\nContent-Length: 101\r\n\r\n", &resp);
    ASSERT_EQ(resp.status, 413);
    ASSERT(strstr(resp.body, "larger than 100 bytes") != NULL);

    snprintf(req, sizeof(req),
             "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
             "65\r\n%.101s\r\n0\r\n\r\n",
             big);
    roundtrip(req, &resp);
    ASSERT_EQ(resp.status, 413);

    roundtrip("POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\n"
              "0123456789012345678901234567890123456789012345678901234567890123456789"
              "012345678901234567890123456789",
              &resp);
    ASSERT_EQ(resp.status, 200); /* exactly at the limit is fine */
    stop_server();
}

TEST(expect_100_continue)
{
    struct fl_http_server_config cfg;
    fl_http_server_config_init(&cfg);
    cfg.max_body_bytes = 100;
    start_server(&cfg);
    int fd = connect_tcp();
    struct reader *r = reader_new(fd);
    send_str(fd, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    ASSERT(read_response(r, &resp, false));
    ASSERT_EQ(resp.status, 100);
    send_str(fd, "hello");
    ASSERT(read_response(r, &resp, false));
    ASSERT_EQ(resp.status, 200);
    ASSERT_STR_EQ(resp.body, "POST /echo|2|-|hello");
    /* too large: refused before the body is sent */
    send_str(fd, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n");
    ASSERT(read_response(r, &resp, false));
    ASSERT_EQ(resp.status, 413);
    expect_eof(r);
    close(fd);
    free(r);
    stop_server();
}

TEST(head_close_and_http10)
{
    start_server(NULL);
    roundtrip("HEAD /hello HTTP/1.1\r\n\r\n", &resp);
    ASSERT_EQ(resp.status, 200);
    ASSERT(strstr(resp.head, "Content-Length: 5\r\n") != NULL);
    ASSERT_EQ(resp.body_len, 0);
    /* a Content-Length the handler gives is the length of a HEAD answer */
    roundtrip("HEAD /proxied HTTP/1.1\r\n\r\n", &resp);
    ASSERT(strstr(resp.head, "\r\nContent-Length: 1234\r\n") != NULL);
    ASSERT(strstr(resp.head, "Content-Length: 0") == NULL);
    /* and ignored otherwise: the body decides, once */
    roundtrip("GET /proxied HTTP/1.1\r\n\r\n", &resp);
    ASSERT(strstr(resp.head, "\r\nContent-Length: 0\r\n") != NULL);
    ASSERT(strstr(resp.head, "1234") == NULL);
    /* the Date is the server's, once, whatever the handler passed on */
    const char *date = strcasestr(resp.head, "\r\ndate: ");
    ASSERT(date != NULL && strcasestr(date + 2, "\r\ndate: ") == NULL);
    ASSERT(strstr(resp.head, "1970") == NULL);
    /* a streamed HEAD answer does not claim to be empty */
    roundtrip("HEAD /stream HTTP/1.1\r\n\r\n", &resp);
    ASSERT_EQ(resp.status, 200);
    ASSERT(strstr(resp.head, "Content-Length") == NULL && strstr(resp.head, "chunked") == NULL);

    int fd = connect_tcp();
    struct reader *r = reader_new(fd);
    send_str(fd, "HEAD /hello HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\nConnection: close\r\n\r\n"
                 "GET /hello HTTP/1.1\r\n\r\n");
    ASSERT(read_response(r, &resp, true));
    ASSERT_EQ(resp.body_len, 0);
    ASSERT(read_response(r, &resp, false)); /* the HEAD sent no body: this is the next */
    ASSERT_STR_EQ(resp.body, "hello");
    ASSERT(strstr(resp.head, "Connection: close\r\n") != NULL);
    expect_eof(r); /* nothing after Connection: close is answered */
    close(fd);
    free(r);

    fd = connect_tcp();
    r = reader_new(fd);
    send_str(fd, "GET /hello HTTP/1.0\r\n\r\n");
    ASSERT(read_response(r, &resp, false));
    ASSERT_STR_EQ(resp.body, "hello");
    expect_eof(r);
    close(fd);
    free(r);

    fd = connect_tcp();
    r = reader_new(fd);
    send_str(fd,
             "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /hello HTTP/1.0\r\n\r\n");
    ASSERT(read_response(r, &resp, false));
    ASSERT(strstr(resp.head, "Connection: keep-alive\r\n") != NULL);
    ASSERT(read_response(r, &resp, false));
    expect_eof(r);
    close(fd);
    free(r);
    stop_server();
}

/* Send the start of a request on a new connection and nothing more:
 * the answer is a 408 saying why, and the connection closes. */
static void expect_timeout(const char *start, const char *why)
{
    int fd = connect_tcp();
    struct reader *r = reader_new(fd);
    send_str(fd, start);
    ASSERT(read_response(r, &resp, false));
    ASSERT_EQ(resp.status, 408);
    ASSERT(strstr(resp.body, why) != NULL);
    expect_eof(r);
    close(fd);
    free(r);
}

TEST(timeouts_answer_408_or_close)
{
    struct fl_http_server_config cfg;
    fl_http_server_config_init(&cfg);
    cfg.header_timeout_ms = 200;
    cfg.body_timeout_ms = 200;
    cfg.idle_timeout_ms = 200;
    start_server(&cfg);
    expect_timeout("GET /hello HTTP/1.1\r\nHost: slow", "headers did not arrive in time");

    int fd = connect_tcp();
    struct reader *r = reader_new(fd);
    send_str(fd, "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
    ASSERT(read_response(r, &resp, false));
    ASSERT_EQ(resp.status, 408);
    ASSERT(strstr(resp.body, "body did not arrive in time") != NULL);
    close(fd);
    free(r);

    fd = connect_tcp(); /* idle: closed without a word */
    r = reader_new(fd);
    expect_eof(r);
    ASSERT_EQ(r->len, 0);
    close(fd);
    free(r);
    stop_server();
}

/* One request on fd (kept open); returns the status. */
static int ask(int fd, const char *request)
{
    struct reader *r = reader_new(fd);
    send_str(fd, request);
    ASSERT(read_response(r, &resp, false));
    free(r);
    return resp.status;
}

/* New connections are answered 503 for a while (what closes is closed
 * from the loop): wait until one is served, for up to 10 s. */
static void wait_until_served(void)
{
    int status = 0;
    for (int i = 0; i < 1000 && status != 200; i++) {
        int fd = connect_tcp();
        status = ask(fd, "GET /hello HTTP/1.1\r\n\r\n");
        close(fd);
        if (status != 200)
            usleep(10000);
    }
    ASSERT_EQ(status, 200);
}

static void wait_delays_started(int n)
{
    WAIT_UNTIL(__atomic_load_n(&fx.delays_started, __ATOMIC_SEQ_CST) >= n, 20, (void)0);
    ASSERT_EQ(__atomic_load_n(&fx.delays_started, __ATOMIC_SEQ_CST), n);
}

TEST(a_full_server_closes_its_oldest_idle_connection_for_a_new_one)
{
    struct fl_http_server_config cfg;
    fl_http_server_config_init(&cfg);
    cfg.max_connections = 3;
    start_server(&cfg);
    /* a and b idle between requests (a longest), s a slowloris mid-headers */
    int a = connect_tcp();
    ASSERT_EQ(ask(a, "GET /hello HTTP/1.1\r\n\r\n"), 200);
    int b = connect_tcp();
    ASSERT_EQ(ask(b, "GET /hello HTTP/1.1\r\n\r\n"), 200);
    int s = connect_tcp();
    ASSERT_EQ(ask(s, "GET /hello HTTP/1.1\r\n\r\n"), 200);
    send_str(s, "GET /hel");
    ASSERT_EQ(ask(b, "GET /hello HTTP/1.1\r\n\r\n"), 200); /* b idle again, after s began */
    /* full: a new client is served, in the place of a (idle longest) */
    int c = connect_tcp();
    ASSERT_EQ(ask(c, "GET /hello HTTP/1.1\r\n\r\n"), 200);
    struct reader *ra = reader_new(a);
    expect_eof(ra); /* closed without a word, as an idle timeout does */
    free(ra);
    close(a);
    /* the slowloris was not idle: it is served when it finishes */
    ASSERT_EQ(ask(s, "lo HTTP/1.1\r\n\r\n"), 200);
    /* with nothing idle (every one has a request in flight), 503 */
    send_str(b, "GET /delay/1000 HTTP/1.1\r\n\r\n");
    send_str(s, "GET /delay/1000 HTTP/1.1\r\n\r\n");
    send_str(c, "GET /delay/1000 HTTP/1.1\r\n\r\n");
    wait_delays_started(3);
    int d = connect_tcp();
    ASSERT_EQ(ask(d, "GET /hello HTTP/1.1\r\n\r\n"), 503);
    ASSERT(strstr(resp.body, "\"too_many_connections\"") != NULL);
    ASSERT(strstr(resp.body, "the server has too many connections") != NULL);
    close(d);
    for (int fd = 0, fds[] = {b, s, c}; fd < 3; fd++) {
        struct reader *r = reader_new(fds[fd]);
        ASSERT(read_response(r, &resp, false));
        ASSERT_STR_EQ(resp.body, "delay 1000");
        free(r);
        close(fds[fd]);
    }
    stop_server();
}

TEST(one_address_holds_at_most_its_share_of_connections)
{
    struct fl_http_server_config cfg;
    fl_http_server_config_init(&cfg);
    cfg.max_connections_per_address = 3;
    start_server(&cfg);
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = connect_tcp();
        ASSERT_EQ(ask(fds[i], "GET /hello HTTP/1.1\r\n\r\n"), 200);
    }
    int over = connect_tcp();
    ASSERT_EQ(ask(over, "GET /hello HTTP/1.1\r\n\r\n"), 503);
    ASSERT(strstr(resp.body, "too many connections from this address") != NULL);
    close(over);
    /* another address is another client */
    int other = connect_from("127.0.0.2", fx.port);
    ASSERT_EQ(ask(other, "GET /hello HTTP/1.1\r\n\r\n"), 200);
    close(other);
    /* Unix socket peers are not counted */
    int unix_fds[5];
    for (int i = 0; i < 5; i++) {
        unix_fds[i] = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        ASSERT(snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", fx.unix_addr + 5) <
               (int)sizeof(sun.sun_path));
        ASSERT_OK(connect(unix_fds[i], (struct sockaddr *)&sun, sizeof(sun)));
        ASSERT_EQ(ask(unix_fds[i], "GET /hello HTTP/1.1\r\n\r\n"), 200);
    }
    /* once one goes, its address may connect again */
    close(fds[0]);
    wait_until_served();
    for (int i = 0; i < 5; i++)
        close(unix_fds[i]);
    close(fds[1]);
    close(fds[2]);
    stop_server();
}

/* Slowloris: a request whose bytes come slowly, each before any timeout
 * would fire between two of them. The header timeout runs from its first
 * byte, however slow the pace (the method's bytes count too). */
TEST(a_request_trickled_byte_by_byte_times_out_whatever_its_pace)
{
    struct fl_http_server_config cfg;
    fl_http_server_config_init(&cfg);
    cfg.header_timeout_ms = 300;
    cfg.idle_timeout_ms = 60000;
    start_server(&cfg);
    /* only the method, then nothing: 408, not the 60 s idle timeout */
    expect_timeout("GE", "headers did not arrive in time");
    /* a byte every 20 ms: 8 s for the whole request, cut at 300 ms */
    char request[512];
    snprintf(request, sizeof(request), "GET /hello HTTP/1.1\r\nX-Pad: %0380d\r\n\r\n", 0);
    int fd = connect_tcp();
    struct reader *r = reader_new(fd);
    size_t sent = 0, len = strlen(request);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (sent < len && poll(&p, 1, 0) == 0) {
        if (send(fd, request + sent, 1, MSG_NOSIGNAL) != 1)
            break; /* the server closed */
        sent++;
        usleep(20000);
    }
    ASSERT(sent < len);
    ASSERT(read_response(r, &resp, false));
    ASSERT_EQ(resp.status, 408);
    close(fd);
    free(r);
    stop_server();
}

/* "<used> <peak>" of the budget, from the control server. */
static void budget_now(size_t *used, size_t *peak)
{
    int fd = connect_from("127.0.0.1", fx.control_port);
    ASSERT_EQ(ask(fd, "GET /budget HTTP/1.1\r\n\r\n"), 200);
    ASSERT_EQ(sscanf(resp.body, "%zu %zu", used, peak), 2);
    close(fd);
}

/* Send as much of data as the peer takes until it stops taking it for
 * a second (or all of it). Returns the bytes sent. */
static size_t send_until_stalled(int fd, const char *data, size_t len)
{
    size_t sent = 0;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    while (sent < len && poll(&p, 1, 1000) == 1) {
        ssize_t n = send(fd, data + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    return sent;
}

TEST_TIMEOUT(a_spent_budget_stops_reading_refuses_new_requests_and_resumes, 60)
{
    const size_t limit = 256 * 1024;
    struct fl_http_budget *budget;
    ASSERT_OK(fl_http_budget_new(limit, &budget));
    struct fl_http_server_config cfg;
    fl_http_server_config_init(&cfg);
    cfg.max_body_bytes = 64u << 20;
    cfg.budget = budget;
    start_server(&cfg);
    size_t used, peak;

    /* a body held by its handler counts */
    static char body[16u << 20];
    memset(body, 'b', sizeof(body));
    int held = connect_tcp();
    char head[128];
    snprintf(head, sizeof(head), "POST /hold HTTP/1.1\r\nContent-Length: %d\r\n\r\n", 200000);
    send_str(held, head);
    send_all(held, body, 200000);
    for (int i = 0; i < 1000; i++) {
        budget_now(&used, &peak);
        if (used >= 200000)
            break;
        usleep(10000);
    }
    ASSERT(used >= 200000 && used < limit);

    /* a body that would not fit is refused before it is read */
    int big = connect_tcp();
    snprintf(head, sizeof(head), "POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n", 100000);
    ASSERT_EQ(ask(big, head), 503);
    ASSERT(strstr(resp.body, "\"overloaded\"") != NULL);
    close(big);

    /* a chunked body that does not announce its size: read until the
     * budget is spent, then no more (the client stalls), however much it
     * sends */
    int slow = connect_tcp();
    send_str(slow, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1000000\r\n");
    size_t sent = send_until_stalled(slow, body, sizeof(body));
    ASSERT(sent < sizeof(body));
    budget_now(&used, &peak);
    /* what the server read: at most the limit, plus one read of 64 KiB and
     * the input parked beside it */
    ASSERT(peak <= limit + 3 * 64 * 1024);

    /* while spent, any new request is refused, as soon as its headers are in */
    int late = connect_tcp();
    ASSERT_EQ(ask(late, "GET /hello HTTP/1.1\r\n\r\n"), 503);
    ASSERT(strstr(resp.body, "the server holds too many bytes in flight") != NULL);
    struct reader *rl = reader_new(late);
    expect_eof(rl);
    free(rl);
    close(late);

    /* bytes drain: the stalled client goes (the server, which reads it no
     * more, learns it once it reads again), then the held request is
     * answered, which lets the server read again */
    struct linger lg = {1, 0};
    setsockopt(slow, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(slow);
    int ctl = connect_from("127.0.0.1", fx.control_port);
    ASSERT_EQ(ask(ctl, "GET /release HTTP/1.1\r\n\r\n"), 200);
    ASSERT_STR_EQ(resp.body, "1");
    close(ctl);
    struct reader *rh = reader_new(held);
    ASSERT(read_response(rh, &resp, false));
    ASSERT_STR_EQ(resp.body, "released");
    free(rh);
    close(held);
    wait_until_served();
    stop_server();
    fl_http_budget_free(budget);
}

TEST_TIMEOUT(a_client_that_reads_no_answers_is_paused_then_let_go, 60)
{
    const size_t limit = 512 * 1024;
    struct fl_http_budget *budget;
    ASSERT_OK(fl_http_budget_new(limit, &budget));
    struct fl_http_server_config cfg;
    fl_http_server_config_init(&cfg);
    cfg.budget = budget;
    start_server(&cfg);
    /* 16 KiB answers, pipelined by a client with a small receive buffer
     * that reads none of them */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx.port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    ASSERT_OK(connect(fd, (struct sockaddr *)&sin, sizeof(sin)));
    static char all[4000 * 32];
    size_t n = 0;
    for (int i = 0; i < 4000; i++)
        n += (size_t)snprintf(all + n, sizeof(all) - n, "GET /big HTTP/1.1\r\n\r\n");
    send_until_stalled(fd, all, n);
    size_t used, peak;
    budget_now(&used, &peak);
    /* without the budget the server would hold 4000 answers: 64 MiB */
    ASSERT(peak <= limit + 2 * 1024 * 1024);
    /* past the budget, a client leaving more than 1 MiB unread is let go */
    int answers = 0;
    char buf[65536], tail[32] = "";
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ASSERT(poll(&p, 1, 10000) == 1);
        ssize_t got = recv(fd, buf, sizeof(buf), 0);
        if (got <= 0)
            break; /* closed: the answers left unread were too many */
        for (ssize_t i = 0; i < got; i++) {
            memmove(tail, tail + 1, 15);
            tail[15] = buf[i];
            tail[16] = '\0';
            answers += memcmp(tail, "HTTP/1.1 200 OK\r", 16) == 0;
        }
    }
    ASSERT(answers > 0 && answers < 4000);
    close(fd);
    budget_now(&used, &peak);
    ASSERT(used < limit);
    stop_server();
    fl_http_budget_free(budget);
}

static int refuse_private(const struct fl_http_request *req, void *data, const char **code,
                          const char **message)
{
    if (strncmp(req->path, "/private", 8) != 0)
        return 0;
    *code = "unauthorized";
    *message = "no entry";
    return 401;
}

TEST(the_headers_hook_refuses_before_any_body_byte_is_read)
{
    struct fl_http_server_config cfg;
    fl_http_server_config_init(&cfg);
    cfg.max_body_bytes = 64u << 20;
    cfg.on_headers = refuse_private;
    start_server(&cfg);
    /* refused: no 100 Continue, no body read, the connection closes */
    int fd = connect_tcp();
    struct reader *r = reader_new(fd);
    send_str(fd, "POST /private HTTP/1.1\r\nExpect: 100-continue\r\n"
                 "Content-Length: 60000000\r\n\r\n");
    ASSERT(read_response(r, &resp, false));
    ASSERT_EQ(resp.status, 401);
    ASSERT_STR_EQ(resp.body, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"no entry\"}}");
    ASSERT(strstr(resp.head, "Connection: close\r\n") != NULL);
    expect_eof(r);
    close(fd);
    free(r);
    /* pipelined behind a good request: the good one is answered first */
    fd = connect_tcp();
    r = reader_new(fd);
    send_str(fd, "GET /hello HTTP/1.1\r\n\r\nPOST /private/x HTTP/1.1\r\n"
                 "Content-Length: 5\r\n\r\nhello");
    ASSERT(read_response(r, &resp, false));
    ASSERT_STR_EQ(resp.body, "hello");
    ASSERT(read_response(r, &resp, false));
    ASSERT_EQ(resp.status, 401);
    expect_eof(r);
    close(fd);
    free(r);
    roundtrip("POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nok", &resp);
    ASSERT_STR_EQ(resp.body, "POST /echo|1|-|ok");
    stop_server();
}

/* The number a GET of path answers with, on a connection of its own. */
static long ask_number(const char *path)
{
    char request[128];
    snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\n\r\n", path);
    roundtrip(request, &resp);
    return strtol(resp.body, NULL, 10);
}

static bool delays_all_answered(void)
{
    return __atomic_load_n(&fx.delays_answered, __ATOMIC_SEQ_CST) ==
           __atomic_load_n(&fx.delays_started, __ATOMIC_SEQ_CST);
}

TEST(clients_that_vanish_free_everything)
{
    start_server(NULL);
    roundtrip("GET /hello HTTP/1.1\r\n\r\n", &resp);
    for (int i = 0; i < 50; i++) {
        int fd = connect_tcp();
        switch (i % 4) {
        case 0:
            send_str(fd, "GET /hello HTTP/1.1\r\nHost: x");
            break; /* mid-headers */
        case 1:
            send_str(fd, "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nab");
            break;
        case 2:
            send_str(fd, "GET /delay/100 HTTP/1.1\r\n\r\n");
            break; /* mid-handler */
        case 3:
            send_str(fd, "GET /stream HTTP/1.1\r\n\r\n");
            break; /* mid-response */
        }
        struct linger lg = {1, 0}; /* reset, not FIN */
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
    }
    /* the delayed handlers answer for gone clients; handlers were told;
     * only the connection asking is left */
    WAIT_UNTIL(delays_all_answered() && ask_number("/aborts") >= 1 && ask_number("/conns") == 1, 20,
               (void)0);
    stop_server(); /* ASan reports anything leaked */
}

TEST(unix_socket_listener)
{
    start_server(NULL);
    ASSERT(strncmp(fx.unix_addr, "unix:", 5) == 0);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    ASSERT(snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", fx.unix_addr + 5) <
           (int)sizeof(sun.sun_path));
    ASSERT_OK(connect(fd, (struct sockaddr *)&sun, sizeof(sun)));
    struct reader *r = reader_new(fd);
    send_str(fd, "GET /echo HTTP/1.1\r\n\r\n");
    ASSERT(read_response(r, &resp, false));
    ASSERT_STR_EQ(resp.body, "GET /echo|0|-|");
    close(fd);
    free(r);
    stop_server();
    ASSERT(access(fx.unix_addr + 5, F_OK) != 0); /* the socket file is removed */
}

TEST(graceful_close_finishes_in_flight_requests)
{
    start_server(NULL);
    int slow = connect_tcp();
    struct reader *rs = reader_new(slow);
    send_str(slow, "GET /delay/300 HTTP/1.1\r\n\r\n");
    wait_delays_started(1); /* in flight when the close begins */
    roundtrip("GET /shutdown HTTP/1.1\r\n\r\n", &resp);
    ASSERT_STR_EQ(resp.body, "bye");
    ASSERT(read_response(rs, &resp, false));
    ASSERT_STR_EQ(resp.body, "delay 300");
    ASSERT(strstr(resp.head, "Connection: close\r\n") != NULL);
    expect_eof(rs);
    close(slow);
    free(rs);
    pthread_join(fx.thread, NULL); /* the loop ends by itself once all is closed */
    ASSERT(fx.srv == NULL);
    /* the listener is gone */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx.port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    ASSERT(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0);
    close(fd);
    ASSERT_OK(uv_loop_close(&fx.loop));
}

TEST(bad_listen_addresses_are_refused)
{
    uv_loop_t loop;
    struct fl_http_server *srv;
    char err[256];
    ASSERT_OK(uv_loop_init(&loop));
    ASSERT_OK(fl_http_server_new(&loop, NULL, handler, NULL, &srv));
    ASSERT_EQ(fl_http_server_listen(srv, "nonsense", NULL, 0, err, sizeof(err)), FL_EINVAL);
    ASSERT(strstr(err, "bad address 'nonsense'") != NULL);
    ASSERT_EQ(fl_http_server_listen(srv, "127.0.0.1:99999", NULL, 0, err, sizeof(err)), FL_EINVAL);
    ASSERT_EQ(fl_http_server_listen(srv, "unix:", NULL, 0, err, sizeof(err)), FL_EINVAL);
    char bound[300];
    ASSERT_OK(fl_http_server_listen(srv, "127.0.0.1:0", bound, sizeof(bound), err, sizeof(err)));
    int rc = fl_http_server_listen(srv, bound, NULL, 0, err, sizeof(err));
    ASSERT_EQ(rc, UV_EADDRINUSE);
    ASSERT(strstr(err, "cannot listen on") != NULL);
    fl_http_server_close(srv, 10, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&loop));
}

TEST(runtime_listen_addresses)
{
    char out[64];
    ASSERT_OK(fl_http_listen_address("unix:/run/flint/sock", out, sizeof(out)));
    ASSERT_STR_EQ(out, "unix:/run/flint/sock");
    ASSERT_OK(fl_http_listen_address("tcp:127.0.0.1:9000", out, sizeof(out)));
    ASSERT_STR_EQ(out, "127.0.0.1:9000");
    ASSERT_EQ(fl_http_listen_address(NULL, out, sizeof(out)), FL_EINVAL);
    ASSERT_EQ(fl_http_listen_address("127.0.0.1:9000", out, sizeof(out)), FL_EINVAL);
    char tiny[8];
    ASSERT_EQ(fl_http_listen_address("unix:/a/long/path", tiny, sizeof(tiny)), FL_EINVAL);
}
