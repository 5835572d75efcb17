/* Unit tests for src/async/history.h (an invocation's events folded into
 * its state) and the retry policy's delays. */
#include "runner.h"

#include "async/async.h"
#include "async/history.h"
#include "base/error.h"
#include "base/str.h"
#include "invoke/invoke.h"

#include <string.h>

#define ID "0193a0c4-0000-7000-8000-000000000001"

/* Events of one invocation: {type, data} pairs, ts 1000, 2000, ... */
static int fold(const char *const (*ev)[2], size_t n, struct fl_inv *out)
{
    struct fl_record r[16];
    ASSERT(n <= 16);
    for (size_t i = 0; i < n; i++)
        r[i] = (struct fl_record){.key = "",
                                  .type = ev[i][0],
                                  .data = ev[i][1],
                                  .len = strlen(ev[i][1]),
                                  .headers = "",
                                  .reason = "",
                                  .seq = i + 1,
                                  .ts_ms = (int64_t)(i + 1) * 1000};
    return fl_inv_fold(ID, r, n, out);
}

static const char *status_of(const struct fl_inv *inv)
{
    return json_string_value(json_object_get(inv->json, "status"));
}

#define QUEUED                                                                                     \
    "{\"function\":\"report\",\"trigger\":\"api\",\"method\":\"POST\",\"path\":\"/\","             \
    "\"query\":null,\"headers\":{\"content-type\":\"text/plain\"},\"retry\":{\"maxAttempts\":3,"   \
    "\"backoff\":1000,\"maxBackoff\":300000},\"callback\":null,\"idem\":null}"

TEST(no_events_is_no_invocation)
{
    struct fl_inv inv;
    ASSERT_EQ(fold(NULL, 0, &inv), FL_ENOENT);
}

TEST(queued_then_retrying_then_succeeded)
{
    static const char *const ev[][2] = {
        {"queued", QUEUED},
        {"attempt", "{\"attempt\":1,\"seq\":7,\"startedAt\":1500,\"durationMs\":3,\"status\":503,"
                    "\"error\":\"the function answered 503\",\"nextAt\":2500}"},
        {"attempt", "{\"attempt\":2,\"seq\":7,\"startedAt\":2600,\"durationMs\":4,\"status\":200,"
                    "\"end\":\"succeeded\",\"result\":{\"status\":200,\"body\":\"ok\"}}"},
    };
    struct fl_inv inv;
    ASSERT_OK(fold(ev, 1, &inv));
    ASSERT_EQ(inv.status, FL_INV_QUEUED);
    ASSERT_STR_EQ(inv.function, "report");
    ASSERT(!inv.ended);
    ASSERT_EQ(inv.retry.max_attempts, 3);
    ASSERT_STR_EQ(inv.topic, "async/report"); /* where an async invocation's message is */
    ASSERT_STR_EQ(inv.consumer, "run");
    fl_inv_release(&inv);

    ASSERT_OK(fold(ev, 2, &inv));
    ASSERT_EQ(inv.status, FL_INV_RETRYING);
    ASSERT_STR_EQ(status_of(&inv), "retrying");
    ASSERT(json_is_string(json_object_get(inv.json, "nextAttemptAt")));
    ASSERT_EQ(inv.attempts, 1);
    ASSERT_EQ(inv.seq, 7);
    fl_inv_release(&inv);

    ASSERT_OK(fold(ev, 3, &inv));
    ASSERT_EQ(inv.status, FL_INV_SUCCEEDED);
    ASSERT(inv.ended);
    ASSERT_EQ(inv.ended_ms, 3000);
    ASSERT_EQ(json_array_size(json_object_get(inv.json, "attempts")), 2);
    ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(inv.json, "result"), "body")),
                  "ok");
    ASSERT(json_is_null(json_object_get(inv.json, "nextAttemptAt")));
    json_t *sum = fl_inv_summary(&inv);
    ASSERT_EQ(json_integer_value(json_object_get(sum, "attempts")), 2);
    ASSERT(json_object_get(sum, "result") == NULL);
    json_decref(sum);
    fl_inv_release(&inv);
}

