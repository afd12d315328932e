/*
 * bench_uws: requests per second and p50/p99 latency of ocps-engine's
 * GET /job/{id} and PUT /job (issue 14), measured with wrk (Debian's
 * `wrk`) on loopback, next to the same load against bench-static-mhd, a
 * minimal static libmicrohttpd responder, in the same run. Prints each
 * run, then min/median/max over the runs and the ratios of the medians
 * (goal: >= 0.5). GET is measured on an ended job (the answer is kept)
 * and on a running one (the answer is kept while the job's phase and the
 * modification times of its output directories stay the same, one stat
 * per directory per request, at most 1 s). Never fails on timing.
 *
 *   bench_uws [RUNS (3)] [SECONDS (3)] [CONNECTIONS (32)]
 *
 * PUT /job creates real jobs: each PUT run uses a fresh ocps-engine whose
 * only slot is held by a sleeping job, so the jobs it creates stay queued
 * (stored, never run: their directories are made when they start); it is
 * SIGKILLed after the run. OCPS_BENCH_DIR=DIR puts the engines' state and
 * work directories under DIR (e.g. /dev/shm).
 */
#define _XOPEN_SOURCE 700
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "test_util.h"
#include "uws_fixture.h"

#ifndef BENCH_STATIC_MHD
#error "BENCH_STATIC_MHD must be defined"
#endif

typedef struct wrk_result {
    double rps;
    double p50_us;
    double p99_us;
    long non2xx;
} wrk_result;

static double parse_latency(const char *text, const char *label)
{
    const char *p = strstr(text, label);
    if (p == NULL) {
        return -1;
    }
    p += strlen(label);
    char *end = NULL;
    double v = strtod(p, &end);
    if (strncmp(end, "us", 2) == 0) {
        return v;
    }
    if (strncmp(end, "ms", 2) == 0) {
        return v * 1e3;
    }
    if (strncmp(end, "s", 1) == 0) {
        return v * 1e6;
    }
    return -1;
}

/* wrk -t1 -c conns -d secs --latency [-s script] url */
static int run_wrk(const char *url, const char *script, int secs, int conns, wrk_result *out)
{
    char d[16];
    char c[16];
    snprintf(d, sizeof d, "%ds", secs);
    snprintf(c, sizeof c, "%d", conns);
    const char *argv[16] = {"wrk", "-t1", "-c", c, "-d", d, "--latency"};
    int n = 7;
    if (script != NULL) {
        argv[n++] = "-s";
        argv[n++] = script;
    }
    argv[n++] = url;
    argv[n] = NULL;
    char *text = NULL;
    int rc = tu_run((char *const *)argv, &text);
    if (rc != 0 || text == NULL) {
        fprintf(stderr, "wrk failed (%d): %s\n", rc, text != NULL ? text : "");
        free(text);
        return -1;
    }
    const char *r = strstr(text, "Requests/sec:");
    out->rps = r != NULL ? strtod(r + 13, NULL) : 0;
    out->p50_us = parse_latency(text, " 50%");
    out->p99_us = parse_latency(text, " 99%");
    const char *bad = strstr(text, "Non-2xx or 3xx responses:");
    out->non2xx = bad != NULL ? strtol(bad + 25, NULL, 10) : 0;
    free(text);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

/* min, median, max of v[0..n) (sorted in place). */
static void stats(double *v, int n, double out[3])
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    out[0] = v[0];
    out[1] = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    out[2] = v[n - 1];
}

