/* Cron expressions (see cron.h). */
#include "timer/cron.h"

#include "base/error.h"
#include "base/str.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { F_SECOND, F_MINUTE, F_HOUR, F_DAY, F_MONTH, F_WEEKDAY, NFIELDS };

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const weekday_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

/* The fields, in the order of a 6-field expression. */
static const struct field {
    const char *name;
    int min, max;             /* values accepted (day of week: 7 is Sunday too) */
    int last;                 /* the last value "*" means (day of week: 6) */
    const char *const *names; /* names[i] stands for min + i; NULL: none */
    size_t nnames;
    const char *names_hint; /* for the error message */
    bool question;          /* '?' means '*' */
} fields[NFIELDS] = {
    [F_SECOND] = {"second", 0, 59, 59, NULL, 0, NULL, false},
    [F_MINUTE] = {"minute", 0, 59, 59, NULL, 0, NULL, false},
    [F_HOUR] = {"hour", 0, 23, 23, NULL, 0, NULL, false},
    [F_DAY] = {"day of month", 1, 31, 31, NULL, 0, NULL, true},
    [F_MONTH] = {"month", 1, 12, 12, month_names, 12, "a month name (JAN-DEC)", false},
    [F_WEEKDAY] = {"day of week", 0, 7, 6, weekday_names, 7, "a day name (SUN-SAT)", true},
};

/* The descriptors, as the 6-field expressions they stand for. */
static const struct {
    const char *name;
    const char *fields;
} descriptors[] = {
    {"@yearly", "0 0 0 1 1 *"}, {"@annually", "0 0 0 1 1 *"}, {"@monthly", "0 0 0 1 * *"},
    {"@weekly", "0 0 0 * * 0"}, {"@daily", "0 0 0 * * *"},    {"@midnight", "0 0 0 * * *"},
    {"@hourly", "0 0 * * * *"},
};
#define NDESCRIPTORS (sizeof(descriptors) / sizeof(descriptors[0]))

/* The longest @every period, 87600h (ten years). */
#define EVERY_MAX (87600LL * 3600)

/* What a field's text is being parsed for: the message's prefix. */
struct field_ctx {
    const struct field *f;
    int position; /* 1-based, as written */
    char *err;
    size_t errsize;
};

static int field_error(const struct field_ctx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int field_error(const struct field_ctx *x, const char *fmt, ...)
{
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    fl_error_format(x->err, x->errsize, "field %d (%s): %s", x->position, x->f->name, why);
    return FL_EINVAL;
}

/* One value of a field: a number or a name, the n bytes at s. */
static int parse_value(const struct field_ctx *x, const char *s, size_t n, int *out)
{
    const struct field *f = x->f;
    if (n == 0)
        return field_error(x, "a value is missing");
    if (s[0] >= '0' && s[0] <= '9') {
        int v = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return field_error(x, "'%.*s' is not a number", (int)n, s);
            if (v < 1000000)
                v = v * 10 + (s[i] - '0');
        }
        if (v < f->min || v > f->max)
            return field_error(x, "%.*s is out of range %d-%d", (int)n, s, f->min, f->max);
        *out = v;
        return 0;
    }
    for (size_t i = 0; i < f->nnames; i++) {
        if (fl_str_ieq(s, n, f->names[i])) {
            *out = f->min + (int)i;
            return 0;
        }
    }
    if (f->names != NULL)
        return field_error(x, "'%.*s' is not a number or %s", (int)n, s, f->names_hint);
    return field_error(x, "'%.*s' is not a number", (int)n, s);
}

/* One item of a field's list (the n bytes at s) into *bits; *any is set
 * when it is "*" or "?" with step 1. */
