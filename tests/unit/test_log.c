/*
 * test_log.c — the log conformance suite against the embedded SQLite log,
 * then what only the SQLite backend promises: group ownership by file lock
 * (across handles and processes), nothing partial after SIGKILL
 * (log_sqlite_kill.c), fair polling, and its file format. The fixture and
 * helpers are log_sqlite_fixture.c (log_sqlite_test.h).
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
#include <sqlite3.h>

#include "log/internal.h"
#include "log_sqlite_test.h"

static void test_group_is_exclusive_across_handles(void **state)
{
    ctx *c = *state;
    lc_ensure(c->log, "ev", 2, false);
    lc_produce(c->log, "ev", 0, "k", "v");
    stele_log_consumer *first = sl_consumer(c->log, "g", "ev");
    assert_int_equal(sl_poll_now(first, 10, NULL, 0), 1);
    assert_int_equal(sl_assigned(first), 2);

    stele_log *other = NULL;
    OK(stele_log_open_sqlite(c->f->path, &other, E));
    stele_log_consumer *second = sl_consumer(other, "g", "ev");
    assert_int_equal(sl_poll_now(second, 10, NULL, 0), 0);
    assert_int_equal(sl_assigned(second), 0);
    /* Another group is independent. */
    stele_log_consumer *third = sl_consumer(other, "g2", "ev");
    assert_int_equal(sl_poll_now(third, 10, NULL, 0), 1);
    stele_log_consumer_close(third);

    stele_log_consumer_close(first);
    /* Nothing was committed: the new owner starts from the beginning. */
    assert_int_equal(sl_poll_now(second, 10, NULL, 0), 1);
    assert_int_equal(sl_assigned(second), 2);
    stele_log_consumer_close(second);
    stele_log_close(other);
}

static void test_send_offset_without_ownership_conflicts(void **state)
{
    ctx *c = *state;
    lc_ensure(c->log, "in", 1, false);
    stele_log_consumer *owner = sl_consumer(c->log, "g", "in");
    sl_poll_now(owner, 1, NULL, 0);
    stele_log_consumer *waiting = sl_consumer(c->log, "g", "in");
    sl_poll_now(waiting, 1, NULL, 0);
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    stele_err err = {0};
    assert_int_equal(stele_log_txn_send_offset(txn, waiting, "in", 0, 3, &err),
                     STELE_ECONFLICT);
    assert_non_null(strstr(err.msg, "in[0]"));
    OK(stele_log_txn_send_offset(txn, owner, "in", 0, 3, E));
    OK(stele_log_txn_commit(txn, E));
    int64_t next = 0;
    OK(stele_log_committed(c->log, "g", "in", 0, &next, E));
    assert_int_equal(next, 3);
    stele_log_consumer_close(waiting);
    stele_log_consumer_close(owner);
}

static int child_expects_no_assignment(const char *path, int fd)
{
    stele_log *log;
    stele_log_consumer *cons;
    const char *t = "ev";
    (void)fd;
    if (stele_log_open_sqlite(path, &log, NULL) ||
        stele_log_consumer_new(log, "g", &t, 1, NULL, &cons, NULL))
        return 2;
    stele_log_batch *b;
    if (stele_log_consumer_poll(cons, 0, 10, &b, NULL))
        return 3;
    const stele_topic_partition *tps;
    int rc = b->n == 0 && !stele_log_consumer_assignment(cons, &tps) ? 0 : 1;
    stele_log_batch_free(b);
    stele_log_consumer_close(cons);
    stele_log_close(log);
    return rc;
}

static int child_owns_group_then_waits(const char *path, int fd)
{
    stele_log *log;
    stele_log_consumer *cons;
    const char *t = "ev";
    if (stele_log_open_sqlite(path, &log, NULL) ||
        stele_log_consumer_new(log, "g", &t, 1, NULL, &cons, NULL))
        return 2;
    stele_log_batch *b;
    if (stele_log_consumer_poll(cons, 0, 10, &b, NULL))
        return 3;
    stele_log_batch_free(b);
    const stele_topic_partition *tps;
    if (!stele_log_consumer_assignment(cons, &tps))
        return 4;
    if (write(fd, "o", 1) != 1)
        return 5;
    for (;;)
        pause(); /* until killed */
}

