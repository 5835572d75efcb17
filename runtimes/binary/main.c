/*
 * flint-runtime-binary: any executable or script as a function, CGI-style
 * like Fission's binary environment (docs/runtime-contract.md).
 *
 * Each request runs the executable once: the method, target and headers in
 * the environment (REQUEST_METHOD, REQUEST_URI, PATH_INFO, QUERY_STRING,
 * CONTENT_LENGTH, CONTENT_TYPE, HTTP_<NAME> for each header), the body on
 * stdin. Its stdout is the response body (200, text/plain); a non-zero exit
 * or a signal is a 500 whose message ends with the last bytes of stderr;
 * stdout past FLINT_BINARY_MAX_OUTPUT bytes is a 502 and a run past
 * FLINT_BINARY_TIMEOUT_MS a 504 (the process is killed either way). stderr
 * lines also go to the instance's own stderr, which is the function's log.
 * Requests run concurrently, each in its own process group, which is
 * killed whole on a timeout, too much output, a client that went away, or
 * the runtime's SIGTERM, so that no child of a script outlives its request.
 */
#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/str.h"
#include "http/serve.h"

#include <ctype.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STDERR_TAIL 2048

extern char **environ;

static char executable[4096];
static size_t max_output = 16u << 20;
static uint64_t timeout_ms = 60000;
static uv_loop_t *loop;

struct run {
    struct run *prev, *next; /* the runs in progress */
    struct fl_http_request *req;
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t timer;
    uv_write_t write_req;
    struct fl_buf stdout_buf;
    char tail[STDERR_TAIL];
    size_t tail_len;
    int handles; /* open handles; the run is freed when none is left */
    bool exited, timed_out, too_big, client_gone;
    bool out_closed, err_closed, timer_closed;
    int spawn_err; /* uv_spawn failed with this */
    int64_t status;
    int signal;
    char **env;
};

static struct run *runs;

static void run_free(struct run *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else if (runs == r)
        runs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    for (char **e = r->env; e && *e; e++)
        free(*e);
    free(r->env);
    fl_buf_release(&r->stdout_buf);
    free(r);
}

static void maybe_finish(struct run *r);

static void handle_closed(uv_handle_t *h)
{
    struct run *r = h->data;
    if (--r->handles == 0) {
        maybe_finish(r);
        run_free(r);
    }
}

static void close_handle(struct run *r, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, handle_closed);
}

/* Everything is closed: answer (unless the client left). */
static void maybe_finish(struct run *r)
{
    struct fl_http_request *req = r->req;
    if (r->client_gone) {
        fl_http_respond(req, 499, NULL, 0, "", 0); /* frees the orphaned request */
        return;
    }
    /* the tail of stderr, trimmed to whole lines where possible */
    char tail[STDERR_TAIL + 1];
    memcpy(tail, r->tail, r->tail_len);
    tail[r->tail_len] = '\0';
    while (r->tail_len > 0 && (tail[strlen(tail) - 1] == '\n' || tail[strlen(tail) - 1] == '\r'))
        tail[strlen(tail) - 1] = '\0';
    if (r->spawn_err != 0)
        fl_http_respond_error(req, 500, "function_error", "cannot run %s: %s", executable,
                              uv_strerror(r->spawn_err));
    else if (r->timed_out)
        fl_http_respond_error(req, 504, "function_timeout",
                              "%s ran longer than %llu ms and was stopped", executable,
                              (unsigned long long)timeout_ms);
    else if (r->too_big)
        fl_http_respond_error(req, 502, "output_too_large",
                              "%s wrote more than %zu bytes to stdout and was stopped", executable,
                              max_output);
    else if (r->signal != 0)
        fl_http_respond_error(req, 500, "function_error", "%s was killed by signal %d%s%s",
                              executable, r->signal, tail[0] ? ": " : "", tail);
    else if (r->status != 0)
        fl_http_respond_error(req, 500, "function_error", "%s exited with status %lld%s%s",
                              executable, (long long)r->status, tail[0] ? ": " : "", tail);
    else {
        struct fl_http_header ct = {"Content-Type", 12, "text/plain; charset=utf-8", 25};
        fl_http_respond(req, 200, &ct, 1, r->stdout_buf.data ? r->stdout_buf.data : "",
                        r->stdout_buf.len);
    }
}

/* Kill the run's whole process group (its own, see invoke()). */
static void kill_run(struct run *r)
{
    if (r->proc.pid > 0)
        kill(-r->proc.pid, SIGKILL);
}

/* The deadline runs until the process has exited and its output is closed. */
static void maybe_close_timer(struct run *r)
{
    if (r->exited && r->out_closed && r->err_closed && !r->timer_closed) {
        r->timer_closed = true;
        uv_timer_stop(&r->timer);
        close_handle(r, (uv_handle_t *)&r->timer);
    }
}

static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    struct run *r = p->data;
    r->exited = true;
    r->status = status;
    r->signal = r->timed_out || r->too_big ? 0 : term_signal;
    close_handle(r, (uv_handle_t *)p);
    maybe_close_timer(r);
}

