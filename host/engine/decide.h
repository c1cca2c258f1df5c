/*
 * decide.h — the calls into an aggregate's plugin (decide.c), shared by the
 * host's own path (commands.c, replay.c) and the plugin worker's
 * (worker.c), so that both isolation modes decide and rebuild alike.
 */
#ifndef STELE_ENGINE_DECIDE_H
#define STELE_ENGINE_DECIDE_H

#include "common/util.h"
#include "internal.h"

/* What a call is for. Strings are borrowed for the call. */
typedef struct engine_call {
    const char *command_type; /* decide only */
    const char *command_id;
    const char *aggregate_id;
    const char *correlation_id;
    const char *user;
    int64_t now_ms;  /* the command's and its events' timestamp */
    int64_t version; /* the aggregate's version before the command */
    /* Where the command (a rebuild: the event record) is on the log. */
    const char *topic;
    int32_t partition;
    int64_t offset;
    bool guarded; /* the host's own call: marked in the guard's slot */
    /* The worker's: each call's guard_call_kind is stored here, where the
     * host reads which call a dead worker was in. */
    volatile uint32_t *phase;
} engine_call;

/* What decide and evolve made of a command, besides the decision. */
typedef struct engine_decided {
    char ids[MAX_EMITTED][STELE_ULID_LEN + 1];
    stele_event_meta metas[MAX_EMITTED]; /* their event_id: ids */
    /* Not empty: the plugin failed (decide's status or fault, evolve's
     * status) and the command is rejected with PLUGIN_ERROR saying so. */
    char error[900];
} engine_decided;

/*
 * Decides c (its value cmd_value, a value of the command's declared
 * schema) against a->state, which the caller has set, into d, then
 * applies each emitted event to a->state through evolve, giving the
 * events their ids and metadata in out. A plugin's failure is not an
 * error here: it is in out->error. Returns 0.
 */
int engine_decide(stele_engine *e, aggregate *a, const engine_call *c,
                  avro_value_t *cmd_value, stele_decision *d,
                  engine_decided *out);

/* The metadata of the i-th event a command c emits, event id id. */
stele_event_meta engine_event_meta(const aggregate *a, const engine_call *c,
                                   size_t i, const char *id);

/*
 * Sets a->state to state (wire format; NULL: a new aggregate's defaults),
 * applies evs through evolve and encodes the result into e->buf.
 * STELE_EPLUGIN names c's record and the event when evolve fails; decode
 * and encode errors as the codec says.
 */
int engine_evolve_stored(stele_engine *e, aggregate *a, const void *state,
                         size_t state_len, const stele_event *evs, size_t n,
                         const engine_call *c, stele_err *err);

#endif
