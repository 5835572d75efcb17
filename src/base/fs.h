/*
 * Small file-system helpers shared by the daemon's modules: whole-file
 * reads into bounded buffers, atomic replacement, tree removal and
 * hard-linked tree copies. All are synchronous; callers on the loop use
 * them only for small files and rare events (builds, instance setup).
 */
#ifndef FLINT_BASE_FS_H
#define FLINT_BASE_FS_H

#include <stddef.h>

#include "base/buf.h"

/* Append the whole file at path to buf. A missing file appends nothing and
 * returns 0. FL_ETOOBIG if it does not fit (buf then holds a prefix), or
 * a negative errno code. */
int fl_file_read(const char *path, struct fl_buf *buf);

/* Replace path with data: written to path.tmp, fsynced, renamed over path.
 * 0 or a negative errno code (path is then unchanged). */
int fl_file_write_atomic(const char *path, const void *data, size_t len);

/* Remove path and everything under it, not following symbolic links. A
 * missing path is not an error. 0 or a negative errno code. */
int fl_remove_tree(const char *path);

/* Make dst (which must not exist) a copy of the tree at src: directories
 * are created (0755), regular files hard-linked (copied where linking is
 * impossible, e.g. across file systems), symbolic links recreated.
 * At most 32 levels deep. 0, FL_ERANGE (too deep), or a negative errno
 * code; dst may then be partial. */
int fl_link_tree(const char *src, const char *dst);

#endif
