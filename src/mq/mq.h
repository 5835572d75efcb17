/*
 * Message-queue triggers: a function bound to a topic gets every message,
 * at least once. A message is acknowledged only after the function
 * answered 2xx and its response was published (durably) to the trigger's
 * respTopic; a failure is retried with backoff up to maxRetries; a message
 * that keeps failing is published to errorTopic and only then acked, or,
 * with no errorTopic, parked as a dead letter that `flint dlq` shows,
 * redrives and purges. Never lost, never looping forever.
 *
 * struct fl_mq runs the kind messagequeuetrigger (mq/spec.h has its
 * fields): flintd's follower of the kind puts and removes triggers through
 * fl_mq_trigger_hooks, which also give a trigger's status. Brokers are
 * reached through connectors (mq/connector.h): builtin.c, the embedded
 * store's topics, and nats.c, NATS JetStream (mq/nats.h), when flintd
 * was given a NATS server. The API refuses to create (or update to) a
 * nats trigger in a flintd without one (fl_mq_has_connector: it could
 * never run); one stored while flintd had one is kept, failed, with the
 * reason in its status, and runs again once flintd has one. A trigger
 * whose broker is unreachable (a server down, or not there yet) is
 * taken and shows state "disconnected" and the broker's reason.
 *
 * Per trigger, one durable consumer "mqt/<trigger>" on its topic (made,
 * with the topics the trigger names, if missing), with the trigger's
 * ackWait, maxDeliver above its attempts (the store never gives up on a
 * message on its own) and maxAckPending = concurrency, so that at most
 * concurrency messages are in flight and, with 1, they are processed in
 * order (a message waiting for its retry holds its place). It is fetched
 * when the connector says messages may wait, and never while the invoker
 * says the function is full (its room watch resumes it).
 *
 * A trigger's target is a function or a workflow (spec.workflow): a
 * workflow is called through the invoker as a function is (the engine is
 * its handler), its output the answer, each attempt an invocation of its
 * own (fl_mq_attempt_id()); what follows holds for both.
 *
 * A delivery is a POST to the function: the message's body, its headers
 * (those a program may set; Content-Type from spec.contentType when it has
 * none), and X-Flint-Topic, X-Flint-Resp-Topic, X-Flint-Error-Topic (when
 * set), X-Flint-Message-Id (the publisher's id, or the sequence),
 * X-Flint-Invocation-Id (fl_mq_invocation_id(): the same on every
 * redelivery of that message), X-Flint-Attempt (the delivery count) and
 * X-Flint-Trigger ("messagequeuetrigger/NAME").
 * Then fl_mq_decide() says what to do:
 *
 *   2xx                 publish the response (body; headers, with
 *                       X-Flint-Invocation-Id, X-Flint-Status,
 *                       X-Flint-Topic, X-Flint-Message-Id; message id
 *                       "<invocation>:resp", so a redelivery within the
 *                       window publishes it once) to respTopic, wait until
 *                       it is durable, then ACK
 *   failed, attempts    NAK with fl_retry_delay_ms(backoff, maxBackoff)
 *   left
 *   failed, last        publish the message (body, headers, and
 *   attempt             X-Flint-Error, X-Flint-Status, X-Flint-Attempts,
 *                       X-Flint-Invocation-Id; id "<invocation>:error") to
 *                       errorTopic, durably, then ACK; with no errorTopic,
 *                       FL_DEAD: a dead letter
 *   flintd stopping     NAK at once: the message comes back at the next
 *                       start (the delivery counts)
 *
 * A response the broker can never take (larger than a message may be) is a
 * failed attempt, decided as any other; a message the error topic cannot
 * take becomes a dead letter. A publish or record that fails for a while
 * (the store) gives the message back to come again after a second.
 *
 * History. The fast path (a first delivery that succeeds) writes nothing
 * but the response and the ack. A failure is recorded as an invocation of
 * the async module's kind (async/history.h: stream "inv/<invocation>"): a
 * "queued" event naming the function, the trigger
 * ("messagequeuetrigger/NAME"), the topic and the consumer, then one
 * "attempt" event per failed attempt and the last one with its end
 * (succeeded, failed: sent to errorTopic, dead). So `flint inv get` and
 * `flint dlq list|get|redrive|purge` show and steer MQ dead letters as
 * they do async ones. A redelivery (count above 1), and every delivery of
 * a trigger that has had dead letters (one may have been redriven), reads
 * the history first: an invocation that already ended (its ack was lost)
 * is acked as it ended, never run again.
 *
 * In-progress is signalled every ackWait/3 while a message is held, so a
 * call longer than ackWait is not redelivered while it runs. A flintd
 * killed at any point loses nothing: what was not acked comes back after
 * ackWait, with the same invocation id.
 *
 * Updates take effect live: the consumer's configuration is updated (a
 * new topic: the old consumer is deleted, a new one made), a paused
 * trigger fetches nothing and its messages wait. A deleted trigger's calls
 * under way are canceled and its consumer deleted.
 *
 * Everything runs on the loop's thread.
 */
#ifndef FLINT_MQ_MQ_H
#define FLINT_MQ_MQ_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/id.h"
#include "base/metrics.h"
#include "invoke/invoke.h"
#include "kinds/kinds.h"
#include "store/store.h"

struct fl_mq;
struct fl_mq_nats;

