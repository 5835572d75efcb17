/*
 * flint apply -f FILE|DIR [--prune] [--dry-run]
 *
 * Spec files are YAML (or JSON) documents of the form
 *
 *   kind: function            # a kind of kinds/kinds.h: environment, function, route
 *   name: hello
 *   spec: { ... }             # as in docs/api.md
 *
 * except a workflow file, NAME.wf.yaml (.wf.yml, .wf.json), which holds a
 * bare workflow definition, the spec of the workflow NAME (Fission
 * Workflows' files apply as they are).
 *
 * where a function's `code` may be a path, relative to the spec file, that
 * is uploaded first. Each resource is created if missing, updated if its
 * spec differs, and left alone otherwise, so applying twice changes
 * nothing. Resources are applied in the order of the kinds (fl_kinds[]:
 * environments, then functions, then routes); --prune then deletes the
 * resources the specs no longer name, in the reverse order.
 */
#include "cli/cli.h"

#include "base/fs.h"
#include "base/str.h"
#include "kinds/kinds.h"
#include "spec/spec.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct item {
    json_t *doc;           /* the document as written */
    char source[PATH_MAX]; /* the file it came from */
};

struct plan {
    struct item items[512];
    int n;
};

/* A workflow file (NAME.wf.yaml, .wf.yml, .wf.json) holds one bare
 * definition, in Fission Workflows' way: it is the spec of the workflow
 * named after the file. Its one document becomes {kind: workflow, name,
 * spec}; a document that has a `kind` is a resource as anywhere else. 0,
 * or 1 with the error printed. */
static int wrap_workflow(const char *path, json_t *docs)
{
    static const char *const suffixes[] = {".wf.yaml", ".wf.yml", ".wf.json"};
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (!fl_str_has_suffix(base, suffixes[i]))
            continue;
        json_t *doc = json_array_get(docs, 0);
        if (json_array_size(docs) == 1 && json_is_object(doc) &&
            json_object_get(doc, "kind") != NULL)
            return 0;
        if (json_array_size(docs) != 1 || !json_is_object(doc))
            return cli_error("%s: a workflow file must hold one definition, a mapping", path);
        size_t n = strlen(base) - strlen(suffixes[i]);
        char name[256];
        if (n == 0 || n >= sizeof(name))
            return cli_error("%s: the file's name must be the workflow's name", path);
        memcpy(name, base, n);
        name[n] = '\0';
        json_t *wrapped =
            json_pack("{s:s, s:s, s:O}", "kind", "workflow", "name", name, "spec", doc);
        if (wrapped == NULL)
            return cli_error("out of memory");
        json_array_set_new(docs, 0, wrapped);
        return 0;
    }
    return 0;
}

