/* Read-model tables from projector definitions, and the generic list
 * query over them. Identifiers come from plugin definitions and are
 * checked; every value is bound as a parameter. */
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "store_backend.h"

static bool ident_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 63)
        return false;
    for (const char *p = s; *p; p++) {
        bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     *p == '_';
        bool digit = *p >= '0' && *p <= '9';
        if (!alpha && !(digit && p != s))
            return false;
    }
    return true;
}

/* Appends to a fixed buffer, failing when it would overflow. */
typedef struct sqlbuf {
    char s[4096];
    size_t n;
    bool overflow;
} sqlbuf;

__attribute__((format(printf, 2, 3))) static void add(sqlbuf *b,
                                                      const char *fmt, ...)
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
    sqlbuf b = {.n = 0};
    add(&b, "CREATE TABLE IF NOT EXISTS \"%s\"(", t->name);
    int keys = 0;
    for (size_t i = 0; i < t->n_columns; i++) {
        const stele_column_def *c = &t->columns[i];
        if (!ident_ok(c->name))
            return stele_err_set(err, STELE_EINVAL,
                                 "table %s: bad column name '%s'", t->name,
                                 c->name ? c->name : "");
        add(&b, "%s\"%s\" %s%s", i ? ", " : "", c->name, s->ops->column_type(c->type),
            (c->flags & (STELE_COL_NULLABLE | STELE_COL_KEY)) ==
                    STELE_COL_NULLABLE
                ? ""
                : " NOT NULL");
        keys += (c->flags & STELE_COL_KEY) != 0;
    }
    if (!keys)
        return stele_err_set(err, STELE_EINVAL, "table %s has no key column",
                             t->name);
    add(&b, ", PRIMARY KEY(");
    for (size_t i = 0, k = 0; i < t->n_columns; i++)
        if (t->columns[i].flags & STELE_COL_KEY)
            add(&b, "%s\"%s\"", k++ ? ", " : "", t->columns[i].name);
    add(&b, "))%s", s->ops->table_options ? s->ops->table_options(s) : "");
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
            add(&b, "; CREATE INDEX IF NOT EXISTS \"%s_%s\" ON \"%s\"(\"%s\")",
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

int stele_store_table_publish(stele_store *s, const char *ns,
                              const char *table, bool replace,
                              stele_err *err)
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
                             STELE_STORE_VIEWS_SCHEMA ".%s exists and is not "
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

int stele_filter_parse(char *expr, stele_filter *f, stele_err *err)
{
    static const struct {
        const char *tok;
        stele_filter_op op;
    } ops[] = {{"!=", STELE_OP_NE}, {"<=", STELE_OP_LE}, {">=", STELE_OP_GE},
               {"^=", STELE_OP_PREFIX}, {"=", STELE_OP_EQ},
               {"<", STELE_OP_LT},  {">", STELE_OP_GT}};
    /* The first operator character ends the column name. */
    size_t at = strcspn(expr, "!<>=^");
    if (at == 0 || expr[at] == '\0')
        return stele_err_set(err, STELE_EINVAL,
                             "filter '%s': expected COLUMN OP VALUE with OP "
                             "one of = != < <= > >= ^=",
                             expr);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        size_t l = strlen(ops[i].tok);
        if (strncmp(expr + at, ops[i].tok, l) == 0) {
            f->op = ops[i].op;
            f->value = expr + at + l;
            expr[at] = '\0';
            f->column = expr;
            return 0;
        }
    }
    return stele_err_set(err, STELE_EINVAL, "filter '%s': unknown operator",
                         expr);
}

static const stele_column_def *find_col(const stele_table_def *t,
                                        const char *name)
{
    for (size_t i = 0; i < t->n_columns; i++)
        if (strcmp(t->columns[i].name, name) == 0)
            return &t->columns[i];
    return NULL;
}

static int bind_value(const stele_column_def *c, const char *v, stele_param *p,
                      stele_err *err)
{
    char *end;
    errno = 0;
    switch (c->type) {
    case STELE_COL_INT: {
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno)
            return stele_err_set(err, STELE_EINVAL,
                                 "filter on %s: '%s' is not an integer",
                                 c->name, v);
        *p = STELE_P_INT(x);
        return 0;
    }
    case STELE_COL_REAL: {
        double x = strtod(v, &end);
        if (!*v || *end || errno)
            return stele_err_set(err, STELE_EINVAL,
                                 "filter on %s: '%s' is not a number", c->name,
                                 v);
        *p = STELE_P_REAL(x);
        return 0;
    }
    default: *p = STELE_P_TEXT(v, strlen(v)); return 0;
    }
}

