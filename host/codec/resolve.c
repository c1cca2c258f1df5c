/*
 * resolve.c — compiling the plan that reads a writer's binary into a
 * reader's schema (Avro specification, "Schema Resolution").
 *
 * avro-c's resolved writer cannot be used: it ignores "default", so a
 * reader field the writer lacks fails, and it knows no aliases. The plan
 * is built once per (writer id, reader) pair and cached by wire.c; reading
 * with it (resolve_read.c) is one pass over the writer's bytes that sets
 * the reader's value directly, without an intermediate writer value.
 *
 * Rules: fields match by name or by a reader field's aliases; writer
 * fields the reader lacks are skipped; reader fields the writer lacks take
 * their declared default (none: the pair does not resolve); records, enums
 * and fixed match by unqualified name or a reader alias; int -> long ->
 * float -> double and string <-> bytes promote; a writer enum symbol the
 * reader lacks takes the reader enum's "default" or fails when read; a
 * writer union branch takes the reader union's first branch of the same
 * type, else its first branch the value promotes to (Java's order).
 * A mismatch on a path every value takes fails here, at plan time; one
 * below a writer union branch fails only when a value takes that branch.
 */
#include "resolve.h"

#include <stdlib.h>
#include <string.h>

typedef struct bctx {
    resolver *r;
    const codec_schema *reader;
    stele_map *named; /* reader full name -> its JSON definition */
    stele_map *memo;  /* {writer, reader} record pair -> rnode */
    int in_wunion;    /* > 0 below a writer union branch */
    char *fail;       /* the first unconditional failure */
    char path[256];
    int oom;
} bctx;

/* ------------------------------------------------------------------ */
/* The reader's named types in its JSON text: aliases, enum defaults.  */

static void full_name_of(const char *name, const char *ns, char *out,
                         size_t size)
{
    if (strchr(name, '.') || !ns || !*ns)
        snprintf(out, size, "%s", name);
    else
        snprintf(out, size, "%s.%s", ns, name);
}

static int collect_named(json_t *node, const char *ns, stele_map *out,
                         int depth)
{
    if (depth > CODEC_MAX_DEPTH)
        return 0;
    if (json_is_array(node)) {
        size_t i;
        json_t *item;
        json_array_foreach(node, i, item)
        {
            if (collect_named(item, ns, out, depth + 1))
                return STELE_ENOMEM;
        }
        return 0;
    }
    if (!json_is_object(node))
        return 0;
    json_t *type = json_object_get(node, "type");
    const char *t = json_string_value(type);
    if (!t)
        return collect_named(type, ns, out, depth + 1);
    if (!strcmp(t, "array"))
        return collect_named(json_object_get(node, "items"), ns, out,
                             depth + 1);
    if (!strcmp(t, "map"))
        return collect_named(json_object_get(node, "values"), ns, out,
                             depth + 1);
    const char *name = json_string_value(json_object_get(node, "name"));
    if (!name || (strcmp(t, "record") && strcmp(t, "error") &&
                  strcmp(t, "enum") && strcmp(t, "fixed")))
        return 0;
    const char *own = json_string_value(json_object_get(node, "namespace"));
    char full[512], own_ns[512];
    full_name_of(name, own ? own : ns, full, sizeof full);
    const char *dot = strrchr(full, '.');
    snprintf(own_ns, sizeof own_ns, "%.*s", dot ? (int)(dot - full) : 0, full);
    if (stele_map_put(out, full, strlen(full), node, NULL))
        return STELE_ENOMEM;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(node, "fields"), i, f)
    {
        if (collect_named(json_object_get(f, "type"), own_ns, out, depth + 1))
            return STELE_ENOMEM;
    }
    return 0;
}

static json_t *named_json(bctx *b, avro_schema_t s)
{
    char full[512];
    codec_full_name(s, full, sizeof full);
    return stele_map_gets(b->named, full);
}

/* Whether alias (relative to namespace ns) names the writer type w. */
static bool alias_names(const char *alias, const char *ns, avro_schema_t w)
{
    char a[512], wfull[512];
    full_name_of(alias, ns, a, sizeof a);
    codec_full_name(w, wfull, sizeof wfull);
    return strcmp(a, wfull) == 0 || strcmp(alias, avro_schema_name(w)) == 0;
}

/* Named types match by unqualified name or by one of the reader's
 * aliases. */
static bool names_match(bctx *b, avro_schema_t w, avro_schema_t r)
{
    if (strcmp(avro_schema_name(w), avro_schema_name(r)) == 0)
        return true;
    json_t *def = named_json(b, r);
    const char *ns = avro_schema_namespace(r);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(def, "aliases"), i, a)
    {
        if (json_is_string(a) && alias_names(json_string_value(a), ns, w))
            return true;
    }
    return false;
}