TEST(the_first_end_decides_and_only_a_redrive_reopens)
{
    static const char *const ev[][2] = {
        {"queued", QUEUED},
        {"canceled", "{}"},
        /* the attempt under way when it was canceled records its own end */
        {"attempt", "{\"attempt\":1,\"startedAt\":1,\"durationMs\":1,\"status\":200,"
                    "\"end\":\"succeeded\"}"},
    };
    struct fl_inv inv;
    ASSERT_OK(fold(ev, 3, &inv));
    ASSERT_EQ(inv.status, FL_INV_CANCELED);
    ASSERT(inv.cancel_asked);
    fl_inv_release(&inv);

    static const char *const dead[][2] = {
        {"queued", QUEUED},
        {"attempt", "{\"attempt\":1,\"seq\":9,\"status\":500,\"end\":\"dead\"}"},
        {"redriven", "{\"attempts\":1}"},
        {"attempt", "{\"attempt\":2,\"seq\":9,\"status\":500,\"nextAt\":9000}"},
        {"attempt", "{\"attempt\":3,\"seq\":9,\"status\":500,\"end\":\"dead\"}"},
        {"purged", "{}"},
    };
    ASSERT_OK(fold(dead, 2, &inv));
    ASSERT_EQ(inv.status, FL_INV_DEAD);
    fl_inv_release(&inv);
    ASSERT_OK(fold(dead, 3, &inv));
    ASSERT_EQ(inv.status, FL_INV_QUEUED);
    ASSERT(!inv.ended);
    ASSERT_EQ(inv.base, 1);
    fl_inv_release(&inv);
    ASSERT_OK(fold(dead, 6, &inv));
    ASSERT_EQ(inv.status, FL_INV_DEAD);
    ASSERT(inv.purged);
    ASSERT_EQ(inv.attempts, 3);
    ASSERT_EQ(inv.ended_ms, 5000);
    fl_inv_release(&inv);

    static const char *const undriven[][2] = {
        {"queued", QUEUED},
        {"attempt", "{\"attempt\":1,\"status\":500,\"end\":\"dead\"}"},
        {"redriven", "{\"attempts\":1}"},
        {"undriven", "{\"error\":\"ENOENT\"}"},
    };
    ASSERT_OK(fold(undriven, 4, &inv));
    ASSERT_EQ(inv.status, FL_INV_DEAD);
    fl_inv_release(&inv);
}

TEST(lost_attempts_are_listed_and_counted)
{
    static const char *const ev[][2] = {
        {"queued", QUEUED},
        {"attempt", "{\"attempt\":3,\"lost\":[1,2],\"status\":200,\"end\":\"succeeded\"}"},
    };
    struct fl_inv inv;
    ASSERT_OK(fold(ev, 2, &inv));
    json_t *attempts = json_object_get(inv.json, "attempts");
    ASSERT_EQ(json_array_size(attempts), 3);
    json_t *first = json_array_get(attempts, 0);
    ASSERT_EQ(json_integer_value(json_object_get(first, "attempt")), 1);
    ASSERT_EQ(json_integer_value(json_object_get(first, "status")), 0);
    ASSERT(strncmp(json_string_value(json_object_get(first, "error")), "lost", 4) == 0);
    ASSERT_EQ(inv.attempts, 3);
    fl_inv_release(&inv);
}

TEST(events_not_understood_are_skipped_not_fatal)
{
    static const char *const ev[][2] = {
        {"queued", QUEUED},
        {"attempt", "not json"},
        {"mystery", "{}"},
        {"attempt", "{\"attempt\":0}"},
        {"callback", "{\"status\":\"delivered\",\"attempts\":1,\"httpStatus\":204}"},
    };
    struct fl_inv inv;
    ASSERT_EQ(fold(ev, 5, &inv), FL_ECORRUPT);
    ASSERT_EQ(inv.status, FL_INV_QUEUED);
    ASSERT_STR_EQ(status_of(&inv), "queued");
    fl_inv_release(&inv);
}

TEST(an_invocation_names_the_topic_and_consumer_of_its_message)
{
    static const char *const ev[][2] = {
        {"queued", "{\"function\":\"f\",\"topic\":\"orders\",\"consumer\":\"mqt/bill\"}"},
    };
    struct fl_inv inv;
    ASSERT_OK(fold(ev, 1, &inv));
    ASSERT_STR_EQ(inv.topic, "orders");
    ASSERT_STR_EQ(inv.consumer, "mqt/bill");
    fl_inv_release(&inv);
}

