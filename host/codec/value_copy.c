/*
 * value_copy.c — copying values and completing them, for defaults and the
 * plugin API's copy. avro_value_copy_fast hands strings over through
 * wrapped buffers (an allocation per string per copy); this copy writes
 * into the destination's existing buffers instead.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int codec_value_copy_into(avro_value_t *dst, const avro_value_t *src)
{
    int rc = 0, i32, disc;
    int64_t i64;
    float fl;
    double d;
    const void *p;
    size_t size, n;
    avro_value_t s, t;
    const char *key;

    switch (avro_value_get_type(src)) {
    case AVRO_NULL: return avro_value_set_null(dst);
    case AVRO_BOOLEAN:
        return avro_value_get_boolean(src, &i32)
                   ?: avro_value_set_boolean(dst, i32);
    case AVRO_INT32: {
        int32_t v;
        return avro_value_get_int(src, &v) ?: avro_value_set_int(dst, v);
    }
    case AVRO_INT64:
        return avro_value_get_long(src, &i64) ?: avro_value_set_long(dst, i64);
    case AVRO_FLOAT:
        return avro_value_get_float(src, &fl) ?: avro_value_set_float(dst, fl);
    case AVRO_DOUBLE:
        return avro_value_get_double(src, &d) ?: avro_value_set_double(dst, d);
    case AVRO_ENUM:
        return avro_value_get_enum(src, &i32) ?: avro_value_set_enum(dst, i32);
    case AVRO_STRING:
        /* size counts the NUL, which avro-c's buffer holds */
        if ((rc = avro_value_get_string(src, (const char **)&p, &size)))
            return rc;
        return size ? avro_value_set_string_len(dst, p, size)
                    : avro_value_set_string(dst, "");
    case AVRO_BYTES:
        return avro_value_get_bytes(src, &p, &size)
                   ?: avro_value_set_bytes(dst, (void *)(p ? p : ""), size);
    case AVRO_FIXED:
        return avro_value_get_fixed(src, &p, &size)
                   ?: avro_value_set_fixed(dst, (void *)p, size);
    case AVRO_RECORD:
        if ((rc = avro_value_get_size(src, &n)))
            return rc;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = avro_value_get_by_index(src, i, &s, NULL)
                     ?: avro_value_get_by_index(dst, i, &t, NULL)
                            ?: codec_value_copy_into(&t, &s);
        return rc;
    case AVRO_UNION:
        if ((rc = avro_value_get_discriminant(src, &disc)))
            return rc;
        if (disc < 0)
            return avro_value_set_branch(dst, -1, NULL);
        return avro_value_get_current_branch(src, &s)
                   ?: avro_value_set_branch(dst, disc, &t)
                          ?: codec_value_copy_into(&t, &s);
    case AVRO_ARRAY:
    case AVRO_MAP: {
        bool arr = avro_value_get_type(src) == AVRO_ARRAY;
        if ((rc = avro_value_get_size(src, &n)) || (rc = avro_value_reset(dst)))
            return rc;
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = avro_value_get_by_index(src, i, &s, &key);
            if (rc == 0)
                rc = arr ? avro_value_append(dst, &t, NULL)
                         : avro_value_add(dst, key, &t, NULL, NULL);
            if (rc == 0)
                rc = codec_value_copy_into(&t, &s);
        }
        return rc;
    }
    default: return EINVAL;
    }
}

int codec_value_fill_unset_unions(avro_value_t *v, int depth)
{
    avro_value_t c;
    size_t n;
    int rc = 0, disc;
    if (depth > CODEC_MAX_DEPTH)
        return EINVAL;
    switch (avro_value_get_type(v)) {
    case AVRO_UNION:
        if ((rc = avro_value_get_discriminant(v, &disc)))
            return rc;
        if (disc < 0)
            rc = avro_value_set_branch(v, 0, &c);
        else
            rc = avro_value_get_current_branch(v, &c);
        return rc ? rc : codec_value_fill_unset_unions(&c, depth + 1);
    case AVRO_RECORD:
    case AVRO_ARRAY:
    case AVRO_MAP:
        if ((rc = avro_value_get_size(v, &n)))
            return rc;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = avro_value_get_by_index(v, i, &c, NULL)
                     ?: codec_value_fill_unset_unions(&c, depth + 1);
        return rc;
    case AVRO_FIXED: {
        /* A new fixed holds no bytes; it must hold its size in zeros. */
        const void *p;
        size_t size, want = (size_t)avro_schema_fixed_size(
                         codec_schema_deref(avro_value_get_schema(v)));
        if ((rc = avro_value_get_fixed(v, &p, &size)) || size == want)
            return rc;
        void *zeros = calloc(1, want ? want : 1);
        if (!zeros)
            return ENOMEM;
        rc = avro_value_set_fixed(v, zeros, want);
        free(zeros);
        return rc;
    }
    default: return 0;
    }
}
