/*
 * consumer.c — consumer groups on the embedded log.
 *
 * Kafka spreads a group's partitions over its members; the embedded log
 * has one machine, so a group has one owner at a time and it owns every
 * partition of the subscribed topics. Ownership is an exclusive flock on
 * "<log path>.<group>.lock": the kernel drops it when the owner closes the
 * consumer or its process dies, however it dies, and a waiting consumer
 * takes it on its next poll. Lock files are never deleted: removing one
 * while another process waits on it would let two owners in.
 *
 * flock belongs to the open file description, so a child forked while a
 * consumer owns its group shares the ownership until the child exits or
 * execs (the descriptor is close-on-exec).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"

#define GROUP_FILE_MAX 100
#define BACKOFF_FIRST_MS 1
#define BACKOFF_MAX_MS 20

typedef struct lsq_consumer {
    struct stele_log_consumer base;
    stele_log_rebalance_cb cb;
    stele_log_subscription sub;
    bool *topic_assigned; /* parallel to sub.topics */
    size_t n_missing;
    char *lock_path;
    int lock_fd;
    bool owner;
    /* By topic, then partition; a part's end is the high watermark in the
     * last snapshot. */
    stele_log_assignment asg;
    size_t rr; /* where the next poll's round-robin starts */
} lsq_consumer;

static lsq_log *log_of(const lsq_consumer *c)
{
    return (lsq_log *)c->base.log;
}

const char *lsq_consumer_path(const stele_log_consumer *c)
{
    return ((const lsq_log *)c->log)->realpath;
}

/* "<realpath>.<group>.lock"; a group name with characters unsafe in a
 * file name (or a very long one) gets them replaced and a hash of the
 * original appended, so two groups never share a lock file by accident. */
static char *lock_path_for(const char *dbpath, const char *group)
{
    char safe[GROUP_FILE_MAX + 16];
    size_t n = 0;
    bool changed = false;
    for (const char *p = group; *p; p++) {
        if (n == GROUP_FILE_MAX) {
            changed = true;
            break;
        }
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
                  ch == '-';
        safe[n++] = ok ? ch : '_';
        changed |= !ok;
    }
    safe[n] = '\0';
    if (changed)
        snprintf(safe + n, sizeof safe - n, "-%08x",
                 stele_murmur2(group, strlen(group)));
    size_t len = strlen(dbpath) + strlen(safe) + sizeof "..lock";
    char *path = malloc(len);
    if (path)
        snprintf(path, len, "%s.%s.lock", dbpath, safe);
    return path;
}

static void consumer_free(lsq_consumer *c)
{
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    stele_log_subscription_free(&c->sub);
    free(c->topic_assigned);
    free(c->lock_path);
    stele_log_assignment_free(&c->asg);
    free(c->base.group);
    free(c);
}

