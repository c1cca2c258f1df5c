/*
 * retention.c — commands do not stay forever. On Kafka the broker deletes
 * them by the commands topic's retention.ms (set from
 * log.command_retention_ms when the host creates the topic); the embedded
 * logs (SQLite, PostgreSQL) keep every record until told, so the host
 * deletes the commands older than the retention itself — only those
 * already processed: never at or past the engine group's committed offset.
 */
#include "common/err.h"
#include "internal.h"

/* Records one call deletes at most: a backlog (the first run over months
 * of commands) is worked off a call at a time, not at start-up at once. */
#define EXPIRE_MAX_PER_CALL (10 * STELE_LOG_DELETE_MAX)

int stele_engine_expire(stele_engine *e, int64_t now_ms, int64_t *deleted,
                        stele_err *err)
{
    *deleted = 0;
    int64_t keep = e->cfg->command_retention_ms;
    if (keep <= 0 || !stele_log_deletes_records(e->log))
        return 0;
    for (size_t i = 0; i < e->n_aggs; i++) {
        const aggregate *a = &e->aggs[i];
        for (int32_t p = 0;
             p < a->partitions && *deleted < EXPIRE_MAX_PER_CALL; p++) {
            int64_t committed, n = STELE_LOG_DELETE_MAX;
            int rc = stele_log_committed(e->log, e->cmd_group, a->t_commands,
                                         p, &committed, err);
            /* in short transactions, so producers wait little */
            while (rc == 0 && n == STELE_LOG_DELETE_MAX &&
                   *deleted < EXPIRE_MAX_PER_CALL) {
                rc = stele_log_delete_before(e->log, a->t_commands, p,
                                             now_ms - keep, committed, &n,
                                             err);
                *deleted += rc ? 0 : n;
            }
            if (rc)
                return stele_err_prefix(err, "command retention");
        }
    }
    return 0;
}
