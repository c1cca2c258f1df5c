/*
 * util.c — below the other files of the PostgreSQL log: growing the
 * arrays of a transaction (txn.c) and of its commit (commit.c).
 */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>

int lpg_grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2 / size)
            return -1;
        c *= 2;
    }
    void *q = realloc(*p, c * size);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}
