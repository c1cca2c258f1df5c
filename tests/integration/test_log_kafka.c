/*
 * test_log_kafka.c — the log conformance suite against a real Kafka broker
 * (common_kafka.h: the one on 127.0.0.1:9092, a scratch one started when
 * none answers, or STELE_KAFKA_BOOTSTRAP), then what only Kafka shows:
 * aborted transactions stay invisible, a zombie with the same
 * transactional.id is fenced, a group's partitions move between handles,
 * views of compacted partitions follow tombstones, a missing broker is a
 * clear error, and a handle outlives a broker outage (log_kafka_outage.c).
 * The group tests are log_kafka_groups.c, the helpers log_kafka_helpers.c
 * (log_kafka_test.h). Topic and group names carry a random per-run
 * prefix: the broker may be shared. The run's topics are deleted at the
 * end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "common_kafka.h"
#include "log_conformance.h"
#include "log_kafka_test.h"
#include "log_kafka_outage.h"

/* ------------------------------------------------------------------ */
/* The conformance suite                                                */

static int fx_setup(void **fixture)
{
    *fixture = NULL;
    return 0;
}

static int fx_open(void *fixture, stele_log **out, stele_err *err)
{
    (void)fixture;
    return lkt_open_log(NULL, out, err);
}

static void fx_teardown(void *fixture)
{
    (void)fixture;
}

/* ------------------------------------------------------------------ */
/* Kafka-specific tests                                                 */

static void test_aborted_txn_is_invisible_to_reads_and_get_latest(void **state)
{
    ctx *c = *state;
    const char *ev = lkt_N(c, "ev"), *st = lkt_N(c, "st");
    lc_ensure(c->log, ev, 1, false);
    lc_ensure(c->log, st, 1, true);
    OK(stele_log_compacted_sync(c->log, st, 0, E)); /* a view exists */
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    stele_log_record r = lc_kv("acc", "aborted");
    OK(stele_log_txn_produce(txn, ev, 0, &r, NULL, E));
    OK(stele_log_txn_produce(txn, st, 0, &r, NULL, E));
    /* Long enough for librdkafka (linger.ms 5) to send them: the broker
     * holds the aborted records, not just the client's queue. */
    usleep(500 * 1000);
    stele_log_txn_abort(txn);

    assert_int_equal(lkt_count(c->log, ev, 0), 0);
    lkt_assert_latest(c->log, st, "acc", NULL);
    /* Another handle, reading the partitions from the start, agrees. */
    stele_log *other = NULL;
    OK(lkt_open_log(NULL, &other, E));
    assert_int_equal(lkt_count(other, ev, 0), 0);
    lkt_assert_latest(other, st, "acc", NULL);

    /* The aborted records and their marker took offsets. */
    lc_produce(c->log, ev, 0, "acc", "committed");
    lc_produce(c->log, st, 0, "acc", "committed");
    stele_log_batch *b = NULL;
    OK(stele_log_read(other, ev, 0, 0, 10, &b, E));
    assert_int_equal(b->n, 1);
    assert_true(b->records[0].offset >= 2);
    stele_log_batch_free(b);
    lkt_assert_latest(c->log, st, "acc", "committed");
    OK(stele_log_compacted_sync(other, st, 0, E));
    lkt_assert_latest(other, st, "acc", "committed");
    stele_log_close(other);
}

/* Records committed behind a transaction still open are not visible: a
 * handle's settle waits until no transaction is open on the partition,
 * and says so when one stays open past its bound. */
static void test_settle_waits_for_open_transactions(void **state)
{
    ctx *c = *state;
    const char *t = lkt_N(c, "st");
    lc_ensure(c->log, t, 1, true);
    lc_produce(c->log, t, 0, "a", "before");
    OK(stele_log_settle(c->log, t, 0, 0, E)); /* nothing open */
    stele_log *writer = NULL;
    OK(lkt_open_log(NULL, &writer, E));
    stele_log_txn *open_txn = NULL;
    OK(stele_log_txn_begin(writer, &open_txn, E));
    stele_log_record r = lc_kv("a", "open");
    OK(stele_log_txn_produce(open_txn, t, 0, &r, NULL, E));
    usleep(500 * 1000); /* at the broker, not in the client's queue */
    lc_produce(c->log, t, 0, "a", "behind"); /* committed, not visible */
    stele_err err = {0};
    assert_int_equal(stele_log_settle(c->log, t, 0, 0, &err), STELE_ERETRY);
    assert_int_equal(stele_log_settle(c->log, t, 0, 300, &err), STELE_ERETRY);
    assert_non_null(strstr(err.msg, "a transaction is still open"));
    stele_log *reader = NULL;
    OK(lkt_open_log(NULL, &reader, E));
    lkt_assert_latest(reader, t, "a", "before");
    stele_log_txn_abort(open_txn);
    OK(stele_log_settle(reader, t, 0, 10000, E));
    OK(stele_log_compacted_sync(reader, t, 0, E));
    lkt_assert_latest(reader, t, "a", "behind");
    stele_log_close(reader);
    stele_log_close(writer);
}

