/*
 * Unit tests for src/exec/sandbox: each guarantee proved by a real hostile
 * program under the real bubblewrap, rlimits and cgroups of this machine.
 */
#include "runner.h"

#include "base/error.h"
#include "base/fs.h"
#include "base/str.h"
#include "exec/sandbox.h"

#include <poll.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

static uv_loop_t loop;
static struct fl_sandbox_mode mode;

struct outcome {
    bool done;
    enum fl_sandbox_exit how;
    int status;
    char out[8192];
    char err[8192];
};

static void on_line(struct fl_sandbox *sb, bool is_stderr, const char *line, size_t len, void *data)
{
    struct outcome *o = data;
    char *buf = is_stderr ? o->err : o->out;
    size_t used = strlen(buf);
    snprintf(buf + used, sizeof(o->out) - used, "%.*s\n", (int)len, line);
}

static void on_exit_done(struct fl_sandbox *sb, enum fl_sandbox_exit how, int status, void *data)
{
    struct outcome *o = data;
    o->done = true;
    o->how = how;
    o->status = status;
}

static struct fl_limits limits(uint64_t memory, int64_t cpu, int64_t procs)
{
    struct fl_limits l = {memory, cpu, 256, procs, 0};
    return l;
}

static const char *const env[] = {"PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", NULL};

/* Run sh -c script in a sandbox and wait for it. */
static struct outcome *run_spec(const char *script, struct fl_sandbox_spec spec,
                                struct fl_sandbox **handle)
{
    struct outcome *o = calloc(1, sizeof(*o));
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    spec.argv = argv;
    if (spec.env == NULL)
        spec.env = env;
    struct fl_sandbox *sb;
    ASSERT_OK(fl_sandbox_spawn(&loop, &mode, &spec, on_line, on_exit_done, o, &sb));
    if (handle != NULL) {
        *handle = sb;
        return o;
    }
    while (!o->done)
        uv_run(&loop, UV_RUN_ONCE);
    return o;
}

/* Run sh -c script in a sandbox and wait for it (handle: do not wait). */
static struct outcome *run(const char *script, struct fl_limits l, const char *code_dir,
                           const char *out_dir, struct fl_sandbox **handle)
{
    struct fl_sandbox_spec spec = {
        .code_dir = code_dir, .out_dir = out_dir, .listen_fd = -1, .limits = l};
    return run_spec(script, spec, handle);
}

static void setup(bool rlimits_only)
{
    ASSERT_OK(uv_loop_init(&loop));
    fl_sandbox_probe(&mode, rlimits_only);
    if (!rlimits_only && !mode.bwrap)
        fl_test_fail(__FILE__, __LINE__, "bubblewrap is not usable here: %s", mode.description);
}

TEST(the_sandbox_hides_the_host_and_drops_privileges)
{
    setup(false);
    char data[4200], code[4200], secret[4300], script[8192];
    ASSERT_OK(fl_path_join(data, sizeof(data), fl_test_tmpdir(), "data"));
    ASSERT_OK(fl_path_join(code, sizeof(code), fl_test_tmpdir(), "code"));
    mkdir(data, 0755);
    mkdir(code, 0755);
    ASSERT_OK(fl_path_join(secret, sizeof(secret), data, "token"));
    FILE *f = fopen(secret, "w");
    fputs("s3cret\n", f);
    fclose(f);
    chmod(secret, 0644);
    ASSERT_OK(fl_path_join(secret, sizeof(secret), code, "fn.py"));
    f = fopen(secret, "w");
    fputs("print('code')\n", f);
    fclose(f);
    int len = snprintf(script, sizeof(script),
                       "cat %s/token >/dev/null 2>&1 && echo read-data || echo no-data\n"
                       "ls %s >/dev/null 2>&1 && echo see-data || echo no-data-dir\n"
                       "cat /code/fn.py\n"
                       "touch /code/x 2>/dev/null && echo write-code || echo ro-code\n"
                       "touch /usr/x 2>/dev/null && echo write-usr || echo ro-usr\n"
                       "touch /x 2>/dev/null && echo write-root || echo ro-root\n"
                       "touch /tmp/x && echo write-tmp\n"
                       "id -u\n"
                       "grep CapEff /proc/self/status\n"
                       "echo to-stderr >&2\n",
                       data, data);
    ASSERT(len > 0 && (size_t)len < sizeof(script));
    struct outcome *o = run(script, limits(256 << 20, 10, 64), code, NULL, NULL);
    ASSERT_EQ(o->how, FL_EXIT_NORMAL);
    if (o->status != 0)
        fl_test_fail(__FILE__, __LINE__, "status %d: %s", o->status, o->err);
    ASSERT_STR_EQ(o->out, "no-data\nno-data-dir\nprint('code')\nro-code\nro-usr\nro-root\n"
                          "write-tmp\n65534\nCapEff:\t0000000000000000\n");
    ASSERT_STR_EQ(o->err, "to-stderr\n");
    free(o);
}

