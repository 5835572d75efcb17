/* File-system helpers (see fs.h). */
#include "base/fs.h"

#include "base/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fl_path_fmt(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < size)
        return 0;
    if (size > 0)
        out[0] = '\0';
    return n < 0 ? -EINVAL : -ENAMETOOLONG;
}

int fl_path_join(char *out, size_t size, const char *dir, const char *name)
{
    return fl_path_fmt(out, size, "%s/%s", dir, name);
}

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

int fl_write_all(int fd, const void *data, size_t len)
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
    int rc = fl_path_fmt(tmp, sizeof(tmp), "%s.tmp", path);
    if (rc < 0)
        return rc;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    rc = fl_write_all(fd, data, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* ---- tree walks ---- */

struct walk {
    struct fl_tree_limits lim;
    struct fl_tree_stats st;
};

static void walk_init(struct walk *w, const struct fl_tree_limits *limits)
{
    memset(w, 0, sizeof(*w));
    if (limits != NULL)
        w->lim = *limits;
    if (w->lim.max_entries == 0)
        w->lim.max_entries = FL_TREE_MAX_ENTRIES;
    if (w->lim.max_depth == 0)
        w->lim.max_depth = FL_TREE_MAX_DEPTH;
}

/* One entry of a directory being walked: dirfd holds it, st is its own
 * lstat, depth the level of dirfd's entries (the root's are 0). */
typedef int (*entry_fn)(struct walk *w, int dirfd, const char *name, const struct stat *st,
                        unsigned depth, void *arg);

/* Call fn for each entry of the directory fd (taken over and closed),
 * counting entries and depth against the bounds. An entry that vanished meanwhile is
 * skipped. */
static int each_entry(struct walk *w, int fd, unsigned depth, entry_fn fn, void *arg)
{
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            rc = errno != 0 ? -errno : 0;
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (++w->st.entries > w->lim.max_entries) {
            rc = FL_ETOOBIG;
            break;
        }
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT)
                continue;
            rc = -errno;
            break;
        }
        if (S_ISDIR(st.st_mode) && depth + 1 > w->lim.max_depth) {
            rc = FL_ERANGE; /* its entries would be one level too deep */
            break;
        }
        rc = fn(w, dirfd(d), e->d_name, &st, depth, arg);
        if (rc < 0)
            break;
    }
    closedir(d);
    return rc;
}

/* The directory name in dirfd, never through a symbolic link: -1 with
 * errno ELOOP or ENOTDIR if it is not a directory (any more). */
static int open_dir_at(int dirfd, const char *name)
{
    return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* A root of a walk: the directory path itself, never a symbolic link. */
static int open_root(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0)
        return fd;
    struct stat st;
    if (errno == ENOTDIR && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        errno = ELOOP; /* say what it is */
    return -1;
}

/* Open the directory that holds path's last component (the caller's own
 * path: followed as given) and copy that component to name. */
static int open_parent(const char *path, char *name, size_t size)
{
    char parent[PATH_MAX];
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    if (len == 0 || len >= sizeof(parent))
        return len == 0 ? -EINVAL : -ENAMETOOLONG;
    memcpy(parent, path, len);
    parent[len] = '\0';
    char *slash = strrchr(parent, '/');
    const char *base = slash ? slash + 1 : parent;
    if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return -EINVAL;
    if (strlen(base) >= size)
        return -ENAMETOOLONG;
    memcpy(name, base, strlen(base) + 1);
    if (slash == NULL)
        memcpy(parent, ".", 2);
    else if (slash == parent)
        parent[1] = '\0';
    else
        *slash = '\0';
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

/* Copy the regular file open at in to a new file name in dirfd (created
 * with mode, never through a link). 0 or a negative errno code. */
static int copy_to(int in, int dirfd, const char *name, mode_t mode)
{
    int out = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (out < 0)
        return -errno;
    char chunk[65536];
    int rc = 0;
    off_t at = 0;
    for (;;) {
        ssize_t n = pread(in, chunk, sizeof(chunk), at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : 0;
            break;
        }
        rc = fl_write_all(out, chunk, (size_t)n);
        if (rc < 0)
            break;
        at += n;
    }
    close(out);
    if (rc < 0)
        unlinkat(dirfd, name, 0);
    return rc;
}

/* The regular file name in dirfd, opened for reading without following a
 * link or blocking on a fifo: -1 with errno ELOOP if it is not a regular
 * file (any more). */
static int open_file_at(int dirfd, const char *name, struct stat *st)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        errno = ELOOP;
        return -1;
    }
    return fd;
}

