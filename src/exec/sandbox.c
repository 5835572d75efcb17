/*
 * The instance sandbox: see sandbox.h.
 *
 * The process chain of one instance:
 *
 *   flint-sandbox (root: cgroups, rlimits, binds opened, seccomp compiled,
 *                  then the sandbox's uid)
 *      bwrap --args N (the sandbox's uid: namespaces, mounts, the filter)
 *         ARGV...
 *
 * one pid all along (each execs the next; with network access the launcher
 * stays as the parent of bwrap and of slirp4netns), started detached so
 * that the tree has a process group of its own. The cgroup directories
 * are made before the spawn and removed after the tree is gone.
 */
#include "exec/sandbox.h"

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/str.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINE_MAX_BYTES (16 * 1024)
#define TMP_DEFAULT    (64ULL << 20)

extern char **environ;

enum cgroup_kind { CGROUP_NONE, CGROUP_V1, CGROUP_V2 };

static enum cgroup_kind cgroup_kind;
static bool cgroup_cpu; /* the cpu controller is usable too */

#define CPU_PERIOD_US 100000 /* CFS period; the quota is cpu_millis * 100 us per period */

struct fl_sandbox;

struct stream {
    uv_pipe_t pipe; /* its data points to this struct stream */
    struct fl_sandbox *sb;
    struct fl_buf line;
    bool is_stderr;
    bool closed;
};

struct fl_sandbox {
    uv_process_t proc;
    struct stream out, err;
    uv_timer_t kill_timer;
    fl_sandbox_line_cb on_line;
    fl_sandbox_exit_cb on_exit;
    void *data;
    int handles;
    bool exited, stopping;
    bool failed; /* the spawn failed: no callback, just free */
    int64_t status;
    int term_signal;
    bool bwrap;
    const struct fl_sandbox_mode *mode;
    uid_t uid;       /* its host uid (and gid), from the mode's range */
    long marked[16]; /* its processes when fl_sandbox_mark() was called */
    int nmarked;
    char cgroups[3][512]; /* memory, pids, cpu group directories ("" if none) */
};

/* ---- host uids: one per live sandbox, from the mode's range ---- */

#define UID_SLOTS_MAX 65536
static unsigned char uid_used[UID_SLOTS_MAX / 8];
static unsigned uid_next;

static unsigned uids_base = FL_SANDBOX_UID_BASE, uids_count = FL_SANDBOX_UID_COUNT;

void fl_sandbox_use_uids(unsigned base, unsigned count)
{
    uids_base = base;
    uids_count = count < UID_SLOTS_MAX ? count : UID_SLOTS_MAX;
}

static uid_t uid_take(const struct fl_sandbox_mode *mode)
{
    unsigned count = mode->uid_count < UID_SLOTS_MAX ? mode->uid_count : UID_SLOTS_MAX;
    if (uid_next == 0) {
        /* start somewhere else in every process, so that two flintds
         * sharing a range rarely meet */
        uint32_t r = (uint32_t)getpid() * 2654435761u;
        uid_next = r % count + 1;
    }
    for (unsigned i = 0; i < count; i++) {
        unsigned slot = (uid_next + i) % count;
        if (uid_used[slot / 8] & (1u << (slot % 8)))
            continue;
        uid_used[slot / 8] |= (unsigned char)(1u << (slot % 8));
        uid_next = slot + 1;
        return (uid_t)(mode->uid_base + slot);
    }
    return 0;
}

static void uid_give_back(const struct fl_sandbox_mode *mode, uid_t uid)
{
    if (uid < mode->uid_base || uid - mode->uid_base >= UID_SLOTS_MAX)
        return;
    unsigned slot = uid - mode->uid_base;
    uid_used[slot / 8] &= (unsigned char)~(1u << (slot % 8));
}

/* ---- probing ---- */

static bool writable_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) && access(path, W_OK) == 0;
}

/* Write text to a cgroup or proc file in one write. A signal that comes
 * while the kernel works on it (a memory limit reclaims pages first, and
 * SIGCHLD arrives often here) makes it fail with EINTR: write again. */
static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    ssize_t n;
    while ((n = write(fd, text, len)) < 0 && errno == EINTR) {
    }
    int rc = n == (ssize_t)len ? 0 : n < 0 ? -errno : FL_EIO;
    close(fd);
    return rc;
}

/* The launcher next to this program: DIR/flint-sandbox or DIR/../bin/. */
static void find_launcher(char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    out[0] = '\0';
    if (n <= 0)
        return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return;
    *slash = '\0';
    const char *const candidates[] = {"%s/flint-sandbox", "%s/../bin/flint-sandbox"};
    for (size_t i = 0; i < 2; i++) {
        int len = snprintf(out, size, candidates[i], exe);
        if (len > 0 && (size_t)len < size && access(out, X_OK) == 0)
            return;
    }
    out[0] = '\0';
}

