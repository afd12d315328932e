/*
 * test_salobj7_wire: a salobj 7-style Remote that knows only an IDL file
 * (sal_revCoded_OCPS.idl compiled here with idlc, and its revCode table)
 * and salobj 7's QoS and partitions drives ocps-csc through a whole
 * session: the state cycle, setAuthList (where the release has it),
 * execute, abort_job and exitControl, and reads every event the CSC
 * writes. It uses the Cyclone API directly, none of the project's runtime:
 * if a topic name, type name, partition, QoS or field layout differed,
 * nothing would match.
 *
 * Built once per IDL: ts_sal 7.4.1's own output for ts_xml 12.0.0 (the
 * vector; the CSC is told OCPS_XML_VERSION=12.0.0) and the IDL of the
 * release the default build speaks on DDS (the CSC chooses it itself).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <dds/dds.h>

#include "peer_types.h" /* PEER_* names of the idlc types of that IDL */
#include "sal_revCoded_OCPS.h"
#include "test_util.h"

enum { ACK = 300, INPROGRESS = 301, COMPLETE = 303, ABORTED = -303 };
enum { ENABLED = 2, DISABLED = 1, STANDBY = 5, OFFLINE = 4 };

typedef struct event_reader {
    const char *name;
    const dds_topic_descriptor_t *desc;
    const char *rev;
    dds_entity_t reader;
    int seen;
    int bad_rev;
} event_reader;

