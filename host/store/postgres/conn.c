/* The PostgreSQL store's connection below open.c and exec.c: errors
 * (classified by SQLSTATE, the password scrubbed), simple commands, the
 * session's settings and reconnecting, and bounding the statement cache. */
#include <string.h>

#include "common/err.h"
#include "common/text.h"
#include "internal.h"

/* Removes the password from a message, wherever it appears. */
void pg_scrub(const pg_store *s, stele_err *e)
{
    if (e)
        stele_text_scrub(e->msg, s->secret);
}

int pg_ret(const stele_err *e, stele_err *err)
{
    if (err && err != e)
        *err = *e;
    return e->code;
}

/* Transient: the same call may succeed later (connection, locks,
 * resources, a statement to prepare again); bad SQL or data is EINVAL. */
static int classify(const pg_store *s, const char *state, const char *msg)
{
    if (PQstatus(s->conn) != CONNECTION_OK)
        return STELE_ERETRY;
    if (!state || strlen(state) != 5)
        return STELE_EIO;
    if (!strncmp(state, "08", 2) || !strncmp(state, "40", 2) ||
        !strncmp(state, "53", 2) || !strncmp(state, "57P", 3) ||
        !strcmp(state, "57014") || !strcmp(state, "55P03") ||
        !strcmp(state, "26000"))
        return STELE_ERETRY;
    if (!strcmp(state, "0A000") && msg &&
        strstr(msg, "cached plan must not change result type"))
        return STELE_ERETRY;
    if (!strncmp(state, "42", 2) || !strncmp(state, "22", 2) ||
        !strncmp(state, "23", 2) || !strncmp(state, "0A", 2) ||
        !strncmp(state, "2B", 2) || !strncmp(state, "44", 2))
        return STELE_EINVAL;
    return STELE_EIO;
}

bool pg_stale_statement(const char *state)
{
    return state && (!strcmp(state, "26000") || !strcmp(state, "0A000"));
}

/* Fills e for a failed statement; what names it ("statement 12 of the
 * transaction"), sql is its text. */
int pg_fail_stmt(pg_store *s, PGresult *res, const char *what, const char *sql,
                 stele_err *e)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary =
        res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail =
        res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    char msg[320], det[160];
    stele_text_tidy(primary ? primary
                    : res && *PQresultErrorMessage(res)
                        ? PQresultErrorMessage(res)
                        : PQerrorMessage(s->conn),
                    msg, sizeof msg);
    stele_text_tidy(detail, det, sizeof det);
    int code = classify(s, state, msg);
    bool lost = PQstatus(s->conn) != CONNECTION_OK;
    stele_err_set(e, code, "read-model store: %s%s%s%.200s%s: %s%s%s%s%s%s",
                  lost ? "PostgreSQL at " : "", lost ? s->where : "",
                  lost ? ": connection lost while running " : "", sql,
                  strlen(sql) > 200 ? "..." : "", what ? what : "",
                  what ? ": " : "", msg, state ? " (SQLSTATE " : "",
                  state ? state : "", state ? ")" : "");
    if (*det && strlen(e->msg) + strlen(det) + 3 < sizeof e->msg) {
        strcat(e->msg, ": ");
        strcat(e->msg, det);
    }
    pg_scrub(s, e);
    return code;
}

int pg_fail(pg_store *s, PGresult *res, const char *sql, stele_err *err)
{
    stele_err e;
    pg_fail_stmt(s, res, NULL, sql, &e);
    return pg_ret(&e, err);
}

int pg_conn_error(pg_store *s, const char *what, stele_err *err)
{
    char msg[320];
    stele_text_tidy(PQerrorMessage(s->conn), msg, sizeof msg);
    stele_err e;
    stele_err_set(&e, STELE_ERETRY, "read-model store: %s PostgreSQL at %s: %s",
                  what, s->where, msg);
    pg_scrub(s, &e);
    return pg_ret(&e, err);
}

/* Runs a simple (unparameterized) command; the result is discarded. */
int pg_run_simple(pg_store *s, const char *sql, stele_err *err)
{
    PGresult *r = PQexec(s->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = pg_fail(s, r, sql, err);
    PQclear(r);
    return rc;
}

/* Settings every session needs, again after a reconnection: no NOTICE
 * chatter ("relation exists, skipping"), bytea in the hex format that
 * sql.c decodes. */
int pg_session_setup(pg_store *s, stele_err *err)
{
    return pg_run_simple(s,
                         "SET client_min_messages = warning; "
                         "SET bytea_output = hex",
                         err);
}

int pg_reconnect(pg_store *s, stele_err *err)
{
    PQreset(s->conn);
    s->gen++; /* the server forgot every prepared statement */
    s->piped = false;
    s->head = s->tail = 0;
    if (PQstatus(s->conn) != CONNECTION_OK)
        return pg_conn_error(s, "cannot reconnect to", err);
    return pg_session_setup(s, err);
}

int pg_ensure_connected(pg_store *s, stele_err *err)
{
    return PQstatus(s->conn) == CONNECTION_OK ? 0 : pg_reconnect(s, err);
}

/* Bounds the statement cache: SQL built at run time (list queries with
 * other filters, DDL) would otherwise grow it without end. */
void pg_trim_cache(pg_store *s)
{
    if (stele_map_count(s->stmts) <= PG_MAX_STMTS)
        return;
    if (pg_run_simple(s, "DEALLOCATE ALL", NULL) == 0)
        pg_stmts_clear(s);
}
