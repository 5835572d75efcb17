/* Time triggers: a cron expression in a zone, a target, and what each
 * fire sends (timer/timetrigger.h has the fields). */
#include "kinds/kinds.h"

#include "base/clock.h"
#include "timer/timetrigger.h"

static int timetrigger_check(json_t *spec, const struct fl_kind_check_ctx *ctx, struct fl_buf *err)
{
    struct fl_timetrigger_spec tt;
    int rc = fl_timetrigger_spec_parse(spec, fl_clock_wall_ms() / 1000, &tt, NULL, err);
    if (rc == 0)
        fl_timetrigger_spec_release(&tt);
    return rc;
}

#define TT_FLAGS                                                                                   \
    "[--method M] [--body TEXT] [--tz ZONE] [--catchup none|last|all] [--retry-attempts N]"        \
    " [--retry-backoff DURATION] [--retry-max-backoff DURATION]"

const struct fl_kind fl_kind_timetrigger = {
    .name = "timetrigger",
    .plural = "timetriggers",
    .word = "tt",
    .noun = "a time trigger",
    .create_usage = "--name NAME --cron EXPR (--function FN | --workflow WF) " TT_FLAGS,
    .update_usage = "--name NAME [--cron EXPR] [--function FN | --workflow WF] " TT_FLAGS,
    .flags = {{"--cron", "cron", FL_FLAG_STRING},
              {"--function", "function", FL_FLAG_TARGET},
              {"--workflow", "workflow", FL_FLAG_TARGET},
              {"--method", "method", FL_FLAG_STRING},
              {"--body", "body", FL_FLAG_STRING},
              {"--tz", "tz", FL_FLAG_STRING},
              {"--catchup", "catchup", FL_FLAG_STRING},
              {"--retry-attempts", "retry.maxAttempts", FL_FLAG_INT},
              {"--retry-backoff", "retry.backoff", FL_FLAG_STRING},
              {"--retry-max-backoff", "retry.maxBackoff", FL_FLAG_STRING}},
    .columns = {{"NAME", "name"},
                {"CRON", "spec.cron"},
                {"TARGET", "spec.target"},
                {"LAST FIRE", "status.lastFire.scheduledTime"},
                {"NEXT FIRE", "status.nextFire"}},
    /* a trigger's function or workflow may not be deleted under it */
    .refs = {{"target.function", "function", true}, {"target.workflow", "workflow", true}},
    .check = timetrigger_check,
    .status = "the scheduler's: lastFire {scheduledTime, invocation, error}, nextFire",
};
