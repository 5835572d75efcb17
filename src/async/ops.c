/*
 * What every part of the async module stands on (internal.h): counting
 * the store operations in flight and ending a close once none is left,
 * the history's events written and read, bodies as JSON, and the retry
 * policy's delays. It calls nothing of the module's other files.
 */
#include "async/internal.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void async_op(struct fl_async *a)
{
    a->ops++;
}

void async_op_done(struct fl_async *a)
{
    a->ops--;
    async_maybe_done(a);
}

void fl_inv_stream_name(char out[FL_INV_STREAM_MAX], const char *id)
{
    snprintf(out, FL_INV_STREAM_MAX, "inv/%s", id);
}

int fl_inv_append_text(struct fl_store *s, const char *id, const char *type, const char *text,
                       uint64_t expect, fl_store_cb cb, void *data)
{
    char stream[FL_INV_STREAM_MAX];
    fl_inv_stream_name(stream, id);
    struct fl_event_in ev = {type, text, strlen(text)};
    return fl_store_append(s, stream, &ev, 1, expect, cb, data);
}

int fl_inv_append(struct fl_store *s, const char *id, const char *type, json_t *data,
                  uint64_t expect, fl_store_cb cb, void *cbdata)
{
    char *text = data != NULL ? json_dumps(data, JSON_COMPACT) : NULL;
    if (text == NULL)
        return FL_ENOMEM;
    int rc = fl_inv_append_text(s, id, type, text, expect, cb, cbdata);
    free(text);
    return rc;
}

/* ---- the retry policy ---- */

