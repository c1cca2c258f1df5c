/*
 * test_common.c — host/common: CRC-32C against the published vectors
 * (RFC 3720 B.4 and the "123456789" check value), in pieces as whole, and
 * the instruction path against the tables and a bit-at-a-time reference
 * over random lengths and alignments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/logline.h"
#include "common/text.h"

/* One bit at a time, straight from the definition. */
static uint32_t crc_reference(const unsigned char *p, size_t len)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static void expect_both(const void *buf, size_t len, uint32_t want)
{
    assert_int_equal(stele_crc32c(0, buf, len), want);
    assert_int_equal(stele_crc32c_portable(0, buf, len), want);
}

/* Bytes that are not UTF-8 become U+FFFD, each one; the rest is kept. */
static void test_utf8_repair_replaces_each_bad_byte(void **state)
{
    (void)state;
    char *s = stele_text_utf8_repair("a\xff\xfe"
                                     "b\xc3\xa9"
                                     "\xe2\x82");
    assert_non_null(s);
    assert_string_equal(s, "a\xef\xbf\xbd\xef\xbf\xbd"
                           "b\xc3\xa9"
                           "\xef\xbf\xbd\xef\xbf\xbd");
    assert_true(stele_text_utf8_valid(s, strlen(s)));
    free(s);
    s = stele_text_utf8_repair("");
    assert_string_equal(s, "");
    free(s);
}

/* Runs one logline with stderr in a file; returns what it wrote. */
static char *logged(int level, const stele_log_fields *f, const char *msg)
{
    char path[] = "/tmp/stele-logline-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    stele_logline(level, f, "%s", msg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    static char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* logging.format: json writes one object per line with what the line is
 * about; a message with bytes that are not UTF-8 is still valid JSON; the
 * text format is the terminal's line. */
static void test_log_lines_as_json_carry_their_fields(void **state)
{
    (void)state;
    stele_log_fields f = {.component = "engine",
                          .aggregate_type = "Account",
                          .aggregate_id = "acc-1",
                          .command_id = "cmd-\xff"};
    stele_logline_json(true);
    char *line = logged(1, &f, "dead-lettered: \xfe bad");
    stele_logline_json(false);
    assert_non_null(strchr(line, '\n'));
    assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
    json_error_t jerr;
    json_t *o = json_loads(line, 0, &jerr);
    if (!o)
        fail_msg("not JSON: %s (%s)", line, jerr.text);
    assert_string_equal(json_string_value(json_object_get(o, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(o, "component")),
                        "engine");
    assert_string_equal(json_string_value(json_object_get(o, "aggregate_id")),
                        "acc-1");
    assert_string_equal(json_string_value(json_object_get(o, "command_id")),
                        "cmd-\xef\xbf\xbd");
    assert_non_null(
        strstr(json_string_value(json_object_get(o, "msg")), "dead-lettered"));
    const char *t = json_string_value(json_object_get(o, "time"));
    assert_non_null(t);
    assert_int_equal(strlen(t), 24); /* 2026-12-03T18:00:00.123Z */
    assert_int_equal(t[23], 'Z');
    assert_null(json_object_get(o, "correlation_id")); /* not given */
    json_decref(o);
    line = logged(2, &f, "started");
    assert_string_equal(line, "stele info: started\n");
}

static void test_crc32c_matches_published_vectors(void **state)
{
    (void)state;
    unsigned char b[48];
    memset(b, 0, 32);
    expect_both(b, 32, 0x8A9136AAu);
    memset(b, 0xff, 32);
    expect_both(b, 32, 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)i;
    expect_both(b, 32, 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)(31 - i);
    expect_both(b, 32, 0x113FDB5Cu);
    /* an iSCSI read command PDU */
    static const unsigned char pdu[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    expect_both(pdu, sizeof pdu, 0xD9963A56u);
    expect_both("123456789", 9, 0xE3069283u);
    expect_both(NULL, 0, 0);
}

static void test_crc32c_in_pieces_equals_whole(void **state)
{
    (void)state;
    const char *s = "The quick brown fox jumps over the lazy dog, twice over.";
    size_t n = strlen(s);
    uint32_t whole = stele_crc32c(0, s, n);
    assert_int_equal(whole, crc_reference((const unsigned char *)s, n));
    for (size_t cut = 0; cut <= n; cut++) {
        assert_int_equal(
            stele_crc32c(stele_crc32c(0, s, cut), s + cut, n - cut), whole);
        assert_int_equal(stele_crc32c_portable(stele_crc32c_portable(0, s, cut),
                                               s + cut, n - cut),
                         whole);
    }
}

/* xorshift64*: the same bytes every run */
static uint64_t next_random(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545F4914F6CDD1Dull;
}

static void test_crc32c_paths_agree_at_any_length_and_alignment(void **state)
{
    (void)state;
    static unsigned char buf[4096 + 16];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)next_random(&x);
    print_message("crc32c: %s\n", stele_crc32c_hardware()
                                      ? "the SSE4.2 instruction"
                                      : "tables only (no SSE4.2)");
    for (int i = 0; i < 3000; i++) {
        size_t at = next_random(&x) % 16;
        size_t len = i < 64 ? (size_t)i : next_random(&x) % 4097;
        uint32_t want = crc_reference(buf + at, len);
        assert_int_equal(stele_crc32c(0, buf + at, len), want);
        assert_int_equal(stele_crc32c_portable(0, buf + at, len), want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_repair_replaces_each_bad_byte),
        cmocka_unit_test(test_log_lines_as_json_carry_their_fields),
        cmocka_unit_test(test_crc32c_matches_published_vectors),
        cmocka_unit_test(test_crc32c_in_pieces_equals_whole),
        cmocka_unit_test(test_crc32c_paths_agree_at_any_length_and_alignment),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
