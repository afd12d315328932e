/*
 * test_inproc_csc_states: the OCPS CSC (application and configuration as
 * ocps-csc runs them) on its own thread in this process, commanded by a
 * Remote over the inproc transport: the start-up events, every transition
 * of the summary state machine, every command refused in every state
 * with salobj's message, FAULT from a transport failure and the way out
 * of it, a fault while a start reads its configuration, setLogLevel,
 * execute and abort_job refused unless ENABLED, a late-joining Remote
 * reading the current state, and a second CSC (index 2) in the same
 * process that neither disturbs nor is disturbed by the first. No sleeps:
 * each step runs the loops until what it waits for has happened.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "ocps_test_iface.h"
#include "inproc/sal_inproc.h"
#include "inproc_csc.h"
#include "ocps/ocps_interface.h"
#include "ocps/sal_csc.h"
#include "sal_fixture.h"
#include "test_util.h"

typedef struct ctx {
    fx f; /* the Remote and what it read */
    csc_thread *csc;
    char *root;
    /* what a test opens beside them, closed by teardown (an opened fx has
     * comp set) */
    csc_thread *two;
    fx extra[2];
} ctx;

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    *state = c;
    c->root = ct_ocps_config(FAKE_PIPETASK, NULL);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/OCPS/v4", c->root);
    if (fx_open_transport(&c->f, ocps_test_component(), 1, NULL, &sal_inproc_transport) != 0) {
        return -1;
    }
    ct_options o;
    ct_options_ocps(&o, ocps_test_component(), OCPS_JOB_RUNNER, dir);
    c->csc = ct_start(&o);
    return c->csc != NULL && fx_wait_event(&c->f, "logevent_summaryState", 0, 10) >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
    ctx *c = *state;
    if (c->two != NULL) {
        ct_stop(c->two);
    }
    for (int i = 0; i < 2; i++) {
        if (c->extra[i].comp != NULL) {
            fx_close(&c->extra[i]);
        }
    }
    int code = c->csc != NULL ? ct_stop(c->csc) : 0;
    int rc = fx_close(&c->f);
    tu_remove_tree(c->root);
    free(c->root);
    free(c);
    if (sal_inproc_endpoints() != 0) {
        fprintf(stderr, "teardown: %d endpoints left on the bus\n", sal_inproc_endpoints());
        return -1;
    }
    return code == 0 ? rc : -1;
}

static const char *topic_name(const fx *f, size_t i)
{
    return f->comp->topics[f->records[i].topic].sal_name;
}

static long first(const fx *f, const char *sal_name, size_t from)
{
    for (size_t i = from; i < f->nrecords; i++) {
        if (strcmp(topic_name(f, i), sal_name) == 0) {
            return (long)i;
        }
    }
    return -1;
}

static const char *str_field(const fx *f, long i, const char *field)
{
    const fx_record *r = &f->records[i];
    return sal_sample_get_string(&f->comp->topics[r->topic], r->sample, field);
}

/* Send `cmd`, expect `ack` and, when expect_state > 0, that summaryState
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

/* Every summaryState read from record `from` on. */
static int states_since(const fx *f, size_t from, int *out, int max)
{
    int n = 0;
    for (size_t i = from; i < f->nrecords && n < max; i++) {
        if (strcmp(topic_name(f, i), "logevent_summaryState") == 0) {
            out[n++] = fx_i32(f, i, "summaryState");
        }
    }
    return n;
}

static bool startup_done(fx *f, void *arg)
{
    (void)arg;
    return first(f, "logevent_errorCode", 0) >= 0;
}

