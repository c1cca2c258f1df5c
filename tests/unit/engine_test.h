/* engine_test.h — the fixture shared by test_engine's files: a temporary
 * folder with the bank example on the embedded log and store, and the
 * helpers that submit commands and read what they did. */
#ifndef STELE_TEST_ENGINE_H
#define STELE_TEST_ENGINE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "config/config.h"
#include "engine/engine.h"

#define PLUGINS STELE_BUILD_DIR "/plugins/"
#define TEST_PLUGINS STELE_BUILD_DIR "/test-plugins/"

typedef struct fixture {
    char dir[256];
    char config[300];
    stele_config *cfg;
    stele_engine *e;
    /* engine.isolation; NULL: STELE_TEST_ISOLATION's, else none */
    const char *isolation;
} fixture;

extern const char *const bank_plugins[];

/* The config file for plugins (the bank example's settings). */
void write_config(fixture *f, const char *const *plugins);
void open_with(fixture *f, const char *const *plugins);
void close_engine(fixture *f);
/* cmocka setup and teardown: the bank example in a new folder. */
int setup(void **state);
int teardown(void **state);

/* Submits a command (printf-style JSON) and returns its result (the
 * caller decrefs). */
json_t *send_cmd(fixture *f, const char *fmt, ...);
/* Submits a command without waiting for its result. */
void submit_only(fixture *f, const char *json);
void open_account(fixture *f, const char *id, long long initial);

const char *jstr(json_t *o, const char *key);
long long jint(json_t *o, const char *key);
void expect_status(json_t *r, const char *status, const char *code);
size_t count_events(fixture *f, const char *id);
/* A stele_engine_events callback: counts into *(size_t *)opaque (when not
 * NULL) and frees the event. */
void listed_event(void *opaque, json_t *ev);
/* The end offset of topic[partition] in the embedded log at log_path. */
int64_t log_end(const char *log_path, const char *topic, int32_t partition);

/* The account's balance in the balances read model; -1 when absent. */
long long balance_of(stele_engine *e, const char *id);
json_t *status_of(stele_engine *e);
/* "lag" of the entry of array key named name (under field). */
long long lag_of(json_t *st, const char *key, const char *field,
                 const char *name);

/* engine_isolation_tests.c */
void test_worker_decides_exactly_as_the_host_does(void **state);
#define ENGINE_ISOLATION_TESTS T(test_worker_decides_exactly_as_the_host_does)

/* engine_retention_tests.c */
void test_expire_deletes_processed_commands_only(void **state);
void test_results_are_kept_for_the_idempotency_window(void **state);
#define ENGINE_RETENTION_TESTS                                                 \
    T(test_expire_deletes_processed_commands_only),                            \
        T(test_results_are_kept_for_the_idempotency_window)

/* engine_projector_faults_tests.c */
void test_failed_projection_batch_writes_nothing(void **state);
void test_failing_projector_does_not_hold_up_the_others(void **state);
void test_projector_retry_backs_off_to_a_cap(void **state);
void test_run_isolates_and_recovers_a_failing_projector(void **state);
#define ENGINE_PROJECTOR_FAULT_TESTS                                           \
    T(test_failed_projection_batch_writes_nothing),                            \
        T(test_failing_projector_does_not_hold_up_the_others),                 \
        cmocka_unit_test(test_projector_retry_backs_off_to_a_cap),             \
        T(test_run_isolates_and_recovers_a_failing_projector)

/* engine_routing_tests.c */
void test_misrouted_commands_are_forwarded_to_their_partition(void **state);
void test_misrouted_commands_are_rejected_when_configured(void **state);
#define ENGINE_ROUTING_TESTS                                                   \
    T(test_misrouted_commands_are_forwarded_to_their_partition),               \
        T(test_misrouted_commands_are_rejected_when_configured)

/* engine_bad_data_tests.c */
void test_state_with_unreadable_version_is_rebuilt(void **state);
void test_events_that_cannot_be_shown_are_named(void **state);
void test_records_with_corrupt_headers_cost_only_themselves(void **state);
void test_state_that_does_not_decode_is_rebuilt(void **state);
void test_records_whose_checksum_fails_cost_only_themselves(void **state);
#define ENGINE_BAD_DATA_TESTS                                                  \
    T(test_state_with_unreadable_version_is_rebuilt),                          \
        T(test_events_that_cannot_be_shown_are_named),                         \
        T(test_records_with_corrupt_headers_cost_only_themselves),             \
        T(test_state_that_does_not_decode_is_rebuilt),                         \
        T(test_records_whose_checksum_fails_cost_only_themselves)

/* engine_quarantine_tests.c */
void test_aggregate_with_unreadable_event_is_broken_alone(void **state);
void test_projector_parks_an_unreadable_event_alone(void **state);
void test_event_without_headers_is_named_not_defaulted(void **state);
void test_damaged_result_is_named_not_parsed(void **state);
#define ENGINE_QUARANTINE_TESTS                                                \
    T(test_aggregate_with_unreadable_event_is_broken_alone),                   \
        T(test_projector_parks_an_unreadable_event_alone),                     \
        T(test_event_without_headers_is_named_not_defaulted),                  \
        T(test_damaged_result_is_named_not_parsed)

/* engine_gate_tests.c */
void test_shipped_example_passes_its_gate_after_commands(void **state);
void test_reading_registers_nothing_and_writing_is_gated(void **state);
void test_deployed_version_edited_in_place_is_refused(void **state);
void test_without_auto_register_writers_need_registered_schemas(void **state);
void test_undeclared_event_type_says_no_upcaster_reads_it(void **state);
void test_event_whose_id_names_another_type_is_refused(void **state);
#define ENGINE_GATE_TESTS                                                      \
    T(test_shipped_example_passes_its_gate_after_commands),                    \
        T(test_reading_registers_nothing_and_writing_is_gated),                \
        T(test_deployed_version_edited_in_place_is_refused),                   \
        T(test_without_auto_register_writers_need_registered_schemas),         \
        T(test_undeclared_event_type_says_no_upcaster_reads_it),               \
        T(test_event_whose_id_names_another_type_is_refused)

#endif
