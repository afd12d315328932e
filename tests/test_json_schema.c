/*
 * test_json_schema.c - the JSON Schema draft-7 validator (csc/config).
 *
 *   test_json_schema                 unit tests (cmocka)
 *   test_json_schema --suite DIR     the official JSON-Schema-Test-Suite
 *                                    files of DIR (draft7) and DIR/optional
 *
 * In suite mode every case must pass except those skipped: cases whose
 * schema needs a remote reference (the compiler reports "remote $ref not
 * supported") and optional files for keywords this validator does not
 * claim. Skips are listed. Cases are validated as salobj validates a
 * configuration, "format" being an annotation: every case of an
 * optional/format file must then be valid; the claimed format files are
 * also run with the format checker (JSON_SCHEMA_CHECK_FORMATS) against the
 * suite's verdicts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "ocps/json_schema.h"
#include "test_util.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!v) {
        fail_msg("bad JSON in test: %s: %s", text, jerr.text);
    }
    return v;
}

static json_schema *compile_text(const char *text)
{
    json_schema_error err;
    json_t *doc = parse(text);
    json_schema *s = json_schema_compile(doc, &err);
    json_decref(doc);
    if (!s) {
        fail_msg("schema rejected: %s (at %s)", err.message, err.path);
    }
    return s;
}

/* Validate instance text against schema text with flags; returns the result
 * and fills err. */
static int check_flags(const char *schema, const char *instance, unsigned flags, json_schema_error *err)
{
    json_schema *s = compile_text(schema);
    json_t *inst = parse(instance);
    int rc = json_schema_validate(s, inst, flags, err);
    json_decref(inst);
    json_schema_free(s);
    return rc;
}

/* The same as salobj validates a configuration (no format checker). */
static int check(const char *schema, const char *instance, json_schema_error *err)
{
    return check_flags(schema, instance, 0, err);
}

static void expect_error_flags(const char *schema, const char *instance, unsigned flags, const char *message,
                               const char *path, const char *keyword)
{
    json_schema_error err;
    assert_int_equal(check_flags(schema, instance, flags, &err), -1);
    assert_string_equal(err.message, message);
    assert_string_equal(err.path, path);
    assert_string_equal(err.keyword, keyword);
}

static void expect_error(const char *schema, const char *instance, const char *message, const char *path,
                         const char *keyword)
{
    expect_error_flags(schema, instance, 0, message, path, keyword);
}

static void expect_valid_flags(const char *schema, const char *instance, unsigned flags)
{
    json_schema_error err;
    int rc = check_flags(schema, instance, flags, &err);
    if (rc != 0) {
        fail_msg("%s should be valid under %s: %s at %s", instance, schema, err.message, err.path);
    }
}

static void expect_valid(const char *schema, const char *instance)
{
    expect_valid_flags(schema, instance, 0);
}

static void expect_compile_error(const char *schema, const char *fragment)
{
    json_schema_error err;
    json_t *doc = parse(schema);
    json_schema *s = json_schema_compile(doc, &err);
    json_decref(doc);
    if (s) {
        json_schema_free(s);
        fail_msg("schema should be rejected: %s", schema);
    }
    if (!strstr(err.message, fragment)) {
        fail_msg("compile error \"%s\" does not mention \"%s\"", err.message, fragment);
    }
}

static const char ocps_schema[] =
    "{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"title\":\"OCPS v4\",\"type\":\"object\","
    "\"additionalProperties\":false,\"required\":[\"instances\"],\"properties\":{\"instances\":{\"type\":"
    "\"array\",\"minItems\":1,\"items\":{\"$ref\":\"#/definitions/instance\"}},\"max_jobs\":{\"type\":"
    "\"integer\",\"minimum\":1,\"default\":4}},\"definitions\":{\"instance\":{\"type\":\"object\","
    "\"additionalProperties\":false,\"required\":[\"sal_index\",\"instance\",\"url\",\"poll_interval\","
    "\"butler\",\"output_glob\"],\"properties\":{\"sal_index\":{\"type\":\"integer\"},\"instance\":{\"type\":"
    "\"string\"},\"url\":{\"type\":\"string\",\"format\":\"url\"},\"poll_interval\":{\"type\":\"number\","
    "\"exclusiveMinimum\":0},\"butler\":{\"type\":\"string\"},\"input_collection\":{\"type\":\"string\"},"
    "\"output_glob\":{\"type\":\"string\"}}}}}";

static const char ocps_example[] =
    "{\"instances\":[{\"sal_index\":1,\"instance\":\"LATISS\",\"poll_interval\":0.5,\"output_glob\":\"*\","
    "\"url\":\"http://uws-server/api/v1\",\"butler\":\"LATISS\",\"input_collection\":\"LATISS/raw/all\"}]}";

/* ------------------------------------------------------------------ */
/* Unit tests                                                           */

static void test_ocps_example_valid_with_defaults(void **state)
{
    (void)state;
    json_schema_error err;
    json_schema *s = compile_text(ocps_schema);
    assert_string_equal(json_schema_title(s), "OCPS v4");
    json_t *inst = parse(ocps_example);
    assert_int_equal(json_schema_validate(s, inst, 0, &err), 0);
    assert_null(json_object_get(inst, "max_jobs"));
    assert_int_equal(json_schema_validate(s, inst, JSON_SCHEMA_APPLY_DEFAULTS, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(inst, "max_jobs")), 4);
    json_decref(inst);
    json_schema_free(s);
}

