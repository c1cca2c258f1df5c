/*
 * embedded.c — the schema registry stored on the log itself.
 *
 * Every registration is one record {"subject","schema"} in the topic
 * "_stele_schemas" (one partition, never compacted: a compacted topic would
 * drop old versions of a subject). A schema's id is its record's offset + 1,
 * so ids are never reused and every process that reads the topic agrees on
 * them. Opening reads the whole topic; a lookup of an id this process has
 * not seen yet, and every registration, first read what other processes
 * appended since.
 *
 * A record {"subject","compatibility"} sets the subject's compatibility
 * mode; a subject's versions are its distinct texts in registration order.
 */
#include "internal.h"

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
    stele_map *ids;      /* subject "\0" normalized text -> id */
    stele_map *subjects; /* subject -> subject_info */
} embedded_registry;

typedef struct subject_info {
    int32_t *ids; /* by version - 1 */
    size_t n, cap;
    int compat; /* stele_compat_mode, or -1: none set */
} subject_info;

static void subject_info_free(void *p)
{
    subject_info *si = p;
    if (si)
        free(si->ids);
    free(si);
}

static subject_info *subject_get(embedded_registry *r, const char *subject,
                                 bool create)
{
    subject_info *si = stele_map_gets(r->subjects, subject);
    if (si || !create)
        return si;
    if (!(si = calloc(1, sizeof *si)))
        return NULL;
    si->compat = -1;
    if (stele_map_put(r->subjects, subject, strlen(subject), si, NULL)) {
        free(si);
        return NULL;
    }
    return si;
}

static int subject_add_version(embedded_registry *r, const char *subject,
                               int32_t id)
{
    subject_info *si = subject_get(r, subject, true);
    if (!si)
        return STELE_ENOMEM;
    if (si->n == si->cap) {
        size_t cap = si->cap ? si->cap * 2 : 4;
        int32_t *ids = realloc(si->ids, cap * sizeof *ids);
        if (!ids)
            return STELE_ENOMEM;
        si->ids = ids;
        si->cap = cap;
    }
    si->ids[si->n++] = id;
    return 0;
}

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
    if (!stele_map_get(r->ids, key, klen)) {
        rc = stele_map_put(r->ids, key, klen, (void *)(intptr_t)(offset + 1),
                           NULL);
        if (rc == 0)
            rc = subject_add_version(r, subject, (int32_t)(offset + 1));
    }
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
            const char *mode =
                json_string_value(json_object_get(j, "compatibility"));
            stele_compat_mode m;
            if (subject && text) {
                rc = remember(r, rec->offset, subject, text);
            } else if (subject && mode &&
                       stele_compat_mode_parse(mode, &m) == 0) {
                subject_info *si = subject_get(r, subject, true);
                if (si)
                    si->compat = (int)m;
                else
                    rc = STELE_ENOMEM;
            }
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
    stele_map_free(r->subjects, subject_info_free);
    free(r);
}

static int fill(embedded_registry *r, const char *subject, size_t index,
                stele_registry_schema *out, stele_err *err)
{
    subject_info *si = subject_get(r, subject, false);
    int32_t id = si->ids[index];
    const char *text = r->texts[id - 1];
    out->subject = strdup(subject);
    out->text = strdup(text);
    out->version = (int)index + 1;
    out->id = id;
    if (!out->subject || !out->text) {
        stele_registry_schema_clear(out);
        return stele_err_set(err, STELE_ENOMEM, "schema registry: no memory");
    }
    return 0;
}

static int emb_find(stele_registry *reg, const char *subject, const char *text,
                    stele_registry_schema *out, stele_err *err)
{
    embedded_registry *r = (embedded_registry *)reg;
    int rc = catch_up(r, err);
    if (rc)
        return rc;
    char *norm = normalize(text, strlen(text));
    if (!norm)
        return stele_err_set(err, STELE_EINVAL,
                             "schema registry: %s: schema text is not JSON",
                             subject);
    char *key;
    size_t klen;
    rc = id_key(subject, norm, &key, &klen);
    free(norm);
    if (rc)
        return stele_err_set(err, rc, "schema registry: out of memory");
    int id = find_id(r, key, klen);
    free(key);
    subject_info *si = subject_get(r, subject, false);
    for (size_t i = 0; id && si && i < si->n; i++)
        if (si->ids[i] == id)
            return fill(r, subject, i, out, err);
    if (!si || !si->n)
        return stele_err_set(err, STELE_ENOTFOUND,
                             "schema registry: subject %s not found", subject);
    return stele_err_set(err, STELE_ENOTFOUND,
                         "schema registry: schema not found under subject %s",
                         subject);
}

