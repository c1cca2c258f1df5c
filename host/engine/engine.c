/* Opening the engine: log, registry, codec, store, plugins, topics. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "internal.h"
#include "open/open.h"
#include "worker.h"

static char *topic_name(const char *app, const char *type, const char *suffix)
{
    size_t n = strlen(app) + strlen(type) + strlen(suffix) + 3;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s.%s%s%s", app, type, *suffix ? "." : "", suffix);
    return s;
}

typedef enum topic_kind {
    TOPIC_EVENTS,    /* kept forever */
    TOPIC_COMMANDS,  /* kept log.command_retention_ms */
    TOPIC_TRANSIENT, /* replies, dead letters: the broker's default */
    TOPIC_COMPACTED, /* states: the latest record per key */
    TOPIC_RESULTS    /* the latest per key, kept log.result_retention_ms */
} topic_kind;

static int ensure_topic(stele_engine *e, const char *name, int32_t partitions,
                        topic_kind kind, stele_err *err)
{
    /* Events are the system of record: never deleted, never compacted. */
    static const char *const events_cfg[] = {"retention.ms=-1",
                                             "cleanup.policy=delete"};
    static const char *const compacted_cfg[] = {"cleanup.policy=compact"};
    /* Commands and results: the same retention on Kafka (the broker's)
     * as on the SQL logs (stele_engine_expire). */
    char commands_ms[48], results_ms[48];
    snprintf(commands_ms, sizeof commands_ms, "retention.ms=%lld",
             e->cfg->command_retention_ms > 0
                 ? (long long)e->cfg->command_retention_ms
                 : -1LL);
    snprintf(results_ms, sizeof results_ms, "retention.ms=%lld",
             (long long)e->cfg->result_retention_ms);
    const char *commands_cfg[] = {commands_ms, "cleanup.policy=delete"};
    const char *results_cfg[] = {"cleanup.policy=compact,delete", results_ms};
    stele_topic_spec spec = {
        .name = name,
        .partitions = partitions,
        .compacted = kind == TOPIC_COMPACTED || kind == TOPIC_RESULTS,
        .replication_factor = (int16_t)e->cfg->replication_factor};
    switch (kind) {
    case TOPIC_EVENTS: spec.configs = events_cfg, spec.n_configs = 2; break;
    case TOPIC_COMMANDS: spec.configs = commands_cfg, spec.n_configs = 2; break;
    case TOPIC_COMPACTED:
        spec.configs = compacted_cfg, spec.n_configs = 1;
        break;
    case TOPIC_RESULTS:
        if (e->cfg->result_retention_ms > 0)
            spec.configs = results_cfg, spec.n_configs = 2;
        else
            spec.configs = compacted_cfg, spec.n_configs = 1;
        break;
    case TOPIC_TRANSIENT: break;
    }
    return stele_log_topic_ensure(e->log, &spec, err);
}

static int schema_ref(stele_engine *e, const stele_record_ref *ref,
                      const char *who, const stele_schema **out, stele_err *err)
{
    int rc = stele_codec_schema(e->codec, ref->name, ref->version, out, err);
    if (rc != 0)
        stele_err_prefix(err, "%s", who);
    return rc;
}

static int check_registered(const stele_engine *e, const char *who,
                            const stele_schema *s, stele_err *err);

/* A schema an aggregate writes to topic: under the topic's subject with
 * the topic-record strategy, and registered (by the gate) by a writer. */
static int written_ref(stele_engine *e, const stele_record_ref *ref,
                       const char *topic, const char *who,
                       const stele_schema **out, stele_err *err)
{
    int rc = stele_codec_schema_for_topic(e->codec, topic, ref->name,
                                          ref->version, out, err);
    if (rc != 0)
        return stele_err_prefix(err, "%s", who);
    return check_registered(e, who, *out, err);
}

