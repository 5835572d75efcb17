/*
 * The API's built-in topics (docs/api.md, "Topics"):
 *
 *   GET    /v1/topics?limit=N&after=CURSOR       list (without Flint's own topics)
 *   POST   /v1/topics                            {"name", "limits"}: 201; 409 if it exists
 *   GET    /v1/topics/{name}                     info and its consumers
 *   PUT    /v1/topics/{name}                     {"limits"}: 200; 404 if it does not exist
 *   DELETE /v1/topics/{name}                     with its messages and consumers
 *   POST   /v1/topics/{name}/messages            publish (topics/topics.h): 202 once durable
 *   GET    /v1/topics/{name}/messages?from=SEQ&limit=N&follow=1
 *
 * Thin: the store keeps the topics (store.h), topics/topics.h names them
 * and publishes requests; this maps paths, bodies and errors, and
 * follows a topic for a client as a chunked stream of JSON lines.
 *
 * A follow (struct follow) watches the topic's publishes
 * (fl_store_topic_watch) before its first read, then reads
 * FOLLOW_CHUNK messages at a time from where it is, writes them, and
 * reads on while the reads come back full or a publish was told
 * meanwhile: nothing is polled, and nothing published after the watch
 * began is missed. What it holds is bounded by one chunk: a client that
 * reads slowly (the server's stream buffer full) is waited for, on a
 * timer, before more is read.
 */
#include "api/internal.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/queue.h"
#include "base/str.h"
#include "http/parse.h"
#include "topics/topics.h"

#include <stdlib.h>
#include <string.h>

#define READ_CHUNK      8          /* messages per store read */
#define READ_BODY_MAX   (8u << 20) /* bytes of a GET's messages; the rest via next */
#define FOLLOW_RETRY_MS 20         /* a slow client is written to again after this */

struct api_topics {
    uv_loop_t *loop;
    struct fl_store *store;
    struct fl_queue follows; /* struct follow */
};

/* ---- answers ---- */

static void respond_store_error(struct fl_http_request *req, int err, const char *topic)
{
    if (err == FL_ENOENT)
        fl_http_respond_error(req, 404, "topic_not_found", "topic '%s' does not exist", topic);
    else if (err == FL_EINVAL)
        fl_http_respond_error(req, 400, "invalid", "invalid request for topic '%s'", topic);
    else if (err == FL_ENOSPC)
        fl_http_respond_error(req, 507, "no_space",
                              "no space left on the disk of flintd's data directory: nothing was "
                              "stored");
    else if (err == FL_ENOMEM)
        fl_http_respond_error(req, 500, "internal", "out of memory");
    else
        fl_http_respond_error(req, 503, "store_unavailable", "the store failed: %s",
                              fl_strerror(err));
}

static json_t *duration_json(int64_t ms)
{
    char text[32];
    return ms > 0 ? json_string(fl_fmt_duration_ms(ms, text, sizeof(text))) : json_null();
}

static json_t *limit_json(uint64_t n)
{
    return n > 0 ? json_integer((json_int_t)n) : json_null();
}

static json_t *topic_json(const struct fl_topic_info *t)
{
    return json_pack("{s:s, s:{s:o, s:o, s:o, s:o}, s:I, s:I, s:I, s:I, s:I}", "name", t->name,
                     "limits", "maxMsgs", limit_json(t->limits.max_msgs), "maxBytes",
                     limit_json(t->limits.max_bytes), "maxAge", duration_json(t->limits.max_age_ms),
                     "duplicateWindow", duration_json(t->limits.dup_window_ms), "messages",
                     (json_int_t)t->messages, "bytes", (json_int_t)t->bytes, "firstSeq",
                     (json_int_t)t->first_seq, "lastSeq", (json_int_t)t->last_seq, "consumerCount",
                     (json_int_t)t->consumers);
}

