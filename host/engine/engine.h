/*
 * engine.h — the command processor and the projection runner, and the
 * operations the CLI and the HTTP API call (submit, wait for a result,
 * queries, events, states, replay).
 *
 * The engine talks only to the interfaces of log/, state/, store/ and
 * codec/, never to a backend directly.
 *
 * Topics (app "bank", aggregate "Account"):
 *   bank.Account.commands   commands, key = aggregate id
 *   bank.Account.events     events, kept forever
 *   bank.Account.state      compacted: latest state per aggregate
 *   bank.Account.results    compacted: result per command id, in the
 *                           command's partition (idempotency + replies)
 *   bank.deadletter         records that could not even be rejected
 */
#ifndef STELE_ENGINE_H
#define STELE_ENGINE_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include <stele/stele.h>

#include "config/config.h"
#include "log/log.h"
#include "store/store.h"

typedef struct stele_engine stele_engine;

/* Opens the log, registry, codec, read-model store and plugins, and
 * creates the topics the aggregates need. Nothing is processed yet. A
 * process that writes first passes the schema gate (stele_gate_run):
 * schemas/ against the registry; a deployed schema edited in place or an
 * incompatible new version refuses the open, before anything is
 * registered. */
int stele_engine_open(const stele_config *cfg, stele_engine **out,
                      stele_err *err);
/* The same for a process that only reads (stele state, events, query,
 * status): it registers no schema (they are looked up; the schema gate is
 * the writers'), and decides no command. */
int stele_engine_open_reader(const stele_config *cfg, stele_engine **out,
                             stele_err *err);
void stele_engine_close(stele_engine *e);

/*
 * Runs until *stop becomes non-zero: processes commands and runs the
 * projectors; on stop finishes the batch in hand, commits, and returns.
 */
int stele_engine_run(stele_engine *e, volatile sig_atomic_t *stop,
                     stele_err *err);

/*
 * Does whatever work this process can own right now until there is none
 * left: pending commands (when no other host owns them) and projector
 * catch-up. The CLI calls it so that it works with or without `stele run`.
 * *did receives the number of commands + events handled. A failing
 * projector does not stop the others: its first error is returned once
 * they are done.
 */
int stele_engine_drain(stele_engine *e, size_t *did, stele_err *err);

/* Runs the projectors only, until they have caught up with the log (a
 * projector-only catch-up: no command is processed, no state restored). */
int stele_engine_catch_up(stele_engine *e, size_t *did, stele_err *err);

/*
 * Where the host stands, from the log and the store (any process with the
 * config may ask):
 *   {"app", "log", "store",
 *    "commands": [{"aggregate", "topic", "lag",
 *                  "partitions": [{"topic", "partition", "end",
 *                                  "committed", "lag"}]}],
 *    "projectors": [{"name", "version", "serving", "lag",
 *                    "partitions": [{..., "checkpoint", "lag"}],
 *                    "building"?: {"version", "lag", "partitions"}}]}
 * "version" is this process's plugin's, "serving" the one queries read
 * (null before the first build); "building" is there while a new version
 * is built beside the serving one. Lags count records.
 */
int stele_engine_status(stele_engine *e, json_t **out, stele_err *err);

/*
 * Retention, which stele run applies every minute.
 *
 * Commands, on the logs that keep records themselves (SQLite, PostgreSQL):
 * deletes every aggregate's commands stamped before
 * now_ms - log.command_retention_ms that the engine group has processed
 * (below its committed offsets). Kafka's broker applies the commands
 * topics' retention.ms instead.
 *
 * Results (the idempotency window): deletes the results stamped before
 * now_ms - log.result_retention_ms; on Kafka the broker deletes them and
 * the host forgets them in its views. Once per window the in-memory sets
 * of answered ids move a generation on. A command resubmitted with the id
 * of a result gone is processed as a new command.
 *
 * At most 100,000 of each per call (a backlog goes over the following
 * calls); a retention of 0 keeps them forever. *out gets the counts.
 */
typedef struct stele_expired {
    int64_t commands, results;
} stele_expired;
int stele_engine_expire(stele_engine *e, int64_t now_ms, stele_expired *out,
                        stele_err *err);

/* Commands processed, commands per second etc. since open. */
typedef struct stele_engine_stats {
    uint64_t commands, accepted, rejected, duplicates, events_written;
    uint64_t events_projected, transactions, dead_letters;
    /* commands found on another partition than their aggregate's and
     * forwarded there (engine.misrouted) */
    uint64_t forwarded;
    /* start-up: states loaded from the state changelog, and events
     * replayed to rebuild states (after a state_version bump or replay) */
    uint64_t states_restored, events_replayed;
    /* projector steps that failed (a batch rolled back, a poll failed);
     * each is retried from the projector's checkpoints */
    uint64_t projector_failures;
    /* events a projector could not read: their aggregate parked */
    uint64_t events_parked;
} stele_engine_stats;
void stele_engine_stats_get(const stele_engine *e, stele_engine_stats *s);

