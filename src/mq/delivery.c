/*
 * One message of a trigger, from its delivery to its ack (mq.h says what
 * happens and why):
 *
 *   delivered --(a redelivery, or a trigger that had dead letters)--> history read
 *       |                                   | ended before: acked as it ended
 *       v                                   v
 *     call --> fl_mq_decide() --> respond:     publish to respTopic --> [record] --> ACK
 *                                 retry:       record --> NAK(backoff)
 *                                 error_topic: publish to errorTopic --> record --> ACK
 *                                 dead:        record --> FL_DEAD
 *                                 give_back:   NAK(0)
 *
 * "record" appends to the invocation's history (async/history.h): the
 * "queued" event if it has none yet, then the attempt. A publish or a
 * record that fails leaves the message to come back (NAK after a moment),
 * never acked on a state that is not durable.
 */
#include "mq/internal.h"

#include "async/async.h" /* fl_retry_delay_ms() */
#include "async/history.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/str.h"
#include "http/parse.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MQ_ERROR_MAX   512 /* bytes of X-Flint-Error */
#define MQ_EXCERPT_MAX 200 /* bytes of a failed answer's body in X-Flint-Error */
#define MQ_NADDED      4

struct delivery {
    struct fl_queue link; /* fl_mq.deliveries */
    struct trigger *t;
    struct fl_mqt_spec spec;          /* the trigger's when delivered */
    char topic[FL_MQT_TOPIC_MAX + 1]; /* where the consumer is */
    uint64_t seq;
    uint32_t deliveries; /* the broker's count, this one included */
    uint32_t base;       /* attempts before the last redrive */
    int64_t published_ms;
    char id[FL_UUID_STRLEN + 1];
    char message_id[FL_CURSOR_MAX]; /* X-Flint-Message-Id: the publisher's id or the sequence */
    json_t *headers;                /* the message's, an object */
    char *body;
    size_t len;
    struct fl_http_header hdrs[FL_INVOKE_MAX_HEADERS];
    size_t nh;
    struct fl_http_header added[MQ_NADDED];
    size_t na;
    struct fl_invoke *call;
    uint64_t start_ns;
    int64_t start_ms, progress_ms;
    bool history; /* its history has events */
    bool redrive; /* a dead letter published again (Flint-Redrive): id is its header's */
    /* what the call came to */
    enum fl_mq_action action;
    int status;
    char error[MQ_ERROR_MAX];
    /* a message to publish: its headers and body, kept until published */
    char *out_headers;
    char *out_body;
    size_t out_len;
    char out_id[FL_UUID_STRLEN + 8];
};

static uint32_t number(const struct delivery *d)
{
    return d->base + d->deliveries;
}

static void delivery_free(struct delivery *d)
{
    struct trigger *t = d->t;
    fl_queue_remove(&d->link);
    json_decref(d->headers);
    free(d->body);
    free(d->out_headers);
    free(d->out_body);
    free(d);
    mq_delivery_done(t);
}

/* ---- acknowledging ---- */

static void on_acked(int err, const struct fl_store_result *res, void *data)
{
    struct delivery *d = data;
    struct fl_mq *mq = d->t->mq;
    if (err < 0 && err != FL_ENOENT)
        FL_LOG_LIMITED(FL_LOG_ERROR, "mq", "could not acknowledge a message",
                       "trigger=%s seq=%" PRIu64 " error=%s", d->t->name, d->seq, fl_errname(err));
    delivery_free(d);
    mq_op_done(mq);
}

static void ack(struct delivery *d, enum fl_ack_kind kind, int64_t delay_ms, const char *reason)
{
    struct trigger *t = d->t;
    if (t->removed) {
        /* its consumer is deleted: nothing to acknowledge */
        delivery_free(d);
        return;
    }
    if (t->conn->ack(t->self, d->topic, t->consumer, d->seq, kind, delay_ms, reason, on_acked, d) ==
        0)
        mq_op(t->mq);
    else
        delivery_free(d); /* it comes back after the ack wait */
}

/* Give the message back to come again after a moment: a step failed. */
static void later(struct delivery *d, const char *what, int err)
{
    FL_LOG_LIMITED(FL_LOG_ERROR, "mq", what, "trigger=%s seq=%" PRIu64 " error=%s", d->t->name,
                   d->seq, fl_errname(err));
    ack(d, FL_NAK, MQ_LATER_MS, NULL);
}

