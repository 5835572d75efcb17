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
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
