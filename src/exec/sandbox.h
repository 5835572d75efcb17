/*
 * The instance sandbox: run one process tree isolated and bounded, as an
 * unprivileged host uid.
 *
 * flintd (root) never runs anything of a function's itself. It starts
 * flint-sandbox (src/launcher), which joins the instance's cgroups, sets its
 * rlimits, opens the bind sources as root without following links, drops
 * to a host uid of the sandbox's own (from the mode's range, one per live
 * sandbox, gid the same, no supplementary groups, NoNewPrivs) and execs
 * bubblewrap: new user, mount, pid, ipc, uts, cgroup and network
 * namespaces, no further user namespaces, no capabilities, uid/gid 65534
 * inside, a seccomp filter (see src/launcher/main.c for each refused call
 * and why), read-only system directories (never the whole root: the data
 * directory stays invisible), /proc with /proc/sys read-only, a minimal
 * /dev, a private /tmp of tmp_bytes (a tmpfs: nothing reaches the host's
 * disk), the code read-only at /code, the runtime read-only at /runtime, a
 * build's output directory writable at /run/flint (an instance's publish
 * socket's directory read-only there), and a read-only root.
 * The environment is exactly the spec's, set by bwrap inside: it is in no
 * argument list and no environment outside the sandbox.
 *
 * An instance's listening socket is bound by flintd in a directory only
 * flintd can reach and handed over as fd 3 (listen_fd). With network
 * access the instance gets a network namespace of its own with
 * slirp4netns (outbound only; the host's loopback is unreachable), else
 * none but its own loopback.
 *
 * The whole chain gets SIGKILL when flintd dies, even by kill -9
 * (PR_SET_PDEATHSIG in the launcher, --die-with-parent in bwrap).
 *
 * Limits always: CPU seconds, open files, processes, file size and no core
 * dumps, by rlimits; and where cgroups are writable (v1 memory and pids
 * here, v2 alike) a per-instance group with a memory and a pids limit, and
 * a CPU bandwidth cap (cfs quota, cpu.max) when cpu_millis is set and the
 * cpu controller is writable, joined before anything runs. Memory is
 * limited by the cgroup, which counts what is used; only without one does
 * the data rlimit stand in (it counts reservations too, which some
 * runtimes make in plenty).
 *
 * Without a usable bwrap the process still runs as the unprivileged uid
 * with the limits, and the mode says so (flint status shows it, flintd
 * warns at start). Such a process sees the host's file system as that uid
 * does: this mode is for development machines only.
 *
 * The launch description (what flintd writes into a memfd that the
 * launcher reads on fd 3; version 1): a sequence of "key=value" items,
 * each ending in a NUL byte, the first "version=1". Keys: uid, gid (once
 * each, never 0); cgroup (a cgroup.procs file to join, any number);
 * rlimit ("NAME:SOFT:HARD", NAME one of cpu nofile nproc fsize core data);
 * env ("NAME=value", any number); argv (the program and its arguments, in
 * order, at least one); and with bubblewrap: bwrap (its path), seccomp
 * (present: load the filter), slirp4netns (its path: give the sandbox a
 * network), arg (one bwrap option word, in order), bind-ro and bind-rw
 * ("DEST<TAB>SOURCE"). The launcher refuses (exit 125, one line on stderr)
 * a description that is not NUL-terminated, is larger than 4 MiB, has an
 * item without '=', another version, no program, or uid/gid 0.
 */
#ifndef FLINT_EXEC_SANDBOX_H
#define FLINT_EXEC_SANDBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "exec/spec.h"

struct fl_sandbox;

enum fl_sandbox_exit {
    FL_EXIT_NORMAL,  /* exited by itself; see status */
    FL_EXIT_STOPPED, /* fl_sandbox_stop() */
    FL_EXIT_MEMORY,  /* hit its memory limit */
    FL_EXIT_CPU,     /* hit its CPU time limit */
    FL_EXIT_SIGNAL,  /* killed by another signal (a crash) */
};

/* The host uids of sandboxes: one per live sandbox, never 0. */
#define FL_SANDBOX_UID_BASE  2000000000u
#define FL_SANDBOX_UID_COUNT 65536u
/* The two above as flintd's --sandbox-uids default, BASE:COUNT. */
#define FL_SANDBOX_UIDS_DEFAULT "2000000000:65536"

