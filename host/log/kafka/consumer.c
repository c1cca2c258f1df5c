/*
 * consumer.c — consumer groups: one librdkafka KafkaConsumer per
 * stele consumer, read_committed, no auto commit (offsets go into the
 * transactions), cooperative-sticky assignment by default. The rebalance
 * callback assigns or unassigns incrementally and tells the stele
 * callbacks (assigned after assigning, revoked before unassigning), all
 * inside poll.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

struct lk_consumer {
    struct stele_log_consumer base;
    lk_log *log;
    rd_kafka_t *rk;
    stele_log_rebalance_cb cb;
    stele_topic_partition *tps; /* the assignment; topics owned */
    size_t n_tps, cap_tps;
    bool rebalanced; /* during this poll */
    /* While the assigned callback runs: the partitions about to be
     * assigned. A seek then sets where each starts, as part of the
     * assignment: librdkafka refuses to seek a partition whose fetcher has
     * not started yet ("Erroneous state"). */
    rd_kafka_topic_partition_list_t *assigning;
    /* An error met while returning records, reported by the next poll. */
    int pending_code;
    char pending_msg[256];
};

rd_kafka_t *lk_consumer_rk(lk_consumer *c)
{
    return c->rk;
}

static bool assigned(const lk_consumer *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->n_tps; i++)
        if (c->tps[i].partition == partition && !strcmp(c->tps[i].topic, topic))
            return true;
    return false;
}

static void assignment_add(lk_consumer *c,
                           const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        if (assigned(c, p->topic, p->partition))
            continue;
        if (c->n_tps == c->cap_tps) {
            size_t cap = c->cap_tps ? c->cap_tps * 2 : 16;
            stele_topic_partition *n = realloc(c->tps, cap * sizeof *n);
            if (!n)
                return; /* the partition stays assigned in librdkafka */
            c->tps = n;
            c->cap_tps = cap;
        }
        char *topic = strdup(p->topic);
        if (!topic)
            return;
        c->tps[c->n_tps++] =
            (stele_topic_partition){.topic = topic, .partition = p->partition};
    }
}

static void assignment_remove(lk_consumer *c,
                              const rd_kafka_topic_partition_list_t *parts)
{
    for (size_t i = 0; i < c->n_tps;) {
        if (rd_kafka_topic_partition_list_find(parts, c->tps[i].topic,
                                               c->tps[i].partition)) {
            free((char *)c->tps[i].topic);
            c->tps[i] = c->tps[--c->n_tps];
        } else {
            i++;
        }
    }
}

static void assignment_clear(lk_consumer *c)
{
    for (size_t i = 0; i < c->n_tps; i++)
        free((char *)c->tps[i].topic);
    c->n_tps = 0;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t why,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    lk_consumer *c = opaque;
    /* NULL when the consumer is not in a group any more (thrown out for
     * not polling, then closed): the assignment is dropped eagerly. */
    const char *protocol = rd_kafka_rebalance_protocol(rk);
    bool coop = protocol && !strcmp(protocol, "COOPERATIVE");
    c->rebalanced = true;
    size_t n = (size_t)parts->cnt;
    stele_topic_partition *tps = malloc((n ? n : 1) * sizeof *tps);
    for (size_t i = 0; tps && i < n; i++)
        tps[i] = (stele_topic_partition){parts->elems[i].topic,
                                         parts->elems[i].partition};
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (why == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* The callback runs first, so the caller can restore what it needs
         * and choose start offsets (seek) before any record is fetched. */
        assignment_add(c, parts);
        c->assigning = parts;
        if (c->cb.assigned && tps && n)
            c->cb.assigned(c->cb.opaque, &c->base, tps, n);
        c->assigning = NULL;
        if (coop)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            re = rd_kafka_assign(rk, parts);
        if (e || re)
            assignment_remove(c, parts);
    } else {
        bool lost = rd_kafka_assignment_lost(rk);
        if (c->cb.revoked && tps && n)
            c->cb.revoked(c->cb.opaque, &c->base, tps, n, lost);
        if (coop)
            e = rd_kafka_incremental_unassign(rk, parts);
        else
            re = rd_kafka_assign(rk, NULL);
        if (coop)
            assignment_remove(c, parts);
        else
            assignment_clear(c);
    }
    if ((e || re) && !c->pending_code) {
        c->pending_code = STELE_EIO;
        snprintf(c->pending_msg, sizeof c->pending_msg, "group '%s': %s: %s",
                 c->base.group,
                 why == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assign"
                                                             : "unassign",
                 e ? rd_kafka_error_string(e) : rd_kafka_err2str(re));
    }
    if (e)
        rd_kafka_error_destroy(e);
    free(tps);
}