static void startup_events_in_salobj_order(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    assert_true(fx_run_until(f, startup_done, NULL, 10));
    /* authList (where the interface has it) as salobj 7's Controller.start
     * writes it, whether or not LSST_DDS_ENABLE_AUTHLIST enforces it */
    bool auth = sal_component_find_topic(f->comp, "logevent_authList") >= 0;
    const char *order[] = {"logevent_logLevel",         "logevent_authList",     "logevent_simulationMode",
                           "logevent_softwareVersions", "logevent_summaryState", "logevent_errorCode"};
    long prev = -1;
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        if (!auth && strcmp(order[k], "logevent_authList") == 0) {
            continue;
        }
        long i = first(f, order[k], 0);
        if (i <= prev) {
            fail_msg("%s read at %ld, not after %s", order[k], i, k ? order[k - 1] : "-");
        }
        prev = i; /* one writer, one bus: read in the order written */
    }
    long summary = first(f, "logevent_summaryState", 0);
    assert_int_equal(fx_i32(f, (size_t)summary, "summaryState"), SAL_STATE_STANDBY);
    assert_int_equal(fx_i32(f, (size_t)summary, "salIndex"), 1);
    assert_int_equal(fx_i32(f, (size_t)summary, "private_origin"), (int)getpid());
    assert_string_equal(str_field(f, summary, "private_identity"), "OCPS:1");
    assert_string_equal(str_field(f, summary, "private_revCode"),
                        f->comp->topics[f->records[summary].topic].dds_revcode);
    long versions = first(f, "logevent_softwareVersions", 0);
    assert_string_equal(str_field(f, versions, "xmlVersion"), f->comp->xml_version);
    assert_string_equal(str_field(f, versions, "cscVersion"), "0.0.0-inproc");
    assert_int_equal(fx_i32(f, (size_t)first(f, "logevent_logLevel", 0), "level"), SAL_LOG_INFO);
    if (auth) {
        assert_null(getenv("LSST_DDS_ENABLE_AUTHLIST"));
        long a = first(f, "logevent_authList", 0);
        assert_string_equal(str_field(f, a, "authorizedUsers"), "");
        assert_string_equal(str_field(f, a, "nonAuthorizedCSCs"), "");
    }
}

static bool csc_ended(fx *f, void *arg)
{
    (void)f;
    return ct_finished(arg);
}

static void every_transition_then_exit(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    size_t mark = f->nrecords;
    step(f, "start", SAL_CMD_COMPLETE, SAL_STATE_DISABLED);
    step(f, "enable", SAL_CMD_COMPLETE, SAL_STATE_ENABLED);
    step(f, "disable", SAL_CMD_COMPLETE, SAL_STATE_DISABLED);
    step(f, "standby", SAL_CMD_COMPLETE, SAL_STATE_STANDBY);
    step(f, "start", SAL_CMD_COMPLETE, SAL_STATE_DISABLED);
    step(f, "standby", SAL_CMD_COMPLETE, SAL_STATE_STANDBY);
    step(f, "exitControl", SAL_CMD_COMPLETE, SAL_STATE_OFFLINE);
    /* one summaryState per transition, no repeats */
    int states[16];
    int expected[] = {1, 2, 1, 5, 1, 5, 4};
    assert_int_equal(states_since(f, mark, states, 16), 7);
    assert_memory_equal(states, expected, sizeof expected);
    /* the CSC ends by itself after the shutdown delay, with status 0 */
    assert_true(fx_run_until(f, csc_ended, c->csc, 10));
    assert_int_equal(ct_stop(c->csc), 0);
    c->csc = NULL;
}

/* The commands each state refuses. */
typedef struct refusals {
    sal_state state;
    const char *commands[5];
} refusals;

static void assert_refused(fx *f, const refusals *r)
{
    char result[1024];
    char expect[1024];
    size_t mark = f->nrecords;
    for (size_t k = 0; r->commands[k] != NULL; k++) {
        assert_int_equal(fx_command(f, r->commands[k], NULL, 10, result, sizeof result), SAL_CMD_FAILED);
        snprintf(expect, sizeof expect, "Failed: %s not allowed in state %s", r->commands[k],
                 sal_state_repr(r->state));
        assert_string_equal(result, expect);
    }
    int states[4];
    assert_int_equal(states_since(f, mark, states, 4), 0); /* no state change came of them */
}

static void fault(ctx *c, const char *why)
{
    size_t mark = c->f.nrecords;
    assert_true(sal_inproc_report_error("OCPS", 1, why) >= 1); /* the CSC's (and the Remote's) */
    long i = fx_wait_change(&c->f, "logevent_summaryState", "summaryState", mark, 5);
    assert_true(i >= 0);
    assert_int_equal(fx_i32(&c->f, (size_t)i, "summaryState"), SAL_STATE_FAULT);
}

