/*
 * stored.c — reading a stored event for a reader (an aggregate being
 * rebuilt, a projector, stele events): its metadata from the headers, its
 * value through the upcasters and schema resolution into the schema the
 * reader declares, and which failures are the record's own fault.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/value.h"
#include "common/err.h"
#include "common/text.h"
#include "common/util.h"
#include "internal.h"

/* Copies a header into the string buffer; "" when absent or no room. */
static const char *take_str(const stele_log_record *r, const char *name,
                            char *buf, size_t size, size_t *at)
{
    size_t len;
    const char *v = engine_header_get(r, name, &len);
    if (!v || *at + len + 1 > size)
        len = 0;
    char *out = buf + *at;
    if (len)
        memcpy(out, v, len);
    out[len] = '\0';
    *at += len + 1;
    return out;
}

void engine_event_meta_fill(const stele_log_record *r, stele_event_meta *meta,
                            char *strbuf, size_t strbuf_size)
{
    size_t at = 0;
    char num[24];
    meta->event_id = take_str(r, H_EVENT_ID, strbuf, strbuf_size, &at);
    meta->aggregate_type =
        take_str(r, H_AGGREGATE_TYPE, strbuf, strbuf_size, &at);
    meta->aggregate_id = take_str(r, H_AGGREGATE_ID, strbuf, strbuf_size, &at);
    meta->causation_id = take_str(r, H_CAUSATION_ID, strbuf, strbuf_size, &at);
    meta->correlation_id =
        take_str(r, H_CORRELATION_ID, strbuf, strbuf_size, &at);
    engine_header_str(r, H_VERSION, num, sizeof num);
    meta->version = strtoll(num, NULL, 10);
    meta->timestamp_ms = r->timestamp_ms;
    meta->topic = r->topic;
    meta->partition = r->partition;
    meta->offset = r->offset;
}

int engine_read_stored_event(stele_engine *e, const stele_log_record *r,
                             stele_codec_want_fn want, void *opaque,
                             stele_codec_events *ev, stele_err *err)
{
    /* Without its headers an event has no id, aggregate or version: it is
     * named, never shown or projected with empty ones. */
    if (r->damaged)
        return stele_err_set(err, STELE_EINVAL,
                             "%s[%d]@%" PRId64 ": the stored event is "
                             "unreadable: %s",
                             r->topic, (int)r->partition, r->offset,
                             r->damaged);
    /* Nor is one stored without them (a raw producer's): listed or
     * projected, it showed an empty event id and aggregate and version 0. */
    static const char *const needed[] = {H_EVENT_ID, H_AGGREGATE_ID, H_VERSION};
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++) {
        size_t len;
        const char *v = engine_header_get(r, needed[i], &len);
        if (!v || len == 0)
            return stele_err_set(err, STELE_EINVAL,
                                 "%s[%d]@%" PRId64 ": the stored event has "
                                 "no %s header (not written by stele)",
                                 r->topic, (int)r->partition, r->offset,
                                 needed[i]);
    }
    char num[24], *end;
    engine_header_str(r, H_VERSION, num, sizeof num);
    long long version = strtoll(num, &end, 10);
    if (*end || version < 1)
        return stele_err_set(err, STELE_EINVAL,
                             "%s[%d]@%" PRId64 ": the stored event's version "
                             "header is not a version ('%s')",
                             r->topic, (int)r->partition, r->offset, num);
    /* The writer's id must name the stored type: a registry that lost its
     * data and gave the id to another schema would otherwise have the
     * event decoded as something it is not. */
    int32_t id;
    stele_err ignored = {0};
    if (stele_codec_wire_id(r->value, r->value_len, &id, &ignored) == 0) {
        const stele_schema *writer;
        char type[256];
        engine_header_str(r, H_EVENT_TYPE, type, sizeof type);
        if (stele_codec_schema_by_id(e->codec, id, &writer, &ignored) == 0 &&
            strcmp(writer->name, type) != 0)
            return stele_err_set(err, STELE_EINVAL,
                                 "%s[%d]@%" PRId64 ": the event is a %s but "
                                 "its schema id %d is %s in the registry: "
                                 "the registry's ids changed (restarted "
                                 "empty?)",
                                 r->topic, (int)r->partition, r->offset, type,
                                 id, writer->name);
    }
    int rc = stele_codec_read_event(e->codec, r->value, r->value_len, want,
                                    opaque, ev, err);
    if (rc != 0)
        return stele_err_prefix(err, "%s[%d]@%" PRId64, r->topic,
                                (int)r->partition, r->offset);
    return 0;
}

const stele_schema *engine_aggregate_wants(void *opaque, const char *type)
{
    aggregate *a = opaque;
    for (size_t i = 0; i < a->def->n_events; i++)
        if (strcmp(a->events[i].name, type) == 0)
            return a->events[i].schema;
    return NULL;
}

int engine_reads(stele_engine *e, stele_codec_events **out, stele_err *err)
{
    if (!e->reads) {
        int rc = stele_codec_events_new(e->codec, &e->reads, err);
        if (rc != 0)
            return rc;
    }
    stele_codec_events_clear(e->reads);
    *out = e->reads;
    return 0;
}

bool engine_record_fault(int rc)
{
    return rc == STELE_EINVAL || rc == STELE_ENOTFOUND || rc == STELE_EPLUGIN;
}

const char *engine_undeclared_hint(stele_engine *e, const char *type, char *buf,
                                   size_t size)
{
    if (stele_codec_has_upcasters(e->codec, type))
        snprintf(buf, size,
                 " (a loaded upcaster reads it, but not into a type the "
                 "aggregate declares)");
    else
        snprintf(buf, size,
                 " (no loaded upcaster reads %s: if it was renamed or "
                 "replaced, list the upcaster that does under plugins:)",
                 type);
    return buf;
}