static int parse_item(const struct field_ctx *x, const char *s, size_t n, uint64_t *bits, bool *any)
{
    const struct field *f = x->f;
    const char *slash = memchr(s, '/', n);
    size_t range_len = slash ? (size_t)(slash - s) : n;
    int lo, hi, step = 1, rc;
    bool star = false;

    if (n == 0)
        return field_error(x, "an item of the list is empty");
    if (range_len == 1 && (s[0] == '*' || s[0] == '?')) {
        if (s[0] == '?' && !f->question)
            return field_error(x, "'?' is only for the day of month and the day of week");
        star = true;
        lo = f->min;
        hi = f->last;
    } else {
        const char *dash = memchr(s, '-', range_len);
        size_t first_len = dash ? (size_t)(dash - s) : range_len;
        rc = parse_value(x, s, first_len, &lo);
        if (rc < 0)
            return rc;
        hi = lo;
        if (dash != NULL) {
            rc = parse_value(x, dash + 1, range_len - first_len - 1, &hi);
            if (rc < 0)
                return rc;
            if (f == &fields[F_WEEKDAY] && hi == 0 && lo > 0)
                hi = 7; /* FRI-SUN */
            if (hi < lo)
                return field_error(x, "range %.*s goes backwards", (int)range_len, s);
        } else if (slash != NULL) {
            hi = f->last; /* "a/n" is "a-MAX/n" */
        }
    }
    if (slash != NULL) {
        const char *step_text = slash + 1;
        size_t step_len = n - range_len - 1;
        int64_t v;
        char buf[16];
        int count = f->last - f->min + 1;
        if (step_len == 0 || step_len >= sizeof(buf))
            return field_error(x, "'%.*s' needs a step after '/'", (int)n, s);
        memcpy(buf, step_text, step_len);
        buf[step_len] = '\0';
        if (fl_parse_i64(buf, 0, INT32_MAX, &v) < 0 || buf[0] == '+' || buf[0] == '-')
            return field_error(x, "step '%s' is not a number", buf);
        if (v < 1 || v > count)
            return field_error(x, "step %s is out of range 1-%d", buf, count);
        step = (int)v;
    }
    for (int v = lo; v <= hi; v += step)
        *bits |= (uint64_t)1 << (f == &fields[F_WEEKDAY] ? v % 7 : v);
    if (star && step == 1)
        *any = true;
    return 0;
}

/* A whole field, the n bytes at s: a list of items. */
static int parse_field(const struct field_ctx *x, const char *s, size_t n, uint64_t *bits,
                       bool *any)
{
    *bits = 0;
    *any = false;
    for (;;) {
        const char *comma = memchr(s, ',', n);
        size_t len = comma ? (size_t)(comma - s) : n;
        int rc = parse_item(x, s, len, bits, any);
        if (rc < 0)
            return rc;
        if (comma == NULL)
            return 0;
        s += len + 1;
        n -= len + 1;
    }
}

/* "1h30m", "90s", "5m": whole seconds, at least 1s. */
static int parse_every(const char *text, struct fl_cron *out, char *err, size_t errsize)
{
    const char *s = text;
    int64_t total = 0;
    if (*s == '\0') {
        fl_error_format(err, errsize, "@every needs a duration, like 30s, 5m or 1h30m");
        return FL_EINVAL;
    }
    while (*s != '\0') {
        int64_t v = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            if (++digits > 9)
                goto out_too_long;
            v = v * 10 + (*s++ - '0');
        }
        int64_t unit = *s == 'h' ? 3600 : *s == 'm' ? 60 : *s == 's' ? 1 : 0;
        if (digits == 0 || unit == 0 || (s[0] == 'm' && s[1] == 's')) {
            fl_error_format(
                err, errsize,
                "@every '%s': a duration is whole hours, minutes and seconds, like 30s, 5m "
                "or 1h30m",
                text);
            return FL_EINVAL;
        }
        s++;
        total += v * unit;
        if (total > EVERY_MAX)
            goto out_too_long;
    }
    if (total < 1) {
        fl_error_format(err, errsize, "@every '%s': the shortest period is 1s", text);
        return FL_EINVAL;
    }
    out->every = total;
    return 0;
out_too_long:
    fl_error_format(err, errsize, "@every '%s': the longest period is 87600h", text);
    return FL_EINVAL;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Split text into at most max words (start and length of each). Returns
 * how many words there are (possibly more than max). */
static int split_words(const char *text, const char **start, size_t *len, int max)
{
    int n = 0;
    const char *s = text;
    for (;;) {
        while (is_space(*s))
            s++;
        if (*s == '\0')
            return n;
        const char *w = s;
        while (*s != '\0' && !is_space(*s))
            s++;
        if (n < max) {
            start[n] = w;
            len[n] = (size_t)(s - w);
        }
        n++;
    }
}

