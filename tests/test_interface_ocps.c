/*
 * test_interface_ocps: the C tables generated for the OCPS interface the
 * CSC is built against are what the runtime relies on: topics in strcmp
 * order (ackcmd cmdtype), field offsets into the idlc structs, string
 * bounds, the allowed SAL indices and an Avro schema per topic that carries
 * every DDS field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <cmocka.h>

#include "OCPS_sal.h"

static const sal_component_info *comp = &OCPS_sal_component;

static void topics_are_in_strcmp_order(void **state)
{
    (void)state;
    assert_true(comp->ntopics > 0);
    for (size_t i = 1; i < comp->ntopics; i++) {
        assert_true(strcmp(comp->topics[i - 1].sal_name, comp->topics[i].sal_name) < 0);
    }
}

static void cmdtype_matches_salobj(void **state)
{
    (void)state;
    /* salobj: index in the sorted list of all topic names. ackcmd sorts
     * first; command_abort_job, disable, enable precede execute. */
    assert_int_equal(sal_component_find_topic(comp, "ackcmd"), 0);
    assert_int_equal(sal_component_find_topic(comp, "command_execute"), 4);
    assert_int_equal(OCPS_TOPIC_command_execute, 4);
    assert_int_equal(sal_component_find_topic(comp, "command_nosuch"), -1);
    assert_int_equal(sal_component_find_topic(comp, ""), -1);
}

static void ocps_topics_present(void **state)
{
    (void)state;
    static const char *const required[] = {
        "command_start",
        "command_enable",
        "command_disable",
        "command_standby",
        "command_exitControl",
        "command_setLogLevel",
        "command_execute",
        "command_abort_job",
        "logevent_summaryState",
        "logevent_heartbeat",
        "logevent_logLevel",
        "logevent_logMessage",
        "logevent_errorCode",
        "logevent_simulationMode",
        "logevent_softwareVersions",
        "logevent_configurationApplied",
        "logevent_configurationsAvailable",
        "logevent_job_id",
        "logevent_job_result",
        "ackcmd",
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        int t = sal_component_find_topic(comp, required[i]);
        if (t < 0) {
            fail_msg("missing topic %s", required[i]);
        }
    }
}

static const sal_field_info *field(const sal_topic_info *t, const char *name)
{
    for (size_t i = 0; i < t->nfields; i++) {
        if (strcmp(t->fields[i].name, name) == 0) {
            return &t->fields[i];
        }
    }
    return NULL;
}

static void field_offsets_match_idlc_structs(void **state)
{
    (void)state;
    const sal_topic_info *ex = &comp->topics[OCPS_TOPIC_command_execute];
    assert_int_equal(ex->sample_size, sizeof(OCPS_command_execute));
    assert_int_equal(field(ex, "data_query")->offset, offsetof(OCPS_command_execute, data_query));
    assert_int_equal(field(ex, "salIndex")->offset, offsetof(OCPS_command_execute, salIndex));
    assert_int_equal(field(ex, "data_query")->bound, 0);
    const sal_field_info *ident = field(ex, "private_identity");
    assert_int_equal(ident->bound, 128);
    assert_int_equal(sizeof(((OCPS_command_execute *)0)->private_identity), 129);
    assert_true(ident->flags & SAL_FIELD_PRIVATE);
    assert_false(field(ex, "pipeline")->flags & SAL_FIELD_PRIVATE);

    const sal_topic_info *ack = &comp->topics[OCPS_TOPIC_ackcmd];
    assert_int_equal(ack->kind, SAL_TOPIC_ACKCMD);
    /* in ackcmd salIndex follows the six private fields */
    assert_string_equal(ack->fields[6].name, "salIndex");
    assert_int_equal(field(ack, "timeout")->offset, offsetof(OCPS_ackcmd, timeout));
    assert_int_equal(field(ack, "timeout")->type, SAL_FIELD_DOUBLE);

    const sal_topic_info *sv = &comp->topics[OCPS_TOPIC_logevent_softwareVersions];
    assert_int_equal(field(sv, "cscVersion")->bound, 256);
    assert_int_equal(field(sv, "cscVersion")->offset, offsetof(OCPS_logevent_softwareVersions, cscVersion));
}

static void every_field_offset_is_inside_its_sample(void **state)
{
    (void)state;
    for (size_t i = 0; i < comp->ntopics; i++) {
        const sal_topic_info *t = &comp->topics[i];
        assert_string_equal(t->fields[0].name, t->kind == SAL_TOPIC_ACKCMD ? "private_revCode" : "salIndex");
        for (size_t f = 0; f < t->nfields; f++) {
            assert_true(t->fields[f].offset < t->sample_size);
            if (f > 0) {
                assert_true(t->fields[f].offset > t->fields[f - 1].offset);
            }
        }
    }
}

static void indices_are_the_ocps_enumeration(void **state)
{
    (void)state;
    assert_true(comp->indexed);
    assert_true(sal_component_index_allowed(comp, 1));
    assert_true(sal_component_index_allowed(comp, 2));
    assert_true(sal_component_index_allowed(comp, 3));
    assert_true(sal_component_index_allowed(comp, 101));
    assert_false(sal_component_index_allowed(comp, 0));
    assert_false(sal_component_index_allowed(comp, 4));
    assert_false(sal_component_index_allowed(comp, -1));
    assert_string_equal(sal_component_index_name(comp, 3), "LSSTCam");
    assert_string_equal(sal_component_index_name(comp, 101), "RA");
    assert_null(sal_component_index_name(comp, 7));
}

static void avro_schema_carries_every_dds_field(void **state)
{
    (void)state;
    for (size_t i = 0; i < comp->ntopics; i++) {
        const sal_topic_info *t = &comp->topics[i];
        assert_non_null(t->avro_schema);
        assert_int_equal(strlen(t->avro_revcode), 8);
        avro_schema_t s;
        if (avro_schema_from_json_length(t->avro_schema, strlen(t->avro_schema), &s) != 0) {
            fail_msg("%s: %s", t->sal_name, avro_strerror());
        }
        assert_string_equal(avro_schema_name(s), t->sal_name);
        for (size_t f = 0; f < t->nfields; f++) {
            if (avro_schema_record_field_get(s, t->fields[f].name) == NULL) {
                fail_msg("%s: Avro schema lacks %s", t->sal_name, t->fields[f].name);
            }
        }
        /* plus private_efdStamp and private_kafkaStamp */
        assert_int_equal(avro_schema_record_size(s), t->nfields + 2);
        avro_schema_decref(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(topics_are_in_strcmp_order),
        cmocka_unit_test(cmdtype_matches_salobj),
        cmocka_unit_test(ocps_topics_present),
        cmocka_unit_test(field_offsets_match_idlc_structs),
        cmocka_unit_test(every_field_offset_is_inside_its_sample),
        cmocka_unit_test(indices_are_the_ocps_enumeration),
        cmocka_unit_test(avro_schema_carries_every_dds_field),
    };
    return cmocka_run_group_tests_name("interface_ocps", tests, NULL, NULL);
}
