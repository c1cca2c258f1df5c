/* The backend-independent part of the read-model store: dispatch,
 * projector bookkeeping and JSON rows. */
#include "store.h"

#include <string.h>

#include "common/err.h"
#include "internal.h"

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
                       size_t n, stele_row_cb cb, void *opaque, stele_err *err)
{
    return s->ops->select(s, sql, p, n, cb, opaque, err);
}

bool stele_store_has_namespaces(const stele_store *s)
{
    return s->ops->use_namespaces != NULL;
}

int stele_store_namespace_create(stele_store *s, const char *ns, stele_err *err)
{
    return s->ops->create_namespace ? s->ops->create_namespace(s, ns, err) : 0;
}

int stele_store_namespace_drop(stele_store *s, const char *ns, stele_err *err)
{
    return s->ops->drop_namespace ? s->ops->drop_namespace(s, ns, err) : 0;
}

int stele_store_use_namespaces(stele_store *s, const char *const *ns, size_t n,
                               stele_err *err)
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
    int rc = stele_store_exec(
        s, "DELETE FROM stele_checkpoints WHERE projector = ?", &p, 1, err);
    return rc ? rc
              : stele_store_exec(s,
                                 "DELETE FROM stele_parked WHERE projector = ?",
                                 &p, 1, err);
}

#define P_BLOB(p, n)                                                           \
    ((stele_param){.type = STELE_PARAM_BLOB, .v.s = {(p), (n)}})

int stele_store_parked_add(stele_store *s, const char *projector,
                           const char *topic, int32_t partition,
                           const void *key, size_t key_len, int64_t offset,
                           const char *reason, stele_err *err)
{
    stele_param p[6] = {STELE_P_TEXT(projector, strlen(projector)),
                        STELE_P_TEXT(topic, strlen(topic)),
                        P_BLOB(key ? key : "", key_len),
                        STELE_P_INT(partition),
                        STELE_P_INT(offset),
                        STELE_P_TEXT(reason, strlen(reason))};
    return stele_store_exec(
        s,
        "INSERT INTO stele_parked(projector, topic, akey, part, first_offset, "
        "reason) VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(projector, topic, akey) "
        "DO NOTHING",
        p, 6, err);
}

int stele_store_parked_remove(stele_store *s, const char *projector,
                              const char *topic, const void *key,
                              size_t key_len, stele_err *err)
{
    stele_param p[3] = {STELE_P_TEXT(projector, strlen(projector)),
                        STELE_P_TEXT(topic, strlen(topic)),
                        P_BLOB(key ? key : "", key_len)};
    return stele_store_exec(s,
                            "DELETE FROM stele_parked WHERE projector = ? AND "
                            "topic = ? AND akey = ?",
                            p, 3, err);
}

typedef struct parked_ctx {
    stele_parked_cb cb;
    void *opaque;
} parked_ctx;

static int parked_row(void *opaque, const stele_param *c,
                      const char *const *names, size_t n)
{
    (void)names;
    parked_ctx *x = opaque;
    if (n != 5 || c[0].type != STELE_PARAM_TEXT ||
        c[3].type != STELE_PARAM_INT || c[2].type != STELE_PARAM_INT)
        return 0;
    char topic[512], reason[STELE_ERR_MSG_SIZE];
    snprintf(topic, sizeof topic, "%.*s", (int)c[0].v.s.len,
             (const char *)c[0].v.s.ptr);
    snprintf(reason, sizeof reason, "%.*s",
             c[4].type == STELE_PARAM_TEXT ? (int)c[4].v.s.len : 0,
             c[4].type == STELE_PARAM_TEXT ? (const char *)c[4].v.s.ptr : "");
    const void *key = c[1].type == STELE_PARAM_NULL ? "" : c[1].v.s.ptr;
    size_t key_len = c[1].type == STELE_PARAM_NULL ? 0 : c[1].v.s.len;
    return x->cb(x->opaque, topic, (int32_t)c[2].v.i, key, key_len, c[3].v.i,
                 reason);
}

int stele_store_parked_list(stele_store *s, const char *projector,
                            stele_parked_cb cb, void *opaque, stele_err *err)
{
    stele_param p = STELE_P_TEXT(projector, strlen(projector));
    parked_ctx x = {cb, opaque};
    return stele_store_select(s,
                              "SELECT topic, akey, part, first_offset, reason "
                              "FROM stele_parked WHERE projector = ? ORDER BY "
                              "topic, part, first_offset",
                              &p, 1, parked_row, &x, err);
}
