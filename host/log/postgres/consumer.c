/*
 * consumer.c — consumer groups on the PostgreSQL log, shared by
 * every process on the database: a consumer's life (its connection,
 * joining the group, closing), and seeking, rewinding and fencing its
 * offset commits. Rebalancing is in rebalance.c, polling in
 * poll.c.
 *
 * Each consumer has a connection of its own that holds session advisory
 * locks, so the server releases them the moment the session ends however
 * the process dies:
 *
 *  - membership: pg_advisory_lock(group id << 32 | member id) (pg_locks
 *    objsubid 1, classid = the group's id). The live members of a group
 *    are the holders of such locks, counted in pg_locks: no lease to
 *    expire, a dead member stops counting at once;
 *  - ownership: pg_try_advisory_lock(group id, partition uid) (objsubid
 *    2). A consumer owns the partitions whose locks it holds.
 *
 * Taking a partition also claims it in stele_log.owners (a new member id,
 * epoch + 1); a transaction's offset commit is fenced against that row and
 * the lock (commit.c).
 *
 * The same connection LISTENs to the group's channel, the topics channel
 * and the subscribed topics' channels.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

lpg_log *lpg_consumer_log(const stele_log_consumer *c)
{
    return (lpg_log *)c->log;
}

void lpg_consumer_lose(lpg_consumer *c)
{
    c->joined = false;
    if (c->asg.n && c->cb.revoked)
        c->cb.revoked(c->cb.opaque, &c->base, c->asg.tps, c->asg.n, true);
    c->asg.n = 0;
}

int lpg_consumer_failed(lpg_consumer *c, int rc)
{
    if (lpg_lost(c->conn, NULL))
        lpg_consumer_lose(c);
    return rc;
}

int lpg_consumer_run(lpg_consumer *c, enum lpg_stmt s, const lpg_params *p,
                     PGresult **r, stele_err *err, const char *what)
{
    int rc = lpg_run(c->log, c->conn, s, p, r, err, what);
    if (rc)
        stele_err_prefix(err, "group '%s'", c->base.group);
    return rc ? lpg_consumer_failed(c, rc) : 0;
}

static int simple(lpg_consumer *c, const char *sql, stele_err *err)
{
    int rc = lpg_simple(c->log, c->conn, sql, err);
    if (rc)
        stele_err_prefix(err, "group '%s'", c->base.group);
    return rc ? lpg_consumer_failed(c, rc) : 0;
}

int lpg_consumer_listen(lpg_consumer *c, const lpg_topic *t, stele_err *err)
{
    char sql[64];
    snprintf(sql, sizeof sql, "LISTEN stele_log_t%d", t->id);
    return simple(c, sql, err);
}

int lpg_consumer_notify(lpg_consumer *c, stele_err *err)
{
    char sql[64];
    snprintf(sql, sizeof sql, "NOTIFY stele_log_g%d", c->group_id);
    return simple(c, sql, err);
}

/* Takes a member lock on the session and listens to the channels. */
static int join(lpg_consumer *c, stele_err *err)
{
    PGresult *r;
    lpg_params p = {0};
    int rc;
    if (!c->group_id) {
        lpg_p_text(&p, c->base.group);
        if ((rc = lpg_consumer_run(c, S_GROUP_ID, &p, &r, err, "joining")))
            return rc;
        c->group_id = lpg_i32(r, 0, 0);
        PQclear(r);
    }
    bool locked = false;
    for (int tries = 0; tries < 3 && !locked; tries++) {
        if ((rc = lpg_consumer_run(c, S_MEMBER_NEW, NULL, &r, err, "joining")))
            return rc;
        c->member = lpg_i64(r, 0, 0);
        PQclear(r);
        p.n = 0;
        lpg_p_i64(&p, (int64_t)((uint64_t)(uint32_t)c->group_id << 32 |
                                (uint32_t)c->member));
        if ((rc = lpg_consumer_run(c, S_TRY_LOCK64, &p, &r, err, "joining")))
            return rc;
        locked = lpg_bool(r, 0, 0);
        PQclear(r);
    }
    if (!locked)
        return stele_err_set(err, STELE_ERETRY, "group '%s': no free member id",
                             c->base.group);
    c->pid = PQbackendPID(c->conn);
    char sql[96];
    snprintf(sql, sizeof sql,
             "LISTEN stele_log_g%d; LISTEN " LPG_TOPICS_CHANNEL, c->group_id);
    if ((rc = simple(c, sql, err)))
        return rc;
    for (size_t i = 0; i < c->sub.n; i++)
        if (c->resolved[i] &&
            (rc = lpg_consumer_listen(c, c->resolved[i], err)))
            return rc;
    /* Members give partitions back when they see one more member. */
    if ((rc = lpg_consumer_notify(c, err)))
        return rc;
    c->joined = true;
    c->rebalance_now = c->dirty = true;
    return 0;
}

