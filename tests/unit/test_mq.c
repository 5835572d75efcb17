/*
 * Unit tests for src/mq: the spec's checks and defaults, the decision
 * table, the derived invocation id (pure); and the engine itself on a real
 * SQLite store, with the builtin connector and an invoker whose function
 * handler is the test's own (it answers by the message's body: "ok..." 200,
 * "fail..." 500, "hold..." only when the test says), so that every path
 * of a message is driven without a sandbox. tests/e2e/test_mqtrigger.py
 * drives the same through the real flintd.
 */
#include "runner.h"

#include "async/history.h"
#include "base/clock.h"
#include "base/error.h"
#include "invoke/invoke.h"
#include "mq/mq.h"
#include "mq/spec.h"
#include "store/store.h"

#include <ctype.h>
#include <inttypes.h>

/* ---- the spec ---- */

static int parse(const char *text, struct fl_mqt_spec *s, char *why, size_t size)
{
    json_t *spec = json_loads(text, 0, NULL);
    ASSERT(spec != NULL);
    struct fl_buf err;
    fl_buf_init(&err, 1024);
    int rc = fl_mqt_spec_parse(spec, s, &err);
    snprintf(why, size, "%s", err.data ? err.data : "");
    fl_buf_release(&err);
    json_decref(spec);
    return rc;
}

TEST(spec_defaults_follow_fission)
{
    struct fl_mqt_spec s;
    char why[512];
    ASSERT_OK(
        parse("{\"topic\":\"orders\",\"target\":{\"function\":\"f\"}}", &s, why, sizeof(why)));
    ASSERT_STR_EQ(s.topic, "orders");
    ASSERT_STR_EQ(s.function, "f");
    ASSERT_STR_EQ(s.workflow, "");
    ASSERT_EQ(s.connector, FL_MQT_BUILTIN);
    ASSERT_STR_EQ(s.resp_topic, "");
    ASSERT_STR_EQ(s.error_topic, "");
    ASSERT_EQ(s.max_retries, 0); /* Fission's default */
    ASSERT_STR_EQ(s.content_type, "application/json");
    ASSERT_EQ(s.ack_wait_ms, 30000);
    ASSERT_EQ(s.concurrency, 1);
    ASSERT_EQ(s.backoff_ms, 1000);
    ASSERT_EQ(s.max_backoff_ms, 300000);
    ASSERT(!s.paused);

    ASSERT_OK(parse("{\"topic\":\"w\",\"target\":{\"workflow\":\"shout\"}}", &s, why, sizeof(why)));
    ASSERT_STR_EQ(s.workflow, "shout");
    ASSERT_STR_EQ(s.function, "");

    ASSERT_OK(
        parse("{\"topic\":\"a.b\",\"target\":{\"function\":\"f\"},\"connector\":\"builtin\","
              "\"respTopic\":\"r\",\"errorTopic\":\"e\",\"maxRetries\":3,\"backoff\":\"10ms\","
              "\"maxBackoff\":\"2s\",\"ackWait\":\"5s\",\"concurrency\":4,"
              "\"contentType\":\"text/plain\",\"paused\":true}",
              &s, why, sizeof(why)));
    ASSERT_STR_EQ(s.resp_topic, "r");
    ASSERT_STR_EQ(s.error_topic, "e");
    ASSERT_EQ(s.max_retries, 3);
    ASSERT_EQ(s.backoff_ms, 10);
    ASSERT_EQ(s.max_backoff_ms, 2000);
    ASSERT_EQ(s.ack_wait_ms, 5000);
    ASSERT_EQ(s.concurrency, 4);
    ASSERT_STR_EQ(s.content_type, "text/plain");
    ASSERT(s.paused);
    ASSERT(!s.create_stream);
    ASSERT_EQ(s.connector, FL_MQT_BUILTIN);
    ASSERT_EQ(0, parse("{\"topic\":\"a.b\",\"target\":{\"function\":\"f\"},"
                       "\"connector\":\"nats\",\"createStream\":true}",
                       &s, why, sizeof(why)));
    ASSERT_EQ(s.connector, FL_MQT_NATS);
    ASSERT(s.create_stream);
}

