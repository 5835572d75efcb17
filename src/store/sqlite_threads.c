/*
 * The SQLite backend's threads, and the loop side of its jobs.
 *
 * Writes go to one writer thread that group-commits: it takes every job
 * queued while it was busy, runs them in one transaction (each in its own
 * savepoint, so one failing job does not undo the others) and commits
 * once, which is one fsync of the WAL (journal_mode=WAL,
 * synchronous=FULL). If SQLite itself ends the transaction (a full disk,
 * an I/O error: sqlite3_get_autocommit() turns true), nothing of the batch
 * is durable and every job of it fails with that error, which is logged
 * with SQLite's message and the system's errno. Reads go to a reader
 * thread with its own connection; in WAL mode it never waits behind the
 * writer.
 *
 * Finished jobs go back to the loop through a uv_async; their callbacks
 * run there, after the commit, in commit order. Then, still on the loop:
 * resource watches read the change log on, subscribers to streams hear of
 * appends, and consumers' notify callbacks hear of publishes (and, from a
 * timer, of redeliveries coming due). The loop thread never touches the
 * disk.
 */
#include "store/sqlite_internal.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/str.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- the worker threads ---- */

static void post_done(struct fl_sqlite_store *s, struct fl_sqlite_job *first,
                      struct fl_sqlite_job *last)
{
    pthread_mutex_lock(&s->lock);
    if (s->done_tail != NULL)
        s->done_tail->next = first;
    else
        s->done_head = first;
    s->done_tail = last;
    pthread_mutex_unlock(&s->lock);
    uv_async_send(&s->async);
}

/* Errors that are the store's own failures (not an answer such as
 * FL_ECONFLICT or FL_ENOENT): the operator hears of them. */
static bool is_failure(int err)
{
    return err == FL_ENOSPC || err == FL_EIO || err == FL_ECORRUPT || err == FL_ENOMEM ||
           err == FL_EACCES || err == FL_ELOCKED;
}

/* SQLite's message for the last failure, with the system's errno. */
static void failure_text(struct fl_sqlite_worker *w, char *why, size_t size)
{
    int e = sqlite3_system_errno(w->db);
    snprintf(why, size, "%s%s%s%s", sqlite3_errmsg(w->db), e ? " (" : "", e ? strerror(e) : "",
             e ? ")" : "");
}

static void report_failure(struct fl_sqlite_worker *w, int err, const char *what, const char *why)
{
    struct fl_sqlite_store *s = w->store;
    char q[600];
    pthread_mutex_lock(&s->lock);
    bool first = err == FL_ECORRUPT && !s->corrupt_told;
    if (first)
        s->corrupt_told = true;
    pthread_mutex_unlock(&s->lock);
    if (first) {
        fl_log(FL_LOG_ERROR, "store",
               "THE STORE IS CORRUPT: stop flintd and restore the file from a backup (or move it "
               "aside to start empty)",
               "file=%s during=%s err=%s", s->path, what, fl_log_quote(q, sizeof(q), why));
        return;
    }
    FL_LOG_LIMITED(FL_LOG_ERROR, "store", "store operation failed",
                   "file=%s during=%s err=%s code=%s", s->path, what,
                   fl_log_quote(q, sizeof(q), why), fl_errname(err));
}

