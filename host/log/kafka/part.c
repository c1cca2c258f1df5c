/*
 * part.c — the per-partition state the other files of the Kafka log keep
 * (lk_part), by topic and partition, made on first use.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static size_t part_key(char *buf, size_t size, const char *topic,
                       int32_t partition)
{
    size_t n = strlen(topic);
    if (n + 1 + sizeof partition > size)
        return 0;
    memcpy(buf, topic, n + 1);
    memcpy(buf + n + 1, &partition, sizeof partition);
    return n + 1 + sizeof partition;
}

lk_part *lk_part_find(lk_log *l, const char *topic, int32_t partition)
{
    char key[300];
    size_t n = part_key(key, sizeof key, topic, partition);
    return n ? stele_map_get(l->parts, key, n) : NULL;
}

int lk_part_get(lk_log *l, const lk_topic *t, int32_t partition, lk_part **out,
                stele_err *err)
{
    char key[300];
    size_t n = part_key(key, sizeof key, t->name, partition);
    lk_part *p = n ? stele_map_get(l->parts, key, n) : NULL;
    if (!p) {
        if (!n || !(p = calloc(1, sizeof *p)))
            return stele_err_set(err, STELE_ENOMEM, "%s[%d]", t->name,
                                 partition);
        p->topic = t;
        p->partition = partition;
        p->txn_last = -1;
        if (stele_map_put(l->parts, key, n, p, NULL)) {
            free(p);
            return stele_err_set(err, STELE_ENOMEM, "%s[%d]", t->name,
                                 partition);
        }
    }
    *out = p;
    return 0;
}
