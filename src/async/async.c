/*
 * The async engine (async.h): accepting invocations, the function queues
 * and their attempts, and the retention sweep. The API's reading and
 * steering is in api.c, the callbacks in callback.c.
 *
 * Objects:
 *   struct fl_async  the module: its queues, the attempts under way, a tick
 *                    (in-progress signals, the sweep)
 *   struct aq        a function's queue (internal.h)
 *   struct sub       one submission, from the idempotency check to the
 *                    answer
 *   struct attempt   one delivery of a message: history read, call, outcome
 *                    recorded, acknowledged
 *
 * Every store operation whose callback is to come is counted (a->ops), so
 * that closing waits for them and never frees what a callback will touch.
 */
#include "async/internal.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/sha256.h"
#include "base/str.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- submitting ---- */

struct sub {
    struct fl_queue link; /* aq.waiting */
    struct fl_async *a;
    struct aq *q;
    char id[FL_UUID_STRLEN + 1];
    char idem[12 + FL_NAME_MAX + FL_SHA256_HEX];
    char *headers; /* the message's headers: the request, as JSON */
    void *body;
    size_t body_len;
    fl_async_submit_cb cb;
    void *data;
};

static void sub_free(struct sub *s)
{
    free(s->headers);
    free(s->body);
    free(s);
}

static void sub_answer(struct sub *s, int err, const char *id, bool duplicate)
{
    s->cb(err, id, duplicate, s->data);
    sub_free(s);
}

static void on_published(int err, const struct fl_store_result *res, void *data)
{
    struct sub *s = data;
    struct fl_async *a = s->a;
    if (err < 0) {
        /* nothing of it is stored: free the key for a retry */
        if (s->idem[0] != '\0')
            fl_store_stream_delete(a->store, s->idem, NULL, NULL);
        sub_answer(s, err, NULL, false);
    } else {
        if (a->metrics != NULL) {
            static const char *const labels[] = {"function"};
            fl_metric_add(fl_metrics_counter(a->metrics, "flint_async_accepted_total",
                                             "Async invocations accepted.", 1, labels),
                          (const char *[]){s->q->fn}, 1);
        }
        sub_answer(s, 0, s->id, false);
    }
    async_op_done(a);
}

/* The topic is there: publish the message, the one write of an accept
 * (its history begins when a worker takes it, history.h). 0, or an error
 * and nothing was handed over. */
static int sub_go(struct sub *s)
{
    struct fl_async *a = s->a;
    int rc = fl_store_publish(a->store, s->q->topic, s->headers, s->id, s->body, s->body_len,
                              on_published, s);
    if (rc == 0)
        async_op(a);
    return rc;
}

/* Answer s from the loop, with its error if it cannot go. */
static void sub_flush(struct sub *s)
{
    int rc = sub_go(s);
    if (rc < 0)
        sub_answer(s, rc, NULL, false);
}

static void sub_ready(struct sub *s)
{
    if (s->q->state == AQ_READY)
        sub_flush(s);
    else
        fl_queue_insert_tail(&s->q->waiting, &s->link);
}

static void on_idem_read(int err, const struct fl_store_result *res, void *data)
{
    struct sub *s = data;
    struct fl_async *a = s->a;
    json_t *d = err == 0 && res->n > 0
                    ? json_loadb(res->records[0].data, res->records[0].len, 0, NULL)
                    : NULL;
    const char *id = json_string_value(json_object_get(d, "invocation"));
    if (id != NULL && strlen(id) == FL_UUID_STRLEN)
        sub_answer(s, 0, id, true);
    else
        sub_answer(s, err < 0 ? err : FL_ECORRUPT, NULL, false);
    json_decref(d);
    async_op_done(a);
}

static void on_idem(int err, const struct fl_store_result *res, void *data)
{
    struct sub *s = data;
    struct fl_async *a = s->a;
    if (err == FL_ECONFLICT) {
        /* the key was used: its first invocation is the answer */
        if (fl_store_read(a->store, s->idem, 1, 1, on_idem_read, s) == 0)
            async_op(a);
        else
            sub_answer(s, FL_ENOMEM, NULL, false);
    } else if (err < 0) {
        sub_answer(s, err, NULL, false);
    } else {
        sub_ready(s);
    }
    async_op_done(a);
}

