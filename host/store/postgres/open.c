/*
 * The PostgreSQL read-model store over libpq.
 *
 * A transaction is BEGIN (synchronous: a dead connection is found and
 * replaced there, before anything is written) and then libpq's pipeline
 * mode: exec() queues the statement and returns without waiting, so a
 * projector batch of thousands of statements costs a handful of round
 * trips. The first error of the batch is kept and reported by the next
 * exec() or by commit(), naming the statement; PostgreSQL has aborted the
 * transaction by then, so nothing of the batch is written. select() inside
 * a transaction first reads every queued result. Outside a transaction
 * exec() and select() run synchronously (autocommit).
 *
 * Statements are prepared once per connection and per parameter types
 * (sql.c; the pipeline is exec.c). A lost connection
 * fails the call with STELE_ERETRY; the next begin() (or call outside a
 * transaction) reconnects. This file: opening the connection, and the
 * transaction boundaries; conn.c has errors and reconnecting.
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/text.h"
#include "pgconn/pgconn.h"
#include "internal.h"

static const stele_store_ops pg_ops;
static void pg_close(stele_store *base);

/* Serializes bookkeeping DDL between processes ("STEL"). */
#define DDL_LOCK_KEY "1398031692"

static void set_where(pg_store *s)
{
    const char *h = PQhost(s->conn), *p = PQport(s->conn);
    snprintf(s->where, sizeof s->where, "%s:%s", h && *h ? h : "localhost",
             p && *p ? p : "5432");
}

int stele_store_open_postgres(const char *conninfo, stele_store **out,
                              stele_err *err)
{
    if (!conninfo)
        conninfo = "";
    pg_store *s = calloc(1, sizeof *s);
    if (!s || !(s->stmts = stele_map_new())) {
        free(s);
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    }
    s->base.ops = &pg_ops;
    s->gen = 1;
    snprintf(s->table_options, sizeof s->table_options, " WITH (fillfactor=%d)",
             STELE_STORE_PG_FILLFACTOR);
    int checked =
        stele_pg_conninfo_check(conninfo, "read-model store", &s->secret, err);
    if (checked) {
        pg_close(&s->base);
        return checked;
    }
    /* Defaults the connection string (or PG* variables) may override: a
     * name in pg_stat_activity, and a bound on connecting. */
    const char *kw[4], *val[4];
    int k = 0;
    kw[k] = "fallback_application_name", val[k++] = "stele";
    if (!getenv("PGCONNECT_TIMEOUT"))
        kw[k] = "connect_timeout", val[k++] = "10";
    kw[k] = "dbname", val[k++] = conninfo;
    kw[k] = NULL, val[k] = NULL;
    s->conn = PQconnectdbParams(kw, val, 1);
    if (!s->conn) {
        pg_close(&s->base);
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    }
    set_where(s);
    stele_err e = {0};
    int rc = 0;
    if (PQstatus(s->conn) != CONNECTION_OK)
        rc = pg_conn_error(s, "cannot connect to", &e);
    /* Several processes may open one database at once: CREATE TABLE IF
     * NOT EXISTS races on the catalog, so they take turns. */
    else if ((rc = pg_session_setup(s, &e)) == 0 &&
             (rc = pg_run_simple(
                  s,
                  "BEGIN; SELECT pg_advisory_xact_lock(" DDL_LOCK_KEY ");"
                  "CREATE TABLE IF NOT EXISTS stele_projectors("
                  " name TEXT PRIMARY KEY, version INTEGER NOT NULL);"
                  "CREATE TABLE IF NOT EXISTS stele_checkpoints("
                  " projector TEXT, topic TEXT, part INTEGER,"
                  " next_offset BIGINT NOT NULL,"
                  " PRIMARY KEY(projector, topic, part));"
                  "CREATE TABLE IF NOT EXISTS stele_parked("
                  " projector TEXT, topic TEXT, akey BYTEA, part INTEGER,"
                  " first_offset BIGINT NOT NULL, reason TEXT NOT NULL,"
                  " PRIMARY KEY(projector, topic, akey));"
                  "COMMIT",
                  &e)) != 0)
        pg_run_simple(s, "ROLLBACK", NULL);
    if (rc != 0) {
        pg_close(&s->base);
        return pg_ret(&e, err);
    }
    *out = &s->base;
    return 0;
}

