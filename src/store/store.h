/*
 * The store: all of Flint's durable state, behind one interface with
 * backends chosen by URI (fl_store_open). Today's backend is the embedded
 * SQLite database ("sqlite:DIR"); the interface is written so that a NATS
 * JetStream backend can honour it too. Every operation below says what
 * each backend guarantees: "sqlite:" is what src/store/sqlite*.c does,
 * "jetstream:" is what a backend on NATS JetStream can give and is held
 * to. Where they differ, a capability bit (fl_store_caps) says which
 * behaviour a store has, and the conformance suite
 * (tests/unit/store_conformance.inc) tests the stronger one only where a
 * store claims it.
 *
 * Four kinds of state:
 *
 *   Resources      JSON values under kind/name with a store-wide revision
 *                  (JetStream: a KV bucket; the revision is the KV
 *                  revision). Writes compare-and-set on the revision; a
 *                  watch replays changes since a revision, then follows.
 *   Event streams  named, append-only lists of (type, JSON) events, each
 *                  with a sequence in its stream (JetStream: one stream, a
 *                  subject per event stream). An append may require the
 *                  stream's last sequence to be as expected, and may be
 *                  fenced by a lease. Subscribers hear of appends.
 *   Topics         bounded message logs with de-duplication by message id,
 *                  and durable consumers with explicit ack, nak with
 *                  delay, term, in-progress, redelivery after ackWait, a
 *                  deliver policy, a cap on messages in flight, and dead
 *                  letters (with a reason) after maxDeliver (JetStream:
 *                  streams and durable pull consumers).
 *   Leases         named, single-owner claims with an expiry: acquire
 *                  (compare-and-set), renew, release (JetStream: a subject
 *                  of the event stream with per-message TTL, 2.11+).
 *
 * Calling convention. Every operation is asynchronous: it returns 0 and
 * later calls its callback once, on the loop the store was opened with,
 * or returns a negative error and never calls it (bad arguments are
 * FL_EINVAL at once, for every backend alike). A write's callback runs only
 * once the change is durable (sqlite: committed and fsynced; jetstream:
 * acknowledged by the stream's quorum). Callbacks of one store run in the
 * order the store made their changes durable. What a callback receives is
 * valid only during the call: copy what you keep.
 *
 * Paging. Every list and read returns at most a page: struct fl_page says
 * how many (limit) and where to go on from (after, the previous page's
 * res->next). res->next is NULL on the last page.
 */
#ifndef FLINT_STORE_STORE_H
#define FLINT_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct fl_store;
struct fl_store_watch;

#define FL_REV_ANY UINT64_MAX /* put/delete without a revision check */
#define FL_SEQ_ANY UINT64_MAX /* append without a sequence check */

#define FL_PAGE_DEFAULT 1000  /* records in a page when the caller says 0 */
#define FL_PAGE_MAX     10000 /* the largest page a caller may ask for */
#define FL_CURSOR_MAX   600   /* bytes of a cursor (res->next), NUL included */

/* A page to read: at most limit records (0: FL_PAGE_DEFAULT; more than
 * FL_PAGE_MAX is FL_EINVAL), after a cursor (NULL or "": from the start;
 * otherwise the res->next of the previous page, opaque to the caller). A
 * NULL struct fl_page is the first page with the default limit. */
struct fl_page {
    size_t limit;
    const char *after;
};

/* One item of a result: a resource, an event, a message, a stream, a
 * lease. Strings are never NULL ("" when they do not apply). */
struct fl_record {
    const char *key;     /* resource name, stream name, message id, lease name (or "") */
    const char *type;    /* resource kind, event type, change ("put"/"delete") */
    const char *data;    /* resource JSON, event data, message data, lease owner (NUL-terminated) */
    size_t len;          /* bytes of data */
    const char *headers; /* messages: a JSON object of headers, or "{}"; changes: the kind */
    const char *reason;  /* dead letters: why the message was parked */
    uint64_t seq;        /* revision, event or message sequence, stream's last sequence */
    uint64_t gseq;       /* events: global sequence */
    int64_t ts_ms;       /* updated / appended / published / lease expiry (wall clock) */
    int64_t created_ms;  /* resources: created */
    uint32_t deliveries; /* messages: how many times delivered, this one included */
};

