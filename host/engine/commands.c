/*
 * The command processor. A batch of commands is one log transaction: each
 * command's events, its aggregate's new state and its result are written,
 * with the consumer offsets of the commands, all or nothing. States change
 * in the cache only after the commit, so an aborted batch leaves no trace.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/value.h"
#include "common/err.h"
#include "common/text.h"
#include "common/util.h"
#include "commands_internal.h"
#include "worker.h"

#define MAX_POLLS 64 /* polls gathered into one batch */

static size_t scoped_key(char *out, size_t size, size_t agg_index,
                         const char *id)
{
    int n = snprintf(out, size, "%zu/%s", agg_index, id);
    return n < 0 ? 0 : ((size_t)n < size ? (size_t)n : size - 1);
}

/* The state this batch sees for an aggregate: its own uncommitted one,
 * else the cached one, else none (a new aggregate). */
static const stele_state_entry *current_state(batch *b, const envelope *env)
{
    char key[MAX_ID_LEN + 32];
    size_t kl = scoped_key(key, sizeof key, env->agg_index, env->aggregate_id);
    const stele_state_entry *s = stele_map_get(b->dirty, key, kl);
    if (!s)
        s = stele_state_get(env->agg->cache, env->aggregate_id,
                            strlen(env->aggregate_id));
    return s;
}

static int stage_state(batch *b, const envelope *env, int64_t version,
                       const stele_buf *bytes, stele_err *err)
{
    char key[MAX_ID_LEN + 32];
    size_t kl = scoped_key(key, sizeof key, env->agg_index, env->aggregate_id);
    stele_state_entry *s = stele_state_entry_new(
        version, env->rec->partition, false, bytes->data, bytes->len);
    if (!s)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    void *old;
    if (stele_map_put(b->dirty, key, kl, s, &old) != 0) {
        free(s);
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    }
    free(old);

    char v[24], sv[16];
    snprintf(v, sizeof v, "%" PRId64, version);
    snprintf(sv, sizeof sv, "%d", env->agg->def->state_version);
    stele_log_header h[] = {{STELE_H_VERSION, v, strlen(v)},
                            {STELE_H_STATE_VERSION, sv, strlen(sv)}};
    stele_log_record r = {.timestamp_ms = stele_now_ms(),
                          .key = env->aggregate_id,
                          .key_len = strlen(env->aggregate_id),
                          .value = bytes->data,
                          .value_len = bytes->len,
                          .headers = h,
                          .n_headers = 2};
    return stele_log_txn_produce(b->txn, env->agg->t_state, env->rec->partition,
                                 &r, NULL, err);
}

static int write_event(batch *b, const envelope *env, typed_values *tv,
                       avro_value_t *value, const stele_event_meta *m,
                       stele_err *err)
{
    stele_engine *e = b->e;
    int rc = stele_codec_encode(e->codec, tv->schema, value, &e->buf, err);
    if (rc != 0)
        return rc;
    char v[24];
    snprintf(v, sizeof v, "%" PRId64, m->version);
    stele_log_header h[] = {
        {H_EVENT_ID, m->event_id, strlen(m->event_id)},
        {H_EVENT_TYPE, tv->name, strlen(tv->name)},
        {H_AGGREGATE_TYPE, m->aggregate_type, strlen(m->aggregate_type)},
        {H_AGGREGATE_ID, m->aggregate_id, strlen(m->aggregate_id)},
        {H_VERSION, v, strlen(v)},
        {H_CAUSATION_ID, m->causation_id, strlen(m->causation_id)},
        {H_CORRELATION_ID, m->correlation_id, strlen(m->correlation_id)},
        {H_USER, env->user, strlen(env->user)},
        {H_TRACEPARENT, env->traceparent, strlen(env->traceparent)},
    };
    size_t nh = sizeof h / sizeof h[0];
    if (!env->traceparent[0])
        nh--; /* the last: none to carry */
    stele_log_record r = {.timestamp_ms = m->timestamp_ms,
                          .key = env->aggregate_id,
                          .key_len = strlen(env->aggregate_id),
                          .value = e->buf.data,
                          .value_len = e->buf.len,
                          .headers = h,
                          .n_headers = nh};
    b->stats.events_written++;
    return stele_log_txn_produce(b->txn, env->agg->t_events,
                                 env->rec->partition, &r, NULL, err);
}

