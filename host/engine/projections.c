/*
 * The projection runner. Each projector is its own consumer group on the
 * events topics of the aggregates it listens to. Its position lives in the
 * read-model store, not in the log's group offsets: a batch's writes and
 * the projector's checkpoint commit in one store transaction, so the read
 * model and its position never diverge. Bumping a projector's version
 * drops its tables and rebuilds them from the start of the log.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/value.h"
#include "common/err.h"
#include "common/text.h"
#include "common/util.h"
#include "guard.h"
#include "internal.h"

static int add_topic(projector *p, const char *topic)
{
    for (size_t i = 0; i < p->n_topics; i++)
        if (strcmp(p->topics[i], topic) == 0)
            return 0;
    char **nt = realloc(p->topics, (p->n_topics + 1) * sizeof *nt);
    if (!nt)
        return STELE_ENOMEM;
    p->topics = nt;
    if (!(p->topics[p->n_topics] = strdup(topic)))
        return STELE_ENOMEM;
    p->n_topics++;
    return 0;
}

int projections_open(stele_engine *e, stele_err *err)
{
    for (size_t i = 0; i < e->n_projs; i++) {
        projector *p = &e->projs[i];
        const stele_projector_def *d = p->def;
        size_t gl = strlen(e->cfg->app) + strlen(d->name) + 32;
        p->group = malloc(gl);
        p->subs = calloc(d->n_events ? d->n_events : 1, sizeof *p->subs);
        p->sub_index = stele_map_new();
        p->parked = stele_map_new();
        if (!p->group || !p->subs || !p->sub_index || !p->parked)
            return stele_err_set(err, STELE_ENOMEM, "out of memory");
        /* One group per version: hosts of the old version keep serving
         * (and updating) theirs while new hosts build the new one. */
        snprintf(p->group, gl, "%s.projector.%s.v%d", e->cfg->app, d->name,
                 d->version);
        snprintf(p->ckpt_key, sizeof p->ckpt_key, "%s@v%d", d->name,
                 d->version);
        snprintf(p->guard_id, sizeof p->guard_id, "%s", p->ckpt_key);
        projections_namespace(d->name, d->version, p->ns, sizeof p->ns);
        for (size_t j = 0; j < d->n_events; j++) {
            const stele_record_ref *ref = &d->events[j];
            aggregate *a = stele_map_gets(e->event_index, ref->name);
            if (!a)
                return stele_err_set(err, STELE_EINVAL,
                                     "%s: projector %s subscribes to %s, "
                                     "which no loaded aggregate emits",
                                     p->plugin->path, d->name, ref->name);
            p->subs[j].tv.name = ref->name;
            int rc = stele_codec_schema(e->codec, ref->name, ref->version,
                                        &p->subs[j].tv.schema, err);
            if (rc != 0)
                return stele_err_prefix(err, "%s", p->plugin->path);
            if (stele_map_put(p->sub_index, ref->name, strlen(ref->name),
                              &p->subs[j], NULL) != 0 ||
                add_topic(p, a->t_events) != 0)
                return stele_err_set(err, STELE_ENOMEM, "out of memory");
        }
    }
    return 0;
}

void projections_close(stele_engine *e)
{
    for (size_t i = 0; i < e->n_projs; i++) {
        projector *p = &e->projs[i];
        if (p->consumer)
            stele_log_consumer_close(p->consumer);
        if (p->subs)
            for (size_t j = 0; j < p->def->n_events; j++)
                engine_values_free(&p->subs[j].tv);
        for (size_t j = 0; j < p->n_topics; j++)
            free(p->topics[j]);
        free(p->topics);
        free(p->subs);
        stele_map_free(p->sub_index, NULL);
        stele_map_free(p->parked, NULL);
        free(p->parking);
        free(p->group);
        stele_codec_events_free(p->reads);
        free(p->evs);
        free(p->metas);
        free(p->wrapped);
    }
}

void projections_namespace(const char *name, int version, char *out,
                           size_t size)
{
    /* rm_<name>_v<version>, lower case: a PostgreSQL schema name */
    size_t at = (size_t)snprintf(out, size, "rm_");
    for (const char *c = name; *c && at + 12 < size; c++) {
        char ch = *c;
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        out[at++] =
            ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) ? ch : '_';
    }
    snprintf(out + at, size - at, "_v%d", version);
}

int projections_use_serving(stele_engine *e, stele_err *err)
{
    if (!stele_store_has_namespaces(e->store) || e->n_projs == 0)
        return 0;
    char names[64][64];
    const char *ns[64];
    size_t n = 0;
    for (size_t i = 0; i < e->n_projs && n < 64; i++) {
        int active;
        int rc = stele_store_projector_version(e->store, e->projs[i].def->name,
                                               &active, err);
        if (rc != 0)
            return rc;
        if (active < 0)
            continue;
        projections_namespace(e->projs[i].def->name, active, names[n],
                              sizeof names[n]);
        ns[n] = names[n];
        n++;
    }
    return stele_store_use_namespaces(e->store, ns, n, err);
}

