/*
 * retention.c — commands and results do not stay forever.
 *
 * Commands: on Kafka the broker deletes them by the commands topic's
 * retention.ms (set from log.command_retention_ms when the host creates
 * the topic); the SQL logs (SQLite, PostgreSQL) keep every record
 * until told, so the host deletes the commands older than the retention
 * itself — only those already processed: never at or past the engine
 * group's committed offset.
 *
 * Results are the idempotency index: a command resubmitted with the id of
 * one is answered from it. They are kept log.result_retention_ms, the
 * idempotency window. The SQL logs delete the older ones; on Kafka
 * the broker does (cleanup.policy=compact,delete) and the host forgets
 * them in its views of the results partitions it owns. The in-memory sets
 * of answered ids move a generation on once per window (internal.h).
 */
#include <stdint.h>

#include "common/err.h"
#include "internal.h"

/* Records one call deletes at most, of each kind: a backlog (the first run
 * over months of commands) is worked off a call at a time, not at start-up
 * at once. */
#define EXPIRE_MAX_PER_CALL (10 * STELE_LOG_DELETE_MAX)

/* Deletes the records of topic's partitions stamped before before_ms,
 * below the engine group's committed offsets when bounded (commands). */
static int expire_topic(stele_engine *e, const aggregate *a, const char *topic,
                        int64_t before_ms, bool bounded, int64_t *deleted,
                        stele_err *err)
{
    for (int32_t p = 0; p < a->partitions && *deleted < EXPIRE_MAX_PER_CALL;
         p++) {
        int64_t below = INT64_MAX, n = STELE_LOG_DELETE_MAX;
        int rc = bounded ? stele_log_committed(e->log, e->cmd_group,
                                               a->t_commands, p, &below, err)
                         : 0;
        /* in short transactions, so producers wait little */
        while (rc == 0 && n == STELE_LOG_DELETE_MAX &&
               *deleted < EXPIRE_MAX_PER_CALL) {
            rc = stele_log_delete_before(e->log, topic, p, before_ms, below, &n,
                                         err);
            *deleted += rc ? 0 : n;
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* A new generation of answered ids once a window has passed since the
 * last one: the older generation is dropped. */
static int rotate_answered(stele_engine *e, aggregate *a, int64_t now_ms,
                           stele_err *err)
{
    if (now_ms - a->answered_rotated_ms < e->cfg->result_retention_ms)
        return 0;
    for (int32_t p = 0; p < a->partitions; p++) {
        if (!a->answered[p])
            continue; /* not owned, or every command is looked up */
        stele_set64 *fresh = stele_set64_new();
        if (!fresh)
            return stele_err_set(err, STELE_ENOMEM, "out of memory");
        stele_set64_free(a->answered_old[p]);
        a->answered_old[p] = a->answered[p];
        a->answered[p] = fresh;
    }
    a->answered_rotated_ms = now_ms;
    return 0;
}

int stele_engine_expire(stele_engine *e, int64_t now_ms, stele_expired *out,
                        stele_err *err)
{
    *out = (stele_expired){0, 0};
    int64_t commands_ms = e->cfg->command_retention_ms;
    int64_t results_ms = e->cfg->result_retention_ms;
    for (size_t i = 0; i < e->n_aggs; i++) {
        aggregate *a = &e->aggs[i];
        if (commands_ms > 0 && stele_log_deletes_records(e->log) &&
            expire_topic(e, a, a->t_commands, now_ms - commands_ms, true,
                         &out->commands, err))
            return stele_err_prefix(err, "command retention");
        if (results_ms > 0 &&
            (expire_topic(e, a, a->t_results, now_ms - results_ms, false,
                          &out->results, err) ||
             rotate_answered(e, a, now_ms, err)))
            return stele_err_prefix(err, "result retention");
    }
    return 0;
}
