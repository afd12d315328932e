/*
 * test_json_text: json_text writes the same bytes as jansson's json_dumps
 * (JSON_ENCODE_ANY with JSON_COMPACT or JSON_INDENT(2)), which the store
 * and the API's replies were written with before: the job object of a
 * PUT, escapes, reals, empty and nested containers, and random documents;
 * it refuses what is too deep instead of recursing without bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ocps/json_text.h"

/* json_text(v) == json_dumps(v) for the compact and the indented form. */
static void assert_as_jansson(const json_t *v)
{
    static const size_t flags[] = {JSON_COMPACT, JSON_INDENT(2), JSON_INDENT(4)};
    static const int indents[] = {0, 2, 4};
    for (size_t i = 0; i < 3; i++) {
        char *want = json_dumps(v, flags[i] | JSON_ENCODE_ANY);
        size_t len = 0;
        char *got = json_text(v, indents[i], &len);
        assert_non_null(want);
        assert_non_null(got);
        assert_string_equal(got, want);
        assert_int_equal(len, strlen(want));
        free(want);
        free(got);
    }
}

static void test_scalars(void **state)
{
    (void)state;
    json_t *v[] = {json_null(),
                   json_true(),
                   json_false(),
                   json_integer(0),
                   json_integer(-1),
                   json_integer(INT64_MAX),
                   json_integer(INT64_MIN),
                   json_real(0.0),
                   json_real(-0.0),
                   json_real(1.5),
                   json_real(1e300),
                   json_real(1e-300),
                   json_real(123456789.0),
                   json_real(0.1),
                   json_real(-2.5e-7),
                   json_real(1e17),
                   json_string(""),
                   json_string("plain"),
                   json_string("\"q\" \\ / \b\f\n\r\t \x01\x1f\x7f"),
                   json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
                   json_stringn("a\0b", 3)};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_non_null(v[i]);
        assert_as_jansson(v[i]);
        json_decref(v[i]);
    }
}

static void test_containers(void **state)
{
    (void)state;
    json_t *v = json_pack("{s[] s{} s[[] {} [[]]] s{s{s{}}} s[i s n] sf}", "empty", "obj", "nested", "deep",
                          "a", "b", "mixed", 1, "two", "pi", 3.25);
    assert_non_null(v);
    assert_as_jansson(v);
    json_t *weird = json_object();
    json_object_setn_new(weird, "k\0ey", 4, json_string("v"));
    json_object_set_new(weird, "\n\"", json_array());
    assert_as_jansson(weird);
    json_decref(weird);
    json_decref(v);
}

/* The job object a PUT answers, and what the store keeps of a job. */
static void test_job_documents(void **state)
{
    (void)state;
    json_t *job =
        json_pack("{ss ss ss ss ss sn sn sn sn s{s[s]s[{ssss}{ssss}]} s[] s{ss} s{snssss}}", "jobId",
                  "0123456789abcdef0123456789abcdef", "runId", "bench", "ownerId", "", "phase", "queued",
                  "creationTime", "2026-12-01 23:00:00+00:00", "startTime", "endTime", "executionDuration",
                  "destruction", "parameters", "command", "true", "environment", "name", "JOB_ID", "value",
                  "0123", "name", "JOB_OUTPUT_DIR", "value", "/w/0123/out", "results", "errorSummary",
                  "message", "", "jobInfo", "exitCode", "reason", "none", "shell", "sh");
    assert_non_null(job);
    assert_as_jansson(job);
    json_t *spec =
        json_pack("{s[s] s[s] s[] s:f s[] s:b s:i s[s]}", "argv", "true", "env", "JOB_ID=0123", "globs",
                  "max_duration", 0.0, "prereqs", "must_succeed", 0, "cpus", 0, "dirs", "out");
    assert_non_null(spec);
    assert_as_jansson(spec);
    json_decref(spec);
    json_decref(job);
}

/* A random document of depth at most `depth` (a fixed seed). */
static json_t *random_value(unsigned *seed, int depth)
{
    int kind = (int)(rand_r(seed) % (depth > 0 ? 9u : 7u));
    switch (kind) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(rand_r(seed) & 1);
    case 2:
        return json_integer((json_int_t)rand_r(seed) * (rand_r(seed) & 1 ? -1 : 1) * 7919);
    case 3:
        return json_real((double)rand_r(seed) / ((double)rand_r(seed) + 1.0) *
                         (rand_r(seed) & 1 ? 1e-9 : 1e9));
    case 4:
    case 5:
    case 6: {
        char s[16];
        size_t n = rand_r(seed) % sizeof s;
        for (size_t i = 0; i < n; i++) {
            s[i] = (char)(rand_r(seed) % 127 + 1); /* ASCII, control characters included */
        }
        return json_stringn(s, n);
    }
    case 7: {
        json_t *a = json_array();
        for (unsigned i = rand_r(seed) % 5; i > 0; i--) {
            json_array_append_new(a, random_value(seed, depth - 1));
        }
        return a;
    }
    default: {
        json_t *o = json_object();
        for (unsigned i = rand_r(seed) % 5; i > 0; i--) {
            char key[8];
            snprintf(key, sizeof key, "k%u", rand_r(seed) % 50);
            json_object_set_new(o, key, random_value(seed, depth - 1));
        }
        return o;
    }
    }
}

static void test_random_documents(void **state)
{
    (void)state;
    unsigned seed = 14;
    for (int i = 0; i < 2000; i++) {
        json_t *v = random_value(&seed, 5);
        assert_non_null(v);
        assert_as_jansson(v);
        json_decref(v);
    }
}

static void test_too_deep_refused(void **state)
{
    (void)state;
    json_t *top = json_array();
    json_t *cur = top;
    for (int i = 0; i < JSON_TEXT_MAX_DEPTH + 10; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    assert_null(json_text(top, 0, NULL));
    assert_null(json_text(NULL, 2, NULL));
    json_decref(top);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),          cmocka_unit_test(test_containers),
        cmocka_unit_test(test_job_documents),    cmocka_unit_test(test_random_documents),
        cmocka_unit_test(test_too_deep_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
