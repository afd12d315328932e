/*
 * ocps_metrics.h - the CSC's optional Prometheus /metrics (text exposition
 * format 0.0.4; docs/deployment.md): served by libmicrohttpd on the CSC's
 * own loop (processing/uvmhd, as ocps-engine's API), never blocking it.
 * Everything is read at scrape time from counters kept where things
 * happen: the CSC (commands, acks, heartbeats), its SAL runtime (samples
 * written) and transport (errors), and the application (jobs, backends).
 */
#ifndef OCPS_METRICS_H
#define OCPS_METRICS_H

#include <stddef.h>

#include <uv.h>

#include "ocps/ocps_app.h"
#include "ocps/sal_csc.h"

typedef struct ocps_metrics ocps_metrics;

/* Listen on `listen` ("ADDR:PORT", "[IPv6]:PORT"; port 0 picks a free one;
 * any address, not only loopback) on `loop`. 0, or -1 with a message
 * naming `option` (the command line option or variable it came from). */
int ocps_metrics_open(ocps_metrics **out, uv_loop_t *loop, const char *listen, const char *option, char *err,
                      size_t errlen);

/* What to report on: the CSC, the application (either NULL: left out)
 * and the version of the program. Borrowed: clear them (NULL) or close
 * before they go. */
void ocps_metrics_set_sources(ocps_metrics *m, sal_csc *csc, ocps_app *app, const char *version);

/* The port listened on. */
unsigned ocps_metrics_port(const ocps_metrics *m);

/* The exposition text (malloc'd, NUL-terminated, length in *len), or NULL
 * (out of memory). */
char *ocps_metrics_render(const ocps_metrics *m, size_t *len);

/* Stop serving; freed on the loop once its handles have closed. NULL
 * does nothing. */
void ocps_metrics_close(ocps_metrics *m);

#endif
