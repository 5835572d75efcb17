/*
 * The control API: see api.h and docs/api.md.
 *
 * Resources are the kinds of the registry (kinds/kinds.h): their routes,
 * checks and references come from its table. A request that needs the
 * store becomes a struct call that walks through its steps from store
 * callbacks: for example, creating a function checks its spec and code,
 * reads its environment, then puts it with expected revision 0.
 *
 * A resource is stored as {"spec": ...}, what the user declared and
 * nothing else; the envelope (kind, name, revision, times) comes from the
 * store's record and the status from the part of flintd that runs the kind,
 * asked when a client reads it (the config's status callback). A status
 * sent back in a PUT is ignored, and a PUT whose spec is the one stored
 * writes nothing: no new revision, nothing restarted.
 */
#include "api/api.h"
#include "api/internal.h"

#include "api/token.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/queue.h"
#include "base/sha256.h"
#include "base/str.h"
#include "exec/spec.h"
#include "http/parse.h"
#include "invoke/invoke.h"
#include "mq/mq.h"
#include "wf/engine.h"
#include "kinds/kinds.h"
#include "wf/expr.h"
#include "wf/exprc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fl_api {
    uv_loop_t *loop;
    struct fl_store *store;
    char data_dir[4096];
    char code_dir[4200];
    char token[FL_TOKEN_HEX + 1];
    char version[32];
    char api_addr[300];
    char router_addr[300];
    char sandbox[128];
    size_t max_code_bytes;
    int64_t started_ms;
    struct fl_executor *executor;
    struct fl_invoker *invoker;
    struct fl_wf_engine *workflows;
    struct fl_mq *mq;
    struct fl_async *async;
    struct fl_logbook *logs;
    struct fl_metrics *metrics;
    struct fl_wf_exprc *exprc;
    bool (*applied)(void *data, const char *kind, const char *name, uint64_t revision);
    void *applied_data;
    bool (*ready)(void *data);
    json_t *(*status_of)(void *data, const char *kind, const char *name, bool detail);
    struct fl_queue streams;   /* struct log_stream: logs being followed */
    struct fl_queue settles;   /* struct settle: writes waiting to be applied, oldest first */
    struct api_topics *topics; /* /v1/topics */
};

struct call {
    struct fl_api *api;
    struct fl_http_request *req;
    const struct fl_kind *kind;
    char name[FL_NAME_MAX + 1];
    bool create;     /* POST (else PUT) */
    uint64_t expect; /* PUT: the revision the client read */
    json_t *spec;    /* what will be stored as spec */
    json_t *value;   /* {"spec"}: what is stored */
    size_t ref;      /* the next of kind->refs to check */
    /* kind->names: each distinct name, and the kind that holds it (NULL:
     * none), found before the check */
    struct name_found {
        char *name;
        const char *kind;
    } * names;
    size_t nnames;
    size_t next_name; /* the next to look up */
    size_t name_kind; /* the next of kind->names.kinds to try */
    /* kind->exprs: each distinct expression in order, and what the
     * evaluator said of its syntax (src -> null, or the message), asked
     * before the check a batch at a time */
    json_t *exprs;
    json_t *expr_errors;
    size_t next_expr; /* the first of exprs not sent yet */
};

static const struct fl_http_header content_type_json = {"Content-Type", 12, "application/json", 16};

/* The one answer to a write that found the data directory's disk full,
 * whatever was written (a resource, code): nothing was stored. */
static void respond_no_space(struct fl_http_request *req)
{
    fl_http_respond_error(req, 507, "no_space",
                          "no space left on the disk of flintd's data directory: nothing was "
                          "stored; free some space and try again");
}

/* The HTTP answer for a store error on kind/name. */
static void respond_store_error(struct fl_http_request *req, int err, const struct fl_kind *kind,
                                const char *name)
{
    switch (err) {
    case FL_ENOENT:
        fl_http_respond_error(req, 404, "not_found", "%s '%s' does not exist", kind->name, name);
        break;
    case FL_ECONFLICT:
        fl_http_respond_error(req, 409, "conflict",
                              "%s '%s' changed since the revision given: read it again", kind->name,
                              name);
        break;
    case FL_ETOOBIG:
        fl_http_respond_error(req, 413, "too_large", "the %s is too large", kind->name);
        break;
    case FL_ENOSPC:
        respond_no_space(req);
        break;
    default:
        fl_log(FL_LOG_ERROR, "api", "store operation failed", "kind=%s name=%s err=%s", kind->name,
               name, fl_errname(err));
        fl_http_respond_error(req, 503, "store_unavailable", "the store failed: %s",
                              fl_strerror(err));
    }
}

/* {kind, name, revision, createdAt, updatedAt, spec, status} from a record.
 * The status is what the part running the kind sees now (a function's:
 * build, instances, queue; the build log when detail), else {}: never
 * what the stored value holds (a store written by an older flintd may
 * hold a "status" there, which means nothing now). */
static json_t *envelope(struct fl_api *api, const struct fl_record *r, const struct fl_kind *kind,
                        bool detail)
{
    char created[32], updated[32];
    json_t *stored = json_loadb(r->data, r->len, 0, NULL);
    json_t *status = NULL;
    if (api->status_of != NULL)
        status = api->status_of(api->applied_data, kind->name, r->key, detail);
    if (status == NULL)
        status = json_object();
    json_t *out = json_pack("{s:s, s:s, s:I, s:s, s:s, s:O, s:o}", "kind", kind->name, "name",
                            r->key, "revision", (json_int_t)r->seq, "createdAt",
                            fl_clock_format(r->created_ms, created, sizeof(created)), "updatedAt",
                            fl_clock_format(r->ts_ms, updated, sizeof(updated)), "spec",
                            stored ? json_object_get(stored, "spec") : json_null(), "status",
                            status ? status : json_null());
    json_decref(stored);
    return out;
}

static void call_free(struct call *c)
{
    for (size_t i = 0; i < c->nnames; i++)
        free(c->names[i].name);
    free(c->names);
    json_decref(c->spec);
    json_decref(c->value);
    json_decref(c->exprs);
    json_decref(c->expr_errors);
    free(c);
}

/* ---- reads ---- */

struct read_ctx {
    struct fl_api *api;
    struct fl_http_request *req;
    const struct fl_kind *kind;
    char name[FL_NAME_MAX + 1];
};

static void on_get(int err, const struct fl_store_result *res, void *data)
{
    struct read_ctx *ctx = data;
    if (err < 0) {
        respond_store_error(ctx->req, err, ctx->kind, ctx->name);
    } else {
        json_t *body = envelope(ctx->api, &res->records[0], ctx->kind, true);
        api_respond_json(ctx->req, 200, body);
        json_decref(body);
    }
    free(ctx);
}

