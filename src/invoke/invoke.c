/*
 * The invoker (see invoke.h).
 *
 * A call is one allocation: struct fl_invoke followed by its copies (the
 * target's name, the method, the path, the path and query as one string,
 * the header arrays, the added headers' names and values). The body and
 * the caller's header names and values are borrowed.
 *
 * Every live call is on the invoker's `calls` list (to close); a call with
 * a deadline is also on `deadlines`, ordered by deadline, under one timer;
 * a call of a kind nobody serves waits on `early` for the loop to answer
 * it. Room watches are on `watches`; those due run from the same 0 ms
 * `soon` timer as `early`, never from inside a handler's callback.
 */
#include "invoke/invoke.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/queue.h"
#include "base/str.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fl_invoke {
    struct fl_invoker *inv;
    struct fl_invoke_request req; /* strings and arrays point into storage */
    const char *uri;
    char id[FL_UUID_STRLEN + 1];
    fl_invoke_cb cb;
    void *data;
    void *state; /* the handler's */
    uint64_t start_ns;
    struct fl_queue node;       /* in inv->calls */
    struct fl_queue dl_node;    /* in inv->deadlines, by deadline, if it has one */
    struct fl_queue early_node; /* in inv->early: answered from the loop */
    _Alignas(struct fl_http_header) char storage[];
};

struct fl_invoke_room {
    struct fl_invoke_target target;
    char name[FL_INVOKE_NAME_MAX + 1];
    fl_invoke_room_cb cb;
    void *data;
    bool due;
    struct fl_queue node; /* in inv->watches */
};

struct handler_slot {
    const struct fl_invoke_handler *h;
    void *data;
};

struct fl_invoker {
    uv_loop_t *loop;
    struct fl_metrics *metrics;
    struct fl_metric *calls_total, *call_seconds; /* cached families */
    struct handler_slot handlers[FL_INVOKE_NKINDS];
    struct fl_queue calls;     /* struct fl_invoke, every live call */
    struct fl_queue deadlines; /* struct fl_invoke with a deadline, earliest first */
    struct fl_queue early;     /* struct fl_invoke of a kind nobody serves, oldest first */
    struct fl_queue watches;   /* struct fl_invoke_room */
    uv_timer_t soon;           /* early calls and due watches */
    uv_timer_t deadline;       /* the first deadline */
    int handles_open;
    bool closing;
    void (*done)(void *data);
    void *done_data;
};

#define CALL_OF(q)     FL_QUEUE_DATA(q, struct fl_invoke, node)
#define DEADLINE_OF(q) FL_QUEUE_DATA(q, struct fl_invoke, dl_node)
#define EARLY_OF(q)    FL_QUEUE_DATA(q, struct fl_invoke, early_node)
#define WATCH_OF(q)    FL_QUEUE_DATA(q, struct fl_invoke_room, node)

/* ---- names and tables ---- */

static const char *const trigger_names[FL_TRIGGER_COUNT] = {"http", "api",  "async",
                                                            "mq",   "cron", "workflow"};
static const char *const kind_names[FL_INVOKE_NKINDS] = {"function", "workflow"};

static const struct {
    const char *name;
    int status;
} error_table[FL_INVOKE_NERRORS] = {
    [FL_INVOKE_OK] = {"ok", 200},
    [FL_INVOKE_NOT_FOUND] = {"not_found", 404},
    [FL_INVOKE_BUSY] = {"busy", 429},
    [FL_INVOKE_UNAVAILABLE] = {"unavailable", 503},
    [FL_INVOKE_FAILED] = {"failed", 500},
    [FL_INVOKE_TIMEOUT] = {"timeout", 504},
    [FL_INVOKE_CRASH] = {"crash", 502},
    [FL_INVOKE_BAD_RESPONSE] = {"bad_response", 502},
    [FL_INVOKE_TOO_LARGE] = {"too_large", 502},
    [FL_INVOKE_CANCELED] = {"canceled", 499},
};

