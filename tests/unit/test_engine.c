/*
 * The engine on the embedded log with the bank example: command
 * processing (acceptance, rejection, conflicts, idempotency, bad input),
 * state restore and rebuild, projections and queries. Projector faults
 * are engine_projector_faults_tests.c, retention engine_retention_tests.c,
 * commands on the wrong partition engine_routing_tests.c, bad stored
 * records engine_bad_data_tests.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "config/config.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "log/log.h"
#include "engine_test.h"

static void test_accepted_command_writes_events_and_state(void **state)
{
    fixture *f = *state;
    open_account(f, "a1", 100);
    json_t *r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":"
                            "\"a1\",\"data\":{\"amount\":50}}");
    expect_status(r, "accepted", NULL);
    assert_int_equal(jint(r, "version"), 2);
    assert_int_equal(json_array_size(json_object_get(r, "event_ids")), 1);
    json_decref(r);
    assert_int_equal(count_events(f, "a1"), 2);

    json_t *st;
    stele_err err = {0};
    assert_int_equal(stele_engine_state(f->e, "Account", "a1", &st, &err), 0);
    assert_int_equal(jint(st, "version"), 2);
    json_t *acc = json_object_get(json_object_get(st, "state"), "account");
    assert_int_equal(jint(acc, "balance"), 150);
    json_decref(st);
}

static void test_rejection_writes_no_events(void **state)
{
    fixture *f = *state;
    open_account(f, "a1", 10);
    json_t *r = send_cmd(f, "{\"type\":\"bank.Withdraw\",\"aggregate_id\":"
                            "\"a1\",\"data\":{\"amount\":11}}");
    expect_status(r, "rejected", "INSUFFICIENT_FUNDS");
    assert_int_equal(jint(r, "version"), 1);
    json_decref(r);
    assert_int_equal(count_events(f, "a1"), 1);
}

static void test_closed_account_rejects_commands(void **state)
{
    fixture *f = *state;
    open_account(f, "a1", 10);
    json_t *r = send_cmd(f, "{\"type\":\"bank.CloseAccount\","
                            "\"aggregate_id\":\"a1\"}");
    expect_status(r, "accepted", NULL);
    json_decref(r);
    r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"a1\","
                    "\"data\":{\"amount\":5}}");
    expect_status(r, "rejected", "ACCOUNT_CLOSED");
    json_decref(r);
    assert_int_equal(count_events(f, "a1"), 2);
}

static void test_conflict_rejects_without_writing(void **state)
{
    fixture *f = *state;
    open_account(f, "a1", 10);
    json_t *r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":"
                            "\"a1\",\"data\":{\"amount\":5},"
                            "\"expected_version\":0}");
    expect_status(r, "rejected", "CONFLICT");
    assert_int_equal(jint(r, "version"), 1);
    json_decref(r);
    assert_int_equal(count_events(f, "a1"), 1);
    r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"a1\","
                    "\"data\":{\"amount\":5},\"expected_version\":1}");
    expect_status(r, "accepted", NULL);
    json_decref(r);
}

static void test_duplicate_command_id_returns_stored_result(void **state)
{
    fixture *f = *state;
    open_account(f, "a1", 10);
    const char *cmd = "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"a1\","
                      "\"data\":{\"amount\":5},\"command_id\":\"dep-1\"}";
    json_t *r1 = send_cmd(f, "%s", cmd);
    json_t *r2 = send_cmd(f, "%s", cmd);
    expect_status(r1, "accepted", NULL);
    assert_true(json_equal(r1, r2));
    json_decref(r1);
    json_decref(r2);
    /* the resubmitted record is consumed, found answered, and skipped */
    size_t did;
    stele_err err = {0};
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_int_equal(count_events(f, "a1"), 2);
    stele_engine_stats st;
    stele_engine_stats_get(f->e, &st);
    assert_int_equal(st.duplicates, 1);
}

static void test_duplicate_in_same_batch_processed_once(void **state)
{
    fixture *f = *state;
    open_account(f, "a1", 10);
    /* Both submitted before any processing: one batch sees both. */
    json_t *cmd = json_pack("{s:s, s:s, s:{s:i}, s:s}", "type", "bank.Deposit",
                            "aggregate_id", "a1", "data", "amount", 7,
                            "command_id", "twice");
    stele_err err = {0};
    stele_submitted s1, s2;
    assert_int_equal(stele_engine_submit_json(f->e, cmd, &s1, &err), 0);
    assert_int_equal(stele_engine_submit_json(f->e, cmd, &s2, &err), 0);
    json_decref(cmd);
    json_t *r;
    assert_int_equal(stele_engine_wait_result(f->e, &s1, 5000, &r, &err), 0);
    expect_status(r, "accepted", NULL);
    json_decref(r);
    size_t did;
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_int_equal(count_events(f, "a1"), 2);
}

