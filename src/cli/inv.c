/*
 * Invocations from the command line: flint fn invoke (and its older name
 * fn test), flint wf run, flint inv get|list|events|cancel, flint dlq
 * list|get|redrive|purge, over the API's /v1/functions/{name}/invoke,
 * /v1/workflows/{name}/invoke, /v1/invocations and
 * /v1/deadletters (docs/api.md, "Async invocations and dead letters").
 *
 * One table, inv_commands[], says per command which options it takes and
 * whether it names an invocation; the options themselves are the rows of
 * options[], each filling a field of struct opts.
 */
#include "cli/cli.h"

#include "base/str.h"
#include "kinds/kinds.h" /* struct fl_kind_column, for the tables */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum takes_id { NO_ID, ID_REQUIRED, ID_OPTIONAL };

struct opts {
    const char *id; /* the invocation named on the line */
    const char *name, *function, *workflow, *status, *limit, *key, *callback, *method, *body,
        *body_file, *path;
    struct cli_headers headers; /* -H ones, and the async ones */
    struct cli_headers query;   /* --query name=value ones */
    bool async, all, yes;
    enum takes_id takes_id; /* the command's */
};

static const struct cli_opt options[] = {
    {"--name", NULL, CLI_OPT_VALUE, offsetof(struct opts, name)},
    {"--function", NULL, CLI_OPT_VALUE, offsetof(struct opts, function)},
    {"--workflow", NULL, CLI_OPT_VALUE, offsetof(struct opts, workflow)},
    {"--query", NULL, CLI_OPT_LIST, offsetof(struct opts, query)},
    {"--status", NULL, CLI_OPT_VALUE, offsetof(struct opts, status)},
    {"--limit", NULL, CLI_OPT_VALUE, offsetof(struct opts, limit)},
    {"--idempotency-key", NULL, CLI_OPT_VALUE, offsetof(struct opts, key)},
    {"--callback", NULL, CLI_OPT_VALUE, offsetof(struct opts, callback)},
    {"--method", NULL, CLI_OPT_VALUE, offsetof(struct opts, method)},
    {"--body", NULL, CLI_OPT_VALUE, offsetof(struct opts, body)},
    {"--body-file", NULL, CLI_OPT_VALUE, offsetof(struct opts, body_file)},
    {"--path", NULL, CLI_OPT_VALUE, offsetof(struct opts, path)},
    {"-H", NULL, CLI_OPT_HEADER, offsetof(struct opts, headers)},
    {"--async", NULL, CLI_OPT_SWITCH, offsetof(struct opts, async)},
    {"--all", NULL, CLI_OPT_SWITCH, offsetof(struct opts, all)},
    {"--yes", NULL, CLI_OPT_SWITCH, offsetof(struct opts, yes)},
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

/* Whether id can name an invocation in a path: 1 to 64 letters, digits,
 * '-' or '_' (ids are UUIDs; nothing that changes the path). */
static bool valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(id[i] >= '0' && id[i] <= '9') && !(id[i] >= 'a' && id[i] <= 'z') &&
            !(id[i] >= 'A' && id[i] <= 'Z') && id[i] != '-' && id[i] != '_')
            return false;
    return true;
}

/* ---- output ---- */

/* An invocation's field as a line "label:  value", made inert; nothing for
 * a field that is absent or null. */
static void print_field(const char *label, json_t *v)
{
    char text[64];
    const char *s = json_string_value(v);
    if (v == NULL || json_is_null(v))
        return;
    if (s == NULL) {
        snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        s = text;
    }
    printf("%-10s ", label);
    cli_print_inert(s);
    putchar('\n');
}

/* A body kept by the API (body and bodyEncoding in holder): text made
 * inert and indented, or "(N bytes, binary)". */
