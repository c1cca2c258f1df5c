/*
 * Bad stored records on the embedded log: a state whose headers cannot be
 * read, an event that cannot be shown as JSON, records whose stored
 * header blob is corrupt. Each is named where it is, and costs no more
 * than itself.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "engine_test.h"
#include "log/log.h"

/* Opens account id with a deposit after it (versions 1 and 2), closes the
 * engine and returns the path of its log (the caller frees it), for a
 * test to damage what is stored. */
static char *deposit_then_close(fixture *f, const char *id, int initial,
                                int amount)
{
    open_account(f, id, initial);
    json_t *r = send_cmd(f,
                         "{\"type\":\"bank.Deposit\",\"aggregate_id\":"
                         "\"%s\",\"data\":{\"amount\":%d}}",
                         id, amount);
    json_decref(r);
    char *path = strdup(f->cfg->log_path);
    assert_non_null(path);
    close_engine(f);
    return path;
}

/* A stored state whose version header is not a number: before, restoring
 * its partition read the record after freeing it (a use-after-free) and
 * failed, so no command of the partition was decided again, and `stele
 * state` said version 0. Now the partition is rebuilt from its events and
 * the state is named as unreadable until then. */
void test_state_with_unreadable_version_is_rebuilt(void **state)
{
    fixture *f = *state;
    char *path = deposit_then_close(f, "sv-1", 10, 5);
    stele_err err = {0};
    stele_log *log = NULL;
    assert_int_equal(stele_log_open_sqlite(path, &log, &err), 0);
    free(path);
    stele_log_header h[] = {{"version", "abc", 3}, {"state_version", "1", 1}};
    stele_log_record rec = {.key = "sv-1",
                            .key_len = 4,
                            .value = "\x02",
                            .value_len = 1,
                            .headers = h,
                            .n_headers = 2};
    int32_t p = stele_partition_for_key("sv-1", 4, 3);
    assert_int_equal(
        stele_log_produce(log, "bank.Account.state", p, &rec, NULL, &err), 0);
    stele_log_close(log);
    open_with(f, bank_plugins);
    json_t *st = NULL;
    assert_int_equal(stele_engine_state(f->e, "Account", "sv-1", &st, &err),
                     STELE_EINVAL);
    assert_non_null(strstr(err.msg, "no readable version header ('abc')"));
    json_t *r =
        send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"sv-1\","
                    "\"data\":{\"amount\":7},\"expected_version\":2}");
    expect_status(r, "accepted", NULL);
    assert_int_equal(jint(r, "version"), 3);
    json_decref(r);
    assert_int_equal(stele_engine_state(f->e, "Account", "sv-1", &st, &err), 0);
    assert_int_equal(jint(st, "version"), 3);
    json_decref(st);
}

/* An event whose aggregate id header is not UTF-8: before, stele events
 * left it out without a word (exit 0), so the listing looked complete. */
void test_events_that_cannot_be_shown_are_named(void **state)
{
    fixture *f = *state;
    open_account(f, "ev-1", 3);
    stele_err err = {0};
    stele_log *log = NULL;
    assert_int_equal(stele_log_open_sqlite(f->cfg->log_path, &log, &err), 0);
    int32_t p = stele_partition_for_key("ev-1", 4, 3);
    stele_log_batch *b = NULL;
    assert_int_equal(
        stele_log_read(log, "bank.Account.events", p, 0, 10, &b, &err), 0);
    assert_int_equal(b->n, 1);
    stele_log_record r = b->records[0];
    stele_log_header h[16];
    assert_true(r.n_headers <= 16);
    for (size_t i = 0; i < r.n_headers; i++) {
        h[i] = r.headers[i];
        if (!strcmp(h[i].name, "aggregate_id"))
            h[i] = (stele_log_header){"aggregate_id", "ev-\xff", 4};
    }
    r.headers = h;
    assert_int_equal(
        stele_log_produce(log, "bank.Account.events", p, &r, NULL, &err), 0);
    stele_log_batch_free(b);
    stele_log_close(log);
    size_t n = 0;
    assert_int_equal(
        stele_engine_events(f->e, "Account", NULL, 0, listed_event, &n, &err),
        STELE_EINVAL);
    assert_non_null(strstr(err.msg, "bank.Account.events"));
    assert_non_null(strstr(err.msg, "not UTF-8"));
}

/* Overwrites the stored headers of topic[partition]@offset (the records
 * table, or the compacted one) with a blob that does not decode, on a
 * record stored before checksums (crc NULL): with one, the checksum would
 * find the change first. */
static void corrupt_headers(fixture *f, const char *topic, int32_t partition,
                            int64_t offset)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->cfg->log_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char sql[512];
    for (int t = 0; t < 2; t++) {
        snprintf(sql, sizeof sql,
                 "UPDATE %s SET headers = x'ffffffff00', crc = NULL WHERE "
                 "topic_id = (SELECT id FROM topics WHERE name = '%s') AND "
                 "part = %d AND off = %lld",
                 t ? "compacted" : "records", topic, (int)partition,
                 (long long)offset);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    sqlite3_close(db);
}

