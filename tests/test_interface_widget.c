/*
 * test_interface_widget: a component other than OCPS (tests/data/widget:
 * not indexed, with telemetry, arrays, bounded strings, unsigned and 64-bit
 * types and enumerations) generates and builds with no code changes, and
 * its tables describe the idlc structs correctly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "Widget_sal.h"

static const sal_component_info *comp = &Widget_sal_component;

static const sal_field_info *field(const sal_topic_info *t, const char *name)
{
    for (size_t i = 0; i < t->nfields; i++) {
        if (strcmp(t->fields[i].name, name) == 0) {
            return &t->fields[i];
        }
    }
    return NULL;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void topic_set_follows_added_generics(void **state)
{
    (void)state;
    /* mandatory (heartbeat) + csc (start, summaryState) + statusCode by
     * name + own topics + ackcmd; enterControl has no category. */
    static const char *expected[] = {
        "logevent_heartbeat", "command_start", "logevent_summaryState", "logevent_statusCode",
        "command_move",       "command_stop",  "logevent_color",        "logevent_limits",
        "position",           "ackcmd",
    };
    size_t n = sizeof expected / sizeof expected[0];
    assert_int_equal(comp->ntopics, n);
    qsort(expected, n, sizeof expected[0], compare_strings);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(comp->topics[i].sal_name, expected[i]);
    }
    assert_int_equal(sal_component_find_topic(comp, "command_enterControl"), -1);
}

static void not_indexed_means_index_zero_and_no_salindex(void **state)
{
    (void)state;
    assert_false(comp->indexed);
    assert_true(sal_component_index_allowed(comp, 0));
    assert_false(sal_component_index_allowed(comp, 1));
    for (size_t i = 0; i < comp->ntopics; i++) {
        assert_null(field(&comp->topics[i], "salIndex"));
    }
}

static void telemetry_fields_describe_the_struct(void **state)
{
    (void)state;
    const sal_topic_info *t = &comp->topics[Widget_TOPIC_position];
    assert_int_equal(t->kind, SAL_TOPIC_TELEMETRY);
    assert_int_equal(t->sample_size, sizeof(Widget_position));
    assert_int_equal(sal_topic_user_field_count(t), 7);

    const sal_field_info *xyz = field(t, "xyz");
    assert_int_equal(xyz->type, SAL_FIELD_DOUBLE);
    assert_int_equal(xyz->count, 3);
    assert_int_equal(xyz->offset, offsetof(Widget_position, xyz));
    assert_int_equal(sizeof(((Widget_position *)0)->xyz), 3 * sizeof(double));

    const sal_field_info *temps = field(t, "temperatures");
    assert_int_equal(temps->type, SAL_FIELD_FLOAT);
    assert_int_equal(temps->count, 4);

    assert_int_equal(field(t, "ticks")->type, SAL_FIELD_LONGLONG);
    assert_int_equal(field(t, "raw")->type, SAL_FIELD_USHORT);
    assert_int_equal(field(t, "flags")->type, SAL_FIELD_OCTET);
    assert_int_equal(field(t, "counts")->type, SAL_FIELD_ULONG);
    assert_int_equal(field(t, "counts")->offset, offsetof(Widget_position, counts));

    const sal_field_info *label = field(t, "label");
    assert_int_equal(label->type, SAL_FIELD_STRING);
    assert_int_equal(label->bound, 16);
    assert_int_equal(sizeof(((Widget_position *)0)->label), 17);
}

static void event_arrays_and_commands(void **state)
{
    (void)state;
    const sal_topic_info *lim = &comp->topics[Widget_TOPIC_logevent_limits];
    assert_int_equal(lim->kind, SAL_TOPIC_EVENT);
    assert_int_equal(field(lim, "atLimit")->type, SAL_FIELD_BOOLEAN);
    assert_int_equal(field(lim, "atLimit")->count, 2);
    const sal_topic_info *stop = &comp->topics[Widget_TOPIC_command_stop];
    assert_int_equal(stop->kind, SAL_TOPIC_COMMAND);
    assert_int_equal(sal_topic_user_field_count(stop), 0);
    const sal_topic_info *ack = &comp->topics[Widget_TOPIC_ackcmd];
    assert_string_equal(ack->fields[6].name, "ack");
}

static int64_t enum_value(const char *name)
{
    for (size_t i = 0; i < comp->nenums; i++) {
        if (strcmp(comp->enums[i].name, name) == 0) {
            return comp->enums[i].value;
        }
    }
    fail_msg("no enumeration constant %s", name);
    return -1;
}

static void enumerations_follow_ts_sal_naming(void **state)
{
    (void)state;
    /* in-topic: <alias>_<item>, numbered from 1 */
    assert_int_equal(enum_value("move_Fast"), 1);
    assert_int_equal(enum_value("move_Slow"), 2);
    /* file-level: <Name>_shared_<item>, explicit values kept */
    assert_int_equal(enum_value("Widget_shared_Red"), 1);
    assert_int_equal(enum_value("Widget_shared_Blue"), 4);
    /* the generics' shared enumeration comes after Widget's own and is
     * dropped, as ts_sal does */
    assert_int_equal(comp->nenums, 5);
    assert_int_equal(comp->nindex_enum, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(topic_set_follows_added_generics),
        cmocka_unit_test(not_indexed_means_index_zero_and_no_salindex),
        cmocka_unit_test(telemetry_fields_describe_the_struct),
        cmocka_unit_test(event_arrays_and_commands),
        cmocka_unit_test(enumerations_follow_ts_sal_naming),
    };
    return cmocka_run_group_tests_name("interface_widget", tests, NULL, NULL);
}
