/* Message-queue triggers: a topic, a function, where responses and
 * failures go, and how messages are retried (mq/spec.h has the fields). */
#include "kinds/kinds.h"

#include "base/error.h"
#include "mq/spec.h"

static int mqt_check(json_t *spec, const struct fl_kind_check_ctx *ctx, struct fl_buf *err)
{
    struct fl_mqt_spec s;
    int rc = fl_mqt_spec_parse(spec, &s, err);
    if (rc < 0 || ctx == NULL || ctx->has_connector == NULL)
        return rc;
    const char *connector = fl_mqt_connector_name(s.connector);
    if (!ctx->has_connector(ctx->data, connector)) {
        /* it could never run here: refused, not kept failed */
        fl_buf_appendf(err,
                       "spec.connector: connector '%s' is not available in this flintd: "
                       "start flintd with --nats URL (or FLINT_NATS) to consume NATS subjects",
                       connector);
        rc = FL_EINVAL;
    }
    return rc;
}

#define MQT_FLAGS                                                                                  \
    "[--connector builtin|nats] [--create-stream] [--resp-topic TOPIC] [--error-topic TOPIC] "     \
    "[--max-retries N]"                                                                            \
    " [--backoff DURATION] [--max-backoff DURATION] [--ack-wait DURATION] [--concurrency N]"       \
    " [--content-type TYPE] [--paused]"

const struct fl_kind fl_kind_messagequeuetrigger = {
    .name = "messagequeuetrigger",
    .plural = "messagequeuetriggers",
    .word = "mqt",
    .noun = "a message-queue trigger",
    .create_usage = "--name NAME --topic TOPIC (--function FN | --workflow WF) " MQT_FLAGS,
    .update_usage = "--name NAME [--topic TOPIC] [--function FN | --workflow WF] " MQT_FLAGS,
    .flags = {{"--topic", "topic", FL_FLAG_STRING},
              {"--function", "function", FL_FLAG_TARGET},
              {"--workflow", "workflow", FL_FLAG_TARGET},
              {"--connector", "connector", FL_FLAG_STRING},
              {"--resp-topic", "respTopic", FL_FLAG_STRING},
              {"--error-topic", "errorTopic", FL_FLAG_STRING},
              {"--max-retries", "maxRetries", FL_FLAG_INT},
              {"--backoff", "backoff", FL_FLAG_STRING},
              {"--max-backoff", "maxBackoff", FL_FLAG_STRING},
              {"--ack-wait", "ackWait", FL_FLAG_STRING},
              {"--concurrency", "concurrency", FL_FLAG_INT},
              {"--content-type", "contentType", FL_FLAG_STRING},
              {"--paused", "paused", FL_FLAG_SWITCH},
              {"--create-stream", "createStream", FL_FLAG_SWITCH}},
    .columns = {{"NAME", "name"},
                {"TOPIC", "spec.topic"},
                {"TARGET", "spec.target"},
                {"RESP", "spec.respTopic"},
                {"ERROR", "spec.errorTopic"},
                {"LAG", "status.consumer.lag"},
                {"PENDING", "status.consumer.pending"}},
    /* a deleted function or workflow is not refused: the trigger's
     * messages fail with not_found until they reach errorTopic or the dead
     * letters, as the trigger says */
    .refs = {{"target.function", "function", false}, {"target.workflow", "workflow", false}},
    .check = mqt_check,
    .status = "the MQ module's: connector, state (starting, running, paused, failed, "
              "disconnected), error, "
              "calls in flight, and its consumer's pending, lag and dead letters",
};