static void print_body(json_t *holder)
{
    const char *body = json_string_value(json_object_get(holder, "body"));
    const char *encoding = json_string_value(json_object_get(holder, "bodyEncoding"));
    if (body == NULL)
        return;
    if (encoding != NULL && strcmp(encoding, "base64") == 0) {
        size_t len = strlen(body), pad = 0;
        while (pad < 2 && pad < len && body[len - 1 - pad] == '=')
            pad++;
        printf("  (%zu bytes, binary)\n", len / 4 * 3 - pad);
    } else if (*body == '\0') {
        printf("  (empty)\n");
    } else {
        char *copy = fl_strndup(body, strlen(body));
        for (char *line = copy, *next; line != NULL; line = next) {
            next = strchr(line, '\n');
            if (next != NULL)
                *next++ = '\0';
            if (next == NULL && *line == '\0')
                break; /* the final newline */
            printf("  ");
            cli_print_inert(line);
            putchar('\n');
        }
        free(copy);
    }
    if (json_is_true(json_object_get(holder, "truncated")))
        printf("  (truncated)\n");
}

/* Make the attempts of each item (an array in get, a count in lists) a
 * number, for the ATTEMPTS column. */
static void count_attempts(json_t *items)
{
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        json_t *attempts = json_object_get(item, "attempts");
        if (json_is_array(attempts))
            json_object_set_new(item, "attempts",
                                json_integer((json_int_t)json_array_size(attempts)));
    }
}

static const struct fl_kind_column list_columns[] = {
    {"ID", "id"},         {"FUNCTION", "function"}, {"TRIGGER", "trigger"},
    {"STATUS", "status"}, {"ATTEMPTS", "attempts"}, {"CREATED", "createdAt"},
    {NULL, NULL},
};

static const struct fl_kind_column workflow_list_columns[] = {
    {"ID", "invocation"},          {"WORKFLOW", "workflow"},
    {"TRIGGER", "trigger"},        {"STATUS", "status"},
    {"CREATED", "createdAt"},      {"DURATION", "duration"},
    {"FAILED TASK", "failedTask"}, {NULL, NULL},
};

static const struct fl_kind_column task_columns[] = {
    {"TASK", "id"},           {"RUN", "run"},
    {"STATUS", "status"},     {"ATTEMPTS", "attempts"},
    {"STARTED", "startedAt"}, {"DURATION", "duration"},
    {"ERROR", "error"},       {NULL, NULL},
};

static const struct fl_kind_column event_columns[] = {
    {"SEQ", "seq"}, {"TYPE", "type"}, {"AT", "at"}, {"TASK", "task"}, {NULL, NULL}};

static const struct fl_kind_column attempt_columns[] = {
    {"ATTEMPT", "attempt"}, {"STARTED", "startedAt"}, {"DURATION", "duration"},
    {"STATUS", "status"},   {"ERROR", "error"},       {NULL, NULL},
};

/* "12ms" for each item's durationMs, as its "duration". */
static void durations(json_t *items)
{
    size_t i;
    json_t *a;
    json_array_foreach(items, i, a)
    {
        json_t *d = json_object_get(a, "durationMs");
        char ms[32];
        snprintf(ms, sizeof(ms), "%" JSON_INTEGER_FORMAT "ms", json_integer_value(d));
        if (json_is_integer(d))
            json_object_set_new(a, "duration", json_string(ms));
    }
}

/* A workflow invocation, for a terminal: its fields, its output or error,
 * and a table of its tasks. */
static void print_workflow_invocation(json_t *inv)
{
    static const struct {
        const char *label, *field;
    } fields[] = {{"id:", "invocation"},       {"workflow:", "workflow"}, {"trigger:", "trigger"},
                  {"status:", "status"},       {"created:", "createdAt"}, {"ended:", "endedAt"},
                  {"duration:", "durationMs"}, {"failed:", "failedTask"}, {"error:", "error"}};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        print_field(fields[i].label, json_object_get(inv, fields[i].field));
    json_t *output = json_object_get(inv, "output");
    if (output != NULL && !json_is_null(output)) {
        char *text = json_is_string(output) ? NULL : json_dumps(output, JSON_COMPACT);
        json_t *line = json_string(text ? text : json_string_value(output));
        print_field("output:", line);
        json_decref(line);
        free(text);
    }
    json_t *tasks = json_deep_copy(json_object_get(inv, "tasks"));
    durations(tasks);
    printf("\n");
    cli_print_table(task_columns, tasks);
    json_decref(tasks);
}

