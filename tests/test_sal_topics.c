/*
 * test_sal_topics: what the runtime resolves once instead of looking up by
 * name on every access. The generated private-field offsets agree with the
 * field tables for every topic of every embedded release; a sample stamped
 * through them reads back by name; fields resolved once read and write as
 * the name-based calls do; lent strings are used without a copy; refused
 * text says which rule failed and where; and a CSC whose interface lacks a
 * generic topic it needs fails at open, naming the topic (no topics[-1]
 * later).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ocps/ocps_interface.h"
#include "ocps/sal_csc.h"
#include "ocps/sal_sample.h"
#include "ocps/sal_transport.h"

static void private_offsets_match_the_field_tables(void **state)
{
    (void)state;
    const sal_interface_set *set = ocps_interfaces();
    for (size_t r = 0; r < set->nreleases; r++) {
        const sal_component_info *c = set->releases[r];
        for (size_t i = 0; i < c->ntopics; i++) {
            const sal_topic_info *t = &c->topics[i];
            assert_int_equal(t->priv.salIndex, (ptrdiff_t)sal_topic_field(t, "salIndex")->offset);
            assert_int_equal(t->priv.revCode, sal_topic_field(t, "private_revCode")->offset);
            assert_int_equal(t->priv.sndStamp, sal_topic_field(t, "private_sndStamp")->offset);
            assert_int_equal(t->priv.rcvStamp, sal_topic_field(t, "private_rcvStamp")->offset);
            assert_int_equal(t->priv.seqNum, sal_topic_field(t, "private_seqNum")->offset);
            assert_int_equal(t->priv.identity, sal_topic_field(t, "private_identity")->offset);
            assert_int_equal(t->priv.origin, sal_topic_field(t, "private_origin")->offset);
        }
    }
}

static void stamp_reads_back_by_name(void **state)
{
    (void)state;
    char err[256];
    const sal_component_info *c = ocps_interface_select("dds", NULL, err, sizeof err);
    const sal_topic_info *t = &c->topics[sal_component_find_topic(c, "logevent_job_result")];
    void *s = sal_sample_new(t);
    sal_stamp st = {.rev_code = "abcdef12",
                    .identity = "OCPS:101",
                    .snd_stamp = 1.5e9,
                    .origin = 4242,
                    .index = 101,
                    .seqnum = 7};
    sal_sample_stamp(t, s, &st);
    assert_string_equal(sal_sample_get_string(t, s, "private_revCode"), "abcdef12");
    assert_string_equal(sal_sample_get_string(t, s, "private_identity"), "OCPS:101");
    assert_true(sal_sample_get_number(t, s, "private_sndStamp", 0) == 1.5e9);
    assert_int_equal(sal_sample_get_i32(t, s, "private_origin"), 4242);
    assert_int_equal(sal_sample_get_i32(t, s, "salIndex"), 101);
    assert_int_equal(sal_sample_get_i32(t, s, "private_seqNum"), 7);
    assert_int_equal(sal_sample_index(t, s), 101);
    assert_int_equal(sal_sample_seqnum(t, s), 7);
    st.seqnum = 0; /* kept */
    sal_sample_stamp(t, s, &st);
    assert_int_equal(sal_sample_seqnum(t, s), 7);
    sal_sample_set_seqnum(t, s, 9);
    assert_int_equal(sal_sample_get_i32(t, s, "private_seqNum"), 9);

    /* a field resolved once */
    const sal_field_info *result = sal_topic_field(t, "result");
    const sal_field_info *code = sal_topic_field(t, "exit_code");
    assert_non_null(result);
    assert_int_equal(sal_field_set_string(t, result, s, "{\"ok\": true}", err, sizeof err), 0);
    assert_string_equal(sal_sample_get_string(t, s, "result"), "{\"ok\": true}");
    assert_int_equal(sal_field_set_number(t, code, s, 0, 255, err, sizeof err), 0);
    assert_true(sal_field_get_number(code, s, 0) == 255);
    assert_int_not_equal(sal_field_set_number(t, result, s, 0, 1, err, sizeof err), 0);
    assert_non_null(strstr(err, "result"));
    assert_null(sal_field_get_string(code, s));
    sal_sample_free(t, s);
}

/* A sample whose strings are lent (every ack is written from one): its
 * unbounded strings read "" until lent, a lent value is used as it is (no
 * copy, nothing to free), refused text is refused as by
 * sal_field_set_string and leaves the field as it was, and a bounded
 * field still gets a copy. */
static void lent_strings_are_used_without_a_copy(void **state)
{
    (void)state;
    char err[256];
    const sal_component_info *c = ocps_interface_select("dds", NULL, err, sizeof err);
    const sal_topic_info *t = &c->topics[sal_component_find_topic(c, "ackcmd")];
    void *s = sal_sample_new_lent(t);
    assert_non_null(s);
    const sal_field_info *result = sal_topic_field(t, "result");
    const sal_field_info *identity = sal_topic_field(t, "identity");
    assert_string_equal(sal_field_get_string(result, s), "");
    assert_string_equal(sal_field_get_string(identity, s), "");
    char text[] = "Done";
    assert_int_equal(sal_field_lend_string(t, result, s, text, err, sizeof err), 0);
    assert_ptr_equal(sal_field_get_string(result, s), text);
    assert_int_not_equal(sal_field_lend_string(t, result, s, "bad\x01", err, sizeof err), 0);
    assert_non_null(strstr(err, "control character"));
    assert_ptr_equal(sal_field_get_string(result, s), text);
    assert_int_equal(sal_field_lend_string(t, identity, s, "", err, sizeof err), 0);
    assert_string_equal(sal_field_get_string(identity, s), "");
    char id[] = "OCPS:1";
    const sal_field_info *priv = sal_topic_field(t, "private_identity"); /* string<128> */
    assert_int_equal(sal_field_lend_string(t, priv, s, id, err, sizeof err), 0);
    id[0] = 'X';
    assert_string_equal(sal_field_get_string(priv, s), "OCPS:1");
    free(s); /* nothing of it is owned */
}

