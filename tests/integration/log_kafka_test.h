/*
 * log_kafka_test.h — what test_log_kafka.c and its helper files share: the
 * broker, the run's name prefix, a handle per test and small helpers that
 * assert.
 */
#ifndef STELE_TESTS_LOG_KAFKA_TEST_H
#define STELE_TESTS_LOG_KAFKA_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log_conformance.h"

extern const char *lkt_bootstrap;
extern char lkt_run_prefix[32]; /* every topic and group name starts so */
extern unsigned lkt_open_counter;
extern char lkt_test_prefix[64]; /* the current test's names start so */

/* A new handle; txn_id NULL gives it a transactional.id of its own. */
int lkt_open_log(const char *txn_id, stele_log **out, stele_err *err);

typedef struct ctx {
    stele_log *log;
    char names[8][128];
    unsigned next_name;
} ctx;

/* The test's name for base (unique to the run and the test). */
const char *lkt_N(ctx *c, const char *base);
int lkt_setup(void **state);
int lkt_teardown(void **state);
size_t lkt_count(stele_log *log, const char *topic, int32_t part);
void lkt_assert_latest(stele_log *log, const char *topic, const char *key,
                       const char *want);

/* log_kafka_groups.c: a group's partitions moving between handles. */
void test_group_rebalance_splits_and_returns_partitions(void **state);
void test_member_that_lost_its_partitions_cannot_commit(void **state);
void test_consumer_outside_the_generation_cannot_commit(void **state);

#endif
