/*
 * Bad stored records on the embedded log: a state whose headers cannot be
 * read, an event that cannot be shown as JSON. Each is named where it
 * is, and costs no more than itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "engine_test.h"
#include "log/log.h"

/* A stored state whose version header is not a number: before, restoring
 * its partition read the record after freeing it (a use-after-free) and
 * failed, so no command of the partition was decided again, and `stele
 * state` said version 0. Now the partition is rebuilt from its events and
 * the state is named as unreadable until then. */
void test_state_with_unreadable_version_is_rebuilt(void **state)
{
    fixture *f = *state;
    open_account(f, "sv-1", 10);
    json_t *r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":"
                            "\"sv-1\",\"data\":{\"amount\":5}}");
    json_decref(r);
    close_engine(f);
    stele_config *cfg = NULL;
    stele_err err = {0};
    assert_int_equal(stele_config_load(f->config, &cfg, &err), 0);
    stele_log *log = NULL;
    assert_int_equal(stele_log_open_sqlite(cfg->log_path, &log, &err), 0);
    stele_log_header h[] = {{"version", "abc", 3}, {"state_version", "1", 1}};
    stele_log_record rec = {.key = "sv-1", .key_len = 4, .value = "\x02",
                            .value_len = 1, .headers = h, .n_headers = 2};
    int32_t p = stele_partition_for_key("sv-1", 4, 3);
    assert_int_equal(
        stele_log_produce(log, "bank.Account.state", p, &rec, NULL, &err), 0);
    stele_log_close(log);
    stele_config_free(cfg);
    open_with(f, bank_plugins);
    json_t *st = NULL;
    assert_int_equal(stele_engine_state(f->e, "Account", "sv-1", &st, &err),
                     STELE_EINVAL);
    assert_non_null(strstr(err.msg, "no readable version header ('abc')"));
    r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"sv-1\","
                    "\"data\":{\"amount\":7},\"expected_version\":2}");
    expect_status(r, "accepted", NULL);
    assert_int_equal(jint(r, "version"), 3);
    json_decref(r);
    assert_int_equal(stele_engine_state(f->e, "Account", "sv-1", &st, &err), 0);
    assert_int_equal(jint(st, "version"), 3);
    json_decref(st);
}

static void count_listed(void *opaque, json_t *ev)
{
    (*(size_t *)opaque)++;
    json_decref(ev);
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
        stele_engine_events(f->e, "Account", NULL, 0, count_listed, &n, &err),
        STELE_EINVAL);
    assert_non_null(strstr(err.msg, "bank.Account.events"));
    assert_non_null(strstr(err.msg, "not UTF-8"));
}