static void on_list(int err, const struct fl_store_result *res, void *data)
{
    struct read_ctx *ctx = data;
    if (err < 0) {
        respond_store_error(ctx->req, err, ctx->kind, "*");
    } else {
        json_t *items = json_array();
        for (size_t i = 0; i < res->n; i++)
            json_array_append_new(items, envelope(ctx->api, &res->records[i], ctx->kind, false));
        json_t *body = json_pack("{s:o}", "items", items);
        api_respond_json(ctx->req, 200, body);
        json_decref(body);
    }
    free(ctx);
}

static void get_or_list(struct fl_api *api, struct fl_http_request *req, const struct fl_kind *kind,
                        const char *name)
{
    struct read_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        fl_http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    ctx->req = req;
    ctx->api = api;
    ctx->kind = kind;
    int rc;
    if (name != NULL) {
        fl_strlcpy(ctx->name, name, sizeof(ctx->name));
        rc = fl_store_get(api->store, kind->name, name, on_get, ctx);
    } else {
        rc = fl_store_list(api->store, kind->name, "", on_list, ctx);
    }
    if (rc < 0) {
        respond_store_error(req, rc, kind, name ? name : "*");
        free(ctx);
    }
}

/* ---- answering writes once applied ---- */

/*
 * A write is answered once the daemon runs what it wrote: the follower that
 * applies a change tells fl_api_applied(), which answers the writes waiting
 * for that resource; a timer per write answers anyway after SETTLE_MAX_MS.
 * Nothing polls.
 */
#define SETTLE_MAX_MS 2000

struct settle {
    struct fl_api *api;
    struct fl_http_request *req;
    int status;
    char *body;
    const struct fl_kind *kind;
    char name[FL_NAME_MAX + 1];
    uint64_t revision;
    uv_timer_t timer;
    struct fl_queue node; /* in api->settles */
};

static void settle_closed(uv_handle_t *h)
{
    struct settle *st = h->data;
    free(st->body);
    free(st);
}

static void settle_answer(struct settle *st)
{
    fl_queue_remove(&st->node);
    fl_http_respond(st->req, st->status, &content_type_json, 1, st->body, strlen(st->body));
    uv_timer_stop(&st->timer);
    uv_close((uv_handle_t *)&st->timer, settle_closed);
}

static void on_settle_timer(uv_timer_t *t)
{
    struct settle *st = t->data;
    fl_log(FL_LOG_WARN, "api", "change not applied in time; answering anyway",
           "kind=%s name=%s revision=%llu", st->kind->name, st->name,
           (unsigned long long)st->revision);
    settle_answer(st);
}

void fl_api_applied(struct fl_api *api, const char *kind, const char *name)
{
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &api->settles)
    {
        struct settle *st = FL_QUEUE_DATA(q, struct settle, node);
        if (strcmp(st->kind->name, kind) == 0 && strcmp(st->name, name) == 0 &&
            api->applied(api->applied_data, kind, name, st->revision))
            settle_answer(st);
    }
}

/* Answer a durable write, once the daemon runs what it wrote (revision 0:
 * a deletion). */
static void respond_applied(struct fl_api *api, struct fl_http_request *req, int status,
                            json_t *body, const struct fl_kind *kind, const char *name,
                            uint64_t revision)
{
    if (api->applied == NULL || api->applied(api->applied_data, kind->name, name, revision)) {
        api_respond_json(req, status, body);
        return;
    }
    struct settle *st = calloc(1, sizeof(*st));
    char *text = st ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (text == NULL) {
        free(st);
        api_respond_json(req, status, body);
        return;
    }
    st->api = api;
    st->req = req;
    st->status = status;
    st->body = text;
    st->kind = kind;
    fl_strlcpy(st->name, name, sizeof(st->name));
    st->revision = revision;
    fl_queue_insert_tail(&api->settles, &st->node);
    uv_timer_init(api->loop, &st->timer);
    st->timer.data = st;
    uv_timer_start(&st->timer, on_settle_timer, SETTLE_MAX_MS, 0);
}

/* ---- writes ---- */

static void on_put(int err, const struct fl_store_result *res, void *data);
static void respond_written(struct call *c, int status, uint64_t revision);

static void do_put(struct call *c)
{
    char *text = json_dumps(c->value, JSON_COMPACT | JSON_PRESERVE_ORDER);
    int rc = text ? fl_store_put(c->api->store, c->kind->name, c->name, text, strlen(text),
                                 c->create ? 0 : c->expect, on_put, c)
                  : FL_ENOMEM;
    free(text);
    if (rc < 0) {
        respond_store_error(c->req, rc, c->kind, c->name);
        call_free(c);
    }
}

static void respond_moved_on(struct call *c, uint64_t revision)
{
    fl_http_respond_error(
        c->req, 409, "conflict", "%s '%s' is at revision %llu, not %llu: read it again and retry",
        c->kind->name, c->name, (unsigned long long)revision, (unsigned long long)c->expect);
}

static void on_put_conflict_get(int err, const struct fl_store_result *res, void *data)
{
    struct call *c = data;
    if (err == FL_ENOENT)
        respond_store_error(c->req, FL_ENOENT, c->kind, c->name);
    else if (c->create)
        fl_http_respond_error(c->req, 409, "exists", "%s '%s' exists already", c->kind->name,
                              c->name);
    else
        respond_moved_on(c, err == 0 ? res->records[0].seq : 0);
    call_free(c);
}

static void on_put(int err, const struct fl_store_result *res, void *data)
{
    struct call *c = data;
    if (err == FL_ECONFLICT) {
        /* say which: it does not exist, it exists, or it moved on */
        if (fl_store_get(c->api->store, c->kind->name, c->name, on_put_conflict_get, c) < 0) {
            respond_store_error(c->req, err, c->kind, c->name);
            call_free(c);
        }
        return;
    }
    if (err < 0) {
        respond_store_error(c->req, err, c->kind, c->name);
        call_free(c);
        return;
    }
    fl_log(FL_LOG_INFO, "api", c->create ? "created" : "updated", "kind=%s name=%s revision=%llu",
           c->kind->name, c->name, (unsigned long long)res->seq);
    respond_written(c, c->create ? 201 : 200, res->seq);
}

/* The answer to a write (the status is never the client's: {}). */
static void respond_written(struct call *c, int status, uint64_t revision)
{
    json_t *body = json_pack("{s:s, s:s, s:I, s:O, s:{}}", "kind", c->kind->name, "name", c->name,
                             "revision", (json_int_t)revision, "spec", c->spec, "status");
    respond_applied(c->api, c->req, status, body, c->kind, c->name, revision);
    json_decref(body);
    call_free(c);
}