int fl_async_submit(struct fl_async *a, const struct fl_async_request *r, fl_async_submit_cb cb,
                    void *data)
{
    if (a->closing)
        return FL_ECANCELED;
    if (r->target.kind != FL_INVOKE_FUNCTION)
        return FL_ENOTSUP;
    if (r->body_len > a->max_body)
        return FL_ETOOBIG;
    if (r->idempotency_key != NULL &&
        (strlen(r->idempotency_key) == 0 || strlen(r->idempotency_key) > IDEM_KEY_MAX))
        return FL_EINVAL;
    struct fl_retry_policy policy;
    int rc = a->policy_of(a->policy_data, r->target.name, &policy);
    /* no such function yet, while the store's functions are still being
     * loaded after a start: not a 404, a moment to wait */
    if (rc == FL_ENOENT && a->ready != NULL && !a->ready(a->ready_data))
        return FL_EAGAIN;
    if (rc < 0)
        return rc;
    if (r->retry != NULL)
        policy = *r->retry;
    struct aq *q = async_queue(a, r->target.name);
    struct sub *s = calloc(1, sizeof(*s));
    if (q == NULL || s == NULL) {
        free(s);
        return FL_ENOMEM;
    }
    s->a = a;
    s->q = q;
    s->cb = cb;
    s->data = data;
    fl_queue_init(&s->link);
    if ((rc = fl_uuid7(s->id)) < 0)
        goto fail;
    if (r->body_len > 0) {
        if ((s->body = malloc(r->body_len)) == NULL)
            goto nomem;
        memcpy(s->body, r->body, r->body_len);
        s->body_len = r->body_len;
    }
    const char *trigger = r->trigger_name != NULL ? r->trigger_name : "api";
    if (r->idempotency_key != NULL) {
        struct fl_sha256 h;
        char hex[FL_SHA256_HEX];
        fl_sha256_init(&h);
        fl_sha256_update(&h, r->idempotency_key, strlen(r->idempotency_key));
        fl_sha256_final_hex(&h, hex);
        snprintf(s->idem, sizeof(s->idem), "idem/%s/%s", r->target.name, hex);
    }
    /* the message's headers: history.h says their form */
    const struct fl_inv_message m = {.method = r->method,
                                     .path = r->path,
                                     .query = r->query,
                                     .headers = r->headers,
                                     .nheaders = r->nheaders,
                                     .added = r->added,
                                     .nadded = r->nadded,
                                     .trigger = (int)r->trigger,
                                     .trigger_name = trigger,
                                     .retry = policy,
                                     .callback = r->callback_url,
                                     .idem = s->idem[0] != '\0' ? s->idem : NULL};
    struct fl_buf hb;
    fl_buf_init(&hb, ASYNC_HEADERS_MAX);
    if ((rc = fl_inv_message_write(&hb, &m)) < 0) {
        fl_buf_release(&hb);
        goto fail;
    }
    if ((s->headers = fl_buf_detach(&hb, NULL)) == NULL)
        goto nomem;
    if (s->idem[0] != '\0') {
        json_t *d = json_pack("{s:s}", "invocation", s->id);
        char *text = d != NULL ? json_dumps(d, JSON_COMPACT) : NULL;
        json_decref(d);
        if (text == NULL)
            goto nomem;
        struct fl_event_in ev = {"key", text, strlen(text)};
        rc = fl_store_append(a->store, s->idem, &ev, 1, 0, on_idem, s);
        free(text);
        if (rc < 0)
            goto fail;
        async_op(a);
        return 0;
    }
    /* answered from the loop, never from inside this call */
    if (q->state != AQ_READY) {
        fl_queue_insert_tail(&q->waiting, &s->link);
        return 0;
    }
    if ((rc = sub_go(s)) < 0)
        goto fail;
    return 0;
nomem:
    rc = FL_ENOMEM;
fail:
    sub_free(s);
    return rc;
}

/* ---- queues ---- */

static void on_notify(int err, const struct fl_store_result *res, void *data)
{
    async_pump(data);
}

static void aq_failed(struct aq *q, int err)
{
    q->state = AQ_FAILED;
    fl_log(FL_LOG_ERROR, "async", "could not make a function's async queue", "function=%s error=%s",
           q->fn, fl_errname(err));
    while (!fl_queue_empty(&q->waiting)) {
        struct sub *s = FL_QUEUE_DATA(fl_queue_first(&q->waiting), struct sub, link);
        fl_queue_remove(&s->link);
        sub_answer(s, err, NULL, false);
    }
}

static void on_consumer(int err, const struct fl_store_result *res, void *data)
{
    struct aq *q = data;
    struct fl_async *a = q->a;
    if (err == 0 && !a->closing)
        err = fl_store_notify(a->store, q->topic, ASYNC_CONSUMER, on_notify, q, &q->notify);
    if (err < 0) {
        aq_failed(q, err);
    } else if (a->closing) {
        aq_failed(q, FL_ECANCELED);
    } else {
        q->state = AQ_READY;
        while (!fl_queue_empty(&q->waiting)) {
            struct sub *s = FL_QUEUE_DATA(fl_queue_first(&q->waiting), struct sub, link);
            fl_queue_remove(&s->link);
            sub_flush(s);
        }
        async_pump(q);
    }
    async_op_done(a);
}

static void on_topic(int err, const struct fl_store_result *res, void *data)
{
    struct aq *q = data;
    struct fl_async *a = q->a;
    if (err == 0 && a->closing)
        err = FL_ECANCELED;
    if (err == 0) {
        struct fl_consumer_config cfg = {.ack_wait_ms = ASYNC_ACK_WAIT_MS,
                                         .max_deliver = 2 * FL_RETRY_MAX_ATTEMPTS,
                                         .deliver = FL_DELIVER_ALL};
        err = fl_store_consumer_create(a->store, q->topic, ASYNC_CONSUMER, &cfg, on_consumer, q);
        if (err == 0)
            async_op(a);
    }
    if (err < 0)
        aq_failed(q, err);
    async_op_done(a);
}

