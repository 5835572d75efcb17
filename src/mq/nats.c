/*
 * The NATS JetStream connector (nats.h says what it maps to what, and
 * why its work runs on a thread of its own).
 *
 * Objects:
 *   struct fl_mq_nats  the connector: the connection, the worker thread,
 *                      its job queue and the done queue back to the loop
 *   struct job         one operation: its inputs, copied; its results,
 *                      filled by the worker; the caller's cb
 *   struct nsub        a consumer the loop subscribed: its stream, its
 *                      pull subscription (the worker's), the messages
 *                      fetched and not acked yet (the loop's)
 *   struct nwatch      a notify: a core subscription on the subject
 *
 * Who touches what: the loop owns the lists of nsubs and nwatches and
 * the held messages; the worker owns the connection and every libnats
 * object, and is the only one to destroy them, in job order, so that a
 * job never names a message or a subscription a job before it destroyed.
 * libnats' threads touch only the fields under n->lock.
 */
#include "mq/nats.h"

#include "base/buf.h"
#include "base/error.h"
#include "base/log.h"
#include "base/queue.h"
#include "base/str.h"

#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NATS_JOBS_MAX    100000 /* jobs waiting for the worker at most */
#define NATS_SERVERS_MAX 16
#define NATS_NAME_MAX    300 /* a stream's, a consumer's or a subject's name, NUL included */
#define NATS_RETRY_MS    1000
#define NATS_WAIT_MS     5000 /* a JetStream request waits this long for its answer */
#define NATS_DEAD_STREAM "FLINT_DEAD"
#define NATS_DEAD_PREFIX "flint.dead."
#define NATS_WHY_MAX     256
#define NATS_REFUSED_MAX 128 /* the server's word, in a reason of NATS_WHY_MAX */
#define NATS_HINTS_MAX   32
#define NATS_ROOM_MS     20 /* after an ack, a short fetch is tried again this long */
#define NATS_ASYNC       1  /* a job's run: its end comes from libnats' callback */

enum op {
    OP_CONNECT,
    OP_ENSURE,
    OP_SUBSCRIBE,
    OP_UNSUBSCRIBE,
    OP_FETCH,
    OP_ACK,
    OP_DROP, /* destroy held messages (msgs) */
    OP_PUBLISH,
    OP_INFO,
    OP_WATCH,
    OP_UNWATCH,
    OP_STEER,
    OP_CLOSE,
};

struct held {
    struct fl_queue link; /* nsub.held */
    uint64_t seq;
    natsMsg *msg;
};

struct nsub {
    struct fl_queue link; /* fl_mq_nats.subs */
    char topic[NATS_NAME_MAX];
    char consumer[NATS_NAME_MAX]; /* Flint's name */
    char durable[NATS_NAME_MAX];  /* the server's */
    char stream[NATS_NAME_MAX];   /* the worker's, once subscribed */
    natsSubscription *sub;        /* the worker's: a core subscription on inbox */
    char inbox[NATS_NAME_MAX];    /* where the server sends its deliveries */
    struct fl_queue held;         /* struct held, the loop's */
    bool removing;                /* an unsubscribe is on its way */
    unsigned jobs;                /* jobs naming it still to come back */
};

struct nwatch {
    struct fl_queue link; /* fl_mq_nats.watches */
    char topic[NATS_NAME_MAX];
    fl_store_cb cb;
    void *data;
    natsSubscription *sub; /* the worker's */
    bool kick;             /* tell it at the next wake (just made) */
    bool room;             /* an ack made room: tell it when the room timer fires */
    uint64_t acked_ms;     /* the loop's time of the last ack on its topic */
    bool gone;             /* unnotified: freed once its unwatch is back */
};

/* A fetched message as a record: the strings it needs, owned here. */
struct fetched {
    natsMsg *msg;
    char key[NATS_NAME_MAX];
    char *headers; /* JSON, malloc'd */
    uint64_t seq;
    uint32_t deliveries;
    int64_t ts_ms;
};

struct job {
    struct fl_queue link;
    enum op op;
    int err;
    char topic[NATS_NAME_MAX];
    bool create;
    struct fl_consumer_config cfg;
    struct nsub *sub;
    struct nwatch *watch;
    /* close: what the worker destroys, and the loop frees after */
    struct nsub **subs;
    size_t nsubs;
    struct nwatch **watches;
    size_t nwatches;
    /* fetch */
    size_t max;
    struct fetched *got;
    size_t ngot;
    /* ack, drop */
    natsMsg *msg; /* ack: the message (destroyed after, unless in progress) */
    enum fl_ack_kind kind;
    int64_t delay_ms;
    char *reason;
    struct fl_queue msgs; /* drop: struct held */
    /* publish: the caller's, valid until cb; out, the message under way */
    natsMsg *out;
    const char *headers, *msg_id;
    const void *payload;
    size_t len;
    /* results */
    uint64_t seq;
    bool duplicate;
    bool have_info;
    uint64_t pending, lag, dead;
    /* steer: the dead letter's consumer (Flint's name) and sequence; the
     * headers to add when redriven (NULL: purge), copied */
    char consumer[NATS_NAME_MAX];
    char *redrive_headers;
    bool peek;       /* read it only: its body and reason into dead_* */
    char *dead_data; /* peek: its body (malloc'd, NUL-terminated) */
    size_t dead_len;
    char *dead_reason; /* peek: its Flint-Reason (malloc'd) */
    fl_store_cb cb;
    void *data;
};

struct fl_mq_nats {
    uv_loop_t *loop;
    uv_async_t async;
    uv_timer_t room; /* acks made room: watches are told a moment later */
    int handles;     /* open: async and room */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    /* under lock */
    struct fl_queue jobs, done;
    struct fl_queue publishing; /* jobs whose publish awaits the stream's ack */
    size_t njobs;
    bool connected;
    char why[NATS_WHY_MAX];
    /* why the servers refused the first attempt (credentials, TLS), for
     * the reason of a connection that libnats' retries then close, which
     * would only say that no server is available; "" if none did */
    char refused[NATS_REFUSED_MAX];
    char hinted[NATS_HINTS_MAX][NATS_NAME_MAX]; /* subjects published to since the loop looked */
    size_t nhinted;
    bool hint_all; /* more than NATS_HINTS_MAX: every watch is told */
    /* the worker's */
    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;
    bool dead_stream; /* FLINT_DEAD is known to exist */
    /* the loop's */
    struct fl_queue subs, watches;
    bool closing;
    void (*closed)(void *data);
    void *closed_data;
    struct job close_job; /* the last job, made without allocating */
    /* configuration, copied */
    char *urls, *creds, *tls_ca, *tls_cert, *tls_key;
};

/* ---- errors ---- */

static int status_err(natsStatus s, jsErrCode jerr)
{
    if (s == NATS_OK)
        return 0;
    if (jerr == JSConsumerNotFoundErr || jerr == JSStreamNotFoundErr || s == NATS_NOT_FOUND ||
        s == NATS_NO_RESPONDERS)
        return FL_ENOENT;
    switch (s) {
    case NATS_TIMEOUT:
        return FL_ETIMEDOUT;
    case NATS_MAX_PAYLOAD:
        return FL_ETOOBIG;
    case NATS_NO_MEMORY:
        return FL_ENOMEM;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
        return FL_EINVAL;
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED:
    case NATS_NO_SERVER:
        return FL_ECONNECT;
    default:
        return FL_EIO;
    }
}

/* Log what failed with libnats' own words (from the worker). */
static void log_failure(const char *what, const char *subject, natsStatus s, jsErrCode jerr)
{
    const char *text = nats_GetLastError(NULL);
    char q[400];
    FL_LOG_LIMITED(FL_LOG_WARN, "nats", what, "subject=%s status=%s jserr=%d err=%s", subject,
                   natsStatus_GetText(s), (int)jerr, fl_log_quote(q, sizeof(q), text ? text : ""));
}

/* ---- names ---- */

/* The server's name of Flint's consumer: '/' (and any other character a
 * durable name may not hold) as '_'. */
static void durable_of(const char *consumer, char *out, size_t size)
{
    size_t i = 0;
    for (; consumer[i] != '\0' && i + 1 < size; i++) {
        char c = consumer[i];
        out[i] = c == '/' || c == '.' || c == '*' || c == '>' || c == ' ' ? '_' : c;
    }
    out[i] = '\0';
}

/* The stream the connector makes for a subject. */
static void stream_name_of(const char *topic, char *out, size_t size)
{
    char d[NATS_NAME_MAX];
    durable_of(topic, d, sizeof(d));
    snprintf(out, size, "FLINT_%.280s", d);
}

