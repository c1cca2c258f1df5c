/*
 * list.c — the generic list query over a projector's table: filters
 * on the columns it marks FILTER, sorting on those it marks SORT, pages by
 * number (page, page_size, with the total) or by cursor (keyset paging:
 * the rows after the last one of the previous page, which costs the same
 * on the millionth page as on the first). Every value is bound as a
 * parameter; identifiers come from the projector's definition.
 *
 * Order: the sort column, then the primary key in the same direction, so
 * pages never overlap or skip rows. NULL sorts as the largest value (last
 * ascending, first descending) on every backend, as PostgreSQL's indexes
 * have it.
 */
#include "store.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "internal.h"
#include "sqlbuf.h"

#define MAX_FILTERS 16
/* the sort column and the primary key's columns */
#define MAX_CURSOR_COLS 9

int stele_filter_parse(char *expr, stele_filter *f, stele_err *err)
{
    static const struct {
        const char *tok;
        stele_filter_op op;
    } ops[] = {{"!=", STELE_OP_NE}, {"<=", STELE_OP_LE},
               {">=", STELE_OP_GE}, {"^=", STELE_OP_PREFIX},
               {"=", STELE_OP_EQ},  {"<", STELE_OP_LT},
               {">", STELE_OP_GT}};
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

static int count_cb(void *opaque, const stele_param *cols,
                    const char *const *names, size_t n)
{
    (void)names;
    if (n && cols[0].type == STELE_PARAM_INT)
        *(int64_t *)opaque = cols[0].v.i;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Cursors: base64url (no padding) of the JSON
 * {"s": sort column or null, "d": descending, "v": [the last row's values
 * of the cursor columns]}. */

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64url_encode(const char *in, size_t n)
{
    char *out = malloc(n / 3 * 4 + 5);
    size_t o = 0;
    for (size_t i = 0; out && i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (uint32_t)(unsigned char)in[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = b64[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = b64[v & 63];
    }
    if (out)
        out[o] = '\0';
    return out;
}

/* NULL when in is not base64url. */
static char *b64url_decode(const char *in, size_t *n)
{
    size_t len = strlen(in);
    char *out = len % 4 == 1 ? NULL : malloc(len * 3 / 4 + 1);
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; out && i < len; i++) {
        const char *p = memchr(b64, in[i], 64);
        if (!p) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)(acc >> bits & 0xff);
        }
    }
    if (out)
        out[o] = '\0';
    *n = o;
    return out;
}

/* The cursor after row, or NULL when none can be made (a BLOB column). */
static char *cursor_after(const stele_column_def *const *cc, size_t ncc,
                          const char *sort, bool desc, json_t *row)
{
    json_t *vals = json_array();
    for (size_t i = 0; vals && i < ncc; i++) {
        json_t *v = json_object_get(row, cc[i]->name);
        if (!v || cc[i]->type == STELE_COL_BLOB ||
            json_array_append(vals, v) != 0) {
            json_decref(vals);
            return NULL;
        }
    }
    json_t *c =
        vals ? json_pack("{s:s?, s:b, s:o}", "s", sort, "d", desc, "v", vals)
             : NULL;
    char *text = c ? json_dumps(c, JSON_COMPACT) : NULL;
    json_decref(c);
    char *out = text ? b64url_encode(text, strlen(text)) : NULL;
    free(text);
    return out;
}

static bool value_fits(const stele_column_def *c, json_t *v, bool may_be_null)
{
    if (json_is_null(v))
        return may_be_null && (c->flags & STELE_COL_NULLABLE);
    switch (c->type) {
    case STELE_COL_INT: return json_is_integer(v);
    case STELE_COL_REAL: return json_is_number(v);
    case STELE_COL_TEXT: return json_is_string(v);
    default: return false;
    }
}

/* The values of a cursor made by cursor_after for the same sort. */
static int cursor_read(const char *after, const char *sort, bool desc,
                       const stele_column_def *const *cc, size_t ncc,
                       json_t **out, stele_err *err)
{
    size_t n = 0;
    char *text = b64url_decode(after, &n);
    json_t *c = text ? json_loadb(text, n, 0, NULL) : NULL;
    free(text);
    json_t *s = json_object_get(c, "s"), *d = json_object_get(c, "d");
    json_t *v = json_object_get(c, "v");
    bool ok = json_is_array(v) && json_is_boolean(d) &&
              (json_is_null(s) || json_is_string(s));
    if (ok && ((sort ? !json_is_string(s) || strcmp(json_string_value(s), sort)
                     : !json_is_null(s)) ||
               json_boolean_value(d) != desc)) {
        json_decref(c);
        return stele_err_set(err, STELE_EINVAL,
                             "the cursor was made for another order: keep "
                             "the sort column and direction from page to "
                             "page");
    }
    ok = ok && json_array_size(v) == ncc;
    for (size_t i = 0; ok && i < ncc; i++)
        ok = value_fits(cc[i], json_array_get(v, i), sort && i == 0);
    if (!ok) {
        json_decref(c);
        return stele_err_set(err, STELE_EINVAL,
                             "'%.40s%s' is not a cursor of this list", after,
                             strlen(after) > 40 ? "..." : "");
    }
    *out = v;
    json_incref(v);
    json_decref(c);
    return 0;
}

static stele_param cursor_param(const stele_column_def *c, json_t *v)
{
    switch (c->type) {
    case STELE_COL_INT: return STELE_P_INT(json_integer_value(v));
    case STELE_COL_REAL: return STELE_P_REAL(json_number_value(v));
    default: return STELE_P_TEXT(json_string_value(v), json_string_length(v));
    }
}

/* " AND <the rows after the cursor's>", binding its values. Keys (one
 * column, or a row value) compare with op; the sort column S with value v
 * first, NULL being the largest value:
 *   ascending   v: (S >= v AND (S > v OR K > k)) [OR S IS NULL]
 *            NULL: S IS NULL AND K > k
 *   descending  v: S <= v AND (S < v OR K < k)
 *            NULL: (S IS NULL AND K < k) OR S IS NOT NULL
 * The leading S >= v / S <= v is a range an index on S serves. */
static void cursor_where(stele_sqlbuf *w, const stele_column_def *const *cc,
                         size_t ncc, bool sorted, bool desc, json_t *vals,
                         stele_param *params, size_t *np)
{
    const char *op = desc ? "<" : ">";
    size_t first_key = sorted ? 1 : 0, nk = ncc - first_key;
    stele_sqlbuf keys = {.n = 0};
    stele_sqlbuf_add(&keys, "%s", nk > 1 ? "(" : "");
    for (size_t i = first_key; i < ncc; i++)
        stele_sqlbuf_add(&keys, "%s\"%s\"", i > first_key ? ", " : "",
                         cc[i]->name);
    stele_sqlbuf_add(&keys, "%s %s %s", nk > 1 ? ")" : "", op,
                     nk > 1 ? "(" : "");
    for (size_t i = 0; i < nk; i++)
        stele_sqlbuf_add(&keys, "%s?", i ? ", " : "");
    stele_sqlbuf_add(&keys, "%s", nk > 1 ? ")" : "");
    w->overflow |= keys.overflow;

    stele_sqlbuf_add(w, "%s", w->n ? " AND " : " WHERE ");
    if (!sorted) {
        stele_sqlbuf_add(w, "%s", keys.s);
    } else {
        const char *s = cc[0]->name;
        json_t *v = json_array_get(vals, 0);
        bool nullable = cc[0]->flags & STELE_COL_NULLABLE;
        if (json_is_null(v) && desc)
            stele_sqlbuf_add(w,
                             "((\"%s\" IS NULL AND %s) OR \"%s\" IS NOT NULL)",
                             s, keys.s, s);
        else if (json_is_null(v))
            stele_sqlbuf_add(w, "(\"%s\" IS NULL AND %s)", s, keys.s);
        else if (!desc && nullable)
            stele_sqlbuf_add(w,
                             "((\"%s\" >= ? AND (\"%s\" > ? OR %s)) OR \"%s\" "
                             "IS NULL)",
                             s, s, keys.s, s);
        else
            stele_sqlbuf_add(w, "(\"%s\" %s= ? AND (\"%s\" %s ? OR %s))", s, op,
                             s, op, keys.s);
        if (!json_is_null(v)) {
            params[(*np)++] = cursor_param(cc[0], v);
            params[(*np)++] = cursor_param(cc[0], v);
        }
    }
    for (size_t i = first_key; i < ncc; i++)
        params[(*np)++] = cursor_param(cc[i], json_array_get(vals, i));
}

/* ------------------------------------------------------------------ */

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
    /* (page - 1) * page_size is the OFFSET: past INT64_MAX it wrapped
     * around (signed overflow) and answered page 1 */
    if (req->page - 1 > INT64_MAX / req->page_size)
        return stele_err_set(err, STELE_EINVAL,
                             "page %lld of %lld rows is past any table (at "
                             "most page %lld)",
                             (long long)req->page, (long long)req->page_size,
                             (long long)(INT64_MAX / req->page_size));
    if (req->after && req->page != 1)
        return stele_err_set(err, STELE_EINVAL,
                             "a page number and a cursor (after) do not go "
                             "together");
    stele_sqlbuf where = {.n = 0};
    stele_param params[2 * MAX_FILTERS + MAX_CURSOR_COLS + 3];
    char *upper[MAX_FILTERS] = {0};
    json_t *after = NULL;
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
        stele_sqlbuf_add(&where, "%s\"%s\" %s ?", i ? " AND " : " WHERE ",
                         c->name, op_sql(f->op));
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
            stele_sqlbuf_add(&where, " AND \"%s\" < ?", c->name);
        }
    }
    /* The cursor columns: the sort column, then the primary key's. */
    const stele_column_def *cc[MAX_CURSOR_COLS];
    size_t ncc = 0;
    if (req->sort) {
        const stele_column_def *c = find_col(t, req->sort);
        if (!c || !(c->flags & STELE_COL_SORT)) {
            rc = stele_err_set(err, STELE_EINVAL,
                               "%s.%s is not sortable (the projector "
                               "declares which columns are)",
                               t->name, req->sort);
            goto done;
        }
        cc[ncc++] = c;
    }
    for (size_t i = 0; i < t->n_columns; i++)
        if (t->columns[i].flags & STELE_COL_KEY) {
            if (ncc == MAX_CURSOR_COLS) {
                rc = stele_err_set(err, STELE_EINVAL,
                                   "%s: list queries take at most %d key "
                                   "columns",
                                   t->name, MAX_CURSOR_COLS - 1);
                goto done;
            }
            cc[ncc++] = &t->columns[i];
        }
    const char *dir = req->descending ? "DESC" : "ASC";
    stele_sqlbuf order = {.n = 0};
    for (size_t i = 0; i < ncc; i++) {
        bool nulls = (cc[i]->flags & STELE_COL_NULLABLE) != 0;
        stele_sqlbuf_add(&order, "%s\"%s\" %s%s", i ? ", " : " ORDER BY ",
                         cc[i]->name, dir,
                         !nulls            ? ""
                         : req->descending ? " NULLS FIRST"
                                           : " NULLS LAST");
    }

    char sql[8192 + 512]; /* table name + where + order always fit */
    int64_t total = -1;
    if (!req->after && !req->no_total) {
        if (where.overflow) {
            rc = stele_err_set(err, STELE_EINVAL, "list query too long");
            goto done;
        }
        snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"%s", t->name,
                 where.s);
        if ((rc =
                 stele_store_select(s, sql, params, np, count_cb, &total, err)))
            goto done;
    }
    if (req->after) {
        if ((rc = cursor_read(req->after, req->sort, req->descending, cc, ncc,
                              &after, err)))
            goto done;
        cursor_where(&where, cc, ncc, req->sort != NULL, req->descending, after,
                     params, &np);
    }
    if (where.overflow || order.overflow) {
        rc = stele_err_set(err, STELE_EINVAL, "list query too long");
        goto done;
    }
    /* One row more than the page: whether there is a next page. */
    snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"%s%s LIMIT ? OFFSET ?",
             t->name, where.s, order.s);
    params[np] = STELE_P_INT(req->page_size + 1);
    params[np + 1] = STELE_P_INT((req->page - 1) * req->page_size);
    json_t *items = json_array();
    if ((rc = stele_store_select_json(s, sql, params, np + 2, items, err))) {
        json_decref(items);
        goto done;
    }
    char *next = NULL;
    if ((int64_t)json_array_size(items) > req->page_size) {
        json_array_remove(items, json_array_size(items) - 1);
        next = cursor_after(cc, ncc, req->sort, req->descending,
                            json_array_get(items, json_array_size(items) - 1));
    }
    *out = json_pack("{s:o, s:I}", "items", items, "page_size",
                     (json_int_t)req->page_size);
    if (!req->after)
        json_object_set_new(*out, "page", json_integer(req->page));
    if (total >= 0)
        json_object_set_new(*out, "total", json_integer(total));
    json_object_set_new(*out, "next", next ? json_string(next) : json_null());
    free(next);
done:
    for (size_t i = 0; i < MAX_FILTERS; i++)
        free(upper[i]);
    json_decref(after);
    return rc;
}
