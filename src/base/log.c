#include "base/log.h"
#include "base/clock.h"
#include "base/error.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static int log_level = -1;
static int log_fd = STDERR_FILENO;

static const char *level_names[] = {"debug", "info", "warn", "error"};

int fl_log_parse_level(const char *name, enum fl_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum fl_log_level)i;
            return 0;
        }
    }
    return FL_EINVAL;
}

enum fl_log_level fl_log_get_level(void)
{
    if (log_level < 0) {
        enum fl_log_level level = FL_LOG_INFO;
        const char *env = getenv("FLINT_LOG_LEVEL");
        if (env != NULL)
            fl_log_parse_level(env, &level);
        log_level = (int)level;
    }
    return (enum fl_log_level)log_level;
}

void fl_log_set_level(enum fl_log_level level)
{
    log_level = (int)level;
}

int fl_log_open(const char *path)
{
    if (path == NULL) {
        if (log_fd != STDERR_FILENO)
            close(log_fd);
        log_fd = STDERR_FILENO;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = fd;
    return 0;
}

const char *fl_log_quote(char *buf, size_t n, const char *s)
{
    size_t o = 0;
    if (n < 3) {
        if (n > 0)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (; *s != '\0' && o + 3 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            if (o + 5 >= n)
                break;
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static void log_line(enum fl_log_level level, const char *sub, const char *msg, const char *fields,
                     va_list ap)
{
    char line[LINE_MAX_BYTES];
    char ts[32], quoted[512];
    size_t len =
        (size_t)snprintf(line, sizeof(line), "ts=%s level=%s sub=%s msg=%s",
                         fl_clock_format(fl_clock_wall_ms(), ts, sizeof(ts)), level_names[level],
                         sub, fl_log_quote(quoted, sizeof(quoted), msg));
    if (len < sizeof(line) - 2 && fields != NULL && *fields != '\0') {
        line[len++] = ' ';
        int n = vsnprintf(line + len, sizeof(line) - len - 1, fields, ap);
        if (n > 0)
            len += (size_t)n;
    }
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t ignored = write(log_fd, line, len);
    (void)ignored;
}

void fl_log(enum fl_log_level level, const char *sub, const char *msg, const char *fields, ...)
{
    if (level < fl_log_get_level())
        return;
    va_list ap;
    va_start(ap, fields);
    log_line(level, sub, msg, fields, ap);
    va_end(ap);
}

bool fl_log_ratelimit_allow(struct fl_log_ratelimit *rl, uint64_t now_ns, uint64_t *suppressed)
{
    uint64_t cost = 60000000000ULL / (rl->per_minute ? rl->per_minute : 1);
    uint64_t full = cost * (rl->burst ? rl->burst : 1);
    bool allow = false;
    pthread_mutex_lock(&rl->lock);
    if (!rl->started) {
        rl->started = true;
        rl->credit_ns = full;
    } else if (now_ns > rl->last_ns) {
        uint64_t gained = now_ns - rl->last_ns;
        rl->credit_ns = gained >= full - rl->credit_ns ? full : rl->credit_ns + gained;
    }
    rl->last_ns = now_ns > rl->last_ns ? now_ns : rl->last_ns;
    if (rl->credit_ns >= cost) {
        rl->credit_ns -= cost;
        *suppressed = rl->suppressed;
        rl->suppressed = 0;
        allow = true;
    } else {
        rl->suppressed++;
    }
    pthread_mutex_unlock(&rl->lock);
    return allow;
}

void fl_log_ratelimited(struct fl_log_ratelimit *rl, enum fl_log_level level, const char *sub,
                        const char *msg, const char *fields, ...)
{
    uint64_t suppressed;
    if (level < fl_log_get_level() || !fl_log_ratelimit_allow(rl, fl_clock_mono_ns(), &suppressed))
        return;
    if (suppressed > 0) {
        char like[512];
        fl_log(level, sub, "suppressed similar lines", "count=%llu like=%s",
               (unsigned long long)suppressed, fl_log_quote(like, sizeof(like), msg));
    }
    va_list ap;
    va_start(ap, fields);
    log_line(level, sub, msg, fields, ap);
    va_end(ap);
}
