/*
 * The SQLite store: the conformance suite, the errors an operator can meet
 * (a second flintd, a foreign, corrupt or damaged file, an unusable
 * directory, a full file system), and crash tests that SIGKILL a busy
 * writer many times.
 */
#include "runner.h"

#include "store/store.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static struct fl_store *open_store(uv_loop_t *l, const char *dir,
                                   const struct fl_store_options *opts)
{
    struct fl_store *s;
    char err[1024] = "", uri[4200];
    snprintf(uri, sizeof(uri), "sqlite:%s", dir);
    int rc = fl_store_open(l, uri, opts, &s, err, sizeof(err));
    if (rc != 0)
        fl_test_fail(__FILE__, __LINE__, "cannot open the store: %s", err);
    return s;
}

#include "store_conformance.inc"

static int try_open(const char *dir, char *err, size_t errsize)
{
    uv_loop_t l;
    struct fl_store *s;
    uv_loop_init(&l);
    char uri[4200];
    snprintf(uri, sizeof(uri), "sqlite:%s", dir);
    int rc = fl_store_open(&l, uri, NULL, &s, err, errsize);
    if (rc == 0) {
        fl_store_close(s, NULL, NULL);
        uv_run(&l, UV_RUN_DEFAULT);
    }
    uv_loop_close(&l);
    return rc;
}

/* Open the store in dir as the suite's store (stop() closes it). */
static void open_in(const char *dir)
{
    ASSERT_OK(uv_loop_init(&loop));
    store = open_store(&loop, dir, NULL);
}

TEST(the_uri_picks_the_backend_and_an_unknown_one_is_named)
{
    uv_loop_t l;
    struct fl_store *s;
    char err[512];
    uv_loop_init(&l);
    ASSERT_EQ(fl_store_open(&l, "nats://127.0.0.1:4222", NULL, &s, err, sizeof(err)), FL_EINVAL);
    ASSERT(strstr(err, "unknown store 'nats://127.0.0.1:4222'") != NULL);
    ASSERT(strstr(err, "sqlite:PATH") != NULL); /* what there is */
    ASSERT_EQ(fl_store_open(&l, "/no/scheme", NULL, &s, err, sizeof(err)), FL_EINVAL);
    ASSERT_EQ(fl_store_open(&l, "sqlite:", NULL, &s, err, sizeof(err)), FL_EINVAL);
    ASSERT(strstr(err, "names no location") != NULL);
    char uri[4200];
    snprintf(uri, sizeof(uri), "sqlite:%s", fl_test_tmpdir());
    ASSERT_OK(fl_store_open(&l, uri, NULL, &s, err, sizeof(err)));
    char want[4300];
    snprintf(want, sizeof(want), "sqlite %s/flint.db", fl_test_tmpdir());
    ASSERT_STR_EQ(fl_store_describe(s), want);
    ASSERT_EQ(fl_store_caps(s) & FL_STORE_CAP_GAPLESS, FL_STORE_CAP_GAPLESS);
    fl_store_close(s, NULL, NULL);
    uv_run(&l, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&l));
}

TEST(a_second_opener_is_refused)
{
    start(NULL);
    char err[512];
    ASSERT_EQ(try_open(fl_test_tmpdir(), err, sizeof(err)), FL_ELOCKED);
    ASSERT(strstr(err, "in use by another flintd") != NULL);
    char pid[32];
    snprintf(pid, sizeof(pid), "(pid %d)", (int)getpid());
    ASSERT(strstr(err, pid) != NULL);
    stop();
    ASSERT_OK(try_open(fl_test_tmpdir(), err, sizeof(err))); /* free again */
}

static void count_done(int err, const struct fl_store_result *res, void *data)
{
    ASSERT_OK(err);
    (*(int *)data)++;
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, data, len), (ssize_t)len);
    close(fd);
}

TEST(foreign_and_corrupt_files_are_refused_untouched)
{
    char dir[4200], path[4300], err[512];
    snprintf(dir, sizeof(dir), "%s/text", fl_test_tmpdir());
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/flint.db", dir);
    const char text[] = "this is a text file that happens to be called flint.db\n";
    write_file(path, text, sizeof(text));
    ASSERT_EQ(try_open(dir, err, sizeof(err)), FL_ECORRUPT);
    ASSERT(strstr(err, "is not a flint store") != NULL);
    struct stat st;
    ASSERT_OK(stat(path, &st));
    ASSERT_EQ(st.st_size, (off_t)sizeof(text)); /* untouched */

    snprintf(dir, sizeof(dir), "%s/other", fl_test_tmpdir());
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/flint.db", dir);
    sqlite3 *db;
    ASSERT_OK(sqlite3_open(path, &db));
    ASSERT_OK(sqlite3_exec(db,
                           "CREATE TABLE accounts(id INTEGER); INSERT INTO accounts VALUES (7);",
                           NULL, NULL, NULL));
    sqlite3_close(db);
    ASSERT_EQ(try_open(dir, err, sizeof(err)), FL_ECORRUPT);
    ASSERT(strstr(err, "database of another program") != NULL);
    ASSERT_OK(sqlite3_open(path, &db));
    ASSERT_OK(sqlite3_exec(db, "SELECT id FROM accounts", NULL, NULL, NULL)); /* still theirs */
    sqlite3_close(db);

    /* a flint store cut short */
    snprintf(dir, sizeof(dir), "%s/cut", fl_test_tmpdir());
    mkdir(dir, 0700);
    ASSERT_OK(try_open(dir, err, sizeof(err)));
    snprintf(path, sizeof(path), "%s/flint.db", dir);
    ASSERT_OK(truncate(path, 1500));
    snprintf(path, sizeof(path), "%s/flint.db-wal", dir);
    unlink(path);
    int rc = try_open(dir, err, sizeof(err));
    ASSERT_EQ(rc, FL_ECORRUPT);
    ASSERT(strlen(err) > 0);
}