const char *fl_invoke_trigger_name(enum fl_invoke_trigger t)
{
    return (unsigned)t < FL_TRIGGER_COUNT ? trigger_names[t] : "http";
}

const char *fl_invoke_kind_name(enum fl_invoke_kind k)
{
    return (unsigned)k < FL_INVOKE_NKINDS ? kind_names[k] : "unknown";
}

const char *fl_invoke_error_name(enum fl_invoke_error e)
{
    return (unsigned)e < FL_INVOKE_NERRORS ? error_table[e].name : "unknown";
}

int fl_invoke_error_status(enum fl_invoke_error e)
{
    return (unsigned)e < FL_INVOKE_NERRORS ? error_table[e].status : 500;
}

bool fl_invoke_capacity_full(const struct fl_invoke_capacity *c)
{
    return c->queued > 0 || c->running >= c->slots;
}

/* ---- the default handler: a kind nobody serves ---- */

static void on_soon(uv_timer_t *t);

static void soon_start(struct fl_invoker *inv)
{
    if (!inv->closing)
        uv_timer_start(&inv->soon, on_soon, 0, 0);
}

static bool is_early(const struct fl_invoke *c)
{
    return fl_queue_linked(&c->early_node);
}

static int unserved_start(void *data, struct fl_invoke *c)
{
    struct fl_invoker *inv = c->inv;
    fl_queue_insert_tail(&inv->early, &c->early_node);
    soon_start(inv);
    return 0;
}

static void unserved_cancel(void *data, struct fl_invoke *c)
{
    fl_queue_remove(&c->early_node);
}

static const struct fl_invoke_handler unserved = {.start = unserved_start,
                                                  .cancel = unserved_cancel};

/* ---- finishing ---- */

static void deadline_timer_update(struct fl_invoker *inv);

/* Take c off the deadlines, if it is on them. */
static void deadlines_unlink(struct fl_invoke *c)
{
    struct fl_invoker *inv = c->inv;
    if (!fl_queue_linked(&c->dl_node))
        return;
    bool first = fl_queue_first(&inv->deadlines) == &c->dl_node;
    fl_queue_remove(&c->dl_node);
    if (first)
        deadline_timer_update(inv);
}

/* Calls of functions are counted by function and status, as they always
 * were: flint_invocations_total and flint_invocation_seconds. */
static void observe(struct fl_invoke *c, int status)
{
    struct fl_invoker *inv = c->inv;
    if (inv->metrics == NULL || c->req.target.kind != FL_INVOKE_FUNCTION)
        return;
    static const char *const labels[] = {"function", "code"};
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    if (inv->calls_total == NULL)
        inv->calls_total =
            fl_metrics_counter(inv->metrics, "flint_invocations_total",
                               "Synchronous invocations by function and HTTP status.", 2, labels);
    if (inv->call_seconds == NULL)
        inv->call_seconds = fl_metrics_histogram(
            inv->metrics, "flint_invocation_seconds", "Time from request to response, by function.",
            1, labels, sizeof(bounds) / sizeof(bounds[0]), bounds);
    char code[FL_U64_CHARS];
    fl_fmt_u64(code, (uint64_t)(status > 0 ? status : 0));
    if (inv->calls_total != NULL)
        fl_metric_add(inv->calls_total, (const char *[]){c->req.target.name, code}, 1);
    if (inv->call_seconds != NULL)
        fl_metric_observe(inv->call_seconds, (const char *[]){c->req.target.name},
                          (double)(fl_clock_mono_ns() - c->start_ns) / 1e9);
}

/* Hand o to the caller and free the call. */
static void complete(struct fl_invoke *c, const struct fl_invoke_outcome *o)
{
    fl_queue_remove(&c->node);
    deadlines_unlink(c);
    fl_queue_remove(&c->early_node);
    observe(c, o->status);
    c->cb(o, c->data);
    free(c);
}

