/*
 * test_butler_query: the Butler --where subset (processing/butler):
 * operators, IN with ranges and strides, precedence, error messages with
 * column and token, unknown identifiers, limits, and literals that stay
 * bound parameters whatever they contain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ocps/butler_query.h"

/* Parse and translate text, which must succeed. */
static void translate(const char *text, butler_sql *sql)
{
    char err[256];
    butler_query *q = NULL;
    if (butler_query_parse(text, &q, err, sizeof err) != 0) {
        fail_msg("%s: %s", text, err);
    }
    assert_int_equal(butler_query_to_sql(q, sql, err, sizeof err), 0);
    butler_query_free(q);
}

/* The SQL of text, checked against want. */
static void expect_sql(const char *text, const char *want)
{
    butler_sql sql;
    translate(text, &sql);
    assert_string_equal(sql.sql, want);
    butler_sql_free(&sql);
}

/* Parsing text must fail with exactly the message want. */
static void expect_error(const char *text, const char *want)
{
    char err[256];
    butler_query *q = (butler_query *)1;
    assert_int_equal(butler_query_parse(text, &q, err, sizeof err), -1);
    assert_null(q);
    assert_string_equal(err, want);
}

static void test_every_comparison_operator(void **state)
{
    (void)state;
    expect_sql("exposure = 5", "(exposure = ?)");
    expect_sql("exposure != 5", "(exposure != ?)");
    expect_sql("exposure < 5", "(exposure < ?)");
    expect_sql("exposure <= 5", "(exposure <= ?)");
    expect_sql("exposure > 5", "(exposure > ?)");
    expect_sql("exposure >= 5", "(exposure >= ?)");
}

static void test_dimension_fields_map_to_columns(void **state)
{
    (void)state;
    expect_sql("exposure.day_obs = 20240101", "(day_obs = ?)");
    expect_sql("day_obs = 20240101", "(day_obs = ?)");
    expect_sql("exposure.seq_num = 3 AND seq_num = 3", "((seq_num = ?) AND (seq_num = ?))");
    expect_sql("exposure.observation_type = 'bias'", "(observation_type = ?)");
    expect_sql("exposure.exposure_time > 1.5", "(exposure_time > ?)");
    expect_sql("physical_filter = 'SDSSr_65mm~empty'", "(physical_filter = ?)");
    expect_sql("detector = 0 AND instrument = \"LATISS\"", "((detector = ?) AND (instrument = ?))");
}

static void test_literals_become_parameters(void **state)
{
    (void)state;
    butler_sql sql;
    translate("instrument = 'LATISS' AND exposure.exposure_time >= 2.5e1 AND exposure = -3", &sql);
    assert_int_equal(sql.nparams, 3);
    assert_int_equal(sql.params[0].kind, BUTLER_PARAM_TEXT);
    assert_string_equal(sql.params[0].text, "LATISS");
    assert_int_equal(sql.params[1].kind, BUTLER_PARAM_FLOAT);
    assert_true(sql.params[1].f == 25.0);
    assert_int_equal(sql.params[2].kind, BUTLER_PARAM_INT);
    assert_int_equal(sql.params[2].i, -3);
    butler_sql_free(&sql);
}

/* The one parameter of text, a number, as parsed. */
static butler_param only_param(const char *text)
{
    butler_sql sql;
    translate(text, &sql);
    assert_int_equal(sql.nparams, 1);
    butler_param p = sql.params[0];
    butler_sql_free(&sql);
    return p;
}

