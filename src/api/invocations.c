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
 * invocation first (its stream "wf/<id>"), then as an async one. A dead
 * letter is redriven or purged by the MQ module first (a NATS trigger's,
 * mq.h's fl_mq_dead_steer), then by the async module (the store's); of a
 * function or all, the MQ module's go first, then the async module's
 * rest, and the answer lists both.
 */
#include "api/internal.h"

#include "base/error.h"
#include "base/id.h"
#include "base/str.h"
#include "exec/spec.h"
#include "base/log.h"
#include "http/parse.h"
#include "mq/mq.h"
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

static void invocations(struct fl_async *a, struct fl_wf_engine *wf, struct fl_mq *mq,
                        struct fl_http_request *req, const char *rest)
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

/* ---- redrive and purge: the MQ module's letters, then the async module's ---- */

#define STEER_MANY_MAX 100000 /* dead letters one call steers at most */

struct dead_steer {
    struct fl_http_request *req;
    struct fl_async *a;
    struct fl_mq *mq;
    bool redrive;
    char id[FL_UUID_STRLEN + 1];    /* one: its id; many: "" */
    char function[FL_NAME_MAX + 1]; /* many: "" for all */
    json_t *ids;                    /* many: the dead letters listed */
    size_t next;
    json_t *done; /* many: the MQ module's steered */
};

static void dead_steer_free(struct dead_steer *x)
{
    json_decref(x->ids);
    json_decref(x->done);
    free(x);
}

static int async_steer(struct dead_steer *x, const char *id, fl_async_json_cb cb, void *data)
{
    const char *fn = x->function[0] ? x->function : NULL;
    return x->redrive ? fl_async_redrive(x->a, id, id ? NULL : fn, cb, data)
                      : fl_async_purge(x->a, id, id ? NULL : fn, cb, data);
}

/* One letter: the MQ module's answer, or the async module's. */
static void on_mq_steered_one(int err, json_t *value, void *data)
{
    struct dead_steer *x = data;
    struct fl_http_request *req = x->req;
    if (err == FL_ENOENT) {
        int rc = async_steer(x, x->id, on_json, req);
        dead_steer_free(x);
        started(req, rc);
        return;
    }
    dead_steer_free(x);
    on_json(err, value, req);
}

static void steer_one(struct fl_async *a, struct fl_mq *mq, struct fl_http_request *req,
                      const char *id, bool redrive)
{
    struct dead_steer *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        fl_http_respond_error(req, 503, "out_of_memory", "flintd is out of memory");
        return;
    }
    *x = (struct dead_steer){.req = req, .a = a, .mq = mq, .redrive = redrive};
    fl_strlcpy(x->id, id, sizeof(x->id));
    int rc = fl_mq_dead_steer(mq, id, redrive, on_mq_steered_one, x);
    if (rc == 0)
        return; /* x is the callback's */
    if (rc == FL_ENOENT)
        rc = async_steer(x, id, on_json, req);
    dead_steer_free(x);
    started(req, rc);
}

/* One letter shown: the async module's, with the body a connector holds
 * added by the MQ module (a NATS trigger's letter, in FLINT_DEAD). */
static void on_mq_read(int err, const struct fl_store_result *res, void *data)
{
    struct dead_steer *x = data;
    struct fl_http_request *req = x->req;
    json_t *v = x->done; /* the async module's value */
    if (err == 0) {
        const struct fl_record *r = &res->records[0];
        const char *encoding;
        json_t *body = api_body_json(r->data, r->len, &encoding);
        json_t *request = json_object_get(v, "request");
        if (json_is_object(request) && body != NULL) {
            json_object_set(request, "body", body);
            json_object_set_new(request, "bodyEncoding", json_string(encoding));
        }
        json_decref(body);
        json_object_set_new(v, "reason", json_string(r->reason ? r->reason : ""));
    }
    on_json(0, v, req);
    dead_steer_free(x);
}

static void on_async_shown(int err, json_t *value, void *data)
{
    struct dead_steer *x = data;
    struct fl_http_request *req = x->req;
    const char *trigger = json_string_value(json_object_get(value, "trigger"));
    json_t *request = json_object_get(value, "request");
    if (err == 0 && trigger != NULL && strncmp(trigger, "messagequeuetrigger/", 20) == 0 &&
        json_object_get(request, "body") == NULL) {
        x->done = json_incref(value);
        if (fl_mq_dead_read(x->mq, x->id, on_mq_read, x) == 0)
            return;
    }
    dead_steer_free(x);
    on_json(err, value, req);
}

static void show_one(struct fl_async *a, struct fl_mq *mq, struct fl_http_request *req,
                     const char *id)
{
    struct dead_steer *x = fl_mq_holds_dead(mq) ? calloc(1, sizeof(*x)) : NULL;
    if (x == NULL) {
        started(req, fl_async_get(a, id, true, on_json, req));
        return;
    }
    *x = (struct dead_steer){.req = req, .a = a, .mq = mq};
    fl_strlcpy(x->id, id, sizeof(x->id));
    int rc = fl_async_get(a, id, true, on_async_shown, x);
    if (rc < 0) {
        dead_steer_free(x);
        started(req, rc);
    }
}

