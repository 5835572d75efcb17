/* Unit tests for src/timer/cron: parsing (what is taken and every kind of
 * mistake with its message), fire sequences of every form, Fission's
 * published examples, daylight saving in Berlin and New York (from the
 * zone files' transitions and, past them, from their footer rules), leap
 * years, dates that never come, year rollover, and fl_cron_prev(). Needs
 * the tz database (tzdata). */
#include "runner.h"
#include "timer_util.h"

#include "base/error.h"
#include "timer/cron.h"

#include <stdint.h>

static void parse(const char *expr, struct fl_cron *c)
{
    char err[256] = "";
    if (fl_cron_parse(expr, c, err, sizeof(err)) != 0)
        fl_test_fail(__FILE__, __LINE__, "'%s': %s", expr, err);
}

static uint64_t bits(const int *values, size_t n)
{
    uint64_t b = 0;
    for (size_t i = 0; i < n; i++)
        b |= (uint64_t)1 << values[i];
    return b;
}
#define BITS(...) bits((const int[]){__VA_ARGS__}, sizeof((const int[]){__VA_ARGS__}) / sizeof(int))

/* ---- parsing ---- */

TEST(parse_fills_the_fields)
{
    struct fl_cron c;
    parse("*/15 * * * *", &c);
    ASSERT_EQ(c.seconds, 1); /* five fields: at second 0 */
    ASSERT_EQ(c.minutes, BITS(0, 15, 30, 45));
    ASSERT_EQ(c.hours, 0xffffff);
    ASSERT_EQ(c.days, 0xfffffffe);
    ASSERT_EQ(c.months, 0x1ffe);
    ASSERT_EQ(c.weekdays, 0x7f);
    ASSERT(c.days_any && c.weekdays_any && c.wall_clock);
    ASSERT_EQ(c.every, 0);

    parse("\t 7,8  2 */2 JAN-mar,Dec  * \t", &c);
    ASSERT_EQ(c.minutes, BITS(7, 8));
    ASSERT_EQ(c.hours, BITS(2));
    ASSERT_EQ(c.days, BITS(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31));
    ASSERT_EQ(c.months, BITS(1, 2, 3, 12));
    ASSERT(!c.days_any && !c.wall_clock);
    ASSERT_EQ(c.weekdays, 0x7f);

    const struct {
        const char *expr;
        uint8_t weekdays;
        bool any;
    } weekdays[] = {
        {"0 0 * * 7", BITS(0), false},
        {"0 0 * * 0", BITS(0), false},
        {"0 0 * * 5-7", BITS(5, 6, 0), false},
        {"0 0 * * FRI-SUN", BITS(5, 6, 0), false},
        {"0 0 * * 5-0", BITS(5, 6, 0), false},
        {"0 0 * * mon,Wed", BITS(1, 3), false},
        {"0 0 * * */2", BITS(0, 2, 4, 6), false},
        {"0 0 * * */1", 0x7f, true},
        {"0 0 * * ?", 0x7f, true},
        {"0 0 * * 1/2", BITS(1, 3, 5), false},
        {"0 0 * * 0-7", 0x7f, false},
    };
    for (size_t i = 0; i < sizeof(weekdays) / sizeof(weekdays[0]); i++) {
        parse(weekdays[i].expr, &c);
        if (c.weekdays != weekdays[i].weekdays || c.weekdays_any != weekdays[i].any)
            fl_test_fail(__FILE__, __LINE__, "'%s': weekdays %#x any %d", weekdays[i].expr,
                         c.weekdays, c.weekdays_any);
    }

    parse("10-40/15 5/20 1-3 ? * *", &c); /* six fields: seconds first */
    ASSERT_EQ(c.seconds, BITS(10, 25, 40));
    ASSERT_EQ(c.minutes, BITS(5, 25, 45));
    ASSERT_EQ(c.hours, BITS(1, 2, 3));
    ASSERT(c.days_any && !c.wall_clock);

    parse("@every 1h30m", &c);
    ASSERT_EQ(c.every, 5400);
    ASSERT_EQ(c.every_anchor, 0);
    parse("@EVERY  45s", &c);
    ASSERT_EQ(c.every, 45);
    parse("@every 2h0m1s", &c);
    ASSERT_EQ(c.every, 7201);
    parse("@every 87600h", &c);
    ASSERT_EQ(c.every, 87600LL * 3600);

    struct fl_cron d;
    parse("@hourly", &c);
    parse("0 0 * * * *", &d);
    ASSERT_MEM_EQ(&c, &d, sizeof(c));
    ASSERT(c.wall_clock);
    parse("@Daily", &c);
    parse("@midnight", &d);
    ASSERT_MEM_EQ(&c, &d, sizeof(c));
    ASSERT(!c.wall_clock);
    parse("@yearly", &c);
    parse("@annually", &d);
    ASSERT_MEM_EQ(&c, &d, sizeof(c));
    ASSERT_EQ(c.months, BITS(1));
    ASSERT_EQ(c.days, BITS(1));
    parse("@weekly", &c);
    ASSERT_EQ(c.weekdays, BITS(0));
    parse("@monthly", &c);
    ASSERT_EQ(c.days, BITS(1));
}

