/*
 * registry_conformance.c — the schema registry suite (registry_
 * conformance.h): what stele relies on from any registry, and nothing it
 * must not rely on (ids are unique and stable, never contiguous; a
 * subject without its own compatibility may answer "none set" or the
 * server's default).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "registry_conformance.h"

static const registry_conformance_backend *B;

typedef struct rc_fx {
    void *backend_fx;
    stele_registry *reg;
    char prefix[96];
} rc_fx;

static int next_fx;

static int rc_setup(void **state)
{
    rc_fx *fx = calloc(1, sizeof *fx);
    stele_err err = {0};
    if (!fx || B->setup(&fx->backend_fx) ||
        B->open(fx->backend_fx, &fx->reg, &err)) {
        fprintf(stderr, "%s: %s\n", B->name, err.msg);
        free(fx);
        return -1;
    }
    /* A subject namespace per test: a shared server keeps them all. */
    snprintf(fx->prefix, sizeof fx->prefix, "%st%d.",
             B->subject_prefix ? B->subject_prefix : "rc.", ++next_fx);
    *state = fx;
    return 0;
}

static int rc_teardown(void **state)
{
    rc_fx *fx = *state;
    stele_registry_close(fx->reg);
    B->teardown(fx->backend_fx);
    free(fx);
    return 0;
}

