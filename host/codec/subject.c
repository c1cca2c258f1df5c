/*
 * subject.c — registering the catalogue's schemas under the subject of a
 * topic, for the topic-record subject strategy.
 *
 * Under that strategy one record type has a subject per topic that carries
 * it. A Confluent-compatible registry gives one schema text one id across
 * all its subjects, so the schema's id stays a property of the schema; a
 * registry that answered two ids for one text would make the wire format
 * ambiguous, and is refused with both ids.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static codec_schema *catalogue_find(stele_codec *c, const char *name,
                                    int version)
{
    for (size_t i = 0; i < c->n_cat; i++)
        if (c->cat[i]->pub.version == version &&
            strcmp(c->cat[i]->pub.name, name) == 0)
            return c->cat[i];
    return NULL;
}

int stele_codec_schema_for_topic(stele_codec *c, const char *topic,
                                 const char *name, int version,
                                 const stele_schema **out, stele_err *err)
{
    if (stele_registry_strategy(c->reg) != STELE_SUBJECT_TOPIC_RECORD ||
        !topic || !*topic || !name)
        return stele_codec_schema(c, name, version, out, err);
    codec_schema *cs = catalogue_find(c, name, version);
    if (!cs)
        return codec_no_schema(c, name, version, err);
    char subject[1024];
    if (stele_registry_subject(c->reg, topic, name, subject, sizeof subject))
        return stele_err_set(err, STELE_EINVAL, "%s: subject name too long",
                             topic);
    int32_t id = 0;
    /* Looked up first; registered only by a codec that registers. The
     * REST registry caches both, so this is one request per subject and
     * schema per process. */
    stele_registry_schema found;
    int rc = stele_registry_find(c->reg, subject, cs->pub.text, &found, err);
    if (rc == 0)
        id = found.id;
    stele_registry_schema_clear(&found);
    if (rc == STELE_ENOTFOUND && c->lookup_only) {
        *out = &cs->pub; /* read with; not written with */
        return 0;
    }
    if (rc == STELE_ENOTFOUND)
        rc = stele_registry_register(c->reg, subject, cs->pub.text, &id, err);
    if (rc)
        return stele_err_prefix(err, "%s", cs->path);
    if (cs->pub.id == 0) {
        if (stele_map_put(c->by_id, &id, sizeof id, cs, NULL))
            return stele_err_set(err, STELE_ENOMEM, "codec: no memory");
        cs->pub.id = id;
    } else if (cs->pub.id != id) {
        return stele_err_set(err, STELE_EINVAL,
                             "%s: registered as id %d under %s but as id %d "
                             "before: the registry gives one schema several "
                             "ids",
                             cs->path, id, subject, cs->pub.id);
    }
    *out = &cs->pub;
    return 0;
}
