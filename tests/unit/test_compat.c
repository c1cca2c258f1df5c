/* test_compat.c — Avro schema-resolution compatibility (host/codec/compat.c):
 * every rule in both directions, each mode with its transitive form, and
 * the error paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec.h"

#define REC(fields)                                                            \
    "{\"type\":\"record\",\"name\":\"Deposited\",\"namespace\":\"bank\","      \
    "\"fields\":[" fields "]}"

/* Runs one check; returns the report (caller clears). */
static stele_compat_report run(const char *reader, const char *writer)
{
    stele_compat_report rep = {0};
    stele_err err = {0};
    int rc = stele_compat_check(reader, writer, &rep, &err);
    if (rc)
        fail_msg("check failed: %s", err.msg);
    return rep;
}

static void ok(const char *reader, const char *writer)
{
    stele_compat_report rep = run(reader, writer);
    if (rep.n)
        fail_msg("expected compatible, got: %s", rep.msgs[0]);
    stele_compat_report_clear(&rep);
}

static void bad(const char *reader, const char *writer, const char *needle)
{
    stele_compat_report rep = run(reader, writer);
    if (rep.n == 0)
        fail_msg("expected an incompatibility containing \"%s\"", needle);
    bool found = false;
    for (size_t i = 0; i < rep.n; i++)
        found |= strstr(rep.msgs[i], needle) != NULL;
    if (!found)
        fail_msg("\"%s\" not in \"%s\"", needle, rep.msgs[0]);
    stele_compat_report_clear(&rep);
}

static void test_type_change_names_path_and_reason(void **s)
{
    (void)s;
    bad(REC("{\"name\":\"amount\",\"type\":\"long\"}"),
        REC("{\"name\":\"amount\",\"type\":\"string\"}"),
        "bank.Deposited.amount: writer type string cannot be read as long");
}

static void test_promotions_widen_only(void **s)
{
    (void)s;
    const char *chain[] = {"int", "long", "float", "double"};
    for (int w = 0; w < 4; w++)
        for (int r = 0; r < 4; r++) {
            char rt[200], wt[200];
            snprintf(rt, sizeof rt, REC("{\"name\":\"x\",\"type\":\"%s\"}"),
                     chain[r]);
            snprintf(wt, sizeof wt, REC("{\"name\":\"x\",\"type\":\"%s\"}"),
                     chain[w]);
            if (w <= r)
                ok(rt, wt);
            else
                bad(rt, wt, "cannot be read as");
        }
    ok(REC("{\"name\":\"x\",\"type\":\"bytes\"}"),
       REC("{\"name\":\"x\",\"type\":\"string\"}"));
    ok(REC("{\"name\":\"x\",\"type\":\"string\"}"),
       REC("{\"name\":\"x\",\"type\":\"bytes\"}"));
    bad(REC("{\"name\":\"x\",\"type\":\"boolean\"}"),
        REC("{\"name\":\"x\",\"type\":\"int\"}"),
        "int cannot be read as boolean");
}

static void test_added_field_needs_default(void **s)
{
    (void)s;
    const char *v1 = REC("{\"name\":\"amount\",\"type\":\"long\"}");
    const char *v2 = REC("{\"name\":\"amount\",\"type\":\"long\"},"
                         "{\"name\":\"note\",\"type\":\"string\","
                         "\"default\":\"\"}");
    const char *v2nd = REC("{\"name\":\"amount\",\"type\":\"long\"},"
                           "{\"name\":\"note\",\"type\":\"string\"}");
    ok(v2, v1);   /* new reads old: default fills note */
    ok(v1, v2);   /* old reads new: note skipped */
    ok(v1, v2nd); /* writer fields missing in the reader are skipped */
    bad(v2nd, v1,
        "bank.Deposited.note: reader field 'note' is missing in the "
        "writer and has no default");
}

static void test_field_alias_matches_renamed_field(void **s)
{
    (void)s;
    const char *old = REC("{\"name\":\"amt\",\"type\":\"long\"}");
    ok(REC("{\"name\":\"amount\",\"type\":\"long\",\"aliases\":[\"amt\"]}"),
       old);
    bad(REC("{\"name\":\"amount\",\"type\":\"long\"}"), old,
        "reader field 'amount' is missing");
}

static void test_record_names_and_aliases(void **s)
{
    (void)s;
    const char *w = "{\"type\":\"record\",\"name\":\"Old\",\"namespace\":"
                    "\"bank\",\"fields\":[]}";
    bad("{\"type\":\"record\",\"name\":\"New\",\"namespace\":\"bank\","
        "\"fields\":[]}",
        w, "does not match reader record bank.New");
    ok("{\"type\":\"record\",\"name\":\"New\",\"namespace\":\"bank\","
       "\"aliases\":[\"Old\"],\"fields\":[]}",
       w);
    ok("{\"type\":\"record\",\"name\":\"New\",\"namespace\":\"x\","
       "\"aliases\":[\"bank.Old\"],\"fields\":[]}",
       w);
}