#define OK(call)                                                               \
    do {                                                                       \
        stele_err ok_err_ = {0};                                               \
        int ok_rc_ = (call);                                                   \
        if (ok_rc_)                                                            \
            fail_msg("%s: %s -> %d: %s", B->name, #call, ok_rc_, ok_err_.msg); \
    } while (0)
#define E (&ok_err_)

static const char *subj(rc_fx *fx, const char *name)
{
    static char buf[4][200];
    static int at;
    char *b = buf[at++ % 4];
    snprintf(b, sizeof buf[0], "%s%s", fx->prefix, name);
    return b;
}

/* A record schema "<ns>.<name>" with the fields given as JSON. The
 * namespace is the test's, so no two runs share a schema text. */
static char *schema(rc_fx *fx, const char *name, const char *fields)
{
    static char buf[4][1024];
    static int at;
    char *b = buf[at++ % 4];
    char ns[96];
    snprintf(ns, sizeof ns, "%.*s", (int)strlen(fx->prefix) - 1, fx->prefix);
    for (char *p = ns; *p; p++)
        if (*p == '-')
            *p = '_';
    snprintf(b, sizeof buf[0],
             "{\"type\": \"record\", \"name\": \"%s\", \"namespace\": \"%s\",\n"
             " \"fields\": [%s]}",
             name, ns, fields);
    return b;
}

#define F_AMOUNT "{\"name\": \"amount\", \"type\": \"long\"}"
#define F_NOTE_DEFAULT                                                         \
    "{\"name\": \"note\", \"type\": \"string\", \"default\": \"\"}"
#define F_NOTE "{\"name\": \"note\", \"type\": \"string\"}"

static void test_register_is_idempotent_and_kept_as_written(void **state)
{
    rc_fx *fx = *state;
    const char *s = subj(fx, "Deposited");
    const char *t = schema(fx, "Deposited", F_AMOUNT "," F_NOTE_DEFAULT);
    int32_t a = 0, b = 0;
    OK(stele_registry_register(fx->reg, s, t, &a, E));
    assert_true(a > 0);
    OK(stele_registry_register(fx->reg, s, t, &b, E));
    assert_int_equal(a, b);
    const char *text;
    OK(stele_registry_lookup(fx->reg, a, &text, E));
    /* The default survives: it is what old events are read with. */
    assert_non_null(strstr(text, "\"default\""));
    assert_non_null(strstr(text, "note"));
}

static void test_second_handle_sees_what_the_first_registered(void **state)
{
    rc_fx *fx = *state;
    const char *s = subj(fx, "Opened");
    const char *t = schema(fx, "Opened", F_AMOUNT);
    int32_t id = 0, again = 0;
    OK(stele_registry_register(fx->reg, s, t, &id, E));
    stele_registry *r2;
    OK(B->open(fx->backend_fx, &r2, E));
    const char *text;
    OK(stele_registry_lookup(r2, id, &text, E));
    assert_non_null(strstr(text, "Opened"));
    stele_registry_schema got = {0};
    OK(stele_registry_find(r2, s, t, &got, E));
    assert_int_equal(got.id, id);
    stele_registry_schema_clear(&got);
    OK(stele_registry_register(r2, s, t, &again, E));
    assert_int_equal(again, id);
    stele_registry_close(r2);
}

static void test_find_version_and_lists(void **state)
{
    rc_fx *fx = *state;
    const char *s = subj(fx, "Withdrawn");
    const char *v1 = schema(fx, "Withdrawn", F_AMOUNT);
    const char *v2 = schema(fx, "Withdrawn", F_AMOUNT "," F_NOTE_DEFAULT);
    int32_t id1 = 0, id2 = 0;
    OK(stele_registry_register(fx->reg, s, v1, &id1, E));
    OK(stele_registry_register(fx->reg, s, v2, &id2, E));
    assert_int_not_equal(id1, id2);

    stele_registry_schema got = {0};
    OK(stele_registry_find(fx->reg, s, v2, &got, E));
    assert_int_equal(got.id, id2);
    assert_int_equal(got.version, 2);
    assert_string_equal(got.subject, s);
    stele_registry_schema_clear(&got);
    OK(stele_registry_version(fx->reg, s, -1, &got, E));
    assert_int_equal(got.id, id2);
    assert_int_equal(got.version, 2);
    stele_registry_schema_clear(&got);
    OK(stele_registry_version(fx->reg, s, 1, &got, E));
    assert_int_equal(got.id, id1);
    assert_non_null(strstr(got.text, "amount"));
    stele_registry_schema_clear(&got);

    stele_err err = {0};
    assert_int_equal(stele_registry_version(fx->reg, s, 7, &got, &err),
                     STELE_ENOTFOUND);
    assert_int_equal(
        stele_registry_version(fx->reg, subj(fx, "Nobody"), -1, &got, &err),
        STELE_ENOTFOUND);
    const char *other = schema(fx, "Withdrawn", F_NOTE_DEFAULT);
    assert_int_equal(stele_registry_find(fx->reg, s, other, &got, &err),
                     STELE_ENOTFOUND);
    assert_int_equal(
        stele_registry_find(fx->reg, subj(fx, "Nobody"), v1, &got, &err),
        STELE_ENOTFOUND);

    int *versions = NULL;
    size_t n = 0;
    OK(stele_registry_versions(fx->reg, s, &versions, &n, E));
    assert_int_equal(n, 2);
    assert_int_equal(versions[0], 1);
    assert_int_equal(versions[1], 2);
    free(versions);
    assert_int_equal(stele_registry_versions(fx->reg, subj(fx, "Nobody"),
                                             &versions, &n, &err),
                     STELE_ENOTFOUND);

    char **subjects = NULL;
    size_t ns = 0;
    OK(stele_registry_subjects(fx->reg, &subjects, &ns, E));
    bool seen = false;
    for (size_t i = 0; i < ns; i++) {
        seen |= strcmp(subjects[i], s) == 0;
        if (i)
            assert_true(strcmp(subjects[i - 1], subjects[i]) < 0);
    }
    assert_true(seen);
    stele_registry_strings_free(subjects, ns);
}

/* stele may only rely on ids being positive, unique and stable: not on
 * their order or on their being contiguous (Apicurio leaves gaps). */
static void test_ids_unique_and_stable_not_contiguous(void **state)
{
    rc_fx *fx = *state;
    enum { N = 5 };
    int32_t ids[N];
    char texts[N][1024];
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "E%d", i);
        snprintf(texts[i], sizeof texts[i], "%s", schema(fx, name, F_AMOUNT));
        OK(stele_registry_register(fx->reg, subj(fx, name), texts[i], &ids[i],
                                   E));
        assert_true(ids[i] > 0);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(ids[i], ids[j]);
    }
    for (int i = N - 1; i >= 0; i--) {
        const char *text;
        OK(stele_registry_lookup(fx->reg, ids[i], &text, E));
        /* Servers may give the text back re-spaced (Apicurio compacts
         * it): look for the name alone. */
        char name[40];
        snprintf(name, sizeof name, "\"E%d\"", i);
        assert_non_null(strstr(text, name));
    }
}

static void test_same_text_under_another_subject(void **state)
{
    rc_fx *fx = *state;
    const char *t = schema(fx, "Shared", F_AMOUNT);
    int32_t a = 0, b = 0;
    OK(stele_registry_register(fx->reg, subj(fx, "one"), t, &a, E));
    OK(stele_registry_register(fx->reg, subj(fx, "two"), t, &b, E));
    assert_true(a > 0 && b > 0);
    if (B->ids_across_subjects == RC_IDS_SHARED)
        assert_int_equal(a, b);
    else if (B->ids_across_subjects == RC_IDS_PER_SUBJECT)
        assert_int_not_equal(a, b);
    /* Either way each id names that text. */
    const char *text;
    OK(stele_registry_lookup(fx->reg, b, &text, E));
    assert_non_null(strstr(text, "Shared"));
}

static void test_unknown_id_is_enotfound_naming_it(void **state)
{
    rc_fx *fx = *state;
    stele_err err = {0};
    const char *text;
    assert_int_equal(stele_registry_lookup(fx->reg, 987654321, &text, &err),
                     STELE_ENOTFOUND);
    assert_non_null(strstr(err.msg, "987654321"));
    assert_int_equal(stele_registry_lookup(fx->reg, 0, &text, &err),
                     STELE_ENOTFOUND);
}

