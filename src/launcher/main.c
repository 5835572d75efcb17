/*
 * flint-sandbox: the last trusted step between flintd and an instance or a
 * build. flintd starts it as root with a launch description on fd 3 (see
 * "The launch description" in src/exec/sandbox.h) and, for instances, the
 * listening socket it bound on fd 4. It then, in this order:
 *
 *   1. asks to be killed when flintd dies (PR_SET_PDEATHSIG), reads and
 *      closes the description, moves the listening socket to fd 3 and
 *      closes every other descriptor it inherited;
 *   2. joins the instance's cgroups and sets its rlimits;
 *   3. opens every directory or file to bind, as root and without
 *      following a final symlink, and stages them for bubblewrap in a
 *      mount namespace of its own (see add_binds()), so bwrap never
 *      resolves a host path that the unprivileged uid could not, or that
 *      a sandbox could have swapped; writable binds are given to the
 *      sandbox's uid first;
 *   4. compiles the seccomp filter (see seccomp_install_rules()) for bwrap
 *      to load just before it runs the program;
 *   5. for an instance with network access, makes a user and network
 *      namespace owned by the sandbox's uid and attaches slirp4netns to it
 *      (outbound only: the host's loopback is unreachable);
 *   6. drops to the unprivileged host uid and gid (no supplementary
 *      groups, NoNewPrivs) and execs bwrap with its options on a memfd
 *      (--args) and the program after them: the function's variables are
 *      set by bwrap inside the sandbox and appear in no argument list and
 *      no environment outside.
 *
 * Without bwrap (rlimits-only mode) step 6 execs the program itself, with
 * the description's environment, as the same unprivileged uid.
 *
 * It exits 125 when it cannot do one of these, after one line on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/close_range.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SPEC_FD     3
#define LISTEN_FD   4
#define SPEC_MAX    (4u << 20)
#define MAX_ITEMS   4096
#define EXIT_LAUNCH 125

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    const char prefix[] = "flint-sandbox: ";
    (void)!write(2, prefix, sizeof(prefix) - 1);
    (void)!write(2, line, (size_t)n);
    _exit(EXIT_LAUNCH);
}

/* ---- the description ---- */

struct item {
    const char *key; /* NUL-terminated, the text before '=' */
    const char *value;
};

struct spec {
    char *text;
    struct item items[MAX_ITEMS];
    size_t nitems;
};

static void spec_read(struct spec *s)
{
    struct stat st;
    if (fstat(SPEC_FD, &st) != 0)
        die("no launch description on fd %d: %s", SPEC_FD, strerror(errno));
    if (st.st_size <= 0 || (uint64_t)st.st_size > SPEC_MAX)
        die("launch description of %lld bytes", (long long)st.st_size);
    size_t size = (size_t)st.st_size;
    s->text = malloc(size + 1);
    if (s->text == NULL)
        die("out of memory");
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(SPEC_FD, s->text + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("cannot read the launch description: %s", n < 0 ? strerror(errno) : "short");
        got += (size_t)n;
    }
    s->text[size] = '\0';
    close(SPEC_FD);
    if (size == 0 || s->text[size - 1] != '\0')
        die("launch description not NUL-terminated");
    for (char *p = s->text; p < s->text + size;) {
        size_t len = strlen(p);
        char *eq = strchr(p, '=');
        if (eq == NULL)
            die("launch description item without '='");
        if (s->nitems == MAX_ITEMS)
            die("launch description has more than %d items", MAX_ITEMS);
        *eq = '\0';
        s->items[s->nitems].key = p;
        s->items[s->nitems].value = eq + 1;
        s->nitems++;
        p += len + 1;
    }
    if (s->nitems == 0 || strcmp(s->items[0].key, "version") != 0 ||
        strcmp(s->items[0].value, "1") != 0)
        die("launch description of an unknown version");
}