/* Decides and, when accepted, writes events, state and result. */
static int decide_and_write(batch *b, envelope *env, typed_values *cmd_tv,
                            avro_value_t *cmd_value, stele_err *err)
{
    stele_engine *e = b->e;
    aggregate *a = env->agg;
    const stele_state_entry *cur = current_state(b, env);
    int64_t version = cur ? cur->version : 0;
    int rc;

    if (cur && cur->broken) {
        /* Its events cannot be read into a state: deciding on the events
         * before the bad one would append to a history it does not know. */
        char msg[sizeof((stele_err *)0)->msg + 96];
        snprintf(msg, sizeof msg,
                 "aggregate %s %s cannot be rebuilt from its events: %s "
                 "(fix the cause, then run stele replay)",
                 a->def->type, env->aggregate_id, cur->data);
        return commands_reject(b, env, "AGGREGATE_BROKEN", msg, version, err);
    }
    if (env->has_expected && env->expected_version != version) {
        char msg[128];
        snprintf(msg, sizeof msg,
                 "expected version %" PRId64 ", current version %" PRId64,
                 env->expected_version, version);
        return commands_reject(b, env, "CONFLICT", msg, version, err);
    }
    if (commands_crashed_out(b, env, version, &rc, err))
        return rc;

    engine_call call = {.command_type = cmd_tv->name,
                        .command_id = env->command_id,
                        .aggregate_id = env->aggregate_id,
                        .correlation_id = env->correlation_id,
                        .user = env->user,
                        .now_ms = stele_now_ms(),
                        .version = version,
                        .topic = env->rec->topic,
                        .partition = env->rec->partition,
                        .offset = env->rec->offset,
                        .guarded = true};
    stele_decision d;
    engine_decided out;
    const stele_buf *state = NULL; /* the new state, when the worker's */
    worker_crash crash = {0};
    stele_err derr = {0};
    if (e->worker) {
        call.guarded = false; /* the worker is not the host */
        rc = worker_decide(e->worker, a, &call, cmd_tv, cmd_value, env->rec,
                           cur, &d, &out, &state, &crash, &derr);
    } else {
        rc = cur ? stele_codec_decode(e->codec, cur->data, cur->len,
                                      a->state_schema, &a->state, &derr)
                 : stele_codec_value_reset(a->state_schema, &a->state, &derr);
        rc = rc ? STELE_EINVAL /* whatever the reason: it is the state's */
                : engine_decide(e, a, &call, cmd_value, &d, &out);
    }
    if (rc == STELE_EINVAL) {
        /* Restores check that stored states decode, so this is a state of
         * the cache gone bad: not a reason to stop every aggregate. The
         * batch is tried again after its partitions are restored. */
        commands_mark_unrestored(e, a->t_commands, env->rec->partition);
        return stele_err_set(err, STELE_ERETRY, "%s %s: stored state: %s",
                             a->def->type, env->aggregate_id, derr.msg);
    }
    if (rc != 0) {
        *err = derr;
        return rc;
    }
    if (crash.deaths)
        return commands_crashed_reject(b, env, version, crash.deaths,
                                       crash.kind, crash.why, err);
    if (out.error[0])
        return commands_reject(b, env, "PLUGIN_ERROR", out.error, version, err);
    if (d.rejected)
        return commands_reject(b, env, d.code, d.message, version, err);

    for (size_t i = 0; i < d.n; i++)
        if ((rc = write_event(b, env, d.ev[i].tv, d.ev[i].value, &out.metas[i],
                              err)))
            return rc;
    int64_t new_version = version + (int64_t)d.n;
    if (d.n > 0) {
        if (!state && (rc = stele_codec_encode(e->codec, a->state_schema,
                                               &a->state, &e->buf, err)))
            return rc;
        if ((rc = stage_state(b, env, new_version, state ? state : &e->buf,
                              err)))
            return rc;
    }

    return commands_write_accepted(b, env, new_version, out.ids, d.n, err);
}

