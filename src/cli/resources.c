/*
 * flint <word> create|get|list|update|delete for every kind of the
 * registry (kinds/kinds.h: env, fn, route), and code uploads.
 *
 * The commands are one generic implementation driven by the kind's row:
 * its flags map command-line options to fields of the spec (see
 * docs/api.md), its plural names its API path. update reads the resource, changes only the
 * fields given, and writes it back with the revision it read, so a
 * concurrent change is a 409, never silently overwritten.
 */
#include "cli/cli.h"

#include "base/str.h"
#include "kinds/kinds.h"
#include "spec/spec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The object at a dotted path below root, created as needed; *last gets
 * the final key. */
static json_t *parent_of(json_t *root, const char *path, char *last, size_t size)
{
    json_t *cur = root;
    for (;;) {
        size_t n = strcspn(path, ".");
        if (path[n] == '\0') {
            fl_strlcpy(last, path, size);
            return cur;
        }
        char part[64];
        if (n >= sizeof(part))
            return NULL;
        memcpy(part, path, n);
        part[n] = '\0';
        json_t *next = json_object_get(cur, part);
        if (!json_is_object(next)) {
            next = json_object();
            json_object_set_new(cur, part, next);
        }
        cur = next;
        path += n + 1;
    }
}

/* The one document of a spec file (YAML or JSON) becomes the whole spec. */
static int read_spec_file(const char *path, const char *flag, json_t *spec)
{
    struct fl_buf err;
    json_t *docs = NULL;
    int rc = 0;
    fl_buf_init(&err, 4096);
    if (fl_spec_parse_file(path, &docs, &err) != 0) {
        rc = cli_error("%s %s: %s", flag, path, err.data);
    } else if (json_array_size(docs) != 1 || !json_is_object(json_array_get(docs, 0))) {
        rc = cli_error("%s %s: must hold one document, a mapping", flag, path);
    } else {
        json_object_clear(spec);
        json_object_update(spec, json_array_get(docs, 0));
    }
    json_decref(docs);
    fl_buf_release(&err);
    return rc;
}

static int apply_flag(struct cli *cli, const struct fl_kind_flag *f, const char *value,
                      json_t *spec, bool *lists_reset)
{
    char key[64];
    json_t *parent = parent_of(spec, f->field, key, sizeof(key));
    if (parent == NULL)
        return cli_error("internal: bad field path '%s'", f->field);

    switch (f->type) {
    case FL_FLAG_STRING:
        json_object_set_new(parent, key, json_string(value));
        return 0;
    case FL_FLAG_INT: {
        int64_t n;
        if (fl_parse_i64(value, 0, INT32_MAX, &n) < 0)
            return cli_error("%s takes a whole number, not '%s'", f->name, value), 2;
        json_object_set_new(parent, key, json_integer(n));
        return 0;
    }
    case FL_FLAG_NUMBER: {
        char *end = NULL;
        errno = 0;
        double d = strtod(value, &end);
        if (errno != 0 || end == value || *end != '\0' || d != d)
            return cli_error("%s takes a number such as 0.5, not '%s'", f->name, value), 2;
        json_object_set_new(parent, key, json_real(d));
        return 0;
    }
    case FL_FLAG_BOOL:
    case FL_FLAG_SWITCH:
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
            return cli_error("%s takes true or false, not '%s'", f->name, value), 2;
        json_object_set_new(parent, key, json_boolean(strcmp(value, "true") == 0));
        return 0;
    case FL_FLAG_LIST:
    case FL_FLAG_NAMES: {
        json_t *list = json_object_get(parent, key);
        if (!*lists_reset || !json_is_array(list)) {
            list = json_array();
            json_object_set_new(parent, key, list);
            *lists_reset = true;
        }
        if (f->type == FL_FLAG_LIST)
            return json_array_append_new(list, json_string(value)) < 0 ? cli_error("out of memory")
                                                                       : 0;
        /* a comma list; empty items (a trailing comma, '' alone) are no names */
        for (const char *p = value; *p != '\0';) {
            size_t n = strcspn(p, ",");
            if (n > 0 && json_array_append_new(list, json_stringn(p, n)) < 0)
                return cli_error("out of memory");
            p += n + (p[n] == ',');
        }
        if (json_array_size(list) == 0) /* none: the field goes (a table shows "-") */
            json_object_del(parent, key);
        return 0;
    }
    case FL_FLAG_ENVVAR: {
        const char *eq = strchr(value, '=');
        if (eq == NULL || eq == value)
            return cli_error("%s takes NAME=VALUE, not '%s'", f->name, value), 2;
        json_t *vars = json_object_get(parent, key);
        if (!json_is_object(vars)) {
            vars = json_object();
            json_object_set_new(parent, key, vars);
        }
        char *name = fl_strndup(value, (size_t)(eq - value));
        json_object_set_new(vars, name, json_string(eq + 1));
        free(name);
        return 0;
    }
    case FL_FLAG_CODE: {
        json_t *code = NULL;
        if (cli_upload_code(cli, value, &code) != 0)
            return 1;
        json_object_set_new(parent, key, code);
        return 0;
    }
    case FL_FLAG_PATH:
        json_object_del(parent, strcmp(key, "path") == 0 ? "prefix" : "path");
        json_object_set_new(parent, key, json_string(value));
        return 0;
    case FL_FLAG_TARGET:
        json_object_set_new(parent, "target", json_pack("{s:s}", key, value));
        return 0;
    case FL_FLAG_SPEC:
        return read_spec_file(value, f->name, spec);
    }
    return 1;
}