static bool promotes(avro_type_t w, avro_type_t r)
{
    switch (w) {
    case AVRO_INT32:
        return r == AVRO_INT64 || r == AVRO_FLOAT || r == AVRO_DOUBLE;
    case AVRO_INT64: return r == AVRO_FLOAT || r == AVRO_DOUBLE;
    case AVRO_FLOAT: return r == AVRO_DOUBLE;
    case AVRO_STRING: return r == AVRO_BYTES;
    case AVRO_BYTES: return r == AVRO_STRING;
    default: return false;
    }
}

/* The shallow match used to pick a reader union branch. */
static bool same_kind(bctx *b, avro_schema_t w, avro_schema_t r)
{
    avro_type_t wt = avro_typeof(w);
    if (wt != avro_typeof(r))
        return false;
    switch (wt) {
    case AVRO_RECORD:
    case AVRO_ENUM: return names_match(b, w, r);
    case AVRO_FIXED:
        return names_match(b, w, r) &&
               avro_schema_fixed_size(w) == avro_schema_fixed_size(r);
    default: return true;
    }
}

static int pick_branch(bctx *b, avro_schema_t w, avro_schema_t ru)
{
    size_t n = avro_schema_union_size(ru);
    for (size_t i = 0; i < n; i++)
        if (same_kind(b, w,
                      codec_schema_deref(avro_schema_union_branch(ru, i))))
            return (int)i;
    for (size_t i = 0; i < n; i++)
        if (promotes(avro_typeof(w), avro_typeof(codec_schema_deref(
                                         avro_schema_union_branch(ru, i)))))
            return (int)i;
    return -1;
}

/* ------------------------------------------------------------------ */
/* Nodes                                                                */

static rnode *node_new(bctx *b, rop op)
{
    resolver *r = b->r;
    if (r->n_all == r->cap_all) {
        size_t cap = r->cap_all ? r->cap_all * 2 : 16;
        rnode **all = realloc(r->all, cap * sizeof *all);
        if (!all) {
            b->oom = 1;
            return NULL;
        }
        r->all = all;
        r->cap_all = cap;
    }
    rnode *n = calloc(1, sizeof *n);
    if (!n) {
        b->oom = 1;
        return NULL;
    }
    n->op = op;
    r->all[r->n_all++] = n;
    return n;
}

static const char *type_label(avro_schema_t s, char *buf, size_t size)
{
    avro_type_t t = avro_typeof(s);
    if (t == AVRO_RECORD || t == AVRO_ENUM || t == AVRO_FIXED)
        return codec_full_name(s, buf, size);
    snprintf(buf, size, "%s", avro_schema_type_name(s));
    return buf;
}

static rnode *fail_node(bctx *b, const char *fmt, const char *x, const char *y)
{
    rnode *n = node_new(b, R_FAIL);
    if (!n)
        return NULL;
    char msg[700];
    snprintf(msg, sizeof msg, fmt, x, y);
    char full[1000];
    snprintf(full, sizeof full, "%s%s%s", b->path, *b->path ? ": " : "", msg);
    if (!(n->reason = strdup(full)))
        b->oom = 1;
    if (!b->in_wunion && !b->fail && n->reason && !(b->fail = strdup(full)))
        b->oom = 1;
    return n;
}

static rnode *mismatch(bctx *b, avro_schema_t w, avro_schema_t r)
{
    char wl[300], rl[300];
    return fail_node(b, "the writer's %s cannot be read as the reader's %s",
                     type_label(w, wl, sizeof wl),
                     type_label(r, rl, sizeof rl));
}

static rnode *build(bctx *b, avro_schema_t w, avro_schema_t r, int depth);

static rnode *build_enum(bctx *b, avro_schema_t w, avro_schema_t r)
{
    rnode *n = node_new(b, R_ENUM);
    if (!n)
        return NULL;
    n->wschema = w;
    n->n = (size_t)avro_schema_enum_number_of_symbols(w);
    n->map = calloc(n->n ? n->n : 1, sizeof *n->map);
    char name[512];
    codec_full_name(r, name, sizeof name);
    const char *dflt =
        json_string_value(json_object_get(named_json(b, r), "default"));
    int dflt_idx = dflt ? avro_schema_enum_get_by_name(r, dflt) : -1;
    char reason[900];
    snprintf(reason, sizeof reason, "%s%senum %s has no such symbol", b->path,
             *b->path ? ": " : "", name);
    if (!n->map || !(n->reason = strdup(reason))) {
        b->oom = 1;
        return n;
    }
    for (size_t i = 0; i < n->n; i++) {
        int ri =
            avro_schema_enum_get_by_name(r, avro_schema_enum_get(w, (int)i));
        n->map[i] = ri >= 0 ? ri : dflt_idx;
    }
    return n;
}

