/* The CLI's HTTP calls to the control API, through libcurl. */
#include "cli/cli.h"

#include "base/error.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_RESPONSE_BYTES (64u << 20)

struct sink {
    CURL *curl;
    struct fl_buf *buf;
    cli_stream_fn stream; /* successful bodies go there as they arrive */
    void *stream_arg;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct sink *sink = arg;
    size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &status);
    if (sink->stream != NULL && status >= 200 && status < 300) {
        sink->stream(data, len, sink->stream_arg);
        return len;
    }
    return fl_buf_append(sink->buf, data, len) == 0 ? len : 0;
}

void cli_response_release(struct cli_response *r)
{
    json_decref(r->json);
    r->json = NULL;
    fl_buf_release(&r->raw);
}

int cli_call(struct cli *cli, const char *method, const char *path, const void *body,
             size_t body_len, const char *content_type, const char *const *headers,
             cli_stream_fn stream, void *stream_arg, struct cli_response *r)
{
    char url[2048], auth[300], ctype[200], errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *list = NULL;
    int rc = -1;

    memset(r, 0, sizeof(*r));
    fl_buf_init(&r->raw, MAX_RESPONSE_BYTES);
    CURL *curl = curl_easy_init();
    if (curl == NULL)
        return cli_error("cannot start an HTTP client (out of memory)"), -1;

    snprintf(url, sizeof(url), "%s%s", cli->url, path);
    if (cli->token[0] != '\0') {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cli->token);
        list = curl_slist_append(list, auth);
    }
    bool own_type = false; /* the caller's -H Content-Type wins over the default */
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        own_type |= strncasecmp(headers[i], "content-type:", 13) == 0;
    if (body != NULL && !own_type) {
        snprintf(ctype, sizeof(ctype), "Content-Type: %s",
                 content_type ? content_type : "application/json");
        list = curl_slist_append(list, ctype);
    }
    list = curl_slist_append(list, "Expect:");
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        list = curl_slist_append(list, headers[i]);

    struct sink sink = {.curl = curl, .buf = &r->raw, .stream = stream, .stream_arg = stream_arg};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    if (body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }

    CURLcode res = curl_easy_perform(curl);
    if (res != CURLE_OK) {
        if (res == CURLE_WRITE_ERROR && stream == NULL)
            cli_error("the answer from %s is larger than %u bytes", url, MAX_RESPONSE_BYTES);
        else if (res == CURLE_COULDNT_CONNECT)
            cli_error("cannot reach flintd at %s: %s\n"
                      "  is it running? start it with 'make run' or 'flintd --api ADDR',\n"
                      "  or point flint at it with FLINT_URL or --url",
                      cli->url, errbuf[0] ? errbuf : curl_easy_strerror(res));
        else
            cli_error("%s %s failed: %s", method, url,
                      errbuf[0] ? errbuf : curl_easy_strerror(res));
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->raw.len > 0)
        r->json = json_loadb(r->raw.data, r->raw.len, 0, NULL);
    rc = 0;
out:
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    return rc;
}

int cli_call_json(struct cli *cli, const char *method, const char *path, json_t *body,
                  struct cli_response *r)
{
    char *text = NULL;
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
        if (text == NULL)
            return cli_error("out of memory"), -1;
    }
    int rc = cli_call(cli, method, path, text, text ? strlen(text) : 0, NULL, NULL, NULL, NULL, r);
    free(text);
    return rc;
}

int cli_fail_response(const struct cli_response *r, const char *fmt, ...)
{
    const char *message = NULL;
    json_t *error = json_object_get(r->json, "error");
    const char *code = json_string_value(json_object_get(error, "code"));
    if (error != NULL)
        message = json_string_value(json_object_get(error, "message"));
    if (message == NULL)
        message = r->raw.len > 0 ? r->raw.data : "(no body)";
    va_list ap;
    fputs("flint: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (code != NULL)
        fprintf(stderr, ": %s (%s, HTTP %ld)\n", message, code, r->status);
    else
        fprintf(stderr, ": %s (HTTP %ld)\n", message, r->status);
    if (r->status == 401)
        fprintf(stderr, "  the token was refused: set FLINT_TOKEN, or --data DIR where flintd "
                        "keeps its 'token' file\n");
    else if (r->status == 409 && code != NULL && strcmp(code, "exists") == 0)
        fprintf(stderr, "  change it with 'update', or 'delete' it first\n");
    else if (r->status == 409)
        fprintf(stderr, "  it changed since you read it: get it again and retry\n");
    return 1;
}

int cli_read_file(const char *path, struct fl_buf *out)
{
    FILE *f = fopen(path, "rb");
    char chunk[65536];
    size_t n;
    if (f == NULL)
        return cli_error("cannot open '%s': %s", path, strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (fl_buf_append(out, chunk, n) < 0) {
            fclose(f);
            return cli_error("'%s' is larger than %zu bytes", path, out->max);
        }
    }
    fclose(f);
    return 0;
}

int cli_act(struct cli *cli, const char *method, const char *path, json_t *body, long want,
            const char *what, const char *done)
{
    struct cli_response r;
    if (cli_call_json(cli, method, path, body, &r) != 0)
        return 1;
    int rc = 0;
    if (r.status != want)
        rc = cli_fail_response(&r, "%s", what);
    else if (cli->output != CLI_OUTPUT_TABLE)
        cli_print_value(cli, r.json);
    else
        printf("%s\n", done);
    cli_response_release(&r);
    return rc;
}
