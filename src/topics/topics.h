/*
 * Built-in topics as users see them (docs/api.md, "Topics"): which names
 * are users' topics, and an HTTP request published as a message. The
 * API's POST /v1/topics/{name}/messages and the router's routes to a topic
 * are this and a few lines each; the topics themselves are the store's
 * (store/store.h: limits, de-duplication, consumers).
 *
 * Names. A user's topic is 1 to 256 bytes of letters, digits, '.', '_'
 * and '-', starting with a letter or a digit, without ".." and not ending
 * with '.': a path segment of the API that needs no escaping, and a NATS
 * subject as it is ('.' separates its tokens, which are never empty).
 * Flint's own topics (the async module's "async/<function>" queues and
 * "async-callbacks") are not users' topics: a '/' is no part of a user's
 * name, and the names in reserved[] (name.c) are refused.
 *
 * Messages from HTTP. The body is the message's data; its headers are a
 * JSON object of the request's headers (names as sent; a repeated header's
 * values joined with ", ", as HTTP allows) minus those that are not the
 * message's: hop-by-hop and framing headers (fl_http_is_hop_by_hop()),
 * Host, credentials (Authorization, Proxy-Authorization, Cookie), values
 * that are not UTF-8, and every X-Flint-* header the caller sent (Flint's
 * own, which a caller cannot forge), then the trusted headers the entry
 * adds (a route's X-Flint-Method, X-Flint-Path, X-Flint-Route,
 * X-Flint-Param-*). X-Flint-Message-Id (else Nats-Msg-Id), up to 256
 * bytes, is the message id the topic de-duplicates by within its window.
 *
 * name.c depends on src/base only (the CLI and the kinds' checks link it);
 * http.c on the store and the HTTP server.
 */
#ifndef FLINT_TOPICS_TOPICS_H
#define FLINT_TOPICS_TOPICS_H

#include <jansson.h>
#include <stddef.h>

#include "base/buf.h"
#include "http/server.h"
#include "store/store.h"

#define FL_TOPIC_NAME_MAX 256
#define FL_TOPIC_ID_MAX   256 /* a message id's bytes */

/* 0 if name is a user's topic name; FL_EINVAL with why in err ("topic:
 * ..."), naming the rule. */
int fl_topic_name_check(const char *name, struct fl_buf *err);

/* The first len bytes of text as a user's topic name in out (which holds
 * FL_TOPIC_NAME_MAX + 1 bytes): 0, or FL_EINVAL when they are none (out
 * then empty). For a name taken from a path segment. */
int fl_topic_name_from(const char *text, size_t len, char *out);

/* How an entry publishes a request. */
struct fl_topic_http {
    const char *topic;                  /* a checked name */
    const struct fl_http_header *added; /* trusted headers the entry adds, or NULL */
    size_t nadded;
};

/*
 * Publish req (its body, its headers as above, the id it names) to
 * how->topic and answer it once the message is durable:
 *
 *   202 {"topic": T, "seq": N, "duplicate": false}   (true: the id was seen
 *                                                      within the window;
 *                                                      seq is the first's)
 *   400 bad_message_id    the id is longer than 256 bytes
 *   404 topic_not_found   no such topic (a publish never creates one)
 *   413 too_large         the body is over the store's bound on a message
 *   507 no_space, 503 store_unavailable
 *
 * how and its strings are used during the call only. A client that goes
 * away meanwhile does not undo the publish.
 */
void fl_topic_publish_http(struct fl_store *store, struct fl_http_request *req,
                           const struct fl_topic_http *how);

/* The message headers req would be published with (see above): a new
 * JSON object, or NULL when out of memory. */
json_t *fl_topic_http_headers(const struct fl_http_request *req, const struct fl_http_header *added,
                              size_t nadded);

#endif
