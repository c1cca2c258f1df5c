/*
 * defaults.c — schema defaults, which avro-c parses but ignores.
 *
 * Each record's declared field defaults are taken from the schema's own
 * JSON text (matched to avro-c's record schemas by full name), and applied
 * once into a template value; value_new and value_reset copy the template.
 * Fields without a default get their type's zero value: 0, "", empty
 * arrays and maps, the first enum symbol, zeroed fixed, and, for unions,
 * the first branch (with its own zero value), so a new value is always
 * encodable.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Collects every record definition in the schema JSON by full name,
 * following the Avro namespace rules (a dotted name is full; otherwise the
 * record's "namespace", else the enclosing one). */
static int collect(json_t *node, const char *ns, stele_map *defs, int depth)
{
    if (depth > CODEC_MAX_DEPTH)
        return 0;
    if (json_is_array(node)) {
        size_t i;
        json_t *item;
        json_array_foreach(node, i, item)
        {
            int rc = collect(item, ns, defs, depth + 1);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (!json_is_object(node))
        return 0;
    json_t *type = json_object_get(node, "type");
    const char *t = json_string_value(type);
    if (!t)
        return collect(type, ns, defs, depth + 1);
    if (strcmp(t, "array") == 0)
        return collect(json_object_get(node, "items"), ns, defs, depth + 1);
    if (strcmp(t, "map") == 0)
        return collect(json_object_get(node, "values"), ns, defs, depth + 1);
    if (strcmp(t, "record") != 0 && strcmp(t, "error") != 0)
        return 0;

    const char *name = json_string_value(json_object_get(node, "name"));
    if (!name)
        return 0;
    char full[512], own_ns[512];
    const char *dot = strrchr(name, '.');
    int n1, n2;
    if (dot) {
        n1 = snprintf(full, sizeof full, "%s", name);
        n2 = snprintf(own_ns, sizeof own_ns, "%.*s", (int)(dot - name), name);
    } else {
        const char *n = json_string_value(json_object_get(node, "namespace"));
        n2 = snprintf(own_ns, sizeof own_ns, "%s", n ? n : ns);
        n1 = *own_ns ? snprintf(full, sizeof full, "%s.%s", own_ns, name)
                     : snprintf(full, sizeof full, "%s", name);
    }
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof full ||
        (size_t)n2 >= sizeof own_ns)
        return 0; /* no real schema has such names; avro-c names it */
    if (stele_map_put(defs, full, strlen(full), node, NULL))
        return STELE_ENOMEM;
    size_t i;
    json_t *field;
    json_array_foreach(json_object_get(node, "fields"), i, field)
    {
        int rc =
            collect(json_object_get(field, "type"), own_ns, defs, depth + 1);
        if (rc)
            return rc;
    }
    return 0;
}

static json_t *field_default(json_t *def, const char *field)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(def, "fields"), i, f)
    {
        const char *n = json_string_value(json_object_get(f, "name"));
        if (n && strcmp(n, field) == 0)
            return json_object_get(f, "default");
    }
    return NULL;
}

static void record_info_free(void *p)
{
    record_info *ri = p;
    free(ri->full_name);
    free(ri->defaults);
    free(ri);
}

/* Gives every record schema below s its record_info. */
static int index_records(codec_schema *cs, stele_map *defs, avro_schema_t s,
                         int depth)
{
    s = codec_schema_deref(s);
    if (depth > CODEC_MAX_DEPTH)
        return 0;
    switch (avro_typeof(s)) {
    case AVRO_ARRAY:
        return index_records(cs, defs, avro_schema_array_items(s), depth + 1);
    case AVRO_MAP:
        return index_records(cs, defs, avro_schema_map_values(s), depth + 1);
    case AVRO_UNION:
        for (size_t i = 0; i < avro_schema_union_size(s); i++) {
            int rc = index_records(cs, defs, avro_schema_union_branch(s, i),
                                   depth + 1);
            if (rc)
                return rc;
        }
        return 0;
    case AVRO_RECORD: break;
    default: return 0;
    }
    if (stele_map_get(cs->records, &s, sizeof s))
        return 0; /* seen: a shared or recursive record */
    record_info *ri = calloc(1, sizeof *ri);
    char name[512];
    codec_full_name(s, name, sizeof name);
    if (!ri)
        return STELE_ENOMEM;
    ri->schema = s;
    ri->n_fields = avro_schema_record_size(s);
    ri->full_name = strdup(name);
    ri->defaults =
        calloc(ri->n_fields ? ri->n_fields : 1, sizeof *ri->defaults);
    if (!ri->full_name || !ri->defaults ||
        stele_map_put(cs->records, &s, sizeof s, ri, NULL)) {
        record_info_free(ri);
        return STELE_ENOMEM;
    }
    json_t *def = stele_map_get(defs, name, strlen(name));
    for (size_t i = 0; i < ri->n_fields; i++) {
        if (def)
            ri->defaults[i] =
                field_default(def, avro_schema_record_field_name(s, (int)i));
        int rc = index_records(cs, defs,
                               avro_schema_record_field_get_by_index(s, (int)i),
                               depth + 1);
        if (rc)
            return rc;
    }
    return 0;
}