/* One invocation as docs/api.md shows it, for a terminal. */
static void print_invocation(json_t *inv)
{
    const char *kind = json_string_value(json_object_get(inv, "kind"));
    if (kind != NULL && strcmp(kind, "workflow") == 0) {
        print_workflow_invocation(inv);
        return;
    }
    static const struct {
        const char *label, *field;
    } fields[] = {{"id:", "id"},
                  {"function:", "function"},
                  {"trigger:", "trigger"},
                  {"status:", "status"},
                  {"created:", "createdAt"},
                  {"updated:", "updatedAt"},
                  {"next:", "nextAttemptAt"}};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        print_field(fields[i].label, json_object_get(inv, fields[i].field));
    json_t *retry = json_object_get(inv, "retry");
    if (json_is_object(retry)) {
        char line[200];
        json_t *b = json_object_get(retry, "backoff"), *mb = json_object_get(retry, "maxBackoff");
        snprintf(line, sizeof(line), "%" JSON_INTEGER_FORMAT " attempts, backoff %s, max %s",
                 json_integer_value(json_object_get(retry, "maxAttempts")),
                 json_is_string(b) ? json_string_value(b) : "-",
                 json_is_string(mb) ? json_string_value(mb) : "-");
        json_t *text = json_string(line);
        print_field("retry:", text);
        json_decref(text);
    }

    json_t *request = json_object_get(inv, "request");
    if (json_is_object(request) && json_object_get(request, "body") != NULL) {
        /* a dead letter: its request whole */
        const char *query = json_string_value(json_object_get(request, "query"));
        char line[2400];
        snprintf(line, sizeof(line), "%s %s%s%s",
                 json_string_value(json_object_get(request, "method"))
                     ? json_string_value(json_object_get(request, "method"))
                     : "?",
                 json_string_value(json_object_get(request, "path"))
                     ? json_string_value(json_object_get(request, "path"))
                     : "/",
                 query && *query ? "?" : "", query && *query ? query : "");
        json_t *text = json_string(line);
        print_field("request:", text);
        json_decref(text);
        const char *key;
        json_t *value;
        json_object_foreach(json_object_get(request, "headers"), key, value)
        {
            printf("  ");
            cli_print_inert(key);
            printf(": ");
            cli_print_inert(json_string_value(value) ? json_string_value(value) : "");
            putchar('\n');
        }
        printf("body:\n");
        print_body(request);
    }

    json_t *attempts = json_deep_copy(json_object_get(inv, "attempts"));
    size_t i;
    json_t *a;
    json_array_foreach(attempts, i, a)
    {
        /* a lost attempt has no duration: "-" */
        json_t *d = json_object_get(a, "durationMs");
        char ms[32];
        snprintf(ms, sizeof(ms), "%" JSON_INTEGER_FORMAT "ms", json_integer_value(d));
        if (json_is_integer(d))
            json_object_set_new(a, "duration", json_string(ms));
    }
    printf("\n");
    if (json_array_size(attempts) == 0)
        printf("no attempts yet\n");
    else
        cli_print_table(attempt_columns, attempts);
    json_decref(attempts);

    json_t *result = json_object_get(inv, "result");
    if (json_is_object(result)) {
        printf("\n");
        print_field("result:", json_object_get(result, "status"));
        print_body(result);
    }
    json_t *callback = json_object_get(inv, "callback");
    if (json_is_object(callback)) {
        char line[2400];
        json_int_t n = json_integer_value(json_object_get(callback, "attempts"));
        const char *url = json_string_value(json_object_get(callback, "url"));
        const char *status = json_string_value(json_object_get(callback, "status"));
        snprintf(line, sizeof(line), "%s: %s (%" JSON_INTEGER_FORMAT " attempt%s)", url ? url : "-",
                 status ? status : "-", n, n == 1 ? "" : "s");
        json_t *text = json_string(line);
        print_field("callback:", text);
        json_decref(text);
    }
}

/* ---- commands ---- */

/* Percent-encode s into out for a query (all but unreserved characters). */
static void query_escape(const char *s, char *out, size_t size)
{
    size_t used = 0;
    for (; *s != '\0' && used + 4 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            out[used++] = (char)c;
        else
            used += (size_t)snprintf(out + used, size - used, "%%%02X", c);
    }
    out[used] = '\0';
}

