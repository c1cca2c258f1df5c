/*
 * log_pg_txn.c — writing to the PostgreSQL log. A log transaction is kept
 * in memory (its records, their partitions, the group offsets) and written
 * at commit as one PostgreSQL transaction, pipelined so that a thousand
 * records cost a few round trips:
 *
 *   1. BEGIN; per partition, in (topic, partition) order so two writers
 *      never wait on each other in a cycle:
 *        UPDATE partitions SET next_offset = next_offset + n RETURNING ...
 *      which locks the partition's row until the commit (writers of one
 *      partition take turns; offsets are dense and become visible in
 *      order) and gives the transaction its offsets; per group offset, the
 *      fence: the consumer must still hold the partition's advisory lock
 *      and be its recorded owner (that row is locked FOR SHARE, so a new
 *      owner's claim waits for this commit).
 *   2. The records, up to ROWS_PER_STMT of one partition per statement
 *      (binary arrays unnested into rows: INSERT, or an upsert for
 *      compacted topics, of which only the last record of each key is
 *      kept), the group offsets, a NOTIFY per topic written (delivered
 *      only on commit), COMMIT.
 *
 * So produce cannot know a record's offset: *offset_out is -1, as on
 * Kafka.
 */
#define _GNU_SOURCE /* qsort_r */
#include "log_pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

/* Statements queued before the pipeline is synced and its results read:
 * bounds what libpq buffers for a very large transaction. */
#define CHUNK 32
/* Records of one partition per statement, and their bytes at most. */
#define ROWS_PER_STMT 1000
#define BYTES_PER_STMT (16u << 20)

typedef struct txn_rec {
    const lpg_topic *t;
    int32_t partition;
    uint32_t slot;
    int64_t seq; /* its place among the transaction's records of the
                  * partition: offset = the slot's base + seq */
    int64_t ts;
    size_t key_at, key_len, value_at, value_len, hdr_at, hdr_len;
    bool has_key, has_value, has_hdr;
} txn_rec;

typedef struct txn_slot {
    int32_t topic_id, partition;
    int64_t count, base;
} txn_slot;

typedef struct txn_off {
    const lpg_topic *t;
    int32_t partition;
    int64_t next;
    size_t group_at; /* the group's name, NUL-terminated, in bytes */
    lpg_fence fence;
} txn_off;

/* A statement writing records order[from..to) of one partition. */
typedef struct txn_stmt {
    size_t from, to;
} txn_stmt;

/* A binary array parameter being built. */
typedef struct arr {
    unsigned char *b;
    size_t n, cap;
} arr;

struct lpg_txn {
    struct stele_log_txn base;
    bool active;
    txn_rec *recs;
    size_t n_recs, cap_recs;
    txn_slot *slots;
    size_t n_slots, cap_slots;
    uint32_t *index; /* open addressing: slot number + 1, 0 empty */
    size_t index_cap;
    txn_off *offs;
    size_t n_offs, cap_offs;
    unsigned char *bytes; /* keys, values, headers, group names */
    size_t n_bytes, cap_bytes;
    unsigned char *hdr; /* scratch for encoding headers */
    size_t hdr_cap;
    size_t *order; /* records by partition, duplicate keys dropped */
    size_t n_order, cap_order;
    txn_stmt *stmts;
    size_t n_stmts, cap_stmts;
    arr arrays[5]; /* offsets, timestamps, keys, values, headers */
};

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2 / size)
            return -1;
        c *= 2;
    }
    void *q = realloc(*p, c * size);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* Copies n bytes into the transaction; *at receives where. */