/* Before, the first read of the partition failed ("headers are corrupt",
 * fatal): stele run exited, every later send failed, a projector that met
 * the event stopped the host, and a corrupt state stopped the commands of
 * every account of its partition. */
void test_records_with_corrupt_headers_cost_only_themselves(void **state)
{
    fixture *f = *state;
    const char *id = "hd-1";
    int32_t p = stele_partition_for_key(id, strlen(id), 3);
    open_account(f, id, 5);
    size_t did;
    stele_err err = {0};
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);

    /* a command: dead-lettered, the partition goes on */
    int64_t at = log_end(f->cfg->log_path, "bank.Account.commands", p);
    submit_only(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"hd-1\","
                   "\"data\":{\"amount\":1}}");
    corrupt_headers(f, "bank.Account.commands", p, at);
    json_t *r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":"
                            "\"hd-1\",\"data\":{\"amount\":2}}");
    expect_status(r, "accepted", NULL);
    assert_int_equal(jint(r, "version"), 2);
    json_decref(r);
    stele_engine_stats st;
    stele_engine_stats_get(f->e, &st);
    assert_int_equal(st.dead_letters, 1);

    /* its state: rebuilt from the events when the partition is restored */
    corrupt_headers(f, "bank.Account.state", p,
                    log_end(f->cfg->log_path, "bank.Account.state", p) - 1);
    close_engine(f);
    open_with(f, bank_plugins);
    r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"hd-1\","
                    "\"data\":{\"amount\":3},\"expected_version\":2}");
    expect_status(r, "accepted", NULL);
    json_decref(r);
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);

    /* an event: named by every reader, the commands go on */
    corrupt_headers(f, "bank.Account.events", p, 0);
    size_t n = 0;
    assert_int_equal(
        stele_engine_events(f->e, "Account", id, 0, listed_event, &n, &err),
        STELE_EINVAL);
    assert_non_null(strstr(err.msg, "unreadable: its headers are corrupt"));
    open_account(f, "hd-2", 1);
    /* one a projector has not read yet: its aggregate is parked by each
     * projector (engine_quarantine_tests.c), the projectors go on, and
     * it is not taken for an event they do not subscribe to (it has no
     * type header) */
    const char *id3 = "hd-3";
    open_account(f, id3, 1);
    int32_t p3 = stele_partition_for_key(id3, strlen(id3), 3);
    corrupt_headers(f, "bank.Account.events", p3,
                    log_end(f->cfg->log_path, "bank.Account.events", p3) - 1);
    err = (stele_err){0};
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    stele_engine_stats_get(f->e, &st);
    assert_int_equal(st.events_parked, 2);
    r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"hd-2\","
                    "\"data\":{\"amount\":4}}");
    expect_status(r, "accepted", NULL);
    json_decref(r);
}

/* A stored state whose value does not decode (its headers are fine):
 * before, the first command of its aggregate stopped command processing
 * for every aggregate ("stored state: ..."). Now the restore finds it and
 * rebuilds the partition from its events. */
