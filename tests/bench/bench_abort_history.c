/*
 * bench_abort_history: the cost of an abort_job command against the
 * history (issue 11: "abort_job cost flat from 10 to 100,000 jobs of
 * history"). Two job stores are filled with ended, published jobs (SMALL
 * and LARGE of them, through the engine_store API); rounds then start
 * ocps-csc (DDS, enabled) on each store in turn (the order alternates
 * from round to round) and send it sequential abort_job commands, each
 * naming a history job drawn at random: the command's round trip (write
 * to final ack, as bench_command_rtt) and the CSC's CPU time per command
 * (its CPU-time clock over the timed commands). Prints each round, then
 * min/median/max over the rounds of the ratios LARGE / SMALL of the
 * median round trip and of the CPU per command (goal: about 1).
 *
 *   bench_abort_history [COMMANDS_PER_ROUND [ROUNDS [SMALL [LARGE]]]]
 *     defaults 300, 5, 10, 100000
 *
 * Never fails on timing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_history_fill.h"
#include "bench_util.h"
#include "ocps/sal_csc.h"
#include "ocps_test_iface.h"
#include "sal_fixture.h"
#include "test_util.h"

typedef struct history {
    int h;
    char *root; /* $DM_CONFIG_OCPS_DIR of its CSC; the jobs under root/jobs */
    char (*ids)[ENGINE_JOB_ID_LEN + 1];
    unsigned seed;
} history;

/* CPU seconds (user + system, all threads) of process pid, from its
 * CPU-time clock (nanoseconds, where /proc/<pid>/stat counts ticks); -1
 * if unreadable. */
static double proc_cpu(int pid)
{
    clockid_t c;
    struct timespec ts;
    if (clock_getcpuclockid(pid, &c) != 0 || clock_gettime(c, &ts) != 0) {
        return -1;
    }
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The store of a history and its site configuration; its ids drawn here,
 * the store filled in a child (the fill's memory is not this process's). */
static int history_make(history *hs, int h)
{
    hs->h = h;
    hs->seed = 12345;
    hs->root = tu_make_ocps_config();
    hs->ids = calloc((size_t)h, sizeof *hs->ids);
    if (hs->root == NULL || hs->ids == NULL) {
        return -1;
    }
    char jobs[1100];
    char site[1300];
    snprintf(jobs, sizeof jobs, "%s/jobs", hs->root);
    mkdir(jobs, 0755);
    snprintf(site, sizeof site, "work_root: %s\n", jobs);
    if (tu_write_ocps_site(hs->root, site) != 0) {
        return -1;
    }
    for (int i = 0; i < h; i++) {
        engine_new_job_id(NULL, hs->ids[i]);
    }
    char store[1200];
    snprintf(store, sizeof store, "%s/jobs-1.sqlite", jobs);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        _exit(bench_history_fill(store, jobs, h, hs->ids) == 0 ? 0 : 1);
    }
    int status = 0;
    return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0
                                                                                                       : -1;
}

/* The CSC's last summaryState is ENABLED. */
static bool enabled(fx *f, void *arg)
{
    (void)arg;
    const void *s = sal_remote_last(f->remote, "logevent_summaryState");
    int t = sal_component_find_topic(f->comp, "logevent_summaryState");
    return s != NULL && sal_sample_get_i32(&f->comp->topics[t], s, "summaryState") == SAL_STATE_ENABLED;
}

static void fill_abort(fx *f, const sal_topic_info *topic, void *sample, int i, void *arg)
{
    (void)f;
    (void)i;
    history *hs = arg;
    char err[128];
    sal_sample_set_string(topic, sample, "job_id", hs->ids[rand_r(&hs->seed) % (unsigned)hs->h], err,
                          sizeof err);
}

/* One round on one history: the median round trip (µs) and the CSC's CPU
 * per command (µs); -1 if the CSC could not be run. */