/* ---- the worker's side ---- */

static void post_done(struct fl_mq_nats *n, struct job *j);
static int bind_sub(struct fl_mq_nats *n, struct nsub *sb);
static int ack_with(struct fl_mq_nats *n, natsMsg *m, const char *what);
static void on_published(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);

static void set_connected(struct fl_mq_nats *n, bool up, const char *why)
{
    pthread_mutex_lock(&n->lock);
    n->connected = up;
    if (!up) {
        fl_strlcpy(n->why, why, sizeof(n->why));
    } else {
        n->why[0] = '\0';
        n->refused[0] = '\0';
    }
    pthread_mutex_unlock(&n->lock);
    uv_async_send(&n->async); /* trigger status is read on the loop: nothing to do but wake */
}

static void on_nats_connected(natsConnection *nc, void *closure)
{
    set_connected(closure, true, NULL);
    fl_log(FL_LOG_INFO, "nats", "connected", NULL);
}

static void on_nats_disconnected(natsConnection *nc, void *closure)
{
    struct fl_mq_nats *n = closure;
    char why[NATS_WHY_MAX];
    const char *last = NULL;
    natsConnection_GetLastError(nc, &last);
    snprintf(why, sizeof(why), "disconnected from NATS (%s): %s; reconnecting", n->urls,
             last != NULL && last[0] ? last : "connection lost");
    set_connected(n, false, why);
    fl_log(FL_LOG_WARN, "nats", "disconnected", "servers=%s", n->urls);
}

static void on_nats_closed(natsConnection *nc, void *closure)
{
    struct fl_mq_nats *n = closure;
    char why[NATS_WHY_MAX];
    const char *last = NULL;
    natsConnection_GetLastError(nc, &last);
    /* closed for good (a server that refuses us, e.g. one that wants TLS
     * or other credentials): the server's word is the reason */
    char refused[NATS_REFUSED_MAX];
    pthread_mutex_lock(&n->lock);
    fl_strlcpy(refused, n->refused, sizeof(refused));
    pthread_mutex_unlock(&n->lock);
    if (refused[0] != '\0')
        last = refused;
    snprintf(why, sizeof(why), "the NATS connection (%s) is closed: %s", n->urls,
             last != NULL && last[0] ? last : "closed by the client");
    set_connected(n, false, why);
    fl_log(FL_LOG_ERROR, "nats", "connection closed", "servers=%s err=\"%s\"", n->urls,
           last != NULL ? last : "");
}

/* A publish seen on a watched subject (a libnats thread): remembered by
 * subject, for the loop to tell the watches of it. */
static void on_hint(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct fl_mq_nats *n = closure;
    const char *subject = natsMsg_GetSubject(msg);
    pthread_mutex_lock(&n->lock);
    bool seen = n->hint_all;
    for (size_t i = 0; !seen && i < n->nhinted; i++)
        seen = strcmp(n->hinted[i], subject) == 0;
    if (!seen && n->nhinted < NATS_HINTS_MAX)
        fl_strlcpy(n->hinted[n->nhinted++], subject, sizeof(n->hinted[0]));
    else if (!seen)
        n->hint_all = true;
    pthread_mutex_unlock(&n->lock);
    natsMsg_Destroy(msg);
    if (!seen)
        uv_async_send(&n->async);
}

static int do_connect(struct fl_mq_nats *n)
{
    const char *servers[NATS_SERVERS_MAX];
    char urls[1024];
    int count = 0;
    fl_strlcpy(urls, n->urls, sizeof(urls));
    for (char *p = urls; *p != '\0' && count < NATS_SERVERS_MAX;) {
        servers[count++] = p;
        char *comma = strchr(p, ',');
        if (comma == NULL)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    natsStatus s = natsOptions_Create(&n->opts);
    if (s == NATS_OK)
        s = natsOptions_SetServers(n->opts, servers, count);
    if (s == NATS_OK)
        s = natsOptions_SetName(n->opts, "flintd");
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(n->opts, -1); /* for ever */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(n->opts, NATS_RETRY_MS);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(n->opts, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(n->opts, on_nats_disconnected, n);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(n->opts, on_nats_connected, n);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(n->opts, on_nats_closed, n);
    if (s == NATS_OK && n->creds != NULL)
        s = natsOptions_SetUserCredentialsFromFiles(n->opts, n->creds, NULL);
    if (s == NATS_OK && (n->tls_ca != NULL || n->tls_cert != NULL))
        s = natsOptions_SetSecure(n->opts, true);
    if (s == NATS_OK && n->tls_ca != NULL)
        s = natsOptions_LoadCATrustedCertificates(n->opts, n->tls_ca);
    if (s == NATS_OK && n->tls_cert != NULL)
        s = natsOptions_LoadCertificatesChain(n->opts, n->tls_cert, n->tls_key);
    if (s != NATS_OK) {
        char why[NATS_WHY_MAX];
        const char *text = nats_GetLastError(NULL);
        snprintf(why, sizeof(why), "cannot use the NATS options: %s",
                 text ? text : natsStatus_GetText(s));
        set_connected(n, false, why);
        fl_log(FL_LOG_ERROR, "nats", "cannot use the NATS options", "err=\"%s\"",
               natsStatus_GetText(s));
        return status_err(s, 0);
    }
    /* a first attempt that does not retry: a server that refuses us says
     * why here (libnats' retries would only say no server is available) */
    s = natsOptions_SetRetryOnFailedConnect(n->opts, false, NULL, NULL);
    if (s == NATS_OK)
        s = natsConnection_Connect(&n->nc, n->opts);
    if (s != NATS_OK) {
        const char *text = nats_GetLastError(NULL);
        pthread_mutex_lock(&n->lock);
        if (s != NATS_NO_SERVER)
            fl_strlcpy(n->refused, text ? text : natsStatus_GetText(s), sizeof(n->refused));
        pthread_mutex_unlock(&n->lock);
        s = natsOptions_SetRetryOnFailedConnect(n->opts, true, on_nats_connected, n);
        if (s == NATS_OK)
            s = natsConnection_Connect(&n->nc, n->opts);
    }
    if (s == NATS_NOT_YET_CONNECTED) {
        char why[NATS_WHY_MAX], refused[NATS_REFUSED_MAX];
        pthread_mutex_lock(&n->lock);
        fl_strlcpy(refused, n->refused, sizeof(refused));
        pthread_mutex_unlock(&n->lock);
        snprintf(why, sizeof(why), "cannot connect to NATS (%s): %s; retrying", n->urls,
                 refused[0] ? refused : "no server answers");
        set_connected(n, false, why);
        fl_log(FL_LOG_WARN, "nats", "cannot connect to NATS yet; retrying every second",
               "servers=%s err=\"%s\"", n->urls, refused[0] ? refused : "no server answers");
        s = NATS_OK;
    } else if (s == NATS_OK) {
        set_connected(n, true, NULL);
        fl_log(FL_LOG_INFO, "nats", "connected", "servers=%s", n->urls);
    }
    if (s == NATS_OK) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = NATS_WAIT_MS;
        jo.PublishAsync.AckHandler = on_published;
        jo.PublishAsync.AckHandlerClosure = n;
        s = natsConnection_JetStream(&n->js, n->nc, &jo);
    }
    if (s != NATS_OK) {
        char why[NATS_WHY_MAX];
        snprintf(why, sizeof(why), "cannot connect to NATS (%s): %s", n->urls,
                 natsStatus_GetText(s));
        set_connected(n, false, why);
    }
    return status_err(s, 0);
}

/* Make stream name of subject: file storage, limits retention with the
 * limits of connector.h; one that exists already is no error. */
static int add_stream(struct fl_mq_nats *n, const char *name, const char *subject)
{
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[1] = {subject};
    sc.Name = name;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.MaxMsgs = FL_MQ_TOPIC_MAX_MSGS;
    sc.MaxBytes = (int64_t)FL_MQ_TOPIC_MAX_BYTES;
    sc.Duplicates = (int64_t)FL_MQ_TOPIC_DUP_WINDOW * 1000000;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddStream(&si, n->js, &sc, NULL, &jerr);
    if (si != NULL)
        jsStreamInfo_Destroy(si);
    if (s != NATS_OK && jerr != JSStreamNameExistErr) {
        log_failure("cannot make a stream", subject, s, jerr);
        return status_err(s, jerr);
    }
    return 0;
}

/* The stream that holds topic, into out; made if missing and create. */
static int find_stream(struct fl_mq_nats *n, const char *topic, bool create, char *out, size_t size)
{
    if (n->js == NULL)
        return FL_ECONNECT;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Stream.Info.SubjectsFilter = topic;
    jsStreamNamesList *list = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_StreamNames(&list, n->js, &jo, &jerr);
    if (s == NATS_OK && list != NULL && list->Count > 0) {
        fl_strlcpy(out, list->List[0], size);
        jsStreamNamesList_Destroy(list);
        return 0;
    }
    if (list != NULL)
        jsStreamNamesList_Destroy(list);
    if (s != NATS_OK && s != NATS_NOT_FOUND) {
        log_failure("cannot list the streams", topic, s, jerr);
        return status_err(s, jerr);
    }
    if (!create) {
        FL_LOG_LIMITED(FL_LOG_WARN, "nats",
                       "no stream holds the subject (make one, or give the trigger "
                       "createStream: true)",
                       "subject=%s", topic);
        return FL_ENOENT;
    }
    char name[NATS_NAME_MAX];
    stream_name_of(topic, name, sizeof(name));
    int rc = add_stream(n, name, topic);
    if (rc < 0)
        return rc;
    fl_log(FL_LOG_INFO, "nats", "made a stream", "stream=%s subject=%s", name, topic);
    fl_strlcpy(out, name, size);
    return 0;
}

static void take_info(struct job *j, jsConsumerInfo *ci)
{
    j->have_info = true;
    j->pending = ci->NumAckPending > 0 ? (uint64_t)ci->NumAckPending : 0;
    j->lag = ci->NumPending;
}

static int do_subscribe(struct fl_mq_nats *n, struct job *j)
{
    struct nsub *sb = j->sub;
    char stream[NATS_NAME_MAX];
    int rc = find_stream(n, sb->topic, j->create, stream, sizeof(stream));
    if (rc < 0)
        return rc;
    fl_strlcpy(sb->stream, stream, sizeof(sb->stream)); /* pulls go to it from now on */
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = sb->durable;
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = j->cfg.ack_wait_ms * 1000000;
    cc.MaxDeliver = j->cfg.max_deliver > 0 ? (int64_t)j->cfg.max_deliver : -1;
    cc.MaxAckPending = j->cfg.max_ack_pending > 0 ? (int64_t)j->cfg.max_ack_pending : -1;
    cc.FilterSubject = sb->topic;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, n->js, stream, sb->durable, NULL, &jerr);
    if (ci != NULL)
        jsConsumerInfo_Destroy(ci);
    ci = NULL;
    if (s == NATS_OK)
        s = js_UpdateConsumer(&ci, n->js, stream, &cc, NULL, &jerr);
    else if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr)
        s = js_AddConsumer(&ci, n->js, stream, &cc, NULL, &jerr);
    if (s != NATS_OK) {
        log_failure("cannot make a consumer", sb->topic, s, jerr);
        return status_err(s, jerr);
    }
    take_info(j, ci);
    jsConsumerInfo_Destroy(ci);
    if (sb->sub == NULL)
        return bind_sub(n, sb);
    return 0;
}

