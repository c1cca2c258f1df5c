/*
 * The PostgreSQL read-model store against a real server: the cases of the
 * SQLite store's unit test (tables, transactions with checkpoints, the
 * generic list query), placeholder translation, types, pipelined batches
 * and their errors. Connection faults are in store_pg_faults.c. Each test
 * runs on a database of its own, dropped afterwards; the server is
 * started through scripts/pg-start.sh when it does not answer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "store/store_pg_priv.h"
#include "store_pg_faults.h"
#include "store_pg_server.h"

static const stele_column_def cols[] = {
    {"id", STELE_COL_TEXT, STELE_COL_KEY | STELE_COL_FILTER | STELE_COL_SORT},
    {"owner", STELE_COL_TEXT, STELE_COL_FILTER | STELE_COL_SORT | STELE_COL_INDEX},
    {"balance", STELE_COL_INT, STELE_COL_FILTER | STELE_COL_SORT},
    {"rate", STELE_COL_REAL, STELE_COL_FILTER},
    {"secret", STELE_COL_TEXT, STELE_COL_NULLABLE},
};
static const stele_table_def table = {"accounts", cols, 5};

static int setup(void **state)
{
    pgt_fixture *f = calloc(1, sizeof *f);
    pgt_ensure_server();
    pgt_create_db(&f->db, &f->conninfo);
    stele_err err = {0};
    if (stele_store_open_postgres(f->conninfo, &f->s, &err) != 0)
        fail_msg("%s", err.msg);
    assert_string_equal(stele_store_backend_name(f->s), "postgres");
    assert_int_equal(stele_store_table_create(f->s, &table, &err), 0);
    /* 25 rows: id a00..a24, owner by id%3, balance 10*i */
    const char *owners[] = {"alice", "bob", "carol"};
    assert_int_equal(stele_store_begin(f->s, &err), 0);
    for (int i = 0; i < 25; i++) {
        char id[16];
        snprintf(id, sizeof id, "a%02d", i);
        stele_param p[] = {STELE_P_TEXT(id, strlen(id)),
                           STELE_P_TEXT(owners[i % 3], strlen(owners[i % 3])),
                           STELE_P_INT(10 * i), STELE_P_REAL(i / 10.0)};
        assert_int_equal(
            stele_store_exec(f->s,
                             "INSERT INTO accounts(id, owner, balance, rate) "
                             "VALUES(?, ?, ?, ?)",
                             p, 4, &err),
            0);
    }
    if (stele_store_commit(f->s, &err) != 0)
        fail_msg("%s", err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    pgt_fixture *f = *state;
    stele_store_close(f->s);
    if (pgt_managed() && PQping(pgt_base()) != PQPING_OK)
        pgt_script("pg-start.sh"); /* a fault test left it stopped */
    pgt_drop_db(f->db);
    free(f->db);
    free(f->conninfo);
    free(f);
    return 0;
}

static json_t *list(pgt_fixture *f, const char *filter, const char *sort,
                    bool desc, int page, int size, stele_err *err)
{
    stele_filter flt[2];
    char buf[2][128];
    size_t n = 0;
    if (filter) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s", filter);
        for (char *tok = strtok(tmp, ";"); tok && n < 2;
             tok = strtok(NULL, ";")) {
            snprintf(buf[n], sizeof buf[n], "%s", tok);
            if (stele_filter_parse(buf[n], &flt[n], err) != 0)
                return NULL;
            n++;
        }
    }
    stele_list_request req = {.filters = flt,
                              .n_filters = n,
                              .sort = sort,
                              .descending = desc,
                              .page = page,
                              .page_size = size};
    json_t *out = NULL;
    if (stele_store_list(f->s, &table, &req, &out, err) != 0)
        return NULL;
    return out;
}

static const char *item_str(json_t *page, size_t i, const char *col)
{
    return json_string_value(json_object_get(
        json_array_get(json_object_get(page, "items"), i), col));
}

static long long total(json_t *page)
{
    return json_integer_value(json_object_get(page, "total"));
}

static void test_list_filters_sorts_and_pages(void **state)
{
    pgt_fixture *f = *state;
    stele_err err = {0};
    json_t *p =
        list(f, "owner=alice;balance>=100", "balance", true, 1, 3, &err);
    assert_non_null(p);
    assert_int_equal(total(p), 5);
    assert_true(json_is_integer(json_object_get(p, "total")));
    assert_string_equal(item_str(p, 0, "id"), "a24");
    assert_string_equal(item_str(p, 2, "id"), "a18");
    /* columns come back with their types */
    json_t *row = json_array_get(json_object_get(p, "items"), 0);
    assert_int_equal(json_integer_value(json_object_get(row, "balance")), 240);
    assert_true(json_is_real(json_object_get(row, "rate")));
    assert_true(json_is_null(json_object_get(row, "secret")));
    json_decref(p);
    p = list(f, "owner=alice;balance>=100", "balance", true, 2, 3, &err);
    assert_int_equal(json_array_size(json_object_get(p, "items")), 2);
    assert_string_equal(item_str(p, 1, "id"), "a12");
    json_decref(p);
    p = list(f, "owner=alice", NULL, false, 9, 10, &err);
    assert_int_equal(json_array_size(json_object_get(p, "items")), 0);
    assert_int_equal(total(p), 9);
    json_decref(p);
}

