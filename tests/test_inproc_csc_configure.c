/*
 * test_inproc_csc_configure: an application whose configure hook must ask
 * something slow first (a batch controller, a Redis server) answers
 * SAL_CONFIGURE_PENDING and ends the start later with
 * sal_csc_configure_done. Meanwhile the start command is in progress, the
 * CSC stays in STANDBY and refuses other transitions (another start waits
 * behind it, as every command of one topic does); done(NULL) goes to
 * DISABLED with configurationApplied, done(message) fails the start with
 * that message and leaves the CSC in STANDBY, ready for another start; a
 * CSC stopped while a configuration is pending exits cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    fx f;
    csc_thread *csc;
    char *root;
    atomic_int pend;       /* the hook answers SAL_CONFIGURE_PENDING */
    atomic_int configured; /* times the hook ran */
} ctx;

/* On the CSC's thread. */
static int configure_hook(void *arg, json_t *config, char *err, size_t errlen)
{
    (void)config;
    (void)err;
    (void)errlen;
    ctx *c = arg;
    atomic_fetch_add(&c->configured, 1);
    return atomic_load(&c->pend) ? SAL_CONFIGURE_PENDING : 0;
}

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    *state = c;
    atomic_store(&c->pend, 1);
    c->root = ct_ocps_config(FAKE_PIPETASK, NULL);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/OCPS/v4", c->root);
    if (fx_open_transport(&c->f, ocps_test_component(), 1, NULL, &sal_inproc_transport) != 0) {
        return -1;
    }
    /* a generic CSC with the OCPS configuration, and the hook above */
    ct_options o;
    ct_options_ocps(&o, ocps_test_component(), NULL, dir);
    o.ocps_runner = NULL;
    o.configure = configure_hook;
    o.arg = c;
    c->csc = ct_start(&o);
    return c->csc != NULL && fx_wait_event(&c->f, "logevent_summaryState", 0, 10) >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
    ctx *c = *state;
    int code = c->csc != NULL ? ct_stop(c->csc) : 0;
    int rc = fx_close(&c->f);
    tu_remove_tree(c->root);
    free(c->root);
    free(c);
    return code == 0 && sal_inproc_endpoints() == 0 ? rc : -1;
}

typedef struct acks {
    int n;
    int last;
    bool done;
    char result[256];
} acks;

static void on_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    (void)error;
    (void)timeout;
    acks *a = arg;
    a->n++;
    a->last = ack;
    a->done = a->done || final;
    snprintf(a->result, sizeof a->result, "%s", result ? result : "");
}

static bool some_ack(fx *f, void *arg)
{
    (void)f;
    return ((acks *)arg)->n > 0;
}

static bool final_ack(fx *f, void *arg)
{
    (void)f;
    return ((acks *)arg)->done;
}

/* Send start without waiting; returns once its first ack is read. */
static void start_async(ctx *c, acks *a)
{
    fx *f = &c->f;
    char err[256];
    memset(a, 0, sizeof *a);
    int t = sal_remote_command_topic(f->remote, "start");
    void *s = sal_remote_new_command(f->remote, "start");
    assert_int_equal(sal_remote_command(f->remote, "start", s, 30, on_ack, a, NULL, err, sizeof err), 0);
    sal_sample_free(&f->comp->topics[t], s);
    assert_true(fx_run_until(f, some_ack, a, 10));
}

static const char *failure_text;

static void finish(void *arg, sal_csc *csc)
{
    (void)arg;
    sal_csc_configure_done(csc, failure_text);
}

static long count_since(const fx *f, size_t from, const char *name)
{
    long n = 0;
    for (size_t i = from; i < f->nrecords; i++) {
        n += strcmp(f->comp->topics[f->records[i].topic].sal_name, name) == 0;
    }
    return n;
}

static void pending_then_done_goes_to_disabled(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    size_t mark = f->nrecords;
    acks a;
    start_async(c, &a);
    assert_int_equal(a.last, SAL_CMD_INPROGRESS);
    assert_false(a.done);
    fx_run_for(f, 0.2);
    assert_false(a.done);
    assert_int_equal(ct_state(c->csc), SAL_STATE_STANDBY);
    assert_int_equal(atomic_load(&c->configured), 1);
    /* nothing else moves the state meanwhile */
    char result[512];
    assert_int_equal(fx_command(f, "exitControl", NULL, 10, result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(result, "Failed: exitControl not allowed while a start is in progress");
    assert_int_equal(count_since(f, mark, "logevent_configurationApplied"), 0);
    failure_text = NULL;
    assert_int_equal(ct_call(c->csc, finish, NULL), 0);
    assert_true(fx_run_until(f, final_ack, &a, 10));
    assert_int_equal(a.last, SAL_CMD_COMPLETE);
    assert_true(fx_wait_event(f, "logevent_configurationApplied", mark, 5) >= 0);
    assert_int_equal(ct_state(c->csc), SAL_STATE_DISABLED);
    /* a second done is ignored */
    assert_int_equal(ct_call(c->csc, finish, NULL), 0);
    assert_int_equal(ct_state(c->csc), SAL_STATE_DISABLED);
}

static void pending_then_failure_stays_in_standby(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    size_t mark = f->nrecords;
    acks a;
    start_async(c, &a);
    failure_text = "the batch controller did not answer";
    assert_int_equal(ct_call(c->csc, finish, NULL), 0);
    assert_true(fx_run_until(f, final_ack, &a, 10));
    assert_int_equal(a.last, SAL_CMD_FAILED);
    assert_string_equal(a.result, "Failed: the batch controller did not answer");
    assert_int_equal(ct_state(c->csc), SAL_STATE_STANDBY);
    assert_int_equal(count_since(f, mark, "logevent_configurationApplied"), 0);
    /* the next start, applied at once this time, works */
    atomic_store(&c->pend, 0);
    char result[512];
    assert_int_equal(fx_command(f, "start", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    assert_int_equal(ct_state(c->csc), SAL_STATE_DISABLED);
}

static void stopped_while_pending_exits(void **state)
{
    ctx *c = *state;
    acks a;
    start_async(c, &a);
    assert_int_equal(ct_stop(c->csc), 0);
    c->csc = NULL;
    assert_false(a.done);
}

int main(void)
{
    setenv("LSST_SITE", "test", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(pending_then_done_goes_to_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(pending_then_failure_stays_in_standby, setup, teardown),
        cmocka_unit_test_setup_teardown(stopped_while_pending_exits, setup, teardown),
    };
    return cmocka_run_group_tests_name("inproc_csc_configure", tests, NULL, NULL);
}
