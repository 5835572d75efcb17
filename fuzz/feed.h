/*
 * For the fuzz targets that play a client of src/http's server: write one
 * input to a connection the server adopts, half-close it, and run the loop
 * until the server has answered what it could and closed the connection.
 */
#ifndef FLINT_FUZZ_FEED_H
#define FLINT_FUZZ_FEED_H

#include "http/server.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static inline void fuzz_feed_server(uv_loop_t *loop, struct fl_http_server *srv,
                                    const uint8_t *data, size_t size)
{
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
        uv_run(loop, UV_RUN_ONCE);
        while (read(fds[0], sink, sizeof(sink)) > 0) {
        }
    }
    close(fds[0]);
}

#endif
