/*
 * Reading and steering async invocations (async.h: fl_async_get, list,
 * cancel, redrive, purge) and the HTTP entries' half (fl_async_http).
 * Everything is read from the store and folded (history.h); what only
 * this flintd knows, an attempt under way, is laid over it ("running").
 */
#include "async/internal.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The invocation's JSON with what runs now laid over it. A new reference. */
static json_t *shown(struct fl_async *a, struct fl_inv *inv, bool summary)
{
    struct attempt *at = async_running(a, inv->id);
    json_t *v = summary ? fl_inv_summary(inv) : json_incref(inv->json);
    if (at != NULL && !inv->ended) {
        json_object_set_new(v, "status", json_string("running"));
        json_object_set_new(v, "runningAttempt", json_integer(async_attempt_number(at)));
    }
    return v;
}

/* ---- get ---- */

struct get_ctx {
    struct fl_async *a;
    bool with_body;
    json_t *value;
    char topic[FL_INV_TOPIC_MAX];
    char consumer[FL_INV_TOPIC_MAX];
    char id[FL_UUID_STRLEN + 1];
    uint64_t seq; /* the message's sequence, as its history says (0: unknown) */
    char after[FL_CURSOR_MAX];
    fl_async_json_cb cb;
    void *data;
};

static void get_answer(struct get_ctx *c, int err)
{
    c->cb(err, err == 0 ? c->value : NULL, c->data);
    json_decref(c->value);
    free(c);
}

static void on_dead_body(int err, const struct fl_store_result *res, void *data);

static int dead_page(struct get_ctx *c)
{
    struct fl_page page = {0, c->after};
    int rc = fl_store_dead(c->a->store, c->topic, c->consumer, &page, on_dead_body, c);
    if (rc == 0)
        async_op(c->a);
    return rc;
}

/* The request's body, from the dead letter that holds it. */
static void on_dead_body(int err, const struct fl_store_result *res, void *data)
{
    struct get_ctx *c = data;
    struct fl_async *a = c->a;
    for (size_t i = 0; err == 0 && i < res->n; i++) {
        const struct fl_record *r = &res->records[i];
        /* an async message's id is its invocation's; a trigger's message
         * has its publisher's id (or none): found by its sequence */
        if (strcmp(r->key, c->id) != 0 && (c->seq == 0 || r->seq != c->seq))
            continue;
        json_t *req = json_object_get(c->value, "request");
        const char *encoding;
        json_t *body = async_body_json(r->data, r->len, &encoding);
        if (json_is_object(req) && body != NULL) {
            json_object_set_new(req, "body", body);
            json_object_set_new(req, "bodyEncoding", json_string(encoding));
        }
        json_object_set_new(c->value, "reason", json_string(r->reason));
        get_answer(c, 0);
        async_op_done(a);
        return;
    }
    if (err == 0 && res->next != NULL) {
        fl_strlcpy(c->after, res->next, sizeof(c->after));
        if (dead_page(c) == 0) {
            async_op_done(a);
            return;
        }
    }
    get_answer(c, 0); /* no body to show: the letter is gone */
    async_op_done(a);
}

static void on_get(int err, struct fl_inv *inv, uint64_t last_seq, void *data)
{
    struct get_ctx *c = data;
    if (err < 0) {
        get_answer(c, err);
        return;
    }
    c->value = shown(c->a, inv, false);
    if (c->with_body && inv->status == FL_INV_DEAD && !inv->purged && inv->function[0]) {
        fl_strlcpy(c->topic, inv->topic, sizeof(c->topic));
        fl_strlcpy(c->consumer, inv->consumer, sizeof(c->consumer));
        c->seq = inv->seq;
        if (dead_page(c) == 0)
            return;
    }
    get_answer(c, 0);
}

int fl_async_get(struct fl_async *a, const char *id, bool with_body, fl_async_json_cb cb,
                 void *data)
{
    struct get_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return FL_ENOMEM;
    *c = (struct get_ctx){.a = a, .with_body = with_body, .cb = cb, .data = data};
    fl_strlcpy(c->id, id, sizeof(c->id));
    int rc = async_read_any(a, id, on_get, c);
    if (rc < 0)
        free(c);
    return rc;
}

