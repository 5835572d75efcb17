/* flint fn test, flint fn logs, flint status. */
#include "cli/cli.h"

#include "base/str.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_fn_test(struct cli *cli, int argc, char **argv)
{
    const char *name = NULL, *method = NULL, *body = NULL, *body_file = NULL, *subpath = "";
    const char *headers[33] = {NULL};
    int nheaders = 0, rc = 1;
    struct fl_buf file;

    fl_buf_init(&file, 64u << 20);
    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = cli_option_value(argc, argv, &i, "--name")) != NULL)
            name = v;
        else if ((v = cli_option_value(argc, argv, &i, "--method")) != NULL)
            method = v;
        else if ((v = cli_option_value(argc, argv, &i, "--body")) != NULL)
            body = v;
        else if ((v = cli_option_value(argc, argv, &i, "--body-file")) != NULL)
            body_file = v;
        else if ((v = cli_option_value(argc, argv, &i, "--path")) != NULL)
            subpath = v;
        else if ((v = cli_option_value(argc, argv, &i, "-H")) != NULL) {
            if (nheaders == 32)
                return cli_error("at most 32 -H headers"), 2;
            headers[nheaders++] = v;
        } else
            return cli_error("'flint fn test' has no option '%s'", argv[i]), 2;
    }
    if (name == NULL)
        return cli_error("'flint fn test' needs --name"), 2;
    if (body_file != NULL) {
        FILE *f = fopen(body_file, "rb");
        char chunk[65536];
        size_t n;
        if (f == NULL)
            return cli_error("cannot open '%s': %s", body_file, strerror(errno));
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            if (fl_buf_append(&file, chunk, n) < 0) {
                fclose(f);
                fl_buf_release(&file);
                return cli_error("'%s' is larger than %zu bytes", body_file, file.max);
            }
        fclose(f);
        body = file.data ? file.data : "";
    }
    if (method == NULL)
        method = body != NULL ? "POST" : "GET";
    if (*subpath != '\0' && *subpath != '/')
        return cli_error("--path must start with '/'"), 2;
    char path[1024];
    snprintf(path, sizeof(path), "/v1/functions/%s/invoke%s", name, subpath);
    struct cli_response r;
    if (cli_call(cli, method, path, body, body ? (body_file ? file.len : strlen(body)) : 0,
                 "application/octet-stream", headers, NULL, NULL, &r) == 0) {
        fwrite(r.raw.data ? r.raw.data : "", 1, r.raw.len, stdout);
        if (r.raw.len > 0 && r.raw.data[r.raw.len - 1] != '\n')
            putchar('\n');
        if (r.status >= 400)
            cli_error("function '%s' answered HTTP %ld", name, r.status);
        else
            rc = 0;
        cli_response_release(&r);
    }
    fl_buf_release(&file);
    return rc;
}

/* Log lines arrive as JSON lines, split anywhere; -o json and -o yaml print
 * them as they are, a table as "TIME  INSTANCE  STREAM  LINE". */
struct log_printer {
    bool raw;
    struct fl_buf partial;
};

/* Print a function's text for a terminal: control characters (C0, DEL and
 * C1, raw or UTF-8 encoded) are shown as \xNN, never sent as they are, so a
 * function's output cannot move the cursor, retitle the window or worse. */
static void print_inert(const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    while (*p != '\0') {
        size_t n = *p >= 0xc2 && *p <= 0xdf   ? 2
                   : *p >= 0xe0 && *p <= 0xef ? 3
                   : *p >= 0xf0 && *p <= 0xf4 ? 4
                                              : 1;
        for (size_t i = 1; i < n; i++)
            if (p[i] < 0x80 || p[i] > 0xbf)
                n = 0; /* not UTF-8: the lead byte alone, escaped */
        bool c1 = n == 2 && p[0] == 0xc2 && p[1] <= 0x9f;
        if (n > 1 && !c1) {
            fwrite(p, 1, n, stdout);
            p += n;
            continue;
        }
        if (c1) {
            printf("\\xc2\\x%02x", p[1]);
            p += 2;
        } else if ((*p < 0x20 && *p != '\t') || *p >= 0x7f) {
            printf("\\x%02x", *p++);
        } else {
            putchar(*p++);
        }
    }
}