/* Where a consumer starts (fixed when it is created). */
enum fl_deliver_policy {
    FL_DELIVER_ALL,  /* from the first message the topic still keeps */
    FL_DELIVER_NEW,  /* only messages published after the consumer was created */
    FL_DELIVER_FROM, /* from start_seq (or the first kept, if that is later) */
};

#define FL_TOPIC_DEDUP_NONE (-1) /* fl_topic_limits.dup_window_ms: no de-duplication */

struct fl_topic_limits {
    uint64_t max_msgs;  /* 0: no limit; past it the oldest go */
    uint64_t max_bytes; /* 0: no limit */
    int64_t max_age_ms; /* 0: no limit */
    /* message ids are remembered this long for de-duplication; 0: the
     * default, 2 min; FL_TOPIC_DEDUP_NONE: not at all, for a topic whose
     * publisher makes every id unique itself (the async queues: each
     * message's id is a new invocation id), so that a publish stores no
     * de-duplication entry and never reports a duplicate. Ids are still
     * kept with their messages (fl_store_message_find and _ids find them).
     * sqlite: no row in its de-duplication table. jetstream: the id is not
     * sent as Nats-Msg-Id. */
    int64_t dup_window_ms;
    /* interest retention: a message is removed as soon as every consumer
     * of the topic is done with it (acked, termed or purged from its dead
     * letters, or created past it), besides the limits above; a topic with
     * no consumer keeps its messages under those limits alone. For work
     * queues (the async invocations), whose messages are no use once done.
     * sqlite: checked for the message at each ack, term and purge, and
     * over the whole topic when a consumer is created or deleted or the
     * limits are set. jetstream: a stream with InterestPolicy retention
     * (it creates its consumers before publishing, so the no-consumer case
     * does not arise); a dead letter's message is termed into the
     * backend's dead-letter stream, so the topic's depth stops counting it
     * when it is parked, not when it is purged (see
     * FL_STORE_CAP_REDRIVE_IN_PLACE). */
    bool interest;
};

struct fl_consumer_config {
    int64_t ack_wait_ms;      /* redelivered when not acked by then; default 30 s */
    uint32_t max_deliver;     /* after this many deliveries it is parked as dead; default 5 */
    uint32_t max_ack_pending; /* at most this many delivered and unacked; 0: no limit */
    enum fl_deliver_policy deliver;
    uint64_t start_seq; /* FL_DELIVER_FROM */
};

/* topic info and topic lists */
struct fl_topic_info {
    const char *name;
    struct fl_topic_limits limits;
    uint64_t first_seq; /* the oldest message kept (last_seq + 1 when none) */
    uint64_t last_seq;  /* the last sequence given (0: never published) */
    uint64_t messages;  /* depth: messages kept */
    uint64_t bytes;     /* bytes of data kept */
    uint32_t consumers;
};

/* consumer info and consumer lists */
struct fl_consumer_info {
    const char *topic;
    const char *name;
    struct fl_consumer_config config;
    uint64_t next_seq; /* the first message never delivered to it */
    uint64_t pending;  /* delivered, neither acked nor dead (JetStream's ack pending) */
    uint64_t lag;      /* messages kept that it has never been delivered (num_pending) */
    uint64_t dead;     /* parked as dead (maxDeliver reached, or FL_DEAD) */
};

struct fl_store_result {
    uint64_t seq;   /* put/delete: the new revision; append: first sequence; publish: its
                       sequence; list: the revision the page is as of; read: see fl_store_read */
    uint64_t gseq;  /* append: first global sequence */
    bool duplicate; /* publish: the message id was seen within the window (seq is the original) */
    const struct fl_record *records;
    const struct fl_topic_info *topics;       /* topic info and lists (n of them) */
    const struct fl_consumer_info *consumers; /* consumer info and lists (n of them) */
    size_t n;
    const char *next; /* paged lists: the cursor of the next page; NULL on the last */
};

typedef void (*fl_store_cb)(int err, const struct fl_store_result *res, void *data);

struct fl_store_options {
    size_t max_value_bytes;    /* a resource, an event's data, a message; default 1 MiB */
    uint64_t change_retention; /* changes kept for watches from old revisions; default 100000 */
};

