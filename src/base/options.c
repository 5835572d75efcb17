/*
 * Options from one table: see options.h.
 *
 * What differs between the kinds of value (how text is parsed, how a bound
 * is written back as text, what an error message says the option takes) is
 * itself a table, types[], indexed by enum fl_option_type.
 */
#include "base/options.h"

#include "base/buf.h"
#include "base/error.h"
#include "base/str.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The largest uid a range may end at: (uid_t)-1 is "no uid". */
#define UID_END_MAX  4294967294ULL
#define UID_BASE_MIN 1000ULL

static void *field_of(const struct fl_option *o, void *cfg)
{
    return (char *)cfg + o->offset;
}

/* Whether v is within the row's bounds (max 0: none above). */
static bool within(const struct fl_option *o, int64_t v)
{
    return v >= o->min && (o->max == 0 || v <= o->max);
}

static int parse_string(const struct fl_option *o, const char *text, void *field)
{
    *(const char **)field = text;
    return 0;
}

static int parse_duration(const struct fl_option *o, const char *text, void *field)
{
    int64_t ms;
    int rc = fl_parse_duration_ms(text, &ms);
    if (rc < 0)
        return rc;
    if (!within(o, ms))
        return FL_ERANGE;
    *(int64_t *)field = ms;
    return 0;
}

static int parse_size(const struct fl_option *o, const char *text, void *field)
{
    uint64_t bytes;
    int rc = fl_parse_size(text, &bytes);
    if (rc < 0)
        return rc;
    if (bytes > INT64_MAX || !within(o, (int64_t)bytes))
        return FL_ERANGE;
    *(uint64_t *)field = bytes;
    return 0;
}

static int parse_count(const struct fl_option *o, const char *text, void *field)
{
    return fl_parse_i64(text, o->min, o->max ? o->max : INT64_MAX, (int64_t *)field);
}

static int parse_uid_range(const struct fl_option *o, const char *text, void *field)
{
    char base_text[32];
    const char *colon = strchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof(base_text))
        return FL_EINVAL;
    memcpy(base_text, text, (size_t)(colon - text));
    base_text[colon - text] = '\0';
    struct fl_uid_range r;
    if (fl_parse_u64(base_text, UID_END_MAX, &r.base) < 0 ||
        fl_parse_u64(colon + 1, UID_END_MAX, &r.count) < 0)
        return FL_EINVAL;
    if (r.base < UID_BASE_MIN || !within(o, (int64_t)r.count) || r.base + r.count > UID_END_MAX)
        return FL_ERANGE;
    *(struct fl_uid_range *)field = r;
    return 0;
}

static int parse_log_level(const struct fl_option *o, const char *text, void *field)
{
    return fl_log_parse_level(text, (enum fl_log_level *)field);
}

/* v in the largest unit that holds it whole: "10s", "5m", "1500ms". */
static void duration_text(char *out, size_t size, int64_t v)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (v != 0 && v % units[i].ms == 0) {
            snprintf(out, size, "%lld%s", (long long)(v / units[i].ms), units[i].unit);
            return;
        }
    snprintf(out, size, "%lldms", (long long)v);
}

