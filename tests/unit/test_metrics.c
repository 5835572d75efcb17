/* Unit tests for src/base/metrics: Prometheus text exposition. */
#include "runner.h"

#include "base/metrics.h"

static char *render(struct fl_metrics *m)
{
    struct fl_buf out;
    fl_buf_init(&out, 1 << 20);
    ASSERT_OK(fl_metrics_render(m, &out));
    return fl_buf_detach(&out, NULL);
}

#define ASSERT_HAS(text, needle)                                                                   \
    do {                                                                                           \
        if (strstr((text), (needle)) == NULL)                                                      \
            fl_test_fail(__FILE__, __LINE__, "missing '%s' in:\n%s", (needle), (text));            \
    } while (0)

TEST(counters_and_gauges_render_with_labels)
{
    struct fl_metrics *m = fl_metrics_new();
    const char *labels[] = {"function", "status"};
    struct fl_metric *calls =
        fl_metrics_counter(m, "flint_invocations_total", "Invocations.", 2, labels);
    struct fl_metric *again =
        fl_metrics_counter(m, "flint_invocations_total", "Invocations.", 2, labels);
    ASSERT(calls == again);
    fl_metric_add(calls, (const char *[]){"hello", "200"}, 1);
    fl_metric_add(calls, (const char *[]){"hello", "200"}, 2);
    fl_metric_add(calls, (const char *[]){"hello", "500"}, 1);
    fl_metric_add(calls, (const char *[]){"hello", "500"}, -5); /* counters never go down */
    struct fl_metric *pool = fl_metrics_gauge(m, "flint_pool_size", "Warm instances.", 1,
                                              (const char *[]){"environment"});
    fl_metric_set(pool, (const char *[]){"python"}, 3);
    fl_metric_add(pool, (const char *[]){"python"}, -1);
    struct fl_metric *up = fl_metrics_gauge(m, "flint_up", "Always 1.", 0, NULL);
    fl_metric_set(up, NULL, 1);

    char *text = render(m);
    ASSERT_HAS(text, "# HELP flint_invocations_total Invocations.\n"
                     "# TYPE flint_invocations_total counter\n"
                     "flint_invocations_total{function=\"hello\",status=\"200\"} 3\n"
                     "flint_invocations_total{function=\"hello\",status=\"500\"} 1\n");
    ASSERT_HAS(text, "# TYPE flint_pool_size gauge\nflint_pool_size{environment=\"python\"} 2\n");
    ASSERT_HAS(text, "flint_up 1\n");
    free(text);

    fl_metric_remove(pool, (const char *[]){"python"});
    text = render(m);
    ASSERT(strstr(text, "flint_pool_size{") == NULL);
    free(text);
    fl_metrics_free(m);
}

TEST(histograms_are_cumulative)
{
    struct fl_metrics *m = fl_metrics_new();
    double bounds[] = {0.1, 1};
    struct fl_metric *h = fl_metrics_histogram(m, "flint_latency_seconds", "Latency.", 1,
                                               (const char *[]){"function"}, 2, bounds);
    const char *fn[] = {"hello"};
    fl_metric_observe(h, fn, 0.05);
    fl_metric_observe(h, fn, 0.1); /* le is inclusive */
    fl_metric_observe(h, fn, 0.5);
    fl_metric_observe(h, fn, 7);
    char *text = render(m);
    ASSERT_HAS(text, "flint_latency_seconds_bucket{function=\"hello\",le=\"0.1\"} 2\n"
                     "flint_latency_seconds_bucket{function=\"hello\",le=\"1\"} 3\n"
                     "flint_latency_seconds_bucket{function=\"hello\",le=\"+Inf\"} 4\n"
                     "flint_latency_seconds_sum{function=\"hello\"} 7.6500000000000004\n"
                     "flint_latency_seconds_count{function=\"hello\"} 4\n");
    free(text);
    fl_metrics_free(m);
}

TEST(label_values_are_escaped)
{
    struct fl_metrics *m = fl_metrics_new();
    struct fl_metric *c = fl_metrics_counter(m, "x_total", "X.", 1, (const char *[]){"v"});
    fl_metric_add(c, (const char *[]){"a\"b\\c\nd"}, 1);
    char *text = render(m);
    ASSERT_HAS(text, "x_total{v=\"a\\\"b\\\\c\\nd\"} 1\n");
    free(text);
    fl_metrics_free(m);
}

TEST(series_are_bounded)
{
    struct fl_metrics *m = fl_metrics_new();
    struct fl_metric *c = fl_metrics_counter(m, "paths_total", "P.", 1, (const char *[]){"p"});
    char value[32];
    for (int i = 0; i < FL_METRICS_MAX_SERIES + 100; i++) {
        snprintf(value, sizeof(value), "/p/%d", i);
        fl_metric_add(c, (const char *[]){value}, 1);
    }
    char *text = render(m);
    ASSERT_HAS(text, "paths_total{p=\"_other\"} 100\n");
    ASSERT_HAS(text, "paths_total{p=\"/p/0\"} 1\n");
    free(text);
    /* more labels than allowed is refused */
    const char *five[] = {"a", "b", "c", "d", "e"};
    ASSERT(fl_metrics_counter(m, "too_many", "T.", 5, five) == NULL);
    fl_metrics_free(m);
}
