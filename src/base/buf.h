/*
 * Bounded growable byte buffers (after git's strbuf and curl's dynbuf).
 *
 * Every buffer has a maximum size, set when it is initialized: an append
 * that would grow it past the maximum fails with FL_ETOOBIG and leaves the
 * buffer as it was. The contents are always NUL-terminated (the NUL is not
 * counted in len), so text can be used as a C string.
 *
 *   struct fl_buf b;
 *   fl_buf_init(&b, 1 << 20);
 *   if (fl_buf_appendf(&b, "%d items", n) < 0) ...
 *   use(b.data, b.len);
 *   fl_buf_release(&b);
 */
#ifndef FLINT_BASE_BUF_H
#define FLINT_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct fl_buf {
    char *data; /* NULL until something is appended; then NUL-terminated */
    size_t len; /* bytes used, not counting the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* most bytes the buffer may hold (len <= max) */
};

/* Set up an empty buffer that may grow to max bytes. Allocates nothing. */
void fl_buf_init(struct fl_buf *b, size_t max);

/* Free the contents; the buffer is empty afterwards and may be reused. */
void fl_buf_release(struct fl_buf *b);

/* Empty the buffer, keeping its allocation. */
void fl_buf_reset(struct fl_buf *b);

/* Make room for at least extra more bytes. 0, FL_ETOOBIG or FL_ENOMEM. */
int fl_buf_grow(struct fl_buf *b, size_t extra);

/* Append n bytes / a C string / one byte / formatted text.
 * Return 0, or FL_ETOOBIG / FL_ENOMEM with the buffer unchanged. */
int fl_buf_append(struct fl_buf *b, const void *data, size_t n);
int fl_buf_appends(struct fl_buf *b, const char *s);
int fl_buf_appendc(struct fl_buf *b, char c);
int fl_buf_appendf(struct fl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fl_buf_vappendf(struct fl_buf *b, const char *fmt, va_list ap);

/* Append s (len bytes) as a JSON string, quotes included, escaped as
 * jansson's json_dumps() writes it: \" \\ \b \f \n \r \t, any other
 * byte below 0x20 (NUL included) as \u00XX (upper-case hex), everything
 * else as it is (no \/, UTF-8 left unescaped), so that text built with it
 * is byte for byte what dumping the same jansson string gives. 0;
 * FL_EINVAL if s is not UTF-8 (overlong forms, surrogates and code points
 * past U+10FFFF are not, as jansson has it); FL_ETOOBIG / FL_ENOMEM. On an
 * error the buffer is unchanged. */
int fl_buf_append_json_string(struct fl_buf *b, const char *s, size_t len);

/* Remove the first n bytes (all if n >= len), moving the rest down. */
void fl_buf_consume(struct fl_buf *b, size_t n);

/* Take the contents out: returns a malloc'd NUL-terminated string the
 * caller frees with free() (an empty string if nothing was appended, NULL
 * only if that allocation fails), and stores its length in *len if len is
 * not NULL. The buffer is empty afterwards. */
char *fl_buf_detach(struct fl_buf *b, size_t *len);

#endif
