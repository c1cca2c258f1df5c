/*
 * repair.c — stele replay and what it repairs: every state rebuilt from
 * its events, the broken aggregates listed, and the parked aggregates of
 * the projectors projected again. Above the commands, replay and
 * projections, which it drives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "internal.h"

int stele_engine_replay(stele_engine *e, const char *aggregate_type,
                        size_t *events, size_t *states, stele_err *err)
{
    *events = *states = 0;
    if (e->reader)
        return stele_err_set(err, STELE_EINVAL,
                             "replay writes states: open the engine to write");
    if (aggregate_type && !engine_aggregate_by_type(e, aggregate_type))
        return stele_err_set(err, STELE_ENOTFOUND, "no aggregate type '%s'",
                             aggregate_type);
    /* Only the owner of the commands may write states: take the group
     * (which restores the current states) or refuse. */
    size_t did;
    int rc = commands_process(e, 0, &did, err);
    if (rc != 0)
        return rc;
    const stele_topic_partition *tps = NULL;
    size_t n = e->cmd_consumer
                   ? stele_log_consumer_assignment(e->cmd_consumer, &tps)
                   : 0;
    if (n == 0)
        return stele_err_set(err, STELE_ECONFLICT,
                             "another host owns the commands of app %s; stop "
                             "it before replaying",
                             e->cfg->app);
    for (size_t i = 0; i < e->n_aggs; i++) {
        aggregate *a = &e->aggs[i];
        if (aggregate_type && strcmp(a->def->type, aggregate_type) != 0)
            continue;
        for (int32_t p = 0; p < a->partitions; p++) {
            size_t ev, st;
            stele_state_drop_partition(a->cache, p);
            if ((rc = engine_replay_partition(e, a, p, &ev, &st, err)))
                return rc;
            *events += ev;
            *states += st;
            e->stats.events_replayed += ev;
        }
    }
    return 0;
}

int stele_engine_broken(stele_engine *e, const char *aggregate_type,
                        json_t **out, stele_err *err)
{
    aggregate *a = NULL;
    if (aggregate_type && !(a = engine_aggregate_by_type(e, aggregate_type)))
        return stele_err_set(err, STELE_ENOTFOUND, "no aggregate type '%s'",
                             aggregate_type);
    json_t *list = json_array();
    if (!list)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    int rc = engine_broken_aggregates(e, a, list, err);
    if (rc != 0) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return 0;
}

int stele_engine_repair_projections(stele_engine *e, size_t *repaired,
                                    size_t *left, stele_err *err)
{
    *repaired = *left = 0;
    /* Own the projectors' groups (refused below when a host runs them),
     * caught up to the end of the log. */
    size_t did;
    int rc = engine_until_idle(e, false, &did, err);
    return rc ? rc : projections_repair(e, repaired, left, err);
}
