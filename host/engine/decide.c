/*
 * The calls into an aggregate's plugin: decide and the evolve of what it
 * decided (a command), evolve of stored events (a rebuild). The host runs
 * them here itself with engine.isolation: none, and the plugin worker
 * (worker.c) runs the very same functions with process, so both modes
 * decide alike. Only the host's own calls are guarded (guard.h): the
 * worker shares the host's in-flight slot through fork, and must not
 * mark it.
 */
#include <stdio.h>
#include <string.h>

#include "codec/value.h"
#include "common/err.h"
#include "common/util.h"
#include "decide.h"
#include "guard.h"

static void guarded_call(const engine_call *c, guard_call_kind kind)
{
    if (c->guarded)
        guard_call(kind);
    if (c->phase)
        *c->phase = (uint32_t)kind;
}

static void guarded_return(const engine_call *c)
{
    if (c->guarded)
        guard_return();
}

stele_event_meta engine_event_meta(const aggregate *a, const engine_call *c,
                                   size_t i, const char *id)
{
    return (stele_event_meta){.event_id = id,
                              .aggregate_type = a->def->type,
                              .aggregate_id = c->aggregate_id,
                              .version = c->version + (int64_t)i + 1,
                              .causation_id = c->command_id,
                              .correlation_id = c->correlation_id,
                              .timestamp_ms = c->now_ms,
                              .topic = a->t_events,
                              .partition = c->partition,
                              .offset = -1};
}

int engine_decide(stele_engine *e, aggregate *a, const engine_call *c,
                  avro_value_t *cmd_value, stele_decision *d,
                  engine_decided *out)
{
    stele_value cv = stele_value_wrap(cmd_value);
    stele_value sv = stele_value_wrap(&a->state);
    stele_command cmd = {.type = c->command_type,
                         .command_id = c->command_id,
                         .aggregate_type = a->def->type,
                         .aggregate_id = c->aggregate_id,
                         .correlation_id = c->correlation_id,
                         .user = c->user,
                         .timestamp_ms = c->now_ms,
                         .value = &cv};
    *d = (stele_decision){.e = e, .agg = a};
    out->error[0] = '\0';
    for (size_t i = 0; i < a->def->n_events; i++)
        engine_values_release_all(&a->events[i]);
    if (c->guarded)
        guard_begin(c->topic, c->partition, c->offset, c->command_id);
    stele_value_failure_clear();
    guarded_call(c, GUARD_DECIDE);
    int rc = a->def->decide(a->plugin->ctx, &cmd, &sv, d);
    guarded_return(c);
    if (d->fault || rc != 0) {
        snprintf(out->error, sizeof out->error, "decide failed: %s%s%s%s",
                 d->fault ? d->fault_msg : stele_strstatus(rc),
                 *stele_value_failure() ? " (first failed call: " : "",
                 stele_value_failure(), *stele_value_failure() ? ")" : "");
        return 0;
    }
    if (d->rejected)
        return 0;

    /* Apply every event to the state before writing anything: an evolve
     * failure rejects the whole command. */
    for (size_t i = 0; i < d->n; i++) {
        stele_ulid(out->ids[i]);
        out->metas[i] = engine_event_meta(a, c, i, out->ids[i]);
        stele_value ev = stele_value_wrap(d->ev[i].value);
        stele_event event = {.type = d->ev[i].tv->name,
                             .schema_version = d->ev[i].tv->schema->version,
                             .value = &ev,
                             .meta = &out->metas[i]};
        stele_value_failure_clear();
        guarded_call(c, GUARD_EVOLVE);
        rc = a->def->evolve(a->plugin->ctx, &sv, &event);
        guarded_return(c);
        if (rc != 0) {
            snprintf(out->error, sizeof out->error,
                     "evolve failed on %s: %s%s%s%s", event.type,
                     stele_strstatus(rc),
                     *stele_value_failure() ? " (first failed call: " : "",
                     stele_value_failure(), *stele_value_failure() ? ")" : "");
            return 0;
        }
    }
    return 0;
}

int engine_evolve_stored(stele_engine *e, aggregate *a, const void *state,
                         size_t state_len, const stele_event *evs, size_t n,
                         const engine_call *c, stele_err *err)
{
    stele_value sv = stele_value_wrap(&a->state);
    int rc = state ? stele_codec_decode(e->codec, state, state_len,
                                        a->state_schema, &a->state, err)
                   : stele_codec_value_reset(a->state_schema, &a->state, err);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (c->guarded)
            guard_begin(c->topic, c->partition, c->offset, a->def->type);
        stele_value_failure_clear();
        guarded_call(c, GUARD_REBUILD);
        int erc = a->def->evolve(a->plugin->ctx, &sv, &evs[i]);
        guarded_return(c);
        if (erc)
            return stele_err_set(
                err, STELE_EPLUGIN, "%s[%d]@%lld: evolve failed on %s%s%s%s",
                c->topic, (int)c->partition, (long long)c->offset, evs[i].type,
                *stele_value_failure() ? " (first failed call: " : "",
                stele_value_failure(), *stele_value_failure() ? ")" : "");
    }
    if (rc == 0)
        rc = stele_codec_encode(e->codec, a->state_schema, &a->state, &e->buf,
                                err);
    return rc;
}
