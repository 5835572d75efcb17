/*
 * Unit tests for the expression client (src/wf/exprc.h) on a real loop,
 * with the real flint-expr in the real sandbox (bubblewrap as an
 * unprivileged uid, and the rlimits-only mode): batches answered, a
 * runaway script killed at its deadline while the pool goes on, batches
 * queued beyond the evaluators all answered (in order with one), an
 * evaluator killed from outside replaced, a full queue refused, a program
 * that cannot start failing what waits, and freeing the pool calling back
 * what was pending.
 */
#include "runner.h"

#include "base/error.h"
#include "exec/sandbox.h"
#include "wf/expr.h"
#include "wf/exprc.h"

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <uv.h>

static uv_loop_t loop;
static struct fl_sandbox_mode mode;
static char program[8192];

#define MAX_CALLS 64

/* What callbacks received, in the order they came. */
struct calls {
    int n;
    int status[MAX_CALLS];
    int tag[MAX_CALLS];
    char text[MAX_CALLS][512]; /* the answer's JSON, or the error */
};

static struct calls calls;

struct tagged {
    int tag;
};

static struct tagged tags[MAX_CALLS];

static void on_done(void *data, int status, json_t *answer, const char *error)
{
    struct tagged *t = data;
    ASSERT(calls.n < MAX_CALLS);
    int i = calls.n++;
    calls.status[i] = status;
    calls.tag[i] = t->tag;
    if (status == 0) {
        ASSERT(answer != NULL);
        char *s = json_dumps(answer, JSON_COMPACT);
        snprintf(calls.text[i], sizeof(calls.text[i]), "%s", s);
        free(s);
    } else {
        ASSERT(answer == NULL && error != NULL);
        snprintf(calls.text[i], sizeof(calls.text[i]), "%s", error);
    }
}

static void setup(bool rlimits_only)
{
    ASSERT_OK(uv_loop_init(&loop));
    fl_sandbox_probe(&mode, rlimits_only);
    if (!rlimits_only && !mode.bwrap)
        fl_test_fail(__FILE__, __LINE__, "bubblewrap is not usable here: %s", mode.description);
    ASSERT_OK(fl_wf_exprc_find_program(program, sizeof(program)));
    memset(&calls, 0, sizeof(calls));
    for (int i = 0; i < MAX_CALLS; i++)
        tags[i].tag = i;
}

static struct fl_wf_exprc *pool_new(unsigned procs, unsigned deadline_ms, unsigned queue_max)
{
    struct fl_wf_exprc_config cfg = {.program = program,
                                     .deadline_ms = deadline_ms,
                                     .procs = procs,
                                     .queue_max = queue_max,
                                     .mode = &mode};
    struct fl_wf_exprc *c = NULL;
    ASSERT_OK(fl_wf_exprc_new(&loop, &cfg, &c));
    return c;
}

/* Free the pool and run the loop until nothing is left of it: every
 * process gone, every handle closed. */
static void pool_free(struct fl_wf_exprc *c)
{
    fl_wf_exprc_free(c);
    WAIT_UNTIL(uv_run(&loop, UV_RUN_NOWAIT) == 0, 30, );
    ASSERT_OK(uv_loop_close(&loop));
}

/* A batch of one expression (task A, a small scope). */
static json_t *request(const char *expr)
{
    return json_pack("{s:s, s:{s:{s:{s:i}}}, s:[s]}", "task", "A", "scope", "Tasks", "A", "Output",
                     41, "exprs", expr);
}

static void eval(struct fl_wf_exprc *c, const char *expr, int tag)
{
    json_t *req = request(expr);
    ASSERT_OK(fl_wf_exprc_eval(c, req, on_done, &tags[tag]));
    json_decref(req);
}

static void wait_calls(int n)
{
    WAIT_UNTIL(calls.n >= n, 60, uv_run(&loop, UV_RUN_NOWAIT));
}

TEST(exprc_answers_a_batch_in_the_sandbox)
{
    setup(false);
    struct fl_wf_exprc *c = pool_new(1, 10000, 0);
    json_t *req = json_pack("{s:s, s:{s:{s:{s:i}}}, s:[s,s,s]}", "task", "A", "scope", "Tasks", "A",
                            "Output", 41, "exprs", "output() + 1", "nope(", "'x'.length");
    ASSERT_OK(fl_wf_exprc_eval(c, req, on_done, &tags[0]));
    json_decref(req);
    ASSERT_EQ(calls.n, 0); /* never inside the eval */
    wait_calls(1);
    ASSERT_EQ(calls.status[0], 0);
    if (strstr(calls.text[0], "{\"results\":[{\"value\":42},{\"error\":\"SyntaxError") == NULL ||
        strstr(calls.text[0], "{\"value\":1}]}") == NULL)
        fl_test_fail(__FILE__, __LINE__, "answer: %s", calls.text[0]);
    /* it runs as a sandbox's own host uid, not as root */
    int pid = fl_wf_exprc_pid(c, 0);
    ASSERT(pid > 0);
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    ASSERT(f != NULL);
    unsigned long uid = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "Uid: %lu", &uid) == 1)
            break;
    fclose(f);
    ASSERT(uid >= mode.uid_base && uid < (unsigned long)mode.uid_base + mode.uid_count);
    pool_free(c);
}

