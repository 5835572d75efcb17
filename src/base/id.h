/*
 * Identifiers: UUIDv7 (RFC 9562). The first 48 bits are the Unix time in
 * milliseconds, so ids sort by creation time; within one millisecond a
 * counter keeps ids from one process strictly increasing.
 */
#ifndef FLINT_BASE_ID_H
#define FLINT_BASE_ID_H

#include <stddef.h>
#include <stdint.h>

#define FL_UUID_STRLEN 36 /* "0190f1a2-...": 36 characters, plus a NUL */

/* Write a new UUIDv7 in its canonical lowercase form into out (at least
 * FL_UUID_STRLEN + 1 bytes). Thread-safe. Returns 0, or FL_EIO if the
 * system has no randomness to give. */
int fl_uuid7(char *out);

/* Write into out the UUIDv7 whose time is ms (Unix milliseconds) and
 * whose other bits are those of a SHA-256 of the n strings of parts, each
 * but the last with its NUL (so "ab","c" and "a","bc" differ): the same
 * id for the same parts, for things that must be named alike however many
 * times they are made (a message's invocation, a cron fire). */
void fl_uuid7_derived(int64_t ms, const char *const *parts, size_t n, char *out);

/* Fill buf with n cryptographically random bytes. 0 or FL_EIO. */
int fl_random_bytes(void *buf, unsigned n);

#endif
