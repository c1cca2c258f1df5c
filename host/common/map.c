#include "map.h"

#include <stdlib.h>
#include <string.h>

#include <stele/stele.h>

#define TOMBSTONE ((char *)1)

typedef struct slot {
    char *key; /* NULL: empty; TOMBSTONE: deleted */
    size_t len;
    uint64_t hash;
    void *value;
} slot;

struct stele_map {
    slot *slots;
    size_t cap;   /* power of two */
    size_t count; /* live entries */
    size_t used;  /* live + tombstones */
};

static uint64_t hash_bytes(const void *key, size_t len)
{
    /* FNV-1a, then a final mix so low bits are well distributed. */
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

stele_map *stele_map_new(void)
{
    stele_map *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap = 16;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void stele_map_clear(stele_map *m, void (*free_value)(void *))
{
    for (size_t i = 0; i < m->cap; i++) {
        slot *s = &m->slots[i];
        if (s->key && s->key != TOMBSTONE) {
            if (free_value)
                free_value(s->value);
            free(s->key);
        }
        s->key = NULL;
    }
    m->count = m->used = 0;
}

void stele_map_free(stele_map *m, void (*free_value)(void *))
{
    if (!m)
        return;
    stele_map_clear(m, free_value);
    free(m->slots);
    free(m);
}

static slot *find(const stele_map *m, const void *key, size_t len, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        slot *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (s->key != TOMBSTONE && s->hash == h && s->len == len &&
            memcmp(s->key, key, len) == 0)
            return s;
    }
}

void *stele_map_get(const stele_map *m, const void *key, size_t len)
{
    slot *s = find(m, key, len, hash_bytes(key, len));
    return s ? s->value : NULL;
}

static int grow(stele_map *m)
{
    size_t ncap = m->count * 4 > m->cap ? m->cap * 2 : m->cap;
    slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return STELE_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        slot *s = &m->slots[i];
        if (!s->key || s->key == TOMBSTONE)
            continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->used = m->count;
    return 0;
}

int stele_map_put(stele_map *m, const void *key, size_t len, void *value,
                  void **old)
{
    uint64_t h = hash_bytes(key, len);
    slot *s = find(m, key, len, h);
    if (old)
        *old = s ? s->value : NULL;
    if (s) {
        s->value = value;
        return 0;
    }
    if ((m->used + 1) * 4 > m->cap * 3 && grow(m) != 0)
        return STELE_ENOMEM;
    char *k = malloc(len ? len : 1);
    if (!k)
        return STELE_ENOMEM;
    memcpy(k, key, len);
    size_t mask = m->cap - 1, i = h & mask;
    while (m->slots[i].key && m->slots[i].key != TOMBSTONE)
        i = (i + 1) & mask;
    if (!m->slots[i].key)
        m->used++;
    m->slots[i] = (slot){k, len, h, value};
    m->count++;
    return 0;
}

void *stele_map_del(stele_map *m, const void *key, size_t len)
{
    slot *s = find(m, key, len, hash_bytes(key, len));
    if (!s)
        return NULL;
    void *v = s->value;
    free(s->key);
    s->key = TOMBSTONE;
    m->count--;
    return v;
}

size_t stele_map_count(const stele_map *m)
{
    return m->count;
}

int stele_map_each(const stele_map *m,
                   int (*fn)(void *, const void *, size_t, void *),
                   void *opaque)
{
    for (size_t i = 0; i < m->cap; i++) {
        slot *s = &m->slots[i];
        if (!s->key || s->key == TOMBSTONE)
            continue;
        int rc = fn(opaque, s->key, s->len, s->value);
        if (rc)
            return rc;
    }
    return 0;
}
