/*
 * compat.c — schema compatibility per the Avro specification's
 * schema-resolution rules, checked on the parsed JSON of .avsc texts.
 *
 * avro-c's schema objects drop "default" and "aliases", which decide half
 * of the rules, so the check walks the JSON itself: named types are
 * collected per side with their full names (namespaces inherited as the
 * spec says), and a reader/writer pair of records already being compared
 * is assumed compatible, which is what makes recursive types terminate.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define COMPAT_MAX_DEPTH 128

/* One side's named types: full name -> the JSON object defining it. */
typedef struct side {
    json_t *root;
    stele_map *named;   /* full name -> named_def (borrowed) */
    stele_map *by_node; /* definition node pointer -> named_def (owned) */
} side;

/* A type in context: its JSON node and the namespace names resolve in. */
typedef struct tref {
    const json_t *node;
    const char *ns;
} tref;

typedef struct checker {
    side w, r;
    stele_map *seen; /* "writer\0reader" record pairs in progress */
    stele_compat_report *rep;
    int rc;
} checker;

static const char *const primitives[] = {"null",  "boolean", "int",
                                         "long",  "float",   "double",
                                         "bytes", "string",  NULL};

static bool is_primitive(const char *s)
{
    for (size_t i = 0; primitives[i]; i++)
        if (strcmp(s, primitives[i]) == 0)
            return true;
    return false;
}

/* "ns.Name" of name in namespace ns (a dotted name is already full). */
static void full_name(const char *name, const char *ns, char *buf, size_t size)
{
    if (strchr(name, '.') || !ns || !*ns)
        snprintf(buf, size, "%s", name);
    else
        snprintf(buf, size, "%s.%s", ns, name);
}

/* A named type's definition with its full name and the namespace that
 * names inside it resolve in. */
typedef struct named_def {
    const json_t *node;
    char *full;
    char *inner_ns;
} named_def;

static void named_def_free(void *p)
{
    named_def *d = p;
    if (d) {
        free(d->full);
        free(d->inner_ns);
        free(d);
    }
}

static int define(side *s, const json_t *n, const char *name, const char *ns,
                  const named_def **out)
{
    const char *own = json_string_value(json_object_get(n, "namespace"));
    const char *dot = strrchr(name, '.');
    named_def *d = calloc(1, sizeof *d);
    if (!d)
        return STELE_ENOMEM;
    d->node = n;
    char full[512];
    if (dot) {
        snprintf(full, sizeof full, "%s", name);
        d->inner_ns = strndup(name, (size_t)(dot - name));
    } else {
        const char *use = own ? own : ns;
        full_name(name, use, full, sizeof full);
        d->inner_ns = strdup(use ? use : "");
    }
    d->full = strdup(full);
    if (!d->full || !d->inner_ns ||
        stele_map_put(s->by_node, &n, sizeof n, d, NULL)) {
        named_def_free(d);
        return STELE_ENOMEM;
    }
    /* by_node owns d; by_name borrows it. The first definition wins. */
    if (!stele_map_gets(s->named, d->full) &&
        stele_map_put(s->named, d->full, strlen(d->full), d, NULL))
        return STELE_ENOMEM;
    *out = d;
    return 0;
}