/* Writes a raw record to the commands topic, as a foreign producer may. */
static void produce_raw(fixture *f, const char *key, const void *value,
                        size_t len, const char *command_id)
{
    stele_log *log;
    stele_err err = {0};
    assert_int_equal(stele_log_open_sqlite(f->cfg->log_path, &log, &err), 0);
    stele_log_header h = {"command_id", command_id,
                          command_id ? strlen(command_id) : 0};
    stele_log_record r = {.key = key,
                          .key_len = strlen(key),
                          .value = value,
                          .value_len = len,
                          .headers = &h,
                          .n_headers = command_id ? 1 : 0};
    assert_int_equal(
        stele_log_produce(log, "bank.Account.commands",
                          stele_partition_for_key(key, strlen(key), 3), &r,
                          NULL, &err),
        0);
    stele_log_close(log);
}

static json_t *result_of(fixture *f, const char *key, const char *command_id)
{
    stele_submitted s = {.partition =
                             stele_partition_for_key(key, strlen(key), 3)};
    snprintf(s.command_id, sizeof s.command_id, "%s", command_id);
    snprintf(s.aggregate_type, sizeof s.aggregate_type, "Account");
    json_t *r = NULL;
    stele_err err = {0};
    if (stele_engine_wait_result(f->e, &s, 5000, &r, &err) != 0)
        fail_msg("no result for %s: %s", command_id, err.msg);
    return r;
}

static void test_bad_records_are_rejected_and_host_keeps_running(void **state)
{
    fixture *f = *state;
    /* not the wire format */
    produce_raw(f, "b1", "garbage", 7, "bad-magic");
    json_t *r = result_of(f, "b1", "bad-magic");
    expect_status(r, "rejected", "BAD_COMMAND");
    json_decref(r);
    /* unknown schema id */
    const unsigned char unknown_id[] = {0, 0, 0, 0x7f, 0x7f, 2, 'x'};
    produce_raw(f, "b1", unknown_id, sizeof unknown_id, "bad-id");
    r = result_of(f, "b1", "bad-id");
    expect_status(r, "rejected", "BAD_COMMAND");
    json_decref(r);
    /* oversized */
    static char big[8192];
    memset(big, 'x', sizeof big);
    produce_raw(f, "b1", big, sizeof big, "too-big");
    r = result_of(f, "b1", "too-big");
    expect_status(r, "rejected", "TOO_LARGE");
    json_decref(r);
    /* a key that is not UTF-8: before, copied into the result, which then
     * was not JSON any more */
    produce_raw(f,
                "b\xff"
                "1",
                "garbage", 7, "bad-key");
    r = result_of(f,
                  "b\xff"
                  "1",
                  "bad-key");
    expect_status(r, "rejected", "BAD_COMMAND");
    assert_non_null(strstr(jstr(r, "message"), "key (aggregate id)"));
    json_decref(r);
    /* a command id that is not UTF-8 cannot be answered in JSON */
    produce_raw(f, "b1", "x", 1, "bad\xfe");
    /* no command id: nobody to answer, so it goes to the dead-letter topic */
    produce_raw(f, "b1", "x", 1, NULL);
    size_t did;
    stele_err err = {0};
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    stele_engine_stats st;
    stele_engine_stats_get(f->e, &st);
    assert_int_equal(st.dead_letters, 2);
    /* and the host still works */
    open_account(f, "b1", 1);
}

static void test_malformed_json_commands_are_refused(void **state)
{
    fixture *f = *state;
    const char *bad[] = {
        "{\"type\":\"bank.Nope\",\"aggregate_id\":\"a\"}",
        "{\"type\":\"bank.Deposit\"}",
        "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"a\",\"data\":"
        "{\"amount\":\"ten\"}}",
        "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"a\",\"data\":"
        "{\"amount\":1,\"extra\":2}}",
        "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"a\",\"bogus\":1}",
        "[1,2]",
        /* before, written, then dead-lettered by the host: no answer */
        "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"a\",\"command_id\":"
        "\"x\\u0001y\",\"data\":{\"amount\":1}}",
        "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"a\\n\",\"data\":"
        "{\"amount\":1}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *cmd = json_loads(bad[i], 0, NULL);
        assert_non_null(cmd);
        stele_submitted s;
        stele_err err = {0};
        int rc = stele_engine_submit_json(f->e, cmd, &s, &err);
        json_decref(cmd);
        assert_true(rc != 0);
        assert_true(strlen(err.msg) > 0);
    }
    open_account(f, "still-fine", 1);
}

