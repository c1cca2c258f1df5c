/* The PostgreSQL store's statements: libpq's pipeline inside a
 * transaction (queued commands, their results read in order, the first
 * error kept for commit), statements prepared once per connection, and the
 * synchronous path outside a transaction. open.c has the transaction
 * boundaries, conn.c the connection and its errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/text.h"
#include "internal.h"

/* Statements whose results are read, when available, after this many
 * queued ones: keeps the pending queue and libpq's input buffer small. */
#define DRAIN_EVERY 256

void pg_tx_fail(pg_store *s, const stele_err *e)
{
    if (!s->failed) {
        s->failed = true;
        s->tx_err = *e;
    }
}

int pg_push(pg_store *s, pg_pending_kind kind, pg_stmt *st, pg_variant *v)
{
    if (s->tail == s->pending_cap) {
        size_t cap = s->pending_cap ? s->pending_cap * 2 : 1024;
        pg_pending *p = realloc(s->pending, cap * sizeof *p);
        if (!p)
            return STELE_ENOMEM;
        s->pending = p;
        s->pending_cap = cap;
    }
    s->pending[s->tail++] = (pg_pending){
        .kind = kind, .stmt = st, .variant = v, .ordinal = s->ordinal};
    return 0;
}

static void lost(pg_store *s)
{
    s->head = s->tail = 0;
    stele_err e;
    pg_conn_error(s, "connection lost to", &e);
    pg_tx_fail(s, &e);
}

