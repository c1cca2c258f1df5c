/*
 * open.c — the embedded log: one SQLite file in WAL mode.
 *
 * Layout (schema version 2):
 *   topics(id, name, partitions, compacted)
 *   partitions(topic_id, part, next_offset)   the high watermark
 *   records(topic_id, part, off, ...)         normal topics, every record
 *   compacted(topic_id, part, key, off, ...)  compacted topics, latest per
 *                                             key, indexed by offset too
 *   group_offsets(grp, topic_id, part, next_offset)
 *
 * Version 2 added a crc column to records and compacted: the CRC-32C of
 * the record's key, headers and value (checksum.c), checked on every
 * read; NULL in rows written before, which are read unchecked. A version
 * 1 file gets the column when it is first opened.
 *
 * Offsets are assigned when a record is produced: a transaction holds
 * SQLite's write lock from BEGIN IMMEDIATE, reads each partition's next
 * offset once, counts up in memory and writes the new watermarks back just
 * before COMMIT. So records, watermarks and group offsets commit in one
 * SQLite transaction, and a killed writer leaves nothing (the WAL frames of
 * an uncommitted transaction are ignored on recovery).
 *
 * A tombstone in a compacted topic is kept as a row with a NULL value, as
 * Kafka keeps tombstones for a while: a reader that saw the key's earlier
 * value then learns of the delete. get_latest treats it as absent.
 */
#include "internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

#define SCHEMA_VERSION 2
#define BUSY_TIMEOUT_MS 5000

static const char *const schema_sql =
    "BEGIN IMMEDIATE;"
    "CREATE TABLE IF NOT EXISTS topics("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " partitions INTEGER NOT NULL, compacted INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS partitions("
    " topic_id INTEGER NOT NULL, part INTEGER NOT NULL,"
    " next_offset INTEGER NOT NULL,"
    " PRIMARY KEY(topic_id, part)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS records("
    " topic_id INTEGER NOT NULL, part INTEGER NOT NULL, off INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, key BLOB, value BLOB, headers BLOB, crc INTEGER,"
    " PRIMARY KEY(topic_id, part, off)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS compacted("
    " topic_id INTEGER NOT NULL, part INTEGER NOT NULL, key BLOB NOT NULL,"
    " off INTEGER NOT NULL, ts INTEGER NOT NULL, value BLOB, headers BLOB,"
    " crc INTEGER, PRIMARY KEY(topic_id, part, key)) WITHOUT ROWID;"
    "CREATE UNIQUE INDEX IF NOT EXISTS compacted_by_offset"
    " ON compacted(topic_id, part, off);"
    "CREATE TABLE IF NOT EXISTS group_offsets("
    " grp TEXT NOT NULL, topic_id INTEGER NOT NULL, part INTEGER NOT NULL,"
    " next_offset INTEGER NOT NULL,"
    " PRIMARY KEY(grp, topic_id, part)) WITHOUT ROWID;";

/* The tables whose rows carry a crc since schema version 2. */
static const char *const crc_tables[] = {"records", "compacted"};

#define ROW_COLUMNS "off, ts, key, value, headers, crc"

/* retention: at most ?5 records from the lowest offset, before the first
 * one to keep (found in offset order: the walk costs the records it
 * deletes) */
