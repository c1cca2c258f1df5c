/*
 * schema.c — `stele schema check|register|list|diff`: the schemas/
 * folder against the schema registry (embedded or REST, per config).
 *
 * No plugin is loaded: the config, the log (only for the embedded
 * registry), the registry and the catalogue are all these commands need.
 * Subjects follow registry.subject_strategy; topic_record needs --topic.
 * Exit status: 0 fine, 1 an incompatibility, a difference (diff) or an
 * error, 2 usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin/loader.h"
#include "common/err.h"
#include "common/util.h"
#include "open/open.h"

int stele_cli_schema(int argc, char **argv);

typedef struct ctx {
    stele_config *cfg;
    stele_log *log;
    stele_registry *reg;
    stele_codec *codec;
    const char *topic;
    stele_compat_mode fallback;
    const stele_schema *const *cat;
    size_t n_cat;
    /* The upcasters of the configured plugins: a version an upcaster leads
     * into need not be readable by resolution from older versions, whose
     * events reach it through the upcaster. */
    struct step {
        char type[256];
        int to_version;
    } * steps;
    size_t n_steps;
} ctx;

static int add_step(void *opaque, const stele_upcaster_def *u)
{
    ctx *c = opaque;
    struct step *n = realloc(c->steps, (c->n_steps + 1) * sizeof *n);
    if (!n)
        return STELE_ENOMEM;
    c->steps = n;
    snprintf(n[c->n_steps].type, sizeof n[c->n_steps].type, "%s",
             u->event_type);
    n[c->n_steps++].to_version = u->to_version;
    return 0;
}

static bool upcast_into(const ctx *c, const char *type, int version)
{
    for (size_t i = 0; i < c->n_steps; i++)
        if (c->steps[i].to_version == version &&
            strcmp(c->steps[i].type, type) == 0)
            return true;
    return false;
}

static int fail(const stele_err *err)
{
    fprintf(stderr, "stele: %s\n", err->msg);
    return 1;
}

static void usage(FILE *f)
{
    fputs("usage: stele schema check|register|list|diff [-c CONFIG] "
          "[--topic TOPIC]\n",
          f);
}

static void warn(void *opaque, const char *msg)
{
    (void)opaque;
    fprintf(stderr, "stele warn: %s\n", msg);
}

static void ctx_close(ctx *c)
{
    stele_codec_free(c->codec);
    stele_registry_close(c->reg);
    if (c->log)
        stele_log_close(c->log);
    stele_config_free(c->cfg);
    free(c->steps);
}

static int ctx_open(ctx *c, const char *config, stele_err *err)
{
    int rc = stele_config_load(config, &c->cfg, err);
    if (rc)
        return rc;
    stele_compat_mode_parse(c->cfg->registry_compatibility, &c->fallback);
    stele_open_opts o = {.role = "schema", .retry = true, .warn = warn};
    if (stele_open_registry_needs_log(c->cfg) &&
        (rc = stele_open_log(c->cfg, &o, &c->log, err)))
        return rc;
    if ((rc = stele_open_registry(c->cfg, c->log, &c->reg, err)) ||
        (rc = stele_codec_new(c->cfg->schemas_dir, c->reg, &c->codec, err)))
        return rc;
    if (stele_registry_strategy(c->reg) == STELE_SUBJECT_TOPIC_RECORD &&
        !c->topic)
        return stele_err_set(err, STELE_EINVAL,
                             "registry.subject_strategy is topic_record: "
                             "name the topic with --topic");
    c->n_cat = stele_codec_catalogue(c->codec, &c->cat);
    return stele_plugins_each_upcaster(c->cfg->plugins, c->cfg->n_plugins,
                                       add_step, c, err);
}

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

static int held_load(ctx *c, const char *subject, held *h, stele_err *err)
{
    memset(h, 0, sizeof *h);
    return stele_registry_held(c->reg, subject, &h->v, &h->n, err);
}

