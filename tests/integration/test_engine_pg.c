/*
 * The engine with PostgreSQL: read models in PostgreSQL under the embedded
 * log, and PostgreSQL as the event store with several `stele run`
 * processes on one database — a host killed with SIGKILL under load, the
 * server restarted under load, and the server not up when a host starts.
 *
 * The server comes from scripts/pg-start.sh (127.0.0.1:5433), started here
 * when it does not answer; every test has a database of its own. With
 * STELE_PG_CONNINFO set the tests run on that server and skip the cases
 * that stop it (common_pg.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libpq-fe.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "common_engine.h"
#include "common_pg.h"
#include "engine_pg_proxy.h"
#include "log/postgres/internal.h"

#define PLUGINS STELE_BUILD_DIR "/plugins/"
#define SCRIPTS STELE_SOURCE_DIR "/scripts/"

typedef struct pg_fixture {
    ce_fixture ce; /* first: the harness sees a ce_fixture */
    char *conninfo;
} pg_fixture;

static int group_setup(void **state)
{
    (void)state;
    return pgt_ensure_server() ? 0 : -1;
}

static int open_checker(ce_fixture *f, stele_log **out, stele_err *err)
{
    return stele_log_open_postgres(((pg_fixture *)f)->conninfo, out, err);
}

/* The config; with proxy_port not 0 the log connects to the test
 * database through 127.0.0.1:proxy_port. */
static void write_config(pg_fixture *f, const char *log, int proxy_port)
{
    char log_conninfo[1200];
    snprintf(log_conninfo, sizeof log_conninfo, "%s", f->conninfo);
    if (proxy_port) /* a later keyword wins in a conninfo */
        snprintf(log_conninfo, sizeof log_conninfo, "%s host=127.0.0.1 port=%d",
                 f->conninfo, proxy_port);
    char text[3072];
    snprintf(text, sizeof text,
             "app: %s\n"
             "data_dir: %s/data\n"
             "schemas: %s/schemas\n"
             "plugins:\n"
             "  - %sbank_account.so\n"
             "  - %sbank_balances.so\n"
             "  - %sbank_daily_totals.so\n"
             "  - %sbank_account_query.so\n"
             "  - %sbank_richest_query.so\n"
             "log:\n"
             "  backend: %s\n"
             "  partitions: 6\n"
             "  conninfo: \"%s\"\n"
             "store:\n"
             "  backend: postgres\n"
             "  conninfo: \"%s\"\n"
             "engine:\n"
             "  command_batch: 500\n"
             "  commit_interval_ms: 20\n"
             "  reply_timeout_ms: 60000\n"
             "logging:\n"
             "  level: warn\n",
             f->ce.app, f->ce.dir, STELE_SOURCE_DIR, PLUGINS, PLUGINS, PLUGINS,
             PLUGINS, PLUGINS, log, log_conninfo, f->conninfo);
    ce_write_config(&f->ce, text);
}

/* log: "postgres" or "sqlite". */
static void setup_with(pg_fixture *f, const char *log)
{
    ce_init(&f->ce, "stele-pg-it");
    f->ce.open_log = open_checker;
    /* the database is named after the app */
    assert_true(pgt_create_db(f->ce.app, false, &f->conninfo));
    write_config(f, log, 0);
    ce_open(&f->ce);
}

static int setup_pg_log(void **state)
{
    pg_fixture *f = calloc(1, sizeof *f);
    setup_with(f, "postgres");
    *state = f;
    return 0;
}

static int setup_sqlite_log(void **state)
{
    pg_fixture *f = calloc(1, sizeof *f);
    setup_with(f, "sqlite");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    pg_fixture *f = *state;
    ce_cleanup(&f->ce);
    assert_int_equal(pgt_restart_if_stopped(), 0);
    /* STELE_IT_KEEP=1 keeps a failed test's database to look into. */
    if (!getenv("STELE_IT_KEEP"))
        pgt_drop_db(f->ce.app);
    else
        fprintf(stderr, "kept database %s\n", f->ce.app);
    free(f->conninfo);
    free(f);
    return 0;
}

