/*
 * log_pg.c — the event log in PostgreSQL tables: opening, connections,
 * errors, the schema and topics. docs/postgres-event-store.md describes
 * the design; in short:
 *
 *   stele_log.topics(id, name, partitions, compacted)
 *   stele_log.partitions(topic_id, part, uid, next_offset)  the watermark
 *   stele_log.records(topic_id, part, off, ts, key, value, headers)
 *   stele_log.compacted(topic_id, part, key, off, ...)  latest per key
 *   stele_log.group_offsets(grp, topic_id, part, next_offset)
 *   stele_log.groups(id, name), stele_log.owners(group_id, puid, member,
 *   epoch, since)  consumer groups (log_pg_consumer.c)
 *
 * A log transaction is kept in memory and written at commit as one
 * PostgreSQL transaction (log_pg_txn.c), so offsets are assigned at commit
 * under the partition row's lock. Consumers hold session advisory locks on
 * a connection of their own and are woken by LISTEN/NOTIFY.
 *
 * A connection whose server went away fails the call with STELE_ERETRY;
 * the log's own connection is replaced by the next call (at once, when the
 * session is found dead before a statement ran).
 */
#include "log_pg_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/text.h"

#define SCHEMA_VERSION 1
/* pg_advisory_xact_lock key serializing the schema's creation between
 * processes (not the store's 1398031692). */
#define DDL_LOCK_KEY "1398033479"

static const stele_log_ops pg_ops;

/* Database OID of the session, for pg_locks. */
#define THIS_DB                                                                \
    "(SELECT oid FROM pg_catalog.pg_database"                                  \
    " WHERE datname = current_database())"
#define ROW_COLUMNS "off, ts, key, value, headers"

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
     * timestamps, keys, values and headers (binary), one row each. */
    [S_REC_INSERT] =
        "INSERT INTO stele_log.records(topic_id, part, off, ts, key, value,"
        " headers) SELECT $1::int4, $2::int4, u.off, u.ts, u.key, u.value,"
        " u.headers FROM unnest($3::int8[], $4::int8[], $5::bytea[],"
        " $6::bytea[], $7::bytea[]) AS u(off, ts, key, value, headers)",
    /* Keys are distinct within one statement (the transaction keeps the
     * last record of each key: the others are compacted away at once). */
    [S_CMP_UPSERT] =
        "INSERT INTO stele_log.compacted(topic_id, part, off, ts, key, value,"
        " headers) SELECT $1::int4, $2::int4, u.off, u.ts, u.key, u.value,"
        " u.headers FROM unnest($3::int8[], $4::int8[], $5::bytea[],"
        " $6::bytea[], $7::bytea[]) AS u(off, ts, key, value, headers)"
        " ON CONFLICT (topic_id, part, key) DO UPDATE SET off = excluded.off,"
        " ts = excluded.ts, value = excluded.value,"
        " headers = excluded.headers",
    [S_GRP_SET] = "INSERT INTO stele_log.group_offsets(grp, topic_id, part,"
                  " next_offset) VALUES ($1::text, $2::int4, $3::int4,"
                  " $4::int8) ON CONFLICT (grp, topic_id, part)"
                  " DO UPDATE SET next_offset = excluded.next_offset",
    [S_GRP_GET] = "SELECT next_offset FROM stele_log.group_offsets"
                  " WHERE grp = $1::text AND topic_id = $2::int4"
                  " AND part = $3::int4",
    [S_NOTIFY] = "SELECT pg_catalog.pg_notify($1::text, '')",
    [S_REC_READ] = "SELECT " ROW_COLUMNS " FROM stele_log.records"
                   " WHERE topic_id = $1::int4 AND part = $2::int4"
                   " AND off >= $3::int8 ORDER BY off LIMIT $4::int8",
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

