/*
 * The scheduler of time triggers (see scheduler.h).
 *
 * Objects:
 *   struct fl_timer  the part: its triggers, the zones they share, one uv
 *                    timer for the earliest fire
 *   struct zone      a zone shared by name among triggers (counted)
 *   struct trigger   one trigger: spec, zone, load state, last and next
 *                    fire, the missed times it still owes
 *
 * A trigger's life: put -> loading (read its creation time, then the last
 * event of its stream) -> loaded (fires) -> removed (freed once no
 * callback of its own is to come). Every store operation and submit whose
 * callback is to come is counted (t->ops, and the trigger's busy), so that
 * closing waits for them and never frees what a callback will touch.
 */
#include "timer/scheduler.h"

#include "async/async.h"
#include "base/id.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/queue.h"
#include "base/str.h"
#include "store/store.h"
#include "wf/engine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIND           "timetrigger"
#define STREAM_PREFIX  "tt/"
#define STREAM_KEEP    1000  /* events a trigger's stream holds before it is compacted */
#define TICK_MAX_MS    60000 /* the timer looks at the wall clock at least this often */
#define NEVER          INT64_MAX
#define TT_STREAM_MAX  (sizeof(STREAM_PREFIX) + FL_NAME_MAX)
#define TT_TRIGGER_MAX (sizeof(KIND "/") + FL_NAME_MAX)
#define TT_ERROR_MAX   256
#define TT_IDEM_MAX    (TT_TRIGGER_MAX + 24)

struct zone {
    struct fl_queue link; /* fl_timer.zones */
    struct fl_tz *tz;
    unsigned refs;
};

struct trigger {
    struct fl_queue link; /* fl_timer.triggers */
    struct fl_timer *t;
    char name[FL_NAME_MAX + 1];
    char stream[TT_STREAM_MAX];        /* "tt/<name>" */
    char trigger_name[TT_TRIGGER_MAX]; /* "timetrigger/<name>" */
    struct fl_timetrigger_spec spec;
    struct zone *zone;
    bool loaded;   /* its creation and last fire are known: it fires */
    bool removed;  /* deleted: freed once busy is 0 */
    bool at_start; /* put before synced: it catches up */
    bool firing;   /* a fire is between its submit and its record */
    unsigned busy; /* callbacks of its own still to come */
    int64_t created;
    int64_t last;  /* the last time fired (or where catching up starts) */
    int64_t next;  /* NEVER: none */
    int64_t *owed; /* missed times still to fire, oldest first */
    size_t nowed, owed_at;
    /* the last fire, for its status */
    bool has_fire;
    int64_t fire_time;
    char fire_invocation[FL_UUID_STRLEN + 1];
    char fire_error[TT_ERROR_MAX];
    char fire_invocation_next[FL_UUID_STRLEN + 1]; /* a workflow's, of the fire under way */
    /* the fire between submit and record */
    int64_t firing_time;
    char *event; /* its event's data, kept for a compaction */
};

struct fl_timer {
    uv_loop_t *loop;
    struct fl_store *store;
    struct fl_async *async;
    struct fl_wf_engine *workflows; /* NULL: workflow targets cannot fire yet */
    struct fl_queue triggers;       /* struct trigger */
    struct fl_queue zones;          /* struct zone */
    uv_timer_t timer;
    bool synced;
    bool closing;
    bool timer_open;
    unsigned ops;
    void (*done)(void *data);
    void *done_data;
};

static void arm(struct fl_timer *t);
static void maybe_done(struct fl_timer *t);

/* ---- the catch-up, pure ---- */

