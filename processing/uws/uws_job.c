/*
 * uws_job.c - job objects, job specs and result files of the UWS service
 * (see uws_job.h).
 */
#define _XOPEN_SOURCE 700
#include "ocps/uws_job.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void uws_job_output_dir(const char *workdir, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/" UWS_JOB_OUTPUT_SUBDIR, workdir);
}

void uws_job_source_dir(const char *workdir, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/src", workdir);
}

static int uws_env_add(json_t *env, const char *name, const char *value)
{
    return json_array_append_new(env, json_pack("{ssss}", "name", name, "value", value));
}

json_t *uws_job_meta(const uws_submit *s, const char *job_id, const char *workdir)
{
    char out[1100];
    char src[1100];
    uws_job_output_dir(workdir, out, sizeof out);
    uws_job_source_dir(workdir, src, sizeof src);
    json_t *env = json_array();
    if (env == NULL) {
        return NULL;
    }
    int rc = uws_env_add(env, "JOB_SOURCE_DIR", src);
    if (s->url != NULL) {
        rc |= uws_env_add(env, "SRC_GIT_URL", s->url);
        rc |= uws_env_add(env, "GIT_COMMIT_REF", s->commit_ref != NULL ? s->commit_ref : "");
    }
    rc |= uws_env_add(env, "JOB_OUTPUT_DIR", out);
    rc |= uws_env_add(env, "JOB_ID", job_id);
    rc |= json_array_extend(env, s->environment);
    json_t *meta = rc == 0 ? json_pack("{s{sssOsOsb}}", "uws", "run_id", s->run_id[0] ? s->run_id : job_id,
                                       "command", s->argv, "environment", env, "shell", s->shell)
                           : NULL;
    json_decref(env);
    return meta;
}

/* Runs before the job when a git url is given (the reference's init
 * container): every value comes from the environment, nothing from the
 * request is part of the script. */
static const char uws_clone_prelude[] =
    "export GIT_TERMINAL_PROMPT=0\n"
    "mkdir -p \"$JOB_OUTPUT_DIR\"\n"
    "git clone -- \"$SRC_GIT_URL\" \"$JOB_SOURCE_DIR\" ||"
    " echo \"ocps-engine: git clone failed; using what is in $JOB_SOURCE_DIR\" >&2\n"
    "if cd \"$JOB_SOURCE_DIR\" 2>/dev/null; then\n"
    "  git fetch -a; git reset --hard\n"
    "  if [ -n \"$GIT_COMMIT_REF\" ]; then git checkout \"$GIT_COMMIT_REF\" --; git pull; fi\n"
    "  cd \"$OLDPWD\" || exit 1\n"
    "fi\n"
    "exec \"$@\"\n";

json_t *uws_job_run_argv(const uws_submit *s)
{
    if (s->url == NULL) {
        return json_incref(s->argv);
    }
    json_t *argv = json_pack("[ssss]", "/bin/bash", "-c", uws_clone_prelude, "ocps-uws-job");
    if (argv != NULL && json_array_extend(argv, s->argv) != 0) {
        json_decref(argv);
        return NULL;
    }
    return argv;
}

/* ---- result files ------------------------------------------------------- */

/* Add the regular, non-hidden files under directory fd `dir` (path
 * `path`) to list, symbolic links not followed, depth bounded; false to
 * stop (enough files). Closes dir. */
static bool uws_walk(int dir, const char *path, int depth, json_t *list)
{
    DIR *d = fdopendir(dir);
    if (d == NULL) {
        close(dir);
        return true;
    }
    bool more = true;
    struct dirent *de;
    while (more && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue; /* ., .. and hidden files */
        }
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            continue;
        }
        char child[4096];
        if (snprintf(child, sizeof child, "%s/%s", path, de->d_name) >= (int)sizeof child) {
            continue;
        }
        if (S_ISREG(st.st_mode)) {
            more = json_array_size(list) < UWS_MAX_RESULTS * 4 &&
                   json_array_append_new(list, json_string(child)) == 0;
        } else if (S_ISDIR(st.st_mode) && depth < 32) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            more = sub < 0 || uws_walk(sub, child, depth + 1, list);
        }
    }
    closedir(d);
    return more;
}

static int uws_cmp_json_string(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

json_t *uws_job_results(const char *workdir)
{
    char out[1100];
    uws_job_output_dir(workdir, out, sizeof out);
    json_t *found = json_array();
    json_t *sorted = json_array();
    if (found == NULL || sorted == NULL) {
        json_decref(found);
        json_decref(sorted);
        return NULL;
    }
    int dir = open(out, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir >= 0) {
        uws_walk(dir, out, 0, found);
    }
    size_t n = json_array_size(found);
    json_t **items = n > 0 ? malloc(n * sizeof *items) : NULL;
    for (size_t i = 0; items != NULL && i < n; i++) {
        items[i] = json_array_get(found, i);
    }
    if (items != NULL) {
        qsort(items, n, sizeof *items, uws_cmp_json_string);
        for (size_t i = 0; i < n && i < UWS_MAX_RESULTS; i++) {
            json_array_append(sorted, items[i]);
        }
    }
    free(items);
    json_decref(found);
    return sorted;
}

/* ---- job object --------------------------------------------------------- */

/* Python's str() of a whole-second UTC datetime, or JSON null. */
static json_t *uws_time(double t)
{
    if (t <= 0) {
        return json_null();
    }
    time_t s = (time_t)floor(t);
    struct tm tm;
    char buf[64];
    gmtime_r(&s, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S+00:00", &tm);
    return json_string(buf);
}

json_t *uws_job_object(const engine_job *job, json_t *results)
{
    json_t *uws = json_object_get(job->meta, "uws");
    json_t *run_id = json_object_get(uws, "run_id");
    json_t *command = json_object_get(uws, "command");
    json_t *env = json_object_get(uws, "environment");
    bool ended = engine_phase_final(job->phase);
    json_t *duration =
        ended && job->started > 0 ? json_real(floor(job->ended) - floor(job->started)) : json_null();
    json_t *list = json_array();
    size_t i;
    json_t *path;
    json_array_foreach(results, i, path)
    {
        json_array_append_new(list, json_pack("{sIsO}", "id", (json_int_t)i, "uri", path));
    }
    bool failed = job->phase == ENGINE_ERROR || job->phase == ENGINE_ABORTED || job->phase == ENGINE_UNKNOWN;
    json_t *run = json_is_string(run_id) ? json_incref(run_id) : json_string(job->id);
    json_t *envs = json_is_array(env) ? json_incref(env) : json_array();
    return json_pack("{ss so ss ss so so so so sn s{sOso} so s{ss} s{sosssb}}", "jobId", job->id, "runId",
                     run, "ownerId", "", "phase", engine_phase_name(job->phase), "creationTime",
                     uws_time(job->created), "startTime", uws_time(job->started), "endTime",
                     uws_time(ended ? job->ended : 0), "executionDuration", duration, "destruction",
                     "parameters", "command", json_is_array(command) ? command : job->argv, "environment",
                     envs, "results", list, "errorSummary", "message", failed ? job->message : "", "jobInfo",
                     "exitCode", ended ? json_integer(job->exit_code) : json_null(), "reason",
                     engine_reason_name(job->reason), "shell", json_is_true(json_object_get(uws, "shell")));
}
