/*
 * log_pg_evict.h — test_log_pg's tests of max_poll_interval_ms (members
 * that stop polling are taken out of their group).
 */
#ifndef STELE_TESTS_LOG_PG_EVICT_H
#define STELE_TESTS_LOG_PG_EVICT_H

/* Runs them on the database of conninfo; the number that failed. */
int log_pg_evict_run(const char *conninfo);

#endif
