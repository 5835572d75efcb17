/*
 * The SQLite backend's face: its constructor, its table of operations,
 * and closing. Each operation copies its (already checked, see store.c)
 * arguments into a job and queues it to the writer or the reader thread
 * (sqlite_threads.c), which runs it (sqlite_ops.c) and hands it back to
 * the loop for its callback. The on-disk format is specified in
 * sqlite_schema.c.
 */
#include "store/sqlite.h"
#include "store/sqlite_internal.h"

#include "base/error.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct fl_sqlite_store *from(struct fl_store *s)
{
    return (struct fl_sqlite_store *)s;
}

static char *copy(const char *s)
{
    return s ? fl_strndup(s, strlen(s)) : NULL;
}

/* A job for op on the store, its names copied (a, b, c may be NULL). */
static struct fl_sqlite_job *job_new(enum fl_sqlite_op op, const char *a, const char *b,
                                     const char *c, fl_store_cb cb, void *data)
{
    struct fl_sqlite_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->op = op;
    j->cb = cb;
    j->data = data;
    j->s1 = copy(a);
    j->s2 = copy(b);
    j->s3 = copy(c);
    if ((a && !j->s1) || (b && !j->s2) || (c && !j->s3)) {
        fl_sqlite_job_free(j);
        return NULL;
    }
    return j;
}

/* Set a list's page (NULL: unpaged). */
static bool job_page(struct fl_sqlite_job *j, const struct fl_page *page)
{
    if (page == NULL)
        return true;
    j->paged = true;
    j->i5 = (int64_t)page->limit;
    j->after = copy(page->after);
    return j->after != NULL;
}

/* Queue j (on the writer or the reader); frees it and returns the error
 * if ok is false (an allocation failed) or the store is closing. */
static int queue(struct fl_store *s, struct fl_sqlite_job *j, bool write, bool ok)
{
    if (j == NULL)
        return FL_ENOMEM;
    if (!ok) {
        fl_sqlite_job_free(j);
        return FL_ENOMEM;
    }
    int rc = fl_sqlite_submit(from(s), j, write);
    if (rc < 0)
        fl_sqlite_job_free(j);
    return rc;
}

static int simple(struct fl_store *s, enum fl_sqlite_op op, bool write, const char *a,
                  const char *b, fl_store_cb cb, void *data)
{
    return queue(s, job_new(op, a, b, NULL, cb, data), write, true);
}

/* A write that also takes a number (an expected revision, a sequence). */
static int with_number(struct fl_store *s, enum fl_sqlite_op op, const char *a, const char *b,
                       uint64_t u1, fl_store_cb cb, void *data)
{
    struct fl_sqlite_job *j = job_new(op, a, b, NULL, cb, data);
    if (j != NULL)
        j->u1 = u1;
    return queue(s, j, true, true);
}

/* A read of a page (NULL: every one). */
static int paged(struct fl_store *s, enum fl_sqlite_op op, const char *a, const char *b,
                 const struct fl_page *page, fl_store_cb cb, void *data)
{
    struct fl_sqlite_job *j = job_new(op, a, b, NULL, cb, data);
    return queue(s, j, false, j && job_page(j, page));
}

/* ---- resources ---- */

static int sq_put(struct fl_store *s, const char *kind, const char *name, const char *json,
                  size_t len, uint64_t expect, fl_store_cb cb, void *data)
{
    struct fl_sqlite_job *j = job_new(OP_PUT, kind, name, NULL, cb, data);
    if (j != NULL) {
        j->blob = fl_strndup(json, len);
        j->blob_len = len;
        j->u1 = expect;
    }
    return queue(s, j, true, j && j->blob);
}

static int sq_get(struct fl_store *s, const char *kind, const char *name, fl_store_cb cb,
                  void *data)
{
    return simple(s, OP_GET, false, kind, name, cb, data);
}

