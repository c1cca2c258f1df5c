/*
 * read.c — reading without a group: the handle's reader, an
 * assign-only read_committed consumer, reads one partition range at a time
 * (assign at `from`, consume to the last stable offset, unassign); end
 * offsets are the last stable offset; group offsets come from the admin
 * API with require_stable, so pending transactional offsets are waited for.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* A consumer handle for offsets only: the reader (read_committed, whose
 * end is the last stable offset) or the peeker (read_uncommitted, whose
 * end is the high watermark). */
static int client_new(lk_log *l, bool committed, rd_kafka_t **out,
                      stele_err *err)
{
    /* The group id only lets librdkafka's consumer API work: the reader
     * never subscribes and never commits. */
    char group[320];
    snprintf(group, sizeof group, "stele-%s.%s",
             committed ? "reader" : "peeker", l->txn_id);
    static const char *const defaults[] = {"auto.offset.reset", "earliest",
                                           NULL};
    /* A short fetch wait: a read ends on the EOF of an empty fetch. */
    const char *forced[] = {"group.id",
                            group,
                            "enable.auto.commit",
                            "false",
                            "enable.auto.offset.store",
                            "false",
                            "isolation.level",
                            committed ? "read_committed" : "read_uncommitted",
                            "enable.partition.eof",
                            "true",
                            "fetch.wait.max.ms",
                            "10",
                            NULL};
    rd_kafka_conf_t *conf;
    int rc = lk_conf_build(l, defaults, forced, true, &conf, err);
    if (rc)
        return rc;
    char es[512];
    *out = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof es);
    if (!*out) {
        rd_kafka_conf_destroy(conf);
        return stele_err_set(err, STELE_EINVAL,
                             "kafka bootstrap.servers=%s: creating the "
                             "%s: %s",
                             l->bootstrap, committed ? "reader" : "peeker", es);
    }
    /* Errors and logs then come back through consumer_poll, which reads
     * serve, instead of piling up on a queue nobody polls. */
    rd_kafka_poll_set_consumer(*out);
    return 0;
}

static int reader_get(lk_log *l, stele_err *err)
{
    return l->reader ? 0 : client_new(l, true, &l->reader, err);
}

/* One partition's end as rk sees it (its isolation level). */
static int watermark(lk_log *l, rd_kafka_t *rk, const lk_topic *t,
                     int32_t partition, int64_t *end, stele_err *err)
{
    int64_t lo = -1;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
        rk, t->name, partition, &lo, end, LK_REQUEST_TIMEOUT_MS);
    if (!e)
        return 0;
    bool transient = lk_status_of(e) == STELE_ERETRY ||
                     e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    return stele_err_set(err, transient ? STELE_ERETRY : lk_status_of(e),
                         "%s[%d]: end offset from %s: %s", t->name, partition,
                         l->bootstrap, rd_kafka_err2str(e));
}

int lk_settle(stele_log *log, const char *topic, int32_t partition,
              int timeout_ms, stele_err *err)
{
    lk_log *l = (lk_log *)log;
    const lk_topic *t;
    int rc = lk_topic_get(l, topic, &t, err);
    if (!rc)
        rc = lk_check_partition(t, partition, err);
    if (!rc)
        rc = reader_get(l, err);
    if (!rc && !l->peeker)
        rc = client_new(l, false, &l->peeker, err);
    int64_t deadline = lk_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    /* The last stable offset reaches the high watermark once every
     * transaction that wrote there has its marker: the high watermark
     * first, so a record appended in between (an open transaction's)
     * only makes the wait longer. */
    for (int delay = 2; !rc; delay = delay < 200 ? delay * 2 : delay) {
        int64_t hw, lso;
        rc = watermark(l, l->peeker, t, partition, &hw, err);
        if (!rc)
            rc = watermark(l, l->reader, t, partition, &lso, err);
        if (!rc && lso >= hw)
            return 0;
        if (rc && rc != STELE_ERETRY)
            return rc;
        if (lk_now_ms() >= deadline)
            return rc ? rc
                      : stele_err_set(err, STELE_ERETRY,
                                      "%s[%d]: a transaction is still open "
                                      "after %d ms (last stable offset "
                                      "%lld, high watermark %lld): the "
                                      "broker aborts a dead writer's at "
                                      "transaction.timeout.ms",
                                      t->name, partition, timeout_ms,
                                      (long long)lso, (long long)hw);
        rc = 0;
        lk_sleep_ms(delay);
    }
    return rc;
}

