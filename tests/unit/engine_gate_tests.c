/*
 * The schema gate on the embedded log and registry: schemas enter only
 * through a process that writes, and only past the gate; a process that
 * reads registers nothing. Each test works on its own copy of schemas/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "open/open.h"
#include "common/util.h"
#include "engine_test.h"
#include "log/log.h"

/* The bank example with schemas from f->dir/schemas (a copy to edit),
 * and a log (with its registry) of its own. */
static bool auto_register_off; /* the next configs say so */

static void write_copy_config(fixture *f)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "test -d '%s/schemas' || cp -r '%s/schemas' '%s'",
             f->dir, STELE_SOURCE_DIR, f->dir);
    assert_int_equal(system(cmd), 0);
    FILE *out = fopen(f->config, "w");
    assert_non_null(out);
    fprintf(out,
            "app: bank\n"
            "data_dir: %s/gate-data\n"
            "schemas: %s/schemas\n"
            "log:\n  partitions: 3\n"
            "logging:\n  level: error\n"
            "%s"
            "plugins:\n",
            f->dir, f->dir,
            auto_register_off ? "registry:\n  auto_register: false\n" : "");
    for (size_t i = 0; bank_plugins[i]; i++)
        fprintf(out, "  - %s\n", bank_plugins[i]);
    fprintf(out, "  - %s/upcasters/bank_deposited_v1_v2.so\n", STELE_BUILD_DIR);
    fclose(out);
}

/* Opens the copy as a writer (or a reader); the error when refused. */
static int open_copy(fixture *f, bool writes, stele_err *err)
{
    if (f->e)
        close_engine(f);
    write_copy_config(f);
    assert_int_equal(stele_config_load(f->config, &f->cfg, err), 0);
    int rc = writes ? stele_engine_open(f->cfg, &f->e, err)
                    : stele_engine_open_reader(f->cfg, &f->e, err);
    if (rc != 0) {
        stele_config_free(f->cfg);
        f->cfg = NULL;
        f->e = NULL;
    }
    return rc;
}

/* How many versions the embedded registry holds under subject. */
static size_t versions_of(fixture *f, const char *subject)
{
    stele_config *cfg = NULL;
    stele_err err = {0};
    assert_int_equal(stele_config_load(f->config, &cfg, &err), 0);
    stele_log *log = NULL;
    assert_int_equal(stele_log_open_sqlite(cfg->log_path, &log, &err), 0);
    stele_registry *reg = NULL;
    assert_int_equal(stele_open_registry(cfg, log, &reg, &err), 0);
    int *v = NULL;
    size_t n = 0;
    int rc = stele_registry_versions(reg, subject, &v, &n, &err);
    free(v);
    stele_registry_close(reg);
    stele_log_close(log);
    stele_config_free(cfg);
    return rc == STELE_ENOTFOUND ? 0 : n;
}

/* Writes f->dir/schemas/bank/<file> as the JSON of src (a file of the
 * copy) with one field appended. */
static void with_field(fixture *f, const char *src, const char *file,
                       const char *field)
{
    char path[600];
    snprintf(path, sizeof path, "%s/schemas/bank/%s", f->dir, src);
    json_t *s = json_load_file(path, 0, NULL);
    assert_non_null(s);
    json_array_append_new(json_object_get(s, "fields"),
                          json_loads(field, 0, NULL));
    snprintf(path, sizeof path, "%s/schemas/bank/%s", f->dir, file);
    assert_int_equal(json_dump_file(s, path, 0), 0);
    json_decref(s);
}

static void deposit_once(fixture *f, const char *id)
{
    open_account(f, id, 5);
    json_t *r = send_cmd(f,
                         "{\"type\":\"bank.Deposit\",\"aggregate_id\":"
                         "\"%s\",\"data\":{\"amount\":3}}",
                         id);
    expect_status(r, "accepted", NULL);
    json_decref(r);
}

/* Before, after the first deposit the check read the v1 -> v2 step the
 * wrong way round (v1 against the registered v2) and failed. */
void test_shipped_example_passes_its_gate_after_commands(void **state)
{
    fixture *f = *state;
    stele_err err = {0};
    assert_int_equal(open_copy(f, true, &err), 0);
    deposit_once(f, "g-1");
    assert_int_equal(open_copy(f, true, &err), 0);
    deposit_once(f, "g-2");
    assert_int_equal(versions_of(f, "bank.Deposited"), 1);
}

/* The upcaster of the bank example (the CLI reads it from the config). */
static bool bank_bridge(void *opaque, const char *type, int version)
{
    (void)opaque;
    return version == 2 && strcmp(type, "bank.Deposited") == 0;
}

/* The gate as stele schema check (register: as schema register) runs it
 * on the copy: the problems it finds. */
