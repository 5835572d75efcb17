#include "router/routes.h"

#include "base/error.h"
#include "base/str.h"
#include "http/parse.h"
#include "topics/topics.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fl_route_table {
    struct fl_route **routes; /* most specific first */
    size_t n, cap;
};

static const struct {
    const char *name;
    unsigned bit;
} methods[] = {
    {"GET", FL_METHOD_GET},         {"HEAD", FL_METHOD_HEAD},     {"POST", FL_METHOD_POST},
    {"PUT", FL_METHOD_PUT},         {"DELETE", FL_METHOD_DELETE}, {"PATCH", FL_METHOD_PATCH},
    {"OPTIONS", FL_METHOD_OPTIONS},
};

unsigned fl_route_method_bit(const char *method, size_t len)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(methods[i].name) == len && memcmp(methods[i].name, method, len) == 0)
            return methods[i].bit;
    return 0;
}

char *fl_route_methods_format(unsigned set, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if ((set & methods[i].bit) == 0)
            continue;
        int n = snprintf(out + used, size - used, "%s%s", used ? ", " : "", methods[i].name);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
    return out;
}

struct fl_route_table *fl_route_table_new(void)
{
    return calloc(1, sizeof(struct fl_route_table));
}

static void route_free(struct fl_route *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nsegments; i++)
        free(r->segments[i]);
    free(r->name);
    free(r->path);
    free(r->target_name);
    free(r->callback);
    free(r);
}

void fl_route_table_free(struct fl_route_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        route_free(t->routes[i]);
    free(t->routes);
    free(t);
}

size_t fl_route_table_size(const struct fl_route_table *t)
{
    return t->n;
}

static int fail(struct fl_buf *err, const char *field, const char *message, const char *detail)
{
    fl_buf_reset(err);
    fl_buf_appendf(err, "spec.%s: %s", field, message);
    if (detail != NULL)
        fl_buf_appendf(err, " '%s'", detail);
    return FL_EINVAL;
}

static bool valid_param_name(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* Parse path into r's segments (r may be NULL to only check). */
static int parse_path(const char *field, const char *path, bool prefix, struct fl_route *r,
                      struct fl_buf *err)
{
    size_t len = strlen(path);
    if (len == 0 || path[0] != '/')
        return fail(err, field, "must start with '/', not", path);
    if (len > FL_ROUTE_MAX_PATH)
        return fail(err, field, "is longer than 1024 characters", NULL);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)path[i] <= ' ' || path[i] == '?' || path[i] == '#' || path[i] == 0x7f)
            return fail(err, field, "must not hold spaces, control characters, '?' or '#':", path);
    if (prefix && strchr(path, '{') != NULL)
        return fail(err, field, "a prefix cannot hold {parameters}:", path);

    size_t nseg = 0, nparams = 0;
    const char *p = path + 1;
    if (prefix || len == 1) {
        /* Prefixes are matched as text; exact "/" has no segments. */
        if (r != NULL) {
            r->nsegments = 0;
        }
        return 0;
    }
    for (;;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (nseg == FL_ROUTE_MAX_SEGMENTS)
            return fail(err, field, "has more than 32 segments", NULL);
        bool param = n >= 2 && p[0] == '{' && p[n - 1] == '}';
        if (param) {
            if (!valid_param_name(p + 1, n - 2)) {
                char seg[80];
                snprintf(seg, sizeof(seg), "%.*s", (int)(n < 70 ? n : 70), p);
                return fail(err, field,
                            "a parameter name is 1 to 63 letters, digits, '_' or '-', not", seg);
            }
            if (nparams == FL_ROUTE_MAX_PARAMS)
                return fail(err, field, "has more than 16 parameters", NULL);
            for (size_t i = 0; r != NULL && i < nseg; i++)
                if (r->is_param[i] && strlen(r->segments[i]) == n - 2 &&
                    memcmp(r->segments[i], p + 1, n - 2) == 0)
                    return fail(err, field, "repeats the parameter", r->segments[i]);
            nparams++;
        } else if (memchr(p, '{', n) != NULL || memchr(p, '}', n) != NULL) {
            char seg[80];
            snprintf(seg, sizeof(seg), "%.*s", (int)(n < 70 ? n : 70), p);
            return fail(err, field, "a parameter must be a whole segment like {name}, not", seg);
        }
        if (r != NULL) {
            r->segments[nseg] = param ? fl_strndup(p + 1, n - 2) : fl_strndup(p, n);
            if (r->segments[nseg] == NULL)
                return FL_ENOMEM;
            r->is_param[nseg] = param;
            r->nsegments = nseg + 1;
        }
        nseg++;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return 0;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return false;
    return true;
}

