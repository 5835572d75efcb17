/* Unit tests for src/timer's time triggers: the catch-up computation of the
 * scheduler (fl_timer_missed(): which missed fire times each policy fires,
 * with daylight saving in Berlin, @every, seconds, and the bound), and the
 * spec's parser and its refusals. Needs the tz database (tzdata). */
#include "runner.h"
#include "timer_util.h"

#include "base/error.h"
#include "timer/scheduler.h"
#include "timer/timetrigger.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct fl_cron cron(const char *expr)
{
    struct fl_cron c;
    char err[256] = "";
    if (fl_cron_parse(expr, &c, err, sizeof(err)) != 0)
        fl_test_fail(__FILE__, __LINE__, "'%s': %s", expr, err);
    return c;
}

/* The missed times as "T1 T2 ..." (RFC 3339, UTC), for one comparison. */
static const char *missed(const char *expr, const char *zone, enum fl_catchup policy,
                          const char *last, const char *now)
{
    static char out[4096];
    struct fl_cron c = cron(expr);
    struct fl_tz *tz = load(zone);
    int64_t times[16];
    size_t n = 99;
    bool dropped = true;
    ASSERT_OK(fl_timer_missed(&c, tz, policy, at(last), at(now), times, 16, &n, &dropped));
    ASSERT(!dropped);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char t[FL_TZ_RFC3339_MAX];
        ASSERT_OK(fl_tz_format_rfc3339(NULL, times[i], t, sizeof(t)));
        size_t used = strlen(out);
        snprintf(out + used, sizeof(out) - used, "%s%s", i ? " " : "", t);
    }
    fl_tz_free(tz);
    return out;
}

/* ---- catch-up ---- */

/* Which missed times each policy fires: (last, now] in a zone. */
static const struct {
    const char *expr, *zone;
    enum fl_catchup policy;
    const char *last, *now;
    const char *expect; /* the times fired, oldest first, in UTC */
} missed_cases[] = {
    /* each policy's share */
    {"*/15 * * * *", "UTC", FL_CATCHUP_NONE, "2026-06-01T10:00:00Z", "2026-06-01T10:47:30Z", ""},
    {"*/15 * * * *", "UTC", FL_CATCHUP_LAST, "2026-06-01T10:00:00Z", "2026-06-01T10:47:30Z",
     "2026-06-01T10:45:00Z"},
    {"*/15 * * * *", "UTC", FL_CATCHUP_ALL, "2026-06-01T10:00:00Z", "2026-06-01T10:47:30Z",
     "2026-06-01T10:15:00Z 2026-06-01T10:30:00Z 2026-06-01T10:45:00Z"},
    /* the last fire is not owed again; a time equal to now is */
    {"0 * * * *", "UTC", FL_CATCHUP_ALL, "2026-06-01T10:00:00Z", "2026-06-01T12:00:00Z",
     "2026-06-01T11:00:00Z 2026-06-01T12:00:00Z"},
    {"0 * * * *", "UTC", FL_CATCHUP_ALL, "2026-06-01T10:00:00Z", "2026-06-01T10:59:59Z", ""},
    /* nothing when now is not after last (a clock that went back) */
    {"* * * * *", "UTC", FL_CATCHUP_ALL, "2026-06-01T10:00:00Z", "2026-06-01T09:00:00Z", ""},
    {"* * * * *", "UTC", FL_CATCHUP_LAST, "2026-06-01T10:00:00Z", "2026-06-01T10:00:00Z", ""},
    /* seconds, six fields */
    {"*/20 * * * * *", "UTC", FL_CATCHUP_ALL, "2026-06-01T10:00:00Z", "2026-06-01T10:01:05Z",
     "2026-06-01T10:00:20Z 2026-06-01T10:00:40Z 2026-06-01T10:01:00Z"},
    /* Berlin, 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z): 02:30 does not
     * exist, the daily job is owed once, at the end of the gap */
    {"30 2 * * *", "Europe/Berlin", FL_CATCHUP_ALL, "2026-03-28T00:00:00Z", "2026-03-30T12:00:00Z",
     "2026-03-28T01:30:00Z 2026-03-29T01:00:00Z 2026-03-30T00:30:00Z"},
    {"30 2 * * *", "Europe/Berlin", FL_CATCHUP_LAST, "2026-03-28T12:00:00Z", "2026-03-29T05:00:00Z",
     "2026-03-29T01:00:00Z"},
    /* an hourly wall-clock job has no fire in the skipped hour */
    {"0 * * * *", "Europe/Berlin", FL_CATCHUP_ALL, "2026-03-28T23:30:00Z", "2026-03-29T02:00:00Z",
     "2026-03-29T00:00:00Z 2026-03-29T01:00:00Z 2026-03-29T02:00:00Z"},
    /* Berlin, 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z): a fixed time the
     * clock shows twice is owed once... */
    {"30 2 * * *", "Europe/Berlin", FL_CATCHUP_ALL, "2026-10-24T12:00:00Z", "2026-10-25T12:00:00Z",
     "2026-10-25T00:30:00Z"},
    {"0 2 * * *", "Europe/Berlin", FL_CATCHUP_LAST, "2026-10-24T12:00:00Z", "2026-10-25T01:30:00Z",
     "2026-10-25T00:00:00Z"},
    /* ...an hourly job once per real hour: 02:00 CEST, 02:00 CET, 03:00 CET */
    {"0 * * * *", "Europe/Berlin", FL_CATCHUP_ALL, "2026-10-24T23:30:00Z", "2026-10-25T02:00:00Z",
     "2026-10-25T00:00:00Z 2026-10-25T01:00:00Z 2026-10-25T02:00:00Z"},
    /* a time that never comes owes nothing */
    {"0 0 30 2 *", "UTC", FL_CATCHUP_ALL, "2020-01-01T00:00:00Z", "2026-01-01T00:00:00Z", ""},
};

