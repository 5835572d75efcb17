/*
 * flintd: the Flint daemon.
 *
 *   flintd [--data DIR] [--api ADDR] [--router ADDR] [OPTION]...
 *
 * Every option is a row of options[] below: its name, the FLINT_*
 * variable read when it is not given (flags win), the kind of value it
 * takes, the field of struct flintd_config it fills, its default, bounds
 * and help. Parsing, the variables, the checks and `flintd --help` are made
 * from the table (base/options.h); an option is added as one row.
 *
 * The two listeners are two servers with budgets of their own (4096
 * connections each, --max-conns-per-addr from one client address), so a
 * flood on the router never takes the API's connections. They share one
 * budget of bytes in flight (--max-inflight): the router sheds at 75% of
 * it, the API at 100%, so the operator keeps room while the router is
 * under attack; the API refuses a request without its token before
 * reading its body. One process, one libuv loop for all networking and
 * processes.
 *
 * What runs: the store; the executor, the router, the scheduler of time
 * triggers and the message-queue triggers, kept in step with the store by a
 * follower per kind of resource (kinds/follow.h: environments and functions
 * feed the executor, routes the router, time triggers the scheduler,
 * messagequeuetriggers src/mq); async invocations; the API. SIGTERM
 * and SIGINT stop accepting, let requests in flight finish (up to
 * --drain), stop every instance, close the store and exit 0.
 */
#include "api/api.h"
#include "api/token.h"
#include "async/async.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/options.h"
#include "base/str.h"
#include "base/metrics.h"
#include "exec/executor.h"
#include "exec/logs.h"
#include "exec/sandbox.h"
#include "http/server.h"
#include "invoke/invoke.h"
#include "kinds/follow.h"
#include "loop/lag.h"
#include "mq/mq.h"
#include "mq/nats.h"
#include "router/router.h"
#include "timer/scheduler.h"
#include "topics/publish.h"
#include "wf/engine.h"
#include "store/store.h"
#include "wf/expr.h"
#include "wf/exprc.h"

#include <limits.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define FLINT_VERSION "0.1.0"

/* What the options set; each field is filled by its row of options[]. */
struct flintd_config {
    const char *data_dir;
    const char *store_uri; /* NULL: sqlite:<data_dir> */
    const char *api_addr;
    const char *router_addr;
    enum fl_log_level log_level;
    const char *log_file;     /* NULL: stderr */
    const char *runtimes_dir; /* NULL: next to the binary */
    int64_t drain_ms;
    int64_t queue_max;
    int64_t queue_wait_ms;
    uint64_t max_body; /* a routed request's body */
    int64_t max_conns_per_addr;
    uint64_t max_inflight; /* bytes held by both listeners */
    struct fl_uid_range sandbox_uids;
    int64_t gc_interval_ms, build_grace_ms, code_grace_ms;
    int64_t retention_ms;     /* finished async and workflow invocations are kept this long */
    int64_t expr_deadline_ms; /* one task's expressions, at most */
    int64_t expr_procs;       /* warm expression evaluators */
    const char *nats;         /* NULL: no NATS connector */
    const char *nats_creds, *nats_tls_ca, *nats_tls_cert, *nats_tls_key;
};

#define STRING(field)    FL_OPTION_STRING_AT(struct flintd_config, field)
#define DURATION(field)  FL_OPTION_DURATION_AT(struct flintd_config, field)
#define SIZE(field)      FL_OPTION_SIZE_AT(struct flintd_config, field)
#define COUNT(field)     FL_OPTION_COUNT_AT(struct flintd_config, field)
#define UID_RANGE(field) FL_OPTION_UID_RANGE_AT(struct flintd_config, field)
#define LOG_LEVEL(field) FL_OPTION_LOG_LEVEL_AT(struct flintd_config, field)

/* flintd's options, in the order --help lists them. A row: name (--name),
 * variable, kind and field, default (NULL: none), the value's name in
 * --help, min and max (durations in ms, sizes in bytes; max 0: no upper
 * bound), help. */
