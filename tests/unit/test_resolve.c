/*
 * test_resolve.c — Avro schema resolution in the codec: a value written
 * with one version of a record is read as another, per the specification's
 * rules, with the defaults avro-c ignores. Schemas:
 * tests/fixtures/schemas/evolution.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/codec.h"
#include "codec/value.h"

#define EVO_SCHEMAS STELE_SOURCE_DIR "/tests/fixtures/schemas/evolution"

typedef struct fx {
    char dir[64], log_path[128];
    stele_log *log;
    stele_registry *reg;
    stele_codec *codec;
    stele_buf buf;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    stele_err err = {0};
    snprintf(f->dir, sizeof f->dir, "/tmp/stele-resolve-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->log_path, sizeof f->log_path, "%s/log.db", f->dir);
    if (stele_log_open_sqlite(f->log_path, &f->log, &err) ||
        stele_registry_open_embedded(f->log, &f->reg, &err) ||
        stele_codec_new(EVO_SCHEMAS, f->reg, &f->codec, &err)) {
        fprintf(stderr, "fixture: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    stele_buf_free(&f->buf);
    stele_codec_free(f->codec);
    stele_registry_close(f->reg);
    stele_log_close(f->log);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static const stele_schema *schema(fx *f, const char *name, int version)
{
    const stele_schema *s;
    stele_err err = {0};
    if (stele_codec_schema(f->codec, name, version, &s, &err))
        fail_msg("%s", err.msg);
    return s;
}

/* Encodes JSON as name vN into f->buf. */
static void encode(fx *f, const char *name, int version, const char *json)
{
    const stele_schema *s = schema(f, name, version);
    avro_value_t v;
    stele_err err = {0};
    json_error_t jerr;
    json_t *j = json_loads(json, 0, &jerr);
    if (!j)
        fail_msg("bad JSON %s: %s", json, jerr.text);
    assert_int_equal(stele_codec_value_new(s, &v, &err), 0);
    if (stele_codec_from_json(s, j, &v, &err) ||
        stele_codec_encode(f->codec, s, &v, &f->buf, &err))
        fail_msg("%s", err.msg);
    json_decref(j);
    avro_value_decref(&v);
}

/* Decodes f->buf as name vN: its JSON, or NULL with err set. */
static json_t *decode(fx *f, const char *name, int version, stele_err *err)
{
    const stele_schema *s = schema(f, name, version);
    avro_value_t v;
    assert_int_equal(stele_codec_value_new(s, &v, err), 0);
    json_t *out = NULL;
    if (stele_codec_decode(f->codec, f->buf.data, f->buf.len, s, &v, err) == 0)
        out = stele_codec_to_json(&v);
    avro_value_decref(&v);
    return out;
}

#define assert_err_has(err, needle)                                            \
    do {                                                                       \
        if (!strstr((err).msg, (needle)))                                      \
            fail_msg("error \"%s\" lacks \"%s\"", (err).msg, (needle));        \
    } while (0)

static void assert_json(json_t *got, const char *want)
{
    json_t *w = json_loads(want, 0, NULL);
    assert_non_null(w);
    if (!got || !json_equal(got, w)) {
        char *g = got ? json_dumps(got, JSON_SORT_KEYS) : NULL;
        fail_msg("got %s\nwant %s", g ? g : "(null)", want);
    }
    json_decref(w);
    json_decref(got);
}

static const char *rec_v1 =
    "{\"id\": \"r1\", \"n\": -5, \"f\": 1.5, \"s\": \"str\", \"b\": \"byt\","
    " \"color\": \"BLUE\", \"legacy\": [\"a\", \"b\"], \"old_name\": 42,"
    " \"u\": {\"int\": 9}, \"plain\": 3, \"items\": [{\"a\": 1}, {\"a\": 2}],"
    " \"m\": {\"k\": 4}, \"inner\": {\"x\": 8}}";

static void test_every_rule_reads_v1_as_v2(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    encode(f, "evo.Rec", 1, rec_v1);
    /* int->long, float->double, string->bytes, bytes->string, enum by
     * name, skipped writer field, field alias, union branch promoted,
     * non-union into a union, nested defaults in array items, map values
     * promoted, record alias, reader-only fields from their defaults */
    assert_json(decode(f, "evo.Rec", 2, &err),
                "{\"id\": \"r1\", \"n\": -5, \"f\": 1.5, \"s\": \"str\","
                " \"b\": \"byt\", \"color\": \"BLUE\", \"new_name\": 42,"
                " \"u\": 9, \"plain\": 3.0,"
                " \"items\": [{\"a\": 1, \"tag\": \"x\"},"
                "             {\"a\": 2, \"tag\": \"x\"}],"
                " \"m\": {\"k\": 4.0}, \"inner\": {\"x\": 8, \"y\": 7},"
                " \"added\": \"dflt\", \"cfg\": {\"k\": 3}, \"opt\": null}");
}

