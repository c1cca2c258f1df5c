/*
 * The PostgreSQL read-model store against a real server: the store
 * conformance suite (store_conformance.c, the SQLite store's cases), then
 * what only PostgreSQL shows: text compared in byte order whatever the
 * collation, indexes and fillfactor, placeholder translation, types,
 * pipelined batches and their errors. Connection faults are in
 * store_pg_faults.c. Each test runs on a database of its own, dropped
 * afterwards; the server is started through scripts/pg-start.sh when it
 * does not answer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common_pg.h"
#include "store/store.h"
#include "store/postgres/internal.h"
#include "store_conformance.h"
#include "store_pg_faults.h"

static int setup(void **state)
{
    static int serial;
    pgt_fixture *f = calloc(1, sizeof *f);
    char name[64];
    snprintf(name, sizeof name, "stele_test_%d_%d", (int)getpid(), ++serial);
    /* ICU en-US: the tests prove the store does not depend on a byte-order
     * collation */
    if (!pgt_ensure_server() || !pgt_create_db(name, true, &f->conninfo))
        fail_msg("no database %s: see above", name);
    f->db = strdup(name);
    stele_err err = {0};
    if (stele_store_open_postgres(f->conninfo, &f->sc.s, &err) != 0)
        fail_msg("%s", err.msg);
    assert_string_equal(stele_store_backend_name(f->sc.s), "postgres");
    sc_fill(f->sc.s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    pgt_fixture *f = *state;
    stele_store_close(f->sc.s);
    pgt_restart_if_stopped(); /* a fault test left it stopped */
    assert_true(pgt_drop_db(f->db));
    free(f->db);
    free(f->conninfo);
    free(f);
    return 0;
}

/* SQLite compares text byte by byte; so must PostgreSQL, whatever the
 * database's collation (the test databases use ICU en-US). */
static void test_list_sorts_and_compares_text_in_byte_order(void **state)
{
    pgt_fixture *f = *state;
    stele_err err = {0};
    stele_param p[] = {STELE_P_TEXT("b99", 3), STELE_P_TEXT("Zed", 3),
                       STELE_P_INT(1), STELE_P_REAL(0)};
    assert_int_equal(stele_store_exec(f->sc.s,
                                      "INSERT INTO accounts(id, owner, "
                                      "balance, rate) VALUES(?, ?, ?, ?)",
                                      p, 4, &err),
                     0);
    json_t *pg = sc_list(f->sc.s, NULL, "owner", false, 1, 1, &err);
    assert_non_null(pg);
    assert_string_equal(sc_item_str(pg, 0, "owner"), "Zed"); /* 'Z' < 'a' */
    json_decref(pg);
    pg = sc_list(f->sc.s, "owner<a", NULL, false, 1, 10, &err);
    assert_int_equal(sc_total(pg), 1);
    json_decref(pg);
    pg = sc_list(f->sc.s, "owner^=Z", NULL, false, 1, 10, &err);
    assert_int_equal(sc_total(pg), 1);
    json_decref(pg);
    pg = sc_list(f->sc.s, "owner^=z", NULL, false, 1, 10, &err);
    assert_int_equal(sc_total(pg), 0);
    json_decref(pg);
}

static const char *row_str(json_t *rows, size_t i, const char *col)
{
    return json_string_value(json_object_get(json_array_get(rows, i), col));
}

/* Indexes only on INDEX columns; tables get the fillfactor that leaves room
 * for HOT updates (90 unless set), and a new setting applies to tables
 * created after it. */
static void test_indexes_and_fillfactor_of_read_model_tables(void **state)
{
    pgt_fixture *f = *state;
    stele_err err = {0};
    json_t *rows = json_array();
    assert_int_equal(stele_store_select_json(
                         f->sc.s,
                         "SELECT indexname FROM pg_indexes WHERE tablename = "
                         "'accounts' ORDER BY indexname",
                         NULL, 0, rows, &err),
                     0);
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(row_str(rows, 0, "indexname"), "accounts_owner");
    assert_string_equal(row_str(rows, 1, "indexname"), "accounts_pkey");
    json_array_clear(rows);

    assert_int_equal(stele_store_postgres_fillfactor(f->sc.s, 9, &err),
                     STELE_EINVAL);
    assert_int_equal(stele_store_postgres_fillfactor(f->sc.s, 101, &err),
                     STELE_EINVAL);
    assert_int_equal(stele_store_postgres_fillfactor(f->sc.s, 70, &err), 0);
    stele_column_def c2[] = {{"k", STELE_COL_INT, STELE_COL_KEY}};
    stele_table_def t2 = {"second", c2, 1};
    assert_int_equal(stele_store_table_create(f->sc.s, &t2, &err), 0);
    assert_int_equal(
        stele_store_select_json(
            f->sc.s,
            "SELECT relname, array_to_string(reloptions, ',') AS o "
            "FROM pg_class WHERE relname IN ('accounts', 'second') "
            "ORDER BY relname",
            NULL, 0, rows, &err),
        0);
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(row_str(rows, 0, "o"), "fillfactor=90");
    assert_string_equal(row_str(rows, 1, "o"), "fillfactor=70");
    json_decref(rows);
}