static int load_file(struct plan *plan, const char *path)
{
    struct fl_buf err;
    json_t *docs = NULL;
    size_t i;
    json_t *doc;
    int rc = 0;

    fl_buf_init(&err, 4096);
    if (fl_spec_parse_file(path, &docs, &err) != 0) {
        rc = cli_error("%s", err.data);
        goto out;
    }
    rc = wrap_workflow(path, docs);
    if (rc != 0)
        goto out;
    json_array_foreach(docs, i, doc)
    {
        if (json_is_null(doc))
            continue;
        const char *kind = json_string_value(json_object_get(doc, "kind"));
        const char *name = json_string_value(json_object_get(doc, "name"));
        if (!json_is_object(doc) || fl_kind_find(kind) == NULL) {
            rc = cli_error("%s: document %zu: 'kind' must be %s", path, i + 1, fl_kind_names());
            goto out;
        }
        if (name == NULL || *name == '\0') {
            rc = cli_error("%s: document %zu: 'name' is missing", path, i + 1);
            goto out;
        }
        if (!json_is_object(json_object_get(doc, "spec"))) {
            rc = cli_error("%s: %s '%s': 'spec' must be a mapping", path, kind, name);
            goto out;
        }
        /* as the API: what `get -o yaml` printed applies as it is */
        const char *key;
        json_t *field;
        json_object_foreach(doc, key, field)
        {
            if (!fl_kind_field_known(key)) {
                rc = cli_error("%s: %s '%s': '%s' is not a field (kind, name, spec)", path, kind,
                               name, key);
                goto out;
            }
        }
        for (int k = 0; k < plan->n; k++) {
            json_t *other = plan->items[k].doc;
            if (strcmp(json_string_value(json_object_get(other, "kind")), kind) == 0 &&
                strcmp(json_string_value(json_object_get(other, "name")), name) == 0) {
                rc = cli_error("%s: %s '%s' is also declared in %s", path, kind, name,
                               plan->items[k].source);
                goto out;
            }
        }
        if (plan->n == (int)(sizeof(plan->items) / sizeof(plan->items[0]))) {
            rc = cli_error("more than %zu resources in one apply",
                           sizeof(plan->items) / sizeof(plan->items[0]));
            goto out;
        }
        if (fl_strlcpy(plan->items[plan->n].source, path, sizeof(plan->items[0].source)) >=
            sizeof(plan->items[0].source)) {
            rc = cli_error("%s: %s", path, strerror(ENAMETOOLONG));
            goto out;
        }
        plan->items[plan->n].doc = json_incref(doc);
        plan->n++;
    }
out:
    json_decref(docs);
    fl_buf_release(&err);
    return rc;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_path(struct plan *plan, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return cli_error("cannot read '%s': %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return load_file(plan, path);
    DIR *dir = opendir(path);
    if (dir == NULL)
        return cli_error("cannot open directory '%s': %s", path, strerror(errno));
    char *names[256] = {0};
    int n = 0, rc = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (!fl_str_has_suffix(de->d_name, ".yaml") && !fl_str_has_suffix(de->d_name, ".yml") &&
            !fl_str_has_suffix(de->d_name, ".json"))
            continue;
        if (n == 256) {
            /* skipping some would apply part of the folder, and --prune
             * would delete what the rest declares */
            rc = cli_error("'%s' holds more than 256 spec files: split it", path);
            break;
        }
        names[n++] = fl_strndup(de->d_name, strlen(de->d_name));
    }
    closedir(dir);
    qsort(names, (size_t)n, sizeof(names[0]), compare_names);
    for (int i = 0; i < n; i++) {
        char file[PATH_MAX];
        if (rc == 0 && fl_path_join(file, sizeof(file), path, names[i]) < 0)
            rc = cli_error("%s/%s: %s", path, names[i], strerror(ENAMETOOLONG));
        if (rc == 0)
            rc = load_file(plan, file);
        free(names[i]);
    }
    if (rc == 0 && n == 0)
        rc = cli_error("'%s' holds no .yaml, .yml or .json spec files", path);
    return rc;
}

/* Replace a function's code path by the uploaded code's digest. */
static int resolve_code(struct cli *cli, struct item *item, bool dry_run)
{
    json_t *spec = json_object_get(item->doc, "spec");
    const char *code = json_string_value(json_object_get(spec, "code"));
    if (code == NULL)
        return 0;
    char path[PATH_MAX], dir[PATH_MAX];
    fl_strlcpy(dir, item->source, sizeof(dir)); /* both PATH_MAX: it fits */
    int rc = code[0] == '/' ? fl_path_fmt(path, sizeof(path), "%s", code)
                            : fl_path_join(path, sizeof(path), dirname(dir), code);
    if (rc < 0)
        return cli_error("%s: code '%s': %s", item->source, code, strerror(-rc));
    if (dry_run) {
        json_object_set_new(spec, "code", json_pack("{s:s}", "path", path));
        return 0;
    }
    json_t *digest = NULL;
    if (cli_upload_code(cli, path, &digest) != 0)
        return 1;
    json_object_set_new(spec, "code", digest);
    return 0;
}

/* The API's path of kind k's collection (name NULL) or of one resource:
 * 0, or 1 with the error printed when the name does not fit. */
static int api_path(char *out, size_t size, const struct fl_kind *k, const char *name)
{
    int rc = name ? fl_path_fmt(out, size, "/v1/%s/%s", k->plural, name)
                  : fl_path_fmt(out, size, "/v1/%s", k->plural);
    if (rc < 0)
        return cli_error("%s '%.64s...': the name is too long", k->name, name ? name : "");
    return 0;
}

static int apply_item(struct cli *cli, struct item *item, bool dry_run)
{
    const char *kind = json_string_value(json_object_get(item->doc, "kind"));
    const char *name = json_string_value(json_object_get(item->doc, "name"));
    const struct fl_kind *k = fl_kind_find(kind);
    json_t *spec = json_object_get(item->doc, "spec");
    char path[512];
    struct cli_response r;
    int rc = 1;

    if (k == &fl_kind_function && resolve_code(cli, item, dry_run) != 0)
        return 1;
    if (api_path(path, sizeof(path), k, name) != 0 ||
        cli_call_json(cli, "GET", path, NULL, &r) != 0)
        return 1;
    if (r.status == 404) {
        cli_response_release(&r);
        if (dry_run) {
            printf("%s/%s would be created\n", kind, name);
            return 0;
        }
        json_t *body = json_pack("{s:s, s:O}", "name", name, "spec", spec);
        if (api_path(path, sizeof(path), k, NULL) == 0 &&
            cli_call_json(cli, "POST", path, body, &r) == 0) {
            if (r.status == 201 || r.status == 200) {
                printf("%s/%s created\n", kind, name);
                rc = 0;
            } else {
                rc = cli_fail_response(&r, "%s: cannot create %s '%s'", item->source, kind, name);
            }
            cli_response_release(&r);
        }
        json_decref(body);
        return rc;
    }
    if (r.status != 200) {
        rc = cli_fail_response(&r, "%s '%s'", kind, name);
        cli_response_release(&r);
        return rc;
    }
    if (json_equal(json_object_get(r.json, "spec"), spec)) {
        printf("%s/%s unchanged\n", kind, name);
        cli_response_release(&r);
        return 0;
    }
    if (dry_run) {
        printf("%s/%s would be updated\n", kind, name);
        cli_response_release(&r);
        return 0;
    }
    json_t *body =
        json_pack("{s:O, s:O}", "revision", json_object_get(r.json, "revision"), "spec", spec);
    cli_response_release(&r);
    if (cli_call_json(cli, "PUT", path, body, &r) == 0) {
        if (r.status == 200) {
            printf("%s/%s updated\n", kind, name);
            rc = 0;
        } else {
            rc = cli_fail_response(&r, "%s: cannot update %s '%s'", item->source, kind, name);
        }
        cli_response_release(&r);
    }
    json_decref(body);
    return rc;
}

static bool declared(const struct plan *plan, const char *kind, const char *name)
{
    for (int i = 0; i < plan->n; i++) {
        json_t *doc = plan->items[i].doc;
        if (strcmp(json_string_value(json_object_get(doc, "kind")), kind) == 0 &&
            strcmp(json_string_value(json_object_get(doc, "name")), name) == 0)
            return true;
    }
    return false;
}

static int prune(struct cli *cli, const struct plan *plan, bool dry_run)
{
    for (size_t i = fl_nkinds; i-- > 0;) {
        const struct fl_kind *k = fl_kinds[i];
        char path[512];
        struct cli_response r;
        if (api_path(path, sizeof(path), k, NULL) != 0 ||
            cli_call_json(cli, "GET", path, NULL, &r) != 0)
            return 1;
        if (r.status != 200) {
            int rc = cli_fail_response(&r, "cannot list for --prune");
            cli_response_release(&r);
            return rc;
        }
        size_t j;
        json_t *item;
        json_array_foreach(json_object_get(r.json, "items"), j, item)
        {
            const char *name = json_string_value(json_object_get(item, "name"));
            if (name == NULL || declared(plan, k->name, name))
                continue;
            if (dry_run) {
                printf("%s/%s would be deleted\n", k->name, name);
                continue;
            }
            struct cli_response d;
            if (api_path(path, sizeof(path), k, name) != 0 ||
                cli_call_json(cli, "DELETE", path, NULL, &d) != 0) {
                cli_response_release(&r);
                return 1;
            }
            if (d.status != 200 && d.status != 404) {
                cli_fail_response(&d, "cannot delete %s '%s'", k->name, name);
                cli_response_release(&d);
                cli_response_release(&r);
                return 1;
            }
            printf("%s/%s deleted\n", k->name, name);
            cli_response_release(&d);
        }
        cli_response_release(&r);
    }
    return 0;
}

int cmd_apply(struct cli *cli, int argc, char **argv)
{
    struct plan *plan = calloc(1, sizeof(*plan));
    const char *paths[32];
    int npaths = 0, rc = 0;
    bool do_prune = false, dry_run = false;

    if (plan == NULL)
        return cli_error("out of memory");
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--file") == 0) && i + 1 < argc) {
            if (npaths == 32) {
                rc = cli_error("at most 32 -f paths");
                goto out;
            }
            paths[npaths++] = argv[++i];
        } else if (strcmp(argv[i], "--prune") == 0) {
            do_prune = true;
        } else if (strcmp(argv[i], "--dry-run") == 0) {
            dry_run = true;
        } else {
            rc = 2;
            cli_error("'flint apply' has no option '%s'", argv[i]);
            goto out;
        }
    }
    if (npaths == 0) {
        rc = 2;
        cli_error("'flint apply' needs -f FILE|DIR");
        goto out;
    }
    for (int i = 0; i < npaths && rc == 0; i++)
        rc = load_path(plan, paths[i]);
    for (size_t k = 0; k < fl_nkinds && rc == 0; k++)
        for (int i = 0; i < plan->n && rc == 0; i++)
            if (strcmp(json_string_value(json_object_get(plan->items[i].doc, "kind")),
                       fl_kinds[k]->name) == 0)
                rc = apply_item(cli, &plan->items[i], dry_run);
    if (rc == 0 && do_prune)
        rc = prune(cli, plan, dry_run);
out:
    for (int i = 0; i < plan->n; i++)
        json_decref(plan->items[i].doc);
    free(plan);
    return rc;
}