int lk_visible_end(lk_log *l, const lk_topic *t, int32_t partition,
                   int64_t *end, stele_err *err)
{
    int rc = reader_get(l, err);
    if (rc)
        return rc;
    const lk_part *p = lk_part_find(l, t->name, partition);
    int64_t need = p ? p->need_end : 0;
    int64_t deadline = lk_now_ms() + LK_VISIBLE_TIMEOUT_MS;
    for (int delay = 2;; delay = delay < 100 ? delay * 2 : delay) {
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
            l->reader, t->name, partition, &lo, &hi, LK_REQUEST_TIMEOUT_MS);
        if (!e && hi >= need) {
            *end = hi;
            return 0;
        }
        /* The topic exists (it is cached): an unknown partition is a
         * broker that has not caught up yet. */
        bool transient = !e || lk_status_of(e) == STELE_ERETRY ||
                         e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        if (!transient || lk_now_ms() > deadline) {
            if (e)
                return stele_err_set(
                    err, transient ? STELE_ERETRY : lk_status_of(e),
                    "%s[%d]: end offset from %s: %s", t->name, partition,
                    l->bootstrap, rd_kafka_err2str(e));
            return stele_err_set(err, STELE_ERETRY,
                                 "%s[%d]: records committed by this handle "
                                 "up to offset %lld are not visible after "
                                 "%d ms (last stable offset %lld)",
                                 t->name, partition, (long long)need - 1,
                                 LK_VISIBLE_TIMEOUT_MS, (long long)hi);
        }
        lk_sleep_ms(delay);
    }
}

static int assign(lk_log *l, const lk_topic *t, int32_t partition, int64_t from,
                  stele_err *err)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    if (t) {
        list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, t->name, partition)->offset =
            from;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(l->reader, list);
    if (list)
        rd_kafka_topic_partition_list_destroy(list);
    if (e && t)
        return stele_err_set(err, lk_status_of(e), "read %s[%d]: assign: %s",
                             t->name, partition, rd_kafka_err2str(e));
    return 0;
}

int lk_fetch(lk_log *l, const lk_topic *t, int32_t partition, int64_t from,
             size_t max, lk_record_fn fn, void *opaque, int64_t *next,
             stele_err *err)
{
    int64_t end;
    int rc = lk_visible_end(l, t, partition, &end, err);
    *next = from;
    if (rc || from >= end || !max)
        return rc;
    if ((rc = assign(l, t, partition, from, err)))
        return rc;
    int64_t deadline = lk_now_ms() + LK_READ_TIMEOUT_MS;
    size_t n = 0;
    while (!rc && n < max && *next < end) {
        int64_t left = deadline - lk_now_ms();
        if (left <= 0) {
            rc = stele_err_set(err, STELE_ERETRY,
                               "read %s[%d]: at offset %lld of %lld after "
                               "%d ms",
                               t->name, partition, (long long)*next,
                               (long long)end, LK_READ_TIMEOUT_MS);
            break;
        }
        rd_kafka_message_t *m =
            rd_kafka_consumer_poll(l->reader, left < 100 ? (int)left : 100);
        if (!m)
            continue;
        /* Another partition's or an earlier read's leftovers. */
        bool ours = m->rkt && m->partition == partition &&
                    !strcmp(rd_kafka_topic_name(m->rkt), t->name);
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && ours) {
            if (m->offset > *next)
                *next = m->offset;
            rd_kafka_message_destroy(m);
            break; /* nothing more is stable */
        }
        if (m->err && ours)
            rc = stele_err_set(err, lk_status_of(m->err),
                               "read %s[%d] at %lld: %s", t->name, partition,
                               (long long)*next, rd_kafka_message_errstr(m));
        else if (!m->err && ours && m->offset >= *next) {
            rc = fn(opaque, m, err);
            *next = m->offset + 1;
            n++;
        }
        rd_kafka_message_destroy(m);
    }
    assign(l, NULL, 0, 0, NULL);
    return rc;
}

int lk_batch_add_message(stele_log_batch *b, const rd_kafka_message_t *m,
                         stele_err *err)
{
    stele_log_record *r = stele_log_batch_add(b);
    if (!r)
        goto oom;
    r->topic = stele_log_batch_topic(b, rd_kafka_topic_name(m->rkt));
    r->partition = m->partition;
    r->offset = m->offset;
    r->timestamp_ms = rd_kafka_message_timestamp(m, NULL);
    if (m->key && !(r->key = stele_log_batch_copy(b, m->key, m->key_len)))
        goto oom;
    r->key_len = m->key ? m->key_len : 0;
    if (m->payload && !(r->value = stele_log_batch_copy(b, m->payload, m->len)))
        goto oom;
    r->value_len = m->payload ? m->len : 0;
    if (!r->topic)
        goto oom;
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) || !hdrs)
        return 0;
    size_t n = rd_kafka_header_cnt(hdrs);
    stele_log_header *hs = stele_log_batch_alloc(b, n * sizeof *hs);
    if (!hs)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        const char *name;
        const void *val;
        size_t len;
        if (rd_kafka_header_get_all(hdrs, i, &name, &val, &len))
            break;
        char *v = stele_log_batch_alloc(b, len + 1);
        hs[i].name = stele_log_batch_copy(b, name, strlen(name) + 1);
        if (!v || !hs[i].name)
            goto oom;
        if (len)
            memcpy(v, val, len);
        v[len] = '\0'; /* a string value reads as one */
        hs[i].value = v;
        hs[i].len = len;
    }
    r->headers = hs;
    r->n_headers = n;
    return 0;
