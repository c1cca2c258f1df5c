/*
 * log.c — the public log functions: argument checks every backend shares,
 * then dispatch through the handle's ops table; and the batch arena that
 * backends build read results in.
 */
#include "internal.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* Kafka's limits, so a name valid here is valid on every backend. */
#define TOPIC_NAME_MAX 249
#define GROUP_NAME_MAX 249
#define PARTITIONS_MAX 100000

static int check_topic(const char *topic, stele_err *err)
{
    if (!topic || !*topic)
        return stele_err_set(err, STELE_EINVAL, "topic name is empty");
    size_t n = strnlen(topic, TOPIC_NAME_MAX + 1);
    if (n > TOPIC_NAME_MAX)
        return stele_err_set(err, STELE_EINVAL,
                             "topic name '%.40s...' is longer than %d", topic,
                             TOPIC_NAME_MAX);
    if (!strcmp(topic, ".") || !strcmp(topic, ".."))
        return stele_err_set(err, STELE_EINVAL, "topic name '%s' is reserved",
                             topic);
    for (size_t i = 0; i < n; i++) {
        char ch = topic[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
            return stele_err_set(err, STELE_EINVAL,
                                 "topic name '%s': character %zu is not one "
                                 "of [a-zA-Z0-9._-]",
                                 topic, i + 1);
    }
    return 0;
}

static int check_group(const char *group, stele_err *err)
{
    if (!group || !*group)
        return stele_err_set(err, STELE_EINVAL, "group name is empty");
    if (strnlen(group, GROUP_NAME_MAX + 1) > GROUP_NAME_MAX)
        return stele_err_set(err, STELE_EINVAL,
                             "group name '%.40s...' is longer than %d", group,
                             GROUP_NAME_MAX);
    return 0;
}

static int check_record(const char *topic, const stele_log_record *rec,
                        stele_err *err)
{
    if (!rec)
        return stele_err_set(err, STELE_EINVAL, "%s: record is NULL", topic);
    if (!rec->key && rec->key_len)
        return stele_err_set(err, STELE_EINVAL,
                             "%s: key is NULL with length %zu", topic,
                             rec->key_len);
    if (!rec->value && rec->value_len)
        return stele_err_set(err, STELE_EINVAL,
                             "%s: value is NULL with length %zu", topic,
                             rec->value_len);
    if (rec->n_headers && !rec->headers)
        return stele_err_set(err, STELE_EINVAL,
                             "%s: %zu headers but no header array", topic,
                             rec->n_headers);
    for (size_t i = 0; i < rec->n_headers; i++) {
        const stele_log_header *h = &rec->headers[i];
        if (!h->name)
            return stele_err_set(err, STELE_EINVAL,
                                 "%s: header %zu has no name", topic, i);
        if (!h->value && h->len)
            return stele_err_set(err, STELE_EINVAL,
                                 "%s: header '%s' is NULL with length %zu",
                                 topic, h->name, h->len);
    }
    return 0;
}

/* ------------------------------------------------------------------ */

void stele_log_close(stele_log *log)
{
    if (log)
        log->ops->close(log);
}

const char *stele_log_backend_name(const stele_log *log)
{
    return log ? log->ops->name : "none";
}

int stele_log_topic_ensure(stele_log *log, const stele_topic_spec *spec,
                           stele_err *err)
{
    if (!log || !spec)
        return stele_err_set(err, STELE_EINVAL, "topic_ensure: NULL argument");
    int rc = check_topic(spec->name, err);
    if (rc)
        return rc;
    if (spec->partitions < 1 || spec->partitions > PARTITIONS_MAX)
        return stele_err_set(err, STELE_EINVAL,
                             "topic '%s': %d partitions (must be 1..%d)",
                             spec->name, spec->partitions, PARTITIONS_MAX);
    if (spec->n_configs && !spec->configs)
        return stele_err_set(err, STELE_EINVAL,
                             "topic '%s': %zu configs but no config array",
                             spec->name, spec->n_configs);
    return log->ops->topic_ensure(log, spec, err);
}

int stele_log_topic_partitions(stele_log *log, const char *topic, int32_t *n,
                               stele_err *err)
{
    if (!log || !n)
        return stele_err_set(err, STELE_EINVAL,
                             "topic_partitions: NULL argument");
    int rc = check_topic(topic, err);
    return rc ? rc : log->ops->topic_partitions(log, topic, n, err);
}

int stele_log_txn_begin(stele_log *log, stele_log_txn **out, stele_err *err)
{
    if (!log || !out)
        return stele_err_set(err, STELE_EINVAL, "txn_begin: NULL argument");
    *out = NULL;
    return log->ops->txn_begin(log, out, err);
}

int stele_log_txn_produce(stele_log_txn *txn, const char *topic,
                          int32_t partition, const stele_log_record *rec,
                          int64_t *offset_out, stele_err *err)
{
    if (offset_out)
        *offset_out = -1;
    if (!txn)
        return stele_err_set(err, STELE_EINVAL, "produce: no transaction");
    int rc = check_topic(topic, err);
    if (!rc)
        rc = check_record(topic, rec, err);
    if (rc)
        return rc;
    return txn->log->ops->txn_produce(txn, topic, partition, rec, offset_out,
                                      err);
}

int stele_log_txn_send_offset(stele_log_txn *txn, stele_log_consumer *c,
                              const char *topic, int32_t partition,
                              int64_t next_offset, stele_err *err)
{
    if (!txn || !c)
        return stele_err_set(err, STELE_EINVAL,
                             "send_offset: NULL transaction or consumer");
    if (c->log->ops != txn->log->ops)
        return stele_err_set(err, STELE_EINVAL,
                             "send_offset: consumer of group '%s' is on the "
                             "%s log, the transaction on the %s log",
                             c->group, c->log->ops->name, txn->log->ops->name);
    int rc = check_topic(topic, err);
    if (rc)
        return rc;
    if (next_offset < 0)
        return stele_err_set(err, STELE_EINVAL,
                             "send_offset: group '%s' %s[%d]: negative "
                             "offset %lld",
                             c->group, topic, partition,
                             (long long)next_offset);
    return txn->log->ops->txn_send_offset(txn, c, topic, partition, next_offset,
                                          err);
}

int stele_log_txn_commit(stele_log_txn *txn, stele_err *err)
{
    if (!txn)
        return stele_err_set(err, STELE_EINVAL, "commit: no transaction");
    return txn->log->ops->txn_commit(txn, err);
}

void stele_log_txn_abort(stele_log_txn *txn)
{
    if (txn)
        txn->log->ops->txn_abort(txn);
}

int stele_log_produce(stele_log *log, const char *topic, int32_t partition,
                      const stele_log_record *rec, int64_t *offset_out,
                      stele_err *err)
{
    stele_log_txn *txn;
    if (offset_out)
        *offset_out = -1;
    int rc = stele_log_txn_begin(log, &txn, err);
    if (rc)
        return rc;
    int64_t off = -1;
    rc = stele_log_txn_produce(txn, topic, partition, rec, &off, err);
    if (rc) {
        stele_log_txn_abort(txn);
        return rc;
    }
    rc = stele_log_txn_commit(txn, err);
    if (!rc && offset_out)
        *offset_out = off;
    return rc;
}

int stele_log_read(stele_log *log, const char *topic, int32_t partition,
                   int64_t from, size_t max, stele_log_batch **out,
                   stele_err *err)
{
    if (!log || !out)
        return stele_err_set(err, STELE_EINVAL, "read: NULL argument");
    *out = NULL;
    int rc = check_topic(topic, err);
    if (rc)
        return rc;
    if (from < 0)
        return stele_err_set(err, STELE_EINVAL,
                             "read %s[%d]: negative offset %lld", topic,
                             partition, (long long)from);
    return log->ops->read(log, topic, partition, from, max, out, err);
}

int stele_log_read_key_scan(stele_log *log, const char *topic,
                            int32_t partition, const void *key, size_t key_len,
                            int64_t from, size_t max, stele_log_batch **out,
                            stele_err *err)
{
    for (;;) {
        stele_log_batch *b;
        int rc = stele_log_read(log, topic, partition, from, 1024, &b, err);
        if (rc)
            return rc;
        size_t kept = 0;
        for (size_t i = 0; i < b->n; i++) {
            const stele_log_record *r = &b->records[i];
            if (r->key_len == key_len &&
                (key_len == 0 || memcmp(r->key, key, key_len) == 0) &&
                kept < max)
                b->records[kept++] = *r; /* the data stays the batch's */
        }
        if (kept > 0 || b->n == 0) {
            b->n = kept;
            *out = b;
            return 0;
        }
        from = b->records[b->n - 1].offset + 1;
        stele_log_batch_free(b);
    }
}

int stele_log_read_key(stele_log *log, const char *topic, int32_t partition,
                       const void *key, size_t key_len, int64_t from,
                       size_t max, stele_log_batch **out, stele_err *err)
{
    if (!log || !out || (!key && key_len))
        return stele_err_set(err, STELE_EINVAL, "read_key: NULL argument");
    *out = NULL;
    int rc = check_topic(topic, err);
    if (rc)
        return rc;
    if (from < 0)
        return stele_err_set(err, STELE_EINVAL,
                             "read_key %s[%d]: negative offset %lld", topic,
                             partition, (long long)from);
    if (!max) {
        *out = stele_log_batch_create();
        return *out ? 0
                    : stele_err_set(err, STELE_ENOMEM, "read_key %s[%d]", topic,
                                    partition);
    }
    return log->ops->read_key
               ? log->ops->read_key(log, topic, partition, key, key_len, from,
                                    max, out, err)
               : stele_log_read_key_scan(log, topic, partition, key, key_len,
                                         from, max, out, err);
}

int stele_log_end_offset(stele_log *log, const char *topic, int32_t partition,
                         int64_t *end, stele_err *err)
{
    if (!log || !end)
        return stele_err_set(err, STELE_EINVAL, "end_offset: NULL argument");
    int rc = check_topic(topic, err);
    return rc ? rc : log->ops->end_offset(log, topic, partition, end, err);
}

int stele_log_delete_before(stele_log *log, const char *topic,
                            int32_t partition, int64_t before_ms,
                            int64_t below_offset, int64_t *deleted,
                            stele_err *err)
{
    int64_t n = 0;
    if (deleted)
        *deleted = 0;
    if (!log)
        return stele_err_set(err, STELE_EINVAL, "delete_before: NULL log");
    int rc = check_topic(topic, err);
    if (rc || !log->ops->delete_before || below_offset <= 0)
        return rc;
    rc = log->ops->delete_before(log, topic, partition, before_ms, below_offset,
                                 &n, err);
    if (rc == 0 && deleted)
        *deleted = n;
    return rc;
}

bool stele_log_deletes_records(const stele_log *log)
{
    return log && log->ops->delete_before && !log->ops->server_retention;
}

bool stele_log_lookups_in_memory(const stele_log *log)
{
    return log && log->ops->lookup_in_memory;
}

stele_log_caps stele_log_capabilities(const stele_log *log)
{
    if (!log)
        return (stele_log_caps){0};
    return (stele_log_caps){.local = log->ops->local,
                            .replies_topic = log->ops->replies_topic,
                            .lookups_in_memory = log->ops->lookup_in_memory,
                            .deletes_records = stele_log_deletes_records(log)};
}

int stele_log_get_latest(stele_log *log, const char *topic, int32_t partition,
                         const void *key, size_t key_len, stele_log_batch **out,
                         stele_err *err)
{
    if (!log || !out || (!key && key_len))
        return stele_err_set(err, STELE_EINVAL, "get_latest: NULL argument");
    *out = NULL;
    int rc = check_topic(topic, err);
    if (rc)
        return rc;
    return log->ops->get_latest(log, topic, partition, key, key_len, out, err);
}

int stele_log_settle(stele_log *log, const char *topic, int32_t partition,
                     int timeout_ms, stele_err *err)
{
    if (!log)
        return stele_err_set(err, STELE_EINVAL, "settle: NULL log");
    int rc = check_topic(topic, err);
    if (rc || !log->ops->settle)
        return rc;
    return log->ops->settle(log, topic, partition, timeout_ms, err);
}

int stele_log_compacted_sync(stele_log *log, const char *topic,
                             int32_t partition, stele_err *err)
{
    if (!log)
        return stele_err_set(err, STELE_EINVAL, "compacted_sync: NULL log");
    int rc = check_topic(topic, err);
    if (rc)
        return rc;
    /* Backends that look keys up in place have nothing to bring up to
     * date. */
    if (!log->ops->compacted_sync)
        return 0;
    return log->ops->compacted_sync(log, topic, partition, err);
}

int stele_log_committed(stele_log *log, const char *group, const char *topic,
                        int32_t partition, int64_t *next, stele_err *err)
{
    if (!log || !next)
        return stele_err_set(err, STELE_EINVAL, "committed: NULL argument");
    int rc = check_group(group, err);
    if (!rc)
        rc = check_topic(topic, err);
    if (rc)
        return rc;
    return log->ops->committed(log, group, topic, partition, next, err);
}

int stele_log_consumer_new(stele_log *log, const char *group,
                           const char *const *topics, size_t n_topics,
                           const stele_log_rebalance_cb *cb,
                           stele_log_consumer **out, stele_err *err)
{
    if (!log || !out)
        return stele_err_set(err, STELE_EINVAL, "consumer_new: NULL argument");
    *out = NULL;
    int rc = check_group(group, err);
    if (rc)
        return rc;
    if (!n_topics || !topics)
        return stele_err_set(err, STELE_EINVAL,
                             "group '%s': subscribes to no topic", group);
    for (size_t i = 0; i < n_topics; i++) {
        if ((rc = check_topic(topics[i], err))) {
            stele_err_prefix(err, "group '%s'", group);
            return rc;
        }
    }
    return log->ops->consumer_new(log, group, topics, n_topics, cb, out, err);
}

int stele_log_consumer_poll(stele_log_consumer *c, int timeout_ms, size_t max,
                            stele_log_batch **out, stele_err *err)
{
    if (!c || !out)
        return stele_err_set(err, STELE_EINVAL, "poll: NULL argument");
    *out = NULL;
    if (!max)
        return stele_err_set(err, STELE_EINVAL, "poll: group '%s': max is 0",
                             c->group);
    return c->log->ops->consumer_poll(c, timeout_ms, max, out, err);
}

int stele_log_consumer_seek(stele_log_consumer *c, const char *topic,
                            int32_t partition, int64_t offset, stele_err *err)
{
    if (!c)
        return stele_err_set(err, STELE_EINVAL, "seek: no consumer");
    int rc = check_topic(topic, err);
    if (rc)
        return rc;
    if (offset < 0)
        return stele_err_set(err, STELE_EINVAL,
                             "seek: group '%s' %s[%d]: negative offset %lld",
                             c->group, topic, partition, (long long)offset);
    return c->log->ops->consumer_seek(c, topic, partition, offset, err);
}

int stele_log_consumer_rewind(stele_log_consumer *c, stele_err *err)
{
    if (!c)
        return stele_err_set(err, STELE_EINVAL, "rewind: no consumer");
    return c->log->ops->consumer_rewind(c, err);
}

size_t stele_log_consumer_assignment(stele_log_consumer *c,
                                     const stele_topic_partition **tps)
{
    if (!c) {
        if (tps)
            *tps = NULL;
        return 0;
    }
    const stele_topic_partition *dummy;
    return c->log->ops->consumer_assignment(c, tps ? tps : &dummy);
}

const char *stele_log_consumer_group(const stele_log_consumer *c)
{
    return c ? c->group : NULL;
}

void stele_log_consumer_close(stele_log_consumer *c)
{
    if (c)
        c->log->ops->consumer_close(c);
}

/* ------------------------------------------------------------------ */
/* Batch arena                                                         */

#define CHUNK_MIN 4096
#define CHUNK_MAX (1u << 20)

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
} chunk;