static int parse_fields(const char *expr, struct fl_cron *out, char *err, size_t errsize)
{
    const char *start[NFIELDS];
    size_t len[NFIELDS];
    int n = split_words(expr, start, len, NFIELDS);
    if (n != 5 && n != 6) {
        fl_error_format(err, errsize,
                        "%d field%s: write 5 (minute hour day-of-month month day-of-week), 6 (with "
                        "seconds first) or a descriptor (@hourly, @daily, @every 5m, ...)",
                        n, n == 1 ? "" : "s");
        return FL_EINVAL;
    }
    int first = n == 6 ? F_SECOND : F_MINUTE;
    uint64_t bits[NFIELDS] = {[F_SECOND] = 1}; /* 5 fields: at second 0 */
    bool any[NFIELDS] = {false};
    for (int i = first; i < NFIELDS; i++) {
        struct field_ctx x = {&fields[i], i - first + 1, err, errsize};
        int rc = parse_field(&x, start[i - first], len[i - first], &bits[i], &any[i]);
        if (rc < 0)
            return rc;
    }
    out->seconds = bits[F_SECOND];
    out->minutes = bits[F_MINUTE];
    out->hours = (uint32_t)bits[F_HOUR];
    out->days = (uint32_t)bits[F_DAY];
    out->months = (uint16_t)bits[F_MONTH];
    out->weekdays = (uint8_t)bits[F_WEEKDAY];
    out->days_any = any[F_DAY];
    out->weekdays_any = any[F_WEEKDAY];
    out->wall_clock = start[F_MINUTE - first][0] == '*' || start[F_HOUR - first][0] == '*';
    return 0;
}

int fl_cron_parse(const char *expr, struct fl_cron *out, char *err, size_t errsize)
{
    memset(out, 0, sizeof(*out));
    if (strlen(expr) > FL_CRON_EXPR_MAX) {
        fl_error_format(err, errsize, "the expression is longer than %d characters",
                        FL_CRON_EXPR_MAX);
        return FL_EINVAL;
    }
    while (is_space(*expr))
        expr++;
    if (*expr == '\0') {
        fl_error_format(
            err, errsize,
            "the expression is empty: write 5 fields (minute hour day-of-month month "
            "day-of-week), 6 (with seconds first) or a descriptor (@hourly, @every 5m, ...)");
        return FL_EINVAL;
    }
    if (*expr != '@')
        return parse_fields(expr, out, err, errsize);

    const char *start[3];
    size_t len[3];
    int n = split_words(expr, start, len, 3);
    if (fl_str_ieq(start[0], len[0], "@every")) {
        char duration[FL_CRON_EXPR_MAX + 1] = "";
        if (n > 2) {
            fl_error_format(err, errsize, "@every takes one duration, like 30s, 5m or 1h30m");
            return FL_EINVAL;
        }
        if (n == 2)
            fl_strlcpy(duration, start[1], len[1] + 1);
        return parse_every(duration, out, err, errsize);
    }
    for (size_t i = 0; i < NDESCRIPTORS; i++) {
        if (!fl_str_ieq(start[0], len[0], descriptors[i].name))
            continue;
        if (n > 1) {
            fl_error_format(err, errsize, "%s takes no fields", descriptors[i].name);
            return FL_EINVAL;
        }
        return parse_fields(descriptors[i].fields, out, err, errsize);
    }
    fl_error_format(err, errsize,
                    "unknown descriptor '%.*s': use @yearly, @annually, @monthly, @weekly, @daily, "
                    "@midnight, @hourly or @every DURATION",
                    (int)(len[0] > 32 ? 32 : len[0]), start[0]);
    return FL_EINVAL;
}

/* ---- the search ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool day_matches(const struct fl_cron *c, const struct fl_tz_civil *t)
{
    int64_t days = floor_div(fl_tz_civil_join(t), 86400);
    int weekday = (int)(days + 4 - floor_div(days + 4, 7) * 7);
    bool day = c->days >> t->day & 1, weekday_ok = c->weekdays >> weekday & 1;
    if (c->days_any || c->weekdays_any)
        return day && weekday_ok;
    return day || weekday_ok;
}

/* Steps of the calendar: each moves to the start of the next unit. */
static void next_month(struct fl_tz_civil *t)
{
    t->day = 1;
    t->hour = t->minute = t->second = 0;
    if (++t->month > 12) {
        t->month = 1;
        t->year++;
    }
}

static void next_day(struct fl_tz_civil *t)
{
    t->hour = t->minute = t->second = 0;
    if (++t->day > fl_tz_days_in_month(t->year, t->month))
        next_month(t);
}

static void next_hour(struct fl_tz_civil *t)
{
    t->minute = t->second = 0;
    if (++t->hour > 23)
        next_day(t);
}

static void next_minute(struct fl_tz_civil *t)
{
    t->second = 0;
    if (++t->minute > 59)
        next_hour(t);
}

/* The first local time at or after from (see tz.h) that the fields match,
 * within FL_CRON_SEARCH_YEARS. Each step skips a whole unit that cannot
 * match, so a year costs at most some 400 steps (12 months, 366 days, and
 * seconds, minutes and hours only on matching days). */