static int launch_description(const struct fl_sandbox_mode *mode,
                              const struct fl_sandbox_spec *spec, uid_t uid,
                              const char *const *cgroup_procs, struct fl_buf *d);

/* The description in a memfd for the launcher's fd 3 (close-on-exec here:
 * the spawn dups it): no argument list or environment outside the sandbox
 * holds the function's variables. The descriptor, or a negative errno. */
static int description_memfd(const struct fl_buf *d)
{
    int fd = memfd_create("flint-launch", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fl_write_all(fd, d->data, d->len);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

/* Run the whole chain once on /usr/bin/true, as an instance would run. */
static bool launch_works(struct fl_sandbox_mode *mode)
{
    const char *argv[] = {"/usr/bin/true", NULL};
    const char *env[] = {NULL};
    struct fl_sandbox_spec spec = {.argv = argv, .env = env, .listen_fd = -1};
    struct fl_buf d;
    fl_buf_init(&d, 1u << 20);
    bool ok = false;
    int fd = -1;
    uid_t uid = uid_take(mode);
    if (uid == 0 || launch_description(mode, &spec, uid, NULL, &d) < 0)
        goto out;
    fd = description_memfd(&d);
    if (fd < 0)
        goto out;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd, 3);
    char *const args[] = {"flint-sandbox", NULL};
    char *const noenv[] = {NULL};
    pid_t pid;
    if (posix_spawn(&pid, mode->launcher, &fa, NULL, args, noenv) == 0) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    posix_spawn_file_actions_destroy(&fa);
out:
    if (fd >= 0)
        close(fd);
    if (uid != 0)
        uid_give_back(mode, uid);
    fl_buf_release(&d);
    return ok;
}

void fl_sandbox_probe(struct fl_sandbox_mode *mode, bool force_rlimits_only)
{
    memset(mode, 0, sizeof(*mode));
    mode->uid_base = uids_base;
    mode->uid_count = uids_count;
    find_launcher(mode->launcher, sizeof(mode->launcher));
    mode->slirp4netns = access("/usr/bin/slirp4netns", X_OK) == 0;
    if (!force_rlimits_only && mode->launcher[0] != '\0' && access("/usr/bin/bwrap", X_OK) == 0) {
        mode->bwrap = true;
        mode->bwrap = launch_works(mode);
    }
    if (access("/sys/fs/cgroup/cgroup.controllers", R_OK) == 0 && writable_dir("/sys/fs/cgroup")) {
        mkdir("/sys/fs/cgroup/flint", 0755);
        if (write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory +pids") == 0 &&
            write_file("/sys/fs/cgroup/flint/cgroup.subtree_control", "+memory +pids") == 0)
            cgroup_kind = CGROUP_V2;
        cgroup_cpu = cgroup_kind == CGROUP_V2 &&
                     write_file("/sys/fs/cgroup/cgroup.subtree_control", "+cpu") == 0 &&
                     write_file("/sys/fs/cgroup/flint/cgroup.subtree_control", "+cpu") == 0;
    } else if (writable_dir("/sys/fs/cgroup/memory") && writable_dir("/sys/fs/cgroup/pids")) {
        mkdir("/sys/fs/cgroup/memory/flint", 0755);
        mkdir("/sys/fs/cgroup/pids/flint", 0755);
        if (writable_dir("/sys/fs/cgroup/memory/flint") &&
            writable_dir("/sys/fs/cgroup/pids/flint"))
            cgroup_kind = CGROUP_V1;
        if (cgroup_kind == CGROUP_V1 && writable_dir("/sys/fs/cgroup/cpu")) {
            mkdir("/sys/fs/cgroup/cpu/flint", 0755);
            cgroup_cpu = writable_dir("/sys/fs/cgroup/cpu/flint");
        }
    }
    mode->cgroup = cgroup_kind != CGROUP_NONE;
    snprintf(mode->description, sizeof(mode->description), "%s%s%s%s",
             mode->bwrap                 ? "bwrap+seccomp"
             : mode->launcher[0] == '\0' ? "rlimits only (flint-sandbox not found)"
                                         : "rlimits only (bubblewrap missing or unusable)",
             cgroup_kind == CGROUP_V2   ? "+cgroup-v2"
             : cgroup_kind == CGROUP_V1 ? "+cgroup-v1"
                                        : " (no writable cgroup)",
             cgroup_cpu ? "+cpu" : "", mode->slirp4netns ? "+slirp4netns" : "");
}

/* ---- cgroups ---- */

/* Write a printf-formatted value to dir/file (a cgroup control file). */
static int set_value(const char *dir, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_value(const char *dir, const char *file, const char *fmt, ...)
{
    char path[600], value[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    return write_file(path, value);
}

/* A limit that did not take is an error: an instance never runs without
 * the limits it was given. Swap is best effort (swap accounting may be
 * off, and then there is nothing to limit). */
static int make_cgroups(struct fl_sandbox *sb, const struct fl_limits *limits)
{
    static unsigned counter;
    char name[64];
    int rc = 0;
    snprintf(name, sizeof(name), "i%d-%u", (int)getpid(), ++counter);
    long long quota = (long long)limits->cpu_millis * 100;
    if (cgroup_kind == CGROUP_V2) {
        const char *dir = sb->cgroups[0];
        snprintf(sb->cgroups[0], sizeof(sb->cgroups[0]), "/sys/fs/cgroup/flint/%s", name);
        if (mkdir(dir, 0755) != 0)
            return -errno;
        rc = set_value(dir, "memory.max", "%llu", (unsigned long long)limits->memory_bytes);
        set_value(dir, "memory.swap.max", "0");
        rc = rc ? rc : set_value(dir, "pids.max", "%lld", (long long)limits->processes);
        if (rc == 0 && cgroup_cpu && limits->cpu_millis > 0)
            rc = set_value(dir, "cpu.max", "%lld %d", quota, CPU_PERIOD_US);
    } else if (cgroup_kind == CGROUP_V1) {
        snprintf(sb->cgroups[0], sizeof(sb->cgroups[0]), "/sys/fs/cgroup/memory/flint/%s", name);
        snprintf(sb->cgroups[1], sizeof(sb->cgroups[1]), "/sys/fs/cgroup/pids/flint/%s", name);
        for (int i = 0; i < 2; i++)
            if (mkdir(sb->cgroups[i], 0755) != 0)
                return -errno;
        rc = set_value(sb->cgroups[0], "memory.limit_in_bytes", "%llu",
                       (unsigned long long)limits->memory_bytes);
        rc = rc ? rc : set_value(sb->cgroups[1], "pids.max", "%lld", (long long)limits->processes);
        if (rc == 0 && cgroup_cpu && limits->cpu_millis > 0) {
            snprintf(sb->cgroups[2], sizeof(sb->cgroups[2]), "/sys/fs/cgroup/cpu/flint/%s", name);
            if (mkdir(sb->cgroups[2], 0755) != 0)
                return -errno;
            rc = set_value(sb->cgroups[2], "cpu.cfs_period_us", "%d", CPU_PERIOD_US);
            rc = rc ? rc : set_value(sb->cgroups[2], "cpu.cfs_quota_us", "%lld", quota);
        }
    }
    return rc;
}

/* Send sig to every process of the cgroup directory dir. */
static void kill_members(const char *dir, int sig)
{
    char path[600];
    if (fl_path_join(path, sizeof(path), dir, "cgroup.procs") < 0)
        return;
    FILE *f = fopen(path, "re");
    long pid;
    while (f != NULL && fscanf(f, "%ld", &pid) == 1)
        kill((pid_t)pid, sig);
    if (f != NULL)
        fclose(f);
}

/* Kill what is in a cgroup directory and remove it. */
static int kill_and_remove(const char *dir)
{
    for (int tries = 0; tries < 100; tries++) {
        kill_members(dir, SIGKILL);
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY)
            return -errno;
        usleep(5000);
    }
    return FL_EAGAIN;
}

/* Whether the process that made a group still runs: a zombie (killed, not
 * yet reaped by its parent) does not. */
static bool owner_alive(long pid)
{
    if (pid == (long)getpid())
        return true;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return false;
    char path[64], stat[512];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    size_t n = f != NULL ? fread(stat, 1, sizeof(stat) - 1, f) : 0;
    if (f != NULL)
        fclose(f);
    stat[n] = '\0';
    const char *end = strrchr(stat, ')'); /* "pid (comm) S ...": comm may hold anything */
    if (end == NULL)
        return n == 0 ? false : true;
    return !(end[1] == ' ' && (end[2] == 'Z' || end[2] == 'X'));
}

int fl_sandbox_cleanup_stale(void)
{
    static const char *const parents[] = {"/sys/fs/cgroup/flint", "/sys/fs/cgroup/memory/flint",
                                          "/sys/fs/cgroup/pids/flint", "/sys/fs/cgroup/cpu/flint"};
    int removed = 0;
    for (size_t i = 0; i < sizeof(parents) / sizeof(parents[0]); i++) {
        DIR *d = opendir(parents[i]);
        if (d == NULL)
            continue;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            long pid;
            unsigned n;
            if (sscanf(e->d_name, "i%ld-%u", &pid, &n) != 2 || owner_alive(pid))
                continue;
            char dir[600];
            snprintf(dir, sizeof(dir), "%s/%s", parents[i], e->d_name);
            if (kill_and_remove(dir) == 0)
                removed++;
            else
                fl_log(FL_LOG_WARN, "sandbox", "cannot remove a stale cgroup", "cgroup=%s", dir);
        }
        closedir(d);
    }
    if (removed > 0)
        fl_log(FL_LOG_WARN, "sandbox", "removed cgroups left by a flintd that died", "cgroups=%d",
               removed);
    return removed;
}

/* Signal every process of the tree: its process group and its cgroup. */
static void signal_tree(struct fl_sandbox *sb, int sig)
{
    if (sb->proc.pid > 0)
        kill(-sb->proc.pid, sig);
    for (int i = 0; i < 3; i++)
        if (sb->cgroups[i][0] != '\0')
            kill_members(sb->cgroups[i], sig);
}

static bool memory_limit_hit(const struct fl_sandbox *sb)
{
    if (sb->cgroups[0][0] == '\0')
        return false;
    char path[600], line[128];
    bool hit = false;
    if (cgroup_kind == CGROUP_V1) {
        snprintf(path, sizeof(path), "%s/memory.failcnt", sb->cgroups[0]);
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            hit = fgets(line, sizeof(line), f) != NULL && strtol(line, NULL, 10) > 0;
            fclose(f);
        }
    } else {
        snprintf(path, sizeof(path), "%s/memory.events", sb->cgroups[0]);
        FILE *f = fopen(path, "r");
        while (f != NULL && fgets(line, sizeof(line), f) != NULL)
            if ((fl_str_has_prefix(line, "max ") || fl_str_has_prefix(line, "oom_kill ")) &&
                strtol(strchr(line, ' ') + 1, NULL, 10) > 0)
                hit = true;
        if (f != NULL)
            fclose(f);
    }
    return hit;
}

