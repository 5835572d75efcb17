/*
 * The engine's face to its entries: an invocation's inputs made of a
 * request, submitting (sync through the invoker's handler in engine.c,
 * async here), and reading, listing and canceling invocations for the API.
 */
#include "wf/engine_internal.h"

#include "base/error.h"
#include "base/log.h"
#include "base/str.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- inputs ---- */

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* n bytes of a query's name or value, '+' and %XX decoded, as a JSON
 * string (NULL when it is not UTF-8). */
static json_t *query_part(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[k++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[k++] = s[i];
        }
    }
    json_t *v = json_stringn(out, k);
    free(out);
    return v;
}

static json_t *query_json(const char *q)
{
    json_t *o = json_object();
    while (o != NULL && q != NULL && *q != '\0') {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        size_t klen = eq ? (size_t)(eq - q) : n;
        if (klen > 0) {
            json_t *k = query_part(q, klen);
            json_t *v = eq ? query_part(eq + 1, n - klen - 1) : json_string("");
            if (k != NULL && v != NULL && json_object_get(o, json_string_value(k)) == NULL)
                json_object_set(o, json_string_value(k), v);
            json_decref(k);
            json_decref(v);
        }
        q += n + (q[n] == '&');
    }
    return o;
}

json_t *fl_wf_headers_json(const struct fl_http_header *h, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < n; i++) {
        char name[256];
        size_t len = h[i].name_len < sizeof(name) - 1 ? h[i].name_len : sizeof(name) - 1;
        bool upper = true;
        for (size_t k = 0; k < len; k++) {
            char c = h[i].name[k];
            name[k] = upper ? (char)toupper((unsigned char)c) : (char)tolower((unsigned char)c);
            upper = c == '-';
        }
        name[len] = '\0';
        json_t *v = json_stringn(h[i].value, h[i].value_len);
        if (v != NULL)
            json_object_set_new(o, name, v);
    }
    return o;
}

const char *fl_wf_header_get(json_t *headers, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach(headers, k, v)
    {
        if (strcasecmp(k, name) == 0)
            return json_string_value(v);
    }
    return NULL;
}

json_t *fl_wf_inputs_of(const struct fl_invoke_request *req)
{
    json_t *in = json_object();
    if (in == NULL)
        return NULL;
    const char *ctype = NULL;
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name_len == 12 &&
            strncasecmp(req->headers[i].name, "content-type", 12) == 0)
            ctype = req->headers[i].value;
    json_t *body = req->body_len == 0 ? json_string("") : NULL;
    if (req->body_len > 0) {
        bool try_json = ctype == NULL || strstr(ctype, "json") != NULL;
        if (try_json)
            body = json_loadb(req->body, req->body_len, JSON_DECODE_ANY, NULL);
        if (body == NULL)
            body = json_stringn(req->body, req->body_len);
    }
    if (body != NULL) {
        json_object_set(in, "body", body);
        json_object_set_new(in, "default", body);
    }
    json_t *h = fl_wf_headers_json(req->headers, req->nheaders);
    json_t *added = fl_wf_headers_json(req->added, req->nadded);
    if (h != NULL && added != NULL)
        json_object_update(h, added);
    json_decref(added);
    json_object_set_new(in, "headers", h ? h : json_object());
    json_object_set_new(in, "query", query_json(req->query));
    json_object_set_new(in, "method", json_string(req->method ? req->method : "POST"));
    return in;
}

/* ---- submitting ---- */

int fl_wf_engine_submit(struct fl_wf_engine *e, const struct fl_invoke_request *req,
                        fl_wf_submit_cb cb, void *data)
{
    struct wdef *def = engine_def(e, req->target.name);
    if (def == NULL)
        return FL_ENOENT;
    char id[FL_UUID_STRLEN + 1];
    if (req->invocation_id != NULL)
        fl_strlcpy(id, req->invocation_id, sizeof(id));
    else if (fl_uuid7(id) < 0)
        return FL_EIO;
    json_t *inputs = fl_wf_inputs_of(req);
    if (inputs == NULL)
        return FL_ENOMEM;
    int rc =
        engine_create(e, def, id, inputs,
                      req->trigger_name ? req->trigger_name : fl_invoke_trigger_name(req->trigger),
                      NULL, cb, data);
    json_decref(inputs);
    return rc;
}