static int aggregate_setup(stele_engine *e, aggregate *a, stele_plugin *p,
                           stele_err *err)
{
    const stele_aggregate_def *d = p->desc->def.aggregate;
    const char *app = e->cfg->topic_prefix;
    int rc;
    a->plugin = p;
    a->def = d;
    a->partitions = e->cfg->partitions;
    a->t_commands = topic_name(app, d->type, "commands");
    a->t_events = topic_name(app, d->type, "events");
    a->t_state = topic_name(app, d->type, "state");
    a->t_results = topic_name(app, d->type, "results");
    a->cache = stele_state_cache_new();
    a->answered = calloc((size_t)a->partitions, sizeof *a->answered);
    a->answered_old = calloc((size_t)a->partitions, sizeof *a->answered_old);
    a->unrestored = calloc((size_t)a->partitions, sizeof *a->unrestored);
    a->answered_rotated_ms = stele_now_ms();
    a->commands = calloc(d->n_commands, sizeof *a->commands);
    a->events = calloc(d->n_events, sizeof *a->events);
    if (!a->t_commands || !a->t_events || !a->t_state || !a->t_results ||
        !a->cache || !a->answered || !a->answered_old || !a->unrestored ||
        (!a->commands && d->n_commands) || (!a->events && d->n_events))
        return stele_err_set(err, STELE_ENOMEM, "out of memory");

    if ((rc = written_ref(e, &d->state, a->t_state, p->path, &a->state_schema,
                          err)) ||
        (rc = stele_codec_value_new(a->state_schema, &a->state, err)))
        return rc;
    for (size_t i = 0; i < d->n_commands; i++) {
        a->commands[i].name = d->commands[i].name;
        if ((rc = written_ref(e, &d->commands[i], a->t_commands, p->path,
                              &a->commands[i].schema, err)))
            return rc;
        void *old;
        stele_map_put(e->cmd_index, d->commands[i].name,
                      strlen(d->commands[i].name), a, &old);
        if (old)
            return stele_err_set(err, STELE_EINVAL,
                                 "%s: command %s is already handled by "
                                 "aggregate %s",
                                 p->path, d->commands[i].name,
                                 ((aggregate *)old)->def->type);
    }
    for (size_t i = 0; i < d->n_events; i++) {
        a->events[i].name = d->events[i].name;
        if ((rc = written_ref(e, &d->events[i], a->t_events, p->path,
                              &a->events[i].schema, err)))
            return rc;
        stele_map_put(e->event_index, d->events[i].name,
                      strlen(d->events[i].name), a, NULL);
    }
    if ((rc = ensure_topic(e, a->t_commands, a->partitions, TOPIC_COMMANDS,
                           err)) ||
        (rc = ensure_topic(e, a->t_events, a->partitions, TOPIC_EVENTS, err)) ||
        (rc = ensure_topic(e, a->t_state, a->partitions, TOPIC_COMPACTED,
                           err)) ||
        (rc = ensure_topic(e, a->t_results, a->partitions, TOPIC_RESULTS, err)))
        return rc;
    return 0;
}

static void aggregate_free(aggregate *a)
{
    if (a->commands)
        for (size_t i = 0; i < a->def->n_commands; i++)
            engine_values_free(&a->commands[i]);
    if (a->events)
        for (size_t i = 0; i < a->def->n_events; i++)
            engine_values_free(&a->events[i]);
    free(a->commands);
    free(a->events);
    if (a->state.iface) /* made after its schema: a failed setup may not */
        avro_value_decref(&a->state);
    stele_state_cache_free(a->cache);
    for (int32_t p = 0; a->answered && p < a->partitions; p++)
        stele_set64_free(a->answered[p]);
    for (int32_t p = 0; a->answered_old && p < a->partitions; p++)
        stele_set64_free(a->answered_old[p]);
    free(a->answered);
    free(a->answered_old);
    free(a->unrestored);
    free(a->t_commands);
    free(a->t_events);
    free(a->t_state);
    free(a->t_results);
}

