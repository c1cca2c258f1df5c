/*
 * log_pg_consumer.c — consumer groups on the PostgreSQL log, shared by
 * every process on the database.
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
 * Rebalancing is cooperative and deterministic: each member keeps at most
 * ceil(partitions / live members) partitions; one with more gives the
 * surplus back (revoked, lost == false, then unlock) and one with fewer
 * tries the free locks. Members re-check on every poll at most every
 * REBALANCE_MS, and at once when a member joins or leaves (NOTIFY on the
 * group's channel). Taking a partition also claims it in
 * stele_log.owners (a new member id, epoch + 1); a transaction's offset
 * commit is fenced against that row and the lock (log_pg_txn.c).
 *
 * The same connection LISTENs to the subscribed topics' channels: a poll
 * with nothing to read sleeps in poll(2) on the socket until a commit's
 * NOTIFY arrives, the timeout passes or a rebalance check is due.
 */
#include "log_pg_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

#define REBALANCE_MS 500

typedef struct cpart {
    const lpg_topic *t; /* from the log's topic cache */
    int32_t partition;
    int64_t position; /* next offset poll returns */
    int64_t end;      /* watermark at the last fetch */
} cpart;

typedef struct lpg_consumer {
    struct stele_log_consumer base;
    stele_log_rebalance_cb cb;
    char **topics;
    const lpg_topic **resolved; /* parallel to topics; NULL: not yet */
    size_t n_topics;
    PGconn *conn;
    bool joined; /* conn holds the member lock and listens */
    int32_t group_id, pid;
    int64_t member;
    cpart *parts;
    stele_topic_partition *tps; /* parallel to parts */
    size_t n_parts, cap_parts;
    bool dirty;         /* records may have arrived: fetch */
    bool rebalance_now; /* the group changed */
    int64_t next_rebalance_ns;
    size_t rr; /* where the next fetch's round-robin starts */
} lpg_consumer;

static lpg_log *log_of(const lpg_consumer *c)
{
    return (lpg_log *)c->base.log;
}

lpg_log *lpg_consumer_log(const stele_log_consumer *c)
{
    return (lpg_log *)c->log;
}

/* The session is gone and its locks with it: everything owned is lost. */
static void lose(lpg_consumer *c)
{
    c->joined = false;
    if (c->n_parts && c->cb.revoked)
        c->cb.revoked(c->cb.opaque, &c->base, c->tps, c->n_parts, true);
    c->n_parts = 0;
}

/* After a failed call on the consumer's connection. */
static int failed(lpg_consumer *c, int rc)
{
    if (lpg_lost(c->conn, NULL))
        lose(c);
    return rc;
}

static int run(lpg_consumer *c, enum lpg_stmt s, const lpg_params *p,
               PGresult **r, stele_err *err, const char *what)
{
    int rc = lpg_run(log_of(c), c->conn, s, p, r, err, what);
    if (rc)
        stele_err_prefix(err, "group '%s'", c->base.group);
    return rc ? failed(c, rc) : 0;
}

static int simple(lpg_consumer *c, const char *sql, stele_err *err)
{
    int rc = lpg_simple(log_of(c), c->conn, sql, err);
    if (rc)
        stele_err_prefix(err, "group '%s'", c->base.group);
    return rc ? failed(c, rc) : 0;
}

static int listen_topic(lpg_consumer *c, const lpg_topic *t, stele_err *err)
{
    char sql[64];
    snprintf(sql, sizeof sql, "LISTEN stele_log_t%d", t->id);
    return simple(c, sql, err);
}

static int notify_group(lpg_consumer *c, stele_err *err)
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
        if ((rc = run(c, S_GROUP_ID, &p, &r, err, "joining")))
            return rc;
        c->group_id = lpg_i32(r, 0, 0);
        PQclear(r);
    }
    bool locked = false;
    for (int tries = 0; tries < 3 && !locked; tries++) {
        if ((rc = run(c, S_MEMBER_NEW, NULL, &r, err, "joining")))
            return rc;
        c->member = lpg_i64(r, 0, 0);
        PQclear(r);
        p.n = 0;
        lpg_p_i64(&p, (int64_t)((uint64_t)(uint32_t)c->group_id << 32 |
                                (uint32_t)c->member));
        if ((rc = run(c, S_TRY_LOCK64, &p, &r, err, "joining")))
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
    for (size_t i = 0; i < c->n_topics; i++)
        if (c->resolved[i] && (rc = listen_topic(c, c->resolved[i], err)))
            return rc;
    /* Members give partitions back when they see one more member. */
    if ((rc = notify_group(c, err)))
        return rc;
    c->joined = true;
    c->rebalance_now = c->dirty = true;
    return 0;
}

