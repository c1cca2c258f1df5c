/*
 * A plugin that crashes or hangs costs its command, not the host: the
 * stele binary with tests/plugins/crashing_account.c, whose decide dies as
 * the deposit's amount asks (666 SIGSEGV, 667 abort, 668 exit, 669 stack
 * overflow, 670 endless loop; 671 a SIGSEGV in evolve). Each process runs
 * under timeout(1): before the guard, a crashing command came back on
 * every start and an endless one never returned.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "e2e.h"
#include "e2e_host.h"
#include "log/log.h"

#define STELE STELE_BUILD_DIR "/stele"
#define CRASHING STELE_BUILD_DIR "/test-plugins/test_crashing_account.so"
#define BANK STELE_BUILD_DIR "/plugins/bank_account.so"
/* No process of a test may run longer (an unguarded endless decide). */
#define LIMIT "timeout -s KILL 10 "

static char dir[256], config[320];
/* Put before each stele send: an exit() inside decide leaves the host's
 * memory allocated, which LeakSanitizer would report as exit status 1. */
static const char *send_env = "";

static void write_config_with(const char *plugin, const char *engine)
{
    FILE *f = fopen(config, "w");
    assert_non_null(f);
    fprintf(f,
            "app: bank\n"
            "data_dir: data\n"
            "schemas: %s/schemas\n"
            "plugins:\n"
            "  - %s\n"
            "engine:\n"
            "  commit_interval_ms: 0\n"
            "%s"
            "logging:\n  level: warn\n",
            STELE_SOURCE_DIR, plugin, engine ? engine : "");
    fclose(f);
}

static void write_config(const char *engine)
{
    write_config_with(CRASHING, engine);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/stele-contain-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(config, sizeof config, "%s/stele.yaml", dir);
    write_config(NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_run(NULL, "rm -rf '%s'", dir);
    return 0;
}

/* stele send of a deposit of amount to acc-1 under command_id id. */
static int send_deposit(char **out, const char *id, int amount)
{
    return e2e_run(out,
                   "%s" LIMIT "%s send -c %s '{\"type\":\"bank.Deposit\","
                   "\"aggregate_id\":\"acc-1\",\"command_id\":\"%s\","
                   "\"data\":{\"amount\":%d}}'",
                   send_env, STELE, config, id, amount);
}

static void open_account(void)
{
    char *out;
    int rc = e2e_run(&out,
                     LIMIT "%s send -c %s '{\"type\":\"bank.OpenAccount\","
                           "\"aggregate_id\":\"acc-1\",\"data\":{\"owner\":"
                           "\"Ann\"}}'",
                     STELE, config);
    if (rc != 0)
        fail_msg("open: exit %d: %s", rc, out);
    free(out);
}

/* The reason of the last record on the dead-letter topic, into buf. */
static void last_dead_letter(char *buf, size_t size, char *key, size_t ksize)
{
    char path[400];
    snprintf(path, sizeof path, "%s/data/log.db", dir);
    stele_log *log = NULL;
    stele_err err = {0};
    assert_int_equal(stele_log_open_sqlite(path, &log, &err), 0);
    stele_log_batch *b = NULL;
    assert_int_equal(
        stele_log_read(log, "bank.deadletter", 0, 0, 1000, &b, &err), 0);
    assert_true(b->n > 0);
    const stele_log_record *r = &b->records[b->n - 1];
    snprintf(key, ksize, "%.*s", (int)r->key_len, (const char *)r->key);
    buf[0] = '\0';
    for (size_t i = 0; i < r->n_headers; i++)
        if (!strcmp(r->headers[i].name, "dlq.reason"))
            snprintf(buf, size, "%.*s", (int)r->headers[i].len,
                     (const char *)r->headers[i].value);
    stele_log_batch_free(b);
    stele_log_close(log);
}

/* The bad deposit kills (or, past the time limit, ends) every process
 * that decides it — the sender, then each sender of the good one behind
 * it — three times; the fourth rejects it PLUGIN_CRASHED, dead-letters a
 * copy and accepts the good one. */
static void expect_contained(int amount, const char *why, int died_with)
{
    open_account();
    char *out, id[32];
    snprintf(id, sizeof id, "bad-%d", amount);
    int rc = send_deposit(&out, id, amount);
    if (rc != died_with)
        fail_msg("the bad deposit: exit %d, expected %d: %s", rc, died_with,
                 out);
    free(out);
    int deaths = 1, tries = 0;
    for (;;) {
        rc = send_deposit(&out, "good-1", 5);
        tries++;
        if (rc == 0 || tries == 6)
            break;
        if (rc != died_with)
            fail_msg("the good deposit, try %d: exit %d: %s", tries, rc, out);
        deaths++;
        free(out);
    }
    if (rc != 0)
        fail_msg("the good deposit was never decided (%d deaths): %s", deaths,
                 out);
    assert_int_equal(deaths, 3);
    assert_non_null(strstr(out, "\"accepted\""));
    assert_non_null(strstr(out, "Death 3 of 3"));
    free(out);

    /* The bad one's stored result is the answer to it now. */
    rc = send_deposit(&out, id, amount);
    if (rc != 3 || !strstr(out, "PLUGIN_CRASHED") || !strstr(out, why))
        fail_msg("the bad deposit again: exit %d: %s", rc, out);
    assert_non_null(strstr(out, "the host died 3 times"));
    free(out);
    char reason[512], key[64];
    last_dead_letter(reason, sizeof reason, key, sizeof key);
    assert_string_equal(key, "acc-1");
    if (!strstr(reason, "PLUGIN_CRASHED") || !strstr(reason, why))
        fail_msg("dead-letter reason: %s", reason);

    /* The account is served: balance 5, one deposit. */
    rc = e2e_run(&out, LIMIT "%s state -c %s Account acc-1", STELE, config);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\"version\": 2"));
    free(out);
}