TEST(parse_errors_say_which_field_and_why)
{
    static const struct {
        const char *expr, *message;
    } cases[] = {
        {"0 24 * * *", "field 2 (hour): 24 is out of range 0-23"},
        {"0 0 24 * * *", "field 3 (hour): 24 is out of range 0-23"},
        {"60 * * * *", "field 1 (minute): 60 is out of range 0-59"},
        {"60 * * * * *", "field 1 (second): 60 is out of range 0-59"},
        {"* * 0 * *", "field 3 (day of month): 0 is out of range 1-31"},
        {"* * 32 * *", "field 3 (day of month): 32 is out of range 1-31"},
        {"* * * 13 *", "field 4 (month): 13 is out of range 1-12"},
        {"* * * * * 8", "field 6 (day of week): 8 is out of range 0-7"},
        {"* * * * 99999999999", "field 5 (day of week): 99999999999 is out of range 0-7"},
        {"* * * * FUNDAY", "field 5 (day of week): 'FUNDAY' is not a number or a day name "
                           "(SUN-SAT)"},
        {"* * * JANUARY *", "field 4 (month): 'JANUARY' is not a number or a month name "
                            "(JAN-DEC)"},
        {"MON * * * *", "field 1 (minute): 'MON' is not a number"},
        {"x * * * *", "field 1 (minute): 'x' is not a number"},
        {"1x * * * *", "field 1 (minute): '1x' is not a number"},
        {"30-10 * * * *", "field 1 (minute): range 30-10 goes backwards"},
        {"5-0 * * * *", "field 1 (minute): range 5-0 goes backwards"},
        {"* * * DEC-JAN *", "field 4 (month): range DEC-JAN goes backwards"},
        {"*/0 * * * *", "field 1 (minute): step 0 is out of range 1-60"},
        {"*/90 * * * *", "field 1 (minute): step 90 is out of range 1-60"},
        {"* */25 * * *", "field 2 (hour): step 25 is out of range 1-24"},
        {"* * * * */8", "field 5 (day of week): step 8 is out of range 1-7"},
        {"*/ * * * *", "field 1 (minute): '*/' needs a step after '/'"},
        {"*/x * * * *", "field 1 (minute): step 'x' is not a number"},
        {"*/-1 * * * *", "field 1 (minute): step '-1' is not a number"},
        {"1,,2 * * * *", "field 1 (minute): an item of the list is empty"},
        {"1, * * * *", "field 1 (minute): an item of the list is empty"},
        {"? * * * *", "field 1 (minute): '?' is only for the day of month and the day of week"},
        {"1- * * * *", "field 1 (minute): a value is missing"},
        {"-1 * * * *", "field 1 (minute): a value is missing"},
        {"* * * *", "4 fields: write 5 (minute hour day-of-month month day-of-week), 6 (with "
                    "seconds first) or a descriptor (@hourly, @daily, @every 5m, ...)"},
        {"*", "1 field: write 5 (minute hour day-of-month month day-of-week), 6 (with seconds "
              "first) or a descriptor (@hourly, @daily, @every 5m, ...)"},
        {"* * * * * * *", "7 fields: write 5 (minute hour day-of-month month day-of-week), 6 "
                          "(with seconds first) or a descriptor (@hourly, @daily, @every 5m, "
                          "...)"},
        {"", "the expression is empty: write 5 fields (minute hour day-of-month month "
             "day-of-week), 6 (with seconds first) or a descriptor (@hourly, @every 5m, ...)"},
        {" \t ", "the expression is empty: write 5 fields (minute hour day-of-month month "
                 "day-of-week), 6 (with seconds first) or a descriptor (@hourly, @every 5m, ...)"},
        {"@reboot", "unknown descriptor '@reboot': use @yearly, @annually, @monthly, @weekly, "
                    "@daily, @midnight, @hourly or @every DURATION"},
        {"@hourly *", "@hourly takes no fields"},
        {"@every", "@every needs a duration, like 30s, 5m or 1h30m"},
        {"@every 90", "@every '90': a duration is whole hours, minutes and seconds, like 30s, "
                      "5m or 1h30m"},
        {"@every 500ms", "@every '500ms': a duration is whole hours, minutes and seconds, like "
                         "30s, 5m or 1h30m"},
        {"@every 1.5h", "@every '1.5h': a duration is whole hours, minutes and seconds, like "
                        "30s, 5m or 1h30m"},
        {"@every 1d", "@every '1d': a duration is whole hours, minutes and seconds, like 30s, "
                      "5m or 1h30m"},
        {"@every -5m", "@every '-5m': a duration is whole hours, minutes and seconds, like 30s, "
                       "5m or 1h30m"},
        {"@every 0s", "@every '0s': the shortest period is 1s"},
        {"@every 0h0m", "@every '0h0m': the shortest period is 1s"},
        {"@every 87601h", "@every '87601h': the longest period is 87600h"},
        {"@every 9999999999s", "@every '9999999999s': the longest period is 87600h"},
        {"@every 5m 10s", "@every takes one duration, like 30s, 5m or 1h30m"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fl_cron c;
        char err[512] = "";
        int rc = fl_cron_parse(cases[i].expr, &c, err, sizeof(err));
        if (rc != FL_EINVAL || strcmp(err, cases[i].message) != 0)
            fl_test_fail(__FILE__, __LINE__, "'%s': %d \"%s\"\n  want \"%s\"", cases[i].expr, rc,
                         err, cases[i].message);
    }
    char long_expr[FL_CRON_EXPR_MAX + 2];
    memset(long_expr, '*', sizeof(long_expr) - 1);
    long_expr[sizeof(long_expr) - 1] = '\0';
    struct fl_cron c;
    char err[256] = "";
    ASSERT_EQ(fl_cron_parse(long_expr, &c, err, sizeof(err)), FL_EINVAL);
    ASSERT_STR_EQ(err, "the expression is longer than 256 characters");
    ASSERT_EQ(fl_cron_parse("0 24 * * *", &c, NULL, 0), FL_EINVAL); /* no room for a message */
    char tiny[8];
    ASSERT_EQ(fl_cron_parse("0 24 * * *", &c, tiny, sizeof(tiny)), FL_EINVAL);
    ASSERT_STR_EQ(tiny, "field 2");
}

/* ---- fire sequences ---- */

struct sequence {
    const char *expr, *zone, *after;
    const char *want[8]; /* RFC 3339 in the zone, until NULL */
};

static void check_sequences(const struct sequence *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct fl_cron c;
        struct fl_tz *tz = load(cases[i].zone);
        parse(cases[i].expr, &c);
        int64_t t = at(cases[i].after);
        for (size_t k = 0; k < 8 && cases[i].want[k] != NULL; k++) {
            char got[FL_TZ_RFC3339_MAX] = "";
            int rc = fl_cron_next(&c, tz, t, &t);
            if (rc == 0)
                ASSERT_OK(fl_tz_format_rfc3339(tz, t, got, sizeof(got)));
            if (rc != 0 || strcmp(got, cases[i].want[k]) != 0)
                fl_test_fail(__FILE__, __LINE__, "'%s' in %s after %s, fire %zu: %d %s, want %s",
                             cases[i].expr, cases[i].zone, cases[i].after, k + 1, rc, got,
                             cases[i].want[k]);
        }
        fl_tz_free(tz);
    }
}
#define CHECK_SEQUENCES(table) check_sequences(table, sizeof(table) / sizeof(table[0]))

