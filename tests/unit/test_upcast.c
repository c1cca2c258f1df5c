/*
 * test_upcast.c — upcaster chains: in the codec (chains built and checked
 * at load, walked per stored event, one event into several, renamed
 * types), and in the engine with the bank example: events stored as
 * bank.Deposited v1 before the change are read as v2 by the aggregate's
 * rebuild, by the projectors and by `stele events`.
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
#include "config/config.h"
#include "engine/engine.h"

#include "../fixtures/evo_upcasters.h"

#define EVO_SCHEMAS STELE_SOURCE_DIR "/tests/fixtures/schemas/evolution"
#define PLUGINS STELE_BUILD_DIR "/plugins/"
#define TEST_PLUGINS STELE_BUILD_DIR "/test-plugins/"
#define UPCASTERS STELE_BUILD_DIR "/upcasters/"

#define assert_err_has(err, needle)                                            \
    do {                                                                       \
        if (!strstr((err).msg, (needle)))                                      \
            fail_msg("error \"%s\" lacks \"%s\"", (err).msg, (needle));        \
    } while (0)

/* ------------------------------------------------------------------ */
/* The codec                                                            */

typedef struct fx {
    char dir[64], log_path[128];
    stele_log *log;
    stele_registry *reg;
    stele_codec *codec;
    stele_codec_events *ev;
    stele_host_api api;
    stele_buf buf;
    const char *want_name[4];
    int want_version[4];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    stele_err err = {0};
    snprintf(f->dir, sizeof f->dir, "/tmp/stele-upcast-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->log_path, sizeof f->log_path, "%s/log.db", f->dir);
    if (stele_log_open_sqlite(f->log_path, &f->log, &err) ||
        stele_registry_open_embedded(f->log, &f->reg, &err) ||
        stele_codec_new(EVO_SCHEMAS, f->reg, &f->codec, &err) ||
        stele_codec_events_new(f->codec, &f->ev, &err)) {
        fprintf(stderr, "fixture: %s\n", err.msg);
        return -1;
    }
    stele_value_fill_api(&f->api);
    f->api.upcast_emit = stele_codec_upcast_emit;
    evo_host = &f->api;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    stele_buf_free(&f->buf);
    stele_codec_events_free(f->ev);
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

static const stele_schema *wants(void *opaque, const char *type)
{
    fx *f = opaque;
    for (int i = 0; i < 4 && f->want_name[i]; i++)
        if (strcmp(f->want_name[i], type) == 0) {
            const stele_schema *s;
            stele_err err = {0};
            if (stele_codec_schema(f->codec, type, f->want_version[i], &s,
                                   &err))
                fail_msg("%s", err.msg);
            return s;
        }
    return NULL;
}

static void add(fx *f, const stele_upcaster_def *d, const char *where)
{
    stele_err err = {0};
    if (stele_codec_add_upcaster(f->codec, d, NULL, where, &err))
        fail_msg("%s", err.msg);
}

static void encode(fx *f, const char *name, int version, const char *json)
{
    const stele_schema *s;
    avro_value_t v;
    stele_err err = {0};
    json_t *j = json_loads(json, 0, NULL);
    assert_non_null(j);
    if (stele_codec_schema(f->codec, name, version, &s, &err) ||
        stele_codec_value_new(s, &v, &err))
        fail_msg("%s", err.msg);
    if (stele_codec_from_json(s, j, &v, &err) ||
        stele_codec_encode(f->codec, s, &v, &f->buf, &err))
        fail_msg("%s", err.msg);
    json_decref(j);
    avro_value_decref(&v);
}

/* Reads f->buf; returns how many events, checks their JSON. */
static size_t read_as(fx *f, const char *const *want_json, stele_err *err)
{
    stele_codec_events_clear(f->ev);
    if (stele_codec_read_event(f->codec, f->buf.data, f->buf.len, wants, f,
                               f->ev, err))
        return 0;
    const stele_codec_event *it;
    size_t n = stele_codec_events_list(f->ev, &it);
    for (size_t i = 0; i < n && want_json && want_json[i]; i++) {
        json_t *got = stele_codec_to_json(&it[i].value);
        json_t *w = json_loads(want_json[i], 0, NULL);
        char *g = json_dumps(got, JSON_SORT_KEYS);
        if (!json_equal(got, w))
            fail_msg("event %zu: got %s want %s", i, g, want_json[i]);
        free(g);
        json_decref(got);
        json_decref(w);
    }
    return n;
}

static void test_two_step_chain_then_resolution(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    add(f, &evo_moved_v2, "moved_2_3.so"); /* any order */
    add(f, &evo_moved_v1, "moved_1_2.so");
    assert_int_equal(stele_codec_check_upcasters(f->codec, &err), 0);
    encode(f, "evo.Moved", 1, "{\"cents\": 1234}");
    f->want_name[0] = "evo.Moved";
    f->want_version[0] = 4;
    const char *v4[] = {"{\"amount\": {\"minor\": 1234, \"currency\": "
                        "\"EUR\"}, \"units\": 12, \"note\": \"none\"}",
                        NULL};
    for (int twice = 0; twice < 2; twice++)
        assert_int_equal(read_as(f, v4, &err), 1);
    const stele_codec_event *it;
    stele_codec_events_list(f->ev, &it);
    assert_true(it[0].declared);
    assert_int_equal(it[0].schema->version, 4);
    /* a reader at v2 gets one step only */
    f->want_version[0] = 2;
    const char *v2[] = {
        "{\"amount\": {\"minor\": 1234, \"currency\": \"EUR\"}}", NULL};
    assert_int_equal(read_as(f, v2, &err), 1);
    /* a v3 event needs no upcaster: resolution alone to v4 */
    encode(f, "evo.Moved", 3,
           "{\"amount\": {\"minor\": 5, \"currency\": \"USD\"}, \"units\": "
           "0}");
    f->want_version[0] = 4;
    const char *v3[] = {"{\"amount\": {\"minor\": 5, \"currency\": "
                        "\"USD\"}, \"units\": 0, \"note\": \"none\"}",
                        NULL};
    assert_int_equal(read_as(f, v3, &err), 1);
}

static void test_one_event_into_two_under_a_new_name(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    add(f, &evo_pair_v1, "pair.so");
    assert_int_equal(stele_codec_check_upcasters(f->codec, &err), 0);
    assert_true(stele_codec_has_upcasters(f->codec, "evo.Pair"));
    assert_false(stele_codec_has_upcasters(f->codec, "evo.Half"));
    encode(f, "evo.Pair", 1, "{\"left\": 3, \"right\": 4}");
    f->want_name[0] = "evo.Half";
    f->want_version[0] = 2;
    const char *halves[] = {"{\"value\": 3, \"side\": \"left\"}",
                            "{\"value\": 4, \"side\": \"right\"}", NULL};
    assert_int_equal(read_as(f, halves, &err), 2);
    /* a reader of neither type: the events come back undeclared */
    f->want_name[0] = "evo.Other";
    assert_int_equal(read_as(f, NULL, &err), 2);
    const stele_codec_event *it;
    stele_codec_events_list(f->ev, &it);
    assert_false(it[0].declared);
    assert_string_equal(it[1].schema->name, "evo.Half");
}

static void test_gap_in_chain_is_a_load_error(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    static const stele_upcaster_def three = {"evo.Moved", 3, 4, evo_moved_2_3};
    add(f, &evo_moved_v1, "moved_1_2.so");
    add(f, &three, "moved_3_4.so");
    assert_int_equal(stele_codec_check_upcasters(f->codec, &err), STELE_EINVAL);
    assert_err_has(err, "upcaster chain of evo.Moved has a gap");
    assert_err_has(err, "moved_1_2.so upcasts v1 -> v2");
    assert_err_has(err, "moved_3_4.so v3 -> v4");
    assert_err_has(err, "nothing upcasts v2 -> v3");
}

static void test_loop_and_skip_are_refused(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    static const stele_upcaster_def back = {"evo.Moved", 2, 1, evo_moved_1_2};
    static const stele_upcaster_def same = {"evo.Moved", 2, 2, evo_moved_1_2};
    static const stele_upcaster_def skip = {"evo.Moved", 1, 3, evo_moved_1_2};
    assert_int_equal(
        stele_codec_add_upcaster(f->codec, &back, NULL, "back.so", &err),
        STELE_EINVAL);
    assert_err_has(err, "back.so: upcaster evo.Moved v2 -> v1 goes backwards");
    assert_err_has(err, "loop");
    assert_int_equal(
        stele_codec_add_upcaster(f->codec, &same, NULL, "same.so", &err),
        STELE_EINVAL);
    assert_err_has(err, "goes nowhere");
    assert_int_equal(
        stele_codec_add_upcaster(f->codec, &skip, NULL, "skip.so", &err),
        STELE_EINVAL);
    assert_err_has(err, "skips versions");
}

static void test_duplicate_and_unknown_schema_are_refused(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    add(f, &evo_moved_v1, "first.so");
    assert_int_equal(stele_codec_add_upcaster(f->codec, &evo_moved_v1, NULL,
                                              "second.so", &err),
                     STELE_EINVAL);
    assert_err_has(err, "second.so: evo.Moved v1 -> v2 is already upcast by "
                        "first.so");
    static const stele_upcaster_def nope = {"evo.Nope", 1, 2, evo_moved_1_2};
    add(f, &nope, "nope.so");
    assert_int_equal(stele_codec_check_upcasters(f->codec, &err), STELE_EINVAL);
    assert_err_has(err, "nope.so: upcaster reads evo.Nope v1, which has no "
                        "schema file");
}

static int failing(void *ctx, const stele_value *old, stele_upcast_out *out,
                   stele_err *err)
{
    (void)ctx, (void)old, (void)out;
    snprintf(err->msg, sizeof err->msg, "cents out of range");
    return STELE_EINVAL;
}

static int silent(void *ctx, const stele_value *old, stele_upcast_out *out,
                  stele_err *err)
{
    (void)ctx, (void)old, (void)out, (void)err;
    return 0;
}

static void test_upcaster_failure_is_an_error_naming_it(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    static const stele_upcaster_def bad = {"evo.Moved", 1, 2, failing};
    add(f, &bad, "bad.so");
    assert_int_equal(stele_codec_check_upcasters(f->codec, &err), 0);
    encode(f, "evo.Moved", 1, "{\"cents\": 1}");
    f->want_name[0] = "evo.Moved";
    f->want_version[0] = 2;
    assert_int_equal(read_as(f, NULL, &err), 0);
    assert_int_equal(err.code, STELE_EPLUGIN);
    assert_err_has(err, "evo.Moved v1");
    assert_err_has(err, "upcaster bad.so (evo.Moved v1 -> v2) failed: cents "
                        "out of range");
    size_t n = stele_codec_events_list(f->ev, &(const stele_codec_event *){0});
    assert_int_equal(n, 0); /* nothing appended */
}

static void test_upcaster_emitting_nothing_is_an_error(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    static const stele_upcaster_def none = {"evo.Moved", 1, 2, silent};
    add(f, &none, "none.so");
    assert_int_equal(stele_codec_check_upcasters(f->codec, &err), 0);
    encode(f, "evo.Moved", 1, "{\"cents\": 1}");
    f->want_name[0] = "evo.Moved";
    f->want_version[0] = 2;
    assert_int_equal(read_as(f, NULL, &err), 0);
    assert_err_has(err, "emitted no event");
}

static void test_without_upcaster_resolution_fails_with_reason(void **state)
{
    fx *f = *state;
    stele_err err = {0};
    assert_int_equal(stele_codec_check_upcasters(f->codec, &err), 0);
    encode(f, "evo.Moved", 1, "{\"cents\": 1}");
    f->want_name[0] = "evo.Moved";
    f->want_version[0] = 2;
    assert_int_equal(read_as(f, NULL, &err), 0);
    assert_int_equal(err.code, STELE_EINVAL);
    assert_err_has(err, "reader field evo.Moved.amount is missing from the "
                        "writer and has no default");
}

/* ------------------------------------------------------------------ */
/* The engine with the bank example                                     */

typedef struct efx {
    char dir[256], config[300];
    stele_config *cfg;
    stele_engine *e;
} efx;

static void eopen(efx *f, const char *const *plugins)
{
    FILE *out = fopen(f->config, "w");
    assert_non_null(out);
    fprintf(out,
            "app: bank\ndata_dir: %s/data\nschemas: %s/schemas\n"
            "log:\n  partitions: 2\nlogging:\n  level: error\nplugins:\n",
            f->dir, STELE_SOURCE_DIR);
    for (size_t i = 0; plugins[i]; i++)
        fprintf(out, "  - %s\n", plugins[i]);
    fclose(out);
    stele_err err = {0};
    if (stele_config_load(f->config, &f->cfg, &err) ||
        stele_engine_open(f->cfg, &f->e, &err))
        fail_msg("open: %s", err.msg);
}

static void eclose(efx *f)
{
    stele_engine_close(f->e);
    stele_config_free(f->cfg);
    f->e = NULL;
    f->cfg = NULL;
}

static void send(efx *f, const char *json)
{
    stele_err err = {0};
    stele_submitted s;
    json_t *cmd = json_loads(json, 0, NULL), *r = NULL;
    assert_non_null(cmd);
    if (stele_engine_submit_json(f->e, cmd, &s, &err) ||
        stele_engine_wait_result(f->e, &s, 5000, &r, &err))
        fail_msg("%s", err.msg);
    if (strcmp(json_string_value(json_object_get(r, "status")), "accepted"))
        fail_msg("rejected: %s", json_dumps(r, 0));
    json_decref(cmd);
    json_decref(r);
}

static void collect(void *opaque, json_t *ev)
{
    json_array_append_new(opaque, ev);
}

static const char *bank_v2[] = {
    PLUGINS "bank_account.so", PLUGINS "bank_balances.so",
    PLUGINS "bank_daily_totals.so", UPCASTERS "bank_deposited_v1_v2.so", NULL};

/* Writes a1's history with the account as it was before Deposited v2. */
static void write_v1_history(efx *f)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/stele-upcast-e-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->config, sizeof f->config, "%s/stele.yaml", f->dir);
    const char *v1[] = {TEST_PLUGINS "bank_account_dv1.so", NULL};
    eopen(f, v1);
    send(f, "{\"type\":\"bank.OpenAccount\",\"aggregate_id\":\"a1\","
            "\"data\":{\"owner\":\"ann\",\"initial_deposit\":100}}");
    send(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"a1\","
            "\"data\":{\"amount\":50}}");
    send(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"a1\","
            "\"data\":{\"amount\":25}}");
    send(f, "{\"type\":\"bank.Withdraw\",\"aggregate_id\":\"a1\","
            "\"data\":{\"amount\":10}}");
    eclose(f);
}

