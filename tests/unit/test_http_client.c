/*
 * Unit tests for src/http/client: against the real server of src/http on
 * its own loop thread, and against raw sockets that misbehave on purpose.
 *
 * The server's handler serves /hello, /echo (method, target, x-test header,
 * body), /delay/N, /stream (chunked), /big/N (N bytes), /conns (its open
 * connections) and /close (answers with Connection: close).
 */
#include "runner.h"

#include "base/error.h"
#include "http/client.h"
#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the server side ---- */

static uv_loop_t server_loop;
static uv_async_t server_wake;
static struct fl_http_server *server;
static pthread_t server_thread;
static char server_addr[300], server_unix[300];

struct delayed {
    uv_timer_t timer;
    struct fl_http_request *req;
};

static void delayed_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_delay(uv_timer_t *t)
{
    struct delayed *d = t->data;
    fl_http_respond(d->req, 200, NULL, 0, "late", 4);
    uv_close((uv_handle_t *)t, delayed_closed);
}

static void on_abort_delay(struct fl_http_request *req, void *data)
{
}

static void handler(struct fl_http_request *req, void *data)
{
    char body[4096];
    if (strcmp(req->path, "/hello") == 0) {
        fl_http_respond(req, 200, NULL, 0, "hello", 5);
    } else if (strcmp(req->path, "/echo") == 0) {
        const char *x = fl_http_request_header(req, "x-test", NULL);
        int n = snprintf(body, sizeof(body), "%s %s %s %.*s", req->method, req->target, x ? x : "-",
                         (int)req->body_len, req->body);
        struct fl_http_header h = {"X-Reply", 7, "yes", 3};
        fl_http_respond(req, 201, &h, 1, body, (size_t)n);
    } else if (strncmp(req->path, "/delay/", 7) == 0) {
        struct delayed *d = calloc(1, sizeof(*d));
        d->req = req;
        d->timer.data = d;
        fl_http_request_on_abort(req, on_abort_delay, NULL);
        uv_timer_init(&server_loop, &d->timer);
        uv_timer_start(&d->timer, on_delay, strtoul(req->path + 7, NULL, 10), 0);
    } else if (strcmp(req->path, "/stream") == 0) {
        fl_http_stream_begin(req, 200, NULL, 0);
        for (int i = 0; i < 10; i++)
            fl_http_stream_write(req, "0123456789", 10);
        fl_http_stream_end(req);
    } else if (strncmp(req->path, "/big/", 5) == 0) {
        size_t n = strtoul(req->path + 5, NULL, 10);
        char *big = malloc(n);
        memset(big, 'b', n);
        fl_http_respond(req, 200, NULL, 0, big, n);
        free(big);
    } else if (strcmp(req->path, "/close") == 0) {
        struct fl_http_header h = {"Connection", 10, "close", 5};
        fl_http_respond(req, 200, &h, 1, "bye", 3);
    } else if (strcmp(req->path, "/conns") == 0) {
        int n = snprintf(body, sizeof(body), "%u", fl_http_server_connections(server));
        fl_http_respond(req, 200, NULL, 0, body, (size_t)n);
    } else {
        fl_http_respond_error(req, 404, "not_found", "nothing at %s", req->path);
    }
}

static void server_closed(void *data)
{
    uv_close((uv_handle_t *)&server_wake, NULL);
}

static void on_server_wake(uv_async_t *a)
{
    fl_http_server_close(server, 100, server_closed, NULL);
}

static void *server_main(void *arg)
{
    uv_run(&server_loop, UV_RUN_DEFAULT);
    return NULL;
}

static void start_server(const struct fl_http_server_config *cfg)
{
    char path[300], err[300];
    ASSERT_OK(uv_loop_init(&server_loop));
    ASSERT_OK(uv_async_init(&server_loop, &server_wake, on_server_wake));
    ASSERT_OK(fl_http_server_new(&server_loop, cfg, handler, NULL, &server));
    ASSERT_OK(fl_http_server_listen(server, "127.0.0.1:0", server_addr, sizeof(server_addr), err,
                                    sizeof(err)));
    snprintf(path, sizeof(path), "unix:%s/s.sock", fl_test_tmpdir());
    ASSERT_OK(
        fl_http_server_listen(server, path, server_unix, sizeof(server_unix), err, sizeof(err)));
    ASSERT_OK(pthread_create(&server_thread, NULL, server_main, NULL));
}

