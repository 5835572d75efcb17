/*
 * Unit tests for src/api's answers to writes: a write is answered once the
 * daemon says it applied it (fl_api_applied(), from its followers), not by
 * polling, and after 2 s anyway; and spec and status apart: the store holds
 * the spec alone, the status comes from the daemon, and a PUT of what a
 * GET answered (its status changed or not) writes nothing. A real SQLite
 * store and the API behind a real HTTP server on a socketpair.
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
    bool applied;             /* what the daemon holds: everything */
    const char *applied_name; /* or this one resource */
    int asked;                /* times the API asked */
    char answer[8192];
    size_t answer_len;
};

static bool applied(void *data, const char *kind, const char *name, uint64_t revision)
{
    struct world *w = data;
    w->asked++;
    return w->applied || (w->applied_name != NULL && strcmp(name, w->applied_name) == 0);
}

/* What the daemon says of a resource's status. */
static json_t *status_of(void *data, const char *kind, const char *name, bool detail)
{
    return json_pack("{s:s, s:i}", "build", "ok", "instances", 2);
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
                                .applied_data = w,
                                .status = status_of};
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

/* A client of its own on the API's server (the answers of one connection
 * leave in order; those of several do not wait for each other). */
static int connect_client(struct world *w)
{
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    ASSERT_OK(fl_http_server_adopt(w->srv, sv[0]));
    return sv[1];
}

static bool client_answered(int fd)
{
    char buf[4096];
    ssize_t r = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT | MSG_PEEK);
    if (r <= 0)
        return false;
    buf[r] = '\0';
    return strncmp(buf, "HTTP/1.1 201", 12) == 0 && strstr(buf, "\r\n\r\n") != NULL;
}

TEST(writes_waiting_together_are_each_answered_when_their_own_is_applied)
{
    struct world w;
    world_init(&w);
    static const char *const names[] = {"a", "b", "c"};
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = connect_client(&w);
        char raw[512], body[128];
        int blen = snprintf(body, sizeof(body),
                            "{\"name\":\"%s\",\"spec\":{\"runtime\":\"binary\"}}", names[i]);
        int n = snprintf(raw, sizeof(raw),
                         "POST /v1/environments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                         "Content-Length: %d\r\n\r\n%s",
                         token, blen, body);
        ASSERT_EQ(write(fds[i], raw, (size_t)n), n);
    }
    /* all three durable and waiting */
    uint64_t deadline = fl_clock_mono_ns() + 20000000000ULL;
    while (w.asked < 3 && fl_clock_mono_ns() < deadline)
        uv_run(&w.loop, UV_RUN_ONCE);
    ASSERT_EQ(w.asked, 3);
    /* the middle one, then the newest, then the oldest: each answered
     * alone, the others still waiting */
    static const int order[] = {1, 2, 0};
    bool done_by[3] = {false, false, false};
    for (int k = 0; k < 3; k++) {
        int i = order[k];
        w.applied_name = names[i];
        fl_api_applied(w.api, "environment", names[i]);
        done_by[i] = true;
        while (!client_answered(fds[i]) && fl_clock_mono_ns() < deadline)
            uv_run(&w.loop, UV_RUN_NOWAIT);
        for (int j = 0; j < 3; j++)
            ASSERT_EQ(client_answered(fds[j]), done_by[j]);
    }
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    world_release(&w);
}

/* Send a request and wait for its whole answer: the status, and the body
 * as JSON (the caller owns it). */
static int request(struct world *w, const char *method, const char *path, const char *body,
                   json_t **json)
{
    w->answer_len = 0;
    w->answer[0] = '\0';
    send_request(w, method, path, body);
    uint64_t deadline = fl_clock_mono_ns() + 20000000000ULL;
    const char *end = NULL, *len = NULL;
    for (;;) {
        end = strstr(w->answer, "\r\n\r\n");
        len = strstr(w->answer, "Content-Length: ");
        if (end != NULL && len != NULL &&
            w->answer_len >= (size_t)(end + 4 - w->answer) + strtoul(len + 16, NULL, 10))
            break;
        ASSERT(fl_clock_mono_ns() < deadline);
        step(w);
    }
    *json = json_loads(end + 4, 0, NULL);
    ASSERT(*json != NULL);
    return (int)strtol(w->answer + 9, NULL, 10);
}