TEST(exprc_works_without_bubblewrap)
{
    setup(true);
    struct fl_wf_exprc *c = pool_new(1, 10000, 0);
    eval(c, "output('A') * 2", 0);
    wait_calls(1);
    ASSERT_EQ(calls.status[0], 0);
    ASSERT_STR_EQ(calls.text[0], "{\"results\":[{\"value\":82}]}");
    pool_free(c);
}

TEST_TIMEOUT(exprc_kills_a_runaway_at_its_deadline_and_goes_on, 120)
{
    setup(false);
    /* a deadline long enough for a small batch on a busy machine */
    struct fl_wf_exprc *c = pool_new(1, 1000, 0);
    eval(c, "while (true) {}", 0);
    eval(c, "1 + 1", 1); /* waits behind it, then goes to the replacement */
    wait_calls(2);
    ASSERT_EQ(calls.tag[0], 0);
    ASSERT_EQ(calls.status[0], FL_ETIMEDOUT);
    ASSERT_STR_EQ(calls.text[0], "expression took longer than 1000 ms");
    ASSERT_EQ(calls.tag[1], 1);
    ASSERT_EQ(calls.status[1], 0);
    ASSERT_STR_EQ(calls.text[1], "{\"results\":[{\"value\":2}]}");
    pool_free(c);
}

TEST_TIMEOUT(exprc_answers_batches_queued_beyond_its_evaluators, 120)
{
    setup(false);
    char expr[64];
    /* one evaluator: callbacks in the order of the evals */
    struct fl_wf_exprc *c = pool_new(1, 10000, 0);
    for (int i = 0; i < 20; i++) {
        snprintf(expr, sizeof(expr), "%d * 3", i);
        eval(c, expr, i);
    }
    wait_calls(20);
    for (int i = 0; i < 20; i++) {
        char want[64];
        snprintf(want, sizeof(want), "{\"results\":[{\"value\":%d}]}", i * 3);
        ASSERT_EQ(calls.tag[i], i);
        ASSERT_EQ(calls.status[i], 0);
        ASSERT_STR_EQ(calls.text[i], want);
    }
    pool_free(c);

    /* three: each batch gets its own answer, whatever the order */
    ASSERT_OK(uv_loop_init(&loop));
    memset(&calls, 0, sizeof(calls));
    c = pool_new(3, 10000, 0);
    for (int i = 0; i < 40; i++) {
        snprintf(expr, sizeof(expr), "%d * 3", i);
        eval(c, expr, i);
    }
    wait_calls(40);
    bool seen[40] = {false};
    for (int i = 0; i < 40; i++) {
        int tag = calls.tag[i];
        char want[64];
        snprintf(want, sizeof(want), "{\"results\":[{\"value\":%d}]}", tag * 3);
        ASSERT_EQ(calls.status[i], 0);
        ASSERT_STR_EQ(calls.text[i], want);
        ASSERT(!seen[tag]);
        seen[tag] = true;
    }
    pool_free(c);
}

TEST(exprc_refuses_a_batch_over_its_queue)
{
    setup(false);
    struct fl_wf_exprc *c = pool_new(1, 10000, 2);
    /* the evaluator is still starting: all three wait */
    eval(c, "1", 0);
    eval(c, "2", 1);
    json_t *req = request("3");
    ASSERT_EQ(fl_wf_exprc_eval(c, req, on_done, &tags[2]), FL_EAGAIN);
    json_t *list = json_array();
    ASSERT_EQ(fl_wf_exprc_eval(c, list, on_done, &tags[2]), FL_EINVAL);
    json_decref(list);
    json_decref(req);
    wait_calls(2);
    ASSERT_EQ(calls.status[0], 0);
    ASSERT_EQ(calls.status[1], 0);
    pool_free(c);
    ASSERT_EQ(calls.n, 2);
}

TEST_TIMEOUT(exprc_replaces_an_evaluator_killed_from_outside, 120)
{
    setup(false);
    struct fl_wf_exprc *c = pool_new(1, 30000, 0);
    eval(c, "1", 0);
    wait_calls(1);
    int pid = fl_wf_exprc_pid(c, 0);
    ASSERT(pid > 0);
    /* idle: killed, replaced, and the next batch is answered */
    ASSERT_OK(kill(pid, SIGKILL));
    WAIT_UNTIL(fl_wf_exprc_pid(c, 0) > 0 && fl_wf_exprc_pid(c, 0) != pid, 60,
               uv_run(&loop, UV_RUN_NOWAIT));
    eval(c, "2", 1);
    wait_calls(2);
    ASSERT_EQ(calls.status[1], 0);
    ASSERT_STR_EQ(calls.text[1], "{\"results\":[{\"value\":2}]}");
    /* busy: its batch fails with the cause, the next is answered */
    pid = fl_wf_exprc_pid(c, 0);
    eval(c, "while (true) {}", 2);
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_OK(kill(pid, SIGKILL));
    eval(c, "3", 3);
    wait_calls(4);
    ASSERT_EQ(calls.tag[2], 2);
    ASSERT_EQ(calls.status[2], FL_EPIPE);
    if (strstr(calls.text[2], "the expression evaluator was killed") == NULL)
        fl_test_fail(__FILE__, __LINE__, "error: %s", calls.text[2]);
    ASSERT_EQ(calls.tag[3], 3);
    ASSERT_STR_EQ(calls.text[3], "{\"results\":[{\"value\":3}]}");
    pool_free(c);
}

