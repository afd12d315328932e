/*
 * uws_status_page.h - ocps-engine's job status pages: plain HTML with
 * inline CSS, no script, refreshing itself every 5 s. Every job field is
 * user input and is escaped (&<>"').
 *
 *   the list: live jobs and the most recent ended ones (bounded), with
 *             phase badge, run id, pipeline or command, query, times,
 *             durations, exit code and reason;
 *   a job:    the same details, the tail of its ocps.log, links to its
 *             outputs (GET {base}/job/result/{id}/{index}) and a picture of
 *             each PNG output (quick-look previews).
 */
#ifndef UWS_STATUS_PAGE_H
#define UWS_STATUS_PAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "ocps/engine.h"

/* Ended jobs listed at most (newest first); live ones listed at most. */
#define UWS_PAGE_MAX_ENDED 50
#define UWS_PAGE_MAX_LIVE 200
/* Bytes of the end of a job's log shown on its page. */
#define UWS_PAGE_LOG_TAIL 16384

/* Jobs the page must not show (e.g. being deleted). */
typedef bool (*uws_page_hidden_cb)(void *arg, const char *job_id);

/* The list page (malloc'd HTML, length in *len): one read of the store.
 * NULL with a message on failure. */
char *uws_page_jobs(engine *e, const char *base_path, uws_page_hidden_cb hidden, void *arg, size_t *len,
                    char *err, size_t errlen);

/* The page of one job (malloc'd HTML, length in *len), reading the tail of
 * its log and listing its result files. NULL if out of memory. */
char *uws_page_job(const engine_job *job, const char *base_path, size_t *len);

/* `s` with &<>"' replaced by entities, into out (truncated to outlen). */
void uws_html_escape(const char *s, char *out, size_t outlen);

#endif