static void aq_ensure(struct aq *q)
{
    struct fl_async *a = q->a;
    if (q->state == AQ_CREATING || q->state == AQ_READY)
        return;
    q->state = AQ_CREATING;
    /* a message's id is a new invocation id, unique already: the store
     * keeps no de-duplication entry for it (an Idempotency-Key is checked
     * by a stream of its own, fl_async_submit) */
    struct fl_topic_limits limits = {.dup_window_ms = FL_TOPIC_DEDUP_NONE, .interest = true};
    int rc = fl_store_topic_create(a->store, q->topic, &limits, on_topic, q);
    if (rc < 0)
        aq_failed(q, rc);
    else
        async_op(a);
}

struct aq *async_queue(struct fl_async *a, const char *fn)
{
    struct fl_queue *e, *tmp;
    struct aq *q;
    FL_QUEUE_FOREACH(e, tmp, &a->queues)
    {
        q = FL_QUEUE_DATA(e, struct aq, link);
        if (strcmp(q->fn, fn) == 0) {
            if (q->state == AQ_FAILED)
                aq_ensure(q);
            return q;
        }
    }
    if (strlen(fn) > FL_NAME_MAX || (q = calloc(1, sizeof(*q))) == NULL)
        return NULL;
    q->a = a;
    fl_strlcpy(q->fn, fn, sizeof(q->fn));
    snprintf(q->topic, sizeof(q->topic), ASYNC_TOPIC_PREFIX "%s", fn);
    fl_queue_init(&q->waiting);
    fl_queue_insert_tail(&a->queues, &q->link);
    aq_ensure(q);
    return q;
}

/* ---- attempts ---- */

struct attempt {
    struct fl_queue link; /* fl_async.attempts */
    struct fl_async *a;
    struct aq *q;
    char id[FL_UUID_STRLEN + 1];
    uint64_t seq;
    uint32_t deliveries;
    json_t *msg; /* the request (the message's headers) */
    char *body;
    size_t body_len;
    struct fl_invoke *call;
    int64_t accepted_ms; /* when its message was published */
    bool begun;          /* its history has begun (history.h) */
    uint32_t number;     /* the attempt's number */
    uint32_t lost_from;
    struct fl_retry_policy policy;
    uint64_t start_ns;
    int64_t start_ms;
    int64_t progress_ms; /* when in-progress was last signalled */
    bool canceled;       /* by an operator */
    char *callback;
    struct fl_http_header headers[FL_INVOKE_MAX_HEADERS];
    struct fl_http_header added[FL_INVOKE_MAX_ADDED];
};

struct attempt *async_running(struct fl_async *a, const char *id)
{
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &a->attempts)
    {
        struct attempt *at = FL_QUEUE_DATA(e, struct attempt, link);
        if (at->call != NULL && strcmp(at->id, id) == 0)
            return at;
    }
    return NULL;
}

uint32_t async_attempt_number(const struct attempt *at)
{
    return at->number;
}

void async_attempt_cancel(struct attempt *at)
{
    at->canceled = true;
    if (at->call != NULL)
        fl_invoke_cancel(at->call); /* its outcome records the end */
}

static void attempt_free(struct attempt *at)
{
    struct aq *q = at->q;
    struct fl_async *a = at->a;
    fl_queue_remove(&at->link);
    json_decref(at->msg);
    free(at->body);
    free(at->callback);
    free(at);
    q->inflight--;
    if (a->closing)
        async_maybe_done(a);
    else
        async_pump(q);
}

/* Record an event of at's (an attempt's outcome): after what its history
 * holds, or as the first event after the queued one if it has not begun
 * (should a cancel begin it meanwhile, after that). cb may be NULL. */
static int attempt_record(struct attempt *at, const char *type, json_t *d, fl_store_cb cb,
                          void *data)
{
    struct fl_async *a = at->a;
    json_t *queued = at->begun ? NULL : fl_inv_queued_event(at->q->fn, at->msg, at->accepted_ms);
    if (queued == NULL && !at->begun)
        return FL_ENOMEM; /* the message is a request: attempt_start checked */
    int rc = queued != NULL ? async_append_first(a, at->id, queued, type, d, true, cb, data)
                            : async_append(a, at->id, type, d, FL_SEQ_ANY, cb, data);
    json_decref(queued);
    if (rc == 0)
        at->begun = true;
    return rc;
}

static void on_acked(int err, const struct fl_store_result *res, void *data)
{
    struct attempt *at = data;
    struct fl_async *a = at->a;
    if (err < 0 && err != FL_ENOENT)
        fl_log(FL_LOG_ERROR, "async", "could not acknowledge an attempt", "invocation=%s error=%s",
               at->id, fl_errname(err));
    attempt_free(at);
    async_op_done(a);
}

static void attempt_ack(struct attempt *at, enum fl_ack_kind kind, int64_t delay_ms,
                        const char *reason)
{
    struct fl_async *a = at->a;
    if (fl_store_ack(a->store, at->q->topic, ASYNC_CONSUMER, at->seq, kind, delay_ms, reason,
                     on_acked, at) == 0)
        async_op(a);
    else
        attempt_free(at); /* it comes back after the ack wait */
}

