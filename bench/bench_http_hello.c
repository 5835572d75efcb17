/*
 * A hello-world server on src/http, the subject of bench/http.sh:
 *
 *   bench_http_hello ADDR     e.g. 127.0.0.1:8081
 *
 * Answers every request with 200 "Hello, World!\n" as text/plain, the same
 * bytes nginx is configured to return. Stops on SIGTERM or SIGINT.
 */
#include "http/serve.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static const char hello[] = "Hello, World!\n";

static void handler(struct fl_http_request *req, void *data)
{
    static const struct fl_http_header ct = {"Content-Type", 12, "text/plain", 10};
    fl_http_respond(req, 200, &ct, 1, hello, sizeof(hello) - 1);
}

int main(int argc, char **argv)
{
    struct fl_http_server_config cfg;
    if (argc != 2) {
        fprintf(stderr, "usage: bench_http_hello ADDR\n");
        return 2;
    }
    fl_http_server_config_init(&cfg);
    cfg.max_connections = 10000;
    return fl_http_serve("bench_http_hello", argv[1], &cfg, handler, NULL, NULL);
}
