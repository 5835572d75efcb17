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
#include <stddef.h>

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
 * may be NULL; content_type applies to it (NULL: application/json) unless
 * the extra headers name one; extra headers are "Name: value" strings,
 * NULL-terminated or NULL. When stream
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

/* A call whose answer is printed as -o asks (the API's JSON), or as done
 * (one line) in a table: method path with body (JSON, may be NULL); an
 * answer other than want is the API's error printed under what. 0 or 1. */
int cli_act(struct cli *cli, const char *method, const char *path, json_t *body, long want,
            const char *what, const char *done);

/* Print the API error in r as "flint: <what>: <message>" with a hint for
 * 401/404/409 and return 1; <what> is made from fmt and its arguments
 * (printf-style), whatever their length. */
int cli_fail_response(const struct cli_response *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The value of option flag at argv[*i], as "--flag VALUE" (then *i moves
 * to VALUE) or "--flag=VALUE"; NULL if argv[*i] is not flag or has no
 * value. */
const char *cli_option_value(int argc, char **argv, int *i, const char *flag);

/* Append the file at path to out (bounded by out's maximum): 0, or 1
 * after printing why not. */
int cli_read_file(const char *path, struct fl_buf *out);

/*
 * A command's options as a table (inv.c, topic.c): each row names a flag
 * (and an alias, or NULL), how it takes its value and where in the
 * command's own struct of options it goes (offsetof): a const char * for
 * CLI_OPT_VALUE, a bool for CLI_OPT_SWITCH (--x=V is refused), a struct
 * cli_headers for CLI_OPT_HEADER (-H 'Name: value', repeatable) and
 * CLI_OPT_LIST (--query 'name=value', repeatable).
 */
enum cli_opt_kind { CLI_OPT_VALUE, CLI_OPT_SWITCH, CLI_OPT_HEADER, CLI_OPT_LIST };
struct cli_opt {
    const char *flag, *alias;
    enum cli_opt_kind kind;
    size_t offset;
};
#define CLI_MAX_HEADERS 32
struct cli_headers {
    const char *lines[CLI_MAX_HEADERS + 4]; /* room for a command's own, and a NULL */
    int n;
};

/* Parse argv[2..] (after the command's two words) by the rows of table
 * (nrows) whose flag is in takes (space-separated) into opts. An argument
 * that is no option goes to positional (NULL: refused), which returns 0 or
 * an exit status. 0, or 2 after printing the usage error. */
int cli_parse_options(const char *cmd, const struct cli_opt *table, size_t nrows, const char *takes,
                      int argc, char **argv, void *opts,
                      int (*positional)(void *opts, const char *arg));

/* Print an error (printf-style) prefixed with "flint: " and return 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print text for a terminal: control characters (C0 but HTAB, DEL and C1,
 * raw or UTF-8 encoded) and bytes that are not UTF-8 are shown as \xNN,
 * never sent as they are, so what a function wrote cannot move the cursor,
 * retitle the window or worse. */
void cli_print_inert(const char *text);

/* A stream of JSON lines from the API (logs, a topic's messages), split
 * anywhere: each whole line goes to line(), or with raw the bytes go to
 * stdout as they come (-o json). A line longer than partial's bound is
 * dropped, not the rest. */
struct cli_lines {
    bool raw;
    void (*line)(const char *line, size_t len);
    struct fl_buf partial; /* fl_buf_init() it; cli_lines_finish() releases it */
};
/* A cli_stream_fn; arg is the struct cli_lines. */
void cli_lines_feed(const char *data, size_t len, void *arg);
/* The last line if it had no newline; then release. */
void cli_lines_finish(struct cli_lines *l);

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
int cmd_wf_validate(struct cli *cli, int argc, char **argv);
/* topic create|list|get|delete|publish|tail: one entry (topic.c's table). */
int cmd_topic(struct cli *cli, int argc, char **argv);

/* Upload the file at path with POST /v1/code; on success store a new
 * {"sha256", "filename"} object in *code and return 0, else print why and
 * return 1. */
int cli_upload_code(struct cli *cli, const char *path, json_t **code);

#endif