static void consumer_error_cb(rd_kafka_t *rk, int e, const char *reason,
                              void *opaque)
{
    (void)rk, (void)e, (void)reason, (void)opaque;
    /* Connection trouble is retried by librdkafka; a fatal error comes
     * back from poll. */
}

int lk_consumer_new(stele_log *log, const char *group,
                    const char *const *topics, size_t n_topics,
                    const stele_log_rebalance_cb *cb, stele_log_consumer **out,
                    stele_err *err)
{
    lk_log *l = (lk_log *)log;
    lk_consumer *c = calloc(1, sizeof *c);
    if (!c || !(c->base.group = strdup(group))) {
        free(c);
        return stele_err_set(err, STELE_ENOMEM, "group '%s'", group);
    }
    c->base.log = log;
    c->log = l;
    if (cb)
        c->cb = *cb;
    static const char *const defaults[] = {"partition.assignment.strategy",
                                           "cooperative-sticky", NULL};
    const char *forced[] = {"group.id",
                            group,
                            "enable.auto.commit",
                            "false",
                            "enable.auto.offset.store",
                            "false",
                            "isolation.level",
                            "read_committed",
                            "auto.offset.reset",
                            "earliest",
                            NULL};
    rd_kafka_conf_t *conf;
    int rc = lk_conf_build(l, defaults, forced, true, &conf, err);
    if (!rc) {
        char es[512];
        rd_kafka_conf_set_opaque(conf, c);
        rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
        if (!(c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof es))) {
            rd_kafka_conf_destroy(conf);
            rc = stele_err_set(err, STELE_EINVAL, "group '%s': %s", group, es);
        }
    }
    if (!rc) {
        rd_kafka_poll_set_consumer(c->rk);
        rd_kafka_topic_partition_list_t *subs =
            rd_kafka_topic_partition_list_new((int)n_topics);
        for (size_t i = 0; i < n_topics; i++)
            rd_kafka_topic_partition_list_add(subs, topics[i],
                                              RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, subs);
        rd_kafka_topic_partition_list_destroy(subs);
        if (e)
            rc =
                stele_err_set(err, lk_status_of(e), "group '%s': subscribe: %s",
                              group, rd_kafka_err2str(e));
    }
    if (rc) {
        if (c->rk)
            rd_kafka_destroy(c->rk);
        free(c->base.group);
        free(c);
        return rc;
    }
    *out = &c->base;
    return 0;
}

/* After a rebalance inside poll, records of partitions given away must
 * not reach the caller: someone else processes them now. */
static void drop_unassigned(lk_consumer *c, stele_log_batch *b)
{
    size_t w = 0;
    for (size_t i = 0; i < b->n; i++)
        if (assigned(c, b->records[i].topic, b->records[i].partition))
            b->records[w++] = b->records[i];
    b->n = w;
}

/* 0 to go on, or the status poll returns. */
static int message_error(lk_consumer *c, const rd_kafka_message_t *m,
                         stele_log_batch *b, stele_err *err)
{
    char what[200];
    int code = lk_status_of(m->err);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || code == STELE_ERETRY ||
        code == STELE_ENOTFOUND)
        return 0; /* librdkafka retries; a topic may be created later */
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        char reason[200];
        rd_kafka_fatal_error(c->rk, reason, sizeof reason);
        snprintf(what, sizeof what, "%s", reason);
        code = STELE_EFATAL;
    } else {
        snprintf(what, sizeof what, "%s%s%s",
                 m->rkt ? rd_kafka_topic_name(m->rkt) : "", m->rkt ? ": " : "",
                 rd_kafka_message_errstr(m));
    }
    if (b->n) { /* return the records first */
        c->pending_code = code;
        snprintf(c->pending_msg, sizeof c->pending_msg, "group '%s': %s",
                 c->base.group, what);
        return 0;
    }
    return stele_err_set(err, code, "group '%s': %s", c->base.group, what);
}

