/*
 * verify.c — a host that writes checks, now and then, that the registry
 * still gives the ids it writes with to the same schemas. A registry that
 * lost its data (an in-memory one restarted empty) hands the ids out again
 * to whatever is registered next; a host that went on writing with its
 * cached ids would write events no one can decode.
 */
#include "common/err.h"
#include "internal.h"

static int verify_one(stele_engine *e, const stele_schema *s, stele_err *err)
{
    if (!s || s->id <= 0)
        return 0;
    int rc = stele_registry_verify(e->reg, s->id, s->text, err);
    return rc ? stele_err_prefix(err, "%s v%d", s->name, s->version) : 0;
}

int engine_verify_ids(stele_engine *e, stele_err *err)
{
    int rc = 0;
    for (size_t i = 0; i < e->n_aggs && rc == 0; i++) {
        const aggregate *a = &e->aggs[i];
        rc = verify_one(e, a->state_schema, err);
        for (size_t k = 0; k < a->def->n_commands && rc == 0; k++)
            rc = verify_one(e, a->commands[k].schema, err);
        for (size_t k = 0; k < a->def->n_events && rc == 0; k++)
            rc = verify_one(e, a->events[k].schema, err);
    }
    return rc;
}
