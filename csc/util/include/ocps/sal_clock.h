/*
 * sal_clock.h - the monotonic clock, for deadlines and waits that must not
 * move with the wall clock.
 */
#ifndef SAL_CLOCK_H
#define SAL_CLOCK_H

/* CLOCK_MONOTONIC in seconds. */
double sal_clock_monotonic(void);

#endif