/* Finish c with an error of the invoker's own, as JSON. */
static void finish_error(struct fl_invoke *c, enum fl_invoke_error error, const char *code,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void finish_error(struct fl_invoke *c, enum fl_invoke_error error, const char *code,
                         const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    struct fl_invoke_outcome o = {.error = error, .code = code, .message = message};
    fl_invoke_finish(c, &o);
}

void fl_invoke_finish(struct fl_invoke *c, const struct fl_invoke_outcome *outcome)
{
    struct fl_invoke_outcome o = *outcome;
    o.invocation_id = c->id;
    if (o.error == FL_INVOKE_OK || o.body != NULL) {
        complete(c, &o);
        return;
    }
    /* the JSON error, as the executor writes its own */
    o.code = o.code ? o.code : fl_invoke_error_name(o.error);
    o.message = o.message ? o.message : "";
    o.status = fl_invoke_error_status(o.error);
    json_t *doc = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", o.code, "message", o.message,
                            "invocation", c->id);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    o.body = text ? text : "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
    o.body_len = strlen(o.body);
    struct fl_http_header headers[2] = {
        {"Content-Type", 12, "application/json", 16},
        {"X-Flint-Invocation-Id", 21, c->id, strlen(c->id)},
    };
    o.headers = headers;
    o.nheaders = 2;
    complete(c, &o);
    free(text);
}

void fl_invoke_cancel(struct fl_invoke *c)
{
    struct fl_invoker *inv = c->inv;
    struct handler_slot *s = &inv->handlers[c->req.target.kind];
    if (is_early(c))
        fl_queue_remove(&c->early_node);
    else
        s->h->cancel(s->data, c);
    /* nobody reads the answer: the caller is gone */
    struct fl_invoke_outcome o = {.error = FL_INVOKE_CANCELED,
                                  .status = fl_invoke_error_status(FL_INVOKE_CANCELED),
                                  .body = "",
                                  .code = "canceled",
                                  .message = "the caller went away",
                                  .invocation_id = c->id};
    complete(c, &o);
}

/* ---- deadlines ---- */

static void on_deadline(uv_timer_t *t)
{
    struct fl_invoker *inv = t->data;
    uint64_t now = fl_clock_mono_ns();
    struct fl_queue *q;
    while ((q = fl_queue_first(&inv->deadlines)) != NULL &&
           DEADLINE_OF(q)->req.deadline_ns <= now) {
        struct fl_invoke *c = DEADLINE_OF(q);
        deadlines_unlink(c);
        struct handler_slot *s = &inv->handlers[c->req.target.kind];
        if (is_early(c))
            fl_queue_remove(&c->early_node);
        else
            s->h->cancel(s->data, c);
        finish_error(c, FL_INVOKE_TIMEOUT, "deadline_exceeded",
                     "the call of %s '%s' passed its caller's deadline",
                     fl_invoke_kind_name(c->req.target.kind), c->req.target.name);
    }
    deadline_timer_update(inv);
}

static void deadline_timer_update(struct fl_invoker *inv)
{
    if (inv->closing)
        return;
    struct fl_queue *first = fl_queue_first(&inv->deadlines);
    if (first == NULL) {
        uv_timer_stop(&inv->deadline);
        return;
    }
    uint64_t due = DEADLINE_OF(first)->req.deadline_ns, now = fl_clock_mono_ns();
    uv_timer_start(&inv->deadline, on_deadline, due > now ? (due - now + 999999) / 1000000 : 0, 0);
}

/* Keep deadlines in order; most come in order (now + a fixed wait), so the
 * walk from the tail is short. */
static void deadlines_insert(struct fl_invoke *c)
{
    struct fl_invoker *inv = c->inv;
    struct fl_queue *after = inv->deadlines.prev; /* the head itself: insert first */
    while (after != &inv->deadlines && DEADLINE_OF(after)->req.deadline_ns > c->req.deadline_ns)
        after = after->prev;
    fl_queue_insert_head(after, &c->dl_node); /* right after `after` */
    if (fl_queue_first(&inv->deadlines) == &c->dl_node)
        deadline_timer_update(inv);
}

