/* What the unit tests of src/timer share: an instant from its RFC 3339
 * text, and a zone of the tz database; either failing fails the test. */
#ifndef FLINT_TESTS_TIMER_UTIL_H
#define FLINT_TESTS_TIMER_UTIL_H

#include "runner.h"

#include "timer/tz.h"

#include <stdint.h>

static inline int64_t at(const char *rfc3339)
{
    int64_t t;
    if (fl_tz_parse_rfc3339(rfc3339, &t) != 0)
        fl_test_fail(__FILE__, __LINE__, "bad time in the test: %s", rfc3339);
    return t;
}

static inline struct fl_tz *load(const char *name)
{
    struct fl_tz *tz = NULL;
    char err[256] = "";
    int rc = fl_tz_new(name, &tz, err, sizeof(err));
    if (rc != 0)
        fl_test_fail(__FILE__, __LINE__, "fl_tz_new(%s): %d %s", name, rc, err);
    return tz;
}

#endif
