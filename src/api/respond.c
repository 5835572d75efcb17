/*
 * Answers the API's files share (internal.h).
 */
#include "api/internal.h"

#include <stdlib.h>
#include <string.h>

void api_respond_json(struct fl_http_request *req, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        fl_http_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    static const struct fl_http_header json_type = {"Content-Type", 12, "application/json", 16};
    fl_http_respond(req, status, &json_type, 1, text, strlen(text));
    free(text);
}
