/*
 * json.c — JSON <-> Avro values, for the CLI, the HTTP API, and schema
 * defaults (which are JSON inside the .avsc text).
 *
 * Input follows Avro's JSON encoding, made friendlier: a union takes
 * {"branch": value} or a bare value that fits exactly one branch (an
 * integer prefers int/long branches over float/double); bytes and fixed
 * are strings whose code points U+0000..U+00FF are the bytes. Output gives
 * unions as bare values, so it reads like the record a person would write.
 */
#include "internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t codec_path_push_field(char *path, size_t cap, const char *name)
{
    size_t old = strnlen(path, cap - 1);
    snprintf(path + old, cap - old, old ? ".%s" : "%s", name);
    return old;
}

size_t codec_path_push_index(char *path, size_t cap, size_t i)
{
    size_t old = strnlen(path, cap - 1);
    snprintf(path + old, cap - old, "[%zu]", i);
    return old;
}

static const char *where(const char *path)
{
    return *path ? path : "(value)";
}

static const char *json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

static int mismatch(stele_err *err, const char *path, const char *expected,
                    const json_t *j)
{
    return stele_err_set(err, STELE_EINVAL, "%s: expected %s, got %s",
                         where(path), expected, json_kind(j));
}

long codec_json_latin1_decode(const char *s, size_t len, unsigned char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            out[n++] = c;
        } else if ((c == 0xc2 || c == 0xc3) && i + 1 < len &&
                   ((unsigned char)s[i + 1] & 0xc0) == 0x80) {
            out[n++] = (unsigned char)(((c & 0x03) << 6) |
                                       ((unsigned char)s[++i] & 0x3f));
        } else {
            return -1;
        }
    }
    return (long)n;
}

/* The name a union branch goes by in {"name": value}. */
static bool branch_named(avro_schema_t b, const char *key)
{
    char buf[512];
    b = codec_schema_deref(b);
    const char *name = avro_schema_name(b);
    switch (avro_typeof(b)) {
    case AVRO_RECORD:
    case AVRO_ENUM:
    case AVRO_FIXED:
        return strcmp(key, codec_full_name(b, buf, sizeof buf)) == 0 ||
               (name && strcmp(key, name) == 0);
    default: return strcmp(key, avro_schema_type_name(b)) == 0;
    }
}

/* Whether a JSON value of j's kind could be a value of branch b. exact:
 * an integer only counts for int/long, a string only for string. */
static bool kind_fits(avro_schema_t b, const json_t *j, bool exact)
{
    switch (avro_typeof(codec_schema_deref(b))) {
    case AVRO_NULL: return json_is_null(j);
    case AVRO_BOOLEAN: return json_is_boolean(j);
    case AVRO_INT32:
    case AVRO_INT64: return json_is_integer(j);
    case AVRO_FLOAT:
    case AVRO_DOUBLE: return exact ? json_is_real(j) : json_is_number(j);
    case AVRO_STRING: return json_is_string(j);
    case AVRO_BYTES:
    case AVRO_FIXED:
    case AVRO_ENUM: return !exact && json_is_string(j);
    case AVRO_ARRAY: return json_is_array(j);
    case AVRO_MAP:
    case AVRO_RECORD: return json_is_object(j);
    default: return false;
    }
}

