/*
 * store_conformance.c — the read-model store conformance suite, run by
 * test_store (SQLite) and test_store_pg (PostgreSQL). It uses store.h
 * only; where the backends differ on purpose, the backend says how
 * (store_conformance_backend).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "store_conformance.h"

static const stele_column_def cols[] = {
    {"id", STELE_COL_TEXT, STELE_COL_KEY | STELE_COL_FILTER | STELE_COL_SORT},
    {"owner", STELE_COL_TEXT,
     STELE_COL_FILTER | STELE_COL_SORT | STELE_COL_INDEX},
    {"balance", STELE_COL_INT, STELE_COL_FILTER | STELE_COL_SORT},
    {"rate", STELE_COL_REAL, STELE_COL_FILTER},
    {"secret", STELE_COL_TEXT, STELE_COL_NULLABLE},
};
const stele_table_def sc_accounts = {"accounts", cols, 5};

static const store_conformance_backend *backend;

void sc_fill(stele_store *s)
{
    stele_err err = {0};
    if (stele_store_table_create(s, &sc_accounts, &err) != 0)
        fail_msg("%s", err.msg);
    const char *owners[] = {"alice", "bob", "carol"};
    assert_int_equal(stele_store_begin(s, &err), 0);
    for (int i = 0; i < 25; i++) {
        char id[16];
        snprintf(id, sizeof id, "a%02d", i);
        stele_param p[] = {STELE_P_TEXT(id, strlen(id)),
                           STELE_P_TEXT(owners[i % 3], strlen(owners[i % 3])),
                           STELE_P_INT(10 * i), STELE_P_REAL(i / 10.0)};
        assert_int_equal(
            stele_store_exec(s,
                             "INSERT INTO accounts(id, owner, balance, rate) "
                             "VALUES(?, ?, ?, ?)",
                             p, 4, &err),
            0);
    }
    if (stele_store_commit(s, &err) != 0)
        fail_msg("%s", err.msg);
}

json_t *sc_list(stele_store *s, const char *filter, const char *sort, bool desc,
                int page, int size, stele_err *err)
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
    if (stele_store_list(s, &sc_accounts, &req, &out, err) != 0)
        return NULL;
    return out;
}

long long sc_total(json_t *page)
{
    return json_integer_value(json_object_get(page, "total"));
}

const char *sc_item_str(json_t *page, size_t i, const char *col)
{
    return json_string_value(json_object_get(
        json_array_get(json_object_get(page, "items"), i), col));
}

static stele_store *store_of(void **state)
{
    return ((sc_fixture *)*state)->s;
}

static void test_list_filters_sorts_and_pages(void **state)
{
    stele_store *s = store_of(state);
    stele_err err = {0};
    json_t *p =
        sc_list(s, "owner=alice;balance>=100", "balance", true, 1, 3, &err);
    assert_non_null(p);
    /* alice: i = 0,3,...,24 ; balance >= 100: i = 12,15,18,21,24 */
    assert_int_equal(sc_total(p), 5);
    assert_true(json_is_integer(json_object_get(p, "total")));
    assert_string_equal(sc_item_str(p, 0, "id"), "a24");
    assert_string_equal(sc_item_str(p, 2, "id"), "a18");
    /* columns come back with their types */
    json_t *row = json_array_get(json_object_get(p, "items"), 0);
    assert_int_equal(json_integer_value(json_object_get(row, "balance")), 240);
    assert_true(json_is_real(json_object_get(row, "rate")));
    assert_true(json_is_null(json_object_get(row, "secret")));
    json_decref(p);
    p = sc_list(s, "owner=alice;balance>=100", "balance", true, 2, 3, &err);
    assert_int_equal(json_array_size(json_object_get(p, "items")), 2);
    assert_string_equal(sc_item_str(p, 1, "id"), "a12");
    json_decref(p);
    /* past the last page: no items, the total still right */
    p = sc_list(s, "owner=alice", NULL, false, 9, 10, &err);
    assert_int_equal(json_array_size(json_object_get(p, "items")), 0);
    assert_int_equal(sc_total(p), 9);
    json_decref(p);
}