static json_t *list(ce_fixture *f, const char *table)
{
    stele_list_request req = {.page = 1, .page_size = 1000};
    json_t *out = NULL;
    stele_err err = {0};
    for (int tries = 0;; tries++) {
        int rc = stele_engine_list(f->e, table, &req, &out, &err);
        if (rc == 0)
            return out;
        if (tries == 50)
            fail_msg("list %s: %s", table, err.msg);
        sleep(1); /* a restarted server: the next call reconnects */
    }
}

/* Waits (bounded) until the balances read model holds every account with
 * every deposit applied exactly once. */
static void expect_read_model(ce_fixture *f)
{
    long long sum = -1, rows = -1;
    for (int i = 0; i < 120; i++) {
        json_t *page = list(f, "balances");
        json_t *items = json_object_get(page, "items"), *row;
        size_t k;
        sum = 0;
        rows = (long long)json_array_size(items);
        json_array_foreach(items, k, row) sum +=
            json_integer_value(json_object_get(row, "balance"));
        json_decref(page);
        if (rows == CE_ACCOUNTS && sum == CE_DEPOSITS)
            return;
        if (sum > CE_DEPOSITS)
            CE_FAIL(f, "balances: sum %lld of %d deposits: applied twice", sum,
                    CE_DEPOSITS);
        sleep(1);
    }
    CE_FAIL(f, "balances: %lld rows, sum %lld; want %d rows, sum %d", rows, sum,
            CE_ACCOUNTS, CE_DEPOSITS);
}

static void test_read_models_live_in_postgres(void **state)
{
    ce_fixture *f = *state;
    stele_submitted s;
    ce_submit(f, "bank.OpenAccount", "a1",
              "{\"owner\":\"Alice\",\"initial_deposit\":100}", NULL, &s);
    json_decref(ce_wait(f, &s));
    ce_submit(f, "bank.OpenAccount", "a2", "{\"owner\":\"Bob\"}", NULL, &s);
    json_decref(ce_wait(f, &s));
    ce_submit(f, "bank.Deposit", "a2", "{\"amount\":40}", NULL, &s);
    json_decref(ce_wait(f, &s));
    size_t did;
    stele_err err = {0};
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);

    stele_filter flt;
    char expr[] = "owner^=Al";
    assert_int_equal(stele_filter_parse(expr, &flt, &err), 0);
    stele_list_request req = {.filters = &flt,
                              .n_filters = 1,
                              .sort = "balance",
                              .descending = true,
                              .page = 1,
                              .page_size = 10};
    json_t *out = NULL;
    if (stele_engine_list(f->e, "balances", &req, &out, &err) != 0)
        fail_msg("list: %s", err.msg);
    assert_int_equal(json_integer_value(json_object_get(out, "total")), 1);
    json_decref(out);
    json_t *params = json_pack("{s:s}", "account_id", "a2");
    assert_int_equal(stele_engine_query(f->e, "account", params, &out, &err),
                     0);
    assert_int_equal(json_integer_value(json_object_get(out, "balance")), 40);
    json_decref(out);
    json_decref(params);
    out = list(f, "daily_totals");
    json_t *day = json_array_get(json_object_get(out, "items"), 0);
    assert_int_equal(json_integer_value(json_object_get(day, "deposited")),
                     140);
    json_decref(out);

    /* other programs read the serving version under the plain names */
    pg_fixture *pf = *state;
    const char *a2 =
        "SELECT balance FROM readmodels.balances WHERE account_id = 'a2'";
    assert_int_equal(pgt_scalar(pf->conninfo, a2), 40);
    assert_int_equal(pgt_scalar(pf->conninfo, "SELECT sum(deposited) FROM "
                                              "readmodels.daily_totals"),
                     140);
    /* a view gone missing (or a read model made before views) comes back
     * when a host starts */
    pgt_scalar(pf->conninfo, "DROP VIEW readmodels.balances");
    assert_int_equal(pgt_scalar(pf->conninfo,
                                "SELECT count(*) FROM pg_views WHERE "
                                "schemaname = 'readmodels'"),
                     1);
    stele_engine_close(f->e);
    f->e = NULL;
    assert_int_equal(stele_engine_open(f->cfg, &f->e, &err), 0);
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_int_equal(pgt_scalar(pf->conninfo, a2), 40);
}

/* a relation of a read model's table name in readmodels that stele did
 * not make is not replaced: the projector fails, saying why */
