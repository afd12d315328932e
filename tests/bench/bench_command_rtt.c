/*
 * bench_command_rtt: sequential SAL command round trip over DDS (command
 * write -> final ack read) against an ocps-csc process, next to Cyclone's
 * own ddsperf ping-pong round trip measured in the same run on the same
 * loopback configuration. Prints both and their ratio; never fails on
 * timing.
 *
 *   bench_command_rtt [N]     (default 1000 commands)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ocps_test_iface.h"
#include "ocps/sal_csc.h"
#include "bench_util.h"
#include "sal_fixture.h"
#include "test_util.h"

/* Mean ping-pong round trip (microseconds) reported by ddsperf, skipping
 * its first report; -1 if ddsperf could not be run. mode is "listener"
 * (answer on Cyclone's receive thread) or "waitset" (on a thread of its
 * own, as an application with an event loop does). */
static double ddsperf_rtt(double seconds, char *mode)
{
    char dur[16];
    snprintf(dur, sizeof dur, "%d", (int)seconds + 2);
    char *pong[] = {"ddsperf", "-D", dur, "pong", mode, NULL};
    int pong_pid = tu_spawn(pong, "/dev/null");
    snprintf(dur, sizeof dur, "%d", (int)seconds);
    char *ping[] = {"ddsperf", "-D", dur, "ping", mode, NULL};
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
        char *m = strstr(line, " mean ");
        if (m != NULL && strstr(line, " size ") != NULL && seen++ > 0) {
            sum += atof(m + 6);
            n++;
        }
    }
    free(out);
    return n > 0 ? sum / n : -1;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    if (n < 10) {
        n = 10;
    }
    fx_env(CYCLONE_CONFIG);
    fx f;
    if (fx_open(&f, ocps_test_component(), 1, NULL) != 0) {
        return 1;
    }
    char *csc[] = {OCPS_CSC, "--duplicate-check", "0", "1", NULL};
    fx_start_csc(&f, csc);
    double *rtt = calloc((size_t)n, sizeof *rtt);
    int failures = 0;
    if (bench_command_loop(&f, n, 50, rtt, &failures) != 0) {
        fx_close(&f);
        return 1;
    }
    fx_close(&f);
    double mean = bench_sort(rtt, n) * 1e6;
    for (int i = 0; i < n; i++) {
        rtt[i] *= 1e6; /* microseconds */
    }
    double ping = ddsperf_rtt(5, "listener");
    double ping_ws = ddsperf_rtt(5, "waitset");
    printf("SAL command round trip over DDS, %d sequential setLogLevel commands (%d failed):\n", n, failures);
    printf("  mean %.1f us, median %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us\n", mean, rtt[n / 2],
           rtt[n * 9 / 10], rtt[n * 99 / 100], rtt[n - 1]);
    if (ping > 0 && ping_ws > 0) {
        printf("ddsperf ping-pong round trip (same machine, same Cyclone configuration):\n");
        printf("  listener mode %.1f us, waitset mode %.1f us\n", ping, ping_ws);
        printf("ratio command/ddsperf listener: mean %.2f, median %.2f\n", mean / ping, rtt[n / 2] / ping);
        printf("ratio command/ddsperf waitset:  mean %.2f, median %.2f\n", mean / ping_ws,
               rtt[n / 2] / ping_ws);
    } else {
        printf("ddsperf could not be run (apt-get install cyclonedds-tools)\n");
    }
    free(rtt);
    return 0;
}
