/* Users' topic names (topics.h). */
#include "topics/topics.h"

#include "base/error.h"

#include <ctype.h>
#include <string.h>

/* Names a user may not take although they follow the rule: Flint's own
 * topics that have no '/' (src/async/callback.c's). */
static const char *const reserved[] = {"async-callbacks"};

int fl_topic_name_check(const char *name, struct fl_buf *err)
{
    size_t n = strnlen(name, FL_TOPIC_NAME_MAX + 1);
    bool ok = n >= 1 && n <= FL_TOPIC_NAME_MAX && isalnum((unsigned char)name[0]) &&
              name[n - 1] != '.' && strstr(name, "..") == NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)name[i]) || name[i] == '.' || name[i] == '_' || name[i] == '-';
    if (!ok) {
        fl_buf_reset(err);
        fl_buf_appendf(err,
                       "topic: a name is 1 to 256 letters, digits, '.', '_' and '-', starting "
                       "with a letter or digit, without '..' and not ending with '.', not "
                       "'%.80s'",
                       name);
        return FL_EINVAL;
    }
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strcmp(name, reserved[i]) == 0) {
            fl_buf_reset(err);
            fl_buf_appendf(err, "topic: '%s' is Flint's own topic; choose another name", name);
            return FL_EINVAL;
        }
    }
    return 0;
}

int fl_topic_name_from(const char *text, size_t len, char *out)
{
    out[0] = '\0';
    if (len > FL_TOPIC_NAME_MAX)
        return FL_EINVAL;
    memcpy(out, text, len);
    out[len] = '\0';
    struct fl_buf why;
    fl_buf_init(&why, 512);
    int rc = fl_topic_name_check(out, &why);
    fl_buf_release(&why);
    if (rc < 0)
        out[0] = '\0';
    return rc;
}
