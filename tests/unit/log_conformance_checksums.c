/*
 * log_conformance_checksums.c — the log conformance suite: records gone
 * bad where they are stored. A record whose key, value or headers changed
 * behind the log's back reads as damaged ("checksum mismatch"), with its
 * topic, partition and offset and no headers, on every read path, and its
 * neighbours read as they were; a record stored before checksums reads
 * as it is, marked unchecked; a log made before checksums is brought up
 * to date when opened. Only for backends that let the suite reach their
 * stored records (log_conformance_raw); skipped elsewhere.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log_conformance_int.h"

static const log_conformance_raw *raw_or_skip(void)
{
    if (!lc_backend->raw)
        skip();
    return lc_backend->raw;
}

/* Produces n records "k<i>" = "v<i>" with the header "n" = "h<i>" to
 * topic[0]; their offsets go to offs. */
static void produce_n(stele_log *log, const char *topic, int n, int64_t *offs)
{
    for (int i = 0; i < n; i++) {
        char k[16], v[16], h[16];
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "v%d", i);
        snprintf(h, sizeof h, "h%d", i);
        stele_log_header hd = {"n", h, strlen(h)};
        stele_log_record r = lc_kv(k, v);
        r.headers = &hd;
        r.n_headers = 1;
        OK(stele_log_produce(log, topic, 0, &r, &offs[i], E));
        if (offs[i] < 0) /* known at commit only */
            offs[i] = lc_end_of(log, topic, 0) - 1;
    }
}

/* r is record i of produce_n, read whole and checked. */
static void assert_intact(const stele_log_record *r, int i)
{
    char k[16], v[16], h[16];
    snprintf(k, sizeof k, "k%d", i);
    snprintf(v, sizeof v, "v%d", i);
    snprintf(h, sizeof h, "h%d", i);
    assert_null(r->damaged);
    assert_false(r->unchecked);
    assert_int_equal(r->key_len, strlen(k));
    assert_memory_equal(r->key, k, r->key_len);
    lc_assert_value(r, v);
    assert_int_equal(r->n_headers, 1);
    assert_string_equal(r->headers[0].name, "n");
    assert_int_equal(r->headers[0].len, strlen(h));
    assert_memory_equal(r->headers[0].value, h, strlen(h));
}

/* r is named as the record at topic[part]@off whose checksum failed, and
 * comes without headers. */
static void assert_mismatch(const stele_log_record *r, const char *topic,
                            int32_t part, int64_t off)
{
    assert_non_null(r->damaged);
    if (!strstr(r->damaged, "checksum mismatch"))
        fail_msg("%s[%d]@%lld: damaged '%s', not a checksum mismatch", topic,
                 (int)part, (long long)off, r->damaged);
    assert_string_equal(r->topic, topic);
    assert_int_equal(r->partition, part);
    assert_int_equal(r->offset, off);
    assert_int_equal(r->n_headers, 0);
    assert_false(r->unchecked);
}

/* Before, the read gave the changed bytes as if they were stored so: a
 * wrong key, value or header value, nothing said. */
void test_a_byte_changed_in_a_stored_record_is_a_checksum_mismatch(void **state)
{
    lc_ctx *c = *state;
    const log_conformance_raw *raw = raw_or_skip();
    static const char *const columns[] = {"key", "value", "headers"};
    for (size_t k = 0; k < 3; k++) {
        const char *t = lc_name(c, columns[k]);
        lc_ensure(c->log, t, 1, false);
        int64_t offs[3];
        produce_n(c->log, t, 3, offs);
        raw->flip(c->fixture, t, 0, offs[1], columns[k]);
        stele_log_batch *b = lc_read_all(c->log, t, 0);
        assert_int_equal(b->n, 3);
        assert_intact(&b->records[0], 0);
        assert_mismatch(&b->records[1], t, 0, offs[1]);
        assert_intact(&b->records[2], 2);
        stele_log_batch_free(b);
    }
}

/* Polls c until it has returned n records, checking each: the one at
 * offset bad is a mismatch, the others intact. */
static void poll_expecting(stele_log_consumer *cons, const char *topic,
                           int64_t *offs, size_t n, int64_t bad)
{
    size_t got = 0;
    for (int tries = 0; got < n && tries < 100; tries++) {
        stele_log_batch *b = NULL;
        OK(stele_log_consumer_poll(cons, lc_backend->poll_timeout_ms / 10 + 1,
                                   10, &b, E));
        for (size_t i = 0; i < b->n; i++, got++) {
            assert_true(got < n);
            assert_int_equal(b->records[i].offset, offs[got]);
            if (offs[got] == bad)
                assert_mismatch(&b->records[i], topic, 0, bad);
            else
                assert_intact(&b->records[i], (int)got);
        }
        stele_log_batch_free(b);
    }
    assert_int_equal(got, n);
}

/* A read by offset, by key, a consumer's poll, a compacted read and a
 * lookup by key each turn a stored row into a record: each checks. */