/* An id the host can put in a result: 1..MAX_ID_LEN bytes of UTF-8
 * without control characters. */
static bool id_ok(const char *v, size_t len)
{
    if (len == 0 || len > MAX_ID_LEN || !stele_text_utf8_valid(v, len))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return false;
    return true;
}

/* A command on another partition than its aggregate's (home): written to
 * home in the transaction that consumes it, so it is decided there, by
 * the aggregate's single writer, exactly once. */
static int forward(batch *b, const stele_log_record *rec, aggregate *a,
                   int32_t home, stele_err *err)
{
    stele_engine *e = b->e;
    stele_log_header *h = malloc((rec->n_headers + 1) * sizeof *h);
    if (!h)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < rec->n_headers; i++)
        if (strcmp(rec->headers[i].name, H_MISROUTED_FROM) != 0)
            h[n++] = rec->headers[i];
    char from[48];
    snprintf(from, sizeof from, "%d@%" PRId64, (int)rec->partition,
             rec->offset);
    h[n++] = (stele_log_header){H_MISROUTED_FROM, from, strlen(from)};
    stele_log_record r = *rec;
    r.headers = h;
    r.n_headers = n;
    int rc = stele_log_txn_produce(b->txn, a->t_commands, home, &r, NULL, err);
    free(h);
    if (rc == 0 && b->stats.forwarded++ == 0 && e->stats.forwarded == 0)
        engine_logf(e, STELE_LOG_WARN,
                    "%s[%d]@%" PRId64 ": a command for partition %d: "
                    "forwarding it (and every other such command, without "
                    "saying so again). Its producer does not partition by "
                    "murmur2 of the aggregate id; set "
                    "partitioner=murmur2_random in librdkafka-based clients "
                    "(docs/kafka.md)",
                    rec->topic, (int)rec->partition, rec->offset, (int)home);
    return rc;
}

