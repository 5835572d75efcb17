#include "base/metrics.h"

#include "base/error.h"
#include "base/str.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { COUNTER, GAUGE, HISTOGRAM };

struct series {
    char *values[FL_METRICS_MAX_LABELS];
    double value;               /* counter, gauge; histogram: the sum */
    unsigned long long *counts; /* histogram: per bucket, then +Inf */
    unsigned long long count;
};

struct fl_metric {
    const char *name;
    const char *help;
    enum kind kind;
    size_t nlabels;
    char *labels[FL_METRICS_MAX_LABELS];
    size_t nbuckets;
    double *bounds;
    struct series **series;
    size_t nseries, cap;
    struct series *overflow;
};

struct fl_metrics {
    struct fl_metric **families;
    size_t n, cap;
};

const double fl_metrics_latency_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                             0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                             1,      2.5,     5,      10,    30,     60};
const size_t fl_metrics_latency_nbuckets =
    sizeof(fl_metrics_latency_buckets) / sizeof(fl_metrics_latency_buckets[0]);

struct fl_metrics *fl_metrics_new(void)
{
    return calloc(1, sizeof(struct fl_metrics));
}

static void series_free(struct series *s, size_t nlabels)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < nlabels; i++)
        free(s->values[i]);
    free(s->counts);
    free(s);
}

void fl_metrics_free(struct fl_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        struct fl_metric *f = m->families[i];
        for (size_t k = 0; k < f->nseries; k++)
            series_free(f->series[k], f->nlabels);
        series_free(f->overflow, f->nlabels);
        for (size_t k = 0; k < f->nlabels; k++)
            free(f->labels[k]);
        free(f->series);
        free(f->bounds);
        free(f);
    }
    free(m->families);
    free(m);
}

static struct fl_metric *family(struct fl_metrics *m, const char *name, const char *help,
                                enum kind kind, size_t nlabels, const char *const *labels,
                                size_t nbuckets, const double *bounds)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->families[i]->name, name) == 0)
            return m->families[i];
    if (nlabels > FL_METRICS_MAX_LABELS)
        return NULL;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct fl_metric **families = realloc(m->families, cap * sizeof(*families));
        if (families == NULL)
            return NULL;
        m->families = families;
        m->cap = cap;
    }
    struct fl_metric *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->name = name;
    f->help = help;
    f->kind = kind;
    f->nlabels = nlabels;
    for (size_t i = 0; i < nlabels; i++) {
        f->labels[i] = fl_strndup(labels[i], strlen(labels[i]));
        if (f->labels[i] == NULL)
            goto out_free;
    }
    if (nbuckets > 0) {
        f->bounds = malloc(nbuckets * sizeof(double));
        if (f->bounds == NULL)
            goto out_free;
        memcpy(f->bounds, bounds, nbuckets * sizeof(double));
        f->nbuckets = nbuckets;
    }
    m->families[m->n++] = f;
    return f;
out_free:
    for (size_t i = 0; i < nlabels; i++)
        free(f->labels[i]);
    free(f);
    return NULL;
}

struct fl_metric *fl_metrics_counter(struct fl_metrics *m, const char *name, const char *help,
                                     size_t nlabels, const char *const *labels)
{
    return family(m, name, help, COUNTER, nlabels, labels, 0, NULL);
}

struct fl_metric *fl_metrics_gauge(struct fl_metrics *m, const char *name, const char *help,
                                   size_t nlabels, const char *const *labels)
{
    return family(m, name, help, GAUGE, nlabels, labels, 0, NULL);
}

struct fl_metric *fl_metrics_histogram(struct fl_metrics *m, const char *name, const char *help,
                                       size_t nlabels, const char *const *labels, size_t nbuckets,
                                       const double *bounds)
{
    return family(m, name, help, HISTOGRAM, nlabels, labels, nbuckets, bounds);
}

static struct series *series_new(struct fl_metric *f, const char *const *values)
{
    struct series *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < f->nlabels; i++) {
        s->values[i] = fl_strndup(values[i], strlen(values[i]));
        if (s->values[i] == NULL)
            goto out_free;
    }
    if (f->kind == HISTOGRAM) {
        s->counts = calloc(f->nbuckets + 1, sizeof(*s->counts));
        if (s->counts == NULL)
            goto out_free;
    }
    return s;
out_free:
    series_free(s, f->nlabels);
    return NULL;
}

static bool same_values(const struct fl_metric *f, const struct series *s,
                        const char *const *values)
{
    for (size_t i = 0; i < f->nlabels; i++)
        if (strcmp(s->values[i], values[i]) != 0)
            return false;
    return true;
}

/* The series for values, created on first use; NULL only if out of memory. */
static struct series *lookup(struct fl_metric *f, const char *const *values, bool create)
{
    for (size_t i = 0; i < f->nseries; i++)
        if (same_values(f, f->series[i], values))
            return f->series[i];
    if (!create)
        return NULL;
    if (f->nseries == FL_METRICS_MAX_SERIES) {
        if (f->overflow == NULL) {
            const char *other[FL_METRICS_MAX_LABELS] = {"_other", "_other", "_other", "_other"};
            f->overflow = series_new(f, other);
        }
        return f->overflow;
    }
    if (f->nseries == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct series **list = realloc(f->series, cap * sizeof(*list));
        if (list == NULL)
            return NULL;
        f->series = list;
        f->cap = cap;
    }
    struct series *s = series_new(f, values);
    if (s != NULL)
        f->series[f->nseries++] = s;
    return s;
}