static int union_from_json(const codec_schema *cs, const json_t *j,
                           avro_value_t *v, json_mode mode, int depth,
                           char *path, size_t cap, stele_err *err)
{
    avro_schema_t u = codec_schema_deref(avro_value_get_schema(v));
    size_t nb = avro_schema_union_size(u);
    avro_value_t b;
    if (mode == JSON_DEFAULT) { /* a union's default is its first branch's */
        if (avro_value_set_branch(v, 0, &b))
            return codec_avro_err(err, STELE_EINVAL, where(path));
        return codec_json_to_value(cs, j, &b, mode, depth + 1, path, cap, err);
    }
    const char *key;
    json_t *inner;
    if (json_is_object(j) && json_object_size(j) == 1) {
        json_object_foreach((json_t *)j, key, inner)
        {
            for (size_t i = 0; i < nb; i++) {
                if (!branch_named(avro_schema_union_branch(u, i), key))
                    continue;
                if (avro_value_set_branch(v, (int)i, &b))
                    return codec_avro_err(err, STELE_EINVAL, where(path));
                return codec_json_to_value(cs, inner, &b, mode, depth + 1, path,
                                           cap, err);
            }
        }
    }
    /* A bare value: the branches it fits, preferring exact kinds. */
    int fit = -1, n_fit = 0, n_tried = 0;
    stele_err trial = {0};
    char why[STELE_ERR_MSG_SIZE] = ""; /* each candidate's failure */
    size_t why_len = 0;
    for (int pass = 0; pass < 2 && n_fit == 0; pass++) {
        for (size_t i = 0; i < nb; i++) {
            avro_schema_t bs = avro_schema_union_branch(u, i);
            if (!kind_fits(bs, j, pass == 0) ||
                (pass == 1 && kind_fits(bs, j, true)))
                continue;
            n_tried++;
            if (avro_value_set_branch(v, (int)i, &b))
                return codec_avro_err(err, STELE_EINVAL, where(path));
            if (codec_json_to_value(cs, j, &b, mode, depth + 1, path, cap,
                                    &trial) != 0) {
                int k =
                    snprintf(why + why_len, sizeof why - why_len, "; as %s: %s",
                             avro_schema_type_name(bs), trial.msg);
                if (k > 0)
                    why_len += (size_t)k < sizeof why - why_len
                                   ? (size_t)k
                                   : sizeof why - why_len - 1;
            } else {
                if (n_fit++ == 0)
                    fit = (int)i;
                else
                    return stele_err_set(
                        err, STELE_EINVAL,
                        "%s: the %s fits union branches %s and %s; write "
                        "{\"<branch>\": value}",
                        where(path), json_kind(j),
                        avro_schema_type_name(avro_schema_union_branch(u, fit)),
                        avro_schema_type_name(bs));
            }
        }
    }
    if (n_fit == 0) {
        if (n_tried == 1) { /* one candidate: its own error says most */
            *err = trial;
            return trial.code;
        }
        return stele_err_set(err, STELE_EINVAL,
                             "%s: no branch of the union fits the %s%s",
                             where(path), json_kind(j), why);
    }
    if (avro_value_set_branch(v, fit, &b))
        return codec_avro_err(err, STELE_EINVAL, where(path));
    return codec_json_to_value(cs, j, &b, mode, depth + 1, path, cap, err);
}

static int record_from_json(const codec_schema *cs, const json_t *j,
                            avro_value_t *v, json_mode mode, int depth,
                            char *path, size_t cap, stele_err *err)
{
    avro_schema_t rs = codec_schema_deref(avro_value_get_schema(v));
    const record_info *ri = codec_record_info(cs, rs);
    if (!json_is_object(j))
        return mismatch(err, path, "object", j);
    size_t n = avro_schema_record_size(rs), matched = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        avro_value_t f;
        const char *fname;
        if (avro_value_get_by_index(v, i, &f, &fname))
            return codec_avro_err(err, STELE_EINVAL, where(path));
        size_t old = codec_path_push_field(path, cap, fname);
        json_t *jf = json_object_get(j, fname);
        if (jf) {
            matched++;
            rc = codec_json_to_value(cs, jf, &f, mode, depth + 1, path, cap,
                                     err);
        } else if (ri && i < ri->n_fields && ri->defaults[i]) {
            rc = codec_json_to_value(cs, ri->defaults[i], &f, JSON_DEFAULT,
                                     depth + 1, path, cap, err);
        } else if (mode == JSON_DEFAULT) {
            rc = codec_defaults_zero_fill(cs, &f, depth + 1, path, cap, err);
        } else {
            rc = stele_err_set(err, STELE_EINVAL,
                               "%s: missing, and the field has no default",
                               path);
        }
        path_pop(path, old);
    }
    if (rc == 0 && matched < json_object_size(j)) {
        const char *key;
        json_t *unused;
        json_object_foreach((json_t *)j, key, unused)
        {
            if (avro_schema_record_field_get_index(rs, key) < 0) {
                size_t old = codec_path_push_field(path, cap, key);
                rc = stele_err_set(err, STELE_EINVAL, "%s: unknown field of %s",
                                   path, avro_schema_name(rs));
                path_pop(path, old);
                break;
            }
        }
    }
    return rc;
}

static int bytes_from_json(const json_t *j, avro_value_t *v, bool fixed,
                           const char *path, stele_err *err)
{
    if (!json_is_string(j))
        return mismatch(err, path,
                        fixed ? "fixed (a string)" : "bytes (a string)", j);
    size_t len = json_string_length(j);
    unsigned char *b = malloc(len ? len : 1);
    if (!b)
        return stele_err_set(err, STELE_ENOMEM, "%s: no memory", where(path));
    long n = codec_json_latin1_decode(json_string_value(j), len, b);
    int rc = 0;
    if (n < 0) {
        rc = stele_err_set(err, STELE_EINVAL,
                           "%s: bytes are written as characters U+0000 to "
                           "U+00FF",
                           where(path));
    } else if (fixed) {
        int64_t want = avro_schema_fixed_size(
            codec_schema_deref(avro_value_get_schema(v)));
        if (n != want)
            rc = stele_err_set(err, STELE_EINVAL,
                               "%s: expected %lld bytes, got %ld", where(path),
                               (long long)want, n);
        else if (avro_value_set_fixed(v, b, (size_t)n))
            rc = codec_avro_err(err, STELE_EINVAL, where(path));
    } else if (avro_value_set_bytes(v, b, (size_t)n)) {
        rc = codec_avro_err(err, STELE_EINVAL, where(path));
    }
    free(b);
    return rc;
}

