/*
 * topic.c — topics on Kafka: CreateTopics through the admin API
 * on the producer handle, partition counts from metadata, compaction from
 * DescribeConfigs. Topics are cached by name for the life of the handle.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

void lk_topic_free(void *t)
{
    free(t);
}

/* The topic's metadata: *partitions is 0 when the broker does not know it
 * (yet); *leaders tells whether every partition has a leader. */
static int topic_metadata(lk_log *l, const char *name, int32_t *partitions,
                          bool *leaders, stele_err *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(l->producer, name, NULL);
    if (!rkt)
        return stele_err_set(err, STELE_ENOMEM, "topic '%s': %s", name,
                             rd_kafka_err2str(rd_kafka_last_error()));
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e =
        rd_kafka_metadata(l->producer, 0, rkt, &md, LK_REQUEST_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (e)
        return stele_err_set(err, lk_status_of(e),
                             "topic '%s': metadata from %s: %s", name,
                             l->bootstrap, rd_kafka_err2str(e));
    *partitions = 0;
    *leaders = false;
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[i];
        if (strcmp(mt->topic, name) || mt->err)
            continue;
        *partitions = mt->partition_cnt;
        *leaders = true;
        for (int p = 0; p < mt->partition_cnt; p++)
            if (mt->partitions[p].leader < 0)
                *leaders = false;
    }
    rd_kafka_metadata_destroy(md);
    return 0;
}

static int topic_cache(lk_log *l, const char *name, int32_t partitions,
                       int compacted, const lk_topic **out, stele_err *err)
{
    lk_topic *t = stele_map_gets(l->topics, name);
    if (t) {
        if (t->compacted < 0)
            t->compacted = compacted;
        *out = t;
        return 0;
    }
    size_t len = strlen(name);
    t = malloc(sizeof *t + len + 1);
    if (!t)
        return stele_err_set(err, STELE_ENOMEM, "topic '%s'", name);
    t->partitions = partitions;
    t->compacted = compacted;
    memcpy(t->name, name, len + 1);
    if (stele_map_put(l->topics, t->name, len, t, NULL)) {
        free(t);
        return stele_err_set(err, STELE_ENOMEM, "topic '%s'", name);
    }
    *out = t;
    return 0;
}

int lk_topic_get(lk_log *l, const char *name, const lk_topic **out,
                 stele_err *err)
{
    const lk_topic *t = stele_map_gets(l->topics, name);
    if (t) {
        *out = t;
        return 0;
    }
    int32_t n;
    bool leaders;
    int rc = topic_metadata(l, name, &n, &leaders, err);
    if (rc)
        return rc;
    if (!n)
        return stele_err_set(err, STELE_ENOTFOUND,
                             "kafka %s: topic '%s' does not exist",
                             l->bootstrap, name);
    return topic_cache(l, name, n, -1, out, err);
}

int lk_check_partition(const lk_topic *t, int32_t partition, stele_err *err)
{
    return stele_log_check_partition(t->name, t->partitions, partition, err);
}

/* Waits for the admin result of type `type` on the handle's queue. */
static rd_kafka_event_t *admin_wait(lk_log *l, rd_kafka_event_type_t type)
{
    int64_t deadline = lk_now_ms() + LK_REQUEST_TIMEOUT_MS + 5000;
    for (;;) {
        int64_t left = deadline - lk_now_ms();
        if (left <= 0)
            return NULL;
        rd_kafka_event_t *ev = rd_kafka_queue_poll(l->admin_q, (int)left);
        if (!ev)
            return NULL;
        if (rd_kafka_event_type(ev) == type)
            return ev;
        rd_kafka_event_destroy(ev); /* a late result of an earlier call */
    }
}

static rd_kafka_AdminOptions_t *admin_options(lk_log *l, rd_kafka_admin_op_t op)
{
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(l->producer, op);
    char es[128];
    rd_kafka_AdminOptions_set_request_timeout(o, LK_REQUEST_TIMEOUT_MS, es,
                                              sizeof es);
    if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS)
        rd_kafka_AdminOptions_set_operation_timeout(o, LK_REQUEST_TIMEOUT_MS,
                                                    es, sizeof es);
    return o;
}

