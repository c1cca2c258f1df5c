/*
 * codec.c — opening the codec: the schemas/ directory walked into the
 * catalogue (each .avsc file must be self-contained: avro-c cannot
 * resolve a named type defined in another file), and freeing it all.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    codec_name_key(name, version, key, sizeof key, &klen);
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
