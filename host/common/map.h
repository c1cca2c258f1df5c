/* map.h — a hash map from byte-string keys to pointers (open addressing,
 * linear probing). The map copies keys; values are the caller's. */
#ifndef STELE_COMMON_MAP_H
#define STELE_COMMON_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct stele_map stele_map;

stele_map *stele_map_new(void);
/* Frees the map and its key copies; calls free_value on each value if set. */
void stele_map_free(stele_map *m, void (*free_value)(void *));
/* Returns the value for key, or NULL. */
void *stele_map_get(const stele_map *m, const void *key, size_t len);
/* Sets key to value; returns the previous value (or NULL) in *old if old is
 * not NULL. Returns 0, or STELE_ENOMEM. */
int stele_map_put(stele_map *m, const void *key, size_t len, void *value,
                  void **old);
/* Removes key; returns its value or NULL. */
void *stele_map_del(stele_map *m, const void *key, size_t len);
size_t stele_map_count(const stele_map *m);
/* Calls fn for every entry; stops when fn returns non-zero and returns it. */
int stele_map_each(const stele_map *m,
                   int (*fn)(void *opaque, const void *key, size_t len,
                             void *value),
                   void *opaque);
/* Removes every entry (calling free_value if set), keeping capacity. */
void stele_map_clear(stele_map *m, void (*free_value)(void *));

static inline void *stele_map_gets(const stele_map *m, const char *key);

#include <string.h>
static inline void *stele_map_gets(const stele_map *m, const char *key)
{
    return stele_map_get(m, key, strlen(key));
}

#endif
