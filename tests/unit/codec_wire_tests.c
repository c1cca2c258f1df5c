/* codec_wire_tests.c — the wire format: round trips, malformed input
 * (bad magic, unknown id, truncated, trailing bytes, hostile lengths),
 * a fixed-seed mutation fuzz, and writer -> reader resolution. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_test.h"

static void deposit(codec_fx *fx, avro_value_t *v, const char *account,
                    int64_t amount)
{
    stele_value sv = stele_value_wrap(v);
    assert_int_equal(
        fx->api.set_string(&sv, "account", account, strlen(account)), 0);
    assert_int_equal(fx->api.set_long(&sv, "amount", amount), 0);
}

static void encode_ok(codec_fx *fx, const stele_schema *s, avro_value_t *v,
                      stele_buf *buf)
{
    stele_err err = {0};
    if (stele_codec_encode(fx->codec, s, v, buf, &err))
        fail_msg("encode: %s", err.msg);
}

static void test_wire_round_trip_keeps_value_and_header(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    const stele_schema *s = codec_schema(fx, "test.Deposited", 1);
    avro_value_t v = codec_new_value(s), out = codec_new_value(s);
    deposit(fx, &v, "acc-1", -123456789012LL);
    stele_value sv = stele_value_wrap(&v);
    assert_int_equal(fx->api.set_string(&sv, "memo", "hi", 2), 0);
    stele_buf buf = {0};
    encode_ok(fx, s, &v, &buf);
    const unsigned char *h = (const unsigned char *)buf.data;
    assert_int_equal(h[0], 0);
    int32_t id;
    assert_int_equal(stele_codec_wire_id(buf.data, buf.len, &id, &err), 0);
    assert_int_equal(id, s->id);
    assert_int_equal(((int32_t)h[1] << 24) | (h[2] << 16) | (h[3] << 8) | h[4],
                     s->id);
    assert_int_equal(
        stele_codec_decode(fx->codec, buf.data, buf.len, s, &out, &err), 0);
    assert_true(avro_value_equal(&v, &out));
    stele_buf_free(&buf);
    avro_value_decref(&v);
    avro_value_decref(&out);
}

static void test_wire_round_trip_of_every_kind_and_defaults(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    const char *names[] = {"test.Everything", "test.Order", "test.Node"};
    for (size_t i = 0; i < 3; i++) {
        const stele_schema *s = codec_schema(fx, names[i], 1);
        avro_value_t v = codec_new_value(s), out = codec_new_value(s);
        stele_buf buf = {0};
        encode_ok(fx, s, &v, &buf); /* a new value is always encodable */
        assert_int_equal(
            stele_codec_decode(fx->codec, buf.data, buf.len, s, &out, &err), 0);
        assert_true(avro_value_equal(&v, &out));
        stele_buf_free(&buf);
        avro_value_decref(&v);
        avro_value_decref(&out);
    }
}

static void test_encode_grows_the_buffer_for_large_values(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    const stele_schema *s = codec_schema(fx, "test.Deposited", 1);
    avro_value_t v = codec_new_value(s), out = codec_new_value(s);
    size_t n = 300000;
    char *big = malloc(n);
    memset(big, 'x', n);
    stele_value sv = stele_value_wrap(&v);
    assert_int_equal(fx->api.set_string(&sv, "account", big, n), 0);
    stele_buf buf = {0};
    encode_ok(fx, s, &v, &buf);
    assert_true(buf.len > n);
    assert_int_equal(
        stele_codec_decode(fx->codec, buf.data, buf.len, s, &out, &err), 0);
    const char *p;
    size_t len;
    stele_value so = stele_value_wrap(&out);
    assert_int_equal(fx->api.get_string(&so, "account", &p, &len), 0);
    assert_int_equal(len, n);
    /* the buffer is reused for a small value */
    deposit(fx, &v, "a", 1);
    encode_ok(fx, s, &v, &buf);
    assert_true(buf.len < 16);
    free(big);
    stele_buf_free(&buf);
    avro_value_decref(&v);
    avro_value_decref(&out);
}