static void test_list_operators(void **state)
{
    pgt_fixture *f = *state;
    stele_err err = {0};
    struct {
        const char *filter;
        long long total;
    } cases[] = {{"balance=50", 1},  {"balance!=50", 24}, {"balance<50", 5},
                 {"balance<=50", 6}, {"balance>200", 4},  {"id^=a1", 10},
                 {"owner^=ca", 8},   {"rate>=2.0", 5},    {"owner=nobody", 0},
                 {"id^=", 25},       {"owner<bob", 9}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *p = list(f, cases[i].filter, NULL, false, 1, 100, &err);
        if (!p)
            fail_msg("%s: %s", cases[i].filter, err.msg);
        if (total(p) != cases[i].total)
            fail_msg("%s: total %lld, expected %lld", cases[i].filter, total(p),
                     cases[i].total);
        json_decref(p);
    }
}

/* SQLite compares text byte by byte; so must PostgreSQL, whatever the
 * database's collation (the test databases use ICU en-US). */
static void test_list_sorts_and_compares_text_in_byte_order(void **state)
{
    pgt_fixture *f = *state;
    stele_err err = {0};
    stele_param p[] = {STELE_P_TEXT("b99", 3), STELE_P_TEXT("Zed", 3),
                       STELE_P_INT(1), STELE_P_REAL(0)};
    assert_int_equal(stele_store_exec(f->s,
                                      "INSERT INTO accounts(id, owner, "
                                      "balance, rate) VALUES(?, ?, ?, ?)",
                                      p, 4, &err),
                     0);
    json_t *pg = list(f, NULL, "owner", false, 1, 1, &err);
    assert_non_null(pg);
    assert_string_equal(item_str(pg, 0, "owner"), "Zed"); /* 'Z' < 'a' */
    json_decref(pg);
    pg = list(f, "owner<a", NULL, false, 1, 10, &err);
    assert_int_equal(total(pg), 1);
    json_decref(pg);
    pg = list(f, "owner^=Z", NULL, false, 1, 10, &err);
    assert_int_equal(total(pg), 1);
    json_decref(pg);
    pg = list(f, "owner^=z", NULL, false, 1, 10, &err);
    assert_int_equal(total(pg), 0);
    json_decref(pg);
}

static void test_list_refuses_undeclared_columns_and_bad_values(void **state)
{
    pgt_fixture *f = *state;
    stele_err err = {0};
    assert_null(list(f, "secret=x", NULL, false, 1, 10, &err));
    assert_non_null(strstr(err.msg, "not filterable"));
    assert_null(list(f, NULL, "rate", false, 1, 10, &err));
    assert_non_null(strstr(err.msg, "not sortable"));
    assert_null(list(f, "nope=1", NULL, false, 1, 10, &err));
    assert_non_null(strstr(err.msg, "no column"));
    assert_null(list(f, "balance=ten", NULL, false, 1, 10, &err));
    assert_non_null(strstr(err.msg, "not an integer"));
    assert_null(list(f, "balance^=1", NULL, false, 1, 10, &err));
    assert_null(list(f, NULL, NULL, false, 0, 10, &err));
    assert_null(list(f, NULL, NULL, false, 1, 1001, &err));
}

static void test_list_values_are_bound_not_spliced(void **state)
{
    pgt_fixture *f = *state;
    stele_err err = {0};
    json_t *p = list(f, "owner=x' OR '1'='1", NULL, false, 1, 100, &err);
    assert_non_null(p);
    assert_int_equal(total(p), 0);
    json_decref(p);
    p = list(f, "owner^=%", NULL, false, 1, 100, &err);
    assert_int_equal(total(p), 0);
    json_decref(p);
    p = list(f, "owner^=_", NULL, false, 1, 100, &err);
    assert_int_equal(total(p), 0);
    json_decref(p);
}

static void test_rollback_discards_writes_and_checkpoint(void **state)
{
    pgt_fixture *f = *state;
    stele_err err = {0};
    int64_t next;
    assert_int_equal(stele_store_begin(f->s, &err), 0);
    assert_int_equal(
        stele_store_exec(f->s, "DELETE FROM accounts", NULL, 0, &err), 0);
    assert_int_equal(stele_store_checkpoint_set(f->s, "p", "t", 0, 42, &err),
                     0);
    stele_store_rollback(f->s);
    assert_int_equal(stele_store_checkpoint_get(f->s, "p", "t", 0, &next, &err),
                     0);
    assert_int_equal(next, 0);
    json_t *p = list(f, NULL, NULL, false, 1, 1, &err);
    assert_int_equal(total(p), 25);
    json_decref(p);

    assert_int_equal(stele_store_begin(f->s, &err), 0);
    assert_int_equal(stele_store_checkpoint_set(f->s, "p", "t", 0, 42, &err),
                     0);
    /* a read inside the transaction sees its own queued writes */
    assert_int_equal(stele_store_checkpoint_get(f->s, "p", "t", 0, &next, &err),
                     0);
    assert_int_equal(next, 42);
    assert_int_equal(stele_store_checkpoint_set(f->s, "p", "t", 0, 43, &err),
                     0);
    assert_int_equal(stele_store_commit(f->s, &err), 0);
    assert_int_equal(stele_store_checkpoint_get(f->s, "p", "t", 0, &next, &err),
                     0);
    assert_int_equal(next, 43);
    assert_int_equal(stele_store_checkpoints_clear(f->s, "p", &err), 0);
    assert_int_equal(stele_store_checkpoint_get(f->s, "p", "t", 0, &next, &err),
                     0);
    assert_int_equal(next, 0);
}

