/*
 * registry_embedded.c — the schema registry stored on the log itself.
 *
 * Every registration is one record {"subject","schema"} in the topic
 * "_stele_schemas" (one partition, never compacted: a compacted topic would
 * drop old versions of a subject). A schema's id is its record's offset + 1,
 * so ids are never reused and every process that reads the topic agrees on
 * them. Opening reads the whole topic; a lookup of an id this process has
 * not seen yet, and every registration, first read what other processes
 * appended since.
 */
#include "codec_private.h"

#include <stdlib.h>
#include <string.h>

#define SCHEMAS_TOPIC "_stele_schemas"
#define READ_BATCH 256

typedef struct embedded_registry {
    stele_registry base;
    stele_log *log;
    int64_t next; /* the next offset to read */
    char **texts; /* by offset: the schema text, NULL for a bad record */
    size_t cap;
    stele_map *ids; /* subject "\0" normalized text -> id */
} embedded_registry;

/* The text parsed and printed with sorted keys, so whitespace and key
 * order do not make a second id. NULL if text is not JSON. */
static char *normalize(const char *text, size_t len)
{
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    if (!j)
        return NULL;
    char *out = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    return out;
}

static int id_key(const char *subject, const char *normalized, char **key,
                  size_t *len)
{
    size_t ls = strlen(subject), ln = strlen(normalized);
    *key = malloc(ls + 1 + ln);
    if (!*key)
        return STELE_ENOMEM;
    memcpy(*key, subject, ls + 1);
    memcpy(*key + ls + 1, normalized, ln);
    *len = ls + 1 + ln;
    return 0;
}

static int remember(embedded_registry *r, int64_t offset, const char *subject,
                    const char *text)
{
    if ((size_t)offset >= r->cap) {
        size_t cap = r->cap ? r->cap : 64;
        while (cap <= (size_t)offset)
            cap *= 2;
        char **t = realloc(r->texts, cap * sizeof *t);
        if (!t)
            return STELE_ENOMEM;
        memset(t + r->cap, 0, (cap - r->cap) * sizeof *t);
        r->texts = t;
        r->cap = cap;
    }
    char *norm = normalize(text, strlen(text));
    if (!norm)
        return 0; /* not JSON: the id stays unknown */
    char *key;
    size_t klen;
    int rc = id_key(subject, norm, &key, &klen);
    free(norm);
    if (rc)
        return rc;
    char *copy = strdup(text);
    if (!copy) {
        free(key);
        return STELE_ENOMEM;
    }
    free(r->texts[offset]);
    r->texts[offset] = copy;
    /* The first registration of a text keeps its id: two processes that
     * raced both end up using the lower one. */
    if (!stele_map_get(r->ids, key, klen))
        rc = stele_map_put(r->ids, key, klen, (void *)(intptr_t)(offset + 1),
                           NULL);
    free(key);
    return rc;
}

/* Reads what was appended to the topic since the last read. */
static int catch_up(embedded_registry *r, stele_err *err)
{
    for (;;) {
        stele_log_batch *b = NULL;
        int rc = stele_log_read(r->log, SCHEMAS_TOPIC, 0, r->next, READ_BATCH,
                                &b, err);
        if (rc)
            return stele_err_prefix(err, "schema registry: reading %s",
                                    SCHEMAS_TOPIC);
        size_t n = b->n;
        for (size_t i = 0; i < n && rc == 0; i++) {
            const stele_log_record *rec = &b->records[i];
            json_t *j = rec->value
                            ? json_loadb(rec->value, rec->value_len, 0, NULL)
                            : NULL;
            const char *subject =
                json_string_value(json_object_get(j, "subject"));
            const char *text = json_string_value(json_object_get(j, "schema"));
            if (subject && text)
                rc = remember(r, rec->offset, subject, text);
            json_decref(j);
            r->next = rec->offset + 1;
        }
        stele_log_batch_free(b);
        if (rc)
            return stele_err_set(err, rc, "schema registry: out of memory");
        if (n == 0)
            return 0;
    }
}