static void test_encode_refuses_value_of_another_schema(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    const stele_schema *s = codec_schema(fx, "test.Deposited", 1);
    const stele_schema *o = codec_schema(fx, "test.Order", 1);
    avro_value_t v = codec_new_value(o);
    stele_buf buf = {0};
    assert_int_equal(stele_codec_encode(fx->codec, s, &v, &buf, &err),
                     STELE_EINVAL);
    assert_err_has(err, "another schema");
    /* a value built without the codec, its union unset, is refused */
    avro_value_t raw;
    assert_int_equal(avro_generic_value_new(s->iface, &raw), 0);
    assert_int_equal(stele_codec_encode(fx->codec, s, &raw, &buf, &err),
                     STELE_EINVAL);
    stele_buf_free(&buf);
    avro_value_decref(&raw);
    avro_value_decref(&v);
}

/* A wire value of s built by hand: header + payload. */
static size_t wire(const stele_schema *s, const char *payload, size_t n,
                   char *out)
{
    out[0] = 0;
    out[1] = (char)(s->id >> 24);
    out[2] = (char)(s->id >> 16);
    out[3] = (char)(s->id >> 8);
    out[4] = (char)s->id;
    memcpy(out + 5, payload, n);
    return n + 5;
}

static void expect_decode_fails(codec_fx *fx, const stele_schema *s,
                                const char *data, size_t len, int code,
                                const char *needle)
{
    stele_err err = {0};
    avro_value_t out = codec_new_value(s);
    int rc = stele_codec_decode(fx->codec, data, len, s, &out, &err);
    if (rc != code)
        fail_msg("decode gave %d (%s), expected %d", rc, err.msg, code);
    assert_err_has(err, needle);
    avro_value_decref(&out);
}

static void test_decode_rejects_bad_header_and_unknown_id(void **state)
{
    codec_fx *fx = *state;
    const stele_schema *s = codec_schema(fx, "test.Deposited", 1);
    char d[64];
    size_t n = wire(s,
                    "\x02"
                    "a\x02\x00\x00",
                    5, d);
    d[0] = 1;
    expect_decode_fails(fx, s, d, n, STELE_EINVAL, "magic byte 0x01");
    expect_decode_fails(fx, s, "\0\0\0", 3, STELE_EINVAL, "header");
    expect_decode_fails(fx, s, NULL, 0, STELE_EINVAL, "header");
    d[0] = 0;
    d[3] = 0x7f; /* id 0x7f00 + x */
    expect_decode_fails(fx, s, d, n, STELE_ENOTFOUND, "unknown schema id");
}

static void
test_decode_rejects_truncated_trailing_and_hostile_lengths(void **state)
{
    codec_fx *fx = *state;
    const stele_schema *s = codec_schema(fx, "test.Deposited", 1);
    char d[64];
    /* account "a", amount 1, memo null, kind CASH */
    const char good[] = "\x02"
                        "a"
                        "\x02"
                        "\x00"
                        "\x00";
    size_t n = wire(s, good, 5, d);
    stele_err err = {0};
    avro_value_t out = codec_new_value(s);
    assert_int_equal(stele_codec_decode(fx->codec, d, n, s, &out, &err), 0);
    avro_value_decref(&out);

    for (size_t cut = 5; cut < n; cut++)
        expect_decode_fails(fx, s, d, cut, STELE_EINVAL, "truncated");
    d[n] = 0x00;
    expect_decode_fails(fx, s, d, n + 1, STELE_EINVAL, "trailing");
    /* string length -1, and -2^31 */
    n = wire(s, "\x01", 1, d);
    expect_decode_fails(fx, s, d, n, STELE_EINVAL, "negative length");
    n = wire(s, "\xff\xff\xff\xff\x0f", 5, d);
    expect_decode_fails(fx, s, d, n, STELE_EINVAL, "negative length");
    /* string length 2^31-1 with 1 byte behind it */
    n = wire(s,
             "\xfe\xff\xff\xff\x0f"
             "a",
             6, d);
    expect_decode_fails(fx, s, d, n, STELE_EINVAL, "over the limit");
    /* string length 1000 with 1 byte behind it */
    n = wire(s,
             "\xd0\x0f"
             "a",
             3, d);
    expect_decode_fails(fx, s, d, n, STELE_EINVAL, "truncated");
    /* an 11-byte varint */
    n = wire(s,
             "\x02"
             "a"
             "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
             13, d);
    expect_decode_fails(fx, s, d, n, STELE_EINVAL, "varint");
    /* union branch 5 of 2, enum symbol 9 of 2 */
    n = wire(s,
             "\x02"
             "a\x02\x0a\x00",
             5, d);
    expect_decode_fails(fx, s, d, n, STELE_EINVAL, "union: branch 5");
    n = wire(s,
             "\x02"
             "a\x02\x00\x12",
             5, d);
    expect_decode_fails(fx, s, d, n, STELE_EINVAL, "enum: symbol index 9");

    /* an array claiming 2^62 items, and a negative block count with a
     * size larger than the input */
    const stele_schema *o = codec_schema(fx, "test.Order", 1);
    n = wire(o,
             "\x02"
             "a"
             "\xfe\xff\xff\xff\xff\xff\xff\xff\x7f",
             11, d);
    expect_decode_fails(fx, o, d, n, STELE_EINVAL, "items cannot fit");
    n = wire(o,
             "\x02"
             "a"
             "\x01\xfe\xff\xff\x0f",
             7, d);
    expect_decode_fails(fx, o, d, n, STELE_EINVAL, "block size");
}

