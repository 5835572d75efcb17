/*
 * The public side of store.h: the backend a URI names (the scheme table),
 * the argument checks every backend shares, the defaults, and dispatch
 * through the backend's table of operations (backend.h).
 */
#include "store/backend.h"
#include "store/sqlite.h"

#include "base/error.h"
#include "base/str.h"

#include <stdio.h>
#include <string.h>

/* The backends, by URI scheme. */
static const struct scheme {
    const char *name; /* without the colon */
    fl_store_open_fn open;
} schemes[] = {
    {"sqlite", fl_store_sqlite_open},
};

#define NSCHEMES (sizeof(schemes) / sizeof(schemes[0]))

void fl_store_options_init(struct fl_store_options *opts)
{
    opts->max_value_bytes = 1u << 20;
    opts->change_retention = 100000;
}

int fl_store_open(uv_loop_t *loop, const char *uri, const struct fl_store_options *opts,
                  struct fl_store **out, char *err, size_t errsize)
{
    char scratch[8];
    if (err == NULL) {
        err = scratch;
        errsize = sizeof(scratch);
    }
    err[0] = '\0';
    const char *colon = uri ? strchr(uri, ':') : NULL;
    for (size_t i = 0; colon != NULL && i < NSCHEMES; i++) {
        size_t n = strlen(schemes[i].name);
        if ((size_t)(colon - uri) == n && memcmp(uri, schemes[i].name, n) == 0) {
            if (colon[1] == '\0') {
                snprintf(err, errsize, "store '%s' names no location (%s:PATH)", uri,
                         schemes[i].name);
                return FL_EINVAL;
            }
            struct fl_store_options defaults;
            fl_store_options_init(&defaults);
            return schemes[i].open(loop, colon + 1, opts ? opts : &defaults, out, err, errsize);
        }
    }
    char known[256] = "";
    for (size_t i = 0; i < NSCHEMES; i++) {
        size_t used = strlen(known);
        snprintf(known + used, sizeof(known) - used, "%s%s:PATH", i ? ", " : "", schemes[i].name);
    }
    snprintf(err, errsize, "unknown store '%s': the stores are %s", uri ? uri : "(null)", known);
    return FL_EINVAL;
}

void fl_store_close(struct fl_store *s, void (*done)(void *data), void *data)
{
    s->ops->close(s, done, data);
}

const char *fl_store_describe(struct fl_store *s)
{
    return s->ops->describe(s);
}

unsigned fl_store_caps(struct fl_store *s)
{
    return s->ops->caps;
}

void fl_store_unwatch(struct fl_store_watch *w)
{
    if (w != NULL)
        w->store->ops->unwatch(w);
}

/* ---- the checks every backend shares ---- */

static bool key_ok(const char *s, size_t max)
{
    if (s == NULL)
        return false;
    size_t n = strnlen(s, max + 1);
    return n > 0 && n <= max;
}

static bool opt_ok(const char *s, size_t max)
{
    return s == NULL || strnlen(s, max + 1) <= max;
}

/* A valid page in *out (defaults filled in), or false. */
static bool page_ok(const struct fl_page *page, struct fl_page *out)
{
    out->limit = page && page->limit ? page->limit : FL_PAGE_DEFAULT;
    out->after = page && page->after ? page->after : "";
    return out->limit <= FL_PAGE_MAX && strnlen(out->after, FL_CURSOR_MAX) < FL_CURSOR_MAX;
}

#define KIND_MAX      64
#define NAME_MAX_     256
#define STREAM_MAX    512
#define TYPE_MAX      128
#define REASON_MAX    1024
#define EVENTS_MAX    10000
#define FETCH_MAX     256
#define LEASE_TTL_MAX (24 * 3600 * 1000)

int fl_store_put(struct fl_store *s, const char *kind, const char *name, const char *json,
                 size_t len, uint64_t expect, fl_store_cb cb, void *data)
{
    if (!key_ok(kind, KIND_MAX) || !key_ok(name, NAME_MAX_) || json == NULL)
        return FL_EINVAL;
    if (len > s->opts.max_value_bytes)
        return FL_ETOOBIG;
    return s->ops->put(s, kind, name, json, len, expect, cb, data);
}

int fl_store_get(struct fl_store *s, const char *kind, const char *name, fl_store_cb cb, void *data)
{
    if (!key_ok(kind, KIND_MAX) || !key_ok(name, NAME_MAX_))
        return FL_EINVAL;
    return s->ops->get(s, kind, name, cb, data);
}

int fl_store_list(struct fl_store *s, const char *kind, const char *prefix, fl_store_cb cb,
                  void *data)
{
    if (!key_ok(kind, KIND_MAX) || !opt_ok(prefix, NAME_MAX_))
        return FL_EINVAL;
    return s->ops->list(s, kind, prefix ? prefix : "", NULL, cb, data);
}

