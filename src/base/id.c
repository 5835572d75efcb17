#include "base/id.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/sha256.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static pthread_mutex_t uuid_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_ms;
static uint16_t last_counter; /* 12 bits: rand_a used as a counter */

int fl_random_bytes(void *buf, unsigned n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return FL_EIO;
        }
        p += r;
        n -= (unsigned)r;
    }
    return 0;
}

/* Random bytes for ids come from a per-thread pool refilled 4 KiB at a
 * time: one getrandom() per 256 ids instead of one per id (ids are made on
 * every invocation). */
static int pooled_random(unsigned char *out, unsigned n)
{
    static __thread unsigned char pool[4096];
    static __thread unsigned left;
    if (left < n) {
        if (fl_random_bytes(pool, sizeof(pool)) < 0)
            return FL_EIO;
        left = sizeof(pool);
    }
    memcpy(out, pool + sizeof(pool) - left, n);
    memset(pool + sizeof(pool) - left, 0, n); /* never hand out the same bytes twice */
    left -= n;
    return 0;
}

/* The canonical lowercase form of the 16 bytes b. */
static void format_uuid(const unsigned char b[16], char *out)
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

int fl_uuid7(char *out)
{
    unsigned char b[16];
    if (pooled_random(b, sizeof(b)) < 0)
        return FL_EIO;

    pthread_mutex_lock(&uuid_lock);
    int64_t ms = fl_clock_wall_ms();
    uint16_t counter;
    if (ms <= last_ms) {
        /* Same millisecond (or the clock stepped back): count up; when the
         * counter is spent, borrow the next millisecond. */
        ms = last_ms;
        counter = (uint16_t)(last_counter + 1);
        if (counter > 0x0fff) {
            ms++;
            counter = (uint16_t)(b[6] & 0x03); /* small random start */
        }
    } else {
        counter = (uint16_t)(((b[6] << 8) | b[7]) & 0x01ff); /* leave room to count */
    }
    last_ms = ms;
    last_counter = counter;
    pthread_mutex_unlock(&uuid_lock);

    uint64_t t = (uint64_t)ms;
    b[0] = (unsigned char)(t >> 40);
    b[1] = (unsigned char)(t >> 32);
    b[2] = (unsigned char)(t >> 24);
    b[3] = (unsigned char)(t >> 16);
    b[4] = (unsigned char)(t >> 8);
    b[5] = (unsigned char)t;
    b[6] = (unsigned char)(0x70 | (counter >> 8));
    b[7] = (unsigned char)counter;
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    format_uuid(b, out);
    return 0;
}

void fl_uuid7_derived(int64_t ms, const char *const *parts, size_t n, char *out)
{
    unsigned char h[32], b[16];
    struct fl_sha256 sha;
    fl_sha256_init(&sha);
    for (size_t i = 0; i < n; i++)
        fl_sha256_update(&sha, parts[i], strlen(parts[i]) + (i + 1 < n));
    fl_sha256_final(&sha, h);
    uint64_t t = ms > 0 ? (uint64_t)ms : 0;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(t >> (40 - 8 * i));
    memcpy(b + 6, h, 10);
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f)); /* variant 10 */
    format_uuid(b, out);
}
