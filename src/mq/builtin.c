/*
 * The builtin connector (connector.h): triggers on the embedded store's
 * topics. Most operations are the store's own; what it adds is making the
 * topics a trigger names when they are missing (ensure, and before a
 * subscribe or a publish that found no topic), whatever the trigger's
 * createStream says: a topic of the store costs nothing until used.
 */
#include "mq/connector.h"

#include "base/error.h"
#include "base/str.h"

#include <stdlib.h>
#include <string.h>

/* One operation of several store steps. */
struct steps {
    struct fl_store *s;
    enum { OP_ENSURE, OP_SUBSCRIBE, OP_PUBLISH } op;
    int stage;
    char topic[FL_CURSOR_MAX];
    char consumer[FL_CURSOR_MAX];
    struct fl_consumer_config cfg;
    const char *headers, *msg_id; /* the caller's, valid until cb */
    const void *payload;
    size_t len;
    fl_store_cb cb;
    void *data;
};

static void on_step(int err, const struct fl_store_result *res, void *data);

static void finish(struct steps *st, int err, const struct fl_store_result *res)
{
    static const struct fl_store_result none = {0};
    if (st->cb != NULL)
        st->cb(err, res != NULL ? res : &none, st->data);
    free(st);
}

static int create_topic(struct steps *st)
{
    const struct fl_topic_limits limits = {.max_msgs = FL_MQ_TOPIC_MAX_MSGS,
                                           .max_bytes = FL_MQ_TOPIC_MAX_BYTES,
                                           .dup_window_ms = FL_MQ_TOPIC_DUP_WINDOW};
    return fl_store_topic_create(st->s, st->topic, &limits, on_step, st);
}

/* The step after the topic is known to exist. */
static int after_topic(struct steps *st)
{
    switch (st->op) {
    case OP_SUBSCRIBE:
        st->stage = 2;
        return fl_store_consumer_create(st->s, st->topic, st->consumer, &st->cfg, on_step, st);
    case OP_PUBLISH:
        st->stage = 3;
        return fl_store_publish(st->s, st->topic, st->headers, st->msg_id, st->payload, st->len,
                                on_step, st);
    default:
        return 1; /* done */
    }
}

/*
 * Stages: 0 topic info (or, for a publish, the publish itself), 1 topic
 * made, 2 consumer made, 3 published after making the topic, 4 consumer
 * info. A step that cannot start ends the operation with its error.
 */
static void on_step(int err, const struct fl_store_result *res, void *data)
{
    struct steps *st = data;
    int rc = 0;
    switch (st->stage) {
    case 0:
        if (st->op == OP_PUBLISH && err != FL_ENOENT)
            break; /* published, or failed for another reason */
        if (err == FL_ENOENT) {
            st->stage = 1;
            rc = create_topic(st);
            goto next;
        }
        if (err < 0)
            break;
        __attribute__((fallthrough)); /* the topic exists */
    case 1:
        if (err < 0)
            break;
        rc = after_topic(st);
        if (rc == 1) {
            finish(st, 0, NULL);
            return;
        }
        goto next;
    case 2:
        if (err < 0)
            break;
        st->stage = 4;
        rc = fl_store_consumer_info(st->s, st->topic, st->consumer, on_step, st);
        goto next;
    default:
        break;
    }
    finish(st, err, res);
    return;
next:
    if (rc < 0)
        finish(st, rc, NULL);
}

static int start(struct fl_store *s, int op, const char *topic, const char *consumer,
                 fl_store_cb cb, void *data, struct steps **out)
{
    if (strlen(topic) >= FL_CURSOR_MAX || (consumer && strlen(consumer) >= FL_CURSOR_MAX))
        return FL_EINVAL;
    struct steps *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return FL_ENOMEM;
    st->s = s;
    st->op = op;
    st->cb = cb;
    st->data = data;
    fl_strlcpy(st->topic, topic, sizeof(st->topic));
    if (consumer != NULL)
        fl_strlcpy(st->consumer, consumer, sizeof(st->consumer));
    *out = st;
    return 0;
}

static int go(struct steps *st, int rc)
{
    if (rc < 0)
        free(st);
    return rc;
}

static int builtin_ensure(void *self, const char *topic, bool create, fl_store_cb cb, void *data)
{
    struct steps *st;
    int rc = start(self, OP_ENSURE, topic, NULL, cb, data, &st);
    return rc < 0 ? rc : go(st, fl_store_topic_info(self, topic, on_step, st));
}

static int builtin_subscribe(void *self, const char *topic, const char *consumer,
                             const struct fl_consumer_config *cfg, bool create, fl_store_cb cb,
                             void *data)
{
    struct steps *st;
    int rc = start(self, OP_SUBSCRIBE, topic, consumer, cb, data, &st);
    if (rc < 0)
        return rc;
    st->cfg = *cfg;
    return go(st, fl_store_topic_info(self, topic, on_step, st));
}

static int builtin_publish(void *self, const char *topic, const char *headers, const char *msg_id,
                           const void *payload, size_t len, fl_store_cb cb, void *data)
{
    struct steps *st;
    int rc = start(self, OP_PUBLISH, topic, NULL, cb, data, &st);
    if (rc < 0)
        return rc;
    st->headers = headers;
    st->msg_id = msg_id;
    st->payload = payload;
    st->len = len;
    return go(st, fl_store_publish(self, topic, headers, msg_id, payload, len, on_step, st));
}

static int builtin_unsubscribe(void *self, const char *topic, const char *consumer, fl_store_cb cb,
                               void *data)
{
    return fl_store_consumer_delete(self, topic, consumer, cb, data);
}

static int builtin_notify(void *self, const char *topic, const char *consumer, fl_store_cb cb,
                          void *data, void **handle)
{
    struct fl_store_watch *w = NULL;
    int rc = fl_store_notify(self, topic, consumer, cb, data, &w);
    *handle = w;
    return rc;
}

static void builtin_unnotify(void *self, void *handle)
{
    fl_store_unwatch(handle);
}

static int builtin_fetch(void *self, const char *topic, const char *consumer, size_t max,
                         fl_store_cb cb, void *data)
{
    return fl_store_fetch(self, topic, consumer, max, cb, data);
}

static int builtin_ack(void *self, const char *topic, const char *consumer, uint64_t seq,
                       enum fl_ack_kind kind, int64_t delay_ms, const char *reason, fl_store_cb cb,
                       void *data)
{
    return fl_store_ack(self, topic, consumer, seq, kind, delay_ms, reason, cb, data);
}

static int builtin_info(void *self, const char *topic, const char *consumer, fl_store_cb cb,
                        void *data)
{
    return fl_store_consumer_info(self, topic, consumer, cb, data);
}

const struct fl_mq_connector fl_mq_builtin = {
    .name = "builtin",
    .ensure = builtin_ensure,
    .subscribe = builtin_subscribe,
    .unsubscribe = builtin_unsubscribe,
    .notify = builtin_notify,
    .unnotify = builtin_unnotify,
    .fetch = builtin_fetch,
    .ack = builtin_ack,
    .publish = builtin_publish,
    .info = builtin_info,
};