/* The writer: one transaction, one fsync, for everything queued. */
static void write_batch(struct fl_sqlite_store *s, struct fl_sqlite_worker *w,
                        struct fl_sqlite_job *batch)
{
    int64_t now = fl_clock_wall_ms();
    struct fl_sqlite_job *last = batch;
    char why[512] = "";
    const char *what = "begin";
    int rc = fl_sqlite_exec(w, FL_SQL_BEGIN);
    if (rc < 0)
        failure_text(w, why, sizeof(why));
    bool changed = false;
    uint64_t gseq_before = w->gseq;
    int64_t recent_before = w->recent;
    for (struct fl_sqlite_job *j = batch; j != NULL; j = j->next) {
        last = j;
        if (rc < 0) {
            j->err = rc;
            continue;
        }
        /* A savepoint lets a failing job undo its own writes; an append of
         * one event has a single write, so it cannot fail half-way. */
        bool savepoint = !(j->op == OP_APPEND && j->nevents == 1);
        if (savepoint)
            fl_sqlite_exec(w, FL_SQL_SAVEPOINT);
        uint64_t gseq_job = w->gseq;
        int64_t recent_job = w->recent;
        j->err = fl_sqlite_run_job(w, j, now);
        if (sqlite3_get_autocommit(w->db)) {
            /* SQLite rolled the whole transaction back */
            rc = j->err < 0 ? j->err : FL_EIO;
            what = "a write";
            failure_text(w, why, sizeof(why));
            continue;
        }
        if (j->err < 0) {
            if (is_failure(j->err)) {
                char one[512];
                failure_text(w, one, sizeof(one));
                report_failure(w, j->err, "a write", one);
            }
            w->gseq = gseq_job;
            w->recent = recent_job;
            if (savepoint)
                fl_sqlite_exec(w, FL_SQL_ROLLBACK_TO);
            if (!j->keep_on_error)
                fl_sqlite_free_results(j);
            j->changed = j->published = false;
            memset(&j->res, 0, sizeof(j->res));
        }
        if (savepoint)
            fl_sqlite_exec(w, FL_SQL_RELEASE);
        changed |= j->changed;
    }
    if (rc == 0) {
        rc = fl_sqlite_batch_end(s, w, changed);
        what = "the batch's end";
        if (rc == 0) {
            rc = fl_sqlite_exec(w, FL_SQL_COMMIT);
            what = "commit";
        }
        if (rc < 0)
            failure_text(w, why, sizeof(why)); /* before the rollback replaces it */
    }
    if (rc < 0) {
        if (!sqlite3_get_autocommit(w->db))
            fl_sqlite_exec(w, FL_SQL_ROLLBACK);
        report_failure(w, rc, what, why);
        /* nothing of the batch is durable: every job fails */
        w->gseq = gseq_before;
        w->recent = recent_before;
        w->gseq_dirty = false;
        for (struct fl_sqlite_job *j = batch; j != NULL; j = j->next) {
            if (j->err == 0 || !j->keep_on_error)
                fl_sqlite_free_results(j);
            if (j->err == 0)
                j->err = rc;
            j->changed = j->published = false;
        }
    }
    int64_t due = fl_sqlite_next_due(w);
    pthread_mutex_lock(&s->lock);
    s->next_due = due;
    pthread_mutex_unlock(&s->lock);
    post_done(s, batch, last);
}

static void read_batch(struct fl_sqlite_store *s, struct fl_sqlite_worker *w,
                       struct fl_sqlite_job *batch)
{
    int64_t now = fl_clock_wall_ms();
    struct fl_sqlite_job *last = batch;
    for (struct fl_sqlite_job *j = batch; j != NULL; j = j->next) {
        last = j;
        sqlite3_exec(w->db, "BEGIN", NULL, NULL, NULL);
        j->err = fl_sqlite_run_job(w, j, now);
        if (is_failure(j->err)) {
            char why[512];
            failure_text(w, why, sizeof(why));
            report_failure(w, j->err, "a read", why);
        }
        sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL);
        if (j->err < 0)
            fl_sqlite_free_results(j);
    }
    post_done(s, batch, last);
}

void *fl_sqlite_worker_main(void *arg)
{
    struct fl_sqlite_worker *w = arg;
    struct fl_sqlite_store *s = w->store;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (w->head == NULL && !w->stop)
            pthread_cond_wait(&w->wake, &s->lock);
        struct fl_sqlite_job *batch = w->head;
        w->head = w->tail = NULL;
        bool stop = w->stop;
        pthread_mutex_unlock(&s->lock);
        if (batch == NULL && stop)
            break;
        if (w->writer)
            write_batch(s, w, batch);
        else
            read_batch(s, w, batch);
    }
    return NULL;
}

