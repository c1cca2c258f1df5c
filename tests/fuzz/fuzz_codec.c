/* fuzz_codec.c — the shared codec of the codec fuzz targets. */
#include "fuzz_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static stele_log *log_;
static stele_registry *reg;
static fuzz_codec shared;

static void cleanup(void)
{
    stele_codec_free(shared.codec);
    free(shared.schemas);
    stele_registry_close(reg);
    stele_log_close(log_);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

fuzz_codec *fuzz_codec_get(void)
{
    if (shared.codec)
        return &shared;
    stele_err err = {0};
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/stele-fuzz-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror(dir);
        abort();
    }
    char path[128];
    snprintf(path, sizeof path, "%s/log.db", dir);
    if (stele_log_open_sqlite(path, &log_, &err) ||
        stele_registry_open_embedded(log_, &reg, &err) ||
        stele_codec_new(STELE_SOURCE_DIR "/tests/fixtures/schemas", reg,
                        &shared.codec, &err)) {
        fprintf(stderr, "fuzz codec: %s\n", err.msg);
        abort();
    }
    atexit(cleanup);
    const stele_schema *const *all;
    size_t n = stele_codec_catalogue(shared.codec, &all);
    shared.schemas = calloc(n ? n : 1, sizeof *shared.schemas);
    if (!shared.schemas)
        abort();
    for (size_t i = 0; i < n; i++) {
        const stele_schema *s;
        if (stele_codec_schema(shared.codec, all[i]->name, all[i]->version, &s,
                               &err) ||
            s->id <= 0) {
            fprintf(stderr, "fuzz codec: %s v%d: %s\n", all[i]->name,
                    all[i]->version, err.msg);
            abort();
        }
        shared.schemas[shared.n++] = s;
    }
    if (!shared.n)
        abort();
    /* The index a selector byte picks, for writing seeds by hand. */
    if (getenv("STELE_FUZZ_SCHEMAS"))
        for (size_t i = 0; i < shared.n; i++)
            fprintf(stderr, "%zu %s v%d id %d\n", i, shared.schemas[i]->name,
                    shared.schemas[i]->version, (int)shared.schemas[i]->id);
    return &shared;
}

bool fuzz_verbose(void)
{
    static int on = -1;
    if (on < 0)
        on = getenv("STELE_FUZZ_VERBOSE") != NULL;
    return on;
}

const stele_schema *fuzz_codec_same_name(const fuzz_codec *f,
                                         const stele_schema *s, unsigned pick)
{
    size_t k = 0;
    for (size_t i = 0; i < f->n; i++)
        k += !strcmp(f->schemas[i]->name, s->name);
    pick %= (unsigned)k;
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->schemas[i]->name, s->name) && pick-- == 0)
            return f->schemas[i];
    abort();
}

void fuzz_codec_round_trip(const fuzz_codec *f, const stele_schema *s,
                           const avro_value_t *v)
{
    stele_buf a = {0}, b = {0};
    stele_err err = {0};
    avro_value_t w;
    if (stele_codec_encode(f->codec, s, v, &a, &err)) {
        /* Only a value over the size limit may fail to encode. */
        if (err.code == STELE_ENOMEM)
            goto out_a;
        fprintf(stderr, "%s v%d: a decoded value does not encode: %s\n",
                s->name, s->version, err.msg);
        abort();
    }
    if (stele_codec_value_new(s, &w, &err))
        abort();
    if (stele_codec_decode(f->codec, a.data, a.len, s, &w, &err)) {
        fprintf(stderr, "%s v%d: its own encoding does not decode: %s\n",
                s->name, s->version, err.msg);
        abort();
    }
    if (stele_codec_encode(f->codec, s, &w, &b, &err) || a.len != b.len ||
        memcmp(a.data, b.data, a.len)) {
        fprintf(stderr, "%s v%d: encode-decode-encode differs\n", s->name,
                s->version);
        abort();
    }
    avro_value_decref(&w);
    stele_buf_free(&b);
out_a:
    stele_buf_free(&a);
}