/* Creates a table of p. A plugin built against ABI 1.0, before
 * STELE_COL_INDEX, had an index on every FILTER or SORT column: it keeps
 * them. */
static int create_table(stele_engine *e, const projector *p,
                        const stele_table_def *t, stele_err *err)
{
    if (p->plugin->desc->abi_minor >= 1)
        return stele_store_table_create(e->store, t, err);
    stele_column_def *cols = malloc(t->n_columns * sizeof *cols);
    if (!cols)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    for (size_t i = 0; i < t->n_columns; i++) {
        cols[i] = t->columns[i];
        if (cols[i].flags & (STELE_COL_FILTER | STELE_COL_SORT))
            cols[i].flags |= STELE_COL_INDEX;
    }
    stele_table_def implied = *t;
    implied.columns = cols;
    int rc = stele_store_table_create(e->store, &implied, err);
    free(cols);
    return rc;
}

/* Publishes p's tables as views in readmodels (PostgreSQL): replace when
 * its version has just become the serving one; otherwise only the views
 * missing (a read model created before views existed). */
static int publish_tables(stele_engine *e, const projector *p, bool replace,
                          stele_err *err)
{
    int rc = 0;
    for (size_t i = 0; i < p->def->n_tables && rc == 0; i++)
        rc = stele_store_table_publish(e->store, p->ns, p->def->tables[i].name,
                                       replace, err);
    return rc;
}

/* Creates the projector's tables. When its version changed: with store
 * namespaces (PostgreSQL) the new version is built beside the serving one,
 * which keeps answering queries until the new one has caught up; without
 * them (SQLite) the tables are dropped and rebuilt in place. */
static int prepare_read_model(stele_engine *e, projector *p, stele_err *err)
{
    const stele_projector_def *d = p->def;
    int stored, rc;
    bool beside = stele_store_has_namespaces(e->store);
    if ((rc = stele_store_begin(e->store, err)))
        return rc;
    /* Read the version under the lock: another host may be preparing the
     * same read model right now. */
    if ((rc = stele_store_lock_ddl(e->store, err)) ||
        (rc = stele_store_projector_version(e->store, d->name, &stored, err))) {
        stele_store_rollback(e->store);
        return rc;
    }
    p->building = false;
    if (stored != -1 && stored != d->version) {
        engine_logf(e, STELE_LOG_INFO, "projector %s: version %d -> %d: %s",
                    d->name, stored, d->version,
                    beside ? "building the new read model beside the "
                             "serving one"
                           : "rebuilding its read model from the start of "
                             "the log");
        if (beside) {
            p->building = true;
        } else {
            char old[160];
            snprintf(old, sizeof old, "%s@v%d", d->name, stored);
            for (size_t i = 0; i < d->n_tables && rc == 0; i++)
                rc = stele_store_table_drop(e->store, d->tables[i].name, err);
            if (rc == 0)
                rc = stele_store_checkpoints_clear(e->store, old, err);
        }
    }
    const char *ns = p->ns;
    if (rc == 0 && beside &&
        ((rc = stele_store_namespace_create(e->store, p->ns, err)) == 0))
        rc = stele_store_use_namespaces(e->store, &ns, 1, err);
    for (size_t i = 0; i < d->n_tables && rc == 0; i++)
        rc = create_table(e, p, &d->tables[i], err);
    if (rc == 0 && stored != d->version && !p->building)
        rc = stele_store_projector_set_version(e->store, d->name, d->version,
                                               err);
    if (rc == 0 && beside && !p->building)
        rc = publish_tables(e, p, stored != d->version, err);
    if (rc != 0) {
        stele_store_rollback(e->store);
        return stele_err_prefix(err, "projector %s", d->name);
    }
    return stele_store_commit(e->store, err);
}

/* While building a new version: once its checkpoints reach the end of
 * every partition it reads, make it the serving one and drop the old. */
