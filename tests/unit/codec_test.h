/* codec_test.h — the fixture shared by test_codec's files: a temporary
 * folder with a real SQLite log, the embedded registry on it, and a codec
 * over tests/fixtures/schemas/codec. */
#ifndef STELE_TEST_CODEC_H
#define STELE_TEST_CODEC_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "codec/codec.h"
#include "codec/value.h"

#define CODEC_FIXTURES STELE_SOURCE_DIR "/tests/fixtures/schemas/codec"

typedef struct codec_fx {
    char dir[64];
    char log_path[128];
    stele_log *log;
    stele_registry *reg;
    stele_codec *codec;
    stele_host_api api;
} codec_fx;

int codec_fx_setup(void **state);
int codec_fx_teardown(void **state);

/* Removes a folder made by the tests and everything below it. */
void codec_rm_tree(const char *dir);

/* The schema name vN, failing the test if absent. */
const stele_schema *codec_schema(codec_fx *fx, const char *name, int version);

/* A new value of s with its defaults. */
avro_value_t codec_new_value(const stele_schema *s);

/* Parses JSON text, failing the test on error. */
json_t *codec_json(const char *text);

/* Checks that err's message contains needle. */
#define assert_err_has(err, needle)                                            \
    do {                                                                       \
        if (!strstr((err).msg, (needle)))                                      \
            fail_msg("error \"%s\" lacks \"%s\"", (err).msg, (needle));        \
    } while (0)

extern const struct CMUnitTest codec_wire_tests[];
extern const size_t codec_wire_tests_n;
extern const struct CMUnitTest codec_json_tests[];
extern const size_t codec_json_tests_n;
extern const struct CMUnitTest codec_value_tests[];
extern const size_t codec_value_tests_n;

#endif