int lpg_consumer_ensure_joined(lpg_consumer *c, stele_err *err)
{
    if (c->joined && PQstatus(c->conn) == CONNECTION_OK)
        return 0;
    if (c->joined)
        lpg_consumer_lose(c);
    if (PQstatus(c->conn) != CONNECTION_OK) {
        int rc = lpg_reconnect(c->log, c->conn, err);
        if (rc) {
            stele_err_prefix(err, "group '%s'", c->base.group);
            return rc;
        }
    }
    return join(c, err);
}

static void consumer_free(lpg_consumer *c)
{
    if (c->conn)
        PQfinish(c->conn);
    stele_log_subscription_free(&c->sub);
    free(c->resolved);
    stele_log_assignment_free(&c->asg);
    free(c->base.group);
    free(c);
}

int lpg_consumer_new(stele_log *log, const char *group,
                     const char *const *topics, size_t n_topics,
                     const stele_log_rebalance_cb *cb, stele_log_consumer **out,
                     stele_err *err)
{
    lpg_log *l = (lpg_log *)log;
    lpg_consumer *c = calloc(1, sizeof *c);
    if (!c)
        return stele_err_set(err, STELE_ENOMEM, "group '%s'", group);
    c->base.log = log;
    c->log = l;
    if (cb)
        c->cb = *cb;
    if (!(c->base.group = strdup(group)) ||
        stele_log_subscription_init(&c->sub, topics, n_topics) ||
        !(c->resolved = calloc(c->sub.n, sizeof *c->resolved))) {
        consumer_free(c);
        return stele_err_set(err, STELE_ENOMEM, "group '%s'", group);
    }
    int rc = lpg_connect(l, "stele consumer", &c->conn, err);
    if (!rc)
        rc = join(c, err);
    if (rc) {
        stele_err_prefix(err, "group '%s'", group);
        consumer_free(c);
        return rc;
    }
    *out = &c->base;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Positions and fencing                                                */

int lpg_consumer_seek(stele_log_consumer *base, const char *topic,
                      int32_t partition, int64_t offset, stele_err *err)
{
    lpg_consumer *c = (lpg_consumer *)base;
    int rc = stele_log_assignment_seek(&c->asg, c->base.group, topic, partition,
                                       offset, err);
    if (!rc)
        c->dirty = true;
    return rc;
}

static int committed_of(void *arg, stele_log_part *p, stele_err *err)
{
    lpg_consumer *c = arg;
    int rc = lpg_committed_on(c->log, c->conn, c->base.group, p->topic,
                              p->partition, &p->position, err);
    return rc ? lpg_consumer_failed(c, rc) : 0;
}

int lpg_consumer_rewind(stele_log_consumer *base, stele_err *err)
{
    lpg_consumer *c = (lpg_consumer *)base;
    int rc = stele_log_assignment_rewind(&c->asg, committed_of, c, err);
    if (!rc)
        c->dirty = true;
    return rc;
}

size_t lpg_consumer_assignment(stele_log_consumer *base,
                               const stele_topic_partition **tps)
{
    lpg_consumer *c = (lpg_consumer *)base;
    return stele_log_assignment_get(&c->asg, tps);
}

int lpg_consumer_fence(stele_log_consumer *base, const lpg_topic *t,
                       int32_t partition, lpg_fence *out, stele_err *err)
{
    lpg_consumer *c = (lpg_consumer *)base;
    if (!c->joined || PQstatus(c->conn) != CONNECTION_OK)
        return stele_err_set(err, STELE_ECONFLICT,
                             "group '%s' lost its partitions with its lock "
                             "connection; cannot commit %s[%d]",
                             c->base.group, t->name, partition);
    if (!stele_log_assignment_find(&c->asg, t->name, partition))
        return stele_err_set(err, STELE_ECONFLICT,
                             "group '%s' does not own %s[%d] in this consumer",
                             c->base.group, t->name, partition);
    *out = (lpg_fence){.group_id = c->group_id,
                       .uid = t->uids[partition],
                       .lock_pid = c->pid,
                       .member = c->member};
    return 0;
}

void lpg_consumer_close(stele_log_consumer *base)
{
    lpg_consumer *c = (lpg_consumer *)base;
    bool alive = c->joined && PQstatus(c->conn) == CONNECTION_OK;
    if (c->asg.n && c->cb.revoked)
        c->cb.revoked(c->cb.opaque, &c->base, c->asg.tps, c->asg.n, !alive);
    if (alive) {
        /* Unlock before telling the others, so they find the locks free. */
        char sql[96];
        snprintf(sql, sizeof sql,
                 "SELECT pg_catalog.pg_advisory_unlock_all();"
                 " NOTIFY stele_log_g%d",
                 c->group_id);
        lpg_simple(c->log, c->conn, sql, NULL);
    }
    consumer_free(c);
}
