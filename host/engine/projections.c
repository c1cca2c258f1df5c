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
#include "common/util.h"
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
        if (!p->group || !p->subs || !p->sub_index)
            return stele_err_set(err, STELE_ENOMEM, "out of memory");
        /* One group per version: hosts of the old version keep serving
         * (and updating) theirs while new hosts build the new one. */
        snprintf(p->group, gl, "%s.projector.%s.v%d", e->cfg->app, d->name,
                 d->version);
        snprintf(p->ckpt_key, sizeof p->ckpt_key, "%s@v%d", d->name,
                 d->version);
        projector_namespace(d->name, d->version, p->ns, sizeof p->ns);
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
                typed_values_free(&p->subs[j].tv);
        for (size_t j = 0; j < p->n_topics; j++)
            free(p->topics[j]);
        free(p->topics);
        free(p->subs);
        stele_map_free(p->sub_index, NULL);
        free(p->group);
        stele_codec_events_free(p->reads);
        free(p->evs);
        free(p->metas);
        free(p->wrapped);
    }
}

void projector_namespace(const char *name, int version, char *out,
                         size_t size)
{
    /* rm_<name>_v<version>, lower case: a PostgreSQL schema name */
    size_t at = (size_t)snprintf(out, size, "rm_");
    for (const char *c = name; *c && at + 12 < size; c++) {
        char ch = *c;
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        out[at++] = ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
                        ? ch
                        : '_';
    }
    snprintf(out + at, size - at, "_v%d", version);
}

int use_serving_namespaces(stele_engine *e, stele_err *err)
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
        projector_namespace(e->projs[i].def->name, active, names[n],
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
        (rc = stele_store_projector_version(e->store, d->name, &stored,
                                            err))) {
        stele_store_rollback(e->store);
        return rc;
    }
    p->building = false;
    if (stored != -1 && stored != d->version) {
        engine_logf(e, STELE_LOG_INFO,
                    "projector %s: version %d -> %d: %s", d->name, stored,
                    d->version,
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
                                                 p->topics[t], i, &next,
                                                 err)))
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
        projector_namespace(p->def->name, stored, old, sizeof old);
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
        int rc = stele_store_checkpoint_get(
            e->store, p->ckpt_key, tps[i].topic, tps[i].partition, &next, err);
        if (rc == 0)
            rc = stele_log_consumer_seek(p->consumer, tps[i].topic,
                                         tps[i].partition, next, err);
        if (rc != 0)
            return rc;
    }
    return 0;
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
    const stele_codec_event *items;
    for (size_t i = 0; i < in->n && rc == 0; i++) {
        const stele_log_record *r = &in->records[i];
        first[i] = stele_codec_events_list(p->reads, &items);
        char type[256];
        header_str(r, H_EVENT_TYPE, type, sizeof type);
        /* not subscribed: only the checkpoint moves (a record without
         * its headers has no type to tell: read_stored_event names it) */
        if (!r->damaged && !stele_map_gets(p->sub_index, type) &&
            !stele_codec_has_upcasters(e->codec, type))
            continue;
        size_t need = 8;
        for (size_t j = 0; j < r->n_headers; j++)
            need += r->headers[j].len + 1;
        event_meta_fill(r, &p->metas[i], strs + at, need);
        at += need;
        rc = read_stored_event(e, r, projector_wants, p, p->reads, err);
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

static int project_batch(stele_engine *e, projector *p,
                         const stele_log_batch *in, stele_err *err)
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
    if ((rc = read_batch(e, p, in, strs, &k, err)))
        goto out;
    if ((rc = stele_store_begin(e->store, err)))
        goto out;
    /* This version's tables (its own schema on PostgreSQL). */
    const char *ns = p->ns;
    if ((rc = stele_store_use_namespaces(e->store, &ns, 1, err))) {
        stele_store_rollback(e->store);
        goto out;
    }
    if (k > 0) {
        stele_err perr = {0};
        rc = p->def->project(p->plugin->ctx, p->evs, k,
                             (stele_store_tx *)e->store, &perr);
        if (rc != 0) {
            rc = stele_err_set(err, STELE_EPLUGIN,
                               "projector %s failed on a batch at %s[%d]: %s",
                               p->def->name, p->evs[0].meta->topic,
                               (int)p->evs[0].meta->partition,
                               perr.msg[0] ? perr.msg : stele_strstatus(rc));
        }
    }
    for (size_t x = 0; x < n_pos && rc == 0; x++)
        rc = stele_store_checkpoint_set(e->store, p->ckpt_key, pos[x].topic,
                                        pos[x].partition, pos[x].next, err);
    if (rc == 0)
        rc = stele_store_commit(e->store, err);
    else
        stele_store_rollback(e->store);
    if (rc == 0)
        e->stats.events_projected += k;
out:
    free(strs);
    free(pos);
    return rc;
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
        rc = project_batch(e, p, in, err);
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

int64_t projector_retry_ms(int failures)
{
    int64_t ms = 100;
    for (int i = 1; i < failures && ms < PROJECTOR_RETRY_MAX_MS; i++)
        ms *= 2;
    return ms < PROJECTOR_RETRY_MAX_MS ? ms : PROJECTOR_RETRY_MAX_MS;
}

int projections_step(stele_engine *e, int timeout_ms, bool isolate,
                     size_t *did, stele_err *err)
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
        int64_t wait = projector_retry_ms(p->failures);
        p->retry_at_ns = now + wait * 1000000;
        engine_logf(e, STELE_LOG_ERROR,
                    "%s (attempt %d; retrying in %.1f s, the other "
                    "projectors go on)",
                    perr.msg, p->failures, (double)wait / 1000);
    }
    return first;
}
