/*
 * log_conformance.c — the log conformance suite. It uses log.h only (and
 * the partitioner from util.h, which is part of the contract), names its
 * topics uniquely per test so a shared broker works, and never depends on
 * how long anything takes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "log_conformance_int.h"

const log_conformance_backend *lc_backend;
static unsigned test_counter;

/* The test's own name for topic base: unique per test and process. */
const char *lc_name(lc_ctx *c, const char *base)
{
    char *buf = c->names[c->next_name++ % 8];
    snprintf(buf, sizeof c->names[0], "%s%s", c->prefix, base);
    return buf;
}

static int setup(void **state)
{
    lc_ctx *c = calloc(1, sizeof *c);
    stele_err err = {0};
    if (!c || lc_backend->setup(&c->fixture))
        return -1;
    if (lc_backend->open(c->fixture, &c->log, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        return -1;
    }
    if (lc_backend->name_prefix)
        snprintf(c->prefix, sizeof c->prefix, "%s%u-", lc_backend->name_prefix,
                 ++test_counter);
    else
        snprintf(c->prefix, sizeof c->prefix, "conf-%d-%u-", (int)getpid(),
                 ++test_counter);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    lc_ctx *c = *state;
    stele_log_close(c->log);
    lc_backend->teardown(c->fixture);
    free(c);
    return 0;
}

void lc_ensure(stele_log *log, const char *name, int32_t parts, bool compacted)
{
    stele_topic_spec spec = {
        .name = name, .partitions = parts, .compacted = compacted};
    OK(stele_log_topic_ensure(log, &spec, E));
}

stele_log_record lc_kv(const char *key, const char *value)
{
    return (stele_log_record){
        .key = key,
        .key_len = key ? strlen(key) : 0,
        .value = value,
        .value_len = value ? strlen(value) : 0,
    };
}

void lc_produce(stele_log *log, const char *topic, int32_t part,
                const char *key, const char *value)
{
    stele_log_record r = lc_kv(key, value);
    OK(stele_log_produce(log, topic, part, &r, NULL, E));
}

void lc_assert_value(const stele_log_record *r, const char *want)
{
    assert_int_equal(r->value_len, strlen(want));
    assert_memory_equal(r->value, want, r->value_len);
}

void lc_assert_offset_after(int64_t prev, int64_t off)
{
    if (lc_backend->dense_offsets)
        assert_int_equal(off, prev + 1);
    else
        assert_true(off > prev);
}

int64_t lc_end_of(stele_log *log, const char *topic, int32_t part)
{
    int64_t end = -1;
    OK(stele_log_end_offset(log, topic, part, &end, E));
    return end;
}

stele_log_batch *lc_read_all(stele_log *log, const char *topic, int32_t part)
{
    stele_log_batch *b = NULL;
    OK(stele_log_read(log, topic, part, 0, 100000, &b, E));
    return b;
}

/* Polls until the consumer has an assignment (or the lc_backend's wait is
 * over). Only for consumers whose topics are still empty. */
void lc_wait_assigned(stele_log_consumer *cons)
{
    const stele_topic_partition *tps;
    for (int i = 0; i < 50 && !stele_log_consumer_assignment(cons, &tps); i++) {
        stele_log_batch *b = NULL;
        OK(stele_log_consumer_poll(cons, lc_backend->poll_timeout_ms / 50 + 1,
                                   1, &b, E));
        /* Nothing is produced before assignment in these tests. */
        assert_int_equal(b->n, 0);
        stele_log_batch_free(b);
    }
    assert_true(stele_log_consumer_assignment(cons, &tps) > 0);
}

/* Polls until n records arrived; copies them into out. */
void lc_poll_n(stele_log_consumer *cons, size_t n, size_t max, lc_seen *out)
{
    size_t got = 0;
    for (int tries = 0; got < n && tries < 100; tries++) {
        stele_log_batch *b = NULL;
        OK(stele_log_consumer_poll(cons, lc_backend->poll_timeout_ms / 10 + 1,
                                   max, &b, E));
        assert_true(b->n <= max);
        for (size_t i = 0; i < b->n; i++) {
            assert_true(got < n);
            const stele_log_record *r = &b->records[i];
            lc_seen *s = &out[got++];
            snprintf(s->topic, sizeof s->topic, "%s", r->topic);
            s->partition = r->partition;
            s->offset = r->offset;
            snprintf(s->value, sizeof s->value, "%.*s", (int)r->value_len,
                     (const char *)r->value);
        }
        stele_log_batch_free(b);
    }
    assert_int_equal(got, n);
}

/* ------------------------------------------------------------------ */
/* Topics                                                               */

static void test_topic_ensure_is_idempotent(void **state)
{
    lc_ctx *c = *state;
    lc_ensure(c->log, lc_name(c, "a"), 3, false);
    lc_ensure(c->log, lc_name(c, "a"), 3, false);
    int32_t n = 0;
    OK(stele_log_topic_partitions(c->log, lc_name(c, "a"), &n, E));
    assert_int_equal(n, 3);
}

static void test_topic_ensure_conflict_names_both(void **state)
{
    lc_ctx *c = *state;
    const char *name = lc_name(c, "a");
    lc_ensure(c->log, name, 3, false);
    stele_topic_spec more = {.name = name, .partitions = 4};
    stele_err err = {0};
    assert_int_equal(stele_log_topic_ensure(c->log, &more, &err),
                     STELE_ECONFLICT);
    assert_int_equal(err.code, STELE_ECONFLICT);
    assert_non_null(strstr(err.msg, name));
    assert_non_null(strstr(err.msg, "3 partitions"));
    assert_non_null(strstr(err.msg, "4 partitions"));
    stele_topic_spec compacted = {
        .name = name, .partitions = 3, .compacted = true};
    assert_int_equal(stele_log_topic_ensure(c->log, &compacted, &err),
                     STELE_ECONFLICT);
    assert_non_null(strstr(err.msg, "compacted"));
}

static void test_unknown_topic_is_not_found_and_named(void **state)
{
    lc_ctx *c = *state;
    const char *name = lc_name(c, "missing");
    stele_err err = {0};
    int32_t n;
    assert_int_equal(stele_log_topic_partitions(c->log, name, &n, &err),
                     STELE_ENOTFOUND);
    assert_non_null(strstr(err.msg, name));
    stele_log_record r = lc_kv("k", "v");
    assert_int_equal(stele_log_produce(c->log, name, 0, &r, NULL, &err),
                     STELE_ENOTFOUND);
    assert_non_null(strstr(err.msg, name));
    stele_log_batch *b = NULL;
    assert_int_equal(stele_log_read(c->log, name, 0, 0, 10, &b, &err),
                     STELE_ENOTFOUND);
    assert_null(b);
}

static void test_bad_arguments_are_rejected_not_fatal(void **state)
{
    lc_ctx *c = *state;
    stele_err err = {0};
    stele_topic_spec bad = {.name = "has space", .partitions = 1};
    assert_int_equal(stele_log_topic_ensure(c->log, &bad, &err), STELE_EINVAL);
    stele_topic_spec zero = {.name = lc_name(c, "zero"), .partitions = 0};
    assert_int_equal(stele_log_topic_ensure(c->log, &zero, &err), STELE_EINVAL);
    lc_ensure(c->log, lc_name(c, "a"), 2, false);
    stele_log_record r = lc_kv("k", "v");
    assert_int_equal(
        stele_log_produce(c->log, lc_name(c, "a"), 2, &r, NULL, &err),
        STELE_ENOTFOUND);
    assert_non_null(strstr(err.msg, "partition 2"));
    stele_log_record nullval = {.value = NULL, .value_len = 3};
    assert_int_equal(
        stele_log_produce(c->log, lc_name(c, "a"), 0, &nullval, NULL, &err),
        STELE_EINVAL);
    stele_log_batch *b = NULL;
    assert_int_equal(
        stele_log_read(c->log, lc_name(c, "a"), 0, -1, 1, &b, &err),
        STELE_EINVAL);
    assert_int_equal(lc_end_of(c->log, lc_name(c, "a"), 0), 0);
}

/* ------------------------------------------------------------------ */
/* Producing and reading                                                */

static void test_produce_offsets_are_contiguous_per_partition(void **state)
{
    lc_ctx *c = *state;
    const char *t = lc_name(c, "ev");
    lc_ensure(c->log, t, 2, false);
    int64_t prev[2] = {-1, -1};
    for (int i = 0; i < 20; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        stele_log_record r = lc_kv("k", v);
        int64_t off = -2;
        OK(stele_log_produce(c->log, t, i % 2, &r, &off, E));
        if (off != -1) {
            lc_assert_offset_after(prev[i % 2], off);
            prev[i % 2] = off;
        }
    }
    for (int32_t p = 0; p < 2; p++) {
        stele_log_batch *b = lc_read_all(c->log, t, p);
        assert_int_equal(b->n, 10);
        int64_t last = -1;
        for (size_t i = 0; i < b->n; i++) {
            char v[16];
            snprintf(v, sizeof v, "v%d", (int)(i * 2) + p);
            lc_assert_offset_after(last, b->records[i].offset);
            last = b->records[i].offset;
            lc_assert_value(&b->records[i], v);
            assert_string_equal(b->records[i].topic, t);
            assert_int_equal(b->records[i].partition, p);
            assert_true(b->records[i].timestamp_ms > 0);
        }
        assert_true(lc_end_of(c->log, t, p) > last);
        if (lc_backend->dense_offsets)
            assert_int_equal(lc_end_of(c->log, t, p), 10);
        stele_log_batch_free(b);
    }
}

static void test_read_from_offset_and_past_end(void **state)
{
    lc_ctx *c = *state;
    const char *t = lc_name(c, "ev");
    lc_ensure(c->log, t, 1, false);
    for (int i = 0; i < 5; i++)
        lc_produce(c->log, t, 0, "k", i % 2 ? "odd" : "even");
    stele_log_batch *all = lc_read_all(c->log, t, 0);
    assert_int_equal(all->n, 5);
    stele_log_batch *b = NULL;
    OK(stele_log_read(c->log, t, 0, all->records[2].offset, 2, &b, E));
    assert_int_equal(b->n, 2);
    assert_int_equal(b->records[0].offset, all->records[2].offset);
    assert_int_equal(b->records[1].offset, all->records[3].offset);
    stele_log_batch_free(b);
    OK(stele_log_read(c->log, t, 0, lc_end_of(c->log, t, 0), 10, &b, E));
    assert_int_equal(b->n, 0);
    stele_log_batch_free(b);
    stele_log_batch_free(all);
}

/* One key's records (an aggregate's events), in offset order, paged by
 * max and from; other keys, and a prefix of the key, are not among them. */
static void test_read_key_returns_one_keys_records_in_order(void **state)
{
    lc_ctx *c = *state;
    const char *t = lc_name(c, "ev");
    lc_ensure(c->log, t, 1, false);
    const char *keys[] = {"a", "b", "a", "ab", "a", "c"};
    for (int i = 0; i < 6; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        lc_produce(c->log, t, 0, keys[i], v);
    }
    stele_log_batch *all = lc_read_all(c->log, t, 0);
    assert_int_equal(all->n, 6);
    stele_log_batch *b = NULL;
    OK(stele_log_read_key(c->log, t, 0, "a", 1, 0, 2, &b, E));
    assert_int_equal(b->n, 2);
    assert_int_equal(b->records[0].offset, all->records[0].offset);
    lc_assert_value(&b->records[0], "v0");
    assert_int_equal(b->records[1].offset, all->records[2].offset);
    lc_assert_value(&b->records[1], "v2");
    int64_t next = b->records[1].offset + 1;
    stele_log_batch_free(b);
    OK(stele_log_read_key(c->log, t, 0, "a", 1, next, 10, &b, E));
    assert_int_equal(b->n, 1);
    assert_int_equal(b->records[0].offset, all->records[4].offset);
    assert_int_equal(b->records[0].key_len, 1);
    next = b->records[0].offset + 1;
    stele_log_batch_free(b);
    OK(stele_log_read_key(c->log, t, 0, "a", 1, next, 10, &b, E));
    assert_int_equal(b->n, 0);
    stele_log_batch_free(b);
    OK(stele_log_read_key(c->log, t, 0, "zz", 2, 0, 10, &b, E));
    assert_int_equal(b->n, 0);
    stele_log_batch_free(b);
    stele_log_batch_free(all);
}

static void test_keyed_produce_uses_kafka_partitioner(void **state)
{
    lc_ctx *c = *state;
    const char *t = lc_name(c, "ev");
    lc_ensure(c->log, t, 5, false);
    const char *keys[] = {"alice", "bob", "carol", "dave", "erin", "frank"};
    int counts[5] = {0};
    for (size_t i = 0; i < 6; i++) {
        lc_produce(c->log, t, -1, keys[i], keys[i]);
        counts[stele_partition_for_key(keys[i], strlen(keys[i]), 5)]++;
    }
    for (int32_t p = 0; p < 5; p++) {
        stele_log_batch *b = lc_read_all(c->log, t, p);
        assert_int_equal(b->n, counts[p]);
        for (size_t i = 0; i < b->n; i++)
            assert_int_equal(stele_partition_for_key(b->records[i].key,
                                                     b->records[i].key_len, 5),
                             p);
        stele_log_batch_free(b);
    }
}

static void test_headers_round_trip_including_empty_and_binary(void **state)
{
    lc_ctx *c = *state;
    const char *t = lc_name(c, "ev");
    lc_ensure(c->log, t, 1, false);
    const unsigned char bin[] = {0, 1, 0xff, 0, 7};
    stele_log_header hs[] = {
        {.name = "type", .value = "Deposited", .len = 9},
        {.name = "empty", .value = NULL, .len = 0},
        {.name = "binary", .value = bin, .len = sizeof bin},
        {.name = "", .value = "x", .len = 1},
    };
    stele_log_record r = lc_kv("k", "v");
    r.headers = hs;
    r.n_headers = 4;
    r.timestamp_ms = 1234567;
    OK(stele_log_produce(c->log, t, 0, &r, NULL, E));
    stele_log_record none = lc_kv("k2", "v2");
    OK(stele_log_produce(c->log, t, 0, &none, NULL, E));

    stele_log_batch *b = lc_read_all(c->log, t, 0);
    assert_int_equal(b->n, 2);
    const stele_log_record *got = &b->records[0];
    assert_int_equal(got->timestamp_ms, 1234567);
    assert_int_equal(got->n_headers, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(got->headers[i].name, hs[i].name);
        assert_int_equal(got->headers[i].len, hs[i].len);
        if (hs[i].len)
            assert_memory_equal(got->headers[i].value, hs[i].value, hs[i].len);
    }
    assert_int_equal(b->records[1].n_headers, 0);
    stele_log_batch_free(b);
}

static void test_null_key_empty_value_and_binary_value_round_trip(void **state)
{
    lc_ctx *c = *state;
    const char *t = lc_name(c, "ev");
    lc_ensure(c->log, t, 1, false);
    const unsigned char bin[] = {0, 0, 0x80, 0};
    stele_log_record nokey = {.value = bin, .value_len = sizeof bin};
    OK(stele_log_produce(c->log, t, 0, &nokey, NULL, E));
    stele_log_record empty = {
        .key = "", .key_len = 0, .value = "", .value_len = 0};
    OK(stele_log_produce(c->log, t, 0, &empty, NULL, E));
    stele_log_batch *b = lc_read_all(c->log, t, 0);
    assert_int_equal(b->n, 2);
    assert_null(b->records[0].key);
    assert_int_equal(b->records[0].value_len, sizeof bin);
    assert_memory_equal(b->records[0].value, bin, sizeof bin);
    assert_non_null(b->records[1].key);
    assert_int_equal(b->records[1].key_len, 0);
    assert_non_null(b->records[1].value); /* empty, not a tombstone */
    assert_int_equal(b->records[1].value_len, 0);
    stele_log_batch_free(b);
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */

typedef struct txn_world {
    const char *events, *state, *input, *group;
    stele_log_consumer *cons;
} txn_world;

static void txn_world_setup(lc_ctx *c, txn_world *w)
{
    w->events = lc_name(c, "events");
    w->state = lc_name(c, "state");
    w->input = lc_name(c, "input");
    w->group = lc_name(c, "group");
    lc_ensure(c->log, w->events, 3, false);
    lc_ensure(c->log, w->state, 2, true);
    lc_ensure(c->log, w->input, 1, false);
    OK(stele_log_consumer_new(c->log, w->group, &w->input, 1, NULL, &w->cons,
                              E));
    lc_wait_assigned(w->cons);
}

static void txn_write(lc_ctx *c, txn_world *w, stele_log_txn *txn)
{
    stele_log_record r = lc_kv("acc-1", "opened");
    OK(stele_log_txn_produce(txn, w->events, 0, &r, NULL, E));
    r = lc_kv("acc-1", "deposited");
    OK(stele_log_txn_produce(txn, w->events, 0, &r, NULL, E));
    r = lc_kv("acc-2", "opened");
    OK(stele_log_txn_produce(txn, w->events, 2, &r, NULL, E));
    r = lc_kv("acc-1", "state-1");
    OK(stele_log_txn_produce(txn, w->state, -1, &r, NULL, E));
    OK(stele_log_txn_send_offset(txn, w->cons, w->input, 0, 7, E));
    (void)c;
}

static void
test_txn_commits_partitions_topics_and_offsets_together(void **state)
{
    lc_ctx *c = *state;
    txn_world w;
    txn_world_setup(c, &w);
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    txn_write(c, &w, txn);
    OK(stele_log_txn_commit(txn, E));

    stele_log_batch *b = lc_read_all(c->log, w.events, 0);
    assert_int_equal(b->n, 2);
    lc_assert_value(&b->records[0], "opened");
    lc_assert_value(&b->records[1], "deposited");
    stele_log_batch_free(b);
    b = lc_read_all(c->log, w.events, 1);
    assert_int_equal(b->n, 0);
    stele_log_batch_free(b);
    b = lc_read_all(c->log, w.events, 2);
    assert_int_equal(b->n, 1);
    stele_log_batch_free(b);
    OK(stele_log_get_latest(c->log, w.state, -1, "acc-1", 5, &b, E));
    lc_assert_value(&b->records[0], "state-1");
    stele_log_batch_free(b);
    int64_t next = -1;
    OK(stele_log_committed(c->log, w.group, w.input, 0, &next, E));
    assert_int_equal(next, 7);

    /* A second handle (another process, on a real deployment) sees it. */
    stele_log *other = NULL;
    OK(lc_backend->open(c->fixture, &other, E));
    OK(stele_log_committed(other, w.group, w.input, 0, &next, E));
    assert_int_equal(next, 7);
    b = lc_read_all(other, w.events, 0);
    assert_int_equal(b->n, 2);
    stele_log_batch_free(b);
    stele_log_close(other);
    stele_log_consumer_close(w.cons);
}

static void test_abort_writes_nothing(void **state)
{
    lc_ctx *c = *state;
    txn_world w;
    txn_world_setup(c, &w);
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    txn_write(c, &w, txn);
    stele_log_txn_abort(txn);

    for (int32_t p = 0; p < 3; p++) {
        stele_log_batch *b = lc_read_all(c->log, w.events, p);
        assert_int_equal(b->n, 0);
        stele_log_batch_free(b);
    }
    stele_log_batch *b = NULL;
    stele_err err = {0};
    assert_int_equal(
        stele_log_get_latest(c->log, w.state, -1, "acc-1", 5, &b, &err),
        STELE_ENOTFOUND);
    int64_t next = -1;
    OK(stele_log_committed(c->log, w.group, w.input, 0, &next, E));
    assert_int_equal(next, 0);

    /* The handle writes again after an abort. */
    lc_produce(c->log, w.events, 1, "k", "after");
    b = lc_read_all(c->log, w.events, 1);
    assert_int_equal(b->n, 1);
    if (lc_backend->dense_offsets)
        assert_int_equal(b->records[0].offset, 0);
    stele_log_batch_free(b);
    stele_log_consumer_close(w.cons);
}

static void test_committed_is_zero_until_a_txn_sends_offsets(void **state)
{
    lc_ctx *c = *state;
    lc_ensure(c->log, lc_name(c, "in"), 2, false);
    int64_t next = -1;
    OK(stele_log_committed(c->log, lc_name(c, "g"), lc_name(c, "in"), 1, &next,
                           E));
    assert_int_equal(next, 0);
}

int log_conformance_run(const log_conformance_backend *b)
{
    lc_backend = b;
#define CT(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        CT(test_topic_ensure_is_idempotent),
        CT(test_topic_ensure_conflict_names_both),
        CT(test_unknown_topic_is_not_found_and_named),
        CT(test_bad_arguments_are_rejected_not_fatal),
        CT(test_produce_offsets_are_contiguous_per_partition),
        CT(test_read_from_offset_and_past_end),
        CT(test_read_key_returns_one_keys_records_in_order),
        CT(test_delete_before_drops_only_the_oldest_records),
        CT(test_delete_before_goes_a_chunk_at_a_time),
        CT(test_delete_before_forgets_old_keys_of_a_compacted_topic),
        CT(test_keyed_produce_uses_kafka_partitioner),
        CT(test_headers_round_trip_including_empty_and_binary),
        CT(test_null_key_empty_value_and_binary_value_round_trip),
        CT(test_compacted_read_returns_latest_per_key_in_offset_order),
        CT(test_compacted_tombstone_deletes_key),
        CT(test_txn_commits_partitions_topics_and_offsets_together),
        CT(test_abort_writes_nothing),
        CT(test_committed_is_zero_until_a_txn_sends_offsets),
        CT(test_consumer_is_assigned_every_partition_then_revoked_on_close),
        CT(test_poll_returns_each_partition_in_order),
        CT(test_seek_and_rewind_move_the_position),
        CT(test_new_consumer_resumes_at_committed_offsets),
        CT(test_a_byte_changed_in_a_stored_record_is_a_checksum_mismatch),
        CT(test_a_checksum_mismatch_is_found_by_every_read_path),
        CT(test_a_record_stored_without_checksum_reads_unchecked),
        CT(test_a_log_from_before_checksums_is_migrated_and_read),
    };
#undef CT
    char name[64];
    snprintf(name, sizeof name, "log conformance (%s)", b->name);
    return _cmocka_run_group_tests(name, tests, sizeof tests / sizeof *tests,
                                   NULL, NULL);
}