/* ---- the loop side ---- */

void fl_sqlite_job_free(struct fl_sqlite_job *j)
{
    free(j->s1);
    free(j->s2);
    free(j->s3);
    free(j->after);
    free(j->blob);
    for (size_t i = 0; i < j->nevents; i++) {
        free((char *)j->events[i].type);
        free((char *)j->events[i].data);
    }
    free(j->events);
    fl_sqlite_free_results(j);
    free(j);
}

void fl_sqlite_watch_free(struct fl_sqlite_watch *w)
{
    free(w->name);
    free(w->consumer);
    free(w);
}

/* A watch's read of the change log came back. Dead watches are freed by
 * sweep_watches() once no read refers to them. */
static void on_changes(int err, const struct fl_store_result *res, void *data)
{
    struct fl_sqlite_watch *w = data;
    w->reading = false;
    if (w->dead)
        return;
    if (err == FL_ERANGE) {
        /* compacted away: say so once, then follow from the newest revision */
        w->last = res->seq;
        w->cb(FL_ERANGE, NULL, w->data);
        w->more = true;
    } else if (err < 0) {
        w->cb(err, NULL, w->data);
    } else {
        for (size_t i = 0; i < res->n && !w->dead; i++) {
            if (res->records[i].seq <= w->last)
                continue;
            struct fl_store_result one = {
                .seq = res->records[i].seq, .records = &res->records[i], .n = 1};
            w->last = res->records[i].seq;
            w->cb(0, &one, w->data);
        }
        if (res->n == 10000)
            w->more = true; /* a page was full: read on */
    }
    if (w->more && !w->dead) {
        w->more = false;
        fl_sqlite_watch_read(w);
    }
}

void fl_sqlite_watch_read(struct fl_sqlite_watch *w)
{
    struct fl_sqlite_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        w->cb(FL_ENOMEM, NULL, w->data);
        return;
    }
    struct fl_sqlite_store *s = (struct fl_sqlite_store *)w->base.store;
    j->op = OP_CHANGES;
    j->s1 = w->name ? fl_strndup(w->name, strlen(w->name)) : NULL;
    j->u1 = w->last;
    j->cb = on_changes;
    j->data = w;
    w->reading = true;
    if ((w->name != NULL && j->s1 == NULL) || fl_sqlite_submit(s, j, false) < 0) {
        w->reading = false;
        fl_sqlite_job_free(j);
    }
}

static void notify_consumers(struct fl_sqlite_store *s, const char *topic)
{
    for (struct fl_sqlite_watch *w = s->watches; w != NULL; w = w->next) {
        if (w->kind != WATCH_NOTIFY || w->dead)
            continue;
        if (topic == NULL || strcmp(w->name, topic) == 0) {
            struct fl_store_result none = {0};
            w->cb(0, &none, w->data);
        }
    }
}

/* Tell the stream's subscribers of an append that is now durable. */
static void tell_subscribers(struct fl_sqlite_store *s, const struct fl_sqlite_job *j)
{
    struct fl_record rec = {.key = j->s1,
                            .type = "",
                            .data = "",
                            .headers = "{}",
                            .reason = "",
                            .seq = j->res.seq + j->nevents - 1,
                            .gseq = j->res.gseq + j->nevents - 1};
    struct fl_store_result res = {.seq = rec.seq, .records = &rec, .n = 1};
    for (struct fl_sqlite_watch *w = s->watches; w != NULL; w = w->next) {
        if (w->kind != WATCH_STREAMS || w->dead)
            continue;
        bool match =
            w->prefix ? strncmp(j->s1, w->name, strlen(w->name)) == 0 : strcmp(j->s1, w->name) == 0;
        if (match)
            w->cb(0, &res, w->data);
    }
}

