/*
 * rebalance.c — spreading a consumer group's partitions over its
 * live members on the PostgreSQL log (consumer.c describes the
 * locks).
 *
 * Rebalancing is cooperative and deterministic: each member keeps at most
 * ceil(partitions / live members) partitions; one with more gives the
 * surplus back (revoked, lost == false, then unlock) and one with fewer
 * tries the free locks. Members re-check on every poll at most every
 * REBALANCE_MS (poll.c), and at once when a member joins or leaves
 * (NOTIFY on the group's channel). Taking a partition also claims it in
 * stele_log.owners and starts it at the group's committed offset. A
 * member that has not polled for max_poll_interval_ms is ended by the
 * others (evict_stuck), as Kafka's max.poll.interval.ms takes a member
 * out of its group.
 */
#include "internal.h"

#include <stdlib.h>

#include "common/err.h"
#include "common/util.h"

/* Looks up subscribed topics not found so far and listens to them. */
static int resolve_topics(lpg_consumer *c, stele_err *err)
{
    for (size_t i = 0; i < c->sub.n; i++) {
        if (c->resolved[i])
            continue;
        const lpg_topic *t;
        stele_err lookup;
        int rc = lpg_topic_get(c->log, c->sub.topics[i], &t, &lookup);
        if (rc == STELE_ENOTFOUND)
            continue; /* not created yet: LPG_TOPICS_CHANNEL says when */
        if (rc) {
            if (err)
                *err = lookup;
            return rc;
        }
        if ((rc = lpg_consumer_listen(c, t, err)))
            return rc;
        c->resolved[i] = t;
    }
    return 0;
}

/* Gives back the last k partitions: revoked first, so the caller may
 * still commit for them, then the locks. */
static int give_back(lpg_consumer *c, size_t k, stele_err *err)
{
    size_t from = c->asg.n - k;
    if (c->cb.revoked)
        c->cb.revoked(c->cb.opaque, &c->base, &c->asg.tps[from], k, false);
    int rc = 0;
    for (size_t i = from; i < c->asg.n && !rc; i++) {
        const stele_log_part *part = &c->asg.parts[i];
        const lpg_topic *t = part->topic;
        lpg_params p = {0};
        lpg_p_i32(&p, c->group_id);
        lpg_p_i32(&p, t->uids[part->partition]);
        PGresult *r;
        if (!(rc = lpg_consumer_run(c, S_UNLOCK, &p, &r, err,
                                    "giving a partition back")))
            PQclear(r);
    }
    if (!c->joined) /* lost meanwhile: lpg_consumer_lose reported them all */
        return rc;
    c->asg.n = from;
    return rc ? rc : lpg_consumer_notify(c, err);
}