static int collect(side *s, const json_t *n, const char *ns, int depth,
                   const char *where, stele_err *err)
{
    if (depth > COMPAT_MAX_DEPTH)
        return stele_err_set(err, STELE_EINVAL, "%s: schema nested too deep",
                             where);
    if (json_is_array(n)) {
        size_t i;
        const json_t *b;
        json_array_foreach(n, i, b)
        {
            int rc = collect(s, b, ns, depth + 1, where, err);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (!json_is_object(n))
        return 0;
    const char *type = json_string_value(json_object_get(n, "type"));
    if (!type)
        return collect(s, json_object_get(n, "type"), ns, depth + 1, where,
                       err);
    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0 ||
        strcmp(type, "enum") == 0 || strcmp(type, "fixed") == 0) {
        const char *name = json_string_value(json_object_get(n, "name"));
        if (!name)
            return stele_err_set(err, STELE_EINVAL, "%s: a %s without a name",
                                 where, type);
        const named_def *d;
        if (define(s, n, name, ns, &d))
            return stele_err_set(err, STELE_ENOMEM, "compat: no memory");
        const char *inner = d->inner_ns;
        const char *full = d->full;
        if (strcmp(type, "enum") == 0 || strcmp(type, "fixed") == 0)
            return 0;
        const json_t *fields = json_object_get(n, "fields");
        if (!json_is_array(fields))
            return stele_err_set(err, STELE_EINVAL,
                                 "%s: record %s has no fields array", where,
                                 full);
        size_t i;
        const json_t *f;
        json_array_foreach(fields, i, f)
        {
            int rc = collect(s, json_object_get(f, "type"), inner, depth + 1,
                             where, err);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (strcmp(type, "array") == 0)
        return collect(s, json_object_get(n, "items"), ns, depth + 1, where,
                       err);
    if (strcmp(type, "map") == 0)
        return collect(s, json_object_get(n, "values"), ns, depth + 1, where,
                       err);
    return 0;
}

static int side_load(side *s, const char *text, const char *what,
                     stele_err *err)
{
    json_error_t jerr;
    s->named = stele_map_new();
    s->by_node = stele_map_new();
    if (!s->named || !s->by_node)
        return stele_err_set(err, STELE_ENOMEM, "compat: no memory");
    s->root = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!s->root)
        return stele_err_set(err, STELE_EINVAL,
                             "%s schema is not JSON: line %d: %s", what,
                             jerr.line, jerr.text);
    return collect(s, s->root, NULL, 0, what, err);
}

static void side_free(side *s)
{
    stele_map_free(s->named, NULL);
    stele_map_free(s->by_node, named_def_free);
    json_decref(s->root);
}

/* Resolves names and {"type": "long"} wrappers down to a definition. */
static tref deref(side *s, tref t)
{
    for (int i = 0; i < 8; i++) {
        if (json_is_string(t.node)) {
            const char *name = json_string_value(t.node);
            if (is_primitive(name))
                return t;
            char full[512];
            full_name(name, t.ns, full, sizeof full);
            const named_def *d = stele_map_gets(s->named, full);
            if (!d)
                d = stele_map_gets(s->named, name);
            if (!d)
                return t; /* unknown: reported by the caller */
            const json_t *def = d->node;
            t.node = def;
            continue;
        }
        if (json_is_object(t.node)) {
            const json_t *type = json_object_get(t.node, "type");
            if (json_is_string(type) && is_primitive(json_string_value(type)))
                return (tref){type, t.ns};
            if (!json_is_string(type))
                return (tref){type, t.ns};
        }
        return t;
    }
    return t;
}

/* "record", "enum", "fixed", "array", "map", "union" or a primitive. */
static const char *kind(tref t)
{
    if (json_is_array(t.node))
        return "union";
    if (json_is_string(t.node))
        return json_string_value(t.node);
    const char *k = json_string_value(json_object_get(t.node, "type"));
    if (k && strcmp(k, "error") == 0)
        return "record";
    return k ? k : "?";
}

static const named_def *def_of(side *s, tref t)
{
    return stele_map_get(s->by_node, &t.node, sizeof t.node);
}

/* Full name of a named definition t. */
static const char *def_full_name(side *s, tref t)
{
    const named_def *d = def_of(s, t);
    return d ? d->full : kind(t);
}

/* A readable name of a type, for messages. */
static const char *type_name(side *s, tref t, char *buf, size_t size)
{
    t = deref(s, t);
    const char *k = kind(t);
    if (strcmp(k, "record") == 0 || strcmp(k, "enum") == 0 ||
        strcmp(k, "fixed") == 0)
        return def_full_name(s, t);
    if (strcmp(k, "union") == 0) {
        size_t n = (size_t)snprintf(buf, size, "union [");
        size_t i;
        const json_t *b;
        json_array_foreach(t.node, i, b)
        {
            char one[256];
            type_name(s, (tref){b, t.ns}, one, sizeof one);
            if (n < size)
                n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "",
                                      one);
        }
        if (n < size)
            snprintf(buf + n, size - n, "]");
        return buf;
    }
    snprintf(buf, size, "%s", k);
    return buf;
}

/* The writer's full name is the reader's, or one of the reader's aliases
 * (resolved in the reader's namespace). */
static bool names_match(checker *c, tref w, tref r)
{
    const char *wn = def_full_name(&c->w, w);
    const named_def *rd = def_of(&c->r, r);
    if (!rd)
        return false;
    if (strcmp(wn, rd->full) == 0)
        return true;
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(r.node, "aliases"), i, a)
    {
        char an[512];
        if (!json_is_string(a))
            continue;
        full_name(json_string_value(a), rd->inner_ns, an, sizeof an);
        if (strcmp(an, wn) == 0)
            return true;
    }
    return false;
}

