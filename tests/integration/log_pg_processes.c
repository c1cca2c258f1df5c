/*
 * log_pg_processes.c — consumer groups on the PostgreSQL log shared by
 * processes: two members (one forked) split a topic's partitions with none
 * owned by both, a killed member's partitions are taken over, and an
 * owner that lost a partition cannot commit offsets for it.
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
#include "log_pg_test.h"

/* ------------------------------------------------------------------ */
/* A member in another process                                          */

/*
 * Forks a process that joins group on topic, waits until it owns want
 * partitions, writes them to the report pipe as one byte each, then keeps
 * polling until the stop pipe closes. It never touches the parent's
 * connections (it inherited their sockets) and leaves with _exit.
 */
static pid_t spawn_member(const char *group, const char *topic, size_t want,
                          int *report_fd, int *stop_fd)
{
    int rep[2], stop[2];
    assert_int_equal(pipe(rep), 0);
    assert_int_equal(pipe(stop), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(rep[0]);
        close(stop[1]);
        stele_log *l;
        stele_log_consumer *c;
        stele_err err;
        if (stele_log_open_postgres(lpt_conninfo, &l, &err) ||
            stele_log_consumer_new(l, group, &topic, 1, NULL, &c, &err)) {
            fprintf(stderr, "member: %s\n", err.msg);
            _exit(2);
        }
        bool reported = false;
        for (int i = 0; i < 3000; i++) {
            stele_log_batch *b = NULL;
            if (stele_log_consumer_poll(c, 20, 10, &b, &err) == 0)
                stele_log_batch_free(b);
            const stele_topic_partition *tps;
            size_t n = stele_log_consumer_assignment(c, &tps);
            if (!reported && n == want) {
                unsigned char parts[64];
                for (size_t k = 0; k < n; k++)
                    parts[k] = (unsigned char)tps[k].partition;
                if (write(rep[1], parts, n) != (ssize_t)n)
                    _exit(3);
                reported = true;
            }
            struct pollfd pfd = {.fd = stop[0], .events = POLLIN};
            if (poll(&pfd, 1, 0) > 0)
                break;
        }
        stele_log_consumer_close(c);
        stele_log_close(l);
        _exit(reported ? 0 : 4);
    }
    close(rep[1]);
    close(stop[0]);
    *report_fd = rep[0];
    *stop_fd = stop[1];
    return pid;
}

