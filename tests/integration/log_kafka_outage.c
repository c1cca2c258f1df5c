/*
 * log_kafka_outage.c — a transaction open while the broker is down for
 * longer than transaction.timeout.ms. Its records time out, and once the
 * broker is back it aborts the transaction itself, bumping the producer's
 * epoch: librdkafka's abort then fails with "fenced by a newer instance",
 * a fatal error. The handle must report the batch as failed but
 * retriable, replace its producer, and write again, with nothing of the
 * failed transaction visible. Before, the commit was STELE_EFATAL and the
 * handle (a host) never wrote again. Needs a broker the scripts can
 * restart.
 */
#include "log_kafka_outage.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common_kafka.h"
#include "log_conformance.h"

static const char *outage_bootstrap, *outage_prefix;

/* A handle with the default (per-process) transactional.id, as the host
 * opens it, and a short transaction timeout. */
static int open_default_id(stele_log **out, stele_err *err)
{
    char instance[96];
    snprintf(instance, sizeof instance, "%soutage.%ld", outage_prefix,
             (long)getpid());
    const char *keys[] = {"bootstrap.servers", "transaction.timeout.ms"};
    const char *values[] = {outage_bootstrap, "5000"};
    return stele_log_open_kafka(keys, values, 2, instance, out, err);
}

static int txn_write(stele_log *log, const char *topic, const char *value,
                     stele_err *err)
{
    stele_log_txn *txn = NULL;
    int rc = stele_log_txn_begin(log, &txn, err);
    if (rc)
        return rc;
    stele_log_record r = {
        .key = "k", .key_len = 1, .value = value, .value_len = strlen(value)};
    if ((rc = stele_log_txn_produce(txn, topic, 0, &r, NULL, err))) {
        stele_log_txn_abort(txn);
        return rc;
    }
    return stele_log_txn_commit(txn, err);
}

static void test_producer_outlives_a_broker_outage(void **state)
{
    (void)state;
    const char *restart = ckt_restart_command(9);
    if (!restart) {
        fprintf(stderr, "the broker was not started by scripts/kafka-start.sh; "
                        "the tests cannot restart it\n");
        skip();
    }
    char topic[96];
    snprintf(topic, sizeof topic, "%soutage", outage_prefix);
    stele_log *log = NULL;
    OK(open_default_id(&log, E));
    stele_topic_spec spec = {.name = topic, .partitions = 1};
    OK(stele_log_topic_ensure(log, &spec, E));
    OK(txn_write(log, topic, "before", E));

    /* A transaction open across the outage, its second record sent while
     * the broker is down: that one times out (message.timeout.ms is capped
     * at transaction.timeout.ms). */
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(log, &txn, E));
    stele_log_record r = {
        .key = "k", .key_len = 1, .value = "lost", .value_len = 4};
    /* One record while the broker is up: the transaction is open on the
     * broker's side too (it aborts it once transaction.timeout.ms has
     * passed, bumping the producer's epoch). */
    OK(stele_log_txn_produce(txn, topic, 0, &r, NULL, E));
    sleep(1);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(system(restart) == 0 ? 0 : 1);
    for (int i = 0; i < 600 && ckt_broker_pid() != 0; i++)
        usleep(50 * 1000);
    OK(stele_log_txn_produce(txn, topic, 0, &r, NULL, E));
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("%s failed", restart);
    /* Past transaction.timeout.ms and the coordinator's check for it
     * (every 10 s): the broker has aborted the transaction itself. */
    sleep(12);
    stele_err err = {0};
    int committed = stele_log_txn_commit(txn, &err);
    fprintf(stderr, "commit across the outage: %s%s%s\n",
            stele_strstatus(committed), committed ? ": " : "",
            committed ? err.msg : "");
    if (committed == STELE_EFATAL)
        fail_msg("commit across the outage: fatal (%s); want a retriable "
                 "failure or success",
                 err.msg);

    /* The handle writes again (its producer replaced when it failed). */
    int rc;
    for (int tries = 0;; tries++) {
        rc = txn_write(log, topic, "after", &err);
        if (rc == 0)
            break;
        if (rc == STELE_EFATAL || tries == 20)
            fail_msg("writing after the outage: %d (%s)", rc, err.msg);
        sleep(1);
    }

    /* What reads back: before, after, and the transaction of the outage
     * exactly when its commit said it happened. */
    stele_log_batch *b = NULL;
    OK(stele_log_read(log, topic, 0, 0, 100, &b, E));
    size_t lost_seen = 0;
    for (size_t i = 0; i < b->n; i++)
        lost_seen += b->records[i].value_len == 4 &&
                     !memcmp(b->records[i].value, "lost", 4);
    assert_int_equal(lost_seen, committed == 0 ? 2 : 0);
    assert_int_equal(b->n, 2 + lost_seen);
    assert_memory_equal(b->records[0].value, "before", 6);
    assert_memory_equal(b->records[b->n - 1].value, "after", 5);
    stele_log_batch_free(b);
    stele_log_close(log);
}

int log_kafka_outage_run(const char *bootstrap, const char *prefix)
{
    outage_bootstrap = bootstrap;
    outage_prefix = prefix;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_producer_outlives_a_broker_outage),
    };
    return cmocka_run_group_tests_name("log (kafka outage)", tests, NULL, NULL);
}
