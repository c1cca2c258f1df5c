/*
 * gate.c — the schema gate: the catalogue (schemas/) against what the
 * registry holds, one record type at a time. `stele schema check` and
 * `schema register` print it; a process that writes runs it at start and
 * refuses to start on anything it finds wrong, before it registers a
 * schema; a process that only reads never registers (catalogue.c).
 *
 * Per record type, the local versions (files vN, oldest first) are matched
 * with the registered versions of its subject by their text (as JSON).
 * Then:
 *   - a registered version that no file holds, in the place of a local
 *     version that is not registered, is that version edited after it was
 *     deployed: DIFFERS (its events were written with the registered text;
 *     a deployed version never changes — a new one is added instead);
 *   - a registered version no file holds otherwise (another client's) is
 *     said, not an error: its events are read with it, by id;
 *   - a local version older than a registered one but not registered
 *     itself was never written (every write registers first): not checked;
 *   - a local version newer than every registered one is checked, by the
 *     subject's compatibility level, against the registered versions and
 *     the local versions before it; one an upcaster leads into is checked
 *     only against the versions from itself on (older events reach it
 *     through the upcaster).
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the registry holds for a subject, oldest first. */
typedef struct held {
    stele_registry_schema *v;
    size_t n;
} held;

static void held_free(held *h)
{
    stele_registry_held_free(h->v, h->n);
    memset(h, 0, sizeof *h);
}

static int held_load(stele_registry *reg, const char *subject, held *h,
                     stele_err *err)
{
    memset(h, 0, sizeof *h);
    return stele_registry_held(reg, subject, &h->v, &h->n, err);
}

static bool same_text(const char *a, const char *b)
{
    json_t *x = json_loads(a, 0, NULL), *y = json_loads(b, 0, NULL);
    bool same = x && y && json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return same;
}

/* How many fields (name, type, default: the whole field) two record
 * texts share. */
static size_t likeness(const char *a, const char *b)
{
    json_t *x = json_loads(a, 0, NULL), *y = json_loads(b, 0, NULL);
    json_t *fx = json_object_get(x, "fields");
    json_t *fy = json_object_get(y, "fields");
    size_t same = 0, i, k;
    json_t *f, *g;
    json_array_foreach(fx, i, f)
    {
        json_array_foreach(fy, k, g)
        {
            if (json_equal(f, g)) {
                same++;
                break;
            }
        }
    }
    json_decref(x);
    json_decref(y);
    return same;
}

