/*
 * Function logs: every line an instance writes to stdout or stderr, kept
 * per function with a size bound, readable from the end and followable.
 *
 * On disk, DIR/<function>.log holds one JSON object per line:
 *
 *   {"ts":"2026-11-24T11:32:02.123Z","function":"hello","revision":3,
 *    "instance":"0190f1a2-…","stream":"stderr","line":"listening"}
 *
 * When a file would pass its bound, it is renamed to <function>.log.1
 * (replacing the previous one) and a new file is started, so a function
 * keeps between max/2 and max bytes of its most recent lines. Log files
 * are not fsynced: losing the last lines in a power cut is acceptable,
 * blocking the loop on the disk is not. A line longer than
 * FL_LOG_LINE_MAX bytes is cut there and marked with "truncated":true.
 *
 * Used from one thread (flintd's loop).
 */
#ifndef FLINT_EXEC_LOGS_H
#define FLINT_EXEC_LOGS_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define FL_LOG_LINE_MAX 16384

struct fl_logbook;
struct fl_log_follower;

struct fl_log_line {
    int64_t ts_ms; /* wall clock */
    const char *function;
    int64_t revision;
    const char *instance; /* instance id */
    const char *stream;   /* "stdout", "stderr" or "flint" for the executor's own notes */
    const char *text;     /* without the newline */
    size_t len;
};

/* Called with each new line of a followed function, as one JSON text
 * ending in '\n'. */
typedef void (*fl_log_follow_cb)(void *data, const char *json_line, size_t len);

/* Open the logbook in dir (created 0700 if missing), keeping at most
 * max_bytes per function (at least 4096). 0 or a negative errno code. */
int fl_logbook_open(const char *dir, size_t max_bytes, struct fl_logbook **out);

/* Close every file and forget the followers (they are freed). */
void fl_logbook_close(struct fl_logbook *lb);

/* Append one line. 0, FL_EINVAL (bad function name), or a negative errno
 * code from the file system (the line is still given to followers). */
int fl_logbook_append(struct fl_logbook *lb, const struct fl_log_line *line);

/* Append the last n lines of function (fewer if it has fewer; n = 0 means
 * all that are kept) to out, oldest first, as JSON lines. 0, FL_ETOOBIG if
 * out is full (out then holds the most recent lines that fit, whole), or
 * a negative errno code. A function with no logs gives nothing and 0. */
int fl_logbook_tail(struct fl_logbook *lb, const char *function, size_t n, struct fl_buf *out);

/* Follow function's new lines. The follower is owned by the logbook until
 * fl_logbook_unfollow(). 0 or FL_ENOMEM. */
int fl_logbook_follow(struct fl_logbook *lb, const char *function, fl_log_follow_cb cb, void *data,
                      struct fl_log_follower **out);
void fl_logbook_unfollow(struct fl_logbook *lb, struct fl_log_follower *f);

/* Delete a function's logs (its followers stay). 0 or a negative errno code. */
int fl_logbook_remove(struct fl_logbook *lb, const char *function);

#endif
