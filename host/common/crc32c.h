/* crc32c.h — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of iSCSI, ext4 and Kafka's record batches. The SQL logs store
 * one with every record (docs/design.md, "Record checksums"). */
#ifndef STELE_COMMON_CRC32C_H
#define STELE_COMMON_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The CRC-32C of buf[0..len) continued from crc, zlib-style: start with
 * 0, and crc = stele_crc32c(crc, part, n) over consecutive parts gives the
 * CRC of their concatenation. stele_crc32c(0, "123456789", 9) is
 * 0xE3069283. Uses the CPU's crc32 instruction where it has one (SSE4.2
 * on x86-64, chosen at the first call), slicing-by-8 tables otherwise.
 * buf may be NULL when len is 0. Thread-safe.
 */
uint32_t stele_crc32c(uint32_t crc, const void *buf, size_t len);

/* The same by the tables alone, whatever the CPU: for tests and bench. */
uint32_t stele_crc32c_portable(uint32_t crc, const void *buf, size_t len);

/* Whether stele_crc32c uses the CPU's instruction on this machine. */
bool stele_crc32c_hardware(void);

#endif