TEST(spec_refusals_say_what_and_why)
{
    static const struct {
        const char *spec, *says;
    } cases[] = {
        {"[]", "spec: must be an object"},
        {"{\"target\":{\"function\":\"f\"}}", "spec.topic: is required"},
        {"{\"topic\":\"t\"}", "spec.target: is required"},
        {"{\"topic\":\"t\",\"target\":{\"function\":\"f\",\"workflow\":\"w\"}}",
         "spec.target: must be {function: NAME} or {workflow: NAME}"},
        {"{\"topic\":\"t\",\"target\":{\"workflow\":\"W!\"}}", "spec.target.workflow"},
        {"{\"topic\":\"t\",\"target\":{\"function\":\"F!\"}}", "spec.target.function"},
        {"{\"topic\":\"t\",\"target\":{\"function\":\"f\"},\"createStream\":1}",
         "spec.createStream: must be true or false"},
        {"{\"topic\":\"t\",\"target\":{\"function\":\"f\"},\"connector\":\"kafka\"}",
         "spec.connector"},
        {"{\"topic\":\"a b\",\"target\":{\"function\":\"f\"}}", "spec.topic: a name is"},
        {"{\"topic\":\"async/f\",\"target\":{\"function\":\"f\"}}", "spec.topic: a name is"},
        {"{\"topic\":\"a..b\",\"target\":{\"function\":\"f\"}}", "spec.topic: a name is"},
        {"{\"topic\":\"a.\",\"target\":{\"function\":\"f\"}}", "spec.topic: a name is"},
        {"{\"topic\":\"-a\",\"target\":{\"function\":\"f\"}}", "spec.topic: a name is"},
        {"{\"topic\":\"async-callbacks\",\"target\":{\"function\":\"f\"}}", "Flint's own"},
        {"{\"topic\":\"t\",\"target\":{\"function\":\"f\"},\"respTopic\":\"t\"}",
         "spec.respTopic: must not be the topic"},
        {"{\"topic\":\"t\",\"target\":{\"function\":\"f\"},\"errorTopic\":\"t\"}",
         "spec.errorTopic: must not be the topic"},
        {"{\"topic\":\"t\",\"target\":{\"function\":\"f\"},\"maxRetries\":-1}", "spec.maxRetries"},
        {"{\"topic\":\"t\",\"target\":{\"function\":\"f\"},\"maxRetries\":100}", "spec.maxRetries"},
        {"{\"topic\":\"t\",\"target\":{\"function\":\"f\"},\"concurrency\":0}", "spec.concurrency"},
        {"{\"topic\":\"t\",\"target\":{\"function\":\"f\"},\"ackWait\":\"10ms\"}", "spec.ackWait"},
        {"{\"topic\":\"t\",\"target\":{\"function\":\"f\"},\"backoff\":\"soon\"}", "spec.backoff"},
        {"{\"topic\":\"t\",\"target\":{\"function\":\"f\"},\"backoff\":\"5s\",\"maxBackoff\":"
         "\"1s\"}",
         "spec.maxBackoff"},
        {"{\"topic\":\"t\",\"target\":{\"function\":\"f\"},\"paused\":\"yes\"}", "spec.paused"},
        {"{\"topic\":\"t\",\"target\":{\"function\":\"f\"},\"contentType\":\"\"}",
         "spec.contentType"},
        {"{\"topic\":\"t\",\"target\":{\"function\":\"f\"},\"maxRetry\":1}",
         "spec.maxRetry: is not a field"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fl_mqt_spec s;
        char why[512];
        int rc = parse(cases[i].spec, &s, why, sizeof(why));
        if (rc != FL_EINVAL || strstr(why, cases[i].says) == NULL)
            fl_test_fail(__FILE__, __LINE__, "%s: got %d '%s', wanted '%s'", cases[i].spec, rc, why,
                         cases[i].says);
    }
}

/* ---- the decision table ---- */

TEST(decide_follows_the_table)
{
    static const struct {
        enum fl_mq_outcome outcome;
        uint32_t delivery, max_retries;
        bool error_topic;
        enum fl_mq_action action;
    } rows[] = {
        {FL_MQ_SUCCEEDED, 1, 0, false, FL_MQ_RESPOND},
        {FL_MQ_SUCCEEDED, 7, 2, true, FL_MQ_RESPOND}, /* late success still responds */
        {FL_MQ_FAILED, 1, 0, false, FL_MQ_DEAD},      /* maxRetries 0: one attempt */
        {FL_MQ_FAILED, 1, 0, true, FL_MQ_ERROR_TOPIC},
        {FL_MQ_FAILED, 1, 2, true, FL_MQ_RETRY},
        {FL_MQ_FAILED, 2, 2, true, FL_MQ_RETRY},
        {FL_MQ_FAILED, 3, 2, true, FL_MQ_ERROR_TOPIC}, /* maxRetries + 1 = 3 attempts */
        {FL_MQ_FAILED, 3, 2, false, FL_MQ_DEAD},
        {FL_MQ_FAILED, 9, 2, false, FL_MQ_DEAD}, /* past them: lost deliveries */
        {FL_MQ_FAILED, 99, 99, true, FL_MQ_RETRY},
        {FL_MQ_FAILED, 100, 99, true, FL_MQ_ERROR_TOPIC},
        {FL_MQ_STOPPED, 1, 0, false, FL_MQ_GIVE_BACK},
        {FL_MQ_STOPPED, 5, 2, true, FL_MQ_GIVE_BACK},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        enum fl_mq_action a = fl_mq_decide(rows[i].outcome, rows[i].delivery, rows[i].max_retries,
                                           rows[i].error_topic);
        if (a != rows[i].action)
            fl_test_fail(__FILE__, __LINE__, "row %zu: %s, wanted %s", i, fl_mq_action_name(a),
                         fl_mq_action_name(rows[i].action));
    }
    /* what an invoker's answer is */
    struct fl_invoke_outcome o = {.error = FL_INVOKE_OK, .status = 204};
    ASSERT_EQ(fl_mq_outcome_of(&o), FL_MQ_SUCCEEDED);
    o.status = 302;
    ASSERT_EQ(fl_mq_outcome_of(&o), FL_MQ_FAILED);
    o.status = 500;
    ASSERT_EQ(fl_mq_outcome_of(&o), FL_MQ_FAILED);
    o = (struct fl_invoke_outcome){.error = FL_INVOKE_TIMEOUT, .status = 504};
    ASSERT_EQ(fl_mq_outcome_of(&o), FL_MQ_FAILED);
    o = (struct fl_invoke_outcome){.error = FL_INVOKE_CANCELED, .status = 499};
    ASSERT_EQ(fl_mq_outcome_of(&o), FL_MQ_STOPPED);
}

/* ---- the invocation id ---- */

static bool uuid7_shaped(const char *id)
{
    if (strlen(id) != FL_UUID_STRLEN)
        return false;
    for (int i = 0; i < FL_UUID_STRLEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? id[i] != '-'
                 : !(isdigit((unsigned char)id[i]) || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    }
    return id[14] == '7' && strchr("89ab", id[19]) != NULL;
}

TEST(invocation_id_is_stable_and_tells_messages_apart)
{
    char a[FL_UUID_STRLEN + 1], b[FL_UUID_STRLEN + 1];
    int64_t ms = 1767225600123; /* 2026-01-01T00:00:00.123Z */
    fl_mq_invocation_id("t", "orders", 42, ms, a);
    ASSERT(uuid7_shaped(a));
    fl_mq_invocation_id("t", "orders", 42, ms, b);
    ASSERT_STR_EQ(a, b);
    /* its time is the message's: the first 48 bits */
    char hex[16];
    snprintf(hex, sizeof(hex), "%012" PRIx64, (uint64_t)ms);
    ASSERT(strncmp(a, hex, 8) == 0 && strncmp(a + 9, hex + 8, 4) == 0);
    /* anything else makes another id */
    fl_mq_invocation_id("u", "orders", 42, ms, b);
    ASSERT(strcmp(a, b) != 0);
    fl_mq_invocation_id("t", "orders2", 42, ms, b);
    ASSERT(strcmp(a, b) != 0);
    fl_mq_invocation_id("t", "orders", 43, ms, b);
    ASSERT(strcmp(a, b) != 0);
    fl_mq_invocation_id("t", "orders", 42, ms + 1, b); /* a topic made again: seq 42 anew */
    ASSERT(strcmp(a, b) != 0);
    /* the parts are kept apart: "ab"+"c" is not "a"+"bc" */
    fl_mq_invocation_id("ab", "c", 1, ms, a);
    fl_mq_invocation_id("a", "bc", 1, ms, b);
    ASSERT(strcmp(a, b) != 0);
    /* the same bytes as ever (histories name these ids): SHA-256 of
     * "flint-mq\0t\0orders\0" "42/1767225600123", computed apart */
    fl_mq_invocation_id("t", "orders", 42, ms, a);
    ASSERT_STR_EQ(a, "019b76da-a87b-77ce-94f7-1616a412ff28");
}

TEST(attempt_id_of_a_workflow_target)
{
    char a[FL_UUID_STRLEN + 1], b[FL_UUID_STRLEN + 1];
    const char *inv = "019b76da-a87b-77ce-94f7-1616a412ff28";
    fl_mq_attempt_id(inv, 3, a);
    ASSERT(uuid7_shaped(a));
    /* the message's time, and SHA-256 of "flint-mq-attempt\0<id>\0" "3" */
    ASSERT_STR_EQ(a, "019b76da-a87b-7368-a969-643642f75e0f");
    fl_mq_attempt_id(inv, 3, b);
    ASSERT_STR_EQ(a, b);
    fl_mq_attempt_id(inv, 4, b);
    ASSERT(strcmp(a, b) != 0 && strncmp(a, b, 13) == 0);
    ASSERT(strcmp(a, inv) != 0);
}

/* ---- the engine, on a real store ---- */

#define MAX_CALLS 256

struct call_rec {
    struct fl_invoke *call; /* NULL once answered */
    char body[128], id[FL_UUID_STRLEN + 1], headers[2048];
    unsigned attempt;
    bool held;
};

struct world {
    uv_loop_t loop;
    struct fl_store *store;
    struct fl_invoker *inv;
    struct fl_mq *mq;
    struct call_rec calls[MAX_CALLS];
    size_t ncalls, canceled;
    bool release; /* answer held calls */
    int done;
    int err;
    uint64_t n; /* a count an operation gave back */
};

static int fake_start(void *data, struct fl_invoke *call)
{
    struct world *w = data;
    ASSERT(w->ncalls < MAX_CALLS);
    struct call_rec *c = &w->calls[w->ncalls++];
    const struct fl_invoke_request *r = fl_invoke_request_of(call);
    c->call = call;
    snprintf(c->body, sizeof(c->body), "%.*s", (int)r->body_len, (const char *)r->body);
    snprintf(c->id, sizeof(c->id), "%s", fl_invoke_id(call));
    c->attempt = r->attempt;
    c->held = strncmp(c->body, "hold", 4) == 0;
    c->headers[0] = '\0';
    const struct fl_http_header *sets[2] = {r->headers, r->added};
    size_t counts[2] = {r->nheaders, r->nadded};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < counts[s]; i++) {
            size_t len = strlen(c->headers);
            snprintf(c->headers + len, sizeof(c->headers) - len, "%.*s: %.*s\n",
                     (int)sets[s][i].name_len, sets[s][i].name, (int)sets[s][i].value_len,
                     sets[s][i].value);
        }
    size_t len = strlen(c->headers);
    snprintf(c->headers + len, sizeof(c->headers) - len, "trigger: %s %s\n",
             fl_invoke_trigger_name(r->trigger), r->trigger_name ? r->trigger_name : "-");
    return 0;
}

static void fake_cancel(void *data, struct fl_invoke *call)
{
    struct world *w = data;
    for (size_t i = 0; i < w->ncalls; i++)
        if (w->calls[i].call == call) {
            w->calls[i].call = NULL;
            w->canceled++;
        }
}

static const struct fl_invoke_handler fake_handler = {.start = fake_start, .cancel = fake_cancel};

/* Answer the calls that are due: "ok..." 200 "re:<body>", "fail..." 500,
 * "hold..." when w->release. */
static void answer(struct world *w)
{
    for (size_t i = 0; i < w->ncalls; i++) {
        struct call_rec *c = &w->calls[i];
        if (c->call == NULL || (c->held && !w->release))
            continue;
        static const struct fl_http_header h[] = {{"X-Answer", 8, "yes", 3},
                                                  {"Content-Type", 12, "text/plain", 10}};
        static char out[(2u << 20) + 1];
        bool fail = strncmp(c->body, "fail", 4) == 0, big = strncmp(c->body, "big", 3) == 0;
        snprintf(out, 160, "%s%s", fail ? "boom\n\x01" : "re:", fail ? "" : c->body);
        size_t len = strlen(out);
        if (big) /* more than the store takes in a message */
            memset(out, 'x', len = sizeof(out) - 1);
        struct fl_invoke_outcome o = {.error = FL_INVOKE_OK,
                                      .status = fail ? 500 : 200,
                                      .headers = h,
                                      .nheaders = 2,
                                      .body = out,
                                      .body_len = len};
        struct fl_invoke *call = c->call;
        c->call = NULL;
        fl_invoke_finish(call, &o);
    }
}

static void step(struct world *w)
{
    uv_run(&w->loop, UV_RUN_NOWAIT);
    answer(w);
}

static void world_start_mq(struct world *w)
{
    const struct fl_mq_config cfg = {.store = w->store, .invoker = w->inv};
    ASSERT_OK(fl_mq_new(&w->loop, &cfg, &w->mq));
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    ASSERT_OK(uv_loop_init(&w->loop));
    char err[512], uri[4200];
    snprintf(uri, sizeof(uri), "sqlite:%s", fl_test_tmpdir());
    ASSERT_OK(fl_store_open(&w->loop, uri, NULL, &w->store, err, sizeof(err)));
    ASSERT_OK(fl_invoker_new(&w->loop, NULL, &w->inv));
    ASSERT_OK(fl_invoker_register(w->inv, FL_INVOKE_FUNCTION, &fake_handler, w));
    world_start_mq(w);
}

static void set_true(void *data)
{
    *(bool *)data = true;
}

static void world_stop_mq(struct world *w)
{
    bool done = false;
    fl_mq_close(w->mq, set_true, &done);
    WAIT_UNTIL(done, 10, uv_run(&w->loop, UV_RUN_NOWAIT));
    w->mq = NULL;
}

static void world_release(struct world *w)
{
    if (w->mq != NULL)
        world_stop_mq(w);
    bool done = false;
    fl_invoker_close(w->inv, set_true, &done);
    WAIT_UNTIL(done, 10, uv_run(&w->loop, UV_RUN_NOWAIT));
    done = false;
    fl_store_close(w->store, set_true, &done);
    WAIT_UNTIL(done, 10, uv_run(&w->loop, UV_RUN_NOWAIT));
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&w->loop));
}

