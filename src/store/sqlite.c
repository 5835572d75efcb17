/*
 * The embedded store: one SQLite database, DIR/flint.db.
 *
 * Threads. Writes go to one writer thread that group-commits: it takes
 * every job queued while it was busy, runs them in one transaction (each
 * in its own savepoint, so one failing job does not undo the others) and
 * commits once, which is one fsync of the WAL (journal_mode=WAL,
 * synchronous=FULL). Reads go to a reader thread with its own connection;
 * in WAL mode it never waits behind the writer. Finished jobs go back to
 * the loop through a uv_async; their callbacks run there, after the
 * commit, in commit order. The loop thread never touches the disk.
 *
 * Locking. DIR/flint.lock is held with flock(LOCK_EX) while the store is
 * open, and holds the owner's pid, so a second flintd on the same
 * directory is refused instead of sharing the database.
 *
 * On-disk format (PRAGMA application_id = 0x464c4e54 "FLNT",
 * PRAGMA user_version = schema version, now 2; 1 had no streams and
 * recent tables, and migrates by building streams from events):
 *
 *   meta(key, value)        'revision': the last resource revision given;
 *                           'compacted': changes at or below it are gone;
 *                           'gseq': the last global event sequence given
 *   resources(kind, name, value, revision, created, updated)
 *                           one row per live resource; revision is the
 *                           revision of its last put
 *   changes(rev, kind, name, op, value, ts)
 *                           one row per put (op 1, with the value) or
 *                           delete (op 2), rev = the revision it made;
 *                           kept for watches, the oldest compacted beyond
 *                           the retention
 *   streams(name, last_seq)  one row per stream that has events: its last
 *                           sequence (seq runs 1..last_seq without gaps)
 *   recent(gseq, stream, seq, ts, type, data)
 *                           the newest events, indexed by (stream, seq) in
 *                           a tree small enough that a batch of appends to
 *                           many streams dirties few pages
 *   events(gseq, stream, seq, ts, type, data)
 *                           the older events: once recent holds
 *                           RECENT_MAX rows, a batch moves them all here in
 *                           (stream, seq) order, so each stream's index
 *                           page is written once per move instead of once
 *                           per commit. gseq (the rowid) is global and
 *                           increasing; a unique index on (stream, seq).
 *                           A stream's events are those of events with
 *                           seq <= some k, then those of recent after k
 *   topics(name, max_msgs, max_bytes, max_age, dup_window, last_seq,
 *          bytes, count)    bytes and count describe the messages kept
 *   messages(topic, seq, ts, msg_id, headers, data)
 *                           seq increasing per topic; the oldest are
 *                           removed past the topic's limits
 *   dedup(topic, msg_id, seq, ts)
 *                           ids seen within the topic's window
 *   consumers(topic, name, ack_wait, max_deliver, next_seq)
 *                           next_seq: the first message never delivered
 *   deliveries(topic, consumer, seq, count, deadline, dead)
 *                           a delivered, unacknowledged message: count
 *                           deliveries so far, due again at deadline (ms);
 *                           dead = 1 once parked after max_deliver
 *
 * Invariants: every resource revision appears in changes until compacted;
 * meta.revision >= every revision; an append's events are in one
 * transaction, so a stream never shows part of an append.
 */
#include "store/store.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/str.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define APPLICATION_ID 0x464c4e54
#define SCHEMA_VERSION 2
#define RECENT_MAX     4096 /* rows of recent that make a batch move them to events */

enum op {
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
    OP_TOPIC_INFO,
    OP_PUBLISH,
    OP_CONSUMER_CREATE,
    OP_FETCH,
    OP_ACK,
    OP_DEAD,
    OP_REDRIVE,
};

struct job {
    struct job *next;
    enum op op;
    struct fl_store *store;
    fl_store_cb cb;
    void *data;
    /* inputs */
    char *s1, *s2, *s3; /* kind/stream/topic, name/consumer/prefix, msg id / headers */
    char *blob;
    size_t blob_len;
    struct fl_event_in *events;
    size_t nevents;
    uint64_t u1; /* expect, from, seq */
    int64_t i1, i2, i3, i4;
    struct fl_store_watch *watch; /* OP_CHANGES for a watch */
    /* outputs */
    int err;
    struct fl_store_result res;
    struct fl_record *records;
    size_t nrecords, cap;
    bool on_writer; /* ran on the writer thread */
    bool changed;   /* a resource change was committed (watches look) */
    bool published; /* messages became available on topic s1 */
};

struct fl_store_watch {
    struct fl_store_watch *next;
    struct fl_store *store;
    bool notify;    /* a consumer notification, not a resource watch */
    char *kind;     /* NULL: every kind; for notify: the topic */
    char *consumer; /* notify */
    uint64_t last;  /* the last revision delivered */
    bool reading;   /* a changes read is under way */
    bool more;      /* changes were committed while reading */
    bool dead;      /* unwatched: freed once no read refers to it */
    fl_store_cb cb;
    void *data;
};

struct worker {
    pthread_t thread;
    sqlite3 *db;
    sqlite3_stmt *stmts[64];
    struct job *head, *tail;
    bool writer;
    bool stop;
    uint64_t gseq;   /* writer: the last global event sequence given */
    bool gseq_dirty; /* writer: gseq moved in this batch */
    int64_t recent;  /* writer: rows in recent (an estimate after a failed commit) */
};

struct fl_store {
    uv_loop_t *loop;
    struct fl_store_options opts;
    char dir[4096];
    char path[4200];
    char description[4300];
    int lock_fd;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct worker writer, reader;
    struct job *done_head, *done_tail; /* finished, waiting for the loop */
    int64_t next_due;                  /* earliest redelivery deadline (ms), 0: none */
    uv_async_t async;
    uv_timer_t due_timer;
    struct fl_store_watch *watches;
    bool closing;
    void (*close_done)(void *data);
    void *close_data;
    int handles_open;
};

void fl_store_options_init(struct fl_store_options *opts)
{
    opts->max_value_bytes = 1u << 20;
    opts->change_retention = 100000;
}

const char *fl_store_describe(struct fl_store *s)
{
    return s->description;
}

/* ---- SQL ---- */

enum sql {
    SQL_BEGIN,
    SQL_COMMIT,
    SQL_ROLLBACK,
    SQL_SAVEPOINT,
    SQL_RELEASE,
    SQL_ROLLBACK_TO,
    SQL_META_GET,
    SQL_META_SET,
    SQL_RES_GET,
    SQL_RES_PUT,
    SQL_RES_DELETE,
    SQL_RES_LIST,
    SQL_CHANGE_ADD,
    SQL_CHANGES_FROM,
    SQL_CHANGES_FROM_KIND,
    SQL_CHANGES_COMPACT,
    SQL_STREAM_GET,
    SQL_STREAM_NEXT,
    SQL_STREAM_SET,
    SQL_STREAM_DEL,
    SQL_EVENT_ADD,
    SQL_EVENTS_READ,
    SQL_RECENT_READ,
    SQL_EVENTS_DEL,
    SQL_RECENT_DEL,
    SQL_RECENT_MOVE,
    SQL_RECENT_CLEAR,
    SQL_TOPIC_GET,
    SQL_TOPIC_PUT,
    SQL_TOPIC_UPDATE,
    SQL_MSG_ADD,
    SQL_MSG_OLDEST,
    SQL_MSG_DEL,
    SQL_DEDUP_GET,
    SQL_DEDUP_PUT,
    SQL_DEDUP_PRUNE,
    SQL_CONSUMER_GET,
    SQL_CONSUMER_PUT,
    SQL_CONSUMER_ADVANCE,
    SQL_DUE,
    SQL_DELIVERY_SET,
    SQL_DELIVERY_DEAD,
    SQL_DELIVERY_GET,
    SQL_DELIVERY_DEL,
    SQL_MSG_GET,
    SQL_MSGS_FROM,
    SQL_DEAD_LIST,
    SQL_REDRIVE_ONE,
    SQL_REDRIVE_ALL,
    SQL_NEXT_DUE,
    SQL_COUNT,
};

