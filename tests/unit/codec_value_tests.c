/* codec_value_tests.c — the plugin API's value functions: every getter
 * and setter, wrong types, missing fields, unions, arrays and copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_test.h"

typedef struct vfx {
    codec_fx *fx;
    const stele_schema *s;
    avro_value_t v;
    stele_value sv;
    const stele_host_api *api;
} vfx;

static vfx everything(void **state)
{
    vfx x;
    x.fx = *state;
    x.s = codec_schema(x.fx, "test.Everything", 1);
    x.v = codec_new_value(x.s);
    x.sv = stele_value_wrap(&x.v);
    x.api = &x.fx->api;
    return x;
}

static void test_getters_read_defaults_and_promote_numbers(void **state)
{
    vfx x = everything(state);
    int64_t l;
    double d;
    bool b;
    const char *p;
    size_t len;
    assert_int_equal(x.api->get_long(&x.sv, "count", &l), 0); /* int */
    assert_int_equal(l, 7);
    assert_int_equal(x.api->get_long(&x.sv, "total", &l), 0);
    assert_int_equal(l, -5000000000LL);
    assert_int_equal(x.api->get_double(&x.sv, "ratio", &d), 0); /* float */
    assert_true(d == 0.5);
    assert_int_equal(x.api->get_double(&x.sv, "score", &d), 0);
    assert_true(d == 2.25);
    assert_int_equal(x.api->get_double(&x.sv, "count", &d), 0); /* int */
    assert_true(d == 7.0);
    assert_int_equal(x.api->get_double(&x.sv, "total", &d), 0); /* long */
    assert_true(d == -5e9);
    assert_int_equal(x.api->get_bool(&x.sv, "flag", &b), 0);
    assert_true(b);
    assert_int_equal(x.api->get_string(&x.sv, "label", &p, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(p, "hello", 5);
    assert_int_equal(x.api->get_string(&x.sv, "blob", &p, &len), 0); /* bytes */
    assert_int_equal(len, 2);
    assert_memory_equal(p,
                        "\xff"
                        "A",
                        2);
    assert_int_equal(x.api->get_enum(&x.sv, "color", &p), 0);
    assert_string_equal(p, "GREEN");
    /* a union reads through to its branch */
    assert_int_equal(x.api->get_string(&x.sv, "nick", &p, &len), 0);
    assert_memory_equal(p, "anon", 4);
    stele_value owner;
    assert_int_equal(x.api->get_record(&x.sv, "owner", &owner), 0);
    assert_int_equal(x.api->get_string(&owner, "name", &p, &len), 0);
    assert_memory_equal(p, "nobody", 6);
    assert_int_equal(x.api->get_long(&owner, "age", &l), 0);
    assert_int_equal(l, 30);
    avro_value_decref(&x.v);
}

static void test_wrong_type_is_einval_and_missing_field_enotfound(void **state)
{
    vfx x = everything(state);
    int64_t l;
    double d;
    bool b;
    const char *p;
    size_t len;
    stele_value out;
    /* wrong types */
    assert_int_equal(x.api->get_long(&x.sv, "label", &l), STELE_EINVAL);
    assert_int_equal(x.api->get_long(&x.sv, "score", &l), STELE_EINVAL);
    assert_int_equal(x.api->get_double(&x.sv, "label", &d), STELE_EINVAL);
    assert_int_equal(x.api->get_bool(&x.sv, "count", &b), STELE_EINVAL);
    assert_int_equal(x.api->get_string(&x.sv, "count", &p, &len), STELE_EINVAL);
    assert_int_equal(x.api->get_enum(&x.sv, "label", &p), STELE_EINVAL);
    assert_int_equal(x.api->get_record(&x.sv, "count", &out), STELE_EINVAL);
    assert_int_equal(x.api->get_branch(&x.sv, "count", &p, &out), STELE_EINVAL);
    assert_int_equal(x.api->array_size(&x.sv, "label", &len), STELE_EINVAL);
    assert_int_equal(x.api->set_long(&x.sv, "label", 1), STELE_EINVAL);
    assert_int_equal(x.api->set_double(&x.sv, "count", 1), STELE_EINVAL);
    assert_int_equal(x.api->set_bool(&x.sv, "label", true), STELE_EINVAL);
    assert_int_equal(x.api->set_string(&x.sv, "count", "a", 1), STELE_EINVAL);
    assert_int_equal(x.api->set_enum(&x.sv, "label", "RED"), STELE_EINVAL);
    assert_int_equal(x.api->set_null(&x.sv, "label"), STELE_EINVAL);
    assert_int_equal(x.api->set_branch(&x.sv, "label", "null", &out),
                     STELE_EINVAL);
    assert_int_equal(x.api->array_append(&x.sv, "label", &out), STELE_EINVAL);
    /* null in a union is not a long */
    assert_int_equal(x.api->get_long(&x.sv, "memo", &l), STELE_EINVAL);
    /* missing fields */
    assert_int_equal(x.api->get_long(&x.sv, "nope", &l), STELE_ENOTFOUND);
    assert_int_equal(x.api->get_string(&x.sv, "nope", &p, &len),
                     STELE_ENOTFOUND);
    assert_int_equal(x.api->set_long(&x.sv, "nope", 1), STELE_ENOTFOUND);
    assert_int_equal(x.api->is_null(&x.sv, "nope", &b), STELE_ENOTFOUND);
    assert_int_equal(x.api->array_append(&x.sv, "nope", &out), STELE_ENOTFOUND);
    /* not a record, or no value at all */
    stele_value tags;
    assert_int_equal(x.api->array_get(&x.sv, "tags", 0, &tags), 0);
    assert_int_equal(x.api->get_long(&tags, "x", &l), STELE_EINVAL);
    stele_value none = {0};
    assert_int_equal(x.api->get_long(&none, "x", &l), STELE_EINVAL);
    assert_int_equal(x.api->get_long(NULL, "x", &l), STELE_EINVAL);
    assert_int_equal(x.api->set_long(&x.sv, NULL, 1), STELE_EINVAL);
    /* no place for the answer: an error, not a crash (they wrote there) */
    assert_int_equal(x.api->get_long(&x.sv, "count", NULL), STELE_EINVAL);
    assert_int_equal(x.api->get_double(&x.sv, "count", NULL), STELE_EINVAL);
    assert_int_equal(x.api->get_string(&x.sv, "label", NULL, &len),
                     STELE_EINVAL);
    assert_int_equal(x.api->is_null(&x.sv, "memo", NULL), STELE_EINVAL);
    assert_int_equal(x.api->array_size(&x.sv, "tags", NULL), STELE_EINVAL);
    assert_int_equal(x.api->array_get(&x.sv, "tags", 0, NULL), STELE_EINVAL);
    avro_value_decref(&x.v);
}

static void test_setters_write_check_ranges_and_symbols(void **state)
{
    vfx x = everything(state);
    int64_t l;
    double d;
    bool b;
    const char *p;
    size_t len;
    assert_int_equal(x.api->set_long(&x.sv, "count", INT32_MAX), 0);
    assert_int_equal(x.api->get_long(&x.sv, "count", &l), 0);
    assert_int_equal(l, INT32_MAX);
    assert_int_equal(x.api->set_long(&x.sv, "count", (int64_t)INT32_MAX + 1),
                     STELE_EINVAL);
    assert_int_equal(x.api->set_long(&x.sv, "count", (int64_t)INT32_MIN - 1),
                     STELE_EINVAL);
    assert_int_equal(x.api->set_long(&x.sv, "total", INT64_MIN), 0);
    assert_int_equal(x.api->get_long(&x.sv, "total", &l), 0);
    assert_true(l == INT64_MIN);
    assert_int_equal(x.api->set_double(&x.sv, "ratio", 0.25), 0);
    assert_int_equal(x.api->get_double(&x.sv, "ratio", &d), 0);
    assert_true(d == 0.25);
    assert_int_equal(x.api->set_bool(&x.sv, "flag", false), 0);
    assert_int_equal(x.api->get_bool(&x.sv, "flag", &b), 0);
    assert_false(b);
    /* not NUL-terminated at len */
    assert_int_equal(x.api->set_string(&x.sv, "label", "abcdef", 3), 0);
    assert_int_equal(x.api->get_string(&x.sv, "label", &p, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "abc\0", 4);
    assert_int_equal(x.api->set_string(&x.sv, "blob", "\0\1", 2), 0);
    assert_int_equal(x.api->get_string(&x.sv, "blob", &p, &len), 0);
    assert_int_equal(len, 2);
    assert_int_equal(x.api->set_enum(&x.sv, "color", "BLUE"), 0);
    assert_int_equal(x.api->get_enum(&x.sv, "color", &p), 0);
    assert_string_equal(p, "BLUE");
    assert_int_equal(x.api->set_enum(&x.sv, "color", "PINK"), STELE_EINVAL);
    assert_int_equal(x.api->get_enum(&x.sv, "color", &p), 0);
    assert_string_equal(p, "BLUE");
    avro_value_decref(&x.v);
}

static void test_unions_select_branches_by_type_and_name(void **state)
{
    vfx x = everything(state);
    const char *branch, *p;
    size_t len;
    bool null;
    stele_value b, o;
    assert_int_equal(x.api->is_null(&x.sv, "memo", &null), 0);
    assert_true(null);
    assert_int_equal(x.api->get_branch(&x.sv, "memo", &branch, &b), 0);
    assert_string_equal(branch, "null");
    /* a setter of the branch's type selects it */
    assert_int_equal(x.api->set_string(&x.sv, "memo", "m", 1), 0);
    assert_int_equal(x.api->get_branch(&x.sv, "memo", &branch, NULL), 0);
    assert_string_equal(branch, "string");
    assert_int_equal(x.api->is_null(&x.sv, "memo", &null), 0);
    assert_false(null);
    assert_int_equal(x.api->set_null(&x.sv, "memo"), 0);
    assert_int_equal(x.api->is_null(&x.sv, "memo", &null), 0);
    assert_true(null);
    assert_int_equal(x.api->set_long(&x.sv, "memo", 1), STELE_EINVAL);
    /* a record branch by full or short name; its unions get a branch */
    assert_int_equal(x.api->get_branch(&x.sv, "pick", &branch, NULL), 0);
    assert_string_equal(branch, "test.Owner");
    assert_int_equal(x.api->set_branch(&x.sv, "extra", "test.Owner", &o), 0);
    assert_int_equal(x.api->set_string(&o, "name", "ext", 3), 0);
    assert_int_equal(x.api->set_branch(&x.sv, "extra", "Owner", &o), 0);
    assert_int_equal(x.api->get_string(&o, "name", &p, &len), 0);
    assert_int_equal(len, 3); /* the same branch keeps its value */
    assert_int_equal(x.api->get_branch(&o, "ref", &branch, NULL), 0);
    assert_string_equal(branch, "null");
    assert_int_equal(x.api->set_long(&o, "ref", 12), 0);
    assert_int_equal(x.api->get_branch(&o, "ref", &branch, NULL), 0);
    assert_string_equal(branch, "long");
    assert_int_equal(x.api->set_branch(&x.sv, "extra", "test.Nope", &o),
                     STELE_EINVAL);
    assert_int_equal(x.api->set_null(&x.sv, "pick"), 0);
    assert_int_equal(x.api->set_null(&x.sv, "extra"), 0);
    assert_int_equal(x.api->set_branch(&x.sv, "extra", "test.Owner", &o), 0);
    /* everything set through the API encodes */
    stele_buf buf = {0};
    stele_err err = {0};
    assert_int_equal(stele_codec_encode(x.fx->codec, x.s, &x.v, &buf, &err), 0);
    stele_buf_free(&buf);
    avro_value_decref(&x.v);
}

static void test_arrays_append_get_and_bound_index(void **state)
{
    vfx x = everything(state);
    size_t n;
    stele_value e;
    const char *p;
    size_t len;
    assert_int_equal(x.api->array_size(&x.sv, "tags", &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(x.api->array_get(&x.sv, "tags", 2, &e), STELE_ENOTFOUND);
    assert_int_equal(x.api->array_append(&x.sv, "owners", &e), 0);
    assert_int_equal(x.api->set_string(&e, "name", "new", 3), 0);
    assert_int_equal(x.api->array_size(&x.sv, "owners", &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(x.api->array_get(&x.sv, "owners", 1, &e), 0);
    assert_int_equal(x.api->get_string(&e, "name", &p, &len), 0);
    assert_memory_equal(p, "new", 3);
    bool null;
    assert_int_equal(x.api->is_null(&e, "ref", &null), 0);
    assert_true(null);
    stele_buf buf = {0};
    stele_err err = {0};
    assert_int_equal(stele_codec_encode(x.fx->codec, x.s, &x.v, &buf, &err), 0);
    stele_buf_free(&buf);
    avro_value_decref(&x.v);
}

static void test_copy_same_schema_only(void **state)
{
    vfx x = everything(state);
    avro_value_t d = codec_new_value(x.s);
    stele_value sd = stele_value_wrap(&d);
    assert_int_equal(x.api->set_string(&x.sv, "id", "copied", 6), 0);
    assert_int_equal(x.api->set_string(&x.sv, "memo", "m", 1), 0);
    stele_value o;
    assert_int_equal(x.api->array_append(&x.sv, "tags", &o), 0);
    assert_int_equal(x.api->copy(&sd, &x.sv), 0);
    assert_true(avro_value_equal(&x.v, &d));
    assert_int_equal(x.api->copy(&sd, &sd), 0);
    avro_value_t other = codec_new_value(codec_schema(x.fx, "test.Order", 1));
    stele_value so = stele_value_wrap(&other);
    assert_int_equal(x.api->copy(&sd, &so), STELE_EINVAL);
    /* a nested record copies into a record of the same type */
    stele_value owner, backup;
    assert_int_equal(x.api->get_record(&x.sv, "owner", &owner), 0);
    assert_int_equal(x.api->get_record(&sd, "backup", &backup), 0);
    assert_int_equal(x.api->copy(&backup, &owner), 0);
    avro_value_decref(&other);
    avro_value_decref(&d);
    avro_value_decref(&x.v);
}

const struct CMUnitTest codec_value_tests[] = {
    cmocka_unit_test_setup_teardown(
        test_getters_read_defaults_and_promote_numbers, codec_fx_setup,
        codec_fx_teardown),
    cmocka_unit_test_setup_teardown(
        test_wrong_type_is_einval_and_missing_field_enotfound, codec_fx_setup,
        codec_fx_teardown),
    cmocka_unit_test_setup_teardown(test_setters_write_check_ranges_and_symbols,
                                    codec_fx_setup, codec_fx_teardown),
    cmocka_unit_test_setup_teardown(
        test_unions_select_branches_by_type_and_name, codec_fx_setup,
        codec_fx_teardown),
    cmocka_unit_test_setup_teardown(test_arrays_append_get_and_bound_index,
                                    codec_fx_setup, codec_fx_teardown),
    cmocka_unit_test_setup_teardown(test_copy_same_schema_only, codec_fx_setup,
                                    codec_fx_teardown),
};
const size_t codec_value_tests_n =
    sizeof codec_value_tests / sizeof codec_value_tests[0];
