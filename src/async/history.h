/*
 * An async invocation's history: the events of its stream "inv/<id>" and
 * what they fold into (its status, attempts, result), for the engine
 * (async.c: may it run? which attempt is this?) and for the API (the JSON
 * of docs/api.md). Pure, no loop and no store, but for the stream's name
 * and the append every writer of a history uses (fl_inv_append).
 *
 * Where a history begins. An async invocation is accepted with one write,
 * its message in topic "async/<function>" (async.h); its stream is begun
 * by the first thing that records a step of it: the worker that takes the
 * message (with its first attempt's event, or the attempt that found its
 * attempts used up) or a cancel. Each begins it with the queued event made
 * from the message (fl_inv_queued_event), appended with expect 0, so that
 * it is written once whoever comes first. Until then the invocation is its
 * message alone, and reads fold that (fl_inv_fold_message) as if it were
 * the history. Invocations accepted before schema 6 of the store began
 * their history at accept; an MQ trigger's begin it at their first record.
 *
 * Events (type: data):
 *
 *   queued    {"function", "trigger", "method", "path", "query", "headers",
 *              "retry": {"maxAttempts", "backoff", "maxBackoff"} (ms),
 *              "callback", "idem", "topic", "consumer", "acceptedAt"}:
 *              accepted; topic and consumer name where its message is
 *              (default: "async/<function>" and "run"; an MQ trigger's
 *              invocations are its topic's); acceptedAt (ms) when its
 *              message was published, if the event was written later
 *              (default: the event's own time)
 *   attempt   {"attempt", "seq", "startedAt", "durationMs", "status", "error",
 *              "lost": [numbers], "end", "nextAt", "result"}: one attempt's
 *              outcome; "end" (succeeded, failed, dead, canceled) when it
 *              ended the invocation, "nextAt" when another is due; "lost"
 *              names earlier attempts that left no outcome (flintd stopped)
 *   canceled  {}: an operator canceled it
 *   redriven  {"attempts"}: a dead letter queued again; attempt numbers go on
 *              from "attempts"
 *   undriven  {"error"}: the redrive that was recorded could not be made;
 *              dead again
 *   purged    {}: its dead letter was removed
 *   callback  {"status", "attempts", "httpStatus", "error"}: the callback's
 *              delivery (delivered, retrying, failed)
 *
 * The first event that ends an invocation decides its status; only a
 * redrive opens it again.
 */
#ifndef FLINT_ASYNC_HISTORY_H
#define FLINT_ASYNC_HISTORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/id.h"
#include "exec/spec.h"
#include "http/server.h" /* struct fl_http_header */
#include "store/store.h"

enum fl_inv_status {
    FL_INV_QUEUED,
    FL_INV_RUNNING, /* only the engine knows: never folded from events */
    FL_INV_RETRYING,
    FL_INV_SUCCEEDED,
    FL_INV_FAILED,
    FL_INV_DEAD,
    FL_INV_CANCELED,
    FL_INV_NSTATUS
};

/* ---- the stream (ops.c: these two touch the store) ----
 * For every writer of an invocation's history: the async module and the
 * message-queue triggers (src/mq), which record their deliveries as
 * async invocations. */

#define FL_INV_STREAM_MAX (4 + FL_UUID_STRLEN + 1) /* "inv/<id>", NUL included */

/* "inv/<id>": the stream of invocation id (FL_UUID_STRLEN bytes). */
void fl_inv_stream_name(char out[FL_INV_STREAM_MAX], const char *id);

/* Append one event of type to the history of id: data (borrowed) dumped
 * compact, or text as it is, with fl_store_append()'s expect and cb. 0,
 * FL_ENOMEM (data NULL, or no memory to dump it), or the store's error;
 * cb runs only after 0. */
int fl_inv_append(struct fl_store *s, const char *id, const char *type, json_t *data,
                  uint64_t expect, fl_store_cb cb, void *cbdata);
int fl_inv_append_text(struct fl_store *s, const char *id, const char *type, const char *text,
                       uint64_t expect, fl_store_cb cb, void *cbdata);

/* ---- the fold ---- */

/* "queued", ... */
const char *fl_inv_status_name(enum fl_inv_status s);

/* The status of that name, or -1. */
int fl_inv_status_parse(const char *name);

#define FL_INV_TOPIC_MAX 257 /* a topic's or consumer's name, NUL included */

