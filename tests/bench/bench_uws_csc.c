/*
 * bench_uws_csc: CPU of an ocps-csc process (DDS, loopback) with executor
 * uws while it polls N jobs on a real ocps-engine (issue 14), next to the
 * same CSC idle in the same run. The server's only slot is held by a
 * sleeping job, so the N jobs stay queued there (nothing runs; the CSC
 * polls each every poll_interval). CPU is utime + stime from
 * /proc/<pid>/stat over a window, as a percentage of one core; the
 * server's CPU over the same window is printed too. Never fails on the
 * numbers.
 *
 *   bench_uws_csc [JOBS (1000)] [POLL_INTERVAL (1)] [SECONDS (10)]
 */
#define _XOPEN_SOURCE 700
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ocps/sal.h"
#include "ocps/sal_csc.h"
#include "ocps_test_iface.h"
#include "sal_fixture.h"
#include "test_util.h"
#include "uws_fixture.h"

static long cpu_ticks(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    char *text = tu_read_file(path, NULL);
    if (text == NULL) {
        return -1;
    }
    char *p = strrchr(text, ')');
    unsigned long utime = 0, stime = 0;
    int n =
        p != NULL ? sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) : 0;
    free(text);
    return n == 2 ? (long)(utime + stime) : -1;
}

static bool enabled(fx *f, void *arg)
{
    (void)arg;
    return sal_remote_ready(f->remote, "execute") && sal_remote_last(f->remote, "logevent_summaryState");
}

typedef struct counts {
    long inprogress;
    long final;
} counts;

static void on_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    (void)error;
    (void)result;
    (void)timeout;
    counts *c = arg;
    c->inprogress += ack == SAL_CMD_INPROGRESS;
    c->final += final;
}

/* Requests logged by the server so far (its log has one line a request). */
static long server_gets(const uws_fx *server)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/engine.log", server->root);
    char *text = tu_read_file(path, NULL);
    long n = 0;
    for (const char *p = text; p != NULL && (p = strstr(p, " GET /api/v1/job/")) != NULL; p++) {
        n++;
    }
    free(text);
    return n;
}

/* CPU of the CSC and the server over `seconds`, in % of a core. */
static void measure(fx *f, int server_pid, double seconds, double *csc, double *server)
{
    long c0 = cpu_ticks(f->csc_pid);
    long s0 = cpu_ticks(server_pid);
    double w0 = tu_now();
    fx_run_for(f, seconds);
    long c1 = cpu_ticks(f->csc_pid);
    long s1 = cpu_ticks(server_pid);
    double w = tu_now() - w0;
    double hz = (double)sysconf(_SC_CLK_TCK);
    *csc = (double)(c1 - c0) / hz / w * 100.0;
    *server = (double)(s1 - s0) / hz / w * 100.0;
}

int main(int argc, char **argv)
{
    int jobs = argc > 1 ? atoi(argv[1]) : 1000;
    double poll = argc > 2 ? atof(argv[2]) : 1.0;
    double seconds = argc > 3 ? atof(argv[3]) : 10.0;
    if (jobs < 1 || jobs > 1024 || poll <= 0 || seconds < 1) {
        fprintf(stderr, "usage: bench_uws_csc [JOBS (1-1024)] [POLL_INTERVAL] [SECONDS]\n");
        return 2;
    }
    uws_fx server;
    const char *const one[] = {"--max-concurrent", "1", NULL};
    char holder[33];
    if (uws_fx_start(&server, NULL, one) != 0) {
        fprintf(stderr, "bench_uws_csc: cannot start ocps-engine\n");
        return 1;
    }
    char body[1400];
    snprintf(body, sizeof body, "{\"command\": \"echo $$ > %s/holder.pid; exec sleep 3600\"}", server.root);
    if (uws_fx_submit(&server, body, holder) != 0) {
        return 1;
    }
    char *root = tu_make_ocps_config();
    char site[4096];
    snprintf(site, sizeof site,
             "work_root: %s/jobs\npipetask: /bin/true\nmax_concurrent_jobs: %d\nexecutor: uws\n"
             "instances:\n  - sal_index: 1\n    instance: LATISS\n    url: %s/api/v1\n    poll_interval: %g\n"
             "    butler: LATISS\n    input_collection: LATISS/raw/all\n    output_glob: '*.fits'\n",
             root, jobs, server.base, poll);
    tu_write_ocps_site(root, site);
    fx_env(CYCLONE_CONFIG);
    setenv("DM_CONFIG_OCPS_DIR", root, 1);
    fx f;
    if (fx_open(&f, ocps_test_component(), 1, NULL) != 0) {
        return 1;
    }
    char *csc[] = {OCPS_CSC, "--duplicate-check", "0", "--state", "enabled", "1", NULL};
    fx_start_csc(&f, csc);
    char err[256];
    sal_remote_prepare(f.remote, "execute", err, sizeof err);
    if (!fx_run_until(&f, enabled, NULL, 30)) {
        fprintf(stderr, "bench_uws_csc: CSC not reachable\n");
        return 1;
    }
    fx_run_for(&f, 2.0);
    double idle_csc, idle_server;
    measure(&f, server.pid, seconds, &idle_csc, &idle_server);

    counts c = {0, 0};
    int t = sal_remote_command_topic(f.remote, "execute");
    const sal_topic_info *ti = &f.comp->topics[t];
    void *s = sal_remote_new_command(f.remote, "execute");
    sal_sample_set_string(ti, s, "pipeline", "cpBias.yaml", err, sizeof err);
    sal_sample_set_string(ti, s, "data_query", "instrument='LATISS'", err, sizeof err);
    double t0 = tu_now();
    for (int i = 0; i < jobs; i++) {
        sal_remote_command(f.remote, "execute", s, 3600, on_ack, &c, NULL, err, sizeof err);
        fx_run_for(&f, 0.002);
    }
    sal_sample_free(ti, s);
    while (uws_fx_count(&server) < jobs + 1 && tu_now() - t0 < 300) {
        fx_run_for(&f, 1.0);
    }
    double submit_s = tu_now() - t0;
    int listed = uws_fx_count(&server) - 1;
    fx_run_for(&f, 2 * poll);
    double busy_csc, busy_server;
    long g0 = server_gets(&server);
    measure(&f, server.pid, seconds, &busy_csc, &busy_server);
    long gets = server_gets(&server) - g0;
    printf("bench_uws_csc: ocps-csc (DDS, loopback, executor uws) and ocps-engine, %.0f s windows\n",
           seconds);
    printf("  %d executes answered INPROGRESS (%ld acks), %d jobs on the server after %.1f s\n", jobs,
           c.inprogress, listed, submit_s);
    printf("  idle:                          CSC %6.2f %% of a core, ocps-engine %6.2f %%\n", idle_csc,
           idle_server);
    printf("  polling %4d jobs every %.1f s: CSC %6.2f %% of a core, ocps-engine %6.2f %%\n", listed, poll,
           busy_csc, busy_server);
    printf("  (%.0f GET /job/{id} per second expected, %.0f logged by the server)\n", listed / poll,
           (double)gets / seconds);
    fflush(stdout);

    fx_close(&f);
    uws_fx_kill(&server);
    char pidfile[1200];
    snprintf(pidfile, sizeof pidfile, "%s/holder.pid", server.root);
    char *p = tu_read_file(pidfile, NULL);
    if (p != NULL && atoi(p) > 1) {
        kill(-atoi(p), SIGKILL);
    }
    free(p);
    uws_fx_stop(&server);
    tu_remove_tree(root);
    free(root);
    return 0;
}
