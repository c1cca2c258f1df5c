/*
 * log_conformance.h — the behaviour every log backend must show, written
 * only against log.h. A backend's test program describes how to get a
 * fresh log and calls log_conformance_run.
 */
#ifndef STELE_TEST_LOG_CONFORMANCE_H
#define STELE_TEST_LOG_CONFORMANCE_H

#include <stdbool.h>

#include "log/log.h"

typedef struct log_conformance_backend {
    const char *name;
    /* Prepares an empty log for one test; *fixture is passed back. */
    int (*setup)(void **fixture);
    /* Opens a new handle on the fixture's log; called one or more times
     * per test (a second handle, a reopen after close). */
    int (*open)(void *fixture, stele_log **out, stele_err *err);
    /* Removes what setup made. */
    void (*teardown)(void *fixture);
    /* Offsets grow by exactly one per committed record (the embedded
     * logs). Kafka's transaction markers take offsets, so there offsets
     * only increase. */
    bool dense_offsets;
    /* stele_log_delete_before deletes records (the embedded logs); Kafka
     * leaves retention to the broker and deletes nothing. */
    bool deletes_records;
    /* How long a poll may wait for assignment or data, in ms. */
    int poll_timeout_ms;
    /* Prefix of every topic and group name (NULL: "conf-<pid>-"). A
     * shared broker keeps topics across runs, so its backend passes one
     * unique to the run. */
    const char *name_prefix;
} log_conformance_backend;

/* OK(call): a log call that must succeed, failing the running cmocka test
 * with its status and message otherwise. Inside OK(), pass E as the
 * stele_err argument. */
#define OK(call)                                                               \
    do {                                                                       \
        stele_err ok_err_ = {0};                                               \
        (void)ok_err_;                                                         \
        int ok_rc_ = (call);                                                   \
        if (ok_rc_)                                                            \
            fail_msg("%s -> %d: %s", #call, ok_rc_, ok_err_.msg);              \
    } while (0)
#define E (&ok_err_)

/* Runs the suite as one cmocka group; returns the number of failures. */
int log_conformance_run(const log_conformance_backend *backend);

/* Helpers that assert, for the backends' own tests too: a topic made if
 * absent, a record of NUL-terminated key and value (NULL: none), one
 * produced outside a transaction. */
void lc_ensure(stele_log *log, const char *name, int32_t parts, bool compacted);
stele_log_record lc_kv(const char *key, const char *value);
void lc_produce(stele_log *log, const char *topic, int32_t part,
                const char *key, const char *value);

#endif
