/* util.h — small pieces shared by host parts: the Kafka-compatible key
 * partitioner, time-sortable ids, clocks. */
#ifndef STELE_COMMON_UTIL_H
#define STELE_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Kafka's murmur2 hash, as the Java client and librdkafka's
 * murmur2_random partitioner compute it, so a key maps to the same
 * partition whichever client wrote it. */
uint32_t stele_murmur2(const void *key, size_t len);

/* The partition of key among n partitions (Kafka's default partitioner). */
int32_t stele_partition_for_key(const void *key, size_t len, int32_t n);

/* Unix time in milliseconds, and a monotonic clock in nanoseconds. */
int64_t stele_now_ms(void);
int64_t stele_mono_ns(void);

#define STELE_ULID_LEN 26
/* Writes a ULID (26 Crockford base32 chars + NUL) into out: 48 bits of
 * millisecond time, 80 random bits, monotonic within a millisecond in this
 * process. Thread-safe. */
void stele_ulid(char out[STELE_ULID_LEN + 1]);

/* Creates the directory that will hold path (mkdir -p of its dirname). */
int stele_mkdir_parent(const char *path);

#endif
