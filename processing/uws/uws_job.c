/*
 * uws_job.c - job objects, job specs and result files of the UWS service
 * (see uws_job.h).
 */
#define _XOPEN_SOURCE 700
#include "ocps/uws_job.h"

#include "ocps/json_text.h"

#include <dirent.h>
#include <errno.h>
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

/* {"name": name, "value": value} appended to env (name a constant, value
 * checked as UTF-8 as json_pack("{ssss}") did, without parsing a format
 * per item): 0, or -1 (also for a value that is not UTF-8). */
static int uws_env_add(json_t *env, const char *name, const char *value)
{
    json_t *item = json_object();
    json_t *v = json_string(value);
    if (item == NULL || v == NULL) {
        json_decref(item);
        json_decref(v);
        return -1;
    }
    int rc = json_object_set_new_nocheck(item, "name", json_string_nocheck(name));
    rc |= json_object_set_new_nocheck(item, "value", v);
    if (rc != 0) {
        json_decref(item);
        return -1;
    }
    return json_array_append_new(env, item);
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
    if (rc != 0) {
        json_decref(env);
        return NULL;
    }
    /* as json_pack("{s{sssOsOsb}}", "uws", "run_id", ..., "command", argv,
     * "environment", env, "shell", shell), key by key */
    json_t *uws = json_object();
    json_t *run_id = json_string(s->run_id[0] ? s->run_id : job_id);
    json_t *meta = json_object();
    if (uws == NULL || run_id == NULL || meta == NULL || s->argv == NULL) {
        json_decref(uws);
        json_decref(run_id);
        json_decref(meta);
        json_decref(env);
        return NULL;
    }
    /* each set steals its value, also when it fails */
    rc = json_object_set_new_nocheck(uws, "run_id", run_id);
    rc |= json_object_set_nocheck(uws, "command", s->argv);
    if (s->then_argv != NULL) { /* the extension: only a job given it has the key */
        rc |= json_object_set_nocheck(uws, "then_argv", s->then_argv);
    }
    rc |= json_object_set_new_nocheck(uws, "environment", env);
    rc |= json_object_set_new_nocheck(uws, "shell", json_boolean(s->shell));
    rc |= json_object_set_new_nocheck(meta, "uws", uws);
    if (rc != 0) {
        json_decref(meta);
        return NULL;
    }
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

/* The second step runs in the job's output directory, whose files are
 * its results (a retrieval writing to "." makes them results). */
static const char uws_then_prelude[] = "cd -- \"$JOB_OUTPUT_DIR\" || exit 1\nexec \"$@\"\n";

json_t *uws_job_run_then(const uws_submit *s)
{
    json_t *argv = json_pack("[ssss]", "/bin/sh", "-c", uws_then_prelude, "ocps-uws-then");
    if (argv != NULL && json_array_extend(argv, s->then_argv) != 0) {
        json_decref(argv);
        return NULL;
    }
    return argv;
}

/* ---- result files ------------------------------------------------------- */

/* The directories a walk read, with what a later stat compares. */
#define UWS_STAMP_MAX_DIRS 16

typedef struct uws_stamp_dir {
    char *path;
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
} uws_stamp_dir;

struct uws_results_stamp {
    bool absent; /* the output directory did not exist */
    size_t n;
    uws_stamp_dir dirs[UWS_STAMP_MAX_DIRS];
    bool usable; /* false: too many directories, or one changed too recently */
};

/* A directory modified this close to the walk (or later: another clock)
 * may change again within the same timestamp tick: not trusted. */
#define UWS_STAMP_RACY_SECONDS 0.1

static double uws_realtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Record directory fd `dir` (path `path`) into the stamp, before it is read. */
static void uws_stamp_add(uws_results_stamp *st, int dir, const char *path, double t0)
{
    struct stat sb;
    if (st == NULL || !st->usable) {
        return;
    }
    if (st->n == UWS_STAMP_MAX_DIRS || fstat(dir, &sb) != 0 ||
        (double)sb.st_mtim.tv_sec + (double)sb.st_mtim.tv_nsec / 1e9 > t0 - UWS_STAMP_RACY_SECONDS ||
        (st->dirs[st->n].path = strdup(path)) == NULL) {
        st->usable = false;
        return;
    }
    st->dirs[st->n].dev = sb.st_dev;
    st->dirs[st->n].ino = sb.st_ino;
    st->dirs[st->n].mtime = sb.st_mtim;
    st->n++;
}

/* Append result file `path` to list; false to stop the walk (enough files,
 * or out of memory). A path that is not valid UTF-8 cannot be a JSON
 * string: it is left out and the walk goes on (one such name must not hide
 * the others). */
static bool uws_walk_add(json_t *list, const char *path)
{
    if (!uws_utf8_valid(path)) {
        return true;
    }
    return json_array_size(list) < UWS_MAX_RESULTS * 4 && json_array_append_new(list, json_string(path)) == 0;
}

/* Add the regular, non-hidden files under directory fd `dir` (path
 * `path`) to list, hidden directories too (as the reference's os.walk),
 * symbolic links not followed, depth bounded; false to
 * stop (enough files). Closes dir. Records the directory in st (may be
 * NULL) before reading it. */
static bool uws_walk(int dir, const char *path, int depth, json_t *list, uws_results_stamp *st, double t0)
{
    uws_stamp_add(st, dir, path, t0);
    DIR *d = fdopendir(dir);
    if (d == NULL) {
        close(dir);
        if (st != NULL) {
            st->usable = false;
        }
        return true;
    }
    bool more = true;
    struct dirent *de;
    while (more && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
            (de->d_name[0] == '.' && !S_ISDIR(sb.st_mode))) {
            continue; /* hidden files */
        }
        char child[4096];
        if (snprintf(child, sizeof child, "%s/%s", path, de->d_name) >= (int)sizeof child) {
            continue;
        }
        if (S_ISREG(sb.st_mode)) {
            more = uws_walk_add(list, child);
        } else if (S_ISDIR(sb.st_mode) && depth < 32) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0 && st != NULL) {
                st->usable = false;
            }
            more = sub < 0 || uws_walk(sub, child, depth + 1, list, st, t0);
        }
    }
    closedir(d);
    if (!more && st != NULL) {
        st->usable = false; /* stopped early: some directories were not read */
    }
    return more;
}

