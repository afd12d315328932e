/*
 * test_yaml_json: the YAML loader (csc/config/yaml_json.h) against what
 * Python's yaml.safe_load (PyYAML 6) gives for the same text: implicit
 * resolvers, quoted and block scalars, tags, anchors, aliases and merge
 * keys, key conversion, limits and error messages. The expectations were
 * taken from PyYAML; no Python is needed to run these tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"
#include "ocps/yaml_json.h"

/* yaml must load to the JSON text expected (compared with json_equal, so an
 * integer 1 differs from a float 1.0). */
static void check_yaml_n(const char *yaml, size_t len, const char *expected)
{
    char err[512];
    json_error_t jerr;
    json_t *want = json_loads(expected, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    json_t *got = yaml_json_load(yaml, len, err, sizeof err);
    if (!want) {
        fail_msg("bad expectation %s: %s", expected, jerr.text);
    }
    if (!got) {
        fail_msg("YAML %s: unexpected error: %s", yaml, err);
    }
    if (!json_equal(got, want)) {
        char *text = json_dumps(got, JSON_ENCODE_ANY);
        fail_msg("YAML %s\n gave %s\n want %s", yaml, text, expected);
    }
    json_decref(got);
    json_decref(want);
}

static void check_yaml(const char *yaml, const char *expected)
{
    check_yaml_n(yaml, strlen(yaml), expected);
}

/* yaml must fail with a message containing fragment. */
static void check_error(const char *yaml, const char *fragment)
{
    char err[512];
    json_t *got = yaml_json_load(yaml, strlen(yaml), err, sizeof err);
    if (got) {
        char *text = json_dumps(got, JSON_ENCODE_ANY);
        fail_msg("YAML %s: expected an error, got %s", yaml, text);
    }
    if (!strstr(err, fragment)) {
        fail_msg("YAML %s: error \"%s\" does not contain \"%s\"", yaml, err, fragment);
    }
}

static void test_empty_document_is_null(void **state)
{
    (void)state;
    check_yaml("", "null");
    check_yaml("# only a comment\n\n# and another\n", "null");
    check_yaml("---\n", "null");
    check_yaml("--- # empty\n...\n", "null");
    check_yaml_n(NULL, 0, "null");
}

static void test_plain_null(void **state)
{
    (void)state;
    check_yaml("[~, null, Null, NULL, nULL, '', \"null\"]",
               "[null, null, null, null, \"nULL\", \"\", \"null\"]");
    check_yaml("a:\nb: ~\n", "{\"a\": null, \"b\": null}");
}

static void test_plain_bool(void **state)
{
    (void)state;
    check_yaml("[yes, Yes, YES, true, True, TRUE, on, On, ON]",
               "[true, true, true, true, true, true, true, true, true]");
    check_yaml("[no, No, NO, false, False, FALSE, off, Off, OFF]",
               "[false, false, false, false, false, false, false, false, false]");
    /* Not YAML 1.1 booleans for PyYAML. */
    check_yaml("[y, n, yEs, tRUE, 'yes', \"on\"]", "[\"y\", \"n\", \"yEs\", \"tRUE\", \"yes\", \"on\"]");
}

static void test_plain_int(void **state)
{
    (void)state;
    check_yaml("[0, -0, +12, -17, 1_000, 1__, 0_]", "[0, 0, 12, -17, 1000, 1, 0]");
    check_yaml("[0b1010, -0b101, 0b1_0, 0x1F, 0xFF_FF, -0x10]", "[10, -5, 2, 31, 65535, -16]");
    check_yaml("[0777, 010, 00, 0_7]", "[511, 8, 0, 7]");
    check_yaml("[190:20:30, -1:30, 1:60, 12:30]", "[685230, -90, \"1:60\", 750]");
    /* Not integers in YAML 1.1: 09 is not octal, 0o17 and 0B10 are strings. */
    check_yaml("[09, 0o17, 0B10, 0XFF, 1_000_]", "[\"09\", \"0o17\", \"0B10\", \"0XFF\", 1000]");
    check_yaml("[9223372036854775807, -9223372036854775808, 0x7fffffffffffffff]",
               "[9223372036854775807, -9223372036854775808, 9223372036854775807]");
}

static void test_plain_float(void **state)
{
    (void)state;
    check_yaml("[1.5, -1.5, +1.5, 1., .5, 0.1e-3, 1_2.3_4]", "[1.5, -1.5, 1.5, 1.0, 0.5, 0.0001, 12.34]");
    check_yaml("[6.8523015e+5, 685.230_15e+03, 1.0e+3, 1.e+5]", "[685230.15, 685230.15, 1000.0, 100000.0]");
    check_yaml("[190:20:30.15, 1:30:00.5, 1:2.]", "[685230.15, 5400.5, 62.0]");
    /* PyYAML's float regex needs a dot and a signed exponent. */
    check_yaml("[1e3, 1.0e3, 1e+3, -.5, +.5, ._5, 1.2.3]",
               "[\"1e3\", \"1.0e3\", \"1e+3\", \"-.5\", \"+.5\", \"._5\", \"1.2.3\"]");
}

static void test_numbers_vs_strings(void **state)
{
    (void)state;
    check_yaml("a: \"1\"\nb: 1\nc: 1.0\nd: 0o17\ne: 1_000\nf: '1.0'\n",
               "{\"a\": \"1\", \"b\": 1, \"c\": 1.0, \"d\": \"0o17\", \"e\": 1000, \"f\": \"1.0\"}");
}

static void test_timestamps_stay_text(void **state)
{
    (void)state;
    check_yaml("[2001-12-14, 2001-12-14t21:59:43.10Z, 2001-12-14 21:59:43.10 -5, 2001-1-1]",
               "[\"2001-12-14\", \"2001-12-14t21:59:43.10Z\", \"2001-12-14 21:59:43.10 -5\", \"2001-1-1\"]");
    check_yaml("!!timestamp 2001-1-1", "\"2001-1-1\"");
    /* Dates Python's datetime refuses are errors in safe_load too. */
    check_error("x: 2001-13-01", "line 1, column 4: invalid timestamp '2001-13-01'");
    check_error("x: 2001-02-29", "invalid timestamp");
    check_yaml("x: 2000-02-29", "{\"x\": \"2000-02-29\"}");
    check_error("x: 2001-01-01 1:00:00 +24", "invalid timestamp");
}

/* The timestamps are listed, so that validation can refuse one where a
 * string is wanted as salobj does (PyYAML makes it a datetime): plain or
 * !!timestamp scalars, one entry for an anchored one however often it is
 * used; quoted and block scalars are strings. */
static void test_timestamps_are_listed(void **state)
{
    (void)state;
    const char *yaml =
        "a: 2024-01-01\nb: '2024-01-01'\nc: !!timestamp 2001-1-1\nd: &t 2001-12-14 21:59:43.10 -5\n"
        "e:\n  - *t\n  - \"2024-01-01\"\n  - 2024-01-01x\n  - |\n    2024-01-01\n";
    json_t *stamps = json_array();
    char err[512];
    json_t *got = yaml_json_load_named(yaml, strlen(yaml), "x.yaml", stamps, err, sizeof err);
    if (got == NULL) {
        fail_msg("%s", err);
    }
    assert_int_equal(json_array_size(stamps), 3);
    assert_ptr_equal(json_array_get(stamps, 0), json_object_get(got, "a"));
    assert_ptr_equal(json_array_get(stamps, 1), json_object_get(got, "c"));
    assert_ptr_equal(json_array_get(stamps, 2), json_object_get(got, "d"));
    assert_ptr_equal(json_array_get(json_object_get(got, "e"), 0), json_object_get(got, "d"));
    assert_string_equal(json_string_value(json_object_get(got, "a")), "2024-01-01");
    json_decref(got);
    json_decref(stamps);
    /* messages name the file */
    assert_null(yaml_json_load_named("x: [", 4, "x.yaml", NULL, err, sizeof err));
    assert_string_equal(
        err, "x.yaml: line 2, column 1: while parsing a flow node, did not find expected node content");
}

static void test_quoted_scalars_are_strings(void **state)
{
    (void)state;
    check_yaml("['1', \"1.5\", 'yes', \"~\", '', 'it''s', \"tab\\tnul\\0\\u00e9\\x41\"]",
               "[\"1\", \"1.5\", \"yes\", \"~\", \"\", \"it's\", \"tab\\tnul\\u0000\\u00e9A\"]");
}

static void test_block_scalars(void **state)
{
    (void)state;
    check_yaml("a: |\n  line one\n  line two\n\nb: 1\n", "{\"a\": \"line one\\nline two\\n\", \"b\": 1}");
    check_yaml("a: |-\n  x\n  y\n\n", "{\"a\": \"x\\ny\"}");
    check_yaml("a: |+\n  x\n\n\nb: 1\n", "{\"a\": \"x\\n\\n\\n\", \"b\": 1}");
    check_yaml("a: >\n  folded\n  text\n\n  para\n", "{\"a\": \"folded text\\npara\\n\"}");
    check_yaml("a: >-\n  12\n", "{\"a\": \"12\"}");
    check_yaml("a: >+\n  x\n\n", "{\"a\": \"x\\n\\n\"}");
}

static void test_explicit_tags(void **state)
{
    (void)state;
    check_yaml("[!!str 123, !!str yes, !!str, !!int \"12\", !!int \"0o17\", !!int 0x1_F]",
               "[\"123\", \"yes\", \"\", 12, 15, 31]");
    check_yaml("[!!float 1e3, !!float \"1\", !!float 1:30, !!bool Yes, !!bool \"off\", !!null abc]",
               "[1000.0, 1.0, 90.0, true, false, null]");
    check_yaml("[!!seq [1], !!map {a: 1}, !<tag:yaml.org,2002:int> '5', ! 12, ! '12']",
               "[[1], {\"a\": 1}, 5, 12, 12]");
    check_yaml("%TAG !e! tag:yaml.org,2002:\n--- !e!int '7'\n", "7");
    /* The non-specific tag ! resolves like a plain scalar, even empty. */
    check_yaml("- ! '12'\n- ! yes\n- !\n", "[12, true, null]");
    check_error("!!int 1.5", "invalid integer '1.5'");
    check_error("!!float abc", "invalid float 'abc'");
    check_error("!!bool maybe", "invalid boolean 'maybe'");
    check_error("!!int", "invalid integer ''");
}

static void test_other_tags_rejected(void **state)
{
    (void)state;
    check_error("a: !!python/object:os.system {}",
                "line 1, column 4: could not determine a constructor for the tag "
                "'tag:yaml.org,2002:python/object:os.system'");
    check_error("a: !!python/tuple [1]", "could not determine a constructor");
    check_error("a: !foo 1", "could not determine a constructor for the tag '!foo'");
    check_error("!!binary aGk=", "has no JSON equivalent");
    check_error("!!set {a: null}", "has no JSON equivalent");
}

static void test_tag_kind_mismatch(void **state)
{
    (void)state;
    check_error("a: !!seq {b: 1}", "line 1, column 4: expected a sequence node, but found mapping");
    check_error("!!map [1]", "expected a mapping node, but found sequence");
    check_error("!!seq 1", "expected a sequence node, but found scalar");
    check_error("!!str [1]", "expected a scalar node, but found sequence");
}

static void test_anchors_and_aliases(void **state)
{
    (void)state;
    check_yaml("a: &x 1\nb: *x\n", "{\"a\": 1, \"b\": 1}");
    check_yaml("a: &m {b: [1, 2]}\nc: *m\nd: [*m, *m]\n",
               "{\"a\": {\"b\": [1, 2]}, \"c\": {\"b\": [1, 2]}, \"d\": [{\"b\": [1, 2]}, {\"b\": [1, 2]}]}");
    check_yaml("- &s [x, {y: z}]\n- *s\n", "[[\"x\", {\"y\": \"z\"}], [\"x\", {\"y\": \"z\"}]]");
    check_yaml("{&k key: 1, *k : 2}", "{\"key\": 2}");
}

static void test_alias_errors(void **state)
{
    (void)state;
    check_error("a: *nowhere", "line 1, column 4: found undefined alias 'nowhere'");
    check_error("[*a, &a 1]", "found undefined alias 'a'");
    check_error("a: &x 1\nb: &x 2\n", "line 2, column 4: found duplicate anchor 'x'");
    check_error("&a [*a]", "JSON has no recursive structures");
}

static void test_merge_mapping(void **state)
{
    (void)state;
    check_yaml("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n  z: 4\n",
               "{\"base\": {\"x\": 1, \"y\": 2}, \"derived\": {\"x\": 1, \"y\": 3, \"z\": 4}}");
    check_yaml("{<<: {a: 1, b: 1}, b: 2}", "{\"a\": 1, \"b\": 2}");
}

static void test_merge_explicit_keys_win(void **state)
{
    (void)state;
    /* Even written before the merge key. */
    check_yaml("{a: 1, <<: {a: 2, b: 2}}", "{\"a\": 1, \"b\": 2}");
    /* Nested merges are flattened first. */
    check_yaml("- &a {x: 1}\n- &b {<<: *a, y: 2}\n- {<<: *b, z: 3}\n",
               "[{\"x\": 1}, {\"x\": 1, \"y\": 2}, {\"x\": 1, \"y\": 2, \"z\": 3}]");
}

static void test_merge_sequence_order(void **state)
{
    (void)state;
    /* Earlier mappings of the sequence win over later ones. */
    check_yaml("- <<: [{a: 1, b: 1}, {a: 2, c: 2}]\n  c: 3\n", "[{\"a\": 1, \"b\": 1, \"c\": 3}]");
    check_yaml("- &p {x: 1, y: 1}\n- &q {x: 2, z: 2}\n- {<<: [*p, *q], w: 0}\n",
               "[{\"x\": 1, \"y\": 1}, {\"x\": 2, \"z\": 2}, {\"x\": 1, \"y\": 1, \"z\": 2, \"w\": 0}]");
    /* With two << keys, the later one wins. */
    check_yaml("{<<: {a: 1}, <<: {a: 2}}", "{\"a\": 2}");
}

static void test_merge_errors(void **state)
{
    (void)state;
    check_error("<<: 1",
                "line 1, column 5: expected a mapping or list of mappings for merging, but found scalar");
    check_error("<<: [{a: 1}, 2]", "expected a mapping for merging, but found scalar");
    check_error("a: <<", "could not determine a constructor for the tag 'tag:yaml.org,2002:merge'");
    check_error("a: =", "could not determine a constructor for the tag 'tag:yaml.org,2002:value'");
    /* A quoted << is an ordinary key; a plain = key is the string "=". */
    check_yaml("'<<': {a: 1}\n=: 2\n", "{\"<<\": {\"a\": 1}, \"=\": 2}");
}

static void test_non_string_keys(void **state)
{
    (void)state;
    check_yaml("{1: a, 0x10: b, -3: c, 1.5: d, 0.00001: e, 1.0e+16: f, 100.0: g}",
               "{\"1\": \"a\", \"16\": \"b\", \"-3\": \"c\", \"1.5\": \"d\", \"1e-05\": \"e\", "
               "\"1e+16\": \"f\", \"100.0\": \"g\"}");
    check_yaml(
        "{true: a, no: b, ~: c, null: d, 2001-12-14: e, -0.0: f}",
        "{\"True\": \"a\", \"False\": \"b\", \"None\": \"d\", \"2001-12-14\": \"e\", \"-0.0\": \"f\"}");
}

static void test_nul_in_key(void **state)
{
    char err[256];
    static const char yaml[] = "{\"a\\0b\": 1}";
    json_t *v = yaml_json_load(yaml, strlen(yaml), err, sizeof err);
    (void)state;
    assert_non_null(v);
    assert_int_equal(json_object_size(v), 1);
    assert_int_equal(json_integer_value(json_object_getn(v, "a\0b", 3)), 1);
    json_decref(v);
}

static void test_complex_key_rejected(void **state)
{
    (void)state;
    check_error("? [a]\n: 1\n", "line 1, column 3: found unhashable key");
    check_error("{{a: 1}: 2}", "found unhashable key");
    check_error("- &m {a: 1}\n- {*m : 2}\n", "line 2, column 4: found unhashable key");
}

static void test_duplicate_keys_last_wins(void **state)
{
    (void)state;
    check_yaml("x: 1\nx: 2\n", "{\"x\": 2}");
    check_yaml("{x: 1, y: 0, x: {a: 1}}", "{\"x\": {\"a\": 1}, \"y\": 0}");
}

static void test_large_integers_rejected(void **state)
{
    (void)state;
    check_error("a: 9223372036854775808",
                "line 1, column 4: integer '9223372036854775808' does not fit in 64 bits");
    check_error("-9223372036854775809", "does not fit in 64 bits");
    check_error("0x8000000000000000", "does not fit in 64 bits");
    check_error("1:0:0:0:0:0:0:0:0:0:0:0", "does not fit in 64 bits");
    check_error("!!int 12345678901234567890", "does not fit in 64 bits");
}

static void test_non_finite_floats_rejected(void **state)
{
    (void)state;
    check_error("[.inf]", "line 1, column 2: float '.inf' is not finite");
    check_error("-.inf", "not finite");
    check_error(".NaN", "not finite");
    check_error("1.0e+999", "not finite");
    check_yaml("[.inf_, .infinity, inf]", "[\".inf_\", \".infinity\", \"inf\"]");
}

static char *nested(int levels, const char *inner)
{
    size_t len = 2 * (size_t)levels + strlen(inner) + 1;
    char *text = malloc(len);
    assert_non_null(text);
    memset(text, '[', (size_t)levels);
    strcpy(text + levels, inner);
    memset(text + levels + strlen(inner), ']', (size_t)levels);
    text[len - 1] = '\0';
    return text;
}

static void test_depth_limit(void **state)
{
    char err[256];
    char *ok = nested(YAML_JSON_MAX_DEPTH, "1");
    char *deep = nested(YAML_JSON_MAX_DEPTH + 1, "1");
    json_t *v = yaml_json_load(ok, strlen(ok), err, sizeof err);
    (void)state;
    assert_non_null(v);
    json_decref(v);
    check_error(deep, "line 1, column 129: nesting deeper than 128 levels");
    free(ok);
    free(deep);
}

static void test_depth_limit_through_aliases(void **state)
{
    char *anchored = nested(100, "1");
    char *outer = nested(30, "*a");
    char text[1024];
    (void)state;
    snprintf(text, sizeof text, "a: &a %s\nb: %s\n", anchored, outer);
    check_error(text, "line 2, column 34: nesting deeper than 128 levels");
    free(anchored);
    free(outer);
}

static void test_alias_bomb_rejected(void **state)
{
    static const char bomb[] = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                               "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                               "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                               "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                               "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                               "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                               "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                               "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                               "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    (void)state;
    check_error(bomb, "line 7, column 8: more than 1000000 nodes (counting alias expansions)");
    /* The same through merge keys. */
    check_error("a: &a {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}\n"
                "b: &b {<<: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a], x: [*a, *a, *a, *a, *a, *a, *a, *a]}\n"
                "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
                "more than 1000000 nodes");
}

static void test_input_size_limit(void **state)
{
    size_t len = YAML_JSON_MAX_INPUT + 1;
    char *big = malloc(len);
    char err[256];
    (void)state;
    assert_non_null(big);
    memset(big, '#', len);
    assert_null(yaml_json_load(big, len, err, sizeof err));
    assert_non_null(strstr(err, "larger than the limit of 4194304 bytes"));
    free(big);
}

static void test_single_document_only(void **state)
{
    (void)state;
    check_error("--- 1\n--- 2\n", "line 2, column 1: expected a single document in the stream");
    check_error("a: 1\n---\n", "expected a single document");
    check_yaml("--- 1\n...\n# trailing comment\n", "1");
}

static void test_syntax_errors_name_line(void **state)
{
    (void)state;
    check_error("a: 1\nb: [1, 2\nc: 3\n",
                "line 3, column 2: while parsing a flow sequence (from line 2, column 4)");
    check_error("a: 1\n  b: 2\n", "line 2, column 4: mapping values are not allowed in this context");
    check_error("a: 1\n\t- x\n", "line 2, column 1:");
    check_error("a: \"unterminated\n", "line 2, column 1: while scanning a quoted scalar");
    check_error("a: \x01\n", "line 1, column 4: control characters are not allowed");
}

static void test_text_need_not_be_terminated(void **state)
{
    char err[8];
    json_t *v;
    (void)state;
    check_yaml_n("a: 12345", 5, "{\"a\": 12}");
    /* err may be absent or tiny. */
    assert_null(yaml_json_load("[", 1, NULL, 0));
    assert_null(yaml_json_load("[", 1, err, sizeof err));
    assert_int_equal(strlen(err), sizeof err - 1);
    v = yaml_json_load("x", 1, NULL, 0);
    assert_string_equal(json_string_value(v), "x");
    json_decref(v);
}

static const char site_config[] = "# OCPS site configuration\n"
                                  "instances:\n"
                                  "  - &latiss\n"
                                  "    sal_index: 1\n"
                                  "    instance: LATISS\n"
                                  "    url: http://uws-server/api/v1\n"
                                  "    poll_interval: 0.5\n"
                                  "    butler: LATISS\n"
                                  "    input_collection: LATISS/raw/all\n"
                                  "    output_glob: \"*\"\n"
                                  "  - <<: *latiss\n"
                                  "    sal_index: 2\n"
                                  "    instance: LSSTComCam\n"
                                  "description: >\n"
                                  "  Folded\n"
                                  "  text\n"
                                  "script: |\n"
                                  "  line one\n"
                                  "  line two\n"
                                  "version: 010\n"
                                  "enabled: yes\n";

static const char site_config_json[] =
    "{\"instances\": ["
    "{\"sal_index\": 1, \"instance\": \"LATISS\", \"url\": \"http://uws-server/api/v1\", "
    "\"poll_interval\": 0.5, \"butler\": \"LATISS\", \"input_collection\": \"LATISS/raw/all\", "
    "\"output_glob\": \"*\"}, "
    "{\"sal_index\": 2, \"instance\": \"LSSTComCam\", \"url\": \"http://uws-server/api/v1\", "
    "\"poll_interval\": 0.5, \"butler\": \"LATISS\", \"input_collection\": \"LATISS/raw/all\", "
    "\"output_glob\": \"*\"}], "
    "\"description\": \"Folded text\\n\", \"script\": \"line one\\nline two\\n\", "
    "\"version\": 8, \"enabled\": true}";

static void test_site_config(void **state)
{
    (void)state;
    check_yaml(site_config, site_config_json);
}

static void test_load_file(void **state)
{
    char dir[] = "/tmp/test_yaml_json.XXXXXX";
    char path[256], bad[256], err[512];
    json_t *v, *want;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/site.yaml", dir);
    snprintf(bad, sizeof bad, "%s/bad.yaml", dir);
    assert_int_equal(tu_write_file(path, site_config, strlen(site_config)), 0);
    assert_int_equal(tu_write_file(bad, "a: 1\nb: *x\n", 11), 0);
    v = yaml_json_load_file(path, err, sizeof err);
    want = json_loads(site_config_json, 0, NULL);
    assert_non_null(v);
    assert_true(json_equal(v, want));
    json_decref(v);
    json_decref(want);

    assert_null(yaml_json_load_file(bad, err, sizeof err));
    assert_non_null(strstr(err, bad));
    assert_non_null(strstr(err, "line 2, column 4: found undefined alias 'x'"));
    unlink(bad);

    assert_null(yaml_json_load_file(bad, err, sizeof err));
    assert_non_null(strstr(err, bad));
    assert_non_null(strstr(err, "No such file"));
    unlink(path);
    rmdir(dir);
}

static void test_load_file_size_limit(void **state)
{
    char path[] = "/tmp/test_yaml_json_big.XXXXXX";
    char err[512];
    int fd = mkstemp(path);
    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, YAML_JSON_MAX_INPUT + 1), 0);
    close(fd);
    assert_null(yaml_json_load_file(path, err, sizeof err));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "larger than the limit"));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_document_is_null),
        cmocka_unit_test(test_plain_null),
        cmocka_unit_test(test_plain_bool),
        cmocka_unit_test(test_plain_int),
        cmocka_unit_test(test_plain_float),
        cmocka_unit_test(test_numbers_vs_strings),
        cmocka_unit_test(test_timestamps_stay_text),
        cmocka_unit_test(test_timestamps_are_listed),
        cmocka_unit_test(test_quoted_scalars_are_strings),
        cmocka_unit_test(test_block_scalars),
        cmocka_unit_test(test_explicit_tags),
        cmocka_unit_test(test_other_tags_rejected),
        cmocka_unit_test(test_tag_kind_mismatch),
        cmocka_unit_test(test_anchors_and_aliases),
        cmocka_unit_test(test_alias_errors),
        cmocka_unit_test(test_merge_mapping),
        cmocka_unit_test(test_merge_explicit_keys_win),
        cmocka_unit_test(test_merge_sequence_order),
        cmocka_unit_test(test_merge_errors),
        cmocka_unit_test(test_non_string_keys),
        cmocka_unit_test(test_nul_in_key),
        cmocka_unit_test(test_complex_key_rejected),
        cmocka_unit_test(test_duplicate_keys_last_wins),
        cmocka_unit_test(test_large_integers_rejected),
        cmocka_unit_test(test_non_finite_floats_rejected),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_depth_limit_through_aliases),
        cmocka_unit_test(test_alias_bomb_rejected),
        cmocka_unit_test(test_input_size_limit),
        cmocka_unit_test(test_single_document_only),
        cmocka_unit_test(test_syntax_errors_name_line),
        cmocka_unit_test(test_text_need_not_be_terminated),
        cmocka_unit_test(test_site_config),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_load_file_size_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
