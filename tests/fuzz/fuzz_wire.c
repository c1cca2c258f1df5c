/*
 * fuzz_wire.c — the wire format and Avro decoding with schema resolution
 * (host/codec/wire.c, wire_check.c, resolve*.c). The first bytes choose the
 * writer schema and the reader (a version of the same record, or any
 * schema), the rest is the Avro payload, framed with the writer's id; with
 * bit 0 of byte 2 set the rest is taken as the whole framed value instead.
 * Invariants: a failed decode leaves the value at its reset state and says
 * why; a decoded value re-encodes, and decode-encode of that is stable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    fuzz_codec *f = fuzz_codec_get();
    const stele_schema *writer = f->schemas[data[0] % f->n];
    const stele_schema *reader = data[1] & 0x80
                                     ? f->schemas[(data[1] & 0x7f) % f->n]
                                     : fuzz_codec_same_name(f, writer, data[1]);
    bool raw = data[2] & 1;
    data += 3;
    size -= 3;

    unsigned char *wire = malloc(size + 5);
    if (!wire)
        return 0;
    size_t len = size;
    if (raw) {
        memcpy(wire, data, size);
    } else {
        uint32_t id = (uint32_t)writer->id;
        wire[0] = 0;
        wire[1] = (unsigned char)(id >> 24);
        wire[2] = (unsigned char)(id >> 16);
        wire[3] = (unsigned char)(id >> 8);
        wire[4] = (unsigned char)id;
        memcpy(wire + 5, data, size);
        len += 5;
    }

    avro_value_t v;
    stele_err err = {0};
    if (stele_codec_value_new(reader, &v, &err))
        abort();
    if (stele_codec_decode(f->codec, wire, len, reader, &v, &err) == 0) {
        fuzz_codec_round_trip(f, reader, &v);
        if (fuzz_verbose())
            fprintf(stderr, "decoded as %s v%d\n", reader->name,
                    reader->version);
    } else {
        if (err.code == 0 || !err.msg[0]) {
            fprintf(stderr, "decode failed without saying why\n");
            abort();
        }
        if (fuzz_verbose())
            fprintf(stderr, "refused: %s\n", err.msg);
    }
    avro_value_decref(&v);
    free(wire);
    return 0;
}
