/*
 * flint: the command-line client of flintd's control API.
 *
 * The commands[] table is the whole command set, made at start from the
 * kinds of resources (kinds/kinds.h: `flint <word> create|get|list|update|
 * delete` for each) and the other_commands[] below; dispatch and `flint
 * help` are generated from it. Global options (anywhere on the line):
 *   --url URL       the API (default $FLINT_URL, else http://127.0.0.1:7070)
 *   --token TOKEN   bearer token (default $FLINT_TOKEN, else DATA/token)
 *   --data DIR      data directory to read the token from ($FLINT_DATA, ./.flint-data)
 * (those three before the command), and anywhere:
 *   -o, --output F  table, json or yaml
 */
#include "cli/cli.h"

#include "base/str.h"
#include "kinds/kinds.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLINT_VERSION "0.1.0"

static int cmd_help(struct cli *cli, int argc, char **argv);
static int cmd_version(struct cli *cli, int argc, char **argv);

/* The commands of every kind of resource (kinds/kinds.h): one row each,
 * made from the kind's row by build_commands(). */
static const struct {
    const char *verb;
    const char *summary; /* "%s": the kind's noun (or plural, for list) */
    const char *usage;   /* NULL: the kind's create or update usage */
} resource_verbs[] = {
    {"create", "create %s", NULL},
    {"get", "show %s", "--name NAME [-o table|json|yaml]"},
    {"list", "list %s", "[-o table|json|yaml]"},
    {"update", "change fields of %s (others are kept)", NULL},
    {"delete", "delete %s", "--name NAME"},
};
#define NVERBS (sizeof(resource_verbs) / sizeof(resource_verbs[0]))

#define FN_INVOKE_USAGE                                                                            \
    "--name NAME [--async [--idempotency-key K] [--callback URL]] [--method M]"                    \
    " [--body TEXT | --body-file FILE] [-H 'Name: value']... [--path /sub/path]"

/* The other commands; those of a kind's word ("fn invoke") are listed after
 * that kind's own. */
