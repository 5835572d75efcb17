/*
 * flint-runtime-c: the C environment's runtime (docs/runtime-contract.md).
 *
 * It serves the contract on src/http and, at /v2/specialize, dlopens the
 * shared object the builder made from include/flint/fn.h, then calls its
 * handler directly for every request: no copies beyond the request and
 * response buffers, no interpreter. The flint_* functions of fn.h are
 * defined here and exported to the function (the runtime links with
 * -rdynamic). A handler that crashes takes the instance with it; the
 * executor replaces the instance and fails its requests with 502.
 */
#define FLINT_RUNTIME 1
#include <flint/fn.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/log.h"
#include "base/str.h"
#include "http/parse.h"
#include "http/serve.h"

#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_RESPONSE_HEADERS 32
#define MAX_RESPONSE_BODY    (16u << 20)

typedef int (*handler_fn)(const struct flint_request *, struct flint_response *);

struct flint_response {
    int status;
    struct fl_http_header headers[MAX_RESPONSE_HEADERS];
    char *owned[2 * MAX_RESPONSE_HEADERS];
    size_t nheaders;
    struct fl_buf body;
};

static handler_fn handler;
static char function_name[256];
static const struct fl_http_request *current;

/* ---- fn.h, for the function ---- */

const char *flint_request_header(const struct flint_request *req, const char *name)
{
    (void)req;
    return current ? fl_http_request_header(current, name, NULL) : NULL;
}

const char *flint_request_param(const struct flint_request *req, const char *name)
{
    char header[256];
    snprintf(header, sizeof(header), "X-Flint-Param-%s", name);
    return flint_request_header(req, header);
}

void flint_response_status(struct flint_response *resp, int status)
{
    if (status >= 200 && status <= 599) /* a 1xx is not a final answer */
        resp->status = status;
}

int flint_response_header(struct flint_response *resp, const char *name, const char *value)
{
    size_t n_len = strlen(name), v_len = strlen(value);
    if (resp->nheaders == MAX_RESPONSE_HEADERS ||
        !fl_http_header_settable(name, n_len, value, v_len))
        return -1;
    char *n = fl_strndup(name, n_len), *v = fl_strndup(value, v_len);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        return -1;
    }
    resp->owned[2 * resp->nheaders] = n;
    resp->owned[2 * resp->nheaders + 1] = v;
    resp->headers[resp->nheaders++] = (struct fl_http_header){n, n_len, v, v_len};
    return 0;
}

int flint_response_write(struct flint_response *resp, const void *data, size_t len)
{
    return fl_buf_append(&resp->body, data, len) == 0 ? 0 : -1;
}

int flint_response_printf(struct flint_response *resp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fl_buf_vappendf(&resp->body, fmt, ap);
    va_end(ap);
    return rc == 0 ? 0 : -1;
}

/* Publishing (fn.h): one blocking HTTP/1.1 request over FLINT_PUBLISH, with
 * Connection: close, its answer read to the end (bounded) for its status. */
#define PUBLISH_TIMEOUT_S   30
#define PUBLISH_ANSWER_MAX  (64u << 10)
#define PUBLISH_HEADERS_MAX (64u << 10)

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The request line and headers of a publish into head; -1 if a header
 * cannot be sent or they do not fit. */
static int publish_head(struct fl_buf *head, const char *topic, size_t len,
                        const struct flint_header *headers, size_t nheaders)
{
    int rc = fl_buf_appends(head, "POST /topics/");
    for (const char *c = topic; rc == 0 && *c != '\0'; c++) {
        bool plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                     (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-';
        rc = plain ? fl_buf_appendc(head, *c) : fl_buf_appendf(head, "%%%02X", (unsigned char)*c);
    }
    rc = rc ? rc
            : fl_buf_appendf(head,
                             "/messages HTTP/1.1\r\nHost: flint\r\nConnection: close\r\n"
                             "Content-Length: %zu\r\n",
                             len);
    for (size_t i = 0; rc == 0 && i < nheaders; i++) {
        const char *n = headers[i].name, *v = headers[i].value;
        if (n == NULL || v == NULL || !fl_http_header_settable(n, strlen(n), v, strlen(v)) ||
            fl_str_ieq(n, strlen(n), "connection") || fl_str_ieq(n, strlen(n), "host"))
            return -1;
        rc = fl_buf_appendf(head, "%s: %s\r\n", n, v);
    }
    rc = rc ? rc : fl_buf_appends(head, "\r\n");
    return rc == 0 ? 0 : -1;
}

int flint_publish(const char *topic, const void *body, size_t len,
                  const struct flint_header *headers, size_t nheaders)
{
    const char *where = getenv("FLINT_PUBLISH");
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (topic == NULL || where == NULL || strncmp(where, "unix:", 5) != 0 ||
        strlen(where + 5) >= sizeof(sun.sun_path) || (body == NULL && len > 0))
        return -1;
    memcpy(sun.sun_path, where + 5, strlen(where + 5) + 1);
    struct fl_buf head, answer;
    fl_buf_init(&head, PUBLISH_HEADERS_MAX);
    fl_buf_init(&answer, PUBLISH_ANSWER_MAX);
    int status = -1, fd = -1;
    if (publish_head(&head, topic, len, headers, nheaders) < 0)
        goto out;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = PUBLISH_TIMEOUT_S};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
        connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
        goto out;
    if (write_all(fd, head.data, head.len) < 0 || write_all(fd, body, len) < 0)
        goto out;
    char chunk[4096];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || fl_buf_append(&answer, chunk, (size_t)r) < 0)
            break; /* the end, a timeout, or more than a status needs */
    }
    /* "HTTP/1.1 202 Accepted" */
    int64_t code;
    char digits[4] = "";
    if (answer.len >= 12 && strncmp(answer.data, "HTTP/1.", 7) == 0 &&
        (answer.data[12] == ' ' || answer.data[12] == '\r')) {
        memcpy(digits, answer.data + 9, 3);
        if (fl_parse_i64(digits, 100, 599, &code) == 0)
            status = (int)code;
    }
