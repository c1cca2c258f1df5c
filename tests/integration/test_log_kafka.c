/*
 * test_log_kafka.c — the log conformance suite against a real Kafka broker
 * (common_kafka.h: the one on 127.0.0.1:9092, a scratch one started when
 * none answers, or STELE_KAFKA_BOOTSTRAP), then what only Kafka shows:
 * aborted transactions stay invisible, a zombie with the same
 * transactional.id is fenced, a group's partitions move between handles,
 * views of compacted partitions follow tombstones, a missing broker is a
 * clear error, and a handle outlives a broker outage (log_kafka_outage.c). Topic and group names carry a random per-run prefix: the
 * broker may be shared. The run's topics are deleted at the end.
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
#include "log_kafka_outage.h"

static const char *bootstrap;
static char run_prefix[32];
static unsigned open_counter;

/* A new handle; id NULL gives it a transactional.id of its own. */
static int open_log(const char *txn_id, stele_log **out, stele_err *err)
{
    char id[96];
    snprintf(id, sizeof id, "%stxn-%u", run_prefix, ++open_counter);
    const char *keys[] = {"bootstrap.servers", "transactional.id"};
    const char *values[] = {bootstrap, txn_id ? txn_id : id};
    return stele_log_open_kafka(keys, values, 2, NULL, out, err);
}

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
    return open_log(NULL, out, err);
}

static void fx_teardown(void *fixture)
{
    (void)fixture;
}

/* ------------------------------------------------------------------ */
/* Kafka-specific tests                                                 */

typedef struct ctx {
    stele_log *log;
    char names[8][128];
    unsigned next_name;
} ctx;

static unsigned test_counter;
static char test_prefix[64];

static const char *N(ctx *c, const char *base)
{
    char *buf = c->names[c->next_name++ % 8];
    snprintf(buf, sizeof c->names[0], "%s%s", test_prefix, base);
    return buf;
}