/* The examples of Fission's timer trigger documentation ("Timer
 * Triggers": halfhourly, minute, showschedule --round 5) and the forms it
 * names. */
TEST(fission_published_examples)
{
    static const struct sequence cases[] = {
        {"0 */30 * * * *",
         "UTC",
         "2019-12-17T08:33:28Z",
         {"2019-12-17T09:00:00Z", "2019-12-17T09:30:00Z", "2019-12-17T10:00:00Z"}},
        {"0 30 * * * *",
         "UTC",
         "2018-06-12T05:07:41Z",
         {"2018-06-12T05:30:00Z", "2018-06-12T06:30:00Z", "2018-06-12T07:30:00Z",
          "2018-06-12T08:30:00Z", "2018-06-12T09:30:00Z"}},
        {"*/1 * * * *",
         "UTC",
         "2018-06-12T05:07:41Z",
         {"2018-06-12T05:08:00Z", "2018-06-12T05:09:00Z", "2018-06-12T05:10:00Z"}},
        {"*/30 * * * *",
         "UTC",
         "2019-12-17T08:33:28Z",
         {"2019-12-17T09:00:00Z", "2019-12-17T09:30:00Z"}},
        {"@hourly",
         "UTC",
         "2018-06-12T05:07:41Z",
         {"2018-06-12T06:00:00Z", "2018-06-12T07:00:00Z", "2018-06-12T08:00:00Z"}},
        {"@every 5m",
         "UTC",
         "2019-12-17T08:33:28Z",
         {"2019-12-17T08:35:00Z", "2019-12-17T08:40:00Z"}},
    };
    CHECK_SEQUENCES(cases);

    /* "@every 1m" created at 08:33:43: Fission counts from then */
    struct fl_cron c;
    int64_t t = at("2019-12-17T08:33:43Z");
    parse("@every 1m", &c);
    c.every_anchor = t;
    ASSERT_OK(fl_cron_next(&c, NULL, t, &t));
    ASSERT_EQ(t, at("2019-12-17T08:34:43Z"));
    ASSERT_OK(fl_cron_next(&c, NULL, t, &t));
    ASSERT_EQ(t, at("2019-12-17T08:35:43Z"));
    ASSERT_OK(fl_cron_next(&c, NULL, at("2019-12-17T09:00:00Z"), &t));
    ASSERT_EQ(t, at("2019-12-17T09:00:43Z"));
}