/* ---- lists ---- */

/*
 * A list pages through two sources by invocation id: the histories
 * (streams "inv/<id>") and the messages of invocations whose history has
 * not begun (fl_store_message_ids under "async/"). Both are read a page
 * at a time after the same id, the messages first (an invocation taken
 * in between has begun its history before its message goes, so it is in
 * one of the two), and merged: ids up to the last of a source whose page
 * was full (past it, the other source may hold ids that page did not
 * reach), an id with a history shown from it. That id is the next cursor.
 */

#define LIST_SCAN_MAX 2000 /* invocations read for one page at most */

/* An invocation not taken yet, from its message. */
struct list_msg {
    char id[FL_UUID_STRLEN + 1];
    char fn[FL_NAME_MAX + 1];
    uint64_t seq;
    int64_t ts_ms;
    json_t *headers; /* owned */
};

struct list_ctx {
    struct fl_async *a;
    char function[FL_NAME_MAX + 1];
    int status; /* -1: any */
    bool dead;
    size_t limit;
    size_t scanned;
    json_t *items;
    char after[FL_CURSOR_MAX];
    /* the page's messages (messages_page) */
    struct list_msg *msgs;
    size_t nmsgs;
    char msgs_bound[FL_CURSOR_MAX]; /* the last id of a full page of them, or "" */
    /* a page of ids being read: */
    char (*ids)[FL_UUID_STRLEN + 1];
    const struct list_msg **from_msg; /* per id, its message if it has no history */
    json_t **found;                   /* per id, what it folded to (or NULL) */
    size_t n, left;
    char next[FL_CURSOR_MAX];
    bool last_page;
    fl_async_json_cb cb;
    void *data;
};

static void list_msgs_free(struct list_ctx *c)
{
    for (size_t i = 0; i < c->nmsgs; i++)
        json_decref(c->msgs[i].headers);
    free(c->msgs);
    c->msgs = NULL;
    c->nmsgs = 0;
    c->msgs_bound[0] = '\0';
}

static void list_answer(struct list_ctx *c, int err)
{
    json_t *v = NULL;
    if (err == 0)
        v = json_pack("{s:O,s:o}", "items", c->items, "next",
                      c->after[0] != '\0' ? json_string(c->after) : json_null());
    c->cb(err, v, c->data);
    json_decref(v);
    json_decref(c->items);
    list_msgs_free(c);
    free(c->ids);
    free(c->from_msg);
    free(c->found);
    free(c);
}

static int list_page(struct list_ctx *c);

/* The page's invocations are read: keep those that pass, in order (a page
 * never holds more than the list still needs, so none is left over). */
static void list_page_done(struct list_ctx *c)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->found[i] != NULL)
            json_array_append(c->items, c->found[i]);
        json_decref(c->found[i]);
        c->found[i] = NULL;
    }
    list_msgs_free(c);
    fl_strlcpy(c->after, c->last_page ? "" : c->next, sizeof(c->after));
    if (json_array_size(c->items) >= c->limit || c->after[0] == '\0' ||
        c->scanned >= LIST_SCAN_MAX) {
        list_answer(c, 0);
        return;
    }
    int rc = list_page(c);
    if (rc < 0)
        list_answer(c, rc);
}

/* Keep inv, if it passes the filters, as the page's i-th. */
static void list_keep(struct list_ctx *c, size_t i, struct fl_inv *inv)
{
    if (c->function[0] != '\0' && strcmp(inv->function, c->function) != 0)
        return;
    json_t *v = shown(c->a, inv, true);
    const char *st = json_string_value(json_object_get(v, "status"));
    bool dead_shown = !c->dead || (inv->status == FL_INV_DEAD && !inv->purged);
    if (dead_shown && (c->status < 0 || (st && strcmp(st, fl_inv_status_name(c->status)) == 0)))
        c->found[i] = v;
    else
        json_decref(v);
}