TEST(a_callback_is_shown_with_its_last_delivery)
{
    static const char *const ev[][2] = {
        {"queued", "{\"function\":\"f\",\"callback\":\"http://127.0.0.1:9/done\"}"},
        {"callback", "{\"status\":\"retrying\",\"attempts\":1,\"error\":\"refused\"}"},
        {"callback", "{\"status\":\"delivered\",\"attempts\":2,\"httpStatus\":200}"},
    };
    struct fl_inv inv;
    ASSERT_OK(fold(ev, 3, &inv));
    json_t *cb = json_object_get(inv.json, "callback");
    ASSERT_STR_EQ(json_string_value(json_object_get(cb, "url")), "http://127.0.0.1:9/done");
    ASSERT_STR_EQ(json_string_value(json_object_get(cb, "status")), "delivered");
    ASSERT_EQ(json_integer_value(json_object_get(cb, "attempts")), 2);
    ASSERT(json_object_get(cb, "error") == NULL);
    ASSERT_STR_EQ(inv.callback, "http://127.0.0.1:9/done");
    fl_inv_release(&inv);
}

TEST(statuses_have_names_both_ways)
{
    for (int s = 0; s < FL_INV_NSTATUS; s++)
        ASSERT_EQ(fl_inv_status_parse(fl_inv_status_name((enum fl_inv_status)s)), s);
    ASSERT_EQ(fl_inv_status_parse("sleeping"), -1);
}