/* ---- the history ---- */

static json_t *retry_json(const struct fl_mqt_spec *s)
{
    return json_pack("{s:i,s:I,s:I}", "maxAttempts", (int)s->max_retries + 1, "backoff",
                     (json_int_t)s->backoff_ms, "maxBackoff", (json_int_t)s->max_backoff_ms);
}

/* Append event (taken) to d's invocation's history. */
static int append(struct delivery *d, const char *type, json_t *event, uint64_t expect,
                  fl_store_cb cb)
{
    int rc = fl_inv_append(d->t->mq->store, d->id, type, event, expect, cb, cb ? d : NULL);
    json_decref(event);
    if (rc == 0 && cb != NULL)
        mq_op(d->t->mq);
    return rc;
}

/* Record the attempt d made (end: how it ended the invocation, or NULL;
 * next_ms: when the next is due), after the "queued" event if the history
 * has none; cb once the attempt is durable. 0 or an error (cb never runs). */
static int record(struct delivery *d, const char *end, int64_t next_ms, fl_store_cb cb)
{
    struct trigger *t = d->t;
    if (!d->history) {
        json_t *q = json_pack(
            "{s:s,s:s,s:s,s:s,s:n,s:o,s:o,s:n,s:n,s:s,s:s}", "function", mq_target_name(&d->spec),
            "trigger", t->label, "method", "POST", "path", "/", "query", "headers",
            fl_inv_headers_json(d->hdrs, d->nh, NULL), "retry", retry_json(&d->spec), "callback",
            "idem", "topic", d->topic, "consumer", t->consumer);
        if (q != NULL && d->spec.workflow[0] != '\0')
            json_object_set_new(q, "workflow", json_string(d->spec.workflow));
        /* expect 0: written once, whoever writes it first */
        int rc = append(d, "queued", q, 0, NULL);
        if (rc < 0)
            return rc;
        d->history = true;
    }
    int64_t duration_ms = (int64_t)((fl_clock_mono_ns() - d->start_ns) / 1000000);
    json_t *a = json_pack("{s:i,s:I,s:I,s:I,s:i}", "attempt", (int)number(d), "seq",
                          (json_int_t)d->seq, "startedAt", (json_int_t)d->start_ms, "durationMs",
                          (json_int_t)duration_ms, "status", d->status);
    if (a != NULL && d->error[0] != '\0')
        json_object_set_new(a, "error", json_string(d->error));
    if (a != NULL && end != NULL)
        json_object_set_new(a, "end", json_string(end));
    if (a != NULL && next_ms > 0)
        json_object_set_new(a, "nextAt", json_integer(next_ms));
    return append(d, "attempt", a, FL_SEQ_ANY, cb);
}

/* ---- after the call ---- */

/* The attempt is recorded (or could not be): the ack its action calls for.
 * A dead letter is parked only once its history says so. */
static void on_recorded(int err, const struct fl_store_result *res, void *data)
{
    struct delivery *d = data;
    struct fl_mq *mq = d->t->mq;
    if (err < 0 && d->action == FL_MQ_DEAD) {
        later(d, "could not record a dead letter", err); /* one nobody could see: not now */
        mq_op_done(mq);
        return;
    }
    if (err < 0)
        FL_LOG_LIMITED(FL_LOG_WARN, "mq", "could not record an attempt", "trigger=%s error=%s",
                       d->t->name, fl_errname(err));
    if (d->action == FL_MQ_RETRY) {
        const struct fl_retry_policy p = {d->spec.max_retries + 1, d->spec.backoff_ms,
                                          d->spec.max_backoff_ms};
        ack(d, FL_NAK, fl_retry_delay_ms(&p, d->deliveries), d->error);
    } else if (d->action == FL_MQ_DEAD) {
        char reason[MQ_ERROR_MAX + 32];
        snprintf(reason, sizeof(reason), "attempt %u: %s", number(d), d->error);
        d->t->had_dead = true; /* it may be redriven: read histories from now on */
        ack(d, FL_DEAD, 0, reason);
    } else {
        ack(d, FL_ACK, 0, NULL); /* what it depends on (the publish) is durable */
    }
    mq_op_done(mq);
}

static void unpublishable(struct delivery *d, const char *topic, int err);

/* A message published (the response, or to the error topic): record what
 * ended, then ACK. */
