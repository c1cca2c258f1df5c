/*
 * test_codec.c — the codec: the catalogue read from schemas/, the embedded
 * registry on a real SQLite log, and (in codec_*_tests.c) the wire format,
 * defaults, JSON and the plugin value accessors.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec_test.h"

void codec_rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            codec_rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int codec_fx_setup(void **state)
{
    codec_fx *fx = calloc(1, sizeof *fx);
    stele_err err = {0};
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/stele-codec-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->log_path, sizeof fx->log_path, "%s/log.db", fx->dir);
    if (stele_log_open_sqlite(fx->log_path, &fx->log, &err) ||
        stele_registry_open_embedded(fx->log, &fx->reg, &err) ||
        stele_codec_new(CODEC_FIXTURES, fx->reg, &fx->codec, &err)) {
        fprintf(stderr, "codec fixture: %s\n", err.msg);
        return -1;
    }
    stele_value_fill_api(&fx->api);
    *state = fx;
    return 0;
}

int codec_fx_teardown(void **state)
{
    codec_fx *fx = *state;
    stele_codec_free(fx->codec);
    stele_registry_close(fx->reg);
    stele_log_close(fx->log);
    codec_rm_tree(fx->dir);
    free(fx);
    return 0;
}

const stele_schema *codec_schema(codec_fx *fx, const char *name, int version)
{
    const stele_schema *s = NULL;
    stele_err err = {0};
    if (stele_codec_schema(fx->codec, name, version, &s, &err))
        fail_msg("%s v%d: %s", name, version, err.msg);
    return s;
}

avro_value_t codec_new_value(const stele_schema *s)
{
    avro_value_t v;
    stele_err err = {0};
    if (stele_codec_value_new(s, &v, &err))
        fail_msg("value_new %s: %s", s->name, err.msg);
    return v;
}

json_t *codec_json(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!j)
        fail_msg("bad test JSON: %s: %s", text, jerr.text);
    return j;
}

/* ------------------------------------------------------------------ */
/* Catalogue                                                            */

static void test_catalogue_reads_every_avsc_recursively_sorted(void **state)
{
    codec_fx *fx = *state;
    const stele_schema *const *list;
    size_t n = stele_codec_catalogue(fx->codec, &list);
    assert_int_equal(n, 6);
    const char *want[] = {"test.Choice",     "test.Deposited", "test.Deposited",
                          "test.Everything", "test.Node",      "test.Order"};
    int versions[] = {1, 1, 2, 1, 1, 1};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(list[i]->name, want[i]);
        assert_int_equal(list[i]->version, versions[i]);
        assert_int_equal(list[i]->id, 0); /* registered lazily */
    }
}

