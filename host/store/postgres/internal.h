/* internal.h — the PostgreSQL read-model store's private parts:
 * the handle, the statement cache and the SQL translation shared by
 * open.c (opening, transactions), conn.c (errors, reconnecting), exec.c
 * (the pipeline) and sql.c (placeholders, prepared statements,
 * parameters, rows). */
#ifndef STELE_STORE_PG_PRIV_H
#define STELE_STORE_PG_PRIV_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "common/map.h"
#include "store/internal.h"

/* The most placeholders one statement may use (PostgreSQL's limit). */
#define PG_MAX_PARAMS 65535
/* Distinct SQL texts kept prepared; past it the cache is emptied (and the
 * server's statements deallocated) before the next transaction. */
#define PG_MAX_STMTS 2000

/* One prepared form of a statement: the same SQL bound with other
 * parameter types is another server-side statement. */
typedef struct pg_variant {
    struct pg_variant *next;
    unsigned gen;  /* == the store's gen: prepared on this connection */
    char name[24]; /* server-side name, fresh at every prepare */
    char sig[];    /* one letter per placeholder: n i r t b */
} pg_variant;

/* A SQL text as the caller wrote it and its PostgreSQL translation. */
typedef struct pg_stmt {
    char *sql;   /* the caller's text, for error messages */
    char *pgsql; /* ? and ?N rewritten to $N */
    int nph;     /* the highest placeholder number */
    pg_variant *variants;
} pg_stmt;

/* What a queued pipeline command was, to match its result. */
typedef enum pg_pending_kind {
    PG_PENDING_PREPARE,
    PG_PENDING_EXEC,
    PG_PENDING_SYNC
} pg_pending_kind;

typedef struct pg_pending {
    pg_pending_kind kind;
    pg_stmt *stmt;       /* NULL for COMMIT and sync */
    pg_variant *variant; /* NULL for COMMIT and sync */
    long ordinal;        /* the statement's number in the transaction */
} pg_pending;

/* Parameters encoded for libpq; the buffers grow and are reused. */
typedef struct pg_params {
    const char **values;
    int *lengths;
    int *formats;
    size_t cap;
    char *buf; /* INT/REAL in network order, NUL-terminated TEXT */
    size_t buf_cap;
    char sig[64]; /* the variant signature; sig_heap when longer */
    char *sig_heap;
    size_t sig_cap;
} pg_params;

typedef struct pg_store {
    stele_store base;
    PGconn *conn;
    char where[160];  /* "127.0.0.1:5433" for messages */
    char *secret;     /* the password, scrubbed from every message */
    unsigned gen;     /* bumped at every (re)connection */
    unsigned serial;  /* names prepared statements */
    stele_map *stmts; /* SQL text -> pg_stmt* */
    pg_params params;
    bool in_tx;
    bool piped; /* in pipeline mode (inside a transaction) */
    /* Queued pipeline commands whose results are not read yet. */
    pg_pending *pending;
    size_t head, tail, pending_cap;
    size_t since_drain;
    long ordinal;
    /* The first error of the transaction, reported by exec and commit. */
    bool failed;
    stele_err tx_err;
    char *bytes; /* decoded bytea of a row */
    size_t bytes_cap;
    char table_options[32]; /* " WITH (fillfactor=N)" */
} pg_store;

/* --- sql.c --- */

/* Rewrites SQLite-style ? and ?N placeholders to $N, leaving quoted
 * strings, quoted identifiers, dollar quotes and comments alone. *out is
 * malloc'ed; *nph is the highest placeholder number ($N written in the
 * text count too). */
int pg_sql_translate(const char *sql, char **out, int *nph, stele_err *err);

/* The cached statement for sql (translated on first use). */
int pg_stmt_get(pg_store *s, const char *sql, pg_stmt **out, stele_err *err);

/* Encodes n params for st into s->params and finds (or adds) the variant
 * for their types. Missing trailing parameters are NULL. */
int pg_params_encode(pg_store *s, pg_stmt *st, const stele_param *p, size_t n,
                     pg_variant **out, stele_err *err);

/* The parameter type OIDs of a variant (0: the server infers it; NULLs
 * are text with nulls_text, for contexts that give no type: SELECT ?). */
void pg_variant_types(const pg_variant *v, int nph, bool nulls_text,
                      Oid *types);

/* Forgets every statement (after DEALLOCATE ALL or at close). */
void pg_stmts_clear(pg_store *s);
void pg_params_free(pg_params *p);

/* Calls cb for each row of a tuples result, columns converted to params.
 * Returns 0, or a negative status. */
int pg_rows_deliver(pg_store *s, PGresult *res, const char *sql,
                    stele_row_cb cb, void *opaque, stele_err *err);

/* --- conn.c: the connection and errors --- */

/* Fills err from a failed result (res may be NULL: the connection's
 * error) for statement sql, classifying the SQLSTATE; returns the code. */
int pg_fail(pg_store *s, PGresult *res, const char *sql, stele_err *err);
/* The same, the statement named by what ("statement 12 of the
 * transaction") beside its text. */
int pg_fail_stmt(pg_store *s, PGresult *res, const char *what, const char *sql,
                 stele_err *e);
/* STELE_ERETRY: "<what> PostgreSQL at host:port: <libpq's message>". */
int pg_conn_error(pg_store *s, const char *what, stele_err *err);
/* Copies e into err (when another buffer) and returns its code. */
int pg_ret(const stele_err *e, stele_err *err);
void pg_scrub(const pg_store *s, stele_err *e);
/* A prepared statement the server no longer has or must plan again. */
bool pg_stale_statement(const char *state);
/* Runs a simple command and discards its result. */
int pg_run_simple(pg_store *s, const char *sql, stele_err *err);
/* Settings every session needs, again after a reconnection. */
int pg_session_setup(pg_store *s, stele_err *err);
/* Resets the connection (the server forgets the prepared statements). */
int pg_reconnect(pg_store *s, stele_err *err);
/* Reconnects when the connection is known to be lost. */
int pg_ensure_connected(pg_store *s, stele_err *err);
/* Empties the statement cache when it has grown past PG_MAX_STMTS. */
void pg_trim_cache(pg_store *s);

/* --- exec.c: the pipeline and statements --- */

/* Keeps e as the transaction's error unless one is kept already. */
void pg_tx_fail(pg_store *s, const stele_err *e);
/* Notes a queued command; STELE_ENOMEM. */
int pg_push(pg_store *s, pg_pending_kind kind, pg_stmt *st, pg_variant *v);
/* Queues a sync and reads every result up to it. */
void pg_sync_and_drain(pg_store *s);
void pg_end_pipeline(pg_store *s);
/* A libpq send call failed: the transaction's error. */
int pg_send_failed(pg_store *s, const char *sql, stele_err *err);
/* exec() inside a transaction: queues the statement. */
int pg_exec_piped(pg_store *s, const char *sql, const stele_param *p, size_t n,
                  stele_err *err);
/* Runs a statement and waits; cb (may be NULL) gets a SELECT's rows. */
int pg_run_sync(pg_store *s, const char *sql, const stele_param *p, size_t n,
                stele_row_cb cb, void *opaque, stele_err *err);

#endif