/* An update reads what is stored first: a stale revision is a conflict,
 * and a spec that is the one stored (a GET sent back, its status changed
 * or not) writes nothing, so that nothing Flint runs is restarted. */
static void on_current(int err, const struct fl_store_result *res, void *data)
{
    struct call *c = data;
    if (err < 0) {
        respond_store_error(c->req, err, c->kind, c->name);
        call_free(c);
        return;
    }
    const struct fl_record *r = &res->records[0];
    if (r->seq != c->expect) {
        respond_moved_on(c, r->seq);
        call_free(c);
        return;
    }
    json_t *stored = json_loadb(r->data, r->len, 0, NULL);
    bool same = stored != NULL && json_equal(json_object_get(stored, "spec"), c->spec);
    json_decref(stored);
    if (same) {
        fl_log(FL_LOG_INFO, "api", "unchanged", "kind=%s name=%s revision=%llu", c->kind->name,
               c->name, (unsigned long long)r->seq);
        respond_written(c, 200, r->seq);
        return;
    }
    do_put(c);
}

static void check_refs(struct call *c);

/* A reference the spec makes, read before the put. */
static void on_ref(int err, const struct fl_store_result *res, void *data)
{
    struct call *c = data;
    const struct fl_kind_ref *ref = &c->kind->refs[c->ref];
    if (err == FL_ENOENT) {
        fl_http_respond_error(c->req, 400, "bad_spec", "spec.%s: %s '%s' does not exist",
                              ref->field, ref->kind, fl_kind_ref_name(ref, c->spec));
        call_free(c);
        return;
    }
    if (err < 0) {
        respond_store_error(c->req, err, c->kind, c->name);
        call_free(c);
        return;
    }
    c->ref++;
    check_refs(c);
}

/* Read the next resource the spec names (those of kinds the registry does
 * not hold yet are not checked), then the current value (an update), then
 * put. */
static void check_refs(struct call *c)
{
    int rc = 0;
    for (; rc == 0 && c->kind->refs[c->ref].field != NULL; c->ref++) {
        const struct fl_kind_ref *ref = &c->kind->refs[c->ref];
        const char *name = fl_kind_ref_name(ref, c->spec);
        if (name != NULL && fl_kind_find(ref->kind) != NULL) {
            rc = fl_store_get(c->api->store, ref->kind, name, on_ref, c);
            if (rc == 0)
                return;
        }
    }
    if (rc == 0 && !c->create) {
        rc = fl_store_get(c->api->store, c->kind->name, c->name, on_current, c);
        if (rc == 0)
            return;
    }
    if (rc < 0) {
        respond_store_error(c->req, rc, c->kind, c->name);
        call_free(c);
        return;
    }
    do_put(c);
}

/* data: the struct call */
static bool code_exists(void *data, const char *sha)
{
    struct fl_api *api = ((struct call *)data)->api;
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", api->code_dir, sha);
    return access(path, R_OK) == 0;
}

/* Whether the MQ module runs that connector (struct fl_kind_check_ctx). */
static bool connector_available(void *data, const char *name)
{
    return fl_mq_has_connector(((struct call *)data)->api->mq, name);
}

/* What the lookups before the check found (struct fl_kind_check_ctx). */
static const char *resolve_name(void *data, const char *name)
{
    const struct call *c = data;
    for (size_t i = 0; i < c->nnames; i++)
        if (strcmp(c->names[i].name, name) == 0)
            return c->names[i].kind;
    return NULL;
}

/* What the evaluator said of an expression's syntax (struct
 * fl_kind_check_ctx). */
static int expr_checked(void *data, const char *src, struct fl_buf *why)
{
    const struct call *c = data;
    const char *error = json_string_value(json_object_get(c->expr_errors, src));
    if (error == NULL)
        return 0;
    fl_buf_appends(why, error);
    return FL_EINVAL;
}

/* Check the spec with what the API found: bad_spec, or on to the
 * references. */
static void check_spec(struct call *c)
{
    struct fl_buf msg;
    fl_buf_init(&msg, 16384);
    const struct fl_kind_check_ctx ctx = {
        .has_code = code_exists,
        .resolve = c->kind->names.each != NULL ? resolve_name : NULL,
        .expr = c->expr_errors != NULL ? expr_checked : NULL,
        .has_connector = c->api->mq != NULL ? connector_available : NULL,
        .data = c,
    };
    int rc = c->kind->check(c->spec, &ctx, &msg);
    if (rc == FL_ENOMEM) {
        fl_http_respond_error(c->req, 500, "internal", "out of memory");
        call_free(c);
    } else if (rc < 0) {
        /* not fl_http_respond_error(): a workflow's list of errors may be
         * longer than its 1 KiB message */
        json_t *body = json_pack("{s:{s:s, s:s}}", "error", "code", "bad_spec", "message",
                                 msg.data != NULL ? msg.data : "the spec is not valid");
        if (body != NULL)
            api_respond_json(c->req, 400, body);
        else
            fl_http_respond_error(c->req, 500, "internal", "out of memory");
        json_decref(body);
        call_free(c);
    } else {
        check_refs(c);
    }
    fl_buf_release(&msg);
}

/* ---- expressions, compiled by the sandboxed evaluator before the check ---- */

/* Expressions in one batch: the evaluator's bound, and bytes of their
 * text well within a frame. */
#define EXPR_BATCH_BYTES (FL_WF_EXPR_FRAME_MAX / 2)

static void send_exprs(struct call *c);

static void on_exprs_checked(void *data, int status, json_t *answer, const char *error)
{
    struct call *c = data;
    if (status == FL_EAGAIN || status == FL_ECANCELED) {
        fl_http_respond_error(c->req, 503, "busy",
                              "the expression evaluators cannot check this spec now (%s): try "
                              "again",
                              error);
        call_free(c);
        return;
    }
    if (status < 0) {
        /* the batch is the spec's own expressions, compiled only: what
         * stops the evaluator (a deadline, its memory) is theirs */
        fl_http_respond_error(c->req, 400, "bad_spec",
                              "spec: its expressions could not be checked: %s", error);
        call_free(c);
        return;
    }
    json_t *results = json_object_get(answer, "results");
    size_t sent = json_array_size(results);
    for (size_t i = 0; i < sent && c->next_expr < json_array_size(c->exprs); i++) {
        const char *src = json_string_value(json_array_get(c->exprs, c->next_expr++));
        json_t *err = json_object_get(json_array_get(results, i), "error");
        if (json_is_string(err))
            json_object_set(c->expr_errors, src, err);
    }
    send_exprs(c);
}

/* Send the next batch of the spec's expressions, compile only; when all
 * are answered, check the spec. */