static void pg_close(stele_store *base)
{
    pg_store *s = (pg_store *)base;
    /* An open transaction ends with the session: the server rolls back. */
    if (s->conn)
        PQfinish(s->conn);
    if (s->stmts) {
        pg_stmts_clear(s);
        stele_map_free(s->stmts, NULL);
    }
    pg_params_free(&s->params);
    free(s->pending);
    free(s->bytes);
    if (s->secret) {
        memset(s->secret, 0, strlen(s->secret));
        free(s->secret);
    }
    free(s);
}

/* ------------------------------------------------------------------ */
/* The backend's operations                                             */

static int pg_begin(stele_store *base, stele_err *err)
{
    pg_store *s = (pg_store *)base;
    int rc;
    if ((rc = pg_ensure_connected(s, err)))
        return rc;
    pg_trim_cache(s);
    PGresult *r = PQexec(s->conn, "BEGIN");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        /* The server may have restarted since the last call: nothing is
         * written yet, so a new session can take over. */
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        bool gone =
            PQstatus(s->conn) != CONNECTION_OK ||
            (state && (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3)));
        if (!gone) {
            rc = pg_fail(s, r, "BEGIN", err);
            PQclear(r);
            return rc;
        }
        PQclear(r);
        if ((rc = pg_reconnect(s, err)))
            return rc;
        if ((rc = pg_run_simple(s, "BEGIN", err)))
            return rc;
    } else {
        PQclear(r);
    }
    if (!PQenterPipelineMode(s->conn)) {
        rc = pg_send_failed(s, "BEGIN", err);
        pg_run_simple(s, "ROLLBACK", NULL);
        s->failed = false;
        return rc;
    }
    s->piped = s->in_tx = true;
    s->failed = false;
    s->ordinal = 0;
    s->head = s->tail = s->since_drain = 0;
    return 0;
}

static int pg_commit(stele_store *base, stele_err *err)
{
    pg_store *s = (pg_store *)base;
    if (!s->failed) {
        if (!PQsendQueryParams(s->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0))
            pg_send_failed(s, "COMMIT", NULL);
        else if (pg_push(s, PG_PENDING_EXEC, NULL, NULL))
            return stele_err_set(err, STELE_ENOMEM, "out of memory");
    }
    pg_sync_and_drain(s);
    pg_end_pipeline(s);
    if (s->failed)
        return pg_ret(&s->tx_err, err); /* store.c rolls back */
    if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        return stele_err_set(err, STELE_EIO,
                             "read-model store: COMMIT left the "
                             "transaction open");
    s->in_tx = false;
    return 0;
}

static void pg_rollback(stele_store *base)
{
    pg_store *s = (pg_store *)base;
    if (s->piped) {
        if (PQstatus(s->conn) == CONNECTION_OK)
            pg_sync_and_drain(s);
        pg_end_pipeline(s);
    }
    if (PQstatus(s->conn) == CONNECTION_OK &&
        PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        pg_run_simple(s, "ROLLBACK", NULL);
    s->in_tx = s->failed = false;
    s->head = s->tail = 0;
}

static int pg_exec(stele_store *base, const char *sql, const stele_param *p,
                   size_t n, stele_err *err)
{
    pg_store *s = (pg_store *)base;
    if (s->piped)
        return pg_exec_piped(s, sql, p, n, err);
    return pg_run_sync(s, sql, p, n, NULL, NULL, err);
}

static int pg_select(stele_store *base, const char *sql, const stele_param *p,
                     size_t n, stele_row_cb cb, void *opaque, stele_err *err)
{
    pg_store *s = (pg_store *)base;
    if (!s->piped)
        return pg_run_sync(s, sql, p, n, cb, opaque, err);
    if (s->failed)
        return pg_ret(&s->tx_err, err);
    /* The rows must see the queued writes. */
    if (s->head < s->tail || s->since_drain > 0)
        pg_sync_and_drain(s);
    if (s->failed)
        return pg_ret(&s->tx_err, err);
    if (!PQexitPipelineMode(s->conn))
        return pg_send_failed(s, sql, err);
    stele_err e = {0};
    int rc = pg_run_sync(s, sql, p, n, cb, opaque, &e);
    if (rc != 0 && e.code != 0) /* the transaction is aborted server-side */
        pg_tx_fail(s, &e);
    if (!PQenterPipelineMode(s->conn) && rc == 0)
        rc = pg_send_failed(s, sql, &e);
    return rc ? pg_ret(&e, err) : 0;
}

static const char *pg_column_type(stele_column_type t)
{
    switch (t) {
    case STELE_COL_INT: return "BIGINT";
    case STELE_COL_REAL: return "DOUBLE PRECISION";
    /* Byte order, as SQLite compares text: sorting, ranges and the list
     * query's prefix match (col >= v AND col < v || U+10FFFF) mean the
     * same on both, whatever the database's locale. */
    case STELE_COL_TEXT: return "TEXT COLLATE \"C\"";
    default: return "BYTEA";
    }
}

/* Two hosts preparing the same projector's tables at once would race in
 * CREATE TABLE IF NOT EXISTS (PostgreSQL checks the catalog before it
 * locks it): one at a time, until the transaction ends. */
/* Then the transaction's DDL waits at most STELE_STORE_PG_DDL_LOCK_TIMEOUT
 * for the locks of the tables and views it changes. A DDL statement
 * waiting for a reader (a report's long query on the view of the old
 * version, say) would queue every later reader of that table behind it:
 * an outage of the read model. After the timeout the transaction fails
 * (SQLSTATE 55P03, retryable) and the engine tries again later. */
static int pg_lock_ddl(stele_store *base, stele_err *err)
{
    int rc = pg_exec(base, "SELECT pg_advisory_xact_lock(" DDL_LOCK_KEY ")",
                     NULL, 0, err);
    return rc ? rc
              : pg_exec(
                    base,
                    "SET LOCAL lock_timeout = '" STELE_STORE_PG_DDL_LOCK_TIMEOUT
                    "'",
                    NULL, 0, err);
}

static bool ns_ok(const char *ns)
{
    if (!ns || !*ns || strlen(ns) > 63)
        return false;
    for (const char *c = ns; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '_'))
            return false;
    return true;
}

