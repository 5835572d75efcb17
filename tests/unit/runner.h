/*
 * Flint's unit test runner, after libuv's: every test runs in its own
 * process (its own process group), with a timeout and its own temporary
 * directory; its output is shown only when it fails.
 *
 *   TEST(name) { ... }             a test, 30 s timeout
 *   TEST_TIMEOUT(name, secs) {...} a test with its own timeout
 *
 * A test binary runs every test it holds, or those named on its command
 * line (`build/tests/test_buf buf_grows`), or lists them with --list. It
 * ends with the line `N passed, N failed, N skipped` and exits 1 if any
 * failed.
 *
 * Inside a test: ASSERT*(...) abort the test with file:line on failure;
 * SKIP("why", ...) ends it as skipped, for a test whose guarantee this
 * machine cannot show (no writable cgroup, no bubblewrap); fl_test_tmpdir()
 * is a fresh directory, removed after the test; WAIT_UNTIL(cond, secs,
 * step) waits for a condition instead of sleeping and then looking, since
 * no test may depend on how fast the machine is.
 *
 * Skips under CI: where the environment variable CI is set (to anything but
 * "", "0" or "false"; CI services set CI=true), a skipped test counts as
 * failed too, because CI has bubblewrap and a writable cgroup and every
 * guarantee's test must run there. The closing line still counts it as
 * skipped, so that line says what was not run.
 */
#ifndef FLINT_TEST_RUNNER_H
#define FLINT_TEST_RUNNER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*fl_test_fn)(void);

void fl_test_register(const char *name, fl_test_fn fn, int timeout_secs);
/* The test's private directory (absolute path; the runner removes it). */
const char *fl_test_tmpdir(void);
/* Print a failure and end the test (never returns). */
void fl_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
/* End the test as skipped, with the reason printed (never returns). The
 * runner reports `ok N - name # SKIP reason`, or under CI a failure. */
void fl_test_skip(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Sleep ms milliseconds (for WAIT_UNTIL). */
void fl_test_pause_ms(int ms);

#define TEST_TIMEOUT(name, secs)                                                                   \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void test_register_##name(void)                            \
    {                                                                                              \
        fl_test_register(#name, test_##name, (secs));                                              \
    }                                                                                              \
    static void test_##name(void)

#define TEST(name) TEST_TIMEOUT(name, 30)

/* Monotonic time in seconds, from an arbitrary start. */
double fl_test_now(void);

/* Run step (a statement, e.g. one turn of a loop; may be empty) and look
 * again, a millisecond apart, until cond holds; fail the test if it still
 * does not after secs seconds. Give a deadline many times what the wait
 * takes on an idle machine: it only bounds a hang. */
#define WAIT_UNTIL(cond, secs, step)                                                               \
    do {                                                                                           \
        double until_ = fl_test_now() + (secs);                                                    \
        while (!(cond)) {                                                                          \
            if (fl_test_now() > until_)                                                            \
                fl_test_fail(__FILE__, __LINE__, "still not %s after %d s", #cond, (int)(secs));   \
            step;                                                                                  \
            fl_test_pause_ms(1);                                                                   \
        }                                                                                          \
    } while (0)

#define SKIP(...) fl_test_skip(__VA_ARGS__)

#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fl_test_fail(__FILE__, __LINE__, "assertion failed: %s", #cond);                       \
    } while (0)

#define ASSERT_EQ(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            fl_test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_);            \
    } while (0)

#define ASSERT_NE(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ == b_)                                                                              \
            fl_test_fail(__FILE__, __LINE__, "%s != %s: both %lld", #a, #b, a_);                   \
    } while (0)

#define ASSERT_OK(expr)                                                                            \
    do {                                                                                           \
        long long r_ = (long long)(expr);                                                          \
        if (r_ != 0)                                                                               \
            fl_test_fail(__FILE__, __LINE__, "%s returned %lld, expected 0", #expr, r_);           \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                                       \
            fl_test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,                 \
                         a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                  \
    } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                                     \
    do {                                                                                           \
        if (memcmp((a), (b), (n)) != 0)                                                            \
            fl_test_fail(__FILE__, __LINE__, "%s and %s differ in their first %zu bytes", #a, #b,  \
                         (size_t)(n));                                                             \
    } while (0)

#endif