static void
test_a_segfaulting_decide_is_rejected_after_three_deaths(void **state)
{
    (void)state;
    expect_contained(666, "SIGSEGV", 128 + SIGSEGV);
}

static void test_an_aborting_decide_is_rejected_after_three_deaths(void **state)
{
    (void)state;
    expect_contained(667, "SIGABRT", 128 + SIGABRT);
}

static void
test_a_decide_that_calls_exit_is_rejected_after_three_deaths(void **state)
{
    (void)state;
    send_env = "ASAN_OPTIONS=detect_leaks=0 ";
    expect_contained(668, "exit() during the call", 3);
    send_env = "";
}

static void
test_a_stack_overflow_in_decide_is_rejected_after_three_deaths(void **state)
{
    (void)state;
    expect_contained(669, "SIGSEGV", 128 + SIGSEGV);
}

static void
test_an_endless_decide_times_out_and_is_rejected_after_three(void **state)
{
    (void)state;
    write_config("  plugin_timeout_ms: 300\n");
    expect_contained(670, "timed out after", 70);
}

static void
test_a_segfaulting_evolve_is_rejected_after_three_deaths(void **state)
{
    (void)state;
    expect_contained(671, "applying the events decided for it: SIGSEGV",
                     128 + SIGSEGV);
}

static void test_a_crash_limit_of_one_rejects_at_the_first_restart(void **state)
{
    (void)state;
    write_config("  plugin_crash_limit: 1\n");
    open_account();
    char *out;
    assert_int_equal(send_deposit(&out, "bad-1", 666), 128 + SIGSEGV);
    free(out);
    int rc = send_deposit(&out, "good-1", 5);
    if (rc != 0 || !strstr(out, "\"accepted\""))
        fail_msg("the good deposit: exit %d: %s", rc, out);
    free(out);
}

/* stele run with a decide that never returns and no time limit: SIGTERM
 * ends it after engine.shutdown_grace_ms, naming the command; before, it
 * never ended. */
static void
test_sigterm_during_an_endless_decide_ends_the_host_after_grace(void **state)
{
    (void)state;
    write_config("  plugin_timeout_ms: 0\n"
                 "  shutdown_grace_ms: 500\n");
    open_account();
    char errpath[400];
    snprintf(errpath, sizeof errpath, "%s/run.err", dir);
    pid_t host = start_host(STELE, dir, config, errpath);
    char *out;
    /* the host takes it and hangs in it: no result */
    int rc = e2e_run(&out,
                     LIMIT "%s send -c %s --timeout 500 '{\"type\":"
                           "\"bank.Deposit\",\"aggregate_id\":\"acc-1\","
                           "\"command_id\":\"bad-670\",\"data\":{\"amount\":"
                           "670}}'",
                     STELE, config);
    if (rc != 1 || !strstr(out, "no result"))
        fail_msg("send: exit %d: %s", rc, out);
    free(out);
    int64_t ms;
    int status = stop_host(host, &ms);
    assert_true(ms >= 400);
    assert_true(ms < 2500);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 143);
    rc = e2e_run(&out, "cat %s", errpath);
    if (!strstr(out, "bad-670") || !strstr(out, "shutdown_grace_ms"))
        fail_msg("host's stderr: %s", out);
    free(out);
    /* and the next start counts the hang against the command (and, with
     * a time limit now, ends in it again) */
    write_config("  plugin_timeout_ms: 300\n");
    rc = e2e_run(&out, LIMIT "%s query -c %s --list nothing", STELE, config);
    if (!strstr(out, "still running") || !strstr(out, "Death 1 of 3"))
        fail_msg("the next start: exit %d: %s", rc, out);
    free(out);
}

