/*
 * producer.c — the Kafka log's transactional producer: creating it
 * (init_transactions), replacing it after a fatal error, and its delivery
 * reports, which txn.c's transactions wait for.
 */
#include "internal.h"

#include <stdio.h>

#include "common/err.h"

void lk_producer_close(lk_log *l)
{
    if (l->admin_q)
        rd_kafka_queue_destroy(l->admin_q);
    if (l->producer) {
        /* Nothing is outstanding outside a transaction; the bound only
         * guards against a broker that went away. */
        rd_kafka_flush(l->producer, l->fatal ? 0 : 1000);
        rd_kafka_destroy(l->producer);
    }
    l->admin_q = NULL;
    l->producer = NULL;
}

/* A bounded metadata request first: init_transactions cannot tell "no
 * broker" from "coordinator still loading". */
static int check_reachable(lk_log *l, stele_err *err)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e =
        rd_kafka_metadata(l->producer, 0, NULL, &md, LK_CONNECT_TIMEOUT_MS);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (!e)
        return 0;
    rd_kafka_poll(l->producer, 0); /* serves error_cb: the reason */
    return stele_err_set(err, STELE_EIO,
                         "kafka bootstrap.servers=%s: no broker answered "
                         "within %d ms: %s%s%s",
                         l->bootstrap, LK_CONNECT_TIMEOUT_MS,
                         rd_kafka_err2str(e), l->last_error[0] ? "; " : "",
                         l->last_error);
}

static int init_transactions(lk_log *l, stele_err *err)
{
    for (int attempt = 1;; attempt++) {
        /* Bounded, and retried: librdkafka resumes an init that timed out
         * when called again. */
        rd_kafka_error_t *e =
            rd_kafka_init_transactions(l->producer, LK_REQUEST_TIMEOUT_MS);
        if (!e)
            return 0;
        bool retry = rd_kafka_error_is_retriable(e) && attempt < LK_RETRIES;
        int code = rd_kafka_error_is_fatal(e)       ? STELE_EFATAL
                   : rd_kafka_error_is_retriable(e) ? STELE_ERETRY
                                                    : STELE_EIO;
        if (!retry)
            stele_err_set(err, code,
                          "kafka bootstrap.servers=%s: transactional.id '%s': "
                          "init_transactions failed (%s, attempt %d): %s",
                          l->bootstrap, l->txn_id,
                          code == STELE_EFATAL   ? "fatal"
                          : code == STELE_ERETRY ? "retriable"
                                                 : "error",
                          attempt, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        if (!retry)
            return code;
        lk_sleep_ms(200 * attempt);
    }
}

/* The transactional producer (which also carries the admin requests),
 * ready for transactions: the cluster answered and init_transactions
 * fenced any earlier producer of the transactional.id, completing or
 * aborting the transaction it left open. */
int lk_producer_open(lk_log *l, stele_err *err)
{
    /* The producer must not create a topic by asking for its metadata: a
     * missing topic is STELE_ENOTFOUND. */
    static const char *const defaults[] = {"allow.auto.create.topics", "false",
                                           NULL};
    const char *forced[] = {"enable.idempotence", "true", "transactional.id",
                            l->txn_id, NULL};
    rd_kafka_conf_t *conf = NULL;
    int rc = lk_conf_build(l, defaults, forced, false, &conf, err);
    if (rc)
        return rc;
    char es[512];
    rd_kafka_conf_set_dr_msg_cb(conf, lk_dr_msg_cb);
    l->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof es);
    if (!l->producer) {
        rd_kafka_conf_destroy(conf);
        return stele_err_set(err, STELE_EINVAL,
                             "kafka bootstrap.servers=%s: creating the "
                             "producer: %s",
                             l->bootstrap, es);
    }
    if (!(l->admin_q = rd_kafka_queue_new(l->producer)))
        rc = stele_err_set(err, STELE_ENOMEM, "open_kafka: admin queue");
    if (!rc)
        rc = check_reachable(l, err);
    if (!rc)
        rc = init_transactions(l, err);
    return rc;
}

int lk_producer_renew(lk_log *l, stele_err *err)
{
    lk_producer_close(l);
    int rc = lk_producer_open(l, err);
    if (rc) {
        /* Kept for metadata and admin requests; l->fatal stays set, so
         * the next transaction tries again. */
        if (!l->producer)
            rc = STELE_EFATAL;
        stele_err_prefix(err,
                         "kafka transactional.id '%s': replacing the producer "
                         "after a fatal error (%s)",
                         l->txn_id, l->fatal_msg);
        return rc == STELE_EFATAL ? rc : STELE_ERETRY;
    }
    l->fatal = false;
    return 0;
}

void lk_dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    lk_log *l = opaque;
    lk_txn *t = &l->txn;
    uintptr_t tag = (uintptr_t)m->_private;
    size_t idx = (size_t)(tag & 0xffffffffu);
    (void)rk;
    if (!t->active || (uint32_t)(tag >> 32) != t->seq || idx >= t->n_msgs)
        return;
    t->delivered++;
    if (m->err) {
        if (!t->dr_err) {
            t->dr_err = m->err;
            snprintf(t->dr_msg, sizeof t->dr_msg, "%s[%d]: %s",
                     rd_kafka_topic_name(m->rkt), m->partition,
                     rd_kafka_err2str(m->err));
        }
        return;
    }
    lk_msg *msg = &t->msgs[idx];
    if (msg->part->txn_seq == t->seq && m->offset > msg->part->txn_last)
        msg->part->txn_last = m->offset;
    if (msg->pending) {
        lk_pending *p = &t->pending[msg->pending - 1];
        p->offset = m->offset;
        p->timestamp = rd_kafka_message_timestamp(m, NULL);
    }
}
