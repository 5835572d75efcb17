/*
 * Publishing from inside a sandbox (docs/runtime-contract.md, "Publishing
 * to topics"): each instance gets a Unix socket of its own, where flintd
 * serves a small HTTP API that publishes to the topics its function's spec
 * lists under `publishes`, and to no other:
 *
 *   POST /topics/{name}/messages   body = the message; headers as the API's
 *                                  publish (topics.h: X-Flint-Message-Id for
 *                                  de-duplication, the rest carried)
 *     202 {"topic", "seq", "duplicate"}  once durable (fl_topic_publish_http())
 *     403 topic_not_allowed  not in the function's `publishes`; the error
 *                            object has "allowed": [the list]
 *     403 no_function        the instance has not been given a function yet
 *     400 / 404 / 413 / 503 / 507 as the API's publish answers them
 *     404 not_found, 405 method_not_allowed for other paths and methods
 *
 * Identity is the socket: one socket per instance, and an instance serves
 * one function once specialized (fl_topic_socket_assign()), so which
 * function publishes is known from the socket a connection came in on,
 * never from anything the instance sends. The message gets the trusted
 * header X-Flint-Function: <function> (a caller's X-Flint-* are dropped).
 *
 * Why per instance and not per function: a warm instance's sandbox is made
 * before anyone knows which function it will serve, and a mount cannot be
 * added to it later; its socket is bound with it and given a function when
 * the instance is taken. It also ends with the instance, so a socket never
 * outlives the sandbox that could reach it.
 *
 * The allowed list is read from the function's current spec on every
 * request (the publishes callback), so an update of `publishes` applies at
 * once, to connections already open too: removing a topic stops the next
 * publish to it.
 *
 * Bounds: each socket is an fl_http_server with the config given (flintd
 * uses the router's body bound and timeouts, 64 connections per socket and
 * the shared budget of bytes in flight at the router's share), so an
 * instance can hold no more of flintd than a router client can.
 *
 * Everything here runs on the loop's thread.
 */
#ifndef FLINT_TOPICS_PUBLISH_H
#define FLINT_TOPICS_PUBLISH_H

#include <stddef.h>
#include <uv.h>

#include "http/server.h"
#include "store/store.h"

struct fl_topic_publisher;
struct fl_topic_socket;

/*
 * The topics function may publish to now: 0 with *topics (n names) valid
 * during the call only, or FL_ENOENT (no such function: every publish is
 * refused).
 */
typedef int (*fl_publishes_cb)(void *data, const char *function, char *const **topics, size_t *n);

struct fl_topic_publisher_config {
    struct fl_store *store;              /* borrowed; outlives the publisher */
    struct fl_http_server_config server; /* each socket's (copied) */
    fl_publishes_cb publishes;
    void *data;
};

/* A new publisher on loop (cfg copied). 0 or FL_ENOMEM. */
int fl_topic_publisher_new(uv_loop_t *loop, const struct fl_topic_publisher_config *cfg,
                           struct fl_topic_publisher **out);

/* Free it once every socket is closed and its close has completed (after
 * the loop has run out): FL_EAGAIN, and nothing freed, before. */
int fl_topic_publisher_free(struct fl_topic_publisher *pub);

/*
 * Listen on path (a Unix socket made there, mode 0666: whoever can reach
 * the directory, which the caller makes flintd's alone but for the one
 * sandbox it is bound into, may connect). 0, or a negative error (the
 * path too long, the bind failed), with nothing left open.
 */
int fl_topic_socket_open(struct fl_topic_publisher *pub, const char *path,
                         struct fl_topic_socket **out);

/* From now on the socket publishes as function (copied; once: a second
 * call is ignored). Before, every publish is refused 403 no_function. */
void fl_topic_socket_assign(struct fl_topic_socket *sock, const char *function);

/* Close: the listener and its connections at once; publishes the store
 * has already taken are still answered (or dropped if their client went).
 * The socket is freed once its server has closed. */
void fl_topic_socket_close(struct fl_topic_socket *sock);

/* Sockets open or closing now (for tests and status). */
unsigned fl_topic_publisher_sockets(const struct fl_topic_publisher *pub);

#endif
