/* The PostgreSQL server and the database of one test_log_pg run. */
#include "log_pg_server.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef STELE_SOURCE_DIR
#error "STELE_SOURCE_DIR must name the source tree (scripts/pg-start.sh)"
#endif

static char base[512];

const char *lpgt_base(void)
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

bool lpgt_managed(void)
{
    const char *c = getenv("STELE_PG_CONNINFO");
    return !(c && *c);
}

int lpgt_script(const char *script)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/scripts/%s' 1>&2", STELE_SOURCE_DIR, script);
    return system(cmd);
}

bool lpgt_ensure_server(void)
{
    if (PQping(lpgt_base()) == PQPING_OK)
        return true;
    if (!lpgt_managed()) {
        fprintf(stderr, "PostgreSQL at STELE_PG_CONNINFO does not answer\n");
        return false;
    }
    if (lpgt_script("pg-start.sh") != 0) {
        fprintf(stderr, "scripts/pg-start.sh failed: see its output above\n");
        return false;
    }
    return PQping(lpgt_base()) == PQPING_OK;
}

/* The base conninfo with dbname replaced; malloc'ed. */
static char *conninfo_for(const char *dbname)
{
    PQconninfoOption *opts = PQconninfoParse(lpgt_base(), NULL);
    if (!opts)
        return NULL;
    size_t cap = 2048, n = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        const char *v = strcmp(o->keyword, "dbname") == 0 ? dbname : o->val;
        if (!v || !*v)
            continue;
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

static void quiet(void *arg, const char *message)
{
    (void)arg, (void)message; /* "does not exist, skipping" */
}

static bool admin_exec(const char *sql)
{
    PGconn *c = PQconnectdb(lpgt_base());
    bool ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PQsetNoticeProcessor(c, quiet, NULL);
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    if (!ok)
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    PQfinish(c);
    return ok;
}

bool lpgt_create_db(char **name, char **conninfo)
{
    char n[64], sql[128];
    snprintf(n, sizeof n, "stele_logtest_%d", (int)getpid());
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", n);
    admin_exec(sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", n);
    if (!admin_exec(sql))
        return false;
    *name = strdup(n);
    *conninfo = conninfo_for(n);
    return *conninfo != NULL;
}

void lpgt_drop_db(const char *name)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)",
             name);
    admin_exec(sql);
}

long long lpgt_scalar(const char *conninfo, const char *sql)
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