static void put_trigger(struct world *w, const char *name, const char *spec_text)
{
    json_t *spec = json_loads(spec_text, 0, NULL);
    ASSERT(spec != NULL);
    struct fl_buf err;
    fl_buf_init(&err, 1024);
    int rc = fl_mq_trigger_hooks.put(w->mq, name, 1, spec, &err);
    if (rc != 0)
        fl_test_fail(__FILE__, __LINE__, "put: %d %s", rc, err.data ? err.data : "");
    fl_buf_release(&err);
    json_decref(spec);
}

static void on_done(int err, const struct fl_store_result *res, void *data)
{
    struct world *w = data;
    w->err = err;
    w->n = err == 0 ? (res->consumers != NULL ? res->consumers[0].pending : res->n) : 0;
    w->done = 1;
}

static void wait_done(struct world *w)
{
    WAIT_UNTIL(w->done, 10, step(w));
    w->done = 0;
}

static void publish(struct world *w, const char *topic, const char *body, const char *headers)
{
    ASSERT_OK(fl_store_publish(w->store, topic, headers, NULL, body, strlen(body), on_done, w));
    wait_done(w);
    ASSERT_OK(w->err);
}

/* Messages read from a topic by a consumer of the test's own. */
struct read {
    size_t n;
    char body[MAX_CALLS][160];
    char headers[MAX_CALLS][1024];
};

