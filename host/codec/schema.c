/*
 * schema.c — one parsed schema: its text, avro-c schema and class, the
 * JSON that its defaults point into, its wire shape; made from a .avsc
 * file or a registry's text, and freed.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int codec_schema_parse(const char *text, size_t len, const char *where,
                       codec_schema **out, stele_err *err)
{
    codec_install_allocator();
    codec_schema *cs = calloc(1, sizeof *cs);
    char *copy = malloc(len + 1);
    if (!cs || !copy) {
        free(cs);
        free(copy);
        return stele_err_set(err, STELE_ENOMEM, "%s: no memory", where);
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    cs->pub.text = copy;

    int rc;
    json_error_t jerr;
    if (avro_schema_from_json_length(copy, len, &cs->pub.schema)) {
        cs->pub.schema = NULL;
        rc = stele_err_set(err, STELE_EINVAL, "%s: invalid Avro schema: %s",
                           where, avro_strerror());
    } else if (avro_typeof(cs->pub.schema) != AVRO_RECORD) {
        rc = stele_err_set(err, STELE_EINVAL,
                           "%s: the schema is a %s, not a record", where,
                           avro_schema_type_name(cs->pub.schema));
    } else if (!(cs->json = json_loadb(copy, len, 0, &jerr))) {
        rc = stele_err_set(err, STELE_EINVAL, "%s:%d: %s", where, jerr.line,
                           jerr.text);
    } else if (!(cs->pub.iface =
                     avro_generic_class_from_schema(cs->pub.schema))) {
        rc = codec_avro_err(err, STELE_EINVAL, where);
    } else if ((rc = codec_wire_shape_new(cs->pub.schema, &cs->shape, err))) {
        stele_err_prefix(err, "%s", where);
    } else {
        char buf[512];
        codec_full_name(cs->pub.schema, buf, sizeof buf);
        if (!(cs->pub.name = strdup(buf)))
            rc = stele_err_set(err, STELE_ENOMEM, "%s: no memory", where);
        else
            rc = codec_defaults_build(cs, where, err);
    }
    if (rc) {
        codec_schema_free(cs);
        return rc;
    }
    *out = cs;
    return 0;
}

void codec_schema_free(codec_schema *cs)
{
    if (!cs)
        return;
    codec_defaults_free(cs);
    codec_wire_shape_free(cs->shape);
    if (cs->pub.iface)
        avro_value_iface_decref(cs->pub.iface);
    if (cs->pub.schema)
        avro_schema_decref(cs->pub.schema);
    json_decref(cs->json);
    free((char *)cs->pub.name);
    free((char *)cs->pub.text);
    free(cs->path);
    free(cs);
}
