/*
 * log_conformance_compacted.c — the log conformance suite: compacted
 * topics (latest per key, tombstones) and retention (delete_before on
 * normal and compacted topics).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "log_conformance_int.h"

/* ------------------------------------------------------------------ */
/* Compacted topics                                                     */

void test_compacted_read_returns_latest_per_key_in_offset_order(void **state)
{
    lc_ctx *c = *state;
    const char *t = lc_name(c, "state");
    lc_ensure(c->log, t, 1, true);
    lc_produce(c->log, t, 0, "a", "a1");
    lc_produce(c->log, t, 0, "b", "b1");
    lc_produce(c->log, t, 0, "a", "a2");
    lc_produce(c->log, t, 0, "c", "c1");
    lc_produce(c->log, t, 0, "b", "b2");
    stele_log_batch *b = lc_read_all(c->log, t, 0);
    /* Kafka compacts lazily, so a lc_backend may still show older values;
     * the latest of each key must be there, after the older ones. */
    const char *want[] = {"a2", "c1", "b2"};
    size_t w = 0;
    int64_t last = -1;
    for (size_t i = 0; i < b->n; i++) {
        assert_true(b->records[i].offset > last);
        last = b->records[i].offset;
        if (w < 3 && b->records[i].value_len == strlen(want[w]) &&
            !memcmp(b->records[i].value, want[w], strlen(want[w])))
            w++;
    }
    assert_int_equal(w, 3);
    if (lc_backend->dense_offsets) {
        assert_int_equal(b->n, 3);
        assert_int_equal(b->records[0].offset, 2);
        assert_int_equal(b->records[2].offset, 4);
        assert_int_equal(lc_end_of(c->log, t, 0), 5);
    }
    stele_log_batch_free(b);

    OK(stele_log_get_latest(c->log, t, 0, "a", 1, &b, E));
    assert_int_equal(b->n, 1);
    lc_assert_value(&b->records[0], "a2");
    assert_memory_equal(b->records[0].key, "a", 1);
    stele_log_batch_free(b);
}

void test_compacted_tombstone_deletes_key(void **state)
{
    lc_ctx *c = *state;
    const char *t = lc_name(c, "state");
    lc_ensure(c->log, t, 2, true);
    lc_produce(c->log, t, -1, "gone", "v1");
    lc_produce(c->log, t, -1, "kept", "v1");
    lc_produce(c->log, t, -1, "gone", NULL);
    stele_log_batch *b = NULL;
    stele_err err = {0};
    assert_int_equal(stele_log_get_latest(c->log, t, -1, "gone", 4, &b, &err),
                     STELE_ENOTFOUND);
    assert_null(b);
    assert_int_equal(stele_log_get_latest(c->log, t, -1, "never", 5, &b, &err),
                     STELE_ENOTFOUND);
    OK(stele_log_get_latest(c->log, t, -1, "kept", 4, &b, E));
    lc_assert_value(&b->records[0], "v1");
    stele_log_batch_free(b);
    /* A reader of the partition sees the delete as a tombstone. */
    int32_t p = stele_partition_for_key("gone", 4, 2);
    b = lc_read_all(c->log, t, p);
    assert_true(b->n >= 1);
    const stele_log_record *last = &b->records[b->n - 1];
    assert_memory_equal(last->key, "gone", 4);
    assert_null(last->value);
    assert_int_equal(last->value_len, 0);
    stele_log_batch_free(b);
    lc_produce(c->log, t, -1, "gone", "back");
    OK(stele_log_get_latest(c->log, t, -1, "gone", 4, &b, E));
    lc_assert_value(&b->records[0], "back");
    stele_log_batch_free(b);
}

/* ------------------------------------------------------------------ */
/* Retention                                                            */

static void produce_at(stele_log *log, const char *topic, int64_t ts,
                       const char *value)
{
    stele_log_record r = lc_kv("k", value);
    r.timestamp_ms = ts;
    OK(stele_log_produce(log, topic, 0, &r, NULL, E));
}

/* Retention deletes a partition's oldest records: those before its first
 * record stamped at or after the cutoff, and never at or past the bound
 * given. Offsets stay: the end, the next record's, the records left. */
void test_delete_before_drops_only_the_oldest_records(void **state)
{
    lc_ctx *c = *state;
    const char *t = lc_name(c, "ret");
    lc_ensure(c->log, t, 1, false);
    int64_t now = stele_now_ms(), old = now - 60000, o[7];
    for (int i = 0; i < 4; i++)
        produce_at(c->log, t, old, "old");
    produce_at(c->log, t, now, "new");
    produce_at(c->log, t, old, "late"); /* stamped out of order */
    produce_at(c->log, t, now, "new");
    stele_log_batch *b = lc_read_all(c->log, t, 0);
    assert_int_equal(b->n, 7);
    for (int i = 0; i < 7; i++)
        o[i] = b->records[i].offset;
    stele_log_batch_free(b);
    int64_t end = lc_end_of(c->log, t, 0), n = -1;

    /* bounded: nothing at or past o[2] goes, old or not */
    OK(stele_log_delete_before(c->log, t, 0, now - 1000, o[2], &n, E));
    b = lc_read_all(c->log, t, 0);
    if (!lc_backend->deletes_records) {
        assert_int_equal(n, 0);
        assert_int_equal(b->n, 7);
        stele_log_batch_free(b);
        return;
    }
    assert_int_equal(n, 2);
    assert_int_equal(b->n, 5);
    assert_int_equal(b->records[0].offset, o[2]);
    stele_log_batch_free(b);

    /* by time: up to the first new record; the late one after it stays */
    OK(stele_log_delete_before(c->log, t, 0, now - 1000, end, &n, E));
    assert_int_equal(n, 2);
    b = lc_read_all(c->log, t, 0);
    assert_int_equal(b->n, 3);
    assert_int_equal(b->records[0].offset, o[4]);
    assert_int_equal(b->records[1].offset, o[5]);
    lc_assert_value(&b->records[1], "late");
    stele_log_batch_free(b);
    OK(stele_log_delete_before(c->log, t, 0, now - 1000, end, &n, E));
    assert_int_equal(n, 0);
    assert_int_equal(lc_end_of(c->log, t, 0), end);
    produce_at(c->log, t, now, "next");
    lc_assert_offset_after(o[6], lc_end_of(c->log, t, 0) - 1);
}