static void on_submitted(int err, const char *id, void *data)
{
    struct fl_http_request *req = data;
    if (err < 0) {
        fl_http_respond_error(req, 503, "store_unavailable", "cannot record the invocation: %s",
                              fl_errname(err));
        return;
    }
    char location[64];
    snprintf(location, sizeof(location), "/v1/invocations/%s", id);
    char body[160];
    int n = snprintf(body, sizeof(body), "{\"invocation\":\"%s\",\"status\":\"running\"}", id);
    const struct fl_http_header h[] = {{"Content-Type", 12, "application/json", 16},
                                       {"Location", 8, location, strlen(location)},
                                       {"Preference-Applied", 18, "respond-async", 13}};
    fl_http_respond(req, 202, h, 3, body, (size_t)n);
}

static void on_gone(struct fl_http_request *req, void *data)
{
    /* the invocation goes on; the answer is dropped when it comes */
}

void fl_wf_engine_http_async(struct fl_wf_engine *e, struct fl_http_request *req,
                             const struct fl_invoke_http *how)
{
    static const char *const steering[] = {"prefer", NULL};
    struct fl_invoke_http h = *how;
    h.drop_more = steering;
    struct fl_invoke_http_mapped m;
    fl_invoke_http_map(req, &h, &m);
    int rc = fl_wf_engine_submit(e, &m.req, on_submitted, req);
    if (rc == FL_ENOENT)
        fl_http_respond_error(req, 404, "workflow_not_found", "workflow '%s' does not exist",
                              how->target.name);
    else if (rc == FL_ECANCELED)
        fl_http_respond_error(req, 503, "stopping", "flintd is stopping");
    else if (rc < 0)
        fl_http_respond_error(req, 503, "unavailable", "cannot start the invocation: %s",
                              fl_errname(rc));
    else
        fl_http_request_on_abort(req, on_gone, NULL);
}

/* ---- reading ---- */

struct reader {
    struct fl_wf_engine *e;
    char id[FL_UUID_STRLEN + 1];
    char stream[FL_WF_STREAM_MAX];
    enum { READ_GET, READ_EVENTS, READ_CANCEL } what;
    bool detail;
    struct fl_wf_run run;
    json_t *events;
    fl_wf_json_cb cb;
    void *data;
    int err;
};

static void reader_done(struct reader *r, int err, json_t *value)
{
    struct fl_wf_engine *e = r->e;
    r->cb(err, err == 0 ? value : NULL, r->data);
    json_decref(value);
    json_decref(r->events);
    fl_wf_run_release(&r->run);
    free(r);
    engine_op_done(e);
}