int fl_store_list_page(struct fl_store *s, const char *kind, const char *prefix,
                       const struct fl_page *page, fl_store_cb cb, void *data)
{
    struct fl_page p;
    if (!key_ok(kind, KIND_MAX) || !opt_ok(prefix, NAME_MAX_) || !page_ok(page, &p))
        return FL_EINVAL;
    return s->ops->list(s, kind, prefix ? prefix : "", &p, cb, data);
}

int fl_store_delete(struct fl_store *s, const char *kind, const char *name, uint64_t expect,
                    fl_store_cb cb, void *data)
{
    if (!key_ok(kind, KIND_MAX) || !key_ok(name, NAME_MAX_))
        return FL_EINVAL;
    return s->ops->del(s, kind, name, expect, cb, data);
}

int fl_store_watch(struct fl_store *s, const char *kind, uint64_t from, fl_store_cb cb, void *data,
                   struct fl_store_watch **out)
{
    if ((kind != NULL && !key_ok(kind, KIND_MAX)) || cb == NULL || out == NULL)
        return FL_EINVAL;
    return s->ops->watch(s, kind, from, cb, data, out);
}

static int check_append(struct fl_store *s, const char *stream, const struct fl_event_in *events,
                        size_t n)
{
    if (!key_ok(stream, STREAM_MAX) || events == NULL || n == 0 || n > EVENTS_MAX)
        return FL_EINVAL;
    if (n > 1 && !(s->ops->caps & FL_STORE_CAP_ATOMIC_APPEND))
        return FL_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!key_ok(events[i].type, TYPE_MAX) || events[i].data == NULL)
            return FL_EINVAL;
        if (events[i].len > s->opts.max_value_bytes)
            return FL_ETOOBIG;
    }
    return 0;
}

int fl_store_append(struct fl_store *s, const char *stream, const struct fl_event_in *events,
                    size_t n, uint64_t expect, fl_store_cb cb, void *data)
{
    int rc = check_append(s, stream, events, n);
    return rc < 0 ? rc : s->ops->append(s, stream, events, n, expect, NULL, 0, cb, data);
}

int fl_store_append_fenced(struct fl_store *s, const char *stream, const struct fl_event_in *events,
                           size_t n, uint64_t expect, const char *lease, uint64_t revision,
                           fl_store_cb cb, void *data)
{
    int rc = check_append(s, stream, events, n);
    if (rc < 0)
        return rc;
    if (!key_ok(lease, NAME_MAX_) || revision == 0)
        return FL_EINVAL;
    if (expect != FL_SEQ_ANY && !(s->ops->caps & FL_STORE_CAP_FENCE_AND_EXPECT))
        return FL_EINVAL;
    return s->ops->append(s, stream, events, n, expect, lease, revision, cb, data);
}

int fl_store_read(struct fl_store *s, const char *stream, uint64_t from, size_t max, fl_store_cb cb,
                  void *data)
{
    if (!key_ok(stream, STREAM_MAX) || max > FL_PAGE_MAX)
        return FL_EINVAL;
    return s->ops->read(s, stream, from, max ? max : FL_PAGE_DEFAULT, cb, data);
}

int fl_store_streams(struct fl_store *s, const char *prefix, const struct fl_page *page,
                     fl_store_cb cb, void *data)
{
    struct fl_page p;
    if (!opt_ok(prefix, STREAM_MAX) || !page_ok(page, &p))
        return FL_EINVAL;
    return s->ops->streams(s, prefix ? prefix : "", &p, cb, data);
}

int fl_store_stream_delete(struct fl_store *s, const char *stream, fl_store_cb cb, void *data)
{
    if (!key_ok(stream, STREAM_MAX))
        return FL_EINVAL;
    return s->ops->stream_delete(s, stream, cb, data);
}

int fl_store_subscribe(struct fl_store *s, const char *name, bool prefix, fl_store_cb cb,
                       void *data, struct fl_store_watch **out)
{
    if (!(prefix ? opt_ok(name, STREAM_MAX) : key_ok(name, STREAM_MAX)) || cb == NULL ||
        out == NULL)
        return FL_EINVAL;
    return s->ops->subscribe(s, name ? name : "", prefix, cb, data, out);
}

int fl_store_topic_create(struct fl_store *s, const char *topic,
                          const struct fl_topic_limits *limits, fl_store_cb cb, void *data)
{
    if (!key_ok(topic, NAME_MAX_))
        return FL_EINVAL;
    struct fl_topic_limits l = {0};
    if (limits != NULL)
        l = *limits;
    if (l.max_age_ms < 0 || (l.dup_window_ms < 0 && l.dup_window_ms != FL_TOPIC_DEDUP_NONE))
        return FL_EINVAL;
    if (l.dup_window_ms == 0)
        l.dup_window_ms = 120000;
    return s->ops->topic_create(s, topic, &l, cb, data);
}

