/*
 * wire_check.c — checks Avro binary against a writer schema before avro-c
 * reads it.
 *
 * avro-c 1.11.1 trusts the input: a negative string length asks malloc for
 * SIZE_MAX bytes, a huge one allocates it before finding the data short, an
 * out-of-range enum index is stored as is, and an array of nulls can claim
 * 2^62 items. This walk reads every varint, length, count and index against
 * the bytes left, without allocating, so avro-c only ever sees input it
 * reads safely, and trailing bytes are caught too.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum shape_kind {
    SH_NULL,
    SH_BOOL,
    SH_INT,
    SH_LONG,
    SH_FLOAT,
    SH_DOUBLE,
    SH_BYTES,
    SH_STRING,
    SH_FIXED,
    SH_ENUM,
    SH_ARRAY,
    SH_MAP,
    SH_RECORD,
    SH_UNION
} shape_kind;

typedef struct shape {
    shape_kind kind;
    bool empty; /* encodes to zero bytes (null, fixed 0, such records) */
    size_t n;   /* fixed size, enum symbols, record fields, branches */
    struct shape **kids;
} shape;

struct wire_shape {
    shape *root;
    shape **all; /* every node, for freeing */
    size_t n_all, cap_all;
};

static shape *node_new(wire_shape *ws, shape_kind kind)
{
    if (ws->n_all == ws->cap_all) {
        size_t cap = ws->cap_all ? ws->cap_all * 2 : 16;
        shape **all = realloc(ws->all, cap * sizeof *all);
        if (!all)
            return NULL;
        ws->all = all;
        ws->cap_all = cap;
    }
    shape *n = calloc(1, sizeof *n);
    if (n) {
        n->kind = kind;
        ws->all[ws->n_all++] = n;
    }
    return n;
}

static shape *build(wire_shape *ws, stele_map *named, avro_schema_t s);

static shape *build_kids(wire_shape *ws, stele_map *named, shape *n,
                         avro_schema_t s, size_t count)
{
    n->n = count;
    n->kids = calloc(count ? count : 1, sizeof *n->kids);
    if (!n->kids)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        avro_schema_t k = n->kind == SH_RECORD
                              ? avro_schema_record_field_get_by_index(s, i)
                              : avro_schema_union_branch(s, i);
        if (!k || !(n->kids[i] = build(ws, named, k)))
            return NULL;
    }
    return n;
}

static shape *build(wire_shape *ws, stele_map *named, avro_schema_t s)
{
    s = codec_schema_deref(s);
    shape *n = stele_map_get(named, &s, sizeof s);
    if (n)
        return n; /* a named type seen before, maybe an enclosing one */
    switch (avro_typeof(s)) {
    case AVRO_NULL: return node_new(ws, SH_NULL);
    case AVRO_BOOLEAN: return node_new(ws, SH_BOOL);
    case AVRO_INT32: return node_new(ws, SH_INT);
    case AVRO_INT64: return node_new(ws, SH_LONG);
    case AVRO_FLOAT: return node_new(ws, SH_FLOAT);
    case AVRO_DOUBLE: return node_new(ws, SH_DOUBLE);
    case AVRO_BYTES: return node_new(ws, SH_BYTES);
    case AVRO_STRING: return node_new(ws, SH_STRING);
    case AVRO_FIXED:
        if ((n = node_new(ws, SH_FIXED)))
            n->n = (size_t)avro_schema_fixed_size(s);
        return n;
    case AVRO_ENUM:
        if ((n = node_new(ws, SH_ENUM)))
            n->n = (size_t)avro_schema_enum_number_of_symbols(s);
        return n;
    case AVRO_ARRAY:
    case AVRO_MAP: {
        bool arr = avro_typeof(s) == AVRO_ARRAY;
        if (!(n = node_new(ws, arr ? SH_ARRAY : SH_MAP)))
            return NULL;
        n->n = 1;
        if (!(n->kids = calloc(1, sizeof *n->kids)))
            return NULL;
        n->kids[0] =
            build(ws, named,
                  arr ? avro_schema_array_items(s) : avro_schema_map_values(s));
        return n->kids[0] ? n : NULL;
    }
    case AVRO_RECORD:
        if (!(n = node_new(ws, SH_RECORD)) ||
            stele_map_put(named, &s, sizeof s, n, NULL))
            return NULL;
        return build_kids(ws, named, n, s, avro_schema_record_size(s));
    case AVRO_UNION:
        if (!(n = node_new(ws, SH_UNION)))
            return NULL;
        return build_kids(ws, named, n, s, avro_schema_union_size(s));
    default: return NULL;
    }
}