/* A store with many pages, closed (so that everything is in flint.db). */
static void make_big_store(const char *dir)
{
    uv_loop_t l;
    ASSERT_OK(uv_loop_init(&l));
    struct fl_store *s = open_store(&l, dir, NULL);
    static char value[1024];
    memset(value, 'v', sizeof(value) - 3);
    value[0] = '"';
    value[sizeof(value) - 3] = '"';
    int done = 0;
    for (int i = 0; i < 2000; i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%04d", i);
        ASSERT_OK(
            fl_store_put(s, "function", name, value, strlen(value), FL_REV_ANY, count_done, &done));
    }
    while (done < 2000)
        uv_run(&l, UV_RUN_ONCE);
    fl_store_close(s, NULL, NULL);
    uv_run(&l, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&l));
}

TEST(a_store_damaged_in_the_middle_is_refused_at_open_with_what_to_do)
{
    char dir[4200], path[4300], err[1024];
    snprintf(dir, sizeof(dir), "%s/damaged", fl_test_tmpdir());
    mkdir(dir, 0700);
    make_big_store(dir);
    snprintf(path, sizeof(path), "%s/flint.db", dir);
    struct stat st;
    ASSERT_OK(stat(path, &st));
    ASSERT(st.st_size > 1 << 20);
    /* pages in the middle overwritten: the header and the schema are fine,
     * so SQLite opens it; only reading those pages would find the damage */
    int fd = open(path, O_WRONLY);
    ASSERT(fd >= 0);
    static char junk[16 * 4096];
    memset(junk, 0x5a, sizeof(junk));
    ASSERT_EQ(pwrite(fd, junk, sizeof(junk), st.st_size / 2 & ~(off_t)4095), (ssize_t)sizeof(junk));
    close(fd);
    ASSERT_EQ(try_open(dir, err, sizeof(err)), FL_ECORRUPT);
    ASSERT(strstr(err, path) != NULL);         /* which file */
    ASSERT(strstr(err, "is corrupt") != NULL); /* what is wrong */
    ASSERT(strstr(err, "backup") != NULL);     /* what to do */
    ASSERT(strstr(err, ".recover") != NULL);
    /* refused untouched, and still refused */
    struct stat after;
    ASSERT_OK(stat(path, &after));
    ASSERT_EQ(after.st_size, st.st_size);
    ASSERT_EQ(try_open(dir, err, sizeof(err)), FL_ECORRUPT);
}

/* Point fd 2 at a file of the test's own, to read back what was logged. */
struct captured {
    char path[4300];
    int fd, saved;
};

static void capture_log(struct captured *c)
{
    snprintf(c->path, sizeof(c->path), "%s/captured.log", fl_test_tmpdir());
    c->fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT(c->fd >= 0);
    c->saved = dup(STDERR_FILENO);
    ASSERT(dup2(c->fd, STDERR_FILENO) >= 0);
}