int cli_upload_code(struct cli *cli, const char *path, json_t **code)
{
    struct fl_buf data;
    char chunk[65536];
    int rc = 1;

    fl_buf_init(&data, 256u << 20);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cli_error("cannot open '%s': %s", path, strerror(errno));
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EISDIR) {
            cli_error("'%s' is a directory: give a file, or pack the directory as an archive\n"
                      "  (tar czf code.tar.gz -C '%s' . , then --code code.tar.gz)",
                      path, path);
            goto out;
        }
        if (n < 0) {
            cli_error("cannot read '%s': %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (fl_buf_append(&data, chunk, (size_t)n) < 0) {
            cli_error("'%s' is larger than %zu bytes", path, data.max);
            goto out;
        }
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char header[600];
    snprintf(header, sizeof(header), "X-Flint-Filename: %s", base);
    const char *headers[] = {header, NULL};
    struct cli_response r;
    if (cli_call(cli, "POST", "/v1/code", data.data ? data.data : "", data.len,
                 "application/octet-stream", headers, NULL, NULL, &r) != 0)
        goto out;
    if (r.status != 201 && r.status != 200) {
        cli_fail_response(&r, "cannot upload code");
    } else if (json_string_value(json_object_get(r.json, "sha256")) == NULL) {
        cli_error("cannot upload code: the answer has no sha256");
    } else {
        *code =
            json_pack("{s:O, s:s}", "sha256", json_object_get(r.json, "sha256"), "filename", base);
        rc = 0;
    }
    cli_response_release(&r);
out:
    close(fd);
    fl_buf_release(&data);
    return rc;
}

/* The kind's flag of that name ("--async"), or NULL. */
static const struct fl_kind_flag *find_flag(const struct fl_kind *kind, const char *name)
{
    for (size_t k = 0; k < FL_KIND_MAX_FLAGS && kind->flags[k].name != NULL; k++)
        if (strcmp(kind->flags[k].name, name) == 0)
            return &kind->flags[k];
    return NULL;
}

/* Parse "--flag value" / "--flag=value" pairs (a switch: "--flag" alone)
 * into spec; --name into *name. */
static int parse_flags(struct cli *cli, const struct fl_kind *kind, int argc, char **argv,
                       json_t *spec, const char **name)
{
    const char *word = kind->word;
    bool reset[FL_KIND_MAX_FLAGS] = {false};
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i], *value = NULL;
        char flag_name[64];
        const char *eq = strchr(arg, '=');
        size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
        if (n >= sizeof(flag_name))
            return cli_error("unknown option '%s'", arg), 2;
        memcpy(flag_name, arg, n);
        flag_name[n] = '\0';
        const struct fl_kind_flag *flag = find_flag(kind, flag_name);
        if (flag == NULL && strcmp(flag_name, "--name") != 0)
            return cli_error("'flint %s %s' has no option '%s'", word, argv[1], flag_name), 2;
        if (eq != NULL)
            value = eq + 1;
        else if (flag != NULL && flag->type == FL_FLAG_SWITCH)
            value = "true";
        else if (i + 1 < argc)
            value = argv[++i];
        else
            return cli_error("%s needs a value", flag_name), 2;
        if (strcmp(flag_name, "--name") == 0) {
            *name = value;
            continue;
        }
        size_t k = (size_t)(flag - kind->flags);
        int rc = apply_flag(cli, &kind->flags[k], value, spec, &reset[k]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static bool is_switch(const struct fl_kind *kind, const char *name)
{
    const struct fl_kind_flag *flag = find_flag(kind, name);
    return flag != NULL && flag->type == FL_FLAG_SWITCH;
}

/* Find --name; unless other options are allowed, refuse them. */
static int find_name(const struct fl_kind *kind, const char *verb, int argc, char **argv,
                     bool others, const char **name)
{
    const char *word = kind->word;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            *name = argv[++i];
        else if (fl_str_has_prefix(argv[i], "--name="))
            *name = argv[i] + 7;
        else if (!others)
            return cli_error("'flint %s %s' takes no option '%s'", word, verb, argv[i]), 2;
        else if (strchr(argv[i], '=') == NULL && !is_switch(kind, argv[i]))
            i++; /* skip the option's value */
    }
    if (*name == NULL && strcmp(verb, "list") != 0)
        return cli_error("'flint %s %s' needs --name", word, verb), 2;
    return 0;
}