static void on_published(int err, const struct fl_store_result *res, void *data)
{
    struct delivery *d = data;
    struct fl_mq *mq = d->t->mq;
    if (err == FL_ETOOBIG || err == FL_EINVAL) {
        unpublishable(d, d->action == FL_MQ_RESPOND ? d->spec.resp_topic : d->spec.error_topic,
                      err);
    } else if (err < 0) {
        later(d,
              d->action == FL_MQ_RESPOND ? "could not publish a response"
                                         : "could not publish to an error topic",
              err);
    } else if (d->history || d->action == FL_MQ_ERROR_TOPIC) {
        const char *end = d->action == FL_MQ_RESPOND ? "succeeded" : "failed";
        if (record(d, end, 0, on_recorded) < 0)
            ack(d, FL_ACK, 0, NULL);
    } else {
        ack(d, FL_ACK, 0, NULL);
    }
    mq_op_done(mq);
}

static void set_header(json_t *h, const char *name, const char *value)
{
    json_t *v = json_string(value);
    if (v != NULL)
        json_object_set_new(h, name, v);
}

/* The response's headers as a message's: those a proxy passes on, the
 * same name's values joined by ", ", then Flint's. */
static json_t *response_headers(const struct delivery *d, const struct fl_invoke_outcome *o)
{
    json_t *h = json_object();
    for (size_t i = 0; h != NULL && i < o->nheaders; i++) {
        const struct fl_http_header *x = &o->headers[i];
        char name[128];
        if (x->name_len >= sizeof(name) || fl_http_is_hop_by_hop(x->name, x->name_len))
            continue;
        memcpy(name, x->name, x->name_len);
        name[x->name_len] = '\0';
        if (fl_str_ieq(name, x->name_len, "x-flint-invocation-id"))
            continue;
        json_t *v = json_stringn(x->value, x->value_len), *had = json_object_get(h, name);
        if (v != NULL && had != NULL) {
            size_t n = json_string_length(had) + 2 + json_string_length(v) + 1;
            char *joined = malloc(n);
            if (joined != NULL) {
                snprintf(joined, n, "%s, %s", json_string_value(had), json_string_value(v));
                json_object_set_new(h, name, json_string(joined));
            }
            free(joined);
            json_decref(v);
        } else if (v != NULL) {
            json_object_set_new(h, name, v);
        }
    }
    return h;
}

/* Flint's headers on what a trigger publishes. */
static void flint_headers(json_t *h, const struct delivery *d)
{
    char status[16];
    snprintf(status, sizeof(status), "%d", d->status);
    set_header(h, "X-Flint-Invocation-Id", d->id);
    set_header(h, "X-Flint-Status", status);
    set_header(h, "X-Flint-Topic", d->spec.topic);
    set_header(h, "X-Flint-Message-Id", d->message_id);
}

/* Publish what out_* hold to topic with id "<invocation>:<suffix>". */
static void publish(struct delivery *d, const char *topic, json_t *headers, const char *suffix)
{
    struct trigger *t = d->t;
    d->out_headers = headers != NULL ? json_dumps(headers, JSON_COMPACT) : NULL;
    json_decref(headers);
    snprintf(d->out_id, sizeof(d->out_id), "%s:%s", d->id, suffix);
    int rc = d->out_headers == NULL
                 ? FL_ENOMEM
                 : t->conn->publish(t->self, topic, d->out_headers, d->out_id,
                                    d->out_body ? d->out_body : "", d->out_len, on_published, d);
    if (rc == FL_ETOOBIG || rc == FL_EINVAL)
        unpublishable(d, topic, rc);
    else if (rc < 0)
        later(d, "could not publish", rc);
    else
        mq_op(t->mq);
}

/* Printable ASCII of a failed answer's body, for X-Flint-Error. */
static void excerpt(const char *body, size_t len, char *out, size_t size)
{
    size_t n = len < size - 1 ? len : size - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = body[i] >= 0x20 && body[i] < 0x7f ? body[i] : ' ';
    out[n] = '\0';
}

