/*
 * test_inproc_close: one teardown rule for every closable object, as
 * libuv's uv_close: x_close(x, cb) starts closing, the object is freed on
 * the loop once its handles have closed, then the callback runs, once.
 * After it, the loop has nothing left (uv_loop_close succeeds), and under
 * the sanitizers nothing leaks. The runtime, a Remote, the job engine, the
 * OCPS application and a CSC (whose callback is its `closed` hook, also
 * run when it closes itself), over the in-process transport.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "ocps/engine.h"
#include "ocps/ocps_app.h"
#include "ocps/ocps_interface.h"
#include "ocps/sal.h"
#include "ocps/sal_csc.h"
#include "ocps/sal_remote.h"
#include "ocps/sal_sample.h"
#include "ocps/sal_transport.h"
#include "test_util.h"

typedef struct closed {
    int calls;
    int exit_code;
} closed;

static void on_closed(void *arg)
{
    ((closed *)arg)->calls++;
}

static void on_csc_closed(void *arg, int exit_code)
{
    closed *c = arg;
    c->calls++;
    c->exit_code = exit_code;
}

static void on_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    (void)arg;
    (void)ack;
    (void)error;
    (void)result;
    (void)timeout;
    (void) final;
}

static const sal_component_info *comp(void)
{
    char err[256];
    return ocps_interface_select("dds", NULL, err, sizeof err);
}

/* Run the loop to its end: the object and its handles are gone. */
static void run_to_end(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void runtime_and_remote(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[512];
    const sal_transport_ops *inproc = sal_transport_find("inproc");
    sal *s;
    sal_remote *r;
    assert_int_equal(sal_open(&s, &loop, comp(), 1, inproc, "test:1", err, sizeof err), 0);
    assert_int_equal(sal_remote_open(&r, &loop, comp(), 1, inproc, "test:2", err, sizeof err), 0);
    closed cs = {0};
    closed cr = {0};
    sal_close(s, on_closed, &cs);
    sal_remote_close(r, on_closed, &cr);
    assert_int_equal(cs.calls + cr.calls, 0); /* not before the loop ran */
    run_to_end(&loop);
    assert_int_equal(cs.calls, 1);
    assert_int_equal(cr.calls, 1);
}

static void engine_closes_once(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *dir = tu_make_temp_dir();
    char *store = tu_path_join(dir, "jobs.sqlite");
    engine_options o = {.work_root = dir, .store_path = store, .runner = "/bin/false", .max_concurrent = 1};
    engine *e;
    char err[512];
    assert_int_equal(engine_open(&e, &loop, &o, NULL, NULL, err, sizeof err), 0);
    closed c = {0};
    engine_close(e, on_closed, &c);
    engine_close(e, on_closed, &c); /* a second close is a no-op */
    run_to_end(&loop);
    assert_int_equal(c.calls, 1);
    tu_remove_tree(dir);
    free(store);
    free(dir);
}

static void app_closes_once(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    ocps_app *a;
    char err[512];
    assert_int_equal(ocps_app_open(&a, &loop, comp(), 1, 0, "/bin/false", err, sizeof err), 0);
    closed c = {0};
    ocps_app_close(a, on_closed, &c);
    run_to_end(&loop);
    assert_int_equal(c.calls, 1);
}

static sal_csc *open_csc(uv_loop_t *loop, closed *c)
{
    sal_csc_options o;
    sal_csc_options_init(&o);
    o.index = 1;
    o.transport = sal_transport_find("inproc");
    o.duplicate_check = -1;
    o.shutdown_delay = 0;
    o.indices = ocps_indices(&o.nindices);
    sal_csc_hooks hooks = {.closed = on_csc_closed, .arg = c};
    sal_csc *csc;
    char err[512];
    assert_int_equal(sal_csc_open(&csc, loop, comp(), &o, &hooks, err, sizeof err), 0);
    return csc;
}

static void csc_closed_by_its_owner(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    closed c = {0};
    sal_csc *csc = open_csc(&loop, &c);
    char err[512];
    assert_int_equal(sal_csc_start(csc, err, sizeof err), 0);
    sal_csc_close(csc, 7);
    assert_int_equal(c.calls, 0);
    run_to_end(&loop);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.exit_code, 7);
}

/* exitControl: the CSC closes itself; its owner learns it from `closed`. */
static void csc_closing_itself(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    closed c = {0};
    sal_csc *csc = open_csc(&loop, &c);
    char err[512];
    assert_int_equal(sal_csc_start(csc, err, sizeof err), 0);
    sal_remote *r;
    assert_int_equal(
        sal_remote_open(&r, &loop, comp(), 1, sal_transport_find("inproc"), "test:3", err, sizeof err), 0);
    /* the Remote commands exitControl once the CSC has started (its
     * summaryState is out) */
    assert_int_equal(sal_remote_subscribe(r, "logevent_summaryState", NULL, NULL, err, sizeof err), 0);
    assert_int_equal(sal_remote_prepare(r, "exitControl", err, sizeof err), 0);
    double end = tu_now() + 10;
    while ((sal_remote_last(r, "logevent_summaryState") == NULL || !sal_remote_ready(r, "exitControl")) &&
           tu_now() < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    void *cmd = sal_remote_new_command(r, "exitControl");
    assert_non_null(cmd);
    assert_int_equal(sal_remote_command(r, "exitControl", cmd, 10, on_ack, NULL, NULL, err, sizeof err), 0);
    sal_sample_free(&comp()->topics[sal_remote_command_topic(r, "exitControl")],
                    cmd); /* the Remote copied it */
    end = tu_now() + 10;
    while (c.calls == 0 && tu_now() < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.exit_code, 0);
    sal_remote_close(r, NULL, NULL);
    run_to_end(&loop);
    assert_int_equal(c.calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runtime_and_remote), cmocka_unit_test(engine_closes_once),
        cmocka_unit_test(app_closes_once),    cmocka_unit_test(csc_closed_by_its_owner),
        cmocka_unit_test(csc_closing_itself),
    };
    return cmocka_run_group_tests_name("inproc_close", tests, NULL, NULL);
}