typedef struct batch {
    stele_log_batch pub; /* first: callers hold &pub */
    size_t cap;          /* records allocated */
    chunk *chunks;       /* newest first */
    size_t next_chunk;   /* size of the next chunk to allocate */
    const char *topic_src, *topic_copy;
} batch;

stele_log_batch *stele_log_batch_create(void)
{
    batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->next_chunk = CHUNK_MIN;
    return &b->pub;
}

stele_log_record *stele_log_batch_add(stele_log_batch *pub)
{
    batch *b = (batch *)pub;
    if (b->pub.n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        stele_log_record *r = realloc(b->pub.records, cap * sizeof *r);
        if (!r)
            return NULL;
        b->pub.records = r;
        b->cap = cap;
    }
    stele_log_record *rec = &b->pub.records[b->pub.n++];
    memset(rec, 0, sizeof *rec);
    return rec;
}

void stele_log_batch_drop_last(stele_log_batch *pub)
{
    if (pub->n)
        pub->n--;
}

void *stele_log_batch_alloc(stele_log_batch *pub, size_t n)
{
    batch *b = (batch *)pub;
    const size_t align = alignof(max_align_t);
    size_t need = (n + align - 1) & ~(align - 1);
    if (need < n)
        return NULL;
    if (need == 0)
        need = align; /* distinct, valid pointers for empty values */
    chunk *c = b->chunks;
    if (!c || c->cap - c->used < need) {
        size_t cap = b->next_chunk;
        while (cap < need)
            cap *= 2;
        if (cap > SIZE_MAX - sizeof *c)
            return NULL;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = b->chunks;
        b->chunks = c;
        if (b->next_chunk < CHUNK_MAX)
            b->next_chunk *= 2;
    }
    void *p = c->data + c->used;
    c->used += need;
    return p;
}

void *stele_log_batch_copy(stele_log_batch *pub, const void *src, size_t n)
{
    void *p = stele_log_batch_alloc(pub, n);
    if (p && n)
        memcpy(p, src, n);
    return p;
}

const char *stele_log_batch_topic(stele_log_batch *pub, const char *topic)
{
    batch *b = (batch *)pub;
    if (b->topic_src == topic && b->topic_copy)
        return b->topic_copy;
    char *copy = stele_log_batch_copy(pub, topic, strlen(topic) + 1);
    if (copy) {
        b->topic_src = topic;
        b->topic_copy = copy;
    }
    return copy;
}

void stele_log_batch_free(stele_log_batch *pub)
{
    if (!pub)
        return;
    batch *b = (batch *)pub;
    chunk *c = b->chunks;
    while (c) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
    free(b->pub.records);
    free(b);
}