/* ------------------------------------------------------------------ */
/* Commands                                                             */

typedef struct stele_submitted {
    char command_id[256];
    char aggregate_type[128];
    int32_t partition;       /* of the command (and of its result) */
    int32_t reply_partition; /* replies topic, when the log has one */
    int64_t reply_from;      /* its end before the command was sent */
} stele_submitted;

/*
 * Validates a command given as JSON and appends it to its aggregate's
 * commands topic:
 *   {"type": "bank.Deposit", "aggregate_id": "acc-1", "data": {...},
 *    "command_id": "...",        optional, a ULID when absent
 *    "expected_version": 3,      optional
 *    "correlation_id": "...",    optional, the command id when absent
 *    "user": "...",              optional
 *    "traceparent": "00-..."}    optional, W3C; into events and result
 * A malformed envelope or data that does not fit the command's schema is
 * an error (STELE_EINVAL) with the reason; nothing is written.
 */
int stele_engine_submit_json(stele_engine *e, const json_t *cmd,
                             stele_submitted *out, stele_err *err);

/*
 * A command as stele_engine_submit_json writes it, for a producer of the
 * caller's own (any Kafka client, any partitioner): the topic, the record
 * (key = aggregate id, the envelope headers, the value in the Confluent
 * wire format) and what waiting for its result takes. A host that finds
 * it on another partition than its aggregate's routes it (engine.misrouted).
 * The record points into out and into the engine's encoding buffer: valid
 * until the engine's next call.
 */
typedef struct stele_encoded_command {
    const char *topic;
    stele_log_record record;
    stele_submitted submitted;
    stele_log_header headers[5];
    char aggregate_id[256], expected[24], correlation_id[256], user[256];
    char traceparent[56];
} stele_encoded_command;
int stele_engine_encode_command(stele_engine *e, const json_t *cmd,
                                stele_encoded_command *out, stele_err *err);

/*
 * Waits up to timeout_ms for a submitted command's result (processing it
 * here when no other host owns the commands) and returns it as JSON:
 *   {"status": "accepted", "command_id", "aggregate_type", "aggregate_id",
 *    "version", "event_ids": [...]}
 *   {"status": "rejected", "command_id", "aggregate_type", "aggregate_id",
 *    "code", "message", "version"}
 */
int stele_engine_wait_result(stele_engine *e, const stele_submitted *s,
                             int timeout_ms, json_t **result, stele_err *err);

/* ------------------------------------------------------------------ */
/* Reading                                                              */

/* Runs a query plugin with JSON parameters. *out is {"items": [...]} for
 * a list query, the row for a single one (STELE_ENOTFOUND when none). */
int stele_engine_query(stele_engine *e, const char *name, const json_t *params,
                       json_t **out, stele_err *err);

/* The generic list query over a projector's table. */
int stele_engine_list(stele_engine *e, const char *table,
                      const stele_list_request *req, json_t **out,
                      stele_err *err);

/* Calls cb with each stored event as JSON (metadata + decoded data), in
 * log order per partition; aggregate_type and aggregate_id filter when
 * not NULL. limit 0: no limit. */
int stele_engine_events(stele_engine *e, const char *aggregate_type,
                        const char *aggregate_id, size_t limit,
                        void (*cb)(void *opaque, json_t *event), void *opaque,
                        stele_err *err);

/* An aggregate's current state as JSON {"aggregate_type", "aggregate_id",
 * "version", "state"}; STELE_ENOTFOUND when it has no events. */
int stele_engine_state(stele_engine *e, const char *aggregate_type,
                       const char *aggregate_id, json_t **out, stele_err *err);

/* Rebuilds the stored states of one aggregate type (NULL: all) from their
 * events. Refused while another host owns the commands. */
int stele_engine_replay(stele_engine *e, const char *aggregate_type,
                        size_t *events, size_t *states, stele_err *err);

/* Projects, for every projector, the events of the aggregates it parked
 * (an event of theirs could not be read) that now read, up to where the
 * projector stands, and unparks them; *left counts those still parked
 * (stele status lists them, with why). Refused while another host runs
 * the projectors. */
int stele_engine_repair_projections(stele_engine *e, size_t *repaired,
                                    size_t *left, stele_err *err);

/* The aggregates of one type (NULL: all) whose events cannot be read into
 * a state, as a JSON array of {"aggregate", "id", "partition", "version",
 * "reason"}: their commands are rejected with AGGREGATE_BROKEN until a
 * replay rebuilds them. */
int stele_engine_broken(stele_engine *e, const char *aggregate_type,
                        json_t **out, stele_err *err);

#endif
