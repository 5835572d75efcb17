/*
 * The NATS JetStream connector (connector.h): triggers with
 * `connector: nats` consume a subject of a JetStream stream through a
 * durable pull consumer named after the trigger, and publish what they
 * publish with JetStream publish.
 *
 * Mapping of the connector's vocabulary:
 *
 *   topic        a subject; its stream is the one whose subjects hold it
 *                (the server's stream list filtered by subject). ensure
 *                and subscribe with create make a stream of it when none
 *                holds it: "FLINT_<subject, '.' as '_'>", file storage,
 *                limits retention, the limits of connector.h; without
 *                create a missing stream is FL_ENOENT
 *   consumer     a durable pull consumer on that stream, filtered on the
 *                subject, named as Flint's consumer with '/' as '_'
 *                ("mqt/orders" -> "mqt_orders"): explicit ack, AckWait,
 *                MaxDeliver, MaxAckPending from the config, deliver all
 *   fetch        a no-wait pull of up to max (a request to the consumer's
 *                MSG.NEXT subject answered to an inbox of the trigger's:
 *                libnats 3.4.1's own pull fetch can write past its list):
 *                what is due now; a record's seq is the stream sequence,
 *                key its Nats-Msg-Id, headers its headers (other than
 *                Nats-*) as a JSON object (values of one name joined by
 *                ", "), deliveries the server's delivery count and ts_ms
 *                the time it was stored (all from its ack subject)
 *   ack          +ACK, -NAK (with delay), +TERM, +WPI published to the
 *                delivery's ack subject; FL_DEAD publishes
 *                the message (its headers, and Flint-Reason, Flint-Topic,
 *                Flint-Seq, Flint-Message-Id: its Nats-Msg-Id or
 *                sequence) to "flint.dead.<consumer>.<seq>" in stream
 *                FLINT_DEAD (made when first needed), waits for the
 *                server's ack, then +TERM. Acks other than FL_DEAD are
 *                handed to the connection without waiting for the
 *                server's answer: one that is lost makes the message come
 *                back after AckWait, which at least once allows
 *   publish      asynchronous JetStream publish with Nats-Msg-Id =
 *                msg_id; cb once the stream acknowledged it (stored, or a
 *                duplicate within the stream's window: res->duplicate),
 *                or after 5 s without an answer (FL_ETIMEDOUT). No stream
 *                holding the subject: FL_ENOENT; larger than the server
 *                takes: FL_ETOOBIG
 *   notify       a core NATS subscription on the subject: each publish
 *                is a hint; so is an ack (a millisecond later: the server
 *                takes acks apart from pulls, so a pull at once may still
 *                find the consumer full), and a pull that came back short
 *                within 20 ms of an ack. Redeliveries come due without a
 *                hint: the MQ module's tick fetches anyway
 *   info         the consumer's NumAckPending (pending) and NumPending
 *                (lag); dead: its letters in FLINT_DEAD (the stream's
 *                subjects under "flint.dead.<consumer>.>")
 *   steer_dead   the letter's subject's last message in FLINT_DEAD (its
 *                Flint-Topic must be the topic): a redrive publishes it
 *                to the topic (headers but Flint-Reason, Flint-Topic,
 *                Flint-Seq and Nats-*, plus the caller's) and waits for
 *                the stream's ack; then it is deleted from FLINT_DEAD
 *   read_dead    the same letter, left there: its body and Flint-Reason
 *
 * Threads. libnats is synchronous (pulls, the JetStream API) and runs its
 * callbacks on threads of its own; the loop must never wait on it. Every
 * operation is a job on one worker thread per connector, in the order the
 * loop gave them; results come back to the loop through a queue and a
 * uv_async, where the callbacks run. A publish's job ends in libnats'
 * ack callback instead (the worker goes on meanwhile). libnats' other
 * callbacks (connection state, publish hints) only set fields under a
 * lock and wake the loop. Messages a fetch delivered are
 * held, by (topic, consumer, stream sequence), until acked; they are
 * destroyed on the worker after every job that names them.
 *
 * Connection. fl_mq_nats_new() returns at once: the connection is made
 * by the worker, retried every second while no server answers (and for
 * ever after a disconnect), so flintd starts without nats-server and its
 * triggers show why they wait (fl_mq_nats.state). The first attempt does
 * not retry, so that a server that refuses us (credentials of an account
 * it does not know, TLS it wants) gives its word ("Authorization
 * Violation"), which stays the reason once libnats' retries give up and
 * close the connection. Pull subscriptions
 * outlive reconnects; an operation made while disconnected fails (a
 * publish waits up to 5 s for the server first) and the MQ module tries
 * again.
 */
#ifndef FLINT_MQ_NATS_H
#define FLINT_MQ_NATS_H

#include <stddef.h>
#include <uv.h>

#include "mq/connector.h"

struct fl_mq_nats;

struct fl_mq_nats_config {
    const char *urls;     /* "nats://HOST:PORT[,nats://...]" (tls:// for TLS) */
    const char *creds;    /* a credentials file (JWT and NKey seed), or NULL */
    const char *tls_ca;   /* CA certificates (PEM) to trust, or NULL */
    const char *tls_cert; /* a client certificate chain (PEM), with tls_key, or NULL */
    const char *tls_key;
};

/* The connector; self for fl_mq_nats_connector is the struct fl_mq_nats. */
extern const struct fl_mq_connector fl_mq_nats_connector;

/* A connector to the servers cfg names (strings copied); it connects in
 * the background. 0, FL_EINVAL (bad options: why in err), FL_ENOMEM. */
int fl_mq_nats_new(uv_loop_t *loop, const struct fl_mq_nats_config *cfg, struct fl_mq_nats **out,
                   char *err, size_t errsize);

/* Close: held messages are dropped (the server redelivers them after
 * their AckWait), the connection is closed; done runs from the loop once
 * the worker is gone. Close it after the MQ module. */
void fl_mq_nats_close(struct fl_mq_nats *n, void (*done)(void *data), void *data);

#endif