static int handle_record(batch *b, const stele_log_record *rec, stele_err *err)
{
    stele_engine *e = b->e;
    envelope env = {.rec = rec,
                    .agg = engine_aggregate_by_commands_topic(e, rec->topic)};
    if (env.agg)
        env.agg_index = (size_t)(env.agg - e->aggs);
    if (!env.agg)
        return commands_dead_letter(b, rec, "no aggregate for this topic", err);
    aggregate *a = env.agg;
    /* A record the log could not read whole (its stored headers are
     * corrupt) has no command id to answer: out of the way, and the
     * partition goes on. */
    if (rec->damaged) {
        char why[160];
        snprintf(why, sizeof why, "the stored command is unreadable: %s",
                 rec->damaged);
        return commands_dead_letter(b, rec, why, err);
    }

    size_t len;
    const char *v = engine_header_get(rec, H_COMMAND_ID, &len);
    if (!v || !id_ok(v, len))
        return commands_dead_letter(
            b, rec,
            "missing or malformed command_id header: no "
            "result can be addressed",
            err);
    memcpy(env.command_id, v, len);
    env.command_id[len] = '\0';
    if (id_ok(rec->key, rec->key_len)) {
        memcpy(env.aggregate_id, rec->key, rec->key_len);
        env.aggregate_id[rec->key_len] = '\0';
    }
    engine_header_str(rec, H_CORRELATION_ID, env.correlation_id,
                      sizeof env.correlation_id);
    if (!env.correlation_id[0])
        memcpy(env.correlation_id, env.command_id, len + 1);
    engine_header_str(rec, H_USER, env.user, sizeof env.user);
    size_t tlen;
    const char *trace = engine_header_get(rec, H_TRACEPARENT, &tlen);
    if (trace && engine_traceparent_valid(trace, tlen)) {
        memcpy(env.traceparent, trace, tlen);
        env.traceparent[tlen] = '\0';
    }

    /* Only the owner of an aggregate's partition decides its commands; a
     * command another producer put elsewhere is routed (engine.misrouted):
     * forwarded, or answered with MISROUTED where it is (after the
     * idempotency check below, so a redelivery gets the same answer). */
    int32_t home =
        env.aggregate_id[0]
            ? stele_partition_for_key(rec->key, rec->key_len, a->partitions)
            : rec->partition;
    bool misrouted = home != rec->partition;
    if (misrouted && !e->cfg->misrouted_reject)
        return forward(b, rec, a, home, err);

    /* Idempotency: a command id already answered is not processed again;
     * its stored result stays the answer. */
    char key[MAX_ID_LEN + 32];
    size_t kl = scoped_key(key, sizeof key, env.agg_index, env.command_id);
    if (stele_map_get(b->seen, key, kl)) {
        b->stats.duplicates++;
        return 0;
    }
    stele_log_batch *prior = NULL;
    bool owned = rec->partition < a->partitions;
    const stele_set64 *answered = owned ? a->answered[rec->partition] : NULL;
    const stele_set64 *older = owned ? a->answered_old[rec->partition] : NULL;
    uint64_t h = stele_hash64(env.command_id, len);
    int rc = STELE_ENOTFOUND;
    if (!answered || stele_set64_has(answered, h) ||
        (older && stele_set64_has(older, h)))
        rc = stele_log_get_latest(e->log, a->t_results, rec->partition,
                                  env.command_id, len, &prior, err);
    if (rc == 0) {
        /* A client tailing the replies topic waits for an answer: send
         * the stored one again (results themselves are not rewritten). */
        if (prior->records[0].damaged)
            engine_logf(e, STELE_LOG_ERROR,
                        "%s: the stored result of %s is damaged (%s): not "
                        "decided again, and not sent again",
                        a->t_results, env.command_id,
                        prior->records[0].damaged);
        else if (e->t_replies) {
            stele_log_record r = prior->records[0];
            r.headers = NULL;
            r.n_headers = 0;
            rc = stele_log_txn_produce(b->txn, e->t_replies, -1, &r, NULL, err);
        }
        stele_log_batch_free(prior);
        b->stats.duplicates++;
        return rc;
    }
    if (rc != STELE_ENOTFOUND)
        return rc;
    if (misrouted) {
        char msg[MAX_ID_LEN + 160];
        snprintf(msg, sizeof msg,
                 "the command is on partition %d; aggregate %s is on "
                 "partition %d (murmur2 of its id)",
                 (int)rec->partition, env.aggregate_id, (int)home);
        b->stats.commands++;
        return commands_reject(b, &env, "MISROUTED", msg, 0, err);
    }
    if (stele_map_put(b->seen, key, kl, (void *)(intptr_t)(rec->partition + 1),
                      NULL) != 0)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    b->stats.commands++;

    if (!env.aggregate_id[0])
        return commands_reject(
            b, &env, "BAD_COMMAND",
            "the record key (aggregate id) is missing or malformed", 0, err);
    v = engine_header_get(rec, H_EXPECTED_VERSION, &len);
    if (v && len > 0) {
        char buf[24], *end;
        if (len >= sizeof buf)
            return commands_reject(b, &env, "BAD_COMMAND",
                                   "bad expected_version", 0, err);
        memcpy(buf, v, len);
        buf[len] = '\0';
        env.expected_version = strtoll(buf, &end, 10);
        if (*end || env.expected_version < 0)
            return commands_reject(b, &env, "BAD_COMMAND",
                                   "bad expected_version", 0, err);
        env.has_expected = true;
    }
    if (rec->value_len > (size_t)e->cfg->max_value_bytes) {
        char msg[128];
        snprintf(msg, sizeof msg,
                 "value of %zu bytes exceeds the limit of "
                 "%lld",
                 rec->value_len, (long long)e->cfg->max_value_bytes);
        return commands_reject(b, &env, "TOO_LARGE", msg, 0, err);
    }

    stele_err cerr = {0};
    int32_t id;
    const stele_schema *writer;
    if (stele_codec_wire_id(rec->value, rec->value_len, &id, &cerr) != 0 ||
        stele_codec_schema_by_id(e->codec, id, &writer, &cerr) != 0)
        return commands_reject(b, &env, "BAD_COMMAND", cerr.msg, 0, err);
    typed_values *tv = NULL;
    for (size_t i = 0; i < a->def->n_commands; i++)
        if (strcmp(a->commands[i].name, writer->name) == 0)
            tv = &a->commands[i];
    if (!tv) {
        char msg[300];
        snprintf(msg, sizeof msg, "aggregate %s has no command %s",
                 a->def->type, writer->name);
        return commands_reject(b, &env, "UNKNOWN_COMMAND", msg, 0, err);
    }
    avro_value_t *cmd_value;
    engine_values_release_all(tv);
    if ((rc = engine_values_take(tv, &cmd_value, err)))
        return rc;
    if (stele_codec_decode(e->codec, rec->value, rec->value_len, tv->schema,
                           cmd_value, &cerr) != 0)
        return commands_reject(b, &env, "BAD_COMMAND", cerr.msg, 0, err);
    return decide_and_write(b, &env, tv, cmd_value, err);
}