TEST(sequences_of_every_form)
{
    static const struct sequence cases[] = {
        {"5 4 * * *",
         "UTC",
         "2026-06-10T12:00:00Z",
         {"2026-06-11T04:05:00Z", "2026-06-12T04:05:00Z", "2026-06-13T04:05:00Z"}},
        {"*/20 * * * * *",
         "UTC",
         "2026-06-10T12:00:00Z",
         {"2026-06-10T12:00:20Z", "2026-06-10T12:00:40Z", "2026-06-10T12:01:00Z"}},
        {"15,45 30 9 * * *",
         "UTC",
         "2026-06-10T12:00:00Z",
         {"2026-06-11T09:30:15Z", "2026-06-11T09:30:45Z", "2026-06-12T09:30:15Z"}},
        {"0 9-17/4 * * MON-FRI",
         "UTC",
         "2026-06-12T10:00:00Z",
         {"2026-06-12T13:00:00Z", "2026-06-12T17:00:00Z", "2026-06-15T09:00:00Z",
          "2026-06-15T13:00:00Z", "2026-06-15T17:00:00Z"}},
        {"10/20 * * * *",
         "UTC",
         "2026-06-10T12:00:00Z",
         {"2026-06-10T12:10:00Z", "2026-06-10T12:30:00Z", "2026-06-10T12:50:00Z",
          "2026-06-10T13:10:00Z"}},
        {"0 0 1 JAN,jul *",
         "UTC",
         "2026-06-10T12:00:00Z",
         {"2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-07-01T00:00:00Z"}},
        {"0 12 ? * wed",
         "UTC",
         "2026-06-10T12:00:00Z",
         {"2026-06-17T12:00:00Z", "2026-06-24T12:00:00Z", "2026-07-01T12:00:00Z"}},
        {"0 0 * * 7",
         "UTC",
         "2026-06-10T12:00:00Z",
         {"2026-06-14T00:00:00Z", "2026-06-21T00:00:00Z", "2026-06-28T00:00:00Z"}},
        {"0 0 * * FRI-SUN",
         "UTC",
         "2026-06-10T12:00:00Z",
         {"2026-06-12T00:00:00Z", "2026-06-13T00:00:00Z", "2026-06-14T00:00:00Z",
          "2026-06-19T00:00:00Z"}},
        /* both days restricted: either matches (the 13th, a Monday, and Fridays) */
        {"0 0 13 * FRI",
         "UTC",
         "2026-04-01T00:00:00Z",
         {"2026-04-03T00:00:00Z", "2026-04-10T00:00:00Z", "2026-04-13T00:00:00Z",
          "2026-04-17T00:00:00Z", "2026-04-24T00:00:00Z"}},
        /* "*\/10" restricts (robfig/cron): days 1, 11, 21, 31 or Mondays */
        {"0 0 */10 * MON",
         "UTC",
         "2026-06-01T00:00:00Z",
         {"2026-06-08T00:00:00Z", "2026-06-11T00:00:00Z", "2026-06-15T00:00:00Z",
          "2026-06-21T00:00:00Z", "2026-06-22T00:00:00Z", "2026-06-29T00:00:00Z",
          "2026-07-01T00:00:00Z"}},
        /* February 30th never comes, but Mondays in February do */
        {"0 0 30 2 MON",
         "UTC",
         "2026-01-01T00:00:00Z",
         {"2026-02-02T00:00:00Z", "2026-02-09T00:00:00Z", "2026-02-16T00:00:00Z",
          "2026-02-23T00:00:00Z", "2027-02-01T00:00:00Z"}},
        {"0 0 31 * *",
         "UTC",
         "2026-01-31T12:00:00Z",
         {"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z",
          "2026-08-31T00:00:00Z", "2026-10-31T00:00:00Z", "2026-12-31T00:00:00Z"}},
        {"@yearly",
         "UTC",
         "2026-06-10T12:00:00Z",
         {"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"}},
        {"@annually", "UTC", "2026-06-10T12:00:00Z", {"2027-01-01T00:00:00Z"}},
        {"@monthly",
         "UTC",
         "2026-06-10T12:00:00Z",
         {"2026-07-01T00:00:00Z", "2026-08-01T00:00:00Z"}},
        {"@weekly",
         "UTC",
         "2026-06-10T12:00:00Z",
         {"2026-06-14T00:00:00Z", "2026-06-21T00:00:00Z"}},
        {"@daily", "UTC", "2026-06-10T12:00:00Z", {"2026-06-11T00:00:00Z", "2026-06-12T00:00:00Z"}},
        {"@midnight", "UTC", "2026-06-10T00:00:00Z", {"2026-06-11T00:00:00Z"}},
        {"@every 90m",
         "UTC",
         "2026-06-10T00:10:00Z",
         {"2026-06-10T01:30:00Z", "2026-06-10T03:00:00Z", "2026-06-10T04:30:00Z"}},
        {"@every 30s",
         "UTC",
         "2026-06-10T12:00:10Z",
         {"2026-06-10T12:00:30Z", "2026-06-10T12:01:00Z"}},
        /* @every is elapsed time: the zone does not move it */
        {"@every 1h",
         "Asia/Kolkata",
         "2026-06-10T00:10:00Z",
         {"2026-06-10T06:30:00+05:30", "2026-06-10T07:30:00+05:30"}},
        {"0 9 * * *",
         "Asia/Kolkata",
         "2026-06-10T00:00:00Z",
         {"2026-06-10T09:00:00+05:30", "2026-06-11T09:00:00+05:30"}},
        {"0 9 * * *",
         "Asia/Tokyo",
         "2026-06-09T12:00:00Z",
         {"2026-06-10T09:00:00+09:00", "2026-06-11T09:00:00+09:00"}},
    };
    CHECK_SEQUENCES(cases);
}

