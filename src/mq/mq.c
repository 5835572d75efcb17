/*
 * The MQ module (mq.h): its pure parts (the decision table, the derived
 * invocation id), triggers and their consumers, fetching, status, the
 * tick, start and close. One message's way from delivery to ack is in
 * delivery.c.
 *
 * Objects:
 *   struct fl_mq     the module: triggers, deliveries under way, the tick
 *   struct trigger   one messagequeuetrigger (internal.h): its consumer's
 *                    state (new, subscribing, ready, failed), what runs
 *                    and what was put last, its notify and room watches
 *
 * A trigger whose spec is put while its subscribe is under way applies it
 * when that one answers (want_new); a removed trigger stays in the list,
 * marked, until its last callback, so that a trigger put again under the
 * same name meanwhile takes it back instead of racing with its deletion.
 */
#include "mq/internal.h"
#include "mq/nats.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/str.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the pure parts ---- */

enum fl_mq_outcome fl_mq_outcome_of(const struct fl_invoke_outcome *o)
{
    if (o->error == FL_INVOKE_CANCELED)
        return FL_MQ_STOPPED;
    if (o->error == FL_INVOKE_OK && o->status >= 200 && o->status < 300)
        return FL_MQ_SUCCEEDED;
    return FL_MQ_FAILED;
}

static const char *const action_names[] = {
    [FL_MQ_RESPOND] = "respond",         [FL_MQ_RETRY] = "retry",
    [FL_MQ_ERROR_TOPIC] = "error_topic", [FL_MQ_DEAD] = "dead",
    [FL_MQ_GIVE_BACK] = "give_back",
};

const char *fl_mq_action_name(enum fl_mq_action a)
{
    return a <= FL_MQ_GIVE_BACK ? action_names[a] : "unknown";
}

enum fl_mq_action fl_mq_decide(enum fl_mq_outcome o, uint32_t delivery, uint32_t max_retries,
                               bool has_error_topic)
{
    static const enum fl_mq_action last[2] = {FL_MQ_DEAD, FL_MQ_ERROR_TOPIC};
    switch (o) {
    case FL_MQ_SUCCEEDED:
        return FL_MQ_RESPOND;
    case FL_MQ_STOPPED:
        return FL_MQ_GIVE_BACK;
    default:
        /* attempts are max_retries + 1; a count past them (deliveries lost
         * to stops of flintd) is a last attempt too */
        return (uint64_t)delivery < (uint64_t)max_retries + 1 ? FL_MQ_RETRY : last[has_error_topic];
    }
}

void fl_mq_invocation_id(const char *trigger, const char *topic, uint64_t seq, int64_t published_ms,
                         char out[FL_UUID_STRLEN + 1])
{
    char text[64];
    snprintf(text, sizeof(text), "%" PRIu64 "/%" PRId64, seq, published_ms);
    const char *const parts[] = {"flint-mq", trigger, topic, text};
    fl_uuid7_derived(published_ms, parts, 4, out);
}

void fl_mq_attempt_id(const char *id, uint32_t attempt, char out[FL_UUID_STRLEN + 1])
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu32, attempt);
    /* the time is id's: its first 48 bits, in its first 12 hex digits */
    uint64_t ms = 0;
    for (size_t i = 0, digits = 0; id[i] != '\0' && digits < 12; i++) {
        char c = id[i];
        if (c == '-')
            continue;
        ms = ms << 4 | (uint64_t)(c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0');
        digits++;
    }
    const char *const parts[] = {"flint-mq-attempt", id, text};
    fl_uuid7_derived((int64_t)ms, parts, 3, out);
}

/* ---- what the files share ---- */

static void maybe_done(struct fl_mq *mq);

void mq_op(struct fl_mq *mq)
{
    mq->ops++;
}

void mq_op_done(struct fl_mq *mq)
{
    mq->ops--;
    maybe_done(mq);
}

void mq_count(struct trigger *t, const char *what)
{
    struct fl_mq *mq = t->mq;
    if (mq->metrics == NULL)
        return;
    static const char *const labels[] = {"trigger", "outcome"};
    fl_metric_add(fl_metrics_counter(mq->metrics, "flint_mq_deliveries_total",
                                     "Deliveries of message-queue triggers, by what was done "
                                     "after the call (respond, retry, error_topic, dead, "
                                     "give_back).",
                                     2, labels),
                  (const char *[]){t->name, what}, 1);
}

