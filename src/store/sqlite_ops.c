/*
 * The SQLite backend's operations: every SQL statement it runs (prepared
 * once per connection at open, so none can fail to prepare later), and
 * what each job does with them. Everything here runs on a worker thread,
 * inside the transaction its caller (sqlite_threads.c) opened: the writer
 * wraps each job in a savepoint, the reader each job in a read
 * transaction. A job's results go into its records (or topic and consumer
 * infos), allocated here and freed with the job.
 */
#include "store/sqlite_internal.h"

#include "base/error.h"
#include "base/log.h"
#include "base/str.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECENT_MAX   4096  /* rows of recent that make a batch move them to events */
#define CHANGES_PAGE 10000 /* changes a watch reads at once */

enum sql {
    SQL_BEGIN = FL_SQL_BEGIN,
    SQL_COMMIT = FL_SQL_COMMIT,
    SQL_ROLLBACK = FL_SQL_ROLLBACK,
    SQL_SAVEPOINT = FL_SQL_SAVEPOINT,
    SQL_RELEASE = FL_SQL_RELEASE,
    SQL_ROLLBACK_TO = FL_SQL_ROLLBACK_TO,
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
    SQL_TOPIC_DEL,
    SQL_TOPIC_MSGS_DEL,
    SQL_TOPIC_DEDUP_DEL,
    SQL_TOPIC_CONSUMERS_DEL,
    SQL_TOPIC_DELIVERIES_DEL,
    SQL_TOPICS_PAGE,
    SQL_MSG_ADD,
    SQL_MSG_OLDEST,
    SQL_MSG_DEL,
    SQL_DEDUP_GET,
    SQL_DEDUP_PUT,
    SQL_DEDUP_PRUNE,
    SQL_CONSUMER_GET,
    SQL_CONSUMER_INSERT,
    SQL_CONSUMER_UPDATE,
    SQL_CONSUMER_ADVANCE,
    SQL_CONSUMER_DEL,
    SQL_CONSUMER_DELIVERIES_DEL,
    SQL_CONSUMER_COUNT,
    SQL_CONSUMERS_PAGE,
    SQL_PENDING_COUNT,
    SQL_DUE,
    SQL_DELIVERY_SET,
    SQL_DELIVERY_NAK,
    SQL_DELIVERY_DEAD,
    SQL_DELIVERY_GET,
    SQL_DELIVERY_DEL,
    SQL_MSG_GET,
    SQL_MSGS_FROM,
    SQL_MSG_FIND,
    SQL_MSG_IDS,
    SQL_MSG_ORDERED_FROM,
    SQL_MSGS_ORDERED_FROM,
    SQL_MSG_IDS_TO_TEXT,
    SQL_ORDERED_TOPICS,
    SQL_DEAD_LIST,
    SQL_REDRIVE_ONE,
    SQL_REDRIVE_ALL,
    SQL_PURGE_ONE,
    SQL_PURGE_ALL,
    SQL_DEAD_RANGE,
    SQL_INTEREST_TAKE,
    SQL_INTEREST_COUNT,
    SQL_INTEREST_DEL,
    SQL_TOPIC_SHRINK,
    SQL_NEXT_DUE,
    SQL_LEASE_GET,
    SQL_LEASE_PUT,
    SQL_LEASE_DEL,
    SQL_COUNT,
};

/* Whether every consumer of topic ?1 (there is one at least) is done with
 * message seq: past it (next_seq), without a delivery of it (pending or
 * dead). A walk of the topic's consumers, each a lookup by primary key. */
#define DONE_WITH(seq)                                                                             \
    "EXISTS (SELECT 1 FROM consumers WHERE topic = ?1) "                                           \
    "AND NOT EXISTS (SELECT 1 FROM consumers c WHERE c.topic = ?1 AND (c.next_seq <= " seq " "     \
    "OR EXISTS (SELECT 1 FROM deliveries d WHERE d.topic = ?1 AND d.consumer = c.name "            \
    "AND d.seq = " seq ")))"

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
                     "WHERE kind = ?1 AND name >= ?2 AND name > ?3 "
                     "AND substr(name, 1, length(?2)) = ?2 ORDER BY name LIMIT ?4",
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
    [SQL_TOPIC_GET] = "SELECT max_msgs, max_bytes, max_age, dup_window, last_seq, bytes, count, "
                      "interest, last_id FROM topics WHERE name = ?1",
    [SQL_TOPIC_PUT] = "INSERT INTO topics(name, max_msgs, max_bytes, max_age, dup_window, "
                      "last_seq, bytes, count, interest) VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, 0, ?6) "
                      "ON CONFLICT(name) DO UPDATE SET max_msgs = excluded.max_msgs, "
                      "max_bytes = excluded.max_bytes, max_age = excluded.max_age, "
                      "dup_window = excluded.dup_window, interest = excluded.interest",
    [SQL_TOPIC_UPDATE] = "UPDATE topics SET last_seq = ?2, bytes = ?3, count = ?4, "
                         "last_id = coalesce(?5, last_id) WHERE name = ?1",
    [SQL_TOPIC_DEL] = "DELETE FROM topics WHERE name = ?1",
    [SQL_TOPIC_MSGS_DEL] = "DELETE FROM messages WHERE topic = ?1",
    [SQL_TOPIC_DEDUP_DEL] = "DELETE FROM dedup WHERE topic = ?1",
    [SQL_TOPIC_CONSUMERS_DEL] = "DELETE FROM consumers WHERE topic = ?1",
    [SQL_TOPIC_DELIVERIES_DEL] = "DELETE FROM deliveries WHERE topic = ?1",
    [SQL_TOPICS_PAGE] = "SELECT name FROM topics WHERE name >= ?1 AND name > ?2 "
                        "AND substr(name, 1, length(?1)) = ?1 ORDER BY name LIMIT ?3",
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
    /* with the topic's interest flag, so that an ack needs no statement more to know it */
    [SQL_CONSUMER_GET] = "SELECT c.ack_wait, c.max_deliver, c.next_seq, c.max_ack_pending, "
                         "c.deliver, c.start_seq, t.interest FROM consumers c "
                         "JOIN topics t ON t.name = c.topic WHERE c.topic = ?1 AND c.name = ?2",
    [SQL_CONSUMER_INSERT] = "INSERT INTO consumers(topic, name, ack_wait, max_deliver, next_seq, "
                            "max_ack_pending, deliver, start_seq) "
                            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [SQL_CONSUMER_UPDATE] = "UPDATE consumers SET ack_wait = ?3, max_deliver = ?4, "
                            "max_ack_pending = ?5 WHERE topic = ?1 AND name = ?2",
    [SQL_CONSUMER_ADVANCE] = "UPDATE consumers SET next_seq = ?3 WHERE topic = ?1 AND name = ?2",
    [SQL_CONSUMER_DEL] = "DELETE FROM consumers WHERE topic = ?1 AND name = ?2",
    [SQL_CONSUMER_DELIVERIES_DEL] = "DELETE FROM deliveries WHERE topic = ?1 AND consumer = ?2",
    [SQL_CONSUMER_COUNT] = "SELECT count(*) FROM consumers WHERE topic = ?1",
    [SQL_CONSUMERS_PAGE] = "SELECT name FROM consumers WHERE topic = ?1 AND name > ?2 "
                           "ORDER BY name LIMIT ?3",
    [SQL_PENDING_COUNT] = "SELECT count(*), coalesce(sum(dead), 0) FROM deliveries "
                          "WHERE topic = ?1 AND consumer = ?2",
    [SQL_DUE] = "SELECT seq, count, reason FROM deliveries WHERE topic = ?1 AND consumer = ?2 "
                "AND dead = 0 AND deadline <= ?3 ORDER BY seq LIMIT ?4",
    [SQL_DELIVERY_SET] = "INSERT INTO deliveries(topic, consumer, seq, count, deadline, dead) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, 0) ON CONFLICT(topic, consumer, seq) "
                         "DO UPDATE SET count = excluded.count, deadline = excluded.deadline, "
                         "dead = 0",
    [SQL_DELIVERY_NAK] = "UPDATE deliveries SET deadline = ?4, reason = ?5 WHERE topic = ?1 "
                         "AND consumer = ?2 AND seq = ?3",
    [SQL_DELIVERY_DEAD] = "UPDATE deliveries SET dead = 1, reason = ?4 WHERE topic = ?1 "
                          "AND consumer = ?2 AND seq = ?3",
    [SQL_DELIVERY_GET] = "SELECT count, deadline, dead FROM deliveries WHERE topic = ?1 "
                         "AND consumer = ?2 AND seq = ?3",
    [SQL_DELIVERY_DEL] = "DELETE FROM deliveries WHERE topic = ?1 AND consumer = ?2 AND seq = ?3",
    [SQL_MSG_GET] = "SELECT ts, msg_id, headers, data FROM messages WHERE topic = ?1 AND seq = ?2",
    [SQL_MSGS_FROM] = "SELECT seq, ts, msg_id, headers, data FROM messages WHERE topic = ?1 "
                      "AND seq >= ?2 ORDER BY seq LIMIT ?3",
    /* by the index of ids (messages_id: text ids only); ?3 is now, for the max age */
    [SQL_MSG_FIND] = "SELECT m.topic, m.seq, m.ts, m.msg_id, m.headers, m.data FROM messages m "
                     "JOIN topics t ON t.name = m.topic WHERE m.msg_id = ?2 "
                     "AND typeof(m.msg_id) = 'text' AND substr(m.topic, 1, length(?1)) = ?1 "
                     "AND (t.max_age = 0 OR m.ts >= ?3 - t.max_age) ORDER BY m.topic, m.seq "
                     "LIMIT 1",
    [SQL_MSG_IDS] = "SELECT m.topic, m.seq, m.ts, m.msg_id, m.headers, length(m.data) "
                    "FROM messages m JOIN topics t ON t.name = m.topic WHERE m.msg_id > ?2 "
                    "AND typeof(m.msg_id) = 'text' AND substr(m.topic, 1, length(?1)) = ?1 "
                    "AND (t.max_age = 0 OR m.ts >= ?3 - t.max_age) "
                    "ORDER BY m.msg_id, m.topic, m.seq",
    /* the ordered ids of a topic without de-duplication (sqlite_schema.c) */
    [SQL_MSG_ORDERED_FROM] = "SELECT seq, msg_id FROM messages WHERE topic = ?1 AND seq >= ?2 "
                             "AND typeof(msg_id) = 'blob' ORDER BY seq LIMIT 1",
    [SQL_MSGS_ORDERED_FROM] = "SELECT seq, ts, msg_id, headers, length(data) FROM messages "
                              "WHERE topic = ?1 AND seq >= ?2 AND typeof(msg_id) = 'blob' "
                              "ORDER BY seq",
    [SQL_MSG_IDS_TO_TEXT] = "UPDATE messages SET msg_id = CAST(msg_id AS TEXT) "
                            "WHERE topic = ?1 AND typeof(msg_id) = 'blob'",
    [SQL_ORDERED_TOPICS] = "SELECT name, max_age, last_seq FROM topics WHERE name >= ?1 "
                           "AND substr(name, 1, length(?1)) = ?1 AND dup_window = -1 "
                           "ORDER BY name",
    [SQL_DEAD_LIST] = "SELECT d.seq, d.count, m.ts, m.msg_id, m.headers, m.data, d.reason "
                      "FROM deliveries d JOIN messages m ON m.topic = d.topic AND m.seq = d.seq "
                      "WHERE d.topic = ?1 AND d.consumer = ?2 AND d.dead = 1 AND d.seq > ?3 "
                      "ORDER BY d.seq LIMIT ?4",
    [SQL_REDRIVE_ONE] = "UPDATE deliveries SET dead = 0, count = 0, deadline = 0, reason = NULL "
                        "WHERE topic = ?1 AND consumer = ?2 AND seq = ?3 AND dead = 1",
    [SQL_REDRIVE_ALL] = "UPDATE deliveries SET dead = 0, count = 0, deadline = 0, reason = NULL "
                        "WHERE topic = ?1 AND consumer = ?2 AND dead = 1",
    [SQL_PURGE_ONE] = "DELETE FROM deliveries WHERE topic = ?1 AND consumer = ?2 AND seq = ?3 "
                      "AND dead = 1",
    /* +dead: by the consumer's key, not through the index of every dead letter */
    [SQL_PURGE_ALL] = "DELETE FROM deliveries WHERE topic = ?1 AND consumer = ?2 AND +dead = 1",
    [SQL_DEAD_RANGE] = "SELECT min(seq), max(seq) FROM deliveries WHERE topic = ?1 "
                       "AND consumer = ?2 AND +dead = 1",
    /* Interest retention. One message ?2 of topic ?1 that every consumer is
     * done with leaves the topic's count and bytes (if the topic row changed,
     * SQL_MSG_DEL removes it); a range [?2, ?3] of them is counted, removed,
     * then taken off with SQL_TOPIC_SHRINK. No RETURNING: SQLite gives each
     * run of such a statement a temporary table of its own, which cost an
     * ack ten times what the statement itself did. */
    [SQL_INTEREST_TAKE] = "UPDATE topics SET count = count - 1, bytes = bytes - "
                          "(SELECT length(data) FROM messages WHERE topic = ?1 AND seq = ?2) "
                          "WHERE name = ?1 AND EXISTS (SELECT 1 FROM messages "
                          "WHERE topic = ?1 AND seq = ?2) AND " DONE_WITH("?2"),
    [SQL_INTEREST_COUNT] = "SELECT count(*), coalesce(sum(length(data)), 0) FROM messages "
                           "WHERE topic = ?1 AND seq >= ?2 AND seq <= ?3 "
                           "AND " DONE_WITH("messages.seq"),
    [SQL_INTEREST_DEL] = "DELETE FROM messages WHERE topic = ?1 AND seq >= ?2 AND seq <= ?3 "
                         "AND " DONE_WITH("messages.seq"),
    [SQL_TOPIC_SHRINK] = "UPDATE topics SET count = count - ?2, bytes = bytes - ?3 "
                         "WHERE name = ?1",
    [SQL_NEXT_DUE] = "SELECT min(deadline) FROM deliveries WHERE dead = 0",
    [SQL_LEASE_GET] = "SELECT owner, revision, expires FROM leases WHERE name = ?1",
    [SQL_LEASE_PUT] = "INSERT INTO leases(name, owner, revision, expires) VALUES (?1, ?2, ?3, ?4) "
                      "ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, "
                      "revision = excluded.revision, expires = excluded.expires",
    [SQL_LEASE_DEL] = "DELETE FROM leases WHERE name = ?1",
};

