/*
 * Loop lag: how long the event loop goes without coming back to its
 * timers, which is how long every client, instance and store callback may
 * be kept waiting behind whatever runs. Redis's LATENCY monitor is the
 * model: the longest stall and a histogram of stalls, as metrics, so a
 * regression is seen instead of guessed.
 *
 * Measured as Node's monitorEventLoopDelay does it: a timer repeating every
 * FL_LOOP_LAG_TICK_MS, and how late each tick runs. A callback that holds
 * the loop for S ms makes the tick due meanwhile late by S minus at most
 * one tick, so stalls are seen to within FL_LOOP_LAG_TICK_MS, at no cost
 * per request (a prepare/check pair with libuv's idle time would be exact
 * but makes every loop iteration pay an extra epoll_wait).
 *
 * Metrics (on the registry given):
 *   flint_loop_stall_seconds      histogram: how late each tick ran
 *   flint_loop_stall_max_seconds  gauge: the latest a tick ran since start
 * and a rate-limited warning in the log for a stall of 500 ms or more.
 *
 * Runs on the loop's thread; needs nothing but base and libuv.
 */
#ifndef FLINT_LOOP_LAG_H
#define FLINT_LOOP_LAG_H

#include <stdint.h>
#include <uv.h>

#include "base/metrics.h"

#define FL_LOOP_LAG_TICK_MS 10

struct fl_loop_lag;

/* Measure loop's stalls into metrics (borrowed; may be NULL). The timer
 * does not keep the loop alive. 0 or FL_ENOMEM. */
int fl_loop_lag_new(uv_loop_t *loop, struct fl_metrics *metrics, struct fl_loop_lag **out);

/* Stop measuring; freed once its handle is closed (run the loop). */
void fl_loop_lag_close(struct fl_loop_lag *lag);

/* The longest stall seen (the latest a tick ran), in nanoseconds, and
 * the number of ticks measured. */
uint64_t fl_loop_lag_max_ns(const struct fl_loop_lag *lag);
uint64_t fl_loop_lag_ticks(const struct fl_loop_lag *lag);

#endif