int fl_store_topic_delete(struct fl_store *s, const char *topic, fl_store_cb cb, void *data)
{
    if (!key_ok(topic, NAME_MAX_))
        return FL_EINVAL;
    return s->ops->topic_delete(s, topic, cb, data);
}

int fl_store_topic_info(struct fl_store *s, const char *topic, fl_store_cb cb, void *data)
{
    if (!key_ok(topic, NAME_MAX_))
        return FL_EINVAL;
    return s->ops->topic_info(s, topic, cb, data);
}

int fl_store_topics(struct fl_store *s, const char *prefix, const struct fl_page *page,
                    fl_store_cb cb, void *data)
{
    struct fl_page p;
    if (!opt_ok(prefix, NAME_MAX_) || !page_ok(page, &p))
        return FL_EINVAL;
    return s->ops->topics(s, prefix ? prefix : "", &p, cb, data);
}

int fl_store_publish(struct fl_store *s, const char *topic, const char *headers, const char *msg_id,
                     const void *payload, size_t len, fl_store_cb cb, void *data)
{
    if (!key_ok(topic, NAME_MAX_) || (payload == NULL && len > 0) || !opt_ok(msg_id, NAME_MAX_))
        return FL_EINVAL;
    if (len > s->opts.max_value_bytes)
        return FL_ETOOBIG;
    return s->ops->publish(s, topic, headers ? headers : "{}", msg_id && *msg_id ? msg_id : NULL,
                           payload ? payload : "", len, cb, data);
}

int fl_store_topic_read(struct fl_store *s, const char *topic, uint64_t from_seq, size_t max,
                        fl_store_cb cb, void *data)
{
    if (!key_ok(topic, NAME_MAX_) || max > FL_PAGE_MAX)
        return FL_EINVAL;
    return s->ops->topic_read(s, topic, from_seq, max ? max : FL_PAGE_DEFAULT, cb, data);
}

int fl_store_message_find(struct fl_store *s, const char *prefix, const char *msg_id,
                          fl_store_cb cb, void *data)
{
    if (!opt_ok(prefix, NAME_MAX_) || !key_ok(msg_id, NAME_MAX_))
        return FL_EINVAL;
    return s->ops->message_find(s, prefix ? prefix : "", msg_id, cb, data);
}

int fl_store_message_ids(struct fl_store *s, const char *prefix, const struct fl_page *page,
                         fl_store_cb cb, void *data)
{
    struct fl_page p;
    if (!opt_ok(prefix, NAME_MAX_) || !page_ok(page, &p))
        return FL_EINVAL;
    return s->ops->message_ids(s, prefix ? prefix : "", &p, cb, data);
}

int fl_store_topic_watch(struct fl_store *s, const char *topic, fl_store_cb cb, void *data,
                         struct fl_store_watch **out)
{
    if (!key_ok(topic, NAME_MAX_) || cb == NULL || out == NULL)
        return FL_EINVAL;
    return s->ops->topic_watch(s, topic, cb, data, out);
}

int fl_store_consumer_create(struct fl_store *s, const char *topic, const char *consumer,
                             const struct fl_consumer_config *cfg, fl_store_cb cb, void *data)
{
    if (!key_ok(topic, NAME_MAX_) || !key_ok(consumer, NAME_MAX_))
        return FL_EINVAL;
    struct fl_consumer_config c = {0};
    if (cfg != NULL)
        c = *cfg;
    if (c.ack_wait_ms < 0 || c.deliver > FL_DELIVER_FROM ||
        (c.deliver == FL_DELIVER_FROM && c.start_seq == 0))
        return FL_EINVAL;
    if (c.ack_wait_ms == 0)
        c.ack_wait_ms = 30000;
    if (c.max_deliver == 0)
        c.max_deliver = 5;
    if (c.deliver != FL_DELIVER_FROM)
        c.start_seq = 0;
    return s->ops->consumer_create(s, topic, consumer, &c, cb, data);
}

int fl_store_consumer_delete(struct fl_store *s, const char *topic, const char *consumer,
                             fl_store_cb cb, void *data)
{
    if (!key_ok(topic, NAME_MAX_) || !key_ok(consumer, NAME_MAX_))
        return FL_EINVAL;
    return s->ops->consumer_delete(s, topic, consumer, cb, data);
}

