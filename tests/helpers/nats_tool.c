/*
 * nats_tool: what the end-to-end tests and the benchmark need of a NATS
 * JetStream server, through libnats (Debian has no Python client).
 *
 *   nats_tool URL add-stream NAME SUBJECT...    make a file stream (ok if it exists)
 *   nats_tool URL pub SUBJECT BODY [ID] [K:V]...  publish one message, wait for its ack
 *   nats_tool URL pubn SUBJECT N [PREFIX]       publish N messages, body and id PREFIX<i>
 *                                               (i from 0), each acked before the next;
 *                                               a failed publish is tried again (same id)
 *                                               for up to 120 s: survives server restarts
 *   nats_tool URL read STREAM                   every message kept, one JSON per line:
 *                                               {"seq", "subject", "headers", "data"}
 *   nats_tool URL stream-info STREAM            {"messages", "first", "last", "consumers"}
 *   nats_tool URL consumers STREAM              a JSON array of the consumers' names
 *   nats_tool URL consumer-info STREAM NAME     {"ackPending", "pending", "redelivered"}
 *
 * Exit status: 0, 1 on a failure (message on stderr), 2 on bad usage, 3
 * when the stream or consumer does not exist.
 */
#include <jansson.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what, natsStatus s, jsErrCode jerr)
{
    const char *text = nats_GetLastError(NULL);
    fprintf(stderr, "nats_tool: %s: %s (%d) %s\n", what, natsStatus_GetText(s), (int)jerr,
            text ? text : "");
    return jerr == JSStreamNotFoundErr || jerr == JSConsumerNotFoundErr || s == NATS_NOT_FOUND ? 3
                                                                                               : 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int add_stream(jsCtx *js, int argc, char **argv)
{
    if (argc < 2)
        return 2;
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = argv[0];
    sc.Subjects = (const char **)&argv[1];
    sc.SubjectsLen = argc - 1;
    sc.Storage = js_FileStorage;
    jsErrCode jerr = 0;
    jsStreamInfo *si = NULL;
    natsStatus s = js_AddStream(&si, js, &sc, NULL, &jerr);
    if (si != NULL)
        jsStreamInfo_Destroy(si);
    if (s != NATS_OK && jerr != JSStreamNameExistErr)
        return fail("add-stream", s, jerr);
    return 0;
}

static natsStatus publish(jsCtx *js, const char *subject, const char *body, size_t len,
                          const char *id, char **headers, int nheaders, jsErrCode *jerr)
{
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, body, (int)len);
    for (int i = 0; s == NATS_OK && i < nheaders; i++) {
        char *colon = strchr(headers[i], ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        s = natsMsgHeader_Add(m, headers[i], v);
        *colon = ':';
    }
    if (s == NATS_OK && id != NULL && id[0] != '\0')
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    jsPubAck *pa = NULL;
    if (s == NATS_OK)
        s = js_PublishMsg(&pa, js, m, NULL, jerr);
    if (pa != NULL)
        jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    return s;
}

static int pub(jsCtx *js, int argc, char **argv)
{
    if (argc < 2)
        return 2;
    jsErrCode jerr = 0;
    natsStatus s = publish(js, argv[0], argv[1], strlen(argv[1]), argc > 2 ? argv[2] : NULL,
                           argv + 3, argc > 3 ? argc - 3 : 0, &jerr);
    return s == NATS_OK ? 0 : fail("pub", s, jerr);
}

static int pubn(jsCtx *js, int argc, char **argv)
{
    if (argc < 2)
        return 2;
    long n = strtol(argv[1], NULL, 10);
    const char *prefix = argc > 2 ? argv[2] : "m";
    double start = now_s();
    for (long i = 0; i < n; i++) {
        char body[128];
        int len = snprintf(body, sizeof(body), "%s%ld", prefix, i);
        for (;;) {
            jsErrCode jerr = 0;
            natsStatus s = publish(js, argv[0], body, (size_t)len, body, NULL, 0, &jerr);
            if (s == NATS_OK)
                break;
            if (now_s() - start > 120)
                return fail("pubn", s, jerr);
            usleep(50 * 1000);
        }
    }
    printf("{\"published\": %ld, \"seconds\": %.3f}\n", n, now_s() - start);
    return 0;
}

static json_t *headers_of(natsMsg *m)
{
    json_t *h = json_object();
    const char **keys = NULL;
    int n = 0;
    if (natsMsgHeader_Keys(m, &keys, &n) == NATS_OK) {
        for (int i = 0; i < n; i++) {
            const char *v = NULL;
            if (natsMsgHeader_Get(m, keys[i], &v) == NATS_OK && v != NULL)
                json_object_set_new(h, keys[i], json_string(v));
        }
        free((void *)keys);
    }
    return h;
}

static int read_stream(jsCtx *js, int argc, char **argv)
{
    if (argc < 1)
        return 2;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, js, argv[0], NULL, &jerr);
    if (s != NATS_OK)
        return fail("read", s, jerr);
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq, msgs = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    if (msgs == 0)
        return 0;
    for (uint64_t seq = first; seq <= last; seq++) {
        natsMsg *m = NULL;
        s = js_GetMsg(&m, js, argv[0], seq, NULL, &jerr);
        if (s == NATS_NOT_FOUND || jerr == 10037 /* no message found */)
            continue;
        if (s != NATS_OK)
            return fail("read", s, jerr);
        json_t *o = json_pack("{s:I,s:s,s:o,s:s%}", "seq", (json_int_t)seq, "subject",
                              natsMsg_GetSubject(m), "headers", headers_of(m), "data",
                              natsMsg_GetData(m) ? natsMsg_GetData(m) : "",
                              (size_t)natsMsg_GetDataLength(m));
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (text != NULL)
            printf("%s\n", text);
        free(text);
        json_decref(o);
        natsMsg_Destroy(m);
    }
    return 0;
}

