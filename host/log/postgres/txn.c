/*
 * txn.c — a transaction on the PostgreSQL log, kept in memory until
 * its commit: the records (their bytes copied into one buffer), the
 * partitions they go to with how many each gets, and the group offsets
 * with the fence each must pass. commit.c writes it all at commit
 * as one PostgreSQL transaction, which is when offsets are assigned.
 *
 * So produce cannot know a record's offset: *offset_out is -1, as on
 * Kafka.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

/* Copies n bytes into the transaction; *at receives where. */
static int keep(lpg_txn *t, const void *src, size_t n, size_t *at)
{
    if (n > SIZE_MAX - t->n_bytes ||
        lpg_grow((void **)&t->bytes, &t->cap_bytes, t->n_bytes + n, 1))
        return -1;
    if (n)
        memcpy(t->bytes + t->n_bytes, src, n);
    *at = t->n_bytes;
    t->n_bytes += n;
    return 0;
}

/* ------------------------------------------------------------------ */

static void txn_reset(lpg_txn *t)
{
    t->active = false;
    t->n_recs = t->n_slots = t->n_offs = t->n_bytes = 0;
    if (t->index)
        memset(t->index, 0, t->index_cap * sizeof *t->index);
}

void lpg_txn_free(lpg_txn *t)
{
    if (!t)
        return;
    free(t->recs);
    free(t->slots);
    free(t->index);
    free(t->offs);
    free(t->bytes);
    free(t->hdr);
    free(t->order);
    free(t->stmts);
    for (size_t i = 0; i < sizeof t->arrays / sizeof *t->arrays; i++)
        free(t->arrays[i].b);
    free(t);
}

static size_t slot_hash(int32_t topic_id, int32_t partition, size_t cap)
{
    uint64_t h = (uint64_t)(uint32_t)topic_id * 0x9e3779b97f4a7c15ull ^
                 (uint64_t)(uint32_t)partition * 0xff51afd7ed558ccdull;
    return (size_t)(h ^ h >> 29) & (cap - 1);
}

static uint32_t *index_probe(lpg_txn *t, uint32_t *index, size_t cap,
                             int32_t topic_id, int32_t partition)
{
    size_t i = slot_hash(topic_id, partition, cap);
    while (index[i]) {
        const lpg_txn_slot *s = &t->slots[index[i] - 1];
        if (s->topic_id == topic_id && s->partition == partition)
            break;
        i = (i + 1) & (cap - 1);
    }
    return &index[i];
}

/* The slot number of a partition, added when new; -1 when out of memory. */
static int64_t slot_of(lpg_txn *t, int32_t topic_id, int32_t partition)
{
    if ((t->n_slots + 1) * 2 > t->index_cap) {
        size_t cap = t->index_cap ? t->index_cap * 2 : 64;
        uint32_t *index = calloc(cap, sizeof *index);
        if (!index)
            return -1;
        for (size_t i = 0; i < t->n_slots; i++)
            *index_probe(t, index, cap, t->slots[i].topic_id,
                         t->slots[i].partition) = (uint32_t)i + 1;
        free(t->index);
        t->index = index;
        t->index_cap = cap;
    }
    uint32_t *at = index_probe(t, t->index, t->index_cap, topic_id, partition);
    if (*at)
        return *at - 1;
    if (t->n_slots >= UINT32_MAX - 1 ||
        lpg_grow((void **)&t->slots, &t->cap_slots, t->n_slots + 1,
                 sizeof *t->slots))
        return -1;
    t->slots[t->n_slots] =
        (lpg_txn_slot){.topic_id = topic_id, .partition = partition};
    *at = (uint32_t)++t->n_slots;
    return *at - 1;
}

int lpg_txn_begin(stele_log *log, stele_log_txn **out, stele_err *err)
{
    lpg_log *l = (lpg_log *)log;
    if (l->txn && l->txn->active)
        return stele_err_set(err, STELE_EINVAL,
                             "PostgreSQL log at %s: a transaction is already "
                             "open on this handle",
                             l->where);
    if (!l->txn && !(l->txn = calloc(1, sizeof *l->txn)))
        return stele_err_set(err, STELE_ENOMEM, "PostgreSQL log: txn_begin");
    l->txn->active = true;
    l->txn->base.log = log;
    *out = &l->txn->base;
    return 0;
}

static int usable(lpg_txn *t, stele_err *err)
{
    if (!t->active)
        return stele_err_set(err, STELE_EINVAL,
                             "PostgreSQL log: the transaction is no longer "
                             "open");
    return 0;
}