int lk_topic_compacted(lk_log *l, const lk_topic *t, bool *compacted,
                       stele_err *err)
{
    if (t->compacted >= 0) {
        *compacted = t->compacted;
        return 0;
    }
    rd_kafka_ConfigResource_t *res =
        rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, t->name);
    rd_kafka_AdminOptions_t *o =
        admin_options(l, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_DescribeConfigs(l->producer, &res, 1, o, l->admin_q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_ConfigResource_destroy(res);
    rd_kafka_event_t *ev = admin_wait(l, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT);
    if (!ev)
        return stele_err_set(err, STELE_ERETRY,
                             "topic '%s': no DescribeConfigs answer from %s",
                             t->name, l->bootstrap);
    int rc = 0;
    if (rd_kafka_event_error(ev)) {
        rc = stele_err_set(err, lk_status_of(rd_kafka_event_error(ev)),
                           "topic '%s': describing its configs: %s", t->name,
                           rd_kafka_event_error_string(ev));
    } else {
        size_t nres = 0, ncfg = 0;
        const rd_kafka_ConfigResource_t **rs =
            rd_kafka_DescribeConfigs_result_resources(
                rd_kafka_event_DescribeConfigs_result(ev), &nres);
        bool found = false;
        if (nres == 1 && rd_kafka_ConfigResource_error(rs[0]))
            rc = stele_err_set(
                err, lk_status_of(rd_kafka_ConfigResource_error(rs[0])),
                "topic '%s': describing its configs: %s", t->name,
                rd_kafka_ConfigResource_error_string(rs[0]));
        const rd_kafka_ConfigEntry_t **cs =
            nres == 1 && !rc ? rd_kafka_ConfigResource_configs(rs[0], &ncfg)
                             : NULL;
        for (size_t i = 0; i < ncfg; i++) {
            if (strcmp(rd_kafka_ConfigEntry_name(cs[i]), "cleanup.policy"))
                continue;
            const char *v = rd_kafka_ConfigEntry_value(cs[i]);
            ((lk_topic *)t)->compacted = v && strstr(v, "compact") != NULL;
            found = true;
        }
        if (!rc && !found)
            rc = stele_err_set(err, STELE_EIO,
                               "topic '%s': the broker did not report its "
                               "cleanup.policy",
                               t->name);
    }
    rd_kafka_event_destroy(ev);
    if (!rc)
        *compacted = t->compacted;
    return rc;
}

static int topic_compare(lk_log *l, const lk_topic *t,
                         const stele_topic_spec *spec, stele_err *err)
{
    bool compacted;
    int rc = lk_topic_compacted(l, t, &compacted, err);
    if (rc)
        return rc;
    return stele_log_topic_matches(t->name, t->partitions, compacted, spec,
                                   err);
}

/* The spec as a NewTopic: its "k=v" configs, and cleanup.policy=compact
 * for a compacted topic (a contradicting cleanup.policy is an error). */
static int new_topic(const stele_topic_spec *spec, rd_kafka_NewTopic_t **out,
                     stele_err *err)
{
    char es[256];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(
        spec->name, spec->partitions,
        spec->replication_factor > 0 ? spec->replication_factor : -1, es,
        sizeof es);
    if (!nt)
        return stele_err_set(err, STELE_EINVAL, "topic '%s': %s", spec->name,
                             es);
    bool policy = false;
    for (size_t i = 0; i < spec->n_configs; i++) {
        const char *kv = spec->configs[i];
        const char *eq = kv ? strchr(kv, '=') : NULL;
        char key[256];
        if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof key) {
            rd_kafka_NewTopic_destroy(nt);
            return stele_err_set(err, STELE_EINVAL,
                                 "topic '%s': config %zu '%s' is not "
                                 "key=value",
                                 spec->name, i, kv ? kv : "(null)");
        }
        memcpy(key, kv, (size_t)(eq - kv));
        key[eq - kv] = '\0';
        if (!strcmp(key, "cleanup.policy")) {
            policy = true;
            if ((strstr(eq + 1, "compact") != NULL) != spec->compacted) {
                rd_kafka_NewTopic_destroy(nt);
                return stele_err_set(err, STELE_EINVAL,
                                     "topic '%s': config '%s' contradicts "
                                     "the topic being %s",
                                     spec->name, kv,
                                     spec->compacted ? "compacted"
                                                     : "not compacted");
            }
        }
        if (rd_kafka_NewTopic_set_config(nt, key, eq + 1)) {
            rd_kafka_NewTopic_destroy(nt);
            return stele_err_set(err, STELE_ENOMEM, "topic '%s'", spec->name);
        }
    }
    if (spec->compacted && !policy)
        rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    *out = nt;
    return 0;
}

