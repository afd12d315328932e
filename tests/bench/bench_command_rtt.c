/*
 * bench_command_rtt: sequential SAL command round trip over DDS (command
 * write -> final ack read, setLogLevel) against an ocps-csc process, side
 * by side with Cyclone's own ddsperf ping-pong in the same run, on the same
 * loopback configuration. Rounds alternate ddsperf (listener mode at both
 * ends, waitset mode at both ends, then ping in waitset and pong in listener
 * mode) and a batch of commands; each round gives a ratio of the command's
 * median round trip to ddsperf's FULL median round trip (ddsperf prints
 * half of it: (tnow - tsend) / 2). Prints min/median/max of the ratios over
 * the rounds; never fails on timing.
 *
 * The third pairing has the command exchange's shape: the commander sends
 * from its loop's thread after the ack woke it (ddsperf's ping in waitset
 * mode: its own thread, woken by the receive thread), the CSC answers on
 * Cyclone's receive thread (ddsperf's pong in listener mode). Each round
 * also sends the commands "chained", each written from the previous one's
 * final-ack callback (on the receive thread, in the gate), as ddsperf's
 * ping in listener mode writes the next ping from its pong's listener:
 * that ratio is to ddsperf with both ends in listener mode.
 *
 *   bench_command_rtt [COMMANDS_PER_ROUND [ROUNDS [LOAD_PROCESSES [PLACEMENT]]]]
 *     defaults 300, 5, 0, free; LOAD_PROCESSES busy-looping children load
 *     the machine during the whole run.
 *
 * COMMANDS_PER_ROUND given as "Ns" (N >= 3, e.g. 3s) measures both ways as
 * ddsperf measures itself: each round sends commands (then chained ones)
 * for N seconds and reports the mean of the per-second medians, the first
 * second skipped, against ddsperf run for N seconds and reported the same
 * way (its reports but the first: it prints none for its first second,
 * spent discovering its pong, so with N = 3 its third second). A round of
 * 300 commands lasts a few milliseconds and so samples one placement of
 * the threads (below), where ddsperf's seconds average several.
 *
 * PLACEMENT fixes where the scheduler runs each side, the same for the
 * command exchange and for ddsperf (on the first two CPUs this process may
 * use): "free" leaves it to the scheduler; "same" runs everything (both
 * ends, the busy processes) on one CPU; "cross" runs the commander and
 * ddsperf's ping on one CPU, the CSC and ddsperf's pong on the other, the
 * busy processes alternately on both. Left free, a loaded scheduler puts the
 * two ends of an exchange on one CPU or on two from one second to the next,
 * and the round trip of either changes about threefold with it
 * (docs/performance.md): a free ratio compares whichever placements the
 * two measurements happened to get.
 */
#define _GNU_SOURCE /* sched_setaffinity */
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "ocps/sal_gate.h"
#include "ocps/sal_csc.h"
#include "ocps_test_iface.h"
#include "sal_fixture.h"
#include "test_util.h"

enum placement { PLACE_FREE, PLACE_SAME, PLACE_CROSS };

/* the first two CPUs this process may run on, and where each side goes */
typedef struct placing {
    enum placement how;
    int cpu[2];
} placing;

static int placing_init(placing *p, const char *how)
{
    p->how = strcmp(how, "same") == 0 ? PLACE_SAME : strcmp(how, "cross") == 0 ? PLACE_CROSS : PLACE_FREE;
    if (p->how == PLACE_FREE) {
        return strcmp(how, "free") == 0 ? 0 : -1;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        return -1;
    }
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < 2; c++) {
        if (CPU_ISSET(c, &set)) {
            p->cpu[n++] = c;
        }
    }
    if (n < 2 && p->how == PLACE_CROSS) {
        return -1;
    }
    if (n < 2) {
        p->cpu[1] = p->cpu[0];
    }
    return 0;
}

/* Move the calling thread (and what it starts from now on) to side `side`
 * (0 the commander's, 1 the CSC's): one CPU for both with "same". Exits
 * if the affinity cannot be set: a run labelled with a placement it did
 * not have would mislead. */
