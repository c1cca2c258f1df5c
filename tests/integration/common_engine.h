/*
 * common_engine.h — what the engine integration tests share, whatever the
 * log under them: `stele run` processes started as a user starts them, the
 * bank example's commands sent through the engine API, a load with a fault
 * in the middle, and the exactly-once audit of everything written.
 */
#ifndef STELE_TESTS_COMMON_ENGINE_H
#define STELE_TESTS_COMMON_ENGINE_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config/config.h"
#include "engine/engine.h"
#include "common/map.h"
#include "log/log.h"

#define CE_MAX_HOSTS 3
#define CE_ACCOUNTS 60
#define CE_DEPOSITS 1200

typedef struct ce_fixture {
    char dir[128];
    char config[200];
    char app[32];
    stele_config *cfg;
    stele_engine *e; /* the test's own handle: submits and reads */
    pid_t hosts[CE_MAX_HOSTS];
    /* opens a handle on the same log, for checking results */
    int (*open_log)(struct ce_fixture *f, stele_log **out, stele_err *err);
    int partitions;
} ce_fixture;

/* Makes the temp dir and a unique app name; the caller writes f->config
 * (config_text is printf'd with app and dir), then ce_open. */
void ce_init(ce_fixture *f, const char *dir_prefix);
void ce_write_config(ce_fixture *f, const char *text);
void ce_open(ce_fixture *f);
/* Kills every host, closes, removes the temp dir. */
void ce_cleanup(ce_fixture *f);

/* Starts host i (`stele run`), its output in <dir>/host<i>.log. */
void ce_start_host(ce_fixture *f, int i);
/* Prints the last `lines` lines of every host's output (0: all of it),
 * for a failing test. */
void ce_dump_hosts(const ce_fixture *f, int lines);
/* fail_msg, after showing what the hosts said. */
#define CE_FAIL(f, ...)                                                        \
    do {                                                                       \
        ce_dump_hosts(f, 30);                                                  \
        fail_msg(__VA_ARGS__);                                                 \
    } while (0)
void ce_stop_host(ce_fixture *f, int i, int sig);

void ce_submit(ce_fixture *f, const char *type, const char *id,
               const char *data, const char *command_id, stele_submitted *s);
json_t *ce_wait(ce_fixture *f, const stele_submitted *s);
const char *ce_str(json_t *o, const char *key);

/* Every event of the app, read back: per aggregate versions must be 1..n
 * without a gap or a repeat, and each command's events must appear once;
 * `broken` and `why` say the first violation. */
typedef struct ce_audit_result {
    stele_map *versions; /* aggregate id -> last version */
    stele_map *causes;   /* causation id -> count */
    size_t events;
    size_t deposits;
    bool broken;
    char why[256];
} ce_audit_result;

void ce_audit(ce_fixture *f, ce_audit_result *a);
/* ce_audit, failing the test on a violation or when the log holds other
 * than `events` events of `aggregates` aggregates (0: any number). */
void ce_expect_events(ce_fixture *f, size_t events, size_t aggregates);
void ce_audit_free(ce_audit_result *a);

/* Opens CE_ACCOUNTS accounts and sends CE_DEPOSITS deposits of 1 with
 * command ids the audit checks. Halfway kills host `victim` (>= 0) with
 * SIGKILL and runs the shell command `midway` (when not NULL). */
void ce_load(ce_fixture *f, int victim, const char *midway);

/* Waits (bounded) until every command of ce_load has its result, all
 * accepted, then checks the events: each aggregate's versions 1..n with no
 * gap or repeat, each command's events exactly once, every deposit there. */
void ce_expect_exactly_once(ce_fixture *f);

#endif