int lpg_txn_produce(stele_log_txn *txn, const char *topic, int32_t partition,
                    const stele_log_record *rec, int64_t *offset_out,
                    stele_err *err)
{
    lpg_txn *t = (lpg_txn *)txn;
    lpg_log *l = (lpg_log *)txn->log;
    const lpg_topic *tp;
    int rc = usable(t, err);
    if (!rc)
        rc = lpg_topic_get(l, topic, &tp, err);
    if (rc)
        return rc;
    if (partition < 0)
        partition =
            stele_partition_for_key(rec->key, rec->key_len, tp->partitions);
    else if ((rc = lpg_check_partition(tp, partition, err)))
        return rc;
    if (tp->compacted && !rec->key)
        return stele_err_set(err, STELE_EINVAL,
                             "%s[%d]: a compacted topic's record needs a key",
                             topic, partition);
    if (rec->key_len > INT32_MAX || rec->value_len > INT32_MAX)
        return stele_err_set(err, STELE_EINVAL,
                             "%s[%d]: a key or value over 2 GiB", topic,
                             partition);
    size_t hlen = 0;
    if (rec->n_headers && (rc = stele_log_headers_encode(
                               topic, rec, &t->hdr, &t->hdr_cap, &hlen, err)))
        return rc;
    if (hlen > INT32_MAX)
        return stele_err_set(err, STELE_EINVAL, "%s[%d]: headers over 2 GiB",
                             topic, partition);
    int64_t slot = slot_of(t, tp->id, partition);
    if (slot < 0 || lpg_grow((void **)&t->recs, &t->cap_recs, t->n_recs + 1,
                             sizeof *t->recs))
        return stele_err_set(err, STELE_ENOMEM, "%s[%d]: produce", topic,
                             partition);
    lpg_txn_rec *r = &t->recs[t->n_recs];
    *r = (lpg_txn_rec){
        .t = tp,
        .partition = partition,
        .slot = (uint32_t)slot,
        .seq = t->slots[slot].count,
        .ts = rec->timestamp_ms > 0 ? rec->timestamp_ms : stele_now_ms(),
        .key_len = rec->key_len,
        .value_len = rec->value_len,
        .hdr_len = hlen,
        .has_key = rec->key != NULL,
        .has_value = rec->value != NULL,
        .has_hdr = rec->n_headers > 0,
    };
    if (keep(t, rec->key, rec->key_len, &r->key_at) ||
        keep(t, rec->value, rec->value_len, &r->value_at) ||
        keep(t, t->hdr, hlen, &r->hdr_at))
        return stele_err_set(err, STELE_ENOMEM, "%s[%d]: produce", topic,
                             partition);
    /* of the bytes just kept, which commit sends as they are */
    r->crc = stele_log_record_crc(rec->key, rec->key_len,
                                  rec->n_headers ? t->hdr : NULL, hlen,
                                  rec->value, rec->value_len);
    t->slots[slot].count++;
    t->n_recs++;
    if (offset_out)
        *offset_out = -1; /* assigned at commit */
    return 0;
}

int lpg_txn_send_offset(stele_log_txn *txn, stele_log_consumer *c,
                        const char *topic, int32_t partition,
                        int64_t next_offset, stele_err *err)
{
    lpg_txn *t = (lpg_txn *)txn;
    lpg_log *l = (lpg_log *)txn->log;
    const lpg_topic *tp;
    lpg_fence fence;
    int rc = usable(t, err);
    if (!rc)
        rc = lpg_topic_get(l, topic, &tp, err);
    if (!rc)
        rc = lpg_check_partition(tp, partition, err);
    if (!rc)
        rc = lpg_consumer_fence(c, tp, partition, &fence, err);
    if (rc)
        return rc;
    size_t at;
    if (lpg_grow((void **)&t->offs, &t->cap_offs, t->n_offs + 1,
                 sizeof *t->offs) ||
        keep(t, c->group, strlen(c->group) + 1, &at))
        return stele_err_set(err, STELE_ENOMEM, "send_offset %s[%d]", topic,
                             partition);
    t->offs[t->n_offs++] = (lpg_txn_off){.t = tp,
                                         .partition = partition,
                                         .next = next_offset,
                                         .group_at = at,
                                         .fence = fence};
    return 0;
}

static int slot_cmp(const void *a, const void *b)
{
    const lpg_txn_slot *x = a, *y = b;
    if (x->topic_id != y->topic_id)
        return x->topic_id < y->topic_id ? -1 : 1;
    return x->partition < y->partition ? -1 : x->partition > y->partition;
}

/* Sorts the slots by (topic, partition), so writers lock partition rows in
 * one order, and points the records at their slots' new numbers. */
static void lpg_txn_sort_slots(lpg_txn *t)
{
    if (t->n_slots)
        qsort(t->slots, t->n_slots, sizeof *t->slots, slot_cmp);
    /* Records point at slots by number: renumber after the sort. */
    for (size_t i = 0; i < t->n_slots; i++)
        *index_probe(t, t->index, t->index_cap, t->slots[i].topic_id,
                     t->slots[i].partition) = (uint32_t)i + 1;
    for (size_t i = 0; i < t->n_recs; i++)
        t->recs[i].slot = *index_probe(t, t->index, t->index_cap,
                                       t->recs[i].t->id, t->recs[i].partition) -
                          1;
}

int lpg_txn_commit(stele_log_txn *txn, stele_err *err)
{
    lpg_txn *t = (lpg_txn *)txn;
    lpg_log *l = (lpg_log *)txn->log;
    int rc = usable(t, err);
    if (!rc && (t->n_recs || t->n_offs)) {
        lpg_txn_sort_slots(t);
        rc = lpg_txn_write(l, t, err);
    }
    txn_reset(t);
    return rc;
}

void lpg_txn_abort(stele_log_txn *txn)
{
    txn_reset((lpg_txn *)txn); /* nothing reached the server */
}