static void on_timeout(uv_timer_t *t)
{
    struct run *r = t->data;
    r->timed_out = true;
    kill_run(r);
}

static void on_abort(struct fl_http_request *req, void *data)
{
    struct run *r = data;
    r->client_gone = true;
    kill_run(r);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[65536];
    buf->base = scratch;
    buf->len = sizeof(scratch);
}

static void on_stdout(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct run *r = s->data;
    if (n < 0) {
        r->out_closed = true;
        close_handle(r, (uv_handle_t *)s);
        maybe_close_timer(r);
        return;
    }
    if (!r->too_big && fl_buf_append(&r->stdout_buf, buf->base, (size_t)n) < 0) {
        r->too_big = true;
        kill_run(r);
    }
}

static void on_stderr(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct run *r = s->data;
    if (n < 0) {
        r->err_closed = true;
        close_handle(r, (uv_handle_t *)s);
        maybe_close_timer(r);
        return;
    }
    ssize_t ignored = write(STDERR_FILENO, buf->base, (size_t)n); /* the function's log */
    (void)ignored;
    size_t len = (size_t)n;
    if (len >= STDERR_TAIL) {
        memcpy(r->tail, buf->base + len - STDERR_TAIL, STDERR_TAIL);
        r->tail_len = STDERR_TAIL;
    } else {
        size_t keep = r->tail_len + len > STDERR_TAIL ? STDERR_TAIL - len : r->tail_len;
        memmove(r->tail, r->tail + r->tail_len - keep, keep);
        memcpy(r->tail + keep, buf->base, len);
        r->tail_len = keep + len;
    }
}

static void on_stdin_written(uv_write_t *w, int status)
{
    struct run *r = w->data;
    close_handle(r, (uv_handle_t *)&r->in);
}

static char *env_entry(const char *name, const char *value, size_t value_len)
{
    size_t n = strlen(name);
    char *e = malloc(n + value_len + 2);
    if (e != NULL) {
        memcpy(e, name, n);
        e[n] = '=';
        memcpy(e + n + 1, value, value_len);
        e[n + 1 + value_len] = '\0';
    }
    return e;
}

/* The CGI environment of req, after the instance's own. */
static char **build_env(const struct fl_http_request *req)
{
    size_t base = 0;
    while (environ[base] != NULL)
        base++;
    char **env = calloc(base + req->nheaders + 8, sizeof(char *));
    if (env == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < base; i++)
        if (!fl_str_has_prefix(environ[i], "FLINT_LISTEN="))
            env[n++] = fl_strndup(environ[i], strlen(environ[i]));
    char len[32];
    snprintf(len, sizeof(len), "%zu", req->body_len);
    size_t ctlen = 0;
    const char *ct = fl_http_request_header(req, "content-type", &ctlen);
    env[n++] = env_entry("REQUEST_METHOD", req->method, strlen(req->method));
    env[n++] = env_entry("REQUEST_URI", req->target, req->target_len);
    env[n++] = env_entry("PATH_INFO", req->path, req->path_len);
    env[n++] = env_entry("QUERY_STRING", req->query, req->query_len);
    env[n++] = env_entry("CONTENT_LENGTH", len, strlen(len));
    env[n++] = env_entry("CONTENT_TYPE", ct ? ct : "", ct ? ctlen : 0);
    for (size_t i = 0; i < req->nheaders; i++) {
        char name[300] = "HTTP_";
        size_t k = 5;
        for (size_t j = 0; j < req->headers[i].name_len && k < sizeof(name) - 1; j++) {
            char c = req->headers[i].name[j];
            name[k++] = c == '-' ? '_' : (char)toupper((unsigned char)c);
        }
        name[k] = '\0';
        env[n++] = env_entry(name, req->headers[i].value, req->headers[i].value_len);
    }
    return env;
}

static void invoke(struct fl_http_request *req)
{
    struct run *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        fl_http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    r->req = req;
    fl_buf_init(&r->stdout_buf, max_output);
    r->env = build_env(req);
    uv_pipe_init(loop, &r->in, 0);
    uv_pipe_init(loop, &r->out, 0);
    uv_pipe_init(loop, &r->err, 0);
    uv_timer_init(loop, &r->timer);
    r->in.data = r->out.data = r->err.data = r->timer.data = r->proc.data = r;
    r->write_req.data = r;
    r->handles = 5; /* in, out, err, timer, process */
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&r->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&r->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&r->err},
    };
    char *args[] = {executable, NULL};
    uv_process_options_t opts = {.file = executable,
                                 .args = args,
                                 .env = r->env,
                                 .exit_cb = on_exit_cb,
                                 .stdio = stdio,
                                 .stdio_count = 3,
                                 .flags = UV_PROCESS_DETACHED};
    /* Detached: a process group of its own, killed whole (kill_run). When
     * the instance itself dies, its sandbox's pid namespace takes every
     * run with it. */
    int rc = r->env ? uv_spawn(loop, &r->proc, &opts) : UV_ENOMEM;
    if (rc < 0) {
        /* answered once every handle is closed; uv_spawn() initialises the
         * process handle even when it fails, but without an environment it
         * never ran, and the handle is not one to close */
        r->spawn_err = rc;
        r->exited = r->out_closed = r->err_closed = r->timer_closed = true;
        if (r->env == NULL)
            r->handles--;
        close_handle(r, (uv_handle_t *)&r->in);
        close_handle(r, (uv_handle_t *)&r->out);
        close_handle(r, (uv_handle_t *)&r->err);
        close_handle(r, (uv_handle_t *)&r->timer);
        if (r->env != NULL)
            close_handle(r, (uv_handle_t *)&r->proc);
        return;
    }
    r->next = runs;
    if (runs != NULL)
        runs->prev = r;
    runs = r;
    fl_http_request_on_abort(req, on_abort, r);
    uv_timer_start(&r->timer, on_timeout, timeout_ms, 0);
    uv_read_start((uv_stream_t *)&r->out, alloc_cb, on_stdout);
    uv_read_start((uv_stream_t *)&r->err, alloc_cb, on_stderr);
    uv_buf_t body = uv_buf_init((char *)req->body, (unsigned)req->body_len);
    if (req->body_len == 0 ||
        uv_write(&r->write_req, (uv_stream_t *)&r->in, &body, 1, on_stdin_written) < 0)
        close_handle(r, (uv_handle_t *)&r->in);
}