static void test_typo_in_array_item(void **state)
{
    (void)state;
    json_schema_error err;
    json_schema *s = compile_text(ocps_schema);
    json_t *inst = parse(ocps_example);
    json_t *item = json_array_get(json_object_get(inst, "instances"), 0);
    json_object_set(item, "pol_interval", json_object_get(item, "poll_interval"));
    json_object_del(item, "poll_interval");
    assert_int_equal(json_schema_validate(s, inst, JSON_SCHEMA_APPLY_DEFAULTS, &err), -1);
    assert_string_equal(err.message, "Additional properties are not allowed ('pol_interval' was unexpected)");
    assert_string_equal(err.path, "/instances/0");
    assert_string_equal(err.keyword, "additionalProperties");
    json_decref(inst);
    json_schema_free(s);
}

static void test_nested_defaults(void **state)
{
    (void)state;
    json_schema_error err;
    json_schema *s = compile_text("{\"type\":\"object\",\"properties\":{"
                                  "\"a\":{\"type\":\"object\",\"default\":{},\"properties\":{"
                                  "\"b\":{\"type\":\"integer\",\"default\":2},"
                                  "\"c\":{\"type\":\"object\",\"default\":{\"d\":1},\"properties\":{"
                                  "\"e\":{\"type\":\"string\",\"default\":\"x\"}}}}},"
                                  "\"f\":{\"$ref\":\"#/definitions/f\"}},"
                                  "\"definitions\":{\"f\":{\"type\":\"array\",\"default\":[1,2]}}}");
    json_t *inst = json_object();
    assert_int_equal(json_schema_validate(s, inst, JSON_SCHEMA_APPLY_DEFAULTS, &err), 0);
    json_t *want = parse("{\"a\":{\"b\":2,\"c\":{\"d\":1,\"e\":\"x\"}},\"f\":[1,2]}");
    assert_true(json_equal(inst, want));
    /* values present are kept, and the schema's default is not shared */
    json_t *inst2 = parse("{\"a\":{\"b\":7}}");
    assert_int_equal(json_schema_validate(s, inst2, JSON_SCHEMA_APPLY_DEFAULTS, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(inst2, "a"), "b")), 7);
    json_array_append_new(json_object_get(inst2, "f"), json_integer(3));
    json_t *inst3 = json_object();
    assert_int_equal(json_schema_validate(s, inst3, JSON_SCHEMA_APPLY_DEFAULTS, &err), 0);
    assert_int_equal(json_array_size(json_object_get(inst3, "f")), 2);
    json_decref(inst3);
    json_decref(inst2);
    json_decref(want);
    json_decref(inst);
    json_schema_free(s);
}

static void test_defaults_make_required_pass(void **state)
{
    (void)state;
    json_schema_error err;
    json_schema *s =
        compile_text("{\"required\":[\"n\"],\"properties\":{\"n\":{\"type\":\"integer\",\"default\":1}}}");
    json_t *inst = json_object();
    assert_int_equal(json_schema_validate(s, inst, 0, &err), -1);
    assert_string_equal(err.message, "'n' is a required property");
    assert_int_equal(json_schema_validate(s, inst, JSON_SCHEMA_APPLY_DEFAULTS, &err), 0);
    json_decref(inst);
    json_schema_free(s);
}

static void test_required_message(void **state)
{
    (void)state;
    expect_error("{\"properties\":{\"x\":{\"required\":[\"sal_index\"]}}}", "{\"x\":{}}",
                 "'sal_index' is a required property", "/x", "required");
}

static void test_type_messages(void **state)
{
    (void)state;
    expect_error("{\"type\":\"number\"}", "\"abc\"", "'abc' is not of type 'number'", "", "type");
    expect_error("{\"items\":{\"type\":[\"string\",\"null\"]}}", "[\"a\",1.5]",
                 "1.5 is not of type 'string', 'null'", "/1", "type");
    expect_error("{\"type\":\"integer\"}", "1.5", "1.5 is not of type 'integer'", "", "type");
    expect_valid("{\"type\":\"integer\"}", "1.0");
    expect_error("{\"type\":\"object\"}", "[true,null,{\"a\":\"it's\"}]",
                 "[True, None, {'a': \"it's\"}] is not of type 'object'", "", "type");
}

static void test_minimum_messages(void **state)
{
    (void)state;
    expect_error("{\"minimum\":0}", "-1", "-1 is less than the minimum of 0", "", "minimum");
    expect_error("{\"properties\":{\"poll_interval\":{\"exclusiveMinimum\":0}}}", "{\"poll_interval\":0}",
                 "0 is less than or equal to the minimum of 0", "/poll_interval", "exclusiveMinimum");
    expect_error("{\"maximum\":2.5}", "3", "3 is greater than the maximum of 2.5", "", "maximum");
    expect_error("{\"exclusiveMaximum\":1e20}", "1e21",
                 "1e+21 is greater than or equal to the maximum of 1e+20", "", "exclusiveMaximum");
    expect_valid("{\"minimum\":0}", "0.0");
}

