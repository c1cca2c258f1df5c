/*
 * log_conformance_int.h — what the files of the log conformance suite
 * share: the test context, the helpers, and each file's tests.
 */
#ifndef STELE_TEST_LOG_CONFORMANCE_INT_H
#define STELE_TEST_LOG_CONFORMANCE_INT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log_conformance.h"

extern const log_conformance_backend *lc_backend;

typedef struct lc_ctx {
    void *fixture;
    stele_log *log;
    char prefix[48];
    char names[8][128]; /* ring of topic names for lc_name() */
    unsigned next_name;
} lc_ctx;

/* The test's own name for topic base: unique per test and process. */
const char *lc_name(lc_ctx *c, const char *base);

void lc_assert_value(const stele_log_record *r, const char *want);
/* off comes after prev: by one on dense_offsets backends. */
void lc_assert_offset_after(int64_t prev, int64_t off);
int64_t lc_end_of(stele_log *log, const char *topic, int32_t part);
stele_log_batch *lc_read_all(stele_log *log, const char *topic, int32_t part);
/* Polls until the consumer has an assignment (or the backend's wait is
 * over). Only for consumers whose topics are still empty. */
void lc_wait_assigned(stele_log_consumer *cons);

typedef struct lc_seen {
    char topic[128];
    int32_t partition;
    int64_t offset;
    char value[32];
} lc_seen;

/* Polls until n records arrived; copies them into out. */
void lc_poll_n(stele_log_consumer *cons, size_t n, size_t max, lc_seen *out);

/* log_conformance_compacted.c */
void test_compacted_read_returns_latest_per_key_in_offset_order(void **state);
void test_compacted_tombstone_deletes_key(void **state);
void test_delete_before_drops_only_the_oldest_records(void **state);
void test_delete_before_goes_a_chunk_at_a_time(void **state);
void test_delete_before_forgets_old_keys_of_a_compacted_topic(void **state);

/* log_conformance_checksums.c */
void test_a_byte_changed_in_a_stored_record_is_a_checksum_mismatch(
    void **state);
void test_a_checksum_mismatch_is_found_by_every_read_path(void **state);
void test_a_record_stored_without_checksum_reads_unchecked(void **state);
void test_a_log_from_before_checksums_is_migrated_and_read(void **state);

/* log_conformance_consumers.c */
void test_consumer_is_assigned_every_partition_then_revoked_on_close(
    void **state);
void test_poll_returns_each_partition_in_order(void **state);
void test_seek_and_rewind_move_the_position(void **state);
void test_new_consumer_resumes_at_committed_offsets(void **state);

#endif
