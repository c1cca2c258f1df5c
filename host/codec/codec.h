/*
 * codec.h — Avro records on the log.
 *
 * Owns: the schema catalogue read from schemas/ (one .avsc file per record
 * type and version, named <full.name>.v<N>.avsc, in any folder below the
 * schemas directory) and its ids in the schema registry (host/registry/),
 * the Confluent wire format (byte 0, 4-byte big-endian schema
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
                       const avro_value_t *v, stele_buf *buf, stele_err *err);

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
/* Upcasters and reading stored events                                  */

/*
 * Registers an upcaster: def->event_type at def->from_version becomes one
 * or more events of def->to_version through def->upcast(ctx, ...). def and
 * ctx are borrowed and must outlive the codec; where (the plugin's path,
 * for messages) is copied. Refused with STELE_EINVAL: a step that is not
 * from -> from + 1 (backwards or in place, it would loop; further, it
 * skips versions), a second upcaster for the same type and from-version
 * (the message names both). Call stele_codec_check_upcasters after the
 * last one.
 */
int stele_codec_add_upcaster(stele_codec *c, const stele_upcaster_def *def,
                             void *ctx, const char *where, stele_err *err);

/* Checks every chain: each type's steps are contiguous (a gap, say v1->v2
 * and v3->v4 without v2->v3, is an error naming the type, the versions and
 * both upcasters) and each step's from-version is in the catalogue.
 * STELE_EINVAL with the first problem. */
int stele_codec_check_upcasters(stele_codec *c, stele_err *err);

/* Whether an upcaster reads type: a stored event of that type may be read
 * as events of other types (a renamed or split event). */
bool stele_codec_has_upcasters(const stele_codec *c, const char *type);

/* The host API's upcast_emit: appends an event of type at the running
 * upcaster's to_version and returns its value, reset to its defaults. */
int stele_codec_upcast_emit(stele_upcast_out *out, const char *event_type,
                            stele_value *value);

/* One event read from a stored one. */
typedef struct stele_codec_event {
    /* The reader's declared schema; when declared is false (the reader
     * does not read this type), the schema the value is in. */
    const stele_schema *schema;
    avro_value_t value;
    bool declared;
} stele_codec_event;

/* The events read, and pools of values they reuse: values stay valid until
 * the next stele_codec_events_clear or free. One per reader (an aggregate
 * replay, a projector); not thread-safe, like the codec. */
typedef struct stele_codec_events stele_codec_events;

int stele_codec_events_new(stele_codec *c, stele_codec_events **out,
                           stele_err *err);
void stele_codec_events_free(stele_codec_events *ev);
/* Forgets every event read (values go back to the pools). */
void stele_codec_events_clear(stele_codec_events *ev);
/* The events read since the last clear, in order. */
size_t stele_codec_events_list(const stele_codec_events *ev,
                               const stele_codec_event **items);

/* The schema a reader declares for type (its name and version), or NULL
 * when it does not read type. */
typedef const stele_schema *(*stele_codec_want_fn)(void *opaque,
                                                   const char *type);

/*
 * Reads one stored wire-format event into the events a reader declares,
 * appending them to ev. The writer's schema (by id) says the type and the
 * version it was written at (0 for a schema no catalogue file matches:
 * resolution only). While an upcaster reads the current type at a version
 * below the one the reader declares (or the reader does not read the type
 * at all, as for a renamed one), the value is decoded into exactly that
 * version and upcast; each event it emits continues the same way. Then each
 * is resolved into the reader's declared version (Avro rules, defaults).
 * The fast path, a writer with the reader's own id, is a plain decode.
 * Errors name the type, the versions and the reason (unknown id, corrupt
 * payload, unresolvable value, upcaster failure); nothing is appended then.
 */
int stele_codec_read_event(stele_codec *c, const void *data, size_t len,
                           stele_codec_want_fn want, void *opaque,
                           stele_codec_events *ev, stele_err *err);

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

/* ------------------------------------------------------------------ */
/* Compatibility                                                        */

/*
 * Whether schema_text may become the next version of subject: asked of a
 * registry that checks (stele_registry_tests_compat), else checked in the
 * host against the subject's versions with its level, or `fallback` when
 * it has none. *compatible is set and the reasons appended to rep. A
 * subject with no versions is compatible.
 */
int stele_compat_test(stele_registry *reg, const char *subject,
                      const char *schema_text, stele_compat_mode fallback,
                      bool *compatible, stele_compat_report *rep,
                      stele_err *err);

/*
 * Avro schema resolution between two .avsc texts, checked on their JSON
 * (avro-c drops defaults and aliases): can data written with writer_text
 * be read with reader_text? Each incompatibility is appended to rep as
 * "bank.Deposited.amount: writer type string cannot be read as long".
 * Returns 0 when the check ran (compatible iff nothing was appended),
 * STELE_EINVAL naming `what` when a text is not a valid schema.
 */
int stele_compat_check(const char *reader_text, const char *writer_text,
                       stele_compat_report *rep, stele_err *err);

/*
 * Checks new_text against the previous versions of a subject (oldest
 * first) per mode: BACKWARD (the new schema reads the latest previous
 * version's data), FORWARD (the latest previous reads the new data), FULL
 * (both), the _TRANSITIVE forms against every previous version, NONE.
 * Messages say which version and direction failed.
 */
int stele_compat_check_mode(stele_compat_mode mode, const char *new_text,
                            const char *const *previous,
                            const int *previous_versions, size_t n_previous,
                            stele_compat_report *rep, stele_err *err);

/* Whether stele_codec_schema may register a schema the registry does not
 * hold (on by default). Off in a process that only reads: schemas are
 * looked up, and one not registered is handed out with id 0 (it reads;
 * encoding with it is refused). */
void stele_codec_set_registering(stele_codec *c, bool on);

/*
 * The schema gate (gate.c): every record type of the catalogue against
 * its subject in the registry — registered versions matched by text, a
 * deployed version edited in place (DIFFERS), the compatibility of the
 * versions not registered yet by the subject's level (fallback when it
 * has none), upcaster-bridged steps understood (bridged: whether an
 * upcaster leads into type vN). Each finding goes to line(), bad when it
 * is an error; *bad counts those. do_register registers the compatible
 * new versions of every type without an error. Returns 0 when the gate
 * ran (whatever it found).
 */
typedef struct stele_gate {
    stele_registry *reg;
    stele_codec *codec;
    const char *topic; /* topic-record strategy: the topic's subjects */
    stele_compat_mode fallback;
    bool do_register;
    bool (*bridged)(void *opaque, const char *type, int version);
    void *bridged_opaque;
    /* Whether the process registers type vN (NULL: every version, as
     * stele schema register does): one it does not is neither checked nor
     * checked against (the process that writes it checks it, with the
     * upcasters it loads). */
    bool (*registers)(void *opaque, const char *type, int version);
    void *registers_opaque;
    void (*line)(void *opaque, bool bad, const char *line);
    void *line_opaque;
} stele_gate;
int stele_gate_run(const stele_gate *g, size_t *types, size_t *bad,
                   stele_err *err);

/* The codec's schema name vN, registered under its subject for topic (the
 * topic-record strategy needs it; under the record strategy this is
 * stele_codec_schema). */
int stele_codec_schema_for_topic(stele_codec *c, const char *topic,
                                 const char *name, int version,
                                 const stele_schema **out, stele_err *err);

#endif