static const struct fl_option options[] = {
    {"data", "FLINT_DATA", STRING(data_dir), ".flint-data", "DIR", 0, 0, "data directory"},
    {"store", "FLINT_STORE", STRING(store_uri), NULL, "URI", 0, 0,
     "the store, by default sqlite:<data directory>"},
    {"api", "FLINT_API", STRING(api_addr), "127.0.0.1:7070", "ADDR", 0, 0, "control API listener"},
    {"router", "FLINT_ROUTER", STRING(router_addr), "127.0.0.1:8080", "ADDR", 0, 0,
     "public router listener; several addresses separated by commas, e.g. HOST:PORT,unix:PATH"},
    {"log-level", "FLINT_LOG_LEVEL", LOG_LEVEL(log_level), "info", "LEVEL", 0, 0,
     "debug, info, warn or error"},
    {"log-file", "FLINT_LOG_FILE", STRING(log_file), NULL, "PATH", 0, 0,
     "log to PATH instead of stderr"},
    {"drain", "FLINT_DRAIN", DURATION(drain_ms), "10s", "DURATION", 0, 0,
     "how long SIGTERM waits for requests in flight"},
    {"runtimes", "FLINT_RUNTIMES", STRING(runtimes_dir), NULL, "DIR", 0, 0,
     "the runtime tree, by default <flintd's dir>/../share/flint/runtimes"},
    {"queue-max", "FLINT_QUEUE_MAX", COUNT(queue_max), "1000", "N", 0, 1000000,
     "requests a function may have waiting"},
    {"queue-wait", "FLINT_QUEUE_WAIT", DURATION(queue_wait_ms), "10s", "DURATION", 1, 0,
     "how long a request waits for an instance"},
    {"max-body", "FLINT_MAX_BODY", SIZE(max_body), "1MiB", "SIZE", 1024, 64 << 20,
     "largest request body the router takes; the runtimes take 64MiB at most"},
    {"max-conns-per-addr", "FLINT_MAX_CONNS_PER_ADDR", COUNT(max_conns_per_addr), "64", "N", 0,
     1000000, "connections one client address may hold on each listener, 0 for no cap"},
    {"sandbox-uids", "FLINT_SANDBOX_UIDS", UID_RANGE(sandbox_uids), FL_SANDBOX_UIDS_DEFAULT,
     "BASE:COUNT", 16, FL_SANDBOX_UID_COUNT,
     "the host uids instances and builds run as, one each, that no account uses; give each "
     "flintd on a host its own range"},
    {"max-inflight", "FLINT_MAX_INFLIGHT", SIZE(max_inflight), "128MiB", "SIZE", 1 << 20, 0,
     "request bodies and unsent answers both listeners may hold"},
    {"gc-interval", "FLINT_GC_INTERVAL", DURATION(gc_interval_ms), "5m", "DURATION", 0, 0,
     "how often unused builds and code are collected, 0 for never"},
    {"build-grace", "FLINT_BUILD_GRACE", DURATION(build_grace_ms), "1h", "DURATION", 0, 0,
     "a build unused this long is removed"},
    {"code-grace", "FLINT_CODE_GRACE", DURATION(code_grace_ms), "1h", "DURATION", 0, 0,
     "uploaded code no function names is removed after this"},
    {"retention", "FLINT_RETENTION", DURATION(retention_ms), "72h", "DURATION", 1000, 0,
     "finished async and workflow invocations (and dead letters) are kept this long"},
    {"expr-deadline", "FLINT_EXPR_DEADLINE", DURATION(expr_deadline_ms), "100ms", "DURATION", 1,
     60000, "how long a workflow task's expressions may run before their evaluator is killed"},
    {"expr-evaluators", "FLINT_EXPR_EVALUATORS", COUNT(expr_procs), "2", "N", 1, 64,
     "workflow expression evaluators kept warm, each a sandboxed process"},
    {"nats", "FLINT_NATS", STRING(nats), NULL, "URL[,URL...]", 0, 0,
     "NATS servers with JetStream, for triggers with connector nats, e.g. nats://127.0.0.1:4222; "
     "none: such triggers are refused"},
    {"nats-creds", "FLINT_NATS_CREDS", STRING(nats_creds), NULL, "PATH", 0, 0,
     "a NATS credentials file (user JWT and NKey seed)"},
    {"nats-tls-ca", "FLINT_NATS_TLS_CA", STRING(nats_tls_ca), NULL, "PATH", 0, 0,
     "CA certificates (PEM) the NATS servers' certificates are checked against; turns TLS on"},
    {"nats-tls-cert", "FLINT_NATS_TLS_CERT", STRING(nats_tls_cert), NULL, "PATH", 0, 0,
     "a client certificate chain (PEM) for NATS, with --nats-tls-key; turns TLS on"},
    {"nats-tls-key", "FLINT_NATS_TLS_KEY", STRING(nats_tls_key), NULL, "PATH", 0, 0,
     "the client certificate's private key (PEM)"},
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

/* The share of the in-flight budget past which the router sheds: the rest
 * is the API's, so that the operator gets in when the router is flooded. */
#define ROUTER_BUDGET_PERCENT 75

struct flintd {
    uv_loop_t loop;
    struct flintd_config cfg;
    char token[FL_TOKEN_HEX + 1];
    struct fl_store *store;
    struct fl_metrics *metrics;
    struct fl_loop_lag *lag; /* the loop's stalls, in /metrics */
    struct fl_logbook *logs;
    struct fl_executor *executor;
    struct fl_invoker *invoker;
    struct fl_async *async;
    struct fl_timer *timer;              /* time triggers, fired through async */
    struct fl_mq *mq;                    /* message-queue triggers */
    struct fl_wf_engine *workflows;      /* workflow invocations */
    struct fl_mq_nats *nats;             /* their NATS connector, with --nats */
    struct fl_kind_followers *followers; /* every kind, fed to the executor and router */
    struct fl_router *routing;
    struct fl_api *control;
    struct fl_http_server *api;
    struct fl_http_server *router;
    struct fl_http_budget *inflight;
    struct fl_topic_publisher *publisher; /* instances' publish sockets */
    struct fl_wf_exprc *exprc; /* workflow expressions' evaluators; NULL if they cannot start */
    char api_bound[300];
    char router_bound[300];
    uv_signal_t sigterm, sigint;
    int servers_open;
    bool stopping;
};

static void usage(FILE *to)
{
    fl_options_usage(options, NOPTIONS, "flintd", to);
    fprintf(to, "\nAn ADDR is HOST:PORT, [V6]:PORT or unix:PATH. A flag wins over its variable.\n");
}

/* Fill cfg from the command line, the environment and the defaults; may
 * exit (--help, --version). 0, or FL_EINVAL with the reason printed. */
static int parse_args(int argc, char **argv, struct flintd_config *cfg)
{
    char err[512];
    int rc = fl_options_parse(options, NOPTIONS, argc, argv, cfg, err, sizeof(err));
    if (rc == FL_OPTIONS_HELP) {
        usage(stdout);
        exit(0);
    }
    if (rc == FL_OPTIONS_VERSION) {
        printf("flintd %s\n", FLINT_VERSION);
        exit(0);
    }
    if (rc < 0) {
        fprintf(stderr, "flintd: %s\n", err);
        if (rc == FL_EPARSE)
            usage(stderr);
        return FL_EINVAL;
    }
    fl_log_set_level(cfg->log_level);
    return 0;
}

/* ---- instances' publish sockets (topics/publish.h) ---- */

/* Connections one instance may hold on its publish socket. */
#define PUBLISH_MAX_CONNS 64

static int publish_open(void *data, const char *path, void **handle)
{
    struct flintd *d = data;
    struct fl_topic_socket *sock = NULL;
    int rc = fl_topic_socket_open(d->publisher, path, &sock);
    *handle = sock;
    return rc;
}

static void publish_assign(void *handle, const char *function)
{
    fl_topic_socket_assign(handle, function);
}

static void publish_close(void *handle)
{
    fl_topic_socket_close(handle);
}

static int function_publishes(void *data, const char *function, char *const **topics, size_t *n)
{
    struct flintd *d = data;
    return d->executor ? fl_executor_function_publishes(d->executor, function, topics, n)
                       : FL_ENOENT;
}

/* ---- the executor and the router, in step with the store ---- */

/* A follower gave kind/name to its part: writes the API holds for it may
 * answer. */
static void kind_applied(void *data, const char *kind, const char *name)
{
    struct flintd *d = data;
    if (d->control != NULL)
        fl_api_applied(d->control, kind, name);
}

/* Ready once what the store held at start is loaded: /healthz says so. */
static bool ready(void *data)
{
    struct flintd *d = data;
    return d->followers != NULL && fl_kind_followers_synced(d->followers);
}

/* Whether kind/name at revision (0: deleted) has reached the executor or
 * the router: the followers call them synchronously, so what a follower
 * holds has been applied. */
static bool applied(void *data, const char *kind, const char *name, uint64_t revision)
{
    struct flintd *d = data;
    return d->followers == NULL || fl_kind_followers_applied(d->followers, kind, name, revision);
}

/* A resource's status, from the part that runs it. */
static json_t *status_of(void *data, const char *kind, const char *name, bool detail)
{
    struct flintd *d = data;
    return d->followers ? fl_kind_followers_status(d->followers, kind, name, detail) : NULL;
}

/* The runtime tree: --runtimes, or next to the binary,
 * <bin>/../share/flint/runtimes. 0 or -ENAMETOOLONG. */
static int runtimes_dir(const struct flintd_config *cfg, char *out, size_t size)
{
    if (cfg->runtimes_dir != NULL)
        return fl_path_fmt(out, size, "%s", cfg->runtimes_dir);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return fl_path_fmt(out, size, "%s", "share/flint/runtimes");
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash != NULL)
        *slash = '\0';
    return fl_path_join(out, size, exe, "../share/flint/runtimes");
}

