/*
 * upcast.c — upcaster chains and reading stored events into the versions
 * a reader declares.
 *
 * Upcasters do what schema resolution cannot (a split field, a unit
 * change, a renamed type, one event into several), one version at a time:
 * T vN -> vN+1. The host, not the plugin author, strings them into chains;
 * a stored event walks its chain up to the version its reader declares,
 * then Avro resolution covers what is left. Versions only go up, so a
 * chain cannot loop; a runaway one is still cut at UPCAST_MAX_STEPS.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "value.h"

#define UPCAST_MAX_STEPS 64 /* upcasts for one stored event, all branches */
#define UPCAST_MAX_OUT 16   /* events one upcast may emit */

typedef struct upstep {
    const stele_upcaster_def *def;
    void *ctx;
    char *where;
    const stele_schema *in;  /* def->event_type at from_version, once used */
    const stele_schema *out; /* the same type at to_version, once emitted */
} upstep;

struct upcast_chain {
    char *type;
    upstep *steps; /* sorted by from_version once checked */
    size_t n;
    int first, last; /* first from_version, last to_version */
};

void codec_upcast_chain_free(void *p)
{
    upcast_chain *ch = p;
    if (!ch)
        return;
    for (size_t i = 0; i < ch->n; i++)
        free(ch->steps[i].where);
    free(ch->steps);
    free(ch->type);
    free(ch);
}

int stele_codec_add_upcaster(stele_codec *c, const stele_upcaster_def *def,
                             void *ctx, const char *where, stele_err *err)
{
    if (!where)
        where = "upcaster";
    if (!c || !def || !def->event_type || !def->upcast)
        return stele_err_set(err, STELE_EINVAL,
                             "%s: upcaster without a type or a callback",
                             where);
    const char *t = def->event_type;
    int from = def->from_version, to = def->to_version;
    if (from < 1 || to <= from)
        return stele_err_set(err, STELE_EINVAL,
                             "%s: upcaster %s v%d -> v%d goes %s: the chain "
                             "would loop",
                             where, t, from, to,
                             to == from ? "nowhere" : "backwards");
    if (to != from + 1)
        return stele_err_set(err, STELE_EINVAL,
                             "%s: upcaster %s v%d -> v%d skips versions (one "
                             "step is vN -> vN+1)",
                             where, t, from, to);
    upcast_chain *ch = stele_map_gets(c->chains, t);
    if (!ch) {
        if (!(ch = calloc(1, sizeof *ch)) || !(ch->type = strdup(t)) ||
            stele_map_put(c->chains, t, strlen(t), ch, NULL)) {
            codec_upcast_chain_free(ch);
            return stele_err_set(err, STELE_ENOMEM, "%s: no memory", where);
        }
    }
    for (size_t i = 0; i < ch->n; i++)
        if (ch->steps[i].def->from_version == from)
            return stele_err_set(err, STELE_EINVAL,
                                 "%s: %s v%d -> v%d is already upcast by %s",
                                 where, t, from, to, ch->steps[i].where);
    upstep *s = realloc(ch->steps, (ch->n + 1) * sizeof *s);
    if (!s)
        return stele_err_set(err, STELE_ENOMEM, "%s: no memory", where);
    ch->steps = s;
    s[ch->n] = (upstep){def, ctx, strdup(where), NULL, NULL};
    if (!s[ch->n].where)
        return stele_err_set(err, STELE_ENOMEM, "%s: no memory", where);
    ch->n++;
    c->chains_checked = false;
    return 0;
}

static int by_from(const void *a, const void *b)
{
    int x = ((const upstep *)a)->def->from_version;
    int y = ((const upstep *)b)->def->from_version;
    return (x > y) - (x < y);
}

static bool in_catalogue(const stele_codec *c, const char *name, int version)
{
    for (size_t i = 0; i < c->n_cat; i++)
        if (c->cat[i]->pub.version == version &&
            strcmp(c->cat[i]->pub.name, name) == 0)
            return true;
    return false;
}