static const char *spec_get(const struct spec *s, const char *key)
{
    for (size_t i = 0; i < s->nitems; i++)
        if (strcmp(s->items[i].key, key) == 0)
            return s->items[i].value;
    return NULL;
}

static unsigned long long number(const char *text, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text ? text : "", &end, 10);
    if (text == NULL || *text == '\0' || *end != '\0' || errno != 0)
        die("bad %s '%s' in the launch description", what, text ? text : "");
    return v;
}

/* ---- growing argument lists ---- */

struct list {
    const char **v;
    size_t n, cap;
};

static void push(struct list *l, const char *s)
{
    if (l->n + 2 > l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        if (l->v == NULL)
            die("out of memory");
    }
    l->v[l->n++] = s;
    l->v[l->n] = NULL;
}

static const char *fmt_fd(int fd)
{
    char *s = malloc(16);
    if (s == NULL)
        die("out of memory");
    snprintf(s, 16, "%d", fd);
    return s;
}

/* A memfd holding len bytes, at offset 0, inherited across exec. */
static int memfd_with(const char *name, const void *data, size_t len)
{
    int fd = memfd_create(name, 0);
    if (fd < 0)
        die("memfd_create: %s", strerror(errno));
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("cannot fill a memfd: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    if (lseek(fd, 0, SEEK_SET) != 0)
        die("lseek: %s", strerror(errno));
    return fd;
}

/* ---- steps ---- */

static void join_cgroups(const struct spec *s)
{
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    for (size_t i = 0; i < s->nitems; i++) {
        if (strcmp(s->items[i].key, "cgroup") != 0)
            continue;
        int fd = open(s->items[i].value, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            die("cannot open '%s': %s", s->items[i].value, strerror(errno));
        ssize_t n;
        while ((n = write(fd, pid, (size_t)len)) < 0 && errno == EINTR) {
        }
        if (n != len)
            die("cannot join the cgroup '%s': %s", s->items[i].value, strerror(errno));
        close(fd);
    }
}

static void set_rlimits(const struct spec *s)
{
    static const struct {
        const char *name;
        int resource;
    } names[] = {{"cpu", RLIMIT_CPU},     {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},
                 {"fsize", RLIMIT_FSIZE}, {"core", RLIMIT_CORE},     {"data", RLIMIT_DATA}};
    for (size_t i = 0; i < s->nitems; i++) {
        if (strcmp(s->items[i].key, "rlimit") != 0)
            continue;
        /* NAME:SOFT:HARD */
        char buf[128];
        snprintf(buf, sizeof(buf), "%s", s->items[i].value);
        char *soft = strchr(buf, ':'), *hard = soft ? strchr(soft + 1, ':') : NULL;
        if (hard == NULL)
            die("bad rlimit '%s'", s->items[i].value);
        *soft++ = '\0';
        *hard++ = '\0';
        int resource = -1;
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            if (strcmp(names[k].name, buf) == 0)
                resource = names[k].resource;
        if (resource < 0)
            die("unknown rlimit '%s'", buf);
        struct rlimit rl = {number(soft, "rlimit"), number(hard, "rlimit")};
        if (setrlimit(resource, &rl) != 0)
            die("cannot set the %s limit: %s", buf, strerror(errno));
    }
}

/*
 * The seccomp filter: everything is allowed but what functions and builds
 * have no use for and what the kernel's escapes have gone through. Each
 * refused call fails with EPERM (ENOSYS for clone3, so that libc falls back
 * to clone, whose flags can be checked).
 */
static void seccomp_install_rules(scmp_filter_ctx ctx)
{
    static const char *const refused[] = {
        /* namespaces: no new user (or other) namespace, no joining one */
        "unshare", "setns",
        /* watching or changing other processes */
        "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
        /* the kernel keyring */
        "keyctl", "add_key", "request_key",
        /* eBPF, perf, userfaultfd, io_uring: large kernel surfaces, many exploits */
        "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
        "io_uring_register",
        /* mounts and file system handles */
        "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
        "fsmount", "fspick", "mount_setattr", "name_to_handle_at", "open_by_handle_at", "quotactl",
        "swapon", "swapoff",
        /* kernel modules and kexec */
        "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
        /* clocks */
        "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
        /* the machine */
        "reboot", "syslog", "acct", "iopl", "ioperm", "vhangup", "lookup_dcookie", "nfsservctl",
        "uselib"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        int nr = seccomp_syscall_resolve_name(refused[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not on this architecture */
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        if (rc < 0)
            die("cannot add the seccomp rule for %s: %s", refused[i], strerror(-rc));
    }
    /* clone with any namespace flag; clone3 passes its flags in memory,
     * where seccomp cannot look: ENOSYS makes libc use clone */
    const uint64_t ns_flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
                              CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
    int rc;
    for (unsigned bit = 0; bit < 64; bit++) {
        uint64_t flag = 1ULL << bit;
        if (!(ns_flags & flag))
            continue;
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
        if (rc < 0)
            die("cannot add the seccomp rule for clone: %s", strerror(-rc));
    }
    int clone3 = seccomp_syscall_resolve_name("clone3");
    if (clone3 != __NR_SCMP_ERROR) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), clone3, 0);
        if (rc < 0)
            die("cannot add the seccomp rule for clone3: %s", strerror(-rc));
    }
}

/* The filter as BPF in a memfd, for bwrap's --seccomp. */
static int seccomp_memfd(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL)
        die("seccomp_init failed");
    /* bwrap sets NoNewPrivs itself before it loads the filter */
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
    seccomp_install_rules(ctx);
    int fd = memfd_create("flint-seccomp", 0);
    if (fd < 0)
        die("memfd_create: %s", strerror(errno));
    int rc = seccomp_export_bpf(ctx, fd);
    if (rc < 0)
        die("cannot export the seccomp filter: %s", strerror(-rc));
    seccomp_release(ctx);
    if (lseek(fd, 0, SEEK_SET) != 0)
        die("lseek: %s", strerror(errno));
    return fd;
}