static int create_topic(lk_log *l, const stele_topic_spec *spec,
                        rd_kafka_resp_err_t *result, stele_err *err)
{
    rd_kafka_NewTopic_t *nt;
    int rc = new_topic(spec, &nt, err);
    if (rc)
        return rc;
    rd_kafka_AdminOptions_t *o =
        admin_options(l, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(l->producer, &nt, 1, o, l->admin_q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_event_t *ev = admin_wait(l, RD_KAFKA_EVENT_CREATETOPICS_RESULT);
    if (!ev)
        return stele_err_set(err, STELE_ERETRY,
                             "topic '%s': no CreateTopics answer from %s",
                             spec->name, l->bootstrap);
    rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
    if (e) {
        rc = stele_err_set(err, lk_status_of(e), "topic '%s': creating: %s",
                           spec->name, rd_kafka_event_error_string(ev));
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_CreateTopics_result_topics(
                rd_kafka_event_CreateTopics_result(ev), &n);
        e = n ? rd_kafka_topic_result_error(tr[0]) : RD_KAFKA_RESP_ERR_UNKNOWN;
        *result = e;
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            rc = stele_err_set(
                err, lk_status_of(e), "topic '%s': creating on %s: %s",
                spec->name, l->bootstrap,
                n ? rd_kafka_topic_result_error_string(tr[0]) : "no result");
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

/* Until every partition has a leader, producing and fetching fail. */
static int wait_visible(lk_log *l, const char *name, int32_t *partitions,
                        stele_err *err)
{
    int64_t deadline = lk_now_ms() + LK_REQUEST_TIMEOUT_MS;
    for (int delay = 10;; delay = delay < 500 ? delay * 2 : delay) {
        bool leaders = false;
        int rc = topic_metadata(l, name, partitions, &leaders, err);
        if (rc)
            return rc;
        if (*partitions && leaders)
            return 0;
        if (lk_now_ms() > deadline)
            return stele_err_set(err, STELE_ERETRY,
                                 "topic '%s': created, but its partitions "
                                 "have no leader after %d ms",
                                 name, LK_REQUEST_TIMEOUT_MS);
        lk_sleep_ms(delay);
    }
}

int lk_topic_ensure(stele_log *log, const stele_topic_spec *spec,
                    stele_err *err)
{
    lk_log *l = (lk_log *)log;
    const lk_topic *t = stele_map_gets(l->topics, spec->name);
    if (t)
        return topic_compare(l, t, spec, err);
    rd_kafka_resp_err_t result = RD_KAFKA_RESP_ERR_NO_ERROR;
    int rc = create_topic(l, spec, &result, err);
    if (rc)
        return rc;
    int32_t n = 0;
    if ((rc = wait_visible(l, spec->name, &n, err)))
        return rc;
    if (result == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        if ((rc = topic_cache(l, spec->name, n, -1, &t, err)))
            return rc;
        return topic_compare(l, t, spec, err);
    }
    return topic_cache(l, spec->name, n, spec->compacted, &t, err);
}

int lk_topic_partitions(stele_log *log, const char *topic, int32_t *n,
                        stele_err *err)
{
    const lk_topic *t;
    int rc = lk_topic_get((lk_log *)log, topic, &t, err);
    if (!rc)
        *n = t->partitions;
    return rc;
}