static void test_enum_and_const(void **state)
{
    (void)state;
    expect_error("{\"enum\":[\"DDS\",\"Kafka\"]}", "\"kafka\"", "'kafka' is not one of ['DDS', 'Kafka']", "",
                 "enum");
    expect_valid("{\"enum\":[1,2]}", "2.0");
    expect_valid("{\"const\":{\"a\":[1]}}", "{\"a\":[1.0]}");
    expect_error("{\"const\":1}", "true", "1 was expected", "", "const");
}

static void test_string_keywords(void **state)
{
    (void)state;
    expect_valid("{\"maxLength\":2}", "\"\\u00e9\\u00e9\"");
    expect_error("{\"minLength\":3}", "\"\\u00e9\\u00e9\"", "'\xc3\xa9\xc3\xa9' is too short", "",
                 "minLength");
    expect_error("{\"pattern\":\"^\\\\d+$\"}", "\"12a\"", "'12a' does not match '^\\\\d+$'", "", "pattern");
    expect_valid("{\"pattern\":\"\\\\w+\\\\s\\\\S\"}", "\"--ab x--\"");
}

/* "format" is an annotation, as for salobj's Draft7Validator without a
 * format checker: a configuration salobj accepts is accepted. The checker
 * is there on request (JSON_SCHEMA_CHECK_FORMATS). */
