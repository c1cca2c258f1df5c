/* test_store_pg: pipelined batches and their errors, connection errors,
 * and the server stopped and started under the store (for real, through
 * scripts/pg-stop.sh and scripts/pg-start.sh). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "common_pg.h"
#include "store_pg_faults.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long count(pgt_fixture *f, const char *sql)
{
    return pgt_scalar(f->conninfo, sql);
}

static const stele_column_def kv_cols[] = {
    {"k", STELE_COL_TEXT, STELE_COL_KEY},
    {"v", STELE_COL_INT, 0},
    {"n", STELE_COL_INT, 0},
};
static const stele_table_def kv = {"kv", kv_cols, 3};

#define UPSERT                                                                 \
    "INSERT INTO kv(k, v, n) VALUES(?, ?, 1) ON CONFLICT(k) DO "               \
    "UPDATE SET v = excluded.v, n = kv.n + 1"

static double upsert_batch(pgt_fixture *f, int rows, int64_t checkpoint)
{
    stele_err err = {0};
    double t0 = now();
    assert_int_equal(stele_store_begin(f->sc.s, &err), 0);
    for (int i = 0; i < rows; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%05d", i);
        stele_param p[] = {STELE_P_TEXT(k, strlen(k)), STELE_P_INT(i)};
        if (stele_store_exec(f->sc.s, UPSERT, p, 2, &err) != 0)
            fail_msg("row %d: %s", i, err.msg);
    }
    assert_int_equal(
        stele_store_checkpoint_set(f->sc.s, "kv", "t", 0, checkpoint, &err), 0);
    if (stele_store_commit(f->sc.s, &err) != 0)
        fail_msg("%s", err.msg);
    return now() - t0;
}

/* The same batch straight through libpq's pipeline, for comparison. */
static double raw_libpq_batch(pgt_fixture *f, int rows)
{
    PGconn *c = PQconnectdb(f->conninfo);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQclear(PQexec(c, "CREATE TABLE raw(k TEXT PRIMARY KEY, v BIGINT, "
                      "n BIGINT)"));
    double t0 = now();
    PQclear(PQexec(c, "BEGIN"));
    assert_int_equal(PQenterPipelineMode(c), 1);
    PQsendPrepare(c, "up",
                  "INSERT INTO raw(k, v, n) VALUES($1, $2, 1) ON CONFLICT(k) "
                  "DO UPDATE SET v = excluded.v, n = raw.n + 1",
                  2, NULL);
    for (int i = 0; i < rows; i++) {
        char k[16], v[16];
        snprintf(k, sizeof k, "k%05d", i);
        snprintf(v, sizeof v, "%d", i);
        const char *vals[] = {k, v};
        PQsendQueryPrepared(c, "up", 2, vals, NULL, NULL, 0);
    }
    PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
    PQpipelineSync(c);
    int errors = 0;
    for (int i = 0; i < rows + 2; i++) {
        PGresult *r;
        while ((r = PQgetResult(c)) != NULL) {
            errors += PQresultStatus(r) == PGRES_FATAL_ERROR;
            PQclear(r);
        }
    }
    PGresult *sync = PQgetResult(c);
    assert_int_equal(PQresultStatus(sync), PGRES_PIPELINE_SYNC);
    PQclear(sync);
    double dt = now() - t0;
    assert_int_equal(errors, 0);
    PQfinish(c);
    return dt;
}

void test_batch_of_10000_upserts_commits(void **state)
{
    pgt_fixture *f = *state;
    stele_err err = {0};
    assert_int_equal(stele_store_table_create(f->sc.s, &kv, &err), 0);
    double first = upsert_batch(f, 10000, 10000);
    assert_int_equal(count(f, "SELECT count(*) FROM kv"), 10000);
    double second = upsert_batch(f, 10000, 20000); /* all updates */
    assert_int_equal(count(f, "SELECT count(*) FROM kv WHERE n = 2"), 10000);
    assert_int_equal(count(f, "SELECT next_offset FROM stele_checkpoints"),
                     20000);
    double raw = raw_libpq_batch(f, 10000);
    fprintf(stderr,
            "store_pg: 10,000 upserts in one transaction: inserts %.1f ms "
            "(%.0f rows/s), updates %.1f ms (%.0f rows/s); raw libpq "
            "pipeline %.1f ms (%.0f rows/s)\n",
            first * 1e3, 10000 / first, second * 1e3, 10000 / second, raw * 1e3,
            10000 / raw);
}