static int do_unsubscribe(struct fl_mq_nats *n, struct job *j)
{
    struct nsub *sb = j->sub;
    if (sb->sub != NULL) {
        natsSubscription_Unsubscribe(sb->sub);
        natsSubscription_Destroy(sb->sub);
    }
    sb->sub = NULL;
    char stream[NATS_NAME_MAX];
    int rc = sb->stream[0] ? 0 : find_stream(n, sb->topic, false, stream, sizeof(stream));
    if (rc < 0)
        return rc;
    jsErrCode jerr = 0;
    natsStatus s =
        js_DeleteConsumer(n->js, sb->stream[0] ? sb->stream : stream, sb->durable, NULL, &jerr);
    if (s != NATS_OK && jerr != JSConsumerNotFoundErr && s != NATS_NOT_FOUND)
        log_failure("cannot delete a consumer", sb->topic, s, jerr);
    return status_err(s, jerr);
}

/* The headers of m, other than the broker's own (Nats-*), as a JSON
 * object's text; the values of one name joined by ", ". */
static char *headers_json(natsMsg *m)
{
    json_t *h = json_object();
    const char **keys = NULL;
    int nkeys = 0;
    if (h != NULL && natsMsgHeader_Keys(m, &keys, &nkeys) == NATS_OK) {
        for (int i = 0; i < nkeys; i++) {
            if (strncasecmp(keys[i], "Nats-", 5) == 0)
                continue;
            const char **vals = NULL;
            int nvals = 0;
            if (natsMsgHeader_Values(m, keys[i], &vals, &nvals) != NATS_OK)
                continue;
            struct fl_buf joined;
            fl_buf_init(&joined, 64u << 10);
            for (int k = 0; k < nvals; k++)
                fl_buf_appendf(&joined, "%s%s", k ? ", " : "", vals[k]);
            json_object_set_new(h, keys[i], json_string(joined.data ? joined.data : ""));
            fl_buf_release(&joined);
            free((void *)vals);
        }
        free((void *)keys);
    }
    char *text = h != NULL ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    return text;
}

/* sb's inbox and the core subscription on it that pulls are answered to
 * (anew: the old one goes, with what it still held). */
static int bind_sub(struct fl_mq_nats *n, struct nsub *sb)
{
    if (sb->sub != NULL) {
        natsSubscription_Unsubscribe(sb->sub);
        natsSubscription_Destroy(sb->sub);
    }
    sb->sub = NULL;
    if (n->nc == NULL)
        return FL_ECONNECT;
    natsInbox *inbox = NULL;
    natsStatus s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
        fl_strlcpy(sb->inbox, inbox, sizeof(sb->inbox));
        natsInbox_Destroy(inbox);
        s = natsConnection_SubscribeSync(&sb->sub, n->nc, sb->inbox);
    }
    if (s != NATS_OK) {
        sb->sub = NULL;
        log_failure("cannot subscribe to a consumer's deliveries", sb->topic, s, 0);
    }
    return status_err(s, 0);
}

/* What the server's ack subject of a delivery says:
 * $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>
 * or, from servers with domains, $JS.ACK.<domain>.<hash>.<stream>... with a
 * token more at the end. 0, or FL_EPROTO. */
static int parse_ack_subject(const char *reply, struct fetched *f)
{
    if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0)
        return FL_EPROTO;
    const char *tok[16];
    size_t ntok = 0;
    for (const char *p = reply; ntok < 16;) {
        tok[ntok++] = p;
        p = strchr(p, '.');
        if (p == NULL)
            break;
        p++;
    }
    /* the index of <delivered> */
    size_t at = ntok == 9 ? 4 : ntok >= 12 ? 6 : 0;
    if (at == 0)
        return FL_EPROTO;
    f->deliveries = (uint32_t)strtoul(tok[at], NULL, 10);
    f->seq = strtoull(tok[at + 1], NULL, 10);
    f->ts_ms = (int64_t)(strtoull(tok[at + 3], NULL, 10) / 1000000);
    return f->seq > 0 ? 0 : FL_EPROTO;
}

/* One delivery into j->got, or a status that ends the pull: 1 (the pull
 * is over: 404 no messages, 408, 409), 0 (taken or dropped). */
static int take_delivery(struct job *j, natsMsg *m)
{
    const char *reply = natsMsg_GetReply(m);
    if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0) {
        natsMsg_Destroy(m); /* a status: the pull is answered */
        return 1;
    }
    struct fetched *f = &j->got[j->ngot];
    memset(f, 0, sizeof(*f));
    if (parse_ack_subject(reply, f) < 0) {
        natsMsg_Destroy(m); /* comes back after AckWait */
        return 0;
    }
    f->msg = m;
    const char *id = NULL;
    if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK && id != NULL)
        fl_strlcpy(f->key, id, sizeof(f->key));
    f->headers = headers_json(m);
    j->ngot++;
    return 0;
}

/*
 * A no-wait pull of up to j->max: first what an earlier pull's answer
 * left queued (deliveries all the same), then a request
 * ($JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>, {"batch", "no_wait"})
 * answered to the trigger's inbox, read until the server says the pull is
 * over or the batch is full. Done on a core subscription rather than
 * libnats' pull subscriptions, whose fetch in 3.4.1 writes past its list
 * when an earlier pull's deliveries are still queued.
 */
