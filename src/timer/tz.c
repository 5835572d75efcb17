/* Time zones from TZif files (see tz.h; the format is RFC 8536). */
#include "timer/tz.h"

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every UTC offset lies strictly within +-26 hours (RFC 8536 3.2 says
 * -89999..93599): a local time's instants are within that of it. */
#define OFFSET_LIMIT (26 * 3600)

/* A date of a POSIX TZ rule: Jn (1-365, February 29 never counted), n
 * (0-365, counted) or Mm.w.d (day d of week w of month m; w 5 = last). */
struct rule_date {
    char kind; /* 'J', 'N' or 'M' */
    int n, month, week, weekday;
    int32_t time; /* seconds after local midnight, -167h..167h */
};

/* The footer's POSIX TZ string: standard time, and maybe daylight time
 * from start (in standard time) to end (in daylight time) every year. */
struct rule {
    int32_t std_offset; /* seconds east of UTC */
    int32_t dst_offset;
    bool has_dst;
    struct rule_date start, end;
};

struct fl_tz {
    char name[FL_TZ_NAME_MAX];
    size_t ntrans;
    int64_t *at;     /* instants where the offset changes, ascending */
    int32_t *offset; /* offset[i] is in effect from at[i] on */
    int32_t initial; /* the offset before at[0] */
    bool has_rule;   /* a footer: it governs from the last transition on */
    struct rule rule;
};

