/*
 * commands_internal.h — private to the command processor (commands*.c): the
 * batch a transaction carries, the command being handled, and the writing
 * of what a command gets back (commands_results.c).
 */
#ifndef STELE_ENGINE_COMMANDS_INTERNAL_H
#define STELE_ENGINE_COMMANDS_INTERNAL_H

#include "common/util.h"
#include "guard.h"
#include "internal.h"

typedef struct next_offset {
    const char *topic;
    int32_t partition;
    int64_t next;
} next_offset;

typedef struct batch {
    stele_engine *e;
    stele_log_txn *txn;
    stele_map *dirty; /* "<agg index>/<aggregate id>" -> stele_state_entry* */
    stele_map *seen;  /* "<agg index>/<command id>" -> partition + 1 */
    next_offset *offsets;
    size_t n_offsets;
    stele_engine_stats stats; /* counted here, added on commit */
} batch;

/* A command being handled: its envelope, all strings NUL-terminated. */
typedef struct envelope {
    const stele_log_record *rec;
    aggregate *agg;
    size_t agg_index;
    char command_id[MAX_ID_LEN + 1];
    char aggregate_id[MAX_ID_LEN + 1];
    char correlation_id[MAX_ID_LEN + 1];
    char user[MAX_ID_LEN + 1];
    char traceparent[TRACEPARENT_LEN + 1]; /* "" when none (or invalid) */
    bool has_expected;
    int64_t expected_version;
} envelope;

/* commands_results.c. Each writes into b's transaction and counts in
 * b->stats. */

/* A "rejected" result for env: code and message for the client, version
 * the aggregate's current one. */
int commands_reject(batch *b, const envelope *env, const char *code,
                    const char *message, int64_t version, stele_err *err);
/* An "accepted" result for env: the aggregate's new version and the ids of
 * the n events written. */
int commands_write_accepted(batch *b, const envelope *env, int64_t version,
                            char ids[][STELE_ULID_LEN + 1], size_t n,
                            stele_err *err);
/* A copy of rec in the dead-letter topic, for a command no result can be
 * addressed to; reason goes in its headers and the host's log. */
int commands_dead_letter(batch *b, const stele_log_record *rec,
                         const char *reason, stele_err *err);

/* commands_guard.c: whether the host died deciding env's command
 * engine.plugin_crash_limit times; if so it is rejected PLUGIN_CRASHED and
 * dead-lettered into b's transaction, and *rc gets the status. */
bool commands_crashed_out(batch *b, const envelope *env, int64_t version,
                          int *rc, stele_err *err);
/* Rejects env's command PLUGIN_CRASHED after deaths deaths (the last in a
 * kind call, of why) and dead-letters it, into b's transaction. */
int commands_crashed_reject(batch *b, const envelope *env, int64_t version,
                            unsigned deaths, guard_call_kind kind,
                            const char *why, stele_err *err);

#endif