static void note_offset(batch *b, const stele_log_record *rec)
{
    for (size_t i = 0; i < b->n_offsets; i++)
        if (b->offsets[i].partition == rec->partition &&
            strcmp(b->offsets[i].topic, rec->topic) == 0) {
            b->offsets[i].next = rec->offset + 1;
            return;
        }
    b->offsets[b->n_offsets++] =
        (next_offset){rec->topic, rec->partition, rec->offset + 1};
}

static int apply_dirty(void *opaque, const void *key, size_t len, void *value)
{
    stele_engine *e = opaque;
    const char *k = key, *slash = memchr(k, '/', len);
    size_t idx = (size_t)strtoul(k, NULL, 10);
    const stele_state_entry *s = value;
    stele_state_put(e->aggs[idx].cache, slash + 1,
                    len - (size_t)(slash + 1 - k), s->partition, s->version,
                    s->data, s->len);
    return 0;
}

/* After a commit: the batch's command ids are answered now. */
static int note_answered(void *opaque, const void *key, size_t len, void *value)
{
    stele_engine *e = opaque;
    const char *k = key, *slash = memchr(k, '/', len);
    aggregate *a = &e->aggs[strtoul(k, NULL, 10)];
    int32_t p = (int32_t)((intptr_t)value - 1);
    if (slash && p >= 0 && p < a->partitions && a->answered[p])
        stele_set64_add(a->answered[p],
                        stele_hash64(slash + 1, len - (size_t)(slash + 1 - k)));
    return 0;
}

static void stats_add(stele_engine_stats *to, const stele_engine_stats *from)
{
    to->commands += from->commands;
    to->accepted += from->accepted;
    to->rejected += from->rejected;
    to->duplicates += from->duplicates;
    to->events_written += from->events_written;
    to->dead_letters += from->dead_letters;
    to->forwarded += from->forwarded;
    to->transactions++;
}

static int ensure_consumer(stele_engine *e, stele_err *err)
{
    if (e->cmd_consumer || e->n_aggs == 0)
        return 0;
    const char *topics[64];
    size_t n = e->n_aggs < 64 ? e->n_aggs : 64;
    for (size_t i = 0; i < n; i++)
        topics[i] = e->aggs[i].t_commands;
    stele_log_rebalance_cb cb = {commands_on_assigned, commands_on_revoked, e};
    return stele_log_consumer_new(e->log, e->cmd_group, topics, n, &cb,
                                  &e->cmd_consumer, err);
}

