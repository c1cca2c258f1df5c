/*
 * catalogue.c — the schemas/ directory, parsed schemas, and the codec's
 * lookups by name/version and by registry id.
 *
 * Each .avsc file must be self-contained (avro-c cannot resolve a named
 * type defined in another file). Schemas are registered the first time
 * stele_codec_schema hands them out, so a catalogue with many versions
 * registers only those a process uses.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

int codec_schema_parse(const char *text, size_t len, const char *where,
                       codec_schema **out, stele_err *err)
{
    codec_install_allocator();
    codec_schema *cs = calloc(1, sizeof *cs);
    char *copy = malloc(len + 1);
    if (!cs || !copy) {
        free(cs);
        free(copy);
        return stele_err_set(err, STELE_ENOMEM, "%s: no memory", where);
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    cs->pub.text = copy;

    int rc;
    json_error_t jerr;
    if (avro_schema_from_json_length(copy, len, &cs->pub.schema)) {
        cs->pub.schema = NULL;
        rc = stele_err_set(err, STELE_EINVAL, "%s: invalid Avro schema: %s",
                           where, avro_strerror());
    } else if (avro_typeof(cs->pub.schema) != AVRO_RECORD) {
        rc = stele_err_set(err, STELE_EINVAL,
                           "%s: the schema is a %s, not a record", where,
                           avro_schema_type_name(cs->pub.schema));
    } else if (!(cs->json = json_loadb(copy, len, 0, &jerr))) {
        rc = stele_err_set(err, STELE_EINVAL, "%s:%d: %s", where, jerr.line,
                           jerr.text);
    } else if (!(cs->pub.iface =
                     avro_generic_class_from_schema(cs->pub.schema))) {
        rc = codec_avro_err(err, STELE_EINVAL, where);
    } else if ((rc = codec_wire_shape_new(cs->pub.schema, &cs->shape, err))) {
        stele_err_prefix(err, "%s", where);
    } else {
        char buf[512];
        codec_full_name(cs->pub.schema, buf, sizeof buf);
        if (!(cs->pub.name = strdup(buf)))
            rc = stele_err_set(err, STELE_ENOMEM, "%s: no memory", where);
        else
            rc = codec_defaults_build(cs, where, err);
    }
    if (rc) {
        codec_schema_free(cs);
        return rc;
    }
    *out = cs;
    return 0;
}

void codec_schema_free(codec_schema *cs)
{
    if (!cs)
        return;
    codec_defaults_free(cs);
    codec_wire_shape_free(cs->shape);
    if (cs->pub.iface)
        avro_value_iface_decref(cs->pub.iface);
    if (cs->pub.schema)
        avro_schema_decref(cs->pub.schema);
    json_decref(cs->json);
    free((char *)cs->pub.name);
    free((char *)cs->pub.text);
    free(cs->path);
    free(cs);
}

/* ------------------------------------------------------------------ */
/* The catalogue                                                        */

/* "bank.Deposited.v12.avsc" -> name "bank.Deposited", version 12. */
static bool parse_file_name(const char *base, char *name, size_t size,
                            int *version)
{
    size_t len = strlen(base);
    if (len < 5 || strcmp(base + len - 5, ".avsc") != 0)
        return false;
    len -= 5;
    size_t digits = 0;
    while (digits < len && base[len - 1 - digits] >= '0' &&
           base[len - 1 - digits] <= '9')
        digits++;
    if (digits == 0 || digits > 6 || len < digits + 3 ||
        base[len - digits - 1] != 'v' || base[len - digits - 2] != '.')
        return false;
    size_t name_len = len - digits - 2;
    if (name_len >= size || base[len - digits] == '0')
        return false;
    memcpy(name, base, name_len);
    name[name_len] = '\0';
    *version = atoi(base + len - digits);
    return *version > 0;
}

