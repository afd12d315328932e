/*
 * test_salobj7_wire: what ocps-csc (built from ts_xml 12) writes is
 * readable by a peer that knows only Rubin's own sal_revCoded_OCPS.idl
 * (ts_sal 7.4.1 output, compiled here with idlc) and salobj 7's QoS and
 * partitions, and such a peer can command it. This test uses the Cyclone
 * API directly, none of the project's runtime: if a topic name, type name,
 * partition, QoS or field layout differed, nothing would match.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <dds/dds.h>

#include "sal_revCoded_OCPS.h" /* from the ts_sal vector, not from salgen */
#include "test_util.h"

typedef struct peer {
    dds_entity_t participant;
    dds_entity_t data_sub;
    dds_entity_t cmd_pub;
    int csc_pid;
    char prefix[64];
} peer;

/* salobj 7 / ts_ddsconfig QoS for a topic kind: 'c'ommand, 'a'ckcmd, 'e'vent. */
static dds_qos_t *salobj_qos(char kind)
{
    dds_qos_t *q = dds_create_qos();
    dds_qset_reliability(q, DDS_RELIABILITY_RELIABLE, DDS_MSECS(100));
    dds_qset_history(q, DDS_HISTORY_KEEP_LAST, 100);
    dds_qset_durability(q, kind == 'e' ? DDS_DURABILITY_TRANSIENT : DDS_DURABILITY_VOLATILE);
    dds_qset_durability_service(q, 0, DDS_HISTORY_KEEP_LAST, 100, DDS_LENGTH_UNLIMITED, DDS_LENGTH_UNLIMITED,
                                DDS_LENGTH_UNLIMITED);
    dds_qset_ownership(q, kind == 'a' ? DDS_OWNERSHIP_EXCLUSIVE : DDS_OWNERSHIP_SHARED);
    dds_qset_destination_order(q, DDS_DESTINATIONORDER_BY_RECEPTION_TIMESTAMP);
    dds_data_representation_id_t xcdr1 = DDS_DATA_REPRESENTATION_XCDR1;
    dds_qset_data_representation(q, 1, &xcdr1);
    return q;
}

static dds_entity_t group(peer *p, bool pub, const char *suffix)
{
    char part[128];
    snprintf(part, sizeof part, "%s.OCPS.%s", p->prefix, suffix);
    dds_qos_t *q = dds_create_qos();
    dds_qset_partition1(q, part);
    dds_qset_presentation(q, DDS_PRESENTATION_INSTANCE, false, false);
    dds_entity_t e =
        pub ? dds_create_publisher(p->participant, q, NULL) : dds_create_subscriber(p->participant, q, NULL);
    dds_delete_qos(q);
    return e;
}

static dds_entity_t endpoint(peer *p, bool writer, const dds_topic_descriptor_t *desc, const char *name,
                             char kind)
{
    dds_qos_t *q = salobj_qos(kind);
    dds_entity_t topic = dds_create_topic(p->participant, desc, name, q, NULL);
    assert_true(topic > 0);
    dds_entity_t e = writer ? dds_create_writer(p->cmd_pub, topic, q, NULL)
                            : dds_create_reader(p->data_sub, topic, q, NULL);
    dds_delete_qos(q);
    assert_true(e > 0);
    return e;
}

/* Take one sample from reader within timeout; 1 if taken. */
static int take_one(dds_entity_t reader, void *sample, double timeout)
{
    double end = tu_now() + timeout;
    while (tu_now() < end) {
        void *buf[1] = {sample};
        dds_sample_info_t info;
        if (dds_take(reader, buf, &info, 1, 1) == 1 && info.valid_data) {
            return 1;
        }
        dds_sleepfor(DDS_MSECS(5));
    }
    return 0;
}

static int setup(void **state)
{
    peer *p = calloc(1, sizeof *p);
    char uri[600];
    snprintf(uri, sizeof uri, "file://%s", CYCLONE_CONFIG);
    setenv("CYCLONEDDS_URI", uri, 1);
    snprintf(p->prefix, sizeof p->prefix, "wire%d", (int)getpid());
    setenv("LSST_DDS_PARTITION_PREFIX", p->prefix, 1);
    setenv("LSST_SITE", "test", 1);
    setenv("DM_CONFIG_OCPS_DIR", DEPLOY_CONFIG_ROOT, 1);
    p->participant = dds_create_participant(0, NULL, NULL);
    p->data_sub = group(p, false, "data");
    p->cmd_pub = group(p, true, "cmd");
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0.2", "1", NULL};
    p->csc_pid = tu_spawn(argv, NULL);
    *state = p;
    return p->participant > 0 && p->csc_pid > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    peer *p = *state;
    kill(p->csc_pid, SIGTERM);
    if (tu_wait_exit(p->csc_pid, 5) < 0) {
        tu_kill(p->csc_pid);
    }
    dds_delete(p->participant);
    free(p);
    return 0;
}

