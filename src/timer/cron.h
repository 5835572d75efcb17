/*
 * Cron expressions: when a time trigger fires.
 *
 * A pure module: parse an expression once into a struct fl_cron (no
 * allocation, no global state), then ask for the first fire time after an
 * instant, or the last one at or before it, in a time zone (timer/tz.h).
 *
 * Forms (fields separated by spaces or tabs):
 *
 *   MIN HOUR DOM MONTH DOW          5 fields, as crontab(5)
 *   SEC MIN HOUR DOM MONTH DOW      6 fields, seconds first, as Fission
 *                                   (robfig/cron v3 with seconds)
 *   @yearly (= @annually)           0 0 0 1 1 *
 *   @monthly                        0 0 0 1 * *
 *   @weekly                         0 0 0 * * 0
 *   @daily (= @midnight)            0 0 0 * * *
 *   @hourly                         0 0 * * * *
 *   @every DURATION                 every DURATION: 30s, 5m, 1h30m (units h,
 *                                   m, s; whole seconds, at least 1s, at
 *                                   most 87600h)
 *
 *   field          values     names
 *   second         0-59
 *   minute         0-59
 *   hour           0-23
 *   day of month   1-31                 '?' = '*'
 *   month          1-12       JAN-DEC
 *   day of week    0-7        SUN-SAT   '?' = '*'; 0 and 7 are Sunday
 *
 * A field is a list of items "a,b,c"; an item is "*" (every value), a
 * value "a", a range "a-b" (a <= b), or either with a step: "*\/n" (every
 * n-th value from the first), "a-b/n", and "a/n" (= "a-MAX/n"). Steps go
 * from 1 to the field's count of values ("*\/90" in minutes is an error:
 * write "@every 90m"). Names are case-insensitive and stand for their
 * number anywhere; in the day of week a range may end on Sunday
 * ("FRI-SUN", "5-0" = "5-7").
 *
 * Day of month and day of week (Vixie cron, robfig/cron): when both are
 * restricted, a day matches if either does ("0 0 13 * FRI": every 13th and
 * every Friday); when one is unrestricted ("*", "?" or "*\/1"), the other
 * alone decides. ("*\/2" is restricted, as in robfig/cron.)
 *
 * Time zones and daylight saving. Fields are matched against the wall
 * clock of the zone. Where the clock jumps, the rule is Vixie cron's
 * (crontab(8), "Daylight saving time and other time changes"):
 *
 *   - A job at a fixed time of day (its minute and hour fields do not
 *     start with '*'; "30 2 * * *", @daily, @weekly, @monthly, @yearly):
 *       * spring forward: a time the clock skips fires once, at the first
 *         instant after the gap. Berlin, 2026-03-29, 02:00 -> 03:00 CEST:
 *         "30 2 * * *" fires at 03:00 CEST (01:00Z). Several times in one
 *         gap ("0,30 2 * * *") fire once, together.
 *       * fall back: a time the clock shows twice fires once, at its first
 *         occurrence. Berlin, 2026-10-25: "30 2 * * *" fires at 02:30
 *         CEST (00:30Z), not again at 02:30 CET.
 *   - A wall-clock job (its minute or hour field starts with '*':
 *     "*\/15 * * * *", "0 * * * *", "0 *\/2 * * *", @hourly) follows the
 *     clock as it runs:
 *       * spring forward: the skipped times do not exist, nothing fires
 *         for them; the job goes on from the new time ("0 * * * *": 01:00
 *         CET, then 03:00 CEST).
 *       * fall back: the repeated hour is lived twice, and fires twice
 *         ("0 * * * *": 02:00 CEST, 02:00 CET, 03:00 CET; one fire per real
 *         hour).
 *   So no job fires twice for one wall-clock time by surprise, and no
 *   daily job is lost on the day of a change. (robfig/cron, Fission's
 *   library, skips a fixed time in the gap altogether; Flint runs it late
 *   instead, as Vixie cron does.)
 *
 * @every is elapsed time, not wall clock: it ignores the zone and fires at
 * every_anchor + k * every for every integer k. Parsing sets the anchor to
 * the epoch (00:00:00Z: "@every 5m" fires at :00, :05 ... UTC); a caller
 * sets it to start the period elsewhere (Fission starts it when the
 * trigger is created: showschedule uses now).
 *
 * ("*\/n" is written with a backslash in this header only because the two
 * characters without it would end the comment.)
 *
 * Instants are int64 seconds since the Unix epoch (UTC). Every search is
 * bounded: an expression that matches no date ("0 0 30 2 *": February
 * 30th) is found out in a few thousand steps, never a loop.
 */