int fl_sqlite_prepare_all(struct fl_sqlite_worker *w, char *err, size_t errsize)
{
    _Static_assert(SQL_COUNT <= FL_SQLITE_STMTS, "room for every statement");
    for (int i = 0; i < SQL_COUNT; i++) {
        int rc = sqlite3_prepare_v3(w->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &w->stmts[i],
                                    NULL);
        if (rc != SQLITE_OK) {
            snprintf(err, errsize, "'%s' does not have flint's schema or is corrupt: %s",
                     sqlite3_db_filename(w->db, "main"), sqlite3_errmsg(w->db));
            return FL_ECORRUPT;
        }
    }
    return 0;
}

void fl_sqlite_finalize_all(struct fl_sqlite_worker *w)
{
    for (size_t i = 0; i < FL_SQLITE_STMTS; i++) {
        sqlite3_finalize(w->stmts[i]);
        w->stmts[i] = NULL;
    }
}

static sqlite3_stmt *stmt(struct fl_sqlite_worker *w, enum sql id)
{
    sqlite3_stmt *st = w->stmts[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

int fl_sqlite_exec(struct fl_sqlite_worker *w, int id)
{
    sqlite3_stmt *st = stmt(w, (enum sql)id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fl_sqlite_err(rc);
}

/* Step a statement that returns no rows; 0 or an FL_E* code. */
static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fl_sqlite_err(rc);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Bind ?1 and ?2: the two names most statements start with. */
static sqlite3_stmt *stmt2(struct fl_sqlite_worker *w, enum sql id, const char *a, const char *b)
{
    sqlite3_stmt *st = stmt(w, id);
    bind_text(st, 1, a);
    if (b != NULL)
        bind_text(st, 2, b);
    return st;
}

int64_t fl_sqlite_meta_get(struct fl_sqlite_worker *w, const char *key)
{
    sqlite3_stmt *st = stmt2(w, SQL_META_GET, key, NULL);
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return v;
}

static int meta_set(struct fl_sqlite_worker *w, const char *key, int64_t value)
{
    sqlite3_stmt *st = stmt2(w, SQL_META_SET, key, NULL);
    sqlite3_bind_int64(st, 2, value);
    return step_done(st);
}

/* The next value of counter key in meta, saved. */
static int meta_next(struct fl_sqlite_worker *w, const char *key, uint64_t *out)
{
    uint64_t v = (uint64_t)fl_sqlite_meta_get(w, key) + 1;
    int rc = meta_set(w, key, (int64_t)v);
    *out = v;
    return rc;
}

int64_t fl_sqlite_count_recent(sqlite3 *db)
{
    sqlite3_stmt *st;
    int64_t n = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM recent", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* ---- results ---- */

static char *copy(const char *s)
{
    return s ? fl_strndup(s, strlen(s)) : NULL;
}

static char *dup_column(sqlite3_stmt *st, int col, size_t *len)
{
    const void *p = sqlite3_column_blob(st, col);
    int n = sqlite3_column_bytes(st, col);
    char *s = fl_strndup(p ? p : "", (size_t)n);
    if (len != NULL)
        *len = (size_t)n;
    return s;
}

static char *dup_column_or_null(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NULL : dup_column(st, col, NULL);
}

static struct fl_record *add_record(struct fl_sqlite_job *j)
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

void fl_sqlite_free_results(struct fl_sqlite_job *j)
{
    for (size_t i = 0; i < j->nrecords; i++) {
        free((char *)j->records[i].key);
        free((char *)j->records[i].type);
        free((char *)j->records[i].data);
        free((char *)j->records[i].headers);
        free((char *)j->records[i].reason);
    }
    free(j->records);
    j->records = NULL;
    j->nrecords = j->cap = 0;
    for (size_t i = 0; i < j->ninfo; i++) {
        if (j->topics != NULL)
            free((char *)j->topics[i].name);
        if (j->consumers != NULL) {
            free((char *)j->consumers[i].topic);
            free((char *)j->consumers[i].name);
        }
    }
    free(j->topics);
    free(j->consumers);
    j->topics = NULL;
    j->consumers = NULL;
    j->ninfo = j->infocap = 0;
    free(j->cursor);
    j->cursor = NULL;
}

/* Fill in NULL strings so callers never see one. */
static int finish_record(struct fl_record *r)
{
    static const char *const empty[] = {"", "", "", "{}", ""};
    const char **fields[] = {&r->key, &r->type, &r->data, &r->headers, &r->reason};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (*fields[i] == NULL)
            *fields[i] = copy(empty[i]);
        if (*fields[i] == NULL)
            return FL_ENOMEM;
    }
    return 0;
}

/* Paging: the limit for the SQL (one more than the page, to see whether
 * there is more), or -1 for an unpaged read. */
static int64_t page_sql_limit(const struct fl_sqlite_job *j)
{
    return j->paged ? j->i5 + 1 : -1;
}

/* Whether a paged read already holds a full page (have records): then
 * the row in hand is the first of the next page, which starts after the
 * last one kept (page_next). */
static bool page_done(const struct fl_sqlite_job *j, size_t have)
{
    return j->paged && (int64_t)have >= j->i5;
}

static int page_next(struct fl_sqlite_job *j, const char *last)
{
    j->cursor = copy(last);
    return j->cursor ? 0 : FL_ENOMEM;
}

/* ---- resources ---- */

static int add_change(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, uint64_t rev, bool put,
                      int64_t now)
{
    sqlite3_stmt *st = stmt2(w, SQL_CHANGE_ADD, NULL, NULL);
    sqlite3_bind_int64(st, 1, (int64_t)rev);
    bind_text(st, 2, j->s1);
    bind_text(st, 3, j->s2);
    sqlite3_bind_int(st, 4, put ? 1 : 2);
    if (put)
        sqlite3_bind_blob(st, 5, j->blob, (int)j->blob_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, now);
    int rc = step_done(st);
    if (rc == 0) {
        j->res.seq = rev;
        j->changed = true;
    }
    return rc;
}

/* The current revision of kind/name in *rev; false if there is none. */
static bool resource_revision(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, uint64_t *rev)
{
    sqlite3_stmt *st = stmt2(w, SQL_RES_GET, j->s1, j->s2);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    *rev = found ? (uint64_t)sqlite3_column_int64(st, 1) : 0;
    sqlite3_reset(st);
    return found;
}

static int do_put(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t now)
{
    uint64_t current, rev;
    resource_revision(w, j, &current);
    if (j->u1 != FL_REV_ANY && j->u1 != current)
        return FL_ECONFLICT;
    int rc = meta_next(w, "revision", &rev);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = stmt2(w, SQL_RES_PUT, j->s1, j->s2);
    sqlite3_bind_blob(st, 3, j->blob, (int)j->blob_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (int64_t)rev);
    sqlite3_bind_int64(st, 5, now);
    rc = step_done(st);
    return rc < 0 ? rc : add_change(w, j, rev, true, now);
}

static int do_delete(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t now)
{
    uint64_t current, rev;
    if (!resource_revision(w, j, &current))
        return FL_ENOENT;
    if (j->u1 != FL_REV_ANY && j->u1 != current)
        return FL_ECONFLICT;
    int rc = meta_next(w, "revision", &rev);
    if (rc == 0)
        rc = step_done(stmt2(w, SQL_RES_DELETE, j->s1, j->s2));
    return rc < 0 ? rc : add_change(w, j, rev, false, now);
}

static int resource_record(struct fl_sqlite_job *j, sqlite3_stmt *st, const char *name, int col)
{
    struct fl_record *r = add_record(j);
    if (r == NULL)
        return FL_ENOMEM;
    r->key = copy(name);
    r->type = copy(j->s1);
    r->data = dup_column(st, col, &r->len);
    r->seq = (uint64_t)sqlite3_column_int64(st, col + 1);
    r->created_ms = sqlite3_column_int64(st, col + 2);
    r->ts_ms = sqlite3_column_int64(st, col + 3);
    return finish_record(r);
}

static int do_get(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    sqlite3_stmt *st = stmt2(w, SQL_RES_GET, j->s1, j->s2);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = resource_record(j, st, j->s2, 0);
    else
        rc = rc == SQLITE_DONE ? FL_ENOENT : fl_sqlite_err(rc);
    sqlite3_reset(st);
    return rc;
}

static int do_list(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    j->res.seq = (uint64_t)fl_sqlite_meta_get(w, "revision"); /* as of this read */
    sqlite3_stmt *st = stmt2(w, SQL_RES_LIST, j->s1, j->s2);
    bind_text(st, 3, j->after ? j->after : "");
    sqlite3_bind_int64(st, 4, page_sql_limit(j));
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (page_done(j, j->nrecords)) {
            rc = page_next(j, j->records[j->nrecords - 1].key);
            break;
        }
        rc = resource_record(j, st, (const char *)sqlite3_column_text(st, 0), 1);
    }
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = fl_sqlite_err(step);
    sqlite3_reset(st);
    return rc;
}

static int do_changes(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    if (j->u1 < (uint64_t)fl_sqlite_meta_get(w, "compacted")) {
        j->res.seq = (uint64_t)fl_sqlite_meta_get(w, "revision"); /* where to go on from */
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
        r->type = copy(put ? "put" : "delete");
        r->headers = dup_column(st, 1, NULL);
        r->data = put ? dup_column(st, 4, &r->len) : NULL;
        r->ts_ms = sqlite3_column_int64(st, 5);
        if (finish_record(r) < 0) {
            sqlite3_reset(st);
            return FL_ENOMEM;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fl_sqlite_err(rc);
}

/* ---- leases ---- */

struct lease_row {
    char owner[257];
    uint64_t revision;
    int64_t expires;
};

static bool lease_get(struct fl_sqlite_worker *w, const char *name, struct lease_row *l)
{
    sqlite3_stmt *st = stmt2(w, SQL_LEASE_GET, name, NULL);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        const char *owner = (const char *)sqlite3_column_text(st, 0);
        fl_strlcpy(l->owner, owner ? owner : "", sizeof(l->owner));
        l->revision = (uint64_t)sqlite3_column_int64(st, 1);
        l->expires = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    return found;
}

static int lease_record(struct fl_sqlite_job *j, const char *name, const struct lease_row *l)
{
    struct fl_record *r = add_record(j);
    if (r == NULL)
        return FL_ENOMEM;
    r->key = copy(name);
    r->data = copy(l->owner);
    r->len = strlen(l->owner);
    r->seq = l->revision;
    r->ts_ms = l->expires;
    return finish_record(r);
}

/* Hold name for owner until expires, at a new revision. */
static int lease_put(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, const char *owner,
                     int64_t expires)
{
    struct lease_row l = {.expires = expires};
    fl_strlcpy(l.owner, owner, sizeof(l.owner));
    int rc = meta_next(w, "lease_rev", &l.revision);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = stmt2(w, SQL_LEASE_PUT, j->s1, owner);
    sqlite3_bind_int64(st, 3, (int64_t)l.revision);
    sqlite3_bind_int64(st, 4, expires);
    rc = step_done(st);
    return rc < 0 ? rc : lease_record(j, j->s1, &l);
}

static int do_lease_acquire(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t now)
{
    struct lease_row l;
    if (lease_get(w, j->s1, &l) && l.expires > now) {
        j->keep_on_error = true; /* say who holds it */
        int rc = lease_record(j, j->s1, &l);
        return rc < 0 ? rc : FL_ECONFLICT;
    }
    return lease_put(w, j, j->s2, now + j->i1);
}

static int do_lease_renew(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t now)
{
    struct lease_row l;
    if (!lease_get(w, j->s1, &l) || l.revision != j->u1)
        return FL_ECONFLICT;
    return lease_put(w, j, l.owner, now + j->i1);
}

static int do_lease_release(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    struct lease_row l;
    if (!lease_get(w, j->s1, &l))
        return FL_ENOENT;
    if (l.revision != j->u1)
        return FL_ECONFLICT;
    return step_done(stmt2(w, SQL_LEASE_DEL, j->s1, NULL));
}

static int do_lease_get(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    struct lease_row l;
    return lease_get(w, j->s1, &l) ? lease_record(j, j->s1, &l) : FL_ENOENT;
}

/* ---- event streams ---- */

static uint64_t stream_last(struct fl_sqlite_worker *w, const char *stream)
{
    sqlite3_stmt *st = stmt2(w, SQL_STREAM_GET, stream, NULL);
    uint64_t last = sqlite3_step(st) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return last;
}

static int do_append(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t now)
{
    if (j->s2 != NULL) { /* fenced: the lease must be held at revision u2 */
        struct lease_row l;
        if (!lease_get(w, j->s2, &l) || l.revision != j->u2 || l.expires <= now)
            return FL_ECONFLICT;
    }
    uint64_t last = stream_last(w, j->s1);
    if (j->u1 != FL_SEQ_ANY && j->u1 != last)
        return FL_ECONFLICT;
    /* The global sequence lives in the writer between commits; meta keeps
     * it durable (saved once per batch, see fl_sqlite_batch_end). */
    uint64_t gseq = w->gseq;
    for (size_t i = 0; i < j->nevents; i++) {
        sqlite3_stmt *st = stmt2(w, SQL_EVENT_ADD, j->s1, NULL);
        sqlite3_bind_int64(st, 2, (int64_t)(last + 1 + i));
        sqlite3_bind_int64(st, 3, (int64_t)(gseq + 1 + i));
        sqlite3_bind_int64(st, 4, now);
        bind_text(st, 5, j->events[i].type);
        sqlite3_bind_blob(st, 6, j->events[i].data, (int)j->events[i].len, SQLITE_STATIC);
        int rc = step_done(st);
        if (rc < 0)
            return rc;
    }
    sqlite3_stmt *st = stmt2(w, SQL_STREAM_SET, j->s1, NULL);
    sqlite3_bind_int64(st, 2, (int64_t)(last + j->nevents));
    int rc = step_done(st);
    if (rc < 0)
        return rc;
    w->gseq = gseq + j->nevents;
    w->gseq_dirty = true;
    w->recent += (int64_t)j->nevents;
    j->res.seq = last + 1;
    j->res.gseq = gseq + 1;
    return 0;
}

/* Up to *limit events of stream from seq on, from one table. */
static int read_events(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, enum sql which,
                       uint64_t from, int64_t *limit)
{
    sqlite3_stmt *st = stmt2(w, which, j->s1, NULL);
    sqlite3_bind_int64(st, 2, (int64_t)from);
    sqlite3_bind_int64(st, 3, *limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct fl_record *r = add_record(j);
        if (r == NULL) {
            sqlite3_reset(st);
            return FL_ENOMEM;
        }
        r->key = copy(j->s1);
        r->seq = (uint64_t)sqlite3_column_int64(st, 0);
        r->gseq = (uint64_t)sqlite3_column_int64(st, 1);
        r->ts_ms = sqlite3_column_int64(st, 2);
        r->type = dup_column(st, 3, NULL);
        r->data = dup_column(st, 4, &r->len);
        if (finish_record(r) < 0) {
            sqlite3_reset(st);
            return FL_ENOMEM;
        }
        (*limit)--;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fl_sqlite_err(rc);
}

static int do_read(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    int64_t limit = j->i1;
    int rc = read_events(w, j, SQL_EVENTS_READ, j->u1, &limit);
    if (rc == 0 && limit > 0) {
        uint64_t from = j->nrecords > 0 ? j->records[j->nrecords - 1].seq + 1 : j->u1;
        rc = read_events(w, j, SQL_RECENT_READ, from, &limit);
    }
    /* a full page: where to go on from */
    if (rc == 0 && limit == 0 && j->nrecords > 0)
        j->res.seq = j->records[j->nrecords - 1].seq + 1;
    return rc;
}

static int add_stream(struct fl_sqlite_job *j, const char *name, uint64_t last)
{
    struct fl_record *r = add_record(j);
    if (r == NULL)
        return FL_ENOMEM;
    r->key = copy(name);
    r->seq = last;
    return finish_record(r);
}

/* Each stream once: a stream named exactly the prefix (on the first
 * page), then seek after the previous name for the next one while names
 * still start with the prefix. */
static int do_streams(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    size_t plen = strlen(j->s1);
    int rc = 0;
    bool first_page = j->after == NULL || j->after[0] == '\0';
    uint64_t last = first_page && plen > 0 ? stream_last(w, j->s1) : 0;
    if (last > 0)
        rc = add_stream(j, j->s1, last);
    char *prev = copy(first_page ? j->s1 : j->after);
    if (prev == NULL)
        return FL_ENOMEM;
    while (rc == 0) {
        sqlite3_stmt *st = stmt2(w, SQL_STREAM_NEXT, prev, NULL);
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
        bool past = strncmp(name, j->s1, plen) != 0;
        if (!past && page_done(j, j->nrecords))
            rc = page_next(j, j->records[j->nrecords - 1].key);
        if (past || page_done(j, j->nrecords)) {
            free(name); /* past the prefix, or the page is full */
            break;
        }
        rc = add_stream(j, name, last);
        free(prev);
        prev = name;
    }
    free(prev);
    return rc;
}

static int delete_all(struct fl_sqlite_worker *w, const enum sql *steps, size_t n, const char *a,
                      const char *b)
{
    for (size_t i = 0; i < n; i++) {
        int rc = step_done(stmt2(w, steps[i], a, b));
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int do_stream_delete(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    /* the streams row first: whether it existed says it all */
    static const enum sql steps[] = {SQL_STREAM_DEL, SQL_EVENTS_DEL, SQL_RECENT_DEL};
    int rc = step_done(stmt2(w, steps[0], j->s1, NULL));
    if (rc == 0 && sqlite3_changes(w->db) == 0)
        return FL_ENOENT;
    return rc < 0 ? rc : delete_all(w, steps + 1, 2, j->s1, NULL);
}

/* Move every recent event to events (see sqlite_schema.c). */
static int move_recent(struct fl_sqlite_worker *w)
{
    int rc = fl_sqlite_exec(w, SQL_RECENT_MOVE);
    rc = rc ? rc : fl_sqlite_exec(w, SQL_RECENT_CLEAR);
    if (rc == 0)
        w->recent = 0;
    return rc;
}

/* ---- topics ---- */

struct topic_row {
    int64_t max_msgs, max_bytes, max_age, dup_window, last_seq, bytes, count, interest;
    /* the last ordered id given (sqlite_schema.c), and one to save */
    bool has_last_id;
    size_t last_id_len;
    char last_id[256];
    const char *save_last_id;
};

static int topic_get(struct fl_sqlite_worker *w, const char *topic, struct topic_row *t)
{
    sqlite3_stmt *st = stmt2(w, SQL_TOPIC_GET, topic, NULL);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t *cols[] = {&t->max_msgs, &t->max_bytes, &t->max_age, &t->dup_window,
                           &t->last_seq, &t->bytes,     &t->count,   &t->interest};
        for (int i = 0; i < 8; i++)
            *cols[i] = sqlite3_column_int64(st, i);
        size_t n = (size_t)sqlite3_column_bytes(st, 8);
        t->has_last_id = sqlite3_column_type(st, 8) != SQLITE_NULL;
        t->last_id_len = n <= sizeof(t->last_id) ? n : sizeof(t->last_id);
        if (n > sizeof(t->last_id)) /* never given (ids are 256 bytes at most): after any */
            memset(t->last_id, 0xff, sizeof(t->last_id));
        else if (n > 0)
            memcpy(t->last_id, sqlite3_column_blob(st, 8), n);
        t->save_last_id = NULL;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? FL_ENOENT : fl_sqlite_err(rc);
}

static int topic_save(struct fl_sqlite_worker *w, const char *topic, const struct topic_row *t)
{
    sqlite3_stmt *st = stmt2(w, SQL_TOPIC_UPDATE, topic, NULL);
    sqlite3_bind_int64(st, 2, t->last_seq);
    sqlite3_bind_int64(st, 3, t->bytes);
    sqlite3_bind_int64(st, 4, t->count);
    if (t->save_last_id != NULL)
        sqlite3_bind_blob(st, 5, t->save_last_id, (int)strlen(t->save_last_id), SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    return step_done(st);
}

/* The oldest message kept (last_seq + 1 when none). */
static int64_t topic_first(struct fl_sqlite_worker *w, const char *topic, const struct topic_row *t)
{
    sqlite3_stmt *st = stmt2(w, SQL_MSG_OLDEST, topic, NULL);
    int64_t first = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : t->last_seq + 1;
    sqlite3_reset(st);
    return first;
}

/* Remove the oldest messages past the topic's limits. */
static int enforce_limits(struct fl_sqlite_worker *w, const char *topic, struct topic_row *t,
                          int64_t now)
{
    for (;;) {
        sqlite3_stmt *st = stmt2(w, SQL_MSG_OLDEST, topic, NULL);
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
        st = stmt2(w, SQL_MSG_DEL, topic, NULL);
        sqlite3_bind_int64(st, 2, seq);
        int rc = step_done(st);
        if (rc < 0)
            return rc;
        t->count--;
        t->bytes -= size;
    }
}

/* Interest retention: remove message seq of topic if every consumer is
 * done with it. One statement if it stays, two if it goes. */
static int interest_take(struct fl_sqlite_worker *w, const char *topic, int64_t seq)
{
    sqlite3_stmt *st = stmt2(w, SQL_INTEREST_TAKE, topic, NULL);
    sqlite3_bind_int64(st, 2, seq);
    int rc = step_done(st);
    if (rc < 0 || sqlite3_changes(w->db) == 0)
        return rc;
    st = stmt2(w, SQL_MSG_DEL, topic, NULL);
    sqlite3_bind_int64(st, 2, seq);
    return step_done(st);
}

/* Interest retention: remove the messages of topic with sequences in
 * [from, to] that every consumer is done with (none if it has no
 * consumer), and count them out of the topic. */
static int interest_remove(struct fl_sqlite_worker *w, const char *topic, int64_t from, int64_t to)
{
    sqlite3_stmt *st = stmt2(w, SQL_INTEREST_COUNT, topic, NULL);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    int rc = sqlite3_step(st);
    int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    int64_t bytes = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return fl_sqlite_err(rc) ? fl_sqlite_err(rc) : FL_EIO;
    if (n == 0)
        return 0;
    st = stmt2(w, SQL_INTEREST_DEL, topic, NULL);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    rc = step_done(st);
    if (rc < 0)
        return rc;
    st = stmt2(w, SQL_TOPIC_SHRINK, topic, NULL);
    sqlite3_bind_int64(st, 2, n);
    sqlite3_bind_int64(st, 3, bytes);
    return step_done(st);
}

/* Every message of an interest topic that no consumer needs any more (after
 * a change of its consumers or of its limits): a walk of the whole topic. */
static int interest_sweep(struct fl_sqlite_worker *w, const char *topic)
{
    return interest_remove(w, topic, 0, INT64_MAX);
}

static int do_topic_create(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    struct topic_row was;
    bool was_ordered = topic_get(w, j->s1, &was) == 0 && was.dup_window == FL_TOPIC_DEDUP_NONE;
    sqlite3_stmt *st = stmt2(w, SQL_TOPIC_PUT, j->s1, NULL);
    sqlite3_bind_int64(st, 2, j->i1);
    sqlite3_bind_int64(st, 3, j->i2);
    sqlite3_bind_int64(st, 4, j->i3);
    sqlite3_bind_int64(st, 5, j->i4);
    sqlite3_bind_int64(st, 6, j->u1 ? 1 : 0);
    int rc = step_done(st);
    /* ids it remembered before it stopped de-duplicating are no use now */
    if (rc == 0 && j->i4 == FL_TOPIC_DEDUP_NONE)
        rc = step_done(stmt2(w, SQL_TOPIC_DEDUP_DEL, j->s1, NULL));
    /* ordered ids are searched for only in topics without de-duplication:
     * one that starts de-duplicating puts its ordered ids in the index */
    if (rc == 0 && was_ordered && j->i4 != FL_TOPIC_DEDUP_NONE)
        rc = step_done(stmt2(w, SQL_MSG_IDS_TO_TEXT, j->s1, NULL));
    return rc < 0 || !j->u1 ? rc : interest_sweep(w, j->s1);
}

static int do_topic_delete(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    static const enum sql steps[] = {SQL_TOPIC_DEL, SQL_TOPIC_MSGS_DEL, SQL_TOPIC_DEDUP_DEL,
                                     SQL_TOPIC_CONSUMERS_DEL, SQL_TOPIC_DELIVERIES_DEL};
    int rc = step_done(stmt2(w, steps[0], j->s1, NULL));
    if (rc == 0 && sqlite3_changes(w->db) == 0)
        return FL_ENOENT;
    return rc < 0 ? rc : delete_all(w, steps + 1, 4, j->s1, NULL);
}

/* Room for one more info in j (topics or consumers, whichever is used). */
static int add_info(struct fl_sqlite_job *j, bool topics)
{
    size_t size = topics ? sizeof(*j->topics) : sizeof(*j->consumers);
    void **arr = topics ? (void **)&j->topics : (void **)&j->consumers;
    if (j->ninfo == j->infocap) {
        size_t cap = j->infocap ? j->infocap * 2 : 8;
        void *p = realloc(*arr, cap * size);
        if (p == NULL)
            return FL_ENOMEM;
        *arr = p;
        j->infocap = cap;
    }
    memset((char *)*arr + j->ninfo * size, 0, size);
    j->ninfo++;
    return 0;
}

static int topic_info(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, const char *name)
{
    struct topic_row t;
    int rc = topic_get(w, name, &t);
    if (rc == 0)
        rc = add_info(j, true);
    if (rc < 0)
        return rc;
    struct fl_topic_info *ti = &j->topics[j->ninfo - 1];
    ti->name = copy(name);
    ti->limits = (struct fl_topic_limits){(uint64_t)t.max_msgs, (uint64_t)t.max_bytes, t.max_age,
                                          t.dup_window, t.interest != 0};
    ti->first_seq = (uint64_t)topic_first(w, name, &t);
    ti->last_seq = (uint64_t)t.last_seq;
    ti->messages = (uint64_t)t.count;
    ti->bytes = (uint64_t)t.bytes;
    sqlite3_stmt *st = stmt2(w, SQL_CONSUMER_COUNT, name, NULL);
    ti->consumers = sqlite3_step(st) == SQLITE_ROW ? (uint32_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return ti->name ? 0 : FL_ENOMEM;
}

/* Page through names from a statement binding (?1 a, ?2 after, ?3 limit),
 * calling one() for each. */
static int page_names(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, enum sql which,
                      const char *a,
                      int (*one)(struct fl_sqlite_worker *, struct fl_sqlite_job *, const char *,
                                 const char *))
{
    /* the names first (one() runs statements of its own) */
    sqlite3_stmt *st = stmt2(w, which, a, j->after ? j->after : "");
    sqlite3_bind_int64(st, 3, page_sql_limit(j));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **p = realloc(names, cap * sizeof(*p));
            if (p == NULL) {
                rc = FL_ENOMEM;
                break;
            }
            names = p;
        }
        names[n] = dup_column(st, 0, NULL);
        rc = names[n++] ? 0 : FL_ENOMEM;
    }
    if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
        rc = fl_sqlite_err(step);
    sqlite3_reset(st);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (page_done(j, i)) {
            rc = page_next(j, names[i - 1]);
            break;
        }
        rc = one(w, j, a, names[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int one_topic(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, const char *prefix,
                     const char *name)
{
    return topic_info(w, j, name);
}

static int do_topic_info(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    return topic_info(w, j, j->s1);
}

static int do_topics(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    return page_names(w, j, SQL_TOPICS_PAGE, j->s1, one_topic);
}

/* Bytes p (n of them) against id, as SQLite orders text: bytes, then length. */
static int bytes_cmp(const void *p, size_t n, const char *id)
{
    size_t m = strlen(id);
    int c = n && m ? memcmp(p, id, n < m ? n : m) : 0;
    return c != 0 ? c : (n > m) - (n < m);
}

/* Column col of st (an id) against id. */
static int id_cmp(sqlite3_stmt *st, int col, const char *id)
{
    return bytes_cmp(sqlite3_column_blob(st, col), (size_t)sqlite3_column_bytes(st, col), id);
}

/* Whether msg_id, published to topic t without de-duplication, may be
 * kept as an ordered id (a blob, out of the index messages_id;
 * sqlite_schema.c): when it comes after every ordered id t was given. */
static bool id_in_order(const struct topic_row *t, const char *msg_id)
{
    return !t->has_last_id || bytes_cmp(t->last_id, t->last_id_len, msg_id) < 0;
}

/* The first message of a topic's ordered ids from seq lo to hi whose id
 * is at id (past it if past): *seq, or 0 when none. Ordered ids increase
 * with the sequence, so a search by halves finds it in a few seeks (text
 * ids in between are stepped over). */
static int ordered_seek(struct fl_sqlite_worker *w, const char *topic, int64_t lo, int64_t hi,
                        const char *id, bool past, int64_t *seq)
{
    *seq = 0;
    sqlite3_stmt *st = stmt2(w, SQL_MSG_ORDERED_FROM, topic, NULL);
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        sqlite3_bind_int64(st, 2, mid);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            sqlite3_reset(st);
            return fl_sqlite_err(rc);
        }
        int64_t at = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : hi + 1;
        int c = at <= hi ? id_cmp(st, 1, id) : 1;
        sqlite3_reset(st);
        if (at > hi || c > 0 || (c == 0 && !past)) {
            if (at <= hi)
                *seq = at;
            hi = mid - 1;
        } else {
            lo = at + 1;
        }
    }
    return 0;
}

static int do_publish(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t now)
{
    struct topic_row t;
    int rc = topic_get(w, j->s1, &t);
    if (rc < 0)
        return rc;
    const char *msg_id = j->s2;
    bool dedup = msg_id != NULL && t.dup_window != FL_TOPIC_DEDUP_NONE;
    if (dedup) {
        sqlite3_stmt *st = stmt2(w, SQL_DEDUP_GET, j->s1, msg_id);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 1) >= now - t.dup_window) {
            j->res.seq = (uint64_t)sqlite3_column_int64(st, 0);
            j->res.duplicate = true;
            sqlite3_reset(st);
            return 0;
        }
        sqlite3_reset(st);
    }
    bool ordered = msg_id != NULL && t.dup_window == FL_TOPIC_DEDUP_NONE && id_in_order(&t, msg_id);
    if (ordered)
        t.save_last_id = msg_id;
    t.last_seq++;
    sqlite3_stmt *st = stmt2(w, SQL_MSG_ADD, j->s1, NULL);
    sqlite3_bind_int64(st, 2, t.last_seq);
    sqlite3_bind_int64(st, 3, now);
    if (ordered)
        sqlite3_bind_blob(st, 4, msg_id, (int)strlen(msg_id), SQLITE_STATIC);
    else if (msg_id != NULL)
        bind_text(st, 4, msg_id);
    else
        sqlite3_bind_null(st, 4);
    bind_text(st, 5, j->s3);
    sqlite3_bind_blob(st, 6, j->blob, (int)j->blob_len, SQLITE_STATIC);
    rc = step_done(st);
    if (rc < 0)
        return rc;
    t.count++;
    t.bytes += (int64_t)j->blob_len;
    if (dedup) {
        st = stmt2(w, SQL_DEDUP_PUT, j->s1, msg_id);
        sqlite3_bind_int64(st, 3, t.last_seq);
        sqlite3_bind_int64(st, 4, now);
        rc = step_done(st);
        if (rc < 0)
            return rc;
        /* prune now and then, not on every publish */
        if (t.last_seq % 64 == 0) {
            st = stmt2(w, SQL_DEDUP_PRUNE, j->s1, NULL);
            sqlite3_bind_int64(st, 2, now - t.dup_window);
            step_done(st);
        }
    }
    rc = enforce_limits(w, j->s1, &t, now);
    if (rc == 0)
        rc = topic_save(w, j->s1, &t);
    j->res.seq = (uint64_t)t.last_seq;
    j->published = true;
    return rc;
}

/* A message into j's records: seq, its delivery count, and the columns
 * ts, msg_id, headers, data of st's row from col on. */
static int add_message(struct fl_sqlite_job *j, sqlite3_stmt *st, int col, int64_t seq,
                       uint32_t deliveries)
{
    struct fl_record *r = add_record(j);
    if (r == NULL)
        return FL_ENOMEM;
    r->seq = (uint64_t)seq;
    r->ts_ms = sqlite3_column_int64(st, col);
    r->key = dup_column_or_null(st, col + 1);
    r->headers = dup_column(st, col + 2, NULL);
    r->data = dup_column(st, col + 3, &r->len);
    r->deliveries = deliveries;
    return finish_record(r);
}

/* Messages of a topic from a sequence on, without a consumer: records as
 * a fetch gives them (deliveries 0). Rows past the topic's max age that
 * publishes and fetches have not removed yet are looked at, not given. */
static int do_topic_read(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t now)
{
    struct topic_row t;
    int rc = topic_get(w, j->s1, &t);
    if (rc < 0)
        return rc;
    int64_t oldest = t.max_age > 0 ? now - t.max_age : INT64_MIN, looked = 0, last = 0;
    sqlite3_stmt *st = stmt2(w, SQL_MSGS_FROM, j->s1, NULL);
    sqlite3_bind_int64(st, 2, (int64_t)j->u1);
    sqlite3_bind_int64(st, 3, j->i1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        looked++;
        last = sqlite3_column_int64(st, 0);
        if (sqlite3_column_int64(st, 1) < oldest)
            continue;
        if (add_message(j, st, 1, last, 0) < 0) {
            sqlite3_reset(st);
            return FL_ENOMEM;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fl_sqlite_err(rc);
    /* a full page: where to go on from */
    j->res.seq = looked == j->i1 ? (uint64_t)last + 1 : 0;
    return 0;
}

/* The topics under prefix whose ids may be ordered (without
 * de-duplication), by name: names (to free), their max ages and last
 * sequences. */
struct ordered_topics {
    char **names;
    int64_t *max_age, *last_seq;
    size_t n;
};

static void ordered_topics_free(struct ordered_topics *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->names[i]);
    free(o->names);
    free(o->max_age);
    free(o->last_seq);
}

static int ordered_topics(struct fl_sqlite_worker *w, const char *prefix, struct ordered_topics *o)
{
    memset(o, 0, sizeof(*o));
    sqlite3_stmt *st = stmt2(w, SQL_ORDERED_TOPICS, prefix, NULL);
    size_t cap = 0;
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (o->n == cap) {
            cap = cap ? cap * 2 : 8;
            char **names = realloc(o->names, cap * sizeof(*names));
            if (names != NULL)
                o->names = names;
            int64_t *ages = realloc(o->max_age, cap * sizeof(*ages));
            if (ages != NULL)
                o->max_age = ages;
            int64_t *lasts = realloc(o->last_seq, cap * sizeof(*lasts));
            if (lasts != NULL)
                o->last_seq = lasts;
            if (names == NULL || ages == NULL || lasts == NULL) {
                rc = FL_ENOMEM;
                break;
            }
        }
        o->names[o->n] = dup_column(st, 0, NULL);
        o->max_age[o->n] = sqlite3_column_int64(st, 1);
        o->last_seq[o->n] = sqlite3_column_int64(st, 2);
        rc = o->names[o->n] != NULL ? 0 : FL_ENOMEM;
        o->n += rc == 0;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = fl_sqlite_err(step);
    sqlite3_reset(st);
    if (rc < 0)
        ordered_topics_free(o);
    return rc;
}

/* The message of id s2 in a topic under prefix s1 (store.h): by the
 * index for text ids, by a search in each topic for ordered ones; the
 * first by topic name, then sequence. */
static int do_message_find(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t now)
{
    sqlite3_stmt *st = stmt2(w, SQL_MSG_FIND, j->s1, j->s2);
    sqlite3_bind_int64(st, 3, now);
    int rc = sqlite3_step(st);
    char *topic = rc == SQLITE_ROW ? dup_column(st, 0, NULL) : NULL;
    int64_t seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    sqlite3_reset(st);
    if (rc == SQLITE_ROW && topic == NULL)
        return FL_ENOMEM;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fl_sqlite_err(rc);
    struct ordered_topics o;
    rc = ordered_topics(w, j->s1, &o);
    for (size_t i = 0; rc == 0 && i < o.n; i++) {
        int c = topic != NULL ? strcmp(o.names[i], topic) : -1;
        if (c > 0)
            break;
        int64_t at;
        rc = ordered_seek(w, o.names[i], 1, o.last_seq[i], j->s2, false, &at);
        if (rc < 0 || at == 0 || (c == 0 && at > seq))
            continue;
        st = stmt2(w, SQL_MSG_GET, o.names[i], NULL);
        sqlite3_bind_int64(st, 2, at);
        bool kept = sqlite3_step(st) == SQLITE_ROW && id_cmp(st, 1, j->s2) == 0 &&
                    (o.max_age[i] == 0 || sqlite3_column_int64(st, 0) >= now - o.max_age[i]);
        sqlite3_reset(st);
        if (kept) {
            free(topic);
            topic = o.names[i];
            o.names[i] = NULL;
            seq = at;
            break;
        }
    }
    ordered_topics_free(&o);
    if (rc == 0 && topic == NULL)
        rc = FL_ENOENT;
    if (rc == 0) {
        st = stmt2(w, SQL_MSG_GET, topic, NULL);
        sqlite3_bind_int64(st, 2, seq);
        int step = sqlite3_step(st);
        rc = step == SQLITE_ROW ? add_message(j, st, 0, seq, 0) : fl_sqlite_err(step);
        sqlite3_reset(st);
        if (step == SQLITE_DONE)
            rc = FL_ENOENT;
    }
    if (rc == 0) {
        struct fl_record *r = &j->records[j->nrecords - 1];
        free((char *)r->type);
        r->type = topic;
        topic = NULL;
    }
    free(topic);
    return rc;
}

/* A message of a list of ids (no data, its size) from st: columns topic
 * (or topic itself when given), seq, ts, msg_id, headers, length(data)
 * from col on. */
static int add_id_record(struct fl_sqlite_job *j, sqlite3_stmt *st, const char *topic, int col)
{
    struct fl_record *r = add_record(j);
    if (r == NULL)
        return FL_ENOMEM;
    r->type = topic != NULL ? copy(topic) : dup_column(st, col, NULL);
    r->seq = (uint64_t)sqlite3_column_int64(st, col + 1);
    r->ts_ms = sqlite3_column_int64(st, col + 2);
    r->key = dup_column(st, col + 3, NULL);
    r->headers = dup_column(st, col + 4, NULL);
    r->len = (size_t)sqlite3_column_int64(st, col + 5);
    return r->type && r->key && r->headers ? finish_record(r) : FL_ENOMEM;
}

static int id_record_cmp(const void *a, const void *b)
{
    const struct fl_record *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c == 0)
        c = strcmp(x->type, y->type);
    return c != 0 ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* The ordered ids of topic o->names[i] after the cursor: at most limit
 * + 1 (-1: all), so that the page knows whether there is more. */
static int ordered_ids(struct fl_sqlite_worker *w, struct fl_sqlite_job *j,
                       const struct ordered_topics *o, size_t i, const char *after, int64_t now)
{
    int64_t from;
    int rc = ordered_seek(w, o->names[i], 1, o->last_seq[i], after, true, &from);
    if (rc < 0 || from == 0)
        return rc;
    int64_t limit = page_sql_limit(j), taken = 0, oldest = now - o->max_age[i];
    sqlite3_stmt *st = stmt2(w, SQL_MSGS_ORDERED_FROM, o->names[i], NULL);
    sqlite3_bind_int64(st, 2, from);
    int step = SQLITE_DONE;
    while (rc == 0 && (limit < 0 || taken < limit) && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (o->max_age[i] > 0 && sqlite3_column_int64(st, 1) < oldest)
            continue;
        /* columns seq, ts, msg_id, headers, length(data): a list's from -1 */
        rc = add_id_record(j, st, o->names[i], -1);
        taken++;
    }
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = fl_sqlite_err(step);
    sqlite3_reset(st);
    return rc;
}

/* A page of the messages that have an id under prefix s1, by id, after
 * the cursor (an id); a page ends between two ids, never inside one. The
 * text ids come by the index in order, each topic's ordered ids in
 * order: each gives more than a page when it has it, and the page is
 * the first of them all, merged. */
static int do_message_ids(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t now)
{
    const char *after = j->after ? j->after : "";
    sqlite3_stmt *st = stmt2(w, SQL_MSG_IDS, j->s1, after);
    sqlite3_bind_int64(st, 3, now);
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 3);
        if (page_done(j, j->nrecords) && (int64_t)j->nrecords > j->i5 &&
            strcmp(id ? id : "", j->records[j->nrecords - 1].key) != 0)
            break;
        rc = add_id_record(j, st, NULL, 0);
    }
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = fl_sqlite_err(step);
    sqlite3_reset(st);
    struct ordered_topics o;
    if (rc == 0)
        rc = ordered_topics(w, j->s1, &o);
    if (rc < 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < o.n; i++)
        rc = ordered_ids(w, j, &o, i, after, now);
    ordered_topics_free(&o);
    if (rc < 0 || j->nrecords == 0)
        return rc;
    qsort(j->records, j->nrecords, sizeof(*j->records), id_record_cmp);
    if (!j->paged || (int64_t)j->nrecords <= j->i5)
        return 0;
    size_t keep = (size_t)j->i5;
    while (keep < j->nrecords && strcmp(j->records[keep].key, j->records[keep - 1].key) == 0)
        keep++;
    if (keep == j->nrecords)
        return 0;
    for (size_t i = keep; i < j->nrecords; i++) {
        struct fl_record *r = &j->records[i];
        free((char *)r->key);
        free((char *)r->type);
        free((char *)r->data);
        free((char *)r->headers);
        free((char *)r->reason);
    }
    j->nrecords = keep;
    return page_next(j, j->records[keep - 1].key);
}

/* ---- consumers ---- */

struct consumer_row {
    int64_t ack_wait, max_deliver, next_seq, max_ack_pending, deliver, start_seq;
    int64_t interest; /* the topic's */
};

static int consumer_get(struct fl_sqlite_worker *w, const char *topic, const char *name,
                        struct consumer_row *c)
{
    sqlite3_stmt *st = stmt2(w, SQL_CONSUMER_GET, topic, name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t *cols[] = {&c->ack_wait, &c->max_deliver, &c->next_seq, &c->max_ack_pending,
                           &c->deliver,  &c->start_seq,   &c->interest};
        for (int i = 0; i < 7; i++)
            *cols[i] = sqlite3_column_int64(st, i);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? FL_ENOENT : fl_sqlite_err(rc);
}

/* Deliveries of a consumer: pending (neither acked nor dead) and dead. */
static void consumer_counts(struct fl_sqlite_worker *w, const char *topic, const char *name,
                            int64_t *pending, int64_t *dead)
{
    sqlite3_stmt *st = stmt2(w, SQL_PENDING_COUNT, topic, name);
    int64_t all = 0;
    *dead = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        all = sqlite3_column_int64(st, 0);
        *dead = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    *pending = all - *dead;
}

static int do_consumer_create(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    /* i1 ack_wait, i2 max_deliver, i3 max_ack_pending, i4 deliver, u1 start_seq */
    struct topic_row t;
    int rc = topic_get(w, j->s1, &t);
    if (rc < 0)
        return rc;
    struct consumer_row c;
    rc = consumer_get(w, j->s1, j->s2, &c);
    sqlite3_stmt *st;
    if (rc == 0) {
        if (c.deliver != j->i4 || c.start_seq != (int64_t)j->u1)
            return FL_ECONFLICT; /* the deliver policy is fixed at creation */
        st = stmt2(w, SQL_CONSUMER_UPDATE, j->s1, j->s2);
    } else if (rc == FL_ENOENT) {
        int64_t first = topic_first(w, j->s1, &t);
        int64_t next = j->i4 == FL_DELIVER_NEW ? t.last_seq + 1
                       : j->i4 == FL_DELIVER_FROM
                           ? ((int64_t)j->u1 > first ? (int64_t)j->u1 : first)
                           : first;
        st = stmt2(w, SQL_CONSUMER_INSERT, j->s1, j->s2);
        sqlite3_bind_int64(st, 5, next);
        sqlite3_bind_int64(st, 6, j->i3);
        sqlite3_bind_int64(st, 7, j->i4);
        sqlite3_bind_int64(st, 8, (int64_t)j->u1);
    } else {
        return rc;
    }
    bool created = rc == FL_ENOENT;
    sqlite3_bind_int64(st, 3, j->i1);
    sqlite3_bind_int64(st, 4, j->i2);
    if (!created)
        sqlite3_bind_int64(st, 5, j->i3);
    j->published = true; /* messages may be waiting for it already */
    rc = step_done(st);
    /* created past some messages: it may be the last one they waited for */
    return rc < 0 || !created || !t.interest ? rc : interest_sweep(w, j->s1);
}

static int do_consumer_delete(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    static const enum sql steps[] = {SQL_CONSUMER_DEL, SQL_CONSUMER_DELIVERIES_DEL};
    int rc = step_done(stmt2(w, steps[0], j->s1, j->s2));
    if (rc == 0 && sqlite3_changes(w->db) == 0)
        return FL_ENOENT;
    rc = rc < 0 ? rc : delete_all(w, steps + 1, 1, j->s1, j->s2);
    struct topic_row t;
    if (rc == 0)
        rc = topic_get(w, j->s1, &t);
    /* what only this consumer still needed is needed no more */
    return rc < 0 || !t.interest ? rc : interest_sweep(w, j->s1);
}

static int consumer_info(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, const char *topic,
                         const char *name)
{
    struct topic_row t;
    struct consumer_row c;
    int rc = topic_get(w, topic, &t);
    if (rc == 0)
        rc = consumer_get(w, topic, name, &c);
    if (rc == 0)
        rc = add_info(j, false);
    if (rc < 0)
        return rc;
    struct fl_consumer_info *ci = &j->consumers[j->ninfo - 1];
    ci->topic = copy(topic);
    ci->name = copy(name);
    ci->config = (struct fl_consumer_config){
        c.ack_wait, (uint32_t)c.max_deliver, (uint32_t)c.max_ack_pending,
        (enum fl_deliver_policy)c.deliver, (uint64_t)c.start_seq};
    ci->next_seq = (uint64_t)c.next_seq;
    int64_t pending, dead;
    consumer_counts(w, topic, name, &pending, &dead);
    ci->pending = (uint64_t)pending;
    ci->dead = (uint64_t)dead;
    /* the messages kept from next_seq on are a contiguous range (interest
     * retention removes only what every consumer is past) */
    int64_t first = topic_first(w, topic, &t);
    int64_t from = c.next_seq > first ? c.next_seq : first;
    ci->lag = t.last_seq >= from ? (uint64_t)(t.last_seq - from + 1) : 0;
    return ci->topic && ci->name ? 0 : FL_ENOMEM;
}

static int do_consumer_info(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    return consumer_info(w, j, j->s1, j->s2);
}

static int do_consumers(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    struct topic_row t;
    int rc = topic_get(w, j->s1, &t);
    return rc < 0 ? rc : page_names(w, j, SQL_CONSUMERS_PAGE, j->s1, consumer_info);
}

/* Add message seq of the topic to the results, delivered for the count-th time. */
static int message_record(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t seq,
                          uint32_t count, bool *gone)
{
    sqlite3_stmt *st = stmt2(w, SQL_MSG_GET, j->s1, NULL);
    sqlite3_bind_int64(st, 2, seq);
    int rc = sqlite3_step(st);
    *gone = rc != SQLITE_ROW;
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? 0 : fl_sqlite_err(rc);
    }
    rc = add_message(j, st, 0, seq, count);
    sqlite3_reset(st);
    return rc;
}

static sqlite3_stmt *delivery_stmt(struct fl_sqlite_worker *w, struct fl_sqlite_job *j,
                                   enum sql which, int64_t seq)
{
    sqlite3_stmt *st = stmt2(w, which, j->s1, j->s2);
    sqlite3_bind_int64(st, 3, seq);
    return st;
}

static int delivery_set(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t seq,
                        int64_t count, int64_t deadline)
{
    sqlite3_stmt *st = delivery_stmt(w, j, SQL_DELIVERY_SET, seq);
    sqlite3_bind_int64(st, 4, count);
    sqlite3_bind_int64(st, 5, deadline);
    return step_done(st);
}

/* Park delivery seq as dead: maxDeliver reached, after last (a nak's reason). */
static int delivery_park(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t seq,
                         int64_t max_deliver, const char *last)
{
    char reason[1200];
    snprintf(reason, sizeof(reason), "maxDeliver (%" PRId64 ") reached%s%s", max_deliver,
             last ? ": " : "", last ? last : "");
    sqlite3_stmt *st = delivery_stmt(w, j, SQL_DELIVERY_DEAD, seq);
    bind_text(st, 4, reason);
    return step_done(st);
}

static int do_fetch(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t now)
{
    struct consumer_row c;
    int rc = consumer_get(w, j->s1, j->s2, &c);
    if (rc < 0)
        return rc;
    size_t max = (size_t)j->i1;
    struct topic_row t;
    rc = topic_get(w, j->s1, &t);
    if (rc == 0 && t.max_age > 0) {
        rc = enforce_limits(w, j->s1, &t, now); /* nothing past its age is delivered */
        if (rc == 0)
            rc = topic_save(w, j->s1, &t);
    }
    if (rc < 0)
        return rc;
    int64_t pending = 0, dead;
    if (c.max_ack_pending > 0)
        consumer_counts(w, j->s1, j->s2, &pending, &dead);

    /* Redeliveries first: pending deliveries whose deadline has passed. */
    struct due {
        int64_t seq, count;
        char *reason;
    } due[256];
    size_t ndue = 0;
    sqlite3_stmt *st = stmt2(w, SQL_DUE, j->s1, j->s2);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, (int64_t)max * 2);
    while (ndue < 256 && sqlite3_step(st) == SQLITE_ROW) {
        due[ndue].seq = sqlite3_column_int64(st, 0);
        due[ndue].count = sqlite3_column_int64(st, 1);
        due[ndue].reason = dup_column_or_null(st, 2);
        ndue++;
    }
    sqlite3_reset(st);
    for (size_t i = 0; i < ndue && j->nrecords < max && rc == 0; i++) {
        if (due[i].count >= c.max_deliver) {
            rc = delivery_park(w, j, due[i].seq, c.max_deliver, due[i].reason);
            pending--; /* dead: no longer in flight */
            continue;
        }
        bool gone;
        rc = message_record(w, j, due[i].seq, (uint32_t)(due[i].count + 1), &gone);
        if (rc == 0 && gone) { /* past the topic's limits meanwhile */
            rc = step_done(delivery_stmt(w, j, SQL_DELIVERY_DEL, due[i].seq));
            pending--;
        } else if (rc == 0) {
            rc = delivery_set(w, j, due[i].seq, due[i].count + 1, now + c.ack_wait);
        }
    }
    for (size_t i = 0; i < ndue; i++)
        free(due[i].reason);
    /* Then messages never delivered, while there is room in flight. */
    size_t room = max;
    if (c.max_ack_pending > 0)
        room = pending >= c.max_ack_pending ? 0 : (size_t)(c.max_ack_pending - pending);
    size_t fresh = 0;
    while (rc == 0 && j->nrecords < max && fresh < room) {
        size_t want = max - j->nrecords < room - fresh ? max - j->nrecords : room - fresh;
        st = stmt2(w, SQL_MSGS_FROM, j->s1, NULL);
        sqlite3_bind_int64(st, 2, c.next_seq);
        sqlite3_bind_int64(st, 3, (int64_t)want);
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
            if (rc == 0 && !gone) {
                rc = delivery_set(w, j, seqs[i], 1, now + c.ack_wait);
                fresh++;
            }
            c.next_seq = seqs[i] + 1;
        }
        st = stmt2(w, SQL_CONSUMER_ADVANCE, j->s1, j->s2);
        sqlite3_bind_int64(st, 3, c.next_seq);
        if (rc == 0)
            rc = step_done(st);
        else
            sqlite3_reset(st);
    }
    return rc;
}

static int do_ack(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t now)
{
    int64_t seq = (int64_t)j->u1;
    sqlite3_stmt *st = delivery_stmt(w, j, SQL_DELIVERY_GET, seq);
    if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 2) != 0) {
        sqlite3_reset(st);
        return FL_ENOENT;
    }
    sqlite3_reset(st);
    struct consumer_row c;
    int rc = consumer_get(w, j->s1, j->s2, &c);
    if (rc < 0)
        return rc;
    switch ((enum fl_ack_kind)j->i1) {
    case FL_ACK:
    case FL_TERM:
        j->published = c.max_ack_pending > 0; /* room in flight: tell the consumer */
        rc = step_done(delivery_stmt(w, j, SQL_DELIVERY_DEL, seq));
        return rc < 0 || !c.interest ? rc : interest_take(w, j->s1, seq);
    case FL_NAK:
        j->published = j->i2 <= 0; /* due now: tell the consumer */
        st = delivery_stmt(w, j, SQL_DELIVERY_NAK, seq);
        sqlite3_bind_int64(st, 4, now + j->i2);
        if (j->s3 != NULL)
            bind_text(st, 5, j->s3);
        return step_done(st);
    case FL_IN_PROGRESS:
        st = delivery_stmt(w, j, SQL_DELIVERY_NAK, seq);
        sqlite3_bind_int64(st, 4, now + c.ack_wait);
        return step_done(st);
    case FL_DEAD:
        j->published = c.max_ack_pending > 0; /* no longer in flight: room */
        st = delivery_stmt(w, j, SQL_DELIVERY_DEAD, seq);
        bind_text(st, 4, j->s3 != NULL ? j->s3 : "given up");
        return step_done(st);
    }
    return FL_EINVAL;
}

static int do_dead(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    sqlite3_stmt *st = stmt2(w, SQL_DEAD_LIST, j->s1, j->s2);
    sqlite3_bind_int64(st, 3, j->after ? strtoll(j->after, NULL, 10) : 0);
    sqlite3_bind_int64(st, 4, page_sql_limit(j));
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (page_done(j, j->nrecords)) {
            char last[32];
            snprintf(last, sizeof(last), "%" PRIu64, j->records[j->nrecords - 1].seq);
            rc = page_next(j, last);
            break;
        }
        struct fl_record *r = add_record(j);
        if (r == NULL) {
            rc = FL_ENOMEM;
            break;
        }
        r->seq = (uint64_t)sqlite3_column_int64(st, 0);
        r->deliveries = (uint32_t)sqlite3_column_int64(st, 1);
        r->ts_ms = sqlite3_column_int64(st, 2);
        r->key = dup_column_or_null(st, 3);
        r->headers = dup_column(st, 4, NULL);
        r->data = dup_column(st, 5, &r->len);
        r->reason = dup_column_or_null(st, 6);
        rc = finish_record(r);
    }
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = fl_sqlite_err(step);
    sqlite3_reset(st);
    return rc;
}