static void test_failed_decode_leaves_no_partial_value(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    const stele_schema *s = codec_schema(fx, "test.Deposited", 1);
    avro_value_t v = codec_new_value(s), out = codec_new_value(s);
    deposit(fx, &v, "first", 5);
    stele_buf buf = {0};
    encode_ok(fx, s, &v, &buf);
    assert_int_equal(
        stele_codec_decode(fx->codec, buf.data, buf.len, s, &out, &err), 0);
    /* the same bytes with the last one (the enum) corrupted */
    buf.data[buf.len - 1] = 0x7e;
    assert_int_equal(
        stele_codec_decode(fx->codec, buf.data, buf.len, s, &out, &err),
        STELE_EINVAL);
    const char *p;
    size_t len;
    int64_t amount;
    stele_value so = stele_value_wrap(&out);
    assert_int_equal(fx->api.get_string(&so, "account", &p, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(fx->api.get_long(&so, "amount", &amount), 0);
    assert_int_equal(amount, 0);
    stele_buf_free(&buf);
    avro_value_decref(&v);
    avro_value_decref(&out);
}

static uint64_t rnd_state;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static void fuzz_one(codec_fx *fx, const stele_schema *s, const char *json,
                     int iterations)
{
    stele_err err = {0};
    avro_value_t v = codec_new_value(s), out = codec_new_value(s);
    json_t *j = codec_json(json);
    if (stele_codec_from_json(s, j, &v, &err))
        fail_msg("%s", err.msg);
    json_decref(j);
    stele_buf good = {0}, re = {0};
    encode_ok(fx, s, &v, &good);
    char *m = malloc(good.len + 16);
    int ok = 0;
    for (int it = 0; it < iterations; it++) {
        size_t len = good.len;
        memcpy(m, good.data, len);
        int edits = 1 + (int)(rnd() % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = 5 + rnd() % (len - 5);
            switch (rnd() % 5) {
            case 0: m[at] = (char)rnd(); break;
            case 1: m[at] ^= (char)(1u << (rnd() % 8)); break;
            case 2: m[at] = (char)(rnd() % 2 ? 0xff : 0x01); break;
            case 3: len = at > 5 ? at : len; break; /* truncate */
            case 4:
                if (len < good.len + 16)
                    m[len++] = (char)rnd(); /* append */
                break;
            }
        }
        int rc = stele_codec_decode(fx->codec, m, len, s, &out, &err);
        if (rc == 0) {
            ok++;
            encode_ok(fx, s, &out, &re); /* what decodes re-encodes */
        } else {
            assert_int_equal(rc, STELE_EINVAL);
            assert_true(err.msg[0] != '\0');
        }
    }
    assert_true(ok < iterations); /* the mutations did hit */
    free(m);
    stele_buf_free(&good);
    stele_buf_free(&re);
    avro_value_decref(&v);
    avro_value_decref(&out);
}

static void test_decode_fuzz_mutations_never_crash(void **state)
{
    codec_fx *fx = *state;
    rnd_state = 0x5eed5eed12345678ull;
    fuzz_one(fx, codec_schema(fx, "test.Everything", 1),
             "{\"id\": \"x\", \"tally\": 3, \"memo\": \"m\", \"tags\": "
             "[\"p\"], \"owner\": {\"ref\": 4}, \"hash\": \"abcd\", "
             "\"pick\": null, \"shade\": \"BLUE\", \"owners\": [{\"ref\": "
             "null}, {\"name\": \"n\", \"ref\": 2}], \"limits\": {\"a\": 1, "
             "\"b\": 2}, "
             "\"extra\": {\"test.Owner\": {\"name\": \"o\", \"ref\": 9}}}",
             4000);
    fuzz_one(fx, codec_schema(fx, "test.Order", 1),
             "{\"id\": \"o1\", \"items\": [{\"sku\": \"a\"}, {\"sku\": \"b\", "
             "\"qty\": 3, \"note\": \"n\"}], \"payment\": {\"test.Transfer\": "
             "{\"iban\": \"DE00\", \"bic\": \"X\"}}, \"amount\": {\"double\": "
             "1.5}, \"digest\": {\"bytes\": \"\\u00ff\"}}",
             4000);
    fuzz_one(fx, codec_schema(fx, "test.Node", 1),
             "{\"value\": 1, \"next\": {\"value\": 2, \"next\": {\"value\": "
             "3, \"next\": null}}}",
             2000);
}

static void test_resolution_skips_writer_field_the_reader_lacks(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    const stele_schema *v1 = codec_schema(fx, "test.Deposited", 1);
    const stele_schema *v2 = codec_schema(fx, "test.Deposited", 2);
    avro_value_t w = codec_new_value(v2), r = codec_new_value(v1);
    deposit(fx, &w, "acc", 77);
    stele_value sw = stele_value_wrap(&w);
    assert_int_equal(fx->api.set_string(&sw, "channel", "web", 3), 0);
    assert_int_equal(fx->api.set_enum(&sw, "kind", "WIRE"), 0);
    stele_buf buf = {0};
    encode_ok(fx, v2, &w, &buf);
    for (int twice = 0; twice < 2; twice++) { /* the resolver is cached */
        assert_int_equal(
            stele_codec_decode(fx->codec, buf.data, buf.len, v1, &r, &err), 0);
        stele_value sr = stele_value_wrap(&r);
        int64_t amount;
        const char *kind;
        assert_int_equal(fx->api.get_long(&sr, "amount", &amount), 0);
        assert_int_equal(amount, 77);
        assert_int_equal(fx->api.get_enum(&sr, "kind", &kind), 0);
        assert_string_equal(kind, "WIRE");
        bool null;
        assert_int_equal(fx->api.is_null(&sr, "channel", &null),
                         STELE_ENOTFOUND);
    }
    stele_buf_free(&buf);
    avro_value_decref(&w);
    avro_value_decref(&r);
}

static void test_resolution_fills_reader_field_missing_from_writer(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    const stele_schema *v1 = codec_schema(fx, "test.Deposited", 1);
    const stele_schema *v2 = codec_schema(fx, "test.Deposited", 2);
    avro_value_t w = codec_new_value(v1), r = codec_new_value(v2);
    deposit(fx, &w, "acc", 1);
    stele_buf buf = {0};
    encode_ok(fx, v1, &w, &buf);
    stele_value sr = stele_value_wrap(&r);
    /* a previous value's channel must not survive: the default replaces it */
    assert_int_equal(fx->api.set_string(&sr, "channel", "old", 3), 0);
    assert_int_equal(
        stele_codec_decode(fx->codec, buf.data, buf.len, v2, &r, &err), 0);
    bool null = false;
    int64_t amount;
    assert_int_equal(fx->api.is_null(&sr, "channel", &null), 0);
    assert_true(null);
    assert_int_equal(fx->api.get_long(&sr, "amount", &amount), 0);
    assert_int_equal(amount, 1);
    stele_buf_free(&buf);
    avro_value_decref(&w);
    avro_value_decref(&r);
}

static void test_decode_with_writer_schema_fetched_by_id(void **state)
{
    codec_fx *fx = *state;
    stele_err err = {0};
    const stele_schema *v1 = codec_schema(fx, "test.Deposited", 1);
    /* another writer, known only to the registry: int amount, extra field */
    const char *text =
        "{\"type\":\"record\",\"name\":\"test.Deposited\",\"fields\":["
        "{\"name\":\"account\",\"type\":\"string\"},"
        "{\"name\":\"amount\",\"type\":\"int\"},"
        "{\"name\":\"extra\",\"type\":\"string\"},"
        "{\"name\":\"memo\",\"type\":[\"null\",\"string\"]},"
        "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"Kind\","
        "\"symbols\":[\"CASH\",\"WIRE\"]}}]}";
    int32_t id;
    assert_int_equal(
        stele_registry_register(fx->reg, "legacy", text, &id, &err), 0);
    char d[64];
    /* account "ab", amount int 21, extra "zz", memo null, kind WIRE */
    const char payload[] = "\x04"
                           "ab"
                           "\x2a"
                           "\x04"
                           "zz"
                           "\x00"
                           "\x02";
    d[0] = 0;
    d[1] = (char)(id >> 24);
    d[2] = (char)(id >> 16);
    d[3] = (char)(id >> 8);
    d[4] = (char)id;
    memcpy(d + 5, payload, sizeof payload - 1);
    avro_value_t r = codec_new_value(v1);
    assert_int_equal(
        stele_codec_decode(fx->codec, d, 5 + sizeof payload - 1, v1, &r, &err),
        0);
    stele_value sr = stele_value_wrap(&r);
    int64_t amount;
    assert_int_equal(fx->api.get_long(&sr, "amount", &amount), 0);
    assert_int_equal(amount, 21);
    avro_value_decref(&r);
}

const struct CMUnitTest codec_wire_tests[] = {
    cmocka_unit_test_setup_teardown(test_wire_round_trip_keeps_value_and_header,
                                    codec_fx_setup, codec_fx_teardown),
    cmocka_unit_test_setup_teardown(
        test_wire_round_trip_of_every_kind_and_defaults, codec_fx_setup,
        codec_fx_teardown),
    cmocka_unit_test_setup_teardown(
        test_encode_grows_the_buffer_for_large_values, codec_fx_setup,
        codec_fx_teardown),
    cmocka_unit_test_setup_teardown(test_encode_refuses_value_of_another_schema,
                                    codec_fx_setup, codec_fx_teardown),
    cmocka_unit_test_setup_teardown(
        test_decode_rejects_bad_header_and_unknown_id, codec_fx_setup,
        codec_fx_teardown),
    cmocka_unit_test_setup_teardown(
        test_decode_rejects_truncated_trailing_and_hostile_lengths,
        codec_fx_setup, codec_fx_teardown),
    cmocka_unit_test_setup_teardown(test_failed_decode_leaves_no_partial_value,
                                    codec_fx_setup, codec_fx_teardown),
    cmocka_unit_test_setup_teardown(test_decode_fuzz_mutations_never_crash,
                                    codec_fx_setup, codec_fx_teardown),
    cmocka_unit_test_setup_teardown(
        test_resolution_skips_writer_field_the_reader_lacks, codec_fx_setup,
        codec_fx_teardown),
    cmocka_unit_test_setup_teardown(
        test_resolution_fills_reader_field_missing_from_writer, codec_fx_setup,
        codec_fx_teardown),
    cmocka_unit_test_setup_teardown(
        test_decode_with_writer_schema_fetched_by_id, codec_fx_setup,
        codec_fx_teardown),
};
const size_t codec_wire_tests_n =
    sizeof codec_wire_tests / sizeof codec_wire_tests[0];