static const struct cli_command other_commands[] = {
    {"fn invoke", "invoke a function: print its answer, or with --async its invocation's id",
     FN_INVOKE_USAGE, cmd_inv},
    {"fn test", "the same as fn invoke (its older name)", FN_INVOKE_USAGE, cmd_inv},
    {"fn logs", "print a function's log lines (-o json: as the API's JSON lines)",
     "--name NAME [-f|--follow] [--tail N] [-o table|json]", cmd_fn_logs},
    {"inv get",
     "show an invocation: an async one's status, attempts, result, callback; a workflow's "
     "status, output and tasks",
     "ID [-o table|json|yaml]", cmd_inv},
    {"inv list",
     "list async invocations in the order they were accepted, or with --workflow a "
     "workflow's (--workflow '' for every workflow's)",
     "[--function F | --workflow W] [--status S] [--limit N] [--all] [-o table|json|yaml]",
     cmd_inv},
    {"inv events", "list a workflow invocation's events", "ID [-o table|json|yaml]", cmd_inv},
    {"inv cancel", "cancel an invocation (async or workflow) that has not ended", "ID", cmd_inv},
    {"dlq list", "list the dead letters (invocations that used up their attempts)",
     "[--function F] [--limit N] [--all] [-o table|json|yaml]", cmd_inv},
    {"dlq get", "show a dead letter with its request", "ID [-o table|json|yaml]", cmd_inv},
    {"dlq redrive", "queue dead letters again (same id, history kept)", "ID | --function F | --all",
     cmd_inv},
    {"dlq purge", "remove dead letters for good", "ID | --function F --yes | --all --yes", cmd_inv},
    {"topic create", "create a topic of the built-in queue (its limits: oldest messages go)",
     "--name T [--max-msgs N] [--max-bytes SIZE] [--max-age DURATION] [--dup-window DURATION]",
     cmd_topic},
    {"topic update", "change a topic's limits (those not given are kept)",
     "--name T [--max-msgs N] [--max-bytes SIZE] [--max-age DURATION] [--dup-window DURATION]",
     cmd_topic},
    {"topic list", "list topics: depth, bytes, sequences, consumers",
     "[--all] [-o table|json|yaml]", cmd_topic},
    {"topic get", "show a topic: limits, depth, its consumers with pending, lag and dead",
     "--name T [-o table|json|yaml]", cmd_topic},
    {"topic delete", "delete a topic with its messages and consumers", "--name T", cmd_topic},
    {"topic publish", "publish a message; prints its sequence (and 'duplicate' if its id was seen)",
     "--topic T [--body TEXT | --body-file FILE] [-H 'Name: value']... [--id MSGID]", cmd_topic},
    {"topic tail", "print a topic's last messages, and with -f the new ones as they come",
     "--topic T [-f|--follow] [-n N] [-o table|json]", cmd_topic},
    {"wf validate",
     "check a workflow definition: structure, dependencies, expressions' syntax (needs no "
     "daemon; exit 1 with every error)",
     "--spec FILE", cmd_wf_validate},
    {"wf run",
     "run a workflow: print its output (exit 1 with the error if it fails), or with --async "
     "its invocation's id",
     "--name N [--body TEXT | --body-file F] [-H 'Name: value']... [--query name=value]... "
     "[--method M] [--async]",
     cmd_inv},
    {"tt showschedule", "print the next fire times of a cron expression (needs no daemon)",
     "--cron EXPR [--tz ZONE] [-n N] [--after TIME]", cmd_tt_showschedule},
    {"apply", "create or update everything the spec files declare",
     "-f FILE|DIR [--prune] [--dry-run]", cmd_apply},
    {"status", "show the daemon, store, sandbox, pools and instances", "[-o table|json|yaml]",
     cmd_status},
    {"help", "show the commands, or one command's options", "[COMMAND]", cmd_help},
    {"version", "print flint's version", "", cmd_version},
};
#define NOTHERS (sizeof(other_commands) / sizeof(other_commands[0]))

/* Every command, made at start by build_commands(). */
#define MAX_COMMANDS 128
static struct cli_command commands[MAX_COMMANDS];
static size_t ncommands;

/* Whether command name belongs to the family of word ("fn test" to "fn"). */
static bool of_family(const char *name, const char *word)
{
    return fl_str_has_prefix(name, word) && name[strlen(word)] == ' ';
}

/* The command table: each kind's commands, then the other commands of its
 * word, in the kinds' order; then the rest. */
static void build_commands(void)
{
    static char names[MAX_COMMANDS][48], summaries[MAX_COMMANDS][128];
    size_t n = 0;
    for (size_t k = 0; k < fl_nkinds && n + NVERBS + NOTHERS <= MAX_COMMANDS; k++) {
        const struct fl_kind *kind = fl_kinds[k];
        for (size_t v = 0; v < NVERBS; v++, n++) {
            snprintf(names[n], sizeof(names[n]), "%s %s", kind->word, resource_verbs[v].verb);
            snprintf(summaries[n], sizeof(summaries[n]), resource_verbs[v].summary,
                     strcmp(resource_verbs[v].verb, "list") == 0 ? kind->plural : kind->noun);
            const char *usage = resource_verbs[v].usage;
            if (usage == NULL)
                usage = strcmp(resource_verbs[v].verb, "create") == 0 ? kind->create_usage
                                                                      : kind->update_usage;
            commands[n] = (struct cli_command){names[n], summaries[n], usage, cmd_resource};
        }
        for (size_t i = 0; i < NOTHERS; i++)
            if (of_family(other_commands[i].name, kind->word))
                commands[n++] = other_commands[i];
    }
    for (size_t i = 0; i < NOTHERS && n < MAX_COMMANDS; i++) {
        bool listed = false;
        for (size_t k = 0; k < fl_nkinds; k++)
            listed |= of_family(other_commands[i].name, fl_kinds[k]->word);
        if (!listed)
            commands[n++] = other_commands[i];
    }
    ncommands = n;
}