/* Restore fd 2; the log in buf. */
static void release_log(struct captured *c, char *buf, size_t size)
{
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    close(c->fd);
    int fd = open(c->path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
}

static void on_damaged_read(int err, const struct fl_store_result *res, void *data)
{
    int *worst = data;
    if (err < 0)
        *worst = err;
    worst[1]++;
}

TEST(damage_in_the_event_tables_fails_the_reads_that_meet_it_and_is_said_loudly)
{
    char dir[4200], path[4300];
    snprintf(dir, sizeof(dir), "%s/events", fl_test_tmpdir());
    mkdir(dir, 0700);
    open_in(dir);
    static char data[1024];
    memset(data, 'e', sizeof(data) - 3);
    data[0] = '"';
    data[sizeof(data) - 3] = '"';
    for (int batch = 0; batch < 6; batch++) { /* past RECENT_MAX: most move to events */
        int done = 0;
        for (int i = 0; i < 1000; i++) {
            char stream[32];
            snprintf(stream, sizeof(stream), "inv/%d", i % 50);
            struct fl_event_in ev = {"Step", data, strlen(data)};
            ASSERT_OK(fl_store_append(store, stream, &ev, 1, FL_SEQ_ANY, count_done, &done));
        }
        while (done < 1000)
            uv_run(&loop, UV_RUN_ONCE);
    }
    stop();
    snprintf(path, sizeof(path), "%s/flint.db", dir);
    struct stat st;
    ASSERT_OK(stat(path, &st));
    int fd = open(path, O_WRONLY);
    ASSERT(fd >= 0);
    static char junk[8 * 4096];
    memset(junk, 0x5a, sizeof(junk));
    ASSERT_EQ(pwrite(fd, junk, sizeof(junk), st.st_size / 2 & ~(off_t)4095), (ssize_t)sizeof(junk));
    close(fd);

    /* it opens (what flintd needs to start is whole) */
    struct captured c;
    capture_log(&c);
    open_in(dir);
    int result[2] = {0, 0}; /* the worst error, reads done */
    for (int i = 0; i < 50; i++) {
        char stream[32];
        snprintf(stream, sizeof(stream), "inv/%d", i);
        ASSERT_OK(fl_store_read(store, stream, 1, FL_PAGE_MAX, on_damaged_read, result));
    }
    while (result[1] < 50)
        uv_run(&loop, UV_RUN_ONCE);
    stop();
    static char log[1 << 16];
    release_log(&c, log, sizeof(log));
    ASSERT_EQ(result[0], FL_ECORRUPT); /* the reads that met it failed */
    if (strstr(log, "THE STORE IS CORRUPT") == NULL || strstr(log, path) == NULL)
        fl_test_fail(__FILE__, __LINE__, "the damage was not said loudly:\n%s", log);
}

/* What every old schema shares: the tables schema 1 had that no upgrade
 * up to 3 changed (4 adds topics.interest), and meta's counters. */
#define OLD_TABLES                                                                                 \
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"               \
    "CREATE TABLE resources(kind TEXT NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL,"          \
    " revision INTEGER NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL,"              \
    " PRIMARY KEY(kind, name)) WITHOUT ROWID;"                                                     \
    "CREATE TABLE changes(rev INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,"        \
    " op INTEGER NOT NULL, value BLOB, ts INTEGER NOT NULL);"                                      \
    "CREATE INDEX changes_kind ON changes(kind, rev);"                                             \
    "CREATE TABLE events(gseq INTEGER PRIMARY KEY, stream TEXT NOT NULL, seq INTEGER NOT NULL,"    \
    " ts INTEGER NOT NULL, type TEXT NOT NULL, data BLOB NOT NULL);"                               \
    "CREATE UNIQUE INDEX events_stream ON events(stream, seq);"                                    \
    "CREATE TABLE topics(name TEXT PRIMARY KEY, max_msgs INTEGER NOT NULL,"                        \
    " max_bytes INTEGER NOT NULL, max_age INTEGER NOT NULL, dup_window INTEGER NOT NULL,"          \
    " last_seq INTEGER NOT NULL, bytes INTEGER NOT NULL, count INTEGER NOT NULL) WITHOUT ROWID;"   \
    "CREATE TABLE messages(topic TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,"        \
    " msg_id TEXT, headers TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY(topic, seq))"            \
    " WITHOUT ROWID;"                                                                              \
    "CREATE TABLE dedup(topic TEXT NOT NULL, msg_id TEXT NOT NULL, seq INTEGER NOT NULL,"          \
    " ts INTEGER NOT NULL, PRIMARY KEY(topic, msg_id)) WITHOUT ROWID;"                             \
    "INSERT INTO meta(key, value) VALUES ('revision', 0), ('compacted', 0), ('gseq', 0);"

/* The first on-disk format (schema 1), as flintd wrote it: events only,
 * no streams table. */
static const char schema_v1[] = OLD_TABLES
    "CREATE TABLE consumers(topic TEXT NOT NULL, name TEXT NOT NULL, ack_wait INTEGER NOT NULL,"
    " max_deliver INTEGER NOT NULL, next_seq INTEGER NOT NULL, PRIMARY KEY(topic, name))"
    " WITHOUT ROWID;"
    "CREATE TABLE deliveries(topic TEXT NOT NULL, consumer TEXT NOT NULL, seq INTEGER NOT NULL,"
    " count INTEGER NOT NULL, deadline INTEGER NOT NULL, dead INTEGER NOT NULL,"
    " PRIMARY KEY(topic, consumer, seq)) WITHOUT ROWID;"
    "CREATE INDEX deliveries_due ON deliveries(dead, deadline);";

/* Write a store of an older schema into the test's directory, as flintd
 * wrote it: the tables, then rows, at version. */
static void make_old_store(const char *tables, int version, const char *rows)
{
    char path[4200], pragmas[128];
    snprintf(path, sizeof(path), "%s/flint.db", fl_test_tmpdir());
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA application_id = 1179405908; PRAGMA user_version = %d;", version);
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, tables, NULL, NULL, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, pragmas, NULL, NULL, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, rows, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* The schema version of the (closed) store in the test's directory. */
static int schema_version(void)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/flint.db", fl_test_tmpdir());
    sqlite3 *db;
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    int version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return version;
}

#define SCHEMA_NOW 7

/* Whether the plan SQLite makes for sql (on the closed store of the
 * test's directory) reads through index, and sorts nothing itself. */
static bool plan_uses(const char *sql, const char *index)
{
    char path[PATH_MAX], explain[1024];
    snprintf(path, sizeof(path), "%s/flint.db", fl_test_tmpdir());
    snprintf(explain, sizeof(explain), "EXPLAIN QUERY PLAN %s", sql);
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_prepare_v2(db, explain, -1, &st, NULL), SQLITE_OK);
    bool indexed = false, sorted = false;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(st, 3);
        indexed |= detail != NULL && strstr(detail, index) != NULL;
        sorted |= detail != NULL && strstr(detail, "TEMP B-TREE") != NULL;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return indexed && !sorted;
}

/* The prune of a topic's de-duplication ids past its window reaches them
 * by the (topic, ts) index, not by reading every id the topic remembers
 * (schema 5). */
static bool dedup_prune_uses_its_index(void)
{
    return plan_uses("DELETE FROM dedup WHERE topic = ?1 AND ts < ?2", "dedup_ts");
}

/* A message is found by its text id, and text ids are listed in order,
 * through the index of ids (schema 6, text ids only from 7): the
 * statements of sqlite_ops.c, as they are. */
