/* err.h — filling stele_err and small helpers every host part uses. */
#ifndef STELE_COMMON_ERR_H
#define STELE_COMMON_ERR_H

#include <stele/stele.h>

/* Sets err (when not NULL) to code and a formatted message; returns code. */
int stele_err_set(stele_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes err's message with "prefix: ", keeping its code; returns it. */
int stele_err_prefix(stele_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The name of a status code ("EINVAL"). */
const char *stele_strstatus(int code);

#endif
