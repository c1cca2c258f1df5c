/*
 * check.c — validating a plugin descriptor and its definition before the
 * host calls anything in it.
 *
 * Everything a later part would trip over is refused here, with the field
 * that is wrong: a NULL name would crash the engine, a table name that is
 * not an SQL identifier would be spliced into CREATE TABLE, a count with a
 * NULL array would be read.
 */
#include "open.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

/* Far above any real definition; bounds what a garbage count makes us read. */
#define DEF_MAX_ITEMS 10000
#define SQL_IDENT_MAX 63 /* PostgreSQL's NAMEDATALEN - 1 */

/* What a tripped bound most likely means: the plugin and the host disagree
 * on where the fields are. */
#define LAYOUT_HINT " (layout mismatch? built against a different plugin.h)"

#define COL_KNOWN_FLAGS                                                        \
    (STELE_COL_KEY | STELE_COL_FILTER | STELE_COL_SORT | STELE_COL_NULLABLE |  \
     STELE_COL_INDEX)

static int bad(stele_err *err, int code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(stele_err *err, int code, const char *path, const char *fmt, ...)
{
    char msg[STELE_ERR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return stele_err_set(err, code, "%s: %s", path, msg);
}

static bool has_text(const char *s)
{
    return s && *s;
}

/* Names that become part of topic, group or URL names. */
static bool is_name(const char *s)
{
    return has_text(s) &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._-") == strlen(s);
}

/* An Avro full name: dot-separated [A-Za-z_][A-Za-z0-9_]* parts. */
static bool is_avro_name(const char *s)
{
    if (!has_text(s))
        return false;
    bool start = true;
    for (; *s; s++) {
        char c = *s;
        bool alpha =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (c == '.' && !start)
            start = true;
        else if (alpha || (!start && c >= '0' && c <= '9'))
            start = false;
        else
            return false;
    }
    return !start;
}

static bool is_sql_ident(const char *s)
{
    return is_avro_name(s) && !strchr(s, '.') && strlen(s) <= SQL_IDENT_MAX;
}

/* Checks record references: `what` is "command", "event"; a single
 * reference (a state, a params record) is a list of one. */
static int check_refs(const char *path, const char *owner,
                      const stele_record_ref *refs, size_t n, const char *what,
                      bool need_one, stele_err *err)
{
    bool single = refs && n == 1 && !need_one;
    if (n == 0 && need_one)
        return bad(err, STELE_EINVAL, path, "%s declares no %ss", owner, what);
    if (n > DEF_MAX_ITEMS)
        return bad(err, STELE_EINVAL, path,
                   "%s declares %zu %ss (at most %d)" LAYOUT_HINT, owner, n,
                   what, DEF_MAX_ITEMS);
    if (n && !refs)
        return bad(err, STELE_EINVAL, path, "%s has %zu %ss but no %s array",
                   owner, n, what, what);
    for (size_t i = 0; i < n; i++) {
        if (!has_text(refs[i].name) && single)
            return bad(err, STELE_EINVAL, path, "%s %s has no name", owner,
                       what);
        if (!has_text(refs[i].name))
            return bad(err, STELE_EINVAL, path, "%s %s %zu has no name", owner,
                       what, i);
        if (!is_avro_name(refs[i].name))
            return bad(err, STELE_EINVAL, path,
                       "%s %s '%s' is not an Avro full name", owner, what,
                       refs[i].name);
        if (refs[i].version < 1)
            return bad(err, STELE_EINVAL, path,
                       "%s %s '%s' has version %d (must be >= 1)", owner, what,
                       refs[i].name, refs[i].version);
        for (size_t j = 0; j < i; j++)
            if (strcmp(refs[i].name, refs[j].name) == 0)
                return bad(err, STELE_EINVAL, path, "%s lists %s '%s' twice",
                           owner, what, refs[i].name);
    }
    return 0;
}

static int check_aggregate(const char *path, const stele_aggregate_def *a,
                           stele_err *err)
{
    char owner[300];
    if (!has_text(a->type))
        return bad(err, STELE_EINVAL, path, "aggregate has no type");
    if (!is_name(a->type))
        return bad(err, STELE_EINVAL, path,
                   "aggregate type '%s' may hold only letters, digits, '.', "
                   "'_' and '-'",
                   a->type);
    snprintf(owner, sizeof owner, "aggregate '%s'", a->type);
    int rc;
    if ((rc = check_refs(path, owner, a->commands, a->n_commands, "command",
                         true, err)) ||
        (rc = check_refs(path, owner, a->events, a->n_events, "event", true,
                         err)) ||
        (rc = check_refs(path, owner, &a->state, 1, "state", false, err)))
        return rc;
    if (a->state_version < 1)
        return bad(err, STELE_EINVAL, path,
                   "%s has state_version %d (must be >= 1)", owner,
                   a->state_version);
    if (!a->decide)
        return bad(err, STELE_EINVAL, path, "%s has no decide callback", owner);
    if (!a->evolve)
        return bad(err, STELE_EINVAL, path, "%s has no evolve callback", owner);
    return 0;
}

static int check_table(const char *path, const char *owner,
                       const stele_table_def *t, stele_err *err)
{
    if (!is_sql_ident(t->name))
        return bad(err, STELE_EINVAL, path,
                   "%s has a table named '%s', not an SQL identifier "
                   "([A-Za-z_][A-Za-z0-9_]*, at most %d characters)",
                   owner, t->name ? t->name : "(null)", SQL_IDENT_MAX);
    if (t->n_columns == 0)
        return bad(err, STELE_EINVAL, path, "%s table '%s' has no columns",
                   owner, t->name);
    if (t->n_columns > DEF_MAX_ITEMS || !t->columns)
        return bad(
            err, STELE_EINVAL, path, "%s table '%s' has %zu columns but %s",
            owner, t->name, t->n_columns,
            t->columns ? "at most 10000 are allowed" LAYOUT_HINT : "no array");
    bool key = false;
    for (size_t i = 0; i < t->n_columns; i++) {
        const stele_column_def *c = &t->columns[i];
        if (!is_sql_ident(c->name))
            return bad(err, STELE_EINVAL, path,
                       "%s table '%s' column %zu is named '%s', not an SQL "
                       "identifier",
                       owner, t->name, i, c->name ? c->name : "(null)");
        if (c->type < STELE_COL_INT || c->type > STELE_COL_BLOB)
            return bad(err, STELE_EINVAL, path,
                       "%s table '%s' column '%s' has unknown type %d", owner,
                       t->name, c->name, (int)c->type);
        if (c->flags & ~COL_KNOWN_FLAGS)
            return bad(err, STELE_EINVAL, path,
                       "%s table '%s' column '%s' has unknown flags 0x%x",
                       owner, t->name, c->name, c->flags & ~COL_KNOWN_FLAGS);
        if ((c->flags & STELE_COL_KEY) && (c->flags & STELE_COL_NULLABLE))
            return bad(err, STELE_EINVAL, path,
                       "%s table '%s' column '%s' is both KEY and NULLABLE",
                       owner, t->name, c->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->name, t->columns[j].name) == 0)
                return bad(err, STELE_EINVAL, path,
                           "%s table '%s' has column '%s' twice", owner,
                           t->name, c->name);
        key |= (c->flags & STELE_COL_KEY) != 0;
    }
    if (!key)
        return bad(err, STELE_EINVAL, path, "%s table '%s' has no KEY column",
                   owner, t->name);
    return 0;
}

static int check_projector(const char *path, const stele_projector_def *p,
                           stele_err *err)
{
    char owner[300];
    if (!is_name(p->name))
        return bad(err, STELE_EINVAL, path,
                   "projector name '%s' is empty or holds characters other "
                   "than letters, digits, '.', '_' and '-'",
                   p->name ? p->name : "(null)");
    snprintf(owner, sizeof owner, "projector '%s'", p->name);
    if (p->version < 1)
        return bad(err, STELE_EINVAL, path, "%s has version %d (must be >= 1)",
                   owner, p->version);
    int rc =
        check_refs(path, owner, p->events, p->n_events, "event", true, err);
    if (rc)
        return rc;
    if (p->n_tables > DEF_MAX_ITEMS || (p->n_tables && !p->tables))
        return bad(err, STELE_EINVAL, path, "%s has %zu tables but %s", owner,
                   p->n_tables,
                   p->tables ? "at most 10000 are allowed" LAYOUT_HINT
                             : "no array");
    for (size_t i = 0; i < p->n_tables; i++) {
        if ((rc = check_table(path, owner, &p->tables[i], err)))
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->tables[i].name, p->tables[j].name) == 0)
                return bad(err, STELE_EINVAL, path, "%s has table '%s' twice",
                           owner, p->tables[i].name);
    }
    if (!p->project)
        return bad(err, STELE_EINVAL, path, "%s has no project callback",
                   owner);
    return 0;
}

