/*
 * The stele binary driven as a user drives it: a config in a temporary
 * directory, `stele run` in the background, `stele send/query/events/state
 * /replay/plugin inspect` as separate processes.
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

#include <jansson.h>

#include "e2e.h"

#define STELE STELE_BUILD_DIR "/stele"
#define PLUGINS STELE_BUILD_DIR "/plugins/"

static char dir[256], config[320];

static void write_config(const char *extra_plugin)
{
    FILE *f = fopen(config, "w");
    assert_non_null(f);
    fprintf(f,
            "app: bank\n"
            "data_dir: data\n"
            "schemas: %s/schemas\n"
            "plugins:\n"
            "  - %sbank_account.so\n"
            "  - %sbank_balances.so\n"
            "  - %sbank_daily_totals.so\n"
            "  - %sbank_account_query.so\n"
            "  - %sbank_richest_query.so\n",
            STELE_SOURCE_DIR, PLUGINS, PLUGINS, PLUGINS, PLUGINS, PLUGINS);
    if (extra_plugin)
        fprintf(f, "  - %s\n", extra_plugin);
    fprintf(f, "logging:\n  level: warn\n");
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/stele-e2e-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(config, sizeof config, "%s/stele.yaml", dir);
    write_config(NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char *out;
    e2e_run(&out, "rm -rf '%s'", dir);
    free(out);
    return 0;
}

static void send_ok(const char *json, const char *expect)
{
    char *out;
    int rc = e2e_run(&out, "%s send -c %s '%s'", STELE, config, json);
    if (rc != 0 || (expect && !strstr(out, expect)))
        fail_msg("send %s: exit %d: %s", json, rc, out);
    free(out);
}

static void test_send_and_query_without_a_running_host(void **state)
{
    (void)state;
    send_ok("{\"type\":\"bank.OpenAccount\",\"aggregate_id\":\"acc-1\","
            "\"data\":{\"owner\":\"Alice\",\"initial_deposit\":100}}",
            "\"accepted\"");
    char *out;
    int rc = e2e_run(&out, "%s send -c %s '%s'", STELE, config,
                     "{\"type\":\"bank.Withdraw\",\"aggregate_id\":\"acc-1\","
                     "\"data\":{\"amount\":500}}");
    assert_int_equal(rc, 3);
    assert_non_null(strstr(out, "INSUFFICIENT_FUNDS"));
    free(out);
    rc = e2e_run(&out, "%s query -c %s account '{\"account_id\":\"acc-1\"}'",
                 STELE, config);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\"balance\": 100"));
    free(out);
    rc = e2e_run(&out,
                 "%s query -c %s --list balances --filter 'owner^=Al' "
                 "--sort balance --desc",
                 STELE, config);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\"total\": 1"));
    free(out);
    rc = e2e_run(&out, "%s events -c %s --aggregate Account --id acc-1", STELE,
                 config);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\"type\":\"bank.AccountOpened\""));
    free(out);
    rc = e2e_run(&out, "%s state -c %s Account acc-1", STELE, config);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\"version\": 1"));
    free(out);
    rc = e2e_run(&out, "%s replay -c %s", STELE, config);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "replayed 1 events into 1 states"));
    free(out);
    rc = e2e_run(&out, "%s status -c %s", STELE, config);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\"aggregate\": \"Account\""));
    assert_non_null(strstr(out, "\"name\": \"balances\""));
    assert_null(strstr(out, "\"lag\": 1"));
    free(out);
}

static pid_t start_host(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl(STELE, STELE, "run", "-c", config, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void test_running_host_processes_and_stops_cleanly(void **state)
{
    (void)state;
    /* Create the log first so the host and the senders agree on topics. */
    send_ok("{\"type\":\"bank.OpenAccount\",\"aggregate_id\":\"h-0\","
            "\"data\":{\"owner\":\"H\"}}",
            "\"accepted\"");
    pid_t host = start_host();
    for (int i = 1; i <= 10; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"type\":\"bank.OpenAccount\",\"aggregate_id\":\"h-%d\","
                 "\"data\":{\"owner\":\"H\",\"initial_deposit\":%d}}",
                 i, i);
        send_ok(json, "\"version\": 1");
    }
    send_ok("{\"type\":\"bank.Deposit\",\"aggregate_id\":\"h-3\","
            "\"data\":{\"amount\":4},\"expected_version\":1}",
            "\"version\": 2");
    assert_int_equal(kill(host, SIGTERM), 0);
    int status;
    assert_int_equal(waitpid(host, &status, 0), host);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char *out;
    int rc = e2e_run(&out, "%s query -c %s --list balances --page-size 100",
                     STELE, config);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\"total\": 11"));
    free(out);

    /* a cursor walk: the first 5, then the 6 after them */
    rc = e2e_run(&out,
                 "%s query -c %s --list balances --sort balance --page-size 5 "
                 "--no-total",
                 STELE, config);
    assert_int_equal(rc, 0);
    json_t *first = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(first);
    assert_null(json_object_get(first, "total"));
    assert_int_equal(json_array_size(json_object_get(first, "items")), 5);
    const char *next = json_string_value(json_object_get(first, "next"));
    assert_non_null(next);
    rc =
        e2e_run(&out,
                "%s query -c %s --list balances --sort balance --page-size 100 "
                "--after '%s'",
                STELE, config, next);
    json_decref(first);
    assert_int_equal(rc, 0);
    json_t *rest = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(rest);
    assert_int_equal(json_array_size(json_object_get(rest, "items")), 6);
    assert_true(json_is_null(json_object_get(rest, "next")));
    json_decref(rest);
    /* what is not a cursor is refused */
    rc = e2e_run(&out, "%s query -c %s --list balances --after e30", STELE,
                 config);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "is not a cursor"));
    free(out);
}

