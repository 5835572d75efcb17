/*
 * The NATS side of the MQ trigger benchmark (bench/mq_nats.py): what a
 * consumer written directly with libnats does, to compare Flint's NATS
 * connector against, and the raw JetStream rates for context.
 *
 *   bench_mq_nats URL fill SUBJECT N
 *       publish N messages "m<i>" (Nats-Msg-Id "m<i>") to SUBJECT,
 *       asynchronously, all acked before it ends
 *   bench_mq_nats URL raw STREAM SUBJECT N
 *       a durable pull consumer "raw" on the stream: fetch (batches of
 *       256) and ack (AckSync on the last of each batch, so that every
 *       ack has reached the server) until N are done
 *   bench_mq_nats URL baseline STREAM SUBJECT N SOCKET RESP_SUBJECT THREADS
 *       what a trigger does, by hand: THREADS threads, each fetching
 *       (batches of up to 16) from the durable pull consumer "base",
 *       and for each message a POST of its body to the function
 *       instance's Unix socket SOCKET ("unix:PATH"; HTTP/1.1 kept alive),
 *       a JetStream publish of the answer to RESP_SUBJECT (Nats-Msg-Id,
 *       waiting for the stream's ack), then the message's ack; until N
 *       are done
 *   bench_mq_nats URL wait STREAM N TIMEOUT_S
 *       wait until STREAM holds N messages (polled every 5 ms)
 *
 * Each prints one JSON line: {"messages", "seconds", "rate"}.
 */
#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static natsConnection *nc;
static jsCtx *js;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, natsStatus s)
{
    const char *text = nats_GetLastError(NULL);
    fprintf(stderr, "bench_mq_nats: %s: %s %s\n", what, natsStatus_GetText(s), text ? text : "");
    return 1;
}

static void report(long n, double seconds)
{
    printf("{\"messages\": %ld, \"seconds\": %.4f, \"rate\": %.1f}\n", n, seconds,
           seconds > 0 ? (double)n / seconds : 0.0);
}

static int fill(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    long n = strtol(argv[1], NULL, 10);
    double start = now_s();
    for (long i = 0; i < n; i++) {
        char body[32];
        int len = snprintf(body, sizeof(body), "m%ld", i);
        natsMsg *m = NULL;
        natsStatus s = natsMsg_Create(&m, argv[0], NULL, body, len);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(m, "Nats-Msg-Id", body);
        if (s == NATS_OK)
            s = js_PublishMsgAsync(js, &m, NULL);
        natsMsg_Destroy(m);
        if (s != NATS_OK)
            return fail("fill", s);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    natsStatus s = js_PublishAsyncComplete(js, &po);
    if (s != NATS_OK)
        return fail("fill: complete", s);
    report(n, now_s() - start);
    return 0;
}

/* A pull subscription bound to the durable consumer (each fetching
 * thread needs its own: libnats refuses concurrent fetches on one). */
static int bind_consumer(const char *stream, const char *subject, const char *durable,
                         natsSubscription **sub)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Consumer = durable;
    so.ManualAck = true;
    natsStatus s = js_PullSubscribe(sub, js, subject, durable, NULL, &so, NULL);
    return s == NATS_OK ? 0 : fail("pull subscribe", s);
}

static int pull_subscribe(const char *stream, const char *subject, const char *durable,
                          int64_t max_ack_pending, natsSubscription **sub)
{
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = 30LL * 1000000000;
    cc.MaxAckPending = max_ack_pending;
    cc.FilterSubject = subject;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddConsumer(&ci, js, stream, &cc, NULL, &jerr);
    if (ci != NULL)
        jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK)
        return fail("add consumer", s);
    return sub != NULL ? bind_consumer(stream, subject, durable, sub) : 0;
}

static int raw(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    long n = strtol(argv[2], NULL, 10), done = 0;
    natsSubscription *sub = NULL;
    if (pull_subscribe(argv[0], argv[1], "raw", 4096, &sub) != 0)
        return 1;
    double start = now_s();
    while (done < n && now_s() - start < 300) {
        natsMsgList list = {0};
        natsStatus s = natsSubscription_Fetch(&list, sub, 256, 5000, NULL);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK)
            return fail("raw: fetch", s);
        for (int i = 0; i < list.Count; i++) {
            s = i == list.Count - 1 ? natsMsg_AckSync(list.Msgs[i], NULL, NULL)
                                    : natsMsg_Ack(list.Msgs[i], NULL);
            if (s != NATS_OK)
                return fail("raw: ack", s);
        }
        done += list.Count;
        natsMsgList_Destroy(&list);
    }
    report(done, now_s() - start);
    natsSubscription_Destroy(sub);
    return done == n ? 0 : 1;
}

/* ---- the baseline consumer ---- */

struct base {
    const char *stream, *subject;
    const char *socket_path, *resp;
    long n;
    atomic_long done;
    atomic_int failed;
};

static int unix_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (fd < 0 || strlen(path) >= sizeof(a.sun_path))
        return -1;
    memcpy(a.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* POST body to / over fd (kept alive); the answer's body into out (its
 * length into *out_len). 0, or -1 (the connection is done for). */