static void on_read(int err, const struct fl_store_result *res, void *data)
{
    struct read *r = data;
    for (size_t i = 0; err == 0 && i < res->n && r->n < MAX_CALLS; i++, r->n++) {
        snprintf(r->body[r->n], sizeof(r->body[0]), "%.*s", (int)res->records[i].len,
                 res->records[i].data);
        snprintf(r->headers[r->n], sizeof(r->headers[0]), "%s", res->records[i].headers);
    }
}

static void on_read_done(int err, const struct fl_store_result *res, void *data)
{
    on_read(err, res, ((void **)data)[0]);
    *(int *)((void **)data)[1] = 1;
}

/* Read what topic holds now (from its start) into r. */
static void read_topic(struct world *w, const char *topic, struct read *r)
{
    memset(r, 0, sizeof(*r));
    int done = 0;
    void *ctx[2] = {r, &done};
    const struct fl_consumer_config cfg = {.ack_wait_ms = 60000, .max_deliver = 1};
    ASSERT_OK(fl_store_consumer_create(w->store, topic, "test-reader", &cfg, on_done, w));
    wait_done(w);
    ASSERT_OK(w->err);
    ASSERT_OK(fl_store_fetch(w->store, topic, "test-reader", 256, on_read_done, ctx));
    WAIT_UNTIL(done, 10, step(w));
    ASSERT_OK(fl_store_consumer_delete(w->store, topic, "test-reader", on_done, w));
    wait_done(w);
}

