/*
 * fuzz_event.c — reading a stored event (stele_codec_read_event): the
 * writer's schema by id, the upcasters of tests/fixtures/evo_upcasters.h
 * (evo.Moved v1 -> v2 -> v3, evo.Pair v1 -> two evo.Half v2), then
 * resolution into the version the reader declares. Input framing as in
 * fuzz_wire: byte 0 the writer, byte 1 the reader's choice of version for
 * every type (bit 7: it reads no type), byte 2 bit 0 a raw framed value.
 * Invariants: a refused event appends nothing and says why; an accepted
 * one appends at least one event, each declared one in the very schema
 * the reader asked for, and each value survives its own round trip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/value.h"
#include "evo_upcasters.h"
#include "fuzz_codec.h"

static fuzz_codec *f;
static stele_codec_events *events;
static stele_host_api api;

/* Runs before the codec's cleanup (atexit is last in, first out): the
 * events' pooled values are the codec's. */
static void events_free(void)
{
    stele_codec_events_free(events);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    stele_err err = {0};
    f = fuzz_codec_get();
    stele_value_fill_api(&api);
    api.upcast_emit = stele_codec_upcast_emit;
    evo_host = &api;
    if (stele_codec_add_upcaster(f->codec, &evo_moved_v1, NULL, "fuzz", &err) ||
        stele_codec_add_upcaster(f->codec, &evo_moved_v2, NULL, "fuzz", &err) ||
        stele_codec_add_upcaster(f->codec, &evo_pair_v1, NULL, "fuzz", &err) ||
        stele_codec_check_upcasters(f->codec, &err) ||
        stele_codec_events_new(f->codec, &events, &err)) {
        fprintf(stderr, "fuzz_event: %s\n", err.msg);
        abort();
    }
    atexit(events_free);
    return 0;
}

/* The reader: for each type the pick-th version the catalogue has. */
static const stele_schema *want(void *opaque, const char *type)
{
    unsigned pick = *(const unsigned char *)opaque;
    if (pick & 0x80)
        return NULL;
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->schemas[i]->name, type))
            return fuzz_codec_same_name(f, f->schemas[i], pick);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    const stele_schema *writer = f->schemas[data[0] % f->n];
    unsigned char pick = data[1];
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
        unsigned char h[5] = {0, (unsigned char)(id >> 24),
                              (unsigned char)(id >> 16),
                              (unsigned char)(id >> 8), (unsigned char)id};
        memcpy(wire, h, 5);
        memcpy(wire + 5, data, size);
        len += 5;
    }

    stele_codec_events_clear(events);
    stele_err err = {0};
    const stele_codec_event *items;
    int rc =
        stele_codec_read_event(f->codec, wire, len, want, &pick, events, &err);
    size_t n = stele_codec_events_list(events, &items);
    if (rc) {
        if (n || err.code == 0 || !err.msg[0]) {
            fprintf(stderr, "refused event: %zu appended, '%s'\n", n, err.msg);
            abort();
        }
        if (fuzz_verbose())
            fprintf(stderr, "refused: %s\n", err.msg);
    } else {
        if (!n) {
            fprintf(stderr, "accepted event appended nothing\n");
            abort();
        }
        for (size_t i = 0; i < n; i++) {
            const stele_schema *s = items[i].schema;
            if (items[i].declared && s != want(&pick, s->name)) {
                fprintf(stderr, "event %zu: %s v%d, not the declared one\n", i,
                        s->name, s->version);
                abort();
            }
            if (fuzz_verbose())
                fprintf(stderr, "read %s v%d%s\n", s->name, s->version,
                        items[i].declared ? "" : " (undeclared)");
            if (s->id > 0)
                fuzz_codec_round_trip(f, s, &items[i].value);
        }
    }
    stele_codec_events_clear(events);
    free(wire);
    return 0;
}