static uint64_t next_random(uint64_t *s)
{
    /* xorshift64*: jitter needs spread, not secrecy */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static uint64_t rng_state;

int64_t fl_retry_delay_ms(const struct fl_retry_policy *p, uint32_t attempt)
{
    if (rng_state == 0 && (fl_random_bytes(&rng_state, sizeof(rng_state)) < 0 || rng_state == 0))
        rng_state = (uint64_t)fl_clock_mono_ns() | 1;
    int64_t cap = p->backoff_ms > 0 ? p->backoff_ms : 1;
    for (uint32_t i = 1; i < attempt && cap < p->max_backoff_ms; i++)
        cap *= 2;
    if (cap > p->max_backoff_ms && p->max_backoff_ms > 0)
        cap = p->max_backoff_ms;
    int64_t d = (int64_t)(next_random(&rng_state) % (uint64_t)(cap + 1));
    return d > 0 ? d : 1;
}

/* ---- events ---- */

struct append_ctx {
    struct fl_async *a;
    fl_store_cb cb;
    void *data;
};

/* An event is written (or not): tell cb, or log a failure nobody hears. */
static void event_written(int err, const struct fl_store_result *res, fl_store_cb cb, void *data)
{
    if (cb != NULL)
        cb(err, res, data);
    else if (err < 0)
        fl_log(FL_LOG_ERROR, "async", "could not record an invocation's event", "error=%s",
               fl_errname(err));
}

static void on_append(int err, const struct fl_store_result *res, void *data)
{
    struct append_ctx *c = data;
    struct fl_async *a = c->a;
    event_written(err, res, c->cb, c->data);
    free(c);
    async_op_done(a);
}

int async_append_text(struct fl_async *a, const char *id, const char *type, const char *text,
                      uint64_t expect, fl_store_cb cb, void *cbdata)
{
    struct append_ctx *c = malloc(sizeof(*c));
    if (c == NULL)
        return FL_ENOMEM;
    *c = (struct append_ctx){a, cb, cbdata};
    int rc = fl_inv_append_text(a->store, id, type, text, expect, on_append, c);
    if (rc < 0) {
        free(c);
        return rc;
    }
    async_op(a);
    return 0;
}

int async_append(struct fl_async *a, const char *id, const char *type, json_t *data,
                 uint64_t expect, fl_store_cb cb, void *cbdata)
{
    char *text = data != NULL ? json_dumps(data, JSON_COMPACT) : NULL;
    if (text == NULL)
        return FL_ENOMEM;
    int rc = async_append_text(a, id, type, text, expect, cb, cbdata);
    free(text);
    return rc;
}

/* One append of the first events (begin_ctx); the second, for a store
 * without atomic appends or after a conflict, comes from its callback. */
struct begin_ctx {
    struct fl_async *a;
    char stream[FL_INV_STREAM_MAX];
    char *type;
    char *text; /* the event's data */
    bool or_after;
    fl_store_cb cb;
    void *data;
};

static void begin_free(struct begin_ctx *c)
{
    free(c->type);
    free(c->text);
    free(c);
}

static void on_begun(int err, const struct fl_store_result *res, void *data)
{
    struct begin_ctx *c = data;
    struct fl_async *a = c->a;
    event_written(err, res, c->cb, c->data);
    begin_free(c);
    async_op_done(a);
}

/* The queued event alone is in (or the history was begun by another):
 * the event after it. */
static void on_queued_first(int err, const struct fl_store_result *res, void *data)
{
    struct begin_ctx *c = data;
    struct fl_async *a = c->a;
    if (err == 0 || (err == FL_ECONFLICT && c->or_after)) {
        struct fl_event_in ev = {c->type, c->text, strlen(c->text)};
        uint64_t expect = err == 0 && !c->or_after ? res->seq : FL_SEQ_ANY;
        err = fl_store_append(a->store, c->stream, &ev, 1, expect, on_begun, c);
        if (err == 0)
            return; /* the op goes on: on_begun ends it */
    }
    on_begun(err, NULL, c);
}

int async_append_first(struct fl_async *a, const char *id, json_t *queued, const char *type,
                       json_t *data, bool or_after, fl_store_cb cb, void *cbdata)
{
    struct begin_ctx *c = calloc(1, sizeof(*c));
    char *first = json_dumps(queued, JSON_COMPACT);
    if (c == NULL || first == NULL || (c->text = json_dumps(data, JSON_COMPACT)) == NULL ||
        (c->type = strdup(type)) == NULL) {
        free(first);
        if (c != NULL)
            begin_free(c);
        return FL_ENOMEM;
    }
    c->a = a;
    c->or_after = or_after;
    c->cb = cb;
    c->data = cbdata;
    fl_inv_stream_name(c->stream, id);
    bool atomic = (fl_store_caps(a->store) & FL_STORE_CAP_ATOMIC_APPEND) != 0;
    const struct fl_event_in ev[2] = {{"queued", first, strlen(first)},
                                      {c->type, c->text, strlen(c->text)}};
    int rc = atomic ? fl_store_append(a->store, c->stream, ev, 2, 0, on_begun, c)
                    : fl_store_append(a->store, c->stream, ev, 1, 0, on_queued_first, c);
    free(first);
    if (rc < 0) {
        begin_free(c);
        return rc;
    }
    async_op(a);
    return 0;
}

struct read_ctx {
    struct fl_async *a;
    char id[FL_UUID_STRLEN + 1];
    bool any;   /* async_read_any */
    int looked; /* any: 1 once the message was looked for, 2 once read again */
    async_fold_cb cb;
    void *data;
};

static int read_stream(struct read_ctx *c);

const char *async_topic_function(const char *topic)
{
    size_t n = sizeof(ASYNC_TOPIC_PREFIX) - 1;
    return strncmp(topic, ASYNC_TOPIC_PREFIX, n) == 0 && topic[n] != '\0' ? topic + n : NULL;
}

static void read_done(struct read_ctx *c, int err, struct fl_inv *inv, uint64_t last)
{
    struct fl_async *a = c->a;
    c->cb(err, err == 0 ? inv : NULL, last, c->data);
    if (err == 0)
        fl_inv_release(inv);
    free(c);
    async_op_done(a);
}

/* The message of an invocation whose history was not there. */
static void on_message(int err, const struct fl_store_result *res, void *data)
{
    struct read_ctx *c = data;
    struct fl_async *a = c->a;
    if (err == FL_ENOENT) {
        /* taken and ended between the two reads? Its history was written
         * before its message went: read it again, once */
        c->looked = 2;
        if (read_stream(c) == 0) {
            async_op_done(a);
            return;
        }
        err = FL_ENOMEM;
    }
    struct fl_inv inv;
    const char *fn = err == 0 ? async_topic_function(res->records[0].type) : NULL;
    if (err == 0 && fn == NULL)
        err = FL_ENOENT;
    if (err == 0) {
        json_t *msg = json_loads(res->records[0].headers, 0, NULL);
        err = fl_inv_fold_message(c->id, fn, msg, res->records[0].seq, res->records[0].ts_ms, &inv);
        json_decref(msg);
        if (err == FL_ECORRUPT)
            err = FL_ENOENT; /* a message that is no invocation */
    }
    read_done(c, err, &inv, 0);
}

static void on_read(int err, const struct fl_store_result *res, void *data)
{
    struct read_ctx *c = data;
    struct fl_async *a = c->a;
    struct fl_inv inv;
    if (err == 0 && res->n == 0 && c->any && c->looked == 0) {
        c->looked = 1;
        err = fl_store_message_find(a->store, ASYNC_TOPIC_PREFIX, c->id, on_message, c);
        if (err == 0)
            return; /* the op goes on */
    }
    if (err == 0) {
        err = fl_inv_fold(c->id, res->records, res->n, &inv);
        if (err == FL_ECORRUPT) {
            fl_log(FL_LOG_WARN, "async", "an invocation's history has events not understood",
                   "invocation=%s", c->id);
            err = 0;
        }
    }
    uint64_t last = err == 0 && res->n > 0 ? res->records[res->n - 1].seq : 0;
    read_done(c, err, &inv, last);
}

static int read_stream(struct read_ctx *c)
{
    char stream[FL_INV_STREAM_MAX];
    fl_inv_stream_name(stream, c->id);
    int rc = fl_store_read(c->a->store, stream, 1, FL_PAGE_MAX, on_read, c);
    if (rc == 0)
        async_op(c->a);
    return rc;
}

static int read_any(struct fl_async *a, const char *id, bool any, async_fold_cb cb, void *data)
{
    if (strlen(id) != FL_UUID_STRLEN)
        return FL_ENOENT;
    struct read_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return FL_ENOMEM;
    c->a = a;
    fl_strlcpy(c->id, id, sizeof(c->id));
    c->any = any;
    c->cb = cb;
    c->data = data;
    int rc = read_stream(c);
    if (rc < 0)
        free(c);
    return rc;
}

int async_read(struct fl_async *a, const char *id, async_fold_cb cb, void *data)
{
    return read_any(a, id, false, cb, data);
}

int async_read_any(struct fl_async *a, const char *id, async_fold_cb cb, void *data)
{
    return read_any(a, id, true, cb, data);
}

json_t *async_body_json(const void *body, size_t len, const char **encoding)
{
    json_t *v = json_stringn(body, len);
    *encoding = "text";
    if (v != NULL)
        return v;
    *encoding = "base64";
    char *b = malloc(FL_BASE64_LEN(len) + 1);
    if (b == NULL)
        return NULL;
    fl_base64_encode(b, body, len);
    v = json_string(b);
    free(b);
    return v;
}

static void on_http_closed(void *data)
{
    struct fl_async *a = data;
    void (*done)(void *) = a->done;
    void *done_data = a->done_data;
    free(a);
    if (done != NULL)
        done(done_data);
}

void async_maybe_done(struct fl_async *a)
{
    if (!a->closing || a->ops > 0 || !fl_queue_empty(&a->attempts) || a->http == NULL)
        return;
    while (!fl_queue_empty(&a->queues)) {
        struct aq *q = FL_QUEUE_DATA(fl_queue_first(&a->queues), struct aq, link);
        fl_queue_remove(&q->link);
        free(q);
    }
    struct fl_http_client *http = a->http;
    a->http = NULL;
    fl_http_client_close(http, on_http_closed, a);
}