struct list_item {
    struct list_ctx *c;
    size_t i;
};

static void on_list_item(int err, struct fl_inv *inv, uint64_t last_seq, void *data)
{
    struct list_item *it = data;
    struct list_ctx *c = it->c;
    if (err == 0)
        list_keep(c, it->i, inv);
    free(it);
    if (--c->left == 0)
        list_page_done(c);
}

/* Read the invocations of the page's ids: their histories, or what their
 * messages say. */
static void list_read(struct list_ctx *c)
{
    c->left = 1;
    for (size_t i = 0; i < c->n; i++) {
        const struct list_msg *m = c->from_msg[i];
        if (m != NULL) {
            struct fl_inv inv;
            if (fl_inv_fold_message(m->id, m->fn, m->headers, m->seq, m->ts_ms, &inv) == 0) {
                list_keep(c, i, &inv);
                fl_inv_release(&inv);
            }
            continue;
        }
        struct list_item *it = malloc(sizeof(*it));
        if (it == NULL)
            break;
        *it = (struct list_item){c, i};
        c->left++;
        if (async_read(c->a, c->ids[i], on_list_item, it) < 0) {
            c->left--;
            free(it);
        }
    }
    if (--c->left == 0)
        list_page_done(c);
}

static int list_names(struct list_ctx *c, size_t n)
{
    free(c->ids);
    free(c->from_msg);
    free(c->found);
    c->ids = calloc(n > 0 ? n : 1, sizeof(*c->ids));
    c->from_msg = calloc(n > 0 ? n : 1, sizeof(*c->from_msg));
    c->found = calloc(n > 0 ? n : 1, sizeof(*c->found));
    c->n = 0;
    return c->ids != NULL && c->from_msg != NULL && c->found != NULL ? 0 : FL_ENOMEM;
}

/* The histories' page is in: merge it with the messages' (both by id). */
static void on_streams(int err, const struct fl_store_result *res, void *data)
{
    struct list_ctx *c = data;
    struct fl_async *a = c->a;
    if (err == 0)
        err = list_names(c, res->n + c->nmsgs);
    if (err < 0) {
        list_answer(c, err);
        async_op_done(a);
        return;
    }
    /* the last id both sources have listed all of: the bound */
    const char *bound = NULL;
    if (res->next != NULL && res->n > 0)
        bound = res->records[res->n - 1].key + 4;
    if (c->msgs_bound[0] != '\0' && (bound == NULL || strcmp(c->msgs_bound, bound) < 0))
        bound = c->msgs_bound;
    size_t i = 0, k = 0;
    for (;;) {
        while (i < res->n && strlen(res->records[i].key) != 4 + FL_UUID_STRLEN)
            i++;
        const char *s = i < res->n ? res->records[i].key + 4 : NULL;
        const char *m = k < c->nmsgs ? c->msgs[k].id : NULL;
        int order = s == NULL ? 1 : m == NULL ? -1 : strcmp(s, m);
        const char *id = order <= 0 ? s : m;
        if (id == NULL || (bound != NULL && strcmp(id, bound) > 0))
            break;
        if (c->n == 0 || strcmp(c->ids[c->n - 1], id) != 0) {
            fl_strlcpy(c->ids[c->n], id, sizeof(c->ids[0]));
            c->from_msg[c->n++] = order <= 0 ? NULL : &c->msgs[k];
        }
        if (order <= 0)
            i++;
        else
            k++;
    }
    c->scanned += res->n;
    c->last_page = bound == NULL;
    fl_strlcpy(c->next, bound != NULL ? bound : "", sizeof(c->next));
    list_read(c);
    async_op_done(a);
}

/*
 * A page of the invocations' streams, each read and kept if it passes. Dead
 * letters too are found this way, for one function as for all: those of
 * its async queue and those its message-queue triggers parked (each in its
 * trigger's consumer, under a message id of its publisher's), which only
 * the invocations' histories tie to the function.
 */
