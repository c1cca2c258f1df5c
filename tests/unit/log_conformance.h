/*
 * log_conformance.h — the behaviour every log backend must show, written
 * only against log.h. A backend's test program describes how to get a
 * fresh log and calls log_conformance_run.
 */
#ifndef STELE_TEST_LOG_CONFORMANCE_H
#define STELE_TEST_LOG_CONFORMANCE_H

#include <stdbool.h>

#include "log/log.h"

/* What a backend that keeps its records in SQL tables (the embedded
 * logs) lets the suite do to them behind the log's back, for the tests
 * of stored records gone bad. The calls assert. */
typedef struct log_conformance_raw {
    /* Flips the lowest bit of the last byte of column ("key", "value" or
     * "headers", not empty) of the stored record topic[partition]@offset. */
    void (*flip)(void *fixture, const char *topic, int32_t partition,
                 int64_t offset, const char *column);
    /* Sets that record's stored checksum to NULL, as in a row stored
     * before records carried one. */
    void (*uncheck)(void *fixture, const char *topic, int32_t partition,
                    int64_t offset);
    /* Makes by hand, apart from the fixture's log, a log of the schema
     * before checksums (version 1) holding, at offset 0 of partition 0,
     * the record key "k", value "v", header "h" = "1" in the normal topic
     * topic and in the compacted topic compacted (one partition each). */
    void (*make_old)(void *fixture, const char *topic, const char *compacted);
    /* Opens a handle on that log; called more than once per test. */
    int (*open_old)(void *fixture, stele_log **out, stele_err *err);
    /* Removes what make_old made, its handles closed. */
    void (*remove_old)(void *fixture);
} log_conformance_raw;

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
    /* NULL: the backend's stored records cannot be reached (Kafka), and
     * the tests that alter them are skipped. */
    const log_conformance_raw *raw;
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
