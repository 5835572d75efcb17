#include "exec/logs.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/queue.h"
#include "base/str.h"
#include "exec/spec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_OPEN_FILES 64
#define SCRATCH_BYTES  (6 * FL_LOG_LINE_MAX + 4096) /* a line, escaped, and its fields */

struct open_file {
    char function[FL_NAME_MAX + 1];
    int fd;
    size_t size;
    uint64_t last_used;
};

struct fl_log_follower {
    struct fl_queue node; /* in lb->followers */
    char function[FL_NAME_MAX + 1];
    fl_log_follow_cb cb;
    void *data;
};

struct fl_logbook {
    char dir[4096];
    size_t max_bytes;
    struct open_file files[MAX_OPEN_FILES];
    uint64_t clock;
    struct fl_queue followers; /* struct fl_log_follower, newest first */
    struct fl_buf scratch;     /* the line being written, at most SCRATCH_BYTES */
};

static bool valid_function(const char *function)
{
    struct fl_buf ignored;
    fl_buf_init(&ignored, 256);
    bool ok = fl_name_check(function, &ignored) == 0;
    fl_buf_release(&ignored);
    return ok;
}

int fl_logbook_open(const char *dir, size_t max_bytes, struct fl_logbook **out)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    struct fl_logbook *lb = calloc(1, sizeof(*lb));
    if (lb == NULL)
        return FL_ENOMEM;
    if (fl_strlcpy(lb->dir, dir, sizeof(lb->dir)) >= sizeof(lb->dir) - 80) {
        free(lb);
        return FL_EINVAL;
    }
    lb->max_bytes = max_bytes < 4096 ? 4096 : max_bytes;
    fl_queue_init(&lb->followers);
    fl_buf_init(&lb->scratch, SCRATCH_BYTES);
    if (fl_buf_grow(&lb->scratch, SCRATCH_BYTES) < 0) { /* once: no allocation per line */
        free(lb);
        return FL_ENOMEM;
    }
    for (int i = 0; i < MAX_OPEN_FILES; i++)
        lb->files[i].fd = -1;
    *out = lb;
    return 0;
}

void fl_logbook_close(struct fl_logbook *lb)
{
    if (lb == NULL)
        return;
    for (int i = 0; i < MAX_OPEN_FILES; i++)
        if (lb->files[i].fd >= 0)
            close(lb->files[i].fd);
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &lb->followers)
    {
        fl_queue_remove(q);
        free(FL_QUEUE_DATA(q, struct fl_log_follower, node));
    }
    fl_buf_release(&lb->scratch);
    free(lb);
}

/* The log file of function (fl_logbook_open() left room for the longest
 * name; were it too long, out would be "", which names no file). */
static void log_path(const struct fl_logbook *lb, const char *function, const char *suffix,
                     char *out, size_t size)
{
    (void)fl_path_fmt(out, size, "%s/%s.log%s", lb->dir, function, suffix);
}

static void close_slot(struct open_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    f->function[0] = '\0';
}

/* The open file of function, opening (and evicting the least recently
 * used) as needed. NULL with errno set on failure. */
static struct open_file *file_for(struct fl_logbook *lb, const char *function)
{
    struct open_file *victim = &lb->files[0];
    for (int i = 0; i < MAX_OPEN_FILES; i++) {
        struct open_file *f = &lb->files[i];
        if (f->fd >= 0 && strcmp(f->function, function) == 0) {
            f->last_used = ++lb->clock;
            return f;
        }
        if (f->fd < 0 || (victim->fd >= 0 && f->last_used < victim->last_used))
            victim = f;
    }
    close_slot(victim);
    char path[4200];
    log_path(lb, function, "", path, sizeof(path));
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    victim->fd = fd;
    victim->size = (size_t)st.st_size;
    victim->last_used = ++lb->clock;
    fl_strlcpy(victim->function, function, sizeof(victim->function));
    return victim;
}