/* The fields of async invocations into r. */
static int parse_async(json_t *spec, struct fl_route *r, struct fl_buf *err)
{
    const struct {
        const char *field;
        bool *out;
    } flags[] = {{"async", &r->async}, {"allowAsync", &r->allow_async}};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        json_t *v = json_object_get(spec, flags[i].field);
        if (v != NULL && !json_is_boolean(v))
            return fail(err, flags[i].field, "must be true or false", NULL);
        *flags[i].out = json_is_true(v);
    }
    json_t *retry = json_object_get(spec, "retry");
    r->retry = FL_RETRY_DEFAULT;
    r->has_retry = retry != NULL && !json_is_null(retry);
    int rc = fl_retry_policy_parse(retry, "spec.retry", &r->retry, err);
    if (rc < 0)
        return rc;
    json_t *callback = json_object_get(spec, "callback");
    if (callback == NULL || json_is_null(callback))
        return 0;
    struct fl_http_url url;
    struct fl_buf why;
    fl_buf_init(&why, 256);
    const char *text = json_string_value(callback);
    if (text == NULL || strlen(text) != json_string_length(callback))
        rc = fail(err, "callback", "must be a URL like http://HOST:PORT/path", NULL);
    else if (fl_http_url_parse(text, &url, &why) < 0)
        rc = fail(err, "callback", why.data ? why.data : "is not a usable URL", NULL);
    else if ((r->callback = fl_strndup(text, strlen(text))) == NULL)
        rc = FL_ENOMEM;
    fl_buf_release(&why);
    return rc;
}

/* The target: {function: NAME}, {workflow: NAME} or {topic: NAME}. */
static int parse_target(json_t *target, enum fl_target_kind *kind, json_t **name,
                        struct fl_buf *err)
{
    static const struct {
        const char *field;
        enum fl_target_kind kind;
    } kinds[] = {{"function", FL_TARGET_FUNCTION},
                 {"workflow", FL_TARGET_WORKFLOW},
                 {"topic", FL_TARGET_TOPIC}};
    size_t k = sizeof(kinds) / sizeof(kinds[0]);
    if (json_is_object(target) && json_object_size(target) == 1)
        for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
            if (json_object_get(target, kinds[k].field) != NULL)
                break;
    if (k == sizeof(kinds) / sizeof(kinds[0]))
        return fail(err, "target", "must be {function: NAME}, {workflow: NAME} or {topic: NAME}",
                    NULL);
    *kind = kinds[k].kind;
    *name = json_object_get(target, kinds[k].field);
    const char *text = json_string_value(*name);
    char field[32];
    snprintf(field, sizeof(field), "target.%s", kinds[k].field);
    if (*kind == FL_TARGET_TOPIC) {
        if (text != NULL && strlen(text) == json_string_length(*name) &&
            fl_topic_name_check(text, err) == 0)
            return 0;
        if (text == NULL)
            return fail(err, field, "must be a topic name", NULL);
        char why[400];
        fl_strlcpy(why, err->data ? err->data + strlen("topic: ") : "is not a topic name",
                   sizeof(why));
        return fail(err, field, why, NULL);
    }
    if (text == NULL || !valid_name(text))
        return fail(err, field, "must be a name of 1 to 63 lowercase letters, digits and '-'",
                    NULL);
    return 0;
}

/* A route to a topic publishes every call: the fields of async
 * invocations mean nothing there, and are refused rather than ignored
 * (but for false and null, what they are when not given). */
static int topic_takes_no_async(json_t *spec, struct fl_buf *err)
{
    static const char *const fields[] = {"async", "allowAsync", "retry", "callback"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        json_t *v = json_object_get(spec, fields[i]);
        if (v != NULL && !json_is_null(v) && !json_is_false(v))
            return fail(err, fields[i],
                        "is for routes to functions: a route to a topic publishes every call "
                        "(202 once the message is durable)",
                        NULL);
    }
    return 0;
}

