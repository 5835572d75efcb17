#include "base/str.h"
#include "base/error.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t fl_strlcpy(char *dst, const char *src, size_t size)
{
    size_t len = strlen(src);
    if (size > 0) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

char *fl_strndup(const char *s, size_t n)
{
    char *copy = malloc(n + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, s, n);
    copy[n] = '\0';
    return copy;
}

bool fl_str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool fl_str_has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* ASCII only, whatever the locale: header names and such are tokens. */
static inline unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

bool fl_str_ieq(const char *a, size_t n, const char *b)
{
    size_t i = 0;
    for (; i < n && b[i] != '\0'; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return false;
    return i == n && b[i] == '\0';
}

bool fl_str_has_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return true;
    }
    return false;
}

bool fl_str_is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c) != NULL)
            return false;
    }
    return true;
}

int fl_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return FL_EINVAL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0')
        return FL_EINVAL;
    if (errno == ERANGE || v < min || v > max)
        return FL_ERANGE;
    *out = v;
    return 0;
}

int fl_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (s == NULL || !isdigit((unsigned char)*s))
        return FL_EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0')
        return FL_EINVAL;
    if (errno == ERANGE || v > max)
        return FL_ERANGE;
    *out = v;
    return 0;
}

/* Split s into its leading digits (parsed into *value) and a unit suffix. */
static int parse_number_unit(const char *s, uint64_t *value, const char **unit)
{
    char *end;
    if (s == NULL || !isdigit((unsigned char)*s))
        return FL_EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return FL_ERANGE;
    *value = v;
    *unit = end;
    return 0;
}

static int checked_mul(uint64_t v, uint64_t scale, uint64_t max, uint64_t *out)
{
    if (v != 0 && scale > max / v)
        return FL_ERANGE;
    *out = v * scale;
    return 0;
}

int fl_parse_duration_ms(const char *s, int64_t *out_ms)
{
    uint64_t v, ms;
    const char *unit;
    int err = parse_number_unit(s, &v, &unit);
    if (err < 0)
        return err;
    uint64_t scale;
    if (strcmp(unit, "ms") == 0)
        scale = 1;
    else if (strcmp(unit, "s") == 0 || *unit == '\0')
        scale = 1000;
    else if (strcmp(unit, "m") == 0)
        scale = 60 * 1000;
    else if (strcmp(unit, "h") == 0)
        scale = 3600 * 1000;
    else if (strcmp(unit, "d") == 0)
        scale = 86400 * 1000;
    else
        return FL_EINVAL;
    err = checked_mul(v, scale, INT64_MAX, &ms);
    if (err < 0)
        return err;
    *out_ms = (int64_t)ms;
    return 0;
}

int fl_parse_size(const char *s, uint64_t *out)
{
    uint64_t v;
    const char *unit;
    int err = parse_number_unit(s, &v, &unit);
    if (err < 0)
        return err;
    uint64_t scale = 1;
    switch (toupper((unsigned char)*unit)) {
    case '\0':
        return (*out = v, 0);
    case 'K':
        scale = 1ULL << 10;
        break;
    case 'M':
        scale = 1ULL << 20;
        break;
    case 'G':
        scale = 1ULL << 30;
        break;
    default:
        return FL_EINVAL;
    }
    unit++;
    if (*unit == 'i')
        unit++;
    if (*unit == 'B')
        unit++;
    if (*unit != '\0')
        return FL_EINVAL;
    return checked_mul(v, scale, UINT64_MAX, out);
}

void fl_hex_encode(char *out, const void *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

size_t fl_base64_encode(char *out, const void *in, size_t n)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = in;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[o++] = digits[v >> 18];
        out[o++] = digits[(v >> 12) & 63];
        out[o++] = i + 1 < n ? digits[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? digits[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

size_t fl_fmt_u64(char *out, uint64_t v)
{
    char digits[FL_U64_CHARS];
    size_t i = sizeof(digits);
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    size_t n = sizeof(digits) - i;
    memcpy(out, digits + i, n);
    out[n] = '\0';
    return n;
}

char *fl_fmt_duration_ms(int64_t ms, char *out, size_t size)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms > 0 && ms % units[i].ms == 0) {
            snprintf(out, size, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return out;
        }
    }
    snprintf(out, size, "%lldms", (long long)ms);
    return out;
}