static const char *const schema_sql =
    "BEGIN;"
    "SELECT pg_catalog.pg_advisory_xact_lock(" DDL_LOCK_KEY ");"
    "CREATE SCHEMA IF NOT EXISTS stele_log;"
    "CREATE TABLE IF NOT EXISTS stele_log.meta("
    " key text PRIMARY KEY, value text NOT NULL);"
    "INSERT INTO stele_log.meta VALUES ('schema_version', '1')"
    " ON CONFLICT DO NOTHING;"
    "CREATE TABLE IF NOT EXISTS stele_log.topics("
    " id serial PRIMARY KEY, name text NOT NULL UNIQUE,"
    " partitions integer NOT NULL, compacted boolean NOT NULL);"
    "CREATE TABLE IF NOT EXISTS stele_log.partitions("
    " topic_id integer NOT NULL, part integer NOT NULL,"
    " uid integer GENERATED ALWAYS AS IDENTITY UNIQUE,"
    " next_offset bigint NOT NULL DEFAULT 0,"
    " PRIMARY KEY(topic_id, part));"
    "CREATE TABLE IF NOT EXISTS stele_log.records("
    " topic_id integer NOT NULL, part integer NOT NULL, off bigint NOT NULL,"
    " ts bigint NOT NULL, key bytea, value bytea, headers bytea,"
    " PRIMARY KEY(topic_id, part, off));"
    "CREATE TABLE IF NOT EXISTS stele_log.compacted("
    " topic_id integer NOT NULL, part integer NOT NULL, key bytea NOT NULL,"
    " off bigint NOT NULL, ts bigint NOT NULL, value bytea, headers bytea,"
    " PRIMARY KEY(topic_id, part, key));"
    "CREATE UNIQUE INDEX IF NOT EXISTS compacted_by_offset"
    " ON stele_log.compacted(topic_id, part, off);"
    "CREATE TABLE IF NOT EXISTS stele_log.groups("
    " id serial PRIMARY KEY, name text NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS stele_log.group_offsets("
    " grp text NOT NULL, topic_id integer NOT NULL, part integer NOT NULL,"
    " next_offset bigint NOT NULL, PRIMARY KEY(grp, topic_id, part));"
    "CREATE TABLE IF NOT EXISTS stele_log.owners("
    " group_id integer NOT NULL, puid integer NOT NULL,"
    " member bigint NOT NULL, epoch bigint NOT NULL,"
    " since timestamptz NOT NULL, PRIMARY KEY(group_id, puid));"
    "CREATE SEQUENCE IF NOT EXISTS stele_log.members;"
    "COMMIT";

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

/* A message on one line: runs of whitespace become one space. */
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
static int prepare_all(lpg_log *l, PGconn *c, stele_err *err)
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
    return rc ? rc : prepare_all(l, c, err);
}

static void set_where(lpg_log *l, PGconn *c)
{
    const char *h = PQhost(c), *p = PQport(c);
    snprintf(l->where, sizeof l->where, "%s:%s", h && *h ? h : "localhost",
             p && *p ? p : "5432");
}

