/*
 * The unit test runner: see runner.h. The parent forks one child per test,
 * puts it in its own process group, captures its output in a file, and
 * kills the whole group when the test's time is up.
 *
 * A skip is told by two things together, so that neither alone can fake
 * it: the child writes its reason into a page shared with the parent and
 * exits with SKIP_STATUS. A test that exits 77 by itself is a failure.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS   512
#define SKIP_STATUS 77 /* what automake's harness calls a skip, too */
#define SKIP_REASON 512

struct test {
    const char *name;
    fl_test_fn fn;
    int timeout_secs;
};

static struct test tests[MAX_TESTS];
static int ntests;
static char tmpdir[4096];
static char *skip_reason; /* SKIP_REASON bytes shared with the test's child */

enum result { PASSED, FAILED, SKIPPED };

void fl_test_register(const char *name, fl_test_fn fn, int timeout_secs)
{
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "runner: more than %d tests in one binary\n", MAX_TESTS);
        exit(2);
    }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    tests[ntests].timeout_secs = timeout_secs;
    ntests++;
}

const char *fl_test_tmpdir(void)
{
    return tmpdir;
}

void fl_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(NULL);
    abort();
}

void fl_test_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (skip_reason != NULL)
        vsnprintf(skip_reason, SKIP_REASON, fmt, ap);
    va_end(ap);
    if (skip_reason == NULL || skip_reason[0] == '\0')
        fl_test_fail(__FILE__, __LINE__, "a test skipped without a reason");
    printf("# skipped: %s\n", skip_reason);
    fflush(NULL);
    _exit(SKIP_STATUS); /* not exit(): what the test holds is not a leak */
}

/* Whether skips count as failures: under CI (see runner.h). */
static bool under_ci(void)
{
    const char *ci = getenv("CI");
    return ci != NULL && ci[0] != '\0' && strcmp(ci, "0") != 0 && strcmp(ci, "false") != 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

double fl_test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

void fl_test_pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void show_output(FILE *out)
{
    char line[4096];
    rewind(out);
    while (fgets(line, sizeof(line), out) != NULL)
        printf("#   %s", line);
    if (ferror(out))
        printf("#   (cannot read the test's output)\n");
}

/* Run one test in a child. */
static enum result run_one(int index, const struct test *t)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/flint-test-%s-XXXXXX", base ? base : "/tmp", t->name);
    if (mkdtemp(tmpdir) == NULL) {
        printf("not ok %d - %s (cannot create temporary directory: %s)\n", index, t->name,
               strerror(errno));
        return FAILED;
    }
    FILE *out = tmpfile();
    if (out == NULL) {
        printf("not ok %d - %s (cannot create output file: %s)\n", index, t->name, strerror(errno));
        return FAILED;
    }
    memset(skip_reason, 0, SKIP_REASON);
    fflush(NULL);
    double start = fl_test_now();
    pid_t pid = fork();
    if (pid < 0) {
        printf("not ok %d - %s (fork: %s)\n", index, t->name, strerror(errno));
        fclose(out);
        return FAILED;
    }
    if (pid == 0) {
        setpgid(0, 0);
        dup2(fileno(out), STDOUT_FILENO);
        dup2(fileno(out), STDERR_FILENO);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        setvbuf(stdout, NULL, _IOLBF, 0);
        t->fn();
        fflush(NULL);
        exit(0); /* not _exit: LeakSanitizer checks at exit */
    }
    setpgid(pid, pid);

    int status = 0;
    int timed_out = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            status = -1;
            break;
        }
        if (fl_test_now() - start > t->timeout_secs) {
            timed_out = 1;
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        usleep(2000);
    }
    /* Whatever the test left running in its group goes too. */
    kill(-pid, SIGKILL);
    double elapsed = fl_test_now() - start;

    bool exited = !timed_out && status >= 0 && WIFEXITED(status);
    skip_reason[SKIP_REASON - 1] = '\0';
    enum result result = exited && WEXITSTATUS(status) == 0 ? PASSED : FAILED;
    if (exited && WEXITSTATUS(status) == SKIP_STATUS && skip_reason[0] != '\0')
        result = SKIPPED;
    if (result == PASSED) {
        printf("ok %d - %s (%.2fs)\n", index, t->name, elapsed);
    } else if (result == SKIPPED && !under_ci()) {
        printf("ok %d - %s # SKIP %s\n", index, t->name, skip_reason);
    } else if (result == SKIPPED) {
        printf("not ok %d - %s (skipped, and under CI every test must run: %s)\n", index, t->name,
               skip_reason);
    } else {
        if (timed_out)
            printf("not ok %d - %s (timed out after %d s)\n", index, t->name, t->timeout_secs);
        else if (status >= 0 && WIFSIGNALED(status))
            printf("not ok %d - %s (killed by signal %d)\n", index, t->name, WTERMSIG(status));
        else
            printf("not ok %d - %s (exit status %d)\n", index, t->name,
                   status >= 0 ? WEXITSTATUS(status) : -1);
        show_output(out);
    }
    if (getenv("FL_TEST_VERBOSE") != NULL && result != FAILED)
        show_output(out);
    fclose(out);
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    fflush(stdout);
    return result;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0, skipped = 0, index = 0;

    signal(SIGPIPE, SIG_IGN);
    skip_reason =
        mmap(NULL, SKIP_REASON, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (skip_reason == MAP_FAILED) {
        fprintf(stderr, "%s: cannot map a shared page: %s\n", argv[0], strerror(errno));
        return 2;
    }
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < ntests; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    for (int a = 1; a < argc; a++) {
        int found = 0;
        for (int i = 0; i < ntests; i++)
            found |= strcmp(tests[i].name, argv[a]) == 0;
        if (!found) {
            fprintf(stderr, "%s: no test named '%s' (--list shows them)\n", argv[0], argv[a]);
            return 2;
        }
    }
    for (int i = 0; i < ntests; i++) {
        int wanted = argc == 1;
        for (int a = 1; a < argc && !wanted; a++)
            wanted = strcmp(tests[i].name, argv[a]) == 0;
        if (!wanted)
            continue;
        switch (run_one(++index, &tests[i])) {
        case PASSED:
            passed++;
            break;
        case SKIPPED:
            skipped++;
            failed += under_ci(); /* and the line says it was skipped */
            break;
        case FAILED:
            failed++;
            break;
        }
    }
    if (skipped > 0 && under_ci())
        printf("# CI is set: %d skipped test%s counted as failed\n", skipped,
               skipped == 1 ? "" : "s");
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
