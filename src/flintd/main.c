/*
 * flintd: the Flint daemon.
 *
 *   flintd [--data DIR] [--api ADDR] [--router ADDR] [--log-level LEVEL] [--log-file PATH]
 *
 * Each flag has an environment variable (FLINT_DATA, FLINT_API,
 * FLINT_ROUTER, FLINT_LOG_LEVEL, FLINT_LOG_FILE); flags win. One process,
 * one libuv loop for all networking. SIGTERM and SIGINT stop accepting,
 * let requests in flight finish (up to --drain), and exit 0.
 */
#include "api/api.h"
#include "api/token.h"
#include "base/error.h"
#include "base/log.h"
#include "base/str.h"
#include "exec/sandbox.h"
#include "http/server.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define FLINT_VERSION "0.1.0"

struct flintd_config {
    const char *data_dir;
    const char *api_addr;
    const char *router_addr;
    const char *log_file;
    int64_t drain_ms;
};

struct flintd {
    uv_loop_t loop;
    struct flintd_config cfg;
    char token[FL_TOKEN_HEX + 1];
    struct fl_store *store;
    struct fl_api *control;
    struct fl_http_server *api;
    struct fl_http_server *router;
    char api_bound[300];
    char router_bound[300];
    uv_signal_t sigterm, sigint;
    int servers_open;
    bool stopping;
};

static void usage(FILE *to)
{
    fprintf(to,
            "usage: flintd [--data DIR] [--api ADDR] [--router ADDR] [--log-level LEVEL]\n"
            "              [--log-file PATH] [--drain DURATION]\n"
            "\n"
            "  --data DIR        data directory (FLINT_DATA; default ./.flint-data)\n"
            "  --api ADDR        control API listener (FLINT_API; default 127.0.0.1:7070)\n"
            "  --router ADDR     public router listener (FLINT_ROUTER; default 127.0.0.1:8080)\n"
            "  --log-level L     debug, info, warn or error (FLINT_LOG_LEVEL; default info)\n"
            "  --log-file PATH   log to PATH instead of stderr (FLINT_LOG_FILE)\n"
            "  --drain DURATION  how long SIGTERM waits for requests in flight (default 10s)\n"
            "\n"
            "An ADDR is HOST:PORT, [V6]:PORT or unix:PATH.\n");
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : fallback;
}

