/*
 * txn.c — stele transactions as Kafka transactions of the
 * handle's producer.
 *
 * Errors follow librdkafka's classes: a retriable error is retried a few
 * times and then reported as STELE_ERETRY (after aborting); an error that
 * requires an abort aborts and is STELE_ECONFLICT (the caller rewinds to
 * its committed offsets). A fatal error is STELE_EFATAL when the producer
 * was fenced by another producer of a transactional.id the user set, and
 * the handle refuses every later transaction; any other fatal error (a
 * broker gone for longer than transaction.timeout.ms leaves librdkafka's
 * producer in one) is STELE_ERETRY, and the producer is replaced by a new
 * one of the same transactional.id (lk_producer_renew), whose
 * init_transactions settles what the old one left open.
 *
 * Every message carries a tag (transaction sequence << 32 | index) as its
 * delivery opaque, so a delivery report (producer.c) that arrives after
 * its transaction ended is recognised and ignored.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

_Static_assert(sizeof(uintptr_t) >= 8, "delivery tags need 64 bits");

#define PRODUCE_QUEUE_WAIT_MS 60000
#define FLUSH_TIMEOUT_MS 120000

static lk_log *log_of(stele_log_txn *txn)
{
    return (lk_log *)txn->log;
}

/* Notes a fatal error of the producer; returns the status it means to the
 * caller: STELE_EFATAL when the producer was fenced and the user set the
 * transactional.id (another instance may hold it: this handle must never
 * write again) or is not authorized, else STELE_ERETRY (the producer is
 * replaced). */
static int mark_fatal(lk_log *l, const char *fallback)
{
    char reason[200];
    rd_kafka_resp_err_t e =
        rd_kafka_fatal_error(l->producer, reason, sizeof reason);
    if (!l->fatal) {
        l->fatal = true;
        bool fencing = e == RD_KAFKA_RESP_ERR__FENCED ||
                       e == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
                       e == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
        l->fenced =
            (fencing && l->txn_id_configured) ||
            e == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED ||
            e == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED;
        snprintf(l->fatal_msg, sizeof l->fatal_msg, "%s",
                 e ? reason : fallback);
    }
    return l->fenced ? STELE_EFATAL : STELE_ERETRY;
}

/* After a fatal error that is not a fencing: a new producer now, so that
 * the transaction the old one left open is settled (committed or aborted
 * by the new one's init_transactions) before the caller looks at what was
 * committed. If the cluster does not answer, lk_txn_begin tries again. */
static void renew_now(lk_log *l)
{
    if (l->fatal && !l->fenced)
        lk_producer_renew(l, NULL);
}

/* Forgets the transaction's bookkeeping (not librdkafka's). */
static void txn_end(lk_txn *t)
{
    for (size_t i = 0; i < t->n_pending; i++)
        lk_view_entry_free(t->pending[i].entry);
    for (size_t i = 0; i < t->n_offsets; i++)
        rd_kafka_topic_partition_list_destroy(t->offsets[i].list);
    t->n_pending = t->n_msgs = t->n_parts = t->n_offsets = 0;
    t->delivered = 0;
    t->dr_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    t->dr_msg[0] = '\0';
    t->active = false;
}

void lk_txn_free(lk_txn *t)
{
    txn_end(t);
    free(t->msgs);
    free(t->pending);
    free(t->parts);
    free(t->offsets);
}

static bool grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t c = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, c * size);
    if (!p)
        return false;
    *arr = p;
    *cap = c;
    return true;
}

/* Aborts librdkafka's transaction; 0, or mark_fatal's status when even
 * that failed (the producer cannot be trusted any more). */
