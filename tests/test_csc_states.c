/*
 * test_csc_states: ocps-csc as a separate process over real DDS, driven
 * by a Remote: the start-up events, the full state cycle with every
 * summaryState and ack, salobj's failure messages for wrong-state
 * commands, setLogLevel, unsupported commands, exitControl ending the
 * process, and commands sent before the start-up ended dropped unanswered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ocps_test_iface.h"
#include "ocps/sal_csc.h"
#include "sal_fixture.h"
#include "test_util.h"

static int setup(void **state)
{
    *state = fx_setup_csc(ocps_test_component(), OCPS_CSC, CYCLONE_CONFIG);
    return *state != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    return *state != NULL ? fx_teardown(*state) : 0;
}

static const char *topic_name(const fx *f, size_t i)
{
    return f->comp->topics[f->records[i].topic].sal_name;
}

/* The index of the first record of sal_name, or -1. */
static long first(const fx *f, const char *sal_name)
{
    for (size_t i = 0; i < f->nrecords; i++) {
        if (strcmp(topic_name(f, i), sal_name) == 0) {
            return (long)i;
        }
    }
    return -1;
}

static bool all_startup_events(fx *f, void *arg)
{
    (void)arg;
    static const char *const names[] = {"logevent_logLevel", "logevent_simulationMode",
                                        "logevent_softwareVersions", "logevent_summaryState",
                                        "logevent_errorCode"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (first(f, names[i]) < 0) {
            return false;
        }
    }
    return true;
}

static double sent(const fx *f, long i)
{
    const fx_record *r = &f->records[i];
    return sal_sample_get_number(&f->comp->topics[r->topic], r->sample, "private_sndStamp", 0);
}

static void startup_events_in_salobj_order(void **state)
{
    fx *f = *state;
    assert_true(fx_run_until(f, all_startup_events, NULL, 15));
    long loglevel = first(f, "logevent_logLevel");
    long sim = first(f, "logevent_simulationMode");
    long versions = first(f, "logevent_softwareVersions");
    long summary = first(f, "logevent_summaryState");
    long error = first(f, "logevent_errorCode");
    assert_true(loglevel >= 0 && sim >= 0 && versions >= 0 && summary >= 0 && error >= 0);
    /* written in salobj's order (compared by private_sndStamp: Kafka keeps
     * order within a topic only) */
    assert_true(sent(f, loglevel) < sent(f, sim) && sent(f, sim) < sent(f, versions) &&
                sent(f, versions) < sent(f, summary) && sent(f, summary) < sent(f, error));
    assert_int_equal(fx_i32(f, (size_t)loglevel, "level"), 20);
    assert_int_equal(fx_i32(f, (size_t)summary, "summaryState"), SAL_STATE_STANDBY);
    assert_int_equal(fx_i32(f, (size_t)error, "errorCode"), 0);
    assert_int_equal(fx_i32(f, (size_t)summary, "salIndex"), 1);
    const sal_topic_info *t = &f->comp->topics[f->records[summary].topic];
    assert_string_equal(sal_sample_get_string(t, f->records[summary].sample, "private_identity"), "OCPS:1");
    assert_string_equal(sal_sample_get_string(t, f->records[summary].sample, "private_revCode"),
                        strcmp(fx_transport(), "kafka") == 0 ? t->avro_revcode : t->dds_revcode);
    assert_int_equal(fx_i32(f, (size_t)summary, "private_origin"), f->csc_pid);
    const sal_topic_info *vt = &f->comp->topics[f->records[versions].topic];
    assert_string_equal(sal_sample_get_string(vt, f->records[versions].sample, "xmlVersion"),
                        f->comp->xml_version);
    /* salobj 7 (DDS) gives the SAL version; salobj 8 (Kafka) leaves it empty */
    assert_string_equal(sal_sample_get_string(vt, f->records[versions].sample, "salVersion"),
                        strcmp(fx_transport(), "kafka") == 0 ? "" : f->comp->sal_version);
}

/* Send `cmd`, expect `ack`, and (if expect_state > 0) that summaryState
 * next (after any copies of the state before it: late joiners' rounds). */
