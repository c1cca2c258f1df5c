/*
 * bench_list — the generic list query deep in a large read model: a page
 * by number (OFFSET) against the same page by cursor (keyset), and the
 * cost of the total, on SQLite and on PostgreSQL, through stele_store_list.
 *
 *   bench_list [ROWS] [PAGE_SIZE]        defaults: 1000000 20
 *
 * The table is a balances-like read model (account_id KEY, owner INDEX,
 * balance SORT+INDEX), filled with ROWS rows by one INSERT ... SELECT.
 * Each line is the median of 5 runs of one list call:
 *
 *   first page        page 1, sorted by balance, with the total
 *   deep, offset      the page 90% into the table by page number (total
 *                     left out), what paging by number costs there
 *   deep, cursor      the same page by the cursor of the page before
 *   total only        the count the first line includes
 *
 * PostgreSQL must be up (scripts/pg-start.sh, 127.0.0.1:5433) for its
 * half; the bench makes its own database and drops it.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "store/store.h"

#define SERVER "host=127.0.0.1 port=5433 user=postgres"
#define RUNS 5

static const stele_column_def cols[] = {
    {"account_id", STELE_COL_TEXT, STELE_COL_KEY},
    {"owner", STELE_COL_TEXT, STELE_COL_FILTER | STELE_COL_INDEX},
    {"balance", STELE_COL_INT,
     STELE_COL_FILTER | STELE_COL_SORT | STELE_COL_INDEX},
};
static const stele_table_def table = {"balances", cols, 3};

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_list: %s: %s\n", what, why ? why : "");
    exit(1);
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The median time of RUNS calls of the list query req, in ms; *out (when
 * not NULL) gets the last answer. */
static double timed(stele_store *s, const stele_list_request *req, json_t **out)
{
    int64_t t[RUNS];
    for (int i = 0; i < RUNS; i++) {
        json_t *page = NULL;
        stele_err err = {0};
        int64_t t0 = stele_mono_ns();
        if (stele_store_list(s, &table, req, &page, &err) != 0)
            die("list", err.msg);
        t[i] = stele_mono_ns() - t0;
        if (out && i == RUNS - 1)
            *out = page;
        else
            json_decref(page);
    }
    qsort(t, RUNS, sizeof *t, cmp);
    return (double)t[RUNS / 2] / 1e6;
}

/* rows rows in one INSERT ... SELECT; select_rows is the backend's
 * spelling of the query that makes them from a series 1..rows as i. */
static void fill(stele_store *s, long rows, const char *select_rows)
{
    stele_err err = {0};
    char sql[512];
    if (stele_store_table_create(s, &table, &err) != 0)
        die("create", err.msg);
    snprintf(sql, sizeof sql,
             "INSERT INTO balances(account_id, owner, balance) %s",
             select_rows);
    int64_t t0 = stele_mono_ns();
    if (stele_store_exec(s, sql, NULL, 0, &err) != 0 ||
        stele_store_exec(s, "ANALYZE balances", NULL, 0, &err) != 0)
        die("fill", err.msg);
    printf("  filled %ld rows in %.1f s\n", rows,
           (double)(stele_mono_ns() - t0) / 1e9);
}

static void measure(const char *backend, stele_store *s, long rows,
                    long page_size)
{
    printf("%s, %ld rows, pages of %ld sorted by balance:\n", backend, rows,
           page_size);
    long deep = rows / page_size * 9 / 10; /* the page 90% in */
    stele_list_request first = {
        .sort = "balance", .page = 1, .page_size = page_size};
    stele_list_request before = {.sort = "balance",
                                 .page = deep - 1,
                                 .page_size = page_size,
                                 .no_total = true};
    stele_list_request offset = before;
    offset.page = deep;
    stele_list_request no_total = first;
    no_total.no_total = true;

    double t_first = timed(s, &first, NULL);
    double t_first_nt = timed(s, &no_total, NULL);
    json_t *prev = NULL, *by_offset = NULL, *by_cursor = NULL;
    timed(s, &before, &prev);
    double t_offset = timed(s, &offset, &by_offset);
    stele_list_request cursor = {
        .sort = "balance",
        .page = 1,
        .page_size = page_size,
        .after = json_string_value(json_object_get(prev, "next"))};
    double t_cursor = timed(s, &cursor, &by_cursor);
    if (!json_equal(json_object_get(by_offset, "items"),
                    json_object_get(by_cursor, "items")))
        die("check", "the page by cursor differs from the page by number");
    printf("  %-28s %10.3f ms\n", "first page, with total", t_first);
    printf("  %-28s %10.3f ms\n", "first page, no total", t_first_nt);
    printf("  %-28s %10.3f ms   (page %ld)\n", "deep, by page number", t_offset,
           deep);
    printf("  %-28s %10.3f ms   (the same rows)\n", "deep, by cursor",
           t_cursor);
    printf("  %-28s %10.1f x\n", "offset / cursor", t_offset / t_cursor);
    json_decref(prev);
    json_decref(by_offset);
    json_decref(by_cursor);
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

int main(int argc, char **argv)
{
    long rows = argc > 1 ? atol(argv[1]) : 1000000;
    long page_size = argc > 2 ? atol(argv[2]) : 20;
    if (rows < 100 || page_size < 1 || page_size > 1000)
        die("usage", "bench_list [ROWS >= 100] [PAGE_SIZE 1..1000]");

    char dir[] = "/tmp/stele-bench-list-XXXXXX", path[64];
    if (!mkdtemp(dir))
        die("mkdtemp", dir);
    snprintf(path, sizeof path, "%s/rm.db", dir);
    stele_store *s;
    stele_err err = {0};
    if (stele_store_open_sqlite(path, &s, &err) != 0)
        die("sqlite", err.msg);
    char select[320];
    snprintf(select, sizeof select,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
             "WHERE i < %ld) SELECT printf('acc-%%07d', i), 'o' || (i %% "
             "1000), (i * 7919) %% 100000 FROM n",
             rows);
    fill(s, rows, select);
    measure("SQLite", s, rows, page_size);
    stele_store_close(s);
    unlink(path);
    rmdir(dir);

    PGconn *admin = PQconnectdb(SERVER " dbname=postgres connect_timeout=3");
    if (PQstatus(admin) != CONNECTION_OK) {
        printf("PostgreSQL: not running on 127.0.0.1:5433 "
               "(scripts/pg-start.sh), skipped\n");
        PQfinish(admin);
        return 0;
    }
    PQsetNoticeProcessor(admin, quiet, NULL);
    PQclear(PQexec(admin, "DROP DATABASE IF EXISTS stele_bench_list"));
    PQclear(PQexec(admin, "CREATE DATABASE stele_bench_list"));
    if (stele_store_open_postgres(SERVER " dbname=stele_bench_list", &s,
                                  &err) != 0)
        die("postgres", err.msg);
    snprintf(select, sizeof select,
             "SELECT 'acc-' || lpad(i::text, 7, '0'), 'o' || (i %% 1000), "
             "(i::bigint * 7919) %% 100000 FROM generate_series(1, %ld) AS "
             "g(i)",
             rows);
    fill(s, rows, select);
    measure("PostgreSQL", s, rows, page_size);
    stele_store_close(s);
    PQclear(PQexec(admin, "DROP DATABASE stele_bench_list WITH (FORCE)"));
    PQfinish(admin);
    return 0;
}
