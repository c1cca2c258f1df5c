/*
 * Commands on another partition than their aggregate's, as a producer
 * that does not hash keys with murmur2 puts them (librdkafka's default
 * partitioner; here written to a partition by hand): forwarded to the
 * aggregate's partition and decided there once, or, with
 * engine.misrouted: reject, answered with MISROUTED where they are.
 * Before, they were decided where they were: the aggregate's events on
 * two partitions, and the result where no client looks for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "engine_test.h"
#include "log/log.h"

typedef struct where {
    const char *id;
    int partitions[8];
    size_t n;
} where;

static void note_partition(void *opaque, json_t *ev)
{
    where *w = opaque;
    if (!strcmp(jstr(ev, "aggregate_id"), w->id) && w->n < 8)
        w->partitions[w->n++] = (int)jint(ev, "partition");
    json_decref(ev);
}

/* The partitions of id's events, from every partition of the topic. */
static where events_of(fixture *f, const char *id)
{
    where w = {.id = id};
    stele_err err = {0};
    assert_int_equal(
        stele_engine_events(f->e, "Account", NULL, 0, note_partition, &w, &err),
        0);
    return w;
}

/* Encodes cmd as the engine would and writes it, n times, to the
 * partition after its aggregate's; s gets what waiting for it takes. */
static int32_t produce_misrouted(fixture *f, const char *cmd, int n,
                                 stele_submitted *s)
{
    json_t *c = json_loads(cmd, 0, NULL);
    assert_non_null(c);
    stele_encoded_command ec;
    stele_err err = {0};
    assert_int_equal(stele_engine_encode_command(f->e, c, &ec, &err), 0);
    json_decref(c);
    *s = ec.submitted;
    int32_t wrong = (s->partition + 1) % 3;
    stele_log *log = NULL;
    assert_int_equal(stele_log_open_sqlite(f->cfg->log_path, &log, &err), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(
            stele_log_produce(log, ec.topic, wrong, &ec.record, NULL, &err), 0);
    stele_log_close(log);
    return wrong;
}

void test_misrouted_commands_are_forwarded_to_their_partition(void **state)
{
    fixture *f = *state;
    open_account(f, "route-1", 0);
    stele_submitted s;
    /* sent twice (a producer retrying): decided once */
    produce_misrouted(f,
                      "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"route-1\","
                      "\"command_id\":\"fwd-1\",\"expected_version\":1,"
                      "\"data\":{\"amount\":30}}",
                      2, &s);
    json_t *r = NULL;
    stele_err err = {0};
    assert_int_equal(stele_engine_wait_result(f->e, &s, 10000, &r, &err), 0);
    expect_status(r, "accepted", NULL);
    assert_int_equal(jint(r, "version"), 2);
    json_decref(r);
    size_t did;
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    where w = events_of(f, "route-1");
    assert_int_equal(w.n, 2);
    for (size_t i = 0; i < w.n; i++)
        assert_int_equal(w.partitions[i], s.partition);
    assert_int_equal(balance_of(f->e, "route-1"), 30);
    stele_engine_stats st;
    stele_engine_stats_get(f->e, &st);
    assert_int_equal(st.forwarded, 2);
    assert_int_equal(st.duplicates, 1);
}

void test_misrouted_commands_are_rejected_when_configured(void **state)
{
    fixture *f = *state;
    close_engine(f);
    FILE *out;
    char *text = NULL;
    size_t len = 0;
    FILE *in = fopen(f->config, "r");
    assert_non_null(in);
    assert_true(getdelim(&text, &len, '\0', in) > 0);
    fclose(in);
    const char *at = strstr(text, "  max_value_bytes: 4096\n");
    assert_non_null(at);
    out = fopen(f->config, "w");
    fwrite(text, 1, (size_t)(at - text), out);
    fputs("  misrouted: reject\n", out);
    fputs(at, out);
    fclose(out);
    free(text);
    stele_err err = {0};
    assert_int_equal(stele_config_load(f->config, &f->cfg, &err), 0);
    assert_int_equal(stele_engine_open(f->cfg, &f->e, &err), 0);

    open_account(f, "route-2", 0);
    stele_submitted s;
    int32_t wrong = produce_misrouted(
        f,
        "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"route-2\","
        "\"command_id\":\"rej-1\",\"data\":{\"amount\":30}}",
        2, &s);
    s.partition = wrong; /* answered where it is */
    json_t *r = NULL;
    assert_int_equal(stele_engine_wait_result(f->e, &s, 10000, &r, &err), 0);
    expect_status(r, "rejected", "MISROUTED");
    assert_non_null(strstr(jstr(r, "message"), "aggregate route-2 is on "
                                               "partition"));
    json_decref(r);
    size_t did;
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_int_equal(events_of(f, "route-2").n, 1);
    assert_int_equal(balance_of(f->e, "route-2"), 0);
    /* the same id on its own partition is decided there */
    r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"route-2\","
                    "\"command_id\":\"rej-1\",\"data\":{\"amount\":30}}");
    expect_status(r, "accepted", NULL);
    json_decref(r);
}