struct ending {
    struct attempt *at;
    enum fl_ack_kind kind;
    int64_t delay_ms;
    char reason[256];
    json_t *callback; /* the payload to send, or NULL */
};

static void ending_ack(struct ending *e)
{
    attempt_ack(e->at, e->kind, e->delay_ms, e->reason[0] ? e->reason : NULL);
    json_decref(e->callback);
    free(e);
}

static void on_callback_queued(int err, const struct fl_store_result *res, void *data)
{
    struct ending *e = data;
    struct fl_async *a = e->at->a;
    async_op_done(a);
    if (err < 0) {
        /* the invocation has ended, but its callback is not queued: leave
         * the message to come back, when the callback is queued again */
        fl_log(FL_LOG_ERROR, "async", "could not queue a callback", "invocation=%s error=%s",
               e->at->id, fl_errname(err));
        attempt_free(e->at);
        json_decref(e->callback);
        free(e);
        return;
    }
    ending_ack(e);
}

/* The outcome is recorded: queue the callback if it ended and has one,
 * then acknowledge. */
static void ending_go(struct ending *e)
{
    struct attempt *at = e->at;
    if (e->callback == NULL || at->callback == NULL) {
        ending_ack(e);
        return;
    }
    if (async_callback_queue(at->a, at->id, at->callback, e->callback, on_callback_queued, e) ==
        0) {
        async_op(at->a);
        return;
    }
    /* not queued: leave the message to come back after its ack wait, when
     * the ended invocation's callback is queued again */
    attempt_free(at);
    json_decref(e->callback);
    free(e);
}

static void on_recorded(int err, const struct fl_store_result *res, void *data)
{
    struct ending *e = data;
    if (err < 0) {
        /* not recorded: the message comes back after the ack wait, and
         * this attempt is then counted as lost */
        attempt_free(e->at);
        json_decref(e->callback);
        free(e);
        return;
    }
    ending_go(e);
}

/* The API's form of a final answer. */
static json_t *result_json(const struct fl_invoke_outcome *o)
{
    json_t *headers = fl_inv_headers_json(o->headers, o->nheaders, NULL);
    size_t len = o->body_len < ASYNC_RESULT_MAX ? o->body_len : ASYNC_RESULT_MAX;
    const char *encoding;
    json_t *body = async_body_json(o->body != NULL ? o->body : "", len, &encoding);
    return json_pack("{s:i,s:o,s:o,s:s,s:b}", "status", o->status, "headers", headers, "body",
                     body != NULL ? body : json_string(""), "bodyEncoding", encoding, "truncated",
                     o->body_len > len);
}

/* Whether an answer is worth another attempt: 5xx, 429, a timeout, a crash,
 * a connection failure. */
static bool retryable(const struct fl_invoke_outcome *o)
{
    switch (o->error) {
    case FL_INVOKE_OK:
        return o->status >= 500 || o->status == 429;
    case FL_INVOKE_NOT_FOUND:
    case FL_INVOKE_CANCELED:
        return false;
    default:
        return true;
    }
}

static void count_attempt(struct fl_async *a, const char *fn, const char *outcome)
{
    if (a->metrics == NULL)
        return;
    static const char *const labels[] = {"function", "outcome"};
    fl_metric_add(fl_metrics_counter(a->metrics, "flint_async_attempts_total",
                                     "Attempts of async invocations, by how they ended "
                                     "(succeeded, failed, retrying, dead, canceled, lost).",
                                     2, labels),
                  (const char *[]){fn, outcome}, 1);
}

