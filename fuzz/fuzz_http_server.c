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
#include "http/server.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (srv == NULL) {
        struct fl_http_server_config cfg;
        fl_http_server_config_init(&cfg);
        cfg.max_header_bytes = 2048;
        cfg.max_headers = 16;
        cfg.max_body_bytes = 4096;
        cfg.max_pipeline = 4;
        uv_loop_init(&loop);
        if (fl_http_server_new(&loop, &cfg, handler, NULL, &srv) < 0)
            abort();
    }
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        abort();
    int big = 1 << 20;
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    if (fl_http_server_adopt(srv, fds[1]) < 0)
        abort();
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fds[0], data + off, size - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(fds[0], SHUT_WR);
    char sink[65536];
    while (fl_http_server_connections(srv) > 0) {
        uv_run(&loop, UV_RUN_ONCE);
        while (read(fds[0], sink, sizeof(sink)) > 0) {
        }
    }
    close(fds[0]);
    return 0;
}
