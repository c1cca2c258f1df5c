/* codec_json_tests.c — schema defaults of every kind, and JSON <-> Avro:
 * round trips, unions, and every kind of input error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_test.h"

static void assert_json_is(json_t *got, const char *want_text)
{
    json_t *want = codec_json(want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
        char *w = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
        fprintf(stderr, "got:  %s\nwant: %s\n", g, w);
        free(g);
        free(w);
        fail();
    }
    json_decref(want);
}

static const char everything_defaults[] =
    "{\"id\": \"\", \"count\": 7, \"total\": -5000000000, \"ratio\": 0.5,"
    " \"score\": 2.25, \"flag\": true, \"label\": \"hello\","
    " \"blob\": \"\\u00ffA\", \"color\": \"GREEN\", \"tags\": [\"a\", \"b\"],"
    " \"limits\": {\"x\": 1}, \"memo\": null, \"nick\": \"anon\","
    " \"owner\": {\"name\": \"nobody\", \"age\": 30, \"ref\": null},"
    " \"backup\": {\"name\": \"bk\", \"age\": 30, \"ref\": null},"
    " \"hash\": \"\\u0000\\u0000\\u0000\\u0000\", \"extra\": null,"
    " \"pick\": {\"name\": \"nobody\", \"age\": 30, \"ref\": null},"
    " \"tally\": 0, \"shade\": \"RED\","
    " \"owners\": [{\"name\": \"nobody\", \"age\": 1, \"ref\": null}]}";

static void test_value_new_applies_defaults_of_every_kind(void **state)
{
    codec_fx *fx = *state;
    const stele_schema *s = codec_schema(fx, "test.Everything", 1);
    avro_value_t v = codec_new_value(s);
    json_t *j = stele_codec_to_json(&v);
    assert_json_is(j, everything_defaults);
    json_decref(j);
    avro_value_decref(&v);
}

static void test_value_reset_restores_defaults(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    const stele_schema *s = codec_schema(fx, "test.Everything", 1);
    avro_value_t v = codec_new_value(s);
    json_t *in = codec_json(
        "{\"id\": \"z\", \"count\": 1, \"tags\": [], \"memo\": \"m\", "
        "\"nick\": null, \"extra\": {\"name\": \"e\", \"ref\": 3}, \"pick\": "
        "null, "
        "\"tally\": 5, \"hash\": \"abcd\", \"owners\": [], \"owner\": "
        "{\"ref\": 1}, \"shade\": \"BLUE\"}");
    assert_int_equal(stele_codec_from_json(s, in, &v, &err), 0);
    json_decref(in);
    assert_int_equal(stele_codec_value_reset(s, &v, &err), 0);
    json_t *j = stele_codec_to_json(&v);
    assert_json_is(j, everything_defaults);
    json_decref(j);
    /* a value of another schema is refused */
    const stele_schema *o = codec_schema(fx, "test.Order", 1);
    assert_int_equal(stele_codec_value_reset(o, &v, &err), STELE_EINVAL);
    avro_value_decref(&v);
}

static void test_recursive_record_defaults_end_at_null(void **state)
{
    codec_fx *fx = *state;
    avro_value_t v = codec_new_value(codec_schema(fx, "test.Node", 1));
    json_t *j = stele_codec_to_json(&v);
    assert_json_is(j, "{\"value\": 0, \"next\": null}");
    json_decref(j);
    avro_value_decref(&v);
}

static void test_json_round_trip_with_nested_records_unions_maps(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    const stele_schema *s = codec_schema(fx, "test.Order", 1);
    avro_value_t v = codec_new_value(s), back = codec_new_value(s);
    json_t *in = codec_json(
        "{\"id\": \"o1\", \"items\": [{\"sku\": \"a\"}, {\"sku\": \"b\", "
        "\"qty\": 3, \"note\": {\"string\": \"n\"}}], \"payment\": "
        "{\"iban\": \"DE00\", \"bic\": \"X\"}, \"amount\": 12, "
        "\"small\": -2147483648, \"ratio\": 1, \"attrs\": {\"k\": \"v\"}, "
        "\"digest\": \"\\u0001\\u00ff\"}");
    assert_int_equal(stele_codec_from_json(s, in, &v, &err), 0);
    json_t *out = stele_codec_to_json(&v);
    assert_json_is(out,
                   "{\"id\": \"o1\", \"items\": [{\"sku\": \"a\", \"qty\": 1, "
                   "\"note\": null}, {\"sku\": \"b\", \"qty\": 3, \"note\": "
                   "\"n\"}], \"payment\": {\"iban\": \"DE00\", \"bic\": "
                   "\"X\"}, \"amount\": 12, \"small\": -2147483648, "
                   "\"ratio\": 1.0, \"attrs\": {\"k\": \"v\"}, "
                   "\"digest\": \"\\u0001\\u00ff\"}");
    /* the output, with bare unions, reads back to the same value */
    assert_int_equal(stele_codec_from_json(s, out, &back, &err), 0);
    assert_true(avro_value_equal(&v, &back));
    stele_value sv = stele_value_wrap(&v);
    const char *branch;
    assert_int_equal(fx->api.get_branch(&sv, "payment", &branch, NULL), 0);
    assert_string_equal(branch, "test.Transfer");
    assert_int_equal(fx->api.get_branch(&sv, "amount", &branch, NULL), 0);
    assert_string_equal(branch, "long");
    json_decref(in);
    json_decref(out);
    avro_value_decref(&v);
    avro_value_decref(&back);
}

