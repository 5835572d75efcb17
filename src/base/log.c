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

void fl_log(enum fl_log_level level, const char *sub, const char *msg, const char *fields, ...)
{
    if (level < fl_log_get_level())
        return;
    char line[LINE_MAX_BYTES];
    char ts[32], quoted[512];
    size_t len = (size_t)snprintf(line, sizeof(line), "ts=%s level=%s sub=%s msg=%s",
                                  fl_clock_format(fl_clock_wall_ms(), ts, sizeof(ts)),
                                  level_names[level], sub, fl_log_quote(quoted, sizeof(quoted), msg));
    if (len < sizeof(line) - 2 && fields != NULL && *fields != '\0') {
        line[len++] = ' ';
        va_list ap;
        va_start(ap, fields);
        int n = vsnprintf(line + len, sizeof(line) - len - 1, fields, ap);
        va_end(ap);
        if (n > 0)
            len += (size_t)n;
    }
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t ignored = write(log_fd, line, len);
    (void)ignored;
}
