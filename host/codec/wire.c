/*
 * wire.c — the Confluent wire format: byte 0, the schema id as 4 bytes
 * big-endian, then the Avro binary.
 *
 * Decoding checks the binary against the writer's schema first
 * (wire_check.c), so avro-c only reads input it can read safely; an error
 * resets the output value, so a caller never sees a half-decoded one.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define WIRE_HEADER 5
#define WIRE_MAGIC 0

void stele_buf_free(stele_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int buf_reserve(stele_buf *b, size_t cap)
{
    if (b->cap >= cap)
        return 0;
    char *d = realloc(b->data, cap);
    if (!d)
        return STELE_ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

/* Whether v is a value of s (the same schema object, or an equal one). */
static bool value_of(const stele_schema *s, const avro_value_t *v)
{
    if (v->iface == s->iface)
        return true;
    avro_schema_t vs = avro_value_get_schema(v);
    return vs == s->schema || avro_schema_equal(vs, s->schema);
}

int stele_codec_encode(stele_codec *c, const stele_schema *s,
                       const avro_value_t *v, stele_buf *buf, stele_err *err)
{
    if (!c || !s || !v || !v->iface || !buf)
        return stele_err_set(err, STELE_EINVAL, "encode: missing argument");
    if (s->id <= 0)
        return stele_err_set(err, STELE_EINVAL,
                             "encode %s v%d: the schema is not registered "
                             "(only a process that writes, stele run or "
                             "send, or stele schema register, registers)",
                             s->name, s->version);
    if (!value_of(s, v))
        return stele_err_set(err, STELE_EINVAL,
                             "encode %s v%d: the value is of another schema",
                             s->name, s->version);
    if (buf_reserve(buf, 256))
        return stele_err_set(err, STELE_ENOMEM, "encode %s: no memory",
                             s->name);
    for (;;) {
        avro_writer_memory_set_dest(c->writer, buf->data + WIRE_HEADER,
                                    (int64_t)(buf->cap - WIRE_HEADER));
        int rc = avro_value_write(c->writer, (avro_value_t *)v);
        if (rc == 0)
            break;
        if (rc != ENOSPC) {
            char what[300];
            snprintf(what, sizeof what, "encode %s v%d", s->name, s->version);
            return codec_avro_err(err, STELE_EINVAL, what);
        }
        /* The memory writer stops when full: grow and write again. */
        size_t limit = STELE_CODEC_MAX_VALUE + WIRE_HEADER;
        if (buf->cap >= limit)
            return stele_err_set(err, STELE_ENOMEM,
                                 "encode %s v%d: value over the %u-byte limit",
                                 s->name, s->version, STELE_CODEC_MAX_VALUE);
        size_t cap = buf->cap * 2 < limit ? buf->cap * 2 : limit;
        if (buf_reserve(buf, cap))
            return stele_err_set(err, STELE_ENOMEM, "encode %s: no memory",
                                 s->name);
    }
    uint32_t id = (uint32_t)s->id;
    unsigned char *h = (unsigned char *)buf->data;
    h[0] = WIRE_MAGIC;
    h[1] = (unsigned char)(id >> 24);
    h[2] = (unsigned char)(id >> 16);
    h[3] = (unsigned char)(id >> 8);
    h[4] = (unsigned char)id;
    buf->len = WIRE_HEADER + (size_t)avro_writer_tell(c->writer);
    return 0;
}

int stele_codec_wire_id(const void *data, size_t len, int32_t *id,
                        stele_err *err)
{
    const unsigned char *p = data;
    if (!p || len < WIRE_HEADER)
        return stele_err_set(err, STELE_EINVAL,
                             "not a wire-format value: %zu bytes, the header "
                             "alone is %d",
                             len, WIRE_HEADER);
    if (p[0] != WIRE_MAGIC)
        return stele_err_set(err, STELE_EINVAL,
                             "not a wire-format value: magic byte 0x%02x, "
                             "expected 0x00",
                             p[0]);
    uint32_t v = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 8 | p[4];
    if (v == 0 || v > INT32_MAX)
        return stele_err_set(err, STELE_EINVAL,
                             "not a wire-format value: schema id %u", v);
    *id = (int32_t)v;
    return 0;
}

typedef struct resolver_key {
    int32_t writer_id;
    const stele_schema *reader;
} resolver_key;

static int get_resolver(stele_codec *c, const stele_schema *writer,
                        const stele_schema *reader, resolver **out,
                        stele_err *err)
{
    resolver_key k;
    memset(&k, 0, sizeof k); /* padding is part of the key */
    k.writer_id = writer->id;
    k.reader = reader;
    resolver *r = stele_map_get(c->resolvers, &k, sizeof k);
    if (!r) {
        int rc = codec_resolver_new(writer, reader, &r, err);
        if (rc)
            return rc;
        if (stele_map_put(c->resolvers, &k, sizeof k, r, NULL)) {
            codec_resolver_free(r);
            return stele_err_set(err, STELE_ENOMEM, "decode: no memory");
        }
    }
    *out = r;
    return 0;
}

int stele_codec_decode(stele_codec *c, const void *data, size_t len,
                       const stele_schema *reader, avro_value_t *out,
                       stele_err *err)
{
    if (!c || !reader || !out || !out->iface)
        return stele_err_set(err, STELE_EINVAL, "decode: missing argument");
    int32_t id;
    int rc = stele_codec_wire_id(data, len, &id, err);
    if (rc)
        return stele_err_prefix(err, "decode %s v%d", reader->name,
                                reader->version);
    if (len - WIRE_HEADER > STELE_CODEC_MAX_VALUE)
        return stele_err_set(err, STELE_EINVAL,
                             "decode %s v%d: %zu bytes, over the %u-byte limit",
                             reader->name, reader->version, len,
                             STELE_CODEC_MAX_VALUE);
    if (!value_of(reader, out))
        return stele_err_set(err, STELE_EINVAL,
                             "decode %s v%d: the output value is of another "
                             "schema",
                             reader->name, reader->version);
    /* From here on, any failure leaves out reset: never the previous
     * value, never a partly decoded one. */
    avro_value_reset(out);
    const stele_schema *writer = reader;
    if (id != reader->id &&
        (rc = stele_codec_schema_by_id(c, id, &writer, err)))
        return stele_err_prefix(err, "decode %s v%d", reader->name,
                                reader->version);
    const char *payload = (const char *)data + WIRE_HEADER;
    size_t plen = len - WIRE_HEADER;
    if ((rc = codec_wire_shape_check(codec_schema_of(writer)->shape, payload,
                                     plen, err)))
        return stele_err_prefix(err, "decode %s v%d (schema id %d)",
                                reader->name, reader->version, id);
    resolver *r = NULL;
    if (writer != reader && (rc = get_resolver(c, writer, reader, &r, err)))
        return rc;

    if (r) {
        rc = codec_resolver_read(r, payload, plen, out, err);
    } else {
        avro_reader_memory_set_source(c->reader, payload, (int64_t)plen);
        if (avro_value_read(c->reader, out)) {
            char what[300];
            snprintf(what, sizeof what, "decode %s v%d (schema id %d)",
                     reader->name, reader->version, id);
            rc = codec_avro_err(err, STELE_EINVAL, what);
        }
    }
    if (rc)
        avro_value_reset(out);
    return rc;
}