static int do_fetch(struct fl_mq_nats *n, struct job *j)
{
    struct nsub *sb = j->sub;
    if (sb->sub == NULL || n->nc == NULL)
        return FL_ENOENT;
    j->got = calloc(j->max, sizeof(*j->got));
    if (j->got == NULL)
        return FL_ENOMEM;
    natsMsg *m = NULL;
    while (j->ngot < j->max && natsSubscription_NextMsg(&m, sb->sub, 0) == NATS_OK)
        take_delivery(j, m); /* a stale status is no answer to this pull */
    if (j->ngot == j->max)
        return 0;
    char subject[2 * NATS_NAME_MAX + 40], body[64];
    snprintf(subject, sizeof(subject), "$JS.API.CONSUMER.MSG.NEXT.%s.%s", sb->stream, sb->durable);
    snprintf(body, sizeof(body), "{\"batch\":%zu,\"no_wait\":true}", j->max - j->ngot);
    natsStatus s = natsConnection_PublishRequestString(n->nc, subject, sb->inbox, body);
    while (s == NATS_OK && j->ngot < j->max) {
        s = natsSubscription_NextMsg(&m, sb->sub, NATS_WAIT_MS);
        if (s == NATS_OK && take_delivery(j, m) == 1)
            break;
    }
    if (s == NATS_TIMEOUT && j->ngot > 0)
        s = NATS_OK; /* what came is delivered; the rest comes with the next pull */
    if (s != NATS_OK)
        log_failure("cannot fetch", sb->topic, s, 0);
    return status_err(s, 0);
}

static void set_headers(natsMsg *m, const char *headers)
{
    json_t *h = headers != NULL ? json_loads(headers, 0, NULL) : NULL;
    const char *key;
    json_t *value;
    json_object_foreach(h, key, value)
    {
        if (json_is_string(value))
            natsMsgHeader_Set(m, key, json_string_value(value));
    }
    json_decref(h);
}

/* Publish m; res fields into j. m is the caller's. */
static int publish_msg(struct fl_mq_nats *n, struct job *j, natsMsg *m, const char *subject)
{
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_PublishMsg(&pa, n->js, m, NULL, &jerr);
    if (s == NATS_OK && pa != NULL) {
        j->seq = pa->Sequence;
        j->duplicate = pa->Duplicate;
    }
    if (pa != NULL)
        jsPubAck_Destroy(pa);
    if (s != NATS_OK)
        log_failure("cannot publish", subject, s, jerr);
    return status_err(s, jerr);
}

static int do_publish(struct fl_mq_nats *n, struct job *j)
{
    if (n->js == NULL)
        return FL_ECONNECT;
    if (n->nc != NULL && (int64_t)j->len > natsConnection_GetMaxPayload(n->nc) &&
        natsConnection_GetMaxPayload(n->nc) > 0)
        return FL_ETOOBIG;
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, j->topic, NULL, j->payload, (int)j->len);
    if (s != NATS_OK)
        return status_err(s, 0);
    set_headers(m, j->headers);
    if (j->msg_id != NULL && j->msg_id[0] != '\0')
        natsMsgHeader_Set(m, "Nats-Msg-Id", j->msg_id);
    /* asynchronous: the worker goes on while the stream acks; the
     * callback (on_published) ends the job */
    pthread_mutex_lock(&n->lock);
    j->out = m;
    fl_queue_insert_tail(&n->publishing, &j->link);
    pthread_mutex_unlock(&n->lock);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = NATS_WAIT_MS; /* no ack by then: the callback says NATS_TIMEOUT */
    s = js_PublishMsgAsync(n->js, &m, &po);
    if (s == NATS_OK)
        return NATS_ASYNC;
    pthread_mutex_lock(&n->lock);
    fl_queue_remove(&j->link);
    j->out = NULL;
    pthread_mutex_unlock(&n->lock);
    natsMsg_Destroy(m);
    log_failure("cannot publish", j->topic, s, 0);
    return status_err(s, 0);
}

/* The stream's answer to an asynchronous publish (a libnats thread). */
static void on_published(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    struct fl_mq_nats *n = closure;
    struct job *j = NULL;
    struct fl_queue *e, *tmp;
    pthread_mutex_lock(&n->lock);
    FL_QUEUE_FOREACH(e, tmp, &n->publishing)
    {
        struct job *p = FL_QUEUE_DATA(e, struct job, link);
        if (p->out == msg) {
            fl_queue_remove(e);
            j = p;
            break;
        }
    }
    pthread_mutex_unlock(&n->lock);
    if (j != NULL) {
        j->out = NULL;
        if (pa != NULL) {
            j->seq = pa->Sequence;
            j->duplicate = pa->Duplicate;
            j->err = 0;
        } else {
            j->err = pae != NULL ? status_err(pae->Err, pae->ErrCode) : FL_EIO;
            if (pae != NULL)
                log_failure("cannot publish", j->topic, pae->Err, pae->ErrCode);
        }
        post_done(n, j);
    }
    natsMsg_Destroy(msg);
}

/* The subject of the dead letter of consumer durable at stream sequence
 * seq in FLINT_DEAD: "flint.dead.<durable>.<seq>", one per letter, so that
 * steering finds it by subject; "flint.dead.<durable>.>" are all of its
 * consumer's. */
static void dead_subject(const char *durable, uint64_t seq, char *out, size_t size)
{
    snprintf(out, size, NATS_DEAD_PREFIX "%.280s.%llu", durable, (unsigned long long)seq);
}

/* FL_DEAD: the message and why to FLINT_DEAD, then +TERM. */
static int do_dead(struct fl_mq_nats *n, struct job *j)
{
    if (n->js == NULL)
        return FL_ECONNECT;
    if (!n->dead_stream) {
        int rc = add_stream(n, NATS_DEAD_STREAM, NATS_DEAD_PREFIX ">");
        if (rc < 0)
            return rc;
        n->dead_stream = true;
    }
    char subject[NATS_NAME_MAX + 48], seq[24];
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)j->seq);
    dead_subject(j->sub->durable, j->seq, subject, sizeof(subject));
    natsMsg *m = NULL;
    natsStatus s =
        natsMsg_Create(&m, subject, NULL, natsMsg_GetData(j->msg), natsMsg_GetDataLength(j->msg));
    if (s != NATS_OK)
        return status_err(s, 0);
    const char **keys = NULL;
    int nkeys = 0;
    if (natsMsgHeader_Keys(j->msg, &keys, &nkeys) == NATS_OK) {
        for (int i = 0; i < nkeys; i++) {
            const char *v = NULL;
            if (strncasecmp(keys[i], "Nats-", 5) != 0 &&
                natsMsgHeader_Get(j->msg, keys[i], &v) == NATS_OK)
                natsMsgHeader_Set(m, keys[i], v);
        }
        free((void *)keys);
    }
    const char *msg_id = NULL;
    natsMsgHeader_Get(j->msg, "Nats-Msg-Id", &msg_id);
    natsMsgHeader_Set(m, "Flint-Message-Id", msg_id != NULL && msg_id[0] ? msg_id : seq);
    natsMsgHeader_Set(m, "Flint-Reason", j->reason ? j->reason : "given up");
    natsMsgHeader_Set(m, "Flint-Topic", j->sub->topic);
    natsMsgHeader_Set(m, "Flint-Seq", seq);
    int rc = publish_msg(n, j, m, subject);
    natsMsg_Destroy(m);
    if (rc == 0)
        rc = ack_with(n, j->msg, "+TERM");
    return rc;
}

/* Answer a delivery on its ack subject: "+ACK", "-NAK" (with
 * {"delay": ns}), "+TERM", "+WPI". Handed to the connection, not waited
 * for (nats.h). */
static int ack_with(struct fl_mq_nats *n, natsMsg *m, const char *what)
{
    const char *reply = natsMsg_GetReply(m);
    if (n->nc == NULL || reply == NULL)
        return FL_ECONNECT;
    natsStatus s = natsConnection_PublishString(n->nc, reply, what);
    if (s != NATS_OK)
        log_failure("cannot acknowledge", reply, s, 0);
    return status_err(s, 0);
}

static int do_ack(struct fl_mq_nats *n, struct job *j)
{
    char nak[64];
    switch (j->kind) {
    case FL_ACK:
        return ack_with(n, j->msg, "+ACK");
    case FL_NAK:
        snprintf(nak, sizeof(nak), "-NAK {\"delay\":%lld}",
                 (long long)(j->delay_ms > 0 ? j->delay_ms : 0) * 1000000);
        return ack_with(n, j->msg, j->delay_ms > 0 ? nak : "-NAK");
    case FL_TERM:
        return ack_with(n, j->msg, "+TERM");
    case FL_IN_PROGRESS:
        return ack_with(n, j->msg, "+WPI");
    case FL_DEAD:
        return do_dead(n, j);
    default:
        return FL_EINVAL;
    }
}

/* j->dead: the letters of consumer durable in FLINT_DEAD (none if the
 * stream is not there or does not answer: a figure, not a decision). */
