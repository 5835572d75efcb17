/*
 * Store benchmark, in one run on one disk (bench/store.sh):
 *
 *   1. baseline: a loop of write(64 bytes) + fdatasync on a plain file;
 *   2. durable event appends with group commit, with 1, 16 and 256
 *      appenders each keeping one append in flight;
 *   3. topic throughput: publishes kept 256 in flight while a consumer
 *      fetches up to 64 at a time and acks each message; on a topic with
 *      the limits retention, then on one with interest retention (each
 *      ack also removes the message).
 *
 *   bench_store DIR [SECONDS]
 *
 * With --publishers N, only durable publishes for SECONDS: N publishers,
 * each publishing its next message once the store said its last one is
 * durable, to a topic shaped like an async invocation queue (interest
 * retention, no de-duplication, one consumer that fetches nothing) with
 * messages shaped like an async invocation's (a message id, the request
 * as JSON headers, a small body): the store's one write for an accepted
 * async invocation.
 * With --event too, each publish goes with the invocation's "queued"
 * event, appended to a new stream right after it: the writes an accept
 * made before its history began with its first attempt (schema 6). The
 * baselines of bench/async.py; prints one JSON line.
 *
 *   bench_store --publishers N [--event] DIR [SECONDS]
 *
 * With --fdatasync, only the baseline, as one JSON line ({"rate": per
 * second, "us": the time of one write + fdatasync}): bench/workflow.py's
 * unit for a durable step.
 *
 *   bench_store --fdatasync DIR [SECONDS]
 */
#include "base/clock.h"
#include "base/error.h"
#include "base/id.h"
#include "store/store.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uv_loop_t *loop;
static struct fl_store *store;
static double seconds = 3;
static uint64_t deadline_ns;
static long done_count;
static int in_flight;

static double now_s(void)
{
    return (double)fl_clock_mono_ns() / 1e9;
}

static double baseline(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/baseline.dat", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    if (fd < 0) {
        perror("open");
        exit(1);
    }
    char line[64];
    memset(line, 'x', sizeof(line));
    line[63] = '\n';
    long n = 0;
    double start = now_s();
    while (now_s() - start < seconds) {
        if (write(fd, line, sizeof(line)) != (ssize_t)sizeof(line) || fdatasync(fd) != 0) {
            perror("write");
            exit(1);
        }
        n++;
    }
    double rate = n / (now_s() - start);
    close(fd);
    unlink(path);
    return rate;
}

struct appender {
    char stream[64];
};

static const char event[] = "{\"task\":\"resize\",\"attempt\":1,\"input\":\"0123456789abcdef\"}";

static void append_next(struct appender *a);

static void appended(int err, const struct fl_store_result *res, void *data)
{
    if (err != 0) {
        fprintf(stderr, "append: %s\n", fl_strerror(err));
        exit(1);
    }
    done_count++;
    in_flight--;
    if (fl_clock_mono_ns() < deadline_ns)
        append_next(data);
}

static void append_next(struct appender *a)
{
    struct fl_event_in ev = {"TaskSucceeded", event, sizeof(event) - 1};
    if (fl_store_append(store, a->stream, &ev, 1, FL_SEQ_ANY, appended, a) != 0)
        exit(1);
    in_flight++;
}

static double appends(int appenders)
{
    static struct appender a[256];
    done_count = 0;
    deadline_ns = fl_clock_mono_ns() + (uint64_t)(seconds * 1e9);
    double start = now_s();
    for (int i = 0; i < appenders; i++) {
        snprintf(a[i].stream, sizeof(a[i].stream), "bench/%d/%d", appenders, i);
        append_next(&a[i]);
    }
    while (in_flight > 0)
        uv_run(loop, UV_RUN_ONCE);
    return done_count / (now_s() - start);
}

/* ---- topics ---- */

static const char *topic_name; /* the topic being measured */
static long published, acked;
static int publishing;
static bool fetching;
static struct fl_store_watch *note;

static void publish_next(void);

static void on_published(int err, const struct fl_store_result *res, void *data)
{
    if (err != 0)
        exit(1);
    publishing--;
    published++;
    if (fl_clock_mono_ns() < deadline_ns)
        publish_next();
}