/* Append "&name=value" (escaped) to the query in q. */
static void query_add(char *q, size_t size, const char *name, const char *value)
{
    char escaped[600];
    if (value == NULL)
        return;
    query_escape(value, escaped, sizeof(escaped));
    size_t n = strlen(q), len = strlen(name) + strlen(escaped) + 2;
    if (len >= size - n)
        return; /* no room: left out (the callers' buffers hold what they add) */
    memcpy(q + n, n ? "&" : "?", 1);
    memcpy(q + n + 1, name, strlen(name));
    q[n + 1 + strlen(name)] = '=';
    memcpy(q + n + 2 + strlen(name), escaped, strlen(escaped) + 1);
}

static void query_add_all(char *q, size_t size, const struct cli_headers *h)
{
    for (int i = 0; i < h->n; i++) {
        const char *eq = strchr(h->lines[i], '=');
        char name[128], ename[400], evalue[600];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - h->lines[i]), h->lines[i]);
        query_escape(name, ename, sizeof(ename));
        query_escape(eq + 1, evalue, sizeof(evalue));
        size_t n = strlen(q);
        int w = snprintf(q + n, size - n, "%s%s=%s", n ? "&" : "?", ename, evalue);
        if (w < 0 || (size_t)w >= size - n)
            q[n] = '\0'; /* no room: the pair is left out */
    }
}

/* cli_fail_response() with "what 'id'". */
static int fail_call(const char *what, const char *id, const struct cli_response *r)
{
    char text[200];
    snprintf(text, sizeof(text), "%s '%s'", what, id);
    return cli_fail_response(r, "%s", text);
}

/* Append each --query name=value (escaped) to the query in q. */
static void query_add_all(char *q, size_t size, const struct cli_headers *h);

static int run_invoke(struct cli *cli, struct opts *o, const char *cmd, const char *plural)
{
    bool workflow = strcmp(plural, "workflows") == 0;
    int rc = 1;
    struct fl_buf file;
    const char *subpath = o->path ? o->path : "";

    if (o->name == NULL)
        return cli_error("'flint %s' needs --name", cmd), 2;
    if (!o->async && (o->key != NULL || o->callback != NULL))
        return cli_error("--idempotency-key and --callback are for async invocations: add --async"),
               2;
    if (*subpath != '\0' && *subpath != '/')
        return cli_error("--path must start with '/'"), 2;
    if (o->body != NULL && o->body_file != NULL)
        return cli_error("give --body or --body-file, not both"), 2;
    const struct {
        const char *header, *value;
    } async_headers[] = {{"Idempotency-Key", o->key}, {"X-Flint-Callback-Url", o->callback}};
    char lines[2][2200];
    if (o->async)
        o->headers.lines[o->headers.n++] = "Prefer: respond-async";
    for (size_t i = 0; o->async && i < 2; i++) {
        const char *v = async_headers[i].value;
        if (v == NULL)
            continue;
        if (fl_str_has_ctl(v, strlen(v)) || strlen(v) > 2048)
            return cli_error("%s: at most 2048 bytes without control characters",
                             async_headers[i].header),
                   2;
        snprintf(lines[i], sizeof(lines[i]), "%s: %s", async_headers[i].header, v);
        o->headers.lines[o->headers.n++] = lines[i];
    }
    o->headers.lines[o->headers.n] = NULL;

    fl_buf_init(&file, 64u << 20);
    size_t body_len = o->body ? strlen(o->body) : 0;
    if (o->body_file != NULL) {
        if (cli_read_file(o->body_file, &file) != 0)
            goto out;
        o->body = file.data ? file.data : "";
        body_len = file.len;
    }
    const char *method = o->method ? o->method : o->body != NULL ? "POST" : "GET";
    char path[1024], query[1200] = "";
    query_add_all(query, sizeof(query), &o->query);
    snprintf(path, sizeof(path), "/v1/%s/%s/invoke%s%s", plural, o->name, subpath, query);
    struct cli_response r;
    if (cli_call(cli, method, path, o->body, body_len, "application/octet-stream", o->headers.lines,
                 NULL, NULL, &r) != 0)
        goto out;
    if (!o->async && workflow && r.status >= 400) {
        char what[200];
        snprintf(what, sizeof(what), "workflow '%s' failed", o->name);
        rc = cli_fail_response(&r, "%s", what);
        json_t *err = json_object_get(r.json, "error");
        const char *inv = json_string_value(json_object_get(err, "invocation"));
        if (inv != NULL)
            fprintf(stderr, "flint: see 'flint inv get %s'\n", inv);
    } else if (!o->async) {
        fwrite(r.raw.data ? r.raw.data : "", 1, r.raw.len, stdout);
        if (r.raw.len > 0 && r.raw.data[r.raw.len - 1] != '\n')
            putchar('\n');
        if (r.status >= 400)
            cli_error("function '%s' answered HTTP %ld", o->name, r.status);
        else
            rc = 0;
    } else if (r.status == 202 && json_string_value(json_object_get(r.json, "invocation"))) {
        if (cli->output != CLI_OUTPUT_TABLE)
            cli_print_value(cli, r.json);
        else
            printf("%s\n", json_string_value(json_object_get(r.json, "invocation")));
        if (json_is_true(json_object_get(r.json, "duplicate")))
            fprintf(stderr, "flint: the idempotency key's first invocation: nothing new was "
                            "queued\n");
        rc = 0;
    } else if (r.status < 300) {
        rc = cli_error("flintd ran the call instead of accepting it (HTTP %ld): it does not "
                       "take async invocations",
                       r.status);
    } else {
        char what[200];
        snprintf(what, sizeof(what), "cannot invoke '%s' asynchronously", o->name);
        rc = cli_fail_response(&r, "%s", what);
    }
    cli_response_release(&r);
out:
    fl_buf_release(&file);
    return rc;
}

