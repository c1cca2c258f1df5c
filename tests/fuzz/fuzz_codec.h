/*
 * fuzz_codec.h — what the codec fuzz targets share: one codec over every
 * schema of tests/fixtures/schemas (codec/ and evolution/), on the embedded
 * registry of a SQLite log in a temporary folder, every schema registered,
 * made once per process (the folder is removed at exit).
 */
#ifndef STELE_FUZZ_CODEC_H
#define STELE_FUZZ_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"

typedef struct fuzz_codec {
    stele_codec *codec;
    const stele_schema **schemas; /* every one, registered (id > 0) */
    size_t n;
} fuzz_codec;

/* The shared codec; aborts when it cannot be made. */
fuzz_codec *fuzz_codec_get(void);

/* The schemas with s's name, in catalogue order: their count, and the
 * pick-th of them (pick taken modulo the count). */
const stele_schema *fuzz_codec_same_name(const fuzz_codec *f,
                                         const stele_schema *s, unsigned pick);

/* Encodes v (of s) and decodes the bytes back into a fresh value of s,
 * then encodes that: aborts unless both encodings are the same bytes. A
 * value the codec handed out must survive its own round trip. */
void fuzz_codec_round_trip(const fuzz_codec *f, const stele_schema *s,
                           const avro_value_t *v);

/* Whether STELE_FUZZ_VERBOSE is set: targets then say why an input was
 * refused, for checking that seeds reach past the first check. */
bool fuzz_verbose(void);

#endif
