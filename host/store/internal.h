/* internal.h — private to host/store (and its backends): what a
 * read-model store backend implements. The
 * generic part (store.c, table.c) builds projector bookkeeping,
 * tables and list queries on exec/select with portable SQL: `?`
 * placeholders (a backend translates them if it must), ON CONFLICT(...)
 * DO UPDATE upserts, LIMIT/OFFSET. */
#ifndef STELE_STORE_INTERNAL_H
#define STELE_STORE_INTERNAL_H

#include "store.h"

typedef struct stele_store_ops {
    const char *name;
    void (*close)(stele_store *s);
    int (*begin)(stele_store *s, stele_err *err);
    int (*commit)(stele_store *s, stele_err *err);
    void (*rollback)(stele_store *s);
    int (*exec)(stele_store *s, const char *sql, const stele_param *p, size_t n,
                stele_err *err);
    int (*select)(stele_store *s, const char *sql, const stele_param *p,
                  size_t n, stele_row_cb cb, void *opaque, stele_err *err);
    /* Optional: within a transaction, waits until no other process
     * changes read-model tables (CREATE/DROP), until the transaction ends.
     * NULL when transactions already serialize that (SQLite). */
    int (*lock_ddl)(stele_store *s, stele_err *err);
    /* Optional (NULL: the store has one namespace, SQLite): read-model
     * namespaces (PostgreSQL schemas), so a new version of a read model is
     * built beside the old one. use_namespaces makes unqualified table
     * names resolve in ns[0..n) for the statements that follow. */
    int (*create_namespace)(stele_store *s, const char *ns, stele_err *err);
    int (*drop_namespace)(stele_store *s, const char *ns, stele_err *err);
    int (*use_namespaces)(stele_store *s, const char *const *ns, size_t n,
                          stele_err *err);
    /* Optional: what follows a read-model table's CREATE TABLE (...), such
     * as PostgreSQL's storage parameters; "" or NULL for nothing. */
    const char *(*table_options)(stele_store *s);
    /* The SQL type of a column type in CREATE TABLE. */
    const char *(*column_type)(stele_column_type t);
} stele_store_ops;

/* Every backend's handle starts with this. */
struct stele_store {
    const stele_store_ops *ops;
    bool in_tx;
};

#endif