static int classify_plugins(stele_engine *e, stele_err *err)
{
    size_t na = 0, np = 0, nq = 0;
    for (size_t i = 0; i < e->n_plugins; i++) {
        switch (e->plugins[i]->desc->kind) {
        case STELE_PLUGIN_AGGREGATE: na++; break;
        case STELE_PLUGIN_PROJECTOR: np++; break;
        case STELE_PLUGIN_QUERY: nq++; break;
        default: break; /* upcasters: schema evolution */
        }
    }
    e->aggs = calloc(na ? na : 1, sizeof *e->aggs);
    e->projs = calloc(np ? np : 1, sizeof *e->projs);
    e->queries = calloc(nq ? nq : 1, sizeof *e->queries);
    if (!e->aggs || !e->projs || !e->queries)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    int rc;
    for (size_t i = 0; i < e->n_plugins; i++) {
        stele_plugin *p = e->plugins[i];
        switch (p->desc->kind) {
        case STELE_PLUGIN_AGGREGATE:
            if ((rc = aggregate_setup(e, &e->aggs[e->n_aggs++], p, err)))
                return rc;
            break;
        case STELE_PLUGIN_PROJECTOR:
            e->projs[e->n_projs].plugin = p;
            e->projs[e->n_projs++].def = p->desc->def.projector;
            break;
        case STELE_PLUGIN_QUERY: {
            query *q = &e->queries[e->n_queries++];
            q->plugin = p;
            q->def = p->desc->def.query;
            if ((rc = schema_ref(e, &q->def->params, p->path, &q->params, err)))
                return rc;
            break;
        }
        case STELE_PLUGIN_UPCASTER:
            if ((rc = stele_codec_add_upcaster(e->codec, p->desc->def.upcaster,
                                               p->ctx, p->path, err)))
                return rc;
            break;
        default: break;
        }
    }
    return stele_codec_check_upcasters(e->codec, err);
}

static void warn_open(void *opaque, const char *msg)
{
    engine_logf(opaque, STELE_LOG_WARN, "%s", msg);
}

/* Whether one of the loaded upcasters leads into type vN. */
static bool upcaster_into(void *opaque, const char *type, int version)
{
    const stele_engine *e = opaque;
    for (size_t i = 0; i < e->n_plugins; i++) {
        const stele_plugin_descriptor *d = e->plugins[i]->desc;
        if (d->kind == STELE_PLUGIN_UPCASTER &&
            d->def.upcaster->to_version == version &&
            strcmp(d->def.upcaster->event_type, type) == 0)
            return true;
    }
    return false;
}

static bool ref_is(const stele_record_ref *r, const char *type, int version)
{
    return r->version == version && r->name && strcmp(r->name, type) == 0;
}

/* What a gate run covers: every topic (the record subject strategy), or
 * the records written to one topic (topic-record: a subject per topic). */
typedef struct gate_scope {
    const stele_engine *e;
    const char *topic; /* NULL: every topic */
} gate_scope;

static bool topic_is(const gate_scope *sc, const stele_aggregate_def *a,
                     const char *suffix)
{
    if (!sc->topic)
        return true;
    char *t = topic_name(sc->e->cfg->topic_prefix, a->type, suffix);
    bool same = t && strcmp(t, sc->topic) == 0;
    free(t);
    return same;
}

/* Whether a loaded aggregate writes type vN (its commands, events or
 * state) to the scope's topic: the versions this process registers. */
static bool writes_version(void *opaque, const char *type, int version)
{
    const gate_scope *sc = opaque;
    const stele_engine *e = sc->e;
    for (size_t i = 0; i < e->n_plugins; i++) {
        const stele_plugin_descriptor *d = e->plugins[i]->desc;
        if (d->kind != STELE_PLUGIN_AGGREGATE)
            continue;
        const stele_aggregate_def *a = d->def.aggregate;
        if (ref_is(&a->state, type, version) && topic_is(sc, a, "state"))
            return true;
        for (size_t k = 0; k < a->n_commands; k++)
            if (ref_is(&a->commands[k], type, version) &&
                topic_is(sc, a, "commands"))
                return true;
        for (size_t k = 0; k < a->n_events; k++)
            if (ref_is(&a->events[k], type, version) &&
                topic_is(sc, a, "events"))
                return true;
    }
    return false;
}

typedef struct gate_found {
    stele_engine *e;
    char first[1024];
    size_t n;
} gate_found;

static void gate_line(void *opaque, bool bad, const char *line)
{
    gate_found *f = opaque;
    if (!bad)
        return;
    if (f->n++ == 0)
        snprintf(f->first, sizeof f->first, "%s", line);
    engine_logf(f->e, STELE_LOG_ERROR, "schema gate: %s", line);
}