static void test_catalogue_keeps_original_text(void **state)
{
    codec_fx *fx = *state;
    const stele_schema *s = codec_schema(fx, "test.Everything", 1);
    FILE *f = fopen(CODEC_FIXTURES "/test/test.Everything.v1.avsc", "rb");
    assert_non_null(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_string_equal(s->text, buf);
    assert_non_null(strstr(s->text, "\"doc\""));
}

static void test_schema_unknown_name_or_version_is_enotfound(void **state)
{
    codec_fx *fx = *state;
    const stele_schema *s;
    stele_err err = {0};
    assert_int_equal(
        stele_codec_schema(fx->codec, "test.Deposited", 9, &s, &err),
        STELE_ENOTFOUND);
    assert_err_has(err, "test.Deposited v9");
    /* the file it expected and where it looked: before, only "in the
     * catalogue" */
    assert_err_has(err,
                   "expected a file test.Deposited.v9.avsc in " CODEC_FIXTURES);
    assert_int_equal(stele_codec_schema(fx->codec, "nope.Nope", 1, &s, &err),
                     STELE_ENOTFOUND);
    assert_err_has(err, "(0 other versions of nope.Nope there)");
}

/* Writes one file into a fresh folder and opens a codec on it. */
static int codec_on_file(codec_fx *fx, const char *name, const char *text,
                         stele_err *err)
{
    char dir[256], path[512];
    snprintf(dir, sizeof dir, "%s/schemas", fx->dir);
    codec_rm_tree(dir);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    stele_codec *c = NULL;
    int rc = stele_codec_new(dir, fx->reg, &c, err);
    stele_codec_free(c);
    return rc;
}

static void test_catalogue_parse_error_names_the_file(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    assert_int_equal(codec_on_file(fx, "x.Broken.v1.avsc",
                                   "{\"type\": \"record\", \"name\": ", &err),
                     STELE_EINVAL);
    assert_err_has(err, "x.Broken.v1.avsc");
    assert_int_equal(
        codec_on_file(fx, "x.Bad.v1.avsc",
                      "{\"type\":\"record\",\"name\":\"x.Bad\",\"fields\":["
                      "{\"name\":\"a\",\"type\":\"nosuchtype\"}]}",
                      &err),
        STELE_EINVAL);
    assert_err_has(err, "x.Bad.v1.avsc");
}

static void test_catalogue_name_mismatch_names_the_file(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    assert_int_equal(
        codec_on_file(fx, "x.Wrong.v1.avsc",
                      "{\"type\":\"record\",\"name\":\"Other\",\"namespace\":"
                      "\"x\",\"fields\":[]}",
                      &err),
        STELE_EINVAL);
    assert_err_has(err, "x.Wrong.v1.avsc");
    assert_err_has(err, "x.Other");
}

static void test_catalogue_bad_file_names_and_defaults_are_errors(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    const char *ok = "{\"type\":\"record\",\"name\":\"x.A\",\"fields\":[]}";
    assert_int_equal(codec_on_file(fx, "x.A.avsc", ok, &err), STELE_EINVAL);
    assert_err_has(err, "x.A.avsc");
    assert_int_equal(codec_on_file(fx, "x.A.v0.avsc", ok, &err), STELE_EINVAL);
    assert_int_equal(codec_on_file(fx, "x.A.v1.avsc", ok, &err), 0);
    assert_int_equal(codec_on_file(fx, "x.A.v1.avsc", "\"string\"", &err),
                     STELE_EINVAL);
    assert_err_has(err, "not a record");
    /* a default that does not fit its field is caught at load */
    assert_int_equal(
        codec_on_file(fx, "x.D.v1.avsc",
                      "{\"type\":\"record\",\"name\":\"x.D\",\"fields\":["
                      "{\"name\":\"n\",\"type\":\"int\",\"default\":\"x\"}]}",
                      &err),
        STELE_EINVAL);
    assert_err_has(err, "x.D.v1.avsc");
    assert_err_has(err, "n: expected int, got string");
}

static void test_catalogue_missing_folder_is_enotfound(void **state)
{
    codec_fx *fx = *state;
    stele_codec *c = NULL;
    stele_err err = {0};
    assert_int_equal(
        stele_codec_new("/nonexistent/stele/schemas", fx->reg, &c, &err),
        STELE_ENOTFOUND);
    assert_err_has(err, "/nonexistent/stele/schemas");
}

/* ------------------------------------------------------------------ */
/* Registry                                                             */

static void
test_registry_register_is_idempotent_per_normalized_text(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    int32_t a, b, c, d;
    const char *t1 = "{\"type\":\"record\",\"name\":\"r.A\",\"fields\":[]}";
    const char *t2 = "{ \"name\": \"r.A\",\n \"fields\": [], \"type\": "
                     "\"record\" }";
    assert_int_equal(stele_registry_register(fx->reg, "r.A", t1, &a, &err), 0);
    assert_int_equal(stele_registry_register(fx->reg, "r.A", t2, &b, &err), 0);
    assert_int_equal(a, b);
    /* same text, another subject: another id */
    assert_int_equal(stele_registry_register(fx->reg, "other", t1, &c, &err),
                     0);
    assert_int_not_equal(a, c);
    const char *text;
    assert_int_equal(stele_registry_lookup(fx->reg, a, &text, &err), 0);
    assert_string_equal(text, t1); /* kept as written */
    assert_int_equal(
        stele_registry_register(fx->reg, "r.A", "not json", &d, &err),
        STELE_EINVAL);
}

static void test_registry_ids_stable_across_reopen(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    const stele_schema *v1 = codec_schema(fx, "test.Deposited", 1);
    const stele_schema *v2 = codec_schema(fx, "test.Deposited", 2);
    int32_t id1 = v1->id, id2 = v2->id;
    assert_true(id1 > 0);
    assert_true(id2 > id1);

    stele_codec_free(fx->codec);
    stele_registry_close(fx->reg);
    stele_log_close(fx->log);
    fx->codec = NULL;
    fx->reg = NULL;
    assert_int_equal(stele_log_open_sqlite(fx->log_path, &fx->log, &err), 0);
    assert_int_equal(stele_registry_open_embedded(fx->log, &fx->reg, &err), 0);
    assert_int_equal(stele_codec_new(CODEC_FIXTURES, fx->reg, &fx->codec, &err),
                     0);
    /* lookups work before anything registers again */
    const char *text;
    assert_int_equal(stele_registry_lookup(fx->reg, id2, &text, &err), 0);
    assert_non_null(strstr(text, "channel"));
    /* in the other order, still the same ids */
    assert_int_equal(codec_schema(fx, "test.Deposited", 2)->id, id2);
    assert_int_equal(codec_schema(fx, "test.Deposited", 1)->id, id1);
}

static void test_registry_sees_schemas_another_handle_registered(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    stele_log *log2;
    stele_registry *reg2;
    assert_int_equal(stele_log_open_sqlite(fx->log_path, &log2, &err), 0);
    assert_int_equal(stele_registry_open_embedded(log2, &reg2, &err), 0);
    int32_t id, again;
    const char *t = "{\"type\":\"record\",\"name\":\"r.B\",\"fields\":[]}";
    assert_int_equal(stele_registry_register(reg2, "r.B", t, &id, &err), 0);
    const char *text;
    assert_int_equal(stele_registry_lookup(fx->reg, id, &text, &err), 0);
    assert_string_equal(text, t);
    assert_int_equal(stele_registry_register(fx->reg, "r.B", t, &again, &err),
                     0);
    assert_int_equal(again, id);
    stele_registry_close(reg2);
    stele_log_close(log2);
}

static void test_registry_unknown_id_is_enotfound(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    const char *text;
    assert_int_equal(stele_registry_lookup(fx->reg, 4242, &text, &err),
                     STELE_ENOTFOUND);
    assert_err_has(err, "4242");
    assert_int_equal(stele_registry_lookup(fx->reg, 0, &text, &err),
                     STELE_ENOTFOUND);
    assert_int_equal(stele_registry_lookup(fx->reg, -3, &text, &err),
                     STELE_ENOTFOUND);
}

static void test_schema_by_id_returns_catalogue_or_fetched(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    const stele_schema *v1 = codec_schema(fx, "test.Deposited", 1), *s;
    assert_int_equal(stele_codec_schema_by_id(fx->codec, v1->id, &s, &err), 0);
    assert_ptr_equal(s, v1);
    int32_t id;
    const char *t = "{\"type\":\"record\",\"name\":\"r.C\",\"fields\":[]}";
    assert_int_equal(stele_registry_register(fx->reg, "r.C", t, &id, &err), 0);
    assert_int_equal(stele_codec_schema_by_id(fx->codec, id, &s, &err), 0);
    assert_string_equal(s->name, "r.C");
    assert_int_equal(s->version, 0);
    assert_int_equal(s->id, id);
    assert_int_equal(stele_codec_schema_by_id(fx->codec, 999, &s, &err),
                     STELE_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_catalogue_reads_every_avsc_recursively_sorted, codec_fx_setup,
            codec_fx_teardown),
        cmocka_unit_test_setup_teardown(test_catalogue_keeps_original_text,
                                        codec_fx_setup, codec_fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_schema_unknown_name_or_version_is_enotfound, codec_fx_setup,
            codec_fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_catalogue_parse_error_names_the_file, codec_fx_setup,
            codec_fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_catalogue_name_mismatch_names_the_file, codec_fx_setup,
            codec_fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_catalogue_bad_file_names_and_defaults_are_errors,
            codec_fx_setup, codec_fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_catalogue_missing_folder_is_enotfound, codec_fx_setup,
            codec_fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_registry_register_is_idempotent_per_normalized_text,
            codec_fx_setup, codec_fx_teardown),
        cmocka_unit_test_setup_teardown(test_registry_ids_stable_across_reopen,
                                        codec_fx_setup, codec_fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_registry_sees_schemas_another_handle_registered,
            codec_fx_setup, codec_fx_teardown),
        cmocka_unit_test_setup_teardown(test_registry_unknown_id_is_enotfound,
                                        codec_fx_setup, codec_fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_schema_by_id_returns_catalogue_or_fetched, codec_fx_setup,
            codec_fx_teardown),
    };
    int failed = cmocka_run_group_tests_name("catalogue and registry", tests,
                                             NULL, NULL);
    failed += _cmocka_run_group_tests("wire", codec_wire_tests,
                                      codec_wire_tests_n, NULL, NULL);
    failed += _cmocka_run_group_tests("defaults and JSON", codec_json_tests,
                                      codec_json_tests_n, NULL, NULL);
    failed += _cmocka_run_group_tests("value accessors", codec_value_tests,
                                      codec_value_tests_n, NULL, NULL);
    return failed ? 1 : 0;
}