int codec_defaults_zero_fill(const codec_schema *cs, avro_value_t *v, int depth,
                             char *path, size_t path_cap, stele_err *err)
{
    if (depth > CODEC_MAX_DEPTH)
        return stele_err_set(err, STELE_EINVAL,
                             "%s: recursive schema: no default ends the "
                             "recursion within %d levels",
                             path, CODEC_MAX_DEPTH);
    int rc = 0;
    switch (avro_value_get_type(v)) {
    case AVRO_RECORD: {
        const record_info *ri = codec_record_info(cs, avro_value_get_schema(v));
        size_t n = 0;
        avro_value_get_size(v, &n);
        for (size_t i = 0; i < n && rc == 0; i++) {
            avro_value_t f;
            const char *fname;
            if (avro_value_get_by_index(v, i, &f, &fname))
                return codec_avro_err(err, STELE_EINVAL, path);
            size_t old = codec_path_push_field(path, path_cap, fname);
            if (ri && i < ri->n_fields && ri->defaults[i]) {
                rc = codec_json_to_value(cs, ri->defaults[i], &f, JSON_DEFAULT,
                                         depth + 1, path, path_cap, err);
                if (rc)
                    stele_err_prefix(err, "default");
            } else {
                rc = codec_defaults_zero_fill(cs, &f, depth + 1, path, path_cap,
                                              err);
            }
            path_pop(path, old);
        }
        return rc;
    }
    case AVRO_UNION: {
        avro_value_t b;
        if (avro_value_set_branch(v, 0, &b))
            return codec_avro_err(err, STELE_EINVAL, path);
        return codec_defaults_zero_fill(cs, &b, depth + 1, path, path_cap, err);
    }
    case AVRO_FIXED: {
        size_t size = (size_t)avro_schema_fixed_size(
            codec_schema_deref(avro_value_get_schema(v)));
        void *zeros = calloc(1, size ? size : 1);
        if (!zeros)
            return stele_err_set(err, STELE_ENOMEM, "%s: no memory", path);
        rc = avro_value_set_fixed(v, zeros, size);
        free(zeros);
        return rc ? codec_avro_err(err, STELE_EINVAL, path) : 0;
    }
    case AVRO_ENUM:
        return avro_value_set_enum(v, 0)
                   ? codec_avro_err(err, STELE_EINVAL, path)
                   : 0;
    default: return 0; /* a new or reset primitive is already zero */
    }
}

int codec_defaults_build(codec_schema *cs, const char *where, stele_err *err)
{
    stele_map *defs = stele_map_new();
    cs->records = stele_map_new();
    if (!defs || !cs->records || collect(cs->json, "", defs, 0) ||
        index_records(cs, defs, cs->pub.schema, 0)) {
        stele_map_free(defs, NULL);
        return stele_err_set(err, STELE_ENOMEM, "%s: no memory", where);
    }
    stele_map_free(defs, NULL);
    if (avro_generic_value_new(cs->pub.iface, &cs->tmpl))
        return codec_avro_err(err, STELE_ENOMEM, where);
    cs->has_tmpl = true;
    char path[256] = "";
    int rc = codec_defaults_zero_fill(cs, &cs->tmpl, 0, path, sizeof path, err);
    if (rc)
        return stele_err_prefix(err, "%s", where);
    return 0;
}

void codec_defaults_free(codec_schema *cs)
{
    if (cs->has_tmpl)
        avro_value_decref(&cs->tmpl);
    cs->has_tmpl = false;
    stele_map_free(cs->records, record_info_free);
    cs->records = NULL;
}

int stele_codec_value_new(const stele_schema *s, avro_value_t *out,
                          stele_err *err)
{
    if (!s || !out)
        return stele_err_set(err, STELE_EINVAL, "value_new: no schema");
    if (avro_generic_value_new(s->iface, out))
        return codec_avro_err(err, STELE_ENOMEM, s->name);
    int rc = stele_codec_value_reset(s, out, err);
    if (rc)
        avro_value_decref(out);
    return rc;
}

int stele_codec_value_reset(const stele_schema *s, avro_value_t *v,
                            stele_err *err)
{
    const codec_schema *cs = codec_schema_of(s);
    if (!s || !v || !v->iface || avro_value_get_type(v) != AVRO_RECORD)
        return stele_err_set(err, STELE_EINVAL,
                             "value_reset: not a record value");
    avro_schema_t vs = avro_value_get_schema(v);
    if (vs != s->schema && !avro_schema_equal(vs, s->schema))
        return stele_err_set(err, STELE_EINVAL,
                             "value_reset: the value is not a %s v%d", s->name,
                             s->version);
    if (codec_value_copy_into(v, &cs->tmpl))
        return codec_avro_err(err, STELE_ENOMEM, s->name);
    return 0;
}