static int check_chain(void *opaque, const void *key, size_t len, void *value)
{
    (void)key;
    (void)len;
    void **args = opaque;
    const stele_codec *c = args[0];
    stele_err *err = args[1];
    upcast_chain *ch = value;
    qsort(ch->steps, ch->n, sizeof *ch->steps, by_from);
    for (size_t i = 0; i < ch->n; i++) {
        const upstep *s = &ch->steps[i];
        if (!in_catalogue(c, ch->type, s->def->from_version))
            return stele_err_set(err, STELE_EINVAL,
                                 "%s: upcaster reads %s v%d, which has no "
                                 "schema file in the catalogue",
                                 s->where, ch->type, s->def->from_version);
        if (i == 0)
            continue;
        const upstep *p = &ch->steps[i - 1];
        if (p->def->to_version != s->def->from_version)
            return stele_err_set(
                err, STELE_EINVAL,
                "upcaster chain of %s has a gap: %s upcasts v%d -> v%d and "
                "%s v%d -> v%d, but nothing upcasts v%d -> v%d",
                ch->type, p->where, p->def->from_version, p->def->to_version,
                s->where, s->def->from_version, s->def->to_version,
                p->def->to_version, s->def->from_version);
    }
    ch->first = ch->steps[0].def->from_version;
    ch->last = ch->steps[ch->n - 1].def->to_version;
    return 0;
}

int stele_codec_check_upcasters(stele_codec *c, stele_err *err)
{
    void *args[] = {c, err};
    int rc = stele_map_each(c->chains, check_chain, args);
    if (rc)
        return rc < 0 ? rc : STELE_EINVAL;
    c->chains_checked = true;
    return 0;
}

bool stele_codec_has_upcasters(const stele_codec *c, const char *type)
{
    return c && type && stele_map_gets(c->chains, type) != NULL;
}

/* ------------------------------------------------------------------ */
/* Events and their value pools                                         */

typedef struct vpool {
    const stele_schema *schema;
    avro_value_t *values;
    size_t used, cap;
} vpool;

struct stele_codec_events {
    stele_codec *c;
    stele_map *pools; /* schema pointer -> vpool */
    vpool **list;
    size_t n_pools, cap_pools;
    stele_codec_event *items;
    size_t n, cap;
};

int stele_codec_events_new(stele_codec *c, stele_codec_events **out,
                           stele_err *err)
{
    stele_codec_events *ev = calloc(1, sizeof *ev);
    if (!ev || !(ev->pools = stele_map_new())) {
        free(ev);
        return stele_err_set(err, STELE_ENOMEM, "events: no memory");
    }
    ev->c = c;
    *out = ev;
    return 0;
}

void stele_codec_events_free(stele_codec_events *ev)
{
    if (!ev)
        return;
    for (size_t i = 0; i < ev->n_pools; i++) {
        for (size_t j = 0; j < ev->list[i]->cap; j++)
            avro_value_decref(&ev->list[i]->values[j]);
        free(ev->list[i]->values);
        free(ev->list[i]);
    }
    free(ev->list);
    free(ev->items);
    stele_map_free(ev->pools, NULL);
    free(ev);
}

void stele_codec_events_clear(stele_codec_events *ev)
{
    for (size_t i = 0; i < ev->n_pools; i++)
        ev->list[i]->used = 0;
    ev->n = 0;
}

size_t stele_codec_events_list(const stele_codec_events *ev,
                               const stele_codec_event **items)
{
    *items = ev->items;
    return ev->n;
}

/* A value of s from the pools, its content whatever it last held. */
static int take(stele_codec_events *ev, const stele_schema *s,
                avro_value_t *out, stele_err *err)
{
    vpool *p = NULL;
    /* few schemas per reader: a scan beats hashing */
    for (size_t i = 0; i < ev->n_pools && i < 16; i++)
        if (ev->list[i]->schema == s) {
            p = ev->list[i];
            break;
        }
    if (!p && ev->n_pools > 16)
        p = stele_map_get(ev->pools, &s, sizeof s);
    if (!p) {
        if (ev->n_pools == ev->cap_pools) {
            size_t cap = ev->cap_pools ? ev->cap_pools * 2 : 8;
            vpool **l = realloc(ev->list, cap * sizeof *l);
            if (!l)
                return stele_err_set(err, STELE_ENOMEM, "no memory");
            ev->list = l;
            ev->cap_pools = cap;
        }
        if (!(p = calloc(1, sizeof *p)) ||
            stele_map_put(ev->pools, &s, sizeof s, p, NULL)) {
            free(p);
            return stele_err_set(err, STELE_ENOMEM, "no memory");
        }
        p->schema = s;
        ev->list[ev->n_pools++] = p;
    }
    if (p->used == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4;
        avro_value_t *v = realloc(p->values, cap * sizeof *v);
        if (!v)
            return stele_err_set(err, STELE_ENOMEM, "no memory");
        p->values = v;
        for (; p->cap < cap; p->cap++)
            if (avro_generic_value_new(s->iface, &p->values[p->cap]))
                return codec_avro_err(err, STELE_ENOMEM, s->name);
    }
    /* the avro_value_t is a handle: copies stay valid when values moves */
    *out = p->values[p->used++];
    return 0;
}

