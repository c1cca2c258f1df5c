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
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
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
