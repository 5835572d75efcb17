/*
 * Unit tests for src/invoke: the invoker with handlers of the test's own
 * (what a call carries to its handler, outcomes, cancel, deadlines, the
 * header budget, capacity and room, close), and fl_invoke_http() behind a
 * real HTTP server on a socketpair. The executor behind it is driven end to
 * end by tests/e2e.
 */
#include "runner.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/metrics.h"
#include "invoke/invoke.h"

#include <sys/socket.h>
#include <unistd.h>

/* ---- a handler of the test's own ---- */

struct fake {
    struct fl_invoker *inv;
    struct fl_invoke *call; /* the last started */
    int started, canceled;
    bool fail_start;
    struct fl_invoke_capacity cap;
    bool cap_known;
    /* what the last call carried */
    char name[64], method[16], path[64], uri[128], id[64], trigger[16], trigger_name[64];
    bool has_query;
    unsigned attempt;
    size_t nheaders, nadded;
    char headers[2048]; /* "name: value\n" each, caller's then added */
};

static void append_headers(char *out, size_t size, const struct fl_http_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s: %s\n", h[i].name, h[i].value);
    }
}

static int fake_start(void *data, struct fl_invoke *call)
{
    struct fake *f = data;
    if (f->fail_start)
        return FL_EAGAIN;
    f->started++;
    f->call = call;
    const struct fl_invoke_request *r = fl_invoke_request_of(call);
    snprintf(f->name, sizeof(f->name), "%s", r->target.name);
    snprintf(f->method, sizeof(f->method), "%s", r->method);
    snprintf(f->path, sizeof(f->path), "%s", r->path);
    snprintf(f->uri, sizeof(f->uri), "%s", fl_invoke_uri(call));
    snprintf(f->id, sizeof(f->id), "%s", fl_invoke_id(call));
    snprintf(f->trigger, sizeof(f->trigger), "%s", fl_invoke_trigger_name(r->trigger));
    snprintf(f->trigger_name, sizeof(f->trigger_name), "%s",
             r->trigger_name ? r->trigger_name : "(none)");
    f->has_query = r->query != NULL;
    f->attempt = r->attempt;
    f->nheaders = r->nheaders;
    f->nadded = r->nadded;
    f->headers[0] = '\0';
    append_headers(f->headers, sizeof(f->headers), r->headers, r->nheaders);
    append_headers(f->headers, sizeof(f->headers), r->added, r->nadded);
    return 0;
}

static void fake_cancel(void *data, struct fl_invoke *call)
{
    struct fake *f = data;
    f->canceled++;
    if (f->call == call)
        f->call = NULL;
}

static int fake_capacity(void *data, const char *name, struct fl_invoke_capacity *out)
{
    struct fake *f = data;
    if (!f->cap_known || strcmp(name, "f") != 0)
        return FL_ENOENT;
    *out = f->cap;
    return 0;
}

static const struct fl_invoke_handler fake_handler = {
    .start = fake_start, .cancel = fake_cancel, .capacity = fake_capacity};

/* Answer the fake's last call with a response. */
static void fake_answer(struct fake *f, int status, const char *body)
{
    static const struct fl_http_header h = {"X-Answer", 8, "yes", 3};
    struct fl_invoke_outcome o = {.error = FL_INVOKE_OK,
                                  .status = status,
                                  .headers = &h,
                                  .nheaders = 1,
                                  .body = body,
                                  .body_len = strlen(body)};
    struct fl_invoke *call = f->call;
    f->call = NULL;
    fl_invoke_finish(call, &o);
}

/* ---- what the caller gets ---- */

struct got {
    int calls;
    enum fl_invoke_error error;
    int status;
    char code[64], message[256], id[64], body[1024], headers[512];
};

static void on_outcome(const struct fl_invoke_outcome *o, void *data)
{
    struct got *g = data;
    g->calls++;
    g->error = o->error;
    g->status = o->status;
    snprintf(g->code, sizeof(g->code), "%s", o->code ? o->code : "");
    snprintf(g->message, sizeof(g->message), "%s", o->message ? o->message : "");
    snprintf(g->id, sizeof(g->id), "%s", o->invocation_id ? o->invocation_id : "");
    snprintf(g->body, sizeof(g->body), "%.*s", (int)o->body_len, o->body ? o->body : "");
    g->headers[0] = '\0';
    append_headers(g->headers, sizeof(g->headers), o->headers, o->nheaders);
}

