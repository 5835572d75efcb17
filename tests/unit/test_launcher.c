/*
 * Unit tests for flint-sandbox (src/launcher): the launch description it
 * reads (specified in src/exec/sandbox.h) is refused whole when it is
 * truncated or corrupt, and nothing runs; a good one runs its program as
 * the unprivileged uid it names.
 */
#include "runner.h"

#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct result {
    int status; /* exit status, or 128 + signal */
    char out[4096];
};

static void launcher_path(char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    ASSERT(n > 0);
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(out, size, "%s/../bin/flint-sandbox", exe);
    ASSERT(access(out, X_OK) == 0);
}

/* Run the launcher with desc (len bytes) on fd 3; its stdout and stderr
 * together in r->out. */
static void launch(const char *desc, size_t len, struct result *r)
{
    char launcher[PATH_MAX + 32];
    launcher_path(launcher, sizeof(launcher));
    int fd = memfd_create("desc", MFD_CLOEXEC);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, desc, len), (ssize_t)len);
    char out_path[PATH_MAX];
    snprintf(out_path, sizeof(out_path), "%s/out", fl_test_tmpdir());
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_adddup2(&fa, fd, 3);
    char *const argv[] = {"flint-sandbox", NULL};
    char *const envp[] = {NULL};
    pid_t pid;
    ASSERT_EQ(posix_spawn(&pid, launcher, &fa, NULL, argv, envp), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(fd);
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    FILE *f = fopen(out_path, "r");
    ASSERT(f != NULL);
    size_t n = fread(r->out, 1, sizeof(r->out) - 1, f);
    r->out[n] = '\0';
    fclose(f);
}

/* A description without bubblewrap: the program runs as uid, directly. */
#define GOOD(uid)                                                                                  \
    "version=1\0uid=" uid "\0gid=" uid "\0rlimit=nofile:64:64\0env=GREETING=hi\0"                  \
    "argv=/bin/sh\0argv=-c\0argv=echo \"$GREETING $(id -u)\"\0"

static void refused(const char *desc, size_t len, const char *why)
{
    struct result r;
    launch(desc, len, &r);
    if (r.status != 125 || strstr(r.out, why) == NULL || strstr(r.out, "hi ") != NULL)
        fl_test_fail(__FILE__, __LINE__, "status %d, output '%s', wanted 125 and '%s'", r.status,
                     r.out, why);
}

/* A literal description, its length counted by the compiler. */
#define REFUSED(lit, why) refused(lit, sizeof(lit) - 1, why)

TEST(a_good_description_runs_its_program_as_its_uid)
{
    struct result r;
    launch(GOOD("2000065000"), sizeof(GOOD("2000065000")) - 1, &r);
    ASSERT_EQ(r.status, 0);
    ASSERT_STR_EQ(r.out, "hi 2000065000\n");
}

TEST(truncated_and_corrupt_descriptions_run_nothing)
{
    const char good[] = GOOD("2000065000");
    size_t len = sizeof(good) - 1;
    /* cut anywhere inside its last item: not NUL-terminated */
    refused(good, len - 1, "not NUL-terminated");
    refused(good, len / 2 + 1, "");
    /* nothing at all */
    refused("", 0, "launch description of 0 bytes");
    /* an item without '=' */
    REFUSED("version=1\0uid=5\0gid=5\0argv\0", "item without '='");
    /* another version, or none first */
    REFUSED("version=2\0uid=5\0gid=5\0argv=/bin/true\0", "unknown version");
    REFUSED("uid=5\0version=1\0gid=5\0argv=/bin/true\0", "unknown version");
    /* no program */
    REFUSED("version=1\0uid=2000065000\0gid=2000065000\0", "no program to run");
    /* root, or no uid at all */
    REFUSED("version=1\0uid=0\0gid=0\0argv=/bin/true\0", "refusing to run a sandbox as root");
    REFUSED("version=1\0gid=5\0argv=/bin/true\0", "bad uid");
    REFUSED("version=1\0uid=12x\0gid=5\0argv=/bin/true\0", "bad uid '12x'");
    /* a limit it does not know, or malformed */
    REFUSED("version=1\0uid=2000065000\0gid=2000065000\0rlimit=stack:1:1\0argv=/bin/true\0",
            "unknown rlimit 'stack'");
    REFUSED("version=1\0uid=2000065000\0gid=2000065000\0rlimit=nofile:64\0argv=/bin/true\0",
            "bad rlimit");
}

TEST(a_description_over_its_bound_is_refused)
{
    size_t len = (4u << 20) + 2;
    char *big = malloc(len);
    ASSERT(big != NULL);
    memset(big, 'x', len);
    memcpy(big, "version=1", 9);
    big[9] = '\0';
    big[len - 1] = '\0';
    refused(big, len, "launch description of 4194306 bytes");
    free(big);
}
