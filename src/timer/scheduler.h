/*
 * The scheduler of time triggers: the part of flintd that runs the kind
 * "timetrigger" (kinds.def), fed by its follower through fl_timer_hooks.
 *
 * Each trigger holds its parsed spec (timer/timetrigger.h), its zone and
 * its next fire time; one uv timer waits for the earliest of them (at most
 * a minute, so that a change of the wall clock is noticed). A fire is an
 * async invocation (async/async.h), so retries, dead letters, status and
 * callbacks apply to it:
 *
 *   fl_async_submit(): the trigger's function, its method and body, path
 *   "/", trigger FL_TRIGGER_CRON named "timetrigger/NAME" (X-Flint-Trigger),
 *   the added header X-Flint-Scheduled-Time (RFC 3339, UTC), the trigger's
 *   retry policy (none: the function's), and the idempotency key
 *   "timetrigger/NAME/<scheduled Unix seconds>"
 *
 * The key is what makes one invocation per trigger and scheduled time: the
 * async module's idempotency is a durable compare-and-set, so a fire made
 * again (after a kill -9 between the submit and its record, say) returns
 * the first invocation and runs nothing. It lasts as long as the async
 * module keeps the invocation (its retention).
 *
 * A trigger whose target is a workflow starts an async invocation of it
 * instead (wf/engine.h, fl_wf_engine_submit(): the same method, body,
 * headers, trigger name), whose id is derived from the same key
 * (fl_uuid7_derived(): the scheduled time, and a SHA-256 of the key). The
 * same rule holds through it: a fire made again first looks that id up
 * (fl_wf_engine_get()) and, finding it, records the fire as a duplicate
 * and starts nothing; the engine keeps it for its retention too. The
 * workflow's own tasks have their retries; the invocation is not retried
 * as a whole.
 *
 * Durable state, in the store:
 *
 *   stream "tt/<name>"   one event per fire, appended once the submit has
 *                        an answer: type "fire", data {"scheduled": Unix
 *                        seconds, "scheduledTime": RFC 3339 UTC,
 *                        "invocation": id or null, "error": why (only when
 *                        the async module refused it), "duplicate": true
 *                        (only when the key had fired already)}. The last
 *                        event is the trigger's last fire, read at start.
 *                        Kept short: once it holds 1000 events it is
 *                        deleted and the last event appended again (a
 *                        flintd killed between the two starts as for a
 *                        trigger that never fired: from its creation, and
 *                        the keys keep what is still retained from firing
 *                        twice). Deleted with the trigger.
 *
 * A trigger is loaded before it fires: its resource's creation time (the
 * anchor of @every, so that its fires stay on one grid across restarts and
 * updates) and the last event of its stream. Then:
 *
 *   - a trigger put at start (before the store's triggers were all given,
 *     the synced hook) catches up the fire times in (last fire, now], or
 *     (creation, now] if it never fired, as its `catchup` says (see
 *     fl_timer_missed()); one created while flintd runs starts from now;
 *   - the scheduled times then fire one after the other (one submit of a
 *     trigger at a time), and its next fire is the first time after now;
 *   - when the timer finds a fire time due, it fires it; times that passed
 *     meanwhile beyond it (the loop was held, the wall clock jumped, the
 *     machine slept) follow `catchup` too.
 *
 * An update replaces the spec and recomputes the next fire from now (a
 * changed cron or zone takes effect at once; fires still owed to the old
 * spec are dropped). A removal stops the trigger and deletes its stream.
 * A submit the async module refuses (no such function: FL_ENOENT) is
 * logged within a rate limit and recorded as a fire with its error; the
 * trigger goes on with its next time, never retrying in a loop.
 *
 * Zones: the spec is parsed at put, on the loop, and that loads the zone
 * from the tz database there (a file of a few KiB, as the API's check of
 * the same spec does); zones are shared by name among the triggers.
 *
 * Everything runs on the loop's thread.
 */
#ifndef FLINT_TIMER_SCHEDULER_H
#define FLINT_TIMER_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kinds/kinds.h"
#include "timer/cron.h"
#include "timer/timetrigger.h"
#include "timer/tz.h"

struct fl_store;
struct fl_async;
struct fl_timer;
struct fl_wf_engine;

/* The most fire times one catch-up makes (catchup: all); older ones are
 * dropped, and the drop is logged. */
#define FL_TIMER_CATCHUP_MAX 1000

struct fl_timer_config {
    struct fl_store *store; /* borrowed */
    struct fl_async *async; /* borrowed; close the timer before it */
};

/* A scheduler with no triggers yet: the follower puts them. 0 or FL_ENOMEM. */
int fl_timer_new(uv_loop_t *loop, const struct fl_timer_config *cfg, struct fl_timer **out);

/* The workflow engine that fires of triggers targeting a workflow start
 * invocations on (made after the scheduler, closed before it: give NULL
 * before closing it; a lookup under way then ends the fire). Without one,
 * such a fire is recorded with its error. */
void fl_timer_use_workflows(struct fl_timer *t, struct fl_wf_engine *workflows);

/* Stop firing; done runs from the loop once every submit and store
 * operation under way has answered, and the scheduler is freed. */
void fl_timer_close(struct fl_timer *t, void (*done)(void *data), void *data);

/* The hooks of the kind "timetrigger" (kinds.def): put parses the spec
 * (FL_EINVAL with why: the trigger keeps what it had), remove stops it,
 * synced ends the catch-up at start, status is
 * {"lastFire": {"scheduledTime", "invocation", "error"?} or null,
 *  "nextFire": RFC 3339 in the trigger's zone, or null}. */
extern const struct fl_kind_hooks fl_timer_hooks;

/*
 * The catch-up of a trigger, a pure function: the fire times of c in zone
 * tz after last and at or before now that policy fires, oldest first, into
 * out (room for max, at most FL_TIMER_CATCHUP_MAX is useful):
 *   FL_CATCHUP_NONE  none
 *   FL_CATCHUP_LAST  the most recent one, if any
 *   FL_CATCHUP_ALL   every one; if more than max, the newest max and
 *                    *dropped is set
 * *n gets the count. Walks back from now (fl_cron_prev()), so its cost is
 * that of the times it returns, whatever the gap. 0, or an error of
 * fl_cron_prev() other than FL_ENOENT (FL_ERANGE: an instant out of range).
 */
int fl_timer_missed(const struct fl_cron *c, const struct fl_tz *tz, enum fl_catchup policy,
                    int64_t last, int64_t now, int64_t *out, size_t max, size_t *n, bool *dropped);

#endif
