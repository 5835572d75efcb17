/* The resource-kind registry (see kinds.h). */
#include "kinds/kinds.h"

#include "base/str.h"

#include <stdio.h>
#include <string.h>

const struct fl_kind *const fl_kinds[] = {
#define FL_KIND(name, part, hooks) &fl_kind_##name,
#include "kinds/kinds.def"
#undef FL_KIND
};

const size_t fl_nkinds = sizeof(fl_kinds) / sizeof(fl_kinds[0]);

const struct fl_kind *fl_kind_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < fl_nkinds; i++)
        if (strcmp(fl_kinds[i]->name, name) == 0)
            return fl_kinds[i];
    return NULL;
}

const struct fl_kind *fl_kind_by_plural(const char *plural)
{
    for (size_t i = 0; plural != NULL && i < fl_nkinds; i++)
        if (strcmp(fl_kinds[i]->plural, plural) == 0)
            return fl_kinds[i];
    return NULL;
}

const struct fl_kind *fl_kind_by_word(const char *word)
{
    for (size_t i = 0; word != NULL && i < fl_nkinds; i++)
        if (strcmp(fl_kinds[i]->word, word) == 0)
            return fl_kinds[i];
    return NULL;
}

int fl_kind_index(const struct fl_kind *k)
{
    for (size_t i = 0; k != NULL && i < fl_nkinds; i++)
        if (fl_kinds[i] == k)
            return (int)i;
    return -1;
}

const char *fl_kind_names(void)
{
    /* made once: the table is constant */
    static char names[512];
    if (names[0] != '\0')
        return names;
    size_t used = 0;
    for (size_t i = 0; i < fl_nkinds; i++) {
        const char *sep = i == 0 ? "" : i + 1 == fl_nkinds ? " or " : ", ";
        int n = snprintf(names + used, sizeof(names) - used, "%s%s", sep, fl_kinds[i]->name);
        if (n < 0 || (size_t)n >= sizeof(names) - used)
            break;
        used += (size_t)n;
    }
    return names;
}

bool fl_kind_field_known(const char *key)
{
    static const char *const fields[] = {"name",   "spec",      "revision", "kind",
                                         "status", "createdAt", "updatedAt"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (strcmp(key, fields[i]) == 0)
            return true;
    return false;
}

json_t *fl_kind_lookup(json_t *v, const char *path)
{
    char part[64];
    while (v != NULL && *path != '\0') {
        size_t n = strcspn(path, ".");
        if (n >= sizeof(part))
            return NULL;
        memcpy(part, path, n);
        part[n] = '\0';
        v = json_object_get(v, part);
        path += n + (path[n] == '.');
    }
    return v;
}

const char *fl_kind_ref_name(const struct fl_kind_ref *ref, json_t *spec)
{
    return json_string_value(fl_kind_lookup(spec, ref->field));
}

struct name_match {
    const char *name;
};

static int match_name(void *arg, const char *name)
{
    const struct name_match *m = arg;
    return strcmp(name, m->name) == 0;
}

bool fl_kind_names_block(const struct fl_kind *k, json_t *spec, const char *kind, const char *name)
{
    if (k->names.each == NULL || k->names.blocks_delete == NULL ||
        strcmp(k->names.blocks_delete, kind) != 0)
        return false;
    struct name_match m = {name};
    return k->names.each(spec, match_name, &m) == 1;
}
