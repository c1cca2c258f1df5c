/*
 * guard.h — containment of plugin calls that crash or hang.
 *
 * A plugin's decide, evolve or project runs in the host's process: a
 * SIGSEGV, abort(), exit(), stack overflow or endless loop in it takes the
 * host down, and the command it was deciding stays first in line for the
 * next start. The guard makes such a command cost itself, not the host:
 *
 *   - Before each call the host writes which command it is in (topic,
 *     partition, offset, command id) into a slot of <data_dir>/inflight,
 *     a small file mapped MAP_SHARED, and marks the slot idle after it: a
 *     few stores, no system call, no fsync (a dead process's pages stay in
 *     the page cache; a machine crash loses at most the last mark, which
 *     costs that command one more attempt).
 *   - Fatal signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, on an
 *     alternate stack so a stack overflow is caught too) and exit() during
 *     a call write why into the slot before the process dies.
 *   - A watchdog thread ends the process (exit status 70) when a call runs
 *     past engine.plugin_timeout_ms, and (status 143) when a stop was asked
 *     (SIGTERM, SIGINT) and the call in hand has not returned within
 *     engine.shutdown_grace_ms.
 *   - At the next start (stele_guard_open) a slot left inside a call
 *     counts one death against its command in the file's crash table; a
 *     command that reached engine.plugin_crash_limit deaths is rejected
 *     with PLUGIN_CRASHED and dead-lettered instead of decided again.
 *   - A death in a projector's project counts against the projector (its
 *     name as the command id) and the event named: the batch's first
 *     event, or the one event of a batch of one. The projector then
 *     projects one by one until the event that kills it is found, and
 *     parks that event's aggregate when its deaths alone reach the limit
 *     (projections.c).
 *
 * docs/design.md ("Containment of plugin crashes and hangs") says more.
 */
#ifndef STELE_ENGINE_GUARD_H
#define STELE_ENGINE_GUARD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <stele/stele.h>

#include "config/config.h"

/* What a slot says the host is doing. */
typedef enum guard_call_kind {
    GUARD_DECIDE = 1,
    GUARD_EVOLVE = 2,      /* the events of a command being decided */
    GUARD_PROJECT = 3,     /* a projector's batch of several records */
    GUARD_REBUILD = 4,     /* evolve while states are rebuilt from events */
    GUARD_PROJECT_ONE = 5, /* a projector's batch of one record */
} guard_call_kind;

/*
 * Arms the guard for this process: opens (creating it, or starting it
 * afresh with a warning when it is torn or not one) <cfg->data_dir>/inflight,
 * counts the deaths the slots of dead processes recorded (a warning each),
 * installs the fatal-signal handlers and the exit hook, and starts the
 * watchdog. stop, when not NULL, is the flag the process's SIGTERM/SIGINT
 * handler sets (stele run): the watchdog gives a call in hand
 * cfg->shutdown_grace_ms after it. Call before the first command is
 * decided. STELE_EIO when the file cannot be opened or mapped (the host may
 * run unguarded). Idempotent: a second call returns 0.
 */
int stele_guard_open(const stele_config *cfg, volatile sig_atomic_t *stop,
                     stele_err *err);

/* Disarms the guard: the previous signal handlers back, the watchdog
 * stopped, the slot released. */
void stele_guard_close(void);

/* --- for the engine's files ---------------------------------------- */
/* One slot per process: plugin calls are made from one thread (the one
 * that called stele_guard_open, whose alternate signal stack it is). */

/* Names the command (or, for a projector, its batch's first event) the
 * following calls are for. Strings are copied (cut to the slot's size). */
void guard_begin(const char *topic, int32_t partition, int64_t offset,
                 const char *command_id);
/* A call to the plugin starts / has returned. Cheap: a clock read and a
 * few stores. */
void guard_call(guard_call_kind kind);
void guard_return(void);

/* How many times the host died during calls for this command (0 when
 * none, or when the guard is not armed); why gets the last death's reason
 * ("SIGSEGV", "timed out after 300 ms"...) and kind the call it died in. */
unsigned guard_crashes(const char *topic, int32_t partition, int64_t offset,
                       const char *command_id, guard_call_kind *kind, char *why,
                       size_t size);
/* Forgets the deaths counted for this command (stele replay gives a
 * parked event a fresh chance once it has reported it). */
void guard_forget(const char *topic, int32_t partition, int64_t offset,
                  const char *command_id);
/* engine.plugin_crash_limit of the armed guard; 0 when not armed. */
unsigned guard_crash_limit(void);

/* For engine.isolation: process (worker.h): counts a death of the plugin
 * worker during a kind call for the command in the crash table, as the
 * next start counts a death of the host, and logs it. The worker died of
 * itself when killed_after_ms is 0 (wstatus: its waitpid status); else
 * the host killed it after a call of that many ms: past
 * engine.plugin_timeout_ms, or, when stopping, past
 * engine.shutdown_grace_ms. Returns the command's deaths so far; 0 when
 * the guard is not armed (and for GUARD_REBUILD, which is only logged). */
unsigned guard_count_death(const char *topic, int32_t partition, int64_t offset,
                           const char *command_id, guard_call_kind kind,
                           int wstatus, int64_t killed_after_ms, bool stopping);

#endif
