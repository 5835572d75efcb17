/* Unit tests for src/loop/lag: a stall is counted, time spent waiting is
 * not. */
#include "runner.h"

#include "base/clock.h"
#include "base/metrics.h"
#include "loop/lag.h"

struct world {
    uv_loop_t loop;
    struct fl_metrics *metrics;
    struct fl_loop_lag *lag;
    uv_timer_t timer;
    int fired;
};

static void busy_30ms(uv_timer_t *t)
{
    struct world *w = t->data;
    uint64_t until = fl_clock_mono_ns() + 30000000ULL;
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
    w->timer.data = w;
}

static void world_release(struct world *w)
{
    fl_loop_lag_close(w->lag);
    uv_close((uv_handle_t *)&w->timer, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&w->loop));
    fl_metrics_free(w->metrics);
}

/* Run the loop until nothing is left: the iteration that ran the timer
 * passes the prepare handle before the loop ends (as flintd's loop runs). */
static void run_until_fired(struct world *w, int n)
{
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ASSERT_EQ(w->fired, n);
}

TEST(a_callback_that_holds_the_loop_is_a_stall_in_the_metrics)
{
    struct world w;
    world_init(&w);
    uv_timer_start(&w.timer, busy_30ms, 1, 0);
    run_until_fired(&w, 1);
    ASSERT(fl_loop_lag_max_ns(w.lag) >= 30000000ULL);
    ASSERT(fl_loop_lag_iterations(w.lag) >= 1);
    struct fl_buf out;
    fl_buf_init(&out, 1 << 20);
    ASSERT_OK(fl_metrics_render(w.metrics, &out));
    ASSERT(strstr(out.data, "# TYPE flint_loop_stall_seconds histogram") != NULL);
    ASSERT(strstr(out.data, "flint_loop_stall_max_seconds 0.03") != NULL);
    /* the stall is in the buckets above 25 ms */
    const char *bucket = strstr(out.data, "flint_loop_stall_seconds_bucket{le=\"0.025\"} ");
    const char *count = strstr(out.data, "flint_loop_stall_seconds_count ");
    ASSERT(bucket != NULL && count != NULL);
    ASSERT(strtoull(bucket + strlen("flint_loop_stall_seconds_bucket{le=\"0.025\"} "), NULL, 10) <
           strtoull(count + strlen("flint_loop_stall_seconds_count "), NULL, 10));
    fl_buf_release(&out);
    world_release(&w);
}

TEST(time_spent_waiting_for_events_is_not_a_stall)
{
    struct world w;
    world_init(&w);
    uv_timer_start(&w.timer, fired, 1000, 0);
    uint64_t start = fl_clock_mono_ns();
    run_until_fired(&w, 1);
    ASSERT(fl_clock_mono_ns() - start >= 1000000000ULL);
    /* the loop slept a second; what it did around that is far less */
    ASSERT(fl_loop_lag_max_ns(w.lag) < 900000000ULL);
    world_release(&w);
}