static int keep(lpg_txn *t, const void *src, size_t n, size_t *at)
{
    if (n > SIZE_MAX - t->n_bytes ||
        grow((void **)&t->bytes, &t->cap_bytes, t->n_bytes + n, 1))
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
    for (int i = 0; i < 5; i++)
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
        const txn_slot *s = &t->slots[index[i] - 1];
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
    if (t->n_slots >= UINT32_MAX - 1 || grow((void **)&t->slots, &t->cap_slots,
                                             t->n_slots + 1, sizeof *t->slots))
        return -1;
    t->slots[t->n_slots] =
        (txn_slot){.topic_id = topic_id, .partition = partition};
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
    if (slot < 0 ||
        grow((void **)&t->recs, &t->cap_recs, t->n_recs + 1, sizeof *t->recs))
        return stele_err_set(err, STELE_ENOMEM, "%s[%d]: produce", topic,
                             partition);
    txn_rec *r = &t->recs[t->n_recs];
    *r = (txn_rec){
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
    if (grow((void **)&t->offs, &t->cap_offs, t->n_offs + 1, sizeof *t->offs) ||
        keep(t, c->group, strlen(c->group) + 1, &at))
        return stele_err_set(err, STELE_ENOMEM, "send_offset %s[%d]", topic,
                             partition);
    t->offs[t->n_offs++] = (txn_off){.t = tp,
                                     .partition = partition,
                                     .next = next_offset,
                                     .group_at = at,
                                     .fence = fence};
    return 0;
}

/* ------------------------------------------------------------------ */
/* Commit                                                               */

/* Reads results up to and including the pipeline's sync. first is the
 * number of the first statement whose result comes; fn checks each. */
typedef int (*check_fn)(lpg_log *l, lpg_txn *t, size_t k, PGresult *r,
                        stele_err *err);

static int drain(lpg_log *l, lpg_txn *t, size_t first, size_t n, check_fn fn,
                 stele_err *err)
{
    int rc = 0;
    for (size_t k = first; k < first + n; k++) {
        PGresult *r = lpg_next_result(l->conn);
        if (!r) {
            return rc ? rc
                      : lpg_fail(l, l->conn, NULL, err,
                                 "commit: waiting for the server");
        }
        int e = rc ? 0 : fn(l, t, k, r, err);
        if (e)
            rc = e;
        PQclear(r);
    }
    PGresult *r = lpg_next_result(l->conn);
    if (!r)
        return rc ? rc
                  : lpg_fail(l, l->conn, NULL, err,
                             "commit: waiting for the server");
    if (PQresultStatus(r) != PGRES_PIPELINE_SYNC && !rc)
        rc = lpg_fail(l, l->conn, r, err, "commit: pipeline out of step");
    PQclear(r);
    return rc;
}

static int slot_cmp(const void *a, const void *b)
{
    const txn_slot *x = a, *y = b;
    if (x->topic_id != y->topic_id)
        return x->topic_id < y->topic_id ? -1 : 1;
    return x->partition < y->partition ? -1 : x->partition > y->partition;
}

/* Phase 1 statement k: 0 BEGIN, then a bump per slot, then a fence per
 * group offset. */
static int check_phase1(lpg_log *l, lpg_txn *t, size_t k, PGresult *r,
                        stele_err *err)
{
    ExecStatusType st = PQresultStatus(r);
    if (k == 0)
        return st == PGRES_COMMAND_OK
                   ? 0
                   : lpg_fail(l, l->conn, r, err, "commit: BEGIN");
    if (k <= t->n_slots) {
        txn_slot *s = &t->slots[k - 1];
        if (st != PGRES_TUPLES_OK)
            return lpg_fail(l, l->conn, r, err,
                            "commit: taking offsets of topic id %d "
                            "partition %d",
                            s->topic_id, s->partition);
        if (PQntuples(r) != 1)
            return stele_err_set(err, STELE_EFATAL,
                                 "PostgreSQL log at %s: topic id %d has no "
                                 "partition row %d",
                                 l->where, s->topic_id, s->partition);
        s->base = lpg_i64(r, 0, 0) - s->count;
        return 0;
    }
    const txn_off *o = &t->offs[k - 1 - t->n_slots];
    const char *group = (const char *)t->bytes + o->group_at;
    if (st != PGRES_TUPLES_OK)
        return lpg_fail(l, l->conn, r, err,
                        "commit: checking that group '%s' owns %s[%d]", group,
                        o->t->name, o->partition);
    if (PQntuples(r) != 1 || !lpg_bool(r, 0, 0))
        return stele_err_set(err, STELE_ECONFLICT,
                             "group '%s' no longer owns %s[%d]: its lock "
                             "connection was lost or another member took "
                             "the partition; nothing was written",
                             group, o->t->name, o->partition);
    return 0;
}

static int phase1(lpg_log *l, lpg_txn *t, stele_err *err)
{
    PGconn *c = l->conn;
    if (!PQenterPipelineMode(c))
        return lpg_fail(l, c, NULL, err, "commit: pipeline");
    bool sent = PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    for (size_t i = 0; i < t->n_slots && sent; i++) {
        lpg_params p = {0};
        lpg_p_i32(&p, t->slots[i].topic_id);
        lpg_p_i32(&p, t->slots[i].partition);
        lpg_p_i64(&p, t->slots[i].count);
        sent = !lpg_send(c, S_BUMP, &p);
    }
    for (size_t i = 0; i < t->n_offs && sent; i++) {
        const lpg_fence *f = &t->offs[i].fence;
        lpg_params p = {0};
        lpg_p_i32(&p, f->group_id);
        lpg_p_i32(&p, f->uid);
        lpg_p_i64(&p, f->member);
        lpg_p_i32(&p, f->lock_pid);
        sent = !lpg_send(c, S_FENCE, &p);
    }
    if (!sent || !PQpipelineSync(c))
        return lpg_fail(l, c, NULL, err, "commit: sending");
    return drain(l, t, 0, 1 + t->n_slots + t->n_offs, check_phase1, err);
}

/* ------------------------------------------------------------------ */
/* Phase 2: the records as arrays                                       */

static int arr_grow(arr *a, size_t more)
{
    return grow((void **)&a->b, &a->cap, a->n + more, 1);
}

static void arr_u32(arr *a, uint32_t v)
{
    unsigned char *p = a->b + a->n;
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
    a->n += 4;
}

/* PostgreSQL's binary array: one dimension of count elements. */
static int arr_begin(arr *a, uint32_t elem_oid, size_t count, size_t bytes)
{
    a->n = 0;
    if (arr_grow(a, 20 + count * 4 + bytes))
        return -1;
    arr_u32(a, 1); /* dimensions */
    arr_u32(a, 1); /* may hold NULLs */
    arr_u32(a, elem_oid);
    arr_u32(a, (uint32_t)count); /* length */
    arr_u32(a, 1);               /* lower bound */
    return 0;
}

static void arr_bytes(arr *a, const void *p, size_t len, bool null)
{
    arr_u32(a, null ? UINT32_MAX : (uint32_t)len);
    if (!null && len) {
        memcpy(a->b + a->n, p, len);
        a->n += len;
    }
}

static void arr_i64(arr *a, int64_t v)
{
    arr_u32(a, 8);
    arr_u32(a, (uint32_t)((uint64_t)v >> 32));
    arr_u32(a, (uint32_t)v);
}

static int key_cmp(const txn_rec *x, const txn_rec *y, const unsigned char *b)
{
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = n ? memcmp(b + x->key_at, b + y->key_at, n) : 0;
    if (c)
        return c;
    return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

/* By partition; within a compacted one by key, then in produce order. */
static int order_cmp(const void *a, const void *b, void *arg)
{
    const lpg_txn *t = arg;
    const txn_rec *x = &t->recs[*(const size_t *)a];
    const txn_rec *y = &t->recs[*(const size_t *)b];
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    if (x->t->compacted) {
        int c = key_cmp(x, y, t->bytes);
        if (c)
            return c;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Orders the records and cuts them into statements. */
static int plan_statements(lpg_txn *t)
{
    if (grow((void **)&t->order, &t->cap_order, t->n_recs, sizeof *t->order))
        return -1;
    for (size_t i = 0; i < t->n_recs; i++)
        t->order[i] = i;
    if (t->n_recs)
        qsort_r(t->order, t->n_recs, sizeof *t->order, order_cmp, t);
    /* A compacted partition keeps only the last record of each key. */
    size_t n = 0;
    for (size_t i = 0; i < t->n_recs; i++) {
        const txn_rec *x = &t->recs[t->order[i]];
        if (x->t->compacted && i + 1 < t->n_recs) {
            const txn_rec *y = &t->recs[t->order[i + 1]];
            if (y->slot == x->slot && !key_cmp(x, y, t->bytes))
                continue;
        }
        t->order[n++] = t->order[i];
    }
    t->n_order = n;
    t->n_stmts = 0;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const txn_rec *x = &t->recs[t->order[i]];
        size_t size = x->key_len + x->value_len + x->hdr_len;
        txn_stmt *cur = t->n_stmts ? &t->stmts[t->n_stmts - 1] : NULL;
        if (!cur || t->recs[t->order[cur->from]].slot != x->slot ||
            cur->to - cur->from >= ROWS_PER_STMT ||
            bytes + size > BYTES_PER_STMT) {
            if (grow((void **)&t->stmts, &t->cap_stmts, t->n_stmts + 1,
                     sizeof *t->stmts))
                return -1;
            cur = &t->stmts[t->n_stmts++];
            cur->from = i;
            bytes = 0;
        }
        cur->to = i + 1;
        bytes += size;
    }
    return 0;
}

static int send_stmt(PGconn *c, lpg_txn *t, const txn_stmt *st)
{
    size_t count = st->to - st->from, kb = 0, vb = 0, hb = 0;
    for (size_t i = st->from; i < st->to; i++) {
        const txn_rec *x = &t->recs[t->order[i]];
        kb += x->key_len, vb += x->value_len, hb += x->hdr_len;
    }
    arr *a = t->arrays;
    if (arr_begin(&a[0], 20, count, count * 8) ||
        arr_begin(&a[1], 20, count, count * 8) ||
        arr_begin(&a[2], 17, count, kb) || arr_begin(&a[3], 17, count, vb) ||
        arr_begin(&a[4], 17, count, hb))
        return -2;
    const unsigned char *b = t->bytes;
    for (size_t i = st->from; i < st->to; i++) {
        const txn_rec *x = &t->recs[t->order[i]];
        arr_i64(&a[0], t->slots[x->slot].base + x->seq);
        arr_i64(&a[1], x->ts);
        arr_bytes(&a[2], b + x->key_at, x->key_len, !x->has_key);
        arr_bytes(&a[3], b + x->value_at, x->value_len, !x->has_value);
        arr_bytes(&a[4], b + x->hdr_at, x->hdr_len, !x->has_hdr);
    }
    const txn_rec *first = &t->recs[t->order[st->from]];
    lpg_params p = {0};
    lpg_p_i32(&p, first->t->id);
    lpg_p_i32(&p, first->partition);
    for (int i = 0; i < 5; i++) {
        if (a[i].n > INT32_MAX)
            return -2;
        lpg_p_bytes(&p, a[i].b, a[i].n);
    }
    return lpg_send(c, first->t->compacted ? S_CMP_UPSERT : S_REC_INSERT, &p);
}

/* Phase 2 statement k: the record statements, the group offsets, the
 * notifies, COMMIT. */
static int check_phase2(lpg_log *l, lpg_txn *t, size_t k, PGresult *r,
                        stele_err *err)
{
    ExecStatusType st = PQresultStatus(r);
    if (k < t->n_stmts) {
        const txn_stmt *s = &t->stmts[k];
        const txn_rec *x = &t->recs[t->order[s->from]];
        const txn_rec *y = &t->recs[t->order[s->to - 1]];
        if (st == PGRES_COMMAND_OK)
            return 0;
        return lpg_fail(l, l->conn, r, err,
                        "commit: writing %s[%d] offsets %lld..%lld", x->t->name,
                        x->partition,
                        (long long)(t->slots[x->slot].base + x->seq),
                        (long long)(t->slots[y->slot].base + y->seq));
    }
    k -= t->n_stmts;
    if (k < t->n_offs) {
        const txn_off *o = &t->offs[k];
        if (st == PGRES_COMMAND_OK)
            return 0;
        return lpg_fail(l, l->conn, r, err,
                        "commit: writing the offset of group '%s' %s[%d]",
                        (const char *)t->bytes + o->group_at, o->t->name,
                        o->partition);
    }
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return lpg_fail(l, l->conn, r, err, "commit");
    /* COMMIT of a transaction the server had aborted answers ROLLBACK. */
    if (st == PGRES_COMMAND_OK && !strcmp(PQcmdStatus(r), "ROLLBACK"))
        return stele_err_set(err, STELE_ERETRY,
                             "PostgreSQL log at %s: commit: the server rolled "
                             "the transaction back",
                             l->where);
    return 0;
}

/* Sends phase 2's statement j. */
static int send_phase2(PGconn *c, lpg_txn *t, size_t j, size_t total)
{
    if (j < t->n_stmts)
        return send_stmt(c, t, &t->stmts[j]);
    j -= t->n_stmts;
    if (j < t->n_offs) {
        const txn_off *o = &t->offs[j];
        lpg_params p = {0};
        lpg_p_text(&p, (const char *)t->bytes + o->group_at);
        lpg_p_i32(&p, o->t->id);
        lpg_p_i32(&p, o->partition);
        lpg_p_i64(&p, o->next);
        return lpg_send(c, S_GRP_SET, &p);
    }
    j -= t->n_offs;
    if (j + t->n_stmts + t->n_offs == total - 1)
        return PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0)
                   ? 0
                   : -1;
    /* the j-th distinct topic (slots are sorted by topic) */
    size_t seen = 0, i;
    for (i = 0; i < t->n_slots; i++) {
        bool first = i == 0 || t->slots[i].topic_id != t->slots[i - 1].topic_id;
        if (first && seen++ == j)
            break;
    }
    char channel[40];
    snprintf(channel, sizeof channel, "stele_log_t%d", t->slots[i].topic_id);
    lpg_params p = {0};
    lpg_p_text(&p, channel);
    return lpg_send(c, S_NOTIFY, &p);
}

static int phase2(lpg_log *l, lpg_txn *t, stele_err *err)
{
    PGconn *c = l->conn;
    if (plan_statements(t))
        return stele_err_set(err, STELE_ENOMEM, "PostgreSQL log: commit");
    size_t n_notify = 0;
    for (size_t i = 0; i < t->n_slots; i++)
        n_notify += i == 0 || t->slots[i].topic_id != t->slots[i - 1].topic_id;
    size_t total = t->n_stmts + t->n_offs + n_notify + 1;
    for (size_t k = 0; k < total;) {
        size_t end = k + CHUNK < total ? k + CHUNK : total;
        int sent = 0;
        for (size_t j = k; j < end && !sent; j++)
            sent = send_phase2(c, t, j, total);
        if (sent == -2)
            return stele_err_set(err, STELE_ENOMEM,
                                 "PostgreSQL log: commit: records too large");
        if (sent || !PQpipelineSync(c))
            return lpg_fail(l, c, NULL, err, "commit: sending");
        int rc = drain(l, t, k, end - k, check_phase2, err);
        if (rc)
            return rc;
        k = end;
    }
    return 0;
}

/* Ends a failed commit: out of the pipeline, the transaction rolled
 * back (the server did already, if the session is gone). */
static void rollback(lpg_log *l)
{
    PGconn *c = l->conn;
    if (PQpipelineStatus(c) != PQ_PIPELINE_OFF && !PQexitPipelineMode(c)) {
        /* Results still pending: the session cannot be trusted. A lost
         * one is replaced by the next call. */
        if (PQstatus(c) == CONNECTION_OK)
            lpg_reconnect(l, c, NULL);
        return;
    }
    if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE)
        lpg_simple(l, c, "ROLLBACK", NULL);
}

static int write_txn(lpg_log *l, lpg_txn *t, stele_err *err)
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
    int rc = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (PQstatus(l->conn) != CONNECTION_OK &&
            (rc = lpg_reconnect(l, l->conn, err)))
            return rc;
        rc = phase1(l, t, err);
        /* A session that died while idle (a server restart): nothing was
         * written, so a new session may do it all. */
        if (rc == STELE_ERETRY && attempt == 0 && lpg_lost(l->conn, NULL)) {
            rollback(l);
            continue;
        }
        break;
    }
    if (!rc && (rc = phase2(l, t, err)) == STELE_ERETRY &&
        lpg_lost(l->conn, NULL))
        stele_err_prefix(err, "the commit may or may not have happened");
    if (rc || !PQexitPipelineMode(l->conn))
        rollback(l);
    return rc;
}

int lpg_txn_commit(stele_log_txn *txn, stele_err *err)
{
    lpg_txn *t = (lpg_txn *)txn;
    lpg_log *l = (lpg_log *)txn->log;
    int rc = usable(t, err);
    if (!rc && (t->n_recs || t->n_offs))
        rc = write_txn(l, t, err);
    txn_reset(t);
    return rc;
}

void lpg_txn_abort(stele_log_txn *txn)
{
    txn_reset((lpg_txn *)txn); /* nothing reached the server */
}