static void test_a_table_in_the_way_of_a_view_is_an_error(void **state)
{
    pg_fixture *pf = *state;
    ce_fixture *f = &pf->ce;
    stele_engine_close(f->e);
    f->e = NULL;
    pgt_scalar(pf->conninfo, "DROP SCHEMA IF EXISTS readmodels CASCADE");
    pgt_scalar(pf->conninfo, "CREATE SCHEMA readmodels");
    pgt_scalar(pf->conninfo, "CREATE TABLE readmodels.balances(x int)");
    stele_err err = {0};
    assert_int_equal(stele_engine_open(f->cfg, &f->e, &err), 0);
    size_t did;
    assert_int_not_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_non_null(strstr(err.msg, "readmodels.balances exists and is not "
                                    "a view"));
    /* the other read models are published all the same */
    assert_int_equal(pgt_scalar(pf->conninfo,
                                "SELECT count(*) FROM pg_views WHERE "
                                "schemaname = 'readmodels' AND "
                                "viewname = 'daily_totals'"),
                     1);
}

static long long total(ce_fixture *f, const char *table)
{
    json_t *page = list(f, table);
    long long n = json_integer_value(json_object_get(page, "total"));
    json_decref(page);
    return n;
}

/* A projector's new version is built in a schema of its own while the old
 * one keeps answering queries; once caught up it serves, and the old one
 * is dropped. */
static void test_projector_rebuild_beside_the_serving_version(void **state)
{
    pg_fixture *pf = *state;
    ce_fixture *f = &pf->ce;
    stele_submitted s;
    for (int i = 0; i < 30; i++) {
        char id[16];
        snprintf(id, sizeof id, "z%d", i);
        ce_submit(f, "bank.OpenAccount", id, "{\"owner\":\"Z\"}", NULL, &s);
    }
    json_decref(ce_wait(f, &s));
    size_t did;
    stele_err err = {0};
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_int_equal(total(f, "balances"), 30);
    const char *v1 = "SELECT count(*) FROM information_schema.schemata "
                     "WHERE schema_name = 'rm_balances_v1'";
    const char *v2 = "SELECT count(*) FROM information_schema.schemata "
                     "WHERE schema_name = 'rm_balances_v2'";
    assert_int_equal(pgt_scalar(pf->conninfo, v1), 1);
    const char *view_of_v1 =
        "SELECT count(*) FROM pg_views WHERE schemaname = 'readmodels' AND "
        "viewname = 'balances' AND definition LIKE '%rm_balances_v1.%'";
    const char *view_of_v2 =
        "SELECT count(*) FROM pg_views WHERE schemaname = 'readmodels' AND "
        "viewname = 'balances' AND definition LIKE '%rm_balances_v2.%'";
    assert_int_equal(pgt_scalar(pf->conninfo, view_of_v1), 1);

    /* deploy version 2 of the projector */
    stele_engine_close(f->e);
    stele_config_free(f->cfg);
    f->e = NULL;
    f->cfg = NULL;
    FILE *in = fopen(f->config, "r");
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, in);
    fclose(in);
    text[n] = '\0';
    char *at = strstr(text, "bank_balances.so");
    assert_non_null(at);
    char patched[4200];
    snprintf(patched, sizeof patched, "%.*s%s%s", (int)(at - text), text,
             "../test-plugins/bank_balances_v2.so",
             at + strlen("bank_balances.so"));
    ce_write_config(f, patched);
    ce_open(f);
    /* before the new version has caught up, queries read version 1, and
     * status shows version 2 being built with every event still to read */
    assert_int_equal(total(f, "balances"), 30);
    json_t *st = NULL;
    assert_int_equal(stele_engine_status(f->e, &st, &err), 0);
    json_t *bal = json_array_get(json_object_get(st, "projectors"), 0);
    assert_string_equal(json_string_value(json_object_get(bal, "name")),
                        "balances");
    assert_int_equal(json_integer_value(json_object_get(bal, "serving")), 1);
    assert_int_equal(json_integer_value(json_object_get(bal, "lag")), 0);
    json_t *b = json_object_get(bal, "building");
    assert_int_equal(json_integer_value(json_object_get(b, "version")), 2);
    assert_int_equal(json_integer_value(json_object_get(b, "lag")), 30);
    json_decref(st);
    assert_int_equal(pgt_scalar(pf->conninfo, view_of_v1), 1);

    /* a report reading version 1 in a long transaction holds the switch
     * over back for at most the DDL lock timeout (readers behind the DDL
     * would otherwise queue too); it goes through once the report ends */
    PGconn *report = PQconnectdb(pf->conninfo);
    assert_int_equal(PQstatus(report), CONNECTION_OK);
    PQclear(PQexec(report, "BEGIN"));
    PGresult *r = PQexec(report, "SELECT count(*) FROM readmodels.balances");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    int64_t t0 = stele_mono_ns();
    assert_int_equal(stele_engine_drain(f->e, &did, &err), STELE_ERETRY);
    assert_non_null(strstr(err.msg, "lock timeout"));
    assert_true(stele_mono_ns() - t0 < 30LL * 1000000000);
    assert_int_equal(pgt_scalar(pf->conninfo, view_of_v1), 1);
    PQclear(PQexec(report, "COMMIT"));
    PQfinish(report);
    err = (stele_err){0};
    assert_int_equal(stele_engine_drain(f->e, &did, &err), 0);
    assert_int_equal(total(f, "balances"), 30);
    assert_int_equal(stele_engine_status(f->e, &st, &err), 0);
    bal = json_array_get(json_object_get(st, "projectors"), 0);
    assert_int_equal(json_integer_value(json_object_get(bal, "serving")), 2);
    assert_int_equal(json_integer_value(json_object_get(bal, "lag")), 0);
    assert_null(json_object_get(bal, "building"));
    json_decref(st);
    assert_int_equal(pgt_scalar(pf->conninfo, v2), 1);
    assert_int_equal(pgt_scalar(pf->conninfo, v1), 0);
    /* the view follows the serving version */
    assert_int_equal(pgt_scalar(pf->conninfo, view_of_v2), 1);
    assert_int_equal(
        pgt_scalar(pf->conninfo, "SELECT count(*) FROM readmodels.balances"),
        30);
    assert_int_equal(pgt_scalar(pf->conninfo,
                                "SELECT version FROM stele_projectors "
                                "WHERE name = 'balances'"),
                     2);
}

