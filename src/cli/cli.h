/*
 * The flint command: shared state and helpers of its subcommands.
 *
 * Every subcommand is a row of the commands[] table in main.c (after git's
 * git.c): a name, a one-line summary, a usage text, and a function
 * `int cmd(struct cli *cli, int argc, char **argv)` that returns the process
 * exit status (0 ok, 1 failed, 2 usage error). `flint help` is generated
 * from the table.
 */
#ifndef FLINT_CLI_CLI_H
#define FLINT_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "base/buf.h"

enum cli_output { CLI_OUTPUT_TABLE, CLI_OUTPUT_JSON, CLI_OUTPUT_YAML };

struct cli {
    char url[512];        /* the API's base URL, without a trailing slash */
    char token[256];      /* bearer token; empty if none was found */
    char token_from[600]; /* where the token came from, for error messages */
    enum cli_output output;
};

struct cli_command {
    const char *name;    /* "fn create" */
    const char *summary; /* one line for `flint help` */
    const char *usage;   /* options, shown by `flint help CMD` and on misuse */
    int (*fn)(struct cli *cli, int argc, char **argv);
};

/* An API answer: HTTP status and the body, parsed when it is JSON. */
struct cli_response {
    long status;
    json_t *json;      /* NULL if the body was not JSON */
    struct fl_buf raw; /* the body as received */
};

void cli_response_release(struct cli_response *r);

/*
 * Send method path (e.g. "/v1/functions") to the API with the token. body
 * may be NULL; content_type applies to it (NULL: application/json); extra
 * headers are "Name: value" strings, NULL-terminated or NULL. When stream
 * is not NULL, a successful answer's body goes to it as it arrives instead
 * of being kept (an error's body is kept, for cli_fail_response()).
 * Returns 0 once an answer of any status came back (r filled), or -1 after
 * printing why the daemon could not be reached and what to do.
 */
typedef void (*cli_stream_fn)(const char *data, size_t len, void *arg);
int cli_call(struct cli *cli, const char *method, const char *path, const void *body,
             size_t body_len, const char *content_type, const char *const *headers,
             cli_stream_fn stream, void *stream_arg, struct cli_response *r);

/* cli_call with a JSON body (may be NULL). */
int cli_call_json(struct cli *cli, const char *method, const char *path, json_t *body,
                  struct cli_response *r);

/* Print the API error in r as "flint: <what>: <message>" with a hint for
 * 401/404/409 and return 1; <what> is made from fmt and its arguments
 * (printf-style), whatever their length. */
int cli_fail_response(const struct cli_response *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The value of option flag at argv[*i], as "--flag VALUE" (then *i moves
 * to VALUE) or "--flag=VALUE"; NULL if argv[*i] is not flag or has no
 * value. */
const char *cli_option_value(int argc, char **argv, int *i, const char *flag);

/* Print an error (printf-style) prefixed with "flint: " and return 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print text for a terminal: control characters (C0 but HTAB, DEL and C1,
 * raw or UTF-8 encoded) and bytes that are not UTF-8 are shown as \xNN,
 * never sent as they are, so what a function wrote cannot move the cursor,
 * retitle the window or worse. */
void cli_print_inert(const char *text);

/* Print items (an array of objects) as a table: a column per entry of
 * columns (up to CLI_TABLE_MAX_COLUMNS, ending at a NULL title), each cell
 * the value at the column's dotted path, made inert. */
#define CLI_TABLE_MAX_COLUMNS 8
struct fl_kind_column;
void cli_print_table(const struct fl_kind_column *columns, json_t *items);

/* Print a resource list (an array of resources of one kind) or one
 * resource in the chosen output format. */
void cli_print_resources(const struct cli *cli, const char *kind, json_t *items);
void cli_print_value(const struct cli *cli, json_t *v);
/* Under fn get's row: the routes to it (routes: every route, or NULL), the
 * build, calls, instances, load error and the end of the build log. */
void cli_print_function_details(json_t *fn, json_t *routes);

/* Subcommands, one file per family. */
int cmd_resource(struct cli *cli, int argc, char **argv);
/* fn invoke (fn test), inv get|list|cancel, dlq list|get|redrive|purge:
 * one entry, by argv[0] and argv[1] (inv.c's table). */
int cmd_inv(struct cli *cli, int argc, char **argv);
int cmd_fn_logs(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_apply(struct cli *cli, int argc, char **argv);
int cmd_tt_showschedule(struct cli *cli, int argc, char **argv);

/* Upload the file at path with POST /v1/code; on success store a new
 * {"sha256", "filename"} object in *code and return 0, else print why and
 * return 1. */
int cli_upload_code(struct cli *cli, const char *path, json_t **code);

#endif
