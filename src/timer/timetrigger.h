/*
 * A time trigger's spec: what the user declares (docs/api.md, "timetrigger
 * spec"), parsed and checked once, for the API's check (the kind's row,
 * kinds/timetrigger.c), the CLI and the scheduler (timer/scheduler.h)
 * alike, so that they never disagree about what a spec means.
 *
 *   cron     required: an expression of timer/cron.h, which must fire at
 *            least once more (February 30th is refused)
 *   target   {"function": NAME} or {"workflow": NAME}: what each fire
 *            starts (exactly one)
 *   method   the HTTP method of each fire (default POST, what Fission's
 *            time triggers send)
 *   body     the body of each fire (a string; default none)
 *   tz       the zone its fields are read in (default UTC): a tz database
 *            name, checked by loading it
 *   catchup  what a flintd that was down does for the fire times it
 *            missed: none, last (default: one fire, for the most recent),
 *            all (each, at most FL_TIMER_CATCHUP_MAX)
 *   retry    {maxAttempts, backoff, maxBackoff} as a route's; none: the
 *            function's policy
 *
 * Depends on base, exec/spec.h (names, retry policies) and timer/ only:
 * the CLI links it.
 */
#ifndef FLINT_TIMER_TIMETRIGGER_H
#define FLINT_TIMER_TIMETRIGGER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "exec/spec.h"
#include "timer/cron.h"
#include "timer/tz.h"

/* The largest body a trigger sends, and the longest method name. */
#define FL_TIMETRIGGER_BODY_MAX   (64 * 1024)
#define FL_TIMETRIGGER_METHOD_MAX 16
#define FL_TIMETRIGGER_METHOD     "POST"

enum fl_catchup {
    FL_CATCHUP_NONE, /* missed fire times are skipped */
    FL_CATCHUP_LAST, /* one fire, for the most recent missed time */
    FL_CATCHUP_ALL,  /* one fire per missed time (the newest FL_TIMER_CATCHUP_MAX) */
};

/* "none", "last", "all" ("last" for a value out of range). */
const char *fl_catchup_name(enum fl_catchup c);

struct fl_timetrigger_spec {
    char cron_expr[FL_CRON_EXPR_MAX + 1];
    struct fl_cron cron;            /* every_anchor left at 0: the scheduler sets it */
    char function[FL_NAME_MAX + 1]; /* the target, or "" for a workflow */
    char workflow[FL_NAME_MAX + 1]; /* the target, or "" for a function */
    char method[FL_TIMETRIGGER_METHOD_MAX];
    char *body; /* NULL: none; else body_len bytes, NUL-terminated (owned) */
    size_t body_len;
    char tz[FL_TZ_NAME_MAX]; /* "UTC" by default */
    enum fl_catchup catchup;
    bool has_retry;               /* false: the function's policy */
    struct fl_retry_policy retry; /* when has_retry */
};

/*
 * Parse and check spec into *out (caller-owned; release with
 * fl_timetrigger_spec_release()). The zone is loaded to check it (a small
 * file of the tz database, read here: fl_tz_new()); if zone is not NULL it
 * is handed over in *zone (free it with fl_tz_free()), else freed. 0, or
 * FL_EINVAL with "spec.<field>: why" in err (out left empty, *zone
 * untouched), or FL_ENOMEM. now (Unix seconds) is when the expression must
 * still fire after.
 */
int fl_timetrigger_spec_parse(json_t *spec, int64_t now, struct fl_timetrigger_spec *out,
                              struct fl_tz **zone, struct fl_buf *err);

void fl_timetrigger_spec_release(struct fl_timetrigger_spec *s);

#endif