static void on_read(int err, const struct fl_store_result *res, void *data)
{
    struct reader *r = data;
    struct inv *here = r->what == READ_GET && err == 0 ? engine_find(r->e, r->id) : NULL;
    const struct fl_wf_run *cached = here != NULL ? engine_durable_run(here) : NULL;
    if (cached != NULL) {
        /* running here, its fold the stream's: no need to read it all
         * (a long stream of dynamic tasks would hold the loop) */
        json_t *o = fl_wf_run_json(cached, r->detail);
        reader_done(r, o ? 0 : FL_ENOMEM, o);
        return;
    }
    for (size_t i = 0; err == 0 && r->err == 0 && i < res->n; i++) {
        const struct fl_record *ev = &res->records[i];
        json_t *d = json_loadb(ev->data, ev->len, 0, NULL);
        if (d == NULL) {
            r->err = FL_ECORRUPT;
            break;
        }
        if (r->events != NULL)
            json_array_append_new(
                r->events,
                json_pack("{s:I,s:s,s:O,s:O}", "seq", (json_int_t)ev->seq, "type", ev->type, "at",
                          json_object_get(d, "at") ? json_object_get(d, "at") : json_null(), "data",
                          d));
        int rc = fl_wf_run_apply(&r->run, ev->type, d);
        json_decref(d);
        if (rc < 0)
            r->err = rc;
    }
    if (err == 0 && r->err == 0 && res->seq != 0 &&
        fl_store_read(r->e->store, r->stream, res->seq, 0, on_read, r) == 0)
        return;
    if (err == 0)
        err = r->err;
    if (err == 0 && !r->run.created)
        err = FL_ENOENT;
    if (err < 0) {
        reader_done(r, err, NULL);
        return;
    }
    if (r->what == READ_EVENTS) {
        json_t *o = json_pack("{s:s,s:O}", "invocation", r->id, "events", r->events);
        reader_done(r, 0, o);
        return;
    }
    if (r->what == READ_CANCEL) {
        /* not running here: one that has not ended belongs to no one
         * (recovery has not reached it yet); it is ended by the append */
        if (fl_wf_run_ended(&r->run)) {
            reader_done(r, FL_ECONFLICT, NULL);
            return;
        }
        struct inv *inv = engine_find(r->e, r->id);
        int rc = inv != NULL ? engine_cancel(inv, "canceled by the operator") : FL_ECONFLICT;
        reader_done(r, rc,
                    rc == 0 ? json_pack("{s:s,s:s}", "invocation", r->id, "status", "canceling")
                            : NULL);
        return;
    }
    json_t *o = fl_wf_run_json(&r->run, r->detail);
    if (o != NULL && !fl_wf_run_ended(&r->run) && engine_find(r->e, r->id) == NULL)
        json_object_set_new(o, "owner", json_string("none: resumed when flintd is ready"));
    reader_done(r, o ? 0 : FL_ENOMEM, o);
}

static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n != FL_UUID_STRLEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f') || id[i] == '-'))
            return false;
    return true;
}

static int read_start(struct fl_wf_engine *e, const char *id, int what, bool detail,
                      fl_wf_json_cb cb, void *data)
{
    if (!id_ok(id))
        return FL_ENOENT;
    struct reader *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return FL_ENOMEM;
    r->e = e;
    fl_strlcpy(r->id, id, sizeof(r->id));
    fl_wf_stream_name(r->stream, id);
    r->what = what;
    r->detail = detail;
    r->cb = cb;
    r->data = data;
    fl_wf_run_init(&r->run, id);
    if (what == READ_EVENTS && (r->events = json_array()) == NULL) {
        free(r);
        return FL_ENOMEM;
    }
    /* a get reads one event first: an invocation running here is shown
     * from its fold (on_read()) */
    int rc = fl_store_read(e->store, r->stream, 1, what == READ_GET ? 1 : 0, on_read, r);
    if (rc < 0) {
        json_decref(r->events);
        free(r);
        return rc;
    }
    engine_op(e);
    return 0;
}

int fl_wf_engine_get(struct fl_wf_engine *e, const char *id, bool detail, fl_wf_json_cb cb,
                     void *data)
{
    return read_start(e, id, READ_GET, detail, cb, data);
}

int fl_wf_engine_events(struct fl_wf_engine *e, const char *id, fl_wf_json_cb cb, void *data)
{
    return read_start(e, id, READ_EVENTS, false, cb, data);
}

int fl_wf_engine_cancel(struct fl_wf_engine *e, const char *id, fl_wf_json_cb cb, void *data)
{
    return read_start(e, id, READ_CANCEL, false, cb, data);
}

/* ---- listing: the streams a page at a time, each folded ---- */

struct lister {
    struct fl_wf_engine *e;
    char workflow[FL_NAME_MAX + 1];
    int status; /* -1: any */
    size_t limit;
    json_t *items;
    char next[FL_CURSOR_MAX];
    char (*ids)[FL_UUID_STRLEN + 1];
    size_t nids, at;
    struct fl_wf_run run;
    fl_wf_json_cb cb;
    void *data;
};

static void list_next(struct lister *l);