/* Fills def with the reader field's default, parsed from the .avsc JSON. */
static int default_value(bctx *b, avro_schema_t fs, json_t *dflt,
                         avro_value_t *def)
{
    avro_value_iface_t *iface = avro_generic_class_from_schema(fs);
    resolver *r = b->r;
    if (!iface)
        return STELE_EINVAL;
    if (r->n_ifaces == r->cap_ifaces) {
        size_t cap = r->cap_ifaces ? r->cap_ifaces * 2 : 8;
        avro_value_iface_t **f = realloc(r->ifaces, cap * sizeof *f);
        if (!f) {
            avro_value_iface_decref(iface);
            return STELE_ENOMEM;
        }
        r->ifaces = f;
        r->cap_ifaces = cap;
    }
    r->ifaces[r->n_ifaces++] = iface;
    if (avro_generic_value_new(iface, def))
        return STELE_ENOMEM;
    stele_err err = {0};
    char path[256];
    snprintf(path, sizeof path, "%s", b->path);
    return codec_json_to_value(b->reader, dflt, def, JSON_DEFAULT, 0, path,
                               sizeof path, &err);
}

static rnode *build_record(bctx *b, avro_schema_t w, avro_schema_t r, int depth)
{
    struct {
        avro_schema_t w, r;
    } key = {w, r};
    rnode *n = stele_map_get(b->memo, &key, sizeof key);
    if (n)
        return n; /* a recursive or shared record pair */
    n = node_new(b, R_RECORD);
    if (!n || stele_map_put(b->memo, &key, sizeof key, n, NULL)) {
        b->oom = 1;
        return NULL;
    }
    size_t nw = avro_schema_record_size(w), nr = avro_schema_record_size(r);
    n->n = nw;
    n->map = malloc((nw ? nw : 1) * sizeof *n->map);
    n->kids = calloc(nw ? nw : 1, sizeof *n->kids);
    n->skip = calloc(nw ? nw : 1, sizeof *n->skip);
    n->def_idx = calloc(nr ? nr : 1, sizeof *n->def_idx);
    n->def_val = calloc(nr ? nr : 1, sizeof *n->def_val);
    if (!n->map || !n->kids || !n->skip || !n->def_idx || !n->def_val) {
        b->oom = 1;
        return n;
    }
    for (size_t i = 0; i < nw; i++)
        n->map[i] = -1;
    const record_info *ri = codec_record_info(b->reader, r);
    json_t *fields = json_object_get(named_json(b, r), "fields");
    for (size_t j = 0; j < nr; j++) {
        const char *fname = avro_schema_record_field_name(r, (int)j);
        int wi = avro_schema_record_field_get_index(w, fname);
        json_t *jf = json_array_get(fields, j);
        size_t k;
        json_t *a;
        json_array_foreach(json_object_get(jf, "aliases"), k, a)
        {
            if (wi < 0 && json_is_string(a))
                wi =
                    avro_schema_record_field_get_index(w, json_string_value(a));
        }
        size_t old = codec_path_push_field(b->path, sizeof b->path, fname);
        if (wi >= 0 && n->map[wi] < 0) {
            n->map[wi] = (int)j;
            n->kids[wi] = build(
                b, avro_schema_record_field_get_by_index(w, wi),
                avro_schema_record_field_get_by_index(r, (int)j), depth + 1);
        } else if (ri && j < ri->n_fields && ri->defaults[j]) {
            n->def_idx[n->n_defs] = j;
            if (default_value(
                    b,
                    codec_schema_deref(
                        avro_schema_record_field_get_by_index(r, (int)j)),
                    ri->defaults[j], &n->def_val[n->n_defs]))
                fail_node(b, "%s%s",
                          "the reader's default does not fit its "
                          "type",
                          "");
            n->n_defs++;
        } else {
            path_pop(b->path, old);
            char rn[512];
            codec_full_name(r, rn, sizeof rn);
            rnode *f = fail_node(b,
                                 "reader field %s.%s is missing from the "
                                 "writer and has no default",
                                 rn, fname);
            return f;
        }
        path_pop(b->path, old);
    }
    for (size_t i = 0; i < nw; i++)
        if (n->map[i] < 0)
            n->skip[i] = avro_schema_record_field_get_by_index(w, (int)i);
    return n;
}

