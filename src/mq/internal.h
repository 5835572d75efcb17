/*
 * What the MQ module's files share (mq.h says what it does): the module,
 * a trigger, and the calls between mq.c (triggers: their consumers,
 * fetching, status, the tick) and delivery.c (one message from its
 * delivery to its ack).
 */
#ifndef FLINT_MQ_INTERNAL_H
#define FLINT_MQ_INTERNAL_H

#include "base/queue.h"
#include "mq/connector.h"
#include "mq/mq.h"
#include "mq/spec.h"

#define MQ_TICK_MS    250 /* in-progress signals, retries of failed subscribes */
#define MQ_INFO_TICKS 4   /* a trigger's consumer figures are read every 4 ticks */
#define MQ_FETCH_MAX  256
#define MQ_RETRY_MS   2000 /* a subscribe that failed is tried again after this */
#define MQ_LATER_MS   1000 /* a step that failed (a publish, a record) comes back after this */
#define MQ_LOST_MAX                                                                                \
    16 /* deliveries lost to stops of flintd, beyond a message's attempts,                         \
        * before the broker parks it by itself */
#define MQ_CONSUMER_MAX (4 + FL_NAME_MAX + 1)  /* "mqt/<trigger>" */
#define MQ_TRIGGER_MAX  (20 + FL_NAME_MAX + 1) /* "messagequeuetrigger/<trigger>" */

struct trigger {
    struct fl_queue link; /* fl_mq.triggers */
    struct fl_mq *mq;
    char name[FL_NAME_MAX + 1];
    char consumer[MQ_CONSUMER_MAX];
    char label[MQ_TRIGGER_MAX]; /* "messagequeuetrigger/<name>" */
    const struct fl_mq_connector *conn;
    void *self;                     /* the connector's state */
    struct fl_mqt_spec spec;        /* what runs (valid once a subscribe succeeded) */
    struct fl_mqt_spec want;        /* the latest put */
    struct fl_mqt_spec subscribing; /* what the subscribe under way makes */
    bool want_new;                  /* want is not applied yet */
    enum { T_NEW, T_SUBSCRIBING, T_READY, T_FAILED } state;
    char topic[FL_MQT_TOPIC_MAX + 1]; /* the topic its consumer is on ("": none yet) */
    void *notify;
    struct fl_invoke_room *room;
    unsigned inflight; /* deliveries under way */
    unsigned refs;     /* connector operations whose callback is to come */
    size_t asked;      /* the fetch under way asked for this many */
    bool fetching, removed, had_dead, info_busy, have_info;
    uint64_t pending, lag, dead;
    char error[256]; /* why it does not run, for its status */
    int64_t retry_at_ms;
};

struct fl_mq {
    uv_loop_t *loop;
    struct fl_store *store;
    struct fl_invoker *invoker;
    struct fl_metrics *metrics;
    struct fl_mq_nats *nats; /* NULL: no NATS connector */
    bool (*ready)(void *data);
    void *ready_data;
    struct fl_queue triggers;   /* struct trigger, removed ones until their last callback */
    struct fl_queue deliveries; /* struct delivery (delivery.c) */
    uv_timer_t tick;
    unsigned ticks;
    unsigned ops; /* callbacks still to come, the tick's close included */
    bool closing;
    void (*done)(void *data);
    void *done_data;
};

/* What a trigger of spec s calls: its function, or its workflow (run
 * through the invoker as a function is: its output is the answer). */
static inline struct fl_invoke_target mq_target(const struct fl_mqt_spec *s)
{
    return s->workflow[0] ? (struct fl_invoke_target){FL_INVOKE_WORKFLOW, s->workflow}
                          : (struct fl_invoke_target){FL_INVOKE_FUNCTION, s->function};
}

/* The name its history records as its "function" (async/history.h):
 * the function's, or the workflow's (with "workflow" beside it). */
static inline const char *mq_target_name(const struct fl_mqt_spec *s)
{
    return s->workflow[0] ? s->workflow : s->function;
}

/* mq.c */
void mq_op(struct fl_mq *mq);
void mq_op_done(struct fl_mq *mq);
/* Fetch for t if it may take more. */
void mq_pump(struct trigger *t);
/* A delivery of t ended (its ack answered, or it was dropped). */
void mq_delivery_done(struct trigger *t);
/* Count a delivery's end in flint_mq_deliveries_total. */
void mq_count(struct trigger *t, const char *what);

/* delivery.c */
/* Take delivery r of t: the call, the decision, the ack. */
void mq_deliver(struct trigger *t, const struct fl_record *r);
/* Signal in-progress for the deliveries held long enough (now: wall ms). */
void mq_deliveries_tick(struct fl_mq *mq, int64_t now);
/* Cancel the calls under way of t (NULL: of every trigger). */
void mq_deliveries_cancel(struct fl_mq *mq, struct trigger *t);

#endif