TEST(each_policy_fires_its_share_of_the_missed_times)
{
    for (size_t i = 0; i < sizeof(missed_cases) / sizeof(missed_cases[0]); i++) {
        const char *got = missed(missed_cases[i].expr, missed_cases[i].zone, missed_cases[i].policy,
                                 missed_cases[i].last, missed_cases[i].now);
        if (strcmp(got, missed_cases[i].expect) != 0)
            fl_test_fail(__FILE__, __LINE__, "'%s' in %s, %s, (%s, %s]: '%s', not '%s'",
                         missed_cases[i].expr, missed_cases[i].zone,
                         fl_catchup_name(missed_cases[i].policy), missed_cases[i].last,
                         missed_cases[i].now, got, missed_cases[i].expect);
    }
}

TEST(every_counts_from_its_anchor)
{
    struct fl_cron c = cron("@every 10s");
    c.every_anchor = 1003; /* created at 1003: fires at 1013, 1023 ... */
    int64_t times[8];
    size_t n;
    bool dropped;
    ASSERT_OK(fl_timer_missed(&c, NULL, FL_CATCHUP_ALL, 1003, 1050, times, 8, &n, &dropped));
    ASSERT_EQ(n, 4);
    ASSERT(!dropped);
    ASSERT_EQ(times[0], 1013);
    ASSERT_EQ(times[3], 1043);
    ASSERT_OK(fl_timer_missed(&c, NULL, FL_CATCHUP_LAST, 1003, 1050, times, 8, &n, &dropped));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(times[0], 1043);
}

