/* The PostgreSQL server the integration tests run against: the cluster of
 * scripts/pg-start.sh (STELE_PG_PORT, 5433), started when it does not
 * answer; or, with STELE_PG_CONNINFO set, a server someone else runs (then
 * the tests never stop it). Each test gets a database of its own. */
#ifndef STELE_TEST_STORE_PG_SERVER_H
#define STELE_TEST_STORE_PG_SERVER_H

#include <libpq-fe.h>
#include <stdbool.h>

/* The connection string of the maintenance database. */
const char *pgt_base(void);
/* true when the tests own the server (scripts/pg-*.sh may stop it). */
bool pgt_managed(void);
/* Makes sure the server answers, starting it through the script. */
void pgt_ensure_server(void);
/* Runs scripts/<script> (its output goes to stderr); returns its status. */
int pgt_script(const char *script);
/* A fresh database; *conninfo (malloc'ed) connects to it. */
void pgt_create_db(char **name, char **conninfo);
void pgt_drop_db(const char *name);
/* conninfo with dbname replaced; malloc'ed. */
char *pgt_conninfo_for(const char *dbname);
/* Runs one SQL command on conninfo's database and returns the first
 * column of the first row as a number (-1 on no rows or an error). */
long long pgt_scalar(const char *conninfo, const char *sql);

#endif