static int run_fn_invoke(struct cli *cli, struct opts *o)
{
    return run_invoke(cli, o, "fn invoke", "functions");
}

static int run_wf_run(struct cli *cli, struct opts *o)
{
    if (o->key != NULL || o->callback != NULL)
        return cli_error("'flint wf run' takes no --idempotency-key or --callback"), 2;
    return run_invoke(cli, o, "wf run", "workflows");
}

/* GET one invocation (base: "/v1/invocations" or "/v1/deadletters"). */
static int get_one(struct cli *cli, const char *base, const char *id)
{
    char path[256];
    struct cli_response r;
    snprintf(path, sizeof(path), "%s/%s", base, id);
    if (cli_call_json(cli, "GET", path, NULL, &r) != 0)
        return 1;
    int rc = 0;
    if (r.status != 200 || !json_is_object(r.json))
        rc = fail_call(strstr(base, "dead") ? "dead letter" : "invocation", id, &r);
    else if (cli->output != CLI_OUTPUT_TABLE)
        cli_print_value(cli, r.json);
    else
        print_invocation(r.json);
    cli_response_release(&r);
    return rc;
}

static int run_inv_get(struct cli *cli, struct opts *o)
{
    return get_one(cli, "/v1/invocations", o->id);
}

static int run_dlq_get(struct cli *cli, struct opts *o)
{
    return get_one(cli, "/v1/deadletters", o->id);
}

