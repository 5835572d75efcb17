#include "spec/spec.h"

#include "base/error.h"
#include "base/str.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* ---- parsing ---- */

struct frame {
    json_t *value; /* an object or an array under construction */
    char *key;     /* for objects: the key waiting for its value */
};

struct parser {
    const char *name;
    struct frame stack[FL_SPEC_MAX_DEPTH];
    int depth;
    json_t *docs;
    struct fl_buf *err;
};

static int fail_at(struct parser *p, const yaml_mark_t *mark, const char *fmt, const char *arg)
{
    fl_buf_reset(p->err);
    fl_buf_appendf(p->err, "%s:%zu:%zu: ", p->name, mark->line + 1, mark->column + 1);
    fl_buf_appendf(p->err, fmt, arg);
    return FL_EPARSE;
}

static bool all_digits(const char *s, int base)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        int c = (unsigned char)*s;
        bool ok = base == 16
                      ? ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
                  : base == 8 ? (c >= '0' && c <= '7')
                              : (c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static bool is_float(const char *s)
{
    /* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? with a '.' or 'e' */
    const char *p = s;
    bool digits = false, dot = false, exp = false;
    if (*p == '-' || *p == '+')
        p++;
    for (; *p >= '0' && *p <= '9'; p++)
        digits = true;
    if (*p == '.') {
        dot = true;
        for (p++; *p >= '0' && *p <= '9'; p++)
            digits = true;
    }
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        exp = true;
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0' && (dot || exp);
}

/* The value a plain scalar stands for; a new reference, NULL if out of memory. */
static json_t *resolve_plain(const char *s, size_t len)
{
    static const char *nulls[] = {"", "~", "null", "Null", "NULL"};
    static const char *trues[] = {"true", "True", "TRUE"};
    static const char *falses[] = {"false", "False", "FALSE"};
    if (strlen(s) != len) /* an embedded NUL: keep it as a string */
        return json_stringn(s, len);
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp(s, nulls[i]) == 0)
            return json_null();
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(s, trues[i]) == 0)
            return json_true();
        if (strcmp(s, falses[i]) == 0)
            return json_false();
    }
    const char *digits = s;
    int sign = 1;
    if (*digits == '-' || *digits == '+') {
        sign = *digits == '-' ? -1 : 1;
        digits++;
    }
    int base = 10;
    if (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'o')) {
        base = digits[1] == 'x' ? 16 : 8;
        digits += 2;
    }
    if (all_digits(digits, base)) {
        errno = 0;
        char *end;
        unsigned long long v = strtoull(digits, &end, base);
        if (errno == 0 && *end == '\0' && v <= (unsigned long long)INT64_MAX)
            return json_integer(sign * (json_int_t)v);
        return json_stringn(s, len); /* too large for an integer: keep the text */
    }
    if (is_float(s))
        return json_real(strtod(s, NULL));
    const char *inf = *s == '-' || *s == '+' ? s + 1 : s;
    if (strcmp(inf, ".inf") == 0 || strcmp(inf, ".Inf") == 0 || strcmp(inf, ".INF") == 0)
        return json_stringn(s, len); /* JSON has no infinity: keep the text */
    return json_stringn(s, len);
}

static json_t *scalar_value(const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    if (tag != NULL && strcmp(tag, YAML_STR_TAG) == 0)
        return json_stringn(s, len);
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return json_stringn(s, len);
    return resolve_plain(s, len);
}

/* Attach a finished value to the container on top of the stack (or to the
 * document list). Takes the reference to v. */
static int attach(struct parser *p, json_t *v, const yaml_mark_t *mark)
{
    if (v == NULL)
        return FL_ENOMEM;
    if (p->depth == 0) {
        json_array_append_new(p->docs, v);
        return 0;
    }
    struct frame *top = &p->stack[p->depth - 1];
    if (json_is_array(top->value)) {
        json_array_append_new(top->value, v);
        return 0;
    }
    if (top->key == NULL) {
        /* v is a key */
        if (!json_is_string(v)) {
            json_decref(v);
            return fail_at(p, mark, "%s", "mapping keys must be scalars");
        }
        top->key = fl_strndup(json_string_value(v), json_string_length(v));
        json_decref(v);
        if (top->key == NULL)
            return FL_ENOMEM;
        if (json_object_get(top->value, top->key) != NULL)
            return fail_at(p, mark, "duplicate key '%s'", top->key);
        return 0;
    }
    json_object_set_new(top->value, top->key, v);
    free(top->key);
    top->key = NULL;
    return 0;
}

/* A key must be a string: turn a plain scalar that typed as something else back into text. */
static json_t *as_key(const yaml_event_t *ev, json_t *v)
{
    if (v == NULL || json_is_string(v))
        return v;
    json_decref(v);
    return json_stringn((const char *)ev->data.scalar.value, ev->data.scalar.length);
}

static bool expecting_key(const struct parser *p)
{
    if (p->depth == 0)
        return false;
    const struct frame *top = &p->stack[p->depth - 1];
    return json_is_object(top->value) && top->key == NULL;
}

