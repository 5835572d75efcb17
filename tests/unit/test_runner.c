/*
 * Unit tests for the runner itself (tests/unit/runner.c): what it says of
 * a test that passes, fails, skips, or exits 77 by itself, with and
 * without CI set, and WAIT_UNTIL. Each case runs this binary again on the fixture test,
 * which does what FL_TEST_RUNNER_FIXTURE asks (and nothing in a normal
 * run, so that the fixture itself always passes there).
 */
#include "runner.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

TEST(fixture)
{
    const char *what = getenv("FL_TEST_RUNNER_FIXTURE");
    if (what == NULL)
        return; /* a normal run: only the tests below run it */
    if (strcmp(what, "skip") == 0)
        SKIP("asked to skip, %d times", 1);
    if (strcmp(what, "fail") == 0)
        ASSERT(strcmp(what, "pass") == 0);
    if (strcmp(what, "exit77") == 0)
        exit(77); /* a skip's exit status, without SKIP() */
    if (strcmp(what, "wait") == 0)
        WAIT_UNTIL(strcmp(what, "done") == 0, 1, (void)0);
}

struct run {
    int status; /* the exit status */
    char out[4096];
    char last[256]; /* its last line */
};

/* Run this binary on the fixture with FL_TEST_RUNNER_FIXTURE=what and CI=ci
 * (NULL: unset). */
static void run_fixture(const char *what, const char *ci, struct run *r)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/out", fl_test_tmpdir());
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
            _exit(126);
        setenv("FL_TEST_RUNNER_FIXTURE", what, 1);
        if (ci != NULL)
            setenv("CI", ci, 1);
        else
            unsetenv("CI");
        unsetenv("FL_TEST_VERBOSE");
        execl("/proc/self/exe", "test_runner", "fixture", (char *)NULL);
        _exit(127);
    }
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFEXITED(status));
    r->status = WEXITSTATUS(status);
    FILE *f = fopen(path, "r");
    ASSERT(f != NULL);
    size_t n = fread(r->out, 1, sizeof(r->out) - 1, f);
    r->out[n] = '\0';
    fclose(f);
    char *end = r->out + n;
    while (end > r->out && end[-1] == '\n')
        end--;
    char *start = end;
    while (start > r->out && start[-1] != '\n')
        start--;
    snprintf(r->last, sizeof(r->last), "%.*s", (int)(end - start), start);
}

TEST(a_skip_is_reported_as_a_skip_with_its_reason)
{
    struct run r;
    run_fixture("skip", NULL, &r);
    ASSERT_EQ(r.status, 0);
    ASSERT(strstr(r.out, "ok 1 - fixture # SKIP asked to skip, 1 times\n") != NULL);
    ASSERT_STR_EQ(r.last, "0 passed, 0 failed, 1 skipped");
    /* CI=false and CI=0 are not CI */
    run_fixture("skip", "false", &r);
    ASSERT_EQ(r.status, 0);
    ASSERT_STR_EQ(r.last, "0 passed, 0 failed, 1 skipped");
    run_fixture("skip", "0", &r);
    ASSERT_STR_EQ(r.last, "0 passed, 0 failed, 1 skipped");
}

TEST(under_ci_a_skip_fails_and_is_still_named_a_skip)
{
    struct run r;
    run_fixture("skip", "true", &r);
    ASSERT_EQ(r.status, 1);
    ASSERT(strstr(r.out, "not ok 1 - fixture (skipped, and under CI every test must run: "
                         "asked to skip, 1 times)\n") != NULL);
    ASSERT(strstr(r.out, "# CI is set: 1 skipped test counted as failed\n") != NULL);
    ASSERT_STR_EQ(r.last, "0 passed, 1 failed, 1 skipped");
}

TEST(passes_and_failures_are_counted_as_such)
{
    struct run r;
    run_fixture("pass", "true", &r);
    ASSERT_EQ(r.status, 0);
    ASSERT_STR_EQ(r.last, "1 passed, 0 failed, 0 skipped");
    run_fixture("fail", NULL, &r);
    ASSERT_EQ(r.status, 1);
    ASSERT(strstr(r.out, "not ok 1 - fixture (killed by signal 6)\n") != NULL);
    ASSERT(strstr(r.out, "assertion failed: strcmp(what, \"pass\") == 0") != NULL);
    ASSERT_STR_EQ(r.last, "0 passed, 1 failed, 0 skipped");
}

/* A skip needs its reason from SKIP(): a test that merely exits 77 failed. */
TEST(exit_status_77_alone_is_no_skip)
{
    struct run r;
    run_fixture("exit77", NULL, &r);
    ASSERT_EQ(r.status, 1);
    ASSERT(strstr(r.out, "not ok 1 - fixture (exit status 77)\n") != NULL);
    ASSERT_STR_EQ(r.last, "0 passed, 1 failed, 0 skipped");
}

TEST(waiting_runs_the_step_until_the_condition_holds)
{
    int steps = 0;
    WAIT_UNTIL(steps == 3, 20, steps++);
    ASSERT_EQ(steps, 3);
}

TEST(waiting_for_what_never_comes_fails_at_the_deadline)
{
    struct run r;
    run_fixture("wait", NULL, &r);
    ASSERT_EQ(r.status, 1);
    ASSERT(strstr(r.out, "still not strcmp(what, \"done\") == 0 after 1 s") != NULL);
}