static void specialize(struct fl_http_request *req)
{
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    const char *path = json_string_value(json_object_get(body, "filepath"));
    const char *name = json_string_value(json_object_get(body, "functionName"));
    char file[4096];
    if (executable[0] != '\0') {
        fl_http_respond_error(req, 409, "already_specialized", "this instance already runs %s",
                              executable);
        goto out;
    }
    if (path == NULL) {
        fl_http_respond_error(req, 400, "bad_request", "specialize: filepath is required");
        goto out;
    }
    /* A directory holds the executable, named by functionName (default "main"). */
    struct stat st;
    int named;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        const char *exe = name != NULL && *name != '\0' ? name : "main";
        if (strchr(exe, '/') != NULL || strcmp(exe, "..") == 0) {
            fl_http_respond_error(req, 400, "specialize_failed",
                                  "functionName '%s' must name a file in the directory", exe);
            goto out;
        }
        named = fl_path_join(file, sizeof(file), path, exe);
    } else {
        named = fl_path_fmt(file, sizeof(file), "%s", path);
    }
    if (named < 0) {
        fl_http_respond_error(req, 400, "specialize_failed", "filepath is too long");
        goto out;
    }
    if (stat(file, &st) != 0) {
        fl_http_respond_error(req, 400, "specialize_failed", "filepath '%s' does not exist", file);
        goto out;
    }
    if (!S_ISREG(st.st_mode) || access(file, X_OK) != 0) {
        fl_http_respond_error(req, 400, "specialize_failed", "'%s' is not an executable file",
                              file);
        goto out;
    }
    fl_strlcpy(executable, file, sizeof(executable));
    printf("specialized %s\n", executable);
    fflush(stdout);
    struct fl_http_header ct = {"Content-Type", 12, "application/json", 16};
    json_t *answer = json_pack("{s:s}", "function", executable);
    char *text = json_dumps(answer, JSON_COMPACT);
    fl_http_respond(req, 200, &ct, 1, text, strlen(text));
    free(text);
    json_decref(answer);
out:
    json_decref(body);
}

static void serve(struct fl_http_request *req, void *data)
{
    if (strcmp(req->path, "/healthz") == 0 && strcmp(req->method, "GET") == 0) {
        fl_http_respond_healthz(req, false); /* calls end in any order */
    } else if (strcmp(req->path, "/v2/specialize") == 0 && strcmp(req->method, "POST") == 0) {
        specialize(req);
    } else if (executable[0] == '\0') {
        fl_http_respond_error(req, 503, "not_specialized",
                              "this instance has no function loaded yet");
    } else {
        invoke(req);
    }
}

/* On SIGTERM: no run outlives the instance. */
static void kill_all_runs(void)
{
    for (struct run *r = runs; r != NULL; r = r->next)
        kill_run(r);
}

int main(void)
{
    char addr[4200];
    if (fl_http_listen_address(getenv("FLINT_LISTEN"), addr, sizeof(addr)) < 0) {
        fprintf(stderr,
                "flint-runtime-binary: FLINT_LISTEN must be fd:N, unix:PATH or tcp:HOST:PORT\n");
        return 2;
    }
    const char *v = getenv("FLINT_BINARY_TIMEOUT_MS");
    uint64_t n;
    if (v != NULL && fl_parse_u64(v, UINT64_MAX, &n) == 0 && n > 0)
        timeout_ms = n;
    v = getenv("FLINT_BINARY_MAX_OUTPUT");
    if (v != NULL && fl_parse_u64(v, SIZE_MAX, &n) == 0 && n > 0)
        max_output = (size_t)n;
    loop = uv_default_loop();
    struct fl_http_server_config cfg;
    fl_http_server_config_init(&cfg);
    cfg.max_body_bytes = 64u << 20;
    return fl_http_serve("flint-runtime-binary", addr, &cfg, serve, NULL, kill_all_runs);
}