static void
test_zombie_with_same_txn_id_is_fenced_and_writes_nothing(void **state)
{
    ctx *c = *state;
    const char *t = lkt_N(c, "ev");
    lc_ensure(c->log, t, 1, false);
    char id[128];
    snprintf(id, sizeof id, "%szombie", lkt_test_prefix);
    stele_log *zombie = NULL, *successor = NULL;
    OK(lkt_open_log(id, &zombie, E));

    /* The zombie is mid-transaction when its successor starts. */
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(zombie, &txn, E));
    stele_log_record r = lc_kv("k", "from-zombie");
    OK(stele_log_txn_produce(txn, t, 0, &r, NULL, E));
    OK(lkt_open_log(id, &successor, E));
    r = lc_kv("k", "late");
    stele_err err = {0};
    int rc = stele_log_txn_produce(txn, t, 0, &r, NULL, &err);
    if (!rc)
        rc = stele_log_txn_commit(txn, &err);
    else
        stele_log_txn_abort(txn);
    if (rc != STELE_EFATAL || err.code != STELE_EFATAL || !strstr(err.msg, id))
        fail_msg("zombie commit: %d (%s), want EFATAL naming %s", rc, err.msg,
                 id);

    /* It stays fenced: every later transaction is refused. */
    rc = stele_log_txn_begin(zombie, &txn, &err);
    assert_int_equal(rc, STELE_EFATAL);
    assert_int_equal(stele_log_produce(zombie, t, 0, &r, NULL, &err),
                     STELE_EFATAL);
    assert_int_equal(lkt_count(c->log, t, 0), 0);

    /* The successor writes. */
    lc_produce(successor, t, 0, "k", "from-successor");
    stele_log_batch *b = NULL;
    OK(stele_log_read(c->log, t, 0, 0, 10, &b, E));
    assert_int_equal(b->n, 1);
    assert_memory_equal(b->records[0].value, "from-successor", 14);
    stele_log_batch_free(b);
    stele_log_close(zombie);
    stele_log_close(successor);
}

static void test_send_offset_commit_is_seen_by_other_handles(void **state)
{
    ctx *c = *state;
    const char *in = lkt_N(c, "in"), *out = lkt_N(c, "out"), *g = lkt_N(c, "g");
    lc_ensure(c->log, in, 1, false);
    lc_ensure(c->log, out, 1, false);
    for (int i = 0; i < 3; i++)
        lc_produce(c->log, in, 0, "k", "cmd");
    stele_log_consumer *cons = NULL;
    OK(stele_log_consumer_new(c->log, g, &in, 1, NULL, &cons, E));
    size_t got = 0;
    int64_t last = -1;
    for (int i = 0; i < 100 && got < 3; i++) {
        stele_log_batch *b = NULL;
        OK(stele_log_consumer_poll(cons, 300, 10, &b, E));
        for (size_t j = 0; j < b->n; j++)
            last = b->records[j].offset;
        got += b->n;
        stele_log_batch_free(b);
    }
    assert_int_equal(got, 3);
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    stele_log_record r = lc_kv("k", "result");
    OK(stele_log_txn_produce(txn, out, 0, &r, NULL, E));
    OK(stele_log_txn_send_offset(txn, cons, in, 0, last + 1, E));
    OK(stele_log_txn_commit(txn, E));

    stele_log *other = NULL;
    OK(lkt_open_log(NULL, &other, E));
    int64_t next = -1;
    OK(stele_log_committed(other, g, in, 0, &next, E));
    assert_int_equal(next, last + 1);
    assert_int_equal(lkt_count(other, out, 0), 1);
    stele_log_close(other);
    stele_log_consumer_close(cons);
}

