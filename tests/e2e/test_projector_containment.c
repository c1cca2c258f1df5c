/*
 * A projector whose project crashes or hangs on one event costs that
 * event's aggregate in that projector, not the projector nor the host:
 * the stele binary with tests/plugins/crashing_balances.c, whose project
 * dies on a deposit of 666 (SIGSEGV), 667 (abort) or 670 (endless loop).
 * Before, the host died on the event at every start, for good.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

#define STELE STELE_BUILD_DIR "/stele"
#define ACCOUNT STELE_BUILD_DIR "/plugins/bank_account.so"
#define BALANCES STELE_BUILD_DIR "/plugins/bank_balances.so"
#define CRASHING STELE_BUILD_DIR "/test-plugins/test_crashing_balances.so"
/* No process of a test may run longer (an unguarded endless project). */
#define LIMIT "timeout -s KILL 10 "

static char dir[256], config[320];

/* The config with the account and, when not NULL, the projector. */
static void write_config(const char *projector, const char *engine)
{
    FILE *f = fopen(config, "w");
    assert_non_null(f);
    fprintf(f,
            "app: bank\n"
            "data_dir: data\n"
            "schemas: %s/schemas\n"
            "plugins:\n"
            "  - %s\n"
            "%s%s%s"
            "engine:\n"
            "  commit_interval_ms: 0\n"
            "%s"
            "logging:\n  level: warn\n",
            STELE_SOURCE_DIR, ACCOUNT, projector ? "  - " : "",
            projector ? projector : "", projector ? "\n" : "",
            engine ? engine : "");
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/stele-projguard-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(config, sizeof config, "%s/stele.yaml", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_run(NULL, "rm -rf '%s'", dir);
    return 0;
}

static void send_ok(const char *type, const char *id, const char *data)
{
    char *out;
    int rc = e2e_run(&out,
                     LIMIT "%s send -c %s '{\"type\":\"bank.%s\","
                           "\"aggregate_id\":\"%s\",\"data\":%s}'",
                     STELE, config, type, id, data);
    if (rc != 0 || !strstr(out, "\"accepted\""))
        fail_msg("send %s to %s: exit %d: %s", type, id, rc, out);
    free(out);
}

static void deposit(const char *id, int amount)
{
    char data[64];
    snprintf(data, sizeof data, "{\"amount\":%d}", amount);
    send_ok("Deposit", id, data);
}

/* The events the projector will meet in one batch, decided while no
 * projector runs: acc-1's bad deposit between good ones of both. */
static void write_history(int bad)
{
    write_config(NULL, NULL);
    send_ok("OpenAccount", "acc-1", "{\"owner\":\"Ann\"}");
    send_ok("OpenAccount", "acc-2", "{\"owner\":\"Bob\"}");
    deposit("acc-2", 10);
    deposit("acc-1", bad);
    deposit("acc-2", 20);
    deposit("acc-1", 30);
}

/* stele query --list balances until it answers: returns the answer and
 * how many processes died on the way (each with died_with). */
static char *query_until_served(int died_with, int *deaths, char **log)
{
    size_t cap = 65536, at = 0;
    *log = calloc(1, cap);
    *deaths = 0;
    for (int tries = 0; tries < 8; tries++) {
        char *out;
        int rc = e2e_run(&out,
                         LIMIT "%s query -c %s --list balances --sort "
                               "account_id",
                         STELE, config);
        at += (size_t)snprintf(*log + at, cap - at, "--- exit %d\n%s", rc, out);
        if (at >= cap)
            at = cap - 1;
        if (rc == 0)
            return out;
        free(out);
        if (rc != died_with)
            fail_msg("query: exit %d, expected %d:\n%s", rc, died_with, *log);
        (*deaths)++;
    }
    fail_msg("the projector never got past the event:\n%s", *log);
    return NULL;
}

/* The row of account id in a list answer, cut at its end. */
static void row_of(const char *list, const char *id, char *row, size_t size)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\"%s\"", id);
    const char *at = strstr(list, needle);
    if (!at)
        fail_msg("no row of %s in: %s", id, list);
    const char *end = strchr(at, '}');
    size_t n = end ? (size_t)(end - at) : strlen(at);
    snprintf(row, size, "%.*s", (int)(n < size ? n : size - 1), at);
}

static void assert_balance(const char *list, const char *id, int balance)
{
    char row[512], want[64];
    row_of(list, id, row, sizeof row);
    snprintf(want, sizeof want, "\"balance\": %d", balance);
    if (!strstr(row, want))
        fail_msg("%s: want %s, row %s", id, want, row);
}

/* The host dies in the batch that holds the bad event once, then on the
 * event alone three times (plugin_crash_limit); the next start parks
 * acc-1 in balances and projects the rest. */
