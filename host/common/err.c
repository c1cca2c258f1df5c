#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int stele_err_set(stele_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int stele_err_prefix(stele_err *err, const char *fmt, ...)
{
    if (!err)
        return STELE_EINVAL;
    char prefix[STELE_ERR_MSG_SIZE], old[STELE_ERR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Truncation is fine: the message stays a bounded, readable line. */
    size_t n = strnlen(prefix, sizeof prefix - 1);
    memcpy(err->msg, prefix, n);
    if (n + 2 < sizeof err->msg) {
        memcpy(err->msg + n, ": ", 2);
        n += 2;
    }
    size_t rest = sizeof err->msg - 1 - n;
    size_t olen = strnlen(old, rest);
    memcpy(err->msg + n, old, olen);
    err->msg[n + olen] = '\0';
    return err->code;
}

const char *stele_strstatus(int code)
{
    switch (code) {
    case STELE_OK: return "OK";
    case STELE_EINVAL: return "EINVAL";
    case STELE_ENOMEM: return "ENOMEM";
    case STELE_EIO: return "EIO";
    case STELE_ENOTFOUND: return "ENOTFOUND";
    case STELE_ECONFLICT: return "ECONFLICT";
    case STELE_ETIMEDOUT: return "ETIMEDOUT";
    case STELE_EABI: return "EABI";
    case STELE_EPLUGIN: return "EPLUGIN";
    case STELE_ERETRY: return "ERETRY";
    case STELE_EFATAL: return "EFATAL";
    default: return "EUNKNOWN";
    }
}
