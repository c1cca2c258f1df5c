/*
 * test_log_pg.c — the log conformance suite against the PostgreSQL log,
 * then what only it promises: consumer groups shared by processes
 * (partitions split between members, a killed member's taken over), an
 * owner that lost a partition cannot commit offsets for it, consumers
 * woken by NOTIFY, big transactions all or nothing, a server restart,
 * and members that stop polling. The process tests are
 * log_pg_processes.c, the polling limit log_pg_evict.c, the helpers
 * log_pg_helpers.c (log_pg_test.h).
 * The run has a database of its own, dropped at the end; the server is
 * started through scripts/pg-start.sh when it does not answer.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "common_pg.h"
#include "log_conformance.h"
#include "log_pg_test.h"
#include "log_pg_evict.h"

char *lpt_conninfo;

static int fx_setup(void **fixture)
{
    *fixture = lpt_conninfo;
    return 0;
}

static int fx_open(void *fixture, stele_log **out, stele_err *err)
{
    return stele_log_open_postgres(fixture, out, err);
}

static void fx_teardown(void *fixture)
{
    (void)fixture; /* names are unique per test; the database goes at exit */
}

static void test_poll_is_woken_by_a_commit_in_another_process(void **state)
{
    (void)state;
    char topic[64], g[64];
    lpt_uniq(topic, sizeof topic, "wake");
    lpt_uniq(g, sizeof g, "g");
    stele_log *l = lpt_open_log();
    lc_ensure(l, topic, 1, false);
    const char *t = topic;
    stele_log_consumer *c;
    OK(stele_log_consumer_new(l, g, &t, 1, NULL, &c, E));
    lpt_poll_until_owns(c, 1);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct timespec ts = {0, 300 * 1000000L};
        nanosleep(&ts, NULL);
        stele_log *w;
        stele_err err;
        stele_log_record r = {
            .key = "k", .key_len = 1, .value = "woken", .value_len = 5};
        if (stele_log_open_postgres(lpt_conninfo, &w, &err) ||
            stele_log_produce(w, topic, 0, &r, NULL, &err))
            _exit(1);
        stele_log_close(w);
        _exit(0);
    }
    /* A long timeout: only the commit's NOTIFY can end this poll with
     * the record (the consumer does not read without one). */
    stele_log_batch *b = NULL;
    OK(stele_log_consumer_poll(c, 30000, 10, &b, E));
    assert_int_equal(b->n, 1);
    assert_int_equal(b->records[0].value_len, 5);
    assert_memory_equal(b->records[0].value, "woken", 5);
    stele_log_batch_free(b);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    stele_log_consumer_close(c);
    stele_log_close(l);
}

/* The engine polls with timeout 0 and sleeps on its own: notifications
 * must be taken on such polls too, not only while a poll waits (a bug:
 * records committed by another process were never read). */