bool fl_sandbox_oom_killed(const struct fl_sandbox *sb)
{
    if (sb->cgroups[0][0] == '\0')
        return false;
    char path[600], line[128];
    bool killed = false;
    snprintf(path, sizeof(path), "%s/%s", sb->cgroups[0],
             cgroup_kind == CGROUP_V1 ? "memory.oom_control" : "memory.events");
    FILE *f = fopen(path, "re");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (fl_str_has_prefix(line, "oom_kill ") && strtol(line + 9, NULL, 10) > 0)
            killed = true;
    if (f != NULL)
        fclose(f);
    return killed;
}

/* Remove the groups of a sandbox whose spawn failed (nothing ran in them). */
static void remove_cgroups(struct fl_sandbox *sb)
{
    for (int i = 0; i < 3; i++)
        if (sb->cgroups[i][0] != '\0')
            rmdir(sb->cgroups[i]);
}

/*
 * The groups of a finished sandbox, and its uid: a group whose last
 * processes are still exiting (a straggler, a big one freeing its memory)
 * cannot be removed yet, and its uid must not serve another sandbox while
 * any process of it lives. The first try is on the loop; the retries, which
 * wait, run on the thread pool, and the uid is given back after them.
 */
struct reap {
    uv_work_t work;
    struct fl_sandbox_mode mode; /* a copy: the caller's may be gone when the work ends */
    uid_t uid;
    char dirs[3][512];
    bool left; /* a group could not be removed */
};