/* ---- the soon timer: early answers and due watches ---- */

static void on_soon(uv_timer_t *t)
{
    struct fl_invoker *inv = t->data;
    struct fl_queue *q;
    while ((q = fl_queue_first(&inv->early)) != NULL) {
        struct fl_invoke *c = EARLY_OF(q);
        fl_queue_remove(q);
        const char *kind = fl_invoke_kind_name(c->req.target.kind);
        char code[48];
        snprintf(code, sizeof(code), "%s_not_found", kind);
        finish_error(c, FL_INVOKE_NOT_FOUND, code, "%s '%s' not found: %ss are not served yet",
                     kind, c->req.target.name, kind);
    }
    for (;;) {
        /* from the start each time: a callback may watch or unwatch */
        struct fl_invoke_room *w = NULL;
        struct fl_queue *tmp;
        FL_QUEUE_FOREACH(q, tmp, &inv->watches)
        {
            if (WATCH_OF(q)->due) {
                w = WATCH_OF(q);
                break;
            }
        }
        if (w == NULL)
            break;
        struct fl_invoke_target target = w->target;
        fl_invoke_room_cb cb = w->cb;
        void *data = w->data;
        char name[FL_INVOKE_NAME_MAX + 1];
        memcpy(name, w->name, sizeof(name));
        target.name = name;
        fl_invoker_unwatch_room(inv, w);
        cb(data, &target); /* may watch again */
    }
}

/* ---- life cycle ---- */

int fl_invoker_new(uv_loop_t *loop, struct fl_metrics *metrics, struct fl_invoker **out)
{
    struct fl_invoker *inv = calloc(1, sizeof(*inv));
    if (inv == NULL)
        return FL_ENOMEM;
    inv->loop = loop;
    inv->metrics = metrics;
    fl_queue_init(&inv->calls);
    fl_queue_init(&inv->deadlines);
    fl_queue_init(&inv->early);
    fl_queue_init(&inv->watches);
    for (int k = 0; k < FL_INVOKE_NKINDS; k++)
        inv->handlers[k] = (struct handler_slot){&unserved, inv};
    uv_timer_init(loop, &inv->soon);
    uv_timer_init(loop, &inv->deadline);
    inv->soon.data = inv->deadline.data = inv;
    inv->handles_open = 2;
    *out = inv;
    return 0;
}

static void handle_closed(uv_handle_t *h)
{
    struct fl_invoker *inv = h->data;
    if (--inv->handles_open > 0)
        return;
    void (*done)(void *) = inv->done;
    void *data = inv->done_data;
    free(inv);
    if (done != NULL)
        done(data);
}

void fl_invoker_close(struct fl_invoker *inv, void (*done)(void *data), void *data)
{
    inv->done = done;
    inv->done_data = data;
    inv->closing = true; /* a caller answered below cannot start another call */
    struct fl_queue *q;
    while ((q = fl_queue_first(&inv->calls)) != NULL) {
        struct fl_invoke *c = CALL_OF(q);
        struct handler_slot *s = &inv->handlers[c->req.target.kind];
        if (is_early(c))
            fl_queue_remove(&c->early_node);
        else
            s->h->cancel(s->data, c);
        finish_error(c, FL_INVOKE_UNAVAILABLE, "stopping", "flintd is stopping");
    }
    while ((q = fl_queue_first(&inv->watches)) != NULL)
        fl_invoker_unwatch_room(inv, WATCH_OF(q));
    uv_close((uv_handle_t *)&inv->soon, handle_closed);
    uv_close((uv_handle_t *)&inv->deadline, handle_closed);
}

