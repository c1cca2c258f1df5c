/*
 * common_kafka.h — the Kafka broker the integration tests run against:
 * whatever answers on 127.0.0.1:9092 (or STELE_KAFKA_BOOTSTRAP), else a
 * scratch broker that scripts/kafka-start.sh --fresh starts in
 * STELE_TEST_KAFKA_DIR (/tmp/stele-kafka-test), without the topics of
 * earlier runs. A broker restarts in minutes when it holds the thousands
 * of partitions that runs leave behind, so every program also deletes the
 * topics it made (ckt_delete_topics).
 *
 * Nothing here asserts: a failure returns -1 or false with the reason on
 * stderr.
 */
#ifndef STELE_TESTS_COMMON_KAFKA_H
#define STELE_TESTS_COMMON_KAFKA_H

#include <stdbool.h>
#include <stddef.h>

/* The bootstrap servers of the test broker. */
const char *ckt_bootstrap(void);
/* Makes sure a broker answers, starting the scratch broker if none does. */
int ckt_ensure_broker(void);
/* The shell command that stops the broker and starts it again with its
 * data after down_s seconds, through the scripts, in its state dir; NULL
 * when no broker of the scripts runs (one started some other way cannot
 * be restarted by the tests). */
const char *ckt_restart_command(int down_s);
/* The pid of the broker the scripts started; 0 when none runs. */
long ckt_broker_pid(void);
/* Deletes every topic whose name starts with prefix; returns how many, or
 * -1 when the broker could not be asked. */
int ckt_delete_topics(const char *prefix);

/* The value of a topic's config key, as the broker describes it, into
 * out; -1 when it cannot be read. */
int ckt_topic_config(const char *topic, const char *key, char *out,
                     size_t size);

#endif