static int streams_page(struct list_ctx *c)
{
    struct fl_async *a = c->a;
    size_t want = c->limit - json_array_size(c->items);
    char after[FL_CURSOR_MAX + 4];
    snprintf(after, sizeof(after), "%s%s", c->after[0] ? "inv/" : "", c->after);
    if (strlen(after) >= FL_CURSOR_MAX)
        return FL_EINVAL;
    struct fl_page page = {want < 200 ? want : 200, after};
    int rc = fl_store_streams(a->store, "inv/", &page, on_streams, c);
    if (rc == 0)
        async_op(a);
    return rc;
}

/* The messages' page is in: keep those of invocations (of the function
 * asked for), then read the histories' page. */
static void on_message_ids(int err, const struct fl_store_result *res, void *data)
{
    struct list_ctx *c = data;
    struct fl_async *a = c->a;
    if (err == 0 && res->n > 0 && (c->msgs = calloc(res->n, sizeof(*c->msgs))) == NULL)
        err = FL_ENOMEM;
    if (err == 0)
        c->scanned += res->n;
    for (size_t i = 0; err == 0 && i < res->n; i++) {
        const struct fl_record *r = &res->records[i];
        const char *fn = async_topic_function(r->type);
        if (fn == NULL || strlen(r->key) != FL_UUID_STRLEN || strlen(fn) > FL_NAME_MAX ||
            (c->function[0] != '\0' && strcmp(fn, c->function) != 0))
            continue;
        struct list_msg *m = &c->msgs[c->nmsgs];
        fl_strlcpy(m->id, r->key, sizeof(m->id));
        fl_strlcpy(m->fn, fn, sizeof(m->fn));
        m->seq = r->seq;
        m->ts_ms = r->ts_ms;
        if ((m->headers = json_loads(r->headers, 0, NULL)) != NULL)
            c->nmsgs++;
    }
    /* a full page: past its last id (kept or not) the merge may not go */
    if (err == 0 && res->next != NULL)
        fl_strlcpy(c->msgs_bound, res->next, sizeof(c->msgs_bound));
    if (err == 0)
        err = streams_page(c);
    if (err < 0)
        list_answer(c, err);
    async_op_done(a);
}

static int list_page(struct list_ctx *c)
{
    struct fl_async *a = c->a;
    size_t want = c->limit - json_array_size(c->items);
    struct fl_page page = {want < 200 ? want : 200, c->after};
    /* only invocations whose history has begun can be shown, and dead
     * letters (of queues and triggers) only by their histories */
    if (c->dead || (c->status >= 0 && c->status != FL_INV_QUEUED && c->status != FL_INV_RUNNING))
        return streams_page(c);
    /* the invocations not taken yet too: their messages first */
    char prefix[ASYNC_TOPIC_MAX];
    snprintf(prefix, sizeof(prefix), ASYNC_TOPIC_PREFIX "%s", c->function);
    int rc = fl_store_message_ids(a->store, prefix, &page, on_message_ids, c);
    if (rc == 0)
        async_op(a);
    return rc;
}

int fl_async_list(struct fl_async *a, const char *function, const char *status, bool dead,
                  size_t limit, const char *after, fl_async_json_cb cb, void *data)
{
    int st = -1;
    if (status != NULL && (st = fl_inv_status_parse(status)) < 0)
        return FL_EINVAL;
    if ((function != NULL && strlen(function) > FL_NAME_MAX) ||
        (after != NULL && strlen(after) >= FL_CURSOR_MAX))
        return FL_EINVAL;
    struct list_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->items = json_array()) == NULL) {
        free(c);
        return FL_ENOMEM;
    }
    c->a = a;
    fl_strlcpy(c->function, function ? function : "", sizeof(c->function));
    c->status = st;
    c->dead = dead;
    c->limit = limit == 0 ? 100 : limit > 1000 ? 1000 : limit;
    fl_strlcpy(c->after, after ? after : "", sizeof(c->after));
    c->cb = cb;
    c->data = data;
    int rc = list_page(c);
    if (rc < 0) {
        json_decref(c->items);
        free(c);
    }
    return rc;
}