static void expect_parked(int bad, const char *why, int died_with)
{
    char *log;
    int deaths;
    char *out = query_until_served(died_with, &deaths, &log);
    if (deaths != 4)
        fail_msg("%d deaths, expected 1 in the batch + 3 alone:\n%s", deaths,
                 log);
    if (!strstr(log, "projected one by one next") ||
        !strstr(log, "Death 3 of 3 before the projector parks") ||
        strstr(log, "Death 4 of"))
        fail_msg("what the starts said:\n%s", log);
    free(log);
    /* acc-2 is projected to its end; acc-1 up to its bad deposit */
    assert_balance(out, "acc-2", 30);
    assert_balance(out, "acc-1", 0);
    free(out);

    int rc = e2e_run(&out, LIMIT "%s status -c %s", STELE, config);
    char bad_reason[64];
    snprintf(bad_reason, sizeof bad_reason, "\"id\": \"acc-1\"");
    if (rc != 0 || !strstr(out, "\"parked\"") || !strstr(out, bad_reason) ||
        !strstr(out, "PLUGIN_CRASHED: the host died 3 times in project") ||
        !strstr(out, why))
        fail_msg("status: exit %d: %s", rc, out);
    free(out);

    /* and later events: acc-2's projected, acc-1's wait for replay */
    deposit("acc-2", 5);
    deposit("acc-1", bad + 1000);
    rc = e2e_run(&out, LIMIT "%s query -c %s --list balances", STELE, config);
    assert_int_equal(rc, 0);
    assert_balance(out, "acc-2", 35);
    assert_balance(out, "acc-1", 0);
    free(out);
}

static void
test_a_segfaulting_project_parks_the_aggregate_after_three(void **state)
{
    (void)state;
    write_history(666);
    write_config(CRASHING, NULL);
    expect_parked(666, "SIGSEGV", 128 + SIGSEGV);
}

static void
test_an_aborting_project_parks_the_aggregate_after_three(void **state)
{
    (void)state;
    write_history(667);
    write_config(CRASHING, NULL);
    expect_parked(667, "SIGABRT", 128 + SIGABRT);
}

static void
test_an_endless_project_times_out_and_parks_after_three(void **state)
{
    (void)state;
    write_history(670);
    write_config(CRASHING, "  plugin_timeout_ms: 300\n");
    expect_parked(670, "timed out after", 70);
}

/* stele replay tries a parked aggregate again: with the plugin still
 * crashing it dies three times, then reports it still parked (exit 1)
 * and forgets, so the replay after tries again; with the plugin fixed
 * it repairs it. */
static void
test_replay_retries_a_crashed_aggregate_without_looping(void **state)
{
    (void)state;
    write_history(666);
    write_config(CRASHING, NULL);
    expect_parked(666, "SIGSEGV", 128 + SIGSEGV);
    char *out;
    for (int i = 0; i < 3; i++) {
        int rc = e2e_run(&out, LIMIT "%s replay -c %s", STELE, config);
        if (rc != 128 + SIGSEGV)
            fail_msg("replay %d: exit %d: %s", i + 1, rc, out);
        free(out);
    }
    int rc = e2e_run(&out, LIMIT "%s replay -c %s", STELE, config);
    if (rc != 1 || !strstr(out, "1 still"))
        fail_msg("replay 4: exit %d: %s", rc, out);
    free(out);
    rc = e2e_run(&out, LIMIT "%s status -c %s", STELE, config);
    if (!strstr(out, "3 times in project of this event during stele replay"))
        fail_msg("status: %s", out);
    free(out);
    /* a fresh chance: it dies again */
    rc = e2e_run(&out, LIMIT "%s replay -c %s", STELE, config);
    if (rc != 128 + SIGSEGV)
        fail_msg("replay 5: exit %d: %s", rc, out);
    free(out);
    /* the fixed projector (the bank's: same name and version) */
    write_config(BALANCES, NULL);
    rc = e2e_run(&out, LIMIT "%s replay -c %s", STELE, config);
    if (rc != 0 || !strstr(out, "1 parked aggregate repaired"))
        fail_msg("replay, fixed: exit %d: %s", rc, out);
    free(out);
    rc = e2e_run(&out, LIMIT "%s query -c %s --list balances", STELE, config);
    assert_int_equal(rc, 0);
    assert_balance(out, "acc-1", 666 + 30 + 1666);
    assert_balance(out, "acc-2", 35);
    free(out);
    rc = e2e_run(&out, LIMIT "%s status -c %s", STELE, config);
    if (strstr(out, "PLUGIN_CRASHED"))
        fail_msg("still parked: %s", out);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_a_segfaulting_project_parks_the_aggregate_after_three),
        T(test_an_aborting_project_parks_the_aggregate_after_three),
        T(test_an_endless_project_times_out_and_parks_after_three),
        T(test_replay_retries_a_crashed_aggregate_without_looping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