static int rotate(struct fl_logbook *lb, struct open_file *f)
{
    char path[4200], old[4200];
    char function[FL_NAME_MAX + 1];
    fl_strlcpy(function, f->function, sizeof(function));
    log_path(lb, function, "", path, sizeof(path));
    log_path(lb, function, ".1", old, sizeof(old));
    close_slot(f);
    if (rename(path, old) != 0)
        return -errno;
    return 0;
}

/*
 * Lines are encoded by hand into the logbook's scratch buffer: one pass,
 * no allocation (the jansson object, text and copy it replaced cost more
 * than the write). The text is byte for byte what json_dumps() gave:
 * fields in this order, compact, strings through
 * fl_buf_append_json_string(), which escapes as jansson does and refuses
 * what is not UTF-8 by jansson's rules, as json_stringn() refused it.
 */

/* Format line as one JSON text ending in '\n' into lb's scratch buffer.
 * FL_EINVAL if a string is not UTF-8, FL_ETOOBIG if a field is too long. */
static int format_line(struct fl_logbook *lb, const struct fl_log_line *line)
{
    char ts[32];
    const char *instance = line->instance ? line->instance : "";
    size_t n = line->len > FL_LOG_LINE_MAX ? FL_LOG_LINE_MAX : line->len;
    const char *fields[] = {fl_clock_format(line->ts_ms, ts, sizeof(ts)), line->function, instance,
                            line->stream};
    size_t need = 6 * n + 128;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        need += 6 * strlen(fields[i]) + 16;
    if (need > SCRATCH_BYTES)
        return FL_ETOOBIG;
    struct fl_buf *b = &lb->scratch;
    fl_buf_reset(b);
    int rc = fl_buf_appends(b, "{\"ts\":");
    rc = rc ? rc : fl_buf_append_json_string(b, fields[0], strlen(fields[0]));
    rc = rc ? rc : fl_buf_appends(b, ",\"function\":");
    rc = rc ? rc : fl_buf_append_json_string(b, line->function, strlen(line->function));
    rc = rc ? rc : fl_buf_appendf(b, ",\"revision\":%lld,\"instance\":", (long long)line->revision);
    rc = rc ? rc : fl_buf_append_json_string(b, instance, strlen(instance));
    rc = rc ? rc : fl_buf_appends(b, ",\"stream\":");
    rc = rc ? rc : fl_buf_append_json_string(b, line->stream, strlen(line->stream));
    rc = rc ? rc : fl_buf_appends(b, ",\"line\":");
    rc = rc ? rc : fl_buf_append_json_string(b, line->text, n);
    if (rc == 0 && n < line->len)
        rc = fl_buf_appends(b, ",\"truncated\":true");
    return rc ? rc : fl_buf_appends(b, "}\n");
}

/* A copy of s with every byte that is not part of a well-formed UTF-8
 * sequence replaced by '?'; with ascii_only, every non-ASCII byte. */
static char *sanitize_utf8(const char *s, size_t n, bool ascii_only)
{
    char *out = fl_strndup(s, n);
    if (out == NULL)
        return NULL;
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)out[i];
        size_t need;
        if (c != 0 && c < 0x80) {
            i++;
            continue;
        }
        if (c == 0 || ascii_only)
            need = 9;
        else if ((c >> 5) == 6)
            need = 1;
        else if ((c >> 4) == 14)
            need = 2;
        else if ((c >> 3) == 30)
            need = 3;
        else
            need = 9;
        bool ok = need != 9 && i + need < n;
        for (size_t k = 1; ok && k <= need; k++)
            ok = ((unsigned char)out[i + k] >> 6) == 2;
        if (!ok) {
            out[i++] = '?';
            continue;
        }
        i += need + 1;
    }
    return out;
}

