/*
 * codec.h — Avro records on the log.
 *
 * Owns: the schema catalogue read from schemas/ (one .avsc file per record
 * type and version, named <full.name>.v<N>.avsc, in any folder below the
 * schemas directory), the schema registries (embedded, stored on the log;
 * REST later), the Confluent wire format (byte 0, 4-byte big-endian schema
 * id, Avro binary), decoding a writer's value into a reader's schema,
 * schema defaults, and JSON <-> Avro for the CLI and HTTP API.
 *
 * Values are avro-c generic values (avro_value_t). A stele_value handed to
 * plugins is an avro_value_t with the same layout (see value.h).
 */
#ifndef STELE_CODEC_H
#define STELE_CODEC_H

#include <avro.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <stele/stele.h>

#include "../log/log.h"

/* Largest value the codec accepts or allocates for (a whole record). */
#define STELE_CODEC_MAX_VALUE (16u * 1024u * 1024u)

/* ------------------------------------------------------------------ */
/* Registries                                                           */

typedef struct stele_registry stele_registry;

/*
 * The embedded registry keeps schemas in the log itself, in the topic
 * "_stele_schemas" (one partition; created if absent): registering appends
 * {"subject","schema"} and the schema's id is that record's offset + 1, so
 * ids are unique, never reused, and stable across restarts. Registering a
 * schema already registered under the subject (same text once normalized:
 * parsed and re-printed with sorted keys) returns the existing id.
 * The registry borrows log, which must outlive it.
 */
int stele_registry_open_embedded(stele_log *log, stele_registry **out,
                                 stele_err *err);

void stele_registry_close(stele_registry *reg);

/* Registers schema text (kept exactly as written) under subject; returns
 * its id. */
int stele_registry_register(stele_registry *reg, const char *subject,
                            const char *schema_text, int32_t *id,
                            stele_err *err);

/* The schema text with this id (owned by the registry). STELE_ENOTFOUND
 * for an unknown id. */
int stele_registry_lookup(stele_registry *reg, int32_t id, const char **text,
                          stele_err *err);

/* ------------------------------------------------------------------ */
/* Schemas                                                              */

/* A record type at one version, parsed, with its registry id. Owned by the
 * codec; valid until stele_codec_free. */
typedef struct stele_schema {
    const char *name;  /* full name, "bank.Deposited" */
    int version;       /* from the file name; 0 for a writer schema known
                          only by its id */
    int32_t id;        /* registry id */
    const char *text;  /* the .avsc text as written */
    avro_schema_t schema;
    avro_value_iface_t *iface; /* generic class for values of it */
} stele_schema;

typedef struct stele_codec stele_codec;

/*
 * Reads every *.avsc below schemas_dir (a file that fails to parse, or whose
 * record name does not match its file name, is an error naming the file).
 * Schemas are registered lazily, the first time one is used for writing.
 * The codec borrows reg, which must outlive it.
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

/* ------------------------------------------------------------------ */
/* Wire format                                                          */

typedef struct stele_buf {
    char *data;
    size_t len, cap;
} stele_buf;

void stele_buf_free(stele_buf *b);

/* Encodes v (a value of s) as Confluent wire format into buf (replacing
 * its contents; buf grows as needed and is reused across calls). */
int stele_codec_encode(stele_codec *c, const stele_schema *s,
                       const avro_value_t *v, stele_buf *buf,
                       stele_err *err);

/* The schema id in a wire-format value, checking the magic byte and
 * length. */
int stele_codec_wire_id(const void *data, size_t len, int32_t *id,
                        stele_err *err);

/*
 * Decodes a wire-format value into out, a value of reader (created by the
 * caller from reader->iface, reset here). When the writer's id differs from
 * the reader's, the writer's schema is fetched by id and resolved into the
 * reader's per Avro schema resolution, with defaults for reader fields the
 * writer lacks. Errors name the reason: bad magic, unknown id, truncated or
 * corrupt payload, unresolvable schemas; never a silently defaulted value.
 */
int stele_codec_decode(stele_codec *c, const void *data, size_t len,
                       const stele_schema *reader, avro_value_t *out,
                       stele_err *err);

/* ------------------------------------------------------------------ */
/* JSON                                                                 */

/*
 * Fills out (a value of s, reset to defaults first) from a JSON object.
 * Fields missing from the JSON keep their defaults; a field without a
 * default that is missing, an unknown field, or a type mismatch is an error
 * naming the field path ("amount: expected long, got string"). Unions
 * accept Avro's JSON encoding ({"type": value}) and a bare value when one
 * branch fits it; enums are symbol strings; bytes are strings.
 */
int stele_codec_from_json(const stele_schema *s, const json_t *json,
                          avro_value_t *out, stele_err *err);

/* A new JSON value for v: records as objects, unions as their bare
 * value (null or the branch's value), enums as symbols. */
json_t *stele_codec_to_json(const avro_value_t *v);

#endif