TEST(leap_years_and_year_rollover)
{
    static const struct sequence cases[] = {
        {"0 0 29 2 *",
         "UTC",
         "2026-01-01T00:00:00Z",
         {"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z"}},
        /* 2100 is not a leap year: eight years between two */
        {"0 0 29 2 *",
         "UTC",
         "2096-03-01T00:00:00Z",
         {"2104-02-29T00:00:00Z", "2108-02-29T00:00:00Z"}},
        {"0 0 29 2 *",
         "America/New_York",
         "2026-01-01T00:00:00Z",
         {"2028-02-29T00:00:00-05:00", "2032-02-29T00:00:00-05:00"}},
        {"0 12 28-29 2 *",
         "UTC",
         "2027-01-01T00:00:00Z",
         {"2027-02-28T12:00:00Z", "2028-02-28T12:00:00Z", "2028-02-29T12:00:00Z",
          "2029-02-28T12:00:00Z"}},
        {"59 23 31 12 *",
         "UTC",
         "2026-12-31T23:59:00Z",
         {"2027-12-31T23:59:00Z", "2028-12-31T23:59:00Z"}},
        {"0 0 1 1 *",
         "UTC",
         "2026-12-31T23:59:59Z",
         {"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"}},
        {"* * * * * *",
         "UTC",
         "2026-12-31T23:59:58Z",
         {"2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z", "2027-01-01T00:00:01Z"}},
        {"0 0 1 1 *",
         "Europe/Berlin",
         "2026-12-31T22:59:59Z",
         {"2027-01-01T00:00:00+01:00", "2028-01-01T00:00:00+01:00"}},
        {"0 0 31 12 *",
         "Pacific/Kiritimati",
         "2026-06-01T00:00:00Z",
         {"2026-12-31T00:00:00+14:00", "2027-12-31T00:00:00+14:00"}},
    };
    CHECK_SEQUENCES(cases);
}

