/*
 * A command the host died deciding (guard.h): after
 * engine.plugin_crash_limit deaths it is answered PLUGIN_CRASHED, with a
 * copy in the dead-letter topic for whoever fixes the plugin, instead of
 * being decided again — and killing the host again — on every start.
 */
#include <stdio.h>

#include "commands_internal.h"
#include "guard.h"

int commands_crashed_reject(batch *b, const envelope *env, int64_t version,
                            unsigned deaths, guard_call_kind kind,
                            const char *why, stele_err *err)
{
    char msg[300];
    snprintf(msg, sizeof msg, "the %s died %u times %s it: %s",
             b->e->worker ? "plugin worker" : "host", deaths,
             kind == GUARD_EVOLVE ? "applying the events decided for"
                                  : "deciding",
             why);
    char reason[sizeof msg + 32];
    snprintf(reason, sizeof reason, "PLUGIN_CRASHED: %s", msg);
    int rc = commands_reject(b, env, "PLUGIN_CRASHED", msg, version, err);
    return rc ? rc : commands_dead_letter(b, env->rec, reason, err);
}

bool commands_crashed_out(batch *b, const envelope *env, int64_t version,
                          int *rc, stele_err *err)
{
    unsigned limit = guard_crash_limit();
    if (limit == 0)
        return false;
    const stele_log_record *rec = env->rec;
    guard_call_kind kind = GUARD_DECIDE;
    char why[128];
    unsigned deaths = guard_crashes(rec->topic, rec->partition, rec->offset,
                                    env->command_id, &kind, why, sizeof why);
    if (deaths < limit)
        return false;
    *rc = commands_crashed_reject(b, env, version, deaths, kind, why, err);
    return true;
}
