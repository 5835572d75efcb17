/*
 * A closed-loop HTTP load generator on src/http's client, for TCP and Unix
 * sockets alike (wrk has no Unix sockets): CONNS requests are kept in
 * flight against TARGET for SECONDS, each one sent again as soon as it is
 * answered. Prints one JSON line: requests/s, latency percentiles and
 * errors (non-2xx answers count as errors).
 *
 *   bench_invoke [-m METHOD] [-H 'Name: value']... [-d BODY] [-n COUNT]
 *                TARGET PATH [CONNS] [SECONDS]
 *   bench_invoke 127.0.0.1:8080 /hello/c/ada 16 3
 *   bench_invoke unix:/data/run/3/sock/s /hello/c/ada 16 3
 *   bench_invoke -m POST -H 'Prefer: respond-async' -n 5000 127.0.0.1:8081 \
 *                /v1/functions/hello/invoke 16 60
 *
 * GET by default, with no headers or body. A short warm-up opens the
 * connections first, unless -n is given: then exactly COUNT requests are
 * sent (none before), SECONDS is only a time limit, and "seconds" in the
 * output is the time from the first request to the last answer.
 */
#include "base/clock.h"
#include "base/error.h"
#include "http/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SAMPLES (1 << 22)
#define MAX_HEADERS 8

static struct fl_http_client *client;
static const char *target, *path, *method = "GET", *body;
static struct fl_http_header headers[MAX_HEADERS];
static size_t nheaders;
static uint64_t deadline_ns;
static long done_count, errors;
static long to_send = -1; /* -n: requests still to send; -1: no count */
static double *samples;
static size_t nsamples;
static int in_flight;

struct slot {
    uint64_t start_ns;
};

static void send_one(struct slot *s);

static void on_done(int err, const struct fl_http_client_response *resp, void *data)
{
    struct slot *s = data;
    in_flight--;
    uint64_t now = fl_clock_mono_ns();
    if (err != 0 || resp->status < 200 || resp->status > 299)
        errors++;
    else
        done_count++;
    if (nsamples < MAX_SAMPLES)
        samples[nsamples++] = (double)(now - s->start_ns) / 1000.0;
    if (now < deadline_ns && to_send != 0)
        send_one(s);
}

static void send_one(struct slot *s)
{
    struct fl_http_client_request req = {.target = target,
                                         .method = method,
                                         .path = path,
                                         .headers = headers,
                                         .nheaders = nheaders,
                                         .body = body,
                                         .body_len = body != NULL ? strlen(body) : 0,
                                         .idempotent = strcmp(method, "GET") == 0};
    if (to_send > 0)
        to_send--;
    s->start_ns = fl_clock_mono_ns();
    if (fl_http_client_request(client, &req, on_done, s, NULL) == 0)
        in_flight++;
    else
        errors++;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    if (nsamples == 0)
        return 0;
    size_t i = (size_t)(p * (double)(nsamples - 1));
    return samples[i];
}

/* "Name: value" into the next header: 0, or -1 if it is not one. */
static int add_header(char *line)
{
    char *colon = strchr(line, ':');
    if (colon == NULL || colon == line || nheaders == MAX_HEADERS)
        return -1;
    *colon = '\0';
    char *value = colon + 1;
    while (*value == ' ')
        value++;
    headers[nheaders++] = (struct fl_http_header){line, strlen(line), value, strlen(value)};
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_invoke [-m METHOD] [-H 'Name: value']... [-d BODY] [-n COUNT] "
                    "TARGET PATH [CONNS] [SECONDS]\n");
    return 2;
}

int main(int argc, char **argv)
{
    long count = -1;
    int opt;
    while ((opt = getopt(argc, argv, "m:H:d:n:")) != -1) {
        char *end;
        switch (opt) {
        case 'm':
            method = optarg;
            break;
        case 'H':
            if (add_header(optarg) < 0)
                return usage();
            break;
        case 'd':
            body = optarg;
            break;
        case 'n':
            count = strtol(optarg, &end, 10);
            if (*end != '\0' || count < 1)
                return usage();
            break;
        default:
            return usage();
        }
    }
    argc -= optind - 1;
    argv += optind - 1;
    if (argc < 3)
        return usage();
    target = argv[1];
    path = argv[2];
    int conns = argc > 3 ? atoi(argv[3]) : 16;
    double seconds = argc > 4 ? atof(argv[4]) : 3;
    if (conns < 1 || conns > 4096 || seconds <= 0) {
        fprintf(stderr, "bench_invoke: CONNS from 1 to 4096, SECONDS > 0\n");
        return 2;
    }
    samples = malloc(sizeof(double) * MAX_SAMPLES);
    uv_loop_t *loop = uv_default_loop();
    struct fl_http_client_config cfg;
    fl_http_client_config_init(&cfg);
    cfg.max_conns = (unsigned)conns;
    cfg.max_idle = (unsigned)conns;
    if (samples == NULL || fl_http_client_new(loop, &cfg, &client) < 0) {
        fprintf(stderr, "bench_invoke: out of memory\n");
        return 1;
    }
    struct slot *slots = calloc((size_t)conns, sizeof(*slots));
    if (count < 0) {
        /* a short warm-up opens the connections */
        deadline_ns = fl_clock_mono_ns() + 300000000ULL;
        for (int i = 0; i < conns; i++)
            send_one(&slots[i]);
        while (in_flight > 0)
            uv_run(loop, UV_RUN_ONCE);
        done_count = errors = 0;
        nsamples = 0;
    }
    to_send = count;
    uint64_t start = fl_clock_mono_ns();
    deadline_ns = start + (uint64_t)(seconds * 1e9);
    for (int i = 0; i < conns && to_send != 0; i++)
        send_one(&slots[i]);
    while (in_flight > 0)
        uv_run(loop, UV_RUN_ONCE);
    double elapsed = (double)(fl_clock_mono_ns() - start) / 1e9;
    qsort(samples, nsamples, sizeof(double), cmp);
    printf("{\"rps\": %.0f, \"p50_us\": %.0f, \"p99_us\": %.0f, \"requests\": %ld, "
           "\"errors\": %ld, \"seconds\": %.3f}\n",
           (double)done_count / elapsed, pct(0.50), pct(0.99), done_count, errors, elapsed);
    fl_http_client_close(client, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    free(slots);
    free(samples);
    return 0;
}
