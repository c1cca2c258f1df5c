/*
 * resolve_read.c — reading a writer's Avro binary into a reader's value
 * with a plan from resolve.c.
 *
 * The bytes were checked against the writer's schema first
 * (codec_wire_shape_check: lengths, counts, indexes, depth, item limits), so
 * this reader keeps only cheap bounds checks as a second line of defence.
 */
#include "resolve.h"

#include <stdlib.h>
#include <string.h>

typedef struct rcur {
    const unsigned char *p, *start, *end;
    resolver *r;
    stele_err *err;
} rcur;

static int bad(rcur *c, const char *what)
{
    return stele_err_set(c->err, STELE_EINVAL,
                         "resolving %s: corrupt data at byte %zu: %s",
                         c->r->what, (size_t)(c->p - c->start), what);
}

static int read_long(rcur *c, int64_t *out)
{
    uint64_t v = 0;
    *out = 0;
    for (int shift = 0; shift < 70 && c->p < c->end; shift += 7) {
        unsigned char b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return bad(c, "varint");
}

static int read_raw(rcur *c, size_t n, const unsigned char **out)
{
    *out = c->p;
    if (n > (size_t)(c->end - c->p))
        return bad(c, "truncated");
    *out = c->p;
    c->p += n;
    return 0;
}

static int read_len(rcur *c, const unsigned char **data, size_t *len)
{
    int64_t n;
    *len = 0;
    int rc = read_long(c, &n);
    if (rc)
        return rc;
    if (n < 0)
        return bad(c, "negative length");
    *len = (size_t)n;
    return read_raw(c, *len, data);
}

/* A NUL-terminated copy of the len bytes at data. */
static const char *terminated(rcur *c, const unsigned char *data, size_t len)
{
    resolver *r = c->r;
    if (len + 1 > r->scratch_cap) {
        size_t cap = len + 1 < 256 ? 256 : len + 1;
        char *s = realloc(r->scratch, cap);
        if (!s)
            return NULL;
        r->scratch = s;
        r->scratch_cap = cap;
    }
    memcpy(r->scratch, data, len);
    r->scratch[len] = '\0';
    return r->scratch;
}

static int skip_value(rcur *c, avro_schema_t s, int depth)
{
    s = codec_schema_deref(s);
    const unsigned char *d;
    size_t len;
    int64_t v;
    int rc = 0;
    if (depth > CODEC_MAX_DEPTH)
        return bad(c, "nested too deep");
    switch (avro_typeof(s)) {
    case AVRO_NULL: return 0;
    case AVRO_BOOLEAN: return read_raw(c, 1, &d);
    case AVRO_INT32:
    case AVRO_INT64:
    case AVRO_ENUM: return read_long(c, &v);
    case AVRO_FLOAT: return read_raw(c, 4, &d);
    case AVRO_DOUBLE: return read_raw(c, 8, &d);
    case AVRO_STRING:
    case AVRO_BYTES: return read_len(c, &d, &len);
    case AVRO_FIXED: return read_raw(c, (size_t)avro_schema_fixed_size(s), &d);
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(s) && rc == 0; i++)
            rc = skip_value(c, avro_schema_record_field_get_by_index(s, i),
                            depth + 1);
        return rc;
    case AVRO_UNION:
        if ((rc = read_long(c, &v)))
            return rc;
        if (v < 0 || (size_t)v >= avro_schema_union_size(s))
            return bad(c, "union branch out of range");
        return skip_value(c, avro_schema_union_branch(s, (size_t)v), depth + 1);
    case AVRO_ARRAY:
    case AVRO_MAP: {
        bool arr = avro_typeof(s) == AVRO_ARRAY;
        avro_schema_t item =
            arr ? avro_schema_array_items(s) : avro_schema_map_values(s);
        for (;;) {
            int64_t count, size;
            if ((rc = read_long(c, &count)))
                return rc;
            if (count == 0)
                return 0;
            if (count < 0) {
                /* a block with its byte size: jump over it */
                if ((rc = read_long(c, &size)))
                    return rc;
                if (size < 0)
                    return bad(c, "negative block size");
                if ((rc = read_raw(c, (size_t)size, &d)))
                    return rc;
                continue;
            }
            for (int64_t i = 0; i < count && rc == 0; i++) {
                if (!arr)
                    rc = read_len(c, &d, &len);
                if (rc == 0)
                    rc = skip_value(c, item, depth + 1);
            }
            if (rc)
                return rc;
        }
    }
    default: return bad(c, "unknown type");
    }
}

static int exec(rcur *c, const rnode *n, avro_value_t *v, int depth);

static int number(rcur *c, const rnode *n, avro_value_t *v)
{
    int64_t i = 0;
    double d = 0;
    const unsigned char *raw;
    int rc = 0;
    switch (n->wt) {
    case AVRO_INT32:
    case AVRO_INT64: rc = read_long(c, &i); break;
    case AVRO_FLOAT: {
        float f;
        if ((rc = read_raw(c, 4, &raw)) == 0) {
            memcpy(&f, raw, 4); /* little-endian hosts only, as avro-c */
            d = f;
        }
        break;
    }
    default:
        if ((rc = read_raw(c, 8, &raw)) == 0)
            memcpy(&d, raw, 8);
        break;
    }
    if (rc)
        return rc;
    bool integral = n->wt == AVRO_INT32 || n->wt == AVRO_INT64;
    switch (n->rt) {
    case AVRO_INT32:
        if (i < INT32_MIN || i > INT32_MAX)
            return bad(c, "int out of range");
        return avro_value_set_int(v, (int32_t)i);
    case AVRO_INT64: return avro_value_set_long(v, i);
    case AVRO_FLOAT:
        return avro_value_set_float(v, integral ? (float)i : (float)d);
    default: return avro_value_set_double(v, integral ? (double)i : d);
    }
}