static void count_dead(struct fl_mq_nats *n, struct job *j, const char *durable)
{
    char filter[NATS_NAME_MAX + 16];
    snprintf(filter, sizeof(filter), NATS_DEAD_PREFIX "%.280s.>", durable);
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = filter;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    j->dead = 0;
    if (js_GetStreamInfo(&si, n->js, NATS_DEAD_STREAM, &o, &jerr) == NATS_OK &&
        si->State.Subjects != NULL)
        for (int i = 0; i < si->State.Subjects->Count; i++)
            j->dead += si->State.Subjects->List[i].Msgs;
    if (si != NULL)
        jsStreamInfo_Destroy(si);
}

/* Redrive or purge a dead letter in FLINT_DEAD (connector.h's
 * steer_dead): found by its subject, and its Flint-Topic must be the
 * topic the history names. A redrive publishes its body and headers (but
 * Flint-Reason, Flint-Topic and Flint-Seq), with redrive_headers added,
 * to the topic and waits for the stream's ack; then (both) the letter is
 * deleted from FLINT_DEAD. */
static int do_steer(struct fl_mq_nats *n, struct job *j)
{
    if (n->js == NULL)
        return FL_ECONNECT;
    char durable[NATS_NAME_MAX], subject[NATS_NAME_MAX + 48];
    durable_of(j->consumer, durable, sizeof(durable));
    dead_subject(durable, j->seq, subject, sizeof(subject));
    natsMsg *dead = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetLastMsg(&dead, n->js, NATS_DEAD_STREAM, subject, NULL, &jerr);
    if (s != NATS_OK)
        return jerr == JSNoMessageFoundErr ? FL_ENOENT : status_err(s, jerr);
    const char *topic = NULL;
    int rc = 0;
    if (natsMsgHeader_Get(dead, "Flint-Topic", &topic) != NATS_OK || topic == NULL ||
        strcmp(topic, j->topic) != 0)
        rc = FL_ENOENT; /* another consumer's of that name, on another topic */
    if (rc == 0 && j->peek) {
        const char *reason = NULL;
        natsMsgHeader_Get(dead, "Flint-Reason", &reason);
        int len = natsMsg_GetDataLength(dead);
        j->dead_data = malloc((size_t)len + 1);
        j->dead_reason = strdup(reason ? reason : "");
        if (j->dead_data != NULL) {
            memcpy(j->dead_data, natsMsg_GetData(dead), (size_t)len);
            j->dead_data[len] = '\0';
            j->dead_len = (size_t)len;
        }
        natsMsg_Destroy(dead);
        return j->dead_data && j->dead_reason ? 0 : FL_ENOMEM;
    }
    natsMsg *m = NULL;
    if (rc == 0 && j->redrive_headers != NULL) {
        s = natsMsg_Create(&m, j->topic, NULL, natsMsg_GetData(dead), natsMsg_GetDataLength(dead));
        rc = status_err(s, 0);
    }
    if (m != NULL) {
        const char **keys = NULL;
        int nkeys = 0;
        if (natsMsgHeader_Keys(dead, &keys, &nkeys) == NATS_OK) {
            for (int i = 0; i < nkeys; i++) {
                const char *v = NULL;
                if (strcmp(keys[i], "Flint-Reason") != 0 && strcmp(keys[i], "Flint-Topic") != 0 &&
                    strcmp(keys[i], "Flint-Seq") != 0 && strncasecmp(keys[i], "Nats-", 5) != 0 &&
                    natsMsgHeader_Get(dead, keys[i], &v) == NATS_OK)
                    natsMsgHeader_Set(m, keys[i], v);
            }
            free((void *)keys);
        }
        set_headers(m, j->redrive_headers);
        uint64_t letter = j->seq;
        rc = publish_msg(n, j, m, j->topic);
        j->seq = letter;
        natsMsg_Destroy(m);
    }
    if (rc == 0) {
        s = js_DeleteMsg(n->js, NATS_DEAD_STREAM, natsMsg_GetSequence(dead), NULL, &jerr);
        if (s != NATS_OK)
            log_failure("cannot delete a dead letter", subject, s, jerr);
        rc = status_err(s, jerr);
    }
    natsMsg_Destroy(dead);
    return rc;
}

static int do_info(struct fl_mq_nats *n, struct job *j)
{
    struct nsub *sb = j->sub;
    if (n->js == NULL || sb->stream[0] == '\0')
        return FL_ECONNECT;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, n->js, sb->stream, sb->durable, NULL, &jerr);
    if (s == NATS_OK)
        take_info(j, ci);
    if (ci != NULL)
        jsConsumerInfo_Destroy(ci);
    if (s == NATS_OK)
        count_dead(n, j, sb->durable);
    return status_err(s, jerr);
}

static void drop_held(struct fl_queue *msgs)
{
    while (!fl_queue_empty(msgs)) {
        struct held *h = FL_QUEUE_DATA(fl_queue_first(msgs), struct held, link);
        fl_queue_remove(&h->link);
        natsMsg_Destroy(h->msg);
        free(h);
    }
}

static int do_connect_job(struct fl_mq_nats *n, struct job *j)
{
    return do_connect(n);
}

static int do_ensure(struct fl_mq_nats *n, struct job *j)
{
    char stream[NATS_NAME_MAX];
    return find_stream(n, j->topic, j->create, stream, sizeof(stream));
}

static int do_ack_job(struct fl_mq_nats *n, struct job *j)
{
    int rc = do_ack(n, j);
    if (j->kind != FL_IN_PROGRESS)
        natsMsg_Destroy(j->msg); /* named by no job after this one */
    j->msg = NULL;
    return rc;
}

static int do_drop(struct fl_mq_nats *n, struct job *j)
{
    drop_held(&j->msgs);
    return 0;
}

static int do_watch(struct fl_mq_nats *n, struct job *j)
{
    if (n->nc == NULL)
        return FL_ECONNECT;
    return status_err(natsConnection_Subscribe(&j->watch->sub, n->nc, j->watch->topic, on_hint, n),
                      0);
}

static void destroy_watch_sub(struct nwatch *w)
{
    if (w->sub != NULL) {
        natsSubscription_Unsubscribe(w->sub);
        natsSubscription_Destroy(w->sub);
    }
    w->sub = NULL;
}

static int do_unwatch(struct fl_mq_nats *n, struct job *j)
{
    destroy_watch_sub(j->watch);
    return 0;
}

static int do_close(struct fl_mq_nats *n, struct job *j)
{
    if (n->js != NULL) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = NATS_WAIT_MS;
        js_PublishAsyncComplete(n->js, &po); /* their callbacks have run */
    }
    for (size_t i = 0; i < j->nsubs; i++)
        if (j->subs[i]->sub != NULL) {
            natsSubscription_Unsubscribe(j->subs[i]->sub);
            natsSubscription_Destroy(j->subs[i]->sub);
        }
    for (size_t i = 0; i < j->nwatches; i++)
        destroy_watch_sub(j->watches[i]);
    if (n->js != NULL)
        jsCtx_Destroy(n->js);
    n->js = NULL;
    if (n->nc != NULL) {
        natsConnection_Close(n->nc);
        natsConnection_Destroy(n->nc);
    }
    n->nc = NULL;
    natsOptions_Destroy(n->opts);
    n->opts = NULL;
    nats_CloseAndWait(NATS_WAIT_MS); /* its threads gone: no callback comes after */
    return 0;
}

/* What the worker does for each operation. */
static int (*const runs[])(struct fl_mq_nats *n, struct job *j) = {
    [OP_CONNECT] = do_connect_job, [OP_ENSURE] = do_ensure,
    [OP_SUBSCRIBE] = do_subscribe, [OP_UNSUBSCRIBE] = do_unsubscribe,
    [OP_FETCH] = do_fetch,         [OP_ACK] = do_ack_job,
    [OP_DROP] = do_drop,           [OP_PUBLISH] = do_publish,
    [OP_INFO] = do_info,           [OP_WATCH] = do_watch,
    [OP_UNWATCH] = do_unwatch,     [OP_STEER] = do_steer,
    [OP_CLOSE] = do_close,
};

/* j is done: back to the loop. */
static void post_done(struct fl_mq_nats *n, struct job *j)
{
    pthread_mutex_lock(&n->lock);
    fl_queue_insert_tail(&n->done, &j->link);
    pthread_mutex_unlock(&n->lock);
    uv_async_send(&n->async);
}

