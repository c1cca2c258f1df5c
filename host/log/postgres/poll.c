/*
 * poll.c — polling a consumer of the PostgreSQL log: joining again
 * when the session was lost, rebalancing when due (rebalance.c),
 * reading the owned partitions in fair rounds, each round one pipeline,
 * and waiting for records.
 *
 * A poll with nothing to read sleeps in poll(2) on the consumer's socket
 * until a commit's NOTIFY arrives (the consumer LISTENs to its topics'
 * channels), the timeout passes or a rebalance check is due.
 */
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

#define REBALANCE_MS 500

static int refresh_ends(lpg_consumer *c, stele_err *err)
{
    for (size_t i = 0; i < c->sub.n; i++) {
        const lpg_topic *t = c->resolved[i];
        bool mine = false;
        for (size_t k = 0; k < c->asg.n && !mine; k++)
            mine = c->asg.parts[k].topic == t;
        if (!t || !mine)
            continue;
        lpg_params p = {0};
        lpg_p_i32(&p, t->id);
        PGresult *r;
        int rc = lpg_consumer_run(c, S_PART_ENDS, &p, &r, err,
                                  "reading end offsets");
        if (rc)
            return rc;
        for (int row = 0; row < PQntuples(r); row++) {
            int32_t part = lpg_i32(r, row, 0);
            for (size_t k = 0; k < c->asg.n; k++) {
                stele_log_part *a = &c->asg.parts[k];
                if (a->topic == t && a->partition == part)
                    a->end = lpg_i64(r, row, 1);
            }
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
    lpg_log *l = c->log;
    size_t n = c->asg.n;
    size_t *want = calloc(n, sizeof *want);
    if (!want)
        return stele_err_set(err, STELE_ENOMEM, "group '%s'", c->base.group);
    int rc = 0;
    bool sent = PQenterPipelineMode(c->conn);
    for (size_t k = 0; k < n && remaining && sent; k++) {
        size_t i = (c->rr + k) % n;
        stele_log_part *p = &c->asg.parts[i];
        if (p->position >= p->end)
            continue;
        want[i] = share < remaining ? share : remaining;
        remaining -= want[i];
        sent = !lpg_send_read(c->conn, p->topic, p->partition, p->position,
                              want[i]);
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
        stele_log_part *p = &c->asg.parts[i];
        const lpg_topic *t = p->topic;
        PGresult *r = lpg_next_result(c->conn);
        gone = !r;
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            if (!rc)
                rc = lpg_fail(l, c->conn, r, err, "group '%s': reading %s[%d]",
                              c->base.group, t->name, p->partition);
        } else if (!rc) {
            size_t before = b->n;
            rc = lpg_rows_into(l, r, t, p->partition, b, err);
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
            lpg_consumer_lose(c);
            lpg_reconnect(l, c->conn, NULL);
        }
    }
    return rc ? lpg_consumer_failed(c, rc) : 0;
}

/* Reads up to max records, sharing max fairly among partitions that have
 * data, starting one partition further each poll. */
static int fetch(lpg_consumer *c, size_t max, stele_log_batch *b,
                 stele_err *err)
{
    if (!c->asg.n)
        return 0;
    int rc = refresh_ends(c, err);
    size_t remaining = max;
    while (!rc && remaining && c->joined) {
        size_t active = 0;
        for (size_t i = 0; i < c->asg.n; i++)
            active += c->asg.parts[i].position < c->asg.parts[i].end;
        if (!active)
            break;
        size_t share = remaining / active ? remaining / active : 1, got = 0;
        if ((rc = fetch_round(c, share, remaining, b, &got, err)) || !got)
            break;
        remaining -= got;
    }
    c->rr = c->asg.n ? (c->rr + 1) % c->asg.n : 0;
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
            int rc = lpg_fail(c->log, c->conn, NULL, err,
                              "group '%s': waiting for records", c->base.group);
            return lpg_consumer_failed(c, rc);
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
        if ((rc = lpg_consumer_ensure_joined(c, err)))
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
            if ((rc = lpg_rebalance(c, err)))
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
