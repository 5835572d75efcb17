/*
 * The http built-in (engine_internal.h): one request on flintd's own HTTP
 * client (http/client.h), with Fission Workflows' inputs: `url` (else
 * `default`; "http://" is put in front when it has no scheme), `method`
 * (GET), `headers` (a map of strings), `body` (a string as it is, another
 * value as JSON), `content-type` (else application/json for a JSON body).
 * Only http:// (the client has no TLS); a host name is resolved on the
 * thread pool. The response is bounded by the engine's max_output and its
 * time by the task's timeout (else HTTP_TASK_TIMEOUT_MS); a non-2xx answer
 * is an error with its status. The request carries the attempt's
 * X-Flint-Idempotency-Key, as a function's call does: a restart sends an
 * unfinished attempt again with the same key.
 */
#include "wf/engine_internal.h"

#include "base/buf.h"
#include "base/error.h"
#include "base/str.h"
#include "http/client.h"
#include "http/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_TASK_TIMEOUT_MS 30000
#define HTTP_TASK_HEADERS    32

struct http_task {
    struct fl_wf_engine *e;
    http_task_cb cb;
    void *data;
    struct fl_http_url url;
    char method[16];
    char key[ENGINE_KEY_MAX];
    json_t *inputs; /* a reference: header values and a string body point into it */
    char *body;     /* a JSON body made of `body`, or NULL */
    const char *body_ptr;
    size_t body_len;
    struct fl_http_header headers[HTTP_TASK_HEADERS];
    size_t nheaders;
    uint64_t timeout_ms;
    uv_getaddrinfo_t resolve;
    struct fl_http_call *call;
    bool resolving, canceled;
};

static void task_free(struct http_task *t)
{
    json_decref(t->inputs);
    free(t->body);
    free(t);
}

/* Tell the engine the outcome (unless canceled) and free t. */
static void finish(struct http_task *t, json_t *output, json_t *headers, const char *error)
{
    struct fl_wf_engine *e = t->e;
    if (!t->canceled)
        t->cb(t->data, output, headers, error);
    json_decref(output);
    json_decref(headers);
    task_free(t);
    engine_op_done(e);
}

static void on_response(int err, const struct fl_http_client_response *resp, void *data)
{
    struct http_task *t = data;
    char error[1024];
    t->call = NULL;
    if (err < 0) {
        snprintf(error, sizeof(error), "http: %s http://%s%.200s: %s", t->method, t->url.address,
                 t->url.target,
                 err == FL_ETOOBIG     ? "the response is larger than a task's output may be"
                 : err == FL_ETIMEDOUT ? "no response within the timeout"
                                       : fl_strerror(err));
        finish(t, NULL, NULL, error);
        return;
    }
    if (resp->status < 200 || resp->status > 299) {
        int shown = resp->body_len < 600 ? (int)resp->body_len : 600;
        snprintf(error, sizeof(error), "http: %s http://%s%.200s answered %d: %.*s", t->method,
                 t->url.address, t->url.target, resp->status, shown, resp->body ? resp->body : "");
        finish(t, NULL, NULL, error);
        return;
    }
    size_t clen = 0;
    const char *ctype = fl_http_client_header(resp, "content-type", &clen);
    json_t *output = NULL;
    if (ctype != NULL && memmem(ctype, clen, "json", 4) != NULL)
        output = json_loadb(resp->body ? resp->body : "", resp->body_len, JSON_DECODE_ANY, NULL);
    if (output == NULL)
        output = resp->body_len ? json_stringn(resp->body, resp->body_len) : json_null();
    json_t *headers = fl_wf_headers_json(resp->headers, resp->nheaders);
    if (output == NULL) {
        snprintf(error, sizeof(error), "http: the response of http://%s%.200s is not text",
                 t->url.address, t->url.target);
        json_decref(headers);
        finish(t, NULL, NULL, error);
        return;
    }
    finish(t, output, headers, NULL);
}

/* Send t's request to address: 0, or an error and why (t is the
 * caller's still). */