/* ---- removal ---- */

static int remove_dir(struct walk *w, int parent, const char *name, unsigned depth);

static int remove_entry(struct walk *w, int dirfd, const char *name, const struct stat *st,
                        unsigned depth, void *arg)
{
    (void)arg;
    if (S_ISDIR(st->st_mode))
        return remove_dir(w, dirfd, name, depth + 1);
    return unlinkat(dirfd, name, 0) == 0 || errno == ENOENT ? 0 : -errno;
}

/* Empty the directory name in parent, then remove it. Entries made while
 * it is emptied take another pass (a few at most; the entry bound ends a
 * writer that never stops). */
static int remove_dir(struct walk *w, int parent, const char *name, unsigned depth)
{
    for (int pass = 0;; pass++) {
        int fd = open_dir_at(parent, name);
        if (fd < 0) {
            if (errno == ENOENT)
                return 0;
            if (errno == ELOOP || errno == ENOTDIR) /* swapped for a file or link */
                return unlinkat(parent, name, 0) == 0 || errno == ENOENT ? 0 : -errno;
            return -errno;
        }
        int rc = each_entry(w, fd, depth, remove_entry, NULL);
        if (rc < 0)
            return rc;
        if (unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
            return 0;
        if ((errno != ENOTEMPTY && errno != EEXIST) || pass == 8)
            return -errno;
    }
}

int fl_remove_tree_at(int dirfd, const char *name, const struct fl_tree_limits *limits)
{
    struct walk w;
    walk_init(&w, limits);
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dirfd, name, 0) == 0 || errno == ENOENT ? 0 : -errno;
    return remove_dir(&w, dirfd, name, 0);
}

int fl_remove_tree(const char *path)
{
    char name[NAME_MAX + 1];
    int parent = open_parent(path, name, sizeof(name));
    if (parent < 0)
        return parent == -ENOENT ? 0 : parent;
    int rc = fl_remove_tree_at(parent, name, NULL);
    close(parent);
    return rc;
}

/* ---- linked copies ---- */

static int link_dir(struct walk *w, int from, int to, unsigned depth);