struct world {
    uv_loop_t loop;
    struct fl_metrics *metrics;
    struct fl_invoker *inv;
    struct fake fake;
};

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    ASSERT_OK(uv_loop_init(&w->loop));
    w->metrics = fl_metrics_new();
    ASSERT(w->metrics != NULL);
    ASSERT_OK(fl_invoker_new(&w->loop, w->metrics, &w->inv));
    w->fake.inv = w->inv;
    ASSERT_OK(fl_invoker_register(w->inv, FL_INVOKE_FUNCTION, &fake_handler, &w->fake));
}

static bool closed;

static void on_closed(void *data)
{
    closed = true;
}

static void world_release(struct world *w)
{
    closed = false;
    fl_invoker_close(w->inv, on_closed, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ASSERT(closed);
    ASSERT_OK(uv_loop_close(&w->loop));
    fl_metrics_free(w->metrics);
}

static void run_until(struct world *w, const int *counter, int value)
{
    uint64_t deadline = fl_clock_mono_ns() + 20000000000ULL;
    while (*counter < value && fl_clock_mono_ns() < deadline)
        uv_run(&w->loop, UV_RUN_ONCE);
    ASSERT_EQ(*counter, value);
}

static const struct fl_http_header caller_headers[] = {
    {"Accept", 6, "text/plain", 10},
    {"X-Custom", 8, "1", 1},
};

TEST(a_call_reaches_its_handler_with_copies_and_comes_back)
{
    struct world w;
    world_init(&w);
    char name[] = "f", path[] = "/users/7", query[] = "a=1";
    char added_name[] = "X-Flint-Param-id", added_value[] = "7", trigger[] = "timetrigger/t";
    struct fl_http_header added = {added_name, strlen(added_name), added_value, 1};
    struct fl_invoke_request req = {.target = {FL_INVOKE_FUNCTION, name},
                                    .method = "POST",
                                    .path = path,
                                    .query = query,
                                    .headers = caller_headers,
                                    .nheaders = 2,
                                    .added = &added,
                                    .nadded = 1,
                                    .body = "hi",
                                    .body_len = 2,
                                    .trigger = FL_TRIGGER_MQ,
                                    .trigger_name = trigger};
    struct got g = {0};
    struct fl_invoke *call;
    ASSERT_OK(fl_invoke_start(w.inv, &req, on_outcome, &g, &call));
    /* the invoker copied what the caller's stack held */
    memset(trigger, 'x', sizeof(trigger) - 1);
    memset(name, 'x', sizeof(name) - 1);
    memset(path, 'x', sizeof(path) - 1);
    memset(added_name, 'x', sizeof(added_name) - 1);
    ASSERT_EQ(w.fake.started, 1);
    ASSERT_STR_EQ(w.fake.name, "f");
    ASSERT_STR_EQ(w.fake.method, "POST");
    ASSERT_STR_EQ(w.fake.path, "/users/7");
    ASSERT_STR_EQ(w.fake.uri, "/users/7?a=1");
    ASSERT_STR_EQ(w.fake.trigger, "mq");
    ASSERT_STR_EQ(w.fake.trigger_name, "timetrigger/t");
    ASSERT_STR_EQ(fl_invoke_request_of(call)->trigger_name, "timetrigger/t");
    ASSERT_EQ(w.fake.attempt, 1);
    ASSERT_EQ(strlen(w.fake.id), 36); /* a UUID made for it */
    ASSERT_STR_EQ(fl_invoke_id(call), w.fake.id);
    ASSERT_STR_EQ(fl_invoke_request_of(call)->added[0].name, "X-Flint-Param-id");
    ASSERT_EQ(g.calls, 0);
    fake_answer(&w.fake, 201, "made");
    ASSERT_EQ(g.calls, 1);
    ASSERT_EQ(g.error, FL_INVOKE_OK);
    ASSERT_EQ(g.status, 201);
    ASSERT_STR_EQ(g.body, "made");
    ASSERT_STR_EQ(g.id, w.fake.id);
    ASSERT(strstr(g.headers, "X-Answer: yes") != NULL);
    /* counted as the router always counted calls */
    struct fl_buf out;
    fl_buf_init(&out, 1 << 20);
    ASSERT_OK(fl_metrics_render(w.metrics, &out));
    ASSERT(strstr(out.data, "flint_invocations_total{function=\"f\",code=\"201\"} 1") != NULL);
    ASSERT(strstr(out.data, "flint_invocation_seconds_count{function=\"f\"} 1") != NULL);
    fl_buf_release(&out);
    /* a trigger name past its bound is refused, and nothing starts */
    char long_trigger[FL_INVOKE_TRIGGER_MAX + 2];
    memset(long_trigger, 't', sizeof(long_trigger) - 1);
    long_trigger[sizeof(long_trigger) - 1] = '\0';
    req.target.name = "f";
    req.path = "/";
    req.trigger_name = long_trigger;
    ASSERT_EQ(fl_invoke_start(w.inv, &req, on_outcome, &g, NULL), FL_EINVAL);
    ASSERT_EQ(w.fake.started, 1);
    world_release(&w);
}

TEST(a_path_with_an_empty_query_keeps_its_question_mark_and_no_query_has_none)
{
    struct world w;
    world_init(&w);
    struct fl_invoke_request req = {.target = {FL_INVOKE_FUNCTION, "f"},
                                    .method = "GET",
                                    .path = "/x",
                                    .query = "",
                                    .invocation_id = "given-id",
                                    .attempt = 3};
    struct got g = {0};
    ASSERT_OK(fl_invoke_start(w.inv, &req, on_outcome, &g, NULL));
    ASSERT_STR_EQ(w.fake.uri, "/x?");
    ASSERT_STR_EQ(w.fake.id, "given-id");
    ASSERT_EQ(w.fake.attempt, 3);
    fake_answer(&w.fake, 200, "");
    req.query = NULL;
    ASSERT_OK(fl_invoke_start(w.inv, &req, on_outcome, &g, NULL));
    ASSERT_STR_EQ(w.fake.uri, "/x");
    ASSERT(!w.fake.has_query);
    fake_answer(&w.fake, 200, "");
    ASSERT_EQ(g.calls, 2);
    world_release(&w);
}

TEST(a_kind_nobody_serves_answers_not_found_from_the_loop)
{
    struct world w;
    world_init(&w);
    struct fl_invoke_request req = {
        .target = {FL_INVOKE_WORKFLOW, "wf"}, .method = "GET", .path = "/"};
    struct got g = {0};
    ASSERT_OK(fl_invoke_start(w.inv, &req, on_outcome, &g, NULL));
    ASSERT_EQ(g.calls, 0); /* never from inside the call */
    run_until(&w, &g.calls, 1);
    ASSERT_EQ(g.error, FL_INVOKE_NOT_FOUND);
    ASSERT_EQ(g.status, 404);
    ASSERT_STR_EQ(g.code, "workflow_not_found");
    ASSERT(strstr(g.body, "\"code\":\"workflow_not_found\"") != NULL);
    ASSERT(strstr(g.body, g.id) != NULL);
    ASSERT(strstr(g.headers, "Content-Type: application/json") != NULL);
    /* workflows are not counted as functions */
    struct fl_buf out;
    fl_buf_init(&out, 1 << 20);
    ASSERT_OK(fl_metrics_render(w.metrics, &out));
    ASSERT(out.data == NULL || strstr(out.data, "wf") == NULL);
    fl_buf_release(&out);
    struct fl_invoke_capacity cap;
    ASSERT_EQ(fl_invoker_capacity(w.inv, &req.target, &cap), FL_ENOENT);
    world_release(&w);
}

TEST(an_error_without_a_body_is_answered_as_json_with_its_kinds_status)
{
    struct world w;
    world_init(&w);
    struct fl_invoke_request req = {
        .target = {FL_INVOKE_FUNCTION, "f"}, .method = "GET", .path = "/"};
    static const struct {
        enum fl_invoke_error error;
        int status;
    } kinds[] = {{FL_INVOKE_NOT_FOUND, 404},    {FL_INVOKE_BUSY, 429},
                 {FL_INVOKE_UNAVAILABLE, 503},  {FL_INVOKE_FAILED, 500},
                 {FL_INVOKE_TIMEOUT, 504},      {FL_INVOKE_CRASH, 502},
                 {FL_INVOKE_BAD_RESPONSE, 502}, {FL_INVOKE_TOO_LARGE, 502}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct got g = {0};
        ASSERT_OK(fl_invoke_start(w.inv, &req, on_outcome, &g, NULL));
        struct fl_invoke_outcome o = {
            .error = kinds[i].error, .code = "some_code", .message = "it \"broke\""};
        fl_invoke_finish(w.fake.call, &o);
        ASSERT_EQ(g.calls, 1);
        ASSERT_EQ(g.error, kinds[i].error);
        ASSERT_EQ(g.status, kinds[i].status);
        ASSERT_STR_EQ(g.code, "some_code");
        ASSERT(strstr(g.body, "{\"error\":{\"code\":\"some_code\",\"message\":\"it \\\"broke\\\"\","
                              "\"invocation\":\"") == g.body);
    }
    world_release(&w);
}

TEST(cancel_answers_499_at_once_and_tells_the_handler)
{
    struct world w;
    world_init(&w);
    struct fl_invoke_request req = {
        .target = {FL_INVOKE_FUNCTION, "f"}, .method = "GET", .path = "/"};
    struct got g = {0};
    struct fl_invoke *call;
    ASSERT_OK(fl_invoke_start(w.inv, &req, on_outcome, &g, &call));
    fl_invoke_cancel(call);
    ASSERT_EQ(g.calls, 1);
    ASSERT_EQ(g.error, FL_INVOKE_CANCELED);
    ASSERT_EQ(g.status, 499);
    ASSERT_EQ(w.fake.canceled, 1);
    /* a call waiting on the loop (a kind nobody serves) is canceled too */
    struct fl_invoke_request wf = {
        .target = {FL_INVOKE_WORKFLOW, "wf"}, .method = "GET", .path = "/"};
    struct got h = {0};
    ASSERT_OK(fl_invoke_start(w.inv, &wf, on_outcome, &h, &call));
    fl_invoke_cancel(call);
    ASSERT_EQ(h.calls, 1);
    uv_run(&w.loop, UV_RUN_NOWAIT);
    ASSERT_EQ(h.calls, 1);
    struct fl_buf out;
    fl_buf_init(&out, 1 << 20);
    ASSERT_OK(fl_metrics_render(w.metrics, &out));
    ASSERT(strstr(out.data, "flint_invocations_total{function=\"f\",code=\"499\"} 1") != NULL);
    fl_buf_release(&out);
    world_release(&w);
}

TEST(a_call_past_its_deadline_times_out_and_is_canceled_at_its_handler)
{
    struct world w;
    world_init(&w);
    struct fl_invoke_request req = {.target = {FL_INVOKE_FUNCTION, "f"},
                                    .method = "GET",
                                    .path = "/",
                                    .deadline_ns = fl_clock_mono_ns() + 50000000ULL};
    struct got late = {0}, early = {0}, none = {0};
    ASSERT_OK(fl_invoke_start(w.inv, &req, on_outcome, &late, NULL));
    struct fl_invoke *late_call = w.fake.call;
    req.deadline_ns = fl_clock_mono_ns() + 10000000ULL; /* before the first: goes ahead */
    ASSERT_OK(fl_invoke_start(w.inv, &req, on_outcome, &early, NULL));
    req.deadline_ns = 0;
    ASSERT_OK(fl_invoke_start(w.inv, &req, on_outcome, &none, NULL));
    struct fl_invoke *none_call = w.fake.call;
    run_until(&w, &early.calls, 1);
    ASSERT_EQ(early.error, FL_INVOKE_TIMEOUT);
    ASSERT_EQ(early.status, 504);
    ASSERT_STR_EQ(early.code, "deadline_exceeded");
    run_until(&w, &late.calls, 1);
    ASSERT_EQ(late.error, FL_INVOKE_TIMEOUT);
    ASSERT_EQ(w.fake.canceled, 2);
    ASSERT(late_call != none_call);
    ASSERT_EQ(none.calls, 0);
    w.fake.call = none_call;
    fake_answer(&w.fake, 200, "ok");
    ASSERT_EQ(none.calls, 1);
    world_release(&w);
}

TEST(the_added_header_budget_cannot_overflow)
{
    struct world w;
    world_init(&w);
    static struct fl_http_header added[FL_INVOKE_MAX_ADDED + 1];
    for (size_t i = 0; i <= FL_INVOKE_MAX_ADDED; i++)
        added[i] = (struct fl_http_header){"X-Flint-Param-p", 15, "v", 1};
    struct fl_invoke_request req = {.target = {FL_INVOKE_FUNCTION, "f"},
                                    .method = "GET",
                                    .path = "/",
                                    .added = added,
                                    .nadded = FL_INVOKE_MAX_ADDED + 1};
    struct got g = {0};
    ASSERT_EQ(fl_invoke_start(w.inv, &req, on_outcome, &g, NULL), FL_ETOOBIG);
    /* bytes: two headers of 10 KiB each are over FL_INVOKE_ADDED_BYTES */
    static char big[10240];
    memset(big, 'a', sizeof(big) - 1);
    added[0] = added[1] = (struct fl_http_header){"X-Big", 5, big, sizeof(big) - 1};
    req.nadded = 2;
    ASSERT_EQ(fl_invoke_start(w.inv, &req, on_outcome, &g, NULL), FL_ETOOBIG);
    /* at the bound, the call goes on; the caller's headers past the
     * budget are dropped, never written past an array */
    req.nadded = 1;
    static struct fl_http_header many[FL_INVOKE_MAX_HEADERS + 50];
    for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++)
        many[i] = (struct fl_http_header){"X-H", 3, "1", 1};
    req.headers = many;
    req.nheaders = sizeof(many) / sizeof(many[0]);
    ASSERT_OK(fl_invoke_start(w.inv, &req, on_outcome, &g, NULL));
    ASSERT_EQ(w.fake.nheaders, FL_INVOKE_MAX_HEADERS);
    ASSERT_EQ(w.fake.nadded, 1);
    fake_answer(&w.fake, 200, "");
    ASSERT_EQ(g.calls, 1);
    /* nor may names or ids be longer than they can be */
    char long_name[FL_INVOKE_NAME_MAX + 2];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    req.target.name = long_name;
    ASSERT_EQ(fl_invoke_start(w.inv, &req, on_outcome, &g, NULL), FL_EINVAL);
    req.target.name = "f";
    req.invocation_id = "0123456789012345678901234567890123456789";
    ASSERT_EQ(fl_invoke_start(w.inv, &req, on_outcome, &g, NULL), FL_EINVAL);
    ASSERT_EQ(g.calls, 1);
    world_release(&w);
}

