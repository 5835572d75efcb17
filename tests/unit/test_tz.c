/* Unit tests for src/timer/tz: zone names, TZif files (the system's, hand
 * made ones, truncated and corrupt ones), offsets and spans from the
 * transitions and from the footer's rule, local times in gaps and
 * repeats, the civil calendar and RFC 3339. Needs the tz database
 * (tzdata). */
#include "runner.h"
#include "timer_util.h"

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "timer/tz.h"

#include <pthread.h>
#include <stdint.h>

static int64_t local(int64_t y, int mo, int d, int h, int mi)
{
    struct fl_tz_civil c = {y, mo, d, h, mi, 0, 0};
    return fl_tz_civil_join(&c);
}

TEST(names_that_are_not_zone_names_are_refused_before_any_file)
{
    static const char *const refused[] = {
        "..",      "../etc/passwd",  "/etc/passwd",      "Europe//Berlin",
        "Europe/", ".hidden",        "Europe/../Berlin", "Europe/./Berlin",
        "a b",     "Europe\\Berlin", "Europe/Ber\nlin",  "~root",
        "$HOME",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct fl_tz *tz = NULL;
        char err[256] = "";
        ASSERT_EQ(fl_tz_new(refused[i], &tz, err, sizeof(err)), FL_EINVAL);
        ASSERT(tz == NULL);
        ASSERT(strstr(err, "is not a time zone name") != NULL);
    }
    char long_name[FL_TZ_NAME_MAX + 8];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    struct fl_tz *tz = NULL;
    ASSERT_EQ(fl_tz_new(long_name, &tz, NULL, 0), FL_EINVAL);
}

TEST(unknown_zones_and_files_that_are_not_zones)
{
    struct fl_tz *tz = NULL;
    char err[256] = "";
    ASSERT_EQ(fl_tz_new("Mars/Olympus_Mons", &tz, err, sizeof(err)), FL_ENOENT);
    ASSERT(strstr(err, "unknown time zone 'Mars/Olympus_Mons'") != NULL);
    ASSERT_EQ(fl_tz_new("Europe", &tz, err, sizeof(err)), FL_ENOENT); /* a directory */
    ASSERT_EQ(fl_tz_new("UTC/x", &tz, err, sizeof(err)), FL_ENOENT);  /* below a file */
    ASSERT_EQ(fl_tz_new("zone.tab", &tz, err, sizeof(err)), FL_EINVAL);
    ASSERT(strstr(err, "not a TZif file") != NULL);
    ASSERT(tz == NULL);
}

TEST(utc_empty_and_local)
{
    struct fl_tz *utc = load("UTC"), *empty = load(""), *etc = load("Etc/UTC");
    struct fl_tz *local_zone = load("Local");
    ASSERT_STR_EQ(fl_tz_name(utc), "UTC");
    ASSERT_STR_EQ(fl_tz_name(empty), "UTC");
    ASSERT_STR_EQ(fl_tz_name(local_zone), "Local");
    ASSERT_STR_EQ(fl_tz_name(NULL), "UTC");
    int64_t t = at("2026-07-01T12:00:00Z");
    ASSERT_EQ(fl_tz_offset(utc, t), 0);
    ASSERT_EQ(fl_tz_offset(empty, t), 0);
    ASSERT_EQ(fl_tz_offset(etc, t), 0);
    ASSERT_EQ(fl_tz_offset(NULL, t), 0);
    struct fl_tz_span span;
    fl_tz_span(utc, t, &span);
    ASSERT(span.start == INT64_MIN && span.end == INT64_MAX);
    fl_tz_free(utc);
    fl_tz_free(empty);
    fl_tz_free(etc);
    fl_tz_free(local_zone);
    fl_tz_free(NULL);
}

/* Offsets from the file's transitions (2026) and, past its last one
 * (2037 in a "fat" file, earlier in a "slim" one), from the footer. */