struct fl_inv {
    char id[FL_UUID_STRLEN + 1];
    char function[FL_NAME_MAX + 1]; /* "" if the queued event was never written */
    enum fl_inv_status status;
    bool ended;        /* succeeded, failed, dead or canceled */
    bool cancel_asked; /* a canceled event, whatever came after */
    bool purged;
    uint32_t attempts;               /* the highest attempt number recorded */
    uint32_t base;                   /* attempt numbers before the last redrive */
    uint64_t seq;                    /* the message's sequence in its topic (0: unknown) */
    char topic[FL_INV_TOPIC_MAX];    /* where the message is: "async/<function>" ... */
    char consumer[FL_INV_TOPIC_MAX]; /* ... and the consumer it is delivered to: "run" */
    int64_t created_ms;
    int64_t updated_ms;
    int64_t ended_ms; /* when it ended (0: it has not) */
    struct fl_retry_policy retry;
    bool has_retry;
    char *callback; /* owned; NULL: none */
    char *idem;     /* owned: the idempotency key's stream, or NULL */
    json_t *json;   /* owned: the API's form, without running overlays */
    /* owned: folded from a message not taken yet (fl_inv_fold_message),
     * the queued event that is to begin its history; else NULL */
    json_t *queued;
};

/* Fold n events (records of a read of "inv/<id>") into out. 0, FL_ENOENT
 * (no events: no such invocation), FL_ECORRUPT (an event that is not what
 * this file says; the rest are still folded), or FL_ENOMEM. */
int fl_inv_fold(const char *id, const struct fl_record *events, size_t n, struct fl_inv *out);
void fl_inv_release(struct fl_inv *inv);

/*
 * The message of an async invocation, in topic "async/<function>": its
 * headers are a JSON object of the request, its data the body.
 *
 *   {"method", "path", "query", "headers": [[name, value], ...,
 *    [name, base64 of a value that is not UTF-8, true]], "added": (the
 *    same form: headers flintd adds on every attempt), "trigger" (enum
 *    fl_invoke_trigger), "triggerName", "retry": {"maxAttempts",
 *    "backoff", "maxBackoff"} (ms), "callback", "idem" (the idempotency
 *    key's stream)}
 *
 * "query", "added", "callback" and "idem" are left out when there is
 * none (readers take an absent one as null or empty; messages accepted
 * before wrote null and [], and read the same). The request's hop-by-hop
 * headers (Content-Length, Connection...: its own framing, never passed
 * to an attempt) are not kept.
 */

/* What an accept puts in its message's headers (the form above). */
struct fl_inv_message {
    const char *method;
    const char *path;
    const char *query; /* NULL: none */
    const struct fl_http_header *headers;
    size_t nheaders;
    const struct fl_http_header *added;
    size_t nadded;
    int trigger;              /* enum fl_invoke_trigger */
    const char *trigger_name; /* "api", "route/NAME"... */
    struct fl_retry_policy retry;
    const char *callback; /* NULL: none */
    const char *idem;     /* NULL: none */
};

/* Append m to out as the message's headers: JSON text, written straight
 * into the buffer (an accept makes one per request, and building jansson
 * values to dump them cost more than the rest of the accept's own work),
 * byte for byte what json_dumps(JSON_COMPACT) gives for the same object
 * (the fields above, in that order, absent ones left out).
 * A header value that is not UTF-8 goes in as base64 (the [name, base64,
 * true] form). 0; FL_EINVAL if the method, path, query, a header's name,
 * the trigger's name, the callback or idem is not UTF-8 text (nothing
 * then says what it was: the request is refused); FL_ETOOBIG past out's
 * maximum; FL_ENOMEM. On an error out holds what it held before. */
int fl_inv_message_write(struct fl_buf *out, const struct fl_inv_message *m);

/* The queued event that begins the history of the invocation whose
 * message is msg (its headers, parsed) in function's queue, published at
 * accepted_ms. A new value, or NULL if msg is not an async request (no
 * method or path) or out of memory. */
json_t *fl_inv_queued_event(const char *function, json_t *msg, int64_t accepted_ms);

/* Fold the invocation id whose history has not begun, from its message
 * (msg as above, at sequence seq of its topic, published at accepted_ms):
 * as fl_inv_fold of its queued event alone (status queued), with
 * out->queued the event. 0, FL_ECORRUPT (msg is not an async request:
 * nothing to fold) or FL_ENOMEM. */
int fl_inv_fold_message(const char *id, const char *function, json_t *msg, uint64_t seq,
                        int64_t accepted_ms, struct fl_inv *out);

/* Headers as an invocation shows them: {lower-case name: value}, names
 * cut at 255 bytes. A value that is not UTF-8 text is not_text instead, or
 * left out when not_text is NULL. A new value, or NULL. */
json_t *fl_inv_headers_json(const struct fl_http_header *h, size_t n, const char *not_text);

/* The API's form for a list (no attempts, result or request). A new
 * value. */
json_t *fl_inv_summary(const struct fl_inv *inv);

#endif