static void test_writer_enum_symbol_takes_reader_default(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    json_t *j;
    json_t *in = json_loads(rec_v1, 0, NULL);
    json_object_set_new(in, "color", json_string("GREEN"));
    char *text = json_dumps(in, 0);
    encode(f, "evo.Rec", 1, text);
    free(text);
    json_decref(in);
    j = decode(f, "evo.Rec", 2, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "color")),
                        "OTHER");
    json_decref(j);
}

static void test_null_branch_and_empty_containers(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    json_t *in = json_loads(rec_v1, 0, NULL);
    json_object_set_new(in, "u", json_null());
    json_object_set_new(in, "items", json_array());
    json_object_set_new(in, "m", json_object());
    char *text = json_dumps(in, 0);
    encode(f, "evo.Rec", 1, text);
    free(text);
    json_decref(in);
    json_t *j = decode(f, "evo.Rec", 2, &err);
    assert_non_null(j);
    assert_true(json_is_null(json_object_get(j, "u")));
    assert_int_equal(json_array_size(json_object_get(j, "items")), 0);
    json_decref(j);
}

static void test_reader_field_without_default_is_an_error(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    encode(f, "evo.Strict", 1, "{\"a\": 1}");
    assert_null(decode(f, "evo.Strict", 2, &err));
    assert_int_equal(err.code, STELE_EINVAL);
    assert_err_has(err, "evo.Strict v1");
    assert_err_has(err, "evo.Strict v2");
    assert_err_has(err, "reader field evo.Strict.b is missing from the "
                        "writer and has no default");
}

static void test_type_change_is_an_error(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    encode(f, "evo.Strict", 1, "{\"a\": 1}");
    assert_null(decode(f, "evo.Strict", 3, &err));
    assert_err_has(err, "a: the writer's int cannot be read as the "
                        "reader's string");
}

static void test_enum_symbol_without_default_fails_when_read(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    encode(f, "evo.Choice", 1, "{\"c\": \"A\", \"u\": null}");
    json_t *j = decode(f, "evo.Choice", 2, &err);
    assert_non_null(j); /* symbol A and the null branch resolve */
    json_decref(j);
    encode(f, "evo.Choice", 1, "{\"c\": \"B\", \"u\": null}");
    assert_null(decode(f, "evo.Choice", 2, &err));
    assert_err_has(err, "symbol B is not in the reader's enum");
    assert_err_has(err, "no default");
}

static void test_union_branch_without_match_fails_when_read(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    encode(f, "evo.Choice", 1, "{\"c\": \"A\", \"u\": {\"string\": \"s\"}}");
    assert_null(decode(f, "evo.Choice", 2, &err));
    assert_err_has(err, "the writer's string matches no branch");
}

static void test_corrupt_payload_names_type_and_versions(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    encode(f, "evo.Rec", 1, rec_v1);
    f->buf.len -= 3; /* truncated */
    assert_null(decode(f, "evo.Rec", 2, &err));
    assert_err_has(err, "evo.Rec v2");
    assert_err_has(err, "truncated");
    encode(f, "evo.Rec", 1, rec_v1);
    f->buf.data[1] = 0x7f; /* an id no registry holds */
    assert_null(decode(f, "evo.Rec", 2, &err));
    assert_int_equal(err.code, STELE_ENOTFOUND);
}

static void test_writer_fetched_by_id_gets_its_catalogue_version(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    /* The text of evo.Strict v1, keys reordered: registered by another
     * process, unknown to this codec's catalogue lookups so far. */
    int32_t id;
    assert_int_equal(
        stele_registry_register(f->reg, "evo.Strict",
                                "{\"fields\": [{\"type\": \"int\", \"name\":"
                                " \"a\"}], \"namespace\": \"evo\", \"name\":"
                                " \"Strict\", \"type\": \"record\"}",
                                &id, &err),
        0);
    const stele_schema *w;
    assert_int_equal(stele_codec_schema_by_id(f->codec, id, &w, &err), 0);
    assert_string_equal(w->name, "evo.Strict");
    assert_int_equal(w->version, 1);
    assert_int_equal(
        stele_registry_register(f->reg, "evo.Strict",
                                "{\"type\": \"record\", \"name\": "
                                "\"evo.Strict\", \"fields\": [{\"name\": "
                                "\"zz\", \"type\": \"int\"}]}",
                                &id, &err),
        0);
    assert_int_equal(stele_codec_schema_by_id(f->codec, id, &w, &err), 0);
    assert_int_equal(w->version, 0); /* no file matches: resolution only */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_every_rule_reads_v1_as_v2),
        T(test_writer_enum_symbol_takes_reader_default),
        T(test_null_branch_and_empty_containers),
        T(test_reader_field_without_default_is_an_error),
        T(test_type_change_is_an_error),
        T(test_enum_symbol_without_default_fails_when_read),
        T(test_union_branch_without_match_fails_when_read),
        T(test_corrupt_payload_names_type_and_versions),
        T(test_writer_fetched_by_id_gets_its_catalogue_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
