/*
 * worker.h — the plugin worker of engine.isolation: process.
 *
 * The host forks a worker once its plugins are loaded and initialised: the
 * child inherits the plugins, their ctx and the codec's schemas, and runs
 * the aggregates' decide and evolve (decide.h) for the host, one request
 * and one answer over a socketpair per command (or per stored event record
 * in a rebuild). Values cross as Avro binary in the declared schemas, so
 * the host turns an answer into the values its own call would have made.
 *
 * When the worker dies (a signal, exit(), or no answer within
 * engine.plugin_timeout_ms: then the host kills it), the death counts
 * against the command (guard_count_death, and in memory when the guard is
 * not armed), a new worker is forked and the command is tried again, up
 * to engine.plugin_crash_limit deaths. The host never dies of a plugin.
 * docs/design.md ("Process isolation") says more.
 */
#ifndef STELE_ENGINE_WORKER_H
#define STELE_ENGINE_WORKER_H

#include "decide.h"
#include "guard.h"

typedef struct engine_worker engine_worker;

/* A command the worker died on engine.plugin_crash_limit times. */
typedef struct worker_crash {
    unsigned deaths; /* 0: it did not */
    guard_call_kind kind;
    char why[128];
} worker_crash;

/* A worker for e, forked at its first call. */
int worker_new(stele_engine *e, engine_worker **out, stele_err *err);
/* Ends the worker (closing its socket; SIGKILL if it does not go). */
void worker_free(engine_worker *w);

/*
 * engine_decide in the worker, for c's command cmd (a value of tv's
 * declared schema) against cur (NULL: a new aggregate). Fills d (its
 * events decoded into a's typed values), out and, when events were
 * emitted, *state with the new state's wire bytes (valid until the next
 * call). When the worker died on the command plugin_crash_limit times,
 * crash->deaths says so and nothing else is filled. Errors: STELE_EINVAL
 * when cur does not decode; STELE_ERETRY when no worker can be started
 * (it backs off) or a stop (SIGTERM) ended the call; others as the codec
 * says.
 */
int worker_decide(engine_worker *w, aggregate *a, const engine_call *c,
                  typed_values *tv, avro_value_t *cmd,
                  const stele_log_record *rec, const stele_state_entry *cur,
                  stele_decision *d, engine_decided *out,
                  const stele_buf **state, worker_crash *crash, stele_err *err);

/* engine_evolve_stored in the worker; the state in e->buf. A record the
 * worker died on plugin_crash_limit times (3 when it is 0) is
 * STELE_EPLUGIN: its aggregate is broken, as when evolve fails. */
int worker_evolve_stored(engine_worker *w, aggregate *a, const void *state,
                         size_t state_len, const stele_event *evs, size_t n,
                         const engine_call *c, stele_err *err);

#endif