static int sq_list(struct fl_store *s, const char *kind, const char *prefix,
                   const struct fl_page *page, fl_store_cb cb, void *data)
{
    return paged(s, OP_LIST, kind, prefix, page, cb, data);
}

static int sq_delete(struct fl_store *s, const char *kind, const char *name, uint64_t expect,
                     fl_store_cb cb, void *data)
{
    return with_number(s, OP_DELETE, kind, name, expect, cb, data);
}

/* A watch of any kind, on the store's list (freed after unwatch). */
static int watch_new(struct fl_store *s, enum fl_sqlite_watch_kind kind, const char *name,
                     const char *consumer, fl_store_cb cb, void *data, struct fl_sqlite_watch **out)
{
    struct fl_sqlite_store *ss = from(s);
    if (ss->closing)
        return FL_ECLOSED;
    struct fl_sqlite_watch *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return FL_ENOMEM;
    w->base.store = s;
    w->kind = kind;
    w->name = copy(name);
    w->consumer = copy(consumer);
    w->cb = cb;
    w->data = data;
    if ((name && !w->name) || (consumer && !w->consumer)) {
        fl_sqlite_watch_free(w);
        return FL_ENOMEM;
    }
    w->next = ss->watches;
    ss->watches = w;
    *out = w;
    return 0;
}

static int sq_watch(struct fl_store *s, const char *kind, uint64_t from_rev, fl_store_cb cb,
                    void *data, struct fl_store_watch **out)
{
    struct fl_sqlite_watch *w;
    int rc = watch_new(s, WATCH_CHANGES, kind, NULL, cb, data, &w);
    if (rc < 0)
        return rc;
    w->last = from_rev;
    *out = &w->base;
    fl_sqlite_watch_read(w);
    return 0;
}

static void sq_unwatch(struct fl_store_watch *base)
{
    struct fl_sqlite_watch *w = (struct fl_sqlite_watch *)base;
    w->dead = true; /* freed by the loop's next sweep, once no read refers to it */
    uv_async_send(&from(base->store)->async);
}

/* ---- event streams ---- */

static int sq_append(struct fl_store *s, const char *stream, const struct fl_event_in *events,
                     size_t n, uint64_t expect, const char *lease, uint64_t revision,
                     fl_store_cb cb, void *data)
{
    struct fl_sqlite_job *j = job_new(OP_APPEND, stream, lease, NULL, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->events = calloc(n, sizeof(*j->events));
    bool ok = j->events != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        j->events[i].type = copy(events[i].type);
        j->events[i].data = fl_strndup(events[i].data, events[i].len);
        j->events[i].len = events[i].len;
        j->nevents = i + 1;
        ok = j->events[i].type && j->events[i].data;
    }
    j->u1 = expect;
    j->u2 = revision;
    return queue(s, j, true, ok);
}

/* A read of name (a stream, a topic) from a sequence, at most max. */
static int read_from(struct fl_store *s, enum fl_sqlite_op op, const char *name, uint64_t from_seq,
                     size_t max, fl_store_cb cb, void *data)
{
    struct fl_sqlite_job *j = job_new(op, name, NULL, NULL, cb, data);
    if (j != NULL) {
        j->u1 = from_seq;
        j->i1 = (int64_t)max;
    }
    return queue(s, j, false, true);
}

static int sq_read(struct fl_store *s, const char *stream, uint64_t from_seq, size_t max,
                   fl_store_cb cb, void *data)
{
    return read_from(s, OP_READ, stream, from_seq, max, cb, data);
}

static int sq_streams(struct fl_store *s, const char *prefix, const struct fl_page *page,
                      fl_store_cb cb, void *data)
{
    return paged(s, OP_STREAMS, prefix, NULL, page, cb, data);
}

static int sq_stream_delete(struct fl_store *s, const char *stream, fl_store_cb cb, void *data)
{
    return simple(s, OP_STREAM_DELETE, true, stream, NULL, cb, data);
}