static int do_redrive(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    sqlite3_stmt *st = stmt2(w, j->u1 ? SQL_REDRIVE_ONE : SQL_REDRIVE_ALL, j->s1, j->s2);
    if (j->u1)
        sqlite3_bind_int64(st, 3, (int64_t)j->u1);
    int rc = step_done(st);
    if (rc < 0)
        return rc;
    if (j->u1 && sqlite3_changes(w->db) == 0)
        return FL_ENOENT;
    j->published = true;
    return 0;
}

static int do_purge(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    struct consumer_row c;
    int rc = consumer_get(w, j->s1, j->s2, &c);
    if (rc < 0)
        return rc;
    int64_t seq = (int64_t)j->u1, low = seq, high = seq;
    sqlite3_stmt *st;
    if (seq == 0 && c.interest) { /* where the dead letters are, to look there after */
        st = stmt2(w, SQL_DEAD_RANGE, j->s1, j->s2);
        if (sqlite3_step(st) == SQLITE_ROW) {
            low = sqlite3_column_int64(st, 0);
            high = sqlite3_column_int64(st, 1);
        }
        sqlite3_reset(st);
    }
    st = stmt2(w, seq ? SQL_PURGE_ONE : SQL_PURGE_ALL, j->s1, j->s2);
    if (seq)
        sqlite3_bind_int64(st, 3, seq);
    rc = step_done(st);
    if (rc < 0)
        return rc;
    int n = sqlite3_changes(w->db);
    if (seq && n == 0)
        return FL_ENOENT;
    j->res.n = (size_t)n;
    if (n == 0 || !c.interest)
        return 0;
    return seq ? interest_take(w, j->s1, seq) : interest_remove(w, j->s1, low, high);
}