static bool reap_try(struct reap *r)
{
    bool all = true;
    for (int i = 0; i < 3; i++) {
        if (r->dirs[i][0] == '\0')
            continue;
        if (rmdir(r->dirs[i]) == 0 || errno == ENOENT)
            r->dirs[i][0] = '\0';
        else
            all = false;
    }
    return all;
}

static void reap_work(uv_work_t *w)
{
    struct reap *r = w->data;
    for (int tries = 0; tries < 500; tries++) { /* up to about 10 s */
        for (int i = 0; i < 3; i++)
            if (r->dirs[i][0] != '\0')
                kill_members(r->dirs[i], SIGKILL);
        if (reap_try(r))
            return;
        usleep(tries < 50 ? 2000 : 20000);
    }
    r->left = true;
}

static void reap_done(uv_work_t *w, int status)
{
    struct reap *r = w->data;
    if (r->left)
        for (int i = 0; i < 3; i++)
            if (r->dirs[i][0] != '\0')
                fl_log(FL_LOG_WARN, "sandbox",
                       "a cgroup is still busy after its sandbox ended; its uid stays taken",
                       "cgroup=%s uid=%u", r->dirs[i], (unsigned)r->uid);
    if (!r->left)
        uid_give_back(&r->mode, r->uid);
    free(r);
}