int lk_consumer_poll(stele_log_consumer *base, int timeout_ms, size_t max,
                     stele_log_batch **out, stele_err *err)
{
    lk_consumer *c = (lk_consumer *)base;
    if (c->pending_code) {
        int code = c->pending_code;
        c->pending_code = 0;
        return stele_err_set(err, code, "%s", c->pending_msg);
    }
    stele_log_batch *b = stele_log_batch_create();
    if (!b)
        return stele_err_set(err, STELE_ENOMEM, "poll: group '%s'",
                             base->group);
    int64_t deadline = lk_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int rc = 0;
    c->rebalanced = false;
    while (!rc && b->n < max) {
        int64_t left = deadline - lk_now_ms();
        /* Wait for the first record only; then take what is there. */
        int wait = b->n || left < 0 ? 0 : (int)left;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, wait);
        if (c->rebalanced) {
            drop_unassigned(c, b);
            c->rebalanced = false;
        }
        if (!m) {
            if (b->n || lk_now_ms() >= deadline)
                break;
            continue;
        }
        if (m->err)
            rc = message_error(c, m, b, err);
        else
            rc = lk_batch_add_message(b, m, err);
        rd_kafka_message_destroy(m);
        if (c->pending_code)
            break;
    }
    if (rc) {
        stele_log_batch_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int lk_consumer_seek(stele_log_consumer *base, const char *topic,
                     int32_t partition, int64_t offset, stele_err *err)
{
    lk_consumer *c = (lk_consumer *)base;
    if (!assigned(c, topic, partition))
        return stele_err_set(err, STELE_EINVAL,
                             "seek: group '%s': %s[%d] is not assigned to "
                             "this consumer",
                             base->group, topic, partition);
    rd_kafka_topic_partition_t *pending =
        c->assigning
            ? rd_kafka_topic_partition_list_find(c->assigning, topic, partition)
            : NULL;
    if (pending) {
        pending->offset = offset;
        return 0;
    }
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, partition)->offset = offset;
    /* -1: librdkafka 2.0.2 mishandles other timeouts here (#4230). */
    rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, list, -1);
    rd_kafka_resp_err_t pe = list->elems[0].err;
    rd_kafka_topic_partition_list_destroy(list);
    int rc = 0;
    if (e || pe)
        rc = stele_err_set(err, e ? STELE_EIO : lk_status_of(pe),
                           "seek: group '%s': %s[%d] to %lld: %s", base->group,
                           topic, partition, (long long)offset,
                           e ? rd_kafka_error_string(e) : rd_kafka_err2str(pe));
    if (e)
        rd_kafka_error_destroy(e);
    return rc;
}

int lk_consumer_rewind(stele_log_consumer *base, stele_err *err)
{
    lk_consumer *c = (lk_consumer *)base;
    if (!c->n_tps)
        return 0;
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new((int)c->n_tps);
    for (size_t i = 0; i < c->n_tps; i++)
        rd_kafka_topic_partition_list_add(list, c->tps[i].topic,
                                          c->tps[i].partition);
    int64_t deadline = lk_now_ms() + LK_VISIBLE_TIMEOUT_MS;
    rd_kafka_resp_err_t e;
    /* A transactional commit is pending until its markers are written. */
    for (int delay = 5;; delay = delay < 200 ? delay * 2 : delay) {
        e = rd_kafka_committed(c->rk, list, LK_REQUEST_TIMEOUT_MS);
        for (int i = 0; !e && i < list->cnt; i++)
            e = list->elems[i].err;
        if (!e || lk_status_of(e) != STELE_ERETRY || lk_now_ms() > deadline)
            break;
        lk_sleep_ms(delay);
    }
    rd_kafka_error_t *se = NULL;
    if (!e) {
        for (int i = 0; i < list->cnt; i++)
            if (list->elems[i].offset < 0)
                list->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
        se = rd_kafka_seek_partitions(c->rk, list, -1);
        for (int i = 0; !se && !e && i < list->cnt; i++)
            e = list->elems[i].err;
    }
    rd_kafka_topic_partition_list_destroy(list);
    int rc = 0;
    if (e || se)
        rc = stele_err_set(
            err, se ? STELE_EIO : lk_status_of(e), "rewind: group '%s': %s",
            base->group, se ? rd_kafka_error_string(se) : rd_kafka_err2str(e));
    if (se)
        rd_kafka_error_destroy(se);
    return rc;
}

size_t lk_consumer_assignment(stele_log_consumer *base,
                              const stele_topic_partition **tps)
{
    lk_consumer *c = (lk_consumer *)base;
    *tps = c->tps;
    return c->n_tps;
}

/* Drops the consumer's offsets from the open transaction (it closes). */
static void lk_txn_forget_consumer(lk_log *l, lk_consumer *c)
{
    lk_txn *t = &l->txn;
    for (size_t i = 0; i < t->n_offsets; i++) {
        if (t->offsets[i].consumer != c)
            continue;
        rd_kafka_topic_partition_list_destroy(t->offsets[i].list);
        t->offsets[i] = t->offsets[--t->n_offsets];
        return;
    }
}

void lk_consumer_close(stele_log_consumer *base)
{
    lk_consumer *c = (lk_consumer *)base;
    lk_txn_forget_consumer(c->log, c);
    /* Leaves the group; the revocation runs the callbacks from here. */
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
    assignment_clear(c);
    free(c->tps);
    free(c->base.group);
    free(c);
}
