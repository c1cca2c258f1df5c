/*
 * engine_projector_faults_tests.c — a projector that fails: its batch
 * writes nothing and is projected once when healed, it does not hold up
 * the other projectors, it backs off to a cap, and in the host's run loop
 * it recovers alone while commands go on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "config/config.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "log/log.h"
#include "engine_test.h"

void test_failed_projection_batch_writes_nothing(void **state)
{
    fixture *f = *state;
    close_engine(f);
    char healed[300];
    snprintf(healed, sizeof healed, "%s/healed", f->dir);
    setenv("STELE_TEST_HEALED", healed, 1);
    const char *plugins[] = {PLUGINS "bank_account.so",
                             TEST_PLUGINS "test_flaky.so", NULL};
    open_with(f, plugins);
    open_account(f, "f1", 1);
    json_t *r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":"
                            "\"f1\",\"data\":{\"amount\":666}}");
    json_decref(r);
    size_t did;
    stele_err err = {0};
    /* the batch with the poison event fails and rolls back */
    assert_int_not_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_non_null(strstr(err.msg, "poison"));
    stele_list_request req = {.page = 1, .page_size = 10};
    json_t *out = NULL;
    assert_int_equal(stele_engine_list(f->e, "flaky_counts", &req, &out, &err),
                     0);
    assert_int_equal(jint(out, "total"), 0);
    json_decref(out);
    /* healed: the same events are projected exactly once */
    FILE *h = fopen(healed, "w");
    fclose(h);
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_int_equal(stele_engine_list(f->e, "flaky_counts", &req, &out, &err),
                     0);
    json_t *row = json_array_get(json_object_get(out, "items"), 0);
    assert_int_equal(jint(row, "events"), 2);
    json_decref(out);
    unsetenv("STELE_TEST_HEALED");
}

static const char *flaky_first[] = {PLUGINS "bank_account.so",
                                    TEST_PLUGINS "test_flaky.so",
                                    PLUGINS "bank_balances.so", NULL};

static long long flaky_total(stele_engine *e)
{
    stele_list_request req = {.page = 1, .page_size = 10};
    json_t *out = NULL;
    stele_err err = {0};
    if (stele_engine_list(e, "flaky_counts", &req, &out, &err) != 0)
        return -1;
    long long n = jint(out, "total");
    json_decref(out);
    return n;
}

/* A projector stuck on a poison event holds up neither the projectors
 * after it nor the commands: drain projects the others and returns the
 * failure at the end. */
void test_failing_projector_does_not_hold_up_the_others(void **state)
{
    fixture *f = *state;
    close_engine(f);
    setenv("STELE_TEST_HEALED", "/nonexistent/healed", 1);
    open_with(f, flaky_first);
    open_account(f, "i1", 1);
    json_t *r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":"
                            "\"i1\",\"data\":{\"amount\":666}}");
    expect_status(r, "accepted", NULL);
    json_decref(r);
    size_t did;
    stele_err err = {0};
    assert_int_not_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_non_null(strstr(err.msg, "poison"));
    assert_int_equal(balance_of(f->e, "i1"), 667);
    assert_int_equal(flaky_total(f->e), 0);
    /* commands still go through */
    r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":"
                    "\"i1\",\"data\":{\"amount\":3}}");
    expect_status(r, "accepted", NULL);
    json_decref(r);
    assert_int_not_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_int_equal(balance_of(f->e, "i1"), 670);
    stele_engine_stats st;
    stele_engine_stats_get(f->e, &st);
    assert_true(st.projector_failures >= 2);
    unsetenv("STELE_TEST_HEALED");
}

void test_projector_retry_backs_off_to_a_cap(void **state)
{
    (void)state;
    assert_int_equal(projections_retry_ms(1), 100);
    assert_int_equal(projections_retry_ms(2), 200);
    assert_int_equal(projections_retry_ms(5), 1600);
    assert_int_equal(projections_retry_ms(8), PROJECTOR_RETRY_MAX_MS);
    assert_int_equal(projections_retry_ms(1000), PROJECTOR_RETRY_MAX_MS);
}

typedef struct host_run {
    stele_engine *e;
    volatile sig_atomic_t stop;
    int rc;
} host_run;

static void *run_host(void *arg)
{
    host_run *h = arg;
    stele_err err = {0};
    h->rc = stele_engine_run(h->e, &h->stop, &err);
    return NULL;
}

/* Waits (at most 20 s) until cond(e, arg) holds. */
static bool eventually(bool (*cond)(stele_engine *, const void *),
                       stele_engine *e, const void *arg)
{
    for (int i = 0; i < 1000; i++) {
        if (cond(e, arg))
            return true;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

static bool balance_is(stele_engine *e, const void *want)
{
    return balance_of(e, "h1") == *(const long long *)want;
}

static bool flaky_has_rows(stele_engine *e, const void *want)
{
    return flaky_total(e) == *(const long long *)want;
}

/* In the host's run loop a failing projector backs off alone: the others
 * keep projecting, commands keep being answered, and once the projector's
 * fault is gone it catches up, exactly once. */
void test_run_isolates_and_recovers_a_failing_projector(void **state)
{
    fixture *f = *state;
    close_engine(f);
    char healed[300];
    snprintf(healed, sizeof healed, "%s/healed", f->dir);
    setenv("STELE_TEST_HEALED", healed, 1);
    open_with(f, flaky_first);
    open_account(f, "h1", 1);
    json_t *r = send_cmd(f, "{\"type\":\"bank.Deposit\",\"aggregate_id\":"
                            "\"h1\",\"data\":{\"amount\":666}}");
    json_decref(r);

    host_run h = {.e = f->e};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_host, &h), 0);
    /* a second handle, as the CLI would have: it reads, the host works */
    stele_engine *reader;
    stele_err err = {0};
    assert_int_equal(stele_engine_open(f->cfg, &reader, &err), 0);
    long long want = 667;
    assert_true(eventually(balance_is, reader, &want));
    r = send_cmd(&(fixture){.e = reader},
                 "{\"type\":\"bank.Deposit\",\"aggregate_id\":\"h1\","
                 "\"data\":{\"amount\":3}}");
    expect_status(r, "accepted", NULL);
    json_decref(r);
    want = 670;
    assert_true(eventually(balance_is, reader, &want));
    long long none = 0;
    assert_true(flaky_has_rows(reader, &none));

    FILE *hf = fopen(healed, "w");
    fclose(hf);
    long long one = 1;
    assert_true(eventually(flaky_has_rows, reader, &one));
    h.stop = 1;
    pthread_join(t, NULL);
    assert_int_equal(h.rc, 0);
    stele_list_request req = {.page = 1, .page_size = 10};
    json_t *out = NULL;
    assert_int_equal(
        stele_engine_list(reader, "flaky_counts", &req, &out, &err), 0);
    json_t *row = json_array_get(json_object_get(out, "items"), 0);
    assert_int_equal(jint(row, "events"), 3); /* opened + 2 deposits, once */
    json_decref(out);
    stele_engine_stats st;
    stele_engine_stats_get(f->e, &st);
    assert_true(st.projector_failures >= 1);
    stele_engine_close(reader);
    unsetenv("STELE_TEST_HEALED");
}

/* status counts the commands waiting and each projector's lag, per
 * partition, and shows a version being built beside the serving one. */