static void on_outcome(const struct fl_invoke_outcome *o, void *data)
{
    struct attempt *at = data;
    struct fl_async *a = at->a;
    at->call = NULL;
    int64_t duration_ms = (int64_t)((fl_clock_mono_ns() - at->start_ns) / 1000000);
    struct ending *e = calloc(1, sizeof(*e));
    json_t *d =
        json_pack("{s:i,s:I,s:I,s:I,s:i}", "attempt", (int)at->number, "seq", (json_int_t)at->seq,
                  "startedAt", (json_int_t)at->start_ms, "durationMs", (json_int_t)duration_ms,
                  "status", o->error == FL_INVOKE_CANCELED && !at->canceled ? 0 : o->status);
    if (e == NULL || d == NULL) {
        free(e);
        json_decref(d);
        attempt_free(at);
        return;
    }
    e->at = at;
    if (at->lost_from > 0 && at->lost_from < at->number) {
        json_t *lost = json_array();
        for (uint32_t k = at->lost_from; k < at->number; k++)
            json_array_append_new(lost, json_integer(k));
        json_object_set_new(d, "lost", lost);
    }
    if (o->error != FL_INVOKE_OK || o->status >= 400) {
        char error[512];
        if (o->error != FL_INVOKE_OK)
            snprintf(error, sizeof(error), "%s: %.400s", o->code, o->message ? o->message : "");
        else
            snprintf(error, sizeof(error), "the function answered %d", o->status);
        json_object_set_new(d, "error", json_string(error));
        snprintf(e->reason, sizeof(e->reason), "attempt %u: %.200s", at->number, error);
    }
    const char *end = NULL, *outcome;
    if (o->error == FL_INVOKE_CANCELED && !at->canceled) {
        /* flintd is stopping: the message comes back at the next start */
        json_object_set_new(d, "error", json_string("lost: flintd stopped during the attempt"));
        e->kind = FL_NAK;
        outcome = "lost";
    } else if (at->canceled) {
        end = "canceled";
        e->kind = FL_TERM;
        outcome = "canceled";
    } else if (o->error == FL_INVOKE_OK && o->status < 400) {
        end = "succeeded";
        e->kind = FL_ACK;
        outcome = end;
    } else if (!retryable(o)) {
        end = "failed";
        e->kind = FL_TERM;
        outcome = end;
    } else if (at->deliveries >= at->policy.max_attempts) {
        end = "dead";
        e->kind = FL_DEAD;
        outcome = end;
    } else {
        e->kind = FL_NAK;
        e->delay_ms = fl_retry_delay_ms(&at->policy, at->deliveries);
        json_object_set_new(d, "nextAt", json_integer(fl_clock_wall_ms() + e->delay_ms));
        outcome = "retrying";
    }
    count_attempt(a, at->q->fn, outcome);
    if (end != NULL) {
        json_t *result = result_json(o);
        json_object_set_new(d, "end", json_string(end));
        json_object_set(d, "result", result);
        if (at->callback != NULL)
            e->callback = json_pack("{s:s,s:s,s:s,s:o}", "invocation", at->id, "function",
                                    at->q->fn, "status", end, "result", json_incref(result));
        json_decref(result);
    }
    int rc = attempt_record(at, "attempt", d, on_recorded, e);
    json_decref(d);
    if (rc < 0) {
        json_decref(e->callback);
        free(e);
        attempt_free(at);
    }
}

/* The headers of a message (history.h's forms) into out: n, or -1. */
static int headers_from(json_t *arr, struct fl_http_header *out, size_t max)
{
    size_t i, n = 0;
    json_t *h;
    json_array_foreach(arr, i, h)
    {
        json_t *name = json_array_get(h, 0), *value = json_array_get(h, 1);
        if (!json_is_string(name) || !json_is_string(value))
            return -1;
        if (json_is_true(json_array_get(h, 2)))
            continue; /* a value that is not text: it cannot be passed on as it was */
        if (n == max)
            break;
        out[n++] = (struct fl_http_header){json_string_value(name), json_string_length(name),
                                           json_string_value(value), json_string_length(value)};
    }
    return (int)n;
}

static void attempt_start(struct attempt *at)
{
    struct fl_async *a = at->a;
    json_t *m = at->msg;
    int nh = headers_from(json_object_get(m, "headers"), at->headers, FL_INVOKE_MAX_HEADERS);
    int na = headers_from(json_object_get(m, "added"), at->added, FL_INVOKE_MAX_ADDED);
    const char *method = json_string_value(json_object_get(m, "method"));
    const char *path = json_string_value(json_object_get(m, "path"));
    json_int_t trigger = json_integer_value(json_object_get(m, "trigger"));
    if (nh < 0 || na < 0 || method == NULL || path == NULL) {
        fl_log(FL_LOG_ERROR, "async", "an async message is not a request; parked as dead",
               "invocation=%s", at->id);
        attempt_ack(at, FL_DEAD, 0, "the message is not a request this flintd understands");
        return;
    }
    struct fl_invoke_request req = {
        .target = {FL_INVOKE_FUNCTION, at->q->fn},
        .method = method,
        .path = path,
        .query = json_string_value(json_object_get(m, "query")),
        .headers = at->headers,
        .nheaders = (size_t)nh,
        .added = at->added,
        .nadded = (size_t)na,
        .body = at->body,
        .body_len = at->body_len,
        .invocation_id = at->id,
        .attempt = at->number,
        .trigger = trigger > 0 && trigger < FL_TRIGGER_COUNT ? (enum fl_invoke_trigger)trigger
                                                             : FL_TRIGGER_ASYNC,
        /* "api", "route/NAME", "timetrigger/NAME": what X-Flint-Trigger says */
        .trigger_name = json_string_value(json_object_get(m, "triggerName")),
    };
    at->start_ns = fl_clock_mono_ns();
    at->start_ms = fl_clock_wall_ms();
    at->progress_ms = at->start_ms;
    struct fl_invoke *call;
    int rc = fl_invoke_start(a->invoker, &req, on_outcome, at, &call);
    if (rc == FL_ECANCELED || rc == FL_ENOMEM) {
        /* cannot start now (closing, out of memory): it comes back */
        attempt_ack(at, FL_NAK, rc == FL_ECANCELED ? 0 : 1000, NULL);
        return;
    }
    if (rc < 0) {
        /* a request the invoker refuses (over its header budget): an
         * attempt that failed, retried by the policy, then a dead letter */
        char message[128];
        snprintf(message, sizeof(message), "the invoker refused the request: %s", fl_errname(rc));
        const struct fl_invoke_outcome o = {.error = FL_INVOKE_FAILED,
                                            .status = 500,
                                            .code = "cannot_start",
                                            .message = message,
                                            .invocation_id = at->id};
        on_outcome(&o, at);
        return;
    }
    at->call = call;
}

