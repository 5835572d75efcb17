/* How the CLI shows resources: a table, JSON or YAML. */
#include "cli/cli.h"

#include "kinds/kinds.h"
#include "spec/spec.h"

#include <stdio.h>
#include <string.h>

/* A cell's text: scalars as they are, arrays of strings joined with ',',
 * a target object as "function:name". */
static void cell_text(json_t *v, char *out, size_t size)
{
    out[0] = '\0';
    if (v == NULL || json_is_null(v)) {
        snprintf(out, size, "-");
    } else if (json_is_string(v)) {
        snprintf(out, size, "%s", json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(out, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(out, size, "%s", json_is_true(v) ? "true" : "false");
    } else if (json_is_array(v)) {
        size_t i, used = 0;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            char one[128];
            cell_text(item, one, sizeof(one));
            int n = snprintf(out + used, size - used, "%s%s", i ? "," : "", one);
            if (n < 0 || (size_t)n >= size - used)
                break;
            used += (size_t)n;
        }
        if (json_array_size(v) == 0)
            snprintf(out, size, "*");
    } else if (json_is_object(v) && json_object_size(v) == 1) {
        const char *key = json_object_iter_key(json_object_iter(v));
        char inner[200];
        cell_text(json_object_get(v, key), inner, sizeof(inner));
        snprintf(out, size, "%s:%s", key, inner);
    } else {
        char *text = json_dumps(v, JSON_COMPACT);
        snprintf(out, size, "%s", text ? text : "?");
        free(text);
    }
}

/* One step of making text inert: the character at p (a UTF-8 sequence, or
 * one byte) into out as it is, or as \xNN escapes when it is a control
 * character (C0 but HTAB, DEL, C1) or not UTF-8. Returns the bytes of p
 * used; *n gets the bytes written to out (at most 8). */
static size_t inert_step(const unsigned char *p, char out[9], size_t *n)
{
    size_t len = *p >= 0xc2 && *p <= 0xdf   ? 2
                 : *p >= 0xe0 && *p <= 0xef ? 3
                 : *p >= 0xf0 && *p <= 0xf4 ? 4
                                            : 1;
    for (size_t i = 1; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            len = 0; /* not UTF-8: the lead byte alone, escaped */
    bool c1 = len == 2 && p[0] == 0xc2 && p[1] <= 0x9f;
    if (len > 1 && !c1) {
        memcpy(out, p, len);
        *n = len;
        return len;
    }
    if (c1) {
        snprintf(out, 9, "\\xc2\\x%02x", p[1]);
        *n = 8;
        return 2;
    }
    if ((*p < 0x20 && *p != '\t') || *p >= 0x7f) {
        snprintf(out, 9, "\\x%02x", *p);
        *n = 4;
    } else {
        out[0] = (char)*p;
        *n = 1;
    }
    return 1;
}

void cli_print_inert(const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    while (*p != '\0') {
        char out[9];
        size_t n;
        p += inert_step(p, out, &n);
        fwrite(out, 1, n, stdout);
    }
}

/* text made inert into out (size bytes), cut short where it does not fit. */
static void inert_copy(const char *text, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t used = 0;
    while (*p != '\0') {
        char step[9];
        size_t n;
        size_t len = inert_step(p, step, &n);
        if (used + n >= size)
            break;
        memcpy(out + used, step, n);
        used += n;
        p += len;
    }
    out[used] = '\0';
}

void cli_lines_feed(const char *data, size_t len, void *arg)
{
    struct cli_lines *l = arg;
    if (l->raw) {
        fwrite(data, 1, len, stdout);
        fflush(stdout);
        return;
    }
    if (fl_buf_append(&l->partial, data, len) < 0)
        fl_buf_reset(&l->partial); /* a line past the bound is dropped, not the rest */
    size_t start = 0;
    const char *nl;
    while ((nl = memchr(l->partial.data + start, '\n', l->partial.len - start)) != NULL) {
        l->line(l->partial.data + start, (size_t)(nl - (l->partial.data + start)));
        start = (size_t)(nl - l->partial.data) + 1;
    }
    fl_buf_consume(&l->partial, start);
    fflush(stdout);
}

void cli_lines_finish(struct cli_lines *l)
{
    if (l->partial.len > 0)
        l->line(l->partial.data, l->partial.len);
    fl_buf_release(&l->partial);
}

void cli_print_value(const struct cli *cli, json_t *v)
{
    if (cli->output == CLI_OUTPUT_YAML) {
        struct fl_buf out;
        fl_buf_init(&out, 64u << 20);
        if (fl_spec_emit_yaml(v, &out) == 0)
            fwrite(out.data, 1, out.len, stdout);
        fl_buf_release(&out);
        return;
    }
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text != NULL)
        printf("%s\n", text);
    free(text);
}

void cli_print_resources(const struct cli *cli, const char *kind, json_t *items)
{
    const struct fl_kind *t = fl_kind_find(kind);
    if (cli->output != CLI_OUTPUT_TABLE || t == NULL) {
        cli_print_value(cli, items);
        return;
    }
    if (json_is_object(items)) {
        json_t *one = json_pack("[O]", items);
        cli_print_resources(cli, kind, one);
        json_decref(one);
        return;
    }
    cli_print_table(t->columns, items);
}

/* The text of the cell at path in item, made inert, into out. */
static void table_cell(json_t *item, const char *path, char *out, size_t size)
{
    char raw[256];
    cell_text(fl_kind_lookup(item, path), raw, sizeof(raw));
    inert_copy(raw, out, size);
}

void cli_print_table(const struct fl_kind_column *columns, json_t *items)
{
    size_t ncols = 0, widths[CLI_TABLE_MAX_COLUMNS] = {0};
    while (ncols < CLI_TABLE_MAX_COLUMNS && columns[ncols].title != NULL) {
        widths[ncols] = strlen(columns[ncols].title);
        ncols++;
    }
    size_t i;
    json_t *item;
    char cell[256];
    json_array_foreach(items, i, item)
    {
        for (size_t c = 0; c < ncols; c++) {
            table_cell(item, columns[c].path, cell, sizeof(cell));
            if (strlen(cell) > widths[c])
                widths[c] = strlen(cell);
        }
    }
    for (size_t c = 0; c < ncols; c++)
        printf("%-*s%s", c + 1 < ncols ? (int)widths[c] : 0, columns[c].title,
               c + 1 < ncols ? "  " : "\n");
    json_array_foreach(items, i, item)
    {
        for (size_t c = 0; c < ncols; c++) {
            table_cell(item, columns[c].path, cell, sizeof(cell));
            printf("%-*s%s", c + 1 < ncols ? (int)widths[c] : 0, cell, c + 1 < ncols ? "  " : "\n");
        }
    }
}

/* What `fn get` adds under the row in a table: what calls it, the build,
 * the calls, each instance, and the reasons a function does not run (load
 * error, build log). */
void cli_print_function_details(json_t *fn, json_t *routes)
{
    json_t *st = json_object_get(fn, "status");
    if (!json_is_object(st))
        return;
    char cell[256];
    const char *name = json_string_value(json_object_get(fn, "name"));
    size_t i, nroutes = 0;
    json_t *route;
    printf("\nroutes:    ");
    json_array_foreach(routes, i, route)
    {
        json_t *spec = json_object_get(route, "spec");
        const char *target =
            json_string_value(json_object_get(json_object_get(spec, "target"), "function"));
        if (name == NULL || target == NULL || strcmp(target, name) != 0)
            continue;
        json_t *path = json_object_get(spec, "path");
        char methods[128];
        cell_text(json_object_get(spec, "methods"), methods, sizeof(methods));
        printf("%s %s %s%s (%s)", nroutes ? "," : "", strcmp(methods, "-") == 0 ? "*" : methods,
               path ? json_string_value(path) : json_string_value(json_object_get(spec, "prefix")),
               path ? "" : "...", json_string_value(json_object_get(route, "name")));
        nroutes++;
    }
    printf("%s\n", nroutes == 0 ? " none (flint fn invoke, or the API's invoke)" : "");
    cell_text(json_object_get(st, "build"), cell, sizeof(cell));
    printf("build:      %s\n", cell);
    printf("calls:      %" JSON_INTEGER_FORMAT " (%" JSON_INTEGER_FORMAT
           " failed), %" JSON_INTEGER_FORMAT " queued\n",
           json_integer_value(json_object_get(st, "invocations")),
           json_integer_value(json_object_get(st, "errors")),
           json_integer_value(json_object_get(st, "queued")));
    json_t *instances = json_object_get(st, "instances");
    printf("instances:  %zu (%" JSON_INTEGER_FORMAT " started so far)\n",
           json_array_size(instances), json_integer_value(json_object_get(st, "instanceStarts")));
    json_t *inst;
    if (json_array_size(instances) > 0)
        printf("  %-36s  %-8s  %-8s  %-6s  %s\n", "ID", "STATE", "REVISION", "ACTIVE", "IDLE");
    json_array_foreach(instances, i, inst)
    {
        const char *state = json_string_value(json_object_get(inst, "state"));
        printf("  %-36s  %-8s  %-8" JSON_INTEGER_FORMAT "  %-6" JSON_INTEGER_FORMAT "  %.1fs%s\n",
               json_string_value(json_object_get(inst, "id")), state ? state : "-",
               json_integer_value(json_object_get(inst, "revision")),
               json_integer_value(json_object_get(inst, "active")),
               (double)json_integer_value(json_object_get(inst, "idleMs")) / 1000.0,
               json_is_true(json_object_get(inst, "draining")) ? "  (draining)" : "");
    }
    const char *load_error = json_string_value(json_object_get(st, "loadError"));
    if (load_error != NULL)
        printf("load error: %s\n", load_error);
    const char *log = json_string_value(json_object_get(st, "buildLog"));
    if (log != NULL && *log != '\0') {
        /* the end of the log is where a compiler says what went wrong */
        size_t lines = 0;
        for (const char *p = log; *p != '\0'; p++)
            lines += *p == '\n' || p[1] == '\0';
        const char *from = log;
        for (size_t skip = lines > 40 ? lines - 40 : 0; skip > 0; skip--)
            from = strchr(from, '\n') + 1;
        printf("build log%s:\n", from > log ? " (last 40 lines)" : "");
        for (const char *p = from; *p != '\0';) {
            size_t n = strcspn(p, "\n");
            printf("  %.*s\n", (int)n, p);
            p += n + (p[n] == '\n');
        }
    }
}
