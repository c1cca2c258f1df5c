/*
 * Quarantine on the embedded log: a stored event that cannot be read
 * costs its own aggregate (marked broken, its commands rejected) or its
 * own aggregate's place in a projector (parked), never the partition, the
 * other aggregates or the other projectors. stele replay repairs what the
 * fix of the cause made readable and lists what it did not.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "engine_test.h"
#include "log/log.h"

/* The stored header blob of topic[partition]@offset, as hex (the caller
 * frees it), and writing one back. */
static char *headers_hex(const char *log, const char *topic, int32_t partition,
                         int64_t offset)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(log, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT hex(headers) FROM records WHERE topic_id "
                           "= (SELECT id FROM topics WHERE name = ?) AND "
                           "part = ? AND off = ?",
                           -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, partition);
    sqlite3_bind_int64(st, 3, offset);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    char *hex = strdup((const char *)sqlite3_column_text(st, 0));
    assert_non_null(hex);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return hex;
}

static void set_headers_hex(const char *log, const char *topic,
                            int32_t partition, int64_t offset, const char *hex)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(log, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char sql[1024];
    for (int t = 0; t < 2; t++) {
        snprintf(sql, sizeof sql,
                 "UPDATE %s SET headers = x'%s' WHERE topic_id = (SELECT id "
                 "FROM topics WHERE name = '%s') AND part = %d AND off = "
                 "%lld",
                 t ? "compacted" : "records", hex, topic, (int)partition,
                 (long long)offset);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    sqlite3_close(db);
}

/* An id other than `other` in the same of the bank's 3 partitions. */
static void same_partition(const char *other, char *out, size_t size)
{
    int32_t p = stele_partition_for_key(other, strlen(other), 3);
    for (int i = 0;; i++) {
        snprintf(out, size, "peer-%d", i);
        if (stele_partition_for_key(out, strlen(out), 3) == p)
            return;
    }
}

static json_t *deposit(fixture *f, const char *id, int amount)
{
    return send_cmd(f,
                    "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"%s\","
                    "\"data\":{\"amount\":%d}}",
                    id, amount);
}

/* Before, rebuilding a partition stopped at the first event it could not
 * read: the partition was never restored, and no command of any of its
 * aggregates was decided again. Now that aggregate alone is broken,
 * durably (a restart does not take it for a new one), named in status and
 * by replay, and repaired by a replay once its event reads again. */
void test_aggregate_with_unreadable_event_is_broken_alone(void **state)
{
    fixture *f = *state;
    const char *bad = "broken-1";
    char peer[32];
    same_partition(bad, peer, sizeof peer);
    int32_t p = stele_partition_for_key(bad, strlen(bad), 3);
    char *log = strdup(f->cfg->log_path);
    assert_non_null(log);
    int64_t first = log_end(log, "bank.Account.events", p);
    open_account(f, bad, 5);
    json_decref(deposit(f, bad, 1));
    open_account(f, peer, 3);
    size_t did;
    stele_err err = {0};
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    close_engine(f);

    /* its second event unreadable, and the partition's states to be
     * rebuilt (a state of another state version would do the same) */
    char *good = headers_hex(log, "bank.Account.events", p, first + 1);
    set_headers_hex(log, "bank.Account.events", p, first + 1, "ffffffff00");
    set_headers_hex(log, "bank.Account.state", p,
                    log_end(log, "bank.Account.state", p) - 1, "ffffffff00");
    open_with(f, bank_plugins);
    for (int round = 0; round < 2; round++) {
        json_t *r = deposit(f, bad, 2);
        expect_status(r, "rejected", "AGGREGATE_BROKEN");
        assert_int_equal(jint(r, "version"), 1);
        assert_non_null(strstr(json_string_value(json_object_get(r, "message")),
                               "the stored event is unreadable"));
        json_decref(r);
        r = send_cmd(f,
                     "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"%s\","
                     "\"data\":{\"amount\":1},\"expected_version\":%d}",
                     peer, 1 + round);
        expect_status(r, "accepted", NULL);
        json_decref(r);
        /* a restart reads the mark with the states */
        close_engine(f);
        open_with(f, bank_plugins);
    }
    json_t *st = NULL;
    assert_int_equal(stele_engine_state(f->e, "Account", bad, &st, &err),
                     STELE_EINVAL);
    assert_non_null(strstr(err.msg, "is broken"));
    assert_int_equal(stele_engine_status(f->e, &st, &err), 0);
    json_t *listed = json_object_get(
        json_array_get(json_object_get(st, "commands"), 0), "broken");
    assert_int_equal(json_array_size(listed), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(listed, 0), "id")),
        bad);
    json_decref(st);

    /* the cause fixed: replay rebuilds it and lists nothing */
    close_engine(f);
    set_headers_hex(log, "bank.Account.events", p, first + 1, good);
    free(good);
    free(log);
    open_with(f, bank_plugins);
    size_t events, states;
    assert_int_equal(
        stele_engine_replay(f->e, "Account", &events, &states, &err), 0);
    assert_int_equal(stele_engine_broken(f->e, NULL, &listed, &err), 0);
    assert_int_equal(json_array_size(listed), 0);
    json_decref(listed);
    json_t *r = deposit(f, bad, 2);
    expect_status(r, "accepted", NULL);
    assert_int_equal(jint(r, "version"), 3);
    json_decref(r);
}