static void test_two_hosts_one_killed_on_the_postgres_event_store(void **state)
{
    ce_fixture *f = *state;
    ce_start_host(f, 0);
    ce_start_host(f, 1);
    ce_load(f, 1, NULL);
    ce_expect_exactly_once(f);
    expect_read_model(f);
}

static void test_postgres_restart_under_load_loses_nothing(void **state)
{
    ce_fixture *f = *state;
    if (!pgt_managed())
        skip(); /* never stop a server the tests do not own */
    ce_start_host(f, 0);
    ce_start_host(f, 1);
    ce_load(f, -1,
            SCRIPTS "pg-stop.sh >&2 && sleep 1 && " SCRIPTS "pg-start.sh >&2");
    ce_expect_exactly_once(f);
    expect_read_model(f);
}

/* The fixture's log goes through a proxy that can lose a COMMIT's
 * answer (engine_pg_proxy.h). */
static pgp_proxy *proxy;

static int setup_pg_log_behind_proxy(void **state)
{
    pg_fixture *f = calloc(1, sizeof *f);
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(pgt_base(), &perr);
    const char *host = "127.0.0.1", *port = "5432";
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!strcmp(o->keyword, "host") && o->val && *o->val)
            host = o->val;
        if (!strcmp(o->keyword, "port") && o->val && *o->val)
            port = o->val;
    }
    proxy = pgp_start(host, atoi(port)); /* NULL: host is not an address */
    PQconninfoFree(opts);
    PQfreemem(perr);
    /* The test's own handle connects directly; the hosts, started from
     * the config written after it, through the proxy. */
    setup_with(f, "postgres");
    if (proxy)
        write_config(f, "postgres", pgp_port(proxy));
    *state = f;
    return 0;
}

static int teardown_proxy(void **state)
{
    int rc = teardown(state);
    pgp_stop(proxy);
    proxy = NULL;
    return rc;
}

/* The answer to the commit of a batch is lost, but the commit happened:
 * the host cannot tell, so it must not go on from the states it had
 * before the batch. Before, it did: the next deposit was decided at the
 * version the committed batch had already written, and the account got
 * version 2 twice. */