/* A string that is refused says which rule failed and where; what is
 * accepted is what sal_text_valid accepts. */
static void text_checks_say_which_rule_failed(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t max;
        const char *allowed;
        const char *why; /* NULL: accepted */
    } cases[] = {
        {"cpBias.yaml", 64, NULL, NULL},
        {"caf\xc3\xa9 \xf0\x9f\x94\xad", 64, NULL, NULL},
        {"two\nlines\tand\r", 64, "\n\t\r", NULL},
        {"ab\001c", 64, NULL, "contains control character 0x01 at byte 2"},
        {"ab\001c", 64, "\n\t\r", "contains control character 0x01 at byte 2"},
        {"a\nb", 64, NULL, "contains control character 0x0a at byte 1"},
        {"del\x7f", 64, "\n", "contains control character 0x7f at byte 3"},
        {"\x1b[31m", 64, "\n\t\r", "contains control character 0x1b at byte 0"},
        {"ab\xc3(", 64, NULL, "is not valid UTF-8 at byte 2"},
        {"\xed\xa0\x80", 64, NULL, "is not valid UTF-8 at byte 0"}, /* a surrogate */
        {"\xc0\xaf", 64, NULL, "is not valid UTF-8 at byte 0"},     /* overlong */
        {"abcdef", 4, NULL, "is longer than 4 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[96] = "";
        bool ok = sal_text_check(cases[i].text, cases[i].max, cases[i].allowed, why, sizeof why);
        assert_int_equal(ok, sal_text_valid(cases[i].text, cases[i].max, cases[i].allowed));
        assert_int_equal(ok, cases[i].why == NULL);
        if (!ok) {
            assert_string_equal(why, cases[i].why);
        }
        assert_int_equal(sal_text_check(cases[i].text, cases[i].max, cases[i].allowed, NULL, 0), ok);
    }
    /* a string field (what the commander fills from its command line) */
    char err[256];
    const sal_component_info *c = ocps_interface_select("dds", NULL, err, sizeof err);
    const sal_topic_info *t = &c->topics[sal_component_find_topic(c, "command_execute")];
    void *s = sal_sample_new(t);
    assert_int_equal(sal_sample_set_string(t, s, "pipeline", "ab\001c", err, sizeof err), -EINVAL);
    assert_string_equal(err, "command_execute.pipeline: contains control character 0x01 at byte 2");
    assert_int_equal(sal_sample_set_string(t, s, "pipeline", "ab\xff", err, sizeof err), -EINVAL);
    assert_string_equal(err, "command_execute.pipeline: is not valid UTF-8 at byte 2");
    assert_int_equal(sal_sample_set_string(t, s, "data_query", "a\n\tb\r", err, sizeof err), 0);
    sal_sample_free(t, s);
}

/* A copy of an interface without one topic. */
static const sal_component_info *without(const sal_component_info *c, const char *name,
                                         sal_component_info *copy, sal_topic_info *topics)
{
    *copy = *c;
    size_t n = 0;
    for (size_t i = 0; i < c->ntopics; i++) {
        if (strcmp(c->topics[i].sal_name, name) != 0) {
            topics[n++] = c->topics[i];
        }
    }
    copy->topics = topics;
    copy->ntopics = n;
    return copy;
}

static void csc_without_a_generic_topic_fails_at_open(void **state)
{
    (void)state;
    char err[512];
    const sal_component_info *c = ocps_interface_select("dds", NULL, err, sizeof err);
    static const char *const generics[] = {"logevent_errorCode", "logevent_heartbeat", "ackcmd"};
    for (size_t g = 0; g < sizeof generics / sizeof generics[0]; g++) {
        sal_component_info copy;
        sal_topic_info topics[64];
        assert_true(c->ntopics <= 64);
        sal_csc_options o;
        sal_csc_options_init(&o);
        o.index = 1;
        o.transport = sal_transport_find("dds");
        size_t n;
        o.indices = ocps_indices(&n);
        o.nindices = n;
        sal_csc *csc = NULL;
        err[0] = '\0';
        assert_int_not_equal(
            sal_csc_open(&csc, NULL, without(c, generics[g], &copy, topics), &o, NULL, err, sizeof err), 0);
        assert_null(csc);
        assert_non_null(strstr(err, generics[g]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(private_offsets_match_the_field_tables),
        cmocka_unit_test(stamp_reads_back_by_name),
        cmocka_unit_test(lent_strings_are_used_without_a_copy),
        cmocka_unit_test(text_checks_say_which_rule_failed),
        cmocka_unit_test(csc_without_a_generic_topic_fails_at_open),
    };
    return cmocka_run_group_tests_name("sal_topics", tests, NULL, NULL);
}
