#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    int code;
    const char *name;
    const char *text;
} flint_errors[] = {
    {FL_ETOOBIG, "ETOOBIG", "over the size limit"},
    {FL_ECONFLICT, "ECONFLICT", "revision conflict"},
    {FL_EPARSE, "EPARSE", "malformed input"},
    {FL_ECORRUPT, "ECORRUPT", "data is corrupt or not flint's"},
    {FL_ELOCKED, "ELOCKED", "locked by another process"},
    {FL_ECONNECT, "ECONNECT", "cannot connect"},
    {FL_ESENT, "ESENT", "failed after the request was sent"},
    {FL_EPROTO, "EPROTO", "protocol error"},
    {FL_ECLOSED, "ECLOSED", "closed"},
    {FL_EDUPLICATE, "EDUPLICATE", "duplicate"},
};

static const struct {
    int code;
    const char *name;
} errno_names[] = {
    {FL_ENOMEM, "ENOMEM"},   {FL_EINVAL, "EINVAL"},
    {FL_ENOENT, "ENOENT"},   {FL_EEXIST, "EEXIST"},
    {FL_EIO, "EIO"},         {FL_ETIMEDOUT, "ETIMEDOUT"},
    {FL_EAGAIN, "EAGAIN"},   {FL_ECANCELED, "ECANCELED"},
    {FL_EACCES, "EACCES"},   {FL_ENOSPC, "ENOSPC"},
    {FL_EPIPE, "EPIPE"},     {FL_ERANGE, "ERANGE"},
    {FL_ENOTSUP, "ENOTSUP"},
};

const char *fl_strerror(int err)
{
    if (err == 0)
        return "success";
    for (size_t i = 0; i < sizeof(flint_errors) / sizeof(flint_errors[0]); i++)
        if (flint_errors[i].code == err)
            return flint_errors[i].text;
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}

const char *fl_errname(int err)
{
    if (err == 0)
        return "OK";
    for (size_t i = 0; i < sizeof(flint_errors) / sizeof(flint_errors[0]); i++)
        if (flint_errors[i].code == err)
            return flint_errors[i].name;
    for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
        if (errno_names[i].code == err)
            return errno_names[i].name;
    return "EUNKNOWN";
}

void fl_error_format(char *err, size_t errsize, const char *fmt, ...)
{
    if (err == NULL || errsize == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
}
