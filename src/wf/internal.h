/* What wf.c and validate.c share (not exported beyond src/wf). */
#ifndef FLINT_WF_INTERNAL_H
#define FLINT_WF_INTERNAL_H

#include <stddef.h>

/* Bytes of a path in an error ("tasks.A.inputs.do.run"); a longer one is
 * cut short, which only shortens a message. */
#define WF_PATH_MAX 2048

/* "<base>.<key>" (or "<key>" when base is empty) into out, the key cut
 * to FL_WF_ID_MAX bytes and the whole to size - 1. */
void wf_path_join(char *out, size_t size, const char *base, const char *key);

#endif