/* Handles every gathered command in one transaction. */
static int process_batch(stele_engine *e, stele_log_batch **ins, size_t nin,
                         size_t total, stele_err *err)
{
    int rc = 0;
    batch b = {.e = e,
               .dirty = stele_map_new(),
               .seen = stele_map_new(),
               .offsets = calloc(total, sizeof *b.offsets)};
    if (!b.dirty || !b.seen || !b.offsets) {
        rc = stele_err_set(err, STELE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = stele_log_txn_begin(e->log, &b.txn, err)))
        goto out;
    for (size_t k = 0; k < nin; k++)
        for (size_t i = 0; i < ins[k]->n && rc == 0; i++) {
            rc = handle_record(&b, &ins[k]->records[i], err);
            note_offset(&b, &ins[k]->records[i]);
        }
    for (size_t i = 0; i < b.n_offsets && rc == 0; i++)
        rc = stele_log_txn_send_offset(
            b.txn, e->cmd_consumer, b.offsets[i].topic, b.offsets[i].partition,
            b.offsets[i].next, err);
    if (rc != 0)
        stele_log_txn_abort(b.txn);
    else
        rc = stele_log_txn_commit(b.txn, err);
    if (rc == 0) {
        stele_map_each(b.dirty, apply_dirty, e);
        stele_map_each(b.seen, note_answered, e);
        stats_add(&e->stats, &b.stats);
    } else if (rc == STELE_EFATAL) {
        /* Fenced or broken: this host must never write again. */
        e->cmd_failed = true;
    } else {
        /* The commit failed. Unless the log says nothing was written
         * (STELE_ECONFLICT: ownership lost, the transaction aborted), it
         * may have happened all the same: its answer can be lost (a
         * PostgreSQL connection cut during COMMIT, a Kafka producer
         * failing in commit_transaction). The cache cannot tell, so the
         * batch's partitions are restored from the log before their next
         * command. Either way the batch is read again from the committed
         * offsets (past it if it did happen). */
        for (size_t i = 0; rc != STELE_ECONFLICT && i < b.n_offsets; i++)
            commands_mark_unrestored(e, b.offsets[i].topic,
                                     b.offsets[i].partition);
        stele_err rerr;
        if (stele_log_consumer_rewind(e->cmd_consumer, &rerr) != 0) {
            engine_logf(e, STELE_LOG_ERROR, "rewind failed: %s", rerr.msg);
            e->cmd_needs_rewind = true;
        }
    }
out:
    stele_map_free(b.dirty, free);
    stele_map_free(b.seen, NULL);
    free(b.offsets);
    return rc;
}

/* Takes the commands of partitions not restored yet out of the gathered
 * input, and moves those partitions back to their first one: they are
 * read again once restored, while the others go on. Returns how many
 * commands are left. */
static size_t hold_unrestored(stele_engine *e, stele_log_batch **ins,
                              size_t nin)
{
    next_offset held[64]; /* per partition held: its first offset */
    size_t n_held = 0, left = 0;
    for (size_t k = 0; k < nin; k++) {
        stele_log_batch *b = ins[k];
        size_t w = 0;
        for (size_t i = 0; i < b->n; i++) {
            const stele_log_record *r = &b->records[i];
            aggregate *a = engine_aggregate_by_commands_topic(e, r->topic);
            if (!a || r->partition < 0 || r->partition >= a->partitions ||
                !a->unrestored[r->partition]) {
                b->records[w++] = *r;
                continue;
            }
            size_t h = 0;
            while (h < n_held && !(held[h].partition == r->partition &&
                                   held[h].topic == a->t_commands))
                h++;
            if (h == n_held && n_held < sizeof held / sizeof held[0])
                held[n_held++] =
                    (next_offset){a->t_commands, r->partition, r->offset};
            else if (h == n_held)
                e->cmd_needs_rewind = true; /* all back to committed */
        }
        b->n = w;
        left += w;
    }
    for (size_t h = 0; h < n_held; h++) {
        stele_err serr;
        if (stele_log_consumer_seek(e->cmd_consumer, held[h].topic,
                                    held[h].partition, held[h].next,
                                    &serr) != 0)
            e->cmd_needs_rewind = true;
    }
    return left;
}