static void list_done(struct lister *l, int err)
{
    struct fl_wf_engine *e = l->e;
    json_t *o = NULL;
    if (err == 0)
        o = json_pack("{s:O,s:o}", "items", l->items, "next",
                      l->next[0] ? json_string(l->next) : json_null());
    l->cb(err, o, l->data);
    json_decref(o);
    json_decref(l->items);
    free(l->ids);
    free(l);
    engine_op_done(e);
}

static void on_list_read(int err, const struct fl_store_result *res, void *data)
{
    struct lister *l = data;
    if (err == 0)
        fl_wf_run_fold(&l->run, res->records, res->n);
    if (err == 0 && res->seq != 0) {
        char stream[FL_WF_STREAM_MAX];
        fl_wf_stream_name(stream, l->ids[l->at]);
        if (fl_store_read(l->e->store, stream, res->seq, 0, on_list_read, l) == 0)
            return;
    }
    struct fl_wf_run *r = &l->run;
    if (r->created && (l->workflow[0] == '\0' || strcmp(l->workflow, r->workflow) == 0) &&
        (l->status < 0 || (int)r->status == l->status)) {
        json_t *full = fl_wf_run_json(r, false);
        json_t *s = json_object();
        static const char *const keep[] = {"invocation", "kind",      "workflow", "status",
                                           "trigger",    "createdAt", "endedAt",  "durationMs",
                                           "failedTask", "error"};
        for (size_t i = 0; full && s && i < sizeof(keep) / sizeof(keep[0]); i++)
            json_object_set(s, keep[i], json_object_get(full, keep[i]));
        json_decref(full);
        json_array_append_new(l->items, s);
    }
    fl_wf_run_release(r);
    l->at++;
    list_next(l);
}

static void list_next(struct lister *l)
{
    while (l->at < l->nids && json_array_size(l->items) < l->limit) {
        char stream[FL_WF_STREAM_MAX];
        fl_wf_stream_name(stream, l->ids[l->at]);
        fl_wf_run_init(&l->run, l->ids[l->at]);
        if (fl_store_read(l->e->store, stream, 1, 0, on_list_read, l) == 0)
            return;
        l->at++;
    }
    if (l->at < l->nids) /* the page is full before the streams read: go on from there */
        snprintf(l->next, sizeof(l->next), FL_WF_STREAM_PREFIX "%s", l->ids[l->at - 1]);
    list_done(l, 0);
}

static void on_list_streams(int err, const struct fl_store_result *res, void *data)
{
    struct lister *l = data;
    if (err < 0) {
        list_done(l, err);
        return;
    }
    l->ids = calloc(res->n ? res->n : 1, sizeof(*l->ids));
    if (l->ids == NULL) {
        list_done(l, FL_ENOMEM);
        return;
    }
    for (size_t i = 0; i < res->n; i++)
        fl_strlcpy(l->ids[i], res->records[i].key + strlen(FL_WF_STREAM_PREFIX), sizeof(l->ids[i]));
    l->nids = res->n;
    if (res->next != NULL)
        fl_strlcpy(l->next, res->next, sizeof(l->next));
    list_next(l);
}

int fl_wf_engine_list(struct fl_wf_engine *e, const char *workflow, const char *status,
                      size_t limit, const char *after, fl_wf_json_cb cb, void *data)
{
    int st = -1;
    if (status != NULL && (st = fl_wf_run_status_parse(status)) < 0)
        return FL_EINVAL;
    struct lister *l = calloc(1, sizeof(*l));
    if (l == NULL || (l->items = json_array()) == NULL) {
        free(l);
        return FL_ENOMEM;
    }
    l->e = e;
    fl_strlcpy(l->workflow, workflow ? workflow : "", sizeof(l->workflow));
    l->status = st;
    l->limit = limit ? limit : 100;
    l->cb = cb;
    l->data = data;
    /* read at most a few pages' worth of streams for one answer */
    struct fl_page page = {l->limit * 4 < 2000 ? l->limit * 4 : 2000, after};
    int rc = fl_store_streams(e->store, FL_WF_STREAM_PREFIX, &page, on_list_streams, l);
    if (rc < 0) {
        json_decref(l->items);
        free(l);
        return rc;
    }
    engine_op(e);
    return 0;
}
