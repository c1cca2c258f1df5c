/* internal.h — the engine's private structures, shared by its files. */
#ifndef STELE_ENGINE_INTERNAL_H
#define STELE_ENGINE_INTERNAL_H

#include <avro.h>
#include <signal.h>
#include <stdbool.h>

#include "codec/codec.h"
#include "common/logline.h"
#include "common/map.h"
#include "common/set64.h"
#include "engine.h"
#include "log/log.h"
#include "plugin/loader.h"
#include "state/state.h"
#include "store/store.h"

/* Header names on command and event records. */
#define H_COMMAND_ID "command_id"
#define H_EXPECTED_VERSION "expected_version"
#define H_CORRELATION_ID "correlation_id"
/* W3C Trace Context: a command's traceparent, carried into its events
 * and result so that one request is followed across services */
#define H_TRACEPARENT "traceparent"
/* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define TRACEPARENT_LEN 55
#define H_USER "user"
#define H_EVENT_ID "event_id"
#define H_EVENT_TYPE "event_type"
#define H_AGGREGATE_TYPE "aggregate_type"
#define H_AGGREGATE_ID "aggregate_id"
#define H_VERSION "version"
#define H_CAUSATION_ID "causation_id"
/* On a command a host forwarded to its aggregate's partition: where it
 * was ("<partition>@<offset>"). */
#define H_MISROUTED_FROM "misrouted_from"

#define MAX_EMITTED 256 /* events one command may produce */
#define MAX_ID_LEN 255  /* aggregate and command ids */

/* A record type an engine component reads or writes, with a pool of
 * values so a batch reuses them. */
typedef struct typed_values {
    const char *name;
    const stele_schema *schema;
    avro_value_t *values;
    size_t used, cap;
} typed_values;

typedef struct aggregate {
    stele_plugin *plugin;
    const stele_aggregate_def *def;
    char *t_commands, *t_events, *t_state, *t_results;
    int32_t partitions;
    const stele_schema *state_schema;
    avro_value_t state;     /* reused for every command */
    typed_values *commands; /* one per def->commands */
    typed_values *events;   /* one per def->events */
    stele_state_cache *cache;
    /* Per owned partition: hashes of the command ids answered there, so
     * only a hash hit costs a lookup in the results topic (a NULL set:
     * every command is looked up; always so on Kafka, whose lookups are in
     * memory: stele_log_lookups_in_memory). Two generations:
     * stele_engine_expire moves the ids to the older one every
     * log.result_retention_ms and drops them at the next move, so an id stays
     * at least that long and the sets hold about twice that window at most. */
    stele_set64 **answered, **answered_old;
    int64_t answered_rotated_ms;
    /* Per partition: owned, but its states and answered ids must be read
     * from the log (again) before a command of it is decided: restoring
     * failed, or a commit failed and may have happened all the same. */
    bool *unrestored;
} aggregate;

/* One event type a projector subscribes to. */
typedef struct subscription {
    typed_values tv;
} subscription;

typedef struct projector {
    stele_plugin *plugin;
    const stele_projector_def *def;
    char *group;
    char **topics;
    size_t n_topics;
    subscription *subs;   /* one per def->events */
    stele_map *sub_index; /* event type -> subscription* */
    stele_log_consumer *consumer;
    bool prepared;   /* tables checked for this run */
    bool needs_seek; /* a batch failed: back to the checkpoints first */
    /* The read model of this version: its checkpoints' key, and its
     * namespace where the store has them (PostgreSQL schema). */
    char ckpt_key[160];
    char ns[64];
    /* Building this version beside the serving one (zero-downtime
     * rebuild): switched over once caught up. */
    bool building;
    int64_t next_catchup_check_ns;
    stele_engine *engine; /* for the rebalance callbacks */
    /* Failed steps in a row, and when the host may try again (run mode:
     * a failing projector backs off alone, see projections_step). */
    int failures;
    int64_t retry_at_ns;
    int assign_rc; /* what the last assignment callback hit */
    stele_err assign_err;
    stele_codec_events *reads; /* the batch's events, upcast and resolved */
    /* per-batch buffers */
    stele_event *evs;
    stele_value *wrapped;
    size_t cap;
    stele_event_meta *metas; /* one per record */
    size_t cap_metas;
    /* Aggregates parked (an event of theirs could not be read): "<events
     * topic>\0<key>" -> non-NULL, loaded from the store on assignment;
     * and those the current batch parks, written with its checkpoints. */
    stele_map *parked;
    struct parked_new {
        const stele_log_record *rec;
        char reason[STELE_ERR_MSG_SIZE];
    } * parking;
    size_t n_parking, cap_parking;
    /* The id its project calls are guarded under (guard.h): the
     * checkpoints' key, or that and " (stele replay)" while repairing, so
     * the deaths of a repair are counted apart. And how many records are
     * still to be projected one at a time, after a death in a batch. */
    char guard_id[192];
    size_t alone_left;
} projector;

