/*
 * catalogue.c — the codec's lookups by name/version and by registry id.
 *
 * Schemas are registered the first time stele_codec_schema hands them
 * out, so a catalogue with many versions registers only those a process
 * uses.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int codec_no_schema(const stele_codec *c, const char *name, int version,
                    stele_err *err)
{
    int have = 0;
    for (size_t i = 0; name && i < c->n_cat; i++)
        if (strcmp(c->cat[i]->pub.name, name) == 0)
            have++;
    return stele_err_set(err, STELE_ENOTFOUND,
                         "no schema for %s v%d: expected a file %s.v%d.avsc "
                         "in %s or a folder under it (%d other version%s of "
                         "%s there)",
                         name ? name : "(null)", version,
                         name ? name : "(null)", version,
                         c->schemas_dir ? c->schemas_dir : "schemas/", have,
                         have == 1 ? "" : "s", name ? name : "(null)");
}

int stele_codec_schema(stele_codec *c, const char *name, int version,
                       const stele_schema **out, stele_err *err)
{
    char key[600];
    size_t klen;
    codec_schema *cs = NULL;
    if (name && codec_name_key(name, version, key, sizeof key, &klen) == 0)
        cs = stele_map_get(c->by_name, key, klen);
    if (!cs)
        return codec_no_schema(c, name, version, err);
    if (cs->pub.id == 0 && !cs->looked_up) {
        /* Look up before registering (as Confluent's serializers do): a
         * registry that is read-only to this client still answers it. */
        stele_registry_schema found;
        int32_t id = 0;
        int rc = stele_registry_find(c->reg, cs->pub.name, cs->pub.text, &found,
                                     err);
        if (rc == 0)
            id = found.id;
        stele_registry_schema_clear(&found);
        if (rc == STELE_ENOTFOUND && c->lookup_only) {
            cs->looked_up = true; /* read with; not written with */
            *out = &cs->pub;
            return 0;
        }
        if (rc == STELE_ENOTFOUND)
            rc = stele_registry_register(c->reg, cs->pub.name, cs->pub.text,
                                         &id, err);
        if (rc)
            return stele_err_prefix(err, "%s", cs->path);
        if (stele_map_put(c->by_id, &id, sizeof id, cs, NULL))
            return stele_err_set(err, STELE_ENOMEM, "codec: no memory");
        cs->pub.id = id;
    }
    *out = &cs->pub;
    return 0;
}

void stele_codec_set_registering(stele_codec *c, bool on)
{
    c->lookup_only = !on;
}

/* The version of the catalogue file whose schema is the same as a writer
 * schema fetched by id (same JSON once parsed; key order and spacing
 * aside), so upcasters know where a stored event starts; 0 when none is:
 * such a writer is only resolved. */
static int catalogue_version(const stele_codec *c, const codec_schema *cs)
{
    for (size_t i = 0; i < c->n_cat; i++)
        if (strcmp(c->cat[i]->pub.name, cs->pub.name) == 0 &&
            json_equal(c->cat[i]->json, cs->json))
            return c->cat[i]->pub.version;
    return 0;
}

int stele_codec_schema_by_id(stele_codec *c, int32_t id,
                             const stele_schema **out, stele_err *err)
{
    codec_schema *cs = stele_map_get(c->by_id, &id, sizeof id);
    if (cs) {
        *out = &cs->pub;
        return 0;
    }
    const char *text;
    int rc = stele_registry_lookup(c->reg, id, &text, err);
    if (rc)
        return rc;
    char where[64];
    snprintf(where, sizeof where, "schema id %d", id);
    if ((rc = codec_schema_parse(text, strlen(text), where, &cs, err)))
        return rc;
    cs->pub.id = id;
    cs->pub.version = catalogue_version(c, cs);
    if (c->n_fetched == c->cap_fetched) {
        size_t cap = c->cap_fetched ? c->cap_fetched * 2 : 8;
        codec_schema **f = realloc(c->fetched, cap * sizeof *f);
        if (!f) {
            codec_schema_free(cs);
            return stele_err_set(err, STELE_ENOMEM, "codec: no memory");
        }
        c->fetched = f;
        c->cap_fetched = cap;
    }
    c->fetched[c->n_fetched++] = cs;
    if (stele_map_put(c->by_id, &id, sizeof id, cs, NULL))
        return stele_err_set(err, STELE_ENOMEM, "codec: no memory");
    *out = &cs->pub;
    return 0;
}

size_t stele_codec_catalogue(stele_codec *c, const stele_schema *const **out)
{
    *out = c->list;
    return c->n_cat;
}