static void expect_translation(const char *sql, const char *want, int nph)
{
    char *out = NULL;
    int n = -1;
    stele_err err = {0};
    if (pg_sql_translate(sql, &out, &n, &err) != 0)
        fail_msg("%s: %s", sql, err.msg);
    if (strcmp(out, want) != 0 || n != nph)
        fail_msg("%s: got \"%s\" (%d), expected \"%s\" (%d)", sql, out, n, want,
                 nph);
    free(out);
}

static void test_placeholders_translate_like_sqlite(void **state)
{
    (void)state;
    expect_translation("SELECT ?, ?", "SELECT $1, $2", 2);
    /* ?N sets the number; a bare ? is one past the highest so far */
    expect_translation("VALUES(?2, ?1, ?, ?1)", "VALUES($2, $1, $3, $1)", 3);
    expect_translation("x = ?1 OR y = ?1", "x = $1 OR y = $1", 1);
    expect_translation("SELECT 'a?b''?', ?", "SELECT 'a?b''?', $1", 1);
    expect_translation("SELECT \"we?rd\"\"?\" FROM t WHERE a = ?",
                       "SELECT \"we?rd\"\"?\" FROM t WHERE a = $1", 1);
    expect_translation("SELECT E'it\\'s ?', ?", "SELECT E'it\\'s ?', $1", 1);
    expect_translation("SELECT 'back\\', ?", "SELECT 'back\\', $1", 1);
    expect_translation("SELECT 1 -- what?\n, ?", "SELECT 1 -- what?\n, $1", 1);
    expect_translation("/* ? /* ? */ ? */ ?", "/* ? /* ? */ ? */ $1", 1);
    expect_translation("SELECT $$ ? $$, $q$ '? $q$, ?",
                       "SELECT $$ ? $$, $q$ '? $q$, $1", 1);
    expect_translation("SELECT $2, ?", "SELECT $2, $3", 3);
    expect_translation("SELECT a$b, ?", "SELECT a$b, $1", 1);
    expect_translation("SELECT 1", "SELECT 1", 0);
    char *out;
    int n;
    stele_err err = {0};
    assert_int_equal(pg_sql_translate("SELECT ?0", &out, &n, &err),
                     STELE_EINVAL);
    assert_int_equal(pg_sql_translate("SELECT ?70000", &out, &n, &err),
                     STELE_EINVAL);
}

typedef struct rows {
    int n;
    stele_param first[8];
    char names[8][32];
    char text[8][64];
    size_t ncols;
} rows;

static int keep_row(void *opaque, const stele_param *c,
                    const char *const *names, size_t n)
{
    rows *r = opaque;
    if (r->n++ == 0) {
        r->ncols = n;
        for (size_t i = 0; i < n && i < 8; i++) {
            r->first[i] = c[i];
            snprintf(r->names[i], sizeof r->names[i], "%s", names[i]);
            if (c[i].type == STELE_PARAM_TEXT ||
                c[i].type == STELE_PARAM_BLOB) {
                size_t l = c[i].v.s.len < 63 ? c[i].v.s.len : 63;
                memcpy(r->text[i], c[i].v.s.ptr, l);
                r->text[i][l] = '\0';
                r->first[i].v.s.ptr = r->text[i];
            }
        }
    }
    return 0;
}