/* Many: the async module's answer, with the MQ module's ids first. */
static void on_async_many(int err, json_t *value, void *data)
{
    struct dead_steer *x = data;
    struct fl_http_request *req = x->req;
    json_t *ids = json_object_get(value, x->redrive ? "redriven" : "purged");
    if (err == 0 && json_is_array(ids)) {
        json_array_extend(x->done, ids);
        json_object_set(value, x->redrive ? "redriven" : "purged", x->done);
    }
    dead_steer_free(x);
    on_json(err, value, req);
}

static void many_next(struct dead_steer *x);

static void on_mq_steered_many(int err, json_t *value, void *data)
{
    struct dead_steer *x = data;
    const char *id = json_string_value(json_array_get(x->ids, x->next));
    if (err == 0)
        json_array_append_new(x->done, json_string(id));
    else if (err != FL_ENOENT)
        fl_log(FL_LOG_WARN, "api", x->redrive ? "could not redrive" : "could not purge",
               "invocation=%s error=%s", id, fl_errname(err));
    x->next++;
    many_next(x);
}

static void many_next(struct dead_steer *x)
{
    while (x->next < json_array_size(x->ids)) {
        const char *id = json_string_value(json_array_get(x->ids, x->next));
        if (id != NULL && fl_mq_dead_steer(x->mq, id, x->redrive, on_mq_steered_many, x) == 0)
            return;
        x->next++;
    }
    int rc = async_steer(x, NULL, on_async_many, x);
    if (rc < 0) {
        struct fl_http_request *req = x->req;
        dead_steer_free(x);
        started(req, rc);
    }
}

static void on_dead_listed(int err, json_t *value, void *data)
{
    struct dead_steer *x = data;
    if (err < 0) {
        struct fl_http_request *req = x->req;
        dead_steer_free(x);
        on_json(err, NULL, req);
        return;
    }
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(value, "items"), i, item)
        json_array_append(x->ids, json_object_get(item, "id"));
    const char *next = json_string_value(json_object_get(value, "next"));
    if (next != NULL && json_array_size(x->ids) < STEER_MANY_MAX) {
        err = fl_async_list(x->a, x->function[0] ? x->function : NULL, NULL, true, 1000, next,
                            on_dead_listed, x);
        if (err < 0) {
            struct fl_http_request *req = x->req;
            dead_steer_free(x);
            started(req, err);
        }
        return;
    }
    many_next(x);
}

/* redrive or purge of many: ?function=F or ?all=true */
static void steer_many(struct fl_async *a, struct fl_mq *mq, struct fl_http_request *req,
                       bool redrive)
{
    struct list_query q;
    if (!list_query(req, &q))
        return;
    if (q.function[0] == '\0' && !q.all) {
        fl_http_respond_error(req, 400, "invalid", "say which: ?function=NAME or ?all=true");
        return;
    }
    const char *fn = q.function[0] ? q.function : NULL;
    if (!fl_mq_holds_dead(mq)) {
        started(req, redrive ? fl_async_redrive(a, NULL, fn, on_json, req)
                             : fl_async_purge(a, NULL, fn, on_json, req));
        return;
    }
    struct dead_steer *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        fl_http_respond_error(req, 503, "out_of_memory", "flintd is out of memory");
        return;
    }
    *x = (struct dead_steer){.req = req, .a = a, .mq = mq, .redrive = redrive};
    fl_strlcpy(x->function, fn ? fn : "", sizeof(x->function));
    x->ids = json_array();
    x->done = json_array();
    int rc = x->ids && x->done ? fl_async_list(a, fn, NULL, true, 1000, NULL, on_dead_listed, x)
                               : FL_ENOMEM;
    if (rc < 0) {
        dead_steer_free(x);
        started(req, rc);
    }
}

static void deadletters(struct fl_async *a, struct fl_wf_engine *wf, struct fl_mq *mq,
                        struct fl_http_request *req, const char *rest)
{
    const char *m = req->method, *action;
    char key[FL_UUID_STRLEN + 1];
    if (*rest == '\0')
        list(a, req, true);
    else if (strcmp(m, "POST") == 0 &&
             (strcmp(rest, "/redrive") == 0 || strcmp(rest, "/purge") == 0))
        steer_many(a, mq, req, rest[1] == 'r');
    else if (!path_id(req, rest, key, &action))
        return;
    else if (*action == '\0' && strcmp(m, "GET") == 0)
        show_one(a, mq, req, key);
    else if (*action == '\0' && strcmp(m, "DELETE") == 0)
        steer_one(a, mq, req, key, false);
    else if (strcmp(action, "/redrive") == 0 && strcmp(m, "POST") == 0)
        steer_one(a, mq, req, key, true);
    else
        fl_http_respond_error(req, 404, "not_found", "no API endpoint %s %.200s", m, req->path);
}

bool api_async_handle(struct fl_async *a, struct fl_wf_engine *wf, struct fl_mq *mq,
                      struct fl_http_request *req)
{
    static const struct {
        const char *prefix;
        void (*serve)(struct fl_async *a, struct fl_wf_engine *wf, struct fl_mq *mq,
                      struct fl_http_request *req, const char *rest);
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
            paths[i].serve(a, wf, mq, req, rest);
        return true;
    }
    return false;
}
