/*
 * The control API's bearer token.
 *
 * At first start flintd creates DATA/token: 32 random bytes as 64 hex
 * characters and a newline, mode 0600, written to a temporary file,
 * fsynced and renamed into place so a crash never leaves a half token.
 * Later starts read it back. The CLI reads the same file.
 */
#ifndef FLINT_API_TOKEN_H
#define FLINT_API_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define FL_TOKEN_HEX 64

/* Read DATA/token into out (FL_TOKEN_HEX + 1 bytes), creating it first if
 * it does not exist. 0; FL_ECORRUPT if the file is not a token (message
 * in err); or a negative errno code. */
int fl_token_load(const char *data_dir, char *out, char *err, size_t errsize);

/* Whether the Authorization header value (len bytes, may be NULL) is
 * "Bearer <token>". Compares in constant time. */
bool fl_token_check(const char *token, const char *header, size_t len);

#endif
