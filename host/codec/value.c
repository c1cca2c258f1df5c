/*
 * value.c — the value functions of the plugin host API over avro-c generic
 * values, plus copying and the "every union has a branch" walk.
 *
 * These run for every field a plugin reads or writes, so they look fields
 * up by name (avro-c keeps a hash per record schema) and never allocate,
 * except where avro-c must grow a string or an array. A call of the wrong
 * type returns STELE_EINVAL; nothing here asserts on plugin input.
 *
 * Unions: getters read through a union to its current branch (get_long on
 * ["null","long"] holding 5 gives 5; holding null gives STELE_EINVAL), and
 * setters select the branch of the type they write (set_string on
 * ["null","string"] selects "string").
 */
#include "internal.h"
#include "value.h"

#include "common/err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Type names                                                           */

/* Full names of named types are built once and kept for the process, so
 * get_branch can return them without allocating per call and they stay
 * valid whatever happens to the schema. */
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static stele_map *names;

static const char *interned(const char *name)
{
    size_t len = strlen(name);
    pthread_mutex_lock(&names_lock);
    if (!names)
        names = stele_map_new();
    char *s = names ? stele_map_get(names, name, len) : NULL;
    if (!s && names && (s = strdup(name)) &&
        stele_map_put(names, name, len, s, NULL)) {
        free(s);
        s = NULL;
    }
    pthread_mutex_unlock(&names_lock);
    return s;
}

static const char *type_name(avro_schema_t s)
{
    s = codec_schema_deref(s);
    switch (avro_typeof(s)) {
    case AVRO_NULL: return "null";
    case AVRO_BOOLEAN: return "boolean";
    case AVRO_INT32: return "int";
    case AVRO_INT64: return "long";
    case AVRO_FLOAT: return "float";
    case AVRO_DOUBLE: return "double";
    case AVRO_BYTES: return "bytes";
    case AVRO_STRING: return "string";
    case AVRO_ARRAY: return "array";
    case AVRO_MAP: return "map";
    default: {
        const char *ns = avro_schema_namespace(s);
        if (!ns || !*ns)
            return avro_schema_name(s);
        char buf[512];
        return interned(codec_full_name(s, buf, sizeof buf));
    }
    }
}

/* ------------------------------------------------------------------ */
/* Field access                                                         */

static int field_of(const stele_value *rec, const char *field,
                    avro_value_t *out)
{
    if (!rec || !rec->iface || !field)
        return STELE_EINVAL;
    avro_value_t r = stele_value_unwrap(rec);
    if (avro_value_get_type(&r) != AVRO_RECORD)
        return STELE_EINVAL;
    if (avro_value_get_by_name(&r, field, out, NULL))
        return STELE_ENOTFOUND;
    return 0;
}

/* A field to read: a union reads as its current branch. */
static int read_field(const stele_value *rec, const char *field,
                      avro_value_t *f)
{
    int rc = field_of(rec, field, f);
    if (rc == 0 && avro_value_get_type(f) == AVRO_UNION &&
        avro_value_get_current_branch(f, f))
        rc = STELE_EINVAL;
    return rc;
}

/* A field to write with a value of one of types (in preference order): a
 * union selects its first branch of such a type. */
static int write_field(stele_value *rec, const char *field,
                       const avro_type_t *types, size_t n, avro_value_t *f)
{
    int rc = field_of(rec, field, f);
    if (rc)
        return rc;
    if (avro_value_get_type(f) != AVRO_UNION)
        return 0;
    avro_schema_t u = codec_schema_deref(avro_value_get_schema(f));
    size_t nb = avro_schema_union_size(u);
    for (size_t t = 0; t < n; t++)
        for (size_t i = 0; i < nb; i++)
            if (avro_typeof(codec_schema_deref(
                    avro_schema_union_branch(u, i))) == types[t])
                return avro_value_set_branch(f, (int)i, f) ? STELE_EINVAL : 0;
    return STELE_EINVAL;
}

static int get_long(const stele_value *rec, const char *field, int64_t *out)
{
    avro_value_t f;
    int rc = out ? read_field(rec, field, &f) : STELE_EINVAL;
    if (rc)
        return rc;
    int32_t i;
    switch (avro_value_get_type(&f)) {
    case AVRO_INT64: return avro_value_get_long(&f, out) ? STELE_EINVAL : 0;
    case AVRO_INT32:
        if (avro_value_get_int(&f, &i))
            return STELE_EINVAL;
        *out = i;
        return 0;
    default: return STELE_EINVAL;
    }
}