int fl_invoker_register(struct fl_invoker *inv, enum fl_invoke_kind kind,
                        const struct fl_invoke_handler *h, void *data)
{
    if ((unsigned)kind >= FL_INVOKE_NKINDS || h == NULL || h->start == NULL || h->cancel == NULL)
        return FL_EINVAL;
    inv->handlers[kind] = (struct handler_slot){h, data};
    return 0;
}

/* ---- starting a call ---- */

static size_t added_bytes(const struct fl_invoke_request *r)
{
    size_t bytes = 0;
    for (size_t i = 0; i < r->nadded; i++)
        bytes += r->added[i].name_len + r->added[i].value_len + 2;
    return bytes;
}

static char *copy_string(char **p, const char *s, size_t len)
{
    char *to = *p;
    memcpy(to, s, len);
    to[len] = '\0';
    *p += len + 1;
    return to;
}

int fl_invoke_start(struct fl_invoker *inv, const struct fl_invoke_request *req, fl_invoke_cb cb,
                    void *data, struct fl_invoke **out)
{
    const struct fl_invoke_request *r = req;
    if (inv->closing)
        return FL_ECANCELED;
    if ((unsigned)r->target.kind >= FL_INVOKE_NKINDS || r->target.name == NULL ||
        r->method == NULL || r->path == NULL)
        return FL_EINVAL;
    size_t name_len = strlen(r->target.name);
    if (name_len == 0 || name_len > FL_INVOKE_NAME_MAX ||
        (r->invocation_id != NULL && strlen(r->invocation_id) > FL_UUID_STRLEN))
        return FL_EINVAL;
    if (r->nadded > FL_INVOKE_MAX_ADDED)
        return FL_ETOOBIG;
    size_t extra_bytes = added_bytes(r);
    if (extra_bytes > FL_INVOKE_ADDED_BYTES)
        return FL_ETOOBIG;
    size_t nheaders = r->nheaders < FL_INVOKE_MAX_HEADERS ? r->nheaders : FL_INVOKE_MAX_HEADERS;
    size_t trigger_len = r->trigger_name != NULL ? strlen(r->trigger_name) : 0;
    if (trigger_len > FL_INVOKE_TRIGGER_MAX)
        return FL_EINVAL;
    size_t method_len = strlen(r->method), path_len = strlen(r->path);
    size_t query_len = r->query ? strlen(r->query) : 0;
    size_t uri_len = path_len + (r->query ? 1 + query_len : 0);
    size_t bytes = (nheaders + r->nadded) * sizeof(struct fl_http_header) + name_len + 1 +
                   method_len + 1 + path_len + 1 + uri_len + 1 + extra_bytes + trigger_len + 1;
    struct fl_invoke *c = malloc(sizeof(*c) + bytes);
    if (c == NULL)
        return FL_ENOMEM;
    memset(c, 0, sizeof(*c));
    fl_queue_init(&c->node);
    fl_queue_init(&c->dl_node);
    fl_queue_init(&c->early_node);
    c->inv = inv;
    c->cb = cb;
    c->data = data;
    c->start_ns = fl_clock_mono_ns();
    c->req = *r;
    struct fl_http_header *headers = (struct fl_http_header *)(void *)c->storage;
    struct fl_http_header *added = headers + nheaders;
    if (nheaders > 0)
        memcpy(headers, r->headers, nheaders * sizeof(*headers));
    c->req.headers = headers;
    c->req.nheaders = nheaders;
    char *p = (char *)(added + r->nadded);
    for (size_t i = 0; i < r->nadded; i++) {
        added[i].name = copy_string(&p, r->added[i].name, r->added[i].name_len);
        added[i].name_len = r->added[i].name_len;
        added[i].value = copy_string(&p, r->added[i].value, r->added[i].value_len);
        added[i].value_len = r->added[i].value_len;
    }
    c->req.added = added;
    c->req.target.name = copy_string(&p, r->target.name, name_len);
    c->req.method = copy_string(&p, r->method, method_len);
    c->req.path = copy_string(&p, r->path, path_len);
    c->req.trigger_name =
        r->trigger_name != NULL ? copy_string(&p, r->trigger_name, trigger_len) : NULL;
    char *uri = p;
    memcpy(p, r->path, path_len);
    p += path_len;
    if (r->query != NULL) {
        *p++ = '?';
        c->req.query = copy_string(&p, r->query, query_len);
    } else {
        *p++ = '\0';
    }
    c->uri = uri;
    c->req.attempt = r->attempt > 0 ? r->attempt : 1;
    if (r->invocation_id != NULL)
        fl_strlcpy(c->id, r->invocation_id, sizeof(c->id));
    else
        fl_uuid7(c->id);
    c->req.invocation_id = c->id;
    fl_queue_insert_head(&inv->calls, &c->node);
    if (r->deadline_ns != 0)
        deadlines_insert(c);
    struct handler_slot *s = &inv->handlers[r->target.kind];
    int rc = s->h->start(s->data, c);
    if (rc < 0) {
        fl_queue_remove(&c->node);
        deadlines_unlink(c);
        free(c);
        return rc;
    }
    if (out != NULL)
        *out = c;
    return 0;
}