static int stream_info(jsCtx *js, int argc, char **argv)
{
    if (argc < 1)
        return 2;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, js, argv[0], NULL, &jerr);
    if (s != NATS_OK)
        return fail("stream-info", s, jerr);
    printf("{\"messages\": %llu, \"first\": %llu, \"last\": %llu, \"consumers\": %lld}\n",
           (unsigned long long)si->State.Msgs, (unsigned long long)si->State.FirstSeq,
           (unsigned long long)si->State.LastSeq, (long long)si->State.Consumers);
    jsStreamInfo_Destroy(si);
    return 0;
}

static int consumers(jsCtx *js, int argc, char **argv)
{
    if (argc < 1)
        return 2;
    jsConsumerNamesList *list = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_ConsumerNames(&list, js, argv[0], NULL, &jerr);
    if (s == NATS_NOT_FOUND && jerr == 0) {
        printf("[]\n");
        return 0;
    }
    if (s != NATS_OK)
        return fail("consumers", s, jerr);
    json_t *a = json_array();
    for (int i = 0; i < list->Count; i++)
        json_array_append_new(a, json_string(list->List[i]));
    char *text = json_dumps(a, JSON_COMPACT);
    printf("%s\n", text ? text : "[]");
    free(text);
    json_decref(a);
    jsConsumerNamesList_Destroy(list);
    return 0;
}

static int consumer_info(jsCtx *js, int argc, char **argv)
{
    if (argc < 2)
        return 2;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, js, argv[0], argv[1], NULL, &jerr);
    if (s != NATS_OK)
        return fail("consumer-info", s, jerr);
    printf("{\"ackPending\": %lld, \"pending\": %llu, \"redelivered\": %lld}\n",
           (long long)ci->NumAckPending, (unsigned long long)ci->NumPending,
           (long long)ci->NumRedelivered);
    jsConsumerInfo_Destroy(ci);
    return 0;
}

static const struct {
    const char *name;
    int (*run)(jsCtx *js, int argc, char **argv);
} commands[] = {
    {"add-stream", add_stream},
    {"pub", pub},
    {"pubn", pubn},
    {"read", read_stream},
    {"stream-info", stream_info},
    {"consumers", consumers},
    {"consumer-info", consumer_info},
};

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: nats_tool URL COMMAND ARG...\n");
        return 2;
    }
    size_t i = 0, n = sizeof(commands) / sizeof(commands[0]);
    while (i < n && strcmp(commands[i].name, argv[2]) != 0)
        i++;
    if (i == n) {
        fprintf(stderr, "nats_tool: unknown command '%s'\n", argv[2]);
        return 2;
    }
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, argv[1]);
    /* pubn rides out a server restart */
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, 100);
    /* a server that wants TLS: NATS_TOOL_TLS_CA, and a client certificate
     * (NATS_TOOL_TLS_CERT, NATS_TOOL_TLS_KEY) for one that verifies clients */
    const char *ca = getenv("NATS_TOOL_TLS_CA"), *cert = getenv("NATS_TOOL_TLS_CERT"),
               *key = getenv("NATS_TOOL_TLS_KEY");
    if (s == NATS_OK && ca != NULL)
        s = natsOptions_SetSecure(opts, true);
    if (s == NATS_OK && ca != NULL)
        s = natsOptions_LoadCATrustedCertificates(opts, ca);
    if (s == NATS_OK && cert != NULL && key != NULL)
        s = natsOptions_LoadCertificatesChain(opts, cert, key);
    /* a server in operator (JWT) mode: NATS_TOOL_CREDS, a credentials file */
    const char *creds = getenv("NATS_TOOL_CREDS");
    if (s == NATS_OK && creds != NULL)
        s = natsOptions_SetUserCredentialsFromFiles(opts, creds, NULL);
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, opts);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK)
        return fail("connect", s, 0);
    int rc = commands[i].run(js, argc - 3, argv + 3);
    if (rc == 2)
        fprintf(stderr, "nats_tool: %s: missing arguments\n", argv[2]);
    fflush(stdout);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    nats_Close();
    return rc;
}