static bool messages_by_id_use_their_index(void)
{
    static const char find[] =
        "SELECT m.topic, m.seq, m.ts, m.msg_id, m.headers, m.data FROM messages m "
        "JOIN topics t ON t.name = m.topic WHERE m.msg_id = ?2 "
        "AND typeof(m.msg_id) = 'text' AND substr(m.topic, 1, length(?1)) = ?1 "
        "AND (t.max_age = 0 OR m.ts >= ?3 - t.max_age) ORDER BY m.topic, m.seq LIMIT 1";
    static const char ids[] =
        "SELECT m.topic, m.seq, m.ts, m.msg_id, m.headers, length(m.data) "
        "FROM messages m JOIN topics t ON t.name = m.topic WHERE m.msg_id > ?2 "
        "AND typeof(m.msg_id) = 'text' AND substr(m.topic, 1, length(?1)) = ?1 "
        "AND (t.max_age = 0 OR m.ts >= ?3 - t.max_age) ORDER BY m.msg_id, m.topic, m.seq";
    return plan_uses(find, "messages_id") && plan_uses(ids, "messages_id");
}

TEST(messages_are_found_by_id_through_their_index)
{
    start(NULL);
    stop();
    ASSERT(messages_by_id_use_their_index());
}

TEST(the_prune_of_old_message_ids_reads_only_those)
{
    start(NULL);
    stop();
    ASSERT(dedup_prune_uses_its_index());
}

/* The count a query (SELECT count(*) ..., with ?1 = arg if given)
 * gives on the closed store of the test's directory. */
static int count_rows(const char *sql, const char *arg)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/flint.db", fl_test_tmpdir());
    sqlite3 *db;
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (arg != NULL)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* Rows of the closed store's table dedup for topic. */
static int dedup_rows(const char *topic)
{
    return count_rows("SELECT count(*) FROM dedup WHERE topic = ?1", topic);
}

TEST(a_topic_without_de_duplication_writes_no_dedup_rows)
{
    start(NULL);
    struct fl_topic_limits none = {.dup_window_ms = FL_TOPIC_DEDUP_NONE};
    struct got *g = got_new();
    simple(fl_store_topic_create(store, "unique", &none, got_cb, g), g);
    topic("remembers", 0, 0, 0, 0);
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "id-%d", i);
        got_free(publish("unique", id, "x"));
        got_free(publish("remembers", id, "x"));
    }
    stop();
    ASSERT_EQ(dedup_rows("unique"), 0);
    ASSERT_EQ(dedup_rows("remembers"), 10);
    /* updated to no de-duplication: what it remembered goes */
    start(NULL);
    g = got_new();
    simple(fl_store_topic_create(store, "remembers", &none, got_cb, g), g);
    stop();
    ASSERT_EQ(dedup_rows("remembers"), 0);
}

TEST(a_schema_1_store_is_upgraded_in_place)
{
    make_old_store(schema_v1, 1,
                   "INSERT INTO events(gseq, stream, seq, ts, type, data) VALUES"
                   " (1, 'wf/1', 1, 1, 'A', '{\"i\":1}'),"
                   " (2, 'wf/2', 1, 1, 'A', '{\"i\":1}'),"
                   " (3, 'wf/1', 2, 1, 'B', '{\"i\":2}');"
                   "UPDATE meta SET value = 3 WHERE key = 'gseq';");
    start(NULL);
    struct got *g = got_new();
    ASSERT_OK(fl_store_streams(store, "wf/", NULL, got_cb, g));
    wait_for(g);
    ASSERT_EQ(g->n, 2);
    ASSERT_STR_EQ(g->rec[0].key, "wf/1");
    ASSERT_EQ(g->rec[0].seq, 2);
    ASSERT_EQ(g->rec[1].seq, 1);
    got_free(g);
    g = got_new();
    append_many("wf/1", 3, 1, g); /* expects 2: the old events count */
    wait_for(g);
    ASSERT_OK(g->err);
    ASSERT_EQ(g->seq, 3);
    ASSERT(g->gseq > 3);
    got_free(g);
    ASSERT_EQ(check_stream("wf/1", 1), 3);
    stop();
    ASSERT_EQ(schema_version(), SCHEMA_NOW);
    ASSERT(dedup_prune_uses_its_index());
    ASSERT(messages_by_id_use_their_index());
}

/* Schema 3, as flintd wrote it: topics without interest. */
static const char schema_v3[] = OLD_TABLES
    "CREATE TABLE streams(name TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE recent(gseq INTEGER PRIMARY KEY, stream TEXT NOT NULL, seq INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, type TEXT NOT NULL, data BLOB NOT NULL);"
    "CREATE UNIQUE INDEX recent_stream ON recent(stream, seq);"
    "CREATE TABLE consumers(topic TEXT NOT NULL, name TEXT NOT NULL, ack_wait INTEGER NOT NULL,"
    " max_deliver INTEGER NOT NULL, next_seq INTEGER NOT NULL,"
    " max_ack_pending INTEGER NOT NULL DEFAULT 0, deliver INTEGER NOT NULL DEFAULT 0,"
    " start_seq INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(topic, name)) WITHOUT ROWID;"
    "CREATE TABLE deliveries(topic TEXT NOT NULL, consumer TEXT NOT NULL, seq INTEGER NOT NULL,"
    " count INTEGER NOT NULL, deadline INTEGER NOT NULL, dead INTEGER NOT NULL, reason TEXT,"
    " PRIMARY KEY(topic, consumer, seq)) WITHOUT ROWID;"
    "CREATE INDEX deliveries_due ON deliveries(dead, deadline);"
    "CREATE TABLE leases(name TEXT PRIMARY KEY, owner TEXT NOT NULL, revision INTEGER NOT NULL,"
    " expires INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta(key, value) VALUES ('lease_rev', 0);";

