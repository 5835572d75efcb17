/*
 * The SQLite backend's on-disk format, and opening it safely: DIR/flint.db.
 *
 * Locking. DIR/flint.lock is held with flock(LOCK_EX) while the store is
 * open, and holds the owner's pid, so a second flintd on the same
 * directory is refused instead of sharing the database.
 *
 * Format (PRAGMA application_id = 0x464c4e54 "FLNT", PRAGMA user_version =
 * the schema version, now 7; journal_mode=WAL, synchronous=FULL):
 *
 *   meta(key, value)        'revision': the last resource revision given;
 *                           'compacted': changes at or below it are gone;
 *                           'gseq': the last global event sequence given;
 *                           'lease_rev': the last lease revision given
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
 *          bytes, count, interest, last_id)
 *                           dup_window in ms, -1 (FL_TOPIC_DEDUP_NONE):
 *                           no de-duplication, its ids never go in dedup;
 *                           bytes and count describe the messages kept;
 *                           interest = 1: interest retention (a message
 *                           goes once every consumer is done with it);
 *                           last_id: the last ordered id given (below)
 *   messages(topic, seq, ts, msg_id, headers, data)
 *                           seq increasing per topic; the oldest are
 *                           removed past the topic's limits, so the kept
 *                           ones are a contiguous range of sequences,
 *                           except in a topic with interest = 1, where
 *                           a message every consumer is done with goes
 *                           from wherever it is. msg_id is text, or a
 *                           blob of the same bytes: an ordered id. A
 *                           publish to a topic without de-duplication
 *                           whose id sorts after the topic's last_id
 *                           (an async queue's UUIDv7s: nearly all) keeps
 *                           it as a blob and makes it the last_id, so a
 *                           topic's ordered ids increase with seq and
 *                           are found by a search by halves over the
 *                           sequences; every other id is text, in the
 *                           index messages_id (text ids only), which
 *                           finds it across topics. A topic that starts
 *                           de-duplicating turns its blobs to text
 *   dedup(topic, msg_id, seq, ts)
 *                           ids seen within the topic's window; the index
 *                           on (topic, ts) lets the prune of ids past the
 *                           window read only those
 *   consumers(topic, name, ack_wait, max_deliver, next_seq,
 *             max_ack_pending, deliver, start_seq)
 *                           next_seq: the first message never delivered;
 *                           deliver/start_seq: the deliver policy it was
 *                           created with (enum fl_deliver_policy)
 *   deliveries(topic, consumer, seq, count, deadline, dead, reason)
 *                           a delivered, unacknowledged message: count
 *                           deliveries so far, due again at deadline (ms);
 *                           dead = 1 once parked (after max_deliver, or
 *                           given up as dead by an ack); reason: the last
 *                           nak's or the parking's
 *   leases(name, owner, revision, expires)
 *                           one row per lease held (expired or not):
 *                           revision from meta.lease_rev, expires in ms
 *
 * Invariants: every resource revision appears in changes until compacted;
 * meta.revision >= every revision; meta.lease_rev >= every lease revision;
 * an append's events are in one transaction, so a stream never shows part
 * of an append.
 *
 * Versions: 1 had no streams and recent tables (2 builds streams from
 * events); 2 had no leases, deliver policies, max_ack_pending or reasons
 * (3 adds them with their defaults); 3 had no topics.interest (4 adds it,
 * 0 for every topic); 4 had no index on dedup's times (5 adds it: without
 * it every prune read every id a topic remembered, and a topic taking a
 * steady stream of ids slowed down as they built up); 5 had no index on
 * the messages' ids (6 adds it, for fl_store_message_find and _ids: an
 * async invocation not taken yet is found by its id alone); 6 indexed
 * every id (7 adds topics.last_id and keeps ordered ids out of the
 * index: its row was most of what an async accept wrote beyond a plain
 * publish; every id 6 kept is text, so stays in it). Each upgrade
 * is one transaction with its user_version. A newer version and a foreign database are refused
 * untouched, and so is a damaged one: at every open, PRAGMA quick_check
 * reads every page of the tables flintd reads to start (all but events,
 * messages and dedup, which grow with use: checking them would make a
 * start take seconds per hundred megabytes). Damage met later in those is
 * an FL_ECORRUPT for the operation that met it, logged loudly once
 * (sqlite_threads.c).
 */
#include "store/sqlite_internal.h"

#include "base/error.h"
#include "base/fs.h"
#include "base/str.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define APPLICATION_ID 0x464c4e54
#define SCHEMA_VERSION 7

#define STREAMS_SCHEMA                                                                             \
    "CREATE TABLE streams(name TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;"        \
    "CREATE TABLE recent(gseq INTEGER PRIMARY KEY, stream TEXT NOT NULL, seq INTEGER NOT NULL,"    \
    " ts INTEGER NOT NULL, type TEXT NOT NULL, data BLOB NOT NULL);"                               \
    "CREATE UNIQUE INDEX recent_stream ON recent(stream, seq);"

