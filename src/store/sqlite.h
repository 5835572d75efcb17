/*
 * The embedded store: one SQLite database in a directory, DIR/flint.db
 * (its format is specified in sqlite_schema.c), opened through
 * fl_store_open("sqlite:DIR") or directly here.
 *
 * What it guarantees beyond store.h's common contract: every capability
 * (gap-free stream sequences, atomic multi-event appends, fences together
 * with expected sequences, dead letters redriven in place). Writes are
 * group-committed by one writer thread (one fsync for every write queued
 * meanwhile); reads run on a reader thread of their own.
 */
#ifndef FLINT_STORE_SQLITE_H
#define FLINT_STORE_SQLITE_H

#include "store/store.h"

/*
 * Open (creating it if need be) the store in dir. Takes an exclusive lock
 * on the directory (DIR/flint.lock): a second process gets FL_ELOCKED. A
 * foreign, newer or corrupt file is FL_ECORRUPT (every table read to start
 * is read whole at open, so damage there is refused here, not found by
 * the first read that meets it; the event and message tables, which grow
 * with use, are not: damage there fails the operation that meets it, and
 * is logged loudly); an unwritable directory, or a worker thread that cannot start,
 * a negative errno code. Nothing is left open on failure; err says what
 * failed, naming the file, and what to do. opts NULL: the defaults.
 */
int fl_store_sqlite_open(uv_loop_t *loop, const char *dir, const struct fl_store_options *opts,
                         struct fl_store **out, char *err, size_t errsize);

#endif
