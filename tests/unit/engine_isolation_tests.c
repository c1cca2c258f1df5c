/* engine_isolation_tests.c — engine.isolation: process decides as the
 * host does: the same results, events and states from the same commands,
 * rejections and plugin errors included, and a crashing decide costs the
 * worker (counted in memory: the guard is not armed here). */
#include "engine_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CRASHING TEST_PLUGINS "test_crashing_account.so"

static const char *const crashing[] = {CRASHING, NULL};

/* The commands both modes get, with fixed command ids. */
static const char *const script[] = {
    "{\"type\":\"bank.OpenAccount\",\"aggregate_id\":\"a\",\"command_id\":"
    "\"c1\",\"data\":{\"owner\":\"Ann\",\"initial_deposit\":10}}",
    "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"a\",\"command_id\":\"c2\","
    "\"data\":{\"amount\":7}}",
    /* the plugin's rejection */
    "{\"type\":\"bank.Withdraw\",\"aggregate_id\":\"a\",\"command_id\":"
    "\"c3\",\"data\":{\"amount\":1000}}",
    /* decide fails: PLUGIN_ERROR */
    "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"a\",\"command_id\":\"c4\","
    "\"data\":{\"amount\":672}}",
    /* decide crashes: PLUGIN_CRASHED in process, skipped in none */
    "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"a\",\"command_id\":\"c5\","
    "\"data\":{\"amount\":666}}",
    "{\"type\":\"bank.Withdraw\",\"aggregate_id\":\"a\",\"command_id\":"
    "\"c6\",\"data\":{\"amount\":3}}",
    "{\"type\":\"bank.OpenAccount\",\"aggregate_id\":\"a\",\"command_id\":"
    "\"c7\",\"data\":{\"owner\":\"Bob\"}}",
    "{\"type\":\"bank.CloseAccount\",\"aggregate_id\":\"a\",\"command_id\":"
    "\"c8\",\"data\":{}}",
};

static void strip_event(void *opaque, json_t *ev)
{
    json_object_del(ev, "event_id");
    json_object_del(ev, "timestamp_ms");
    json_object_del(ev, "timestamp");
    json_array_append_new(opaque, ev);
}

/* Every result (without event ids), event (without ids and times) and
 * the state, of the script run in mode. */
static json_t *run_script(fixture *f, const char *mode)
{
    close_engine(f);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/data'", f->dir);
    assert_int_equal(system(cmd), 0);
    f->isolation = mode;
    open_with(f, crashing);
    json_t *all = json_object(), *results = json_array(),
           *events = json_array();
    for (size_t i = 0; i < sizeof script / sizeof script[0]; i++) {
        bool crashes = strstr(script[i], "666") != NULL;
        if (crashes && strcmp(mode, "process") != 0)
            continue; /* it would end this test's process */
        json_t *r = send_cmd(f, "%s", script[i]);
        if (crashes) {
            expect_status(r, "rejected", "PLUGIN_CRASHED");
            assert_non_null(strstr(jstr(r, "message"),
                                   "the plugin worker died 3 times deciding "
                                   "it: SIG"));
            json_decref(r);
            continue;
        }
        json_object_del(r, "event_ids");
        json_array_append_new(results, r);
    }
    stele_err err = {0};
    assert_int_equal(
        stele_engine_events(f->e, "Account", "a", 0, strip_event, events, &err),
        0);
    json_t *st = NULL;
    assert_int_equal(stele_engine_state(f->e, "Account", "a", &st, &err), 0);
    json_object_set_new(all, "results", results);
    json_object_set_new(all, "events", events);
    json_object_set_new(all, "state", st);
    return all;
}

void test_worker_decides_exactly_as_the_host_does(void **state)
{
    fixture *f = *state;
    json_t *none = run_script(f, "none");
    json_t *proc = run_script(f, "process");
    char *a = json_dumps(none, JSON_SORT_KEYS | JSON_INDENT(1));
    char *b = json_dumps(proc, JSON_SORT_KEYS | JSON_INDENT(1));
    if (strcmp(a, b) != 0)
        fail_msg("in the host:\n%s\nin the worker:\n%s", a, b);
    /* and what they agree on is what the script asks */
    json_t *results = json_object_get(proc, "results");
    expect_status(json_array_get(results, 2), "rejected", "INSUFFICIENT_FUNDS");
    expect_status(json_array_get(results, 3), "rejected", "PLUGIN_ERROR");
    assert_non_null(
        strstr(jstr(json_array_get(results, 3), "message"), "decide failed"));
    assert_int_equal(json_array_size(json_object_get(proc, "events")), 4);
    free(a);
    free(b);
    json_decref(none);
    json_decref(proc);
}