/* ---- the civil calendar (Howard Hinnant's days_from_civil) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* 0 = Sunday: 1970-01-01 (day 0) was a Thursday. */
static int weekday_of(int64_t days)
{
    return (int)(days + 4 - floor_div(days + 4, 7) * 7);
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool fl_tz_is_leap(int64_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int fl_tz_days_in_month(int64_t year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12)
        return 0;
    return days[month - 1] + (month == 2 && fl_tz_is_leap(year));
}

void fl_tz_civil_split(int64_t secs, struct fl_tz_civil *out)
{
    int64_t days = floor_div(secs, 86400);
    int64_t rem = secs - days * 86400;
    out->hour = (int)(rem / 3600);
    out->minute = (int)(rem / 60 % 60);
    out->second = (int)(rem % 60);
    out->weekday = weekday_of(days);
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    out->day = (int)(doy - (153 * mp + 2) / 5 + 1);
    out->month = (int)(mp < 10 ? mp + 3 : mp - 9);
    out->year = yoe + era * 400 + (out->month <= 2);
}

int64_t fl_tz_civil_join(const struct fl_tz_civil *c)
{
    return days_from_civil(c->year, c->month, c->day) * 86400 + c->hour * 3600 + c->minute * 60 +
           c->second;
}

/* ---- POSIX TZ strings (the footer) ---- */

/* A zone abbreviation: three or more letters, or <...> of letters, digits,
 * '+' and '-'. */
static bool parse_abbreviation(const char **p)
{
    const char *s = *p;
    size_t n = 0;
    if (*s == '<') {
        for (s++; (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                  (*s >= '0' && *s <= '9') || *s == '+' || *s == '-';
             s++)
            n++;
        if (*s != '>' || n < 3)
            return false;
        *p = s + 1;
        return true;
    }
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++, n++;
    *p = s;
    return n >= 3;
}

/* [+-]h[h][h][:mm[:ss]] with hours up to max_hours, in seconds. */
static bool parse_hms(const char **p, int max_hours, int32_t *out)
{
    const char *s = *p;
    int sign = 1, part[3] = {0, 0, 0}, nparts = 0;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    while (nparts < 3) {
        int digits = 0, v = 0;
        while (*s >= '0' && *s <= '9' && digits < 3)
            v = v * 10 + (*s++ - '0'), digits++;
        if (digits == 0 || (nparts > 0 && (digits != 2 || v > 59)))
            return false;
        part[nparts++] = v;
        if (*s != ':' || nparts == 3)
            break;
        s++;
    }
    if (part[0] > max_hours)
        return false;
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    *p = s;
    return true;
}

static bool parse_number(const char **p, int min, int max, int *out)
{
    const char *s = *p;
    int v = 0, digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 4)
        v = v * 10 + (*s++ - '0'), digits++;
    if (digits == 0 || v < min || v > max)
        return false;
    *out = v;
    *p = s;
    return true;
}

/* A rule's date, and its time ("/2" by default). */
static bool parse_rule_date(const char **p, struct rule_date *d)
{
    const char *s = *p;
    memset(d, 0, sizeof(*d));
    if (*s == 'J') {
        s++;
        d->kind = 'J';
        if (!parse_number(&s, 1, 365, &d->n))
            return false;
    } else if (*s == 'M') {
        s++;
        d->kind = 'M';
        if (!parse_number(&s, 1, 12, &d->month) || *s++ != '.' ||
            !parse_number(&s, 1, 5, &d->week) || *s++ != '.' ||
            !parse_number(&s, 0, 6, &d->weekday))
            return false;
    } else {
        d->kind = 'N';
        if (!parse_number(&s, 0, 365, &d->n))
            return false;
    }
    d->time = 2 * 3600;
    if (*s == '/') {
        s++;
        if (!parse_hms(&s, 167, &d->time))
            return false;
    }
    *p = s;
    return true;
}

/* "std offset [dst [offset] [,start[/time],end[/time]]]"; offsets count
 * west of UTC there, east here. */
static bool parse_posix_tz(const char *s, struct rule *r)
{
    int32_t west;
    memset(r, 0, sizeof(*r));
    if (!parse_abbreviation(&s) || !parse_hms(&s, 24, &west))
        return false;
    r->std_offset = -west;
    if (*s == '\0')
        return true;
    if (!parse_abbreviation(&s))
        return false;
    r->has_dst = true;
    r->dst_offset = r->std_offset + 3600;
    if (*s != ',' && *s != '\0') {
        if (!parse_hms(&s, 24, &west))
            return false;
        r->dst_offset = -west;
    }
    if (*s == '\0') {
        /* no rule: the United States' since 2007, as glibc assumes */
        const char *us = "M3.2.0,M11.1.0";
        return parse_rule_date(&us, &r->start) && *us++ == ',' && parse_rule_date(&us, &r->end);
    }
    return *s++ == ',' && parse_rule_date(&s, &r->start) && *s++ == ',' &&
           parse_rule_date(&s, &r->end) && *s == '\0';
}

/* The instant date d falls on in year, read on a clock at offset. */
static int64_t rule_instant(const struct rule_date *d, int64_t year, int32_t offset)
{
    int64_t days;
    if (d->kind == 'J') {
        days = days_from_civil(year, 1, 1) + d->n - 1 + (fl_tz_is_leap(year) && d->n >= 60);
    } else if (d->kind == 'N') {
        days = days_from_civil(year, 1, 1) + d->n;
    } else {
        int64_t first = days_from_civil(year, d->month, 1);
        int day = 1 + (d->weekday - weekday_of(first) + 7) % 7 + 7 * (d->week - 1);
        while (day > fl_tz_days_in_month(year, d->month))
            day -= 7;
        days = first + day - 1;
    }
    return days * 86400 + d->time - offset;
}

/* ---- spans ---- */

struct change {
    int64_t at;
    int32_t offset;
};

/* The rule's changes in years y .. y + 3, in order (at most 8). */
static size_t rule_changes(const struct rule *r, int64_t y, struct change *out)
{
    size_t n = 0;
    for (int64_t year = y; year < y + 4; year++) {
        struct change pair[2] = {
            {rule_instant(&r->start, year, r->std_offset), r->dst_offset},
            {rule_instant(&r->end, year, r->dst_offset), r->std_offset},
        };
        for (int k = 0; k < 2; k++) {
            size_t i = n++;
            while (i > 0 && out[i - 1].at > pair[k].at) {
                out[i] = out[i - 1];
                i--;
            }
            out[i] = pair[k];
        }
    }
    return n;
}

/* The span of t within the explicit transitions (t before the last one,
 * or no footer). */
static void table_span(const struct fl_tz *tz, int64_t t, struct fl_tz_span *span)
{
    size_t lo = 0, hi = tz->ntrans; /* i = number of transitions at or before t */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->at[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t i = lo;
    span->offset = i == 0 ? tz->initial : tz->offset[i - 1];
    span->start = i == 0 ? INT64_MIN : tz->at[i - 1];
    span->prev_offset = i <= 1 ? tz->initial : tz->offset[i - 2];
    span->end = i < tz->ntrans ? tz->at[i] : INT64_MAX;
}

/* The span of t from the last explicit transition on, under the footer. */
static void rule_span(const struct fl_tz *tz, int64_t t, struct fl_tz_span *span)
{
    const struct rule *r = &tz->rule;
    size_t n = tz->ntrans;
    span->start = n > 0 ? tz->at[n - 1] : INT64_MIN;
    span->offset = n > 0 ? tz->offset[n - 1] : r->std_offset;
    span->prev_offset = n > 1 ? tz->offset[n - 2] : tz->initial;
    span->end = INT64_MAX;
    if (n == 0)
        span->prev_offset = span->offset;
    if (!r->has_dst)
        return;
    struct fl_tz_civil c;
    fl_tz_civil_split(t, &c);
    struct change changes[8];
    size_t count = rule_changes(r, c.year - 1, changes);
    if (n == 0)
        span->offset = span->prev_offset =
            changes[0].offset == r->dst_offset ? r->std_offset : r->dst_offset;
    for (size_t i = 0; i < count; i++) {
        /* changes at one instant are one change, to the last one's offset
         * (DST all year: one year's end is the next one's start) */
        while (i + 1 < count && changes[i + 1].at == changes[i].at)
            i++;
        if (i == count - 1)
            break; /* the window's last: the next year may undo it at once; t is
                      at least a year before it, so it is never the end wanted */
        if (changes[i].at <= span->start || changes[i].offset == span->offset)
            continue;
        if (changes[i].at > t) {
            span->end = changes[i].at;
            return;
        }
        span->prev_offset = span->offset;
        span->offset = changes[i].offset;
        span->start = changes[i].at;
    }
}

void fl_tz_span(const struct fl_tz *tz, int64_t t, struct fl_tz_span *span)
{
    if (tz == NULL) {
        *span = (struct fl_tz_span){INT64_MIN, INT64_MAX, 0, 0};
        return;
    }
    if (!tz->has_rule || (tz->ntrans > 0 && t < tz->at[tz->ntrans - 1]))
        table_span(tz, t, span);
    else
        rule_span(tz, t, span);
}

int32_t fl_tz_offset(const struct fl_tz *tz, int64_t t)
{
    struct fl_tz_span span;
    fl_tz_span(tz, t, &span);
    return span.offset;
}

void fl_tz_from_local(const struct fl_tz *tz, int64_t local, struct fl_tz_local *out)
{
    int64_t found[2], gap = 0, t = local - OFFSET_LIMIT;
    int nfound = 0;
    bool skipped = false;
    struct fl_tz_span span;
    /* Every instant local can name lies within OFFSET_LIMIT of it: try
     * the offset of each span that covers part of that window. */
    for (int i = 0; i < 64; i++) {
        fl_tz_span(tz, t, &span);
        int64_t u = local - span.offset;
        if (u >= span.start && u < span.end && nfound < 2)
            found[nfound++] = u;
        if (span.start != INT64_MIN && span.offset > span.prev_offset &&
            local >= span.start + span.prev_offset && local < span.start + span.offset)
            skipped = true, gap = span.start;
        if (span.end == INT64_MAX || span.end > local + OFFSET_LIMIT)
            break;
        t = span.end;
    }
    if (nfound == 2) {
        *out = (struct fl_tz_local){FL_TZ_LOCAL_REPEATED, found[0], found[1]};
    } else if (nfound == 1 || !skipped) {
        int64_t u = nfound == 1 ? found[0] : local - fl_tz_offset(tz, local);
        *out = (struct fl_tz_local){FL_TZ_LOCAL_UNIQUE, u, u};
    } else {
        *out = (struct fl_tz_local){FL_TZ_LOCAL_SKIPPED, gap, gap};
    }
}

/* ---- TZif files ---- */

struct reader {
    const unsigned char *p;
    size_t left;
};

static bool take(struct reader *r, size_t n, const unsigned char **out)
{
    if (r->left < n)
        return false;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return true;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct header {
    char version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static bool read_header(struct reader *r, struct header *h)
{
    const unsigned char *p;
    if (!take(r, 44, &p) || memcmp(p, "TZif", 4) != 0)
        return false;
    h->version = (char)p[4];
    uint32_t *counts[6] = {&h->isutcnt, &h->isstdcnt, &h->leapcnt,
                           &h->timecnt, &h->typecnt,  &h->charcnt};
    for (int i = 0; i < 6; i++)
        *counts[i] = be32(p + 20 + 4 * i);
    return true;
}

/* Bytes of a data block whose times are time_size bytes. The counts are
 * each below 2^32, so this cannot overflow a 64-bit size_t. */
static size_t block_size(const struct header *h, size_t time_size)
{
    return (size_t)h->timecnt * (time_size + 1) + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (time_size + 4) + h->isstdcnt + h->isutcnt;
}

static int parse_block(struct fl_tz *tz, struct reader *r, const struct header *h, size_t time_size,
                       char *err, size_t errsize)
{
    const unsigned char *times = NULL, *indexes = NULL, *types = NULL, *skipped = NULL;
    if (h->typecnt == 0 || (h->isstdcnt != 0 && h->isstdcnt != h->typecnt) ||
        (h->isutcnt != 0 && h->isutcnt != h->typecnt)) {
        fl_error_format(err, errsize, "inconsistent counts in the header");
        return FL_EINVAL;
    }
    if (h->leapcnt != 0) {
        fl_error_format(err, errsize, "the zone counts leap seconds: use one without them");
        return FL_ENOTSUP;
    }
    if (r->left < block_size(h, time_size)) {
        fl_error_format(err, errsize, "truncated data block");
        return FL_EINVAL;
    }
    /* the abbreviations, (no) leap seconds and the std/ut flags are not needed */
    size_t rest =
        block_size(h, time_size) - (size_t)h->timecnt * (time_size + 1) - (size_t)h->typecnt * 6;
    take(r, (size_t)h->timecnt * time_size, &times);
    take(r, h->timecnt, &indexes);
    take(r, (size_t)h->typecnt * 6, &types);
    take(r, rest, &skipped);
    for (uint32_t i = 0; i < h->typecnt; i++) {
        int32_t utoff = (int32_t)be32(types + 6 * i);
        if (utoff <= -OFFSET_LIMIT || utoff >= OFFSET_LIMIT || types[6 * i + 4] > 1 ||
            types[6 * i + 5] >= h->charcnt) {
            fl_error_format(err, errsize, "local time type %u is invalid", (unsigned)i);
            return FL_EINVAL;
        }
    }
    tz->at = calloc(h->timecnt + 1, sizeof(*tz->at));
    tz->offset = calloc(h->timecnt + 1, sizeof(*tz->offset));
    if (tz->at == NULL || tz->offset == NULL) {
        fl_error_format(err, errsize, "out of memory");
        return FL_ENOMEM;
    }
    tz->initial = (int32_t)be32(types);
    int32_t current = tz->initial;
    int64_t last = INT64_MIN;
    for (uint32_t i = 0; i < h->timecnt; i++) {
        int64_t at = time_size == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
        if ((i > 0 && at <= last) || indexes[i] >= h->typecnt) {
            fl_error_format(err, errsize, "transition %u is out of order or has no type",
                            (unsigned)i);
            return FL_EINVAL;
        }
        last = at;
        int32_t utoff = (int32_t)be32(types + 6 * indexes[i]);
        if (utoff == current)
            continue; /* only the abbreviation or the DST flag changes */
        tz->at[tz->ntrans] = at;
        tz->offset[tz->ntrans++] = utoff;
        current = utoff;
    }
    return 0;
}

/* The footer of a version 2+ file: "\n" POSIX-TZ-string "\n". */
static int parse_footer(struct fl_tz *tz, struct reader *r, char *err, size_t errsize)
{
    char text[256];
    const unsigned char *nl = r->left > 1 ? memchr(r->p + 1, '\n', r->left - 1) : NULL;
    if (r->left < 2 || r->p[0] != '\n' || nl == NULL) {
        fl_error_format(err, errsize, "missing footer");
        return FL_EINVAL;
    }
    size_t n = (size_t)(nl - r->p - 1);
    if (n == 0)
        return 0; /* no rule: the last transition's offset stays */
    if (n >= sizeof(text)) {
        fl_error_format(err, errsize, "footer longer than %zu bytes", sizeof(text) - 1);
        return FL_EINVAL;
    }
    memcpy(text, r->p + 1, n);
    text[n] = '\0';
    if (memchr(text, '\0', n) != NULL || !parse_posix_tz(text, &tz->rule)) {
        fl_error_format(err, errsize, "footer is not a POSIX TZ string");
        return FL_EINVAL;
    }
    tz->has_rule = true;
    return 0;
}

static int parse_tzif(struct fl_tz *tz, const void *data, size_t len, char *err, size_t errsize)
{
    struct reader r = {data, len};
    struct header h;
    if (!read_header(&r, &h) || !(h.version == '\0' || (h.version >= '2' && h.version <= '9'))) {
        fl_error_format(err, errsize, "not a TZif file");
        return FL_EINVAL;
    }
    if (h.version == '\0')
        return parse_block(tz, &r, &h, 4, err, errsize);
    /* version 2 and later: skip the 32-bit block for the 64-bit one */
    if (r.left < block_size(&h, 4)) {
        fl_error_format(err, errsize, "truncated data block");
        return FL_EINVAL;
    }
    r.p += block_size(&h, 4);
    r.left -= block_size(&h, 4);
    if (!read_header(&r, &h)) {
        fl_error_format(err, errsize, "missing the second header");
        return FL_EINVAL;
    }
    int rc = parse_block(tz, &r, &h, 8, err, errsize);
    if (rc == 0)
        rc = parse_footer(tz, &r, err, errsize);
    return rc;
}

int fl_tz_parse(const char *name, const void *data, size_t len, struct fl_tz **out, char *err,
                size_t errsize)
{
    char why[160] = "";
    struct fl_tz *tz = calloc(1, sizeof(*tz));
    if (tz == NULL) {
        fl_error_format(err, errsize, "out of memory");
        return FL_ENOMEM;
    }
    fl_strlcpy(tz->name, name, sizeof(tz->name));
    int rc = parse_tzif(tz, data, len, why, sizeof(why));
    if (rc < 0) {
        fl_error_format(err, errsize, "time zone '%s': %s", tz->name, why);
        fl_tz_free(tz);
        return rc;
    }
    *out = tz;
    return 0;
}

/* Whether name may be looked up under FL_TZ_DIR (see fl_tz_new()). */
static bool name_is_safe(const char *name)
{
    size_t n = strlen(name);
    bool component_start = true;
    if (n == 0 || n >= FL_TZ_NAME_MAX)
        return false;
    for (const char *p = name; *p != '\0'; p++) {
        char c = *p;
        if (c == '/') {
            if (component_start)
                return false;
            component_start = true;
            continue;
        }
        bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       c == '_' || c == '-' || c == '+' || c == '.';
        if (!allowed || (component_start && c == '.'))
            return false;
        component_start = false;
    }
    return !component_start;
}

static int new_utc(const char *name, struct fl_tz **out, char *err, size_t errsize)
{
    struct fl_tz *tz = calloc(1, sizeof(*tz));
    if (tz == NULL) {
        fl_error_format(err, errsize, "out of memory");
        return FL_ENOMEM;
    }
    fl_strlcpy(tz->name, name, sizeof(tz->name));
    *out = tz;
    return 0;
}

int fl_tz_new(const char *name, struct fl_tz **out, char *err, size_t errsize)
{
    char path[sizeof(FL_TZ_DIR) + FL_TZ_NAME_MAX + 1];
    bool local = strcmp(name, "Local") == 0;
    if (*name == '\0' || strcmp(name, "UTC") == 0)
        return new_utc("UTC", out, err, errsize);
    if (!local && !name_is_safe(name)) {
        fl_error_format(
            err, errsize,
            "'%.*s' is not a time zone name (like Europe/Berlin, America/New_York or UTC)",
            FL_TZ_NAME_MAX, name);
        return FL_EINVAL;
    }
    if (local)
        fl_strlcpy(path, "/etc/localtime", sizeof(path));
    else if (fl_path_join(path, sizeof(path), FL_TZ_DIR, name) < 0)
        return FL_EINVAL; /* cannot happen: the name's length is checked */
    struct fl_buf buf;
    fl_buf_init(&buf, FL_TZ_FILE_MAX);
    int rc = fl_file_read(path, &buf);
    if (rc == 0 && buf.len == 0 && local) {
        rc = new_utc("Local", out, err, errsize); /* no /etc/localtime: UTC, as libc does */
    } else if ((rc == 0 && buf.len == 0) || rc == -ENOTDIR || rc == -EISDIR) {
        fl_error_format(err, errsize, "unknown time zone '%s' (no zone file %s)", name, path);
        rc = FL_ENOENT;
    } else if (rc == FL_ETOOBIG) {
        fl_error_format(err, errsize, "time zone '%s': %s is larger than %d bytes", name, path,
                        FL_TZ_FILE_MAX);
    } else if (rc < 0) {
        fl_error_format(err, errsize, "time zone '%s': cannot read %s: %s", name, path,
                        fl_strerror(rc));
    } else {
        rc = fl_tz_parse(name, buf.data, buf.len, out, err, errsize);
    }
    fl_buf_release(&buf);
    return rc;
}

void fl_tz_free(struct fl_tz *tz)
{
    if (tz == NULL)
        return;
    free(tz->at);
    free(tz->offset);
    free(tz);
}

const char *fl_tz_name(const struct fl_tz *tz)
{
    return tz == NULL ? "UTC" : tz->name;
}

/* ---- RFC 3339 ---- */

int fl_tz_format_rfc3339(const struct fl_tz *tz, int64_t t, char *out, size_t size)
{
    int32_t offset = fl_tz_offset(tz, t);
    if (offset % 60 != 0)
        offset = 0; /* local mean time: hh:mm cannot say it, UTC can */
    struct fl_tz_civil c;
    fl_tz_civil_split(t + offset, &c);
    char zone[16] = "Z";
    if (offset != 0)
        snprintf(zone, sizeof(zone), "%c%02d:%02d", offset < 0 ? '-' : '+', abs(offset) / 3600,
                 abs(offset) / 60 % 60);
    int n = c.year < 0 || c.year > 9999
                ? -1
                : snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d%s", (int)c.year, c.month,
                           c.day, c.hour, c.minute, c.second, zone);
    if (n < 0 || (size_t)n >= size) {
        if (size > 0)
            out[0] = '\0';
        return FL_ERANGE;
    }
    return 0;
}

/* Exactly n digits at *p, within [min, max]. */
static bool fixed_digits(const char **p, int n, int min, int max, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    if (v < min || v > max)
        return false;
    *p += n;
    *out = v;
    return true;
}

int fl_tz_parse_rfc3339(const char *s, int64_t *out)
{
    struct fl_tz_civil c = {0};
    int year, oh = 0, om = 0, sign = 0;
    if (!fixed_digits(&s, 4, 0, 9999, &year) || *s++ != '-' ||
        !fixed_digits(&s, 2, 1, 12, &c.month) || *s++ != '-' ||
        !fixed_digits(&s, 2, 1, 31, &c.day) || (*s != 'T' && *s != 't'))
        return FL_EINVAL;
    s++;
    if (!fixed_digits(&s, 2, 0, 23, &c.hour) || *s++ != ':' ||
        !fixed_digits(&s, 2, 0, 59, &c.minute) || *s++ != ':' ||
        !fixed_digits(&s, 2, 0, 59, &c.second))
        return FL_EINVAL;
    c.year = year;
    if (c.day > fl_tz_days_in_month(year, c.month))
        return FL_EINVAL;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return FL_EINVAL;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s++ == '-' ? -1 : 1;
        if (!fixed_digits(&s, 2, 0, 23, &oh) || *s++ != ':' || !fixed_digits(&s, 2, 0, 59, &om))
            return FL_EINVAL;
    } else {
        return FL_EINVAL;
    }
    if (*s != '\0')
        return FL_EINVAL;
    *out = fl_tz_civil_join(&c) - sign * (oh * 3600 + om * 60);
    return 0;
}