static int ensure_joined(lpg_consumer *c, stele_err *err)
{
    if (c->joined && PQstatus(c->conn) == CONNECTION_OK)
        return 0;
    if (c->joined)
        lose(c);
    if (PQstatus(c->conn) != CONNECTION_OK) {
        int rc = lpg_reconnect(log_of(c), c->conn, err);
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
    for (size_t i = 0; i < c->n_topics; i++)
        free(c->topics[i]);
    free(c->topics);
    free(c->resolved);
    free(c->parts);
    free(c->tps);
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
    if (cb)
        c->cb = *cb;
    if (!(c->base.group = strdup(group)) ||
        !(c->topics = calloc(n_topics, sizeof *c->topics)) ||
        !(c->resolved = calloc(n_topics, sizeof *c->resolved))) {
        consumer_free(c);
        return stele_err_set(err, STELE_ENOMEM, "group '%s'", group);
    }
    for (size_t i = 0; i < n_topics; i++) {
        bool dup = false;
        for (size_t j = 0; j < c->n_topics && !dup; j++)
            dup = !strcmp(c->topics[j], topics[i]);
        if (dup)
            continue;
        if (!(c->topics[c->n_topics] = strdup(topics[i]))) {
            consumer_free(c);
            return stele_err_set(err, STELE_ENOMEM, "group '%s'", group);
        }
        c->n_topics++;
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
/* Rebalancing                                                          */

static int parts_reserve(lpg_consumer *c, size_t more)
{
    if (c->n_parts + more <= c->cap_parts)
        return 0;
    size_t cap = c->cap_parts ? c->cap_parts : 16;
    while (cap < c->n_parts + more)
        cap *= 2;
    cpart *parts = realloc(c->parts, cap * sizeof *parts);
    if (!parts)
        return STELE_ENOMEM;
    c->parts = parts;
    stele_topic_partition *tps = realloc(c->tps, cap * sizeof *tps);
    if (!tps)
        return STELE_ENOMEM;
    c->tps = tps;
    c->cap_parts = cap;
    return 0;
}

/* Looks up subscribed topics not found so far and listens to them. */
static int resolve_topics(lpg_consumer *c, stele_err *err)
{
    for (size_t i = 0; i < c->n_topics; i++) {
        if (c->resolved[i])
            continue;
        const lpg_topic *t;
        stele_err lookup;
        int rc = lpg_topic_get(log_of(c), c->topics[i], &t, &lookup);
        if (rc == STELE_ENOTFOUND)
            continue; /* not created yet: LPG_TOPICS_CHANNEL says when */
        if (rc) {
            if (err)
                *err = lookup;
            return rc;
        }
        if ((rc = listen_topic(c, t, err)))
            return rc;
        c->resolved[i] = t;
    }
    return 0;
}

/* Gives back the last k partitions: revoked first, so the caller may
 * still commit for them, then the locks. */
static int give_back(lpg_consumer *c, size_t k, stele_err *err)
{
    size_t from = c->n_parts - k;
    if (c->cb.revoked)
        c->cb.revoked(c->cb.opaque, &c->base, &c->tps[from], k, false);
    int rc = 0;
    for (size_t i = from; i < c->n_parts && !rc; i++) {
        lpg_params p = {0};
        lpg_p_i32(&p, c->group_id);
        lpg_p_i32(&p, c->parts[i].t->uids[c->parts[i].partition]);
        PGresult *r;
        if (!(rc = run(c, S_UNLOCK, &p, &r, err, "giving a partition back")))
            PQclear(r);
    }
    if (!c->joined) /* lost meanwhile: lose() reported everything */
        return rc;
    c->n_parts = from;
    return rc ? rc : notify_group(c, err);
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
    int rc = run(c, S_TRY_LOCK, &p, &r, err, "taking a partition");
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
    if (!(rc = run(c, S_CLAIM, &p, &r, err, "claiming a partition"))) {
        PQclear(r);
        rc = lpg_committed_on(log_of(c), c->conn, c->base.group, t, partition,
                              &position, err);
        if (rc)
            failed(c, rc);
    }
    if (rc) {
        if (c->joined) {
            p.n = 2;
            if (!run(c, S_UNLOCK, &p, &r, NULL, "unlocking"))
                PQclear(r);
        }
        return rc;
    }
    cpart *cp = &c->parts[c->n_parts];
    *cp = (cpart){.t = t, .partition = partition, .position = position};
    c->tps[c->n_parts].topic = t->name;
    c->tps[c->n_parts].partition = partition;
    c->n_parts++;
    *took = true;
    return 0;
}

/* Takes free partitions until the consumer owns quota of them. */
static int take(lpg_consumer *c, size_t quota, size_t total, stele_err *err)
{
    PGresult *r;
    lpg_params p = {0};
    lpg_p_i32(&p, c->group_id);
    int rc = run(c, S_LOCKS_HELD, &p, &r, err, "reading the owners");
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
    if (parts_reserve(c, quota - c->n_parts)) {
        free(held);
        return stele_err_set(err, STELE_ENOMEM, "group '%s'", c->base.group);
    }
    size_t first = c->n_parts;
    /* Members start at different places, so joiners contend less. */
    size_t start = (size_t)c->member % total;
    for (size_t k = 0; k < total && c->n_parts < quota && !rc; k++) {
        size_t at = (start + k) % total;
        const lpg_topic *t = NULL;
        for (size_t i = 0; i < c->n_topics && !t; i++) {
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
    if (c->joined && c->n_parts > first) {
        c->dirty = true;
        if (c->cb.assigned)
            c->cb.assigned(c->cb.opaque, &c->base, &c->tps[first],
                           c->n_parts - first);
    }
    return rc;
}

static int rebalance(lpg_consumer *c, stele_err *err)
{
    int rc = resolve_topics(c, err);
    if (rc)
        return rc;
    size_t total = 0;
    for (size_t i = 0; i < c->n_topics; i++)
        if (c->resolved[i])
            total += (size_t)c->resolved[i]->partitions;
    if (!total)
        return 0;
    lpg_params p = {0};
    lpg_p_i32(&p, c->group_id);
    PGresult *r;
    if ((rc = run(c, S_MEMBERS_LIVE, &p, &r, err, "counting members")))
        return rc;
    int64_t live = lpg_i64(r, 0, 0);
    PQclear(r);
    if (live < 1)
        live = 1;
    size_t quota = (total + (size_t)live - 1) / (size_t)live;
    if (c->n_parts > quota)
        return give_back(c, c->n_parts - quota, err);
    if (c->n_parts < quota)
        return take(c, quota, total, err);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Fetching and waiting                                                 */

static int refresh_ends(lpg_consumer *c, stele_err *err)
{
    for (size_t i = 0; i < c->n_topics; i++) {
        const lpg_topic *t = c->resolved[i];
        bool mine = false;
        for (size_t k = 0; k < c->n_parts && !mine; k++)
            mine = c->parts[k].t == t;
        if (!t || !mine)
            continue;
        lpg_params p = {0};
        lpg_p_i32(&p, t->id);
        PGresult *r;
        int rc = run(c, S_PART_ENDS, &p, &r, err, "reading end offsets");
        if (rc)
            return rc;
        for (int row = 0; row < PQntuples(r); row++) {
            int32_t part = lpg_i32(r, row, 0);
            for (size_t k = 0; k < c->n_parts; k++)
                if (c->parts[k].t == t && c->parts[k].partition == part)
                    c->parts[k].end = lpg_i64(r, row, 1);
        }
        PQclear(r);
    }
    return 0;
}

/* One round: every partition with data gets share records, read in one
 * pipeline. *got: how many arrived. */
static int fetch_round(lpg_consumer *c, size_t share, size_t remaining,
                       stele_log_batch *b, size_t *got, stele_err *err)
{
    lpg_log *l = log_of(c);
    size_t n = c->n_parts;
    size_t *want = calloc(n, sizeof *want);
    if (!want)
        return stele_err_set(err, STELE_ENOMEM, "group '%s'", c->base.group);
    int rc = 0;
    bool sent = PQenterPipelineMode(c->conn);
    for (size_t k = 0; k < n && remaining && sent; k++) {
        size_t i = (c->rr + k) % n;
        cpart *p = &c->parts[i];
        if (p->position >= p->end)
            continue;
        want[i] = share < remaining ? share : remaining;
        remaining -= want[i];
        sent =
            !lpg_send_read(c->conn, p->t, p->partition, p->position, want[i]);
    }
    sent = sent && PQpipelineSync(c->conn);
    if (!sent)
        rc = lpg_fail(l, c->conn, NULL, err, "group '%s': fetching",
                      c->base.group);
    /* Every due result is read, also after an error, so the pipeline ends
     * in step; a NULL means the session is gone. */
    *got = 0;
    bool gone = !sent;
    for (size_t k = 0; k < n && !gone; k++) {
        size_t i = (c->rr + k) % n;
        if (!want[i])
            continue;
        cpart *p = &c->parts[i];
        PGresult *r = lpg_next_result(c->conn);
        gone = !r;
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            if (!rc)
                rc = lpg_fail(l, c->conn, r, err, "group '%s': reading %s[%d]",
                              c->base.group, p->t->name, p->partition);
        } else if (!rc) {
            size_t before = b->n;
            rc = lpg_rows_into(l, r, p->t, p->partition, b, err);
            size_t nrows = b->n - before;
            *got += nrows;
            if (nrows)
                p->position = b->records[b->n - 1].offset + 1;
            /* Fewer than asked: nothing more below the watermark
             * (compacted partitions have gaps to skip). */
            if (nrows < want[i] && p->position < p->end)
                p->position = p->end;
        }
        PQclear(r);
    }
    if (!gone) {
        PGresult *r = lpg_next_result(c->conn);
        if (PQresultStatus(r) != PGRES_PIPELINE_SYNC && !rc)
            rc = lpg_fail(l, c->conn, r, err, "group '%s': fetching",
                          c->base.group);
        PQclear(r);
    }
    free(want);
    if (!PQexitPipelineMode(c->conn)) {
        if (!rc)
            rc = lpg_fail(l, c->conn, NULL, err, "group '%s': fetching",
                          c->base.group);
        /* Out of step: only a new session helps, and it has no locks. */
        if (PQstatus(c->conn) == CONNECTION_OK) {
            lose(c);
            lpg_reconnect(l, c->conn, NULL);
        }
    }
    return rc ? failed(c, rc) : 0;
}

/* Reads up to max records, sharing max fairly among partitions that have
 * data, starting one partition further each poll. */
static int fetch(lpg_consumer *c, size_t max, stele_log_batch *b,
                 stele_err *err)
{
    if (!c->n_parts)
        return 0;
    int rc = refresh_ends(c, err);
    size_t remaining = max;
    while (!rc && remaining && c->joined) {
        size_t active = 0;
        for (size_t i = 0; i < c->n_parts; i++)
            active += c->parts[i].position < c->parts[i].end;
        if (!active)
            break;
        size_t share = remaining / active ? remaining / active : 1, got = 0;
        if ((rc = fetch_round(c, share, remaining, b, &got, err)) || !got)
            break;
        remaining -= got;
    }
    c->rr = c->n_parts ? (c->rr + 1) % c->n_parts : 0;
    return rc;
}

/* Takes the notifications libpq has read: which channels spoke. */
static void take_notifies(lpg_consumer *c)
{
    PGnotify *n;
    while ((n = PQnotifies(c->conn)) != NULL) {
        if (!strncmp(n->relname, "stele_log_t", 11))
            c->dirty = true;
        else
            c->rebalance_now = true; /* a group's or the topics channel */
        PQfreemem(n);
    }
}

/* Sleeps on the connection's socket until a notification arrives or ms
 * pass. */
static int wait_notify(lpg_consumer *c, int64_t ms, stele_err *err)
{
    int64_t deadline = stele_mono_ns() + ms * 1000000;
    for (;;) {
        take_notifies(c);
        if (!PQconsumeInput(c->conn)) {
            int rc = lpg_fail(log_of(c), c->conn, NULL, err,
                              "group '%s': waiting for records", c->base.group);
            return failed(c, rc);
        }
        take_notifies(c);
        if (c->dirty || c->rebalance_now)
            return 0;
        int64_t left = (deadline - stele_mono_ns()) / 1000000;
        if (left <= 0)
            return 0;
        struct pollfd pfd = {.fd = PQsocket(c->conn), .events = POLLIN};
        if (poll(&pfd, 1, left > 60000 ? 60000 : (int)left) < 0 &&
            errno != EINTR)
            return stele_err_set(err, STELE_EIO, "group '%s': poll: %s",
                                 c->base.group, strerror(errno));
    }
}

int lpg_consumer_poll(stele_log_consumer *base, int timeout_ms, size_t max,
                      stele_log_batch **out, stele_err *err)
{
    lpg_consumer *c = (lpg_consumer *)base;
    stele_log_batch *b = stele_log_batch_create();
    if (!b)
        return stele_err_set(err, STELE_ENOMEM, "group '%s': poll",
                             c->base.group);
    int64_t start = stele_mono_ns();
    int rc;
    bool rejoined = false;
again:
    for (;;) {
        if ((rc = ensure_joined(c, err)))
            break;
        /* Notifications that came in since the last call, without waiting:
         * a caller polling with timeout 0 never reaches wait_notify. (A
         * broken connection is reported by the fetch or the wait.) */
        if (PQconsumeInput(c->conn))
            take_notifies(c);
        int64_t now = stele_mono_ns();
        if (c->rebalance_now || now >= c->next_rebalance_ns) {
            c->rebalance_now = false;
            c->next_rebalance_ns = now + (int64_t)REBALANCE_MS * 1000000;
            if ((rc = rebalance(c, err)))
                break;
        }
        if (c->dirty && c->joined) {
            c->dirty = false;
            if ((rc = fetch(c, max, b, err)))
                break;
            if (b->n) {
                c->dirty = true; /* there may be more: no need to wait */
                break;
            }
        }
        if (!c->joined)
            continue; /* lost meanwhile: join again (or fail) */
        now = stele_mono_ns();
        int64_t waited = (now - start) / 1000000;
        if (timeout_ms >= 0 && waited >= timeout_ms)
            break;
        int64_t nap = (c->next_rebalance_ns - now) / 1000000 + 1;
        if (timeout_ms >= 0 && nap > timeout_ms - waited)
            nap = timeout_ms - waited;
        if ((rc = wait_notify(c, nap, err)))
            break;
    }
    /* The session died under this call (revoked, lost == true, has been
     * called): join again at once, once; a server still away fails it. */
    if (rc && !c->joined && !rejoined && !b->n) {
        rejoined = true;
        goto again;
    }
    if (rc) {
        stele_log_batch_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

/* ------------------------------------------------------------------ */

static cpart *find_part(lpg_consumer *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->n_parts; i++)
        if (c->parts[i].partition == partition &&
            !strcmp(c->parts[i].t->name, topic))
            return &c->parts[i];
    return NULL;
}

int lpg_consumer_seek(stele_log_consumer *base, const char *topic,
                      int32_t partition, int64_t offset, stele_err *err)
{
    lpg_consumer *c = (lpg_consumer *)base;
    cpart *p = find_part(c, topic, partition);
    if (!p)
        return stele_err_set(err, STELE_EINVAL,
                             "seek: group '%s': %s[%d] is not assigned to "
                             "this consumer",
                             c->base.group, topic, partition);
    p->position = offset;
    c->dirty = true;
    return 0;
}

int lpg_consumer_rewind(stele_log_consumer *base, stele_err *err)
{
    lpg_consumer *c = (lpg_consumer *)base;
    for (size_t i = 0; i < c->n_parts; i++) {
        cpart *p = &c->parts[i];
        int rc = lpg_committed_on(log_of(c), c->conn, c->base.group, p->t,
                                  p->partition, &p->position, err);
        if (rc)
            return failed(c, rc);
    }
    c->dirty = true;
    return 0;
}

size_t lpg_consumer_assignment(stele_log_consumer *base,
                               const stele_topic_partition **tps)
{
    lpg_consumer *c = (lpg_consumer *)base;
    *tps = c->n_parts ? c->tps : NULL;
    return c->n_parts;
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
    if (!find_part(c, t->name, partition))
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
    if (c->n_parts && c->cb.revoked)
        c->cb.revoked(c->cb.opaque, &c->base, c->tps, c->n_parts, !alive);
    if (alive) {
        /* Unlock before telling the others, so they find the locks free. */
        char sql[96];
        snprintf(sql, sizeof sql,
                 "SELECT pg_catalog.pg_advisory_unlock_all();"
                 " NOTIFY stele_log_g%d",
                 c->group_id);
        lpg_simple(log_of(c), c->conn, sql, NULL);
    }
    consumer_free(c);
}