static void test_placeholders_reuse_and_literals_on_the_server(void **state)
{
    pgt_fixture *f = *state;
    stele_err err = {0};
    rows r = {0};
    stele_param p[] = {STELE_P_INT(5), STELE_P_TEXT("ab", 2)};
    if (stele_store_select(f->sc.s,
                           "SELECT '?' AS q, ?1 AS a, ?1 + 1 AS b, "
                           "?2 || ?2 AS c, ? AS d",
                           p, 2, keep_row, &r, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ncols, 5);
    assert_string_equal(r.names[0], "q");
    assert_string_equal(r.text[0], "?");
    assert_int_equal(r.first[1].type, STELE_PARAM_INT);
    assert_int_equal(r.first[1].v.i, 5);
    assert_int_equal(r.first[2].v.i, 6);
    assert_string_equal(r.text[3], "abab");
    /* ?3 was never bound: NULL, as in SQLite */
    assert_int_equal(r.first[4].type, STELE_PARAM_NULL);
}

static void test_types_round_trip(void **state)
{
    pgt_fixture *f = *state;
    stele_err err = {0};
    assert_int_equal(stele_store_exec(f->sc.s,
                                      "CREATE TABLE t(i BIGINT, r DOUBLE "
                                      "PRECISION, s TEXT, b BYTEA, n TEXT, "
                                      "d DATE, j JSONB, small INTEGER)",
                                      NULL, 0, &err),
                     0);
    const unsigned char blob[] = {0, 1, 0xfe, 0xff, 0};
    stele_param p[] = {
        STELE_P_INT(-9007199254740993LL),
        STELE_P_REAL(0.1),
        STELE_P_TEXT("héllo", strlen("héllo")),
        {.type = STELE_PARAM_BLOB, .v.s = {blob, sizeof blob}},
        STELE_P_NULL(),
        STELE_P_TEXT("2024-02-29", 10), /* text fills a date ... */
        STELE_P_TEXT("{\"a\": 1}", 8),  /* ... and a jsonb column */
        STELE_P_INT(7)};
    if (stele_store_exec(f->sc.s, "INSERT INTO t VALUES(?,?,?,?,?,?,?,?)", p, 8,
                         &err) != 0)
        fail_msg("%s", err.msg);
    rows r = {0};
    if (stele_store_select(f->sc.s,
                           "SELECT i, r, s, b, n, small, i > 0 AS neg, "
                           "count(*) OVER () AS cnt FROM t",
                           NULL, 0, keep_row, &r, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(r.first[0].type, STELE_PARAM_INT);
    assert_true(r.first[0].v.i == -9007199254740993LL);
    assert_int_equal(r.first[1].type, STELE_PARAM_REAL);
    assert_true(r.first[1].v.d == 0.1);
    assert_int_equal(r.first[2].type, STELE_PARAM_TEXT);
    assert_string_equal(r.text[2], "héllo");
    assert_int_equal(r.first[3].type, STELE_PARAM_BLOB);
    assert_int_equal(r.first[3].v.s.len, sizeof blob);
    assert_memory_equal(r.text[3], blob, sizeof blob);
    assert_int_equal(r.first[4].type, STELE_PARAM_NULL);
    assert_int_equal(r.first[5].type, STELE_PARAM_INT);
    assert_int_equal(r.first[6].type, STELE_PARAM_INT); /* bool: 0/1 */
    assert_int_equal(r.first[6].v.i, 0);
    assert_int_equal(r.first[7].type, STELE_PARAM_INT); /* bigint count */
    assert_int_equal(pgt_scalar(f->conninfo,
                                "SELECT (j->>'a')::int + extract(day from d)"
                                "::int FROM t"),
                     30);
    /* a NUL byte cannot be text in PostgreSQL: refused, not truncated */
    stele_param nul = STELE_P_TEXT("a\0b", 3);
    assert_int_equal(
        stele_store_exec(f->sc.s, "INSERT INTO t(s) VALUES(?)", &nul, 1, &err),
        STELE_EINVAL);
    assert_non_null(strstr(err.msg, "NUL"));
}

int main(void)
{
    static const store_conformance_backend pg_backend = {
        .name = "postgres",
        .setup = setup,
        .teardown = teardown,
        .missing_table_code = "42P01", /* SQLSTATE undefined_table */
    };
    int failed = store_conformance_run(&pg_backend);

    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_list_sorts_and_compares_text_in_byte_order),
        T(test_indexes_and_fillfactor_of_read_model_tables),
        cmocka_unit_test(test_placeholders_translate_like_sqlite),
        T(test_placeholders_reuse_and_literals_on_the_server),
        T(test_types_round_trip),
        T(test_batch_of_10000_upserts_commits),
        T(test_error_mid_batch_fails_commit_and_writes_nothing),
        T(test_failed_prepare_in_a_batch_is_prepared_again),
        T(test_table_changed_under_a_prepared_select),
        T(test_connect_errors_name_the_server_never_the_password),
        T(test_empty_conninfo_uses_the_pg_environment),
        T(test_server_down_fails_with_retry_until_it_is_back),
        T(test_server_stopped_mid_transaction_writes_nothing),
        T(test_server_restart_between_transactions),
    };
#undef T
    failed +=
        cmocka_run_group_tests_name("store on PostgreSQL", tests, NULL, NULL);
    return failed ? 1 : 0;
}
