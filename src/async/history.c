/*
 * Folding an invocation's events (history.h) into its state and the API's
 * JSON. Every event is checked for the fields it must have; an event that
 * is not understood is skipped and reported (FL_ECORRUPT), never a reason
 * to lose the rest.
 */
#include "async/history.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/str.h"
#include "http/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[FL_INV_NSTATUS] = {
    [FL_INV_QUEUED] = "queued",       [FL_INV_RUNNING] = "running", [FL_INV_RETRYING] = "retrying",
    [FL_INV_SUCCEEDED] = "succeeded", [FL_INV_FAILED] = "failed",   [FL_INV_DEAD] = "dead",
    [FL_INV_CANCELED] = "canceled",
};

const char *fl_inv_status_name(enum fl_inv_status s)
{
    return s < FL_INV_NSTATUS ? status_names[s] : "unknown";
}

int fl_inv_status_parse(const char *name)
{
    for (int i = 0; i < FL_INV_NSTATUS; i++)
        if (strcmp(status_names[i], name) == 0)
            return i;
    return -1;
}

/* "1s", "5m", "250ms": the shortest exact form of a duration. */
static json_t *duration(int64_t ms)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{3600000, "h"}, {60000, "m"}, {1000, "s"}};
    char out[32];
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (ms > 0 && ms % units[i].ms == 0) {
            snprintf(out, sizeof(out), "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return json_string(out);
        }
    snprintf(out, sizeof(out), "%lldms", (long long)ms);
    return json_string(out);
}

static json_t *timestamp(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char out[40];
    return json_string(fl_clock_format(ms, out, sizeof(out)));
}

static int64_t int_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static const char *str_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static const struct {
    const char *name;
    enum fl_inv_status status;
} ends[] = {{"succeeded", FL_INV_SUCCEEDED},
            {"failed", FL_INV_FAILED},
            {"dead", FL_INV_DEAD},
            {"canceled", FL_INV_CANCELED}};

static void end(struct fl_inv *inv, enum fl_inv_status s, int64_t ts)
{
    if (inv->ended)
        return;
    inv->status = s;
    inv->ended = true;
    inv->ended_ms = ts;
    json_object_set_new(inv->json, "nextAttemptAt", json_null());
}

static int on_queued(struct fl_inv *inv, json_t *d, int64_t ts)
{
    const char *fn = str_of(d, "function");
    if (fn == NULL || strlen(fn) > FL_NAME_MAX)
        return FL_ECORRUPT;
    fl_strlcpy(inv->function, fn, sizeof(inv->function));
    inv->created_ms = int_of(d, "acceptedAt") > 0 ? int_of(d, "acceptedAt") : ts;
    json_t *r = json_object_get(d, "retry");
    if (json_is_object(r)) {
        inv->retry = (struct fl_retry_policy){(uint32_t)int_of(r, "maxAttempts"),
                                              int_of(r, "backoff"), int_of(r, "maxBackoff")};
        inv->has_retry = inv->retry.max_attempts > 0;
        json_object_set_new(inv->json, "retry",
                            json_pack("{s:i,s:o,s:o}", "maxAttempts",
                                      (json_int_t)inv->retry.max_attempts, "backoff",
                                      duration(inv->retry.backoff_ms), "maxBackoff",
                                      duration(inv->retry.max_backoff_ms)));
    }
    const char *topic = str_of(d, "topic"), *consumer = str_of(d, "consumer");
    if (topic != NULL && consumer != NULL && strlen(topic) < sizeof(inv->topic) &&
        strlen(consumer) < sizeof(inv->consumer)) {
        fl_strlcpy(inv->topic, topic, sizeof(inv->topic));
        fl_strlcpy(inv->consumer, consumer, sizeof(inv->consumer));
    } else {
        snprintf(inv->topic, sizeof(inv->topic), "async/%s", fn);
        fl_strlcpy(inv->consumer, "run", sizeof(inv->consumer));
    }
    const char *cb = str_of(d, "callback"), *idem = str_of(d, "idem");
    if (cb != NULL && (inv->callback = strdup(cb)) == NULL)
        return FL_ENOMEM;
    if (idem != NULL && (inv->idem = strdup(idem)) == NULL)
        return FL_ENOMEM;
    json_object_set(inv->json, "function", json_object_get(d, "function"));
    json_t *trigger = json_object_get(d, "trigger");
    json_object_set_new(inv->json, "trigger",
                        json_is_string(trigger) ? json_incref(trigger) : json_string("api"));
    json_t *req = json_object();
    static const char *const fields[] = {"method", "path", "query", "headers"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        json_t *v = json_object_get(d, fields[i]);
        json_object_set_new(req, fields[i], v != NULL ? json_incref(v) : json_null());
    }
    json_object_set_new(inv->json, "request", req);
    if (cb != NULL)
        json_object_set_new(
            inv->json, "callback",
            json_pack("{s:s,s:s,s:i}", "url", cb, "status", "pending", "attempts", 0));
    return 0;
}