static void test_format_is_an_annotation(void **state)
{
    (void)state;
    static const struct {
        const char *format, *instance;
    } cases[] = {
        {"date-time", "\"2024-02-30T00:00:00Z\""},
        {"date", "\"yesterday\""},
        {"uri", "\"not a uri\""},
        {"ipv4", "\"999.1.1.1\""},
        {"email", "\"nobody\""},
        {"regex", "\"(?P<n>x)\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char schema[96], message[128];
        snprintf(schema, sizeof schema, "{\"properties\":{\"x\":{\"type\":\"string\",\"format\":\"%s\"}}}",
                 cases[i].format);
        char instance[96];
        snprintf(instance, sizeof instance, "{\"x\":%s}", cases[i].instance);
        expect_valid(schema, instance);
        snprintf(message, sizeof message, "'%.*s' is not a '%s'", (int)strlen(cases[i].instance) - 2,
                 cases[i].instance + 1, cases[i].format);
        expect_error_flags(schema, instance, JSON_SCHEMA_CHECK_FORMATS, message, "/x", "format");
    }
    /* the other keywords of the subschema still apply */
    expect_error("{\"type\":\"string\",\"format\":\"uri\"}", "5", "5 is not of type 'string'", "", "type");
    expect_valid("{\"format\":\"url\"}", "\"not checked\"");
    expect_valid_flags("{\"format\":\"url\"}", "\"never checked\"", JSON_SCHEMA_CHECK_FORMATS);
}

/* The values listed as YAML timestamps are dates to the validator, as
 * PyYAML's datetimes are to salobj's: of no JSON type, equal to nothing;
 * the same text quoted is a string. */
static void test_yaml_timestamps_are_not_strings(void **state)
{
    (void)state;
    json_t *config =
        parse("{\"butler\": \"2024-01-01\", \"quoted\": \"2024-01-01\", \"any\": \"2024-01-01\"}");
    json_t *stamps = json_array();
    json_array_append(stamps, json_object_get(config, "butler"));
    json_array_append(stamps, json_object_get(config, "any"));
    json_schema *s = compile_text("{\"properties\": {\"butler\": {\"type\": \"string\", \"minLength\": 1},"
                                  "\"quoted\": {\"type\": \"string\"}, \"any\": {\"maxLength\": 2}}}");
    json_schema_error err;
    assert_int_equal(json_schema_validate_timestamps(s, config, 0, stamps, &err), -1);
    assert_string_equal(err.message, "2024-01-01 is not of type 'string': an unquoted YAML date or time is a "
                                     "date, not a string (as for salobj); quote it: '2024-01-01'");
    assert_string_equal(err.path, "/butler");
    assert_string_equal(err.keyword, "type");
    /* without the list, every one is a string (and "any" too long) */
    assert_int_equal(json_schema_validate(s, config, 0, &err), -1);
    assert_string_equal(err.path, "/any");
    /* no type wanted: a date is fine, and string keywords skip it */
    json_object_set_new(config, "butler", json_string("LATISS"));
    assert_int_equal(json_schema_validate_timestamps(s, config, 0, stamps, &err), 0);
    json_schema_free(s);
    s = compile_text("{\"properties\": {\"any\": {\"type\": [\"string\", \"null\"]}}}");
    assert_int_equal(json_schema_validate_timestamps(s, config, 0, stamps, &err), -1);
    assert_non_null(strstr(err.message, "2024-01-01 is not of type 'string', 'null': "));
    json_schema_free(s);
    s = compile_text("{\"properties\": {\"any\": {\"enum\": [\"2024-01-01\"]}}}");
    assert_int_equal(json_schema_validate_timestamps(s, config, 0, stamps, &err), -1);
    assert_string_equal(err.keyword, "enum");
    json_schema_free(s);
    json_decref(stamps);
    json_decref(config);
}

static void test_ecma_regex_translation(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *text;
        int match;
    } cases[] = {
        {"a+", "xaay", 1},
        {"^a+$", "xaay", 0},
        {"\\\\d{2,3}", "a12", 1},
        {"^\\\\D$", "5", 0},
        {"[\\\\d.]+$", "1.5", 1},
        {"[^\\\\s]", "  ", 0},
        {"^(?:ab)+$", "abab", 1},
        {"^a.c$", "a\\nc", 0},
        {"\\\\.", "abc", 0},
        {"^\\\\/x$", "/x", 1},
        {"^[\\\\]-]+$", "]-]", 1},
        {"^a{,2}$", "a{,2}", 1},
        {"^\\\\u00e9$", "\\u00e9", 1},
        {"^[\\u00e9a]+$", "a\\u00e9", 1},
        {"^\\u00e9+$", "\\u00e9\\u00e9", 1},
        {"^a*?$", "aaa", 1},
        {"^[]$", "", 0},
        {"^[^]$", "x", 1},
        {"^[\\\\w-]+$", "a-b_c", 1},
        {"^(a|)$", "", 1},
        {"^\\\\x41\\\\t$", "A\\t", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char schema[256], inst[128];
        json_schema_error err;
        snprintf(schema, sizeof schema, "{\"pattern\":\"%s\"}", cases[i].pattern);
        snprintf(inst, sizeof inst, "\"%s\"", cases[i].text);
        int rc = check(schema, inst, &err);
        if ((rc == 0) != cases[i].match) {
            fail_msg("pattern %s on %s: expected %s", cases[i].pattern, cases[i].text,
                     cases[i].match ? "a match" : "no match");
        }
    }
}

/* PCRE2 brings lookaround and backreferences (the POSIX translation
 * refused them). */
static void test_regex_lookaround_and_backreferences(void **state)
{
    (void)state;
    static const char password[] = "{\"pattern\":\"^(?=.*\\\\d)(?!.*\\\\s).{8,}$\"}";
    expect_valid(password, "\"abcdefg1\"");
    expect_error(password, "\"abc defg1\"", "'abc defg1' does not match '^(?=.*\\\\d)(?!.*\\\\s).{8,}$'", "",
                 "pattern");
    expect_valid("{\"pattern\":\"(?<=\\\\$)\\\\d+$\"}", "\"cost $12\"");
    expect_error("{\"pattern\":\"(?<=\\\\$)\\\\d+$\"}", "\"cost 12\"",
                 "'cost 12' does not match '(?<=\\\\$)\\\\d+$'", "", "pattern");
    expect_valid("{\"pattern\":\"^(a|b)\\\\1$\"}", "\"bb\"");
    expect_error("{\"pattern\":\"^(a|b)\\\\1$\"}", "\"ab\"", "'ab' does not match '^(a|b)\\\\1$'", "",
                 "pattern");
    /* ECMA-262: a backreference to a group that did not take part is empty */
    expect_valid("{\"pattern\":\"^(?:(a)|b)\\\\1$\"}", "\"b\"");
    expect_valid("{\"pattern\":\"^(?<q>['\\\"]).*\\\\k<q>$\"}", "\"'x'\"");
    expect_error("{\"pattern\":\"^(?<q>['\\\"]).*\\\\k<q>$\"}", "\"'x\\\"\"",
                 "'\\'x\"' does not match '^(?<q>[\\'\"]).*\\\\k<q>$'", "", "pattern");
}

/* UTF mode: "." and negated classes match one character of any length in
 * UTF-8, not one byte. */
static void test_regex_dot_is_one_character(void **state)
{
    (void)state;
    static const char one[] = "{\"pattern\":\"^.$\"}";
    expect_valid(one, "\"\\u00e9\"");        /* 2 bytes */
    expect_valid(one, "\"\\u6f22\"");        /* 3 bytes */
    expect_valid(one, "\"\\ud83d\\udc32\""); /* 4 bytes */
    expect_error(one, "\"ab\"", "'ab' does not match '^.$'", "", "pattern");
    expect_error(one, "\"\\n\"", "'\\n' does not match '^.$'", "", "pattern");
    expect_error(one, "\"\\u2028\"", "'\xe2\x80\xa8' does not match '^.$'", "", "pattern");
    expect_valid("{\"pattern\":\"^.{3}$\",\"maxLength\":3}", "\"\\u65e5\\u672c\\u8a9e\"");
    expect_valid("{\"pattern\":\"^[^a]$\"}", "\"\\u00e9\"");
    expect_valid("{\"pattern\":\"^\\\\u{1F432}$\"}", "\"\\ud83d\\udc32\"");
    expect_valid("{\"pattern\":\"^\\\\ud83d\\\\udc32+$\"}", "\"\\ud83d\\udc32\\ud83d\\udc32\"");
    expect_valid("{\"pattern\":\"^[\\\\u00e0-\\\\u00ff]$\"}", "\"\\u00e9\"");
    expect_error("{\"patternProperties\":{\"^.$\":{\"type\":\"integer\"}}}", "{\"\\u00e9\":\"x\"}",
                 "'x' is not of type 'integer'", "/\xc3\xa9", "type");
}

/* ECMA-262's classes: \d and \w are ASCII, \s is Unicode white space,
 * \p{...} takes ECMA's property names; $ is the end only. */
static void test_regex_ecma_classes(void **state)
{
    (void)state;
    expect_error("{\"pattern\":\"^\\\\d$\"}", "\"\\u0967\"", "'\xe0\xa5\xa7' does not match '^\\\\d$'", "",
                 "pattern");
    expect_error("{\"pattern\":\"^\\\\w$\"}", "\"\\u00e9\"", "'\xc3\xa9' does not match '^\\\\w$'", "",
                 "pattern");
    expect_valid("{\"pattern\":\"^\\\\s\\\\s\\\\s$\"}", "\"\\u00a0\\ufeff\\u2029\"");
    expect_valid("{\"pattern\":\"^[\\\\s]$\"}", "\"\\u3000\"");
    expect_error("{\"pattern\":\"^\\\\S$\"}", "\"\\u00a0\"", "'\xc2\xa0' does not match '^\\\\S$'", "",
                 "pattern");
    expect_valid("{\"pattern\":\"^[\\\\S]+$\"}", "\"a\\u00e9\\ud83d\\udc32\"");
    expect_valid("{\"pattern\":\"^\\\\p{Letter}cole$\"}", "\"\\u00e9cole\"");
    expect_valid("{\"pattern\":\"^\\\\p{Script=Greek}+$\"}", "\"\\u03b1\\u03b2\\u03b3\"");
    expect_error("{\"pattern\":\"^\\\\p{Script=Greek}+$\"}", "\"abc\"",
                 "'abc' does not match '^\\\\p{Script=Greek}+$'", "", "pattern");
    expect_valid("{\"pattern\":\"^\\\\p{digit}+$\"}", "\"\\u09ea\\u09e8\"");
    expect_valid("{\"pattern\":\"^\\\\P{gc=Lu}$\"}", "\"a\"");
    expect_error("{\"pattern\":\"^abc$\"}", "\"abc\\n\"", "'abc\\n' does not match '^abc$'", "", "pattern");
    expect_valid("{\"pattern\":\"^\\\\v\\\\cJ\\\\0$\"}", "\"\\u000b\\n\\u0000\"");
    expect_valid("{\"pattern\":\"^[[:a]+$\"}", "\"a:[\"");
}

static double elapsed_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A pattern that backtracks catastrophically is stopped by PCRE2's match
 * limit: validation fails with an error saying so, in milliseconds, and
 * the failure is final (a "not" does not turn it into a success). */
static void test_regex_backtracking_is_bounded(void **state)
{
    (void)state;
    char inst[128], key[160];
    json_schema_error err;
    snprintf(inst, sizeof inst, "\"%s!\"",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    static const char *const schemas[] = {"{\"pattern\":\"^(a+)+$\"}", "{\"not\":{\"pattern\":\"^(a|a)+$\"}}",
                                          "{\"anyOf\":[{\"pattern\":\"^(a|aa)+$\"},{\"const\":0}]}"};
    for (size_t i = 0; i < sizeof schemas / sizeof schemas[0]; i++) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(check(schemas[i], inst, &err), -1);
        assert_true(elapsed_since(&t0) < 5.0);
        assert_string_equal(err.keyword, "pattern");
        if (!strstr(err.message, "could not be matched against") ||
            !strstr(err.message, "match limit exceeded")) {
            fail_msg("%s: unexpected message \"%s\"", schemas[i], err.message);
        }
    }
    expect_valid("{\"pattern\":\"^(a+)+$\"}", "\"aaaa\"");
    snprintf(key, sizeof key, "{%s:1}", inst);
    assert_int_equal(check("{\"patternProperties\":{\"^(a|aa)+$\":{\"type\":\"string\"}}}", key, &err), -1);
    assert_string_equal(err.keyword, "patternProperties");
    assert_non_null(strstr(err.message, "match limit exceeded"));
    assert_int_equal(
        check("{\"patternProperties\":{\"^(a|aa)+$\":{}},\"additionalProperties\":false}", key, &err), -1);
    assert_non_null(strstr(err.message, "match limit exceeded"));
}

/* A pattern that is not ECMA-262 (or that PCRE2 cannot do) is a schema
 * error naming the pattern, the problem, its offset and where it is. */
static void test_regex_invalid_pattern_is_schema_error(void **state)
{
    (void)state;
    json_schema_error err;
    json_t *doc = parse("{\"properties\":{\"id\":{\"pattern\":\"ab(c\"}}}");
    assert_null(json_schema_compile(doc, &err));
    assert_string_equal(err.message,
                        "invalid regular expression 'ab(c': missing closing parenthesis at offset 4");
    assert_string_equal(err.path, "/properties/id/pattern");
    json_decref(doc);
    doc = parse("{\"patternProperties\":{\"(?i)x\":{}}}");
    assert_null(json_schema_compile(doc, &err));
    assert_string_equal(err.message,
                        "invalid regular expression '(?i)x': '(?i' is not ECMA-262 syntax at offset 0");
    assert_string_equal(err.path, "/patternProperties/(?i)x");
    json_decref(doc);
    expect_compile_error("{\"pattern\":\"\\\\a\"}", "\\a is not an ECMA-262 escape at offset 0");
    expect_compile_error("{\"pattern\":\"x\\\\Z\"}", "\\Z is not an ECMA-262 escape at offset 1");
    expect_compile_error("{\"pattern\":\"a*+\"}", "nothing to repeat at offset 2");
    expect_compile_error("{\"pattern\":\"(*LIMIT_MATCH=1)a\"}", "nothing to repeat");
    expect_compile_error("{\"pattern\":\"(?#c)a\"}", "not ECMA-262 syntax");
    expect_compile_error("{\"pattern\":\"(?<=a+)b\"}", "lookbehind assertion is not fixed length");
    expect_compile_error("{\"pattern\":\"\\\\p{Bogus}\"}", "unknown property");
    expect_compile_error("{\"pattern\":\"[\\\\d-z]\"}", "cannot start a range");
    expect_compile_error("{\"pattern\":\"\\\\ud800\"}", "lone surrogate");
    expect_compile_error("{\"pattern\":\"\\\\2(a)\"}", "non-existent");
    expect_error_flags("{\"format\":\"regex\"}", "\"(?P<n>x)\"", JSON_SCHEMA_CHECK_FORMATS,
                       "'(?P<n>x)' is not a 'regex'", "", "format");
    expect_valid_flags("{\"format\":\"regex\"}", "\"(?<n>a)\\\\k<n>\"", JSON_SCHEMA_CHECK_FORMATS);
}

static void test_array_and_object_keywords(void **state)
{
    (void)state;
    expect_error("{\"items\":[{}],\"additionalItems\":false}", "[1,2,3]",
                 "Additional items are not allowed (2, 3 were unexpected)", "", "additionalItems");
    expect_error("{\"uniqueItems\":true}", "[1,{\"a\":1},1.0]", "[1, {'a': 1}, 1.0] has non-unique elements",
                 "", "uniqueItems");
    expect_error("{\"contains\":{\"const\":5}}", "[1]",
                 "[1] does not contain items matching the given schema", "", "contains");
    expect_error("{\"dependencies\":{\"a\":[\"b\"]}}", "{\"a\":1}", "'b' is a dependency of 'a'", "",
                 "dependencies");
    expect_error("{\"propertyNames\":{\"maxLength\":2}}", "{\"abc\":1}", "'abc' is too long", "",
                 "maxLength");
    expect_error("{\"patternProperties\":{\"^x_\":{}},\"additionalProperties\":false}", "{\"x_a\":1,\"y\":2}",
                 "'y' does not match any of the regexes: '^x_'", "", "additionalProperties");
    expect_error("{\"properties\":{\"a/b~c\":{\"items\":{\"type\":\"string\"}}}}", "{\"a/b~c\":[\"x\",1]}",
                 "1 is not of type 'string'", "/a~1b~0c/1", "type");
}

static void test_combinators(void **state)
{
    (void)state;
    expect_error("{\"anyOf\":[{\"type\":\"string\"},{\"minimum\":5}]}", "1",
                 "1 is not valid under any of the given schemas", "", "anyOf");
    expect_error("{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":0}]}", "1",
                 "1 is valid under each of {'type': 'integer'}, {'minimum': 0}", "", "oneOf");
    expect_error("{\"not\":{\"type\":\"null\"}}", "null", "None should not be valid under {'type': 'null'}",
                 "", "not");
    expect_error("{\"if\":{\"minimum\":10},\"then\":{\"multipleOf\":5},\"else\":{\"const\":1}}", "12",
                 "12 is not a multiple of 5", "", "multipleOf");
    expect_error("false", "1", "False schema does not allow 1", "", "false");
}