static void test_numbers_as_butler_writes_them(void **state)
{
    (void)state;
    /* Butler's lexer takes "1." and ".5" as numbers, and '+' as a sign */
    butler_param p = only_param("exposure.exposure_time > .5");
    assert_int_equal(p.kind, BUTLER_PARAM_FLOAT);
    assert_true(p.f == 0.5);
    p = only_param("exposure.exposure_time < 5.");
    assert_int_equal(p.kind, BUTLER_PARAM_FLOAT);
    assert_true(p.f == 5.0);
    p = only_param("exposure.exposure_time = 1.e1");
    assert_true(p.f == 10.0);
    p = only_param("exposure.exposure_time >= -.25E1");
    assert_true(p.f == -2.5);
    p = only_param("exposure = +7");
    assert_int_equal(p.kind, BUTLER_PARAM_INT);
    assert_int_equal(p.i, 7);
    p = only_param("exposure = - 7");
    assert_int_equal(p.i, -7);
    /* the whole range of a 64-bit integer, both ends */
    p = only_param("exposure = -9223372036854775808");
    assert_true(p.i == INT64_MIN);
    p = only_param("exposure = 9223372036854775807");
    assert_true(p.i == INT64_MAX);
    expect_error("exposure = 9223372036854775808", "column 12: integer out of range '9223372036854775808'");
    expect_error("exposure = -9223372036854775809", "column 13: integer out of range '9223372036854775809'");
    expect_error("exposure = 123456789012345678901234567890123456789",
                 "column 12: integer out of range '12345678901234567890123456789012...'");
    /* a long fraction is read whole, not cut */
    p = only_param(
        "exposure.exposure_time = 0.000000000000000000000000000000000000000000000000000000000000000001");
    assert_true(p.f == 1e-66);
    /* a range's "..": never a fraction */
    expect_sql("exposure IN (1..3)", "(((exposure BETWEEN ? AND ?)))");
    expect_sql("exposure IN (1 .. 3)", "(((exposure BETWEEN ? AND ?)))");
    expect_error("exposure = +'x'", "column 13: expected a number after '+', found ''x''");
}

static void test_in_list_ranges_and_strides(void **state)
{
    (void)state;
    butler_sql sql;
    translate("exposure IN (1, 3..5, 10..20:5)", &sql);
    assert_string_equal(sql.sql,
                        "((exposure IN (?) OR (exposure BETWEEN ? AND ?) OR (exposure BETWEEN ? AND ? AND "
                        "((exposure - ?) % ? = ?))))");
    long long want[] = {1, 3, 5, 10, 20, 10, 5, 0};
    assert_int_equal(sql.nparams, 8);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(sql.params[i].kind, BUTLER_PARAM_INT);
        assert_int_equal(sql.params[i].i, want[i]);
    }
    butler_sql_free(&sql);
    expect_sql("instrument IN ('LATISS', 'LSSTComCam')", "((instrument IN (?, ?)))");
}

static void test_not_in(void **state)
{
    (void)state;
    expect_sql("exposure NOT IN (1..10:3)",
               "(NOT ((exposure BETWEEN ? AND ? AND ((exposure - ?) % ? = ?))))");
    expect_sql("detector not in (0, 1)", "(NOT (detector IN (?, ?)))");
}

static void test_precedence_not_and_or(void **state)
{
    (void)state;
    expect_sql("instrument = 'A' OR detector = 0 AND NOT exposure = 3",
               "((instrument = ?) OR ((detector = ?) AND (NOT (exposure = ?))))");
    expect_sql("NOT exposure = 1 AND exposure = 2 OR exposure = 3",
               "(((NOT (exposure = ?)) AND (exposure = ?)) OR (exposure = ?))");
}

static void test_parentheses_override_precedence(void **state)
{
    (void)state;
    expect_sql("(instrument = 'A' OR detector = 0) AND exposure = 3",
               "(((instrument = ?) OR (detector = ?)) AND (exposure = ?))");
    expect_sql("NOT (exposure = 1 OR exposure = 2)", "(NOT ((exposure = ?) OR (exposure = ?)))");
}

static void test_keywords_are_case_insensitive(void **state)
{
    (void)state;
    expect_sql("exposure in (1) and not detector = 0 Or day_obs = 2",
               "((((exposure IN (?))) AND (NOT (detector = ?))) OR (day_obs = ?))");
}

static void test_empty_query_selects_everything(void **state)
{
    (void)state;
    expect_sql("", "");
    expect_sql("   ", "");
}

