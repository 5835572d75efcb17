/*
 * The instance sandbox: see sandbox.h.
 *
 * The process chain of one instance:
 *
 *   sh -c '<join cgroups>; exec "$@"' flint-sandbox
 *      prlimit --data=M --cpu=S:S+1 --nofile=F --nproc=P --fsize=.. --core=0 --
 *         bwrap <namespaces and binds> -- ARGV...
 *
 * all one pid (each execs the next), started detached so that the tree has
 * a process group of its own. The cgroup directories are made before the
 * spawn and removed after the tree is gone.
 */
#include "exec/sandbox.h"

#include "base/buf.h"
#include "base/error.h"
#include "base/log.h"
#include "base/str.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINE_MAX_BYTES (16 * 1024)
#define MAX_ARGS       256

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
    char cgroups[3][512]; /* memory, pids, cpu group directories ("" if none) */
};

/* ---- probing ---- */

static int run_quietly(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

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

void fl_sandbox_probe(struct fl_sandbox_mode *mode, bool force_rlimits_only)
{
    memset(mode, 0, sizeof(*mode));
    char *probe[] = {"bwrap",     "--unshare-all", "--die-with-parent",
                     "--ro-bind", "/usr",          "/usr",
                     "--symlink", "usr/bin",       "/bin",
                     "--symlink", "usr/lib",       "/lib",
                     "--symlink", "usr/lib64",     "/lib64",
                     "--proc",    "/proc",         "--dev",
                     "/dev",      "--uid",         "65534",
                     "--gid",     "65534",         "/usr/bin/true",
                     NULL};
    mode->bwrap = !force_rlimits_only && run_quietly(probe) == 0;
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
    snprintf(mode->description, sizeof(mode->description), "%s%s%s",
             mode->bwrap ? "bwrap" : "rlimits only (bubblewrap missing or unusable)",
             cgroup_kind == CGROUP_V2   ? "+cgroup-v2"
             : cgroup_kind == CGROUP_V1 ? "+cgroup-v1"
                                        : " (no writable cgroup)",
             cgroup_cpu ? "+cpu" : "");
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
static int make_cgroups(struct fl_sandbox *sb, const struct fl_limits *limits, char *procs,
                        size_t size)
{
    static unsigned counter;
    char name[64];
    int rc = 0;
    snprintf(name, sizeof(name), "i%d-%u", (int)getpid(), ++counter);
    procs[0] = '\0';
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
        snprintf(procs, size, "%s/cgroup.procs", dir);
    } else if (cgroup_kind == CGROUP_V1) {
        snprintf(sb->cgroups[0], sizeof(sb->cgroups[0]), "/sys/fs/cgroup/memory/flint/%s", name);
        snprintf(sb->cgroups[1], sizeof(sb->cgroups[1]), "/sys/fs/cgroup/pids/flint/%s", name);
        for (int i = 0; i < 2; i++)
            if (mkdir(sb->cgroups[i], 0755) != 0)
                return -errno;
        rc = set_value(sb->cgroups[0], "memory.limit_in_bytes", "%llu",
                       (unsigned long long)limits->memory_bytes);
        rc = rc ? rc : set_value(sb->cgroups[1], "pids.max", "%lld", (long long)limits->processes);
        snprintf(procs, size, "%s/cgroup.procs %s/cgroup.procs", sb->cgroups[0], sb->cgroups[1]);
        if (rc == 0 && cgroup_cpu && limits->cpu_millis > 0) {
            snprintf(sb->cgroups[2], sizeof(sb->cgroups[2]), "/sys/fs/cgroup/cpu/flint/%s", name);
            if (mkdir(sb->cgroups[2], 0755) != 0)
                return -errno;
            rc = set_value(sb->cgroups[2], "cpu.cfs_period_us", "%d", CPU_PERIOD_US);
            rc = rc ? rc : set_value(sb->cgroups[2], "cpu.cfs_quota_us", "%lld", quota);
            size_t used = strlen(procs);
            snprintf(procs + used, size - used, " %s/cgroup.procs", sb->cgroups[2]);
        }
    }
    return rc;
}

/* Kill what is in a cgroup directory and remove it. */
static int kill_and_remove(const char *dir)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    for (int tries = 0; tries < 100; tries++) {
        FILE *f = fopen(path, "r");
        long pid;
        int n = 0;
        while (f != NULL && fscanf(f, "%ld", &pid) == 1) {
            kill((pid_t)pid, SIGKILL);
            n++;
        }
        if (f != NULL)
            fclose(f);
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY)
            return -errno;
        usleep(5000);
    }
    return FL_EAGAIN;
}