/* v in the largest binary unit that holds it whole: "1KiB", "64MiB". */
static void size_text(char *out, size_t size, int64_t v)
{
    static const struct {
        int shift;
        const char *unit;
    } units[] = {{30, "GiB"}, {20, "MiB"}, {10, "KiB"}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (v != 0 && v % (1LL << units[i].shift) == 0) {
            snprintf(out, size, "%lld%s", (long long)(v >> units[i].shift), units[i].unit);
            return;
        }
    snprintf(out, size, "%lld bytes", (long long)v);
}

static void count_text(char *out, size_t size, int64_t v)
{
    snprintf(out, size, "%lld", (long long)v);
}

static const struct {
    int (*parse)(const struct fl_option *o, const char *text, void *field);
    /* what the option takes, before its bounds: "a duration" */
    const char *noun;
    /* how a bound is written; NULL: the type has none */
    void (*bound)(char *out, size_t size, int64_t v);
    /* what the bounds are of: "" (the value), "COUNT " */
    const char *bounded;
    /* after the bounds, e.g. ", like 10s or 500ms"; "" for none */
    const char *example;
} types[] = {
    [FL_OPTION_STRING] = {parse_string, "a string", NULL, "", ""},
    [FL_OPTION_DURATION] = {parse_duration, "a duration", duration_text, "", ", like 10s or 500ms"},
    [FL_OPTION_SIZE] = {parse_size, "a size", size_text, "", ", like 64MiB"},
    [FL_OPTION_COUNT] = {parse_count, "a number", count_text, "", ""},
    [FL_OPTION_UID_RANGE] = {parse_uid_range,
                             "BASE:COUNT, host uids BASE (at least 1000) to BASE+COUNT-1 below "
                             "4294967295,",
                             count_text, "COUNT ", ", like 2000000000:65536"},
    [FL_OPTION_LOG_LEVEL] = {parse_log_level, "debug, info, warn or error", NULL, "", ""},
};

/* The row's bounds as text: "COUNT from 16 to 65536", "at least 1MiB", or
 * "" when it has none. */
static void bounds_text(const struct fl_option *o, char *out, size_t size)
{
    char lo[32], hi[32];
    out[0] = '\0';
    if (types[o->type].bound == NULL || (o->min == 0 && o->max == 0))
        return;
    types[o->type].bound(lo, sizeof(lo), o->min);
    if (o->max == 0) {
        snprintf(out, size, "%sat least %s", types[o->type].bounded, lo);
        return;
    }
    types[o->type].bound(hi, sizeof(hi), o->max);
    snprintf(out, size, "%sfrom %s to %s", types[o->type].bounded, lo, hi);
}

/* What the row takes, for messages: "a size from 1KiB to 64MiB, like 64MiB". */
static void describe(const struct fl_option *o, char *out, size_t size)
{
    char range[96];
    bounds_text(o, range, sizeof(range));
    /* "a duration of at least 1ms", "a size from 1KiB to 64MiB" */
    const char *lead = range[0] == '\0' ? "" : o->max == 0 ? " of " : " ";
    snprintf(out, size, "%s%s%s%s", types[o->type].noun, lead, range, types[o->type].example);
}

static const struct fl_option *find(const struct fl_option *opts, size_t n, const char *name,
                                    size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

int fl_options_parse(const struct fl_option *opts, size_t n, int argc, char **argv, void *cfg,
                     char *err, size_t errsize)
{
    /* the value given on the command line, per row */
    const char **given = calloc(n ? n : 1, sizeof(*given));
    int rc = 0;
    if (given == NULL) {
        snprintf(err, errsize, "out of memory");
        return FL_ENOMEM;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            if (i + 1 < argc) {
                snprintf(err, errsize, "unexpected argument '%.200s'", argv[i + 1]);
                rc = FL_EPARSE;
                goto out;
            }
            break;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            rc = FL_OPTIONS_HELP;
            goto out;
        }
        if (strcmp(a, "--version") == 0) {
            rc = FL_OPTIONS_VERSION;
            goto out;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errsize, "unexpected argument '%.200s'", a);
            rc = FL_EPARSE;
            goto out;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        const struct fl_option *o = find(opts, n, name, eq ? (size_t)(eq - name) : strlen(name));
        if (o == NULL) {
            snprintf(err, errsize, "unknown option '%.200s'", a);
            rc = FL_EPARSE;
            goto out;
        }
        if (eq != NULL) {
            given[o - opts] = eq + 1;
        } else if (i + 1 < argc) {
            given[o - opts] = argv[++i];
        } else {
            snprintf(err, errsize, "--%s needs a value (%s)", o->name, o->arg);
            rc = FL_EPARSE;
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct fl_option *o = &opts[i];
        const char *env = o->env ? getenv(o->env) : NULL;
        const char *text = given[i];
        /* where the value came from, for a message: "FLINT_DRAIN (for --drain)" */
        const char *from = "", *from_env = "", *from_end = "";
        if (text == NULL && env != NULL && *env != '\0') {
            text = env;
            from = o->env;
            from_env = " (for ";
            from_end = ")";
        } else if (text == NULL && o->fallback != NULL) {
            text = o->fallback;
            from = "the default of ";
        }
        if (text == NULL)
            continue;
        if (types[o->type].parse(o, text, field_of(o, cfg)) < 0) {
            char what[256];
            describe(o, what, sizeof(what));
            snprintf(err, errsize, "%s%s--%s%s takes %s, not '%.200s'", from, from_env, o->name,
                     from_end, what, text);
            rc = FL_EINVAL;
            goto out;
        }
    }
out:
    free(given);
    return rc;
}

/* Write text to to, wrapped at width, each line after the first indented
 * by indent columns; col is where the first line starts. */
static void wrap(FILE *to, const char *text, int col, int indent, int width)
{
    const char *p = text;
    while (*p != '\0') {
        size_t word = strcspn(p, " ");
        if (col > indent && col + 1 + (int)word > width) {
            fprintf(to, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', to);
            col++;
        }
        fprintf(to, "%.*s", (int)word, p);
        col += (int)word;
        p += word;
        while (*p == ' ')
            p++;
    }
    fputc('\n', to);
}

void fl_options_usage(const struct fl_option *opts, size_t n, const char *program, FILE *to)
{
    enum { INDENT = 30, WIDTH = 80 };
    fprintf(to, "usage: %s [OPTION]...\n\n", program);
    struct fl_buf help;
    fl_buf_init(&help, 64u << 10);
    for (size_t i = 0; i < n; i++) {
        const struct fl_option *o = &opts[i];
        int col = fprintf(to, "  --%s %s", o->name, o->arg);
        if (col >= INDENT - 1)
            fprintf(to, "\n%*s", INDENT, "");
        else
            fprintf(to, "%*s", INDENT - col, "");
        /* "help (FLINT_X; default D; from MIN to MAX)" */
        char range[96];
        bounds_text(o, range, sizeof(range));
        const char *notes[] = {o->env, o->fallback ? "default " : NULL, o->fallback, range};
        fl_buf_reset(&help);
        fl_buf_appends(&help, o->help);
        const char *sep = " (";
        for (size_t k = 0; k < sizeof(notes) / sizeof(notes[0]); k++) {
            if (notes[k] == NULL || notes[k][0] == '\0')
                continue;
            fl_buf_appendf(&help, "%s%s", sep, notes[k]);
            sep = strcmp(notes[k], "default ") == 0 ? "" : "; ";
        }
        if (strcmp(sep, " (") != 0)
            fl_buf_appendc(&help, ')');
        wrap(to, help.data ? help.data : "", INDENT, INDENT, WIDTH);
    }
    fl_buf_release(&help);
    fprintf(to, "  --help%*sthis help\n  --version%*sthe version\n", INDENT - 8, "", INDENT - 11,
            "");
}