int fl_timer_missed(const struct fl_cron *c, const struct fl_tz *tz, enum fl_catchup policy,
                    int64_t last, int64_t now, int64_t *out, size_t max, size_t *n, bool *dropped)
{
    *n = 0;
    *dropped = false;
    if (policy == FL_CATCHUP_NONE || now <= last || max == 0)
        return 0;
    size_t want = policy == FL_CATCHUP_LAST ? 1 : max;
    size_t got = 0;
    int64_t at = now, p;
    while (true) {
        int rc = fl_cron_prev(c, tz, at, &p);
        if (rc == FL_ENOENT || (rc == 0 && p <= last))
            break;
        if (rc < 0)
            return rc;
        if (got == want) {
            *dropped = policy == FL_CATCHUP_ALL;
            break;
        }
        out[got++] = p;
        at = p - 1;
    }
    /* newest first -> oldest first */
    for (size_t i = 0; i < got / 2; i++) {
        int64_t x = out[i];
        out[i] = out[got - 1 - i];
        out[got - 1 - i] = x;
    }
    *n = got;
    return 0;
}

/* ---- zones ---- */

/* Share tz (now owned here) with the triggers in the same zone. */
static struct zone *zone_get(struct fl_timer *t, struct fl_tz *tz)
{
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &t->zones)
    {
        struct zone *z = FL_QUEUE_DATA(e, struct zone, link);
        if (strcmp(fl_tz_name(z->tz), fl_tz_name(tz)) == 0) {
            fl_tz_free(tz);
            z->refs++;
            return z;
        }
    }
    struct zone *z = calloc(1, sizeof(*z));
    if (z == NULL) {
        fl_tz_free(tz);
        return NULL;
    }
    z->tz = tz;
    z->refs = 1;
    fl_queue_insert_tail(&t->zones, &z->link);
    return z;
}

static void zone_put(struct zone *z)
{
    if (z == NULL || --z->refs > 0)
        return;
    fl_queue_remove(&z->link);
    fl_tz_free(z->tz);
    free(z);
}

/* ---- triggers ---- */

static int64_t now_ms(const struct fl_timer *t)
{
    return fl_clock_wall_ms();
}

static struct trigger *find(struct fl_timer *t, const char *name)
{
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &t->triggers)
    {
        struct trigger *tr = FL_QUEUE_DATA(e, struct trigger, link);
        if (!tr->removed && strcmp(tr->name, name) == 0)
            return tr;
    }
    return NULL;
}

static void trigger_free(struct trigger *tr)
{
    fl_queue_remove(&tr->link);
    fl_timetrigger_spec_release(&tr->spec);
    zone_put(tr->zone);
    free(tr->owed);
    free(tr->event);
    free(tr);
}

/* A callback of tr's came: free it if it was removed and nothing else is
 * to come. */
static void trigger_done(struct trigger *tr)
{
    struct fl_timer *t = tr->t;
    tr->busy--;
    t->ops--;
    if (tr->removed && tr->busy == 0)
        trigger_free(tr);
    maybe_done(t);
}

static void trigger_busy(struct trigger *tr)
{
    tr->busy++;
    tr->t->ops++;
}

static void drop_owed(struct trigger *tr)
{
    free(tr->owed);
    tr->owed = NULL;
    tr->nowed = tr->owed_at = 0;
}

/* The next fire time after at, or NEVER. */
static int64_t next_after(const struct trigger *tr, int64_t at)
{
    int64_t next;
    return fl_cron_next(&tr->spec.cron, tr->zone->tz, at, &next) == 0 ? next : NEVER;
}

