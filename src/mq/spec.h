/*
 * What a message-queue trigger declares (docs/api.md, "Message-queue
 * triggers"), parsed from its JSON spec into a checked struct with the
 * defaults filled in. Field names follow Fission's MessageQueueTrigger
 * (topic, respTopic, errorTopic, maxRetries, contentType); Flint adds
 * connector, backoff, maxBackoff, ackWait, concurrency, paused and
 * createStream (nats: make the streams of the subjects it names when no
 * stream holds them; builtin topics are made anyway).
 *
 * Pure (no loop, no store): the API and the CLI check specs with it, and
 * the MQ module (mq.h) runs triggers from the same struct, so the two never
 * disagree about what a spec means. Unknown fields are errors.
 */
#ifndef FLINT_MQ_SPEC_H
#define FLINT_MQ_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "exec/spec.h" /* FL_NAME_MAX */

#define FL_MQT_TOPIC_MAX        256 /* bytes of a topic's name (the store's bound) */
#define FL_MQT_CONTENT_TYPE_MAX 127
#define FL_MQT_MAX_RETRIES      99   /* maxRetries + 1 attempts at most: FL_RETRY_MAX_ATTEMPTS */
#define FL_MQT_MAX_CONCURRENCY  256  /* messages of one trigger in flight at most */
#define FL_MQT_ACK_WAIT_MIN_MS  1000 /* in-progress is signalled every ackWait/3 */
#define FL_MQT_ACK_WAIT_MAX_MS  (12LL * 3600 * 1000)

/* Defaults, documented in docs/api.md. maxRetries 0 and contentType
 * application/json are Fission's. */
#define FL_MQT_DEFAULT_MAX_RETRIES    0
#define FL_MQT_DEFAULT_BACKOFF_MS     1000
#define FL_MQT_DEFAULT_MAX_BACKOFF_MS 300000
#define FL_MQT_DEFAULT_ACK_WAIT_MS    30000
#define FL_MQT_DEFAULT_CONCURRENCY    1
#define FL_MQT_DEFAULT_CONTENT_TYPE   "application/json"

enum fl_mqt_connector {
    FL_MQT_BUILTIN, /* the embedded store's topics */
    FL_MQT_NATS,    /* NATS JetStream (mq/nats.h): a flintd started with --nats */
};

struct fl_mqt_spec {
    enum fl_mqt_connector connector;
    char topic[FL_MQT_TOPIC_MAX + 1];
    char function[FL_NAME_MAX + 1];                 /* the target: a function ("": a workflow) */
    char workflow[FL_NAME_MAX + 1];                 /* or a workflow ("": a function) */
    char resp_topic[FL_MQT_TOPIC_MAX + 1];          /* "": responses are not published */
    char error_topic[FL_MQT_TOPIC_MAX + 1];         /* "": failures become dead letters */
    uint32_t max_retries;                           /* attempts are max_retries + 1 */
    int64_t backoff_ms;                             /* the first retry's delay bound */
    int64_t max_backoff_ms;                         /* a retry's delay bound at most */
    int64_t ack_wait_ms;                            /* a lost delivery comes back after this */
    uint32_t concurrency;                           /* messages in flight at most */
    char content_type[FL_MQT_CONTENT_TYPE_MAX + 1]; /* for messages without one */
    bool paused;                                    /* fetch nothing; messages stay */
    bool create_stream; /* nats: make a stream of a subject no stream holds */
};

/* Parse spec into out, with the defaults for what it leaves out. 0, or
 * FL_EINVAL with "spec.<field>: why" in err (out is then undefined). */
int fl_mqt_spec_parse(json_t *spec, struct fl_mqt_spec *out, struct fl_buf *err);

/* Whether name can be a topic a trigger names, a user's topic: 1 to 256
 * letters, digits, '.', '_' or '-', starting with a letter or digit,
 * without ".." and not ending with '.' (a path segment of the API as it
 * is, and a NATS subject). The topics of Flint's own queues
 * ("async/<function>", "async-callbacks") are not. 0 or FL_EINVAL with
 * "<field>: why" in err. */
int fl_mqt_topic_check(const char *field, const char *name, struct fl_buf *err);

/* "builtin", "nats". */
const char *fl_mqt_connector_name(enum fl_mqt_connector c);

#endif
