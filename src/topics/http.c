/* An HTTP request published as a topic's message (topics.h). */
#include "topics/topics.h"

#include "base/error.h"
#include "base/log.h"
#include "base/str.h"
#include "http/parse.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Headers that are not the message's, besides hop-by-hop ones and X-Flint-*. */
static const char *const dropped[] = {"host", "authorization", "proxy-authorization", "cookie",
                                      "nats-msg-id"};

static bool is_dropped(const struct fl_http_header *h)
{
    if (fl_http_is_hop_by_hop(h->name, h->name_len) ||
        (h->name_len >= 8 && strncasecmp(h->name, "x-flint-", 8) == 0))
        return true;
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
        if (fl_str_ieq(h->name, h->name_len, dropped[i]))
            return true;
    return false;
}

/* Add h to the object: a new name, or its value after the one already
 * there (under the name as first sent), joined with ", ". */
static int add_header(json_t *o, const struct fl_http_header *h)
{
    json_t *value = json_stringn(h->value, h->value_len);
    if (value == NULL)
        return 0; /* not UTF-8: not text a message header can carry */
    const char *key;
    json_t *old;
    json_object_foreach(o, key, old)
    {
        if (!fl_str_ieq(h->name, h->name_len, key))
            continue;
        size_t a = json_string_length(old), n = a + 2 + h->value_len;
        char *joined = malloc(n);
        if (joined == NULL) {
            json_decref(value);
            return FL_ENOMEM;
        }
        memcpy(joined, json_string_value(old), a);
        memcpy(joined + a, ", ", 2);
        memcpy(joined + a + 2, h->value, h->value_len);
        json_decref(value);
        int rc = json_object_set_new(o, key, json_stringn(joined, n));
        free(joined);
        return rc < 0 ? FL_ENOMEM : 0;
    }
    char name[256];
    if (h->name_len >= sizeof(name)) {
        json_decref(value);
        return 0; /* the server's header bound makes this moot */
    }
    memcpy(name, h->name, h->name_len);
    name[h->name_len] = '\0';
    return json_object_set_new(o, name, value) < 0 ? FL_ENOMEM : 0;
}

json_t *fl_topic_http_headers(const struct fl_http_request *req, const struct fl_http_header *added,
                              size_t nadded)
{
    json_t *o = json_object();
    int rc = o ? 0 : FL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < req->nheaders; i++)
        if (!is_dropped(&req->headers[i]))
            rc = add_header(o, &req->headers[i]);
    for (size_t i = 0; rc == 0 && i < nadded; i++)
        rc = add_header(o, &added[i]);
    if (rc < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

struct publish {
    struct fl_http_request *req;
    char topic[FL_TOPIC_NAME_MAX + 1];
};

static void on_published(int err, const struct fl_store_result *res, void *data)
{
    struct publish *p = data;
    struct fl_http_request *req = p->req;
    if (err == 0) {
        char body[FL_TOPIC_NAME_MAX + 96];
        json_t *answer = json_pack("{s:s, s:I, s:b}", "topic", p->topic, "seq",
                                   (json_int_t)res->seq, "duplicate", res->duplicate);
        size_t n = answer ? json_dumpb(answer, body, sizeof(body), JSON_COMPACT) : 0;
        json_decref(answer);
        static const struct fl_http_header type = {"Content-Type", 12, "application/json", 16};
        if (n == 0 || n > sizeof(body))
            fl_http_respond_error(req, 500, "internal", "out of memory");
        else
            fl_http_respond(req, 202, &type, 1, body, n);
    } else if (err == FL_ENOENT) {
        fl_http_respond_error(req, 404, "topic_not_found",
                              "topic '%s' does not exist (create it first: flint topic create)",
                              p->topic);
    } else if (err == FL_ETOOBIG) {
        fl_http_respond_error(req, 413, "too_large",
                              "the message (%zu bytes) is larger than the store keeps one",
                              req->body_len);
    } else if (err == FL_ENOMEM) {
        fl_http_respond_error(req, 500, "internal", "out of memory");
    } else if (err == FL_ENOSPC) {
        fl_http_respond_error(req, 507, "no_space",
                              "no space left on the disk of flintd's data directory: nothing was "
                              "stored");
    } else {
        FL_LOG_LIMITED(FL_LOG_ERROR, "topics", "cannot publish", "topic=%s err=%s", p->topic,
                       fl_errname(err));
        fl_http_respond_error(req, 503, "store_unavailable", "the store failed: %s",
                              fl_strerror(err));
    }
    free(p);
}

void fl_topic_publish_http(struct fl_store *store, struct fl_http_request *req,
                           const struct fl_topic_http *how)
{
    size_t id_len = 0;
    const char *id = fl_http_request_header(req, "x-flint-message-id", &id_len);
    if (id == NULL)
        id = fl_http_request_header(req, "nats-msg-id", &id_len);
    if (id_len > FL_TOPIC_ID_MAX) {
        fl_http_respond_error(req, 400, "bad_message_id",
                              "a message id is at most %d bytes, not %zu", FL_TOPIC_ID_MAX, id_len);
        return;
    }
    char msg_id[FL_TOPIC_ID_MAX + 1] = "";
    if (id != NULL)
        memcpy(msg_id, id, id_len), msg_id[id_len] = '\0';
    struct publish *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        fl_http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    p->req = req;
    fl_strlcpy(p->topic, how->topic, sizeof(p->topic));
    json_t *headers = fl_topic_http_headers(req, how->added, how->nadded);
    char *text = headers ? json_dumps(headers, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(headers);
    int rc = text ? fl_store_publish(store, how->topic, text, msg_id, req->body, req->body_len,
                                     on_published, p)
                  : FL_ENOMEM;
    free(text);
    if (rc < 0)
        on_published(rc, NULL, p); /* answers and frees p */
}