#define LEASES_SCHEMA                                                                              \
    "CREATE TABLE leases(name TEXT PRIMARY KEY, owner TEXT NOT NULL, revision INTEGER NOT NULL,"   \
    " expires INTEGER NOT NULL) WITHOUT ROWID;"                                                    \
    "INSERT INTO meta(key, value) VALUES ('lease_rev', 0);"

/* From schema 1: the streams, from the events. */
static const char migrate_2[] = STREAMS_SCHEMA
    "INSERT INTO streams(name, last_seq) SELECT stream, max(seq) FROM events GROUP BY stream;"
    "PRAGMA user_version = 2;";

/* From schema 2: leases, deliver policies, max_ack_pending, reasons. */
static const char migrate_3[] =
    LEASES_SCHEMA "ALTER TABLE consumers ADD COLUMN max_ack_pending INTEGER NOT NULL DEFAULT 0;"
                  "ALTER TABLE consumers ADD COLUMN deliver INTEGER NOT NULL DEFAULT 0;"
                  "ALTER TABLE consumers ADD COLUMN start_seq INTEGER NOT NULL DEFAULT 0;"
                  "ALTER TABLE deliveries ADD COLUMN reason TEXT;"
                  "PRAGMA user_version = 3;";

/* From schema 3: interest retention. */
static const char migrate_4[] = "ALTER TABLE topics ADD COLUMN interest INTEGER NOT NULL DEFAULT 0;"
                                "PRAGMA user_version = 4;";

/* From schema 4: the prune of de-duplication ids by time. */
static const char migrate_5[] = "CREATE INDEX dedup_ts ON dedup(topic, ts);"
                                "PRAGMA user_version = 5;";

/* From schema 5: messages by id. */
static const char migrate_6[] =
    "CREATE INDEX messages_id ON messages(msg_id) WHERE msg_id IS NOT NULL;"
    "PRAGMA user_version = 6;";

/* From schema 6: ordered ids (blobs) out of the index; every id kept
 * until now is text, so stays in it. */
#define MESSAGES_ID_INDEX                                                                          \
    "CREATE INDEX messages_id ON messages(msg_id) WHERE typeof(msg_id) = 'text';"
static const char migrate_7[] =
    "ALTER TABLE topics ADD COLUMN last_id BLOB;"
    "DROP INDEX messages_id;" MESSAGES_ID_INDEX "PRAGMA user_version = 7;";

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
    " last_seq INTEGER NOT NULL, bytes INTEGER NOT NULL, count INTEGER NOT NULL,"
    " interest INTEGER NOT NULL DEFAULT 0, last_id BLOB) WITHOUT ROWID;"
    "CREATE TABLE messages(topic TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " msg_id TEXT, headers TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY(topic, seq))"
    " WITHOUT ROWID;"
    "CREATE TABLE dedup(topic TEXT NOT NULL, msg_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, PRIMARY KEY(topic, msg_id)) WITHOUT ROWID;"
    "CREATE TABLE consumers(topic TEXT NOT NULL, name TEXT NOT NULL, ack_wait INTEGER NOT NULL,"
    " max_deliver INTEGER NOT NULL, next_seq INTEGER NOT NULL,"
    " max_ack_pending INTEGER NOT NULL DEFAULT 0, deliver INTEGER NOT NULL DEFAULT 0,"
    " start_seq INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(topic, name)) WITHOUT ROWID;"
    "CREATE TABLE deliveries(topic TEXT NOT NULL, consumer TEXT NOT NULL, seq INTEGER NOT NULL,"
    " count INTEGER NOT NULL, deadline INTEGER NOT NULL, dead INTEGER NOT NULL, reason TEXT,"
    " PRIMARY KEY(topic, consumer, seq)) WITHOUT ROWID;"
    "CREATE INDEX deliveries_due ON deliveries(dead, deadline);"
    "CREATE INDEX dedup_ts ON dedup(topic, ts);" MESSAGES_ID_INDEX
    "INSERT INTO meta(key, value) VALUES ('revision', 0), ('compacted', 0), ('gseq', "
    "0);" LEASES_SCHEMA;

/* The upgrades, by the version they make. */
static const struct migration {
    int version;
    const char *sql;
} migrations[] = {
    {2, migrate_2}, {3, migrate_3}, {4, migrate_4}, {5, migrate_5}, {6, migrate_6}, {7, migrate_7},
};

int fl_sqlite_err(int rc)
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
    return fl_sqlite_err(rc) ? fl_sqlite_err(rc) : FL_EIO;
}

/* One integer from a pragma or a query; -1 (and SQLite's code in *rc) if
 * it gives none. */