/* ---- cancel ---- */

struct cancel_ctx {
    struct fl_async *a;
    char id[FL_UUID_STRLEN + 1];
    unsigned tries;
    fl_async_json_cb cb;
    void *data;
};

static void on_cancel_read(int err, struct fl_inv *inv, uint64_t last_seq, void *data);

static void cancel_answer(struct cancel_ctx *c, int err, json_t *v)
{
    c->cb(err, v, c->data);
    free(c);
}

static void on_canceled_read(int err, struct fl_inv *inv, uint64_t last_seq, void *data)
{
    struct cancel_ctx *c = data;
    json_t *v = err == 0 ? shown(c->a, inv, false) : NULL;
    cancel_answer(c, err, v);
    json_decref(v);
}

static void on_cancel_appended(int err, const struct fl_store_result *res, void *data)
{
    struct cancel_ctx *c = data;
    if (err == FL_ECONFLICT && ++c->tries < 10) {
        /* an attempt recorded itself meanwhile (or began the history): look again */
        err = async_read_any(c->a, c->id, on_cancel_read, c);
    } else if (err == 0) {
        struct attempt *at = async_running(c->a, c->id);
        if (at != NULL)
            async_attempt_cancel(at);
        err = async_read_any(c->a, c->id, on_canceled_read, c);
    }
    if (err < 0)
        cancel_answer(c, err, NULL);
}

/* Cancel with the history's last sequence as the compare-and-set; an
 * invocation whose history has not begun (not taken yet) begins it with
 * its queued event and the cancel, so that the worker that takes its
 * message finds it ended and never runs it. */
static void on_cancel_read(int err, struct fl_inv *inv, uint64_t last_seq, void *data)
{
    struct cancel_ctx *c = data;
    if (err == 0 && inv->ended)
        err = FL_ECONFLICT;
    if (err == 0) {
        json_t *d = json_object();
        if (d == NULL)
            err = FL_ENOMEM;
        else if (inv->queued != NULL)
            err = async_append_first(c->a, c->id, inv->queued, "canceled", d, false,
                                     on_cancel_appended, c);
        else
            err = async_append(c->a, c->id, "canceled", d, last_seq, on_cancel_appended, c);
        json_decref(d);
    }
    if (err < 0)
        cancel_answer(c, err, NULL);
}

int fl_async_cancel(struct fl_async *a, const char *id, fl_async_json_cb cb, void *data)
{
    struct cancel_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return FL_ENOMEM;
    *c = (struct cancel_ctx){.a = a, .cb = cb, .data = data};
    fl_strlcpy(c->id, id, sizeof(c->id));
    int rc = async_read_any(a, id, on_cancel_read, c);
    if (rc < 0)
        free(c);
    return rc;
}

/* ---- redrive and purge ---- */

/*
 * One dead letter at a time: read its history (it must be dead and not
 * purged), then for a redrive record "redriven" before the store delivers
 * it again (an attempt that found it still dead would not run), or for a
 * purge remove it from the store, then record "purged". For a function or
 * every one, the dead letters are listed first (fl_async_list) and done in
 * turn.
 */
#define STEER_MAX 100000 /* dead letters one call steers at most */

struct steer {
    struct fl_async *a;
    bool redrive;
    char function[FL_NAME_MAX + 1]; /* "": every function's */
    json_t *ids;                    /* to do */
    size_t next;                    /* index into ids */
    json_t *done;                   /* ids done */
    struct fl_inv cur;
    uint64_t last_seq; /* cur's history's, for the redriven event's fence */
    bool single;       /* one id: its errors are the answer */
    fl_async_json_cb cb;
    void *data;
};

static void steer_next(struct steer *s);

static void steer_answer(struct steer *s, int err)
{
    json_t *v = err == 0 ? json_pack("{s:O}", s->redrive ? "redriven" : "purged", s->done) : NULL;
    s->cb(err, v, s->data);
    json_decref(v);
    json_decref(s->ids);
    json_decref(s->done);
    free(s);
}

