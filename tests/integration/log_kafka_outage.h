/*
 * log_kafka_outage.h — test_log_kafka's broker-outage tests (they restart
 * the broker, so they run last).
 */
#ifndef STELE_TESTS_LOG_KAFKA_OUTAGE_H
#define STELE_TESTS_LOG_KAFKA_OUTAGE_H

/* Runs them; topic names start with prefix. The number that failed. */
int log_kafka_outage_run(const char *bootstrap, const char *prefix);

#endif