static int sq_subscribe(struct fl_store *s, const char *name, bool prefix, fl_store_cb cb,
                        void *data, struct fl_store_watch **out)
{
    struct fl_sqlite_watch *w;
    int rc = watch_new(s, WATCH_STREAMS, name, NULL, cb, data, &w);
    if (rc == 0) {
        w->prefix = prefix;
        *out = &w->base;
    }
    return rc;
}

/* ---- topics ---- */

static int sq_topic_create(struct fl_store *s, const char *topic,
                           const struct fl_topic_limits *limits, fl_store_cb cb, void *data)
{
    struct fl_sqlite_job *j = job_new(OP_TOPIC_CREATE, topic, NULL, NULL, cb, data);
    if (j != NULL) {
        j->i1 = (int64_t)limits->max_msgs;
        j->i2 = (int64_t)limits->max_bytes;
        j->i3 = limits->max_age_ms;
        j->i4 = limits->dup_window_ms;
        j->u1 = limits->interest;
    }
    return queue(s, j, true, true);
}

static int sq_topic_delete(struct fl_store *s, const char *topic, fl_store_cb cb, void *data)
{
    return simple(s, OP_TOPIC_DELETE, true, topic, NULL, cb, data);
}

static int sq_topic_info(struct fl_store *s, const char *topic, fl_store_cb cb, void *data)
{
    return simple(s, OP_TOPIC_INFO, false, topic, NULL, cb, data);
}

static int sq_topics(struct fl_store *s, const char *prefix, const struct fl_page *page,
                     fl_store_cb cb, void *data)
{
    return paged(s, OP_TOPICS, prefix, NULL, page, cb, data);
}

static int sq_publish(struct fl_store *s, const char *topic, const char *headers,
                      const char *msg_id, const void *payload, size_t len, fl_store_cb cb,
                      void *data)
{
    struct fl_sqlite_job *j = job_new(OP_PUBLISH, topic, msg_id, headers, cb, data);
    if (j != NULL) {
        j->blob = fl_strndup(payload, len);
        j->blob_len = len;
    }
    return queue(s, j, true, j && j->blob);
}

static int sq_topic_read(struct fl_store *s, const char *topic, uint64_t from_seq, size_t max,
                         fl_store_cb cb, void *data)
{
    return read_from(s, OP_TOPIC_READ, topic, from_seq, max, cb, data);
}

static int sq_message_find(struct fl_store *s, const char *prefix, const char *msg_id,
                           fl_store_cb cb, void *data)
{
    return simple(s, OP_MESSAGE_FIND, false, prefix, msg_id, cb, data);
}

static int sq_message_ids(struct fl_store *s, const char *prefix, const struct fl_page *page,
                          fl_store_cb cb, void *data)
{
    return paged(s, OP_MESSAGE_IDS, prefix, NULL, page, cb, data);
}

static int sq_topic_watch(struct fl_store *s, const char *topic, fl_store_cb cb, void *data,
                          struct fl_store_watch **out)
{
    struct fl_sqlite_watch *w;
    int rc = watch_new(s, WATCH_TOPIC, topic, NULL, cb, data, &w);
    if (rc == 0)
        *out = &w->base;
    return rc;
}

static int sq_consumer_create(struct fl_store *s, const char *topic, const char *consumer,
                              const struct fl_consumer_config *cfg, fl_store_cb cb, void *data)
{
    struct fl_sqlite_job *j = job_new(OP_CONSUMER_CREATE, topic, consumer, NULL, cb, data);
    if (j != NULL) {
        j->i1 = cfg->ack_wait_ms;
        j->i2 = cfg->max_deliver;
        j->i3 = cfg->max_ack_pending;
        j->i4 = cfg->deliver;
        j->u1 = cfg->start_seq;
    }
    return queue(s, j, true, true);
}

static int sq_consumer_delete(struct fl_store *s, const char *topic, const char *consumer,
                              fl_store_cb cb, void *data)
{
    return simple(s, OP_CONSUMER_DELETE, true, topic, consumer, cb, data);
}