typedef struct peer {
    dds_entity_t participant;
    dds_entity_t data_sub;
    dds_entity_t cmd_pub;
    dds_entity_t ackcmd;
    event_reader events[64];
    size_t nevents;
    int32_t summary_state; /* last summaryState read */
    char last_job_id[128]; /* last job_id event */
    char last_result_job[128];
    int32_t last_exit_code;
    char xml_version[257]; /* softwareVersions.xmlVersion */
    int csc_pid;
    int32_t seq;
    char prefix[64];
    char *root;
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

/* Note what an event sample says (the fields this test follows). */
static void note_event(peer *p, const event_reader *e, const void *sample)
{
    if (strcmp(e->name, "logevent_summaryState") == 0) {
        p->summary_state = ((const PEER_TYPE_logevent_summaryState *)sample)->summaryState;
    } else if (strcmp(e->name, "logevent_softwareVersions") == 0) {
        snprintf(p->xml_version, sizeof p->xml_version, "%s",
                 ((const PEER_TYPE_logevent_softwareVersions *)sample)->xmlVersion);
    } else if (strcmp(e->name, "logevent_job_id") == 0) {
        snprintf(p->last_job_id, sizeof p->last_job_id, "%s",
                 ((const PEER_TYPE_logevent_job_id *)sample)->job_id);
    } else if (strcmp(e->name, "logevent_job_result") == 0) {
        const PEER_TYPE_logevent_job_result *r = sample;
        snprintf(p->last_result_job, sizeof p->last_result_job, "%s", r->job_id);
        p->last_exit_code = r->exit_code;
    }
}

/* Take every pending event sample; check each one's private_revCode. */
static void poll_events(peer *p)
{
    for (size_t i = 0; i < p->nevents; i++) {
        event_reader *e = &p->events[i];
        for (;;) {
            void *sample = dds_alloc(e->desc->m_size);
            void *buf[1] = {sample};
            dds_sample_info_t info;
            int n = dds_take(e->reader, buf, &info, 1, 1);
            if (n == 1 && info.valid_data) {
                e->seen++;
                /* every normal topic starts with salIndex, then private_revCode */
                const char *rev = (const char *)sample + sizeof(int32_t);
                e->bad_rev += strcmp(rev, e->rev) != 0;
                assert_int_equal(*(const int32_t *)sample, 1);
                note_event(p, e, sample);
            }
            dds_sample_free(sample, e->desc, DDS_FREE_ALL);
            if (n != 1) {
                break;
            }
        }
    }
}

static event_reader *event(peer *p, const char *name)
{
    for (size_t i = 0; i < p->nevents; i++) {
        if (strcmp(p->events[i].name, name) == 0) {
            return &p->events[i];
        }
    }
    fail_msg("no event %s in this IDL", name);
    return NULL;
}

/* Read events until summaryState is `state`. */
static void wait_state(peer *p, int32_t state, double timeout)
{
    double end = tu_now() + timeout;
    while (tu_now() < end) {
        poll_events(p);
        if (p->summary_state == state) {
            return;
        }
        dds_sleepfor(DDS_MSECS(5));
    }
    fail_msg("summaryState %d, expected %d", p->summary_state, state);
}

/* Read events until `name` has been seen more than `before` times. */
static void wait_event(peer *p, const char *name, int before, double timeout)
{
    double end = tu_now() + timeout;
    while (tu_now() < end) {
        poll_events(p);
        if (event(p, name)->seen > before) {
            return;
        }
        dds_sleepfor(DDS_MSECS(5));
    }
    fail_msg("no new %s within %.0f s", name, timeout);
}

static void wait_matched(dds_entity_t writer)
{
    double end = tu_now() + 10;
    dds_publication_matched_status_t st = {0};
    while (st.current_count == 0 && tu_now() < end) {
        dds_get_publication_matched_status(writer, &st);
        dds_sleepfor(DDS_MSECS(5));
    }
    assert_true(st.current_count > 0);
}

/* The private fields a salobj 7 Remote (ScriptQueue's Script:7) fills. */
#define FILL_COMMAND(p, cmd, topic)                                                                          \
    do {                                                                                                     \
        (cmd)->salIndex = 1;                                                                                 \
        strcpy((cmd)->private_revCode, PEER_REV_##topic);                                                    \
        (cmd)->private_seqNum = ++(p)->seq;                                                                  \
        strcpy((cmd)->private_identity, "Script:7");                                                         \
        (cmd)->private_origin = 4242;                                                                        \
    } while (0)

/* Wait for an ack of seqNum `seq`; with `final`, skip ACK/INPROGRESS.
 * Returns the ack code; copies the result. */
static int wait_ack(peer *p, int32_t seq, bool final, int cmdtype, char *result, size_t len, double timeout)
{
    double end = tu_now() + timeout;
    while (tu_now() < end) {
        poll_events(p);
        PEER_TYPE_ackcmd *ack = dds_alloc(sizeof *ack);
        void *buf[1] = {ack};
        dds_sample_info_t info;
        int code = 0;
        if (dds_take(p->ackcmd, buf, &info, 1, 1) == 1 && info.valid_data && ack->private_seqNum == seq) {
            assert_string_equal(ack->identity, "Script:7");
            assert_int_equal(ack->origin, 4242);
            assert_int_equal(ack->salIndex, 1);
            assert_int_equal(ack->cmdtype, cmdtype);
            assert_string_equal(ack->private_revCode, PEER_REV_ackcmd);
            if (!final || (ack->ack != ACK && ack->ack != INPROGRESS)) {
                code = ack->ack;
                snprintf(result, len, "%s", ack->result);
            }
        }
        dds_sample_free(ack, &PEER_DESC_ackcmd, DDS_FREE_ALL);
        if (code != 0) {
            return code;
        }
        dds_sleepfor(DDS_MSECS(2));
    }
    fail_msg("no %s ack for seqNum %d", final ? "final" : "first", seq);
    return 0;
}

/* Send a state-transition command (no fields but private ones) and expect
 * COMPLETE. */
#define STATE_COMMAND(p, topic, writer)                                                                      \
    do {                                                                                                     \
        PEER_TYPE_##topic cmd_;                                                                              \
        memset(&cmd_, 0, sizeof cmd_);                                                                       \
        FILL_COMMAND(p, &cmd_, topic);                                                                       \
        assert_int_equal(dds_write(writer, &cmd_), DDS_RETCODE_OK);                                          \
        char result_[256];                                                                                   \
        assert_int_equal(                                                                                    \
            wait_ack(p, cmd_.private_seqNum, true, PEER_CMDTYPE_##topic, result_, sizeof result_, 20),       \
            COMPLETE);                                                                                       \
    } while (0)

/* A configuration whose jobs run fake-pipetask. */
static void make_config(peer *p)
{
    p->root = tu_make_ocps_config();
    assert_non_null(p->root);
    char site[2048];
    snprintf(site, sizeof site, "work_root: %s/jobs\npipetask: %s\nretrieve_command: []\nabort_grace: 2\n",
             p->root, FAKE_PIPETASK);
    assert_int_equal(tu_write_ocps_site(p->root, site), 0);
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
    setenv("LSST_DDS_ENABLE_AUTHLIST", "1", 1);
    make_config(p);
    setenv("DM_CONFIG_OCPS_DIR", p->root, 1);
    p->participant = dds_create_participant(0, NULL, NULL);
    p->data_sub = group(p, false, "data");
    p->cmd_pub = group(p, true, "cmd");
    static const struct {
        const char *name;
        const dds_topic_descriptor_t *desc;
        const char *rev;
    } events[] = {PEER_EVENTS};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        event_reader *e = &p->events[p->nevents++];
        e->name = events[i].name;
        e->desc = events[i].desc;
        e->rev = events[i].rev;
        char topic[128];
        snprintf(topic, sizeof topic, "OCPS_%s_%s", e->name, e->rev);
        e->reader = endpoint(p, false, e->desc, topic, 'e');
    }
    p->ackcmd = endpoint(p, false, &PEER_DESC_ackcmd, PEER_NAME_ackcmd, 'a');
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0.2", "1", NULL};
    p->csc_pid = tu_spawn(argv, NULL);
    *state = p;
    return p->participant > 0 && p->csc_pid > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    peer *p = *state;
    if (p->csc_pid > 0) {
        kill(p->csc_pid, SIGTERM);
        if (tu_wait_exit(p->csc_pid, 5) < 0) {
            tu_kill(p->csc_pid);
        }
    }
    dds_delete(p->participant);
    tu_remove_tree(p->root);
    free(p->root);
    free(p);
    return 0;
}

/* Execute a fake-pipetask job; returns the final ack code and the job id
 * from the INPROGRESS ack. */
static int32_t send_execute(peer *p, dds_entity_t writer, const char *query)
{
    PEER_TYPE_command_execute cmd;
    memset(&cmd, 0, sizeof cmd); /* strings NULL: written as "" */
    FILL_COMMAND(p, &cmd, command_execute);
    cmd.pipeline = "cpBias.yaml";
    cmd.version = "";
    cmd.config = "";
    cmd.data_query = (char *)query;
    assert_int_equal(dds_write(writer, &cmd), DDS_RETCODE_OK);
    return cmd.private_seqNum;
}

static void salobj7_remote_session(void **state)
{
    peer *p = *state;
    char result[256];
    dds_entity_t start = endpoint(p, true, &PEER_DESC_command_start, PEER_NAME_command_start, 'c');
    dds_entity_t enable = endpoint(p, true, &PEER_DESC_command_enable, PEER_NAME_command_enable, 'c');
    dds_entity_t disable = endpoint(p, true, &PEER_DESC_command_disable, PEER_NAME_command_disable, 'c');
    dds_entity_t standby = endpoint(p, true, &PEER_DESC_command_standby, PEER_NAME_command_standby, 'c');
    dds_entity_t exit_control =
        endpoint(p, true, &PEER_DESC_command_exitControl, PEER_NAME_command_exitControl, 'c');
    dds_entity_t execute = endpoint(p, true, &PEER_DESC_command_execute, PEER_NAME_command_execute, 'c');
    dds_entity_t abort_job =
        endpoint(p, true, &PEER_DESC_command_abort_job, PEER_NAME_command_abort_job, 'c');

    /* late joiner: the initial state and versions */
    wait_state(p, STANDBY, 20);
    wait_event(p, "logevent_softwareVersions", 0, 5);
    assert_string_equal(p->xml_version, PEER_XML_VERSION);
    wait_event(p, "logevent_heartbeat", 0, 5);
    wait_matched(start);
    wait_matched(exit_control);

    STATE_COMMAND(p, command_start, start);
    wait_state(p, DISABLED, 5);
    wait_event(p, "logevent_configurationApplied", 0, 5);
    STATE_COMMAND(p, command_enable, enable);
    wait_state(p, ENABLED, 5);

#ifdef PEER_HAS_command_setAuthList
    dds_entity_t set_auth =
        endpoint(p, true, &PEER_DESC_command_setAuthList, PEER_NAME_command_setAuthList, 'c');
    wait_matched(set_auth);
    int auth_before = event(p, "logevent_authList")->seen;
    PEER_TYPE_command_setAuthList auth;
    memset(&auth, 0, sizeof auth);
    FILL_COMMAND(p, &auth, command_setAuthList);
    auth.authorizedUsers = "observer@summit";
    auth.nonAuthorizedCSCs = "";
    assert_int_equal(dds_write(set_auth, &auth), DDS_RETCODE_OK);
    assert_int_equal(
        wait_ack(p, auth.private_seqNum, true, PEER_CMDTYPE_command_setAuthList, result, sizeof result, 10),
        COMPLETE);
    wait_event(p, "logevent_authList", auth_before, 5);
#endif

    /* execute: INPROGRESS naming the job, job_id, job_result, COMPLETE */
    wait_matched(execute);
    int32_t seq = send_execute(p, execute, "SLEEP=0.2");
    assert_int_equal(wait_ack(p, seq, false, PEER_CMDTYPE_command_execute, result, sizeof result, 10),
                     INPROGRESS);
    assert_non_null(strstr(result, "job_id"));
    assert_int_equal(wait_ack(p, seq, true, PEER_CMDTYPE_command_execute, result, sizeof result, 30),
                     COMPLETE);
    wait_event(p, "logevent_job_result", 0, 5);
    assert_true(p->last_job_id[0] != '\0');
    assert_string_equal(p->last_result_job, p->last_job_id);
    assert_int_equal(p->last_exit_code, 0);

    /* abort_job of a running job: COMPLETE; the execute ends ABORTED */
    int results = event(p, "logevent_job_result")->seen;
    int ids = event(p, "logevent_job_id")->seen;
    seq = send_execute(p, execute, "SLEEP=60");
    assert_int_equal(wait_ack(p, seq, false, PEER_CMDTYPE_command_execute, result, sizeof result, 10),
                     INPROGRESS);
    wait_event(p, "logevent_job_id", ids, 5);
    wait_matched(abort_job);
    PEER_TYPE_command_abort_job ab;
    memset(&ab, 0, sizeof ab);
    FILL_COMMAND(p, &ab, command_abort_job);
    ab.job_id = p->last_job_id;
    assert_int_equal(dds_write(abort_job, &ab), DDS_RETCODE_OK);
    assert_int_equal(
        wait_ack(p, ab.private_seqNum, true, PEER_CMDTYPE_command_abort_job, result, sizeof result, 10),
        COMPLETE);
    assert_int_equal(wait_ack(p, seq, true, PEER_CMDTYPE_command_execute, result, sizeof result, 20),
                     ABORTED);
    wait_event(p, "logevent_job_result", results, 5);
    assert_string_equal(p->last_result_job, p->last_job_id);

    STATE_COMMAND(p, command_disable, disable);
    wait_state(p, DISABLED, 5);
    STATE_COMMAND(p, command_standby, standby);
    wait_state(p, STANDBY, 5);
    STATE_COMMAND(p, command_exitControl, exit_control);
    wait_state(p, OFFLINE, 5);
    assert_int_equal(tu_wait_exit(p->csc_pid, 10), 0);
    p->csc_pid = 0;

    /* every event the session causes arrived, each with its revCode */
    static const char *const expected[] = {
        "logevent_summaryState",
        "logevent_heartbeat",
        "logevent_logLevel",
        "logevent_logMessage",
        "logevent_simulationMode",
        "logevent_softwareVersions",
        "logevent_configurationApplied",
        "logevent_configurationsAvailable",
        "logevent_job_id",
        "logevent_job_result",
    };
    poll_events(p);
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        if (event(p, expected[i])->seen == 0) {
            fail_msg("%s never arrived", expected[i]);
        }
    }
    for (size_t i = 0; i < p->nevents; i++) {
        print_message("%-36s %d\n", p->events[i].name, p->events[i].seen);
        assert_int_equal(p->events[i].bad_rev, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(salobj7_remote_session, setup, teardown),
    };
    return cmocka_run_group_tests_name("salobj7_wire", tests, NULL, NULL);
}
