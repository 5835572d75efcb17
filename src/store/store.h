/*
 * The store: all of Flint's durable state, behind one interface with
 * pluggable backends (embedded SQLite now; NATS JetStream later).
 *
 * Three kinds of state, each shaped so that JetStream maps onto it:
 *
 *   Resources      JSON values under kind/name with a store-wide revision
 *                  (a KV bucket with revisions). Writes compare-and-set on
 *                  the revision; a watch replays changes since a revision,
 *                  then follows new ones.
 *   Event streams  named, append-only lists of (type, JSON) events with a
 *                  per-stream sequence and a global one (one stream, a
 *                  subject per event stream). An append may require the
 *                  stream's last sequence to be as expected.
 *   Topics         bounded message logs with de-duplication by message id,
 *                  and durable consumers with explicit ack, nak with delay,
 *                  term, in-progress, redelivery after ackWait and parking
 *                  as dead after maxDeliver (streams and durable pull
 *                  consumers).
 *
 * Every operation is asynchronous: it returns 0 and later calls its
 * callback on the loop the store was opened with, or returns an error and
 * never calls it. A write's callback runs only once the change is durable.
 * What the callback receives is valid only during the call.
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

/* One item of a result: a resource, an event, a message or a stream. */
struct fl_record {
    const char *key;     /* resource name, stream name, message id (or "") */
    const char *type;    /* resource kind, event type, change ("put"/"delete") */
    const char *data;    /* resource JSON, event data, message data (NUL-terminated) */
    size_t len;          /* bytes of data */
    const char *headers; /* messages: a JSON object of headers, or "{}" */
    uint64_t seq;        /* revision, event or message sequence, stream's last sequence */
    uint64_t gseq;       /* events: global sequence */
    int64_t ts_ms;       /* updated / appended / published (wall clock) */
    int64_t created_ms;  /* resources: created */
    uint32_t deliveries; /* messages: how many times delivered, this one included */
};

struct fl_store_result {
    uint64_t seq;  /* put/delete: the new revision; append: first sequence; publish: its sequence */
    uint64_t gseq; /* append: first global sequence */
    bool duplicate; /* publish: the message id was seen within the window (seq is the original) */
    const struct fl_record *records;
    size_t n;
};

typedef void (*fl_store_cb)(int err, const struct fl_store_result *res, void *data);

struct fl_store_options {
    size_t max_value_bytes;    /* a resource, an event's data, a message; default 1 MiB */
    uint64_t change_retention; /* changes kept for watches from old revisions; default 100000 */
};

void fl_store_options_init(struct fl_store_options *opts);

/*
 * Open the SQLite store in dir (DIR/flint.db), creating it if need be.
 * Takes an exclusive lock on the directory: a second process gets
 * FL_ELOCKED. A foreign or corrupt file is FL_ECORRUPT; an unwritable
 * directory, or a worker thread that cannot start, a negative errno code
 * (nothing is left open then: the lock is released). err says which, for
 * the operator.
 */
int fl_store_open_sqlite(uv_loop_t *loop, const char *dir, const struct fl_store_options *opts,
                         struct fl_store **out, char *err, size_t errsize);

/* Finish what is queued (callbacks still run), stop the store's threads
 * and free it; done runs afterwards from the loop. */
void fl_store_close(struct fl_store *s, void (*done)(void *data), void *data);

/* The backend's name and location, for status ("sqlite /data/flint.db"). */
const char *fl_store_describe(struct fl_store *s);

/* ---- resources ---- */

/* Put json as kind/name. expect: the current revision (0: must not exist;
 * FL_REV_ANY: no check). FL_ECONFLICT if it does not match. res->seq is
 * the new revision. */
int fl_store_put(struct fl_store *s, const char *kind, const char *name, const char *json,
                 size_t len, uint64_t expect, fl_store_cb cb, void *data);

/* One record, or FL_ENOENT. */
int fl_store_get(struct fl_store *s, const char *kind, const char *name, fl_store_cb cb,
                 void *data);

/* Every resource of kind whose name starts with prefix ("" for all), by name. */
int fl_store_list(struct fl_store *s, const char *kind, const char *prefix, fl_store_cb cb,
                  void *data);

/* Delete kind/name if its revision is expect (FL_REV_ANY: any). FL_ENOENT
 * or FL_ECONFLICT. res->seq is the revision of the deletion. */
int fl_store_delete(struct fl_store *s, const char *kind, const char *name, uint64_t expect,
                    fl_store_cb cb, void *data);

/*
 * Watch kind (NULL: every kind): first every change after revision from
 * (records of type "put" or "delete"; a put carries the value), then each
 * new change once durable, in revision order. If changes after from were
 * already compacted away, cb gets FL_ERANGE once and the watch continues
 * with new changes only (re-list to resync). The watch lives until
 * fl_store_unwatch().
 */
