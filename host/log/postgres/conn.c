/*
 * conn.c — talking to the PostgreSQL server for the log: the
 * prepared statements, binary parameters and results, classifying and
 * wording errors, and connections (session setup, running a statement,
 * replacing a lost session).
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/text.h"

/* ------------------------------------------------------------------ */
/* Statements, prepared on every connection as lpg_<number>             */

/* Database OID of the session, for pg_locks. */
#define THIS_DB                                                                \
    "(SELECT oid FROM pg_catalog.pg_database"                                  \
    " WHERE datname = current_database())"
#define ROW_COLUMNS "off, ts, key, value, headers, crc"

/* retention: at most $5 records from the lowest offset, before the first
 * one to keep (found in offset order: the walk costs the records it
 * deletes) */
#define EXPIRE_SQL(table)                                                      \
    "WITH b AS (SELECT least($3::int8, min(off) + $5::int8) AS b FROM " table  \
    " WHERE topic_id = $1::int4 AND part = $2::int4)"                          \
    " DELETE FROM " table " WHERE topic_id = $1::int4 AND part = $2::int4"     \
    " AND off < coalesce((SELECT off FROM " table                              \
    " WHERE topic_id = $1::int4 AND part = $2::int4"                           \
    " AND off < (SELECT b FROM b) AND ts >= $4::int8"                          \
    " ORDER BY off LIMIT 1), (SELECT b FROM b))"