static const char *op_sql(stele_filter_op op)
{
    switch (op) {
    case STELE_OP_EQ: return "=";
    case STELE_OP_NE: return "<>";
    case STELE_OP_LT: return "<";
    case STELE_OP_LE: return "<=";
    case STELE_OP_GT: return ">";
    case STELE_OP_GE: return ">=";
    default: return ">="; /* PREFIX: col >= v AND col < v || U+10FFFF */
    }
}

#define MAX_FILTERS 16

static int count_cb(void *opaque, const stele_param *cols,
                    const char *const *names, size_t n)
{
    (void)names;
    if (n && cols[0].type == STELE_PARAM_INT)
        *(int64_t *)opaque = cols[0].v.i;
    return 1;
}

int stele_store_list(stele_store *s, const stele_table_def *t,
                     const stele_list_request *req, json_t **out,
                     stele_err *err)
{
    if (req->n_filters > MAX_FILTERS)
        return stele_err_set(err, STELE_EINVAL, "at most %d filters",
                             MAX_FILTERS);
    if (req->page < 1 || req->page_size < 1 || req->page_size > 1000)
        return stele_err_set(err, STELE_EINVAL,
                             "page must be >= 1 and page size 1..1000");
    sqlbuf where = {.n = 0};
    stele_param params[2 * MAX_FILTERS + 2];
    char *upper[MAX_FILTERS] = {0};
    size_t np = 0;
    int rc = 0;
    for (size_t i = 0; i < req->n_filters; i++) {
        const stele_filter *f = &req->filters[i];
        const stele_column_def *c = find_col(t, f->column);
        if (!c) {
            rc = stele_err_set(err, STELE_EINVAL, "%s has no column '%s'",
                               t->name, f->column);
            goto done;
        }
        if (!(c->flags & STELE_COL_FILTER)) {
            rc = stele_err_set(err, STELE_EINVAL,
                               "%s.%s is not filterable (the projector "
                               "declares which columns are)",
                               t->name, c->name);
            goto done;
        }
        if ((rc = bind_value(c, f->value, &params[np], err)) != 0)
            goto done;
        np++;
        add(&where, "%s\"%s\" %s ?", i ? " AND " : " WHERE ", c->name,
            op_sql(f->op));
        if (f->op == STELE_OP_PREFIX) {
            if (c->type != STELE_COL_TEXT) {
                rc = stele_err_set(err, STELE_EINVAL,
                                   "%s.%s: ^= needs a text column", t->name,
                                   c->name);
                goto done;
            }
            /* Prefix match through a range, so an index serves it and no
             * LIKE wildcard in the value is interpreted. */
            size_t l = strlen(f->value);
            upper[i] = malloc(l + 5);
            if (!upper[i]) {
                rc = stele_err_set(err, STELE_ENOMEM, "out of memory");
                goto done;
            }
            memcpy(upper[i], f->value, l);
            memcpy(upper[i] + l, "\xf4\x8f\xbf\xbf", 4);
            params[np++] = STELE_P_TEXT(upper[i], l + 4);
            add(&where, " AND \"%s\" < ?", c->name);
        }
    }
    const char *sort = NULL;
    if (req->sort) {
        const stele_column_def *c = find_col(t, req->sort);
        if (!c || !(c->flags & STELE_COL_SORT)) {
            rc = stele_err_set(err, STELE_EINVAL,
                               "%s.%s is not sortable (the projector "
                               "declares which columns are)",
                               t->name, req->sort);
            goto done;
        }
        sort = c->name;
    }
    sqlbuf order = {.n = 0};
    add(&order, " ORDER BY ");
    if (sort)
        add(&order, "\"%s\" %s, ", sort, req->descending ? "DESC" : "ASC");
    /* The primary key breaks ties, so pages never overlap or skip rows. */
    for (size_t i = 0, k = 0; i < t->n_columns; i++)
        if (t->columns[i].flags & STELE_COL_KEY)
            add(&order, "%s\"%s\"", k++ ? ", " : "", t->columns[i].name);

    char sql[8192 + 512]; /* table name + where + order always fit */
    int64_t total = 0;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"%s", t->name,
             where.s);
    if (where.overflow || order.overflow) {
        rc = stele_err_set(err, STELE_EINVAL, "list query too long");
        goto done;
    }
    if ((rc = stele_store_select(s, sql, params, np, count_cb, &total, err)))
        goto done;
    snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"%s%s LIMIT ? OFFSET ?",
             t->name, where.s, order.s);
    params[np] = STELE_P_INT(req->page_size);
    params[np + 1] = STELE_P_INT((req->page - 1) * req->page_size);
    json_t *items = json_array();
    if ((rc = stele_store_select_json(s, sql, params, np + 2, items, err))) {
        json_decref(items);
        goto done;
    }
    *out = json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total",
                     (json_int_t)total, "page", (json_int_t)req->page,
                     "page_size", (json_int_t)req->page_size);
done:
    for (size_t i = 0; i < MAX_FILTERS; i++)
        free(upper[i]);
    return rc;
}