static int blocks(rcur *c, const rnode *n, avro_value_t *v, int depth)
{
    int rc = avro_value_reset(v);
    bool arr = n->op == R_ARRAY;
    while (rc == 0) {
        int64_t count, size;
        if ((rc = read_long(c, &count)) || count == 0)
            return rc;
        if (count < 0) {
            if (count == INT64_MIN || (rc = read_long(c, &size)))
                return rc ? rc : bad(c, "block count");
            count = -count;
        }
        for (int64_t i = 0; i < count && rc == 0; i++) {
            avro_value_t item;
            if (arr) {
                rc = avro_value_append(v, &item, NULL);
            } else {
                const unsigned char *k = NULL;
                size_t klen;
                const char *key;
                if ((rc = read_len(c, &k, &klen)))
                    return rc;
                if (!(key = terminated(c, k, klen)))
                    return stele_err_set(c->err, STELE_ENOMEM,
                                         "resolving: no memory");
                rc = avro_value_add(v, key, &item, NULL, NULL);
            }
            if (rc)
                return bad(c, arr ? "array append" : "map add");
            rc = exec(c, n->kids[0], &item, depth + 1);
        }
    }
    return rc;
}

static int record(rcur *c, const rnode *n, avro_value_t *v, int depth)
{
    int rc = 0;
    avro_value_t f;
    for (size_t i = 0; i < n->n && rc == 0; i++) {
        if (n->map[i] < 0) {
            rc = skip_value(c, n->skip[i], depth + 1);
        } else if (avro_value_get_by_index(v, (size_t)n->map[i], &f, NULL)) {
            rc = bad(c, "reader field");
        } else {
            rc = exec(c, n->kids[i], &f, depth + 1);
        }
    }
    for (size_t j = 0; j < n->n_defs && rc == 0; j++)
        if (avro_value_get_by_index(v, n->def_idx[j], &f, NULL) ||
            codec_value_copy_into(&f, &n->def_val[j]))
            rc = bad(c, "default");
    return rc;
}

static int exec(rcur *c, const rnode *n, avro_value_t *v, int depth)
{
    const unsigned char *d;
    size_t len;
    int64_t x;
    int rc;
    if (depth > CODEC_MAX_DEPTH)
        return bad(c, "nested too deep");
    switch (n->op) {
    case R_NULL: return avro_value_set_null(v) ? bad(c, "null") : 0;
    case R_BOOL:
        return read_raw(c, 1, &d) ?: avro_value_set_boolean(v, *d != 0);
    case R_NUMBER:
        if ((rc = number(c, n, v)))
            return c->err->code ? c->err->code : bad(c, "number");
        return 0;
    case R_TEXT:
        if ((rc = read_len(c, &d, &len)))
            return rc;
        if (n->rt == AVRO_BYTES)
            return avro_value_set_bytes(v, (void *)d, len) ? bad(c, "bytes")
                                                           : 0;
        {
            const char *s = terminated(c, d, len);
            if (!s)
                return stele_err_set(c->err, STELE_ENOMEM,
                                     "resolving: no memory");
            return avro_value_set_string_len(v, s, len + 1) ? bad(c, "string")
                                                            : 0;
        }
    case R_FIXED:
        return read_raw(c, n->n, &d)
                   ?: avro_value_set_fixed(v, (void *)d, n->n);
    case R_ENUM:
        if ((rc = read_long(c, &x)))
            return rc;
        if (x < 0 || (uint64_t)x >= n->n)
            return bad(c, "enum index out of range");
        if (n->map[x] < 0)
            return stele_err_set(c->err, STELE_EINVAL,
                                 "cannot resolve %s: %s: the writer's symbol "
                                 "%s is not in the reader's enum, which "
                                 "declares no default",
                                 c->r->what, n->reason,
                                 avro_schema_enum_get(n->wschema, (int)x));
        return avro_value_set_enum(v, n->map[x]);
    case R_ARRAY:
    case R_MAP: return blocks(c, n, v, depth);
    case R_RECORD: return record(c, n, v, depth);
    case R_WUNION:
        if ((rc = read_long(c, &x)))
            return rc;
        if (x < 0 || (uint64_t)x >= n->n)
            return bad(c, "union branch out of range");
        return exec(c, n->kids[x], v, depth + 1);
    case R_RBRANCH: {
        avro_value_t b;
        if (avro_value_set_branch(v, n->branch, &b))
            return bad(c, "union branch");
        return exec(c, n->kids[0], &b, depth + 1);
    }
    case R_FAIL:
    default:
        return stele_err_set(c->err, STELE_EINVAL, "cannot resolve %s: %s",
                             c->r->what, n->reason ? n->reason : "?");
    }
}

int codec_resolver_read(resolver *r, const void *data, size_t len,
                        avro_value_t *out, stele_err *err)
{
    stele_err local = {0};
    stele_err *e = err ? err : &local;
    e->code = 0;
    e->msg[0] = '\0';
    rcur c = {data, data, (const unsigned char *)data + len, r, e};
    int rc = exec(&c, r->root, out, 0);
    if (rc == 0 && c.p != c.end)
        rc = bad(&c, "trailing bytes");
    if (rc && e->code == 0)
        bad(&c, "the reader's value refused it");
    return rc ? e->code : 0;
}
