/* pgconn.h — what the PostgreSQL log and the PostgreSQL read-model store
 * do alike with a libpq connection string. */
#ifndef STELE_PGCONN_H
#define STELE_PGCONN_H

#include "common/err.h"

/*
 * Checks conninfo ("" or NULL: the PG* environment variables alone) and
 * copies its password into *secret (malloc'ed; NULL when it has none), so
 * that messages can be scrubbed of it (stele_text_scrub). A string libpq
 * cannot parse is STELE_EINVAL, "<who>: bad PostgreSQL connection string:
 * <libpq's reason, quoted values redacted>".
 */
int stele_pg_conninfo_check(const char *conninfo, const char *who,
                            char **secret, stele_err *err);

#endif