/* The retry policy of a function, for the async queue. */
static int function_retry(void *data, const char *function, struct fl_retry_policy *out)
{
    struct flintd *d = data;
    return fl_executor_function_retry(d->executor, function, out);
}

/* ---- life cycle ---- */

static void store_closed(void *data)
{
    struct flintd *d = data;
    d->store = NULL;
    fl_loop_lag_close(d->lag);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
}

static void invoker_closed(void *data)
{
    struct flintd *d = data;
    d->invoker = NULL;
    if (d->store != NULL)
        fl_store_close(d->store, store_closed, d);
    else
        store_closed(d);
}

static void executor_closed(void *data)
{
    struct flintd *d = data;
    d->executor = NULL;
    /* every part that evaluates expressions has stopped: the evaluators
     * go (answering what they still held), their processes reaped by the
     * loop before it ends */
    fl_wf_exprc_free(d->exprc);
    d->exprc = NULL;
    if (d->invoker != NULL)
        fl_invoker_close(d->invoker, invoker_closed, d);
    else
        invoker_closed(d);
}

static void async_closed(void *data)
{
    struct flintd *d = data;
    d->async = NULL;
    if (d->executor != NULL)
        fl_executor_close(d->executor, executor_closed, d);
    else
        executor_closed(d);
}

