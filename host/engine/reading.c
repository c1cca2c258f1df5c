/* Reading: queries, list queries, stored events and states as JSON. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/value.h"
#include "common/err.h"
#include "common/util.h"
#include "internal.h"

int stele_engine_query(stele_engine *e, const char *name, const json_t *params,
                       json_t **out, stele_err *err)
{
    query *q = NULL;
    for (size_t i = 0; i < e->n_queries; i++)
        if (strcmp(e->queries[i].def->name, name) == 0)
            q = &e->queries[i];
    if (!q)
        return stele_err_set(err, STELE_ENOTFOUND, "no query named '%s'", name);
    avro_value_t v;
    int rc = stele_codec_value_new(q->params, &v, err);
    if (rc != 0)
        return rc;
    json_t *empty = params ? NULL : json_object();
    rc = stele_codec_from_json(q->params, params ? params : empty, &v, err);
    json_decref(empty);
    if (rc != 0) {
        avro_value_decref(&v);
        return stele_err_prefix(err, "query %s", name);
    }
    if ((rc = projections_use_serving(e, err))) {
        avro_value_decref(&v);
        return rc;
    }
    struct stele_query_ctx ctx = {e, json_array()};
    stele_value sv = stele_value_wrap(&v);
    stele_err qerr = {0};
    rc = q->def->run(q->plugin->ctx, &sv, &ctx, &qerr);
    avro_value_decref(&v);
    if (rc != 0) {
        json_decref(ctx.rows);
        return stele_err_set(err, rc, "query %s: %s", name,
                             qerr.msg[0] ? qerr.msg : stele_strstatus(rc));
    }
    if (q->def->single) {
        if (json_array_size(ctx.rows) == 0) {
            json_decref(ctx.rows);
            return stele_err_set(err, STELE_ENOTFOUND, "query %s: not found",
                                 name);
        }
        *out = json_incref(json_array_get(ctx.rows, 0));
        json_decref(ctx.rows);
    } else {
        *out = json_pack("{s:o}", "items", ctx.rows);
    }
    return 0;
}

int stele_engine_list(stele_engine *e, const char *table,
                      const stele_list_request *req, json_t **out,
                      stele_err *err)
{
    for (size_t i = 0; i < e->n_projs; i++) {
        const stele_projector_def *d = e->projs[i].def;
        for (size_t j = 0; j < d->n_tables; j++)
            if (strcmp(d->tables[j].name, table) == 0) {
                int rc = projections_use_serving(e, err);
                return rc ? rc
                          : stele_store_list(e->store, &d->tables[j], req, out,
                                             err);
            }
    }
    return stele_err_set(err, STELE_ENOTFOUND,
                         "no projector declares a table '%s'", table);
}

static json_t *event_json(const stele_event *ev, const avro_value_t *v)
{
    const stele_event_meta *m = ev->meta;
    return json_pack(
        "{s:s, s:i, s:I, s:s, s:s, s:i, s:s, s:s, s:I, s:s, "
        "s:s, s:I, s:o}",
        "topic", m->topic, "partition", (int)m->partition, "offset",
        (json_int_t)m->offset, "event_id", m->event_id, "type", ev->type,
        "schema_version", ev->schema_version, "aggregate_type",
        m->aggregate_type, "aggregate_id", m->aggregate_id, "version",
        (json_int_t)m->version, "causation_id", m->causation_id,
        "correlation_id", m->correlation_id, "timestamp_ms",
        (json_int_t)m->timestamp_ms, "data", stele_codec_to_json(v));
}

/* What is stored, beside the view read through upcasters and
 * resolution: {"type" (the stored type header), "schema_id" (the writer's,
 * from the wire format), "schema_version" (its file version; null when no
 * file of schemas/ holds it)}. */
static json_t *stored_json(stele_engine *e, const stele_log_record *r)
{
    char type[256];
    engine_header_str(r, H_EVENT_TYPE, type, sizeof type);
    int32_t id = 0;
    const stele_schema *w = NULL;
    stele_err ignored = {0};
    stele_codec_wire_id(r->value, r->value_len, &id, &ignored);
    json_t *version =
        stele_codec_schema_by_id(e->codec, id, &w, &ignored) == 0 &&
                w->version > 0
            ? json_integer(w->version)
            : json_null();
    return json_pack("{s:s, s:i, s:o}", "type", type, "schema_id", (int)id,
                     "schema_version", version);
}

