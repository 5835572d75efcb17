/*
 * Following one kind of resource: what is in the store now, then every
 * change, as put and remove calls. flintd follows every resource kind
 * with it (src/kinds/follow.c), feeding the executor and the router.
 *
 * Start: list the kind, call put for each resource, then synced once;
 * then watch from the revision the list is as of (at least the highest
 * revision listed), so nothing that changed in
 * between is missed (a change replayed twice carries the same revision and
 * is the follower's to ignore). If the watch falls behind compaction
 * (FL_ERANGE) the follower lists again, puts what is there and removes
 * what is no longer there. A put for a name already known at the same
 * revision is not repeated. Works on store.h alone, for every backend.
 */
#ifndef FLINT_STORE_FOLLOW_H
#define FLINT_STORE_FOLLOW_H

#include <jansson.h>
#include <stdint.h>

#include "store/store.h"

struct fl_follower;

struct fl_follow_callbacks {
    /* value is the stored JSON (a reference valid during the call) */
    void (*put)(void *data, const char *name, uint64_t revision, json_t *value);
    void (*remove)(void *data, const char *name, uint64_t revision);
    void (*synced)(void *data);          /* after the first listing; may be NULL */
    void (*failed)(void *data, int err); /* the store failed; may be NULL */
};

/* Follow kind. The callbacks and data are kept. 0 or a negative error
 * (nothing is called then). */
int fl_store_follow(struct fl_store *s, const char *kind, const struct fl_follow_callbacks *cbs,
                    void *data, struct fl_follower **out);

/* The revision of name as last given to put, or 0 if the follower does not
 * hold it (never seen, or removed). Lets a writer wait until its change has
 * been applied (read-your-writes for the API). */
uint64_t fl_follower_revision(const struct fl_follower *f, const char *name);

/* Stop: no callback runs afterwards. */
void fl_store_unfollow(struct fl_follower *f);

#endif