static const char *const stmt_sql[S_COUNT] = {
    [S_TOPIC_GET] = "SELECT id, partitions, compacted FROM stele_log.topics"
                    " WHERE name = $1::text",
    [S_TOPIC_UIDS] = "SELECT uid FROM stele_log.partitions"
                     " WHERE topic_id = $1::int4 ORDER BY part",
    [S_PART_END] = "SELECT next_offset FROM stele_log.partitions"
                   " WHERE topic_id = $1::int4 AND part = $2::int4",
    [S_PART_ENDS] = "SELECT part, next_offset FROM stele_log.partitions"
                    " WHERE topic_id = $1::int4",
    [S_BUMP] = "UPDATE stele_log.partitions"
               " SET next_offset = next_offset + $3::int8"
               " WHERE topic_id = $1::int4 AND part = $2::int4"
               " RETURNING next_offset",
    /* The owner row is locked FOR SHARE until the commit: a new owner's
     * claim (an UPDATE of that row) waits for it, so the new owner reads
     * the group offsets only after this commit. */
    [S_FENCE] = "SELECT o.member = $3::int8 AND EXISTS (SELECT 1"
                " FROM pg_catalog.pg_locks k WHERE k.locktype = 'advisory'"
                " AND k.database = " THIS_DB
                " AND k.classid = $1::int4::oid AND k.objid = $2::int4::oid"
                " AND k.objsubid = 2 AND k.pid = $4::int4 AND k.granted)"
                " FROM stele_log.owners o"
                " WHERE o.group_id = $1 AND o.puid = $2 FOR SHARE OF o",
    /* Many records of one partition per statement: arrays of offsets,
     * timestamps, keys, values, headers and checksums (binary), one row
     * each. */
    [S_REC_INSERT] =
        "INSERT INTO stele_log.records(topic_id, part, off, ts, key, value,"
        " headers, crc) SELECT $1::int4, $2::int4, u.off, u.ts, u.key,"
        " u.value, u.headers, u.crc FROM unnest($3::int8[], $4::int8[],"
        " $5::bytea[], $6::bytea[], $7::bytea[], $8::int8[])"
        " AS u(off, ts, key, value, headers, crc)",
    /* Keys are distinct within one statement (the transaction keeps the
     * last record of each key: the others are compacted away at once). */
    [S_CMP_UPSERT] =
        "INSERT INTO stele_log.compacted(topic_id, part, off, ts, key, value,"
        " headers, crc) SELECT $1::int4, $2::int4, u.off, u.ts, u.key,"
        " u.value, u.headers, u.crc FROM unnest($3::int8[], $4::int8[],"
        " $5::bytea[], $6::bytea[], $7::bytea[], $8::int8[])"
        " AS u(off, ts, key, value, headers, crc)"
        " ON CONFLICT (topic_id, part, key) DO UPDATE SET off = excluded.off,"
        " ts = excluded.ts, value = excluded.value,"
        " headers = excluded.headers, crc = excluded.crc",
    [S_GRP_SET] = "INSERT INTO stele_log.group_offsets(grp, topic_id, part,"
                  " next_offset) VALUES ($1::text, $2::int4, $3::int4,"
                  " $4::int8) ON CONFLICT (grp, topic_id, part)"
                  " DO UPDATE SET next_offset = excluded.next_offset",
    [S_GRP_GET] = "SELECT next_offset FROM stele_log.group_offsets"
                  " WHERE grp = $1::text AND topic_id = $2::int4"
                  " AND part = $3::int4",
    [S_NOTIFY] = "SELECT pg_catalog.pg_notify($1::text, '')",
    [S_REC_EXPIRE] = EXPIRE_SQL("stele_log.records"),
    [S_CMP_EXPIRE] = EXPIRE_SQL("stele_log.compacted"),
    [S_REC_READ] = "SELECT " ROW_COLUMNS " FROM stele_log.records"
                   " WHERE topic_id = $1::int4 AND part = $2::int4"
                   " AND off >= $3::int8 ORDER BY off LIMIT $4::int8",
    /* by the index records_by_key */
    [S_REC_READ_KEY] = "SELECT " ROW_COLUMNS " FROM stele_log.records"
                       " WHERE topic_id = $1::int4 AND part = $2::int4"
                       " AND key = $3::bytea AND off >= $4::int8"
                       " ORDER BY off LIMIT $5::int8",
    [S_CMP_READ] = "SELECT " ROW_COLUMNS " FROM stele_log.compacted"
                   " WHERE topic_id = $1::int4 AND part = $2::int4"
                   " AND off >= $3::int8 ORDER BY off LIMIT $4::int8",
    [S_CMP_GET] = "SELECT " ROW_COLUMNS " FROM stele_log.compacted"
                  " WHERE topic_id = $1::int4 AND part = $2::int4"
                  " AND key = $3::bytea",
    /* DO UPDATE, not DO NOTHING: RETURNING then always has the row, also
     * when another session inserted it a moment ago. */
    [S_GROUP_ID] = "INSERT INTO stele_log.groups(name) VALUES ($1::text)"
                   " ON CONFLICT (name) DO UPDATE SET name = excluded.name"
                   " RETURNING id",
    [S_MEMBER_NEW] = "SELECT nextval('stele_log.members')",
    [S_TRY_LOCK64] = "SELECT pg_catalog.pg_try_advisory_lock($1::int8)",
    [S_MEMBERS_LIVE] = "SELECT count(*) FROM pg_catalog.pg_locks"
                       " WHERE locktype = 'advisory' AND database = " THIS_DB
                       " AND classid = $1::int4::oid AND objsubid = 1"
                       " AND granted",
    /* Members whose session has been idle (no poll) for over $2 ms:
     * their sessions are ended, which releases their locks. */
    [S_MEMBERS_EVICT] =
        "SELECT k.pid, pg_catalog.pg_terminate_backend(k.pid)"
        " FROM pg_catalog.pg_locks k JOIN pg_catalog.pg_stat_activity a"
        " ON a.pid = k.pid WHERE k.locktype = 'advisory'"
        " AND k.database = " THIS_DB " AND k.classid = $1::int4::oid"
        " AND k.objsubid = 1 AND k.granted"
        " AND k.pid <> pg_catalog.pg_backend_pid() AND a.state = 'idle'"
        " AND a.state_change < pg_catalog.clock_timestamp()"
        " - $2::int8 * interval '1 millisecond'",
    [S_LOCKS_HELD] = "SELECT objid::int8 FROM pg_catalog.pg_locks"
                     " WHERE locktype = 'advisory' AND database = " THIS_DB
                     " AND classid = $1::int4::oid AND objsubid = 2"
                     " AND granted",
    [S_TRY_LOCK] = "SELECT pg_catalog.pg_try_advisory_lock($1::int4, $2::int4)",
    [S_UNLOCK] = "SELECT pg_catalog.pg_advisory_unlock($1::int4, $2::int4)",
    [S_CLAIM] = "INSERT INTO stele_log.owners(group_id, puid, member, epoch,"
                " since) VALUES ($1::int4, $2::int4, $3::int8, 1, now())"
                " ON CONFLICT (group_id, puid) DO UPDATE"
                " SET member = excluded.member,"
                " epoch = stele_log.owners.epoch + 1, since = now()",
};

/* ------------------------------------------------------------------ */
/* Parameters and results                                               */

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

void lpg_p_i32(lpg_params *p, int32_t x)
{
    put_be(p->buf[p->n], (uint32_t)x, 4);
    p->v[p->n] = (const char *)p->buf[p->n];
    p->len[p->n] = 4;
    p->fmt[p->n++] = 1;
}

void lpg_p_i64(lpg_params *p, int64_t x)
{
    put_be(p->buf[p->n], (uint64_t)x, 8);
    p->v[p->n] = (const char *)p->buf[p->n];
    p->len[p->n] = 8;
    p->fmt[p->n++] = 1;
}

