#include "state.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/map.h"

struct stele_state_cache {
    stele_map *map; /* aggregate id -> stele_state_entry* */
};

stele_state_cache *stele_state_cache_new(void)
{
    stele_state_cache *c = calloc(1, sizeof *c);
    if (c && !(c->map = stele_map_new())) {
        free(c);
        return NULL;
    }
    return c;
}

void stele_state_cache_free(stele_state_cache *c)
{
    if (!c)
        return;
    stele_map_free(c->map, free);
    free(c);
}

const stele_state_entry *stele_state_get(const stele_state_cache *c,
                                         const char *id, size_t id_len)
{
    return stele_map_get(c->map, id, id_len);
}

stele_state_entry *stele_state_entry_new(int64_t version, int32_t partition,
                                         bool broken, const void *data,
                                         size_t len)
{
    if (len >= UINT32_MAX)
        return NULL;
    stele_state_entry *e = malloc(sizeof *e + len + 1);
    if (!e)
        return NULL;
    e->version = version;
    e->partition = partition;
    e->len = (uint32_t)len;
    e->broken = broken;
    if (len)
        memcpy(e->data, data, len);
    e->data[len] = '\0';
    return e;
}

static int put(stele_state_cache *c, const char *id, size_t id_len,
               int32_t partition, int64_t version, bool broken,
               const void *data, size_t len)
{
    stele_state_entry *e =
        stele_state_entry_new(version, partition, broken, data, len);
    if (!e)
        return STELE_ENOMEM;
    void *old;
    if (stele_map_put(c->map, id, id_len, e, &old) != 0) {
        free(e);
        return STELE_ENOMEM;
    }
    free(old);
    return 0;
}

int stele_state_put(stele_state_cache *c, const char *id, size_t id_len,
                    int32_t partition, int64_t version, const void *data,
                    size_t len)
{
    return put(c, id, id_len, partition, version, false, data, len);
}

int stele_state_put_broken(stele_state_cache *c, const char *id, size_t id_len,
                           int32_t partition, int64_t version,
                           const char *reason)
{
    return put(c, id, id_len, partition, version, true, reason, strlen(reason));
}

typedef struct drop_ctx {
    int32_t partition;
    stele_map *victims;
} drop_ctx;

static int collect(void *opaque, const void *key, size_t len, void *value)
{
    drop_ctx *d = opaque;
    const stele_state_entry *e = value;
    if (e->partition == d->partition)
        stele_map_put(d->victims, key, len, NULL, NULL);
    return 0;
}

static int drop_one(void *opaque, const void *key, size_t len, void *value)
{
    (void)value;
    free(stele_map_del(opaque, key, len));
    return 0;
}

void stele_state_drop_partition(stele_state_cache *c, int32_t partition)
{
    drop_ctx d = {partition, stele_map_new()};
    if (!d.victims)
        return;
    stele_map_each(c->map, collect, &d);
    stele_map_each(d.victims, drop_one, c->map);
    stele_map_free(d.victims, NULL);
}

size_t stele_state_count(const stele_state_cache *c)
{
    return stele_map_count(c->map);
}

static int header_int(const stele_log_record *r, const char *name, int64_t *out)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        if (strcmp(r->headers[i].name, name) != 0)
            continue;
        char buf[32];
        size_t n = r->headers[i].len;
        if (n == 0 || n >= sizeof buf)
            return STELE_EINVAL;
        memcpy(buf, r->headers[i].value, n);
        buf[n] = '\0';
        char *end;
        *out = strtoll(buf, &end, 10);
        return *end ? STELE_EINVAL : 0;
    }
    return STELE_ENOTFOUND;
}

static bool has_header(const stele_log_record *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return true;
    return false;
}

int stele_state_restore(stele_state_cache *c, stele_log *log, const char *topic,
                        int32_t partition, int state_version,
                        stele_state_readable_fn readable, void *opaque,
                        size_t *loaded, size_t *stale, stele_err *err)
{
    int64_t from = 0;
    *loaded = *stale = 0;
    for (;;) {
        stele_log_batch *b;
        int rc = stele_log_read(log, topic, partition, from, 4096, &b, err);
        if (rc != 0)
            return rc;
        if (b->n == 0) {
            stele_log_batch_free(b);
            return 0;
        }
        for (size_t i = 0; i < b->n; i++) {
            const stele_log_record *r = &b->records[i];
            int64_t version, sv;
            from = r->offset + 1;
            if (!r->value)
                continue;
            /* A record without readable version headers is not a state
             * this host can trust: like one of another state version, it
             * makes the caller rebuild the partition from its events
             * (which rewrites it), instead of stopping every aggregate of
             * the partition. */
            if (header_int(r, STELE_H_VERSION, &version) != 0 ||
                header_int(r, STELE_H_STATE_VERSION, &sv) != 0 || version < 0) {
                (*stale)++;
                continue;
            }
            if (sv != state_version) {
                (*stale)++;
                continue;
            }
            bool broken = has_header(r, STELE_H_BROKEN);
            if (!broken && readable &&
                !readable(opaque, r->value, r->value_len)) {
                (*stale)++;
                continue;
            }
            if (put(c, r->key, r->key_len, partition, version, broken, r->value,
                    r->value_len) != 0) {
                stele_log_batch_free(b);
                return stele_err_set(err, STELE_ENOMEM, "out of memory");
            }
            (*loaded)++;
        }
        stele_log_batch_free(b);
    }
}
