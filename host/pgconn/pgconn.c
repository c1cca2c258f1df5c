/* pgconn.c — a libpq connection string checked, its password kept aside
 * (pgconn.h). */
#include "pgconn/pgconn.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"

int stele_pg_conninfo_check(const char *conninfo, const char *who,
                            char **secret, stele_err *err)
{
    *secret = NULL;
    if (!conninfo || !*conninfo)
        return 0;
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        char msg[320];
        stele_text_redact_quoted(perr ? perr : "out of memory", msg,
                                 sizeof msg);
        PQfreemem(perr);
        return stele_err_set(err, STELE_EINVAL,
                             "%s: bad PostgreSQL connection string: %s", who,
                             msg);
    }
    int rc = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (!strcmp(o->keyword, "password") && o->val && *o->val &&
            !(*secret = strdup(o->val)))
            rc = stele_err_set(err, STELE_ENOMEM, "%s: out of memory", who);
    PQconninfoFree(opts);
    return rc;
}