static int check_query(const char *path, const stele_query_def *q,
                       stele_err *err)
{
    char owner[300];
    if (!is_name(q->name))
        return bad(err, STELE_EINVAL, path,
                   "query name '%s' is empty or holds characters other than "
                   "letters, digits, '.', '_' and '-'",
                   q->name ? q->name : "(null)");
    snprintf(owner, sizeof owner, "query '%s'", q->name);
    int rc =
        check_refs(path, owner, &q->params, 1, "params record", false, err);
    if (rc)
        return rc;
    if (!q->run)
        return bad(err, STELE_EINVAL, path, "%s has no run callback", owner);
    return 0;
}

static int check_upcaster(const char *path, const stele_upcaster_def *u,
                          stele_err *err)
{
    if (!is_avro_name(u->event_type))
        return bad(err, STELE_EINVAL, path,
                   "upcaster event_type '%s' is not an Avro full name",
                   u->event_type ? u->event_type : "(null)");
    if (u->from_version < 1)
        return bad(err, STELE_EINVAL, path,
                   "upcaster '%s' has from_version %d (must be >= 1)",
                   u->event_type, u->from_version);
    if (u->to_version != u->from_version + 1)
        return bad(err, STELE_EINVAL, path,
                   "upcaster '%s' goes from version %d to %d (to_version "
                   "must be from_version + 1)",
                   u->event_type, u->from_version, u->to_version);
    if (!u->upcast)
        return bad(err, STELE_EINVAL, path,
                   "upcaster '%s' v%d has no upcast callback", u->event_type,
                   u->from_version);
    return 0;
}

