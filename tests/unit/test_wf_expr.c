/*
 * Unit tests for flint-expr (src/wf/exprd, the protocol in wf/expr.h): the
 * helpers with Fission Workflows' semantics, errors, and what a client
 * relies on to keep untrusted JavaScript bounded: a runaway script is
 * killed at the client's deadline and a new evaluator answers the next
 * batch; a memory bomb fails inside the evaluator's bounded heap, or at
 * the process's memory limit, and never grows past it.
 *
 * The client here is a blocking one of the test's own (fork, pipes, poll
 * with a deadline, SIGKILL): it speaks the protocol as flintd's will.
 */
#include "runner.h"

#include "base/buf.h"
#include "wf/expr.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct evaluator {
    pid_t pid;
    int to;   /* its stdin */
    int from; /* its stdout */
};

static void evaluator_path(char *out, size_t size)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    ASSERT(n > 0);
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    ASSERT(slash != NULL);
    *slash = '\0';
    snprintf(out, size, "%s/../bin/flint-expr", exe);
}

/* Start flint-expr with an address-space limit (bytes; 0: none) and its
 * arguments (NULL-terminated, at most 8). */
static void start_with(struct evaluator *ev, uint64_t as_limit, const char *const *args)
{
    char path[4200];
    evaluator_path(path, sizeof(path));
    int in[2], out[2];
    ASSERT(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        if (as_limit > 0) {
            struct rlimit rl = {as_limit, as_limit};
            setrlimit(RLIMIT_AS, &rl);
        }
        const char *argv[10] = {"flint-expr"};
        for (int i = 0; i < 8 && args[i] != NULL; i++)
            argv[i + 1] = args[i];
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    ev->pid = pid;
    ev->to = in[1];
    ev->from = out[0];
}

/* Start flint-expr with an address-space limit and, unless NULL, --heap. */
static void start(struct evaluator *ev, uint64_t as_limit, const char *heap)
{
    const char *args[] = {heap != NULL ? "--heap" : NULL, heap, NULL};
    start_with(ev, as_limit, args);
}

static void stop(struct evaluator *ev)
{
    if (ev->pid > 0) {
        kill(ev->pid, SIGKILL);
        waitpid(ev->pid, NULL, 0);
    }
    close(ev->to);
    close(ev->from);
    ev->pid = -1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Read n bytes before until (monotonic ms): 0, or FL-style -ETIMEDOUT /
 * -EPIPE. */
static int read_until(int fd, void *buf, size_t n, double until)
{
    size_t got = 0;
    while (got < n) {
        int left = (int)(until - now_ms());
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return -ETIMEDOUT;
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -EPIPE;
        got += (size_t)k;
    }
    return 0;
}

/* One round trip with a deadline: the answer (the caller frees it), or
 * NULL with *err -ETIMEDOUT (the evaluator was killed, as a client does)
 * or -EPIPE (it died). */
static json_t *ask(struct evaluator *ev, json_t *req, int deadline_ms, int *err)
{
    char *text = json_dumps(req, JSON_COMPACT);
    size_t n = strlen(text);
    unsigned char len[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 8), (unsigned char)n};
    *err = 0;
    signal(SIGPIPE, SIG_IGN);
    if (write(ev->to, len, 4) != 4 || write(ev->to, text, n) != (ssize_t)n)
        *err = -EPIPE;
    free(text);
    double until = now_ms() + deadline_ms;
    unsigned char got[4];
    if (*err == 0)
        *err = read_until(ev->from, got, 4, until);
    json_t *answer = NULL;
    if (*err == 0) {
        uint32_t m = (uint32_t)got[0] << 24 | (uint32_t)got[1] << 16 | (uint32_t)got[2] << 8 |
                     (uint32_t)got[3];
        char *body = malloc(m + 1);
        *err = read_until(ev->from, body, m, until);
        if (*err == 0)
            answer = json_loadb(body, m, 0, NULL);
        free(body);
    }
    if (*err == -ETIMEDOUT) {
        kill(ev->pid, SIGKILL); /* the client's answer to a missed deadline */
        waitpid(ev->pid, NULL, 0);
        ev->pid = -1;
    }
    return answer;
}

static json_t *scope(void)
{
    return json_pack("{s:{s:s}, s:{s:{s:s, s:{s:s}}}, s:{s:{s:{s:i, s:i}, s:{s:[i,i]}, "
                     "s:{s:s}}, s:{s:{}, s:s}}}",
                     "Workflow", "Name", "fortunewhale", "Invocation", "Inputs", "default",
                     "Whale you ship me?", "headers", "Prefix", "The fortune says: ", "Tasks", "A",
                     "Inputs", "default", 3, "_prev", 2, "Output", "x", 1, 2, "OutputHeaders",
                     "Date", "today", "B", "Inputs", "Output", "a fortune");
}

/* Ask for exprs (NULL-terminated) as task A; each result's JSON text. */
static void expect_results(struct evaluator *ev, const char *const *exprs, const char *const *want)
{
    json_t *list = json_array();
    for (size_t i = 0; exprs[i] != NULL; i++)
        json_array_append_new(list, json_string(exprs[i]));
    json_t *req = json_pack("{s:s, s:o, s:o}", "task", "A", "scope", scope(), "exprs", list);
    int err;
    json_t *answer = ask(ev, req, 30000, &err);
    ASSERT_EQ(err, 0);
    json_t *results = json_object_get(answer, "results");
    ASSERT_EQ(json_array_size(results), json_array_size(list));
    for (size_t i = 0; exprs[i] != NULL; i++) {
        char *got = json_dumps(json_array_get(results, i), JSON_COMPACT | JSON_ENCODE_ANY);
        if (strstr(got, want[i]) == NULL)
            fl_test_fail(__FILE__, __LINE__, "%s: got %s, expected %s", exprs[i], got, want[i]);
        free(got);
    }
    json_decref(answer);
    json_decref(req);
}

TEST(expr_helpers_have_fission_workflows_semantics)
{
    struct evaluator ev;
    start(&ev, 0, NULL);
    static const char *const exprs[] = {"output('A').x[1]",
                                        "output('B')",
                                        "output()",
                                        "param()",
                                        "param('headers').Prefix + output('B')",
                                        "input()",
                                        "input('A', '_prev')",
                                        "input('B')",
                                        "outputHeaders('A', 'Date')",
                                        "outputHeaders('A')",
                                        "task().Inputs._prev * 10",
                                        "task('B').Output",
                                        "$.Workflow.Name",
                                        "$.Invocation.Inputs.default.length < 20",
                                        "taskId",
                                        "uid().length",
                                        "uid() != uid()",
                                        "output('nosuch')",
                                        "input('nosuch', 'x')",
                                        "undefined",
                                        "var a = 3; a * 2",
                                        NULL};
    static const char *const want[] = {"{\"value\":2}",
                                       "{\"value\":\"a fortune\"}",
                                       "{\"value\":{\"x\":[1,2]}}",
                                       "{\"value\":\"Whale you ship me?\"}",
                                       "{\"value\":\"The fortune says: a fortune\"}",
                                       "{\"value\":3}",
                                       "{\"value\":2}",
                                       "{\"value\":null}",
                                       "{\"value\":\"today\"}",
                                       "{\"value\":{\"Date\":\"today\"}}",
                                       "{\"value\":20}",
                                       "{\"value\":\"a fortune\"}",
                                       "{\"value\":\"fortunewhale\"}",
                                       "{\"value\":true}",
                                       "{\"value\":\"A\"}",
                                       "{\"value\":32}",
                                       "{\"value\":true}",
                                       "{\"value\":null}",
                                       "{\"value\":null}",
                                       "{\"value\":null}",
                                       "{\"value\":6}"};
    expect_results(&ev, exprs, want);
    stop(&ev);
}

TEST(expr_errors_are_the_engines_messages)
{
    struct evaluator ev;
    start(&ev, 0, NULL);
    static const char *const exprs[] = {"x.y", "1 +", "throw new Error('no luck')", "output('A'",
                                        NULL};
    static const char *const want[] = {"{\"error\":\"ReferenceError: 'x' is not defined\"}",
                                       "{\"error\":\"SyntaxError: unexpected token in "
                                       "expression: (end-of-file)\"}",
                                       "{\"error\":\"Error: no luck\"}", "SyntaxError"};
    expect_results(&ev, exprs, want);
    /* compile only: a loop is never run */
    json_t *req =
        json_pack("{s:s, s:[s, s], s:b}", "task", "A", "exprs", "while(true){}", "1 +", "check", 1);
    int err;
    json_t *answer = ask(&ev, req, 10000, &err);
    ASSERT_EQ(err, 0);
    json_t *results = json_object_get(answer, "results");
    ASSERT(json_object_get(json_array_get(results, 0), "value") != NULL);
    ASSERT(json_object_get(json_array_get(results, 1), "error") != NULL);
    json_decref(answer);
    json_decref(req);
    stop(&ev);
}

TEST(expr_batches_share_nothing)
{
    struct evaluator ev;
    start(&ev, 0, NULL);
    static const char *const first[] = {"leaked = 42; Object.prototype.evil = 1; leaked", NULL};
    static const char *const first_want[] = {"{\"value\":42}"};
    expect_results(&ev, first, first_want);
    static const char *const second[] = {"typeof leaked", "({}).evil", NULL};
    static const char *const second_want[] = {"{\"value\":\"undefined\"}", "{\"value\":null}"};
    expect_results(&ev, second, second_want);
    stop(&ev);
}

TEST(expr_a_runaway_script_is_killed_at_the_deadline_and_replaced)
{
    struct evaluator ev;
    start(&ev, 0, NULL);
    json_t *req = json_pack("{s:s, s:[s]}", "task", "A", "exprs", " while(true){} ");
    int err;
    json_t *answer = ask(&ev, req, FL_WF_EXPR_DEADLINE_MS, &err);
    ASSERT(answer == NULL);
    ASSERT_EQ(err, -ETIMEDOUT);
    ASSERT_EQ(ev.pid, -1); /* killed and reaped */
    json_decref(req);
    stop(&ev);
    /* a new one answers the next batch */
    start(&ev, 0, NULL);
    static const char *const exprs[] = {"output('A').x[0] + 1", NULL};
    static const char *const want[] = {"{\"value\":2}"};
    expect_results(&ev, exprs, want);
    stop(&ev);
}

TEST(expr_a_batch_that_uses_up_its_cpu_time_ends_the_evaluator)
{
    struct evaluator ev;
    const char *const args[] = {"--cpu-ms", "200", NULL};
    start_with(&ev, 0, args);
    /* batches within the bound are answered, one after another */
    static const char *const exprs[] = {"output('A').x[0] + 1", NULL};
    static const char *const want[] = {"{\"value\":2}"};
    expect_results(&ev, exprs, want);
    expect_results(&ev, exprs, want);
    /* a loop ends itself, however long the machine takes to give it 200 ms */
    json_t *req = json_pack("{s:s, s:[s]}", "task", "A", "exprs", "while(true){}");
    char *text = json_dumps(req, JSON_COMPACT);
    size_t n = strlen(text);
    unsigned char len[4] = {0, 0, (unsigned char)(n >> 8), (unsigned char)n};
    ASSERT(n < 65536);
    ASSERT_EQ(write(ev.to, len, 4), 4);
    ASSERT_EQ(write(ev.to, text, n), (ssize_t)n);
    free(text);
    json_decref(req);
    int status = 0;
    ASSERT_EQ(waitpid(ev.pid, &status, 0), ev.pid);
    ASSERT(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), FL_WF_EXPR_EXIT_CPU);
    ev.pid = -1;
    stop(&ev);
}

