/* File-system helpers (see fs.h). */
#define _XOPEN_SOURCE 700
#include "base/fs.h"

#include "base/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fl_file_read(const char *path, struct fl_buf *buf)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    char chunk[65536];
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : 0;
            break;
        }
        rc = fl_buf_append(buf, chunk, (size_t)n);
        if (rc < 0)
            break;
    }
    close(fd);
    return rc;
}

/* Write all of data to fd, through short writes and signals. */
static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fl_file_write_atomic(const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = write_all(fd, data, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    return rc != 0 && errno != ENOENT ? -errno : 0;
}

int fl_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 ? 0 : -errno;
    int rc = nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rc == -1 && errno != 0)
        return -errno;
    return rc;
}

static int copy_file(const char *src, const char *dst, mode_t mode)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -errno;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0777);
    if (out < 0) {
        int rc = -errno;
        close(in);
        return rc;
    }
    char chunk[65536];
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : 0;
            break;
        }
        rc = write_all(out, chunk, (size_t)n);
        if (rc < 0)
            break;
    }
    close(in);
    close(out);
    return rc;
}

static int link_tree(const char *src, const char *dst, int depth)
{
    if (depth > 32)
        return FL_ERANGE;
    if (mkdir(dst, 0755) != 0)
        return -errno;
    DIR *d = opendir(src);
    if (d == NULL)
        return -errno;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char from[PATH_MAX], to[PATH_MAX];
        if ((size_t)snprintf(from, sizeof(from), "%s/%s", src, e->d_name) >= sizeof(from) ||
            (size_t)snprintf(to, sizeof(to), "%s/%s", dst, e->d_name) >= sizeof(to)) {
            rc = -ENAMETOOLONG;
            break;
        }
        struct stat st;
        if (lstat(from, &st) != 0) {
            rc = -errno;
        } else if (S_ISDIR(st.st_mode)) {
            rc = link_tree(from, to, depth + 1);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlink(from, target, sizeof(target) - 1);
            if (n < 0) {
                rc = -errno;
            } else {
                target[n] = '\0';
                rc = symlink(target, to) == 0 ? 0 : -errno;
            }
        } else if (S_ISREG(st.st_mode)) {
            if (link(from, to) != 0)
                rc = errno == EXDEV || errno == EPERM || errno == EMLINK
                         ? copy_file(from, to, st.st_mode)
                         : -errno;
        } /* sockets, fifos and devices are not code: skipped */
    }
    if (rc == 0 && errno != 0 && e == NULL)
        rc = -errno;
    closedir(d);
    return rc;
}

int fl_link_tree(const char *src, const char *dst)
{
    return link_tree(src, dst, 0);
}