void fl_store_options_init(struct fl_store_options *opts);

/*
 * Open the store uri names, creating it if need be:
 *
 *   sqlite:DIR   the embedded store, DIR/flint.db (see sqlite.h)
 *
 * An unknown scheme is FL_EINVAL with the known schemes in err. Backend
 * errors: another process holds the store (FL_ELOCKED), a foreign, corrupt
 * or newer file (FL_ECORRUPT), an unusable location or a thread that
 * cannot start (a negative errno code); nothing is left open then. err
 * says which, for the operator (the file, and what to do).
 */
int fl_store_open(uv_loop_t *loop, const char *uri, const struct fl_store_options *opts,
                  struct fl_store **out, char *err, size_t errsize);

/* Finish what is queued (callbacks still run), stop the store's threads
 * and connections and free it; done runs afterwards from the loop.
 * Watches get no further call. */
void fl_store_close(struct fl_store *s, void (*done)(void *data), void *data);

/* The backend's name and location, for status ("sqlite /data/flint.db"). */
const char *fl_store_describe(struct fl_store *s);

/* What this store guarantees beyond what every backend does. */
enum fl_store_cap {
    /* stream sequences run 1, 2, 3... without gaps; without it they only
     * increase (jetstream: the stream's message sequence, shared by every
     * event stream), so a caller takes the next expect from what append
     * and read return, never computes it */
    FL_STORE_CAP_GAPLESS = 1u << 0,
    /* an append of several events is all-or-nothing; without it (jetstream
     * before 2.12's atomic batches) an append of more than one event is
     * FL_EINVAL, and callers append one event at a time */
    FL_STORE_CAP_ATOMIC_APPEND = 1u << 1,
    /* a fenced append may also have an expected sequence; without it
     * (jetstream: one expected-sequence check per publish) expect must be
     * FL_SEQ_ANY when a fence is given */
    FL_STORE_CAP_FENCE_AND_EXPECT = 1u << 2,
    /* a dead letter stays at its sequence and redrive delivers it there;
     * without it (jetstream has no parked messages: the backend keeps dead
     * letters in a stream of its own) redrive republishes the message,
     * which gets a new sequence and keeps its id, headers and data */
    FL_STORE_CAP_REDRIVE_IN_PLACE = 1u << 3,
};

unsigned fl_store_caps(struct fl_store *s);

/* Stop a watch, a notification or a subscription: no call after this
 * returns. NULL is ignored. */
void fl_store_unwatch(struct fl_store_watch *w);

/* ---- resources ----
 * kind: 1..64 bytes, name: 1..256 bytes, value: JSON up to max_value_bytes.
 * Revisions are store-wide and increase with every put and delete
 * (sqlite: one counter, no gaps; jetstream: the KV stream's sequence). */

/* Put json as kind/name. expect: the current revision (0: must not exist;
 * FL_REV_ANY: no check). FL_ECONFLICT if it does not match. res->seq is
 * the new revision.
 * sqlite, jetstream: compare-and-set is atomic (KV update with the
 * expected revision; create for 0). */
int fl_store_put(struct fl_store *s, const char *kind, const char *name, const char *json,
                 size_t len, uint64_t expect, fl_store_cb cb, void *data);

/* One record, or FL_ENOENT. Reads see every write whose callback has run. */
int fl_store_get(struct fl_store *s, const char *kind, const char *name, fl_store_cb cb,
                 void *data);

/* Every resource of kind whose name starts with prefix ("" for all), by
 * name, in one consistent view; res->seq is the revision that view is as
 * of, so a watch from it misses nothing. For callers that hold every
 * resource of a kind anyway (followers); others page.
 * sqlite: one read transaction. jetstream: a KV watch's initial values. */
int fl_store_list(struct fl_store *s, const char *kind, const char *prefix, fl_store_cb cb,
                  void *data);

/* A page of fl_store_list, by name after page->after (the cursor is the
 * last name of the previous page). Each page is consistent on its own;
 * res->seq is the revision that page is as of: watch from the first
 * page's res->seq to hear of what changed while paging. */