static int push(stele_codec_events *ev, const stele_schema *s, avro_value_t v,
                bool declared, stele_err *err)
{
    if (ev->n == ev->cap) {
        size_t cap = ev->cap ? ev->cap * 2 : 16;
        stele_codec_event *it = realloc(ev->items, cap * sizeof *it);
        if (!it)
            return stele_err_set(err, STELE_ENOMEM, "no memory");
        ev->items = it;
        ev->cap = cap;
    }
    ev->items[ev->n++] = (stele_codec_event){s, v, declared};
    return 0;
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */

struct stele_upcast_out {
    stele_codec *c;
    stele_codec_events *ev;
    upstep *step;
    size_t n;
    const stele_schema *schema[UPCAST_MAX_OUT];
    avro_value_t value[UPCAST_MAX_OUT];
    int fault;
    char msg[800];
};

int stele_codec_upcast_emit(stele_upcast_out *out, const char *event_type,
                            stele_value *value)
{
    if (!out || !event_type || !value)
        return STELE_EINVAL;
    const stele_upcaster_def *d = out->step->def;
    stele_err err = {0};
    const stele_schema *s;
    int rc = 0;
    if (out->n == UPCAST_MAX_OUT)
        rc = stele_err_set(&err, STELE_ENOMEM,
                           "upcast_emit: more than %d events from one",
                           UPCAST_MAX_OUT);
    else if (out->step->out && strcmp(event_type, d->event_type) == 0)
        s = out->step->out; /* the common case: the same type, one up */
    else if ((rc = stele_codec_schema(out->c, event_type, d->to_version, &s,
                                      &err)) == 0 &&
             strcmp(event_type, d->event_type) == 0)
        out->step->out = s;
    if (rc == 0 && (rc = take(out->ev, s, &out->value[out->n], &err)) == 0)
        rc = stele_codec_value_reset(s, &out->value[out->n], &err);
    if (rc) {
        out->fault = rc;
        snprintf(out->msg, sizeof out->msg, "upcast_emit %s v%d: %s",
                 event_type, d->to_version, err.msg);
        return rc;
    }
    out->schema[out->n] = s;
    *value = stele_value_wrap(&out->value[out->n]);
    out->n++;
    return 0;
}

typedef struct reading {
    stele_codec *c;
    stele_codec_want_fn want;
    void *opaque;
    stele_codec_events *ev;
    const void *wire; /* the stored event */
    size_t wire_len;
    int steps;
} reading;

/* The next upcaster for a value of cur, when the reader wants more. */
static upstep *next_step(const stele_codec *c, const stele_schema *cur,
                         const stele_schema *want)
{
    if (cur->version <= 0 || !c->chains_checked)
        return NULL; /* a writer known only by id: resolution only */
    codec_schema *cs = (codec_schema *)codec_schema_of(cur);
    if (!cs->chain_known) {
        cs->chain = stele_map_gets(c->chains, cur->name);
        cs->chain_known = true;
    }
    const upcast_chain *ch = cs->chain;
    if (!ch)
        return NULL;
    int from = cur->version < ch->first ? ch->first : cur->version;
    if (from >= ch->last || (want && want->version <= from))
        return NULL;
    return &ch->steps[from - ch->first];
}

/* Fills out (a value of target) from the stored bytes (val NULL: they are
 * of cur) or from val, a value of cur. */
static int bring(reading *x, const stele_schema *cur, const avro_value_t *val,
                 const stele_schema *target, avro_value_t *out, stele_err *err)
{
    if (!val)
        return stele_codec_decode(x->c, x->wire, x->wire_len, target, out, err);
    /* An upcaster's output at a version its next reader does not read:
     * resolve it through its encoding (rare: chains are contiguous). */
    stele_buf *b = &x->c->upcast_buf;
    int rc = stele_codec_encode(x->c, cur, val, b, err);
    return rc ? rc
              : stele_codec_decode(x->c, b->data, b->len, target, out, err);
}

static int advance(reading *x, const stele_schema *cur, const avro_value_t *val,
                   stele_err *err)
{
    const stele_schema *want = x->want(x->opaque, cur->name);
    upstep *u = next_step(x->c, cur, want);
    avro_value_t v;
    int rc;
    if (!u) {
        const stele_schema *target = want ? want : cur;
        if (val && cur == target)
            return push(x->ev, target, *val, want != NULL, err);
        if ((rc = take(x->ev, target, &v, err)) ||
            (rc = bring(x, cur, val, target, &v, err)))
            return rc;
        return push(x->ev, target, v, want != NULL, err);
    }
    const stele_upcaster_def *d = u->def;
    if (++x->steps > UPCAST_MAX_STEPS)
        return stele_err_set(err, STELE_EINVAL,
                             "more than %d upcasts for one event (at %s v%d)",
                             UPCAST_MAX_STEPS, d->event_type, d->from_version);
    if (!u->in && (rc = stele_codec_schema(x->c, d->event_type, d->from_version,
                                           &u->in, err)))
        return rc;
    const stele_schema *in = u->in;
    if (val && cur == in)
        v = *val;
    else if ((rc = take(x->ev, in, &v, err)) ||
             (rc = bring(x, cur, val, in, &v, err)))
        return rc;
    stele_upcast_out out = {.c = x->c, .ev = x->ev, .step = u};
    stele_err uerr = {0};
    stele_value old = stele_value_wrap(&v);
    int urc = d->upcast(u->ctx, &old, &out, &uerr);
    if (out.fault || urc)
        return stele_err_set(err, STELE_EPLUGIN,
                             "upcaster %s (%s v%d -> v%d) failed: %s", u->where,
                             d->event_type, d->from_version, d->to_version,
                             out.fault     ? out.msg
                             : uerr.msg[0] ? uerr.msg
                                           : stele_strstatus(urc));
    if (out.n == 0)
        return stele_err_set(
            err, STELE_EPLUGIN, "upcaster %s (%s v%d -> v%d) emitted no event",
            u->where, d->event_type, d->from_version, d->to_version);
    for (size_t i = 0; i < out.n; i++)
        if ((rc = advance(x, out.schema[i], &out.value[i], err)))
            return rc;
    return 0;
}

int stele_codec_read_event(stele_codec *c, const void *data, size_t len,
                           stele_codec_want_fn want, void *opaque,
                           stele_codec_events *ev, stele_err *err)
{
    if (!c || !want || !ev)
        return stele_err_set(err, STELE_EINVAL, "read_event: no reader");
    int32_t id;
    const stele_schema *writer;
    int rc = stele_codec_wire_id(data, len, &id, err);
    if (rc == 0 && (rc = stele_codec_schema_by_id(c, id, &writer, err)))
        stele_err_prefix(err, "event with schema id %d", id);
    if (rc)
        return rc;
    const stele_schema *w = want(opaque, writer->name);
    /* The fast path: written with the reader's own schema. */
    if (w && w->id == id) {
        avro_value_t v;
        size_t n0 = ev->n;
        if ((rc = take(ev, w, &v, err)) ||
            (rc = stele_codec_decode(c, data, len, w, &v, err)) ||
            (rc = push(ev, w, v, true, err)))
            ev->n = n0;
        return rc;
    }
    reading x = {c, want, opaque, ev, data, len, 0};
    size_t n0 = ev->n;
    if ((rc = advance(&x, writer, NULL, err))) {
        ev->n = n0;
        char label[400];
        (void)id;
        return stele_err_prefix(
            err, "%s", codec_writer_label(writer, label, sizeof label));
    }
    return 0;
}
