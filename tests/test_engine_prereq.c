/*
 * test_engine_prereq: prerequisites against their rules, at random.
 *
 * Each seed builds a random graph of jobs (0 to 3 prerequisites each, some
 * repeated, must-succeed or not; one in five exits 3; one in eight cannot
 * be started because a file stands where its directory goes), submitted
 * alone or in batches, with aborts and engine restarts at random, 1 to 3
 * slots, ended jobs published (so forgotten to the store) or not. Then:
 * every job ends; none starts before each of its prerequisites ended; a
 * must-succeed job completes only if each prerequisite completed; a job
 * ends for a prerequisite only if it had to succeed and one did not.
 *
 *   OCPS_TEST_SEEDS=N (default 8), OCPS_TEST_SEED_BASE=B (default 1)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine_fixture.h"
#include "ocps/engine.h"
#include "test_util.h"

#define NJOBS 24
#define MAX_PREREQS 3

typedef struct model_job {
    char id[ENGINE_JOB_ID_LEN + 1];
    int prereqs[MAX_PREREQS];
    int nprereqs;
    bool must;
    bool fails;       /* exits 3 */
    bool unstartable; /* its directory cannot be made */
    bool ended;
    engine_phase phase;
    engine_reason reason;
    double started;
    double ended_at;
} model_job;

/* The fixture first: its job hook finds the model from it. */
typedef struct model {
    efx fx;
    model_job jobs[NJOBS];
    int n; /* submitted so far */
    unsigned seed;
} model;

static int model_find(const model *m, const char *id)
{
    for (int i = 0; i < m->n; i++) {
        if (strcmp(m->jobs[i].id, id) == 0) {
            return i;
        }
    }
    return -1;
}

static void model_on_job(efx *fx, const engine_job *job)
{
    model *m = (model *)fx;
    fx->nevents = 0; /* the model keeps what it needs; the event list would fill */
    int i = model_find(m, job->id);
    if (i < 0) {
        return;
    }
    model_job *j = &m->jobs[i];
    if (job->started > 0) {
        j->started = job->started;
    }
    if (engine_phase_final(job->phase)) {
        j->ended = true;
        j->phase = job->phase;
        j->reason = job->reason;
        j->ended_at = job->ended;
    }
}

static int model_rand(model *m, int n)
{
    return (int)(rand_r(&m->seed) % (unsigned)n);
}

/* Draw job i (its prerequisites among the jobs before it) and submit it. */
static void model_submit(model *m, int i)
{
    model_job *j = &m->jobs[i];
    j->nprereqs = i == 0 ? 0 : model_rand(m, MAX_PREREQS + 1);
    for (int k = 0; k < j->nprereqs; k++) {
        j->prereqs[k] = model_rand(m, i);
    }
    j->must = model_rand(m, 2) == 0;
    j->fails = model_rand(m, 5) == 0;
    j->unstartable = model_rand(m, 8) == 0;
    const char *prereqs[MAX_PREREQS + 1];
    for (int k = 0; k < j->nprereqs; k++) {
        prereqs[k] = m->jobs[j->prereqs[k]].id;
    }
    prereqs[j->nprereqs] = NULL;
    char simulate[32];
    snprintf(simulate, sizeof simulate, "0.0%d:%d", model_rand(m, 6), j->fails ? 3 : 0);
    engine_job_spec spec = {.argv = (const char *[]){"true", NULL},
                            .prereqs = j->nprereqs > 0 ? prereqs : NULL,
                            .prereq_must_succeed = j->must,
                            .simulate = simulate,
                            .dirs = (const char *[]){"out", NULL}};
    engine_new_job_id(m->fx.e, j->id);
    if (j->unstartable) {
        char *path = tu_path_join(m->fx.work_root, j->id);
        assert_int_equal(tu_write_file(path, "", 0), 0);
        free(path);
    }
    m->n = i + 1;
    char err[512];
    if (engine_job_submit(m->fx.e, j->id, &spec, err, sizeof err) != 0) {
        fail_msg("seed %u: submit: %s", m->seed, err);
    }
}