static int switch_over_if_caught_up(stele_engine *e, projector *p,
                                    stele_err *err)
{
    int64_t now = stele_mono_ns();
    if (!p->building || now < p->next_catchup_check_ns)
        return 0;
    p->next_catchup_check_ns = now + 200 * 1000000LL;
    for (size_t t = 0; t < p->n_topics; t++) {
        int32_t parts;
        int rc = stele_log_topic_partitions(e->log, p->topics[t], &parts, err);
        for (int32_t i = 0; rc == 0 && i < parts; i++) {
            int64_t end, next;
            if ((rc = stele_log_end_offset(e->log, p->topics[t], i, &end,
                                           err)) ||
                (rc = stele_store_checkpoint_get(e->store, p->ckpt_key,
                                                 p->topics[t], i, &next, err)))
                break;
            if (next < end)
                return 0; /* not yet */
        }
        if (rc != 0)
            return rc;
    }
    int stored, rc;
    if ((rc = stele_store_begin(e->store, err)))
        return rc;
    if ((rc = stele_store_lock_ddl(e->store, err)) ||
        (rc = stele_store_projector_version(e->store, p->def->name, &stored,
                                            err)) ||
        (rc = stele_store_projector_set_version(e->store, p->def->name,
                                                p->def->version, err))) {
        stele_store_rollback(e->store);
        return rc;
    }
    if ((rc = publish_tables(e, p, true, err))) {
        stele_store_rollback(e->store);
        return rc;
    }
    if (stored >= 0 && stored != p->def->version) {
        char old[64], key[160];
        projections_namespace(p->def->name, stored, old, sizeof old);
        snprintf(key, sizeof key, "%s@v%d", p->def->name, stored);
        if ((rc = stele_store_namespace_drop(e->store, old, err)) ||
            (rc = stele_store_checkpoints_clear(e->store, key, err))) {
            stele_store_rollback(e->store);
            return rc;
        }
    }
    if ((rc = stele_store_commit(e->store, err)))
        return rc;
    p->building = false;
    engine_logf(e, STELE_LOG_INFO,
                "projector %s: version %d caught up and now serves queries",
                p->def->name, p->def->version);
    return 0;
}