static void send_exprs(struct call *c)
{
    size_t n = json_array_size(c->exprs);
    if (c->next_expr >= n) {
        check_spec(c);
        return;
    }
    json_t *batch = json_array();
    size_t bytes = 0;
    for (size_t i = c->next_expr; batch != NULL && i < n; i++) {
        json_t *src = json_array_get(c->exprs, i);
        size_t len = json_string_length(src);
        if (json_array_size(batch) == FL_WF_EXPR_MAX_EXPRS ||
            (json_array_size(batch) > 0 && bytes + len > EXPR_BATCH_BYTES))
            break;
        bytes += len;
        json_array_append(batch, src);
    }
    json_t *req = batch != NULL ? json_pack("{s:s, s:{}, s:o, s:b}", "task", "", "scope", "exprs",
                                            batch, "check", 1)
                                : NULL;
    int rc = req != NULL ? fl_wf_exprc_eval(c->api->exprc, req, on_exprs_checked, c) : FL_ENOMEM;
    json_decref(req);
    if (rc == FL_EAGAIN || rc == FL_ECLOSED) {
        fl_http_respond_error(c->req, 503, "busy",
                              "the expression evaluators cannot check this spec now: try again");
        call_free(c);
    } else if (rc == FL_ETOOBIG) {
        fl_http_respond_error(c->req, 400, "bad_spec", "spec: an expression is too long");
        call_free(c);
    } else if (rc < 0) {
        fl_http_respond_error(c->req, 500, "internal", "cannot check the expressions: %s",
                              fl_strerror(rc));
        call_free(c);
    }
}

static int add_expr(void *arg, const char *src)
{
    struct call *c = arg;
    if (json_object_get(c->expr_errors, src) != NULL)
        return 0;
    json_t *s = json_string(src);
    if (s == NULL || json_object_set_new(c->expr_errors, src, json_null()) < 0 ||
        json_array_append_new(c->exprs, s) < 0)
        return FL_ENOMEM;
    return 0;
}

/* The spec's expressions (kind->exprs), each compiled by the evaluator,
 * then the check. Without evaluators (a test's API) their syntax is not
 * checked. */
static void find_exprs(struct call *c)
{
    if (c->kind->exprs == NULL || c->api->exprc == NULL) {
        check_spec(c);
        return;
    }
    c->exprs = json_array();
    c->expr_errors = json_object();
    int rc = c->exprs != NULL && c->expr_errors != NULL ? c->kind->exprs(c->spec, add_expr, c)
                                                        : FL_ENOMEM;
    if (rc < 0) {
        fl_http_respond_error(c->req, 500, "internal", "out of memory");
        call_free(c);
        return;
    }
    send_exprs(c);
}

static void next_name(struct call *c);

static void on_name(int err, const struct fl_store_result *res, void *data)
{
    struct call *c = data;
    if (err == 0) {
        c->names[c->next_name].kind = c->kind->names.kinds[c->name_kind];
        c->next_name++;
        c->name_kind = 0;
    } else if (err == FL_ENOENT) {
        c->name_kind++;
    } else {
        respond_store_error(c->req, err, c->kind, c->name);
        call_free(c);
        return;
    }
    next_name(c);
}

/* Look up the next name as each of kind->names.kinds in turn (a function,
 * else a workflow); when all are known, check the spec. */
static void next_name(struct call *c)
{
    while (c->next_name < c->nnames) {
        const char *kind = c->kind->names.kinds[c->name_kind];
        if (kind == NULL || fl_kind_find(kind) == NULL) { /* none holds it */
            c->next_name++;
            c->name_kind = 0;
            continue;
        }
        int rc = fl_store_get(c->api->store, kind, c->names[c->next_name].name, on_name, c);
        if (rc < 0) {
            respond_store_error(c->req, rc, c->kind, c->name);
            call_free(c);
        }
        return;
    }
    find_exprs(c);
}

static int add_name(void *arg, const char *name)
{
    struct call *c = arg;
    if (resolve_name(c, name) != NULL)
        return 0;
    for (size_t i = 0; i < c->nnames; i++)
        if (strcmp(c->names[i].name, name) == 0)
            return 0;
    if (c->nnames == FL_KIND_MAX_NAMES)
        return FL_ETOOBIG;
    char *copy = strdup(name);
    if (copy == NULL)
        return FL_ENOMEM;
    c->names[c->nnames++] = (struct name_found){copy, NULL};
    return 0;
}

/* The names the spec gives (kind->names), each looked up, then the check. */
static void find_names(struct call *c)
{
    if (c->kind->names.each == NULL) {
        find_exprs(c);
        return;
    }
    c->names = calloc(FL_KIND_MAX_NAMES, sizeof(*c->names));
    int rc = c->names == NULL ? FL_ENOMEM : c->kind->names.each(c->spec, add_name, c);
    if (rc == FL_ETOOBIG) {
        fl_http_respond_error(c->req, 400, "bad_spec",
                              "spec: names more than %d distinct functions and workflows",
                              FL_KIND_MAX_NAMES);
        call_free(c);
        return;
    }
    if (rc < 0) {
        fl_http_respond_error(c->req, 500, "internal", "out of memory");
        call_free(c);
        return;
    }
    next_name(c);
}

/* Check the body's spec for kind; on success start the reference check
 * or the put. Answers the request itself on failure. */
