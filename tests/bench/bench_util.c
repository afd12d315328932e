/* bench_util.c - see bench_util.h. */
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ocps/sal_csc.h"
#include "ocps/sal_gate.h"
#include "test_util.h"

typedef struct rtt_state {
    bool done;
    int ack;
    double read_at; /* tu_now() when the final ack was read (in its callback) */
} rtt_state;

static void on_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    (void)error;
    (void)result;
    (void)timeout;
    rtt_state *s = arg;
    if (final) {
        s->read_at = tu_now();
        s->done = true;
        s->ack = ack;
    }
}

/* Run the loop until the final ack (or the command's own 10 s timeout):
 * nothing else per command, as ddsperf's ping waits for its pong */
static void wait_ack(fx *f, rtt_state *s, double end)
{
    while (!s->done && tu_now() < end) {
        if (f->gate != NULL) {
            sal_gate_run(f->gate, UV_RUN_ONCE);
        } else {
            uv_run(&f->loop, UV_RUN_ONCE);
        }
    }
}

static bool ready(fx *f, void *arg)
{
    return sal_remote_ready(f->remote, arg) && sal_remote_last(f->remote, "logevent_summaryState");
}

/* Up to n timed commands after `warmup` untimed ones, none written at or
 * after stop_at (0: no limit); the number timed. */
static int command_series(fx *f, const char *name, bench_fill_fn *fill, void *arg, int n, int warmup,
                          double stop_at, double *rtt, int *failures)
{
    char err[256];
    sal_remote_prepare(f->remote, name, err, sizeof err);
    if (!fx_run_until(f, ready, (void *)name, 30)) {
        fprintf(stderr, "bench: CSC not reachable\n");
        return -1;
    }
    int t = sal_remote_command_topic(f->remote, name);
    void *cmd = sal_remote_new_command(f->remote, name);
    *failures = 0;
    int i = -warmup;
    for (; i < n; i++) {
        fill(f, &f->comp->topics[t], cmd, i, arg);
        rtt_state s = {0};
        double t0 = tu_now();
        if (stop_at > 0 && t0 >= stop_at) {
            break;
        }
        sal_remote_command(f->remote, name, cmd, 10, on_ack, &s, NULL, err, sizeof err);
        wait_ack(f, &s, t0 + 11);
        if (i >= 0) {
            rtt[i] = (s.done ? s.read_at : tu_now()) - t0;
            *failures += s.ack != SAL_CMD_COMPLETE;
        }
    }
    sal_sample_free(&f->comp->topics[t], cmd);
    return i > 0 ? i : 0;
}

int bench_command_loop_with(fx *f, const char *name, bench_fill_fn *fill, void *arg, int n, int warmup,
                            double *rtt, int *failures)
{
    if (command_series(f, name, fill, arg, n, warmup, 0, rtt, failures) < 0) {
        return -1;
    }
    bench_sort(rtt, n);
    return 0;
}

static void fill_log_level(fx *f, const sal_topic_info *topic, void *sample, int i, void *arg)
{
    (void)f;
    (void)i;
    (void)arg;
    sal_sample_set_i32(topic, sample, "level", 20);
}

int bench_command_loop(fx *f, int n, int warmup, double *rtt, int *failures)
{
    return bench_command_loop_with(f, "setLogLevel", fill_log_level, NULL, n, warmup, rtt, failures);
}

int bench_command_loop_until(fx *f, double stop_at, int cap, double *rtt, int *failures)
{
    int n = command_series(f, "setLogLevel", fill_log_level, NULL, cap, 0, stop_at, rtt, failures);
    if (n >= 0) {
        bench_sort(rtt, n);
    }
    return n;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_sort(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        sum += v[i];
    }
    return n > 0 ? sum / n : 0;
}

void bench_print_spread(const char *label, double *v, int n)
{
    bench_sort(v, n);
    printf("%s: min %.2f, median %.2f, max %.2f\n", label, v[0], v[n / 2], v[n - 1]);
}

double bench_wall_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