int lsq_consumer_new(stele_log *log, const char *group,
                     const char *const *topics, size_t n_topics,
                     const stele_log_rebalance_cb *cb, stele_log_consumer **out,
                     stele_err *err)
{
    lsq_log *l = (lsq_log *)log;
    lsq_consumer *c = calloc(1, sizeof *c);
    if (!c)
        return stele_err_set(err, STELE_ENOMEM, "group '%s'", group);
    c->lock_fd = -1;
    c->base.log = log;
    if (cb)
        c->cb = *cb;
    if (!(c->base.group = strdup(group)) ||
        stele_log_subscription_init(&c->sub, topics, n_topics) ||
        !(c->topic_assigned = calloc(c->sub.n, sizeof *c->topic_assigned)) ||
        !(c->lock_path = lock_path_for(l->realpath, group)))
        goto oom;
    c->n_missing = c->sub.n;
    c->lock_fd = open(c->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (c->lock_fd < 0) {
        int e = errno;
        stele_err_set(err, STELE_EIO, "group '%s': %s: %s", group, c->lock_path,
                      strerror(e));
        consumer_free(c);
        return STELE_EIO;
    }
    *out = &c->base;
    return 0;
oom:
    consumer_free(c);
    return stele_err_set(err, STELE_ENOMEM, "group '%s'", group);
}

/* Assigns the partitions of subscribed topics that exist now and were not
 * assigned yet, each at the group's committed offset, then tells the
 * caller. *changed says whether any were added. */
static int assign_new_topics(lsq_consumer *c, bool *changed, stele_err *err)
{
    lsq_log *l = log_of(c);
    stele_log_assignment *a = &c->asg;
    size_t first = a->n;
    int rc = 0;
    for (size_t i = 0; i < c->sub.n && !rc; i++) {
        if (c->topic_assigned[i])
            continue;
        const lsq_topic *t;
        stele_err lookup;
        rc = lsq_topic_get(l, c->sub.topics[i], &t, &lookup);
        if (rc == STELE_ENOTFOUND) {
            rc = 0; /* not created yet: looked for again on later polls */
            continue;
        }
        if (rc) {
            if (err)
                *err = lookup;
            break;
        }
        if (stele_log_assignment_reserve(a, (size_t)t->partitions)) {
            rc = stele_err_set(err, STELE_ENOMEM, "group '%s': %s",
                               c->base.group, t->name);
            break;
        }
        size_t topic_first = a->n;
        for (int32_t p = 0; p < t->partitions && !rc; p++) {
            stele_log_part *cp = stele_log_assignment_add(a, t, t->name, p, 0);
            rc = lsq_committed_get(l, c->base.group, t, p, &cp->position, err);
        }
        if (rc) { /* keep the assignment all-or-nothing per topic */
            a->n = topic_first;
            break;
        }
        c->topic_assigned[i] = true;
        c->n_missing--;
    }
    *changed = a->n > first;
    if (*changed && c->cb.assigned)
        c->cb.assigned(c->cb.opaque, &c->base, &a->tps[first], a->n - first);
    return rc;
}

/* Takes the group's lock if free; *changed when partitions were added. */
static int try_own(lsq_consumer *c, bool *changed, stele_err *err)
{
    *changed = false;
    if (!c->owner) {
        if (flock(c->lock_fd, LOCK_EX | LOCK_NB) < 0) {
            int e = errno;
            if (e == EWOULDBLOCK || e == EINTR)
                return 0;
            return stele_err_set(err, STELE_EIO, "group '%s': locking %s: %s",
                                 c->base.group, c->lock_path, strerror(e));
        }
        c->owner = true;
    }
    return c->n_missing ? assign_new_topics(c, changed, err) : 0;
}

static int refresh_ends(lsq_consumer *c, stele_err *err)
{
    lsq_log *l = log_of(c);
    sqlite3_stmt *s = l->st[ST_PART_ALL];
    for (size_t i = 0; i < c->asg.n;) {
        const lsq_topic *t = c->asg.parts[i].topic;
        sqlite3_bind_int64(s, 1, t->id);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            int32_t p = sqlite3_column_int(s, 0);
            if (p >= 0 && p < t->partitions)
                c->asg.parts[i + (size_t)p].end = sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
            return lsq_fail(l, rc, err, "group '%s': end offsets of %s",
                            c->base.group, t->name);
        i += (size_t)t->partitions;
    }
    return 0;
}

/* Reads up to max records into b, sharing max fairly among partitions
 * that have data: each round gives every such partition an equal share,
 * starting one partition further each poll. */
static int fetch_rounds(lsq_consumer *c, size_t max, stele_log_batch *b,
                        stele_err *err)
{
    lsq_log *l = log_of(c);
    stele_log_part *parts = c->asg.parts;
    size_t remaining = max, n = c->asg.n;
    while (remaining) {
        size_t active = 0;
        for (size_t i = 0; i < n; i++)
            active += parts[i].position < parts[i].end;
        if (!active)
            break;
        size_t share = remaining / active ? remaining / active : 1;
        bool progressed = false;
        for (size_t k = 0; k < n && remaining; k++) {
            stele_log_part *p = &parts[(c->rr + k) % n];
            if (p->position >= p->end)
                continue;
            size_t want = share < remaining ? share : remaining, got;
            int rc = lsq_read_into(l, p->topic, p->partition, p->position, want,
                                   b, &got, err);
            if (rc)
                return rc;
            if (got)
                p->position = b->records[b->n - 1].offset + 1;
            /* Fewer than asked: this snapshot holds nothing more below the
             * watermark (compacted topics have gaps to skip). */
            if (got < want && p->position < p->end)
                p->position = p->end;
            remaining -= got;
            progressed |= got > 0;
        }
        if (!progressed)
            break;
    }
    c->rr = n ? (c->rr + 1) % n : 0;
    return 0;
}

static int fetch(lsq_consumer *c, size_t max, stele_log_batch *b,
                 stele_err *err)
{
    lsq_log *l = log_of(c);
    /* One read snapshot, so watermarks and records agree. Inside the
     * handle's own write transaction the snapshot is already there. */
    bool snapshot = !l->txn.active;
    int rc = snapshot ? lsq_exec(l, ST_BEGIN, err) : 0;
    if (rc)
        return rc;
    rc = refresh_ends(c, err);
    if (!rc)
        rc = fetch_rounds(c, max, b, err);
    if (snapshot) {
        int end =
            rc ? lsq_exec(l, ST_ROLLBACK, NULL) : lsq_exec(l, ST_COMMIT, err);
        if (end && !rc) {
            lsq_exec(l, ST_ROLLBACK, NULL);
            rc = end;
        }
    }
    return rc;
}

static int data_version(lsq_log *l, int64_t *v, stele_err *err)
{
    sqlite3_stmt *s = l->st[ST_DATA_VERSION];
    int rc = sqlite3_step(s);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 0 : lsq_fail(l, rc, err, "PRAGMA data_version");
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

int lsq_consumer_poll(stele_log_consumer *base, int timeout_ms, size_t max,
                      stele_log_batch **out, stele_err *err)
{
    lsq_consumer *c = (lsq_consumer *)base;
    lsq_log *l = log_of(c);
    stele_log_batch *b = stele_log_batch_create();
    if (!b)
        return stele_err_set(err, STELE_ENOMEM, "group '%s': poll",
                             c->base.group);
    int64_t start = stele_mono_ns();
    int64_t backoff = BACKOFF_FIRST_MS, seen = -1;
    int rc;
    for (;;) {
        bool changed;
        if ((rc = try_own(c, &changed, err)))
            break;
        if (c->owner) {
            /* Another connection's commit bumps data_version; until then
             * there is nothing new to read, so the wait costs one cheap
             * pragma per step. */
            int64_t v;
            if ((rc = data_version(l, &v, err)))
                break;
            if (v != seen || changed) {
                seen = v;
                if ((rc = fetch(c, max, b, err)) || b->n)
                    break;
            }
        }
        int64_t waited_ms = (stele_mono_ns() - start) / 1000000;
        if (timeout_ms >= 0 && waited_ms >= timeout_ms)
            break;
        int64_t nap = backoff;
        if (timeout_ms >= 0 && nap > timeout_ms - waited_ms)
            nap = timeout_ms - waited_ms;
        sleep_ms(nap);
        if (backoff < BACKOFF_MAX_MS)
            backoff =
                backoff * 2 < BACKOFF_MAX_MS ? backoff * 2 : BACKOFF_MAX_MS;
    }
    if (rc) {
        stele_log_batch_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int lsq_consumer_seek(stele_log_consumer *base, const char *topic,
                      int32_t partition, int64_t offset, stele_err *err)
{
    lsq_consumer *c = (lsq_consumer *)base;
    return stele_log_assignment_seek(&c->asg, c->base.group, topic, partition,
                                     offset, err);
}

static int committed_of(void *arg, stele_log_part *p, stele_err *err)
{
    lsq_consumer *c = arg;
    return lsq_committed_get(log_of(c), c->base.group, p->topic, p->partition,
                             &p->position, err);
}

int lsq_consumer_rewind(stele_log_consumer *base, stele_err *err)
{
    lsq_consumer *c = (lsq_consumer *)base;
    return stele_log_assignment_rewind(&c->asg, committed_of, c, err);
}

size_t lsq_consumer_assignment(stele_log_consumer *base,
                               const stele_topic_partition **tps)
{
    lsq_consumer *c = (lsq_consumer *)base;
    return stele_log_assignment_get(&c->asg, tps);
}

int lsq_consumer_check_owner(stele_log_consumer *base, const lsq_topic *t,
                             int32_t partition, stele_err *err)
{
    lsq_consumer *c = (lsq_consumer *)base;
    if (c->owner && stele_log_assignment_find(&c->asg, t->name, partition))
        return 0;
    return stele_err_set(err, STELE_ECONFLICT,
                         "group '%s' does not own %s[%d] in this consumer",
                         c->base.group, t->name, partition);
}

void lsq_consumer_close(stele_log_consumer *base)
{
    lsq_consumer *c = (lsq_consumer *)base;
    if (c->owner && c->asg.n && c->cb.revoked)
        c->cb.revoked(c->cb.opaque, &c->base, c->asg.tps, c->asg.n, false);
    consumer_free(c); /* closing the lock file releases the group */
}
