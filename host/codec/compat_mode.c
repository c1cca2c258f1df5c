/*
 * compat_mode.c — compatibility modes: which previous versions a new
 * schema is checked against, in which direction (compat.c checks one).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* The check in the host: the subject's versions, oldest first, against
 * the text with the subject's mode. */
static int test_in_host(stele_registry *reg, const char *subject,
                        const char *text, stele_compat_mode fallback,
                        bool *compatible, stele_compat_report *rep,
                        stele_err *err)
{
    stele_compat_mode mode;
    int rc = stele_registry_get_compat(reg, subject, &mode, err);
    if (rc == STELE_ENOTFOUND)
        mode = fallback;
    else if (rc)
        return rc;
    int *versions = NULL;
    size_t n = 0;
    rc = stele_registry_versions(reg, subject, &versions, &n, err);
    if (rc == STELE_ENOTFOUND) {
        *compatible = true;
        return 0;
    }
    if (rc)
        return rc;
    stele_registry_schema *got = calloc(n ? n : 1, sizeof *got);
    const char **texts = calloc(n ? n : 1, sizeof *texts);
    if (!got || !texts)
        rc = stele_err_set(err, STELE_ENOMEM, "registry: no memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = stele_registry_version(reg, subject, versions[i], &got[i], err);
        texts[i] = got[i].text;
    }
    size_t before = rep->n;
    if (rc == 0)
        rc = stele_compat_check_mode(mode, text, texts, versions, n, rep, err);
    if (rc)
        stele_err_prefix(err, "%s", subject);
    else
        *compatible = rep->n == before;
    for (size_t i = 0; got && i < n; i++)
        stele_registry_schema_clear(&got[i]);
    free(got);
    free(texts);
    free(versions);
    return rc;
}

int stele_compat_test(stele_registry *reg, const char *subject,
                      const char *schema_text, stele_compat_mode fallback,
                      bool *compatible, stele_compat_report *rep,
                      stele_err *err)
{
    if (stele_registry_tests_compat(reg))
        return stele_registry_test_compat(reg, subject, schema_text, compatible,
                                          rep, err);
    if (!reg || !subject || !*subject || !schema_text || !compatible || !rep)
        return stele_err_set(err, STELE_EINVAL,
                             "compatibility test: needs a registry, a "
                             "subject, a text and a report");
    *compatible = false;
    return test_in_host(reg, subject, schema_text, fallback, compatible, rep,
                        err);
}