static void arm_due_timer(struct fl_sqlite_store *s);

void fl_sqlite_on_due(uv_timer_t *t)
{
    struct fl_sqlite_store *s = t->data;
    notify_consumers(s, NULL);
    /* A deadline still ahead (the timer may have fired early for a new
     * notify) is waited for again; a past one waits for the consumer's
     * next fetch, which recomputes it. */
    pthread_mutex_lock(&s->lock);
    int64_t due = s->next_due;
    pthread_mutex_unlock(&s->lock);
    if (due > fl_clock_wall_ms())
        arm_due_timer(s);
}

static void arm_due_timer(struct fl_sqlite_store *s)
{
    pthread_mutex_lock(&s->lock);
    int64_t due = s->next_due;
    pthread_mutex_unlock(&s->lock);
    if (due == 0 || s->closing) {
        uv_timer_stop(&s->due_timer);
        return;
    }
    int64_t delay = due - fl_clock_wall_ms();
    uv_timer_start(&s->due_timer, fl_sqlite_on_due, delay > 0 ? (uint64_t)delay + 1 : 1, 0);
}

/* Free unwatched watches that no read refers to any more. Runs only at
 * the end of on_async, never while the list is being walked. */
static void sweep_watches(struct fl_sqlite_store *s)
{
    for (struct fl_sqlite_watch **p = &s->watches; *p != NULL;) {
        struct fl_sqlite_watch *w = *p;
        if (w->dead && !w->reading) {
            *p = w->next;
            fl_sqlite_watch_free(w);
        } else {
            p = &w->next;
        }
    }
}

/* Run the callbacks of finished jobs, in commit order. */
void fl_sqlite_process_done(struct fl_sqlite_store *s)
{
    pthread_mutex_lock(&s->lock);
    struct fl_sqlite_job *list = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->lock);
    bool changed = false, wrote = false;
    while (list != NULL) {
        struct fl_sqlite_job *j = list;
        list = j->next;
        j->res.records = j->records;
        j->res.topics = j->topics;
        j->res.consumers = j->consumers;
        /* n: infos, records, or a count the job gave itself (a purge's) */
        j->res.n = j->topics || j->consumers ? j->ninfo : j->records ? j->nrecords : j->res.n;
        j->res.next = j->cursor;
        if (j->cb != NULL)
            j->cb(j->err, &j->res, j->data);
        changed |= j->changed;
        wrote |= j->on_writer;
        if (j->op == OP_APPEND && j->err == 0)
            tell_subscribers(s, j);
        if (j->published)
            notify_consumers(s, j->s1);
        fl_sqlite_job_free(j);
    }
    if (changed && !s->closing) {
        for (struct fl_sqlite_watch *w = s->watches; w != NULL; w = w->next) {
            if (w->kind != WATCH_CHANGES || w->dead)
                continue;
            if (w->reading)
                w->more = true;
            else
                fl_sqlite_watch_read(w);
        }
    }
    if (wrote)
        arm_due_timer(s);
}

void fl_sqlite_on_async(uv_async_t *a)
{
    struct fl_sqlite_store *s = a->data;
    fl_sqlite_process_done(s);
    sweep_watches(s);
    fl_sqlite_close_if_idle(s);
}

int fl_sqlite_submit(struct fl_sqlite_store *s, struct fl_sqlite_job *j, bool write)
{
    if (s->closing)
        return FL_ECLOSED;
    j->store = s;
    j->on_writer = write;
    struct fl_sqlite_worker *w = write ? &s->writer : &s->reader;
    pthread_mutex_lock(&s->lock);
    bool idle = w->head == NULL; /* else it has been woken already */
    if (w->tail != NULL)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    /* only this worker: waking the other for nothing cost a futex wake-up
     * per write and a thread scheduled to find no work */
    if (idle)
        pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&s->lock);
    return 0;
}