static void traceparent_of(void *opaque, json_t *ev)
{
    char *out = opaque;
    const char *t = json_string_value(json_object_get(ev, "traceparent"));
    if (t && !strcmp(json_string_value(json_object_get(ev, "type")),
                     "bank.Deposited"))
        snprintf(out, 64, "%s", t);
    json_decref(ev);
}

/* A command's W3C traceparent goes into its events and its result, so a
 * request is followed across services; one that is not a traceparent is
 * refused by the client, and not passed on when a raw producer wrote it. */
static void test_traceparent_is_carried_into_events_and_result(void **state)
{
    fixture *f = *state;
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    open_account(f, "t1", 10);
    json_t *r = send_cmd(f,
                         "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"t1\","
                         "\"traceparent\":\"%s\",\"data\":{\"amount\":5}}",
                         tp);
    expect_status(r, "accepted", NULL);
    assert_string_equal(jstr(r, "traceparent"), tp);
    json_decref(r);
    char seen[64] = "";
    stele_err err = {0};
    assert_int_equal(stele_engine_events(f->e, "Account", "t1", 0,
                                         traceparent_of, seen, &err),
                     0);
    assert_string_equal(seen, tp);
    /* without one, none is made up */
    r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"t1\","
                    "\"data\":{\"amount\":5}}");
    assert_null(json_object_get(r, "traceparent"));
    json_decref(r);
    static const char *const bad[] = {
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[300];
        snprintf(text, sizeof text,
                 "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"t1\","
                 "\"traceparent\":\"%s\",\"data\":{\"amount\":1}}",
                 bad[i]);
        json_t *cmd = json_loads(text, 0, NULL);
        stele_submitted s;
        assert_int_equal(stele_engine_submit_json(f->e, cmd, &s, &err),
                         STELE_EINVAL);
        assert_non_null(strstr(err.msg, "traceparent"));
        json_decref(cmd);
    }
}

static void test_restart_restores_states_from_snapshots(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        open_account(f, id, i);
    }
    json_t *r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":"
                            "\"r3\",\"data\":{\"amount\":4}}");
    json_decref(r);
    close_engine(f);
    open_with(f, bank_plugins);
    r = send_cmd(f, "{\"type\":\"bank.Withdraw\",\"aggregate_id\":\"r3\","
                    "\"data\":{\"amount\":7},\"expected_version\":2}");
    expect_status(r, "accepted", NULL);
    json_decref(r);
    stele_engine_stats st;
    stele_engine_stats_get(f->e, &st);
    assert_int_equal(st.states_restored, 20);
    assert_int_equal(st.events_replayed, 0);
}

static void test_state_version_bump_rebuilds_states_from_events(void **state)
{
    fixture *f = *state;
    open_account(f, "s1", 5);
    json_t *r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":"
                            "\"s1\",\"data\":{\"amount\":6}}");
    json_decref(r);
    open_account(f, "s2", 1);
    close_engine(f);
    const char *v2[] = {TEST_PLUGINS "bank_account_sv2.so", NULL};
    open_with(f, v2);
    r = send_cmd(f, "{\"type\":\"bank.Withdraw\",\"aggregate_id\":\"s1\","
                    "\"data\":{\"amount\":11},\"expected_version\":2}");
    expect_status(r, "accepted", NULL);
    json_decref(r);
    stele_engine_stats st;
    stele_engine_stats_get(f->e, &st);
    assert_int_equal(st.events_replayed, 3);
    assert_int_equal(st.states_restored, 0);
}

static void test_replay_rebuilds_states(void **state)
{
    fixture *f = *state;
    open_account(f, "p1", 5);
    open_account(f, "p2", 6);
    size_t events, states;
    stele_err err = {0};
    assert_int_equal(
        stele_engine_replay(f->e, "Account", &events, &states, &err), 0);
    assert_int_equal(events, 2);
    assert_int_equal(states, 2);
    json_t *r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":"
                            "\"p2\",\"data\":{\"amount\":1},"
                            "\"expected_version\":1}");
    expect_status(r, "accepted", NULL);
    json_decref(r);
}

