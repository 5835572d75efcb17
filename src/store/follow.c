/* Following a kind of resource (see follow.h). */
#include "store/follow.h"

#include "base/error.h"
#include "base/log.h"
#include "base/str.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct fl_follower {
    struct fl_store *store;
    char kind[64];
    struct fl_follow_callbacks cbs;
    void *data;
    struct fl_store_watch *watch;
    json_t *known; /* name -> revision */
    bool listing;  /* a list is in flight (it holds a reference) */
    bool stopped;
    bool synced;
};

static void follower_free(struct fl_follower *f)
{
    json_decref(f->known);
    free(f);
}

static void apply_put(struct fl_follower *f, const char *name, uint64_t revision, const char *text,
                      size_t len)
{
    json_t *seen = json_object_get(f->known, name);
    if (seen != NULL && (uint64_t)json_integer_value(seen) >= revision)
        return;
    json_t *value = json_loadb(text, len, 0, NULL);
    if (value == NULL) {
        fl_log(FL_LOG_ERROR, "store", "unreadable resource skipped", "kind=%s name=%s", f->kind,
               name);
        return;
    }
    json_object_set_new(f->known, name, json_integer((json_int_t)revision));
    f->cbs.put(f->data, name, revision, value);
    json_decref(value);
}

static void apply_remove(struct fl_follower *f, const char *name, uint64_t revision)
{
    if (json_object_get(f->known, name) == NULL)
        return;
    json_object_del(f->known, name);
    f->cbs.remove(f->data, name, revision);
}

static void on_watch(int err, const struct fl_store_result *res, void *data);
static int list(struct fl_follower *f);

static void on_list(int err, const struct fl_store_result *res, void *data)
{
    struct fl_follower *f = data;
    f->listing = false;
    if (f->stopped) {
        follower_free(f);
        return;
    }
    if (err < 0) {
        fl_log(FL_LOG_ERROR, "store", "cannot list resources", "kind=%s err=%s", f->kind,
               fl_errname(err));
        if (f->cbs.failed)
            f->cbs.failed(f->data, err);
        return;
    }
    /* watch from the revision the list is as of (or the highest listed,
     * for a backend that cannot say): nothing changed since is missed */
    uint64_t top = res->seq;
    json_t *present = json_object();
    for (size_t i = 0; i < res->n; i++) {
        const struct fl_record *r = &res->records[i];
        json_object_set_new(present, r->key, json_true());
        if (r->seq > top)
            top = r->seq;
    }
    /* gone while we were not watching */
    const char *name;
    json_t *value;
    void *tmp;
    json_object_foreach_safe(f->known, tmp, name, value)
    {
        if (json_object_get(present, name) == NULL) {
            char copy[256];
            fl_strlcpy(copy, name, sizeof(copy));
            apply_remove(f, copy, 0);
        }
    }
    json_decref(present);
    for (size_t i = 0; i < res->n; i++)
        apply_put(f, res->records[i].key, res->records[i].seq, res->records[i].data,
                  res->records[i].len);
    if (!f->synced) {
        f->synced = true;
        if (f->cbs.synced)
            f->cbs.synced(f->data);
    }
    if (f->watch == NULL) {
        int rc = fl_store_watch(f->store, f->kind, top, on_watch, f, &f->watch);
        if (rc < 0 && f->cbs.failed)
            f->cbs.failed(f->data, rc);
    }
}

static void on_watch(int err, const struct fl_store_result *res, void *data)
{
    struct fl_follower *f = data;
    if (f->stopped)
        return;
    if (err == FL_ERANGE) {
        fl_log(FL_LOG_WARN, "store", "watch fell behind: listing again", "kind=%s", f->kind);
        list(f);
        return;
    }
    if (err < 0) {
        if (f->cbs.failed)
            f->cbs.failed(f->data, err);
        return;
    }
    for (size_t i = 0; i < res->n; i++) {
        const struct fl_record *r = &res->records[i];
        if (strcmp(r->type, "delete") == 0)
            apply_remove(f, r->key, r->seq);
        else
            apply_put(f, r->key, r->seq, r->data, r->len);
    }
}

static int list(struct fl_follower *f)
{
    if (f->listing)
        return 0;
    int rc = fl_store_list(f->store, f->kind, "", on_list, f);
    if (rc == 0)
        f->listing = true;
    return rc;
}

int fl_store_follow(struct fl_store *s, const char *kind, const struct fl_follow_callbacks *cbs,
                    void *data, struct fl_follower **out)
{
    struct fl_follower *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return FL_ENOMEM;
    f->known = json_object();
    if (f->known == NULL) {
        free(f);
        return FL_ENOMEM;
    }
    f->store = s;
    fl_strlcpy(f->kind, kind, sizeof(f->kind));
    f->cbs = *cbs;
    f->data = data;
    int rc = list(f);
    if (rc < 0) {
        follower_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

void fl_store_unfollow(struct fl_follower *f)
{
    f->stopped = true;
    if (f->watch != NULL) {
        fl_store_unwatch(f->watch);
        f->watch = NULL;
    }
    if (!f->listing)
        follower_free(f);
}

uint64_t fl_follower_revision(const struct fl_follower *f, const char *name)
{
    json_t *seen = json_object_get(f->known, name);
    return seen ? (uint64_t)json_integer_value(seen) : 0;
}
