/* engine_fixture.c - see engine_fixture.h. */
#include "engine_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "test_util.h"

static void efx_on_job(void *arg, const engine_job *job)
{
    efx *fx = arg;
    assert_true(fx->nevents < EFX_MAX_EVENTS);
    efx_event *ev = &fx->events[fx->nevents++];
    snprintf(ev->id, sizeof ev->id, "%s", job->id);
    ev->phase = job->phase;
    ev->reason = job->reason;
    ev->exit_code = job->exit_code;
    ev->started = job->started;
    ev->ended = job->ended;
    snprintf(ev->message, sizeof ev->message, "%s", job->message);
    ev->nresults = json_array_size(job->results);
    ev->results_total = job->results_total;
    ev->results_truncated = job->results_truncated;
    const char *first = json_string_value(json_array_get(job->results, 0));
    snprintf(ev->first_result, sizeof ev->first_result, "%s", first != NULL ? first : "");
    ev->queue_position = job->queue_position;
    snprintf(ev->slurm_job_id, sizeof ev->slurm_job_id, "%s", job->slurm_job_id);
    snprintf(ev->slurm_nodes, sizeof ev->slurm_nodes, "%s", job->slurm_nodes);
    ev->meta = job->meta != NULL ? json_dumps(job->meta, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (fx->publish_final && engine_phase_final(job->phase)) {
        assert_int_equal(engine_job_mark_published(fx->e, job->id), 0);
    }
    if (fx->on_job != NULL) {
        fx->on_job(fx, job);
    }
}

static void efx_on_log(void *arg, int level, const char *message)
{
    efx *fx = arg;
    size_t n = strlen(fx->log);
    snprintf(fx->log + n, sizeof fx->log - n, "%d %s\n", level, message);
    fx->warnings += level >= ENGINE_LOG_WARNING;
    if (fx->log_to_stderr) {
        fprintf(stderr, "engine log %d: %s\n", level, message);
    }
}

void efx_init(efx *fx, const char *work_sub, const char *runner)
{
    fx->dir = tu_make_temp_dir();
    assert_non_null(fx->dir);
    snprintf(fx->work_root, sizeof fx->work_root, "%s/%s", fx->dir, work_sub);
    snprintf(fx->store, sizeof fx->store, "%s/jobs.sqlite", fx->dir);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    fx->opts.work_root = fx->work_root;
    fx->opts.store_path = fx->store;
    fx->opts.runner = runner;
    fx->opts.max_concurrent = 4;
    fx->opts.abort_grace = 1.0;
    fx->opts.max_results = 100;
    fx->opts.poll_interval = 0.05;
    fx->opts.log = efx_on_log;
    fx->opts.log_arg = fx;
}

void efx_open(efx *fx)
{
    char err[512];
    if (engine_open(&fx->e, &fx->loop, &fx->opts, efx_on_job, fx, err, sizeof err) != 0) {
        fail_msg("engine_open: %s", err);
    }
}

void efx_close(efx *fx)
{
    if (fx->e != NULL) {
        engine_close(fx->e, NULL, NULL);
        fx->e = NULL;
        uv_run(&fx->loop, UV_RUN_DEFAULT);
    }
}

void efx_free(efx *fx)
{
    if (fx->dir == NULL) {
        return;
    }
    efx_close(fx);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    efx_clear_events(fx);
    tu_remove_tree(fx->dir);
    free(fx->dir);
    fx->dir = NULL;
}

void efx_clear_events(efx *fx)
{
    for (int i = 0; i < fx->nevents; i++) {
        free(fx->events[i].meta);
    }
    fx->nevents = 0;
}

void efx_spin(efx *fx)
{
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    if (fx->e != NULL) {
        size_t n = engine_count(fx->e, ENGINE_EXECUTING);
        fx->max_executing = n > fx->max_executing ? n : fx->max_executing;
    }
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

void efx_run_for(efx *fx, double seconds)
{
    double end = tu_now() + seconds;
    while (tu_now() < end) {
        efx_spin(fx);
    }
}

int efx_find(const efx *fx, const char *id, engine_phase phase)
{
    for (int i = 0; i < fx->nevents; i++) {
        if (strcmp(fx->events[i].id, id) == 0 && fx->events[i].phase == phase) {
            return i;
        }
    }
    return -1;
}

int efx_final(const efx *fx, const char *id)
{
    for (int i = 0; i < fx->nevents; i++) {
        if (strcmp(fx->events[i].id, id) == 0 && engine_phase_final(fx->events[i].phase)) {
            return i;
        }
    }
    return -1;
}

int efx_count_final(const efx *fx, const char *id)
{
    int n = 0;
    for (int i = 0; i < fx->nevents; i++) {
        n += strcmp(fx->events[i].id, id) == 0 && engine_phase_final(fx->events[i].phase);
    }
    return n;
}

const efx_event *efx_wait_final(efx *fx, const char *id, double timeout)
{
    double end = tu_now() + timeout;
    int i;
    while ((i = efx_final(fx, id)) < 0) {
        if (tu_now() > end) {
            fail_msg("job %s did not end within %.1f s; engine log:\n%s", id, timeout, fx->log);
        }
        efx_spin(fx);
    }
    return &fx->events[i];
}

const efx_event *efx_wait_phase(efx *fx, const char *id, engine_phase phase, double timeout)
{
    double end = tu_now() + timeout;
    int i;
    while ((i = efx_find(fx, id, phase)) < 0) {
        if (tu_now() > end) {
            fail_msg("job %s never reached %s; engine log:\n%s", id, engine_phase_name(phase), fx->log);
        }
        efx_spin(fx);
    }
    return &fx->events[i];
}

void efx_submit(efx *fx, char id[ENGINE_JOB_ID_LEN + 1], engine_job_spec spec)
{
    char err[512];
    engine_new_job_id(fx->e, id);
    int rc = engine_job_submit(fx->e, id, &spec, err, sizeof err);
    if (rc != 0) {
        fail_msg("engine_job_submit: %d %s", rc, err);
    }
}

void efx_submit_sh(efx *fx, char id[ENGINE_JOB_ID_LEN + 1], const char *script)
{
    efx_submit(fx, id, (engine_job_spec){.argv = (const char *[]){"sh", "-c", script, NULL}});
}

static void efx_meter_tick(uv_timer_t *t)
{
    efx_meter *m = t->data;
    uint64_t now = uv_hrtime();
    double gap = (double)(now - m->last_ns) / 1e6;
    m->max_gap_ms = gap > m->max_gap_ms ? gap : m->max_gap_ms;
    m->last_ns = now;
}

void efx_meter_start(efx *fx, efx_meter *m)
{
    *m = (efx_meter){.max_gap_ms = 0};
    assert_int_equal(uv_timer_init(&fx->loop, &m->timer), 0);
    m->timer.data = m;
    m->started = true;
    uv_update_time(&fx->loop); /* it counts from now, not from the loop's last run */
    m->last_ns = uv_hrtime();
    assert_int_equal(uv_timer_start(&m->timer, efx_meter_tick, 100, 100), 0);
}

double efx_meter_stop(efx_meter *m)
{
    efx_meter_tick(&m->timer); /* the gap up to now counts too */
    uv_timer_stop(&m->timer);
    return m->max_gap_ms;
}

void efx_meter_close(efx_meter *m)
{
    if (m->started) {
        uv_close((uv_handle_t *)&m->timer, NULL);
        m->started = false;
    }
}