static int gate_topic(stele_engine *e, const char *topic, gate_found *found,
                      size_t *bad, stele_err *err)
{
    stele_compat_mode fallback = STELE_COMPAT_BACKWARD_TRANSITIVE;
    stele_compat_mode_parse(e->cfg->registry_compatibility, &fallback);
    gate_scope scope = {e, topic};
    stele_gate g = {.reg = e->reg,
                    .codec = e->codec,
                    .topic = topic,
                    .fallback = fallback,
                    .do_register = e->cfg->registry_auto_register,
                    .bridged = upcaster_into,
                    .bridged_opaque = e,
                    .registers = writes_version,
                    .registers_opaque = &scope,
                    .line = gate_line,
                    .line_opaque = found};
    size_t types, n = 0;
    int rc = stele_gate_run(&g, &types, &n, err);
    *bad += n;
    return rc ? stele_err_prefix(err, "schema gate") : 0;
}

/* A process that writes checks schemas/ against the registry, and
 * registers the versions it writes that are not registered yet, before it
 * writes anything (stele schema check runs the same gate): a schema that
 * cannot be read back, once written, is never written. */
static int schema_gate(stele_engine *e, stele_err *err)
{
    gate_found found = {.e = e};
    size_t bad = 0;
    int rc = 0;
    if (stele_registry_strategy(e->reg) != STELE_SUBJECT_TOPIC_RECORD) {
        rc = gate_topic(e, NULL, &found, &bad, err);
    } else {
        static const char *const kinds[] = {"commands", "events", "state"};
        for (size_t i = 0; i < e->n_plugins && rc == 0; i++) {
            const stele_plugin_descriptor *d = e->plugins[i]->desc;
            for (size_t k = 0;
                 k < 3 && rc == 0 && d->kind == STELE_PLUGIN_AGGREGATE; k++) {
                char *t = topic_name(e->cfg->topic_prefix,
                                     d->def.aggregate->type, kinds[k]);
                rc = t ? gate_topic(e, t, &found, &bad, err)
                       : stele_err_set(err, STELE_ENOMEM, "out of memory");
                free(t);
            }
        }
    }
    if (rc)
        return rc;
    if (bad)
        return stele_err_set(err, STELE_EINVAL,
                             "%s%s; nothing incompatible was registered, "
                             "nothing is written (stele schema check lists "
                             "%s)",
                             found.first, bad > 1 ? " (and more)" : "",
                             bad > 1 ? "them" : "it");
    return 0;
}

/* After the gate every schema a writer writes has an id: one without is
 * not registered (registry.auto_register is off). */
static int check_registered(const stele_engine *e, const char *who,
                            const stele_schema *s, stele_err *err)
{
    if (e->reader || s->id > 0)
        return 0;
    return stele_err_set(err, STELE_EINVAL,
                         "%s: %s v%d is not registered and "
                         "registry.auto_register is off: register it with "
                         "stele schema register",
                         who, s->name, s->version);
}

static int open_engine(const stele_config *cfg, bool writes, stele_engine **out,
                       stele_err *err);

int stele_engine_open(const stele_config *cfg, stele_engine **out,
                      stele_err *err)
{
    return open_engine(cfg, true, out, err);
}

int stele_engine_open_reader(const stele_config *cfg, stele_engine **out,
                             stele_err *err)
{
    return open_engine(cfg, false, out, err);
}