int cmd_resource(struct cli *cli, int argc, char **argv)
{
    const char *word = argv[0], *verb = argv[1], *name = NULL;
    const struct fl_kind *k = fl_kind_by_word(word);
    if (k == NULL)
        return cli_error("internal: '%s' is not a kind's word", word);
    const char *kind = k->name;
    char path[512];
    struct cli_response r;
    int rc = 1;
    json_t *spec = json_object(), *body = NULL;

    bool writes = strcmp(verb, "create") == 0 || strcmp(verb, "update") == 0;
    rc = find_name(k, verb, argc, argv, writes, &name);
    if (rc != 0)
        goto out;
    rc = 1;
    if (strcmp(verb, "create") == 0) {
        rc = parse_flags(cli, k, argc, argv, spec, &name);
        if (rc != 0)
            goto out;
        rc = 1;
    }
    if (strcmp(verb, "list") == 0) {
        snprintf(path, sizeof(path), "/v1/%s", k->plural);
        if (cli_call_json(cli, "GET", path, NULL, &r) != 0)
            goto out;
        if (r.status != 200)
            rc = cli_fail_response(&r, "cannot list");
        else {
            cli_print_resources(cli, kind, json_object_get(r.json, "items"));
            rc = 0;
        }
        cli_response_release(&r);
        goto out;
    }
    snprintf(path, sizeof(path), "/v1/%s/%s", k->plural, name);
    if (strcmp(verb, "get") == 0 || strcmp(verb, "delete") == 0) {
        if (cli_call_json(cli, verb[0] == 'g' ? "GET" : "DELETE", path, NULL, &r) != 0)
            goto out;
        if (r.status != 200) {
            rc = cli_fail_response(&r, "%s '%s'", kind, name);
        } else if (verb[0] == 'g') {
            cli_print_resources(cli, kind, r.json);
            if (cli->output == CLI_OUTPUT_TABLE && k == &fl_kind_function) {
                /* what calls it: the routes that target it */
                struct cli_response routes;
                json_t *items = NULL;
                snprintf(path, sizeof(path), "/v1/%s", fl_kind_route.plural);
                if (cli_call_json(cli, "GET", path, NULL, &routes) == 0 && routes.status == 200)
                    items = json_object_get(routes.json, "items");
                cli_print_function_details(r.json, items);
                cli_response_release(&routes); /* filled even when flintd is unreachable */
            }
            rc = 0;
        } else {
            printf("%s '%s' deleted\n", kind, name);
            rc = 0;
        }
        cli_response_release(&r);
        goto out;
    }
    if (strcmp(verb, "create") == 0) {
        body = json_pack("{s:s, s:O}", "name", name, "spec", spec);
        snprintf(path, sizeof(path), "/v1/%s", k->plural);
        if (cli_call_json(cli, "POST", path, body, &r) != 0)
            goto out;
        if (r.status != 201 && r.status != 200) {
            rc = cli_fail_response(&r, "cannot create %s '%s'", kind, name);
        } else {
            printf("%s '%s' created\n", kind, name);
            rc = 0;
        }
        cli_response_release(&r);
        goto out;
    }
    /* update: read, change the given fields, write back with the revision read */
    if (cli_call_json(cli, "GET", path, NULL, &r) != 0)
        goto out;
    if (r.status != 200) {
        rc = cli_fail_response(&r, "%s '%s'", kind, name);
        cli_response_release(&r);
        goto out;
    }
    json_t *current = json_deep_copy(json_object_get(r.json, "spec"));
    json_t *revision = json_incref(json_object_get(r.json, "revision"));
    cli_response_release(&r);
    if (!json_is_object(current))
        current = json_object();
    /* Re-run the flags over the current spec so that lists and paths
     * replace what was there, and maps merge. */
    json_decref(spec);
    spec = current;
    rc = parse_flags(cli, k, argc, argv, spec, &name);
    if (rc != 0) {
        json_decref(revision);
        goto out;
    }
    body = json_pack("{s:o, s:O}", "revision", revision, "spec", spec);
    if (cli_call_json(cli, "PUT", path, body, &r) != 0) {
        rc = 1;
        goto out;
    }
    if (r.status != 200) {
        rc = cli_fail_response(&r, "cannot update %s '%s'", kind, name);
    } else {
        printf("%s '%s' updated\n", kind, name);
        rc = 0;
    }
    cli_response_release(&r);
out:
    json_decref(body);
    json_decref(spec);
    return rc;
}
