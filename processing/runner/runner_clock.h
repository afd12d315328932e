/*
 * runner_clock.h - the runner's monotonic clock.
 */
#ifndef RUNNER_CLOCK_H
#define RUNNER_CLOCK_H

#include <time.h>

/* CLOCK_MONOTONIC in seconds. */
static inline double runner_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
