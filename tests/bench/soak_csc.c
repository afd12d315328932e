/*
 * soak_csc: ocps-csc under a steady load for a long time. A job every
 * second, each running 20 s (so about 20 run at once), and a stream of
 * setLogLevel commands at a fixed rate, for the whole duration; then every
 * job is checked: one run (fake-pipetask's runs.log), one job_result, one
 * final CMD_COMPLETE for its execute. Prints the largest gap between two
 * heartbeats as the CSC sent them and as the commander read them (goal
 * <= 1.5 s), the CSC's RSS after the
 * warm-up and at the end, and the counts. Never fails on timing; exits 1
 * when a job ran or was reported other than once.
 *
 *   soak_csc [SECONDS [COMMANDS_PER_SECOND [JOBS]]]   (defaults 1800, 1000, 1;
 *                                                       JOBS 0: no jobs)
 *
 * OCPS_TEST_TRANSPORT=kafka soaks the Kafka transport instead of DDS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ocps/sal_csc.h"
#include "ocps_test_iface.h"
#include "ocps_run.h"
#include "sal_fixture.h"
#include "test_util.h"

#define JOB_SECONDS 20
#define MAX_OUTSTANDING 2000 /* commands sent and not yet answered */
#define RSS_PERIOD 60.0

typedef struct job {
    char job_id[40];
    int final_acks;
    int ack;
    bool completed; /* its final ack says its job completed */
} job;

typedef struct soak {
    fx f;
    char *root;
    char work[600];
    job *jobs;
    int njobs;
    int maxjobs;
    long sent;
    long completed;
    long failed;
    long outstanding;
    int rate;
    double tick_started;
    long tick_sent;
    double next_job;
    bool sending;
    bool jobs_on;
    double next_rss;
    long rss[128];  /* the CSC's RSS (kB) every RSS_PERIOD seconds */
    long anon[128]; /* its anonymous part (heap, stacks): RssAnon */
    int nrss;
} soak;

static void on_job_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    (void)error;
    (void)timeout;
    job *j = arg;
    if (j->job_id[0] == '\0' && result != NULL) {
        json_t *r = json_loads(result, 0, NULL);
        const char *id = json_string_value(json_object_get(r, "job_id"));
        snprintf(j->job_id, sizeof j->job_id, "%s", id ? id : "");
        json_decref(r);
    }
    if (final) {
        j->final_acks++;
        j->ack = ack;
        /* CMD_COMPLETE also ends a job that ended in error (failed_job_ack) */
        j->completed = ack == SAL_CMD_COMPLETE && result != NULL && strstr(result, "\"phase\":\"completed\"");
    }
}

static void on_cmd_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    (void)error;
    (void)result;
    (void)timeout;
    soak *s = arg;
    if (final) {
        s->outstanding--;
        if (ack == SAL_CMD_COMPLETE) {
            s->completed++;
        } else {
            s->failed++;
        }
    }
}

static void send_execute(soak *s)
{
    if (s->njobs == s->maxjobs) {
        return;
    }
    job *j = &s->jobs[s->njobs];
    char err[256];
    char query[64];
    snprintf(query, sizeof query, "SLEEP=%d TAG=soak%d", JOB_SECONDS, s->njobs);
    int t = sal_remote_command_topic(s->f.remote, "execute");
    const sal_topic_info *ti = &s->f.comp->topics[t];
    void *sample = sal_remote_new_command(s->f.remote, "execute");
    sal_sample_set_string(ti, sample, "pipeline", "soak.yaml", err, sizeof err);
    sal_sample_set_string(ti, sample, "data_query", query, err, sizeof err);
    if (sal_remote_command(s->f.remote, "execute", sample, 600, on_job_ack, j, NULL, err, sizeof err) == 0) {
        s->njobs++;
    } else {
        fprintf(stderr, "soak: execute not sent: %s\n", err);
    }
    sal_sample_free(ti, sample);
}

