/*
 * compat_mode.c — compatibility modes: which previous versions a new
 * schema is checked against, in which direction (compat.c checks one).
 */
#define _GNU_SOURCE
#include "codec_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ */
/* Modes                                                                */

static const char *const mode_names[] = {
    [STELE_COMPAT_NONE] = "NONE",
    [STELE_COMPAT_BACKWARD] = "BACKWARD",
    [STELE_COMPAT_BACKWARD_TRANSITIVE] = "BACKWARD_TRANSITIVE",
    [STELE_COMPAT_FORWARD] = "FORWARD",
    [STELE_COMPAT_FORWARD_TRANSITIVE] = "FORWARD_TRANSITIVE",
    [STELE_COMPAT_FULL] = "FULL",
    [STELE_COMPAT_FULL_TRANSITIVE] = "FULL_TRANSITIVE"};

int stele_compat_mode_parse(const char *name, stele_compat_mode *out)
{
    for (size_t i = 0; name && i < sizeof mode_names / sizeof *mode_names; i++)
        if (strcasecmp(name, mode_names[i]) == 0) {
            *out = (stele_compat_mode)i;
            return 0;
        }
    return STELE_EINVAL;
}

const char *stele_compat_mode_name(stele_compat_mode mode)
{
    if ((size_t)mode < sizeof mode_names / sizeof *mode_names)
        return mode_names[mode];
    return "?";
}

/* One direction against one previous version; new messages get a suffix
 * naming the version and the direction. */
static int check_one(const char *reader, const char *writer, int version,
                     bool backward, stele_compat_report *rep, stele_err *err)
{
    size_t before = rep->n;
    int rc = stele_compat_check(reader, writer, rep, err);
    if (rc)
        return stele_err_prefix(err, "version %d", version);
    for (size_t i = before; i < rep->n; i++) {
        char *t = NULL;
        int n = backward ? asprintf(&t,
                                    "%s (the new schema reading data of "
                                    "version %d)",
                                    rep->msgs[i], version)
                         : asprintf(&t,
                                    "%s (version %d reading data of the new "
                                    "schema)",
                                    rep->msgs[i], version);
        if (n < 0)
            return stele_err_set(err, STELE_ENOMEM, "compat: no memory");
        free(rep->msgs[i]);
        rep->msgs[i] = t;
    }
    return 0;
}

int stele_compat_check_mode(stele_compat_mode mode, const char *new_text,
                            const char *const *previous,
                            const int *previous_versions, size_t n_previous,
                            stele_compat_report *rep, stele_err *err)
{
    if (mode == STELE_COMPAT_NONE || n_previous == 0)
        return 0;
    bool transitive = mode == STELE_COMPAT_BACKWARD_TRANSITIVE ||
                      mode == STELE_COMPAT_FORWARD_TRANSITIVE ||
                      mode == STELE_COMPAT_FULL_TRANSITIVE;
    bool backward =
        mode != STELE_COMPAT_FORWARD && mode != STELE_COMPAT_FORWARD_TRANSITIVE;
    bool forward = mode != STELE_COMPAT_BACKWARD &&
                   mode != STELE_COMPAT_BACKWARD_TRANSITIVE;
    /* Newest first: the latest version's problems are listed first. */
    size_t stop = transitive ? 0 : n_previous - 1;
    for (size_t i = n_previous; i-- > stop;) {
        int v = previous_versions ? previous_versions[i] : (int)i + 1;
        int rc = 0;
        if (backward)
            rc = check_one(new_text, previous[i], v, true, rep, err);
        if (rc == 0 && forward)
            rc = check_one(previous[i], new_text, v, false, rep, err);
        if (rc)
            return rc;
    }
    return 0;
}
