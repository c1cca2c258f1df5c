/*
 * util.c — below the other files of the Kafka log: time, the classes of
 * librdkafka's errors, and the configuration shared by the handle's
 * clients (producer, readers, consumers).
 */
#include "internal.h"

#include "common/logline.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/err.h"

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
    static const char *const names[] = {"emerg", "alert",  "crit", "error",
                                        "warn",  "notice", "info", "debug"};
    if (stele_logline_is_json()) {
        /* syslog levels: 0..3 are errors, 4 a warning, 5..6 info */
        stele_log_fields f = {.component = "kafka"};
        stele_logline(level <= 3   ? 0
                      : level == 4 ? 1
                      : level <= 6 ? 2
                                   : 3,
                      &f, "%s: %s", fac, buf);
        return;
    }
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
