/*
 * Error codes. Every Flint function that can fail returns int: 0 on success
 * or a negative FL_E* code. The codes are negated errno values where one
 * fits (so a system error passes through as -errno), plus Flint's own codes
 * below -1000 for conditions errno has no word for.
 */
#ifndef FLINT_BASE_ERROR_H
#define FLINT_BASE_ERROR_H

#include <errno.h>

#define FL_ENOMEM    (-ENOMEM)    /* allocation failed */
#define FL_EINVAL    (-EINVAL)    /* invalid argument or input */
#define FL_ENOENT    (-ENOENT)    /* no such resource, stream, topic, file */
#define FL_EEXIST    (-EEXIST)    /* already exists */
#define FL_EIO       (-EIO)       /* input/output error */
#define FL_ETIMEDOUT (-ETIMEDOUT) /* timed out */
#define FL_EAGAIN    (-EAGAIN)    /* try again later (full queue, busy) */
#define FL_ECANCELED (-ECANCELED) /* operation canceled (shutdown, close) */
#define FL_EACCES    (-EACCES)    /* permission denied */
#define FL_ENOSPC    (-ENOSPC)    /* no space left */
#define FL_EPIPE     (-EPIPE)     /* peer went away */
#define FL_ERANGE    (-ERANGE)    /* number out of range */
#define FL_ENOTSUP   (-ENOTSUP)   /* not supported by this kind of thing */

#define FL_ETOOBIG    (-1001) /* over a configured size limit */
#define FL_ECONFLICT  (-1002) /* compare-and-set lost: revision or sequence mismatch */
#define FL_EPARSE     (-1003) /* malformed input (HTTP, JSON, YAML, cron...) */
#define FL_ECORRUPT   (-1004) /* on-disk data is corrupt or foreign */
#define FL_ELOCKED    (-1005) /* another process holds the resource (data directory) */
#define FL_ECONNECT   (-1006) /* could not connect: the request was not sent */
#define FL_ESENT      (-1007) /* failed after the request was (maybe) sent */
#define FL_EPROTO     (-1008) /* peer violated the protocol */
#define FL_ECLOSED    (-1009) /* the handle or store is closed */
#define FL_EDUPLICATE (-1010) /* a duplicate (e.g. message id seen before) */

/* A short lowercase description of an FL_E* code (or -errno). Never NULL;
 * the string is static. */
const char *fl_strerror(int err);

/* The symbolic name of an FL_E* code, e.g. "ECONFLICT", for JSON error
 * bodies and logs. Never NULL; static. */
const char *fl_errname(int err);

#include <stddef.h>

/* Write a message (printf-style) into a caller's error buffer of errsize
 * bytes, truncated to fit and NUL-terminated; nothing when err is NULL or
 * errsize is 0. For functions whose callers may not want the message. */
void fl_error_format(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