static int on_attempt(struct fl_inv *inv, json_t *d, int64_t ts)
{
    json_int_t n = int_of(d, "attempt");
    if (n < 1)
        return FL_ECORRUPT;
    json_t *lost = json_object_get(d, "lost");
    size_t i;
    json_t *k;
    json_t *attempts = json_object_get(inv->json, "attempts");
    json_array_foreach(lost, i, k)
    {
        if (json_is_integer(k))
            json_array_append_new(
                attempts, json_pack("{s:I,s:n,s:n,s:i,s:s}", "attempt", json_integer_value(k),
                                    "startedAt", "durationMs", "status", 0, "error",
                                    "lost: flintd stopped or lost track of the attempt"));
    }
    json_t *a =
        json_pack("{s:I,s:o,s:I,s:I}", "attempt", n, "startedAt", timestamp(int_of(d, "startedAt")),
                  "durationMs", int_of(d, "durationMs"), "status", int_of(d, "status"));
    const char *error = str_of(d, "error");
    if (error != NULL)
        json_object_set_new(a, "error", json_string(error));
    json_array_append_new(attempts, a);
    if ((uint32_t)n > inv->attempts)
        inv->attempts = (uint32_t)n;
    if (json_integer_value(json_object_get(d, "seq")) > 0)
        inv->seq = (uint64_t)int_of(d, "seq");
    json_t *result = json_object_get(d, "result");
    if (json_is_object(result))
        json_object_set(inv->json, "result", result);
    const char *e = str_of(d, "end");
    json_object_set_new(inv->json, "nextAttemptAt", json_null());
    if (e == NULL) {
        if (!inv->ended) {
            inv->status = FL_INV_RETRYING;
            json_object_set_new(inv->json, "nextAttemptAt", timestamp(int_of(d, "nextAt")));
        }
        return 0;
    }
    for (i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
        if (strcmp(e, ends[i].name) == 0) {
            end(inv, ends[i].status, ts);
            return 0;
        }
    return FL_ECORRUPT;
}

static void on_callback(struct fl_inv *inv, json_t *d)
{
    json_t *cb = json_object_get(inv->json, "callback");
    if (!json_is_object(cb))
        return;
    static const char *const fields[] = {"status", "attempts", "httpStatus", "error"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        json_t *v = json_object_get(d, fields[i]);
        if (v != NULL)
            json_object_set(cb, fields[i], v);
        else if (i >= 2)
            json_object_del(cb, fields[i]);
    }
}

/* One event; 0 or FL_ECORRUPT (skipped). */
static int fold_one(struct fl_inv *inv, const struct fl_record *r)
{
    json_t *d = json_loadb(r->data, r->len, 0, NULL);
    if (!json_is_object(d)) {
        json_decref(d);
        return FL_ECORRUPT;
    }
    int rc = 0;
    if (r->ts_ms > inv->updated_ms)
        inv->updated_ms = r->ts_ms;
    if (strcmp(r->type, "queued") == 0) {
        rc = on_queued(inv, d, r->ts_ms);
    } else if (strcmp(r->type, "attempt") == 0) {
        rc = on_attempt(inv, d, r->ts_ms);
    } else if (strcmp(r->type, "canceled") == 0) {
        inv->cancel_asked = true;
        end(inv, FL_INV_CANCELED, r->ts_ms);
    } else if (strcmp(r->type, "redriven") == 0) {
        inv->base = (uint32_t)int_of(d, "attempts");
        inv->ended = false;
        inv->ended_ms = 0;
        inv->purged = false;
        inv->status = FL_INV_QUEUED;
        json_object_del(inv->json, "result");
    } else if (strcmp(r->type, "undriven") == 0) {
        inv->ended = false;
        end(inv, FL_INV_DEAD, r->ts_ms);
    } else if (strcmp(r->type, "purged") == 0) {
        inv->purged = true;
        json_object_set_new(inv->json, "purgedAt", timestamp(r->ts_ms));
    } else if (strcmp(r->type, "callback") == 0) {
        on_callback(inv, d);
    } else {
        rc = FL_ECORRUPT;
    }
    json_decref(d);
    return rc;
}

int fl_inv_fold(const char *id, const struct fl_record *events, size_t n, struct fl_inv *out)
{
    memset(out, 0, sizeof(*out));
    if (n == 0)
        return FL_ENOENT;
    fl_strlcpy(out->id, id, sizeof(out->id));
    out->status = FL_INV_QUEUED;
    out->json = json_pack("{s:s,s:[],s:n}", "id", id, "attempts", "result");
    if (out->json == NULL)
        return FL_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int r = fold_one(out, &events[i]);
        if (r == FL_ENOMEM)
            return r;
        if (r < 0)
            rc = r;
    }
    if (out->created_ms == 0)
        out->created_ms = events[0].ts_ms;
    json_object_set_new(out->json, "status", json_string(fl_inv_status_name(out->status)));
    json_object_set_new(out->json, "createdAt", timestamp(out->created_ms));
    json_object_set_new(out->json, "updatedAt", timestamp(out->updated_ms));
    json_object_set_new(out->json, "endedAt", timestamp(out->ended_ms));
    if (json_object_get(out->json, "function") == NULL)
        json_object_set_new(out->json, "function", json_string(out->function));
    return rc;
}