static void step(fx *f, const char *cmd, int ack, int expect_state)
{
    char result[1024];
    size_t mark = f->nrecords;
    int got = fx_command(f, cmd, NULL, 10, result, sizeof result);
    if (got != ack) {
        fail_msg("%s: got %s (%s), expected %s", cmd, sal_ack_name(got), result, sal_ack_name(ack));
    }
    if (ack == SAL_CMD_COMPLETE) {
        assert_string_equal(result, "Done");
    }
    if (expect_state > 0) {
        long i = fx_wait_change(f, "logevent_summaryState", "summaryState", mark, 5);
        assert_true(i >= 0);
        assert_int_equal(fx_i32(f, (size_t)i, "summaryState"), expect_state);
    }
}

static void full_state_cycle(void **state)
{
    fx *f = *state;
    assert_true(fx_wait_event(f, "logevent_summaryState", 0, 15) >= 0);
    step(f, "start", SAL_CMD_COMPLETE, SAL_STATE_DISABLED);
    step(f, "enable", SAL_CMD_COMPLETE, SAL_STATE_ENABLED);
    step(f, "disable", SAL_CMD_COMPLETE, SAL_STATE_DISABLED);
    step(f, "standby", SAL_CMD_COMPLETE, SAL_STATE_STANDBY);
    step(f, "exitControl", SAL_CMD_COMPLETE, SAL_STATE_OFFLINE);
    /* the process ends by itself about a second later, with status 0 */
    double t0 = tu_now();
    int status = tu_wait_exit(f->csc_pid, 5);
    assert_int_equal(status, 0);
    assert_true(tu_now() - t0 > 0.5);
    f->csc_pid = -1;
    /* one summaryState per transition; a repeat can only be the late-joiner
     * round's copy of the first state for this Remote (DDS: its reader
     * matched after that state was written), at most one; none on Kafka
     * (no rounds) */
    int states[8];
    int n = 0;
    int copies = 0;
    for (size_t i = 0; i < f->nrecords && n < 8; i++) {
        if (strcmp(topic_name(f, i), "logevent_summaryState") == 0) {
            int state = fx_i32(f, i, "summaryState");
            if (n == 1 && states[0] == state) {
                copies++;
            } else {
                states[n++] = state;
            }
        }
    }
    int expected[] = {5, 1, 2, 1, 5, 4};
    assert_true(copies <= (strcmp(fx_transport(), "kafka") == 0 ? 0 : 1));
    assert_int_equal(n, 6);
    assert_memory_equal(states, expected, sizeof expected);
}

/* SIGTERM (Kubernetes, systemd, docker stop) while ENABLED: summaryState
 * OFFLINE reaches the Remote before the process ends, with status 0, so
 * LOVE and scripts see the CSC go rather than only its heartbeat stop. */
static void sigterm_says_offline(void **state)
{
    fx *f = *state;
    assert_true(fx_wait_event(f, "logevent_summaryState", 0, 15) >= 0);
    step(f, "start", SAL_CMD_COMPLETE, SAL_STATE_DISABLED);
    step(f, "enable", SAL_CMD_COMPLETE, SAL_STATE_ENABLED);
    size_t mark = f->nrecords;
    assert_int_equal(kill(f->csc_pid, SIGTERM), 0);
    long i = fx_wait_change(f, "logevent_summaryState", "summaryState", mark, 5);
    assert_true(i >= 0);
    assert_int_equal(fx_i32(f, (size_t)i, "summaryState"), SAL_STATE_OFFLINE);
    assert_int_equal(tu_wait_exit(f->csc_pid, 10), 0);
    f->csc_pid = -1;
}

