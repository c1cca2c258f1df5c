/*
 * commit.c — writing a transaction of the PostgreSQL log (kept in
 * memory by txn.c) at its commit, as one PostgreSQL transaction,
 * pipelined so that a thousand records cost a few round trips:
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
 */
#define _GNU_SOURCE /* qsort_r */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* Statements queued before the pipeline is synced and its results read:
 * bounds what libpq buffers for a very large transaction. */
#define CHUNK 32
/* Records of one partition per statement, and their bytes at most. */
#define ROWS_PER_STMT 1000
#define BYTES_PER_STMT (16u << 20)

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
        lpg_txn_slot *s = &t->slots[k - 1];
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
    const lpg_txn_off *o = &t->offs[k - 1 - t->n_slots];
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

static int arr_grow(lpg_arr *a, size_t more)
{
    return lpg_grow((void **)&a->b, &a->cap, a->n + more, 1);
}

static void arr_u32(lpg_arr *a, uint32_t v)
{
    unsigned char *p = a->b + a->n;
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
    a->n += 4;
}

/* PostgreSQL's binary array: one dimension of count elements. */
static int arr_begin(lpg_arr *a, uint32_t elem_oid, size_t count, size_t bytes)
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

static void arr_bytes(lpg_arr *a, const void *p, size_t len, bool null)
{
    arr_u32(a, null ? UINT32_MAX : (uint32_t)len);
    if (!null && len) {
        memcpy(a->b + a->n, p, len);
        a->n += len;
    }
}

static void arr_i64(lpg_arr *a, int64_t v)
{
    arr_u32(a, 8);
    arr_u32(a, (uint32_t)((uint64_t)v >> 32));
    arr_u32(a, (uint32_t)v);
}

static int key_cmp(const lpg_txn_rec *x, const lpg_txn_rec *y,
                   const unsigned char *b)
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
    const lpg_txn_rec *x = &t->recs[*(const size_t *)a];
    const lpg_txn_rec *y = &t->recs[*(const size_t *)b];
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
    if (lpg_grow((void **)&t->order, &t->cap_order, t->n_recs,
                 sizeof *t->order))
        return -1;
    for (size_t i = 0; i < t->n_recs; i++)
        t->order[i] = i;
    if (t->n_recs)
        qsort_r(t->order, t->n_recs, sizeof *t->order, order_cmp, t);
    /* A compacted partition keeps only the last record of each key. */
    size_t n = 0;
    for (size_t i = 0; i < t->n_recs; i++) {
        const lpg_txn_rec *x = &t->recs[t->order[i]];
        if (x->t->compacted && i + 1 < t->n_recs) {
            const lpg_txn_rec *y = &t->recs[t->order[i + 1]];
            if (y->slot == x->slot && !key_cmp(x, y, t->bytes))
                continue;
        }
        t->order[n++] = t->order[i];
    }
    t->n_order = n;
    t->n_stmts = 0;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const lpg_txn_rec *x = &t->recs[t->order[i]];
        size_t size = x->key_len + x->value_len + x->hdr_len;
        lpg_txn_stmt *cur = t->n_stmts ? &t->stmts[t->n_stmts - 1] : NULL;
        if (!cur || t->recs[t->order[cur->from]].slot != x->slot ||
            cur->to - cur->from >= ROWS_PER_STMT ||
            bytes + size > BYTES_PER_STMT) {
            if (lpg_grow((void **)&t->stmts, &t->cap_stmts, t->n_stmts + 1,
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

static int send_stmt(PGconn *c, lpg_txn *t, const lpg_txn_stmt *st)
{
    size_t count = st->to - st->from, kb = 0, vb = 0, hb = 0;
    for (size_t i = st->from; i < st->to; i++) {
        const lpg_txn_rec *x = &t->recs[t->order[i]];
        kb += x->key_len, vb += x->value_len, hb += x->hdr_len;
    }
    lpg_arr *a = t->arrays;
    if (arr_begin(&a[0], 20, count, count * 8) ||
        arr_begin(&a[1], 20, count, count * 8) ||
        arr_begin(&a[2], 17, count, kb) || arr_begin(&a[3], 17, count, vb) ||
        arr_begin(&a[4], 17, count, hb) ||
        arr_begin(&a[5], 20, count, count * 8))
        return -2;
    const unsigned char *b = t->bytes;
    for (size_t i = st->from; i < st->to; i++) {
        const lpg_txn_rec *x = &t->recs[t->order[i]];
        arr_i64(&a[0], t->slots[x->slot].base + x->seq);
        arr_i64(&a[1], x->ts);
        arr_bytes(&a[2], b + x->key_at, x->key_len, !x->has_key);
        arr_bytes(&a[3], b + x->value_at, x->value_len, !x->has_value);
        arr_bytes(&a[4], b + x->hdr_at, x->hdr_len, !x->has_hdr);
        arr_i64(&a[5], x->crc);
    }
    const lpg_txn_rec *first = &t->recs[t->order[st->from]];
    lpg_params p = {0};
    lpg_p_i32(&p, first->t->id);
    lpg_p_i32(&p, first->partition);
    for (size_t i = 0; i < sizeof t->arrays / sizeof *t->arrays; i++) {
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
        const lpg_txn_stmt *s = &t->stmts[k];
        const lpg_txn_rec *x = &t->recs[t->order[s->from]];
        const lpg_txn_rec *y = &t->recs[t->order[s->to - 1]];
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
        const lpg_txn_off *o = &t->offs[k];
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
        const lpg_txn_off *o = &t->offs[j];
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

int lpg_txn_write(lpg_log *l, lpg_txn *t, stele_err *err)
{
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