static int civil_next(const struct fl_cron *c, int64_t from, int64_t *out)
{
    struct fl_tz_civil t;
    fl_tz_civil_split(from, &t);
    int64_t last_year = t.year + FL_CRON_SEARCH_YEARS;
    while (t.year <= last_year) {
        if (!(c->months >> t.month & 1))
            next_month(&t);
        else if (!day_matches(c, &t))
            next_day(&t);
        else if (!(c->hours >> t.hour & 1))
            next_hour(&t);
        else if (!(c->minutes >> t.minute & 1))
            next_minute(&t);
        else if (!(c->seconds >> t.second & 1)) {
            if (++t.second > 59)
                next_minute(&t);
        } else {
            *out = fl_tz_civil_join(&t);
            return 0;
        }
    }
    return FL_ENOENT;
}

/* 0, or FL_ERANGE for an instant (or an @every anchor) out of range. */
static int check_range(const struct fl_cron *c, int64_t t)
{
    if (t < FL_CRON_TIME_MIN || t > FL_CRON_TIME_MAX ||
        (c->every > 0 &&
         (c->every_anchor < -FL_CRON_TIME_MAX || c->every_anchor > FL_CRON_TIME_MAX)))
        return FL_ERANGE;
    return 0;
}

int fl_cron_next(const struct fl_cron *c, const struct fl_tz *tz, int64_t after, int64_t *next)
{
    if (check_range(c, after) < 0)
        return FL_ERANGE;
    if (c->every > 0) {
        *next = c->every_anchor + (floor_div(after - c->every_anchor, c->every) + 1) * c->every;
        return 0;
    }
    /* Walk the spans of one UTC offset from after on: within a span the
     * wall clock is the instant plus the offset, so the first match there
     * is civil_next() of where the span is entered. */
    int64_t t = after + 1, limit = after + FL_CRON_SEARCH_YEARS * 366LL * 86400;
    for (int guard = 0; guard < 4 * FL_CRON_SEARCH_YEARS && t <= limit; guard++) {
        struct fl_tz_span span;
        int64_t local;
        fl_tz_span(tz, t, &span);
        bool changed = span.start != INT64_MIN && span.start == t;
        if (!c->wall_clock && changed && span.offset > span.prev_offset &&
            civil_next(c, span.start + span.prev_offset, &local) == 0 &&
            local < span.start + span.offset) {
            *next = t; /* a fixed time the clock skipped: at the end of the gap */
            return 0;
        }
        int64_t from = t + span.offset;
        if (!c->wall_clock && span.start != INT64_MIN && span.offset < span.prev_offset &&
            from < span.start + span.prev_offset)
            from = span.start + span.prev_offset; /* shown before the fall-back: fired then */
        int rc = civil_next(c, from, &local);
        if (rc < 0)
            return rc;
        if (local - span.offset < span.end) {
            *next = local - span.offset;
            return 0;
        }
        t = span.end;
    }
    return FL_ENOENT;
}

int fl_cron_prev(const struct fl_cron *c, const struct fl_tz *tz, int64_t at, int64_t *prev)
{
    if (check_range(c, at) < 0)
        return FL_ERANGE;
    if (c->every > 0) {
        *prev = c->every_anchor + floor_div(at - c->every_anchor, c->every) * c->every;
        return 0;
    }
    /* fl_cron_next() is monotonic: find lo < at with next(lo) <= at by
     * doubling the distance back, then close in on the last such lo; the
     * fire time after it is the last one at or before at. */
    const int64_t horizon = FL_CRON_SEARCH_YEARS * 366LL * 86400;
    int64_t lo, hi = at, width = 1, n;
    for (;;) {
        lo = at - width < FL_CRON_TIME_MIN ? FL_CRON_TIME_MIN : at - width;
        int rc = fl_cron_next(c, tz, lo, &n);
        if (rc < 0 && rc != FL_ENOENT)
            return rc;
        if (rc == 0 && n <= at)
            break;
        if (lo == FL_CRON_TIME_MIN || width > horizon)
            return FL_ENOENT;
        hi = lo;
        width *= 2;
    }
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        int rc = fl_cron_next(c, tz, mid, &n);
        if (rc < 0 && rc != FL_ENOENT)
            return rc;
        if (rc == 0 && n <= at)
            lo = mid;
        else
            hi = mid;
    }
    return fl_cron_next(c, tz, lo, prev);
}