static void on_history(int err, struct fl_inv *inv, uint64_t last_seq, void *data)
{
    struct attempt *at = data;
    struct fl_async *a = at->a;
    if (a->closing) {
        attempt_ack(at, FL_NAK, 0, NULL);
        return;
    }
    if (err < 0 && err != FL_ENOENT) {
        attempt_ack(at, FL_NAK, 1000, NULL); /* try again in a moment */
        return;
    }
    uint32_t base = 0, recorded = 0;
    at->begun = inv != NULL; /* not found: nothing has begun its history yet */
    if (inv != NULL) {
        if (inv->ended) {
            /* ended before (its ack was lost): never run again; make sure
             * its callback is queued (de-duplicated by the id) */
            struct ending *e = calloc(1, sizeof(*e));
            if (e == NULL) {
                attempt_free(at);
                return;
            }
            e->at = at;
            e->kind = inv->status == FL_INV_SUCCEEDED ? FL_ACK
                      : inv->status == FL_INV_DEAD    ? FL_DEAD
                                                      : FL_TERM;
            if (e->kind == FL_DEAD)
                fl_strlcpy(e->reason, "attempts used up", sizeof(e->reason));
            if (inv->callback != NULL)
                e->callback = json_pack("{s:s,s:s,s:s,s:O}", "invocation", inv->id, "function",
                                        inv->function, "status", fl_inv_status_name(inv->status),
                                        "result", json_object_get(inv->json, "result"));
            ending_go(e);
            return;
        }
        base = inv->base;
        recorded = inv->attempts;
        if (inv->has_retry)
            at->policy = inv->retry;
    }
    at->number = base + at->deliveries;
    if (recorded + 1 < at->number)
        at->lost_from = recorded > base ? recorded + 1 : base + 1;
    if (at->deliveries > at->policy.max_attempts) {
        /* every attempt it had was lost */
        json_t *d = json_pack("{s:i,s:I,s:I,s:i,s:i,s:s,s:s}", "attempt", (int)at->number, "seq",
                              (json_int_t)at->seq, "startedAt", (json_int_t)fl_clock_wall_ms(),
                              "durationMs", 0, "status", 0, "error",
                              "lost: its attempts were used up by stops of flintd", "end", "dead");
        if (d != NULL)
            attempt_record(at, "attempt", d, NULL, NULL);
        json_decref(d);
        attempt_ack(at, FL_DEAD, 0, "its attempts were lost");
        return;
    }
    attempt_start(at);
}

static void attempt_new(struct aq *q, const struct fl_record *r)
{
    struct fl_async *a = q->a;
    struct attempt *at = calloc(1, sizeof(*at));
    json_t *msg = json_loads(r->headers, 0, NULL);
    if (at == NULL || !json_is_object(msg) || strlen(r->key) != FL_UUID_STRLEN) {
        free(at);
        json_decref(msg);
        /* nothing we can run: park it so that it is seen */
        fl_store_ack(a->store, q->topic, ASYNC_CONSUMER, r->seq, FL_DEAD, 0,
                     "not an async invocation message", NULL, NULL);
        return;
    }
    at->a = a;
    at->q = q;
    at->msg = msg;
    fl_strlcpy(at->id, r->key, sizeof(at->id));
    at->seq = r->seq;
    at->accepted_ms = r->ts_ms;
    at->deliveries = r->deliveries > 0 ? r->deliveries : 1;
    at->policy = FL_RETRY_DEFAULT;
    json_t *rp = json_object_get(msg, "retry");
    if (json_is_object(rp)) {
        at->policy.max_attempts = (uint32_t)json_integer_value(json_object_get(rp, "maxAttempts"));
        at->policy.backoff_ms = json_integer_value(json_object_get(rp, "backoff"));
        at->policy.max_backoff_ms = json_integer_value(json_object_get(rp, "maxBackoff"));
        if (at->policy.max_attempts < 1)
            at->policy = FL_RETRY_DEFAULT;
    }
    const char *cb = json_string_value(json_object_get(msg, "callback"));
    if (cb != NULL)
        at->callback = strdup(cb);
    if (r->len > 0 && (at->body = malloc(r->len)) != NULL) {
        memcpy(at->body, r->data, r->len);
        at->body_len = r->len;
    }
    fl_queue_insert_tail(&a->attempts, &at->link);
    q->inflight++;
    if ((r->len > 0 && at->body == NULL) || async_read(a, at->id, on_history, at) < 0)
        attempt_ack(at, FL_NAK, 1000, NULL);
}

struct fetch_ctx {
    struct aq *q;
    size_t max;
};

