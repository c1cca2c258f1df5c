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

/* A list query on table t: req with the filters of filter (one or two
 * "<column><op><value>" separated by ';', or NULL). NULL with err filled
 * when the store or the filter parser refuses. */
static json_t *list_on(stele_store *s, const stele_table_def *t,
                       const char *filter, stele_list_request req,
                       stele_err *err)
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
    req.filters = flt;
    req.n_filters = n;
    json_t *out = NULL;
    if (stele_store_list(s, t, &req, &out, err) != 0)
        return NULL;
    return out;
}

json_t *sc_list(stele_store *s, const char *filter, const char *sort, bool desc,
                int page, int size, stele_err *err)
{
    stele_list_request req = {
        .sort = sort, .descending = desc, .page = page, .page_size = size};
    return list_on(s, &sc_accounts, filter, req, err);
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
    /* (page - 1) * size past INT64_MAX: it wrapped around to page 1 */
    stele_list_request far = {.page = 461168601842738792LL, .page_size = 20};
    assert_null(list_on(s, &sc_accounts, NULL, far, &err));
    assert_non_null(strstr(err.msg, "is past any table"));
    far.page = INT64_MAX / 20 + 1; /* the last page that fits: empty */
    json_t *last = list_on(s, &sc_accounts, NULL, far, &err);
    assert_non_null(last);
    assert_int_equal(json_array_size(json_object_get(last, "items")), 0);
    json_decref(last);
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

typedef struct parked_seen {
    char list[512];
} parked_seen;

static int note_parked(void *opaque, const char *topic, int32_t partition,
                       const void *key, size_t key_len, int64_t offset,
                       const char *reason)
{
    parked_seen *ps = opaque;
    size_t at = strlen(ps->list);
    char hex[64] = "";
    for (size_t i = 0; i < key_len && i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", ((const unsigned char *)key)[i]);
    snprintf(ps->list + at, sizeof ps->list - at, "%s/%d/%s/%lld/%s;", topic,
             (int)partition, hex, (long long)offset, reason);
    return 0;
}

/* Parked aggregates: kept by (projector, topic, key), the first kept,
 * any bytes as a key (a raw producer's), removed one by one or with the
 * checkpoints, and undone by a rollback. */
static void test_parked_aggregates(void **state)
{
    stele_store *s = store_of(state);
    stele_err err = {0};
    assert_int_equal(stele_store_begin(s, &err), 0);
    assert_int_equal(
        stele_store_parked_add(s, "p", "t", 1, "a\xff", 2, 7, "bad", &err), 0);
    assert_int_equal(
        stele_store_parked_add(s, "p", "t", 1, "a\xff", 2, 9, "later", &err),
        0);
    assert_int_equal(
        stele_store_parked_add(s, "p", "t", 0, "b", 1, 3, "worse", &err), 0);
    assert_int_equal(
        stele_store_parked_add(s, "q", "t", 0, "b", 1, 4, "other", &err), 0);
    assert_int_equal(stele_store_commit(s, &err), 0);
    parked_seen ps = {""};
    assert_int_equal(stele_store_parked_list(s, "p", note_parked, &ps, &err),
                     0);
    assert_string_equal(ps.list, "t/0/62/3/worse;t/1/61ff/7/bad;");

    assert_int_equal(stele_store_begin(s, &err), 0);
    assert_int_equal(stele_store_parked_remove(s, "p", "t", "b", 1, &err), 0);
    stele_store_rollback(s);
    ps.list[0] = '\0';
    assert_int_equal(stele_store_parked_list(s, "p", note_parked, &ps, &err),
                     0);
    assert_string_equal(ps.list, "t/0/62/3/worse;t/1/61ff/7/bad;");
    assert_int_equal(stele_store_parked_remove(s, "p", "t", "b", 1, &err), 0);
    ps.list[0] = '\0';
    assert_int_equal(stele_store_parked_list(s, "p", note_parked, &ps, &err),
                     0);
    assert_string_equal(ps.list, "t/1/61ff/7/bad;");
    assert_int_equal(stele_store_checkpoints_clear(s, "p", &err), 0);
    ps.list[0] = '\0';
    assert_int_equal(stele_store_parked_list(s, "p", note_parked, &ps, &err),
                     0);
    assert_string_equal(ps.list, "");
    assert_int_equal(stele_store_parked_list(s, "q", note_parked, &ps, &err),
                     0);
    assert_string_equal(ps.list, "t/0/62/4/other;");
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

/* ------------------------------------------------------------------ */
/* Paging by cursor                                                     */

/* ledger(branch, seq) KEY: two key columns; day nullable, with ties;
 * amount with ties. */
static const stele_column_def ledger_cols[] = {
    {"branch", STELE_COL_TEXT, STELE_COL_KEY | STELE_COL_FILTER},
    {"seq", STELE_COL_INT, STELE_COL_KEY},
    {"day", STELE_COL_INT,
     STELE_COL_SORT | STELE_COL_FILTER | STELE_COL_NULLABLE},
    {"amount", STELE_COL_REAL, STELE_COL_SORT},
};
static const stele_table_def ledger = {"ledger", ledger_cols, 4};
#define LEDGER_ROWS 23

static void fill_ledger(stele_store *s)
{
    stele_err err = {0};
    if (stele_store_table_create(s, &ledger, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(stele_store_begin(s, &err), 0);
    for (int i = 0; i < LEDGER_ROWS; i++) {
        const char *branch = i % 2 ? "north" : "south";
        stele_param p[] = {STELE_P_TEXT(branch, strlen(branch)),
                           STELE_P_INT(i / 2),
                           i % 4 == 0 ? STELE_P_NULL() : STELE_P_INT(i % 5),
                           STELE_P_REAL((i % 3) * 1.5)};
        assert_int_equal(stele_store_exec(s,
                                          "INSERT INTO ledger(branch, seq, "
                                          "day, amount) VALUES(?, ?, ?, ?)",
                                          p, 4, &err),
                         0);
    }
    if (stele_store_commit(s, &err) != 0)
        fail_msg("%s", err.msg);
}

static json_t *ledger_list(stele_store *s, const char *sort, bool desc,
                           int page, int size, const char *after, bool no_total,
                           const char *filter, stele_err *err)
{
    stele_list_request req = {.sort = sort,
                              .descending = desc,
                              .page = page,
                              .page_size = size,
                              .after = after,
                              .no_total = no_total};
    return list_on(s, &ledger, filter, req, err);
}

/* "branch/seq" of every item of page appended to keys. */
static void collect(json_t *page, char keys[][16], size_t *n)
{
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(page, "items"), i, it)
    {
        assert_true(*n < LEDGER_ROWS + 1);
        snprintf(keys[(*n)++], 16, "%s/%lld",
                 json_string_value(json_object_get(it, "branch")),
                 (long long)json_integer_value(json_object_get(it, "seq")));
    }
}

/* Following "next" from the first page visits every row once, in the
 * order of one page holding them all, for every sort, direction and page
 * size; the last page's next is null. */
static void test_cursor_pages_visit_every_row_once_in_order(void **state)
{
    stele_store *s = store_of(state);
    fill_ledger(s);
    const char *sorts[] = {NULL, "day", "amount"};
    stele_err err = {0};
    for (size_t si = 0; si < 3; si++)
        for (int desc = 0; desc < 2; desc++) {
            char want[LEDGER_ROWS + 1][16], got[LEDGER_ROWS + 1][16];
            size_t nw = 0, ng = 0;
            json_t *all = ledger_list(s, sorts[si], desc, 1, 100, NULL, false,
                                      NULL, &err);
            if (!all)
                fail_msg("%s", err.msg);
            collect(all, want, &nw);
            assert_int_equal(nw, LEDGER_ROWS);
            assert_true(json_is_null(json_object_get(all, "next")));
            json_decref(all);
            for (int size = 1; size <= 5; size += 2) {
                ng = 0;
                json_t *page = ledger_list(s, sorts[si], desc, 1, size, NULL,
                                           false, NULL, &err);
                int pages = 0;
                while (page) {
                    collect(page, got, &ng);
                    pages++;
                    const char *next =
                        json_string_value(json_object_get(page, "next"));
                    json_t *following =
                        next ? ledger_list(s, sorts[si], desc, 1, size, next,
                                           false, NULL, &err)
                             : NULL;
                    if (next && !following)
                        fail_msg("after %s: %s", next, err.msg);
                    if (following) { /* a cursor's page has no number */
                        assert_null(json_object_get(following, "page"));
                        assert_null(json_object_get(following, "total"));
                    }
                    json_decref(page);
                    page = following;
                }
                assert_int_equal(ng, LEDGER_ROWS);
                assert_int_equal(pages, (LEDGER_ROWS + size - 1) / size);
                for (size_t i = 0; i < ng; i++)
                    if (strcmp(got[i], want[i]) != 0)
                        fail_msg("sort %s %s, pages of %d: row %zu is %s, "
                                 "expected %s",
                                 sorts[si] ? sorts[si] : "(key)",
                                 desc ? "desc" : "asc", size, i, got[i],
                                 want[i]);
            }
        }
}

/* NULL is the largest value, on every backend: last ascending, first
 * descending; ties go by the key in the same direction. */
static void test_nulls_sort_last_ascending_first_descending(void **state)
{
    stele_store *s = store_of(state);
    fill_ledger(s);
    stele_err err = {0};
    json_t *asc = ledger_list(s, "day", false, 1, 100, NULL, true, NULL, &err);
    json_t *desc = ledger_list(s, "day", true, 1, 100, NULL, true, NULL, &err);
    assert_non_null(asc);
    assert_non_null(desc);
    json_t *ai = json_object_get(asc, "items"),
           *di = json_object_get(desc, "items");
    /* rows 0, 4, 8, ... 20 have no day: 6 of them */
    for (size_t i = 0; i < LEDGER_ROWS; i++) {
        bool null_a =
            json_is_null(json_object_get(json_array_get(ai, i), "day"));
        bool null_d =
            json_is_null(json_object_get(json_array_get(di, i), "day"));
        assert_int_equal(null_a, i >= LEDGER_ROWS - 6);
        assert_int_equal(null_d, i < 6);
    }
    /* the first of the ties at day 0, ascending: the smallest key */
    json_t *first = json_array_get(ai, 0);
    assert_int_equal(json_integer_value(json_object_get(first, "day")), 0);
    assert_string_equal(json_string_value(json_object_get(first, "branch")),
                        "north");
    assert_null(json_object_get(asc, "total")); /* no_total */
    json_decref(asc);
    json_decref(desc);
}

/* A cursor keeps its place when the filter changes; it is refused for
 * another sort or direction, with a page number, and when it is not one. */
static void test_cursors_that_do_not_fit_are_refused(void **state)
{
    stele_store *s = store_of(state);
    fill_ledger(s);
    stele_err err = {0};
    json_t *p = ledger_list(s, "amount", false, 1, 3, NULL, false, NULL, &err);
    assert_non_null(p);
    assert_int_equal(json_integer_value(json_object_get(p, "total")),
                     LEDGER_ROWS);
    char next[512];
    snprintf(next, sizeof next, "%s",
             json_string_value(json_object_get(p, "next")));
    json_decref(p);
    p = ledger_list(s, "amount", false, 1, 100, next, false, "branch=north",
                    &err);
    assert_non_null(p);
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(p, "items"), i, it) assert_string_equal(
        json_string_value(json_object_get(it, "branch")), "north");
    json_decref(p);

    assert_null(ledger_list(s, "day", false, 1, 3, next, false, NULL, &err));
    assert_int_equal(err.code, STELE_EINVAL);
    assert_non_null(strstr(err.msg, "another order"));
    assert_null(ledger_list(s, "amount", true, 1, 3, next, false, NULL, &err));
    assert_non_null(strstr(err.msg, "another order"));
    assert_null(ledger_list(s, "amount", false, 2, 3, next, false, NULL, &err));
    assert_non_null(strstr(err.msg, "do not go together"));
    /* not base64url; {}; {"s":"amount","d":false,"v":[1]} */
    const char *bad[] = {"x", "!!!!", "e30",
                         "eyJzIjoiYW1vdW50IiwiZCI6ZmFsc2UsInYiOlsxXX0"};
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
        assert_null(
            ledger_list(s, "amount", false, 1, 3, bad[b], false, NULL, &err));
        assert_int_equal(err.code, STELE_EINVAL);
        assert_non_null(strstr(err.msg, "is not a cursor of this list"));
    }
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
        CT(test_parked_aggregates),
        CT(test_bad_sql_is_an_error_not_a_crash),
        CT(test_cursor_pages_visit_every_row_once_in_order),
        CT(test_nulls_sort_last_ascending_first_descending),
        CT(test_cursors_that_do_not_fit_are_refused),
    };
#undef CT
    char name[64];
    snprintf(name, sizeof name, "store conformance (%s)", b->name);
    return cmocka_run_group_tests_name(name, tests, NULL, NULL);
}
