/*
 * test_sal_utf8: where UTF-8 text may be cut, and which characters are
 * valid (the checks of SAL strings and the cuts of messages, logs and
 * bounded fields rely on both).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ocps/sal_utf8.h"

static size_t len_of(const char *s)
{
    return sal_utf8_char_len((const unsigned char *)s);
}

static void valid_characters_have_their_length(void **state)
{
    (void)state;
    assert_int_equal(len_of("a"), 1);
    assert_int_equal(len_of("\x7f"), 1);
    assert_int_equal(len_of("\xc3\xa9"), 2);         /* é */
    assert_int_equal(len_of("\xe2\x82\xac"), 3);     /* € */
    assert_int_equal(len_of("\xf0\x9f\x94\xad"), 4); /* U+1F52D */
    assert_int_equal(len_of("\xf4\x8f\xbf\xbf"), 4); /* U+10FFFF, the last */
    assert_int_equal(len_of("\xee\x80\x80"), 3);     /* U+E000, after the surrogates */
}

static void invalid_sequences_have_none(void **state)
{
    (void)state;
    assert_int_equal(len_of("\x80"), 0);             /* a continuation byte alone */
    assert_int_equal(len_of("\xc0\xaf"), 0);         /* overlong "/" */
    assert_int_equal(len_of("\xe0\x80\xaf"), 0);     /* overlong, three bytes */
    assert_int_equal(len_of("\xed\xa0\x80"), 0);     /* U+D800, a surrogate */
    assert_int_equal(len_of("\xf4\x90\x80\x80"), 0); /* above U+10FFFF */
    assert_int_equal(len_of("\xf8\x88\x80\x80"), 0); /* five-byte form */
    assert_int_equal(len_of("\xe2\x82"), 0);         /* cut by the NUL */
    assert_int_equal(len_of("\xc3("), 0);            /* not continued */
}

static void cuts_fall_where_characters_begin(void **state)
{
    (void)state;
    const char *s = "a\xe2\x82\xac"
                    "b"; /* a € b: bytes 0, 1-3, 4 */
    assert_int_equal(sal_utf8_cut(s, 0), 0);
    assert_int_equal(sal_utf8_cut(s, 1), 1);
    assert_int_equal(sal_utf8_cut(s, 2), 1); /* inside €: before it */
    assert_int_equal(sal_utf8_cut(s, 3), 1);
    assert_int_equal(sal_utf8_cut(s, 4), 4);
    assert_int_equal(sal_utf8_cut(s, 5), 5); /* at the NUL: all of it */
    assert_int_equal(sal_utf8_cut("\x80\x80", 1), 0);
}

/* An ack's result made from bad input keeps its reason: what a SAL string
 * cannot hold becomes '?', cut where a character begins. */
static void sanitized_text_keeps_what_it_can(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(sal_utf8_sanitize("bad\xff.yaml", out, sizeof out), 9);
    assert_string_equal(out, "bad?.yaml");
    sal_utf8_sanitize("a\x01\tb\nc\x7f", out, sizeof out);
    assert_string_equal(out, "a?\tb\nc?");
    sal_utf8_sanitize("\xe2\x82\xac\xe2\x82", out, sizeof out); /* a cut euro sign: two bad bytes */
    assert_string_equal(out, "\xe2\x82\xac??");
    assert_int_equal(sal_utf8_sanitize("0123456789abcd\xe2\x82\xac", out, sizeof out),
                     14); /* no room: not split */
    assert_string_equal(out, "0123456789abcd");
    char one[1];
    assert_int_equal(sal_utf8_sanitize("x", one, sizeof one), 0);
    assert_string_equal(one, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_characters_have_their_length),
        cmocka_unit_test(invalid_sequences_have_none),
        cmocka_unit_test(cuts_fall_where_characters_begin),
        cmocka_unit_test(sanitized_text_keeps_what_it_can),
    };
    return cmocka_run_group_tests_name("sal_utf8", tests, NULL, NULL);
}