static int name_key(const char *name, int version, char *key, size_t size,
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

static int add_file(stele_codec *c, const char *path, const char *base,
                    stele_err *err)
{
    char name[512];
    int version;
    if (!parse_file_name(base, name, sizeof name, &version))
        return stele_err_set(err, STELE_EINVAL,
                             "%s: a schema file is named "
                             "<full.record.name>.v<N>.avsc",
                             path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return stele_err_set(err, STELE_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    bool bad = fstat(fileno(f), &st) != 0 || st.st_size < 0 ||
               (size_t)st.st_size > STELE_CODEC_MAX_VALUE;
    char *text = bad ? NULL : malloc((size_t)st.st_size + 1);
    size_t len = text ? fread(text, 1, (size_t)st.st_size + 1, f) : 0;
    bad = !text || ferror(f) || len > (size_t)st.st_size;
    fclose(f);
    if (bad) {
        free(text);
        return stele_err_set(err, STELE_EIO, "%s: unreadable or too large",
                             path);
    }
    codec_schema *cs;
    int rc = codec_schema_parse(text, len, path, &cs, err);
    free(text);
    if (rc)
        return rc;
    cs->pub.version = version;
    if (strcmp(cs->pub.name, name) != 0) {
        rc = stele_err_set(err, STELE_EINVAL,
                           "%s: the record is named %s but the file name "
                           "says %s",
                           path, cs->pub.name, name);
        codec_schema_free(cs);
        return rc;
    }
    char key[600];
    size_t klen;
    name_key(name, version, key, sizeof key, &klen);
    codec_schema *dup = stele_map_get(c->by_name, key, klen);
    if (dup) {
        rc = stele_err_set(err, STELE_EINVAL, "%s: %s v%d is also in %s", path,
                           name, version, dup->path);
        codec_schema_free(cs);
        return rc;
    }
    if (c->n_cat % 16 == 0) {
        codec_schema **cat = realloc(c->cat, (c->n_cat + 16) * sizeof *cat);
        if (!cat) {
            codec_schema_free(cs);
            return stele_err_set(err, STELE_ENOMEM, "%s: no memory", path);
        }
        c->cat = cat;
    }
    c->cat[c->n_cat++] = cs;
    if (!(cs->path = strdup(path)) ||
        stele_map_put(c->by_name, key, klen, cs, NULL))
        return stele_err_set(err, STELE_ENOMEM, "%s: no memory", path);
    return 0;
}

static int walk(stele_codec *c, const char *dir, int depth, stele_err *err)
{
    if (depth > 32)
        return stele_err_set(err, STELE_EINVAL, "%s: folders nested too deep",
                             dir);
    DIR *d = opendir(dir);
    if (!d)
        return stele_err_set(err, errno == ENOENT ? STELE_ENOTFOUND : STELE_EIO,
                             "%s: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue; /* ".", "..", hidden files and editor droppings */
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >=
            sizeof path) {
            rc = stele_err_set(err, STELE_EINVAL, "%s/%s: path too long", dir,
                               e->d_name);
            break;
        }
        struct stat st;
        if (stat(path, &st) != 0)
            rc = stele_err_set(err, STELE_EIO, "%s: %s", path, strerror(errno));
        else if (S_ISDIR(st.st_mode))
            rc = walk(c, path, depth + 1, err);
        else if (S_ISREG(st.st_mode) && strlen(e->d_name) > 5 &&
                 strcmp(e->d_name + strlen(e->d_name) - 5, ".avsc") == 0)
            rc = add_file(c, path, e->d_name, err);
    }
    closedir(d);
    return rc;
}

static int by_name_version(const void *a, const void *b)
{
    const codec_schema *x = *(codec_schema *const *)a;
    const codec_schema *y = *(codec_schema *const *)b;
    int r = strcmp(x->pub.name, y->pub.name);
    return r ? r
             : (x->pub.version > y->pub.version) -
                   (x->pub.version < y->pub.version);
}

int stele_codec_new(const char *schemas_dir, stele_registry *reg,
                    stele_codec **out, stele_err *err)
{
    if (!schemas_dir || !out)
        return stele_err_set(err, STELE_EINVAL,
                             "codec: needs a schemas folder");
    codec_install_allocator();
    stele_codec *c = calloc(1, sizeof *c);
    if (!c)
        return stele_err_set(err, STELE_ENOMEM, "codec: no memory");
    c->reg = reg;
    c->by_name = stele_map_new();
    c->by_id = stele_map_new();
    c->resolvers = stele_map_new();
    c->chains = stele_map_new();
    c->writer = avro_writer_memory(NULL, 0);
    c->reader = avro_reader_memory(NULL, 0);
    int rc = 0;
    if (!c->by_name || !c->by_id || !c->resolvers || !c->chains || !c->writer ||
        !c->reader)
        rc = stele_err_set(err, STELE_ENOMEM, "codec: no memory");
    else
        rc = walk(c, schemas_dir, 0, err);
    if (rc == 0 && !(c->schemas_dir = strdup(schemas_dir)))
        rc = stele_err_set(err, STELE_ENOMEM, "codec: no memory");
    if (rc == 0 && c->n_cat) {
        qsort(c->cat, c->n_cat, sizeof *c->cat, by_name_version);
        if (!(c->list = malloc(c->n_cat * sizeof *c->list)))
            rc = stele_err_set(err, STELE_ENOMEM, "codec: no memory");
        for (size_t i = 0; rc == 0 && i < c->n_cat; i++)
            c->list[i] = &c->cat[i]->pub;
    }
    if (rc) {
        stele_codec_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static void free_resolver(void *r)
{
    codec_resolver_free(r);
}

void stele_codec_free(stele_codec *c)
{
    if (!c)
        return;
    /* Resolvers hold references into the schemas: free them first. */
    stele_map_free(c->resolvers, free_resolver);
    stele_map_free(c->chains, codec_upcast_chain_free);
    stele_buf_free(&c->upcast_buf);
    for (size_t i = 0; i < c->n_cat; i++)
        codec_schema_free(c->cat[i]);
    for (size_t i = 0; i < c->n_fetched; i++)
        codec_schema_free(c->fetched[i]);
    free(c->cat);
    free(c->list);
    free(c->schemas_dir);
    free(c->fetched);
    stele_map_free(c->by_name, NULL);
    stele_map_free(c->by_id, NULL);
    if (c->writer)
        avro_writer_free(c->writer);
    if (c->reader)
        avro_reader_free(c->reader);
    free(c);
}

int codec_no_schema(const stele_codec *c, const char *name, int version,
                    stele_err *err)
{
    int have = 0;
    for (size_t i = 0; name && i < c->n_cat; i++)
        if (strcmp(c->cat[i]->pub.name, name) == 0)
            have++;
    return stele_err_set(err, STELE_ENOTFOUND,
                         "no schema for %s v%d: expected a file %s.v%d.avsc "
                         "in %s or a folder under it (%d other version%s of "
                         "%s there)",
                         name ? name : "(null)", version,
                         name ? name : "(null)", version,
                         c->schemas_dir ? c->schemas_dir : "schemas/", have,
                         have == 1 ? "" : "s", name ? name : "(null)");
}

int stele_codec_schema(stele_codec *c, const char *name, int version,
                       const stele_schema **out, stele_err *err)
{
    char key[600];
    size_t klen;
    codec_schema *cs = NULL;
    if (name && name_key(name, version, key, sizeof key, &klen) == 0)
        cs = stele_map_get(c->by_name, key, klen);
    if (!cs)
        return codec_no_schema(c, name, version, err);
    if (cs->pub.id == 0 && !cs->looked_up) {
        /* Look up before registering (as Confluent's serializers do): a
         * registry that is read-only to this client still answers it. */
        stele_registry_schema found;
        int32_t id = 0;
        int rc = stele_registry_find(c->reg, cs->pub.name, cs->pub.text,
                                     &found, err);
        if (rc == 0)
            id = found.id;
        stele_registry_schema_clear(&found);
        if (rc == STELE_ENOTFOUND && c->lookup_only) {
            cs->looked_up = true; /* read with; not written with */
            *out = &cs->pub;
            return 0;
        }
        if (rc == STELE_ENOTFOUND)
            rc = stele_registry_register(c->reg, cs->pub.name, cs->pub.text,
                                         &id, err);
        if (rc)
            return stele_err_prefix(err, "%s", cs->path);
        if (stele_map_put(c->by_id, &id, sizeof id, cs, NULL))
            return stele_err_set(err, STELE_ENOMEM, "codec: no memory");
        cs->pub.id = id;
    }
    *out = &cs->pub;
    return 0;
}

void stele_codec_set_registering(stele_codec *c, bool on)
{
    c->lookup_only = !on;
}

/* The version of the catalogue file whose schema is the same as a writer
 * schema fetched by id (same JSON once parsed; key order and spacing
 * aside), so upcasters know where a stored event starts; 0 when none is:
 * such a writer is only resolved. */
static int catalogue_version(const stele_codec *c, const codec_schema *cs)
{
    for (size_t i = 0; i < c->n_cat; i++)
        if (strcmp(c->cat[i]->pub.name, cs->pub.name) == 0 &&
            json_equal(c->cat[i]->json, cs->json))
            return c->cat[i]->pub.version;
    return 0;
}

int stele_codec_schema_by_id(stele_codec *c, int32_t id,
                             const stele_schema **out, stele_err *err)
{
    codec_schema *cs = stele_map_get(c->by_id, &id, sizeof id);
    if (cs) {
        *out = &cs->pub;
        return 0;
    }
    const char *text;
    int rc = stele_registry_lookup(c->reg, id, &text, err);
    if (rc)
        return rc;
    char where[64];
    snprintf(where, sizeof where, "schema id %d", id);
    if ((rc = codec_schema_parse(text, strlen(text), where, &cs, err)))
        return rc;
    cs->pub.id = id;
    cs->pub.version = catalogue_version(c, cs);
    if (c->n_fetched == c->cap_fetched) {
        size_t cap = c->cap_fetched ? c->cap_fetched * 2 : 8;
        codec_schema **f = realloc(c->fetched, cap * sizeof *f);
        if (!f) {
            codec_schema_free(cs);
            return stele_err_set(err, STELE_ENOMEM, "codec: no memory");
        }
        c->fetched = f;
        c->cap_fetched = cap;
    }
    c->fetched[c->n_fetched++] = cs;
    if (stele_map_put(c->by_id, &id, sizeof id, cs, NULL))
        return stele_err_set(err, STELE_ENOMEM, "codec: no memory");
    *out = &cs->pub;
    return 0;
}

size_t stele_codec_catalogue(stele_codec *c, const stele_schema *const **out)
{
    *out = c->list;
    return c->n_cat;
}

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