static size_t topic_count(struct world *w, const char *topic)
{
    struct read *r = calloc(1, sizeof(*r));
    read_topic(w, topic, r);
    size_t n = r->n;
    free(r);
    return n;
}

/* A consumer's pending deliveries (w->err: FL_ENOENT when it is gone). */
static struct fl_consumer_info consumer(struct world *w, const char *topic, const char *name)
{
    struct fl_consumer_info ci = {0};
    ASSERT_OK(fl_store_consumer_info(w->store, topic, name, on_done, w));
    wait_done(w);
    ci.pending = w->n;
    return ci;
}

/* How many messages the store holds as dead letters of a consumer. */
static size_t dead_letters(struct world *w, const char *topic, const char *name)
{
    ASSERT_OK(fl_store_dead(w->store, topic, name, NULL, on_done, w));
    wait_done(w);
    return w->n;
}

/* Turn the loop (answering calls) for secs: for what must not happen. */
static void idle(struct world *w, double secs)
{
    double until = fl_test_now() + secs;
    WAIT_UNTIL(fl_test_now() > until, secs + 10, step(w));
}

static bool state_is(struct world *w, const char *name, const char *state)
{
    json_t *st = fl_mq_trigger_hooks.status(w->mq, name, false);
    bool is = st != NULL && strcmp(json_string_value(json_object_get(st, "state")), state) == 0;
    json_decref(st);
    return is;
}

static size_t calls_with(struct world *w, const char *body)
{
    size_t n = 0;
    for (size_t i = 0; i < w->ncalls; i++)
        n += strcmp(w->calls[i].body, body) == 0;
    return n;
}

static size_t inv_streams(struct world *w)
{
    ASSERT_OK(fl_store_streams(w->store, "inv/", NULL, on_done, w));
    wait_done(w);
    return (size_t)w->n;
}

TEST(engine_responds_then_acks_and_writes_no_history)
{
    struct world w;
    world_init(&w);
    put_trigger(&w, "t",
                "{\"topic\":\"in\",\"target\":{\"function\":\"f\"},\"respTopic\":\"out\","
                "\"contentType\":\"text/csv\"}");
    /* the topics it names are made */
    WAIT_UNTIL(state_is(&w, "t", "running"), 10, step(&w));
    publish(&w, "in", "ok-1", "{\"X-Custom\":\"v\",\"Content-Type\":\"text/plain\"}");
    publish(&w, "in", "ok-2", NULL);
    publish(&w, "in", "ok-3", "{\"Bad Name\":\"x\",\"X-Ctl\":\"a\\u0001b\"}");
    WAIT_UNTIL(topic_count(&w, "out") == 3, 10, step(&w));
    ASSERT_EQ(w.ncalls, 3);
    struct read *r = calloc(1, sizeof(*r));
    read_topic(&w, "out", r);
    for (size_t i = 0; i < 3; i++) {
        char want[32];
        snprintf(want, sizeof(want), "re:ok-%zu", i + 1);
        ASSERT_STR_EQ(r->body[i], want); /* concurrency 1: in order */
        struct call_rec *c = &w.calls[i];
        ASSERT_EQ(c->attempt, 1);
        json_t *h = json_loads(r->headers[i], 0, NULL);
        ASSERT_STR_EQ(json_string_value(json_object_get(h, "X-Flint-Invocation-Id")), c->id);
        ASSERT_STR_EQ(json_string_value(json_object_get(h, "X-Answer")), "yes");
        ASSERT_STR_EQ(json_string_value(json_object_get(h, "X-Flint-Status")), "200");
        ASSERT_STR_EQ(json_string_value(json_object_get(h, "X-Flint-Topic")), "in");
        json_decref(h);
        ASSERT(strstr(c->headers, "X-Flint-Topic: in\n") != NULL);
        ASSERT(strstr(c->headers, "X-Flint-Resp-Topic: out\n") != NULL);
        ASSERT(strstr(c->headers, "X-Flint-Error-Topic") == NULL);
        ASSERT(strstr(c->headers, "trigger: mq messagequeuetrigger/t\n") != NULL);
        char seq[40];
        snprintf(seq, sizeof(seq), "X-Flint-Message-Id: %zu\n", i + 1);
        ASSERT(strstr(c->headers, seq) != NULL);
    }
    /* the message's headers, Content-Type from the spec when it has none;
     * headers no program may set are left out */
    ASSERT(strstr(w.calls[0].headers, "X-Custom: v\n") != NULL);
    ASSERT(strstr(w.calls[0].headers, "Content-Type: text/plain\n") != NULL);
    ASSERT(strstr(w.calls[1].headers, "Content-Type: text/csv\n") != NULL);
    ASSERT(strstr(w.calls[2].headers, "Bad Name") == NULL);
    ASSERT(strstr(w.calls[2].headers, "X-Ctl") == NULL);
    free(r);
    ASSERT_EQ(consumer(&w, "in", "mqt/t").pending, 0);
    ASSERT_EQ(inv_streams(&w), 0); /* the fast path records nothing */
    world_release(&w);
}