/* A stored event that the aggregate's evolve dies on, met while states
 * are rebuilt (stele replay here; a state_version bump at start is the
 * same path): after three deaths that aggregate alone is broken, and the
 * next replay tries it again. Before, every replay, and every start after
 * a state_version bump, died on it. */
static void
test_an_evolve_that_dies_rebuilding_breaks_that_aggregate(void **state)
{
    (void)state;
    /* The event is written by the bank's own plugin, which applies it. */
    write_config_with(BANK, NULL);
    open_account();
    char *out;
    int rc = send_deposit(&out, "dep-671", 671);
    if (rc != 0)
        fail_msg("the deposit: exit %d: %s", rc, out);
    free(out);
    rc = e2e_run(&out,
                 LIMIT "%s send -c %s '{\"type\":\"bank.OpenAccount\","
                       "\"aggregate_id\":\"acc-2\",\"data\":{\"owner\":"
                       "\"Bo\"}}'",
                 STELE, config);
    assert_int_equal(rc, 0);
    free(out);

    /* Now an evolve that dies on it rebuilds the states. */
    write_config(NULL);
    for (int death = 1; death <= 3; death++) {
        rc = e2e_run(&out, LIMIT "%s replay -c %s", STELE, config);
        if (rc != 128 + SIGSEGV)
            fail_msg("replay %d: exit %d, expected a SIGSEGV: %s", death, rc,
                     out);
        free(out);
    }
    rc = e2e_run(&out, LIMIT "%s replay -c %s", STELE, config);
    if (rc != 1 || !strstr(out, "acc-1") || !strstr(out, "PLUGIN_CRASHED") ||
        !strstr(out, "left broken"))
        fail_msg("the fourth replay: exit %d: %s", rc, out);
    assert_non_null(strstr(out, "Death 3 of 3"));
    free(out);

    /* acc-1 is broken alone: its commands are refused, acc-2's decided. */
    rc = send_deposit(&out, "dep-after", 5);
    if (!strstr(out, "AGGREGATE_BROKEN"))
        fail_msg("a deposit to the broken account: exit %d: %s", rc, out);
    free(out);
    rc = e2e_run(&out,
                 LIMIT "%s send -c %s '{\"type\":\"bank.Deposit\","
                       "\"aggregate_id\":\"acc-2\",\"data\":"
                       "{\"amount\":5}}'",
                 STELE, config);
    if (rc != 0 || !strstr(out, "\"accepted\""))
        fail_msg("a deposit to acc-2: exit %d: %s", rc, out);
    free(out);

    /* The deaths were forgotten once the mark was stored: the next
     * replay tries the event again (and dies of it again). */
    rc = e2e_run(&out, LIMIT "%s replay -c %s", STELE, config);
    if (rc != 128 + SIGSEGV)
        fail_msg("the replay after: exit %d: %s", rc, out);
    free(out);
}

/* A decide that fails after reading a field its record does not have is
 * rejected naming the call, the record and the field; before, the
 * rejection said only "decide failed: ENOTFOUND". */
static void test_a_misspelt_field_is_named_in_the_rejection(void **state)
{
    (void)state;
    open_account();
    char *out;
    int rc = send_deposit(&out, "typo-1", 673);
    if (rc != 3 || !strstr(out, "PLUGIN_ERROR") ||
        !strstr(out, "get_long(bank.Deposit.amountt): bank.Deposit has no "
                     "field 'amountt'"))
        fail_msg("the deposit: exit %d: %s", rc, out);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_a_segfaulting_decide_is_rejected_after_three_deaths),
        T(test_an_aborting_decide_is_rejected_after_three_deaths),
        T(test_a_decide_that_calls_exit_is_rejected_after_three_deaths),
        T(test_a_stack_overflow_in_decide_is_rejected_after_three_deaths),
        T(test_an_endless_decide_times_out_and_is_rejected_after_three),
        T(test_a_segfaulting_evolve_is_rejected_after_three_deaths),
        T(test_a_crash_limit_of_one_rejects_at_the_first_restart),
        T(test_sigterm_during_an_endless_decide_ends_the_host_after_grace),
        T(test_an_evolve_that_dies_rebuilding_breaks_that_aggregate),
        T(test_a_misspelt_field_is_named_in_the_rejection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