int fl_logbook_append(struct fl_logbook *lb, const struct fl_log_line *line)
{
    if (!valid_function(line->function))
        return FL_EINVAL;
    int rc = format_line(lb, line);
    /* Output that is not UTF-8 is logged cleaned, never dropped: first
     * with only the bad bytes replaced, then, if that is still refused
     * (overlong forms, surrogates), with every non-ASCII byte replaced. */
    for (int pass = 0; rc == FL_EINVAL && pass < 2; pass++) {
        struct fl_log_line clean = *line;
        char *fixed = sanitize_utf8(line->text, line->len, pass == 1);
        if (fixed == NULL)
            return FL_ENOMEM;
        clean.text = fixed;
        rc = format_line(lb, &clean);
        free(fixed);
    }
    if (rc < 0)
        return rc == FL_EINVAL ? FL_ENOMEM : rc;
    const char *text = lb->scratch.data;
    size_t len = lb->scratch.len;
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, &lb->followers)
    {
        struct fl_log_follower *f = FL_QUEUE_DATA(q, struct fl_log_follower, node);
        if (strcmp(f->function, line->function) == 0)
            f->cb(f->data, text, len);
    }

    struct open_file *file = file_for(lb, line->function);
    if (file != NULL && file->size + len > lb->max_bytes / 2 && file->size > 0) {
        rc = rotate(lb, file);
        file = rc == 0 ? file_for(lb, line->function) : NULL;
    }
    if (file == NULL) {
        rc = rc < 0 ? rc : -errno;
    } else {
        ssize_t w = write(file->fd, text, len);
        if (w < 0)
            rc = -errno;
        else
            file->size += (size_t)w;
    }
    return rc;
}

int fl_logbook_tail(struct fl_logbook *lb, const char *function, size_t n, struct fl_buf *out)
{
    if (!valid_function(function))
        return FL_EINVAL;
    char path[4200];
    struct fl_buf all;
    /* .log.1 and .log together never exceed max_bytes (plus one line). */
    fl_buf_init(&all, lb->max_bytes + 2 * FL_LOG_LINE_MAX + 1024);
    log_path(lb, function, ".1", path, sizeof(path));
    int rc = fl_file_read(path, &all);
    log_path(lb, function, "", path, sizeof(path));
    if (rc == 0)
        rc = fl_file_read(path, &all);
    if (rc < 0)
        goto out;
    /* Walk back n lines from the end (a torn last line, without '\n', is skipped). */
    size_t end = all.len;
    while (end > 0 && all.data[end - 1] != '\n')
        end--;
    size_t start = end, count = 0;
    while (start > 0 && (n == 0 || count < n)) {
        size_t s = start - 1;
        while (s > 0 && all.data[s - 1] != '\n')
            s--;
        if (end - s > out->max - out->len) {
            rc = FL_ETOOBIG;
            break;
        }
        start = s;
        count++;
    }
    if (start < end) {
        int err = fl_buf_append(out, all.data + start, end - start);
        if (err < 0)
            rc = err;
    }
out:
    fl_buf_release(&all);
    return rc;
}

int fl_logbook_follow(struct fl_logbook *lb, const char *function, fl_log_follow_cb cb, void *data,
                      struct fl_log_follower **out)
{
    struct fl_log_follower *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return FL_ENOMEM;
    fl_strlcpy(f->function, function, sizeof(f->function));
    f->cb = cb;
    f->data = data;
    fl_queue_insert_head(&lb->followers, &f->node);
    *out = f;
    return 0;
}

void fl_logbook_unfollow(struct fl_logbook *lb, struct fl_log_follower *f)
{
    fl_queue_remove(&f->node);
    free(f);
}

int fl_logbook_remove(struct fl_logbook *lb, const char *function)
{
    if (!valid_function(function))
        return FL_EINVAL;
    for (int i = 0; i < MAX_OPEN_FILES; i++)
        if (lb->files[i].fd >= 0 && strcmp(lb->files[i].function, function) == 0)
            close_slot(&lb->files[i]);
    char path[4200];
    int rc = 0;
    log_path(lb, function, "", path, sizeof(path));
    if (unlink(path) != 0 && errno != ENOENT)
        rc = -errno;
    log_path(lb, function, ".1", path, sizeof(path));
    if (unlink(path) != 0 && errno != ENOENT)
        rc = -errno;
    return rc;
}
