/*
 * bench_jobs: the local engine seen from a commander. (1) execute ->
 * process start latency: from writing the execute command to the moment
 * the job's process (fake-pipetask) starts; (2) trivial jobs per second:
 * N concurrent executes of a job that exits at once, until every final ack
 * has arrived. The reference, measured in the same run, in rounds that
 * alternate with the OCPS ones: a bare posix_spawn + waitpid loop of the
 * same program. Prints each round and min/median/max of the ratio, then
 * the CPU time per job of each part, summed over the rounds: the CSC (all
 * its threads), its reaped children (each job's runner and the job), this
 * commander, and the bare loop's job alone (its children's rusage).
 * The CSC runs with final_ack_min_delay 0: with the default (1 s) every
 * trivial job's final ack would wait a second after its first ack, and
 * (2) would count that wait, not the CSC's work (docs/performance.md).
 *
 *   bench_jobs [N [ROUNDS]]   (default 200 jobs, 5 rounds)
 */
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ocps_test_iface.h"
#include "ocps/sal_csc.h"
#include "bench_util.h"
#include "ocps_run.h"
#include "sal_fixture.h"
#include "test_util.h"

extern char **environ;

typedef or_run run;

static void send_execute(fx *f, run *r, const char *query)
{
    or_fields x = {.pipeline = "bench.yaml", .data_query = query};
    or_execute(f, r, &x, 600);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

/* CPU seconds (user + system) of process pid itself and of its reaped
 * children, from /proc/<pid>/stat fields 14-17; false if unreadable. */
static bool proc_cpu(int pid, double *self, double *children)
{
    char path[64];
    char buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return false;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* then field 3 (state) ... 14 utime 15 stime 16 cutime 17 cstime */
    unsigned long long v[4];
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &v[0],
                            &v[1], &v[2], &v[3]) != 4) {
        return false;
    }
    double tick = (double)sysconf(_SC_CLK_TCK);
    *self = (double)(v[0] + v[1]) / tick;
    *children = (double)(v[2] + v[3]) / tick;
    return true;
}