static const char *const sql_text[SQL_COUNT] = {
    [SQL_BEGIN] = "BEGIN IMMEDIATE",
    [SQL_COMMIT] = "COMMIT",
    [SQL_ROLLBACK] = "ROLLBACK",
    [SQL_SAVEPOINT] = "SAVEPOINT job",
    [SQL_RELEASE] = "RELEASE job",
    [SQL_ROLLBACK_TO] = "ROLLBACK TO job",
    [SQL_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [SQL_META_SET] = "INSERT INTO meta(key, value) VALUES (?1, ?2) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [SQL_RES_GET] = "SELECT value, revision, created, updated FROM resources "
                    "WHERE kind = ?1 AND name = ?2",
    [SQL_RES_PUT] = "INSERT INTO resources(kind, name, value, revision, created, updated) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT(kind, name) DO UPDATE SET "
                    "value = excluded.value, revision = excluded.revision, "
                    "updated = excluded.updated",
    [SQL_RES_DELETE] = "DELETE FROM resources WHERE kind = ?1 AND name = ?2",
    [SQL_RES_LIST] = "SELECT name, value, revision, created, updated FROM resources "
                     "WHERE kind = ?1 AND substr(name, 1, length(?2)) = ?2 ORDER BY name",
    [SQL_CHANGE_ADD] = "INSERT INTO changes(rev, kind, name, op, value, ts) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [SQL_CHANGES_FROM] = "SELECT rev, kind, name, op, value, ts FROM changes WHERE rev > ?1 "
                         "ORDER BY rev LIMIT 10000",
    [SQL_CHANGES_FROM_KIND] = "SELECT rev, kind, name, op, value, ts FROM changes "
                              "WHERE rev > ?1 AND kind = ?2 ORDER BY rev LIMIT 10000",
    [SQL_CHANGES_COMPACT] = "DELETE FROM changes WHERE rev <= ?1",
    [SQL_STREAM_GET] = "SELECT last_seq FROM streams WHERE name = ?1",
    [SQL_STREAM_NEXT] = "SELECT name, last_seq FROM streams WHERE name > ?1 ORDER BY name LIMIT 1",
    [SQL_STREAM_SET] = "INSERT INTO streams(name, last_seq) VALUES (?1, ?2) "
                       "ON CONFLICT(name) DO UPDATE SET last_seq = excluded.last_seq",
    [SQL_STREAM_DEL] = "DELETE FROM streams WHERE name = ?1",
    [SQL_EVENT_ADD] = "INSERT INTO recent(stream, seq, gseq, ts, type, data) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [SQL_EVENTS_READ] = "SELECT seq, gseq, ts, type, data FROM events WHERE stream = ?1 "
                        "AND seq >= ?2 ORDER BY seq LIMIT ?3",
    [SQL_RECENT_READ] = "SELECT seq, gseq, ts, type, data FROM recent WHERE stream = ?1 "
                        "AND seq >= ?2 ORDER BY seq LIMIT ?3",
    [SQL_EVENTS_DEL] = "DELETE FROM events WHERE stream = ?1",
    [SQL_RECENT_DEL] = "DELETE FROM recent WHERE stream = ?1",
    [SQL_RECENT_MOVE] = "INSERT INTO events(gseq, stream, seq, ts, type, data) "
                        "SELECT gseq, stream, seq, ts, type, data FROM recent ORDER BY stream, seq",
    [SQL_RECENT_CLEAR] = "DELETE FROM recent",
    [SQL_TOPIC_GET] = "SELECT max_msgs, max_bytes, max_age, dup_window, last_seq, bytes, count "
                      "FROM topics WHERE name = ?1",
    [SQL_TOPIC_PUT] = "INSERT INTO topics(name, max_msgs, max_bytes, max_age, dup_window, "
                      "last_seq, bytes, count) VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, 0) "
                      "ON CONFLICT(name) DO UPDATE SET max_msgs = excluded.max_msgs, "
                      "max_bytes = excluded.max_bytes, max_age = excluded.max_age, "
                      "dup_window = excluded.dup_window",
    [SQL_TOPIC_UPDATE] = "UPDATE topics SET last_seq = ?2, bytes = ?3, count = ?4 "
                         "WHERE name = ?1",
    [SQL_MSG_ADD] = "INSERT INTO messages(topic, seq, ts, msg_id, headers, data) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [SQL_MSG_OLDEST] = "SELECT seq, ts, length(data) FROM messages WHERE topic = ?1 "
                       "ORDER BY seq LIMIT 1",
    [SQL_MSG_DEL] = "DELETE FROM messages WHERE topic = ?1 AND seq = ?2",
    [SQL_DEDUP_GET] = "SELECT seq, ts FROM dedup WHERE topic = ?1 AND msg_id = ?2",
    [SQL_DEDUP_PUT] = "INSERT INTO dedup(topic, msg_id, seq, ts) VALUES (?1, ?2, ?3, ?4) "
                      "ON CONFLICT(topic, msg_id) DO UPDATE SET seq = excluded.seq, "
                      "ts = excluded.ts",
    [SQL_DEDUP_PRUNE] = "DELETE FROM dedup WHERE topic = ?1 AND ts < ?2",
    [SQL_CONSUMER_GET] = "SELECT ack_wait, max_deliver, next_seq FROM consumers "
                         "WHERE topic = ?1 AND name = ?2",
    [SQL_CONSUMER_PUT] = "INSERT INTO consumers(topic, name, ack_wait, max_deliver, next_seq) "
                         "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(topic, name) DO UPDATE SET "
                         "ack_wait = excluded.ack_wait, max_deliver = excluded.max_deliver",
    [SQL_CONSUMER_ADVANCE] = "UPDATE consumers SET next_seq = ?3 WHERE topic = ?1 AND name = ?2",
    [SQL_DUE] = "SELECT seq, count FROM deliveries WHERE topic = ?1 AND consumer = ?2 "
                "AND dead = 0 AND deadline <= ?3 ORDER BY seq LIMIT ?4",
    [SQL_DELIVERY_SET] = "INSERT INTO deliveries(topic, consumer, seq, count, deadline, dead) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, 0) ON CONFLICT(topic, consumer, seq) "
                         "DO UPDATE SET count = excluded.count, deadline = excluded.deadline, "
                         "dead = 0",
    [SQL_DELIVERY_DEAD] = "UPDATE deliveries SET dead = 1 WHERE topic = ?1 AND consumer = ?2 "
                          "AND seq = ?3",
    [SQL_DELIVERY_GET] = "SELECT count, deadline, dead FROM deliveries WHERE topic = ?1 "
                         "AND consumer = ?2 AND seq = ?3",
    [SQL_DELIVERY_DEL] = "DELETE FROM deliveries WHERE topic = ?1 AND consumer = ?2 AND seq = ?3",
    [SQL_MSG_GET] = "SELECT ts, msg_id, headers, data FROM messages WHERE topic = ?1 AND seq = ?2",
    [SQL_MSGS_FROM] = "SELECT seq, ts, msg_id, headers, data FROM messages WHERE topic = ?1 "
                      "AND seq >= ?2 ORDER BY seq LIMIT ?3",
    [SQL_DEAD_LIST] = "SELECT d.seq, d.count, m.ts, m.msg_id, m.headers, m.data FROM deliveries d "
                      "JOIN messages m ON m.topic = d.topic AND m.seq = d.seq "
                      "WHERE d.topic = ?1 AND d.consumer = ?2 AND d.dead = 1 ORDER BY d.seq",
    [SQL_REDRIVE_ONE] = "UPDATE deliveries SET dead = 0, count = 0, deadline = 0 "
                        "WHERE topic = ?1 AND consumer = ?2 AND seq = ?3 AND dead = 1",
    [SQL_REDRIVE_ALL] = "UPDATE deliveries SET dead = 0, count = 0, deadline = 0 "
                        "WHERE topic = ?1 AND consumer = ?2 AND dead = 1",
    [SQL_NEXT_DUE] = "SELECT min(deadline) FROM deliveries WHERE dead = 0",
};

#define STREAMS_SCHEMA                                                                             \
    "CREATE TABLE streams(name TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;"        \
    "CREATE TABLE recent(gseq INTEGER PRIMARY KEY, stream TEXT NOT NULL, seq INTEGER NOT NULL,"    \
    " ts INTEGER NOT NULL, type TEXT NOT NULL, data BLOB NOT NULL);"                               \
    "CREATE UNIQUE INDEX recent_stream ON recent(stream, seq);"

/* From schema 1: the streams, from the events. */
static const char migrate_2[] = STREAMS_SCHEMA
    "INSERT INTO streams(name, last_seq) SELECT stream, max(seq) FROM events GROUP BY stream;"
    "PRAGMA user_version = 2;";

static const char schema[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE resources(kind TEXT NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL,"
    " revision INTEGER NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL,"
    " PRIMARY KEY(kind, name)) WITHOUT ROWID;"
    "CREATE TABLE changes(rev INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,"
    " op INTEGER NOT NULL, value BLOB, ts INTEGER NOT NULL);"
    "CREATE INDEX changes_kind ON changes(kind, rev);"
    "CREATE TABLE events(gseq INTEGER PRIMARY KEY, stream TEXT NOT NULL, seq INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, type TEXT NOT NULL, data BLOB NOT NULL);"
    "CREATE UNIQUE INDEX events_stream ON events(stream, seq);" STREAMS_SCHEMA
    "CREATE TABLE topics(name TEXT PRIMARY KEY, max_msgs INTEGER NOT NULL,"
    " max_bytes INTEGER NOT NULL, max_age INTEGER NOT NULL, dup_window INTEGER NOT NULL,"
    " last_seq INTEGER NOT NULL, bytes INTEGER NOT NULL, count INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE messages(topic TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " msg_id TEXT, headers TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY(topic, seq))"
    " WITHOUT ROWID;"
    "CREATE TABLE dedup(topic TEXT NOT NULL, msg_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, PRIMARY KEY(topic, msg_id)) WITHOUT ROWID;"
    "CREATE TABLE consumers(topic TEXT NOT NULL, name TEXT NOT NULL, ack_wait INTEGER NOT NULL,"
    " max_deliver INTEGER NOT NULL, next_seq INTEGER NOT NULL, PRIMARY KEY(topic, name))"
    " WITHOUT ROWID;"
    "CREATE TABLE deliveries(topic TEXT NOT NULL, consumer TEXT NOT NULL, seq INTEGER NOT NULL,"
    " count INTEGER NOT NULL, deadline INTEGER NOT NULL, dead INTEGER NOT NULL,"
    " PRIMARY KEY(topic, consumer, seq)) WITHOUT ROWID;"
    "CREATE INDEX deliveries_due ON deliveries(dead, deadline);"
    "INSERT INTO meta(key, value) VALUES ('revision', 0), ('compacted', 0), ('gseq', 0);";

static int sqlite_err(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_FULL:
        return FL_ENOSPC;
    case SQLITE_NOMEM:
        return FL_ENOMEM;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return FL_ECORRUPT;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return FL_EACCES;
    case SQLITE_TOOBIG:
        return FL_ETOOBIG;
    case SQLITE_CONSTRAINT:
        return FL_ECONFLICT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return FL_ELOCKED;
    default:
        return FL_EIO;
    }
}

/* Prepare every statement once, at open, so that none can fail later. */
static int prepare_all(struct worker *w, const char *path, char *err, size_t errsize)
{
    for (int i = 0; i < SQL_COUNT; i++) {
        int rc = sqlite3_prepare_v3(w->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &w->stmts[i],
                                    NULL);
        if (rc != SQLITE_OK) {
            snprintf(err, errsize, "'%s' does not have flint's schema or is corrupt: %s", path,
                     sqlite3_errmsg(w->db));
            return FL_ECORRUPT;
        }
    }
    return 0;
}

static sqlite3_stmt *stmt(struct worker *w, enum sql id)
{
    sqlite3_stmt *st = w->stmts[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

static int exec_simple(struct worker *w, enum sql id)
{
    sqlite3_stmt *st = stmt(w, id);
    if (st == NULL)
        return sqlite_err(sqlite3_errcode(w->db));
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sqlite_err(rc);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static int64_t meta_get(struct worker *w, const char *key)
{
    sqlite3_stmt *st = stmt(w, SQL_META_GET);
    bind_text(st, 1, key);
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return v;
}

static int meta_set(struct worker *w, const char *key, int64_t value)
{
    sqlite3_stmt *st = stmt(w, SQL_META_SET);
    bind_text(st, 1, key);
    sqlite3_bind_int64(st, 2, value);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sqlite_err(rc);
}

/* ---- results ---- */

static char *dup_column(sqlite3_stmt *st, int col, size_t *len)
{
    const void *p = sqlite3_column_blob(st, col);
    int n = sqlite3_column_bytes(st, col);
    char *s = fl_strndup(p ? p : "", (size_t)n);
    if (len != NULL)
        *len = (size_t)n;
    return s;
}

static struct fl_record *add_record(struct job *j)
{
    if (j->nrecords == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 8;
        struct fl_record *r = realloc(j->records, cap * sizeof(*r));
        if (r == NULL)
            return NULL;
        j->records = r;
        j->cap = cap;
    }
    struct fl_record *r = &j->records[j->nrecords++];
    memset(r, 0, sizeof(*r));
    return r;
}

static void free_records(struct job *j)
{
    for (size_t i = 0; i < j->nrecords; i++) {
        free((char *)j->records[i].key);
        free((char *)j->records[i].type);
        free((char *)j->records[i].data);
        free((char *)j->records[i].headers);
    }
    free(j->records);
    j->records = NULL;
    j->nrecords = j->cap = 0;
}

/* Fill in NULL strings so callers never see one. */
static int finish_record(struct fl_record *r)
{
    if (r->key == NULL)
        r->key = fl_strndup("", 0);
    if (r->type == NULL)
        r->type = fl_strndup("", 0);
    if (r->data == NULL)
        r->data = fl_strndup("", 0);
    if (r->headers == NULL)
        r->headers = fl_strndup("{}", 2);
    return r->key && r->type && r->data && r->headers ? 0 : FL_ENOMEM;
}

/* ---- resource operations ---- */

static int do_put(struct worker *w, struct job *j, int64_t now)
{
    sqlite3_stmt *st = stmt(w, SQL_RES_GET);
    bind_text(st, 1, j->s1);
    bind_text(st, 2, j->s2);
    uint64_t current = 0;
    int64_t created = now;
    if (sqlite3_step(st) == SQLITE_ROW) {
        current = (uint64_t)sqlite3_column_int64(st, 1);
        created = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    if (j->u1 != FL_REV_ANY && j->u1 != current)
        return FL_ECONFLICT;
    uint64_t rev = (uint64_t)meta_get(w, "revision") + 1;
    int rc = meta_set(w, "revision", (int64_t)rev);
    if (rc < 0)
        return rc;
    st = stmt(w, SQL_RES_PUT);
    bind_text(st, 1, j->s1);
    bind_text(st, 2, j->s2);
    sqlite3_bind_blob(st, 3, j->blob, (int)j->blob_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (int64_t)rev);
    sqlite3_bind_int64(st, 5, now);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sqlite_err(rc);
    (void)created;
    st = stmt(w, SQL_CHANGE_ADD);
    sqlite3_bind_int64(st, 1, (int64_t)rev);
    bind_text(st, 2, j->s1);
    bind_text(st, 3, j->s2);
    sqlite3_bind_int(st, 4, 1);
    sqlite3_bind_blob(st, 5, j->blob, (int)j->blob_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sqlite_err(rc);
    j->res.seq = rev;
    j->changed = true;
    return 0;
}

static int do_delete(struct worker *w, struct job *j, int64_t now)
{
    sqlite3_stmt *st = stmt(w, SQL_RES_GET);
    bind_text(st, 1, j->s1);
    bind_text(st, 2, j->s2);
    int step = sqlite3_step(st);
    uint64_t current = step == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 1) : 0;
    sqlite3_reset(st);
    if (step != SQLITE_ROW)
        return FL_ENOENT;
    if (j->u1 != FL_REV_ANY && j->u1 != current)
        return FL_ECONFLICT;
    uint64_t rev = (uint64_t)meta_get(w, "revision") + 1;
    int rc = meta_set(w, "revision", (int64_t)rev);
    if (rc < 0)
        return rc;
    st = stmt(w, SQL_RES_DELETE);
    bind_text(st, 1, j->s1);
    bind_text(st, 2, j->s2);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sqlite_err(rc);
    st = stmt(w, SQL_CHANGE_ADD);
    sqlite3_bind_int64(st, 1, (int64_t)rev);
    bind_text(st, 2, j->s1);
    bind_text(st, 3, j->s2);
    sqlite3_bind_int(st, 4, 2);
    sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, now);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sqlite_err(rc);
    j->res.seq = rev;
    j->changed = true;
    return 0;
}

static int resource_record(struct job *j, sqlite3_stmt *st, const char *name, int col)
{
    struct fl_record *r = add_record(j);
    if (r == NULL)
        return FL_ENOMEM;
    r->key = fl_strndup(name, strlen(name));
    r->type = fl_strndup(j->s1, strlen(j->s1));
    r->data = dup_column(st, col, &r->len);
    r->seq = (uint64_t)sqlite3_column_int64(st, col + 1);
    r->created_ms = sqlite3_column_int64(st, col + 2);
    r->ts_ms = sqlite3_column_int64(st, col + 3);
    return finish_record(r);
}

static int do_get(struct worker *w, struct job *j)
{
    sqlite3_stmt *st = stmt(w, SQL_RES_GET);
    bind_text(st, 1, j->s1);
    bind_text(st, 2, j->s2);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = resource_record(j, st, j->s2, 0);
    else
        rc = rc == SQLITE_DONE ? FL_ENOENT : sqlite_err(rc);
    sqlite3_reset(st);
    return rc;
}

static int do_list(struct worker *w, struct job *j)
{
    sqlite3_stmt *st = stmt(w, SQL_RES_LIST);
    bind_text(st, 1, j->s1);
    bind_text(st, 2, j->s2);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int err = resource_record(j, st, (const char *)sqlite3_column_text(st, 0), 1);
        if (err < 0) {
            sqlite3_reset(st);
            return err;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sqlite_err(rc);
}

static int do_changes(struct worker *w, struct job *j)
{
    if (j->u1 < (uint64_t)meta_get(w, "compacted")) {
        j->res.seq = (uint64_t)meta_get(w, "revision"); /* where to go on from */
        return FL_ERANGE;
    }
    sqlite3_stmt *st = stmt(w, j->s1 ? SQL_CHANGES_FROM_KIND : SQL_CHANGES_FROM);
    sqlite3_bind_int64(st, 1, (int64_t)j->u1);
    if (j->s1 != NULL)
        bind_text(st, 2, j->s1);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct fl_record *r = add_record(j);
        if (r == NULL) {
            sqlite3_reset(st);
            return FL_ENOMEM;
        }
        r->seq = (uint64_t)sqlite3_column_int64(st, 0);
        r->key = dup_column(st, 2, NULL);
        bool put = sqlite3_column_int(st, 3) == 1;
        /* type: "put"/"delete"; the kind goes in headers */
        r->type = fl_strndup(put ? "put" : "delete", put ? 3 : 6);
        r->headers = dup_column(st, 1, NULL);
        r->data = put ? dup_column(st, 4, &r->len) : NULL;
        r->ts_ms = sqlite3_column_int64(st, 5);
        if (finish_record(r) < 0) {
            sqlite3_reset(st);
            return FL_ENOMEM;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sqlite_err(rc);
}

/* ---- event streams ---- */

static uint64_t stream_last(struct worker *w, const char *stream)
{
    sqlite3_stmt *st = stmt(w, SQL_STREAM_GET);
    bind_text(st, 1, stream);
    uint64_t last = sqlite3_step(st) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return last;
}

static int do_append(struct worker *w, struct job *j, int64_t now)
{
    uint64_t last = stream_last(w, j->s1);
    if (j->u1 != FL_SEQ_ANY && j->u1 != last)
        return FL_ECONFLICT;
    /* The global sequence lives in the writer between commits; meta keeps
     * it durable (saved once per batch, see write_batch). */
    uint64_t gseq = w->gseq;
    for (size_t i = 0; i < j->nevents; i++) {
        sqlite3_stmt *st = stmt(w, SQL_EVENT_ADD);
        bind_text(st, 1, j->s1);
        sqlite3_bind_int64(st, 2, (int64_t)(last + 1 + i));
        sqlite3_bind_int64(st, 3, (int64_t)(gseq + 1 + i));
        sqlite3_bind_int64(st, 4, now);
        bind_text(st, 5, j->events[i].type);
        sqlite3_bind_blob(st, 6, j->events[i].data, (int)j->events[i].len, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return sqlite_err(rc);
    }
    sqlite3_stmt *st = stmt(w, SQL_STREAM_SET);
    bind_text(st, 1, j->s1);
    sqlite3_bind_int64(st, 2, (int64_t)(last + j->nevents));
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sqlite_err(rc);
    w->gseq = gseq + j->nevents;
    w->gseq_dirty = true;
    w->recent += j->nevents;
    j->res.seq = last + 1;
    j->res.gseq = gseq + 1;
    return 0;
}

/* Move every recent event to events (see the schema above). */
static int move_recent(struct worker *w)
{
    int rc = exec_simple(w, SQL_RECENT_MOVE);
    rc = rc ? rc : exec_simple(w, SQL_RECENT_CLEAR);
    if (rc == 0)
        w->recent = 0;
    return rc;
}

/* Up to *limit (-1: all) events of stream from seq on, from one table. */
static int read_events(struct worker *w, struct job *j, enum sql which, uint64_t from,
                       int64_t *limit)
{
    sqlite3_stmt *st = stmt(w, which);
    bind_text(st, 1, j->s1);
    sqlite3_bind_int64(st, 2, (int64_t)from);
    sqlite3_bind_int64(st, 3, *limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct fl_record *r = add_record(j);
        if (r == NULL) {
            sqlite3_reset(st);
            return FL_ENOMEM;
        }
        r->key = fl_strndup(j->s1, strlen(j->s1));
        r->seq = (uint64_t)sqlite3_column_int64(st, 0);
        r->gseq = (uint64_t)sqlite3_column_int64(st, 1);
        r->ts_ms = sqlite3_column_int64(st, 2);
        r->type = dup_column(st, 3, NULL);
        r->data = dup_column(st, 4, &r->len);
        if (finish_record(r) < 0) {
            sqlite3_reset(st);
            return FL_ENOMEM;
        }
        if (*limit > 0)
            (*limit)--;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sqlite_err(rc);
}

static int do_read(struct worker *w, struct job *j)
{
    int64_t limit = j->i1 > 0 ? j->i1 : -1;
    int rc = read_events(w, j, SQL_EVENTS_READ, j->u1, &limit);
    if (rc < 0 || limit == 0)
        return rc;
    uint64_t from = j->nrecords > 0 ? j->records[j->nrecords - 1].seq + 1 : j->u1;
    return read_events(w, j, SQL_RECENT_READ, from, &limit);
}

static int add_stream(struct worker *w, struct job *j, const char *name, uint64_t last)
{
    struct fl_record *r = add_record(j);
    if (r == NULL)
        return FL_ENOMEM;
    r->key = fl_strndup(name, strlen(name));
    r->seq = last;
    return finish_record(r);
}

/* Each stream once: a stream named exactly the prefix, then seek after the
 * previous name for the next one while names still start with the prefix. */
static int do_streams(struct worker *w, struct job *j)
{
    size_t plen = strlen(j->s1);
    int rc = 0;
    uint64_t last = plen > 0 ? stream_last(w, j->s1) : 0;
    if (last > 0)
        rc = add_stream(w, j, j->s1, last);
    char *prev = fl_strndup(j->s1, plen);
    if (prev == NULL)
        return FL_ENOMEM;
    while (rc == 0) {
        sqlite3_stmt *st = stmt(w, SQL_STREAM_NEXT);
        bind_text(st, 1, prev);
        if (sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_reset(st);
            break;
        }
        char *name = dup_column(st, 0, NULL);
        last = (uint64_t)sqlite3_column_int64(st, 1);
        sqlite3_reset(st);
        if (name == NULL) {
            rc = FL_ENOMEM;
            break;
        }
        if (strncmp(name, j->s1, plen) != 0) {
            free(name); /* past the prefix */
            break;
        }
        rc = add_stream(w, j, name, last);
        free(prev);
        prev = name;
    }
    free(prev);
    return rc;
}

static int do_stream_delete(struct worker *w, struct job *j)
{
    static const enum sql steps[] = {SQL_EVENTS_DEL, SQL_RECENT_DEL, SQL_STREAM_DEL};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        sqlite3_stmt *st = stmt(w, steps[i]);
        bind_text(st, 1, j->s1);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return sqlite_err(rc);
    }
    /* the streams row is the last step: whether it existed says it all */
    return sqlite3_changes(w->db) == 0 ? FL_ENOENT : 0;
}

/* ---- topics ---- */

struct topic_row {
    int64_t max_msgs, max_bytes, max_age, dup_window, last_seq, bytes, count;
};

static int topic_get(struct worker *w, const char *topic, struct topic_row *t)
{
    sqlite3_stmt *st = stmt(w, SQL_TOPIC_GET);
    bind_text(st, 1, topic);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        t->max_msgs = sqlite3_column_int64(st, 0);
        t->max_bytes = sqlite3_column_int64(st, 1);
        t->max_age = sqlite3_column_int64(st, 2);
        t->dup_window = sqlite3_column_int64(st, 3);
        t->last_seq = sqlite3_column_int64(st, 4);
        t->bytes = sqlite3_column_int64(st, 5);
        t->count = sqlite3_column_int64(st, 6);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? FL_ENOENT : sqlite_err(rc);
}

static int topic_save(struct worker *w, const char *topic, const struct topic_row *t)
{
    sqlite3_stmt *st = stmt(w, SQL_TOPIC_UPDATE);
    bind_text(st, 1, topic);
    sqlite3_bind_int64(st, 2, t->last_seq);
    sqlite3_bind_int64(st, 3, t->bytes);
    sqlite3_bind_int64(st, 4, t->count);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sqlite_err(rc);
}

/* Remove the oldest messages past the topic's limits. */
static int enforce_limits(struct worker *w, const char *topic, struct topic_row *t, int64_t now)
{
    for (;;) {
        sqlite3_stmt *st = stmt(w, SQL_MSG_OLDEST);
        bind_text(st, 1, topic);
        if (sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_reset(st);
            return 0;
        }
        int64_t seq = sqlite3_column_int64(st, 0), ts = sqlite3_column_int64(st, 1);
        int64_t size = sqlite3_column_int64(st, 2);
        sqlite3_reset(st);
        bool over = (t->max_msgs > 0 && t->count > t->max_msgs) ||
                    (t->max_bytes > 0 && t->bytes > t->max_bytes) ||
                    (t->max_age > 0 && ts < now - t->max_age);
        if (!over)
            return 0;
        st = stmt(w, SQL_MSG_DEL);
        bind_text(st, 1, topic);
        sqlite3_bind_int64(st, 2, seq);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return sqlite_err(rc);
        t->count--;
        t->bytes -= size;
    }
}

static int do_topic_create(struct worker *w, struct job *j)
{
    sqlite3_stmt *st = stmt(w, SQL_TOPIC_PUT);
    bind_text(st, 1, j->s1);
    sqlite3_bind_int64(st, 2, j->i1);
    sqlite3_bind_int64(st, 3, j->i2);
    sqlite3_bind_int64(st, 4, j->i3);
    sqlite3_bind_int64(st, 5, j->i4);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sqlite_err(rc);
}

static int do_topic_info(struct worker *w, struct job *j, int64_t now)
{
    struct topic_row t;
    int rc = topic_get(w, j->s1, &t);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = stmt(w, SQL_MSG_OLDEST);
    bind_text(st, 1, j->s1);
    int64_t first = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : t.last_seq + 1;
    sqlite3_reset(st);
    struct fl_record *r = add_record(j);
    if (r == NULL)
        return FL_ENOMEM;
    r->key = fl_strndup(j->s1, strlen(j->s1));
    r->seq = (uint64_t)first;
    r->gseq = (uint64_t)t.last_seq;
    r->len = (size_t)t.bytes;
    r->deliveries = (uint32_t)t.count;
    return finish_record(r);
}

static int do_publish(struct worker *w, struct job *j, int64_t now)
{
    struct topic_row t;
    int rc = topic_get(w, j->s1, &t);
    if (rc < 0)
        return rc;
    const char *msg_id = j->s2;
    if (msg_id != NULL && *msg_id != '\0') {
        sqlite3_stmt *st = stmt(w, SQL_DEDUP_GET);
        bind_text(st, 1, j->s1);
        bind_text(st, 2, msg_id);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 1) >= now - t.dup_window) {
            j->res.seq = (uint64_t)sqlite3_column_int64(st, 0);
            j->res.duplicate = true;
            sqlite3_reset(st);
            return 0;
        }
        sqlite3_reset(st);
    }
    t.last_seq++;
    sqlite3_stmt *st = stmt(w, SQL_MSG_ADD);
    bind_text(st, 1, j->s1);
    sqlite3_bind_int64(st, 2, t.last_seq);
    sqlite3_bind_int64(st, 3, now);
    if (msg_id != NULL && *msg_id != '\0')
        bind_text(st, 4, msg_id);
    else
        sqlite3_bind_null(st, 4);
    bind_text(st, 5, j->s3 ? j->s3 : "{}");
    sqlite3_bind_blob(st, 6, j->blob, (int)j->blob_len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sqlite_err(rc);
    t.count++;
    t.bytes += (int64_t)j->blob_len;
    if (msg_id != NULL && *msg_id != '\0') {
        st = stmt(w, SQL_DEDUP_PUT);
        bind_text(st, 1, j->s1);
        bind_text(st, 2, msg_id);
        sqlite3_bind_int64(st, 3, t.last_seq);
        sqlite3_bind_int64(st, 4, now);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return sqlite_err(rc);
        /* prune now and then, not on every publish */
        if (t.last_seq % 64 == 0) {
            st = stmt(w, SQL_DEDUP_PRUNE);
            bind_text(st, 1, j->s1);
            sqlite3_bind_int64(st, 2, now - t.dup_window);
            sqlite3_step(st);
            sqlite3_reset(st);
        }
    }
    rc = enforce_limits(w, j->s1, &t, now);
    if (rc == 0)
        rc = topic_save(w, j->s1, &t);
    j->res.seq = (uint64_t)t.last_seq;
    j->published = true;
    return rc;
}

static int do_consumer_create(struct worker *w, struct job *j)
{
    struct topic_row t;
    int rc = topic_get(w, j->s1, &t);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = stmt(w, SQL_MSG_OLDEST);
    bind_text(st, 1, j->s1);
    int64_t first = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : t.last_seq + 1;
    sqlite3_reset(st);
    st = stmt(w, SQL_CONSUMER_PUT);
    bind_text(st, 1, j->s1);
    bind_text(st, 2, j->s2);
    sqlite3_bind_int64(st, 3, j->i1);
    sqlite3_bind_int64(st, 4, j->i2);
    sqlite3_bind_int64(st, 5, first);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    j->published = true; /* messages may be waiting for it already */
    return rc == SQLITE_DONE ? 0 : sqlite_err(rc);
}

/* Add message seq of the topic to the results, delivered for the count-th time. */
static int message_record(struct worker *w, struct job *j, int64_t seq, uint32_t count, bool *gone)
{
    sqlite3_stmt *st = stmt(w, SQL_MSG_GET);
    bind_text(st, 1, j->s1);
    sqlite3_bind_int64(st, 2, seq);
    int rc = sqlite3_step(st);
    *gone = rc != SQLITE_ROW;
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? 0 : sqlite_err(rc);
    }
    struct fl_record *r = add_record(j);
    if (r == NULL) {
        sqlite3_reset(st);
        return FL_ENOMEM;
    }
    r->seq = (uint64_t)seq;
    r->ts_ms = sqlite3_column_int64(st, 0);
    r->key = sqlite3_column_type(st, 1) == SQLITE_NULL ? NULL : dup_column(st, 1, NULL);
    r->headers = dup_column(st, 2, NULL);
    r->data = dup_column(st, 3, &r->len);
    r->deliveries = count;
    sqlite3_reset(st);
    return finish_record(r);
}

static int delivery_set(struct worker *w, struct job *j, int64_t seq, int64_t count,
                        int64_t deadline)
{
    sqlite3_stmt *st = stmt(w, SQL_DELIVERY_SET);
    bind_text(st, 1, j->s1);
    bind_text(st, 2, j->s2);
    sqlite3_bind_int64(st, 3, seq);
    sqlite3_bind_int64(st, 4, count);
    sqlite3_bind_int64(st, 5, deadline);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sqlite_err(rc);
}

static int delivery_delete(struct worker *w, struct job *j, int64_t seq)
{
    sqlite3_stmt *st = stmt(w, SQL_DELIVERY_DEL);
    bind_text(st, 1, j->s1);
    bind_text(st, 2, j->s2);
    sqlite3_bind_int64(st, 3, seq);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sqlite_err(rc);
}

static int do_fetch(struct worker *w, struct job *j, int64_t now)
{
    sqlite3_stmt *st = stmt(w, SQL_CONSUMER_GET);
    bind_text(st, 1, j->s1);
    bind_text(st, 2, j->s2);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return FL_ENOENT;
    }
    int64_t ack_wait = sqlite3_column_int64(st, 0);
    int64_t max_deliver = sqlite3_column_int64(st, 1);
    int64_t next_seq = sqlite3_column_int64(st, 2);
    sqlite3_reset(st);
    size_t max = j->i1 > 0 ? (size_t)j->i1 : 1;
    struct topic_row t;
    int rc = topic_get(w, j->s1, &t);
    if (rc == 0 && t.max_age > 0) {
        rc = enforce_limits(w, j->s1, &t, now); /* nothing past its age is delivered */
        if (rc == 0)
            rc = topic_save(w, j->s1, &t);
    }
    if (rc < 0)
        return rc;

    /* Redeliveries first: pending deliveries whose deadline has passed. */
    int64_t due[256], counts[256];
    size_t ndue = 0;
    st = stmt(w, SQL_DUE);
    bind_text(st, 1, j->s1);
    bind_text(st, 2, j->s2);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, (int64_t)(max < 256 ? max : 256) * 2);
    while (ndue < 256 && sqlite3_step(st) == SQLITE_ROW) {
        due[ndue] = sqlite3_column_int64(st, 0);
        counts[ndue] = sqlite3_column_int64(st, 1);
        ndue++;
    }
    sqlite3_reset(st);
    for (size_t i = 0; i < ndue && j->nrecords < max && rc == 0; i++) {
        if (counts[i] >= max_deliver) {
            st = stmt(w, SQL_DELIVERY_DEAD);
            bind_text(st, 1, j->s1);
            bind_text(st, 2, j->s2);
            sqlite3_bind_int64(st, 3, due[i]);
            rc = sqlite3_step(st) == SQLITE_DONE ? 0 : FL_EIO;
            sqlite3_reset(st);
            continue;
        }
        bool gone;
        rc = message_record(w, j, due[i], (uint32_t)(counts[i] + 1), &gone);
        if (rc == 0)
            rc = gone ? delivery_delete(w, j, due[i])
                      : delivery_set(w, j, due[i], counts[i] + 1, now + ack_wait);
    }
    /* Then messages never delivered. */
    while (rc == 0 && j->nrecords < max) {
        st = stmt(w, SQL_MSGS_FROM);
        bind_text(st, 1, j->s1);
        sqlite3_bind_int64(st, 2, next_seq);
        sqlite3_bind_int64(st, 3, (int64_t)(max - j->nrecords));
        int64_t seqs[256];
        size_t n = 0;
        while (n < 256 && sqlite3_step(st) == SQLITE_ROW)
            seqs[n++] = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (n == 0)
            break;
        for (size_t i = 0; i < n && rc == 0; i++) {
            bool gone;
            rc = message_record(w, j, seqs[i], 1, &gone);
            if (rc == 0 && !gone)
                rc = delivery_set(w, j, seqs[i], 1, now + ack_wait);
            next_seq = seqs[i] + 1;
        }
        st = stmt(w, SQL_CONSUMER_ADVANCE);
        bind_text(st, 1, j->s1);
        bind_text(st, 2, j->s2);
        sqlite3_bind_int64(st, 3, next_seq);
        if (rc == 0)
            rc = sqlite3_step(st) == SQLITE_DONE ? 0 : FL_EIO;
        sqlite3_reset(st);
    }
    return rc;
}

static int do_ack(struct worker *w, struct job *j, int64_t now)
{
    sqlite3_stmt *st = stmt(w, SQL_DELIVERY_GET);
    bind_text(st, 1, j->s1);
    bind_text(st, 2, j->s2);
    sqlite3_bind_int64(st, 3, (int64_t)j->u1);
    if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 2) != 0) {
        sqlite3_reset(st);
        return FL_ENOENT;
    }
    int64_t count = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    switch ((enum fl_ack_kind)j->i1) {
    case FL_ACK:
    case FL_TERM:
        return delivery_delete(w, j, (int64_t)j->u1);
    case FL_NAK:
        j->published = j->i2 <= 0; /* due now: tell the consumer */
        return delivery_set(w, j, (int64_t)j->u1, count, now + (j->i2 > 0 ? j->i2 : 0));
    case FL_IN_PROGRESS: {
        st = stmt(w, SQL_CONSUMER_GET);
        bind_text(st, 1, j->s1);
        bind_text(st, 2, j->s2);
        int64_t ack_wait = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 30000;
        sqlite3_reset(st);
        return delivery_set(w, j, (int64_t)j->u1, count, now + ack_wait);
    }
    }
    return FL_EINVAL;
}

static int do_dead(struct worker *w, struct job *j)
{
    sqlite3_stmt *st = stmt(w, SQL_DEAD_LIST);
    bind_text(st, 1, j->s1);
    bind_text(st, 2, j->s2);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct fl_record *r = add_record(j);
        if (r == NULL) {
            sqlite3_reset(st);
            return FL_ENOMEM;
        }
        r->seq = (uint64_t)sqlite3_column_int64(st, 0);
        r->deliveries = (uint32_t)sqlite3_column_int64(st, 1);
        r->ts_ms = sqlite3_column_int64(st, 2);
        r->key = sqlite3_column_type(st, 3) == SQLITE_NULL ? NULL : dup_column(st, 3, NULL);
        r->headers = dup_column(st, 4, NULL);
        r->data = dup_column(st, 5, &r->len);
        if (finish_record(r) < 0) {
            sqlite3_reset(st);
            return FL_ENOMEM;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sqlite_err(rc);
}

static int do_redrive(struct worker *w, struct job *j)
{
    sqlite3_stmt *st = stmt(w, j->u1 ? SQL_REDRIVE_ONE : SQL_REDRIVE_ALL);
    bind_text(st, 1, j->s1);
    bind_text(st, 2, j->s2);
    if (j->u1)
        sqlite3_bind_int64(st, 3, (int64_t)j->u1);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sqlite_err(rc);
    if (j->u1 && sqlite3_changes(w->db) == 0)
        return FL_ENOENT;
    j->published = true;
    return 0;
}

static int run_job(struct worker *w, struct job *j, int64_t now)
{
    switch (j->op) {
    case OP_PUT:
        return do_put(w, j, now);
    case OP_GET:
        return do_get(w, j);
    case OP_LIST:
        return do_list(w, j);
    case OP_DELETE:
        return do_delete(w, j, now);
    case OP_CHANGES:
        return do_changes(w, j);
    case OP_APPEND:
        return do_append(w, j, now);
    case OP_READ:
        return do_read(w, j);
    case OP_STREAMS:
        return do_streams(w, j);
    case OP_STREAM_DELETE:
        return do_stream_delete(w, j);
    case OP_TOPIC_CREATE:
        return do_topic_create(w, j);
    case OP_TOPIC_INFO:
        return do_topic_info(w, j, now);
    case OP_PUBLISH:
        return do_publish(w, j, now);
    case OP_CONSUMER_CREATE:
        return do_consumer_create(w, j);
    case OP_FETCH:
        return do_fetch(w, j, now);
    case OP_ACK:
        return do_ack(w, j, now);
    case OP_DEAD:
        return do_dead(w, j);
    case OP_REDRIVE:
        return do_redrive(w, j);
    }
    return FL_EINVAL;
}

/* ---- the worker threads ---- */

static void post_done(struct fl_store *s, struct job *first, struct job *last)
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

/* The writer: one transaction, one fsync, for everything queued. */
static void write_batch(struct fl_store *s, struct worker *w, struct job *batch)
{
    int64_t now = fl_clock_wall_ms();
    struct job *last = batch;
    int rc = exec_simple(w, SQL_BEGIN);
    bool changed = false;
    uint64_t gseq_before = w->gseq;
    for (struct job *j = batch; j != NULL; j = j->next) {
        last = j;
        if (rc < 0) {
            j->err = rc;
            continue;
        }
        /* A savepoint lets a failing job undo its own writes; an append of
         * one event has a single write, so it cannot fail half-way. */
        bool savepoint = !(j->op == OP_APPEND && j->nevents == 1);
        if (savepoint)
            exec_simple(w, SQL_SAVEPOINT);
        uint64_t gseq_job = w->gseq;
        j->err = run_job(w, j, now);
        if (j->err < 0) {
            w->gseq = gseq_job;
            if (savepoint)
                exec_simple(w, SQL_ROLLBACK_TO);
            free_records(j);
            j->changed = j->published = false;
            memset(&j->res, 0, sizeof(j->res));
        }
        if (savepoint)
            exec_simple(w, SQL_RELEASE);
        changed |= j->changed;
    }
    if (rc == 0 && changed) {
        /* compact the change log beyond the retention */
        int64_t rev = meta_get(w, "revision");
        int64_t keep = (int64_t)s->opts.change_retention;
        if (rev > keep && rev % 256 == 0) {
            sqlite3_stmt *st = stmt(w, SQL_CHANGES_COMPACT);
            sqlite3_bind_int64(st, 1, rev - keep);
            if (sqlite3_step(st) == SQLITE_DONE)
                meta_set(w, "compacted", rev - keep);
            sqlite3_reset(st);
        }
    }
    if (rc == 0 && w->recent >= RECENT_MAX) {
        /* in a savepoint: if moving fails, the batch commits without it */
        exec_simple(w, SQL_SAVEPOINT);
        if (move_recent(w) < 0) {
            fl_log(FL_LOG_WARN, "store", "cannot move recent events", "err=\"%s\"",
                   sqlite3_errmsg(w->db));
            exec_simple(w, SQL_ROLLBACK_TO);
        }
        exec_simple(w, SQL_RELEASE);
    }
    if (rc == 0 && w->gseq_dirty)
        rc = meta_set(w, "gseq", (int64_t)w->gseq);
    w->gseq_dirty = false;
    if (rc == 0) {
        rc = exec_simple(w, SQL_COMMIT);
        if (rc < 0) {
            exec_simple(w, SQL_ROLLBACK);
            fl_log(FL_LOG_ERROR, "store", "commit failed", "err=\"%s\"", sqlite3_errmsg(w->db));
        }
    }
    if (rc < 0) {
        /* nothing of the batch is durable: every job fails */
        w->gseq = gseq_before;
        for (struct job *j = batch; j != NULL; j = j->next) {
            if (j->err == 0)
                j->err = rc;
            free_records(j);
            j->changed = j->published = false;
        }
    }
    sqlite3_stmt *st = stmt(w, SQL_NEXT_DUE);
    int64_t due = 0;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        due = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    pthread_mutex_lock(&s->lock);
    s->next_due = due;
    pthread_mutex_unlock(&s->lock);
    post_done(s, batch, last);
}

static void read_batch(struct fl_store *s, struct worker *w, struct job *batch)
{
    int64_t now = fl_clock_wall_ms();
    struct job *last = batch;
    for (struct job *j = batch; j != NULL; j = j->next) {
        last = j;
        sqlite3_exec(w->db, "BEGIN", NULL, NULL, NULL);
        j->err = run_job(w, j, now);
        sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL);
        if (j->err < 0)
            free_records(j);
    }
    post_done(s, batch, last);
}

struct thread_arg {
    struct fl_store *s;
    struct worker *w;
};

static void *worker_main(void *arg)
{
    struct fl_store *s = ((struct thread_arg *)arg)->s;
    struct worker *w = ((struct thread_arg *)arg)->w;
    free(arg);
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (w->head == NULL && !w->stop)
            pthread_cond_wait(&s->cond, &s->lock);
        struct job *batch = w->head;
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

static void job_free(struct job *j)
{
    free(j->s1);
    free(j->s2);
    free(j->s3);
    free(j->blob);
    for (size_t i = 0; i < j->nevents; i++) {
        free((char *)j->events[i].type);
        free((char *)j->events[i].data);
    }
    free(j->events);
    free_records(j);
    free(j);
}

static void watch_read(struct fl_store_watch *w);

static void watch_release(struct fl_store_watch *w)
{
    free(w->kind);
    free(w->consumer);
    free(w);
}

/* A watch's read of the change log came back. Dead watches are freed by
 * sweep_watches() once no read refers to them. */
static void on_changes(int err, const struct fl_store_result *res, void *data)
{
    struct fl_store_watch *w = data;
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
        watch_read(w);
    }
}

static int submit(struct fl_store *s, struct job *j, bool write);

static void watch_read(struct fl_store_watch *w)
{
    struct job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        w->cb(FL_ENOMEM, NULL, w->data);
        return;
    }
    j->op = OP_CHANGES;
    j->s1 = w->kind ? fl_strndup(w->kind, strlen(w->kind)) : NULL;
    j->u1 = w->last;
    j->cb = on_changes;
    j->data = w;
    w->reading = true;
    if (submit(w->store, j, false) < 0) {
        w->reading = false;
        job_free(j);
    }
}

