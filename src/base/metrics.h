/*
 * Metrics in the Prometheus model: families of counters, gauges and
 * histograms, each series named by label values, rendered in the text
 * exposition format (version 0.0.4) for GET /metrics.
 *
 *   struct fl_metrics *m = fl_metrics_new();
 *   struct fl_metric *calls = fl_metrics_counter(m, "flint_invocations_total",
 *       "Invocations by function and status.", 2, (const char *[]){"function", "status"});
 *   fl_metric_add(calls, (const char *[]){"hello", "200"}, 1);
 *
 * A registry is used from one thread (flintd's loop); it is not locked.
 * Families and series live until fl_metrics_free(); series per family are
 * bounded (FL_METRICS_MAX_SERIES): past that, new label values are counted
 * in one overflow series whose label values are all "_other", so a
 * high-cardinality label cannot eat the daemon's memory.
 */
#ifndef FLINT_BASE_METRICS_H
#define FLINT_BASE_METRICS_H

#include <stddef.h>

#include "base/buf.h"

#define FL_METRICS_MAX_LABELS 4
#define FL_METRICS_MAX_SERIES 2048

struct fl_metrics;
struct fl_metric;

struct fl_metrics *fl_metrics_new(void);
void fl_metrics_free(struct fl_metrics *m);

/* Register a family. name and help must be string literals or otherwise
 * outlive the registry; label names are copied. Returns NULL if out of
 * memory or nlabels > FL_METRICS_MAX_LABELS. Registering a name twice
 * returns the existing family. */
struct fl_metric *fl_metrics_counter(struct fl_metrics *m, const char *name, const char *help,
                                     size_t nlabels, const char *const *labels);
struct fl_metric *fl_metrics_gauge(struct fl_metrics *m, const char *name, const char *help,
                                   size_t nlabels, const char *const *labels);
/* bounds: nbuckets ascending upper bounds (the +Inf bucket is implied). */
struct fl_metric *fl_metrics_histogram(struct fl_metrics *m, const char *name, const char *help,
                                       size_t nlabels, const char *const *labels, size_t nbuckets,
                                       const double *bounds);

/* Add v to a counter or gauge series (created at 0 on first use); values
 * holds one string per label. Counters ignore negative v. */
void fl_metric_add(struct fl_metric *f, const char *const *values, double v);
/* Set a gauge series. */
void fl_metric_set(struct fl_metric *f, const char *const *values, double v);
/* Record one observation in a histogram series. */
void fl_metric_observe(struct fl_metric *f, const char *const *values, double v);
/* Drop a series (e.g. a deleted function's gauges). */
void fl_metric_remove(struct fl_metric *f, const char *const *values);

/* Append every family in the text format to out. 0 or FL_ETOOBIG/FL_ENOMEM. */
int fl_metrics_render(struct fl_metrics *m, struct fl_buf *out);

/* Latency buckets in seconds, from 100 µs to 60 s. */
extern const double fl_metrics_latency_buckets[];
extern const size_t fl_metrics_latency_nbuckets;

#endif
