/*
 * libFuzzer target: arbitrary bytes from a client into the HTTP server.
 *
 * Each input is written to one end of a socketpair whose other end the
 * server adopts as a connection; the client then shuts its side down and
 * the loop runs until the server has closed the connection. The handler
 * answers every request at once, echoing the body, or streams for
 * /stream, so that parsing, pipelining, limits, error answers and the
 * close paths all run. Run it with `make fuzz`.
 */
#include "base/str.h"
#include "feed.h"
#include "http/server.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uv_loop_t loop;
static struct fl_http_server *srv;

static void handler(struct fl_http_request *req, void *data)
{
    if (strcmp(req->path, "/stream") == 0) {
        fl_http_stream_begin(req, 200, NULL, 0);
        fl_http_stream_write(req, req->body, req->body_len);
        fl_http_stream_end(req);
        return;
    }
    size_t len = 0;
    const char *x = fl_http_request_header(req, "x-echo", &len);
    if (x != NULL && fl_str_has_ctl(x, len))
        abort(); /* a header value the server should have refused */
    struct fl_http_header h = {"X-Echo", 6, x ? x : "", len};
    fl_http_respond(req, 200, &h, 1, req->body, req->body_len);
}

/* Refuse, before the body, a request that asks for it: the headers hook's
 * path, with its early answer and close. */
static int refuse_some(const struct fl_http_request *req, void *data, const char **code,
                       const char **message)
{
    if (fl_http_request_header(req, "x-refuse", NULL) == NULL)
        return 0;
    *code = "refused";
    *message = "refused by the headers hook";
    return 403;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fl_http_budget *budget;
    if (srv == NULL) {
        struct fl_http_server_config cfg;
        fl_http_server_config_init(&cfg);
        cfg.max_header_bytes = 2048;
        cfg.max_headers = 16;
        cfg.max_body_bytes = 4096;
        cfg.max_pipeline = 4;
        cfg.on_headers = refuse_some;
        /* small enough that pipelined bodies and answers reach it */
        if (fl_http_budget_new(16 * 1024, &budget) < 0)
            abort();
        cfg.budget = budget;
        uv_loop_init(&loop);
        if (fl_http_server_new(&loop, &cfg, handler, NULL, &srv) < 0)
            abort();
    }
    fuzz_feed_server(&loop, srv, data, size);
    return 0;
}
