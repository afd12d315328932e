/*
 * ocps-pipetask - the OCPS's own `pipetask run` on butler-lite (issue 12):
 *
 *   ocps-pipetask [--long-log] run -b REPO_OR_LABEL -p PIPELINE -i INPUTS -o OUTPUT -d QUERY
 *                 [--output-run RUN] [-j N] [-c label:field=value]...
 *
 * Writes metrics.json in the current directory (also on failure, with the
 * error), prints the outputs, exits 0 on success, 1 when the run failed,
 * 2 on a command-line or pipeline error. See docs/pipetask.md.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ocps/pipetask.h"

#define MAX_OVERRIDES 64

static void usage(FILE *f)
{
    fprintf(
        f, "usage: ocps-pipetask [--long-log] run -b REPO_OR_LABEL -p PIPELINE -i INPUTS -o OUTPUT -d QUERY\n"
           "                     [--output-run RUN] [-j N] [-c label:field=value]...\n"
           "  -b, --butler-config  repository path or label ($DAF_BUTLER_REPOSITORY_INDEX)\n"
           "  -p, --pipeline       pipeline file, or a shipped pipeline by name (cpBias.yaml, cpDark.yaml,\n"
           "                       cpFlat.yaml, isr.yaml, quickLook.yaml); $OCPS_PIPELINE_PATH is searched "
           "first\n"
           "  -i, --input          input collections, comma-separated (repeatable), searched in order\n"
           "  -o, --output         output CHAINED collection (chains the run and the inputs)\n"
           "  --output-run         output RUN collection (default OUTPUT/run)\n"
           "  -d, --data-query     Butler --where expression selecting the raws\n"
           "  -j, --processes      data units processed in parallel (default 1)\n"
           "  -c, --config         task config override label:field=value (repeatable)\n"
           "Writes metrics.json in the current directory. Exit status 0 on success, 1 if the run failed,\n"
           "2 on a command-line or pipeline error.\n");
}

typedef struct args {
    const char *repo, *pipeline, *output, *output_run, *query;
    char *inputs[PT_MAX_INPUTS];
    size_t n_inputs;
    char input_buf[8192];
    size_t input_used;
    const char *overrides[MAX_OVERRIDES];
    size_t n_overrides;
    int jobs;
} args;

static int add_inputs(args *a, const char *list, char *err, size_t errlen)
{
    size_t len = strlen(list);
    if (a->input_used + len + 1 > sizeof a->input_buf) {
        snprintf(err, errlen, "-i: too many input collections");
        return -1;
    }
    char *copy = a->input_buf + a->input_used;
    memcpy(copy, list, len + 1);
    a->input_used += len + 1;
    for (char *save = NULL, *c = strtok_r(copy, ",", &save); c != NULL; c = strtok_r(NULL, ",", &save)) {
        while (*c == ' ') {
            c++;
        }
        if (*c == '\0') {
            continue;
        }
        if (a->n_inputs == PT_MAX_INPUTS) {
            snprintf(err, errlen, "-i: more than %d input collections", PT_MAX_INPUTS);
            return -1;
        }
        a->inputs[a->n_inputs++] = c;
    }
    return 0;
}

/* Options that take a value, by short and long name. */
static const struct {
    const char *s, *l;
    char key;
} valued[] = {
    {"-b", "--butler-config", 'b'}, {"-p", "--pipeline", 'p'},   {"-i", "--input", 'i'},
    {"-o", "--output", 'o'},        {NULL, "--output-run", 'r'}, {"-d", "--data-query", 'd'},
    {"-j", "--processes", 'j'},     {"-c", "--config", 'c'},     {NULL, "--log-level", 'L'},
};
/* Flags accepted for compatibility with pipetask's command line and
 * ignored: the first quietly (dataset types are registered as needed), the
 * others with a warning (an existing output run is still refused, so
 * there is nothing they could extend, clobber, skip or replace). */
static const char *const ignored_flags[] = {"--long-log", "--register-dataset-types", "--no-versions", NULL};
static const char *const warned_flags[] = {
    "--fail-fast", "--debug", "--extend-run", "--clobber-outputs", "--skip-existing", "--replace-run", NULL};