static void notify_consumers(struct fl_store *s, const char *topic)
{
    for (struct fl_store_watch *w = s->watches; w != NULL; w = w->next) {
        if (!w->notify || w->dead)
            continue;
        if (topic == NULL || strcmp(w->kind, topic) == 0) {
            struct fl_store_result none = {0};
            w->cb(0, &none, w->data);
        }
    }
}

static void arm_due_timer(struct fl_store *s);

static void on_due(uv_timer_t *t)
{
    struct fl_store *s = t->data;
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

static void arm_due_timer(struct fl_store *s)
{
    pthread_mutex_lock(&s->lock);
    int64_t due = s->next_due;
    pthread_mutex_unlock(&s->lock);
    if (due == 0 || s->closing) {
        uv_timer_stop(&s->due_timer);
        return;
    }
    int64_t delay = due - fl_clock_wall_ms();
    uv_timer_start(&s->due_timer, on_due, delay > 0 ? (uint64_t)delay + 1 : 1, 0);
}

/* Free unwatched watches that no read refers to any more. Runs only at
 * the end of on_async, never while the list is being walked. */
static void sweep_watches(struct fl_store *s)
{
    for (struct fl_store_watch **p = &s->watches; *p != NULL;) {
        struct fl_store_watch *w = *p;
        if (w->dead && !w->reading) {
            *p = w->next;
            watch_release(w);
        } else {
            p = &w->next;
        }
    }
}

static void maybe_finish_close(struct fl_store *s);

/* Run the callbacks of finished jobs, in commit order. */
static void process_done(struct fl_store *s)
{
    pthread_mutex_lock(&s->lock);
    struct job *list = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->lock);
    bool changed = false, wrote = false;
    while (list != NULL) {
        struct job *j = list;
        list = j->next;
        j->res.records = j->records;
        j->res.n = j->nrecords;
        if (j->cb != NULL)
            j->cb(j->err, &j->res, j->data);
        changed |= j->changed;
        wrote |= j->on_writer;
        if (j->published)
            notify_consumers(s, j->s1);
        job_free(j);
    }
    if (changed && !s->closing) {
        for (struct fl_store_watch *w = s->watches; w != NULL; w = w->next) {
            if (w->notify || w->dead)
                continue;
            if (w->reading)
                w->more = true;
            else
                watch_read(w);
        }
    }
    if (wrote)
        arm_due_timer(s);
}

