/*
 * engine.isolation: process — a plugin that crashes or hangs costs a
 * restart of the plugin worker, not of the host: one stele send (which
 * decides on the embedded log itself) meets each crash of
 * tests/plugins/crashing_account.c (a deposit of 666 SIGSEGV, 667 abort,
 * 668 exit, 669 stack overflow, 670 endless loop in decide; 671 SIGSEGV
 * in evolve), outlives three deaths of its worker, rejects the command
 * PLUGIN_CRASHED naming the cause, dead-letters it, and the good command
 * behind it is accepted once.
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

#include "e2e_host.h"
#include "log/log.h"

#define STELE STELE_BUILD_DIR "/stele"
#define CRASHING STELE_BUILD_DIR "/test-plugins/test_crashing_account.so"
#define LIMIT "timeout -s KILL 20 "

static char dir[256], config[320];
/* Before each stele send: a worker's exit() leaves memory allocated,
 * which LeakSanitizer would report in the worker. */
static const char *send_env = "";

static void configure(const char *engine)
{
    FILE *f = fopen(config, "w");
    assert_non_null(f);
    fprintf(f,
            "app: bank\ndata_dir: data\nschemas: %s/schemas\n"
            "plugins:\n  - %s\n"
            "engine:\n  commit_interval_ms: 0\n  isolation: process\n%s"
            "logging:\n  level: warn\n",
            STELE_SOURCE_DIR, CRASHING, engine ? engine : "");
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/stele-iso-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(config, sizeof config, "%s/stele.yaml", dir);
    configure(NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_run(NULL, "rm -rf '%s'", dir);
    return 0;
}

static int deposit(char **out, const char *id, int amount)
{
    return e2e_run(out,
                   "cd %s && %s" LIMIT
                   "%s send -c %s '{\"type\":\"bank.Deposit\","
                   "\"aggregate_id\":\"acc-1\",\"command_id\":\"%s\","
                   "\"data\":{\"amount\":%d}}'",
                   dir, send_env, STELE, config, id, amount);
}

static void open_account(void)
{
    char *out;
    int rc = e2e_run(&out,
                     "cd %s && " LIMIT "%s send -c %s '{\"type\":"
                     "\"bank.OpenAccount\",\"aggregate_id\":\"acc-1\","
                     "\"command_id\":\"open-1\",\"data\":{\"owner\":\"Ann\"}}'",
                     dir, STELE, config);
    if (rc != 0)
        fail_msg("open: exit %d: %s", rc, out);
    free(out);
}

static stele_log *open_log(void)
{
    char path[400];
    snprintf(path, sizeof path, "%s/data/log.db", dir);
    stele_log *log = NULL;
    stele_err err = {0};
    assert_int_equal(stele_log_open_sqlite(path, &log, &err), 0);
    return log;
}

static const char *header(const stele_log_record *r, const char *name,
                          char *buf, size_t size)
{
    buf[0] = '\0';
    for (size_t i = 0; i < r->n_headers; i++)
        if (!strcmp(r->headers[i].name, name))
            snprintf(buf, size, "%.*s", (int)r->headers[i].len,
                     (const char *)r->headers[i].value);
    return buf;
}

/* Every record of topic (partition 0..3) into *out (caller frees). */
static size_t read_all(stele_log *log, const char *topic, stele_log_batch **out,
                       int32_t partitions)
{
    size_t n = 0;
    for (int32_t p = 0; p < partitions; p++) {
        stele_err err = {0};
        assert_int_equal(stele_log_read(log, topic, p, 0, 1000, &out[p], &err),
                         0);
        n += out[p]->n;
    }
    return n;
}

/* The log holds what exactly-once allows: acc-1's events are versions
 * 1..2 (open, the good deposit) once each, one result per command id, and
 * one dead letter whose reason names why. */
static void expect_exactly_once(const char *why)
{
    stele_log *log = open_log();
    stele_log_batch *b[4];
    char v[32], buf[512];
    size_t n = read_all(log, "bank.Account.events", b, 4);
    assert_int_equal(n, 2);
    int64_t want = 1;
    for (int p = 0; p < 4; p++) {
        for (size_t i = 0; i < b[p]->n; i++)
            assert_int_equal(
                strtoll(header(&b[p]->records[i], "version", v, sizeof v), NULL,
                        10),
                want++);
        stele_log_batch_free(b[p]);
    }
    n = read_all(log, "bank.Account.results", b, 4);
    assert_int_equal(n, 3); /* open-1, the bad one, good-1 */
    for (int p = 0; p < 4; p++)
        stele_log_batch_free(b[p]);
    n = read_all(log, "bank.deadletter", b, 1);
    assert_int_equal(n, 1);
    header(&b[0]->records[0], "dlq.reason", buf, sizeof buf);
    if (!strstr(buf, "PLUGIN_CRASHED") || !strstr(buf, why) ||
        !strstr(buf, "the plugin worker died 3 times"))
        fail_msg("dead-letter reason: %s", buf);
    stele_log_batch_free(b[0]);
    stele_log_close(log);
}

/* One stele send of the bad deposit: its worker dies three times, the
 * send does not, and answers PLUGIN_CRASHED; then the good one. */
static void expect_isolated(int amount, const char *why)
{
    open_account();
    char *out, id[32];
    snprintf(id, sizeof id, "bad-%d", amount);
    int rc = deposit(&out, id, amount);
    if (rc != 3 || !strstr(out, "PLUGIN_CRASHED") || !strstr(out, why) ||
        !strstr(out, "the plugin worker died 3 times") ||
        !strstr(out, "death 3 of 3"))
        fail_msg("the bad deposit: exit %d: %s", rc, out);
    free(out);
    rc = deposit(&out, "good-1", 5);
    if (rc != 0 || !strstr(out, "\"accepted\"") ||
        !strstr(out, "\"version\": 2"))
        fail_msg("the good deposit: exit %d: %s", rc, out);
    free(out);
    /* asked again, the stored answer, nothing decided again */
    rc = deposit(&out, id, amount);
    if (rc != 3 || !strstr(out, "PLUGIN_CRASHED") || strstr(out, "death"))
        fail_msg("the bad deposit again: exit %d: %s", rc, out);
    free(out);
    expect_exactly_once(why);
}

static void
test_a_segfaulting_decide_costs_three_workers_not_the_host(void **state)
{
    (void)state;
    expect_isolated(666, "SIGSEGV");
}

static void
test_an_aborting_decide_costs_three_workers_not_the_host(void **state)
{
    (void)state;
    expect_isolated(667, "SIGABRT");
}

static void
test_a_decide_that_calls_exit_costs_three_workers_not_the_host(void **state)
{
    (void)state;
    send_env = "ASAN_OPTIONS=detect_leaks=0 ";
    expect_isolated(668, "exit(3) during the call");
    send_env = "";
}

static void
test_a_stack_overflow_in_decide_costs_three_workers_not_the_host(void **state)
{
    (void)state;
    expect_isolated(669, "SIGSEGV");
}

static void
test_an_endless_decide_is_killed_at_the_timeout_three_times(void **state)
{
    (void)state;
    configure("  plugin_timeout_ms: 300\n");
    expect_isolated(670, "timed out after");
}

static void
test_a_segfaulting_evolve_costs_three_workers_not_the_host(void **state)
{
    (void)state;
    expect_isolated(671, "applying the events decided for it: SIGSEGV");
}

/* stele run, a worker that never returns and no time limit: SIGTERM makes
 * the host kill it after engine.shutdown_grace_ms and exit normally. */
static void
test_sigterm_kills_a_hung_worker_after_grace_and_exits_normally(void **state)
{
    (void)state;
    configure("  plugin_timeout_ms: 0\n  shutdown_grace_ms: 500\n");
    open_account();
    char errpath[400];
    snprintf(errpath, sizeof errpath, "%s/run.err", dir);
    pid_t host = start_host(STELE, dir, config, errpath);
    char *out;
    int rc =
        e2e_run(&out,
                "cd %s && " LIMIT "%s send -c %s --timeout 500 '{\"type\":"
                "\"bank.Deposit\",\"aggregate_id\":\"acc-1\",\"command_id\":"
                "\"bad-670\",\"data\":{\"amount\":670}}'",
                dir, STELE, config);
    if (rc != 1 || !strstr(out, "no result"))
        fail_msg("send: exit %d: %s", rc, out);
    free(out);
    int64_t ms;
    int status = stop_host(host, &ms);
    assert_true(ms >= 400);
    assert_true(ms < 2500);
    rc = e2e_run(&out, "cat %s", errpath);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        !strstr(out, "bad-670") || !strstr(out, "into a stop (SIGTERM)"))
        fail_msg("host: status %d; its stderr: %s", status, out);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_a_segfaulting_decide_costs_three_workers_not_the_host),
        T(test_an_aborting_decide_costs_three_workers_not_the_host),
        T(test_a_decide_that_calls_exit_costs_three_workers_not_the_host),
        T(test_a_stack_overflow_in_decide_costs_three_workers_not_the_host),
        T(test_an_endless_decide_is_killed_at_the_timeout_three_times),
        T(test_a_segfaulting_evolve_costs_three_workers_not_the_host),
        T(test_sigterm_kills_a_hung_worker_after_grace_and_exits_normally),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