static json_t *consumer_json(const struct fl_consumer_info *c)
{
    static const char *const deliver[] = {"all", "new", "from"};
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:i, s:i, s:s}", "name", c->name, "pending",
                     (json_int_t)c->pending, "lag", (json_int_t)c->lag, "dead", (json_int_t)c->dead,
                     "nextSeq", (json_int_t)c->next_seq, "ackWait",
                     duration_json(c->config.ack_wait_ms), "maxDeliver", (int)c->config.max_deliver,
                     "maxAckPending", (int)c->config.max_ack_pending, "deliver",
                     deliver[c->config.deliver <= FL_DELIVER_FROM ? c->config.deliver : 0]);
}

/* One message as the API shows it: {seq, time, id, headers, body,
 * bodyEncoding} (text, or base64 for a body that is not UTF-8). */
static json_t *message_json(const struct fl_record *r)
{
    char time[32];
    const char *encoding;
    json_t *body = api_body_json(r->data, r->len, &encoding);
    json_t *headers = json_loads(r->headers, 0, NULL);
    if (!json_is_object(headers)) {
        json_decref(headers);
        headers = json_object();
    }
    return json_pack("{s:I, s:s, s:o, s:o, s:o, s:s}", "seq", (json_int_t)r->seq, "time",
                     fl_clock_format(r->ts_ms, time, sizeof(time)), "id",
                     r->key[0] ? json_string(r->key) : json_null(), "headers", headers, "body",
                     body ? body : json_null(), "bodyEncoding", encoding);
}

/* ---- limits ---- */

enum limit_kind { LIMIT_COUNT, LIMIT_SIZE, LIMIT_DURATION };

#define MAX_AGE_MS    (3650LL * 86400000) /* ten years */
#define DUP_WINDOW_MS (7LL * 86400000)
#define DUP_DEFAULT   120000

static const struct {
    const char *field;
    enum limit_kind kind;
    int64_t max;
    const char *what; /* for the error */
} limit_fields[] = {
    {"maxMsgs", LIMIT_COUNT, INT64_MAX, "a number of messages (null or 0: no limit)"},
    {"maxBytes", LIMIT_SIZE, INT64_MAX,
     "a size like 64MiB or a number of bytes (null or 0: no limit)"},
    {"maxAge", LIMIT_DURATION, MAX_AGE_MS,
     "a duration like \"1h\" up to 3650d (null or 0: no limit)"},
    {"duplicateWindow", LIMIT_DURATION, DUP_WINDOW_MS,
     "a duration like \"2m\" up to 7d (default 2m)"},
};
#define NLIMITS (sizeof(limit_fields) / sizeof(limit_fields[0]))

/* One limit's value: null is 0; -1 if it is no such value. */
static int64_t limit_value(json_t *v, enum limit_kind kind, int64_t max)
{
    int64_t n = -1;
    uint64_t size;
    if (json_is_null(v))
        n = 0;
    else if (json_is_integer(v))
        n = json_integer_value(v) < 0 ? -1
            : kind == LIMIT_DURATION
                ? (json_integer_value(v) <= max / 1000 ? json_integer_value(v) * 1000 : -1)
                : json_integer_value(v);
    else if (json_is_string(v) && kind == LIMIT_SIZE &&
             fl_parse_size(json_string_value(v), &size) == 0 && size <= INT64_MAX)
        n = (int64_t)size;
    else if (json_is_string(v) && kind == LIMIT_DURATION &&
             fl_parse_duration_ms(json_string_value(v), &n) < 0)
        n = -1;
    return n <= max ? n : -1;
}

/* The body's limits into l (defaults for what it does not say); false
 * if answered 400. */