static void test_projector_versions_and_drop(void **state)
{
    pgt_fixture *f = *state;
    stele_err err = {0};
    int v;
    assert_int_equal(stele_store_projector_version(f->s, "p", &v, &err), 0);
    assert_int_equal(v, -1);
    assert_int_equal(stele_store_projector_set_version(f->s, "p", 3, &err), 0);
    assert_int_equal(stele_store_projector_set_version(f->s, "p", 4, &err), 0);
    assert_int_equal(stele_store_projector_version(f->s, "p", &v, &err), 0);
    assert_int_equal(v, 4);
    assert_int_equal(stele_store_table_drop(f->s, "accounts", &err), 0);
    assert_null(list(f, NULL, NULL, false, 1, 1, &err));
    assert_int_not_equal(stele_store_table_drop(f->s, "x; DROP", &err), 0);
    /* created again (a rebuild): the cached statements still work */
    assert_int_equal(stele_store_table_create(f->s, &table, &err), 0);
    json_t *p = list(f, NULL, NULL, false, 1, 1, &err);
    assert_non_null(p);
    assert_int_equal(total(p), 0);
    json_decref(p);
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
                         f->s,
                         "SELECT indexname FROM pg_indexes WHERE tablename = "
                         "'accounts' ORDER BY indexname",
                         NULL, 0, rows, &err),
                     0);
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(row_str(rows, 0, "indexname"), "accounts_owner");
    assert_string_equal(row_str(rows, 1, "indexname"), "accounts_pkey");
    json_array_clear(rows);

    assert_int_equal(stele_store_postgres_fillfactor(f->s, 9, &err),
                     STELE_EINVAL);
    assert_int_equal(stele_store_postgres_fillfactor(f->s, 101, &err),
                     STELE_EINVAL);
    assert_int_equal(stele_store_postgres_fillfactor(f->s, 70, &err), 0);
    stele_column_def c2[] = {{"k", STELE_COL_INT, STELE_COL_KEY}};
    stele_table_def t2 = {"second", c2, 1};
    assert_int_equal(stele_store_table_create(f->s, &t2, &err), 0);
    assert_int_equal(stele_store_select_json(
                         f->s,
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

static void test_bad_sql_is_an_error_not_a_crash(void **state)
{
    pgt_fixture *f = *state;
    stele_err err = {0};
    assert_int_equal(
        stele_store_exec(f->s, "INSERT INTO nope VALUES(1)", NULL, 0, &err),
        STELE_EINVAL);
    assert_non_null(strstr(err.msg, "nope"));
    assert_non_null(strstr(err.msg, "42P01"));
    assert_int_equal(stele_store_exec(f->s, "SELEC 1", NULL, 0, &err),
                     STELE_EINVAL);
    stele_param p[3] = {STELE_P_INT(1), STELE_P_INT(2), STELE_P_INT(3)};
    assert_int_not_equal(stele_store_exec(f->s, "SELECT ?", p, 3, &err), 0);
    assert_non_null(strstr(err.msg, "3 parameters for 1 placeholders"));
    /* the connection is still good */
    json_t *pg = list(f, NULL, NULL, false, 1, 1, &err);
    assert_int_equal(total(pg), 25);
    json_decref(pg);
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
    if (stele_store_select(f->s,
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
    assert_int_equal(stele_store_exec(f->s,
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
    if (stele_store_exec(f->s, "INSERT INTO t VALUES(?,?,?,?,?,?,?,?)", p, 8,
                         &err) != 0)
        fail_msg("%s", err.msg);
    rows r = {0};
    if (stele_store_select(f->s,
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
        stele_store_exec(f->s, "INSERT INTO t(s) VALUES(?)", &nul, 1, &err),
        STELE_EINVAL);
    assert_non_null(strstr(err.msg, "NUL"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_list_filters_sorts_and_pages),
        T(test_list_operators),
        T(test_list_sorts_and_compares_text_in_byte_order),
        T(test_list_refuses_undeclared_columns_and_bad_values),
        T(test_list_values_are_bound_not_spliced),
        T(test_rollback_discards_writes_and_checkpoint),
        T(test_projector_versions_and_drop),
        T(test_indexes_and_fillfactor_of_read_model_tables),
        T(test_bad_sql_is_an_error_not_a_crash),
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
    return cmocka_run_group_tests(tests, NULL, NULL);
}