typedef struct query {
    stele_plugin *plugin;
    const stele_query_def *def;
    const stele_schema *params;
} query;

struct stele_engine {
    const stele_config *cfg;
    stele_log *log;
    stele_registry *reg;
    stele_codec *codec;
    stele_store *store;
    stele_plugin **plugins;
    size_t n_plugins;
    stele_host_api api;

    aggregate *aggs;
    size_t n_aggs;
    projector *projs;
    size_t n_projs;
    query *queries;
    size_t n_queries;
    stele_map *cmd_index;   /* command type -> aggregate* */
    stele_map *event_index; /* event type -> aggregate* (its emitter) */

    char *t_deadletter;
    char *t_replies; /* Kafka only; elsewhere the results topic serves */
    int32_t replies_partitions;
    char *cmd_group;
    /* stele_log_caps.local (the embedded log): one process at a time
     * owns a group, so the CLI may do the host's work itself when no host
     * runs. On a shared log (Kafka, PostgreSQL) joining a group would take
     * partitions from running hosts. */
    bool local;
    /* opened by stele_engine_open_reader: registers no schema, decides no
     * command */
    bool reader;
    stele_log_consumer *cmd_consumer;
    bool cmd_failed;           /* a fatal log error: stop processing commands */
    size_t cmd_unrestored;     /* partitions marked in aggregate.unrestored */
    int64_t restore_report_ns; /* when a failing restore is logged again */
    /* A batch failed and the consumer could not be rewound yet (the log
     * was unreachable): rewind before reading on, or commands would be
     * skipped. */
    bool cmd_needs_rewind;
    /* Times partitions were revoked from the command consumer: a batch
     * gathered over several polls is void when it changes meanwhile. */
    uint64_t cmd_revokes;

    /* engine.isolation: process: the plugin worker (worker.h) that runs
     * the aggregates' decide and evolve; NULL: the host runs them. */
    struct engine_worker *worker;
    /* stele_engine_run's stop flag, which a call in the worker heeds
     * (engine.shutdown_grace_ms); NULL outside it. */
    volatile sig_atomic_t *stop;

    stele_buf buf;             /* encoding scratch */
    stele_codec_events *reads; /* replay and stele events: stored events
                                  read into an aggregate's versions */
    stele_engine_stats stats;
};

/* The decide() output handle. */
struct stele_decision {
    stele_engine *e;
    aggregate *agg;
    struct {
        typed_values *tv;
        avro_value_t *value;
    } ev[MAX_EMITTED];
    size_t n;
    bool rejected;
    char code[64];
    char message[512];
    int fault; /* emit on an undeclared type, too many events */
    char fault_msg[800];
};

/* The query's output handle. */
struct stele_query_ctx {
    stele_engine *e;
    json_t *rows;
};

/* engine.c */
int engine_values_take(typed_values *tv, avro_value_t **out, stele_err *err);
void engine_values_release_all(typed_values *tv);
void engine_values_free(typed_values *tv);
const char *engine_header_get(const stele_log_record *r, const char *name,
                              size_t *len);
/* Copies a header into buf as a NUL-terminated string; "" when absent. */
const char *engine_header_str(const stele_log_record *r, const char *name,
                              char *buf, size_t size);
aggregate *engine_aggregate_by_type(stele_engine *e, const char *type);
/* The aggregate whose commands topic this is; NULL when none. */
aggregate *engine_aggregate_by_commands_topic(stele_engine *e,
                                              const char *topic);
/* Steps commands (when commands) and projectors until there is no work
 * left; did counts the records handled. A failing projector does not stop
 * the others from catching up: its first error is returned at the end. */
int engine_until_idle(stele_engine *e, bool commands, size_t *did,
                      stele_err *err);
/* Whether s is a W3C traceparent of version 00 with a trace id and a
 * parent id that are not all zeros (an invalid one is ignored, as the
 * recommendation says, never passed on). */
bool engine_traceparent_valid(const char *s, size_t len);

