/*
 * resolve.c — reading a writer's binary into a reader's schema.
 *
 * avro-c's resolved writer does the work: fields the reader lacks are
 * skipped, ints widen to longs, and so on. What it cannot do, since it
 * ignores "default", is fill a reader field the writer lacks; until the
 * codec does that itself, the resolver refuses such a pair with an error
 * that names both schemas and the field (never a silently zeroed field).
 * Defaults and upcasting slot in here: resolver_new decides what the
 * writer's data lacks, resolver_read fills it after avro-c has read.
 */
#include "codec_private.h"

#include <stdlib.h>
#include <string.h>

struct resolver {
    avro_value_iface_t *iface; /* the resolved writer class */
    avro_value_t wv;           /* its value, pointed at each output */
};

/* Finds a reader record field (below the top-level records given) that
 * the writer record lacks; writes its path into path. */
static bool missing_field(avro_schema_t w, avro_schema_t r, int depth,
                          char *path, size_t cap, bool *has_default,
                          const codec_schema *reader)
{
    w = schema_deref(w);
    r = schema_deref(r);
    if (depth > CODEC_MAX_DEPTH || avro_typeof(w) != AVRO_RECORD ||
        avro_typeof(r) != AVRO_RECORD)
        return false;
    for (size_t i = 0; i < avro_schema_record_size(r); i++) {
        const char *name = avro_schema_record_field_name(r, (int)i);
        /* avro_schema_record_field_get does not report a missing field:
         * ask for the index. */
        int wi = avro_schema_record_field_get_index(w, name);
        size_t old = path_push_field(path, cap, name);
        if (wi < 0) {
            const record_info *ri = schema_record_info(reader, r);
            *has_default = ri && i < ri->n_fields && ri->defaults[i];
            return true;
        }
        if (missing_field(avro_schema_record_field_get_by_index(w, wi),
                          avro_schema_record_field_get_by_index(r, (int)i),
                          depth + 1, path, cap, has_default, reader))
            return true;
        path_pop(path, old);
    }
    return false;
}

int resolver_new(const stele_schema *writer, const stele_schema *reader,
                 resolver **out, stele_err *err)
{
    char path[256] = "";
    bool has_default = false;
    if (missing_field(writer->schema, reader->schema, 0, path, sizeof path,
                      &has_default, codec_schema_of(reader)))
        return stele_err_set(
            err, STELE_EINVAL,
            "cannot resolve writer schema id %d (%s) into reader %s v%d: "
            "reader field %s is missing from the writer%s",
            writer->id, writer->name, reader->name, reader->version, path,
            has_default ? " (filling it from its default is not supported "
                          "yet)"
                        : " and has no default");
    resolver *r = calloc(1, sizeof *r);
    if (!r)
        return stele_err_set(err, STELE_ENOMEM, "resolver: no memory");
    r->iface = avro_resolved_writer_new(writer->schema, reader->schema);
    if (!r->iface) {
        char what[400];
        snprintf(what, sizeof what,
                 "cannot resolve writer schema id %d (%s) into reader %s v%d",
                 writer->id, writer->name, reader->name, reader->version);
        free(r);
        return codec_avro_err(err, STELE_EINVAL, what);
    }
    if (avro_resolved_writer_new_value(r->iface, &r->wv)) {
        avro_value_iface_decref(r->iface);
        free(r);
        return codec_avro_err(err, STELE_ENOMEM, "resolver");
    }
    *out = r;
    return 0;
}

void resolver_free(resolver *r)
{
    if (!r)
        return;
    avro_value_decref(&r->wv);
    avro_value_iface_decref(r->iface);
    free(r);
}

int resolver_read(resolver *r, avro_reader_t rd, avro_value_t *out,
                  stele_err *err)
{
    avro_resolved_writer_set_dest(&r->wv, out);
    int rc = avro_value_read(rd, &r->wv);
    avro_resolved_writer_clear_dest(&r->wv);
    if (rc)
        return codec_avro_err(err, STELE_EINVAL, "decode (resolving)");
    return 0;
}
