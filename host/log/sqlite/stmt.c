/*
 * stmt.c — the SQLite log's statements (prepared once per handle, by
 * open.c) and the helpers every file of the backend runs them with:
 * lsq_exec, lsq_step_done and lsq_fail (SQLite status to STELE_E*).
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/err.h"

#define ROW_COLUMNS "off, ts, key, value, headers, crc"

/* retention: at most ?5 records from the lowest offset, before the first
 * one to keep (found in offset order: the walk costs the records it
 * deletes) */
#define EXPIRE_SQL(table)                                                      \
    "WITH b(b) AS (SELECT min(?3, min(off) + ?5) FROM " table                  \
    " WHERE topic_id = ?1 AND part = ?2)"                                      \
    " DELETE FROM " table " WHERE topic_id = ?1 AND part = ?2"                 \
    " AND off < coalesce((SELECT off FROM " table                              \
    " WHERE topic_id = ?1 AND part = ?2 AND off < (SELECT b FROM b)"           \
    " AND ts >= ?4 ORDER BY off LIMIT 1), (SELECT b FROM b))"

const char *const lsq_stmt_sql[ST_COUNT] = {
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

int lsq_status_of(int rc)
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
    return stele_err_set(err, lsq_status_of(rc), "%s: %s: %s (sqlite %d)",
                         l->path, what, msg, rc);
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
    return rc ? lsq_fail(l, rc, err, "%s", lsq_stmt_sql[id]) : 0;
}
