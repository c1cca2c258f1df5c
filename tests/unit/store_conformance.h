/*
 * store_conformance.h — the behaviour every read-model store backend must
 * show, written only against store.h: tables from projector definitions,
 * transactions with checkpoints, projector versions, the generic list
 * query (filters, sort, paging, and what it refuses) and bad SQL. A
 * backend's test program describes how to set up a store for one test and
 * calls store_conformance_run; its own tests use the same fixture.
 */
#ifndef STELE_TEST_STORE_CONFORMANCE_H
#define STELE_TEST_STORE_CONFORMANCE_H

#include <stdbool.h>

#include "store/store.h"

/* The read model every case runs on: accounts(id KEY, owner INDEX,
 * balance, rate, secret NULLABLE); id, owner and balance are filterable
 * and sortable, rate only filterable, secret neither. */
extern const stele_table_def sc_accounts;

/* What a backend's setup leaves in *state starts with this (the suite
 * sees only it); the rest is the backend's own. */
typedef struct sc_fixture {
    stele_store *s; /* open on a database of the test's own */
} sc_fixture;

typedef struct store_conformance_backend {
    const char *name;
    /* cmocka setup and teardown of one test: the store open on a fresh
     * database, accounts created and filled by sc_fill; teardown closes
     * the store and removes the database. */
    int (*setup)(void **state);
    int (*teardown)(void **state);
    /* What the error of a statement on a missing table names besides the
     * table (PostgreSQL's SQLSTATE); NULL: nothing more. */
    const char *missing_table_code;
} store_conformance_backend;

/* Creates accounts in s and writes its 25 rows in one transaction: id
 * a00..a24, owner alice, bob, carol by i % 3, balance 10 * i, rate
 * i / 10. Fails the running test on an error. */
void sc_fill(stele_store *s);

/* A list query on accounts. filter: one or two "<column><op><value>"
 * separated by ';', or NULL. The page (the caller's), or NULL with err
 * filled when the store or the filter parser refuses. */
json_t *sc_list(stele_store *s, const char *filter, const char *sort, bool desc,
                int page, int size, stele_err *err);
/* A page's "total", and column col of its item i as a string. */
long long sc_total(json_t *page);
const char *sc_item_str(json_t *page, size_t i, const char *col);

/* Runs the suite as one cmocka group; returns the number of failures. */
int store_conformance_run(const store_conformance_backend *backend);

#endif
