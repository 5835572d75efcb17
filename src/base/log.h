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

#include <stddef.h>

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

/* Quote s for a log field value ("a b" -> "\"a b\"", escaping quotes,
 * backslashes and control characters) into buf of size n, cut to fit.
 * Returns buf. */
const char *fl_log_quote(char *buf, size_t n, const char *s);

#endif
