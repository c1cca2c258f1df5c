/*
 * schema.h — the schema catalogue and its values: the codec handle, record
 * types by name and version or by registry id, values with their defaults.
 *
 * Values are avro-c generic values (avro_value_t). A stele_value handed to
 * plugins is an avro_value_t with the same layout (see value.h).
 */
#ifndef STELE_CODEC_SCHEMA_H
#define STELE_CODEC_SCHEMA_H

#include <avro.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <stele/plugin.h>
#include <stele/stele.h>

#include "registry/registry.h"

/* Largest value the codec accepts or allocates for (a whole record). */
#define STELE_CODEC_MAX_VALUE (16u * 1024u * 1024u)

/* ------------------------------------------------------------------ */
/* Schemas                                                              */

/* A record type at one version, parsed, with its registry id. Owned by the
 * codec; valid until stele_codec_free. */
typedef struct stele_schema {
    const char *name; /* full name, "bank.Deposited" */
    int version;      /* from the file name; 0 for a writer schema known
                         only by its id */
    int32_t id;       /* registry id */
    const char *text; /* the .avsc text as written */
    avro_schema_t schema;
    avro_value_iface_t *iface; /* generic class for values of it */
} stele_schema;

typedef struct stele_codec stele_codec;

/*
 * Reads every *.avsc below schemas_dir (a file that fails to parse, or whose
 * record name does not match its file name, is an error naming the file).
 * Schemas are looked up (and, in a codec that registers, registered) the
 * first time one is handed out. The codec borrows reg, which must outlive
 * it; reg NULL: a catalogue only (stele plugin inspect --config), whose
 * schemas cannot be handed out.
 */
int stele_codec_new(const char *schemas_dir, stele_registry *reg,
                    stele_codec **out, stele_err *err);

void stele_codec_free(stele_codec *c);

/* The schema of record type name at version (registering it if needed).
 * STELE_ENOTFOUND names the type and version when there is no such file. */
int stele_codec_schema(stele_codec *c, const char *name, int version,
                       const stele_schema **out, stele_err *err);

/* The writer schema with registry id id (fetched from the registry and
 * parsed on first use). */
int stele_codec_schema_by_id(stele_codec *c, int32_t id,
                             const stele_schema **out, stele_err *err);

/* Every version of every record type in the catalogue, for listing. */
size_t stele_codec_catalogue(stele_codec *c, const stele_schema *const **out);

/* ------------------------------------------------------------------ */
/* Values                                                               */

/* A new value of schema s, with every field set to its declared default
 * (avro-c ignores "default", the codec applies them from the .avsc text);
 * fields without a default are zero/empty, unions take their first branch.
 * Free with avro_value_decref. */
int stele_codec_value_new(const stele_schema *s, avro_value_t *out,
                          stele_err *err);

/* Resets an existing value of s to its defaults, as value_new does. */
int stele_codec_value_reset(const stele_schema *s, avro_value_t *v,
                            stele_err *err);

/* Whether stele_codec_schema may register a schema the registry does not
 * hold (on by default). Off in a process that only reads: schemas are
 * looked up, and one not registered is handed out with id 0 (it reads;
 * encoding with it is refused). */
void stele_codec_set_registering(stele_codec *c, bool on);

/* The codec's schema name vN, registered under its subject for topic (the
 * topic-record strategy needs it; under the record strategy this is
 * stele_codec_schema). */
int stele_codec_schema_for_topic(stele_codec *c, const char *topic,
                                 const char *name, int version,
                                 const stele_schema **out, stele_err *err);

#endif