void lpg_p_bytes(lpg_params *p, const void *data, size_t len)
{
    /* libpq wants a non-NULL pointer for an empty non-NULL value. */
    p->v[p->n] = data ? (len ? data : "") : NULL;
    p->len[p->n] = (int)len;
    p->fmt[p->n++] = 1;
}

void lpg_p_text(lpg_params *p, const char *s)
{
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

static uint64_t get_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

int64_t lpg_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8)
        return 0;
    return (int64_t)get_be((const unsigned char *)PQgetvalue(r, row, col), 8);
}

int32_t lpg_i32(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 4)
        return 0;
    return (int32_t)(uint32_t)get_be(
        (const unsigned char *)PQgetvalue(r, row, col), 4);
}

bool lpg_bool(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetlength(r, row, col) == 1 &&
           PQgetvalue(r, row, col)[0] != 0;
}

/* ------------------------------------------------------------------ */
/* Errors                                                               */

bool lpg_lost(PGconn *c, const PGresult *r)
{
    if (PQstatus(c) != CONNECTION_OK)
        return true;
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return st && (!strncmp(st, "08", 2) || !strncmp(st, "57P0", 4));
}

static int classify(PGconn *c, const PGresult *r)
{
    if (lpg_lost(c, r))
        return STELE_ERETRY;
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (!st || strlen(st) != 5)
        return STELE_EIO;
    /* serialization, deadlock, resources, lock timeouts, cancels */
    if (!strncmp(st, "40", 2) || !strncmp(st, "53", 2) ||
        !strcmp(st, "55P03") || !strcmp(st, "57014"))
        return STELE_ERETRY;
    /* an offset taken twice: the tables were changed behind our back */
    if (!strcmp(st, "23505"))
        return STELE_EFATAL;
    if (!strncmp(st, "22", 2) || !strncmp(st, "54", 2))
        return STELE_EINVAL; /* bad data, a key too large for the index */
    return STELE_EIO;
}

static int vfail(lpg_log *l, PGconn *c, const PGresult *r, stele_err *err,
                 const char *fmt, va_list ap)
{
    char what[200], msg[300];
    vsnprintf(what, sizeof what, fmt, ap);
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *primary =
        r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    stele_text_tidy(primary                         ? primary
                    : r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r)
                                                    : PQerrorMessage(c),
                    msg, sizeof msg);
    int code = classify(c, r);
    stele_err e;
    stele_err_set(
        &e, code, "PostgreSQL log at %s: %s: %s%s%s%s%s", l->where, what,
        lpg_lost(c, r) && strncmp(what, "cannot ", 7) ? "connection lost: "
                                                      : "",
        *msg ? msg : "no answer from the server", st ? " (SQLSTATE " : "",
        st ? st : "", st ? ")" : "");
    stele_text_scrub(e.msg, l->secret);
    if (err)
        *err = e;
    return code;
}

int lpg_fail(lpg_log *l, PGconn *c, const PGresult *r, stele_err *err,
             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int code = vfail(l, c, r, err, fmt, ap);
    va_end(ap);
    return code;
}

/* ------------------------------------------------------------------ */
/* Connections                                                          */

int lpg_send(PGconn *c, enum lpg_stmt s, const lpg_params *p)
{
    char name[16];
    snprintf(name, sizeof name, "lpg_%d", (int)s);
    return PQsendQueryPrepared(c, name, p ? p->n : 0, p ? p->v : NULL,
                               p ? p->len : NULL, p ? p->fmt : NULL, 1)
               ? 0
               : -1;
}

PGresult *lpg_next_result(PGconn *c)
{
    /* In pipeline mode a NULL ends each statement's results; a second
     * one in a row means nothing more is due. */
    for (int nulls = 0; nulls < 2; nulls++) {
        PGresult *r = PQgetResult(c);
        if (r)
            return r;
        if (PQstatus(c) != CONNECTION_OK)
            break;
    }
    return NULL;
}

int lpg_simple(lpg_log *l, PGconn *c, const char *sql, stele_err *err)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = lpg_fail(l, c, r, err, "%.60s", sql);
    PQclear(r);
    return rc;
}

static void quiet(void *arg, const char *message)
{
    (void)arg, (void)message;
}

/* Session settings: no NOTICE chatter ("relation exists, skipping"); and
 * libpq does not print to stderr what the server says between statements
 * (a FATAL before a session is cut): the call that finds it reports it. */
static int session_settings(lpg_log *l, PGconn *c, stele_err *err)
{
    PQsetNoticeProcessor(c, quiet, NULL);
    return lpg_simple(l, c, "SET client_min_messages = warning", err);
}

