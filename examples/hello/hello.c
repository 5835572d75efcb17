/* A C function, built against include/flint/fn.h: the runtime calls handler(). */
#include <flint/fn.h>

int handler(const struct flint_request *req, struct flint_response *resp)
{
    const char *who = flint_request_param(req, "who");
    flint_response_printf(resp, "Hello, %s, from C!\n", who ? who : "world");
    return 0;
}