static int emb_version(stele_registry *reg, const char *subject, int version,
                       stele_registry_schema *out, stele_err *err)
{
    embedded_registry *r = (embedded_registry *)reg;
    int rc = catch_up(r, err);
    if (rc)
        return rc;
    subject_info *si = subject_get(r, subject, false);
    if (!si || !si->n)
        return stele_err_set(err, STELE_ENOTFOUND,
                             "schema registry: subject %s not found", subject);
    if (version == -1)
        version = (int)si->n;
    if (version < 1 || (size_t)version > si->n)
        return stele_err_set(err, STELE_ENOTFOUND,
                             "schema registry: subject %s has no version %d "
                             "(latest %zu)",
                             subject, version, si->n);
    return fill(r, subject, (size_t)version - 1, out, err);
}

typedef struct names {
    char **v;
    size_t n, cap;
} names;

static int collect_subject(void *opaque, const void *key, size_t len,
                           void *value)
{
    names *ns = opaque;
    if (!((subject_info *)value)->n)
        return 0; /* only a compatibility setting */
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 16;
        char **v = realloc(ns->v, cap * sizeof *v);
        if (!v)
            return STELE_ENOMEM;
        ns->v = v;
        ns->cap = cap;
    }
    if (!(ns->v[ns->n] = strndup(key, len)))
        return STELE_ENOMEM;
    ns->n++;
    return 0;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int emb_subjects(stele_registry *reg, char ***out, size_t *n,
                        stele_err *err)
{
    embedded_registry *r = (embedded_registry *)reg;
    int rc = catch_up(r, err);
    if (rc)
        return rc;
    names ns = {0};
    if (stele_map_each(r->subjects, collect_subject, &ns)) {
        stele_registry_strings_free(ns.v, ns.n);
        return stele_err_set(err, STELE_ENOMEM, "schema registry: no memory");
    }
    if (ns.n)
        qsort(ns.v, ns.n, sizeof *ns.v, by_string);
    *out = ns.v;
    *n = ns.n;
    return 0;
}

static int emb_versions(stele_registry *reg, const char *subject, int **out,
                        size_t *n, stele_err *err)
{
    embedded_registry *r = (embedded_registry *)reg;
    int rc = catch_up(r, err);
    if (rc)
        return rc;
    subject_info *si = subject_get(r, subject, false);
    if (!si || !si->n)
        return stele_err_set(err, STELE_ENOTFOUND,
                             "schema registry: subject %s not found", subject);
    if (!(*out = malloc(si->n * sizeof **out)))
        return stele_err_set(err, STELE_ENOMEM, "schema registry: no memory");
    for (size_t i = 0; i < si->n; i++)
        (*out)[i] = (int)i + 1;
    *n = si->n;
    return 0;
}

static int emb_get_compat(stele_registry *reg, const char *subject,
                          stele_compat_mode *out, stele_err *err)
{
    embedded_registry *r = (embedded_registry *)reg;
    int rc = catch_up(r, err);
    if (rc)
        return rc;
    subject_info *si = subject_get(r, subject, false);
    if (!si || si->compat < 0)
        return stele_err_set(err, STELE_ENOTFOUND,
                             "schema registry: subject %s has no "
                             "compatibility setting",
                             subject);
    *out = (stele_compat_mode)si->compat;
    return 0;
}

static int emb_set_compat(stele_registry *reg, const char *subject,
                          stele_compat_mode mode, stele_err *err)
{
    embedded_registry *r = (embedded_registry *)reg;
    json_t *j = json_pack("{s:s, s:s}", "subject", subject, "compatibility",
                          stele_compat_mode_name(mode));
    char *value = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!value)
        return stele_err_set(err, STELE_ENOMEM, "schema registry: no memory");
    stele_log_record rec = {0};
    rec.key = subject;
    rec.key_len = strlen(subject);
    rec.value = value;
    rec.value_len = strlen(value);
    int rc = stele_log_produce(r->log, SCHEMAS_TOPIC, 0, &rec, NULL, err);
    free(value);
    if (rc)
        return stele_err_prefix(err,
                                "schema registry: setting the compatibility "
                                "of %s",
                                subject);
    return catch_up(r, err);
}

static const registry_ops embedded_ops = {.register_schema = emb_register,
                                          .lookup = emb_lookup,
                                          .close = emb_close,
                                          .find = emb_find,
                                          .version = emb_version,
                                          .subjects = emb_subjects,
                                          .versions = emb_versions,
                                          .get_compat = emb_get_compat,
                                          .set_compat = emb_set_compat,
                                          .test_compat = NULL};

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
    if (!r || !(r->ids = stele_map_new()) || !(r->subjects = stele_map_new())) {
        if (r)
            stele_map_free(r->ids, NULL);
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
