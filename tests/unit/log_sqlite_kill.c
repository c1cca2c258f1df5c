/*
 * log_sqlite_kill.c — the embedded log killed with SIGKILL in the middle of
 * writes: a reopened log holds whole transactions only, and a new owner of
 * the group writes on from the committed offsets.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "log_sqlite_test.h"

/* ------------------------------------------------------------------ */
/* SIGKILL in the middle of writes                                      */

#define KILL_PER_PART 100 /* records per partition per transaction */

/* Transaction k writes "k:i" (i < KILL_PER_PART) to each partition of
 * "ev", "k" to key "last" of "state", and group offset k + 1 for "in". */
static int write_txn(stele_log *log, stele_log_consumer *cons, int k,
                     size_t value_size, int per_part)
{
    stele_log_txn *txn;
    char value[4096], key[32];
    if (value_size >= sizeof value)
        return -1;
    if (stele_log_txn_begin(log, &txn, NULL))
        return -1;
    for (int i = 0; i < per_part; i++) {
        for (int32_t p = 0; p < 3; p++) {
            int n = snprintf(value, sizeof value, "%d:%d", k, i);
            memset(value + n, '.',
                   value_size > (size_t)n ? value_size - (size_t)n : 0);
            stele_log_record r = {
                .key = "agg",
                .key_len = 3,
                .value = value,
                .value_len = value_size > (size_t)n ? value_size : (size_t)n};
            if (stele_log_txn_produce(txn, "ev", p, &r, NULL, NULL))
                goto fail;
        }
    }
    snprintf(key, sizeof key, "%d", k);
    stele_log_record s = {
        .key = "last", .key_len = 4, .value = key, .value_len = strlen(key)};
    if (stele_log_txn_produce(txn, "state", 0, &s, NULL, NULL) ||
        stele_log_txn_send_offset(txn, cons, "in", 0, k + 1, NULL))
        goto fail;
    return stele_log_txn_commit(txn, NULL);
fail:
    stele_log_txn_abort(txn);
    return -1;
}

static int child_open_owner(const char *path, stele_log **log,
                            stele_log_consumer **cons)
{
    const char *t = "in";
    stele_log_batch *b;
    if (stele_log_open_sqlite(path, log, NULL) ||
        stele_log_consumer_new(*log, "g", &t, 1, NULL, cons, NULL) ||
        stele_log_consumer_poll(*cons, 0, 1, &b, NULL))
        return -1;
    stele_log_batch_free(b);
    return 0;
}

static int child_commits_three_then_hangs_mid_txn(const char *path, int fd)
{
    stele_log *log;
    stele_log_consumer *cons;
    if (child_open_owner(path, &log, &cons))
        return 2;
    for (int k = 0; k < 3; k++)
        if (write_txn(log, cons, k, 16, KILL_PER_PART))
            return 3;
    /* A transaction bigger than SQLite's page cache, so dirty pages spill
     * into the WAL before the kill. */
    stele_log_txn *txn;
    if (stele_log_txn_begin(log, &txn, NULL))
        return 4;
    static char big[600];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < 40000; i++) {
        stele_log_record r = {
            .key = "agg", .key_len = 3, .value = big, .value_len = sizeof big};
        if (stele_log_txn_produce(txn, "ev", i % 3, &r, NULL, NULL))
            return 5;
    }
    stele_log_record s = {
        .key = "last", .key_len = 4, .value = "partial", .value_len = 7};
    if (stele_log_txn_produce(txn, "state", 0, &s, NULL, NULL) ||
        stele_log_txn_send_offset(txn, cons, "in", 0, 999, NULL))
        return 6;
    if (write(fd, "m", 1) != 1)
        return 7;
    for (;;)
        pause();
}

static int child_commits_until_killed(const char *path, int fd)
{
    stele_log *log;
    stele_log_consumer *cons;
    if (child_open_owner(path, &log, &cons))
        return 2;
    for (int k = 0;; k++) {
        if (write_txn(log, cons, k, 300, KILL_PER_PART))
            return 3;
        if (k == 0 && write(fd, "c", 1) != 1)
            return 4;
    }
}

