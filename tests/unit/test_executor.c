/*
 * Unit tests for src/exec/executor: what it decides before any instance is
 * involved (the end-to-end suite drives the rest through a real flintd).
 */
#include "runner.h"

#include "base/error.h"
#include "exec/executor.h"

#include <limits.h>
#include <sys/stat.h>

struct answer {
    bool done;
    int status;
    char code[64];
};

static void on_answer(const struct fl_executor_result *res, void *data)
{
    struct answer *a = data;
    a->done = true;
    a->status = res->status;
    snprintf(a->code, sizeof(a->code), "%s", res->error_code ? res->error_code : "");
}

static bool closed;

static void on_closed(void *data)
{
    closed = true;
}

/* An executor on loop, in the test's directory, with nothing declared. */
static struct fl_executor *executor_new(uv_loop_t *loop)
{
    ASSERT_OK(uv_loop_init(loop));
    static struct fl_sandbox_mode mode;
    fl_sandbox_probe(&mode, true);
    char data[PATH_MAX];
    snprintf(data, sizeof(data), "%s/data", fl_test_tmpdir());
    struct fl_executor_config cfg;
    fl_executor_config_init(&cfg);
    cfg.data_dir = data;
    cfg.runtimes_dir = "runtimes";
    cfg.mode = &mode;
    ASSERT_OK(mkdir(data, 0700));
    struct fl_executor *ex;
    ASSERT_OK(fl_executor_new(loop, &cfg, &ex));
    return ex;
}

TEST(a_call_with_more_added_headers_than_the_budget_is_refused_clearly)
{
    uv_loop_t loop;
    struct fl_executor *ex = executor_new(&loop);
    /* 200 added headers: the budget toward an instance once underflowed
     * past 120 of them and let the caller's headers overrun its array */
    static struct fl_http_header extra[200];
    for (size_t i = 0; i < 200; i++)
        extra[i] = (struct fl_http_header){"X-Flint-Param-p", 15, "v", 1};
    struct fl_executor_request req = {
        .function = "f", .method = "GET", .target = "/", .extra = extra, .nextra = 200};
    struct answer a = {0};
    ASSERT_OK(fl_executor_invoke(ex, &req, on_answer, &a, NULL));
    ASSERT(!a.done); /* never from inside the call */
    while (!a.done)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_EQ(a.status, 500);
    ASSERT_STR_EQ(a.code, "too_many_headers");
    /* at the bound, the call goes on (here: to a function that is not there) */
    req.nextra = 64;
    struct answer b = {0};
    ASSERT_OK(fl_executor_invoke(ex, &req, on_answer, &b, NULL));
    while (!b.done)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_EQ(b.status, 404);
    fl_executor_close(ex, on_closed, NULL);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&loop));
}

TEST(the_capacity_of_an_unknown_function_is_not_found)
{
    uv_loop_t loop;
    struct fl_executor *ex = executor_new(&loop);
    struct fl_executor_capacity cap;
    ASSERT_EQ(fl_executor_capacity(ex, "nothing", &cap), FL_ENOENT);
    closed = false;
    fl_executor_close(ex, on_closed, NULL);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&loop));
}