/* Check spec and fill r. */
static int parse_spec(json_t *spec, struct fl_route *r, struct fl_buf *err)
{
    static const char *const fields[] = {"path",  "prefix",     "methods", "target",
                                         "async", "allowAsync", "retry",   "callback"};
    if (!json_is_object(spec))
        return fl_buf_reset(err), fl_buf_appends(err, "spec: must be an object"), FL_EINVAL;
    const char *key;
    json_t *value;
    json_object_foreach(spec, key, value)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]) && !known; i++)
            known = strcmp(key, fields[i]) == 0;
        if (!known)
            return fail(err, key,
                        "is not a route field (path, prefix, methods, target, async, allowAsync, "
                        "retry, callback)",
                        NULL);
    }
    json_t *path = json_object_get(spec, "path"), *prefix = json_object_get(spec, "prefix");
    if ((path == NULL) == (prefix == NULL))
        return fail(err, "path", "give exactly one of spec.path and spec.prefix", NULL);
    json_t *which = path ? path : prefix;
    const char *field = path ? "path" : "prefix";
    if (!json_is_string(which))
        return fail(err, field, "must be a string", NULL);
    int rc = parse_path(field, json_string_value(which), prefix != NULL, r, err);
    if (rc < 0)
        return rc;

    unsigned set = 0;
    json_t *list = json_object_get(spec, "methods");
    if (list != NULL && !json_is_array(list))
        return fail(err, "methods", "must be a list such as [GET, POST]", NULL);
    size_t i;
    json_array_foreach(list, i, value)
    {
        const char *m = json_string_value(value);
        char upper[16];
        size_t n = m ? strlen(m) : 0;
        if (m == NULL || n >= sizeof(upper))
            return fail(err, "methods", "must hold method names like GET", NULL);
        for (size_t k = 0; k <= n; k++)
            upper[k] = (char)toupper((unsigned char)m[k]);
        unsigned bit = fl_route_method_bit(upper, n);
        if (bit == 0)
            return fail(err, "methods",
                        "unknown method (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS):", m);
        set |= bit;
    }

    enum fl_target_kind kind;
    json_t *tname;
    rc = parse_target(json_object_get(spec, "target"), &kind, &tname, err);
    if (rc < 0)
        return rc;
    if (r != NULL) {
        r->methods = set;
        r->prefix = prefix != NULL;
        r->target_kind = kind;
        r->path = fl_strndup(json_string_value(which), strlen(json_string_value(which)));
        r->target_name = fl_strndup(json_string_value(tname), strlen(json_string_value(tname)));
        if (r->path == NULL || r->target_name == NULL)
            return FL_ENOMEM;
        /* A prefix matches as text without its trailing '/': "/api/" and "/api" alike. */
        size_t n = strlen(r->path);
        while (r->prefix && n > 1 && r->path[n - 1] == '/')
            r->path[--n] = '\0';
    }
    if (kind == FL_TARGET_TOPIC)
        return topic_takes_no_async(spec, err);
    return parse_async(spec, r, err);
}

int fl_route_spec_check(json_t *spec, struct fl_buf *err)
{
    struct fl_route scratch;
    memset(&scratch, 0, sizeof(scratch));
    int rc = parse_spec(spec, &scratch, err);
    for (size_t i = 0; i < scratch.nsegments; i++)
        free(scratch.segments[i]);
    free(scratch.path);
    free(scratch.target_name);
    free(scratch.callback);
    return rc;
}

/* Negative if a sorts before b: the header's rules, made a total order.
 * Exact routes with different numbers of segments never match the same
 * path, but they are still ordered by that number first: comparing them
 * segment by segment and falling back on names would not be transitive
 * ("/x/{p}" < "/x" < "/x/y" by name, "/x/y" < "/x/{p}" by segments), and
 * the table's insertion would then put a parameter ahead of a literal. */
static int compare_routes(const struct fl_route *a, const struct fl_route *b)
{
    if (a->prefix != b->prefix)
        return a->prefix ? 1 : -1;
    if (!a->prefix) {
        if (a->nsegments != b->nsegments)
            return a->nsegments < b->nsegments ? -1 : 1;
        for (size_t i = 0; i < a->nsegments; i++)
            if (a->is_param[i] != b->is_param[i])
                return a->is_param[i] ? 1 : -1;
    } else {
        size_t la = strlen(a->path), lb = strlen(b->path);
        if (la != lb)
            return la > lb ? -1 : 1;
    }
    return strcmp(a->name, b->name);
}

int fl_route_table_put(struct fl_route_table *t, const char *name, json_t *spec, struct fl_buf *err)
{
    struct fl_route *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return FL_ENOMEM;
    int rc = parse_spec(spec, r, err);
    if (rc == 0) {
        r->name = fl_strndup(name, strlen(name));
        if (r->name == NULL)
            rc = FL_ENOMEM;
    }
    if (rc == 0 && t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct fl_route **routes = realloc(t->routes, cap * sizeof(*routes));
        if (routes == NULL)
            rc = FL_ENOMEM;
        else
            t->routes = routes, t->cap = cap;
    }
    if (rc < 0) {
        route_free(r);
        return rc;
    }
    fl_route_table_remove(t, name);
    size_t at = 0;
    while (at < t->n && compare_routes(t->routes[at], r) < 0)
        at++;
    memmove(&t->routes[at + 1], &t->routes[at], (t->n - at) * sizeof(t->routes[0]));
    t->routes[at] = r;
    t->n++;
    return 0;
}