/* Puts every assigned partition at the projector's stored checkpoint. */
static int seek_to_checkpoints(stele_engine *e, projector *p, stele_err *err)
{
    const stele_topic_partition *tps;
    size_t n = stele_log_consumer_assignment(p->consumer, &tps);
    for (size_t i = 0; i < n; i++) {
        int64_t next;
        int rc = stele_store_checkpoint_get(e->store, p->ckpt_key, tps[i].topic,
                                            tps[i].partition, &next, err);
        if (rc == 0)
            rc = stele_log_consumer_seek(p->consumer, tps[i].topic,
                                         tps[i].partition, next, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* "<topic>\0<key>" into buf: the key of an aggregate in p->parked (a key
 * too long for buf is cut: ids are at most MAX_ID_LEN bytes). */
static size_t parked_key(char *buf, size_t size, const char *topic,
                         const void *key, size_t key_len)
{
    size_t tl = strlen(topic);
    if (tl + 1 >= size)
        tl = size - 2;
    memcpy(buf, topic, tl);
    buf[tl] = '\0';
    size_t kl = key_len < size - tl - 1 ? key_len : size - tl - 1;
    if (kl)
        memcpy(buf + tl + 1, key, kl);
    return tl + 1 + kl;
}

static bool is_parked(const projector *p, const stele_log_record *r)
{
    if (stele_map_count(p->parked) == 0)
        return false;
    char k[MAX_ID_LEN + 512];
    size_t kl = parked_key(k, sizeof k, r->topic, r->key, r->key_len);
    return stele_map_get(p->parked, k, kl) != NULL;
}

static int mark_parked(projector *p, const char *topic, const void *key,
                       size_t key_len, bool on)
{
    char k[MAX_ID_LEN + 512];
    size_t kl = parked_key(k, sizeof k, topic, key, key_len);
    if (!on) {
        stele_map_del(p->parked, k, kl);
        return 0;
    }
    return stele_map_put(p->parked, k, kl, p, NULL) ? STELE_ENOMEM : 0;
}

static int load_parked_one(void *opaque, const char *topic, int32_t partition,
                           const void *key, size_t key_len, int64_t offset,
                           const char *reason)
{
    (void)partition;
    (void)offset;
    (void)reason;
    return mark_parked(opaque, topic, key, key_len, true);
}

/* The projector's parked aggregates, as the store has them. */
static int load_parked(stele_engine *e, projector *p, stele_err *err)
{
    stele_map_free(p->parked, NULL);
    if (!(p->parked = stele_map_new()))
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    return stele_store_parked_list(e->store, p->ckpt_key, load_parked_one, p,
                                   err);
}

/* Parks r's aggregate: r and its aggregate's later events are not
 * projected; the batch writes it with its checkpoints. */
static int park(stele_engine *e, projector *p, const stele_log_record *r,
                const char *why)
{
    if (p->n_parking == p->cap_parking) {
        size_t cap = p->cap_parking ? 2 * p->cap_parking : 8;
        struct parked_new *n = realloc(p->parking, cap * sizeof *n);
        if (!n)
            return STELE_ENOMEM;
        p->parking = n;
        p->cap_parking = cap;
    }
    if (mark_parked(p, r->topic, r->key, r->key_len, true))
        return STELE_ENOMEM;
    struct parked_new *n = &p->parking[p->n_parking++];
    n->rec = r;
    snprintf(n->reason, sizeof n->reason, "%s", why);
    stele_text_utf8_fix(n->reason);
    char id[MAX_ID_LEN + 1];
    snprintf(id, sizeof id, "%.*s",
             (int)(r->key_len < MAX_ID_LEN ? r->key_len : MAX_ID_LEN),
             r->key ? (const char *)r->key : "");
    stele_text_utf8_fix(id);
    e->stats.events_parked++;
    engine_logf(e, STELE_LOG_ERROR,
                "projector %s: parked aggregate %s of %s[%d] at offset "
                "%" PRId64 ": %s (its later events wait for stele replay; the "
                "other aggregates go on)",
                p->def->name, id, r->topic, (int)r->partition, r->offset,
                n->reason);
    return 0;
}

/* Writes what the batch parked (in the store transaction of its
 * checkpoints). */
static int write_parking(stele_engine *e, projector *p, stele_err *err)
{
    int rc = 0;
    for (size_t i = 0; i < p->n_parking && rc == 0; i++) {
        const stele_log_record *r = p->parking[i].rec;
        rc = stele_store_parked_add(e->store, p->ckpt_key, r->topic,
                                    r->partition, r->key, r->key_len, r->offset,
                                    p->parking[i].reason, err);
    }
    return rc;
}

/* The batch did not commit: what it parked is not parked. */
static void undo_parking(projector *p)
{
    for (size_t i = 0; i < p->n_parking; i++) {
        const stele_log_record *r = p->parking[i].rec;
        mark_parked(p, r->topic, r->key, r->key_len, false);
    }
    p->n_parking = 0;
}

static void on_assigned(void *opaque, stele_log_consumer *c,
                        const stele_topic_partition *tps, size_t n)
{
    (void)tps;
    (void)n;
    projector *p = opaque;
    p->consumer = c;
    p->assign_rc = 0;
    if (!p->prepared) {
        p->assign_rc = prepare_read_model(p->engine, p, &p->assign_err);
        p->prepared = p->assign_rc == 0;
    }
    if (p->assign_rc == 0)
        p->assign_rc = seek_to_checkpoints(p->engine, p, &p->assign_err);
    if (p->assign_rc == 0)
        p->assign_rc = load_parked(p->engine, p, &p->assign_err);
}

static void on_revoked(void *opaque, stele_log_consumer *c,
                       const stele_topic_partition *tps, size_t n, bool lost)
{
    (void)opaque;
    (void)c;
    (void)tps;
    (void)n;
    (void)lost;
    /* Nothing is held between batches: checkpoints are committed with
     * each batch. */
}

static int grow_metas(projector *p, size_t n)
{
    if (n <= p->cap_metas)
        return 0;
    stele_event_meta *metas = realloc(p->metas, n * sizeof *metas);
    if (!metas)
        return STELE_ENOMEM;
    p->metas = metas;
    p->cap_metas = n;
    return 0;
}

static int grow_events(projector *p, size_t n)
{
    if (n <= p->cap)
        return 0;
    stele_event *evs = realloc(p->evs, n * sizeof *evs);
    if (evs)
        p->evs = evs;
    stele_value *w = realloc(p->wrapped, n * sizeof *w);
    if (w)
        p->wrapped = w;
    if (!evs || !w)
        return STELE_ENOMEM;
    p->cap = n;
    return 0;
}

static const stele_schema *projector_wants(void *opaque, const char *type)
{
    subscription *s = stele_map_gets(((projector *)opaque)->sub_index, type);
    return s ? s->tv.schema : NULL;
}

typedef struct position {
    const char *topic;
    int32_t partition;
    int64_t next;
} position;

/* The host died engine.plugin_crash_limit times in project of r alone
 * (guard.h): why says so, to park its aggregate with. A death in a batch
 * of several records is not the record's: it only makes the projector
 * try them one at a time (project_polled). */
static bool crashed_out(const projector *p, const stele_log_record *r,
                        char *why, size_t size)
{
    unsigned limit = guard_crash_limit();
    guard_call_kind kind = 0;
    char last[128];
    unsigned deaths = limit
                          ? guard_crashes(r->topic, r->partition, r->offset,
                                          p->guard_id, &kind, last, sizeof last)
                          : 0;
    if (deaths < limit || limit == 0 || kind != GUARD_PROJECT_ONE)
        return false;
    snprintf(why, size,
             "PLUGIN_CRASHED: the host died %u times in project of this "
             "event%s: %s",
             deaths,
             strcmp(p->guard_id, p->ckpt_key) ? " during stele replay" : "",
             last);
    return true;
}

/* Whether the host died in project on one of in's records. */
static bool died_in(const projector *p, const stele_log_batch *in)
{
    if (guard_crash_limit() == 0)
        return false;
    for (size_t i = 0; i < in->n; i++) {
        const stele_log_record *r = &in->records[i];
        if (guard_crashes(r->topic, r->partition, r->offset, p->guard_id, NULL,
                          NULL, 0))
            return true;
    }
    return false;
}

/* Reads a batch's records into the events the projector subscribes to:
 * by their stored type, or through an upcaster that reads it (a renamed or
 * split type). One record may give several events, all with its meta. */
static int read_batch(stele_engine *e, projector *p, const stele_log_batch *in,
                      char *strs, size_t *k, stele_err *err)
{
    size_t at = 0, *first = malloc((in->n + 1) * sizeof *first);
    int rc = 0;
    if (!first || grow_metas(p, in->n) != 0) {
        free(first);
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    }
    if (!p->reads && (rc = stele_codec_events_new(e->codec, &p->reads, err))) {
        free(first);
        return rc;
    }
    stele_codec_events_clear(p->reads);
    p->n_parking = 0;
    const stele_codec_event *items;
    for (size_t i = 0; i < in->n && rc == 0; i++) {
        const stele_log_record *r = &in->records[i];
        first[i] = stele_codec_events_list(p->reads, &items);
        /* an aggregate parked before: none of its later events either, or
         * its read model would skip one */
        if (is_parked(p, r))
            continue;
        char type[256];
        engine_header_str(r, H_EVENT_TYPE, type, sizeof type);
        /* not subscribed: only the checkpoint moves (a record without
         * its headers, or without a type, has no type to tell:
         * engine_read_stored_event names it, and it is parked) */
        if (!r->damaged && type[0] && !stele_map_gets(p->sub_index, type) &&
            !stele_codec_has_upcasters(e->codec, type))
            continue;
        /* The event the host keeps dying on: its aggregate, as one that
         * does not read. */
        char crashed[STELE_ERR_MSG_SIZE];
        if (crashed_out(p, r, crashed, sizeof crashed)) {
            if (park(e, p, r, crashed))
                rc = stele_err_set(err, STELE_ENOMEM, "out of memory");
            continue;
        }
        size_t need = 8;
        for (size_t j = 0; j < r->n_headers; j++)
            need += r->headers[j].len + 1;
        engine_event_meta_fill(r, &p->metas[i], strs + at, need);
        at += need;
        stele_err why = {0};
        rc = engine_read_stored_event(e, r, projector_wants, p, p->reads, &why);
        /* The record's fault: its aggregate alone is parked. */
        if (rc != 0 && engine_record_fault(rc) && park(e, p, r, why.msg))
            rc = stele_err_set(err, STELE_ENOMEM, "out of memory");
        else if (rc != 0 && engine_record_fault(rc))
            rc = 0;
        else if (rc != 0)
            *err = why;
    }
    size_t n = stele_codec_events_list(p->reads, &items);
    first[in->n] = n;
    if (rc == 0 && grow_events(p, n) != 0)
        rc = stele_err_set(err, STELE_ENOMEM, "out of memory");
    *k = 0;
    for (size_t i = 0; i < in->n && rc == 0; i++)
        for (size_t j = first[i]; j < first[i + 1]; j++) {
            if (!items[j].declared)
                continue; /* an upcast event of a type it does not read */
            p->wrapped[*k] = stele_value_wrap(&items[j].value);
            p->evs[*k] =
                (stele_event){items[j].schema->name, items[j].schema->version,
                              &p->wrapped[*k], &p->metas[i]};
            (*k)++;
        }
    free(first);
    return rc;
}

/* A repair of one parked aggregate (projections_repair): its batch of
 * events moves no checkpoint; it unparks the aggregate, or parks it at
 * next while more of its events are to come, or again where one still
 * cannot be read. */
typedef struct repairing {
    const char *topic;
    const void *key;
    size_t key_len;
    int32_t partition;
    int64_t next;
    bool done;
    const char *reason;
} repairing;

static int write_repair(stele_engine *e, projector *p, const repairing *fix,
                        stele_err *err)
{
    int rc = stele_store_parked_remove(e->store, p->ckpt_key, fix->topic,
                                       fix->key, fix->key_len, err);
    if (rc == 0)
        rc = write_parking(e, p, err);
    if (rc == 0 && p->n_parking == 0 && !fix->done)
        rc = stele_store_parked_add(e->store, p->ckpt_key, fix->topic,
                                    fix->partition, fix->key, fix->key_len,
                                    fix->next, fix->reason, err);
    return rc;
}

static int project_batch(stele_engine *e, projector *p,
                         const stele_log_batch *in, const repairing *fix,
                         stele_err *err)
{
    size_t strsize = 0;
    for (size_t i = 0; i < in->n; i++)
        for (size_t j = 0; j < in->records[i].n_headers; j++)
            strsize += in->records[i].headers[j].len + 1;
    /* meta strings of every event: each record's headers, NUL-terminated */
    char *strs = malloc(strsize + 8 * in->n + 64);
    position *pos = calloc(in->n, sizeof *pos);
    size_t n_pos = 0, k = 0;
    int rc = 0;
    if (!strs || !pos) {
        rc = stele_err_set(err, STELE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < in->n; i++) {
        const stele_log_record *r = &in->records[i];
        size_t x;
        for (x = 0; x < n_pos; x++)
            if (pos[x].partition == r->partition &&
                strcmp(pos[x].topic, r->topic) == 0)
                break;
        pos[x] = (position){r->topic, r->partition, r->offset + 1};
        n_pos += x == n_pos;
    }
    if ((rc = read_batch(e, p, in, strs, &k, err)) ||
        (rc = stele_store_begin(e->store, err))) {
        undo_parking(p);
        goto out;
    }
    /* This version's tables (its own schema on PostgreSQL). */
    const char *ns = p->ns;
    if ((rc = stele_store_use_namespaces(e->store, &ns, 1, err))) {
        stele_store_rollback(e->store);
        undo_parking(p);
        goto out;
    }
    if (k > 0) {
        stele_err perr = {0};
        /* A death is the event's when the call had only its record. */
        guard_begin(p->evs[0].meta->topic, p->evs[0].meta->partition,
                    p->evs[0].meta->offset, p->guard_id);
        stele_value_failure_clear();
        guard_call(in->n == 1 ? GUARD_PROJECT_ONE : GUARD_PROJECT);
        rc = p->def->project(p->plugin->ctx, p->evs, k,
                             (stele_store_tx *)e->store, &perr);
        guard_return();
        if (rc != 0) {
            const char *first = stele_value_failure();
            rc = stele_err_set(err, STELE_EPLUGIN,
                               "projector %s failed on a batch at %s[%d]: "
                               "%s%s%s%s",
                               p->def->name, p->evs[0].meta->topic,
                               (int)p->evs[0].meta->partition,
                               perr.msg[0] ? perr.msg : stele_strstatus(rc),
                               *first ? " (first failed call: " : "", first,
                               *first ? ")" : "");
        }
    }
    if (rc == 0)
        rc = fix ? write_repair(e, p, fix, err) : write_parking(e, p, err);
    for (size_t x = 0; x < n_pos && rc == 0 && !fix; x++)
        rc = stele_store_checkpoint_set(e->store, p->ckpt_key, pos[x].topic,
                                        pos[x].partition, pos[x].next, err);
    if (rc == 0)
        rc = stele_store_commit(e->store, err);
    else
        stele_store_rollback(e->store);
    if (rc != 0)
        undo_parking(p);
    /* A repair that parked an event again has reported it: the next
     * stele replay gives it a fresh chance (docs/design.md). */
    for (size_t i = 0; i < p->n_parking && fix; i++)
        guard_forget(p->parking[i].rec->topic, p->parking[i].rec->partition,
                     p->parking[i].rec->offset, p->guard_id);
    p->n_parking = 0;
    if (rc == 0)
        e->stats.events_projected += k;
out:
    free(strs);
    free(pos);
    return rc;
}

/* Projects a polled batch. After the host died in project on one of its
 * records, it goes one record at a time, each committed with its
 * checkpoint, for as many records as a batch holds, from the first of
 * the batch that died: then a death names exactly one event, which the
 * guard counts against it (crashed_out parks it at the limit). Bisecting
 * would find it in fewer calls but costs a death per halving; one at a
 * time costs one death for the batch and the event's own. */
static int project_polled(stele_engine *e, projector *p,
                          const stele_log_batch *in, stele_err *err)
{
    if (p->alone_left == 0 && in->n > 1 && died_in(p, in)) {
        size_t most = (size_t)e->cfg->projection_batch;
        p->alone_left = in->n > most ? in->n : most;
        engine_logf(e, STELE_LOG_WARN,
                    "projector %s: the host died in project at %s[%d]@%" PRId64
                    ": the next %zu events are projected one at a time",
                    p->def->name, in->records[0].topic,
                    (int)in->records[0].partition, in->records[0].offset,
                    p->alone_left);
    }
    size_t i = 0;
    for (; i < in->n && p->alone_left > 0; i++, p->alone_left--) {
        stele_log_batch one = {&in->records[i], 1};
        int rc = project_batch(e, p, &one, NULL, err);
        if (rc != 0)
            return rc;
    }
    stele_log_batch rest = {in->records + i, in->n - i};
    return rest.n ? project_batch(e, p, &rest, NULL, err) : 0;
}

/* One step of one projector: joins its group when needed, polls a batch,
 * projects it and commits it with the checkpoints. */
static int projector_step(stele_engine *e, projector *p, int timeout_ms,
                          size_t *did, stele_err *err)
{
    int rc;
    if (!p->consumer) {
        stele_log_rebalance_cb cb = {on_assigned, on_revoked, p};
        p->engine = e;
        if ((rc = stele_log_consumer_new(e->log, p->group,
                                         (const char *const *)p->topics,
                                         p->n_topics, &cb, &p->consumer, err)))
            return rc;
    }
    if (p->needs_seek) {
        if ((rc = seek_to_checkpoints(e, p, err)))
            return rc;
        p->needs_seek = false;
    }
    stele_log_batch *in;
    rc = stele_log_consumer_poll(p->consumer, timeout_ms,
                                 (size_t)e->cfg->projection_batch, &in, err);
    if (rc == 0 && p->assign_rc != 0) {
        /* Preparing the read model failed: retry on the next step. */
        rc = p->assign_rc;
        *err = p->assign_err;
        p->assign_rc = 0;
        stele_log_batch_free(in);
        stele_log_consumer_close(p->consumer);
        p->consumer = NULL;
        return rc;
    }
    if (rc != 0)
        return rc;
    if (in->n > 0) {
        rc = project_polled(e, p, in, err);
        if (rc != 0) {
            /* Read the batch again from the checkpoints; if even that
             * fails (the store is down), do it before the next poll. */
            stele_err serr;
            p->needs_seek = seek_to_checkpoints(e, p, &serr) != 0;
            stele_log_batch_free(in);
            return rc;
        }
        *did += in->n;
    }
    stele_log_batch_free(in);
    return switch_over_if_caught_up(e, p, err);
}

int64_t projections_retry_ms(int failures)
{
    int64_t ms = 100;
    for (int i = 1; i < failures && ms < PROJECTOR_RETRY_MAX_MS; i++)
        ms *= 2;
    return ms < PROJECTOR_RETRY_MAX_MS ? ms : PROJECTOR_RETRY_MAX_MS;
}

int projections_step(stele_engine *e, int timeout_ms, bool isolate, size_t *did,
                     stele_err *err)
{
    *did = 0;
    int first = 0;
    for (size_t i = 0; i < e->n_projs; i++) {
        projector *p = &e->projs[i];
        int64_t now = stele_mono_ns();
        if (isolate && p->failures && now < p->retry_at_ns)
            continue; /* backing off */
        stele_err perr = {0};
        int rc = projector_step(e, p, timeout_ms, did, &perr);
        if (rc == 0) {
            if (p->failures)
                engine_logf(e, STELE_LOG_INFO,
                            "projector %s: running again after %d failed "
                            "attempt%s",
                            p->def->name, p->failures,
                            p->failures == 1 ? "" : "s");
            p->failures = 0;
            continue;
        }
        e->stats.projector_failures++;
        char who[160];
        int wl = snprintf(who, sizeof who, "projector %s", p->def->name);
        if (strncmp(perr.msg, who, (size_t)wl) != 0)
            stele_err_prefix(&perr, "%s", who);
        if (rc == STELE_EFATAL) {
            *err = perr;
            return rc;
        }
        if (!isolate) {
            /* the caller decides; the other projectors still go on */
            if (!first) {
                first = rc;
                *err = perr;
            }
            continue;
        }
        p->failures++;
        int64_t wait = projections_retry_ms(p->failures);
        p->retry_at_ns = now + wait * 1000000;
        engine_logf(e, STELE_LOG_ERROR,
                    "%s (attempt %d; retrying in %.1f s, the other "
                    "projectors go on)",
                    perr.msg, p->failures, (double)wait / 1000);
    }
    return first;
}

/* Whether a repair projects the next of its records alone: an aggregate
 * parked because the host died on it, or one the host died repairing, so
 * that a death is the event's (project_polled). */
static bool repair_alone(stele_engine *e, projector *p,
                         const stele_log_batch *b, const char *reason)
{
    if (p->alone_left > 0) {
        p->alone_left--;
        return true;
    }
    if (strncmp(reason, "PLUGIN_CRASHED", 14) != 0 && !died_in(p, b))
        return false;
    p->alone_left = (size_t)e->cfg->projection_batch - 1;
    return true;
}

/* A parked aggregate without events left to project: unparked. */
static int unpark_only(stele_engine *e, projector *p, const repairing *fix,
                       stele_err *err)
{
    p->n_parking = 0;
    int rc = stele_store_begin(e->store, err);
    if (rc != 0)
        return rc;
    if ((rc = write_repair(e, p, fix, err))) {
        stele_store_rollback(e->store);
        return rc;
    }
    return stele_store_commit(e->store, err);
}

/* Projects the events of one parked aggregate from where it was parked
 * up to the projector's checkpoint (the events after it are the normal
 * path's), in batches, each committed with the aggregate's new place. */
static int repair_one(stele_engine *e, projector *p, const char *topic,
                      int32_t partition, const void *key, size_t key_len,
                      int64_t from, const char *reason, bool *fixed,
                      stele_err *err)
{
    int64_t until;
    int rc = stele_store_checkpoint_get(e->store, p->ckpt_key, topic, partition,
                                        &until, err);
    *fixed = false;
    p->alone_left = 0;
    while (rc == 0) {
        stele_log_batch *b;
        if ((rc = stele_log_read_key(e->log, topic, partition, key, key_len,
                                     from, 1024, &b, err)))
            break;
        size_t n = 0;
        while (n < b->n && b->records[n].offset < until)
            n++;
        size_t all = b->n;
        bool last = n == 0 || n < all || n < 1024;
        b->n = n;
        if (n > 1 && repair_alone(e, p, b, reason)) {
            b->n = n = 1;
            last = false;
        }
        repairing fix = {topic,
                         key,
                         key_len,
                         partition,
                         n ? b->records[n - 1].offset + 1 : from,
                         last,
                         reason};
        mark_parked(p, topic, key, key_len, false);
        rc = n ? project_batch(e, p, b, &fix, err)
               : unpark_only(e, p, &fix, err);
        b->n = all;
        stele_log_batch_free(b);
        bool again =
            is_parked(p, &(stele_log_record){
                             .topic = topic, .key = key, .key_len = key_len});
        if (rc != 0 || again)
            break;
        if (fix.done) {
            *fixed = true;
            break;
        }
        mark_parked(p, topic, key, key_len, true);
        from = fix.next;
    }
    if (rc != 0)
        mark_parked(p, topic, key, key_len, true);
    return rc;
}

typedef struct parked_item {
    char topic[256];
    int32_t partition;
    char key[MAX_ID_LEN + 1];
    size_t key_len;
    int64_t offset;
    char reason[STELE_ERR_MSG_SIZE];
} parked_item;

typedef struct parked_items {
    parked_item *v;
    size_t n, cap;
} parked_items;

static int collect_parked(void *opaque, const char *topic, int32_t partition,
                          const void *key, size_t key_len, int64_t offset,
                          const char *reason)
{
    parked_items *l = opaque;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        parked_item *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return 1;
        l->v = v;
        l->cap = cap;
    }
    parked_item *it = &l->v[l->n++];
    snprintf(it->topic, sizeof it->topic, "%s", topic);
    it->partition = partition;
    it->key_len = key_len < MAX_ID_LEN ? key_len : MAX_ID_LEN;
    memcpy(it->key, key, it->key_len);
    it->offset = offset;
    snprintf(it->reason, sizeof it->reason, "%s", reason);
    return 0;
}

int projections_repair(stele_engine *e, size_t *repaired, size_t *left,
                       stele_err *err)
{
    *repaired = *left = 0;
    for (size_t i = 0; i < e->n_projs; i++) {
        projector *p = &e->projs[i];
        parked_items l = {0};
        /* The deaths of a repair are counted apart from the normal
         * path's, which parked it: a repair tries it afresh. */
        snprintf(p->guard_id, sizeof p->guard_id, "%s (stele replay)",
                 p->ckpt_key);
        p->alone_left = 0;
        int rc = stele_store_parked_list(e->store, p->ckpt_key, collect_parked,
                                         &l, err);
        if (rc == 0 && l.n > 0 &&
            (!p->consumer ||
             stele_log_consumer_assignment(p->consumer, NULL) == 0))
            rc = stele_err_set(err, STELE_ECONFLICT,
                               "projector %s: another host runs it; stop it "
                               "before repairing its parked aggregates",
                               p->def->name);
        for (size_t j = 0; j < l.n && rc == 0; j++) {
            bool fixed;
            rc = repair_one(e, p, l.v[j].topic, l.v[j].partition, l.v[j].key,
                            l.v[j].key_len, l.v[j].offset, l.v[j].reason,
                            &fixed, err);
            if (rc == 0 && fixed) {
                (*repaired)++;
                engine_logf(e, STELE_LOG_INFO,
                            "projector %s: %.*s of %s[%d] repaired from "
                            "offset %" PRId64,
                            p->def->name, (int)l.v[j].key_len, l.v[j].key,
                            l.v[j].topic, (int)l.v[j].partition, l.v[j].offset);
            } else if (rc == 0) {
                (*left)++;
            }
        }
        free(l.v);
        snprintf(p->guard_id, sizeof p->guard_id, "%s", p->ckpt_key);
        p->alone_left = 0;
        if (rc != 0)
            return stele_err_prefix(err, "projector %s", p->def->name);
    }
    return 0;
}