static int to_value(const codec_schema *cs, const json_t *j, avro_value_t *v,
                    json_mode mode, int depth, char *path, size_t cap,
                    stele_err *err)
{
    if (depth > CODEC_MAX_DEPTH)
        return stele_err_set(err, STELE_EINVAL, "%s: nested too deep",
                             where(path));
    int rc = 0;
    json_int_t i;
    switch (avro_value_get_type(v)) {
    case AVRO_NULL:
        return json_is_null(j) ? avro_value_set_null(v)
                               : mismatch(err, path, "null", j);
    case AVRO_BOOLEAN:
        if (!json_is_boolean(j))
            return mismatch(err, path, "boolean", j);
        return avro_value_set_boolean(v, json_is_true(j));
    case AVRO_INT32:
        if (!json_is_integer(j))
            return mismatch(err, path, "int", j);
        i = json_integer_value(j);
        if (i < INT32_MIN || i > INT32_MAX)
            return stele_err_set(err, STELE_EINVAL,
                                 "%s: %lld is out of range for int",
                                 where(path), (long long)i);
        return avro_value_set_int(v, (int32_t)i);
    case AVRO_INT64:
        if (!json_is_integer(j))
            return mismatch(err, path, "long", j);
        return avro_value_set_long(v, json_integer_value(j));
    case AVRO_FLOAT: {
        if (!json_is_number(j))
            return mismatch(err, path, "float", j);
        /* Beyond FLT_MAX the float would be infinite, which JSON cannot
         * say: the value would come back out as null. */
        double d = json_number_value(j);
        if (d > FLT_MAX || d < -FLT_MAX)
            return stele_err_set(err, STELE_EINVAL,
                                 "%s: %g is out of range for float",
                                 where(path), d);
        return avro_value_set_float(v, (float)d);
    }
    case AVRO_DOUBLE:
        if (!json_is_number(j))
            return mismatch(err, path, "double", j);
        return avro_value_set_double(v, json_number_value(j));
    case AVRO_STRING:
        if (!json_is_string(j))
            return mismatch(err, path, "string", j);
        return avro_value_set_string_len(v, json_string_value(j),
                                         json_string_length(j) + 1);
    case AVRO_BYTES: return bytes_from_json(j, v, false, path, err);
    case AVRO_FIXED: return bytes_from_json(j, v, true, path, err);
    case AVRO_ENUM: {
        avro_schema_t es = codec_schema_deref(avro_value_get_schema(v));
        if (!json_is_string(j))
            return mismatch(err, path, "enum symbol (a string)", j);
        int sym = avro_schema_enum_get_by_name(es, json_string_value(j));
        if (sym < 0)
            return stele_err_set(
                err, STELE_EINVAL, "%s: \"%s\" is not a symbol of enum %s",
                where(path), json_string_value(j), avro_schema_name(es));
        return avro_value_set_enum(v, sym);
    }
    case AVRO_ARRAY: {
        if (!json_is_array(j))
            return mismatch(err, path, "array", j);
        avro_value_reset(v);
        size_t k;
        json_t *item;
        json_array_foreach(j, k, item)
        {
            avro_value_t e;
            if (avro_value_append(v, &e, NULL))
                return codec_avro_err(err, STELE_ENOMEM, where(path));
            size_t old = codec_path_push_index(path, cap, k);
            rc = codec_json_to_value(cs, item, &e, mode, depth + 1, path, cap,
                                     err);
            path_pop(path, old);
            if (rc)
                return rc;
        }
        return 0;
    }
    case AVRO_MAP: {
        if (!json_is_object(j))
            return mismatch(err, path, "object (a map)", j);
        avro_value_reset(v);
        const char *key;
        json_t *item;
        json_object_foreach((json_t *)j, key, item)
        {
            avro_value_t e;
            if (avro_value_add(v, key, &e, NULL, NULL))
                return codec_avro_err(err, STELE_ENOMEM, where(path));
            size_t old = codec_path_push_field(path, cap, key);
            rc = codec_json_to_value(cs, item, &e, mode, depth + 1, path, cap,
                                     err);
            path_pop(path, old);
            if (rc)
                return rc;
        }
        return 0;
    }
    case AVRO_RECORD:
        return record_from_json(cs, j, v, mode, depth, path, cap, err);
    case AVRO_UNION:
        return union_from_json(cs, j, v, mode, depth, path, cap, err);
    default:
        return stele_err_set(err, STELE_EINVAL, "%s: unsupported type",
                             where(path));
    }
}