/* Whether n encodes to no bytes. The depth bound stops a record that
 * (through links) contains itself; such a record is never empty. */
static bool is_empty(const shape *n, int depth)
{
    if (depth > CODEC_MAX_DEPTH)
        return false;
    switch (n->kind) {
    case SH_NULL: return true;
    case SH_FIXED: return n->n == 0;
    case SH_RECORD:
        for (size_t i = 0; i < n->n; i++)
            if (!is_empty(n->kids[i], depth + 1))
                return false;
        return true;
    default: return false;
    }
}

int codec_wire_shape_new(avro_schema_t schema, wire_shape **out, stele_err *err)
{
    wire_shape *ws = calloc(1, sizeof *ws);
    stele_map *named = stele_map_new();
    if (ws && named)
        ws->root = build(ws, named, schema);
    stele_map_free(named, NULL);
    if (!ws || !ws->root) {
        codec_wire_shape_free(ws);
        return stele_err_set(err, STELE_ENOMEM,
                             "cannot compile the schema's binary checker");
    }
    for (size_t i = 0; i < ws->n_all; i++)
        ws->all[i]->empty = is_empty(ws->all[i], 0);
    *out = ws;
    return 0;
}

void codec_wire_shape_free(wire_shape *ws)
{
    if (!ws)
        return;
    for (size_t i = 0; i < ws->n_all; i++) {
        free(ws->all[i]->kids);
        free(ws->all[i]);
    }
    free(ws->all);
    free(ws);
}

/* ------------------------------------------------------------------ */
/* The walk                                                             */

typedef struct cursor {
    const unsigned char *start, *p, *end;
    size_t items; /* array and map items so far */
    stele_err *err;
} cursor;

static int corrupt(cursor *c, const char *fmt, const char *what, int64_t v)
{
    char msg[200];
    snprintf(msg, sizeof msg, fmt, what, (long long)v);
    return stele_err_set(c->err, STELE_EINVAL,
                         "corrupt Avro data at byte %zu: %s",
                         (size_t)(c->p - c->start), msg);
}

static int truncated(cursor *c, const char *what)
{
    return stele_err_set(c->err, STELE_EINVAL,
                         "truncated Avro data: %s at byte %zu needs more "
                         "than the %zu bytes left",
                         what, (size_t)(c->p - c->start),
                         (size_t)(c->end - c->p));
}

static int read_long(cursor *c, const char *what, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (c->p == c->end)
            return truncated(c, what);
        unsigned char b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return corrupt(c, "%s: varint longer than 10 bytes%.0lld", what, 0);
}

static int skip(cursor *c, const char *what, int64_t n)
{
    if (n < 0)
        return corrupt(c, "%s: negative length %lld", what, n);
    if ((uint64_t)n > (uint64_t)(c->end - c->p))
        return truncated(c, what);
    c->p += n;
    return 0;
}

static int check(cursor *c, const shape *n, int depth);