/* Reads the results of the oldest queued command (blocking). */
static void take_result(pg_store *s)
{
    pg_pending p = s->pending[s->head++];
    PGresult *r;
    while ((r = PQgetResult(s->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) { /* not followed by NULL */
            PQclear(r);
            return;
        }
        if (st == PGRES_FATAL_ERROR) {
            const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            if (p.variant &&
                (p.kind == PG_PENDING_PREPARE || pg_stale_statement(state)))
                p.variant->gen = 0;
            if (!s->failed) {
                char what[64];
                snprintf(what, sizeof what,
                         "statement %ld of the "
                         "transaction%s",
                         p.ordinal,
                         p.kind == PG_PENDING_PREPARE ? " (preparing)" : "");
                stele_err e;
                pg_fail_stmt(s, r, what, p.stmt ? p.stmt->sql : "COMMIT", &e);
                pg_tx_fail(s, &e);
            }
        } else if (st == PGRES_PIPELINE_ABORTED &&
                   p.kind == PG_PENDING_PREPARE && p.variant) {
            p.variant->gen = 0; /* skipped: never prepared */
        }
        PQclear(r);
        if (PQstatus(s->conn) != CONNECTION_OK)
            return;
    }
}

/* Reads every queued result. */
static void drain_all(pg_store *s)
{
    while (s->head < s->tail) {
        if (PQstatus(s->conn) != CONNECTION_OK) {
            lost(s);
            break;
        }
        take_result(s);
    }
    s->head = s->tail = 0;
    s->since_drain = 0;
}

/* Reads the results that have already arrived, without blocking. */
static void drain_ready(pg_store *s)
{
    s->since_drain = 0;
    if (!PQconsumeInput(s->conn)) {
        lost(s);
        return;
    }
    while (s->head < s->tail && !PQisBusy(s->conn) &&
           PQstatus(s->conn) == CONNECTION_OK)
        take_result(s);
    if (s->head == s->tail)
        s->head = s->tail = 0;
}

/* Queues a sync and reads everything up to it. */
void pg_sync_and_drain(pg_store *s)
{
    if (PQpipelineSync(s->conn) != 1 || pg_push(s, PG_PENDING_SYNC, NULL, NULL))
        lost(s);
    else
        drain_all(s);
}

void pg_end_pipeline(pg_store *s)
{
    if (PQpipelineStatus(s->conn) != PQ_PIPELINE_OFF)
        PQexitPipelineMode(s->conn);
    s->piped = false;
}

int pg_send_failed(pg_store *s, const char *sql, stele_err *err)
{
    stele_err e;
    if (PQstatus(s->conn) != CONNECTION_OK) {
        pg_conn_error(s, "connection lost to", &e);
    } else {
        char msg[320];
        stele_text_tidy(PQerrorMessage(s->conn), msg, sizeof msg);
        stele_err_set(&e, STELE_EIO, "read-model store: %.200s: %s", sql, msg);
        pg_scrub(s, &e);
    }
    pg_tx_fail(s, &e);
    return pg_ret(&e, err);
}

/* Prepares v of st and waits for the answer. A NULL parameter has no
 * type, which the server infers from the context; where the context
 * gives none (SELECT ?, ? IS NULL) it is prepared again as text. */
static int prepare_sync(pg_store *s, pg_stmt *st, pg_variant *v, stele_err *err)
{
    Oid small[32];
    Oid *types =
        (size_t)st->nph <= 32 ? small : malloc((size_t)st->nph * sizeof *types);
    if (!types)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    /* Inside a transaction a failed prepare aborts it: the first try
     * runs under a savepoint when a second one may follow. */
    bool guard = s->in_tx && strchr(v->sig, 'n') &&
                 pg_run_simple(s, "SAVEPOINT stele_prepare", NULL) == 0;
    int rc = 0;
    for (int nulls_text = 0; nulls_text < 2; nulls_text++) {
        pg_variant_types(v, st->nph, nulls_text, types);
        snprintf(v->name, sizeof v->name, "stele_%u", ++s->serial);
        PGresult *r = PQprepare(s->conn, v->name, st->pgsql, st->nph, types);
        if (PQresultStatus(r) == PGRES_COMMAND_OK) {
            PQclear(r);
            v->gen = s->gen;
            rc = 0;
            break;
        }
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        bool retry = !nulls_text && state && !strcmp(state, "42P18") &&
                     strchr(v->sig, 'n');
        rc = pg_fail(s, r, st->sql, err);
        PQclear(r);
        if (!retry)
            break;
        if (guard &&
            pg_run_simple(s, "ROLLBACK TO SAVEPOINT stele_prepare", NULL) != 0)
            break;
    }
    if (guard && rc == 0)
        rc = pg_run_simple(s, "RELEASE SAVEPOINT stele_prepare", err);
    if (types != small)
        free(types);
    return rc;
}

/* Prepares v inside the pipeline, without waiting. */
static int prepare_piped(pg_store *s, pg_stmt *st, pg_variant *v,
                         stele_err *err)
{
    Oid small[32];
    Oid *types =
        (size_t)st->nph <= 32 ? small : malloc((size_t)st->nph * sizeof *types);
    if (!types)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    pg_variant_types(v, st->nph, false, types);
    snprintf(v->name, sizeof v->name, "stele_%u", ++s->serial);
    int ok = PQsendPrepare(s->conn, v->name, st->pgsql, st->nph, types);
    if (types != small)
        free(types);
    if (!ok)
        return pg_send_failed(s, st->sql, err);
    v->gen = s->gen;
    if (pg_push(s, PG_PENDING_PREPARE, st, v))
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    return 0;
}

int pg_exec_piped(pg_store *s, const char *sql, const stele_param *p, size_t n,
                  stele_err *err)
{
    if (s->failed)
        return pg_ret(&s->tx_err, err);
    pg_stmt *st;
    pg_variant *v;
    stele_err e;
    s->ordinal++;
    if (pg_stmt_get(s, sql, &st, &e) || pg_params_encode(s, st, p, n, &v, &e)) {
        /* The batch is incomplete: it must not commit. */
        pg_tx_fail(s, &e);
        return pg_ret(&e, err);
    }
    if (v->gen != s->gen) {
        int rc;
        if (!strchr(v->sig, 'n')) {
            rc = prepare_piped(s, st, v, err);
        } else {
            /* Its NULLs may need a second try (prepare_sync): leave the
             * pipeline for it, once per connection. */
            pg_sync_and_drain(s);
            if (s->failed)
                return pg_ret(&s->tx_err, err);
            PQexitPipelineMode(s->conn);
            rc = prepare_sync(s, st, v, &e);
            if (!PQenterPipelineMode(s->conn) && rc == 0)
                rc = pg_send_failed(s, st->sql, &e);
            if (rc) {
                pg_tx_fail(s, &e);
                pg_ret(&e, err);
            }
        }
        if (rc)
            return rc;
    }
    pg_params *pp = &s->params;
    if (!PQsendQueryPrepared(s->conn, v->name, st->nph, pp->values, pp->lengths,
                             pp->formats, 0))
        return pg_send_failed(s, sql, err);
    if (pg_push(s, PG_PENDING_EXEC, st, v))
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    if (++s->since_drain >= DRAIN_EVERY)
        drain_ready(s);
    return s->failed ? pg_ret(&s->tx_err, err) : 0;
}

/* Prepares (when needed) and runs one statement, waiting for its result;
 * cb gets the rows of a SELECT. */
int pg_run_sync(pg_store *s, const char *sql, const stele_param *p, size_t n,
                stele_row_cb cb, void *opaque, stele_err *err)
{
    int rc;
    if (!s->in_tx) {
        if ((rc = pg_ensure_connected(s, err)))
            return rc;
        pg_trim_cache(s);
    }
    pg_stmt *st;
    pg_variant *v;
    if ((rc = pg_stmt_get(s, sql, &st, err)) ||
        (rc = pg_params_encode(s, st, p, n, &v, err)))
        return rc;
    pg_params *pp = &s->params;
    for (int attempt = 0;; attempt++) {
        PGresult *r;
        if (v->gen != s->gen && (rc = prepare_sync(s, st, v, err)))
            return rc;
        r = PQexecPrepared(s->conn, v->name, st->nph, pp->values, pp->lengths,
                           pp->formats, 0);
        ExecStatusType status = PQresultStatus(r);
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
            rc = cb && status == PGRES_TUPLES_OK
                     ? pg_rows_deliver(s, r, sql, cb, opaque, err)
                     : 0;
            PQclear(r);
            return rc;
        }
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        bool stale = pg_stale_statement(state);
        if (stale)
            v->gen = 0;
        /* A table changed under a prepared statement: prepare it again. */
        if (stale && !s->in_tx && attempt == 0 &&
            PQstatus(s->conn) == CONNECTION_OK) {
            PQclear(r);
            continue;
        }
        rc = pg_fail(s, r, sql, err);
        PQclear(r);
        return rc;
    }
}
