/* The PostgreSQL store's SQL side: SQLite-style placeholders rewritten to
 * $N, the statement cache, parameters encoded for libpq and result rows
 * converted back to stele_param. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "internal.h"

/* Type OIDs from pg_type.h (server headers are not a client dependency). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_OID 26
#define OID_TEXT 25
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_NUMERIC 1700

#define PG_MAX_COLS 64

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$' ||
           (unsigned char)c >= 0x80;
}

static bool tag_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

/* The end (one past) of a quoted run starting at sql[i] == q. Doubled
 * quotes stay inside; with backslash, \x escapes x (E'...' strings). */
static size_t quoted_end(const char *sql, size_t i, char q, bool backslash)
{
    size_t j = i + 1;
    while (sql[j]) {
        if (backslash && sql[j] == '\\' && sql[j + 1])
            j += 2;
        else if (sql[j] == q && sql[j + 1] == q)
            j += 2;
        else if (sql[j] == q)
            return j + 1;
        else
            j++;
    }
    return j;
}

/* The end of a comment starting at sql[i]; block comments nest. */
static size_t comment_end(const char *sql, size_t i)
{
    size_t j = i + 2;
    if (sql[i] == '-') {
        while (sql[j] && sql[j] != '\n')
            j++;
        return j;
    }
    int depth = 1;
    while (sql[j] && depth > 0) {
        if (sql[j] == '/' && sql[j + 1] == '*')
            depth++, j += 2;
        else if (sql[j] == '*' && sql[j + 1] == '/')
            depth--, j += 2;
        else
            j++;
    }
    return j;
}

/* The end of a $tag$...$tag$ string at sql[i], or 0 when sql[i] starts
 * no dollar quote. */
static size_t dollar_end(const char *sql, size_t i)
{
    size_t j = i + 1;
    if (sql[j] != '$') {
        if (!tag_start(sql[j]))
            return 0;
        while (sql[j] && sql[j] != '$' && ident_char(sql[j]))
            j++;
        if (sql[j] != '$')
            return 0;
    }
    size_t taglen = j + 1 - i;
    const char *close = sql + j + 1;
    while ((close = strchr(close, '$')) != NULL) {
        if (strncmp(close, sql + i, taglen) == 0)
            return (size_t)(close - sql) + taglen;
        close++;
    }
    return strlen(sql);
}

/* Reads the decimal number at sql[*j]; -1 when there is none, 0 when it
 * exceeds PG_MAX_PARAMS. */
static long read_number(const char *sql, size_t *j)
{
    if (!isdigit((unsigned char)sql[*j]))
        return -1;
    long v = 0;
    while (isdigit((unsigned char)sql[*j])) {
        if (v <= PG_MAX_PARAMS)
            v = v * 10 + (sql[*j] - '0');
        (*j)++;
    }
    return v > PG_MAX_PARAMS ? 0 : v;
}

int pg_sql_translate(const char *sql, char **out, int *nph, stele_err *err)
{
    size_t len = strlen(sql), marks = 0;
    for (size_t i = 0; i < len; i++)
        marks += sql[i] == '?';
    /* "?" becomes at most "$65535"; "?N" becomes "$N". */
    char *o = malloc(len + 5 * marks + 1);
    if (!o)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    size_t i = 0, k = 0;
    long max = 0;
    while (i < len) {
        char c = sql[i];
        size_t end = i + 1;
        if (c == '\'') {
            bool e = i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                     (i < 2 || !ident_char(sql[i - 2]));
            end = quoted_end(sql, i, '\'', e);
        } else if (c == '"') {
            end = quoted_end(sql, i, '"', false);
        } else if ((c == '-' && sql[i + 1] == '-') ||
                   (c == '/' && sql[i + 1] == '*')) {
            end = comment_end(sql, i);
        } else if (c == '$' && (i == 0 || !ident_char(sql[i - 1]))) {
            size_t j = i + 1;
            long v = read_number(sql, &j);
            if (v > 0) {
                max = v > max ? v : max;
                end = j;
            } else if (v == 0) {
                free(o);
                return stele_err_set(err, STELE_EINVAL,
                                     "read-model store: placeholder number "
                                     "out of range 1..%d in: %s",
                                     PG_MAX_PARAMS, sql);
            } else {
                size_t d = dollar_end(sql, i);
                end = d ? d : i + 1;
            }
        } else if (c == '?') {
            size_t j = i + 1;
            long v = read_number(sql, &j);
            if (v < 0)
                v = max + 1; /* SQLite: one past the highest so far */
            if (v < 1 || v > PG_MAX_PARAMS) {
                free(o);
                return stele_err_set(err, STELE_EINVAL,
                                     "read-model store: placeholder number "
                                     "out of range 1..%d in: %s",
                                     PG_MAX_PARAMS, sql);
            }
            max = v > max ? v : max;
            k += (size_t)sprintf(o + k, "$%ld", v);
            i = j;
            continue;
        }
        memcpy(o + k, sql + i, end - i);
        k += end - i;
        i = end;
    }
    o[k] = '\0';
    *out = o;
    *nph = (int)max;
    return 0;
}

