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

static const stele_log_ops sqlite_ops;

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
    return rc ? lsq_status_of(rc) : 0;
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
    return rc ? lsq_fail(l, rc, err, "adding checksums to table %s", table) : 0;
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
        rc = sqlite3_prepare_v3(l->db, lsq_stmt_sql[i], -1,
                                SQLITE_PREPARE_PERSISTENT, &l->st[i], NULL);
        if (rc)
            return lsq_fail(l, rc, err, "preparing %s", lsq_stmt_sql[i]);
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
    .topic_ensure = lsq_topic_ensure,
    .topic_partitions = lsq_topic_partitions,
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
