/*
 * Callbacks: once an async invocation has ended, its outcome is POSTed to
 * the callback URL it was given. The outcome is queued durably first, in
 * the topic "async-callbacks" (message id: the invocation's, so that an
 * attempt redelivered after its ack was lost does not queue it twice), and
 * sent by that topic's consumer: a connection failure or an answer other
 * than 2xx is retried with backoff, CALLBACK_ATTEMPTS times in all, and
 * each try is recorded in the invocation ("callback" events).
 *
 * Only http:// URLs; a host name is resolved on the thread pool at each
 * try.
 */
#include "async/internal.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/str.h"
#include "http/parse.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALLBACK_TIMEOUT_MS 10000
static const struct fl_retry_policy callback_retry = {CALLBACK_ATTEMPTS, 1000, 60000};

int async_callback_check(const char *url, size_t len)
{
    char text[FL_HTTP_URL_MAX + 1];
    if (len > FL_HTTP_URL_MAX)
        return FL_EINVAL;
    memcpy(text, url, len);
    text[len] = '\0';
    struct fl_http_url u;
    return fl_http_url_parse(text, &u, NULL);
}

int async_callback_queue(struct fl_async *a, const char *id, const char *url, json_t *payload,
                         fl_store_cb cb, void *data)
{
    if (!a->cb_ready)
        return FL_EAGAIN;
    json_t *h = json_pack("{s:s}", "url", url);
    char *headers = h != NULL ? json_dumps(h, JSON_COMPACT) : NULL;
    char *body = json_dumps(payload, JSON_COMPACT);
    json_decref(h);
    int rc = FL_ENOMEM;
    if (headers != NULL && body != NULL)
        rc = fl_store_publish(a->store, CALLBACK_TOPIC, headers, id, body, strlen(body), cb, data);
    free(headers);
    free(body);
    return rc;
}

/* One delivery of a callback message. */
struct send {
    struct fl_async *a;
    char id[FL_UUID_STRLEN + 1];
    uint64_t seq;
    uint32_t deliveries;
    struct fl_http_url url;
    char *body;
    size_t body_len;
    uv_getaddrinfo_t resolve;
};

static void send_end(struct send *s, int http_status, const char *error)
{
    struct fl_async *a = s->a;
    bool ok = error == NULL;
    bool last = s->deliveries >= CALLBACK_ATTEMPTS;
    const char *status = ok ? "delivered" : last ? "failed" : "retrying";
    json_t *d = json_pack("{s:s,s:i}", "status", status, "attempts", (int)s->deliveries);
    if (d != NULL && http_status > 0)
        json_object_set_new(d, "httpStatus", json_integer(http_status));
    if (d != NULL && error != NULL)
        json_object_set_new(d, "error", json_string(error));
    if (d != NULL)
        async_append(a, s->id, "callback", d, FL_SEQ_ANY, NULL, NULL);
    json_decref(d);
    enum fl_ack_kind kind = ok ? FL_ACK : last ? FL_TERM : FL_NAK;
    int64_t delay = kind == FL_NAK ? fl_retry_delay_ms(&callback_retry, s->deliveries) : 0;
    fl_store_ack(a->store, CALLBACK_TOPIC, CALLBACK_CONSUMER, s->seq, kind, delay, error, NULL,
                 NULL);
    if (!ok)
        FL_LOG_LIMITED(FL_LOG_WARN, "async", "a callback failed", "invocation=%s try=%u error=%s",
                       s->id, s->deliveries, error);
    free(s->body);
    free(s);
    a->cb_inflight--;
    async_op_done(a);
}

static void on_sent(int err, const struct fl_http_client_response *resp, void *data)
{
    struct send *s = data;
    char error[160];
    if (err < 0) {
        snprintf(error, sizeof(error), "could not POST to %.80s: %s", s->url.address,
                 fl_errname(err));
        send_end(s, 0, error);
    } else if (resp->status < 200 || resp->status > 299) {
        snprintf(error, sizeof(error), "%.80s answered %d", s->url.address, resp->status);
        send_end(s, resp->status, error);
    } else {
        send_end(s, resp->status, NULL);
    }
}

static void send_to(struct send *s, const char *address)
{
    char host[FL_HTTP_URL_HOST_MAX + 10];
    snprintf(host, sizeof(host), "%s", s->url.address);
    const struct fl_http_header headers[] = {
        {"Content-Type", 12, "application/json", 16},
        {"Host", 4, host, strlen(host)},
        {"X-Flint-Invocation-Id", 21, s->id, strlen(s->id)},
    };
    struct fl_http_client_request req = {.target = address,
                                         .method = "POST",
                                         .path = s->url.target,
                                         .headers = headers,
                                         .nheaders = 3,
                                         .body = s->body,
                                         .body_len = s->body_len,
                                         .timeout_ms = CALLBACK_TIMEOUT_MS};
    int rc = fl_http_client_request(s->a->http, &req, on_sent, s, NULL);
    if (rc < 0) {
        char error[160];
        snprintf(error, sizeof(error), "could not POST to %.80s: %s", s->url.address,
                 fl_errname(rc));
        send_end(s, 0, error);
    }
}

