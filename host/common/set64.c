#include "set64.h"

#include <stdlib.h>

#include <stele/stele.h>

struct stele_set64 {
    uint64_t *slots; /* 0: empty (a hash of 0 is stored as 1) */
    size_t cap, count;
};

uint64_t stele_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
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

stele_set64 *stele_set64_new(void)
{
    stele_set64 *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cap = 1024;
    if (!(s->slots = calloc(s->cap, sizeof *s->slots))) {
        free(s);
        return NULL;
    }
    return s;
}

void stele_set64_free(stele_set64 *s)
{
    if (s)
        free(s->slots);
    free(s);
}

static void insert(uint64_t *slots, size_t cap, uint64_t h)
{
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1))
        if (slots[i] == 0 || slots[i] == h) {
            slots[i] = h;
            return;
        }
}

int stele_set64_add(stele_set64 *s, uint64_t h)
{
    h = h ? h : 1;
    if (stele_set64_has(s, h))
        return 0;
    if ((s->count + 1) * 4 > s->cap * 3) {
        size_t ncap = s->cap * 2;
        uint64_t *ns = calloc(ncap, sizeof *ns);
        if (!ns)
            return STELE_ENOMEM;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i])
                insert(ns, ncap, s->slots[i]);
        free(s->slots);
        s->slots = ns;
        s->cap = ncap;
    }
    insert(s->slots, s->cap, h);
    s->count++;
    return 0;
}

bool stele_set64_has(const stele_set64 *s, uint64_t h)
{
    h = h ? h : 1;
    for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (s->slots[i] == h)
            return true;
        if (s->slots[i] == 0)
            return false;
    }
}

size_t stele_set64_count(const stele_set64 *s)
{
    return s->count;
}
