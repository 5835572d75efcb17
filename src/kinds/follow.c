/* flintd's followers of every kind (see follow.h). */
#include "kinds/follow.h"

#include "base/error.h"
#include "base/log.h"
#include "store/follow.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The other half of each line of kinds.def: the part and the hooks. */
#define FL_KIND(name, part, hooks) extern const struct fl_kind_hooks hooks;
#include "kinds/kinds.def"
#undef FL_KIND

struct binding {
    const struct fl_kind *kind;
    size_t part; /* offset of the part in struct fl_kind_parts */
    const struct fl_kind_hooks *hooks;
};

static const struct binding bindings[] = {
#define FL_KIND(name, part, hooks) {&fl_kind_##name, offsetof(struct fl_kind_parts, part), &hooks},
#include "kinds/kinds.def"
#undef FL_KIND
};

#define NBINDINGS (sizeof(bindings) / sizeof(bindings[0]))

struct followed {
    struct fl_kind_followers *owner;
    const struct binding *b;
    void *part;
    struct fl_follower *follower;
    bool synced;
};

struct fl_kind_followers {
    struct fl_kind_parts parts;
    void (*applied)(void *data, const char *kind, const char *name);
    void *data;
    struct followed kinds[NBINDINGS];
};

static void on_put(void *data, const char *name, uint64_t revision, json_t *value)
{
    struct followed *k = data;
    if (k->part != NULL) {
        struct fl_buf err;
        fl_buf_init(&err, 1024);
        int rc = k->b->hooks->put(k->part, name, revision, json_object_get(value, "spec"), &err);
        if (rc < 0) {
            char msg[96];
            snprintf(msg, sizeof(msg), "%s refused", k->b->kind->name);
            fl_log(FL_LOG_ERROR, "flintd", msg, "name=%s revision=%llu err=\"%s\"", name,
                   (unsigned long long)revision, err.data ? err.data : fl_strerror(rc));
        }
        fl_buf_release(&err);
    }
    if (k->owner->applied != NULL)
        k->owner->applied(k->owner->data, k->b->kind->name, name);
}

static void on_remove(void *data, const char *name, uint64_t revision)
{
    struct followed *k = data;
    if (k->part != NULL)
        k->b->hooks->remove(k->part, name);
    if (k->owner->applied != NULL)
        k->owner->applied(k->owner->data, k->b->kind->name, name);
}

static void on_synced(void *data)
{
    struct followed *k = data;
    k->synced = true;
    if (k->part != NULL && k->b->hooks->synced != NULL)
        k->b->hooks->synced(k->part);
}

static const struct fl_follow_callbacks callbacks = {
    .put = on_put, .remove = on_remove, .synced = on_synced};

int fl_kind_followers_new(struct fl_store *store, const struct fl_kind_parts *parts,
                          void (*applied)(void *data, const char *kind, const char *name),
                          void *data, struct fl_kind_followers **out)
{
    struct fl_kind_followers *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return FL_ENOMEM;
    f->parts = *parts;
    f->applied = applied;
    f->data = data;
    for (size_t i = 0; i < NBINDINGS; i++) {
        struct followed *k = &f->kinds[i];
        k->owner = f;
        k->b = &bindings[i];
        memcpy(&k->part, (const char *)&f->parts + bindings[i].part, sizeof(k->part));
    }
    /* in the order of dependencies: the store answers in order */
    for (size_t i = 0; i < NBINDINGS; i++) {
        int rc = fl_store_follow(store, bindings[i].kind->name, &callbacks, &f->kinds[i],
                                 &f->kinds[i].follower);
        if (rc < 0) {
            fl_kind_followers_free(f);
            return rc;
        }
    }
    *out = f;
    return 0;
}

void fl_kind_followers_free(struct fl_kind_followers *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < NBINDINGS; i++)
        if (f->kinds[i].follower != NULL)
            fl_store_unfollow(f->kinds[i].follower);
    free(f);
}

bool fl_kind_followers_synced(const struct fl_kind_followers *f)
{
    for (size_t i = 0; i < NBINDINGS; i++)
        if (!f->kinds[i].synced)
            return false;
    return true;
}

static const struct followed *find(const struct fl_kind_followers *f, const char *kind)
{
    for (size_t i = 0; i < NBINDINGS; i++)
        if (strcmp(f->kinds[i].b->kind->name, kind) == 0)
            return &f->kinds[i];
    return NULL;
}

bool fl_kind_followers_applied(const struct fl_kind_followers *f, const char *kind,
                               const char *name, uint64_t revision)
{
    const struct followed *k = find(f, kind);
    if (k == NULL)
        return true;
    uint64_t held = fl_follower_revision(k->follower, name);
    return revision == 0 ? held == 0 : held >= revision;
}

json_t *fl_kind_followers_status(const struct fl_kind_followers *f, const char *kind,
                                 const char *name, bool detail)
{
    const struct followed *k = find(f, kind);
    if (k == NULL || k->part == NULL || k->b->hooks->status == NULL)
        return NULL;
    return k->b->hooks->status(k->part, name, detail);
}