#define EXPIRE_SQL(table)                                                  \
    "WITH b(b) AS (SELECT min(?3, min(off) + ?5) FROM " table              \
    " WHERE topic_id = ?1 AND part = ?2)"                                  \
    " DELETE FROM " table " WHERE topic_id = ?1 AND part = ?2"             \
    " AND off < coalesce((SELECT off FROM " table                          \
    " WHERE topic_id = ?1 AND part = ?2 AND off < (SELECT b FROM b)"       \
    " AND ts >= ?4 ORDER BY off LIMIT 1), (SELECT b FROM b))"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN",
    [ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_TOPIC_GET] =
        "SELECT id, partitions, compacted FROM topics WHERE name = ?1",
    [ST_TOPIC_INSERT] =
        "INSERT INTO topics(name, partitions, compacted) VALUES (?1, ?2, ?3)",
    [ST_PART_INSERT] = "INSERT INTO partitions(topic_id, part, next_offset)"
                       " VALUES (?1, ?2, 0)",
    [ST_PART_GET] = "SELECT next_offset FROM partitions"
                    " WHERE topic_id = ?1 AND part = ?2",
    [ST_PART_SET] = "UPDATE partitions SET next_offset = ?3"
                    " WHERE topic_id = ?1 AND part = ?2",
    [ST_PART_ALL] = "SELECT part, next_offset FROM partitions"
                    " WHERE topic_id = ?1 ORDER BY part",
    [ST_REC_INSERT] =
        "INSERT INTO records(topic_id, part, off, ts, key, value, headers,"
        " crc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_CMP_UPSERT] =
        "INSERT INTO compacted(topic_id, part, off, ts, key, value, headers,"
        " crc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        " ON CONFLICT(topic_id, part, key) DO UPDATE SET off = excluded.off,"
        " ts = excluded.ts, value = excluded.value,"
        " headers = excluded.headers, crc = excluded.crc",
    [ST_REC_READ] = "SELECT " ROW_COLUMNS " FROM records"
                    " WHERE topic_id = ?1 AND part = ?2 AND off >= ?3"
                    " ORDER BY off LIMIT ?4",
    [ST_CMP_READ] = "SELECT " ROW_COLUMNS " FROM compacted"
                    " WHERE topic_id = ?1 AND part = ?2 AND off >= ?3"
                    " ORDER BY off LIMIT ?4",
    [ST_CMP_GET] = "SELECT " ROW_COLUMNS " FROM compacted"
                   " WHERE topic_id = ?1 AND part = ?2 AND key = ?3",
    [ST_GRP_GET] = "SELECT next_offset FROM group_offsets"
                   " WHERE grp = ?1 AND topic_id = ?2 AND part = ?3",
    [ST_GRP_SET] = "INSERT INTO group_offsets(grp, topic_id, part, next_offset)"
                   " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(grp, topic_id, part)"
                   " DO UPDATE SET next_offset = excluded.next_offset",
    [ST_DATA_VERSION] = "PRAGMA data_version",
    [ST_REC_EXPIRE] = EXPIRE_SQL("records"),
    [ST_CMP_EXPIRE] = EXPIRE_SQL("compacted"),
};

static const stele_log_ops sqlite_ops;

static int status_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return STELE_ERETRY;
    case SQLITE_NOMEM: return STELE_ENOMEM;
    case SQLITE_TOOBIG: return STELE_EINVAL;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CONSTRAINT: /* an offset taken twice: the file is broken */
    case SQLITE_MISUSE: return STELE_EFATAL;
    default: return STELE_EIO;
    }
}

int lsq_fail(lsq_log *l, int rc, stele_err *err, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *msg = l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc);
    return stele_err_set(err, status_of(rc), "%s: %s: %s (sqlite %d)", l->path,
                         what, msg, rc);
}

int lsq_step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int lsq_exec(lsq_log *l, enum lsq_stmt id, stele_err *err)
{
    int rc = lsq_step_done(l->st[id]);
    return rc ? lsq_fail(l, rc, err, "%s", stmt_sql[id]) : 0;
}

/* ------------------------------------------------------------------ */
/* Topics                                                               */