TEST(a_handler_that_cannot_start_a_call_makes_start_fail_without_a_callback)
{
    struct world w;
    world_init(&w);
    w.fake.fail_start = true;
    struct fl_invoke_request req = {.target = {FL_INVOKE_FUNCTION, "f"},
                                    .method = "GET",
                                    .path = "/",
                                    .deadline_ns = fl_clock_mono_ns() + 1000000ULL};
    struct got g = {0};
    ASSERT_EQ(fl_invoke_start(w.inv, &req, on_outcome, &g, NULL), FL_EAGAIN);
    uv_run(&w.loop, UV_RUN_NOWAIT);
    ASSERT_EQ(g.calls, 0);
    world_release(&w);
}

struct room {
    int calls;
    char name[64];
};

static void on_room(void *data, const struct fl_invoke_target *t)
{
    struct room *r = data;
    r->calls++;
    snprintf(r->name, sizeof(r->name), "%s", t->name);
}

TEST(a_consumer_learns_when_a_saturated_target_has_room_again)
{
    struct world w;
    world_init(&w);
    struct fl_invoke_target f = {FL_INVOKE_FUNCTION, "f"};
    struct fl_invoke_capacity cap;
    ASSERT_EQ(fl_invoker_capacity(w.inv, &f, &cap), FL_ENOENT);
    w.fake.cap_known = true;
    w.fake.cap = (struct fl_invoke_capacity){.slots = 4, .running = 4, .queue_max = 10};
    ASSERT_OK(fl_invoker_capacity(w.inv, &f, &cap));
    ASSERT_EQ(cap.slots, 4);
    ASSERT(fl_invoke_capacity_full(&cap));
    struct room r = {0}, other = {0};
    ASSERT_OK(fl_invoker_watch_room(w.inv, &f, on_room, &r, NULL));
    struct fl_invoke_room *gone;
    ASSERT_OK(fl_invoker_watch_room(w.inv, &f, on_room, &other, &gone));
    uv_run(&w.loop, UV_RUN_NOWAIT);
    ASSERT_EQ(r.calls, 0); /* full: nothing yet */
    fl_invoker_unwatch_room(w.inv, gone);
    /* room for another function says nothing of f */
    fl_invoker_room(w.inv, &(struct fl_invoke_target){FL_INVOKE_FUNCTION, "g"});
    uv_run(&w.loop, UV_RUN_NOWAIT);
    ASSERT_EQ(r.calls, 0);
    w.fake.cap.running = 3;
    fl_invoker_room(w.inv, &f);
    ASSERT_EQ(r.calls, 0); /* from the loop, never inside the handler's call */
    run_until(&w, &r.calls, 1);
    ASSERT_STR_EQ(r.name, "f");
    uv_run(&w.loop, UV_RUN_NOWAIT);
    ASSERT_EQ(r.calls, 1); /* once */
    ASSERT_EQ(other.calls, 0);
    /* a target with room now: told at the next turn */
    struct room now = {0};
    ASSERT_OK(fl_invoker_watch_room(w.inv, &f, on_room, &now, NULL));
    ASSERT_EQ(now.calls, 0);
    run_until(&w, &now.calls, 1);
    world_release(&w);
}