oom:
    if (r)
        stele_log_batch_drop_last(b);
    return stele_err_set(err, STELE_ENOMEM, "read %s[%d] at %lld",
                         rd_kafka_topic_name(m->rkt), m->partition,
                         (long long)m->offset);
}

static int to_batch(void *opaque, const rd_kafka_message_t *m, stele_err *err)
{
    return lk_batch_add_message(opaque, m, err);
}

int lk_read(stele_log *log, const char *topic, int32_t partition, int64_t from,
            size_t max, stele_log_batch **out, stele_err *err)
{
    lk_log *l = (lk_log *)log;
    const lk_topic *t;
    int rc = lk_topic_get(l, topic, &t, err);
    if (!rc)
        rc = lk_check_partition(t, partition, err);
    if (rc)
        return rc;
    stele_log_batch *b = stele_log_batch_create();
    if (!b)
        return stele_err_set(err, STELE_ENOMEM, "read %s[%d]", topic,
                             partition);
    int64_t next;
    if ((rc = lk_fetch(l, t, partition, from, max, to_batch, b, &next, err))) {
        stele_log_batch_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int lk_end_offset(stele_log *log, const char *topic, int32_t partition,
                  int64_t *end, stele_err *err)
{
    lk_log *l = (lk_log *)log;
    const lk_topic *t;
    int rc = lk_topic_get(l, topic, &t, err);
    if (!rc)
        rc = lk_check_partition(t, partition, err);
    return rc ? rc : lk_visible_end(l, t, partition, end, err);
}

/* ------------------------------------------------------------------ */
/* Group offsets                                                        */

/* One ListConsumerGroupOffsets round; *retry when the broker still holds
 * a pending transactional commit (or is loading). */
static int list_offsets(lk_log *l, const char *group, const char *topic,
                        int32_t partition, int64_t *next, bool *retry,
                        stele_err *err)
{
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, partition);
    rd_kafka_ListConsumerGroupOffsets_t *req =
        rd_kafka_ListConsumerGroupOffsets_new(group, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(
        l->producer, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    char es[128];
    rd_kafka_AdminOptions_set_request_timeout(o, LK_REQUEST_TIMEOUT_MS, es,
                                              sizeof es);
    rd_kafka_error_t *oe =
        rd_kafka_AdminOptions_set_require_stable_offsets(o, 1);
    if (oe)
        rd_kafka_error_destroy(oe);
    rd_kafka_queue_t *q = rd_kafka_queue_new(l->producer);
    rd_kafka_ListConsumerGroupOffsets(l->producer, &req, 1, o, q);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, LK_REQUEST_TIMEOUT_MS + 5000);
    rd_kafka_queue_destroy(q);
    *retry = false;
    if (!ev)
        return stele_err_set(err, STELE_ERETRY,
                             "group '%s' %s[%d]: no offsets from %s", group,
                             topic, partition, l->bootstrap);
    rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
    const char *why = e ? rd_kafka_event_error_string(ev) : NULL;
    int64_t off = -1;
    if (!e) {
        size_t n = 0;
        const rd_kafka_group_result_t **gr =
            rd_kafka_ListConsumerGroupOffsets_result_groups(
                rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
        const rd_kafka_error_t *ge =
            n ? rd_kafka_group_result_error(gr[0]) : NULL;
        const rd_kafka_topic_partition_list_t *pl =
            n && !ge ? rd_kafka_group_result_partitions(gr[0]) : NULL;
        if (ge) {
            e = rd_kafka_error_code(ge);
            why = rd_kafka_error_string(ge);
        }
        for (int i = 0; pl && i < pl->cnt; i++) {
            if (pl->elems[i].partition != partition ||
                strcmp(pl->elems[i].topic, topic))
                continue;
            e = pl->elems[i].err;
            why = rd_kafka_err2str(e);
            off = pl->elems[i].offset;
        }
    }
    int rc = 0;
    if (e == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND || !e) {
        *next = off >= 0 ? off : 0; /* nothing committed yet */
    } else {
        *retry = lk_status_of(e) == STELE_ERETRY;
        rc = stele_err_set(err, lk_status_of(e),
                           "group '%s' %s[%d]: committed offset from %s: %s",
                           group, topic, partition, l->bootstrap, why);
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

int lk_committed(stele_log *log, const char *group, const char *topic,
                 int32_t partition, int64_t *next, stele_err *err)
{
    lk_log *l = (lk_log *)log;
    const lk_topic *t;
    int rc = lk_topic_get(l, topic, &t, err);
    if (!rc)
        rc = lk_check_partition(t, partition, err);
    int64_t deadline = lk_now_ms() + LK_VISIBLE_TIMEOUT_MS;
    for (int delay = 5; !rc; delay = delay < 200 ? delay * 2 : delay) {
        bool retry;
        rc = list_offsets(l, group, topic, partition, next, &retry, err);
        if (!rc || !retry || lk_now_ms() > deadline)
            break;
        rc = 0;
        lk_sleep_ms(delay);
    }
    return rc;
}