static void on_resolved(uv_getaddrinfo_t *r, int status, struct addrinfo *res)
{
    struct send *s = r->data;
    char ip[64], address[80];
    if (status < 0 || res == NULL || uv_ip_name(res->ai_addr, ip, sizeof(ip)) != 0) {
        char error[320];
        snprintf(error, sizeof(error), "could not resolve %.253s: %s", s->url.host,
                 status < 0 ? uv_strerror(status) : "no address");
        uv_freeaddrinfo(res);
        send_end(s, 0, error);
        return;
    }
    snprintf(address, sizeof(address), res->ai_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
             (unsigned)s->url.port);
    uv_freeaddrinfo(res);
    send_to(s, address);
}

static void send_new(struct fl_async *a, const struct fl_record *r)
{
    struct send *s = calloc(1, sizeof(*s));
    json_t *h = json_loads(r->headers, 0, NULL);
    const char *url = json_string_value(json_object_get(h, "url"));
    if (s == NULL || url == NULL || fl_http_url_parse(url, &s->url, NULL) < 0 ||
        strlen(r->key) != FL_UUID_STRLEN || (s->body = malloc(r->len + 1)) == NULL) {
        fl_store_ack(a->store, CALLBACK_TOPIC, CALLBACK_CONSUMER, r->seq, FL_TERM, 0,
                     "not a callback this flintd can send", NULL, NULL);
        if (s != NULL)
            free(s->body);
        free(s);
        json_decref(h);
        return;
    }
    json_decref(h);
    s->a = a;
    fl_strlcpy(s->id, r->key, sizeof(s->id));
    s->seq = r->seq;
    s->deliveries = r->deliveries > 0 ? r->deliveries : 1;
    memcpy(s->body, r->data, r->len);
    s->body_len = r->len;
    a->cb_inflight++;
    async_op(a);
    if (!s->url.host_is_name) {
        send_to(s, s->url.address);
        return;
    }
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)s->url.port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    s->resolve.data = s;
    if (uv_getaddrinfo(a->loop, &s->resolve, on_resolved, s->url.host, port, &hints) < 0)
        send_end(s, 0, "could not start resolving the callback's host");
}

static void on_cb_fetch(int err, const struct fl_store_result *res, void *data)
{
    struct fl_async *a = data;
    a->cb_fetching = false;
    for (size_t i = 0; err == 0 && i < res->n; i++) {
        if (a->closing)
            fl_store_ack(a->store, CALLBACK_TOPIC, CALLBACK_CONSUMER, res->records[i].seq, FL_NAK,
                         0, NULL, NULL, NULL);
        else
            send_new(a, &res->records[i]);
    }
    bool more = err == 0 && res->n > 0;
    if (more)
        async_callbacks_pump(a);
    async_op_done(a);
}

#define CALLBACKS_IN_FLIGHT 64

void async_callbacks_pump(struct fl_async *a)
{
    if (a->closing || !a->cb_ready || a->cb_fetching || a->cb_inflight >= CALLBACKS_IN_FLIGHT)
        return;
    size_t max = CALLBACKS_IN_FLIGHT - a->cb_inflight;
    if (fl_store_fetch(a->store, CALLBACK_TOPIC, CALLBACK_CONSUMER, max, on_cb_fetch, a) == 0) {
        a->cb_fetching = true;
        async_op(a);
    }
}

static void on_cb_notify(int err, const struct fl_store_result *res, void *data)
{
    async_callbacks_pump(data);
}

static void on_cb_consumer(int err, const struct fl_store_result *res, void *data)
{
    struct fl_async *a = data;
    if (err == 0 && !a->closing)
        err = fl_store_notify(a->store, CALLBACK_TOPIC, CALLBACK_CONSUMER, on_cb_notify, a,
                              &a->cb_notify);
    if (err < 0 && !a->closing)
        fl_log(FL_LOG_ERROR, "async", "callbacks will not be sent", "error=%s", fl_errname(err));
    else if (!a->closing)
        a->cb_ready = true;
    async_op_done(a);
}

static void on_cb_topic(int err, const struct fl_store_result *res, void *data)
{
    struct fl_async *a = data;
    if (err == 0 && !a->closing) {
        /* the store's maxDeliver is a backstop: the tries are counted here */
        struct fl_consumer_config cfg = {.ack_wait_ms = CALLBACK_TIMEOUT_MS * 3,
                                         .max_deliver = 2 * CALLBACK_ATTEMPTS,
                                         .deliver = FL_DELIVER_ALL};
        err = fl_store_consumer_create(a->store, CALLBACK_TOPIC, CALLBACK_CONSUMER, &cfg,
                                       on_cb_consumer, a);
        if (err == 0)
            async_op(a);
    }
    if (err < 0 && !a->closing)
        fl_log(FL_LOG_ERROR, "async", "callbacks will not be sent", "error=%s", fl_errname(err));
    async_op_done(a);
}

int async_callbacks_start(struct fl_async *a)
{
    /* ids are remembered as long as invocations are, so a callback is
     * queued once per invocation */
    struct fl_topic_limits limits = {.interest = true, .dup_window_ms = a->retention_ms};
    int rc = fl_store_topic_create(a->store, CALLBACK_TOPIC, &limits, on_cb_topic, a);
    if (rc == 0)
        async_op(a);
    return rc;
}