static int do_nothing(struct fl_sqlite_worker *w, struct fl_sqlite_job *j)
{
    return 0;
}

/* What each job does, by operation: (worker, job) or (worker, job, now). */
static const struct {
    int (*run)(struct fl_sqlite_worker *w, struct fl_sqlite_job *j);
    int (*run_at)(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t now);
} ops[] = {
    [OP_PUT] = {NULL, do_put},
    [OP_GET] = {do_get, NULL},
    [OP_LIST] = {do_list, NULL},
    [OP_DELETE] = {NULL, do_delete},
    [OP_CHANGES] = {do_changes, NULL},
    [OP_APPEND] = {NULL, do_append},
    [OP_READ] = {do_read, NULL},
    [OP_STREAMS] = {do_streams, NULL},
    [OP_STREAM_DELETE] = {do_stream_delete, NULL},
    [OP_TOPIC_CREATE] = {do_topic_create, NULL},
    [OP_TOPIC_DELETE] = {do_topic_delete, NULL},
    [OP_TOPIC_INFO] = {do_topic_info, NULL},
    [OP_TOPICS] = {do_topics, NULL},
    [OP_TOPIC_READ] = {NULL, do_topic_read},
    [OP_MESSAGE_FIND] = {NULL, do_message_find},
    [OP_MESSAGE_IDS] = {NULL, do_message_ids},
    [OP_PUBLISH] = {NULL, do_publish},
    [OP_CONSUMER_CREATE] = {do_consumer_create, NULL},
    [OP_CONSUMER_DELETE] = {do_consumer_delete, NULL},
    [OP_CONSUMER_INFO] = {do_consumer_info, NULL},
    [OP_CONSUMERS] = {do_consumers, NULL},
    [OP_FETCH] = {NULL, do_fetch},
    [OP_ACK] = {NULL, do_ack},
    [OP_DEAD] = {do_dead, NULL},
    [OP_REDRIVE] = {do_redrive, NULL},
    [OP_PURGE] = {do_purge, NULL},
    [OP_LEASE_ACQUIRE] = {NULL, do_lease_acquire},
    [OP_LEASE_RENEW] = {NULL, do_lease_renew},
    [OP_LEASE_RELEASE] = {do_lease_release, NULL},
    [OP_LEASE_GET] = {do_lease_get, NULL},
    [OP_DUE] = {do_nothing, NULL},
};

