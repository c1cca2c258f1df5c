/*
 * test_log_pg.c — the log conformance suite against the PostgreSQL log,
 * then what only it promises: consumer groups shared by processes
 * (partitions split between members, a killed member's taken over), an
 * owner that lost a partition cannot commit offsets for it, consumers
 * woken by NOTIFY, big transactions all or nothing, a server restart.
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
#include "log_pg_evict.h"

static char *db_conninfo;

static int fx_setup(void **fixture)
{
    *fixture = db_conninfo;
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

/* ------------------------------------------------------------------ */
/* Helpers                                                              */


static unsigned serial;

/* A name unique to this run and call. */
static const char *uniq(char *buf, size_t n, const char *base)
{
    snprintf(buf, n, "pg-%d-%u-%s", (int)getpid(), ++serial, base);
    return buf;
}

static stele_log *open_log(void)
{
    stele_log *l = NULL;
    OK(stele_log_open_postgres(db_conninfo, &l, E));
    return l;
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
                          .value_len = strlen(value)};
    OK(stele_log_produce(log, topic, part, &r, NULL, E));
}

static size_t owned(stele_log_consumer *c)
{
    const stele_topic_partition *tps;
    return stele_log_consumer_assignment(c, &tps);
}

/* Polls (records are not expected) until c owns n partitions; bounded. */
static void poll_until_owns(stele_log_consumer *c, size_t n)
{
    for (int i = 0; i < 300 && owned(c) != n; i++) {
        stele_log_batch *b = NULL;
        OK(stele_log_consumer_poll(c, 50, 10, &b, E));
        stele_log_batch_free(b);
    }
    assert_int_equal(owned(c), n);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct rebalance_log {
    size_t assigned_n, revoked_n, lost_n;
} rebalance_log;

static void on_assigned(void *opaque, stele_log_consumer *c,
                        const stele_topic_partition *tps, size_t n)
{
    (void)c, (void)tps;
    ((rebalance_log *)opaque)->assigned_n += n;
}

static void on_revoked(void *opaque, stele_log_consumer *c,
                       const stele_topic_partition *tps, size_t n, bool lost)
{
    rebalance_log *r = opaque;
    (void)c, (void)tps;
    r->revoked_n += n;
    if (lost)
        r->lost_n += n;
}

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
        if (stele_log_open_postgres(db_conninfo, &l, &err) ||
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
    int64_t deadline = mono_ms() + 15000;
    while (got < n && mono_ms() < deadline) {
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
    *locks = pgt_scalar(db_conninfo, sql);
    snprintf(sql, sizeof sql, q, "count(DISTINCT k.pid)", group);
    *pids = pgt_scalar(db_conninfo, sql);
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
    s->log = open_log();
    uniq(s->topic, sizeof s->topic, "split");
    uniq(s->group, sizeof s->group, "g");
    ensure(s->log, s->topic, 4, false);
    const char *t = s->topic;
    stele_log_rebalance_cb cb = {on_assigned, on_revoked, &s->rl};
    OK(stele_log_consumer_new(s->log, s->group, &t, 1, &cb, &s->cons, E));
    poll_until_owns(s->cons, 4); /* alone in the group */
    s->child = spawn_member(s->group, s->topic, 2, &s->report_fd, &s->stop_fd);
    poll_until_owns(s->cons, 2); /* gave two back to the newcomer */
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

/* ------------------------------------------------------------------ */
/* Tests                                                                */

static void test_two_processes_split_partitions_disjointly(void **state)
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

static void test_killed_member_partitions_are_taken_over(void **state)
{
    (void)state;
    split s;
    split_setup(&s);
    size_t assigned_before = s.rl.assigned_n;
    assert_int_equal(kill(s.child, SIGKILL), 0);
    int status;
    waitpid(s.child, &status, 0);
    assert_true(WIFSIGNALED(status));
    poll_until_owns(s.cons, 4);
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

static void test_owner_that_lost_a_partition_cannot_commit_offsets(void **state)
{
    (void)state;
    char in[64], out[64], g[64];
    uniq(in, sizeof in, "in");
    uniq(out, sizeof out, "out");
    uniq(g, sizeof g, "g");
    stele_log *l1 = open_log(), *l2 = open_log();
    ensure(l1, in, 1, false);
    ensure(l1, out, 1, false);
    const char *t = in;
    rebalance_log rl = {0};
    stele_log_rebalance_cb cb = {on_assigned, on_revoked, &rl};
    stele_log_consumer *a, *b;
    OK(stele_log_consumer_new(l1, g, &t, 1, &cb, &a, E));
    poll_until_owns(a, 1);

    /* Cut a's lock connection behind its back (as a network failure
     * would); b, in another handle, takes the partition over. */
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(k.pid)) FROM pg_locks k"
             " JOIN stele_log.groups g ON k.classid = g.id::oid"
             " WHERE k.locktype = 'advisory' AND k.objsubid = 2"
             " AND g.name = '%s'",
             g);
    assert_int_equal(pgt_scalar(db_conninfo, sql), 1);
    OK(stele_log_consumer_new(l2, g, &t, 1, NULL, &b, E));
    poll_until_owns(b, 1);

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
    assert_int_equal(owned(a), 0);
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

static void test_poll_is_woken_by_a_commit_in_another_process(void **state)
{
    (void)state;
    char topic[64], g[64];
    uniq(topic, sizeof topic, "wake");
    uniq(g, sizeof g, "g");
    stele_log *l = open_log();
    ensure(l, topic, 1, false);
    const char *t = topic;
    stele_log_consumer *c;
    OK(stele_log_consumer_new(l, g, &t, 1, NULL, &c, E));
    poll_until_owns(c, 1);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct timespec ts = {0, 300 * 1000000L};
        nanosleep(&ts, NULL);
        stele_log *w;
        stele_err err;
        stele_log_record r = {
            .key = "k", .key_len = 1, .value = "woken", .value_len = 5};
        if (stele_log_open_postgres(db_conninfo, &w, &err) ||
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
    uniq(topic, sizeof topic, "zero");
    uniq(g, sizeof g, "g");
    stele_log *l = open_log();
    ensure(l, topic, 1, false);
    const char *t = topic;
    stele_log_consumer *c;
    OK(stele_log_consumer_new(l, g, &t, 1, NULL, &c, E));
    poll_until_owns(c, 1);
    stele_log_batch *b = NULL;
    OK(stele_log_consumer_poll(c, 0, 10, &b, E)); /* drains the wake-ups */
    stele_log_batch_free(b);
    stele_log *w = open_log();
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
    uniq(ev, sizeof ev, "events");
    uniq(st, sizeof st, "state");
    stele_log *l = open_log();
    ensure(l, ev, 3, false);
    ensure(l, st, 3, true);
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
    produce(l, ev, 0, "k", "after");
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
    uniq(topic, sizeof topic, "restart");
    uniq(g, sizeof g, "g");
    stele_log *l = open_log();
    ensure(l, topic, 2, false);
    const char *t = topic;
    rebalance_log rl = {0};
    stele_log_rebalance_cb cb = {on_assigned, on_revoked, &rl};
    stele_log_consumer *c;
    OK(stele_log_consumer_new(l, g, &t, 1, &cb, &c, E));
    poll_until_owns(c, 2);
    produce(l, topic, 0, "k", "before");

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
    assert_int_equal(owned(c), 0);

    assert_int_equal(pgt_script("pg-start.sh"), 0);
    produce(l, topic, 0, "k", "after"); /* reconnects */
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
    assert_int_equal(owned(c), 2);
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
    if (!pgt_ensure_server() || !pgt_create_db(name, false, &db_conninfo)) {
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
    };
#undef T
    failures +=
        cmocka_run_group_tests_name("log on PostgreSQL", tests, NULL, NULL);
    failures += log_pg_evict_run(db_conninfo);
    group_teardown(NULL);
    pgt_drop_db(name);
    free(db_conninfo);
    return failures ? 1 : 0;
}