static size_t gate_problems(fixture *f, bool do_register)
{
    stele_config *cfg = NULL;
    stele_err err = {0};
    assert_int_equal(stele_config_load(f->config, &cfg, &err), 0);
    stele_log *log = NULL;
    assert_int_equal(stele_log_open_sqlite(cfg->log_path, &log, &err), 0);
    stele_registry *reg = NULL;
    stele_codec *codec = NULL;
    assert_int_equal(stele_open_registry(cfg, log, &reg, &err), 0);
    assert_int_equal(stele_codec_new(cfg->schemas_dir, reg, &codec, &err), 0);
    stele_gate g = {.reg = reg,
                    .codec = codec,
                    .fallback = STELE_COMPAT_BACKWARD_TRANSITIVE,
                    .do_register = do_register,
                    .bridged = bank_bridge};
    size_t types, bad;
    assert_int_equal(stele_gate_run(&g, &types, &bad, &err), 0);
    stele_codec_free(codec);
    stele_registry_close(reg);
    stele_log_close(log);
    stele_config_free(cfg);
    return bad;
}

/* Before, any process that loaded the plugins registered an incompatible
 * new version unchecked (a read-only stele state did), and from then on
 * the check passed. */
void test_reading_registers_nothing_and_writing_is_gated(void **state)
{
    fixture *f = *state;
    stele_err err = {0};
    assert_int_equal(open_copy(f, true, &err), 0);
    deposit_once(f, "g-1");
    close_engine(f);
    with_field(f, "bank.Deposited.v2.avsc", "bank.Deposited.v3.avsc",
               "{\"name\":\"fee\",\"type\":\"long\"}");
    assert_int_equal(gate_problems(f, false), 1);
    assert_int_equal(open_copy(f, false, &err), 0);
    json_t *st = NULL;
    if (stele_engine_state(f->e, "Account", "g-1", &st, &err) != 0)
        fail_msg("state: %s", err.msg);
    json_decref(st);
    close_engine(f);
    assert_int_equal(versions_of(f, "bank.Deposited"), 1);
    assert_int_equal(gate_problems(f, false), 1);
    /* schema register registers the others, not v3 */
    assert_int_equal(gate_problems(f, true), 1);
    assert_int_equal(versions_of(f, "bank.Deposited"), 1);
    assert_int_equal(versions_of(f, "bank.Withdrawn"), 1);
}

/* Before, a deployed version edited in place passed the check ("not
 * registered yet"), was registered by the next read as a new version, and
 * every stored event of it failed to read ("v0 (schema id 7)"). */
void test_deployed_version_edited_in_place_is_refused(void **state)
{
    fixture *f = *state;
    stele_err err = {0};
    assert_int_equal(open_copy(f, true, &err), 0);
    deposit_once(f, "g-1");
    close_engine(f);
    with_field(f, "bank.Deposited.v2.avsc", "bank.Deposited.v2.avsc",
               "{\"name\":\"fee\",\"type\":\"long\"}");
    assert_int_equal(open_copy(f, true, &err), STELE_EINVAL);
    assert_non_null(strstr(err.msg, "bank.Deposited v2 differs from "
                                    "registered version 1 of "
                                    "bank.Deposited"));
    assert_non_null(strstr(err.msg, "put the change in v3"));
    /* a reader opens, registers nothing, and names the stored schema by
     * its id, not as v0 */
    assert_int_equal(open_copy(f, false, &err), 0);
    assert_int_equal(versions_of(f, "bank.Deposited"), 1);
    json_t *st = NULL;
    int rc = stele_engine_state(f->e, "Account", "g-1", &st, &err);
    if (rc == 0)
        json_decref(st);
    size_t did;
    err = (stele_err){0};
    assert_int_equal(stele_engine_events(f->e, "Account", "g-1", 0,
                                         listed_event, NULL, &err),
                     STELE_EINVAL);
    assert_non_null(strstr(err.msg, "schema id"));
    assert_null(strstr(err.msg, " v0 "));
    /* and a reader does not replay: that writes states */
    assert_int_equal(stele_engine_replay(f->e, "Account", &did, &did, &err),
                     STELE_EINVAL);
}

/* registry.auto_register: false (a registry only stele schema register
 * writes to): a writer refuses to start on a version it writes that is
 * not registered, and starts once it is. */
void test_without_auto_register_writers_need_registered_schemas(void **state)
{
    fixture *f = *state;
    stele_err err = {0};
    auto_register_off = true;
    int rc = open_copy(f, true, &err);
    auto_register_off = false;
    assert_int_equal(rc, STELE_EINVAL);
    assert_non_null(strstr(err.msg, "is not registered and "
                                    "registry.auto_register is off"));
    assert_int_equal(versions_of(f, "bank.Deposited"), 0);
    assert_int_equal(gate_problems(f, true), 0); /* stele schema register */
    auto_register_off = true;
    rc = open_copy(f, true, &err);
    auto_register_off = false;
    if (rc != 0)
        fail_msg("open: %s", err.msg);
    deposit_once(f, "g-1");
}

