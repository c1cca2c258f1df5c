/* registry.c — dispatch of the registry functions to a registry's ops,
 * compatibility levels by name, and compatibility reports. */
#define _GNU_SOURCE
#include "internal.h"

#include <stdarg.h>
#include <strings.h>

void stele_registry_close(stele_registry *reg)
{
    if (reg)
        reg->ops->close(reg);
}

int stele_registry_register(stele_registry *reg, const char *subject,
                            const char *schema_text, int32_t *id,
                            stele_err *err)
{
    if (!reg || !subject || !*subject || !schema_text || !id)
        return stele_err_set(err, STELE_EINVAL,
                             "registry: register needs a subject and text");
    return reg->ops->register_schema(reg, subject, schema_text, id, err);
}

int stele_registry_lookup(stele_registry *reg, int32_t id, const char **text,
                          stele_err *err)
{
    if (!reg || !text)
        return stele_err_set(err, STELE_EINVAL,
                             "registry: lookup needs a registry");
    if (id <= 0)
        return stele_err_set(err, STELE_ENOTFOUND,
                             "registry: schema id %d is not a valid id", id);
    return reg->ops->lookup(reg, id, text, err);
}

/* ------------------------------------------------------------------ */
/* Subjects, versions, compatibility                                    */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unsupported(const char *what, stele_err *err)
{
    return stele_err_set(err, STELE_EINVAL,
                         "schema registry: %s is not supported by this "
                         "registry",
                         what);
}

stele_subject_strategy stele_registry_strategy(const stele_registry *reg)
{
    return reg ? reg->strategy : STELE_SUBJECT_RECORD;
}

int stele_registry_subject(const stele_registry *reg, const char *topic,
                           const char *record, char *buf, size_t size)
{
    int n;
    if (stele_registry_strategy(reg) == STELE_SUBJECT_TOPIC_RECORD && topic &&
        *topic)
        n = snprintf(buf, size, "%s-%s", topic, record);
    else
        n = snprintf(buf, size, "%s", record);
    return n < 0 || (size_t)n >= size ? STELE_EINVAL : 0;
}

void stele_registry_schema_clear(stele_registry_schema *s)
{
    if (!s)
        return;
    free(s->subject);
    free(s->text);
    memset(s, 0, sizeof *s);
}

void stele_registry_strings_free(char **s, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
}

int stele_registry_find(stele_registry *reg, const char *subject,
                        const char *schema_text, stele_registry_schema *out,
                        stele_err *err)
{
    if (!reg || !subject || !*subject || !schema_text || !out)
        return stele_err_set(err, STELE_EINVAL,
                             "registry: find needs a subject and text");
    memset(out, 0, sizeof *out);
    if (!reg->ops->find)
        return unsupported("finding a schema under a subject", err);
    return reg->ops->find(reg, subject, schema_text, out, err);
}

int stele_registry_version(stele_registry *reg, const char *subject,
                           int version, stele_registry_schema *out,
                           stele_err *err)
{
    if (!reg || !subject || !*subject || !out || version == 0 || version < -1)
        return stele_err_set(err, STELE_EINVAL,
                             "registry: version needs a subject and a "
                             "version (>= 1, or -1 for the latest)");
    memset(out, 0, sizeof *out);
    if (!reg->ops->version)
        return unsupported("fetching a subject's version", err);
    return reg->ops->version(reg, subject, version, out, err);
}

int stele_registry_subjects(stele_registry *reg, char ***out, size_t *n,
                            stele_err *err)
{
    if (!reg || !out || !n)
        return stele_err_set(err, STELE_EINVAL,
                             "registry: subjects needs a "
                             "registry");
    *out = NULL;
    *n = 0;
    if (!reg->ops->subjects)
        return unsupported("listing subjects", err);
    return reg->ops->subjects(reg, out, n, err);
}

int stele_registry_versions(stele_registry *reg, const char *subject, int **out,
                            size_t *n, stele_err *err)
{
    if (!reg || !subject || !*subject || !out || !n)
        return stele_err_set(err, STELE_EINVAL,
                             "registry: versions needs a subject");
    *out = NULL;
    *n = 0;
    if (!reg->ops->versions)
        return unsupported("listing versions", err);
    return reg->ops->versions(reg, subject, out, n, err);
}

