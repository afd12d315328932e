/*
 * test_engine_oom: the job engine when memory runs out while a job is
 * submitted. The program is linked with -Wl,--wrap=calloc, so the
 * engine's (static library's) calls to calloc come here first: an armed
 * test refuses the large arrays of pointers (the index of live jobs
 * growing) until it disarms.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "ocps/engine.h"
#include "engine_fixture.h"
#include "test_util.h"

void *__real_calloc(size_t nmemb, size_t size);
void *__wrap_calloc(size_t nmemb, size_t size);

/* Armed: calloc of more than 64 pointers fails (one test at a time). */
static bool refuse_big_pointer_arrays;

void *__wrap_calloc(size_t nmemb, size_t size)
{
    if (refuse_big_pointer_arrays && size == sizeof(void *) && nmemb > 64) {
        return NULL;
    }
    return __real_calloc(nmemb, size);
}

static int setup(void **state)
{
    efx *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    efx_init(fx, "work/jobs", OCPS_JOB_RUNNER);
    fx->opts.start_later = true; /* the jobs stay QUEUED: no runner */
    efx_open(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    efx *fx = *state;
    refuse_big_pointer_arrays = false;
    efx_free(fx);
    free(fx);
    return 0;
}

/* A job refused for want of memory leaves nothing behind: it is not
 * found after a restart (it would run although its client was told it
 * failed), and its id can be submitted again. */
static void test_refused_job_is_not_stored(void **state)
{
    efx *fx = *state;
    const char *argv[] = {"true", NULL};
    engine_job_spec spec = {.argv = argv};
    char id[ENGINE_JOB_ID_LEN + 1];
    char err[512];
    int rc = 0;
    refuse_big_pointer_arrays = true;
    for (int i = 0; i < 200 && rc == 0; i++) {
        engine_new_job_id(fx->e, id);
        rc = engine_job_submit(fx->e, id, &spec, err, sizeof err);
    }
    refuse_big_pointer_arrays = false;
    assert_int_equal(rc, -ENOMEM); /* the index had to grow */
    assert_null(engine_job_get(fx->e, id));

    efx_close(fx);
    efx_clear_events(fx);
    efx_open(fx);
    efx_run_for(fx, 0.1);
    assert_null(engine_job_get(fx->e, id));
    assert_int_equal(efx_find(fx, id, ENGINE_QUEUED), -1);

    rc = engine_job_submit(fx->e, id, &spec, err, sizeof err);
    if (rc != 0) {
        fail_msg("submitted again: %d %s", rc, err);
    }
    assert_non_null(engine_job_get(fx->e, id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refused_job_is_not_stored, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
