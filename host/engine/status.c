/*
 * status.c — where the host stands: for each aggregate, how many commands
 * wait (log end against the engine group's committed offsets); for each
 * projector, which version serves queries and how far each version's
 * checkpoints are behind the end of the events it reads. Read from the
 * log and the store only, so any process with the config can ask, with or
 * without a running host.
 */
#include <stdio.h>
#include <stdlib.h>

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
        json_t *p =
            json_pack("{s:s, s:i, s:I, s:I, s:I}", "topic", topic, "partition",
                      (int)i, "end", (json_int_t)end, next_name,
                      (json_int_t)next, "lag", (json_int_t)behind);
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

/* Adds "lag" and "partitions" to o: every partition of topics[0..n),
 * next_of giving where reading is (its name in each entry: next_name). */
static int add_lag(stele_engine *e, json_t *o, const char *const *topics,
                   size_t n, next_fn next_of, const void *arg,
                   const char *next_name, stele_err *err)
{
    json_t *parts = json_array();
    int64_t lag = 0;
    if (!o || !parts) {
        json_decref(parts);
        return stele_err_set(err, STELE_ENOMEM, "status: out of memory");
    }
    int rc = 0;
    for (size_t t = 0; rc == 0 && t < n; t++)
        rc = topic_lag(e, topics[t], next_of, arg, next_name, parts, &lag, err);
    if (rc == 0 && (json_object_set_new(o, "lag", json_integer(lag)) ||
                    json_object_set(o, "partitions", parts)))
        rc = stele_err_set(err, STELE_ENOMEM, "status: out of memory");
    json_decref(parts);
    return rc;
}

/* The latest state record of each aggregate of one partition: whether
 * it marks the aggregate broken, and then why. */
static int broken_of_partition(stele_engine *e, const aggregate *a, int32_t p,
                               json_t *out, stele_err *err)
{
    json_t *latest = json_object(); /* id -> entry, or null when fine */
    if (!latest)
        return stele_err_set(err, STELE_ENOMEM, "status: out of memory");
    int64_t from = 0;
    int rc = 0;
    for (;;) {
        stele_log_batch *b;
        if ((rc = stele_log_read(e->log, a->t_state, p, from, 4096, &b, err)))
            break;
        size_t n = b->n;
        for (size_t i = 0; i < n && rc == 0; i++) {
            const stele_log_record *r = &b->records[i];
            from = r->offset + 1;
            size_t hl;
            json_t *o = NULL;
            if (engine_header_get(r, STELE_H_BROKEN, &hl) && r->value) {
                char v[24];
                engine_header_str(r, STELE_H_VERSION, v, sizeof v);
                o = json_pack("{s:s, s:s%, s:i, s:I, s:s%}", "aggregate",
                              a->def->type, "id", r->key, r->key_len,
                              "partition", (int)p, "version",
                              (json_int_t)strtoll(v, NULL, 10), "reason",
                              (const char *)r->value, r->value_len);
            }
            /* not UTF-8: such a key was never an id this host took */
            if (!o && engine_header_get(r, STELE_H_BROKEN, &hl))
                continue;
            json_t *k = json_stringn_nocheck(r->key, r->key_len);
            const char *key = k ? json_string_value(k) : NULL;
            if (!key || json_object_setn_new_nocheck(latest, key, r->key_len,
                                                     o ? o : json_null()))
                rc = stele_err_set(err, STELE_ENOMEM, "status: out of memory");
            json_decref(k);
        }
        stele_log_batch_free(b);
        if (rc != 0 || n == 0)
            break;
    }
    const char *key;
    json_t *v;
    json_object_foreach(latest, key, v) if (rc == 0 && !json_is_null(v) &&
                                            json_array_append(out, v)) rc =
        stele_err_set(err, STELE_ENOMEM, "status: out of memory");
    json_decref(latest);
    return rc;
}

int engine_broken_aggregates(stele_engine *e, const aggregate *a, json_t *out,
                             stele_err *err)
{
    int rc = 0;
    for (size_t i = 0; i < e->n_aggs && rc == 0; i++) {
        const aggregate *x = &e->aggs[i];
        if (a && x != a)
            continue;
        for (int32_t p = 0; p < x->partitions && rc == 0; p++)
            rc = broken_of_partition(e, x, p, out, err);
    }
    return rc;
}

