/* common_pg.c — the PostgreSQL server of the integration tests and their
 * databases. */
#include "common_pg.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

bool pgt_ensure_server(void)
{
    if (PQping(pgt_base()) == PQPING_OK)
        return true;
    if (!pgt_managed()) {
        fprintf(stderr, "PostgreSQL at STELE_PG_CONNINFO does not answer\n");
        return false;
    }
    if (pgt_script("pg-start.sh") != 0) {
        fprintf(stderr, "scripts/pg-start.sh failed: see its output above\n");
        return false;
    }
    if (PQping(pgt_base()) != PQPING_OK) {
        fprintf(stderr, "PostgreSQL still does not answer at %s\n", pgt_base());
        return false;
    }
    return true;
}

int pgt_restart_if_stopped(void)
{
    if (!pgt_managed() || PQping(pgt_base()) == PQPING_OK)
        return 0;
    return pgt_script("pg-start.sh");
}

char *pgt_conninfo_for(const char *dbname)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(pgt_base(), &perr);
    if (!opts) {
        fprintf(stderr, "bad STELE_PG_CONNINFO: %s\n", perr ? perr : "?");
        PQfreemem(perr);
        return NULL;
    }
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

static void quiet(void *arg, const char *message)
{
    (void)arg, (void)message; /* "does not exist, skipping" */
}

/* Runs one command on the maintenance database; report: say on stderr
 * why it failed. */
static bool admin_exec(const char *sql, bool report)
{
    PGconn *c = PQconnectdb(pgt_base());
    bool ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PQsetNoticeProcessor(c, quiet, NULL);
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    if (!ok && report)
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    PQfinish(c);
    return ok;
}

bool pgt_create_db(const char *name, bool icu, char **conninfo)
{
    char sql[256];
    *conninfo = NULL;
    pgt_drop_db(name);
    snprintf(sql, sizeof sql,
             "CREATE DATABASE \"%s\" TEMPLATE template0 ENCODING 'UTF8' "
             "LOCALE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'",
             name);
    if (!icu || !admin_exec(sql, false)) {
        snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", name);
        if (!admin_exec(sql, true))
            return false;
    }
    *conninfo = pgt_conninfo_for(name);
    return *conninfo != NULL;
}

bool pgt_drop_db(const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)",
             name);
    return admin_exec(sql, true);
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
