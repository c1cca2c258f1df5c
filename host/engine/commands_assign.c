/*
 * The command consumer's partitions changing hands. On assignment the host
 * restores what it needs to decide commands of a partition it now owns:
 * the ids of the commands already answered there and its aggregates'
 * states (rebuilt from events when their state_version changed). On
 * revocation it drops them. A partition whose restore failed, or whose
 * last commit failed without telling whether it happened, is restored
 * again (commands_restore_pending) before its commands are decided.
 */
#include <stdint.h>
#include <string.h>

#include "common/err.h"
#include "codec/codec.h"
#include "common/util.h"
#include "internal.h"

/* The hashes of the command ids answered in a partition, read from its
 * results: those within log.result_retention_ms (older ones are about to
 * be deleted). (A failure leaves the set absent: every command is then
 * checked in the results topic itself.) */
/* How long an assignment waits for a transaction open on the partitions
 * it restores before it leaves them for later (the marker of a committed
 * one lands in milliseconds; a dead host's waits for the broker's
 * transaction.timeout.ms). */
#define ASSIGN_SETTLE_MS 1000

static void drop_answered(aggregate *a, int32_t p)
{
    stele_set64_free(a->answered[p]);
    stele_set64_free(a->answered_old[p]);
    a->answered[p] = a->answered_old[p] = NULL;
}

