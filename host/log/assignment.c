/*
 * assignment.c — consumer bookkeeping shared by the backends that run
 * consumer groups themselves (SQLite, PostgreSQL): the topics a consumer
 * subscribes to, and the partitions it owns with where it reads each next.
 * Kafka keeps its own: librdkafka owns positions there.
 */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "internal.h"

int stele_log_subscription_init(stele_log_subscription *s,
                                const char *const *topics, size_t n)
{
    *s = (stele_log_subscription){0};
    if (!(s->topics = calloc(n ? n : 1, sizeof *s->topics)))
        return STELE_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t j = 0; j < s->n && !dup; j++)
            dup = !strcmp(s->topics[j], topics[i]);
        if (dup)
            continue;
        if (!(s->topics[s->n] = strdup(topics[i]))) {
            stele_log_subscription_free(s);
            return STELE_ENOMEM;
        }
        s->n++;
    }
    return 0;
}

void stele_log_subscription_free(stele_log_subscription *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->topics[i]);
    free(s->topics);
    *s = (stele_log_subscription){0};
}

int stele_log_assignment_reserve(stele_log_assignment *a, size_t more)
{
    if (a->n + more <= a->cap)
        return 0;
    size_t cap = a->cap ? a->cap : 16;
    while (cap < a->n + more)
        cap *= 2;
    stele_log_part *parts = realloc(a->parts, cap * sizeof *parts);
    if (!parts)
        return STELE_ENOMEM;
    a->parts = parts;
    stele_topic_partition *tps = realloc(a->tps, cap * sizeof *tps);
    if (!tps)
        return STELE_ENOMEM;
    a->tps = tps;
    a->cap = cap;
    return 0;
}

stele_log_part *stele_log_assignment_add(stele_log_assignment *a,
                                         const void *topic, const char *name,
                                         int32_t partition, int64_t position)
{
    stele_log_part *p = &a->parts[a->n];
    *p = (stele_log_part){
        .topic = topic, .partition = partition, .position = position};
    a->tps[a->n] =
        (stele_topic_partition){.topic = name, .partition = partition};
    a->n++;
    return p;
}

stele_log_part *stele_log_assignment_find(const stele_log_assignment *a,
                                          const char *topic, int32_t partition)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->tps[i].partition == partition && !strcmp(a->tps[i].topic, topic))
            return &a->parts[i];
    return NULL;
}

int stele_log_assignment_seek(stele_log_assignment *a, const char *group,
                              const char *topic, int32_t partition,
                              int64_t offset, stele_err *err)
{
    stele_log_part *p = stele_log_assignment_find(a, topic, partition);
    if (!p)
        return stele_err_set(err, STELE_EINVAL,
                             "seek: group '%s': %s[%d] is not assigned to "
                             "this consumer",
                             group, topic, partition);
    p->position = offset;
    return 0;
}

int stele_log_assignment_rewind(stele_log_assignment *a,
                                int (*committed)(void *arg, stele_log_part *p,
                                                 stele_err *err),
                                void *arg, stele_err *err)
{
    for (size_t i = 0; i < a->n; i++) {
        int rc = committed(arg, &a->parts[i], err);
        if (rc)
            return rc;
    }
    return 0;
}

size_t stele_log_assignment_get(const stele_log_assignment *a,
                                const stele_topic_partition **tps)
{
    *tps = a->n ? a->tps : NULL;
    return a->n;
}

void stele_log_assignment_free(stele_log_assignment *a)
{
    free(a->parts);
    free(a->tps);
    *a = (stele_log_assignment){0};
}