static int topic_load(lsq_log *l, const char *name, lsq_topic **out,
                      stele_err *err)
{
    sqlite3_stmt *s = l->st[ST_TOPIC_GET];
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    *out = NULL;
    if (rc == SQLITE_ROW) {
        size_t len = strlen(name);
        lsq_topic *t = malloc(sizeof *t + len + 1);
        if (!t) {
            sqlite3_reset(s);
            return stele_err_set(err, STELE_ENOMEM, "topic '%s'", name);
        }
        t->id = sqlite3_column_int64(s, 0);
        t->partitions = sqlite3_column_int(s, 1);
        t->compacted = sqlite3_column_int(s, 2) != 0;
        memcpy(t->name, name, len + 1);
        *out = t;
        rc = SQLITE_DONE;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return lsq_fail(l, rc, err, "looking up topic '%s'", name);
    return 0;
}

int lsq_topic_get(lsq_log *l, const char *name, const lsq_topic **out,
                  stele_err *err)
{
    lsq_topic *t = stele_map_gets(l->topics, name);
    if (!t) {
        int rc = topic_load(l, name, &t, err);
        if (rc)
            return rc;
        if (!t)
            return stele_err_set(err, STELE_ENOTFOUND,
                                 "%s: topic '%s' does not exist", l->path,
                                 name);
        if (stele_map_put(l->topics, t->name, strlen(t->name), t, NULL)) {
            free(t);
            return stele_err_set(err, STELE_ENOMEM, "topic '%s'", name);
        }
    }
    *out = t;
    return 0;
}

int lsq_check_partition(const lsq_topic *t, int32_t partition, stele_err *err)
{
    return stele_log_check_partition(t->name, t->partitions, partition, err);
}

static int topic_compare(const lsq_topic *t, const stele_topic_spec *spec,
                         stele_err *err)
{
    return stele_log_topic_matches(t->name, t->partitions, t->compacted, spec,
                                   err);
}

static int topic_create(lsq_log *l, const stele_topic_spec *spec,
                        stele_err *err)
{
    sqlite3_stmt *s = l->st[ST_TOPIC_INSERT];
    sqlite3_bind_text(s, 1, spec->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, spec->partitions);
    sqlite3_bind_int(s, 3, spec->compacted);
    int rc = lsq_step_done(s);
    if (rc)
        return lsq_fail(l, rc, err, "creating topic '%s'", spec->name);
    int64_t id = sqlite3_last_insert_rowid(l->db);
    s = l->st[ST_PART_INSERT];
    for (int32_t p = 0; p < spec->partitions; p++) {
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int(s, 2, p);
        if ((rc = lsq_step_done(s)))
            return lsq_fail(l, rc, err, "creating topic '%s' partition %d",
                            spec->name, p);
    }
    return 0;
}

static int sq_topic_ensure(stele_log *log, const stele_topic_spec *spec,
                           stele_err *err)
{
    lsq_log *l = (lsq_log *)log;
    lsq_topic *t = stele_map_gets(l->topics, spec->name);
    if (t)
        return topic_compare(t, spec, err);
    if (l->txn.active)
        return stele_err_set(err, STELE_EINVAL,
                             "%s: topic '%s': cannot create a topic inside "
                             "a transaction",
                             l->path, spec->name);
    int rc = lsq_exec(l, ST_BEGIN_IMMEDIATE, err);
    if (rc) {
        stele_err_prefix(err, "topic '%s'", spec->name);
        return rc;
    }
    rc = topic_load(l, spec->name, &t, err);
    if (!rc && t)
        rc = topic_compare(t, spec, err);
    else if (!rc)
        rc = topic_create(l, spec, err);
    free(t);
    if (!rc)
        rc = lsq_exec(l, ST_COMMIT, err);
    if (rc) {
        lsq_step_done(l->st[ST_ROLLBACK]);
        return rc;
    }
    const lsq_topic *cached;
    return lsq_topic_get(l, spec->name, &cached, err);
}

static int sq_topic_partitions(stele_log *log, const char *topic, int32_t *n,
                               stele_err *err)
{
    const lsq_topic *t;
    int rc = lsq_topic_get((lsq_log *)log, topic, &t, err);
    if (!rc)
        *n = t->partitions;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Opening and closing                                                  */

static void sq_close(stele_log *log)
{
    lsq_log *l = (lsq_log *)log;
    if (l->txn.active)
        lsq_txn_abort(&l->txn.base);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(l->st[i]);
    sqlite3_close_v2(l->db);
    if (l->topics)
        stele_map_free(l->topics, free);
    free(l->txn.slots);
    free(l->hdr_buf);
    stele_set64_free(l->unchecked_seen);
    free(l->realpath);
    free(l->path);
    free(l);
}

static int pragma_int(lsq_log *l, const char *sql, int64_t *v, stele_err *err)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(l->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        *v = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    if (rc)
        lsq_fail(l, rc, err, "%s", sql);
    sqlite3_finalize(s);
    return rc ? status_of(rc) : 0;
}

/* Adds the crc column to table unless it has one (a version 1 file). */
static int crc_column_ensure(lsq_log *l, const char *table, stele_err *err)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(
        l->db, "SELECT count(*) FROM pragma_table_info(?1) WHERE name = 'crc'",
        -1, &s, NULL);
    int64_t has = 0;
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        has = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        rc = rc == SQLITE_ROW ? SQLITE_OK : rc;
    }
    sqlite3_finalize(s);
    if (rc == SQLITE_OK && !has) {
        char sql[64];
        snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN crc INTEGER",
                 table);
        rc = sqlite3_exec(l->db, sql, NULL, NULL, NULL);
    }
    return rc ? lsq_fail(l, rc, err, "adding checksums to table %s", table)
              : 0;
}