/* Array and map blocks: a count, negative when a byte size follows. */
static int check_blocks(cursor *c, const shape *n, int depth)
{
    const char *what = n->kind == SH_ARRAY ? "array" : "map";
    for (;;) {
        int64_t count, size;
        int rc = read_long(c, what, &count);
        if (rc)
            return rc;
        if (count == 0)
            return 0;
        if (count < 0) {
            if (count == INT64_MIN)
                return corrupt(c, "%s: block count %lld", what, count);
            count = -count;
            if ((rc = read_long(c, what, &size)))
                return rc;
            if (size < 0 || (uint64_t)size > (uint64_t)(c->end - c->p))
                return corrupt(c, "%s: block size %lld out of range", what,
                               size);
        }
        /* Each item of a non-empty type takes at least one byte. */
        bool empty = n->kind == SH_ARRAY && n->kids[0]->empty;
        if (!empty && (uint64_t)count > (uint64_t)(c->end - c->p))
            return corrupt(c, "%s: %lld items cannot fit in the bytes left",
                           what, count);
        if ((uint64_t)count > CODEC_MAX_ITEMS - c->items)
            return corrupt(c, "%s: more than %lld items in one value", what,
                           (int64_t)CODEC_MAX_ITEMS);
        c->items += (size_t)count;
        for (int64_t i = 0; i < count; i++) {
            if (n->kind == SH_MAP) {
                int64_t klen;
                if ((rc = read_long(c, "map key", &klen)) ||
                    (rc = skip(c, "map key", klen)))
                    return rc;
            }
            if ((rc = check(c, n->kids[0], depth + 1)))
                return rc;
        }
    }
}

static int check(cursor *c, const shape *n, int depth)
{
    int64_t v;
    int rc;
    if (depth > CODEC_MAX_DEPTH)
        return corrupt(c, "%s deeper than %lld levels", "value",
                       CODEC_MAX_DEPTH);
    switch (n->kind) {
    case SH_NULL: return 0;
    case SH_BOOL:
        if (c->p == c->end)
            return truncated(c, "boolean");
        if (*c->p > 1)
            return corrupt(c, "%s: byte %lld is neither 0 nor 1", "boolean",
                           *c->p);
        c->p++;
        return 0;
    case SH_INT:
        if ((rc = read_long(c, "int", &v)))
            return rc;
        if (v < INT32_MIN || v > INT32_MAX)
            return corrupt(c, "%s: %lld out of range", "int", v);
        return 0;
    case SH_LONG: return read_long(c, "long", &v);
    case SH_FLOAT: return skip(c, "float", 4);
    case SH_DOUBLE: return skip(c, "double", 8);
    case SH_BYTES:
    case SH_STRING: {
        const char *what = n->kind == SH_BYTES ? "bytes" : "string";
        if ((rc = read_long(c, what, &v)))
            return rc;
        if (v > (int64_t)STELE_CODEC_MAX_VALUE)
            return corrupt(c, "%s: length %lld over the limit", what, v);
        return skip(c, what, v);
    }
    case SH_FIXED: return skip(c, "fixed", (int64_t)n->n);
    case SH_ENUM:
        if ((rc = read_long(c, "enum", &v)))
            return rc;
        if (v < 0 || (uint64_t)v >= n->n)
            return corrupt(c, "%s: symbol index %lld out of range", "enum", v);
        return 0;
    case SH_ARRAY:
    case SH_MAP: return check_blocks(c, n, depth);
    case SH_RECORD:
        for (size_t i = 0; i < n->n; i++)
            if ((rc = check(c, n->kids[i], depth + 1)))
                return rc;
        return 0;
    case SH_UNION:
        if ((rc = read_long(c, "union", &v)))
            return rc;
        if (v < 0 || (uint64_t)v >= n->n)
            return corrupt(c, "%s: branch %lld out of range", "union", v);
        return check(c, n->kids[v], depth + 1);
    }
    return corrupt(c, "%s: unknown schema node %lld", "schema", n->kind);
}

int codec_wire_shape_check(const wire_shape *ws, const void *data, size_t len,
                           stele_err *err)
{
    cursor c = {data, data, (const unsigned char *)data + len, 0, err};
    int rc = check(&c, ws->root, 0);
    if (rc)
        return rc;
    if (c.p != c.end)
        return stele_err_set(err, STELE_EINVAL,
                             "corrupt Avro data: %zu trailing bytes after the "
                             "value (%zu bytes)",
                             (size_t)(c.end - c.p), (size_t)(c.p - c.start));
    return 0;
}
