/*
 * test_uws_gone_clock.c - ocps-engine's wall clock steps back between the
 * DELETE of a job and a new job made with its id (the same
 * Idempotency-Key), and the engine is killed before the deleted job's
 * files (moved aside) are removed. The next start takes the leftover for
 * the deleted job's, not the new job's: the new job stays, and runs to its
 * end. ocps-engine runs under libfaketime (Debian's libfaketime), its
 * offset read from a file at every call (its monotonic clock steps too);
 * this process and its clock are left alone. Skipped (77) when libfaketime was not found at configure
 * time.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "test_util.h"
#include "uws_fixture.h"

static uws_fx fx;
static char offset_file[PATH_MAX]; /* libfaketime's offset, for ocps-engine */

/* ocps-engine's offset: "+0" the real time, "-600" ten minutes back. */
static void set_offset(const char *offset)
{
    char line[32];
    int n = snprintf(line, sizeof line, "%s\n", offset);
    assert_int_equal(tu_write_file(offset_file, line, (size_t)n), 0);
}

static int setup(void **state)
{
    (void)state;
    return uws_fx_start(&fx, NULL, NULL);
}

static int teardown(void **state)
{
    (void)state;
    uws_fx_stop(&fx);
    return 0;
}

/* PUT /job with key `key` and `body`: the status (503 answers retried for
 * up to 10 s: the deleted job's id is freed once its files are moved). */
static int put_keyed(const char *key, const char *body)
{
    char header[128];
    snprintf(header, sizeof header, "Idempotency-Key: %s", key);
    const char *const extra[] = {"-H", header, NULL};
    int status = 0;
    for (double until = tu_now() + 10; tu_now() < until; usleep(20 * 1000)) {
        uws_resp r;
        assert_int_equal(
            uws_fx_request(&fx, "PUT", "/job", "application/json", body, strlen(body), extra, &r), 0);
        status = r.status;
        uws_resp_clear(&r);
        if (status != 503) {
            break;
        }
    }
    return status;
}

/* The number of .gone- names of job `id` under the work root. */
static int gone_count(const char *id)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, ".gone-%s.", id);
    DIR *d = opendir(fx.work_root);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    }
    closedir(d);
    return n;
}

static void test_new_job_stays_after_a_backward_step(void **state)
{
    (void)state;
    static const char key[] = "0123456789abcdef0123456789abcdef";
    /* 50,000 files: their removal outlasts the next PUT and the kill */
    static const char first[] = "{\"command\": \"mkdir -p $JOB_OUTPUT_DIR/many && cd $JOB_OUTPUT_DIR/many && "
                                "seq 50000 | xargs touch\", \"run_id\": \"r1\"}";
    static const char second[] =
        "{\"command\": \"echo second > $JOB_OUTPUT_DIR/which.txt\", \"run_id\": \"r2\"}";
    assert_int_equal(put_keyed(key, first), 200);
    json_t *job = uws_fx_wait(&fx, key, NULL, 120);
    assert_non_null(job);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    json_decref(job);
    char path[128];
    snprintf(path, sizeof path, "/job/%s", key);
    uws_resp r;
    assert_int_equal(uws_fx_request(&fx, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
    set_offset("-600"); /* NTP steps the wall clock back */
    assert_int_equal(put_keyed(key, second), 200);
    uws_fx_kill(&fx);
    int left = gone_count(key);
    print_message("%d moved-aside director%s left at the kill\n", left, left == 1 ? "y" : "ies");
    assert_int_equal(left, 1); /* the crash this test is about: its files not yet removed */

    set_offset("+0"); /* the next start, the clock past the deletion's time again */
    assert_int_equal(uws_fx_restart(&fx, NULL), 0);
    job = uws_fx_wait(&fx, key, NULL, 30);
    assert_non_null(job); /* not taken for the deleted job: neither aborted nor forgotten */
    assert_string_equal(json_string_value(json_object_get(job, "runId")), "r2");
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    json_decref(job);
    for (double until = tu_now() + 20; gone_count(key) > 0 && tu_now() < until;) {
        usleep(50 * 1000);
    }
    assert_int_equal(gone_count(key), 0); /* the leftover removed: the start has settled it */
    assert_int_equal(uws_fx_request(&fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200); /* not forgotten */
    uws_resp_clear(&r);
    snprintf(path, sizeof path, "/job/result/%s/0", key);
    assert_int_equal(uws_fx_request(&fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_string_equal(r.body, "second\n"); /* its files stay too */
    uws_resp_clear(&r);
}

/* ocps-engine (and what it runs) under libfaketime, its offset in a new
 * file: 0, or 77 without libfaketime (the test skipped), 1 on failure. */
static int fake_engine_clock(void)
{
#ifndef OCPS_LIBFAKETIME
    printf("libfaketime was not found at configure time (Debian: libfaketime): skipped\n");
    return 77;
#else
    /* the monotonic clock steps too: with it left alone, libfaketime
     * 0.9.10's pthread_cond_timedwait on a CLOCK_MONOTONIC condition
     * returns at once, and ocps-engine's start-up watchdog refuses to
     * start; nothing here waits on it across the step */
    if (tu_faketime_start(OCPS_LIBFAKETIME, 1, offset_file, sizeof offset_file) != 0) {
        perror("the offset file");
        return 1;
    }
    return 0;
#endif
}

int main(void)
{
    int rc = fake_engine_clock();
    if (rc != 0) {
        return rc;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_job_stays_after_a_backward_step, setup, teardown),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(offset_file);
    return rc;
}