/* Owe the times in (from, now] that the trigger's catchup fires. */
static void owe_missed(struct trigger *tr, int64_t from, int64_t now)
{
    if (now <= from || tr->spec.catchup == FL_CATCHUP_NONE)
        return; /* nothing can be owed (the common case: a fire on time) */
    int64_t *times = malloc(FL_TIMER_CATCHUP_MAX * sizeof(*times));
    size_t n = 0;
    bool dropped = false;
    int rc = times == NULL ? FL_ENOMEM
                           : fl_timer_missed(&tr->spec.cron, tr->zone->tz, tr->spec.catchup, from,
                                             now, times, FL_TIMER_CATCHUP_MAX, &n, &dropped);
    if (rc < 0)
        fl_log(FL_LOG_ERROR, "timer", "cannot work out a trigger's missed fires",
               "trigger=%s error=%s", tr->name, fl_errname(rc));
    if (dropped)
        fl_log(FL_LOG_WARN, "timer", "missed fires past the catch-up bound dropped",
               "trigger=%s kept=%zu oldest_kept=%" PRId64, tr->name, n, n > 0 ? times[0] : 0);
    if (n > 0)
        fl_log(FL_LOG_INFO, "timer", "catching up missed fires", "trigger=%s catchup=%s fires=%zu",
               tr->name, fl_catchup_name(tr->spec.catchup), n);
    if (rc < 0 || n == 0) {
        free(times);
        return;
    }
    /* appended to what is still owed (in order: all of it is before from) */
    size_t left = tr->nowed - tr->owed_at;
    int64_t *all = malloc((left + n) * sizeof(*all));
    if (all == NULL) {
        free(times);
        return;
    }
    if (left > 0)
        memcpy(all, tr->owed + tr->owed_at, left * sizeof(*all));
    memcpy(all + left, times, n * sizeof(*all));
    free(times);
    free(tr->owed);
    tr->owed = all;
    tr->nowed = left + n;
    tr->owed_at = 0;
}

/* ---- firing ---- */

static void fire_finish(struct trigger *tr)
{
    tr->firing = false;
    free(tr->event);
    tr->event = NULL;
    if (!tr->removed)
        arm(tr->t);
}

static void on_compacted(int err, const struct fl_store_result *res, void *data)
{
    struct trigger *tr = data;
    if (err < 0)
        fl_log(FL_LOG_ERROR, "timer", "cannot record a fire after compacting its stream",
               "trigger=%s error=%s", tr->name, fl_errname(err));
    fire_finish(tr);
    trigger_done(tr);
}

static void on_recorded(int err, const struct fl_store_result *res, void *data)
{
    struct trigger *tr = data;
    struct fl_timer *t = tr->t;
    if (err < 0)
        fl_log(FL_LOG_ERROR, "timer", "cannot record a fire", "trigger=%s error=%s", tr->name,
               fl_errname(err));
    if (err == 0 && res->seq >= STREAM_KEEP && !tr->removed && !t->closing) {
        /* keep the stream short: its last event is all that is read. The
         * store's writer takes both in order, usually in one commit. */
        struct fl_event_in ev = {"fire", tr->event, strlen(tr->event)};
        fl_store_stream_delete(t->store, tr->stream, NULL, NULL);
        if (fl_store_append(t->store, tr->stream, &ev, 1, FL_SEQ_ANY, on_compacted, tr) == 0) {
            trigger_busy(tr);
            trigger_done(tr);
            return;
        }
    }
    fire_finish(tr);
    trigger_done(tr);
}

/* The submit of tr's fire at firing_time answered: keep it as the last
 * fire, and record it in the stream. */
static void record(struct trigger *tr, int err, const char *id, bool duplicate)
{
    struct fl_timer *t = tr->t;
    int64_t s = tr->firing_time;
    char when[FL_TZ_RFC3339_MAX];
    fl_tz_format_rfc3339(NULL, s, when, sizeof(when));
    tr->has_fire = true;
    tr->fire_time = s;
    if (tr->last < s)
        tr->last = s;
    fl_strlcpy(tr->fire_invocation, err == 0 && id != NULL ? id : "", sizeof(tr->fire_invocation));
    tr->fire_error[0] = '\0';
    if (err < 0) {
        bool wf = tr->spec.workflow[0] != '\0';
        snprintf(tr->fire_error, sizeof(tr->fire_error), "%s: %s",
                 err == FL_ENOENT          ? (wf ? "workflow_not_found" : "function_not_found")
                 : err == FL_ENOTSUP && wf ? "unavailable"
                                           : fl_errname(err),
                 err == FL_ENOENT          ? (wf ? "the trigger's workflow does not exist"
                                                 : "the trigger's function does not exist")
                 : err == FL_ENOTSUP && wf ? "workflows are not running"
                                           : fl_strerror(err));
        FL_LOG_LIMITED(FL_LOG_WARN, "timer", "a fire was refused",
                       "trigger=%s target=%s scheduled=%s error=%s", tr->name,
                       wf ? tr->spec.workflow : tr->spec.function, when, fl_errname(err));
    }
    json_t *ev = json_pack("{s:I,s:s,s:o}", "scheduled", (json_int_t)s, "scheduledTime", when,
                           "invocation", err == 0 && id != NULL ? json_string(id) : json_null());
    if (ev != NULL && err < 0)
        json_object_set_new(ev, "error", json_string(tr->fire_error));
    if (ev != NULL && duplicate)
        json_object_set_new(ev, "duplicate", json_true());
    tr->event = ev != NULL ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (tr->event == NULL) {
        fire_finish(tr);
        return;
    }
    struct fl_event_in in = {"fire", tr->event, strlen(tr->event)};
    int rc = fl_store_append(t->store, tr->stream, &in, 1, FL_SEQ_ANY, on_recorded, tr);
    if (rc < 0) {
        fl_log(FL_LOG_ERROR, "timer", "cannot record a fire", "trigger=%s error=%s", tr->name,
               fl_errname(rc));
        fire_finish(tr);
        return;
    }
    trigger_busy(tr);
}

