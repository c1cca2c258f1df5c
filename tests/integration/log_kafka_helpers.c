/* test_log_kafka.c's shared state and helpers (log_kafka_test.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "log_kafka_test.h"

const char *lkt_bootstrap;
char lkt_run_prefix[32];
unsigned lkt_open_counter;

/* A new handle; id NULL gives it a transactional.id of its own. */
int lkt_open_log(const char *txn_id, stele_log **out, stele_err *err)
{
    char id[96];
    snprintf(id, sizeof id, "%stxn-%u", lkt_run_prefix, ++lkt_open_counter);
    const char *keys[] = {"bootstrap.servers", "transactional.id"};
    const char *values[] = {lkt_bootstrap, txn_id ? txn_id : id};
    return stele_log_open_kafka(keys, values, 2, NULL, out, err);
}

static unsigned lkt_test_counter;
char lkt_test_prefix[64];

const char *lkt_N(ctx *c, const char *base)
{
    char *buf = c->names[c->next_name++ % 8];
    snprintf(buf, sizeof c->names[0], "%s%s", lkt_test_prefix, base);
    return buf;
}

int lkt_setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    stele_err err = {0};
    snprintf(lkt_test_prefix, sizeof lkt_test_prefix, "%sk%u-", lkt_run_prefix,
             ++lkt_test_counter);
    if (!c || lkt_open_log(NULL, &c->log, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

int lkt_teardown(void **state)
{
    ctx *c = *state;
    stele_log_close(c->log);
    free(c);
    return 0;
}

size_t lkt_count(stele_log *log, const char *topic, int32_t part)
{
    stele_log_batch *b = NULL;
    OK(stele_log_read(log, topic, part, 0, 100000, &b, E));
    size_t n = b->n;
    stele_log_batch_free(b);
    return n;
}

void lkt_assert_latest(stele_log *log, const char *topic, const char *key,
                       const char *want)
{
    stele_log_batch *b = NULL;
    stele_err err = {0};
    int rc = stele_log_get_latest(log, topic, -1, key, strlen(key), &b, &err);
    if (!want) {
        if (rc != STELE_ENOTFOUND)
            fail_msg("get_latest %s: want not found, got %d (%s)", key, rc,
                     err.msg);
        assert_null(b);
        return;
    }
    if (rc)
        fail_msg("get_latest %s -> %d: %s", key, rc, err.msg);
    assert_int_equal(b->n, 1);
    assert_int_equal(b->records[0].value_len, strlen(want));
    assert_memory_equal(b->records[0].value, want, strlen(want));
    stele_log_batch_free(b);
}