static void place_side(const placing *p, int side)
{
    if (p->how == PLACE_FREE) {
        return;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(p->how == PLACE_SAME ? p->cpu[1] : p->cpu[side], &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        perror("bench: sched_setaffinity");
        exit(2);
    }
}

/* ddsperf's median round trip (microseconds, the full one: twice what it
 * prints) over `seconds`, skipping its first report; -1 if it could not
 * be run. A mode "listener" works on Cyclone's receive thread, "waitset"
 * on a thread of its own, as an application with an event loop does. The
 * pong runs on the CSC's side, the ping on the commander's. */
static double ddsperf_rtt(const placing *p, int seconds, char *ping_mode, char *pong_mode)
{
    char dur[16];
    snprintf(dur, sizeof dur, "%d", seconds + 2);
    char *pong[] = {"ddsperf", "-D", dur, "pong", pong_mode, NULL};
    place_side(p, 1);
    int pong_pid = tu_spawn(pong, "/dev/null");
    place_side(p, 0);
    snprintf(dur, sizeof dur, "%d", seconds);
    char *ping[] = {"ddsperf", "-D", dur, "ping", ping_mode, NULL};
    char *out = NULL;
    int rc = tu_run(ping, &out);
    tu_kill(pong_pid);
    if (rc != 0 || out == NULL) {
        free(out);
        return -1;
    }
    double sum = 0;
    int n = 0;
    int seen = 0;
    for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char *m = strstr(line, " 50% ");
        if (m != NULL && strstr(line, " size ") != NULL && seen++ > 0) {
            sum += atof(m + 5);
            n++;
        }
    }
    free(out);
    return n > 0 ? 2 * sum / n : -1;
}

static void busy(void)
{
    volatile unsigned long x = 0;
    for (;;) {
        x++;
    }
}

/* The commander in ddsperf's listener shape: the next command is written
 * from the final ack's callback (on the receive thread while the loop
 * sleeps), not by the loop's thread after the ack woke it. */
typedef struct chain {
    fx *f;
    void *cmd;
    int n, i, failures;
    bool broken;    /* a command could not be sent */
    double stop_at; /* none written at or after it (0: no limit) */
    double t0;
    double *rtt;
} chain;

static void chain_send(chain *c);

static void on_chain_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    (void)error;
    (void)result;
    (void)timeout;
    chain *c = arg;
    if (!final) {
        return;
    }
    double now = tu_now();
    if (c->i >= 0) {
        c->rtt[c->i] = now - c->t0;
        c->failures += ack != SAL_CMD_COMPLETE;
    }
    if (++c->i < c->n) {
        if (c->stop_at > 0 && now >= c->stop_at) {
            if (c->i < 0) { /* ended within the warm-up: nothing timed */
                c->i = 0;
            }
            c->n = c->i; /* the series ends here */
        } else {
            chain_send(c);
        }
    }
}

static void chain_send(chain *c)
{
    char err[256];
    c->t0 = tu_now();
    if (sal_remote_command(c->f->remote, "setLogLevel", c->cmd, 10, on_chain_ack, c, NULL, err, sizeof err) !=
        0) {
        fprintf(stderr, "bench: %s\n", err);
        c->broken = true;
    }
}

/* Up to n chained commands after `warmup` untimed ones, none written at
 * or after stop_at (0: no limit); the number timed (rtt sorted), -1 on
 * failure. */
static int chain_loop(fx *f, int n, int warmup, double stop_at, double *rtt, int *failures)
{
    int t = sal_remote_command_topic(f->remote, "setLogLevel");
    chain c = {.f = f,
               .cmd = sal_remote_new_command(f->remote, "setLogLevel"),
               .n = n,
               .i = -warmup,
               .stop_at = stop_at,
               .rtt = rtt};
    if (t < 0 || c.cmd == NULL) {
        return -1;
    }
    sal_sample_set_i32(&f->comp->topics[t], c.cmd, "level", 20);
    chain_send(&c);
    double end = tu_now() + 60 + n * 0.05; /* past a few lost acks' 10 s timeouts */
    if (stop_at > 0) {
        end = stop_at + 11;
    }
    while (c.i < c.n && !c.broken && tu_now() < end) {
        if (f->gate != NULL) {
            sal_gate_run(f->gate, UV_RUN_ONCE);
        } else { /* OCPS_SAL_INLINE=0: every ack through the loop */
            uv_run(&f->loop, UV_RUN_ONCE);
        }
    }
    sal_sample_free(&f->comp->topics[t], c.cmd);
    *failures += c.failures;
    bench_sort(rtt, c.n);
    return c.i >= c.n && !c.broken ? c.n : -1;
}