static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    stele_err err = {0};
    snprintf(test_prefix, sizeof test_prefix, "%sk%u-", run_prefix,
             ++test_counter);
    if (!c || open_log(NULL, &c->log, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    stele_log_close(c->log);
    free(c);
    return 0;
}

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

static size_t count(stele_log *log, const char *topic, int32_t part)
{
    stele_log_batch *b = NULL;
    OK(stele_log_read(log, topic, part, 0, 100000, &b, E));
    size_t n = b->n;
    stele_log_batch_free(b);
    return n;
}

static void assert_latest(stele_log *log, const char *topic, const char *key,
                          const char *want)
{
    stele_log_batch *b = NULL;
    stele_err err = {0};
    int rc = stele_log_get_latest(log, topic, -1, key, strlen(key), &b, &err);
    if (!want) {
        if (rc != STELE_ENOTFOUND)
            fail_msg("get_latest %s: want not found, got %d (%s)", key, rc,
                     err.msg);
        assert_null(b);
        return;
    }
    if (rc)
        fail_msg("get_latest %s -> %d: %s", key, rc, err.msg);
    assert_int_equal(b->n, 1);
    assert_int_equal(b->records[0].value_len, strlen(want));
    assert_memory_equal(b->records[0].value, want, strlen(want));
    stele_log_batch_free(b);
}

static void test_aborted_txn_is_invisible_to_reads_and_get_latest(void **state)
{
    ctx *c = *state;
    const char *ev = N(c, "ev"), *st = N(c, "st");
    ensure(c->log, ev, 1, false);
    ensure(c->log, st, 1, true);
    OK(stele_log_compacted_sync(c->log, st, 0, E)); /* a view exists */
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    stele_log_record r = kv("acc", "aborted");
    OK(stele_log_txn_produce(txn, ev, 0, &r, NULL, E));
    OK(stele_log_txn_produce(txn, st, 0, &r, NULL, E));
    /* Long enough for librdkafka (linger.ms 5) to send them: the broker
     * holds the aborted records, not just the client's queue. */
    usleep(500 * 1000);
    stele_log_txn_abort(txn);

    assert_int_equal(count(c->log, ev, 0), 0);
    assert_latest(c->log, st, "acc", NULL);
    /* Another handle, reading the partitions from the start, agrees. */
    stele_log *other = NULL;
    OK(open_log(NULL, &other, E));
    assert_int_equal(count(other, ev, 0), 0);
    assert_latest(other, st, "acc", NULL);

    /* The aborted records and their marker took offsets. */
    produce(c->log, ev, 0, "acc", "committed");
    produce(c->log, st, 0, "acc", "committed");
    stele_log_batch *b = NULL;
    OK(stele_log_read(other, ev, 0, 0, 10, &b, E));
    assert_int_equal(b->n, 1);
    assert_true(b->records[0].offset >= 2);
    stele_log_batch_free(b);
    assert_latest(c->log, st, "acc", "committed");
    OK(stele_log_compacted_sync(other, st, 0, E));
    assert_latest(other, st, "acc", "committed");
    stele_log_close(other);
}

static void
test_zombie_with_same_txn_id_is_fenced_and_writes_nothing(void **state)
{
    ctx *c = *state;
    const char *t = N(c, "ev");
    ensure(c->log, t, 1, false);
    char id[128];
    snprintf(id, sizeof id, "%szombie", test_prefix);
    stele_log *zombie = NULL, *successor = NULL;
    OK(open_log(id, &zombie, E));

    /* The zombie is mid-transaction when its successor starts. */
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(zombie, &txn, E));
    stele_log_record r = kv("k", "from-zombie");
    OK(stele_log_txn_produce(txn, t, 0, &r, NULL, E));
    OK(open_log(id, &successor, E));
    r = kv("k", "late");
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
    assert_int_equal(count(c->log, t, 0), 0);

    /* The successor writes. */
    produce(successor, t, 0, "k", "from-successor");
    stele_log_batch *b = NULL;
    OK(stele_log_read(c->log, t, 0, 0, 10, &b, E));
    assert_int_equal(b->n, 1);
    assert_memory_equal(b->records[0].value, "from-successor", 14);
    stele_log_batch_free(b);
    stele_log_close(zombie);
    stele_log_close(successor);
}

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

static void test_group_rebalance_splits_and_returns_partitions(void **state)
{
    ctx *c = *state;
    const char *t = N(c, "in"), *g = N(c, "g");
    ensure(c->log, t, 4, false);
    member a = {0}, b = {0};
    OK(open_log(NULL, &a.log, E));
    OK(open_log(NULL, &b.log, E));
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
        produce(c->log, t, i % 4, "k", "v");
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
static void test_member_that_lost_its_partitions_cannot_commit(void **state)
{
    ctx *c = *state;
    const char *in = N(c, "in"), *out = N(c, "out"), *g = N(c, "g");
    ensure(c->log, in, 2, false);
    ensure(c->log, out, 1, false);
    produce(c->log, in, 0, "k", "cmd");
    member a = {0}, b = {0};
    char id[96];
    snprintf(id, sizeof id, "%szombie-%u", run_prefix, ++open_counter);
    const char *keys[] = {"bootstrap.servers", "transactional.id",
                          "session.timeout.ms", "heartbeat.interval.ms",
                          "max.poll.interval.ms"};
    const char *values[] = {bootstrap, id, "6000", "500", "7000"};
    OK(stele_log_open_kafka(keys, values, 5, NULL, &a.log, E));
    OK(open_log(NULL, &b.log, E));
    stele_log_rebalance_cb cba = {on_assigned, on_revoked, &a};
    stele_log_rebalance_cb cbb = {on_assigned, on_revoked, &b};
    OK(stele_log_consumer_new(a.log, g, &in, 1, &cba, &a.cons, E));
    settle(&a, NULL, 2, 0);

    /* a is mid-transaction when it stops polling */
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(a.log, &txn, E));
    stele_log_record r = kv("k", "from-the-zombie");
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
    assert_int_equal(count(c->log, out, 0), 0);
    int64_t next = -1;
    OK(stele_log_committed(c->log, g, in, 0, &next, E));
    assert_int_equal(next, 0);

    stele_log_consumer_close(b.cons);
    stele_log_consumer_close(a.cons);
    stele_log_close(a.log);
    stele_log_close(b.log);
}