static void test_list_operators(void **state)
{
    stele_store *s = store_of(state);
    stele_err err = {0};
    struct {
        const char *filter;
        long long total;
    } cases[] = {{"balance=50", 1},  {"balance!=50", 24}, {"balance<50", 5},
                 {"balance<=50", 6}, {"balance>200", 4},  {"id^=a1", 10},
                 {"owner^=ca", 8},   {"rate>=2.0", 5},    {"owner=nobody", 0},
                 {"id^=", 25},       {"owner<bob", 9}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *p = sc_list(s, cases[i].filter, NULL, false, 1, 100, &err);
        if (!p)
            fail_msg("%s: %s", cases[i].filter, err.msg);
        if (sc_total(p) != cases[i].total)
            fail_msg("%s: total %lld, expected %lld", cases[i].filter,
                     sc_total(p), cases[i].total);
        json_decref(p);
    }
}

static void test_list_refuses_undeclared_columns_and_bad_values(void **state)
{
    stele_store *s = store_of(state);
    stele_err err = {0};
    assert_null(sc_list(s, "secret=x", NULL, false, 1, 10, &err));
    assert_non_null(strstr(err.msg, "not filterable"));
    assert_null(sc_list(s, NULL, "rate", false, 1, 10, &err));
    assert_non_null(strstr(err.msg, "not sortable"));
    assert_null(sc_list(s, "nope=1", NULL, false, 1, 10, &err));
    assert_non_null(strstr(err.msg, "no column"));
    assert_null(sc_list(s, "balance=ten", NULL, false, 1, 10, &err));
    assert_non_null(strstr(err.msg, "not an integer"));
    assert_null(sc_list(s, "balance^=1", NULL, false, 1, 10, &err));
    assert_null(sc_list(s, NULL, NULL, false, 0, 10, &err));
    assert_null(sc_list(s, NULL, NULL, false, 1, 1001, &err));
    char bad[] = "balance";
    stele_filter flt;
    assert_int_not_equal(stele_filter_parse(bad, &flt, &err), 0);
}

static void test_list_values_are_bound_not_spliced(void **state)
{
    stele_store *s = store_of(state);
    stele_err err = {0};
    json_t *p = sc_list(s, "owner=x' OR '1'='1", NULL, false, 1, 100, &err);
    assert_non_null(p);
    assert_int_equal(sc_total(p), 0);
    json_decref(p);
    /* a LIKE wildcard in a prefix is a plain character */
    p = sc_list(s, "owner^=%", NULL, false, 1, 100, &err);
    assert_int_equal(sc_total(p), 0);
    json_decref(p);
    p = sc_list(s, "owner^=_", NULL, false, 1, 100, &err);
    assert_int_equal(sc_total(p), 0);
    json_decref(p);
}

static void test_rollback_discards_writes_and_checkpoint(void **state)
{
    stele_store *s = store_of(state);
    stele_err err = {0};
    int64_t next;
    assert_int_equal(stele_store_begin(s, &err), 0);
    assert_int_equal(stele_store_exec(s, "DELETE FROM accounts", NULL, 0, &err),
                     0);
    assert_int_equal(stele_store_checkpoint_set(s, "p", "t", 0, 42, &err), 0);
    stele_store_rollback(s);
    assert_int_equal(stele_store_checkpoint_get(s, "p", "t", 0, &next, &err),
                     0);
    assert_int_equal(next, 0);
    json_t *p = sc_list(s, NULL, NULL, false, 1, 1, &err);
    assert_int_equal(sc_total(p), 25);
    json_decref(p);

    assert_int_equal(stele_store_begin(s, &err), 0);
    assert_int_equal(stele_store_checkpoint_set(s, "p", "t", 0, 42, &err), 0);
    /* a read inside the transaction sees its own writes (PostgreSQL:
     * though they are still queued in the pipeline) */
    assert_int_equal(stele_store_checkpoint_get(s, "p", "t", 0, &next, &err),
                     0);
    assert_int_equal(next, 42);
    assert_int_equal(stele_store_checkpoint_set(s, "p", "t", 0, 43, &err), 0);
    assert_int_equal(stele_store_commit(s, &err), 0);
    assert_int_equal(stele_store_checkpoint_get(s, "p", "t", 0, &next, &err),
                     0);
    assert_int_equal(next, 43);
    assert_int_equal(stele_store_checkpoints_clear(s, "p", &err), 0);
    assert_int_equal(stele_store_checkpoint_get(s, "p", "t", 0, &next, &err),
                     0);
    assert_int_equal(next, 0);
}

