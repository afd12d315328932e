/*
 * ocps_ra.h - the Rapid Analysis backend of index 101 (RA): execute's
 * config, a JSON object, becomes one LPUSH per key/value on the Rapid
 * Analysis Redis (REDIS_HOST, REDIS_PORT, REDIS_PASSWORD), in the object's
 * order, as the Python OCPS does. Each execute gets a job id (INPROGRESS,
 * the job_id event) and a job_result listing the keys pushed and the
 * lists' lengths; optionally it waits for Rapid Analysis's completion
 * record of a donut pair (HSET <INSTRUMENT>_WEP_PROCESSING_RESULT).
 * Redis is used through ocps_redis: nothing here blocks the loop.
 */
#ifndef OCPS_RA_H
#define OCPS_RA_H

#include <stddef.h>

#include <jansson.h>
#include <uv.h>

#include "ocps/ocps_topics.h"
#include "ocps/sal_csc.h"

typedef struct ocps_ra ocps_ra;

/* The SAL index served by this backend. */
#define OCPS_RA_INDEX 101

/* Create the backend for `csc` (the CSC's loop, its component and
 * resolved topics, which must outlive it). Nothing is connected yet. */
int ocps_ra_open(ocps_ra **out, uv_loop_t *loop, sal_csc *csc, const sal_component_info *comp,
                 const ocps_topics *tp, char *err, size_t errlen);

/* The CSC's configure hook for index 101: reads the rapid_analysis block
 * of the validated configuration and the REDIS_* environment (a missing
 * variable fails at once, naming it), then connects, AUTHs and PINGs
 * without blocking: returns SAL_CONFIGURE_PENDING and ends the start
 * later with sal_csc_configure_done (failure: the reason). */
int ocps_ra_configure(ocps_ra *ra, json_t *config, char *err, size_t errlen);

/* execute on index 101 (`config` is the command's config field): answers
 * cmd now (validation, Redis down) or once Redis has acknowledged every
 * push (and, if configured, the completion record has come). */
void ocps_ra_execute(ocps_ra *ra, sal_cmd *cmd, const char *config);

/* abort_job on index 101: fails with a reason saying there is nothing to
 * abort. */
void ocps_ra_abort_job(ocps_ra *ra, sal_cmd *cmd, const char *job_id);

/* Called once a closed backend has been freed. */
/* Redis as last seen: 1 connected, 0 not, -1 not configured yet. */
int ocps_ra_redis_up(const ocps_ra *ra);

typedef void (*ocps_ra_close_cb)(void *arg);

/* Close: commands in flight are released (the CSC is stopping), the Redis
 * client closes; `ra` is freed on the loop, then cb(arg) (cb may be NULL). */
void ocps_ra_close(ocps_ra *ra, ocps_ra_close_cb cb, void *arg);

#endif
