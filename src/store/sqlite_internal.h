/*
 * Inside the SQLite backend: what its files share. Not for use outside
 * src/store/sqlite*.c.
 *
 *   sqlite.c          the constructor, the table of operations, closing;
 *                     each operation becomes a job (its inputs copied)
 *   sqlite_schema.c   the on-disk format (its specification), creation,
 *                     checks and migrations, the directory lock
 *   sqlite_ops.c      the SQL statements and what each job does with them
 *                     (run on a worker thread, inside a transaction)
 *   sqlite_threads.c  the writer and reader threads, group commit, and the
 *                     loop side: callbacks, watches, notifications
 *
 * A job's life: made and filled on the loop (sqlite.c), queued to the
 * writer or the reader (fl_sqlite_submit), run there (fl_sqlite_run_job),
 * handed back to the loop, where its callback runs and it is freed
 * (sqlite_threads.c). Nothing but the worker threads touches the
 * databases after open.
 */
#ifndef FLINT_STORE_SQLITE_INTERNAL_H
#define FLINT_STORE_SQLITE_INTERNAL_H

#include "store/backend.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>

enum fl_sqlite_op {
    OP_PUT,
    OP_GET,
    OP_LIST,
    OP_DELETE,
    OP_CHANGES,
    OP_APPEND,
    OP_READ,
    OP_STREAMS,
    OP_STREAM_DELETE,
    OP_TOPIC_CREATE,
    OP_TOPIC_DELETE,
    OP_TOPIC_INFO,
    OP_TOPICS,
    OP_TOPIC_READ,
    OP_MESSAGE_FIND,
    OP_MESSAGE_IDS,
    OP_PUBLISH,
    OP_CONSUMER_CREATE,
    OP_CONSUMER_DELETE,
    OP_CONSUMER_INFO,
    OP_CONSUMERS,
    OP_FETCH,
    OP_ACK,
    OP_DEAD,
    OP_REDRIVE,
    OP_PURGE,
    OP_LEASE_ACQUIRE,
    OP_LEASE_RENEW,
    OP_LEASE_RELEASE,
    OP_LEASE_GET,
    OP_DUE, /* finds the first redelivery deadline (after open) */
};

struct fl_sqlite_job {
    struct fl_sqlite_job *next;
    enum fl_sqlite_op op;
    struct fl_sqlite_store *store;
    fl_store_cb cb;
    void *data;
    /* inputs */
    char *s1, *s2, *s3; /* kind/stream/topic/lease, name/consumer/prefix/owner/lease, msg id /
                           headers / reason */
    char *blob;
    size_t blob_len;
    struct fl_event_in *events;
    size_t nevents;
    uint64_t u1, u2; /* expect, from, seq, revision */
    int64_t i1, i2, i3, i4, i5;
    bool paged;  /* lists: page limit in i5 (+1 to see if there is more), cursor in s3 */
    char *after; /* lists: the cursor */
    /* outputs */
    int err;
    struct fl_store_result res;
    struct fl_record *records;
    size_t nrecords, cap;
    struct fl_topic_info *topics;
    struct fl_consumer_info *consumers;
    size_t ninfo, infocap;
    char *cursor;       /* the next page's cursor (res->next) */
    bool keep_on_error; /* records describe the failure (a lease's holder) */
    bool on_writer;     /* ran on the writer thread */
    bool changed;       /* a resource change was committed (watches look) */
    bool published;     /* messages may be available on topic s1 */
};

enum fl_sqlite_watch_kind {
    WATCH_CHANGES, /* fl_store_watch */
    WATCH_NOTIFY,  /* fl_store_notify */
    WATCH_STREAMS, /* fl_store_subscribe */
    WATCH_TOPIC,   /* fl_store_topic_watch */
};

struct fl_sqlite_watch {
    struct fl_store_watch base;
    struct fl_sqlite_watch *next;
    enum fl_sqlite_watch_kind kind;
    char *name;     /* changes: the kind (NULL: all); notify, topic: the topic; streams: name or
                     * prefix */
    char *consumer; /* notify */
    bool prefix;    /* streams */
    uint64_t last;  /* changes: the last revision delivered */
    bool reading;   /* changes: a read of the log is under way */
    bool more;      /* changes: committed while reading */
    bool dead;      /* unwatched: freed once no read refers to it */
    fl_store_cb cb;
    void *data;
};

#define FL_SQLITE_STMTS 96