int stele_plugin_check(const stele_plugin_descriptor *d, const char *path,
                       stele_err *err)
{
    if (!d)
        return bad(err, STELE_EABI, path, "%s returned NULL",
                   STELE_PLUGIN_ENTRY_SYMBOL);
    /* magic, ABI and size are the descriptor's stable head, and the
     * fingerprint says whether the rest is laid out as the host reads it:
     * check them before trusting anything after them. */
    if (d->magic != STELE_PLUGIN_MAGIC)
        return bad(err, STELE_EABI, path, "bad magic 0x%08x (expected 0x%08x)",
                   (unsigned)d->magic, (unsigned)STELE_PLUGIN_MAGIC);
    if (d->abi_major != STELE_ABI_MAJOR)
        return bad(err, STELE_EABI, path, "ABI major %u, host expects %d",
                   (unsigned)d->abi_major, STELE_ABI_MAJOR);
    if (d->abi_minor > STELE_ABI_MINOR)
        return bad(err, STELE_EABI, path, "ABI %u.%u is newer than host %d.%d",
                   (unsigned)d->abi_major, (unsigned)d->abi_minor,
                   STELE_ABI_MAJOR, STELE_ABI_MINOR);
    int rc = stele_plugin_check_layout(d, path, err);
    if (rc)
        return rc;
    if (!has_text(d->name))
        return bad(err, STELE_EINVAL, path, "descriptor has no name");
    /* The name goes into the host's log lines and messages: one word. */
    if (!is_name(d->name))
        return bad(err, STELE_EINVAL, path,
                   "plugin name may hold only letters, digits, '.', '_' and "
                   "'-'");
    if (!d->version)
        return bad(err, STELE_EINVAL, path, "plugin '%s' has no version string",
                   d->name);
    if (d->kind < STELE_PLUGIN_AGGREGATE || d->kind > STELE_PLUGIN_UPCASTER)
        return bad(err, STELE_EABI, path, "unknown kind %d" LAYOUT_HINT,
                   (int)d->kind);
    if (!d->def.aggregate) /* every member of the union is a pointer */
        return bad(err, STELE_EINVAL, path, "%s plugin '%s' has no definition",
                   stele_plugin_kind_name(d->kind), d->name);
    switch (d->kind) {
    case STELE_PLUGIN_AGGREGATE:
        return check_aggregate(path, d->def.aggregate, err);
    case STELE_PLUGIN_PROJECTOR:
        return check_projector(path, d->def.projector, err);
    case STELE_PLUGIN_QUERY: return check_query(path, d->def.query, err);
    case STELE_PLUGIN_UPCASTER:
        return check_upcaster(path, d->def.upcaster, err);
    }
    return bad(err, STELE_EABI, path, "unknown kind %d", (int)d->kind);
}

const char *stele_plugin_kind_name(stele_plugin_kind kind)
{
    switch (kind) {
    case STELE_PLUGIN_AGGREGATE: return "aggregate";
    case STELE_PLUGIN_PROJECTOR: return "projector";
    case STELE_PLUGIN_QUERY: return "query";
    case STELE_PLUGIN_UPCASTER: return "upcaster";
    }
    return "unknown";
}
