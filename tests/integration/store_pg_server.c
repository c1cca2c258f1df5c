/* The PostgreSQL server and the per-test databases of test_store_pg. */
#include "store_pg_server.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef STELE_SOURCE_DIR
#error "STELE_SOURCE_DIR must name the source tree (scripts/pg-start.sh)"
#endif

static char base[512];

const char *pgt_base(void)
{
    if (!base[0]) {
        const char *c = getenv("STELE_PG_CONNINFO");
        const char *port = getenv("STELE_PG_PORT");
        if (c && *c)
            snprintf(base, sizeof base, "%s", c);
        else
            snprintf(base, sizeof base,
                     "host=127.0.0.1 port=%s user=postgres dbname=postgres "
                     "connect_timeout=5",
                     port && *port ? port : "5433");
    }
    return base;
}

bool pgt_managed(void)
{
    const char *c = getenv("STELE_PG_CONNINFO");
    return !(c && *c);
}

int pgt_script(const char *script)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/scripts/%s' 1>&2", STELE_SOURCE_DIR, script);
    return system(cmd);
}

void pgt_ensure_server(void)
{
    if (PQping(pgt_base()) == PQPING_OK)
        return;
    if (!pgt_managed())
        fail_msg("PostgreSQL at STELE_PG_CONNINFO does not answer");
    if (pgt_script("pg-start.sh") != 0)
        fail_msg("scripts/pg-start.sh failed: see its output above");
    if (PQping(pgt_base()) != PQPING_OK)
        fail_msg("PostgreSQL still does not answer at %s", pgt_base());
}

char *pgt_conninfo_for(const char *dbname)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(pgt_base(), &perr);
    if (!opts)
        fail_msg("bad STELE_PG_CONNINFO: %s", perr ? perr : "?");
    size_t cap = 1024, n = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        const char *v = strcmp(o->keyword, "dbname") == 0 ? dbname : o->val;
        if (!v || !*v)
            continue;
        /* value quoted, with ' and \ escaped */
        size_t need = n + strlen(o->keyword) + 2 * strlen(v) + 8;
        if (need > cap)
            out = realloc(out, cap = need * 2);
        n += (size_t)sprintf(out + n, "%s%s='", n ? " " : "", o->keyword);
        for (const char *p = v; *p; p++) {
            if (*p == '\'' || *p == '\\')
                out[n++] = '\\';
            out[n++] = *p;
        }
        out[n++] = '\'';
        out[n] = '\0';
    }
    PQconninfoFree(opts);
    return out;
}

static void admin_exec(const char *sql, bool must)
{
    PGconn *c = PQconnectdb(pgt_base());
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to %s: %s", pgt_base(), PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    if (must && PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

void pgt_create_db(char **name, char **conninfo)
{
    static int serial;
    char n[64], sql[256];
    snprintf(n, sizeof n, "stele_test_%d_%d", (int)getpid(), ++serial);
    /* A database whose default collation is not byte order (ICU en-US),
     * so the tests prove the store does not depend on it; plain when
     * the server has no ICU. */
    PGconn *c = PQconnectdb(pgt_base());
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to %s: %s", pgt_base(), PQerrorMessage(c));
    snprintf(sql, sizeof sql,
             "CREATE DATABASE \"%s\" TEMPLATE template0 ENCODING 'UTF8' "
             "LOCALE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'",
             n);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        PQclear(r);
        snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", n);
        r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            fail_msg("%s: %s", sql, PQerrorMessage(c));
    }
    PQclear(r);
    PQfinish(c);
    *name = strdup(n);
    *conninfo = pgt_conninfo_for(n);
}

void pgt_drop_db(const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)",
             name);
    admin_exec(sql, true);
}

long long pgt_scalar(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    long long v = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 &&
            !PQgetisnull(r, 0, 0))
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    PQfinish(c);
    return v;
}