int fl_store_list_page(struct fl_store *s, const char *kind, const char *prefix,
                       const struct fl_page *page, fl_store_cb cb, void *data);

/* Delete kind/name if its revision is expect (FL_REV_ANY: any). FL_ENOENT
 * or FL_ECONFLICT. res->seq is the revision of the deletion. */
int fl_store_delete(struct fl_store *s, const char *kind, const char *name, uint64_t expect,
                    fl_store_cb cb, void *data);

/*
 * Watch kind (NULL: every kind): first every change after revision from
 * (records of type "put" or "delete", the kind in headers; a put carries
 * the value), then each new change once durable, in revision order, one
 * record per call. If changes after from were already compacted away, cb
 * gets FL_ERANGE once and the watch continues with new changes only
 * (re-list to resync). The watch lives until fl_store_unwatch().
 * sqlite: the change log, kept for change_retention revisions.
 * jetstream: a KV watch from a revision (history as the bucket keeps it).
 */
int fl_store_watch(struct fl_store *s, const char *kind, uint64_t from, fl_store_cb cb, void *data,
                   struct fl_store_watch **out);

/* ---- event streams ----
 * stream: 1..512 bytes; an event's type 1..128 bytes, its data JSON up to
 * max_value_bytes; at most 10000 events in one append. */

struct fl_event_in {
    const char *type;
    const char *data; /* JSON */
    size_t len;
};

/* Append n events to stream. expect: the sequence of the stream's last
 * event, as append or read returned it (0: the stream must be empty;
 * FL_SEQ_ANY: no check); FL_ECONFLICT otherwise. res->seq/gseq: the first
 * event's sequences.
 * sqlite: n events all or none, sequences last+1..last+n.
 * jetstream: expect is Nats-Expected-Last-Subject-Sequence; n > 1 needs
 * FL_STORE_CAP_ATOMIC_APPEND (2.12 atomic batches), else FL_EINVAL. */
int fl_store_append(struct fl_store *s, const char *stream, const struct fl_event_in *events,
                    size_t n, uint64_t expect, fl_store_cb cb, void *data);

/* As fl_store_append, fenced by a lease: the append happens only if lease
 * is held at revision (the value acquire or renew returned) and has not
 * expired, checked atomically with the append; FL_ECONFLICT if not (or if
 * expect does not match: read the lease to tell which).
 * sqlite: both checks in the append's transaction.
 * jetstream (2.11+): the lease is a subject of the event stream, checked
 * with Nats-Expected-Last-Subject-Sequence-Subject; expect must be
 * FL_SEQ_ANY unless the store has FL_STORE_CAP_FENCE_AND_EXPECT. */
int fl_store_append_fenced(struct fl_store *s, const char *stream, const struct fl_event_in *events,
                           size_t n, uint64_t expect, const char *lease, uint64_t revision,
                           fl_store_cb cb, void *data);

/* Events of stream with sequence >= from, in order, at most max (0:
 * FL_PAGE_DEFAULT; more than FL_PAGE_MAX is FL_EINVAL). res->seq is where
 * to read on from (the last sequence returned + 1) when the page was
 * full, 0 when the read reached the end of the stream. A stream that does
 * not exist reads as empty. */
int fl_store_read(struct fl_store *s, const char *stream, uint64_t from, size_t max, fl_store_cb cb,
                  void *data);

/* Streams whose name starts with prefix: records with key = name and
 * seq = its last sequence, by name, a page at a time (the cursor is the
 * last name). */
int fl_store_streams(struct fl_store *s, const char *prefix, const struct fl_page *page,
                     fl_store_cb cb, void *data);

/* Delete a stream and its events. FL_ENOENT if there is none. A stream
 * appended to afterwards starts again (sqlite: at sequence 1; jetstream:
 * at the next stream sequence). */
int fl_store_stream_delete(struct fl_store *s, const char *stream, fl_store_cb cb, void *data);

/*
 * Be told when streams get appends: the stream named name, or (prefix
 * true) every stream whose name starts with name. cb runs on the loop
 * after an append is durable, with records of key = stream and seq = the
 * stream's last sequence after the append; it carries no events (read
 * them from where you were). Every append that becomes durable after this
 * returns is told; several appends to a stream may be told in one record
 * (the latest sequence), and one made just before may be told too.
 * Lives until fl_store_unwatch().
 * sqlite: after the commit, in commit order.
 * jetstream: an ordered consumer on the subjects, deliver new, headers
 * only; a prefix that ends in '/' is a subject wildcard, any other is
 * filtered from the wider one.
 */