static int abort_now(lk_log *l, stele_err *err)
{
    for (int attempt = 1;; attempt++) {
        rd_kafka_error_t *e = rd_kafka_abort_transaction(l->producer, -1);
        if (!e)
            return 0;
        bool retry = rd_kafka_error_is_retriable(e) && attempt < LK_RETRIES;
        int code = 0;
        if (!retry) {
            code = mark_fatal(l, rd_kafka_error_string(e));
            if (err) {
                stele_err_prefix(err, "abort failed too (%s)",
                                 rd_kafka_error_string(e));
                err->code = code;
            }
        }
        rd_kafka_error_destroy(e);
        if (!retry)
            return code;
        lk_sleep_ms(100 * attempt);
    }
}

/* Reports a failed transactional call by its class, aborts when the
 * transaction can still be aborted, and ends the transaction. Takes e. */
static int txn_fail(lk_log *l, rd_kafka_error_t *e, const char *what,
                    stele_err *err)
{
    int code;
    const char *cls;
    if (rd_kafka_error_is_fatal(e)) {
        code = mark_fatal(l, rd_kafka_error_string(e));
        cls =
            code == STELE_EFATAL ? "fatal" : "fatal, the producer is replaced";
    } else if (rd_kafka_error_txn_requires_abort(e)) {
        code = STELE_ECONFLICT, cls = "transaction aborted";
    } else {
        code = STELE_ERETRY, cls = rd_kafka_error_is_retriable(e)
                                       ? "retriable, retries exhausted"
                                       : "transaction aborted";
    }
    stele_err_set(err, code, "kafka transactional.id '%s': %s failed (%s): %s",
                  l->txn_id, what, cls, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    int aborted = l->fatal ? 0 : abort_now(l, err);
    if (aborted)
        code = aborted;
    txn_end(&l->txn);
    renew_now(l);
    return code;
}

/* Calls a transactional API, retrying retriable errors; NULL on success,
 * else the error (the caller's). */
#define TXN_CALL(l, call)                                                      \
    ({                                                                         \
        rd_kafka_error_t *e_;                                                  \
        for (int a_ = 1;                                                       \
             (e_ = (call)) && rd_kafka_error_is_retriable(e_) &&               \
             !rd_kafka_error_txn_requires_abort(e_) && a_ < LK_RETRIES;        \
             a_++) {                                                           \
            rd_kafka_error_destroy(e_);                                        \
            lk_sleep_ms(100 * a_);                                             \
        }                                                                      \
        e_;                                                                    \
    })

int lk_txn_begin(stele_log *log, stele_log_txn **out, stele_err *err)
{
    lk_log *l = (lk_log *)log;
    if (l->fatal && l->fenced)
        return stele_err_set(err, STELE_EFATAL,
                             "kafka transactional.id '%s': the producer was "
                             "fenced and writes no more: %s",
                             l->txn_id, l->fatal_msg);
    int rc;
    if (l->fatal && (rc = lk_producer_renew(l, err)))
        return rc;
    if (l->txn.active)
        return stele_err_set(err, STELE_EINVAL,
                             "kafka transactional.id '%s': a transaction is "
                             "already open on this handle",
                             l->txn_id);
    rd_kafka_error_t *e = rd_kafka_begin_transaction(l->producer);
    if (e) {
        int code = STELE_ERETRY;
        if (rd_kafka_error_is_fatal(e))
            code = mark_fatal(l, rd_kafka_error_string(e));
        stele_err_set(err, code,
                      "kafka transactional.id '%s': begin_transaction: %s",
                      l->txn_id, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return code;
    }
    lk_txn *t = &l->txn;
    txn_end(t);
    t->active = true;
    t->seq++;
    *out = &t->base;
    return 0;
}

static int produce_error(lk_log *l, rd_kafka_resp_err_t e, const char *topic,
                         int32_t partition, stele_err *err)
{
    int code = lk_status_of(e);
    if (e == RD_KAFKA_RESP_ERR__FATAL) {
        code = mark_fatal(l, rd_kafka_err2str(e));
    } else if (e == RD_KAFKA_RESP_ERR__STATE) {
        /* The transaction is in an abortable state. */
        code = STELE_ECONFLICT;
    } else if (code == STELE_EIO) {
        code = STELE_ERETRY;
    }
    return stele_err_set(
        err, code, "kafka transactional.id '%s': produce to %s[%d]: %s",
        l->txn_id, topic, partition,
        e == RD_KAFKA_RESP_ERR__FATAL ? l->fatal_msg : rd_kafka_err2str(e));
}

static int add_message(lk_log *l, lk_part *part, const stele_log_record *rec,
                       uintptr_t *tag, stele_err *err)
{
    lk_txn *t = &l->txn;
    if (!grow((void **)&t->msgs, &t->cap_msgs, t->n_msgs, sizeof *t->msgs) ||
        (part->txn_seq != t->seq && !grow((void **)&t->parts, &t->cap_parts,
                                          t->n_parts, sizeof *t->parts)))
        return stele_err_set(err, STELE_ENOMEM, "produce to %s[%d]",
                             part->topic->name, part->partition);
    if (part->txn_seq != t->seq) {
        part->txn_seq = t->seq;
        part->txn_last = -1;
        t->parts[t->n_parts++] = part;
    }
    lk_msg *m = &t->msgs[t->n_msgs];
    m->part = part;
    m->pending = 0;
    if (part->view) {
        void *entry = lk_view_entry_new(rec);
        if (!entry || !grow((void **)&t->pending, &t->cap_pending, t->n_pending,
                            sizeof *t->pending)) {
            lk_view_entry_free(entry);
            return stele_err_set(err, STELE_ENOMEM, "produce to %s[%d]",
                                 part->topic->name, part->partition);
        }
        t->pending[t->n_pending] = (lk_pending){
            .part = part, .offset = -1, .timestamp = -1, .entry = entry};
        m->pending = ++t->n_pending;
    }
    *tag = (uintptr_t)t->seq << 32 | (uintptr_t)t->n_msgs;
    return 0;
}

int lk_txn_produce(stele_log_txn *txn, const char *topic, int32_t partition,
                   const stele_log_record *rec, int64_t *offset_out,
                   stele_err *err)
{
    lk_log *l = log_of(txn);
    const lk_topic *t;
    lk_part *part;
    uintptr_t tag = 0;
    if (offset_out)
        *offset_out = -1; /* known only from the delivery report */
    if (!l->txn.active)
        return stele_err_set(err, STELE_EINVAL,
                             "produce to %s: the transaction has ended", topic);
    int rc = lk_topic_get(l, topic, &t, err);
    if (rc)
        return rc;
    if (partition < 0)
        partition =
            stele_partition_for_key(rec->key, rec->key_len, t->partitions);
    if ((rc = lk_check_partition(t, partition, err)) ||
        (rc = lk_part_get(l, t, partition, &part, err)) ||
        (rc = add_message(l, part, rec, &tag, err)))
        return rc;
    rd_kafka_headers_t *hdrs = NULL;
    if (rec->n_headers) {
        hdrs = rd_kafka_headers_new(rec->n_headers);
        for (size_t i = 0; i < rec->n_headers; i++)
            rd_kafka_header_add(hdrs, rec->headers[i].name, -1,
                                rec->headers[i].value, rec->headers[i].len);
    }
    int64_t deadline = lk_now_ms() + PRODUCE_QUEUE_WAIT_MS;
    rd_kafka_resp_err_t e;
    for (;;) {
        e = rd_kafka_producev(
            l->producer, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(rec->key, rec->key_len),
            RD_KAFKA_V_VALUE((void *)rec->value, rec->value_len),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_TIMESTAMP(rec->timestamp_ms),
            RD_KAFKA_V_OPAQUE((void *)tag), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || lk_now_ms() > deadline)
            break;
        rd_kafka_poll(l->producer, 50); /* delivery reports make room */
    }
    if (e) {
        if (hdrs)
            rd_kafka_headers_destroy(hdrs); /* owned by us on failure */
        lk_txn *tx = &l->txn;
        if (tx->msgs[tx->n_msgs].pending) {
            lk_view_entry_free(tx->pending[--tx->n_pending].entry);
        }
        return produce_error(l, e, topic, partition, err);
    }
    l->txn.n_msgs++;
    rd_kafka_poll(l->producer, 0);
    return 0;
}

int lk_txn_send_offset(stele_log_txn *txn, stele_log_consumer *c,
                       const char *topic, int32_t partition,
                       int64_t next_offset, stele_err *err)
{
    lk_txn *t = &log_of(txn)->txn;
    lk_consumer *cons = (lk_consumer *)c;
    if (!t->active)
        return stele_err_set(err, STELE_EINVAL,
                             "send_offset %s[%d]: the transaction has ended",
                             topic, partition);
    lk_group_offsets *g = NULL;
    for (size_t i = 0; i < t->n_offsets && !g; i++)
        if (t->offsets[i].consumer == cons)
            g = &t->offsets[i];
    if (!g) {
        if (!grow((void **)&t->offsets, &t->cap_offsets, t->n_offsets,
                  sizeof *t->offsets))
            return stele_err_set(err, STELE_ENOMEM, "send_offset");
        g = &t->offsets[t->n_offsets++];
        g->consumer = cons;
        g->list = rd_kafka_topic_partition_list_new(4);
    }
    rd_kafka_topic_partition_t *tp =
        rd_kafka_topic_partition_list_find(g->list, topic, partition);
    if (!tp)
        tp = rd_kafka_topic_partition_list_add(g->list, topic, partition);
    tp->offset = next_offset;
    return 0;
}

/* Every message delivered, and none failed, before anything commits. */
static int check_deliveries(lk_log *l, stele_err *err)
{
    lk_txn *t = &l->txn;
    rd_kafka_resp_err_t e = rd_kafka_flush(l->producer, FLUSH_TIMEOUT_MS);
    if (t->dr_err) {
        int code = lk_status_of(t->dr_err);
        if (code == STELE_EFATAL ||
            rd_kafka_fatal_error(l->producer, NULL, 0)) {
            code = mark_fatal(l, t->dr_msg);
        } else if (code == STELE_EIO) {
            code = STELE_ERETRY;
        }
        return stele_err_set(err, code,
                             "kafka transactional.id '%s': a record was not "
                             "delivered: %s",
                             l->txn_id, t->dr_msg);
    }
    if (e || t->delivered != t->n_msgs)
        return stele_err_set(err, STELE_ERETRY,
                             "kafka transactional.id '%s': %zu of %zu "
                             "records delivered after %d ms: %s",
                             l->txn_id, t->delivered, t->n_msgs,
                             FLUSH_TIMEOUT_MS, rd_kafka_err2str(e));
    return 0;
}

/* The generation and member id in a consumer's group metadata, from its
 * serialized form ("CGMDv2:", int32 generation in host order, group id,
 * NUL, member id, NUL, ...: librdkafka's rd_kafka_consumer_group_metadata
 * _write). false when the form is not that one. */
static bool cgmd_member(const rd_kafka_consumer_group_metadata_t *cgmd,
                        int32_t *generation, bool *has_member)
{
    void *buf = NULL;
    size_t size = 0;
    rd_kafka_error_t *e =
        rd_kafka_consumer_group_metadata_write(cgmd, &buf, &size);
    if (e) {
        rd_kafka_error_destroy(e);
        return false;
    }
    const char *b = buf, *end = b + size;
    bool ok = size > 11 && !memcmp(b, "CGMDv2:", 7);
    if (ok) {
        memcpy(generation, b + 7, sizeof *generation);
        const char *group = b + 11;
        const char *nul = memchr(group, '\0', (size_t)(end - group));
        ok = nul && nul + 1 < end;
        *has_member = ok && nul[1] != '\0';
    }
    rd_kafka_mem_free(NULL, buf);
    return ok;
}

static int send_offsets(lk_log *l, stele_err *err)
{
    lk_txn *t = &l->txn;
    for (size_t i = 0; i < t->n_offsets; i++) {
        rd_kafka_consumer_group_metadata_t *cgmd =
            rd_kafka_consumer_group_metadata(
                lk_consumer_rk(t->offsets[i].consumer));
        if (!cgmd)
            return stele_err_set(err, STELE_EINVAL,
                                 "kafka transactional.id '%s': the consumer "
                                 "has no group metadata",
                                 l->txn_id);
        /* The offsets fence this transaction (KIP-447) only when they
         * carry a member of the group's generation: the broker takes
         * transactional offsets without member and generation (-1, "")
         * from anyone, into any group. librdkafka's consumer drops both
         * when it learns it was thrown out (a host paused past
         * session.timeout.ms), before the host has polled and heard of
         * it; committing then would let a zombie write partitions that
         * another host owns. */
        int32_t gen = -1;
        bool member = false;
        if (!cgmd_member(cgmd, &gen, &member) || gen < 0 || !member) {
            rd_kafka_consumer_group_metadata_destroy(cgmd);
            return stele_err_set(
                err, STELE_ECONFLICT,
                "kafka transactional.id '%s': group '%s': "
                "the consumer is not a member of a "
                "generation (%d, %s member id): its "
                "partitions may be another host's now; "
                "nothing is committed",
                l->txn_id,
                ((stele_log_consumer *)t->offsets[i].consumer)->group, gen,
                member ? "a" : "no");
        }
        rd_kafka_error_t *e =
            TXN_CALL(l, rd_kafka_send_offsets_to_transaction(
                            l->producer, t->offsets[i].list, cgmd, -1));
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        if (e)
            return txn_fail(l, e, "send_offsets_to_transaction", err);
    }
    return 0;
}

/* The commit is done: the view and the visibility marks learn of it. */
static void committed_apply(lk_log *l)
{
    lk_txn *t = &l->txn;
    for (size_t i = 0; i < t->n_parts; i++) {
        lk_part *p = t->parts[i];
        if (p->txn_last >= 0 && p->txn_last + 1 > p->need_end)
            p->need_end = p->txn_last + 1;
    }
    for (size_t i = 0; i < t->n_pending; i++) {
        lk_pending *p = &t->pending[i];
        if (p->offset >= 0) {
            lk_view_apply(p->part, p->entry, p->offset, p->timestamp);
            p->entry = NULL;
        } else {
            lk_view_mark_stale(p->part);
        }
    }
}

int lk_txn_commit(stele_log_txn *txn, stele_err *err)
{
    lk_log *l = log_of(txn);
    lk_txn *t = &l->txn;
    if (!t->active)
        return stele_err_set(err, STELE_EINVAL,
                             "kafka transactional.id '%s': commit: the "
                             "transaction has ended",
                             l->txn_id);
    int rc = check_deliveries(l, err);
    if (rc) {
        int aborted = l->fatal ? 0 : abort_now(l, err);
        if (aborted)
            rc = aborted;
        txn_end(t);
        renew_now(l);
        return rc;
    }
    if (t->n_offsets && (rc = send_offsets(l, err))) {
        if (t->active) { /* failed before librdkafka was called */
            abort_now(l, NULL);
            txn_end(t);
            renew_now(l);
        }
        return rc;
    }
    rd_kafka_error_t *e =
        TXN_CALL(l, rd_kafka_commit_transaction(l->producer, -1));
    if (e)
        return txn_fail(l, e, "commit_transaction", err);
    committed_apply(l);
    txn_end(t);
    return 0;
}

void lk_txn_abort(stele_log_txn *txn)
{
    lk_log *l = log_of(txn);
    if (!l->txn.active)
        return;
    if (!l->fatal)
        abort_now(l, NULL);
    txn_end(&l->txn);
    renew_now(l);
}
