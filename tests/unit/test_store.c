/*
 * The SQLite read-model store: tables from projector definitions,
 * transactions with checkpoints, and the generic list query (filters,
 * sort, paging, and what it refuses).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

static const stele_column_def cols[] = {
    {"id", STELE_COL_TEXT, STELE_COL_KEY | STELE_COL_FILTER | STELE_COL_SORT},
    {"owner", STELE_COL_TEXT, STELE_COL_FILTER | STELE_COL_SORT | STELE_COL_INDEX},
    {"balance", STELE_COL_INT, STELE_COL_FILTER | STELE_COL_SORT},
    {"rate", STELE_COL_REAL, STELE_COL_FILTER},
    {"secret", STELE_COL_TEXT, STELE_COL_NULLABLE},
};
static const stele_table_def table = {"accounts", cols, 5};

typedef struct fixture {
    char dir[64];
    stele_store *s;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/stele-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char path[128];
    snprintf(path, sizeof path, "%s/rm.db", f->dir);
    stele_err err = {0};
    assert_int_equal(stele_store_open_sqlite(path, &f->s, &err), 0);
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
    assert_int_equal(stele_store_commit(f->s, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stele_store_close(f->s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static json_t *list(fixture *f, const char *filter, const char *sort,
                    bool desc, int page, int size, stele_err *err)
{
    stele_filter flt[2];
    char buf[2][128];
    size_t n = 0;
    if (filter) {
        /* one or two filters separated by ';' */
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

static const char *item_id(json_t *page, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(page, "items"), i),
                        "id"));
}

static void test_list_filters_sorts_and_pages(void **state)
{
    fixture *f = *state;
    stele_err err = {0};
    json_t *p = list(f, "owner=alice;balance>=100", "balance", true, 1, 3,
                     &err);
    assert_non_null(p);
    /* alice: i = 0,3,...,24 ; balance >= 100: i = 12,15,18,21,24 */
    assert_int_equal(json_integer_value(json_object_get(p, "total")), 5);
    assert_string_equal(item_id(p, 0), "a24");
    assert_string_equal(item_id(p, 2), "a18");
    json_decref(p);
    p = list(f, "owner=alice;balance>=100", "balance", true, 2, 3, &err);
    assert_int_equal(json_array_size(json_object_get(p, "items")), 2);
    assert_string_equal(item_id(p, 1), "a12");
    json_decref(p);
    /* past the last page: no items, the total still right */
    p = list(f, "owner=alice", NULL, false, 9, 10, &err);
    assert_int_equal(json_array_size(json_object_get(p, "items")), 0);
    assert_int_equal(json_integer_value(json_object_get(p, "total")), 9);
    json_decref(p);
}