static bool promotes(const char *w, const char *r)
{
    if (strcmp(w, r) == 0)
        return true;
    if (strcmp(w, "int") == 0)
        return !strcmp(r, "long") || !strcmp(r, "float") ||
               !strcmp(r, "double");
    if (strcmp(w, "long") == 0)
        return !strcmp(r, "float") || !strcmp(r, "double");
    if (strcmp(w, "float") == 0)
        return !strcmp(r, "double");
    if (strcmp(w, "string") == 0)
        return !strcmp(r, "bytes");
    if (strcmp(w, "bytes") == 0)
        return !strcmp(r, "string");
    return false;
}

/* Whether a writer type w "matches" reader type r at the top level, the
 * spec's test for picking a reader union branch. */
static bool shallow_match(checker *c, tref w, tref r)
{
    const char *wk = kind(w), *rk = kind(r);
    if (strcmp(wk, "record") == 0 || strcmp(wk, "enum") == 0 ||
        strcmp(wk, "fixed") == 0)
        return strcmp(wk, rk) == 0 && names_match(c, w, r);
    if (strcmp(wk, "array") == 0 || strcmp(wk, "map") == 0)
        return strcmp(wk, rk) == 0;
    return is_primitive(wk) && is_primitive(rk) && promotes(wk, rk);
}

static int check(checker *c, tref w, tref r, char *path, size_t cap, int depth);

static int incompatible(checker *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int incompatible(checker *c, const char *path, const char *fmt, ...)
{
    char why[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (stele_compat_report_add(c->rep, "%s: %s", path, why))
        c->rc = STELE_ENOMEM;
    return c->rc;
}

static int check_record(checker *c, tref w, tref r, char *path, size_t cap,
                        int depth)
{
    char key[1030];
    const char *wn = def_full_name(&c->w, w), *rn = def_full_name(&c->r, r);
    int klen = snprintf(key, sizeof key, "%s%c%s", wn, '\0', rn);
    if (stele_map_get(c->seen, key, (size_t)klen))
        return 0; /* recursion: assume what is being proven */
    if (stele_map_put(c->seen, key, (size_t)klen, (void *)1, NULL))
        return c->rc = STELE_ENOMEM;
    const json_t *wf = json_object_get(w.node, "fields");
    const json_t *rf = json_object_get(r.node, "fields");
    const char *wns = def_of(&c->w, w)->inner_ns;
    const char *rns = def_of(&c->r, r)->inner_ns;
    size_t i;
    const json_t *f;
    json_array_foreach(rf, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "name"));
        if (!name)
            continue;
        const json_t *match = NULL;
        size_t j;
        const json_t *g;
        json_array_foreach(wf, j, g)
        {
            const char *gn = json_string_value(json_object_get(g, "name"));
            if (gn && strcmp(gn, name) == 0)
                match = g;
        }
        size_t k;
        const json_t *a;
        json_array_foreach(json_object_get(f, "aliases"), k, a)
        {
            json_array_foreach(wf, j, g)
            {
                const char *gn = json_string_value(json_object_get(g, "name"));
                if (!match && gn && json_is_string(a) &&
                    strcmp(gn, json_string_value(a)) == 0)
                    match = g;
            }
        }
        size_t old = codec_path_push_field(path, cap, name);
        if (match) {
            check(c, (tref){json_object_get(match, "type"), wns},
                  (tref){json_object_get(f, "type"), rns}, path, cap,
                  depth + 1);
        } else if (!json_object_get(f, "default")) {
            incompatible(c, path,
                         "reader field '%s' is missing in the writer and has "
                         "no default",
                         name);
        }
        path_pop(path, old);
        if (c->rc)
            return c->rc;
    }
    return 0;
}

