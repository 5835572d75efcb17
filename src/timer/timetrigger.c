/* A time trigger's spec (see timetrigger.h). */
#include "timer/timetrigger.h"

#include "base/error.h"
#include "base/str.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *const catchup_names[] = {
    [FL_CATCHUP_NONE] = "none", [FL_CATCHUP_LAST] = "last", [FL_CATCHUP_ALL] = "all"};

#define NCATCHUP (sizeof(catchup_names) / sizeof(catchup_names[0]))

const char *fl_catchup_name(enum fl_catchup c)
{
    return (unsigned)c < NCATCHUP ? catchup_names[c] : "last";
}

/* The methods a trigger may send. */
static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};

static const char *const fields[] = {"cron", "target",  "method", "body",
                                     "tz",   "catchup", "retry",  NULL};

/* "spec.<field>: <why>", the form of every refusal. */
static int fail(struct fl_buf *err, const char *field, const char *why)
{
    fl_buf_reset(err);
    fl_buf_appendf(err, "spec.%s: %s", field, why);
    return FL_EINVAL;
}

static int parse_target(json_t *spec, struct fl_timetrigger_spec *out, struct fl_buf *err)
{
    json_t *target = json_object_get(spec, "target");
    json_t *wf = json_object_get(target, "workflow");
    const char *fn = json_string_value(wf ? wf : json_object_get(target, "function"));
    if (!json_is_object(target) || json_object_size(target) != 1 || fn == NULL)
        return fail(err, "target", "must be {function: NAME} or {workflow: NAME}");
    struct fl_buf why;
    fl_buf_init(&why, 256);
    int rc = fl_name_check(fn, &why);
    if (rc < 0)
        fail(err, wf ? "target.workflow" : "target.function",
             why.data ? why.data : "is not a valid name");
    else
        fl_strlcpy(wf ? out->workflow : out->function, fn, FL_NAME_MAX + 1);
    fl_buf_release(&why);
    return rc < 0 ? FL_EINVAL : 0;
}

static int parse_method(json_t *spec, struct fl_timetrigger_spec *out, struct fl_buf *err)
{
    json_t *v = json_object_get(spec, "method");
    const char *m = v == NULL || json_is_null(v) ? FL_TIMETRIGGER_METHOD : json_string_value(v);
    if (m == NULL)
        return fail(err, "method", "must be a method name like GET or POST");
    char upper[FL_TIMETRIGGER_METHOD_MAX];
    size_t n = strlen(m);
    if (n >= sizeof(upper))
        return fail(err, "method", "unknown method (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS)");
    for (size_t i = 0; i <= n; i++)
        upper[i] = (char)toupper((unsigned char)m[i]);
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(upper, methods[i]) == 0) {
            fl_strlcpy(out->method, methods[i], sizeof(out->method));
            return 0;
        }
    return fail(err, "method", "unknown method (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS)");
}

static int parse_body(json_t *spec, struct fl_timetrigger_spec *out, struct fl_buf *err)
{
    json_t *v = json_object_get(spec, "body");
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return fail(err, "body", "must be a string");
    size_t n = json_string_length(v);
    if (n > FL_TIMETRIGGER_BODY_MAX)
        return fail(err, "body", "is longer than 64 KiB");
    if ((out->body = fl_strndup(json_string_value(v), n)) == NULL)
        return FL_ENOMEM;
    out->body_len = n;
    return 0;
}

static int parse_catchup(json_t *spec, struct fl_timetrigger_spec *out, struct fl_buf *err)
{
    json_t *v = json_object_get(spec, "catchup");
    out->catchup = FL_CATCHUP_LAST;
    if (v == NULL || json_is_null(v))
        return 0;
    const char *s = json_string_value(v);
    for (size_t i = 0; s != NULL && i < NCATCHUP; i++)
        if (strcmp(s, catchup_names[i]) == 0) {
            out->catchup = (enum fl_catchup)i;
            return 0;
        }
    return fail(err, "catchup", "must be none, last or all");
}

/* The expression, in its zone: it must parse and fire once more. */
static int parse_cron(json_t *spec, int64_t now, struct fl_timetrigger_spec *out,
                      struct fl_tz **zone, struct fl_buf *err)
{
    json_t *v = json_object_get(spec, "tz");
    const char *name = v == NULL || json_is_null(v) ? "UTC" : json_string_value(v);
    char why[256];
    if (name == NULL)
        return fail(err, "tz", "must be a time zone name like Europe/Berlin");
    if (fl_tz_new(name, zone, why, sizeof(why)) < 0)
        return fail(err, "tz", why);
    fl_strlcpy(out->tz, fl_tz_name(*zone), sizeof(out->tz));
    const char *expr = json_string_value(json_object_get(spec, "cron"));
    if (expr == NULL)
        return fail(err, "cron", "is required: an expression like '*/5 * * * *' or '@every 1m'");
    if (strlen(expr) > FL_CRON_EXPR_MAX)
        return fail(err, "cron", "is longer than 256 bytes");
    if (fl_cron_parse(expr, &out->cron, why, sizeof(why)) < 0)
        return fail(err, "cron", why);
    fl_strlcpy(out->cron_expr, expr, sizeof(out->cron_expr));
    int64_t next;
    int rc = fl_cron_next(&out->cron, *zone, now, &next);
    if (rc == FL_ENOENT || rc == FL_ERANGE)
        return fail(err, "cron", "never fires (no date in the next 401 years matches it)");
    return rc;
}

int fl_timetrigger_spec_parse(json_t *spec, int64_t now, struct fl_timetrigger_spec *out,
                              struct fl_tz **zone, struct fl_buf *err)
{
    struct fl_tz *tz = NULL;
    memset(out, 0, sizeof(*out));
    int rc = fl_spec_check_fields(
        spec, fields, "a timetrigger (cron, target, method, body, tz, catchup, retry)", err);
    if (rc == 0)
        rc = parse_cron(spec, now, out, &tz, err);
    if (rc == 0)
        rc = parse_target(spec, out, err);
    if (rc == 0)
        rc = parse_method(spec, out, err);
    if (rc == 0)
        rc = parse_body(spec, out, err);
    if (rc == 0)
        rc = parse_catchup(spec, out, err);
    if (rc == 0) {
        json_t *retry = json_object_get(spec, "retry");
        out->retry = FL_RETRY_DEFAULT;
        out->has_retry = retry != NULL && !json_is_null(retry);
        rc = fl_retry_policy_parse(retry, "spec.retry", &out->retry, err);
    }
    if (rc < 0) {
        fl_tz_free(tz);
        fl_timetrigger_spec_release(out);
        return rc;
    }
    if (zone != NULL)
        *zone = tz;
    else
        fl_tz_free(tz);
    return 0;
}

void fl_timetrigger_spec_release(struct fl_timetrigger_spec *s)
{
    free(s->body);
    memset(s, 0, sizeof(*s));
}