static void on_fetch(int err, const struct fl_store_result *res, void *data)
{
    struct fetch_ctx *c = data;
    struct aq *q = c->q;
    struct fl_async *a = q->a;
    q->fetching = false;
    if (err < 0 && !a->closing)
        FL_LOG_LIMITED(FL_LOG_ERROR, "async", "could not fetch async invocations",
                       "function=%s error=%s", q->fn, fl_errname(err));
    bool more = err == 0 && res->n == c->max;
    for (size_t i = 0; err == 0 && i < res->n; i++) {
        if (a->closing)
            fl_store_ack(a->store, q->topic, ASYNC_CONSUMER, res->records[i].seq, FL_NAK, 0, NULL,
                         NULL, NULL);
        else
            attempt_new(q, &res->records[i]);
    }
    free(c);
    if (more)
        async_pump(q);
    async_op_done(a);
}

static void on_room(void *data, const struct fl_invoke_target *t)
{
    struct aq *q = data;
    q->room = NULL;
    async_pump(q);
}

void async_pump(struct aq *q)
{
    struct fl_async *a = q->a;
    if (a->closing || q->state != AQ_READY || q->fetching || q->room != NULL)
        return;
    if (a->ready != NULL && !a->ready(a->ready_data))
        return; /* the tick tries again */
    struct fl_invoke_target t = {FL_INVOKE_FUNCTION, q->fn};
    struct fl_invoke_capacity cap;
    uint64_t limit = 1;
    if (fl_invoker_capacity(a->invoker, &t, &cap) == 0) {
        limit = cap.slots / 2 > 0 ? cap.slots / 2 : 1;
        if (fl_invoke_capacity_full(&cap)) {
            fl_invoker_watch_room(a->invoker, &t, on_room, q, &q->room);
            return;
        }
    }
    /* a function that is gone: its invocations are still delivered, one at
     * a time, and fail with function_not_found */
    if (q->inflight >= limit)
        return;
    struct fetch_ctx *c = malloc(sizeof(*c));
    if (c == NULL)
        return;
    c->q = q;
    c->max = limit - q->inflight < 64 ? (size_t)(limit - q->inflight) : 64;
    if (fl_store_fetch(a->store, q->topic, ASYNC_CONSUMER, c->max, on_fetch, c) < 0) {
        free(c);
        return;
    }
    q->fetching = true;
    async_op(a);
}

/* ---- the tick: in-progress signals and the retention sweep ---- */

static void sweep(struct fl_async *a);

static void on_tick(uv_timer_t *t)
{
    struct fl_async *a = t->data;
    int64_t now = fl_clock_wall_ms();
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &a->attempts)
    {
        struct attempt *at = FL_QUEUE_DATA(e, struct attempt, link);
        if (at->call != NULL && now - at->progress_ms >= ASYNC_PROGRESS_MS) {
            at->progress_ms = now;
            fl_store_ack(a->store, at->q->topic, ASYNC_CONSUMER, at->seq, FL_IN_PROGRESS, 0, NULL,
                         NULL, NULL);
        }
    }
    /* queues that could not fetch (an error, the invoker's answer) try again */
    FL_QUEUE_FOREACH(e, tmp, &a->queues)
    async_pump(FL_QUEUE_DATA(e, struct aq, link));
    async_callbacks_pump(a);
    if (!a->sweeping && now >= a->next_sweep_ms)
        sweep(a);
}

/* A UUIDv7's time (its first 48 bits), or 0. */
static int64_t id_time_ms(const char *id)
{
    int64_t ms = 0;
    int digits = 0;
    for (const char *p = id; *p != '\0' && digits < 12; p++) {
        if (*p == '-')
            continue;
        int v = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
        if (v < 0)
            return 0;
        ms = ms * 16 + v;
        digits++;
    }
    return digits == 12 ? ms : 0;
}

struct sweep_item {
    struct fl_async *a;
    char id[FL_UUID_STRLEN + 1];
    unsigned *left;
};

static void sweep_page_done(struct fl_async *a);

static void on_swept_one(int err, struct fl_inv *inv, uint64_t last_seq, void *data)
{
    struct sweep_item *it = data;
    struct fl_async *a = it->a;
    int64_t horizon = fl_clock_wall_ms() - a->retention_ms;
    if (err == 0 && inv->ended && inv->ended_ms < horizon) {
        char stream[FL_INV_STREAM_MAX];
        fl_inv_stream_name(stream, inv->id);
        if (inv->status == FL_INV_DEAD && !inv->purged && inv->seq > 0 && inv->topic[0])
            fl_store_purge(a->store, inv->topic, inv->consumer, inv->seq, NULL, NULL);
        if (inv->idem != NULL)
            fl_store_stream_delete(a->store, inv->idem, NULL, NULL);
        fl_store_stream_delete(a->store, stream, NULL, NULL);
    }
    if (--*it->left == 0) {
        free(it->left);
        sweep_page_done(a);
    }
    free(it);
}

static void sweep_page_done(struct fl_async *a)
{
    a->sweeping = false;
    /* the next page at the next tick; a full pass, then a pause */
    if (a->sweep_after[0] == '\0')
        a->next_sweep_ms =
            fl_clock_wall_ms() + (a->retention_ms / 4 < 60000 ? a->retention_ms / 4 : 60000);
    async_maybe_done(a);
}

