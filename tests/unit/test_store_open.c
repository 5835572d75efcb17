/*
 * Unit tests for opening the SQLite store when the system refuses it a
 * thread: this binary's pthread_create() stands in for libc's and fails
 * on demand.
 */
#include "runner.h"

#include "base/error.h"
#include "store/sqlite.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>

static int refuse_after = -1; /* threads still granted; -1: all */

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) =
        (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(
            RTLD_NEXT, "pthread_create");
    if (refuse_after == 0)
        return EAGAIN;
    if (refuse_after > 0)
        refuse_after--;
    return real(thread, attr, fn, arg);
}

static bool closed;

static void on_closed(void *data)
{
    closed = true;
}

TEST(an_open_that_cannot_start_its_threads_fails_cleanly_and_can_be_retried)
{
    uv_loop_t loop;
    ASSERT_OK(uv_loop_init(&loop));
    char err[512];
    struct fl_store *s = NULL;
    for (int granted = 0; granted < 2; granted++) {
        refuse_after = granted; /* the writer's thread, then the reader's */
        err[0] = '\0';
        ASSERT_EQ(fl_store_sqlite_open(&loop, fl_test_tmpdir(), NULL, &s, err, sizeof(err)),
                  -EAGAIN);
        ASSERT(strstr(err, granted == 0 ? "cannot start the store's writer thread"
                                        : "cannot start the store's reader thread") != NULL);
        /* nothing is left on the loop */
        ASSERT_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);
    }
    /* nothing held either: the lock is free, and a new open works */
    refuse_after = -1;
    ASSERT_OK(fl_store_sqlite_open(&loop, fl_test_tmpdir(), NULL, &s, err, sizeof(err)));
    fl_store_close(s, on_closed, NULL);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_OK(uv_loop_close(&loop));
}