static int pg_ns_sql(stele_store *base, const char *fmt, const char *ns,
                     stele_err *err)
{
    if (!ns_ok(ns))
        return stele_err_set(err, STELE_EINVAL,
                             "read-model store: bad namespace '%s'", ns);
    char sql[160];
    snprintf(sql, sizeof sql, fmt, ns);
    return pg_exec(base, sql, NULL, 0, err);
}

static int pg_create_namespace(stele_store *base, const char *ns,
                               stele_err *err)
{
    return pg_ns_sql(base, "CREATE SCHEMA IF NOT EXISTS \"%s\"", ns, err);
}

static int pg_drop_namespace(stele_store *base, const char *ns, stele_err *err)
{
    return pg_ns_sql(base, "DROP SCHEMA IF EXISTS \"%s\" CASCADE", ns, err);
}

/* search_path: PostgreSQL re-plans cached statements when it changes, so
 * the prepared statements follow. The bookkeeping tables stay in public. */
static int pg_use_namespaces(stele_store *base, const char *const *ns, size_t n,
                             stele_err *err)
{
    char sql[2048] = "SET search_path TO ";
    size_t at = strlen(sql);
    for (size_t i = 0; i < n; i++) {
        if (!ns_ok(ns[i]))
            return stele_err_set(err, STELE_EINVAL,
                                 "read-model store: bad namespace '%s'", ns[i]);
        int w = snprintf(sql + at, sizeof sql - at, "\"%s\", ", ns[i]);
        if (w < 0 || (size_t)w >= sizeof sql - at)
            return stele_err_set(err, STELE_EINVAL,
                                 "read-model store: too many namespaces");
        at += (size_t)w;
    }
    snprintf(sql + at, sizeof sql - at, "public");
    return pg_exec(base, sql, NULL, 0, err);
}

int stele_store_postgres_fillfactor(stele_store *base, int percent,
                                    stele_err *err)
{
    if (base->ops != &pg_ops)
        return stele_err_set(err, STELE_EINVAL,
                             "read-model store: fillfactor is a PostgreSQL "
                             "setting");
    if (percent < 10 || percent > 100)
        return stele_err_set(err, STELE_EINVAL,
                             "read-model store: fillfactor %d is not within "
                             "10..100",
                             percent);
    pg_store *s = (pg_store *)base;
    snprintf(s->table_options, sizeof s->table_options, " WITH (fillfactor=%d)",
             percent);
    return 0;
}

static const char *pg_table_options(stele_store *base)
{
    return ((pg_store *)base)->table_options;
}

static const stele_store_ops pg_ops = {
    .name = "postgres",
    .lock_ddl = pg_lock_ddl,
    .create_namespace = pg_create_namespace,
    .drop_namespace = pg_drop_namespace,
    .use_namespaces = pg_use_namespaces,
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .exec = pg_exec,
    .select = pg_select,
    .table_options = pg_table_options,
    .column_type = pg_column_type,
};