/* The commands' round trip over `seconds` as ddsperf reports its own:
 * the median of each second, the first second skipped, the mean of the
 * others (microseconds, full round trips); p90 likewise. Chained or sent
 * from the loop's thread. -1 on failure. */
static double per_second_median(fx *f, int seconds, bool chained, double *rtt, int cap, double *p90,
                                int *failures)
{
    double sum = 0, sum90 = 0;
    int used = 0;
    *p90 = 0;
    for (int s = 0; s < seconds; s++) {
        double stop_at = tu_now() + 1;
        int fl = 0;
        int n = chained ? chain_loop(f, cap, s == 0 ? 5 : 0, stop_at, rtt, &fl)
                        : bench_command_loop_until(f, stop_at, cap, rtt, &fl);
        *failures += fl;
        if (n <= 0) {
            return -1;
        }
        if (s > 0) {
            sum += rtt[n / 2];
            sum90 += rtt[n * 9 / 10];
            used++;
        }
    }
    *p90 = sum90 / used * 1e6;
    return sum / used * 1e6;
}

int main(int argc, char **argv)
{
    /* "Ns": each round sends commands for N seconds and reports them as
     * ddsperf reports its pings (per_second_median) */
    int seconds = argc > 1 && strchr(argv[1], 's') != NULL ? atoi(argv[1]) : 0;
    int per_round = argc > 1 && atoi(argv[1]) >= 10 ? atoi(argv[1]) : 300;
    if (seconds >= 3) {
        per_round = 400000; /* room for a second of the fastest round trips */
    } else if (argc > 1 && strchr(argv[1], 's') != NULL) {
        fprintf(stderr,
                "bench: a round of Ns lasts N >= 3 seconds (ddsperf reports nothing for its first)\n");
        return 2;
    }
    int rounds = argc > 2 && atoi(argv[2]) >= 1 ? atoi(argv[2]) : 5;
    int load = argc > 3 ? atoi(argv[3]) : 0;
    placing place;
    if (placing_init(&place, argc > 4 ? argv[4] : "free") != 0) {
        fprintf(stderr, "bench: placement is free, same or cross (cross needs two CPUs)\n");
        return 2;
    }
    fx_env(CYCLONE_CONFIG);
    pid_t loaders[16];
    for (int i = 0; i < load && i < 16; i++) {
        if ((loaders[i] = fork()) == 0) {
            place_side(&place, i % 2);
            busy();
        }
    }
    place_side(&place, 0);
    fx f;
    if (fx_open(&f, ocps_test_component(), 1, NULL) != 0) {
        return 1;
    }
    char *csc[] = {OCPS_CSC, "--duplicate-check", "0", "1", NULL};
    place_side(&place, 1);
    fx_start_csc(&f, csc);
    place_side(&place, 0);
    double *rtt = calloc((size_t)per_round, sizeof *rtt);
    double *r_listener = calloc((size_t)rounds, sizeof *r_listener);
    double *r_waitset = calloc((size_t)rounds, sizeof *r_waitset);
    double *r_mixed = calloc((size_t)rounds, sizeof *r_mixed);
    double *r_chained = calloc((size_t)rounds, sizeof *r_chained);
    double *rtt_chained = calloc((size_t)per_round, sizeof *rtt_chained);
    int failures = 0;
    int ok = 1;
    if (seconds > 0) {
        printf(
            "SAL command round trip over DDS vs ddsperf ping-pong (full round trips, us), %d rounds of "
            "%d s of setLogLevel commands each way (the mean of the medians of seconds 2..%d; ddsperf -D %d: "
            "of its reports but the first), %d busy processes, placement %s:\n",
            rounds, seconds, seconds, seconds, load, argc > 4 ? argv[4] : "free");
    } else {
        printf(
            "SAL command round trip over DDS vs ddsperf ping-pong (full round trips, medians, us), %d rounds "
            "of %d setLogLevel commands, %d busy processes, placement %s:\n",
            rounds, per_round, load, argc > 4 ? argv[4] : "free");
    }
    for (int r = 0; r < rounds && ok; r++) {
        int dds_seconds = seconds > 0 ? seconds : 3;
        double listener = ddsperf_rtt(&place, dds_seconds, "listener", "listener");
        double waitset = ddsperf_rtt(&place, dds_seconds, "waitset", "waitset");
        double mixed = ddsperf_rtt(&place, dds_seconds, "waitset", "listener");
        if (listener <= 0 || waitset <= 0 || mixed <= 0) {
            printf("ddsperf could not be run (apt-get install cyclonedds-tools)\n");
            ok = 0;
            break;
        }
        int round_failures = 0; /* bench_command_loop counts from 0 */
        double median = 0, p90 = 0, chained = 0, chained_p90 = 0;
        if (seconds > 0) {
            if (bench_command_loop(&f, 5, r == 0 ? 50 : 5, rtt, &round_failures) != 0) { /* warm-up */
                ok = 0;
                break;
            }
            median = per_second_median(&f, seconds, false, rtt, per_round, &p90, &round_failures);
            chained =
                per_second_median(&f, seconds, true, rtt_chained, per_round, &chained_p90, &round_failures);
            if (median < 0 || chained < 0) {
                ok = 0;
                break;
            }
        } else {
            if (bench_command_loop(&f, per_round, r == 0 ? 50 : 5, rtt, &round_failures) != 0 ||
                chain_loop(&f, per_round, 5, 0, rtt_chained, &round_failures) != per_round) {
                ok = 0;
                break;
            }
            median = rtt[per_round / 2] * 1e6;
            p90 = rtt[per_round * 9 / 10] * 1e6;
            chained = rtt_chained[per_round / 2] * 1e6;
            chained_p90 = rtt_chained[per_round * 9 / 10] * 1e6;
        }
        failures += round_failures;
        r_chained[r] = chained / listener;
        r_listener[r] = median / listener;
        r_waitset[r] = median / waitset;
        r_mixed[r] = median / mixed;
        printf("  round %d: command %.1f (p90 %.1f), ddsperf listener %.1f, waitset %.1f, "
               "ping waitset + pong listener %.1f, command chained %.1f (p90 %.1f)\n",
               r + 1, median, p90, listener, waitset, mixed, chained, chained_p90);
    }
    const sal_stats *st = sal_get_stats(sal_remote_sal(f.remote));
    unsigned long long inline_reads = st->read_inline;
    unsigned long long queued_reads = st->read_queued;
    fx_close(&f);
    for (int i = 0; i < load && i < 16; i++) {
        kill(loaders[i], SIGKILL);
        waitpid(loaders[i], NULL, 0);
    }
    if (ok) {
        printf("  %d commands failed\n", failures);
        /* acks (and events) the Remote ran on its receive thread vs. through its loop */
        printf("  samples read by the Remote: %llu in the gate, %llu through the loop\n", inline_reads,
               queued_reads);
        bench_print_spread("  ratio command / ddsperf listener", r_listener, rounds);
        bench_print_spread("  ratio command / ddsperf waitset", r_waitset, rounds);
        bench_print_spread("  ratio command / ddsperf ping waitset + pong listener", r_mixed, rounds);
        bench_print_spread("  ratio command chained / ddsperf listener", r_chained, rounds);
    }
    free(rtt);
    free(r_listener);
    free(r_waitset);
    free(r_mixed);
    free(r_chained);
    free(rtt_chained);
    return ok ? 0 : 1;
}
