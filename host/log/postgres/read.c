/*
 * read.c — reading the PostgreSQL log: partitions from an offset,
 * the latest record of a key (from the compacted table), end offsets and
 * group offsets. Plain statements at READ COMMITTED: a partition's
 * watermark and its records are written by one transaction, so whatever
 * offset a reader sees below the watermark is committed. Results come in
 * binary; every byte a returned record points to is copied into its
 * batch.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

/* A bytea column as stele_log_stored wants it: NULL for SQL NULL. */
static const void *column_field(const PGresult *r, int row, int col,
                                size_t *len)
{
    *len = 0;
    if (PQgetisnull(r, row, col))
        return NULL;
    *len = (size_t)PQgetlength(r, row, col);
    return PQgetvalue(r, row, col);
}

int lpg_rows_into(lpg_log *l, const PGresult *r, const lpg_topic *t,
                  int32_t partition, stele_log_batch *b, stele_err *err)
{
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        stele_log_record *rec = stele_log_batch_add(b);
        if (!rec || !(rec->topic = stele_log_batch_topic(b, t->name)))
            goto oom;
        rec->partition = partition;
        rec->offset = lpg_i64(r, i, 0);
        rec->timestamp_ms = lpg_i64(r, i, 1);
        stele_log_stored st = {.has_crc = !PQgetisnull(r, i, 5)};
        st.crc = st.has_crc ? lpg_i64(r, i, 5) : 0;
        st.key = column_field(r, i, 2, &st.key_len);
        st.value = column_field(r, i, 3, &st.value_len);
        st.headers = column_field(r, i, 4, &st.headers_len);
        if (stele_log_stored_read(b, rec, &st)) {
            stele_log_batch_drop_last(b);
            goto oom;
        }
        if (rec->unchecked) {
            char where[200];
            snprintf(where, sizeof where, "PostgreSQL log at %s", l->where);
            stele_log_note_unchecked(&l->unchecked_seen, where, t->id, rec);
        }
    }
    return 0;
oom:
    return stele_err_set(err, STELE_ENOMEM, "PostgreSQL log: reading %s[%d]",
                         t->name, partition);
}

