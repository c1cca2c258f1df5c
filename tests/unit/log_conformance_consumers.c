/*
 * log_conformance_consumers.c — the log conformance suite: consumer
 * groups (assignment, revocation, order, seek and rewind, committed
 * offsets).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "log_conformance_int.h"

/* ------------------------------------------------------------------ */
/* Consumer groups                                                      */

typedef struct rebalance_log {
    int assigned_calls, revoked_calls;
    size_t assigned_n, revoked_n;
    bool lost;
} rebalance_log;

static void on_assigned(void *opaque, stele_log_consumer *cons,
                        const stele_topic_partition *tps, size_t n)
{
    rebalance_log *r = opaque;
    (void)cons;
    (void)tps;
    r->assigned_calls++;
    r->assigned_n += n;
}

static void on_revoked(void *opaque, stele_log_consumer *cons,
                       const stele_topic_partition *tps, size_t n, bool lost)
{
    rebalance_log *r = opaque;
    (void)cons;
    (void)tps;
    r->revoked_calls++;
    r->revoked_n += n;
    r->lost |= lost;
}

void test_consumer_is_assigned_every_partition_then_revoked_on_close(
    void **state)
{
    lc_ctx *c = *state;
    const char *topics[] = {lc_name(c, "a"), lc_name(c, "b")};
    lc_ensure(c->log, topics[0], 3, false);
    lc_ensure(c->log, topics[1], 1, true);
    rebalance_log r = {0};
    stele_log_rebalance_cb cb = {on_assigned, on_revoked, &r};
    stele_log_consumer *cons = NULL;
    OK(stele_log_consumer_new(c->log, lc_name(c, "g"), topics, 2, &cb, &cons,
                              E));
    assert_string_equal(stele_log_consumer_group(cons), lc_name(c, "g"));
    lc_wait_assigned(cons);
    assert_int_equal(r.assigned_n, 4);
    const stele_topic_partition *tps;
    assert_int_equal(stele_log_consumer_assignment(cons, &tps), 4);
    stele_log_consumer_close(cons);
    assert_int_equal(r.revoked_calls, 1);
    assert_int_equal(r.revoked_n, 4);
    assert_false(r.lost);
}

void test_poll_returns_each_partition_in_order(void **state)
{
    lc_ctx *c = *state;
    const char *t = lc_name(c, "ev");
    lc_ensure(c->log, t, 3, false);
    stele_log_consumer *cons = NULL;
    OK(stele_log_consumer_new(c->log, lc_name(c, "g"), &t, 1, NULL, &cons, E));
    lc_wait_assigned(cons);
    for (int i = 0; i < 30; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        lc_produce(c->log, t, i % 3, "k", v);
    }
    lc_seen got[30];
    lc_poll_n(cons, 30, 7, got);
    int last[3] = {-3, -2, -1};
    for (size_t i = 0; i < 30; i++) {
        int p = got[i].partition, v = atoi(got[i].value);
        assert_int_equal(v % 3, p);
        assert_int_equal(v, last[p] + 3);
        last[p] = v;
    }
    stele_log_batch *b = NULL;
    OK(stele_log_consumer_poll(cons, 10, 100, &b, E));
    assert_int_equal(b->n, 0); /* nothing twice, and the timeout is fine */
    stele_log_batch_free(b);
    stele_log_consumer_close(cons);
}

void test_seek_and_rewind_move_the_position(void **state)
{
    lc_ctx *c = *state;
    const char *t = lc_name(c, "ev");
    lc_ensure(c->log, t, 1, false);
    for (int i = 0; i < 5; i++)
        lc_produce(c->log, t, 0, "k",
                   (const char *[]){"0", "1", "2", "3", "4"}[i]);
    stele_log_batch *all = lc_read_all(c->log, t, 0);
    stele_log_consumer *cons = NULL;
    OK(stele_log_consumer_new(c->log, lc_name(c, "g"), &t, 1, NULL, &cons, E));
    lc_seen got[5];
    lc_poll_n(cons, 5, 100, got);
    assert_string_equal(got[0].value, "0");

    OK(stele_log_consumer_seek(cons, t, 0, all->records[3].offset, E));
    lc_poll_n(cons, 2, 100, got);
    assert_string_equal(got[0].value, "3");
    assert_string_equal(got[1].value, "4");

    /* Commit "2 consumed", then rewind: poll resumes after them. */
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    OK(stele_log_txn_send_offset(txn, cons, t, 0, all->records[2].offset, E));
    OK(stele_log_txn_commit(txn, E));
    OK(stele_log_consumer_rewind(cons, E));
    lc_poll_n(cons, 3, 100, got);
    assert_string_equal(got[0].value, "2");
    assert_string_equal(got[2].value, "4");
    stele_log_batch_free(all);
    stele_log_consumer_close(cons);
}

void test_new_consumer_resumes_at_committed_offsets(void **state)
{
    lc_ctx *c = *state;
    const char *t = lc_name(c, "ev");
    const char *g = lc_name(c, "g");
    lc_ensure(c->log, t, 2, false);
    for (int i = 0; i < 6; i++)
        lc_produce(c->log, t, i % 2, "k", i < 4 ? "old" : "new");
    stele_log_consumer *cons = NULL;
    OK(stele_log_consumer_new(c->log, g, &t, 1, NULL, &cons, E));
    lc_seen got[6];
    lc_poll_n(cons, 6, 100, got);
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    for (int32_t p = 0; p < 2; p++) {
        stele_log_batch *b = lc_read_all(c->log, t, p);
        OK(stele_log_txn_send_offset(txn, cons, t, p, b->records[2].offset, E));
        stele_log_batch_free(b);
    }
    OK(stele_log_txn_commit(txn, E));
    stele_log_consumer_close(cons);

    /* Reopen the log too: offsets and records persist. */
    stele_log_close(c->log);
    OK(lc_backend->open(c->fixture, &c->log, E));
    OK(stele_log_consumer_new(c->log, g, &t, 1, NULL, &cons, E));
    lc_poll_n(cons, 2, 100, got);
    assert_string_equal(got[0].value, "new");
    assert_string_equal(got[1].value, "new");
    stele_log_consumer_close(cons);
}