static bool parse_limits(struct fl_http_request *req, json_t *limits, struct fl_topic_limits *l)
{
    int64_t values[NLIMITS] = {0};
    memset(l, 0, sizeof(*l));
    if (limits != NULL && !json_is_null(limits) && !json_is_object(limits)) {
        fl_http_respond_error(req, 400, "invalid",
                              "limits: an object of maxMsgs, maxBytes, maxAge, duplicateWindow");
        return false;
    }
    const char *key;
    json_t *v;
    json_object_foreach(limits, key, v)
    {
        size_t i = 0;
        while (i < NLIMITS && strcmp(key, limit_fields[i].field) != 0)
            i++;
        if (i == NLIMITS) {
            fl_http_respond_error(req, 400, "invalid",
                                  "limits.%.80s: not a limit (maxMsgs, maxBytes, maxAge, "
                                  "duplicateWindow)",
                                  key);
            return false;
        }
        values[i] = limit_value(v, limit_fields[i].kind, limit_fields[i].max);
        if (values[i] < 0) {
            fl_http_respond_error(req, 400, "invalid", "limits.%s: must be %s", key,
                                  limit_fields[i].what);
            return false;
        }
    }
    l->max_msgs = (uint64_t)values[0];
    l->max_bytes = (uint64_t)values[1];
    l->max_age_ms = values[2];
    l->dup_window_ms = values[3];
    if (l->dup_window_ms == 0) /* the default, within the age */
        l->dup_window_ms =
            l->max_age_ms > 0 && l->max_age_ms < DUP_DEFAULT ? l->max_age_ms : DUP_DEFAULT;
    if (l->max_age_ms > 0 && l->dup_window_ms > l->max_age_ms) {
        fl_http_respond_error(req, 400, "invalid",
                              "limits.duplicateWindow: must not be longer than maxAge");
        return false;
    }
    return true;
}

/* ---- reads ---- */

struct op {
    struct api_topics *t;
    struct fl_http_request *req;
    char topic[FL_TOPIC_NAME_MAX + 1];
    int status;                    /* create, update: the answer's */
    bool detail;                   /* get: with the consumers */
    struct fl_topic_limits limits; /* create, update */
    json_t *answer;                /* get: the topic, while its consumers are read */
    /* messages */
    uint64_t from;
    size_t limit;
    json_t *messages;
    size_t bytes;
};

static struct op *op_new(struct api_topics *t, struct fl_http_request *req, const char *topic)
{
    struct op *o = calloc(1, sizeof(*o));
    if (o == NULL) {
        fl_http_respond_error(req, 500, "internal", "out of memory");
        return NULL;
    }
    o->t = t;
    o->req = req;
    fl_strlcpy(o->topic, topic, sizeof(o->topic));
    return o;
}

static void op_free(struct op *o)
{
    json_decref(o->answer);
    json_decref(o->messages);
    free(o);
}

/* The outcome of starting a store operation: answered now if it failed. */
static void started(struct op *o, int rc)
{
    if (rc < 0) {
        respond_store_error(o->req, rc, o->topic);
        op_free(o);
    }
}

static void on_list(int err, const struct fl_store_result *res, void *data)
{
    struct op *o = data;
    struct fl_buf why;
    fl_buf_init(&why, 512);
    if (err < 0) {
        respond_store_error(o->req, err, "*");
    } else {
        json_t *items = json_array();
        for (size_t i = 0; i < res->n; i++)
            if (fl_topic_name_check(res->topics[i].name, &why) == 0) /* not Flint's own */
                json_array_append_new(items, topic_json(&res->topics[i]));
        json_t *body = json_pack("{s:o, s:o}", "items", items, "next",
                                 res->next ? json_string(res->next) : json_null());
        api_respond_json(o->req, 200, body);
        json_decref(body);
    }
    fl_buf_release(&why);
    op_free(o);
}

static void list(struct api_topics *t, struct fl_http_request *req)
{
    char limit[16] = "", after[FL_CURSOR_MAX] = "";
    int64_t n = 100;
    if (fl_http_query_value(req->query, "limit", limit, sizeof(limit)) &&
        fl_parse_i64(limit, 1, 1000, &n) < 0) {
        fl_http_respond_error(req, 400, "invalid", "limit must be a whole number from 1 to 1000");
        return;
    }
    fl_http_query_value(req->query, "after", after, sizeof(after));
    struct op *o = op_new(t, req, "");
    struct fl_page page = {(size_t)n, after};
    if (o != NULL)
        started(o, fl_store_topics(t->store, "", &page, on_list, o));
}

