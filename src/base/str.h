/*
 * String and number helpers. Everything here is bounded and checks its
 * input fully: a number parser fails on empty input, trailing garbage and
 * overflow rather than returning a guess (the reason atoi is banned).
 */
#ifndef FLINT_BASE_STR_H
#define FLINT_BASE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copy src into dst (size bytes, always NUL-terminated if size > 0).
 * Returns strlen(src): a result >= size means src was truncated. */
size_t fl_strlcpy(char *dst, const char *src, size_t size);

/* A malloc'd copy of the first n bytes of s, NUL-terminated; the caller
 * frees it. NULL if out of memory. */
char *fl_strndup(const char *s, size_t n);

bool fl_str_has_prefix(const char *s, const char *prefix);
bool fl_str_has_suffix(const char *s, const char *suffix);

/* Case-insensitive comparison of the n bytes at a with the C string b:
 * true only if they are the same length and equal ignoring ASCII case. */
bool fl_str_ieq(const char *a, size_t n, const char *b);

/* True if the n bytes at s hold a control character other than HTAB (NUL,
 * CR, LF, DEL...): what an HTTP field value must not contain (RFC 9110 5.5). */
bool fl_str_has_ctl(const char *s, size_t n);

/* True if the n bytes at s are an HTTP token (RFC 9110 5.6.2), what a
 * header name must be: one or more visible ASCII characters but the
 * delimiters "(),/:;<=>?@[\]{} and the double quote. */
bool fl_str_is_token(const char *s, size_t n);

/* Parse all of s as a decimal integer within [min, max].
 * 0, FL_EINVAL (not a number, trailing characters, empty) or FL_ERANGE. */
int fl_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
int fl_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* Parse a duration: an integer followed by ms, s, m, h or d ("250ms",
 * "30s", "5m"); a bare integer is seconds. Stores milliseconds.
 * 0, FL_EINVAL or FL_ERANGE. */
int fl_parse_duration_ms(const char *s, int64_t *out_ms);

/* ms as the largest unit that divides it ("2h", "90s", "1500ms"; "0ms"),
 * the form fl_parse_duration_ms() reads back. Returns out. */
char *fl_fmt_duration_ms(int64_t ms, char *out, size_t size);

/* Parse a size: an integer with an optional suffix K, M, G (powers of
 * 1024; "Ki", "KiB", "KB" are accepted alike). 0, FL_EINVAL or FL_ERANGE. */
int fl_parse_size(const char *s, uint64_t *out);

/* Write the lowercase hex form of n bytes into out, which must have room
 * for 2n + 1 bytes; out is NUL-terminated. */
void fl_hex_encode(char *out, const void *in, size_t n);

/* The standard base64 form (RFC 4648, with padding) of n bytes into out,
 * which must have room for FL_BASE64_LEN(n) + 1 bytes; out is
 * NUL-terminated. Returns its length. */
#define FL_BASE64_LEN(n) (((n) + 2) / 3 * 4)
size_t fl_base64_encode(char *out, const void *in, size_t n);

/* v in decimal into out, which has room for FL_U64_CHARS bytes,
 * NUL-terminated; returns its length. For hot paths that avoid printf. */
#define FL_U64_CHARS 21
size_t fl_fmt_u64(char *out, uint64_t v);

#endif
