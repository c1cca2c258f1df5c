/*
 * topic.c — the PostgreSQL log's topics: creating them (topic_ensure,
 * one transaction that another process creating the same topic makes a
 * no-op), and looking them up by name (cached for the life of the handle).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

void lpg_topic_free(void *p)
{
    lpg_topic *t = p;
    if (t)
        free(t->uids);
    free(t);
}

static int topic_load(lpg_log *l, const char *name, lpg_topic **out,
                      stele_err *err)
{
    lpg_params p = {0};
    lpg_p_text(&p, name);
    PGresult *r;
    char what[300];
    snprintf(what, sizeof what, "looking up topic '%s'", name);
    int rc = lpg_run(l, l->conn, S_TOPIC_GET, &p, &r, err, what);
    *out = NULL;
    if (rc || PQntuples(r) == 0) {
        PQclear(r);
        return rc;
    }
    size_t len = strlen(name);
    lpg_topic *t = calloc(1, sizeof *t + len + 1);
    if (!t) {
        PQclear(r);
        return stele_err_set(err, STELE_ENOMEM, "topic '%s'", name);
    }
    t->id = lpg_i32(r, 0, 0);
    t->partitions = lpg_i32(r, 0, 1);
    t->compacted = lpg_bool(r, 0, 2);
    memcpy(t->name, name, len + 1);
    PQclear(r);
    p.n = 0;
    lpg_p_i32(&p, t->id);
    if ((rc = lpg_run(l, l->conn, S_TOPIC_UIDS, &p, &r, err, what))) {
        lpg_topic_free(t);
        return rc;
    }
    if (PQntuples(r) != t->partitions) {
        rc = stele_err_set(err, STELE_EFATAL,
                           "PostgreSQL log at %s: topic '%s' has %d "
                           "partitions but %d partition rows",
                           l->where, name, t->partitions, PQntuples(r));
    } else if (!(t->uids = malloc((size_t)t->partitions * sizeof *t->uids))) {
        rc = stele_err_set(err, STELE_ENOMEM, "topic '%s'", name);
    } else {
        for (int32_t i = 0; i < t->partitions; i++)
            t->uids[i] = lpg_i32(r, i, 0);
    }
    PQclear(r);
    if (rc) {
        lpg_topic_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int lpg_topic_get(lpg_log *l, const char *name, const lpg_topic **out,
                  stele_err *err)
{
    lpg_topic *t = stele_map_gets(l->topics, name);
    if (!t) {
        int rc = topic_load(l, name, &t, err);
        if (rc)
            return rc;
        if (!t)
            return stele_err_set(err, STELE_ENOTFOUND,
                                 "PostgreSQL log at %s: topic '%s' does not "
                                 "exist",
                                 l->where, name);
        if (stele_map_put(l->topics, t->name, strlen(t->name), t, NULL)) {
            lpg_topic_free(t);
            return stele_err_set(err, STELE_ENOMEM, "topic '%s'", name);
        }
    }
    *out = t;
    return 0;
}

int lpg_check_partition(const lpg_topic *t, int32_t partition, stele_err *err)
{
    return stele_log_check_partition(t->name, t->partitions, partition, err);
}

static int topic_compare(const lpg_topic *t, const stele_topic_spec *spec,
                         stele_err *err)
{
    return stele_log_topic_matches(t->name, t->partitions, t->compacted, spec,
                                   err);
}

/* Runs sql with text parameters; *out (may be NULL) gets the result. */
static int exec_text(lpg_log *l, const char *sql, int n,
                     const char *const *vals, PGresult **out, stele_err *err,
                     const char *what)
{
    PGresult *r = PQexecParams(l->conn, sql, n, NULL, vals, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out)
            *out = r;
        else
            PQclear(r);
        return 0;
    }
    int rc = lpg_fail(l, l->conn, r, err, "%s", what);
    PQclear(r);
    return rc;
}

/* Inserts the topic and its partitions in one transaction; another
 * process creating it at the same time makes this a no-op. */
static int topic_create(lpg_log *l, const stele_topic_spec *spec,
                        stele_err *err)
{
    char what[300], parts[16], comp[8];
    snprintf(what, sizeof what, "creating topic '%s'", spec->name);
    snprintf(parts, sizeof parts, "%d", spec->partitions);
    snprintf(comp, sizeof comp, "%s", spec->compacted ? "true" : "false");
    if (PQstatus(l->conn) != CONNECTION_OK) {
        int rc = lpg_reconnect(l, l->conn, err);
        if (rc)
            return rc;
    }
    int rc = exec_text(l, "BEGIN", 0, NULL, NULL, err, what);
    if (rc && lpg_lost(l->conn, NULL)) { /* the session died while idle */
        if ((rc = lpg_reconnect(l, l->conn, err)))
            return rc;
        rc = exec_text(l, "BEGIN", 0, NULL, NULL, err, what);
    }
    if (rc)
        return rc;
    const char *v[3] = {spec->name, parts, comp};
    PGresult *r = NULL;
    rc = exec_text(l,
                   "INSERT INTO stele_log.topics(name, partitions, compacted)"
                   " VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING"
                   " RETURNING id",
                   3, v, &r, err, what);
    if (!rc && PQntuples(r) == 1) {
        const char *pv[2] = {PQgetvalue(r, 0, 0), parts};
        rc = exec_text(l,
                       "INSERT INTO stele_log.partitions(topic_id, part)"
                       " SELECT $1::int4, g FROM generate_series(0,"
                       " $2::int4 - 1) g",
                       2, pv, NULL, err, what);
        if (!rc)
            rc = exec_text(l, "NOTIFY " LPG_TOPICS_CHANNEL, 0, NULL, NULL, err,
                           what);
    }
    PQclear(r);
    if (!rc)
        rc = exec_text(l, "COMMIT", 0, NULL, NULL, err, what);
    if (rc && PQstatus(l->conn) == CONNECTION_OK &&
        PQtransactionStatus(l->conn) != PQTRANS_IDLE)
        lpg_simple(l, l->conn, "ROLLBACK", NULL);
    return rc;
}

int lpg_topic_ensure(stele_log *log, const stele_topic_spec *spec,
                     stele_err *err)
{
    lpg_log *l = (lpg_log *)log;
    const lpg_topic *t;
    stele_err lookup = {0};
    int rc = lpg_topic_get(l, spec->name, &t, &lookup);
    if (rc == STELE_ENOTFOUND) {
        if ((rc = topic_create(l, spec, err)))
            return rc;
        rc = lpg_topic_get(l, spec->name, &t, err);
    } else if (rc && err) {
        *err = lookup;
    }
    return rc ? rc : topic_compare(t, spec, err);
}

int lpg_topic_partitions(stele_log *log, const char *topic, int32_t *n,
                         stele_err *err)
{
    const lpg_topic *t;
    int rc = lpg_topic_get((lpg_log *)log, topic, &t, err);
    if (!rc)
        *n = t->partitions;
    return rc;
}