static bool has_symbol(const json_t *symbols, const char *s)
{
    size_t i;
    const json_t *v;
    json_array_foreach(symbols, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static int check(checker *c, tref w, tref r, char *path, size_t cap, int depth)
{
    if (depth > COMPAT_MAX_DEPTH)
        return incompatible(c, path, "schemas nested deeper than %d",
                            COMPAT_MAX_DEPTH);
    w = deref(&c->w, w);
    r = deref(&c->r, r);
    const char *wk = kind(w), *rk = kind(r);
    char wt[512], rt[512];
    if (json_is_string(w.node) && !is_primitive(wk))
        return incompatible(c, path, "writer type %s is not defined", wk);
    if (json_is_string(r.node) && !is_primitive(rk))
        return incompatible(c, path, "reader type %s is not defined", rk);

    if (strcmp(wk, "union") == 0) {
        /* Every branch the writer may have written must be readable. */
        size_t i;
        const json_t *b;
        json_array_foreach(w.node, i, b)
        {
            check(c, (tref){b, w.ns}, r, path, cap, depth + 1);
            if (c->rc)
                return c->rc;
        }
        return 0;
    }
    if (strcmp(rk, "union") == 0) {
        /* The first branch that matches, as a decoder picks it. */
        size_t i;
        const json_t *b;
        json_array_foreach(r.node, i, b)
        {
            tref rb = deref(&c->r, (tref){b, r.ns});
            if (shallow_match(c, w, rb))
                return check(c, w, rb, path, cap, depth + 1);
        }
        return incompatible(c, path,
                            "writer type %s matches no branch of the reader "
                            "%s",
                            type_name(&c->w, w, wt, sizeof wt),
                            type_name(&c->r, r, rt, sizeof rt));
    }
    if (is_primitive(wk) || is_primitive(rk)) {
        if (is_primitive(wk) && is_primitive(rk) && promotes(wk, rk))
            return 0;
        return incompatible(c, path, "writer type %s cannot be read as %s",
                            type_name(&c->w, w, wt, sizeof wt),
                            type_name(&c->r, r, rt, sizeof rt));
    }
    if (strcmp(wk, rk) != 0)
        return incompatible(c, path, "writer type %s cannot be read as %s",
                            type_name(&c->w, w, wt, sizeof wt),
                            type_name(&c->r, r, rt, sizeof rt));
    if (strcmp(wk, "array") == 0) {
        size_t old = strlen(path);
        strncat(path, "[]", cap - old - 1);
        check(c, (tref){json_object_get(w.node, "items"), w.ns},
              (tref){json_object_get(r.node, "items"), r.ns}, path, cap,
              depth + 1);
        path_pop(path, old);
        return c->rc;
    }
    if (strcmp(wk, "map") == 0) {
        size_t old = strlen(path);
        strncat(path, "{}", cap - old - 1);
        check(c, (tref){json_object_get(w.node, "values"), w.ns},
              (tref){json_object_get(r.node, "values"), r.ns}, path, cap,
              depth + 1);
        path_pop(path, old);
        return c->rc;
    }
    if (!names_match(c, w, r))
        return incompatible(c, path,
                            "writer %s %s does not match reader %s %s (name "
                            "or reader alias)",
                            wk, def_full_name(&c->w, w), rk,
                            def_full_name(&c->r, r));
    if (strcmp(wk, "fixed") == 0) {
        json_int_t ws = json_integer_value(json_object_get(w.node, "size"));
        json_int_t rs = json_integer_value(json_object_get(r.node, "size"));
        if (ws != rs)
            return incompatible(c, path,
                                "writer fixed %s has size %lld, reader size "
                                "%lld",
                                def_full_name(&c->w, w), (long long)ws,
                                (long long)rs);
        return 0;
    }
    if (strcmp(wk, "enum") == 0) {
        const json_t *rs = json_object_get(r.node, "symbols");
        bool has_default = json_is_string(json_object_get(r.node, "default"));
        size_t i;
        const json_t *v;
        json_array_foreach(json_object_get(w.node, "symbols"), i, v)
        {
            const char *sym = json_string_value(v);
            if (sym && !has_symbol(rs, sym) && !has_default &&
                incompatible(c, path,
                             "writer symbol %s of enum %s is not in the "
                             "reader enum, which has no default",
                             sym, def_full_name(&c->r, r)))
                return c->rc;
        }
        return 0;
    }
    return check_record(c, w, r, path, cap, depth);
}

int stele_compat_check(const char *reader_text, const char *writer_text,
                       stele_compat_report *rep, stele_err *err)
{
    if (!reader_text || !writer_text || !rep)
        return stele_err_set(err, STELE_EINVAL,
                             "compat: needs two schema texts and a report");
    checker c = {.rep = rep};
    int rc = 0;
    if (!(c.seen = stele_map_new()))
        rc = stele_err_set(err, STELE_ENOMEM, "compat: no memory");
    if (rc == 0)
        rc = side_load(&c.w, writer_text, "writer", err);
    if (rc == 0)
        rc = side_load(&c.r, reader_text, "reader", err);
    if (rc == 0) {
        char path[1024];
        tref w = deref(&c.w, (tref){c.w.root, NULL});
        snprintf(path, sizeof path, "%s", def_full_name(&c.w, w));
        check(&c, (tref){c.w.root, NULL}, (tref){c.r.root, NULL}, path,
              sizeof path, 0);
        if (c.rc)
            rc = stele_err_set(err, c.rc, "compat: no memory");
    }
    side_free(&c.w);
    side_free(&c.r);
    stele_map_free(c.seen, NULL);
    return rc;
}
