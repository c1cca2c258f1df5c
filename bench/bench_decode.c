/*
 * bench_decode — reading old events: plain decoding against decoding with
 * a two-step upcaster chain and Avro resolution, side by side in one run,
 * on one core, over the same stored events.
 *
 *   bench_decode [EVENTS] [ROUNDS] [READER_VERSION]
 *   defaults:     100000   5        4
 *
 * The events are evo.Moved v1 (tests/fixtures/schemas/evolution):
 *   plain     each decoded with its own schema, v1 (the same-id fast path)
 *   evolved   each read as v4: upcast v1 -> v2 (cents -> Money{minor,
 *             currency}), v2 -> v3 (adds units: a unit change), then
 *             resolved v3 -> v4 (a field with a default)
 * The rows are the best of ROUNDS; the target is evolved >= 50% of plain.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/codec.h"
#include "codec/value.h"
#include "common/util.h"

#include "../tests/fixtures/evo_upcasters.h"

#define EVO_SCHEMAS STELE_SOURCE_DIR "/tests/fixtures/schemas/evolution"

static void die(const char *what, const stele_err *err)
{
    fprintf(stderr, "bench_decode: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

static const stele_schema *v4;

static const stele_schema *want_v4(void *opaque, const char *type)
{
    (void)opaque;
    return strcmp(type, "evo.Moved") == 0 ? v4 : NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    int reader = argc > 3 ? atoi(argv[3]) : 4; /* 2..4: where reading ends */
    char dir[] = "/tmp/stele-bench-decode-XXXXXX", path[128];
    if (!mkdtemp(dir))
        die("mkdtemp", NULL);
    snprintf(path, sizeof path, "%s/log.db", dir);
    stele_err err = {0};
    stele_log *log;
    stele_registry *reg;
    stele_codec *c;
    stele_codec_events *ev;
    if (stele_log_open_sqlite(path, &log, &err) ||
        stele_registry_open_embedded(log, &reg, &err) ||
        stele_codec_new(EVO_SCHEMAS, reg, &c, &err) ||
        stele_codec_events_new(c, &ev, &err))
        die("open", &err);
    stele_host_api api;
    memset(&api, 0, sizeof api);
    stele_value_fill_api(&api);
    api.upcast_emit = stele_codec_upcast_emit;
    evo_host = &api;
    if (stele_codec_add_upcaster(c, &evo_moved_v1, NULL, "moved_1_2", &err) ||
        stele_codec_add_upcaster(c, &evo_moved_v2, NULL, "moved_2_3", &err) ||
        stele_codec_check_upcasters(c, &err))
        die("upcasters", &err);

    const stele_schema *v1;
    if (stele_codec_schema(c, "evo.Moved", 1, &v1, &err) ||
        stele_codec_schema(c, "evo.Moved", reader, &v4, &err))
        die("schemas", &err);
    /* the stored events: wire-format v1, different amounts */
    size_t *off = malloc((size_t)n * sizeof *off), total = 0;
    char *store = malloc((size_t)n * 16);
    avro_value_t v, out;
    stele_buf buf = {0};
    if (!off || !store || stele_codec_value_new(v1, &v, &err) ||
        stele_codec_value_new(v1, &out, &err))
        die("alloc", &err);
    for (long i = 0; i < n; i++) {
        avro_value_t f;
        avro_value_get_by_name(&v, "cents", &f, NULL);
        avro_value_set_long(&f, i * 37 + 1);
        if (stele_codec_encode(c, v1, &v, &buf, &err))
            die("encode", &err);
        off[i] = total;
        memcpy(store + total, buf.data, buf.len);
        total += buf.len;
    }

    double best_plain = 0, best_evo = 0;
    int64_t check = 0;
    for (int r = 0; r < rounds; r++) {
        int64_t t0 = stele_mono_ns();
        for (long i = 0; i < n; i++) {
            size_t l = (i + 1 < n ? off[i + 1] : total) - off[i];
            if (stele_codec_decode(c, store + off[i], l, v1, &out, &err))
                die("plain decode", &err);
        }
        int64_t t1 = stele_mono_ns();
        for (long i = 0; i < n; i++) {
            size_t l = (i + 1 < n ? off[i + 1] : total) - off[i];
            stele_codec_events_clear(ev);
            if (stele_codec_read_event(c, store + off[i], l, want_v4, NULL, ev,
                                       &err))
                die("evolved read", &err);
        }
        int64_t t2 = stele_mono_ns();
        double plain = (double)n / ((double)(t1 - t0) / 1e9);
        double evo = (double)n / ((double)(t2 - t1) / 1e9);
        if (plain > best_plain)
            best_plain = plain;
        if (evo > best_evo)
            best_evo = evo;
    }
    /* the last event really is v4, with units from the unit change */
    const stele_codec_event *it;
    stele_codec_events_list(ev, &it);
    stele_value sv = stele_value_wrap(&it[0].value);
    api.get_long(&sv, "units", &check);

    printf("bench_decode: %ld evo.Moved v1 events, best of %d rounds, one "
           "core\n\n",
           n, rounds);
    printf("%-44s %14s %8s\n", "path", "events/s/core", "vs plain");
    printf("%-44s %14.0f %7.0f%%\n", "plain decode (v1 as v1, same schema)",
           best_plain, 100.0);
    char label[64];
    snprintf(label, sizeof label, "evolved (v1 read as v%d)", reader);
    printf("%-44s %14.0f %7.0f%%\n", label, best_evo,
           100.0 * best_evo / best_plain);
    printf("\ntarget: evolved >= 50%% of plain: %s (last event units=%" PRId64
           ")\n",
           best_evo >= 0.5 * best_plain ? "met" : "NOT met", check);

    avro_value_decref(&v);
    avro_value_decref(&out);
    stele_buf_free(&buf);
    free(off);
    free(store);
    stele_codec_events_free(ev);
    stele_codec_free(c);
    stele_registry_close(reg);
    stele_log_close(log);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