static int get_double(const stele_value *rec, const char *field, double *out)
{
    avro_value_t f;
    int rc = out ? read_field(rec, field, &f) : STELE_EINVAL;
    if (rc)
        return rc;
    float fl;
    int32_t i;
    int64_t l;
    switch (avro_value_get_type(&f)) {
    case AVRO_DOUBLE: return avro_value_get_double(&f, out) ? STELE_EINVAL : 0;
    case AVRO_FLOAT:
        rc = avro_value_get_float(&f, &fl);
        *out = fl;
        break;
    case AVRO_INT32:
        rc = avro_value_get_int(&f, &i);
        *out = i;
        break;
    case AVRO_INT64:
        rc = avro_value_get_long(&f, &l);
        *out = (double)l;
        break;
    default: return STELE_EINVAL;
    }
    return rc ? STELE_EINVAL : 0;
}

static int get_bool(const stele_value *rec, const char *field, bool *out)
{
    avro_value_t f;
    int rc = out ? read_field(rec, field, &f) : STELE_EINVAL, b;
    if (rc)
        return rc;
    if (avro_value_get_type(&f) != AVRO_BOOLEAN ||
        avro_value_get_boolean(&f, &b))
        return STELE_EINVAL;
    *out = b != 0;
    return 0;
}

static int get_string(const stele_value *rec, const char *field,
                      const char **out, size_t *len)
{
    avro_value_t f;
    int rc = out ? read_field(rec, field, &f) : STELE_EINVAL;
    if (rc)
        return rc;
    const void *p;
    size_t size;
    switch (avro_value_get_type(&f)) {
    case AVRO_STRING:
        if (avro_value_get_string(&f, (const char **)&p, &size))
            return STELE_EINVAL;
        size = size ? size - 1 : 0; /* avro-c counts the NUL */
        break;
    case AVRO_BYTES:
        if (avro_value_get_bytes(&f, &p, &size))
            return STELE_EINVAL;
        break;
    default: return STELE_EINVAL;
    }
    *out = p ? p : "";
    if (len)
        *len = size;
    return 0;
}

static int get_enum(const stele_value *rec, const char *field,
                    const char **symbol)
{
    avro_value_t f;
    int rc = symbol ? read_field(rec, field, &f) : STELE_EINVAL, i;
    if (rc)
        return rc;
    if (avro_value_get_type(&f) != AVRO_ENUM || avro_value_get_enum(&f, &i))
        return STELE_EINVAL;
    const char *s =
        avro_schema_enum_get(codec_schema_deref(avro_value_get_schema(&f)), i);
    if (!s)
        return STELE_EINVAL;
    *symbol = s;
    return 0;
}

static int get_record(const stele_value *rec, const char *field,
                      stele_value *out)
{
    avro_value_t f;
    int rc = out ? read_field(rec, field, &f) : STELE_EINVAL;
    if (rc)
        return rc;
    if (avro_value_get_type(&f) != AVRO_RECORD)
        return STELE_EINVAL;
    *out = stele_value_wrap(&f);
    return 0;
}

static int get_branch(const stele_value *rec, const char *field,
                      const char **branch, stele_value *out)
{
    avro_value_t f, b;
    int rc = field_of(rec, field, &f);
    if (rc)
        return rc;
    if (avro_value_get_type(&f) != AVRO_UNION ||
        avro_value_get_current_branch(&f, &b))
        return STELE_EINVAL;
    const char *name = type_name(avro_value_get_schema(&b));
    if (!name)
        return STELE_ENOMEM;
    if (branch)
        *branch = name;
    if (out)
        *out = stele_value_wrap(&b);
    return 0;
}

static int is_null(const stele_value *rec, const char *field, bool *out)
{
    avro_value_t f;
    int rc = out ? field_of(rec, field, &f) : STELE_EINVAL;
    if (rc)
        return rc;
    if (avro_value_get_type(&f) == AVRO_UNION &&
        avro_value_get_current_branch(&f, &f)) {
        *out = true; /* no branch selected holds nothing */
        return 0;
    }
    *out = avro_value_get_type(&f) == AVRO_NULL;
    return 0;
}

static int array_size(const stele_value *rec, const char *field, size_t *n)
{
    avro_value_t f;
    int rc = n ? read_field(rec, field, &f) : STELE_EINVAL;
    if (rc)
        return rc;
    if (avro_value_get_type(&f) != AVRO_ARRAY || avro_value_get_size(&f, n))
        return STELE_EINVAL;
    return 0;
}

