/* A message-queue trigger's spec (spec.h): one row per field, each with
 * its parser. */
#include "mq/spec.h"

#include "topics/topics.h"

#include "base/error.h"
#include "base/str.h"

#include <stdio.h>
#include <string.h>

static int fail(struct fl_buf *err, const char *field, const char *message)
{
    fl_buf_reset(err);
    fl_buf_appendf(err, "spec.%s: %s", field, message);
    return FL_EINVAL;
}

static const char *const connector_names[] = {[FL_MQT_BUILTIN] = "builtin", [FL_MQT_NATS] = "nats"};

const char *fl_mqt_connector_name(enum fl_mqt_connector c)
{
    return c <= FL_MQT_NATS ? connector_names[c] : "unknown";
}

int fl_mqt_topic_check(const char *field, const char *name, struct fl_buf *err)
{
    if (fl_topic_name_check(name, err) == 0)
        return 0;
    /* the rule's own message, under the field's name */
    char why[512];
    fl_strlcpy(why, err->data != NULL ? err->data : "", sizeof(why));
    fl_buf_reset(err);
    fl_buf_appendf(err, "%s: %s", field, fl_str_has_prefix(why, "topic: ") ? why + 7 : why);
    return FL_EINVAL;
}

/* A string field's value (present), or FL_EINVAL. */
static int string_of(json_t *v, const char *field, const char **out, struct fl_buf *err)
{
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return fail(err, field, "must be a string");
    *out = json_string_value(v);
    return 0;
}

static int topic_into(json_t *v, const char *field, char *out, struct fl_buf *err)
{
    const char *s;
    int rc = string_of(v, field, &s, err);
    char where[32];
    snprintf(where, sizeof(where), "spec.%s", field);
    if (rc == 0 && s[0] != '\0')
        rc = fl_mqt_topic_check(where, s, err);
    if (rc == 0)
        fl_strlcpy(out, s, FL_MQT_TOPIC_MAX + 1);
    return rc;
}

static int parse_topic(json_t *v, struct fl_mqt_spec *s, struct fl_buf *err)
{
    return topic_into(v, "topic", s->topic, err);
}

static int parse_resp_topic(json_t *v, struct fl_mqt_spec *s, struct fl_buf *err)
{
    return topic_into(v, "respTopic", s->resp_topic, err);
}

static int parse_error_topic(json_t *v, struct fl_mqt_spec *s, struct fl_buf *err)
{
    return topic_into(v, "errorTopic", s->error_topic, err);
}

static int parse_target(json_t *v, struct fl_mqt_spec *s, struct fl_buf *err)
{
    json_t *fn = json_object_get(v, "function"), *wf = json_object_get(v, "workflow");
    if (!json_is_object(v) || json_object_size(v) != 1 || !json_is_string(fn ? fn : wf))
        return fail(err, "target", "must be {function: NAME} or {workflow: NAME}");
    struct fl_buf why;
    fl_buf_init(&why, 256);
    const char *name = json_string_value(fn ? fn : wf);
    int rc = fl_name_check(name, &why);
    fl_buf_release(&why);
    if (rc < 0)
        return fail(err, fn ? "target.function" : "target.workflow",
                    "must be a name of 1 to 63 lowercase letters, digits and '-'");
    fl_strlcpy(fn ? s->function : s->workflow, name, FL_NAME_MAX + 1);
    return 0;
}

static int parse_connector(json_t *v, struct fl_mqt_spec *s, struct fl_buf *err)
{
    const char *name;
    int rc = string_of(v, "connector", &name, err);
    if (rc < 0)
        return rc;
    if (strcmp(name, "builtin") == 0) {
        s->connector = FL_MQT_BUILTIN;
        return 0;
    }
    if (strcmp(name, "nats") == 0) {
        s->connector = FL_MQT_NATS;
        return 0;
    }
    return fail(err, "connector", "must be 'builtin' or 'nats'");
}

/* v as a whole number within [min, max] into *out, or FL_EINVAL. */
static int whole(json_t *v, const char *field, uint32_t min, uint32_t max, uint32_t *out,
                 struct fl_buf *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        fl_buf_reset(err);
        fl_buf_appendf(err, "spec.%s: must be a whole number from %u to %u", field, min, max);
        return FL_EINVAL;
    }
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

static int parse_max_retries(json_t *v, struct fl_mqt_spec *s, struct fl_buf *err)
{
    return whole(v, "maxRetries", 0, FL_MQT_MAX_RETRIES, &s->max_retries, err);
}

static int parse_concurrency(json_t *v, struct fl_mqt_spec *s, struct fl_buf *err)
{
    return whole(v, "concurrency", 1, FL_MQT_MAX_CONCURRENCY, &s->concurrency, err);
}

static int parse_ack_wait(json_t *v, struct fl_mqt_spec *s, struct fl_buf *err)
{
    int64_t ms = -1;
    if (json_is_string(v))
        fl_parse_duration_ms(json_string_value(v), &ms);
    else if (json_is_integer(v) && json_integer_value(v) >= 0 &&
             json_integer_value(v) <= FL_MQT_ACK_WAIT_MAX_MS / 1000)
        ms = json_integer_value(v) * 1000;
    if (ms < FL_MQT_ACK_WAIT_MIN_MS || ms > FL_MQT_ACK_WAIT_MAX_MS)
        return fail(err, "ackWait", "must be a duration like \"30s\" or \"2m\" from 1s to 12h");
    s->ack_wait_ms = ms;
    return 0;
}