static void print_log_line(const char *line, size_t len)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    const char *ts = json_string_value(json_object_get(j, "ts"));
    const char *inst = json_string_value(json_object_get(j, "instance"));
    const char *stream = json_string_value(json_object_get(j, "stream"));
    const char *text = json_string_value(json_object_get(j, "line"));
    if (ts == NULL || stream == NULL || text == NULL) {
        /* not a log line: as it came, made inert */
        char *copy = fl_strndup(line, len);
        print_inert(copy ? copy : "");
        putchar('\n');
        free(copy);
    } else {
        printf("%s  %-8.8s  %-6s  ", ts,
               inst == NULL || *inst == '\0' ? "-"
               : strlen(inst) > 8            ? inst + strlen(inst) - 8
                                             : inst,
               stream);
        print_inert(text);
        printf("%s\n", json_is_true(json_object_get(j, "truncated")) ? " [truncated]" : "");
    }
    json_decref(j);
}

static void on_log_data(const char *data, size_t len, void *arg)
{
    struct log_printer *p = arg;
    if (p->raw) {
        fwrite(data, 1, len, stdout);
        fflush(stdout);
        return;
    }
    if (fl_buf_append(&p->partial, data, len) < 0)
        fl_buf_reset(&p->partial); /* a line past the bound is dropped, not the rest */
    char *start = p->partial.data;
    char *nl;
    while (start != NULL &&
           (nl = memchr(start, '\n', p->partial.len - (size_t)(start - p->partial.data))) != NULL) {
        print_log_line(start, (size_t)(nl - start));
        start = nl + 1;
    }
    if (start != NULL)
        fl_buf_consume(&p->partial, (size_t)(start - p->partial.data));
    fflush(stdout);
}

int cmd_fn_logs(struct cli *cli, int argc, char **argv)
{
    const char *name = NULL, *tail = NULL;
    bool follow = false;
    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = cli_option_value(argc, argv, &i, "--name")) != NULL)
            name = v;
        else if ((v = cli_option_value(argc, argv, &i, "--tail")) != NULL)
            tail = v;
        else if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--follow") == 0)
            follow = true;
        else
            return cli_error("'flint fn logs' has no option '%s'", argv[i]), 2;
    }
    if (name == NULL)
        return cli_error("'flint fn logs' needs --name"), 2;
    int64_t n = 0;
    if (tail != NULL && fl_parse_i64(tail, 0, 1000000, &n) < 0)
        return cli_error("--tail takes a number of lines, not '%s'", tail), 2;
    char path[600];
    snprintf(path, sizeof(path), "/v1/functions/%s/logs?follow=%d%s%s", name, follow ? 1 : 0,
             tail ? "&tail=" : "", tail ? tail : "");
    struct cli_response r;
    struct log_printer printer = {.raw = cli->output != CLI_OUTPUT_TABLE};
    fl_buf_init(&printer.partial, 1u << 20);
    int rc = cli_call(cli, "GET", path, NULL, 0, NULL, NULL, on_log_data, &printer, &r);
    if (printer.partial.len > 0)
        print_log_line(printer.partial.data, printer.partial.len);
    fl_buf_release(&printer.partial);
    if (rc != 0)
        return 1;
    if (r.status != 200) {
        char what[300];
        snprintf(what, sizeof(what), "logs of '%s'", name);
        rc = cli_fail_response(what, &r);
    }
    cli_response_release(&r);
    return rc;
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
    if (argc > 1)
        return cli_error("'flint status' takes no option '%s'", argv[1]), 2;
    struct cli_response r;
    if (cli_call_json(cli, "GET", "/v1/status", NULL, &r) != 0)
        return 1;
    int rc = 0;
    if (r.status != 200 || r.json == NULL)
        rc = cli_fail_response("cannot read the daemon's status", &r);
    else if (cli->output != CLI_OUTPUT_TABLE)
        cli_print_value(cli, r.json);
    else {
        /* Flat "key: value" lines for the top level; nested parts as YAML. */
        struct cli yaml = *cli;
        yaml.output = CLI_OUTPUT_YAML;
        printf("flintd at %s\n", cli->url);
        cli_print_value(&yaml, r.json);
    }
    cli_response_release(&r);
    return rc;
}
