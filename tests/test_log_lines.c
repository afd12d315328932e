/*
 * test_log_lines: the log lines on stderr (csc/util/sal_logline.h). In
 * JSON, every line is one object that a JSON parser reads back with the
 * message unchanged, whatever it holds (quotes, backslashes, newlines,
 * control characters, UTF-8), and a message too long for a line is cut
 * with the line still valid JSON; in text, the line is as before
 * ("LEVEL NAME: message").
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
#include <jansson.h>

#include "ocps/sal_logline.h"

/* Run sal_log_line with stderr sent to a temporary file; returns what was
 * written (malloc'd). */
static char *capture(int level, const char *name, const char *file, const char *func, int line,
                     const char *message)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    sal_log_line(level, name, file, func, line, message);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    fseek(tmp, 0, SEEK_END);
    long size = ftell(tmp);
    rewind(tmp);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)size, tmp), (size_t)size);
    text[size] = '\0';
    fclose(tmp);
    return text;
}

/* The one line of text as a JSON object. */
static json_t *parse_line(const char *text)
{
    size_t len = strlen(text);
    assert_true(len > 0);
    assert_int_equal(text[len - 1], '\n');
    assert_null(memchr(text, '\n', len - 1)); /* one line */
    json_error_t jerr;
    json_t *obj = json_loadb(text, len, 0, &jerr);
    if (obj == NULL) {
        fail_msg("not JSON (%s): %s", jerr.text, text);
    }
    assert_true(json_is_object(obj));
    return obj;
}

static const char *str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) {
        fail_msg("no string %s", key);
    }
    return json_string_value(v);
}

static void test_json_fields(void **state)
{
    (void)state;
    sal_log_format_set(SAL_LOG_FORMAT_JSON);
    char *text = capture(30, "OCPS", "csc/sal/sal_csc.c", "on_command", 42, "Ignoring command_start");
    json_t *obj = parse_line(text);
    assert_string_equal(str(obj, "level"), "WARNING");
    assert_int_equal(json_integer_value(json_object_get(obj, "levelno")), 30);
    assert_string_equal(str(obj, "name"), "OCPS");
    assert_string_equal(str(obj, "message"), "Ignoring command_start");
    assert_string_equal(str(obj, "file"), "csc/sal/sal_csc.c");
    assert_string_equal(str(obj, "function"), "on_command");
    assert_int_equal(json_integer_value(json_object_get(obj, "line")), 42);
    assert_int_equal(json_integer_value(json_object_get(obj, "pid")), getpid());
    /* UTC, ISO 8601 with milliseconds: 2026-12-01T16:35:16.887Z */
    const char *t = str(obj, "time");
    assert_int_equal(strlen(t), 24);
    assert_int_equal(t[10], 'T');
    assert_int_equal(t[19], '.');
    assert_int_equal(t[23], 'Z');
    json_decref(obj);
    free(text);

    /* no place given: no file, function or line */
    text = capture(40, "ocps-csc", NULL, NULL, 0, "cannot start");
    obj = parse_line(text);
    assert_string_equal(str(obj, "level"), "ERROR");
    assert_null(json_object_get(obj, "file"));
    assert_null(json_object_get(obj, "line"));
    json_decref(obj);
    free(text);
}

static void test_json_message_round_trip(void **state)
{
    (void)state;
    sal_log_format_set(SAL_LOG_FORMAT_JSON);
    const char *message = "quote \" backslash \\ newline \n tab \t cr \r bell \a esc \x1b del \x7f "
                          "UTF-8 \xc3\xa9t\xc3\xa9 \xe2\x9c\x93 {\"a\": [1]}";
    char *text = capture(20, "na\"me\n", "f\\ile", "fu\tnc", 7, message);
    json_t *obj = parse_line(text);
    assert_string_equal(str(obj, "message"), message);
    assert_string_equal(str(obj, "name"), "na\"me\n");
    assert_string_equal(str(obj, "file"), "f\\ile");
    assert_string_equal(str(obj, "function"), "fu\tnc");
    json_decref(obj);
    free(text);
}