static void say(const stele_gate *g, bool bad, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(const stele_gate *g, bool bad, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (g->line)
        g->line(g->line_opaque, bad, line);
}

static stele_compat_mode subject_mode(const stele_gate *g, const char *subject)
{
    stele_compat_mode m;
    stele_err ignored = {0};
    if (stele_registry_get_compat(g->reg, subject, &m, &ignored) == 0)
        return m;
    return g->fallback;
}

/* Registers local version s (compatible) under subject; the first version
 * of a subject stele creates sets its compatibility level. A registry that
 * checks compatibility itself (Confluent's API) is asked first, as
 * Confluent's serializers do: its verdict is what the other clients of the
 * subject live by. *refused: it said no (counted in *bad). */
static int register_one(const stele_gate *g, const char *subject,
                        bool subject_new, bool bridged, stele_compat_mode mode,
                        const stele_schema *s, size_t *bad, stele_err *err)
{
    stele_compat_mode m;
    stele_err ignored = {0};
    int rc = 0;
    if (!subject_new && stele_registry_tests_compat(g->reg)) {
        bool ok = false;
        stele_compat_report rep = {0};
        if ((rc = stele_compat_test(g->reg, subject, s->text, mode, &ok, &rep,
                                    err)))
            return stele_err_prefix(err, "%s v%d", s->name, s->version);
        if (!ok) {
            say(g, true,
                "%s v%d: INCOMPATIBLE by the registry (subject %s)%s%s%s",
                s->name, s->version, subject, rep.n ? ": " : "",
                rep.n ? rep.msgs[0] : "",
                bridged ? "; an upcaster bridges the step for stele, not "
                          "for the subject's other readers: give the "
                          "subject a compatibility that allows it, or the "
                          "new version a new record name"
                        : "");
            (*bad)++;
            stele_compat_report_clear(&rep);
            return 0;
        }
        stele_compat_report_clear(&rep);
    }
    if (subject_new &&
        stele_registry_get_compat(g->reg, subject, &m, &ignored) ==
            STELE_ENOTFOUND &&
        (rc = stele_registry_set_compat(g->reg, subject, mode, err)))
        return rc;
    int32_t id;
    if ((rc = stele_registry_register(g->reg, subject, s->text, &id, err)))
        return stele_err_prefix(err, "%s v%d", s->name, s->version);
    say(g, false, "%s v%d: registered under %s, id %d", s->name, s->version,
        subject, id);
    return 0;
}

/* The gate over the local versions cat[first, end) of one record type. */
static int gate_type(const stele_gate *g, const stele_schema *const *cat,
                     size_t first, size_t end, size_t *bad, stele_err *err)
{
    const char *name = cat[first]->name;
    size_t m = end - first;
    char subject[1024];
    if (stele_registry_subject(g->reg, g->topic, name, subject, sizeof subject))
        return stele_err_set(err, STELE_EINVAL, "%s: subject too long", name);
    held h;
    int rc = held_load(g->reg, subject, &h, err);
    if (rc)
        return stele_err_prefix(err, "subject %s", subject);
    stele_compat_mode mode = subject_mode(g, subject);
    size_t bad_before = *bad;
    /* match[i]: the registered version holding local i's text, or -1;
     * edited[i]: the registered version local i was edited from, or -1 */
    long *match = malloc((m + 1) * sizeof *match);
    long *edited = malloc((m + 1) * sizeof *edited);
    bool *claimed = calloc(h.n + 1, sizeof *claimed);
    const char **prev = calloc(h.n + m + 1, sizeof *prev);
    int *prev_v = calloc(h.n + m + 1, sizeof *prev_v);
    if (!match || !edited || !claimed || !prev || !prev_v) {
        rc = stele_err_set(err, STELE_ENOMEM, "no memory");
        goto out;
    }
    long newest = -1; /* the newest local version that is registered */
    for (size_t i = 0; i < m; i++) {
        match[i] = edited[i] = -1;
        for (size_t j = 0; j < h.n && match[i] < 0; j++)
            if (same_text(cat[first + i]->text, h.v[j].text)) {
                match[i] = (long)j;
                claimed[j] = true;
                newest = (long)i;
            }
    }
    /* Registered versions no file holds: edited in place where a local
     * version between its registered neighbours is not registered. */
    for (size_t j = 0; j < h.n; j++) {
        if (claimed[j])
            continue;
        long lo = -1, hi = (long)m;
        for (size_t i = 0; i < m; i++) {
            if (match[i] >= 0 && match[i] < (long)j)
                lo = (long)i;
            if (match[i] > (long)j && hi == (long)m)
                hi = (long)i;
        }
        /* of the unregistered local versions in its place, the one most
         * like it (the newest on a tie: the one a user edits) */
        long cand = -1;
        size_t best = 0;
        for (long i = lo + 1; i < hi; i++) {
            if (match[i] >= 0 || edited[i] >= 0)
                continue;
            size_t like = likeness(cat[first + (size_t)i]->text, h.v[j].text);
            if (cand < 0 || like >= best) {
                cand = i;
                best = like;
            }
        }
        if (cand < 0) {
            say(g, false,
                "%s version %d (id %d): matches no file in schemas/ "
                "(registered by another client?); its events are read "
                "with it",
                subject, h.v[j].version, h.v[j].id);
            continue;
        }
        edited[cand] = (long)j;
        if (newest < cand)
            newest = cand;
        say(g, true,
            "%s v%d differs from registered version %d of %s, id %d: a "
            "deployed version never changes — put the change in v%d",
            name, cat[first + (size_t)cand]->version, h.v[j].version, subject,
            h.v[j].id, cat[end - 1]->version + 1);
        (*bad)++;
    }
    size_t n_prev = 0;
    for (size_t j = 0; j < h.n; j++, n_prev++) {
        prev[n_prev] = h.v[j].text;
        prev_v[n_prev] = h.v[j].version;
    }
    int next_v = h.n ? h.v[h.n - 1].version + 1 : 1;
    bool stop = false;
    for (size_t i = 0; i < m && rc == 0; i++) {
        const stele_schema *s = cat[first + i];
        if (match[i] >= 0) {
            const stele_registry_schema *got = &h.v[match[i]];
            say(g, false, "%s v%d: registered as %s version %d, id %d", name,
                s->version, subject, got->version, got->id);
            continue;
        }
        if (edited[i] >= 0)
            continue;
        if ((long)i < newest) {
            say(g, false,
                "%s v%d: not registered, and older than registered v%d: "
                "nothing was written with it, nothing to check",
                name, s->version, cat[first + (size_t)newest]->version);
            continue;
        }
        /* one this process does not write is not registered by it: the
         * process that writes it checks it (with the upcasters it loads) */
        if (g->registers &&
            !g->registers(g->registers_opaque, name, s->version)) {
            say(g, false,
                "%s v%d: not registered; this process does not write it", name,
                s->version);
            continue;
        }
        if (stop) {
            say(g, false, "%s v%d: not registered (an older version is not)",
                name, s->version);
            continue;
        }
        bool bridged =
            g->bridged && g->bridged(g->bridged_opaque, name, s->version);
        if (bridged && n_prev > 0) {
            say(g, false,
                "%s v%d: older versions reach it through an upcaster; "
                "checked against the versions from here on",
                name, s->version);
            n_prev = 0;
        }
        stele_compat_report rep = {0};
        rc = stele_compat_check_mode(mode, s->text, prev, prev_v, n_prev, &rep,
                                     err);
        if (rc) {
            stele_err_prefix(err, "%s v%d against subject %s", name, s->version,
                             subject);
            break;
        }
        for (size_t k = 0; k < rep.n; k++)
            say(g, true, "%s v%d: INCOMPATIBLE (%s, subject %s): %s", name,
                s->version, stele_compat_mode_name(mode), subject, rep.msgs[k]);
        *bad += rep.n;
        bool ok = rep.n == 0;
        stele_compat_report_clear(&rep);
        if (!ok) {
            /* later versions build on this one: not registered either */
            stop = true;
            if (g->do_register)
                say(g, false, "%s v%d: not registered (incompatible)", name,
                    s->version);
        } else if (g->do_register && *bad == bad_before) {
            rc = register_one(g, subject, h.n == 0 && n_prev == 0, bridged,
                              mode, s, bad, err);
            if (rc == 0 && *bad != bad_before)
                stop = true;
        } else {
            say(g, false, "%s v%d: compatible (%s), not registered yet", name,
                s->version, stele_compat_mode_name(mode));
        }
        prev[n_prev] = s->text;
        prev_v[n_prev++] = next_v++;
    }
out:
    free(match);
    free(edited);
    free(claimed);
    free(prev);
    free(prev_v);
    held_free(&h);
    return rc;
}

int stele_gate_run(const stele_gate *g, size_t *types, size_t *bad,
                   stele_err *err)
{
    const stele_schema *const *cat;
    size_t n = stele_codec_catalogue(g->codec, &cat);
    *types = *bad = 0;
    for (size_t i = 0; i < n;) {
        size_t end = i + 1;
        while (end < n && strcmp(cat[end]->name, cat[i]->name) == 0)
            end++;
        int rc = gate_type(g, cat, i, end, bad, err);
        if (rc)
            return rc;
        (*types)++;
        i = end;
    }
    return 0;
}