void engine_logf(stele_engine *e, stele_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* engine_logf about an aggregate or a command: in JSON lines
 * (logging.format: json) the fields are keys of their own. */
void engine_logf_about(stele_engine *e, stele_log_level level,
                       const stele_log_fields *about, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* hostapi.c */
void engine_api_init(stele_engine *e);

/* commands.c */
int commands_process(stele_engine *e, int timeout_ms, size_t *did,
                     stele_err *err);

/* commands_assign.c: the command consumer's rebalance callbacks. */
void commands_on_assigned(void *opaque, stele_log_consumer *c,
                          const stele_topic_partition *tps, size_t n);
void commands_on_revoked(void *opaque, stele_log_consumer *c,
                         const stele_topic_partition *tps, size_t n, bool lost);
/* Marks an owned partition (of the aggregate whose commands topic this
 * is) to be restored from the log before its next command. */
void commands_mark_unrestored(stele_engine *e, const char *commands_topic,
                              int32_t partition);
/* Restores every marked partition; the first failure stops it. */
int commands_restore_pending(stele_engine *e, stele_err *err);

/* projections.c */
int projections_open(stele_engine *e, stele_err *err);
/* One step of every projector: a batch each, at most. A projector that
 * fails does not hold up the others. With isolate (the host's run loop)
 * its failure is logged and it backs off alone (projections_retry_ms), and
 * only a fatal error is returned; without (drain, catch-up) the first
 * failure is returned after the other projectors had their step. */
int projections_step(stele_engine *e, int timeout_ms, bool isolate, size_t *did,
                     stele_err *err);
/* How long a projector waits after its n-th failure in a row (n >= 1):
 * 100 ms, doubling, at most PROJECTOR_RETRY_MAX_MS. */
#define PROJECTOR_RETRY_MAX_MS 10000
int64_t projections_retry_ms(int failures);
void projections_close(stele_engine *e);

/* The namespace of a projector's read model at a version. */
void projections_namespace(const char *name, int version, char *out,
                           size_t size);
/* Makes unqualified table names resolve in every projector's serving read
 * model (before a query). */
int projections_use_serving(stele_engine *e, stele_err *err);

/* verify.c: whether the registry still gives every id this host writes
 * with to its schema; STELE_EFATAL when not (stop writing), the
 * registry's transport error when it cannot be asked (go on: the ids
 * are cached). */
int engine_verify_ids(stele_engine *e, stele_err *err);

/* reading.c: why an event type a reader met is not one it declares, for
 * its message (into buf). */
const char *engine_undeclared_hint(stele_engine *e, const char *type, char *buf,
                                   size_t size);

/* status.c: appends {"aggregate", "id", "partition", "version",
 * "reason"} to out for every aggregate of a (NULL: every type) whose latest
 * stored state marks it broken. */
int engine_broken_aggregates(stele_engine *e, const aggregate *a, json_t *out,
                             stele_err *err);

/* projections.c: projects the events of every parked aggregate that now
 * read (after an upcaster or a plugin fix is deployed) and unparks them;
 * *left counts those that still cannot be read. Needs this process to own
 * the projectors' groups. */
int projections_repair(stele_engine *e, size_t *repaired, size_t *left,
                       stele_err *err);

/* Whether a failure to read or evolve a stored event is the record's
 * (corrupt, no longer decodes, refused by the plugin that reads it), so
 * that it is quarantined, rather than the log's, the registry's or
 * memory's, which fail the step to be tried again. */
bool engine_record_fault(int rc);

/* replay.c */
int engine_replay_partition(stele_engine *e, aggregate *a, int32_t partition,
                            size_t *events, size_t *states, stele_err *err);
/* Fills meta from an event record's headers and position; its strings
 * point into strbuf (about the size of the record's headers). */
void engine_event_meta_fill(const stele_log_record *r, stele_event_meta *meta,
                            char *strbuf, size_t strbuf_size);
/* Reads a stored event into the events a reader declares (want), through
 * upcasters and resolution, appending them to ev; errors name the record's
 * topic[partition]@offset. */
int engine_read_stored_event(stele_engine *e, const stele_log_record *r,
                             stele_codec_want_fn want, void *opaque,
                             stele_codec_events *ev, stele_err *err);
/* The want function of an aggregate (opaque): the schemas of its events. */
const stele_schema *engine_aggregate_wants(void *opaque, const char *type);
/* e->reads, created on first use and cleared. */
int engine_reads(stele_engine *e, stele_codec_events **out, stele_err *err);

#endif
