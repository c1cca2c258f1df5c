/* The backend-independent part of the read-model store: dispatch,
 * projector bookkeeping and JSON rows. */
#include "store.h"

#include <string.h>

#include "common/err.h"
#include "store_backend.h"

void stele_store_close(stele_store *s)
{
    if (s)
        s->ops->close(s);
}

int stele_store_begin(stele_store *s, stele_err *err)
{
    if (s->in_tx)
        return stele_err_set(err, STELE_EINVAL,
                             "read-model store: transaction already open");
    int rc = s->ops->begin(s, err);
    if (rc == 0)
        s->in_tx = true;
    return rc;
}

int stele_store_commit(stele_store *s, stele_err *err)
{
    int rc = s->ops->commit(s, err);
    if (rc != 0)
        stele_store_rollback(s);
    s->in_tx = false;
    return rc;
}

void stele_store_rollback(stele_store *s)
{
    s->ops->rollback(s);
    s->in_tx = false;
}

int stele_store_exec(stele_store *s, const char *sql, const stele_param *p,
                     size_t n, stele_err *err)
{
    return s->ops->exec(s, sql, p, n, err);
}

int stele_store_select(stele_store *s, const char *sql, const stele_param *p,
                       size_t n, stele_row_cb cb, void *opaque,
                       stele_err *err)
{
    return s->ops->select(s, sql, p, n, cb, opaque, err);
}

bool stele_store_has_namespaces(const stele_store *s)
{
    return s->ops->use_namespaces != NULL;
}

int stele_store_namespace_create(stele_store *s, const char *ns,
                                 stele_err *err)
{
    return s->ops->create_namespace ? s->ops->create_namespace(s, ns, err)
                                    : 0;
}

int stele_store_namespace_drop(stele_store *s, const char *ns,
                               stele_err *err)
{
    return s->ops->drop_namespace ? s->ops->drop_namespace(s, ns, err) : 0;
}

int stele_store_use_namespaces(stele_store *s, const char *const *ns,
                               size_t n, stele_err *err)
{
    return s->ops->use_namespaces ? s->ops->use_namespaces(s, ns, n, err) : 0;
}

int stele_store_lock_ddl(stele_store *s, stele_err *err)
{
    return s->ops->lock_ddl ? s->ops->lock_ddl(s, err) : 0;
}

const char *stele_store_backend_name(const stele_store *s)
{
    return s->ops->name;
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
                              "part = ?",
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
        "INSERT INTO stele_checkpoints(projector, topic, part, next_offset) "
        "VALUES(?, ?, ?, ?) ON CONFLICT(projector, topic, part) DO UPDATE "
        "SET next_offset = excluded.next_offset",
        p, 4, err);
}

int stele_store_checkpoints_clear(stele_store *s, const char *projector,
                                  stele_err *err)
{
    stele_param p = STELE_P_TEXT(projector, strlen(projector));
    return stele_store_exec(
        s, "DELETE FROM stele_checkpoints WHERE projector = ?", &p, 1, err);
}