TEST(a_schema_3_store_is_upgraded_in_place)
{
    /* three messages: 1 a dead letter, 2 pending, 3 never delivered */
    make_old_store(schema_v3, 3,
                   "INSERT INTO topics VALUES ('jobs', 0, 0, 0, 120000, 3, 6, 3);"
                   "INSERT INTO messages VALUES ('jobs', 1, 1, NULL, '{}', 'j1'),"
                   " ('jobs', 2, 1, NULL, '{}', 'j2'), ('jobs', 3, 1, NULL, '{}', 'j3');"
                   "INSERT INTO consumers VALUES ('jobs', 'c', 3600000, 5, 3, 0, 0, 0);"
                   "INSERT INTO deliveries VALUES ('jobs', 'c', 1, 5, 0, 1, 'old'),"
                   " ('jobs', 'c', 2, 1, 9000000000000, 0, NULL);");
    start(NULL);
    struct got *g = topic_info("jobs");
    ASSERT_OK(g->err);
    ASSERT(!g->topics[0].limits.interest); /* as it was: limits alone */
    ASSERT_EQ(g->topics[0].messages, 3);
    ASSERT_EQ(g->topics[0].limits.dup_window_ms, 120000);
    got_free(g);
    g = consumer_info("jobs", "c");
    ASSERT_EQ(g->consumers[0].dead, 1);
    ASSERT_EQ(g->consumers[0].pending, 1);
    ASSERT_EQ(g->consumers[0].lag, 1);
    got_free(g);
    g = dead("jobs", "c");
    ASSERT_EQ(g->n, 1);
    ASSERT_STR_EQ(g->rec[0].reason, "old");
    got_free(g);

    /* the upgraded topic takes interest retention: each goes when done */
    interest_topic("jobs");
    ASSERT_EQ(depth("jobs"), 3); /* every one still needed */
    g = purge("jobs", "c", 1);
    ASSERT_EQ(g->n, 1);
    got_free(g);
    ASSERT_EQ(depth("jobs"), 2);
    ASSERT_OK(ack("jobs", "c", 2, FL_ACK, 0));
    ASSERT_EQ(fetch_all_and("jobs", "c", FL_ACK), 1);
    g = topic_info("jobs");
    ASSERT_EQ(g->topics[0].messages, 0);
    ASSERT_EQ(g->topics[0].bytes, 0);
    ASSERT_EQ(g->topics[0].last_seq, 3);
    got_free(g);
    stop();
    ASSERT_EQ(schema_version(), SCHEMA_NOW);
}

/* A store of schema 3's tables with 4's and 5's additions, and extra,
 * at version, holding rows. */
static void make_schema_5_store(int version, const char *extra, const char *rows)
{
    char tables[sizeof(schema_v3) + 512];
    snprintf(tables, sizeof(tables), "%s%s%s", schema_v3,
             "ALTER TABLE topics ADD COLUMN interest INTEGER NOT NULL DEFAULT 0;"
             "CREATE INDEX dedup_ts ON dedup(topic, ts);",
             extra);
    make_old_store(tables, version, rows);
}

/* The message of id is found in the queue async/f with data. */
static void found_in_queue(const char *id, const char *data)
{
    struct got *g = message_find("async/", id);
    ASSERT_OK(g->err);
    ASSERT_STR_EQ(g->rec[0].type, "async/f");
    ASSERT_STR_EQ(g->rec[0].data, data);
    got_free(g);
}

TEST(a_schema_5_store_is_upgraded_in_place)
{
    /* two messages with ids */
    make_schema_5_store(5, "",
                        "INSERT INTO topics VALUES ('async/f', 0, 0, 0, 120000, 2, 4, 2, 1);"
                        "INSERT INTO messages VALUES ('async/f', 1, 1, 'inv-1', '{}', 'j1'),"
                        " ('async/f', 2, 1, 'inv-2', '{}', 'j2');");
    start(NULL);
    found_in_queue("inv-2", "j2");
    struct got *g = message_ids("async/", 0, NULL);
    ASSERT_EQ(g->n, 2);
    ASSERT_STR_EQ(g->rec[0].key, "inv-1");
    got_free(g);
    stop();
    ASSERT_EQ(schema_version(), SCHEMA_NOW);
    ASSERT(messages_by_id_use_their_index());
}

/* Rows of the closed store's messages whose id is kept as a blob (an
 * ordered id, out of the index of ids). */
static int ordered_id_rows(void)
{
    return count_rows("SELECT count(*) FROM messages WHERE typeof(msg_id) = 'blob'", NULL);
}

