/*
 * bench_slurm: the OCPS CSC with executor: slurm on a private single-node
 * Slurm cluster (tests/support/slurm_cluster.sh, 8 slots), seen from a
 * commander, next to a raw sbatch loop on the same cluster in the same run:
 *
 * (1) submit -> running latency: from writing execute to the moment the
 *     job's process (fake-pipetask) starts, one job at a time; the raw
 *     reference is from calling sbatch to the start of the same program.
 * (2) jobs per second: N concurrent executes of a job that exits at once,
 *     until every final ack has arrived; the raw reference submits the same
 *     N jobs with a loop of sbatch and polls squeue (every 0.2 s) until all
 *     are COMPLETED. Rounds alternate; min/median/max of the ratio.
 * (3) the CSC's CPU use while it tracks 1,000 Slurm jobs: the node is
 *     drained, 1,000 executes are sent, and once all 1,000 are pending in
 *     Slurm (and 5 s more) the CSC's CPU time (/proc/<pid>/stat: its own,
 *     and its reaped children's, i.e. the squeue polls) and slurmctld's are
 *     read over a window.
 *
 *   bench_slurm [N [ROUNDS [TRACKED [WINDOW]]]]   (default 50 jobs, 3 rounds,
 *                                                  1000 tracked, 30 s)
 *
 * Never part of ctest; needs Slurm (deploy/install-deps.sh) and root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ocps/sal_csc.h"
#include "ocps_test_iface.h"
#include "bench_util.h"
#include "ocps_run.h"
#include "sal_fixture.h"
#include "slurm_cluster.h"
#include "test_util.h"

typedef or_run run;

static bool all_have_ids(fx *f, void *arg)
{
    (void)f;
    run *runs = arg;
    for (int i = 0; runs[i].ack != -1; i++) {
        if (runs[i].job_id[0] == '\0') {
            return false;
        }
    }
    return true;
}

static void send_execute(fx *f, run *r, const char *query)
{
    or_fields x = {.pipeline = "bench.yaml", .data_query = query};
    or_execute(f, r, &x, 3600);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Lines of `squeue -h <args...> -o %i`, or -1. */
static int squeue_count(const char *states)
{
    char *argv[] = {"squeue", "-h", "-t", (char *)states, "-o", "%i", NULL};
    char *out = NULL;
    if (tu_run(argv, &out) != 0) {
        free(out);
        return -1;
    }
    int n = 0;
    for (const char *p = out; p != NULL && *p != '\0'; p++) {
        n += *p == '\n';
    }
    free(out);
    return n;
}

/* A batch script that runs fake-pipetask in its own directory (the raw
 * reference runs the same program as the OCPS jobs). */
static void write_raw_script(const char *dir, char *script, size_t len)
{
    snprintf(script, len, "%s/raw.sh", dir);
    char text[2048];
    snprintf(text, sizeof text,
             "#!/bin/sh\nexport JOB_OUTPUT_DIR=\"%s/raw-$SLURM_JOB_ID\"\n"
             "mkdir -p \"$JOB_OUTPUT_DIR\"\nexec %s\n",
             dir, FAKE_PIPETASK);
    tu_write_file(script, text, strlen(text));
    chmod(script, 0755);
}

/* sbatch the script; its Slurm job id. */
static long raw_sbatch(const char *dir, const char *script, const char *query)
{
    char out_opt[700];
    snprintf(out_opt, sizeof out_opt, "--output=%s/raw-%%j.log", dir);
    setenv("DATA_QUERY", query, 1);
    char *argv[] = {"sbatch", "--parsable", "--cpus-per-task=1", out_opt, (char *)script, NULL};
    char *out = NULL;
    long id = tu_run(argv, &out) == 0 && out != NULL ? atol(out) : -1;
    free(out);
    unsetenv("DATA_QUERY");
    return id;
}

/* Submit n raw jobs and wait until Slurm has none left PENDING/RUNNING/
 * COMPLETING; seconds taken. */
static double raw_round(const char *dir, const char *script, int n)
{
    double t0 = tu_now();
    for (int i = 0; i < n; i++) {
        raw_sbatch(dir, script, "");
    }
    while (squeue_count("pending,running,completing,configuring") != 0) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return tu_now() - t0;
}

/* "started" of fake-pipetask's invocation.json in dir, or 0. */
static double started_in(const char *dir)
{
    char path[1300];
    if (snprintf(path, sizeof path, "%s/invocation.json", dir) >= (int)sizeof path) {
        return 0;
    }
    json_t *j = json_load_file(path, 0, NULL);
    double t = json_number_value(json_object_get(j, "started"));
    json_decref(j);
    return t;
}

