/*
 * Logging: one line per event, key=value fields, safe to call from any
 * thread (each line is one write()).
 *
 *   fl_log(FL_LOG_INFO, "http", "listening", "addr=%s fd=%d", addr, fd);
 *
 * writes
 *
 *   ts=2026-11-24T11:32:02.123Z level=info sub=http msg="listening" addr=127.0.0.1:80 fd=7
 *
 * The fields format (after msg) may be NULL. Values that may hold spaces or
 * quotes should go through fl_log_quote(). Lines longer than 4 KiB are cut.
 */
#ifndef FLINT_BASE_LOG_H
#define FLINT_BASE_LOG_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fl_log_level {
    FL_LOG_DEBUG,
    FL_LOG_INFO,
    FL_LOG_WARN,
    FL_LOG_ERROR,
};

/* Lines below level are dropped. The default is FL_LOG_INFO, or the level
 * named by $FLINT_LOG_LEVEL (debug, info, warn, error) at the first line. */
void fl_log_set_level(enum fl_log_level level);
enum fl_log_level fl_log_get_level(void);

/* Parse "debug", "info", "warn" or "error". 0 or FL_EINVAL. */
int fl_log_parse_level(const char *name, enum fl_log_level *out);

/* Send lines to the file at path (appended, created 0600) instead of
 * stderr; NULL returns to stderr. 0 or a negative errno code. */
int fl_log_open(const char *path);

void fl_log(enum fl_log_level level, const char *sub, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Lines a client can cause (a refused token, a malformed request, a failed
 * accept) go through a rate limit, so that nobody outside can make flintd
 * write a line per request. Each call site has its own token bucket:
 * burst lines at once, then per_minute lines a minute. What the bucket
 * drops is counted, and the next line it lets through is preceded by
 *
 *   ts=... level=warn sub=api msg="suppressed similar lines" count=1234
 *     like="refused a request without a valid token"
 *
 * A line below the log level neither spends nor counts anything.
 *
 *   FL_LOG_LIMITED(FL_LOG_WARN, "api", "refused a request", "remote=%s", peer);
 *
 * declares the call site's bucket (FL_LOG_BURST, FL_LOG_PER_MINUTE) and logs
 * through it. Safe from any thread.
 */
#define FL_LOG_BURST      10
#define FL_LOG_PER_MINUTE 60

struct fl_log_ratelimit {
    unsigned burst;      /* lines let through at once */
    unsigned per_minute; /* lines a minute after that (not 0) */
    /* private */
    pthread_mutex_t lock;
    bool started;
    uint64_t credit_ns; /* time banked: each line costs 60 s / per_minute */
    uint64_t last_ns;
    uint64_t suppressed; /* dropped since the last line let through */
};

#define FL_LOG_RATELIMIT_INIT(burst, per_minute)                                                   \
    {                                                                                              \
        (burst), (per_minute), PTHREAD_MUTEX_INITIALIZER, false, 0, 0, 0                           \
    }

/* Whether a line may be written at now_ns (monotonic). If so, *suppressed
 * gets how many were dropped since the last line let through, and that
 * count restarts; if not, the line is counted as dropped. */
bool fl_log_ratelimit_allow(struct fl_log_ratelimit *rl, uint64_t now_ns, uint64_t *suppressed);

/* fl_log() through rl: the line, preceded by the summary of what rl
 * dropped, or nothing (counted) when rl is empty. */
void fl_log_ratelimited(struct fl_log_ratelimit *rl, enum fl_log_level level, const char *sub,
                        const char *msg, const char *fields, ...)
    __attribute__((format(printf, 5, 6)));

#define FL_LOG_LIMITED(level, sub, msg, ...)                                                       \
    do {                                                                                           \
        static struct fl_log_ratelimit rl_ =                                                       \
            FL_LOG_RATELIMIT_INIT(FL_LOG_BURST, FL_LOG_PER_MINUTE);                                \
        fl_log_ratelimited(&rl_, (level), (sub), (msg), __VA_ARGS__);                              \
    } while (0)

/* Quote s for a log field value ("a b" -> "\"a b\"", escaping quotes,
 * backslashes and control characters) into buf of size n, cut to fit.
 * Returns buf. */
const char *fl_log_quote(char *buf, size_t n, const char *s);

#endif