static void reap(struct fl_sandbox *sb)
{
    struct reap *r = calloc(1, sizeof(*r));
    if (r == NULL) { /* keep the uid taken: it is never given to another while unsure */
        remove_cgroups(sb);
        return;
    }
    r->mode = *sb->mode;
    r->uid = sb->uid;
    memcpy(r->dirs, sb->cgroups, sizeof(r->dirs));
    r->work.data = r;
    if (reap_try(r) || uv_queue_work(sb->proc.loop, &r->work, reap_work, reap_done) != 0) {
        if (r->dirs[0][0] == '\0' && r->dirs[1][0] == '\0' && r->dirs[2][0] == '\0')
            uid_give_back(&r->mode, r->uid);
        free(r);
    }
}

/* Whether memory must be limited by RLIMIT_DATA: without a cgroup, except
 * in a build under AddressSanitizer, whose shadow memory cannot live under
 * a data limit (the runtimes of such a build are sanitized too). */
static bool memory_by_rlimit(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return false;
#else
    return cgroup_kind == CGROUP_NONE;
#endif
}

/* ---- the process ---- */

static void finish(struct fl_sandbox *sb)
{
    enum fl_sandbox_exit how = FL_EXIT_NORMAL;
    int value = (int)sb->status;
    int sig = sb->term_signal;
    if (sb->bwrap && sig == 0 && sb->status > 128 && sb->status < 128 + 65) {
        sig = (int)sb->status - 128; /* bwrap exits 128+N when its child dies by signal N */
    }
    /* a tree that died of something else before the stop took hold keeps
     * its real cause (a crash, a limit) */
    bool stopped = sig == SIGTERM || sig == SIGKILL || (sig == 0 && (value == 0 || value == 143));
    if (sb->stopping && stopped)
        how = FL_EXIT_STOPPED, value = sig;
    else if (sig == SIGXCPU)
        how = FL_EXIT_CPU, value = sig;
    else if (memory_limit_hit(sb))
        how = FL_EXIT_MEMORY, value = sig;
    else if (sig != 0)
        how = FL_EXIT_SIGNAL, value = sig;
    signal_tree(sb, SIGKILL); /* nothing of it may outlive it */
    reap(sb);                 /* its groups, then its uid */
    sb->on_exit(sb, how, value, sb->data);
}

static void handle_closed(uv_handle_t *h)
{
    struct fl_sandbox *sb =
        h->type == UV_NAMED_PIPE ? ((struct stream *)h->data)->sb : (struct fl_sandbox *)h->data;
    if (--sb->handles > 0)
        return;
    if (!sb->failed)
        finish(sb);
    fl_buf_release(&sb->out.line);
    fl_buf_release(&sb->err.line);
    free(sb);
}

static void close_all_if_done(struct fl_sandbox *sb)
{
    if (!sb->exited || !sb->out.closed || !sb->err.closed)
        return;
    uv_close((uv_handle_t *)&sb->proc, handle_closed);
    uv_close((uv_handle_t *)&sb->out.pipe, handle_closed);
    uv_close((uv_handle_t *)&sb->err.pipe, handle_closed);
    uv_close((uv_handle_t *)&sb->kill_timer, handle_closed);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    struct fl_sandbox *sb = p->data;
    sb->exited = true;
    sb->status = status;
    sb->term_signal = term_signal;
    uv_timer_stop(&sb->kill_timer);
    /* leftovers (rlimits-only mode) would hold the pipes open */
    signal_tree(sb, SIGKILL);
    close_all_if_done(sb);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[65536];
    buf->base = scratch;
    buf->len = sizeof(scratch);
}

static void emit_line(struct fl_sandbox *sb, struct stream *s)
{
    sb->on_line(sb, s->is_stderr, s->line.data ? s->line.data : "", s->line.len, sb->data);
    fl_buf_reset(&s->line);
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    struct stream *s = stream->data;
    struct fl_sandbox *sb = s->sb;
    if (n < 0) {
        if (s->line.len > 0)
            emit_line(sb, s);
        uv_read_stop(stream);
        s->closed = true;
        close_all_if_done(sb);
        return;
    }
    /* whole runs between newlines at a time: a function that floods its
     * output costs a memchr and a copy per line, not a call per byte */
    const char *p = buf->base, *end = buf->base + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl != NULL ? nl : end;
        while (p < stop) {
            size_t room = LINE_MAX_BYTES - s->line.len;
            size_t take = (size_t)(stop - p) < room ? (size_t)(stop - p) : room;
            if (take > 0 && fl_buf_append(&s->line, p, take) < 0)
                take = (size_t)(stop - p); /* out of memory: this run is lost */
            p += take;
            if (p < stop)
                emit_line(sb, s); /* a line past the bound is cut there */
        }
        if (nl != NULL) {
            emit_line(sb, s);
            p = nl + 1;
        }
    }
}

