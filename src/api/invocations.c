/*
 * The API's async invocations and dead letters (docs/api.md):
 *
 *   GET  /v1/invocations?function=F&status=S&limit=N&after=CURSOR
 *   GET  /v1/invocations?workflow=W&status=S&limit=N&after=CURSOR (W "" for any)
 *   GET  /v1/invocations/{id}            an async or a workflow invocation
 *   GET  /v1/invocations/{id}/events     a workflow invocation's events
 *   POST /v1/invocations/{id}/cancel
 *   GET  /v1/deadletters?function=F&limit=N&after=CURSOR
 *   GET  /v1/deadletters/{id}
 *   POST /v1/deadletters/{id}/redrive, POST /v1/deadletters/redrive?function=F|all=true
 *   DELETE /v1/deadletters/{id},       POST /v1/deadletters/purge?function=F|all=true
 *
 * Thin: the async module and the workflow engine read and steer; this
 * maps paths, queries and errors. An id is looked up as a workflow
 * invocation first (its stream "wf/<id>"), then as an async one.
 */
#include "api/internal.h"

#include "base/error.h"
#include "base/id.h"
#include "base/str.h"
#include "exec/spec.h"
#include "http/parse.h"
#include "wf/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_json(int err, json_t *value, void *data)
{
    struct fl_http_request *req = data;
    if (err == 0)
        api_respond_json(req, 200, value);
    else if (err == FL_ENOENT)
        fl_http_respond_error(req, 404, "not_found", "no such invocation");
    else if (err == FL_ECONFLICT)
        fl_http_respond_error(req, 409, "conflict",
                              "the invocation is not in a state that allows this (see its status)");
    else if (err == FL_ENOTSUP)
        fl_http_respond_error(req, 409, "consumer_gone",
                              "the dead letter's message-queue trigger is gone (deleted, or "
                              "moved to another topic) and its consumer with it: nothing can "
                              "deliver it again; purge it, or publish its body anew");
    else if (err == FL_EINVAL)
        fl_http_respond_error(req, 400, "invalid", "invalid query");
    else
        fl_http_respond_error(req, 503, "store_unavailable", "the store failed: %s",
                              fl_errname(err));
}

/* The outcome of starting an operation: answered now if it failed. */
static void started(struct fl_http_request *req, int rc)
{
    if (rc < 0)
        on_json(rc, NULL, req);
}

/* An id in a path: a UUID's length and characters, or answered 404. */
static bool id_ok(struct fl_http_request *req, const char *id, size_t len)
{
    bool ok = len == FL_UUID_STRLEN;
    for (size_t i = 0; ok && i < len; i++)
        ok = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f') || id[i] == '-';
    if (!ok)
        fl_http_respond_error(req, 404, "not_found", "no invocation '%.*s'",
                              (int)(len < 80 ? len : 80), id);
    return ok;
}

struct list_query {
    char function[FL_NAME_MAX + 2];
    char status[16];
    char after[FL_CURSOR_MAX];
    size_t limit;
    bool all;
};

/* Read function, status, limit, after and all; false if answered 400. */
static bool list_query(struct fl_http_request *req, struct list_query *q)
{
    memset(q, 0, sizeof(*q));
    char limit[16] = "", all[8] = "";
    bool has_fn = fl_http_query_value(req->query, "function", q->function, sizeof(q->function));
    bool has_status = fl_http_query_value(req->query, "status", q->status, sizeof(q->status));
    fl_http_query_value(req->query, "after", q->after, sizeof(q->after));
    fl_http_query_value(req->query, "all", all, sizeof(all));
    q->all = strcmp(all, "true") == 0 || strcmp(all, "1") == 0;
    int64_t n = 100;
    if (fl_http_query_value(req->query, "limit", limit, sizeof(limit)) &&
        fl_parse_i64(limit, 1, 1000, &n) < 0) {
        fl_http_respond_error(req, 400, "invalid", "limit must be a whole number from 1 to 1000");
        return false;
    }
    q->limit = (size_t)n;
    if (has_fn && (q->function[0] == '\0' || strlen(q->function) > FL_NAME_MAX)) {
        fl_http_respond_error(req, 400, "invalid", "function: not a function name");
        return false;
    }
    if (has_status && q->status[0] == '\0') {
        fl_http_respond_error(req, 400, "invalid", "status: empty");
        return false;
    }
    return true;
}

