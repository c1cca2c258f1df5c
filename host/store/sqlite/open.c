/* The SQLite read-model store. */
#include "store/store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/map.h"
#include "store/internal.h"

typedef struct sq_store {
    stele_store base;
    sqlite3 *db;
    stele_map *stmts; /* SQL text -> sqlite3_stmt*, prepared once */
} sq_store;

static const stele_store_ops sqlite_ops;
static void sq_close(stele_store *base);

static int db_error(sq_store *s, stele_err *err, int rc, const char *what)
{
    int code =
        (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? STELE_ERETRY : STELE_EIO;
    if (rc == SQLITE_ERROR || rc == SQLITE_CONSTRAINT ||
        rc == SQLITE_MISMATCH || rc == SQLITE_RANGE)
        code = STELE_EINVAL;
    return stele_err_set(err, code, "read-model store: %s: %s", what,
                         sqlite3_errmsg(s->db));
}

static int exec_plain(sq_store *s, const char *sql, stele_err *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        int code = (rc == SQLITE_BUSY) ? STELE_ERETRY : STELE_EIO;
        stele_err_set(err, code, "read-model store: %s: %s", sql,
                      msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return code;
    }
    return 0;
}

int stele_store_open_sqlite(const char *path, stele_store **out, stele_err *err)
{
    sq_store *s = calloc(1, sizeof *s);
    if (!s)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    s->base.ops = &sqlite_ops;
    s->stmts = stele_map_new();
    int rc = sqlite3_open_v2(
        path, &s->db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK || !s->stmts) {
        stele_err_set(err, STELE_EIO, "%s: cannot open read-model store: %s",
                      path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sq_close(&s->base);
        return STELE_EIO;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (exec_plain(s,
                   "PRAGMA journal_mode=WAL;"
                   "PRAGMA synchronous=NORMAL;"
                   "CREATE TABLE IF NOT EXISTS stele_projectors("
                   " name TEXT PRIMARY KEY, version INTEGER NOT NULL);"
                   "CREATE TABLE IF NOT EXISTS stele_checkpoints("
                   " projector TEXT, topic TEXT, part INTEGER,"
                   " next_offset INTEGER NOT NULL,"
                   " PRIMARY KEY(projector, topic, part)) WITHOUT ROWID;"
                   "CREATE TABLE IF NOT EXISTS stele_parked("
                   " projector TEXT, topic TEXT, akey BLOB, part INTEGER,"
                   " first_offset INTEGER NOT NULL, reason TEXT NOT NULL,"
                   " PRIMARY KEY(projector, topic, akey)) WITHOUT ROWID;",
                   err) != 0) {
        stele_err_prefix(err, "%s", path);
        sq_close(&s->base);
        return err ? err->code : STELE_EIO;
    }
    *out = &s->base;
    return 0;
}

static void finalize_stmt(void *p)
{
    sqlite3_finalize(p);
}

static void sq_close(stele_store *base)
{
    sq_store *s = (sq_store *)base;
    if (s->base.in_tx)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    stele_map_free(s->stmts, finalize_stmt);
    sqlite3_close(s->db);
    free(s);
}

static int sq_begin(stele_store *base, stele_err *err)
{
    return exec_plain((sq_store *)base, "BEGIN IMMEDIATE", err);
}

static int sq_commit(stele_store *base, stele_err *err)
{
    return exec_plain((sq_store *)base, "COMMIT", err);
}

static void sq_rollback(stele_store *base)
{
    sqlite3_exec(((sq_store *)base)->db, "ROLLBACK", NULL, NULL, NULL);
}

/* A cached prepared statement for sql, reset and bound to params. */
static int prepare(sq_store *s, const char *sql, const stele_param *p, size_t n,
                   sqlite3_stmt **out, stele_err *err)
{
    size_t len = strlen(sql);
    sqlite3_stmt *st = stele_map_get(s->stmts, sql, len);
    if (!st) {
        int rc = sqlite3_prepare_v3(s->db, sql, (int)len,
                                    SQLITE_PREPARE_PERSISTENT, &st, NULL);
        if (rc != SQLITE_OK)
            return db_error(s, err, rc, sql);
        if (stele_map_put(s->stmts, sql, len, st, NULL) != 0) {
            sqlite3_finalize(st);
            return stele_err_set(err, STELE_ENOMEM, "out of memory");
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if ((int)n > sqlite3_bind_parameter_count(st))
        return stele_err_set(err, STELE_EINVAL,
                             "read-model store: %zu parameters for %d "
                             "placeholders in: %s",
                             n, sqlite3_bind_parameter_count(st), sql);
    for (size_t i = 0; i < n; i++) {
        int idx = (int)i + 1, rc = SQLITE_OK;
        switch (p[i].type) {
        case STELE_PARAM_NULL: rc = sqlite3_bind_null(st, idx); break;
        case STELE_PARAM_INT: rc = sqlite3_bind_int64(st, idx, p[i].v.i); break;
        case STELE_PARAM_REAL:
            rc = sqlite3_bind_double(st, idx, p[i].v.d);
            break;
        case STELE_PARAM_TEXT:
            rc = sqlite3_bind_text(st, idx, p[i].v.s.ptr, (int)p[i].v.s.len,
                                   SQLITE_TRANSIENT);
            break;
        case STELE_PARAM_BLOB:
            rc = sqlite3_bind_blob(st, idx, p[i].v.s.ptr, (int)p[i].v.s.len,
                                   SQLITE_TRANSIENT);
            break;
        default:
            return stele_err_set(err, STELE_EINVAL,
                                 "read-model store: parameter %zu has "
                                 "unknown type %d",
                                 i + 1, (int)p[i].type);
        }
        if (rc != SQLITE_OK)
            return db_error(s, err, rc, sql);
    }
    *out = st;
    return 0;
}

static int sq_exec(stele_store *base, const char *sql, const stele_param *p,
                   size_t n, stele_err *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st;
    int rc = prepare(s, sql, p, n, &st, err);
    if (rc != 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE) {
        rc = db_error(s, err, rc, sql);
        sqlite3_reset(st);
        return rc;
    }
    sqlite3_reset(st);
    return 0;
}

#define MAX_COLS 64

static int sq_select(stele_store *base, const char *sql, const stele_param *p,
                     size_t n, stele_row_cb cb, void *opaque, stele_err *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st;
    int rc = prepare(s, sql, p, n, &st, err);
    if (rc != 0)
        return rc;
    int ncol = sqlite3_column_count(st);
    if (ncol > MAX_COLS) {
        sqlite3_reset(st);
        return stele_err_set(err, STELE_EINVAL,
                             "read-model store: %d columns, at most %d: %s",
                             ncol, MAX_COLS, sql);
    }
    stele_param cols[MAX_COLS];
    const char *names[MAX_COLS];
    for (int i = 0; i < ncol; i++)
        names[i] = sqlite3_column_name(st, i);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < ncol; i++) {
            switch (sqlite3_column_type(st, i)) {
            case SQLITE_INTEGER:
                cols[i] = STELE_P_INT(sqlite3_column_int64(st, i));
                break;
            case SQLITE_FLOAT:
                cols[i] = STELE_P_REAL(sqlite3_column_double(st, i));
                break;
            case SQLITE_TEXT:
                cols[i] = STELE_P_TEXT(sqlite3_column_text(st, i),
                                       (size_t)sqlite3_column_bytes(st, i));
                break;
            case SQLITE_BLOB:
                cols[i] =
                    (stele_param){.type = STELE_PARAM_BLOB,
                                  .v.s = {sqlite3_column_blob(st, i),
                                          (size_t)sqlite3_column_bytes(st, i)}};
                break;
            default: cols[i] = STELE_P_NULL();
            }
        }
        if (cb(opaque, cols, names, (size_t)ncol) != 0) {
            sqlite3_reset(st);
            return 0;
        }
    }
    if (rc != SQLITE_DONE) {
        rc = db_error(s, err, rc, sql);
        sqlite3_reset(st);
        return rc;
    }
    sqlite3_reset(st);
    return 0;
}

static const char *sq_column_type(stele_column_type t)
{
    switch (t) {
    case STELE_COL_INT: return "INTEGER";
    case STELE_COL_REAL: return "REAL";
    case STELE_COL_TEXT: return "TEXT";
    default: return "BLOB";
    }
}

static const stele_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .exec = sq_exec,
    .select = sq_select,
    .column_type = sq_column_type,
};
