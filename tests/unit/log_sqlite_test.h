/*
 * log_sqlite_test.h — what test_log.c and its helper files share: the
 * fixture of a log file in a temp dir, a handle on it per test, and small
 * helpers that assert.
 */
#ifndef STELE_TESTS_LOG_SQLITE_TEST_H
#define STELE_TESTS_LOG_SQLITE_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "log_conformance.h"

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

/* The conformance suite's fixture: a temp dir with the log file. */
int sl_fx_setup(void **out);
int sl_fx_open(void *opaque, stele_log **out, stele_err *err);
void sl_fx_teardown(void *opaque);
/* Its stored records, reached behind the log's back (log_sqlite_raw.c). */
extern const log_conformance_raw sl_raw;

/* SQLite-specific tests: each gets a fixture and an open handle. */
typedef struct ctx {
    fixture *f;
    stele_log *log;
} ctx;

int sl_setup(void **state);
int sl_teardown(void **state);

stele_log_consumer *sl_consumer(stele_log *log, const char *group,
                                const char *topic);
/* One poll that returns at once; the batch's size (and per partition). */
size_t sl_poll_now(stele_log_consumer *cons, size_t max, size_t per_partition[],
                   size_t n_partitions);
size_t sl_assigned(stele_log_consumer *cons);

/* Forks a child that runs fn(path, fd) and _exits with its result; fd is
 * the write end of a pipe the child signals on. */
pid_t sl_spawn(const char *path, int (*fn)(const char *, int), int *read_fd);
int sl_wait_exit(pid_t pid);
void sl_wait_signal(int fd);

/* log_sqlite_kill.c: SIGKILL in the middle of writes. */
void test_sigkill_mid_transaction_leaves_nothing(void **state);
void test_sigkill_during_commit_loop_keeps_transactions_whole(void **state);

#endif