static void on_consumers(int err, const struct fl_store_result *res, void *data)
{
    struct op *o = data;
    if (err < 0) {
        respond_store_error(o->req, err, o->topic);
    } else {
        json_t *consumers = json_array();
        for (size_t i = 0; i < res->n; i++)
            json_array_append_new(consumers, consumer_json(&res->consumers[i]));
        json_object_set_new(o->answer, "consumers", consumers);
        json_object_set_new(o->answer, "moreConsumers", json_boolean(res->next != NULL));
        api_respond_json(o->req, o->status, o->answer);
    }
    op_free(o);
}

/* A topic's info, then (for a get) its consumers. */
static void on_info(int err, const struct fl_store_result *res, void *data)
{
    struct op *o = data;
    if (err == 0)
        o->answer = topic_json(&res->topics[0]);
    if (err == 0 && o->answer == NULL)
        err = FL_ENOMEM;
    if (err < 0)
        respond_store_error(o->req, err, o->topic);
    else if (o->detail)
        started(o, fl_store_consumers(o->t->store, o->topic, NULL, on_consumers, o));
    else
        api_respond_json(o->req, o->status, o->answer);
    if (err < 0 || !o->detail)
        op_free(o);
}

/* ---- writes ---- */

static void on_written(int err, const struct fl_store_result *res, void *data)
{
    struct op *o = data;
    if (err < 0) {
        respond_store_error(o->req, err, o->topic);
        op_free(o);
        return;
    }
    started(o, fl_store_topic_info(o->t->store, o->topic, on_info, o));
}

/* create (status 201: it must not exist) or update (200: it must) */
static void on_exists(int err, const struct fl_store_result *res, void *data)
{
    struct op *o = data;
    if (err < 0 && err != FL_ENOENT) {
        respond_store_error(o->req, err, o->topic);
    } else if (o->status == 201 && err == 0) {
        fl_http_respond_error(o->req, 409, "exists",
                              "topic '%s' exists already (PUT /v1/topics/%s changes its limits)",
                              o->topic, o->topic);
    } else if (o->status == 200 && err == FL_ENOENT) {
        respond_store_error(o->req, FL_ENOENT, o->topic);
    } else {
        started(o, fl_store_topic_create(o->t->store, o->topic, &o->limits, on_written, o));
        return;
    }
    op_free(o);
}

/* POST /v1/topics (name NULL: from the body) or PUT /v1/topics/{name}. */
static void write_topic(struct api_topics *t, struct fl_http_request *req, const char *name)
{
    bool create = name == NULL;
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
    struct fl_buf why;
    fl_buf_init(&why, 512);
    if (!json_is_object(body)) {
        fl_http_respond_error(req, 400, "invalid", "the body must be a JSON object: %s",
                              body ? "not an object" : jerr.text);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "limits") != 0 && strcmp(key, "name") != 0) {
            fl_http_respond_error(req, 400, "invalid",
                                  "%.80s: not a field of a topic (name, limits)", key);
            goto out;
        }
    }
    const char *given = json_string_value(json_object_get(body, "name"));
    if (name == NULL)
        name = given;
    if (name == NULL || (given != NULL && strcmp(given, name) != 0)) {
        fl_http_respond_error(req, 400, "invalid",
                              name ? "name: must be the name in the path" : "name: required");
        goto out;
    }
    if (fl_topic_name_check(name, &why) < 0) {
        fl_http_respond_error(req, 400, "invalid", "%s", why.data);
        goto out;
    }
    struct fl_topic_limits limits;
    if (!parse_limits(req, json_object_get(body, "limits"), &limits))
        goto out;
    struct op *o = op_new(t, req, name);
    if (o == NULL)
        goto out;
    o->limits = limits;
    o->status = create ? 201 : 200;
    started(o, fl_store_topic_info(t->store, name, on_exists, o));
out:
    fl_buf_release(&why);
    json_decref(body);
}