static void timer_closed(void *data)
{
    struct flintd *d = data;
    d->timer = NULL;
    if (d->async != NULL)
        fl_async_close(d->async, async_closed, d);
    else
        async_closed(d);
}

static void workflows_closed(void *data)
{
    struct flintd *d = data;
    d->workflows = NULL;
    if (d->timer != NULL)
        fl_timer_close(d->timer, timer_closed, d);
    else
        timer_closed(d);
}

static void nats_closed(void *data)
{
    struct flintd *d = data;
    d->nats = NULL;
    if (d->timer != NULL)
        fl_timer_use_workflows(d->timer, NULL); /* closed before the timer is */
    if (d->workflows != NULL)
        fl_wf_engine_close(d->workflows, workflows_closed, d);
    else
        workflows_closed(d);
}

static void mq_closed(void *data)
{
    struct flintd *d = data;
    d->mq = NULL;
    if (d->nats != NULL)
        fl_mq_nats_close(d->nats, nats_closed, d);
    else
        nats_closed(d);
}

/* Listeners first (requests in flight finish), then the followers, the
 * message-queue triggers (deliveries under way are given back to the
 * store) and their NATS connection, the workflow engine (calls under way are
 * canceled: the next start dispatches them again), the time triggers (fires
 * under way are answered), the async
 * queue (attempts under way are given back to the store), the executor
 * (instances stop), the invoker, then the store. */
static void after_servers(struct flintd *d)
{
    fl_kind_followers_free(d->followers);
    d->followers = NULL;
    fl_router_free(d->routing);
    d->routing = NULL;
    if (d->mq != NULL)
        fl_mq_close(d->mq, mq_closed, d);
    else
        mq_closed(d);
}

static void server_closed(void *data)
{
    struct flintd *d = data;
    if (--d->servers_open == 0)
        after_servers(d);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    struct flintd *d = sig->data;
    if (d->stopping) {
        fl_log(FL_LOG_WARN, "flintd", "second signal: stopping now", "signal=%d", signum);
        exit(1);
    }
    d->stopping = true;
    fl_log(FL_LOG_INFO, "flintd", "stopping", "signal=%s drain_ms=%lld",
           signum == SIGTERM ? "SIGTERM" : "SIGINT", (long long)d->cfg.drain_ms);
    if (d->router != NULL)
        fl_http_server_close(d->router, (uint64_t)d->cfg.drain_ms, server_closed, d);
    if (d->control != NULL)
        fl_api_end_streams(d->control);
    if (d->api != NULL)
        fl_http_server_close(d->api, (uint64_t)d->cfg.drain_ms, server_closed, d);
}

/* The workflow expression evaluators (wf/exprc.h): flint-expr next to
 * flintd, warm, in the instances' sandbox. Without them workflows are
 * still stored, but their expressions are neither checked nor run. */
static void start_evaluators(struct flintd *d, const struct fl_sandbox_mode *mode)
{
    char program[PATH_MAX];
    int rc = fl_wf_exprc_find_program(program, sizeof(program));
    if (rc == 0) {
        const struct fl_wf_exprc_config cfg = {.program = program,
                                               .deadline_ms = (unsigned)d->cfg.expr_deadline_ms,
                                               .procs = (unsigned)d->cfg.expr_procs,
                                               .mode = mode};
        rc = fl_wf_exprc_new(&d->loop, &cfg, &d->exprc);
    }
    if (rc < 0)
        fl_log(FL_LOG_ERROR, "flintd",
               "cannot start the workflow expression evaluators: workflows' expressions are "
               "neither checked nor run",
               "program=\"%s\" err=\"%s\"", rc == FL_ENOENT ? "flint-expr not found" : program,
               fl_strerror(rc));
}