static void on_kill_timer(uv_timer_t *t)
{
    signal_tree(t->data, SIGKILL);
}

void fl_sandbox_stop(struct fl_sandbox *sb, uint64_t grace_ms)
{
    if (sb->exited || sb->stopping)
        return;
    sb->stopping = true;
    signal_tree(sb, SIGTERM);
    uv_timer_start(&sb->kill_timer, on_kill_timer, grace_ms, 0);
}

/* The cgroup directory that lists every process of the sandbox ("" if none). */
static const char *procs_group(const struct fl_sandbox *sb)
{
    return cgroup_kind == CGROUP_V1 ? sb->cgroups[1] : sb->cgroups[0];
}

/* Call fn(pid) for every process of the sandbox's cgroup. */
static void each_process(const struct fl_sandbox *sb, void (*fn)(struct fl_sandbox *, long),
                         struct fl_sandbox *arg)
{
    char path[600];
    if (procs_group(sb)[0] == '\0')
        return;
    snprintf(path, sizeof(path), "%s/cgroup.procs", procs_group(sb));
    FILE *f = fopen(path, "re");
    long pid;
    while (f != NULL && fscanf(f, "%ld", &pid) == 1)
        fn(arg, pid);
    if (f != NULL)
        fclose(f);
}

static void mark_one(struct fl_sandbox *sb, long pid)
{
    if (sb->nmarked < (int)(sizeof(sb->marked) / sizeof(sb->marked[0])))
        sb->marked[sb->nmarked++] = pid;
}

void fl_sandbox_mark(struct fl_sandbox *sb)
{
    sb->nmarked = 0;
    each_process(sb, mark_one, sb);
}

static int strays_killed;

static void end_one(struct fl_sandbox *sb, long pid)
{
    for (int i = 0; i < sb->nmarked; i++)
        if (sb->marked[i] == pid)
            return;
    if (kill((pid_t)pid, SIGKILL) == 0)
        strays_killed++;
}

int fl_sandbox_end_strays(struct fl_sandbox *sb)
{
    if (sb->nmarked == 0 || sb->exited || sb->stopping)
        return 0;
    strays_killed = 0;
    each_process(sb, end_one, sb);
    return strays_killed;
}

int fl_sandbox_pid(const struct fl_sandbox *sb)
{
    return sb->proc.pid;
}

const char *fl_sandbox_cgroup(const struct fl_sandbox *sb)
{
    return procs_group(sb);
}

/* One item of the launch description: "key=value" and a NUL. */
static int item(struct fl_buf *d, const char *key, const char *value)
{
    int rc = fl_buf_append(d, key, strlen(key));
    rc = rc ? rc : fl_buf_appendc(d, '=');
    rc = rc ? rc : fl_buf_append(d, value, strlen(value));
    return rc ? rc : fl_buf_appendc(d, '\0');
}

static int itemf(struct fl_buf *d, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int itemf(struct fl_buf *d, const char *key, const char *fmt, ...)
{
    char value[PATH_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(value))
        return FL_ETOOBIG;
    return item(d, key, value);
}

static int bind_item(struct fl_buf *d, const char *key, const char *dest, const char *source)
{
    return itemf(d, key, "%s\t%s", dest, source);
}

/* Bind a system directory read-only, or recreate it as the symlink it is. */
static int add_system_dir(struct fl_buf *d, const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) != 0)
        return 0;
    if (S_ISLNK(st.st_mode)) {
        char target[256];
        ssize_t len = readlink(dir, target, sizeof(target) - 1);
        if (len <= 0)
            return 0;
        target[len] = '\0';
        int rc = item(d, "arg", "--symlink");
        rc = rc ? rc : item(d, "arg", target);
        return rc ? rc : item(d, "arg", dir);
    }
    int rc = item(d, "arg", "--ro-bind");
    rc = rc ? rc : item(d, "arg", dir);
    return rc ? rc : item(d, "arg", dir);
}