static void publish_next(void)
{
    static const char msg[] = "{\"order\":42,\"amount\":\"19.99\"}";
    if (fl_store_publish(store, topic_name, NULL, NULL, msg, sizeof(msg) - 1, on_published, NULL))
        exit(1);
    publishing++;
}

static void fetch_more(void);

static void on_acked(int err, const struct fl_store_result *res, void *data)
{
    if (err != 0)
        exit(1);
    acked++;
}

static void on_fetched(int err, const struct fl_store_result *res, void *data)
{
    fetching = false;
    if (err != 0)
        exit(1);
    for (size_t i = 0; i < res->n; i++)
        if (fl_store_ack(store, topic_name, "c", res->records[i].seq, FL_ACK, 0, NULL, on_acked,
                         NULL))
            exit(1);
    if (res->n > 0)
        fetch_more();
}

static void fetch_more(void)
{
    if (fetching)
        return;
    fetching = true;
    if (fl_store_fetch(store, topic_name, "c", 64, on_fetched, NULL) != 0)
        exit(1);
}

static void on_note(int err, const struct fl_store_result *res, void *data)
{
    fetch_more();
}

static void on_setup(int err, const struct fl_store_result *res, void *data)
{
    if (err != 0)
        exit(1);
    (*(int *)data)++;
}

static double topic_throughput(const char *name, bool interest)
{
    int ready = 0;
    struct fl_topic_limits limits = {.interest = interest};
    struct fl_consumer_config cfg = {.ack_wait_ms = 60000, .max_deliver = 5};
    topic_name = name;
    published = acked = 0;
    fl_store_topic_create(store, name, &limits, on_setup, &ready);
    fl_store_consumer_create(store, name, "c", &cfg, on_setup, &ready);
    while (ready < 2)
        uv_run(loop, UV_RUN_ONCE);
    fl_store_notify(store, name, "c", on_note, NULL, &note);
    deadline_ns = fl_clock_mono_ns() + (uint64_t)(seconds * 1e9);
    double start = now_s();
    for (int i = 0; i < 256; i++)
        publish_next();
    while (publishing > 0 || acked < published) {
        uv_run(loop, UV_RUN_ONCE);
        if (publishing == 0 && !fetching && acked < published)
            fetch_more();
    }
    double elapsed = now_s() - start;
    fl_store_unwatch(note);
    /* the next measurement starts from a store without these messages */
    int deleted = 0;
    fl_store_topic_delete(store, name, on_setup, &deleted);
    while (deleted < 1)
        uv_run(loop, UV_RUN_ONCE);
    return acked / elapsed;
}

/* ---- publishers alone (--publishers) ---- */

/* what the async module publishes for POST /v1/functions/F/invoke with a
 * small JSON body (async.c, sub_go) */
static const char async_headers[] =
    "{\"method\":\"POST\",\"path\":\"/\",\"headers\":[[\"Content-Type\","
    "\"application/json\"],[\"Host\",\"127.0.0.1:40000\"]],"
    "\"added\":[[\"X-Forwarded-For\",\"127.0.0.1\"]],\"trigger\":1,\"triggerName\":\"api\","
    "\"retry\":{\"maxAttempts\":3,\"backoff\":1000,\"maxBackoff\":300000}}";
static const char async_body[] = "{\"order\":42}";

static const char async_queued[] =
    "{\"function\":\"bench\",\"trigger\":\"api\",\"method\":\"POST\",\"path\":\"/\",\"query\":"
    "null,\"headers\":{\"content-type\":\"application/json\",\"host\":\"127.0.0.1:40000\","
    "\"content-length\":\"12\"},\"retry\":{\"maxAttempts\":3,\"backoff\":1000,\"maxBackoff\":"
    "300000},\"callback\":null,\"idem\":null}";
static bool with_event; /* --event: each publish with the queued event too */

/* one publisher's message in flight: the publish, and the event if any */
struct pending {
    int parts;
};

static void publish_one(void);

static void on_one_part(int err, const struct fl_store_result *res, void *data)
{
    struct pending *p = data;
    if (err != 0) {
        fprintf(stderr, "publish: %s\n", fl_strerror(err));
        exit(1);
    }
    if (--p->parts > 0)
        return;
    free(p);
    publishing--;
    published++;
    if (fl_clock_mono_ns() < deadline_ns)
        publish_one();
}