static void test_list_operators(void **state)
{
    fixture *f = *state;
    stele_err err = {0};
    struct {
        const char *filter;
        long long total;
    } cases[] = {{"balance=50", 1},   {"balance!=50", 24}, {"balance<50", 5},
                 {"balance<=50", 6},  {"balance>200", 4},  {"id^=a1", 10},
                 {"owner^=ca", 8},    {"rate>=2.0", 5},    {"owner=nobody", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *p = list(f, cases[i].filter, NULL, false, 1, 100, &err);
        if (!p)
            fail_msg("%s: %s", cases[i].filter, err.msg);
        if (json_integer_value(json_object_get(p, "total")) != cases[i].total)
            fail_msg("%s: total %lld, expected %lld", cases[i].filter,
                     (long long)json_integer_value(json_object_get(p, "total")),
                     cases[i].total);
        json_decref(p);
    }
}

static void test_list_refuses_undeclared_columns_and_bad_values(void **state)
{
    fixture *f = *state;
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
    char bad[] = "balance";
    stele_filter flt;
    assert_int_not_equal(stele_filter_parse(bad, &flt, &err), 0);
}

static void test_list_values_are_bound_not_spliced(void **state)
{
    fixture *f = *state;
    stele_err err = {0};
    json_t *p = list(f, "owner=x' OR '1'='1", NULL, false, 1, 100, &err);
    assert_non_null(p);
    assert_int_equal(json_integer_value(json_object_get(p, "total")), 0);
    json_decref(p);
    /* a LIKE wildcard in a prefix is a plain character */
    p = list(f, "owner^=%", NULL, false, 1, 100, &err);
    assert_int_equal(json_integer_value(json_object_get(p, "total")), 0);
    json_decref(p);
}

static void test_rollback_discards_writes_and_checkpoint(void **state)
{
    fixture *f = *state;
    stele_err err = {0};
    int64_t next;
    assert_int_equal(stele_store_begin(f->s, &err), 0);
    assert_int_equal(stele_store_exec(f->s, "DELETE FROM accounts", NULL, 0,
                                      &err),
                     0);
    assert_int_equal(stele_store_checkpoint_set(f->s, "p", "t", 0, 42, &err),
                     0);
    stele_store_rollback(f->s);
    assert_int_equal(stele_store_checkpoint_get(f->s, "p", "t", 0, &next,
                                                &err),
                     0);
    assert_int_equal(next, 0);
    json_t *p = list(f, NULL, NULL, false, 1, 1, &err);
    assert_int_equal(json_integer_value(json_object_get(p, "total")), 25);
    json_decref(p);

    assert_int_equal(stele_store_begin(f->s, &err), 0);
    assert_int_equal(stele_store_checkpoint_set(f->s, "p", "t", 0, 42, &err),
                     0);
    assert_int_equal(stele_store_commit(f->s, &err), 0);
    assert_int_equal(stele_store_checkpoint_get(f->s, "p", "t", 0, &next,
                                                &err),
                     0);
    assert_int_equal(next, 42);
    assert_int_equal(stele_store_checkpoints_clear(f->s, "p", &err), 0);
    assert_int_equal(stele_store_checkpoint_get(f->s, "p", "t", 0, &next,
                                                &err),
                     0);
    assert_int_equal(next, 0);
}

static void test_projector_versions_and_drop(void **state)
{
    fixture *f = *state;
    stele_err err = {0};
    int v;
    assert_int_equal(stele_store_projector_version(f->s, "p", &v, &err), 0);
    assert_int_equal(v, -1);
    assert_int_equal(stele_store_projector_set_version(f->s, "p", 3, &err), 0);
    assert_int_equal(stele_store_projector_version(f->s, "p", &v, &err), 0);
    assert_int_equal(v, 3);
    assert_int_equal(stele_store_table_drop(f->s, "accounts", &err), 0);
    assert_null(list(f, NULL, NULL, false, 1, 1, &err));
    assert_int_not_equal(stele_store_table_drop(f->s, "x; DROP", &err), 0);
}

/* Only columns marked INDEX get an index: FILTER and SORT alone do not. */
static void test_indexes_only_where_asked(void **state)
{
    fixture *f = *state;
    stele_err err = {0};
    json_t *rows = json_array();
    assert_int_equal(stele_store_select_json(
                         f->s,
                         "SELECT name FROM sqlite_master WHERE type = 'index' "
                         "AND tbl_name = 'accounts' AND sql IS NOT NULL "
                         "ORDER BY name",
                         NULL, 0, rows, &err),
                     0);
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(rows, 0), "name")),
        "accounts_owner");
    json_decref(rows);
    /* fillfactor is PostgreSQL's */
    assert_int_equal(stele_store_postgres_fillfactor(f->s, 90, &err),
                     STELE_EINVAL);
}

static void test_bad_sql_is_an_error_not_a_crash(void **state)
{
    fixture *f = *state;
    stele_err err = {0};
    assert_int_equal(stele_store_exec(f->s, "INSERT INTO nope VALUES(1)",
                                      NULL, 0, &err),
                     STELE_EINVAL);
    assert_non_null(strstr(err.msg, "nope"));
    stele_param p[3] = {STELE_P_INT(1), STELE_P_INT(2), STELE_P_INT(3)};
    assert_int_not_equal(
        stele_store_exec(f->s, "SELECT ?", p, 3, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_list_filters_sorts_and_pages),
        T(test_list_operators),
        T(test_list_refuses_undeclared_columns_and_bad_values),
        T(test_list_values_are_bound_not_spliced),
        T(test_indexes_only_where_asked),
        T(test_rollback_discards_writes_and_checkpoint),
        T(test_projector_versions_and_drop),
        T(test_bad_sql_is_an_error_not_a_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