static json_t *parked_of(fixture *f)
{
    json_t *st = NULL;
    stele_err err = {0};
    assert_int_equal(stele_engine_status(f->e, &st, &err), 0);
    json_t *parked = json_incref(json_object_get(
        json_array_get(json_object_get(st, "projectors"), 0), "parked"));
    assert_non_null(parked);
    json_decref(st);
    return parked;
}

/* Before, an event the projector could not read failed its every batch:
 * the projector stood still at it for every aggregate, for good. Now its
 * aggregate alone is parked (durably, in the store, listed in status),
 * its later events wait, the other aggregates are projected, and once the
 * event reads again stele replay projects what waited. */
void test_projector_parks_an_unreadable_event_alone(void **state)
{
    fixture *f = *state;
    const char *bad = "parked-1";
    char peer[32];
    same_partition(bad, peer, sizeof peer);
    int32_t p = stele_partition_for_key(bad, strlen(bad), 3);
    char *log = strdup(f->cfg->log_path);
    assert_non_null(log);
    int64_t first = log_end(log, "bank.Account.events", p);
    open_account(f, bad, 5);
    json_decref(deposit(f, bad, 1));
    open_account(f, peer, 3);
    json_decref(deposit(f, peer, 2));
    char *good = headers_hex(log, "bank.Account.events", p, first + 1);
    set_headers_hex(log, "bank.Account.events", p, first + 1, "ffffffff00");

    size_t did;
    stele_err err = {0};
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_int_equal(balance_of(f->e, peer), 5);
    /* the event before the bad one is in; the bad one and after wait */
    assert_int_equal(balance_of(f->e, bad), 5);
    json_t *parked = parked_of(f);
    assert_int_equal(json_array_size(parked), 1);
    json_t *it = json_array_get(parked, 0);
    assert_string_equal(json_string_value(json_object_get(it, "id")), bad);
    assert_int_equal(jint(it, "offset"), first + 1);
    assert_non_null(strstr(json_string_value(json_object_get(it, "reason")),
                           "the stored event is unreadable"));
    json_decref(parked);
    stele_engine_stats st;
    stele_engine_stats_get(f->e, &st);
    assert_int_equal(st.events_parked, 2); /* by each of its 2 projectors */

    /* its later events wait too, across a restart */
    json_decref(deposit(f, bad, 10));
    json_decref(deposit(f, peer, 10));
    close_engine(f);
    open_with(f, bank_plugins);
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_int_equal(balance_of(f->e, bad), 5);
    assert_int_equal(balance_of(f->e, peer), 15);

    /* a repair while the event is still bad: listed, nothing projected */
    size_t repaired, left;
    assert_int_equal(
        stele_engine_repair_projections(f->e, &repaired, &left, &err), 0);
    assert_int_equal(repaired, 0);
    assert_int_equal(left, 2); /* one per projector */
    assert_int_equal(balance_of(f->e, bad), 5);

    /* the cause fixed: what waited is projected, once */
    set_headers_hex(log, "bank.Account.events", p, first + 1, good);
    assert_int_equal(
        stele_engine_repair_projections(f->e, &repaired, &left, &err), 0);
    assert_int_equal(repaired, 2);
    assert_int_equal(left, 0);
    assert_int_equal(balance_of(f->e, bad), 16);
    parked = parked_of(f);
    assert_int_equal(json_array_size(parked), 0);
    json_decref(parked);
    json_decref(deposit(f, bad, 1));
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_int_equal(balance_of(f->e, bad), 17);
    free(good);
    free(log);
}

