/*
 * What the async module's files share (async.h says what it does): the
 * module, a function's queue, an attempt under way, and the store
 * operations they chain.
 */
#ifndef FLINT_ASYNC_INTERNAL_H
#define FLINT_ASYNC_INTERNAL_H

#include "async/async.h"
#include "async/history.h"
#include "base/queue.h"
#include "http/client.h"

#define ASYNC_TOPIC_PREFIX "async/"
#define ASYNC_CONSUMER     "run"
#define CALLBACK_TOPIC     "async-callbacks"
#define CALLBACK_CONSUMER  "send"
#define CALLBACK_ATTEMPTS  5
#define ASYNC_ACK_WAIT_MS  30000 /* an attempt lost with flintd comes back after this */
#define ASYNC_PROGRESS_MS  10000 /* in-progress is signalled this often for longer calls */
#define ASYNC_TICK_MS      1000
#define ASYNC_RESULT_MAX   (64 * 1024) /* bytes of a result's body kept */
#define ASYNC_TOPIC_MAX    (sizeof(ASYNC_TOPIC_PREFIX) + FL_NAME_MAX)
#define IDEM_KEY_MAX       256
#define ASYNC_HEADERS_MAX  (1 << 20) /* bytes of a message's headers: the request */

/* A function's queue: the topic "async/<function>" and its consumer. */
struct aq {
    struct fl_queue link; /* fl_async.queues */
    struct fl_async *a;
    char fn[FL_NAME_MAX + 1];
    char topic[ASYNC_TOPIC_MAX];
    enum { AQ_NEW, AQ_CREATING, AQ_READY, AQ_FAILED } state;
    struct fl_queue waiting; /* submissions waiting for the topic (struct sub) */
    struct fl_store_watch *notify;
    struct fl_invoke_room *room;
    unsigned inflight; /* attempts fetched and not acknowledged */
    bool fetching;
};

struct fl_async {
    uv_loop_t *loop;
    struct fl_store *store;
    struct fl_invoker *invoker;
    struct fl_metrics *metrics;
    int64_t retention_ms;
    size_t max_body;
    int (*policy_of)(void *data, const char *function, struct fl_retry_policy *out);
    void *policy_data;
    bool (*ready)(void *data);
    void *ready_data;
    struct fl_queue queues;   /* struct aq */
    struct fl_queue attempts; /* struct attempt, under way */
    uv_timer_t tick;
    int64_t next_sweep_ms;
    bool sweeping;
    char sweep_after[FL_CURSOR_MAX];
    /* callbacks */
    struct fl_http_client *http;
    struct fl_store_watch *cb_notify;
    bool cb_ready, cb_fetching;
    unsigned cb_inflight;
    unsigned ops; /* store operations and handles whose callbacks are still to come */
    bool closing;
    void (*done)(void *data);
    void *done_data;
    uint64_t rng;
};

/* ops.c: what the other files stand on. */

/* Count an operation in flight; its end calls async_op_done(). */
void async_op(struct fl_async *a);
void async_op_done(struct fl_async *a);

/* A closing module with nothing left in flight: free it and call done. */
void async_maybe_done(struct fl_async *a);

/* The queue of function fn, created (and its topic ensured) if need be;
 * NULL when out of memory. */
struct aq *async_queue(struct fl_async *a, const char *fn);
void async_pump(struct aq *q);

/* The attempt under way for id, or NULL. */
struct attempt;
struct attempt *async_running(struct fl_async *a, const char *id);
uint32_t async_attempt_number(const struct attempt *at);
void async_attempt_cancel(struct attempt *at);

/* A body as JSON: a string of it if it is UTF-8 text (*encoding "text"),
 * else its base64 form ("base64"). A new value, or NULL. */
json_t *async_body_json(const void *body, size_t len, const char **encoding);

/* Append one event to inv/<id>; cb may be NULL (logged on failure). */
int async_append(struct fl_async *a, const char *id, const char *type, json_t *data,
                 uint64_t expect, fl_store_cb cb, void *cbdata);
/* The same with the event's data as JSON text already. */
int async_append_text(struct fl_async *a, const char *id, const char *type, const char *text,
                      uint64_t expect, fl_store_cb cb, void *cbdata);

/* Begin the history of id with queued (fl_inv_queued_event) and the event
 * type with data after it, in one append with expect 0 (on a store
 * without atomic appends, one after the other). If the history was begun
 * meanwhile (FL_ECONFLICT): with or_after, the event goes after what is
 * there; without, cb gets FL_ECONFLICT. cb may be NULL (logged on
 * failure). */
int async_append_first(struct fl_async *a, const char *id, json_t *queued, const char *type,
                       json_t *data, bool or_after, fl_store_cb cb, void *cbdata);

/* Read and fold inv/<id>: cb gets 0 and the folded invocation (valid
 * during the call), or an error and NULL. last_seq is the history's last
 * sequence. */
typedef void (*async_fold_cb)(int err, struct fl_inv *inv, uint64_t last_seq, void *data);
int async_read(struct fl_async *a, const char *id, async_fold_cb cb, void *data);

/* As async_read, and for an invocation whose history has not begun, its
 * message (fl_inv_fold_message; last_seq 0, inv->queued the event to
 * begin it with). FL_ENOENT only once neither is there. */
int async_read_any(struct fl_async *a, const char *id, async_fold_cb cb, void *data);

/* The function of an async queue's topic ("async/<function>"), or NULL. */
const char *async_topic_function(const char *topic);

/* The callbacks' half (callback.c). */
/* Whether url (len bytes) is a callback URL flintd can POST to: 0 or
 * FL_EINVAL. */
int async_callback_check(const char *url, size_t len);
int async_callbacks_start(struct fl_async *a);
void async_callbacks_pump(struct fl_async *a);
/* Queue the callback of an ended invocation (de-duplicated by its id):
 * cb(err) once durable. */
int async_callback_queue(struct fl_async *a, const char *id, const char *url, json_t *payload,
                         fl_store_cb cb, void *data);

#endif
