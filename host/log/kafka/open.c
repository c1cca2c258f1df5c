/*
 * open.c — the Kafka log: opening (the transactional producer and its
 * init_transactions), configuration shared by the handle's clients, error
 * classes, and the per-partition state the other files keep.
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

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"

static const stele_log_ops kafka_ops;

void lk_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

int64_t lk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int lk_status_of(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_NO_ERROR: return 0;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
    case RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION: return STELE_ERETRY;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND: return STELE_ENOTFOUND;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_INVALID_GROUP_ID: return STELE_EINVAL;
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED: return STELE_EFATAL;
    default: return STELE_EIO;
    }
}

static void error_cb(rd_kafka_t *rk, int e, const char *reason, void *opaque)
{
    lk_log *l = opaque;
    (void)rk;
    snprintf(l->last_error, sizeof l->last_error, "%s: %s",
             rd_kafka_err2name((rd_kafka_resp_err_t)e), reason);
}

/* librdkafka's own log lines, on stderr as before but named as ours. One
 * property set serves every handle (producers, consumers), so a property
 * that does not apply to one role is expected: librdkafka's warning that
 * it will be ignored by that instance is dropped. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
    (void)rk;
    if (!strcmp(fac, "CONFWARN") &&
        (strstr(buf, "is a producer property and will be ignored by this "
                     "consumer instance") ||
         strstr(buf, "is a consumer property and will be ignored by this "
                     "producer instance")))
        return;
    static const char *const names[] = {"emerg", "alert", "crit",  "error",
                                        "warn",  "notice", "info", "debug"};
    fprintf(stderr, "stele: kafka %s: %s: %s\n",
            level >= 0 && level <= 7 ? names[level] : "log", fac, buf);
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v,
                    const char *what, stele_err *err)
{
    char es[256];
    if (rd_kafka_conf_set(conf, k, v, es, sizeof es) == RD_KAFKA_CONF_OK)
        return 0;
    return stele_err_set(err, STELE_EINVAL, "kafka %s property '%s': %s", what,
                         k, es);
}

int lk_conf_build(lk_log *l, const char *const *defaults,
                  const char *const *forced, bool skip_txn,
                  rd_kafka_conf_t **out, stele_err *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = 0;
    for (size_t i = 0; !rc && defaults && defaults[i]; i += 2)
        rc = conf_set(conf, defaults[i], defaults[i + 1], "default", err);
    for (size_t i = 0; !rc && i < l->n_props; i++) {
        if (skip_txn && !strcmp(l->keys[i], "transactional.id"))
            continue;
        rc = conf_set(conf, l->keys[i], l->values[i], "configuration", err);
    }
    for (size_t i = 0; !rc && forced && forced[i]; i += 2)
        rc = conf_set(conf, forced[i], forced[i + 1], "required", err);
    if (rc) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_opaque(conf, l);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    *out = conf;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Per-partition state                                                  */

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

static void part_free(void *v)
{
    lk_part *p = v;
    lk_view_free(p->view);
    free(p);
}

/* ------------------------------------------------------------------ */
/* Opening and closing                                                  */

static void producer_close(lk_log *l)
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
    producer_close(l);
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
static int producer_open(lk_log *l, stele_err *err)
{
    /* The producer must not create a topic by asking for its metadata: a
     * missing topic is STELE_ENOTFOUND. */
    static const char *const defaults[] = {"allow.auto.create.topics",
                                           "false", NULL};
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
    producer_close(l);
    int rc = producer_open(l, err);
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
        rc = producer_open(l, err);
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