TEST(dates_that_never_come_are_found_out)
{
    static const char *const never[] = {
        "0 0 30 2 *",      "0 0 31 4,6,9,11 *", "0 0 31 2 ?",
        "0 0 30,31 FEB *", "* * * 31 FEB *",    "0 0 31 4 *",
    };
    struct fl_tz *berlin = load("Europe/Berlin");
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        struct fl_cron c;
        int64_t t;
        parse(never[i], &c);
        if (fl_cron_next(&c, NULL, at("2026-01-01T00:00:00Z"), &t) != FL_ENOENT ||
            fl_cron_next(&c, berlin, at("2026-01-01T00:00:00Z"), &t) != FL_ENOENT ||
            fl_cron_prev(&c, berlin, at("2026-01-01T00:00:00Z"), &t) != FL_ENOENT)
            fl_test_fail(__FILE__, __LINE__, "'%s' fires", never[i]);
    }
    fl_tz_free(berlin);
}

TEST(instants_out_of_range)
{
    struct fl_cron c;
    int64_t t;
    parse("* * * * *", &c);
    ASSERT_EQ(fl_cron_next(&c, NULL, FL_CRON_TIME_MAX + 1, &t), FL_ERANGE);
    ASSERT_EQ(fl_cron_next(&c, NULL, FL_CRON_TIME_MIN - 1, &t), FL_ERANGE);
    ASSERT_EQ(fl_cron_prev(&c, NULL, INT64_MAX, &t), FL_ERANGE);
    ASSERT_OK(fl_cron_next(&c, NULL, FL_CRON_TIME_MAX, &t));
    ASSERT_EQ(t, FL_CRON_TIME_MAX + 1); /* 10000-01-01T00:00:00Z */
    ASSERT_OK(fl_cron_next(&c, NULL, FL_CRON_TIME_MIN, &t));
    ASSERT_EQ(t, FL_CRON_TIME_MIN + 60);
    parse("@every 1s", &c);
    c.every_anchor = INT64_MAX;
    ASSERT_EQ(fl_cron_next(&c, NULL, 0, &t), FL_ERANGE);
    ASSERT_EQ(fl_cron_prev(&c, NULL, 0, &t), FL_ERANGE);
}

/* ---- daylight saving ----
 * Berlin 2026: 02:00 CET -> 03:00 CEST on March 29 (01:00Z), 03:00 CEST ->
 * 02:00 CET on October 25 (01:00Z). New York 2026: 02:00 EST -> 03:00 EDT
 * on March 8 (07:00Z), 02:00 EDT -> 01:00 EST on November 1 (06:00Z).
 * 2046 and 2050 are past the files' transitions: the footers' rules. */