/* Whether the process that made a group still runs. */
static bool owner_alive(long pid)
{
    return pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH;
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
    for (int i = 0; i < 3; i++) {
        if (sb->cgroups[i][0] == '\0')
            continue;
        char path[600];
        snprintf(path, sizeof(path), "%s/cgroup.procs", sb->cgroups[i]);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        long pid;
        while (fscanf(f, "%ld", &pid) == 1)
            kill((pid_t)pid, sig);
        fclose(f);
    }
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

static void remove_cgroups(struct fl_sandbox *sb)
{
    for (int i = 0; i < 3; i++) {
        if (sb->cgroups[i][0] == '\0')
            continue;
        /* the tree is gone by now; a straggler still exiting gets a moment */
        for (int tries = 0; tries < 50 && rmdir(sb->cgroups[i]) != 0 && errno == EBUSY; tries++)
            usleep(2000);
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
    remove_cgroups(sb);
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
    for (ssize_t i = 0; i < n; i++) {
        char c = buf->base[i];
        if (c == '\n') {
            emit_line(sb, s);
        } else if (fl_buf_appendc(&s->line, c) < 0) {
            emit_line(sb, s); /* a line past the bound is cut there */
            fl_buf_appendc(&s->line, c);
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

int fl_sandbox_pid(const struct fl_sandbox *sb)
{
    return sb->proc.pid;
}

static void add(const char **argv, int *n, const char *a)
{
    if (*n < MAX_ARGS - 1)
        argv[(*n)++] = a;
}

/* Bind a system directory read-only, or recreate it as the symlink it is. */
static void add_system_dir(const char **argv, int *n, char storage[][256], int *used,
                           const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) != 0)
        return;
    if (S_ISLNK(st.st_mode)) {
        ssize_t len = readlink(dir, storage[*used], 255);
        if (len <= 0)
            return;
        storage[*used][len] = '\0';
        add(argv, n, "--symlink");
        add(argv, n, storage[(*used)++]);
        add(argv, n, dir);
    } else {
        add(argv, n, "--ro-bind");
        add(argv, n, dir);
        add(argv, n, dir);
    }
}

int fl_sandbox_spawn(uv_loop_t *loop, const struct fl_sandbox_mode *mode,
                     const struct fl_sandbox_spec *spec, fl_sandbox_line_cb on_line,
                     fl_sandbox_exit_cb on_exit, void *data, struct fl_sandbox **out)
{
    static const char join[] = "for f in $FLINT_CGROUP_PROCS; do echo $$ > \"$f\" || exit 125; "
                               "done; unset FLINT_CGROUP_PROCS; exec \"$@\"";
    const char *argv[MAX_ARGS];
    char storage[8][256];
    char limit_args[6][64], procs[1200], procs_env[1300];
    char *names[256]; /* --setenv names, allocated here */
    int n = 0, used = 0, nnames = 0;

    struct fl_sandbox *sb = calloc(1, sizeof(*sb));
    if (sb == NULL)
        return FL_ENOMEM;
    sb->on_line = on_line;
    sb->on_exit = on_exit;
    sb->data = data;
    sb->bwrap = mode->bwrap;
    int rc = make_cgroups(sb, &spec->limits, procs, sizeof(procs));
    if (rc < 0) {
        remove_cgroups(sb);
        free(sb);
        return rc;
    }
    add(argv, &n, "/bin/sh");
    add(argv, &n, "-c");
    add(argv, &n, join);
    add(argv, &n, "flint-sandbox");
    /* bwrap's --die-with-parent covers the sandbox's inside, not bwrap
     * itself: the tree must also go when flintd is killed with -9 */
    if (access("/usr/bin/setpriv", X_OK) == 0) {
        add(argv, &n, "/usr/bin/setpriv");
        add(argv, &n, "--pdeathsig");
        add(argv, &n, "KILL");
        add(argv, &n, "--");
    }
    add(argv, &n, "/usr/bin/prlimit");
    snprintf(limit_args[0], 64, "--data=%llu", (unsigned long long)spec->limits.memory_bytes);
    snprintf(limit_args[1], 64, "--cpu=%lld:%lld", (long long)spec->limits.cpu_seconds,
             (long long)spec->limits.cpu_seconds + 1);
    snprintf(limit_args[2], 64, "--nofile=%lld", (long long)spec->limits.open_files);
    snprintf(limit_args[3], 64, "--nproc=%lld", (long long)spec->limits.processes);
    snprintf(limit_args[4], 64, "--fsize=%llu", 1ULL << 30);
    snprintf(limit_args[5], 64, "--core=0");
    /* Memory: the cgroup's limit counts what is really used; the data
     * rlimit, which counts reservations too (node's heap, ASan's shadow),
     * is only the fallback where no cgroup is writable. */
    for (int i = memory_by_rlimit() ? 0 : 1; i < 6; i++)
        add(argv, &n, limit_args[i]);
    add(argv, &n, "--");
    if (mode->bwrap) {
        static const char *const base[] = {"/usr/bin/bwrap",
                                           "--unshare-all",
                                           "--die-with-parent",
                                           "--new-session",
                                           "--cap-drop",
                                           "ALL",
                                           "--uid",
                                           "65534",
                                           "--gid",
                                           "65534",
                                           "--proc",
                                           "/proc",
                                           "--dev",
                                           "/dev",
                                           "--tmpfs",
                                           "/tmp",
                                           "--dir",
                                           "/run",
                                           "--clearenv",
                                           "--chdir",
                                           "/tmp",
                                           NULL};
        for (int i = 0; base[i] != NULL; i++)
            add(argv, &n, base[i]);
        if (spec->network)
            add(argv, &n, "--share-net");
        add(argv, &n, "--ro-bind");
        add(argv, &n, "/usr");
        add(argv, &n, "/usr");
        const char *dirs[] = {"/bin", "/sbin", "/lib", "/lib64", "/lib32"};
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && used < 8; i++)
            add_system_dir(argv, &n, storage, &used, dirs[i]);
        const char *etc[] = {"/etc/passwd",       "/etc/group",         "/etc/hosts",
                             "/etc/resolv.conf",  "/etc/nsswitch.conf", "/etc/ssl",
                             "/etc/alternatives", "/etc/ld.so.cache",   "/etc/localtime"};
        for (size_t i = 0; i < sizeof(etc) / sizeof(etc[0]); i++) {
            add(argv, &n, "--ro-bind-try");
            add(argv, &n, etc[i]);
            add(argv, &n, etc[i]);
        }
        if (spec->code_dir != NULL) {
            add(argv, &n, "--ro-bind");
            add(argv, &n, spec->code_dir);
            add(argv, &n, "/code");
        }
        if (spec->runtime_dir != NULL) {
            add(argv, &n, "--ro-bind");
            add(argv, &n, spec->runtime_dir);
            add(argv, &n, "/runtime");
        }
        if (spec->socket_dir != NULL) {
            add(argv, &n, "--bind");
            add(argv, &n, spec->socket_dir);
            add(argv, &n, "/run/flint");
        }
        /* bwrap's root is a tmpfs of its own: make it read-only too, so that
         * /tmp and /run/flint are the only writable places */
        add(argv, &n, "--remount-ro");
        add(argv, &n, "/");
        for (size_t i = 0; spec->env != NULL && spec->env[i] != NULL; i++) {
            const char *eq = strchr(spec->env[i], '=');
            if (eq == NULL || eq - spec->env[i] >= 200)
                continue;
            if (nnames == 256)
                break;
            char *name = fl_strndup(spec->env[i], (size_t)(eq - spec->env[i]));
            if (name == NULL)
                continue;
            names[nnames++] = name;
            add(argv, &n, "--setenv");
            add(argv, &n, name);
            add(argv, &n, eq + 1);
        }
        add(argv, &n, "--");
    }
    for (size_t i = 0; spec->argv[i] != NULL; i++)
        add(argv, &n, spec->argv[i]);
    argv[n] = NULL;

    /* the environment of the chain: the spec's, plus the cgroup files for sh */
    const char *env[260];
    size_t ne = 0;
    for (size_t i = 0; spec->env != NULL && spec->env[i] != NULL && ne < 256; i++)
        env[ne++] = spec->env[i];
    snprintf(procs_env, sizeof(procs_env), "FLINT_CGROUP_PROCS=%s", procs);
    env[ne++] = procs_env;
    env[ne] = NULL;

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
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&sb->out.pipe},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&sb->err.pipe},
    };
    uv_process_options_t opts = {.file = "/bin/sh",
                                 .args = (char **)argv,
                                 .env = (char **)env,
                                 .exit_cb = on_exit_cb,
                                 .stdio = stdio,
                                 .stdio_count = 3,
                                 .flags = UV_PROCESS_DETACHED};
    rc = uv_spawn(loop, &sb->proc, &opts);
    for (int i = 0; i < nnames; i++)
        free(names[i]);
    if (rc < 0) {
        fl_log(FL_LOG_ERROR, "sandbox", "cannot start an instance", "err=\"%s\"", uv_strerror(rc));
        /* closed from the loop and freed then, without a callback */
        sb->failed = true;
        remove_cgroups(sb);
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
}
