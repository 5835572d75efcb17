#include "base/buf.h"
#include "base/error.h"

#include <stdbool.h>
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

/* The length of the UTF-8 sequence at s (n bytes left), or 0 if it is
 * not one: the forms RFC 3629 allows, no overlong ones, no surrogates,
 * nothing past U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        k = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        k = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k;
}

int fl_buf_append_json_string(struct fl_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    size_t start = b->len;
    /* room for the text as it is and its quotes: most strings need no
     * escape, so this is the one growth; each escape makes room anew */
    int rc = len > SIZE_MAX - 2 ? FL_ETOOBIG : fl_buf_grow(b, len + 2);
    if (rc < 0)
        return rc;
    char *out = b->data + b->len;
    *out++ = '"';
    while (p < end) {
        /* a run that needs no escape goes in at once */
        const unsigned char *run = p;
        size_t k = 1;
        while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' &&
               (*p < 0x80 || (k = utf8_len(p, (size_t)(end - p))) > 0))
            p += *p < 0x80 ? 1 : k;
        memcpy(out, run, (size_t)(p - run));
        out += p - run;
        if (p == end)
            break;
        if (*p >= 0x80) {
            rc = FL_EINVAL; /* not UTF-8 */
            break;
        }
        /* an escape (\uXXXX or \ and a letter): room for it, the rest
         * as it is and the closing quote */
        bool short_form = *p == '"' || *p == '\\' || *p == '\b' || *p == '\f' || *p == '\n' ||
                          *p == '\r' || *p == '\t';
        size_t rest = (size_t)(end - p); /* the bytes after this one, and the quote */
        b->len = (size_t)(out - b->data);
        rc = rest > SIZE_MAX - 6 ? FL_ETOOBIG : fl_buf_grow(b, rest + (short_form ? 2 : 6));
        if (rc < 0)
            break;
        out = b->data + b->len;
        *out++ = '\\';
        switch (*p) {
        case '"':
        case '\\':
            *out++ = (char)*p;
            break;
        case '\b':
            *out++ = 'b';
            break;
        case '\f':
            *out++ = 'f';
            break;
        case '\n':
            *out++ = 'n';
            break;
        case '\r':
            *out++ = 'r';
            break;
        case '\t':
            *out++ = 't';
            break;
        default:
            memcpy(out, "u00", 3);
            out[3] = hex[*p >> 4];
            out[4] = hex[*p & 0xf];
            out += 5;
        }
        p++;
    }
    if (rc < 0) {
        b->len = start;
        b->data[start] = '\0';
        return rc;
    }
    *out++ = '"';
    b->len = (size_t)(out - b->data);
    b->data[b->len] = '\0';
    return 0;
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