static void on_deleted(int err, const struct fl_store_result *res, void *data)
{
    struct op *o = data;
    if (err < 0) {
        respond_store_error(o->req, err, o->topic);
    } else {
        json_t *body = json_pack("{s:s}", "deleted", o->topic);
        api_respond_json(o->req, 200, body);
        json_decref(body);
    }
    op_free(o);
}

/* ---- messages: a page ---- */

static void read_on(struct op *o);

static void respond_messages(struct op *o)
{
    json_t *body = json_pack("{s:s, s:O, s:I}", "topic", o->topic, "messages", o->messages, "next",
                             (json_int_t)o->from);
    api_respond_json(o->req, 200, body);
    json_decref(body);
    op_free(o);
}

static void on_page(int err, const struct fl_store_result *res, void *data)
{
    struct op *o = data;
    if (err < 0) {
        respond_store_error(o->req, err, o->topic);
        op_free(o);
        return;
    }
    for (size_t i = 0; i < res->n; i++) {
        json_array_append_new(o->messages, message_json(&res->records[i]));
        o->bytes += res->records[i].len + strlen(res->records[i].headers) + 100;
        o->from = res->records[i].seq + 1;
    }
    bool full = res->seq != 0;
    if (full)
        o->from = res->seq; /* past what was looked at, given or skipped */
    if (full && json_array_size(o->messages) < o->limit && o->bytes < READ_BODY_MAX)
        read_on(o);
    else
        respond_messages(o);
}

static void read_on(struct op *o)
{
    size_t want = o->limit - json_array_size(o->messages);
    started(o, fl_store_topic_read(o->t->store, o->topic, o->from,
                                   want < READ_CHUNK ? want : READ_CHUNK, on_page, o));
}

/* ---- messages: a follow ---- */

struct follow {
    struct api_topics *t;
    struct fl_http_request *req; /* NULL once ended */
    char topic[FL_TOPIC_NAME_MAX + 1];
    struct fl_store_watch *watch;
    uint64_t next;       /* the next sequence to read */
    bool reading;        /* a read is under way */
    bool more;           /* read on: a full read, or a publish told meanwhile */
    struct fl_buf lines; /* read, not written yet */
    uv_timer_t retry;    /* a slow client: write again later */
    bool timer_closed;
    struct fl_queue node; /* in t->follows */
};

static void follow_read(struct follow *f);
static void on_retry(uv_timer_t *timer);

static void follow_maybe_free(struct follow *f)
{
    if (f->req != NULL || f->reading || !f->timer_closed)
        return;
    fl_buf_release(&f->lines);
    free(f);
}

static void on_retry_closed(uv_handle_t *h)
{
    struct follow *f = h->data;
    f->timer_closed = true;
    follow_maybe_free(f);
}

/* Stop following: the client left, the store failed, or flintd stops. */
static void follow_end(struct follow *f)
{
    if (f->req == NULL)
        return;
    fl_queue_remove(&f->node);
    fl_store_unwatch(f->watch);
    f->watch = NULL;
    fl_http_stream_end(f->req);
    f->req = NULL;
    uv_timer_stop(&f->retry);
    uv_close((uv_handle_t *)&f->retry, on_retry_closed);
}

/* Write what was read; once it is all out, read on if there is more. */
static void follow_write(struct follow *f)
{
    while (f->lines.len > 0) {
        size_t n = f->lines.len < (1u << 20) ? f->lines.len : 1u << 20;
        int rc = fl_http_stream_write(f->req, f->lines.data, n);
        if (rc == FL_EAGAIN) {
            uv_timer_start(&f->retry, on_retry, FOLLOW_RETRY_MS, 0);
            return;
        }
        if (rc < 0) {
            follow_end(f);
            return;
        }
        fl_buf_consume(&f->lines, n);
    }
    if (f->more) {
        f->more = false;
        follow_read(f);
    }
}

static void on_retry(uv_timer_t *timer)
{
    follow_write(timer->data);
}

