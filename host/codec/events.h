/*
 * events.h — reading stored events: upcaster chains and Avro schema
 * resolution from the writer's schema to the one a reader declares.
 */
#ifndef STELE_CODEC_EVENTS_H
#define STELE_CODEC_EVENTS_H

#include "codec/wire.h"

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

#endif
