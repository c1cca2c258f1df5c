/*
 * The command consumer's partitions changing hands. On assignment the host
 * restores what it needs to decide commands of a partition it now owns:
 * the ids of the commands already answered there and its aggregates'
 * states (rebuilt from events when their state_version changed). On
 * revocation it drops them.
 */
#include <stdint.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "internal.h"

/* The hashes of the command ids answered in a partition, read from its
 * results: those within log.result_retention_ms (older ones are about to
 * be deleted). (A failure leaves the set absent: every command is then
 * checked in the results topic itself.) */
static int load_answered(stele_engine *e, aggregate *a, int32_t p,
                         stele_err *err)
{
    stele_set64_free(a->answered[p]);
    stele_set64_free(a->answered_old[p]);
    a->answered[p] = a->answered_old[p] = NULL;
    int64_t keep = e->cfg->result_retention_ms;
    int64_t since = keep > 0 ? stele_now_ms() - keep : INT64_MIN;
    stele_set64 *set = stele_set64_new();
    if (!set)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    int64_t from = 0;
    for (;;) {
        stele_log_batch *b;
        int rc = stele_log_read(e->log, a->t_results, p, from, 4096, &b, err);
        if (rc != 0) {
            stele_set64_free(set);
            return rc;
        }
        size_t n = b->n;
        for (size_t i = 0; i < n; i++) {
            from = b->records[i].offset + 1;
            if (b->records[i].value && b->records[i].timestamp_ms >= since &&
                stele_set64_add(set, stele_hash64(b->records[i].key,
                                                  b->records[i].key_len))) {
                stele_log_batch_free(b);
                stele_set64_free(set);
                return stele_err_set(err, STELE_ENOMEM, "out of memory");
            }
        }
        stele_log_batch_free(b);
        if (n == 0)
            break;
    }
    a->answered[p] = set;
    return 0;
}

void commands_on_assigned(void *opaque, stele_log_consumer *c,
                          const stele_topic_partition *tps, size_t n)
{
    (void)c;
    stele_engine *e = opaque;
    for (size_t i = 0; i < n; i++) {
        aggregate *a = NULL;
        for (size_t j = 0; j < e->n_aggs; j++)
            if (strcmp(e->aggs[j].t_commands, tps[i].topic) == 0)
                a = &e->aggs[j];
        if (!a)
            continue;
        size_t loaded = 0, stale = 0;
        stele_err err;
        /* Logs without lookup by key (Kafka) materialize the compacted
         * partitions this host now owns: results answer duplicates. */
        /* The previous owner's last transaction may still be completing:
         * a stable read of the committed offset waits for it (Kafka:
         * KIP-447), so its states and results are visible before they are
         * restored. Without this, a command after that transaction could
         * be decided against a state that misses it. */
        int64_t committed;
        int rc = stele_log_committed(e->log, e->cmd_group, tps[i].topic,
                                     tps[i].partition, &committed, &err);
        if (rc == 0)
            rc = stele_log_compacted_sync(e->log, a->t_results,
                                          tps[i].partition, &err);
        if (rc == 0)
            rc = load_answered(e, a, tps[i].partition, &err);
        if (rc == 0)
            rc = stele_state_restore(a->cache, e->log, a->t_state,
                                     tps[i].partition, a->def->state_version,
                                     &loaded, &stale, &err);
        e->stats.states_restored += loaded;
        if (rc == 0 && stale > 0) {
            /* The aggregate's state_version changed: its stored states
             * mean something else now, so rebuild them from events. */
            size_t events, states;
            engine_logf(e, STELE_LOG_INFO,
                        "%s[%d]: %zu states of another state version: "
                        "rebuilding from events",
                        a->t_state, (int)tps[i].partition, stale);
            stele_state_drop_partition(a->cache, tps[i].partition);
            rc = replay_partition(e, a, tps[i].partition, &events, &states,
                                  &err);
            e->stats.events_replayed += events;
        }
        if (rc != 0) {
            engine_logf(e, STELE_LOG_ERROR, "restoring %s[%d]: %s",
                        a->t_state, (int)tps[i].partition, err.msg);
            e->cmd_failed = true;
        }
    }
}

void commands_on_revoked(void *opaque, stele_log_consumer *c,
                         const stele_topic_partition *tps, size_t n,
                         bool lost)
{
    (void)c;
    (void)lost;
    stele_engine *e = opaque;
    if (n > 0)
        e->cmd_revokes++;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < e->n_aggs; j++)
            if (strcmp(e->aggs[j].t_commands, tps[i].topic) == 0) {
                aggregate *a = &e->aggs[j];
                stele_state_drop_partition(a->cache, tps[i].partition);
                if (tps[i].partition < a->partitions) {
                    stele_set64_free(a->answered[tps[i].partition]);
                    stele_set64_free(a->answered_old[tps[i].partition]);
                    a->answered[tps[i].partition] = NULL;
                    a->answered_old[tps[i].partition] = NULL;
                }
            }
}