static void write_resource(struct fl_api *api, struct fl_http_request *req,
                           const struct fl_kind *kind, const char *url_name)
{
    json_error_t jerr;
    struct fl_buf msg;
    char errbuf[512];
    fl_buf_init(&msg, 1024);
    json_t *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    struct call *c = NULL;
    if (body == NULL || !json_is_object(body)) {
        fl_http_respond_error(req, 400, "bad_json", "the body must be a JSON object%s%s",
                              body ? "" : ": ", body ? "" : jerr.text);
        goto out;
    }
    /* What a GET answered may be sent back as it is: its read-only fields
     * are ignored; anything else is a mistake worth saying. */
    const char *key;
    json_t *field;
    json_object_foreach(body, key, field)
    {
        if (!fl_kind_field_known(key)) {
            fl_http_respond_error(req, 400, "bad_spec",
                                  "%.100s: is not a field of a resource (name, spec, revision; "
                                  "kind, status, createdAt and updatedAt are read-only)",
                                  key);
            goto out;
        }
    }
    json_t *kind_field = json_object_get(body, "kind");
    if (kind_field != NULL &&
        (!json_is_string(kind_field) || strcmp(json_string_value(kind_field), kind->name) != 0)) {
        fl_http_respond_error(req, 400, "bad_spec", "kind: must be '%s' here", kind->name);
        goto out;
    }
    json_t *name_field = json_object_get(body, "name");
    if (url_name != NULL && name_field != NULL &&
        (!json_is_string(name_field) || strcmp(json_string_value(name_field), url_name) != 0)) {
        fl_http_respond_error(req, 400, "bad_spec",
                              "name: must be '%s', the name in the path (a resource cannot be "
                              "renamed)",
                              url_name);
        goto out;
    }
    const char *name = url_name;
    if (name == NULL) {
        name = json_string_value(name_field);
        if (name == NULL) {
            fl_http_respond_error(req, 400, "bad_spec", "name: is required");
            goto out;
        }
    }
    if (fl_name_check(name, &msg) < 0) {
        fl_http_respond_error(req, 400, "bad_spec", "%s", msg.data);
        goto out;
    }
    json_t *spec = json_object_get(body, "spec");
    if (spec == NULL) {
        fl_http_respond_error(req, 400, "bad_spec", "spec: is required");
        goto out;
    }
    uint64_t expect = 0;
    if (url_name != NULL) {
        json_t *rev = json_object_get(body, "revision");
        if (!json_is_integer(rev) || json_integer_value(rev) <= 0) {
            fl_http_respond_error(req, 400, "bad_spec",
                                  "revision: is required, the revision you read (a positive "
                                  "integer)");
            goto out;
        }
        expect = (uint64_t)json_integer_value(rev);
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        fl_http_respond_error(req, 500, "internal", "out of memory");
        goto out;
    }
    c->api = api;
    c->req = req;
    c->kind = kind;
    c->create = url_name == NULL;
    c->expect = expect;
    fl_strlcpy(c->name, name, sizeof(c->name));
    c->spec = json_incref(spec);
    c->value = json_pack("{s:O}", "spec", spec);
    if (c->value == NULL) {
        fl_http_respond_error(req, 500, "internal", "out of memory");
        call_free(c);
        goto out;
    }
    find_names(c);
out:
    (void)errbuf;
    json_decref(body);
    fl_buf_release(&msg);
}

/* ---- delete ---- */

struct delete_ctx {
    struct fl_api *api;
    struct fl_http_request *req;
    const struct fl_kind *kind;
    char name[FL_NAME_MAX + 1];
    uint64_t expect;
    size_t users; /* the next of fl_kinds[] to look for users in */
};

static void on_deleted(int err, const struct fl_store_result *res, void *data)
{
    struct delete_ctx *d = data;
    if (err < 0) {
        respond_store_error(d->req, err, d->kind, d->name);
    } else {
        fl_log(FL_LOG_INFO, "api", "deleted", "kind=%s name=%s revision=%llu", d->kind->name,
               d->name, (unsigned long long)res->seq);
        json_t *body = json_pack("{s:s}", "deleted", d->name);
        respond_applied(d->api, d->req, 200, body, d->kind, d->name, 0);
        json_decref(body);
    }
    free(d);
}

static void delete_now(struct delete_ctx *d)
{
    int rc = fl_store_delete(d->api->store, d->kind->name, d->name, d->expect, on_deleted, d);
    if (rc < 0) {
        respond_store_error(d->req, rc, d->kind, d->name);
        free(d);
    }
}

/* Whether kind refers to d's kind by a reference that blocks deletion. */
static bool blocks_delete(const struct fl_kind *kind, const struct delete_ctx *d)
{
    for (const struct fl_kind_ref *ref = kind->refs; ref->field != NULL; ref++)
        if (ref->blocks_delete && strcmp(ref->kind, d->kind->name) == 0)
            return true;
    return kind->names.blocks_delete != NULL &&
           strcmp(kind->names.blocks_delete, d->kind->name) == 0;
}

static void on_users(int err, const struct fl_store_result *res, void *data);

/* A resource in use is not deleted (an environment by functions): list
 * the next kind that may use it, or delete when none is left. */
static void find_users(struct delete_ctx *d)
{
    for (; d->users < fl_nkinds; d->users++) {
        if (!blocks_delete(fl_kinds[d->users], d))
            continue;
        if (fl_store_list(d->api->store, fl_kinds[d->users]->name, "", on_users, d) < 0) {
            respond_store_error(d->req, FL_EIO, d->kind, d->name);
            free(d);
        }
        return;
    }
    delete_now(d);
}

/* Say which resources use it, if any. */
static void on_users(int err, const struct fl_store_result *res, void *data)
{
    struct delete_ctx *d = data;
    if (err < 0) {
        respond_store_error(d->req, err, d->kind, d->name);
        free(d);
        return;
    }
    const struct fl_kind *user = fl_kinds[d->users];
    struct fl_buf users;
    fl_buf_init(&users, 512);
    int n = 0;
    for (size_t i = 0; i < res->n; i++) {
        json_t *v = json_loadb(res->records[i].data, res->records[i].len, 0, NULL);
        json_t *spec = json_object_get(v, "spec");
        bool uses = false;
        for (const struct fl_kind_ref *ref = user->refs; ref->field != NULL; ref++) {
            const char *named = fl_kind_ref_name(ref, spec);
            uses |= ref->blocks_delete && strcmp(ref->kind, d->kind->name) == 0 && named != NULL &&
                    strcmp(named, d->name) == 0;
        }
        uses |= fl_kind_names_block(user, spec, d->kind->name, d->name);
        if (uses && ++n <= 5)
            fl_buf_appendf(&users, "%s'%s'", n > 1 ? ", " : "", res->records[i].key);
        json_decref(v);
    }
    if (n > 0) {
        fl_http_respond_error(d->req, 409, "in_use",
                              "%s '%s' is used by %d %s (%s%s): delete or move them first",
                              d->kind->name, d->name, n, n > 1 ? user->plural : user->name,
                              users.data, n > 5 ? ", ..." : "");
        free(d);
    } else {
        d->users++;
        find_users(d);
    }
    fl_buf_release(&users);
}

static void delete_resource(struct fl_api *api, struct fl_http_request *req,
                            const struct fl_kind *kind, const char *name)
{
    struct delete_ctx *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        fl_http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    d->api = api;
    d->req = req;
    d->kind = kind;
    d->expect = FL_REV_ANY;
    fl_strlcpy(d->name, name, sizeof(d->name));
    char value[32];
    if (fl_http_query_value(req->query, "revision", value, sizeof(value))) {
        uint64_t rev;
        if (fl_parse_u64(value, UINT64_MAX - 1, &rev) < 0) {
            fl_http_respond_error(req, 400, "bad_request", "revision: must be a number");
            free(d);
            return;
        }
        d->expect = rev;
    }
    find_users(d);
}

/* ---- code ---- */

struct upload {
    uv_work_t work;
    struct fl_api *api;
    struct fl_http_request *req;
    char filename[256];
    char sha[FL_SHA256_HEX];
    int err;
};

