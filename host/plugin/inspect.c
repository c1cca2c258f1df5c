/*
 * inspect.c — printing what a plugin declares, for `stele plugin inspect`.
 *
 * Only the entry function runs: init is not called, so inspecting a plugin
 * is safe on a machine without its database or configuration.
 */
#include "open.h"

#include <inttypes.h>
#include <string.h>

static const char *column_type_name(stele_column_type t)
{
    switch (t) {
    case STELE_COL_INT: return "INT";
    case STELE_COL_REAL: return "REAL";
    case STELE_COL_TEXT: return "TEXT";
    case STELE_COL_BLOB: return "BLOB";
    }
    return "?";
}

static void print_refs(FILE *out, const char *title,
                       const stele_record_ref *refs, size_t n)
{
    fprintf(out, "  %s:\n", title);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "    %s v%d\n", refs[i].name, refs[i].version);
}

static void print_aggregate(FILE *out, const stele_aggregate_def *a)
{
    fprintf(out, "aggregate: %s\n", a->type);
    fprintf(out, "  state: %s v%d\n", a->state.name, a->state.version);
    fprintf(out, "  state_version: %d\n", a->state_version);
    print_refs(out, "commands", a->commands, a->n_commands);
    print_refs(out, "events", a->events, a->n_events);
}

static void print_table(FILE *out, const stele_table_def *t)
{
    int width = 0;
    for (size_t i = 0; i < t->n_columns; i++) {
        int len = (int)strlen(t->columns[i].name);
        width = len > width ? len : width;
    }
    fprintf(out, "    %s\n", t->name);
    for (size_t i = 0; i < t->n_columns; i++) {
        const stele_column_def *c = &t->columns[i];
        char flags[64] = "";
        if (c->flags & STELE_COL_KEY)
            strcat(flags, " KEY");
        if (c->flags & STELE_COL_FILTER)
            strcat(flags, " FILTER");
        if (c->flags & STELE_COL_SORT)
            strcat(flags, " SORT");
        if (c->flags & STELE_COL_NULLABLE)
            strcat(flags, " NULLABLE");
        /* Types padded to line the flags up, with no trailing blanks. */
        fprintf(out, "      %-*s  %-*s%s", width, c->name, flags[0] ? 4 : 0,
                column_type_name(c->type), flags);
        fputc('\n', out);
    }
}

static void print_projector(FILE *out, const stele_projector_def *p)
{
    fprintf(out, "projector: %s\n", p->name);
    fprintf(out, "  version: %d\n", p->version);
    print_refs(out, "events", p->events, p->n_events);
    fprintf(out, "  tables:\n");
    for (size_t i = 0; i < p->n_tables; i++)
        print_table(out, &p->tables[i]);
}

static void print_query(FILE *out, const stele_query_def *q)
{
    fprintf(out, "query: %s\n", q->name);
    fprintf(out, "  params: %s v%d\n", q->params.name, q->params.version);
    fprintf(out, "  single: %s\n", q->single ? "yes" : "no");
}

static void print_upcaster(FILE *out, const stele_upcaster_def *u)
{
    fprintf(out, "upcaster: %s\n", u->event_type);
    fprintf(out, "  versions: %d -> %d\n", u->from_version, u->to_version);
}

int stele_plugin_inspect(const char *path, FILE *out, stele_err *err)
{
    stele_plugin *p;
    int rc = stele_plugin_open(path, &p, err);
    if (rc)
        return rc;
    const stele_plugin_descriptor *d = p->desc;
    fprintf(out, "plugin: %s\n", path);
    fprintf(out, "name: %s\n", d->name);
    fprintf(out, "version: %s\n", d->version);
    fprintf(out, "kind: %s\n", stele_plugin_kind_name(d->kind));
    fprintf(out, "abi: %u.%u (host %d.%d), ", (unsigned)d->abi_major,
            (unsigned)d->abi_minor, STELE_ABI_MAJOR, STELE_ABI_MINOR);
    /* A mismatch never gets here: stele_plugin_open refused it. */
    if (stele_plugin_fingerprinted(d))
        fprintf(out, "fingerprint %016" PRIx64 " (matches)\n",
                d->abi_fingerprint);
    else
        fprintf(out, "unchecked: built before fingerprints\n");
    fprintf(out, "init: %s, fini: %s\n", d->init ? "yes" : "no",
            d->fini ? "yes" : "no");
    switch (d->kind) {
    case STELE_PLUGIN_AGGREGATE: print_aggregate(out, d->def.aggregate); break;
    case STELE_PLUGIN_PROJECTOR: print_projector(out, d->def.projector); break;
    case STELE_PLUGIN_QUERY: print_query(out, d->def.query); break;
    case STELE_PLUGIN_UPCASTER: print_upcaster(out, d->def.upcaster); break;
    }
    stele_plugin_close(p);
    return 0;
}

typedef struct cat_check {
    const stele_schema *const *cat;
    size_t n;
    const char *dir;
    FILE *out;
    size_t checked, missing;
} cat_check;

static void check_ref(cat_check *c, const char *what, const char *name,
                      int version)
{
    c->checked++;
    for (size_t i = 0; name && i < c->n; i++)
        if (c->cat[i]->version == version && strcmp(c->cat[i]->name, name) == 0)
            return;
    c->missing++;
    fprintf(c->out, "  MISSING %s %s v%d: no file %s.v%d.avsc in %s\n", what,
            name ? name : "(null)", version, name ? name : "(null)", version,
            c->dir);
}

static void check_refs(cat_check *c, const char *what,
                       const stele_record_ref *refs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_ref(c, what, refs[i].name, refs[i].version);
}

int stele_plugin_check_catalogue(const char *path,
                                 const stele_schema *const *cat, size_t n,
                                 const char *dir, FILE *out, size_t *missing,
                                 stele_err *err)
{
    stele_plugin *p;
    int rc = stele_plugin_open(path, &p, err);
    if (rc)
        return rc;
    const stele_plugin_descriptor *d = p->desc;
    cat_check c = {cat, n, dir, out, 0, 0};
    fprintf(out, "catalogue %s:\n", dir);
    switch (d->kind) {
    case STELE_PLUGIN_AGGREGATE: {
        const stele_aggregate_def *a = d->def.aggregate;
        check_ref(&c, "state", a->state.name, a->state.version);
        check_refs(&c, "command", a->commands, a->n_commands);
        check_refs(&c, "event", a->events, a->n_events);
        break;
    }
    case STELE_PLUGIN_PROJECTOR:
        check_refs(&c, "event", d->def.projector->events,
                   d->def.projector->n_events);
        break;
    case STELE_PLUGIN_QUERY:
        check_ref(&c, "params", d->def.query->params.name,
                  d->def.query->params.version);
        break;
    case STELE_PLUGIN_UPCASTER:
        check_ref(&c, "upcast from", d->def.upcaster->event_type,
                  d->def.upcaster->from_version);
        break;
    }
    if (c.missing == 0)
        fprintf(out, "  all %zu schema%s the plugin names are there\n",
                c.checked, c.checked == 1 ? "" : "s");
    *missing = c.missing;
    stele_plugin_close(p);
    return 0;
}