static int parse_content_type(json_t *v, struct fl_mqt_spec *s, struct fl_buf *err)
{
    const char *t;
    int rc = string_of(v, "contentType", &t, err);
    if (rc < 0)
        return rc;
    if (t[0] == '\0' || strlen(t) > FL_MQT_CONTENT_TYPE_MAX || fl_str_has_ctl(t, strlen(t)))
        return fail(err, "contentType",
                    "must be a media type like application/json, at most 127 bytes");
    fl_strlcpy(s->content_type, t, sizeof(s->content_type));
    return 0;
}

static int parse_paused(json_t *v, struct fl_mqt_spec *s, struct fl_buf *err)
{
    if (!json_is_boolean(v))
        return fail(err, "paused", "must be true or false");
    s->paused = json_is_true(v);
    return 0;
}

static int parse_create_stream(json_t *v, struct fl_mqt_spec *s, struct fl_buf *err)
{
    if (!json_is_boolean(v))
        return fail(err, "createStream", "must be true or false");
    s->create_stream = json_is_true(v);
    return 0;
}

/* backoff and maxBackoff: the retry policy's own parser and bounds */
static int parse_backoffs(json_t *spec, struct fl_mqt_spec *s, struct fl_buf *err)
{
    json_t *b = json_object_get(spec, "backoff"), *m = json_object_get(spec, "maxBackoff");
    if (b == NULL && m == NULL)
        return 0;
    json_t *retry = json_object();
    if (retry == NULL)
        return FL_ENOMEM;
    if (b != NULL)
        json_object_set(retry, "backoff", b);
    if (m != NULL)
        json_object_set(retry, "maxBackoff", m);
    struct fl_retry_policy p = {1, s->backoff_ms, s->max_backoff_ms};
    int rc = fl_retry_policy_parse(retry, "spec", &p, err);
    json_decref(retry);
    s->backoff_ms = p.backoff_ms;
    s->max_backoff_ms = p.max_backoff_ms;
    return rc;
}

static const struct {
    const char *name;
    int (*parse)(json_t *v, struct fl_mqt_spec *s, struct fl_buf *err);
    bool required;
} fields[] = {
    {"topic", parse_topic, true},
    {"target", parse_target, true},
    {"connector", parse_connector, false},
    {"respTopic", parse_resp_topic, false},
    {"errorTopic", parse_error_topic, false},
    {"maxRetries", parse_max_retries, false},
    {"backoff", NULL, false}, /* parse_backoffs */
    {"maxBackoff", NULL, false},
    {"ackWait", parse_ack_wait, false},
    {"concurrency", parse_concurrency, false},
    {"contentType", parse_content_type, false},
    {"paused", parse_paused, false},
    {"createStream", parse_create_stream, false},
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

int fl_mqt_spec_parse(json_t *spec, struct fl_mqt_spec *out, struct fl_buf *err)
{
    memset(out, 0, sizeof(*out));
    out->connector = FL_MQT_BUILTIN;
    out->max_retries = FL_MQT_DEFAULT_MAX_RETRIES;
    out->backoff_ms = FL_MQT_DEFAULT_BACKOFF_MS;
    out->max_backoff_ms = FL_MQT_DEFAULT_MAX_BACKOFF_MS;
    out->ack_wait_ms = FL_MQT_DEFAULT_ACK_WAIT_MS;
    out->concurrency = FL_MQT_DEFAULT_CONCURRENCY;
    fl_strlcpy(out->content_type, FL_MQT_DEFAULT_CONTENT_TYPE, sizeof(out->content_type));
    if (!json_is_object(spec)) {
        fl_buf_reset(err);
        fl_buf_appends(err, "spec: must be an object");
        return FL_EINVAL;
    }
    const char *key;
    json_t *value;
    json_object_foreach(spec, key, value)
    {
        size_t i = 0;
        while (i < NFIELDS && strcmp(key, fields[i].name) != 0)
            i++;
        if (i == NFIELDS) {
            fl_buf_reset(err);
            fl_buf_appendf(err,
                           "spec.%.80s: is not a field of a message-queue trigger (topic, "
                           "target, connector, respTopic, errorTopic, maxRetries, backoff, "
                           "maxBackoff, ackWait, concurrency, contentType, paused, createStream)",
                           key);
            return FL_EINVAL;
        }
    }
    for (size_t i = 0; i < NFIELDS; i++) {
        json_t *v = json_object_get(spec, fields[i].name);
        if (v == NULL || json_is_null(v)) {
            if (fields[i].required)
                return fail(err, fields[i].name, "is required");
            continue;
        }
        int rc = fields[i].parse != NULL ? fields[i].parse(v, out, err) : 0;
        if (rc < 0)
            return rc;
    }
    if (out->topic[0] == '\0')
        return fail(err, "topic", "is required");
    int rc = parse_backoffs(spec, out, err);
    if (rc < 0)
        return rc;
    if (strcmp(out->resp_topic, out->topic) == 0)
        return fail(err, "respTopic", "must not be the topic the trigger consumes");
    if (strcmp(out->error_topic, out->topic) == 0)
        return fail(err, "errorTopic", "must not be the topic the trigger consumes");
    return 0;
}