static void test_v1_events_are_read_as_v2_everywhere(void **state)
{
    (void)state;
    efx f = {0};
    write_v1_history(&f);
    eopen(&f, bank_v2);
    stele_err err = {0};

    /* stele events: the stored v1 deposits come out as v2 */
    json_t *evs = json_array();
    assert_int_equal(
        stele_engine_events(f.e, "Account", "a1", 0, collect, evs, &err), 0);
    assert_int_equal(json_array_size(evs), 4);
    json_t *dep = json_array_get(evs, 1);
    assert_string_equal(json_string_value(json_object_get(dep, "type")),
                        "bank.Deposited");
    assert_int_equal(json_integer_value(json_object_get(dep, "schema_version")),
                     2);
    /* and what is stored, beside the view */
    json_t *stored = json_object_get(dep, "stored");
    assert_string_equal(json_string_value(json_object_get(stored, "type")),
                        "bank.Deposited");
    assert_int_equal(
        json_integer_value(json_object_get(stored, "schema_version")), 1);
    assert_true(json_integer_value(json_object_get(stored, "schema_id")) > 0);
    json_t *want = json_loads("{\"amount\": {\"minor\": 50, \"currency\": "
                              "\"EUR\"}, \"balance\": 150, \"channel\": "
                              "\"unknown\"}",
                              0, NULL);
    assert_true(json_equal(json_object_get(dep, "data"), want));
    json_decref(want);
    json_decref(evs);

    /* the aggregate: a rebuild from the v1 events gives the same state */
    size_t n_events, n_states;
    assert_int_equal(
        stele_engine_replay(f.e, "Account", &n_events, &n_states, &err), 0);
    assert_int_equal(n_events, 4);
    json_t *st;
    assert_int_equal(stele_engine_state(f.e, "Account", "a1", &st, &err), 0);
    json_t *acc = json_object_get(json_object_get(st, "state"), "account");
    assert_int_equal(json_integer_value(json_object_get(acc, "balance")), 165);
    json_decref(st);
    /* new v2 deposits after old v1 ones */
    send(&f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"a1\","
             "\"data\":{\"amount\":5,\"channel\":\"atm\"}}");

    /* the projectors, built from the start of the log: v1 and v2 mixed */
    size_t did;
    assert_int_equal(stele_engine_drain(f.e, &did, &err), 0);
    stele_list_request req = {.page = 1, .page_size = 10};
    json_t *page;
    assert_int_equal(stele_engine_list(f.e, "balances", &req, &page, &err), 0);
    json_t *row = json_array_get(json_object_get(page, "items"), 0);
    assert_int_equal(json_integer_value(json_object_get(row, "balance")), 170);
    json_decref(page);
    assert_int_equal(stele_engine_list(f.e, "daily_totals", &req, &page, &err),
                     0);
    row = json_array_get(json_object_get(page, "items"), 0);
    assert_int_equal(json_integer_value(json_object_get(row, "deposited")),
                     100 + 50 + 25 + 5);
    assert_int_equal(json_integer_value(json_object_get(row, "withdrawn")), 10);
    json_decref(page);
    eclose(&f);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f.dir);
    assert_int_equal(system(cmd), 0);
}

