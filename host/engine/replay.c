/*
 * Rebuilding aggregate states from their events: after a state_version
 * bump (automatically, when a partition is assigned) and on demand
 * (stele replay). Events of an aggregate live in the same partition number
 * as its commands and states, so a partition rebuilds on its own.
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
#include "worker.h"
#include "internal.h"

static int put_entry(stele_map *built, const stele_log_record *r,
                     stele_state_entry *s, stele_err *err)
{
    void *old;
    if (stele_map_put(built, r->key, r->key_len, s, &old) != 0) {
        free(s);
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    }
    free(old);
    return 0;
}

/* Evolves the state of r's aggregate by every event read from r. */
static int evolve_record(stele_engine *e, aggregate *a,
                         const stele_log_record *r, stele_map *built,
                         stele_codec_events *evs, stele_event_meta *meta,
                         stele_err *err)
{
    const stele_codec_event *items;
    size_t n = stele_codec_events_list(evs, &items);
    stele_event *list = calloc(n + 1, sizeof *list);
    stele_value *vals = calloc(n + 1, sizeof *vals);
    int rc =
        list && vals ? 0 : stele_err_set(err, STELE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++) {
        const stele_codec_event *it = &items[i];
        char hint[300];
        if (!it->declared)
            rc = stele_err_set(
                err, STELE_EINVAL,
                "%s[%d]@%" PRId64 ": event type '%s' is "
                "not declared by aggregate %s%s",
                r->topic, (int)r->partition, r->offset, it->schema->name,
                a->def->type,
                engine_undeclared_hint(e, it->schema->name, hint, sizeof hint));
        vals[i] = stele_value_wrap(&it->value);
        list[i] = (stele_event){it->schema->name, it->schema->version, &vals[i],
                                meta};
    }
    stele_state_entry *cur = stele_map_get(built, r->key, r->key_len);
    engine_call call = {.topic = r->topic,
                        .partition = r->partition,
                        .offset = r->offset,
                        .guarded = !e->worker};
    const void *state = cur ? cur->data : NULL;
    size_t len = cur ? cur->len : 0;
    if (rc == 0 && e->worker)
        rc =
            worker_evolve_stored(e->worker, a, state, len, list, n, &call, err);
    else if (rc == 0)
        rc = engine_evolve_stored(e, a, state, len, list, n, &call, err);
    free(list);
    free(vals);
    if (rc != 0)
        return rc;
    stele_state_entry *s = stele_state_entry_new(
        meta->version, r->partition, false, e->buf.data, e->buf.len);
    if (!s)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    return put_entry(built, r, s, err);
}

/* r's aggregate cannot be rebuilt past r: it keeps the version before r,
 * and why, and its later events are not applied. */
static int mark_broken(stele_engine *e, aggregate *a, const stele_log_record *r,
                       stele_map *built, const stele_err *why, stele_err *err)
{
    const stele_state_entry *cur = stele_map_get(built, r->key, r->key_len);
    int64_t version = cur ? cur->version : 0;
    char id[MAX_ID_LEN + 1];
    size_t il = r->key_len < MAX_ID_LEN ? r->key_len : MAX_ID_LEN;
    if (il)
        memcpy(id, r->key, il);
    id[il] = '\0';
    char reason[sizeof why->msg];
    snprintf(reason, sizeof reason, "%s", why->msg);
    stele_text_utf8_fix(reason);
    stele_text_utf8_fix(id);
    stele_log_fields about = {.aggregate_type = a->def->type,
                              .aggregate_id = id};
    engine_logf_about(e, STELE_LOG_ERROR, &about,
                      "aggregate %s %s is broken: %s (its commands are "
                      "rejected with AGGREGATE_BROKEN; the other aggregates "
                      "go on)",
                      a->def->type, id, reason);
    stele_state_entry *s = stele_state_entry_new(version, r->partition, true,
                                                 reason, strlen(reason));
    if (!s)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    return put_entry(built, r, s, err);
}

static int write_states(stele_engine *e, aggregate *a, int32_t partition,
                        stele_map *states, stele_err *err);

/* The host died engine.plugin_crash_limit times in a's evolve of r while
 * rebuilding (guard.h counts those deaths by event and aggregate type):
 * why says so, to break the aggregate with instead of dying again. */
static bool died_rebuilding(const aggregate *a, const stele_log_record *r,
                            stele_err *why)
{
    unsigned limit = guard_crash_limit();
    guard_call_kind kind = 0;
    char last[128];
    unsigned deaths =
        limit ? guard_crashes(r->topic, r->partition, r->offset, a->def->type,
                              &kind, last, sizeof last)
              : 0;
    if (limit == 0 || deaths < limit || kind != GUARD_REBUILD)
        return false;
    stele_err_set(why, STELE_EPLUGIN,
                  "PLUGIN_CRASHED: the host died %u times in evolve of the "
                  "event at %s[%d]@%" PRId64 " while rebuilding states: %s",
                  deaths, r->topic, (int)r->partition, r->offset, last);
    return true;
}

typedef struct collect_ctx {
    const char **keys;
    size_t *lens;
    stele_state_entry **vals;
    size_t n;
} collect_ctx;