/* The id in "/ID" or "/ID/action" (answered 404 if it is none): the action
 * ("" for none) through action. */
static bool path_id(struct fl_http_request *req, const char *rest, char key[FL_UUID_STRLEN + 1],
                    const char **action)
{
    const char *id = rest + 1, *slash = strchr(id, '/');
    size_t len = slash ? (size_t)(slash - id) : strlen(id);
    if (!id_ok(req, id, len))
        return false;
    memcpy(key, id, len);
    key[len] = '\0';
    *action = slash ? slash : "";
    return true;
}

/* GET of the list itself: invocations, or dead letters only. */
static void list(struct fl_async *a, struct fl_http_request *req, bool dead)
{
    struct list_query q;
    if (strcmp(req->method, "GET") != 0) {
        fl_http_respond_error(req, 405, "method_not_allowed", "use GET");
        return;
    }
    if (!list_query(req, &q))
        return;
    int rc = fl_async_list(a, q.function[0] ? q.function : NULL, q.status[0] ? q.status : NULL,
                           dead, q.limit, q.after[0] ? q.after : NULL, on_json, req);
    if (rc == FL_EINVAL)
        fl_http_respond_error(req, 400, "invalid",
                              "status must be queued, running, retrying, succeeded, failed, "
                              "dead or canceled");
    else
        started(req, rc);
}

/* A workflow invocation's read or cancel, falling back to the async
 * module's when there is no such workflow invocation. */
struct either {
    struct fl_http_request *req;
    struct fl_async *async;
    char id[FL_UUID_STRLEN + 1];
    bool cancel;
};

static void on_workflow_json(int err, json_t *value, void *data)
{
    struct either *x = data;
    struct fl_http_request *req = x->req;
    if (err == FL_ENOENT && x->async != NULL) {
        int rc = x->cancel ? fl_async_cancel(x->async, x->id, on_json, req)
                           : fl_async_get(x->async, x->id, false, on_json, req);
        free(x);
        started(req, rc);
        return;
    }
    free(x);
    on_json(err, value, req);
}

static void either(struct fl_async *a, struct fl_wf_engine *wf, struct fl_http_request *req,
                   const char *id, bool cancel)
{
    if (wf == NULL) {
        started(req, cancel ? fl_async_cancel(a, id, on_json, req)
                            : fl_async_get(a, id, false, on_json, req));
        return;
    }
    struct either *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        fl_http_respond_error(req, 503, "out_of_memory", "flintd is out of memory");
        return;
    }
    x->req = req;
    x->async = a;
    x->cancel = cancel;
    fl_strlcpy(x->id, id, sizeof(x->id));
    int rc = cancel ? fl_wf_engine_cancel(wf, id, on_workflow_json, x)
                    : fl_wf_engine_get(wf, id, true, on_workflow_json, x);
    if (rc < 0) {
        free(x);
        started(req, rc);
    }
}

/* ?workflow=W: a page of workflow invocations. */
static void list_workflows(struct fl_wf_engine *wf, struct fl_http_request *req)
{
    struct list_query q;
    char workflow[FL_NAME_MAX + 2] = "";
    fl_http_query_value(req->query, "workflow", workflow, sizeof(workflow));
    if (!list_query(req, &q))
        return;
    if (wf == NULL) {
        fl_http_respond_error(req, 503, "unavailable", "workflows are not running");
        return;
    }
    int rc = fl_wf_engine_list(wf, workflow[0] ? workflow : NULL, q.status[0] ? q.status : NULL,
                               q.limit, q.after[0] ? q.after : NULL, on_json, req);
    if (rc == FL_EINVAL)
        fl_http_respond_error(req, 400, "invalid",
                              "status must be running, succeeded, failed or canceled");
    else
        started(req, rc);
}

