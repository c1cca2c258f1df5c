/*
 * fuzz_list.c — the list query's parameters (stele_filter_parse and
 * stele_store_list: filters, sort, direction, page, page size, cursor) on
 * a SQLite read-model table of 25 rows. The input is lines, as the CLI's
 * options: "f:EXPR" a filter, "s:COL" the sort column, "d" descending,
 * "p:N" the page, "n:N" the page size, "a:CURSOR" after, "t" no total.
 * Invariants: a refusal says why; a page holds at most page-size rows, in
 * the order asked for, each matching the text filters; its "next" cursor
 * is accepted for the same query, and that page continues after this one
 * without overlapping it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "store/store.h"

static const stele_column_def cols[] = {
    {"id", STELE_COL_TEXT, STELE_COL_KEY | STELE_COL_FILTER | STELE_COL_SORT},
    {"owner", STELE_COL_TEXT,
     STELE_COL_FILTER | STELE_COL_SORT | STELE_COL_INDEX},
    {"balance", STELE_COL_INT, STELE_COL_FILTER | STELE_COL_SORT},
    {"rate", STELE_COL_REAL, STELE_COL_FILTER | STELE_COL_SORT},
    {"memo", STELE_COL_TEXT,
     STELE_COL_NULLABLE | STELE_COL_FILTER | STELE_COL_SORT},
    {"secret", STELE_COL_TEXT, STELE_COL_NULLABLE},
};
static const stele_table_def accounts = {"accounts", cols, 6};

static char dir[64], path[128];
static stele_store *store;

static void cleanup(void)
{
    stele_store_close(store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    stele_err err = {0};
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/stele-fuzz-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/readmodels.db", dir);
    if (stele_store_open_sqlite(path, &store, &err) ||
        stele_store_table_create(store, &accounts, &err) ||
        stele_store_begin(store, &err))
        goto fail;
    atexit(cleanup);
    static const char *const owners[] = {"alice", "bob", "carol", "b%b_"};
    for (int i = 0; i < 25; i++) {
        char id[16], memo[16];
        snprintf(id, sizeof id, "a%02d", i);
        snprintf(memo, sizeof memo, "m%d", i % 7);
        const char *o = owners[i % 4];
        stele_param p[] = {
            STELE_P_TEXT(id, strlen(id)), STELE_P_TEXT(o, strlen(o)),
            STELE_P_INT((i % 5) * 10 - 20), STELE_P_REAL(i / 10.0),
            i % 3 ? STELE_P_TEXT(memo, strlen(memo)) : STELE_P_NULL()};
        if (stele_store_exec(store,
                             "INSERT INTO accounts(id, owner, balance, rate, "
                             "memo) VALUES(?, ?, ?, ?, ?)",
                             p, 5, &err))
            goto fail;
    }
    if (stele_store_commit(store, &err))
        goto fail;
    return 0;
fail:
    fprintf(stderr, "fuzz_list: %s\n", err.msg);
    abort();
}

#define MAX_LINES 24

typedef struct query {
    stele_filter filters[MAX_LINES];
    stele_list_request req;
} query;

/* <0, 0, >0 as a sorts before, with, after b in ascending order; NULL is
 * the largest value. */
static int compare(const json_t *a, const json_t *b)
{
    if (json_is_null(a) || json_is_null(b))
        return json_is_null(a) - json_is_null(b);
    if (json_is_string(a))
        return strcmp(json_string_value(a), json_string_value(b));
    double x = json_number_value(a), y = json_number_value(b);
    return (x > y) - (x < y);
}

/* The primary key too, so rows with equal sort values are ordered. */
static int row_order(const query *q, const json_t *a, const json_t *b)
{
    int c = 0;
    if (q->req.sort)
        c = compare(json_object_get(a, q->req.sort),
                    json_object_get(b, q->req.sort));
    if (c == 0)
        c = compare(json_object_get(a, "id"), json_object_get(b, "id"));
    return q->req.descending ? -c : c;
}

