/*
 * sal_clock.c - the monotonic clock (sal_clock.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "ocps/sal_clock.h"

#include <time.h>

double sal_clock_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