int fl_store_watch(struct fl_store *s, const char *kind, uint64_t from, fl_store_cb cb, void *data,
                   struct fl_store_watch **out);
void fl_store_unwatch(struct fl_store_watch *w);

/* ---- event streams ---- */

struct fl_event_in {
    const char *type;
    const char *data; /* JSON */
    size_t len;
};

/* Append n events to stream, all or none. expect: the stream's last
 * sequence (0: the stream must be empty; FL_SEQ_ANY: no check);
 * FL_ECONFLICT otherwise. res->seq/gseq: the first event's sequences. */
int fl_store_append(struct fl_store *s, const char *stream, const struct fl_event_in *events,
                    size_t n, uint64_t expect, fl_store_cb cb, void *data);

/* Up to max events of stream from sequence from on (max 0: no limit). */
int fl_store_read(struct fl_store *s, const char *stream, uint64_t from, size_t max, fl_store_cb cb,
                  void *data);

/* Streams whose name starts with prefix: records with key = name and
 * seq = last sequence, by name. */
int fl_store_streams(struct fl_store *s, const char *prefix, fl_store_cb cb, void *data);

/* Delete a stream and its events. FL_ENOENT if there is none. */
int fl_store_stream_delete(struct fl_store *s, const char *stream, fl_store_cb cb, void *data);

/* ---- topics ---- */

struct fl_topic_limits {
    uint64_t max_msgs;     /* 0: no limit; past it the oldest go */
    uint64_t max_bytes;    /* 0: no limit */
    int64_t max_age_ms;    /* 0: no limit */
    int64_t dup_window_ms; /* message ids are remembered this long; default 2 min */
};

struct fl_consumer_config {
    int64_t ack_wait_ms;  /* redelivered when not acked by then; default 30 s */
    uint32_t max_deliver; /* after this many deliveries it is parked as dead; default 5 */
};

/* Create or update a topic (its limits). */
int fl_store_topic_create(struct fl_store *s, const char *topic,
                          const struct fl_topic_limits *limits, fl_store_cb cb, void *data);

/* One record for the topic: seq = first sequence kept, gseq = last,
 * len = bytes kept, deliveries = messages kept. FL_ENOENT if none. */
int fl_store_topic_info(struct fl_store *s, const char *topic, fl_store_cb cb, void *data);

/* Publish data with headers (a JSON object, or NULL) and an optional
 * message id (NULL or ""). res->seq is its sequence; a duplicate id within
 * the window is not stored again: res->duplicate, res->seq the original. */
int fl_store_publish(struct fl_store *s, const char *topic, const char *headers, const char *msg_id,
                     const void *payload, size_t len, fl_store_cb cb, void *data);

/* Create (or update the config of) a durable consumer; it starts with the
 * first message still kept. FL_ENOENT if the topic does not exist. */
int fl_store_consumer_create(struct fl_store *s, const char *topic, const char *consumer,
                             const struct fl_consumer_config *cfg, fl_store_cb cb, void *data);

/* Deliver up to max messages due to consumer: redeliveries whose time has
 * come first, then new ones. Each delivery is durable before cb gets it,
 * with its delivery count. */
int fl_store_fetch(struct fl_store *s, const char *topic, const char *consumer, size_t max,
                   fl_store_cb cb, void *data);

enum fl_ack_kind {
    FL_ACK,         /* done: never delivered again */
    FL_NAK,         /* failed: deliver again after delay_ms */
    FL_TERM,        /* give up on it: never delivered again, not dead-lettered */
    FL_IN_PROGRESS, /* still working: restart its ackWait */
};

/* Acknowledge delivery seq. FL_ENOENT if it is not pending. */
int fl_store_ack(struct fl_store *s, const char *topic, const char *consumer, uint64_t seq,
                 enum fl_ack_kind kind, int64_t delay_ms, fl_store_cb cb, void *data);

/* Messages parked as dead for consumer (maxDeliver reached), by sequence. */
int fl_store_dead(struct fl_store *s, const char *topic, const char *consumer, fl_store_cb cb,
                  void *data);

/* Make dead message seq (0: all of them) deliverable again, counts reset. */
int fl_store_redrive(struct fl_store *s, const char *topic, const char *consumer, uint64_t seq,
                     fl_store_cb cb, void *data);

/*
 * Ask to be told when consumer may have messages to fetch: after a publish
 * to its topic, and when a redelivery comes due. cb runs with err 0 and no
 * records; it runs again for every such moment until
 * fl_store_unwatch(*out). It also runs once soon after the call if
 * messages are already waiting.
 */
int fl_store_notify(struct fl_store *s, const char *topic, const char *consumer, fl_store_cb cb,
                    void *data, struct fl_store_watch **out);

#endif
