/* test_store_pg's fixture and the tests that live in store_pg_faults.c:
 * pipelined batches, their errors, and connection faults. */
#ifndef STELE_TEST_STORE_PG_FAULTS_H
#define STELE_TEST_STORE_PG_FAULTS_H

#include "store/store.h"
#include "store_conformance.h"

typedef struct pgt_fixture {
    sc_fixture sc;  /* first: the suite sees it; sc.s is open on db, with
                       table "accounts" of 25 rows (sc_fill) */
    char *db;       /* this test's database */
    char *conninfo; /* connects to it */
} pgt_fixture;

void test_batch_of_10000_upserts_commits(void **state);
void test_error_mid_batch_fails_commit_and_writes_nothing(void **state);
void test_failed_prepare_in_a_batch_is_prepared_again(void **state);
void test_table_changed_under_a_prepared_select(void **state);
void test_connect_errors_name_the_server_never_the_password(void **state);
void test_empty_conninfo_uses_the_pg_environment(void **state);
void test_server_down_fails_with_retry_until_it_is_back(void **state);
void test_server_stopped_mid_transaction_writes_nothing(void **state);
void test_server_restart_between_transactions(void **state);

#endif