int stele_registry_get_compat(stele_registry *reg, const char *subject,
                              stele_compat_mode *out, stele_err *err)
{
    if (!reg || !subject || !*subject || !out)
        return stele_err_set(err, STELE_EINVAL,
                             "registry: get_compat needs a subject");
    if (!reg->ops->get_compat)
        return unsupported("compatibility settings", err);
    return reg->ops->get_compat(reg, subject, out, err);
}

int stele_registry_set_compat(stele_registry *reg, const char *subject,
                              stele_compat_mode mode, stele_err *err)
{
    if (!reg || !subject || !*subject ||
        !strcmp(stele_compat_mode_name(mode), "?"))
        return stele_err_set(err, STELE_EINVAL,
                             "registry: set_compat needs a subject and a "
                             "mode");
    if (!reg->ops->set_compat)
        return unsupported("compatibility settings", err);
    return reg->ops->set_compat(reg, subject, mode, err);
}

bool stele_registry_tests_compat(const stele_registry *reg)
{
    return reg && reg->ops->test_compat;
}

int stele_registry_test_compat(stele_registry *reg, const char *subject,
                               const char *schema_text, bool *compatible,
                               stele_compat_report *rep, stele_err *err)
{
    if (!reg || !subject || !*subject || !schema_text || !compatible || !rep)
        return stele_err_set(err, STELE_EINVAL,
                             "registry: test_compat needs a subject, text "
                             "and report");
    *compatible = false;
    if (!reg->ops->test_compat)
        return unsupported("compatibility tests", err);
    return reg->ops->test_compat(reg, subject, schema_text, compatible, rep,
                                 err);
}

int stele_registry_verify(stele_registry *reg, int32_t id, const char *text,
                          stele_err *err)
{
    if (!reg || !text || id <= 0)
        return stele_err_set(err, STELE_EINVAL,
                             "registry: verify needs an id and a text");
    if (!reg->ops->fetch_fresh)
        return 0;
    char *now = NULL;
    int rc = reg->ops->fetch_fresh(reg, id, &now, err);
    if (rc == STELE_ENOTFOUND)
        return stele_err_set(err, STELE_EFATAL,
                             "schema registry: schema id %d is no longer "
                             "known (the registry lost its data?): not "
                             "writing with it",
                             id);
    if (rc)
        return rc;
    json_t *a = json_loads(now, 0, NULL), *b = json_loads(text, 0, NULL);
    bool same = a && b && json_equal(a, b);
    json_decref(a);
    json_decref(b);
    free(now);
    if (!same)
        return stele_err_set(err, STELE_EFATAL,
                             "schema registry: schema id %d now names "
                             "another schema (the registry lost its data "
                             "and gave the id out again?): not writing with "
                             "it",
                             id);
    return 0;
}

void stele_registry_held_free(stele_registry_schema *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        stele_registry_schema_clear(&v[i]);
    free(v);
}

int stele_registry_held(stele_registry *reg, const char *subject,
                        stele_registry_schema **out, size_t *n, stele_err *err)
{
    int *versions = NULL;
    size_t nv = 0;
    *out = NULL;
    *n = 0;
    int rc = stele_registry_versions(reg, subject, &versions, &nv, err);
    if (rc == STELE_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    stele_registry_schema *v = nv ? calloc(nv, sizeof *v) : NULL;
    size_t got = 0;
    if (nv && !v)
        rc = stele_err_set(err, STELE_ENOMEM, "no memory");
    for (; rc == 0 && got < nv; got++)
        rc = stele_registry_version(reg, subject, versions[got], &v[got], err);
    free(versions);
    if (rc) {
        stele_registry_held_free(v, got);
        return rc;
    }
    *out = v;
    *n = nv;
    return 0;
}

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

/* ------------------------------------------------------------------ */
/* Reports                                                              */

void stele_compat_report_clear(stele_compat_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->msgs[i]);
    free(r->msgs);
    memset(r, 0, sizeof *r);
}

int stele_compat_report_add(stele_compat_report *r, const char *fmt, ...)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        char **m = realloc(r->msgs, cap * sizeof *m);
        if (!m)
            return STELE_ENOMEM;
        r->msgs = m;
        r->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return STELE_ENOMEM;
    r->msgs[r->n++] = s;
    return 0;
}