TEST(offsets_in_summer_and_winter_from_transitions_and_footer)
{
    static const struct {
        const char *zone, *time;
        int32_t offset;
    } cases[] = {
        {"Europe/Berlin", "2026-01-15T12:00:00Z", 3600},
        {"Europe/Berlin", "2026-07-15T12:00:00Z", 7200},
        {"Europe/Berlin", "2100-01-15T12:00:00Z", 3600},
        {"Europe/Berlin", "2100-07-15T12:00:00Z", 7200},
        {"America/New_York", "2026-01-15T12:00:00Z", -5 * 3600},
        {"America/New_York", "2026-07-15T12:00:00Z", -4 * 3600},
        {"America/New_York", "2090-07-15T12:00:00Z", -4 * 3600},
        {"Australia/Sydney", "2050-01-15T12:00:00Z", 11 * 3600}, /* southern summer */
        {"Australia/Sydney", "2050-07-15T12:00:00Z", 10 * 3600},
        {"Europe/Dublin", "2050-01-15T12:00:00Z", 0}, /* negative DST in the footer */
        {"Europe/Dublin", "2050-07-15T12:00:00Z", 3600},
        {"Asia/Kolkata", "2080-07-15T12:00:00Z", 5 * 3600 + 1800},
        {"Asia/Tokyo", "2026-07-15T12:00:00Z", 9 * 3600},
        {"Etc/GMT+5", "2026-07-15T12:00:00Z", -5 * 3600},
        {"Europe/Berlin", "1890-01-01T00:00:00Z", 3208}, /* local mean time */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fl_tz *tz = load(cases[i].zone);
        int32_t got = fl_tz_offset(tz, at(cases[i].time));
        if (got != cases[i].offset)
            fl_test_fail(__FILE__, __LINE__, "%s at %s: %d, want %d", cases[i].zone, cases[i].time,
                         (int)got, (int)cases[i].offset);
        fl_tz_free(tz);
    }
}