/* CPU seconds (user + system) of this process or of its reaped children. */
static double rusage_cpu(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static double spawn_loop(int n)
{
    char *argv[] = {FAKE_PIPETASK, NULL};
    char dir[] = "/tmp/bench-spawn-XXXXXX";
    mkdtemp(dir);
    setenv("JOB_OUTPUT_DIR", dir, 1);
    double t0 = tu_now();
    for (int i = 0; i < n; i++) {
        pid_t pid;
        posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
        waitpid(pid, NULL, 0);
    }
    double dt = tu_now() - t0;
    unsetenv("JOB_OUTPUT_DIR");
    tu_remove_tree(dir);
    return dt;
}

int main(int argc, char **argv)
{
    /* whole lines: the bare loop's children write to the same stdout */
    setvbuf(stdout, NULL, _IOLBF, 0);
    int n = argc > 1 && atoi(argv[1]) > 0 ? atoi(argv[1]) : 200;
    int rounds = argc > 2 && atoi(argv[2]) > 0 ? atoi(argv[2]) : 5;
    char *root = tu_make_temp_dir();
    char dir[600];
    snprintf(dir, sizeof dir, "%s/OCPS", root);
    mkdir(dir, 0755);
    strcat(dir, "/v4");
    mkdir(dir, 0755);
    char path[700];
    char text[2048];
    snprintf(path, sizeof path, "%s/_init.yaml", dir);
    snprintf(text, sizeof text,
             "instances:\n  - {sal_index: 1, instance: LATISS, url: 'http://x/', poll_interval: 1,\n"
             "     butler: LATISS, output_glob: '*.fits'}\n");
    tu_write_file(path, text, strlen(text));
    snprintf(path, sizeof path, "%s/_test.yaml", dir);
    /* final_ack_min_delay 0: the final acks are timed, not held (see above) */
    snprintf(text, sizeof text,
             "work_root: %s/jobs\npipetask: %s\nmax_concurrent_jobs: 8\nfinal_ack_min_delay: 0\n", root,
             FAKE_PIPETASK);
    tu_write_file(path, text, strlen(text));

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
    if (!fx_run_until(&f, or_enabled_ready, NULL, 30)) {
        fprintf(stderr, "bench: CSC not ready\n");
        return 1;
    }

    /* (1) latency, one job at a time */
    int nlat = 20;
    double lat_sum = 0;
    for (int i = 0; i < nlat; i++) {
        run r[2] = {{0}, {.ack = -1}};
        double sent = bench_wall_time();
        send_execute(&f, &r[0], "");
        fx_run_until(&f, or_runs_done, r, 60);
        char inv[1200];
        snprintf(inv, sizeof inv, "%s/jobs/%s/invocation.json", root, r[0].job_id);
        json_t *j = json_load_file(inv, 0, NULL);
        lat_sum += json_real_value(json_object_get(j, "started")) - sent;
        json_decref(j);
    }

    /* (2) throughput, in rounds alternating with the bare loop */
    double *ratio = calloc((size_t)rounds, sizeof *ratio);
    int failed = 0;
    double cpu_csc = 0;       /* CPU seconds over the OCPS rounds: the CSC itself, */
    double cpu_children = 0;  /* the runners and jobs it reaped, */
    double cpu_commander = 0; /* this process (its DDS threads included), */
    double cpu_bare = 0;      /* and the bare loop's children */
    bool cpu_known = true;
    printf("trivial jobs, execute to final ack, 8 at a time, vs a bare posix_spawn+waitpid loop of the same "
           "program, %d rounds of %d:\n",
           rounds, n);
    for (int round = 0; round < rounds; round++) {
        run *runs = calloc((size_t)n + 1, sizeof *runs);
        runs[n].ack = -1;
        double csc0;
        double children0;
        double csc1;
        double children1;
        cpu_known = proc_cpu(f.csc_pid, &csc0, &children0) && cpu_known;
        double self0 = rusage_cpu(RUSAGE_SELF);
        double t0 = tu_now();
        for (int i = 0; i < n; i++) {
            send_execute(&f, &runs[i], "");
        }
        fx_run_until(&f, or_runs_done, runs, 600);
        double dt = tu_now() - t0;
        cpu_commander += rusage_cpu(RUSAGE_SELF) - self0;
        cpu_known = proc_cpu(f.csc_pid, &csc1, &children1) && cpu_known;
        cpu_csc += csc1 - csc0;
        cpu_children += children1 - children0;
        for (int i = 0; i < n; i++) {
            failed += !or_job_completed(&runs[i]);
        }
        free(runs);
        double bare_cpu0 = rusage_cpu(RUSAGE_CHILDREN);
        double bare = spawn_loop(n);
        cpu_bare += rusage_cpu(RUSAGE_CHILDREN) - bare_cpu0;
        ratio[round] = (n / dt) / (n / bare);
        printf("  round %d: OCPS %.1f jobs/s, bare %.1f/s, ratio OCPS/bare %.2f\n", round + 1, n / dt,
               n / bare, ratio[round]);
    }
    fx_close(&f);
    tu_remove_tree(root);
    free(root);
    qsort(ratio, (size_t)rounds, sizeof *ratio, cmp_double);
    printf("execute -> process start latency: mean %.2f ms over %d jobs\n", lat_sum / nlat * 1e3, nlat);
    printf("ratio OCPS/bare throughput: min %.2f, median %.2f, max %.2f (%d jobs failed)\n", ratio[0],
           ratio[rounds / 2], ratio[rounds - 1], failed);
    free(ratio);
    double jobs = (double)n * rounds;
    if (cpu_known) {
        printf("CPU per job (ms): CSC %.2f, its runner + job %.2f, commander %.2f; "
               "bare loop: job %.2f; OCPS total / bare job %.2f\n",
               cpu_csc / jobs * 1e3, cpu_children / jobs * 1e3, cpu_commander / jobs * 1e3,
               cpu_bare / jobs * 1e3, (cpu_csc + cpu_children) / cpu_bare);
    }
    return 0;
}