static void test_bad_input_is_refused_with_a_reason(void **state)
{
    (void)state;
    char *out;
    int rc = e2e_run(&out, "%s send -c %s '{not json'", STELE, config);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "not valid JSON"));
    free(out);
    rc = e2e_run(&out,
                 "%s send -c %s '{\"type\":\"bank.Nope\","
                 "\"aggregate_id\":\"x\"}'",
                 STELE, config);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "bank.Nope"));
    free(out);
    rc = e2e_run(&out, "%s frobnicate", STELE);
    assert_int_equal(rc, 2);
    free(out);
    /* a key twice: before, the last "type" won and a withdraw went in as
     * a deposit */
    rc = e2e_run(&out,
                 "%s send -c %s '{\"type\":\"bank.Withdraw\","
                 "\"aggregate_id\":\"x\",\"data\":{\"amount\":5},"
                 "\"type\":\"bank.Deposit\"}'",
                 STELE, config);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "duplicate object key"));
    free(out);
    /* stdin past the limit: before, cut at 64 MiB without a word */
    rc = e2e_run(&out,
                 "head -c 70000000 /dev/zero | tr '\\0' ' ' | %s send -c %s -",
                 STELE, config);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "larger than 64 MiB"));
    free(out);
}

static void test_bad_config_names_file_and_line(void **state)
{
    (void)state;
    FILE *f = fopen(config, "a");
    fprintf(f, "bogus_key: 1\n");
    fclose(f);
    char *out;
    int rc = e2e_run(&out, "%s query -c %s --list balances", STELE, config);
    assert_int_equal(rc, 1);
    char expect[400];
    snprintf(expect, sizeof expect, "%s:", config);
    assert_non_null(strstr(out, expect));
    assert_non_null(strstr(out, "bogus_key"));
    free(out);
}

static void test_bad_plugin_stops_the_host_from_starting(void **state)
{
    (void)state;
    write_config(STELE_BUILD_DIR "/fixtures/not_a_plugin.so");
    char *out;
    int rc = e2e_run(&out, "%s run -c %s", STELE, config);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "not_a_plugin.so"));
    /* one line */
    assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));
    free(out);
}

/* A projector stuck on a poison event does not keep `query` from answering
 * from the other read models: it warns on stderr and serves them. */
static void test_query_answers_while_another_projector_fails(void **state)
{
    (void)state;
    write_config(STELE_BUILD_DIR "/test-plugins/test_flaky.so");
    setenv("STELE_TEST_HEALED", "/nonexistent/healed", 1);
    send_ok("{\"type\":\"bank.OpenAccount\",\"aggregate_id\":\"p-1\","
            "\"data\":{\"owner\":\"Pat\"}}",
            "\"accepted\"");
    send_ok("{\"type\":\"bank.Deposit\",\"aggregate_id\":\"p-1\","
            "\"data\":{\"amount\":666}}",
            "\"accepted\"");
    char *out;
    int rc = e2e_run(&out, "%s query -c %s --list balances", STELE, config);
    unsetenv("STELE_TEST_HEALED");
    if (rc != 0)
        fail_msg("query: exit %d: %s", rc, out);
    assert_non_null(strstr(out, "\"balance\": 666"));
    assert_non_null(strstr(out, "warning: projector flaky failed"));
    assert_non_null(strstr(out, "poison deposit"));
    free(out);
}

static void test_plugin_inspect_prints_the_descriptor(void **state)
{
    (void)state;
    char *out;
    int rc =
        e2e_run(&out, "%s plugin inspect %sbank_account.so", STELE, PLUGINS);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "bank.account"));
    assert_non_null(strstr(out, "bank.Deposit"));
    assert_non_null(strstr(out, "bank.AccountState"));
    free(out);
}