static void salobj7_peer_reads_and_commands(void **state)
{
    peer *p = *state;
    dds_entity_t summary = endpoint(p, false, &OCPS_logevent_summaryState_ca4842e5_desc,
                                    "OCPS_logevent_summaryState_ca4842e5", 'e');
    dds_entity_t versions = endpoint(p, false, &OCPS_logevent_softwareVersions_3649e9de_desc,
                                     "OCPS_logevent_softwareVersions_3649e9de", 'e');
    dds_entity_t ackcmd = endpoint(p, false, &OCPS_ackcmd_b2e467a8_desc, "OCPS_ackcmd_b2e467a8", 'a');
    dds_entity_t start =
        endpoint(p, true, &OCPS_command_start_fb2c5a07_desc, "OCPS_command_start_fb2c5a07", 'c');

    OCPS_logevent_summaryState_ca4842e5 ss;
    memset(&ss, 0, sizeof ss);
    assert_int_equal(take_one(summary, &ss, 20), 1);
    assert_int_equal(ss.summaryState, 5);
    assert_int_equal(ss.salIndex, 1);
    assert_string_equal(ss.private_revCode, "ca4842e5");
    assert_string_equal(ss.private_identity, "OCPS:1");
    assert_int_equal(ss.private_origin, p->csc_pid);
    assert_true(ss.private_seqNum >= 1);
    /* TAI: 37 s ahead of UTC */
    double utc = (double)dds_time() / 1e9;
    assert_true(ss.private_sndStamp - utc > 36 && ss.private_sndStamp - utc < 38.5);

    OCPS_logevent_softwareVersions_3649e9de *sv = OCPS_logevent_softwareVersions_3649e9de__alloc();
    assert_int_equal(take_one(versions, sv, 5), 1);
    assert_string_equal(sv->salVersion, "7.4.1");
    assert_string_equal(sv->xmlVersion, "12.0.0");
    OCPS_logevent_softwareVersions_3649e9de_free(sv, DDS_FREE_ALL);

    /* a salobj 7 Remote's start command, as ScriptQueue's Script:7 */
    double end = tu_now() + 10;
    dds_publication_matched_status_t st = {0};
    while (st.current_count == 0 && tu_now() < end) {
        dds_get_publication_matched_status(start, &st);
        dds_sleepfor(DDS_MSECS(5));
    }
    assert_true(st.current_count > 0);
    OCPS_command_start_fb2c5a07 cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.salIndex = 1;
    strcpy(cmd.private_revCode, "fb2c5a07");
    cmd.private_seqNum = 805306400;
    strcpy(cmd.private_identity, "Script:7");
    cmd.private_origin = 4242;
    cmd.configurationOverride = "";
    assert_int_equal(dds_write(start, &cmd), DDS_RETCODE_OK);

    OCPS_ackcmd_b2e467a8 *ack = OCPS_ackcmd_b2e467a8__alloc();
    assert_int_equal(take_one(ackcmd, ack, 10), 1);
    assert_int_equal(ack->private_seqNum, 805306400);
    assert_string_equal(ack->identity, "Script:7");
    assert_int_equal(ack->origin, 4242);
    assert_int_equal(ack->salIndex, 1);
    assert_int_equal(ack->ack, 303);
    assert_int_equal(ack->error, 0);
    assert_string_equal(ack->result, "Done");
    /* index of command_start among all v12 topic names, byte order */
    assert_int_equal(ack->cmdtype, 9);
    assert_string_equal(ack->private_revCode, "b2e467a8");
    OCPS_ackcmd_b2e467a8_free(ack, DDS_FREE_ALL);

    memset(&ss, 0, sizeof ss);
    assert_int_equal(take_one(summary, &ss, 5), 1);
    assert_int_equal(ss.summaryState, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(salobj7_peer_reads_and_commands, setup, teardown),
    };
    return cmocka_run_group_tests_name("salobj7_wire", tests, NULL, NULL);
}
