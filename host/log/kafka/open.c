/*
 * open.c — the Kafka log: opening and closing the handle. Its
 * transactional producer is in producer.c, the configuration its clients
 * share and the error classes in util.c, the per-partition state the
 * other files keep in part.c.
 *
 * How log.h maps onto Kafka:
 *  - a stele transaction is a Kafka transaction of the handle's producer
 *    (transactional.id = the instance id), consumer offsets go in with
 *    send_offsets_to_transaction, so a fenced zombie commits nothing;
 *  - reads are read_committed everywhere; a read ends at the last stable
 *    offset. Commit returns before the transaction markers are written, so
 *    the handle remembers where its own commits end and a read waits
 *    (bounded) until they are visible: a handle reads its own writes;
 *  - get_latest answers from an in-memory view of the compacted partition
 *    (view.c), Kafka having no lookup by key.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static const stele_log_ops kafka_ops;

static void part_free(void *v)
{
    lk_part *p = v;
    lk_view_free(p->view);
    free(p);
}

/* ------------------------------------------------------------------ */
/* Opening and closing                                                  */

static void kf_close(stele_log *log)
{
    lk_log *l = (lk_log *)log;
    if (l->txn.active)
        lk_txn_abort(&l->txn.base);
    lk_txn_free(&l->txn);
    if (l->reader) {
        rd_kafka_consumer_close(l->reader);
        rd_kafka_destroy(l->reader);
    }
    if (l->peeker) {
        rd_kafka_consumer_close(l->peeker);
        rd_kafka_destroy(l->peeker);
    }
    lk_producer_close(l);
    if (l->parts)
        stele_map_free(l->parts, part_free);
    if (l->topics)
        stele_map_free(l->topics, lk_topic_free);
    for (size_t i = 0; i < l->n_props; i++) {
        free(l->keys[i]);
        free(l->values[i]);
    }
    free(l->keys);
    free(l->values);
    free(l->bootstrap);
    free(l->txn_id);
    free(l);
}

static int copy_props(lk_log *l, const char *const *keys,
                      const char *const *values, size_t n,
                      const char *instance_id, stele_err *err)
{
    l->keys = calloc(n ? n : 1, sizeof *l->keys);
    l->values = calloc(n ? n : 1, sizeof *l->values);
    if (!l->keys || !l->values)
        return stele_err_set(err, STELE_ENOMEM, "kafka: properties");
    const char *txn_id = instance_id, *bootstrap = "(not set)";
    for (size_t i = 0; i < n; i++) {
        if (!keys[i] || !values[i])
            return stele_err_set(err, STELE_EINVAL,
                                 "kafka: property %zu has no %s", i,
                                 keys[i] ? "value" : "name");
        if (!(l->keys[i] = strdup(keys[i])) ||
            !(l->values[i] = strdup(values[i])))
            return stele_err_set(err, STELE_ENOMEM, "kafka: properties");
        l->n_props = i + 1;
        if (!strcmp(keys[i], "transactional.id")) {
            txn_id = values[i];
            l->txn_id_configured = true;
        } else if (!strcmp(keys[i], "bootstrap.servers") ||
                   !strcmp(keys[i], "metadata.broker.list"))
            bootstrap = values[i];
    }
    if (!txn_id || !*txn_id)
        return stele_err_set(err, STELE_EINVAL,
                             "kafka: no transactional.id and no instance id");
    if (!(l->txn_id = strdup(txn_id)) || !(l->bootstrap = strdup(bootstrap)))
        return stele_err_set(err, STELE_ENOMEM, "kafka: properties");
    return 0;
}

int stele_log_open_kafka(const char *const *keys, const char *const *values,
                         size_t n, const char *instance_id, stele_log **out,
                         stele_err *err)
{
    if (!out || (n && (!keys || !values)))
        return stele_err_set(err, STELE_EINVAL, "open_kafka: NULL argument");
    *out = NULL;
    lk_log *l = calloc(1, sizeof *l);
    if (!l)
        return stele_err_set(err, STELE_ENOMEM, "open_kafka");
    l->base.ops = &kafka_ops;
    l->txn.base.log = &l->base;
    int rc = 0;
    if (!(l->topics = stele_map_new()) || !(l->parts = stele_map_new()))
        rc = stele_err_set(err, STELE_ENOMEM, "open_kafka");
    if (!rc)
        rc = copy_props(l, keys, values, n, instance_id, err);
    if (!rc)
        rc = lk_producer_open(l, err);
    if (rc) {
        kf_close(&l->base);
        return rc;
    }
    *out = &l->base;
    return 0;
}

static const stele_log_ops kafka_ops = {
    .name = "kafka",
    .close = kf_close,
    .topic_ensure = lk_topic_ensure,
    .topic_partitions = lk_topic_partitions,
    .txn_begin = lk_txn_begin,
    .txn_produce = lk_txn_produce,
    .txn_send_offset = lk_txn_send_offset,
    .txn_commit = lk_txn_commit,
    .txn_abort = lk_txn_abort,
    .read = lk_read,
    .end_offset = lk_end_offset,
    .get_latest = lk_get_latest,
    .compacted_sync = lk_compacted_sync,
    .settle = lk_settle,
    .committed = lk_committed,
    .delete_before = lk_delete_before,
    .consumer_new = lk_consumer_new,
    .consumer_poll = lk_consumer_poll,
    .consumer_seek = lk_consumer_seek,
    .consumer_rewind = lk_consumer_rewind,
    .consumer_assignment = lk_consumer_assignment,
    .consumer_close = lk_consumer_close,
    .server_retention = true,
    .lookup_in_memory = true,
    .replies_topic = true,
};
