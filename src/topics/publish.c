/* Publishing from inside a sandbox: a socket per instance (publish.h). */
#include "topics/publish.h"

#include "base/error.h"
#include "base/log.h"
#include "base/str.h"
#include "topics/topics.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct fl_topic_publisher {
    uv_loop_t *loop;
    struct fl_topic_publisher_config cfg;
    unsigned sockets; /* open or closing */
};

struct fl_topic_socket {
    struct fl_topic_publisher *pub;
    struct fl_http_server *srv;
    char function[64]; /* "" until assigned; a resource name (FL_NAME_MAX) */
};

/* A 403 naming what the function may publish to. */
static void refuse_topic(struct fl_http_request *req, const struct fl_topic_socket *sock,
                         const char *topic, char *const *allowed, size_t n)
{
    struct fl_buf message;
    fl_buf_init(&message, 4096); /* past it, the list is cut short: "allowed" has it all */
    fl_buf_appendf(&message,
                   "function '%s' may not publish to topic '%.80s': its spec's publishes ",
                   sock->function, topic);
    fl_buf_appends(&message, n == 0 ? "lists none" : "lists only");
    for (size_t i = 0; i < n; i++)
        fl_buf_appendf(&message, "%s '%s'", i ? "," : "", allowed[i]);
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++)
        json_array_append_new(list, json_string(allowed[i]));
    json_t *body = json_pack("{s:{s:s, s:s, s:o?}}", "error", "code", "topic_not_allowed",
                             "message", message.data ? message.data : "", "allowed", list);
    fl_buf_release(&message);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    static const struct fl_http_header type = {"Content-Type", 12, "application/json", 16};
    if (text == NULL)
        fl_http_respond_error(req, 500, "internal", "out of memory");
    else
        fl_http_respond(req, 403, &type, 1, text, strlen(text));
    free(text);
}

static void handle(struct fl_http_request *req, void *data)
{
    struct fl_topic_socket *sock = data;
    struct fl_topic_publisher *pub = sock->pub;
    static const char prefix[] = "/topics/", suffix[] = "/messages";
    const char *path = req->path, *rest = path + sizeof(prefix) - 1;
    const char *slash = strncmp(path, prefix, sizeof(prefix) - 1) == 0 ? strchr(rest, '/') : NULL;
    if (slash == NULL || strcmp(slash, suffix) != 0 || slash == rest) {
        fl_http_respond_error(req, 404, "not_found",
                              "%s %.200s: this socket takes POST /topics/{name}/messages",
                              req->method, path);
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        fl_http_respond_error(req, 405, "method_not_allowed", "%s %.200s: use POST", req->method,
                              path);
        return;
    }
    char topic[FL_TOPIC_NAME_MAX + 1];
    bool valid = fl_topic_name_from(rest, (size_t)(slash - rest), topic) == 0;
    if (!valid) { /* as the API answers a name no topic can have */
        fl_http_respond_error(req, 404, "topic_not_found", "topic '%.80s' does not exist", rest);
        return;
    }
    if (sock->function[0] == '\0') {
        fl_http_respond_error(req, 403, "no_function",
                              "this instance has no function yet: nothing may publish");
        return;
    }
    char *const *allowed = NULL;
    size_t n = 0;
    if (pub->cfg.publishes(pub->cfg.data, sock->function, &allowed, &n) < 0)
        n = 0; /* the function is gone: nothing is allowed */
    bool listed = false;
    for (size_t i = 0; i < n && !listed; i++)
        listed = strcmp(allowed[i], topic) == 0;
    if (!listed) {
        refuse_topic(req, sock, topic, allowed, n);
        return;
    }
    const struct fl_http_header who = {"X-Flint-Function", 16, sock->function,
                                       strlen(sock->function)};
    const struct fl_topic_http how = {.topic = topic, .added = &who, .nadded = 1};
    fl_topic_publish_http(pub->cfg.store, req, &how);
}

int fl_topic_publisher_new(uv_loop_t *loop, const struct fl_topic_publisher_config *cfg,
                           struct fl_topic_publisher **out)
{
    struct fl_topic_publisher *pub = calloc(1, sizeof(*pub));
    if (pub == NULL)
        return FL_ENOMEM;
    pub->loop = loop;
    pub->cfg = *cfg;
    *out = pub;
    return 0;
}

int fl_topic_publisher_free(struct fl_topic_publisher *pub)
{
    if (pub == NULL)
        return 0;
    if (pub->sockets > 0)
        return FL_EAGAIN;
    free(pub);
    return 0;
}

unsigned fl_topic_publisher_sockets(const struct fl_topic_publisher *pub)
{
    return pub->sockets;
}

int fl_topic_socket_open(struct fl_topic_publisher *pub, const char *path,
                         struct fl_topic_socket **out)
{
    char addr[4096 + 8], err[256];
    if (snprintf(addr, sizeof(addr), "unix:%s", path) >= (int)sizeof(addr))
        return -ENAMETOOLONG;
    struct fl_topic_socket *sock = calloc(1, sizeof(*sock));
    if (sock == NULL)
        return FL_ENOMEM;
    sock->pub = pub;
    int rc = fl_http_server_new(pub->loop, &pub->cfg.server, handle, sock, &sock->srv);
    if (rc < 0) {
        free(sock);
        return rc;
    }
    pub->sockets++;
    rc = fl_http_server_listen(sock->srv, addr, NULL, 0, err, sizeof(err));
    /* by name, in a directory that is flintd's alone until the sandbox
     * that gets it starts: nobody can have put a link there */
    if (rc == 0 && chmod(path, 0666) != 0)
        rc = -errno;
    if (rc < 0) {
        fl_log(FL_LOG_WARN, "topics", "cannot listen for an instance's publishes",
               "path=%s err=\"%s\"", path, fl_strerror(rc));
        fl_topic_socket_close(sock);
        return rc;
    }
    *out = sock;
    return 0;
}

void fl_topic_socket_assign(struct fl_topic_socket *sock, const char *function)
{
    if (sock->function[0] == '\0')
        fl_strlcpy(sock->function, function, sizeof(sock->function));
}

static void socket_closed(void *data)
{
    struct fl_topic_socket *sock = data;
    sock->pub->sockets--;
    free(sock);
}

void fl_topic_socket_close(struct fl_topic_socket *sock)
{
    fl_http_server_close(sock->srv, 0, socket_closed, sock);
}
