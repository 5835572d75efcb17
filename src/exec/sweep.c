/* Sweeps of unused directory entries (see sweep.h). */
#include "exec/sweep.h"

#include "base/error.h"
#include "base/fs.h"
#include "base/str.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TRASH_PREFIX "trash-" /* after the dot */

/* A growable list of names, bounded by FL_SWEEP_MAX_ENTRIES. */
struct names {
    char **v;
    size_t n, cap;
};

struct sweep {
    uv_work_t work;
    uv_loop_t *loop;
    char dir[PATH_MAX];
    struct names keep; /* sorted */
    uint64_t grace_ms;
    bool (*in_use)(const char *name, void *data);
    void *data;
    fl_sweep_cb cb;
    void *cb_data;
    int dirfd;
    struct names candidates; /* step 1's, for step 2 */
    struct names trash;      /* renamed away, for step 3 */
    int err;
    size_t removed;
};

static int names_add(struct names *l, const char *name)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = cap <= FL_SWEEP_MAX_ENTRIES ? realloc(l->v, cap * sizeof(*v)) : NULL;
        if (v == NULL)
            return FL_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    char *copy = fl_strndup(name, strlen(name));
    if (copy == NULL)
        return FL_ENOMEM;
    l->v[l->n++] = copy;
    return 0;
}

static void names_release(struct names *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool names_has(const struct names *l, const char *name)
{
    return l->n > 0 && bsearch(&name, l->v, l->n, sizeof(l->v[0]), compare_names) != NULL;
}

static void sweep_free(struct sweep *s)
{
    if (s->dirfd >= 0)
        close(s->dirfd);
    names_release(&s->keep);
    names_release(&s->candidates);
    names_release(&s->trash);
    free(s);
}

static void finish(struct sweep *s)
{
    fl_sweep_cb cb = s->cb;
    void *data = s->cb_data;
    int err = s->err;
    size_t removed = s->removed;
    sweep_free(s);
    cb(err, removed, data);
}

/* Step 1, on the thread pool: refresh what is kept, list the old rest. */
static void list_work(uv_work_t *w)
{
    struct sweep *s = w->data;
    s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (s->dirfd < 0) {
        s->err = errno == ENOENT ? 0 : -errno;
        return;
    }
    int fd = dup(s->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        s->err = -errno;
        if (fd >= 0)
            close(fd);
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    size_t seen = 0;
    struct dirent *e;
    while (s->err == 0 && seen++ < FL_SWEEP_MAX_ENTRIES && (e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (name[0] == '.') {
            if (strncmp(name + 1, TRASH_PREFIX, strlen(TRASH_PREFIX)) == 0)
                s->err = names_add(&s->trash, name);
            continue;
        }
        if (names_has(&s->keep, name)) {
            utimensat(s->dirfd, name, NULL, AT_SYMLINK_NOFOLLOW);
            continue;
        }
        struct stat st;
        if (fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        uint64_t mtime_ms =
            (uint64_t)st.st_mtim.tv_sec * 1000 + (uint64_t)st.st_mtim.tv_nsec / 1000000;
        if (now_ms > mtime_ms && now_ms - mtime_ms >= s->grace_ms)
            s->err = names_add(&s->candidates, name);
    }
    closedir(d);
}

/* Step 3, on the thread pool: remove what was renamed away. */
static void remove_work(uv_work_t *w)
{
    struct sweep *s = w->data;
    for (size_t i = 0; i < s->trash.n; i++) {
        int rc = fl_remove_tree_at(s->dirfd, s->trash.v[i], NULL);
        if (rc < 0 && s->err == 0)
            s->err = rc;
        else if (rc == 0)
            s->removed++;
    }
}

static void remove_done(uv_work_t *w, int status)
{
    struct sweep *s = w->data;
    if (s->err == 0 && status < 0)
        s->err = status;
    finish(s);
}

/* Step 2, on the loop: rename away what is still unused. */
static void list_done(uv_work_t *w, int status)
{
    struct sweep *s = w->data;
    if (s->err == 0 && status < 0)
        s->err = status;
    if (s->dirfd < 0) {
        finish(s);
        return;
    }
    for (size_t i = 0; i < s->candidates.n; i++) {
        const char *name = s->candidates.v[i];
        if (s->in_use(name, s->data))
            continue;
        char trash[NAME_MAX + 2];
        if ((size_t)snprintf(trash, sizeof(trash), "." TRASH_PREFIX "%s", name) >= sizeof(trash))
            continue;
        if (renameat(s->dirfd, name, s->dirfd, trash) == 0 && names_add(&s->trash, trash) < 0)
            break; /* renamed, not listed: the next sweep finds it */
    }
    if (s->trash.n == 0) {
        finish(s);
        return;
    }
    int rc = uv_queue_work(s->loop, &s->work, remove_work, remove_done);
    if (rc < 0) {
        s->err = rc;
        finish(s);
    }
}

int fl_sweep_start(uv_loop_t *loop, const struct fl_sweep_spec *spec, fl_sweep_cb cb, void *data)
{
    struct sweep *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return FL_ENOMEM;
    s->loop = loop;
    s->dirfd = -1;
    fl_strlcpy(s->dir, spec->dir, sizeof(s->dir));
    s->grace_ms = spec->grace_ms;
    s->in_use = spec->in_use;
    s->data = spec->data;
    s->cb = cb;
    s->cb_data = data;
    s->work.data = s;
    int rc = 0;
    for (size_t i = 0; i < spec->nkeep && rc == 0; i++)
        rc = names_add(&s->keep, spec->keep[i]);
    if (rc == 0 && s->keep.n > 0)
        qsort(s->keep.v, s->keep.n, sizeof(s->keep.v[0]), compare_names);
    if (rc == 0)
        rc = uv_queue_work(loop, &s->work, list_work, list_done);
    if (rc < 0)
        sweep_free(s);
    return rc;
}