static void invocations(struct fl_async *a, struct fl_wf_engine *wf, struct fl_http_request *req,
                        const char *rest)
{
    const char *m = req->method, *action;
    char key[FL_UUID_STRLEN + 1], probe[4];
    if (*rest == '\0' && strcmp(m, "GET") == 0 &&
        fl_http_query_value(req->query, "workflow", probe, sizeof(probe)))
        list_workflows(wf, req);
    else if (*rest == '\0')
        list(a, req, false);
    else if (!path_id(req, rest, key, &action))
        return;
    else if (*action == '\0' && strcmp(m, "GET") == 0)
        either(a, wf, req, key, false);
    else if (strcmp(action, "/events") == 0 && strcmp(m, "GET") == 0 && wf != NULL)
        started(req, fl_wf_engine_events(wf, key, on_json, req));
    else if (strcmp(action, "/cancel") == 0 && strcmp(m, "POST") == 0)
        either(a, wf, req, key, true);
    else
        fl_http_respond_error(req, 404, "not_found", "no API endpoint %s %.200s", m, req->path);
}

/* redrive or purge of many: ?function=F or ?all=true */
static void steer_many(struct fl_async *a, struct fl_http_request *req, bool redrive)
{
    struct list_query q;
    if (!list_query(req, &q))
        return;
    if (q.function[0] == '\0' && !q.all) {
        fl_http_respond_error(req, 400, "invalid", "say which: ?function=NAME or ?all=true");
        return;
    }
    const char *fn = q.function[0] ? q.function : NULL;
    started(req, redrive ? fl_async_redrive(a, NULL, fn, on_json, req)
                         : fl_async_purge(a, NULL, fn, on_json, req));
}

static void deadletters(struct fl_async *a, struct fl_wf_engine *wf, struct fl_http_request *req,
                        const char *rest)
{
    const char *m = req->method, *action;
    char key[FL_UUID_STRLEN + 1];
    if (*rest == '\0')
        list(a, req, true);
    else if (strcmp(m, "POST") == 0 &&
             (strcmp(rest, "/redrive") == 0 || strcmp(rest, "/purge") == 0))
        steer_many(a, req, rest[1] == 'r');
    else if (!path_id(req, rest, key, &action))
        return;
    else if (*action == '\0' && strcmp(m, "GET") == 0)
        started(req, fl_async_get(a, key, true, on_json, req));
    else if (*action == '\0' && strcmp(m, "DELETE") == 0)
        started(req, fl_async_purge(a, key, NULL, on_json, req));
    else if (strcmp(action, "/redrive") == 0 && strcmp(m, "POST") == 0)
        started(req, fl_async_redrive(a, key, NULL, on_json, req));
    else
        fl_http_respond_error(req, 404, "not_found", "no API endpoint %s %.200s", m, req->path);
}

bool api_async_handle(struct fl_async *a, struct fl_wf_engine *wf, struct fl_http_request *req)
{
    static const struct {
        const char *prefix;
        void (*serve)(struct fl_async *a, struct fl_wf_engine *wf, struct fl_http_request *req,
                      const char *rest);
    } paths[] = {{"/v1/invocations", invocations}, {"/v1/deadletters", deadletters}};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        size_t n = strlen(paths[i].prefix);
        const char *rest = req->path + n;
        if (strncmp(req->path, paths[i].prefix, n) != 0 || (*rest != '\0' && *rest != '/'))
            continue;
        if (a == NULL)
            fl_http_respond_error(req, 503, "unavailable", "async invocations are not served");
        else if (*rest == '/' && rest[1] == '\0')
            fl_http_respond_error(req, 404, "not_found", "no API endpoint %.200s", req->path);
        else
            paths[i].serve(a, wf, req, rest);
        return true;
    }
    return false;
}