/* An event of a type the aggregate does not declare (here a command's
 * value under the events topic, as a renamed type would be): the message
 * says that no loaded upcaster reads it, where before it named the type
 * alone. */
void test_undeclared_event_type_says_no_upcaster_reads_it(void **state)
{
    fixture *f = *state;
    stele_err err = {0};
    assert_int_equal(open_copy(f, true, &err), 0);
    deposit_once(f, "g-1");
    int32_t p = stele_partition_for_key("g-1", 3, 3);
    stele_log *l = NULL;
    char path[400];
    snprintf(path, sizeof path, "%s/gate-data/log.db", f->dir);
    close_engine(f);
    assert_int_equal(stele_log_open_sqlite(path, &l, &err), 0);
    stele_log_batch *cmds = NULL, *evs = NULL;
    assert_int_equal(
        stele_log_read(l, "bank.Account.commands", p, 0, 10, &cmds, &err), 0);
    assert_int_equal(
        stele_log_read(l, "bank.Account.events", p, 0, 10, &evs, &err), 0);
    assert_true(cmds->n >= 1 && evs->n >= 1);
    stele_log_record r = evs->records[0];
    stele_log_header h[16];
    assert_true(r.n_headers <= 16);
    for (size_t i = 0; i < r.n_headers; i++) {
        h[i] = r.headers[i];
        if (!strcmp(h[i].name, "event_type"))
            h[i] = (stele_log_header){"event_type", "bank.OpenAccount", 16};
        if (!strcmp(h[i].name, "version"))
            h[i] = (stele_log_header){"version", "3", 1};
    }
    r.headers = h;
    r.value = cmds->records[0].value; /* bank.OpenAccount, in wire format */
    r.value_len = cmds->records[0].value_len;
    assert_int_equal(
        stele_log_produce(l, "bank.Account.events", p, &r, NULL, &err), 0);
    stele_log_batch_free(cmds);
    stele_log_batch_free(evs);
    stele_log_close(l);
    assert_int_equal(open_copy(f, false, &err), 0);
    assert_int_equal(stele_engine_events(f->e, "Account", "g-1", 0,
                                         listed_event, NULL, &err),
                     STELE_EINVAL);
    assert_non_null(strstr(err.msg, "undeclared event type "
                                    "'bank.OpenAccount'"));
    assert_non_null(strstr(err.msg, "no loaded upcaster reads "
                                    "bank.OpenAccount"));
}

/* An event whose schema id names another record than its type (what a
 * registry restarted empty does to every id it hands out again): before,
 * it was decoded with that schema wherever resolution let it. */
void test_event_whose_id_names_another_type_is_refused(void **state)
{
    fixture *f = *state;
    stele_err err = {0};
    assert_int_equal(open_copy(f, true, &err), 0);
    deposit_once(f, "g-1");
    int32_t p = stele_partition_for_key("g-1", 3, 3);
    char path[400];
    snprintf(path, sizeof path, "%s/gate-data/log.db", f->dir);
    close_engine(f);
    stele_log *l = NULL;
    assert_int_equal(stele_log_open_sqlite(path, &l, &err), 0);
    stele_log_batch *evs = NULL;
    assert_int_equal(
        stele_log_read(l, "bank.Account.events", p, 0, 10, &evs, &err), 0);
    assert_int_equal(evs->n, 2); /* opened, deposited */
    stele_log_record r = evs->records[1];
    stele_log_header h[16];
    assert_true(r.n_headers <= 16);
    for (size_t i = 0; i < r.n_headers; i++) {
        h[i] = r.headers[i];
        if (!strcmp(h[i].name, "version"))
            h[i] = (stele_log_header){"version", "3", 1};
    }
    r.headers = h;
    r.value = evs->records[0].value; /* an AccountOpened, id and all */
    r.value_len = evs->records[0].value_len;
    assert_int_equal(
        stele_log_produce(l, "bank.Account.events", p, &r, NULL, &err), 0);
    stele_log_batch_free(evs);
    stele_log_close(l);
    assert_int_equal(open_copy(f, false, &err), 0);
    assert_int_equal(stele_engine_events(f->e, "Account", "g-1", 0,
                                         listed_event, NULL, &err),
                     STELE_EINVAL);
    assert_non_null(strstr(err.msg, "the event is a bank.Deposited but its "
                                    "schema id"));
    assert_non_null(strstr(err.msg, "is bank.AccountOpened in the registry"));
}