/* Options with a value accepted and ignored, with a warning. */
static const char *const warned_valued[] = {"--skip-existing-in", "--prune-replaced",           "--timeout",
                                            "--instrument",       "--dataset-query-constraint", NULL};
/* Options of pipetask this one cannot honour: an error that says so. */
static const char *const unsupported[] = {"-C", "--config-file", NULL};

static bool listed(const char *const *list, const char *w, size_t len)
{
    for (size_t k = 0; list[k] != NULL; k++) {
        if (strlen(list[k]) == len && strncmp(list[k], w, len) == 0) {
            return true;
        }
    }
    return false;
}

static int parse(int argc, char **argv, args *a, char *err, size_t errlen)
{
    int i = 1;
    while (i < argc && strcmp(argv[i], "--long-log") == 0) {
        i++;
    }
    if (i >= argc || strcmp(argv[i], "run") != 0) {
        snprintf(err, errlen, "expected the subcommand 'run'");
        return -1;
    }
    a->jobs = 1;
    for (i++; i < argc; i++) {
        const char *w = argv[i];
        if (listed(ignored_flags, w, strlen(w))) {
            continue;
        }
        if (listed(warned_flags, w, strlen(w))) {
            fprintf(stderr, "ocps-pipetask: warning: %s is accepted and ignored here\n", w);
            continue;
        }
        /* --name=value, or a short option's value attached (-j8) */
        const char *eq = strncmp(w, "--", 2) == 0 ? strchr(w, '=') : NULL;
        bool attached = w[0] == '-' && w[1] != '-' && w[1] != '\0' && w[2] != '\0';
        size_t nlen = eq ? (size_t)(eq - w) : attached ? 2 : strlen(w);
        const char *attached_value = attached ? w + 2 : NULL;
        if (listed(unsupported, w, nlen)) {
            snprintf(err, errlen, "%.*s is not supported by ocps-pipetask (use -c label:field=value)",
                     (int)nlen, w);
            return -1;
        }
        bool warned = listed(warned_valued, w, nlen);
        char key = 0;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0] && !warned; k++) {
            if ((valued[k].s && strlen(valued[k].s) == nlen && strncmp(valued[k].s, w, nlen) == 0) ||
                (strlen(valued[k].l) == nlen && strncmp(valued[k].l, w, nlen) == 0)) {
                key = valued[k].key;
            }
        }
        if (key == 0 && !warned) {
            snprintf(err, errlen, "unknown option or argument '%.100s'", w);
            return -1;
        }
        const char *v = eq ? eq + 1 : attached_value ? attached_value : (i + 1 < argc ? argv[++i] : NULL);
        if (warned && v != NULL) {
            fprintf(stderr, "ocps-pipetask: warning: %.*s is accepted and ignored here\n", (int)nlen, w);
            continue;
        }
        if (v == NULL) {
            snprintf(err, errlen, "%.*s needs a value", (int)nlen, w);
            return -1;
        }
        char *end = NULL;
        switch (key) {
        case 'b':
            a->repo = v;
            break;
        case 'p':
            a->pipeline = v;
            break;
        case 'i':
            if (add_inputs(a, v, err, errlen) != 0) {
                return -1;
            }
            break;
        case 'o':
            a->output = v;
            break;
        case 'r':
            a->output_run = v;
            break;
        case 'd':
            a->query = v;
            break;
        case 'j': {
            long n = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || n < 1 || n > 256) {
                snprintf(err, errlen, "-j: '%.40s' is not a number of processes (1..256)", v);
                return -1;
            }
            a->jobs = (int)n;
            break;
        }
        case 'c':
            if (a->n_overrides == MAX_OVERRIDES) {
                snprintf(err, errlen, "-c: more than %d overrides", MAX_OVERRIDES);
                return -1;
            }
            a->overrides[a->n_overrides++] = v;
            break;
        default:
            break;
        }
    }
    if (a->repo == NULL || a->pipeline == NULL || a->output == NULL) {
        snprintf(err, errlen, "missing %s",
                 a->repo == NULL       ? "-b REPO"
                 : a->pipeline == NULL ? "-p PIPELINE"
                                       : "-o OUTPUT");
        return -1;
    }
    if (a->n_inputs == 0) {
        snprintf(err, errlen, "missing -i INPUTS");
        return -1;
    }
    return 0;
}

