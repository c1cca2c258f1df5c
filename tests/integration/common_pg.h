/*
 * common_pg.h — the PostgreSQL server the integration tests run against:
 * the cluster of scripts/pg-start.sh (STELE_PG_PORT, 5433), started when
 * it does not answer; or, with STELE_PG_CONNINFO set, a server someone
 * else runs (the tests then never stop it and skip the cases that would).
 * Every test program works in databases of its own.
 *
 * Nothing here asserts: a failure returns false (or -1, NULL) with the
 * reason on stderr, so a program's main can use these as well as a test.
 */
#ifndef STELE_TESTS_COMMON_PG_H
#define STELE_TESTS_COMMON_PG_H

#include <stdbool.h>

/* The connection string of the maintenance database. */
const char *pgt_base(void);
/* true when the tests own the server (scripts/pg-*.sh may stop it). */
bool pgt_managed(void);
/* Runs scripts/<script> (its output goes to stderr); returns its status. */
int pgt_script(const char *script);
/* Makes sure the server answers, starting it through the script when the
 * tests own it; false when it cannot. */
bool pgt_ensure_server(void);
/* Starts the server again if the tests own it and it does not answer (a
 * fault test left it stopped); the script's status, 0 when nothing was
 * to do. */
int pgt_restart_if_stopped(void);
/* pgt_base() with dbname replaced; malloc'ed, NULL on a bad base. */
char *pgt_conninfo_for(const char *dbname);
/* Creates database name, dropping a leftover of that name first; with
 * icu, one whose default collation is not byte order (ICU en-US), plain
 * when the server has no ICU. *conninfo (malloc'ed) connects to it. */
bool pgt_create_db(const char *name, bool icu, char **conninfo);
/* Drops database name, closing its sessions; true when it is gone. */
bool pgt_drop_db(const char *name);
/* Runs sql on conninfo's database; the first column of the first row as
 * a number, -1 on no rows or an error. */
long long pgt_scalar(const char *conninfo, const char *sql);

#endif