static int push(struct parser *p, json_t *container, const yaml_mark_t *mark)
{
    if (container == NULL)
        return FL_ENOMEM;
    if (expecting_key(p)) {
        json_decref(container);
        return fail_at(p, mark, "%s", "mapping keys must be scalars");
    }
    if (p->depth == FL_SPEC_MAX_DEPTH) {
        json_decref(container);
        return fail_at(p, mark, "nested deeper than %s levels", "64");
    }
    p->stack[p->depth].value = container;
    p->stack[p->depth].key = NULL;
    p->depth++;
    return 0;
}

static int pop(struct parser *p, const yaml_mark_t *mark)
{
    struct frame f = p->stack[--p->depth];
    free(f.key);
    return attach(p, f.value, mark);
}

static int parse_yaml(struct parser *p, const char *text, size_t len)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    int err = 0;
    bool done = false;

    if (!yaml_parser_initialize(&parser))
        return FL_ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!done && err == 0) {
        if (!yaml_parser_parse(&parser, &ev)) {
            fl_buf_reset(p->err);
            fl_buf_appendf(p->err, "%s:%zu:%zu: %s", p->name, parser.problem_mark.line + 1,
                           parser.problem_mark.column + 1,
                           parser.problem ? parser.problem : "invalid YAML");
            if (parser.context != NULL)
                fl_buf_appendf(p->err, " (%s)", parser.context);
            err = FL_EPARSE;
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_SCALAR_EVENT: {
            json_t *v = scalar_value(&ev);
            if (expecting_key(p))
                v = as_key(&ev, v);
            err = attach(p, v, &ev.start_mark);
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
            err = push(p, json_array(), &ev.start_mark);
            break;
        case YAML_MAPPING_START_EVENT:
            err = push(p, json_object(), &ev.start_mark);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            err = pop(p, &ev.start_mark);
            break;
        case YAML_ALIAS_EVENT:
            err = fail_at(p, &ev.start_mark, "%s", "aliases (*name) are not supported in specs");
            break;
        default:
            break;
        }
        if (err == 0 && ev.type == YAML_SCALAR_EVENT && ev.data.scalar.anchor != NULL)
            err = fail_at(p, &ev.start_mark, "%s", "anchors (&name) are not supported in specs");
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    while (p->depth > 0) {
        struct frame *f = &p->stack[--p->depth];
        free(f->key);
        json_decref(f->value);
    }
    return err;
}

/* Whether v nests no deeper than FL_SPEC_MAX_DEPTH; recursion stops there. */
static bool depth_within(json_t *v, int depth)
{
    const char *key;
    size_t i;
    json_t *child;
    if (!json_is_object(v) && !json_is_array(v))
        return true;
    if (depth > FL_SPEC_MAX_DEPTH)
        return false;
    if (json_is_array(v)) {
        json_array_foreach(v, i, child) if (!depth_within(child, depth + 1)) return false;
    } else {
        json_object_foreach(v, key, child) if (!depth_within(child, depth + 1)) return false;
    }
    return true;
}

static int parse_json(struct parser *p, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (v == NULL) {
        fl_buf_reset(p->err);
        fl_buf_appendf(p->err, "%s:%d:%d: %s", p->name, jerr.line, jerr.column, jerr.text);
        return FL_EPARSE;
    }
    /* jansson bounds its own depth (2048); ours is tighter. */
    if (!depth_within(v, 1)) {
        json_decref(v);
        fl_buf_reset(p->err);
        fl_buf_appendf(p->err, "%s: nested deeper than %d levels", p->name, FL_SPEC_MAX_DEPTH);
        return FL_EPARSE;
    }
    json_array_append_new(p->docs, v);
    return 0;
}

int fl_spec_parse(const char *text, size_t len, const char *name, json_t **out, struct fl_buf *err)
{
    struct parser p = {.name = name, .err = err};
    *out = NULL;
    if (len > FL_SPEC_MAX_BYTES) {
        fl_buf_reset(err);
        fl_buf_appendf(err, "%s: larger than %u bytes", name, FL_SPEC_MAX_BYTES);
        return FL_ETOOBIG;
    }
    p.docs = json_array();
    if (p.docs == NULL)
        return FL_ENOMEM;
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    int rc = i < len && (text[i] == '{' || text[i] == '[') ? parse_json(&p, text, len)
                                                           : parse_yaml(&p, text, len);
    if (rc < 0) {
        json_decref(p.docs);
        if (rc == FL_ENOMEM) {
            fl_buf_reset(err);
            fl_buf_appendf(err, "%s: out of memory", name);
        }
        return rc;
    }
    *out = p.docs;
    return 0;
}

int fl_spec_parse_file(const char *path, json_t **out, struct fl_buf *err)
{
    struct fl_buf text;
    char chunk[65536];
    int rc = 0;

    *out = NULL;
    fl_buf_init(&text, FL_SPEC_MAX_BYTES);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        fl_buf_reset(err);
        fl_buf_appendf(err, "cannot open '%s': %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            fl_buf_reset(err);
            fl_buf_appendf(err, "cannot read '%s': %s", path, strerror(errno));
            goto out_close;
        }
        if (n == 0)
            break;
        rc = fl_buf_append(&text, chunk, (size_t)n);
        if (rc < 0) {
            fl_buf_reset(err);
            fl_buf_appendf(err, "%s: larger than %u bytes", path, FL_SPEC_MAX_BYTES);
            goto out_close;
        }
    }
    rc = fl_spec_parse(text.data ? text.data : "", text.len, path, out, err);
out_close:
    close(fd);
out:
    fl_buf_release(&text);
    return rc;
}