static void produce_key_at(stele_log *log, const char *topic, const char *key,
                           int64_t ts)
{
    stele_log_record r = lc_kv(key, key);
    r.timestamp_ms = ts;
    OK(stele_log_produce(log, topic, 0, &r, NULL, E));
}

static bool has_key(stele_log *log, const char *topic, const char *key)
{
    stele_log_batch *b = NULL;
    stele_err err = {0};
    int rc = stele_log_get_latest(log, topic, 0, key, strlen(key), &b, &err);
    if (rc != 0 && rc != STELE_ENOTFOUND)
        fail_msg("get_latest %s: %s", key, err.msg);
    stele_log_batch_free(b);
    return rc == 0;
}

/* On a compacted topic retention forgets the keys whose latest record is
 * old (compact,delete): the embedded logs delete them, Kafka's handle
 * drops them from its view as the broker's retention.ms will. A key
 * written again since stays; so does everything at or past the bound. */
void test_delete_before_forgets_old_keys_of_a_compacted_topic(void **state)
{
    lc_ctx *c = *state;
    const char *t = lc_name(c, "retc");
    lc_ensure(c->log, t, 1, true);
    int64_t now = stele_now_ms(), old = now - 60000, n = -1;
    produce_key_at(c->log, t, "a", old);
    produce_key_at(c->log, t, "b", old);
    produce_key_at(c->log, t, "c", old);
    produce_key_at(c->log, t, "a", now); /* a is new again */
    produce_key_at(c->log, t, "d", now);
    OK(stele_log_compacted_sync(c->log, t, 0, E));
    assert_true(has_key(c->log, t, "b"));
    int64_t end = lc_end_of(c->log, t, 0);

    /* bounded: only below the offset given */
    stele_log_batch *all = lc_read_all(c->log, t, 0);
    int64_t c_next = -1;
    for (size_t i = 0; i < all->n; i++)
        if (all->records[i].key_len == 1 &&
            *(const char *)all->records[i].key == 'c')
            c_next = all->records[i].offset + 1;
    stele_log_batch_free(all);
    assert_true(c_next > 0);
    OK(stele_log_delete_before(c->log, t, 0, now - 1000, c_next - 1, &n, E));
    assert_int_equal(n, 1);
    assert_false(has_key(c->log, t, "b"));
    assert_true(has_key(c->log, t, "c"));

    OK(stele_log_delete_before(c->log, t, 0, now - 1000, end, &n, E));
    assert_int_equal(n, 1);
    assert_false(has_key(c->log, t, "c"));
    assert_true(has_key(c->log, t, "a"));
    assert_true(has_key(c->log, t, "d"));
    OK(stele_log_delete_before(c->log, t, 0, now - 1000, end, &n, E));
    assert_int_equal(n, 0);
    assert_int_equal(lc_end_of(c->log, t, 0), end);
}

/* One call deletes at most STELE_LOG_DELETE_MAX records (a short
 * transaction); the next call goes on. */
void test_delete_before_goes_a_chunk_at_a_time(void **state)
{
    lc_ctx *c = *state;
    const char *t = lc_name(c, "chunk");
    lc_ensure(c->log, t, 1, false);
    int64_t old = stele_now_ms() - 60000;
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    for (int i = 0; i < STELE_LOG_DELETE_MAX + 5; i++) {
        stele_log_record r = lc_kv("k", "old");
        r.timestamp_ms = old;
        OK(stele_log_txn_produce(txn, t, 0, &r, NULL, E));
    }
    OK(stele_log_txn_commit(txn, E));
    int64_t end = lc_end_of(c->log, t, 0), n = -1;
    OK(stele_log_delete_before(c->log, t, 0, old + 1, end, &n, E));
    if (!lc_backend->deletes_records) {
        assert_int_equal(n, 0);
        return;
    }
    assert_int_equal(n, STELE_LOG_DELETE_MAX);
    OK(stele_log_delete_before(c->log, t, 0, old + 1, end, &n, E));
    assert_int_equal(n, 5);
    OK(stele_log_delete_before(c->log, t, 0, old + 1, end, &n, E));
    assert_int_equal(n, 0);
    stele_log_batch *b = lc_read_all(c->log, t, 0);
    assert_int_equal(b->n, 0);
    stele_log_batch_free(b);
    assert_int_equal(lc_end_of(c->log, t, 0), end);
}