/* Reads n bytes from fd within 15 s. */
static void read_report(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    int64_t deadline = lpt_mono_ms() + 15000;
    while (got < n && lpt_mono_ms() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t k = read(fd, buf + got, n - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    assert_int_equal(got, n);
}

/* Group g's partition locks held, and by how many sessions. */
static void lock_holders(const char *group, long long *locks, long long *pids)
{
    char sql[1024];
    const char *q = "SELECT %s FROM pg_locks k JOIN stele_log.groups g"
                    " ON k.classid = g.id::oid WHERE k.locktype = 'advisory'"
                    " AND k.objsubid = 2 AND k.granted AND g.name = '%s'"
                    " AND k.database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())";
    snprintf(sql, sizeof sql, q, "count(*)", group);
    *locks = pgt_scalar(lpt_conninfo, sql);
    snprintf(sql, sizeof sql, q, "count(DISTINCT k.pid)", group);
    *pids = pgt_scalar(lpt_conninfo, sql);
}

typedef struct split {
    stele_log *log;
    stele_log_consumer *cons;
    rebalance_log rl;
    pid_t child;
    int report_fd, stop_fd;
    unsigned char child_parts[2];
    char topic[64], group[64];
} split;

/* This process and a child in one group over a 4-partition topic: each
 * ends up with 2. */
static void split_setup(split *s)
{
    memset(s, 0, sizeof *s);
    s->log = lpt_open_log();
    lpt_uniq(s->topic, sizeof s->topic, "split");
    lpt_uniq(s->group, sizeof s->group, "g");
    lc_ensure(s->log, s->topic, 4, false);
    const char *t = s->topic;
    stele_log_rebalance_cb cb = {lpt_on_assigned, lpt_on_revoked, &s->rl};
    OK(stele_log_consumer_new(s->log, s->group, &t, 1, &cb, &s->cons, E));
    lpt_poll_until_owns(s->cons, 4); /* alone in the group */
    s->child = spawn_member(s->group, s->topic, 2, &s->report_fd, &s->stop_fd);
    lpt_poll_until_owns(s->cons, 2); /* gave two back to the newcomer */
    read_report(s->report_fd, s->child_parts, 2);
    assert_false(s->rl.lost_n);
}

static void split_end(split *s)
{
    close(s->stop_fd);
    close(s->report_fd);
    int status;
    waitpid(s->child, &status, 0);
    stele_log_consumer_close(s->cons);
    stele_log_close(s->log);
}

void test_two_processes_split_partitions_disjointly(void **state)
{
    (void)state;
    split s;
    split_setup(&s);
    const stele_topic_partition *tps;
    assert_int_equal(stele_log_consumer_assignment(s.cons, &tps), 2);
    bool seen[4] = {false};
    for (size_t i = 0; i < 2; i++) {
        assert_true(tps[i].partition >= 0 && tps[i].partition < 4);
        seen[tps[i].partition] = true;
    }
    for (size_t i = 0; i < 2; i++) {
        assert_true(s.child_parts[i] < 4);
        assert_false(seen[s.child_parts[i]]); /* never both */
        seen[s.child_parts[i]] = true;
    }
    for (int p = 0; p < 4; p++)
        assert_true(seen[p]);
    /* The server agrees: four locks, two sessions. */
    long long locks, pids;
    lock_holders(s.group, &locks, &pids);
    assert_int_equal(locks, 4);
    assert_int_equal(pids, 2);
    split_end(&s);
}

void test_killed_member_partitions_are_taken_over(void **state)
{
    (void)state;
    split s;
    split_setup(&s);
    size_t assigned_before = s.rl.assigned_n;
    assert_int_equal(kill(s.child, SIGKILL), 0);
    int status;
    waitpid(s.child, &status, 0);
    assert_true(WIFSIGNALED(status));
    lpt_poll_until_owns(s.cons, 4);
    assert_int_equal(s.rl.assigned_n, assigned_before + 2);
    assert_int_equal(s.rl.lost_n, 0);
    long long locks, pids;
    lock_holders(s.group, &locks, &pids);
    assert_int_equal(locks, 4);
    assert_int_equal(pids, 1);
    close(s.stop_fd);
    close(s.report_fd);
    s.child = -1;
    stele_log_consumer_close(s.cons);
    stele_log_close(s.log);
}

void test_owner_that_lost_a_partition_cannot_commit_offsets(void **state)
{
    (void)state;
    char in[64], out[64], g[64];
    lpt_uniq(in, sizeof in, "in");
    lpt_uniq(out, sizeof out, "out");
    lpt_uniq(g, sizeof g, "g");
    stele_log *l1 = lpt_open_log(), *l2 = lpt_open_log();
    lc_ensure(l1, in, 1, false);
    lc_ensure(l1, out, 1, false);
    const char *t = in;
    rebalance_log rl = {0};
    stele_log_rebalance_cb cb = {lpt_on_assigned, lpt_on_revoked, &rl};
    stele_log_consumer *a, *b;
    OK(stele_log_consumer_new(l1, g, &t, 1, &cb, &a, E));
    lpt_poll_until_owns(a, 1);

    /* Cut a's lock connection behind its back (as a network failure
     * would); b, in another handle, takes the partition over. */
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(k.pid)) FROM pg_locks k"
             " JOIN stele_log.groups g ON k.classid = g.id::oid"
             " WHERE k.locktype = 'advisory' AND k.objsubid = 2"
             " AND g.name = '%s'",
             g);
    assert_int_equal(pgt_scalar(lpt_conninfo, sql), 1);
    OK(stele_log_consumer_new(l2, g, &t, 1, NULL, &b, E));
    lpt_poll_until_owns(b, 1);

    /* a does not know yet: send_offset is accepted, the commit is not. */
    stele_log_txn *txn;
    OK(stele_log_txn_begin(l1, &txn, E));
    stele_log_record r = {
        .key = "k", .key_len = 1, .value = "v", .value_len = 1};
    OK(stele_log_txn_produce(txn, out, 0, &r, NULL, E));
    OK(stele_log_txn_send_offset(txn, a, in, 0, 5, E));
    stele_err err = {0};
    assert_int_equal(stele_log_txn_commit(txn, &err), STELE_ECONFLICT);
    assert_non_null(strstr(err.msg, g));
    assert_non_null(strstr(err.msg, "no longer owns"));
    int64_t end = -1, next = -1;
    OK(stele_log_end_offset(l1, out, 0, &end, E));
    assert_int_equal(end, 0); /* nothing written */
    OK(stele_log_committed(l1, g, in, 0, &next, E));
    assert_int_equal(next, 0);

    /* The new owner commits. */
    OK(stele_log_txn_begin(l2, &txn, E));
    OK(stele_log_txn_send_offset(txn, b, in, 0, 3, E));
    OK(stele_log_txn_commit(txn, E));
    OK(stele_log_committed(l1, g, in, 0, &next, E));
    assert_int_equal(next, 3);

    /* a's next poll learns it lost the partition; it gets none back. */
    stele_log_batch *batch = NULL;
    OK(stele_log_consumer_poll(a, 100, 10, &batch, E));
    stele_log_batch_free(batch);
    assert_int_equal(rl.lost_n, 1);
    assert_int_equal(lpt_owned(a), 0);
    OK(stele_log_txn_begin(l1, &txn, E));
    assert_int_equal(stele_log_txn_send_offset(txn, a, in, 0, 9, &err),
                     STELE_ECONFLICT);
    stele_log_txn_abort(txn);
    OK(stele_log_committed(l1, g, in, 0, &next, E));
    assert_int_equal(next, 3);
    stele_log_consumer_close(a);
    stele_log_consumer_close(b);
    stele_log_close(l1);
    stele_log_close(l2);
}
