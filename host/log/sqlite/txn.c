/*
 * txn.c — writing to the embedded log: transactions that hold
 * SQLite's write lock from BEGIN IMMEDIATE, assign offsets as records are
 * produced and write the partitions' new watermarks just before COMMIT.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

/* ------------------------------------------------------------------ */
/* Transactions                                                         */

static void txn_reset(lsq_txn *t)
{
    t->active = false;
    t->failed = 0;
    if (t->n)
        memset(t->slots, 0, t->cap * sizeof *t->slots);
    t->n = 0;
}

static size_t slot_hash(int64_t topic_id, int32_t partition, size_t cap)
{
    uint64_t h = (uint64_t)topic_id * 0x9e3779b97f4a7c15ull ^
                 (uint64_t)(uint32_t)partition * 0xff51afd7ed558ccdull;
    return (size_t)(h ^ h >> 29) & (cap - 1);
}

static lsq_slot *slot_probe(lsq_slot *slots, size_t cap, int64_t topic_id,
                            int32_t partition)
{
    size_t i = slot_hash(topic_id, partition, cap);
    while (slots[i].topic_id &&
           (slots[i].topic_id != topic_id || slots[i].partition != partition))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

/* The slot for a partition; NULL when out of memory. */
static lsq_slot *slot_get(lsq_txn *t, int64_t topic_id, int32_t partition,
                          bool *fresh)
{
    if ((t->n + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        lsq_slot *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return NULL;
        for (size_t i = 0; i < t->cap; i++)
            if (t->slots[i].topic_id)
                *slot_probe(slots, cap, t->slots[i].topic_id,
                            t->slots[i].partition) = t->slots[i];
        free(t->slots);
        t->slots = slots;
        t->cap = cap;
    }
    lsq_slot *s = slot_probe(t->slots, t->cap, topic_id, partition);
    *fresh = !s->topic_id;
    if (*fresh) {
        s->topic_id = topic_id;
        s->partition = partition;
        t->n++;
    }
    return s;
}

static int txn_usable(lsq_log *l, stele_err *err)
{
    if (!l->txn.active)
        return stele_err_set(err, STELE_EINVAL,
                             "%s: the transaction is no longer open", l->path);
    if (!l->txn.failed && sqlite3_get_autocommit(l->db))
        l->txn.failed = STELE_EFATAL; /* SQLite ended it on its own */
    if (l->txn.failed)
        return stele_err_set(err, l->txn.failed,
                             "%s: an earlier write of this transaction "
                             "failed; abort it",
                             l->path);
    return 0;
}

/* Records an SQL failure inside the transaction: the transaction can only
 * be aborted now (SQLite may already have rolled it back). */
static int txn_fail(lsq_log *l, int rc, stele_err *err, const char *what,
                    const char *topic, int32_t partition)
{
    int code = lsq_fail(l, rc, err, "%s %s[%d]", what, topic, partition);
    l->txn.failed = code;
    return code;
}

int lsq_txn_begin(stele_log *log, stele_log_txn **out, stele_err *err)
{
    lsq_log *l = (lsq_log *)log;
    if (l->txn.active)
        return stele_err_set(err, STELE_EINVAL,
                             "%s: a transaction is already open on this "
                             "handle",
                             l->path);
    int rc = lsq_exec(l, ST_BEGIN_IMMEDIATE, err);
    if (rc)
        return rc;
    l->txn.active = true;
    l->txn.base.log = log;
    *out = &l->txn.base;
    return 0;
}

int lsq_txn_produce(stele_log_txn *txn, const char *topic, int32_t partition,
                    const stele_log_record *rec, int64_t *offset_out,
                    stele_err *err)
{
    lsq_log *l = (lsq_log *)txn->log;
    const lsq_topic *t;
    int rc = txn_usable(l, err);
    if (rc)
        return rc;
    if ((rc = lsq_topic_get(l, topic, &t, err))) {
        if (rc == STELE_EIO || rc == STELE_EFATAL || rc == STELE_ERETRY)
            l->txn.failed = rc; /* an SQL failure may have ended it */
        return rc;
    }
    if (partition < 0)
        partition =
            stele_partition_for_key(rec->key, rec->key_len, t->partitions);
    else if ((rc = lsq_check_partition(t, partition, err)))
        return rc;
    if (t->compacted && !rec->key)
        return stele_err_set(err, STELE_EINVAL,
                             "%s[%d]: a compacted topic's record needs a key",
                             topic, partition);
    size_t hlen = 0;
    if (rec->n_headers &&
        (rc = stele_log_headers_encode(topic, rec, &l->hdr_buf, &l->hdr_cap,
                                       &hlen, err)))
        return rc;

    bool fresh;
    lsq_slot *slot = slot_get(&l->txn, t->id, partition, &fresh);
    if (!slot)
        return stele_err_set(err, STELE_ENOMEM, "%s[%d]: offset cache", topic,
                             partition);
    if (fresh) {
        sqlite3_stmt *s = l->st[ST_PART_GET];
        sqlite3_bind_int64(s, 1, t->id);
        sqlite3_bind_int(s, 2, partition);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            slot->next = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        if (rc != SQLITE_ROW)
            return txn_fail(l, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, err,
                            "reading the end offset of", topic, partition);
    }

    sqlite3_stmt *s = l->st[t->compacted ? ST_CMP_UPSERT : ST_REC_INSERT];
    int64_t ts = rec->timestamp_ms > 0 ? rec->timestamp_ms : stele_now_ms();
    sqlite3_bind_int64(s, 1, t->id);
    sqlite3_bind_int(s, 2, partition);
    sqlite3_bind_int64(s, 3, slot->next);
    sqlite3_bind_int64(s, 4, ts);
    /* A non-NULL pointer with length 0 binds an empty blob, NULL binds
     * NULL: an empty value stays distinct from a tombstone. */
    if (rec->key)
        sqlite3_bind_blob64(s, 5, rec->key, rec->key_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 5);
    if (rec->value)
        sqlite3_bind_blob64(s, 6, rec->value, rec->value_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 6);
    if (rec->n_headers)
        sqlite3_bind_blob64(s, 7, l->hdr_buf, hlen, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 7);
    /* over the very buffers bound above */
    sqlite3_bind_int64(s, 8,
                       stele_log_record_crc(rec->key, rec->key_len,
                                            rec->n_headers ? l->hdr_buf : NULL,
                                            hlen, rec->value, rec->value_len));
    rc = lsq_step_done(s);
    if (rc)
        return txn_fail(l, rc, err, "writing to", topic, partition);
    if (offset_out)
        *offset_out = slot->next;
    slot->next++;
    return 0;
}

int lsq_txn_send_offset(stele_log_txn *txn, stele_log_consumer *c,
                        const char *topic, int32_t partition,
                        int64_t next_offset, stele_err *err)
{
    lsq_log *l = (lsq_log *)txn->log;
    const lsq_topic *t;
    int rc = txn_usable(l, err);
    if (!rc)
        rc = lsq_topic_get(l, topic, &t, err);
    if (!rc)
        rc = lsq_check_partition(t, partition, err);
    if (rc)
        return rc;
    if (strcmp(lsq_consumer_path(c), l->realpath))
        return stele_err_set(err, STELE_EINVAL,
                             "send_offset: group '%s' reads %s, the "
                             "transaction writes %s",
                             c->group, lsq_consumer_path(c), l->realpath);
    if ((rc = lsq_consumer_check_owner(c, t, partition, err)))
        return rc;
    sqlite3_stmt *s = l->st[ST_GRP_SET];
    sqlite3_bind_text(s, 1, c->group, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, t->id);
    sqlite3_bind_int(s, 3, partition);
    sqlite3_bind_int64(s, 4, next_offset);
    if ((rc = lsq_step_done(s)))
        return txn_fail(l, rc, err, "writing the group offset of", topic,
                        partition);
    return 0;
}

void lsq_txn_abort(stele_log_txn *txn)
{
    lsq_log *l = (lsq_log *)txn->log;
    if (!l->txn.active)
        return;
    /* Fails only when SQLite already rolled back after an error. */
    lsq_step_done(l->st[ST_ROLLBACK]);
    txn_reset(&l->txn);
}

int lsq_txn_commit(stele_log_txn *txn, stele_err *err)
{
    lsq_log *l = (lsq_log *)txn->log;
    int rc = txn_usable(l, err);
    if (rc) {
        lsq_txn_abort(txn);
        return rc;
    }
    sqlite3_stmt *s = l->st[ST_PART_SET];
    for (size_t i = 0; i < l->txn.cap && !rc; i++) {
        const lsq_slot *slot = &l->txn.slots[i];
        if (!slot->topic_id)
            continue;
        sqlite3_bind_int64(s, 1, slot->topic_id);
        sqlite3_bind_int(s, 2, slot->partition);
        sqlite3_bind_int64(s, 3, slot->next);
        if ((rc = lsq_step_done(s)))
            rc = lsq_fail(l, rc, err,
                          "commit: writing the end offset of "
                          "topic id %lld partition %d",
                          (long long)slot->topic_id, slot->partition);
    }
    if (!rc)
        rc = lsq_exec(l, ST_COMMIT, err);
    if (rc) {
        lsq_txn_abort(txn);
        return rc;
    }
    txn_reset(&l->txn);
    return 0;
}