static int collect(void *opaque, const void *key, size_t len, void *value)
{
    collect_ctx *c = opaque;
    c->keys[c->n] = key;
    c->lens[c->n] = len;
    c->vals[c->n++] = value;
    return 0;
}

int engine_replay_partition(stele_engine *e, aggregate *a, int32_t partition,
                            size_t *events, size_t *states, stele_err *err)
{
    *events = *states = 0;
    stele_map *built = stele_map_new();
    if (!built)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    int rc = 0;
    int64_t from = 0;
    char strbuf[4 * 1024];
    int64_t crashed[64]; /* events broken for deaths: forgotten once stored */
    size_t n_crashed = 0;
    while (rc == 0) {
        stele_log_batch *b;
        if ((rc = stele_log_read(e->log, a->t_events, partition, from, 4096, &b,
                                 err)))
            break;
        if (b->n == 0) {
            stele_log_batch_free(b);
            break;
        }
        for (size_t i = 0; i < b->n && rc == 0; i++) {
            const stele_log_record *r = &b->records[i];
            from = r->offset + 1;
            const stele_state_entry *cur =
                stele_map_get(built, r->key, r->key_len);
            if (cur && cur->broken)
                continue; /* nothing after its bad event is applied */
            stele_codec_events *evs;
            stele_event_meta meta;
            stele_err why = {0};
            engine_event_meta_fill(r, &meta, strbuf, sizeof strbuf);
            if ((rc = engine_reads(e, &evs, err)))
                break;
            if (!e->worker && died_rebuilding(a, r, &why)) {
                if ((rc = mark_broken(e, a, r, built, &why, err)) == 0 &&
                    n_crashed < sizeof crashed / sizeof crashed[0])
                    crashed[n_crashed++] = r->offset;
                continue;
            }
            if ((rc = engine_read_stored_event(e, r, engine_aggregate_wants, a,
                                               evs, &why)) == 0)
                rc = evolve_record(e, a, r, built, evs, &meta, &why);
            /* the record's fault: its aggregate is broken, the others go
             * on; anything else fails the rebuild */
            if (rc != 0 && engine_record_fault(rc))
                rc = mark_broken(e, a, r, built, &why, err);
            else if (rc != 0)
                *err = why;
            else
                (*events)++;
        }
        stele_log_batch_free(b);
    }
    if (rc == 0)
        rc = write_states(e, a, partition, built, err);
    /* Once the broken marks are stored, those deaths are forgotten: the
     * next rebuild (stele replay, after a fixed plugin) tries again. */
    for (size_t i = 0; rc == 0 && i < n_crashed; i++)
        guard_forget(a->t_events, partition, crashed[i], a->def->type);
    if (rc == 0)
        *states = stele_map_count(built);
    stele_map_free(built, free);
    return rc;
}

static int write_states(stele_engine *e, aggregate *a, int32_t partition,
                        stele_map *states, stele_err *err)
{
    size_t n = stele_map_count(states);
    collect_ctx c = {malloc((n + 1) * sizeof(char *)),
                     malloc((n + 1) * sizeof(size_t)),
                     malloc((n + 1) * sizeof(stele_state_entry *)), 0};
    int rc = 0;
    if (!c.keys || !c.lens || !c.vals) {
        rc = stele_err_set(err, STELE_ENOMEM, "out of memory");
        goto out;
    }
    stele_map_each(states, collect, &c);
    char sv[16];
    snprintf(sv, sizeof sv, "%d", a->def->state_version);
    for (size_t i = 0; i < n && rc == 0;) {
        stele_log_txn *txn;
        if ((rc = stele_log_txn_begin(e->log, &txn, err)))
            break;
        size_t end = i + 1000 < n ? i + 1000 : n;
        for (; i < end && rc == 0; i++) {
            char v[24];
            snprintf(v, sizeof v, "%" PRId64, c.vals[i]->version);
            /* a broken one: its marker, so that a restore knows it (its
             * absence would make it look like a new aggregate) */
            stele_log_header h[] = {{STELE_H_VERSION, v, strlen(v)},
                                    {STELE_H_STATE_VERSION, sv, strlen(sv)},
                                    {STELE_H_BROKEN, "1", 1}};
            stele_log_record r = {.timestamp_ms = stele_now_ms(),
                                  .key = c.keys[i],
                                  .key_len = c.lens[i],
                                  .value = c.vals[i]->data,
                                  .value_len = c.vals[i]->len,
                                  .headers = h,
                                  .n_headers = c.vals[i]->broken ? 3 : 2};
            rc = stele_log_txn_produce(txn, a->t_state, partition, &r, NULL,
                                       err);
        }
        if (rc != 0) {
            stele_log_txn_abort(txn);
            break;
        }
        if ((rc = stele_log_txn_commit(txn, err)))
            break;
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = c.vals[i]->broken
                 ? stele_state_put_broken(a->cache, c.keys[i], c.lens[i],
                                          partition, c.vals[i]->version,
                                          c.vals[i]->data)
                 : stele_state_put(a->cache, c.keys[i], c.lens[i], partition,
                                   c.vals[i]->version, c.vals[i]->data,
                                   c.vals[i]->len);
out:
    free(c.keys);
    free(c.lens);
    free(c.vals);
    return rc;
}
