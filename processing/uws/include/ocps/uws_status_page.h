/*
 * uws_status_page.h - ocps-engine's job status pages: plain HTML with
 * inline CSS, no script, refreshing itself every 5 s. Every job field is
 * user input and is escaped (&<>"').
 *
 *   the list: live jobs and a page of ended ones, newest first, with
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
#include <stdint.h>

#include "ocps/engine.h"

/* Ended jobs listed per page (newest first); live ones listed at most. */
#define UWS_PAGE_MAX_ENDED 50
#define UWS_PAGE_MAX_LIVE 200
/* Bytes of the end of a job's log shown on its page. */
#define UWS_PAGE_LOG_TAIL 16384

/* Jobs the page must not show (e.g. being deleted). */
typedef bool (*uws_page_hidden_cb)(void *arg, const char *job_id);

/* The list page (malloc'd HTML, length in *len). With before == 0: the
 * live jobs (from memory, at most UWS_PAGE_MAX_LIVE) and the newest
 * UWS_PAGE_MAX_ENDED ended ones; else only the ended jobs created before
 * that cursor. Each page links the next one (/status?before=CURSOR) when
 * there are older jobs. One bounded read of the store, whatever the length
 * of the history. NULL with a message on failure. */
char *uws_page_jobs(engine *e, int64_t before, const char *page_prefix, uws_page_hidden_cb hidden, void *arg,
                    size_t *len, char *err, size_t errlen);

/* What the page of one job shows but its files, copied out of the engine
 * (which may change or forget the job meanwhile). */
typedef struct uws_job_page uws_job_page;

/* A snapshot of `job` for its page; NULL if out of memory. Its result
 * links are under `base_path`, its links to status pages under
 * `page_prefix` (where the page was asked for: "" at the root). */
uws_job_page *uws_job_page_new(const engine_job *job, const char *base_path, const char *page_prefix);

/* The page (malloc'd HTML, length in *len): reads the tail of the job's
 * log and lists its result files, blocking file I/O meant for the thread
 * pool (it touches nothing but p). NULL if out of memory. */
char *uws_job_page_render(const uws_job_page *p, size_t *len);

/* Free a snapshot (NULL allowed). */
void uws_job_page_free(uws_job_page *p);

/* `s` with &<>"' replaced by entities, into out (truncated to outlen). */
void uws_html_escape(const char *s, char *out, size_t outlen);

#endif