static int link_entry(struct walk *w, int from, const char *name, const struct stat *st,
                      unsigned depth, void *arg)
{
    int to = *(const int *)arg;
    if (S_ISDIR(st->st_mode)) {
        int sub = open_dir_at(from, name);
        if (sub < 0)
            return -errno; /* ELOOP: swapped for a link since it was listed */
        if (mkdirat(to, name, 0755) != 0) {
            int rc = -errno;
            close(sub);
            return rc;
        }
        int dst = open_dir_at(to, name);
        if (dst < 0) {
            int rc = -errno;
            close(sub);
            return rc;
        }
        int rc = link_dir(w, sub, dst, depth + 1);
        close(dst);
        return rc;
    }
    if (S_ISLNK(st->st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlinkat(from, name, target, sizeof(target) - 1);
        if (n < 0)
            return errno == EINVAL ? -ELOOP : -errno; /* no longer a link */
        target[n] = '\0';
        return symlinkat(target, to, name) == 0 ? 0 : -errno;
    }
    if (!S_ISREG(st->st_mode))
        return 0; /* fifos, sockets and devices are not code */
    w->st.bytes += (uint64_t)st->st_size;
    if (linkat(from, name, to, name, 0) == 0) {
        /* linkat never follows a link; whatever the entry became since it
         * was listed, only a file or a link stays */
        struct stat now;
        if (fstatat(to, name, &now, AT_SYMLINK_NOFOLLOW) != 0)
            return -errno;
        if (!S_ISREG(now.st_mode) && !S_ISLNK(now.st_mode))
            return unlinkat(to, name, 0) == 0 ? 0 : -errno;
        return 0;
    }
    if (errno != EXDEV && errno != EPERM && errno != EMLINK)
        return -errno;
    struct stat now;
    int in = open_file_at(from, name, &now);
    if (in < 0)
        return -errno;
    int rc = copy_to(in, to, name, now.st_mode & 0777);
    close(in);
    return rc;
}

/* Link the entries of from into to (both taken at depth; from is taken
 * over and closed, to stays the caller's). */
static int link_dir(struct walk *w, int from, int to, unsigned depth)
{
    return each_entry(w, from, depth, link_entry, &to);
}

int fl_link_tree(const char *src, const char *dst, const struct fl_tree_limits *limits)
{
    struct walk w;
    walk_init(&w, limits);
    int from = open_root(src);
    if (from < 0)
        return -errno;
    char name[NAME_MAX + 1];
    int parent = open_parent(dst, name, sizeof(name));
    if (parent < 0) {
        close(from);
        return parent;
    }
    int rc = 0, to = -1;
    if (mkdirat(parent, name, 0755) != 0 || (to = open_dir_at(parent, name)) < 0) {
        rc = -errno;
        close(from);
        goto out;
    }
    rc = link_dir(&w, from, to, 0);
    close(to);
out:
    close(parent);
    return rc;
}

/* ---- normalization ---- */

/* Give the file open at *fd (name in dirfd) an inode of its own: copy it
 * beside, then rename the copy over it. *fd becomes the copy. */
static int unshare_file(int dirfd, const char *name, int *fd)
{
    static unsigned counter;
    char tmp[64];
    int rc = -EEXIST;
    for (int i = 0; i < 100 && rc == -EEXIST; i++) {
        snprintf(tmp, sizeof(tmp), ".flint-unshare-%u-%u", (unsigned)getpid(),
                 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
        rc = copy_to(*fd, dirfd, tmp, 0600);
    }
    if (rc < 0)
        return rc;
    int copy = openat(dirfd, tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (copy < 0 || renameat(dirfd, tmp, dirfd, name) != 0) {
        rc = -errno;
        if (copy >= 0)
            close(copy);
        unlinkat(dirfd, tmp, 0);
        return rc;
    }
    close(*fd);
    *fd = copy;
    return 0;
}

/* Owned by root, mode as given, through the open descriptor. */
static int settle(int fd, mode_t mode)
{
    if (fchown(fd, 0, 0) != 0 || fchmod(fd, mode) != 0)
        return -errno;
    return 0;
}

static int normalize_entry(struct walk *w, int dirfd, const char *name, const struct stat *st,
                           unsigned depth, void *arg)
{
    (void)arg;
    if (S_ISDIR(st->st_mode)) {
        int fd = open_dir_at(dirfd, name);
        if (fd < 0)
            return -errno;
        int rc = settle(fd, 0755);
        if (rc < 0) {
            close(fd);
            return rc;
        }
        return each_entry(w, fd, depth + 1, normalize_entry, NULL);
    }
    if (S_ISLNK(st->st_mode))
        return fchownat(dirfd, name, 0, 0, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
    if (!S_ISREG(st->st_mode)) {
        w->st.removed++;
        return unlinkat(dirfd, name, 0) == 0 || errno == ENOENT ? 0 : -errno;
    }
    w->st.bytes += (uint64_t)st->st_size;
    if (w->lim.max_bytes != 0 && w->st.bytes > w->lim.max_bytes)
        return FL_ETOOBIG;
    struct stat now;
    int fd = open_file_at(dirfd, name, &now);
    if (fd < 0)
        return -errno;
    int rc = now.st_nlink > 1 ? unshare_file(dirfd, name, &fd) : 0;
    if (rc == 0)
        rc = settle(fd, now.st_mode & 0111 ? 0755 : 0644);
    close(fd);
    return rc;
}

int fl_normalize_tree(const char *path, const struct fl_tree_limits *limits,
                      struct fl_tree_stats *stats)
{
    struct walk w;
    walk_init(&w, limits);
    int fd = open_root(path);
    int rc = fd < 0 ? -errno : settle(fd, 0755);
    if (rc == 0)
        rc = each_entry(&w, fd, 0, normalize_entry, NULL);
    else if (fd >= 0)
        close(fd);
    if (stats != NULL)
        *stats = w.st;
    return rc;
}
