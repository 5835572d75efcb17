/*
 * libFuzzer target: arbitrary bytes from a client into the control API,
 * over the HTTP server, with a real SQLite store in a temporary directory.
 *
 * Each input is written to one end of a socketpair whose other end the
 * API's server adopts; the client then shuts its side down and the loop
 * runs until the server has closed the connection (store operations
 * complete on the store's threads and wake the loop). The token is fixed
 * ("Authorization: Bearer " followed by 64 'a'), so that seeds that carry
 * it reach every endpoint: resources, code uploads, status, logs, invoke.
 * Run it with `make fuzz`.
 */
#include "api/api.h"
#include "feed.h"
#include "http/server.h"
#include "store/store.h"

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uv_loop_t loop;
static struct fl_http_server *srv;
static char dir[64];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void remove_dir(void)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    uv_loop_init(&loop);
    snprintf(dir, sizeof(dir), "/tmp/flint-fuzz-api.XXXXXX");
    if (mkdtemp(dir) == NULL)
        abort();
    atexit(remove_dir);
    struct fl_store *store;
    char err[512];
    char uri[64];
    snprintf(uri, sizeof(uri), "sqlite:%s", dir);
    if (fl_store_open(&loop, uri, NULL, &store, err, sizeof(err)) < 0) {
        fprintf(stderr, "store: %s\n", err);
        abort();
    }
    static char token[65];
    memset(token, 'a', 64);
    struct fl_api_config acfg = {.data_dir = dir,
                                 .token = token,
                                 .store = store,
                                 .version = "fuzz",
                                 .max_code_bytes = 4096,
                                 .sandbox = "none"};
    struct fl_api *api;
    if (fl_api_new(&loop, &acfg, &api) < 0)
        abort();
    struct fl_http_server_config cfg;
    fl_http_server_config_init(&cfg);
    cfg.max_body_bytes = 8192;
    cfg.max_pipeline = 4;
    cfg.on_headers = fl_api_check_headers; /* as flintd: the token before the body */
    static struct fl_http_budget *budget;
    if (fl_http_budget_new(64 * 1024, &budget) < 0)
        abort();
    cfg.budget = budget;
    if (fl_http_server_new(&loop, &cfg, fl_api_handle, api, &srv) < 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (srv == NULL)
        setup();
    fuzz_feed_server(&loop, srv, data, size);
    return 0;
}