/* ---- emitting ---- */

struct emitter {
    yaml_emitter_t yaml;
    struct fl_buf *out;
    int err;
};

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
    struct emitter *e = data;
    int rc = fl_buf_append(e->out, buffer, size);
    if (rc < 0) {
        e->err = rc;
        return 0;
    }
    return 1;
}

static int emit_scalar(struct emitter *e, const char *s, size_t len, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)len, 1, 1, style))
        return FL_ENOMEM;
    return yaml_emitter_emit(&e->yaml, &ev) ? 0 : (e->err ? e->err : FL_ENOMEM);
}

static int emit_string(struct emitter *e, const char *s, size_t len)
{
    yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
    json_t *plain = resolve_plain(s, len);
    if (plain == NULL)
        return FL_ENOMEM;
    if (!json_is_string(plain))
        style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    json_decref(plain);
    if (memchr(s, '\n', len) != NULL)
        style = YAML_LITERAL_SCALAR_STYLE;
    return emit_scalar(e, s, len, style);
}

static int emit_value(struct emitter *e, json_t *v)
{
    yaml_event_t ev;
    char num[64];
    int rc = 0;

    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *child;
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE))
            return FL_ENOMEM;
        if (json_object_size(v) == 0)
            ev.data.mapping_start.style = YAML_FLOW_MAPPING_STYLE;
        if (!yaml_emitter_emit(&e->yaml, &ev))
            return e->err ? e->err : FL_ENOMEM;
        json_object_foreach(v, key, child)
        {
            rc = emit_string(e, key, strlen(key));
            if (rc == 0)
                rc = emit_value(e, child);
            if (rc < 0)
                return rc;
        }
        yaml_mapping_end_event_initialize(&ev);
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *child;
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE))
            return FL_ENOMEM;
        if (json_array_size(v) == 0)
            ev.data.sequence_start.style = YAML_FLOW_SEQUENCE_STYLE;
        if (!yaml_emitter_emit(&e->yaml, &ev))
            return e->err ? e->err : FL_ENOMEM;
        json_array_foreach(v, i, child)
        {
            rc = emit_value(e, child);
            if (rc < 0)
                return rc;
        }
        yaml_sequence_end_event_initialize(&ev);
        break;
    }
    case JSON_STRING:
        return emit_string(e, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_scalar(e, num, strlen(num), YAML_PLAIN_SCALAR_STYLE);
    case JSON_REAL: {
        double d = json_real_value(v);
        snprintf(num, sizeof(num), "%.17g", d);
        if (strspn(num, "-0123456789") == strlen(num)) /* keep it a float when read back */
            fl_strlcpy(num + strlen(num), ".0", sizeof(num) - strlen(num));
        return emit_scalar(e, num, strlen(num), YAML_PLAIN_SCALAR_STYLE);
    }
    case JSON_TRUE:
        return emit_scalar(e, "true", 4, YAML_PLAIN_SCALAR_STYLE);
    case JSON_FALSE:
        return emit_scalar(e, "false", 5, YAML_PLAIN_SCALAR_STYLE);
    case JSON_NULL:
        return emit_scalar(e, "null", 4, YAML_PLAIN_SCALAR_STYLE);
    }
    return yaml_emitter_emit(&e->yaml, &ev) ? 0 : (e->err ? e->err : FL_ENOMEM);
}

int fl_spec_emit_yaml(json_t *v, struct fl_buf *out)
{
    struct emitter e = {.out = out};
    yaml_event_t ev;
    int rc = FL_ENOMEM;

    if (!yaml_emitter_initialize(&e.yaml))
        return FL_ENOMEM;
    yaml_emitter_set_output(&e.yaml, write_handler, &e);
    yaml_emitter_set_unicode(&e.yaml, 1);
    yaml_emitter_set_width(&e.yaml, -1);
    if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ||
        !yaml_emitter_emit(&e.yaml, &ev))
        goto out;
    if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
        !yaml_emitter_emit(&e.yaml, &ev))
        goto out;
    rc = emit_value(&e, v);
    if (rc < 0)
        goto out;
    rc = FL_ENOMEM;
    if (!yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&e.yaml, &ev))
        goto out;
    if (!yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&e.yaml, &ev))
        goto out;
    if (!yaml_emitter_flush(&e.yaml))
        goto out;
    rc = 0;
out:
    if (rc < 0 && e.err < 0)
        rc = e.err;
    yaml_emitter_delete(&e.yaml);
    return rc;
}