/* On the thread pool: hash, then write to a temporary file of its own
 * (two uploads of the same code may run at once), fsync, rename into place
 * and fsync the directory, so that a digest's file is always whole and,
 * once the upload is answered, survives a power cut. */
static void upload_work(uv_work_t *w)
{
    struct upload *u = w->data;
    struct fl_sha256 h;
    fl_sha256_init(&h);
    fl_sha256_update(&h, u->req->body, u->req->body_len);
    fl_sha256_final_hex(&h, u->sha);
    char path[4400], tmp[4500];
    snprintf(path, sizeof(path), "%s/%s", u->api->code_dir, u->sha);
    if (access(path, R_OK) == 0) {
        /* stored before: content addressing makes it the same; its time
         * says it is wanted again, so that collection leaves it its grace */
        if (utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW) != 0)
            u->err = -errno;
        return;
    }
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s-XXXXXX", u->api->code_dir, u->sha);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        u->err = -errno;
        return;
    }
    const char *p = u->req->body;
    size_t left = u->req->body_len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            u->err = -errno;
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (u->err == 0 && fsync(fd) != 0)
        u->err = -errno;
    close(fd);
    if (u->err == 0 && rename(tmp, path) != 0)
        u->err = -errno;
    if (u->err != 0) {
        unlink(tmp);
        return;
    }
    int dir = open(u->api->code_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0 || fsync(dir) != 0)
        u->err = -errno;
    if (dir >= 0)
        close(dir);
}

static void upload_done(uv_work_t *w, int status)
{
    struct upload *u = w->data;
    if (status < 0 || u->err < 0) {
        fl_log(FL_LOG_ERROR, "api", "cannot store code", "err=%s",
               fl_strerror(u->err ? u->err : status));
        int err = u->err ? u->err : status;
        if (err == FL_ENOSPC)
            respond_no_space(u->req);
        else
            fl_http_respond_error(u->req, 503, "store_unavailable", "cannot store the code: %s",
                                  fl_strerror(err));
    } else {
        json_t *body = json_pack("{s:s, s:I, s:s}", "sha256", u->sha, "size",
                                 (json_int_t)u->req->body_len, "filename", u->filename);
        api_respond_json(u->req, 201, body);
        json_decref(body);
    }
    free(u);
}

static void upload_code(struct fl_api *api, struct fl_http_request *req)
{
    size_t len;
    const char *name = fl_http_request_header(req, "x-flint-filename", &len);
    if (name == NULL || len == 0 || len > 255 || memchr(name, '/', len) != NULL ||
        (len <= 2 && name[0] == '.')) {
        fl_http_respond_error(req, 400, "bad_request",
                              "X-Flint-Filename: required, a plain file name such as hello.py");
        return;
    }
    if (req->body_len > api->max_code_bytes) {
        fl_http_respond_error(req, 413, "too_large", "code is larger than %zu bytes",
                              api->max_code_bytes);
        return;
    }
    struct upload *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        fl_http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    u->api = api;
    u->req = req;
    u->work.data = u;
    memcpy(u->filename, name, len);
    if (uv_queue_work(api->loop, &u->work, upload_work, upload_done) < 0) {
        fl_http_respond_error(req, 500, "internal", "cannot queue the upload");
        free(u);
    }
}

/* ---- dispatch ---- */

static void status(struct fl_api *api, struct fl_http_request *req)
{
    char started[32];
    json_t *body = json_pack(
        "{s:s, s:s, s:s, s:I, s:{s:s, s:s}, s:{s:s}, s:{s:s}}", "version", api->version, "data",
        api->data_dir, "startedAt", fl_clock_format(api->started_ms, started, sizeof(started)),
        "uptimeSeconds", (json_int_t)((fl_clock_wall_ms() - api->started_ms) / 1000), "listeners",
        "api", api->api_addr, "router", api->router_addr, "store", "backend",
        fl_store_describe(api->store), "sandbox", "mode", api->sandbox);
    if (body != NULL && api->executor != NULL)
        json_object_set_new(body, "executor", fl_executor_status(api->executor));
    api_respond_json(req, 200, body);
    json_decref(body);
}

/* ---- function calls, logs, metrics ---- */

/* The caller's credentials are the operator's: a function that saw them
 * could drive the whole API (docs/runtime-contract.md says what it sees). */
static const char *const invoke_dropped_headers[] = {"authorization", "proxy-authorization", NULL};

/* The function sees "/" and the query (its first 2000 bytes). */
static void invoke(struct fl_api *api, struct fl_http_request *req, const char *name)
{
    char query[2001];
    fl_strlcpy(query, req->query, sizeof(query));
    const struct fl_invoke_http how = {.target = {FL_INVOKE_FUNCTION, name},
                                       .path = "/",
                                       .query = req->query_len ? query : NULL,
                                       .drop = invoke_dropped_headers,
                                       .trigger = FL_TRIGGER_API};
    if (api->async != NULL && fl_async_preferred(req)) {
        const struct fl_async_http async = {
            .call = how, .trigger_name = "api", .allow_caller_callback = true};
        fl_async_http(api->async, req, &async);
        return;
    }
    fl_invoke_http(api->invoker, req, &how);
}

struct log_stream {
    struct fl_api *api;
    struct fl_http_request *req;
    struct fl_log_follower *follower;
    struct fl_queue node; /* in api->streams */
};

/* Stop following: the client left, or flintd is stopping. */
static void stream_end(struct log_stream *ls)
{
    fl_queue_remove(&ls->node);
    fl_logbook_unfollow(ls->api->logs, ls->follower);
    fl_http_stream_end(ls->req);
    free(ls);
}

void fl_api_end_streams(struct fl_api *api)
{
    struct fl_queue *q;
    while ((q = fl_queue_first(&api->streams)) != NULL)
        stream_end(FL_QUEUE_DATA(q, struct log_stream, node));
    api_topics_end_streams(api->topics);
}

static void on_log_line(void *data, const char *line, size_t len)
{
    struct log_stream *ls = data;
    /* a client reading too slowly loses lines rather than flintd's memory */
    fl_http_stream_write(ls->req, line, len);
}

static void on_log_abort(struct fl_http_request *req, void *data)
{
    stream_end(data);
}

