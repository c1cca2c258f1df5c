/*
 * stele.h — types shared by the host and every plugin: status codes and the
 * error buffer. Plugins include <stele/plugin.h>, which includes this file.
 */
#ifndef STELE_STELE_H
#define STELE_STELE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: 0 is success, failures are negative. */
#define STELE_OK 0
#define STELE_EINVAL (-1)    /* bad argument or malformed input */
#define STELE_ENOMEM (-2)    /* allocation failed or a bound was exceeded */
#define STELE_EIO (-3)       /* storage or network failure */
#define STELE_ENOTFOUND (-4) /* no such topic, key, schema, plugin */
#define STELE_ECONFLICT (-5) /* optimistic concurrency or ownership lost */
#define STELE_ETIMEDOUT (-6) /* nothing arrived in time */
#define STELE_EABI (-7)      /* plugin ABI mismatch */
#define STELE_EPLUGIN (-8)   /* a plugin callback failed */
#define STELE_ERETRY (-9)    /* transient: the same call may succeed later */
/* the component cannot continue (fenced, corrupt) */
#define STELE_EFATAL (-10)

#define STELE_ERR_MSG_SIZE 512

/*
 * An error filled by functions that can fail. `code` is one of STELE_E*,
 * `msg` names the thing and the reason ("accounts.so: no entry symbol").
 */
typedef struct stele_err {
    int code;
    char msg[STELE_ERR_MSG_SIZE];
} stele_err;

#ifdef __cplusplus
}
#endif
#endif
