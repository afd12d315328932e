/*
 * test_interface_ocps: the C tables generated for every OCPS release built
 * into the programs are what the runtime relies on: topics in strcmp order
 * (ackcmd cmdtype), field offsets into the idlc structs, string bounds, an
 * Avro schema per topic that carries every DDS field. Each transport gets
 * its release, another can be chosen, and OCPS's SAL indices are the
 * deployed ones whatever a release lists.
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
#include <dds/dds.h>

#include "ocps/ocps_interface.h"
#include "ocps/ocps_topics.h"

#if __has_include("OCPS_v20_3_0_sal.h")
#include "OCPS_v20_3_0_sal.h"
#define HAVE_V20 1
#endif
#if __has_include("OCPS_v12_0_0_sal.h")
#include "OCPS_v12_0_0_sal.h"
#define HAVE_V12 1
#endif

typedef void (*release_check)(const sal_component_info *comp);

/* Run `check` on every embedded release. */
static void each_release(release_check check)
{
    const sal_interface_set *set = ocps_interfaces();
    assert_true(set->nreleases > 0);
    for (size_t i = 0; i < set->nreleases; i++) {
        print_message("ts_xml %s\n", set->releases[i]->xml_version);
        check(set->releases[i]);
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

static const sal_topic_info *topic(const sal_component_info *comp, const char *name)
{
    int t = sal_component_find_topic(comp, name);
    return t < 0 ? NULL : &comp->topics[t];
}

static void check_order(const sal_component_info *comp)
{
    assert_true(comp->ntopics > 0);
    for (size_t i = 1; i < comp->ntopics; i++) {
        assert_true(strcmp(comp->topics[i - 1].sal_name, comp->topics[i].sal_name) < 0);
    }
    /* salobj's cmdtype: index in the sorted list of all topic names; ackcmd
     * sorts first; command_abort_job, disable, enable precede execute. */
    assert_int_equal(sal_component_find_topic(comp, "ackcmd"), 0);
    assert_int_equal(sal_component_find_topic(comp, "command_execute"), 4);
    assert_int_equal(sal_component_find_topic(comp, "command_nosuch"), -1);
    assert_int_equal(sal_component_find_topic(comp, ""), -1);
}

static void topics_are_in_strcmp_order(void **state)
{
    (void)state;
    each_release(check_order);
}

static void check_topics(const sal_component_info *comp)
{
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
        "logevent_job_id",
        "logevent_job_result",
        "logevent_configurationApplied",
        "ackcmd",
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (topic(comp, required[i]) == NULL) {
            fail_msg("ts_xml %s: missing topic %s", comp->xml_version, required[i]);
        }
    }
    /* setAuthList/authList left ts_xml in 21; execute's prerequisites and
     * outputs arrived after 12 */
    bool auth = atoi(comp->xml_version) < 21;
    assert_int_equal(topic(comp, "command_setAuthList") != NULL, auth);
    assert_int_equal(topic(comp, "logevent_authList") != NULL, auth);
    bool prereq = field(topic(comp, "command_execute"), "prereq_jobs") != NULL;
    assert_int_equal(prereq, strcmp(comp->xml_version, "12.0.0") != 0);
}

static void ocps_topics_present(void **state)
{
    (void)state;
    each_release(check_topics);
}

static void check_offsets(const sal_component_info *comp)
{
    for (size_t i = 0; i < comp->ntopics; i++) {
        const sal_topic_info *t = &comp->topics[i];
        const dds_topic_descriptor_t *d = t->dds_descriptor;
        assert_int_equal(t->sample_size, d->m_size);
        assert_string_equal(t->fields[0].name, t->kind == SAL_TOPIC_ACKCMD ? "private_revCode" : "salIndex");
        for (size_t f = 0; f < t->nfields; f++) {
            assert_true(t->fields[f].offset < t->sample_size);
            if (f > 0) {
                assert_true(t->fields[f].offset > t->fields[f - 1].offset);
            }
        }
        /* the DDS type name carries the revCode */
        char want[128];
        snprintf(want, sizeof want, "OCPS::%s_%s", t->sal_name, t->dds_revcode);
        assert_string_equal(d->m_typename, want);
    }
    const sal_topic_info *ack = topic(comp, "ackcmd");
    assert_int_equal(ack->kind, SAL_TOPIC_ACKCMD);
    /* in ackcmd salIndex follows the six private fields */
    assert_string_equal(ack->fields[6].name, "salIndex");
    assert_int_equal(field(ack, "timeout")->type, SAL_FIELD_DOUBLE);
    const sal_topic_info *ex = topic(comp, "command_execute");
    assert_int_equal(field(ex, "data_query")->bound, 0);
    assert_int_equal(field(ex, "private_identity")->bound, 128);
    assert_true(field(ex, "private_identity")->flags & SAL_FIELD_PRIVATE);
    assert_false(field(ex, "pipeline")->flags & SAL_FIELD_PRIVATE);
    assert_int_equal(field(topic(comp, "logevent_softwareVersions"), "cscVersion")->bound, 256);
}

static void every_field_offset_is_inside_its_sample(void **state)
{
    (void)state;
    each_release(check_offsets);
}

/* Offsets against the idlc structs, by type, for releases this build has. */
static void field_offsets_match_idlc_structs(void **state)
{
    (void)state;
    int checked = 0;
#ifdef HAVE_V20
    const sal_component_info *c20 = &OCPS_v20_3_0_sal_component;
    const sal_topic_info *ex = &c20->topics[OCPS_v20_3_0_TOPIC_command_execute];
    assert_int_equal(ex->sample_size, sizeof(OCPS_v20_3_0_command_execute));
    assert_int_equal(field(ex, "prereq_jobs")->offset, offsetof(OCPS_v20_3_0_command_execute, prereq_jobs));
    assert_int_equal(field(ex, "salIndex")->offset, offsetof(OCPS_v20_3_0_command_execute, salIndex));
    assert_int_equal(sizeof(((OCPS_v20_3_0_command_execute *)0)->private_identity), 129);
    const sal_topic_info *ack = &c20->topics[OCPS_v20_3_0_TOPIC_ackcmd];
    assert_int_equal(field(ack, "timeout")->offset, offsetof(OCPS_v20_3_0_ackcmd, timeout));
    const sal_topic_info *auth = &c20->topics[OCPS_v20_3_0_TOPIC_command_setAuthList];
    assert_int_equal(field(auth, "authorizedUsers")->offset,
                     offsetof(OCPS_v20_3_0_command_setAuthList, authorizedUsers));
    checked++;
#endif
#ifdef HAVE_V12
    const sal_component_info *c12 = &OCPS_v12_0_0_sal_component;
    const sal_topic_info *ex12 = &c12->topics[OCPS_v12_0_0_TOPIC_command_execute];
    assert_int_equal(ex12->sample_size, sizeof(OCPS_v12_0_0_command_execute));
    assert_int_equal(field(ex12, "data_query")->offset, offsetof(OCPS_v12_0_0_command_execute, data_query));
    checked++;
#endif
    if (checked == 0) {
        skip();
    }
}

static void check_avro(const sal_component_info *comp)
{
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

static void avro_schema_carries_every_dds_field(void **state)
{
    (void)state;
    each_release(check_avro);
}

/* DDS speaks the last DDS-era release and Kafka the current one, unless
 * the build names others; OCPS_XML_VERSION or an explicit version wins. */
static void each_transport_gets_its_release(void **state)
{
    (void)state;
    const sal_interface_set *set = ocps_interfaces();
    char err[512];
    unsetenv(OCPS_XML_VERSION_ENV);
    for (size_t d = 0; d < set->ndefaults; d++) {
        const sal_component_info *c =
            ocps_interface_select(set->defaults[d].transport, NULL, err, sizeof err);
        assert_non_null(c);
        assert_string_equal(c->xml_version, set->defaults[d].xml_version);
    }
    assert_string_equal(sal_interface_default_version(set, "dds"), OCPS_TEST_DDS_RELEASE);
    assert_string_equal(sal_interface_default_version(set, "kafka"), OCPS_TEST_KAFKA_RELEASE);
    for (size_t i = 0; i < set->nreleases; i++) {
        const char *v = set->releases[i]->xml_version;
        assert_ptr_equal(ocps_interface_select("kafka", v, err, sizeof err), set->releases[i]);
        setenv(OCPS_XML_VERSION_ENV, v, 1);
        assert_ptr_equal(ocps_interface_select("dds", NULL, err, sizeof err), set->releases[i]);
    }
    unsetenv(OCPS_XML_VERSION_ENV);
    assert_null(ocps_interface_select("dds", "9.9.9", err, sizeof err));
    assert_non_null(strstr(err, "9.9.9"));
    assert_non_null(strstr(err, set->releases[0]->xml_version)); /* names what is built in */
}

/* ts_xml's SalIndex: 1, 2, 3 and 101, although 28.0.1 lists RA without a
 * number (its IDL constant is 4) and 20.3.0 has no RA at all. */
static void indices_are_the_deployed_ones(void **state)
{
    (void)state;
    assert_string_equal(ocps_index_name(1), "LATISS");
    assert_string_equal(ocps_index_name(2), "LSSTComCam");
    assert_string_equal(ocps_index_name(3), "LSSTCam");
    assert_string_equal(ocps_index_name(101), "RA");
    assert_null(ocps_index_name(4));
    assert_null(ocps_index_name(0));
    assert_null(ocps_index_name(-1));
    assert_int_equal(ocps_index_of("RA"), 101);
    assert_int_equal(ocps_index_of("ra"), -1);
    size_t n;
    const sal_enum_value *all = ocps_indices(&n);
    assert_int_equal(n, 4);
    assert_int_equal(all[3].value, 101);
}

static void check_app_topics(const sal_component_info *comp)
{
    ocps_topics tp;
    char err[256];
    if (ocps_topics_resolve(comp, &tp, err, sizeof err) != 0) {
        fail_msg("ts_xml %s: %s", comp->xml_version, err);
    }
    assert_string_equal(comp->topics[tp.execute].sal_name, "command_execute");
    assert_string_equal(tp.ex_data_query->name, "data_query");
    assert_string_equal(tp.result_result->name, "result");
    /* 12.0.0's execute has no prerequisites or output types */
    assert_int_equal(tp.ex_prereq_jobs == NULL, strcmp(comp->xml_version, "12.0.0") == 0);
}

/* What the application uses resolves in every release, and a release
 * lacking a topic or a required field fails naming it. */
static void app_topics_resolve(void **state)
{
    (void)state;
    each_release(check_app_topics);
    const sal_component_info *c = ocps_interfaces()->releases[0];
    sal_component_info copy = *c;
    sal_topic_info topics[64];
    sal_field_info fields[64];
    assert_true(c->ntopics <= 64);
    memcpy(topics, c->topics, c->ntopics * sizeof topics[0]);
    copy.topics = topics;
    int jr = sal_component_find_topic(c, "logevent_job_result");
    size_t n = 0;
    for (size_t f = 0; f < topics[jr].nfields; f++) {
        if (strcmp(topics[jr].fields[f].name, "exit_code") != 0) {
            fields[n++] = topics[jr].fields[f];
        }
    }
    topics[jr].fields = fields;
    topics[jr].nfields = n;
    ocps_topics tp;
    char err[256];
    assert_int_not_equal(ocps_topics_resolve(&copy, &tp, err, sizeof err), 0);
    assert_non_null(strstr(err, "logevent_job_result.exit_code"));
    memmove(&topics[jr], &topics[jr + 1], (c->ntopics - (size_t)jr - 1) * sizeof topics[0]);
    copy.ntopics--;
    assert_int_not_equal(ocps_topics_resolve(&copy, &tp, err, sizeof err), 0);
    assert_non_null(strstr(err, "logevent_job_result"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(topics_are_in_strcmp_order),
        cmocka_unit_test(ocps_topics_present),
        cmocka_unit_test(field_offsets_match_idlc_structs),
        cmocka_unit_test(every_field_offset_is_inside_its_sample),
        cmocka_unit_test(avro_schema_carries_every_dds_field),
        cmocka_unit_test(each_transport_gets_its_release),
        cmocka_unit_test(indices_are_the_deployed_ones),
        cmocka_unit_test(app_topics_resolve),
    };
    return cmocka_run_group_tests_name("interface_ocps", tests, NULL, NULL);
}