TEST(all_keeps_the_newest_within_the_bound)
{
    struct fl_cron c = cron("@every 1s");
    int64_t *times = malloc(FL_TIMER_CATCHUP_MAX * sizeof(*times));
    ASSERT(times != NULL);
    size_t n;
    bool dropped;
    /* a million seconds missed: the newest 1000, in order, and the drop said */
    ASSERT_OK(fl_timer_missed(&c, NULL, FL_CATCHUP_ALL, 0, 1000000, times, FL_TIMER_CATCHUP_MAX, &n,
                              &dropped));
    ASSERT_EQ(n, FL_TIMER_CATCHUP_MAX);
    ASSERT(dropped);
    ASSERT_EQ(times[0], 1000000 - FL_TIMER_CATCHUP_MAX + 1);
    ASSERT_EQ(times[n - 1], 1000000);
    for (size_t i = 1; i < n; i++)
        ASSERT_EQ(times[i], times[i - 1] + 1);
    /* exactly the bound: nothing dropped */
    ASSERT_OK(fl_timer_missed(&c, NULL, FL_CATCHUP_ALL, 1000000 - FL_TIMER_CATCHUP_MAX, 1000000,
                              times, FL_TIMER_CATCHUP_MAX, &n, &dropped));
    ASSERT_EQ(n, FL_TIMER_CATCHUP_MAX);
    ASSERT(!dropped);
    /* last and none never drop */
    ASSERT_OK(fl_timer_missed(&c, NULL, FL_CATCHUP_LAST, 0, 1000000, times, FL_TIMER_CATCHUP_MAX,
                              &n, &dropped));
    ASSERT_EQ(n, 1);
    ASSERT(!dropped);
    ASSERT_EQ(times[0], 1000000);
    free(times);
}

/* ---- the spec ---- */

static int parse_text(const char *json, struct fl_timetrigger_spec *out, struct fl_buf *err)
{
    json_t *spec = json_loads(json, 0, NULL);
    if (spec == NULL)
        fl_test_fail(__FILE__, __LINE__, "bad JSON in the test: %s", json);
    fl_buf_reset(err);
    int rc = fl_timetrigger_spec_parse(spec, at("2026-06-01T00:00:00Z"), out, NULL, err);
    json_decref(spec);
    return rc;
}

TEST(spec_defaults)
{
    struct fl_timetrigger_spec s;
    struct fl_buf err;
    fl_buf_init(&err, 1024);
    ASSERT_OK(parse_text("{\"cron\": \"@every 5m\", \"target\": {\"function\": \"f\"}}", &s, &err));
    ASSERT_STR_EQ(s.cron_expr, "@every 5m");
    ASSERT_EQ(s.cron.every, 300);
    ASSERT_STR_EQ(s.function, "f");
    ASSERT_STR_EQ(s.method, "POST");
    ASSERT(s.body == NULL && s.body_len == 0);
    ASSERT_STR_EQ(s.tz, "UTC");
    ASSERT_EQ(s.catchup, FL_CATCHUP_LAST);
    ASSERT(!s.has_retry);
    ASSERT_STR_EQ(s.workflow, "");
    fl_timetrigger_spec_release(&s);

    ASSERT_OK(parse_text("{\"cron\": \"@hourly\", \"target\": {\"workflow\": \"w\"}}", &s, &err));
    ASSERT_STR_EQ(s.workflow, "w");
    ASSERT_STR_EQ(s.function, "");
    fl_timetrigger_spec_release(&s);

    ASSERT_OK(parse_text("{\"cron\": \"0 30 9 * * MON-FRI\", \"target\": {\"function\": \"f\"},"
                         " \"method\": \"get\", \"body\": \"hi\", \"tz\": \"America/New_York\","
                         " \"catchup\": \"all\", \"retry\": {\"maxAttempts\": 5}}",
                         &s, &err));
    ASSERT_STR_EQ(s.method, "GET");
    ASSERT_STR_EQ(s.body, "hi");
    ASSERT_EQ(s.body_len, 2);
    ASSERT_STR_EQ(s.tz, "America/New_York");
    ASSERT_EQ(s.catchup, FL_CATCHUP_ALL);
    ASSERT(s.has_retry);
    ASSERT_EQ(s.retry.max_attempts, 5);
    fl_timetrigger_spec_release(&s);
    fl_buf_release(&err);
}