static void describe_failure(struct delivery *d, const struct fl_invoke_outcome *o)
{
    char clean[MQ_EXCERPT_MAX + 1];
    const char *body = o->body != NULL ? o->body : "";
    if (o->error != FL_INVOKE_OK) {
        excerpt(o->message ? o->message : "", o->message ? strlen(o->message) : 0, clean,
                sizeof(clean));
        snprintf(d->error, sizeof(d->error), "%s: %s", o->code ? o->code : "error", clean);
    } else {
        excerpt(body, o->body_len, clean, sizeof(clean));
        snprintf(d->error, sizeof(d->error), "the %s answered %d%s%s",
                 d->spec.workflow[0] ? "workflow" : "function", o->status, clean[0] ? ": " : "",
                 clean);
    }
}

/* Do what d->action says (o: the answer, for a response to publish). */
static void act(struct delivery *d, const struct fl_invoke_outcome *o)
{
    struct trigger *t = d->t;
    mq_count(t, fl_mq_action_name(d->action));
    switch (d->action) {
    case FL_MQ_RESPOND:
        if (d->spec.resp_topic[0] == '\0') {
            mq_op(t->mq); /* nothing to publish: as if published */
            on_published(0, NULL, d);
            return;
        }
        if (o->body_len > 0 && (d->out_body = malloc(o->body_len)) == NULL) {
            later(d, "could not keep a response", FL_ENOMEM);
            return;
        }
        if (o->body_len > 0)
            memcpy(d->out_body, o->body, o->body_len);
        d->out_len = o->body_len;
        json_t *rh = response_headers(d, o);
        if (rh != NULL)
            flint_headers(rh, d);
        publish(d, d->spec.resp_topic, rh, "resp");
        return;
    case FL_MQ_ERROR_TOPIC: {
        json_t *h = d->headers != NULL ? json_deep_copy(d->headers) : json_object();
        char attempts[16];
        snprintf(attempts, sizeof(attempts), "%u", number(d));
        if (h != NULL) {
            flint_headers(h, d);
            set_header(h, "X-Flint-Error", d->error);
            set_header(h, "X-Flint-Attempts", attempts);
        }
        free(d->out_body);
        d->out_body = NULL;
        if (d->len > 0 && (d->out_body = malloc(d->len)) == NULL) {
            json_decref(h);
            later(d, "could not keep a message", FL_ENOMEM);
            return;
        }
        if (d->len > 0)
            memcpy(d->out_body, d->body, d->len); /* the message as it came */
        d->out_len = d->len;
        publish(d, d->spec.error_topic, h, "error");
        return;
    }
    case FL_MQ_RETRY: {
        /* nextAt is an estimate for people: the delay is drawn when nakked */
        int64_t next = fl_clock_wall_ms() + d->spec.backoff_ms;
        if (record(d, NULL, next, on_recorded) < 0) {
            mq_op(t->mq);
            on_recorded(FL_ENOMEM, NULL, d);
        }
        return;
    }
    case FL_MQ_DEAD:
        if (record(d, "dead", 0, on_recorded) < 0)
            later(d, "could not record a dead letter", FL_ENOMEM);
        return;
    case FL_MQ_GIVE_BACK:
        ack(d, FL_NAK, 0, NULL);
        return;
    }
}

static void on_outcome(const struct fl_invoke_outcome *o, void *data)
{
    struct delivery *d = data;
    d->call = NULL;
    enum fl_mq_outcome what = fl_mq_outcome_of(o);
    d->action = fl_mq_decide(what, d->deliveries, d->spec.max_retries, d->spec.error_topic[0]);
    d->status = o->status;
    if (what == FL_MQ_FAILED)
        describe_failure(d, o);
    act(d, o);
}

/* A publish the broker can never take (too large, refused): a response is
 * a failed attempt, decided as such; a message for the error topic becomes
 * a dead letter. Never a message given back to fail the same way forever. */
static void unpublishable(struct delivery *d, const char *topic, int err)
{
    size_t n = d->action == FL_MQ_RESPOND ? 0 : strlen(d->error);
    snprintf(d->error + n, sizeof(d->error) - n, "%scannot publish %s to '%s': %s",
             n > 0 ? "; " : "", d->action == FL_MQ_RESPOND ? "the answer" : "the message", topic,
             fl_errname(err));
    d->action =
        d->action == FL_MQ_RESPOND
            ? fl_mq_decide(FL_MQ_FAILED, d->deliveries, d->spec.max_retries, d->spec.error_topic[0])
            : FL_MQ_DEAD;
    free(d->out_headers);
    free(d->out_body);
    d->out_headers = d->out_body = NULL;
    act(d, NULL);
}

