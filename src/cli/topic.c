/*
 * Built-in topics from the command line: flint topic create|list|get|
 * delete|publish|tail, over the API's /v1/topics (docs/api.md, "Topics").
 *
 * One table, topic_commands[], says per command which options it takes;
 * the options are the rows of options[], each filling a field of struct
 * opts (as in inv.c).
 */
#include "cli/cli.h"

#include "base/str.h"
#include "kinds/kinds.h"   /* struct fl_kind_column, for the tables */
#include "topics/topics.h" /* fl_topic_name_check() */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAIL_MAX 1000 /* messages -n may ask for */

struct opts {
    const char *name, *max_msgs, *max_bytes, *max_age, *dup_window, *body, *body_file, *id, *n;
    struct cli_headers headers; /* -H ones, and --id's */
    bool follow, all;
};

static const struct cli_opt options[] = {
    {"--name", "--topic", CLI_OPT_VALUE, offsetof(struct opts, name)},
    {"--max-msgs", NULL, CLI_OPT_VALUE, offsetof(struct opts, max_msgs)},
    {"--max-bytes", NULL, CLI_OPT_VALUE, offsetof(struct opts, max_bytes)},
    {"--max-age", NULL, CLI_OPT_VALUE, offsetof(struct opts, max_age)},
    {"--dup-window", NULL, CLI_OPT_VALUE, offsetof(struct opts, dup_window)},
    {"--body", NULL, CLI_OPT_VALUE, offsetof(struct opts, body)},
    {"--body-file", NULL, CLI_OPT_VALUE, offsetof(struct opts, body_file)},
    {"--id", NULL, CLI_OPT_VALUE, offsetof(struct opts, id)},
    {"-n", "--lines", CLI_OPT_VALUE, offsetof(struct opts, n)},
    {"-H", NULL, CLI_OPT_HEADER, offsetof(struct opts, headers)},
    {"-f", "--follow", CLI_OPT_SWITCH, offsetof(struct opts, follow)},
    {"--all", NULL, CLI_OPT_SWITCH, offsetof(struct opts, all)},
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

/* ---- output ---- */

static const struct fl_kind_column list_columns[] = {
    {"NAME", "name"},
    {"MESSAGES", "messages"},
    {"BYTES", "bytes"},
    {"FIRST", "firstSeq"},
    {"LAST", "lastSeq"},
    {"CONSUMERS", "consumerCount"},
    {"MAX-MSGS", "limits.maxMsgs"},
    {"MAX-AGE", "limits.maxAge"},
    {NULL, NULL},
};

static const struct fl_kind_column consumer_columns[] = {
    {"CONSUMER", "name"},
    {"PENDING", "pending"},
    {"LAG", "lag"},
    {"DEAD", "dead"},
    {"NEXT", "nextSeq"},
    {"ACK-WAIT", "ackWait"},
    {"MAX-DELIVER", "maxDeliver"},
    {NULL, NULL},
};

/* A topic as `flint topic get` shows it. */
static void print_topic(json_t *t)
{
    json_t *one = json_pack("[O]", t);
    cli_print_table(list_columns, one);
    json_decref(one);
    json_t *l = json_object_get(t, "limits");
    printf("\nlimits:     ");
    static const char *const fields[] = {"maxMsgs", "maxBytes", "maxAge", "duplicateWindow"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        json_t *v = json_object_get(l, fields[i]);
        printf("%s%s ", i ? ", " : "", fields[i]);
        if (json_is_integer(v))
            printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else
            cli_print_inert(json_is_string(v) ? json_string_value(v) : "none");
    }
    json_t *consumers = json_object_get(t, "consumers");
    printf("\nconsumers:  %zu%s\n", json_array_size(consumers),
           json_is_true(json_object_get(t, "moreConsumers")) ? " (and more)" : "");
    if (json_array_size(consumers) > 0) {
        putchar('\n');
        cli_print_table(consumer_columns, consumers);
    }
}

/* One message of the API (a JSON line of a tail), for a terminal:
 * "SEQ  TIME  ID  HEADERS" and the body below it, indented, all inert. */
static void print_message(const char *line, size_t len)
{
    json_t *m = json_loadb(line, len, 0, NULL);
    const char *time = json_string_value(json_object_get(m, "time"));
    const char *id = json_string_value(json_object_get(m, "id"));
    const char *body = json_string_value(json_object_get(m, "body"));
    const char *encoding = json_string_value(json_object_get(m, "bodyEncoding"));
    if (!json_is_integer(json_object_get(m, "seq")) || time == NULL || body == NULL) {
        char *copy = fl_strndup(line, len); /* not a message: as it came, made inert */
        cli_print_inert(copy ? copy : "");
        putchar('\n');
        free(copy);
        json_decref(m);
        return;
    }
    printf("%" JSON_INTEGER_FORMAT "  %s  ", json_integer_value(json_object_get(m, "seq")), time);
    cli_print_inert(id ? id : "-");
    char *headers = json_dumps(json_object_get(m, "headers"), JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("  ");
    cli_print_inert(headers ? headers : "{}");
    putchar('\n');
    free(headers);
    if (encoding != NULL && strcmp(encoding, "base64") == 0) {
        size_t n = strlen(body), pad = 0;
        while (pad < 2 && pad < n && body[n - 1 - pad] == '=')
            pad++;
        printf("  (%zu bytes, binary)\n", n / 4 * 3 - pad);
    }
    for (const char *p = body; encoding != NULL && strcmp(encoding, "text") == 0 && *p != '\0';) {
        size_t n = strcspn(p, "\n");
        char *piece = fl_strndup(p, n);
        printf("  ");
        cli_print_inert(piece ? piece : "");
        putchar('\n');
        free(piece);
        p += n + (p[n] == '\n');
    }
    json_decref(m);
}

/* ---- commands ---- */

/* cli_fail_response() with "what 'name'". */
static int fail_call(const char *what, const char *name, const struct cli_response *r)
{
    return cli_fail_response(r, "%s '%s'", what, name);
}

/* Add limit field = value to limits: a number when value is one, else the
 * text (the API checks either). */
static void add_limit(json_t *limits, const char *field, const char *value)
{
    int64_t n;
    if (value == NULL)
        return;
    if (fl_parse_i64(value, 0, INT64_MAX, &n) == 0 && strcmp(field, "maxMsgs") == 0)
        json_object_set_new(limits, field, json_integer(n));
    else if (fl_parse_i64(value, 0, INT64_MAX, &n) == 0 && strcmp(field, "maxBytes") == 0)
        json_object_set_new(limits, field, json_integer(n));
    else
        json_object_set_new(limits, field, json_string(value));
}

static int get_topic(struct cli *cli, const char *name, json_t **out);

/* create (POST, 201) or update (PUT of the limits read, with the flags'
 * over them: the others are kept). */
static int write_topic(struct cli *cli, struct opts *o, bool create)
{
    json_t *t = NULL;
    if (!create && get_topic(cli, o->name, &t) != 0)
        return 1;
    json_t *limits = create ? json_object() : json_copy(json_object_get(t, "limits"));
    json_decref(t);
    if (!json_is_object(limits)) {
        json_decref(limits);
        return cli_error("topic '%s': the API answered no limits", o->name);
    }
    add_limit(limits, "maxMsgs", o->max_msgs);
    add_limit(limits, "maxBytes", o->max_bytes);
    add_limit(limits, "maxAge", o->max_age);
    add_limit(limits, "duplicateWindow", o->dup_window);
    json_t *body = json_pack("{s:s, s:o}", "name", o->name, "limits", limits);
    char path[400], what[400], done[400];
    snprintf(path, sizeof(path), "/v1/topics%s%s", create ? "" : "/", create ? "" : o->name);
    snprintf(what, sizeof(what), "cannot %s topic '%s'", create ? "create" : "update", o->name);
    snprintf(done, sizeof(done), "topic '%s' %s", o->name, create ? "created" : "updated");
    int rc = cli_act(cli, create ? "POST" : "PUT", path, body, create ? 201 : 200, what, done);
    json_decref(body);
    return rc;
}

static int run_create(struct cli *cli, struct opts *o)
{
    return write_topic(cli, o, true);
}

static int run_update(struct cli *cli, struct opts *o)
{
    return write_topic(cli, o, false);
}

static int run_list(struct cli *cli, struct opts *o)
{
    json_t *items = json_array();
    char cursor[600] = "", path[900];
    bool more = false;
    int rc = 0;
    for (int page = 0; page < 100000; page++) {
        snprintf(path, sizeof(path), "/v1/topics%s%s", cursor[0] ? "?after=" : "", cursor);
        struct cli_response r;
        if (cli_call_json(cli, "GET", path, NULL, &r) != 0) {
            rc = 1;
            break;
        }
        json_t *page_items = json_object_get(r.json, "items");
        if (r.status != 200 || !json_is_array(page_items)) {
            rc = cli_fail_response(&r, "cannot list topics");
            cli_response_release(&r);
            break;
        }
        json_array_extend(items, page_items);
        const char *next = json_string_value(json_object_get(r.json, "next"));
        /* names need no escaping in a query; a cursor that does not move
         * on would list the same page forever */
        more = next != NULL && *next != '\0' && strlen(next) < sizeof(cursor) &&
               strcmp(next, cursor) != 0;
        if (more)
            fl_strlcpy(cursor, next, sizeof(cursor));
        cli_response_release(&r);
        if (!more || !o->all)
            break;
    }
    if (rc == 0 && cli->output != CLI_OUTPUT_TABLE) {
        cli_print_value(cli, items);
    } else if (rc == 0) {
        cli_print_table(list_columns, items);
        if (more)
            fprintf(stderr, "flint: there are more: --all lists them all\n");
    }
    json_decref(items);
    return rc;
}

/* GET one topic into *out (printing why not). */
static int get_topic(struct cli *cli, const char *name, json_t **out)
{
    char path[400];
    struct cli_response r;
    snprintf(path, sizeof(path), "/v1/topics/%s", name);
    if (cli_call_json(cli, "GET", path, NULL, &r) != 0)
        return 1;
    int rc = 0;
    if (r.status != 200 || !json_is_object(r.json))
        rc = fail_call("topic", name, &r);
    else
        *out = json_incref(r.json);
    cli_response_release(&r);
    return rc;
}

static int run_get(struct cli *cli, struct opts *o)
{
    json_t *t = NULL;
    int rc = get_topic(cli, o->name, &t);
    if (rc == 0 && cli->output != CLI_OUTPUT_TABLE)
        cli_print_value(cli, t);
    else if (rc == 0)
        print_topic(t);
    json_decref(t);
    return rc;
}

static int run_delete(struct cli *cli, struct opts *o)
{
    char path[400], what[400], done[400];
    snprintf(path, sizeof(path), "/v1/topics/%s", o->name);
    snprintf(what, sizeof(what), "cannot delete topic '%s'", o->name);
    snprintf(done, sizeof(done), "topic '%s' deleted", o->name);
    return cli_act(cli, "DELETE", path, NULL, 200, what, done);
}

static int run_publish(struct cli *cli, struct opts *o)
{
    if (o->body != NULL && o->body_file != NULL)
        return cli_error("give --body or --body-file, not both"), 2;
    char id_line[400];
    if (o->id != NULL) {
        if (*o->id == '\0' || strlen(o->id) > 256 || fl_str_has_ctl(o->id, strlen(o->id)))
            return cli_error("--id: 1 to 256 bytes without control characters"), 2;
        snprintf(id_line, sizeof(id_line), "X-Flint-Message-Id: %s", o->id);
        o->headers.lines[o->headers.n++] = id_line;
    }
    o->headers.lines[o->headers.n] = NULL;
    struct fl_buf file;
    fl_buf_init(&file, 64u << 20);
    const char *body = o->body ? o->body : "";
    size_t len = strlen(body);
    if (o->body_file != NULL && cli_read_file(o->body_file, &file) != 0) {
        fl_buf_release(&file);
        return 1;
    }
    if (o->body_file != NULL) {
        body = file.data ? file.data : "";
        len = file.len;
    }
    char path[450];
    struct cli_response r;
    snprintf(path, sizeof(path), "/v1/topics/%s/messages", o->name);
    int rc = cli_call(cli, "POST", path, body, len, "application/octet-stream", o->headers.lines,
                      NULL, NULL, &r);
    fl_buf_release(&file);
    if (rc != 0)
        return 1;
    json_t *seq = json_object_get(r.json, "seq");
    if (r.status != 202 || !json_is_integer(seq))
        rc = fail_call("cannot publish to topic", o->name, &r);
    else if (cli->output != CLI_OUTPUT_TABLE)
        cli_print_value(cli, r.json);
    else
        printf("%" JSON_INTEGER_FORMAT "%s\n", json_integer_value(seq),
               json_is_true(json_object_get(r.json, "duplicate")) ? " duplicate" : "");
    cli_response_release(&r);
    return rc;
}

/* The last n messages (from the topic's last sequence back), then with
 * -f the new ones as they come. */
static int run_tail(struct cli *cli, struct opts *o)
{
    int64_t n = 10;
    if (o->n != NULL && fl_parse_i64(o->n, 0, TAIL_MAX, &n) < 0)
        return cli_error("-n takes a number of messages from 0 to %d, not '%s'", TAIL_MAX, o->n), 2;
    json_t *t = NULL;
    if (get_topic(cli, o->name, &t) != 0)
        return 1;
    json_int_t first = json_integer_value(json_object_get(t, "firstSeq"));
    json_int_t last = json_integer_value(json_object_get(t, "lastSeq"));
    json_decref(t);
    json_int_t from = last - n + 1 > first ? last - n + 1 : first;
    if (from < 1)
        from = 1;
    struct cli_lines printer = {.raw = cli->output != CLI_OUTPUT_TABLE, .line = print_message};
    fl_buf_init(&printer.partial, 64u << 20);
    char path[500];
    int rc = 0;
    if (o->follow) {
        snprintf(path, sizeof(path), "/v1/topics/%s/messages?follow=1&from=%" JSON_INTEGER_FORMAT,
                 o->name, from);
        struct cli_response r;
        if (cli_call(cli, "GET", path, NULL, 0, NULL, NULL, cli_lines_feed, &printer, &r) != 0) {
            cli_lines_finish(&printer);
            return 1;
        }
        if (r.status != 200)
            rc = fail_call("cannot follow topic", o->name, &r);
        cli_response_release(&r);
        cli_lines_finish(&printer);
        return rc;
    }
    /* the API answers a page at a time: ask on from its next until n came */
    for (json_int_t left = n; left > 0 && from <= last;) {
        snprintf(path, sizeof(path),
                 "/v1/topics/%s/messages?from=%" JSON_INTEGER_FORMAT "&limit=%" JSON_INTEGER_FORMAT,
                 o->name, from, left);
        struct cli_response r;
        if (cli_call_json(cli, "GET", path, NULL, &r) != 0) {
            rc = 1;
            break;
        }
        json_t *msgs = json_object_get(r.json, "messages");
        json_int_t next = json_integer_value(json_object_get(r.json, "next"));
        if (r.status != 200 || !json_is_array(msgs)) {
            rc = fail_call("cannot read topic", o->name, &r);
            cli_response_release(&r);
            break;
        }
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m)
        {
            char *line = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (line != NULL) {
                cli_lines_feed(line, strlen(line), &printer);
                cli_lines_feed("\n", 1, &printer);
            }
            free(line);
        }
        left -= (json_int_t)json_array_size(msgs);
        bool stuck = next <= from;
        from = next;
        cli_response_release(&r);
        if (stuck)
            break; /* nothing more to read: the end */
    }
    cli_lines_finish(&printer);
    return rc;
}

/* ---- dispatch ---- */

static const struct {
    const char *name;    /* as in main.c's table */
    const char *options; /* the options it takes */
    bool needs_name;
    int (*run)(struct cli *cli, struct opts *o);
} topic_commands[] = {
    {"topic create", "--name --max-msgs --max-bytes --max-age --dup-window", true, run_create},
    {"topic update", "--name --max-msgs --max-bytes --max-age --dup-window", true, run_update},
    {"topic list", "--all", false, run_list},
    {"topic get", "--name", true, run_get},
    {"topic delete", "--name", true, run_delete},
    {"topic publish", "--name --body --body-file -H --id", true, run_publish},
    {"topic tail", "--name -f -n", true, run_tail},
};

int cmd_topic(struct cli *cli, int argc, char **argv)
{
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "%s %s", argv[0], argc > 1 ? argv[1] : "");
    for (size_t i = 0; i < sizeof(topic_commands) / sizeof(topic_commands[0]); i++) {
        if (strcmp(topic_commands[i].name, cmd) != 0)
            continue;
        struct opts o;
        memset(&o, 0, sizeof(o));
        int rc = cli_parse_options(cmd, options, NOPTIONS, topic_commands[i].options, argc, argv,
                                   &o, NULL);
        if (rc != 0)
            return rc;
        /* a name goes into a path: one the API would refuse is refused here */
        struct fl_buf why;
        fl_buf_init(&why, 512);
        if (topic_commands[i].needs_name && o.name == NULL)
            rc = cli_error("'flint %s' needs %s", cmd,
                           strstr(cmd, "publish") || strstr(cmd, "tail") ? "--topic" : "--name");
        else if (o.name != NULL && fl_topic_name_check(o.name, &why) < 0)
            rc = cli_error("%s", why.data);
        fl_buf_release(&why);
        return rc != 0 ? 2 : topic_commands[i].run(cli, &o);
    }
    return cli_error("internal: '%s' is not a command of topic.c", cmd);
}