static void test_error_names_column_and_token(void **state)
{
    (void)state;
    expect_error("instrument = )", "column 14: expected a value after '=', found ')'");
    expect_error("exposure IN (1, )", "column 17: expected a value after ',', found ')'");
    expect_error("exposure =", "column 11: expected a value after '=', found end of expression");
    expect_error(
        "exposure.day_obs > 20240101 detector = 0",
        "column 29: expected AND, OR or the end of the expression after '20240101', found 'detector'");
    expect_error("(exposure = 1", "column 14: expected ')' after '1', found end of expression");
    expect_error("exposure 5", "column 10: expected a comparison operator or IN after 'exposure', found '5'");
    expect_error("exposure @ 1", "column 10: unexpected '@'");
    expect_error("instrument = 'LATISS", "column 14: unterminated string");
    expect_error("exposure IN 1", "column 13: expected '(' after 'IN', found '1'");
}

static void test_unknown_identifier_is_named(void **state)
{
    (void)state;
    expect_error("visit.foo = 1", "column 1: unknown identifier 'visit.foo'");
    expect_error("exposure = 1 AND bogus IN (1)", "column 18: unknown identifier 'bogus'");
}

static void test_range_errors(void **state)
{
    (void)state;
    expect_error("exposure IN (1..10:0)", "column 20: a range's stride must be positive, found '0'");
    expect_error("exposure IN (1..'a')", "column 17: expected an integer after '..', found ''a''");
    expect_error("exposure IN (1.5..3)", "column 17: a range needs integer bounds");
}

static void test_type_mismatch_is_an_error(void **state)
{
    (void)state;
    expect_error("instrument = 5", "column 14: instrument is a string, compared with a number");
    expect_error("exposure = 'x'", "column 12: exposure is a number, compared with a string");
}

static void test_limits_depth_and_length(void **state)
{
    (void)state;
    char deep[512] = "";
    for (int i = 0; i < BUTLER_QUERY_MAX_DEPTH + 1; i++) {
        strcat(deep, "(");
    }
    strcat(deep, "exposure = 1");
    char err[256];
    butler_query *q = NULL;
    assert_int_equal(butler_query_parse(deep, &q, err, sizeof err), -1);
    assert_non_null(strstr(err, "nested deeper than 64"));

    char *longer = malloc(BUTLER_QUERY_MAX_LEN + 2);
    memset(longer, ' ', BUTLER_QUERY_MAX_LEN + 1);
    longer[BUTLER_QUERY_MAX_LEN + 1] = '\0';
    assert_int_equal(butler_query_parse(longer, &q, err, sizeof err), -1);
    assert_string_equal(err, "expression longer than 4096 bytes");
    free(longer);
}

static void test_injection_attempts_stay_literals(void **state)
{
    (void)state;
    const char *attack = "x'; DROP TABLE dataset; --";
    char text[128];
    snprintf(text, sizeof text, "instrument = \"%s\"", attack);
    butler_sql sql;
    translate(text, &sql);
    assert_string_equal(sql.sql, "(instrument = ?)");
    assert_int_equal(sql.nparams, 1);
    assert_string_equal(sql.params[0].text, attack);
    butler_sql_free(&sql);
    /* a quote cannot be closed early: the rest is a syntax error */
    expect_error("instrument = 'a' OR '1'='1' --'",
                 "column 29: expected AND, OR or the end of the expression after ''1'', found '-'");
}

static void test_column_lookup(void **state)
{
    (void)state;
    assert_string_equal(butler_query_column("exposure.observation_type"), "observation_type");
    assert_null(butler_query_column("exposure.nope"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_comparison_operator),
        cmocka_unit_test(test_dimension_fields_map_to_columns),
        cmocka_unit_test(test_literals_become_parameters),
        cmocka_unit_test(test_numbers_as_butler_writes_them),
        cmocka_unit_test(test_in_list_ranges_and_strides),
        cmocka_unit_test(test_not_in),
        cmocka_unit_test(test_precedence_not_and_or),
        cmocka_unit_test(test_parentheses_override_precedence),
        cmocka_unit_test(test_keywords_are_case_insensitive),
        cmocka_unit_test(test_empty_query_selects_everything),
        cmocka_unit_test(test_error_names_column_and_token),
        cmocka_unit_test(test_unknown_identifier_is_named),
        cmocka_unit_test(test_range_errors),
        cmocka_unit_test(test_type_mismatch_is_an_error),
        cmocka_unit_test(test_limits_depth_and_length),
        cmocka_unit_test(test_injection_attempts_stay_literals),
        cmocka_unit_test(test_column_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