/* List base's invocations, a page, or (--all) every page. */
static int list(struct cli *cli, const char *base, struct opts *o)
{
    char query[1024] = "", path[2048];
    int64_t limit;
    if (o->limit != NULL && fl_parse_i64(o->limit, 1, 1000, &limit) < 0)
        return cli_error("--limit takes a number from 1 to 1000, not '%s'", o->limit), 2;
    if (o->workflow != NULL && o->function != NULL)
        return cli_error("give --function or --workflow, not both"), 2;
    query_add(query, sizeof(query), "function", o->function);
    query_add(query, sizeof(query), "workflow", o->workflow);
    query_add(query, sizeof(query), "status", o->status);
    query_add(query, sizeof(query), "limit", o->limit);
    json_t *items = json_array(), *next = json_null();
    int rc = 0;
    const char *after = NULL;
    char cursor[600];
    for (int page = 0; page < 100000; page++) {
        char q[1800];
        snprintf(q, sizeof(q), "%s", query);
        query_add(q, sizeof(q), "after", after);
        snprintf(path, sizeof(path), "%s%s", base, q);
        struct cli_response r;
        if (cli_call_json(cli, "GET", path, NULL, &r) != 0) {
            rc = 1;
            break;
        }
        json_t *page_items = json_object_get(r.json, "items");
        if (r.status != 200 || !json_is_array(page_items)) {
            rc = cli_fail_response(&r, "%s",
                                   strstr(base, "dead") ? "cannot list dead letters"
                                                        : "cannot list invocations");
            cli_response_release(&r);
            break;
        }
        json_array_extend(items, page_items);
        json_decref(next);
        next = json_incref(json_object_get(r.json, "next"));
        const char *n = json_string_value(next);
        bool more = o->all && n != NULL && *n != '\0' && strlen(n) < sizeof(cursor);
        if (more && after != NULL && strcmp(n, after) == 0) {
            /* a cursor that does not move on would list the same page forever */
            rc = cli_error("the API answered the same page again (next '%s'): stopping", n);
            cli_response_release(&r);
            break;
        }
        if (more) {
            fl_strlcpy(cursor, n, sizeof(cursor));
            after = cursor;
        }
        cli_response_release(&r);
        if (!more)
            break;
    }
    if (rc == 0) {
        if (cli->output != CLI_OUTPUT_TABLE) {
            json_t *all =
                json_pack("{s:O, s:O}", "items", items, "next", next ? next : json_null());
            cli_print_value(cli, all);
            json_decref(all);
        } else if (o->workflow != NULL) {
            cli_print_table(workflow_list_columns, items);
            if (json_is_string(next))
                fprintf(stderr, "flint: there are more: --all lists them all\n");
        } else {
            count_attempts(items);
            cli_print_table(list_columns, items);
            if (json_is_string(next))
                fprintf(stderr, "flint: there are more: --all lists them all\n");
        }
    }
    json_decref(items);
    json_decref(next);
    return rc;
}

static int run_inv_list(struct cli *cli, struct opts *o)
{
    return list(cli, "/v1/invocations", o);
}

static int run_inv_events(struct cli *cli, struct opts *o)
{
    char path[256];
    struct cli_response r;
    snprintf(path, sizeof(path), "/v1/invocations/%s/events", o->id);
    if (cli_call_json(cli, "GET", path, NULL, &r) != 0)
        return 1;
    int rc = 0;
    json_t *events = json_object_get(r.json, "events");
    if (r.status != 200 || !json_is_array(events)) {
        rc = fail_call("workflow invocation", o->id, &r);
    } else if (cli->output != CLI_OUTPUT_TABLE) {
        cli_print_value(cli, r.json);
    } else {
        json_t *rows = json_deep_copy(events);
        size_t i;
        json_t *ev;
        json_array_foreach(rows, i, ev)
        {
            json_t *task = json_object_get(json_object_get(ev, "data"), "task");
            if (task != NULL)
                json_object_set(ev, "task", task);
        }
        cli_print_table(event_columns, rows);
        json_decref(rows);
    }
    cli_response_release(&r);
    return rc;
}

static int run_dlq_list(struct cli *cli, struct opts *o)
{
    if (o->status != NULL)
        return cli_error("'flint dlq list' has no --status: dead letters are all dead"), 2;
    return list(cli, "/v1/deadletters", o);
}

static int run_inv_cancel(struct cli *cli, struct opts *o)
{
    char path[256], what[200], done[200];
    snprintf(path, sizeof(path), "/v1/invocations/%s/cancel", o->id);
    snprintf(what, sizeof(what), "cannot cancel invocation '%s'", o->id);
    snprintf(done, sizeof(done), "invocation %s canceled", o->id);
    return cli_act(cli, "POST", path, NULL, 200, what, done);
}

/* Redrive or purge (verb) the dead letter o->id, those of --function, or
 * --all; prints each id the API names. */
