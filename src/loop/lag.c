/* Loop lag (see lag.h). */
#include "loop/lag.h"

#include "base/error.h"
#include "base/log.h"

#include <stdlib.h>

#define WARN_NS 500000000ULL /* a stall this long is logged */

struct fl_loop_lag {
    uv_prepare_t prepare;
    struct fl_metric *stalls, *longest;
    uint64_t last_ns, last_idle_ns; /* at the previous pass; last_ns 0: none yet */
    uint64_t max_ns, iterations;
};

static const double bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};

static void on_prepare(uv_prepare_t *h)
{
    struct fl_loop_lag *lag = h->data;
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(h->loop);
    if (lag->last_ns != 0) {
        uint64_t wall = now - lag->last_ns, waited = idle - lag->last_idle_ns;
        uint64_t busy = wall > waited ? wall - waited : 0;
        lag->iterations++;
        if (lag->stalls != NULL)
            fl_metric_observe(lag->stalls, NULL, (double)busy / 1e9);
        if (busy > lag->max_ns) {
            lag->max_ns = busy;
            if (lag->longest != NULL)
                fl_metric_set(lag->longest, NULL, (double)busy / 1e9);
        }
        if (busy >= WARN_NS)
            FL_LOG_LIMITED(FL_LOG_WARN, "loop", "the event loop stalled", "ms=%llu",
                           (unsigned long long)(busy / 1000000));
    }
    lag->last_ns = now;
    lag->last_idle_ns = idle;
}

int fl_loop_lag_new(uv_loop_t *loop, struct fl_metrics *metrics, struct fl_loop_lag **out)
{
    int rc = uv_loop_configure(loop, UV_METRICS_IDLE_TIME);
    if (rc < 0)
        return rc;
    struct fl_loop_lag *lag = calloc(1, sizeof(*lag));
    if (lag == NULL)
        return FL_ENOMEM;
    if (metrics != NULL) {
        lag->stalls = fl_metrics_histogram(
            metrics, "flint_loop_stall_seconds",
            "Time each event loop iteration spent working, not waiting for events.", 0, NULL,
            sizeof(bounds) / sizeof(bounds[0]), bounds);
        lag->longest = fl_metrics_gauge(
            metrics, "flint_loop_stall_max_seconds",
            "The longest event loop iteration spent working since start.", 0, NULL);
        if (lag->longest != NULL)
            fl_metric_set(lag->longest, NULL, 0);
    }
    uv_prepare_init(loop, &lag->prepare);
    lag->prepare.data = lag;
    uv_prepare_start(&lag->prepare, on_prepare);
    uv_unref((uv_handle_t *)&lag->prepare);
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
        uv_close((uv_handle_t *)&lag->prepare, on_closed);
}

uint64_t fl_loop_lag_max_ns(const struct fl_loop_lag *lag)
{
    return lag->max_ns;
}

uint64_t fl_loop_lag_iterations(const struct fl_loop_lag *lag)
{
    return lag->iterations;
}