static rnode *build(bctx *b, avro_schema_t w, avro_schema_t r, int depth)
{
    w = codec_schema_deref(w);
    r = codec_schema_deref(r);
    if (depth > CODEC_MAX_DEPTH)
        return fail_node(b, "%s%s", "nested too deep", "");
    avro_type_t wt = avro_typeof(w), rt = avro_typeof(r);
    rnode *n;
    if (wt == AVRO_UNION) {
        if (!(n = node_new(b, R_WUNION)))
            return NULL;
        n->n = avro_schema_union_size(w);
        if (!(n->kids = calloc(n->n ? n->n : 1, sizeof *n->kids))) {
            b->oom = 1;
            return n;
        }
        b->in_wunion++;
        for (size_t i = 0; i < n->n && !b->oom; i++)
            n->kids[i] = build(b, avro_schema_union_branch(w, i), r, depth + 1);
        b->in_wunion--;
        return n;
    }
    if (rt == AVRO_UNION) {
        int k = pick_branch(b, w, r);
        char wl[300];
        if (k < 0)
            return fail_node(b,
                             "the writer's %s matches no branch of the "
                             "reader's union%s",
                             type_label(w, wl, sizeof wl), "");
        if (!(n = node_new(b, R_RBRANCH)) ||
            !(n->kids = calloc(1, sizeof *n->kids))) {
            b->oom = 1;
            return n;
        }
        n->branch = k;
        n->kids[0] =
            build(b, w, avro_schema_union_branch(r, (size_t)k), depth + 1);
        return n;
    }
    if (wt != rt && !promotes(wt, rt))
        return mismatch(b, w, r);
    switch (wt) {
    case AVRO_NULL: return node_new(b, R_NULL);
    case AVRO_BOOLEAN: return node_new(b, R_BOOL);
    case AVRO_INT32:
    case AVRO_INT64:
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
    case AVRO_STRING:
    case AVRO_BYTES:
        if ((n = node_new(b, wt == AVRO_STRING || wt == AVRO_BYTES ? R_TEXT
                                                                   : R_NUMBER)))
            n->wt = wt, n->rt = rt;
        return n;
    case AVRO_FIXED:
        if (!same_kind(b, w, r))
            return mismatch(b, w, r);
        if ((n = node_new(b, R_FIXED)))
            n->n = (size_t)avro_schema_fixed_size(w);
        return n;
    case AVRO_ENUM:
        return names_match(b, w, r) ? build_enum(b, w, r) : mismatch(b, w, r);
    case AVRO_RECORD:
        return names_match(b, w, r) ? build_record(b, w, r, depth)
                                    : mismatch(b, w, r);
    case AVRO_ARRAY:
    case AVRO_MAP: {
        bool arr = wt == AVRO_ARRAY;
        if (!(n = node_new(b, arr ? R_ARRAY : R_MAP)) ||
            !(n->kids = calloc(1, sizeof *n->kids))) {
            b->oom = 1;
            return n;
        }
        size_t old = strnlen(b->path, sizeof b->path - 1);
        snprintf(b->path + old, sizeof b->path - old, arr ? "[]" : "{}");
        n->kids[0] = arr ? build(b, avro_schema_array_items(w),
                                 avro_schema_array_items(r), depth + 1)
                         : build(b, avro_schema_map_values(w),
                                 avro_schema_map_values(r), depth + 1);
        path_pop(b->path, old);
        return n;
    }
    default: return mismatch(b, w, r);
    }
}

/* ------------------------------------------------------------------ */

int codec_resolver_new(const stele_schema *writer, const stele_schema *reader,
                       resolver **out, stele_err *err)
{
    resolver *r = calloc(1, sizeof *r);
    if (!r)
        return stele_err_set(err, STELE_ENOMEM, "resolver: no memory");
    char label[400];
    snprintf(r->what, sizeof r->what, "writer %s into reader %s v%d",
             codec_writer_label(writer, label, sizeof label), reader->name,
             reader->version);
    bctx b = {.r = r,
              .reader = codec_schema_of(reader),
              .named = stele_map_new(),
              .memo = stele_map_new()};
    if (!b.named || !b.memo ||
        collect_named(codec_schema_of(reader)->json, "", b.named, 0))
        b.oom = 1;
    if (!b.oom)
        r->root = build(&b, writer->schema, reader->schema, 0);
    stele_map_free(b.named, NULL);
    stele_map_free(b.memo, NULL);
    int rc = 0;
    if (b.oom || !r->root)
        rc = stele_err_set(err, STELE_ENOMEM, "resolving %s: no memory",
                           r->what);
    else if (b.fail)
        rc = stele_err_set(err, STELE_EINVAL, "cannot resolve %s: %s", r->what,
                           b.fail);
    free(b.fail);
    if (rc) {
        codec_resolver_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void codec_resolver_free(resolver *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_all; i++) {
        rnode *n = r->all[i];
        for (size_t j = 0; j < n->n_defs; j++)
            if (n->def_val[j].iface)
                avro_value_decref(&n->def_val[j]);
        free(n->map);
        free(n->kids);
        free(n->skip);
        free(n->def_idx);
        free(n->def_val);
        free(n->reason);
        free(n);
    }
    for (size_t i = 0; i < r->n_ifaces; i++)
        avro_value_iface_decref(r->ifaces[i]);
    free(r->ifaces);
    free(r->all);
    free(r->scratch);
    free(r);
}