#ifndef FLINT_TIMER_CRON_H
#define FLINT_TIMER_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "timer/tz.h"

/* The longest expression accepted. */
#define FL_CRON_EXPR_MAX 256
/* The instants fl_cron_next() and fl_cron_prev() take: 1900-01-01T00:00:00Z
 * to 9999-12-31T23:59:59Z. */
#define FL_CRON_TIME_MIN (-2208988800LL)
#define FL_CRON_TIME_MAX 253402300799LL
/* How far ahead (and back) a search looks: the Gregorian calendar repeats
 * every 400 years, so a date not found in 401 never comes. */
#define FL_CRON_SEARCH_YEARS 401

/* A parsed expression: plain data the caller owns; copy it freely. */
struct fl_cron {
    uint64_t seconds;     /* bit s: second s (0-59) */
    uint64_t minutes;     /* bit m: minute m (0-59) */
    uint32_t hours;       /* bit h: hour h (0-23) */
    uint32_t days;        /* bit d: day of month d (1-31) */
    uint16_t months;      /* bit m: month m (1-12) */
    uint8_t weekdays;     /* bit d: day of week d (0-6, 0 = Sunday) */
    bool days_any;        /* day of month is "*", "?" or "*\/1" */
    bool weekdays_any;    /* day of week is "*", "?" or "*\/1" */
    bool wall_clock;      /* minute or hour starts with '*': see daylight saving */
    int64_t every;        /* @every: seconds between fires (>= 1); 0: the fields */
    int64_t every_anchor; /* @every: fires at every_anchor + k * every; 0 */
};

/*
 * Parse expr into *out (all of it is set). 0, or FL_EINVAL with a message
 * in err (errsize bytes; may be NULL) that says which field and why:
 *   "field 2 (hour): 24 is out of range 0-23"
 *   "field 5 (day of week): 'FUNDAY' is not a number or a day name (SUN-SAT)"
 *   "field 1 (minute): range 30-10 goes backwards"
 *   "field 1 (minute): step 90 is out of range 1-60"
 *   "4 fields: write 5 (minute hour day-of-month month day-of-week), 6 (with
 *    seconds first) or a descriptor (@hourly, @every 5m, ...)"
 *   "@every '90': a duration needs units, like 30s, 5m or 1h30m"
 * An expression that parses may still never fire (February 30th):
 * fl_cron_next() says so (FL_ENOENT); a spec check should call it once.
 */
int fl_cron_parse(const char *expr, struct fl_cron *out, char *err, size_t errsize);

/*
 * The first fire time strictly after the instant after, in zone tz (NULL:
 * UTC; ignored by @every), into *next. 0; FL_ENOENT if it never fires
 * again (no matching date within FL_CRON_SEARCH_YEARS: "0 0 30 2 *");
 * FL_ERANGE if after (or an @every anchor) is outside FL_CRON_TIME_MIN ..
 * FL_CRON_TIME_MAX. Pure: the same arguments give the same answer, and
 * fl_cron_next(fl_cron_next(t)) walks every fire time in order, each once.
 */
int fl_cron_next(const struct fl_cron *c, const struct fl_tz *tz, int64_t after, int64_t *next);

/*
 * The last fire time at or before the instant at (at itself included),
 * into *prev: the time a "catch up the last missed fire" policy runs.
 * Same zone rules and errors as fl_cron_next() (FL_ENOENT: no fire within
 * FL_CRON_SEARCH_YEARS before at, or none after FL_CRON_TIME_MIN). Costs at
 * most about 70 calls of fl_cron_next().
 */
int fl_cron_prev(const struct fl_cron *c, const struct fl_tz *tz, int64_t at, int64_t *prev);

#endif