int fl_store_subscribe(struct fl_store *s, const char *name, bool prefix, fl_store_cb cb,
                       void *data, struct fl_store_watch **out);

/* ---- topics ----
 * topic and consumer names: 1..256 bytes; message ids up to 256 bytes. */

/* Create or update a topic (its limits). */
int fl_store_topic_create(struct fl_store *s, const char *topic,
                          const struct fl_topic_limits *limits, fl_store_cb cb, void *data);

/* Delete a topic, its messages and its consumers. FL_ENOENT if none. */
int fl_store_topic_delete(struct fl_store *s, const char *topic, fl_store_cb cb, void *data);

/* res->topics[0] (n = 1) for topic, or FL_ENOENT. */
int fl_store_topic_info(struct fl_store *s, const char *topic, fl_store_cb cb, void *data);

/* Topics whose name starts with prefix, by name, a page at a time (the
 * cursor is the last name): res->topics[0..n). */
int fl_store_topics(struct fl_store *s, const char *prefix, const struct fl_page *page,
                    fl_store_cb cb, void *data);

/* Publish data with headers (a JSON object, or NULL) and an optional
 * message id (NULL or ""). res->seq is its sequence; a duplicate id within
 * the window is not stored again: res->duplicate, res->seq the original
 * (never in a topic created with FL_TOPIC_DEDUP_NONE).
 * FL_ENOENT if the topic does not exist.
 * sqlite, jetstream: Nats-Msg-Id de-duplication within the window. */
int fl_store_publish(struct fl_store *s, const char *topic, const char *headers, const char *msg_id,
                     const void *payload, size_t len, fl_store_cb cb, void *data);

/* Messages of topic with sequence >= from_seq, in order, at most max (0:
 * FL_PAGE_DEFAULT; more than FL_PAGE_MAX is FL_EINVAL), read without
 * consuming them: no consumer's position, delivery or ack changes, and
 * interest retention does not count the reader. Records: key = the
 * message id ("" for none), headers, data and len, seq, ts_ms (when it was
 * published); deliveries is 0. A sequence the topic no longer keeps (past
 * its limits, or done with under interest retention) is skipped, and so
 * is a message past its max age that is not removed yet. res->seq is
 * where to read on from (the last sequence looked at + 1) when the page
 * was full, 0 when the read reached the topic's end: a reader that
 * follows goes on from its last record's seq + 1 (from_seq if it got
 * none). FL_ENOENT if the topic does not exist.
 * sqlite: one read transaction on the reader connection.
 * jetstream: direct gets (the stream's allow_direct; next message by
 * subject from from_seq), or an ordered consumer with DeliverByStartSequence:
 * both leave the topic's durable consumers alone. */
int fl_store_topic_read(struct fl_store *s, const char *topic, uint64_t from_seq, size_t max,
                        fl_store_cb cb, void *data);

/*
 * Messages by id, across the topics whose name starts with prefix: for a
 * caller that names its messages (an async invocation's id) and must find
 * one without knowing its topic. Only messages the topics keep are found
 * (past their limits, done with under interest retention, or past their
 * max age: not). Records are as fl_store_topic_read gives them, with type
 * = the message's topic.
 * sqlite: an index on the message ids (schema 6), so a find is one lookup
 * and a list reads only the ids it returns (and those of other topics
 * under prefix in between); from schema 7, in a topic created with
 * FL_TOPIC_DEDUP_NONE the ids published in increasing order (an async
 * queue's UUIDv7s) are not in that index, and a find or list searches
 * each such topic under prefix by halves over its sequences (a few
 * seeks per topic). jetstream: JetStream has no index by message
 * id; a topic that is found by id is published with the id as the last
 * token of its subject ("<topic>.<id>"), a find is a direct get of the
 * last message on that subject in each stream under prefix, and a list
 * reads the streams' subjects (stream info with a subjects filter) and
 * orders them by id.
 */