struct fl_sandbox_mode {
    bool bwrap;            /* isolated by bubblewrap */
    bool cgroup;           /* memory and pids limits by cgroup */
    bool slirp4netns;      /* instances with network access can have it */
    unsigned uid_base;     /* sandboxes run as host uids uid_base .. +uid_count-1 */
    unsigned uid_count;    /* (gid the same); at most 65536 */
    char launcher[4096];   /* the flint-sandbox program; "" if not found */
    char description[128]; /* e.g. "bwrap+seccomp+cgroup-v1", "rlimits only (...)" */
};

/* The host uids sandboxes run as from now on: base .. base+count-1 (count
 * at most FL_SANDBOX_UID_COUNT), FL_SANDBOX_UID_BASE and its count until
 * called. Call before fl_sandbox_probe(); flintd's --sandbox-uids. */
void fl_sandbox_use_uids(unsigned base, unsigned count);

/* Find out once what this machine allows (runs bwrap on `true`). Fills
 * mode; force_rlimits_only skips bwrap (for tests of the fallback). */
void fl_sandbox_probe(struct fl_sandbox_mode *mode, bool force_rlimits_only);

struct fl_sandbox_spec {
    const char *const *argv; /* NULL-terminated; argv[0] a path inside the sandbox */
    const char *const *env;  /* NULL-terminated "NAME=value"; set inside only */
    const char *code_dir;    /* -> /code, read-only; may be NULL */
    const char *runtime_dir; /* -> /runtime, read-only; may be NULL */
    const char *out_dir;     /* -> /run/flint, writable (a build's output; given to
                              * the sandbox's uid); may be NULL */
    const char *publish_dir; /* -> /run/flint, read-only (an instance's: the directory of
                              * its publish socket, which stays connectable); may be NULL */
    int listen_fd;           /* a listening socket the program gets as fd 3; -1: none */
    uint64_t tmp_bytes;      /* the size of the private /tmp; 0: 64 MiB */
    struct fl_limits limits;
    bool network; /* outbound network (slirp4netns); else none at all */
};

/* stdout/stderr lines (without the newline; cut at 16 KiB). */
typedef void (*fl_sandbox_line_cb)(struct fl_sandbox *sb, bool is_stderr, const char *line,
                                   size_t len, void *data);
/* The tree is gone; status is the exit status when how is FL_EXIT_NORMAL,
 * else the signal. The sandbox is freed after the callback returns. */
typedef void (*fl_sandbox_exit_cb)(struct fl_sandbox *sb, enum fl_sandbox_exit how, int status,
                                   void *data);

/* Start spec in a sandbox of the given mode. 0, or a negative error (and
 * no callback will come). */
int fl_sandbox_spawn(uv_loop_t *loop, const struct fl_sandbox_mode *mode,
                     const struct fl_sandbox_spec *spec, fl_sandbox_line_cb on_line,
                     fl_sandbox_exit_cb on_exit, void *data, struct fl_sandbox **out);

/* Stop: SIGTERM to the whole tree, SIGKILL after grace_ms. */
void fl_sandbox_stop(struct fl_sandbox *sb, uint64_t grace_ms);

/* Kill the processes of, and remove, the cgroups of instances whose flintd
 * is gone (killed with -9: its groups are named i<pid>-<n>). Returns how
 * many were removed. flintd calls it at start, after fl_sandbox_probe(). */
int fl_sandbox_cleanup_stale(void);

/* Remember the processes the sandbox has now (the executor calls it once an
 * instance is ready): they are what fl_sandbox_end_strays() spares. */
void fl_sandbox_mark(struct fl_sandbox *sb);

/* Kill every process of the sandbox that fl_sandbox_mark() did not see:
 * what calls left behind (a daemon, a setsid'd child). Only for a sandbox
 * with a cgroup (it lists the cgroup's processes: one small read); the
 * caller knows that no call is in flight. Returns how many were killed. */
int fl_sandbox_end_strays(struct fl_sandbox *sb);

/* Whether the kernel killed a process of the sandbox for its memory limit
 * (by the cgroup's counters; false without a cgroup). */
bool fl_sandbox_oom_killed(const struct fl_sandbox *sb);

/* The pid of the sandbox's first process (for tests and status). */
int fl_sandbox_pid(const struct fl_sandbox *sb);

/* The directory of the sandbox's cgroup that holds every process of it and
 * its pids controller (cgroup.procs, pids.current, pids.max, pids.events),
 * e.g. /sys/fs/cgroup/pids/flint/i<flintd pid>-<n>; "" without a cgroup.
 * The string lives as long as the sandbox; the directory is removed just
 * before the exit callback. For tests and diagnostics, which count only
 * the sandbox's own processes by it: nothing is acted on through it. */
const char *fl_sandbox_cgroup(const struct fl_sandbox *sb);

#endif
