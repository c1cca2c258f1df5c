/*
 * open.c — the event log in PostgreSQL tables: opening and closing the
 * handle, and the schema. docs/postgres-event-store.md describes
 * the design; in short:
 *
 *   stele_log.topics(id, name, partitions, compacted)
 *   stele_log.partitions(topic_id, part, uid, next_offset)  the watermark
 *   stele_log.records(topic_id, part, off, ts, key, value, headers, crc)
 *   stele_log.compacted(topic_id, part, key, off, ...)  latest per key
 *   stele_log.group_offsets(grp, topic_id, part, next_offset)
 *   stele_log.groups(id, name), stele_log.owners(group_id, puid, member,
 *   epoch, since)  consumer groups (consumer.c)
 *
 * A log transaction is kept in memory (txn.c) and written at commit
 * as one PostgreSQL transaction (commit.c), so offsets are assigned
 * at commit under the partition row's lock. Consumers hold session
 * advisory locks on a connection of their own (consumer.c,
 * rebalance.c) and are woken by LISTEN/NOTIFY (poll.c).
 * Statements, errors and connections are in conn.c, topics in
 * topic.c, reads in read.c.
 *
 * A connection whose server went away fails the call with STELE_ERETRY;
 * the log's own connection is replaced by the next call (at once, when the
 * session is found dead before a statement ran).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "pgconn/pgconn.h"

/* 2: records carry a checksum (crc, NULL in rows written before) */
#define SCHEMA_VERSION 2
/* pg_advisory_xact_lock key serializing the schema's creation between
 * processes (not the store's 1398031692). */
#define DDL_LOCK_KEY "1398033479"

static const stele_log_ops pg_ops;

static const char *const schema_sql =
    "BEGIN;"
    "SELECT pg_catalog.pg_advisory_xact_lock(" DDL_LOCK_KEY ");"
    "CREATE SCHEMA IF NOT EXISTS stele_log;"
    "CREATE TABLE IF NOT EXISTS stele_log.meta("
    " key text PRIMARY KEY, value text NOT NULL);"
    "INSERT INTO stele_log.meta VALUES ('schema_version', '2')"
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
    " ts bigint NOT NULL, key bytea, value bytea, headers bytea, crc bigint,"
    " PRIMARY KEY(topic_id, part, off));"
    /* an aggregate's events without reading its partition */
    "CREATE INDEX IF NOT EXISTS records_by_key"
    " ON stele_log.records(topic_id, part, key, off);"
    "CREATE TABLE IF NOT EXISTS stele_log.compacted("
    " topic_id integer NOT NULL, part integer NOT NULL, key bytea NOT NULL,"
    " off bigint NOT NULL, ts bigint NOT NULL, value bytea, headers bytea,"
    " crc bigint, PRIMARY KEY(topic_id, part, key));"
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
    /* version 1 to 2: a checksum per record; adding a nullable column
     * without a default rewrites nothing, whatever the table's size */
    "ALTER TABLE stele_log.records ADD COLUMN IF NOT EXISTS crc bigint;"
    "ALTER TABLE stele_log.compacted ADD COLUMN IF NOT EXISTS crc bigint;"
    "UPDATE stele_log.meta SET value = '2'"
    " WHERE key = 'schema_version' AND value = '1';"
    "COMMIT";

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
        stele_map_free(l->topics, lpg_topic_free);
    stele_set64_free(l->unchecked_seen);
    if (l->secret) {
        memset(l->secret, 0, strlen(l->secret));
        free(l->secret);
    }
    free(l->conninfo);
    free(l);
}

/* Creates the schema when this database has none yet, brings an older
 * one up to this version; refuses a schema newer than this code. */
static int schema_ensure(lpg_log *l, stele_err *err)
{
    const char *check =
        "SELECT value FROM stele_log.meta WHERE key = 'schema_version'";
    PGresult *r = PQexec(l->conn, check);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
        atoi(PQgetvalue(r, 0, 0)) < SCHEMA_VERSION) {
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
    return stele_log_open_postgres_with(conninfo, NULL, out, err);
}

int stele_log_open_postgres_with(const char *conninfo,
                                 const stele_log_pg_options *opts,
                                 stele_log **out, stele_err *err)
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
    l->max_poll_ms =
        opts ? opts->max_poll_interval_ms : STELE_LOG_PG_MAX_POLL_INTERVAL_MS;
    snprintf(l->where, sizeof l->where, "(not connected)");
    int rc =
        stele_pg_conninfo_check(conninfo, "PostgreSQL log", &l->secret, err);
    if (!rc)
        rc = lpg_connect_unprepared(l, "stele", &l->conn, err);
    if (!rc)
        rc = schema_ensure(l, err);
    if (!rc)
        rc = lpg_prepare_all(l, l->conn, err);
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
    .topic_ensure = lpg_topic_ensure,
    .topic_partitions = lpg_topic_partitions,
    .txn_begin = lpg_txn_begin,
    .txn_produce = lpg_txn_produce,
    .txn_send_offset = lpg_txn_send_offset,
    .txn_commit = lpg_txn_commit,
    .txn_abort = lpg_txn_abort,
    .read = lpg_read,
    .read_key = lpg_read_key,
    .end_offset = lpg_end_offset,
    .delete_before = lpg_delete_before,
    .get_latest = lpg_get_latest,
    .committed = lpg_committed,
    .consumer_new = lpg_consumer_new,
    .consumer_poll = lpg_consumer_poll,
    .consumer_seek = lpg_consumer_seek,
    .consumer_rewind = lpg_consumer_rewind,
    .consumer_assignment = lpg_consumer_assignment,
    .consumer_close = lpg_consumer_close,
};