static void
test_group_is_exclusive_across_processes_until_owner_dies(void **state)
{
    ctx *c = *state;
    lc_ensure(c->log, "ev", 2, false);
    lc_produce(c->log, "ev", 1, "k", "v");
    stele_log_consumer *mine = sl_consumer(c->log, "g", "ev");
    assert_int_equal(sl_poll_now(mine, 10, NULL, 0), 1);

    int fd;
    pid_t pid = sl_spawn(c->f->path, child_expects_no_assignment, &fd);
    close(fd);
    int status = sl_wait_exit(pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    stele_log_consumer_close(mine);

    pid = sl_spawn(c->f->path, child_owns_group_then_waits, &fd);
    sl_wait_signal(fd);
    stele_log_consumer *waiting = sl_consumer(c->log, "g", "ev");
    assert_int_equal(sl_poll_now(waiting, 10, NULL, 0), 0);
    assert_int_equal(sl_assigned(waiting), 0);
    kill(pid, SIGKILL);
    status = sl_wait_exit(pid);
    assert_true(WIFSIGNALED(status));
    /* The kernel released the dead owner's lock. */
    assert_int_equal(sl_poll_now(waiting, 10, NULL, 0), 1);
    assert_int_equal(sl_assigned(waiting), 2);
    stele_log_consumer_close(waiting);
}

/* ------------------------------------------------------------------ */
/* Polling                                                              */

static void test_poll_shares_max_evenly_across_partitions(void **state)
{
    ctx *c = *state;
    lc_ensure(c->log, "ev", 3, false);
    for (int i = 0; i < 30; i++)
        lc_produce(c->log, "ev", i % 3, "k", "v");
    stele_log_consumer *cons = sl_consumer(c->log, "g", "ev");
    size_t per[3] = {0};
    assert_int_equal(sl_poll_now(cons, 6, per, 3), 6);
    for (int p = 0; p < 3; p++)
        assert_int_equal(per[p], 2);
    memset(per, 0, sizeof per);
    assert_int_equal(sl_poll_now(cons, 100, per, 3), 24);
    for (int p = 0; p < 3; p++)
        assert_int_equal(per[p], 8);
    stele_log_consumer_close(cons);
}

static void test_poll_gives_unused_share_to_busy_partitions(void **state)
{
    ctx *c = *state;
    lc_ensure(c->log, "ev", 3, false);
    for (int i = 0; i < 10; i++)
        lc_produce(c->log, "ev", 0, "k", "v");
    lc_produce(c->log, "ev", 2, "k", "v");
    lc_produce(c->log, "ev", 2, "k", "v");
    stele_log_consumer *cons = sl_consumer(c->log, "g", "ev");
    size_t per[3] = {0};
    assert_int_equal(sl_poll_now(cons, 6, per, 3), 6);
    assert_int_equal(per[0], 4);
    assert_int_equal(per[1], 0);
    assert_int_equal(per[2], 2);
    stele_log_consumer_close(cons);
}

static void test_compacted_poll_skips_gaps(void **state)
{
    ctx *c = *state;
    lc_ensure(c->log, "state", 1, true);
    lc_produce(c->log, "state", 0, "a", "a1");
    lc_produce(c->log, "state", 0, "b", "b1");
    lc_produce(c->log, "state", 0, "a", "a2");
    lc_produce(c->log, "state", 0, "a", "a3");
    stele_log_consumer *cons = sl_consumer(c->log, "g", "state");
    stele_log_batch *b = NULL;
    OK(stele_log_consumer_poll(cons, 0, 1, &b, E));
    assert_int_equal(b->n, 1);
    assert_int_equal(b->records[0].offset, 1);
    stele_log_batch_free(b);
    OK(stele_log_consumer_poll(cons, 0, 10, &b, E));
    assert_int_equal(b->n, 1);
    assert_int_equal(b->records[0].offset, 3);
    stele_log_batch_free(b);
    lc_produce(c->log, "state", 0, "c", "c1");
    OK(stele_log_consumer_poll(cons, 0, 10, &b, E));
    assert_int_equal(b->n, 1);
    assert_int_equal(b->records[0].offset, 4);
    stele_log_batch_free(b);
    stele_log_consumer_close(cons);
}

static void test_topic_created_later_is_assigned_on_later_poll(void **state)
{
    ctx *c = *state;
    lc_ensure(c->log, "a", 1, false);
    const char *topics[] = {"a", "later"};
    stele_log_consumer *cons = NULL;
    OK(stele_log_consumer_new(c->log, "g", topics, 2, NULL, &cons, E));
    sl_poll_now(cons, 1, NULL, 0);
    assert_int_equal(sl_assigned(cons), 1);
    lc_ensure(c->log, "later", 2, false);
    lc_produce(c->log, "later", 1, "k", "v");
    assert_int_equal(sl_poll_now(cons, 10, NULL, 0), 1);
    assert_int_equal(sl_assigned(cons), 3);
    stele_log_consumer_close(cons);
}

static void test_poll_reads_large_batches_intact(void **state)
{
    ctx *c = *state;
    lc_ensure(c->log, "ev", 1, false);
    static char value[10000];
    stele_log_txn *txn = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    for (int i = 0; i < 500; i++) {
        memset(value, 'a' + i % 26, sizeof value);
        stele_log_record r = {.value = value, .value_len = sizeof value};
        int64_t off = -1;
        OK(stele_log_txn_produce(txn, "ev", 0, &r, &off, E));
        assert_int_equal(off, i);
    }
    OK(stele_log_txn_commit(txn, E));
    stele_log_consumer *cons = sl_consumer(c->log, "g", "ev");
    stele_log_batch *b = NULL;
    OK(stele_log_consumer_poll(cons, 0, 1000, &b, E));
    assert_int_equal(b->n, 500);
    for (size_t i = 0; i < b->n; i++) {
        memset(value, 'a' + (int)(i % 26), sizeof value);
        assert_int_equal(b->records[i].value_len, sizeof value);
        assert_memory_equal(b->records[i].value, value, sizeof value);
    }
    stele_log_batch_free(b);
    stele_log_consumer_close(cons);
}

/* ------------------------------------------------------------------ */
/* The handle and the file                                              */

static void test_one_transaction_at_a_time_per_handle(void **state)
{
    ctx *c = *state;
    stele_log_txn *txn = NULL, *second = NULL;
    OK(stele_log_txn_begin(c->log, &txn, E));
    stele_err err = {0};
    assert_int_equal(stele_log_txn_begin(c->log, &second, &err), STELE_EINVAL);
    assert_null(second);
    stele_topic_spec spec = {.name = "t", .partitions = 1};
    assert_int_equal(stele_log_topic_ensure(c->log, &spec, &err), STELE_EINVAL);
    stele_log_txn_abort(txn);
    OK(stele_log_topic_ensure(c->log, &spec, E));
}

static void test_open_rejects_a_file_that_is_not_a_log(void **state)
{
    ctx *c = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/garbage.db", c->f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 512; i++)
        fputs("not a database ", fp);
    fclose(fp);
    stele_log *log = NULL;
    stele_err err = {0};
    int rc = stele_log_open_sqlite(path, &log, &err);
    assert_int_equal(rc, STELE_EFATAL);
    assert_null(log);
    assert_non_null(strstr(err.msg, path));
    snprintf(path, sizeof path, "%s/no/such/dir/log.db", c->f->dir);
    assert_int_equal(stele_log_open_sqlite(path, &log, &err), STELE_EIO);
    assert_non_null(strstr(err.msg, path));
}

static void test_log_file_is_in_wal_mode(void **state)
{
    ctx *c = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(c->f->path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(
        sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
    assert_string_equal(stele_log_backend_name(c->log), "sqlite");
}

static void test_group_lock_file_name_is_sanitized(void **state)
{
    ctx *c = *state;
    lc_ensure(c->log, "ev", 1, false);
    stele_log_consumer *cons = sl_consumer(c->log, "../team a/b", "ev");
    sl_poll_now(cons, 1, NULL, 0);
    assert_int_equal(sl_assigned(cons), 1);
    DIR *d = opendir(c->f->dir);
    assert_non_null(d);
    struct dirent *e;
    int locks = 0;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "log.db.", 7) || !strstr(e->d_name, ".lock"))
            continue;
        assert_non_null(strstr(e->d_name, "log.db..._team_a_b-"));
        locks++;
    }
    closedir(d);
    assert_int_equal(locks, 1);
    stele_log_consumer_close(cons);
}

