/*
 * uws_metrics.c - ocps-engine's Prometheus metrics (see uws_metrics.h).
 */
#define _XOPEN_SOURCE 700
#include "ocps/uws_metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ocps/prom_text.h"

#define UWS_PHASES (ENGINE_UNKNOWN + 1)
#define UWS_REQUEST_SERIES 256

/* Upper bounds (seconds) of the job duration histogram's buckets (+Inf added). */
static const double uws_duration_buckets[] = {1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200};
#define UWS_BUCKETS (sizeof uws_duration_buckets / sizeof uws_duration_buckets[0])

static const char *const uws_methods[] = {"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD"};

typedef struct uws_request_series {
    const char *route;  /* static */
    const char *method; /* static */
    unsigned status;
    unsigned long long count;
} uws_request_series;

struct uws_metrics {
    double start_time;
    unsigned long long ended_count[UWS_PHASES]; /* final phases: jobs there now */
    unsigned long long submitted_total;
    unsigned long long ended_total[UWS_PHASES];
    unsigned long long buckets[UWS_BUCKETS];
    unsigned long long duration_count;
    double duration_sum;
    uws_request_series requests[UWS_REQUEST_SERIES];
    size_t nrequests;
    unsigned long long requests_dropped;
    bool store_ok;
};

uws_metrics *uws_metrics_new(void)
{
    uws_metrics *m = calloc(1, sizeof *m);
    if (m != NULL) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        m->start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
        m->store_ok = true;
    }
    return m;
}

void uws_metrics_free(uws_metrics *m)
{
    free(m);
}

void uws_metrics_job_seed(uws_metrics *m, const engine_job *job)
{
    if (engine_phase_final(job->phase) && job->result_published && (int)job->phase < UWS_PHASES) {
        m->ended_count[job->phase]++;
    }
}

void uws_metrics_job_submitted(uws_metrics *m)
{
    m->submitted_total++;
}

void uws_metrics_job_ended(uws_metrics *m, const engine_job *job)
{
    if (!engine_phase_final(job->phase) || (int)job->phase >= UWS_PHASES) {
        return;
    }
    m->ended_count[job->phase]++;
    m->ended_total[job->phase]++;
    double d = job->started > 0 && job->ended >= job->started ? job->ended - job->started : 0;
    for (size_t i = 0; i < UWS_BUCKETS; i++) {
        if (d <= uws_duration_buckets[i]) {
            m->buckets[i]++;
        }
    }
    m->duration_count++;
    m->duration_sum += d;
}

void uws_metrics_job_forgotten(uws_metrics *m, engine_phase phase)
{
    if (engine_phase_final(phase) && (int)phase < UWS_PHASES && m->ended_count[phase] > 0) {
        m->ended_count[phase]--;
    }
}

void uws_metrics_request(uws_metrics *m, const char *route, const char *method, unsigned status)
{
    const char *meth = "other";
    for (size_t i = 0; i < sizeof uws_methods / sizeof uws_methods[0]; i++) {
        if (strcmp(method, uws_methods[i]) == 0) {
            meth = uws_methods[i];
        }
    }
    for (size_t i = 0; i < m->nrequests; i++) {
        uws_request_series *r = &m->requests[i];
        if (r->status == status && r->method == meth && strcmp(r->route, route) == 0) {
            r->count++;
            return;
        }
    }
    if (m->nrequests == UWS_REQUEST_SERIES) {
        m->requests_dropped++;
        return;
    }
    m->requests[m->nrequests++] = (uws_request_series){route, meth, status, 1};
}

void uws_metrics_store(uws_metrics *m, bool ok)
{
    m->store_ok = ok;
}

