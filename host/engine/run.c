/*
 * The host's run loop (`stele run`): commands and projections until told
 * to stop, backing off when there is nothing to do or the log fails, and
 * the retention of processed commands and results once a minute.
 */
#include <time.h>

#include "common/err.h"
#include "common/util.h"
#include "internal.h"

/* How often stele run applies the retention of commands and results. */
#define EXPIRE_EVERY_MS 60000
/* A failure that goes on is logged again this often. */
#define RUN_REPORT_EVERY_MS 10000

static void expire(stele_engine *e)
{
    stele_expired n;
    stele_err err = {0};
    if (stele_engine_expire(e, stele_now_ms(), &n, &err) != 0)
        engine_logf(e, STELE_LOG_WARN, "%s (retrying in a minute)", err.msg);
    if (n.commands > 0)
        engine_logf(e, STELE_LOG_INFO,
                    "deleted %lld processed commands older than %lld s",
                    (long long)n.commands,
                    (long long)(e->cfg->command_retention_ms / 1000));
    if (n.results > 0)
        engine_logf(e, STELE_LOG_INFO,
                    "%s %lld results older than %lld s (their command ids "
                    "are past the idempotency window)",
                    stele_log_deletes_records(e->log) ? "deleted" : "forgot",
                    (long long)n.results,
                    (long long)(e->cfg->result_retention_ms / 1000));
}

int stele_engine_run(stele_engine *e, volatile sig_atomic_t *stop,
                     stele_err *err)
{
    engine_logf(e, STELE_LOG_INFO,
                "running app %s: %zu aggregates, %zu projectors, %zu queries",
                e->cfg->app, e->n_aggs, e->n_projs, e->n_queries);
    e->stop = stop;
    int idle_ms = 1, failures = 0;
    int64_t next_expire_ns = 0, next_report_ns = 0, next_verify_ns = 0;
    while (!*stop) {
        if (stele_mono_ns() >= next_expire_ns) {
            expire(e);
            next_expire_ns = stele_mono_ns() + EXPIRE_EVERY_MS * 1000000LL;
        }
        if (e->cfg->registry_verify_ms > 0 &&
            stele_mono_ns() >= next_verify_ns) {
            stele_err verr = {0};
            if (engine_verify_ids(e, &verr) == STELE_EFATAL) {
                *err = verr;
                return STELE_EFATAL;
            }
            next_verify_ns = stele_mono_ns() +
                             (int64_t)e->cfg->registry_verify_ms * 1000000LL;
        }
        size_t n1 = 0, n2 = 0;
        stele_err local = {0}, perr = {0};
        int rc = commands_process(e, 0, &n1, &local);
        /* Projectors go on while commands fail (they back off alone). */
        int prc = projections_step(e, 0, true, &n2, &perr);
        if (rc == STELE_EFATAL || prc == STELE_EFATAL) {
            *err = rc == STELE_EFATAL ? local : perr;
            return STELE_EFATAL;
        }
        if (rc != 0) {
            /* A log that is away fails every attempt: say so the first
             * time and then every RUN_REPORT_EVERY_MS, not every one. */
            int64_t now = stele_mono_ns();
            if (++failures == 1 || now >= next_report_ns) {
                engine_logf(e, STELE_LOG_ERROR, "%s (attempt %d; retrying)",
                            local.msg, failures);
                next_report_ns = now + RUN_REPORT_EVERY_MS * 1000000LL;
            }
        } else if (failures > 0) {
            engine_logf(e, STELE_LOG_INFO,
                        "processing commands again after %d failed "
                        "attempt%s",
                        failures, failures == 1 ? "" : "s");
            failures = 0;
        }
        if (n1 + n2 > 0 && rc == 0) {
            idle_ms = 1;
            continue;
        }
        /* Nothing to do: back off a little so an idle host costs nothing,
         * but reacts within tens of ms. After a failure: 50 ms, doubling
         * up to 1 s while it goes on. */
        if (rc != 0) {
            int shift = failures < 6 ? failures - 1 : 5;
            idle_ms = 50 << shift;
            if (idle_ms > 1000)
                idle_ms = 1000;
        }
        struct timespec ts = {idle_ms / 1000,
                              (long)(idle_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (rc == 0)
            idle_ms = idle_ms < 50 ? idle_ms * 2 : 50;
    }
    e->stop = NULL;
    engine_logf(e, STELE_LOG_INFO, "stopped: %llu commands, %llu events",
                (unsigned long long)e->stats.commands,
                (unsigned long long)e->stats.events_written);
    return 0;
}