static void stmt_free(void *p)
{
    pg_stmt *st = p;
    for (pg_variant *v = st->variants, *next; v; v = next) {
        next = v->next;
        free(v);
    }
    free(st->sql);
    free(st->pgsql);
    free(st);
}

void pg_stmts_clear(pg_store *s)
{
    stele_map_clear(s->stmts, stmt_free);
}

int pg_stmt_get(pg_store *s, const char *sql, pg_stmt **out, stele_err *err)
{
    size_t len = strlen(sql);
    pg_stmt *st = stele_map_get(s->stmts, sql, len);
    if (st) {
        *out = st;
        return 0;
    }
    st = calloc(1, sizeof *st);
    if (!st || !(st->sql = strdup(sql))) {
        free(st);
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    }
    int rc = pg_sql_translate(sql, &st->pgsql, &st->nph, err);
    if (rc == 0 && stele_map_put(s->stmts, sql, len, st, NULL) != 0)
        rc = stele_err_set(err, STELE_ENOMEM, "out of memory");
    if (rc != 0) {
        stmt_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return STELE_ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

void pg_params_free(pg_params *p)
{
    free(p->values);
    free(p->lengths);
    free(p->formats);
    free(p->buf);
    free(p->sig_heap);
    memset(p, 0, sizeof *p);
}

static void put_be64(char *b, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (char)(v & 0xff);
}

int pg_params_encode(pg_store *s, pg_stmt *st, const stele_param *p, size_t n,
                     pg_variant **out, stele_err *err)
{
    pg_params *pp = &s->params;
    size_t m = (size_t)st->nph;
    if (n > m)
        return stele_err_set(err, STELE_EINVAL,
                             "read-model store: %zu parameters for %zu "
                             "placeholders in: %s",
                             n, m, st->sql);
    size_t need = 0;
    if (m > pp->cap) {
        size_t c = pp->cap ? pp->cap : 16;
        while (c < m)
            c *= 2;
        void *a = realloc(pp->values, c * sizeof *pp->values);
        if (a)
            pp->values = a;
        void *l = a ? realloc(pp->lengths, c * sizeof *pp->lengths) : NULL;
        if (l)
            pp->lengths = l;
        void *f = l ? realloc(pp->formats, c * sizeof *pp->formats) : NULL;
        if (!f)
            return stele_err_set(err, STELE_ENOMEM, "out of memory");
        pp->formats = f;
        pp->cap = c;
    }
    char *sig = pp->sig;
    if (m + 1 > sizeof pp->sig) {
        if (grow((void **)&pp->sig_heap, &pp->sig_cap, m + 1, 1))
            return stele_err_set(err, STELE_ENOMEM, "out of memory");
        sig = pp->sig_heap;
    }
    for (size_t i = 0; i < n; i++) {
        switch (p[i].type) {
        case STELE_PARAM_NULL:
        case STELE_PARAM_BLOB: break;
        case STELE_PARAM_INT:
        case STELE_PARAM_REAL: need += 8; break;
        case STELE_PARAM_TEXT:
            if (p[i].v.s.len && memchr(p[i].v.s.ptr, 0, p[i].v.s.len))
                return stele_err_set(err, STELE_EINVAL,
                                     "read-model store: parameter %zu: text "
                                     "with a NUL byte (PostgreSQL text "
                                     "cannot hold it; bind a BLOB) in: %s",
                                     i + 1, st->sql);
            need += p[i].v.s.len + 1;
            break;
        default:
            return stele_err_set(err, STELE_EINVAL,
                                 "read-model store: parameter %zu has "
                                 "unknown type %d in: %s",
                                 i + 1, (int)p[i].type, st->sql);
        }
    }
    if (grow((void **)&pp->buf, &pp->buf_cap, need ? need : 1, 1))
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    char *b = pp->buf;
    for (size_t i = 0; i < m; i++) {
        const stele_param *x = i < n ? &p[i] : NULL;
        pp->formats[i] = 1;
        pp->lengths[i] = 0;
        pp->values[i] = NULL;
        switch (x ? x->type : STELE_PARAM_NULL) {
        case STELE_PARAM_INT:
            put_be64(b, (uint64_t)x->v.i);
            pp->values[i] = b, pp->lengths[i] = 8, b += 8;
            sig[i] = 'i';
            break;
        case STELE_PARAM_REAL: {
            uint64_t bits;
            memcpy(&bits, &x->v.d, 8);
            put_be64(b, bits);
            pp->values[i] = b, pp->lengths[i] = 8, b += 8;
            sig[i] = 'r';
            break;
        }
        case STELE_PARAM_TEXT:
            /* Text format and no declared type: the server types it from
             * the context, as it would a quoted literal, so a TEXT value
             * fills a date, numeric or jsonb column too. */
            if (x->v.s.len)
                memcpy(b, x->v.s.ptr, x->v.s.len);
            b[x->v.s.len] = '\0';
            pp->values[i] = b, pp->formats[i] = 0;
            b += x->v.s.len + 1;
            sig[i] = 't';
            break;
        case STELE_PARAM_BLOB:
            /* A NULL value pointer would mean SQL NULL to libpq. */
            pp->values[i] = x->v.s.len ? x->v.s.ptr : "";
            pp->lengths[i] = (int)x->v.s.len;
            sig[i] = 'b';
            break;
        default: sig[i] = 'n'; break;
        }
    }
    sig[m] = '\0';
    pg_variant *v;
    for (v = st->variants; v; v = v->next)
        if (memcmp(v->sig, sig, m) == 0)
            break;
    if (!v) {
        v = calloc(1, sizeof *v + m + 1);
        if (!v)
            return stele_err_set(err, STELE_ENOMEM, "out of memory");
        memcpy(v->sig, sig, m + 1);
        v->next = st->variants;
        st->variants = v;
    }
    *out = v;
    return 0;
}

void pg_variant_types(const pg_variant *v, int nph, bool nulls_text, Oid *types)
{
    for (int i = 0; i < nph; i++) {
        switch (v->sig[i]) {
        case 'i': types[i] = OID_INT8; break;
        case 'r': types[i] = OID_FLOAT8; break;
        case 'b': types[i] = OID_BYTEA; break;
        case 'n': types[i] = nulls_text ? OID_TEXT : 0; break;
        default: types[i] = 0; /* NULL, TEXT: the server infers */
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

enum col_kind { COL_TEXT, COL_INT, COL_BOOL, COL_REAL, COL_BLOB };

int pg_rows_deliver(pg_store *s, PGresult *res, const char *sql,
                    stele_row_cb cb, void *opaque, stele_err *err)
{
    int nf = PQnfields(res), nr = PQntuples(res);
    if (nf > PG_MAX_COLS)
        return stele_err_set(err, STELE_EINVAL,
                             "read-model store: %d columns, at most %d: %s", nf,
                             PG_MAX_COLS, sql);
    stele_param cols[PG_MAX_COLS];
    const char *names[PG_MAX_COLS];
    enum col_kind kind[PG_MAX_COLS];
    bool any_blob = false;
    for (int c = 0; c < nf; c++) {
        names[c] = PQfname(res, c);
        switch (PQftype(res, c)) {
        case OID_INT2:
        case OID_INT4:
        case OID_INT8:
        case OID_OID: kind[c] = COL_INT; break;
        case OID_BOOL: kind[c] = COL_BOOL; break;
        case OID_FLOAT4:
        case OID_FLOAT8:
        case OID_NUMERIC: kind[c] = COL_REAL; break;
        case OID_BYTEA: kind[c] = COL_BLOB, any_blob = true; break;
        default: kind[c] = COL_TEXT;
        }
    }
    for (int r = 0; r < nr; r++) {
        if (any_blob) {
            size_t need = 1;
            for (int c = 0; c < nf; c++)
                if (kind[c] == COL_BLOB)
                    need += (size_t)PQgetlength(res, r, c) / 2;
            if (grow((void **)&s->bytes, &s->bytes_cap, need, 1))
                return stele_err_set(err, STELE_ENOMEM, "out of memory");
        }
        size_t at = 0;
        for (int c = 0; c < nf; c++) {
            if (PQgetisnull(res, r, c)) {
                cols[c] = STELE_P_NULL();
                continue;
            }
            const char *v = PQgetvalue(res, r, c);
            size_t len = (size_t)PQgetlength(res, r, c);
            switch (kind[c]) {
            case COL_INT: cols[c] = STELE_P_INT(strtoll(v, NULL, 10)); break;
            case COL_BOOL: cols[c] = STELE_P_INT(v[0] == 't'); break;
            case COL_REAL: cols[c] = STELE_P_REAL(strtod(v, NULL)); break;
            case COL_BLOB: {
                /* bytea_output is set to hex for the session: \x0a1b... */
                if (len < 2 || v[0] != '\\' || v[1] != 'x' || len % 2)
                    return stele_err_set(err, STELE_EIO,
                                         "read-model store: column %s: "
                                         "bytea not in hex format: %s",
                                         names[c], sql);
                unsigned char *o = (unsigned char *)s->bytes + at;
                size_t nb = (len - 2) / 2;
                for (size_t i = 0; i < nb; i++) {
                    int hi = hexval(v[2 + 2 * i]), lo = hexval(v[3 + 2 * i]);
                    if (hi < 0 || lo < 0)
                        return stele_err_set(err, STELE_EIO,
                                             "read-model store: column %s: "
                                             "bad bytea hex: %s",
                                             names[c], sql);
                    o[i] = (unsigned char)(hi << 4 | lo);
                }
                cols[c] =
                    (stele_param){.type = STELE_PARAM_BLOB, .v.s = {o, nb}};
                at += nb;
                break;
            }
            default: cols[c] = STELE_P_TEXT(v, len);
            }
        }
        if (cb(opaque, cols, names, (size_t)nf) != 0)
            break;
    }
    return 0;
}