static void test_without_the_upcaster_v1_events_are_errors(void **state)
{
    (void)state;
    efx f = {0};
    write_v1_history(&f);
    const char *no_upcaster[] = {PLUGINS "bank_account.so", NULL};
    FILE *out = fopen(f.config, "w");
    assert_non_null(out);
    fprintf(out,
            "app: bank\ndata_dir: %s/data\nschemas: %s/schemas\n"
            "log:\n  partitions: 2\nlogging:\n  level: error\nplugins:\n"
            "  - %s\n",
            f.dir, STELE_SOURCE_DIR, no_upcaster[0]);
    fclose(out);
    /* a writer does not start: it would write v2 events no v1 reads */
    stele_err err = {0};
    assert_int_equal(stele_config_load(f.config, &f.cfg, &err), 0);
    assert_int_equal(stele_engine_open(f.cfg, &f.e, &err), STELE_EINVAL);
    assert_err_has(err, "bank.Deposited v2: INCOMPATIBLE");
    f.e = NULL;
    /* a reader opens and names the v1 events it cannot read */
    assert_int_equal(stele_engine_open_reader(f.cfg, &f.e, &err), 0);
    json_t *evs = json_array();
    assert_int_not_equal(
        stele_engine_events(f.e, "Account", "a1", 0, collect, evs, &err), 0);
    assert_err_has(err, "bank.Account.events[");
    assert_err_has(err, "@1"); /* the offset of the first deposit */
    assert_err_has(err, "bank.Deposited v1");
    assert_err_has(err, "amount: the writer's long cannot be read as the "
                        "reader's bank.Money");
    json_decref(evs);
    eclose(&f);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f.dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_two_step_chain_then_resolution),
        T(test_one_event_into_two_under_a_new_name),
        T(test_gap_in_chain_is_a_load_error),
        T(test_loop_and_skip_are_refused),
        T(test_duplicate_and_unknown_schema_are_refused),
        T(test_upcaster_failure_is_an_error_naming_it),
        T(test_upcaster_emitting_nothing_is_an_error),
        T(test_without_upcaster_resolution_fails_with_reason),
        cmocka_unit_test(test_v1_events_are_read_as_v2_everywhere),
        cmocka_unit_test(test_without_the_upcaster_v1_events_are_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