static json_t *list(fixture *f, const char *table, const char *filter,
                    const char *sort, bool desc, int page, int size)
{
    char buf[128];
    stele_filter flt;
    stele_err err = {0};
    size_t did;
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    size_t nf = 0;
    if (filter) {
        snprintf(buf, sizeof buf, "%s", filter);
        assert_int_equal(stele_filter_parse(buf, &flt, &err), 0);
        nf = 1;
    }
    stele_list_request req = {.filters = &flt,
                              .n_filters = nf,
                              .sort = sort,
                              .descending = desc,
                              .page = page,
                              .page_size = size};
    json_t *out = NULL;
    if (stele_engine_list(f->e, table, &req, &out, &err) != 0)
        return NULL;
    return out;
}

static void test_projection_and_queries(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 7; i++) {
        char id[16];
        snprintf(id, sizeof id, "q%d", i);
        open_account(f, id, 100 * i);
    }
    json_t *r = send_cmd(f, "{\"type\":\"bank.CloseAccount\","
                            "\"aggregate_id\":\"q1\"}");
    json_decref(r);

    json_t *page = list(f, "balances", "balance>=200", "balance", true, 1, 2);
    assert_non_null(page);
    assert_int_equal(jint(page, "total"), 5);
    json_t *items = json_object_get(page, "items");
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(jstr(json_array_get(items, 0), "account_id"), "q6");
    assert_string_equal(jstr(json_array_get(items, 1), "account_id"), "q5");
    json_decref(page);
    page = list(f, "balances", "balance>=200", "balance", true, 3, 2);
    assert_int_equal(json_array_size(json_object_get(page, "items")), 1);
    json_decref(page);
    /* version is not filterable, status is not sortable */
    assert_null(list(f, "balances", "version=1", NULL, false, 1, 10));
    assert_null(list(f, "balances", NULL, "status", false, 1, 10));

    json_t *params = json_pack("{s:s}", "account_id", "q4");
    json_t *one = NULL;
    stele_err err = {0};
    assert_int_equal(stele_engine_query(f->e, "account", params, &one, &err),
                     0);
    assert_int_equal(jint(one, "balance"), 400);
    json_decref(one);
    json_decref(params);
    params = json_pack("{s:s}", "account_id", "none");
    assert_int_equal(stele_engine_query(f->e, "account", params, &one, &err),
                     STELE_ENOTFOUND);
    json_decref(params);
    params = json_pack("{s:i}", "min_balance", 300);
    assert_int_equal(stele_engine_query(f->e, "richest", params, &one, &err),
                     0);
    assert_int_equal(json_array_size(json_object_get(one, "items")), 4);
    json_decref(one);
    json_decref(params);

    json_t *days = list(f, "daily_totals", NULL, NULL, false, 1, 10);
    json_t *day = json_array_get(json_object_get(days, "items"), 0);
    assert_int_equal(jint(day, "opened"), 7);
    assert_int_equal(jint(day, "closed"), 1);
    assert_int_equal(jint(day, "deposited"), 2100);
    json_decref(days);
}

static void test_status_shows_waiting_commands_and_projector_lag(void **state)
{
    fixture *f = *state;
    submit_only(f, "{\"type\":\"bank.OpenAccount\",\"aggregate_id\":\"s1\","
                   "\"data\":{\"owner\":\"o\"}}");
    submit_only(f, "{\"type\":\"bank.OpenAccount\",\"aggregate_id\":\"s2\","
                   "\"data\":{\"owner\":\"o\"}}");
    json_t *st = status_of(f->e);
    assert_string_equal(jstr(st, "log"), "sqlite");
    assert_int_equal(lag_of(st, "commands", "aggregate", "Account"), 2);
    assert_int_equal(lag_of(st, "projectors", "name", "balances"), 0);
    json_t *parts = json_object_get(
        json_array_get(json_object_get(st, "commands"), 0), "partitions");
    assert_int_equal(json_array_size(parts), 3);
    json_decref(st);

    size_t did;
    stele_err err = {0};
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    st = status_of(f->e);
    assert_int_equal(lag_of(st, "commands", "aggregate", "Account"), 0);
    assert_int_equal(lag_of(st, "projectors", "name", "balances"), 0);
    assert_int_equal(lag_of(st, "projectors", "name", "daily_totals"), 0);
    json_t *bal = json_array_get(json_object_get(st, "projectors"), 0);
    assert_int_equal(jint(bal, "serving"), 1);
    assert_null(json_object_get(bal, "building"));
    json_decref(st);

    /* a new version: serving v1 until v2 is built */
    close_engine(f);
    const char *v2[] = {PLUGINS "bank_account.so",
                        TEST_PLUGINS "bank_balances_v2.so", NULL};
    open_with(f, v2);
    st = status_of(f->e);
    bal = json_array_get(json_object_get(st, "projectors"), 0);
    assert_int_equal(jint(bal, "version"), 2);
    assert_int_equal(jint(bal, "serving"), 1);
    assert_int_equal(jint(bal, "lag"), 0);
    json_t *b = json_object_get(bal, "building");
    assert_int_equal(jint(b, "version"), 2);
    assert_int_equal(jint(b, "lag"), 2);
    json_decref(st);
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    st = status_of(f->e);
    bal = json_array_get(json_object_get(st, "projectors"), 0);
    assert_int_equal(jint(bal, "serving"), 2);
    assert_int_equal(jint(bal, "lag"), 0);
    assert_null(json_object_get(bal, "building"));
    json_decref(st);
}