/* flintd binds the instance's socket where the sandbox cannot reach and
 * hands over the descriptor: the program serves on fd 3. */
TEST(the_listening_socket_is_handed_over_as_fd_3)
{
    setup(false);
    char path[4300];
    ASSERT_OK(fl_path_join(path, sizeof(path), fl_test_tmpdir(), "s.sock"));
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    ASSERT(fl_strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) < sizeof(sun.sun_path));
    ASSERT_OK(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)));
    ASSERT_OK(listen(lfd, 8));
    struct fl_sandbox *sb;
    struct fl_sandbox_spec spec = {.listen_fd = lfd, .limits = limits(256 << 20, 10, 64)};
    struct outcome *o =
        run_spec("exec python3 -c \"import socket, os; "
                 "s = socket.socket(fileno=3); c, _ = s.accept(); "
                 "c.send(b'hello from inside ' + str(len(os.listdir('/proc/self/fd'))).encode())\"",
                 spec, &sb);
    close(lfd);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_OK(connect(fd, (struct sockaddr *)&sun, sizeof(sun)));
    char buf[64] = "";
    ASSERT(read(fd, buf, sizeof(buf) - 1) > 0);
    /* 0, 1, 2, the socket, the accepted connection and listdir's own: no
     * descriptor of flintd's or the launcher's reached the program */
    ASSERT_STR_EQ(buf, "hello from inside 6");
    close(fd);
    while (!o->done)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_EQ(o->status, 0);
    free(o);
}

struct lines {
    bool done;
    size_t n;
    size_t len[16];
    char first[16];
};

static void count_line(struct fl_sandbox *sb, bool is_stderr, const char *line, size_t len,
                       void *data)
{
    struct lines *l = data;
    if (l->n < 16) {
        l->len[l->n] = len;
        l->first[l->n] = len > 0 ? line[0] : '-';
    }
    l->n++;
}

static void lines_done(struct fl_sandbox *sb, enum fl_sandbox_exit how, int status, void *data)
{
    ((struct lines *)data)->done = true;
}

/* Output is cut into lines at newlines, a line past 16 KiB into pieces of
 * 16 KiB, and what is left at the end is a line too. */
TEST(output_is_split_into_bounded_lines)
{
    setup(false);
    const char *argv[] = {"/usr/bin/python3", "-c",
                          "import sys; sys.stdout.write('x' * 40000 + '\\na\\n\\nb\\nc')", NULL};
    struct fl_sandbox_spec spec = {
        .argv = argv, .env = env, .listen_fd = -1, .limits = limits(256 << 20, 10, 64)};
    struct lines l = {0};
    struct fl_sandbox *sb;
    ASSERT_OK(fl_sandbox_spawn(&loop, &mode, &spec, count_line, lines_done, &l, &sb));
    while (!l.done)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_EQ(l.n, 7);
    ASSERT_EQ(l.len[0], 16384);
    ASSERT_EQ(l.len[1], 16384);
    ASSERT_EQ(l.len[2], 40000 - 2 * 16384);
    ASSERT_EQ(l.first[2], 'x');
    ASSERT(l.len[3] == 1 && l.first[3] == 'a');
    ASSERT_EQ(l.len[4], 0);
    ASSERT(l.len[5] == 1 && l.first[5] == 'b');
    ASSERT(l.len[6] == 1 && l.first[6] == 'c');
}

TEST(a_memory_hog_is_stopped)
{
    setup(false);
    struct outcome *o = run("exec python3 -c \"b = bytearray(1 << 30); print('allocated')\"",
                            limits(64 << 20, 10, 64), NULL, NULL, NULL);
    /* by the cgroup's OOM killer, or by the data limit (MemoryError) */
#if defined(__SANITIZE_ADDRESS__)
    if (!mode.cgroup) {
        free(o);
        SKIP("a sanitized build limits memory only by cgroup, and none is writable");
    }
#endif
    bool killed = o->how == FL_EXIT_MEMORY;
    bool refused = o->how == FL_EXIT_NORMAL && o->status != 0 && strstr(o->err, "MemoryError");
    if (!killed && !refused)
        fl_test_fail(__FILE__, __LINE__, "how=%d status=%d out=%s err=%s", o->how, o->status,
                     o->out, o->err);
    ASSERT(strstr(o->out, "allocated") == NULL);
    free(o);
}