int fl_route_table_remove(struct fl_route_table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->routes[i]->name, name) == 0) {
            route_free(t->routes[i]);
            memmove(&t->routes[i], &t->routes[i + 1], (t->n - i - 1) * sizeof(t->routes[0]));
            t->n--;
            return 0;
        }
    }
    return FL_ENOENT;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode n bytes of s into out (size bytes). FL_ETOOBIG if it does
 * not fit; FL_EINVAL if it decodes to a control character, which no header
 * value may hold (parameters reach functions as headers). */
static int decode_into(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n) {
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = (char)(hi * 16 + lo);
                i += 2;
                if (fl_str_has_ctl(&c, 1))
                    return FL_EINVAL;
            }
        }
        if (o + 1 >= size)
            return FL_ETOOBIG;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* Whether exact route r matches the request segments; fills params. */
static int match_exact(const struct fl_route *r, const char *const *seg, const size_t *seglen,
                       size_t nseg, struct fl_route_match *m)
{
    if (r->nsegments != nseg)
        return 0;
    for (size_t i = 0; i < nseg; i++)
        if (!r->is_param[i] &&
            (strlen(r->segments[i]) != seglen[i] || memcmp(r->segments[i], seg[i], seglen[i]) != 0))
            return 0;
    m->nparams = 0;
    for (size_t i = 0; i < nseg; i++) {
        if (!r->is_param[i])
            continue;
        struct fl_route_param *p = &m->params[m->nparams++];
        p->name = r->segments[i];
        int rc = decode_into(seg[i], seglen[i], p->value, sizeof(p->value));
        if (rc < 0)
            return rc;
    }
    return 1;
}

static bool match_prefix(const struct fl_route *r, const char *path, size_t len)
{
    size_t n = strlen(r->path);
    if (n == 1) /* "/" */
        return true;
    return len >= n && memcmp(path, r->path, n) == 0 && (len == n || path[n] == '/');
}

int fl_route_table_match(const struct fl_route_table *t, const char *method, const char *path,
                         size_t len, struct fl_route_match *m)
{
    const char *seg[FL_ROUTE_MAX_SEGMENTS];
    size_t seglen[FL_ROUTE_MAX_SEGMENTS];
    size_t nseg = 0;
    bool too_deep = false;

    m->route = NULL;
    m->nparams = 0;
    m->allowed = 0;
    if (len > 1 && path[0] == '/') {
        const char *p = path + 1, *end = path + len;
        for (;;) {
            const char *slash = memchr(p, '/', (size_t)(end - p));
            if (nseg == FL_ROUTE_MAX_SEGMENTS) {
                too_deep = true;
                break;
            }
            seg[nseg] = p;
            seglen[nseg] = slash ? (size_t)(slash - p) : (size_t)(end - p);
            nseg++;
            if (slash == NULL)
                break;
            p = slash + 1;
        }
    }
    unsigned bit = fl_route_method_bit(method, strlen(method));
    bool path_matched = false;
    for (size_t i = 0; i < t->n; i++) {
        const struct fl_route *r = t->routes[i];
        int hit;
        if (r->prefix)
            hit = match_prefix(r, path, len);
        else if (too_deep)
            hit = 0;
        else if (len == 1 && path[0] == '/')
            hit = r->nsegments == 0 && strcmp(r->path, "/") == 0;
        else
            hit = r->nsegments > 0 ? match_exact(r, seg, seglen, nseg, m) : 0;
        if (hit < 0)
            return hit;
        if (hit == 0)
            continue;
        path_matched = true;
        /* HEAD is answered wherever GET is. */
        if (r->methods == 0 || (r->methods & bit) != 0 ||
            (bit == FL_METHOD_HEAD && (r->methods & FL_METHOD_GET) != 0)) {
            m->route = r;
            if (r->prefix)
                m->nparams = 0;
            return 0;
        }
        m->allowed |= r->methods;
    }
    if (too_deep && !path_matched)
        return FL_ETOOBIG;
    return path_matched ? FL_EACCES : FL_ENOENT;
}