static int array_get(const stele_value *rec, const char *field, size_t i,
                     stele_value *out)
{
    avro_value_t f, e;
    size_t n;
    int rc = out ? read_field(rec, field, &f) : STELE_EINVAL;
    if (rc)
        return rc;
    if (avro_value_get_type(&f) != AVRO_ARRAY || avro_value_get_size(&f, &n))
        return STELE_EINVAL;
    if (i >= n)
        return STELE_ENOTFOUND;
    if (avro_value_get_by_index(&f, i, &e, NULL))
        return STELE_EINVAL;
    *out = stele_value_wrap(&e);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */

static int set_long(stele_value *rec, const char *field, int64_t v)
{
    static const avro_type_t types[] = {AVRO_INT64, AVRO_INT32};
    avro_value_t f;
    int rc = write_field(rec, field, types, 2, &f);
    if (rc)
        return rc;
    switch (avro_value_get_type(&f)) {
    case AVRO_INT64: return avro_value_set_long(&f, v) ? STELE_EINVAL : 0;
    case AVRO_INT32:
        if (v < INT32_MIN || v > INT32_MAX)
            return STELE_EINVAL;
        return avro_value_set_int(&f, (int32_t)v) ? STELE_EINVAL : 0;
    default: return STELE_EINVAL;
    }
}

static int set_double(stele_value *rec, const char *field, double v)
{
    static const avro_type_t types[] = {AVRO_DOUBLE, AVRO_FLOAT};
    avro_value_t f;
    int rc = write_field(rec, field, types, 2, &f);
    if (rc)
        return rc;
    switch (avro_value_get_type(&f)) {
    case AVRO_DOUBLE: return avro_value_set_double(&f, v) ? STELE_EINVAL : 0;
    case AVRO_FLOAT:
        return avro_value_set_float(&f, (float)v) ? STELE_EINVAL : 0;
    default: return STELE_EINVAL;
    }
}

static int set_bool(stele_value *rec, const char *field, bool v)
{
    static const avro_type_t types[] = {AVRO_BOOLEAN};
    avro_value_t f;
    int rc = write_field(rec, field, types, 1, &f);
    if (rc)
        return rc;
    if (avro_value_get_type(&f) != AVRO_BOOLEAN ||
        avro_value_set_boolean(&f, v))
        return STELE_EINVAL;
    return 0;
}

/* avro-c stores strings with their NUL and copies len + 1 bytes from the
 * source, which a plugin's (s, len) need not have: copy through a
 * NUL-terminated buffer, on the stack when it is small. */
static int string_set(avro_value_t *f, const char *s, size_t len)
{
    char small[256];
    char *buf = len < sizeof small ? small : malloc(len + 1);
    if (!buf)
        return STELE_ENOMEM;
    if (len)
        memcpy(buf, s, len);
    buf[len] = '\0';
    int rc = avro_value_set_string_len(f, buf, len + 1) ? STELE_EINVAL : 0;
    if (buf != small)
        free(buf);
    return rc;
}

static int set_string(stele_value *rec, const char *field, const char *s,
                      size_t len)
{
    static const avro_type_t types[] = {AVRO_STRING, AVRO_BYTES};
    avro_value_t f;
    if (!s && len)
        return STELE_EINVAL;
    int rc = write_field(rec, field, types, 2, &f);
    if (rc)
        return rc;
    switch (avro_value_get_type(&f)) {
    case AVRO_STRING: return string_set(&f, s ? s : "", len);
    case AVRO_BYTES:
        return avro_value_set_bytes(&f, (void *)(s ? s : ""), len)
                   ? STELE_EINVAL
                   : 0;
    default: return STELE_EINVAL;
    }
}

static int set_enum(stele_value *rec, const char *field, const char *symbol)
{
    static const avro_type_t types[] = {AVRO_ENUM};
    avro_value_t f;
    if (!symbol)
        return STELE_EINVAL;
    int rc = write_field(rec, field, types, 1, &f);
    if (rc)
        return rc;
    if (avro_value_get_type(&f) != AVRO_ENUM)
        return STELE_EINVAL;
    int i = avro_schema_enum_get_by_name(
        codec_schema_deref(avro_value_get_schema(&f)), symbol);
    if (i < 0 || avro_value_set_enum(&f, i))
        return STELE_EINVAL;
    return 0;
}

static int select_branch(avro_value_t *u, int i, avro_value_t *b)
{
    int cur;
    avro_value_get_discriminant(u, &cur);
    if (avro_value_set_branch(u, i, b))
        return STELE_EINVAL;
    /* A branch just selected must be encodable as it stands. */
    if (cur != i && codec_value_fill_unset_unions(b, 0))
        return STELE_EINVAL;
    return 0;
}

static int set_branch(stele_value *rec, const char *field, const char *branch,
                      stele_value *out)
{
    avro_value_t f, b;
    int rc = field_of(rec, field, &f);
    if (rc)
        return rc;
    if (!branch || avro_value_get_type(&f) != AVRO_UNION)
        return STELE_EINVAL;
    avro_schema_t u = codec_schema_deref(avro_value_get_schema(&f));
    size_t nb = avro_schema_union_size(u);
    for (size_t i = 0; i < nb; i++) {
        avro_schema_t bs = codec_schema_deref(avro_schema_union_branch(u, i));
        const char *name = avro_schema_name(bs);
        char buf[512];
        if (strcmp(branch, type_name(bs) ? type_name(bs) : "") != 0 &&
            !(name && strcmp(branch, name) == 0) &&
            !(name &&
              strcmp(branch, codec_full_name(bs, buf, sizeof buf)) == 0))
            continue;
        if ((rc = select_branch(&f, (int)i, &b)))
            return rc;
        if (out)
            *out = stele_value_wrap(&b);
        return 0;
    }
    return STELE_EINVAL;
}

static int set_null(stele_value *rec, const char *field)
{
    static const avro_type_t types[] = {AVRO_NULL};
    avro_value_t f;
    int rc = write_field(rec, field, types, 1, &f);
    if (rc)
        return rc;
    return avro_value_get_type(&f) == AVRO_NULL ? 0 : STELE_EINVAL;
}

static int array_append(stele_value *rec, const char *field, stele_value *out)
{
    static const avro_type_t types[] = {AVRO_ARRAY};
    avro_value_t f, e;
    int rc = write_field(rec, field, types, 1, &f);
    if (rc)
        return rc;
    if (avro_value_get_type(&f) != AVRO_ARRAY ||
        avro_value_append(&f, &e, NULL) || codec_value_fill_unset_unions(&e, 0))
        return STELE_EINVAL;
    if (out)
        *out = stele_value_wrap(&e);
    return 0;
}

static int copy(stele_value *dst, const stele_value *src)
{
    if (!dst || !src || !dst->iface || !src->iface)
        return STELE_EINVAL;
    avro_value_t d = stele_value_unwrap(dst), s = stele_value_unwrap(src);
    if (d.self == s.self)
        return 0;
    avro_schema_t ds = avro_value_get_schema(&d),
                  ss = avro_value_get_schema(&s);
    if (ds != ss && !avro_schema_equal(ds, ss))
        return STELE_EINVAL;
    return codec_value_copy_into(&d, &s) ? STELE_EINVAL : 0;
}

/* ------------------------------------------------------------------ */
/* The first failed call                                                */

/* The first accessor call that failed in this thread since
 * stele_value_failure_clear: a plugin's status alone (ENOTFOUND) names
 * neither the record nor the field. */
static _Thread_local char first_failure[300];

void stele_value_failure_clear(void)
{
    first_failure[0] = '\0';
}

const char *stele_value_failure(void)
{
    return first_failure;
}

/* Why op on rec's field failed with rc, said once per clear. */
static int failed(int rc, const char *op, const stele_value *rec,
                  const char *field)
{
    if (rc == 0 || first_failure[0])
        return rc;
    if (!rec || !rec->iface) {
        snprintf(first_failure, sizeof first_failure,
                 "%s: called without a value", op);
        return rc;
    }
    avro_value_t r = stele_value_unwrap(rec);
    avro_schema_t rs = avro_value_get_schema(&r);
    const char *record = type_name(rs);
    avro_value_t f;
    if (!field)
        snprintf(first_failure, sizeof first_failure, "%s on %s", op, record);
    else if (rc == STELE_ENOTFOUND && avro_value_get_type(&r) == AVRO_RECORD &&
             avro_value_get_by_name(&r, field, &f, NULL) != 0)
        snprintf(first_failure, sizeof first_failure,
                 "%s(%s.%s): %s has no field '%s'", op, record, field, record,
                 field);
    else if (avro_value_get_type(&r) != AVRO_RECORD)
        snprintf(first_failure, sizeof first_failure,
                 "%s(%s): the value is a %s, not a record", op, field, record);
    else if (avro_value_get_by_name(&r, field, &f, NULL) == 0) {
        avro_value_t b = f;
        if (avro_value_get_type(&f) == AVRO_UNION)
            avro_value_get_current_branch(&f, &b);
        snprintf(first_failure, sizeof first_failure,
                 "%s(%s.%s): the field holds a %s (a NULL pointer, or the "
                 "wrong type for it)",
                 op, record, field, type_name(avro_value_get_schema(&b)));
    } else
        snprintf(first_failure, sizeof first_failure, "%s(%s.%s): %s", op,
                 record, field, stele_strstatus(rc));
    return rc;
}

static int checked_get_long(const stele_value *rec, const char *field,
                            int64_t *out)
{
    return failed(get_long(rec, field, out), "get_long", rec, field);
}

static int checked_get_double(const stele_value *rec, const char *field,
                              double *out)
{
    return failed(get_double(rec, field, out), "get_double", rec, field);
}

static int checked_get_bool(const stele_value *rec, const char *field,
                            bool *out)
{
    return failed(get_bool(rec, field, out), "get_bool", rec, field);
}

static int checked_get_string(const stele_value *rec, const char *field,
                              const char **out, size_t *len)
{
    return failed(get_string(rec, field, out, len), "get_string", rec, field);
}

static int checked_get_enum(const stele_value *rec, const char *field,
                            const char **symbol)
{
    return failed(get_enum(rec, field, symbol), "get_enum", rec, field);
}

static int checked_get_record(const stele_value *rec, const char *field,
                              stele_value *out)
{
    return failed(get_record(rec, field, out), "get_record", rec, field);
}

static int checked_get_branch(const stele_value *rec, const char *field,
                              const char **branch, stele_value *out)
{
    return failed(get_branch(rec, field, branch, out), "get_branch", rec,
                  field);
}

static int checked_is_null(const stele_value *rec, const char *field, bool *out)
{
    return failed(is_null(rec, field, out), "is_null", rec, field);
}

static int checked_array_size(const stele_value *rec, const char *field,
                              size_t *n)
{
    return failed(array_size(rec, field, n), "array_size", rec, field);
}

static int checked_array_get(const stele_value *rec, const char *field,
                             size_t i, stele_value *out)
{
    return failed(array_get(rec, field, i, out), "array_get", rec, field);
}

static int checked_set_long(stele_value *rec, const char *field, int64_t v)
{
    return failed(set_long(rec, field, v), "set_long", rec, field);
}

static int checked_set_double(stele_value *rec, const char *field, double v)
{
    return failed(set_double(rec, field, v), "set_double", rec, field);
}

static int checked_set_bool(stele_value *rec, const char *field, bool v)
{
    return failed(set_bool(rec, field, v), "set_bool", rec, field);
}

static int checked_set_string(stele_value *rec, const char *field,
                              const char *s, size_t len)
{
    return failed(set_string(rec, field, s, len), "set_string", rec, field);
}

static int checked_set_enum(stele_value *rec, const char *field,
                            const char *symbol)
{
    return failed(set_enum(rec, field, symbol), "set_enum", rec, field);
}

static int checked_set_branch(stele_value *rec, const char *field,
                              const char *branch, stele_value *out)
{
    return failed(set_branch(rec, field, branch, out), "set_branch", rec,
                  field);
}

static int checked_set_null(stele_value *rec, const char *field)
{
    return failed(set_null(rec, field), "set_null", rec, field);
}

static int checked_array_append(stele_value *rec, const char *field,
                                stele_value *out)
{
    return failed(array_append(rec, field, out), "array_append", rec, field);
}

static int checked_copy(stele_value *dst, const stele_value *src)
{
    return failed(copy(dst, src), "copy", dst, NULL);
}

void stele_value_fill_api(stele_host_api *api)
{
    api->get_long = checked_get_long;
    api->get_double = checked_get_double;
    api->get_bool = checked_get_bool;
    api->get_string = checked_get_string;
    api->get_enum = checked_get_enum;
    api->get_record = checked_get_record;
    api->get_branch = checked_get_branch;
    api->is_null = checked_is_null;
    api->array_size = checked_array_size;
    api->array_get = checked_array_get;
    api->set_long = checked_set_long;
    api->set_double = checked_set_double;
    api->set_bool = checked_set_bool;
    api->set_string = checked_set_string;
    api->set_enum = checked_set_enum;
    api->set_branch = checked_set_branch;
    api->set_null = checked_set_null;
    api->array_append = checked_array_append;
    api->copy = checked_copy;
}