static void test_send_offset_commit_is_seen_by_other_handles(void **state)
{
    ctx *c = *state;
    const char *in = N(c, "in"), *out = N(c, "out"), *g = N(c, "g");
    ensure(c->log, in, 1, false);
    ensure(c->log, out, 1, false);
    for (int i = 0; i < 3; i++)
        produce(c->log, in, 0, "k", "cmd");
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
    stele_log_record r = kv("k", "result");
    OK(stele_log_txn_produce(txn, out, 0, &r, NULL, E));
    OK(stele_log_txn_send_offset(txn, cons, in, 0, last + 1, E));
    OK(stele_log_txn_commit(txn, E));

    stele_log *other = NULL;
    OK(open_log(NULL, &other, E));
    int64_t next = -1;
    OK(stele_log_committed(other, g, in, 0, &next, E));
    assert_int_equal(next, last + 1);
    assert_int_equal(count(other, out, 0), 1);
    stele_log_close(other);
    stele_log_consumer_close(cons);
}

static void test_views_follow_tombstones_and_sync(void **state)
{
    ctx *c = *state;
    const char *st = N(c, "st");
    ensure(c->log, st, 3, true);
    stele_log_header h = {.name = "version", .value = "7", .len = 1};
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    stele_log_record r = kv("k1", "v1");
    OK(stele_log_txn_produce(txn, st, -1, &r, NULL, E));
    r = kv("k2", "v2");
    r.headers = &h;
    r.n_headers = 1;
    OK(stele_log_txn_produce(txn, st, -1, &r, NULL, E));
    r = kv("k1", NULL);
    OK(stele_log_txn_produce(txn, st, -1, &r, NULL, E));
    r = kv("k3", "v3");
    OK(stele_log_txn_produce(txn, st, -1, &r, NULL, E));
    OK(stele_log_txn_commit(txn, E));

    stele_log *reader = NULL;
    OK(open_log(NULL, &reader, E));
    for (int32_t p = 0; p < 3; p++)
        OK(stele_log_compacted_sync(reader, st, p, E));
    assert_latest(reader, st, "k1", NULL);
    assert_latest(reader, st, "k3", "v3");
    stele_log_batch *b = NULL;
    OK(stele_log_get_latest(reader, st, -1, "k2", 2, &b, E));
    assert_int_equal(b->records[0].n_headers, 1);
    assert_string_equal(b->records[0].headers[0].name, "version");
    assert_memory_equal(b->records[0].headers[0].value, "7", 1);
    assert_int_equal(b->records[0].partition,
                     stele_partition_for_key("k2", 2, 3));
    stele_log_batch_free(b);

    /* The writer's changes reach the reader's view at its next sync. */
    produce(c->log, st, -1, "k2", NULL);
    produce(c->log, st, -1, "k1", "back");
    assert_latest(c->log, st, "k2", NULL);
    assert_latest(c->log, st, "k1", "back");
    assert_latest(reader, st, "k2", "v2");
    for (int32_t p = 0; p < 3; p++)
        OK(stele_log_compacted_sync(reader, st, p, E));
    assert_latest(reader, st, "k2", NULL);
    assert_latest(reader, st, "k1", "back");
    /* A handle's own commits reach its view at once. */
    produce(reader, st, -1, "k3", "mine");
    assert_latest(reader, st, "k3", "mine");

    stele_err err = {0};
    ensure(c->log, N(c, "plain"), 1, false);
    assert_int_equal(
        stele_log_get_latest(c->log, N(c, "plain"), 0, "k", 1, &b, &err),
        STELE_EINVAL);
    stele_log_close(reader);
}