static void test_invalid_schemas_rejected(void **state)
{
    (void)state;
    expect_compile_error("{\"pattern\":\"(ab\"}", "invalid regular expression");
    expect_compile_error("{\"patternProperties\":{\"[z-a]\":{}}}", "range out of order");
    expect_compile_error("{\"$ref\":\"#/definitions/missing\"}", "unresolvable $ref");
    expect_compile_error("{\"$ref\":\"http://example.com/s.json\"}",
                         "remote $ref not supported: http://example.com/s.json");
    expect_compile_error("{\"type\":\"int\"}", "'int' is not a valid type");
    expect_compile_error("{\"minimum\":\"0\"}", "is not of type 'number'");
    expect_compile_error("{\"required\":\"a\"}", "array of strings");
    expect_compile_error("{\"properties\":{\"a\":3}}", "3 is not of type 'object', 'boolean'");
    expect_compile_error("{\"multipleOf\":0}", "greater than 0");
    expect_compile_error("{\"anyOf\":[]}", "non-empty array");
    expect_compile_error("{\"definitions\":{\"a\":{\"$ref\":\"#/definitions/b\"},\"b\":{\"$ref\":"
                         "\"#/definitions/a\"}},\"$ref\":\"#/definitions/a\"}",
                         "$ref loop");
    json_schema_error err;
    json_t *doc = parse("{\"properties\":{\"a\":{\"maxLength\":-1}}}");
    assert_null(json_schema_compile(doc, &err));
    assert_string_equal(err.path, "/properties/a/maxLength");
    json_decref(doc);
}

