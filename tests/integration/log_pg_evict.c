/*
 * log_pg_evict.c — a consumer-group member on the PostgreSQL log that
 * stops polling (a hung process: its session alive, its locks held) is
 * taken out of the group once it has not polled for max_poll_interval_ms:
 * another member ends its session, takes its partitions, and its offset
 * commits are refused; when it polls again it learns it lost them and
 * joins again. Within the limit nothing of the kind happens.
 */
#include "log_pg_evict.h"

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

static const char *evict_conninfo;
static unsigned evict_serial;

static stele_log *open_with_limit(int64_t max_poll_ms)
{
    stele_log_pg_options o = {.max_poll_interval_ms = max_poll_ms};
    stele_log *l = NULL;
    OK(stele_log_open_postgres_with(evict_conninfo, &o, &l, E));
    return l;
}

static size_t owns(stele_log_consumer *c)
{
    const stele_topic_partition *tps;
    return stele_log_consumer_assignment(c, &tps);
}

static int poll_once(stele_log_consumer *c, stele_err *err)
{
    stele_log_batch *b = NULL;
    int rc = stele_log_consumer_poll(c, 50, 10, &b, err);
    stele_log_batch_free(b);
    return rc;
}

typedef struct lost_count {
    size_t lost;
} lost_count;

static void on_revoked(void *opaque, stele_log_consumer *c,
                       const stele_topic_partition *tps, size_t n, bool lost)
{
    (void)c, (void)tps;
    if (lost)
        ((lost_count *)opaque)->lost += n;
}

typedef struct world {
    char topic[64], group[80];
    stele_log *la, *lb;
    stele_log_consumer *a, *b;
    lost_count a_lost;
} world;

/* a owns both partitions of a new topic; then b joins. */
static void world_start(world *w, int64_t max_poll_ms)
{
    snprintf(w->topic, sizeof w->topic, "evict-%d-%u", (int)getpid(),
             ++evict_serial);
    snprintf(w->group, sizeof w->group, "%s-g", w->topic);
    w->la = open_with_limit(max_poll_ms);
    w->lb = open_with_limit(max_poll_ms);
    stele_topic_spec spec = {.name = w->topic, .partitions = 2};
    OK(stele_log_topic_ensure(w->la, &spec, E));
    const char *topics[] = {w->topic};
    stele_log_rebalance_cb cb = {NULL, on_revoked, &w->a_lost};
    OK(stele_log_consumer_new(w->la, w->group, topics, 1, &cb, &w->a, E));
    for (int i = 0; i < 200 && owns(w->a) != 2; i++)
        OK(poll_once(w->a, E));
    assert_int_equal(owns(w->a), 2);
    OK(stele_log_consumer_new(w->lb, w->group, topics, 1, NULL, &w->b, E));
}

static void world_end(world *w)
{
    stele_log_consumer_close(w->a);
    stele_log_consumer_close(w->b);
    stele_log_close(w->la);
    stele_log_close(w->lb);
}

/* b polls for ms milliseconds (a does not); how many partitions b owns. */
static size_t b_polls_for(world *w, int64_t ms)
{
    int64_t until = stele_mono_ns() + ms * 1000000;
    while (stele_mono_ns() < until && owns(w->b) < 2)
        OK(poll_once(w->b, E));
    return owns(w->b);
}

static void test_a_member_that_stops_polling_is_taken_out(void **state)
{
    (void)state;
    world w = {0};
    world_start(&w, 1500);
    /* a hangs (does not poll); b takes everything once a's session has
     * been idle past the limit */
    assert_int_equal(b_polls_for(&w, 20000), 2);

    /* a's commit of an offset of a partition it believed it owned is
     * refused: its session, and with it its lock, is gone */
    stele_log_txn *txn = NULL;
    stele_err err = {0};
    int rc = stele_log_txn_begin(w.la, &txn, &err);
    if (!rc)
        rc = stele_log_txn_send_offset(txn, w.a, w.topic, 0, 1, &err);
    if (!rc)
        rc = stele_log_txn_commit(txn, &err);
    else if (txn)
        stele_log_txn_abort(txn);
    if (rc == 0)
        fail_msg("the evicted member committed an offset");

    /* a polls again: it learns it lost its partitions and joins again,
     * and the two share the partitions */
    for (int i = 0; i < 400 && (owns(w.a) != 1 || owns(w.b) != 1); i++) {
        poll_once(w.a, &err); /* fails once: the session is gone */
        OK(poll_once(w.b, E));
    }
    assert_int_equal(w.a_lost.lost, 2);
    assert_int_equal(owns(w.a), 1);
    assert_int_equal(owns(w.b), 1);
    world_end(&w);
}

static void test_a_member_within_the_limit_keeps_its_partitions(void **state)
{
    (void)state;
    world w = {0};
    world_start(&w, 60000);
    /* a does not poll for 3 s, well within its limit: b takes nothing
     * (a gives partitions back only when it polls) */
    assert_int_equal(b_polls_for(&w, 3000), 0);
    assert_int_equal(w.a_lost.lost, 0);
    for (int i = 0; i < 400 && owns(w.b) != 1; i++) {
        OK(poll_once(w.a, E));
        OK(poll_once(w.b, E));
    }
    assert_int_equal(owns(w.a), 1);
    assert_int_equal(owns(w.b), 1);
    assert_int_equal(w.a_lost.lost, 0);
    world_end(&w);
}

int log_pg_evict_run(const char *conninfo)
{
    evict_conninfo = conninfo;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_member_that_stops_polling_is_taken_out),
        cmocka_unit_test(test_a_member_within_the_limit_keeps_its_partitions),
    };
    return cmocka_run_group_tests_name("log on PostgreSQL: max poll interval",
                                       tests, NULL, NULL);
}