static void stop_server(void)
{
    uv_async_send(&server_wake);
    pthread_join(server_thread, NULL);
    ASSERT_OK(uv_loop_close(&server_loop));
}

/* ---- the client side ---- */

static uv_loop_t loop;
static struct fl_http_client *client;

struct result {
    bool done;
    int err;
    int status;
    char body[1 << 17];
    size_t body_len;
    char reply_header[64];
};

static void on_response(int err, const struct fl_http_client_response *resp, void *data)
{
    struct result *r = data;
    r->done = true;
    r->err = err;
    if (err == 0) {
        r->status = resp->status;
        r->body_len = resp->body ? resp->body_len : r->body_len;
        if (resp->body != NULL) {
            ASSERT(resp->body_len < sizeof(r->body));
            memcpy(r->body, resp->body, resp->body_len);
            r->body[resp->body_len] = '\0';
        }
        const char *h = fl_http_client_header(resp, "x-reply", NULL);
        snprintf(r->reply_header, sizeof(r->reply_header), "%s", h ? h : "");
    }
}

static void start_client(const struct fl_http_client_config *cfg)
{
    ASSERT_OK(uv_loop_init(&loop));
    ASSERT_OK(fl_http_client_new(&loop, cfg, &client));
}

static void run_until(struct result *r)
{
    while (!r->done)
        uv_run(&loop, UV_RUN_ONCE);
}

static void stop_client(void)
{
    fl_http_client_close(client, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&loop));
}

static struct result *call(const char *target, const char *method, const char *path,
                           const char *body)
{
    struct result *r = calloc(1, sizeof(*r));
    struct fl_http_header h = {"X-Test", 6, "t", 1};
    struct fl_http_client_request req = {.target = target,
                                         .method = method,
                                         .path = path,
                                         .headers = &h,
                                         .nheaders = 1,
                                         .body = body,
                                         .body_len = body ? strlen(body) : 0};
    ASSERT_OK(fl_http_client_request(client, &req, on_response, r, NULL));
    ASSERT(!r->done); /* never called back from inside the request */
    run_until(r);
    return r;
}

TEST(get_and_post_with_pooled_reuse)
{
    start_server(NULL);
    start_client(NULL);
    for (int i = 0; i < 5; i++) {
        struct result *r = call(server_addr, "POST", "/echo?x=1", "payload");
        ASSERT_OK(r->err);
        ASSERT_EQ(r->status, 201);
        ASSERT_STR_EQ(r->body, "POST /echo?x=1 t payload");
        ASSERT_STR_EQ(r->reply_header, "yes");
        free(r);
    }
    struct result *r = call(server_addr, "GET", "/conns", NULL);
    ASSERT_STR_EQ(r->body, "1"); /* every request went over one connection */
    free(r);
    ASSERT_EQ(fl_http_client_connections(client, server_addr), 1);
    r = call(server_addr, "HEAD", "/hello", NULL);
    ASSERT_OK(r->err);
    ASSERT_EQ(r->status, 200);
    ASSERT_EQ(r->body_len, 0);
    free(r);
    r = call(server_addr, "GET", "/hello", NULL); /* HEAD left the connection usable */
    ASSERT_STR_EQ(r->body, "hello");
    free(r);
    stop_client();
    stop_server();
}

TEST(unix_socket_targets_and_chunked_responses)
{
    start_server(NULL);
    start_client(NULL);
    struct result *r = call(server_unix, "GET", "/stream", NULL);
    ASSERT_OK(r->err);
    ASSERT_EQ(r->body_len, 100);
    ASSERT(strncmp(r->body, "0123456789012", 13) == 0);
    free(r);
    r = call(server_unix, "GET", "/big/100000", NULL);
    ASSERT_OK(r->err);
    ASSERT_EQ(r->body_len, 100000);
    free(r);
    stop_client();
    stop_server();
}

struct streamed {
    int status;
    size_t bytes;
    int chunks;
};

static int on_head(const struct fl_http_client_response *head, void *data)
{
    ((struct result *)data)->status = head->status;
    return 0;
}

