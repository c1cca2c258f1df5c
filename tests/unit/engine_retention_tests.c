/* engine_retention_tests.c — what stele_engine_expire deletes: processed
 * commands past log.command_retention_ms, and results past the idempotency
 * window (log.result_retention_ms). */
#include "engine_test.h"

#include <stdint.h>
#include <unistd.h>

#include "common/util.h"
#include "log/log.h"

/* Records left in every partition of bank.Account.<suffix>. */
static size_t records_left(fixture *f, const char *suffix)
{
    char topic[64];
    snprintf(topic, sizeof topic, "bank.Account.%s", suffix);
    stele_log *log;
    stele_err err = {0};
    assert_int_equal(stele_log_open_sqlite(f->cfg->log_path, &log, &err), 0);
    size_t n = 0;
    for (int32_t p = 0; p < 3; p++) {
        stele_log_batch *b = NULL;
        assert_int_equal(stele_log_read(log, topic, p, 0, 1000, &b, &err), 0);
        n += b->n;
        stele_log_batch_free(b);
    }
    stele_log_close(log);
    return n;
}

static stele_expired expire(fixture *f, int64_t now)
{
    stele_expired n = {-1, -1};
    stele_err err = {0};
    if (stele_engine_expire(f->e, now, &n, &err) != 0)
        fail_msg("expire: %s", err.msg);
    return n;
}

static uint64_t duplicates(fixture *f)
{
    stele_engine_stats st;
    stele_engine_stats_get(f->e, &st);
    return st.duplicates;
}

/* Commands past the retention are deleted once processed, never before;
 * a retention of 0 keeps them. */
void test_expire_deletes_processed_commands_only(void **state)
{
    fixture *f = *state;
    f->cfg->result_retention_ms = 0; /* results: the test below */
    const char *open_r1 = "{\"type\":\"bank.OpenAccount\",\"aggregate_id\":"
                          "\"r1\",\"command_id\":\"open-r1\",\"data\":"
                          "{\"owner\":\"o\"}}";
    json_t *r = send_cmd(f, "%s", open_r1);
    expect_status(r, "accepted", NULL);
    json_decref(r);
    open_account(f, "r2", 1);
    open_account(f, "r3", 1);
    submit_only(f, "{\"type\":\"bank.OpenAccount\",\"aggregate_id\":\"r4\","
                   "\"data\":{\"owner\":\"o\"}}");
    assert_int_equal(records_left(f, "commands"), 4);
    int64_t now = stele_now_ms();
    /* nothing is old enough yet */
    assert_int_equal(expire(f, now).commands, 0);
    /* kept forever */
    int64_t keep = f->cfg->command_retention_ms;
    f->cfg->command_retention_ms = 0;
    assert_int_equal(expire(f, now + 2 * keep).commands, 0);
    f->cfg->command_retention_ms = keep;
    /* past the retention: the three processed ones go, r4 stays */
    assert_int_equal(expire(f, now + 2 * keep).commands, 3);
    assert_int_equal(records_left(f, "commands"), 1);
    json_t *st = status_of(f->e);
    assert_int_equal(lag_of(st, "commands", "aggregate", "Account"), 1);
    json_decref(st);
    size_t did;
    stele_err err = {0};
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_int_equal(balance_of(f->e, "r4"), 0);
    /* the result outlives its command: a resubmission is answered from
     * it and writes nothing */
    r = send_cmd(f, "%s", open_r1);
    expect_status(r, "accepted", NULL);
    assert_int_equal(jint(r, "version"), 1);
    json_decref(r);
    assert_int_equal(count_events(f, "r1"), 1);
}

/* Results are the idempotency index. Within log.result_retention_ms a
 * resubmitted command id is answered from its result, also after the
 * engine's sets of answered ids have moved a generation on; past it the
 * result is deleted and the id is a new command. 0 keeps results. */
void test_results_are_kept_for_the_idempotency_window(void **state)
{
    fixture *f = *state;
    const int64_t window = 3600000;
    f->cfg->result_retention_ms = window;
    open_account(f, "w1", 0);
    /* t0: after the opening's result was stamped, before the deposit's;
     * the engine was opened before, so its sets last moved before t0 */
    int64_t opened = stele_now_ms(), t0;
    while ((t0 = stele_now_ms()) == opened)
        usleep(200);
    const char *dep = "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"w1\","
                      "\"command_id\":\"dep-w1\",\"data\":{\"amount\":5}}";
    json_t *first = send_cmd(f, "%s", dep);
    expect_status(first, "accepted", NULL);
    assert_int_equal(jint(first, "version"), 2);
    assert_int_equal(records_left(f, "results"), 2);

    assert_int_equal(expire(f, t0).results, 0);
    f->cfg->result_retention_ms = 0;
    assert_int_equal(expire(f, t0 + 10 * window).results, 0);
    assert_int_equal(records_left(f, "results"), 2);
    f->cfg->result_retention_ms = window;

    /* a window after t0: the sets move on; the opening's result (stamped
     * before t0) goes, the deposit's stays */
    assert_int_equal(expire(f, t0 + window).results, 1);
    assert_int_equal(records_left(f, "results"), 1);
    uint64_t dups = duplicates(f);
    json_t *again = send_cmd(f, "%s", dep);
    assert_true(json_equal(first, again));
    json_decref(again);
    /* the resubmitted record itself is found answered when processed */
    size_t did;
    stele_err err = {0};
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_int_equal(duplicates(f), dups + 1);
    assert_int_equal(count_events(f, "w1"), 2);
    assert_int_equal(balance_of(f->e, "w1"), 5);

    /* past the window: deleted, and the same id is a new command */
    assert_int_equal(expire(f, t0 + 3 * window).results, 1);
    assert_int_equal(records_left(f, "results"), 0);
    json_t *late = send_cmd(f, "%s", dep);
    expect_status(late, "accepted", NULL);
    assert_int_equal(jint(late, "version"), 3);
    json_decref(late);
    json_decref(first);
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_int_equal(balance_of(f->e, "w1"), 10);
}
