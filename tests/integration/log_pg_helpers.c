/* test_log_pg.c's helpers (log_pg_test.h). */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "common_pg.h"
#include "log_pg_test.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static unsigned serial;

/* A name unique to this run and call. */
const char *lpt_uniq(char *buf, size_t n, const char *base)
{
    snprintf(buf, n, "pg-%d-%u-%s", (int)getpid(), ++serial, base);
    return buf;
}

stele_log *lpt_open_log(void)
{
    stele_log *l = NULL;
    OK(stele_log_open_postgres(lpt_conninfo, &l, E));
    return l;
}

size_t lpt_owned(stele_log_consumer *c)
{
    const stele_topic_partition *tps;
    return stele_log_consumer_assignment(c, &tps);
}

/* Polls (records are not expected) until c owns n partitions; bounded. */
void lpt_poll_until_owns(stele_log_consumer *c, size_t n)
{
    for (int i = 0; i < 300 && lpt_owned(c) != n; i++) {
        stele_log_batch *b = NULL;
        OK(stele_log_consumer_poll(c, 50, 10, &b, E));
        stele_log_batch_free(b);
    }
    assert_int_equal(lpt_owned(c), n);
}

int64_t lpt_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void lpt_on_assigned(void *opaque, stele_log_consumer *c,
                     const stele_topic_partition *tps, size_t n)
{
    (void)c, (void)tps;
    ((rebalance_log *)opaque)->assigned_n += n;
}

void lpt_on_revoked(void *opaque, stele_log_consumer *c,
                    const stele_topic_partition *tps, size_t n, bool lost)
{
    rebalance_log *r = opaque;
    (void)c, (void)tps;
    r->revoked_n += n;
    if (lost)
        r->lost_n += n;
}