/* The arguments of bwrap that do not depend on the launcher's descriptors. */
static int bwrap_items(const struct fl_sandbox_spec *spec, struct fl_buf *d)
{
    static const char *const base[] = {
        "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
        "--cap-drop", "ALL", "--uid", "65534", "--gid", "65534", "--proc", "/proc",
        /* what bwrap leaves writable in /proc: read-only (and the host's
         * permissions would refuse the unprivileged uid anyway) */
        "--ro-bind-try", "/proc/sys", "/proc/sys", "--ro-bind-try", "/proc/sysrq-trigger",
        "/proc/sysrq-trigger", "--ro-bind-try", "/proc/irq", "/proc/irq", "--ro-bind-try",
        "/proc/bus", "/proc/bus", "--dev", "/dev", "--dir", "/run", "--clearenv", "--chdir", "/tmp",
        "--ro-bind", "/usr", "/usr", NULL};
    static const char *const etc[] = {"/etc/passwd",       "/etc/group",         "/etc/hosts",
                                      "/etc/resolv.conf",  "/etc/nsswitch.conf", "/etc/ssl",
                                      "/etc/alternatives", "/etc/ld.so.cache",   "/etc/localtime"};
    static const char *const dirs[] = {"/bin", "/sbin", "/lib", "/lib64", "/lib32"};
    int rc = 0;
    for (size_t i = 0; rc == 0 && base[i] != NULL; i++)
        rc = item(d, "arg", base[i]);
    /* a private /tmp of bounded size, on no host disk */
    rc = rc ? rc : item(d, "arg", "--size");
    rc = rc ? rc
            : itemf(d, "arg", "%llu",
                    (unsigned long long)(spec->tmp_bytes ? spec->tmp_bytes : TMP_DEFAULT));
    rc = rc ? rc : item(d, "arg", "--tmpfs");
    rc = rc ? rc : item(d, "arg", "/tmp");
    for (size_t i = 0; rc == 0 && i < sizeof(dirs) / sizeof(dirs[0]); i++)
        rc = add_system_dir(d, dirs[i]);
    for (size_t i = 0; rc == 0 && i < sizeof(etc) / sizeof(etc[0]); i++) {
        if (spec->network && strcmp(etc[i], "/etc/resolv.conf") == 0)
            continue; /* the launcher gives slirp4netns's resolver */
        rc = item(d, "arg", "--ro-bind-try");
        rc = rc ? rc : item(d, "arg", etc[i]);
        rc = rc ? rc : item(d, "arg", etc[i]);
    }
    if (rc == 0 && spec->code_dir != NULL)
        rc = bind_item(d, "bind-ro", "/code", spec->code_dir);
    if (rc == 0 && spec->runtime_dir != NULL)
        rc = bind_item(d, "bind-ro", "/runtime", spec->runtime_dir);
    if (rc == 0 && spec->out_dir != NULL)
        rc = bind_item(d, "bind-rw", "/run/flint", spec->out_dir);
    if (rc == 0 && spec->publish_dir != NULL)
        rc = bind_item(d, "bind-ro", "/run/flint", spec->publish_dir);
    return rc;
}

/*
 * The launch description (see sandbox.h): what the launcher needs, and
 * nothing it could be tricked by. cgroup_procs: NULL-terminated paths.
 */
static int launch_description(const struct fl_sandbox_mode *mode,
                              const struct fl_sandbox_spec *spec, uid_t uid,
                              const char *const *cgroup_procs, struct fl_buf *d)
{
    int rc = item(d, "version", "1");
    rc = rc ? rc : itemf(d, "uid", "%u", (unsigned)uid);
    rc = rc ? rc : itemf(d, "gid", "%u", (unsigned)uid);
    for (size_t i = 0; rc == 0 && cgroup_procs != NULL && cgroup_procs[i] != NULL; i++)
        rc = item(d, "cgroup", cgroup_procs[i]);
    const struct fl_limits *l = &spec->limits;
    if (rc == 0 && l->cpu_seconds > 0)
        rc = itemf(d, "rlimit", "cpu:%lld:%lld", (long long)l->cpu_seconds,
                   (long long)l->cpu_seconds + 1);
    if (rc == 0 && l->open_files > 0)
        rc = itemf(d, "rlimit", "nofile:%lld:%lld", (long long)l->open_files,
                   (long long)l->open_files);
    if (rc == 0 && l->processes > 0)
        rc =
            itemf(d, "rlimit", "nproc:%lld:%lld", (long long)l->processes, (long long)l->processes);
    rc = rc ? rc : itemf(d, "rlimit", "fsize:%llu:%llu", 1ULL << 30, 1ULL << 30);
    rc = rc ? rc : item(d, "rlimit", "core:0:0");
    /* Memory: the cgroup's limit counts what is really used; the data
     * rlimit, which counts reservations too (node's heap, ASan's shadow),
     * is only the fallback where no cgroup is writable. */
    if (rc == 0 && memory_by_rlimit() && l->memory_bytes > 0)
        rc = itemf(d, "rlimit", "data:%llu:%llu", (unsigned long long)l->memory_bytes,
                   (unsigned long long)l->memory_bytes);
    for (size_t i = 0; rc == 0 && spec->env != NULL && spec->env[i] != NULL; i++)
        rc = strchr(spec->env[i], '=') != NULL ? item(d, "env", spec->env[i]) : FL_EINVAL;
    for (size_t i = 0; rc == 0 && spec->argv[i] != NULL; i++)
        rc = item(d, "argv", spec->argv[i]);
    if (rc == 0 && mode->bwrap) {
        rc = item(d, "bwrap", "/usr/bin/bwrap");
        rc = rc ? rc : item(d, "seccomp", "1");
        if (rc == 0 && spec->network)
            rc = item(d, "slirp4netns", "/usr/bin/slirp4netns");
        rc = rc ? rc : bwrap_items(spec, d);
    }
    return rc;
}

