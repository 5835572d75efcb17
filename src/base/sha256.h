/*
 * SHA-256 (FIPS 180-4), for content-addressed code storage.
 *
 *   struct fl_sha256 h;
 *   fl_sha256_init(&h);
 *   fl_sha256_update(&h, data, len);   (any number of times)
 *   fl_sha256_final(&h, digest);       (32 bytes; or _hex for 65 chars)
 */
#ifndef FLINT_BASE_SHA256_H
#define FLINT_BASE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define FL_SHA256_HEX (64 + 1)

struct fl_sha256 {
    uint32_t state[8];
    uint64_t bytes;
    unsigned char block[64];
    size_t used;
};

void fl_sha256_init(struct fl_sha256 *h);
void fl_sha256_update(struct fl_sha256 *h, const void *data, size_t len);
void fl_sha256_final(struct fl_sha256 *h, unsigned char digest[32]);
/* Finish and write the digest as 64 lowercase hex characters and a NUL. */
void fl_sha256_final_hex(struct fl_sha256 *h, char out[FL_SHA256_HEX]);

#endif
