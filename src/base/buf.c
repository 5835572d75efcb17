#include "base/buf.h"
#include "base/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fl_buf_init(struct fl_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void fl_buf_release(struct fl_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void fl_buf_reset(struct fl_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

int fl_buf_grow(struct fl_buf *b, size_t extra)
{
    /* The allocation holds max bytes and a NUL: a maximum of SIZE_MAX
     * (no limit) is SIZE_MAX - 1, so that max + 1 cannot wrap to 0. */
    size_t max = b->max < SIZE_MAX ? b->max : SIZE_MAX - 1;
    if (extra > max || b->len > max - extra)
        return FL_ETOOBIG;
    size_t need = b->len + extra + 1; /* + NUL: at most SIZE_MAX */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > max + 1)
        cap = max + 1;
    char *data = realloc(b->data, cap);
    if (data == NULL)
        return FL_ENOMEM;
    if (b->data == NULL)
        data[0] = '\0';
    b->data = data;
    b->cap = cap;
    return 0;
}

int fl_buf_append(struct fl_buf *b, const void *data, size_t n)
{
    int err = fl_buf_grow(b, n);
    if (err < 0)
        return err;
    if (n > 0)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int fl_buf_appends(struct fl_buf *b, const char *s)
{
    return fl_buf_append(b, s, strlen(s));
}

int fl_buf_appendc(struct fl_buf *b, char c)
{
    return fl_buf_append(b, &c, 1);
}

int fl_buf_vappendf(struct fl_buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    char small[256];

    va_copy(copy, ap);
    int n = vsnprintf(small, sizeof(small), fmt, copy);
    va_end(copy);
    if (n < 0)
        return FL_EINVAL;
    if ((size_t)n < sizeof(small))
        return fl_buf_append(b, small, (size_t)n);
    int err = fl_buf_grow(b, (size_t)n);
    if (err < 0)
        return err;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int fl_buf_appendf(struct fl_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int err = fl_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return err;
}

void fl_buf_consume(struct fl_buf *b, size_t n)
{
    if (n >= b->len) {
        fl_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *fl_buf_detach(struct fl_buf *b, size_t *len)
{
    char *data = b->data;
    if (data == NULL)
        data = calloc(1, 1);
    if (len != NULL)
        *len = data ? b->len : 0;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return data;
}
