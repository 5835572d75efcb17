/*
 * Time. Monotonic time is for durations and timeouts; wall time is for
 * timestamps that are stored or shown.
 */
#ifndef FLINT_BASE_CLOCK_H
#define FLINT_BASE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic clock, nanoseconds from an arbitrary start. */
uint64_t fl_clock_mono_ns(void);

/* Wall clock, milliseconds since the Unix epoch. */
int64_t fl_clock_wall_ms(void);

/* Format a wall time (ms since the epoch) as RFC 3339 UTC with
 * milliseconds, "2026-11-24T11:32:02.123Z", into out (at least 25 bytes).
 * Returns out. */
char *fl_clock_format(int64_t wall_ms, char *out, size_t size);

#endif