/* The cgroup tells that the kernel killed a process for memory, while the
 * sandbox still runs (here a child of it): what the executor asks when a
 * connection breaks before the exit is seen. */
TEST(a_kill_for_memory_is_known_before_the_exit)
{
    setup(false);
    if (!mode.cgroup)
        SKIP("no writable cgroup here: %s", mode.description);
    struct fl_sandbox *sb;
    struct outcome *o = run("python3 -c \"b = b'x' * (1 << 30)\" 2>/dev/null; echo survived; "
                            "exec sleep 60",
                            limits(64 << 20, 30, 64), NULL, NULL, &sb);
    ASSERT(!fl_sandbox_oom_killed(sb));
    while (strstr(o->out, "survived") == NULL && !o->done)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT(!o->done);
    ASSERT(fl_sandbox_oom_killed(sb));
    fl_sandbox_stop(sb, 200);
    while (!o->done)
        uv_run(&loop, UV_RUN_ONCE);
    free(o);

    /* and a sandbox that stayed within its memory says no */
    o = run("echo fine; exec sleep 60", limits(64 << 20, 30, 64), NULL, NULL, &sb);
    while (strstr(o->out, "fine") == NULL)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT(!fl_sandbox_oom_killed(sb));
    fl_sandbox_stop(sb, 200);
    while (!o->done)
        uv_run(&loop, UV_RUN_ONCE);
    free(o);
}

TEST(an_infinite_loop_hits_the_cpu_limit)
{
    setup(false);
    struct outcome *o = run("while :; do :; done", limits(64 << 20, 1, 64), NULL, NULL, NULL);
    ASSERT_EQ(o->how, FL_EXIT_CPU);
    free(o);
}

/* ---- the sandbox's own processes, from its cgroup ---- */

/* The processes in the cgroup directory: how many, their pids in pids (up
 * to max of them); -1 once the group is gone. */
static int group_pids(const char *group, pid_t *pids, int max)
{
    char path[700];
    ASSERT_OK(fl_path_join(path, sizeof(path), group, "cgroup.procs"));
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    int n = 0;
    long pid;
    while (fscanf(f, "%ld", &pid) == 1) {
        if (n < max)
            pids[n] = (pid_t)pid;
        n++;
    }
    fclose(f);
    return n;
}

/* The number after "key " in the group's file (a flat-keyed file such as
 * pids.events), or the file's single number when key is NULL; -1 if the
 * file or the key is not there. */
static long group_value(const char *group, const char *file, const char *key)
{
    char path[700], line[256];
    ASSERT_OK(fl_path_join(path, sizeof(path), group, file));
    FILE *f = fopen(path, "re");
    long value = -1;
    size_t klen = key != NULL ? strlen(key) : 0;
    while (f != NULL && value < 0 && fgets(line, sizeof(line), f) != NULL) {
        if (key == NULL)
            value = strtol(line, NULL, 10);
        else if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
            value = strtol(line + klen + 1, NULL, 10);
    }
    if (f != NULL)
        fclose(f);
    return value;
}

/* Once the exit callback came, the sandbox's cgroup must go: waited for,
 * however busy the machine. */
static void expect_group_gone(const char *group)
{
    WAIT_UNTIL(access(group, F_OK) != 0, 30, (void)0);
}

/* One look at a fork bomb's group while the loop turns: it never holds
 * more than its limit; *most is the most it was seen to hold. */
static void look_at_bomb(const char *group, int limit, int *most)
{
    int n = group_pids(group, NULL, 0);
    ASSERT(n <= limit);
    *most = n > *most ? n : *most;
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* The bomb forks until a fork is refused: by the process rlimit of the
 * sandbox's uid (the shell says "Cannot fork") or by its cgroup (the kernel
 * counts each refusal in pids.events), whichever is reached first. That is
 * waited for, not guessed by a sleep: on a fast machine the bomb reaches
 * its limit and dies out within a tenth of a second, on a busy one it
 * takes seconds. */