TEST(a_schema_6_store_is_upgraded_in_place)
{
    /* 6's index on every id; an async queue without de-duplication
     * holding three invocations */
    make_schema_5_store(
        6, "CREATE INDEX messages_id ON messages(msg_id) WHERE msg_id IS NOT NULL;",
        "INSERT INTO topics VALUES ('async/f', 0, 0, 0, -1, 3, 6, 3, 1);"
        "INSERT INTO messages VALUES ('async/f', 1, 1, 'inv-1', '{}', 'j1'),"
        " ('async/f', 2, 1, 'inv-2', '{}', 'j2'), ('async/f', 3, 1, 'inv-3', '{}', 'j3');");
    start(NULL);
    found_in_queue("inv-2", "j2");
    /* published after the upgrade: an ordered id, after the text ones */
    got_free(publish("async/f", "inv-4", "j4"));
    found_in_queue("inv-4", "j4");
    struct got *g = message_ids("async/", 0, NULL);
    ASSERT_EQ(g->n, 4);
    ASSERT_STR_EQ(g->rec[0].key, "inv-1");
    ASSERT_STR_EQ(g->rec[3].key, "inv-4");
    got_free(g);
    stop();
    ASSERT_EQ(schema_version(), SCHEMA_NOW);
    ASSERT_EQ(ordered_id_rows(), 1);
    ASSERT(messages_by_id_use_their_index());
}

/* A topic without de-duplication whose ids come in order keeps them out
 * of the index of ids; one out of order, or once de-duplicating, in it. */
TEST(ordered_ids_stay_out_of_the_index)
{
    start(NULL);
    struct fl_topic_limits none = {.dup_window_ms = FL_TOPIC_DEDUP_NONE, .interest = true};
    struct got *g = got_new();
    simple(fl_store_topic_create(store, "q", &none, got_cb, g), g);
    got_free(publish("q", "b1", "x"));
    got_free(publish("q", "b2", "x"));
    got_free(publish("q", "a9", "x")); /* out of order: text, in the index */
    got_free(publish("q", "b3", "x")); /* in order again */
    got_free(publish("q", "b3", "x")); /* the same again: not after it */
    stop();
    ASSERT_EQ(ordered_id_rows(), 3);
    start(NULL);
    g = message_find("", "b2");
    ASSERT_OK(g->err);
    ASSERT_STR_EQ(g->rec[0].key, "b2");
    got_free(g);
    struct fl_topic_limits dedup = {.dup_window_ms = 60000, .interest = true};
    g = got_new();
    simple(fl_store_topic_create(store, "q", &dedup, got_cb, g), g);
    g = message_find("", "b1");
    ASSERT_OK(g->err);
    got_free(g);
    stop();
    ASSERT_EQ(ordered_id_rows(), 0);
}

TEST(an_unusable_directory_is_a_clear_error)
{
    char err[512];
    int rc = try_open("/proc/1", err, sizeof(err));
    ASSERT(rc < 0);
    ASSERT(strstr(err, "cannot open '/proc/1/flint.lock'") != NULL);
    char missing[4200];
    snprintf(missing, sizeof(missing), "%s/does/not/exist", fl_test_tmpdir());
    ASSERT_EQ(try_open(missing, err, sizeof(err)), FL_ENOENT);
}

/* ---- crash tests ---- */

static char crasher[4200];

static void find_crasher(void)
{
    const char *build = getenv("FLINT_BUILD");
    if (build != NULL) {
        snprintf(crasher, sizeof(crasher), "%s/tests/helpers/store_crasher", build);
        return;
    }
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    ASSERT(n > 0);
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(crasher, sizeof(crasher), "%s/helpers/store_crasher", self);
}

/* Acknowledged operations, as the crasher printed them. */
struct acked {
    char (*streams)[64];
    int nstreams;
    char (*ids)[64];
    int nids;
};

static void collect(const char *out, struct acked *a)
{
    const char *p = out;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        if (nl == NULL)
            break; /* a torn last line: not acknowledged */
        char line[128];
        size_t n = (size_t)(nl - p) < sizeof(line) - 1 ? (size_t)(nl - p) : sizeof(line) - 1;
        memcpy(line, p, n);
        line[n] = '\0';
        if (line[0] == 'A') {
            a->streams = realloc(a->streams, (size_t)(a->nstreams + 1) * 64);
            ASSERT(snprintf(a->streams[a->nstreams++], 64, "%s", line + 2) < 64);
        } else if (line[0] == 'P') {
            a->ids = realloc(a->ids, (size_t)(a->nids + 1) * 64);
            ASSERT(snprintf(a->ids[a->nids++], 64, "%s", line + 2) < 64);
        }
        p = nl + 1;
    }
}

