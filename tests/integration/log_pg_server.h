/* The PostgreSQL server test_log_pg runs against: the cluster of
 * scripts/pg-start.sh (STELE_PG_PORT, 5433), started when it does not
 * answer; or, with STELE_PG_CONNINFO set, a server someone else runs (the
 * tests then never stop it and skip the restart case). */
#ifndef STELE_TEST_LOG_PG_SERVER_H
#define STELE_TEST_LOG_PG_SERVER_H

#include <stdbool.h>

/* The connection string of the maintenance database. */
const char *lpgt_base(void);
/* true when the tests own the server (scripts/pg-*.sh may stop it). */
bool lpgt_managed(void);
/* Makes sure the server answers, starting it through the script; false
 * (with the reason on stderr) when it cannot. */
bool lpgt_ensure_server(void);
/* Runs scripts/<script> (its output goes to stderr); returns its status. */
int lpgt_script(const char *script);
/* A fresh database (name and a conninfo for it, malloc'ed); false on
 * failure, the reason on stderr. */
bool lpgt_create_db(char **name, char **conninfo);
void lpgt_drop_db(const char *name);
/* Runs sql on conninfo's database; the first column of the first row as
 * a number, -1 on no rows or an error. */
long long lpgt_scalar(const char *conninfo, const char *sql);

#endif
