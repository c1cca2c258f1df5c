/* The SQLite read-model store. */
#include "store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/map.h"

struct stele_store {
    sqlite3 *db;
    stele_map *stmts; /* SQL text -> sqlite3_stmt*, prepared once */
    bool in_tx;
};

static int db_error(stele_store *s, stele_err *err, int rc, const char *what)
{
    int code = (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? STELE_ERETRY
                                                           : STELE_EIO;
    if (rc == SQLITE_ERROR || rc == SQLITE_CONSTRAINT || rc == SQLITE_MISMATCH ||
        rc == SQLITE_RANGE)
        code = STELE_EINVAL;
    return stele_err_set(err, code, "read-model store: %s: %s", what,
                         sqlite3_errmsg(s->db));
}

static int exec_plain(stele_store *s, const char *sql, stele_err *err)
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

int stele_store_open_sqlite(const char *path, stele_store **out,
                            stele_err *err)
{
    stele_store *s = calloc(1, sizeof *s);
    if (!s)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    s->stmts = stele_map_new();
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK || !s->stmts) {
        stele_err_set(err, STELE_EIO, "%s: cannot open read-model store: %s",
                      path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        stele_store_close(s);
        return STELE_EIO;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (exec_plain(s,
                   "PRAGMA journal_mode=WAL;"
                   "PRAGMA synchronous=NORMAL;"
                   "CREATE TABLE IF NOT EXISTS stele_projectors("
                   " name TEXT PRIMARY KEY, version INTEGER NOT NULL);"
                   "CREATE TABLE IF NOT EXISTS stele_checkpoints("
                   " projector TEXT, topic TEXT, partition INTEGER,"
                   " next_offset INTEGER NOT NULL,"
                   " PRIMARY KEY(projector, topic, partition)) WITHOUT ROWID;",
                   err) != 0) {
        stele_err_prefix(err, "%s", path);
        stele_store_close(s);
        return err ? err->code : STELE_EIO;
    }
    *out = s;
    return 0;
}

static void finalize_stmt(void *p) { sqlite3_finalize(p); }

void stele_store_close(stele_store *s)
{
    if (!s)
        return;
    if (s->in_tx)
        stele_store_rollback(s);
    stele_map_free(s->stmts, finalize_stmt);
    sqlite3_close(s->db);
    free(s);
}

int stele_store_begin(stele_store *s, stele_err *err)
{
    if (s->in_tx)
        return stele_err_set(err, STELE_EINVAL,
                             "read-model store: transaction already open");
    int rc = exec_plain(s, "BEGIN IMMEDIATE", err);
    if (rc == 0)
        s->in_tx = true;
    return rc;
}

int stele_store_commit(stele_store *s, stele_err *err)
{
    int rc = exec_plain(s, "COMMIT", err);
    if (rc != 0) {
        stele_store_rollback(s);
        return rc;
    }
    s->in_tx = false;
    return 0;
}

void stele_store_rollback(stele_store *s)
{
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->in_tx = false;
}

/* A cached prepared statement for sql, reset and bound to params. */
static int prepare(stele_store *s, const char *sql, const stele_param *p,
                   size_t n, sqlite3_stmt **out, stele_err *err)
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

int stele_store_exec(stele_store *s, const char *sql, const stele_param *p,
                     size_t n, stele_err *err)
{
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

int stele_store_select(stele_store *s, const char *sql, const stele_param *p,
                       size_t n, stele_row_cb cb, void *opaque,
                       stele_err *err)
{
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
                cols[i] = (stele_param){
                    .type = STELE_PARAM_BLOB,
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

static int row_to_json(void *opaque, const stele_param *cols,
                       const char *const *names, size_t n)
{
    json_t *row = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *v;
        switch (cols[i].type) {
        case STELE_PARAM_INT: v = json_integer(cols[i].v.i); break;
        case STELE_PARAM_REAL: v = json_real(cols[i].v.d); break;
        case STELE_PARAM_TEXT:
        case STELE_PARAM_BLOB:
            v = json_stringn(cols[i].v.s.ptr, cols[i].v.s.len);
            break;
        default: v = json_null();
        }
        json_object_set_new(row, names[i], v ? v : json_null());
    }
    json_array_append_new(opaque, row);
    return 0;
}

int stele_store_select_json(stele_store *s, const char *sql,
                            const stele_param *p, size_t n, json_t *rows,
                            stele_err *err)
{
    return stele_store_select(s, sql, p, n, row_to_json, rows, err);
}

static int read_int64(void *opaque, const stele_param *cols,
                      const char *const *names, size_t n)
{
    (void)names;
    if (n > 0 && cols[0].type == STELE_PARAM_INT)
        *(int64_t *)opaque = cols[0].v.i;
    return 1;
}

int stele_store_projector_version(stele_store *s, const char *projector,
                                  int *version, stele_err *err)
{
    int64_t v = -1;
    stele_param p = STELE_P_TEXT(projector, strlen(projector));
    int rc = stele_store_select(
        s, "SELECT version FROM stele_projectors WHERE name = ?", &p, 1,
        read_int64, &v, err);
    *version = (int)v;
    return rc;
}

int stele_store_projector_set_version(stele_store *s, const char *projector,
                                      int version, stele_err *err)
{
    stele_param p[2] = {STELE_P_TEXT(projector, strlen(projector)),
                        STELE_P_INT(version)};
    return stele_store_exec(s,
                            "INSERT INTO stele_projectors(name, version) "
                            "VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET "
                            "version = excluded.version",
                            p, 2, err);
}

int stele_store_checkpoint_get(stele_store *s, const char *projector,
                               const char *topic, int32_t partition,
                               int64_t *next, stele_err *err)
{
    *next = 0;
    stele_param p[3] = {STELE_P_TEXT(projector, strlen(projector)),
                        STELE_P_TEXT(topic, strlen(topic)),
                        STELE_P_INT(partition)};
    return stele_store_select(s,
                              "SELECT next_offset FROM stele_checkpoints "
                              "WHERE projector = ? AND topic = ? AND "
                              "partition = ?",
                              p, 3, read_int64, next, err);
}

int stele_store_checkpoint_set(stele_store *s, const char *projector,
                               const char *topic, int32_t partition,
                               int64_t next, stele_err *err)
{
    stele_param p[4] = {STELE_P_TEXT(projector, strlen(projector)),
                        STELE_P_TEXT(topic, strlen(topic)),
                        STELE_P_INT(partition), STELE_P_INT(next)};
    return stele_store_exec(
        s,
        "INSERT INTO stele_checkpoints(projector, topic, partition, "
        "next_offset) VALUES(?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
        "next_offset = excluded.next_offset",
        p, 4, err);
}

int stele_store_checkpoints_clear(stele_store *s, const char *projector,
                                  stele_err *err)
{
    stele_param p = STELE_P_TEXT(projector, strlen(projector));
    return stele_store_exec(
        s, "DELETE FROM stele_checkpoints WHERE projector = ?", &p, 1, err);
}