int fl_sandbox_spawn(uv_loop_t *loop, const struct fl_sandbox_mode *mode,
                     const struct fl_sandbox_spec *spec, fl_sandbox_line_cb on_line,
                     fl_sandbox_exit_cb on_exit, void *data, struct fl_sandbox **out)
{
    if (mode->launcher[0] == '\0')
        return FL_ENOENT;
    if (spec->network && mode->bwrap && !mode->slirp4netns)
        return -ENOTSUP;
    struct fl_sandbox *sb = calloc(1, sizeof(*sb));
    if (sb == NULL)
        return FL_ENOMEM;
    sb->on_line = on_line;
    sb->on_exit = on_exit;
    sb->data = data;
    sb->bwrap = mode->bwrap;
    sb->mode = mode;
    struct fl_buf d;
    fl_buf_init(&d, 4u << 20);
    int desc_fd = -1;
    char procs[3][600];
    const char *cgroup_procs[4];
    size_t nprocs = 0;
    sb->uid = uid_take(mode);
    int rc = sb->uid != 0 ? make_cgroups(sb, &spec->limits) : FL_EAGAIN;
    if (rc < 0)
        goto out_fail;
    for (int i = 0; i < 3; i++) {
        if (sb->cgroups[i][0] == '\0')
            continue;
        snprintf(procs[i], sizeof(procs[i]), "%s/cgroup.procs", sb->cgroups[i]);
        cgroup_procs[nprocs++] = procs[i];
    }
    cgroup_procs[nprocs] = NULL;
    rc = launch_description(mode, spec, sb->uid, cgroup_procs, &d);
    if (rc < 0)
        goto out_fail;
    desc_fd = description_memfd(&d);
    if (desc_fd < 0) {
        rc = desc_fd;
        goto out_fail;
    }

    fl_buf_init(&sb->out.line, LINE_MAX_BYTES);
    fl_buf_init(&sb->err.line, LINE_MAX_BYTES);
    sb->err.is_stderr = true;
    uv_pipe_init(loop, &sb->out.pipe, 0);
    uv_pipe_init(loop, &sb->err.pipe, 0);
    uv_timer_init(loop, &sb->kill_timer);
    sb->out.pipe.data = &sb->out;
    sb->err.pipe.data = &sb->err;
    sb->out.sb = sb->err.sb = sb;
    sb->kill_timer.data = sb;
    sb->proc.data = sb;
    sb->handles = 4;
    uv_stdio_container_t stdio[5] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&sb->out.pipe},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&sb->err.pipe},
        {.flags = UV_INHERIT_FD, .data.fd = desc_fd},
        {.flags = spec->listen_fd >= 0 ? UV_INHERIT_FD : UV_IGNORE, .data.fd = spec->listen_fd},
    };
    char *args[] = {"flint-sandbox", NULL};
    char *noenv[] = {NULL};
    uv_process_options_t opts = {.file = mode->launcher,
                                 .args = args,
                                 .env = noenv,
                                 .exit_cb = on_exit_cb,
                                 .stdio = stdio,
                                 .stdio_count = 5,
                                 .flags = UV_PROCESS_DETACHED};
    rc = uv_spawn(loop, &sb->proc, &opts);
    close(desc_fd);
    fl_buf_release(&d);
    if (rc < 0) {
        fl_log(FL_LOG_ERROR, "sandbox", "cannot start an instance", "err=\"%s\"", uv_strerror(rc));
        /* closed from the loop and freed then, without a callback */
        sb->failed = true;
        remove_cgroups(sb);
        uid_give_back(mode, sb->uid);
        uv_close((uv_handle_t *)&sb->proc, handle_closed);
        uv_close((uv_handle_t *)&sb->out.pipe, handle_closed);
        uv_close((uv_handle_t *)&sb->err.pipe, handle_closed);
        uv_close((uv_handle_t *)&sb->kill_timer, handle_closed);
        return rc;
    }
    uv_read_start((uv_stream_t *)&sb->out.pipe, alloc_cb, on_read);
    uv_read_start((uv_stream_t *)&sb->err.pipe, alloc_cb, on_read);
    *out = sb;
    return 0;

out_fail:
    if (desc_fd >= 0)
        close(desc_fd);
    fl_buf_release(&d);
    remove_cgroups(sb);
    if (sb->uid != 0)
        uid_give_back(mode, sb->uid);
    free(sb);
    return rc;
}