static int parse_args(int argc, char **argv, struct flintd_config *cfg)
{
    static const struct option options[] = {
        {"data", required_argument, NULL, 'd'},
        {"api", required_argument, NULL, 'a'},
        {"router", required_argument, NULL, 'r'},
        {"log-level", required_argument, NULL, 'l'},
        {"log-file", required_argument, NULL, 'f'},
        {"drain", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *level = env_or("FLINT_LOG_LEVEL", NULL);
    const char *drain = "10s";

    cfg->data_dir = env_or("FLINT_DATA", ".flint-data");
    cfg->api_addr = env_or("FLINT_API", "127.0.0.1:7070");
    cfg->router_addr = env_or("FLINT_ROUTER", "127.0.0.1:8080");
    cfg->log_file = env_or("FLINT_LOG_FILE", NULL);
    for (;;) {
        int c = getopt_long(argc, argv, "", options, NULL);
        if (c == -1)
            break;
        switch (c) {
        case 'd':
            cfg->data_dir = optarg;
            break;
        case 'a':
            cfg->api_addr = optarg;
            break;
        case 'r':
            cfg->router_addr = optarg;
            break;
        case 'l':
            level = optarg;
            break;
        case 'f':
            cfg->log_file = optarg;
            break;
        case 'D':
            drain = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("flintd %s\n", FLINT_VERSION);
            exit(0);
        default:
            usage(stderr);
            return FL_EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "flintd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return FL_EINVAL;
    }
    if (level != NULL) {
        enum fl_log_level l;
        if (fl_log_parse_level(level, &l) < 0) {
            fprintf(stderr, "flintd: unknown log level '%s': use debug, info, warn or error\n",
                    level);
            return FL_EINVAL;
        }
        fl_log_set_level(l);
    }
    if (fl_parse_duration_ms(drain, &cfg->drain_ms) < 0) {
        fprintf(stderr, "flintd: --drain takes a duration like 10s or 500ms, not '%s'\n", drain);
        return FL_EINVAL;
    }
    return 0;
}

/* ---- the router listener ---- */

static void router_handler(struct fl_http_request *req, void *data)
{
    fl_http_respond_error(req, 404, "no_route", "no route for %s %.200s", req->method, req->path);
}

/* ---- life cycle ---- */

static void store_closed(void *data)
{
    struct flintd *d = data;
    d->store = NULL;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
}

/* Listeners first (requests in flight finish), then the store. */
static void server_closed(void *data)
{
    struct flintd *d = data;
    d->servers_open--;
    if (d->servers_open > 0)
        return;
    if (d->store != NULL)
        fl_store_close(d->store, store_closed, d);
    else
        store_closed(d);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    struct flintd *d = sig->data;
    if (d->stopping) {
        fl_log(FL_LOG_WARN, "flintd", "second signal: stopping now", "signal=%d", signum);
        exit(1);
    }
    d->stopping = true;
    fl_log(FL_LOG_INFO, "flintd", "stopping", "signal=%s drain_ms=%lld",
           signum == SIGTERM ? "SIGTERM" : "SIGINT", (long long)d->cfg.drain_ms);
    if (d->router != NULL)
        fl_http_server_close(d->router, (uint64_t)d->cfg.drain_ms, server_closed, d);
    if (d->api != NULL)
        fl_http_server_close(d->api, (uint64_t)d->cfg.drain_ms, server_closed, d);
}

static int prepare_data_dir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fl_log(FL_LOG_ERROR, "flintd", "cannot create the data directory", "dir=%s err=\"%s\"", dir,
               strerror(errno));
        return -errno;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fl_log(FL_LOG_ERROR, "flintd", "the data directory is not a directory", "dir=%s", dir);
        return FL_EINVAL;
    }
    if (access(dir, W_OK) != 0) {
        fl_log(FL_LOG_ERROR, "flintd", "the data directory is not writable", "dir=%s", dir);
        return FL_EACCES;
    }
    return 0;
}

static int start_listener(struct flintd *d, const char *what, const char *addr,
                          const struct fl_http_server_config *cfg, fl_http_handler handler,
                          void *data, struct fl_http_server **srv, char *bound, size_t boundsize)
{
    char err[512];
    int rc = fl_http_server_new(&d->loop, cfg, handler, data, srv);
    if (rc < 0)
        return rc;
    d->servers_open++;
    rc = fl_http_server_listen(*srv, addr, bound, boundsize, err, sizeof(err));
    if (rc < 0) {
        char q[600];
        fl_log(FL_LOG_ERROR, "flintd", "cannot start a listener", "listener=%s err=%s", what,
               fl_log_quote(q, sizeof(q), err));
        return rc;
    }
    fl_log(FL_LOG_INFO, "flintd", "listening", "listener=%s addr=%s", what, bound);
    return 0;
}

int main(int argc, char **argv)
{
    struct flintd d;
    int rc;

    memset(&d, 0, sizeof(d));
    signal(SIGPIPE, SIG_IGN);
    if (parse_args(argc, argv, &d.cfg) < 0)
        return 2;
    if (d.cfg.log_file != NULL) {
        rc = fl_log_open(d.cfg.log_file);
        if (rc < 0) {
            fprintf(stderr, "flintd: cannot open log file '%s': %s\n", d.cfg.log_file,
                    fl_strerror(rc));
            return 1;
        }
    }
    if (prepare_data_dir(d.cfg.data_dir) < 0)
        return 1;
    char err[600];
    rc = fl_token_load(d.cfg.data_dir, d.token, err, sizeof(err));
    if (rc < 0) {
        char q[700];
        fl_log(FL_LOG_ERROR, "flintd", "cannot load the API token", "err=%s",
               fl_log_quote(q, sizeof(q), err));
        return 1;
    }
    uv_loop_init(&d.loop);
    rc = fl_store_open_sqlite(&d.loop, d.cfg.data_dir, NULL, &d.store, err, sizeof(err));
    if (rc < 0) {
        char q[700];
        fl_log(FL_LOG_ERROR, "flintd", "cannot open the store", "err=%s",
               fl_log_quote(q, sizeof(q), err));
        uv_loop_close(&d.loop);
        return 1;
    }
    fl_log(FL_LOG_INFO, "flintd", "store open", "store=\"%s\"", fl_store_describe(d.store));
    struct fl_sandbox_mode sandbox;
    fl_sandbox_probe(&sandbox, false);
    if (sandbox.bwrap)
        fl_log(FL_LOG_INFO, "flintd", "sandbox", "mode=%s", sandbox.description);
    else
        fl_log(FL_LOG_WARN, "flintd",
               "INSTANCES ARE NOT ISOLATED: bubblewrap is missing or unusable; only resource "
               "limits apply",
               "mode=\"%s\"", sandbox.description);
    struct fl_http_server_config api_cfg;
    fl_http_server_config_init(&api_cfg);
    api_cfg.max_body_bytes = 64u << 20; /* code uploads */
    struct fl_api_config control = {.data_dir = d.cfg.data_dir,
                                    .token = d.token,
                                    .store = d.store,
                                    .version = FLINT_VERSION,
                                    .api_addr = d.cfg.api_addr,
                                    .router_addr = d.cfg.router_addr,
                                    .max_code_bytes = api_cfg.max_body_bytes,
                                    .sandbox = sandbox.description};
    rc = fl_api_new(&d.loop, &control, &d.control);
    if (rc < 0)
        fl_log(FL_LOG_ERROR, "flintd", "cannot start the API", "err=\"%s\"", fl_strerror(rc));
    if (rc == 0)
        rc = start_listener(&d, "api", d.cfg.api_addr, &api_cfg, fl_api_handle, d.control, &d.api,
                            d.api_bound, sizeof(d.api_bound));
    if (rc == 0)
        rc = start_listener(&d, "router", d.cfg.router_addr, NULL, router_handler, &d, &d.router,
                            d.router_bound, sizeof(d.router_bound));
    uv_signal_init(&d.loop, &d.sigterm);
    uv_signal_init(&d.loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    if (rc < 0) {
        /* stop what did start, then exit non-zero */
        on_signal(&d.sigterm, SIGTERM);
        if (d.servers_open == 0)
            fl_store_close(d.store, store_closed, &d);
        uv_run(&d.loop, UV_RUN_DEFAULT);
        fl_api_free(d.control);
        uv_loop_close(&d.loop);
        return 1;
    }
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    fl_log(FL_LOG_INFO, "flintd", "ready", "version=%s data=%s api=%s router=%s", FLINT_VERSION,
           d.cfg.data_dir, d.api_bound, d.router_bound);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    fl_api_free(d.control);
    rc = uv_loop_close(&d.loop);
    fl_log(FL_LOG_INFO, "flintd", "stopped", NULL);
    return rc == 0 ? 0 : 1;
}
