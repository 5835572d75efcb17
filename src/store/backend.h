/*
 * What a store backend implements: a table of operations behind store.h.
 *
 * store.c owns the public functions. It checks every argument the same
 * way for every backend (names, sizes, pages, flags: FL_EINVAL and
 * FL_ETOOBIG come from there, before a backend sees the call), fills in
 * defaults (a NULL page becomes {FL_PAGE_DEFAULT, ""}, NULL configs become
 * the documented defaults), then calls the backend through s->ops. A
 * backend's operation therefore receives valid arguments only, and
 * follows store.h's contract for the rest: 0 and one later callback on
 * the store's loop, or a negative error and no callback.
 *
 * A backend's store embeds struct fl_store as its first member, and its
 * watches embed struct fl_store_watch the same way. Adding a backend is a
 * row in store.c's scheme table (scheme, constructor) and a file of its
 * own; the conformance suite (tests/unit/store_conformance.inc) is run on
 * it unchanged.
 */
#ifndef FLINT_STORE_BACKEND_H
#define FLINT_STORE_BACKEND_H

#include "store/store.h"

struct fl_store_ops {
    unsigned caps; /* enum fl_store_cap bits */
    void (*close)(struct fl_store *s, void (*done)(void *data), void *data);
    const char *(*describe)(struct fl_store *s);
    void (*unwatch)(struct fl_store_watch *w);

    int (*put)(struct fl_store *s, const char *kind, const char *name, const char *json, size_t len,
               uint64_t expect, fl_store_cb cb, void *data);
    int (*get)(struct fl_store *s, const char *kind, const char *name, fl_store_cb cb, void *data);
    /* page NULL: every one, in one consistent view (fl_store_list) */
    int (*list)(struct fl_store *s, const char *kind, const char *prefix,
                const struct fl_page *page, fl_store_cb cb, void *data);
    int (*del)(struct fl_store *s, const char *kind, const char *name, uint64_t expect,
               fl_store_cb cb, void *data);
    int (*watch)(struct fl_store *s, const char *kind, uint64_t from, fl_store_cb cb, void *data,
                 struct fl_store_watch **out);

    /* lease NULL: not fenced */
    int (*append)(struct fl_store *s, const char *stream, const struct fl_event_in *events,
                  size_t n, uint64_t expect, const char *lease, uint64_t revision, fl_store_cb cb,
                  void *data);
    int (*read)(struct fl_store *s, const char *stream, uint64_t from, size_t max, fl_store_cb cb,
                void *data);
    int (*streams)(struct fl_store *s, const char *prefix, const struct fl_page *page,
                   fl_store_cb cb, void *data);
    int (*stream_delete)(struct fl_store *s, const char *stream, fl_store_cb cb, void *data);
    int (*subscribe)(struct fl_store *s, const char *name, bool prefix, fl_store_cb cb, void *data,
                     struct fl_store_watch **out);

    int (*topic_create)(struct fl_store *s, const char *topic, const struct fl_topic_limits *limits,
                        fl_store_cb cb, void *data);
    int (*topic_delete)(struct fl_store *s, const char *topic, fl_store_cb cb, void *data);
    int (*topic_info)(struct fl_store *s, const char *topic, fl_store_cb cb, void *data);
    int (*topics)(struct fl_store *s, const char *prefix, const struct fl_page *page,
                  fl_store_cb cb, void *data);
    int (*publish)(struct fl_store *s, const char *topic, const char *headers, const char *msg_id,
                   const void *payload, size_t len, fl_store_cb cb, void *data);
    int (*topic_read)(struct fl_store *s, const char *topic, uint64_t from, size_t max,
                      fl_store_cb cb, void *data);
    int (*message_find)(struct fl_store *s, const char *prefix, const char *msg_id, fl_store_cb cb,
                        void *data);
    int (*message_ids)(struct fl_store *s, const char *prefix, const struct fl_page *page,
                       fl_store_cb cb, void *data);
    int (*topic_watch)(struct fl_store *s, const char *topic, fl_store_cb cb, void *data,
                       struct fl_store_watch **out);
    int (*consumer_create)(struct fl_store *s, const char *topic, const char *consumer,
                           const struct fl_consumer_config *cfg, fl_store_cb cb, void *data);
    int (*consumer_delete)(struct fl_store *s, const char *topic, const char *consumer,
                           fl_store_cb cb, void *data);
    int (*consumer_info)(struct fl_store *s, const char *topic, const char *consumer,
                         fl_store_cb cb, void *data);
    int (*consumers)(struct fl_store *s, const char *topic, const struct fl_page *page,
                     fl_store_cb cb, void *data);
    int (*fetch)(struct fl_store *s, const char *topic, const char *consumer, size_t max,
                 fl_store_cb cb, void *data);
    int (*ack)(struct fl_store *s, const char *topic, const char *consumer, uint64_t seq,
               enum fl_ack_kind kind, int64_t delay_ms, const char *reason, fl_store_cb cb,
               void *data);
    int (*dead)(struct fl_store *s, const char *topic, const char *consumer,
                const struct fl_page *page, fl_store_cb cb, void *data);
    int (*redrive)(struct fl_store *s, const char *topic, const char *consumer, uint64_t seq,
                   fl_store_cb cb, void *data);
    int (*purge)(struct fl_store *s, const char *topic, const char *consumer, uint64_t seq,
                 fl_store_cb cb, void *data);
    int (*notify)(struct fl_store *s, const char *topic, const char *consumer, fl_store_cb cb,
                  void *data, struct fl_store_watch **out);

    int (*lease_acquire)(struct fl_store *s, const char *name, const char *owner, int64_t ttl_ms,
                         fl_store_cb cb, void *data);
    int (*lease_renew)(struct fl_store *s, const char *name, uint64_t revision, int64_t ttl_ms,
                       fl_store_cb cb, void *data);
    int (*lease_release)(struct fl_store *s, const char *name, uint64_t revision, fl_store_cb cb,
                         void *data);
    int (*lease_get)(struct fl_store *s, const char *name, fl_store_cb cb, void *data);
};

/* The head of every backend's store. */
struct fl_store {
    const struct fl_store_ops *ops;
    struct fl_store_options opts; /* defaults filled in */
};

/* The head of every backend's watch. */
struct fl_store_watch {
    struct fl_store *store;
};

/* A backend's constructor: location is the URI after "scheme:". */
typedef int (*fl_store_open_fn)(uv_loop_t *loop, const char *location,
                                const struct fl_store_options *opts, struct fl_store **out,
                                char *err, size_t errsize);

#endif