TEST(expr_a_memory_bomb_is_bounded)
{
    /* inside mujs's bounded heap: an error, and the evaluator goes on */
    struct evaluator ev;
    start(&ev, 0, "16MiB");
    static const char *const exprs[] = {
        "var a = [], s = 'x'; while (true) { s = s + s; a.push(s); } 0", "output('A').x[1]", NULL};
    static const char *const want[] = {"out of memory", "{\"value\":2}"};
    expect_results(&ev, exprs, want);
    stop(&ev);

#ifndef __SANITIZE_ADDRESS__
    /* a heap larger than the process may have: the rlimit stops it; the
     * evaluator dies (or answers an error), never grows past the limit.
     * (Not under AddressSanitizer, whose shadow memory needs an address
     * space no such limit allows.) */
    start(&ev, 96u << 20, "1GiB");
    json_t *req = json_pack("{s:s, s:[s]}", "task", "A", "exprs",
                            "var a = [], s = 'x'; while (true) { s = s + s; a.push(s); } 0");
    int err;
    json_t *answer = ask(&ev, req, 30000, &err);
    if (answer != NULL) {
        json_t *r = json_array_get(json_object_get(answer, "results"), 0);
        ASSERT(json_object_get(r, "error") != NULL);
    } else {
        ASSERT_EQ(err, -EPIPE);
    }
    json_decref(answer);
    json_decref(req);
    stop(&ev);
#endif
}

TEST(expr_a_bad_frame_ends_the_evaluator)
{
    struct evaluator ev;
    start(&ev, 0, NULL);
    unsigned char huge[4] = {0xff, 0xff, 0xff, 0xff};
    ASSERT_EQ(write(ev.to, huge, 4), 4);
    int status = 0;
    ASSERT_EQ(waitpid(ev.pid, &status, 0), ev.pid);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    ev.pid = -1;
    stop(&ev);

    start(&ev, 0, NULL);
    const char junk[] = "\x00\x00\x00\x03[1]";
    ASSERT_EQ(write(ev.to, junk, 7), 7);
    ASSERT_EQ(waitpid(ev.pid, &status, 0), ev.pid);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    ev.pid = -1;
    stop(&ev);
}
