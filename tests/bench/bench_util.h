/*
 * bench_util.h - what the benchmarks share: a timed loop of sequential
 * commands against a CSC, and sorting samples.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include "sal_fixture.h"

/* Wait for the CSC behind f, then send `warmup` untimed and n timed
 * sequential setLogLevel commands, each from write to final ack; the
 * times (seconds) go into rtt[0..n), sorted ascending; *failures counts
 * acks other than CMD_COMPLETE. -1 if the CSC could not be reached. */
int bench_command_loop(fx *f, int n, int warmup, double *rtt, int *failures);

/* Sequential setLogLevel commands as bench_command_loop (no warm-up), as
 * many as are written before stop_at (tu_now() seconds), at most cap; the
 * number timed, their times sorted in rtt; -1 if the CSC could not be
 * reached. */
int bench_command_loop_until(fx *f, double stop_at, int cap, double *rtt, int *failures);

/* Fills command `name`'s sample for the i-th command (i < 0: warm-up). */
typedef void bench_fill_fn(fx *f, const sal_topic_info *topic, void *sample, int i, void *arg);

/* Like bench_command_loop for any command: its ready topic is waited for
 * (with a summaryState) and fill(arg) sets each command's fields. */
int bench_command_loop_with(fx *f, const char *name, bench_fill_fn *fill, void *arg, int n, int warmup,
                            double *rtt, int *failures);

/* The wall clock (CLOCK_REALTIME) in seconds: comparable with the times
 * other processes write (a job's invocation.json). */
double bench_wall_time(void);

/* Sort v ascending; its mean. */
double bench_sort(double *v, int n);

/* Sort v ascending and print "<label>: min M, median M, max M" (n >= 1). */
void bench_print_spread(const char *label, double *v, int n);

#endif