static void on_follow_read(int err, const struct fl_store_result *res, void *data)
{
    struct follow *f = data;
    f->reading = false;
    if (f->req == NULL) {
        follow_maybe_free(f);
        return;
    }
    if (err < 0) {
        follow_end(f); /* the topic was deleted, or the store failed */
        return;
    }
    for (size_t i = 0; i < res->n; i++) {
        json_t *m = message_json(&res->records[i]);
        char *text = m ? json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(m);
        int rc = text ? fl_buf_append(&f->lines, text, strlen(text)) : FL_ENOMEM;
        if (rc == 0)
            rc = fl_buf_append(&f->lines, "\n", 1);
        free(text);
        if (rc < 0) {
            follow_end(f);
            return;
        }
        f->next = res->records[i].seq + 1;
    }
    if (res->seq != 0) { /* a full read: on from past what it looked at */
        f->more = true;
        f->next = res->seq;
    }
    follow_write(f);
}

static void follow_read(struct follow *f)
{
    int rc = fl_store_topic_read(f->t->store, f->topic, f->next, READ_CHUNK, on_follow_read, f);
    if (rc < 0)
        follow_end(f);
    else
        f->reading = true;
}

/* A publish was told: read on now, or once the read or the writing under
 * way is done. */
static void on_published(int err, const struct fl_store_result *res, void *data)
{
    struct follow *f = data;
    if (f->req == NULL)
        return;
    if (f->reading || f->lines.len > 0)
        f->more = true;
    else
        follow_read(f);
}

static void on_follow_abort(struct fl_http_request *req, void *data)
{
    follow_end(data);
}

static void follow(struct api_topics *t, struct fl_http_request *req, const char *topic,
                   uint64_t from)
{
    static const struct fl_http_header ndjson = {"Content-Type", 12, "application/x-ndjson", 20};
    struct follow *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        fl_http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    f->t = t;
    f->next = from;
    fl_strlcpy(f->topic, topic, sizeof(f->topic));
    fl_buf_init(&f->lines, (size_t)READ_CHUNK * (3u << 20)); /* a chunk of base64 bodies */
    int rc = fl_store_topic_watch(t->store, topic, on_published, f, &f->watch);
    if (rc < 0) {
        respond_store_error(req, rc, topic);
        free(f);
        return;
    }
    if (fl_http_stream_begin(req, 200, &ndjson, 1) < 0) {
        fl_store_unwatch(f->watch);
        fl_http_stream_end(req);
        free(f);
        return;
    }
    f->req = req;
    uv_timer_init(t->loop, &f->retry);
    f->retry.data = f;
    fl_http_request_on_abort(req, on_follow_abort, f);
    fl_queue_insert_head(&t->follows, &f->node);
    follow_read(f);
}

/* The first read of a follow says whether the topic exists (404) before
 * the stream begins. */
static void on_follow_check(int err, const struct fl_store_result *res, void *data)
{
    struct op *o = data;
    if (err < 0)
        respond_store_error(o->req, err, o->topic);
    else
        follow(o->t, o->req, o->topic, o->from);
    op_free(o);
}

static void messages(struct api_topics *t, struct fl_http_request *req, const char *topic)
{
    char value[32];
    uint64_t from = 1;
    int64_t limit = 100;
    bool follows = false;
    if (fl_http_query_value(req->query, "from", value, sizeof(value)) &&
        (fl_parse_u64(value, INT64_MAX, &from) < 0 || from == 0)) {
        fl_http_respond_error(req, 400, "invalid", "from: a sequence from 1, not '%s'", value);
        return;
    }
    if (fl_http_query_value(req->query, "limit", value, sizeof(value)) &&
        fl_parse_i64(value, 1, 1000, &limit) < 0) {
        fl_http_respond_error(req, 400, "invalid", "limit: a number from 1 to 1000, not '%s'",
                              value);
        return;
    }
    if (fl_http_query_value(req->query, "follow", value, sizeof(value))) {
        follows = value[0] == '\0' || strcmp(value, "1") == 0 || strcmp(value, "true") == 0;
        if (!follows && strcmp(value, "0") != 0 && strcmp(value, "false") != 0) {
            fl_http_respond_error(req, 400, "invalid", "follow: true, false, 1 or 0, not '%s'",
                                  value);
            return;
        }
    }
    struct op *o = op_new(t, req, topic);
    if (o == NULL)
        return;
    o->from = from;
    if (follows) {
        started(o, fl_store_topic_info(t->store, topic, on_follow_check, o));
        return;
    }
    o->limit = (size_t)limit;
    o->messages = json_array();
    if (o->messages == NULL) {
        respond_store_error(req, FL_ENOMEM, topic);
        op_free(o);
        return;
    }
    read_on(o);
}