struct fl_sqlite_worker {
    pthread_t thread;
    sqlite3 *db;
    sqlite3_stmt *stmts[FL_SQLITE_STMTS];
    struct fl_sqlite_job *head, *tail;
    pthread_cond_t wake; /* signalled when head turns non-NULL, or stop */
    bool writer;
    bool stop;
    uint64_t gseq;   /* writer: the last global event sequence given */
    bool gseq_dirty; /* writer: gseq moved in this batch */
    int64_t recent;  /* writer: rows in recent (an estimate after a failed commit) */
    struct fl_sqlite_store *store;
};

struct fl_sqlite_store {
    struct fl_store base;
    uv_loop_t *loop;
    char dir[4096];
    char path[4200];
    char description[4300];
    int lock_fd;
    pthread_mutex_t lock; /* the workers' queues, the done list, next_due */
    struct fl_sqlite_worker writer, reader;
    struct fl_sqlite_job *done_head, *done_tail; /* finished, waiting for the loop */
    int64_t next_due;                            /* earliest redelivery deadline (ms), 0: none */
    bool corrupt_told;                           /* the corruption was logged */
    uv_async_t async;
    uv_timer_t due_timer;
    struct fl_sqlite_watch *watches;
    bool closing;
    void (*close_done)(void *data);
    void *close_data;
    int handles_open;
};

/* ---- sqlite_schema.c ---- */

/* Take DIR/flint.lock (flock, the owner's pid in it); FL_ELOCKED if
 * another process holds it. */
int fl_sqlite_lock_dir(const char *dir, int *fd_out, char *err, size_t errsize);

/* Open path (readonly: for the reader), extended result codes, a busy
 * timeout. */
int fl_sqlite_open_db(const char *path, bool readonly, sqlite3 **out, char *err, size_t errsize);

/* Make db a flint store of the current schema: create it when empty,
 * migrate an older one, refuse a foreign, newer or corrupt one (the whole
 * file is checked: PRAGMA quick_check). err names the file and what to do. */
int fl_sqlite_prepare_schema(sqlite3 *db, const char *path, char *err, size_t errsize);

/* WAL mode, synchronous=FULL, the writer's cache. */
int fl_sqlite_configure_writer(sqlite3 *db, const char *path, char *err, size_t errsize);

/* An FL_E* code for an SQLite result code. */
int fl_sqlite_err(int rc);

/* ---- sqlite_ops.c ---- */

/* Prepare every statement once, at open, so that none can fail later. */
int fl_sqlite_prepare_all(struct fl_sqlite_worker *w, char *err, size_t errsize);
void fl_sqlite_finalize_all(struct fl_sqlite_worker *w);

/* Run j on w, inside the caller's transaction; now is the batch's wall
 * clock. 0 or an FL_E* code (j's writes are the caller's to undo). */
int fl_sqlite_run_job(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t now);

/* The writer's housekeeping for a batch: compact the change log, move
 * recent events, save the global sequence. */
int fl_sqlite_batch_end(struct fl_sqlite_store *s, struct fl_sqlite_worker *w, bool changed);

/* The earliest redelivery deadline (ms), 0 if none. */
int64_t fl_sqlite_next_due(struct fl_sqlite_worker *w);

int64_t fl_sqlite_meta_get(struct fl_sqlite_worker *w, const char *key);
int64_t fl_sqlite_count_recent(sqlite3 *db);
int fl_sqlite_exec(struct fl_sqlite_worker *w, int id); /* enum sql: BEGIN, COMMIT... */
void fl_sqlite_free_results(struct fl_sqlite_job *j);

/* statements fl_sqlite_exec knows by number */
enum {
    FL_SQL_BEGIN,
    FL_SQL_COMMIT,
    FL_SQL_ROLLBACK,
    FL_SQL_SAVEPOINT,
    FL_SQL_RELEASE,
    FL_SQL_ROLLBACK_TO
};

/* ---- sqlite_threads.c ---- */

void *fl_sqlite_worker_main(void *arg); /* arg: the worker */
int fl_sqlite_submit(struct fl_sqlite_store *s, struct fl_sqlite_job *j, bool write);
void fl_sqlite_on_async(uv_async_t *a);
void fl_sqlite_on_due(uv_timer_t *t);
void fl_sqlite_job_free(struct fl_sqlite_job *j);
void fl_sqlite_watch_read(struct fl_sqlite_watch *w);
void fl_sqlite_watch_free(struct fl_sqlite_watch *w);
void fl_sqlite_process_done(struct fl_sqlite_store *s);

/* ---- sqlite.c ---- */

/* Closing: once nothing is queued, stop the threads and close (on the loop). */
void fl_sqlite_close_if_idle(struct fl_sqlite_store *s);

#endif