/* The message with id msg_id (1..256 bytes) in a topic under prefix:
 * records[0] (n = 1), or FL_ENOENT. Should several topics keep one of that
 * id, the first by topic name, then sequence. */
int fl_store_message_find(struct fl_store *s, const char *prefix, const char *msg_id,
                          fl_store_cb cb, void *data);

/* The messages that have an id in the topics under prefix, by id (then
 * topic and sequence), a page at a time; the cursor is the last id, so a
 * caller may start after an id of its own. A page never splits the
 * messages of one id: it holds them all, beyond page->limit if need be.
 * Records carry no data (data "", len the data's size): a page of ids and
 * headers, whatever the bodies weigh. */
int fl_store_message_ids(struct fl_store *s, const char *prefix, const struct fl_page *page,
                         fl_store_cb cb, void *data);

/*
 * Be told of publishes to topic (which need not exist yet): cb runs on the
 * loop once a new message is durable, with one record of key = topic and
 * seq = the topic's last sequence after it; it carries no message (read
 * it with fl_store_topic_read from where you were). Every publish that
 * becomes durable after this returns is told; several may be told in one
 * record (the latest sequence); a duplicate (de-duplicated by id) is not a
 * new message and is not told. For readers that follow a topic without
 * being one of its consumers. Lives until fl_store_unwatch().
 * sqlite: after the commit, in commit order.
 * jetstream: an ordered consumer on the topic's subject, deliver new,
 * headers only.
 */
int fl_store_topic_watch(struct fl_store *s, const char *topic, fl_store_cb cb, void *data,
                         struct fl_store_watch **out);

/* Create (or update) a durable consumer. cfg NULL: the defaults. On
 * update, ack_wait, max_deliver and max_ack_pending change; the deliver
 * policy is fixed at creation (a different one is FL_ECONFLICT, as
 * JetStream refuses it). FL_ENOENT if the topic does not exist. */
int fl_store_consumer_create(struct fl_store *s, const char *topic, const char *consumer,
                             const struct fl_consumer_config *cfg, fl_store_cb cb, void *data);

/* Delete a consumer and its deliveries. FL_ENOENT if none. */
int fl_store_consumer_delete(struct fl_store *s, const char *topic, const char *consumer,
                             fl_store_cb cb, void *data);

/* res->consumers[0] (n = 1), or FL_ENOENT. */
int fl_store_consumer_info(struct fl_store *s, const char *topic, const char *consumer,
                           fl_store_cb cb, void *data);

/* The consumers of topic, by name, a page at a time (cursor: the last
 * name): res->consumers[0..n). FL_ENOENT if the topic does not exist. */
int fl_store_consumers(struct fl_store *s, const char *topic, const struct fl_page *page,
                       fl_store_cb cb, void *data);

/* Deliver up to max (1..256) messages due to consumer: redeliveries whose
 * time has come first, then new ones, never more than max_ack_pending
 * delivered and unacked at once (redeliveries are among them). Each
 * delivery is durable before cb gets it, with its delivery count.
 * sqlite: exactly that. jetstream: a pull of max with the consumer's
 * MaxAckPending and AckWait; the delivery count is the message's
 * num_delivered. */
int fl_store_fetch(struct fl_store *s, const char *topic, const char *consumer, size_t max,
                   fl_store_cb cb, void *data);

enum fl_ack_kind {
    FL_ACK,         /* done: never delivered again */
    FL_NAK,         /* failed: deliver again after delay_ms */
    FL_TERM,        /* give up on it: never delivered again, not dead-lettered */
    FL_IN_PROGRESS, /* still working: restart its ackWait */
    FL_DEAD,        /* give up on it as a dead letter now, with reason, as if
                     * maxDeliver had been reached: for a caller whose own
                     * policy says how many attempts a message gets */
};

/* Acknowledge delivery seq. reason (NULL or up to 1024 bytes) says why a
 * FL_NAK, FL_TERM or FL_DEAD failed; a message parked as dead after
 * maxDeliver keeps the reason of its last nak, one given up with FL_DEAD
 * the reason given ("given up" if none). FL_DEAD frees its place under
 * max_ack_pending as an ack does. With interest retention, FL_ACK and
 * FL_TERM remove the message once no consumer needs it. FL_ENOENT if seq
 * is not pending (a dead letter is not).
 * sqlite: the reason is stored with the delivery. jetstream: +TERM
 * carries it; a nak's is kept by the backend with its dead letter; FL_DEAD
 * writes the message and the reason to the backend's dead-letter stream,
 * then sends +TERM. */
