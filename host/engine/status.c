/*
 * status.c — where the host stands: for each aggregate, how many commands
 * wait (log end against the engine group's committed offsets); for each
 * projector, which version serves queries and how far each version's
 * checkpoints are behind the end of the events it reads. Read from the
 * log and the store only, so any process with the config can ask, with or
 * without a running host.
 */
#include <stdio.h>

#include "common/err.h"
#include "internal.h"

/* end - next per partition of one topic, appended to parts; *lag gets the
 * sum. next_of returns a partition's next offset to read. */
typedef int (*next_fn)(stele_engine *e, const void *arg, const char *topic,
                       int32_t partition, int64_t *next, stele_err *err);

static int topic_lag(stele_engine *e, const char *topic, next_fn next_of,
                     const void *arg, const char *next_name, json_t *parts,
                     int64_t *lag, stele_err *err)
{
    int32_t n;
    int rc = stele_log_topic_partitions(e->log, topic, &n, err);
    for (int32_t i = 0; rc == 0 && i < n; i++) {
        int64_t end, next;
        if ((rc = stele_log_end_offset(e->log, topic, i, &end, err)) ||
            (rc = next_of(e, arg, topic, i, &next, err)))
            break;
        int64_t behind = end > next ? end - next : 0;
        *lag += behind;
        json_t *p = json_pack("{s:s, s:i, s:I, s:I, s:I}", "topic", topic,
                              "partition", (int)i, "end", (json_int_t)end,
                              next_name, (json_int_t)next, "lag",
                              (json_int_t)behind);
        if (!p || json_array_append_new(parts, p))
            rc = stele_err_set(err, STELE_ENOMEM, "status: out of memory");
    }
    return rc;
}

static int committed_next(stele_engine *e, const void *arg, const char *topic,
                          int32_t partition, int64_t *next, stele_err *err)
{
    (void)arg;
    return stele_log_committed(e->log, e->cmd_group, topic, partition, next,
                               err);
}

static int checkpoint_next(stele_engine *e, const void *arg, const char *topic,
                           int32_t partition, int64_t *next, stele_err *err)
{
    return stele_store_checkpoint_get(e->store, arg, topic, partition, next,
                                      err);
}

static json_t *with_lag(json_t *o, json_t *parts, int64_t lag)
{
    if (o && parts) {
        json_object_set_new(o, "lag", json_integer(lag));
        json_object_set(o, "partitions", parts);
    }
    json_decref(parts);
    return o;
}

static int aggregate_status(stele_engine *e, const aggregate *a, json_t **out,
                            stele_err *err)
{
    json_t *parts = json_array();
    int64_t lag = 0;
    if (!parts)
        return stele_err_set(err, STELE_ENOMEM, "status: out of memory");
    int rc = topic_lag(e, a->t_commands, committed_next, NULL, "committed",
                       parts, &lag, err);
    if (rc) {
        json_decref(parts);
        return rc;
    }
    *out = with_lag(json_pack("{s:s, s:s}", "aggregate", a->def->type,
                              "topic", a->t_commands),
                    parts, lag);
    return 0;
}

/* {"version", "lag", "partitions"} of one version's checkpoints. */
static int version_status(stele_engine *e, const projector *p, int version,
                          json_t **out, stele_err *err)
{
    char key[160];
    snprintf(key, sizeof key, "%s@v%d", p->def->name, version);
    json_t *parts = json_array();
    int64_t lag = 0;
    int rc = parts ? 0 : stele_err_set(err, STELE_ENOMEM, "out of memory");
    for (size_t t = 0; rc == 0 && t < p->n_topics; t++)
        rc = topic_lag(e, p->topics[t], checkpoint_next, key, "checkpoint",
                       parts, &lag, err);
    if (rc) {
        json_decref(parts);
        return rc;
    }
    *out = with_lag(json_pack("{s:i}", "version", version), parts, lag);
    return 0;
}

/* {"name", "version" (this host's plugin), "serving" (the version queries
 * read; null before the first build), its "lag" and "partitions", and
 * "building" while a new version is built beside the serving one}. */
static int projector_status(stele_engine *e, const projector *p,
                            json_t **out, stele_err *err)
{
    int serving;
    int rc = stele_store_projector_version(e->store, p->def->name, &serving,
                                           err);
    if (rc)
        return rc;
    int shown = serving >= 0 ? serving : p->def->version;
    json_t *cur = NULL, *building = NULL;
    if ((rc = version_status(e, p, shown, &cur, err)))
        return rc;
    if (serving >= 0 && serving != p->def->version &&
        (rc = version_status(e, p, p->def->version, &building, err))) {
        json_decref(cur);
        return rc;
    }
    json_t *o = json_pack("{s:s, s:i, s:o, s:O, s:O}", "name", p->def->name,
                          "version", p->def->version, "serving",
                          serving >= 0 ? json_integer(serving) : json_null(),
                          "lag", json_object_get(cur, "lag"), "partitions",
                          json_object_get(cur, "partitions"));
    json_decref(cur);
    if (o && building)
        json_object_set_new(o, "building", building);
    else
        json_decref(building);
    if (!o)
        return stele_err_set(err, STELE_ENOMEM, "status: out of memory");
    *out = o;
    return 0;
}

int stele_engine_status(stele_engine *e, json_t **out, stele_err *err)
{
    json_t *cmds = json_array(), *projs = json_array();
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o}", "app", e->cfg->app,
                          "log", stele_log_backend_name(e->log), "store",
                          stele_store_backend_name(e->store), "commands",
                          cmds, "projectors", projs);
    if (!o)
        return stele_err_set(err, STELE_ENOMEM, "status: out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < e->n_aggs; i++) {
        json_t *a = NULL;
        if ((rc = aggregate_status(e, &e->aggs[i], &a, err)) == 0 &&
            json_array_append_new(cmds, a))
            rc = stele_err_set(err, STELE_ENOMEM, "status: out of memory");
    }
    for (size_t i = 0; rc == 0 && i < e->n_projs; i++) {
        json_t *p = NULL;
        if ((rc = projector_status(e, &e->projs[i], &p, err)) == 0 &&
            json_array_append_new(projs, p))
            rc = stele_err_set(err, STELE_ENOMEM, "status: out of memory");
    }
    if (rc) {
        json_decref(o);
        return stele_err_prefix(err, "status");
    }
    *out = o;
    return 0;
}
