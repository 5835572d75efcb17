/* Unit tests for src/api/token: creation, reading, checking. */
#include "runner.h"

#include "api/token.h"
#include "base/error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

TEST(token_is_created_once_with_mode_0600)
{
    char a[FL_TOKEN_HEX + 1], b[FL_TOKEN_HEX + 1], err[512], path[4200];
    ASSERT_OK(fl_token_load(fl_test_tmpdir(), a, err, sizeof(err)));
    ASSERT_EQ(strlen(a), 64);
    snprintf(path, sizeof(path), "%s/token", fl_test_tmpdir());
    struct stat st;
    ASSERT_OK(stat(path, &st));
    ASSERT_EQ(st.st_mode & 0777, 0600);
    ASSERT_EQ(st.st_size, 65);
    ASSERT_OK(fl_token_load(fl_test_tmpdir(), b, err, sizeof(err)));
    ASSERT_STR_EQ(a, b);
}

TEST(bad_token_files_are_refused_clearly)
{
    char tok[FL_TOKEN_HEX + 1], err[512], path[4200];
    snprintf(path, sizeof(path), "%s/token", fl_test_tmpdir());
    FILE *f = fopen(path, "w");
    fputs("not a token\n", f);
    fclose(f);
    chmod(path, 0600);
    ASSERT_EQ(fl_token_load(fl_test_tmpdir(), tok, err, sizeof(err)), FL_ECORRUPT);
    ASSERT(strstr(err, "is not a flint token") != NULL);

    f = fopen(path, "w");
    for (int i = 0; i < 64; i++)
        fputc('a', f);
    fputc('\n', f);
    fclose(f);
    chmod(path, 0644);
    ASSERT_EQ(fl_token_load(fl_test_tmpdir(), tok, err, sizeof(err)), FL_EACCES);
    ASSERT(strstr(err, "chmod 600") != NULL);
    chmod(path, 0600);
    ASSERT_OK(fl_token_load(fl_test_tmpdir(), tok, err, sizeof(err)));

    char missing[4200];
    snprintf(missing, sizeof(missing), "%s/no/such/dir", fl_test_tmpdir());
    ASSERT_EQ(fl_token_load(missing, tok, err, sizeof(err)), FL_ENOENT);
    ASSERT(strstr(err, "cannot create") != NULL);
}

TEST(only_the_exact_bearer_token_passes)
{
    char tok[FL_TOKEN_HEX + 1], err[512], header[128];
    ASSERT_OK(fl_token_load(fl_test_tmpdir(), tok, err, sizeof(err)));
    snprintf(header, sizeof(header), "Bearer %s", tok);
    ASSERT(fl_token_check(tok, header, strlen(header)));
    snprintf(header, sizeof(header), "bearer %s", tok);
    ASSERT(fl_token_check(tok, header, strlen(header)));
    ASSERT(!fl_token_check(tok, NULL, 0));
    ASSERT(!fl_token_check(tok, "Bearer ", 7));
    snprintf(header, sizeof(header), "Basic %s", tok);
    ASSERT(!fl_token_check(tok, header, strlen(header)));
    snprintf(header, sizeof(header), "Bearer %s", tok);
    header[20] = header[20] == 'a' ? 'b' : 'a';
    ASSERT(!fl_token_check(tok, header, strlen(header)));
    snprintf(header, sizeof(header), "Bearer %sx", tok);
    ASSERT(!fl_token_check(tok, header, strlen(header)));
}