struct fl_mq_config {
    struct fl_store *store;     /* borrowed: builtin topics and the invocations' history */
    struct fl_invoker *invoker; /* borrowed */
    struct fl_metrics *metrics; /* borrowed; may be NULL */
    struct fl_mq_nats *nats;    /* borrowed (mq/nats.h); NULL: nats triggers cannot run */
    /* Whether the functions the store holds are loaded (may be NULL):
     * nothing is fetched before. */
    bool (*ready)(void *data);
    void *ready_data;
};

/* A new MQ module, with no trigger yet (the kind's follower puts them).
 * 0 or FL_ENOMEM. */
int fl_mq_new(uv_loop_t *loop, const struct fl_mq_config *cfg, struct fl_mq **out);

/* Stop fetching and cancel the calls under way (their messages are given
 * back to the broker); done runs from the loop once nothing is left.
 * Close it before the async module, the invoker and the store. */
void fl_mq_close(struct fl_mq *mq, void (*done)(void *data), void *data);

/* The hooks of the kind messagequeuetrigger (kinds.def): put, remove,
 * status ({"connector", "state" (starting, running, paused, failed,
 * disconnected), "error", "inflight", "consumer": {"name",
 * "topic", "pending", "lag", "dead"}}, the consumer's figures as of the
 * last second). */
extern const struct fl_kind_hooks fl_mq_trigger_hooks;

/* ---- dead letters a connector holds (dead.c) ----
 *
 * The builtin connector's dead letters are the store's, which the async
 * module redrives and purges. A NATS trigger's are in stream FLINT_DEAD
 * (mq/nats.h); these steer them, writing the invocation's history as the
 * async module does (async/history.h). A redrive records "redriven",
 * then publishes the letter again to its trigger's topic (its body and
 * headers, and Flint-Redrive: <invocation id>, which a delivery takes as
 * its invocation id, so its attempts go on in the same history) and
 * removes it from FLINT_DEAD; a purge removes it, then records "purged".
 * cb answers once, from the loop, with {"redriven": [id]} or
 * {"purged": [id]} (owned during the call), or an error: FL_ENOENT when
 * id is not such a letter (no such invocation, not dead, a letter of the
 * store's, or, for a redrive, one whose trigger is gone or moved to
 * another topic): the caller asks the async module then; FL_ECONFLICT
 * when its history moved meanwhile or the letter is not where it should
 * be; others from the broker or the store. A function that returns an
 * error never calls cb. */
typedef void (*fl_mq_json_cb)(int err, json_t *value, void *data);

/* Read the dead letter id where the connector holds it, leaving it there:
 * cb once, from the loop, with res->records[0] (its body: data, len; its
 * reason), or an error (FL_ENOENT as fl_mq_dead_steer()). A function that
 * returns an error never calls cb. */
int fl_mq_dead_read(struct fl_mq *mq, const char *id, fl_store_cb cb, void *data);
/* Whether mq runs the connector of that name ("builtin": always; "nats":
 * when flintd was given a NATS server). */
bool fl_mq_has_connector(const struct fl_mq *mq, const char *name);

/* Whether a connector of mq may hold dead letters (false: every one is the
 * store's; mq may be NULL). */
bool fl_mq_holds_dead(const struct fl_mq *mq);
int fl_mq_dead_steer(struct fl_mq *mq, const char *id, bool redrive, fl_mq_json_cb cb, void *data);

/* ---- the pure parts, for tests ---- */

/* What became of a delivery's call. */
enum fl_mq_outcome {
    FL_MQ_SUCCEEDED, /* the function answered 2xx */
    FL_MQ_FAILED,    /* anything else: another status, timeout, crash, busy, not found */
    FL_MQ_STOPPED,   /* canceled: flintd stops, or the trigger was deleted */
};

/* The outcome of an invoker's answer. */
enum fl_mq_outcome fl_mq_outcome_of(const struct fl_invoke_outcome *o);

/* What to do with a delivery. */
enum fl_mq_action {
    FL_MQ_RESPOND,     /* publish the response to respTopic (if any), then ACK */
    FL_MQ_RETRY,       /* NAK with the backoff */
    FL_MQ_ERROR_TOPIC, /* publish to errorTopic, then ACK */
    FL_MQ_DEAD,        /* record the dead letter, then FL_DEAD */
    FL_MQ_GIVE_BACK,   /* NAK at once, nothing recorded */
};

/* "respond", "retry", "error_topic", "dead", "give_back". */
const char *fl_mq_action_name(enum fl_mq_action a);

/* The decision table: outcome x delivery count (1 for the first) against
 * max_retries + 1 attempts, and whether the trigger has an errorTopic. */
enum fl_mq_action fl_mq_decide(enum fl_mq_outcome o, uint32_t delivery, uint32_t max_retries,
                               bool has_error_topic);

/* The invocation id of a message: a UUIDv7 whose time is when the message
 * was published (so the async module's retention sweep, which goes by the
 * ids' time, treats it as it does the others) and whose other bits are a
 * SHA-256 of the trigger, the topic, the sequence and that time: the same
 * for every delivery of the message, different for any other. */
void fl_mq_invocation_id(const char *trigger, const char *topic, uint64_t seq, int64_t published_ms,
                         char out[FL_UUID_STRLEN + 1]);

/* The id of attempt of the message whose invocation is id, when its
 * target is a workflow (each attempt is an invocation of the engine's): a
 * UUIDv7 with id's time, the rest a SHA-256 of id and attempt. */
void fl_mq_attempt_id(const char *id, uint32_t attempt, char out[FL_UUID_STRLEN + 1]);

#endif