static int on_chunk(const char *chunk, size_t len, void *data)
{
    struct result *r = data;
    r->body_len += len;
    return 0;
}

TEST(streamed_responses_and_the_size_limit)
{
    struct fl_http_client_config cfg;
    fl_http_client_config_init(&cfg);
    cfg.max_response_bytes = 1000;
    start_server(NULL);
    start_client(&cfg);
    struct result *r = call(server_addr, "GET", "/big/1001", NULL);
    ASSERT_EQ(r->err, FL_ETOOBIG);
    free(r);
    r = call(server_addr, "GET", "/big/1000", NULL);
    ASSERT_OK(r->err);
    free(r);
    /* streamed: no limit applies, the body arrives in pieces */
    r = calloc(1, sizeof(*r));
    struct fl_http_client_request req = {
        .target = server_addr, .method = "GET", .path = "/big/50000"};
    ASSERT_OK(fl_http_client_request_stream(client, &req, on_head, on_chunk, on_response, r, NULL));
    run_until(r);
    ASSERT_OK(r->err);
    ASSERT_EQ(r->status, 200);
    ASSERT_EQ(r->body_len, 50000);
    free(r);
    stop_client();
    stop_server();
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    bind(fd, (struct sockaddr *)&sin, sizeof(sin));
    socklen_t len = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    close(fd);
    return ntohs(sin.sin_port);
}

TEST(connect_errors_are_safe_to_retry)
{
    start_client(NULL);
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", closed_port());
    struct result *r = call(target, "POST", "/x", "data");
    ASSERT_EQ(r->err, FL_ECONNECT);
    free(r);
    snprintf(target, sizeof(target), "unix:%s/nobody.sock", fl_test_tmpdir());
    r = call(target, "GET", "/x", NULL);
    ASSERT_EQ(r->err, FL_ECONNECT);
    free(r);
    struct fl_http_client_request bad = {.target = "no-port", .method = "GET", .path = "/"};
    ASSERT_EQ(fl_http_client_request(client, &bad, on_response, NULL, NULL), FL_EINVAL);
    bad.target = "127.0.0.1:80";
    bad.path = "relative";
    ASSERT_EQ(fl_http_client_request(client, &bad, on_response, NULL, NULL), FL_EINVAL);
    bad.path = "/x";
    /* headers that would inject others, or that no server may take */
    const struct fl_http_header evil[] = {
        {"X-Evil", 6, "a\r\nInjected: 1", 15},
        {"X-Nul", 5, "a\0b", 3},
        {"X-Ctl", 5, "\x01", 1},
        {"X Space", 7, "v", 1},
        {"X:Colon", 7, "v", 1},
        {"", 0, "v", 1},
        {"X-Evil\r\nA", 10, "v", 1},
        {"X-\x80", 3, "v", 1},
    };
    bad.nheaders = 1;
    for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
        bad.headers = &evil[i];
        if (fl_http_client_request(client, &bad, on_response, NULL, NULL) != FL_EINVAL)
            fl_test_fail(__FILE__, __LINE__, "header %zu was accepted", i);
    }
    stop_client();
}

/* A raw server that reads one request and then misbehaves as told. */
struct raw_server {
    int listen_fd;
    int port;
    const char *reply; /* sent after reading a request; NULL: close at once */
    int requests;      /* how many to answer before the last one misbehaves */
    bool second;       /* then accept one more connection (for 1 s) and answer once */
    int second_served;
    pthread_t thread;
};

static void *raw_main(void *arg)
{
    struct raw_server *rs = arg;
    int fd = accept(rs->listen_fd, NULL, NULL);
    char buf[4096];
    for (int i = 0; i < rs->requests; i++) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        if (write(fd, ok, strlen(ok)) < 0)
            break;
    }
    if (read(fd, buf, sizeof(buf)) > 0 && rs->reply != NULL) {
        if (write(fd, rs->reply, strlen(rs->reply)) < 0) {
        }
    }
    close(fd);
    struct pollfd p = {.fd = rs->listen_fd, .events = POLLIN};
    if (rs->second && poll(&p, 1, 1000) == 1) {
        fd = accept(rs->listen_fd, NULL, NULL);
        const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nretry";
        if (read(fd, buf, sizeof(buf)) > 0 && write(fd, ok, strlen(ok)) > 0)
            rs->second_served = 1;
        close(fd);
    }
    return NULL;
}