char *uws_metrics_render(const uws_metrics *m, const engine *e, size_t *len)
{
    prom_text t;
    if (prom_text_init(&t, 4096) != 0) {
        return NULL;
    }
    prom_text_family(&t, "ocps_engine_up", "gauge", "1 while the engine serves its API and runs jobs.");
    prom_text_printf(&t, "ocps_engine_up 1\n");
    prom_text_family(&t, "ocps_engine_store_ok", "gauge",
                     "1 if the latest access to the job store succeeded.");
    prom_text_printf(&t, "ocps_engine_store_ok %d\n", m->store_ok ? 1 : 0);
    prom_text_family(&t, "process_start_time_seconds", "gauge",
                     "Start time of the process since the epoch, in seconds.");
    prom_text_printf(&t, "process_start_time_seconds %.3f\n", m->start_time);
    prom_text_family(&t, "ocps_engine_jobs", "gauge", "Jobs by UWS phase (ended ones: kept in the history).");
    for (int p = 0; p < UWS_PHASES; p++) {
        unsigned long long n = engine_phase_final((engine_phase)p)
                                   ? m->ended_count[p]
                                   : (unsigned long long)engine_count(e, (engine_phase)p);
        prom_text_printf(&t, "ocps_engine_jobs{phase=\"%s\"} %llu\n", engine_phase_name((engine_phase)p), n);
    }
    prom_text_family(&t, "ocps_engine_queue_length", "gauge", "Jobs waiting for a free slot (queued).");
    prom_text_printf(&t, "ocps_engine_queue_length %zu\n", engine_count(e, ENGINE_QUEUED));
    prom_text_family(&t, "ocps_engine_jobs_submitted_total", "counter", "Jobs submitted since the start.");
    prom_text_printf(&t, "ocps_engine_jobs_submitted_total %llu\n", m->submitted_total);
    engine_waiting_info w = engine_get_waiting(e);
    prom_text_family(
        &t, "ocps_engine_waiting_jobs", "gauge",
        "Jobs waiting to run (pending, and queued not handed over), as --max-waiting counts them.");
    prom_text_printf(&t, "ocps_engine_waiting_jobs %zu\n", w.waiting);
    prom_text_family(&t, "ocps_engine_max_waiting_jobs", "gauge", "--max-waiting (0: no limit).");
    prom_text_printf(&t, "ocps_engine_max_waiting_jobs %zu\n", w.max_waiting);
    prom_text_family(&t, "ocps_engine_jobs_refused_total", "counter",
                     "PUT /job refused since the start because --max-waiting jobs waited (503).");
    prom_text_printf(&t, "ocps_engine_jobs_refused_total %llu\n", w.refused);
    prom_text_family(&t, "ocps_engine_jobs_ended_total", "counter",
                     "Jobs that ended since the start, by final phase.");
    for (int p = 0; p < UWS_PHASES; p++) {
        if (engine_phase_final((engine_phase)p)) {
            prom_text_printf(&t, "ocps_engine_jobs_ended_total{phase=\"%s\"} %llu\n",
                             engine_phase_name((engine_phase)p), m->ended_total[p]);
        }
    }
    prom_text_family(&t, "ocps_engine_job_duration_seconds", "histogram",
                     "Run time of the jobs that ended since the start (0 for a job that never ran).");
    for (size_t i = 0; i < UWS_BUCKETS; i++) {
        prom_text_printf(&t, "ocps_engine_job_duration_seconds_bucket{le=\"%g\"} %llu\n",
                         uws_duration_buckets[i], m->buckets[i]);
    }
    prom_text_printf(&t, "ocps_engine_job_duration_seconds_bucket{le=\"+Inf\"} %llu\n", m->duration_count);
    prom_text_printf(&t, "ocps_engine_job_duration_seconds_sum %.6f\n", m->duration_sum);
    prom_text_printf(&t, "ocps_engine_job_duration_seconds_count %llu\n", m->duration_count);
    prom_text_family(&t, "ocps_engine_http_requests_total", "counter",
                     "HTTP requests answered, by route, method and status.");
    for (size_t i = 0; i < m->nrequests; i++) {
        const uws_request_series *r = &m->requests[i];
        prom_text_printf(&t, "ocps_engine_http_requests_total{route=\"%s\",method=\"%s\",code=\"%u\"} %llu\n",
                         r->route, r->method, r->status, r->count);
    }
    prom_text_family(&t, "ocps_engine_http_requests_unrecorded_total", "counter",
                     "HTTP requests not counted by route (too many distinct series).");
    prom_text_printf(&t, "ocps_engine_http_requests_unrecorded_total %llu\n", m->requests_dropped);
    return prom_text_finish(&t, len);
}
