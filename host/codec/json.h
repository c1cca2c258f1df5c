/*
 * json.h — JSON <-> Avro for the CLI and the HTTP API.
 */
#ifndef STELE_CODEC_JSON_H
#define STELE_CODEC_JSON_H

#include <jansson.h>

#include "codec/schema.h"

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