/* ---- the call ---- */

static void call_start(struct delivery *d)
{
    struct trigger *t = d->t;
    struct fl_mq *mq = t->mq;
    if (t->removed || mq->closing) {
        ack(d, FL_NAK, 0, NULL);
        return;
    }
    d->na = 0;
    d->added[d->na++] =
        (struct fl_http_header){"X-Flint-Topic", 13, d->spec.topic, strlen(d->spec.topic)};
    if (d->spec.resp_topic[0])
        d->added[d->na++] = (struct fl_http_header){"X-Flint-Resp-Topic", 18, d->spec.resp_topic,
                                                    strlen(d->spec.resp_topic)};
    if (d->spec.error_topic[0])
        d->added[d->na++] = (struct fl_http_header){"X-Flint-Error-Topic", 19, d->spec.error_topic,
                                                    strlen(d->spec.error_topic)};
    d->added[d->na++] =
        (struct fl_http_header){"X-Flint-Message-Id", 18, d->message_id, strlen(d->message_id)};
    /* a workflow's attempt is an invocation of its own (the engine's
     * stream "wf/<id>"): its id is the message's invocation and attempt */
    char run_id[FL_UUID_STRLEN + 1];
    if (d->spec.workflow[0] != '\0')
        fl_mq_attempt_id(d->id, number(d), run_id);
    const struct fl_invoke_request req = {
        .target = mq_target(&d->spec),
        .method = "POST",
        .path = "/",
        .headers = d->hdrs,
        .nheaders = d->nh,
        .added = d->added,
        .nadded = d->na,
        .body = d->body,
        .body_len = d->len,
        .invocation_id = d->spec.workflow[0] != '\0' ? run_id : d->id,
        .attempt = number(d),
        .trigger = FL_TRIGGER_MQ,
        .trigger_name = t->label,
    };
    d->start_ns = fl_clock_mono_ns();
    d->start_ms = fl_clock_wall_ms();
    d->progress_ms = d->start_ms;
    struct fl_invoke *call;
    int rc = fl_invoke_start(mq->invoker, &req, on_outcome, d, &call);
    if (rc == FL_ECANCELED || rc == FL_ENOMEM) {
        ack(d, FL_NAK, rc == FL_ECANCELED ? 0 : MQ_LATER_MS, NULL);
        return;
    }
    if (rc < 0) {
        /* a request the invoker refuses: an attempt that failed */
        char message[96];
        snprintf(message, sizeof(message), "the invoker refused the request: %s", fl_errname(rc));
        const struct fl_invoke_outcome o = {.error = FL_INVOKE_FAILED,
                                            .status = 500,
                                            .code = "cannot_start",
                                            .message = message,
                                            .invocation_id = d->id};
        on_outcome(&o, d);
        return;
    }
    d->call = call;
}

/* The history is read: an invocation that ended is acked as it ended. */
static void on_history(int err, const struct fl_store_result *res, void *data)
{
    struct delivery *d = data;
    struct fl_mq *mq = d->t->mq;
    struct fl_inv inv;
    memset(&inv, 0, sizeof(inv));
    int rc = err < 0 ? err : fl_inv_fold(d->id, res->records, res->n, &inv);
    if (rc == FL_ENOENT && d->redrive) {
        /* no such invocation: a message like any other */
        fl_mq_invocation_id(d->t->name, d->topic, d->seq, d->published_ms, d->id);
        call_start(d);
    } else if (rc == FL_ENOENT) {
        call_start(d);
    } else if (rc < 0 && rc != FL_ECORRUPT) {
        fl_inv_release(&inv);
        later(d, "could not read an invocation's history", rc);
    } else {
        d->history = true;
        d->base = inv.base;
        if (!inv.ended)
            call_start(d);
        else if (inv.status == FL_INV_DEAD)
            ack(d, FL_DEAD, 0, "attempts used up");
        else if (inv.status == FL_INV_CANCELED)
            ack(d, FL_TERM, 0, "canceled");
        else
            ack(d, FL_ACK, 0, NULL); /* its response or error was published */
        fl_inv_release(&inv);
    }
    mq_op_done(mq);
}

/* ---- a delivery ---- */

