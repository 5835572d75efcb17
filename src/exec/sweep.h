/*
 * Sweeps: removing the entries of a directory that nobody has used for a
 * while. The executor sweeps DATA/builds (a build per key) and
 * DATA/code/sha256 (a code blob per digest) this way.
 *
 * Whether an entry is in use is the caller's knowledge; how long it has
 * not been is its modification time: a sweep sets the time of every entry
 * in use to now, so an entry's time is when it was last seen in use (or
 * made), across restarts too. One sweep of dir runs in three steps:
 *
 *  1. thread pool: list dir (opened O_DIRECTORY | O_NOFOLLOW; at most
 *     FL_SWEEP_MAX_ENTRIES names per sweep). A name in keep gets its
 *     time set to now; any other whose time is older than grace becomes a
 *     candidate. Names starting with '.' are left alone (temporary files
 *     of others), except the ".trash-" ones an earlier sweep left.
 *  2. loop: every candidate that in_use() does not claim now is renamed to
 *     ".trash-<name>" in the same directory. From then on the name is
 *     free: a new build of that key starts from nothing, and the sweep
 *     never races whoever starts using the name after this point.
 *  3. thread pool: the renamed trees are removed (fl_remove_tree_at(): a
 *     bounded walk that never follows a link).
 *
 * Everything but the file work happens on the loop's thread.
 */
#ifndef FLINT_EXEC_SWEEP_H
#define FLINT_EXEC_SWEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define FL_SWEEP_MAX_ENTRIES 100000u

struct fl_sweep_spec {
    const char *dir;         /* the directory swept (copied) */
    const char *const *keep; /* names in use now (copied) */
    size_t nkeep;
    uint64_t grace_ms; /* unused for longer than this: removed */
    /* Asked on the loop just before a candidate is renamed away: true keeps
     * it (it came into use since step 1). */
    bool (*in_use)(const char *name, void *data);
    void *data;
};

/* err is 0 or the first error met (the others are still removed when they
 * can be); removed counts the entries removed. */
typedef void (*fl_sweep_cb)(int err, size_t removed, void *data);

/* Start one sweep; cb runs exactly once, on the loop, never from inside
 * this call. 0, or FL_ENOMEM / a libuv error without a callback. */
int fl_sweep_start(uv_loop_t *loop, const struct fl_sweep_spec *spec, fl_sweep_cb cb, void *data);

#endif