static void test_json_union_picks_the_one_branch_that_fits(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    const stele_schema *s = codec_schema(fx, "test.Order", 1);
    avro_value_t v = codec_new_value(s);
    stele_value sv = stele_value_wrap(&v);
    const char *branch;
    struct {
        const char *json;
        const char *field, *branch;
    } cases[] = {
        {"{\"id\": \"x\", \"amount\": 1.5}", "amount", "double"},
        {"{\"id\": \"x\", \"amount\": {\"double\": 2}}", "amount", "double"},
        {"{\"id\": \"x\", \"amount\": null}", "amount", "null"},
        {"{\"id\": \"x\", \"payment\": {\"number\": \"4\"}}", "payment",
         "test.Card"},
        {"{\"id\": \"x\", \"payment\": {\"Card\": {\"number\": \"4\"}}}",
         "payment", "test.Card"},
        {"{\"id\": \"x\", \"digest\": \"ab\"}", "digest", "bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = codec_json(cases[i].json);
        if (stele_codec_from_json(s, j, &v, &err))
            fail_msg("%s: %s", cases[i].json, err.msg);
        json_decref(j);
        assert_int_equal(fx->api.get_branch(&sv, cases[i].field, &branch, NULL),
                         0);
        assert_string_equal(branch, cases[i].branch);
    }
    avro_value_decref(&v);
}

static void expect_json_error(codec_fx *fx, const char *type, const char *json,
                              const char *needle)
{
    stele_err err = {0};
    const stele_schema *s = codec_schema(fx, type, 1);
    avro_value_t v = codec_new_value(s);
    json_t *j = codec_json(json);
    int rc = stele_codec_from_json(s, j, &v, &err);
    if (rc != STELE_EINVAL)
        fail_msg("%s: gave %d, expected EINVAL", json, rc);
    if (!strstr(err.msg, needle))
        fail_msg("%s: error \"%s\" lacks \"%s\"", json, err.msg, needle);
    json_decref(j);
    avro_value_decref(&v);
}

/* Every field of test.Everything without a default. */
#define EV_REQUIRED                                                            \
    "\"id\": \"x\", \"tally\": 1, \"owner\": {\"ref\": null}, \"hash\": "      \
    "\"abcd\", \"extra\": null, \"pick\": null, \"shade\": \"RED\""

static void test_json_errors_name_the_field_path(void **state)
{
    codec_fx *fx = *state;
    const char *o = "test.Order", *e = "test.Everything", *c = "test.Choice";
    expect_json_error(fx, o, "[1]", "(value): expected object, got array");
    expect_json_error(fx, o, "{\"id\": 5}", "id: expected string, got integer");
    expect_json_error(fx, o, "{}", "id: missing, and the field has no default");
    expect_json_error(fx, o, "{\"id\": \"x\", \"bogus\": 1}",
                      "bogus: unknown field of Order");
    expect_json_error(fx, o,
                      "{\"id\": \"x\", \"items\": [{\"sku\": \"a\"}, "
                      "{\"sku\": \"b\", \"qty\": \"3\"}]}",
                      "items[1].qty: expected int, got string");
    expect_json_error(fx, o, "{\"id\": \"x\", \"items\": [{\"qty\": 1}]}",
                      "items[0].sku: missing");
    expect_json_error(fx, o, "{\"id\": \"x\", \"small\": 2147483648}",
                      "small: 2147483648 is out of range for int");
    expect_json_error(fx, o, "{\"id\": \"x\", \"small\": -2147483649}",
                      "small: -2147483649 is out of range for int");
    expect_json_error(fx, o, "{\"id\": \"x\", \"small\": 1.5}",
                      "small: expected int, got number");
    expect_json_error(fx, o, "{\"id\": \"x\", \"attrs\": {\"k\": 1}}",
                      "attrs.k: expected string, got integer");
    expect_json_error(fx, o, "{\"id\": \"x\", \"amount\": \"12\"}",
                      "amount: no branch of the union fits the string");
    expect_json_error(fx, o, "{\"id\": \"x\", \"payment\": {\"iban\": \"I\"}}",
                      "payment.bic: missing");
    expect_json_error(fx, o, "{\"id\": \"x\", \"digest\": \"\\u0100\"}",
                      "digest: bytes are written as characters");
    expect_json_error(fx, e, "{" EV_REQUIRED ", \"color\": \"PINK\"}",
                      "color: \"PINK\" is not a symbol of enum Color");
    expect_json_error(fx, e, "{" EV_REQUIRED ", \"hash\": \"abc\"}",
                      "hash: expected 4 bytes, got 3");
    expect_json_error(fx, e, "{" EV_REQUIRED ", \"flag\": 1}",
                      "flag: expected boolean, got integer");
    expect_json_error(fx, e, "{" EV_REQUIRED ", \"owner\": {\"age\": \"old\"}}",
                      "owner.age: expected int, got string");
    expect_json_error(fx, e, "{" EV_REQUIRED ", \"owner\": {}}",
                      "owner.ref: missing, and the field has no default");
    expect_json_error(fx, e, "{" EV_REQUIRED ", \"extra\": {\"zzz\": 1}}",
                      "extra.ref: missing");
    expect_json_error(fx, c, "{\"r\": {}}",
                      "r: the object fits union branches A and B");
}

/* Caught by tests/fuzz/fuzz_json's round trip: 1e39 was stored as an
 * infinite float, which converts back to JSON as null, a value the field
 * then refuses. */
static void test_json_float_out_of_range_is_refused(void **state)
{
    codec_fx *fx = *state;
    const char *e = "test.Everything";
    expect_json_error(fx, e, "{" EV_REQUIRED ", \"ratio\": 1e39}",
                      "ratio: 1e+39 is out of range for float");
    expect_json_error(fx, e, "{" EV_REQUIRED ", \"ratio\": -1e39}",
                      "ratio: -1e+39 is out of range for float");
    const stele_schema *s = codec_schema(fx, e, 1);
    avro_value_t v = codec_new_value(s);
    json_t *j = codec_json("{" EV_REQUIRED ", \"ratio\": 3.4e38}");
    stele_err err = {0};
    assert_int_equal(stele_codec_from_json(s, j, &v, &err), 0);
    float f;
    avro_value_t field;
    assert_int_equal(avro_value_get_by_name(&v, "ratio", &field, NULL), 0);
    assert_int_equal(avro_value_get_float(&field, &f), 0);
    assert_true(f > 3.3e38f);
    json_decref(j);
    avro_value_decref(&v);
}

static void test_json_tagged_union_resolves_ambiguity(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    const stele_schema *s = codec_schema(fx, "test.Choice", 1);
    avro_value_t v = codec_new_value(s);
    json_t *j = codec_json("{\"c\": {\"bytes\": \"hi\"}, \"r\": {\"test.B\": "
                           "{}}}");
    assert_int_equal(stele_codec_from_json(s, j, &v, &err), 0);
    stele_value sv = stele_value_wrap(&v);
    const char *branch;
    assert_int_equal(fx->api.get_branch(&sv, "c", &branch, NULL), 0);
    assert_string_equal(branch, "bytes");
    assert_int_equal(fx->api.get_branch(&sv, "r", &branch, NULL), 0);
    assert_string_equal(branch, "test.B");
    json_decref(j);
    /* a bare string prefers the string branch over bytes */
    j = codec_json("{\"c\": \"hi\"}");
    assert_int_equal(stele_codec_from_json(s, j, &v, &err), 0);
    assert_int_equal(fx->api.get_branch(&sv, "c", &branch, NULL), 0);
    assert_string_equal(branch, "string");
    json_decref(j);
    /* {"x": 1} only fits A: B has no field x */
    j = codec_json("{\"r\": {\"x\": 1}}");
    assert_int_equal(stele_codec_from_json(s, j, &v, &err), 0);
    assert_int_equal(fx->api.get_branch(&sv, "r", &branch, NULL), 0);
    assert_string_equal(branch, "test.A");
    json_decref(j);
    avro_value_decref(&v);
}

const struct CMUnitTest codec_json_tests[] = {
    cmocka_unit_test_setup_teardown(
        test_value_new_applies_defaults_of_every_kind, codec_fx_setup,
        codec_fx_teardown),
    cmocka_unit_test_setup_teardown(test_value_reset_restores_defaults,
                                    codec_fx_setup, codec_fx_teardown),
    cmocka_unit_test_setup_teardown(test_recursive_record_defaults_end_at_null,
                                    codec_fx_setup, codec_fx_teardown),
    cmocka_unit_test_setup_teardown(
        test_json_round_trip_with_nested_records_unions_maps, codec_fx_setup,
        codec_fx_teardown),
    cmocka_unit_test_setup_teardown(
        test_json_union_picks_the_one_branch_that_fits, codec_fx_setup,
        codec_fx_teardown),
    cmocka_unit_test_setup_teardown(test_json_errors_name_the_field_path,
                                    codec_fx_setup, codec_fx_teardown),
    cmocka_unit_test_setup_teardown(test_json_tagged_union_resolves_ambiguity,
                                    codec_fx_setup, codec_fx_teardown),
    cmocka_unit_test_setup_teardown(test_json_float_out_of_range_is_refused,
                                    codec_fx_setup, codec_fx_teardown),
};
const size_t codec_json_tests_n =
    sizeof codec_json_tests / sizeof codec_json_tests[0];