static int sq_consumer_info(struct fl_store *s, const char *topic, const char *consumer,
                            fl_store_cb cb, void *data)
{
    return simple(s, OP_CONSUMER_INFO, false, topic, consumer, cb, data);
}

static int sq_consumers(struct fl_store *s, const char *topic, const struct fl_page *page,
                        fl_store_cb cb, void *data)
{
    return paged(s, OP_CONSUMERS, topic, NULL, page, cb, data);
}

static int sq_fetch(struct fl_store *s, const char *topic, const char *consumer, size_t max,
                    fl_store_cb cb, void *data)
{
    struct fl_sqlite_job *j = job_new(OP_FETCH, topic, consumer, NULL, cb, data);
    if (j != NULL)
        j->i1 = (int64_t)max;
    return queue(s, j, true, true);
}

static int sq_ack(struct fl_store *s, const char *topic, const char *consumer, uint64_t seq,
                  enum fl_ack_kind kind, int64_t delay_ms, const char *reason, fl_store_cb cb,
                  void *data)
{
    struct fl_sqlite_job *j = job_new(OP_ACK, topic, consumer, reason, cb, data);
    if (j != NULL) {
        j->u1 = seq;
        j->i1 = kind;
        j->i2 = delay_ms;
    }
    return queue(s, j, true, true);
}

static int sq_dead(struct fl_store *s, const char *topic, const char *consumer,
                   const struct fl_page *page, fl_store_cb cb, void *data)
{
    return paged(s, OP_DEAD, topic, consumer, page, cb, data);
}

static int sq_redrive(struct fl_store *s, const char *topic, const char *consumer, uint64_t seq,
                      fl_store_cb cb, void *data)
{
    return with_number(s, OP_REDRIVE, topic, consumer, seq, cb, data);
}

static int sq_purge(struct fl_store *s, const char *topic, const char *consumer, uint64_t seq,
                    fl_store_cb cb, void *data)
{
    return with_number(s, OP_PURGE, topic, consumer, seq, cb, data);
}

static int sq_notify(struct fl_store *s, const char *topic, const char *consumer, fl_store_cb cb,
                     void *data, struct fl_store_watch **out)
{
    struct fl_sqlite_watch *w;
    int rc = watch_new(s, WATCH_NOTIFY, topic, consumer, cb, data, &w);
    if (rc < 0)
        return rc;
    *out = &w->base;
    /* messages may be waiting already: say so on the next turn */
    uv_timer_start(&from(s)->due_timer, fl_sqlite_on_due, 0, 0);
    return 0;
}

/* ---- leases ---- */

static int sq_lease_acquire(struct fl_store *s, const char *name, const char *owner, int64_t ttl_ms,
                            fl_store_cb cb, void *data)
{
    struct fl_sqlite_job *j = job_new(OP_LEASE_ACQUIRE, name, owner, NULL, cb, data);
    if (j != NULL)
        j->i1 = ttl_ms;
    return queue(s, j, true, true);
}

static int sq_lease_renew(struct fl_store *s, const char *name, uint64_t revision, int64_t ttl_ms,
                          fl_store_cb cb, void *data)
{
    struct fl_sqlite_job *j = job_new(OP_LEASE_RENEW, name, NULL, NULL, cb, data);
    if (j != NULL) {
        j->u1 = revision;
        j->i1 = ttl_ms;
    }
    return queue(s, j, true, true);
}

static int sq_lease_release(struct fl_store *s, const char *name, uint64_t revision, fl_store_cb cb,
                            void *data)
{
    return with_number(s, OP_LEASE_RELEASE, name, NULL, revision, cb, data);
}

static int sq_lease_get(struct fl_store *s, const char *name, fl_store_cb cb, void *data)
{
    return simple(s, OP_LEASE_GET, false, name, NULL, cb, data);
}

/* ---- opening and closing ---- */

static const char *sq_describe(struct fl_store *s)
{
    return from(s)->description;
}