static void *worker_main(void *arg)
{
    struct fl_mq_nats *n = arg;
    for (;;) {
        pthread_mutex_lock(&n->lock);
        while (fl_queue_empty(&n->jobs))
            pthread_cond_wait(&n->wake, &n->lock);
        struct job *j = FL_QUEUE_DATA(fl_queue_first(&n->jobs), struct job, link);
        fl_queue_remove(&j->link);
        n->njobs--;
        pthread_mutex_unlock(&n->lock);
        enum op op = j->op;
        int rc = runs[op](n, j);
        if (rc == NATS_ASYNC)
            continue; /* j is libnats' callback's now */
        j->err = rc;
        post_done(n, j);
        if (op == OP_CLOSE)
            return NULL;
    }
}

/* ---- the loop's side ---- */

static const struct fl_store_result none;

static struct job *job_new(enum op op, const char *topic, fl_store_cb cb, void *data)
{
    if (topic != NULL && strlen(topic) >= NATS_NAME_MAX)
        return NULL;
    struct job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->op = op;
    if (topic != NULL)
        fl_strlcpy(j->topic, topic, sizeof(j->topic));
    j->cb = cb;
    j->data = data;
    fl_queue_init(&j->msgs);
    return j;
}

/* Hand j to the worker past the queue's bound: for jobs that free memory
 * or close, which must not be refused. */
static void enqueue(struct fl_mq_nats *n, struct job *j)
{
    pthread_mutex_lock(&n->lock);
    fl_queue_insert_tail(&n->jobs, &j->link);
    n->njobs++;
    pthread_cond_signal(&n->wake);
    pthread_mutex_unlock(&n->lock);
}

/* Hand j to the worker; on an error j is freed (its cb never runs). */
static int submit(struct fl_mq_nats *n, struct job *j)
{
    int rc = 0;
    pthread_mutex_lock(&n->lock);
    if (n->njobs >= NATS_JOBS_MAX)
        rc = FL_EAGAIN;
    else {
        fl_queue_insert_tail(&n->jobs, &j->link);
        n->njobs++;
        pthread_cond_signal(&n->wake);
    }
    pthread_mutex_unlock(&n->lock);
    if (rc < 0)
        free(j);
    else if (j->sub != NULL)
        j->sub->jobs++;
    return rc;
}

static struct nsub *sub_find(struct fl_mq_nats *n, const char *topic, const char *consumer)
{
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &n->subs)
    {
        struct nsub *sb = FL_QUEUE_DATA(e, struct nsub, link);
        if (!sb->removing && strcmp(sb->topic, topic) == 0 && strcmp(sb->consumer, consumer) == 0)
            return sb;
    }
    return NULL;
}

static struct held *held_find(struct nsub *sb, uint64_t seq)
{
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &sb->held)
    {
        struct held *h = FL_QUEUE_DATA(e, struct held, link);
        if (h->seq == seq)
            return h;
    }
    return NULL;
}

/* Destroy the messages of msgs on the worker (after every job naming them). */
static void drop_later(struct fl_mq_nats *n, struct fl_queue *msgs)
{
    if (fl_queue_empty(msgs))
        return;
    struct job *j = job_new(OP_DROP, NULL, NULL, NULL);
    if (j == NULL)
        return; /* leaked rather than freed under a job that may name them */
    while (!fl_queue_empty(msgs)) {
        struct fl_queue *e = fl_queue_first(msgs);
        fl_queue_remove(e);
        fl_queue_insert_tail(&j->msgs, e);
    }
    enqueue(n, j);
}

static void sub_maybe_free(struct nsub *sb)
{
    if (sb->removing && sb->jobs == 0) {
        fl_queue_remove(&sb->link);
        free(sb);
    }
}

/* A fetch's messages: held until acked, then given to cb as records. */
static void fetch_done(struct fl_mq_nats *n, struct job *j)
{
    struct nsub *sb = j->sub;
    struct fl_record *recs = j->ngot > 0 ? calloc(j->ngot, sizeof(*recs)) : NULL;
    struct fl_queue dropped;
    fl_queue_init(&dropped);
    size_t k = 0;
    for (size_t i = 0; i < j->ngot; i++) {
        struct fetched *f = &j->got[i];
        struct held *h = calloc(1, sizeof(*h));
        if (h == NULL)
            continue; /* leaked: nothing can hold it; it comes back after AckWait */
        h->seq = f->seq;
        h->msg = f->msg;
        if (recs == NULL || sb->removing || n->closing || j->err < 0) {
            fl_queue_insert_tail(&dropped, &h->link); /* comes back after AckWait */
            continue;
        }
        struct held *old = held_find(sb, f->seq);
        if (old != NULL) {
            /* delivered again while held: the newest delivery is the one acked */
            fl_queue_remove(&old->link);
            fl_queue_insert_tail(&dropped, &old->link);
        }
        fl_queue_insert_tail(&sb->held, &h->link);
        const char *data = natsMsg_GetData(f->msg);
        recs[k++] = (struct fl_record){
            .key = f->key,
            .type = "",
            .data = data != NULL ? data : "",
            .len = (size_t)natsMsg_GetDataLength(f->msg),
            .headers = f->headers != NULL ? f->headers : "{}",
            .reason = "",
            .seq = f->seq,
            .ts_ms = f->ts_ms,
            .deliveries = f->deliveries,
        };
    }
    drop_later(n, &dropped);
    struct fl_store_result res = {.records = recs, .n = k};
    if (j->cb != NULL)
        j->cb(j->err, &res, j->data);
    for (size_t i = 0; i < j->ngot; i++)
        free(j->got[i].headers);
    free(recs);
    free(j->got);
}

static void watches_tell(struct fl_mq_nats *n)
{
    char hinted[NATS_HINTS_MAX][NATS_NAME_MAX];
    size_t nh;
    bool all;
    pthread_mutex_lock(&n->lock);
    nh = n->nhinted;
    all = n->hint_all;
    memcpy(hinted, n->hinted, nh * sizeof(hinted[0]));
    n->nhinted = 0;
    n->hint_all = false;
    pthread_mutex_unlock(&n->lock);
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &n->watches)
    {
        struct nwatch *w = FL_QUEUE_DATA(e, struct nwatch, link);
        bool tell = all || w->kick;
        for (size_t i = 0; !tell && i < nh; i++)
            tell = strcmp(hinted[i], w->topic) == 0;
        w->kick = false;
        if (tell && !w->gone && !n->closing)
            w->cb(0, &none, w->data); /* may unnotify: w stays until its unwatch is back */
    }
}

/* n and its copies of the configuration. */
static void nats_free(struct fl_mq_nats *n)
{
    free(n->urls);
    free(n->creds);
    free(n->tls_ca);
    free(n->tls_cert);
    free(n->tls_key);
    free(n);
}

/*
 * The server takes acks asynchronously from the pull requests of the same
 * connection: a fetch sent right after the ack that freed a place under
 * MaxAckPending may still find the consumer full, and nothing else would
 * tell the trigger before its next tick. So an ack (of any kind but
 * in-progress) tells the topic's watches again, a millisecond later, as
 * the store's notify does when acks make room; and a fetch that came back
 * short within NATS_ROOM_MS of an ack does so too (the server may not
 * have taken the ack yet), which stops NATS_ROOM_MS after the last ack.
 */
static void on_room(uv_timer_t *timer)
{
    struct fl_mq_nats *n = timer->data;
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &n->watches)
    {
        struct nwatch *w = FL_QUEUE_DATA(e, struct nwatch, link);
        w->kick |= w->room;
        w->room = false;
    }
    watches_tell(n);
}

static void made_room(struct fl_mq_nats *n, const char *topic, bool acked)
{
    bool any = false;
    uint64_t now = uv_now(n->loop);
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &n->watches)
    {
        struct nwatch *w = FL_QUEUE_DATA(e, struct nwatch, link);
        if (strcmp(w->topic, topic) != 0 || w->gone || (!acked && now - w->acked_ms > NATS_ROOM_MS))
            continue;
        if (acked)
            w->acked_ms = now;
        any = w->room = true;
    }
    if (any && !n->closing && !uv_is_active((uv_handle_t *)&n->room))
        uv_timer_start(&n->room, on_room, 1, 0);
}

static void on_closed_handle(uv_handle_t *h)
{
    struct fl_mq_nats *n = h->data;
    if (--n->handles > 0)
        return;
    void (*done)(void *) = n->closed;
    void *data = n->closed_data;
    pthread_join(n->thread, NULL);
    pthread_mutex_destroy(&n->lock);
    pthread_cond_destroy(&n->wake);
    nats_free(n);
    if (done != NULL)
        done(data);
}

