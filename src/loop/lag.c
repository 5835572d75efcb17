/* Loop lag (see lag.h). */
#include "loop/lag.h"

#include "base/error.h"
#include "base/log.h"

#include <stdlib.h>

#define WARN_NS 500000000ULL /* a stall this long is logged */

struct fl_loop_lag {
    uv_timer_t tick;
    struct fl_metric *stalls, *longest;
    uint64_t last_ns; /* when the previous tick ran */
    uint64_t max_ns, ticks;
};

static const double bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};

static void on_tick(uv_timer_t *t)
{
    struct fl_loop_lag *lag = t->data;
    uint64_t now = uv_hrtime(), due = lag->last_ns + FL_LOOP_LAG_TICK_MS * 1000000ULL;
    uint64_t late = now > due ? now - due : 0;
    lag->last_ns = now;
    lag->ticks++;
    if (lag->stalls != NULL)
        fl_metric_observe(lag->stalls, NULL, (double)late / 1e9);
    if (late > lag->max_ns) {
        lag->max_ns = late;
        if (lag->longest != NULL)
            fl_metric_set(lag->longest, NULL, (double)late / 1e9);
    }
    if (late >= WARN_NS)
        FL_LOG_LIMITED(FL_LOG_WARN, "loop", "the event loop stalled", "ms=%llu",
                       (unsigned long long)(late / 1000000));
}

int fl_loop_lag_new(uv_loop_t *loop, struct fl_metrics *metrics, struct fl_loop_lag **out)
{
    struct fl_loop_lag *lag = calloc(1, sizeof(*lag));
    if (lag == NULL)
        return FL_ENOMEM;
    if (metrics != NULL) {
        lag->stalls = fl_metrics_histogram(
            metrics, "flint_loop_stall_seconds",
            "How late the event loop ran a timer due every 10 ms: how long it was held.", 0, NULL,
            sizeof(bounds) / sizeof(bounds[0]), bounds);
        lag->longest =
            fl_metrics_gauge(metrics, "flint_loop_stall_max_seconds",
                             "The longest the event loop was held since start.", 0, NULL);
        if (lag->longest != NULL)
            fl_metric_set(lag->longest, NULL, 0);
    }
    uv_timer_init(loop, &lag->tick);
    lag->tick.data = lag;
    lag->last_ns = uv_hrtime();
    uv_timer_start(&lag->tick, on_tick, FL_LOOP_LAG_TICK_MS, FL_LOOP_LAG_TICK_MS);
    uv_unref((uv_handle_t *)&lag->tick);
    *out = lag;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void fl_loop_lag_close(struct fl_loop_lag *lag)
{
    if (lag != NULL)
        uv_close((uv_handle_t *)&lag->tick, on_closed);
}

uint64_t fl_loop_lag_max_ns(const struct fl_loop_lag *lag)
{
    return lag->max_ns;
}

uint64_t fl_loop_lag_ticks(const struct fl_loop_lag *lag)
{
    return lag->ticks;
}