static void logs(struct fl_api *api, struct fl_http_request *req, const char *name)
{
    char value[32];
    int64_t tail = 100;
    if (fl_http_query_value(req->query, "tail", value, sizeof(value)) &&
        fl_parse_i64(value, 0, 100000, &tail) < 0) {
        fl_http_respond_error(req, 400, "bad_request",
                              "tail: a number of lines from 0 (all) to 100000, not '%s'", value);
        return;
    }
    bool follow = false;
    if (fl_http_query_value(req->query, "follow", value, sizeof(value))) {
        follow = value[0] == '\0' || strcmp(value, "1") == 0 || strcmp(value, "true") == 0;
        if (!follow && strcmp(value, "0") != 0 && strcmp(value, "false") != 0) {
            fl_http_respond_error(req, 400, "bad_request", "follow: true, false, 1 or 0, not '%s'",
                                  value);
            return;
        }
    }
    struct fl_buf out;
    fl_buf_init(&out, 8u << 20);
    int rc = fl_logbook_tail(api->logs, name, (size_t)tail, &out);
    if (rc < 0 && rc != FL_ETOOBIG) {
        fl_buf_release(&out);
        fl_http_respond_error(req, 500, "internal", "cannot read the logs of '%s': %s", name,
                              fl_strerror(rc));
        return;
    }
    if (out.len == 0 && api->executor != NULL) {
        /* a deleted function's lines are still served; a name that never
         * logged anything and is not a function is most likely a typo */
        json_t *status = fl_executor_function_status(api->executor, name);
        bool known = status != NULL;
        json_decref(status);
        if (!known) {
            fl_buf_release(&out);
            fl_http_respond_error(req, 404, "not_found",
                                  "function '%s' does not exist and has no logs", name);
            return;
        }
    }
    static const struct fl_http_header ndjson = {"Content-Type", 12, "application/x-ndjson", 20};
    if (!follow) {
        fl_http_respond(req, 200, &ndjson, 1, out.data ? out.data : "", out.len);
        fl_buf_release(&out);
        return;
    }
    struct log_stream *ls = calloc(1, sizeof(*ls));
    if (ls == NULL || fl_http_stream_begin(req, 200, &ndjson, 1) < 0) {
        free(ls);
        fl_buf_release(&out);
        if (ls != NULL)
            fl_http_respond_error(req, 500, "internal", "out of memory");
        else
            fl_http_stream_end(req);
        return;
    }
    ls->api = api;
    ls->req = req;
    if (out.len > 0)
        fl_http_stream_write(req, out.data, out.len);
    fl_buf_release(&out);
    if (fl_logbook_follow(api->logs, name, on_log_line, ls, &ls->follower) < 0) {
        fl_http_stream_end(req);
        free(ls);
        return;
    }
    fl_http_request_on_abort(req, on_log_abort, ls);
    fl_queue_insert_head(&api->streams, &ls->node);
}

static void metrics(struct fl_api *api, struct fl_http_request *req)
{
    struct fl_buf out;
    fl_buf_init(&out, 16u << 20);
    if (api->executor != NULL)
        fl_executor_update_metrics(api->executor);
    int rc = api->metrics ? fl_metrics_render(api->metrics, &out) : 0;
    if (rc < 0) {
        fl_buf_release(&out);
        fl_http_respond_error(req, 500, "internal", "cannot render metrics: %s", fl_strerror(rc));
        return;
    }
    static const struct fl_http_header text = {"Content-Type", 12, "text/plain; version=0.0.4", 25};
    fl_http_respond(req, 200, &text, 1, out.data ? out.data : "", out.len);
    fl_buf_release(&out);
}

/* Whether name could name a resource: a URL's name that cannot is a 404,
 * never passed on to the store, the executor or the logbook. */
static bool name_is_valid(const char *name)
{
    struct fl_buf msg;
    fl_buf_init(&msg, 512);
    int rc = fl_name_check(name, &msg);
    fl_buf_release(&msg);
    return rc == 0;
}

/* /v1/functions/NAME/invoke and /v1/functions/NAME/logs */
static bool function_action(struct fl_api *api, struct fl_http_request *req, const char *rest)
{
    const char *slash = strchr(rest, '/');
    if (slash == NULL || slash == rest || (size_t)(slash - rest) > FL_NAME_MAX)
        return false;
    char name[FL_NAME_MAX + 1];
    memcpy(name, rest, (size_t)(slash - rest));
    name[slash - rest] = '\0';
    const char *action = slash + 1;
    bool is_invoke = strcmp(action, "invoke") == 0;
    bool is_logs = strcmp(action, "logs") == 0 && strcmp(req->method, "GET") == 0;
    if (!is_invoke && !is_logs)
        return false;
    /* no function has a name like "%2e%2e" or "..": nothing to look up */
    if (!name_is_valid(name)) {
        fl_http_respond_error(req, 404, "not_found", "function '%.80s' does not exist", name);
        return true;
    }
    if (is_invoke) {
        if (api->invoker == NULL)
            fl_http_respond_error(req, 503, "unavailable", "the executor is not running");
        else
            invoke(api, req, name);
        return true;
    }
    if (api->logs == NULL)
        fl_http_respond_error(req, 503, "unavailable", "function logs are not kept");
    else
        logs(api, req, name);
    return true;
}

/* POST /v1/workflows/NAME/invoke (any method: it is the input `method`):
 * the workflow's output is the answer, or with Prefer: respond-async 202
 * once its invocation is durable. */
static bool workflow_action(struct fl_api *api, struct fl_http_request *req, const char *rest)
{
    const char *slash = strchr(rest, '/');
    if (slash == NULL || slash == rest || (size_t)(slash - rest) > FL_NAME_MAX ||
        strcmp(slash, "/invoke") != 0)
        return false;
    char name[FL_NAME_MAX + 1];
    memcpy(name, rest, (size_t)(slash - rest));
    name[slash - rest] = '\0';
    if (!name_is_valid(name)) {
        fl_http_respond_error(req, 404, "workflow_not_found", "workflow '%.80s' does not exist",
                              name);
        return true;
    }
    if (api->invoker == NULL || api->workflows == NULL) {
        fl_http_respond_error(req, 503, "unavailable", "workflows are not running");
        return true;
    }
    char query[2001];
    fl_strlcpy(query, req->query, sizeof(query));
    const struct fl_invoke_http how = {.target = {FL_INVOKE_WORKFLOW, name},
                                       .path = "/",
                                       .query = req->query_len ? query : NULL,
                                       .drop = invoke_dropped_headers,
                                       .trigger = FL_TRIGGER_API};
    if (fl_async_preferred(req))
        fl_wf_engine_http_async(api->workflows, req, &how);
    else
        fl_invoke_http(api->invoker, req, &how);
    return true;
}

static const char refused_message[] =
    "this API needs 'Authorization: Bearer <token>'; the token is in the data directory's "
    "'token' file";

/* Whether req may be served: it has the token, or needs none. A refusal is
 * counted, and logged within the rate limit. */
