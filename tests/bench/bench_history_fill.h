/*
 * bench_history_fill.h - fill a job store with ended, published jobs, as
 * a long-running engine leaves its history (the history benches), or
 * with queued jobs, as a burst of submissions leaves the queue.
 */
#ifndef BENCH_HISTORY_FILL_H
#define BENCH_HISTORY_FILL_H

#include <stdbool.h>

#include "ocps/engine.h"

/* Insert h ended (COMPLETED), published jobs with ids ids[0..h) into the
 * store at store_path (created if needed), their directories named under
 * work_root (not made); 0, or -1 with a message on stderr. */
int bench_history_fill(const char *store_path, const char *work_root, int h,
                       char (*ids)[ENGINE_JOB_ID_LEN + 1]);

/* Insert n QUEUED jobs (not started, not published) likewise, in order. */
int bench_queue_fill(const char *store_path, const char *work_root, int n,
                     char (*ids)[ENGINE_JOB_ID_LEN + 1]);

/* A new temporary directory (malloc'd; NULL on failure) with an engine's
 * store, state/ocps-engine.sqlite, of n jobs: ended and published
 * (queued false) or queued, their directories named under work/ (not
 * made); their ids, in creation order, in *ids (malloc'd). For a test that
 * starts ocps-engine on a long history or queue (uws_fx_start). */
char *bench_fill_engine_dir(int n, bool queued, char (**ids)[ENGINE_JOB_ID_LEN + 1]);

#endif