static void raw_start(struct raw_server *rs)
{
    rs->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    ASSERT_OK(bind(rs->listen_fd, (struct sockaddr *)&sin, sizeof(sin)));
    socklen_t len = sizeof(sin);
    getsockname(rs->listen_fd, (struct sockaddr *)&sin, &len);
    rs->port = ntohs(sin.sin_port);
    ASSERT_OK(listen(rs->listen_fd, 8));
    ASSERT_OK(pthread_create(&rs->thread, NULL, raw_main, rs));
}

static void raw_stop(struct raw_server *rs)
{
    pthread_join(rs->thread, NULL);
    close(rs->listen_fd);
}

TEST(failures_after_sending_are_not_safe_to_retry)
{
    start_client(NULL);
    char target[64];
    const char *cases[] = {NULL, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                           "this is not http\r\n\r\n",
                           /* a control character where a header value starts */
                           "HTTP/1.1 200 OK\r\nX-A:\x01\r\nContent-Length: 0\r\n\r\n",
                           "HTTP/1.1 200 OK\r\nX-A: \x7f\r\nContent-Length: 0\r\n\r\n"};
    int expected[] = {FL_ESENT, FL_ESENT, FL_EPROTO, FL_EPROTO, FL_EPROTO};
    for (int i = 0; i < 5; i++) {
        struct raw_server rs = {.reply = cases[i]};
        raw_start(&rs);
        snprintf(target, sizeof(target), "127.0.0.1:%d", rs.port);
        struct result *r = call(target, "POST", "/charge", "100");
        if (r->err != expected[i])
            fl_test_fail(__FILE__, __LINE__, "case %d: %s", i, fl_errname(r->err));
        free(r);
        raw_stop(&rs);
    }
    /* a response that runs until the connection closes is whole at EOF */
    struct raw_server rs = {.reply = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close"};
    raw_start(&rs);
    snprintf(target, sizeof(target), "127.0.0.1:%d", rs.port);
    struct result *r = call(target, "GET", "/", NULL);
    ASSERT_OK(r->err);
    ASSERT_STR_EQ(r->body, "until close");
    free(r);
    raw_stop(&rs);
    stop_client();
}

TEST(a_dead_pooled_connection_is_retried_only_for_idempotent_requests)
{
    start_client(NULL);
    char target[64];
    for (int idempotent = 0; idempotent < 2; idempotent++) {
        /* answers one request, then closes after reading the second */
        struct raw_server rs = {.reply = NULL, .requests = 1, .second = true};
        raw_start(&rs);
        snprintf(target, sizeof(target), "127.0.0.1:%d", rs.port);
        struct result *r = call(target, "GET", "/one", NULL);
        ASSERT_OK(r->err);
        free(r);
        /* the second goes over the pooled connection, which dies unanswered */
        r = calloc(1, sizeof(*r));
        struct fl_http_client_request req = {
            .target = target, .method = "PUT", .path = "/two", .idempotent = idempotent};
        ASSERT_OK(fl_http_client_request(client, &req, on_response, r, NULL));
        run_until(r);
        if (idempotent) {
            ASSERT_OK(r->err); /* sent again, on a new connection */
            ASSERT_STR_EQ(r->body, "retry");
        } else {
            ASSERT_EQ(r->err, FL_ESENT); /* never sent twice */
        }
        free(r);
        raw_stop(&rs);
        ASSERT_EQ(rs.second_served, idempotent);
    }
    stop_client();
}

TEST(response_timeout_and_cancel)
{
    start_server(NULL);
    start_client(NULL);
    struct result *r = calloc(1, sizeof(*r));
    struct fl_http_client_request req = {
        .target = server_addr, .method = "GET", .path = "/delay/2000", .timeout_ms = 100};
    ASSERT_OK(fl_http_client_request(client, &req, on_response, r, NULL));
    run_until(r);
    ASSERT_EQ(r->err, FL_ETIMEDOUT);
    free(r);

    r = calloc(1, sizeof(*r));
    struct fl_http_call *c;
    req.timeout_ms = 0;
    ASSERT_OK(fl_http_client_request(client, &req, on_response, r, &c));
    uv_run(&loop, UV_RUN_NOWAIT);
    fl_http_client_cancel(c);
    ASSERT(r->done);
    ASSERT_EQ(r->err, FL_ECANCELED);
    free(r);
    /* the client still works */
    r = call(server_addr, "GET", "/hello", NULL);
    ASSERT_STR_EQ(r->body, "hello");
    free(r);
    stop_client();
    stop_server();
}

TEST(connection_limit_queues_and_refuses_past_the_queue)
{
    struct fl_http_client_config cfg;
    fl_http_client_config_init(&cfg);
    cfg.max_conns = 2;
    cfg.max_queued = 6;
    start_server(NULL);
    start_client(&cfg);
    struct result *r[8];
    struct fl_http_client_request req = {
        .target = server_addr, .method = "GET", .path = "/delay/50"};
    for (int i = 0; i < 8; i++) {
        r[i] = calloc(1, sizeof(*r[i]));
        ASSERT_OK(fl_http_client_request(client, &req, on_response, r[i], NULL));
    }
    ASSERT_EQ(fl_http_client_connections(client, server_addr), 2);
    ASSERT_EQ(fl_http_client_request(client, &req, on_response, NULL, NULL), FL_EAGAIN);
    for (int i = 0; i < 8; i++) {
        run_until(r[i]);
        ASSERT_OK(r[i]->err);
        ASSERT_STR_EQ(r[i]->body, "late");
        free(r[i]);
    }
    ASSERT(fl_http_client_connections(client, server_addr) <= 2);
    /* closing cancels what is queued */
    for (int i = 0; i < 4; i++) {
        r[i] = calloc(1, sizeof(*r[i]));
        ASSERT_OK(fl_http_client_request(client, &req, on_response, r[i], NULL));
    }
    fl_http_client_close(client, NULL, NULL);
    for (int i = 0; i < 4; i++) {
        ASSERT(r[i]->done);
        ASSERT_EQ(r[i]->err, FL_ECANCELED);
        free(r[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&loop));
    stop_server();
}

TEST(idle_connections_closed_by_the_server_leave_the_pool)
{
    struct fl_http_server_config scfg;
    fl_http_server_config_init(&scfg);
    scfg.idle_timeout_ms = 100;
    start_server(&scfg);
    start_client(NULL);
    struct result *r = call(server_addr, "GET", "/hello", NULL);
    ASSERT_OK(r->err);
    free(r);
    ASSERT_EQ(fl_http_client_connections(client, server_addr), 1);
    /* the server drops the idle connection; the client notices */
    WAIT_UNTIL(fl_http_client_connections(client, server_addr) == 0, 20,
               uv_run(&loop, UV_RUN_NOWAIT));
    r = call(server_addr, "POST", "/echo", "again"); /* not idempotent: must not fail */
    ASSERT_OK(r->err);
    ASSERT_STR_EQ(r->body, "POST /echo t again");
    free(r);
    stop_client();
    stop_server();
}

/* ---- pipelining ---- */

static void set_flag(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static struct result *start_call(const struct fl_http_client_request *req, struct fl_http_call **c)
{
    struct result *r = calloc(1, sizeof(*r));
    ASSERT_OK(fl_http_client_request(client, req, on_response, r, c));
    return r;
}

TEST(pipelined_requests_share_connections_and_get_their_own_answers)
{
    struct fl_http_client_config cfg;
    fl_http_client_config_init(&cfg);
    cfg.pipeline_conns = 2;
    cfg.pipeline_depth = 16;
    start_server(NULL);
    start_client(&cfg);
    enum { N = 40 };
    struct result *r[N];
    char bodies[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], sizeof(bodies[i]), "n%d", i);
        struct fl_http_client_request req = {.target = server_unix,
                                             .method = "POST",
                                             .path = i % 3 == 0 ? "/delay/20" : "/echo",
                                             .body = bodies[i],
                                             .body_len = strlen(bodies[i]),
                                             .pipeline = true};
        r[i] = start_call(&req, NULL);
    }
    /* two connections of 16, then a third for the rest */
    ASSERT_EQ(fl_http_client_connections(client, server_unix), 3);
    for (int i = 0; i < N; i++) {
        run_until(r[i]);
        ASSERT_OK(r[i]->err);
        char want[700];
        if (i % 3 == 0)
            snprintf(want, sizeof(want), "late");
        else
            snprintf(want, sizeof(want), "POST /echo - %s", bodies[i]);
        ASSERT_STR_EQ(r[i]->body, want);
        free(r[i]);
    }
    ASSERT_EQ(fl_http_client_connections(client, server_unix), 3);
    stop_client();
    stop_server();
}

TEST(a_canceled_pipelined_request_leaves_the_others_alone)
{
    start_server(NULL);
    struct fl_http_client_config cfg;
    fl_http_client_config_init(&cfg);
    cfg.pipeline_conns = 1;
    start_client(&cfg);
    struct fl_http_client_request slow = {
        .target = server_addr, .method = "GET", .path = "/delay/50", .pipeline = true};
    struct fl_http_client_request fast = {
        .target = server_addr, .method = "GET", .path = "/hello", .pipeline = true};
    struct fl_http_call *c;
    struct result *a = start_call(&slow, &c);
    struct result *b = start_call(&fast, NULL);
    /* both are written well before the slow one is answered */
    uv_timer_t t;
    bool fired = false;
    uv_timer_init(&loop, &t);
    t.data = &fired;
    uv_timer_start(&t, set_flag, 20, 0);
    while (!fired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    ASSERT(!a->done);
    fl_http_client_cancel(c);
    ASSERT(a->done);
    ASSERT_EQ(a->err, FL_ECANCELED);
    run_until(b);
    ASSERT_OK(b->err);
    ASSERT_STR_EQ(b->body, "hello");
    /* the shared connection stayed open and serves on */
    ASSERT_EQ(fl_http_client_connections(client, server_addr), 1);
    struct result *d = start_call(&fast, NULL);
    run_until(d);
    ASSERT_STR_EQ(d->body, "hello");
    ASSERT_EQ(fl_http_client_connections(client, server_addr), 1);
    free(a);
    free(b);
    free(d);
    stop_client();
    stop_server();
}

TEST(a_pipelined_timeout_fails_what_was_sent_behind_it)
{
    start_server(NULL);
    struct fl_http_client_config cfg;
    fl_http_client_config_init(&cfg);
    cfg.pipeline_conns = 1;
    start_client(&cfg);
    struct fl_http_client_request slow = {.target = server_addr,
                                          .method = "POST",
                                          .path = "/delay/600",
                                          .timeout_ms = 100,
                                          .pipeline = true};
    struct fl_http_client_request behind = {
        .target = server_addr, .method = "POST", .path = "/echo", .pipeline = true};
    struct result *a = start_call(&slow, NULL);
    struct result *b = start_call(&behind, NULL);
    run_until(a);
    run_until(b);
    ASSERT_EQ(a->err, FL_ETIMEDOUT);
    ASSERT_EQ(b->err, FL_ESENT); /* written, maybe acted on: not resent */
    free(a);
    free(b);
    /* requests behind an answer that closes the connection were not
     * processed: they are sent again, idempotent or not */
    struct fl_http_header close = {"Connection", 10, "close", 5};
    struct fl_http_client_request closing = {.target = server_addr,
                                             .method = "GET",
                                             .path = "/hello",
                                             .headers = &close,
                                             .nheaders = 1,
                                             .pipeline = true};
    struct fl_http_client_request again = {.target = server_addr,
                                           .method = "GET",
                                           .path = "/hello",
                                           .idempotent = true,
                                           .pipeline = true};
    struct fl_http_client_request post = {.target = server_addr,
                                          .method = "POST",
                                          .path = "/echo",
                                          .body = "once",
                                          .body_len = 4,
                                          .pipeline = true};
    a = start_call(&closing, NULL);
    b = start_call(&again, NULL);
    struct result *d = start_call(&post, NULL);
    run_until(a);
    run_until(b);
    run_until(d);
    ASSERT_OK(a->err);
    ASSERT_OK(b->err);
    ASSERT_OK(d->err);
    ASSERT_STR_EQ(a->body, "hello");
    ASSERT_STR_EQ(b->body, "hello");
    ASSERT_STR_EQ(d->body, "POST /echo - once");
    free(a);
    free(b);
    free(d);
    stop_client();
    stop_server();
}
