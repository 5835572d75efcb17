/* flint fn logs, flint status. */
#include "cli/cli.h"

#include "base/str.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A log line (a JSON line of the API) as "TIME  INSTANCE  STREAM  LINE". */
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
        cli_print_inert(copy ? copy : "");
        putchar('\n');
        free(copy);
    } else {
        printf("%s  %-8.8s  %-6s  ", ts,
               inst == NULL || *inst == '\0' ? "-"
               : strlen(inst) > 8            ? inst + strlen(inst) - 8
                                             : inst,
               stream);
        cli_print_inert(text);
        printf("%s\n", json_is_true(json_object_get(j, "truncated")) ? " [truncated]" : "");
    }
    json_decref(j);
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
    struct cli_lines printer = {.raw = cli->output != CLI_OUTPUT_TABLE, .line = print_log_line};
    fl_buf_init(&printer.partial, 1u << 20);
    int rc = cli_call(cli, "GET", path, NULL, 0, NULL, NULL, cli_lines_feed, &printer, &r);
    cli_lines_finish(&printer);
    if (rc != 0)
        return 1;
    if (r.status != 200) {
        rc = cli_fail_response(&r, "logs of '%s'", name);
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
        rc = cli_fail_response(&r, "cannot read the daemon's status");
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