static void test_enum_symbols_and_default(void **s)
{
    (void)s;
#define ENUM(syms, extra)                                                      \
    REC("{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"Kind\","    \
        "\"symbols\":[" syms "]" extra "}}")
    const char *small = ENUM("\"A\",\"B\"", "");
    const char *big = ENUM("\"A\",\"B\",\"C\"", "");
    ok(big, small);
    bad(small, big, "writer symbol C of enum bank.Kind is not in the reader");
    ok(ENUM("\"A\",\"B\"", ",\"default\":\"A\""), big);
}

static void test_unions_every_writer_branch(void **s)
{
    (void)s;
    const char *ns = REC("{\"name\":\"x\",\"type\":[\"null\",\"string\"]}");
    const char *nsl =
        REC("{\"name\":\"x\",\"type\":[\"null\",\"string\",\"long\"]}");
    const char *str = REC("{\"name\":\"x\",\"type\":\"string\"}");
    const char *lng = REC("{\"name\":\"x\",\"type\":\"long\"}");
    ok(nsl, ns); /* branch added */
    bad(ns, nsl, "writer type long matches no branch of the reader union");
    ok(ns, str); /* non-union writer into a union */
    bad(ns, lng, "matches no branch");
    bad(str, ns, "writer type null cannot be read as string");
    ok(REC("{\"name\":\"x\",\"type\":[\"null\",\"double\"]}"),
       REC("{\"name\":\"x\",\"type\":[\"null\",\"int\"]}")); /* promotion */
}

static void test_arrays_maps_fixed(void **s)
{
    (void)s;
    ok(REC("{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"long\"}}"),
       REC("{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"int\"}}"));
    bad(REC("{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"int\"}}"),
        REC("{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":"
            "\"long\"}}"),
        "bank.Deposited.a[]: writer type long cannot be read as int");
    bad(REC("{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"int\"}}"),
        REC("{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":"
            "\"string\"}}"),
        "bank.Deposited.m{}");
    bad(REC("{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"int\"}}"),
        REC("{\"name\":\"m\",\"type\":{\"type\":\"array\",\"items\":\"int\"}}"),
        "writer type array cannot be read as map");
    const char *f4 =
        REC("{\"name\":\"h\",\"type\":{\"type\":\"fixed\",\"name\":\"H\","
            "\"size\":4}}");
    const char *f8 =
        REC("{\"name\":\"h\",\"type\":{\"type\":\"fixed\",\"name\":\"H\","
            "\"size\":8}}");
    ok(f4, f4);
    bad(f4, f8, "has size 8, reader size 4");
}

static void test_named_references_and_recursion(void **s)
{
    (void)s;
    const char *list =
        "{\"type\":\"record\",\"name\":\"Node\",\"namespace\":\"t\",\"fields\":"
        "[{\"name\":\"v\",\"type\":\"int\"},{\"name\":\"next\",\"type\":"
        "[\"null\",\"Node\"]}]}";
    const char *list2 =
        "{\"type\":\"record\",\"name\":\"Node\",\"namespace\":\"t\",\"fields\":"
        "[{\"name\":\"v\",\"type\":\"long\"},{\"name\":\"next\",\"type\":"
        "[\"null\",\"t.Node\"]}]}";
    ok(list2, list);
    bad(list, list2, "t.Node.v: writer type long cannot be read as int");
    /* A type defined once and referenced by name later. */
    const char *ref =
        REC("{\"name\":\"a\",\"type\":{\"type\":\"record\",\"name\":\"M\","
            "\"fields\":[{\"name\":\"c\",\"type\":\"long\"}]}},"
            "{\"name\":\"b\",\"type\":\"M\"}");
    const char *ref2 =
        REC("{\"name\":\"a\",\"type\":{\"type\":\"record\",\"name\":\"M\","
            "\"fields\":[{\"name\":\"c\",\"type\":\"string\"}]}},"
            "{\"name\":\"b\",\"type\":\"bank.M\"}");
    /* Reported once, at its first use (bank.Deposited.b is the same pair). */
    bad(ref, ref2, "bank.Deposited.a.c: writer type string cannot be read");
}