static int events_of_partition(stele_engine *e, aggregate *a, int32_t p,
                               const char *id, size_t limit, size_t *emitted,
                               void (*cb)(void *, json_t *), void *opaque,
                               stele_err *err)
{
    int64_t from = 0;
    char strbuf[4096];
    for (;;) {
        stele_log_batch *b;
        /* One aggregate's: by the log's index where it has one. */
        int rc =
            id ? stele_log_read_key(e->log, a->t_events, p, id, strlen(id),
                                    from, 1024, &b, err)
               : stele_log_read(e->log, a->t_events, p, from, 1024, &b, err);
        if (rc != 0)
            return rc;
        if (b->n == 0) {
            stele_log_batch_free(b);
            return 0;
        }
        for (size_t i = 0; i < b->n; i++) {
            const stele_log_record *r = &b->records[i];
            from = r->offset + 1;
            if (id && (r->key_len != strlen(id) ||
                       memcmp(r->key, id, r->key_len) != 0))
                continue;
            stele_codec_events *evs;
            stele_event_meta meta;
            char hint[300];
            engine_event_meta_fill(r, &meta, strbuf, sizeof strbuf);
            if ((rc = engine_reads(e, &evs, err)) == 0)
                rc = engine_read_stored_event(e, r, engine_aggregate_wants, a,
                                              evs, err);
            const stele_codec_event *items;
            size_t n = rc ? 0 : stele_codec_events_list(evs, &items);
            for (size_t j = 0; j < n && rc == 0; j++)
                if (!items[j].declared)
                    rc = stele_err_set(
                        err, STELE_EINVAL,
                        "%s[%d]@%" PRId64 ": undeclared event type '%s'%s",
                        r->topic, (int)p, r->offset, items[j].schema->name,
                        engine_undeclared_hint(e, items[j].schema->name, hint,
                                               sizeof hint));
            if (rc != 0) {
                stele_log_batch_free(b);
                return rc;
            }
            /* one stored event may be read as several (an upcaster split
             * it): each is listed, with the stored one's metadata */
            for (size_t j = 0; j < n; j++) {
                stele_event ev = {items[j].schema->name,
                                  items[j].schema->version, NULL, &meta};
                json_t *shown = event_json(&ev, &items[j].value);
                json_t *stored = stored_json(e, r);
                size_t tlen;
                const char *trace = engine_header_get(r, H_TRACEPARENT, &tlen);
                if (shown && trace && engine_traceparent_valid(trace, tlen) &&
                    json_object_set_new(shown, "traceparent",
                                        json_stringn(trace, tlen))) {
                    json_decref(shown);
                    shown = NULL;
                }
                if (!shown)
                    json_decref(stored);
                else if (!stored ||
                         json_object_set_new(shown, "stored", stored)) {
                    json_decref(shown); /* set_new took stored */
                    shown = NULL;
                }
                if (!shown) {
                    /* left out, the listing would look complete */
                    stele_log_batch_free(b);
                    return stele_err_set(
                        err, STELE_EINVAL,
                        "%s[%d]@%" PRId64 ": the event cannot be shown as "
                        "JSON: a header or a string in it is not UTF-8",
                        a->t_events, (int)p, from - 1);
                }
                cb(opaque, shown);
                if (limit && ++*emitted >= limit) {
                    stele_log_batch_free(b);
                    return 1;
                }
            }
        }
        stele_log_batch_free(b);
    }
}

int stele_engine_events(stele_engine *e, const char *aggregate_type,
                        const char *aggregate_id, size_t limit,
                        void (*cb)(void *opaque, json_t *event), void *opaque,
                        stele_err *err)
{
    if (aggregate_type && !engine_aggregate_by_type(e, aggregate_type))
        return stele_err_set(err, STELE_ENOTFOUND, "no aggregate type '%s'",
                             aggregate_type);
    size_t emitted = 0;
    for (size_t i = 0; i < e->n_aggs; i++) {
        aggregate *a = &e->aggs[i];
        if (aggregate_type && strcmp(a->def->type, aggregate_type) != 0)
            continue;
        int32_t first = 0, last = a->partitions - 1;
        if (aggregate_id)
            first = last = stele_partition_for_key(
                aggregate_id, strlen(aggregate_id), a->partitions);
        for (int32_t p = first; p <= last; p++) {
            int rc = events_of_partition(e, a, p, aggregate_id, limit, &emitted,
                                         cb, opaque, err);
            if (rc == 1)
                return 0;
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int stele_engine_state(stele_engine *e, const char *aggregate_type,
                       const char *aggregate_id, json_t **out, stele_err *err)
{
    aggregate *a = engine_aggregate_by_type(e, aggregate_type);
    if (!a)
        return stele_err_set(err, STELE_ENOTFOUND, "no aggregate type '%s'",
                             aggregate_type);
    size_t len = strlen(aggregate_id);
    int32_t p = stele_partition_for_key(aggregate_id, len, a->partitions);
    stele_log_batch *b;
    int rc =
        stele_log_get_latest(e->log, a->t_state, p, aggregate_id, len, &b, err);
    if (rc == STELE_ENOTFOUND)
        return stele_err_set(err, rc, "%s %s has no events", aggregate_type,
                             aggregate_id);
    if (rc != 0)
        return rc;
    const stele_log_record *r = &b->records[0];
    size_t hl;
    if (engine_header_get(r, STELE_H_BROKEN, &hl)) {
        rc = stele_err_set(err, STELE_EINVAL,
                           "%s %s is broken: %.*s (stele replay rebuilds it "
                           "once the cause is fixed)",
                           aggregate_type, aggregate_id,
                           (int)(r->value_len < 400 ? r->value_len : 400),
                           r->value ? (const char *)r->value : "");
        stele_log_batch_free(b);
        return rc;
    }
    char version[24], *end;
    engine_header_str(r, STELE_H_VERSION, version, sizeof version);
    long long v = strtoll(version, &end, 10);
    if (!version[0] || *end || v < 0)
        rc = stele_err_set(err, STELE_EINVAL,
                           "%s[%d]@%lld: the stored state of %s %s has no "
                           "readable version header ('%s'); its owner "
                           "rebuilds it from events when it restores the "
                           "partition",
                           r->topic, (int)r->partition, (long long)r->offset,
                           aggregate_type, aggregate_id, version);
    if (rc == 0)
        rc = stele_codec_decode(e->codec, r->value, r->value_len,
                                a->state_schema, &a->state, err);
    if (rc == 0)
        *out =
            json_pack("{s:s, s:s, s:I, s:o}", "aggregate_type", aggregate_type,
                      "aggregate_id", aggregate_id, "version", (json_int_t)v,
                      "state", stele_codec_to_json(&a->state));
    stele_log_batch_free(b);
    return rc;
}