int fl_store_ack(struct fl_store *s, const char *topic, const char *consumer, uint64_t seq,
                 enum fl_ack_kind kind, int64_t delay_ms, const char *reason, fl_store_cb cb,
                 void *data);

/* Messages parked as dead for consumer (maxDeliver reached, or FL_DEAD),
 * by sequence, a page at a time; each record's reason says why.
 * sqlite: parked in place. jetstream: the backend's dead-letter stream,
 * written when a delivery reaches maxDeliver or is acked FL_DEAD. */
int fl_store_dead(struct fl_store *s, const char *topic, const char *consumer,
                  const struct fl_page *page, fl_store_cb cb, void *data);

/* Make dead message seq (0: all of them) deliverable again, counts reset
 * (see FL_STORE_CAP_REDRIVE_IN_PLACE). FL_ENOENT if seq is not dead. */
int fl_store_redrive(struct fl_store *s, const char *topic, const char *consumer, uint64_t seq,
                     fl_store_cb cb, void *data);

/* Remove dead message seq (0: all of them) from consumer's dead letters:
 * it is never delivered again (and, with interest retention, removed from
 * the topic once no consumer needs it). res->n: how many were removed
 * (res->records is NULL).
 * FL_ENOENT if seq is not dead.
 * sqlite: the delivery row goes. jetstream: the message is deleted from
 * the backend's dead-letter stream. */
int fl_store_purge(struct fl_store *s, const char *topic, const char *consumer, uint64_t seq,
                   fl_store_cb cb, void *data);

/*
 * Ask to be told when consumer may have messages to fetch: after a publish
 * to its topic, when a redelivery comes due, and when acks make room under
 * its max_ack_pending. cb runs with err 0 and no records; it runs again
 * for every such moment until fl_store_unwatch(*out). It also runs once
 * soon after the call if messages are already waiting. A call is a hint:
 * a fetch may find nothing.
 */
int fl_store_notify(struct fl_store *s, const char *topic, const char *consumer, fl_store_cb cb,
                    void *data, struct fl_store_watch **out);

/* ---- leases ----
 * A lease gives work to one owner at a time (a workflow invocation, a
 * cron fire across nodes). name: 1..256 bytes; owner: 1..256 bytes; ttl
 * 1 ms..1 day. A lease's revision changes at every acquire and renew and
 * is never given twice for the same name; it is what fences appends.
 * sqlite: expiry by the store's wall clock, revisions from one counter.
 * jetstream (2.11+): a subject of the event stream with a per-message TTL;
 * the revision is the lease message's sequence; expiry by the server. */

/* Take lease name for owner for ttl_ms, if nobody holds it or its holder's
 * time has run out. res->records[0]: key = name, data = owner, seq = the
 * revision, ts_ms = the expiry. FL_ECONFLICT if someone holds it: then
 * res->records[0] describes the holder (n = 1). */
int fl_store_lease_acquire(struct fl_store *s, const char *name, const char *owner, int64_t ttl_ms,
                           fl_store_cb cb, void *data);

/* Extend the lease held at revision by ttl_ms from now; the new revision
 * is in res->records[0].seq. FL_ECONFLICT if it is no longer held at
 * revision (taken by another after it expired, or released). */
int fl_store_lease_renew(struct fl_store *s, const char *name, uint64_t revision, int64_t ttl_ms,
                         fl_store_cb cb, void *data);

/* Give up the lease held at revision. FL_ECONFLICT if it is not held at
 * revision; FL_ENOENT if nobody holds it. */
int fl_store_lease_release(struct fl_store *s, const char *name, uint64_t revision, fl_store_cb cb,
                           void *data);

/* The lease's holder (records[0] as for acquire, expired or not), or
 * FL_ENOENT. */
int fl_store_lease_get(struct fl_store *s, const char *name, fl_store_cb cb, void *data);

#endif