static bool contains(const int64_t *v, int n, int64_t x)
{
    for (int i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

/* Locks, claims and positions one partition; *took says whether it was
 * free. */
static int take_one(lpg_consumer *c, const lpg_topic *t, int32_t partition,
                    bool *took, stele_err *err)
{
    lpg_params p = {0};
    lpg_p_i32(&p, c->group_id);
    lpg_p_i32(&p, t->uids[partition]);
    PGresult *r;
    *took = false;
    int rc = lpg_consumer_run(c, S_TRY_LOCK, &p, &r, err, "taking a partition");
    if (rc)
        return rc;
    bool locked = lpg_bool(r, 0, 0);
    PQclear(r);
    if (!locked)
        return 0;
    /* The claim waits for an earlier owner's commit in flight (it holds
     * the row FOR SHARE), so the offset read next includes it. */
    lpg_p_i64(&p, c->member);
    int64_t position = 0;
    if (!(rc = lpg_consumer_run(c, S_CLAIM, &p, &r, err,
                                "claiming a partition"))) {
        PQclear(r);
        rc = lpg_committed_on(c->log, c->conn, c->base.group, t, partition,
                              &position, err);
        if (rc)
            lpg_consumer_failed(c, rc);
    }
    if (rc) {
        if (c->joined) {
            p.n = 2;
            if (!lpg_consumer_run(c, S_UNLOCK, &p, &r, NULL, "unlocking"))
                PQclear(r);
        }
        return rc;
    }
    stele_log_assignment_add(&c->asg, t, t->name, partition, position);
    *took = true;
    return 0;
}

/* Takes free partitions until the consumer owns quota of them. */
static int take(lpg_consumer *c, size_t quota, size_t total, stele_err *err)
{
    PGresult *r;
    lpg_params p = {0};
    lpg_p_i32(&p, c->group_id);
    int rc =
        lpg_consumer_run(c, S_LOCKS_HELD, &p, &r, err, "reading the owners");
    if (rc)
        return rc;
    int n_held = PQntuples(r);
    int64_t *held = malloc(((size_t)n_held + 1) * sizeof *held);
    if (!held) {
        PQclear(r);
        return stele_err_set(err, STELE_ENOMEM, "group '%s'", c->base.group);
    }
    for (int i = 0; i < n_held; i++)
        held[i] = lpg_i64(r, i, 0);
    PQclear(r);
    if (stele_log_assignment_reserve(&c->asg, quota - c->asg.n)) {
        free(held);
        return stele_err_set(err, STELE_ENOMEM, "group '%s'", c->base.group);
    }
    size_t first = c->asg.n;
    /* Members start at different places, so joiners contend less. */
    size_t start = (size_t)c->member % total;
    for (size_t k = 0; k < total && c->asg.n < quota && !rc; k++) {
        size_t at = (start + k) % total;
        const lpg_topic *t = NULL;
        for (size_t i = 0; i < c->sub.n && !t; i++) {
            if (!c->resolved[i])
                continue;
            if (at < (size_t)c->resolved[i]->partitions)
                t = c->resolved[i];
            else
                at -= (size_t)c->resolved[i]->partitions;
        }
        if (!t || contains(held, n_held, t->uids[at]))
            continue;
        bool took;
        rc = take_one(c, t, (int32_t)at, &took, err);
    }
    free(held);
    if (c->joined && c->asg.n > first) {
        c->dirty = true;
        if (c->cb.assigned)
            c->cb.assigned(c->cb.opaque, &c->base, &c->asg.tps[first],
                           c->asg.n - first);
    }
    return rc;
}

/* How often a member looks for members that stopped polling: a quarter
 * of the limit, within these bounds. */
#define EVICT_CHECK_MIN_MS 250
#define EVICT_CHECK_MAX_MS 5000

/* Ends the sessions of the group's members that have not polled for
 * max_poll_ms (their consumer connection idle that long: a polling member
 * runs a statement at least every REBALANCE_MS). Their locks go with
 * them; the count of live members that follows leaves them out once the
 * server has ended them. A failure other than this member's own
 * connection (no privilege to end a session, say) is not the poll's: it
 * is tried again later. */
static int evict_stuck(lpg_consumer *c, stele_err *err)
{
    lpg_log *l = c->log;
    int64_t now = stele_mono_ns();
    if (l->max_poll_ms <= 0 || now < c->next_evict_ns)
        return 0;
    int64_t every = l->max_poll_ms / 4;
    if (every < EVICT_CHECK_MIN_MS)
        every = EVICT_CHECK_MIN_MS;
    if (every > EVICT_CHECK_MAX_MS)
        every = EVICT_CHECK_MAX_MS;
    c->next_evict_ns = now + every * 1000000;
    lpg_params p = {0};
    lpg_p_i32(&p, c->group_id);
    lpg_p_i64(&p, l->max_poll_ms);
    PGresult *r;
    stele_err local;
    int rc = lpg_consumer_run(c, S_MEMBERS_EVICT, &p, &r, &local,
                              "ending members that stopped polling");
    if (!rc) {
        PQclear(r);
        return 0;
    }
    if (!c->joined || PQstatus(c->conn) != CONNECTION_OK) {
        if (err)
            *err = local;
        return rc;
    }
    return 0;
}

int lpg_rebalance(lpg_consumer *c, stele_err *err)
{
    int rc = resolve_topics(c, err);
    if (rc)
        return rc;
    size_t total = 0;
    for (size_t i = 0; i < c->sub.n; i++)
        if (c->resolved[i])
            total += (size_t)c->resolved[i]->partitions;
    if (!total)
        return 0;
    if ((rc = evict_stuck(c, err)))
        return rc;
    lpg_params p = {0};
    lpg_p_i32(&p, c->group_id);
    PGresult *r;
    if ((rc = lpg_consumer_run(c, S_MEMBERS_LIVE, &p, &r, err,
                               "counting members")))
        return rc;
    int64_t live = lpg_i64(r, 0, 0);
    PQclear(r);
    if (live < 1)
        live = 1;
    size_t quota = (total + (size_t)live - 1) / (size_t)live;
    if (c->asg.n > quota)
        return give_back(c, c->asg.n - quota, err);
    if (c->asg.n < quota)
        return take(c, quota, total, err);
    return 0;
}