void fl_metric_add(struct fl_metric *f, const char *const *values, double v)
{
    if (f == NULL || f->kind == HISTOGRAM || (f->kind == COUNTER && v < 0))
        return;
    struct series *s = lookup(f, values, true);
    if (s != NULL)
        s->value += v;
}

void fl_metric_set(struct fl_metric *f, const char *const *values, double v)
{
    if (f == NULL || f->kind != GAUGE)
        return;
    struct series *s = lookup(f, values, true);
    if (s != NULL)
        s->value = v;
}

void fl_metric_observe(struct fl_metric *f, const char *const *values, double v)
{
    if (f == NULL || f->kind != HISTOGRAM)
        return;
    struct series *s = lookup(f, values, true);
    if (s == NULL)
        return;
    size_t b = 0;
    while (b < f->nbuckets && v > f->bounds[b])
        b++;
    s->counts[b]++;
    s->count++;
    s->value += v;
}

void fl_metric_remove(struct fl_metric *f, const char *const *values)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->nseries; i++) {
        if (same_values(f, f->series[i], values)) {
            series_free(f->series[i], f->nlabels);
            memmove(&f->series[i], &f->series[i + 1], (f->nseries - i - 1) * sizeof(f->series[0]));
            f->nseries--;
            return;
        }
    }
}

static int append_value(struct fl_buf *out, double v)
{
    if (isinf(v))
        return fl_buf_appends(out, v > 0 ? "+Inf" : "-Inf");
    if (isnan(v))
        return fl_buf_appends(out, "NaN");
    if (v == floor(v) && fabs(v) < 1e15)
        return fl_buf_appendf(out, "%.0f", v);
    return fl_buf_appendf(out, "%.17g", v);
}

/* {a="x",b="y"[,le="0.5"]} with label values escaped per the format. */
static int append_labels(struct fl_buf *out, const struct fl_metric *f, const struct series *s,
                         const char *le)
{
    if (f->nlabels == 0 && le == NULL)
        return 0;
    int rc = fl_buf_appendc(out, '{');
    for (size_t i = 0; i < f->nlabels && rc == 0; i++) {
        rc = fl_buf_appendf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
        for (const char *p = s->values[i]; *p != '\0' && rc == 0; p++) {
            if (*p == '\\' || *p == '"')
                rc = fl_buf_appendc(out, '\\') ?: fl_buf_appendc(out, *p);
            else if (*p == '\n')
                rc = fl_buf_appends(out, "\\n");
            else
                rc = fl_buf_appendc(out, *p);
        }
        if (rc == 0)
            rc = fl_buf_appendc(out, '"');
    }
    if (rc == 0 && le != NULL)
        rc = fl_buf_appendf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    return rc ?: fl_buf_appendc(out, '}');
}

static int render_series(struct fl_buf *out, const struct fl_metric *f, const struct series *s)
{
    int rc = 0;
    if (f->kind != HISTOGRAM) {
        rc = fl_buf_appends(out, f->name);
        rc = rc ?: append_labels(out, f, s, NULL);
        rc = rc ?: fl_buf_appendc(out, ' ');
        rc = rc ?: append_value(out, s->value);
        return rc ?: fl_buf_appendc(out, '\n');
    }
    unsigned long long cumulative = 0;
    for (size_t b = 0; b <= f->nbuckets && rc == 0; b++) {
        char le[32];
        cumulative += s->counts[b];
        if (b == f->nbuckets)
            fl_strlcpy(le, "+Inf", sizeof(le));
        else
            snprintf(le, sizeof(le), "%g", f->bounds[b]);
        rc = fl_buf_appendf(out, "%s_bucket", f->name);
        rc = rc ?: append_labels(out, f, s, le);
        rc = rc ?: fl_buf_appendf(out, " %llu\n", cumulative);
    }
    rc = rc ?: fl_buf_appendf(out, "%s_sum", f->name);
    rc = rc ?: append_labels(out, f, s, NULL);
    rc = rc ?: fl_buf_appendc(out, ' ');
    rc = rc ?: append_value(out, s->value);
    rc = rc ?: fl_buf_appendf(out, "\n%s_count", f->name);
    rc = rc ?: append_labels(out, f, s, NULL);
    return rc ?: fl_buf_appendf(out, " %llu\n", s->count);
}

int fl_metrics_render(struct fl_metrics *m, struct fl_buf *out)
{
    static const char *types[] = {"counter", "gauge", "histogram"};
    int rc = 0;
    for (size_t i = 0; i < m->n && rc == 0; i++) {
        const struct fl_metric *f = m->families[i];
        rc = fl_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                            types[f->kind]);
        for (size_t k = 0; k < f->nseries && rc == 0; k++)
            rc = render_series(out, f, f->series[k]);
        if (rc == 0 && f->overflow != NULL)
            rc = render_series(out, f, f->overflow);
    }
    return rc;
}
