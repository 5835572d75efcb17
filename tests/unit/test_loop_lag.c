/* Unit tests for src/loop/lag: a stall is counted, time spent waiting is
 * not. A tick is due every FL_LOOP_LAG_TICK_MS; a callback holding the loop
 * 100 ms makes the tick due meanwhile late by at least 100 ms less a tick. */
#include "runner.h"

#include "base/clock.h"
#include "base/metrics.h"
#include "loop/lag.h"

struct world {
    uv_loop_t loop;
    struct fl_metrics *metrics;
    struct fl_loop_lag *lag;
    uv_timer_t timer, after;
    int fired;
};

static void busy_100ms(uv_timer_t *t)
{
    struct world *w = t->data;
    uint64_t until = fl_clock_mono_ns() + 100000000ULL;
    while (fl_clock_mono_ns() < until)
        ;
    w->fired++;
}

static void fired(uv_timer_t *t)
{
    struct world *w = t->data;
    w->fired++;
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    ASSERT_OK(uv_loop_init(&w->loop));
    w->metrics = fl_metrics_new();
    ASSERT(w->metrics != NULL);
    ASSERT_OK(fl_loop_lag_new(&w->loop, w->metrics, &w->lag));
    uv_timer_init(&w->loop, &w->timer);
    uv_timer_init(&w->loop, &w->after);
    w->timer.data = w->after.data = w;
}

static void world_release(struct world *w)
{
    fl_loop_lag_close(w->lag);
    uv_close((uv_handle_t *)&w->timer, NULL);
    uv_close((uv_handle_t *)&w->after, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&w->loop));
    fl_metrics_free(w->metrics);
}

/* Run the loop until nothing is left (the lag's timer keeps nothing
 * alive: `after` runs the loop on for a few ticks). */
static void run_until_fired(struct world *w, int n)
{
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ASSERT_EQ(w->fired, n);
}

TEST(a_callback_that_holds_the_loop_is_a_stall_in_the_metrics)
{
    struct world w;
    world_init(&w);
    uv_timer_start(&w.timer, busy_100ms, 25, 0);
    uv_timer_start(&w.after, fired, 200, 0);
    run_until_fired(&w, 2);
    ASSERT(fl_loop_lag_max_ns(w.lag) >= (100 - 2 * FL_LOOP_LAG_TICK_MS) * 1000000ULL);
    ASSERT(fl_loop_lag_ticks(w.lag) >= 2);
    struct fl_buf out;
    fl_buf_init(&out, 1 << 20);
    ASSERT_OK(fl_metrics_render(w.metrics, &out));
    ASSERT(strstr(out.data, "# TYPE flint_loop_stall_seconds histogram") != NULL);
    const char *max = strstr(out.data, "\nflint_loop_stall_max_seconds ");
    ASSERT(max != NULL);
    ASSERT(strtod(max + strlen("\nflint_loop_stall_max_seconds "), NULL) >= 0.08);
    /* the stall is in the buckets above 50 ms */
    const char *bucket = strstr(out.data, "flint_loop_stall_seconds_bucket{le=\"0.05\"} ");
    const char *count = strstr(out.data, "flint_loop_stall_seconds_count ");
    ASSERT(bucket != NULL && count != NULL);
    ASSERT(strtoull(bucket + strlen("flint_loop_stall_seconds_bucket{le=\"0.05\"} "), NULL, 10) <
           strtoull(count + strlen("flint_loop_stall_seconds_count "), NULL, 10));
    fl_buf_release(&out);
    world_release(&w);
}

TEST(time_spent_waiting_for_events_is_not_a_stall)
{
    struct world w;
    world_init(&w);
    uv_timer_start(&w.timer, fired, 1000, 0);
    run_until_fired(&w, 1);
    /* the loop slept a second, ticking on time all along */
    ASSERT(fl_loop_lag_ticks(w.lag) >= 10);
    ASSERT(fl_loop_lag_max_ns(w.lag) < 500000000ULL);
    world_release(&w);
}