TEST(spans_end_at_the_transitions)
{
    static const struct {
        const char *zone, *time, *start, *end;
        int32_t offset, prev_offset;
    } cases[] = {
        {"Europe/Berlin", "2026-05-01T00:00:00Z", "2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z",
         7200, 3600},
        {"Europe/Berlin", "2026-10-25T01:00:00Z", "2026-10-25T01:00:00Z", "2027-03-28T01:00:00Z",
         3600, 7200},
        /* from the footer: CET-1CEST,M3.5.0,M10.5.0/3 */
        {"Europe/Berlin", "2046-05-01T00:00:00Z", "2046-03-25T01:00:00Z", "2046-10-28T01:00:00Z",
         7200, 3600},
        {"Europe/Berlin", "2046-12-31T23:59:59Z", "2046-10-28T01:00:00Z", "2047-03-31T01:00:00Z",
         3600, 7200},
        {"America/New_York", "2026-03-08T06:59:59Z", "2025-11-02T06:00:00Z", "2026-03-08T07:00:00Z",
         -18000, -14400},
        {"America/New_York", "2050-11-06T06:00:00Z", "2050-11-06T06:00:00Z", "2051-03-12T07:00:00Z",
         -18000, -14400},
        {"Australia/Sydney", "2050-01-01T00:00:00Z", "2049-10-02T16:00:00Z", "2050-04-02T16:00:00Z",
         39600, 36000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fl_tz *tz = load(cases[i].zone);
        struct fl_tz_span span;
        fl_tz_span(tz, at(cases[i].time), &span);
        char start[FL_TZ_RFC3339_MAX], end[FL_TZ_RFC3339_MAX];
        ASSERT_OK(fl_tz_format_rfc3339(NULL, span.start, start, sizeof(start)));
        ASSERT_OK(fl_tz_format_rfc3339(NULL, span.end, end, sizeof(end)));
        if (strcmp(start, cases[i].start) != 0 || strcmp(end, cases[i].end) != 0 ||
            span.offset != cases[i].offset || span.prev_offset != cases[i].prev_offset)
            fl_test_fail(__FILE__, __LINE__, "%s at %s: [%s, %s) %d after %d", cases[i].zone,
                         cases[i].time, start, end, (int)span.offset, (int)span.prev_offset);
        fl_tz_free(tz);
    }
}

TEST(local_times_in_gaps_and_repeats)
{
    const struct {
        const char *zone;
        int64_t local;
        enum fl_tz_local_kind kind;
        const char *first, *second;
    } cases[] = {
        {"Europe/Berlin", local(2026, 3, 29, 2, 30), FL_TZ_LOCAL_SKIPPED, "2026-03-29T01:00:00Z",
         "2026-03-29T01:00:00Z"},
        {"Europe/Berlin", local(2026, 3, 29, 2, 0), FL_TZ_LOCAL_SKIPPED, "2026-03-29T01:00:00Z",
         "2026-03-29T01:00:00Z"},
        {"Europe/Berlin", local(2026, 3, 29, 3, 0), FL_TZ_LOCAL_UNIQUE, "2026-03-29T01:00:00Z",
         "2026-03-29T01:00:00Z"},
        {"Europe/Berlin", local(2026, 3, 29, 1, 59), FL_TZ_LOCAL_UNIQUE, "2026-03-29T00:59:00Z",
         "2026-03-29T00:59:00Z"},
        {"Europe/Berlin", local(2026, 10, 25, 2, 30), FL_TZ_LOCAL_REPEATED, "2026-10-25T00:30:00Z",
         "2026-10-25T01:30:00Z"},
        {"Europe/Berlin", local(2026, 10, 25, 3, 0), FL_TZ_LOCAL_UNIQUE, "2026-10-25T02:00:00Z",
         "2026-10-25T02:00:00Z"},
        {"America/New_York", local(2026, 3, 8, 2, 30), FL_TZ_LOCAL_SKIPPED, "2026-03-08T07:00:00Z",
         "2026-03-08T07:00:00Z"},
        {"America/New_York", local(2026, 11, 1, 1, 30), FL_TZ_LOCAL_REPEATED,
         "2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"},
        {"America/New_York", local(2050, 11, 6, 1, 0), FL_TZ_LOCAL_REPEATED, "2050-11-06T05:00:00Z",
         "2050-11-06T06:00:00Z"},
        /* Samoa skipped 2011-12-30 whole: -10 to +14 */
        {"Pacific/Apia", local(2011, 12, 30, 12, 0), FL_TZ_LOCAL_SKIPPED, "2011-12-30T10:00:00Z",
         "2011-12-30T10:00:00Z"},
        {"UTC", local(2026, 3, 29, 2, 30), FL_TZ_LOCAL_UNIQUE, "2026-03-29T02:30:00Z",
         "2026-03-29T02:30:00Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fl_tz *tz = load(cases[i].zone);
        struct fl_tz_local l;
        fl_tz_from_local(tz, cases[i].local, &l);
        if (l.kind != cases[i].kind || l.first != at(cases[i].first) ||
            l.second != at(cases[i].second))
            fl_test_fail(__FILE__, __LINE__, "case %zu (%s): kind %d, %lld, %lld", i, cases[i].zone,
                         (int)l.kind, (long long)l.first, (long long)l.second);
        fl_tz_free(tz);
    }
}

/* ---- hand-made TZif files ---- */

struct tzif {
    unsigned char data[1024];
    size_t len;
};

static void put_bytes(struct tzif *f, const void *p, size_t n)
{
    ASSERT(f->len + n <= sizeof(f->data));
    memcpy(f->data + f->len, p, n);
    f->len += n;
}

static void put32(struct tzif *f, uint32_t v)
{
    unsigned char b[4] = {v >> 24, v >> 16, v >> 8, v};
    put_bytes(f, b, 4);
}

static void put64(struct tzif *f, int64_t v)
{
    put32(f, (uint32_t)((uint64_t)v >> 32));
    put32(f, (uint32_t)v);
}

/* A zone with the given transitions between two types (+1h "AAA" and
 * +2h "BBB", alternating from BBB), leap seconds as asked, in version
 * 1 (32-bit only) or 2 (both blocks and footer). */
static void make_tzif(struct tzif *f, char version, const int64_t *times, uint32_t ntimes,
                      uint32_t leaps, const char *footer)
{
    f->len = 0;
    for (int block = 0; block < (version == 0 ? 1 : 2); block++) {
        size_t time_size = block == 0 ? 4 : 8;
        put_bytes(f, "TZif", 4);
        put_bytes(f, &version, 1);
        put_bytes(f, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 15);
        uint32_t counts[6] = {0, 0, leaps, ntimes, 2, 8};
        for (int i = 0; i < 6; i++)
            put32(f, counts[i]);
        for (uint32_t i = 0; i < ntimes; i++)
            time_size == 4 ? put32(f, (uint32_t)times[i]) : put64(f, times[i]);
        for (uint32_t i = 0; i < ntimes; i++)
            put_bytes(f, i % 2 == 0 ? "\1" : "\0", 1);
        put32(f, 3600);
        put_bytes(f, "\0\0", 2);
        put32(f, 7200);
        put_bytes(f, "\1\4", 2);
        put_bytes(f, "AAA\0BBB\0", 8);
        for (uint32_t i = 0; i < leaps; i++) {
            time_size == 4 ? put32(f, 78796800) : put64(f, 78796800);
            put32(f, 1);
        }
    }
    if (version != 0) {
        put_bytes(f, "\n", 1);
        put_bytes(f, footer, strlen(footer));
        put_bytes(f, "\n", 1);
    }
}

TEST(version_1_files_use_their_32_bit_block)
{
    struct tzif f;
    const int64_t times[] = {1000000000, 1100000000};
    make_tzif(&f, 0, times, 2, 0, NULL);
    struct fl_tz *tz = NULL;
    char err[256] = "";
    ASSERT_OK(fl_tz_parse("Test/V1", f.data, f.len, &tz, err, sizeof(err)));
    ASSERT_STR_EQ(fl_tz_name(tz), "Test/V1");
    ASSERT_EQ(fl_tz_offset(tz, 999999999), 3600);
    ASSERT_EQ(fl_tz_offset(tz, 1000000000), 7200);
    ASSERT_EQ(fl_tz_offset(tz, 1100000000), 3600);
    ASSERT_EQ(fl_tz_offset(tz, 4000000000LL), 3600); /* no footer: the last type stays */
    fl_tz_free(tz);
}

TEST(a_file_without_transitions_follows_its_footer)
{
    struct tzif f;
    make_tzif(&f, '2', NULL, 0, 0, "EST5EDT,M3.2.0,M11.1.0");
    struct fl_tz *tz = NULL;
    char err[256] = "";
    ASSERT_OK(fl_tz_parse("Test/Rule", f.data, f.len, &tz, err, sizeof(err)));
    ASSERT_EQ(fl_tz_offset(tz, at("2026-01-15T12:00:00Z")), -5 * 3600);
    ASSERT_EQ(fl_tz_offset(tz, at("2026-07-15T12:00:00Z")), -4 * 3600);
    struct fl_tz_span span;
    fl_tz_span(tz, at("2026-07-15T12:00:00Z"), &span);
    ASSERT_EQ(span.start, at("2026-03-08T07:00:00Z"));
    ASSERT_EQ(span.end, at("2026-11-01T06:00:00Z"));
    fl_tz_free(tz);
    /* other rule forms: Julian days, zero-based days, <quoted> names,
     * times past 24h and negative (version 3) */
    static const struct {
        const char *footer, *time;
        int32_t offset;
    } rules[] = {
        {"<+0330>-3:30", "2026-07-15T12:00:00Z", 3 * 3600 + 1800},
        {"XXX3YYY,J60/0,J300/0", "2027-03-02T12:00:00Z", -2 * 3600},
        {"XXX3YYY,J60/0,J300/0", "2027-02-28T12:00:00Z", -3 * 3600},
        {"XXX3YYY,59/0,299/0", "2028-02-29T12:00:00Z", -2 * 3600},
        {"<-03>3<-02>,M3.5.0/-2,M10.5.0/-1", "2026-07-15T12:00:00Z", -2 * 3600},
        {"EST5EDT,0/0,J365/25", "2026-07-15T12:00:00Z", -4 * 3600}, /* DST all year */
        {"EST5EDT,0/0,J365/25", "2026-12-31T23:00:00Z", -4 * 3600},
        {"AAA-10BBB-11:00:00,M10.1.0,M4.1.0/3", "2026-01-15T12:00:00Z", 11 * 3600},
        {"EST5EDT", "2026-07-15T12:00:00Z", -4 * 3600}, /* no rule: the US one */
    };
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        make_tzif(&f, '3', NULL, 0, 0, rules[i].footer);
        if (fl_tz_parse("Test/Rule", f.data, f.len, &tz, err, sizeof(err)) != 0)
            fl_test_fail(__FILE__, __LINE__, "'%s': %s", rules[i].footer, err);
        int32_t got = fl_tz_offset(tz, at(rules[i].time));
        if (got != rules[i].offset)
            fl_test_fail(__FILE__, __LINE__, "'%s' at %s: %d, want %d", rules[i].footer,
                         rules[i].time, (int)got, (int)rules[i].offset);
        if (strstr(rules[i].footer, "J365/25") != NULL) {
            /* one year's end and the next one's start are no change at all */
            fl_tz_span(tz, at(rules[i].time), &span);
            ASSERT(span.start < at("2026-01-01T00:00:00Z") && span.end == INT64_MAX);
        }
        fl_tz_free(tz);
    }
}

TEST(bad_footers_leap_seconds_and_bad_headers_are_refused)
{
    static const char *const footers[] = {
        "EST",   "E5",       "EST5EDT,M3.2.0",          "EST5EDT,M13.1.0,M11.1.0",
        "EST99", "EST5EDT,", "EST5EDT,J0,J100",         "EST5EDT,M3.2.0/200,M11.1.0",
        "<AB>5", "<EST5",    "EST5EDT,M3.2.0,M11.1.0x",
    };
    struct tzif f;
    struct fl_tz *tz = NULL;
    char err[256] = "";
    for (size_t i = 0; i < sizeof(footers) / sizeof(footers[0]); i++) {
        make_tzif(&f, '2', NULL, 0, 0, footers[i]);
        if (fl_tz_parse("Test/Bad", f.data, f.len, &tz, err, sizeof(err)) != FL_EINVAL)
            fl_test_fail(__FILE__, __LINE__, "footer '%s' was taken", footers[i]);
        ASSERT(strstr(err, "time zone 'Test/Bad': footer") != NULL);
    }
    make_tzif(&f, '2', NULL, 0, 1, "");
    ASSERT_EQ(fl_tz_parse("right/Test", f.data, f.len, &tz, err, sizeof(err)), FL_ENOTSUP);
    ASSERT(strstr(err, "leap seconds") != NULL);
    const int64_t backwards[] = {1100000000, 1000000000};
    make_tzif(&f, '2', backwards, 2, 0, "");
    ASSERT_EQ(fl_tz_parse("Test/Order", f.data, f.len, &tz, err, sizeof(err)), FL_EINVAL);
    make_tzif(&f, '2', NULL, 0, 0, "");
    f.data[4] = '1'; /* no such version */
    ASSERT_EQ(fl_tz_parse("Test/Version", f.data, f.len, &tz, err, sizeof(err)), FL_EINVAL);
    ASSERT(tz == NULL);
}

/* Every prefix of a real file is refused, and no byte changed anywhere
 * makes the parser read outside the file (the sanitizers watch) or give
 * offsets outside +-26h. */
TEST(truncated_and_corrupt_files_are_refused_not_overread)
{
    struct fl_buf file;
    fl_buf_init(&file, FL_TZ_FILE_MAX);
    ASSERT_OK(fl_file_read(FL_TZ_DIR "/America/New_York", &file));
    ASSERT(file.len > 100);
    for (size_t len = 0; len < file.len; len++) {
        unsigned char *copy = malloc(len + 1); /* exactly len bytes for the sanitizer */
        ASSERT(copy != NULL);
        memcpy(copy, file.data, len);
        struct fl_tz *tz = NULL;
        char err[256] = "";
        if (fl_tz_parse("Cut", copy, len, &tz, err, sizeof(err)) != FL_EINVAL)
            fl_test_fail(__FILE__, __LINE__, "a prefix of %zu bytes was taken", len);
        free(copy);
    }
    static const unsigned char values[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    for (size_t pos = 0; pos < file.len; pos++) {
        for (size_t v = 0; v < sizeof(values); v++) {
            unsigned char *copy = malloc(file.len);
            ASSERT(copy != NULL);
            memcpy(copy, file.data, file.len);
            copy[pos] = values[v];
            struct fl_tz *tz = NULL;
            int rc = fl_tz_parse("Corrupt", copy, file.len, &tz, NULL, 0);
            ASSERT(rc == 0 || rc == FL_EINVAL || rc == FL_ENOTSUP || rc == FL_ENOMEM);
            if (rc == 0) {
                for (int64_t t = -3000000000LL; t < 5000000000LL; t += 86400 * 997) {
                    int32_t off = fl_tz_offset(tz, t);
                    ASSERT(off > -26 * 3600 && off < 26 * 3600);
                }
                fl_tz_free(tz);
            }
            free(copy);
        }
    }
    fl_buf_release(&file);
}

/* ---- the calendar and RFC 3339 ---- */

TEST(civil_calendar_round_trips_and_knows_leap_years)
{
    for (int64_t t = -62135596800LL; t < 253402300800LL; t += 86400 * 13 + 3607) {
        struct fl_tz_civil c;
        fl_tz_civil_split(t, &c);
        ASSERT_EQ(fl_tz_civil_join(&c), t);
        ASSERT(c.month >= 1 && c.month <= 12 && c.day >= 1 &&
               c.day <= fl_tz_days_in_month(c.year, c.month));
        ASSERT(c.weekday >= 0 && c.weekday <= 6);
    }
    struct fl_tz_civil c;
    fl_tz_civil_split(0, &c);
    ASSERT(c.year == 1970 && c.month == 1 && c.day == 1 && c.weekday == 4); /* a Thursday */
    fl_tz_civil_split(at("2028-02-29T23:59:59Z"), &c);
    ASSERT(c.year == 2028 && c.month == 2 && c.day == 29 && c.weekday == 2);
    fl_tz_civil_split(-1, &c);
    ASSERT(c.year == 1969 && c.month == 12 && c.day == 31 && c.hour == 23 && c.weekday == 3);
    ASSERT(fl_tz_is_leap(2000) && fl_tz_is_leap(2028) && !fl_tz_is_leap(2100) &&
           !fl_tz_is_leap(2027));
    ASSERT_EQ(fl_tz_days_in_month(2100, 2), 28);
    ASSERT_EQ(fl_tz_days_in_month(2400, 2), 29);
    ASSERT_EQ(fl_tz_days_in_month(2026, 13), 0);
}

TEST(rfc3339_formats_with_the_zone_offset_and_parses_strictly)
{
    struct fl_tz *berlin = load("Europe/Berlin"), *kolkata = load("Asia/Kolkata");
    struct fl_tz *ny = load("America/New_York");
    char out[FL_TZ_RFC3339_MAX];
    ASSERT_OK(fl_tz_format_rfc3339(berlin, at("2026-03-29T01:00:00Z"), out, sizeof(out)));
    ASSERT_STR_EQ(out, "2026-03-29T03:00:00+02:00");
    ASSERT_OK(fl_tz_format_rfc3339(berlin, at("2026-03-29T00:59:59Z"), out, sizeof(out)));
    ASSERT_STR_EQ(out, "2026-03-29T01:59:59+01:00");
    ASSERT_OK(fl_tz_format_rfc3339(kolkata, at("2026-01-01T00:00:00Z"), out, sizeof(out)));
    ASSERT_STR_EQ(out, "2026-01-01T05:30:00+05:30");
    ASSERT_OK(fl_tz_format_rfc3339(ny, at("2026-11-01T06:30:00Z"), out, sizeof(out)));
    ASSERT_STR_EQ(out, "2026-11-01T01:30:00-05:00");
    ASSERT_OK(fl_tz_format_rfc3339(NULL, 0, out, sizeof(out)));
    ASSERT_STR_EQ(out, "1970-01-01T00:00:00Z");
    /* local mean time (+00:53:28) cannot be written as hh:mm: UTC is */
    ASSERT_OK(fl_tz_format_rfc3339(berlin, at("1890-01-01T00:00:00Z"), out, sizeof(out)));
    ASSERT_STR_EQ(out, "1890-01-01T00:00:00Z");
    ASSERT_EQ(fl_tz_format_rfc3339(NULL, 253402300800LL, out, sizeof(out)), FL_ERANGE);
    ASSERT_STR_EQ(out, "");
    ASSERT_EQ(fl_tz_format_rfc3339(NULL, 0, out, 10), FL_ERANGE);

    int64_t t;
    ASSERT_OK(fl_tz_parse_rfc3339("2026-03-29T03:30:00.25+02:00", &t));
    ASSERT_EQ(t, at("2026-03-29T01:30:00Z"));
    ASSERT_OK(fl_tz_parse_rfc3339("2026-11-01t01:30:00-05:00", &t));
    ASSERT_EQ(t, at("2026-11-01T06:30:00z"));
    static const char *const bad[] = {
        "",
        "2026-03-29",
        "2026-03-29T03:30:00",
        "2026-02-30T00:00:00Z",
        "2027-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-03-29T24:00:00Z",
        "2026-03-29T03:30:60Z",
        "2026-03-29T03:30:00.Z",
        "2026-03-29T03:30:00+0200",
        "2026-03-29T03:30:00Z ",
        "26-03-29T03:30:00Z",
        "2026-03-29 03:30:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (fl_tz_parse_rfc3339(bad[i], &t) != FL_EINVAL)
            fl_test_fail(__FILE__, __LINE__, "'%s' was taken", bad[i]);
    fl_tz_free(berlin);
    fl_tz_free(kolkata);
    fl_tz_free(ny);
}

/* A zone is read-only once made: threads share one (no global TZ). */
struct reader_arg {
    const struct fl_tz *tz;
    int bad;
};

static void *read_offsets(void *p)
{
    struct reader_arg *a = p;
    for (int64_t t = at("2026-01-01T00:00:00Z"); t < at("2060-01-01T00:00:00Z"); t += 3600 * 7) {
        struct fl_tz_civil c;
        fl_tz_civil_split(t, &c);
        int32_t want = (c.month > 3 && c.month < 10)   ? 7200
                       : (c.month < 3 || c.month > 10) ? 3600
                                                       : -1;
        int32_t got = fl_tz_offset(a->tz, t);
        if (want != -1 && got != want)
            a->bad++;
    }
    return NULL;
}

TEST(one_zone_serves_threads_at_once)
{
    struct fl_tz *tz = load("Europe/Berlin");
    pthread_t threads[4];
    struct reader_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct reader_arg){tz, 0};
        ASSERT_OK(pthread_create(&threads[i], NULL, read_offsets, &args[i]));
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        ASSERT_EQ(args[i].bad, 0);
    }
    fl_tz_free(tz);
}