static void test_projector_versions_and_drop(void **state)
{
    stele_store *s = store_of(state);
    stele_err err = {0};
    int v;
    assert_int_equal(stele_store_projector_version(s, "p", &v, &err), 0);
    assert_int_equal(v, -1);
    assert_int_equal(stele_store_projector_set_version(s, "p", 3, &err), 0);
    assert_int_equal(stele_store_projector_version(s, "p", &v, &err), 0);
    assert_int_equal(v, 3);
    assert_int_equal(stele_store_projector_set_version(s, "p", 4, &err), 0);
    assert_int_equal(stele_store_projector_version(s, "p", &v, &err), 0);
    assert_int_equal(v, 4);
    assert_int_equal(stele_store_table_drop(s, "accounts", &err), 0);
    assert_null(sc_list(s, NULL, NULL, false, 1, 1, &err));
    assert_int_not_equal(stele_store_table_drop(s, "x; DROP", &err), 0);
    /* created again (a rebuild): the cached statements still work */
    assert_int_equal(stele_store_table_create(s, &sc_accounts, &err), 0);
    json_t *p = sc_list(s, NULL, NULL, false, 1, 1, &err);
    assert_non_null(p);
    assert_int_equal(sc_total(p), 0);
    json_decref(p);
}

static void test_bad_sql_is_an_error_not_a_crash(void **state)
{
    stele_store *s = store_of(state);
    stele_err err = {0};
    assert_int_equal(
        stele_store_exec(s, "INSERT INTO nope VALUES(1)", NULL, 0, &err),
        STELE_EINVAL);
    assert_non_null(strstr(err.msg, "nope"));
    if (backend->missing_table_code)
        assert_non_null(strstr(err.msg, backend->missing_table_code));
    assert_int_equal(stele_store_exec(s, "SELEC 1", NULL, 0, &err),
                     STELE_EINVAL);
    stele_param p[3] = {STELE_P_INT(1), STELE_P_INT(2), STELE_P_INT(3)};
    assert_int_not_equal(stele_store_exec(s, "SELECT ?", p, 3, &err), 0);
    assert_non_null(strstr(err.msg, "3 parameters for 1 placeholders"));
    /* the store goes on */
    json_t *pg = sc_list(s, NULL, NULL, false, 1, 1, &err);
    assert_int_equal(sc_total(pg), 25);
    json_decref(pg);
}

int store_conformance_run(const store_conformance_backend *b)
{
    backend = b;
#define CT(f) cmocka_unit_test_setup_teardown(f, b->setup, b->teardown)
    const struct CMUnitTest tests[] = {
        CT(test_list_filters_sorts_and_pages),
        CT(test_list_operators),
        CT(test_list_refuses_undeclared_columns_and_bad_values),
        CT(test_list_values_are_bound_not_spliced),
        CT(test_rollback_discards_writes_and_checkpoint),
        CT(test_projector_versions_and_drop),
        CT(test_bad_sql_is_an_error_not_a_crash),
    };
#undef CT
    char name[64];
    snprintf(name, sizeof name, "store conformance (%s)", b->name);
    return cmocka_run_group_tests_name(name, tests, NULL, NULL);
}