static void test_views_follow_tombstones_and_sync(void **state)
{
    ctx *c = *state;
    const char *st = lkt_N(c, "st");
    lc_ensure(c->log, st, 3, true);
    stele_log_header h = {.name = "version", .value = "7", .len = 1};
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    stele_log_record r = lc_kv("k1", "v1");
    OK(stele_log_txn_produce(txn, st, -1, &r, NULL, E));
    r = lc_kv("k2", "v2");
    r.headers = &h;
    r.n_headers = 1;
    OK(stele_log_txn_produce(txn, st, -1, &r, NULL, E));
    r = lc_kv("k1", NULL);
    OK(stele_log_txn_produce(txn, st, -1, &r, NULL, E));
    r = lc_kv("k3", "v3");
    OK(stele_log_txn_produce(txn, st, -1, &r, NULL, E));
    OK(stele_log_txn_commit(txn, E));

    stele_log *reader = NULL;
    OK(lkt_open_log(NULL, &reader, E));
    for (int32_t p = 0; p < 3; p++)
        OK(stele_log_compacted_sync(reader, st, p, E));
    lkt_assert_latest(reader, st, "k1", NULL);
    lkt_assert_latest(reader, st, "k3", "v3");
    stele_log_batch *b = NULL;
    OK(stele_log_get_latest(reader, st, -1, "k2", 2, &b, E));
    assert_int_equal(b->records[0].n_headers, 1);
    assert_string_equal(b->records[0].headers[0].name, "version");
    assert_memory_equal(b->records[0].headers[0].value, "7", 1);
    assert_int_equal(b->records[0].partition,
                     stele_partition_for_key("k2", 2, 3));
    stele_log_batch_free(b);

    /* The writer's changes reach the reader's view at its next sync. */
    lc_produce(c->log, st, -1, "k2", NULL);
    lc_produce(c->log, st, -1, "k1", "back");
    lkt_assert_latest(c->log, st, "k2", NULL);
    lkt_assert_latest(c->log, st, "k1", "back");
    lkt_assert_latest(reader, st, "k2", "v2");
    for (int32_t p = 0; p < 3; p++)
        OK(stele_log_compacted_sync(reader, st, p, E));
    lkt_assert_latest(reader, st, "k2", NULL);
    lkt_assert_latest(reader, st, "k1", "back");
    /* A handle's own commits reach its view at once. */
    lc_produce(reader, st, -1, "k3", "mine");
    lkt_assert_latest(reader, st, "k3", "mine");

    stele_err err = {0};
    lc_ensure(c->log, lkt_N(c, "plain"), 1, false);
    assert_int_equal(
        stele_log_get_latest(c->log, lkt_N(c, "plain"), 0, "k", 1, &b, &err),
        STELE_EINVAL);
    stele_log_close(reader);
}

static void test_refused_record_fails_commit_and_writes_nothing(void **state)
{
    ctx *c = *state;
    const char *t = lkt_N(c, "small");
    const char *configs[] = {"max.message.bytes=2000"};
    stele_topic_spec spec = {
        .name = t, .partitions = 1, .configs = configs, .n_configs = 1};
    OK(stele_log_topic_ensure(c->log, &spec, E));
    static char big[5000];
    memset(big, 'x', sizeof big);
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    stele_log_record r = lc_kv("k", "fits");
    OK(stele_log_txn_produce(txn, t, 0, &r, NULL, E));
    r.value = big;
    r.value_len = sizeof big;
    OK(stele_log_txn_produce(txn, t, 0, &r, NULL, E));
    stele_err err = {0};
    int rc = stele_log_txn_commit(txn, &err);
    /* The broker refused the record (the topic's limit, not the
     * client's): the delivery report fails the whole transaction. */
    if (rc != STELE_EINVAL || !strstr(err.msg, t))
        fail_msg("commit: %d (%s), want EINVAL naming %s", rc, err.msg, t);
    assert_int_equal(lkt_count(c->log, t, 0), 0);
    /* The handle writes again. librdkafka 2.x may purge the first
     * transaction after such an abort ("Purged in queue", as in
     * karafka/waterdrop#501): that is STELE_ERETRY, and a retry works. */
    r = lc_kv("k", "after");
    rc = STELE_ERETRY;
    for (int i = 0; i < 3 && rc == STELE_ERETRY; i++)
        rc = stele_log_produce(c->log, t, 0, &r, NULL, &err);
    if (rc)
        fail_msg("produce after the refused record: %d (%s)", rc, err.msg);
    assert_int_equal(lkt_count(c->log, t, 0), 1);
}

/* One property set serves producers and consumers: a producer property
 * (linger.ms) reaching a consumer is expected, and librdkafka's warning
 * about it is not shown; its other log lines are, named as stele's. */