struct stored {
    uint64_t revision;
    json_t *value;
    bool done;
};

static void on_stored(int err, const struct fl_store_result *res, void *data)
{
    struct stored *st = data;
    ASSERT_OK(err);
    st->revision = res->records[0].seq;
    st->value = json_loadb(res->records[0].data, res->records[0].len, 0, NULL);
    st->done = true;
}

/* What the store holds for kind/name: its revision and value. */
static struct stored stored(struct world *w, const char *kind, const char *name)
{
    struct stored st = {0};
    ASSERT_OK(fl_store_get(w->store, kind, name, on_stored, &st));
    while (!st.done)
        uv_run(&w->loop, UV_RUN_ONCE);
    ASSERT(st.value != NULL);
    return st;
}

TEST(a_put_of_what_a_get_answered_changes_nothing_whatever_its_status)
{
    struct world w;
    world_init(&w);
    w.applied = true;
    json_t *got;
    ASSERT_EQ(request(&w, "POST", "/v1/environments", env, &got), 201);
    uint64_t rev = (uint64_t)json_integer_value(json_object_get(got, "revision"));
    json_decref(got);
    /* the status is the daemon's, asked when read */
    ASSERT_EQ(request(&w, "GET", "/v1/environments/e", "", &got), 200);
    ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(got, "status"), "build")),
                  "ok");
    ASSERT_EQ(json_integer_value(json_object_get(got, "revision")), rev);
    /* sent back as it is, or with a status of the client's own: no write */
    json_t *answer;
    for (int i = 0; i < 2; i++) {
        if (i == 1)
            json_object_set_new(got, "status",
                                json_pack("{s:s, s:i}", "build", "failed", "instances", 0));
        char *text = json_dumps(got, JSON_COMPACT);
        ASSERT_EQ(request(&w, "PUT", "/v1/environments/e", text, &answer), 200);
        free(text);
        ASSERT_EQ(json_integer_value(json_object_get(answer, "revision")), rev);
        json_decref(answer);
        struct stored st = stored(&w, "environment", "e");
        ASSERT_EQ(st.revision, rev);
        /* the store holds the spec, and nothing Flint observes */
        ASSERT(json_object_get(st.value, "status") == NULL);
        ASSERT_EQ(json_object_size(st.value), 1);
        json_decref(st.value);
    }
    /* a stale revision is still a conflict, even for the same spec */
    json_object_set_new(got, "revision", json_integer((json_int_t)rev + 1));
    char *text = json_dumps(got, JSON_COMPACT);
    ASSERT_EQ(request(&w, "PUT", "/v1/environments/e", text, &answer), 409);
    free(text);
    json_decref(answer);
    /* a change of the spec is a new revision, and its status is not kept */
    json_object_set_new(got, "revision", json_integer((json_int_t)rev));
    json_object_set_new(json_object_get(got, "spec"), "poolsize", json_integer(1));
    text = json_dumps(got, JSON_COMPACT);
    ASSERT_EQ(request(&w, "PUT", "/v1/environments/e", text, &answer), 200);
    free(text);
    ASSERT(json_integer_value(json_object_get(answer, "revision")) > (json_int_t)rev);
    json_decref(answer);
    struct stored st = stored(&w, "environment", "e");
    ASSERT(st.revision > rev);
    ASSERT(json_object_get(st.value, "status") == NULL);
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(st.value, "spec"), "poolsize")),
              1);
    json_decref(st.value);
    json_decref(got);
    world_release(&w);
}
