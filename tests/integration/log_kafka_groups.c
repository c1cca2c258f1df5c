/*
 * log_kafka_groups.c — a consumer group's partitions on Kafka: a rebalance
 * splits them between two handles and gives them back when one leaves,
 * a member that lost its partitions (it stopped polling) cannot commit,
 * and neither can a consumer outside the group's generation.
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
#include <librdkafka/rdkafka.h>

#include "common/util.h"
#include "log_kafka_test.h"

typedef struct member {
    stele_log *log;
    stele_log_consumer *cons;
    int assigned_n, revoked_n, revoked_calls;
    bool lost;
} member;

static void on_assigned(void *opaque, stele_log_consumer *cons,
                        const stele_topic_partition *tps, size_t n)
{
    member *m = opaque;
    (void)cons, (void)tps;
    m->assigned_n += (int)n;
}

static void on_revoked(void *opaque, stele_log_consumer *cons,
                       const stele_topic_partition *tps, size_t n, bool lost)
{
    member *m = opaque;
    (void)cons, (void)tps;
    m->revoked_n += (int)n;
    m->revoked_calls++;
    m->lost |= lost;
}

static size_t owned(member *m)
{
    const stele_topic_partition *tps;
    return stele_log_consumer_assignment(m->cons, &tps);
}

static void poll_once(member *m, int ms)
{
    stele_log_batch *b = NULL;
    OK(stele_log_consumer_poll(m->cons, ms, 100, &b, E));
    stele_log_batch_free(b);
}

/* Polls both members until a has want_a and b has want_b partitions. */
static void settle(member *a, member *b, size_t want_a, size_t want_b)
{
    int64_t deadline = stele_mono_ns() + 60 * 1000000000LL;
    while (owned(a) != want_a || (b && owned(b) != want_b)) {
        if (stele_mono_ns() > deadline)
            fail_msg("no settled assignment: %zu and %zu partitions, want "
                     "%zu and %zu",
                     owned(a), b ? owned(b) : 0, want_a, want_b);
        poll_once(a, 100);
        if (b)
            poll_once(b, 100);
    }
}

void test_group_rebalance_splits_and_returns_partitions(void **state)
{
    ctx *c = *state;
    const char *t = lkt_N(c, "in"), *g = lkt_N(c, "g");
    lc_ensure(c->log, t, 4, false);
    member a = {0}, b = {0};
    OK(lkt_open_log(NULL, &a.log, E));
    OK(lkt_open_log(NULL, &b.log, E));
    stele_log_rebalance_cb cba = {on_assigned, on_revoked, &a};
    stele_log_rebalance_cb cbb = {on_assigned, on_revoked, &b};
    OK(stele_log_consumer_new(a.log, g, &t, 1, &cba, &a.cons, E));
    settle(&a, NULL, 4, 0);
    assert_int_equal(a.assigned_n, 4);

    OK(stele_log_consumer_new(b.log, g, &t, 1, &cbb, &b.cons, E));
    settle(&a, &b, 2, 2);
    assert_int_equal(a.revoked_n, 2); /* cooperative: only what moves */
    assert_false(a.lost);
    assert_int_equal(b.assigned_n, 2);

    /* Each member reads only its own partitions. */
    for (int i = 0; i < 8; i++)
        lc_produce(c->log, t, i % 4, "k", "v");
    size_t got_a = 0, got_b = 0;
    int64_t deadline = stele_mono_ns() + 60 * 1000000000LL;
    while (got_a + got_b < 8 && stele_mono_ns() < deadline) {
        member *ms[] = {&a, &b};
        for (int k = 0; k < 2; k++) {
            stele_log_batch *batch = NULL;
            OK(stele_log_consumer_poll(ms[k]->cons, 100, 100, &batch, E));
            const stele_topic_partition *tps;
            size_t n = stele_log_consumer_assignment(ms[k]->cons, &tps);
            for (size_t i = 0; i < batch->n; i++) {
                bool mine = false;
                for (size_t j = 0; j < n; j++)
                    mine |= tps[j].partition == batch->records[i].partition;
                assert_true(mine);
            }
            *(k ? &got_b : &got_a) += batch->n;
            stele_log_batch_free(batch);
        }
    }
    assert_int_equal(got_a, 4);
    assert_int_equal(got_b, 4);

    stele_log_consumer_close(b.cons);
    assert_int_equal(b.revoked_n, 2);
    settle(&a, NULL, 4, 0);
    assert_int_equal(a.assigned_n, 6);
    stele_log_consumer_close(a.cons);
    stele_log_close(a.log);
    stele_log_close(b.log);
}

/* KIP-447 fencing: a member that stopped polling is thrown out of the
 * group and its partitions go to another member; its transaction, sent
 * with the old group metadata, must not commit. */
