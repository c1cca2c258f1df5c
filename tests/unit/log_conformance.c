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
#include "log_conformance.h"

static const log_conformance_backend *backend;
static unsigned test_counter;

typedef struct ctx {
    void *fixture;
    stele_log *log;
    char prefix[48];
    char names[8][128]; /* ring of topic names for T() */
    unsigned next_name;
} ctx;

/* The test's own name for topic base: unique per test and process. */
static const char *T(ctx *c, const char *base)
{
    char *buf = c->names[c->next_name++ % 8];
    snprintf(buf, sizeof c->names[0], "%s%s", c->prefix, base);
    return buf;
}

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    stele_err err = {0};
    if (!c || backend->setup(&c->fixture))
        return -1;
    if (backend->open(c->fixture, &c->log, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        return -1;
    }
    if (backend->name_prefix)
        snprintf(c->prefix, sizeof c->prefix, "%s%u-", backend->name_prefix,
                 ++test_counter);
    else
        snprintf(c->prefix, sizeof c->prefix, "conf-%d-%u-", (int)getpid(),
                 ++test_counter);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    stele_log_close(c->log);
    backend->teardown(c->fixture);
    free(c);
    return 0;
}

#define OK(call)                                                               \
    do {                                                                       \
        stele_err ok_err_ = {0};                                               \
        (void)ok_err_;                                                         \
        int ok_rc_ = (call);                                                   \
        if (ok_rc_)                                                            \
            fail_msg("%s -> %d: %s", #call, ok_rc_, ok_err_.msg);              \
    } while (0)
/* Inside OK(), pass E as the stele_err argument. */
#define E (&ok_err_)

static void ensure(stele_log *log, const char *name, int32_t parts,
                   bool compacted)
{
    stele_topic_spec spec = {
        .name = name, .partitions = parts, .compacted = compacted};
    OK(stele_log_topic_ensure(log, &spec, E));
}

static stele_log_record kv(const char *key, const char *value)
{
    return (stele_log_record){
        .key = key,
        .key_len = key ? strlen(key) : 0,
        .value = value,
        .value_len = value ? strlen(value) : 0,
    };
}

static void produce(stele_log *log, const char *topic, int32_t part,
                    const char *key, const char *value)
{
    stele_log_record r = kv(key, value);
    OK(stele_log_produce(log, topic, part, &r, NULL, E));
}

static void assert_value(const stele_log_record *r, const char *want)
{
    assert_int_equal(r->value_len, strlen(want));
    assert_memory_equal(r->value, want, r->value_len);
}

static void assert_offset_after(int64_t prev, int64_t off)
{
    if (backend->dense_offsets)
        assert_int_equal(off, prev + 1);
    else
        assert_true(off > prev);
}

static int64_t end_of(stele_log *log, const char *topic, int32_t part)
{
    int64_t end = -1;
    OK(stele_log_end_offset(log, topic, part, &end, E));
    return end;
}

static stele_log_batch *read_all(stele_log *log, const char *topic,
                                 int32_t part)
{
    stele_log_batch *b = NULL;
    OK(stele_log_read(log, topic, part, 0, 100000, &b, E));
    return b;
}

/* Polls until the consumer has an assignment (or the backend's wait is
 * over). Only for consumers whose topics are still empty. */
static void wait_assigned(stele_log_consumer *cons)
{
    const stele_topic_partition *tps;
    for (int i = 0; i < 50 && !stele_log_consumer_assignment(cons, &tps); i++) {
        stele_log_batch *b = NULL;
        OK(stele_log_consumer_poll(cons, backend->poll_timeout_ms / 50 + 1, 1,
                                   &b, E));
        /* Nothing is produced before assignment in these tests. */
        assert_int_equal(b->n, 0);
        stele_log_batch_free(b);
    }
    assert_true(stele_log_consumer_assignment(cons, &tps) > 0);
}

typedef struct seen {
    char topic[128];
    int32_t partition;
    int64_t offset;
    char value[32];
} seen;

/* Polls until n records arrived; copies them into out. */
static void poll_n(stele_log_consumer *cons, size_t n, size_t max, seen *out)
{
    size_t got = 0;
    for (int tries = 0; got < n && tries < 100; tries++) {
        stele_log_batch *b = NULL;
        OK(stele_log_consumer_poll(cons, backend->poll_timeout_ms / 10 + 1, max,
                                   &b, E));
        assert_true(b->n <= max);
        for (size_t i = 0; i < b->n; i++) {
            assert_true(got < n);
            const stele_log_record *r = &b->records[i];
            seen *s = &out[got++];
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
    ctx *c = *state;
    ensure(c->log, T(c, "a"), 3, false);
    ensure(c->log, T(c, "a"), 3, false);
    int32_t n = 0;
    OK(stele_log_topic_partitions(c->log, T(c, "a"), &n, E));
    assert_int_equal(n, 3);
}

static void test_topic_ensure_conflict_names_both(void **state)
{
    ctx *c = *state;
    const char *name = T(c, "a");
    ensure(c->log, name, 3, false);
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
    ctx *c = *state;
    const char *name = T(c, "missing");
    stele_err err = {0};
    int32_t n;
    assert_int_equal(stele_log_topic_partitions(c->log, name, &n, &err),
                     STELE_ENOTFOUND);
    assert_non_null(strstr(err.msg, name));
    stele_log_record r = kv("k", "v");
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
    ctx *c = *state;
    stele_err err = {0};
    stele_topic_spec bad = {.name = "has space", .partitions = 1};
    assert_int_equal(stele_log_topic_ensure(c->log, &bad, &err), STELE_EINVAL);
    stele_topic_spec zero = {.name = T(c, "zero"), .partitions = 0};
    assert_int_equal(stele_log_topic_ensure(c->log, &zero, &err), STELE_EINVAL);
    ensure(c->log, T(c, "a"), 2, false);
    stele_log_record r = kv("k", "v");
    assert_int_equal(stele_log_produce(c->log, T(c, "a"), 2, &r, NULL, &err),
                     STELE_ENOTFOUND);
    assert_non_null(strstr(err.msg, "partition 2"));
    stele_log_record nullval = {.value = NULL, .value_len = 3};
    assert_int_equal(
        stele_log_produce(c->log, T(c, "a"), 0, &nullval, NULL, &err),
        STELE_EINVAL);
    stele_log_batch *b = NULL;
    assert_int_equal(stele_log_read(c->log, T(c, "a"), 0, -1, 1, &b, &err),
                     STELE_EINVAL);
    assert_int_equal(end_of(c->log, T(c, "a"), 0), 0);
}

/* ------------------------------------------------------------------ */
/* Producing and reading                                                */

static void test_produce_offsets_are_contiguous_per_partition(void **state)
{
    ctx *c = *state;
    const char *t = T(c, "ev");
    ensure(c->log, t, 2, false);
    int64_t prev[2] = {-1, -1};
    for (int i = 0; i < 20; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        stele_log_record r = kv("k", v);
        int64_t off = -2;
        OK(stele_log_produce(c->log, t, i % 2, &r, &off, E));
        if (off != -1) {
            assert_offset_after(prev[i % 2], off);
            prev[i % 2] = off;
        }
    }
    for (int32_t p = 0; p < 2; p++) {
        stele_log_batch *b = read_all(c->log, t, p);
        assert_int_equal(b->n, 10);
        int64_t last = -1;
        for (size_t i = 0; i < b->n; i++) {
            char v[16];
            snprintf(v, sizeof v, "v%d", (int)(i * 2) + p);
            assert_offset_after(last, b->records[i].offset);
            last = b->records[i].offset;
            assert_value(&b->records[i], v);
            assert_string_equal(b->records[i].topic, t);
            assert_int_equal(b->records[i].partition, p);
            assert_true(b->records[i].timestamp_ms > 0);
        }
        assert_true(end_of(c->log, t, p) > last);
        if (backend->dense_offsets)
            assert_int_equal(end_of(c->log, t, p), 10);
        stele_log_batch_free(b);
    }
}

static void test_read_from_offset_and_past_end(void **state)
{
    ctx *c = *state;
    const char *t = T(c, "ev");
    ensure(c->log, t, 1, false);
    for (int i = 0; i < 5; i++)
        produce(c->log, t, 0, "k", i % 2 ? "odd" : "even");
    stele_log_batch *all = read_all(c->log, t, 0);
    assert_int_equal(all->n, 5);
    stele_log_batch *b = NULL;
    OK(stele_log_read(c->log, t, 0, all->records[2].offset, 2, &b, E));
    assert_int_equal(b->n, 2);
    assert_int_equal(b->records[0].offset, all->records[2].offset);
    assert_int_equal(b->records[1].offset, all->records[3].offset);
    stele_log_batch_free(b);
    OK(stele_log_read(c->log, t, 0, end_of(c->log, t, 0), 10, &b, E));
    assert_int_equal(b->n, 0);
    stele_log_batch_free(b);
    stele_log_batch_free(all);
}

static void produce_at(stele_log *log, const char *topic, int64_t ts,
                       const char *value)
{
    stele_log_record r = kv("k", value);
    r.timestamp_ms = ts;
    OK(stele_log_produce(log, topic, 0, &r, NULL, E));
}

/* Retention deletes a partition's oldest records: those before its first
 * record stamped at or after the cutoff, and never at or past the bound
 * given. Offsets stay: the end, the next record's, the records left. */
static void test_delete_before_drops_only_the_oldest_records(void **state)
{
    ctx *c = *state;
    const char *t = T(c, "ret");
    ensure(c->log, t, 1, false);
    int64_t now = stele_now_ms(), old = now - 60000, o[7];
    for (int i = 0; i < 4; i++)
        produce_at(c->log, t, old, "old");
    produce_at(c->log, t, now, "new");
    produce_at(c->log, t, old, "late"); /* stamped out of order */
    produce_at(c->log, t, now, "new");
    stele_log_batch *b = read_all(c->log, t, 0);
    assert_int_equal(b->n, 7);
    for (int i = 0; i < 7; i++)
        o[i] = b->records[i].offset;
    stele_log_batch_free(b);
    int64_t end = end_of(c->log, t, 0), n = -1;

    /* bounded: nothing at or past o[2] goes, old or not */
    OK(stele_log_delete_before(c->log, t, 0, now - 1000, o[2], &n, E));
    b = read_all(c->log, t, 0);
    if (!backend->deletes_records) {
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
    b = read_all(c->log, t, 0);
    assert_int_equal(b->n, 3);
    assert_int_equal(b->records[0].offset, o[4]);
    assert_int_equal(b->records[1].offset, o[5]);
    assert_value(&b->records[1], "late");
    stele_log_batch_free(b);
    OK(stele_log_delete_before(c->log, t, 0, now - 1000, end, &n, E));
    assert_int_equal(n, 0);
    assert_int_equal(end_of(c->log, t, 0), end);
    produce_at(c->log, t, now, "next");
    assert_offset_after(o[6], end_of(c->log, t, 0) - 1);
}

static void produce_key_at(stele_log *log, const char *topic, const char *key,
                           int64_t ts)
{
    stele_log_record r = kv(key, key);
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
static void test_delete_before_forgets_old_keys_of_a_compacted_topic(
    void **state)
{
    ctx *c = *state;
    const char *t = T(c, "retc");
    ensure(c->log, t, 1, true);
    int64_t now = stele_now_ms(), old = now - 60000, n = -1;
    produce_key_at(c->log, t, "a", old);
    produce_key_at(c->log, t, "b", old);
    produce_key_at(c->log, t, "c", old);
    produce_key_at(c->log, t, "a", now); /* a is new again */
    produce_key_at(c->log, t, "d", now);
    OK(stele_log_compacted_sync(c->log, t, 0, E));
    assert_true(has_key(c->log, t, "b"));
    int64_t end = end_of(c->log, t, 0);

    /* bounded: only below the offset given */
    stele_log_batch *all = read_all(c->log, t, 0);
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
    assert_int_equal(end_of(c->log, t, 0), end);
}

/* One call deletes at most STELE_LOG_DELETE_MAX records (a short
 * transaction); the next call goes on. */
static void test_delete_before_goes_a_chunk_at_a_time(void **state)
{
    ctx *c = *state;
    const char *t = T(c, "chunk");
    ensure(c->log, t, 1, false);
    int64_t old = stele_now_ms() - 60000;
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    for (int i = 0; i < STELE_LOG_DELETE_MAX + 5; i++) {
        stele_log_record r = kv("k", "old");
        r.timestamp_ms = old;
        OK(stele_log_txn_produce(txn, t, 0, &r, NULL, E));
    }
    OK(stele_log_txn_commit(txn, E));
    int64_t end = end_of(c->log, t, 0), n = -1;
    OK(stele_log_delete_before(c->log, t, 0, old + 1, end, &n, E));
    if (!backend->deletes_records) {
        assert_int_equal(n, 0);
        return;
    }
    assert_int_equal(n, STELE_LOG_DELETE_MAX);
    OK(stele_log_delete_before(c->log, t, 0, old + 1, end, &n, E));
    assert_int_equal(n, 5);
    OK(stele_log_delete_before(c->log, t, 0, old + 1, end, &n, E));
    assert_int_equal(n, 0);
    stele_log_batch *b = read_all(c->log, t, 0);
    assert_int_equal(b->n, 0);
    stele_log_batch_free(b);
    assert_int_equal(end_of(c->log, t, 0), end);
}

static void test_keyed_produce_uses_kafka_partitioner(void **state)
{
    ctx *c = *state;
    const char *t = T(c, "ev");
    ensure(c->log, t, 5, false);
    const char *keys[] = {"alice", "bob", "carol", "dave", "erin", "frank"};
    int counts[5] = {0};
    for (size_t i = 0; i < 6; i++) {
        produce(c->log, t, -1, keys[i], keys[i]);
        counts[stele_partition_for_key(keys[i], strlen(keys[i]), 5)]++;
    }
    for (int32_t p = 0; p < 5; p++) {
        stele_log_batch *b = read_all(c->log, t, p);
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
    ctx *c = *state;
    const char *t = T(c, "ev");
    ensure(c->log, t, 1, false);
    const unsigned char bin[] = {0, 1, 0xff, 0, 7};
    stele_log_header hs[] = {
        {.name = "type", .value = "Deposited", .len = 9},
        {.name = "empty", .value = NULL, .len = 0},
        {.name = "binary", .value = bin, .len = sizeof bin},
        {.name = "", .value = "x", .len = 1},
    };
    stele_log_record r = kv("k", "v");
    r.headers = hs;
    r.n_headers = 4;
    r.timestamp_ms = 1234567;
    OK(stele_log_produce(c->log, t, 0, &r, NULL, E));
    stele_log_record none = kv("k2", "v2");
    OK(stele_log_produce(c->log, t, 0, &none, NULL, E));

    stele_log_batch *b = read_all(c->log, t, 0);
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
    ctx *c = *state;
    const char *t = T(c, "ev");
    ensure(c->log, t, 1, false);
    const unsigned char bin[] = {0, 0, 0x80, 0};
    stele_log_record nokey = {.value = bin, .value_len = sizeof bin};
    OK(stele_log_produce(c->log, t, 0, &nokey, NULL, E));
    stele_log_record empty = {
        .key = "", .key_len = 0, .value = "", .value_len = 0};
    OK(stele_log_produce(c->log, t, 0, &empty, NULL, E));
    stele_log_batch *b = read_all(c->log, t, 0);
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
/* Compacted topics                                                     */

static void
test_compacted_read_returns_latest_per_key_in_offset_order(void **state)
{
    ctx *c = *state;
    const char *t = T(c, "state");
    ensure(c->log, t, 1, true);
    produce(c->log, t, 0, "a", "a1");
    produce(c->log, t, 0, "b", "b1");
    produce(c->log, t, 0, "a", "a2");
    produce(c->log, t, 0, "c", "c1");
    produce(c->log, t, 0, "b", "b2");
    stele_log_batch *b = read_all(c->log, t, 0);
    /* Kafka compacts lazily, so a backend may still show older values;
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
    if (backend->dense_offsets) {
        assert_int_equal(b->n, 3);
        assert_int_equal(b->records[0].offset, 2);
        assert_int_equal(b->records[2].offset, 4);
        assert_int_equal(end_of(c->log, t, 0), 5);
    }
    stele_log_batch_free(b);

    OK(stele_log_get_latest(c->log, t, 0, "a", 1, &b, E));
    assert_int_equal(b->n, 1);
    assert_value(&b->records[0], "a2");
    assert_memory_equal(b->records[0].key, "a", 1);
    stele_log_batch_free(b);
}

static void test_compacted_tombstone_deletes_key(void **state)
{
    ctx *c = *state;
    const char *t = T(c, "state");
    ensure(c->log, t, 2, true);
    produce(c->log, t, -1, "gone", "v1");
    produce(c->log, t, -1, "kept", "v1");
    produce(c->log, t, -1, "gone", NULL);
    stele_log_batch *b = NULL;
    stele_err err = {0};
    assert_int_equal(stele_log_get_latest(c->log, t, -1, "gone", 4, &b, &err),
                     STELE_ENOTFOUND);
    assert_null(b);
    assert_int_equal(stele_log_get_latest(c->log, t, -1, "never", 5, &b, &err),
                     STELE_ENOTFOUND);
    OK(stele_log_get_latest(c->log, t, -1, "kept", 4, &b, E));
    assert_value(&b->records[0], "v1");
    stele_log_batch_free(b);
    /* A reader of the partition sees the delete as a tombstone. */
    int32_t p = stele_partition_for_key("gone", 4, 2);
    b = read_all(c->log, t, p);
    assert_true(b->n >= 1);
    const stele_log_record *last = &b->records[b->n - 1];
    assert_memory_equal(last->key, "gone", 4);
    assert_null(last->value);
    assert_int_equal(last->value_len, 0);
    stele_log_batch_free(b);
    produce(c->log, t, -1, "gone", "back");
    OK(stele_log_get_latest(c->log, t, -1, "gone", 4, &b, E));
    assert_value(&b->records[0], "back");
    stele_log_batch_free(b);
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */

typedef struct txn_world {
    const char *events, *state, *input, *group;
    stele_log_consumer *cons;
} txn_world;

static void txn_world_setup(ctx *c, txn_world *w)
{
    w->events = T(c, "events");
    w->state = T(c, "state");
    w->input = T(c, "input");
    w->group = T(c, "group");
    ensure(c->log, w->events, 3, false);
    ensure(c->log, w->state, 2, true);
    ensure(c->log, w->input, 1, false);
    OK(stele_log_consumer_new(c->log, w->group, &w->input, 1, NULL, &w->cons,
                              E));
    wait_assigned(w->cons);
}

static void txn_write(ctx *c, txn_world *w, stele_log_txn *txn)
{
    stele_log_record r = kv("acc-1", "opened");
    OK(stele_log_txn_produce(txn, w->events, 0, &r, NULL, E));
    r = kv("acc-1", "deposited");
    OK(stele_log_txn_produce(txn, w->events, 0, &r, NULL, E));
    r = kv("acc-2", "opened");
    OK(stele_log_txn_produce(txn, w->events, 2, &r, NULL, E));
    r = kv("acc-1", "state-1");
    OK(stele_log_txn_produce(txn, w->state, -1, &r, NULL, E));
    OK(stele_log_txn_send_offset(txn, w->cons, w->input, 0, 7, E));
    (void)c;
}

static void
test_txn_commits_partitions_topics_and_offsets_together(void **state)
{
    ctx *c = *state;
    txn_world w;
    txn_world_setup(c, &w);
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    txn_write(c, &w, txn);
    OK(stele_log_txn_commit(txn, E));

    stele_log_batch *b = read_all(c->log, w.events, 0);
    assert_int_equal(b->n, 2);
    assert_value(&b->records[0], "opened");
    assert_value(&b->records[1], "deposited");
    stele_log_batch_free(b);
    b = read_all(c->log, w.events, 1);
    assert_int_equal(b->n, 0);
    stele_log_batch_free(b);
    b = read_all(c->log, w.events, 2);
    assert_int_equal(b->n, 1);
    stele_log_batch_free(b);
    OK(stele_log_get_latest(c->log, w.state, -1, "acc-1", 5, &b, E));
    assert_value(&b->records[0], "state-1");
    stele_log_batch_free(b);
    int64_t next = -1;
    OK(stele_log_committed(c->log, w.group, w.input, 0, &next, E));
    assert_int_equal(next, 7);

    /* A second handle (another process, on a real deployment) sees it. */
    stele_log *other = NULL;
    OK(backend->open(c->fixture, &other, E));
    OK(stele_log_committed(other, w.group, w.input, 0, &next, E));
    assert_int_equal(next, 7);
    b = read_all(other, w.events, 0);
    assert_int_equal(b->n, 2);
    stele_log_batch_free(b);
    stele_log_close(other);
    stele_log_consumer_close(w.cons);
}

static void test_abort_writes_nothing(void **state)
{
    ctx *c = *state;
    txn_world w;
    txn_world_setup(c, &w);
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    txn_write(c, &w, txn);
    stele_log_txn_abort(txn);

    for (int32_t p = 0; p < 3; p++) {
        stele_log_batch *b = read_all(c->log, w.events, p);
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
    produce(c->log, w.events, 1, "k", "after");
    b = read_all(c->log, w.events, 1);
    assert_int_equal(b->n, 1);
    if (backend->dense_offsets)
        assert_int_equal(b->records[0].offset, 0);
    stele_log_batch_free(b);
    stele_log_consumer_close(w.cons);
}

static void test_committed_is_zero_until_a_txn_sends_offsets(void **state)
{
    ctx *c = *state;
    ensure(c->log, T(c, "in"), 2, false);
    int64_t next = -1;
    OK(stele_log_committed(c->log, T(c, "g"), T(c, "in"), 1, &next, E));
    assert_int_equal(next, 0);
}

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

static void
test_consumer_is_assigned_every_partition_then_revoked_on_close(void **state)
{
    ctx *c = *state;
    const char *topics[] = {T(c, "a"), T(c, "b")};
    ensure(c->log, topics[0], 3, false);
    ensure(c->log, topics[1], 1, true);
    rebalance_log r = {0};
    stele_log_rebalance_cb cb = {on_assigned, on_revoked, &r};
    stele_log_consumer *cons = NULL;
    OK(stele_log_consumer_new(c->log, T(c, "g"), topics, 2, &cb, &cons, E));
    assert_string_equal(stele_log_consumer_group(cons), T(c, "g"));
    wait_assigned(cons);
    assert_int_equal(r.assigned_n, 4);
    const stele_topic_partition *tps;
    assert_int_equal(stele_log_consumer_assignment(cons, &tps), 4);
    stele_log_consumer_close(cons);
    assert_int_equal(r.revoked_calls, 1);
    assert_int_equal(r.revoked_n, 4);
    assert_false(r.lost);
}

static void test_poll_returns_each_partition_in_order(void **state)
{
    ctx *c = *state;
    const char *t = T(c, "ev");
    ensure(c->log, t, 3, false);
    stele_log_consumer *cons = NULL;
    OK(stele_log_consumer_new(c->log, T(c, "g"), &t, 1, NULL, &cons, E));
    wait_assigned(cons);
    for (int i = 0; i < 30; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        produce(c->log, t, i % 3, "k", v);
    }
    seen got[30];
    poll_n(cons, 30, 7, got);
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

static void test_seek_and_rewind_move_the_position(void **state)
{
    ctx *c = *state;
    const char *t = T(c, "ev");
    ensure(c->log, t, 1, false);
    for (int i = 0; i < 5; i++)
        produce(c->log, t, 0, "k",
                (const char *[]){"0", "1", "2", "3", "4"}[i]);
    stele_log_batch *all = read_all(c->log, t, 0);
    stele_log_consumer *cons = NULL;
    OK(stele_log_consumer_new(c->log, T(c, "g"), &t, 1, NULL, &cons, E));
    seen got[5];
    poll_n(cons, 5, 100, got);
    assert_string_equal(got[0].value, "0");

    OK(stele_log_consumer_seek(cons, t, 0, all->records[3].offset, E));
    poll_n(cons, 2, 100, got);
    assert_string_equal(got[0].value, "3");
    assert_string_equal(got[1].value, "4");

    /* Commit "2 consumed", then rewind: poll resumes after them. */
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    OK(stele_log_txn_send_offset(txn, cons, t, 0, all->records[2].offset, E));
    OK(stele_log_txn_commit(txn, E));
    OK(stele_log_consumer_rewind(cons, E));
    poll_n(cons, 3, 100, got);
    assert_string_equal(got[0].value, "2");
    assert_string_equal(got[2].value, "4");
    stele_log_batch_free(all);
    stele_log_consumer_close(cons);
}

static void test_new_consumer_resumes_at_committed_offsets(void **state)
{
    ctx *c = *state;
    const char *t = T(c, "ev");
    const char *g = T(c, "g");
    ensure(c->log, t, 2, false);
    for (int i = 0; i < 6; i++)
        produce(c->log, t, i % 2, "k", i < 4 ? "old" : "new");
    stele_log_consumer *cons = NULL;
    OK(stele_log_consumer_new(c->log, g, &t, 1, NULL, &cons, E));
    seen got[6];
    poll_n(cons, 6, 100, got);
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    for (int32_t p = 0; p < 2; p++) {
        stele_log_batch *b = read_all(c->log, t, p);
        OK(stele_log_txn_send_offset(txn, cons, t, p, b->records[2].offset, E));
        stele_log_batch_free(b);
    }
    OK(stele_log_txn_commit(txn, E));
    stele_log_consumer_close(cons);

    /* Reopen the log too: offsets and records persist. */
    stele_log_close(c->log);
    OK(backend->open(c->fixture, &c->log, E));
    OK(stele_log_consumer_new(c->log, g, &t, 1, NULL, &cons, E));
    poll_n(cons, 2, 100, got);
    assert_string_equal(got[0].value, "new");
    assert_string_equal(got[1].value, "new");
    stele_log_consumer_close(cons);
}

int log_conformance_run(const log_conformance_backend *b)
{
    backend = b;
#define CT(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        CT(test_topic_ensure_is_idempotent),
        CT(test_topic_ensure_conflict_names_both),
        CT(test_unknown_topic_is_not_found_and_named),
        CT(test_bad_arguments_are_rejected_not_fatal),
        CT(test_produce_offsets_are_contiguous_per_partition),
        CT(test_read_from_offset_and_past_end),
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
    };
#undef CT
    char name[64];
    snprintf(name, sizeof name, "log conformance (%s)", b->name);
    return _cmocka_run_group_tests(name, tests, sizeof tests / sizeof *tests,
                                   NULL, NULL);
}