TEST(closing_answers_calls_still_under_way)
{
    struct world w;
    world_init(&w);
    struct fl_invoke_request req = {
        .target = {FL_INVOKE_FUNCTION, "f"}, .method = "GET", .path = "/"};
    struct got g = {0}, h = {0};
    ASSERT_OK(fl_invoke_start(w.inv, &req, on_outcome, &g, NULL));
    req.target.kind = FL_INVOKE_WORKFLOW;
    ASSERT_OK(fl_invoke_start(w.inv, &req, on_outcome, &h, NULL));
    struct room r = {0};
    w.fake.cap_known = true;
    w.fake.cap = (struct fl_invoke_capacity){.slots = 1, .running = 1};
    ASSERT_OK(fl_invoker_watch_room(w.inv, &(struct fl_invoke_target){FL_INVOKE_FUNCTION, "f"},
                                    on_room, &r, NULL));
    world_release(&w);
    ASSERT_EQ(g.calls, 1);
    ASSERT_EQ(g.status, 503);
    ASSERT_STR_EQ(g.code, "stopping");
    ASSERT_EQ(w.fake.canceled, 1);
    ASSERT_EQ(h.calls, 1);
    ASSERT_EQ(h.status, 503);
    ASSERT_EQ(r.calls, 0);
}