static void steer_one_done(struct steer *s, int err)
{
    if (err == 0)
        json_array_append(s->done, json_array_get(s->ids, s->next));
    fl_inv_release(&s->cur);
    if (err < 0 && s->single) {
        steer_answer(s, err);
        return;
    }
    if (err < 0)
        fl_log(FL_LOG_WARN, "async", s->redrive ? "could not redrive" : "could not purge",
               "invocation=%s error=%s", json_string_value(json_array_get(s->ids, s->next)),
               fl_errname(err));
    s->next++;
    steer_next(s);
}

static void on_steer_recorded(int err, const struct fl_store_result *res, void *data)
{
    steer_one_done(data, err);
}

static void on_store_steered(int err, const struct fl_store_result *res, void *data)
{
    struct steer *s = data;
    const char *id = json_string_value(json_array_get(s->ids, s->next));
    if (s->redrive) {
        if (err < 0) {
            /* recorded as redriven, but still dead in the store: say so */
            json_t *d = json_pack("{s:s}", "error", fl_errname(err));
            if (d != NULL)
                async_append(s->a, id, "undriven", d, FL_SEQ_ANY, NULL, NULL);
            json_decref(d);
        }
        steer_one_done(s, err);
        return;
    }
    json_t *d = err == 0 ? json_object() : NULL;
    if (d != NULL)
        err = async_append(s->a, id, "purged", d, FL_SEQ_ANY, on_steer_recorded, s);
    json_decref(d);
    if (d == NULL || err < 0)
        steer_one_done(s, err < 0 ? err : FL_ENOMEM);
}

static int steer_store(struct steer *s)
{
    const char *topic = s->cur.topic, *consumer = s->cur.consumer;
    return s->redrive
               ? fl_store_redrive(s->a->store, topic, consumer, s->cur.seq, on_store_steered, s)
               : fl_store_purge(s->a->store, topic, consumer, s->cur.seq, on_store_steered, s);
}

static void on_redriven_recorded(int err, const struct fl_store_result *res, void *data)
{
    struct steer *s = data;
    if (err == 0)
        err = steer_store(s);
    if (err < 0)
        steer_one_done(s, err);
}

static void on_steer_consumer(int err, const struct fl_store_result *res, void *data);

static void on_steer_read(int err, struct fl_inv *inv, uint64_t last_seq, void *data)
{
    struct steer *s = data;
    if (err == 0 && (inv->status != FL_INV_DEAD || inv->purged || inv->seq == 0))
        err = FL_ECONFLICT;
    if (err < 0) {
        steer_one_done(s, err);
        return;
    }
    s->cur = *inv;
    s->last_seq = last_seq;
    /* keep what the release would free: the fold gave them to us */
    memset(inv, 0, sizeof(*inv));
    inv->json = NULL;
    /* the consumer that holds the letter first: a trigger's goes with the
     * trigger (deleted, or moved to another topic) */
    err = fl_store_consumer_info(s->a->store, s->cur.topic, s->cur.consumer, on_steer_consumer, s);
    if (err == 0)
        async_op(s->a);
    else
        steer_one_done(s, err);
}

/* Steer the letter, its consumer found (or not). */
static int steer_found(struct steer *s, int err)
{
    if (err == FL_ENOENT && s->redrive)
        return FL_ENOTSUP; /* nothing can deliver it again */
    json_t *d = NULL;
    if (err == FL_ENOENT) { /* purged with its consumer: record it */
        d = json_pack("{s:s}", "reason", "its consumer is gone");
        err = d ? async_append(s->a, s->cur.id, "purged", d, FL_SEQ_ANY, on_steer_recorded, s)
                : FL_ENOMEM;
    } else if (err == 0 && s->redrive) {
        d = json_pack("{s:i}", "attempts", (int)s->cur.attempts);
        err = d ? async_append(s->a, s->cur.id, "redriven", d, s->last_seq, on_redriven_recorded, s)
                : FL_ENOMEM;
    } else if (err == 0) {
        err = steer_store(s);
    }
    json_decref(d);
    return err;
}