TEST(engine_poison_reaches_the_error_topic_after_exactly_its_attempts)
{
    struct world w;
    world_init(&w);
    put_trigger(&w, "t",
                "{\"topic\":\"in\",\"target\":{\"function\":\"f\"},\"respTopic\":\"out\","
                "\"errorTopic\":\"err\",\"maxRetries\":2,\"backoff\":\"10ms\","
                "\"maxBackoff\":\"20ms\"}");
    WAIT_UNTIL(consumer(&w, "in", "mqt/t").pending == 0 && w.err == 0, 10, step(&w));
    publish(&w, "in", "fail-1", "{\"X-Keep\":\"me\"}");
    publish(&w, "in", "ok-after", NULL);
    WAIT_UNTIL(topic_count(&w, "err") == 1 && topic_count(&w, "out") == 1, 20, step(&w));
    ASSERT_EQ(calls_with(&w, "fail-1"), 3);
    ASSERT_EQ(calls_with(&w, "ok-after"), 1);
    /* the same invocation id on every attempt, attempts counted 1, 2, 3 */
    for (size_t i = 0, k = 0; i < w.ncalls; i++)
        if (strcmp(w.calls[i].body, "fail-1") == 0) {
            ASSERT_EQ(w.calls[i].attempt, ++k);
            ASSERT_STR_EQ(w.calls[i].id, w.calls[0].id);
        }
    struct read *r = calloc(1, sizeof(*r));
    read_topic(&w, "err", r);
    ASSERT_STR_EQ(r->body[0], "fail-1");
    json_t *h = json_loads(r->headers[0], 0, NULL);
    ASSERT_STR_EQ(json_string_value(json_object_get(h, "X-Keep")), "me");
    ASSERT_STR_EQ(json_string_value(json_object_get(h, "X-Flint-Attempts")), "3");
    ASSERT_STR_EQ(json_string_value(json_object_get(h, "X-Flint-Status")), "500");
    ASSERT_STR_EQ(json_string_value(json_object_get(h, "X-Flint-Invocation-Id")), w.calls[0].id);
    /* the last answer, its control characters made harmless */
    ASSERT_STR_EQ(json_string_value(json_object_get(h, "X-Flint-Error")),
                  "the function answered 500: boom  ");
    json_decref(h);
    free(r);
    /* acked: never delivered again, not a dead letter */
    ASSERT_EQ(consumer(&w, "in", "mqt/t").pending, 0);
    size_t calls = w.ncalls;
    publish(&w, "in", "ok-last", NULL); /* behind it: once this is through, nothing came back */
    WAIT_UNTIL(topic_count(&w, "out") == 2, 10, step(&w));
    ASSERT_EQ(w.ncalls, calls + 1);
    world_release(&w);
}

TEST(engine_an_answer_too_large_to_publish_is_a_failed_attempt)
{
    struct world w;
    world_init(&w);
    put_trigger(&w, "t",
                "{\"topic\":\"in\",\"target\":{\"function\":\"f\"},\"respTopic\":\"out\","
                "\"errorTopic\":\"err\",\"maxRetries\":1,\"backoff\":\"10ms\","
                "\"maxBackoff\":\"20ms\"}");
    WAIT_UNTIL(state_is(&w, "t", "running"), 10, step(&w));
    publish(&w, "in", "big", NULL);
    WAIT_UNTIL(topic_count(&w, "err") == 1, 20, step(&w));
    ASSERT_EQ(calls_with(&w, "big"), 2); /* its attempts, then no more */
    ASSERT_EQ(topic_count(&w, "out"), 0);
    struct read *r = calloc(1, sizeof(*r));
    read_topic(&w, "err", r);
    json_t *h = json_loads(r->headers[0], 0, NULL);
    ASSERT(strstr(json_string_value(json_object_get(h, "X-Flint-Error")),
                  "cannot publish the answer to 'out'") != NULL);
    json_decref(h);
    free(r);
    ASSERT_EQ(consumer(&w, "in", "mqt/t").pending, 0);
    world_release(&w);
}