/* Found by tests/fuzz/fuzz_headers: a header name with a NUL inside its
 * stored length decoded as the shorter name, so a corrupt blob read as a
 * whole one and re-encoded to other bytes. */
static void test_header_blob_refuses_a_name_with_a_nul_inside(void **state)
{
    (void)state;
    /* 1 header, its name 10 bytes with a NUL inside, then its value */
    static const unsigned char blob[] = {
        0x01, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 's',  't',
        '%',  0x00, 0x00, 0x00, 't',  'y',  'p',  'e',  0x00, 0x0e,
        0x00, 0x00, 0x00, 'b',  'a',  'n',  'k',  '.',  'D',  'e',
        'p',  'o',  's',  'i',  't',  'e',  'd'};
    stele_log_batch *b = stele_log_batch_create();
    assert_non_null(b);
    stele_log_record rec = {0};
    bool oom = false;
    assert_false(stele_log_headers_decode(b, blob, sizeof blob, &rec, &oom));
    assert_false(oom);
    assert_int_equal(rec.n_headers, 0);
    stele_log_batch_free(b);
}

int main(void)
{
    static const log_conformance_backend sqlite_backend = {
        .name = "sqlite",
        .setup = sl_fx_setup,
        .open = sl_fx_open,
        .teardown = sl_fx_teardown,
        .dense_offsets = true,
        .deletes_records = true,
        .poll_timeout_ms = 100,
        .raw = &sl_raw,
    };
    int failed = log_conformance_run(&sqlite_backend);

#define ST(f) cmocka_unit_test_setup_teardown(f, sl_setup, sl_teardown)
    const struct CMUnitTest tests[] = {
        ST(test_group_is_exclusive_across_handles),
        ST(test_send_offset_without_ownership_conflicts),
        ST(test_group_is_exclusive_across_processes_until_owner_dies),
        ST(test_sigkill_mid_transaction_leaves_nothing),
        ST(test_sigkill_during_commit_loop_keeps_transactions_whole),
        ST(test_poll_shares_max_evenly_across_partitions),
        ST(test_poll_gives_unused_share_to_busy_partitions),
        ST(test_compacted_poll_skips_gaps),
        ST(test_topic_created_later_is_assigned_on_later_poll),
        ST(test_poll_reads_large_batches_intact),
        ST(test_one_transaction_at_a_time_per_handle),
        ST(test_open_rejects_a_file_that_is_not_a_log),
        ST(test_log_file_is_in_wal_mode),
        ST(test_group_lock_file_name_is_sanitized),
        cmocka_unit_test(test_header_blob_refuses_a_name_with_a_nul_inside),
    };
#undef ST
    failed += cmocka_run_group_tests_name("log sqlite", tests, NULL, NULL);
    return failed ? 1 : 0;
}