static void on_steer_consumer(int err, const struct fl_store_result *res, void *data)
{
    struct steer *s = data;
    struct fl_async *a = s->a;
    err = steer_found(s, err);
    if (err < 0)
        steer_one_done(s, err);
    async_op_done(a);
}

static void steer_next(struct steer *s)
{
    while (s->next < json_array_size(s->ids)) {
        const char *id = json_string_value(json_array_get(s->ids, s->next));
        if (async_read(s->a, id, on_steer_read, s) == 0)
            return;
        if (s->single) {
            steer_answer(s, FL_ENOMEM);
            return;
        }
        s->next++;
    }
    steer_answer(s, 0);
}

static void on_dead_listed(int err, json_t *value, void *data)
{
    struct steer *s = data;
    if (err < 0) {
        steer_answer(s, err);
        return;
    }
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(value, "items"), i, item)
        json_array_append(s->ids, json_object_get(item, "id"));
    /* a page may stop at the scan's bound: read on to the end */
    const char *next = json_string_value(json_object_get(value, "next"));
    if (next != NULL && json_array_size(s->ids) < STEER_MAX) {
        err = fl_async_list(s->a, s->function[0] ? s->function : NULL, NULL, true, 1000, next,
                            on_dead_listed, s);
        if (err < 0)
            steer_answer(s, err);
        return;
    }
    steer_next(s);
}

static int steer(struct fl_async *a, bool redrive, const char *id, const char *function,
                 fl_async_json_cb cb, void *data)
{
    struct steer *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return FL_ENOMEM;
    if (function != NULL && strlen(function) > FL_NAME_MAX) {
        free(s);
        return FL_EINVAL;
    }
    *s = (struct steer){.a = a, .redrive = redrive, .single = id != NULL, .cb = cb, .data = data};
    fl_strlcpy(s->function, function ? function : "", sizeof(s->function));
    s->ids = json_array();
    s->done = json_array();
    int rc = FL_ENOMEM;
    if (s->ids != NULL && s->done != NULL) {
        if (id != NULL) {
            json_array_append_new(s->ids, json_string(id));
            const char *first = json_string_value(json_array_get(s->ids, 0));
            rc = first != NULL ? async_read_any(a, first, on_steer_read, s) : FL_EINVAL;
        } else {
            rc = fl_async_list(a, function, NULL, true, 1000, NULL, on_dead_listed, s);
        }
    }
    if (rc < 0) {
        json_decref(s->ids);
        json_decref(s->done);
        free(s);
    }
    return rc;
}

int fl_async_redrive(struct fl_async *a, const char *id, const char *function, fl_async_json_cb cb,
                     void *data)
{
    return steer(a, true, id, function, cb, data);
}

int fl_async_purge(struct fl_async *a, const char *id, const char *function, fl_async_json_cb cb,
                   void *data)
{
    return steer(a, false, id, function, cb, data);
}

/* ---- the HTTP entries' half ---- */

bool fl_async_preferred(const struct fl_http_request *req)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct fl_http_header *h = &req->headers[i];
        if (!fl_str_ieq(h->name, h->name_len, "prefer"))
            continue;
        /* preferences are separated by commas; each is token[=value][;params] */
        const char *p = h->value, *end = h->value + h->value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *start = p;
            while (p < end && *p != ',' && *p != ';' && *p != ' ' && *p != '\t' && *p != '=')
                p++;
            if (fl_str_ieq(start, (size_t)(p - start), "respond-async"))
                return true;
            while (p < end && *p != ',')
                p++;
        }
    }
    return false;
}

static const char *const async_dropped[] = {"prefer", "idempotency-key", "x-flint-callback-url",
                                            NULL};

