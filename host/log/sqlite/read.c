/*
 * read.c — reading the embedded log: partitions from an offset,
 * the latest record of a key, end offsets and group offsets. Every byte a
 * returned record points to is copied into its batch.
 */
#include "internal.h"

#include <string.h>

#include "common/err.h"
#include "common/util.h"

/* ------------------------------------------------------------------ */
/* Reading                                                              */

/* A blob column as stele_log_stored wants it: NULL for SQL NULL, never
 * NULL for an empty blob (for which SQLite returns NULL). */
static const void *column_field(sqlite3_stmt *s, int col, size_t *len)
{
    *len = 0;
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return NULL;
    const void *p = sqlite3_column_blob(s, col);
    *len = (size_t)sqlite3_column_bytes(s, col);
    return p ? p : "";
}

/* Appends the row s is on (ROW_COLUMNS) to b as a record of t[partition],
 * its checksum checked. */
static int row_to_record(lsq_log *l, sqlite3_stmt *s, const lsq_topic *t,
                         int32_t partition, stele_log_batch *b, stele_err *err)
{
    stele_log_record *rec = stele_log_batch_add(b);
    if (!rec || !(rec->topic = stele_log_batch_topic(b, t->name)))
        goto oom;
    rec->partition = partition;
    rec->offset = sqlite3_column_int64(s, 0);
    rec->timestamp_ms = sqlite3_column_int64(s, 1);
    stele_log_stored st = {.has_crc = sqlite3_column_type(s, 5) != SQLITE_NULL,
                           .crc = sqlite3_column_int64(s, 5)};
    st.key = column_field(s, 2, &st.key_len);
    st.value = column_field(s, 3, &st.value_len);
    st.headers = column_field(s, 4, &st.headers_len);
    if (stele_log_stored_read(b, rec, &st)) {
        stele_log_batch_drop_last(b);
        goto oom;
    }
    if (rec->unchecked)
        stele_log_note_unchecked(&l->unchecked_seen, l->path, t->id, rec);
    return 0;
oom:
    return stele_err_set(err, STELE_ENOMEM, "%s: reading %s[%d]", l->path,
                         t->name, partition);
}

int lsq_read_into(lsq_log *l, const lsq_topic *t, int32_t partition,
                  int64_t from, size_t max, stele_log_batch *b, size_t *got,
                  stele_err *err)
{
    sqlite3_stmt *s = l->st[t->compacted ? ST_CMP_READ : ST_REC_READ];
    sqlite3_bind_int64(s, 1, t->id);
    sqlite3_bind_int(s, 2, partition);
    sqlite3_bind_int64(s, 3, from);
    sqlite3_bind_int64(s, 4, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int code = row_to_record(l, s, t, partition, b, err);
        if (code) {
            sqlite3_reset(s);
            return code;
        }
        n++;
    }
    sqlite3_reset(s);
    *got = n;
    if (rc != SQLITE_DONE)
        return lsq_fail(l, rc, err, "reading %s[%d] from offset %lld", t->name,
                        partition, (long long)from);
    return 0;
}

static int topic_partition(lsq_log *l, const char *topic, int32_t partition,
                           const lsq_topic **t, stele_err *err)
{
    int rc = lsq_topic_get(l, topic, t, err);
    return rc ? rc : lsq_check_partition(*t, partition, err);
}

