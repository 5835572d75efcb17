/*
 * Time zones from the system's tz database, without the C library's
 * global TZ state.
 *
 * localtime_r() and mktime() answer for the one zone named by $TZ, and
 * changing it (setenv + tzset) is global and not thread safe. A daemon
 * that fires triggers in many zones at once reads the zones itself: a
 * struct fl_tz is one zone loaded from its TZif file (RFC 8536) under
 * /usr/share/zoneinfo, immutable once made, so any number of threads may
 * use it at the same time.
 *
 * What a zone answers:
 *   - the UTC offset in effect at an instant (fl_tz_offset), and the span
 *     of instants around it that share that offset (fl_tz_span): the
 *     explicit transitions of the file, then, past the last of them, those
 *     its footer's POSIX TZ string gives for any year ("CET-1CEST,M3.5.0,
 *     M10.5.0/3"). Only changes of the offset count as transitions (a
 *     change of abbreviation or of the DST flag alone is not one);
 *   - which instants a local (wall clock) time names (fl_tz_from_local):
 *     one; two, when a fall-back repeats it; or none, when a spring-forward
 *     skips it, and then the first instant after the gap.
 *
 * Instants are int64 seconds since the Unix epoch (UTC, leap seconds not
 * counted, as time_t). A local time is written the same way: the seconds
 * since 1970-01-01T00:00:00 of the civil (proleptic Gregorian) calendar,
 * with no zone (fl_tz_civil_join() of the wall clock's fields).
 */
#ifndef FLINT_TIMER_TZ_H
#define FLINT_TIMER_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where zone files are read from. */
#define FL_TZ_DIR "/usr/share/zoneinfo"
/* The longest zone name accepted, and the largest zone file read. */
#define FL_TZ_NAME_MAX 128
#define FL_TZ_FILE_MAX (256 * 1024)

struct fl_tz;

/*
 * Load the zone called name:
 *   - "" or "UTC": UTC, without reading a file;
 *   - "Local": the machine's zone, /etc/localtime; UTC if there is none;
 *   - otherwise a tz database name ("Europe/Berlin", "America/New_York",
 *     "Etc/GMT+5"), read from FL_TZ_DIR/<name>. A name is one or more
 *     components separated by single '/', each made of ASCII letters,
 *     digits and "._+-" and not starting with '.', at most FL_TZ_NAME_MAX
 *     bytes: "..", "/etc/passwd", "a//b" and "Europe/" are refused before
 *     any file is opened.
 * Reads a small file (blocking): call it at start or off the event loop.
 * On success stores a new zone in *out (free it with fl_tz_free()) and
 * returns 0. Errors, with a message in err (errsize bytes; may be NULL):
 *   FL_EINVAL   a refused name, or a file that is not a valid TZif file
 *   FL_ENOENT   no such zone ("unknown time zone 'Mars/Olympus'")
 *   FL_ENOTSUP  a zone that counts leap seconds ("right/...")
 *   FL_ETOOBIG  a file over FL_TZ_FILE_MAX
 *   FL_ENOMEM, or a negative errno code from reading the file.
 */
int fl_tz_new(const char *name, struct fl_tz **out, char *err, size_t errsize);

/*
 * Make a zone from the bytes of a TZif file (version 1, 2, 3 or 4; from
 * version 2 on, the 64-bit section and the footer are used). name is what
 * fl_tz_name() will say (truncated to FL_TZ_NAME_MAX - 1 bytes). Every
 * count, index and offset is checked against the data: truncated or
 * corrupt input is FL_EINVAL with the reason in err, never a read past
 * the end. Returns as fl_tz_new().
 */
int fl_tz_parse(const char *name, const void *data, size_t len, struct fl_tz **out, char *err,
                size_t errsize);

/* Free a zone made by fl_tz_new() or fl_tz_parse(). NULL is a no-op. */
void fl_tz_free(struct fl_tz *tz);

/* The name the zone was loaded by ("UTC" for ""). Valid until freed. */
const char *fl_tz_name(const struct fl_tz *tz);

/* A span of instants with one UTC offset: [start, end). */
struct fl_tz_span {
    int64_t start;       /* the transition that began it; INT64_MIN: none before */
    int64_t end;         /* the next transition; INT64_MAX: none after */
    int32_t offset;      /* seconds east of UTC (Berlin in summer: 7200) */
    int32_t prev_offset; /* the offset before start (== offset when start is INT64_MIN) */
};

/* The span holding instant t. tz NULL is UTC (one span, all time). */
void fl_tz_span(const struct fl_tz *tz, int64_t t, struct fl_tz_span *span);

/* The UTC offset in effect at t, seconds east of UTC. tz NULL is UTC. */
int32_t fl_tz_offset(const struct fl_tz *tz, int64_t t);

/* What a local time names. */
enum fl_tz_local_kind {
    FL_TZ_LOCAL_UNIQUE,   /* one instant: first == second */
    FL_TZ_LOCAL_REPEATED, /* a fall-back shows it twice: first < second */
    FL_TZ_LOCAL_SKIPPED,  /* a spring-forward skips it: first == second == the
                             instant the gap ends (the transition), which the
                             clock shows as the first local time after the gap */
};

struct fl_tz_local {
    enum fl_tz_local_kind kind;
    int64_t first;
    int64_t second;
};

/* Map the local time local (see above) of zone tz (NULL: UTC) to instants.
 * Berlin's 2026-03-29T02:30 is SKIPPED with first = 01:00Z (03:00 CEST);
 * its 2026-10-25T02:30 is REPEATED, 00:30Z (CEST) then 01:30Z (CET). */
void fl_tz_from_local(const struct fl_tz *tz, int64_t local, struct fl_tz_local *out);

/* Civil (proleptic Gregorian) calendar fields. */
struct fl_tz_civil {
    int64_t year;
    int month;   /* 1-12 */
    int day;     /* 1-31 */
    int hour;    /* 0-23 */
    int minute;  /* 0-59 */
    int second;  /* 0-59 */
    int weekday; /* 0-6, 0 = Sunday; set by fl_tz_civil_split(), ignored by _join() */
};

/* Seconds since 1970-01-01T00:00:00 into calendar fields, and back, for
 * any year within +-2^31; _join() takes fields in their ranges above (day
 * up to the month's length). */
void fl_tz_civil_split(int64_t secs, struct fl_tz_civil *out);
int64_t fl_tz_civil_join(const struct fl_tz_civil *c);

/* Days in month (1-12) of year, and whether year is a leap year. */
int fl_tz_days_in_month(int64_t year, int month);
bool fl_tz_is_leap(int64_t year);

/* Instant t as RFC 3339 in zone tz (NULL: UTC), with the zone's offset:
 * "2026-03-29T03:00:00+02:00"; an offset of 0 is written "Z" (as Go's
 * time.RFC3339 does). out needs FL_TZ_RFC3339_MAX bytes for years 0-9999;
 * returns 0, or FL_ERANGE (out then empty) if the year is outside 0-9999
 * or out is too small. */
#define FL_TZ_RFC3339_MAX 32
int fl_tz_format_rfc3339(const struct fl_tz *tz, int64_t t, char *out, size_t size);

/* Parse an RFC 3339 date-time ("2026-03-29T01:30:00Z",
 * "2026-03-29T03:30:00.25+02:00"; 't' and 'z' in lower case too) into
 * seconds since the epoch; a fraction of a second is dropped. 0 or
 * FL_EINVAL (anything else, including a day the month does not have). */
int fl_tz_parse_rfc3339(const char *s, int64_t *out);

#endif
