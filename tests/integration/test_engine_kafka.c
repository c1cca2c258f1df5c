/*
 * The engine on a real Kafka broker: `stele run` processes as a user starts
 * them, the bank example, exactly-once command processing through
 * transactions, replies, scale-out over several hosts, a host killed with
 * SIGKILL in the middle of a load, bad records, and the broker restarted
 * under load.
 *
 * The broker comes from scripts/kafka-start.sh (started here when
 * 127.0.0.1:9092 does not answer). Every test uses its own app name and
 * topic prefix, so runs never see each other's records.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/map.h"
#include "common/util.h"
#include "config/config.h"
#include "engine/engine.h"
#include "log/log.h"

#define STELE STELE_BUILD_DIR "/stele"
#define PLUGINS STELE_BUILD_DIR "/plugins/"
#define MAX_HOSTS 3

typedef struct fixture {
    char dir[128];
    char config[200];
    char app[32];
    stele_config *cfg;
    stele_engine *e; /* the test's own handle: submits and reads */
    pid_t hosts[MAX_HOSTS];
} fixture;

static bool broker_up(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9092)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    bool up = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    return up;
}

static int group_setup(void **state)
{
    (void)state;
    if (!broker_up() &&
        system(STELE_SOURCE_DIR "/scripts/kafka-start.sh >&2") != 0) {
        fprintf(stderr, "cannot start the Kafka broker\n");
        return -1;
    }
    return 0;
}

static void write_config(fixture *f)
{
    FILE *out = fopen(f->config, "w");
    assert_non_null(out);
    fprintf(out,
            "app: %s\n"
            "data_dir: %s/data\n"
            "schemas: %s/schemas\n"
            "plugins:\n"
            "  - %sbank_account.so\n"
            "  - %sbank_balances.so\n"
            "log:\n"
            "  backend: kafka\n"
            "  partitions: 6\n"
            "  replication_factor: 1\n"
            "  kafka:\n"
            "    bootstrap.servers: 127.0.0.1:9092\n"
            /* a killed host's partitions move within seconds, and its
             * open transaction is aborted soon after */
            "    session.timeout.ms: 6000\n"
            "    heartbeat.interval.ms: 500\n"
            "    transaction.timeout.ms: 10000\n"
            "engine:\n"
            "  command_batch: 500\n"
            "  commit_interval_ms: 20\n"
            "  reply_timeout_ms: 60000\n"
            "logging:\n"
            "  level: warn\n",
            f->app, f->dir, STELE_SOURCE_DIR, PLUGINS, PLUGINS);
    fclose(out);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/stele-kafka-it-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->config, sizeof f->config, "%s/stele.yaml", f->dir);
    uint32_t r;
    assert_int_equal(getrandom(&r, sizeof r, 0), (ssize_t)sizeof r);
    snprintf(f->app, sizeof f->app, "it%08x", r);
    write_config(f);
    stele_err err = {0};
    if (stele_config_load(f->config, &f->cfg, &err) != 0)
        fail_msg("config: %s", err.msg);
    if (stele_engine_open(f->cfg, &f->e, &err) != 0)
        fail_msg("open: %s", err.msg);
    *state = f;
    return 0;
}

static void stop_host(fixture *f, int i, int sig)
{
    if (f->hosts[i] <= 0)
        return;
    kill(f->hosts[i], sig);
    int status;
    waitpid(f->hosts[i], &status, 0);
    f->hosts[i] = 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < MAX_HOSTS; i++)
        stop_host(f, i, SIGKILL);
    stele_engine_close(f->e);
    stele_config_free(f->cfg);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void start_host(fixture *f, int i)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(STELE, STELE, "run", "-c", f->config, (char *)NULL);
        _exit(127);
    }
    f->hosts[i] = pid;
}

static void submit(fixture *f, const char *type, const char *id,
                   const char *data, const char *command_id,
                   stele_submitted *s)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"type\":\"%s\",\"aggregate_id\":\"%s\",\"data\":%s%s%s%s}",
             type, id, data, command_id ? ",\"command_id\":\"" : "",
             command_id ? command_id : "", command_id ? "\"" : "");
    json_t *cmd = json_loads(text, 0, NULL);
    assert_non_null(cmd);
    stele_err err = {0};
    int rc = stele_engine_submit_json(f->e, cmd, s, &err);
    json_decref(cmd);
    if (rc != 0)
        fail_msg("submit: %s", err.msg);
}