static void publish_one(void)
{
    char id[FL_UUID_STRLEN + 1], stream[64];
    struct pending *p = malloc(sizeof(*p));
    if (p == NULL || fl_uuid7(id) < 0)
        exit(1);
    p->parts = with_event ? 2 : 1;
    if (fl_store_publish(store, "async/bench", async_headers, id, async_body,
                         sizeof(async_body) - 1, on_one_part, p))
        exit(1);
    snprintf(stream, sizeof(stream), "inv/%s", id);
    struct fl_event_in ev = {"queued", async_queued, sizeof(async_queued) - 1};
    if (with_event && fl_store_append(store, stream, &ev, 1, 0, on_one_part, p) != 0)
        exit(1);
    publishing++;
}

static void publishers(int n)
{
    int ready = 0;
    struct fl_topic_limits limits = {.dup_window_ms = FL_TOPIC_DEDUP_NONE, .interest = true};
    struct fl_consumer_config cfg = {.ack_wait_ms = 30000, .max_deliver = 10};
    fl_store_topic_create(store, "async/bench", &limits, on_setup, &ready);
    fl_store_consumer_create(store, "async/bench", "run", &cfg, on_setup, &ready);
    while (ready < 2)
        uv_run(loop, UV_RUN_ONCE);
    deadline_ns = fl_clock_mono_ns() + (uint64_t)(seconds * 1e9);
    double start = now_s();
    for (int i = 0; i < n; i++)
        publish_one();
    while (publishing > 0)
        uv_run(loop, UV_RUN_ONCE);
    double elapsed = now_s() - start;
    printf("{\"rps\": %.0f, \"requests\": %ld, \"seconds\": %.3f}\n", published / elapsed,
           published, elapsed);
}

int main(int argc, char **argv)
{
    char err[512];
    long npublishers = 0;
    if (argc > 2 && strcmp(argv[1], "--publishers") == 0) {
        char *end;
        npublishers = strtol(argv[2], &end, 10);
        if (*end != '\0' || npublishers < 1 || npublishers > 4096) {
            fprintf(stderr, "bench_store: --publishers from 1 to 4096\n");
            return 2;
        }
        argc -= 2;
        argv += 2;
        if (argc > 1 && strcmp(argv[1], "--event") == 0) {
            with_event = true;
            argc--;
            argv++;
        }
    }
    bool fdatasync_only = false;
    if (npublishers == 0 && argc > 1 && strcmp(argv[1], "--fdatasync") == 0) {
        fdatasync_only = true;
        argc--;
        argv++;
    }
    if (argc < 2) {
        fprintf(stderr,
                "usage: bench_store [--publishers N [--event] | --fdatasync] DIR [SECONDS]\n");
        return 2;
    }
    if (argc > 2)
        seconds = strtod(argv[2], NULL);
    if (fdatasync_only) {
        double rate = baseline(argv[1]);
        printf("{\"rate\": %.1f, \"us\": %.1f}\n", rate, 1e6 / rate);
        return 0;
    }
    loop = uv_default_loop();
    char uri[4200];
    snprintf(uri, sizeof(uri), "sqlite:%s", argv[1]);
    if (fl_store_open(loop, uri, NULL, &store, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_store: %s\n", err);
        return 1;
    }
    if (npublishers > 0) {
        publishers((int)npublishers);
        fl_store_close(store, NULL, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        return 0;
    }
    double base = baseline(argv[1]);
    printf("durable writes, %.0f s each, on the same disk\n", seconds);
    printf("%-44s %12.0f /s\n", "write + fdatasync loop (baseline)", base);
    int counts[] = {1, 16, 256};
    for (int i = 0; i < 3; i++) {
        double rate = appends(counts[i]);
        char label[64];
        snprintf(label, sizeof(label), "event appends, %d appender%s", counts[i],
                 counts[i] > 1 ? "s" : "");
        printf("%-44s %12.0f /s   ratio to baseline %.1f\n", label, rate, rate / base);
    }
    double topic = topic_throughput("bench", false);
    printf("%-44s %12.0f /s   ratio to baseline %.1f\n", "topic publish -> fetch -> ack", topic,
           topic / base);
    double interest = topic_throughput("bench-interest", true);
    printf("%-44s %12.0f /s   ratio to limits %.2f\n", "  the same, interest retention", interest,
           interest / topic);
    fl_store_close(store, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