int stele_codec_from_json(const stele_schema *s, const json_t *json,
                          avro_value_t *out, stele_err *err)
{
    if (!s || !json || !out)
        return stele_err_set(err, STELE_EINVAL, "from_json: missing argument");
    int rc = stele_codec_value_reset(s, out, err);
    if (rc)
        return rc;
    char path[256] = "";
    rc = codec_json_to_value(codec_schema_of(s), json, out, JSON_INPUT, 0, path,
                             sizeof path, err);
    return rc;
}

int codec_json_to_value(const codec_schema *cs, const json_t *j,
                        avro_value_t *v, json_mode mode, int depth, char *path,
                        size_t cap, stele_err *err)
{
    int rc = to_value(cs, j, v, mode, depth, path, cap, err);
    if (rc > 0) /* an errno from an avro-c setter */
        rc = codec_avro_err(err, STELE_EINVAL, where(path));
    return rc;
}

/* ------------------------------------------------------------------ */
/* Avro -> JSON                                                         */

static json_t *latin1_json(const void *p, size_t len)
{
    const unsigned char *b = p;
    char *s = malloc(2 * len + 1);
    if (!s)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (b[i] < 0x80) {
            s[n++] = (char)b[i];
        } else {
            s[n++] = (char)(0xc0 | (b[i] >> 6));
            s[n++] = (char)(0x80 | (b[i] & 0x3f));
        }
    }
    json_t *j = json_stringn(s, n);
    free(s);
    return j;
}

static json_t *to_json(const avro_value_t *v, int depth)
{
    if (depth > CODEC_MAX_DEPTH)
        return NULL;
    const void *p;
    const char *str;
    size_t size, n;
    int i;
    int32_t i32;
    int64_t i64;
    float fl;
    double d;
    avro_value_t c;
    json_t *out, *item;
    switch (avro_value_get_type(v)) {
    case AVRO_NULL: return json_null();
    case AVRO_BOOLEAN:
        return avro_value_get_boolean(v, &i) ? NULL : json_boolean(i);
    case AVRO_INT32:
        return avro_value_get_int(v, &i32) ? NULL : json_integer(i32);
    case AVRO_INT64:
        return avro_value_get_long(v, &i64) ? NULL : json_integer(i64);
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
        if (avro_value_get_type(v) == AVRO_FLOAT) {
            if (avro_value_get_float(v, &fl))
                return NULL;
            d = fl;
        } else if (avro_value_get_double(v, &d)) {
            return NULL;
        }
        /* JSON has no NaN or infinity. */
        return isfinite(d) ? json_real(d) : json_null();
    case AVRO_STRING:
        if (avro_value_get_string(v, &str, &size))
            return NULL;
        n = size ? size - 1 : 0;
        out = json_stringn(str, n);
        return out ? out : latin1_json(str, n); /* not UTF-8 */
    case AVRO_BYTES:
        return avro_value_get_bytes(v, &p, &size) ? NULL : latin1_json(p, size);
    case AVRO_FIXED:
        return avro_value_get_fixed(v, &p, &size) ? NULL : latin1_json(p, size);
    case AVRO_ENUM:
        if (avro_value_get_enum(v, &i))
            return NULL;
        str = avro_schema_enum_get(codec_schema_deref(avro_value_get_schema(v)),
                                   i);
        return str ? json_string(str) : NULL;
    case AVRO_UNION:
        if (avro_value_get_current_branch(v, &c))
            return json_null();
        return to_json(&c, depth + 1);
    case AVRO_ARRAY:
    case AVRO_MAP:
    case AVRO_RECORD: {
        bool arr = avro_value_get_type(v) == AVRO_ARRAY;
        if (avro_value_get_size(v, &n))
            return NULL;
        out = arr ? json_array() : json_object();
        for (size_t k = 0; out && k < n; k++) {
            const char *key = NULL;
            if (avro_value_get_by_index(v, k, &c, &key) ||
                !(item = to_json(&c, depth + 1)) ||
                (arr ? json_array_append_new(out, item)
                     : json_object_set_new(out, key, item))) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    default: return NULL;
    }
}

json_t *stele_codec_to_json(const avro_value_t *v)
{
    return v && v->iface ? to_json(v, 0) : NULL;
}