/* Creates the tables, or brings a file of an older version up to this
 * one, in one write transaction: processes opening the file at once take
 * turns, and whoever comes second finds the work done. */
static int schema_ensure(lsq_log *l, stele_err *err)
{
    int rc = sqlite3_exec(l->db, schema_sql, NULL, NULL, NULL);
    if (rc)
        rc = lsq_fail(l, rc, err, "creating the log schema");
    for (size_t i = 0; !rc && i < sizeof crc_tables / sizeof *crc_tables; i++)
        rc = crc_column_ensure(l, crc_tables[i], err);
    if (!rc) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d; COMMIT",
                 SCHEMA_VERSION);
        if ((rc = sqlite3_exec(l->db, sql, NULL, NULL, NULL)))
            rc = lsq_fail(l, rc, err, "creating the log schema");
    }
    if (rc && !sqlite3_get_autocommit(l->db))
        sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int configure(lsq_log *l, stele_err *err)
{
    sqlite3_extended_result_codes(l->db, 1);
    sqlite3_busy_timeout(l->db, BUSY_TIMEOUT_MS);
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(l->db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(s, 0);
        rc = mode && !strcmp(mode, "wal") ? SQLITE_OK : SQLITE_CANTOPEN;
    }
    sqlite3_finalize(s);
    if (rc)
        return lsq_fail(l, rc, err, "switching to WAL mode");
    /* Events are the system of record: every commit reaches the disk. */
    rc = sqlite3_exec(l->db,
                      "PRAGMA synchronous=FULL;"
                      "PRAGMA foreign_keys=OFF;"
                      "PRAGMA cache_size=-16384;"
                      "PRAGMA temp_store=MEMORY;",
                      NULL, NULL, NULL);
    if (rc)
        return lsq_fail(l, rc, err, "setting pragmas");
    int64_t version;
    if ((rc = pragma_int(l, "PRAGMA user_version", &version, err)))
        return rc;
    if (version > SCHEMA_VERSION)
        return stele_err_set(err, STELE_EFATAL,
                             "%s: log schema version %lld is newer than this "
                             "stele's (%d)",
                             l->path, (long long)version, SCHEMA_VERSION);
    if (version < SCHEMA_VERSION && (rc = schema_ensure(l, err)))
        return rc;
    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(l->db, stmt_sql[i], -1,
                                SQLITE_PREPARE_PERSISTENT, &l->st[i], NULL);
        if (rc)
            return lsq_fail(l, rc, err, "preparing %s", stmt_sql[i]);
    }
    return 0;
}

int stele_log_open_sqlite(const char *path, stele_log **out, stele_err *err)
{
    if (!path || !*path || !out)
        return stele_err_set(err, STELE_EINVAL, "open_sqlite: no path");
    *out = NULL;
    lsq_log *l = calloc(1, sizeof *l);
    if (!l || !(l->path = strdup(path)) || !(l->topics = stele_map_new())) {
        if (l)
            sq_close(&l->base);
        return stele_err_set(err, STELE_ENOMEM, "%s: opening the log", path);
    }
    l->base.ops = &sqlite_ops;
    int rc = sqlite3_open_v2(
        path, &l->db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc)
        rc = lsq_fail(l, rc, err, "opening the log");
    else if (!(l->realpath = realpath(path, NULL)))
        rc = stele_err_set(err, STELE_EIO, "%s: cannot resolve the path", path);
    else
        rc = configure(l, err);
    if (rc) {
        sq_close(&l->base);
        return rc;
    }
    *out = &l->base;
    return 0;
}

static const stele_log_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .topic_ensure = sq_topic_ensure,
    .topic_partitions = sq_topic_partitions,
    .txn_begin = lsq_txn_begin,
    .txn_produce = lsq_txn_produce,
    .txn_send_offset = lsq_txn_send_offset,
    .txn_commit = lsq_txn_commit,
    .txn_abort = lsq_txn_abort,
    .read = lsq_read,
    .end_offset = lsq_end_offset,
    .get_latest = lsq_get_latest,
    .committed = lsq_committed,
    .delete_before = lsq_delete_before,
    .consumer_new = lsq_consumer_new,
    .consumer_poll = lsq_consumer_poll,
    .consumer_seek = lsq_consumer_seek,
    .consumer_rewind = lsq_consumer_rewind,
    .consumer_assignment = lsq_consumer_assignment,
    .consumer_close = lsq_consumer_close,
    .local = true,
};