void fl_inv_release(struct fl_inv *inv)
{
    json_decref(inv->json);
    json_decref(inv->queued);
    free(inv->callback);
    free(inv->idem);
    memset(inv, 0, sizeof(*inv));
}

/* Set header name (name_len bytes) in o by its lower-case name, cut at
 * 255 bytes, to v (a new reference, or NULL: not_text, or nothing). */
static void set_header(json_t *o, const char *name, size_t name_len, json_t *v,
                       const char *not_text)
{
    char lower[256];
    size_t len = name_len < sizeof(lower) - 1 ? name_len : sizeof(lower) - 1;
    for (size_t k = 0; k < len; k++) {
        char c = name[k];
        lower[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    lower[len] = '\0';
    if (v == NULL && not_text != NULL)
        v = json_string(not_text);
    if (v != NULL)
        json_object_set_new(o, lower, v);
}

json_t *fl_inv_headers_json(const struct fl_http_header *h, size_t n, const char *not_text)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < n; i++)
        set_header(o, h[i].name, h[i].name_len, json_stringn(h[i].value, h[i].value_len), not_text);
    return o;
}

/* A message's headers ([name, value] or [name, base64, true]) as an
 * invocation shows them, as fl_inv_headers_json(..., "(not text)"). */
static json_t *message_headers(json_t *arr)
{
    json_t *o = json_object(), *h;
    size_t i;
    json_array_foreach(arr, i, h)
    {
        json_t *name = json_array_get(h, 0), *value = json_array_get(h, 1);
        if (o == NULL || !json_is_string(name) || !json_is_string(value))
            continue;
        bool text = !json_is_true(json_array_get(h, 2));
        set_header(o, json_string_value(name), json_string_length(name),
                   text ? json_incref(value) : NULL, "(not text)");
    }
    return o;
}

/* A literal (a C string constant) into out. */
#define APPEND_LITERAL(out, lit) fl_buf_append(out, lit, sizeof(lit) - 1)