/* Every committed transaction is whole and nothing else is visible:
 * committed group offset K means transactions 0..K-1 and only them. */
static void check_whole_transactions(stele_log *log, int min_txns)
{
    int64_t k = -1;
    OK(stele_log_committed(log, "g", "in", 0, &k, E));
    assert_true(k >= min_txns);
    for (int32_t p = 0; p < 3; p++) {
        int64_t end = -1;
        OK(stele_log_end_offset(log, "ev", p, &end, E));
        assert_int_equal(end, k * KILL_PER_PART);
        stele_log_batch *b = NULL;
        OK(stele_log_read(log, "ev", p, 0, (size_t)end + 10, &b, E));
        assert_int_equal(b->n, (size_t)end);
        for (size_t i = 0; i < b->n; i++) {
            char want[32];
            int n =
                snprintf(want, sizeof want, "%d:%d", (int)(i / KILL_PER_PART),
                         (int)(i % KILL_PER_PART));
            assert_int_equal(b->records[i].offset, (int64_t)i);
            assert_true(b->records[i].value_len >= (size_t)n);
            assert_memory_equal(b->records[i].value, want, (size_t)n);
        }
        stele_log_batch_free(b);
    }
    stele_log_batch *b = NULL;
    OK(stele_log_get_latest(log, "state", 0, "last", 4, &b, E));
    char want[32];
    snprintf(want, sizeof want, "%d", (int)k - 1);
    assert_int_equal(b->records[0].value_len, strlen(want));
    assert_memory_equal(b->records[0].value, want, strlen(want));
    stele_log_batch_free(b);
}

static void kill_world_setup(ctx *c)
{
    lc_ensure(c->log, "ev", 3, false);
    lc_ensure(c->log, "state", 1, true);
    lc_ensure(c->log, "in", 1, false);
}

/* After the kill this process takes the group over and writes on. */
static void continue_after_kill(ctx *c)
{
    stele_log_consumer *cons = sl_consumer(c->log, "g", "in");
    sl_poll_now(cons, 1, NULL, 0);
    assert_int_equal(sl_assigned(cons), 1);
    int64_t k = 0;
    OK(stele_log_committed(c->log, "g", "in", 0, &k, E));
    assert_int_equal(write_txn(c->log, cons, (int)k, 16, KILL_PER_PART), 0);
    stele_log_consumer_close(cons);
    check_whole_transactions(c->log, (int)k + 1);
}

void test_sigkill_mid_transaction_leaves_nothing(void **state)
{
    ctx *c = *state;
    kill_world_setup(c);
    int fd;
    pid_t pid =
        sl_spawn(c->f->path, child_commits_three_then_hangs_mid_txn, &fd);
    sl_wait_signal(fd);
    kill(pid, SIGKILL);
    assert_true(WIFSIGNALED(sl_wait_exit(pid)));

    stele_log_close(c->log);
    OK(stele_log_open_sqlite(c->f->path, &c->log, E));
    check_whole_transactions(c->log, 3);
    int64_t k = 0;
    OK(stele_log_committed(c->log, "g", "in", 0, &k, E));
    assert_int_equal(k, 3);
    continue_after_kill(c);
}

void test_sigkill_during_commit_loop_keeps_transactions_whole(void **state)
{
    ctx *c = *state;
    kill_world_setup(c);
    int fd;
    pid_t pid = sl_spawn(c->f->path, child_commits_until_killed, &fd);
    sl_wait_signal(fd);
    /* Let it commit a varying number more; any kill point must do. */
    usleep(20000 + (unsigned)(getpid() % 7) * 3000);
    kill(pid, SIGKILL);
    assert_true(WIFSIGNALED(sl_wait_exit(pid)));

    stele_log_close(c->log);
    OK(stele_log_open_sqlite(c->f->path, &c->log, E));
    check_whole_transactions(c->log, 1);
    continue_after_kill(c);
}