static void test_deep_nesting_does_not_crash(void **state)
{
    (void)state;
    json_schema_error err;
    /* a recursive schema against an instance nested 10000 levels */
    json_schema *s = compile_text("{\"items\":{\"$ref\":\"#\"},\"properties\":{\"a\":{\"$ref\":\"#\"}}}");
    json_t *inst = json_array();
    for (int i = 0; i < 10000; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, inst);
        inst = outer;
    }
    assert_int_equal(json_schema_validate(s, inst, JSON_SCHEMA_APPLY_DEFAULTS, &err), -1);
    assert_non_null(strstr(err.message, "depth"));
    json_decref(inst);
    json_schema_free(s);
    /* a schema nested 1000 levels is refused */
    json_t *deep = json_object();
    for (int i = 0; i < 1000; i++) {
        json_t *outer = json_object();
        json_object_set_new(outer, "not", deep);
        deep = outer;
    }
    assert_null(json_schema_compile(deep, &err));
    assert_non_null(strstr(err.message, "nested too deeply"));
    json_decref(deep);
    /* a $ref loop through an applicator is stopped at validation */
    static const char *const loops[] = {
        "{\"allOf\":[{\"$ref\":\"#\"}]}",
        "{\"not\":{\"$ref\":\"#\"}}",
        "{\"anyOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#\"}]}", /* exponential without a step budget */
        "{\"oneOf\":[{\"$ref\":\"#\"},{\"not\":{\"$ref\":\"#\"}}]}",
    };
    for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++) {
        s = compile_text(loops[i]);
        assert_int_equal(json_schema_validate(s, json_null(), 0, &err), -1);
        assert_string_equal(err.keyword, "$ref");
        json_schema_free(s);
    }
}