static int open_engine(const stele_config *cfg, bool writes, stele_engine **out,
                       stele_err *err)
{
    stele_engine *e = calloc(1, sizeof *e);
    if (!e)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    e->cfg = cfg;
    /* The process's log lines from here on, as the config asks. */
    stele_logline_json(cfg->log_format && strcmp(cfg->log_format, "json") == 0);
    e->cmd_index = stele_map_new();
    e->event_index = stele_map_new();
    e->t_deadletter = topic_name(cfg->topic_prefix, "deadletter", "");
    e->cmd_group = topic_name(cfg->app, "engine", "");
    int rc = STELE_ENOMEM;
    if (!e->cmd_index || !e->event_index || !e->t_deadletter || !e->cmd_group) {
        stele_err_set(err, rc, "out of memory");
        goto fail;
    }
    stele_open_opts o = {
        .role = "host", .retry = true, .warn = warn_open, .opaque = e};
    if ((rc = stele_open_log(cfg, &o, &e->log, err)))
        goto fail;
    stele_log_caps caps = stele_log_capabilities(e->log);
    e->local = caps.local;
    /* A log without lookups by key for clients (Kafka): replies go to a
     * topic they follow. The others answer from the results topic. */
    if (caps.replies_topic &&
        !(e->t_replies = topic_name(cfg->topic_prefix, "replies", ""))) {
        rc = stele_err_set(err, STELE_ENOMEM, "out of memory");
        goto fail;
    }
    e->replies_partitions = cfg->partitions;
    if ((rc = stele_open_registry(cfg, e->log, &e->reg, err)) ||
        (rc = stele_codec_new(cfg->schemas_dir, e->reg, &e->codec, err)) ||
        (rc = stele_open_store(cfg, &o, &e->store, err)))
        goto fail;
    engine_api_init(e);
    if ((rc = stele_plugins_load_all(cfg->plugins, cfg->n_plugins, &e->api,
                                     &e->plugins, err)))
        goto fail;
    e->n_plugins = cfg->n_plugins;
    e->reader = !writes;
    stele_codec_set_registering(e->codec, false);
    if (writes && (rc = schema_gate(e, err)))
        goto fail;
    if ((rc = ensure_topic(e, e->t_deadletter, 1, TOPIC_TRANSIENT, err)) ||
        (e->t_replies &&
         (rc = ensure_topic(e, e->t_replies, e->replies_partitions,
                            TOPIC_TRANSIENT, err))) ||
        (rc = classify_plugins(e, err)) || (rc = projections_open(e, err)))
        goto fail;
    /* The worker forks at its first call, when every plugin is loaded and
     * initialised and every schema it reads is known. */
    if (writes && cfg->isolate_plugins && e->n_aggs > 0 &&
        (rc = worker_new(e, &e->worker, err)))
        goto fail;
    *out = e;
    return 0;
fail:
    stele_engine_close(e);
    return rc;
}

void stele_engine_close(stele_engine *e)
{
    if (!e)
        return;
    if (e->cmd_consumer)
        stele_log_consumer_close(e->cmd_consumer);
    projections_close(e);
    worker_free(e->worker);
    stele_codec_events_free(e->reads);
    for (size_t i = 0; i < e->n_aggs; i++)
        aggregate_free(&e->aggs[i]);
    free(e->aggs);
    free(e->projs);
    free(e->queries);
    if (e->plugins)
        stele_plugins_unload_all(e->plugins, e->n_plugins);
    stele_store_close(e->store);
    stele_codec_free(e->codec);
    stele_registry_close(e->reg);
    stele_log_close(e->log);
    stele_map_free(e->cmd_index, NULL);
    stele_map_free(e->event_index, NULL);
    stele_buf_free(&e->buf);
    free(e->t_deadletter);
    free(e->t_replies);
    free(e->cmd_group);
    free(e);
}

void stele_engine_stats_get(const stele_engine *e, stele_engine_stats *s)
{
    *s = e->stats;
}

int engine_until_idle(stele_engine *e, bool commands, size_t *did,
                      stele_err *err)
{
    *did = 0;
    int first = 0;
    for (;;) {
        size_t n1 = 0, n2 = 0;
        stele_err perr = {0};
        int rc = commands ? commands_process(e, 0, &n1, err) : 0;
        if (rc != 0)
            return rc;
        rc = projections_step(e, 0, false, &n2, &perr);
        if (rc == STELE_EFATAL) {
            *err = perr;
            return rc;
        }
        if (rc != 0 && !first) {
            first = rc;
            *err = perr;
        }
        *did += n1 + n2;
        if (n1 + n2 == 0)
            return first;
    }
}

int stele_engine_drain(stele_engine *e, size_t *did, stele_err *err)
{
    *did = 0;
    if (!e->local)
        return 0; /* joining the groups would take work from the hosts */
    /* a reader does not decide commands: that writes */
    return engine_until_idle(e, !e->reader, did, err);
}

int stele_engine_catch_up(stele_engine *e, size_t *did, stele_err *err)
{
    return engine_until_idle(e, false, did, err);
}