static void on_accepted(int err, const char *id, bool duplicate, void *data)
{
    struct fl_http_request *req = data;
    if (err == -ENOSPC) {
        fl_http_respond_error(req, 507, "no_space",
                              "the data directory's disk is full: the invocation was not accepted");
        return;
    }
    if (err < 0) {
        fl_http_respond_error(req, 503, "store_unavailable",
                              "the invocation could not be made durable: %s", fl_errname(err));
        return;
    }
    char location[64], body[160];
    snprintf(location, sizeof(location), "/v1/invocations/%s", id);
    int n = snprintf(body, sizeof(body), "{\"invocation\":\"%s\",\"status\":\"queued\"%s}", id,
                     duplicate ? ",\"duplicate\":true" : "");
    const struct fl_http_header headers[] = {
        {"Content-Type", 12, "application/json", 16},
        {"Location", 8, location, strlen(location)},
        {"Preference-Applied", 18, "respond-async", 13},
        {"X-Flint-Invocation-Id", 21, id, strlen(id)},
    };
    fl_http_respond(req, 202, headers, 4, body, (size_t)n);
}

void fl_async_http(struct fl_async *a, struct fl_http_request *req, const struct fl_async_http *how)
{
    struct fl_invoke_http call = how->call;
    call.drop_more = async_dropped;
    struct fl_invoke_http_mapped m;
    fl_invoke_http_map(req, &call, &m);
    size_t len;
    char key[IDEM_KEY_MAX + 1], callback[2048];
    const char *v = fl_http_request_header(req, "idempotency-key", &len);
    if (v != NULL && (len == 0 || len > IDEM_KEY_MAX)) {
        fl_http_respond_error(req, 400, "bad_idempotency_key",
                              "Idempotency-Key must be 1 to %d bytes", IDEM_KEY_MAX);
        return;
    }
    if (v != NULL) {
        memcpy(key, v, len);
        key[len] = '\0';
    }
    const char *cb_url = how->callback_url;
    const char *cv = fl_http_request_header(req, "x-flint-callback-url", &len);
    if (cb_url == NULL && cv != NULL && how->allow_caller_callback) {
        if (len >= sizeof(callback) || async_callback_check(cv, len) < 0) {
            fl_http_respond_error(req, 400, "bad_callback_url",
                                  "X-Flint-Callback-Url must be an http://HOST:PORT/path URL");
            return;
        }
        memcpy(callback, cv, len);
        callback[len] = '\0';
        cb_url = callback;
    }
    struct fl_async_request r = {.target = m.req.target,
                                 .method = m.req.method,
                                 .path = m.req.path,
                                 .query = m.req.query,
                                 .headers = m.req.headers,
                                 .nheaders = m.req.nheaders,
                                 .added = m.req.added,
                                 .nadded = m.req.nadded,
                                 .body = m.req.body,
                                 .body_len = m.req.body_len,
                                 .trigger = how->call.trigger,
                                 .trigger_name = how->trigger_name,
                                 .retry = how->retry,
                                 .idempotency_key = v != NULL ? key : NULL,
                                 .callback_url = cb_url};
    int rc = fl_async_submit(a, &r, on_accepted, req);
    if (rc == 0)
        return;
    if (rc == FL_ENOENT)
        fl_http_respond_error(req, 404, "function_not_found", "no function '%.80s'",
                              how->call.target.name);
    else if (rc == FL_ETOOBIG)
        fl_http_respond_error(req, 413, "body_too_large",
                              "an async invocation's body may be %zu bytes at most", a->max_body);
    else if (rc == FL_EAGAIN)
        fl_http_respond_error(req, 503, "starting",
                              "flintd is still loading its functions: try again");
    else if (rc == FL_EINVAL)
        fl_http_respond_error(req, 400, "bad_request",
                              "an async invocation's method, path, query and header names must "
                              "be UTF-8 text");
    else if (rc == FL_ENOTSUP)
        fl_http_respond_error(req, 501, "not_supported", "async calls of workflows come later");
    else if (rc == FL_ECANCELED)
        fl_http_respond_error(req, 503, "stopping", "flintd is stopping");
    else
        fl_http_respond_error(req, 503, "unavailable", "the invocation could not be accepted: %s",
                              fl_errname(rc));
}