static int prepare_data_dir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fl_log(FL_LOG_ERROR, "flintd", "cannot create the data directory", "dir=%s err=\"%s\"", dir,
               strerror(errno));
        return -errno;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fl_log(FL_LOG_ERROR, "flintd", "the data directory is not a directory", "dir=%s", dir);
        return FL_EINVAL;
    }
    if (access(dir, W_OK) != 0) {
        fl_log(FL_LOG_ERROR, "flintd", "the data directory is not writable", "dir=%s", dir);
        return FL_EACCES;
    }
    /* flintd's alone: the store, the token, code and builds are in it */
    if ((st.st_mode & 07777) != 0700) {
        if (chmod(dir, 0700) != 0) {
            fl_log(FL_LOG_ERROR, "flintd", "cannot make the data directory private",
                   "dir=%s err=\"%s\"", dir, strerror(errno));
            return -errno;
        }
        fl_log(FL_LOG_WARN, "flintd", "made the data directory private (mode 0700)",
               "dir=%s was=%04o", dir, (unsigned)(st.st_mode & 07777));
    }
    /* the store 0600, made so before SQLite creates it (with 0644), and
     * its journal files after it (SQLite gives them the database's mode) */
    static const char *const store_files[] = {"flint.db", "flint.db-wal", "flint.db-shm"};
    for (size_t i = 0; i < sizeof(store_files) / sizeof(store_files[0]); i++) {
        char path[PATH_MAX];
        if (fl_path_join(path, sizeof(path), dir, store_files[i]) < 0) {
            fl_log(FL_LOG_ERROR, "flintd", "the data directory's path is too long", "dir=%s", dir);
            return -ENAMETOOLONG;
        }
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (i == 0 ? O_CREAT : 0), 0600);
        if (fd < 0 && errno == ENOENT)
            continue;
        if (fd < 0 || fchmod(fd, 0600) != 0) {
            fl_log(FL_LOG_ERROR, "flintd", "cannot make the store private", "file=%s err=\"%s\"",
                   path, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -errno;
        }
        close(fd);
    }
    return 0;
}

/* Code blobs in DATA/code/sha256 (the uploads' temporary files aside). */
static int count_code_blobs(const char *data_dir)
{
    char path[PATH_MAX];
    DIR *d = fl_path_join(path, sizeof(path), data_dir, "code/sha256") == 0 ? opendir(path) : NULL;
    int n = 0;
    for (struct dirent *e = d ? readdir(d) : NULL; e != NULL; e = readdir(d))
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n;
}

static void on_store_checked(int err, const struct fl_store_result *res, void *data)
{
    struct flintd *d = data;
    int blobs = count_code_blobs(d->cfg.data_dir);
    if (err == 0 && res->n == 0 && blobs > 0)
        fl_log(FL_LOG_WARN, "flintd",
               "THE STORE HOLDS NO FUNCTIONS but the data directory holds code: was the store "
               "replaced or lost? Restore it from a backup, or re-apply your specs",
               "store=\"%s\" code_blobs=%d", fl_store_describe(d->store), blobs);
}

/* Start the server and listen on addrs, one address or several separated
 * by commas (e.g. a TCP port and a Unix socket); bound gets the first. */
