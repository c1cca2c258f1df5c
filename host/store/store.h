/*
 * store.h — the read-model store: where projectors write their tables and
 * where queries read them. The embedded backend is SQLite (WAL); PostgreSQL
 * comes behind the same functions.
 *
 * A projector's batch runs inside one store transaction together with its
 * checkpoint (the next log offset per topic partition), so a read model and
 * its position never diverge. Statements are parameterized; prepared
 * statements are cached per SQL text.
 */
#ifndef STELE_STORE_H
#define STELE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include <stele/plugin.h>

typedef struct stele_store stele_store;

int stele_store_open_sqlite(const char *path, stele_store **out,
                            stele_err *err);
/* Connects to PostgreSQL with a libpq connection string ("host=... port=...
 * dbname=...", or a postgresql:// URI; "" or NULL: the PG* environment
 * variables) and creates the bookkeeping tables. STELE_ERETRY when the
 * server cannot be reached (the message names host and port, never the
 * password); STELE_EINVAL for a malformed connection string. */
int stele_store_open_postgres(const char *conninfo, stele_store **out,
                              stele_err *err);
/* Read-model tables of a PostgreSQL store are created with this
 * fillfactor (10..100): the room left in each page lets an update that
 * changes no indexed column stay in its page (a HOT update, with no index
 * writes), which is most of a projector's writes. Applies to tables
 * created afterwards; STELE_EINVAL on another backend. */
#define STELE_STORE_PG_FILLFACTOR 90
int stele_store_postgres_fillfactor(stele_store *s, int percent,
                                    stele_err *err);
/* How long a read model's DDL (a rebuild's switch-over) waits for the
 * locks of tables that queries are reading before it gives up and is
 * tried again (PostgreSQL). */
#define STELE_STORE_PG_DDL_LOCK_TIMEOUT "2s"
void stele_store_close(stele_store *s);

/* "sqlite", "postgres" */
const char *stele_store_backend_name(const stele_store *s);

/* One transaction at a time per store handle. */
int stele_store_begin(stele_store *s, stele_err *err);
int stele_store_commit(stele_store *s, stele_err *err);
void stele_store_rollback(stele_store *s);

/* ------------------------------------------------------------------ */
/* Namespaces: PostgreSQL keeps each projector version's tables in a
 * schema of its own, so a rebuild happens beside the serving version. */

/* true when the store has namespaces (PostgreSQL), false for SQLite. */
bool stele_store_has_namespaces(const stele_store *s);
/* CREATE SCHEMA IF NOT EXISTS / DROP SCHEMA ... CASCADE; no-ops without
 * namespaces. ns must be an identifier. */
int stele_store_namespace_create(stele_store *s, const char *ns,
                                 stele_err *err);
int stele_store_namespace_drop(stele_store *s, const char *ns, stele_err *err);
/* Unqualified table names in the statements that follow resolve in ns
 * (in order); a no-op without namespaces. */
int stele_store_use_namespaces(stele_store *s, const char *const *ns, size_t n,
                               stele_err *err);

/* The schema where the serving version of every read model is published
 * under its tables' plain names (PostgreSQL). */
#define STELE_STORE_VIEWS_SCHEMA "readmodels"

/* With namespaces (PostgreSQL): makes readmodels.<table> a view of
 * ns.<table>, so that other programs read a read model under one name
 * whatever its version. replace: drop a view of that name first (the
 * serving version changed); otherwise only create it when readmodels has
 * no relation of that name. A relation there that is not a view is an
 * error. A no-op without namespaces (SQLite's tables have the plain
 * names). */
int stele_store_table_publish(stele_store *s, const char *ns, const char *table,
                              bool replace, stele_err *err);

/* Inside a transaction: keeps other processes from creating or dropping
 * read-model tables until it ends (a no-op where transactions already
 * serialize that). */
int stele_store_lock_ddl(stele_store *s, stele_err *err);

int stele_store_exec(stele_store *s, const char *sql, const stele_param *p,
                     size_t n, stele_err *err);

typedef int (*stele_row_cb)(void *opaque, const stele_param *cols,
                            const char *const *names, size_t n_cols);

int stele_store_select(stele_store *s, const char *sql, const stele_param *p,
                       size_t n, stele_row_cb cb, void *opaque, stele_err *err);

