/* Read-model tables from projector definitions: created, dropped, and
 * published under stable names. Identifiers come from plugin definitions
 * and are checked. The generic list query is in list.c. */
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "internal.h"
#include "sqlbuf.h"

static bool ident_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 63)
        return false;
    for (const char *p = s; *p; p++) {
        bool alpha =
            (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_';
        bool digit = *p >= '0' && *p <= '9';
        if (!alpha && !(digit && p != s))
            return false;
    }
    return true;
}

void stele_sqlbuf_add(stele_sqlbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= sizeof b->s - b->n)
        b->overflow = true;
    else
        b->n += (size_t)w;
}

int stele_store_table_create(stele_store *s, const stele_table_def *t,
                             stele_err *err)
{
    if (!ident_ok(t->name))
        return stele_err_set(err, STELE_EINVAL, "bad table name '%s'",
                             t->name ? t->name : "");
    stele_sqlbuf b = {.n = 0};
    stele_sqlbuf_add(&b, "CREATE TABLE IF NOT EXISTS \"%s\"(", t->name);
    int keys = 0;
    for (size_t i = 0; i < t->n_columns; i++) {
        const stele_column_def *c = &t->columns[i];
        if (!ident_ok(c->name))
            return stele_err_set(err, STELE_EINVAL,
                                 "table %s: bad column name '%s'", t->name,
                                 c->name ? c->name : "");
        stele_sqlbuf_add(&b, "%s\"%s\" %s%s", i ? ", " : "", c->name,
                         s->ops->column_type(c->type),
                         (c->flags & (STELE_COL_NULLABLE | STELE_COL_KEY)) ==
                                 STELE_COL_NULLABLE
                             ? ""
                             : " NOT NULL");
        keys += (c->flags & STELE_COL_KEY) != 0;
    }
    if (!keys)
        return stele_err_set(err, STELE_EINVAL, "table %s has no key column",
                             t->name);
    stele_sqlbuf_add(&b, ", PRIMARY KEY(");
    for (size_t i = 0, k = 0; i < t->n_columns; i++)
        if (t->columns[i].flags & STELE_COL_KEY)
            stele_sqlbuf_add(&b, "%s\"%s\"", k++ ? ", " : "",
                             t->columns[i].name);
    stele_sqlbuf_add(&b, "))%s",
                     s->ops->table_options ? s->ops->table_options(s) : "");
    /* Indexes only where the projector asks (STELE_COL_INDEX): each one is
     * paid on every write of its column. The primary key's first column
     * needs none of its own. */
    const stele_column_def *first_key = NULL;
    for (size_t i = 0; i < t->n_columns && !first_key; i++)
        if (t->columns[i].flags & STELE_COL_KEY)
            first_key = &t->columns[i];
    for (size_t i = 0; i < t->n_columns; i++) {
        const stele_column_def *c = &t->columns[i];
        if ((c->flags & STELE_COL_INDEX) && c != first_key)
            stele_sqlbuf_add(
                &b, "; CREATE INDEX IF NOT EXISTS \"%s_%s\" ON \"%s\"(\"%s\")",
                t->name, c->name, t->name, c->name);
    }
    if (b.overflow)
        return stele_err_set(err, STELE_EINVAL, "table %s: definition too long",
                             t->name);
    /* Split on "; " and run each statement (no user data inside). */
    char *sql = b.s, *next;
    do {
        next = strstr(sql, "; ");
        if (next)
            *next = '\0';
        int rc = stele_store_exec(s, sql, NULL, 0, err);
        if (rc != 0)
            return rc;
        sql = next ? next + 2 : NULL;
    } while (sql);
    return 0;
}

int stele_store_table_drop(stele_store *s, const char *name, stele_err *err)
{
    if (!ident_ok(name))
        return stele_err_set(err, STELE_EINVAL, "bad table name '%s'", name);
    char sql[128];
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS \"%s\"", name);
    return stele_store_exec(s, sql, NULL, 0, err);
}

static int first_text(void *opaque, const stele_param *cols,
                      const char *const *names, size_t n_cols)
{
    (void)names;
    char *kind = opaque;
    if (n_cols > 0 && cols[0].type == STELE_PARAM_TEXT && cols[0].v.s.len)
        *kind = *(const char *)cols[0].v.s.ptr;
    return 0;
}

int stele_store_table_publish(stele_store *s, const char *ns, const char *table,
                              bool replace, stele_err *err)
{
    if (!stele_store_has_namespaces(s))
        return 0;
    if (!ident_ok(table) || !ident_ok(ns))
        return stele_err_set(err, STELE_EINVAL,
                             "bad table or namespace name '%s'.'%s'", ns,
                             table);
    /* what readmodels holds under that name: 'v' a view, 'r' a table... */
    char kind = 0;
    stele_param name = STELE_P_TEXT(table, strlen(table));
    int rc = stele_store_namespace_create(s, STELE_STORE_VIEWS_SCHEMA, err);
    if (rc == 0)
        rc = stele_store_select(
            s,
            "SELECT c.relkind::text FROM pg_catalog.pg_class c"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = '" STELE_STORE_VIEWS_SCHEMA "'"
            " AND c.relname = ?",
            &name, 1, first_text, &kind, err);
    if (rc != 0)
        return rc;
    if (kind && kind != 'v')
        return stele_err_set(err, STELE_ECONFLICT,
                             STELE_STORE_VIEWS_SCHEMA
                             ".%s exists and is not "
                             "a view: the read model cannot be published "
                             "there (rename or drop it)",
                             table);
    if (kind && !replace)
        return 0;
    char sql[512];
    if (kind) {
        snprintf(sql, sizeof sql,
                 "DROP VIEW " STELE_STORE_VIEWS_SCHEMA ".\"%s\"", table);
        if ((rc = stele_store_exec(s, sql, NULL, 0, err)))
            return rc;
    }
    snprintf(sql, sizeof sql,
             "CREATE VIEW " STELE_STORE_VIEWS_SCHEMA ".\"%s\" AS"
             " SELECT * FROM \"%s\".\"%s\"",
             table, ns, table);
    return stele_store_exec(s, sql, NULL, 0, err);
}