static void on_history(int err, const struct fl_store_result *res, void *data)
{
    struct fl_inv *inv = data;
    ASSERT_OK(err);
    ASSERT_OK(fl_inv_fold("x", res->records, res->n, inv));
}

static void read_history(struct world *w, const char *id, struct fl_inv *inv)
{
    char stream[64];
    snprintf(stream, sizeof(stream), "inv/%s", id);
    memset(inv, 0, sizeof(*inv));
    ASSERT_OK(fl_store_read(w->store, stream, 1, 0, on_history, inv));
    WAIT_UNTIL(inv->json != NULL, 10, step(w));
}

TEST(engine_without_error_topic_parks_a_dead_letter_that_redrives)
{
    struct world w;
    world_init(&w);
    put_trigger(&w, "t",
                "{\"topic\":\"in\",\"target\":{\"function\":\"f\"},\"respTopic\":\"out\","
                "\"maxRetries\":1,\"backoff\":\"10ms\",\"maxBackoff\":\"20ms\"}");
    WAIT_UNTIL(consumer(&w, "in", "mqt/t").pending == 0 && w.err == 0, 10, step(&w));
    publish(&w, "in", "fail-x", NULL);
    struct fl_inv inv;
    WAIT_UNTIL(inv_streams(&w) == 1, 20, step(&w));
    char id[FL_UUID_STRLEN + 1];
    snprintf(id, sizeof(id), "%s", w.calls[0].id);
    for (;;) {
        read_history(&w, id, &inv);
        if (inv.status == FL_INV_DEAD)
            break;
        fl_inv_release(&inv);
        step(&w);
    }
    ASSERT_EQ(calls_with(&w, "fail-x"), 2);
    ASSERT_EQ(inv.attempts, 2);
    ASSERT_STR_EQ(inv.function, "f");
    ASSERT_STR_EQ(inv.topic, "in");
    ASSERT_STR_EQ(inv.consumer, "mqt/t");
    ASSERT(inv.seq == 1);
    ASSERT_STR_EQ(json_string_value(json_object_get(inv.json, "trigger")), "messagequeuetrigger/t");
    fl_inv_release(&inv);
    /* parked: the store says dead (as flint dlq redrive does: record, then
     * make it deliverable again). The history says dead first, and the
     * message is parked once that is durable: wait for it. */
    WAIT_UNTIL(dead_letters(&w, "in", "mqt/t") == 1, 10, step(&w));
    struct fl_event_in ev = {"redriven", "{\"attempts\":2}", 14};
    char stream[64];
    snprintf(stream, sizeof(stream), "inv/%s", id);
    ASSERT_OK(fl_store_append(w.store, stream, &ev, 1, FL_SEQ_ANY, on_done, &w));
    wait_done(&w);
    /* the function is fixed: a redrive runs it once more and it succeeds */
    ASSERT_OK(fl_store_redrive(w.store, "in", "mqt/t", 1, on_done, &w));
    wait_done(&w);
    ASSERT_OK(w.err);
    /* the redelivery's body says fail: the test's function now answers
     * every "fail-x" with 200 */
    WAIT_UNTIL(w.ncalls == 3, 10, uv_run(&w.loop, UV_RUN_NOWAIT));
    ASSERT_EQ(w.calls[2].attempt, 3); /* numbers go on after a redrive */
    ASSERT_STR_EQ(w.calls[2].id, id);
    snprintf(w.calls[2].body, sizeof(w.calls[2].body), "ok-now");
    WAIT_UNTIL(topic_count(&w, "out") == 1, 10, step(&w));
    for (;;) {
        read_history(&w, id, &inv);
        if (inv.status == FL_INV_SUCCEEDED)
            break;
        fl_inv_release(&inv);
        step(&w);
    }
    fl_inv_release(&inv);
    ASSERT_EQ(consumer(&w, "in", "mqt/t").pending, 0);
    world_release(&w);
}

static size_t running(struct world *w)
{
    size_t n = 0;
    for (size_t i = 0; i < w->ncalls; i++)
        n += w->calls[i].call != NULL;
    return n;
}

TEST(engine_concurrency_one_keeps_order_and_n_runs_n)
{
    struct world w;
    world_init(&w);
    put_trigger(&w, "one",
                "{\"topic\":\"in\",\"target\":{\"function\":\"f\"},\"respTopic\":\"out\"}");
    WAIT_UNTIL(consumer(&w, "in", "mqt/one").pending == 0 && w.err == 0, 10, step(&w));
    for (int i = 0; i < 5; i++)
        publish(&w, "in", "hold", NULL);
    WAIT_UNTIL(w.ncalls == 1, 10, uv_run(&w.loop, UV_RUN_NOWAIT));
    idle(&w, 0.6); /* held: nothing else starts */
    ASSERT_EQ(w.ncalls, 1);
    w.release = true;
    WAIT_UNTIL(topic_count(&w, "out") == 5, 10, step(&w));
    for (size_t i = 0; i < 5; i++)
        ASSERT(strstr(w.calls[i].headers, "X-Flint-Message-Id: ") != NULL);
    for (size_t i = 0; i < 5; i++) {
        char seq[40];
        snprintf(seq, sizeof(seq), "X-Flint-Message-Id: %zu\n", i + 1);
        ASSERT(strstr(w.calls[i].headers, seq) != NULL); /* in order */
    }
    /* a trigger with concurrency 3 has three running at once */
    w.release = false;
    put_trigger(&w, "three",
                "{\"topic\":\"in3\",\"target\":{\"function\":\"f\"},\"concurrency\":3}");
    WAIT_UNTIL(consumer(&w, "in3", "mqt/three").pending == 0 && w.err == 0, 10, step(&w));
    for (int i = 0; i < 5; i++)
        publish(&w, "in3", "hold", NULL);
    WAIT_UNTIL(running(&w) == 3, 10, uv_run(&w.loop, UV_RUN_NOWAIT));
    idle(&w, 0.6);
    ASSERT_EQ(running(&w), 3);
    w.release = true;
    WAIT_UNTIL(w.ncalls == 10 && running(&w) == 0, 10, step(&w));
    world_release(&w);
}

