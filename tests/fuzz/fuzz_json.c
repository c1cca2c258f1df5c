/*
 * fuzz_json.c — JSON to Avro (stele_codec_from_json) against the fixture
 * schemas, as the CLI and the HTTP API take events and commands. Byte 0
 * chooses the schema, the rest is JSON text. Invariants: a refusal says
 * why; what is accepted encodes, converts back to JSON, and that JSON is
 * accepted again and converts to the very same JSON (a fixpoint: output
 * is input the codec reads as the same value).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_codec.h"

static void dump(const char *what, const json_t *j)
{
    char *t = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
    fprintf(stderr, "%s: %s\n", what, t ? t : "(null)");
    free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fuzz_codec *f = fuzz_codec_get();
    const stele_schema *s = f->schemas[data[0] % f->n];
    json_t *in = json_loadb((const char *)data + 1, size - 1, 0, NULL);
    if (!in)
        return 0;
    avro_value_t v, w;
    stele_err err = {0};
    if (stele_codec_value_new(s, &v, &err) ||
        stele_codec_value_new(s, &w, &err))
        abort();
    if (stele_codec_from_json(s, in, &v, &err)) {
        if (err.code == 0 || !err.msg[0])
            abort();
        if (fuzz_verbose())
            fprintf(stderr, "refused as %s v%d: %s\n", s->name, s->version,
                    err.msg);
        goto out;
    }
    if (fuzz_verbose())
        fprintf(stderr, "accepted as %s v%d\n", s->name, s->version);
    fuzz_codec_round_trip(f, s, &v);
    json_t *back = stele_codec_to_json(&v);
    if (!back) {
        dump("accepted but gives no JSON", in);
        abort();
    }
    if (stele_codec_from_json(s, back, &w, &err)) {
        dump("input", in);
        dump("its JSON, refused", back);
        fprintf(stderr, "%s v%d: %s\n", s->name, s->version, err.msg);
        abort();
    }
    json_t *again = stele_codec_to_json(&w);
    if (!again || !json_equal(back, again)) {
        dump("input", in);
        dump("its JSON", back);
        dump("read again", again);
        abort();
    }
    json_decref(again);
    json_decref(back);
out:
    avro_value_decref(&w);
    avro_value_decref(&v);
    json_decref(in);
    return 0;
}
