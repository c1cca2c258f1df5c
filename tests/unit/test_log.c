/*
 * test_log.c — the log conformance suite against the embedded SQLite log,
 * then what only the SQLite backend promises: group ownership by file lock
 * (across handles and processes), nothing partial after SIGKILL, fair
 * polling, and its file format.
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

#include "log_conformance.h"

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int fx_setup(void **out)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/stele-log-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/log.db", f->dir);
    *out = f;
    return 0;
}

static int fx_open(void *opaque, stele_log **out, stele_err *err)
{
    fixture *f = opaque;
    return stele_log_open_sqlite(f->path, out, err);
}

static void fx_teardown(void *opaque)
{
    fixture *f = opaque;
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
}

/* ------------------------------------------------------------------ */
/* SQLite-specific tests: each gets a fixture and an open handle.       */

typedef struct ctx {
    fixture *f;
    stele_log *log;
} ctx;

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    void *f;
    stele_err err = {0};
    if (!c || fx_setup(&f))
        return -1;
    c->f = f;
    if (stele_log_open_sqlite(c->f->path, &c->log, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    stele_log_close(c->log);
    fx_teardown(c->f);
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

static void produce(stele_log *log, const char *topic, int32_t part,
                    const char *key, const char *value)
{
    stele_log_record r = {.key = key,
                          .key_len = strlen(key),
                          .value = value,
                          .value_len = value ? strlen(value) : 0};
    OK(stele_log_produce(log, topic, part, &r, NULL, E));
}

static stele_log_consumer *consumer(stele_log *log, const char *group,
                                    const char *topic)
{
    stele_log_consumer *cons = NULL;
    OK(stele_log_consumer_new(log, group, &topic, 1, NULL, &cons, E));
    return cons;
}

/* One poll that returns at once; the batch's size. */
static size_t poll_now(stele_log_consumer *cons, size_t max,
                       size_t per_partition[], size_t n_partitions)
{
    stele_log_batch *b = NULL;
    OK(stele_log_consumer_poll(cons, 0, max, &b, E));
    size_t n = b->n;
    for (size_t i = 0; i < b->n && per_partition; i++) {
        assert_true((size_t)b->records[i].partition < n_partitions);
        per_partition[b->records[i].partition]++;
    }
    stele_log_batch_free(b);
    return n;
}

static size_t assigned(stele_log_consumer *cons)
{
    const stele_topic_partition *tps;
    return stele_log_consumer_assignment(cons, &tps);
}

static void test_group_is_exclusive_across_handles(void **state)
{
    ctx *c = *state;
    ensure(c->log, "ev", 2, false);
    produce(c->log, "ev", 0, "k", "v");
    stele_log_consumer *first = consumer(c->log, "g", "ev");
    assert_int_equal(poll_now(first, 10, NULL, 0), 1);
    assert_int_equal(assigned(first), 2);

    stele_log *other = NULL;
    OK(stele_log_open_sqlite(c->f->path, &other, E));
    stele_log_consumer *second = consumer(other, "g", "ev");
    assert_int_equal(poll_now(second, 10, NULL, 0), 0);
    assert_int_equal(assigned(second), 0);
    /* Another group is independent. */
    stele_log_consumer *third = consumer(other, "g2", "ev");
    assert_int_equal(poll_now(third, 10, NULL, 0), 1);
    stele_log_consumer_close(third);

    stele_log_consumer_close(first);
    /* Nothing was committed: the new owner starts from the beginning. */
    assert_int_equal(poll_now(second, 10, NULL, 0), 1);
    assert_int_equal(assigned(second), 2);
    stele_log_consumer_close(second);
    stele_log_close(other);
}

static void test_send_offset_without_ownership_conflicts(void **state)
{
    ctx *c = *state;
    ensure(c->log, "in", 1, false);
    stele_log_consumer *owner = consumer(c->log, "g", "in");
    poll_now(owner, 1, NULL, 0);
    stele_log_consumer *waiting = consumer(c->log, "g", "in");
    poll_now(waiting, 1, NULL, 0);
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

/* Forks a child that runs fn(path, fd) and _exits with its result; fd is
 * the write end of a pipe the child signals on. */
static pid_t spawn(const char *path, int (*fn)(const char *, int), int *read_fd)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        _exit(fn(path, fds[1]));
    }
    close(fds[1]);
    *read_fd = fds[0];
    return pid;
}

static int wait_exit(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

static void wait_signal(int fd)
{
    char ch;
    ssize_t n;
    while ((n = read(fd, &ch, 1)) < 0 && errno == EINTR)
        ;
    assert_int_equal(n, 1);
    close(fd);
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
    ensure(c->log, "ev", 2, false);
    produce(c->log, "ev", 1, "k", "v");
    stele_log_consumer *mine = consumer(c->log, "g", "ev");
    assert_int_equal(poll_now(mine, 10, NULL, 0), 1);

    int fd;
    pid_t pid = spawn(c->f->path, child_expects_no_assignment, &fd);
    close(fd);
    int status = wait_exit(pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    stele_log_consumer_close(mine);

    pid = spawn(c->f->path, child_owns_group_then_waits, &fd);
    wait_signal(fd);
    stele_log_consumer *waiting = consumer(c->log, "g", "ev");
    assert_int_equal(poll_now(waiting, 10, NULL, 0), 0);
    assert_int_equal(assigned(waiting), 0);
    kill(pid, SIGKILL);
    status = wait_exit(pid);
    assert_true(WIFSIGNALED(status));
    /* The kernel released the dead owner's lock. */
    assert_int_equal(poll_now(waiting, 10, NULL, 0), 1);
    assert_int_equal(assigned(waiting), 2);
    stele_log_consumer_close(waiting);
}

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
    ensure(c->log, "ev", 3, false);
    ensure(c->log, "state", 1, true);
    ensure(c->log, "in", 1, false);
}

/* After the kill this process takes the group over and writes on. */
static void continue_after_kill(ctx *c)
{
    stele_log_consumer *cons = consumer(c->log, "g", "in");
    poll_now(cons, 1, NULL, 0);
    assert_int_equal(assigned(cons), 1);
    int64_t k = 0;
    OK(stele_log_committed(c->log, "g", "in", 0, &k, E));
    assert_int_equal(write_txn(c->log, cons, (int)k, 16, KILL_PER_PART), 0);
    stele_log_consumer_close(cons);
    check_whole_transactions(c->log, (int)k + 1);
}

static void test_sigkill_mid_transaction_leaves_nothing(void **state)
{
    ctx *c = *state;
    kill_world_setup(c);
    int fd;
    pid_t pid = spawn(c->f->path, child_commits_three_then_hangs_mid_txn, &fd);
    wait_signal(fd);
    kill(pid, SIGKILL);
    assert_true(WIFSIGNALED(wait_exit(pid)));

    stele_log_close(c->log);
    OK(stele_log_open_sqlite(c->f->path, &c->log, E));
    check_whole_transactions(c->log, 3);
    int64_t k = 0;
    OK(stele_log_committed(c->log, "g", "in", 0, &k, E));
    assert_int_equal(k, 3);
    continue_after_kill(c);
}

static void
test_sigkill_during_commit_loop_keeps_transactions_whole(void **state)
{
    ctx *c = *state;
    kill_world_setup(c);
    int fd;
    pid_t pid = spawn(c->f->path, child_commits_until_killed, &fd);
    wait_signal(fd);
    /* Let it commit a varying number more; any kill point must do. */
    usleep(20000 + (unsigned)(getpid() % 7) * 3000);
    kill(pid, SIGKILL);
    assert_true(WIFSIGNALED(wait_exit(pid)));

    stele_log_close(c->log);
    OK(stele_log_open_sqlite(c->f->path, &c->log, E));
    check_whole_transactions(c->log, 1);
    continue_after_kill(c);
}

/* ------------------------------------------------------------------ */
/* Polling                                                              */

static void test_poll_shares_max_evenly_across_partitions(void **state)
{
    ctx *c = *state;
    ensure(c->log, "ev", 3, false);
    for (int i = 0; i < 30; i++)
        produce(c->log, "ev", i % 3, "k", "v");
    stele_log_consumer *cons = consumer(c->log, "g", "ev");
    size_t per[3] = {0};
    assert_int_equal(poll_now(cons, 6, per, 3), 6);
    for (int p = 0; p < 3; p++)
        assert_int_equal(per[p], 2);
    memset(per, 0, sizeof per);
    assert_int_equal(poll_now(cons, 100, per, 3), 24);
    for (int p = 0; p < 3; p++)
        assert_int_equal(per[p], 8);
    stele_log_consumer_close(cons);
}

static void test_poll_gives_unused_share_to_busy_partitions(void **state)
{
    ctx *c = *state;
    ensure(c->log, "ev", 3, false);
    for (int i = 0; i < 10; i++)
        produce(c->log, "ev", 0, "k", "v");
    produce(c->log, "ev", 2, "k", "v");
    produce(c->log, "ev", 2, "k", "v");
    stele_log_consumer *cons = consumer(c->log, "g", "ev");
    size_t per[3] = {0};
    assert_int_equal(poll_now(cons, 6, per, 3), 6);
    assert_int_equal(per[0], 4);
    assert_int_equal(per[1], 0);
    assert_int_equal(per[2], 2);
    stele_log_consumer_close(cons);
}

static void test_compacted_poll_skips_gaps(void **state)
{
    ctx *c = *state;
    ensure(c->log, "state", 1, true);
    produce(c->log, "state", 0, "a", "a1");
    produce(c->log, "state", 0, "b", "b1");
    produce(c->log, "state", 0, "a", "a2");
    produce(c->log, "state", 0, "a", "a3");
    stele_log_consumer *cons = consumer(c->log, "g", "state");
    stele_log_batch *b = NULL;
    OK(stele_log_consumer_poll(cons, 0, 1, &b, E));
    assert_int_equal(b->n, 1);
    assert_int_equal(b->records[0].offset, 1);
    stele_log_batch_free(b);
    OK(stele_log_consumer_poll(cons, 0, 10, &b, E));
    assert_int_equal(b->n, 1);
    assert_int_equal(b->records[0].offset, 3);
    stele_log_batch_free(b);
    produce(c->log, "state", 0, "c", "c1");
    OK(stele_log_consumer_poll(cons, 0, 10, &b, E));
    assert_int_equal(b->n, 1);
    assert_int_equal(b->records[0].offset, 4);
    stele_log_batch_free(b);
    stele_log_consumer_close(cons);
}

static void test_topic_created_later_is_assigned_on_later_poll(void **state)
{
    ctx *c = *state;
    ensure(c->log, "a", 1, false);
    const char *topics[] = {"a", "later"};
    stele_log_consumer *cons = NULL;
    OK(stele_log_consumer_new(c->log, "g", topics, 2, NULL, &cons, E));
    poll_now(cons, 1, NULL, 0);
    assert_int_equal(assigned(cons), 1);
    ensure(c->log, "later", 2, false);
    produce(c->log, "later", 1, "k", "v");
    assert_int_equal(poll_now(cons, 10, NULL, 0), 1);
    assert_int_equal(assigned(cons), 3);
    stele_log_consumer_close(cons);
}

static void test_poll_reads_large_batches_intact(void **state)
{
    ctx *c = *state;
    ensure(c->log, "ev", 1, false);
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
    stele_log_consumer *cons = consumer(c->log, "g", "ev");
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
    ensure(c->log, "ev", 1, false);
    stele_log_consumer *cons = consumer(c->log, "../team a/b", "ev");
    poll_now(cons, 1, NULL, 0);
    assert_int_equal(assigned(cons), 1);
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

int main(void)
{
    static const log_conformance_backend sqlite_backend = {
        .name = "sqlite",
        .setup = fx_setup,
        .open = fx_open,
        .teardown = fx_teardown,
        .dense_offsets = true,
        .deletes_records = true,
        .poll_timeout_ms = 100,
    };
    int failed = log_conformance_run(&sqlite_backend);

#define ST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
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
    };
#undef ST
    failed += cmocka_run_group_tests_name("log sqlite", tests, NULL, NULL);
    return failed ? 1 : 0;
}