static void test_zero_timeout_polls_see_other_commits(void **state)
{
    (void)state;
    char topic[64], g[64];
    lpt_uniq(topic, sizeof topic, "zero");
    lpt_uniq(g, sizeof g, "g");
    stele_log *l = lpt_open_log();
    lc_ensure(l, topic, 1, false);
    const char *t = topic;
    stele_log_consumer *c;
    OK(stele_log_consumer_new(l, g, &t, 1, NULL, &c, E));
    lpt_poll_until_owns(c, 1);
    stele_log_batch *b = NULL;
    OK(stele_log_consumer_poll(c, 0, 10, &b, E)); /* drains the wake-ups */
    stele_log_batch_free(b);
    stele_log *w = lpt_open_log();
    stele_log_record r = {
        .key = "k", .key_len = 1, .value = "seen", .value_len = 4};
    OK(stele_log_produce(w, topic, 0, &r, NULL, E));
    stele_log_close(w);
    size_t got = 0;
    for (int i = 0; i < 200 && !got; i++) {
        OK(stele_log_consumer_poll(c, 0, 10, &b, E));
        got = b->n;
        stele_log_batch_free(b);
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(got, 1);
    stele_log_consumer_close(c);
    stele_log_close(l);
}

/* Pseudo-random bytes: incompressible, so a long key stays long. */
static void noise(unsigned char *buf, size_t n)
{
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
}

static void test_big_transaction_is_all_or_nothing(void **state)
{
    (void)state;
    char ev[64], st[64];
    lpt_uniq(ev, sizeof ev, "events");
    lpt_uniq(st, sizeof st, "state");
    stele_log *l = lpt_open_log();
    lc_ensure(l, ev, 3, false);
    lc_ensure(l, st, 3, true);
    /* 6,000 events and 6,000 state upserts over 300 keys: several
     * pipeline chunks. */
    stele_log_txn *txn;
    OK(stele_log_txn_begin(l, &txn, E));
    for (int i = 0; i < 6000; i++) {
        char key[16], val[32];
        snprintf(key, sizeof key, "acc-%d", i % 300);
        snprintf(val, sizeof val, "v%d", i);
        stele_log_record r = {.key = key,
                              .key_len = strlen(key),
                              .value = val,
                              .value_len = strlen(val)};
        OK(stele_log_txn_produce(txn, ev, -1, &r, NULL, E));
        OK(stele_log_txn_produce(txn, st, -1, &r, NULL, E));
    }
    OK(stele_log_txn_commit(txn, E));
    int64_t total = 0;
    for (int32_t p = 0; p < 3; p++) {
        int64_t end;
        OK(stele_log_end_offset(l, ev, p, &end, E));
        stele_log_batch *b = NULL;
        OK(stele_log_read(l, ev, p, 0, 10000, &b, E));
        assert_int_equal((int64_t)b->n, end); /* dense, from 0 */
        for (size_t i = 0; i < b->n; i++)
            assert_int_equal(b->records[i].offset, (int64_t)i);
        total += end;
        stele_log_batch_free(b);
    }
    assert_int_equal(total, 6000);
    stele_log_batch *b = NULL;
    OK(stele_log_get_latest(l, st, -1, "acc-7", 5, &b, E));
    assert_int_equal(b->records[0].value_len, 5);
    assert_memory_equal(b->records[0].value, "v5707", 5);
    stele_log_batch_free(b);

    /* A key too large for the index, late in a big transaction: the
     * commit fails and none of it is written. */
    int64_t before[3];
    for (int32_t p = 0; p < 3; p++)
        OK(stele_log_end_offset(l, ev, p, &before[p], E));
    static unsigned char huge[20000];
    noise(huge, sizeof huge);
    OK(stele_log_txn_begin(l, &txn, E));
    for (int i = 0; i < 5000; i++) {
        stele_log_record r = {
            .key = "k", .key_len = 1, .value = "x", .value_len = 1};
        OK(stele_log_txn_produce(txn, ev, i % 3, &r, NULL, E));
    }
    stele_log_record big = {
        .key = huge, .key_len = sizeof huge, .value = "x", .value_len = 1};
    OK(stele_log_txn_produce(txn, st, 0, &big, NULL, E));
    stele_err err = {0};
    int rc = stele_log_txn_commit(txn, &err);
    assert_true(rc == STELE_EINVAL || rc == STELE_EIO);
    assert_non_null(strstr(err.msg, st));
    for (int32_t p = 0; p < 3; p++) {
        int64_t end;
        OK(stele_log_end_offset(l, ev, p, &end, E));
        assert_int_equal(end, before[p]);
    }
    /* The handle writes again. */
    lc_produce(l, ev, 0, "k", "after");
    stele_log_close(l);
}

static void test_errors_name_the_server_never_the_password(void **state)
{
    (void)state;
    stele_log *l = NULL;
    stele_err err = {0};
    int rc = stele_log_open_postgres(
        "host=127.0.0.1 port=1 user=postgres password=sekr3t-pw dbname=x "
        "connect_timeout=3",
        &l, &err);
    assert_int_equal(rc, STELE_ERETRY);
    assert_null(l);
    assert_non_null(strstr(err.msg, "127.0.0.1:1"));
    assert_null(strstr(err.msg, "sekr3t-pw"));
    rc =
        stele_log_open_postgres("host=127.0.0.1 password='sekr3t-pw", &l, &err);
    assert_int_equal(rc, STELE_EINVAL);
    assert_non_null(
        strstr(err.msg, "PostgreSQL log: bad PostgreSQL connection string"));
    assert_null(strstr(err.msg, "sekr3t-pw"));
}

static void test_server_restart_fails_with_retry_then_recovers(void **state)
{
    (void)state;
    if (!pgt_managed())
        skip(); /* never stop a server the tests do not own */
    char topic[64], g[64];
    lpt_uniq(topic, sizeof topic, "restart");
    lpt_uniq(g, sizeof g, "g");
    stele_log *l = lpt_open_log();
    lc_ensure(l, topic, 2, false);
    const char *t = topic;
    rebalance_log rl = {0};
    stele_log_rebalance_cb cb = {lpt_on_assigned, lpt_on_revoked, &rl};
    stele_log_consumer *c;
    OK(stele_log_consumer_new(l, g, &t, 1, &cb, &c, E));
    lpt_poll_until_owns(c, 2);
    lc_produce(l, topic, 0, "k", "before");

    assert_int_equal(pgt_script("pg-stop.sh"), 0);
    stele_err err = {0};
    stele_log_record r = {
        .key = "k", .key_len = 1, .value = "during", .value_len = 6};
    assert_int_equal(stele_log_produce(l, topic, 0, &r, NULL, &err),
                     STELE_ERETRY);
    assert_non_null(strstr(err.msg, "PostgreSQL log at"));
    stele_log_batch *b = NULL;
    assert_int_equal(stele_log_read(l, topic, 0, 0, 10, &b, &err),
                     STELE_ERETRY);
    assert_int_equal(stele_log_consumer_poll(c, 100, 10, &b, &err),
                     STELE_ERETRY);
    assert_int_equal(rl.lost_n, 2); /* its locks went with the session */
    assert_int_equal(lpt_owned(c), 0);

    assert_int_equal(pgt_script("pg-start.sh"), 0);
    lc_produce(l, topic, 0, "k", "after"); /* reconnects */
    /* The consumer takes its partitions again and reads from the
     * committed offsets (none: from the start). */
    size_t got = 0;
    for (int i = 0; i < 100 && got < 2; i++) {
        b = NULL;
        int prc = stele_log_consumer_poll(c, 100, 10, &b, &err);
        if (prc == STELE_ERETRY)
            continue;
        assert_int_equal(prc, 0);
        got += b->n;
        stele_log_batch_free(b);
    }
    assert_int_equal(got, 2);
    assert_int_equal(lpt_owned(c), 2);
    assert_int_equal(rl.assigned_n, 4);
    stele_log_consumer_close(c);
    stele_log_close(l);
}

static int group_teardown(void **state)
{
    (void)state;
    pgt_restart_if_stopped(); /* a failed test left it stopped */
    return 0;
}

int main(void)
{
    char name[64];
    snprintf(name, sizeof name, "stele_logtest_%d", (int)getpid());
    if (!pgt_ensure_server() || !pgt_create_db(name, false, &lpt_conninfo)) {
        fprintf(stderr, "test_log_pg: no PostgreSQL server\n");
        return 1;
    }
    log_conformance_backend backend = {
        .name = "postgres",
        .setup = fx_setup,
        .open = fx_open,
        .teardown = fx_teardown,
        .dense_offsets = true,
        .deletes_records = true,
        .poll_timeout_ms = 5000,
        .raw = &lpt_raw,
    };
    int failures = log_conformance_run(&backend);
#define T(f) cmocka_unit_test_teardown(f, group_teardown)
    const struct CMUnitTest tests[] = {
        T(test_two_processes_split_partitions_disjointly),
        T(test_killed_member_partitions_are_taken_over),
        T(test_owner_that_lost_a_partition_cannot_commit_offsets),
        T(test_poll_is_woken_by_a_commit_in_another_process),
        T(test_zero_timeout_polls_see_other_commits),
        T(test_big_transaction_is_all_or_nothing),
        T(test_errors_name_the_server_never_the_password),
        T(test_server_restart_fails_with_retry_then_recovers),
        T(test_hosts_opening_an_old_log_at_once_all_migrate_it),
    };
#undef T
    failures +=
        cmocka_run_group_tests_name("log on PostgreSQL", tests, NULL, NULL);
    failures += log_pg_evict_run(lpt_conninfo);
    group_teardown(NULL);
    pgt_drop_db(name);
    free(lpt_conninfo);
    return failures ? 1 : 0;
}