static int history_round(history *hs, int n, double *rtt, double *median_us, double *cpu_us)
{
    setenv("DM_CONFIG_OCPS_DIR", hs->root, 1);
    fx f;
    if (fx_open(&f, ocps_test_component(), 1, NULL) != 0) {
        return -1;
    }
    char *csc[] = {OCPS_CSC, "--duplicate-check", "0", "--state", "enabled", "1", NULL};
    fx_start_csc(&f, csc);
    int failures = 0;
    int rc = -1;
    if (fx_run_until(&f, enabled, NULL, 30)) {
        /* warm up (the store's pages as a running CSC has them), then time */
        rc = bench_command_loop_with(&f, "abort_job", fill_abort, hs, 1, 100, rtt, &failures);
        double cpu0 = proc_cpu(f.csc_pid);
        if (rc == 0) {
            rc = bench_command_loop_with(&f, "abort_job", fill_abort, hs, n, 0, rtt, &failures);
        }
        double cpu1 = proc_cpu(f.csc_pid);
        *median_us = rtt[n / 2] * 1e6;
        *cpu_us = cpu0 >= 0 && cpu1 >= 0 ? (cpu1 - cpu0) / n * 1e6 : -1;
    }
    if (failures != 0) { /* e.g. "No such job id": not what is to be measured */
        fprintf(stderr, "bench: %d abort_job commands of history jobs not COMPLETE\n", failures);
        rc = -1;
    }
    fx_close(&f);
    return rc;
}

int main(int argc, char **argv)
{
    int n = argc > 1 && atoi(argv[1]) >= 10 ? atoi(argv[1]) : 300;
    int rounds = argc > 2 && atoi(argv[2]) >= 1 ? atoi(argv[2]) : 5;
    int sizes[2] = {argc > 3 && atoi(argv[3]) >= 1 ? atoi(argv[3]) : 10,
                    argc > 4 && atoi(argv[4]) >= 1 ? atoi(argv[4]) : 100000};
    fx_env(CYCLONE_CONFIG);
    history hs[2] = {{0}, {0}};
    int rc = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        if (history_make(&hs[k], sizes[k]) != 0) {
            fprintf(stderr, "bench: cannot fill a store of %d jobs\n", sizes[k]);
            rc = -1;
        }
    }
    double *rtt = calloc((size_t)n, sizeof *rtt);
    double *r_rtt = calloc((size_t)rounds, sizeof *r_rtt);
    double *r_cpu = calloc((size_t)rounds, sizeof *r_cpu);
    printf("abort_job of a random history job, %d commands a round, history %d vs %d jobs:\n", n, sizes[1],
           sizes[0]);
    for (int r = 0; r < rounds && rc == 0; r++) {
        double med[2];
        double cpu[2];
        for (int i = 0; i < 2 && rc == 0; i++) {
            int k = (r + i) % 2; /* alternate which history goes first */
            rc = history_round(&hs[k], n, rtt, &med[k], &cpu[k]);
        }
        if (rc != 0) {
            fprintf(stderr, "bench: round %d failed\n", r + 1);
            break;
        }
        r_rtt[r] = med[1] / med[0];
        r_cpu[r] = cpu[0] > 0 ? cpu[1] / cpu[0] : 0;
        printf("  round %d: history %d: round trip %.1f us, CSC CPU %.1f us/command; history %d: %.1f us, "
               "%.1f us/command\n",
               r + 1, sizes[0], med[0], cpu[0], sizes[1], med[1], cpu[1]);
    }
    if (rc == 0) {
        bench_print_spread("ratio round trip (median) large / small", r_rtt, rounds);
        bench_print_spread("ratio CSC CPU per command large / small", r_cpu, rounds);
    }
    for (int k = 0; k < 2; k++) {
        if (hs[k].root != NULL) {
            tu_remove_tree(hs[k].root);
        }
        free(hs[k].root);
        free(hs[k].ids);
    }
    free(rtt);
    free(r_rtt);
    free(r_cpu);
    return rc == 0 ? 0 : 1;
}