/* Submit every job (some in batches), aborting and restarting at random. */
static void model_run(model *m)
{
    int restarts = 0;
    char err[512];
    for (int i = 0; i < NJOBS; i++) {
        if (model_rand(m, 4) == 0) {
            assert_int_equal(engine_batch_begin(m->fx.e, err, sizeof err), 0);
            int more = model_rand(m, 3);
            model_submit(m, i);
            for (int k = 0; k < more && i + 1 < NJOBS; k++) {
                model_submit(m, ++i);
            }
            assert_int_equal(engine_batch_end(m->fx.e, err, sizeof err), 0);
        } else {
            model_submit(m, i);
        }
        int r = model_rand(m, 10);
        if (r == 0) {
            engine_job_abort(m->fx.e, m->jobs[model_rand(m, m->n)].id, err, sizeof err);
        } else if (r == 1 && restarts < 3) {
            restarts++;
            efx_close(&m->fx);
            efx_open(&m->fx);
        }
        efx_run_for(&m->fx, model_rand(m, 4) * 0.02);
    }
}

static void model_wait_all_ended(model *m, double timeout)
{
    double end = tu_now() + timeout;
    for (;;) {
        int open = 0;
        for (int i = 0; i < NJOBS; i++) {
            open += !m->jobs[i].ended;
        }
        if (open == 0) {
            return;
        }
        if (tu_now() > end) {
            for (int i = 0; i < NJOBS; i++) {
                const engine_job *j = m->jobs[i].ended ? NULL : engine_job_get(m->fx.e, m->jobs[i].id);
                if (j != NULL) {
                    print_message("seed %u: job %d still %s\n", m->seed, i, engine_phase_name(j->phase));
                }
            }
            fail_msg("seed %u: %d jobs never ended", m->seed, open);
        }
        efx_spin(&m->fx);
    }
}

static void model_check(const model *m)
{
    for (int i = 0; i < NJOBS; i++) {
        const model_job *j = &m->jobs[i];
        bool all_completed = true;
        for (int k = 0; k < j->nprereqs; k++) {
            const model_job *p = &m->jobs[j->prereqs[k]];
            all_completed = all_completed && p->phase == ENGINE_COMPLETED;
            if (j->started > 0 && j->started < p->ended_at - 1e-6) {
                fail_msg("seed %u: job %d started before its prerequisite %d ended", m->seed, i,
                         j->prereqs[k]);
            }
        }
        if (j->must && j->phase == ENGINE_COMPLETED && !all_completed) {
            fail_msg("seed %u: job %d completed, a prerequisite did not", m->seed, i);
        }
        if (j->reason == ENGINE_REASON_PREREQUISITE && (!j->must || all_completed)) {
            fail_msg("seed %u: job %d ended for a prerequisite wrongly", m->seed, i);
        }
    }
}

/* Jobs ended completed, failed (their own exit or start), failed for a
 * prerequisite, aborted: added to counts[4]. */
static void model_count(const model *m, int counts[4])
{
    for (int i = 0; i < NJOBS; i++) {
        const model_job *j = &m->jobs[i];
        if (j->phase == ENGINE_COMPLETED) {
            counts[0]++;
        } else if (j->reason == ENGINE_REASON_PREREQUISITE) {
            counts[2]++;
        } else if (j->phase == ENGINE_ABORTED) {
            counts[3]++;
        } else {
            counts[1]++;
        }
    }
}

static void model_one_seed(unsigned seed, int counts[4])
{
    model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->seed = seed;
    efx_init(&m->fx, "work", OCPS_JOB_RUNNER);
    m->fx.opts.max_concurrent = 1 + model_rand(m, 3);
    m->fx.publish_final = model_rand(m, 2) == 0;
    m->fx.on_job = model_on_job;
    efx_open(&m->fx);
    model_run(m);
    model_wait_all_ended(m, 60);
    model_check(m);
    model_count(m, counts);
    efx_free(&m->fx);
    free(m);
}

static void test_random_graphs(void **state)
{
    (void)state;
    const char *n = getenv("OCPS_TEST_SEEDS");
    const char *base = getenv("OCPS_TEST_SEED_BASE");
    int seeds = n != NULL ? atoi(n) : 8;
    unsigned first = base != NULL ? (unsigned)strtoul(base, NULL, 10) : 1;
    int counts[4] = {0};
    for (int i = 0; i < seeds; i++) {
        model_one_seed(first + (unsigned)i, counts);
    }
    print_message("%d random graphs of %d jobs (seeds %u-%u): every job ended by the rules: %d completed, "
                  "%d failed, %d failed for a prerequisite, %d aborted\n",
                  seeds, NJOBS, first, first + (unsigned)seeds - 1, counts[0], counts[1], counts[2],
                  counts[3]);
    assert_true(counts[0] > 0 && counts[1] > 0 && counts[2] > 0); /* each rule was exercised */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_graphs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