static void test_modes_and_transitive(void **s)
{
    (void)s;
    const char *v1 = REC("{\"name\":\"a\",\"type\":\"long\"}");
    /* v2 adds b with a default; v3 then drops a (it has no default). */
    const char *v2 = REC("{\"name\":\"a\",\"type\":\"long\"},"
                         "{\"name\":\"b\",\"type\":\"long\",\"default\":0}");
    const char *v3 = REC("{\"name\":\"b\",\"type\":\"long\",\"default\":0}");
    const char *prev[] = {v1, v2};
    int vs[] = {1, 2};
    struct {
        stele_compat_mode mode;
        size_t expect; /* incompatibilities of v3 after v1, v2 */
    } cases[] = {
        {STELE_COMPAT_NONE, 0},
        {STELE_COMPAT_BACKWARD, 0},            /* v3 reads v2: a skipped */
        {STELE_COMPAT_BACKWARD_TRANSITIVE, 0}, /* v3 reads v1: b default */
        {STELE_COMPAT_FORWARD, 1},             /* v2 reads v3: a missing */
        {STELE_COMPAT_FORWARD_TRANSITIVE, 2},  /* and v1 reads v3 */
        {STELE_COMPAT_FULL, 1},
        {STELE_COMPAT_FULL_TRANSITIVE, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        stele_compat_report rep = {0};
        stele_err err = {0};
        assert_int_equal(
            stele_compat_check_mode(cases[i].mode, v3, prev, vs, 2, &rep, &err),
            0);
        if (rep.n != cases[i].expect)
            fail_msg("%s: %zu incompatibilities, expected %zu",
                     stele_compat_mode_name(cases[i].mode), rep.n,
                     cases[i].expect);
        if (rep.n)
            assert_non_null(strstr(rep.msgs[0], "version 2 reading data of "
                                                "the new schema"));
        stele_compat_report_clear(&rep);
    }
    /* Transitive catches what only the older version breaks. */
    const char *w1 = REC("{\"name\":\"a\",\"type\":\"string\"}");
    const char *w2 = REC("{\"name\":\"a\",\"type\":\"string\"},"
                         "{\"name\":\"c\",\"type\":\"int\",\"default\":1}");
    const char *wp[] = {w1, w2};
    const char *w3b = REC("{\"name\":\"c\",\"type\":\"int\"}");
    stele_compat_report rep = {0};
    stele_err err = {0};
    assert_int_equal(stele_compat_check_mode(STELE_COMPAT_BACKWARD, w3b, wp,
                                             NULL, 2, &rep, &err),
                     0);
    assert_int_equal(rep.n, 0);
    assert_int_equal(stele_compat_check_mode(STELE_COMPAT_BACKWARD_TRANSITIVE,
                                             w3b, wp, NULL, 2, &rep, &err),
                     0);
    assert_int_equal(rep.n, 1);
    assert_non_null(strstr(rep.msgs[0], "reading data of version 1"));
    stele_compat_report_clear(&rep);
}

static void test_mode_names_round_trip(void **s)
{
    (void)s;
    for (int m = STELE_COMPAT_NONE; m <= STELE_COMPAT_FULL_TRANSITIVE; m++) {
        stele_compat_mode back;
        assert_int_equal(
            stele_compat_mode_parse(stele_compat_mode_name(m), &back), 0);
        assert_int_equal(back, m);
    }
    stele_compat_mode x;
    assert_int_equal(stele_compat_mode_parse("SIDEWAYS", &x), STELE_EINVAL);
}

static void test_bad_schema_text_is_an_error(void **s)
{
    (void)s;
    stele_compat_report rep = {0};
    stele_err err = {0};
    assert_int_equal(stele_compat_check("{not json", REC(""), &rep, &err),
                     STELE_EINVAL);
    assert_non_null(strstr(err.msg, "reader schema is not JSON"));
    assert_int_equal(
        stele_compat_check(REC(""), "{\"type\":\"record\"}", &rep, &err),
        STELE_EINVAL);
    assert_non_null(strstr(err.msg, "writer"));
    bad(REC("{\"name\":\"a\",\"type\":\"Nowhere\"}"),
        REC("{\"name\":\"a\",\"type\":\"int\"}"),
        "reader type Nowhere is not "
        "defined");
    stele_compat_report_clear(&rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_change_names_path_and_reason),
        cmocka_unit_test(test_promotions_widen_only),
        cmocka_unit_test(test_added_field_needs_default),
        cmocka_unit_test(test_field_alias_matches_renamed_field),
        cmocka_unit_test(test_record_names_and_aliases),
        cmocka_unit_test(test_enum_symbols_and_default),
        cmocka_unit_test(test_unions_every_writer_branch),
        cmocka_unit_test(test_arrays_maps_fixed),
        cmocka_unit_test(test_named_references_and_recursion),
        cmocka_unit_test(test_modes_and_transitive),
        cmocka_unit_test(test_mode_names_round_trip),
        cmocka_unit_test(test_bad_schema_text_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