int lsq_read(stele_log *log, const char *topic, int32_t partition, int64_t from,
             size_t max, stele_log_batch **out, stele_err *err)
{
    lsq_log *l = (lsq_log *)log;
    const lsq_topic *t;
    int rc = topic_partition(l, topic, partition, &t, err);
    if (rc)
        return rc;
    stele_log_batch *b = stele_log_batch_create();
    if (!b)
        return stele_err_set(err, STELE_ENOMEM, "reading %s[%d]", topic,
                             partition);
    size_t got;
    if (max && (rc = lsq_read_into(l, t, partition, from, max, b, &got, err))) {
        stele_log_batch_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int lsq_end_offset(stele_log *log, const char *topic, int32_t partition,
                   int64_t *end, stele_err *err)
{
    lsq_log *l = (lsq_log *)log;
    const lsq_topic *t;
    int rc = topic_partition(l, topic, partition, &t, err);
    if (rc)
        return rc;
    sqlite3_stmt *s = l->st[ST_PART_GET];
    sqlite3_bind_int64(s, 1, t->id);
    sqlite3_bind_int(s, 2, partition);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *end = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return lsq_fail(l, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, err,
                        "reading the end offset of %s[%d]", topic, partition);
    return 0;
}

int lsq_delete_before(stele_log *log, const char *topic, int32_t partition,
                      int64_t before_ms, int64_t below_offset, int64_t *deleted,
                      stele_err *err)
{
    lsq_log *l = (lsq_log *)log;
    const lsq_topic *t;
    int rc = topic_partition(l, topic, partition, &t, err);
    if (rc)
        return rc;
    if (l->txn.active)
        return stele_err_set(err, STELE_EINVAL,
                             "%s: deleting records inside a transaction",
                             l->path);
    sqlite3_stmt *s = l->st[t->compacted ? ST_CMP_EXPIRE : ST_REC_EXPIRE];
    sqlite3_bind_int64(s, 1, t->id);
    sqlite3_bind_int(s, 2, partition);
    sqlite3_bind_int64(s, 3, below_offset);
    sqlite3_bind_int64(s, 4, before_ms);
    sqlite3_bind_int64(s, 5, STELE_LOG_DELETE_MAX);
    int step = lsq_step_done(s);
    if (step != SQLITE_OK)
        return lsq_fail(l, step, err, "retention of %s[%d]", topic, partition);
    *deleted = sqlite3_changes64(l->db);
    return 0;
}

int lsq_get_latest(stele_log *log, const char *topic, int32_t partition,
                   const void *key, size_t key_len, stele_log_batch **out,
                   stele_err *err)
{
    lsq_log *l = (lsq_log *)log;
    const lsq_topic *t;
    int rc = lsq_topic_get(l, topic, &t, err);
    if (rc)
        return rc;
    if (!t->compacted)
        return stele_err_set(err, STELE_EINVAL,
                             "get_latest: topic '%s' is not compacted", topic);
    if (partition < 0)
        partition = stele_partition_for_key(key, key_len, t->partitions);
    else if ((rc = lsq_check_partition(t, partition, err)))
        return rc;
    stele_log_batch *b = stele_log_batch_create();
    if (!b)
        return stele_err_set(err, STELE_ENOMEM, "get_latest %s", topic);
    sqlite3_stmt *s = l->st[ST_CMP_GET];
    sqlite3_bind_int64(s, 1, t->id);
    sqlite3_bind_int(s, 2, partition);
    sqlite3_bind_blob64(s, 3, key ? key : (const void *)"", key_len,
                        SQLITE_STATIC);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW && sqlite3_column_type(s, 3) != SQLITE_NULL)
        rc = row_to_record(l, s, t, partition, b, err);
    else if (step == SQLITE_ROW || step == SQLITE_DONE)
        rc = stele_err_set(err, STELE_ENOTFOUND,
                           "%s[%d]: no record for the key (%zu bytes)", topic,
                           partition, key_len);
    else
        rc = lsq_fail(l, step, err, "get_latest %s[%d]", topic, partition);
    sqlite3_reset(s);
    if (rc) {
        stele_log_batch_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int lsq_committed_get(lsq_log *l, const char *group, const lsq_topic *t,
                      int32_t partition, int64_t *next, stele_err *err)
{
    sqlite3_stmt *s = l->st[ST_GRP_GET];
    sqlite3_bind_text(s, 1, group, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, t->id);
    sqlite3_bind_int(s, 3, partition);
    int rc = sqlite3_step(s);
    *next = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return lsq_fail(l, rc, err, "group '%s': reading the offset of %s[%d]",
                        group, t->name, partition);
    return 0;
}

int lsq_committed(stele_log *log, const char *group, const char *topic,
                  int32_t partition, int64_t *next, stele_err *err)
{
    lsq_log *l = (lsq_log *)log;
    const lsq_topic *t;
    int rc = topic_partition(l, topic, partition, &t, err);
    return rc ? rc : lsq_committed_get(l, group, t, partition, next, err);
}