static void test_refused_record_fails_commit_and_writes_nothing(void **state)
{
    ctx *c = *state;
    const char *t = N(c, "small");
    const char *configs[] = {"max.message.bytes=2000"};
    stele_topic_spec spec = {
        .name = t, .partitions = 1, .configs = configs, .n_configs = 1};
    OK(stele_log_topic_ensure(c->log, &spec, E));
    static char big[5000];
    memset(big, 'x', sizeof big);
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    stele_log_record r = kv("k", "fits");
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
    assert_int_equal(count(c->log, t, 0), 0);
    /* The handle writes again. librdkafka 2.x may purge the first
     * transaction after such an abort ("Purged in queue", as in
     * karafka/waterdrop#501): that is STELE_ERETRY, and a retry works. */
    r = kv("k", "after");
    rc = STELE_ERETRY;
    for (int i = 0; i < 3 && rc == STELE_ERETRY; i++)
        rc = stele_log_produce(c->log, t, 0, &r, NULL, &err);
    if (rc)
        fail_msg("produce after the refused record: %d (%s)", rc, err.msg);
    assert_int_equal(count(c->log, t, 0), 1);
}

/* One property set serves producers and consumers: a producer property
 * (linger.ms) reaching a consumer is expected, and librdkafka's warning
 * about it is not shown; its other log lines are, named as stele's. */
static void test_role_mismatch_warnings_are_not_shown(void **state)
{
    ctx *c = *state;
    const char *in = N(c, "quiet");
    ensure(c->log, in, 1, false);
    char path[] = "/tmp/stele-kafka-stderr-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    const char *keys[] = {"bootstrap.servers", "linger.ms"};
    const char *values[] = {bootstrap, "5"};
    stele_log *log = NULL;
    stele_log_consumer *cons = NULL;
    stele_err err = {0};
    int rc = stele_log_open_kafka(keys, values, 2, N(c, "quiet"), &log, &err);
    if (rc == 0)
        rc = stele_log_consumer_new(log, N(c, "quiet-g"), &in, 1, NULL, &cons,
                                    &err);
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
    const char *bad_values[] = {bootstrap, "1"};
    rc = stele_log_open_kafka(bad_keys, bad_values, 2, "nobody", &log, &err);
    assert_int_equal(rc, STELE_EINVAL);
    assert_non_null(strstr(err.msg, "no.such.property"));
}

int main(void)
{
    if (ckt_ensure_broker())
        return 1;
    bootstrap = ckt_bootstrap();
    unsigned seed = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&seed, sizeof seed, 1, f) != 1)
        seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    if (f)
        fclose(f);
    snprintf(run_prefix, sizeof run_prefix, "t%08x-", seed);

    char conf_prefix[48];
    snprintf(conf_prefix, sizeof conf_prefix, "%sconf-", run_prefix);
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

#define KT(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        KT(test_aborted_txn_is_invisible_to_reads_and_get_latest),
        KT(test_zombie_with_same_txn_id_is_fenced_and_writes_nothing),
        KT(test_group_rebalance_splits_and_returns_partitions),
        KT(test_member_that_lost_its_partitions_cannot_commit),
        KT(test_send_offset_commit_is_seen_by_other_handles),
        KT(test_views_follow_tombstones_and_sync),
        KT(test_refused_record_fails_commit_and_writes_nothing),
        KT(test_role_mismatch_warnings_are_not_shown),
        cmocka_unit_test(test_open_without_broker_names_servers_and_reason),
    };
#undef KT
    failed +=
        cmocka_run_group_tests_name("log (kafka only)", tests, NULL, NULL);
    failed += log_kafka_outage_run(bootstrap, run_prefix);
    /* Left behind, they would make every later start of the broker
     * slower (common_kafka.h). */
    if (ckt_delete_topics(run_prefix) <= 0) {
        fprintf(stderr, "the run's topics (%s*) were not deleted\n",
                run_prefix);
        failed++;
    }
    return failed ? 1 : 0;
}
