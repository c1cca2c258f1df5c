/*
 * util.c — what every file of the codec uses, at the bottom of the
 * folder: avro-c's bounded allocator, avro-c errors as stele_err, names of
 * schemas, a record's field defaults, and a writer's label in messages.
 */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest single allocation avro-c may make. Above the value limit:
 * generic values take more memory than their encoding. */
#define CODEC_MAX_ALLOC (4u * STELE_CODEC_MAX_VALUE)

static void *bounded_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (nsize > CODEC_MAX_ALLOC)
        return NULL;
    return realloc(ptr, nsize);
}

static void install_allocator(void)
{
    avro_set_allocator(bounded_alloc, NULL);
}

void codec_install_allocator(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_allocator);
}

int codec_avro_err(stele_err *err, int code, const char *what)
{
    /* avro_strerror is one global buffer: copy it now. */
    return stele_err_set(err, code, "%s: %s", what, avro_strerror());
}

avro_schema_t codec_schema_deref(avro_schema_t s)
{
    while (s && is_avro_link(s))
        s = avro_schema_link_target(s);
    return s;
}

const char *codec_full_name(avro_schema_t s, char *buf, size_t size)
{
    const char *ns = avro_schema_namespace(s);
    const char *name = avro_schema_name(s);
    if (!name)
        name = avro_schema_type_name(s);
    if (ns && *ns)
        snprintf(buf, size, "%s.%s", ns, name);
    else
        snprintf(buf, size, "%s", name);
    return buf;
}

const record_info *codec_record_info(const codec_schema *cs,
                                     avro_schema_t record)
{
    record = codec_schema_deref(record);
    return stele_map_get(cs->records, &record, sizeof record);
}

/* ------------------------------------------------------------------ */
/* Parsing one schema                                                   */

const char *codec_writer_label(const stele_schema *s, char *buf, size_t size)
{
    if (s->version > 0)
        snprintf(buf, size, "%s v%d (schema id %d)", s->name, s->version,
                 s->id);
    else
        snprintf(buf, size, "%s (schema id %d, in no file of schemas/)",
                 s->name, s->id);
    return buf;
}

int codec_name_key(const char *name, int version, char *key, size_t size,
                   size_t *len)
{
    size_t n = strlen(name);
    if (n + 1 + sizeof version > size)
        return STELE_EINVAL;
    memcpy(key, name, n + 1);
    memcpy(key + n + 1, &version, sizeof version);
    *len = n + 1 + sizeof version;
    return 0;
}