/* ---- fl_invoke_http() behind a real server ---- */

struct http_world {
    struct world w;
    struct fl_http_server *srv;
    const struct fl_invoke_http *how;
    int handled;
};

static void http_handler(struct fl_http_request *req, void *data)
{
    struct http_world *hw = data;
    hw->handled++;
    fl_invoke_http(hw->w.inv, req, hw->how);
}

static void server_closed(void *data)
{
    *(bool *)data = true;
}

/* Send raw through a socketpair into the server; the answer's text. */
static void exchange(struct http_world *hw, const char *raw, char *answer, size_t size)
{
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    ASSERT_OK(fl_http_server_adopt(hw->srv, sv[0]));
    ASSERT_EQ(write(sv[1], raw, strlen(raw)), (ssize_t)strlen(raw));
    int before = hw->handled;
    run_until(&hw->w, &hw->handled, before + 1);
    if (hw->w.fake.call != NULL)
        fake_answer(&hw->w.fake, 200, "hello");
    size_t n = 0;
    uint64_t deadline = fl_clock_mono_ns() + 20000000000ULL;
    while (n < size - 1 && fl_clock_mono_ns() < deadline) {
        uv_run(&hw->w.loop, UV_RUN_NOWAIT);
        ssize_t r = recv(sv[1], answer + n, size - 1 - n, MSG_DONTWAIT);
        if (r > 0)
            n += (size_t)r;
        answer[n] = '\0';
        if (strstr(answer, "\r\n\r\n") != NULL && strstr(answer, "hello") != NULL)
            break;
        if (strstr(answer, "\r\n\r\n") != NULL && hw->w.fake.started == 0)
            break;
    }
    close(sv[1]);
}