static void exe_dir(char *out, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(self, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    snprintf(out, len, "%s", self);
}

/* A failure before the run: reported on stderr and in metrics.json. */
static int fail(const args *a, int code, const char *msg)
{
    fprintf(stderr, "ocps-pipetask: error: %s\n", msg);
    json_t *m = json_pack("{s:s, s:s, s:s, s:{s:s}}", "status", "failed", "error", msg, "pipeline",
                          a->pipeline ? a->pipeline : "", "summary", "status", "failed");
    char err[512];
    if (m != NULL && pt_write_metrics(m, "metrics.json", err, sizeof err) != 0) {
        fprintf(stderr, "ocps-pipetask: %s\n", err);
    }
    json_decref(m);
    return code;
}

/* Raise the soft descriptor limit to the hard one (as Go and Python's
 * multiprocessing users do): a combine keeps every input open on each of
 * its -j threads, and only falls back to fewer threads or to reopening
 * inputs when the limit is too low for that. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl); /* refused (an infinite hard limit): the combine copes */
    }
}

int main(int argc, char **argv)
{
    raise_fd_limit();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
    }
    static args a;
    char err[2048];
    if (parse(argc, argv, &a, err, sizeof err) != 0) {
        usage(stderr);
        return fail(&a, 2, err);
    }
    char dir[PATH_MAX];
    exe_dir(dir, sizeof dir);
    char path[PATH_MAX + 256];
    static pt_pipeline p;
    if (pt_pipeline_find(a.pipeline, dir, path, sizeof path, err, sizeof err) != 0 ||
        pt_pipeline_load(path, &p, err, sizeof err) != 0) {
        return fail(&a, 2, err);
    }
    for (size_t i = 0; i < a.n_overrides; i++) {
        if (pt_pipeline_override(&p, a.overrides[i], err, sizeof err) != 0) {
            return fail(&a, 2, err);
        }
    }
    const char *job_id = getenv("JOB_ID");
    pt_run_options o = {
        .repo = a.repo,
        .pipeline = &p,
        .pipeline_name = a.pipeline,
        .inputs = (const char *const *)a.inputs,
        .n_inputs = a.n_inputs,
        .output = a.output,
        .output_run = a.output_run,
        .query = a.query ? a.query : "",
        .jobs = a.jobs,
        .job_id = job_id,
    };
    fprintf(stderr, "ocps-pipetask: pipeline %s (%zu tasks), inputs %zu collections, output %s, -j %d\n",
            path, p.n_tasks, a.n_inputs, a.output, a.jobs);
    json_t *m = NULL;
    int rc = pt_run(&o, &m, err, sizeof err);
    char werr[512];
    if (pt_write_metrics(m, "metrics.json", werr, sizeof werr) != 0) {
        fprintf(stderr, "ocps-pipetask: %s\n", werr);
        rc = -1;
    }
    if (rc != 0) {
        fprintf(stderr, "ocps-pipetask: error: %s\n", err);
    } else {
        size_t i;
        json_t *out;
        json_array_foreach(json_object_get(m, "outputs"), i, out)
        {
            printf("%s %s %s\n", json_string_value(json_object_get(out, "dataset_type")),
                   json_string_value(json_object_get(out, "collection")),
                   json_string_value(json_object_get(out, "path")));
        }
        fprintf(stderr, "ocps-pipetask: %zu outputs registered in %s, chained into %s\n",
                json_array_size(json_object_get(m, "outputs")),
                json_string_value(json_object_get(m, "output_run")), a.output);
    }
    json_decref(m);
    return rc == 0 ? 0 : 1;
}