out:
    if (fd >= 0)
        close(fd);
    fl_buf_release(&head);
    fl_buf_release(&answer);
    return status;
}

/* ---- the contract ---- */

static void specialize(struct fl_http_request *req)
{
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
    const char *path = json_string_value(json_object_get(body, "filepath"));
    const char *name = json_string_value(json_object_get(body, "functionName"));
    if (name == NULL || *name == '\0')
        name = "handler";
    if (handler != NULL) {
        fl_http_respond_error(req, 409, "already_specialized", "this instance already runs %s",
                              function_name);
    } else if (path == NULL) {
        fl_http_respond_error(req, 400, "bad_request", "specialize: filepath is required");
    } else if (access(path, R_OK) != 0) {
        fl_http_respond_error(req, 400, "specialize_failed", "filepath '%s' does not exist", path);
    } else {
        void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (so == NULL) {
            fl_http_respond_error(req, 400, "specialize_failed", "cannot load '%s': %s", path,
                                  dlerror());
            goto out;
        }
        const int *version = dlsym(so, "flint_fn_api_version");
        handler_fn fn = (handler_fn)dlsym(so, name);
        int (*init)(void) = (int (*)(void))dlsym(so, "flint_init");
        if (version != NULL && *version > FLINT_FN_API_VERSION) {
            fl_http_respond_error(req, 400, "specialize_failed",
                                  "'%s' needs fn.h version %d; this runtime has %d", path, *version,
                                  FLINT_FN_API_VERSION);
            dlclose(so);
        } else if (fn == NULL) {
            fl_http_respond_error(req, 400, "specialize_failed", "'%s' has no function '%s'", path,
                                  name);
            dlclose(so);
        } else if (init != NULL && init() != 0) {
            fl_http_respond_error(req, 400, "specialize_failed", "flint_init() of '%s' failed",
                                  path);
            dlclose(so);
        } else {
            handler = fn;
            fl_strlcpy(function_name, name, sizeof(function_name));
            printf("specialized %s\n", function_name);
            fflush(stdout);
            /* a name may hold any character: jansson escapes it, and the
             * length is the text's, never a truncated snprintf's */
            json_t *doc = json_pack("{s:s}", "function", function_name);
            char *out = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
            json_decref(doc);
            struct fl_http_header ct = {"Content-Type", 12, "application/json", 16};
            if (out != NULL)
                fl_http_respond(req, 200, &ct, 1, out, strlen(out));
            else
                fl_http_respond_error(req, 500, "internal", "out of memory");
            free(out);
        }
    }
out:
    json_decref(body);
}

static void invoke(struct fl_http_request *req)
{
    struct flint_header headers[128];
    size_t n = req->nheaders < 128 ? req->nheaders : 128;
    for (size_t i = 0; i < n; i++)
        headers[i] = (struct flint_header){req->headers[i].name, req->headers[i].value};
    struct flint_request r = {.method = req->method,
                              .path = req->path,
                              .query = req->query,
                              .headers = headers,
                              .nheaders = n,
                              .body = req->body,
                              .body_len = req->body_len};
    struct flint_response resp = {.status = 200};
    fl_buf_init(&resp.body, MAX_RESPONSE_BODY);
    current = req;
    int rc = handler(&r, &resp);
    current = NULL;
    if (rc != 0)
        fl_http_respond_error(req, 500, "function_error", "%s returned %d", function_name, rc);
    else
        fl_http_respond(req, resp.status, resp.headers, resp.nheaders,
                        resp.body.data ? resp.body.data : "", resp.body.len);
    for (size_t i = 0; i < 2 * resp.nheaders; i++)
        free(resp.owned[i]);
    fl_buf_release(&resp.body);
}

static void serve(struct fl_http_request *req, void *data)
{
    if (strcmp(req->path, "/healthz") == 0 && strcmp(req->method, "GET") == 0) {
        fl_http_respond_healthz(req, true); /* handlers run one at a time */
    } else if (strcmp(req->path, "/v2/specialize") == 0 && strcmp(req->method, "POST") == 0) {
        specialize(req);
    } else if (handler == NULL) {
        fl_http_respond_error(req, 503, "not_specialized",
                              "this instance has no function loaded yet");
    } else {
        invoke(req);
    }
}

int main(void)
{
    char addr[4200];
    if (fl_http_listen_address(getenv("FLINT_LISTEN"), addr, sizeof(addr)) < 0) {
        fprintf(stderr, "flint-runtime-c: FLINT_LISTEN must be fd:N, unix:PATH or tcp:HOST:PORT\n");
        return 2;
    }
    struct fl_http_server_config cfg;
    fl_http_server_config_init(&cfg);
    cfg.max_body_bytes = 64u << 20;
    return fl_http_serve("flint-runtime-c", addr, &cfg, serve, NULL, NULL);
}
