/*
 * uws_metrics.h - ocps-engine's Prometheus metrics (text exposition format
 * 0.0.4, see docs/uws.md): counters and a histogram updated as events
 * happen (a submission, a job ending, a request answered), so that a
 * scrape costs no store read and no walk of the history.
 */
#ifndef UWS_METRICS_H
#define UWS_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "ocps/engine.h"

typedef struct uws_metrics uws_metrics;

/* A new set of metrics (all zero, start time now), or NULL (out of memory). */
uws_metrics *uws_metrics_new(void);

/* Free the metrics (NULL allowed). */
void uws_metrics_free(uws_metrics *m);

/* Count a job found in the store at start-up (ended jobs whose end the
 * engine reports again are counted when it does). */
void uws_metrics_job_seed(uws_metrics *m, const engine_job *job);

/* A job was submitted. */
void uws_metrics_job_submitted(uws_metrics *m);

/* A job reached a final phase (its duration goes into the histogram). */
void uws_metrics_job_ended(uws_metrics *m, const engine_job *job);

/* An ended job in `phase` was deleted (it leaves the phase gauge). */
void uws_metrics_job_forgotten(uws_metrics *m, engine_phase phase);

/* A request was answered: `route` a fixed route name, `method` as sent
 * (unknown methods are counted as "other"), `status` the HTTP status. */
void uws_metrics_request(uws_metrics *m, const char *route, const char *method, unsigned status);

/* The outcome of the latest store access (a failure sets the store gauge to 0). */
void uws_metrics_store(uws_metrics *m, bool ok);

/* The exposition text (malloc'd, NUL-terminated, length in *len), with the
 * live phases read from the engine's memory; NULL if out of memory. */
char *uws_metrics_render(const uws_metrics *m, const engine *e, size_t *len);

#endif