TEST_TIMEOUT(a_fork_bomb_is_contained_and_cleaned_up, 120)
{
    setup(false);
    if (!mode.cgroup)
        fl_test_fail(__FILE__, __LINE__, "no writable cgroup: %s", mode.description);
    struct fl_sandbox *sb;
    /* exec: the sandbox's first shell needs no fork to live on */
    struct outcome *o = run("bomb() { bomb | bomb & }; bomb; exec sleep 300",
                            limits(256 << 20, 30, 32), NULL, NULL, &sb);
    char group[512];
    ASSERT(fl_strlcpy(group, fl_sandbox_cgroup(sb), sizeof(group)) < sizeof(group));
    ASSERT(group[0] != '\0');
    ASSERT_EQ(group_value(group, "pids.max", NULL), 32);
    int most = 0;
    WAIT_UNTIL(group_value(group, "pids.events", "max") > 0 || strstr(o->err, "fork") != NULL, 60,
               look_at_bomb(group, 32, &most));
    ASSERT(group_value(group, "pids.current", NULL) <= 32);
    ASSERT(!o->done); /* the sandbox itself lives on */
    printf("%d processes at most; refused by the cgroup %ld times; stderr:\n%.200s\n", most,
           group_value(group, "pids.events", "max"), o->err);
    fl_sandbox_stop(sb, 200);
    while (!o->done)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_EQ(o->how, FL_EXIT_STOPPED);
    expect_group_gone(group); /* and nothing of it is left */
    free(o);
}

/* Every process of the tree ends with a stop: each one the sandbox's
 * cgroup held is watched through a pidfd (no pid reuse can fool it). */
TEST(stop_ends_the_whole_tree)
{
    setup(false);
    if (!mode.cgroup)
        SKIP("the sandbox's processes are listed by its cgroup, and none is writable: %s",
             mode.description);
    struct fl_sandbox *sb;
    struct outcome *o = run("sleep 1234 & sleep 1234 & echo started; wait",
                            limits(64 << 20, 10, 64), NULL, NULL, &sb);
    while (strstr(o->out, "started") == NULL)
        uv_run(&loop, UV_RUN_ONCE);
    char group[512];
    ASSERT(fl_strlcpy(group, fl_sandbox_cgroup(sb), sizeof(group)) < sizeof(group));
    pid_t pids[16];
    int n = group_pids(group, pids, 16);
    ASSERT(n >= 3 && n <= 16); /* the shell, its two sleeps, and bwrap's own */
    int fds[16];
    for (int i = 0; i < n; i++) {
        fds[i] = pidfd_open(pids[i], 0);
        ASSERT(fds[i] >= 0);
    }
    fl_sandbox_stop(sb, 200);
    while (!o->done)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_EQ(o->how, FL_EXIT_STOPPED);
    for (int i = 0; i < n; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        if (poll(&p, 1, 30000) != 1)
            fl_test_fail(__FILE__, __LINE__, "process %d of the sandbox outlived its stop",
                         (int)pids[i]);
        close(fds[i]);
    }
    expect_group_gone(group);
    free(o);
}

TEST(without_bubblewrap_the_limits_still_apply)
{
    setup(true);
    ASSERT(!mode.bwrap);
    ASSERT(strstr(mode.description, "rlimits only") != NULL);
    struct outcome *o = run("while :; do :; done", limits(64 << 20, 1, 64), NULL, NULL, NULL);
    ASSERT_EQ(o->how, FL_EXIT_CPU);
    free(o);
    o = run("echo plain; exit 7", limits(64 << 20, 1, 64), NULL, NULL, NULL);
    ASSERT_EQ(o->how, FL_EXIT_NORMAL);
    ASSERT_EQ(o->status, 7);
    ASSERT_STR_EQ(o->out, "plain\n");
    free(o);
}

/* A cgroup left by a flintd that died (its pid no longer runs) is emptied
 * and removed at the next start; one of a live owner is left alone. */
TEST(stale_cgroups_of_a_dead_flintd_are_cleaned_up)
{
    setup(false);
    if (!mode.cgroup)
        SKIP("no writable cgroup here: %s", mode.description);
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    const char *parents[] = {"/sys/fs/cgroup/flint", "/sys/fs/cgroup/memory/flint",
                             "/sys/fs/cgroup/pids/flint"};
    pid_t sleeper = fork();
    if (sleeper == 0) {
        execl("/bin/sleep", "sleep", "300", (char *)NULL);
        _exit(127);
    }
    char stale[3][300], mine[3][300];
    int made = 0;
    for (int i = 0; i < 3; i++) {
        stale[i][0] = mine[i][0] = '\0';
        if (access(parents[i], W_OK) != 0)
            continue;
        ASSERT_OK(fl_path_fmt(stale[i], sizeof(stale[i]), "%s/i%d-1", parents[i], (int)dead));
        ASSERT_OK(
            fl_path_fmt(mine[i], sizeof(mine[i]), "%s/i%d-999999", parents[i], (int)getpid()));
        ASSERT_OK(mkdir(stale[i], 0755));
        ASSERT_OK(mkdir(mine[i], 0755));
        char procs[400], pid[32];
        ASSERT_OK(fl_path_join(procs, sizeof(procs), stale[i], "cgroup.procs"));
        snprintf(pid, sizeof(pid), "%d", (int)sleeper);
        FILE *f = fopen(procs, "w");
        ASSERT(f != NULL);
        fputs(pid, f);
        ASSERT_OK(fclose(f));
        made++;
    }
    ASSERT(made > 0);
    ASSERT(fl_sandbox_cleanup_stale() >= made);
    int status;
    ASSERT_EQ(waitpid(sleeper, &status, 0), sleeper);
    ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    for (int i = 0; i < 3; i++) {
        if (stale[i][0] == '\0')
            continue;
        ASSERT(access(stale[i], F_OK) != 0);
        ASSERT(access(mine[i], F_OK) == 0); /* a live owner's group stays */
        ASSERT_OK(rmdir(mine[i]));
    }
}