/* An event written into the log without stele's headers (a raw
 * producer's): before, it was listed and projected with an empty event id
 * and aggregate id and version 0. Now every reader names it, and a
 * projector parks its aggregate. */
void test_event_without_headers_is_named_not_defaulted(void **state)
{
    fixture *f = *state;
    open_account(f, "nh-0", 1);
    size_t did;
    stele_err err = {0};
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    /* a valid event value: the stored one of nh-0, without headers */
    stele_log *l = NULL;
    assert_int_equal(stele_log_open_sqlite(f->cfg->log_path, &l, &err), 0);
    int32_t p = stele_partition_for_key("nh-0", 4, 3);
    stele_log_batch *b = NULL;
    assert_int_equal(
        stele_log_read(l, "bank.Account.events", p, 0, 10, &b, &err), 0);
    assert_true(b->n >= 1);
    stele_log_record r = b->records[b->n - 1];
    r.key = "nh-1";
    r.key_len = 4;
    r.headers = NULL;
    r.n_headers = 0;
    int32_t p1 = stele_partition_for_key("nh-1", 4, 3);
    assert_int_equal(
        stele_log_produce(l, "bank.Account.events", p1, &r, NULL, &err), 0);
    stele_log_batch_free(b);
    stele_log_close(l);

    size_t n = 0;
    assert_int_equal(
        stele_engine_events(f->e, "Account", "nh-1", 0, listed_event, &n, &err),
        STELE_EINVAL);
    assert_non_null(strstr(err.msg, "no event_id header"));
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    stele_engine_stats st;
    stele_engine_stats_get(f->e, &st);
    assert_int_equal(st.events_parked, 2);
    assert_int_equal(balance_of(f->e, "nh-1"), -1);
    assert_int_equal(balance_of(f->e, "nh-0"), 1);
}

/* A stored result whose bytes changed (its checksum fails): before, its
 * bytes were parsed as the answer to a resubmitted command. Now the
 * command is not decided again and the client is told the answer cannot
 * be read. */
void test_damaged_result_is_named_not_parsed(void **state)
{
    fixture *f = *state;
    json_t *r = send_cmd(f, "{\"type\":\"bank.OpenAccount\",\"aggregate_id\":"
                            "\"rs-1\",\"command_id\":\"rs-cmd-1\",\"data\":"
                            "{\"owner\":\"x\",\"initial_deposit\":1}}");
    expect_status(r, "accepted", NULL);
    json_decref(r);
    char *log = strdup(f->cfg->log_path);
    assert_non_null(log);
    close_engine(f);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(log, &db), SQLITE_OK);
    for (int t = 0; t < 2; t++) {
        char sql[400];
        snprintf(sql, sizeof sql,
                 "UPDATE %s SET value = CAST(replace(CAST(value AS TEXT), "
                 "'accepted', 'rejected') AS BLOB) WHERE key = "
                 "CAST('rs-cmd-1' AS BLOB)",
                 t ? "compacted" : "records");
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    sqlite3_close(db);
    free(log);
    open_with(f, bank_plugins);
    stele_submitted s;
    stele_err err = {0};
    json_t *cmd =
        json_loads("{\"type\":\"bank.OpenAccount\",\"aggregate_id\":\"rs-1\","
                   "\"command_id\":\"rs-cmd-1\",\"data\":{\"owner\":\"x\","
                   "\"initial_deposit\":1}}",
                   0, NULL);
    assert_non_null(cmd);
    assert_int_equal(stele_engine_submit_json(f->e, cmd, &s, &err), 0);
    json_decref(cmd);
    json_t *res = NULL;
    assert_int_equal(stele_engine_wait_result(f->e, &s, 5000, &res, &err),
                     STELE_EINVAL);
    assert_non_null(strstr(err.msg, "the stored result of rs-cmd-1 is "
                                    "damaged"));
    stele_engine_stats st;
    stele_engine_stats_get(f->e, &st);
    assert_int_equal(st.accepted + st.rejected, 0); /* not decided again */
}