TEST(retry_delays_grow_exponentially_within_their_bound)
{
    struct fl_retry_policy p = {5, 100, 1000};
    static const int64_t bounds[] = {100, 200, 400, 800, 1000, 1000};
    for (uint32_t attempt = 1; attempt <= 6; attempt++) {
        int64_t lo = INT64_MAX, hi = 0;
        for (int i = 0; i < 2000; i++) {
            int64_t d = fl_retry_delay_ms(&p, attempt);
            ASSERT(d >= 1 && d <= bounds[attempt - 1]);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* full jitter: spread over the whole range, not a fixed step */
        ASSERT(lo < bounds[attempt - 1] / 4);
        ASSERT(hi > bounds[attempt - 1] * 3 / 4);
    }
}

TEST(headers_are_shown_by_lower_case_name_text_only)
{
    const struct fl_http_header h[] = {{"Content-Type", 12, "text/plain", 10},
                                       {"X-Bin", 5, "\xff\xfe", 2}};
    json_t *shown = fl_inv_headers_json(h, 2, "(not text)");
    ASSERT_STR_EQ(json_string_value(json_object_get(shown, "content-type")), "text/plain");
    ASSERT_STR_EQ(json_string_value(json_object_get(shown, "x-bin")), "(not text)");
    json_decref(shown);
    shown = fl_inv_headers_json(h, 2, NULL);
    ASSERT_EQ(json_object_size(shown), 1);
    ASSERT(json_object_get(shown, "x-bin") == NULL);
    json_decref(shown);
}

/* An accepted invocation's message, as async.c publishes it. */
#define MESSAGE                                                                                    \
    "{\"method\":\"POST\",\"path\":\"/orders\",\"query\":\"a=1\",\"headers\":[[\"Content-Type\","  \
    "\"text/plain\"],[\"X-Bin\",\"//4=\",true]],\"added\":[],\"trigger\":2,"                       \
    "\"triggerName\":\"route/jobs\",\"retry\":{\"maxAttempts\":4,\"backoff\":1000,"                \
    "\"maxBackoff\":60000},\"callback\":\"http://127.0.0.1:9/done\",\"idem\":\"idem/report/ab\"}"

TEST(an_invocation_not_taken_yet_is_folded_from_its_message)
{
    json_t *msg = json_loads(MESSAGE, 0, NULL);
    ASSERT(msg != NULL);
    struct fl_inv inv;
    ASSERT_OK(fl_inv_fold_message(ID, "report", msg, 42, 5000, &inv));
    ASSERT_EQ(inv.status, FL_INV_QUEUED);
    ASSERT_STR_EQ(status_of(&inv), "queued");
    ASSERT(!inv.ended);
    ASSERT_STR_EQ(inv.function, "report");
    ASSERT_EQ(inv.seq, 42); /* where its message is */
    ASSERT_STR_EQ(inv.topic, "async/report");
    ASSERT_STR_EQ(inv.consumer, "run");
    ASSERT_EQ(inv.created_ms, 5000);
    ASSERT_EQ(inv.retry.max_attempts, 4);
    ASSERT_STR_EQ(inv.callback, "http://127.0.0.1:9/done");
    ASSERT_STR_EQ(inv.idem, "idem/report/ab");
    ASSERT_EQ(inv.attempts, 0);
    /* the request summary the API shows */
    json_t *req = json_object_get(inv.json, "request");
    ASSERT_STR_EQ(json_string_value(json_object_get(req, "method")), "POST");
    ASSERT_STR_EQ(json_string_value(json_object_get(req, "path")), "/orders");
    ASSERT_STR_EQ(json_string_value(json_object_get(req, "query")), "a=1");
    json_t *headers = json_object_get(req, "headers");
    ASSERT_STR_EQ(json_string_value(json_object_get(headers, "content-type")), "text/plain");
    ASSERT_STR_EQ(json_string_value(json_object_get(headers, "x-bin")), "(not text)");
    ASSERT_STR_EQ(json_string_value(json_object_get(inv.json, "trigger")), "route/jobs");
    ASSERT_STR_EQ(json_string_value(json_object_get(inv.json, "function")), "report");

    /* its queued event, to begin the history with, folds to the same */
    ASSERT(inv.queued != NULL);
    ASSERT_EQ(json_integer_value(json_object_get(inv.queued, "acceptedAt")), 5000);
    char *text = json_dumps(inv.queued, JSON_COMPACT);
    const char *ev[][2] = {{"queued", text}};
    struct fl_inv begun;
    ASSERT_OK(fold(ev, 1, &begun)); /* written at 1000: created when accepted */
    ASSERT_EQ(begun.created_ms, 5000);
    ASSERT(begun.queued == NULL);
    json_t *a = json_object_get(begun.json, "request"), *b = json_object_get(inv.json, "request");
    ASSERT(json_equal(a, b));
    ASSERT_STR_EQ(begun.idem, "idem/report/ab");
    fl_inv_release(&begun);
    free(text);
    fl_inv_release(&inv);
    ASSERT(inv.queued == NULL);
    json_decref(msg);
}

/* A header as accepts stored it with jansson: [name, value], or [name,
 * base64 of value, true] for a value that is not UTF-8. */
static json_t *reference_header(const struct fl_http_header *h)
{
    json_t *v = json_stringn(h->value, h->value_len);
    if (v != NULL)
        return json_pack("[s#,o]", h->name, (int)h->name_len, v);
    char b[256];
    ASSERT(FL_BASE64_LEN(h->value_len) < sizeof(b));
    b[fl_base64_encode(b, h->value, h->value_len)] = '\0';
    return json_pack("[s#,s,b]", h->name, (int)h->name_len, b, 1);
}

/* The headers that are kept: all but the hop-by-hop ones. */
static json_t *reference_headers(const struct fl_http_header *h, size_t n)
{
    static const char *const hop[] = {"Content-Length", "Connection", "Transfer-Encoding"};
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        bool skip = false;
        for (size_t k = 0; k < sizeof(hop) / sizeof(hop[0]); k++)
            skip |= strcmp(h[i].name, hop[k]) == 0;
        if (!skip)
            json_array_append_new(arr, reference_header(&h[i]));
    }
    return arr;
}

/* The message's headers as jansson would write them: the fields in their
 * order, the absent ones left out. */