static bool authorized(struct fl_api *api, const struct fl_http_request *req)
{
    if (strcmp(req->path, "/healthz") == 0)
        return true;
    size_t len;
    const char *auth = fl_http_request_header(req, "authorization", &len);
    if (fl_token_check(api->token, auth, auth ? len : 0))
        return true;
    FL_LOG_LIMITED(FL_LOG_WARN, "api", "refused a request without a valid token",
                   "remote=%s method=%s path=%.200s auth=%s", req->remote, req->method, req->path,
                   auth == NULL ? "none" : "wrong");
    if (api->metrics != NULL) {
        static const char *const labels[] = {"token"};
        fl_metric_add(fl_metrics_counter(api->metrics, "flint_api_refused_total",
                                         "API requests refused for their token (none, wrong).", 1,
                                         labels),
                      (const char *[]){auth == NULL ? "none" : "wrong"}, 1);
    }
    return false;
}

int fl_api_check_headers(const struct fl_http_request *req, void *data, const char **code,
                         const char **message)
{
    if (authorized(data, req))
        return 0;
    *code = "unauthorized";
    *message = refused_message;
    return 401;
}

void fl_api_handle(struct fl_http_request *req, void *data)
{
    struct fl_api *api = data;
    if (strcmp(req->path, "/healthz") == 0) {
        if (api->ready != NULL && !api->ready(api->applied_data))
            fl_http_respond(req, 503, &content_type_json, 1, "{\"status\":\"starting\"}", 21);
        else
            fl_http_respond(req, 200, &content_type_json, 1, "{\"status\":\"ok\"}", 15);
        return;
    }
    if (!authorized(api, req)) {
        fl_http_respond_error(req, 401, "unauthorized", "%s", refused_message);
        return;
    }
    const char *m = req->method;
    if (strcmp(req->path, "/v1/status") == 0 && strcmp(m, "GET") == 0) {
        status(api, req);
        return;
    }
    if (strcmp(req->path, "/metrics") == 0 && strcmp(m, "GET") == 0) {
        metrics(api, req);
        return;
    }
    if (strncmp(req->path, "/v1/functions/", 14) == 0 && function_action(api, req, req->path + 14))
        return;
    if (strncmp(req->path, "/v1/workflows/", 14) == 0 && workflow_action(api, req, req->path + 14))
        return;
    if (api_async_handle(api->async, api->workflows, api->mq, req))
        return;
    if (api_topics_handle(api->topics, req))
        return;
    if (strcmp(req->path, "/v1/code") == 0 && strcmp(m, "POST") == 0) {
        upload_code(api, req);
        return;
    }
    for (size_t k = 0; k < fl_nkinds; k++) {
        const struct fl_kind *kind = fl_kinds[k];
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "/v1/%s", kind->plural);
        size_t plen = strlen(prefix);
        if (strncmp(req->path, prefix, plen) != 0)
            continue;
        const char *rest = req->path + plen;
        if (*rest == '\0') {
            if (strcmp(m, "GET") == 0)
                get_or_list(api, req, kind, NULL);
            else if (strcmp(m, "POST") == 0)
                write_resource(api, req, kind, NULL);
            else
                fl_http_respond_error(req, 405, "method_not_allowed", "%s %s: use GET or POST", m,
                                      prefix);
            return;
        }
        if (*rest != '/' || rest[1] == '\0' || strchr(rest + 1, '/') != NULL)
            break;
        const char *name = rest + 1;
        if (!name_is_valid(name)) {
            fl_http_respond_error(req, 404, "not_found", "%s '%.80s' does not exist", kind->name,
                                  name);
            return;
        }
        if (strcmp(m, "GET") == 0)
            get_or_list(api, req, kind, name);
        else if (strcmp(m, "PUT") == 0)
            write_resource(api, req, kind, name);
        else if (strcmp(m, "DELETE") == 0)
            delete_resource(api, req, kind, name);
        else
            fl_http_respond_error(req, 405, "method_not_allowed", "%s %s: use GET, PUT or DELETE",
                                  m, req->path);
        return;
    }
    fl_http_respond_error(req, 404, "not_found", "no API endpoint %s %.200s", m, req->path);
}

/* Remove the temporary files of uploads a killed flintd left half written
 * (the data directory is locked: no other flintd writes here). */
static void remove_partial_uploads(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    unsigned removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (fl_str_has_prefix(e->d_name, ".tmp-") && unlinkat(dirfd(d), e->d_name, 0) == 0)
            removed++;
    closedir(d);
    if (removed > 0)
        fl_log(FL_LOG_WARN, "api", "removed partial uploads left by a flintd that died", "files=%u",
               removed);
}

int fl_api_new(uv_loop_t *loop, const struct fl_api_config *cfg, struct fl_api **out)
{
    struct fl_api *api = calloc(1, sizeof(*api));
    if (api == NULL)
        return FL_ENOMEM;
    api->loop = loop;
    fl_queue_init(&api->streams);
    fl_queue_init(&api->settles);
    api->store = cfg->store;
    fl_strlcpy(api->data_dir, cfg->data_dir, sizeof(api->data_dir));
    fl_strlcpy(api->token, cfg->token, sizeof(api->token));
    fl_strlcpy(api->version, cfg->version ? cfg->version : "", sizeof(api->version));
    fl_strlcpy(api->api_addr, cfg->api_addr ? cfg->api_addr : "", sizeof(api->api_addr));
    fl_strlcpy(api->router_addr, cfg->router_addr ? cfg->router_addr : "",
               sizeof(api->router_addr));
    api->max_code_bytes = cfg->max_code_bytes ? cfg->max_code_bytes : 64u << 20;
    fl_strlcpy(api->sandbox, cfg->sandbox ? cfg->sandbox : "unknown", sizeof(api->sandbox));
    api->executor = cfg->executor;
    api->invoker = cfg->invoker;
    api->async = cfg->async;
    api->exprc = cfg->exprc;
    api->workflows = cfg->workflows;
    api->mq = cfg->mq;
    api->logs = cfg->logs;
    api->metrics = cfg->metrics;
    api->applied = cfg->applied;
    api->applied_data = cfg->applied_data;
    api->ready = cfg->ready;
    api->status_of = cfg->status;
    api->started_ms = fl_clock_wall_ms();
    char code[4200];
    snprintf(code, sizeof(code), "%s/code", api->data_dir);
    snprintf(api->code_dir, sizeof(api->code_dir), "%s/code/sha256", api->data_dir);
    if ((mkdir(code, 0700) != 0 && errno != EEXIST) ||
        (mkdir(api->code_dir, 0700) != 0 && errno != EEXIST)) {
        int rc = -errno;
        free(api);
        return rc;
    }
    remove_partial_uploads(api->code_dir);
    int rc = api_topics_new(loop, api->store, &api->topics);
    if (rc < 0) {
        free(api);
        return rc;
    }
    *out = api;
    return 0;
}

void fl_api_free(struct fl_api *api)
{
    if (api != NULL)
        api_topics_free(api->topics);
    free(api);
}