static int connect_raw(lpg_log *l, const char *app, PGconn **out,
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
    int rc = connect_raw(l, app, out, err);
    if (!rc && (rc = prepare_all(l, *out, err))) {
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

/* ------------------------------------------------------------------ */
/* Topics                                                               */

static void topic_free(void *p)
{
    lpg_topic *t = p;
    if (t)
        free(t->uids);
    free(t);
}

static int topic_load(lpg_log *l, const char *name, lpg_topic **out,
                      stele_err *err)
{
    lpg_params p = {0};
    lpg_p_text(&p, name);
    PGresult *r;
    char what[300];
    snprintf(what, sizeof what, "looking up topic '%s'", name);
    int rc = lpg_run(l, l->conn, S_TOPIC_GET, &p, &r, err, what);
    *out = NULL;
    if (rc || PQntuples(r) == 0) {
        PQclear(r);
        return rc;
    }
    size_t len = strlen(name);
    lpg_topic *t = calloc(1, sizeof *t + len + 1);
    if (!t) {
        PQclear(r);
        return stele_err_set(err, STELE_ENOMEM, "topic '%s'", name);
    }
    t->id = lpg_i32(r, 0, 0);
    t->partitions = lpg_i32(r, 0, 1);
    t->compacted = lpg_bool(r, 0, 2);
    memcpy(t->name, name, len + 1);
    PQclear(r);
    p.n = 0;
    lpg_p_i32(&p, t->id);
    if ((rc = lpg_run(l, l->conn, S_TOPIC_UIDS, &p, &r, err, what))) {
        topic_free(t);
        return rc;
    }
    if (PQntuples(r) != t->partitions) {
        rc = stele_err_set(err, STELE_EFATAL,
                           "PostgreSQL log at %s: topic '%s' has %d "
                           "partitions but %d partition rows",
                           l->where, name, t->partitions, PQntuples(r));
    } else if (!(t->uids = malloc((size_t)t->partitions * sizeof *t->uids))) {
        rc = stele_err_set(err, STELE_ENOMEM, "topic '%s'", name);
    } else {
        for (int32_t i = 0; i < t->partitions; i++)
            t->uids[i] = lpg_i32(r, i, 0);
    }
    PQclear(r);
    if (rc) {
        topic_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int lpg_topic_get(lpg_log *l, const char *name, const lpg_topic **out,
                  stele_err *err)
{
    lpg_topic *t = stele_map_gets(l->topics, name);
    if (!t) {
        int rc = topic_load(l, name, &t, err);
        if (rc)
            return rc;
        if (!t)
            return stele_err_set(err, STELE_ENOTFOUND,
                                 "PostgreSQL log at %s: topic '%s' does not "
                                 "exist",
                                 l->where, name);
        if (stele_map_put(l->topics, t->name, strlen(t->name), t, NULL)) {
            topic_free(t);
            return stele_err_set(err, STELE_ENOMEM, "topic '%s'", name);
        }
    }
    *out = t;
    return 0;
}

int lpg_check_partition(const lpg_topic *t, int32_t partition, stele_err *err)
{
    return stele_log_check_partition(t->name, t->partitions, partition, err);
}

static int topic_compare(const lpg_topic *t, const stele_topic_spec *spec,
                         stele_err *err)
{
    return stele_log_topic_matches(t->name, t->partitions, t->compacted, spec,
                                   err);
}

/* Runs sql with text parameters; *out (may be NULL) gets the result. */
static int exec_text(lpg_log *l, const char *sql, int n,
                     const char *const *vals, PGresult **out, stele_err *err,
                     const char *what)
{
    PGresult *r = PQexecParams(l->conn, sql, n, NULL, vals, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out)
            *out = r;
        else
            PQclear(r);
        return 0;
    }
    int rc = lpg_fail(l, l->conn, r, err, "%s", what);
    PQclear(r);
    return rc;
}

/* Inserts the topic and its partitions in one transaction; another
 * process creating it at the same time makes this a no-op. */
static int topic_create(lpg_log *l, const stele_topic_spec *spec,
                        stele_err *err)
{
    char what[300], parts[16], comp[8];
    snprintf(what, sizeof what, "creating topic '%s'", spec->name);
    snprintf(parts, sizeof parts, "%d", spec->partitions);
    snprintf(comp, sizeof comp, "%s", spec->compacted ? "true" : "false");
    if (PQstatus(l->conn) != CONNECTION_OK) {
        int rc = lpg_reconnect(l, l->conn, err);
        if (rc)
            return rc;
    }
    int rc = exec_text(l, "BEGIN", 0, NULL, NULL, err, what);
    if (rc && lpg_lost(l->conn, NULL)) { /* the session died while idle */
        if ((rc = lpg_reconnect(l, l->conn, err)))
            return rc;
        rc = exec_text(l, "BEGIN", 0, NULL, NULL, err, what);
    }
    if (rc)
        return rc;
    const char *v[3] = {spec->name, parts, comp};
    PGresult *r = NULL;
    rc = exec_text(l,
                   "INSERT INTO stele_log.topics(name, partitions, compacted)"
                   " VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING"
                   " RETURNING id",
                   3, v, &r, err, what);
    if (!rc && PQntuples(r) == 1) {
        const char *pv[2] = {PQgetvalue(r, 0, 0), parts};
        rc = exec_text(l,
                       "INSERT INTO stele_log.partitions(topic_id, part)"
                       " SELECT $1::int4, g FROM generate_series(0,"
                       " $2::int4 - 1) g",
                       2, pv, NULL, err, what);
        if (!rc)
            rc = exec_text(l, "NOTIFY " LPG_TOPICS_CHANNEL, 0, NULL, NULL, err,
                           what);
    }
    PQclear(r);
    if (!rc)
        rc = exec_text(l, "COMMIT", 0, NULL, NULL, err, what);
    if (rc && PQstatus(l->conn) == CONNECTION_OK &&
        PQtransactionStatus(l->conn) != PQTRANS_IDLE)
        lpg_simple(l, l->conn, "ROLLBACK", NULL);
    return rc;
}

static int pg_topic_ensure(stele_log *log, const stele_topic_spec *spec,
                           stele_err *err)
{
    lpg_log *l = (lpg_log *)log;
    const lpg_topic *t;
    stele_err lookup = {0};
    int rc = lpg_topic_get(l, spec->name, &t, &lookup);
    if (rc == STELE_ENOTFOUND) {
        if ((rc = topic_create(l, spec, err)))
            return rc;
        rc = lpg_topic_get(l, spec->name, &t, err);
    } else if (rc && err) {
        *err = lookup;
    }
    return rc ? rc : topic_compare(t, spec, err);
}

static int pg_topic_partitions(stele_log *log, const char *topic, int32_t *n,
                               stele_err *err)
{
    const lpg_topic *t;
    int rc = lpg_topic_get((lpg_log *)log, topic, &t, err);
    if (!rc)
        *n = t->partitions;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Opening and closing                                                  */

static void pg_close(stele_log *log)
{
    lpg_log *l = (lpg_log *)log;
    if (l->txn)
        lpg_txn_abort((stele_log_txn *)l->txn);
    lpg_txn_free(l->txn);
    if (l->conn)
        PQfinish(l->conn);
    if (l->topics)
        stele_map_free(l->topics, topic_free);
    if (l->secret) {
        memset(l->secret, 0, strlen(l->secret));
        free(l->secret);
    }
    free(l->conninfo);
    free(l);
}

/* Creates the schema when this database has none yet; refuses a schema
 * newer than this code. */
static int schema_ensure(lpg_log *l, stele_err *err)
{
    const char *check =
        "SELECT value FROM stele_log.meta WHERE key = 'schema_version'";
    PGresult *r = PQexec(l->conn, check);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        PQclear(r);
        /* Several processes may open one database at once: CREATE ... IF
         * NOT EXISTS races on the catalog, so they take turns. */
        int rc = lpg_simple(l, l->conn, schema_sql, err);
        if (rc) {
            if (PQstatus(l->conn) == CONNECTION_OK)
                lpg_simple(l, l->conn, "ROLLBACK", NULL);
            stele_err_prefix(err, "creating the log schema");
            return rc;
        }
        r = PQexec(l->conn, check);
    }
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        rc = lpg_fail(l, l->conn, r, err, "reading the log schema version");
    else if (atoi(PQgetvalue(r, 0, 0)) > SCHEMA_VERSION)
        rc = stele_err_set(err, STELE_EFATAL,
                           "PostgreSQL log at %s: schema stele_log has "
                           "version %s, newer than this stele's (%d)",
                           l->where, PQgetvalue(r, 0, 0), SCHEMA_VERSION);
    PQclear(r);
    return rc;
}

int stele_log_open_postgres(const char *conninfo, stele_log **out,
                            stele_err *err)
{
    if (!out)
        return stele_err_set(err, STELE_EINVAL, "open_postgres: NULL out");
    *out = NULL;
    if (!conninfo)
        conninfo = "";
    lpg_log *l = calloc(1, sizeof *l);
    if (!l || !(l->conninfo = strdup(conninfo)) ||
        !(l->topics = stele_map_new())) {
        if (l)
            pg_close(&l->base);
        return stele_err_set(err, STELE_ENOMEM, "PostgreSQL log: opening");
    }
    l->base.ops = &pg_ops;
    snprintf(l->where, sizeof l->where, "(not connected)");
    if (*conninfo) {
        char *perr = NULL;
        PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
        if (!opts) {
            char msg[320];
            stele_text_redact_quoted(perr ? perr : "out of memory", msg,
                                     sizeof msg);
            PQfreemem(perr);
            pg_close(&l->base);
            return stele_err_set(err, STELE_EINVAL,
                                 "PostgreSQL log: bad connection string: %s",
                                 msg);
        }
        for (PQconninfoOption *o = opts; o->keyword; o++)
            if (!strcmp(o->keyword, "password") && o->val && *o->val)
                l->secret = strdup(o->val);
        PQconninfoFree(opts);
    }
    int rc = connect_raw(l, "stele", &l->conn, err);
    if (!rc)
        rc = schema_ensure(l, err);
    if (!rc)
        rc = prepare_all(l, l->conn, err);
    if (rc) {
        pg_close(&l->base);
        return rc;
    }
    *out = &l->base;
    return 0;
}

static const stele_log_ops pg_ops = {
    .name = "postgres",
    .close = pg_close,
    .topic_ensure = pg_topic_ensure,
    .topic_partitions = pg_topic_partitions,
    .txn_begin = lpg_txn_begin,
    .txn_produce = lpg_txn_produce,
    .txn_send_offset = lpg_txn_send_offset,
    .txn_commit = lpg_txn_commit,
    .txn_abort = lpg_txn_abort,
    .read = lpg_read,
    .end_offset = lpg_end_offset,
    .get_latest = lpg_get_latest,
    .committed = lpg_committed,
    .consumer_new = lpg_consumer_new,
    .consumer_poll = lpg_consumer_poll,
    .consumer_seek = lpg_consumer_seek,
    .consumer_rewind = lpg_consumer_rewind,
    .consumer_assignment = lpg_consumer_assignment,
    .consumer_close = lpg_consumer_close,
};