static char *reference_message(const struct fl_inv_message *m)
{
    json_t *o = json_pack("{s:s,s:s}", "method", m->method, "path", m->path);
    ASSERT(o != NULL);
    if (m->query != NULL)
        json_object_set_new(o, "query", json_string(m->query));
    json_object_set_new(o, "headers", reference_headers(m->headers, m->nheaders));
    if (m->nadded > 0)
        json_object_set_new(o, "added", reference_headers(m->added, m->nadded));
    json_object_set_new(o, "trigger", json_integer(m->trigger));
    json_object_set_new(o, "triggerName", json_string(m->trigger_name));
    json_object_set_new(o, "retry",
                        json_pack("{s:i,s:I,s:I}", "maxAttempts", (int)m->retry.max_attempts,
                                  "backoff", (json_int_t)m->retry.backoff_ms, "maxBackoff",
                                  (json_int_t)m->retry.max_backoff_ms));
    if (m->callback != NULL)
        json_object_set_new(o, "callback", json_string(m->callback));
    if (m->idem != NULL)
        json_object_set_new(o, "idem", json_string(m->idem));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

#define HDR(n, v)                                                                                  \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

TEST(a_message_is_written_as_jansson_would_and_read_back)
{
    const struct fl_http_header headers[] = {
        HDR("Content-Type", "application/json"),
        HDR("X-Quote", "say \"hi\" \\ back\tslash /"),
        HDR("X-Ctl", "a\x01\x1f\x7f"),
        HDR("X-Utf8", "caf\xc3\xa9 \xe2\x82\xac"),
        HDR("X-Bin", "\xff\xfe not text"),
        HDR("X-Empty", ""),
        HDR("Content-Length", "12"), /* framing: not kept */
        HDR("Connection", "keep-alive"),
    };
    const struct fl_http_header added[] = {HDR("X-Flint-Scheduled-Time", "2026-01-01T00:00:00Z")};
    const struct fl_inv_message cases[] = {
        {.method = "POST",
         .path = "/orders/\xc3\xa9t\xc3\xa9",
         .query = "a=1&b=\"x\"",
         .headers = headers,
         .nheaders = sizeof(headers) / sizeof(headers[0]),
         .added = added,
         .nadded = 1,
         .trigger = FL_TRIGGER_HTTP,
         .trigger_name = "route/jobs",
         .retry = {4, 1000, 60000},
         .callback = "http://127.0.0.1:9/done",
         .idem = "idem/report/ab"},
        /* no query, no headers, no callback, no key */
        {.method = "GET",
         .path = "/",
         .trigger = FL_TRIGGER_API,
         .trigger_name = "api",
         .retry = {1, 1, 1}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fl_buf b;
        fl_buf_init(&b, 1 << 20);
        ASSERT_OK(fl_buf_appends(&b, "kept"));
        ASSERT_OK(fl_inv_message_write(&b, &cases[i]));
        char *want = reference_message(&cases[i]);
        ASSERT_STR_EQ(b.data + 4, want);
        free(want);
        /* the readers take it: the queued event and the fold */
        json_t *msg = json_loads(b.data + 4, 0, NULL);
        ASSERT(msg != NULL);
        struct fl_inv inv;
        ASSERT_OK(fl_inv_fold_message(ID, "report", msg, 1, 5000, &inv));
        json_t *req = json_object_get(inv.json, "request");
        ASSERT_STR_EQ(json_string_value(json_object_get(req, "method")), cases[i].method);
        ASSERT_STR_EQ(json_string_value(json_object_get(req, "path")), cases[i].path);
        ASSERT_EQ(inv.retry.max_attempts, cases[i].retry.max_attempts);
        if (i == 1) {
            /* what is left out reads as none */
            ASSERT(strstr(b.data, "query") == NULL && strstr(b.data, "added") == NULL);
            ASSERT(strstr(b.data, "callback") == NULL && strstr(b.data, "idem") == NULL);
            ASSERT(json_is_null(json_object_get(req, "query")));
            ASSERT(inv.callback == NULL && inv.idem == NULL);
            ASSERT(json_is_null(json_object_get(inv.queued, "callback")));
        }
        if (i == 0) {
            json_t *h = json_object_get(req, "headers");
            ASSERT(json_object_get(h, "content-length") == NULL);
            ASSERT(json_object_get(h, "connection") == NULL);
            ASSERT_EQ(json_object_size(h), 6);
            ASSERT_STR_EQ(inv.idem, "idem/report/ab");
            ASSERT_STR_EQ(json_string_value(json_object_get(h, "x-quote")),
                          "say \"hi\" \\ back\tslash /");
            ASSERT_STR_EQ(json_string_value(json_object_get(h, "x-bin")), "(not text)");
            ASSERT_STR_EQ(json_string_value(json_object_get(req, "query")), "a=1&b=\"x\"");
            ASSERT_STR_EQ(inv.callback, "http://127.0.0.1:9/done");
        }
        fl_inv_release(&inv);
        json_decref(msg);
        fl_buf_release(&b);
    }
}

TEST(a_message_written_before_with_nulls_reads_as_one_without_them)
{
    static const char *const forms[] = {
        "{\"method\":\"GET\",\"path\":\"/\",\"query\":null,\"headers\":[],\"added\":[],"
        "\"trigger\":1,\"triggerName\":\"api\",\"retry\":{\"maxAttempts\":2,\"backoff\":1,"
        "\"maxBackoff\":1},\"callback\":null,\"idem\":null}",
        "{\"method\":\"GET\",\"path\":\"/\",\"headers\":[],\"trigger\":1,\"triggerName\":"
        "\"api\",\"retry\":{\"maxAttempts\":2,\"backoff\":1,\"maxBackoff\":1}}",
    };
    char *events[2];
    for (size_t i = 0; i < 2; i++) {
        json_t *msg = json_loads(forms[i], 0, NULL);
        ASSERT(msg != NULL);
        struct fl_inv inv;
        ASSERT_OK(fl_inv_fold_message(ID, "report", msg, 1, 5000, &inv));
        ASSERT(inv.callback == NULL && inv.idem == NULL);
        ASSERT_EQ(inv.retry.max_attempts, 2);
        events[i] = json_dumps(inv.queued, JSON_COMPACT | JSON_SORT_KEYS);
        fl_inv_release(&inv);
        json_decref(msg);
    }
    ASSERT_STR_EQ(events[0], events[1]); /* the same queued event */
    free(events[0]);
    free(events[1]);
}

TEST(a_request_that_is_not_utf8_text_is_refused_and_nothing_is_written)
{
    const struct fl_http_header bad_name[] = {{"X-\xff", 3, "v", 1}};
    struct fl_inv_message m = {.method = "POST",
                               .path = "/",
                               .trigger = FL_TRIGGER_API,
                               .trigger_name = "api",
                               .retry = {3, 1000, 300000}};
    struct fl_buf b;
    fl_buf_init(&b, 1 << 20);
    ASSERT_OK(fl_buf_appends(&b, "kept"));
    m.method = "P\xffST";
    ASSERT_EQ(fl_inv_message_write(&b, &m), FL_EINVAL);
    m.method = "POST";
    m.path = "/x\xc3(";
    ASSERT_EQ(fl_inv_message_write(&b, &m), FL_EINVAL);
    m.path = "/";
    m.query = "a=\xed\xa0\x80"; /* a surrogate */
    ASSERT_EQ(fl_inv_message_write(&b, &m), FL_EINVAL);
    m.query = NULL;
    m.headers = bad_name;
    m.nheaders = 1;
    ASSERT_EQ(fl_inv_message_write(&b, &m), FL_EINVAL);
    ASSERT_STR_EQ(b.data, "kept");
    ASSERT_EQ(b.len, 4);
    fl_buf_release(&b);
    /* past the buffer's maximum: FL_ETOOBIG, and unchanged too */
    m.nheaders = 0;
    fl_buf_init(&b, 32);
    ASSERT_OK(fl_buf_appends(&b, "kept"));
    ASSERT_EQ(fl_inv_message_write(&b, &m), FL_ETOOBIG);
    ASSERT_STR_EQ(b.data, "kept");
    fl_buf_release(&b);
}

TEST(a_message_that_is_not_a_request_folds_to_nothing)
{
    static const char *const bad[] = {"{}", "{\"method\":\"GET\"}", "{\"path\":\"/\"}",
                                      "{\"method\":1,\"path\":\"/\"}", "[]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *msg = json_loads(bad[i], 0, NULL);
        ASSERT(msg != NULL);
        ASSERT(fl_inv_queued_event("f", msg, 1) == NULL);
        struct fl_inv inv;
        ASSERT_EQ(fl_inv_fold_message(ID, "f", msg, 1, 1, &inv), FL_ECORRUPT);
        json_decref(msg);
    }
    struct fl_inv inv;
    ASSERT_EQ(fl_inv_fold_message(ID, "f", NULL, 1, 1, &inv), FL_ECORRUPT);
    /* an old message, without idem: none */
    json_t *msg = json_loads("{\"method\":\"GET\",\"path\":\"/\"}", 0, NULL);
    json_t *q = fl_inv_queued_event("f", msg, 1);
    ASSERT(json_is_null(json_object_get(q, "idem")));
    ASSERT_STR_EQ(json_string_value(json_object_get(q, "trigger")), "api");
    json_decref(q);
    json_decref(msg);
}