static int64_t query_int(sqlite3 *db, const char *sql, int *rc)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    *rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (*rc == SQLITE_OK) {
        *rc = sqlite3_step(st);
        if (*rc == SQLITE_ROW) {
            v = sqlite3_column_int64(st, 0);
            *rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return v;
}

static int corrupt(const char *path, const char *why, char *err, size_t errsize)
{
    snprintf(err, errsize,
             "'%s' is corrupt (%s): refusing to start on it. Restore it from a backup, or move "
             "it and its -wal and -shm files aside to start with an empty store "
             "('sqlite3 %s .recover' may salvage what is still readable)",
             path, why, path);
    return FL_ECORRUPT;
}

/* The tables checked at open (see the header comment), by schema version. */
static const struct checked {
    const char *table;
    int since;
} checked[] = {
    {"sqlite_schema", 1}, {"meta", 1},       {"resources", 1}, {"changes", 1}, {"topics", 1},
    {"consumers", 1},     {"deliveries", 1}, {"streams", 2},   {"recent", 2},  {"leases", 3},
};

/* Read every page of table and its indexes: a file corrupted in the
 * middle opens fine and fails later, on the first read that reaches the
 * damage. */
static int quick_check(sqlite3 *db, const char *table, const char *path, char *err, size_t errsize)
{
    sqlite3_stmt *st = NULL;
    char sql[128];
    snprintf(sql, sizeof(sql), "PRAGMA quick_check(%s)", table);
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    char why[256] = "";
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(st, 0);
        if (line != NULL && strcmp(line, "ok") == 0) {
            sqlite3_finalize(st);
            return 0;
        }
        fl_strlcpy(why, line ? line : "quick_check failed", sizeof(why));
    } else {
        snprintf(why, sizeof(why), "%s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    if (fl_sqlite_err(rc) != 0 && fl_sqlite_err(rc) != FL_ECORRUPT) {
        snprintf(err, errsize, "cannot check '%s': %s", path, why);
        return fl_sqlite_err(rc);
    }
    return corrupt(path, why, err, errsize);
}

int fl_sqlite_prepare_schema(sqlite3 *db, const char *path, char *err, size_t errsize)
{
    int rc;
    int64_t app = query_int(db, "PRAGMA application_id", &rc);
    if (rc != SQLITE_OK) {
        snprintf(err, errsize, "'%s' is not a flint store or is corrupt (%s)", path,
                 sqlite3_errmsg(db));
        return fl_sqlite_err(rc) == FL_ECORRUPT || app < 0 ? FL_ECORRUPT : fl_sqlite_err(rc);
    }
    if (app == 0) {
        int64_t tables = query_int(db, "SELECT count(*) FROM sqlite_master", &rc);
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
    int64_t version = query_int(db, "PRAGMA user_version", &rc);
    if (version > SCHEMA_VERSION) {
        snprintf(err, errsize,
                 "'%s' was written by a newer flint (schema %lld; this one knows up to %d)", path,
                 (long long)version, SCHEMA_VERSION);
        return FL_ECORRUPT;
    }
    for (size_t i = 0; i < sizeof(checked) / sizeof(checked[0]); i++) {
        rc =
            version >= checked[i].since ? quick_check(db, checked[i].table, path, err, errsize) : 0;
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < sizeof(migrations) / sizeof(migrations[0]); i++) {
        if (version >= migrations[i].version)
            continue;
        char what[64];
        snprintf(what, sizeof(what), "upgrade to schema %d the store", migrations[i].version);
        const char *const steps[] = {migrations[i].sql};
        rc = run_script(db, steps, 1, what, path, err, errsize);
        if (rc < 0)
            return rc;
        version = migrations[i].version;
    }
    return 0;
}

int fl_sqlite_open_db(const char *path, bool readonly, sqlite3 **out, char *err, size_t errsize)
{
    int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, out, flags, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errsize, "cannot open '%s': %s", path,
                 *out ? sqlite3_errmsg(*out) : sqlite3_errstr(rc));
        sqlite3_close(*out);
        *out = NULL;
        return rc == SQLITE_CANTOPEN ? FL_EACCES : fl_sqlite_err(rc);
    }
    sqlite3_extended_result_codes(*out, 1);
    sqlite3_busy_timeout(*out, 5000);
    return 0;
}

int fl_sqlite_configure_writer(sqlite3 *db, const char *path, char *err, size_t errsize)
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
        int code = fl_sqlite_err(sqlite3_errcode(db));
        return code ? code : FL_EIO;
    }
    sqlite3_exec(db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
    /* keep the B-tree pages the writer touches in memory (64 MiB) */
    sqlite3_exec(db, "PRAGMA cache_size = -65536", NULL, NULL, NULL);
    return 0;
}

int fl_sqlite_lock_dir(const char *dir, int *fd_out, char *err, size_t errsize)
{
    char path[4200];
    if (fl_path_join(path, sizeof(path), dir, "flint.lock") < 0) {
        snprintf(err, errsize, "the data directory's name is too long: '%.200s...'", dir);
        return -ENAMETOOLONG;
    }
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