/* Run the crasher for a round, kill it after ms, and gather its output. */
static void crash_round(int round, int ms, struct acked *a)
{
    int pipefd[2];
    ASSERT_OK(pipe(pipefd));
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], STDOUT_FILENO);
        close(pipefd[0]);
        char r[16];
        snprintf(r, sizeof(r), "%d", round);
        execl(crasher, crasher, fl_test_tmpdir(), r, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    /* read while it runs, so it never blocks on a full pipe */
    static char out[1 << 22];
    size_t len = 0;
    int64_t end = fl_clock_wall_ms() + ms;
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    while (fl_clock_wall_ms() < end) {
        ssize_t n = read(pipefd[0], out + len, sizeof(out) - 1 - len);
        if (n > 0)
            len += (size_t)n;
        else
            usleep(1000);
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    ASSERT(WIFSIGNALED(status)); /* it was busy, not done */
    for (;;) {
        ssize_t n = read(pipefd[0], out + len, sizeof(out) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(pipefd[0]);
    out[len] = '\0';
    collect(out, a);
}

/* Streams checked for torn appends (the crasher appends 3 at a time). */
struct torn {
    int streams, torn;
    char first_torn[64];
    char after[FL_CURSOR_MAX];
    bool paged, done;
};

static void check_whole(int err, const struct fl_store_result *res, void *data)
{
    struct torn *t = data;
    ASSERT_OK(err);
    for (size_t i = 0; i < res->n; i++) {
        t->streams++;
        if (res->records[i].seq % 3 != 0 && t->torn++ == 0)
            snprintf(t->first_torn, sizeof(t->first_torn), "%s has %llu events",
                     res->records[i].key, (unsigned long long)res->records[i].seq);
    }
    t->done = res->next == NULL;
    snprintf(t->after, sizeof(t->after), "%s", res->next ? res->next : "");
    t->paged = true;
}

static struct got *read_stream(const char *stream)
{
    struct got *g = got_new();
    ASSERT_OK(fl_store_read(store, stream, 1, 0, got_cb, g));
    wait_for(g);
    ASSERT_OK(g->err);
    return g;
}

TEST_TIMEOUT(acknowledged_writes_survive_sigkill, 120)
{
    find_crasher();
    ASSERT_OK(access(crasher, X_OK));
    struct acked a = {0};
    srand((unsigned)time(NULL));
    int rounds = 25;
    for (int round = 0; round < rounds; round++)
        crash_round(round, 60 + rand() % 240, &a);
    ASSERT(a.nstreams > 0 && a.nids > 0);

    start(NULL);
    /* every acknowledged append is there whole: 3 events, in order */
    for (int i = 0; i < a.nstreams; i++) {
        struct got *g = read_stream(a.streams[i]);
        if (g->n != 3)
            fl_test_fail(__FILE__, __LINE__, "stream %s has %zu events", a.streams[i], g->n);
        ASSERT_STR_EQ(g->rec[0].type, "first");
        ASSERT_STR_EQ(g->rec[2].type, "third");
        got_free(g);
    }
    /* no stream anywhere shows part of an append: every one, page by page */
    struct torn t = {0};
    while (!t.done) {
        struct fl_page page = {FL_PAGE_MAX, t.after};
        t.paged = false;
        ASSERT_OK(fl_store_streams(store, "", &page, check_whole, &t));
        while (!t.paged)
            uv_run(&loop, UV_RUN_ONCE);
    }
    if (t.torn > 0)
        fl_test_fail(__FILE__, __LINE__, "%d of %d streams show part of an append (%s)", t.torn,
                     t.streams, t.first_torn);
    ASSERT(t.streams >= a.nstreams); /* every acknowledged one, and those cut short */
    /* every acknowledged publish is there exactly once */
    consumer("crash", "check", 600000, 5);
    static uint8_t count[1 << 20];
    int total = 0;
    for (;;) {
        struct got *g = fetch("crash", "check", 64);
        ASSERT_OK(g->err);
        if (g->n == 0) {
            got_free(g);
            break;
        }
        for (size_t i = 0; i < g->n; i++) {
            int round, k;
            ASSERT_EQ(sscanf(g->rec[i].key, "r%d-%d", &round, &k), 2);
            ASSERT(k < (1 << 14) && round < 64);
            count[round * (1 << 14) + k]++;
            total++;
        }
        got_free(g);
    }
    for (int i = 0; i < a.nids; i++) {
        int round, k;
        ASSERT_EQ(sscanf(a.ids[i], "r%d-%d", &round, &k), 2);
        if (count[round * (1 << 14) + k] != 1)
            fl_test_fail(__FILE__, __LINE__, "message %s stored %d times", a.ids[i],
                         count[round * (1 << 14) + k]);
    }
    for (int i = 0; i < (1 << 20); i++)
        ASSERT(count[i] <= 1); /* nothing twice, acknowledged or not */
    stop();

    sqlite3 *db;
    char path[4300];
    snprintf(path, sizeof(path), "%s/flint.db", fl_test_tmpdir());
    ASSERT_OK(sqlite3_open(path, &db));
    sqlite3_stmt *st;
    ASSERT_OK(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL));
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
    printf("%d rounds: %d appends and %d publishes acknowledged, %d messages kept, "
           "%d streams checked whole\n",
           rounds, a.nstreams, a.nids, total, t.streams);
    free(a.streams);
    free(a.ids);
}

struct fill {
    int ok, failed, last_err;
};

static void on_fill(int err, const struct fl_store_result *res, void *data)
{
    struct fill *f = data;
    if (err == 0)
        f->ok++;
    else {
        f->failed++;
        f->last_err = err;
    }
}

TEST_TIMEOUT(a_file_size_limit_fails_writes_clearly_and_loses_nothing, 60)
{
    start(NULL);
    topic("big", 0, 0, 0, 0);
    got_free(publish("big", "before", "kept"));
    /* From here on, files may not grow past 2 MiB: like a full disk. */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, small = {2u << 20, 0};
    getrlimit(RLIMIT_FSIZE, &old);
    small.rlim_max = old.rlim_max;
    ASSERT_OK(setrlimit(RLIMIT_FSIZE, &small));
    static char payload[64 * 1024];
    memset(payload, 'p', sizeof(payload));
    struct fill f = {0};
    for (int i = 0; i < 200 && f.failed == 0; i++) {
        int before = f.ok + f.failed;
        ASSERT_OK(
            fl_store_publish(store, "big", NULL, NULL, payload, sizeof(payload), on_fill, &f));
        while (f.ok + f.failed == before)
            uv_run(&loop, UV_RUN_ONCE);
    }
    ASSERT(f.failed > 0); /* the limit was reached and reported */
    ASSERT(f.last_err == FL_ENOSPC || f.last_err == FL_EIO);
    printf("%d published, then %s\n", f.ok, fl_errname(f.last_err));
    /* space comes back: the same store works again */
    ASSERT_OK(setrlimit(RLIMIT_FSIZE, &old));
    struct got *g = publish("big", "after", "works");
    ASSERT_OK(g->err);
    got_free(g);
    restart(NULL);
    consumer("big", "check", 60000, 5);
    int seen = 0;
    bool before = false, after = false;
    for (;;) {
        g = fetch("big", "check", 64);
        if (g->n == 0) {
            got_free(g);
            break;
        }
        for (size_t i = 0; i < g->n; i++) {
            before |= strcmp(g->rec[i].key, "before") == 0;
            after |= strcmp(g->rec[i].key, "after") == 0;
            seen++;
        }
        got_free(g);
    }
    ASSERT(before && after);
    ASSERT_EQ(seen, f.ok + 2); /* every acknowledged message, nothing else */
    stop();
}

/* ---- a file system that fills up ---- */

/* Mount a tmpfs of the given size on dir, in a mount namespace of this
 * test's own process (the runner forks every test), so that the host
 * never sees it and it goes when the test ends. Must run before the test
 * starts a thread. false if the machine does not allow it. */
static bool mount_small_fs(const char *dir, const char *size)
{
    if (unshare(CLONE_NEWNS) != 0)
        return false;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return false;
    char opts[64];
    snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
    return mount("flint-test", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) == 0;
}

/* Every message of topic, once, by id: how many, and whether the ids
 * "before" and "after" are there. Read without a consumer: a check that
 * wrote (a consumer, its deliveries) would need room the full file system
 * may not give back, its last pages taken by the checkpoint at close. */
static int count_messages(const char *t, bool *before, bool *after)
{
    int seen = 0;
    uint64_t from = 1;
    for (;;) {
        struct got *g = topic_read(t, from, 64);
        ASSERT_OK(g->err);
        size_t n = g->n;
        for (size_t i = 0; i < n; i++) {
            *before |= strcmp(g->rec[i].key, "before") == 0;
            *after |= strcmp(g->rec[i].key, "after") == 0;
            seen++;
        }
        from = g->seq;
        got_free(g);
        if (from == 0)
            return seen;
    }
}

TEST_TIMEOUT(a_full_file_system_fails_writes_with_enospc_and_recovers_once_space_is_freed, 120)
{
    char dir[4200], ballast[4300];
    snprintf(dir, sizeof(dir), "%s/small", fl_test_tmpdir());
    ASSERT_OK(mkdir(dir, 0700));
    if (!mount_small_fs(dir, "6m"))
        SKIP("cannot mount a tmpfs in a private mount namespace (needs CAP_SYS_ADMIN)");
    /* room to free later: a ballast file on the small file system */
    snprintf(ballast, sizeof(ballast), "%s/ballast", dir);
    static char mib[1 << 20];
    memset(mib, 'b', sizeof(mib));
    for (int i = 0; i < 2; i++) {
        int fd = open(ballast, O_WRONLY | O_CREAT | O_APPEND, 0600);
        ASSERT(fd >= 0);
        ASSERT_EQ(write(fd, mib, sizeof(mib)), (ssize_t)sizeof(mib));
        close(fd);
    }
    struct captured c; /* what the store logs, to read back */
    capture_log(&c);

    open_in(dir);
    topic("big", 0, 0, 0, 0);
    got_free(publish("big", "before", "kept"));
    static char payload[64 * 1024];
    memset(payload, 'p', sizeof(payload));
    struct fill f = {0};
    for (int i = 0; i < 400 && f.failed == 0; i++) {
        int before = f.ok + f.failed;
        ASSERT_OK(
            fl_store_publish(store, "big", NULL, NULL, payload, sizeof(payload), on_fill, &f));
        while (f.ok + f.failed == before)
            uv_run(&loop, UV_RUN_ONCE);
    }
    ASSERT(f.failed > 0); /* the file system filled up, and it was said */
    ASSERT_EQ(f.last_err, FL_ENOSPC);
    /* the store still reads while full */
    struct got *g = topic_info("big");
    ASSERT_OK(g->err);
    ASSERT_EQ(g->topics[0].messages, (uint64_t)f.ok + 1);
    got_free(g);

    /* space is freed: the same store writes again, without a restart */
    ASSERT_OK(unlink(ballast));
    g = publish("big", "after", "works");
    ASSERT_OK(g->err);
    got_free(g);
    g = append1("after/full", "Step", "{}", 0);
    ASSERT_OK(g->err);
    got_free(g);
    stop();

    /* every acknowledged message is there once, nothing else */
    open_in(dir);
    bool before = false, after = false;
    int seen = count_messages("big", &before, &after);
    ASSERT(before && after);
    ASSERT_EQ(seen, f.ok + 2);
    stop();

    /* the log names the real error, not what a failed rollback said */
    static char log[1 << 16];
    release_log(&c, log, sizeof(log));
    if (strstr(log, "disk is full") == NULL || strstr(log, "code=ENOSPC") == NULL ||
        strstr(log, "cannot rollback") != NULL)
        fl_test_fail(__FILE__, __LINE__, "the store's log does not name ENOSPC:\n%s", log);
    ASSERT(strstr(log, "flint.db") != NULL);
    printf("%d messages of 64 KiB stored on a 6 MiB file system, then ENOSPC\n", f.ok);
}