static int load_answered(stele_engine *e, aggregate *a, int32_t p,
                         stele_err *err)
{
    drop_answered(a, p);
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

static void mark_unrestored(stele_engine *e, aggregate *a, int32_t p, bool on)
{
    if (p < 0 || p >= a->partitions || a->unrestored[p] == on)
        return;
    a->unrestored[p] = on;
    if (on)
        e->cmd_unrestored++;
    else
        e->cmd_unrestored--;
}

/* Whether a stored state decodes (into the aggregate's scratch value: no
 * command is being decided while partitions are restored). One that does
 * not is rebuilt from events with its partition, instead of failing the
 * first command of its aggregate. */
typedef struct state_check {
    stele_engine *e;
    aggregate *a;
} state_check;

static bool state_readable(void *opaque, const void *value, size_t len)
{
    state_check *c = opaque;
    stele_err err;
    return stele_codec_decode(c->e->codec, value, len, c->a->state_schema,
                              &c->a->state, &err) == 0;
}

/* Reads what deciding the commands of partition p takes from the log:
 * the ids answered there and its aggregates' states (rebuilt from events
 * when their state_version changed). Whatever the cache held of p goes. */
static int restore_partition(stele_engine *e, aggregate *a, int32_t p,
                             int settle_ms, stele_err *err)
{
    stele_state_drop_partition(a->cache, p);
    size_t loaded = 0, stale = 0;
    /* Kafka: a read stops at the first open transaction, so what an owner
     * in between committed behind a dead host's open one is not visible
     * until the broker aborts it, nor is a committed transaction whose
     * markers are still on their way. A restore before then misses
     * committed batches: their answers (a resubmitted id decided again)
     * and their states (the next command decided on a version already
     * taken). So first no transaction may be open on what is read. */
    int rc = stele_log_settle(e->log, a->t_results, p, settle_ms, err);
    if (rc == 0)
        rc = stele_log_settle(e->log, a->t_state, p, settle_ms, err);
    if (rc == 0)
        rc = stele_log_settle(e->log, a->t_events, p, settle_ms, err);
    /* The previous owner's last transaction may still be completing: a
     * stable read of the committed offset waits for it (Kafka: KIP-447). */
    int64_t committed;
    if (rc == 0)
        rc = stele_log_committed(e->log, e->cmd_group, a->t_commands, p,
                                 &committed, err);
    /* Logs without lookup by key (Kafka) materialize the compacted
     * partitions this host now owns: results answer duplicates. */
    if (rc == 0)
        rc = stele_log_compacted_sync(e->log, a->t_results, p, err);
    /* The answered ids spare a lookup in the results per command; where
     * the lookup is in memory anyway (Kafka's view, synced just above)
     * they would only read the partition a second time. */
    if (rc == 0 && stele_log_lookups_in_memory(e->log))
        drop_answered(a, p);
    else if (rc == 0)
        rc = load_answered(e, a, p, err);
    if (rc == 0)
        rc = stele_state_restore(a->cache, e->log, a->t_state, p,
                                 a->def->state_version, state_readable,
                                 &(state_check){e, a}, &loaded, &stale, err);
    e->stats.states_restored += loaded;
    if (rc == 0 && stale > 0) {
        /* The aggregate's state_version changed (its stored states mean
         * something else now), or a stored state's headers are
         * unreadable: rebuild them from events. */
        size_t events, states;
        engine_logf(e, STELE_LOG_INFO,
                    "%s[%d]: %zu states of another state version or with "
                    "unreadable headers: rebuilding from events",
                    a->t_state, (int)p, stale);
        stele_state_drop_partition(a->cache, p);
        rc = engine_replay_partition(e, a, p, &events, &states, err);
        e->stats.events_replayed += events;
    }
    if (rc != 0)
        stele_state_drop_partition(a->cache, p);
    return rc;
}

void commands_on_assigned(void *opaque, stele_log_consumer *c,
                          const stele_topic_partition *tps, size_t n)
{
    (void)c;
    stele_engine *e = opaque;
    for (size_t i = 0; i < n; i++) {
        aggregate *a = engine_aggregate_by_commands_topic(e, tps[i].topic);
        if (!a)
            continue;
        stele_err err;
        int rc =
            restore_partition(e, a, tps[i].partition, ASSIGN_SETTLE_MS, &err);
        if (rc == 0)
            continue;
        /* The log failed us (a server restarting), or a transaction is
         * still open there (a dead host's): the partition is restored
         * later, before any of its commands is decided; the others go
         * on meanwhile. */
        engine_logf(e, rc == STELE_EFATAL ? STELE_LOG_ERROR : STELE_LOG_WARN,
                    "restoring %s[%d]: %s%s", a->t_state, (int)tps[i].partition,
                    err.msg,
                    rc == STELE_EFATAL ? "" : " (its commands wait; retrying)");
        if (rc == STELE_EFATAL)
            e->cmd_failed = true;
        mark_unrestored(e, a, tps[i].partition, true);
    }
}

void commands_mark_unrestored(stele_engine *e, const char *commands_topic,
                              int32_t partition)
{
    aggregate *a = engine_aggregate_by_commands_topic(e, commands_topic);
    if (a)
        mark_unrestored(e, a, partition, true);
}

int commands_restore_pending(stele_engine *e, stele_err *err)
{
    int first = 0;
    for (size_t j = 0; j < e->n_aggs && e->cmd_unrestored > 0; j++) {
        aggregate *a = &e->aggs[j];
        for (int32_t p = 0; p < a->partitions; p++) {
            if (!a->unrestored[p])
                continue;
            stele_err perr;
            /* A quick look only: the other partitions' commands go on
             * while this one waits. */
            int rc = restore_partition(e, a, p, 0, &perr);
            if (rc == 0) {
                mark_unrestored(e, a, p, false);
                continue;
            }
            if (rc == STELE_EFATAL)
                e->cmd_failed = true;
            if (!first) {
                first = rc;
                stele_err_set(err, rc, "restoring %s[%d]: %s", a->t_state,
                              (int)p, perr.msg);
            }
        }
    }
    return first;
}

void commands_on_revoked(void *opaque, stele_log_consumer *c,
                         const stele_topic_partition *tps, size_t n, bool lost)
{
    (void)c;
    (void)lost;
    stele_engine *e = opaque;
    if (n > 0)
        e->cmd_revokes++;
    for (size_t i = 0; i < n; i++) {
        aggregate *a = engine_aggregate_by_commands_topic(e, tps[i].topic);
        int32_t p = tps[i].partition;
        if (!a)
            continue;
        stele_state_drop_partition(a->cache, p);
        if (p >= 0 && p < a->partitions) {
            drop_answered(a, p);
            mark_unrestored(e, a, p, false);
        }
    }
}