static void on_sweep_page(int err, const struct fl_store_result *res, void *data)
{
    struct fl_async *a = data;
    async_op_done(a);
    if (err < 0 || a->closing) {
        a->sweep_after[0] = '\0';
        sweep_page_done(a);
        return;
    }
    int64_t horizon = fl_clock_wall_ms() - a->retention_ms;
    unsigned *left = malloc(sizeof(*left));
    if (left == NULL) {
        sweep_page_done(a);
        return;
    }
    *left = 1;
    bool stop = res->next == NULL;
    for (size_t i = 0; i < res->n; i++) {
        const char *id = res->records[i].key + 4;
        if (id_time_ms(id) >= horizon) {
            stop = true; /* ids are in time order: the rest are younger */
            break;
        }
        struct sweep_item *it = malloc(sizeof(*it));
        if (it == NULL)
            break;
        *it = (struct sweep_item){a, "", left};
        fl_strlcpy(it->id, id, sizeof(it->id));
        (*left)++;
        if (async_read(a, it->id, on_swept_one, it) < 0) {
            (*left)--;
            free(it);
        }
    }
    if (stop)
        a->sweep_after[0] = '\0';
    else
        fl_strlcpy(a->sweep_after, res->next, sizeof(a->sweep_after));
    if (--*left == 0) {
        free(left);
        sweep_page_done(a);
    }
}

static void sweep(struct fl_async *a)
{
    struct fl_page page = {200, a->sweep_after};
    if (fl_store_streams(a->store, "inv/", &page, on_sweep_page, a) == 0) {
        a->sweeping = true;
        async_op(a);
    }
}

/* ---- start and close ---- */

static void on_topics(int err, const struct fl_store_result *res, void *data)
{
    struct fl_async *a = data;
    if (err < 0)
        fl_log(FL_LOG_ERROR, "async", "could not list the async queues", "error=%s",
               fl_errname(err));
    for (size_t i = 0; err == 0 && !a->closing && i < res->n; i++)
        async_queue(a, res->topics[i].name + sizeof(ASYNC_TOPIC_PREFIX) - 1);
    if (err == 0 && !a->closing && res->next != NULL) {
        struct fl_page page = {0, res->next};
        if (fl_store_topics(a->store, ASYNC_TOPIC_PREFIX, &page, on_topics, a) == 0)
            async_op(a);
    }
    async_op_done(a);
}

int fl_async_new(uv_loop_t *loop, const struct fl_async_config *cfg, struct fl_async **out)
{
    struct fl_async *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return FL_ENOMEM;
    a->loop = loop;
    a->store = cfg->store;
    a->invoker = cfg->invoker;
    a->metrics = cfg->metrics;
    a->retention_ms = cfg->retention_ms > 0 ? cfg->retention_ms : 72LL * 3600 * 1000;
    a->max_body = cfg->max_body > 0 ? cfg->max_body : 1u << 20;
    a->policy_of = cfg->policy_of;
    a->policy_data = cfg->policy_data;
    a->ready = cfg->ready;
    a->ready_data = cfg->ready_data;
    fl_queue_init(&a->queues);
    fl_queue_init(&a->attempts);
    a->next_sweep_ms = fl_clock_wall_ms();
    int rc = fl_http_client_new(loop, NULL, &a->http);
    if (rc < 0) {
        free(a);
        return rc;
    }
    uv_timer_init(loop, &a->tick);
    a->tick.data = a;
    uv_timer_start(&a->tick, on_tick, ASYNC_TICK_MS, ASYNC_TICK_MS);
    async_op(a); /* the tick, until it is closed */
    if (fl_store_topics(a->store, ASYNC_TOPIC_PREFIX, NULL, on_topics, a) == 0)
        async_op(a);
    async_callbacks_start(a);
    *out = a;
    return 0;
}

static void on_tick_closed(uv_handle_t *h)
{
    async_op_done(h->data);
}

void fl_async_close(struct fl_async *a, void (*done)(void *data), void *data)
{
    a->closing = true;
    a->done = done;
    a->done_data = data;
    a->ops++; /* held until this function is through */
    uv_close((uv_handle_t *)&a->tick, on_tick_closed);
    fl_store_unwatch(a->cb_notify);
    a->cb_notify = NULL;
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &a->queues)
    {
        struct aq *q = FL_QUEUE_DATA(e, struct aq, link);
        fl_store_unwatch(q->notify);
        q->notify = NULL;
        if (q->room != NULL)
            fl_invoker_unwatch_room(a->invoker, q->room);
        q->room = NULL;
        while (!fl_queue_empty(&q->waiting)) {
            struct sub *s = FL_QUEUE_DATA(fl_queue_first(&q->waiting), struct sub, link);
            fl_queue_remove(&s->link);
            sub_answer(s, FL_ECANCELED, NULL, false);
        }
    }
    /* attempts under way: their outcome (canceled) records them as lost and
     * gives their messages back */
    FL_QUEUE_FOREACH(e, tmp, &a->attempts)
    {
        struct attempt *at = FL_QUEUE_DATA(e, struct attempt, link);
        if (at->call != NULL)
            fl_invoke_cancel(at->call);
    }
    async_op_done(a);
}
