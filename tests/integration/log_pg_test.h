/*
 * log_pg_test.h — what test_log_pg.c and its helper files share: the
 * run's database and small helpers that assert.
 */
#ifndef STELE_TESTS_LOG_PG_TEST_H
#define STELE_TESTS_LOG_PG_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log_conformance.h"

/* The connection string of the run's database. */
extern char *lpt_conninfo;
/* Its stored records, reached behind the log's back (log_pg_raw.c). */
extern const log_conformance_raw lpt_raw;
void test_hosts_opening_an_old_log_at_once_all_migrate_it(void **state);

/* A name unique to this run and call. */
const char *lpt_uniq(char *buf, size_t n, const char *base);
stele_log *lpt_open_log(void);
size_t lpt_owned(stele_log_consumer *c);
/* Polls (records are not expected) until c owns n partitions; bounded. */
void lpt_poll_until_owns(stele_log_consumer *c, size_t n);
int64_t lpt_mono_ms(void);

typedef struct rebalance_log {
    size_t assigned_n, revoked_n, lost_n;
} rebalance_log;
/* Rebalance callbacks counting into a rebalance_log (the opaque). */
void lpt_on_assigned(void *opaque, stele_log_consumer *c,
                     const stele_topic_partition *tps, size_t n);
void lpt_on_revoked(void *opaque, stele_log_consumer *c,
                    const stele_topic_partition *tps, size_t n, bool lost);

/* log_pg_processes.c: consumer groups shared by processes. */
void test_two_processes_split_partitions_disjointly(void **state);
void test_killed_member_partitions_are_taken_over(void **state);
void test_owner_that_lost_a_partition_cannot_commit_offsets(void **state);

#endif
