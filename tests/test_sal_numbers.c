/*
 * test_sal_numbers: numbers into sample fields (csc/sal/sal_sample.h) at
 * the edges of every integer type: exact bounds (2^63 and 2^64 are not
 * valid long long / unsigned long long values, though INT64_MAX and
 * UINT64_MAX round to them as doubles), NaN and infinities refused,
 * integer text parsed exactly, and the saturating conversions
 * (sal_double_to_i64, sal_seconds_to_ms) and JSON output of 64-bit fields.
 * Run under UBSan (float-cast-overflow) in the sanitizer build.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ocps/sal_json.h"
#include "ocps/sal_sample.h"
#include "ocps/sal_time.h"

typedef struct numbers {
    uint8_t b;
    uint8_t o;
    int16_t s;
    uint16_t us;
    int32_t l;
    uint32_t ul;
    int64_t ll;
    uint64_t ull;
    float f;
    double d;
} numbers;

static const sal_field_info fields[] = {
    {"b", SAL_FIELD_BOOLEAN, 1, 0, offsetof(numbers, b), 0},
    {"o", SAL_FIELD_OCTET, 1, 0, offsetof(numbers, o), 0},
    {"s", SAL_FIELD_SHORT, 1, 0, offsetof(numbers, s), 0},
    {"us", SAL_FIELD_USHORT, 1, 0, offsetof(numbers, us), 0},
    {"l", SAL_FIELD_LONG, 1, 0, offsetof(numbers, l), 0},
    {"ul", SAL_FIELD_ULONG, 1, 0, offsetof(numbers, ul), 0},
    {"ll", SAL_FIELD_LONGLONG, 1, 0, offsetof(numbers, ll), 0},
    {"ull", SAL_FIELD_ULONGLONG, 1, 0, offsetof(numbers, ull), 0},
    {"f", SAL_FIELD_FLOAT, 1, 0, offsetof(numbers, f), 0},
    {"d", SAL_FIELD_DOUBLE, 1, 0, offsetof(numbers, d), 0},
};

static const sal_topic_info topic = {
    .sal_name = "numbers",
    .kind = SAL_TOPIC_TELEMETRY,
    .sample_size = sizeof(numbers),
    .fields = fields,
    .nfields = sizeof fields / sizeof fields[0],
};

/* Each integer field with its range as doubles: lo is valid, lo_out (the
 * next double below) is not; hi (the largest double in range) is valid,
 * hi_out (the next double above) is not. */
static const struct {
    const char *name;
    double lo_out, lo, hi, hi_out;
} ranges[] = {
    {"o", -1, 0, 255, 256},
    {"s", -32769, -32768, 32767, 32768},
    {"us", -1, 0, 65535, 65536},
    {"l", -2147483649.0, -2147483648.0, 2147483647.0, 2147483648.0},
    {"ul", -1, 0, 4294967295.0, 4294967296.0},
    /* doubles near 2^63 are 1024 apart below it and 2048 above */
    {"ll", -0x1p63 - 2048, -0x1p63, 0x1p63 - 1024, 0x1p63},
    {"ull", -1, 0, 0x1p64 - 2048, 0x1p64},
};

static int set(numbers *n, const char *field, double v)
{
    char err[256];
    return sal_sample_set_number(&topic, n, field, 0, v, err, sizeof err);
}

static void integer_bounds_are_exact(void **state)
{
    (void)state;
    numbers n = {0};
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        const char *f = ranges[i].name;
        assert_int_equal(set(&n, f, ranges[i].lo), 0);
        assert_true(sal_sample_get_number(&topic, &n, f, 0) == ranges[i].lo);
        assert_int_equal(set(&n, f, ranges[i].hi), 0);
        assert_true(sal_sample_get_number(&topic, &n, f, 0) == ranges[i].hi);
        assert_int_equal(set(&n, f, ranges[i].lo_out), -ERANGE);
        assert_int_equal(set(&n, f, ranges[i].hi_out), -ERANGE);
        /* a refused value leaves the field as it was */
        assert_true(sal_sample_get_number(&topic, &n, f, 0) == ranges[i].hi);
        assert_int_equal(set(&n, f, NAN), -ERANGE);
        assert_int_equal(set(&n, f, INFINITY), -ERANGE);
        assert_int_equal(set(&n, f, -INFINITY), -ERANGE);
        assert_int_equal(set(&n, f, 0.5), -ERANGE);
        assert_int_equal(set(&n, f, -0.0), 0);
    }
    assert_int_equal(set(&n, "ll", 0x1p63 - 1024), 0);
    assert_true(n.ll == INT64_C(9223372036854774784));
    assert_int_equal(set(&n, "ll", -0x1p63), 0);
    assert_true(n.ll == INT64_MIN);
    assert_int_equal(set(&n, "ull", 0x1p63), 0);
    assert_true(n.ull == UINT64_C(9223372036854775808));
    assert_int_equal(set(&n, "ull", 0x1p64), -ERANGE);
    assert_int_equal(set(&n, "ull", 1e300), -ERANGE);
    /* floating and boolean fields take anything */
    assert_int_equal(set(&n, "d", NAN), 0);
    assert_int_equal(set(&n, "f", 1e300), 0);
    assert_int_equal(set(&n, "b", NAN), 0);
}