/* Every prepared statement, in one round trip. */
int lpg_prepare_all(lpg_log *l, PGconn *c, stele_err *err)
{
    int rc = 0;
    if (!PQenterPipelineMode(c))
        return lpg_fail(l, c, NULL, err, "preparing statements");
    bool sent = true;
    for (int i = 0; i < S_COUNT && sent; i++) {
        char name[16];
        snprintf(name, sizeof name, "lpg_%d", i);
        sent = PQsendPrepare(c, name, stmt_sql[i], 0, NULL);
    }
    sent = sent && PQpipelineSync(c);
    PGresult *r;
    int i = 0;
    /* One result and a NULL per prepare, then the sync. */
    while (sent) {
        r = PQgetResult(c);
        if (!r) {
            if (PQstatus(c) != CONNECTION_OK)
                break;
            continue;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (st != PGRES_COMMAND_OK && !rc)
            rc = lpg_fail(l, c, r, err, "preparing %.80s",
                          i < S_COUNT ? stmt_sql[i] : "?");
        i++;
        PQclear(r);
    }
    if (!sent && !rc)
        rc = lpg_fail(l, c, NULL, err, "preparing statements");
    PQexitPipelineMode(c);
    return rc;
}

static int session_setup(lpg_log *l, PGconn *c, stele_err *err)
{
    int rc = session_settings(l, c, err);
    return rc ? rc : lpg_prepare_all(l, c, err);
}

static void set_where(lpg_log *l, PGconn *c)
{
    const char *h = PQhost(c), *p = PQport(c);
    snprintf(l->where, sizeof l->where, "%s:%s", h && *h ? h : "localhost",
             p && *p ? p : "5432");
}

int lpg_connect_unprepared(lpg_log *l, const char *app, PGconn **out,
                           stele_err *err)
{
    /* Defaults the connection string (or PG* variables) may override. */
    const char *kw[4], *val[4];
    int k = 0;
    kw[k] = "fallback_application_name", val[k++] = app;
    if (!getenv("PGCONNECT_TIMEOUT"))
        kw[k] = "connect_timeout", val[k++] = "10";
    kw[k] = "dbname", val[k++] = l->conninfo;
    kw[k] = NULL, val[k] = NULL;
    PGconn *c = PQconnectdbParams(kw, val, 1);
    *out = NULL;
    if (!c)
        return stele_err_set(err, STELE_ENOMEM, "PostgreSQL log: connecting");
    set_where(l, c);
    int rc;
    if (PQstatus(c) != CONNECTION_OK)
        rc = lpg_fail(l, c, NULL, err, "cannot connect");
    else
        rc = session_settings(l, c, err);
    if (rc) {
        PQfinish(c);
        return rc;
    }
    *out = c;
    return 0;
}

int lpg_connect(lpg_log *l, const char *app, PGconn **out, stele_err *err)
{
    int rc = lpg_connect_unprepared(l, app, out, err);
    if (!rc && (rc = lpg_prepare_all(l, *out, err))) {
        PQfinish(*out);
        *out = NULL;
    }
    return rc;
}

int lpg_reconnect(lpg_log *l, PGconn *c, stele_err *err)
{
    PQreset(c);
    if (PQstatus(c) != CONNECTION_OK)
        return lpg_fail(l, c, NULL, err, "cannot reconnect");
    return session_setup(l, c, err);
}

int lpg_run(lpg_log *l, PGconn *c, enum lpg_stmt s, const lpg_params *p,
            PGresult **out, stele_err *err, const char *what)
{
    *out = NULL;
    for (int attempt = 0;; attempt++) {
        if (PQstatus(c) != CONNECTION_OK) {
            if (c != l->conn)
                return lpg_fail(l, c, NULL, err, "%s", what);
            int rc = lpg_reconnect(l, c, err);
            if (rc)
                return rc;
        }
        char name[16];
        snprintf(name, sizeof name, "lpg_%d", (int)s);
        PGresult *r = PQexecPrepared(c, name, p ? p->n : 0, p ? p->v : NULL,
                                     p ? p->len : NULL, p ? p->fmt : NULL, 1);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            *out = r;
            return 0;
        }
        /* The session died while idle (a server restart): nothing ran, so
         * a new session may run it. Only on the log's own connection; a
         * consumer's connection holds locks the consumer must know lost. */
        if (attempt == 0 && c == l->conn && lpg_lost(c, r)) {
            PQclear(r);
            if (PQstatus(c) == CONNECTION_OK)
                PQreset(c); /* terminated, but libpq has not noticed */
            continue;
        }
        int rc = lpg_fail(l, c, r, err, "%s", what);
        PQclear(r);
        return rc;
    }
}