static int start_listener(struct flintd *d, const char *what, const char *addrs,
                          const struct fl_http_server_config *cfg, fl_http_handler handler,
                          void *data, struct fl_http_server **srv, char *bound, size_t boundsize)
{
    char err[512];
    int rc = fl_http_server_new(&d->loop, cfg, handler, data, srv);
    if (rc < 0)
        return rc;
    d->servers_open++;
    for (const char *p = addrs;; p++) {
        size_t n = strcspn(p, ",");
        char addr[300], here[300];
        if (n == 0 || n >= sizeof(addr)) {
            fl_log(FL_LOG_ERROR, "flintd", "cannot start a listener",
                   "listener=%s err=\"empty or overlong address in '%s'\"", what, addrs);
            return FL_EINVAL;
        }
        memcpy(addr, p, n);
        addr[n] = '\0';
        rc = fl_http_server_listen(*srv, addr, here, sizeof(here), err, sizeof(err));
        if (rc < 0) {
            char q[600];
            fl_log(FL_LOG_ERROR, "flintd", "cannot start a listener", "listener=%s err=%s", what,
                   fl_log_quote(q, sizeof(q), err));
            return rc;
        }
        fl_log(FL_LOG_INFO, "flintd", "listening", "listener=%s addr=%s", what, here);
        if (p == addrs)
            fl_strlcpy(bound, here, boundsize);
        p += n;
        if (*p == '\0')
            break;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct flintd d;
    int rc;

    memset(&d, 0, sizeof(d));
    signal(SIGPIPE, SIG_IGN);
    if (parse_args(argc, argv, &d.cfg) < 0)
        return 2;
    if (d.cfg.log_file != NULL) {
        rc = fl_log_open(d.cfg.log_file);
        if (rc < 0) {
            fprintf(stderr, "flintd: cannot open log file '%s': %s\n", d.cfg.log_file,
                    fl_strerror(rc));
            return 1;
        }
    }
    if (prepare_data_dir(d.cfg.data_dir) < 0)
        return 1;
    /* every path under the data directory fits: prepare_data_dir() made
     * the longest, "flint.db-wal" */
    char err[1200], token_path[PATH_MAX], db_path[PATH_MAX], logs_dir[PATH_MAX];
    fl_path_join(token_path, sizeof(token_path), d.cfg.data_dir, "token");
    fl_path_join(db_path, sizeof(db_path), d.cfg.data_dir, "flint.db");
    fl_path_join(logs_dir, sizeof(logs_dir), d.cfg.data_dir, "logs");
    char runtimes[PATH_MAX];
    if (runtimes_dir(&d.cfg, runtimes, sizeof(runtimes)) < 0) {
        fl_log(FL_LOG_ERROR, "flintd", "the runtime tree's path is too long", NULL);
        return 1;
    }
    struct stat db_st;
    /* a store with content but no token: the token was deleted */
    bool token_lost = access(token_path, F_OK) != 0 && errno == ENOENT &&
                      stat(db_path, &db_st) == 0 && db_st.st_size > 0;
    rc = fl_token_load(d.cfg.data_dir, d.token, err, sizeof(err));
    if (rc < 0) {
        char q[700];
        fl_log(FL_LOG_ERROR, "flintd", "cannot load the API token", "err=%s",
               fl_log_quote(q, sizeof(q), err));
        return 1;
    }
    if (token_lost)
        fl_log(FL_LOG_WARN, "flintd",
               "the API token file was missing and a new token was made: clients holding the "
               "old one are refused until they use the new one",
               "file=%s", token_path);
    uv_loop_init(&d.loop);
    char store_uri[PATH_MAX + 16];
    if (d.cfg.store_uri != NULL)
        rc = fl_path_fmt(store_uri, sizeof(store_uri), "%s", d.cfg.store_uri);
    else
        rc = fl_path_fmt(store_uri, sizeof(store_uri), "sqlite:%s", d.cfg.data_dir);
    if (rc < 0)
        snprintf(err, sizeof(err), "the store's URI is too long");
    else
        rc = fl_store_open(&d.loop, store_uri, NULL, &d.store, err, sizeof(err));
    if (rc < 0) {
        char q[1400];
        fl_log(FL_LOG_ERROR, "flintd", "cannot open the store", "err=%s",
               fl_log_quote(q, sizeof(q), err));
        uv_loop_close(&d.loop);
        return 1;
    }
    fl_log(FL_LOG_INFO, "flintd", "store open", "store=\"%s\"", fl_store_describe(d.store));
    /* an empty store next to uploaded code is most likely a lost one */
    struct fl_page one = {1, NULL};
    fl_store_list_page(d.store, "function", "", &one, on_store_checked, &d);
    struct fl_sandbox_mode sandbox;
    fl_sandbox_use_uids((unsigned)d.cfg.sandbox_uids.base, (unsigned)d.cfg.sandbox_uids.count);
    fl_sandbox_probe(&sandbox, false);
    fl_sandbox_cleanup_stale();
    if (sandbox.bwrap)
        fl_log(FL_LOG_INFO, "flintd", "sandbox", "mode=%s", sandbox.description);
    else
        fl_log(FL_LOG_WARN, "flintd",
               "INSTANCES ARE NOT ISOLATED: bubblewrap is missing or unusable; only resource "
               "limits apply",
               "mode=\"%s\"", sandbox.description);
    start_evaluators(&d, &sandbox);
    d.metrics = fl_metrics_new();
    if (d.metrics != NULL && fl_loop_lag_new(&d.loop, d.metrics, &d.lag) < 0)
        fl_log(FL_LOG_WARN, "flintd", "the loop's stalls are not measured", NULL);
    rc = d.metrics ? fl_logbook_open(logs_dir, 8u << 20, &d.logs) : FL_ENOMEM;
    if (rc < 0)
        fl_log(FL_LOG_ERROR, "flintd", "cannot open the function logs", "dir=%s err=\"%s\"",
               logs_dir, fl_strerror(rc));
    if (rc == 0) {
        rc = fl_http_budget_new((size_t)d.cfg.max_inflight, &d.inflight);
        if (rc < 0)
            fl_log(FL_LOG_ERROR, "flintd", "cannot make the in-flight budget", "err=\"%s\"",
                   fl_strerror(rc));
    }
    /* functions publish through a socket per instance, bounded as the
     * router's clients are */
    struct fl_topic_publisher_config pub_cfg = {
        .store = d.store, .publishes = function_publishes, .data = &d};
    fl_http_server_config_init(&pub_cfg.server);
    pub_cfg.server.max_body_bytes = (size_t)d.cfg.max_body;
    pub_cfg.server.max_connections = PUBLISH_MAX_CONNS;
    pub_cfg.server.budget = d.inflight;
    pub_cfg.server.budget_percent = ROUTER_BUDGET_PERCENT;
    if (rc == 0)
        rc = fl_topic_publisher_new(&d.loop, &pub_cfg, &d.publisher);
    const struct fl_executor_publish publish = {
        .open = publish_open, .assign = publish_assign, .close = publish_close, .data = &d};
    struct fl_executor_config exec_cfg;
    fl_executor_config_init(&exec_cfg);
    exec_cfg.publish = &publish;
    exec_cfg.data_dir = d.cfg.data_dir;
    exec_cfg.runtimes_dir = runtimes;
    exec_cfg.mode = &sandbox;
    exec_cfg.logs = d.logs;
    exec_cfg.metrics = d.metrics;
    exec_cfg.queue_max = (size_t)d.cfg.queue_max;
    exec_cfg.queue_wait_ms = (uint64_t)d.cfg.queue_wait_ms;
    exec_cfg.gc_interval_ms = (uint64_t)d.cfg.gc_interval_ms;
    exec_cfg.build_grace_ms = (uint64_t)d.cfg.build_grace_ms;
    exec_cfg.code_grace_ms = (uint64_t)d.cfg.code_grace_ms;
    if (rc == 0) {
        rc = fl_executor_new(&d.loop, &exec_cfg, &d.executor);
        if (rc < 0)
            fl_log(FL_LOG_ERROR, "flintd", "cannot start the executor", "err=\"%s\"",
                   fl_strerror(rc));
    }
    /* every entry calls through the invoker; the executor serves functions */
    if (rc == 0)
        rc = fl_invoker_new(&d.loop, d.metrics, &d.invoker);
    if (rc == 0)
        rc = fl_invoker_serve_functions(d.invoker, d.executor);
    if (rc == 0)
        rc = fl_router_new(d.invoker, d.metrics, &d.routing);
    /* async invocations: their queues in the store, their calls through
     * the invoker, their policy from the functions the executor has */
    const struct fl_async_config async_cfg = {.store = d.store,
                                              .invoker = d.invoker,
                                              .metrics = d.metrics,
                                              .retention_ms = d.cfg.retention_ms,
                                              .max_body = (size_t)d.cfg.max_body,
                                              .policy_of = function_retry,
                                              .policy_data = &d,
                                              .ready = ready,
                                              .ready_data = &d};
    if (rc == 0 && (rc = fl_async_new(&d.loop, &async_cfg, &d.async)) < 0)
        fl_log(FL_LOG_ERROR, "flintd", "cannot start async invocations", "err=\"%s\"",
               fl_strerror(rc));
    if (rc == 0) {
        fl_router_use_async(d.routing, d.async);
        fl_router_use_topics(d.routing, d.store);
    }
    /* time triggers: each fire an async invocation */
    const struct fl_timer_config timer_cfg = {.store = d.store, .async = d.async};
    if (rc == 0 && (rc = fl_timer_new(&d.loop, &timer_cfg, &d.timer)) < 0)
        fl_log(FL_LOG_ERROR, "flintd", "cannot start time triggers", "err=\"%s\"", fl_strerror(rc));
    /* message-queue triggers: their consumers in the store (builtin
     * topics) or on NATS JetStream (--nats: connected in the background,
     * so flintd starts without it), their calls through the invoker */
    if (rc == 0 && d.cfg.nats != NULL) {
        const struct fl_mq_nats_config nats_cfg = {.urls = d.cfg.nats,
                                                   .creds = d.cfg.nats_creds,
                                                   .tls_ca = d.cfg.nats_tls_ca,
                                                   .tls_cert = d.cfg.nats_tls_cert,
                                                   .tls_key = d.cfg.nats_tls_key};
        rc = fl_mq_nats_new(&d.loop, &nats_cfg, &d.nats, err, sizeof(err));
        if (rc < 0)
            fl_log(FL_LOG_ERROR, "flintd", "cannot use NATS", "err=\"%s\"",
                   rc == FL_EINVAL ? err : fl_strerror(rc));
    }
    const struct fl_mq_config mq_cfg = {.store = d.store,
                                        .invoker = d.invoker,
                                        .metrics = d.metrics,
                                        .nats = d.nats,
                                        .ready = ready,
                                        .ready_data = &d};
    if (rc == 0 && (rc = fl_mq_new(&d.loop, &mq_cfg, &d.mq)) < 0)
        fl_log(FL_LOG_ERROR, "flintd", "cannot start message-queue triggers", "err=\"%s\"",
               fl_strerror(rc));
    /* workflows: their invocations' events in the store, their tasks'
     * calls through the invoker, whose handler of workflows it is */
    const struct fl_wf_engine_config wf_cfg = {.store = d.store,
                                               .invoker = d.invoker,
                                               .metrics = d.metrics,
                                               .exprc = d.exprc,
                                               .retention_ms = d.cfg.retention_ms,
                                               .ready = ready,
                                               .ready_data = &d};
    if (rc == 0 && (rc = fl_wf_engine_new(&d.loop, &wf_cfg, &d.workflows)) < 0)
        fl_log(FL_LOG_ERROR, "flintd", "cannot start the workflow engine", "err=\"%s\"",
               fl_strerror(rc));
    if (rc == 0)
        fl_router_use_workflows(d.routing, d.workflows);
    if (rc == 0)
        fl_timer_use_workflows(d.timer, d.workflows);
    /* every kind of resource, followed into the part that runs it */
    const struct fl_kind_parts parts = {.executor = d.executor,
                                        .router = d.routing,
                                        .timer = d.timer,
                                        .mq = d.mq,
                                        .workflows = d.workflows};
    if (rc == 0)
        rc = fl_kind_followers_new(d.store, &parts, kind_applied, &d, &d.followers);
    if (rc == 0)
        fl_log(FL_LOG_INFO, "flintd", "executor", "runtimes=%s", runtimes);
    struct fl_http_server_config api_cfg;
    fl_http_server_config_init(&api_cfg);
    api_cfg.max_body_bytes = 64u << 20; /* code uploads */
    api_cfg.max_connections_per_address = (unsigned)d.cfg.max_conns_per_addr;
    api_cfg.on_headers = fl_api_check_headers; /* the token, before any body */
    api_cfg.budget = d.inflight;
    api_cfg.budget_percent = 100;
    struct fl_api_config control = {.data_dir = d.cfg.data_dir,
                                    .token = d.token,
                                    .store = d.store,
                                    .version = FLINT_VERSION,
                                    .api_addr = d.cfg.api_addr,
                                    .router_addr = d.cfg.router_addr,
                                    .max_code_bytes = api_cfg.max_body_bytes,
                                    .sandbox = sandbox.description,
                                    .executor = d.executor,
                                    .invoker = d.invoker,
                                    .async = d.async,
                                    .workflows = d.workflows,
                                    .mq = d.mq,
                                    .logs = d.logs,
                                    .metrics = d.metrics,
                                    .exprc = d.exprc,
                                    .applied = applied,
                                    .applied_data = &d,
                                    .ready = ready,
                                    .status = status_of};
    if (rc == 0)
        rc = fl_api_new(&d.loop, &control, &d.control);
    if (rc < 0)
        fl_log(FL_LOG_ERROR, "flintd", "cannot start the API", "err=\"%s\"", fl_strerror(rc));
    if (rc == 0)
        rc = start_listener(&d, "api", d.cfg.api_addr, &api_cfg, fl_api_handle, d.control, &d.api,
                            d.api_bound, sizeof(d.api_bound));
    struct fl_http_server_config router_cfg;
    fl_http_server_config_init(&router_cfg);
    router_cfg.max_body_bytes = (size_t)d.cfg.max_body;
    router_cfg.max_connections_per_address = (unsigned)d.cfg.max_conns_per_addr;
    router_cfg.budget = d.inflight;
    router_cfg.budget_percent = ROUTER_BUDGET_PERCENT;
    if (rc == 0)
        rc = start_listener(&d, "router", d.cfg.router_addr, &router_cfg, fl_router_handle,
                            d.routing, &d.router, d.router_bound, sizeof(d.router_bound));
    uv_signal_init(&d.loop, &d.sigterm);
    uv_signal_init(&d.loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    if (rc < 0) {
        /* stop what did start, then exit non-zero */
        on_signal(&d.sigterm, SIGTERM);
        if (d.servers_open == 0)
            after_servers(&d);
        uv_run(&d.loop, UV_RUN_DEFAULT);
        fl_api_free(d.control);
        if (d.logs != NULL)
            fl_logbook_close(d.logs);
        fl_metrics_free(d.metrics);
        uv_loop_close(&d.loop);
        fl_topic_publisher_free(d.publisher);
        fl_http_budget_free(d.inflight);
        return 1;
    }
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    fl_log(FL_LOG_INFO, "flintd", "ready", "version=%s data=%s api=%s router=%s", FLINT_VERSION,
           d.cfg.data_dir, d.api_bound, d.router_bound);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    fl_api_free(d.control);
    fl_logbook_close(d.logs);
    fl_metrics_free(d.metrics);
    rc = uv_loop_close(&d.loop);
    if (fl_topic_publisher_free(d.publisher) < 0)
        fl_log(FL_LOG_WARN, "flintd", "publish sockets still open at exit", NULL);
    fl_http_budget_free(d.inflight);
    fl_log(FL_LOG_INFO, "flintd", "stopped", NULL);
    return rc == 0 ? 0 : 1;
}