static int send_to(struct http_task *t, const char *address, char *why, size_t size)
{
    const struct fl_http_client_request req = {.target = address,
                                               .method = t->method,
                                               .path = t->url.target,
                                               .headers = t->headers,
                                               .nheaders = t->nheaders,
                                               .body = t->body_ptr,
                                               .body_len = t->body_len,
                                               .timeout_ms = t->timeout_ms};
    int rc = fl_http_client_request(t->e->http, &req, on_response, t, &t->call);
    if (rc < 0)
        snprintf(why, size, "http: cannot send %s http://%s%.200s: %s", t->method, t->url.address,
                 t->url.target, fl_strerror(rc));
    return rc;
}

static void on_resolved(uv_getaddrinfo_t *r, int status, struct addrinfo *res)
{
    struct http_task *t = r->data;
    char ip[64], address[80];
    t->resolving = false;
    if (status < 0 || res == NULL || uv_ip_name(res->ai_addr, ip, sizeof(ip)) != 0) {
        char error[320];
        snprintf(error, sizeof(error), "http: cannot resolve %.253s: %s", t->url.host,
                 status < 0 ? uv_strerror(status) : "no address");
        uv_freeaddrinfo(res);
        finish(t, NULL, NULL, t->canceled ? NULL : error);
        return;
    }
    snprintf(address, sizeof(address), res->ai_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
             (unsigned)t->url.port);
    uv_freeaddrinfo(res);
    char why[512];
    if (t->canceled)
        finish(t, NULL, NULL, NULL);
    else if (send_to(t, address, why, sizeof(why)) < 0)
        finish(t, NULL, NULL, why);
}