static void test_id_based_refs(void **state)
{
    (void)state;
    expect_valid("{\"$id\":\"http://x.test/root.json\",\"properties\":{\"a\":{\"$ref\":\"item.json\"}},"
                 "\"definitions\":{\"i\":{\"$id\":\"item.json\",\"type\":\"integer\"}}}",
                 "{\"a\":1}");
    expect_error("{\"$id\":\"http://x.test/root.json\",\"properties\":{\"a\":{\"$ref\":\"item.json\"}},"
                 "\"definitions\":{\"i\":{\"$id\":\"item.json\",\"type\":\"integer\"}}}",
                 "{\"a\":\"s\"}", "'s' is not of type 'integer'", "/a", "type");
    expect_valid("{\"properties\":{\"%\":{\"$ref\":\"#/definitions/a%25b~1c\"}},"
                 "\"definitions\":{\"a%b/c\":{\"type\":\"null\"}}}",
                 "{\"%\":null}");
}

/* ------------------------------------------------------------------ */
/* The official test suite                                              */

typedef struct tally {
    int passed, failed, skipped;
} tally;

/* Optional keywords and formats claimed; other optional files are skipped
 * (the format files are all run as annotations, see suite_file). */
static int claimed_optional(const char *name)
{
    static const char *const claimed[] = {
        "zeroTerminatedFloats.json", "ecmascript-regex.json", "non-bmp-regex.json", "format/uri.json",
        "format/uri-reference.json", "format/date-time.json", "format/date.json",   "format/time.json",
        "format/email.json",         "format/ipv4.json",      "format/ipv6.json",   "format/hostname.json",
        "format/json-pointer.json",  "format/regex.json"};
    for (size_t i = 0; i < sizeof claimed / sizeof claimed[0]; i++) {
        if (strcmp(name, claimed[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* How a file's cases are run. */
enum suite_mode {
    SUITE_SKIP,       /* counted as skipped */
    SUITE_ASSERT,     /* validated with `flags`, the case's "valid" expected */
    SUITE_ANNOTATION, /* validated as salobj does (format not checked): every case valid */
};

static void suite_group(const char *file, json_t *group, enum suite_mode mode, unsigned flags, tally *t)
{
    const char *desc = json_string_value(json_object_get(group, "description"));
    json_t *tests = json_object_get(group, "tests");
    json_schema_error err;
    json_schema *s = json_schema_compile(json_object_get(group, "schema"), &err);
    if (!s && strncmp(err.message, "remote $ref not supported", 25) == 0) {
        printf("  skipped %s: \"%s\" (%zu cases): %s\n", file, desc, json_array_size(tests), err.message);
        t->skipped += (int)json_array_size(tests);
        return;
    }
    for (size_t i = 0; i < json_array_size(tests); i++) {
        json_t *c = json_array_get(tests, i);
        int want = mode == SUITE_ANNOTATION || json_is_true(json_object_get(c, "valid"));
        int got = -1;
        if (s) {
            json_t *data = json_deep_copy(json_object_get(c, "data"));
            got = json_schema_validate(s, data, flags, &err) == 0;
            json_decref(data);
        }
        if (got == want) {
            t->passed++;
            continue;
        }
        t->failed++;
        printf("  FAILED %s%s: \"%s\" / \"%s\": %s\n", file, mode == SUITE_ANNOTATION ? " (annotation)" : "",
               desc, json_string_value(json_object_get(c, "description")),
               s ? (want ? err.message : "accepted, should be invalid") : err.message);
    }
    json_schema_free(s);
}

static void suite_file(const char *dir, const char *name, enum suite_mode mode, unsigned flags, tally *total)
{
    static const char *const shown[] = {"(not claimed)", "", " (format as an annotation, as salobj)"};
    char path[1024];
    tally t = {0, 0, 0};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t jerr;
    /* an unclaimed file is only counted (bignum.json has integers jansson refuses) */
    json_t *doc = json_load_file(path, mode == SUITE_SKIP ? JSON_DECODE_INT_AS_REAL : 0, &jerr);
    if (!doc) {
        printf("%-40s cannot load: %s\n", name, jerr.text);
        total->failed++;
        return;
    }
    for (size_t g = 0; g < json_array_size(doc); g++) {
        json_t *group = json_array_get(doc, g);
        if (mode == SUITE_SKIP) {
            t.skipped += (int)json_array_size(json_object_get(group, "tests"));
        } else {
            suite_group(name, group, mode, flags, &t);
        }
    }
    json_decref(doc);
    printf("%-40s %4d passed, %d failed, %d skipped%s%s\n", name, t.passed, t.failed, t.skipped,
           mode == SUITE_SKIP ? " " : "",
           flags & JSON_SCHEMA_CHECK_FORMATS ? " (format checker)" : shown[mode]);
    total->passed += t.passed;
    total->failed += t.failed;
    total->skipped += t.skipped;
}

/* Run the files of top/sub. The required files and the claimed optional
 * ones are run as salobj validates (no format checker). Each format file
 * (and ecmascript-regex.json, whose schema is a format)
 * is run that way, where every case is valid since "format" is an
 * annotation, and, if claimed, once more with JSON_SCHEMA_CHECK_FORMATS
 * against the suite's verdicts. */
static void suite_dir(const char *top, const char *sub, int optional, tally *total)
{
    char dir[1024];
    char **names;
    snprintf(dir, sizeof dir, "%s%s%s", top, sub[0] ? "/" : "", sub);
    int n = tu_list_files(dir, ".json", &names);
    for (int i = 0; i < n; i++) {
        char rel[512];
        snprintf(rel, sizeof rel, "%s%s%s", sub, sub[0] ? "/" : "", names[i]);
        const char *claim_name = strncmp(rel, "optional/", 9) == 0 ? rel + 9 : rel;
        bool claimed = !optional || claimed_optional(claim_name);
        /* ecmascript-regex.json's one case is a "format": "regex" */
        bool of_format =
            strncmp(claim_name, "format/", 7) == 0 || strcmp(claim_name, "ecmascript-regex.json") == 0;
        if (!of_format) {
            suite_file(top, rel, claimed ? SUITE_ASSERT : SUITE_SKIP, 0, total);
            continue;
        }
        suite_file(top, rel, SUITE_ANNOTATION, 0, total);
        if (claimed) {
            suite_file(top, rel, SUITE_ASSERT, JSON_SCHEMA_CHECK_FORMATS, total);
        }
    }
    if (n >= 0) {
        tu_free_names(names, n);
    }
}

static int run_suite(const char *top)
{
    tally total = {0, 0, 0};
    char **names;
    int n = tu_list_files(top, ".json", &names);
    if (n <= 0) {
        fprintf(stderr, "no test files in %s\n", top);
        return 1;
    }
    tu_free_names(names, n);
    suite_dir(top, "", 0, &total);
    suite_dir(top, "optional", 1, &total);
    suite_dir(top, "optional/format", 1, &total);
    printf("%d passed, %d failed, %d skipped\n", total.passed, total.failed, total.skipped);
    return total.failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--suite") == 0) {
        return run_suite(argv[2]);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ocps_example_valid_with_defaults),
        cmocka_unit_test(test_typo_in_array_item),
        cmocka_unit_test(test_nested_defaults),
        cmocka_unit_test(test_defaults_make_required_pass),
        cmocka_unit_test(test_required_message),
        cmocka_unit_test(test_type_messages),
        cmocka_unit_test(test_minimum_messages),
        cmocka_unit_test(test_enum_and_const),
        cmocka_unit_test(test_string_keywords),
        cmocka_unit_test(test_format_is_an_annotation),
        cmocka_unit_test(test_yaml_timestamps_are_not_strings),
        cmocka_unit_test(test_ecma_regex_translation),
        cmocka_unit_test(test_regex_lookaround_and_backreferences),
        cmocka_unit_test(test_regex_dot_is_one_character),
        cmocka_unit_test(test_regex_ecma_classes),
        cmocka_unit_test(test_regex_backtracking_is_bounded),
        cmocka_unit_test(test_regex_invalid_pattern_is_schema_error),
        cmocka_unit_test(test_array_and_object_keywords),
        cmocka_unit_test(test_combinators),
        cmocka_unit_test(test_invalid_schemas_rejected),
        cmocka_unit_test(test_deep_nesting_does_not_crash),
        cmocka_unit_test(test_id_based_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
