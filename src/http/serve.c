#include "http/serve.h"

#include "base/error.h"
#include "base/str.h"

#include <signal.h>
#include <stdio.h>

static void (*stop_hook)(void);

int fl_http_listen_address(const char *flint_listen, char *out, size_t size)
{
    const char *addr;
    if (flint_listen != NULL &&
        (fl_str_has_prefix(flint_listen, "unix:") || fl_str_has_prefix(flint_listen, "fd:")))
        addr = flint_listen;
    else if (flint_listen != NULL && fl_str_has_prefix(flint_listen, "tcp:"))
        addr = flint_listen + 4;
    else
        return FL_EINVAL;
    return fl_strlcpy(out, addr, size) < size ? 0 : FL_EINVAL;
}

static void on_signal(uv_signal_t *sig, int signum)
{
    if (stop_hook != NULL)
        stop_hook();
    uv_stop(sig->loop);
}

int fl_http_serve(const char *program, const char *addr, const struct fl_http_server_config *cfg,
                  fl_http_handler handler, void *data, void (*on_stop)(void))
{
    uv_loop_t *loop = uv_default_loop();
    struct fl_http_server *srv;
    char err[512] = "out of memory";
    signal(SIGPIPE, SIG_IGN);
    if (fl_http_server_new(loop, cfg, handler, data, &srv) < 0 ||
        fl_http_server_listen(srv, addr, NULL, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", program, err);
        return 1;
    }
    stop_hook = on_stop;
    uv_signal_t term, intr;
    uv_signal_init(loop, &term);
    uv_signal_init(loop, &intr);
    uv_signal_start(&term, on_signal, SIGTERM);
    uv_signal_start(&intr, on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}

void fl_http_respond_healthz(struct fl_http_request *req, bool pipelining)
{
    static const struct fl_http_header headers[] = {
        {"Content-Type", 12, "application/json", 16},
        {"X-Flint-Pipelining", 18, "1", 1},
    };
    fl_http_respond(req, 200, headers, pipelining ? 2 : 1, "{\"status\":\"ok\"}", 15);
}