static int append_int(struct fl_buf *out, int64_t v)
{
    char digits[FL_U64_CHARS + 1];
    size_t n = 0;
    if (v < 0)
        digits[n++] = '-';
    n += fl_fmt_u64(digits + n, v < 0 ? -(uint64_t)v : (uint64_t)v);
    return fl_buf_append(out, digits, n);
}

/* [[name, value], ..., [name, base64 of value, true]], hop-by-hop headers
 * left out */
static int append_headers(struct fl_buf *out, const struct fl_http_header *h, size_t n)
{
    int rc = fl_buf_appendc(out, '[');
    bool first = true;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (fl_http_is_hop_by_hop(h[i].name, h[i].name_len))
            continue;
        rc = first ? fl_buf_appendc(out, '[') : APPEND_LITERAL(out, ",[");
        first = false;
        if (rc == 0)
            rc = fl_buf_append_json_string(out, h[i].name, h[i].name_len);
        if (rc == 0)
            rc = fl_buf_appendc(out, ',');
        if (rc < 0)
            break;
        rc = fl_buf_append_json_string(out, h[i].value, h[i].value_len);
        if (rc == FL_EINVAL) {
            /* not text: base64 (plain ASCII, nothing to escape) */
            rc = fl_buf_grow(out, FL_BASE64_LEN(h[i].value_len) + 8);
            if (rc == 0) {
                out->data[out->len++] = '"';
                out->len += fl_base64_encode(out->data + out->len, h[i].value, h[i].value_len);
                rc = APPEND_LITERAL(out, "\",true]");
            }
        } else if (rc == 0) {
            rc = fl_buf_appendc(out, ']');
        }
    }
    return rc < 0 ? rc : fl_buf_appendc(out, ']');
}

/* What m's text will take at least (without escapes), to grow out once. */
static size_t message_size(const struct fl_inv_message *m)
{
    size_t n = 200 + strlen(m->method) + strlen(m->path) + strlen(m->trigger_name);
    n += (m->query ? strlen(m->query) : 0) + (m->callback ? strlen(m->callback) : 0) +
         (m->idem ? strlen(m->idem) : 0);
    for (size_t i = 0; i < m->nheaders; i++)
        n += m->headers[i].name_len + m->headers[i].value_len + 8;
    for (size_t i = 0; i < m->nadded; i++)
        n += m->added[i].name_len + m->added[i].value_len + 8;
    return n;
}