static void on_async(uv_async_t *a)
{
    struct fl_mq_nats *n = a->data;
    struct fl_queue done;
    fl_queue_init(&done);
    pthread_mutex_lock(&n->lock);
    while (!fl_queue_empty(&n->done)) {
        struct fl_queue *e = fl_queue_first(&n->done);
        fl_queue_remove(e);
        fl_queue_insert_tail(&done, e);
    }
    pthread_mutex_unlock(&n->lock);
    bool closed = false;
    while (!fl_queue_empty(&done)) {
        struct job *j = FL_QUEUE_DATA(fl_queue_first(&done), struct job, link);
        fl_queue_remove(&j->link);
        struct fl_consumer_info ci = {.topic = j->topic,
                                      .name = j->sub ? j->sub->consumer : "",
                                      .config = j->cfg,
                                      .pending = j->pending,
                                      .lag = j->lag,
                                      .dead = j->dead};
        struct fl_store_result res = {.seq = j->seq, .duplicate = j->duplicate};
        if (j->have_info) {
            res.consumers = &ci;
            res.n = 1;
        }
        switch (j->op) {
        case OP_FETCH:
            if (j->ngot < j->max)
                made_room(n, j->topic, false);
            fetch_done(n, j);
            break;
        case OP_UNWATCH:
            fl_queue_remove(&j->watch->link);
            free(j->watch);
            break;
        case OP_ACK:
            if (j->kind != FL_IN_PROGRESS)
                made_room(n, j->topic, true);
            if (j->cb != NULL)
                j->cb(j->err, &res, j->data);
            break;
        case OP_STEER:
            if (j->peek && j->err == 0) {
                const struct fl_record r = {.key = "",
                                            .type = "",
                                            .data = j->dead_data,
                                            .len = j->dead_len,
                                            .headers = "{}",
                                            .reason = j->dead_reason,
                                            .seq = j->seq};
                res.records = &r;
                res.n = 1;
                j->cb(0, &res, j->data);
            } else {
                j->cb(j->err, &res, j->data);
            }
            free(j->dead_data);
            free(j->dead_reason);
            break;
        case OP_CLOSE:
            closed = true;
            for (size_t i = 0; i < j->nsubs; i++) {
                j->subs[i]->removing = true;
                j->subs[i]->jobs--;
                sub_maybe_free(j->subs[i]);
            }
            free(j->subs);
            free(j->watches);
            break;
        case OP_SUBSCRIBE:
            if (j->err < 0 && j->sub->sub == NULL && fl_queue_empty(&j->sub->held))
                j->sub->removing = true; /* never made: forgotten */
            __attribute__((fallthrough));
        default:
            if (j->cb != NULL)
                j->cb(j->err, &res, j->data);
            break;
        }
        if (j->sub != NULL) {
            j->sub->jobs--;
            sub_maybe_free(j->sub);
        }
        free(j->reason);
        free(j->redrive_headers);
        if (j != &n->close_job)
            free(j);
    }
    watches_tell(n);
    if (closed) {
        while (!fl_queue_empty(&n->watches)) {
            struct nwatch *w = FL_QUEUE_DATA(fl_queue_first(&n->watches), struct nwatch, link);
            fl_queue_remove(&w->link);
            free(w);
        }
        uv_close((uv_handle_t *)&n->async, on_closed_handle);
        uv_close((uv_handle_t *)&n->room, on_closed_handle);
    }
}

/* ---- the operations ---- */

static int nats_ensure(void *self, const char *topic, bool create, fl_store_cb cb, void *data)
{
    struct fl_mq_nats *n = self;
    struct job *j = n->closing ? NULL : job_new(OP_ENSURE, topic, cb, data);
    if (j == NULL)
        return n->closing ? FL_ECLOSED : FL_ENOMEM;
    j->create = create;
    return submit(n, j);
}

static int nats_subscribe(void *self, const char *topic, const char *consumer,
                          const struct fl_consumer_config *cfg, bool create, fl_store_cb cb,
                          void *data)
{
    struct fl_mq_nats *n = self;
    if (n->closing)
        return FL_ECLOSED;
    if (strlen(topic) >= NATS_NAME_MAX || strlen(consumer) >= NATS_NAME_MAX)
        return FL_EINVAL;
    struct nsub *sb = sub_find(n, topic, consumer);
    bool made = false;
    if (sb == NULL) {
        if ((sb = calloc(1, sizeof(*sb))) == NULL)
            return FL_ENOMEM;
        fl_strlcpy(sb->topic, topic, sizeof(sb->topic));
        fl_strlcpy(sb->consumer, consumer, sizeof(sb->consumer));
        durable_of(consumer, sb->durable, sizeof(sb->durable));
        fl_queue_init(&sb->held);
        fl_queue_insert_tail(&n->subs, &sb->link);
        made = true;
    }
    struct job *j = job_new(OP_SUBSCRIBE, topic, cb, data);
    int rc = FL_ENOMEM;
    if (j != NULL) {
        j->create = create;
        j->cfg = *cfg;
        j->sub = sb;
        rc = submit(n, j);
    }
    if (rc < 0 && made) {
        fl_queue_remove(&sb->link);
        free(sb);
    }
    return rc;
}