/* The registered version holding exactly text (as JSON), or NULL. */
static const stele_registry_schema *held_find(const held *h, const char *text)
{
    json_t *a = json_loads(text, 0, NULL);
    const stele_registry_schema *found = NULL;
    for (size_t i = 0; a && !found && i < h->n; i++) {
        json_t *b = json_loads(h->v[i].text, 0, NULL);
        if (b && json_equal(a, b))
            found = &h->v[i];
        json_decref(b);
    }
    json_decref(a);
    return found;
}

static stele_compat_mode subject_mode(ctx *c, const char *subject)
{
    stele_compat_mode m;
    stele_err ignored = {0};
    if (stele_registry_get_compat(c->reg, subject, &m, &ignored) == 0)
        return m;
    return c->fallback;
}

static bool bridged(void *opaque, const char *type, int version)
{
    return upcast_into(opaque, type, version);
}

static void print_line(void *opaque, bool bad, const char *line)
{
    (void)opaque;
    (void)bad;
    printf("%s\n", line);
}

static int cmd_check(ctx *c, bool do_register)
{
    stele_err err = {0};
    size_t types = 0, bad = 0;
    stele_gate g = {.reg = c->reg,
                    .codec = c->codec,
                    .topic = c->topic,
                    .fallback = c->fallback,
                    .do_register = do_register,
                    .bridged = bridged,
                    .bridged_opaque = c,
                    .line = print_line};
    if (stele_gate_run(&g, &types, &bad, &err))
        return fail(&err);
    if (bad) {
        printf("%zu problem%s in %zu record types (%zu schemas)%s\n", bad,
               bad == 1 ? "" : "s", types, c->n_cat,
               do_register ? "; the types with one were not registered" : "");
        return 1;
    }
    printf("%zu record types (%zu schemas): all compatible%s\n", types,
           c->n_cat, do_register ? ", all registered" : "");
    return 0;
}

static int cmd_list(ctx *c)
{
    stele_err err = {0};
    char **subjects = NULL;
    size_t n = 0;
    if (stele_registry_subjects(c->reg, &subjects, &n, &err))
        return fail(&err);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        held h;
        if ((rc = held_load(c, subjects[i], &h, &err))) {
            stele_err_prefix(&err, "subject %s", subjects[i]);
            break;
        }
        printf("%s (%s)\n", subjects[i],
               stele_compat_mode_name(subject_mode(c, subjects[i])));
        for (size_t k = 0; k < h.n; k++)
            printf("  version %d  id %d\n", h.v[k].version, h.v[k].id);
        held_free(&h);
    }
    stele_registry_strings_free(subjects, n);
    if (rc)
        return fail(&err);
    printf("%zu subject%s\n", n, n == 1 ? "" : "s");
    return 0;
}

/* Top-level fields that differ between two record texts. */
static void diff_fields(const char *label, const char *local,
                        const char *remote)
{
    json_t *a = json_loads(local, 0, NULL), *b = json_loads(remote, 0, NULL);
    json_t *fa = json_object_get(a, "fields"),
           *fb = json_object_get(b, "fields");
    size_t i, k;
    json_t *f, *g;
    json_array_foreach(fb, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "name"));
        json_t *match = NULL;
        json_array_foreach(fa, k, g)
        {
            if (name && json_equal(json_object_get(g, "name"),
                                   json_object_get(f, "name")))
                match = g;
        }
        if (!match) {
            printf("  %s: field %s only in the registry\n", label, name);
        } else if (!json_equal(match, f)) {
            char *x = json_dumps(json_object_get(f, "type"),
                                 JSON_COMPACT | JSON_SORT_KEYS);
            char *y = json_dumps(json_object_get(match, "type"),
                                 JSON_COMPACT | JSON_SORT_KEYS);
            printf("  %s: field %s differs: registry %s, local %s%s\n", label,
                   name, x ? x : "?", y ? y : "?",
                   x && y && strcmp(x, y) == 0 ? " (default, doc or aliases)"
                                               : "");
            free(x);
            free(y);
        }
    }
    json_array_foreach(fa, i, f)
    {
        bool found = false;
        json_array_foreach(fb, k, g)
        {
            found |= json_equal(json_object_get(g, "name"),
                                json_object_get(f, "name"));
        }
        if (!found)
            printf("  %s: field %s only in schemas/\n", label,
                   json_string_value(json_object_get(f, "name")));
    }
    json_decref(a);
    json_decref(b);
}

