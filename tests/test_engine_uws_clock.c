/*
 * test_engine_uws_clock.c - the engine's UWS executor when the wall clock
 * steps back (NTP, a VM restored) while a job is handed over: its polls
 * and its retries after a backoff go on at their interval, and the
 * result arrives within a few intervals, not once the wall clock is back
 * where it was. The test runs itself again under libfaketime (Debian's
 * libfaketime), its offset read from a file at every call; the monotonic
 * clock is left alone. The ocps-engine it talks to runs on the real
 * clock. Skipped (77) when libfaketime was not found at configure time.
 */
#define _XOPEN_SOURCE 700
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ocps/engine.h"
#include "engine_fixture.h"
#include "test_util.h"
#include "uws_fixture.h"

#define CLOCK_STEP_ENV "OCPS_TEST_CLOCK_STEP_FILE"

typedef struct fixture {
    efx x; /* the engine, on the test's loop, in this (faked) process */
    uws_fx server;
    char url[256];
    const char *offset; /* libfaketime's offset file */
} fixture;

/* libfaketime's offset: "+0" the real time, "-600" ten minutes back. */
static void set_offset(const fixture *fx, const char *offset)
{
    char line[32];
    int n = snprintf(line, sizeof line, "%s\n", offset);
    assert_int_equal(tu_write_file(fx->offset, line, (size_t)n), 0);
}

/* The wall clock less the monotonic clock, in seconds. */
static double wall_minus_mono(void)
{
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    return (double)wall.tv_sec + (double)wall.tv_nsec / 1e9 - tu_now();
}

/* Step this process's wall clock back 600 s, checking that it stepped. */
static void step_back(const fixture *fx)
{
    double before = wall_minus_mono();
    set_offset(fx, "-600");
    double step = wall_minus_mono() - before;
    print_message("the wall clock stepped %.1f s\n", step);
    assert_true(step < -590 && step > -610);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->offset = getenv(CLOCK_STEP_ENV);
    assert_non_null(fx->offset);
    set_offset(fx, "+0");
    if (uws_fx_start(&fx->server, NULL, NULL) != 0) {
        free(fx);
        return -1;
    }
    snprintf(fx->url, sizeof fx->url, "%s/api/v1", fx->server.base);
    efx_init(&fx->x, "work", "/nonexistent/ocps-job-runner"); /* no runner for this executor */
    fx->x.publish_final = true;
    fx->x.opts.executor = ENGINE_EXECUTOR_UWS;
    fx->x.opts.uws.url = fx->url;
    fx->x.opts.uws.abort_extension = true;
    fx->x.opts.uws.timeout = 5;
    fx->x.opts.uws.max_backoff = 0.5;
    fx->x.opts.poll_interval = 0.2;
    efx_open(&fx->x);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    efx_free(&fx->x);
    uws_fx_stop(&fx->server);
    set_offset(fx, "+0");
    free(fx);
    return 0;
}

/* Submitted, its PUT answered: executing on the server, polled. */
static void submit_executing(fixture *fx, char id[ENGINE_JOB_ID_LEN + 1], const char *script)
{
    efx_submit_sh(&fx->x, id, script);
    efx_wait_phase(&fx->x, id, ENGINE_EXECUTING, 30);
}

/* Stepped back while polled: the end is seen within a few intervals. */
static void test_polls_go_on_after_a_backward_step(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    submit_executing(fx, id, "sleep 1");
    step_back(fx);
    double t0 = tu_now();
    const efx_event *ev = efx_wait_final(&fx->x, id, 10);
    print_message("the end seen %.2f s after the step\n", tu_now() - t0);
    assert_int_equal(ev->phase, ENGINE_COMPLETED);
    assert_true(ev->ended >= ev->started); /* the stored times stay wall times, in order */
}

/* Stepped back while the server is down and the job waits out a backoff:
 * asked again once the server is back, within a few backoffs. */
static void test_backoff_ends_after_a_backward_step(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    submit_executing(fx, id, "sleep 2");
    uws_fx_kill(&fx->server);
    efx_run_for(&fx->x, 1.0);
    assert_non_null(strstr(fx->x.log, "retrying with backoff"));
    step_back(fx);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", fx->server.port);
    const char *const extra[] = {"--listen", listen, NULL};
    assert_int_equal(uws_fx_restart(&fx->server, extra), 0);
    double t0 = tu_now();
    const efx_event *ev = efx_wait_final(&fx->x, id, 15);
    print_message("the end seen %.2f s after the restart\n", tu_now() - t0);
    assert_int_equal(ev->phase, ENGINE_COMPLETED);
}

/* This program again under libfaketime, its offset in a new file; only
 * returns if it cannot (77: no libfaketime, the test skipped). */
static int run_faked(char **argv)
{
#ifndef OCPS_LIBFAKETIME
    (void)argv;
    printf("libfaketime was not found at configure time (Debian: libfaketime): skipped\n");
    return 77;
#else
    char offset[PATH_MAX];
    if (tu_faketime_start(OCPS_LIBFAKETIME, 0, offset, sizeof offset) != 0) {
        perror("the offset file");
        return 1;
    }
    setenv(CLOCK_STEP_ENV, offset, 1);
    execv("/proc/self/exe", argv);
    perror("execv");
    unlink(offset);
    return 1;
#endif
}

int main(int argc, char **argv)
{
    (void)argc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_polls_go_on_after_a_backward_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_ends_after_a_backward_step, setup, teardown),
    };
    const char *offset = getenv(CLOCK_STEP_ENV);
    if (offset == NULL) {
        return run_faked(argv);
    }
    unsetenv("LD_PRELOAD"); /* loaded here; ocps-engine and curl on the real clock */
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(offset);
    return rc;
}