/* The message's headers a program may set, and Content-Type. */
static void take_headers(struct delivery *d)
{
    const char *key;
    json_t *value;
    bool typed = false;
    json_object_foreach(d->headers, key, value)
    {
        const char *v = json_string_value(value);
        if (v == NULL || d->nh == FL_INVOKE_MAX_HEADERS - 1)
            continue;
        size_t kn = strlen(key), vn = json_string_length(value);
        if (!fl_http_header_settable(key, kn, v, vn))
            continue;
        typed |= fl_str_ieq(key, kn, "content-type");
        d->hdrs[d->nh++] = (struct fl_http_header){key, kn, v, vn};
    }
    if (!typed)
        d->hdrs[d->nh++] = (struct fl_http_header){"Content-Type", 12, d->spec.content_type,
                                                   strlen(d->spec.content_type)};
}

/* A dead letter a connector published again (mq.h, fl_mq_dead_steer):
 * Flint-Redrive names its invocation, Flint-Message-Id the message id it
 * had; both are taken off its headers. */
static void take_redrive(struct delivery *d)
{
    const char *id = json_string_value(json_object_get(d->headers, "Flint-Redrive"));
    if (id == NULL || strlen(id) != FL_UUID_STRLEN)
        return;
    d->redrive = true;
    fl_strlcpy(d->id, id, sizeof(d->id));
    const char *had = json_string_value(json_object_get(d->headers, "Flint-Message-Id"));
    if (had != NULL && had[0] != '\0')
        fl_strlcpy(d->message_id, had, sizeof(d->message_id));
    json_object_del(d->headers, "Flint-Redrive");
    json_object_del(d->headers, "Flint-Message-Id");
}

void mq_deliver(struct trigger *t, const struct fl_record *r)
{
    struct fl_mq *mq = t->mq;
    struct delivery *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        t->conn->ack(t->self, t->topic, t->consumer, r->seq, FL_NAK, MQ_LATER_MS, NULL, NULL, NULL);
        return;
    }
    d->t = t;
    d->spec = t->spec;
    fl_strlcpy(d->topic, t->topic, sizeof(d->topic));
    d->seq = r->seq;
    d->deliveries = r->deliveries > 0 ? r->deliveries : 1;
    d->published_ms = r->ts_ms;
    fl_mq_invocation_id(t->name, t->topic, r->seq, r->ts_ms, d->id);
    if (r->key[0] != '\0')
        fl_strlcpy(d->message_id, r->key, sizeof(d->message_id));
    else
        snprintf(d->message_id, sizeof(d->message_id), "%" PRIu64, r->seq);
    d->headers = json_loads(r->headers, 0, NULL);
    if (!json_is_object(d->headers)) {
        json_decref(d->headers);
        d->headers = json_object();
    }
    take_redrive(d);
    fl_queue_insert_tail(&mq->deliveries, &d->link);
    t->inflight++;
    if (d->headers == NULL || (r->len > 0 && (d->body = malloc(r->len)) == NULL)) {
        later(d, "could not take a message", FL_ENOMEM);
        return;
    }
    memcpy(d->body, r->data, r->len);
    d->len = r->len;
    take_headers(d);
    if (d->deliveries == 1 && !t->had_dead && !d->redrive) {
        call_start(d); /* the fast path: no history can exist */
        return;
    }
    char stream[FL_INV_STREAM_MAX];
    fl_inv_stream_name(stream, d->id);
    int rc = fl_store_read(mq->store, stream, 1, 0, on_history, d);
    if (rc < 0)
        later(d, "could not read an invocation's history", rc);
    else
        mq_op(mq);
}

void mq_deliveries_tick(struct fl_mq *mq, int64_t now)
{
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &mq->deliveries)
    {
        struct delivery *d = FL_QUEUE_DATA(e, struct delivery, link);
        struct trigger *t = d->t;
        if (t->removed || d->start_ms == 0 || now - d->progress_ms < d->spec.ack_wait_ms / 3)
            continue;
        d->progress_ms = now;
        t->conn->ack(t->self, d->topic, t->consumer, d->seq, FL_IN_PROGRESS, 0, NULL, NULL, NULL);
    }
}

void mq_deliveries_cancel(struct fl_mq *mq, struct trigger *t)
{
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &mq->deliveries)
    {
        struct delivery *d = FL_QUEUE_DATA(e, struct delivery, link);
        if ((t == NULL || d->t == t) && d->call != NULL)
            fl_invoke_cancel(d->call); /* its outcome gives the message back */
    }
}