static json_t *wait_result(fixture *f, const stele_submitted *s)
{
    json_t *r = NULL;
    stele_err err = {0};
    if (stele_engine_wait_result(f->e, s, 60000, &r, &err) != 0)
        fail_msg("wait %s: %s", s->command_id, err.msg);
    return r;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Every event of the app, checked: per aggregate versions 1..n without a
 * gap or a repeat, and each command's events appear once. */
typedef struct audit {
    stele_map *versions; /* aggregate id -> last version (as intptr) */
    stele_map *causes;   /* causation id -> count */
    size_t events;
    size_t deposits;
    bool broken;
    char why[256];
} audit;

static void audit_event(void *opaque, json_t *ev)
{
    audit *a = opaque;
    const char *id = jstr(ev, "aggregate_id");
    intptr_t version = (intptr_t)json_integer_value(json_object_get(ev, "version"));
    intptr_t last = (intptr_t)stele_map_gets(a->versions, id);
    if (version != last + 1 && !a->broken) {
        a->broken = true;
        snprintf(a->why, sizeof a->why, "%s: version %ld after %ld", id,
                 (long)version, (long)last);
    }
    stele_map_put(a->versions, id, strlen(id), (void *)version, NULL);
    const char *cause = jstr(ev, "causation_id");
    intptr_t n = (intptr_t)stele_map_gets(a->causes, cause);
    stele_map_put(a->causes, cause, strlen(cause), (void *)(n + 1), NULL);
    if (n + 1 > 1 && !a->broken) {
        a->broken = true;
        snprintf(a->why, sizeof a->why, "command %s has events twice", cause);
    }
    a->events++;
    if (strcmp(jstr(ev, "type"), "bank.Deposited") == 0)
        a->deposits++;
    json_decref(ev);
}

static void run_audit(fixture *f, audit *a)
{
    *a = (audit){.versions = stele_map_new(), .causes = stele_map_new()};
    stele_err err = {0};
    if (stele_engine_events(f->e, "Account", NULL, 0, audit_event, a, &err) !=
        0)
        fail_msg("events: %s", err.msg);
}

static void audit_free(audit *a)
{
    stele_map_free(a->versions, NULL);
    stele_map_free(a->causes, NULL);
}

static void test_commands_get_replies_from_a_running_host(void **state)
{
    fixture *f = *state;
    start_host(f, 0);
    stele_submitted s;
    submit(f, "bank.OpenAccount", "k-1", "{\"owner\":\"Ann\"}", NULL, &s);
    json_t *r = wait_result(f, &s);
    assert_string_equal(jstr(r, "status"), "accepted");
    json_decref(r);
    submit(f, "bank.Withdraw", "k-1", "{\"amount\":5}", NULL, &s);
    r = wait_result(f, &s);
    assert_string_equal(jstr(r, "code"), "INSUFFICIENT_FUNDS");
    json_decref(r);
    submit(f, "bank.Deposit", "k-1", "{\"amount\":5}", "dep-k1", &s);
    json_t *r1 = wait_result(f, &s);
    submit(f, "bank.Deposit", "k-1", "{\"amount\":5}", "dep-k1", &s);
    json_t *r2 = wait_result(f, &s);
    assert_true(json_equal(r1, r2)); /* the stored result, again */
    json_decref(r1);
    json_decref(r2);
    audit a;
    run_audit(f, &a);
    assert_false(a.broken);
    assert_int_equal(a.events, 2);
    audit_free(&a);
    stop_host(f, 0, SIGTERM);
}

/* Bad records on the commands topic: answered with a rejection, or sent to
 * the dead-letter topic when there is no command id to answer. */
static void test_bad_records_are_rejected_on_kafka(void **state)
{
    fixture *f = *state;
    start_host(f, 0);
    stele_log *log = NULL;
    stele_err err = {0};
    const char *keys[] = {"bootstrap.servers"};
    const char *values[] = {"127.0.0.1:9092"};
    char topic[64];
    snprintf(topic, sizeof topic, "%s.Account.commands", f->app);
    assert_int_equal(stele_log_open_kafka(keys, values, 1, "it-raw-producer",
                                          &log, &err),
                     0);
    const unsigned char unknown_id[] = {0, 0, 0, 0x7f, 0x7f, 2, 'x'};
    stele_log_header h = {"command_id", "raw-1", 5};
    stele_log_record rec = {.key = "bad-1", .key_len = 5,
                            .value = unknown_id, .value_len = sizeof unknown_id,
                            .headers = &h, .n_headers = 1};
    assert_int_equal(stele_log_produce(log, topic, -1, &rec, NULL, &err), 0);
    stele_log_close(log);
    stele_submitted s = {0};
    snprintf(s.command_id, sizeof s.command_id, "raw-1");
    snprintf(s.aggregate_type, sizeof s.aggregate_type, "Account");
    s.partition = stele_partition_for_key("bad-1", 5, 6);
    s.reply_partition = stele_partition_for_key("raw-1", 5, 6);
    s.reply_from = 0;
    json_t *r = wait_result(f, &s);
    assert_string_equal(jstr(r, "code"), "BAD_COMMAND");
    json_decref(r);
    /* and the host goes on */
    submit(f, "bank.OpenAccount", "ok-1", "{\"owner\":\"Bo\"}", NULL, &s);
    r = wait_result(f, &s);
    assert_string_equal(jstr(r, "status"), "accepted");
    json_decref(r);
}

#define ACCOUNTS 60
#define DEPOSITS 1200

/* Sends the load: opens, then deposits of 1 round-robin, with command ids
 * the audit can check. Kills host `victim` halfway when victim >= 0, and
 * runs `midway` (a shell command) halfway when not NULL. */
static void load(fixture *f, int victim, const char *midway)
{
    stele_submitted s;
    for (int i = 0; i < ACCOUNTS; i++) {
        char id[16], cid[32];
        snprintf(id, sizeof id, "acc-%d", i);
        snprintf(cid, sizeof cid, "open-%d", i);
        submit(f, "bank.OpenAccount", id, "{\"owner\":\"X\"}", cid, &s);
    }
    for (int i = 0; i < DEPOSITS; i++) {
        char id[16], cid[32];
        snprintf(id, sizeof id, "acc-%d", i % ACCOUNTS);
        snprintf(cid, sizeof cid, "dep-%d", i);
        submit(f, "bank.Deposit", id, "{\"amount\":1}", cid, &s);
        if (i == DEPOSITS / 2) {
            if (victim >= 0)
                stop_host(f, victim, SIGKILL);
            if (midway && system(midway) != 0)
                fail_msg("%s failed", midway);
        }
        if (i % 100 == 0) {
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
}

/* Waits until every command has its result, then checks the events. */
static void expect_exactly_once(fixture *f)
{
    stele_log *log = NULL;
    stele_err err = {0};
    const char *keys[] = {"bootstrap.servers"};
    const char *values[] = {"127.0.0.1:9092"};
    assert_int_equal(stele_log_open_kafka(keys, values, 1, "it-checker", &log,
                                          &err),
                     0);
    char results[64];
    snprintf(results, sizeof results, "%s.Account.results", f->app);
    /* every command id answered, within a bounded time */
    int64_t deadline = stele_mono_ns() + 120LL * 1000000000;
    for (int i = 0; i < ACCOUNTS + DEPOSITS; i++) {
        char cid[32], id[16];
        if (i < ACCOUNTS) {
            snprintf(cid, sizeof cid, "open-%d", i);
            snprintf(id, sizeof id, "acc-%d", i);
        } else {
            snprintf(cid, sizeof cid, "dep-%d", i - ACCOUNTS);
            snprintf(id, sizeof id, "acc-%d", (i - ACCOUNTS) % ACCOUNTS);
        }
        int32_t p = stele_partition_for_key(id, strlen(id), 6);
        for (;;) {
            stele_log_batch *b = NULL;
            assert_int_equal(stele_log_compacted_sync(log, results, p, &err), 0);
            int rc = stele_log_get_latest(log, results, p, cid, strlen(cid),
                                          &b, &err);
            if (rc == 0) {
                json_t *r = json_loadb(b->records[0].value,
                                       b->records[0].value_len, 0, NULL);
                if (strcmp(jstr(r, "status"), "accepted") != 0)
                    fail_msg("%s: %s", cid, jstr(r, "message"));
                json_decref(r);
                stele_log_batch_free(b);
                break;
            }
            assert_int_equal(rc, STELE_ENOTFOUND);
            if (stele_mono_ns() > deadline)
                fail_msg("command %s has no result", cid);
            sleep(1);
        }
    }
    stele_log_close(log);
    audit a;
    run_audit(f, &a);
    if (a.broken)
        fail_msg("%s", a.why);
    assert_int_equal(a.events, ACCOUNTS + DEPOSITS);
    assert_int_equal(a.deposits, DEPOSITS);
    assert_int_equal(stele_map_count(a.versions), ACCOUNTS);
    audit_free(&a);
}

static void test_sigkill_during_load_loses_and_duplicates_nothing(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < MAX_HOSTS; i++)
        start_host(f, i);
    load(f, 1, NULL);
    expect_exactly_once(f);
}

static void test_broker_restart_under_load_loses_nothing(void **state)
{
    fixture *f = *state;
    start_host(f, 0);
    start_host(f, 1);
    load(f, -1,
         STELE_SOURCE_DIR "/scripts/kafka-stop.sh >&2 && sleep 2 && "
         STELE_SOURCE_DIR "/scripts/kafka-start.sh >&2");
    expect_exactly_once(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_commands_get_replies_from_a_running_host),
        T(test_bad_records_are_rejected_on_kafka),
        T(test_sigkill_during_load_loses_and_duplicates_nothing),
        T(test_broker_restart_under_load_loses_nothing),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