static void on_submitted(int err, const char *id, bool duplicate, void *data)
{
    struct trigger *tr = data;
    if (tr->removed || tr->t->closing)
        tr->firing = false;
    else
        record(tr, err, id, duplicate);
    trigger_done(tr);
}

static void on_wf_submitted(int err, const char *id, void *data)
{
    on_submitted(err, id, false, data);
}

/* The request of a fire of tr's workflow (added: its X-Flint-Scheduled-Time;
 * id: the invocation's). */
static struct fl_invoke_request wf_request(struct trigger *tr, const struct fl_http_header *added,
                                           const char *id)
{
    return (struct fl_invoke_request){.target = {FL_INVOKE_WORKFLOW, tr->spec.workflow},
                                      .method = tr->spec.method,
                                      .path = "/",
                                      .added = added,
                                      .nadded = 1,
                                      .body = tr->spec.body,
                                      .body_len = tr->spec.body_len,
                                      .invocation_id = id,
                                      .trigger = FL_TRIGGER_CRON,
                                      .trigger_name = tr->trigger_name};
}

/* The workflow invocation of this fire was looked up: there already (a
 * fire made again), or to start. */
static void on_wf_looked_up(int err, json_t *value, void *data)
{
    struct trigger *tr = data;
    struct fl_timer *t = tr->t;
    char id[FL_UUID_STRLEN + 1], when[FL_TZ_RFC3339_MAX];
    fl_strlcpy(id, tr->fire_invocation_next, sizeof(id));
    if (err == FL_ENOENT && t->workflows == NULL)
        err = FL_ECANCELED; /* the engine is closing */
    if (err != FL_ENOENT || tr->removed || t->closing) {
        on_submitted(err, id, err == 0, tr);
        return;
    }
    fl_tz_format_rfc3339(NULL, tr->firing_time, when, sizeof(when));
    const struct fl_http_header added[] = {
        {"X-Flint-Scheduled-Time", strlen("X-Flint-Scheduled-Time"), when, strlen(when)}};
    const struct fl_invoke_request r = wf_request(tr, added, id);
    int rc = fl_wf_engine_submit(t->workflows, &r, on_wf_submitted, tr);
    if (rc < 0) {
        on_submitted(rc, NULL, false, tr);
        return;
    }
    trigger_busy(tr);
    trigger_done(tr); /* the lookup's */
}

/* Fire tr's workflow for the scheduled time s: its invocation's id is the
 * key's; look it up first. */
static void fire_workflow(struct trigger *tr, const char *key, int64_t s)
{
    struct fl_timer *t = tr->t;
    tr->firing = true;
    tr->firing_time = s;
    const char *const parts[] = {"flint-timetrigger", key};
    fl_uuid7_derived(s * 1000, parts, 2, tr->fire_invocation_next);
    int rc = t->workflows == NULL ? FL_ENOTSUP
                                  : fl_wf_engine_get(t->workflows, tr->fire_invocation_next, false,
                                                     on_wf_looked_up, tr);
    if (rc < 0) {
        record(tr, rc, NULL, false);
        return;
    }
    trigger_busy(tr);
}