struct ids {
    uid_t uid;
    gid_t gid;
};

static void drop_privileges(const struct ids *ids)
{
    if (setgroups(0, NULL) != 0)
        die("setgroups: %s", strerror(errno));
    if (setresgid(ids->gid, ids->gid, ids->gid) != 0)
        die("setresgid(%u): %s", (unsigned)ids->gid, strerror(errno));
    if (setresuid(ids->uid, ids->uid, ids->uid) != 0)
        die("setresuid(%u): %s", (unsigned)ids->uid, strerror(errno));
    uid_t r, e, s;
    if (getresuid(&r, &e, &s) != 0 || r == 0 || e == 0 || s == 0 || setuid(0) == 0)
        die("still root after dropping privileges");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        die("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    /* a change of credentials clears the parent-death signal */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        die("PR_SET_PDEATHSIG: %s", strerror(errno));
}

/*
 * Open each bind source as root, without following a final symlink, and
 * show it to bwrap where the sandbox's uid can reach it: in a mount
 * namespace of the launcher's own, a small tmpfs over /run holds one
 * mount point per source, each bound to the opened descriptor. bwrap,
 * which resolves its sources by path with the sandbox's uid, never walks
 * the data directory (0700) and never meets a link a sandbox could have
 * put there. "bind-ro" / "bind-rw" values are "DEST\tSOURCE"; a writable
 * source (a directory) is given to the sandbox's uid first.
 */
#define STAGE "/run"

static void add_binds(const struct spec *s, const struct ids *ids, struct list *args)
{
    int fds[16];
    const char *dests[16];
    bool writable[16];
    bool private_ns = false;
    unsigned n = 0;
    for (size_t i = 0; i < s->nitems; i++) {
        bool ro = strcmp(s->items[i].key, "bind-ro") == 0;
        bool rw = strcmp(s->items[i].key, "bind-rw") == 0;
        if (!ro && !rw)
            continue;
        const char *tab = strchr(s->items[i].value, '\t');
        if (tab == NULL || tab == s->items[i].value || tab[1] == '\0')
            die("bad bind '%s'", s->items[i].value);
        if (n == 16)
            die("more than 16 binds");
        if (!private_ns &&
            (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0))
            die("cannot make a mount namespace: %s", strerror(errno));
        private_ns = true;
        const char *source = tab + 1;
        dests[n] = strndup(s->items[i].value, (size_t)(tab - s->items[i].value));
        if (dests[n] == NULL)
            die("out of memory");
        /* opened in the new namespace (a copy), so that it can be bound */
        int fd = open(source, (rw ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            die("cannot open '%s': %s", source, strerror(errno));
        struct stat st;
        if (fstat(fd, &st) != 0 || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)))
            die("'%s' is neither a directory nor a file", source);
        if (S_ISREG(st.st_mode)) {
            /* a file (a build's code blob, private to flintd): bwrap copies
             * its content in, so that its mode does not matter */
            if (rw)
                die("'%s' is a file: only directories are writable", source);
            int keep = fcntl(fd, F_DUPFD, 3);
            if (keep < 0)
                die("fcntl: %s", strerror(errno));
            close(fd);
            push(args, "--ro-bind-data");
            push(args, fmt_fd(keep));
            push(args, dests[n]);
            continue;
        }
        if (rw && (fchown(fd, ids->uid, ids->gid) != 0 || fchmod(fd, 0700) != 0))
            die("cannot give '%s' to the sandbox: %s", source, strerror(errno));
        fds[n] = fd;
        writable[n++] = rw;
    }
    if (n == 0)
        return;
    if (mount("flint-stage", STAGE, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=0755,size=64k") != 0)
        die("cannot mount a tmpfs on " STAGE ": %s", strerror(errno));
    for (unsigned i = 0; i < n; i++) {
        struct stat st;
        char *point = malloc(32), from[64];
        if (point == NULL || fstat(fds[i], &st) != 0)
            die("out of memory");
        snprintf(point, 32, STAGE "/%u", i);
        int made = S_ISDIR(st.st_mode) ? mkdir(point, 0755)
                                       : close(open(point, O_CREAT | O_EXCL | O_WRONLY, 0644));
        snprintf(from, sizeof(from), "/proc/self/fd/%d", fds[i]);
        if (made != 0 || mount(from, point, NULL, MS_BIND, NULL) != 0)
            die("cannot stage '%s': %s", dests[i], strerror(errno));
        close(fds[i]);
        push(args, writable[i] ? "--bind" : "--ro-bind");
        push(args, point);
        push(args, dests[i]);
    }
}

/* ---- network: slirp4netns on a namespace of the sandbox's uid ---- */

static bool tun_open_to_anyone(void)
{
    struct stat st;
    return stat("/dev/net/tun", &st) == 0 && (st.st_mode & 0006) == 0006;
}

static pid_t child_pid;

static void forward_signal(int sig)
{
    if (child_pid > 0)
        kill(child_pid, sig);
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        die("cannot write '%s': %s", path, strerror(errno));
    close(fd);
}

/*
 * Fork the sandbox's process, which makes a user and a network namespace
 * as the sandbox's uid and waits; start slirp4netns on it; let it go on
 * once the network is up. The child returns (to exec bwrap); this process
 * stays as the tree's root, forwards stop signals and exits as the child
 * did. slirp4netns runs as the sandbox's uid where /dev/net/tun allows it,
 * else as root confined by its own sandbox and seccomp filter; either way
 * it ends when this process does (--exit-fd).
 */
static void network_setup(const struct ids *ids, const char *slirp)
{
    int ready[2], go[2], exitfd[2], slirp_ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0 ||
        pipe2(exitfd, O_CLOEXEC) != 0 || pipe2(slirp_ready, O_CLOEXEC) != 0)
        die("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        drop_privileges(ids);
        /* a change of credentials made it undumpable, which would leave
         * its /proc files (uid_map) to root */
        if (prctl(PR_SET_DUMPABLE, 1) != 0)
            die("PR_SET_DUMPABLE: %s", strerror(errno));
        if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0)
            die("cannot make the network namespace: %s", strerror(errno));
        char map[64];
        write_file("/proc/self/setgroups", "deny");
        snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)ids->uid, (unsigned)ids->uid);
        write_file("/proc/self/uid_map", map);
        snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)ids->gid, (unsigned)ids->gid);
        write_file("/proc/self/gid_map", map);
        char c = 1;
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(EXIT_LAUNCH); /* the launcher died or gave up */
        close(ready[0]);
        close(ready[1]);
        close(go[0]);
        close(go[1]);
        close(exitfd[0]);
        close(exitfd[1]);
        close(slirp_ready[0]);
        close(slirp_ready[1]);
        return;
    }
    child_pid = pid;
    char c;
    if (read(ready[0], &c, 1) != 1) {
        int status;
        waitpid(pid, &status, 0);
        _exit(EXIT_LAUNCH);
    }
    pid_t s = fork();
    if (s < 0)
        die("fork: %s", strerror(errno));
    if (s == 0) {
        bool as_root = !tun_open_to_anyone();
        if (!as_root)
            drop_privileges(ids);
        if (dup2(exitfd[0], 5) < 0 || dup2(slirp_ready[1], 6) < 0)
            die("dup2: %s", strerror(errno));
        char userns[64], target[32];
        snprintf(userns, sizeof(userns), "--userns-path=/proc/%d/ns/user", (int)pid);
        snprintf(target, sizeof(target), "%d", (int)pid);
        /* its chatter is not the function's output; a failure shows as
         * the network not coming up */
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        const char *argv[16];
        int n = 0;
        argv[n++] = slirp;
        argv[n++] = "--configure";
        argv[n++] = "--mtu=65520";
        argv[n++] = "--disable-host-loopback";
        argv[n++] = "--exit-fd=5";
        argv[n++] = "--ready-fd=6";
        argv[n++] = userns;
        if (as_root) {
            argv[n++] = "--enable-sandbox";
            argv[n++] = "--enable-seccomp";
        }
        argv[n++] = target;
        argv[n++] = "tap0";
        argv[n] = NULL;
        char *const envp[] = {NULL};
        execve(slirp, (char *const *)argv, envp);
        die("cannot run '%s': %s", slirp, strerror(errno));
    }
    close(exitfd[0]);
    close(slirp_ready[1]);
    if (read(slirp_ready[0], &c, 1) != 1) {
        kill(pid, SIGKILL);
        die("slirp4netns did not bring the network up");
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = forward_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    if (write(go[1], &c, 1) != 1)
        die("the sandbox's process is gone");
    int status;
    pid_t got;
    while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    kill(s, SIGKILL);
    if (got < 0)
        die("waitpid: %s", strerror(errno));
    if (WIFSIGNALED(status))
        _exit(128 + WTERMSIG(status));
    _exit(WEXITSTATUS(status));
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        die("PR_SET_PDEATHSIG: %s", strerror(errno));
    if (getppid() == 1)
        die("flintd is already gone");
    static struct spec s;
    spec_read(&s);
    bool has_listen = fcntl(LISTEN_FD, F_GETFD) >= 0;
    if (has_listen) {
        if (dup2(LISTEN_FD, 3) != 3)
            die("dup2: %s", strerror(errno));
        close(LISTEN_FD);
    }
    /* nothing else flintd had open reaches the sandbox */
    if (syscall(SYS_close_range, has_listen ? 4u : 3u, ~0u, 0) != 0)
        for (int fd = has_listen ? 4 : 3; fd < 1024; fd++)
            close(fd);

    struct ids ids = {(uid_t)number(spec_get(&s, "uid"), "uid"),
                      (gid_t)number(spec_get(&s, "gid"), "gid")};
    if (ids.uid == 0 || ids.gid == 0)
        die("refusing to run a sandbox as root");
    join_cgroups(&s);
    set_rlimits(&s);
    const char *bwrap = spec_get(&s, "bwrap");
    const char *slirp = spec_get(&s, "slirp4netns");
    struct list args = {0}, env = {0}, argv_list = {0};
    for (size_t i = 0; i < s.nitems; i++) {
        if (strcmp(s.items[i].key, "env") == 0)
            push(&env, s.items[i].value);
        else if (strcmp(s.items[i].key, "argv") == 0)
            push(&argv_list, s.items[i].value);
    }
    if (argv_list.n == 0)
        die("no program to run");
    if (bwrap == NULL) {
        drop_privileges(&ids);
        execve(argv_list.v[0], (char *const *)argv_list.v, (char *const *)env.v);
        die("cannot run '%s': %s", argv_list.v[0], strerror(errno));
    }

    for (size_t i = 0; i < s.nitems; i++)
        if (strcmp(s.items[i].key, "arg") == 0)
            push(&args, s.items[i].value);
    add_binds(&s, &ids, &args);
    if (slirp != NULL) {
        static const char resolv[] = "nameserver 10.0.2.3\n";
        push(&args, "--share-net");
        push(&args, "--ro-bind-data");
        push(&args, fmt_fd(memfd_with("flint-resolv", resolv, sizeof(resolv) - 1)));
        push(&args, "/etc/resolv.conf");
    }
    /* bwrap's root is a tmpfs of its own: read-only too, once everything
     * is mounted on it, so that /tmp (and a build's /run/flint) are the
     * only writable places */
    push(&args, "--remount-ro");
    push(&args, "/");
    if (spec_get(&s, "seccomp") != NULL) {
        push(&args, "--seccomp");
        push(&args, fmt_fd(seccomp_memfd()));
    }
    for (size_t i = 0; i < env.n; i++) {
        const char *eq = strchr(env.v[i], '=');
        if (eq == NULL)
            die("bad environment entry");
        char *name = strndup(env.v[i], (size_t)(eq - env.v[i]));
        if (name == NULL)
            die("out of memory");
        push(&args, "--setenv");
        push(&args, name);
        push(&args, eq + 1);
    }
    /* the options, NUL-separated, for --args (bwrap takes the command
     * itself from its argument list) */
    size_t total = 0;
    for (size_t i = 0; i < args.n; i++)
        total += strlen(args.v[i]) + 1;
    char *blob = malloc(total ? total : 1);
    if (blob == NULL)
        die("out of memory");
    size_t at = 0;
    for (size_t i = 0; i < args.n; i++) {
        size_t len = strlen(args.v[i]) + 1;
        memcpy(blob + at, args.v[i], len);
        at += len;
    }
    int args_fd = memfd_with("flint-bwrap-args", blob, total);

    if (slirp != NULL)
        network_setup(&ids, slirp); /* returns in the sandbox's process */
    else
        drop_privileges(&ids);
    struct list bwrap_argv = {0};
    push(&bwrap_argv, "bwrap");
    push(&bwrap_argv, "--args");
    push(&bwrap_argv, fmt_fd(args_fd));
    push(&bwrap_argv, "--");
    for (size_t i = 0; i < argv_list.n; i++)
        push(&bwrap_argv, argv_list.v[i]);
    char *const envp[] = {NULL};
    execve(bwrap, (char *const *)bwrap_argv.v, envp);
    die("cannot run '%s': %s", bwrap, strerror(errno));
}