/* Read the inputs into t: 0, or FL_EINVAL and why. */
static int read_inputs(struct http_task *t, json_t *in, char *why, size_t size)
{
    json_t *url = json_object_get(in, "url");
    if (url == NULL)
        url = json_object_get(in, "default");
    if (url == NULL || json_is_null(url)) {
        snprintf(why, size, "target URL is required for HTTP function");
        return FL_EINVAL;
    }
    if (!json_is_string(url)) {
        snprintf(why, size, "http: the url must be a string");
        return FL_EINVAL;
    }
    char text[FL_HTTP_URL_MAX + 1];
    const char *u = json_string_value(url);
    bool has_scheme = strncmp(u, "http", 4) == 0; /* Fission Workflows' test */
    if ((size_t)snprintf(text, sizeof(text), "%s%s", has_scheme ? "" : "http://", u) >=
        sizeof(text)) {
        snprintf(why, size, "http: the url is longer than %d bytes", FL_HTTP_URL_MAX);
        return FL_EINVAL;
    }
    struct fl_buf err;
    fl_buf_init(&err, 512);
    int rc = fl_http_url_parse(text, &t->url, &err);
    if (rc < 0)
        snprintf(why, size, "http: bad url '%.200s': %s", u, err.data ? err.data : "invalid");
    fl_buf_release(&err);
    if (rc < 0)
        return FL_EINVAL;
    json_t *m = json_object_get(in, "method");
    const char *method = json_is_string(m) ? json_string_value(m) : "GET";
    size_t mlen = strlen(method);
    if (mlen == 0 || mlen >= sizeof(t->method) ||
        strspn(method, "abcdefghijklmnopqrstuvwxyz"
                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != mlen) {
        snprintf(why, size, "http: '%.40s' is not an HTTP method", method);
        return FL_EINVAL;
    }
    for (size_t k = 0; k <= mlen; k++)
        t->method[k] = (char)(method[k] >= 'a' && method[k] <= 'z' ? method[k] - 32 : method[k]);
    json_t *body = json_object_get(in, "body");
    json_t *ctype = json_object_get(in, "content-type");
    bool is_json = false;
    if (json_is_string(body)) {
        t->body_ptr = json_string_value(body);
        t->body_len = json_string_length(body);
    } else if (body != NULL && !json_is_null(body)) {
        t->body = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (t->body == NULL)
            return FL_ENOMEM;
        t->body_ptr = t->body;
        t->body_len = strlen(t->body);
        is_json = true;
    }
    t->headers[t->nheaders++] =
        (struct fl_http_header){"Host", 4, t->url.address, strlen(t->url.address)};
    if (json_is_string(ctype))
        t->headers[t->nheaders++] = (struct fl_http_header){
            "Content-Type", 12, json_string_value(ctype), json_string_length(ctype)};
    else if (is_json)
        t->headers[t->nheaders++] =
            (struct fl_http_header){"Content-Type", 12, "application/json", 16};
    const char *k;
    json_t *v;
    bool own_key = false;
    json_object_foreach(json_object_get(in, "headers"), k, v)
    {
        own_key = own_key || strcasecmp(k, "x-flint-idempotency-key") == 0;
        if (!json_is_string(v) || strcasecmp(k, "host") == 0 ||
            (json_is_string(ctype) && strcasecmp(k, "content-type") == 0))
            continue;
        if (t->nheaders >= HTTP_TASK_HEADERS) {
            snprintf(why, size, "http: more than %d headers", HTTP_TASK_HEADERS - 2);
            return FL_EINVAL;
        }
        t->headers[t->nheaders++] =
            (struct fl_http_header){k, strlen(k), json_string_value(v), json_string_length(v)};
    }
    if (!own_key && t->key[0] != '\0') {
        if (t->nheaders >= HTTP_TASK_HEADERS) {
            snprintf(why, size, "http: more than %d headers", HTTP_TASK_HEADERS - 3);
            return FL_EINVAL;
        }
        t->headers[t->nheaders++] =
            (struct fl_http_header){"X-Flint-Idempotency-Key", 23, t->key, strlen(t->key)};
    }
    return 0;
}

int http_task_start(struct fl_wf_engine *e, json_t *inputs, int64_t timeout_ms, const char *key,
                    http_task_cb cb, void *data, struct http_task **out, char *why, size_t size)
{
    if (e->http == NULL) {
        struct fl_http_client_config cfg;
        fl_http_client_config_init(&cfg);
        cfg.max_idle = 4;
        cfg.max_conns = 64;
        cfg.max_response_bytes = e->max_output;
        int rc = fl_http_client_new(e->loop, &cfg, &e->http);
        if (rc < 0) {
            snprintf(why, size, "http: cannot make the HTTP client: %s", fl_strerror(rc));
            return rc;
        }
    }
    struct http_task *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(why, size, "out of memory");
        return FL_ENOMEM;
    }
    t->e = e;
    t->cb = cb;
    t->data = data;
    t->inputs = inputs ? json_incref(inputs) : json_object();
    t->timeout_ms = timeout_ms > 0 ? (uint64_t)timeout_ms : HTTP_TASK_TIMEOUT_MS;
    fl_strlcpy(t->key, key ? key : "", sizeof(t->key));
    int rc = read_inputs(t, t->inputs, why, size);
    if (rc < 0) {
        task_free(t);
        return rc;
    }
    if (!t->url.host_is_name) {
        rc = send_to(t, t->url.address, why, size);
    } else {
        char port[8];
        snprintf(port, sizeof(port), "%u", (unsigned)t->url.port);
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
        t->resolve.data = t;
        t->resolving = true;
        rc = uv_getaddrinfo(e->loop, &t->resolve, on_resolved, t->url.host, port, &hints) < 0
                 ? FL_EIO
                 : 0;
        if (rc < 0)
            snprintf(why, size, "http: cannot start resolving %.253s", t->url.host);
    }
    if (rc < 0) {
        task_free(t);
        return rc;
    }
    engine_op(e); /* given back by finish() */
    *out = t;
    return 0;
}

void http_task_cancel(struct http_task *t)
{
    t->canceled = true;
    if (t->call != NULL)
        fl_http_client_cancel(t->call); /* finish() runs now, telling no one */
    else if (t->resolving)
        uv_cancel((uv_req_t *)&t->resolve); /* on_resolved() runs later */
}
