/*
 * Unit tests for src/api's answers to writes: a write is answered once the
 * daemon says it applied it (fl_api_applied(), from its followers), not by
 * polling, and after 2 s anyway. A real SQLite store and the API behind a
 * real HTTP server on a socketpair.
 */
#include "runner.h"

#include "api/api.h"
#include "base/clock.h"
#include "http/server.h"
#include "store/store.h"

#include <sys/socket.h>
#include <unistd.h>

struct world {
    uv_loop_t loop;
    struct fl_store *store;
    struct fl_api *api;
    struct fl_http_server *srv;
    int client;
    bool applied; /* what the daemon holds */
    int asked;    /* times the API asked */
    char answer[8192];
    size_t answer_len;
};

static bool applied(void *data, const char *kind, const char *name, uint64_t revision)
{
    struct world *w = data;
    w->asked++;
    return w->applied;
}

static char token[65];

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    ASSERT_OK(uv_loop_init(&w->loop));
    char err[512], uri[4200];
    snprintf(uri, sizeof(uri), "sqlite:%s", fl_test_tmpdir());
    ASSERT_OK(fl_store_open(&w->loop, uri, NULL, &w->store, err, sizeof(err)));
    memset(token, 'a', 64);
    struct fl_api_config cfg = {.data_dir = fl_test_tmpdir(),
                                .token = token,
                                .store = w->store,
                                .version = "test",
                                .sandbox = "none",
                                .applied = applied,
                                .applied_data = w};
    ASSERT_OK(fl_api_new(&w->loop, &cfg, &w->api));
    ASSERT_OK(fl_http_server_new(&w->loop, NULL, fl_api_handle, w->api, &w->srv));
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    ASSERT_OK(fl_http_server_adopt(w->srv, sv[0]));
    w->client = sv[1];
}

static void send_request(struct world *w, const char *method, const char *path, const char *body)
{
    char raw[2048];
    int n = snprintf(raw, sizeof(raw),
                     "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, token, strlen(body), body);
    ASSERT_EQ(write(w->client, raw, (size_t)n), n);
}

/* Run the loop once, reading what the API answered so far. */
static void step(struct world *w)
{
    uv_run(&w->loop, UV_RUN_ONCE);
    ssize_t r = recv(w->client, w->answer + w->answer_len, sizeof(w->answer) - 1 - w->answer_len,
                     MSG_DONTWAIT);
    if (r > 0)
        w->answer_len += (size_t)r;
    w->answer[w->answer_len] = '\0';
}

static bool answered(const struct world *w)
{
    return strstr(w->answer, "\r\n\r\n") != NULL;
}

static void done(void *data)
{
    *(bool *)data = true;
}

static void world_release(struct world *w)
{
    close(w->client);
    bool srv_closed = false, store_closed = false;
    fl_http_server_close(w->srv, 0, done, &srv_closed);
    while (!srv_closed)
        uv_run(&w->loop, UV_RUN_ONCE);
    fl_api_free(w->api);
    fl_store_close(w->store, done, &store_closed);
    while (!store_closed)
        uv_run(&w->loop, UV_RUN_ONCE);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&w->loop));
}

static const char env[] = "{\"name\":\"e\",\"spec\":{\"runtime\":\"binary\"}}";

TEST(a_write_is_answered_when_the_daemon_applies_it_without_polling)
{
    struct world w;
    world_init(&w);
    send_request(&w, "POST", "/v1/environments", env);
    /* the put is durable: the API asks once whether it is applied */
    uint64_t deadline = fl_clock_mono_ns() + 20000000000ULL;
    while (w.asked == 0 && fl_clock_mono_ns() < deadline)
        step(&w);
    ASSERT_EQ(w.asked, 1);
    ASSERT(!answered(&w));
    /* news of another resource changes nothing, and asks nothing */
    fl_api_applied(w.api, "environment", "other");
    fl_api_applied(w.api, "function", "e");
    ASSERT_EQ(w.asked, 1);
    /* news of this one, not yet at the revision: still waiting */
    fl_api_applied(w.api, "environment", "e");
    ASSERT_EQ(w.asked, 2);
    for (int i = 0; i < 5; i++)
        uv_run(&w.loop, UV_RUN_NOWAIT);
    ASSERT_EQ(w.asked, 2); /* nothing polls in between */
    w.applied = true;
    fl_api_applied(w.api, "environment", "e");
    while (!answered(&w) && fl_clock_mono_ns() < deadline)
        step(&w);
    ASSERT(strncmp(w.answer, "HTTP/1.1 201", 12) == 0);
    ASSERT(strstr(w.answer, "\"name\":\"e\"") != NULL);
    world_release(&w);
}

TEST(a_write_never_applied_is_answered_after_two_seconds)
{
    struct world w;
    world_init(&w);
    send_request(&w, "POST", "/v1/environments", env);
    uint64_t start = fl_clock_mono_ns(), deadline = start + 20000000000ULL;
    while (!answered(&w) && fl_clock_mono_ns() < deadline)
        step(&w);
    ASSERT(strncmp(w.answer, "HTTP/1.1 201", 12) == 0);
    ASSERT(fl_clock_mono_ns() - start >= 2000000000ULL); /* not before the settle time */
    ASSERT_EQ(w.asked, 1);
    world_release(&w);
}