static void on_async(uv_async_t *a)
{
    struct fl_store *s = a->data;
    process_done(s);
    sweep_watches(s);
    maybe_finish_close(s);
}

static int submit(struct fl_store *s, struct job *j, bool write)
{
    if (s->closing)
        return FL_ECLOSED;
    j->store = s;
    j->on_writer = write;
    struct worker *w = write ? &s->writer : &s->reader;
    pthread_mutex_lock(&s->lock);
    if (w->tail != NULL)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* ---- the public operations ---- */

static struct job *job_new(enum op op, fl_store_cb cb, void *data)
{
    struct job *j = calloc(1, sizeof(*j));
    if (j != NULL) {
        j->op = op;
        j->cb = cb;
        j->data = data;
    }
    return j;
}

static bool valid_key(const char *s, size_t max)
{
    if (s == NULL)
        return false;
    size_t n = strlen(s);
    return n > 0 && n <= max;
}

static char *copy(const char *s)
{
    return s ? fl_strndup(s, strlen(s)) : NULL;
}

/* Queue j (on the writer or the reader); frees it and returns the error
 * if anything needed is missing. */
static int queue_job(struct fl_store *s, struct job *j, bool write, bool ok)
{
    if (!ok) {
        job_free(j);
        return FL_ENOMEM;
    }
    int rc = submit(s, j, write);
    if (rc < 0)
        job_free(j);
    return rc;
}

int fl_store_put(struct fl_store *s, const char *kind, const char *name, const char *json,
                 size_t len, uint64_t expect, fl_store_cb cb, void *data)
{
    if (!valid_key(kind, 64) || !valid_key(name, 256) || json == NULL)
        return FL_EINVAL;
    if (len > s->opts.max_value_bytes)
        return FL_ETOOBIG;
    struct job *j = job_new(OP_PUT, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->s1 = copy(kind);
    j->s2 = copy(name);
    j->blob = fl_strndup(json, len);
    j->blob_len = len;
    j->u1 = expect;
    return queue_job(s, j, true, j->s1 && j->s2 && j->blob);
}

int fl_store_get(struct fl_store *s, const char *kind, const char *name, fl_store_cb cb, void *data)
{
    if (!valid_key(kind, 64) || !valid_key(name, 256))
        return FL_EINVAL;
    struct job *j = job_new(OP_GET, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->s1 = copy(kind);
    j->s2 = copy(name);
    return queue_job(s, j, false, j->s1 && j->s2);
}

int fl_store_list(struct fl_store *s, const char *kind, const char *prefix, fl_store_cb cb,
                  void *data)
{
    if (!valid_key(kind, 64))
        return FL_EINVAL;
    struct job *j = job_new(OP_LIST, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->s1 = copy(kind);
    j->s2 = copy(prefix ? prefix : "");
    return queue_job(s, j, false, j->s1 && j->s2);
}

int fl_store_delete(struct fl_store *s, const char *kind, const char *name, uint64_t expect,
                    fl_store_cb cb, void *data)
{
    if (!valid_key(kind, 64) || !valid_key(name, 256))
        return FL_EINVAL;
    struct job *j = job_new(OP_DELETE, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->s1 = copy(kind);
    j->s2 = copy(name);
    j->u1 = expect;
    return queue_job(s, j, true, j->s1 && j->s2);
}

int fl_store_watch(struct fl_store *s, const char *kind, uint64_t from, fl_store_cb cb, void *data,
                   struct fl_store_watch **out)
{
    if (s->closing)
        return FL_ECLOSED;
    struct fl_store_watch *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return FL_ENOMEM;
    w->store = s;
    w->kind = kind ? copy(kind) : NULL;
    w->last = from;
    w->cb = cb;
    w->data = data;
    if (kind != NULL && w->kind == NULL) {
        free(w);
        return FL_ENOMEM;
    }
    w->next = s->watches;
    s->watches = w;
    *out = w;
    watch_read(w);
    return 0;
}

void fl_store_unwatch(struct fl_store_watch *w)
{
    if (w == NULL)
        return;
    w->dead = true; /* freed by the loop's next sweep, once no read refers to it */
    uv_async_send(&w->store->async);
}

int fl_store_append(struct fl_store *s, const char *stream, const struct fl_event_in *events,
                    size_t n, uint64_t expect, fl_store_cb cb, void *data)
{
    if (!valid_key(stream, 512) || n == 0 || n > 10000)
        return FL_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!valid_key(events[i].type, 128) || events[i].data == NULL)
            return FL_EINVAL;
        if (events[i].len > s->opts.max_value_bytes)
            return FL_ETOOBIG;
    }
    struct job *j = job_new(OP_APPEND, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->s1 = copy(stream);
    j->events = calloc(n, sizeof(*j->events));
    bool ok = j->s1 && j->events;
    for (size_t i = 0; ok && i < n; i++) {
        j->events[i].type = copy(events[i].type);
        j->events[i].data = fl_strndup(events[i].data, events[i].len);
        j->events[i].len = events[i].len;
        j->nevents = i + 1;
        ok = j->events[i].type && j->events[i].data;
    }
    j->u1 = expect;
    return queue_job(s, j, true, ok);
}

int fl_store_read(struct fl_store *s, const char *stream, uint64_t from, size_t max, fl_store_cb cb,
                  void *data)
{
    if (!valid_key(stream, 512))
        return FL_EINVAL;
    struct job *j = job_new(OP_READ, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->s1 = copy(stream);
    j->u1 = from;
    j->i1 = (int64_t)max;
    return queue_job(s, j, false, j->s1 != NULL);
}

int fl_store_streams(struct fl_store *s, const char *prefix, fl_store_cb cb, void *data)
{
    struct job *j = job_new(OP_STREAMS, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->s1 = copy(prefix ? prefix : "");
    return queue_job(s, j, false, j->s1 != NULL);
}

int fl_store_stream_delete(struct fl_store *s, const char *stream, fl_store_cb cb, void *data)
{
    if (!valid_key(stream, 512))
        return FL_EINVAL;
    struct job *j = job_new(OP_STREAM_DELETE, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->s1 = copy(stream);
    return queue_job(s, j, true, j->s1 != NULL);
}

int fl_store_topic_create(struct fl_store *s, const char *topic,
                          const struct fl_topic_limits *limits, fl_store_cb cb, void *data)
{
    if (!valid_key(topic, 256))
        return FL_EINVAL;
    struct job *j = job_new(OP_TOPIC_CREATE, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->s1 = copy(topic);
    j->i1 = limits ? (int64_t)limits->max_msgs : 0;
    j->i2 = limits ? (int64_t)limits->max_bytes : 0;
    j->i3 = limits ? limits->max_age_ms : 0;
    j->i4 = limits && limits->dup_window_ms > 0 ? limits->dup_window_ms : 120000;
    return queue_job(s, j, true, j->s1 != NULL);
}

int fl_store_topic_info(struct fl_store *s, const char *topic, fl_store_cb cb, void *data)
{
    if (!valid_key(topic, 256))
        return FL_EINVAL;
    struct job *j = job_new(OP_TOPIC_INFO, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->s1 = copy(topic);
    return queue_job(s, j, false, j->s1 != NULL);
}

int fl_store_publish(struct fl_store *s, const char *topic, const char *headers, const char *msg_id,
                     const void *payload, size_t len, fl_store_cb cb, void *data)
{
    if (!valid_key(topic, 256) || (payload == NULL && len > 0))
        return FL_EINVAL;
    if (len > s->opts.max_value_bytes || (msg_id != NULL && strlen(msg_id) > 256))
        return len > s->opts.max_value_bytes ? FL_ETOOBIG : FL_EINVAL;
    struct job *j = job_new(OP_PUBLISH, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->s1 = copy(topic);
    j->s2 = msg_id ? copy(msg_id) : NULL;
    j->s3 = copy(headers ? headers : "{}");
    j->blob = fl_strndup(payload ? payload : "", len);
    j->blob_len = len;
    return queue_job(s, j, true, j->s1 && j->s3 && j->blob && (msg_id == NULL || j->s2));
}

int fl_store_consumer_create(struct fl_store *s, const char *topic, const char *consumer,
                             const struct fl_consumer_config *cfg, fl_store_cb cb, void *data)
{
    if (!valid_key(topic, 256) || !valid_key(consumer, 256))
        return FL_EINVAL;
    struct job *j = job_new(OP_CONSUMER_CREATE, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->s1 = copy(topic);
    j->s2 = copy(consumer);
    j->i1 = cfg && cfg->ack_wait_ms > 0 ? cfg->ack_wait_ms : 30000;
    j->i2 = cfg && cfg->max_deliver > 0 ? cfg->max_deliver : 5;
    return queue_job(s, j, true, j->s1 && j->s2);
}

int fl_store_fetch(struct fl_store *s, const char *topic, const char *consumer, size_t max,
                   fl_store_cb cb, void *data)
{
    if (!valid_key(topic, 256) || !valid_key(consumer, 256) || max == 0 || max > 256)
        return FL_EINVAL;
    struct job *j = job_new(OP_FETCH, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->s1 = copy(topic);
    j->s2 = copy(consumer);
    j->i1 = (int64_t)max;
    return queue_job(s, j, true, j->s1 && j->s2);
}

int fl_store_ack(struct fl_store *s, const char *topic, const char *consumer, uint64_t seq,
                 enum fl_ack_kind kind, int64_t delay_ms, fl_store_cb cb, void *data)
{
    if (!valid_key(topic, 256) || !valid_key(consumer, 256) || seq == 0 || kind < FL_ACK ||
        kind > FL_IN_PROGRESS)
        return FL_EINVAL;
    struct job *j = job_new(OP_ACK, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->s1 = copy(topic);
    j->s2 = copy(consumer);
    j->u1 = seq;
    j->i1 = kind;
    j->i2 = delay_ms;
    return queue_job(s, j, true, j->s1 && j->s2);
}

int fl_store_dead(struct fl_store *s, const char *topic, const char *consumer, fl_store_cb cb,
                  void *data)
{
    if (!valid_key(topic, 256) || !valid_key(consumer, 256))
        return FL_EINVAL;
    struct job *j = job_new(OP_DEAD, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->s1 = copy(topic);
    j->s2 = copy(consumer);
    return queue_job(s, j, false, j->s1 && j->s2);
}

int fl_store_redrive(struct fl_store *s, const char *topic, const char *consumer, uint64_t seq,
                     fl_store_cb cb, void *data)
{
    if (!valid_key(topic, 256) || !valid_key(consumer, 256))
        return FL_EINVAL;
    struct job *j = job_new(OP_REDRIVE, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->s1 = copy(topic);
    j->s2 = copy(consumer);
    j->u1 = seq;
    return queue_job(s, j, true, j->s1 && j->s2);
}

int fl_store_notify(struct fl_store *s, const char *topic, const char *consumer, fl_store_cb cb,
                    void *data, struct fl_store_watch **out)
{
    if (s->closing)
        return FL_ECLOSED;
    if (!valid_key(topic, 256) || !valid_key(consumer, 256))
        return FL_EINVAL;
    struct fl_store_watch *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return FL_ENOMEM;
    w->store = s;
    w->notify = true;
    w->kind = copy(topic);
    w->consumer = copy(consumer);
    w->cb = cb;
    w->data = data;
    if (w->kind == NULL || w->consumer == NULL) {
        watch_release(w);
        return FL_ENOMEM;
    }
    w->next = s->watches;
    s->watches = w;
    *out = w;
    /* messages may be waiting already: say so on the next turn */
    uv_timer_start(&s->due_timer, on_due, 0, 0);
    return 0;
}

/* ---- opening and closing ---- */

static void close_worker_db(struct worker *w)
{
    for (size_t i = 0; i < sizeof(w->stmts) / sizeof(w->stmts[0]); i++)
        sqlite3_finalize(w->stmts[i]);
    sqlite3_close(w->db);
    w->db = NULL;
}

/* Run the SQL of steps in one transaction; on failure, "cannot <what> in
 * '<path>': <why>" in err, and nothing changed. */
static int run_script(sqlite3 *db, const char *const *steps, size_t n, const char *what,
                      const char *path, char *err, size_t errsize)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, &msg);
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
        rc = sqlite3_exec(db, steps[i], NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        return 0;
    snprintf(err, errsize, "cannot %s in '%s': %s", what, path, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return sqlite_err(rc) ? sqlite_err(rc) : FL_EIO;
}

static int check_or_create_schema(sqlite3 *db, const char *path, char *err, size_t errsize)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA application_id", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errsize, "'%s' is not a flint store (%s)", path, sqlite3_errmsg(db));
        return sqlite_err(rc) == FL_ECORRUPT ? FL_ECORRUPT : FL_EIO;
    }
    rc = sqlite3_step(st);
    int app = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
        snprintf(err, errsize, "'%s' is not a flint store or is corrupt (%s)", path,
                 sqlite3_errmsg(db));
        return FL_ECORRUPT;
    }
    if (app == 0) {
        sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL);
        rc = sqlite3_step(st);
        int tables = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
        sqlite3_finalize(st);
        if (tables != 0) {
            snprintf(err, errsize, "'%s' is an SQLite database of another program", path);
            return FL_ECORRUPT;
        }
        char pragmas[128];
        snprintf(pragmas, sizeof(pragmas), "PRAGMA application_id = %d; PRAGMA user_version = %d;",
                 APPLICATION_ID, SCHEMA_VERSION);
        const char *const steps[] = {schema, pragmas};
        return run_script(db, steps, 2, "create the store", path, err, errsize);
    }
    if (app != APPLICATION_ID) {
        snprintf(err, errsize, "'%s' is an SQLite database of another program", path);
        return FL_ECORRUPT;
    }
    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    int version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (version > SCHEMA_VERSION) {
        snprintf(err, errsize,
                 "'%s' was written by a newer flint (schema %d; this one knows up to %d)", path,
                 version, SCHEMA_VERSION);
        return FL_ECORRUPT;
    }
    /* Migrations from older versions, one step at a time, each in one
     * transaction with its user_version. */
    if (version < 2) {
        const char *const steps[] = {migrate_2};
        return run_script(db, steps, 1, "upgrade to schema 2 the store", path, err, errsize);
    }
    return 0;
}

static int64_t count_recent(sqlite3 *db)
{
    sqlite3_stmt *st;
    int64_t n = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM recent", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int open_db(const char *path, bool readonly, sqlite3 **out, char *err, size_t errsize)
{
    int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, out, flags, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errsize, "cannot open '%s': %s", path,
                 *out ? sqlite3_errmsg(*out) : sqlite3_errstr(rc));
        sqlite3_close(*out);
        *out = NULL;
        return rc == SQLITE_CANTOPEN ? FL_EACCES : sqlite_err(rc);
    }
    sqlite3_extended_result_codes(*out, 1);
    sqlite3_busy_timeout(*out, 5000);
    return 0;
}

static int configure_writer(sqlite3 *db, const char *path, char *err, size_t errsize)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    const char *mode = NULL;
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        mode = (const char *)sqlite3_column_text(st, 0);
    bool wal = mode != NULL && strcmp(mode, "wal") == 0;
    sqlite3_finalize(st);
    if (!wal) {
        snprintf(err, errsize, "cannot use '%s' in WAL mode: %s", path, sqlite3_errmsg(db));
        return sqlite_err(sqlite3_errcode(db)) ? sqlite_err(sqlite3_errcode(db)) : FL_EIO;
    }
    sqlite3_exec(db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
    /* keep the B-tree pages the writer touches in memory (64 MiB) */
    sqlite3_exec(db, "PRAGMA cache_size = -65536", NULL, NULL, NULL);
    if (getenv("WALCK")) {
        char q[64];
        snprintf(q, sizeof q, "PRAGMA wal_autocheckpoint = %s", getenv("WALCK"));
        sqlite3_exec(db, q, NULL, NULL, NULL);
    }
    return 0;
}

static int lock_dir(const char *dir, int *fd_out, char *err, size_t errsize)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/flint.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errsize, "cannot open '%s': %s", path, strerror(e));
        return -e;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        snprintf(err, errsize, "the data directory '%s' is in use by another flintd%s%s%s", dir,
                 pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
        close(fd);
        return FL_ELOCKED;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* the lock holds all the same; the pid is only a hint */
    }
    *fd_out = fd;
    return 0;
}

int fl_store_open_sqlite(uv_loop_t *loop, const char *dir, const struct fl_store_options *opts,
                         struct fl_store **out, char *err, size_t errsize)
{
    char scratch[8];
    if (err == NULL) {
        err = scratch;
        errsize = sizeof(scratch);
    }
    struct fl_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return FL_ENOMEM;
    s->loop = loop;
    s->lock_fd = -1;
    if (opts != NULL)
        s->opts = *opts;
    else
        fl_store_options_init(&s->opts);
    fl_strlcpy(s->dir, dir, sizeof(s->dir));
    snprintf(s->path, sizeof(s->path), "%s/flint.db", dir);
    snprintf(s->description, sizeof(s->description), "sqlite %s", s->path);

    int rc = lock_dir(dir, &s->lock_fd, err, errsize);
    if (rc < 0)
        goto out_free;
    s->writer.writer = true;
    rc = open_db(s->path, false, &s->writer.db, err, errsize);
    if (rc == 0)
        rc = check_or_create_schema(s->writer.db, s->path, err, errsize);
    if (rc == 0)
        rc = configure_writer(s->writer.db, s->path, err, errsize);
    if (rc == 0)
        rc = open_db(s->path, true, &s->reader.db, err, errsize);
    if (rc == 0)
        rc = prepare_all(&s->writer, s->path, err, errsize);
    if (rc == 0)
        s->writer.gseq = (uint64_t)meta_get(&s->writer, "gseq");
    if (rc == 0)
        s->writer.recent = count_recent(s->writer.db);
    if (rc == 0)
        rc = prepare_all(&s->reader, s->path, err, errsize);
    if (rc < 0)
        goto out_close;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    /* the threads wait for jobs (none yet: the loop's handles come after
     * them, so that a thread that cannot start leaves none to close) */
    struct worker *workers[2] = {&s->writer, &s->reader};
    int started = 0;
    for (; started < 2; started++) {
        struct thread_arg *arg = malloc(sizeof(*arg));
        int e = arg == NULL ? ENOMEM : 0;
        if (arg != NULL) {
            arg->s = s;
            arg->w = workers[started];
            e = pthread_create(&workers[started]->thread, NULL, worker_main, arg);
            if (e != 0)
                free(arg);
        }
        if (e != 0) {
            snprintf(err, errsize, "cannot start the store's %s thread: %s",
                     started == 0 ? "writer" : "reader", strerror(e));
            rc = -e;
            goto out_stop_threads;
        }
    }
    uv_async_init(loop, &s->async, on_async);
    s->async.data = s;
    uv_timer_init(loop, &s->due_timer);
    s->due_timer.data = s;
    uv_unref((uv_handle_t *)&s->due_timer);
    s->handles_open = 2;
    /* Redeliveries due from before a restart are found on the first batch. */
    struct job *probe = job_new(OP_STREAMS, NULL, NULL);
    if (probe != NULL) {
        probe->s1 = copy("\x01none");
        submit(s, probe, true);
    }
    *out = s;
    return 0;

out_stop_threads:
    /* the threads started so far stop before their databases close */
    pthread_mutex_lock(&s->lock);
    s->writer.stop = s->reader.stop = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < started; i++)
        pthread_join(workers[i]->thread, NULL);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
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

static void handle_closed(uv_handle_t *h)
{
    struct fl_store *s = h->data;
    if (--s->handles_open > 0)
        return;
    while (s->watches != NULL) {
        struct fl_store_watch *w = s->watches;
        s->watches = w->next;
        watch_release(w);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    close(s->lock_fd);
    void (*done)(void *) = s->close_done;
    void *data = s->close_data;
    free(s);
    if (done != NULL)
        done(data);
}

static void maybe_finish_close(struct fl_store *s)
{
    if (!s->closing || s->handles_open != 2 || s->writer.db == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    bool idle = s->writer.head == NULL && s->reader.head == NULL && s->done_head == NULL;
    pthread_mutex_unlock(&s->lock);
    if (!idle)
        return;
    /* The threads finish what they hold, then stop. */
    pthread_mutex_lock(&s->lock);
    s->writer.stop = s->reader.stop = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->writer.thread, NULL);
    pthread_join(s->reader.thread, NULL);
    /* Anything they finished meanwhile still gets its callback. */
    process_done(s);
    close_worker_db(&s->reader);
    close_worker_db(&s->writer);
    uv_close((uv_handle_t *)&s->async, handle_closed);
    uv_close((uv_handle_t *)&s->due_timer, handle_closed);
}

void fl_store_close(struct fl_store *s, void (*done)(void *data), void *data)
{
    s->closing = true;
    s->close_done = done;
    s->close_data = data;
    for (struct fl_store_watch *w = s->watches; w != NULL; w = w->next)
        w->dead = true;
    uv_async_send(&s->async); /* finish from the loop, after queued callbacks */
}