static void wrong_state_commands_fail_with_salobj_messages(void **state)
{
    fx *f = *state;
    char result[1024];
    assert_true(fx_wait_event(f, "logevent_summaryState", 0, 15) >= 0);
    assert_int_equal(fx_command(f, "enable", NULL, 10, result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(result, "Failed: enable not allowed in state <State.STANDBY: 5>");
    assert_int_equal(fx_command(f, "disable", NULL, 10, result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(result, "Failed: disable not allowed in state <State.STANDBY: 5>");
    step(f, "start", SAL_CMD_COMPLETE, SAL_STATE_DISABLED);
    assert_int_equal(fx_command(f, "start", NULL, 10, result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(result, "Failed: start not allowed in state <State.DISABLED: 1>");
    assert_int_equal(fx_command(f, "exitControl", NULL, 10, result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(result, "Failed: exitControl not allowed in state <State.DISABLED: 1>");
    step(f, "enable", SAL_CMD_COMPLETE, SAL_STATE_ENABLED);
    assert_int_equal(fx_command(f, "standby", NULL, 10, result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(result, "Failed: standby not allowed in state <State.ENABLED: 2>");
    /* no state change came of any failure */
    size_t mark = f->nrecords;
    fx_run_for(f, 0.3);
    for (size_t i = mark; i < f->nrecords; i++) {
        assert_string_not_equal(topic_name(f, i), "logevent_summaryState");
    }
}

static void set_log_level_changes_log_level(void **state)
{
    fx *f = *state;
    char result[1024];
    assert_true(fx_wait_event(f, "logevent_errorCode", 0, 15) >= 0);
    /* let discovery settle: a reader matching late gets the state events
     * re-published, which would look like new logLevel samples */
    fx_run_for(f, 1.0);
    int t = sal_remote_command_topic(f->remote, "setLogLevel");
    void *s = sal_remote_new_command(f->remote, "setLogLevel");
    sal_sample_set_i32(&f->comp->topics[t], s, "level", 10);
    size_t mark = f->nrecords;
    assert_int_equal(fx_command(f, "setLogLevel", s, 10, result, sizeof result), SAL_CMD_COMPLETE);
    long i = fx_wait_event(f, "logevent_logLevel", mark, 5);
    assert_true(i >= 0);
    assert_int_equal(fx_i32(f, (size_t)i, "level"), 10);
    /* the same level again writes no new logLevel */
    mark = f->nrecords;
    assert_int_equal(fx_command(f, "setLogLevel", s, 10, result, sizeof result), SAL_CMD_COMPLETE);
    assert_true(fx_wait_event(f, "logevent_logLevel", mark, 0.5) < 0);
    sal_sample_free(&f->comp->topics[t], s);
}

static void csc_specific_commands_need_enabled(void **state)
{
    fx *f = *state;
    char result[1024];
    assert_true(fx_wait_event(f, "logevent_summaryState", 0, 15) >= 0);
    /* salobj's assert_enabled wording */
    assert_int_equal(fx_command(f, "abort_job", NULL, 10, result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(result, "Failed: abort_job not allowed in state=<State.STANDBY: 5>");
    assert_int_equal(fx_command(f, "execute", NULL, 10, result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(result, "Failed: execute not allowed in state=<State.STANDBY: 5>");
}

/* A CSC whose start-up lasts 5 s (the test hook
 * OCPS_CSC_TEST_STARTUP_HOLD, with no duplicate check): a command sent
 * meanwhile arrives during the start-up whatever the machine's load. (It
 * used to rely on the duplicate check's window, which a slow transport
 * open could close before the test was ready.) */
#define STARTUP_HOLD_S "5"
static int setup_slow_start(void **state)
{
    fx *f = calloc(1, sizeof *f);
    *state = f;
    if (f == NULL) {
        return -1;
    }
    fx_env(CYCLONE_CONFIG);
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0", "1", NULL};
    if (fx_open(f, ocps_test_component(), 1, NULL) != 0) {
        return -1;
    }
    char err[256];
    /* the command's writer is made first, so that the time it takes (a
     * Kafka producer's metadata) is not spent in the window below */
    if (sal_remote_prepare(f->remote, "start", err, sizeof err) != 0) {
        return -1;
    }
    setenv("OCPS_CSC_TEST_STARTUP_HOLD", STARTUP_HOLD_S, 1);
    int rc = fx_start_csc(f, argv);
    unsetenv("OCPS_CSC_TEST_STARTUP_HOLD");
    return rc == 0 ? 0 : -1;
}

static bool start_ready(fx *f, void *arg)
{
    (void)arg;
    return sal_remote_ready(f->remote, "start");
}

/* Wait until the CSC reads commands from the Remote's start writer and the
 * Remote's start is ready. False if the CSC reported a state first; the
 * caller then tries again with a new CSC.
 * - Kafka: the CSC assigns its command readers at the offsets read just
 *   before (absolute ones), then writes its first heartbeat: a start
 *   written after that heartbeat is read.
 * - DDS: the Remote's writer matching the CSC's reader (start_ready) does
 *   not show that the CSC has discovered the writer (a sample of a writer
 *   it does not know yet is not delivered), so the CSC's second heartbeat,
 *   a second after its readers opened, is awaited.
 * The start-up lasts STARTUP_HOLD_S from the first heartbeat. */
static bool reach_startup_window(fx *f)
{
    int t_hb = sal_component_find_topic(f->comp, "logevent_heartbeat");
    int wanted = strcmp(fx_transport(), "kafka") == 0 ? 1 : 2;
    long hb = -1;
    for (int n = 0; n < wanted;) { /* the CSC's, not this process's */
        hb = fx_wait_event(f, "logevent_heartbeat", (size_t)(hb + 1), 15);
        assert_true(hb >= 0);
        n += sal_sample_origin(&f->comp->topics[t_hb], f->records[hb].sample) == f->csc_pid;
    }
    fx_run_for(f, 0.3);
    assert_true(fx_run_until(f, start_ready, NULL, 10));
    return first(f, "logevent_summaryState") < 0;
}

/* A command read during the duplicate check is kept and run once the
 * check has passed, then answered (salobj runs it at once: it assigns its
 * command callbacks before the check; keeping it also spares a live CSC
 * the acts of a newer instance that is about to quit as a duplicate): a
 * Remote that read an earlier instance's STANDBY and sent start at once
 * gets its ack. */
static void commands_during_startup_are_answered(void **state)
{
    fx *f = *state;
    char result[1024];
    int attempts = 1;
    while (!reach_startup_window(f)) {
        assert_true(attempts < 3); /* missed three times: not the load, a slow start-up */
        print_message("the CSC started before the Remote was ready; again with a new CSC\n");
        int rc = fx_teardown(f);
        *state = NULL; /* freed: the group's teardown must not see it */
        assert_int_equal(rc, 0);
        if (setup_slow_start(state) != 0) {
            *state = NULL; /* half made: left as it is (the test fails) */
            fail_msg("a new CSC could not be started");
        }
        f = *state;
        attempts++;
    }
    double sent_at = sal_now_tai(sal_remote_sal(f->remote));
    assert_int_equal(fx_command(f, "start", NULL, 30.0, result, sizeof result), SAL_CMD_COMPLETE);
    /* kept until the check passed: the start-up's STANDBY, then the start's DISABLED */
    long standby = fx_wait_event(f, "logevent_summaryState", 0, 15);
    assert_true(standby >= 0);
    assert_true(sent(f, standby) > sent_at); /* the start did arrive during the start-up */
    print_message("the start-up ended %.2f s after the start was sent\n", sent(f, standby) - sent_at);
    assert_int_equal(fx_i32(f, (size_t)standby, "summaryState"), SAL_STATE_STANDBY);
    long disabled = fx_wait_change(f, "logevent_summaryState", "summaryState", (size_t)standby + 1, 15);
    assert_true(disabled > standby);
    assert_int_equal(fx_i32(f, (size_t)disabled, "summaryState"), SAL_STATE_DISABLED);
    assert_true(fx_wait_event(f, "logevent_configurationApplied", 0, 15) >= 0);
    char *log = tu_read_file(f->log_path, NULL);
    assert_non_null(log);
    assert_null(strstr(log, "Ignoring command_start"));
    free(log);
    step(f, "enable", SAL_CMD_COMPLETE, SAL_STATE_ENABLED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(startup_events_in_salobj_order, setup, teardown),
        cmocka_unit_test_setup_teardown(full_state_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(sigterm_says_offline, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_state_commands_fail_with_salobj_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(set_log_level_changes_log_level, setup, teardown),
        cmocka_unit_test_setup_teardown(csc_specific_commands_need_enabled, setup, teardown),
        cmocka_unit_test_setup_teardown(commands_during_startup_are_answered, setup_slow_start, teardown),
    };
    return cmocka_run_group_tests_name("csc_states", tests, NULL, NULL);
}