/* Fire tr for the scheduled time s. */
static void fire(struct trigger *tr, int64_t s)
{
    struct fl_timer *t = tr->t;
    char when[FL_TZ_RFC3339_MAX], key[TT_IDEM_MAX];
    fl_tz_format_rfc3339(NULL, s, when, sizeof(when));
    snprintf(key, sizeof(key), "%s/%" PRId64, tr->trigger_name, s);
    if (tr->spec.workflow[0] != '\0') {
        fire_workflow(tr, key, s);
        return;
    }
    const struct fl_http_header added[] = {
        {"X-Flint-Scheduled-Time", strlen("X-Flint-Scheduled-Time"), when, strlen(when)}};
    const struct fl_async_request r = {
        .target = {FL_INVOKE_FUNCTION, tr->spec.function},
        .method = tr->spec.method,
        .path = "/",
        .added = added,
        .nadded = 1,
        .body = tr->spec.body,
        .body_len = tr->spec.body_len,
        .trigger = FL_TRIGGER_CRON,
        .trigger_name = tr->trigger_name,
        .retry = tr->spec.has_retry ? &tr->spec.retry : NULL,
        .idempotency_key = key,
    };
    tr->firing = true;
    tr->firing_time = s;
    int rc = fl_async_submit(t->async, &r, on_submitted, tr);
    if (rc < 0) {
        record(tr, rc, NULL, false); /* refused at once: a fire with its error */
        return;
    }
    trigger_busy(tr);
}

/* What tr fires now, if anything. */
static void trigger_tick(struct trigger *tr, int64_t wall_ms)
{
    if (!tr->loaded || tr->removed || tr->firing)
        return;
    if (tr->owed_at < tr->nowed) {
        int64_t s = tr->owed[tr->owed_at++];
        if (tr->owed_at == tr->nowed)
            drop_owed(tr);
        fire(tr, s);
        return;
    }
    if (tr->next == NEVER || tr->next > wall_ms / 1000)
        return;
    int64_t s = tr->next, now = wall_ms / 1000;
    /* times passed beyond it (a held loop, a jump of the clock) are missed */
    owe_missed(tr, s, now);
    tr->next = next_after(tr, now);
    fire(tr, s);
}

static void on_timer(uv_timer_t *h)
{
    struct fl_timer *t = h->data;
    int64_t now = now_ms(t);
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &t->triggers)
    {
        trigger_tick(FL_QUEUE_DATA(e, struct trigger, link), now);
    }
    arm(t);
}

/* Wait for the earliest fire (or an owed one: at once). */
static void arm(struct fl_timer *t)
{
    if (t->closing)
        return;
    int64_t now = now_ms(t), wait = TICK_MAX_MS;
    bool any = false;
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &t->triggers)
    {
        struct trigger *tr = FL_QUEUE_DATA(e, struct trigger, link);
        if (!tr->loaded || tr->removed || tr->firing)
            continue;
        any = true;
        int64_t at = tr->owed_at < tr->nowed ? 0
                     : tr->next == NEVER     ? TICK_MAX_MS
                                             : tr->next * 1000 - now;
        if (at < wait)
            wait = at < 0 ? 0 : at;
    }
    if (any)
        uv_timer_start(&t->timer, on_timer, (uint64_t)wait, 0);
    else
        uv_timer_stop(&t->timer);
}

/* ---- loading ---- */

/* Its creation and last fire are known (last 0: it never fired): catch up
 * and start. */