TEST(exprc_free_calls_back_what_is_pending)
{
    setup(false);
    struct fl_wf_exprc *c = pool_new(1, 30000, 0);
    eval(c, "1", 0);
    wait_calls(1);
    eval(c, "while (true) {}", 1); /* running */
    eval(c, "2", 2);               /* waiting */
    eval(c, "3", 3);
    fl_wf_exprc_free(c);
    ASSERT_EQ(calls.n, 4);
    for (int i = 1; i < 4; i++) {
        ASSERT_EQ(calls.tag[i], i);
        ASSERT_EQ(calls.status[i], FL_ECANCELED);
    }
    WAIT_UNTIL(uv_run(&loop, UV_RUN_NOWAIT) == 0, 30, );
    ASSERT_OK(uv_loop_close(&loop));
    ASSERT_EQ(calls.n, 4);
}

TEST_TIMEOUT(exprc_fails_what_waits_when_no_evaluator_can_start, 60)
{
    setup(false);
    /* a program that exits at once: every start fails */
    snprintf(program, sizeof(program), "/usr/bin/false");
    struct fl_wf_exprc *c = pool_new(1, 1000, 0);
    eval(c, "1", 0);
    wait_calls(1);
    ASSERT_EQ(calls.status[0], FL_EIO);
    if (strstr(calls.text[0], "cannot start the expression evaluator: ") == NULL)
        fl_test_fail(__FILE__, __LINE__, "error: %s", calls.text[0]);
    pool_free(c);
    ASSERT_EQ(calls.n, 1);
}

TEST(exprc_fails_a_batch_refused_whole_and_goes_on)
{
    setup(false);
    struct fl_wf_exprc *c = pool_new(1, 10000, 0);
    json_t *many = json_array();
    for (int i = 0; i <= FL_WF_EXPR_MAX_EXPRS; i++)
        json_array_append_new(many, json_string("1"));
    json_t *req = json_pack("{s:s, s:{}, s:o}", "task", "A", "scope", "exprs", many);
    ASSERT_OK(fl_wf_exprc_eval(c, req, on_done, &tags[0]));
    json_decref(req);
    eval(c, "5", 1);
    wait_calls(2);
    ASSERT_EQ(calls.status[0], FL_EINVAL);
    if (strstr(calls.text[0], "at most 1024 expressions") == NULL)
        fl_test_fail(__FILE__, __LINE__, "error: %s", calls.text[0]);
    ASSERT_STR_EQ(calls.text[1], "{\"results\":[{\"value\":5}]}");
    pool_free(c);
}

TEST_TIMEOUT(exprc_replaces_an_evaluator_that_sends_a_bad_frame, 60)
{
    setup(false);
    /* a stand-in evaluator: answers the empty batch, then garbage */
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/bin", fl_test_tmpdir());
    ASSERT_OK(mkdir(dir, 0755));
    ASSERT_OK(chmod(fl_test_tmpdir(), 0755));
    snprintf(program, sizeof(program), "%s/garbage", dir);
    FILE *f = fopen(program, "w");
    ASSERT(f != NULL);
    fprintf(f, "#!/bin/sh\n"
               "head -c 29 <&3 >/dev/null\n"
               "printf '\\000\\000\\000\\016{\"results\":[]}' >&3\n"
               "head -c 4 <&3 >/dev/null\n"
               "printf '\\000\\000\\000\\003abc' >&3\n"
               "exec sleep 1000\n");
    fclose(f);
    ASSERT_OK(chmod(program, 0755));
    struct fl_wf_exprc *c = pool_new(1, 30000, 0);
    WAIT_UNTIL(fl_wf_exprc_pid(c, 0) > 0, 30, uv_run(&loop, UV_RUN_NOWAIT));
    int pid = fl_wf_exprc_pid(c, 0);
    eval(c, "1", 0);
    wait_calls(1);
    ASSERT_EQ(calls.status[0], FL_EPROTO);
    ASSERT_STR_EQ(calls.text[0], "the expression evaluator sent a bad frame");
    WAIT_UNTIL(fl_wf_exprc_pid(c, 0) > 0 && fl_wf_exprc_pid(c, 0) != pid, 30,
               uv_run(&loop, UV_RUN_NOWAIT));
    pool_free(c);
}