static int post(int fd, const char *body, int len, char *out, size_t size, size_t *out_len)
{
    char req[512];
    int h = snprintf(req, sizeof(req),
                     "POST / HTTP/1.1\r\nHost: fn\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n",
                     len);
    if (write(fd, req, (size_t)h) != h || write(fd, body, (size_t)len) != len)
        return -1;
    char buf[16384];
    size_t got = 0;
    char *end = NULL;
    while (end == NULL) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end == NULL && got == sizeof(buf) - 1)
            return -1;
    }
    if (strncmp(buf, "HTTP/1.1 2", 10) != 0)
        return -1;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t want = cl != NULL ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
    size_t head = (size_t)(end + 4 - buf), have = got - head;
    if (want >= size)
        return -1;
    memcpy(out, end + 4, have < want ? have : want);
    while (have < want) {
        ssize_t r = read(fd, out + have, want - have);
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    *out_len = want;
    return 0;
}

static void *base_thread(void *arg)
{
    struct base *b = arg;
    natsSubscription *sub = NULL;
    int fd = unix_connect(b->socket_path);
    if (fd < 0 || bind_consumer(b->stream, b->subject, "base", &sub) != 0) {
        atomic_store(&b->failed, 1);
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    double start = now_s();
    char answer[65536];
    while (atomic_load(&b->done) < b->n && !atomic_load(&b->failed) && now_s() - start < 300) {
        natsMsgList list = {0};
        natsStatus s = natsSubscription_Fetch(&list, sub, 16, 200, NULL);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK) {
            fail("baseline: fetch", s);
            atomic_store(&b->failed, 1);
            break;
        }
        for (int i = 0; i < list.Count; i++) {
            natsMsg *m = list.Msgs[i];
            size_t alen = 0;
            if (post(fd, natsMsg_GetData(m), natsMsg_GetDataLength(m), answer, sizeof(answer),
                     &alen) != 0) {
                fprintf(stderr, "bench_mq_nats: baseline: the POST failed\n");
                atomic_store(&b->failed, 1);
                break;
            }
            const char *id = NULL;
            char resp_id[300];
            natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
            snprintf(resp_id, sizeof(resp_id), "%s:resp", id ? id : "");
            natsMsg *out = NULL;
            s = natsMsg_Create(&out, b->resp, NULL, answer, (int)alen);
            if (s == NATS_OK)
                s = natsMsgHeader_Set(out, "Nats-Msg-Id", resp_id);
            jsPubAck *pa = NULL;
            if (s == NATS_OK)
                s = js_PublishMsg(&pa, js, out, NULL, NULL);
            if (pa != NULL)
                jsPubAck_Destroy(pa);
            natsMsg_Destroy(out);
            if (s == NATS_OK)
                s = natsMsg_Ack(m, NULL);
            if (s != NATS_OK) {
                fail("baseline: publish or ack", s);
                atomic_store(&b->failed, 1);
                break;
            }
            atomic_fetch_add(&b->done, 1);
        }
        natsMsgList_Destroy(&list);
    }
    close(fd);
    natsSubscription_Destroy(sub);
    return NULL;
}

static int baseline(int argc, char **argv)
{
    if (argc < 6)
        return 2;
    struct base b = {.stream = argv[0],
                     .subject = argv[1],
                     .socket_path = argv[3],
                     .resp = argv[4],
                     .n = strtol(argv[2], NULL, 10)};
    if (strncmp(b.socket_path, "unix:", 5) == 0)
        b.socket_path += 5;
    long threads = strtol(argv[5], NULL, 10);
    if (threads < 1 || threads > 64)
        return 2;
    if (pull_subscribe(argv[0], argv[1], "base", 256, NULL) != 0)
        return 1;
    pthread_t t[64];
    double start = now_s();
    for (long i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, base_thread, &b);
    for (long i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    report(atomic_load(&b.done), now_s() - start);
    return atomic_load(&b.failed) || atomic_load(&b.done) < b.n;
}

static int wait_stream(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    long n = strtol(argv[1], NULL, 10);
    double timeout = strtod(argv[2], NULL), start = now_s();
    while (now_s() - start < timeout) {
        jsStreamInfo *si = NULL;
        natsStatus s = js_GetStreamInfo(&si, js, argv[0], NULL, NULL);
        uint64_t have = s == NATS_OK ? si->State.Msgs : 0;
        if (si != NULL)
            jsStreamInfo_Destroy(si);
        if ((long)have >= n) {
            report(n, now_s() - start);
            return 0;
        }
        usleep(5000);
    }
    fprintf(stderr, "bench_mq_nats: wait: timed out\n");
    return 1;
}

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"fill", fill},
    {"raw", raw},
    {"baseline", baseline},
    {"wait", wait_stream},
};

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_mq_nats URL COMMAND ARG...\n");
        return 2;
    }
    size_t i = 0, n = sizeof(commands) / sizeof(commands[0]);
    while (i < n && strcmp(commands[i].name, argv[2]) != 0)
        i++;
    if (i == n)
        return 2;
    natsStatus s = natsConnection_ConnectTo(&nc, argv[1]);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK)
        return fail("connect", s);
    int rc = commands[i].run(argc - 3, argv + 3);
    if (rc == 2)
        fprintf(stderr, "bench_mq_nats: %s: bad arguments\n", argv[2]);
    fflush(stdout);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    return rc;
}