enum { MAX_RUNS = 20, NCASES = 5 };
static const char *const case_names[NCASES] = {"static GET", "ocps-engine GET /job/{id} ended",
                                               "ocps-engine GET /job/{id} running", "static PUT",
                                               "ocps-engine PUT /job"};

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 3;
    int secs = argc > 2 ? atoi(argv[2]) : 3;
    int conns = argc > 3 ? atoi(argv[3]) : 32;
    if (runs < 1 || runs > MAX_RUNS || secs < 1 || conns < 1) {
        fprintf(stderr, "usage: bench_uws [RUNS (1-20)] [SECONDS] [CONNECTIONS]\n");
        return 2;
    }
    char *dir = tu_make_temp_dir();
    char *port_file = tu_path_join(dir, "static.port");
    char *put_lua = tu_path_join(dir, "put.lua");
    const char *lua = "wrk.method = \"PUT\"\nwrk.body = '{\"argv\": [\"true\"], \"run_id\": \"bench\"}'\n"
                      "wrk.headers[\"Content-Type\"] = \"application/json\"\n";
    if (tu_write_file(put_lua, lua, strlen(lua)) != 0) {
        return 1;
    }
    char *const sargv[] = {BENCH_STATIC_MHD, port_file, NULL};
    int spid = tu_spawn(sargv, NULL);
    unsigned sport = 0;
    for (double until = tu_now() + 10; sport == 0 && tu_now() < until; usleep(20000)) {
        char *t = tu_read_file(port_file, NULL);
        sport = t != NULL ? (unsigned)strtoul(t, NULL, 10) : 0;
        free(t);
    }
    uws_fx get_fx;
    /* no limit on waiting jobs: the PUT run stores about 100,000 */
    const char *const one[] = {"--max-concurrent", "1", "--max-waiting", "0", NULL};
    char id[33];
    if (spid < 0 || sport == 0 || uws_fx_start(&get_fx, NULL, one) != 0 ||
        uws_fx_submit(&get_fx,
                      "{\"command\": \"echo bench > $JOB_OUTPUT_DIR/out.txt\", \"run_id\": \"bench\"}",
                      id) != 0) {
        fprintf(stderr, "bench_uws: cannot start the servers\n");
        return 1;
    }
    json_decref(uws_fx_wait(&get_fx, id, NULL, 30));
    char static_url[128];
    char get_url[256];
    snprintf(static_url, sizeof static_url, "http://127.0.0.1:%u/api/v1/job", sport);
    snprintf(get_url, sizeof get_url, "%s/api/v1/job/%s", get_fx.base, id);

    double v[NCASES][3][MAX_RUNS]; /* case, (rps, p50, p99), run */
    printf("bench_uws: wrk -t1 -c%d -d%ds --latency, %d runs (loopback; the machine is shared)\n", conns,
           secs, runs);
    for (int run = 0; run < runs; run++) {
        wrk_result w[NCASES] = {{0}};
        run_wrk(static_url, NULL, secs, conns, &w[0]);
        run_wrk(get_url, NULL, secs, conns, &w[1]);
        run_wrk(static_url, put_lua, secs, conns, &w[3]);
        /* a fresh engine whose single slot is held by a sleeping job */
        uws_fx put_fx;
        char holder[33];
        char body[1400];
        char *put_root = NULL;
        if (getenv("OCPS_BENCH_DIR") != NULL) {
            char tmpl[1024];
            snprintf(tmpl, sizeof tmpl, "%s/bench-uws-XXXXXX", getenv("OCPS_BENCH_DIR"));
            put_root = mkdtemp(tmpl) != NULL ? strdup(tmpl) : NULL;
        }
        if (uws_fx_start(&put_fx, put_root, one) != 0) {
            return 1;
        }
        free(put_root);
        snprintf(body, sizeof body, "{\"command\": \"echo $$ > %s/holder.pid; exec sleep 600\"}",
                 put_fx.root);
        uws_fx_submit(&put_fx, body, holder);
        json_decref(uws_fx_wait(&put_fx, holder, "executing", 10));
        char put_url[256];
        snprintf(put_url, sizeof put_url, "%s/api/v1/job/%s", put_fx.base, holder);
        run_wrk(put_url, NULL, secs, conns, &w[2]); /* the polling of a running job */
        snprintf(put_url, sizeof put_url, "%s/api/v1/job", put_fx.base);
        run_wrk(put_url, put_lua, secs, conns, &w[4]);
        int jobs = uws_fx_count(&put_fx);
        uws_fx_kill(&put_fx);
        char pidfile[1200];
        snprintf(pidfile, sizeof pidfile, "%s/holder.pid", put_fx.root);
        char *t = tu_read_file(pidfile, NULL);
        if (t != NULL && atoi(t) > 1) {
            kill(-atoi(t), SIGKILL);
        }
        free(t);
        uws_fx_stop(&put_fx);
        printf("run %d:\n", run + 1);
        for (int c = 0; c < NCASES; c++) {
            printf("  %-34s %9.0f req/s  p50 %7.0f us  p99 %7.0f us%s\n", case_names[c], w[c].rps,
                   w[c].p50_us, w[c].p99_us, w[c].non2xx ? "  (non-2xx answers!)" : "");
            v[c][0][run] = w[c].rps;
            v[c][1][run] = w[c].p50_us;
            v[c][2][run] = w[c].p99_us;
        }
        printf("  (%d jobs stored by the PUT run)\n", jobs);
    }
    printf("summary (min / median / max over %d runs):\n", runs);
    double med[NCASES][3];
    for (int c = 0; c < NCASES; c++) {
        double s[3][3];
        for (int k = 0; k < 3; k++) {
            stats(v[c][k], runs, s[k]);
            med[c][k] = s[k][1];
        }
        printf("  %-34s req/s %.0f / %.0f / %.0f   p50 us %.0f / %.0f / %.0f   p99 us %.0f / %.0f / %.0f\n",
               case_names[c], s[0][0], s[0][1], s[0][2], s[1][0], s[1][1], s[1][2], s[2][0], s[2][1],
               s[2][2]);
    }
    printf("ratio of medians, ocps-engine / static responder (goal >= 0.5):\n");
    printf("  GET /job/{id} ended:   %.2f of the requests per second\n", med[1][0] / med[0][0]);
    printf("  GET /job/{id} running: %.2f of the requests per second\n", med[2][0] / med[0][0]);
    printf("  PUT /job:              %.2f of the requests per second\n", med[4][0] / med[3][0]);
    uws_fx_stop(&get_fx);
    kill(spid, SIGTERM);
    tu_wait_exit(spid, 5);
    tu_remove_tree(dir);
    free(port_file);
    free(put_lua);
    free(dir);
    return 0;
}
