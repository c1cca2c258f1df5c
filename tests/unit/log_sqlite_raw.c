/*
 * log_sqlite_raw.c — the embedded log's stored records reached behind its
 * back for the conformance suite (log_conformance_raw): a bit flipped in
 * a column, a checksum set to NULL, a file made by hand with the schema
 * before checksums (version 1, as an earlier stele left it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "log_sqlite_test.h"

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

#define WHERE_RECORD                                                           \
    " WHERE topic_id = (SELECT id FROM topics WHERE name = ?1)"                \
    " AND part = ?2 AND off = ?3"

static sqlite3_stmt *record_stmt(sqlite3 *db, const char *sql,
                                 const char *topic, int32_t partition,
                                 int64_t offset)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_bind_text(s, 1, topic, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 2, partition);
    sqlite3_bind_int64(s, 3, offset);
    return s;
}

static void sl_raw_flip(void *opaque, const char *topic, int32_t partition,
                        int64_t offset, const char *column)
{
    fixture *f = opaque;
    sqlite3 *db = raw_open(f->path);
    int changed = 0;
    for (int t = 0; t < 2; t++) {
        const char *table = t ? "compacted" : "records";
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT %s FROM %s" WHERE_RECORD, column,
                 table);
        sqlite3_stmt *s = record_stmt(db, sql, topic, partition, offset);
        if (sqlite3_step(s) != SQLITE_ROW) {
            sqlite3_finalize(s);
            continue;
        }
        int n = sqlite3_column_bytes(s, 0);
        assert_true(n > 0);
        unsigned char *bytes = malloc((size_t)n);
        assert_non_null(bytes);
        memcpy(bytes, sqlite3_column_blob(s, 0), (size_t)n);
        sqlite3_finalize(s);
        bytes[n - 1] ^= 1;
        snprintf(sql, sizeof sql, "UPDATE %s SET %s = ?4" WHERE_RECORD, table,
                 column);
        s = record_stmt(db, sql, topic, partition, offset);
        sqlite3_bind_blob(s, 4, bytes, n, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(s), SQLITE_DONE);
        sqlite3_finalize(s);
        free(bytes);
        changed += sqlite3_changes(db);
    }
    assert_int_equal(changed, 1);
    sqlite3_close(db);
}

static void sl_raw_uncheck(void *opaque, const char *topic, int32_t partition,
                           int64_t offset)
{
    fixture *f = opaque;
    sqlite3 *db = raw_open(f->path);
    int changed = 0;
    for (int t = 0; t < 2; t++) {
        char sql[256];
        snprintf(sql, sizeof sql, "UPDATE %s SET crc = NULL" WHERE_RECORD,
                 t ? "compacted" : "records");
        sqlite3_stmt *s = record_stmt(db, sql, topic, partition, offset);
        assert_int_equal(sqlite3_step(s), SQLITE_DONE);
        sqlite3_finalize(s);
        changed += sqlite3_changes(db);
    }
    assert_int_equal(changed, 1);
    sqlite3_close(db);
}

static void old_path(const fixture *f, char *buf, size_t n)
{
    snprintf(buf, n, "%s/old.db", f->dir);
}

/* The tables as schema version 1 made them. */
static const char *const v1_schema =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " partitions INTEGER NOT NULL, compacted INTEGER NOT NULL);"
    "CREATE TABLE partitions(topic_id INTEGER NOT NULL,"
    " part INTEGER NOT NULL, next_offset INTEGER NOT NULL,"
    " PRIMARY KEY(topic_id, part)) WITHOUT ROWID;"
    "CREATE TABLE records(topic_id INTEGER NOT NULL, part INTEGER NOT NULL,"
    " off INTEGER NOT NULL, ts INTEGER NOT NULL, key BLOB, value BLOB,"
    " headers BLOB, PRIMARY KEY(topic_id, part, off)) WITHOUT ROWID;"
    "CREATE TABLE compacted(topic_id INTEGER NOT NULL,"
    " part INTEGER NOT NULL, key BLOB NOT NULL, off INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, value BLOB, headers BLOB,"
    " PRIMARY KEY(topic_id, part, key)) WITHOUT ROWID;"
    "CREATE UNIQUE INDEX compacted_by_offset ON compacted(topic_id, part, off);"
    "CREATE TABLE group_offsets(grp TEXT NOT NULL,"
    " topic_id INTEGER NOT NULL, part INTEGER NOT NULL,"
    " next_offset INTEGER NOT NULL,"
    " PRIMARY KEY(grp, topic_id, part)) WITHOUT ROWID;"
    "PRAGMA user_version = 1;";

/* the header blob of "h" = "1" */
#define V1_HEADERS "x'010000000100000068000100000031'"

static void sl_raw_make_old(void *opaque, const char *topic,
                            const char *compacted)
{
    char path[160], sql[1024];
    old_path(opaque, path, sizeof path);
    sqlite3 *db = raw_open(path);
    raw_exec(db, v1_schema);
    snprintf(sql, sizeof sql,
             "INSERT INTO topics VALUES (1, '%s', 1, 0), (2, '%s', 1, 1);"
             "INSERT INTO partitions VALUES (1, 0, 1), (2, 0, 1);"
             "INSERT INTO records VALUES (1, 0, 0, 1000, CAST('k' AS BLOB),"
             " CAST('v' AS BLOB), " V1_HEADERS ");"
             "INSERT INTO compacted VALUES (2, 0, CAST('k' AS BLOB), 0, 1000,"
             " CAST('v' AS BLOB), " V1_HEADERS ");",
             topic, compacted);
    raw_exec(db, sql);
    sqlite3_close(db);
}

static int sl_raw_open_old(void *opaque, stele_log **out, stele_err *err)
{
    char path[160];
    old_path(opaque, path, sizeof path);
    return stele_log_open_sqlite(path, out, err);
}

static void sl_raw_remove_old(void *opaque)
{
    (void)opaque; /* in the fixture's dir, which teardown empties */
}

const log_conformance_raw sl_raw = {
    .flip = sl_raw_flip,
    .uncheck = sl_raw_uncheck,
    .make_old = sl_raw_make_old,
    .open_old = sl_raw_open_old,
    .remove_old = sl_raw_remove_old,
};