static int cmd_diff(ctx *c)
{
    stele_err err = {0};
    size_t diffs = 0;
    char **subjects = NULL;
    size_t n_subjects = 0;
    if (stele_registry_subjects(c->reg, &subjects, &n_subjects, &err))
        return fail(&err);
    bool *seen = calloc(n_subjects ? n_subjects : 1, sizeof *seen);
    int rc = seen ? 0 : stele_err_set(&err, STELE_ENOMEM, "no memory");
    for (size_t i = 0; rc == 0 && i < c->n_cat;) {
        size_t end = i + 1;
        while (end < c->n_cat &&
               strcmp(c->cat[end]->name, c->cat[i]->name) == 0)
            end++;
        char subject[1024];
        stele_registry_subject(c->reg, c->topic, c->cat[i]->name, subject,
                               sizeof subject);
        for (size_t k = 0; k < n_subjects; k++)
            seen[k] |= strcmp(subjects[k], subject) == 0;
        held h;
        if ((rc = held_load(c, subject, &h, &err)))
            break;
        for (size_t k = i; k < end; k++)
            if (!held_find(&h, c->cat[k]->text)) {
                printf("+ %s v%d: in schemas/, not registered under %s\n",
                       c->cat[k]->name, c->cat[k]->version, subject);
                diffs++;
            }
        for (size_t k = 0; k < h.n; k++) {
            bool local = false;
            for (size_t j = i; j < end && !local; j++) {
                json_t *a = json_loads(c->cat[j]->text, 0, NULL);
                json_t *b = json_loads(h.v[k].text, 0, NULL);
                local = a && b && json_equal(a, b);
                json_decref(a);
                json_decref(b);
            }
            if (local)
                continue;
            printf("~ %s version %d (id %d): not in schemas/; against local "
                   "v%d:\n",
                   subject, h.v[k].version, h.v[k].id,
                   c->cat[end - 1]->version);
            diff_fields(subject, c->cat[end - 1]->text, h.v[k].text);
            diffs++;
        }
        held_free(&h);
        i = end;
    }
    for (size_t k = 0; rc == 0 && k < n_subjects; k++)
        if (!seen[k]) {
            printf("- %s: registered, no record type in schemas/ for it\n",
                   subjects[k]);
            diffs++;
        }
    free(seen);
    stele_registry_strings_free(subjects, n_subjects);
    if (rc)
        return fail(&err);
    printf("%zu difference%s\n", diffs, diffs == 1 ? "" : "s");
    return diffs ? 1 : 0;
}

int stele_cli_schema(int argc, char **argv)
{
    static const struct option longs[] = {
        {"config", required_argument, NULL, 'c'},
        {"topic", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *config = "config/stele.yaml", *topic = NULL;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "c:t:h", longs, NULL)) != -1) {
        switch (o) {
        case 'c': config = optarg; break;
        case 't': topic = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (argc - optind != 1) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[optind];
    if (strcmp(sub, "check") && strcmp(sub, "register") &&
        strcmp(sub, "list") && strcmp(sub, "diff")) {
        fprintf(stderr, "stele: unknown schema command '%s'\n", sub);
        usage(stderr);
        return 2;
    }
    ctx c = {.topic = topic, .fallback = STELE_COMPAT_BACKWARD_TRANSITIVE};
    stele_err err = {0};
    int rc;
    if (ctx_open(&c, config, &err))
        rc = fail(&err);
    else if (strcmp(sub, "check") == 0)
        rc = cmd_check(&c, false);
    else if (strcmp(sub, "register") == 0)
        rc = cmd_check(&c, true);
    else if (strcmp(sub, "list") == 0)
        rc = cmd_list(&c);
    else
        rc = cmd_diff(&c);
    ctx_close(&c);
    return rc;
}