TEST_TIMEOUT(engine_long_call_is_not_redelivered_while_it_runs, 60)
{
    struct world w;
    world_init(&w);
    put_trigger(&w, "t",
                "{\"topic\":\"in\",\"target\":{\"function\":\"f\"},\"respTopic\":\"out\","
                "\"ackWait\":\"1s\",\"concurrency\":2}");
    WAIT_UNTIL(consumer(&w, "in", "mqt/t").pending == 0 && w.err == 0, 10, step(&w));
    publish(&w, "in", "hold", NULL);
    WAIT_UNTIL(w.ncalls == 1, 10, uv_run(&w.loop, UV_RUN_NOWAIT));
    /* three ack waits: without in-progress it would come back (concurrency
     * 2 leaves room for it) */
    idle(&w, 3.5);
    ASSERT_EQ(w.ncalls, 1);
    w.release = true;
    WAIT_UNTIL(topic_count(&w, "out") == 1, 10, step(&w));
    ASSERT_EQ(w.ncalls, 1);
    world_release(&w);
}

TEST(engine_pause_keeps_messages_and_delete_removes_the_consumer)
{
    struct world w;
    world_init(&w);
    const char *spec = "{\"topic\":\"in\",\"target\":{\"function\":\"f\"},\"respTopic\":\"out\"";
    char text[256];
    snprintf(text, sizeof(text), "%s,\"paused\":true}", spec);
    put_trigger(&w, "t", text);
    WAIT_UNTIL(consumer(&w, "in", "mqt/t").pending == 0 && w.err == 0, 10, step(&w));
    publish(&w, "in", "ok-a", NULL);
    publish(&w, "in", "ok-b", NULL);
    idle(&w, 1.0); /* four ticks: nothing is fetched */
    ASSERT_EQ(w.ncalls, 0);
    ASSERT(state_is(&w, "t", "paused"));
    /* unpaused, live */
    snprintf(text, sizeof(text), "%s}", spec);
    put_trigger(&w, "t", text);
    WAIT_UNTIL(topic_count(&w, "out") == 2, 10, step(&w));
    /* a new topic: the consumer moves */
    put_trigger(&w, "t",
                "{\"topic\":\"in2\",\"target\":{\"function\":\"f\"},\"respTopic\":\"out\"}");
    WAIT_UNTIL((consumer(&w, "in2", "mqt/t"), w.err == 0), 10, step(&w));
    WAIT_UNTIL((consumer(&w, "in", "mqt/t"), w.err == FL_ENOENT), 10, step(&w));
    publish(&w, "in2", "ok-c", NULL);
    WAIT_UNTIL(topic_count(&w, "out") == 3, 10, step(&w));
    /* deleted: its consumer goes, its status too */
    fl_mq_trigger_hooks.remove(w.mq, "t");
    ASSERT(fl_mq_trigger_hooks.status(w.mq, "t", false) == NULL);
    WAIT_UNTIL((consumer(&w, "in2", "mqt/t"), w.err == FL_ENOENT), 10, step(&w));
    publish(&w, "in2", "ok-d", NULL);
    idle(&w, 1.0);
    ASSERT_EQ(w.ncalls, 3);
    world_release(&w);
}

TEST(engine_stopped_mid_call_gives_the_message_back_with_the_same_id)
{
    struct world w;
    world_init(&w);
    const char *spec = "{\"topic\":\"in\",\"target\":{\"function\":\"f\"},\"respTopic\":\"out\","
                       "\"ackWait\":\"1s\"}";
    put_trigger(&w, "t", spec);
    WAIT_UNTIL(consumer(&w, "in", "mqt/t").pending == 0 && w.err == 0, 10, step(&w));
    publish(&w, "in", "hold", NULL);
    WAIT_UNTIL(w.ncalls == 1, 10, uv_run(&w.loop, UV_RUN_NOWAIT));
    world_stop_mq(&w); /* cancels the call: the message is given back */
    ASSERT_EQ(w.canceled, 1);
    world_start_mq(&w);
    put_trigger(&w, "t", spec);
    w.release = true;
    WAIT_UNTIL(topic_count(&w, "out") == 1, 10, step(&w));
    ASSERT_EQ(w.ncalls, 2);
    ASSERT_STR_EQ(w.calls[1].id, w.calls[0].id);
    ASSERT_EQ(w.calls[1].attempt, 2);
    world_release(&w);
}
