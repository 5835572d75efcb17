/*
 * Small file-system helpers shared by the daemon's modules: whole-file
 * reads into bounded buffers, atomic replacement, and the tree walkers
 * (removal, hard-linked copies, normalization of a build's output).
 *
 * The tree walkers run as root on trees a sandbox could write (a build's
 * output, an instance's directory), so they never resolve a path from the
 * top inside the tree: the root is opened with O_DIRECTORY | O_NOFOLLOW
 * and everything under it is reached with openat/fstatat/linkat/unlinkat
 * relative to the directory descriptor above it, never following a
 * symbolic link. A link inside a tree is an entry like any other (copied
 * as a link, or removed), never a way out of it. The path leading to a
 * root must be the caller's own (not writable by a sandbox): only its last
 * component is checked.
 *
 * Every walk is bounded (struct fl_tree_limits); past a bound it stops
 * with FL_ETOOBIG (entries, bytes) or FL_ERANGE (depth).
 *
 * All are synchronous and may take long on big trees: callers on the loop
 * run the walkers in the thread pool, and the rest only for small files.
 */
#ifndef FLINT_BASE_FS_H
#define FLINT_BASE_FS_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define FL_TREE_MAX_ENTRIES 1000000u /* default bound on the entries of a walk */
#define FL_TREE_MAX_DEPTH   64u      /* default bound on directory levels below the root */

/* The bounds of one walk; a 0 field takes its default (bytes: none). */
struct fl_tree_limits {
    uint64_t max_entries; /* entries met (files, directories, links, others) */
    unsigned max_depth;   /* directory levels below the root */
    uint64_t max_bytes;   /* fl_normalize_tree(): sizes of regular files added up */
};

/* What a walk met, filled in as far as it went (also on error). */
struct fl_tree_stats {
    uint64_t entries; /* entries met, the root excluded */
    uint64_t bytes;   /* sizes of the regular files */
    uint64_t removed; /* fl_normalize_tree(): special files removed */
};

/*
 * Paths built into fixed buffers. Each fails with -ENAMETOOLONG instead
 * of truncating, since a truncated path names another file; out is then
 * "" (size > 0), so that a caller that ignores the error uses no path
 * rather than the wrong one.
 */

/* Write all of data (len bytes) to fd, through short writes and signals.
 * 0, or a negative errno code (what was written before it stays written). */
int fl_write_all(int fd, const void *data, size_t len);

/* out = dir "/" name. 0 or -ENAMETOOLONG. */
int fl_path_join(char *out, size_t size, const char *dir, const char *name);

/* out = the path fmt and its arguments make (printf-style). 0,
 * -ENAMETOOLONG, or -EINVAL if the format fails. */
int fl_path_fmt(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Append the whole file at path to buf. A missing file appends nothing and
 * returns 0. FL_ETOOBIG if it does not fit (buf then holds a prefix), or
 * a negative errno code. */
int fl_file_read(const char *path, struct fl_buf *buf);

/* Replace path with data: written to path.tmp, fsynced, renamed over path.
 * 0 or a negative errno code (path is then unchanged). */
int fl_file_write_atomic(const char *path, const void *data, size_t len);

/* Remove path and everything under it, within the default bounds. A
 * symbolic link is removed itself (its target is never touched, whether
 * it is the root or inside the tree). A missing path is not an error.
 * 0, FL_ETOOBIG / FL_ERANGE past a bound (what was met so far is
 * removed), or a negative errno code. */
int fl_remove_tree(const char *path);

/* fl_remove_tree() of the entry name in the directory dirfd (the caller's
 * descriptor, left open), within limits (NULL: the defaults). */
int fl_remove_tree_at(int dirfd, const char *name, const struct fl_tree_limits *limits);

/* Make dst (which must not exist; its parent must) a copy of the tree at
 * src: directories are created (0755), regular files hard-linked (copied
 * where linking is impossible, e.g. across file systems, without setuid
 * and setgid bits), symbolic links recreated with the same target text
 * (never followed). Fifos, sockets and devices are skipped. limits NULL:
 * the defaults. 0; -ELOOP if src is a symbolic link (or an entry became
 * one while it was copied); -ENOTDIR if src is not a directory;
 * FL_ETOOBIG / FL_ERANGE past a bound; or a negative errno code. On
 * error dst may be partial: the caller removes it. */
int fl_link_tree(const char *src, const char *dst, const struct fl_tree_limits *limits);

/* Make the tree at path inert for the instances that load it: every entry
 * owned by root:root; directories 0755; regular files 0755 if any x bit
 * was set, else 0644 (no setuid, setgid, sticky or group/other write);
 * a file with more than one link is replaced by a private copy first (so
 * nothing outside the tree is changed through a shared inode); symbolic
 * links are kept as they are (owner changed, never followed); fifos,
 * sockets and devices are removed. Bounded by limits (NULL: the
 * defaults): entries, depth and bytes. stats (may be NULL) tells what was
 * met. 0, -ELOOP if path is a symbolic link, FL_ETOOBIG / FL_ERANGE past
 * a bound, or a negative errno code (the tree is then partly done). */
int fl_normalize_tree(const char *path, const struct fl_tree_limits *limits,
                      struct fl_tree_stats *stats);

#endif