static void loaded(struct trigger *tr, bool fired, int64_t last)
{
    struct fl_timer *t = tr->t;
    int64_t now = now_ms(t) / 1000;
    tr->loaded = true;
    tr->spec.cron.every_anchor = tr->created;
    /* catching up: from the last fire, or from its creation if it never
     * fired and was there when flintd started; one created now starts now */
    tr->last = fired ? last : tr->at_start ? tr->created : now;
    if (tr->last < now)
        owe_missed(tr, tr->last, now);
    tr->next = next_after(tr, tr->last > now ? tr->last : now);
    arm(t);
}

static void on_last_event(int err, const struct fl_store_result *res, void *data)
{
    struct trigger *tr = data;
    if (!tr->removed && !tr->t->closing) {
        json_t *ev = err == 0 && res->n > 0
                         ? json_loadb(res->records[0].data, res->records[0].len, 0, NULL)
                         : NULL;
        json_t *s = json_object_get(ev, "scheduled");
        if (err < 0)
            fl_log(FL_LOG_ERROR, "timer", "cannot read a trigger's last fire; it starts anew",
                   "trigger=%s error=%s", tr->name, fl_errname(err));
        if (json_is_integer(s)) {
            tr->has_fire = true;
            tr->fire_time = json_integer_value(s);
            fl_strlcpy(tr->fire_invocation,
                       json_string_value(json_object_get(ev, "invocation"))
                           ? json_string_value(json_object_get(ev, "invocation"))
                           : "",
                       sizeof(tr->fire_invocation));
            const char *why = json_string_value(json_object_get(ev, "error"));
            fl_strlcpy(tr->fire_error, why ? why : "", sizeof(tr->fire_error));
        }
        loaded(tr, json_is_integer(s), json_integer_value(s));
        json_decref(ev);
    }
    trigger_done(tr);
}

static void on_stream(int err, const struct fl_store_result *res, void *data)
{
    struct trigger *tr = data;
    struct fl_timer *t = tr->t;
    if (!tr->removed && !t->closing) {
        bool found = err == 0 && res->n > 0 && strcmp(res->records[0].key, tr->stream) == 0;
        if (!found) {
            loaded(tr, false, 0);
        } else if (fl_store_read(t->store, tr->stream, res->records[0].seq, 1, on_last_event, tr) ==
                   0) {
            trigger_busy(tr);
        } else {
            loaded(tr, false, 0);
        }
    }
    trigger_done(tr);
}

static void on_resource(int err, const struct fl_store_result *res, void *data)
{
    struct trigger *tr = data;
    struct fl_timer *t = tr->t;
    if (!tr->removed && !t->closing) {
        tr->created = err == 0 && res->n > 0 && res->records[0].created_ms > 0
                          ? res->records[0].created_ms / 1000
                          : now_ms(t) / 1000;
        /* the stream's last sequence: streams by name from "tt/<name>",
         * the first being its own if it has one */
        const struct fl_page page = {.limit = 1};
        if (fl_store_streams(t->store, tr->stream, &page, on_stream, tr) == 0)
            trigger_busy(tr);
        else
            loaded(tr, false, 0);
    }
    trigger_done(tr);
}

/* ---- hooks ---- */

static int timer_put(void *part, const char *name, uint64_t revision, json_t *spec,
                     struct fl_buf *err)
{
    struct fl_timer *t = part;
    struct fl_timetrigger_spec s;
    struct fl_tz *tz = NULL;
    int rc = fl_timetrigger_spec_parse(spec, now_ms(t) / 1000, &s, &tz, err);
    if (rc < 0)
        return rc;
    struct zone *z = zone_get(t, tz);
    if (z == NULL) {
        fl_timetrigger_spec_release(&s);
        return FL_ENOMEM;
    }
    struct trigger *tr = find(t, name);
    if (tr != NULL) {
        /* an update: the new spec from now on */
        fl_timetrigger_spec_release(&tr->spec);
        zone_put(tr->zone);
        tr->spec = s;
        tr->zone = z;
        if (tr->loaded) {
            int64_t now = now_ms(t) / 1000;
            tr->spec.cron.every_anchor = tr->created;
            drop_owed(tr);
            tr->next = next_after(tr, tr->last > now ? tr->last : now);
            arm(t);
        }
        return 0;
    }
    if ((tr = calloc(1, sizeof(*tr))) == NULL) {
        fl_timetrigger_spec_release(&s);
        zone_put(z);
        return FL_ENOMEM;
    }
    tr->t = t;
    fl_strlcpy(tr->name, name, sizeof(tr->name));
    snprintf(tr->stream, sizeof(tr->stream), STREAM_PREFIX "%s", name);
    snprintf(tr->trigger_name, sizeof(tr->trigger_name), KIND "/%s", name);
    tr->spec = s;
    tr->zone = z;
    tr->at_start = !t->synced;
    tr->next = NEVER;
    fl_queue_insert_tail(&t->triggers, &tr->link);
    if ((rc = fl_store_get(t->store, KIND, name, on_resource, tr)) < 0) {
        tr->created = now_ms(t) / 1000;
        loaded(tr, false, 0);
        return 0;
    }
    trigger_busy(tr);
    return 0;
}