static int nats_unsubscribe(void *self, const char *topic, const char *consumer, fl_store_cb cb,
                            void *data)
{
    struct fl_mq_nats *n = self;
    if (n->closing)
        return FL_ECLOSED;
    struct nsub *sb = sub_find(n, topic, consumer);
    if (sb == NULL) {
        /* none made by this flintd: the consumer may be there still */
        if (strlen(topic) >= NATS_NAME_MAX || strlen(consumer) >= NATS_NAME_MAX ||
            (sb = calloc(1, sizeof(*sb))) == NULL)
            return sb == NULL && strlen(topic) < NATS_NAME_MAX ? FL_ENOMEM : FL_EINVAL;
        fl_strlcpy(sb->topic, topic, sizeof(sb->topic));
        fl_strlcpy(sb->consumer, consumer, sizeof(sb->consumer));
        durable_of(consumer, sb->durable, sizeof(sb->durable));
        fl_queue_init(&sb->held);
        fl_queue_insert_tail(&n->subs, &sb->link);
    }
    struct job *j = job_new(OP_UNSUBSCRIBE, topic, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->sub = sb;
    sb->removing = true; /* its held messages go after every job naming them */
    int rc = submit(n, j);
    if (rc < 0) {
        sub_maybe_free(sb);
        return rc;
    }
    drop_later(n, &sb->held);
    return 0;
}

static int nats_notify(void *self, const char *topic, const char *consumer, fl_store_cb cb,
                       void *data, void **handle)
{
    struct fl_mq_nats *n = self;
    *handle = NULL;
    if (n->closing)
        return FL_ECLOSED;
    struct nwatch *w = strlen(topic) < NATS_NAME_MAX ? calloc(1, sizeof(*w)) : NULL;
    struct job *j = w != NULL ? job_new(OP_WATCH, topic, NULL, NULL) : NULL;
    if (j == NULL) {
        free(w);
        return FL_ENOMEM;
    }
    fl_strlcpy(w->topic, topic, sizeof(w->topic));
    w->cb = cb;
    w->data = data;
    w->kick = true; /* messages may wait already */
    j->watch = w;
    int rc = submit(n, j);
    if (rc < 0) {
        free(w);
        return rc;
    }
    fl_queue_insert_tail(&n->watches, &w->link);
    *handle = w;
    uv_async_send(&n->async);
    return 0;
}

static void nats_unnotify(void *self, void *handle)
{
    struct fl_mq_nats *n = self;
    struct nwatch *w = handle;
    if (w == NULL || w->gone)
        return;
    w->gone = true;
    struct job *j = job_new(OP_UNWATCH, NULL, NULL, NULL);
    if (j == NULL)
        return; /* kept, silent, until the connector closes */
    j->watch = w;
    enqueue(n, j);
}

/* A job of op on the consumer the loop subscribed (topic, consumer), into
 * *out. FL_ECLOSED, FL_ENOENT (none), FL_ENOMEM. */
static int sub_job(struct fl_mq_nats *n, enum op op, const char *topic, const char *consumer,
                   fl_store_cb cb, void *data, struct job **out)
{
    if (n->closing)
        return FL_ECLOSED;
    struct nsub *sb = sub_find(n, topic, consumer);
    if (sb == NULL)
        return FL_ENOENT;
    struct job *j = job_new(op, topic, cb, data);
    if (j == NULL)
        return FL_ENOMEM;
    j->sub = sb;
    *out = j;
    return 0;
}

static int nats_fetch(void *self, const char *topic, const char *consumer, size_t max,
                      fl_store_cb cb, void *data)
{
    struct job *j;
    if (max < 1 || max > 256)
        return FL_EINVAL;
    int rc = sub_job(self, OP_FETCH, topic, consumer, cb, data, &j);
    if (rc < 0)
        return rc;
    j->max = max;
    return submit(self, j);
}

static int nats_ack(void *self, const char *topic, const char *consumer, uint64_t seq,
                    enum fl_ack_kind kind, int64_t delay_ms, const char *reason, fl_store_cb cb,
                    void *data)
{
    struct fl_mq_nats *n = self;
    struct job *j;
    int rc = sub_job(n, OP_ACK, topic, consumer, cb, data, &j);
    if (rc < 0)
        return rc;
    struct held *h = held_find(j->sub, seq);
    if (h == NULL || (reason != NULL && (j->reason = strdup(reason)) == NULL)) {
        free(j);
        return h == NULL ? FL_ENOENT : FL_ENOMEM;
    }
    j->msg = h->msg;
    j->kind = kind;
    j->delay_ms = delay_ms;
    j->seq = seq;
    rc = submit(n, j);
    if (rc == 0 && kind != FL_IN_PROGRESS) {
        fl_queue_remove(&h->link); /* the job destroys the message */
        free(h);
    }
    return rc;
}

static int nats_publish(void *self, const char *topic, const char *headers, const char *msg_id,
                        const void *payload, size_t len, fl_store_cb cb, void *data)
{
    struct fl_mq_nats *n = self;
    if (n->closing)
        return FL_ECLOSED;
    if (len > INT32_MAX)
        return FL_ETOOBIG;
    struct job *j = job_new(OP_PUBLISH, topic, cb, data);
    if (j == NULL)
        return strlen(topic) >= NATS_NAME_MAX ? FL_EINVAL : FL_ENOMEM;
    j->headers = headers;
    j->msg_id = msg_id;
    j->payload = payload;
    j->len = len;
    return submit(n, j);
}

static int nats_info(void *self, const char *topic, const char *consumer, fl_store_cb cb,
                     void *data)
{
    struct job *j;
    int rc = sub_job(self, OP_INFO, topic, consumer, cb, data, &j);
    return rc < 0 ? rc : submit(self, j);
}

static int steer_job(struct fl_mq_nats *n, const char *topic, const char *consumer, uint64_t seq,
                     const char *redrive_headers, bool peek, fl_store_cb cb, void *data);

static int nats_steer_dead(void *self, const char *topic, const char *consumer, uint64_t seq,
                           const char *redrive_headers, fl_store_cb cb, void *data)
{
    return steer_job(self, topic, consumer, seq, redrive_headers, false, cb, data);
}

static int nats_read_dead(void *self, const char *topic, const char *consumer, uint64_t seq,
                          fl_store_cb cb, void *data)
{
    return steer_job(self, topic, consumer, seq, NULL, true, cb, data);
}

static int steer_job(struct fl_mq_nats *n, const char *topic, const char *consumer, uint64_t seq,
                     const char *redrive_headers, bool peek, fl_store_cb cb, void *data)
{
    if (n->closing)
        return FL_ECLOSED;
    if (strlen(consumer) >= NATS_NAME_MAX)
        return FL_EINVAL;
    struct job *j = job_new(OP_STEER, topic, cb, data);
    if (j == NULL)
        return strlen(topic) >= NATS_NAME_MAX ? FL_EINVAL : FL_ENOMEM;
    fl_strlcpy(j->consumer, consumer, sizeof(j->consumer));
    j->seq = seq;
    j->peek = peek;
    if (redrive_headers != NULL && (j->redrive_headers = strdup(redrive_headers)) == NULL) {
        free(j);
        return FL_ENOMEM;
    }
    char *headers = j->redrive_headers;
    int rc = submit(n, j); /* frees j if it fails */
    if (rc < 0)
        free(headers);
    return rc;
}

static int nats_state(void *self, char *reason, size_t size)
{
    struct fl_mq_nats *n = self;
    pthread_mutex_lock(&n->lock);
    bool up = n->connected;
    fl_strlcpy(reason, up ? "" : n->why, size);
    pthread_mutex_unlock(&n->lock);
    return up ? 0 : FL_ECONNECT;
}

const struct fl_mq_connector fl_mq_nats_connector = {
    .name = "nats",
    .ensure = nats_ensure,
    .subscribe = nats_subscribe,
    .unsubscribe = nats_unsubscribe,
    .notify = nats_notify,
    .unnotify = nats_unnotify,
    .fetch = nats_fetch,
    .ack = nats_ack,
    .publish = nats_publish,
    .info = nats_info,
    .state = nats_state,
    .steer_dead = nats_steer_dead,
    .read_dead = nats_read_dead,
};

/* ---- start and close ---- */

static int copy_opt(const char *from, char **to)
{
    *to = NULL;
    if (from == NULL || from[0] == '\0')
        return 0;
    *to = strdup(from);
    return *to != NULL ? 0 : FL_ENOMEM;
}

int fl_mq_nats_new(uv_loop_t *loop, const struct fl_mq_nats_config *cfg, struct fl_mq_nats **out,
                   char *err, size_t errsize)
{
    if (cfg->urls == NULL || cfg->urls[0] == '\0' || strlen(cfg->urls) >= 1024) {
        fl_error_format(err, errsize, "--nats takes URL[,URL...], at most 1023 bytes");
        return FL_EINVAL;
    }
    if ((cfg->tls_cert != NULL) != (cfg->tls_key != NULL)) {
        fl_error_format(err, errsize, "--nats-tls-cert and --nats-tls-key go together");
        return FL_EINVAL;
    }
    struct fl_mq_nats *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return FL_ENOMEM;
    int rc = copy_opt(cfg->urls, &n->urls);
    if (rc == 0)
        rc = copy_opt(cfg->creds, &n->creds);
    if (rc == 0)
        rc = copy_opt(cfg->tls_ca, &n->tls_ca);
    if (rc == 0)
        rc = copy_opt(cfg->tls_cert, &n->tls_cert);
    if (rc == 0)
        rc = copy_opt(cfg->tls_key, &n->tls_key);
    struct job *j = rc == 0 ? job_new(OP_CONNECT, NULL, NULL, NULL) : NULL;
    if (j == NULL) {
        nats_free(n);
        return FL_ENOMEM;
    }
    n->loop = loop;
    fl_queue_init(&n->jobs);
    fl_queue_init(&n->done);
    fl_queue_init(&n->publishing);
    fl_queue_init(&n->subs);
    fl_queue_init(&n->watches);
    snprintf(n->why, sizeof(n->why), "connecting to NATS (%s)", n->urls);
    pthread_mutex_init(&n->lock, NULL);
    pthread_cond_init(&n->wake, NULL);
    uv_async_init(loop, &n->async, on_async);
    n->async.data = n;
    uv_timer_init(loop, &n->room);
    n->room.data = n;
    n->handles = 2;
    fl_queue_insert_tail(&n->jobs, &j->link);
    n->njobs = 1;
    if (pthread_create(&n->thread, NULL, worker_main, n) != 0) {
        fl_error_format(err, errsize, "cannot start the NATS worker thread");
        free(j);
        n->closed = NULL;
        uv_close((uv_handle_t *)&n->async, NULL); /* n leaks with the failed start */
        uv_close((uv_handle_t *)&n->room, NULL);
        return FL_ENOMEM;
    }
    n->thread_started = true;
    *out = n;
    return 0;
}

void fl_mq_nats_close(struct fl_mq_nats *n, void (*done)(void *data), void *data)
{
    n->closing = true;
    n->closed = done;
    n->closed_data = data;
    struct job *j = &n->close_job;
    j->op = OP_CLOSE;
    size_t ns = 0, nw = 0;
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &n->subs)
    ns++;
    FL_QUEUE_FOREACH(e, tmp, &n->watches)
    nw++;
    /* without memory for these, their libnats objects leak with the close */
    j->subs = ns > 0 ? calloc(ns, sizeof(*j->subs)) : NULL;
    j->watches = nw > 0 ? calloc(nw, sizeof(*j->watches)) : NULL;
    FL_QUEUE_FOREACH(e, tmp, &n->subs)
    {
        struct nsub *sb = FL_QUEUE_DATA(e, struct nsub, link);
        drop_later(n, &sb->held);
        if (j->subs != NULL && !sb->removing) {
            j->subs[j->nsubs++] = sb;
            sb->jobs++; /* kept until the close is back */
        }
    }
    FL_QUEUE_FOREACH(e, tmp, &n->watches)
    {
        struct nwatch *w = FL_QUEUE_DATA(e, struct nwatch, link);
        if (j->watches != NULL && !w->gone)
            j->watches[j->nwatches++] = w; /* freed by nobody before the close is back */
    }
    enqueue(n, j);
}