static void test_a_commit_whose_answer_is_lost(void **state)
{
    ce_fixture *f = *state;
    if (!proxy)
        skip();
    ce_start_host(f, 0);
    stele_submitted s;
    ce_submit(f, "bank.OpenAccount", "c1", "{\"owner\":\"C\"}", "c-open", &s);
    json_decref(ce_wait(f, &s));
    /* The host's next COMMIT is its batch's: done by the server, its
     * answer cut. The host answers the deposit after all, from the
     * result it wrote. */
    pgp_arm(proxy);
    ce_submit(f, "bank.Deposit", "c1", "{\"amount\":5}", "c-dep1", &s);
    json_t *r = ce_wait(f, &s);
    assert_int_equal(pgp_cuts(proxy), 1);
    assert_string_equal(ce_str(r, "status"), "accepted");
    json_decref(r);
    ce_submit(f, "bank.Deposit", "c1", "{\"amount\":7}", "c-dep2", &s);
    r = ce_wait(f, &s);
    if (strcmp(ce_str(r, "status"), "accepted") != 0 ||
        json_integer_value(json_object_get(r, "version")) != 3)
        CE_FAIL(f, "second deposit: %s %s version %lld; want accepted, 3",
                ce_str(r, "status"), ce_str(r, "message"),
                (long long)json_integer_value(json_object_get(r, "version")));
    json_decref(r);
    ce_expect_events(f, 3, 1);
}

/* The host's log connection is cut each time it reads a committed offset
 * (the first thing restoring a partition does), six times: the command
 * retention at start takes two (its read, and the read again on a new
 * session), then restores fail twice and are tried again. Before, the
 * host stopped processing commands for good when a restore failed, as it
 * could when the server restarted while partitions were being assigned. */
static void test_a_failed_restore_is_tried_again(void **state)
{
    ce_fixture *f = *state;
    if (!proxy)
        skip();
    /* The prepared statement's name in a Bind message: the empty portal
     * name, then "lpg_<n>" (host/log/postgres/conn.c names them so). */
    char pattern[16] = {0};
    int k = snprintf(pattern + 1, sizeof pattern - 1, "lpg_%d", S_GRP_GET);
    pgp_arm_match(proxy, pattern, (size_t)k + 2, "stele", 6, 0);
    ce_start_host(f, 0);
    stele_submitted s;
    ce_submit(f, "bank.OpenAccount", "r1", "{\"owner\":\"R\"}", "r-open", &s);
    json_t *r = ce_wait(f, &s);
    assert_string_equal(ce_str(r, "status"), "accepted");
    json_decref(r);
    assert_int_equal(pgp_cuts(proxy), 6);
}

static void test_host_waits_for_postgres_at_start(void **state)
{
    ce_fixture *f = *state;
    if (!pgt_managed())
        skip();
    assert_int_equal(pgt_script("pg-stop.sh"), 0);
    ce_start_host(f, 0);
    sleep(2);
    assert_int_equal(pgt_script("pg-start.sh"), 0);
    stele_submitted s;
    ce_submit(f, "bank.OpenAccount", "late", "{\"owner\":\"L\"}", NULL, &s);
    json_t *r = ce_wait(f, &s);
    assert_string_equal(ce_str(r, "status"), "accepted");
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_models_live_in_postgres,
                                        setup_sqlite_log, teardown),
        cmocka_unit_test_setup_teardown(
            test_projector_rebuild_beside_the_serving_version, setup_sqlite_log,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_table_in_the_way_of_a_view_is_an_error, setup_sqlite_log,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_two_hosts_one_killed_on_the_postgres_event_store, setup_pg_log,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_postgres_restart_under_load_loses_nothing, setup_pg_log,
            teardown),
        cmocka_unit_test_setup_teardown(test_host_waits_for_postgres_at_start,
                                        setup_pg_log, teardown),
        cmocka_unit_test_setup_teardown(test_a_commit_whose_answer_is_lost,
                                        setup_pg_log_behind_proxy,
                                        teardown_proxy),
        cmocka_unit_test_setup_teardown(test_a_failed_restore_is_tried_again,
                                        setup_pg_log_behind_proxy,
                                        teardown_proxy),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
