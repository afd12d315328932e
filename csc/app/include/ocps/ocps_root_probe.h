/*
 * ocps_root_probe.h - whether directories answer (a stat of each, on
 * libuv's thread pool), within a deadline, without ever blocking the loop:
 * the CSC's first start asks before it opens its engine, which touches its
 * work root and job store on the loop, so that a hung NFS mount fails the
 * start instead of stopping the heartbeat.
 */
#ifndef OCPS_ROOT_PROBE_H
#define OCPS_ROOT_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

typedef struct ocps_root_probe ocps_root_probe;

/* The answer: answered true if every path answered (whatever the answer:
 * a missing path answers too) within the deadline; else `path` is the one
 * still waited for. */
typedef void (*ocps_root_probe_cb)(void *arg, bool answered, const char *path);

/* Stat each of the n paths in turn on the thread pool; cb is called once,
 * on the loop: when all have answered, or `timeout` s after the start. 0,
 * or -1 with err (nothing started). */
int ocps_root_probe_start(ocps_root_probe **out, uv_loop_t *loop, const char *const *paths, size_t n,
                          double timeout, ocps_root_probe_cb cb, void *arg, char *err, size_t errlen);

/* Whether its stats are still on the thread pool (after a timeout: the
 * path has still not answered). */
bool ocps_root_probe_busy(const ocps_root_probe *p);

/* Whether a callback is still to come (armed, not yet answered). */
bool ocps_root_probe_waiting(const ocps_root_probe *p);

/* A busy probe that has called back (timed out): wait again, up to
 * `timeout` s from now, for the same stats, calling cb once as before. */
void ocps_root_probe_rearm(ocps_root_probe *p, double timeout, ocps_root_probe_cb cb, void *arg);

/* Seconds since p started. */
double ocps_root_probe_age(const ocps_root_probe *p);

/* The owner lets go of p (NULL: nothing; once only): no callback after this; p frees
 * itself once its stat is back from the pool (which may be never on a
 * mount that never answers: the process's exit does not wait for it). */
void ocps_root_probe_close(ocps_root_probe *p);

#endif