TEST(spec_refusals_name_the_field_and_why)
{
    static const struct {
        const char *json;
        const char *message;
    } cases[] = {
        {"{\"target\": {\"function\": \"f\"}}", "spec.cron: is required"},
        {"{\"cron\": \"0 24 * * *\", \"target\": {\"function\": \"f\"}}",
         "spec.cron: field 2 (hour): 24 is out of range 0-23"},
        {"{\"cron\": \"0 0 30 2 *\", \"target\": {\"function\": \"f\"}}", "spec.cron: never fires"},
        {"{\"cron\": \"@hourly\", \"target\": {\"function\": \"f\"}, \"tz\": \"Mars/Olympus\"}",
         "spec.tz: unknown time zone 'Mars/Olympus'"},
        {"{\"cron\": \"@hourly\", \"target\": {\"function\": \"f\"}, \"tz\": \"../etc/passwd\"}",
         "spec.tz:"},
        {"{\"cron\": \"@hourly\", \"target\": {\"workflow\": \"W!\"}}", "spec.target.workflow:"},
        {"{\"cron\": \"@hourly\", \"target\": {\"workflow\": \"w\", \"function\": \"f\"}}",
         "spec.target: must be {function: NAME} or {workflow: NAME}"},
        {"{\"cron\": \"@hourly\"}", "spec.target: must be {function: NAME} or {workflow: NAME}"},
        {"{\"cron\": \"@hourly\", \"target\": {\"function\": \"Bad_Name\"}}",
         "spec.target.function:"},
        {"{\"cron\": \"@hourly\", \"target\": {\"function\": \"f\"}, \"method\": \"FETCH\"}",
         "spec.method: unknown method"},
        {"{\"cron\": \"@hourly\", \"target\": {\"function\": \"f\"}, \"catchup\": \"some\"}",
         "spec.catchup: must be none, last or all"},
        {"{\"cron\": \"@hourly\", \"target\": {\"function\": \"f\"}, \"body\": 7}",
         "spec.body: must be a string"},
        {"{\"cron\": \"@hourly\", \"target\": {\"function\": \"f\"}, \"retry\": {\"tries\": 2}}",
         "spec.retry.tries"},
        {"{\"cron\": \"@hourly\", \"target\": {\"function\": \"f\"}, \"crom\": \"x\"}",
         "spec.crom: is not a field of a timetrigger"},
    };
    struct fl_buf err;
    fl_buf_init(&err, 1024);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fl_timetrigger_spec s;
        ASSERT_EQ(parse_text(cases[i].json, &s, &err), FL_EINVAL);
        if (err.data == NULL || strstr(err.data, cases[i].message) == NULL)
            fl_test_fail(__FILE__, __LINE__, "%s: '%s' has no '%s'", cases[i].json,
                         err.data ? err.data : "", cases[i].message);
    }
    fl_buf_release(&err);
}

TEST(spec_hands_over_its_zone)
{
    json_t *spec = json_pack("{s:s,s:{s:s},s:s}", "cron", "30 2 * * *", "target", "function", "f",
                             "tz", "Europe/Berlin");
    struct fl_timetrigger_spec s;
    struct fl_tz *tz = NULL;
    struct fl_buf err;
    fl_buf_init(&err, 256);
    ASSERT_OK(fl_timetrigger_spec_parse(spec, at("2026-03-28T12:00:00Z"), &s, &tz, &err));
    ASSERT(tz != NULL);
    ASSERT_STR_EQ(fl_tz_name(tz), "Europe/Berlin");
    int64_t next;
    ASSERT_OK(fl_cron_next(&s.cron, tz, at("2026-03-28T12:00:00Z"), &next));
    ASSERT_EQ(next, at("2026-03-29T01:00:00Z"));
    fl_tz_free(tz);
    fl_timetrigger_spec_release(&s);
    fl_buf_release(&err);
    json_decref(spec);
}