void test_state_that_does_not_decode_is_rebuilt(void **state)
{
    fixture *f = *state;
    char *path = deposit_then_close(f, "sd-1", 5, 2);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    free(path);
    /* the wire format's magic byte, then a union branch that is not, in
     * a record stored before checksums (one would find the change) */
    assert_int_equal(
        sqlite3_exec(
            db,
            "UPDATE compacted SET value = x'00000000010e', crc = NULL"
            " WHERE key = CAST('sd-1' AS BLOB) AND topic_id = "
            "(SELECT id FROM topics WHERE name = 'bank.Account.state')",
            NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_close(db);
    open_with(f, bank_plugins);
    json_t *r =
        send_cmd(f, "{\"type\":\"bank.Withdraw\",\"aggregate_id\":\"sd-1\","
                    "\"data\":{\"amount\":7},\"expected_version\":2}");
    expect_status(r, "accepted", NULL);
    assert_int_equal(jint(r, "version"), 3);
    json_decref(r);
    stele_engine_stats st;
    stele_engine_stats_get(f->e, &st);
    assert_true(st.events_replayed >= 2);
}

/* Flips the lowest bit of the last byte of the stored value of
 * topic[partition]@offset (the records table, or the compacted one),
 * leaving its checksum as it was. */
static void flip_value(fixture *f, const char *topic, int32_t partition,
                       int64_t offset)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->cfg->log_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    int changed = 0;
    for (int t = 0; t < 2; t++) {
        char sql[512];
        const char *table = t ? "compacted" : "records";
        const char *where = "WHERE topic_id = (SELECT id FROM topics WHERE "
                            "name = ?1) AND part = ?2 AND off = ?3";
        snprintf(sql, sizeof sql, "SELECT value FROM %s %s", table, where);
        sqlite3_stmt *s = NULL;
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
        sqlite3_bind_text(s, 1, topic, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, partition);
        sqlite3_bind_int64(s, 3, offset);
        if (sqlite3_step(s) != SQLITE_ROW) {
            sqlite3_finalize(s);
            continue;
        }
        unsigned char v[4096];
        int n = sqlite3_column_bytes(s, 0);
        assert_true(n > 0 && n <= (int)sizeof v);
        memcpy(v, sqlite3_column_blob(s, 0), (size_t)n);
        sqlite3_finalize(s);
        v[n - 1] ^= 1;
        snprintf(sql, sizeof sql, "UPDATE %s SET value = ?4 %s", table, where);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
        sqlite3_bind_text(s, 1, topic, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, partition);
        sqlite3_bind_int64(s, 3, offset);
        sqlite3_bind_blob(s, 4, v, n, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(s), SQLITE_DONE);
        sqlite3_finalize(s);
        changed += sqlite3_changes(db);
    }
    assert_int_equal(changed, 1);
    sqlite3_close(db);
}

/* The reason of the last record on the dead-letter topic. */
static void expect_dead_letter_reason(fixture *f, const char *want)
{
    stele_log *log = NULL;
    stele_err err = {0};
    assert_int_equal(stele_log_open_sqlite(f->cfg->log_path, &log, &err), 0);
    stele_log_batch *b = NULL;
    assert_int_equal(
        stele_log_read(log, "bank.deadletter", 0, 0, 1000, &b, &err), 0);
    assert_true(b->n > 0);
    const stele_log_record *r = &b->records[b->n - 1];
    const stele_log_header *reason = NULL;
    for (size_t i = 0; i < r->n_headers; i++)
        if (!strcmp(r->headers[i].name, "dlq.reason"))
            reason = &r->headers[i];
    assert_non_null(reason);
    char text[256];
    snprintf(text, sizeof text, "%.*s", (int)reason->len,
             (const char *)reason->value);
    if (!strstr(text, want))
        fail_msg("dead-letter reason '%s' does not say '%s'", text, want);
    stele_log_batch_free(b);
    stele_log_close(log);
}

/* Before, a stored record whose value had changed was read as if it had
 * been written so: the command was decided with another amount, the
 * state restored with another balance, the event listed as another. Now
 * the checksum finds each, and each costs no more than itself. */
void test_records_whose_checksum_fails_cost_only_themselves(void **state)
{
    fixture *f = *state;
    const char *id = "ck-1";
    int32_t p = stele_partition_for_key(id, strlen(id), 3);
    open_account(f, id, 5);
    size_t did;
    stele_err err = {0};
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);

    /* a command: dead-lettered, the next one decided */
    int64_t at = log_end(f->cfg->log_path, "bank.Account.commands", p);
    submit_only(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"ck-1\","
                   "\"data\":{\"amount\":1}}");
    flip_value(f, "bank.Account.commands", p, at);
    json_t *r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":"
                            "\"ck-1\",\"data\":{\"amount\":2}}");
    expect_status(r, "accepted", NULL);
    assert_int_equal(jint(r, "version"), 2);
    json_decref(r);
    stele_engine_stats st;
    stele_engine_stats_get(f->e, &st);
    assert_int_equal(st.dead_letters, 1);
    expect_dead_letter_reason(f, "checksum mismatch");

    /* its state (balance 7): rebuilt from the events when the partition
     * is restored, not read as another balance */
    flip_value(f, "bank.Account.state", p,
               log_end(f->cfg->log_path, "bank.Account.state", p) - 1);
    close_engine(f);
    open_with(f, bank_plugins);
    r = send_cmd(f, "{\"type\":\"bank.Withdraw\",\"aggregate_id\":\"ck-1\","
                    "\"data\":{\"amount\":7},\"expected_version\":2}");
    expect_status(r, "accepted", NULL);
    assert_int_equal(jint(r, "version"), 3);
    json_decref(r);
    stele_engine_stats_get(f->e, &st);
    assert_true(st.events_replayed >= 2);

    /* an event: named by its readers, other accounts served */
    flip_value(f, "bank.Account.events", p, 0);
    size_t n = 0;
    assert_int_equal(
        stele_engine_events(f->e, "Account", id, 0, listed_event, &n, &err),
        STELE_EINVAL);
    assert_non_null(strstr(err.msg, "bank.Account.events"));
    assert_non_null(strstr(err.msg, "unreadable: checksum mismatch"));
    open_account(f, "ck-2", 1);
    r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"ck-2\","
                    "\"data\":{\"amount\":4}}");
    expect_status(r, "accepted", NULL);
    json_decref(r);
}
