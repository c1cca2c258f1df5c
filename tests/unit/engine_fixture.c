/* engine_fixture.c — the bank example on the embedded log and store, for
 * test_engine's files (engine_test.h). */
#include "engine_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"
#include "store/store.h"

const char *const bank_plugins[] = {
    PLUGINS "bank_account.so",       PLUGINS "bank_balances.so",
    PLUGINS "bank_daily_totals.so",  PLUGINS "bank_account_query.so",
    PLUGINS "bank_richest_query.so", NULL};

/* The isolation mode every engine test runs in: STELE_TEST_ISOLATION
 * (ctest runs test_engine with none and with process). */
static const char *isolation(const fixture *f)
{
    const char *mode =
        f->isolation ? f->isolation : getenv("STELE_TEST_ISOLATION");
    return mode && *mode ? mode : "none";
}

void write_config(fixture *f, const char *const *plugins)
{
    FILE *out = fopen(f->config, "w");
    assert_non_null(out);
    fprintf(out,
            "app: bank\n"
            "data_dir: %s/data\n"
            "schemas: %s/schemas\n"
            "log:\n  partitions: 3\n"
            "engine:\n  command_batch: 100\n  projection_batch: 50\n"
            "  max_value_bytes: 4096\n  isolation: %s\n"
            "logging:\n  level: error\n"
            "plugins:\n",
            f->dir, STELE_SOURCE_DIR, isolation(f));
    for (size_t i = 0; plugins[i]; i++)
        fprintf(out, "  - %s\n", plugins[i]);
    fclose(out);
}

void open_with(fixture *f, const char *const *plugins)
{
    write_config(f, plugins);
    stele_err err = {0};
    int rc = stele_config_load(f->config, &f->cfg, &err);
    if (rc != 0)
        fail_msg("config: %s", err.msg);
    rc = stele_engine_open(f->cfg, &f->e, &err);
    if (rc != 0)
        fail_msg("open: %s", err.msg);
}

void close_engine(fixture *f)
{
    stele_engine_close(f->e);
    stele_config_free(f->cfg);
    f->e = NULL;
    f->cfg = NULL;
}

int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/stele-engine-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->config, sizeof f->config, "%s/stele.yaml", f->dir);
    open_with(f, bank_plugins);
    *state = f;
    return 0;
}

int teardown(void **state)
{
    fixture *f = *state;
    if (f->e)
        close_engine(f);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Submits a command and returns its result (the caller decrefs). */
json_t *send_cmd(fixture *f, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    json_error_t jerr;
    json_t *cmd = json_loads(text, 0, &jerr);
    if (!cmd)
        fail_msg("bad test JSON: %s: %s", text, jerr.text);
    stele_err err = {0};
    stele_submitted s;
    json_t *result = NULL;
    int rc = stele_engine_submit_json(f->e, cmd, &s, &err);
    json_decref(cmd);
    if (rc != 0)
        fail_msg("submit: %s", err.msg);
    rc = stele_engine_wait_result(f->e, &s, 5000, &result, &err);
    if (rc != 0)
        fail_msg("wait: %s", err.msg);
    return result;
}

const char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

long long jint(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

void expect_status(json_t *r, const char *status, const char *code)
{
    if (strcmp(jstr(r, "status"), status) != 0 ||
        (code && strcmp(jstr(r, "code"), code) != 0)) {
        char *s = json_dumps(r, 0);
        fail_msg("expected %s %s, got %s", status, code ? code : "", s);
    }
}

static void count_event(void *opaque, json_t *ev)
{
    (*(size_t *)opaque)++;
    json_decref(ev);
}

size_t count_events(fixture *f, const char *id)
{
    size_t n = 0;
    stele_err err = {0};
    assert_int_equal(
        stele_engine_events(f->e, "Account", id, 0, count_event, &n, &err), 0);
    return n;
}

void open_account(fixture *f, const char *id, long long initial)
{
    json_t *r = send_cmd(f,
                         "{\"type\":\"bank.OpenAccount\",\"aggregate_id\":"
                         "\"%s\",\"data\":{\"owner\":\"o-%s\","
                         "\"initial_deposit\":%lld}}",
                         id, id, initial);
    expect_status(r, "accepted", NULL);
    json_decref(r);
}

long long balance_of(stele_engine *e, const char *id)
{
    char flt[64];
    snprintf(flt, sizeof flt, "account_id=%s", id);
    stele_filter f;
    stele_err err = {0};
    assert_int_equal(stele_filter_parse(flt, &f, &err), 0);
    stele_list_request req = {
        .filters = &f, .n_filters = 1, .page = 1, .page_size = 1};
    json_t *out = NULL;
    if (stele_engine_list(e, "balances", &req, &out, &err) != 0)
        return -1;
    json_t *row = json_array_get(json_object_get(out, "items"), 0);
    long long b = row ? jint(row, "balance") : -1;
    json_decref(out);
    return b;
}

json_t *status_of(stele_engine *e)
{
    json_t *st = NULL;
    stele_err err = {0};
    if (stele_engine_status(e, &st, &err) != 0)
        fail_msg("status: %s", err.msg);
    return st;
}

/* "lag" of the entry of array key named name (under field). */
long long lag_of(json_t *st, const char *key, const char *field,
                 const char *name)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(st, key), i,
                       x) if (strcmp(jstr(x, field), name) ==
                              0) return jint(x, "lag");
    fail_msg("no %s %s in status", key, name);
    return -1;
}

void submit_only(fixture *f, const char *json)
{
    json_t *cmd = json_loads(json, 0, NULL);
    stele_submitted s;
    stele_err err = {0};
    assert_int_equal(stele_engine_submit_json(f->e, cmd, &s, &err), 0);
    json_decref(cmd);
}

void listed_event(void *opaque, json_t *ev)
{
    if (opaque)
        (*(size_t *)opaque)++;
    json_decref(ev);
}

int64_t log_end(const char *log_path, const char *topic, int32_t partition)
{
    stele_log *log = NULL;
    stele_err err = {0};
    int64_t end = -1;
    assert_int_equal(stele_log_open_sqlite(log_path, &log, &err), 0);
    assert_int_equal(stele_log_end_offset(log, topic, partition, &end, &err),
                     0);
    stele_log_close(log);
    return end;
}