/* CPU seconds of pid: its own (utime+stime) and its reaped children's. */
static void cpu_of(int pid, double *self, double *children)
{
    char path[64];
    char buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    size_t n = f != NULL ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    buf[n] = '\0';
    unsigned long long ut = 0, st = 0, cut = 0, cst = 0;
    char *p = strrchr(buf, ')');
    /* fields 14-17 after the command: utime stime cutime cstime */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &ut,
                            &st, &cut, &cst) != 4) {
        *self = *children = 0;
        return;
    }
    double hz = (double)sysconf(_SC_CLK_TCK);
    *self = (double)(ut + st) / hz;
    *children = (double)(cut + cst) / hz;
}

/* slurmctld's pid (its pid file in the cluster's directory), or 0. */
static int slurmctld_pid(const slurm_cluster *c)
{
    char path[700];
    snprintf(path, sizeof path, "%s/slurmctld.pid", c->dir);
    char *text = tu_read_file(path, NULL);
    int pid = text != NULL ? atoi(text) : 0;
    free(text);
    return pid;
}

static void node_state(const char *state)
{
    char host[256];
    char *hostname[] = {"hostname", "-s", NULL};
    char *out = NULL;
    tu_run(hostname, &out);
    snprintf(host, sizeof host, "NodeName=%.*s", out != NULL ? (int)strcspn(out, "\n") : 0, out ? out : "");
    free(out);
    char st[64];
    snprintf(st, sizeof st, "State=%s", state);
    char *argv[] = {"scontrol", "update", host, st, "Reason=bench", NULL};
    tu_run(argv, NULL);
}

