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
    char addr[300];
    char unix_addr[300];
    int port;
    int aborts;
    bool shutdown_requested;
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
    uv_close((uv_handle_t *)t, delayed_closed);
}

static void on_abort(struct fl_http_request *req, void *data)
{
    fx.aborts++;
}

static void server_done(void *data)
{
    fx.srv = NULL;
    uv_close((uv_handle_t *)&fx.wake, NULL);
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
        struct fl_http_header cl = {"Content-Length", 14, "1234", 4};
        fl_http_respond(req, 200, &cl, 1, "", 0);
    } else if (strcmp(req->path, "/conns") == 0) {
        n = snprintf(body, sizeof(body), "%u", fl_http_server_connections(fx.srv));
        fl_http_respond(req, 200, NULL, 0, body, (size_t)n);
    } else if (strcmp(req->path, "/aborts") == 0) {
        n = snprintf(body, sizeof(body), "%d", fx.aborts);
        fl_http_respond(req, 200, NULL, 0, body, (size_t)n);
    } else if (strcmp(req->path, "/shutdown") == 0) {
        fl_http_respond(req, 200, NULL, 0, "bye", 3);
        fl_http_server_close(fx.srv, 2000, server_done, NULL);
    } else {
        fl_http_respond_error(req, 404, "not_found", "no route for '%s'", req->path);
    }
}

static void on_wake(uv_async_t *a)
{
    if (fx.srv != NULL)
        fl_http_server_close(fx.srv, 100, server_done, NULL);
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
    ASSERT_OK(
        fl_http_server_listen(fx.srv, "127.0.0.1:0", fx.addr, sizeof(fx.addr), err, sizeof(err)));
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

static int connect_tcp(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx.port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    ASSERT_OK(connect(fd, (struct sockaddr *)&sin, sizeof(sin)));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
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

TEST(timeouts_answer_408_or_close)
{
    struct fl_http_server_config cfg;
    fl_http_server_config_init(&cfg);
    cfg.header_timeout_ms = 200;
    cfg.body_timeout_ms = 200;
    cfg.idle_timeout_ms = 200;
    start_server(&cfg);
    int fd = connect_tcp();
    struct reader *r = reader_new(fd);
    send_str(fd, "GET /hello HTTP/1.1\r\nHost: slow");
    ASSERT(read_response(r, &resp, false));
    ASSERT_EQ(resp.status, 408);
    ASSERT(strstr(resp.body, "headers did not arrive in time") != NULL);
    expect_eof(r);
    close(fd);
    free(r);

    fd = connect_tcp();
    r = reader_new(fd);
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

TEST(connection_limit_answers_503)
{
    struct fl_http_server_config cfg;
    fl_http_server_config_init(&cfg);
    cfg.max_connections = 2;
    start_server(&cfg);
    int a = connect_tcp(), b = connect_tcp();
    struct reader *ra = reader_new(a);
    send_str(a, "GET /hello HTTP/1.1\r\n\r\n"); /* make sure both are accepted */
    ASSERT(read_response(ra, &resp, false));
    int c = connect_tcp();
    struct reader *rc = reader_new(c);
    ASSERT(read_response(rc, &resp, false));
    ASSERT_EQ(resp.status, 503);
    ASSERT(strstr(resp.body, "too_many_connections") != NULL);
    close(c);
    close(b);
    /* once one goes, a new one is served */
    usleep(100000);
    roundtrip("GET /hello HTTP/1.1\r\n\r\n", &resp);
    ASSERT_EQ(resp.status, 200);
    close(a);
    free(ra);
    free(rc);
    stop_server();
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
    usleep(300000); /* the delayed handlers answer for gone clients */
    roundtrip("GET /aborts HTTP/1.1\r\n\r\n", &resp);
    ASSERT(strtol(resp.body, NULL, 10) >= 1); /* handlers were told */
    roundtrip("GET /conns HTTP/1.1\r\n\r\n", &resp);
    ASSERT_STR_EQ(resp.body, "1"); /* only this one is left */
    stop_server();                 /* ASan reports anything leaked */
}

TEST(unix_socket_listener)
{
    start_server(NULL);
    ASSERT(strncmp(fx.unix_addr, "unix:", 5) == 0);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", fx.unix_addr + 5);
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
    usleep(50000);
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