static void send_command(soak *s)
{
    char err[256];
    int t = sal_remote_command_topic(s->f.remote, "setLogLevel");
    const sal_topic_info *ti = &s->f.comp->topics[t];
    void *sample = sal_remote_new_command(s->f.remote, "setLogLevel");
    sal_sample_set_i32(ti, sample, "level", 20);
    if (sal_remote_command(s->f.remote, "setLogLevel", sample, 60, on_cmd_ack, s, NULL, err, sizeof err) ==
        0) {
        s->sent++;
        s->outstanding++;
    }
    sal_sample_free(ti, sample);
}

/* A "Name:  N kB" line of /proc/pid/status (VmRSS, RssAnon), or -1. */
static long status_kb(int pid, const char *name)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    char *text = tu_read_file(path, NULL);
    const char *line = text != NULL ? strstr(text, name) : NULL;
    long kb = line != NULL ? atol(line + strlen(name)) : -1;
    free(text);
    return kb;
}

static long rss_kb(int pid)
{
    return status_kb(pid, "VmRSS:");
}

/* Every 10 ms: the commands due by now at the rate (bounded by what is
 * still unanswered), and a job every second. */
static void on_tick(uv_timer_t *t)
{
    soak *s = t->data;
    if (!s->sending) {
        return;
    }
    double now = tu_now();
    long due = (long)((now - s->tick_started) * s->rate) - s->tick_sent;
    for (long i = 0; i < due && s->outstanding < MAX_OUTSTANDING; i++) {
        send_command(s);
        s->tick_sent++;
    }
    if (s->jobs_on && now >= s->next_job) {
        send_execute(s);
        s->next_job += 1.0;
    }
    if (now >= s->next_rss && s->nrss < 128) {
        s->anon[s->nrss] = status_kb(s->f.csc_pid, "RssAnon:");
        s->rss[s->nrss++] = rss_kb(s->f.csc_pid);
        s->next_rss += RSS_PERIOD;
    }
}

static int count_results(const fx *f, const char *id)
{
    int t = sal_component_find_topic(f->comp, "logevent_job_result");
    int n = 0;
    for (size_t i = 0; i < f->nrecords; i++) {
        const fx_record *r = &f->records[i];
        const char *v =
            r->topic == t ? sal_sample_get_string(&f->comp->topics[t], r->sample, "job_id") : NULL;
        n += v != NULL && strcmp(v, id) == 0;
    }
    return n;
}

static int count_runs(const soak *s, const char *id)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/runs.log", s->work, id);
    char *text = tu_read_file(path, NULL);
    int n = 0;
    for (const char *p = text; p != NULL && *p != '\0'; p++) {
        n += *p == '\n';
    }
    free(text);
    return n;
}

static bool all_answered(fx *f, void *arg)
{
    (void)f;
    soak *s = arg;
    for (int i = 0; i < s->njobs; i++) {
        if (s->jobs[i].final_acks == 0) {
            return false;
        }
    }
    return s->outstanding == 0;
}

static bool enabled(fx *f, void *arg)
{
    (void)arg;
    return or_enabled_ready(f, arg) && sal_remote_ready(f->remote, "setLogLevel");
}

