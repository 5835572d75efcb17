/*
 * flintd's half of the kind registry: every kind of kinds.def followed in
 * the store (store/follow.h) and fed, through the kind's hooks, to the part
 * of flintd that runs it; and each resource's status, asked of that part.
 *
 *   store --watch--> follower of "function" --put/remove--> hooks --> executor
 *                    follower of "route"    --put/remove--> hooks --> router
 *                    follower of "timetrigger" -put/remove-> hooks --> timer
 *
 * A follower gets only its kind's puts and removes, so anything stored
 * under another kind (such as "<kind>.status") never reaches the part, and
 * the part sees a put only when the user's spec has a new revision. The
 * part is given the spec alone (what the stored value holds under "spec").
 *
 * Kinds are followed in the order of fl_kinds[] (the store answers in
 * order, so a function's environment is there before it). Everything runs
 * on the store's loop.
 */
#ifndef FLINT_KINDS_FOLLOW_H
#define FLINT_KINDS_FOLLOW_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "kinds/kinds.h"
#include "store/store.h"

/* The parts of flintd that run kinds (kinds.def names the field for each
 * kind). Borrowed; a NULL part's kinds are followed (their revisions are
 * known, so writes are answered) but nothing is fed and their status is
 * {}. */
struct fl_kind_parts {
    struct fl_executor *executor;   /* environments, functions */
    struct fl_router *router;       /* routes */
    struct fl_timer *timer;         /* time triggers */
    struct fl_mq *mq;               /* message-queue triggers */
    struct fl_wf_engine *workflows; /* workflows: the engine (NULL until it exists) */
};

struct fl_kind_followers;

/* Follow every kind of store, feeding parts (copied). applied(data, kind,
 * name) runs after each put or remove was given to the part (a write the
 * API holds may be answered; may be NULL). 0, or a negative error (nothing
 * is followed then). */
int fl_kind_followers_new(struct fl_store *store, const struct fl_kind_parts *parts,
                          void (*applied)(void *data, const char *kind, const char *name),
                          void *data, struct fl_kind_followers **out);

/* Stop following (no callback afterwards) and free. NULL is ignored. */
void fl_kind_followers_free(struct fl_kind_followers *f);

/* Whether what the store held at start has been given to every part. */
bool fl_kind_followers_synced(const struct fl_kind_followers *f);

/* Whether kind/name at revision (0: its deletion) has been given to its
 * part. An unknown kind is true (nothing follows it). */
bool fl_kind_followers_applied(const struct fl_kind_followers *f, const char *kind,
                               const char *name, uint64_t revision);

/* kind/name's status as its part sees it now (see struct fl_kind_hooks):
 * a new value the caller owns, or NULL (the part knows nothing of it, or
 * the kind has no status). */
json_t *fl_kind_followers_status(const struct fl_kind_followers *f, const char *kind,
                                 const char *name, bool detail);

#endif