void test_member_that_lost_its_partitions_cannot_commit(void **state)
{
    ctx *c = *state;
    const char *in = lkt_N(c, "in"), *out = lkt_N(c, "out"), *g = lkt_N(c, "g");
    lc_ensure(c->log, in, 2, false);
    lc_ensure(c->log, out, 1, false);
    lc_produce(c->log, in, 0, "k", "cmd");
    member a = {0}, b = {0};
    char id[96];
    snprintf(id, sizeof id, "%szombie-%u", lkt_run_prefix, ++lkt_open_counter);
    const char *keys[] = {"bootstrap.servers", "transactional.id",
                          "session.timeout.ms", "heartbeat.interval.ms",
                          "max.poll.interval.ms"};
    const char *values[] = {lkt_bootstrap, id, "6000", "500", "7000"};
    OK(stele_log_open_kafka(keys, values, 5, NULL, &a.log, E));
    OK(lkt_open_log(NULL, &b.log, E));
    stele_log_rebalance_cb cba = {on_assigned, on_revoked, &a};
    stele_log_rebalance_cb cbb = {on_assigned, on_revoked, &b};
    OK(stele_log_consumer_new(a.log, g, &in, 1, &cba, &a.cons, E));
    settle(&a, NULL, 2, 0);

    /* a is mid-transaction when it stops polling */
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(a.log, &txn, E));
    stele_log_record r = lc_kv("k", "from-the-zombie");
    OK(stele_log_txn_produce(txn, out, 0, &r, NULL, E));
    OK(stele_log_txn_send_offset(txn, a.cons, in, 0, 1, E));

    OK(stele_log_consumer_new(b.log, g, &in, 1, &cbb, &b.cons, E));
    int64_t deadline = stele_mono_ns() + 90 * 1000000000LL;
    while (owned(&b) != 2) {
        if (stele_mono_ns() > deadline)
            fail_msg("the second member never got the partitions");
        poll_once(&b, 200);
    }

    stele_err err = {0};
    int rc = stele_log_txn_commit(txn, &err);
    assert_int_not_equal(rc, 0);
    assert_int_not_equal(rc, STELE_EINVAL);
    assert_int_equal(lkt_count(c->log, out, 0), 0);
    int64_t next = -1;
    OK(stele_log_committed(c->log, g, in, 0, &next, E));
    assert_int_equal(next, 0);

    stele_log_consumer_close(b.cons);
    stele_log_consumer_close(a.cons);
    stele_log_close(a.log);
    stele_log_close(b.log);
}

/* A consumer that is not a member of its group's generation (one that has
 * not joined yet here; a host thrown out for not polling is the same to
 * librdkafka, which then sends generation -1, and no member id once it
 * has reset it) must not commit offsets into the group: the broker takes
 * transactional offsets without member and generation from anyone (shown
 * first, with a plain librdkafka producer), so they would overwrite the
 * owner's and commit the records of the zombie's transaction. Whether the
 * broker fenced stele's commit before depended on whether the consumer
 * had been given a member id yet; now it is refused before it is sent. */
void test_consumer_outside_the_generation_cannot_commit(void **state)
{
    ctx *c = *state;
    const char *in = lkt_N(c, "in"), *out = lkt_N(c, "out"), *g = lkt_N(c, "g");
    lc_ensure(c->log, in, 1, false);
    lc_ensure(c->log, out, 1, false);
    lc_produce(c->log, in, 0, "k", "cmd");
    member owner = {0};
    OK(lkt_open_log(NULL, &owner.log, E));
    stele_log_rebalance_cb cb = {on_assigned, on_revoked, &owner};
    OK(stele_log_consumer_new(owner.log, g, &in, 1, &cb, &owner.cons, E));
    settle(&owner, NULL, 1, 0);

    /* The hole, on this broker: transactional offsets without member and
     * generation go into a group whose member owns the partition. */
    char es[256], tid[96];
    snprintf(tid, sizeof tid, "%sraw-%u", lkt_run_prefix, ++lkt_open_counter);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", lkt_bootstrap,
                                       es, sizeof es),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(
        rd_kafka_conf_set(conf, "transactional.id", tid, es, sizeof es),
        RD_KAFKA_CONF_OK);
    rd_kafka_t *raw = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof es);
    assert_non_null(raw);
    assert_null(rd_kafka_init_transactions(raw, 30000));
    assert_null(rd_kafka_begin_transaction(raw));
    rd_kafka_topic_partition_list_t *offs =
        rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offs, in, 0)->offset = 1;
    rd_kafka_consumer_group_metadata_t *anyone =
        rd_kafka_consumer_group_metadata_new(g);
    rd_kafka_error_t *re =
        rd_kafka_send_offsets_to_transaction(raw, offs, anyone, -1);
    if (!re)
        re = rd_kafka_commit_transaction(raw, -1);
    bool hole = re == NULL;
    if (re)
        rd_kafka_error_destroy(re);
    rd_kafka_consumer_group_metadata_destroy(anyone);
    rd_kafka_topic_partition_list_destroy(offs);
    rd_kafka_destroy(raw);
    int64_t next = -1;
    OK(stele_log_committed(c->log, g, in, 0, &next, E));
    fprintf(stderr, "broker: offsets without member and generation %s\n",
            hole ? "accepted" : "refused");
    assert_int_equal(next, hole ? 1 : 0);

    stele_log *outsider = NULL;
    stele_log_consumer *oc = NULL;
    OK(lkt_open_log(NULL, &outsider, E));
    OK(stele_log_consumer_new(outsider, g, &in, 1, NULL, &oc, E));
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(outsider, &txn, E));
    stele_log_record r = lc_kv("k", "from-outside");
    OK(stele_log_txn_produce(txn, out, 0, &r, NULL, E));
    OK(stele_log_txn_send_offset(txn, oc, in, 0, 1, E));
    stele_err err = {0};
    assert_int_equal(stele_log_txn_commit(txn, &err), STELE_ECONFLICT);
    assert_non_null(strstr(err.msg, "not a member"));
    assert_int_equal(lkt_count(c->log, out, 0), 0);
    int64_t before = next;
    OK(stele_log_committed(c->log, g, in, 0, &next, E));
    assert_int_equal(next, before);
    /* the handle goes on */
    OK(stele_log_txn_begin(outsider, &txn, E));
    stele_log_txn_abort(txn);

    stele_log_consumer_close(oc);
    stele_log_consumer_close(owner.cons);
    stele_log_close(outsider);
    stele_log_close(owner.log);
}
