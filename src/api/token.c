#include "api/token.h"

#include "base/error.h"
#include "base/id.h"
#include "base/str.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_token(const char *path, const char *tmp, char *out)
{
    unsigned char raw[FL_TOKEN_HEX / 2];
    int rc = fl_random_bytes(raw, sizeof(raw));
    if (rc < 0)
        return rc;
    fl_hex_encode(out, raw, sizeof(raw));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    char line[FL_TOKEN_HEX + 2];
    memcpy(line, out, FL_TOKEN_HEX);
    line[FL_TOKEN_HEX] = '\n';
    if (write(fd, line, FL_TOKEN_HEX + 1) != FL_TOKEN_HEX + 1 || fsync(fd) != 0) {
        rc = errno ? -errno : FL_EIO;
        close(fd);
        unlink(tmp);
        return rc;
    }
    close(fd);
    /* link() fails if another process created the token meanwhile; theirs wins. */
    if (link(tmp, path) != 0 && errno != EEXIST) {
        rc = -errno;
        unlink(tmp);
        return rc;
    }
    unlink(tmp);
    return 1; /* written (or lost the race): read it back */
}

int fl_token_load(const char *data_dir, char *out, char *err, size_t errsize)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/token", data_dir);
    snprintf(tmp, sizeof(tmp), "%s/.token.%d", data_dir, (int)getpid());
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno == ENOENT && attempt == 0) {
            int rc = write_token(path, tmp, out);
            if (rc < 0) {
                snprintf(err, errsize, "cannot create '%s': %s", path, fl_strerror(rc));
                return rc;
            }
            continue;
        }
        if (fd < 0) {
            int rc = -errno;
            snprintf(err, errsize, "cannot open '%s': %s", path, strerror(errno));
            return rc;
        }
        char buf[FL_TOKEN_HEX + 4];
        ssize_t n = read(fd, buf, sizeof(buf));
        struct stat st;
        int mode_ok = fstat(fd, &st) == 0 && (st.st_mode & 077) == 0;
        close(fd);
        if (n < FL_TOKEN_HEX || (n > FL_TOKEN_HEX && buf[FL_TOKEN_HEX] != '\n') ||
            n > FL_TOKEN_HEX + 1) {
            snprintf(err, errsize,
                     "'%s' is not a flint token (64 hex characters); remove it to make a new one",
                     path);
            return FL_ECORRUPT;
        }
        for (int i = 0; i < FL_TOKEN_HEX; i++) {
            char c = buf[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
                snprintf(err, errsize,
                         "'%s' is not a flint token (64 hex characters); remove it to make a "
                         "new one",
                         path);
                return FL_ECORRUPT;
            }
        }
        if (!mode_ok) {
            snprintf(err, errsize, "'%s' is readable by others: run 'chmod 600 %s'", path, path);
            return FL_EACCES;
        }
        memcpy(out, buf, FL_TOKEN_HEX);
        out[FL_TOKEN_HEX] = '\0';
        return 0;
    }
    snprintf(err, errsize, "cannot create '%s'", path);
    return FL_EIO;
}

bool fl_token_check(const char *token, const char *header, size_t len)
{
    static const char prefix[] = "Bearer ";
    if (header == NULL || len != sizeof(prefix) - 1 + FL_TOKEN_HEX ||
        !fl_str_ieq(header, sizeof(prefix) - 1, prefix))
        return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < FL_TOKEN_HEX; i++)
        diff |= (unsigned char)(token[i] ^ header[sizeof(prefix) - 1 + i]);
    return diff == 0;
}
