/*
 * Loop lag: how long the event loop goes without waiting for events, which
 * is how long every client, instance and store callback may be kept
 * waiting behind whatever runs. Redis's LATENCY monitor is the model: the
 * longest stall and a histogram of stalls, as metrics, so a regression is
 * seen instead of guessed.
 *
 * A stall is one loop iteration's busy time: the wall time between two
 * passes of a prepare handle (which runs just before the loop blocks in
 * epoll) minus the time the loop spent blocked, which libuv measures when
 * the loop is configured with UV_METRICS_IDLE_TIME. So an iteration that
 * runs a 30 ms callback counts 30 ms, one that sleeps a second waiting for
 * a timer counts almost nothing.
 *
 * Metrics (on the registry given):
 *   flint_loop_stall_seconds      histogram of every iteration's busy time
 *   flint_loop_stall_max_seconds  gauge: the longest stall since start
 * and a rate-limited warning in the log for a stall of 500 ms or more.
 *
 * Runs on the loop's thread; needs nothing but base and libuv.
 */
#ifndef FLINT_LOOP_LAG_H
#define FLINT_LOOP_LAG_H

#include <stdint.h>
#include <uv.h>

#include "base/metrics.h"

struct fl_loop_lag;

/* Measure loop's stalls into metrics (borrowed; may be NULL). Call it
 * before the loop first runs: it configures the loop to measure its idle
 * time. The handle does not keep the loop alive. 0, FL_ENOMEM, or a
 * negative error from libuv (the loop could not be configured). */
int fl_loop_lag_new(uv_loop_t *loop, struct fl_metrics *metrics, struct fl_loop_lag **out);

/* Stop measuring; freed once its handle is closed (run the loop). */
void fl_loop_lag_close(struct fl_loop_lag *lag);

/* The longest stall seen, in nanoseconds, and the number of iterations
 * measured. */
uint64_t fl_loop_lag_max_ns(const struct fl_loop_lag *lag);
uint64_t fl_loop_lag_iterations(const struct fl_loop_lag *lag);

#endif