/* ---- triggers ---- */

static struct trigger *find(struct fl_mq *mq, const char *name)
{
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &mq->triggers)
    {
        struct trigger *t = FL_QUEUE_DATA(e, struct trigger, link);
        if (strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

static void trigger_free(struct trigger *t)
{
    fl_queue_remove(&t->link);
    free(t);
}

/* A removed trigger with nothing left to come is freed. */
static void maybe_free(struct trigger *t)
{
    if (t->removed && t->refs == 0 && t->inflight == 0 && !t->mq->closing)
        trigger_free(t);
}

static void stop_watching(struct trigger *t)
{
    if (t->notify != NULL)
        t->conn->unnotify(t->self, t->notify);
    t->notify = NULL;
    if (t->room != NULL)
        fl_invoker_unwatch_room(t->mq->invoker, t->room);
    t->room = NULL;
}

static void fail_trigger(struct trigger *t, const char *what, int err)
{
    t->state = T_FAILED;
    t->retry_at_ms = fl_clock_wall_ms() + MQ_RETRY_MS;
    snprintf(t->error, sizeof(t->error), "%s: %s", what, fl_errname(err));
    FL_LOG_LIMITED(FL_LOG_ERROR, "mq", "a trigger cannot consume its topic",
                   "trigger=%s topic=%s error=%s", t->name, t->want.topic, fl_errname(err));
}

/* The counts of a consumer's state. */
static void take_info(struct trigger *t, const struct fl_store_result *res)
{
    if (res == NULL || res->n == 0 || res->consumers == NULL)
        return;
    const struct fl_consumer_info *ci = &res->consumers[0];
    t->pending = ci->pending;
    t->lag = ci->lag;
    t->dead = ci->dead;
    t->have_info = true;
    if (ci->dead > 0)
        t->had_dead = true; /* one may be redriven: read histories from now on */
}

static void on_unsubscribed(int err, const struct fl_store_result *res, void *data)
{
    struct trigger *t = data;
    struct fl_mq *mq = t->mq;
    if (err < 0 && err != FL_ENOENT)
        fl_log(FL_LOG_WARN, "mq", "could not delete a trigger's consumer", "trigger=%s error=%s",
               t->name, fl_errname(err));
    t->refs--;
    maybe_free(t);
    mq_op_done(mq);
}

static void unsubscribe(struct trigger *t, const char *topic)
{
    if (t->conn->unsubscribe(t->self, topic, t->consumer, on_unsubscribed, t) == 0) {
        t->refs++;
        mq_op(t->mq);
    }
}

static void trigger_sync(struct trigger *t);

static void on_notify(int err, const struct fl_store_result *res, void *data)
{
    mq_pump(data);
}

static void on_subscribed(int err, const struct fl_store_result *res, void *data)
{
    struct trigger *t = data;
    struct fl_mq *mq = t->mq;
    t->refs--;
    if (t->removed || mq->closing) {
        /* deleted meanwhile: its consumer, just made, goes too */
        if (err == 0 && t->removed && !mq->closing)
            unsubscribe(t, t->subscribing.topic);
        t->state = T_NEW;
        maybe_free(t);
        mq_op_done(mq);
        return;
    }
    if (err < 0) {
        fail_trigger(t, "cannot make its consumer", err);
    } else {
        t->spec = t->subscribing;
        fl_strlcpy(t->topic, t->spec.topic, sizeof(t->topic));
        take_info(t, res);
        t->state = T_READY;
        t->error[0] = '\0';
        if (t->spec.paused && t->notify != NULL) {
            t->conn->unnotify(t->self, t->notify);
            t->notify = NULL;
        } else if (!t->spec.paused && t->notify == NULL) {
            int rc = t->conn->notify(t->self, t->topic, t->consumer, on_notify, t, &t->notify);
            if (rc < 0)
                fail_trigger(t, "cannot watch its consumer", rc);
        }
    }
    if (t->want_new)
        trigger_sync(t);
    else
        mq_pump(t);
    mq_op_done(mq);
}

/* Make t's consumer as t->want says (moving it if the topic changed). */
static void trigger_sync(struct trigger *t)
{
    struct fl_mq *mq = t->mq;
    if (mq->closing || t->removed)
        return;
    t->want_new = false;
    t->subscribing = t->want;
    const struct fl_mqt_spec *w = &t->subscribing;
    if (t->topic[0] != '\0' && strcmp(t->topic, w->topic) != 0) {
        /* a new topic: the consumer on the old one goes (its deliveries
         * under way are acked there still: each keeps its topic) */
        if (t->notify != NULL)
            t->conn->unnotify(t->self, t->notify);
        t->notify = NULL;
        unsubscribe(t, t->topic);
        t->topic[0] = '\0';
    }
    /* the topics it publishes to are made now, so they can be read */
    if (t->self == NULL) {
        /* a connector this flintd has not: kept, failed, saying so */
        t->state = T_FAILED;
        t->retry_at_ms = fl_clock_wall_ms() + MQ_RETRY_MS;
        snprintf(t->error, sizeof(t->error),
                 "connector '%s' is not available in this flintd: start flintd with --nats URL",
                 t->conn->name);
        return;
    }
    if (w->resp_topic[0] != '\0')
        t->conn->ensure(t->self, w->resp_topic, w->create_stream, NULL, NULL);
    if (w->error_topic[0] != '\0')
        t->conn->ensure(t->self, w->error_topic, w->create_stream, NULL, NULL);
    const struct fl_consumer_config cfg = {
        .ack_wait_ms = w->ack_wait_ms,
        .max_deliver = w->max_retries + 1 + MQ_LOST_MAX,
        .max_ack_pending = w->concurrency,
        .deliver = FL_DELIVER_ALL,
    };
    int rc = t->conn->subscribe(t->self, w->topic, t->consumer, &cfg, w->create_stream,
                                on_subscribed, t);
    if (rc < 0) {
        fail_trigger(t, "cannot make its consumer", rc);
        return;
    }
    t->state = T_SUBSCRIBING;
    t->refs++;
    mq_op(mq);
}

static int trigger_put(void *part, const char *name, uint64_t revision, json_t *spec,
                       struct fl_buf *err)
{
    struct fl_mq *mq = part;
    struct fl_mqt_spec s;
    int rc = fl_mqt_spec_parse(spec, &s, err);
    if (rc < 0)
        return rc;
    const struct fl_mq_connector *conn =
        s.connector == FL_MQT_NATS ? &fl_mq_nats_connector : &fl_mq_builtin;
    void *self = s.connector == FL_MQT_NATS ? (void *)mq->nats : (void *)mq->store;
    struct trigger *t = find(mq, name);
    if (t != NULL && t->conn != conn && (!t->removed || t->refs > 0 || t->inflight > 0)) {
        fl_buf_reset(err);
        fl_buf_appendf(err,
                       "spec.connector: a trigger's connector cannot change ('%s' to '%s'): "
                       "delete the trigger and create it again",
                       t->conn->name, conn->name);
        return FL_EINVAL;
    }
    if (t != NULL && t->conn != conn) {
        trigger_free(t); /* removed, nothing left to come: made anew */
        t = NULL;
    }
    if (t == NULL) {
        if (strlen(name) > FL_NAME_MAX || (t = calloc(1, sizeof(*t))) == NULL)
            return FL_ENOMEM;
        t->mq = mq;
        fl_strlcpy(t->name, name, sizeof(t->name));
        snprintf(t->consumer, sizeof(t->consumer), "mqt/%s", name);
        snprintf(t->label, sizeof(t->label), "messagequeuetrigger/%s", name);
        t->conn = conn;
        t->self = self;
        fl_queue_insert_tail(&mq->triggers, &t->link);
    }
    t->removed = false; /* put again before its deletion was through */
    t->want = s;
    t->want_new = true;
    if (t->state != T_SUBSCRIBING)
        trigger_sync(t);
    return 0;
}

static void trigger_remove(void *part, const char *name)
{
    struct fl_mq *mq = part;
    struct trigger *t = find(mq, name);
    if (t == NULL || t->removed)
        return;
    t->removed = true;
    t->want_new = false;
    stop_watching(t);
    mq_deliveries_cancel(mq, t);
    if (t->topic[0] != '\0')
        unsubscribe(t, t->topic); /* one under way is deleted when it answers */
    t->topic[0] = '\0';
    if (t->state != T_SUBSCRIBING)
        t->state = T_NEW;
    maybe_free(t);
}

static json_t *trigger_status(void *part, const char *name, bool detail)
{
    static const char *const states[] = {"starting", "starting", "running", "failed"};
    struct fl_mq *mq = part;
    struct trigger *t = find(mq, name);
    if (t == NULL || t->removed)
        return NULL;
    const char *state = t->state == T_READY && t->spec.paused ? "paused" : states[t->state];
    char why[256];
    if (t->self != NULL && t->conn->state != NULL && t->conn->state(t->self, why, sizeof(why)) < 0)
        state = "disconnected"; /* the broker's reason, below */
    else
        why[0] = '\0';
    json_t *consumer = json_pack("{s:s,s:s}", "name", t->consumer, "topic",
                                 t->topic[0] ? t->topic : t->want.topic);
    if (consumer != NULL && t->have_info) {
        json_object_set_new(consumer, "pending", json_integer((json_int_t)t->pending));
        json_object_set_new(consumer, "lag", json_integer((json_int_t)t->lag));
        json_object_set_new(consumer, "dead", json_integer((json_int_t)t->dead));
    }
    json_t *st =
        json_pack("{s:s,s:s,s:i,s:o}", "connector", t->conn->name, "state", state, "inflight",
                  (int)t->inflight, "consumer", consumer ? consumer : json_object());
    if (st != NULL && (why[0] != '\0' || t->error[0] != '\0'))
        json_object_set_new(st, "error", json_string(why[0] != '\0' ? why : t->error));
    return st;
}

const struct fl_kind_hooks fl_mq_trigger_hooks = {
    .put = trigger_put,
    .remove = trigger_remove,
    .status = trigger_status,
};

/* ---- fetching ---- */

static void on_fetch(int err, const struct fl_store_result *res, void *data)
{
    struct trigger *t = data;
    struct fl_mq *mq = t->mq;
    t->fetching = false;
    t->refs--;
    if (err < 0 && !mq->closing && !t->removed)
        FL_LOG_LIMITED(FL_LOG_ERROR, "mq", "could not fetch a trigger's messages",
                       "trigger=%s error=%s", t->name, fl_errname(err));
    bool stopped = mq->closing || t->removed || t->state != T_READY || t->spec.paused;
    for (size_t i = 0; err == 0 && i < res->n; i++) {
        const struct fl_record *r = &res->records[i];
        if (stopped) /* given back at once */
            t->conn->ack(t->self, t->topic[0] ? t->topic : t->subscribing.topic, t->consumer,
                         r->seq, FL_NAK, 0, NULL, NULL, NULL);
        else
            mq_deliver(t, r);
    }
    bool more = err == 0 && res->n == t->asked && !t->removed;
    if (more)
        mq_pump(t);
    else
        maybe_free(t);
    mq_op_done(mq);
}

static void on_room(void *data, const struct fl_invoke_target *target)
{
    struct trigger *t = data;
    t->room = NULL;
    mq_pump(t);
}

void mq_pump(struct trigger *t)
{
    struct fl_mq *mq = t->mq;
    if (mq->closing || t->removed || t->state != T_READY || t->spec.paused || t->fetching ||
        t->room != NULL || t->inflight >= t->spec.concurrency)
        return;
    if (mq->ready != NULL && !mq->ready(mq->ready_data))
        return; /* the tick tries again */
    uint64_t want = t->spec.concurrency - t->inflight;
    const struct fl_invoke_target target = mq_target(&t->spec);
    struct fl_invoke_capacity cap;
    if (fl_invoker_capacity(mq->invoker, &target, &cap) == 0) {
        if (fl_invoke_capacity_full(&cap)) {
            fl_invoker_watch_room(mq->invoker, &target, on_room, t, &t->room);
            return;
        }
        /* never more than the function has free slots for */
        uint64_t free_slots = cap.slots > cap.running ? cap.slots - cap.running : 1;
        if (want > free_slots)
            want = free_slots;
    }
    /* a function that is gone: its messages are still delivered, and fail
     * with function_not_found until they reach errorTopic or the dead */
    t->asked = want < MQ_FETCH_MAX ? (size_t)want : MQ_FETCH_MAX;
    if (t->conn->fetch(t->self, t->topic, t->consumer, t->asked, on_fetch, t) < 0)
        return; /* the tick tries again */
    t->fetching = true;
    t->refs++;
    mq_op(mq);
}

void mq_delivery_done(struct trigger *t)
{
    t->inflight--;
    if (t->removed)
        maybe_free(t);
    else
        mq_pump(t);
}

/* ---- the tick ---- */

static void on_info(int err, const struct fl_store_result *res, void *data)
{
    struct trigger *t = data;
    struct fl_mq *mq = t->mq;
    t->info_busy = false;
    t->refs--;
    if (err == 0)
        take_info(t, res);
    maybe_free(t);
    mq_op_done(mq);
}

static void on_tick(uv_timer_t *timer)
{
    struct fl_mq *mq = timer->data;
    int64_t now = fl_clock_wall_ms();
    mq_deliveries_tick(mq, now);
    bool info = ++mq->ticks % MQ_INFO_TICKS == 0;
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &mq->triggers)
    {
        struct trigger *t = FL_QUEUE_DATA(e, struct trigger, link);
        if (t->removed)
            continue;
        if (t->state == T_FAILED && now >= t->retry_at_ms) {
            t->want_new = true;
            trigger_sync(t);
            continue;
        }
        if (t->state != T_READY)
            continue;
        if (info && !t->info_busy &&
            t->conn->info(t->self, t->topic, t->consumer, on_info, t) == 0) {
            t->info_busy = true;
            t->refs++;
            mq_op(mq);
        }
        mq_pump(t); /* what could not fetch (not ready yet, an error) tries again */
    }
}

/* ---- start and close ---- */

int fl_mq_new(uv_loop_t *loop, const struct fl_mq_config *cfg, struct fl_mq **out)
{
    struct fl_mq *mq = calloc(1, sizeof(*mq));
    if (mq == NULL)
        return FL_ENOMEM;
    mq->loop = loop;
    mq->store = cfg->store;
    mq->invoker = cfg->invoker;
    mq->metrics = cfg->metrics;
    mq->nats = cfg->nats;
    mq->ready = cfg->ready;
    mq->ready_data = cfg->ready_data;
    fl_queue_init(&mq->triggers);
    fl_queue_init(&mq->deliveries);
    uv_timer_init(loop, &mq->tick);
    mq->tick.data = mq;
    uv_timer_start(&mq->tick, on_tick, MQ_TICK_MS, MQ_TICK_MS);
    mq_op(mq); /* the tick, until it is closed */
    *out = mq;
    return 0;
}

static void maybe_done(struct fl_mq *mq)
{
    if (!mq->closing || mq->ops > 0 || !fl_queue_empty(&mq->deliveries))
        return;
    while (!fl_queue_empty(&mq->triggers))
        trigger_free(FL_QUEUE_DATA(fl_queue_first(&mq->triggers), struct trigger, link));
    void (*done)(void *) = mq->done;
    void *data = mq->done_data;
    free(mq);
    if (done != NULL)
        done(data);
}

static void on_tick_closed(uv_handle_t *h)
{
    mq_op_done(h->data);
}

void fl_mq_close(struct fl_mq *mq, void (*done)(void *data), void *data)
{
    mq->closing = true;
    mq->done = done;
    mq->done_data = data;
    mq->ops++; /* held until this function is through */
    uv_close((uv_handle_t *)&mq->tick, on_tick_closed);
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &mq->triggers)
    stop_watching(FL_QUEUE_DATA(e, struct trigger, link));
    /* calls under way: their outcome (canceled) gives their messages back */
    mq_deliveries_cancel(mq, NULL);
    mq_op_done(mq);
}