static int open_soak(soak *s)
{
    s->root = tu_make_ocps_config();
    if (s->root == NULL) {
        return -1;
    }
    snprintf(s->work, sizeof s->work, "%s/jobs", s->root);
    char site[2048];
    snprintf(site, sizeof site, "work_root: %s\npipetask: %s\nmax_concurrent_jobs: 40\n", s->work,
             FAKE_PIPETASK);
    if (tu_write_ocps_site(s->root, site) != 0) {
        return -1;
    }
    fx_env(CYCLONE_CONFIG);
    setenv("DM_CONFIG_OCPS_DIR", s->root, 1);
    if (fx_open(&s->f, ocps_test_component(), 1, NULL) != 0) {
        return -1;
    }
    char *csc[] = {OCPS_CSC, "--state", "enabled", "1", NULL};
    char err[256];
    sal_remote_prepare(s->f.remote, "execute", err, sizeof err);
    sal_remote_prepare(s->f.remote, "setLogLevel", err, sizeof err);
    if (fx_start_csc(&s->f, csc) != 0 || !fx_run_until(&s->f, enabled, NULL, 30)) {
        fprintf(stderr, "soak: the CSC did not reach ENABLED\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1800;
    soak s = {.rate = argc > 2 ? atoi(argv[2]) : 1000, .jobs_on = argc > 3 ? atoi(argv[3]) != 0 : true};
    s.maxjobs = (int)seconds + 2;
    s.jobs = calloc((size_t)s.maxjobs, sizeof *s.jobs);
    if (open_soak(&s) != 0) {
        return 1;
    }
    uv_timer_t tick;
    uv_timer_init(&s.f.loop, &tick);
    tick.data = &s;
    double t0 = tu_now();
    s.tick_started = s.next_job = s.next_rss = t0;
    s.sending = true;
    uv_timer_start(&tick, on_tick, 10, 10);
    fx_run_for(&s.f, JOB_SECONDS + 10 < seconds ? JOB_SECONDS + 10 : seconds / 2);
    long rss_start = rss_kb(s.f.csc_pid);
    double warm = tu_now();
    fx_run_for(&s.f, t0 + seconds - tu_now());
    long rss_end = rss_kb(s.f.csc_pid);
    double sent_gap;
    double arrival_gap;
    fx_heartbeat_gaps(&s.f, 0, &sent_gap, &arrival_gap);
    s.sending = false;
    uv_timer_stop(&tick);
    uv_close((uv_handle_t *)&tick, NULL);
    fx_run_until(&s.f, all_answered, &s, JOB_SECONDS + 60);

    int once = 0;
    int bad = 0;
    for (int i = 0; i < s.njobs; i++) {
        job *j = &s.jobs[i];
        int runs = j->job_id[0] ? count_runs(&s, j->job_id) : 0;
        int results = j->job_id[0] ? count_results(&s.f, j->job_id) : 0;
        bool ok = runs == 1 && results == 1 && j->final_acks == 1 && j->completed;
        once += ok;
        if (!ok && bad++ < 10) {
            printf("  job %d (%s): %d runs, %d job_result, %d final acks (last %d)\n", i, j->job_id, runs,
                   results, j->final_acks, j->ack);
        }
    }
    printf("soak over %s: %.0f s, %d jobs of %d s (about %d running), setLogLevel at %d/s\n", fx_transport(),
           seconds, s.njobs, JOB_SECONDS, JOB_SECONDS, s.rate);
    printf("  commands: %ld sent, %ld complete, %ld failed, %ld unanswered (%.0f/s achieved)\n", s.sent,
           s.completed, s.failed, s.outstanding, s.sent / seconds);
    printf("  largest heartbeat gap: %.3f s as the CSC sent them, %.3f s as read here (goal <= 1.5 s)\n",
           sent_gap, arrival_gap);
    printf("  CSC RSS: %.1f MB after %.0f s, %.1f MB at the end (%+.1f MB)\n", rss_start / 1024.0, warm - t0,
           rss_end / 1024.0, (rss_end - rss_start) / 1024.0);
    printf("  CSC RSS every %.0f s (MB):", RSS_PERIOD);
    for (int i = 0; i < s.nrss; i++) {
        printf(" %.1f", s.rss[i] / 1024.0);
    }
    printf("\n");
    /* the rest is file-backed: library pages as code paths are first run */
    printf("  of which anonymous (heap, stacks; RssAnon) every %.0f s (MB):", RSS_PERIOD);
    for (int i = 0; i < s.nrss; i++) {
        printf(" %.1f", s.anon[i] / 1024.0);
    }
    printf("\n");
    printf("  jobs exactly once (one run, one job_result, one final CMD_COMPLETE): %d of %d\n", once,
           s.njobs);
    fx_close(&s.f);
    tu_remove_tree(s.root);
    free(s.root);
    free(s.jobs);
    return once == s.njobs ? 0 : 1;
}