static void close_worker_db(struct fl_sqlite_worker *w)
{
    fl_sqlite_finalize_all(w);
    sqlite3_close(w->db);
    w->db = NULL;
}

static void handle_closed(uv_handle_t *h)
{
    struct fl_sqlite_store *s = h->data;
    if (--s->handles_open > 0)
        return;
    while (s->watches != NULL) {
        struct fl_sqlite_watch *w = s->watches;
        s->watches = w->next;
        fl_sqlite_watch_free(w);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->writer.wake);
    pthread_cond_destroy(&s->reader.wake);
    close(s->lock_fd);
    void (*done)(void *) = s->close_done;
    void *data = s->close_data;
    free(s);
    if (done != NULL)
        done(data);
}

static void stop_threads(struct fl_sqlite_store *s, int started)
{
    struct fl_sqlite_worker *workers[2] = {&s->writer, &s->reader};
    pthread_mutex_lock(&s->lock);
    s->writer.stop = s->reader.stop = true;
    pthread_cond_signal(&s->writer.wake);
    pthread_cond_signal(&s->reader.wake);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < started; i++)
        pthread_join(workers[i]->thread, NULL);
}

void fl_sqlite_close_if_idle(struct fl_sqlite_store *s)
{
    if (!s->closing || s->handles_open != 2 || s->writer.db == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    bool idle = s->writer.head == NULL && s->reader.head == NULL && s->done_head == NULL;
    pthread_mutex_unlock(&s->lock);
    if (!idle)
        return;
    /* The threads finish what they hold, then stop. */
    stop_threads(s, 2);
    /* Anything they finished meanwhile still gets its callback. */
    fl_sqlite_process_done(s);
    close_worker_db(&s->reader);
    close_worker_db(&s->writer);
    uv_close((uv_handle_t *)&s->async, handle_closed);
    uv_close((uv_handle_t *)&s->due_timer, handle_closed);
}

static void sq_close(struct fl_store *base, void (*done)(void *data), void *data)
{
    struct fl_sqlite_store *s = from(base);
    s->closing = true;
    s->close_done = done;
    s->close_data = data;
    for (struct fl_sqlite_watch *w = s->watches; w != NULL; w = w->next)
        w->dead = true;
    uv_async_send(&s->async); /* finish from the loop, after queued callbacks */
}

static const struct fl_store_ops sqlite_ops = {
    .caps = FL_STORE_CAP_GAPLESS | FL_STORE_CAP_ATOMIC_APPEND | FL_STORE_CAP_FENCE_AND_EXPECT |
            FL_STORE_CAP_REDRIVE_IN_PLACE,
    .close = sq_close,
    .describe = sq_describe,
    .unwatch = sq_unwatch,
    .put = sq_put,
    .get = sq_get,
    .list = sq_list,
    .del = sq_delete,
    .watch = sq_watch,
    .append = sq_append,
    .read = sq_read,
    .streams = sq_streams,
    .stream_delete = sq_stream_delete,
    .subscribe = sq_subscribe,
    .topic_create = sq_topic_create,
    .topic_delete = sq_topic_delete,
    .topic_info = sq_topic_info,
    .topics = sq_topics,
    .publish = sq_publish,
    .topic_read = sq_topic_read,
    .topic_watch = sq_topic_watch,
    .message_find = sq_message_find,
    .message_ids = sq_message_ids,
    .consumer_create = sq_consumer_create,
    .consumer_delete = sq_consumer_delete,
    .consumer_info = sq_consumer_info,
    .consumers = sq_consumers,
    .fetch = sq_fetch,
    .ack = sq_ack,
    .dead = sq_dead,
    .redrive = sq_redrive,
    .purge = sq_purge,
    .notify = sq_notify,
    .lease_acquire = sq_lease_acquire,
    .lease_renew = sq_lease_renew,
    .lease_release = sq_lease_release,
    .lease_get = sq_lease_get,
};

/* Open both connections and prepare everything they run. */
static int open_connections(struct fl_sqlite_store *s, char *err, size_t errsize)
{
    int rc = fl_sqlite_open_db(s->path, false, &s->writer.db, err, errsize);
    if (rc == 0)
        rc = fl_sqlite_prepare_schema(s->writer.db, s->path, err, errsize);
    if (rc == 0)
        rc = fl_sqlite_configure_writer(s->writer.db, s->path, err, errsize);
    if (rc == 0)
        rc = fl_sqlite_open_db(s->path, true, &s->reader.db, err, errsize);
    if (rc == 0)
        rc = fl_sqlite_prepare_all(&s->writer, err, errsize);
    if (rc == 0)
        rc = fl_sqlite_prepare_all(&s->reader, err, errsize);
    if (rc == 0) {
        s->writer.gseq = (uint64_t)fl_sqlite_meta_get(&s->writer, "gseq");
        s->writer.recent = fl_sqlite_count_recent(s->writer.db);
    }
    return rc;
}

int fl_store_sqlite_open(uv_loop_t *loop, const char *dir, const struct fl_store_options *opts,
                         struct fl_store **out, char *err, size_t errsize)
{
    char scratch[8];
    if (err == NULL) {
        err = scratch;
        errsize = sizeof(scratch);
    }
    struct fl_sqlite_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return FL_ENOMEM;
    s->base.ops = &sqlite_ops;
    if (opts != NULL)
        s->base.opts = *opts;
    else
        fl_store_options_init(&s->base.opts);
    s->loop = loop;
    s->lock_fd = -1;
    s->writer.writer = true;
    s->writer.store = s->reader.store = s;
    int rc = fl_strlcpy(s->dir, dir, sizeof(s->dir)) < sizeof(s->dir)
                 ? fl_path_join(s->path, sizeof(s->path), dir, "flint.db")
                 : -ENAMETOOLONG;
    if (rc < 0) {
        snprintf(err, errsize, "the data directory's name is too long: '%.200s...'", dir);
        goto out_free;
    }
    snprintf(s->description, sizeof(s->description), "sqlite %s", s->path);

    rc = fl_sqlite_lock_dir(dir, &s->lock_fd, err, errsize);
    if (rc < 0)
        goto out_free;
    rc = open_connections(s, err, errsize);
    if (rc < 0)
        goto out_close;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->writer.wake, NULL);
    pthread_cond_init(&s->reader.wake, NULL);
    /* the threads wait for jobs (none yet: the loop's handles come after
     * them, so that a thread that cannot start leaves none to close) */
    struct fl_sqlite_worker *workers[2] = {&s->writer, &s->reader};
    int started = 0;
    for (; started < 2; started++) {
        int e = pthread_create(&workers[started]->thread, NULL, fl_sqlite_worker_main,
                               workers[started]);
        if (e != 0) {
            snprintf(err, errsize, "cannot start the store's %s thread: %s",
                     started == 0 ? "writer" : "reader", strerror(e));
            rc = -e;
            goto out_stop_threads;
        }
    }
    uv_async_init(loop, &s->async, fl_sqlite_on_async);
    s->async.data = s;
    uv_timer_init(loop, &s->due_timer);
    s->due_timer.data = s;
    uv_unref((uv_handle_t *)&s->due_timer);
    s->handles_open = 2;
    /* Redeliveries due from before a restart are found on the first batch. */
    struct fl_sqlite_job *probe = job_new(OP_DUE, NULL, NULL, NULL, NULL, NULL);
    if (probe != NULL)
        fl_sqlite_submit(s, probe, true);
    *out = &s->base;
    return 0;

out_stop_threads:
    /* the threads started so far stop before their databases close */
    stop_threads(s, started);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->writer.wake);
    pthread_cond_destroy(&s->reader.wake);
out_close:
    if (s->reader.db != NULL)
        close_worker_db(&s->reader);
    if (s->writer.db != NULL)
        close_worker_db(&s->writer);
    close(s->lock_fd);
out_free:
    free(s);
    return rc;
}