int lpg_send_read(PGconn *c, const lpg_topic *t, int32_t partition,
                  int64_t from, size_t max)
{
    lpg_params p = {0};
    lpg_p_i32(&p, t->id);
    lpg_p_i32(&p, partition);
    lpg_p_i64(&p, from);
    lpg_p_i64(&p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    return lpg_send(c, t->compacted ? S_CMP_READ : S_REC_READ, &p);
}

static int topic_partition(lpg_log *l, const char *topic, int32_t partition,
                           const lpg_topic **t, stele_err *err)
{
    int rc = lpg_topic_get(l, topic, t, err);
    return rc ? rc : lpg_check_partition(*t, partition, err);
}

/* Runs statement s (its rows: ROW_COLUMNS of t[partition]) into a new
 * batch. */
static int read_rows(lpg_log *l, const lpg_topic *t, int32_t partition,
                     enum lpg_stmt s, const lpg_params *p, const char *what,
                     stele_log_batch **out, stele_err *err)
{
    stele_log_batch *b = stele_log_batch_create();
    if (!b)
        return stele_err_set(err, STELE_ENOMEM, "reading %s[%d]", t->name,
                             partition);
    PGresult *r;
    int rc = lpg_run(l, l->conn, s, p, &r, err, what);
    if (!rc)
        rc = lpg_rows_into(l, r, t, partition, b, err);
    PQclear(r);
    if (rc) {
        stele_log_batch_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int lpg_read(stele_log *log, const char *topic, int32_t partition, int64_t from,
             size_t max, stele_log_batch **out, stele_err *err)
{
    lpg_log *l = (lpg_log *)log;
    const lpg_topic *t;
    int rc = topic_partition(l, topic, partition, &t, err);
    if (rc)
        return rc;
    if (!max) {
        *out = stele_log_batch_create();
        return *out ? 0
                    : stele_err_set(err, STELE_ENOMEM, "reading %s[%d]", topic,
                                    partition);
    }
    lpg_params p = {0};
    lpg_p_i32(&p, t->id);
    lpg_p_i32(&p, partition);
    lpg_p_i64(&p, from);
    lpg_p_i64(&p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    char what[300];
    snprintf(what, sizeof what, "reading %s[%d] from offset %lld", topic,
             partition, (long long)from);
    return read_rows(l, t, partition, t->compacted ? S_CMP_READ : S_REC_READ,
                     &p, what, out, err);
}

int lpg_read_key(stele_log *log, const char *topic, int32_t partition,
                 const void *key, size_t key_len, int64_t from, size_t max,
                 stele_log_batch **out, stele_err *err)
{
    lpg_log *l = (lpg_log *)log;
    const lpg_topic *t;
    int rc = topic_partition(l, topic, partition, &t, err);
    if (rc)
        return rc;
    if (t->compacted) /* one record per key there: no index needed */
        return stele_log_read_key_scan(log, topic, partition, key, key_len,
                                       from, max, out, err);
    lpg_params p = {0};
    lpg_p_i32(&p, t->id);
    lpg_p_i32(&p, partition);
    lpg_p_bytes(&p, key_len ? key : "", key_len);
    lpg_p_i64(&p, from);
    lpg_p_i64(&p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    char what[300];
    snprintf(what, sizeof what, "reading a key of %s[%d] from offset %lld",
             topic, partition, (long long)from);
    return read_rows(l, t, partition, S_REC_READ_KEY, &p, what, out, err);
}

int lpg_delete_before(stele_log *log, const char *topic, int32_t partition,
                      int64_t before_ms, int64_t below_offset, int64_t *deleted,
                      stele_err *err)
{
    lpg_log *l = (lpg_log *)log;
    const lpg_topic *t;
    int rc = topic_partition(l, topic, partition, &t, err);
    if (rc)
        return rc;
    lpg_params p = {0};
    lpg_p_i32(&p, t->id);
    lpg_p_i32(&p, partition);
    lpg_p_i64(&p, below_offset);
    lpg_p_i64(&p, before_ms);
    lpg_p_i64(&p, STELE_LOG_DELETE_MAX);
    char what[300];
    snprintf(what, sizeof what, "retention of %s[%d]", topic, partition);
    PGresult *r;
    enum lpg_stmt stmt = t->compacted ? S_CMP_EXPIRE : S_REC_EXPIRE;
    if ((rc = lpg_run(l, l->conn, stmt, &p, &r, err, what)))
        return rc;
    *deleted = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

int lpg_end_offset(stele_log *log, const char *topic, int32_t partition,
                   int64_t *end, stele_err *err)
{
    lpg_log *l = (lpg_log *)log;
    const lpg_topic *t;
    int rc = topic_partition(l, topic, partition, &t, err);
    if (rc)
        return rc;
    lpg_params p = {0};
    lpg_p_i32(&p, t->id);
    lpg_p_i32(&p, partition);
    char what[300];
    snprintf(what, sizeof what, "reading the end offset of %s[%d]", topic,
             partition);
    PGresult *r;
    if ((rc = lpg_run(l, l->conn, S_PART_END, &p, &r, err, what)))
        return rc;
    if (PQntuples(r) == 1)
        *end = lpg_i64(r, 0, 0);
    else
        rc = stele_err_set(err, STELE_EFATAL,
                           "PostgreSQL log at %s: %s[%d] has no partition row",
                           l->where, topic, partition);
    PQclear(r);
    return rc;
}

int lpg_get_latest(stele_log *log, const char *topic, int32_t partition,
                   const void *key, size_t key_len, stele_log_batch **out,
                   stele_err *err)
{
    lpg_log *l = (lpg_log *)log;
    const lpg_topic *t;
    int rc = lpg_topic_get(l, topic, &t, err);
    if (rc)
        return rc;
    if (!t->compacted)
        return stele_err_set(err, STELE_EINVAL,
                             "get_latest: topic '%s' is not compacted", topic);
    if (partition < 0)
        partition = stele_partition_for_key(key, key_len, t->partitions);
    else if ((rc = lpg_check_partition(t, partition, err)))
        return rc;
    lpg_params p = {0};
    lpg_p_i32(&p, t->id);
    lpg_p_i32(&p, partition);
    lpg_p_bytes(&p, key ? key : "", key_len);
    char what[300];
    snprintf(what, sizeof what, "get_latest %s[%d]", topic, partition);
    PGresult *r;
    if ((rc = lpg_run(l, l->conn, S_CMP_GET, &p, &r, err, what)))
        return rc;
    stele_log_batch *b = NULL;
    if (PQntuples(r) != 1 || PQgetisnull(r, 0, 3)) /* absent, tombstone */
        rc = stele_err_set(err, STELE_ENOTFOUND,
                           "%s[%d]: no record for the key (%zu bytes)", topic,
                           partition, key_len);
    else if (!(b = stele_log_batch_create()))
        rc = stele_err_set(err, STELE_ENOMEM, "get_latest %s", topic);
    else
        rc = lpg_rows_into(l, r, t, partition, b, err);
    PQclear(r);
    if (rc) {
        stele_log_batch_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int lpg_committed_on(lpg_log *l, PGconn *c, const char *group,
                     const lpg_topic *t, int32_t partition, int64_t *next,
                     stele_err *err)
{
    lpg_params p = {0};
    lpg_p_text(&p, group);
    lpg_p_i32(&p, t->id);
    lpg_p_i32(&p, partition);
    char what[600];
    snprintf(what, sizeof what, "group '%s': reading the offset of %s[%d]",
             group, t->name, partition);
    PGresult *r;
    int rc = lpg_run(l, c, S_GRP_GET, &p, &r, err, what);
    if (rc)
        return rc;
    *next = PQntuples(r) == 1 ? lpg_i64(r, 0, 0) : 0;
    PQclear(r);
    return 0;
}

int lpg_committed(stele_log *log, const char *group, const char *topic,
                  int32_t partition, int64_t *next, stele_err *err)
{
    lpg_log *l = (lpg_log *)log;
    const lpg_topic *t;
    int rc = topic_partition(l, topic, partition, &t, err);
    return rc ? rc
              : lpg_committed_on(l, l->conn, group, t, partition, next, err);
}
