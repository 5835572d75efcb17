/*
 * A hello-world server on src/http, the subject of bench/http.sh:
 *
 *   bench_http_hello ADDR     e.g. 127.0.0.1:8081
 *
 * Answers every request with 200 "Hello, World!\n" as text/plain, the same
 * bytes nginx is configured to return. Stops on SIGTERM or SIGINT.
 */
#include "http/server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static const char hello[] = "Hello, World!\n";

static void handler(struct fl_http_request *req, void *data)
{
    static const struct fl_http_header ct = {"Content-Type", 12, "text/plain", 10};
    fl_http_respond(req, 200, &ct, 1, hello, sizeof(hello) - 1);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    uv_stop(sig->loop);
}

int main(int argc, char **argv)
{
    uv_loop_t *loop = uv_default_loop();
    struct fl_http_server *srv;
    struct fl_http_server_config cfg;
    uv_signal_t term, intr;
    char bound[300], err[300];

    if (argc != 2) {
        fprintf(stderr, "usage: bench_http_hello ADDR\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    fl_http_server_config_init(&cfg);
    cfg.max_connections = 10000;
    if (fl_http_server_new(loop, &cfg, handler, NULL, &srv) < 0 ||
        fl_http_server_listen(srv, argv[1], bound, sizeof(bound), err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_http_hello: %s\n", err);
        return 1;
    }
    uv_signal_init(loop, &term);
    uv_signal_init(loop, &intr);
    uv_signal_start(&term, on_signal, SIGTERM);
    uv_signal_start(&intr, on_signal, SIGINT);
    printf("listening on %s\n", bound);
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
