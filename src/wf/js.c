/* JavaScript on mujs: syntax checks and bounded heaps (see js.h). */
#include "wf/js.h"

#include "base/error.h"
#include "base/str.h"

#include <mujs.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Each block carries its size before it, so a free knows what it gives
 * back. */
#define HEADER (alignof(max_align_t) > sizeof(size_t) ? alignof(max_align_t) : sizeof(size_t))

void *fl_wf_js_alloc(void *data, void *ptr, int size)
{
    struct fl_wf_js_heap *heap = data;
    size_t old = 0;
    char *block = NULL;
    if (ptr != NULL) {
        block = (char *)ptr - HEADER;
        memcpy(&old, block, sizeof(old));
    }
    if (size <= 0) {
        if (block != NULL) {
            heap->used -= old;
            free(block);
        }
        return NULL;
    }
    size_t want = (size_t)size;
    if (heap->used - old + want > heap->max)
        return NULL;
    char *grown = realloc(block, HEADER + want);
    if (grown == NULL)
        return NULL;
    heap->used = heap->used - old + want;
    memcpy(grown, &want, sizeof(want));
    return grown + HEADER;
}

/* mujs's warnings go nowhere: a check answers through its result. */
static void quiet(js_State *J, const char *message)
{
}

void fl_wf_js_message(struct fl_buf *why, const char *msg)
{
    static const char name[] = "expression:";
    const char *at = strstr(msg, name);
    if (at == NULL) {
        fl_buf_appends(why, msg);
        return;
    }
    const char *p = at + sizeof(name) - 1;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p == ':')
        p++;
    while (*p == ' ')
        p++;
    fl_buf_append(why, msg, (size_t)(at - msg));
    fl_buf_appends(why, p);
}

int fl_wf_js_check(void *data, const char *src, struct fl_buf *why)
{
    if (strlen(src) > FL_WF_JS_SRC_MAX) {
        fl_buf_appendf(why, "longer than %u bytes", FL_WF_JS_SRC_MAX);
        return FL_ETOOBIG;
    }
    struct fl_wf_js_heap heap = {0, FL_WF_JS_CHECK_HEAP};
    js_State *J = js_newstate(fl_wf_js_alloc, &heap, 0);
    if (J == NULL)
        return FL_ENOMEM;
    js_setreport(J, quiet);
    int rc = 0;
    if (js_ploadstring(J, "expression", src) != 0) {
        const char *msg = js_trystring(J, -1, "is not valid JavaScript");
        fl_wf_js_message(why, msg);
        rc = strstr(msg, "out of memory") != NULL ? FL_ENOMEM : FL_EINVAL;
    }
    js_freestate(J);
    return rc;
}
