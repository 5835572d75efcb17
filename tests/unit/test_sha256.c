/* Unit tests for src/base/sha256: FIPS 180-4 vectors and sha256sum. */
#include "runner.h"

#include "base/sha256.h"

#include <stdio.h>

static void expect(const char *data, size_t len, const char *hex)
{
    struct fl_sha256 h;
    char out[FL_SHA256_HEX];
    fl_sha256_init(&h);
    fl_sha256_update(&h, data, len);
    fl_sha256_final_hex(&h, out);
    ASSERT_STR_EQ(out, hex);
}

TEST(published_vectors)
{
    expect("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    expect(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* one million 'a', fed in uneven pieces */
    struct fl_sha256 h;
    char out[FL_SHA256_HEX], chunk[997];
    memset(chunk, 'a', sizeof(chunk));
    fl_sha256_init(&h);
    size_t left = 1000000;
    while (left > 0) {
        size_t n = left < sizeof(chunk) ? left : sizeof(chunk);
        fl_sha256_update(&h, chunk, n);
        left -= n;
    }
    fl_sha256_final_hex(&h, out);
    ASSERT_STR_EQ(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(agrees_with_sha256sum_at_every_length_near_block_edges)
{
    char path[4200], cmd[4400], data[300];
    for (int i = 0; i < (int)sizeof(data); i++)
        data[i] = (char)(i * 31 + 7);
    for (size_t len = 0; len < sizeof(data); len += (len < 140 ? 1 : 37)) {
        snprintf(path, sizeof(path), "%s/d", fl_test_tmpdir());
        FILE *f = fopen(path, "wb");
        fwrite(data, 1, len, f);
        fclose(f);
        snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
        FILE *p = popen(cmd, "r");
        char want[80] = "";
        ASSERT(fgets(want, sizeof(want), p) != NULL);
        pclose(p);
        want[64] = '\0';
        expect(data, len, want);
    }
}