static int find_id(embedded_registry *r, const char *key, size_t klen)
{
    return (int)(intptr_t)stele_map_get(r->ids, key, klen);
}

static int emb_register(stele_registry *reg, const char *subject,
                        const char *text, int32_t *id, stele_err *err)
{
    embedded_registry *r = (embedded_registry *)reg;
    char *norm = normalize(text, strlen(text));
    if (!norm)
        return stele_err_set(err, STELE_EINVAL,
                             "schema registry: %s: schema text is not JSON",
                             subject);
    char *key;
    size_t klen;
    int rc = id_key(subject, norm, &key, &klen);
    free(norm);
    if (rc)
        return stele_err_set(err, rc, "schema registry: out of memory");

    int found = find_id(r, key, klen);
    if (!found && (rc = catch_up(r, err)) == 0)
        found = find_id(r, key, klen);
    if (!found && rc == 0) {
        json_t *j = json_pack("{s:s, s:s}", "subject", subject, "schema", text);
        char *value = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!value) {
            rc = stele_err_set(err, STELE_ENOMEM,
                               "schema registry: %s: cannot build record",
                               subject);
        } else {
            stele_log_record rec = {0};
            rec.key = subject;
            rec.key_len = strlen(subject);
            rec.value = value;
            rec.value_len = strlen(value);
            rc = stele_log_produce(r->log, SCHEMAS_TOPIC, 0, &rec, NULL, err);
            free(value);
            if (rc)
                stele_err_prefix(err, "schema registry: registering %s",
                                 subject);
            /* Read it back rather than trusting the offset: a process that
             * registered the same text just before us wins. */
            else if ((rc = catch_up(r, err)) == 0)
                found = find_id(r, key, klen);
        }
    }
    free(key);
    if (rc)
        return rc;
    if (!found)
        return stele_err_set(err, STELE_EIO,
                             "schema registry: %s: registered schema not "
                             "found in %s",
                             subject, SCHEMAS_TOPIC);
    *id = found;
    return 0;
}

static int emb_lookup(stele_registry *reg, int32_t id, const char **text,
                      stele_err *err)
{
    embedded_registry *r = (embedded_registry *)reg;
    int64_t offset = (int64_t)id - 1;
    if (offset >= r->next) {
        int rc = catch_up(r, err);
        if (rc)
            return rc;
    }
    if (offset >= r->next || (size_t)offset >= r->cap || !r->texts[offset])
        return stele_err_set(err, STELE_ENOTFOUND,
                             "schema registry: unknown schema id %d", id);
    *text = r->texts[offset];
    return 0;
}

static void emb_close(stele_registry *reg)
{
    embedded_registry *r = (embedded_registry *)reg;
    for (size_t i = 0; i < r->cap; i++)
        free(r->texts[i]);
    free(r->texts);
    stele_map_free(r->ids, NULL);
    free(r);
}

static const registry_ops embedded_ops = {emb_register, emb_lookup, emb_close};

int stele_registry_open_embedded(stele_log *log, stele_registry **out,
                                 stele_err *err)
{
    if (!log || !out)
        return stele_err_set(err, STELE_EINVAL,
                             "schema registry: open needs a log");
    static const char *const configs[] = {"retention.ms=-1",
                                          "cleanup.policy=delete"};
    stele_topic_spec spec = {.name = SCHEMAS_TOPIC,
                             .partitions = 1,
                             .configs = configs,
                             .n_configs = 2};
    int rc = stele_log_topic_ensure(log, &spec, err);
    if (rc)
        return stele_err_prefix(err, "schema registry");
    embedded_registry *r = calloc(1, sizeof *r);
    if (!r || !(r->ids = stele_map_new())) {
        free(r);
        return stele_err_set(err, STELE_ENOMEM, "schema registry: no memory");
    }
    r->base.ops = &embedded_ops;
    r->log = log;
    rc = catch_up(r, err);
    if (rc) {
        emb_close(&r->base);
        return rc;
    }
    *out = &r->base;
    return 0;
}