TEST(dst_spring_forward_fixed_times_fire_once_after_the_gap)
{
    static const struct sequence cases[] = {
        {"30 2 * * *",
         "Europe/Berlin",
         "2026-03-28T00:00:00Z",
         {"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
        {"0 30 2 * * *",
         "Europe/Berlin",
         "2026-03-28T00:00:00Z",
         {"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
        /* several times in one gap: one fire */
        {"0,30 2 * * *",
         "Europe/Berlin",
         "2026-03-28T12:00:00Z",
         {"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
        /* 03:00 itself exists: once, not also for the gap */
        {"0 3 * * *",
         "Europe/Berlin",
         "2026-03-28T12:00:00Z",
         {"2026-03-29T03:00:00+02:00", "2026-03-30T03:00:00+02:00"}},
        {"0 2,3 * * *",
         "Europe/Berlin",
         "2026-03-28T12:00:00Z",
         {"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"}},
        {"59 1 * * *",
         "Europe/Berlin",
         "2026-03-28T12:00:00Z",
         {"2026-03-29T01:59:00+01:00", "2026-03-30T01:59:00+02:00"}},
        /* seconds in the gap: at the gap's end, 03:00:00 */
        {"15 30 2 * * *",
         "Europe/Berlin",
         "2026-03-28T12:00:00Z",
         {"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:15+02:00"}},
        {"@daily",
         "Europe/Berlin",
         "2026-03-28T12:00:00Z",
         {"2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"}},
        /* from just before the gap's end, and from it */
        {"30 2 * * *", "Europe/Berlin", "2026-03-29T00:59:59Z", {"2026-03-29T03:00:00+02:00"}},
        {"30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", {"2026-03-30T02:30:00+02:00"}},
        {"30 2 * * *",
         "America/New_York",
         "2026-03-07T12:00:00Z",
         {"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
        {"30 2 * * *",
         "Europe/Berlin",
         "2046-03-24T12:00:00Z",
         {"2046-03-25T03:00:00+02:00", "2046-03-26T02:30:00+02:00"}},
        {"30 2 * * *",
         "America/New_York",
         "2050-03-12T12:00:00Z",
         {"2050-03-13T03:00:00-04:00", "2050-03-14T02:30:00-04:00"}},
    };
    CHECK_SEQUENCES(cases);
}

TEST(dst_fall_back_fixed_times_fire_once_at_the_first)
{
    static const struct sequence cases[] = {
        {"30 2 * * *",
         "Europe/Berlin",
         "2026-10-24T12:00:00Z",
         {"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
        /* after the first 02:30: the second is not a new fire */
        {"30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", {"2026-10-26T02:30:00+01:00"}},
        {"0,30 2 * * *",
         "Europe/Berlin",
         "2026-10-24T12:00:00Z",
         {"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:00:00+01:00"}},
        {"30 1 * * *",
         "America/New_York",
         "2026-10-31T12:00:00Z",
         {"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
        {"30 2 * * *",
         "Europe/Berlin",
         "2046-10-27T12:00:00Z",
         {"2046-10-28T02:30:00+02:00", "2046-10-29T02:30:00+01:00"}},
        {"0 1 * * *",
         "America/New_York",
         "2050-11-05T12:00:00Z",
         {"2050-11-06T01:00:00-04:00", "2050-11-07T01:00:00-05:00"}},
    };
    CHECK_SEQUENCES(cases);
}

TEST(dst_wall_clock_jobs_follow_the_clock)
{
    static const struct sequence cases[] = {
        /* spring: the skipped hour has no fire */
        {"0 * * * *",
         "Europe/Berlin",
         "2026-03-28T23:30:00Z",
         {"2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"}},
        {"*/30 * * * *",
         "Europe/Berlin",
         "2026-03-29T00:45:00Z",
         {"2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00", "2026-03-29T04:00:00+02:00"}},
        {"@hourly",
         "America/New_York",
         "2026-03-08T05:30:00Z",
         {"2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"}},
        /* fall: the repeated hour is lived twice */
        {"0 * * * *",
         "Europe/Berlin",
         "2026-10-24T22:30:00Z",
         {"2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00",
          "2026-10-25T03:00:00+01:00"}},
        {"*/30 * * * *",
         "America/New_York",
         "2026-11-01T04:15:00Z",
         {"2026-11-01T00:30:00-04:00", "2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00",
          "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"}},
        {"0 * * * *",
         "America/New_York",
         "2050-11-06T04:30:00Z",
         {"2050-11-06T01:00:00-04:00", "2050-11-06T01:00:00-05:00", "2050-11-06T02:00:00-05:00"}},
        {"0 */2 * * *",
         "Europe/Berlin",
         "2046-03-24T22:30:00Z",
         {"2046-03-25T00:00:00+01:00", "2046-03-25T04:00:00+02:00"}},
        {"* 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", {"2026-03-30T02:00:00+02:00"}},
    };
    CHECK_SEQUENCES(cases);
}

/* ---- prev ---- */

TEST(prev_is_the_last_fire_at_or_before)
{
    static const struct {
        const char *expr, *zone, *at, *want;
    } cases[] = {
        {"30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", "2026-03-29T01:00:00Z"},
        {"30 2 * * *", "Europe/Berlin", "2026-03-29T00:59:59Z", "2026-03-28T01:30:00Z"},
        {"30 2 * * *", "Europe/Berlin", "2026-10-25T01:45:00Z", "2026-10-25T00:30:00Z"},
        {"0 * * * *", "Europe/Berlin", "2026-10-25T01:30:00Z", "2026-10-25T01:00:00Z"},
        {"@every 5m", "UTC", "2026-06-10T12:07:00Z", "2026-06-10T12:05:00Z"},
        {"@every 5m", "UTC", "2026-06-10T12:05:00Z", "2026-06-10T12:05:00Z"},
        {"0 0 29 2 *", "UTC", "2101-01-01T00:00:00Z", "2096-02-29T00:00:00Z"},
        {"* * * * * *", "UTC", "2026-06-10T12:00:00Z", "2026-06-10T12:00:00Z"},
        {"0 0 2 1 *", "UTC", "1900-06-01T00:00:00Z", "1900-01-02T00:00:00Z"},
        {"0 0 1 1 *", "UTC", "1901-01-01T00:00:00Z", "1901-01-01T00:00:00Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fl_cron c;
        struct fl_tz *tz = load(cases[i].zone);
        int64_t t = 0;
        parse(cases[i].expr, &c);
        int rc = fl_cron_prev(&c, tz, at(cases[i].at), &t);
        if (rc != 0 || t != at(cases[i].want))
            fl_test_fail(__FILE__, __LINE__, "'%s' at %s: %d %lld", cases[i].expr, cases[i].at, rc,
                         (long long)t);
        fl_tz_free(tz);
    }
}

/* Walking next() from a point gives each fire once and in order, and
 * prev() agrees with it everywhere: at each fire, just before it, and
 * between two. Around every daylight saving change of a year in each
 * zone, for fixed and wall-clock jobs. */
TEST(next_and_prev_agree_across_changes)
{
    static const char *const exprs[] = {"30 2 * * *",     "0 * * * *", "*/20 * * * *",
                                        "0,30 1-3 * * *", "@daily",    "7 */3 * * SUN",
                                        "0 0 29 2 *"};
    static const char *const zones[] = {"Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                                        "UTC"};
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        struct fl_tz *tz = load(zones[z]);
        for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++) {
            struct fl_cron c;
            parse(exprs[e], &c);
            int64_t prev = 0, t = at("2026-01-01T00:00:00Z"), end = at("2027-01-01T00:00:00Z");
            for (int n = 0; t < end && n < 30000; n++) {
                int64_t next, back;
                ASSERT_OK(fl_cron_next(&c, tz, t, &next));
                ASSERT(next > t);
                bool near_change = fl_tz_offset(tz, next - 7200) != fl_tz_offset(tz, next + 7200);
                if (n > 0 && (n % 97 == 0 || near_change || next - prev > 86400)) {
                    ASSERT_OK(fl_cron_prev(&c, tz, next, &back));
                    ASSERT_EQ(back, next);
                    ASSERT_OK(fl_cron_prev(&c, tz, next - 1, &back));
                    ASSERT_EQ(back, prev);
                    ASSERT_OK(fl_cron_next(&c, tz, prev + (next - prev) / 2, &back));
                    ASSERT_EQ(back, next);
                }
                prev = next;
                t = next;
            }
        }
        fl_tz_free(tz);
    }
}
