/*
 * Answers the API's files share (internal.h).
 */
#include "api/internal.h"

#include "base/str.h"

#include <stdlib.h>
#include <string.h>

json_t *api_body_json(const void *data, size_t len, const char **encoding)
{
    json_t *body = json_stringn(data, len);
    *encoding = "text";
    if (body != NULL)
        return body;
    *encoding = "base64";
    char *b = malloc(FL_BASE64_LEN(len) + 1);
    if (b != NULL) {
        fl_base64_encode(b, data, len);
        body = json_string(b);
    }
    free(b);
    return body;
}

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