/* ABI 1.1 made indexes explicit (STELE_COL_INDEX); a projector built
 * against 1.0 keeps what it had then: an index on every FILTER or SORT
 * column. */
static void test_abi_1_0_projector_keeps_its_implied_indexes(void **state)
{
    fixture *f = *state;
    close_engine(f);
    const char *plugins[] = {PLUGINS "bank_account.so",
                             TEST_PLUGINS "test_abi10.so", NULL};
    open_with(f, plugins);
    open_account(f, "x1", 1);
    size_t did;
    stele_err err = {0};
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    stele_store *s;
    assert_int_equal(stele_store_open_sqlite(f->cfg->store_path, &s, &err), 0);
    json_t *rows = json_array();
    assert_int_equal(stele_store_select_json(
                         s,
                         "SELECT name FROM sqlite_master WHERE type = 'index' "
                         "AND tbl_name = 'abi10_accounts' AND sql IS NOT NULL "
                         "ORDER BY name",
                         NULL, 0, rows, &err),
                     0);
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(jstr(json_array_get(rows, 0), "name"),
                        "abi10_accounts_opened_at");
    assert_string_equal(jstr(json_array_get(rows, 1), "name"),
                        "abi10_accounts_owner");
    json_decref(rows);
    stele_store_close(s);
}

static void test_projector_version_bump_rebuilds_read_model(void **state)
{
    fixture *f = *state;
    open_account(f, "v1", 10);
    open_account(f, "v2", 20);
    json_t *page = list(f, "balances", NULL, NULL, false, 1, 10);
    assert_int_equal(jint(page, "total"), 2);
    json_decref(page);
    close_engine(f);
    const char *v2[] = {PLUGINS "bank_account.so",
                        TEST_PLUGINS "bank_balances_v2.so", NULL};
    open_with(f, v2);
    page = list(f, "balances", NULL, NULL, false, 1, 10);
    assert_int_equal(jint(page, "total"), 2);
    json_decref(page);
    stele_engine_stats st;
    stele_engine_stats_get(f->e, &st);
    assert_int_equal(st.events_projected, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_accepted_command_writes_events_and_state),
        T(test_rejection_writes_no_events),
        T(test_closed_account_rejects_commands),
        T(test_conflict_rejects_without_writing),
        T(test_duplicate_command_id_returns_stored_result),
        T(test_duplicate_in_same_batch_processed_once),
        T(test_bad_records_are_rejected_and_host_keeps_running),
        T(test_malformed_json_commands_are_refused),
        T(test_traceparent_is_carried_into_events_and_result),
        T(test_restart_restores_states_from_snapshots),
        T(test_state_version_bump_rebuilds_states_from_events),
        T(test_replay_rebuilds_states),
        T(test_projection_and_queries),
        ENGINE_PROJECTOR_FAULT_TESTS,
        T(test_projector_version_bump_rebuilds_read_model),
        T(test_status_shows_waiting_commands_and_projector_lag),
        T(test_abi_1_0_projector_keeps_its_implied_indexes),
        ENGINE_RETENTION_TESTS,
        ENGINE_ROUTING_TESTS,
        ENGINE_BAD_DATA_TESTS,
        ENGINE_QUARANTINE_TESTS,
        ENGINE_GATE_TESTS,
        ENGINE_ISOLATION_TESTS,
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
