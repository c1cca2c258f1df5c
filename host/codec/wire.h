/*
 * wire.h — the Confluent wire format: byte 0, a 4-byte big-endian schema id,
 * Avro binary; decoding a writer's value into a reader's schema.
 */
#ifndef STELE_CODEC_WIRE_H
#define STELE_CODEC_WIRE_H

#include "codec/schema.h"

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

#endif