static void check_page(const query *q, const json_t *page)
{
    json_t *items = json_object_get(page, "items");
    size_t n = json_array_size(items);
    if (!json_is_array(items) || (int64_t)n > q->req.page_size) {
        fprintf(stderr, "%zu items on a page of %lld\n", n,
                (long long)q->req.page_size);
        abort();
    }
    json_t *total = json_object_get(page, "total");
    if ((total != NULL) != (!q->req.after && !q->req.no_total) ||
        (total && json_integer_value(total) < (json_int_t)n))
        abort();
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array_get(items, i);
        if (i && row_order(q, json_array_get(items, i - 1), row) >= 0) {
            fprintf(stderr, "rows %zu and %zu out of order\n", i - 1, i);
            abort();
        }
        for (size_t k = 0; k < q->req.n_filters; k++) {
            const stele_filter *f = &q->req.filters[k];
            json_t *v = json_object_get(row, f->column);
            if (f->op != STELE_OP_EQ && f->op != STELE_OP_PREFIX)
                continue;
            if (!json_is_string(v))
                continue;
            const char *s = json_string_value(v);
            if (f->op == STELE_OP_EQ ? strcmp(s, f->value) != 0
                                     : strncmp(s, f->value, strlen(f->value))) {
                fprintf(stderr, "row %zu: %s '%s' does not match '%s'\n", i,
                        f->column, s, f->value);
                abort();
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    query q = {.req = {.page = 1, .page_size = 10}};
    stele_err err = {0};
    size_t nf = 0;
    int lines = 0;
    for (char *line = text, *nl; line && lines < MAX_LINES;
         line = nl, lines++) {
        if ((nl = strchr(line, '\n')))
            *nl++ = '\0';
        if (!strncmp(line, "f:", 2)) {
            if (stele_filter_parse(line + 2, &q.filters[nf], &err)) {
                if (!err.msg[0])
                    abort();
                goto out;
            }
            nf++;
        } else if (!strncmp(line, "s:", 2)) {
            q.req.sort = line + 2;
        } else if (!strcmp(line, "d")) {
            q.req.descending = true;
        } else if (!strncmp(line, "p:", 2)) {
            q.req.page = strtoll(line + 2, NULL, 10);
        } else if (!strncmp(line, "n:", 2)) {
            q.req.page_size = strtoll(line + 2, NULL, 10);
        } else if (!strncmp(line, "a:", 2)) {
            q.req.after = line + 2;
        } else if (!strcmp(line, "t")) {
            q.req.no_total = true;
        }
    }
    q.req.filters = q.filters;
    q.req.n_filters = nf;

    json_t *page = NULL;
    if (stele_store_list(store, &accounts, &q.req, &page, &err)) {
        if (page || err.code == 0 || !err.msg[0])
            abort();
        if (getenv("STELE_FUZZ_VERBOSE"))
            fprintf(stderr, "refused: %s\n", err.msg);
        goto out;
    }
    check_page(&q, page);
    const char *next = json_string_value(json_object_get(page, "next"));
    if (getenv("STELE_FUZZ_VERBOSE"))
        fprintf(stderr, "page of %zu, next %s\n",
                json_array_size(json_object_get(page, "items")),
                next ? next : "null");
    if (next) {
        query q2 = q;
        q2.req.after = next;
        q2.req.page = 1;
        json_t *page2 = NULL;
        if (stele_store_list(store, &accounts, &q2.req, &page2, &err)) {
            fprintf(stderr, "its own cursor refused: %s\n", err.msg);
            abort();
        }
        check_page(&q2, page2);
        json_t *a = json_object_get(page, "items");
        json_t *b = json_object_get(page2, "items");
        if (json_array_size(b) &&
            row_order(&q, json_array_get(a, json_array_size(a) - 1),
                      json_array_get(b, 0)) >= 0) {
            fprintf(stderr, "the next page does not continue this one\n");
            abort();
        }
        json_decref(page2);
    }
    json_decref(page);
out:
    free(text);
    return 0;
}