const struct fl_invoke_request *fl_invoke_request_of(const struct fl_invoke *c)
{
    return &c->req;
}

const char *fl_invoke_uri(const struct fl_invoke *c)
{
    return c->uri;
}

const char *fl_invoke_id(const struct fl_invoke *c)
{
    return c->id;
}

void fl_invoke_set_state(struct fl_invoke *c, void *state)
{
    c->state = state;
}

void *fl_invoke_state(const struct fl_invoke *c)
{
    return c->state;
}

/* ---- capacity ---- */

int fl_invoker_capacity(struct fl_invoker *inv, const struct fl_invoke_target *t,
                        struct fl_invoke_capacity *out)
{
    if ((unsigned)t->kind >= FL_INVOKE_NKINDS || t->name == NULL)
        return FL_EINVAL;
    struct handler_slot *s = &inv->handlers[t->kind];
    if (s->h->capacity == NULL)
        return s->h == &unserved ? FL_ENOENT : FL_ENOTSUP;
    memset(out, 0, sizeof(*out));
    return s->h->capacity(s->data, t->name, out);
}

int fl_invoker_watch_room(struct fl_invoker *inv, const struct fl_invoke_target *t,
                          fl_invoke_room_cb cb, void *data, struct fl_invoke_room **out)
{
    if ((unsigned)t->kind >= FL_INVOKE_NKINDS || t->name == NULL ||
        strlen(t->name) > FL_INVOKE_NAME_MAX || cb == NULL)
        return FL_EINVAL;
    if (inv->closing)
        return FL_ECANCELED;
    struct fl_invoke_room *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return FL_ENOMEM;
    fl_strlcpy(w->name, t->name, sizeof(w->name));
    w->target = (struct fl_invoke_target){t->kind, w->name};
    w->cb = cb;
    w->data = data;
    struct fl_invoke_capacity cap;
    /* the handler reports room only for a target it said was full: ask it */
    w->due = fl_invoker_capacity(inv, t, &cap) < 0 || !fl_invoke_capacity_full(&cap);
    fl_queue_insert_head(&inv->watches, &w->node);
    if (w->due)
        soon_start(inv);
    if (out != NULL)
        *out = w;
    return 0;
}

void fl_invoker_unwatch_room(struct fl_invoker *inv, struct fl_invoke_room *w)
{
    fl_queue_remove(&w->node);
    free(w);
}

void fl_invoker_room(struct fl_invoker *inv, const struct fl_invoke_target *t)
{
    bool any = false;
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &inv->watches)
    {
        struct fl_invoke_room *w = WATCH_OF(q);
        if (w->target.kind == t->kind && strcmp(w->name, t->name) == 0) {
            w->due = true;
            any = true;
        }
    }
    if (any)
        soon_start(inv);
}