int commands_process(stele_engine *e, int timeout_ms, size_t *did,
                     stele_err *err)
{
    *did = 0;
    if (e->cmd_failed)
        return stele_err_set(err, STELE_EFATAL,
                             "command processing stopped after a fatal "
                             "error");
    int rc = ensure_consumer(e, err);
    if (rc != 0 || !e->cmd_consumer)
        return rc;
    if (e->cmd_unrestored > 0) {
        stele_err rerr;
        if ((rc = commands_restore_pending(e, &rerr)) == STELE_EFATAL) {
            *err = rerr;
            return rc;
        }
        /* The partitions that stay unrestored wait (hold_unrestored);
         * said the first time and then every 10 s while it goes on. */
        int64_t now = stele_mono_ns();
        if (rc && now >= e->restore_report_ns) {
            engine_logf(e, STELE_LOG_WARN,
                        "%s (its commands wait; "
                        "retrying)",
                        rerr.msg);
            e->restore_report_ns = now + 10000 * 1000000LL;
        } else if (!rc) {
            e->restore_report_ns = 0;
        }
    }
    if (e->cmd_needs_rewind) {
        if ((rc = stele_log_consumer_rewind(e->cmd_consumer, err)))
            return rc;
        e->cmd_needs_rewind = false;
    }
    /* Gather a batch: whatever is there now, then more until the batch is
     * full or commit_interval_ms has passed, so one transaction carries
     * many commands under load and a lone command waits little. */
    stele_log_batch *ins[MAX_POLLS];
    size_t nin = 0, total = 0, max = (size_t)e->cfg->command_batch;
    int64_t deadline = 0;
    uint64_t revokes = e->cmd_revokes;
    for (;;) {
        stele_log_batch *in = NULL;
        int wait = timeout_ms;
        if (nin > 0) {
            int64_t left = (deadline - stele_mono_ns()) / 1000000;
            if (left <= 0 || total >= max || nin == MAX_POLLS)
                break;
            wait = (int)left;
        }
        if ((rc = stele_log_consumer_poll(e->cmd_consumer, wait, max - total,
                                          &in, err))) {
            if (nin == 0)
                return rc;
            break; /* handle what was gathered; the error comes back */
        }
        if (in->n == 0) {
            stele_log_batch_free(in);
            break;
        }
        if (nin == 0)
            deadline =
                stele_mono_ns() + (int64_t)e->cfg->commit_interval_ms * 1000000;
        ins[nin++] = in;
        total += in->n;
    }
    if (e->cmd_failed) {
        rc = stele_err_set(err, STELE_EFATAL,
                           "restoring states of assigned partitions failed");
        goto free_input;
    }
    if (total == 0)
        return 0;
    if (e->cmd_revokes != revokes) {
        /* A poll revoked partitions after others had returned records:
         * those of a partition no longer owned must not be decided here
         * (its states are gone, and their offsets would be committed for
         * another owner), and a partition revoked and assigned again has
         * moved back to its committed offset. Read it all again. */
        engine_logf(e, STELE_LOG_INFO,
                    "partitions were revoked while %zu commands were "
                    "gathered: reading them again from the committed "
                    "offsets",
                    total);
        stele_err rerr;
        if (stele_log_consumer_rewind(e->cmd_consumer, &rerr) != 0)
            e->cmd_needs_rewind = true;
        rc = 0;
        goto free_input;
    }
    if (e->cmd_unrestored > 0 && (total = hold_unrestored(e, ins, nin)) == 0) {
        rc = 0;
        goto free_input;
    }
    rc = process_batch(e, ins, nin, total, err);
    if (rc == 0)
        *did = total;
free_input:
    for (size_t i = 0; i < nin; i++)
        stele_log_batch_free(ins[i]);
    return rc;
}