int main(int argc, char **argv)
{
    int n = argc > 1 && atoi(argv[1]) > 0 ? atoi(argv[1]) : 50;
    int rounds = argc > 2 && atoi(argv[2]) > 0 ? atoi(argv[2]) : 3;
    int tracked = argc > 3 && atoi(argv[3]) > 0 ? atoi(argv[3]) : 1000;
    double window = argc > 4 && atof(argv[4]) > 0 ? atof(argv[4]) : 30;
    char why[256];
    if (!slurm_cluster_available(why, sizeof why)) {
        fprintf(stderr, "bench_slurm: %s\n", why);
        return 1;
    }
    slurm_cluster cluster;
    char err[4096];
    if (slurm_cluster_start(&cluster, err, sizeof err) != 0) {
        fprintf(stderr, "bench_slurm: %s\n", err);
        return 1;
    }
    char *root = tu_make_temp_dir();
    char dir[600];
    snprintf(dir, sizeof dir, "%s/OCPS", root);
    mkdir(dir, 0755);
    strcat(dir, "/v4");
    mkdir(dir, 0755);
    char path[700];
    char text[4096];
    snprintf(path, sizeof path, "%s/_init.yaml", dir);
    snprintf(text, sizeof text,
             "instances:\n  - {sal_index: 1, instance: LATISS, url: 'http://x/', poll_interval: 1,\n"
             "     butler: LATISS, output_glob: '*.fits'}\n");
    tu_write_file(path, text, strlen(text));
    snprintf(path, sizeof path, "%s/_test.yaml", dir);
    snprintf(text, sizeof text,
             "work_root: %s/jobs\npipetask: %s\nmax_concurrent_jobs: 1024\ninprogress_interval: 60\n"
             "final_ack_min_delay: 0\n" /* (2) times the final acks against raw sbatch: not held */
             "executor: slurm\nslurm:\n  slurm_conf: %s\n  cpus_per_job: 1\n",
             root, FAKE_PIPETASK, cluster.slurm_conf);
    tu_write_file(path, text, strlen(text));
    char rawdir[700];
    snprintf(rawdir, sizeof rawdir, "%s/raw", root);
    mkdir(rawdir, 0755);
    char script[800];
    write_raw_script(rawdir, script, sizeof script);

    fx_env(CYCLONE_CONFIG);
    setenv("DM_CONFIG_OCPS_DIR", root, 1);
    fx f;
    if (fx_open(&f, ocps_test_component(), 1, NULL) != 0) {
        return 1;
    }
    char *csc[] = {OCPS_CSC, "--duplicate-check", "0", "--state", "enabled", "1", NULL};
    fx_start_csc(&f, csc);
    sal_remote_prepare(f.remote, "execute", err, sizeof err);
    if (!fx_run_until(&f, or_enabled_ready, NULL, 60)) {
        fprintf(stderr, "bench_slurm: CSC not ready\n");
        return 1;
    }

    /* (1) latency, one job at a time, alternating with raw sbatch */
    int nlat = 10;
    double lat[64];
    double rawlat[64];
    for (int i = 0; i < nlat; i++) {
        run r[2] = {{0}, {.ack = -1}};
        double sent = bench_wall_time();
        send_execute(&f, &r[0], "");
        fx_run_until(&f, or_runs_done, r, 120);
        char jobdir[1200];
        snprintf(jobdir, sizeof jobdir, "%s/jobs/%s", root, r[0].job_id);
        lat[i] = started_in(jobdir) - sent;
        double t0 = bench_wall_time();
        long id = raw_sbatch(rawdir, script, "");
        snprintf(jobdir, sizeof jobdir, "%s/raw-%ld", rawdir, id);
        double st = 0;
        for (double end = tu_now() + 60; (st = started_in(jobdir)) <= 0 && tu_now() < end;) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        rawlat[i] = st - t0;
    }
    qsort(lat, (size_t)nlat, sizeof *lat, cmp_double);
    qsort(rawlat, (size_t)nlat, sizeof *rawlat, cmp_double);
    printf("submit -> running (process start), %d jobs one at a time:\n", nlat);
    printf("  OCPS execute:  min %.2f s, median %.2f s, max %.2f s\n", lat[0], lat[nlat / 2], lat[nlat - 1]);
    printf("  raw sbatch:    min %.2f s, median %.2f s, max %.2f s\n", rawlat[0], rawlat[nlat / 2],
           rawlat[nlat - 1]);
    fflush(stdout);

    /* (2) throughput, rounds alternating with the raw sbatch loop */
    double ratio[32];
    rounds = rounds > 32 ? 32 : rounds;
    int failed = 0;
    printf(
        "trivial jobs, %d at once, until all ended: OCPS (execute to final ack) vs raw sbatch loop + squeue "
        "polling:\n",
        n);
    for (int round = 0; round < rounds; round++) {
        run *runs = calloc((size_t)n + 1, sizeof *runs);
        runs[n].ack = -1;
        double t0 = tu_now();
        for (int i = 0; i < n; i++) {
            send_execute(&f, &runs[i], "");
        }
        fx_run_until(&f, or_runs_done, runs, 900);
        double dt = tu_now() - t0;
        for (int i = 0; i < n; i++) {
            failed += !or_job_completed(&runs[i]);
        }
        free(runs);
        double raw = raw_round(rawdir, script, n);
        ratio[round] = (n / dt) / (n / raw);
        printf("  round %d: OCPS %.2f jobs/s (%.1f s), raw %.2f jobs/s (%.1f s), ratio OCPS/raw %.2f\n",
               round + 1, n / dt, dt, n / raw, raw, ratio[round]);
        fflush(stdout);
    }
    qsort(ratio, (size_t)rounds, sizeof *ratio, cmp_double);
    printf("ratio OCPS/raw throughput: min %.2f, median %.2f, max %.2f (%d OCPS jobs failed)\n", ratio[0],
           ratio[rounds / 2], ratio[rounds - 1], failed);
    fflush(stdout);

    /* (3) CPU while the CSC tracks `tracked` pending Slurm jobs */
    node_state("DRAIN");
    run *runs = calloc((size_t)tracked + 1, sizeof *runs);
    runs[tracked].ack = -1;
    double t0 = tu_now();
    for (int i = 0; i < tracked; i++) {
        send_execute(&f, &runs[i], "");
    }
    fx_run_until(&f, all_have_ids, runs, 300);
    int pending = 0;
    while (tu_now() - t0 < 600 && (pending = squeue_count("pending")) < tracked) {
        fx_run_for(&f, 0.5);
    }
    printf("%d executes -> %d jobs pending in Slurm after %.1f s\n", tracked, pending, tu_now() - t0);
    fx_run_for(&f, 5.0); /* the last sbatch processes are reaped: their CPU is not the tracking's */
    int ctld = slurmctld_pid(&cluster);
    double self0;
    double child0;
    double ctld0;
    double unused;
    cpu_of(f.csc_pid, &self0, &child0);
    cpu_of(ctld, &ctld0, &unused);
    double w0 = tu_now();
    fx_run_for(&f, window);
    double self1;
    double child1;
    double ctld1;
    cpu_of(f.csc_pid, &self1, &child1);
    cpu_of(ctld, &ctld1, &unused);
    double dw = tu_now() - w0;
    printf("CSC CPU while tracking %d Slurm jobs, over %.1f s: own %.1f%% of a core, squeue polls %.1f%%, "
           "together %.1f%%; slurmctld answering them %.1f%%\n",
           pending, dw, 100 * (self1 - self0) / dw, 100 * (child1 - child0) / dw,
           100 * ((self1 - self0) + (child1 - child0)) / dw, 100 * (ctld1 - ctld0) / dw);
    char *cancel[] = {"scancel", "--state=PENDING", NULL};
    tu_run(cancel, NULL);
    fx_run_until(&f, or_runs_done, runs, 300);
    node_state("RESUME");
    free(runs);
    fx_close(&f);
    slurm_cluster_stop(&cluster);
    tu_remove_tree(root);
    free(root);
    return 0;
}