static int uws_cmp_json_string(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

json_t *uws_job_results_stamped(const char *workdir, uws_results_stamp **stamp)
{
    char out[1100];
    uws_job_output_dir(workdir, out, sizeof out);
    uws_results_stamp *st = NULL;
    if (stamp != NULL) {
        *stamp = NULL;
        if ((st = calloc(1, sizeof *st)) != NULL) {
            st->usable = true;
        }
    }
    json_t *found = json_array();
    json_t *sorted = json_array();
    if (found == NULL || sorted == NULL) {
        json_decref(found);
        json_decref(sorted);
        uws_results_stamp_free(st);
        return NULL;
    }
    double t0 = uws_realtime();
    int dir = open(out, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir >= 0) {
        uws_walk(dir, out, 0, found, st, t0);
    } else if (st != NULL) {
        st->absent = errno == ENOENT;
        st->usable = st->absent && (st->dirs[0].path = strdup(out)) != NULL;
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
    } else if (n > 0 && st != NULL) {
        st->usable = false;
    }
    free(items);
    json_decref(found);
    if (st != NULL && st->usable) {
        *stamp = st;
    } else {
        uws_results_stamp_free(st);
    }
    return sorted;
}

json_t *uws_job_results(const char *workdir)
{
    return uws_job_results_stamped(workdir, NULL);
}

bool uws_job_has_files(const engine_job *job)
{
    if (job->phase == ENGINE_QUEUED || job->phase == ENGINE_PENDING) {
        return false;
    }
    return !engine_phase_final(job->phase) || job->started > 0;
}

json_t *uws_job_results_of(const engine_job *job)
{
    return uws_job_has_files(job) ? uws_job_results(job->workdir) : json_array();
}

bool uws_results_unchanged(const uws_results_stamp *st)
{
    struct stat sb;
    if (st->absent) {
        return stat(st->dirs[0].path, &sb) != 0 && errno == ENOENT;
    }
    for (size_t i = 0; i < st->n; i++) {
        const uws_stamp_dir *d = &st->dirs[i];
        if (lstat(d->path, &sb) != 0 || !S_ISDIR(sb.st_mode) || sb.st_dev != d->dev || sb.st_ino != d->ino ||
            sb.st_mtim.tv_sec != d->mtime.tv_sec || sb.st_mtim.tv_nsec != d->mtime.tv_nsec) {
            return false;
        }
    }
    return true;
}

void uws_results_stamp_free(uws_results_stamp *st)
{
    if (st == NULL) {
        return;
    }
    for (size_t i = 0; i < UWS_STAMP_MAX_DIRS; i++) {
        free(st->dirs[i].path); /* NULL past the last (the absent one's path in dirs[0]) */
    }
    free(st);
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

const char *uws_job_run_id(const engine_job *job)
{
    const char *run_id = json_string_value(json_object_get(json_object_get(job->meta, "uws"), "run_id"));
    return run_id != NULL ? run_id : job->id;
}

json_t *uws_job_object(const engine_job *job, json_t *results)
{
    json_t *uws = json_object_get(job->meta, "uws");
    json_t *run_id = json_object_get(uws, "run_id");
    json_t *command = json_object_get(uws, "command");
    json_t *then = json_object_get(uws, "then_argv");
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
    json_t *rss = ended && job->max_rss_kb >= 0 ? json_integer((json_int_t)job->max_rss_kb) : json_null();
    /* {"command", "then_argv" (the extension, only when given), "environment"} */
    json_t *params = json_object();
    json_t *cmd = json_is_array(command) ? command : job->argv;
    if (params != NULL && (cmd == NULL || json_object_set_nocheck(params, "command", cmd) != 0 ||
                           (json_is_array(then) && json_object_set_nocheck(params, "then_argv", then) != 0) ||
                           json_object_set_nocheck(params, "environment", envs) != 0)) {
        json_decref(params);
        params = NULL; /* json_pack fails on it, as it did on a NULL command */
    }
    json_decref(envs);
    return json_pack(
        "{ss so ss ss so so so so sn so so s{ss} s{sosssbso}}", "jobId", job->id, "runId", run, "ownerId", "",
        "phase", engine_phase_name(job->phase), "creationTime", uws_time(job->created), "startTime",
        uws_time(job->started), "endTime", uws_time(ended ? job->ended : 0), "executionDuration", duration,
        "destruction", "parameters", params, "results", list, "errorSummary", "message",
        failed ? job->message : "", "jobInfo", "exitCode", ended ? json_integer(job->exit_code) : json_null(),
        "reason", engine_reason_name(job->reason), "shell", json_is_true(json_object_get(uws, "shell")),
        "maxRssKb", rss);
}

/* ---- job object as text ------------------------------------------------- */

/* "key": (indented one level deeper than depth - 1). */
static void uws_text_key(json_text_buf *b, const char *key, int depth, bool first)
{
    if (!first) {
        json_text_raw(b, ",", 1);
    }
    json_text_indent(b, depth);
    json_text_str(b, key, strlen(key));
    json_text_raw(b, ": ", 2);
}

static void uws_text_cstr(json_text_buf *b, const char *s)
{
    json_text_str(b, s, strlen(s));
}

/* uws_time as text. */
static void uws_text_time(json_text_buf *b, double t)
{
    if (t <= 0) {
        json_text_raw(b, "null", 4);
        return;
    }
    time_t s = (time_t)floor(t);
    struct tm tm;
    char buf[64];
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S+00:00", &tm);
    json_text_str(b, buf, n);
}

bool uws_job_text_at(json_text_buf *b, const engine_job *job, json_t *results, int depth)
{
    json_t *uws = json_object_get(job->meta, "uws");
    json_t *run_id = json_object_get(uws, "run_id");
    json_t *command = json_object_get(uws, "command");
    json_t *then = json_object_get(uws, "then_argv");
    json_t *env = json_object_get(uws, "environment");
    bool ended = engine_phase_final(job->phase);
    bool failed = job->phase == ENGINE_ERROR || job->phase == ENGINE_ABORTED || job->phase == ENGINE_UNKNOWN;
    json_t *cmd = json_is_array(command) ? command : job->argv;
    /* what json_pack refuses (uws_job_object: NULL) is left to it */
    json_t *message = json_string(failed ? job->message : "");
    if (cmd == NULL || message == NULL) {
        json_decref(message);
        return false;
    }
    json_text_raw(b, "{", 1);
    uws_text_key(b, "jobId", depth + 1, true);
    uws_text_cstr(b, job->id);
    uws_text_key(b, "runId", depth + 1, false);
    if (json_is_string(run_id)) {
        json_text_value_at(b, run_id, depth + 1);
    } else {
        uws_text_cstr(b, job->id);
    }
    uws_text_key(b, "ownerId", depth + 1, false);
    json_text_raw(b, "\"\"", 2);
    uws_text_key(b, "phase", depth + 1, false);
    uws_text_cstr(b, engine_phase_name(job->phase));
    uws_text_key(b, "creationTime", depth + 1, false);
    uws_text_time(b, job->created);
    uws_text_key(b, "startTime", depth + 1, false);
    uws_text_time(b, job->started);
    uws_text_key(b, "endTime", depth + 1, false);
    uws_text_time(b, ended ? job->ended : 0);
    uws_text_key(b, "executionDuration", depth + 1, false);
    if (ended && job->started > 0) {
        json_text_real_value(b, floor(job->ended) - floor(job->started));
    } else {
        json_text_raw(b, "null", 4);
    }
    uws_text_key(b, "destruction", depth + 1, false);
    json_text_raw(b, "null", 4);
    uws_text_key(b, "parameters", depth + 1, false);
    json_text_raw(b, "{", 1);
    uws_text_key(b, "command", depth + 2, true);
    json_text_value_at(b, cmd, depth + 2);
    if (json_is_array(then)) {
        uws_text_key(b, "then_argv", depth + 2, false);
        json_text_value_at(b, then, depth + 2);
    }
    uws_text_key(b, "environment", depth + 2, false);
    if (json_is_array(env)) {
        json_text_value_at(b, env, depth + 2);
    } else {
        json_text_raw(b, "[]", 2);
    }
    json_text_indent(b, depth + 1);
    json_text_raw(b, "}", 1);
    uws_text_key(b, "results", depth + 1, false);
    size_t n = json_array_size(results);
    json_text_raw(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        json_text_indent(b, depth + 2);
        json_text_raw(b, "{", 1);
        uws_text_key(b, "id", depth + 3, true);
        json_text_raw(b, id, (size_t)snprintf(id, sizeof id, "%zu", i));
        uws_text_key(b, "uri", depth + 3, false);
        json_text_value_at(b, json_array_get(results, i), depth + 3);
        json_text_indent(b, depth + 2);
        json_text_raw(b, i + 1 < n ? "}," : "}", i + 1 < n ? 2 : 1);
    }
    if (n > 0) {
        json_text_indent(b, depth + 1);
    }
    json_text_raw(b, "]", 1);
    uws_text_key(b, "errorSummary", depth + 1, false);
    json_text_raw(b, "{", 1);
    uws_text_key(b, "message", depth + 2, true);
    json_text_value_at(b, message, depth + 2);
    json_text_indent(b, depth + 1);
    json_text_raw(b, "}", 1);
    uws_text_key(b, "jobInfo", depth + 1, false);
    json_text_raw(b, "{", 1);
    uws_text_key(b, "exitCode", depth + 2, true);
    if (ended) {
        char code[32];
        json_text_raw(b, code, (size_t)snprintf(code, sizeof code, "%d", job->exit_code));
    } else {
        json_text_raw(b, "null", 4);
    }
    uws_text_key(b, "reason", depth + 2, false);
    uws_text_cstr(b, engine_reason_name(job->reason));
    uws_text_key(b, "shell", depth + 2, false);
    if (json_is_true(json_object_get(uws, "shell"))) {
        json_text_raw(b, "true", 4);
    } else {
        json_text_raw(b, "false", 5);
    }
    uws_text_key(b, "maxRssKb", depth + 2, false);
    if (ended && job->max_rss_kb >= 0) {
        char kb[32];
        json_text_raw(b, kb, (size_t)snprintf(kb, sizeof kb, "%lld", job->max_rss_kb));
    } else {
        json_text_raw(b, "null", 4);
    }
    json_text_indent(b, depth + 1);
    json_text_raw(b, "}", 1);
    json_text_indent(b, depth);
    json_text_raw(b, "}", 1);
    json_decref(message);
    return true;
}

char *uws_job_text(const engine_job *job, json_t *results, size_t *len)
{
    json_text_buf b = {.indent = 2};
    if (!uws_job_text_at(&b, job, results, 0)) {
        return NULL;
    }
    return json_text_finish(&b, len);
}