/* ---- dispatch ---- */

/* /v1/topics/{name}[/messages] */
static void one_topic(struct api_topics *t, struct fl_http_request *req, const char *rest)
{
    const char *m = req->method, *slash = strchr(rest, '/');
    size_t len = slash ? (size_t)(slash - rest) : strlen(rest);
    char name[FL_TOPIC_NAME_MAX + 1];
    bool valid = fl_topic_name_from(rest, len, name) == 0;
    bool is_messages = slash != NULL && strcmp(slash, "/messages") == 0;
    if (slash != NULL && !is_messages) {
        fl_http_respond_error(req, 404, "not_found", "no API endpoint %s %.200s", m, req->path);
        return;
    }
    if (!valid) {
        fl_http_respond_error(req, 404, "topic_not_found", "topic '%.80s' does not exist", rest);
        return;
    }
    struct op *o;
    if (is_messages && strcmp(m, "POST") == 0) {
        const struct fl_topic_http how = {.topic = name};
        fl_topic_publish_http(t->store, req, &how);
    } else if (is_messages && strcmp(m, "GET") == 0) {
        messages(t, req, name);
    } else if (is_messages) {
        fl_http_respond_error(req, 405, "method_not_allowed", "%s %s: use GET or POST", m,
                              req->path);
    } else if (strcmp(m, "GET") == 0) {
        if ((o = op_new(t, req, name)) != NULL) {
            o->detail = true;
            o->status = 200;
            started(o, fl_store_topic_info(t->store, name, on_info, o));
        }
    } else if (strcmp(m, "PUT") == 0) {
        write_topic(t, req, name);
    } else if (strcmp(m, "DELETE") == 0) {
        if ((o = op_new(t, req, name)) != NULL)
            started(o, fl_store_topic_delete(t->store, name, on_deleted, o));
    } else {
        fl_http_respond_error(req, 405, "method_not_allowed", "%s %s: use GET, PUT or DELETE", m,
                              req->path);
    }
}

bool api_topics_handle(struct api_topics *t, struct fl_http_request *req)
{
    const char *rest = req->path + 10;
    if (strncmp(req->path, "/v1/topics", 10) != 0 || (*rest != '\0' && *rest != '/'))
        return false;
    if (*rest == '\0' && strcmp(req->method, "GET") == 0)
        list(t, req);
    else if (*rest == '\0' && strcmp(req->method, "POST") == 0)
        write_topic(t, req, NULL);
    else if (*rest == '\0')
        fl_http_respond_error(req, 405, "method_not_allowed", "%s /v1/topics: use GET or POST",
                              req->method);
    else
        one_topic(t, req, rest + 1);
    return true;
}

void api_topics_end_streams(struct api_topics *t)
{
    struct fl_queue *q;
    while ((q = fl_queue_first(&t->follows)) != NULL)
        follow_end(FL_QUEUE_DATA(q, struct follow, node));
}

int api_topics_new(uv_loop_t *loop, struct fl_store *store, struct api_topics **out)
{
    struct api_topics *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return FL_ENOMEM;
    t->loop = loop;
    t->store = store;
    fl_queue_init(&t->follows);
    *out = t;
    return 0;
}

void api_topics_free(struct api_topics *t)
{
    free(t);
}