void test_error_mid_batch_fails_commit_and_writes_nothing(void **state)
{
    pgt_fixture *f = *state;
    stele_err err = {0};
    assert_int_equal(stele_store_begin(f->sc.s, &err), 0);
    for (int i = 0; i < 600; i++) {
        char id[16];
        /* statement 301 repeats a key of the fixture: 23505 */
        snprintf(id, sizeof id, i == 300 ? "a07" : "b%03d", i);
        stele_param p[] = {STELE_P_TEXT(id, strlen(id)),
                           STELE_P_TEXT("dave", 4), STELE_P_INT(i),
                           STELE_P_REAL(0)};
        /* The error may surface here already, or only at commit. */
        stele_store_exec(f->sc.s,
                         "INSERT INTO accounts(id, owner, balance, rate) "
                         "VALUES(?, ?, ?, ?)",
                         p, 4, &err);
    }
    stele_store_checkpoint_set(f->sc.s, "p", "t", 0, 600, &err);
    memset(&err, 0, sizeof err);
    assert_int_equal(stele_store_commit(f->sc.s, &err), STELE_EINVAL);
    assert_non_null(strstr(err.msg, "statement 301 of the transaction"));
    assert_non_null(strstr(err.msg, "INSERT INTO accounts"));
    assert_non_null(strstr(err.msg, "23505"));
    assert_non_null(strstr(err.msg, "(id)=(a07)"));
    assert_int_equal(count(f, "SELECT count(*) FROM accounts"), 25);
    assert_int_equal(count(f, "SELECT count(*) FROM stele_checkpoints"), 0);
    /* the store goes on */
    int64_t next = -1;
    assert_int_equal(stele_store_begin(f->sc.s, &err), 0);
    assert_int_equal(stele_store_checkpoint_set(f->sc.s, "p", "t", 0, 1, &err),
                     0);
    assert_int_equal(stele_store_commit(f->sc.s, &err), 0);
    assert_int_equal(
        stele_store_checkpoint_get(f->sc.s, "p", "t", 0, &next, &err), 0);
    assert_int_equal(next, 1);
}