static void test_json_long_message_cut(void **state)
{
    (void)state;
    sal_log_format_set(SAL_LOG_FORMAT_JSON);
    /* 20000 characters, each needing an escape: cut, never inside one */
    size_t n = 20000;
    char *message = malloc(n + 1);
    assert_non_null(message);
    for (size_t i = 0; i < n; i++) {
        message[i] = i % 2 ? '"' : '\n';
    }
    message[n] = '\0';
    char *text = capture(20, "OCPS", NULL, NULL, 0, message);
    assert_true(strlen(text) <= 8192);
    json_t *obj = parse_line(text);
    const char *got = str(obj, "message");
    assert_true(strlen(got) > 1000);
    assert_true(strlen(got) < n);
    assert_memory_equal(got, message, strlen(got)); /* a prefix of the message */
    json_decref(obj);
    free(text);
    free(message);
}

static void test_text_format(void **state)
{
    (void)state;
    sal_log_format_set(SAL_LOG_FORMAT_TEXT);
    char *text = capture(40, "OCPS", "x.c", "f", 1, "OCPS:1 with origin=7 quitting");
    assert_string_equal(text, "ERROR OCPS: OCPS:1 with origin=7 quitting\n");
    free(text);
    text = capture(10, "OCPS", NULL, NULL, 0, "debug");
    assert_string_equal(text, "DEBUG OCPS: debug\n");
    free(text);
}

/* sal_log_say: printf-style, "NAME: message" in text (the transports'
 * messages as they always were), an object without a place in JSON. */
static char *capture_say(const char *name, const char *fmt, const char *arg)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    sal_log_say(SAL_LOGLINE_WARNING, name, fmt, arg);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    fseek(tmp, 0, SEEK_END);
    long size = ftell(tmp);
    rewind(tmp);
    char *text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)size, tmp), (size_t)size);
    fclose(tmp);
    return text;
}

static void test_say(void **state)
{
    (void)state;
    sal_log_format_set(SAL_LOG_FORMAT_TEXT);
    char *text = capture_say("sal_kafka", "closing with %s messages not delivered", "3");
    assert_string_equal(text, "sal_kafka: closing with 3 messages not delivered\n");
    free(text);
    sal_log_format_set(SAL_LOG_FORMAT_JSON);
    text = capture_say("sal_kafka", "%s: dropped an undecodable message", "lsst.sal.OCPS.ackcmd \"x\"");
    json_t *obj = parse_line(text);
    assert_string_equal(str(obj, "name"), "sal_kafka");
    assert_string_equal(str(obj, "level"), "WARNING");
    assert_string_equal(str(obj, "message"), "lsst.sal.OCPS.ackcmd \"x\": dropped an undecodable message");
    assert_null(json_object_get(obj, "file"));
    json_decref(obj);
    free(text);
}

static void test_format_names(void **state)
{
    (void)state;
    sal_log_format f = SAL_LOG_FORMAT_JSON;
    assert_int_equal(sal_log_format_parse("text", &f), 0);
    assert_int_equal(f, SAL_LOG_FORMAT_TEXT);
    assert_int_equal(sal_log_format_parse("json", &f), 0);
    assert_int_equal(f, SAL_LOG_FORMAT_JSON);
    assert_int_equal(sal_log_format_parse(NULL, &f), 0);
    assert_int_equal(f, SAL_LOG_FORMAT_TEXT);
    assert_int_equal(sal_log_format_parse("JSON ", &f), -1);
    assert_int_equal(sal_log_format_parse("yaml", &f), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_fields),           cmocka_unit_test(test_json_message_round_trip),
        cmocka_unit_test(test_json_long_message_cut), cmocka_unit_test(test_text_format),
        cmocka_unit_test(test_format_names),          cmocka_unit_test(test_say),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