static void every_state_refuses_the_other_commands(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    static const refusals standby = {SAL_STATE_STANDBY, {"enable", "disable", "standby", NULL}};
    static const refusals disabled = {SAL_STATE_DISABLED, {"start", "disable", "exitControl", NULL}};
    static const refusals enabled = {SAL_STATE_ENABLED, {"start", "enable", "standby", "exitControl", NULL}};
    static const refusals faulted = {SAL_STATE_FAULT, {"start", "enable", "disable", "exitControl", NULL}};
    assert_refused(f, &standby);
    step(f, "start", SAL_CMD_COMPLETE, SAL_STATE_DISABLED);
    assert_refused(f, &disabled);
    step(f, "enable", SAL_CMD_COMPLETE, SAL_STATE_ENABLED);
    assert_refused(f, &enabled);
    fault(c, "test: link lost");
    assert_refused(f, &faulted);
    assert_int_equal(ct_state(c->csc), SAL_STATE_FAULT);
}

static void transport_failure_faults_and_standby_recovers(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    step(f, "start", SAL_CMD_COMPLETE, SAL_STATE_DISABLED);
    step(f, "enable", SAL_CMD_COMPLETE, SAL_STATE_ENABLED);
    size_t mark = f->nrecords;
    fault(c, "test: link's lost\tagain");
    long e = fx_wait_change(f, "logevent_errorCode", "errorCode", mark, 5);
    assert_true(e >= 0);
    assert_int_equal(fx_i32(f, (size_t)e, "errorCode"), 1);
    assert_string_equal(str_field(f, e, "errorReport"), "test: link's lost\tagain");
    /* execute in FAULT: salobj's assert_enabled("execute") wording, the
     * report as Python's repr() gives it */
    char result[1024];
    assert_int_equal(fx_command(f, "execute", NULL, 10, result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(result, "Failed: execute not allowed in Fault state: errorCode=1, "
                                "errorReport=\"test: link's lost\\tagain\"");
    mark = f->nrecords;
    step(f, "standby", SAL_CMD_COMPLETE, SAL_STATE_STANDBY);
    e = fx_wait_change(f, "logevent_errorCode", "errorCode", mark, 5);
    assert_true(e >= 0);
    assert_int_equal(fx_i32(f, (size_t)e, "errorCode"), 0); /* cleared on leaving FAULT */
    step(f, "start", SAL_CMD_COMPLETE, SAL_STATE_DISABLED);
}

/* --- a fault while start reads the configuration --- */

/* A command whose acks are collected as they come. */
typedef struct pending_cmd {
    int acks[8];
    char results[8][1024];
    int n;
    bool done;
} pending_cmd;

static void on_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    (void)error;
    (void)timeout;
    pending_cmd *p = arg;
    if (p->n < 8) {
        p->acks[p->n] = ack;
        snprintf(p->results[p->n], sizeof p->results[p->n], "%s", result);
        p->n++;
    }
    p->done = p->done || final;
}

static bool got_an_ack(fx *f, void *arg)
{
    (void)f;
    return ((pending_cmd *)arg)->n > 0;
}

static bool cmd_done(fx *f, void *arg)
{
    (void)f;
    return ((pending_cmd *)arg)->done;
}

static void fault_while_start_reads_configuration(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    ct_pool_hold hold;
    ct_pool_fill(&hold, &f->loop);
    /* start: the configuration read is queued behind the held pool; after
     * 200 ms the CSC says it is reading it */
    pending_cmd start = {0};
    char err[256];
    void *s = sal_remote_new_command(f->remote, "start");
    assert_int_equal(sal_remote_command(f->remote, "start", s, 30, on_ack, &start, NULL, err, sizeof err), 0);
    sal_sample_free(&f->comp->topics[sal_remote_command_topic(f->remote, "start")], s);
    assert_true(fx_run_until(f, got_an_ack, &start, 10));
    assert_int_equal(start.acks[0], SAL_CMD_INPROGRESS);
    assert_string_equal(start.results[0], "Reading the configuration");
    /* the transport fails now */
    size_t mark = f->nrecords;
    fault(c, "test: link lost during start");
    /* the read completes: too late, the state is no longer STANDBY */
    ct_pool_release(&hold);
    assert_true(fx_run_until(f, cmd_done, &start, 10));
    assert_int_equal(start.acks[start.n - 1], SAL_CMD_FAILED);
    assert_string_equal(start.results[start.n - 1],
                        "Failed: the summary state changed while the configuration was read");
    assert_true(fx_run_until(f, ct_pool_empty, &hold, 10));
    ct_pool_fini(&hold);
    int states[8];
    assert_int_equal(states_since(f, mark, states, 8), 1); /* FAULT only, never DISABLED */
    assert_int_equal(states[0], SAL_STATE_FAULT);
    assert_true(first(f, "logevent_configurationApplied", mark) < 0);
    assert_int_equal(ct_state(c->csc), SAL_STATE_FAULT);
    pthread_mutex_destroy(&hold.lock);
    pthread_cond_destroy(&hold.cond);
    /* and the way out */
    step(f, "standby", SAL_CMD_COMPLETE, SAL_STATE_STANDBY);
    step(f, "start", SAL_CMD_COMPLETE, SAL_STATE_DISABLED);
}

static void set_log_level_writes_log_level_once(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    char result[1024];
    int t = sal_remote_command_topic(f->remote, "setLogLevel");
    void *s = sal_remote_new_command(f->remote, "setLogLevel");
    sal_sample_set_i32(&f->comp->topics[t], s, "level", SAL_LOG_DEBUG);
    size_t mark = f->nrecords;
    assert_int_equal(fx_command(f, "setLogLevel", s, 10, result, sizeof result), SAL_CMD_COMPLETE);
    long i = fx_wait_change(f, "logevent_logLevel", "level", mark, 5);
    assert_true(i >= 0);
    assert_int_equal(fx_i32(f, (size_t)i, "level"), SAL_LOG_DEBUG);
    /* the same level again changes nothing, so no logLevel is written;
     * the ack comes after anything the command wrote */
    mark = f->nrecords;
    assert_int_equal(fx_command(f, "setLogLevel", s, 10, result, sizeof result), SAL_CMD_COMPLETE);
    assert_true(first(f, "logevent_logLevel", mark) < 0);
    sal_sample_free(&f->comp->topics[t], s);
}

/* salobj hands the level to Python's logger.setLevel: 0 (NOTSET) makes
 * the logger inherit the root logger's WARNING, and logLevel reports that
 * effective level, not 0; DEBUG messages are then no longer published. */
static void set_log_level_zero_reports_warning(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    char result[1024];
    int t = sal_remote_command_topic(f->remote, "setLogLevel");
    void *s = sal_remote_new_command(f->remote, "setLogLevel");
    sal_sample_set_i32(&f->comp->topics[t], s, "level", 0);
    size_t mark = f->nrecords;
    assert_int_equal(fx_command(f, "setLogLevel", s, 10, result, sizeof result), SAL_CMD_COMPLETE);
    long i = fx_wait_change(f, "logevent_logLevel", "level", mark, 5);
    assert_true(i >= 0);
    assert_int_equal(fx_i32(f, (size_t)i, "level"), SAL_LOG_WARNING);
    sal_sample_free(&f->comp->topics[t], s);
}

static void csc_specific_commands_need_enabled(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    char result[1024];
    assert_int_equal(fx_command(f, "abort_job", NULL, 10, result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(result, "Failed: abort_job not allowed in state=<State.STANDBY: 5>");
    step(f, "start", SAL_CMD_COMPLETE, SAL_STATE_DISABLED);
    assert_int_equal(fx_command(f, "execute", NULL, 10, result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(result, "Failed: execute not allowed in state=<State.DISABLED: 1>");
}

static bool late_sees_enabled(fx *f, void *arg)
{
    (void)arg;
    const void *s = sal_remote_last(f->remote, "logevent_summaryState");
    int t = sal_component_find_topic(f->comp, "logevent_summaryState");
    return s != NULL && sal_sample_get_i32(&f->comp->topics[t], s, "summaryState") == SAL_STATE_ENABLED &&
           sal_remote_last(f->remote, "logevent_configurationApplied") != NULL;
}

static void late_joiner_reads_the_current_state(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    step(f, "start", SAL_CMD_COMPLETE, SAL_STATE_DISABLED);
    step(f, "enable", SAL_CMD_COMPLETE, SAL_STATE_ENABLED);
    /* no history on the bus: the CSC writes its events again for the
     * newcomer once its readers match */
    fx late;
    assert_int_equal(fx_open_transport(&late, ocps_test_component(), 1, NULL, &sal_inproc_transport), 0);
    bool seen = fx_run_until(&late, late_sees_enabled, NULL, 5); /* and what start applied */
    fx_close(&late);
    assert_true(seen);
}

/* A summaryState of SAL index *arg, of the state arg[1]. */
static bool summary_of(fx *f, void *arg)
{
    const int32_t *want = arg;
    for (size_t i = 0; i < f->nrecords; i++) {
        if (strcmp(topic_name(f, i), "logevent_summaryState") == 0 && fx_i32(f, i, "salIndex") == want[0] &&
            fx_i32(f, i, "summaryState") == want[1]) {
            return true;
        }
    }
    return false;
}

static void two_cscs_keep_to_their_index(void **state)
{
    ctx *c = *state;
    /* a second, generic CSC with SAL index 2 in the same process; what
     * the test opens is in ctx, closed by teardown, so a failed assertion
     * leaves nothing on the bus that refers to this function's stack */
    ct_options o;
    ct_options_init(&o, ocps_test_component());
    o.csc.index = 2;
    c->two = ct_start(&o);
    assert_non_null(c->two);
    fx *f2 = &c->extra[0];
    fx *all = &c->extra[1];
    assert_int_equal(fx_open_transport(f2, ocps_test_component(), 2, NULL, &sal_inproc_transport), 0);
    assert_int_equal(fx_open_transport(all, ocps_test_component(), 0, NULL, &sal_inproc_transport), 0);
    /* index 0 reads both; the first state it reads of each CSC is the
     * last the CSC writes for these new readers (at start-up, or in the
     * round re-publishing its events to them) */
    int32_t one_standby[2] = {1, SAL_STATE_STANDBY};
    int32_t two_standby[2] = {2, SAL_STATE_STANDBY};
    assert_true(fx_run_until(all, summary_of, one_standby, 5));
    assert_true(fx_run_until(all, summary_of, two_standby, 5));
    assert_true(fx_run_until(f2, summary_of, two_standby, 5));
    /* the Remotes of index 1 and 2 read those rounds too (copies of
     * STANDBY, as on DDS), whenever they come */
    step(&c->f, "enable", SAL_CMD_FAILED, 0);
    step(f2, "enable", SAL_CMD_FAILED, 0);
    size_t mark = c->f.nrecords;
    step(f2, "start", SAL_CMD_COMPLETE, SAL_STATE_DISABLED);
    int32_t two_disabled[2] = {2, SAL_STATE_DISABLED};
    assert_true(fx_run_until(all, summary_of, two_disabled, 5));
    /* OCPS:1 and its Remote saw none of it: nothing of index 2, no state
     * but STANDBY */
    step(&c->f, "enable", SAL_CMD_FAILED, 0);
    int states[8];
    int n = states_since(&c->f, mark, states, 8);
    for (int i = 0; i < n; i++) {
        assert_int_equal(states[i], SAL_STATE_STANDBY);
    }
    for (size_t i = mark; i < c->f.nrecords; i++) {
        assert_int_equal(fx_i32(&c->f, i, "salIndex"), 1);
    }
    assert_int_equal(ct_state(c->csc), SAL_STATE_STANDBY);
    assert_int_equal(ct_state(c->two), SAL_STATE_DISABLED);
    for (size_t i = 0; i < f2->nrecords; i++) {
        assert_int_equal(fx_i32(f2, i, "salIndex"), 2);
    }
    step(&c->f, "start", SAL_CMD_COMPLETE, SAL_STATE_DISABLED);
    int32_t one_disabled[2] = {1, SAL_STATE_DISABLED};
    assert_true(fx_run_until(all, summary_of, one_disabled, 5));
    assert_int_equal(ct_stop(c->two), 0);
    c->two = NULL; /* teardown closes the two Remotes */
}

int main(void)
{
    setenv("LSST_SITE", "test", 1);
    setenv("UV_THREADPOOL_SIZE", "4", 1); /* CT_POOL_SIZE */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(startup_events_in_salobj_order, setup, teardown),
        cmocka_unit_test_setup_teardown(every_transition_then_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(every_state_refuses_the_other_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(transport_failure_faults_and_standby_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(fault_while_start_reads_configuration, setup, teardown),
        cmocka_unit_test_setup_teardown(set_log_level_writes_log_level_once, setup, teardown),
        cmocka_unit_test_setup_teardown(set_log_level_zero_reports_warning, setup, teardown),
        cmocka_unit_test_setup_teardown(csc_specific_commands_need_enabled, setup, teardown),
        cmocka_unit_test_setup_teardown(late_joiner_reads_the_current_state, setup, teardown),
        cmocka_unit_test_setup_teardown(two_cscs_keep_to_their_index, setup, teardown),
    };
    return cmocka_run_group_tests_name("inproc_csc_states", tests, NULL, NULL);
}