static int aggregate_status(stele_engine *e, const aggregate *a, json_t **out,
                            stele_err *err)
{
    json_t *o = json_pack("{s:s, s:s}", "aggregate", a->def->type, "topic",
                          a->t_commands);
    const char *topics[] = {a->t_commands};
    int rc = add_lag(e, o, topics, 1, committed_next, NULL, "committed", err);
    json_t *broken = json_array();
    if (rc == 0 && !broken)
        rc = stele_err_set(err, STELE_ENOMEM, "status: out of memory");
    if (rc == 0)
        rc = engine_broken_aggregates(e, a, broken, err);
    if (rc == 0 && json_object_set(o, "broken", broken))
        rc = stele_err_set(err, STELE_ENOMEM, "status: out of memory");
    json_decref(broken);
    if (rc)
        json_decref(o);
    else
        *out = o;
    return rc;
}

/* Adds the lag of a version's checkpoints to o. */
static int version_lag(stele_engine *e, const projector *p, int version,
                       json_t *o, stele_err *err)
{
    char key[160];
    snprintf(key, sizeof key, "%s@v%d", p->def->name, version);
    return add_lag(e, o, (const char *const *)p->topics, p->n_topics,
                   checkpoint_next, key, "checkpoint", err);
}

static int parked_json(void *opaque, const char *topic, int32_t partition,
                       const void *key, size_t key_len, int64_t offset,
                       const char *reason)
{
    json_t *id = json_stringn(key, key_len);
    if (!id) { /* not UTF-8: shown as hex */
        char hex[2 * MAX_ID_LEN + 1];
        size_t n = key_len < MAX_ID_LEN ? key_len : MAX_ID_LEN;
        for (size_t i = 0; i < n; i++)
            snprintf(hex + 2 * i, 3, "%02x", ((const unsigned char *)key)[i]);
        hex[2 * n] = '\0';
        id = json_pack("{s:s}", "hex", hex);
    }
    json_t *o = json_pack("{s:s, s:i, s:o, s:I, s:s}", "topic", topic,
                          "partition", (int)partition, "id", id, "offset",
                          (json_int_t)offset, "reason", reason);
    return !o || json_array_append_new(opaque, o);
}

/* {"name", "version" (this host's plugin), "serving" (the version queries
 * read; null before the first build), its "lag" and "partitions", and
 * "building" while a new version is built beside the serving one}. */
static int projector_status(stele_engine *e, const projector *p, json_t **out,
                            stele_err *err)
{
    int serving;
    int rc =
        stele_store_projector_version(e->store, p->def->name, &serving, err);
    if (rc)
        return rc;
    json_t *o = json_pack("{s:s, s:i, s:o}", "name", p->def->name, "version",
                          p->def->version, "serving",
                          serving >= 0 ? json_integer(serving) : json_null());
    rc = version_lag(e, p, serving >= 0 ? serving : p->def->version, o, err);
    json_t *parked = json_array();
    if (rc == 0 && (!parked || json_object_set(o, "parked", parked)))
        rc = stele_err_set(err, STELE_ENOMEM, "status: out of memory");
    if (rc == 0)
        rc = stele_store_parked_list(e->store, p->ckpt_key, parked_json, parked,
                                     err);
    json_decref(parked);
    if (rc == 0 && serving >= 0 && serving != p->def->version) {
        json_t *b = json_pack("{s:i}", "version", p->def->version);
        if ((rc = version_lag(e, p, p->def->version, b, err)))
            json_decref(b);
        else if (json_object_set_new(o, "building", b)) /* takes b */
            rc = stele_err_set(err, STELE_ENOMEM, "status: out of memory");
    }
    if (rc) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

int stele_engine_status(stele_engine *e, json_t **out, stele_err *err)
{
    json_t *cmds = json_array(), *projs = json_array();
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o}", "app", e->cfg->app,
                          "log", stele_log_backend_name(e->log), "store",
                          stele_store_backend_name(e->store), "commands", cmds,
                          "projectors", projs);
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