static int redrive_or_purge(struct cli *cli, struct opts *o, const char *verb)
{
    bool purge = strcmp(verb, "purge") == 0;
    const char *done = purge ? "purged" : "redriven";
    int chosen = (o->id != NULL) + (o->function != NULL) + o->all;
    char path[512], query[600] = "";
    const char *method = "POST";
    if (chosen != 1)
        return cli_error("'flint dlq %s' takes one of: an ID, --function F, --all", verb), 2;
    if (purge && o->id == NULL && !o->yes)
        return cli_error("purging %s removes them for good: add --yes",
                         o->all ? "every dead letter" : "a function's dead letters"),
               2;
    if (o->id != NULL && purge) {
        snprintf(path, sizeof(path), "/v1/deadletters/%s", o->id);
        method = "DELETE";
    } else if (o->id != NULL) {
        snprintf(path, sizeof(path), "/v1/deadletters/%s/redrive", o->id);
    } else {
        query_add(query, sizeof(query), "function", o->function);
        if (o->all)
            query_add(query, sizeof(query), "all", "true");
        snprintf(path, sizeof(path), "/v1/deadletters/%s%s", verb, query);
    }
    struct cli_response r;
    if (cli_call_json(cli, method, path, NULL, &r) != 0)
        return 1;
    int rc = 0;
    json_t *ids = json_object_get(r.json, done);
    if (r.status != 200 || !json_is_array(ids)) {
        char what[200];
        snprintf(what, sizeof(what), "cannot %s %s%s%s", verb, o->id ? "dead letter '" : "",
                 o->id ? o->id : "dead letters", o->id ? "'" : "");
        rc = cli_fail_response(&r, "%s", what);
    } else if (cli->output != CLI_OUTPUT_TABLE) {
        cli_print_value(cli, r.json);
    } else {
        size_t i;
        json_t *id;
        json_array_foreach(ids, i, id) printf("%s %s\n", done, json_string_value(id));
        if (json_array_size(ids) == 0)
            printf("no dead letters to %s\n", verb);
    }
    cli_response_release(&r);
    return rc;
}

static int run_dlq_redrive(struct cli *cli, struct opts *o)
{
    return redrive_or_purge(cli, o, "redrive");
}

static int run_dlq_purge(struct cli *cli, struct opts *o)
{
    return redrive_or_purge(cli, o, "purge");
}

static const struct {
    const char *name;    /* as in main.c's table */
    const char *options; /* the options it takes */
    enum takes_id id;
    int (*run)(struct cli *cli, struct opts *o);
} inv_commands[] = {
    {"fn invoke",
     "--name --async --idempotency-key --callback --method --body --body-file -H --path", NO_ID,
     run_fn_invoke},
    {"fn test", /* its older name */
     "--name --async --idempotency-key --callback --method --body --body-file -H --path", NO_ID,
     run_fn_invoke},
    {"wf run", "--name --async --method --body --body-file -H --query", NO_ID, run_wf_run},
    {"inv get", "", ID_REQUIRED, run_inv_get},
    {"inv list", "--function --workflow --status --limit --all", NO_ID, run_inv_list},
    {"inv events", "", ID_REQUIRED, run_inv_events},
    {"inv cancel", "", ID_REQUIRED, run_inv_cancel},
    {"dlq list", "--function --limit --all", NO_ID, run_dlq_list},
    {"dlq get", "", ID_REQUIRED, run_dlq_get},
    {"dlq redrive", "--function --all", ID_OPTIONAL, run_dlq_redrive},
    {"dlq purge", "--function --all --yes", ID_OPTIONAL, run_dlq_purge},
};

/* An argument that is no option: the invocation's id, where one is taken. */
static int take_id(void *opts, const char *arg)
{
    struct opts *o = opts;
    if (o->takes_id == NO_ID || o->id != NULL)
        return cli_error("this command takes no argument '%s'", arg), 2;
    if (!valid_id(arg))
        return cli_error("'%s' is not an invocation id", arg), 2;
    o->id = arg;
    return 0;
}

int cmd_inv(struct cli *cli, int argc, char **argv)
{
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "%s %s", argv[0], argc > 1 ? argv[1] : "");
    for (size_t i = 0; i < sizeof(inv_commands) / sizeof(inv_commands[0]); i++) {
        if (strcmp(inv_commands[i].name, cmd) != 0)
            continue;
        struct opts o;
        memset(&o, 0, sizeof(o));
        o.takes_id = inv_commands[i].id;
        int rc = cli_parse_options(cmd, options, NOPTIONS, inv_commands[i].options, argc, argv, &o,
                                   take_id);
        if (rc == 0 && o.takes_id == ID_REQUIRED && o.id == NULL) {
            cli_error("'flint %s' needs an invocation id", cmd);
            rc = 2;
        }
        return rc != 0 ? rc : inv_commands[i].run(cli, &o);
    }
    return cli_error("internal: '%s' is not a command of inv.c", cmd);
}