TEST(an_http_request_becomes_a_typed_call_and_its_outcome_the_answer)
{
    struct http_world hw;
    world_init(&hw.w);
    hw.handled = 0;
    static const char *const drop[] = {"authorization", "proxy-authorization", NULL};
    const struct fl_http_header param = {"X-Flint-Param-who", 17, "ada", 3};
    const struct fl_invoke_http api = {.target = {FL_INVOKE_FUNCTION, "f"},
                                       .path = "/",
                                       .query = "q=1",
                                       .drop = drop,
                                       .trigger = FL_TRIGGER_API};
    const struct fl_invoke_http router = {.target = {FL_INVOKE_FUNCTION, "f"},
                                          .added = &param,
                                          .nadded = 1,
                                          .trigger = FL_TRIGGER_HTTP};
    ASSERT_OK(fl_http_server_new(&hw.w.loop, NULL, http_handler, &hw, &hw.srv));
    char answer[4096];

    /* the router's way: the request's own path and query, params added */
    hw.how = &router;
    exchange(&hw,
             "GET /hello/ada? HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer mine\r\n"
             "X-Forwarded-For: 10.1.1.1\r\n\r\n",
             answer, sizeof(answer));
    ASSERT(strncmp(answer, "HTTP/1.1 200", 12) == 0);
    ASSERT(strstr(answer, "X-Answer: yes") != NULL);
    ASSERT_STR_EQ(hw.w.fake.uri, "/hello/ada?");
    ASSERT_STR_EQ(hw.w.fake.trigger, "http");
    ASSERT_STR_EQ(hw.w.fake.trigger_name, "(none)"); /* X-Flint-Trigger: the trigger's name */
    ASSERT(strstr(hw.w.fake.headers, "Authorization: Bearer mine\n") != NULL);
    ASSERT(strstr(hw.w.fake.headers, "X-Flint-Param-who: ada\n") != NULL);
    /* a socketpair peer has no address: no X-Forwarded-For of ours */
    ASSERT_EQ(hw.w.fake.nadded, 1);

    /* the API's way: "/" and the query, the operator's token dropped */
    hw.how = &api;
    exchange(&hw,
             "POST /v1/functions/f/invoke?q=1 HTTP/1.1\r\nHost: x\r\n"
             "Authorization: Bearer token\r\nProxy-Authorization: x\r\nContent-Length: 2\r\n\r\nhi",
             answer, sizeof(answer));
    ASSERT(strncmp(answer, "HTTP/1.1 200", 12) == 0);
    ASSERT_STR_EQ(hw.w.fake.uri, "/?q=1");
    ASSERT_STR_EQ(hw.w.fake.method, "POST");
    ASSERT_STR_EQ(hw.w.fake.trigger, "api");
    ASSERT(strstr(hw.w.fake.headers, "Authorization") == NULL);
    ASSERT(strstr(hw.w.fake.headers, "Host: x\n") != NULL);

    /* a workflow target: the not-found answer, as JSON */
    const struct fl_invoke_http wf = {.target = {FL_INVOKE_WORKFLOW, "w"}};
    hw.how = &wf;
    int started = hw.w.fake.started;
    hw.w.fake.started = 0;
    exchange(&hw, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", answer, sizeof(answer));
    ASSERT(strncmp(answer, "HTTP/1.1 404", 12) == 0);
    ASSERT(strstr(answer, "workflow_not_found") != NULL);
    ASSERT(strstr(answer, "X-Flint-Invocation-Id: ") != NULL);
    hw.w.fake.started = started;

    bool srv_closed = false;
    fl_http_server_close(hw.srv, 0, server_closed, &srv_closed);
    while (!srv_closed)
        uv_run(&hw.w.loop, UV_RUN_ONCE);
    world_release(&hw.w);
}

TEST(a_client_that_goes_away_cancels_its_call)
{
    struct http_world hw;
    world_init(&hw.w);
    hw.handled = 0;
    const struct fl_invoke_http how = {.target = {FL_INVOKE_FUNCTION, "f"}};
    hw.how = &how;
    ASSERT_OK(fl_http_server_new(&hw.w.loop, NULL, http_handler, &hw, &hw.srv));
    int sv[2];
    ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    ASSERT_OK(fl_http_server_adopt(hw.srv, sv[0]));
    const char *raw = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(write(sv[1], raw, strlen(raw)), (ssize_t)strlen(raw));
    run_until(&hw.w, &hw.handled, 1);
    ASSERT_EQ(hw.w.fake.started, 1);
    close(sv[1]);
    run_until(&hw.w, &hw.w.fake.canceled, 1);
    struct fl_buf out;
    fl_buf_init(&out, 1 << 20);
    ASSERT_OK(fl_metrics_render(hw.w.metrics, &out));
    ASSERT(strstr(out.data, "flint_invocations_total{function=\"f\",code=\"499\"} 1") != NULL);
    fl_buf_release(&out);
    bool srv_closed = false;
    fl_http_server_close(hw.srv, 0, server_closed, &srv_closed);
    while (!srv_closed)
        uv_run(&hw.w.loop, UV_RUN_ONCE);
    world_release(&hw.w);
}