int fl_store_consumer_info(struct fl_store *s, const char *topic, const char *consumer,
                           fl_store_cb cb, void *data)
{
    if (!key_ok(topic, NAME_MAX_) || !key_ok(consumer, NAME_MAX_))
        return FL_EINVAL;
    return s->ops->consumer_info(s, topic, consumer, cb, data);
}

int fl_store_consumers(struct fl_store *s, const char *topic, const struct fl_page *page,
                       fl_store_cb cb, void *data)
{
    struct fl_page p;
    if (!key_ok(topic, NAME_MAX_) || !page_ok(page, &p))
        return FL_EINVAL;
    return s->ops->consumers(s, topic, &p, cb, data);
}

int fl_store_fetch(struct fl_store *s, const char *topic, const char *consumer, size_t max,
                   fl_store_cb cb, void *data)
{
    if (!key_ok(topic, NAME_MAX_) || !key_ok(consumer, NAME_MAX_) || max == 0 || max > FETCH_MAX)
        return FL_EINVAL;
    return s->ops->fetch(s, topic, consumer, max, cb, data);
}

int fl_store_ack(struct fl_store *s, const char *topic, const char *consumer, uint64_t seq,
                 enum fl_ack_kind kind, int64_t delay_ms, const char *reason, fl_store_cb cb,
                 void *data)
{
    if (!key_ok(topic, NAME_MAX_) || !key_ok(consumer, NAME_MAX_) || seq == 0 || kind < FL_ACK ||
        kind > FL_DEAD || !opt_ok(reason, REASON_MAX))
        return FL_EINVAL;
    return s->ops->ack(s, topic, consumer, seq, kind, delay_ms > 0 ? delay_ms : 0,
                       reason && *reason ? reason : NULL, cb, data);
}

int fl_store_dead(struct fl_store *s, const char *topic, const char *consumer,
                  const struct fl_page *page, fl_store_cb cb, void *data)
{
    struct fl_page p;
    if (!key_ok(topic, NAME_MAX_) || !key_ok(consumer, NAME_MAX_) || !page_ok(page, &p))
        return FL_EINVAL;
    return s->ops->dead(s, topic, consumer, &p, cb, data);
}

int fl_store_redrive(struct fl_store *s, const char *topic, const char *consumer, uint64_t seq,
                     fl_store_cb cb, void *data)
{
    if (!key_ok(topic, NAME_MAX_) || !key_ok(consumer, NAME_MAX_))
        return FL_EINVAL;
    return s->ops->redrive(s, topic, consumer, seq, cb, data);
}

int fl_store_purge(struct fl_store *s, const char *topic, const char *consumer, uint64_t seq,
                   fl_store_cb cb, void *data)
{
    if (!key_ok(topic, NAME_MAX_) || !key_ok(consumer, NAME_MAX_))
        return FL_EINVAL;
    return s->ops->purge(s, topic, consumer, seq, cb, data);
}

int fl_store_notify(struct fl_store *s, const char *topic, const char *consumer, fl_store_cb cb,
                    void *data, struct fl_store_watch **out)
{
    if (!key_ok(topic, NAME_MAX_) || !key_ok(consumer, NAME_MAX_) || cb == NULL || out == NULL)
        return FL_EINVAL;
    return s->ops->notify(s, topic, consumer, cb, data, out);
}

static bool ttl_ok(int64_t ttl_ms)
{
    return ttl_ms > 0 && ttl_ms <= LEASE_TTL_MAX;
}

int fl_store_lease_acquire(struct fl_store *s, const char *name, const char *owner, int64_t ttl_ms,
                           fl_store_cb cb, void *data)
{
    if (!key_ok(name, NAME_MAX_) || !key_ok(owner, NAME_MAX_) || !ttl_ok(ttl_ms))
        return FL_EINVAL;
    return s->ops->lease_acquire(s, name, owner, ttl_ms, cb, data);
}

int fl_store_lease_renew(struct fl_store *s, const char *name, uint64_t revision, int64_t ttl_ms,
                         fl_store_cb cb, void *data)
{
    if (!key_ok(name, NAME_MAX_) || revision == 0 || !ttl_ok(ttl_ms))
        return FL_EINVAL;
    return s->ops->lease_renew(s, name, revision, ttl_ms, cb, data);
}

int fl_store_lease_release(struct fl_store *s, const char *name, uint64_t revision, fl_store_cb cb,
                           void *data)
{
    if (!key_ok(name, NAME_MAX_) || revision == 0)
        return FL_EINVAL;
    return s->ops->lease_release(s, name, revision, cb, data);
}

int fl_store_lease_get(struct fl_store *s, const char *name, fl_store_cb cb, void *data)
{
    if (!key_ok(name, NAME_MAX_))
        return FL_EINVAL;
    return s->ops->lease_get(s, name, cb, data);
}
