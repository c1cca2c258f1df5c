/* set64.h — a set of 64-bit hashes (open addressing). The engine keeps the
 * hashes of the command ids a partition has answered, so a new command
 * costs no lookup in the results topic; only a hash hit is checked there. */
#ifndef STELE_COMMON_SET64_H
#define STELE_COMMON_SET64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct stele_set64 stele_set64;

stele_set64 *stele_set64_new(void);
void stele_set64_free(stele_set64 *s);
/* 0, or STELE_ENOMEM. */
int stele_set64_add(stele_set64 *s, uint64_t h);
bool stele_set64_has(const stele_set64 *s, uint64_t h);
size_t stele_set64_count(const stele_set64 *s);
/* A 64-bit hash of bytes (FNV-1a with a final mix). */
uint64_t stele_hash64(const void *data, size_t len);

#endif