void test_a_checksum_mismatch_is_found_by_every_read_path(void **state)
{
    lc_ctx *c = *state;
    const log_conformance_raw *raw = raw_or_skip();
    const char *t = lc_name(c, "events");
    lc_ensure(c->log, t, 1, false);
    int64_t offs[3];
    produce_n(c->log, t, 3, offs);
    raw->flip(c->fixture, t, 0, offs[1], "value");

    stele_log_batch *b = NULL;
    OK(stele_log_read(c->log, t, 0, offs[1], 1, &b, E));
    assert_int_equal(b->n, 1);
    assert_mismatch(&b->records[0], t, 0, offs[1]);
    stele_log_batch_free(b);
    OK(stele_log_read_key(c->log, t, 0, "k1", 2, 0, 10, &b, E));
    assert_int_equal(b->n, 1);
    assert_mismatch(&b->records[0], t, 0, offs[1]);
    stele_log_batch_free(b);
    OK(stele_log_read_key(c->log, t, 0, "k2", 2, 0, 10, &b, E));
    assert_int_equal(b->n, 1);
    assert_intact(&b->records[0], 2);
    stele_log_batch_free(b);

    stele_log_consumer *cons = NULL;
    OK(stele_log_consumer_new(c->log, lc_name(c, "g"), &t, 1, NULL, &cons, E));
    poll_expecting(cons, t, offs, 3, offs[1]);
    stele_log_consumer_close(cons);

    const char *s = lc_name(c, "state");
    lc_ensure(c->log, s, 1, true);
    int64_t soffs[3];
    produce_n(c->log, s, 3, soffs);
    raw->flip(c->fixture, s, 0, soffs[1], "value");
    b = lc_read_all(c->log, s, 0);
    assert_int_equal(b->n, 3);
    assert_intact(&b->records[0], 0);
    assert_mismatch(&b->records[1], s, 0, soffs[1]);
    assert_intact(&b->records[2], 2);
    stele_log_batch_free(b);
    OK(stele_log_get_latest(c->log, s, 0, "k1", 2, &b, E));
    assert_int_equal(b->n, 1);
    assert_mismatch(&b->records[0], s, 0, soffs[1]);
    stele_log_batch_free(b);
    OK(stele_log_get_latest(c->log, s, 0, "k0", 2, &b, E));
    assert_intact(&b->records[0], 0);
    stele_log_batch_free(b);
    /* a new record of the key replaces the bad one, checked again */
    stele_log_header hd = {"n", "h1", 2};
    stele_log_record r = lc_kv("k1", "v1");
    r.headers = &hd;
    r.n_headers = 1;
    OK(stele_log_produce(c->log, s, 0, &r, NULL, E));
    OK(stele_log_get_latest(c->log, s, 0, "k1", 2, &b, E));
    assert_intact(&b->records[0], 1);
    stele_log_batch_free(b);
}

/* Rows stored before records carried checksums: read as they are, and
 * said to be unchecked, on normal and compacted topics. */
void test_a_record_stored_without_checksum_reads_unchecked(void **state)
{
    lc_ctx *c = *state;
    const log_conformance_raw *raw = raw_or_skip();
    for (int compacted = 0; compacted < 2; compacted++) {
        const char *t = lc_name(c, compacted ? "state" : "events");
        lc_ensure(c->log, t, 1, compacted);
        int64_t offs[3];
        produce_n(c->log, t, 3, offs);
        raw->uncheck(c->fixture, t, 0, offs[1]);
        stele_log_batch *b = lc_read_all(c->log, t, 0);
        assert_int_equal(b->n, 3);
        assert_intact(&b->records[0], 0);
        assert_intact(&b->records[2], 2);
        stele_log_record r = b->records[1];
        assert_true(r.unchecked);
        r.unchecked = false;
        assert_intact(&r, 1);
        stele_log_batch_free(b);
    }
}

/* Before, opening a log made by an earlier stele failed at the first
 * statement naming the new column. */
void test_a_log_from_before_checksums_is_migrated_and_read(void **state)
{
    lc_ctx *c = *state;
    const log_conformance_raw *raw = raw_or_skip();
    const char *t = lc_name(c, "events"), *s = lc_name(c, "state");
    raw->make_old(c->fixture, t, s);
    stele_log *old = NULL, *again = NULL;
    OK(raw->open_old(c->fixture, &old, E));
    OK(raw->open_old(c->fixture, &again, E)); /* the second finds it done */
    stele_log_batch *b = lc_read_all(again, t, 0);
    assert_int_equal(b->n, 1);
    stele_log_record r = b->records[0];
    assert_true(r.unchecked);
    assert_null(r.damaged);
    assert_int_equal(r.offset, 0);
    lc_assert_value(&r, "v");
    assert_int_equal(r.n_headers, 1);
    assert_string_equal(r.headers[0].name, "h");
    assert_memory_equal(r.headers[0].value, "1", 1);
    stele_log_batch_free(b);
    OK(stele_log_get_latest(old, s, 0, "k", 1, &b, E));
    assert_true(b->records[0].unchecked);
    lc_assert_value(&b->records[0], "v");
    stele_log_batch_free(b);

    /* written from now on: checked */
    lc_produce(old, t, 0, "k", "w");
    lc_produce(old, s, 0, "k", "w");
    b = lc_read_all(again, t, 0);
    assert_int_equal(b->n, 2);
    assert_true(b->records[0].unchecked);
    assert_int_equal(b->records[1].offset, 1);
    assert_false(b->records[1].unchecked);
    assert_null(b->records[1].damaged);
    lc_assert_value(&b->records[1], "w");
    stele_log_batch_free(b);
    OK(stele_log_get_latest(again, s, 0, "k", 1, &b, E));
    assert_false(b->records[0].unchecked);
    assert_null(b->records[0].damaged);
    lc_assert_value(&b->records[0], "w");
    stele_log_batch_free(b);
    stele_log_close(again);
    stele_log_close(old);
    raw->remove_old(c->fixture);
}