static void test_role_mismatch_warnings_are_not_shown(void **state)
{
    ctx *c = *state;
    const char *in = lkt_N(c, "quiet");
    lc_ensure(c->log, in, 1, false);
    char path[] = "/tmp/stele-kafka-stderr-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    const char *keys[] = {"bootstrap.servers", "linger.ms"};
    const char *values[] = {lkt_bootstrap, "5"};
    stele_log *log = NULL;
    stele_log_consumer *cons = NULL;
    stele_err err = {0};
    int rc =
        stele_log_open_kafka(keys, values, 2, lkt_N(c, "quiet"), &log, &err);
    if (rc == 0)
        rc = stele_log_consumer_new(log, lkt_N(c, "quiet-g"), &in, 1, NULL,
                                    &cons, &err);
    stele_log_batch *b = NULL;
    if (rc == 0 && (rc = stele_log_consumer_poll(cons, 500, 10, &b, &err)) == 0)
        stele_log_batch_free(b);
    stele_log_consumer_close(cons);
    stele_log_close(log);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char text[8192] = "";
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    unlink(path);
    if (rc)
        fail_msg("%s", err.msg);
    text[n > 0 ? n : 0] = '\0';
    if (strstr(text, "producer property"))
        fail_msg("warning shown: %s", text);
}

static void test_open_without_broker_names_servers_and_reason(void **state)
{
    (void)state;
    const char *keys[] = {"bootstrap.servers"};
    const char *values[] = {"127.0.0.1:1"};
    stele_log *log = NULL;
    stele_err err = {0};
    int rc = stele_log_open_kafka(keys, values, 1, "nobody", &log, &err);
    assert_int_not_equal(rc, 0);
    assert_null(log);
    assert_non_null(strstr(err.msg, "127.0.0.1:1"));
    assert_non_null(strstr(err.msg, "no broker answered"));
    assert_non_null(strstr(err.msg, "Connection refused")); /* the reason */

    const char *bad_keys[] = {"bootstrap.servers", "no.such.property"};
    const char *bad_values[] = {lkt_bootstrap, "1"};
    rc = stele_log_open_kafka(bad_keys, bad_values, 2, "nobody", &log, &err);
    assert_int_equal(rc, STELE_EINVAL);
    assert_non_null(strstr(err.msg, "no.such.property"));
}

int main(void)
{
    if (ckt_ensure_broker())
        return 1;
    lkt_bootstrap = ckt_bootstrap();
    unsigned seed = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&seed, sizeof seed, 1, f) != 1)
        seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    if (f)
        fclose(f);
    snprintf(lkt_run_prefix, sizeof lkt_run_prefix, "t%08x-", seed);

    char conf_prefix[48];
    snprintf(conf_prefix, sizeof conf_prefix, "%sconf-", lkt_run_prefix);
    static log_conformance_backend kafka_backend = {
        .name = "kafka",
        .setup = fx_setup,
        .open = fx_open,
        .teardown = fx_teardown,
        .dense_offsets = false,
        .poll_timeout_ms = 30000,
    };
    kafka_backend.name_prefix = conf_prefix;
    int failed = log_conformance_run(&kafka_backend);

#define KT(f) cmocka_unit_test_setup_teardown(f, lkt_setup, lkt_teardown)
    const struct CMUnitTest tests[] = {
        KT(test_aborted_txn_is_invisible_to_reads_and_get_latest),
        KT(test_zombie_with_same_txn_id_is_fenced_and_writes_nothing),
        KT(test_settle_waits_for_open_transactions),
        KT(test_group_rebalance_splits_and_returns_partitions),
        KT(test_member_that_lost_its_partitions_cannot_commit),
        KT(test_consumer_outside_the_generation_cannot_commit),
        KT(test_send_offset_commit_is_seen_by_other_handles),
        KT(test_views_follow_tombstones_and_sync),
        KT(test_refused_record_fails_commit_and_writes_nothing),
        KT(test_role_mismatch_warnings_are_not_shown),
        cmocka_unit_test(test_open_without_broker_names_servers_and_reason),
    };
#undef KT
    failed +=
        cmocka_run_group_tests_name("log (kafka only)", tests, NULL, NULL);
    failed += log_kafka_outage_run(lkt_bootstrap, lkt_run_prefix);
    /* Left behind, they would make every later start of the broker
     * slower (common_kafka.h). */
    if (ckt_delete_topics(lkt_run_prefix) <= 0) {
        fprintf(stderr, "the run's topics (%s*) were not deleted\n",
                lkt_run_prefix);
        failed++;
    }
    return failed ? 1 : 0;
}
