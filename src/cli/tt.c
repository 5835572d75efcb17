/* flint tt showschedule: the next fire times of a cron expression, worked
 * out here from timer/cron.h and the machine's tz database (no daemon). */
#include "cli/cli.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/str.h"
#include "timer/cron.h"

#include <stdio.h>
#include <string.h>

#define SHOWSCHEDULE_MAX 1000

int cmd_tt_showschedule(struct cli *cli, int argc, char **argv)
{
    const char *expr = NULL, *zone = "", *count_text = "5", *after_text = NULL;
    char err[256];
    int64_t count, t;
    struct fl_cron cron;
    struct fl_tz *tz = NULL;
    int rc = 1;

    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = cli_option_value(argc, argv, &i, "--cron")) != NULL)
            expr = v;
        else if ((v = cli_option_value(argc, argv, &i, "--tz")) != NULL)
            zone = v;
        else if ((v = cli_option_value(argc, argv, &i, "-n")) != NULL ||
                 (v = cli_option_value(argc, argv, &i, "--round")) != NULL)
            count_text = v; /* --round: Fission's name */
        else if ((v = cli_option_value(argc, argv, &i, "--after")) != NULL)
            after_text = v;
        else
            return cli_error("'flint tt showschedule' has no option '%s'", argv[i]), 2;
    }
    if (expr == NULL)
        return cli_error("'flint tt showschedule' needs --cron"), 2;
    if (fl_parse_i64(count_text, 1, SHOWSCHEDULE_MAX, &count) < 0)
        return cli_error("-n takes a number from 1 to %d, not '%s'", SHOWSCHEDULE_MAX, count_text),
               2;
    if (fl_cron_parse(expr, &cron, err, sizeof(err)) < 0)
        return cli_error("--cron '%s': %s", expr, err), 2;
    if (after_text == NULL) {
        t = fl_clock_wall_ms() / 1000;
    } else if (fl_tz_parse_rfc3339(after_text, &t) < 0) {
        return cli_error("--after takes an RFC 3339 time like 2026-03-29T00:00:00Z, not '%s'",
                         after_text),
               2;
    }
    if (fl_tz_new(zone, &tz, err, sizeof(err)) < 0)
        return cli_error("--tz: %s", err), 2;
    cron.every_anchor = t; /* @every counts from now, as in Fission */
    for (int64_t i = 0; i < count; i++) {
        char text[FL_TZ_RFC3339_MAX];
        int next_rc = fl_cron_next(&cron, tz, t, &t);
        if (next_rc == FL_ENOENT && i == 0) {
            cli_error("'%s' never fires (no date in the next %d years matches it)", expr,
                      FL_CRON_SEARCH_YEARS);
            goto out;
        }
        if (next_rc < 0 || fl_tz_format_rfc3339(tz, t, text, sizeof(text)) < 0)
            break; /* past the year 9999: what came before is the answer */
        puts(text);
    }
    rc = 0;
out:
    fl_tz_free(tz);
    return rc;
}