int fl_sqlite_run_job(struct fl_sqlite_worker *w, struct fl_sqlite_job *j, int64_t now)
{
    if ((size_t)j->op >= sizeof(ops) / sizeof(ops[0]))
        return FL_EINVAL;
    return ops[j->op].run ? ops[j->op].run(w, j) : ops[j->op].run_at(w, j, now);
}

int fl_sqlite_batch_end(struct fl_sqlite_store *s, struct fl_sqlite_worker *w, bool changed)
{
    if (changed) {
        /* compact the change log beyond the retention */
        int64_t rev = fl_sqlite_meta_get(w, "revision");
        int64_t keep = (int64_t)s->base.opts.change_retention;
        if (rev > keep && rev % 256 == 0) {
            sqlite3_stmt *st = stmt(w, SQL_CHANGES_COMPACT);
            sqlite3_bind_int64(st, 1, rev - keep);
            if (step_done(st) == 0)
                meta_set(w, "compacted", rev - keep);
        }
    }
    if (w->recent >= RECENT_MAX) {
        /* in a savepoint: if moving fails, the batch commits without it */
        fl_sqlite_exec(w, SQL_SAVEPOINT);
        if (move_recent(w) < 0) {
            fl_log(FL_LOG_WARN, "store", "cannot move recent events", "err=\"%s\"",
                   sqlite3_errmsg(w->db));
            fl_sqlite_exec(w, SQL_ROLLBACK_TO);
        }
        fl_sqlite_exec(w, SQL_RELEASE);
    }
    int rc = 0;
    if (w->gseq_dirty)
        rc = meta_set(w, "gseq", (int64_t)w->gseq);
    w->gseq_dirty = false;
    return rc;
}

int64_t fl_sqlite_next_due(struct fl_sqlite_worker *w)
{
    sqlite3_stmt *st = stmt(w, SQL_NEXT_DUE);
    int64_t due = 0;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        due = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return due;
}