static void
test_schema_check_passes_on_the_bank_and_names_a_breaking_change(void **state)
{
    (void)state;
    write_config(STELE_BUILD_DIR "/upcasters/bank_deposited_v1_v2.so");
    char *out;
    int rc = e2e_run(&out, "%s schema check -c %s", STELE, config);
    if (rc != 0)
        fail_msg("schema check on the bank: exit %d: %s", rc, out);
    free(out);
    /* a v3 that changes a field's type with no upcaster behind it */
    rc = e2e_run(&out,
                 "mkdir -p %s/schemas && cp -r %s/schemas/bank %s/schemas/",
                 dir, STELE_SOURCE_DIR, dir);
    assert_int_equal(rc, 0);
    free(out);
    char path[400];
    snprintf(path, sizeof path, "%s/schemas/bank/bank.Withdrawn.v2.avsc", dir);
    FILE *v2 = fopen(path, "w");
    assert_non_null(v2);
    fputs("{\"type\": \"record\", \"name\": \"Withdrawn\", \"namespace\": "
          "\"bank\", \"fields\": [{\"name\": \"amount\", \"type\": "
          "\"string\"}, {\"name\": \"balance\", \"type\": \"long\"}]}\n",
          v2);
    fclose(v2);
    rc = e2e_run(&out, "sed -i 's#^schemas: .*#schemas: %s/schemas#' %s", dir,
                 config);
    assert_int_equal(rc, 0);
    free(out);
    rc = e2e_run(&out, "%s schema check -c %s", STELE, config);
    if (rc != 1 || !strstr(out, "bank.Withdrawn.amount"))
        fail_msg("schema check with a breaking v2: exit %d: %s", rc, out);
    assert_non_null(strstr(out, "INCOMPATIBLE"));
    free(out);
}

/* Before, --config was not an option: a plugin named a schema the
 * config's schemas/ lacks only when the host first used it. */
static void test_plugin_inspect_checks_a_config_catalogue(void **state)
{
    (void)state;
    char *out;
    int rc = e2e_run(&out, "%s plugin inspect %sbank_account.so --config %s",
                     STELE, PLUGINS, config);
    if (rc != 0 || !strstr(out, "schemas the plugin names are there"))
        fail_msg("inspect --config: exit %d: %s", rc, out);
    free(out);
    rc = e2e_run(&out,
                 "mkdir -p %s/schemas && cp -r %s/schemas/bank %s/schemas/ && "
                 "rm %s/schemas/bank/bank.Withdrawn.v1.avsc && "
                 "sed -i 's#^schemas: .*#schemas: %s/schemas#' %s",
                 dir, STELE_SOURCE_DIR, dir, dir, dir, config);
    assert_int_equal(rc, 0);
    free(out);
    rc = e2e_run(&out, "%s plugin inspect %sbank_account.so --config %s", STELE,
                 PLUGINS, config);
    if (rc != 1 || !strstr(out, "MISSING event bank.Withdrawn v1: no file "
                                "bank.Withdrawn.v1.avsc"))
        fail_msg("inspect --config, a schema missing: exit %d: %s", rc, out);
    free(out);
}

/* Before, the shipped example failed its own check once one command had
 * registered Deposited v2 (v1 was checked against it, backwards). */
static void test_schema_check_passes_before_and_after_commands(void **state)
{
    (void)state;
    write_config(STELE_BUILD_DIR "/upcasters/bank_deposited_v1_v2.so");
    char *out;
    int rc = e2e_run(&out, "%s schema check -c %s", STELE, config);
    if (rc != 0)
        fail_msg("schema check, fresh: exit %d: %s", rc, out);
    free(out);
    send_ok("{\"type\":\"bank.OpenAccount\",\"aggregate_id\":\"sc-1\","
            "\"data\":{\"owner\":\"ann\"}}",
            "accepted");
    send_ok("{\"type\":\"bank.Deposit\",\"aggregate_id\":\"sc-1\","
            "\"data\":{\"amount\":5}}",
            "accepted");
    rc = e2e_run(&out, "%s schema check -c %s", STELE, config);
    if (rc != 0 || !strstr(out, "all compatible"))
        fail_msg("schema check after commands: exit %d: %s", rc, out);
    free(out);
    /* a read registers nothing */
    rc = e2e_run(&out, "%s state -c %s Account sc-1 && %s schema list -c %s",
                 STELE, config, STELE, config);
    assert_int_equal(rc, 0);
    assert_null(strstr(out, "version 2"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_send_and_query_without_a_running_host),
        T(test_running_host_processes_and_stops_cleanly),
        T(test_bad_input_is_refused_with_a_reason),
        T(test_bad_config_names_file_and_line),
        T(test_bad_plugin_stops_the_host_from_starting),
        T(test_query_answers_while_another_projector_fails),
        T(test_plugin_inspect_prints_the_descriptor),
        T(test_schema_check_passes_on_the_bank_and_names_a_breaking_change),
        T(test_plugin_inspect_checks_a_config_catalogue),
        T(test_schema_check_passes_before_and_after_commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
