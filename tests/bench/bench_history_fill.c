/* bench_history_fill.c - see bench_history_fill.h. */
#include "bench_history_fill.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/stat.h>

#include <jansson.h>

#include "engine__store.h"
#include "test_util.h"

/* h jobs, ended and published, or queued (not started, not published). */
static int bench_fill(const char *store_path, const char *work_root, int h,
                      char (*ids)[ENGINE_JOB_ID_LEN + 1], bool queued)
{
    char err[512];
    engine_store *s;
    if (engine_store_open(&s, store_path, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    double t = (double)time(NULL) - 86400.0;
    int rc = 0;
    for (int i = 0; i < h && rc == 0; i++) {
        if (i % 1000 == 0 && (rc = engine_store_begin(s, err, sizeof err)) != 0) {
            break;
        }
        engine_store_record r;
        memset(&r, 0, sizeof r);
        engine_job *j = &r.job;
        memcpy(j->id, ids[i], sizeof j->id);
        char workdir[ENGINE_WORKDIR_MAX + 2];
        if (snprintf(workdir, sizeof workdir, "%s/%s", work_root, j->id) >= (int)sizeof workdir - 1) {
            snprintf(err, sizeof err, "work_root too long");
            rc = -1;
            break;
        }
        if (engine_store_set_workdir(j, workdir) != 0) {
            snprintf(err, sizeof err, "out of memory");
            rc = -1;
            break;
        }
        j->created = t + i;
        if (queued) {
            j->phase = ENGINE_QUEUED;
            j->exit_code = -1;
        } else {
            j->phase = ENGINE_COMPLETED;
            j->reason = ENGINE_REASON_SUCCESS;
            j->started = t + i + 0.1;
            j->ended = t + i + 0.5;
            j->exit_code = 0;
        }
        j->results = json_pack("[s]", "file:///repo/out.fits");
        j->results_total = 1;
        j->meta = json_pack("{s:s, s:i}", "pipeline", "cpBias.yaml", "seqNum", i);
        r.spec = json_pack("{s:[s], s:[], s:[], s:f, s:[], s:b}", "argv", "true", "env", "globs",
                           "max_duration", 0.0, "prereqs", "must_succeed", 1);
        rc = engine_store_insert(s, &r, err, sizeof err);
        if (rc == 0 && !queued) {
            rc = engine_store_mark_published(s, j->id, err, sizeof err);
        }
        engine_store_record_clear(&r);
        if (rc == 0 && (i % 1000 == 999 || i == h - 1)) {
            rc = engine_store_commit(s, err, sizeof err);
        }
    }
    if (rc != 0) {
        fprintf(stderr, "%s\n", err);
    }
    engine_store_close(s);
    return rc;
}

int bench_history_fill(const char *store_path, const char *work_root, int h,
                       char (*ids)[ENGINE_JOB_ID_LEN + 1])
{
    return bench_fill(store_path, work_root, h, ids, false);
}

int bench_queue_fill(const char *store_path, const char *work_root, int n, char (*ids)[ENGINE_JOB_ID_LEN + 1])
{
    return bench_fill(store_path, work_root, n, ids, true);
}

char *bench_fill_engine_dir(int n, bool queued, char (**ids)[ENGINE_JOB_ID_LEN + 1])
{
    *ids = calloc((size_t)n, sizeof **ids);
    char *root = tu_make_temp_dir();
    char *state_dir = root != NULL ? tu_path_join(root, "state") : NULL;
    char *work = root != NULL ? tu_path_join(root, "work") : NULL;
    char *store = state_dir != NULL ? tu_path_join(state_dir, "ocps-engine.sqlite") : NULL;
    int rc = *ids != NULL && store != NULL && work != NULL && mkdir(state_dir, 0755) == 0 ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        engine_new_job_id(NULL, (*ids)[i]);
    }
    if (rc == 0) {
        rc = bench_fill(store, work, n, *ids, queued);
    }
    if (rc != 0) {
        if (root != NULL) {
            tu_remove_tree(root);
        }
        free(root);
        root = NULL;
        free(*ids);
        *ids = NULL;
    }
    free(store);
    free(work);
    free(state_dir);
    return root;
}