int fl_inv_message_write(struct fl_buf *out, const struct fl_inv_message *m)
{
    size_t start = out->len;
    int rc = fl_buf_grow(out, message_size(m));
    if (rc == FL_ETOOBIG)
        rc = 0; /* escapes aside, it may still fit: the appends say */
    if (rc == 0)
        rc = APPEND_LITERAL(out, "{\"method\":");
    if (rc == 0)
        rc = fl_buf_append_json_string(out, m->method, strlen(m->method));
    if (rc == 0)
        rc = APPEND_LITERAL(out, ",\"path\":");
    if (rc == 0)
        rc = fl_buf_append_json_string(out, m->path, strlen(m->path));
    if (rc == 0 && m->query != NULL)
        rc = APPEND_LITERAL(out, ",\"query\":");
    if (rc == 0 && m->query != NULL)
        rc = fl_buf_append_json_string(out, m->query, strlen(m->query));
    if (rc == 0)
        rc = APPEND_LITERAL(out, ",\"headers\":");
    if (rc == 0)
        rc = append_headers(out, m->headers, m->nheaders);
    if (rc == 0 && m->nadded > 0)
        rc = APPEND_LITERAL(out, ",\"added\":");
    if (rc == 0 && m->nadded > 0)
        rc = append_headers(out, m->added, m->nadded);
    if (rc == 0)
        rc = APPEND_LITERAL(out, ",\"trigger\":");
    if (rc == 0)
        rc = append_int(out, m->trigger);
    if (rc == 0)
        rc = APPEND_LITERAL(out, ",\"triggerName\":");
    if (rc == 0)
        rc = fl_buf_append_json_string(out, m->trigger_name, strlen(m->trigger_name));
    if (rc == 0)
        rc = APPEND_LITERAL(out, ",\"retry\":{\"maxAttempts\":");
    if (rc == 0)
        rc = append_int(out, m->retry.max_attempts);
    if (rc == 0)
        rc = APPEND_LITERAL(out, ",\"backoff\":");
    if (rc == 0)
        rc = append_int(out, m->retry.backoff_ms);
    if (rc == 0)
        rc = APPEND_LITERAL(out, ",\"maxBackoff\":");
    if (rc == 0)
        rc = append_int(out, m->retry.max_backoff_ms);
    if (rc == 0)
        rc = fl_buf_appendc(out, '}');
    if (rc == 0 && m->callback != NULL)
        rc = APPEND_LITERAL(out, ",\"callback\":");
    if (rc == 0 && m->callback != NULL)
        rc = fl_buf_append_json_string(out, m->callback, strlen(m->callback));
    if (rc == 0 && m->idem != NULL)
        rc = APPEND_LITERAL(out, ",\"idem\":");
    if (rc == 0 && m->idem != NULL)
        rc = fl_buf_append_json_string(out, m->idem, strlen(m->idem));
    if (rc == 0)
        rc = fl_buf_appendc(out, '}');
    if (rc < 0 && out->data != NULL) {
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}

json_t *fl_inv_queued_event(const char *function, json_t *msg, int64_t accepted_ms)
{
    json_t *method = json_object_get(msg, "method"), *path = json_object_get(msg, "path");
    if (!json_is_string(method) || !json_is_string(path))
        return NULL;
    json_t *e = json_pack("{s:s,s:O,s:O}", "function", function, "method", method, "path", path);
    const char *trigger = json_string_value(json_object_get(msg, "triggerName"));
    if (e == NULL ||
        json_object_set_new(e, "trigger", json_string(trigger != NULL ? trigger : "api")) < 0 ||
        json_object_set_new(e, "headers", message_headers(json_object_get(msg, "headers"))) < 0 ||
        json_object_set_new(e, "acceptedAt", json_integer(accepted_ms)) < 0) {
        json_decref(e);
        return NULL;
    }
    /* what the message holds as the event holds it, null when absent */
    static const char *const same[] = {"query", "retry", "callback", "idem"};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        json_t *v = json_object_get(msg, same[i]);
        if (json_object_set_new(e, same[i], v != NULL ? json_incref(v) : json_null()) < 0) {
            json_decref(e);
            return NULL;
        }
    }
    return e;
}

int fl_inv_fold_message(const char *id, const char *function, json_t *msg, uint64_t seq,
                        int64_t accepted_ms, struct fl_inv *out)
{
    memset(out, 0, sizeof(*out));
    json_t *queued = fl_inv_queued_event(function, msg, accepted_ms);
    char *text = queued != NULL ? json_dumps(queued, JSON_COMPACT) : NULL;
    if (text == NULL) {
        bool request = json_is_string(json_object_get(msg, "method")) &&
                       json_is_string(json_object_get(msg, "path"));
        json_decref(queued);
        return request ? FL_ENOMEM : FL_ECORRUPT;
    }
    const struct fl_record r = {.key = "",
                                .type = "queued",
                                .data = text,
                                .len = strlen(text),
                                .headers = "{}",
                                .reason = "",
                                .seq = 1,
                                .ts_ms = accepted_ms};
    int rc = fl_inv_fold(id, &r, 1, out);
    free(text);
    if (rc < 0) {
        fl_inv_release(out);
        json_decref(queued);
        return rc;
    }
    out->seq = seq;
    out->queued = queued;
    return 0;
}

json_t *fl_inv_summary(const struct fl_inv *inv)
{
    json_t *s = json_object();
    static const char *const fields[] = {"id",        "function",  "trigger", "status",
                                         "createdAt", "updatedAt", "endedAt", "nextAttemptAt"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        json_t *v = json_object_get(inv->json, fields[i]);
        if (v != NULL)
            json_object_set(s, fields[i], v);
    }
    json_object_set_new(s, "attempts", json_integer(inv->attempts));
    return s;
}