static int set_text(numbers *n, const char *field, const char *text)
{
    char err[256];
    return sal_sample_set_from_text(&topic, n, field, text, err, sizeof err);
}

/* Integer text is parsed exactly, not through a double. */
static void integer_text_is_exact(void **state)
{
    (void)state;
    numbers n = {0};
    assert_int_equal(set_text(&n, "ll", "9223372036854775807"), 0);
    assert_true(n.ll == INT64_MAX);
    assert_int_equal(set_text(&n, "ll", "-9223372036854775808"), 0);
    assert_true(n.ll == INT64_MIN);
    assert_int_equal(set_text(&n, "ll", "9223372036854775808"), -ERANGE);
    assert_int_equal(set_text(&n, "ll", "-9223372036854775809"), -ERANGE);
    assert_int_equal(set_text(&n, "ull", "18446744073709551615"), 0);
    assert_true(n.ull == UINT64_MAX);
    assert_int_equal(set_text(&n, "ull", "18446744073709551616"), -ERANGE);
    assert_int_equal(set_text(&n, "ull", "-1"), -ERANGE);
    assert_int_equal(set_text(&n, "ull", "-0"), 0);
    assert_int_equal(set_text(&n, "l", "2147483647"), 0);
    assert_int_equal(set_text(&n, "l", "2147483648"), -ERANGE);
    assert_int_equal(set_text(&n, "l", "-2147483648"), 0);
    assert_int_equal(set_text(&n, "o", "256"), -ERANGE);
    assert_int_equal(set_text(&n, "s", "+12 "), 0);
    assert_int_equal(n.s, 12);
    /* other number forms still go through a double, with the same checks */
    assert_int_equal(set_text(&n, "l", "1e3"), 0);
    assert_int_equal(n.l, 1000);
    assert_int_equal(set_text(&n, "ll", "9.3e18"), -ERANGE);
    assert_int_equal(set_text(&n, "ll", "nan"), -ERANGE);
    assert_int_equal(set_text(&n, "ull", "inf"), -ERANGE);
    assert_int_equal(set_text(&n, "l", "12x"), -EINVAL);
}

static void saturating_conversions(void **state)
{
    (void)state;
    assert_true(sal_double_to_i64(NAN) == 0);
    assert_true(sal_double_to_i64(INFINITY) == INT64_MAX);
    assert_true(sal_double_to_i64(-INFINITY) == INT64_MIN);
    assert_true(sal_double_to_i64(0x1p63) == INT64_MAX);
    assert_true(sal_double_to_i64(0x1p63 - 1024) == INT64_C(9223372036854774784));
    assert_true(sal_double_to_i64(-0x1p63) == INT64_MIN);
    assert_true(sal_double_to_i64(-0x1p63 - 2048) == INT64_MIN);
    assert_true(sal_double_to_i64(-2.7) == -2);
    assert_true(sal_seconds_to_ms(NAN) == 0);
    assert_true(sal_seconds_to_ms(-1) == 0);
    assert_true(sal_seconds_to_ms(1.5) == 1500);
    assert_true(sal_seconds_to_ms(1e300) == UINT64_MAX);
    assert_true(sal_seconds_to_ms(INFINITY) == UINT64_MAX);
    assert_true(sal_seconds_to_ms(0x1p64 / 1000) == UINT64_MAX);
}

/* 64-bit fields reach JSON exactly (not through a double). */
static void json_of_64_bit_fields(void **state)
{
    (void)state;
    numbers n = {.ll = INT64_MAX, .ull = UINT64_MAX};
    json_t *o = sal_sample_to_json(&topic, &n, true);
    assert_true(json_integer_value(json_object_get(o, "ll")) == INT64_MAX);
    assert_true(json_is_real(json_object_get(o, "ull")));
    json_decref(o);
    n.ll = INT64_MIN;
    n.ull = (uint64_t)INT64_MAX;
    o = sal_sample_to_json(&topic, &n, true);
    assert_true(json_integer_value(json_object_get(o, "ll")) == INT64_MIN);
    assert_true(json_integer_value(json_object_get(o, "ull")) == INT64_MAX);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(integer_bounds_are_exact),
        cmocka_unit_test(integer_text_is_exact),
        cmocka_unit_test(saturating_conversions),
        cmocka_unit_test(json_of_64_bit_fields),
    };
    return cmocka_run_group_tests_name("sal_numbers", tests, NULL, NULL);
}