/* Runs a SELECT and appends each row as a JSON object to rows (an array). */
int stele_store_select_json(stele_store *s, const char *sql,
                            const stele_param *p, size_t n, json_t *rows,
                            stele_err *err);

/* Projector bookkeeping (tables stele_projectors, stele_checkpoints). */
/* The stored version of a projector's read model; -1 when never built. */
int stele_store_projector_version(stele_store *s, const char *projector,
                                  int *version, stele_err *err);
int stele_store_projector_set_version(stele_store *s, const char *projector,
                                      int version, stele_err *err);
/* 0 when the projector has no checkpoint for the partition. */
int stele_store_checkpoint_get(stele_store *s, const char *projector,
                               const char *topic, int32_t partition,
                               int64_t *next, stele_err *err);
int stele_store_checkpoint_set(stele_store *s, const char *projector,
                               const char *topic, int32_t partition,
                               int64_t next, stele_err *err);
/* Drops a projector's checkpoints and its parked aggregates (its read
 * model is rebuilt from the start). */
int stele_store_checkpoints_clear(stele_store *s, const char *projector,
                                  stele_err *err);

/* Aggregates a projector parked (table stele_parked): one of their events
 * could not be read, so neither it nor any later event of theirs is
 * projected until a repair (stele replay) projects them. Keyed by the
 * events topic and the aggregate's key; offset is the first event not
 * projected. Adding one already parked keeps the first. */
int stele_store_parked_add(stele_store *s, const char *projector,
                           const char *topic, int32_t partition,
                           const void *key, size_t key_len, int64_t offset,
                           const char *reason, stele_err *err);
int stele_store_parked_remove(stele_store *s, const char *projector,
                              const char *topic, const void *key,
                              size_t key_len, stele_err *err);
typedef int (*stele_parked_cb)(void *opaque, const char *topic,
                               int32_t partition, const void *key,
                               size_t key_len, int64_t offset,
                               const char *reason);
/* Calls cb for every aggregate the projector parked, by topic, partition
 * and offset; a non-zero return stops the listing. */
int stele_store_parked_list(stele_store *s, const char *projector,
                            stele_parked_cb cb, void *opaque, stele_err *err);

/* CREATE TABLE IF NOT EXISTS from a projector's table definition. */
int stele_store_table_create(stele_store *s, const stele_table_def *t,
                             stele_err *err);
int stele_store_table_drop(stele_store *s, const char *name, stele_err *err);

/* ------------------------------------------------------------------ */
/* The generic list query over a projector's table.                    */

typedef enum stele_filter_op {
    STELE_OP_EQ,
    STELE_OP_NE,
    STELE_OP_LT,
    STELE_OP_LE,
    STELE_OP_GT,
    STELE_OP_GE,
    STELE_OP_PREFIX
} stele_filter_op;

typedef struct stele_filter {
    const char *column;
    stele_filter_op op;
    const char *value; /* converted to the column's type */
} stele_filter;

typedef struct stele_list_request {
    const stele_filter *filters;
    size_t n_filters;
    const char *sort; /* a SORT column, or NULL: the primary key */
    bool descending;
    int64_t page;      /* from 1; 1 with after */
    int64_t page_size; /* 1..1000 */
    /* A cursor: the "next" of the previous page (same sort and direction;
     * the filters may change). Pages by position instead of by number:
     * as cheap deep in the table as at its start. */
    const char *after;
    bool no_total; /* leave out "total" (a count of every matching row) */
} stele_list_request;

/* Parses "col=v", "col!=v", "col<v", "col<=v", "col>v", "col>=v",
 * "col^=prefix" into f (pointers into expr, which is modified). */
int stele_filter_parse(char *expr, stele_filter *f, stele_err *err);

/*
 * Lists rows of table t: only columns flagged STELE_COL_FILTER may be
 * filtered and STELE_COL_SORT sorted on; values are bound as parameters.
 * Rows come in the sort column's order, then the primary key's (in the
 * same direction); NULL sorts as the largest value. *out is
 * {"items": [...], "page_size": S, "next": cursor or null, "page": P,
 * "total": N}: "next" is null on the last page; "page" only without
 * after; "total" only without after and without no_total.
 */
int stele_store_list(stele_store *s, const stele_table_def *t,
                     const stele_list_request *req, json_t **out,
                     stele_err *err);

#endif