/* limits.cpus: the instance's CPU bandwidth is capped by its cgroup. */
TEST(a_cpu_share_is_set_in_the_cgroup)
{
    setup(false);
    if (strstr(mode.description, "+cpu") == NULL)
        SKIP("no writable cpu cgroup here: %s", mode.description);
    struct fl_limits l = limits(64 << 20, 10, 64);
    l.cpu_millis = 250;
    struct fl_sandbox *sb;
    struct outcome *o = run("echo started; sleep 30", l, NULL, NULL, &sb);
    while (strstr(o->out, "started") == NULL)
        uv_run(&loop, UV_RUN_ONCE);
    char path[128], line[512], quota[64] = "";
    snprintf(path, sizeof(path), "/proc/%d/cgroup", fl_sandbox_pid(sb));
    FILE *f = fopen(path, "r");
    ASSERT(f != NULL);
    while (fgets(line, sizeof(line), f) != NULL) {
        char *group = strrchr(line, ':');
        line[strcspn(line, "\n")] = '\0';
        if (group == NULL)
            continue;
        char file[700];
        if (strstr(line, ":cpu,") != NULL || strstr(line, ":cpu:") != NULL)
            snprintf(file, sizeof(file), "/sys/fs/cgroup/cpu%s/cpu.cfs_quota_us", group + 1);
        else if (strncmp(line, "0::", 3) == 0)
            snprintf(file, sizeof(file), "/sys/fs/cgroup%s/cpu.max", group + 1);
        else
            continue;
        FILE *q = fopen(file, "r");
        if (q != NULL && fgets(quota, sizeof(quota), q) != NULL)
            quota[strcspn(quota, "\n")] = '\0';
        if (q != NULL)
            fclose(q);
        if (quota[0] != '\0')
            break;
    }
    fclose(f);
    fl_sandbox_stop(sb, 100);
    while (!o->done)
        uv_run(&loop, UV_RUN_ONCE);
    /* 250 thousandths of a core: 25 ms in each 100 ms period */
    ASSERT(strcmp(quota, "25000") == 0 || strcmp(quota, "25000 100000") == 0);
    free(o);
}

/* A flintd killed but not yet reaped by its parent (a zombie) is gone:
 * its groups are cleaned up like those of one that is reaped. */
TEST(stale_cgroups_of_a_zombie_flintd_are_cleaned_up)
{
    setup(false);
    if (!mode.cgroup)
        fl_test_fail(__FILE__, __LINE__, "no writable cgroup: %s", mode.description);
    pid_t zombie = fork();
    if (zombie == 0)
        _exit(0);
    /* not reaped: wait until it is a zombie */
    char path[64], stat[256] = "";
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)zombie);
    for (int i = 0; i < 6000 && strstr(stat, ") Z") == NULL; i++) {
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            size_t n = fread(stat, 1, sizeof(stat) - 1, f);
            stat[n] = '\0';
            fclose(f);
        }
        if (strstr(stat, ") Z") == NULL)
            usleep(5000);
    }
    ASSERT(strstr(stat, ") Z") != NULL);
    const char *parent = access("/sys/fs/cgroup/pids/flint", W_OK) == 0
                             ? "/sys/fs/cgroup/pids/flint"
                             : "/sys/fs/cgroup/flint";
    char group[300];
    ASSERT_OK(fl_path_fmt(group, sizeof(group), "%s/i%d-1", parent, (int)zombie));
    ASSERT_OK(mkdir(group, 0755));
    ASSERT(fl_sandbox_cleanup_stale() >= 1);
    ASSERT(access(group, F_OK) != 0);
    waitpid(zombie, NULL, 0);
}