/* A subject without a setting of its own: "none set" (Confluent: 40408,
 * the embedded registry) or the server's default (Apicurio answers 200
 * with it). stele accepts both; a setting made is read back either way. */
static void test_subject_compatibility_set_and_read(void **state)
{
    rc_fx *fx = *state;
    const char *s = subj(fx, "Configured");
    OK(stele_registry_register(fx->reg, s, schema(fx, "Configured", F_AMOUNT),
                               &(int32_t){0}, E));
    stele_err err = {0};
    stele_compat_mode m = STELE_COMPAT_NONE;
    int rc = stele_registry_get_compat(fx->reg, s, &m, &err);
    assert_true(rc == 0 || rc == STELE_ENOTFOUND);
    OK(stele_registry_set_compat(fx->reg, s, STELE_COMPAT_FULL_TRANSITIVE, E));
    OK(stele_registry_get_compat(fx->reg, s, &m, E));
    assert_int_equal(m, STELE_COMPAT_FULL_TRANSITIVE);
    OK(stele_registry_set_compat(fx->reg, s, STELE_COMPAT_BACKWARD, E));
    OK(stele_registry_get_compat(fx->reg, s, &m, E));
    assert_int_equal(m, STELE_COMPAT_BACKWARD);
}

static void test_compatibility_test_and_refused_registration(void **state)
{
    rc_fx *fx = *state;
    const char *s = subj(fx, "Checked");
    bool ok = false;
    stele_compat_report rep = {0};
    /* A subject with no versions takes anything. */
    OK(stele_compat_test(fx->reg, s, schema(fx, "Checked", F_AMOUNT),
                         STELE_COMPAT_BACKWARD, &ok, &rep, E));
    assert_true(ok);
    int32_t id = 0;
    OK(stele_registry_register(fx->reg, s, schema(fx, "Checked", F_AMOUNT), &id,
                               E));
    OK(stele_registry_set_compat(fx->reg, s, STELE_COMPAT_BACKWARD, E));
    /* A field with a default reads old data; one without cannot. */
    OK(stele_compat_test(fx->reg, s,
                         schema(fx, "Checked", F_AMOUNT "," F_NOTE_DEFAULT),
                         STELE_COMPAT_BACKWARD, &ok, &rep, E));
    assert_true(ok);
    assert_int_equal(rep.n, 0);
    const char *bad = schema(fx, "Checked", F_AMOUNT "," F_NOTE);
    OK(stele_compat_test(fx->reg, s, bad, STELE_COMPAT_BACKWARD, &ok, &rep, E));
    assert_false(ok);
    assert_true(rep.n >= 1); /* a reason, even when the server gives none */
    stele_compat_report_clear(&rep);
    if (B->register_checks_compat) {
        stele_err err = {0};
        int32_t id2 = 0;
        assert_int_not_equal(
            stele_registry_register(fx->reg, s, bad, &id2, &err), 0);
        assert_non_null(strstr(err.msg, s));
        int *versions = NULL;
        size_t n = 0;
        OK(stele_registry_versions(fx->reg, s, &versions, &n, E));
        assert_int_equal(n, 1);
        free(versions);
    }
}

/* Not JSON, or not a schema: refused, never registered. */
static void test_invalid_schema_is_refused(void **state)
{
    rc_fx *fx = *state;
    stele_err err = {0};
    int32_t id = 0;
    assert_int_not_equal(stele_registry_register(fx->reg, subj(fx, "Bad"),
                                                 "not json", &id, &err),
                         0);
    assert_int_equal(stele_registry_versions(fx->reg, subj(fx, "Bad"),
                                             &(int *){NULL}, &(size_t){0},
                                             &err),
                     STELE_ENOTFOUND);
}

int registry_conformance_run(const registry_conformance_backend *backend)
{
    B = backend;
#define T(f) cmocka_unit_test_setup_teardown(f, rc_setup, rc_teardown)
    const struct CMUnitTest tests[] = {
        T(test_register_is_idempotent_and_kept_as_written),
        T(test_second_handle_sees_what_the_first_registered),
        T(test_find_version_and_lists),
        T(test_ids_unique_and_stable_not_contiguous),
        T(test_same_text_under_another_subject),
        T(test_unknown_id_is_enotfound_naming_it),
        T(test_subject_compatibility_set_and_read),
        T(test_compatibility_test_and_refused_registration),
        T(test_invalid_schema_is_refused),
    };
#undef T
    return _cmocka_run_group_tests(backend->name, tests,
                                   sizeof tests / sizeof tests[0], NULL, NULL);
}
