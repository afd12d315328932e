/*
 * bench_csc_cpu: CPU time of an ocps-csc process over DDS (loopback) while
 * a Remote sends it steady traffic: idle (its own heartbeat only), events
 * (heartbeats of another writer, which the CSC reads) and setLogLevel
 * commands, at 10 and 1000 per second. CPU is utime + stime from
 * /proc/<pid>/stat over a fixed window, as a percentage of one core.
 * Never fails on the numbers.
 *
 *   bench_csc_cpu [SECONDS_PER_CASE]     (default 10)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ocps_test_iface.h"
#include "ocps/sal.h"
#include "ocps/sal_csc.h"
#include "sal_fixture.h"
#include "test_util.h"

typedef enum { TRAFFIC_NONE, TRAFFIC_EVENTS, TRAFFIC_COMMANDS } traffic;

typedef struct run {
    fx *f;
    traffic kind;
    int hb_topic;
    void *hb;
    void *cmd;
    long sent;
    long acked;
    long failed;
} run;

/* utime + stime of `pid`, in clock ticks; -1 if unreadable. */
static long cpu_ticks(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    char *text = tu_read_file(path, NULL);
    if (text == NULL) {
        return -1;
    }
    /* after the ")" that ends the command name: state is field 3, utime 14 */
    char *p = strrchr(text, ')');
    unsigned long utime = 0, stime = 0;
    int n =
        p != NULL ? sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) : 0;
    free(text);
    return n == 2 ? (long)(utime + stime) : -1;
}

static void on_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    (void)error;
    (void)result;
    (void)timeout;
    run *r = arg;
    if (final) {
        r->acked++;
        r->failed += ack != SAL_CMD_COMPLETE;
    }
}

static void tick(uv_timer_t *timer)
{
    run *r = timer->data;
    char err[256];
    if (r->kind == TRAFFIC_EVENTS) {
        sal_write(sal_remote_sal(r->f->remote), r->hb_topic, r->hb, SAL_WRITE_FORCE, err, sizeof err);
    } else if (r->kind == TRAFFIC_COMMANDS) {
        sal_remote_command(r->f->remote, "setLogLevel", r->cmd, 10, on_ack, r, NULL, err, sizeof err);
    }
    r->sent++;
}

static bool ready(fx *f, void *arg)
{
    (void)arg;
    return sal_remote_ready(f->remote, "setLogLevel") && sal_remote_last(f->remote, "logevent_summaryState");
}

/* One case: traffic of `kind` at `rate` per second for `seconds`; prints
 * the CSC's CPU use. */
static void measure(fx *f, traffic kind, int rate, double seconds, run *r)
{
    static const char *const names[] = {"idle", "events", "commands"};
    r->kind = kind;
    r->sent = r->acked = r->failed = 0;
    uv_timer_t timer;
    uv_timer_init(&f->loop, &timer);
    timer.data = r;
    if (kind != TRAFFIC_NONE) {
        uint64_t every = (uint64_t)(1000 / rate);
        uv_timer_start(&timer, tick, every, every);
    }
    fx_run_for(f, 1.0); /* settle */
    long t0 = cpu_ticks(f->csc_pid);
    double w0 = tu_now();
    long sent0 = r->sent;
    fx_run_for(f, seconds);
    long t1 = cpu_ticks(f->csc_pid);
    double w1 = tu_now();
    long sent = r->sent - sent0;
    uv_timer_stop(&timer);
    uv_close((uv_handle_t *)&timer, NULL);
    fx_run_for(f, 0.5);
    double cpu = (double)(t1 - t0) / (double)sysconf(_SC_CLK_TCK) / (w1 - w0) * 100.0;
    printf("%-9s %5d/s  sent %6ld in %.1f s  CSC CPU %6.2f %% of a core", names[kind], kind ? rate : 0, sent,
           w1 - w0, cpu);
    if (kind == TRAFFIC_COMMANDS) {
        printf("  (%ld final acks, %ld not COMPLETE)", r->acked, r->failed);
    }
    printf("\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 10.0;
    if (seconds < 1) {
        seconds = 1;
    }
    fx_env(CYCLONE_CONFIG);
    fx f;
    if (fx_open(&f, ocps_test_component(), 1, NULL) != 0) {
        return 1;
    }
    char *csc[] = {OCPS_CSC, "--duplicate-check", "0", "1", NULL};
    fx_start_csc(&f, csc);
    char err[256];
    sal_remote_prepare(f.remote, "setLogLevel", err, sizeof err);
    if (!fx_run_until(&f, ready, NULL, 30)) {
        fprintf(stderr, "bench_csc_cpu: CSC not reachable\n");
        fx_close(&f);
        return 1;
    }
    run r = {.f = &f};
    sal *s = sal_remote_sal(f.remote);
    r.hb_topic = sal_component_find_topic(f.comp, "logevent_heartbeat");
    if (sal_writer_add(s, r.hb_topic, err, sizeof err) != 0) {
        fprintf(stderr, "bench_csc_cpu: %s\n", err);
        fx_close(&f);
        return 1;
    }
    r.hb = sal_sample_new(&f.comp->topics[r.hb_topic]);
    int t = sal_remote_command_topic(f.remote, "setLogLevel");
    r.cmd = sal_remote_new_command(f.remote, "setLogLevel");
    sal_sample_set_i32(&f.comp->topics[t], r.cmd, "level", 20);
    fx_run_for(&f, 2.0); /* the heartbeat writer is discovered */
    printf("ocps-csc CPU use over DDS (loopback), %.0f s per case:\n", seconds);
    measure(&f, TRAFFIC_NONE, 0, seconds, &r);
    measure(&f, TRAFFIC_EVENTS, 10, seconds, &r);
    measure(&f, TRAFFIC_EVENTS, 1000, seconds, &r);
    measure(&f, TRAFFIC_COMMANDS, 10, seconds, &r);
    measure(&f, TRAFFIC_COMMANDS, 1000, seconds, &r);
    sal_sample_free(&f.comp->topics[r.hb_topic], r.hb);
    sal_sample_free(&f.comp->topics[t], r.cmd);
    fx_close(&f);
    return 0;
}