void test_failed_prepare_in_a_batch_is_prepared_again(void **state)
{
    pgt_fixture *f = *state;
    stele_err err = {0};
    const char *fresh = "UPDATE accounts SET balance = ? WHERE id = ?";
    stele_param one = STELE_P_INT(1);
    stele_param p[] = {STELE_P_INT(-5), STELE_P_TEXT("a01", 3)};
    assert_int_equal(stele_store_begin(f->sc.s, &err), 0);
    stele_store_exec(f->sc.s, "INSERT INTO nope VALUES(?)", &one, 1, &err);
    /* queued behind the failure: its prepare is skipped by the server */
    stele_store_exec(f->sc.s, fresh, p, 2, &err);
    assert_int_equal(stele_store_commit(f->sc.s, &err), STELE_EINVAL);
    assert_non_null(strstr(err.msg, "statement 1 of the transaction"));
    assert_non_null(strstr(err.msg, "nope"));
    assert_int_equal(stele_store_begin(f->sc.s, &err), 0);
    if (stele_store_exec(f->sc.s, fresh, p, 2, &err) != 0 ||
        stele_store_commit(f->sc.s, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(count(f, "SELECT balance FROM accounts WHERE id = 'a01'"),
                     -5);
    /* a NULL whose type nothing gives, inside a batch */
    stele_param null = STELE_P_NULL();
    assert_int_equal(stele_store_begin(f->sc.s, &err), 0);
    if (stele_store_exec(f->sc.s,
                         "UPDATE accounts SET secret = coalesce(?, 'x') "
                         "WHERE ? IS NULL",
                         (stele_param[]){null, null}, 2, &err) != 0 ||
        stele_store_commit(f->sc.s, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(count(f, "SELECT count(*) FROM accounts WHERE secret "
                              "= 'x'"),
                     25);
}

void test_table_changed_under_a_prepared_select(void **state)
{
    pgt_fixture *f = *state;
    stele_err err = {0};
    json_t *rows = json_array();
    assert_int_equal(
        stele_store_exec(f->sc.s, "CREATE TABLE t2(a BIGINT)", NULL, 0, &err),
        0);
    assert_int_equal(stele_store_select_json(f->sc.s, "SELECT * FROM t2", NULL,
                                             0, rows, &err),
                     0);
    assert_int_equal(stele_store_exec(f->sc.s, "DROP TABLE t2", NULL, 0, &err),
                     0);
    assert_int_equal(stele_store_exec(f->sc.s,
                                      "CREATE TABLE t2(a TEXT, b BIGINT)", NULL,
                                      0, &err),
                     0);
    assert_int_equal(stele_store_exec(f->sc.s, "INSERT INTO t2 VALUES('x', 2)",
                                      NULL, 0, &err),
                     0);
    if (stele_store_select_json(f->sc.s, "SELECT * FROM t2", NULL, 0, rows,
                                &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(rows, 0), "a")), "x");
    json_decref(rows);
}

static void expect_open_fails(const char *conninfo, int code,
                              const char *must_name)
{
    stele_store *s = NULL;
    stele_err err = {0};
    int rc = stele_store_open_postgres(conninfo, &s, &err);
    if (rc != code)
        fail_msg("%s: status %d (%s), expected %d", conninfo, rc, err.msg,
                 code);
    assert_null(s);
    if (strstr(err.msg, "hunter2secret"))
        fail_msg("the password is in the message: %s", err.msg);
    if (must_name && !strstr(err.msg, must_name))
        fail_msg("'%s' does not name %s", err.msg, must_name);
}

void test_connect_errors_name_the_server_never_the_password(void **state)
{
    (void)state;
    expect_open_fails("host=127.0.0.1 port=1 user=x password=hunter2secret "
                      "connect_timeout=3",
                      STELE_ERETRY, "127.0.0.1:1");
    expect_open_fails("postgresql://u:hunter2secret@127.0.0.1:1/db",
                      STELE_ERETRY, "127.0.0.1:1");
    expect_open_fails("host=127.0.0.1 password hunter2secret", STELE_EINVAL,
                      "connection string");
    expect_open_fails("host=127.0.0.1 password='hunter2secret", STELE_EINVAL,
                      "connection string");
    expect_open_fails("postgresql://u:hunter2secret@127.0.0.1:1/db?bogus=1",
                      STELE_EINVAL, "connection string");
    char *c = pgt_conninfo_for("stele_no_such_db");
    assert_non_null(c);
    size_t l = strlen(c) + 64;
    char *withpw = malloc(l);
    snprintf(withpw, l, "%s password=hunter2secret", c);
    expect_open_fails(withpw, STELE_ERETRY, "stele_no_such_db");
    free(withpw);
    free(c);
}

void test_empty_conninfo_uses_the_pg_environment(void **state)
{
    pgt_fixture *f = *state;
    static const char *const vars[][2] = {{"host", "PGHOST"},
                                          {"port", "PGPORT"},
                                          {"user", "PGUSER"},
                                          {"dbname", "PGDATABASE"},
                                          {"password", "PGPASSWORD"}};
    PQconninfoOption *opts = PQconninfoParse(f->conninfo, NULL);
    for (PQconninfoOption *o = opts; o->keyword; o++)
        for (size_t i = 0; i < 5; i++)
            if (!strcmp(o->keyword, vars[i][0]) && o->val)
                setenv(vars[i][1], o->val, 1);
    PQconninfoFree(opts);
    stele_store *s = NULL;
    stele_err err = {0};
    int rc = stele_store_open_postgres("", &s, &err);
    json_t *rows = json_array();
    if (rc == 0)
        rc = stele_store_select_json(s, "SELECT count(*) AS n FROM accounts",
                                     NULL, 0, rows, &err);
    stele_store_close(s);
    for (size_t i = 0; i < 5; i++)
        unsetenv(vars[i][1]);
    if (rc != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(rows, 0), "n")), 25);
    json_decref(rows);
}

static void server(const char *script)
{
    if (pgt_script(script) != 0)
        fail_msg("scripts/%s failed", script);
}

static void insert_one(stele_store *s, const char *id)
{
    stele_err err = {0};
    stele_param p[] = {STELE_P_TEXT(id, strlen(id)), STELE_P_TEXT("eve", 3),
                       STELE_P_INT(1), STELE_P_REAL(1)};
    if (stele_store_begin(s, &err) != 0 ||
        stele_store_exec(s,
                         "INSERT INTO accounts(id, owner, balance, rate) "
                         "VALUES(?, ?, ?, ?)",
                         p, 4, &err) != 0 ||
        stele_store_commit(s, &err) != 0)
        fail_msg("%s", err.msg);
}

void test_server_down_fails_with_retry_until_it_is_back(void **state)
{
    pgt_fixture *f = *state;
    if (!pgt_managed())
        skip(); /* never stop a server the tests do not own */
    stele_err err = {0};
    json_t *rows = json_array();
    server("pg-stop.sh");
    assert_int_equal(stele_store_begin(f->sc.s, &err), STELE_ERETRY);
    assert_non_null(strstr(err.msg, "127.0.0.1:"));
    assert_int_equal(stele_store_begin(f->sc.s, &err), STELE_ERETRY);
    assert_int_equal(
        stele_store_select_json(f->sc.s, "SELECT 1", NULL, 0, rows, &err),
        STELE_ERETRY);
    stele_store *other = NULL;
    assert_int_equal(stele_store_open_postgres(f->conninfo, &other, &err),
                     STELE_ERETRY);
    assert_non_null(strstr(err.msg, "cannot connect to PostgreSQL at "
                                    "127.0.0.1:"));
    server("pg-start.sh");
    insert_one(f->sc.s, "c01");
    assert_int_equal(count(f, "SELECT count(*) FROM accounts"), 26);
    json_decref(rows);
}

void test_server_stopped_mid_transaction_writes_nothing(void **state)
{
    pgt_fixture *f = *state;
    if (!pgt_managed())
        skip();
    stele_err err = {0};
    assert_int_equal(stele_store_begin(f->sc.s, &err), 0);
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof id, "d%02d", i);
        stele_param p[] = {STELE_P_TEXT(id, strlen(id)), STELE_P_TEXT("eve", 3),
                           STELE_P_INT(i), STELE_P_REAL(0)};
        assert_int_equal(stele_store_exec(f->sc.s,
                                          "INSERT INTO accounts(id, owner, "
                                          "balance, rate) VALUES(?, ?, ?, ?)",
                                          p, 4, &err),
                         0);
    }
    assert_int_equal(stele_store_checkpoint_set(f->sc.s, "p", "t", 0, 10, &err),
                     0);
    server("pg-stop.sh");
    stele_store_exec(f->sc.s, "DELETE FROM accounts", NULL, 0, &err);
    assert_int_equal(stele_store_commit(f->sc.s, &err), STELE_ERETRY);
    server("pg-start.sh");
    insert_one(f->sc.s, "c02");
    assert_int_equal(count(f, "SELECT count(*) FROM accounts"), 26);
    assert_int_equal(count(f, "SELECT count(*) FROM stele_checkpoints"), 0);
}

void test_server_restart_between_transactions(void **state)
{
    pgt_fixture *f = *state;
    if (!pgt_managed())
        skip();
    stele_err err = {0};
    stele_store *reader = NULL;
    assert_int_equal(stele_store_open_postgres(f->conninfo, &reader, &err), 0);
    json_t *rows = json_array();
    const char *q = "SELECT count(*) AS n FROM accounts";
    assert_int_equal(stele_store_select_json(reader, q, NULL, 0, rows, &err),
                     0);
    insert_one(f->sc.s, "c03");
    server("pg-stop.sh");
    server("pg-start.sh");
    /* begin finds the dead session before anything is written and takes
     * a new one */
    insert_one(f->sc.s, "c04");
    /* a call outside a transaction cannot know: it fails once, then the
     * next call reconnects */
    assert_int_equal(stele_store_select_json(reader, q, NULL, 0, rows, &err),
                     STELE_ERETRY);
    if (stele_store_select_json(reader, q, NULL, 0, rows, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(rows, 1), "n")), 27);
    json_decref(rows);
    stele_store_close(reader);
}
