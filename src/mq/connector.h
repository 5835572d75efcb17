/*
 * A connector: how the MQ module (mq.h) reaches one kind of broker. It is
 * a small table of operations, so that a connector is one file (builtin.c:
 * the embedded store's topics; a NATS JetStream connector the same way).
 *
 * The vocabulary is the store's topic interface (store/store.h), which is
 * written so that JetStream can honour it: durable consumers with explicit
 * ack, nak with delay, term, in-progress, dead letters; messages as struct
 * fl_record (seq, key = the publisher's message id, headers = a JSON
 * object, data, deliveries, ts_ms = when published); results through
 * fl_store_cb. Every operation follows store.h's calling convention: it
 * returns 0 and calls cb once, later, from the loop, or returns a negative
 * error and never calls it. cb may be NULL where the caller does not wait.
 *
 * A connector's operations, each given the connector's own state (self):
 *
 *   ensure       make topic if it does not exist (default limits); an
 *                existing topic keeps its limits. create says whether
 *                the trigger lets the connector make it: one that cannot
 *                otherwise answers FL_ENOENT (builtin: always made)
 *   subscribe    ensure topic (create as ensure's), then make (or update)
 *                the durable consumer with cfg; res->consumers[0] is its
 *                state afterwards
 *   unsubscribe  delete the consumer (FL_ENOENT if there is none)
 *   notify       be told when the consumer may have messages to fetch (a
 *                hint, as fl_store_notify); *handle until unnotify
 *   fetch        up to max (1..256) deliveries, each durable before cb
 *                sees it, with its delivery count
 *   ack          FL_ACK, FL_NAK (with delay), FL_TERM, FL_IN_PROGRESS,
 *                FL_DEAD (parked with reason; a connector without parked
 *                dead letters keeps them in a stream of its own)
 *   publish      publish and wait until the broker holds it durably; a
 *                missing topic is made (default limits); msg_id
 *                de-duplicates within the broker's window. headers,
 *                msg_id and payload must stay valid until cb runs (a
 *                connector may publish again after making the topic)
 *   info         res->consumers[0]: pending, lag, dead
 *   state        (may be NULL: always reachable) synchronous, on the
 *                loop: 0 if the broker is reachable, else a negative
 *                error with why in reason (a trigger shows it)
 *   steer_dead   (may be NULL: its dead letters are the store's, which
 *                the async module steers) the dead letter of consumer
 *                at sequence seq of topic: redrive_headers NULL purges
 *                it; else it is published again to topic with its
 *                headers and redrive_headers (a JSON object) added,
 *                durably, then removed. FL_ENOENT if there is none
 *   read_dead    (NULL with steer_dead) that letter, left where it is:
 *                res->records[0] has its body (data, len) and reason
 */
#ifndef FLINT_MQ_CONNECTOR_H
#define FLINT_MQ_CONNECTOR_H

#include "store/store.h"

struct fl_mq_connector {
    const char *name; /* "builtin", "nats": what a trigger's spec.connector names */
    int (*ensure)(void *self, const char *topic, bool create, fl_store_cb cb, void *data);
    int (*subscribe)(void *self, const char *topic, const char *consumer,
                     const struct fl_consumer_config *cfg, bool create, fl_store_cb cb, void *data);
    int (*unsubscribe)(void *self, const char *topic, const char *consumer, fl_store_cb cb,
                       void *data);
    int (*notify)(void *self, const char *topic, const char *consumer, fl_store_cb cb, void *data,
                  void **handle);
    void (*unnotify)(void *self, void *handle); /* NULL handle: nothing */
    int (*fetch)(void *self, const char *topic, const char *consumer, size_t max, fl_store_cb cb,
                 void *data);
    int (*ack)(void *self, const char *topic, const char *consumer, uint64_t seq,
               enum fl_ack_kind kind, int64_t delay_ms, const char *reason, fl_store_cb cb,
               void *data);
    int (*publish)(void *self, const char *topic, const char *headers, const char *msg_id,
                   const void *payload, size_t len, fl_store_cb cb, void *data);
    int (*info)(void *self, const char *topic, const char *consumer, fl_store_cb cb, void *data);
    int (*state)(void *self, char *reason, size_t size);
    int (*steer_dead)(void *self, const char *topic, const char *consumer, uint64_t seq,
                      const char *redrive_headers, fl_store_cb cb, void *data);
    int (*read_dead)(void *self, const char *topic, const char *consumer, uint64_t seq,
                     fl_store_cb cb, void *data);
};

/* The embedded store's topics (builtin.c); self is the struct fl_store. */
extern const struct fl_mq_connector fl_mq_builtin;

/* The limits of a topic a connector makes because a trigger names it:
 * bounded like every queue of Flint, oldest messages going first. */
#define FL_MQ_TOPIC_MAX_MSGS   1000000
#define FL_MQ_TOPIC_MAX_BYTES  (1ULL << 30)
#define FL_MQ_TOPIC_DUP_WINDOW (2 * 60 * 1000)

#endif