static void timer_remove(void *part, const char *name)
{
    struct fl_timer *t = part;
    struct trigger *tr = find(t, name);
    if (tr == NULL)
        return;
    tr->removed = true;
    drop_owed(tr);
    /* after any append of its own already handed over: the store keeps order */
    fl_store_stream_delete(t->store, tr->stream, NULL, NULL);
    if (tr->busy == 0)
        trigger_free(tr);
    arm(t);
}

static void timer_synced(void *part)
{
    struct fl_timer *t = part;
    t->synced = true;
}

static json_t *timer_status(void *part, const char *name, bool detail)
{
    struct fl_timer *t = part;
    struct trigger *tr = find(t, name);
    if (tr == NULL)
        return NULL;
    const struct fl_tz *tz = tr->zone->tz;
    char when[FL_TZ_RFC3339_MAX];
    json_t *last = json_null(), *next = json_null();
    if (tr->has_fire && fl_tz_format_rfc3339(tz, tr->fire_time, when, sizeof(when)) == 0) {
        last = json_pack("{s:s,s:o}", "scheduledTime", when, "invocation",
                         tr->fire_invocation[0] ? json_string(tr->fire_invocation) : json_null());
        if (last != NULL && tr->fire_error[0] != '\0')
            json_object_set_new(last, "error", json_string(tr->fire_error));
    }
    if (tr->loaded && tr->next != NEVER &&
        fl_tz_format_rfc3339(tz, tr->next, when, sizeof(when)) == 0)
        next = json_string(when);
    return json_pack("{s:o,s:o}", "lastFire", last ? last : json_null(), "nextFire",
                     next ? next : json_null());
}

const struct fl_kind_hooks fl_timer_hooks = {
    .put = timer_put, .remove = timer_remove, .synced = timer_synced, .status = timer_status};

/* ---- life cycle ---- */

int fl_timer_new(uv_loop_t *loop, const struct fl_timer_config *cfg, struct fl_timer **out)
{
    struct fl_timer *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return FL_ENOMEM;
    t->loop = loop;
    t->store = cfg->store;
    t->async = cfg->async;
    fl_queue_init(&t->triggers);
    fl_queue_init(&t->zones);
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    t->timer_open = true;
    *out = t;
    return 0;
}

static void maybe_done(struct fl_timer *t)
{
    if (!t->closing || t->ops > 0 || t->timer_open)
        return;
    while (!fl_queue_empty(&t->triggers))
        trigger_free(FL_QUEUE_DATA(fl_queue_first(&t->triggers), struct trigger, link));
    void (*done)(void *) = t->done;
    void *data = t->done_data;
    free(t);
    if (done != NULL)
        done(data);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct fl_timer *t = h->data;
    t->timer_open = false;
    maybe_done(t);
}

void fl_timer_use_workflows(struct fl_timer *t, struct fl_wf_engine *workflows)
{
    t->workflows = workflows;
}

void fl_timer_close(struct fl_timer *t, void (*done)(void *data), void *data)
{
    t->closing = true;
    t->done = done;
    t->done_data = data;
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, on_timer_closed);
}