const char *cli_option_value(int argc, char **argv, int *i, const char *flag)
{
    size_t n = strlen(flag);
    if (strncmp(argv[*i], flag, n) == 0 && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (strcmp(argv[*i], flag) == 0 && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("flint: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

static int cmd_version(struct cli *cli, int argc, char **argv)
{
    printf("flint %s\n", FLINT_VERSION);
    return 0;
}

static void print_usage(const struct cli_command *c, FILE *to)
{
    fprintf(to, "usage: flint %s %s\n", c->name, c->usage);
}

static int cmd_help(struct cli *cli, int argc, char **argv)
{
    if (argc > 1) {
        char name[128] = "";
        for (int i = 1; i < argc && i < 3; i++) {
            if (i > 1)
                fl_strlcpy(name + strlen(name), " ", sizeof(name) - strlen(name));
            fl_strlcpy(name + strlen(name), argv[i], sizeof(name) - strlen(name));
        }
        int found = 0;
        for (size_t i = 0; i < ncommands; i++) {
            if (strcmp(commands[i].name, name) == 0 || (fl_str_has_prefix(commands[i].name, name) &&
                                                        commands[i].name[strlen(name)] == ' ')) {
                printf("flint %s: %s\n", commands[i].name, commands[i].summary);
                print_usage(&commands[i], stdout);
                found = 1;
            }
        }
        return found ? 0 : cli_error("no command '%s' (see 'flint help')", name);
    }
    printf(
        "usage: flint [--url URL] [--token TOKEN] [--data DIR] [-o table|json|yaml] COMMAND ...\n\n"
        "Commands:\n");
    for (size_t i = 0; i < ncommands; i++)
        printf("  %-14s %s\n", commands[i].name, commands[i].summary);
    printf("\nThe API is $FLINT_URL (default http://127.0.0.1:7070); the token is $FLINT_TOKEN\n"
           "or the file 'token' in the data directory ($FLINT_DATA, default ./.flint-data).\n"
           "'flint help COMMAND' shows a command's options.\n");
    return 0;
}

static int read_token_file(struct cli *cli, const char *dir)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/token", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    if (fgets(cli->token, sizeof(cli->token), f) == NULL)
        cli->token[0] = '\0';
    fclose(f);
    cli->token[strcspn(cli->token, "\r\n")] = '\0';
    fl_strlcpy(cli->token_from, path, sizeof(cli->token_from));
    return cli->token[0] ? 0 : -1;
}

/* Take the global options out of argv (they may stand anywhere). Returns
 * the new argc, or -1 after printing a usage error. */
static int take_global_options(struct cli *cli, int argc, char **argv, const char **data)
{
    int out = 0;
    bool before_command = true;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **target = NULL;
        const char *value = NULL;
        static const char *url, *token, *output;
        /* --url, --token and --data come before the command (route create
         * has an --url of its own); -o may stand anywhere. */
        if (before_command && strcmp(a, "--url") == 0)
            target = &url;
        else if (before_command && strcmp(a, "--token") == 0)
            target = &token;
        else if (before_command && strcmp(a, "--data") == 0)
            target = data;
        else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)
            target = &output;
        else if (fl_str_has_prefix(a, "--output="))
            target = &output, value = a + 9;
        else if (fl_str_has_prefix(a, "-o") && strlen(a) > 2)
            target = &output, value = a + 2;
        if (target == NULL) {
            if (a[0] != '-')
                before_command = false;
            argv[out++] = argv[i];
            continue;
        }
        if (value == NULL) {
            if (i + 1 >= argc) {
                cli_error("%s needs a value", a);
                return -1;
            }
            value = argv[++i];
        }
        *target = value;
        if (target == &url)
            fl_strlcpy(cli->url, value, sizeof(cli->url));
        else if (target == &token) {
            fl_strlcpy(cli->token, value, sizeof(cli->token));
            fl_strlcpy(cli->token_from, "--token", sizeof(cli->token_from));
        } else if (target == &output) {
            if (strcmp(value, "table") == 0)
                cli->output = CLI_OUTPUT_TABLE;
            else if (strcmp(value, "json") == 0)
                cli->output = CLI_OUTPUT_JSON;
            else if (strcmp(value, "yaml") == 0)
                cli->output = CLI_OUTPUT_YAML;
            else {
                cli_error("unknown output format '%s': use table, json or yaml", value);
                return -1;
            }
        }
    }
    argv[out] = NULL;
    return out;
}

int main(int argc, char **argv)
{
    struct cli cli;
    const char *data = NULL;

    memset(&cli, 0, sizeof(cli));
    build_commands();
    const char *env_url = getenv("FLINT_URL");
    fl_strlcpy(cli.url, env_url && *env_url ? env_url : "http://127.0.0.1:7070", sizeof(cli.url));
    const char *env_token = getenv("FLINT_TOKEN");
    if (env_token != NULL && *env_token) {
        fl_strlcpy(cli.token, env_token, sizeof(cli.token));
        fl_strlcpy(cli.token_from, "$FLINT_TOKEN", sizeof(cli.token_from));
    }

    argc = take_global_options(&cli, argc - 1, argv + 1, &data);
    argv++;
    if (argc < 0)
        return 2;
    size_t n = strlen(cli.url);
    while (n > 0 && cli.url[n - 1] == '/')
        cli.url[--n] = '\0';
    if (cli.token[0] == '\0') {
        if (data == NULL)
            data = getenv("FLINT_DATA");
        if (data == NULL || *data == '\0')
            data = ".flint-data";
        read_token_file(&cli, data);
    }
    if (argc == 0) {
        cmd_help(&cli, 0, argv);
        return 2;
    }
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)
        return cmd_help(&cli, 0, argv);
    if (strcmp(argv[0], "--version") == 0)
        return cmd_version(&cli, argc, argv);

    /* Longest match first: "fn create" before "fn". */
    const struct cli_command *cmd = NULL;
    int words = 0;
    for (size_t i = 0; i < ncommands && cmd == NULL; i++) {
        char two[128];
        if (argc >= 2) {
            snprintf(two, sizeof(two), "%s %s", argv[0], argv[1]);
            if (strcmp(commands[i].name, two) == 0)
                cmd = &commands[i], words = 2;
        }
    }
    for (size_t i = 0; i < ncommands && cmd == NULL; i++)
        if (strcmp(commands[i].name, argv[0]) == 0)
            cmd = &commands[i], words = 1;
    if (cmd == NULL) {
        int family = 0;
        for (size_t i = 0; i < ncommands; i++)
            family |= fl_str_has_prefix(commands[i].name, argv[0]) &&
                      commands[i].name[strlen(argv[0])] == ' ';
        if (family) {
            char *help_argv[] = {"help", argv[0], NULL};
            cli_error("'%s' needs a subcommand%s%s", argv[0], argc > 1 ? ", not " : "",
                      argc > 1 ? argv[1] : "");
            cmd_help(&cli, 2, help_argv);
        } else {
            cli_error("'%s' is not a flint command (see 'flint help')", argv[0]);
        }
        return 2;
    }
    for (int i = words; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("flint %s: %s\n", cmd->name, cmd->summary);
            print_usage(cmd, stdout);
            return 0;
        }
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* Subcommands see argv[0] = the command's first word, argv[1] = the second. */
    int rc = cmd->fn(&cli, argc, argv);
    curl_global_cleanup();
    if (rc == 2)
        print_usage(cmd, stderr);
    return rc;
}
