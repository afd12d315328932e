/*
 * pt_run.c - running a pipeline on a butler-lite repository: select the
 * raws, find calibrations, run the tasks per data unit on N threads,
 * register the outputs in one transaction, write metrics.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ocps/butler.h"
#include "ocps/sal_clock.h"
#include "ocps/pipetask.h"

/* A dataset a task reads or writes: its data ID and its file. */
typedef struct item {
    butler_dataset ds;              /* ds.path: relative to the repository root */
    char file[2100];                /* absolute path */
    const char *bias, *dark, *flat; /* calibrations for this unit (absolute paths), or NULL */
} item;

/* One task's outputs. */
typedef struct stage {
    item *items;
    size_t n;
    size_t n_inputs;
    double seconds;
    json_t *unit_metrics; /* array, one per unit */
} stage;

/* Everything a run holds. */
typedef struct run {
    const pt_run_options *o;
    butler_repo *repo;
    char root[1024];
    char run_name[256];
    char job_id[128];
    bool claimed; /* run_name was created by this run (removed again on failure) */
    butler_dataset *raws;
    size_t n_raws;
    item *raw_items;
    butler_dataset *calibs[3]; /* bias, dark, flat rows found in the inputs */
    size_t n_calibs[3];
    char (*calib_files)[2100]; /* absolute paths of all calibration rows */
    stage stages[PT_MAX_TASKS];
} run;

static int mkdirs(const char *path, char *err, size_t errlen)
{
    char buf[2100];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0775) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "cannot create %.1500s: %s", buf, strerror(errno));
                return -1;
            }
            *p = '/';
        }
    }
    if (mkdir(buf, 0775) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %.1500s: %s", buf, strerror(errno));
        return -1;
    }
    return 0;
}

/* Remove a file we wrote and the directories above it that became empty,
 * up to the repository root. */
static void remove_output(const char *root, const char *file)
{
    if (unlink(file) != 0 && errno != ENOENT) {
        return;
    }
    char dir[2100];
    snprintf(dir, sizeof dir, "%s", file);
    size_t rootlen = strlen(root);
    for (char *slash = strrchr(dir, '/'); slash != NULL && (size_t)(slash - dir) > rootlen;
         slash = strrchr(dir, '/')) {
        *slash = '\0';
        if (rmdir(dir) != 0) {
            break;
        }
    }
}

static const char *calib_type_name(int k)
{
    return k == 0 ? "bias" : k == 1 ? "dark" : "flat";
}

static void join_collections(const pt_run_options *o, char *out, size_t len)
{
    out[0] = '\0';
    for (size_t i = 0; i < o->n_inputs; i++) {
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s", i ? ", " : "", o->inputs[i]);
    }
}

/* The calibration of type k (0 bias, 1 dark, 2 flat) for a raw: same
 * instrument and detector, the first the find-first search returned; a
 * flat of the raw's physical filter, else one without a filter. */
static const char *calib_for(const run *r, int k, const butler_dataset *raw, size_t *base)
{
    size_t off = 0;
    for (int t = 0; t < k; t++) {
        off += r->n_calibs[t];
    }
    *base = off;
    const char *unfiltered = NULL;
    for (size_t i = 0; i < r->n_calibs[k]; i++) {
        const butler_dataset *c = &r->calibs[k][i];
        if (strcmp(c->instrument, raw->instrument) != 0 || c->detector != raw->detector) {
            continue;
        }
        if (k != 2 || strcmp(c->physical_filter, raw->physical_filter) == 0) {
            return r->calib_files[off + i];
        }
        if (c->physical_filter[0] == '\0' && unfiltered == NULL) {
            unfiltered = r->calib_files[off + i];
        }
    }
    return unfiltered;
}

/* Find every calibration type any task needs in the input collections. */
static int find_calibrations(run *r, char *err, size_t errlen)
{
    const pt_pipeline *p = r->o->pipeline;
    bool need[3] = {false, false, false};
    for (size_t i = 0; i < p->n_tasks; i++) {
        const pt_task *t = &p->tasks[i];
        if (t->kind == PT_TASK_QUICKLOOK) {
            continue;
        }
        need[0] |= t->do_bias && !(t->kind == PT_TASK_COMBINE && t->combine.type == FP_CALIB_BIAS);
        need[1] |= t->do_dark && !(t->kind == PT_TASK_COMBINE && t->combine.type != FP_CALIB_FLAT);
        need[2] |= t->kind == PT_TASK_ISR && t->do_flat;
    }
    char msg[1024];
    size_t total = 0;
    for (int k = 0; k < 3; k++) {
        if (need[k] && butler_query_datasets(r->repo, calib_type_name(k), r->o->inputs, r->o->n_inputs, NULL,
                                             true, &r->calibs[k], &r->n_calibs[k], msg, sizeof msg) != 0) {
            snprintf(err, errlen, "looking up %s calibrations: %s", calib_type_name(k), msg);
            return -1;
        }
        total += r->n_calibs[k];
    }
    r->calib_files = calloc(total ? total : 1, sizeof *r->calib_files);
    if (r->calib_files == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = 0;
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < r->n_calibs[k]; i++) {
            snprintf(r->calib_files[n++], sizeof r->calib_files[0], "%s/%s", r->root, r->calibs[k][i].path);
        }
    }
    return 0;
}

/* Attach the calibrations a task needs to each input; a missing one fails. */
static int attach_calibrations(const run *r, const pt_task *t, item *items, size_t n, char *err,
                               size_t errlen)
{
    bool want[3] = {t->do_bias, t->do_dark, t->do_flat};
    if (t->kind == PT_TASK_COMBINE) {
        want[0] = t->do_bias && t->combine.type != FP_CALIB_BIAS;
        want[1] = t->do_dark && t->combine.type == FP_CALIB_FLAT;
        want[2] = false;
    } else if (t->kind == PT_TASK_QUICKLOOK) {
        return 0;
    }
    char colls[1024];
    join_collections(r->o, colls, sizeof colls);
    for (size_t i = 0; i < n; i++) {
        item *it = &items[i];
        for (int k = 0; k < 3; k++) {
            size_t base;
            const char *path = want[k] ? calib_for(r, k, &it->ds, &base) : NULL;
            if (want[k] && path == NULL) {
                snprintf(err, errlen,
                         "task %s: no %s calibration for exposure %lld (instrument %s, detector %lld%s%s) in "
                         "the input collections (%s); run the cp%c%s pipeline first and pass its output "
                         "collection with -i, or set %s:do%c%s=False",
                         t->label, calib_type_name(k), it->ds.exposure, it->ds.instrument, it->ds.detector,
                         k == 2 ? ", physical_filter " : "", k == 2 ? it->ds.physical_filter : "", colls,
                         calib_type_name(k)[0] - 32, calib_type_name(k) + 1, t->label,
                         calib_type_name(k)[0] - 32, calib_type_name(k) + 1);
                return -1;
            }
            if (k == 0) {
                it->bias = path;
            } else if (k == 1) {
                it->dark = path;
            } else {
                it->flat = path;
            }
        }
    }
    return 0;
}

/* Create the empty output file exclusively: an existing file (not this
 * run's) is an error and is left alone. Only once created does the item
 * name it, so a failure removes only files this run made. */
static int create_output_file(const char *file, item *out, char *err, size_t errlen)
{
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0664);
    if (fd < 0) {
        snprintf(err, errlen,
                 errno == EEXIST ? "output file %.1500s exists already" : "cannot create %.1500s: %s", file,
                 strerror(errno));
        return -1;
    }
    close(fd);
    snprintf(out->file, sizeof out->file, "%s", file); /* ours from here: removed on failure */
    return 0;
}

/* Plan the output file of an item: <run>/<type>/<exposure>/<type>_<instrument>_<exposure>_det<d>.<ext>. */
static int plan_output(const run *r, const char *type, const butler_dataset *in, const char *ext, item *out,
                       char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->ds = *in;
    out->ds.id = 0;
    out->ds.checksum[0] = '\0';
    snprintf(out->ds.dataset_type, sizeof out->ds.dataset_type, "%s", type);
    int n;
    if (in->exposure != BUTLER_NONE) {
        n = snprintf(out->ds.path, sizeof out->ds.path, "%s/%s/%lld/%s_%s_%lld_det%lld.%s", r->run_name, type,
                     in->exposure, type, in->instrument, in->exposure, in->detector, ext);
    } else {
        char filt[128];
        snprintf(filt, sizeof filt, "%s", in->physical_filter);
        for (char *c = filt; *c; c++) {
            if (*c == '~' || *c == '/' || *c == ' ') {
                *c = '_';
            }
        }
        n = snprintf(out->ds.path, sizeof out->ds.path, "%s/%s/%s_%s%s%s_det%lld.%s", r->run_name, type, type,
                     in->instrument, filt[0] ? "_" : "", filt, in->detector, ext);
    }
    if (n < 0 || (size_t)n >= sizeof out->ds.path) {
        snprintf(err, errlen, "output path too long in run %s", r->run_name);
        return -1;
    }
    char file[2100];
    snprintf(file, sizeof file, "%s/%s", r->root, out->ds.path);
    char dir[2100];
    snprintf(dir, sizeof dir, "%s", file);
    *strrchr(dir, '/') = '\0';
    if (mkdirs(dir, err, errlen) != 0) {
        return -1;
    }
    return create_output_file(file, out, err, errlen);
}

/* --- per-unit tasks --- */

typedef struct unit_ctx {
    const run *r;
    const pt_task *task;
    const item *in;
    item *out;
    json_t **metrics;
} unit_ctx;

static int run_unit(void *arg, size_t i, char *err, size_t errlen)
{
    unit_ctx *u = arg;
    const pt_task *t = u->task;
    const item *in = &u->in[i];
    const char *inputs[4] = {in->file};
    size_t n_inputs = 1;
    char msg[1024];
    int rc;
    if (t->kind == PT_TASK_ISR) {
        fp_isr_config cfg = t->isr;
        cfg.overscan = t->do_overscan ? t->isr.overscan : FP_OVERSCAN_NONE;
        cfg.bias_path = in->bias;
        cfg.dark_path = in->dark;
        cfg.flat_path = in->flat;
        if (!t->do_saturation) {
            cfg.saturation = 0;
        }
        const char *calibs[3] = {in->bias, in->dark, in->flat};
        for (int k = 0; k < 3; k++) {
            if (calibs[k] != NULL) {
                inputs[n_inputs++] = calibs[k];
            }
        }
        fp_provenance prov = {u->r->job_id, u->r->o->pipeline_name, t->label, NULL, inputs, n_inputs};
        rc = fp_isr_run(in->file, u->out[i].file, &cfg, &prov, &u->metrics[i], msg, sizeof msg);
    } else {
        rc = fp_quicklook_run(in->file, u->out[i].file, &t->quicklook, &u->metrics[i], msg, sizeof msg);
    }
    if (rc != 0) {
        snprintf(err, errlen, "task %s, exposure %lld: %s", t->label, in->ds.exposure, msg);
    }
    return rc;
}

static int run_per_unit(run *r, const pt_task *t, item *in, size_t n, stage *st, char *err, size_t errlen)
{
    st->items = calloc(n ? n : 1, sizeof *st->items);
    json_t **metrics = calloc(n ? n : 1, sizeof *metrics);
    if (st->items == NULL || metrics == NULL) {
        free(metrics);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->n = n;
    st->n_inputs = n;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = plan_output(r, t->output_type, &in[i].ds, t->kind == PT_TASK_QUICKLOOK ? "png" : "fits",
                         &st->items[i], err, errlen);
        if (rc == 0 && t->kind == PT_TASK_QUICKLOOK) {
            st->items[i].ds.exposure_time = in[i].ds.exposure_time;
        }
    }
    if (rc == 0) {
        unit_ctx u = {r, t, in, st->items, metrics};
        rc = fp_parallel_run(n, r->o->jobs, run_unit, &u, err, errlen);
    }
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(st->unit_metrics, metrics[i] ? metrics[i] : json_null());
    }
    free(metrics);
    return rc;
}

/* --- combine --- */

static int run_combine(run *r, const pt_task *t, item *in, size_t n, stage *st, char *err, size_t errlen)
{
    const char *want = calib_type_name((int)t->combine.type);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(in[i].ds.dataset_type, "raw") == 0 && strcmp(in[i].ds.observation_type, want) != 0) {
            snprintf(err, errlen,
                     "task %s: exposure %lld is a '%s' exposure, not %s: select %s exposures with -d "
                     "(e.g. exposure.observation_type='%s')",
                     t->label, in[i].ds.exposure, in[i].ds.observation_type, want, want, want);
            return -1;
        }
        if (t->combine.type == FP_CALIB_FLAT &&
            strcmp(in[i].ds.physical_filter, in[0].ds.physical_filter) != 0) {
            snprintf(err, errlen, "task %s: flats of several physical filters (%s, %s); select one with -d",
                     t->label, in[0].ds.physical_filter, in[i].ds.physical_filter);
            return -1;
        }
    }
    butler_dataset id = in[0].ds;
    id.exposure = id.day_obs = id.seq_num = BUTLER_NONE;
    id.exposure_time = -1;
    id.obs_id[0] = id.date_obs[0] = '\0';
    snprintf(id.observation_type, sizeof id.observation_type, "%s", want);
    if (t->combine.type != FP_CALIB_FLAT) {
        id.physical_filter[0] = '\0';
    }
    st->items = calloc(1, sizeof *st->items);
    const char **files = calloc(n + 2, sizeof *files);
    if (st->items == NULL || files == NULL) {
        free(files);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->n = 1;
    st->n_inputs = n;
    int rc = plan_output(r, t->output_type, &id, "fits", &st->items[0], err, errlen);
    if (rc == 0) {
        size_t nf = 0;
        for (size_t i = 0; i < n; i++) {
            files[nf++] = in[i].file;
        }
        fp_combine_config cfg = t->combine;
        cfg.overscan = t->do_overscan ? t->combine.overscan : FP_OVERSCAN_NONE;
        cfg.bias_path = in[0].bias;
        cfg.dark_path = in[0].dark;
        cfg.threads = r->o->jobs > 0 ? r->o->jobs : 1;
        fp_provenance prov = {r->job_id, r->o->pipeline_name, t->label, NULL, files, nf};
        json_t *m = NULL;
        char msg[1024];
        rc = fp_combine_run(files, nf, st->items[0].file, &cfg, &prov, &m, msg, sizeof msg);
        if (rc != 0) {
            snprintf(err, errlen, "task %s: %s", t->label, msg);
        }
        json_array_append_new(st->unit_metrics, m ? m : json_null());
    }
    free(files);
    return rc;
}

/* --- metrics --- */

static double mean_of(json_t *units, const char *key, int *count)
{
    double sum = 0;
    int n = 0;
    size_t i;
    json_t *u;
    json_array_foreach(units, i, u)
    {
        json_t *v = json_object_get(u, key);
        if (json_is_number(v)) {
            sum += json_number_value(v);
            n++;
        }
    }
    *count = n;
    return n ? sum / n : 0;
}

static json_t *task_summary(const pt_task *t, const stage *st)
{
    json_t *s = json_pack("{s:s, s:I, s:I, s:f}", "output_type", t->output_type, "inputs",
                          (json_int_t)st->n_inputs, "outputs", (json_int_t)st->n, "seconds", st->seconds);
    static const char *const isr_keys[] = {"median", "n_saturated", "n_bad", NULL};
    static const char *const combine_keys[] = {"mean_amp_median", NULL};
    static const char *const ql_keys[] = {"median",    "robust_sigma", "saturated_fraction",
                                          "n_sources", "fwhm_pixels",  NULL};
    const char *const *keys = t->kind == PT_TASK_ISR       ? isr_keys
                              : t->kind == PT_TASK_COMBINE ? combine_keys
                                                           : ql_keys;
    for (; *keys != NULL; keys++) {
        int n;
        double v = mean_of(st->unit_metrics, *keys, &n);
        if (n > 0) {
            json_object_set_new(s, *keys, json_real(v));
        }
    }
    return s;
}

static json_t *data_id_json(const butler_dataset *d)
{
    json_t *o = json_pack("{s:s, s:I}", "instrument", d->instrument, "detector", (json_int_t)d->detector);
    if (d->exposure != BUTLER_NONE) {
        json_object_set_new(o, "exposure", json_integer(d->exposure));
    }
    if (d->physical_filter[0] != '\0') {
        json_object_set_new(o, "physical_filter", json_string(d->physical_filter));
    }
    return o;
}

static void fill_metrics(const run *r, json_t *m, bool with_outputs)
{
    const pt_pipeline *p = r->o->pipeline;
    json_t *tasks = json_array();
    json_t *summary_tasks = json_object();
    json_t *outputs = json_array();
    size_t n_outputs = 0;
    for (size_t i = 0; i < p->n_tasks; i++) {
        const stage *st = &r->stages[i];
        if (st->unit_metrics == NULL) {
            break;
        }
        json_array_append_new(tasks, json_pack("{s:s, s:s, s:I, s:f, s:O}", "label", p->tasks[i].label,
                                               "class", p->tasks[i].class_name, "units", (json_int_t)st->n,
                                               "seconds", st->seconds, "metrics", st->unit_metrics));
        json_object_set_new(summary_tasks, p->tasks[i].label, task_summary(&p->tasks[i], st));
        for (size_t k = 0; k < st->n && with_outputs; k++) {
            json_array_append_new(outputs, json_pack("{s:s, s:o, s:s, s:s}", "dataset_type",
                                                     st->items[k].ds.dataset_type, "data_id",
                                                     data_id_json(&st->items[k].ds), "collection",
                                                     r->run_name, "path", st->items[k].file));
            n_outputs++;
        }
    }
    json_object_set_new(m, "tasks", tasks);
    json_object_set_new(m, "outputs", outputs);
    json_t *summary = json_object_get(m, "summary");
    json_object_set_new(summary, "raws", json_integer((json_int_t)r->n_raws));
    json_object_set_new(summary, "outputs", json_integer((json_int_t)n_outputs));
    json_object_set_new(summary, "tasks", summary_tasks);
}

/* --- the run --- */

static int check_output_names(run *r, char *err, size_t errlen)
{
    const pt_run_options *o = r->o;
    if (o->output == NULL || o->output[0] == '\0') {
        snprintf(err, errlen, "no output collection (-o)");
        return -1;
    }
    if (strlen(o->output) > 200) {
        snprintf(err, errlen, "output collection name too long");
        return -1;
    }
    if (o->output_run != NULL && o->output_run[0] != '\0') {
        snprintf(r->run_name, sizeof r->run_name, "%.250s", o->output_run);
    } else {
        snprintf(r->run_name, sizeof r->run_name, "%.200s/run", o->output);
    }
    for (const char *s = r->run_name; *s; s++) {
        if (*s == '\\' || (unsigned char)*s < 0x20 || (s[0] == '.' && s[1] == '.')) {
            snprintf(err, errlen, "output run '%s' is not a valid collection name", r->run_name);
            return -1;
        }
    }
    if (r->run_name[0] == '/' || strcmp(r->run_name, o->output) == 0) {
        snprintf(err, errlen, "output run '%s' is not a valid collection name", r->run_name);
        return -1;
    }
    butler_collection *c = NULL;
    size_t nc = 0;
    char msg[512];
    if (butler_list_collections(r->repo, &c, &nc, msg, sizeof msg) != 0) {
        snprintf(err, errlen, "%s", msg);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < nc && rc == 0; i++) {
        if (strcmp(c[i].name, o->output) == 0 && strcmp(c[i].type, "RUN") == 0) {
            snprintf(err, errlen, "output collection %s exists and is a RUN collection", o->output);
            rc = -1;
        }
    }
    butler_collections_free(c, nc);
    return rc;
}

/* Claim the output run before any work: created in a transaction of its
 * own, so of two runs with the same output exactly one proceeds (as
 * pipetask without --extend-run, an existing run is refused). An empty
 * run whose claiming ocps-pipetask is certainly dead (killed, or its node
 * restarted) is taken over, and the files it left are removed. */
static int claim_output_run(run *r, char *err, size_t errlen)
{
    char msg[1024] = "";
    butler_claim_info info;
    int rc = butler_claim_run(r->repo, r->run_name, &info, msg, sizeof msg);
    if (rc == 1) {
        snprintf(err, errlen,
                 "output run %s exists already: %.300s; choose another output, or %s `ocps-butler "
                 "remove-runs %.900s %s`",
                 r->run_name, info.reason,
                 info.has_owner ? "once that process is gone free the run with"
                                : "remove the run (and what it holds) with",
                 r->root, r->run_name);
    } else if (rc != 0) {
        snprintf(err, errlen, "creating the output run %s: %s", r->run_name, msg);
    } else if (info.taken_over) {
        fprintf(stderr, "ocps-pipetask: taking over the output run %s: %s\n", r->run_name, info.reason);
    }
    r->claimed = rc == 0;
    return rc == 0 ? 0 : -1;
}

/* Undo a failed run: remove the files it created and the run it claimed
 * (empty: nothing was registered). */
static void discard_outputs(run *r)
{
    for (size_t i = 0; i < PT_MAX_TASKS; i++) {
        for (size_t k = 0; k < r->stages[i].n; k++) {
            if (r->stages[i].items[k].file[0] != '\0') {
                remove_output(r->root, r->stages[i].items[k].file);
            }
        }
    }
    if (r->claimed) {
        const char *runs[1] = {r->run_name};
        char msg[1024];
        if (butler_remove_runs(r->repo, runs, 1, msg, sizeof msg) != 0) {
            fprintf(stderr, "ocps-pipetask: removing the empty output run %s: %s\n", r->run_name, msg);
        }
    }
}

static int select_raws(run *r, char *err, size_t errlen)
{
    const pt_run_options *o = r->o;
    char msg[1024];
    if (butler_query_datasets(r->repo, "raw", o->inputs, o->n_inputs, o->query, true, &r->raws, &r->n_raws,
                              msg, sizeof msg) != 0) {
        snprintf(err, errlen, "data query: %s", msg);
        return -1;
    }
    if (r->n_raws == 0) {
        char colls[1024];
        join_collections(o, colls, sizeof colls);
        snprintf(err, errlen, "the data query selected no raw datasets in the input collections (%s): %.300s",
                 colls, o->query && o->query[0] ? o->query : "(no query)");
        return -1;
    }
    r->raw_items = calloc(r->n_raws, sizeof *r->raw_items);
    if (r->raw_items == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < r->n_raws; i++) {
        r->raw_items[i].ds = r->raws[i];
        snprintf(r->raw_items[i].file, sizeof r->raw_items[i].file, "%s/%s", r->root, r->raws[i].path);
    }
    return 0;
}

static int register_outputs(run *r, char *err, size_t errlen)
{
    const pt_pipeline *p = r->o->pipeline;
    size_t total = 0;
    for (size_t i = 0; i < p->n_tasks; i++) {
        total += r->stages[i].n;
    }
    butler_dataset *ds = calloc(total ? total : 1, sizeof *ds);
    if (ds == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = 0;
    int rc = 0;
    char msg[1024];
    for (size_t i = 0; i < p->n_tasks && rc == 0; i++) {
        rc = butler_register_dataset_type(r->repo, p->tasks[i].output_type, msg, sizeof msg);
        for (size_t k = 0; k < r->stages[i].n; k++) {
            ds[n++] = r->stages[i].items[k].ds;
        }
    }
    const char *children[PT_MAX_INPUTS + 1];
    children[0] = r->run_name;
    for (size_t k = 0; k < r->o->n_inputs; k++) {
        children[k + 1] = r->o->inputs[k];
    }
    if (rc == 0) {
        rc = butler_register_chained(r->repo, r->run_name, ds, n, r->o->output, children, r->o->n_inputs + 1,
                                     msg, sizeof msg);
    }
    free(ds);
    if (rc != 0) {
        snprintf(err, errlen, "registering the outputs in %s and the output collection %s: %s", r->run_name,
                 r->o->output, msg);
        return -1;
    }
    return 0;
}

static int execute(run *r, char *err, size_t errlen)
{
    const pt_pipeline *p = r->o->pipeline;
    /* tasks reading raws: a missing calibration fails before any work */
    for (size_t i = 0; i < p->n_tasks; i++) {
        if (strcmp(p->tasks[i].input_type, "raw") == 0 &&
            attach_calibrations(r, &p->tasks[i], r->raw_items, r->n_raws, err, errlen) != 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < p->n_tasks; i++) {
        const pt_task *t = &p->tasks[i];
        stage *st = &r->stages[i];
        st->unit_metrics = json_array();
        item *in = r->raw_items;
        size_t n = r->n_raws;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(p->tasks[j].output_type, t->input_type) == 0) {
                in = r->stages[j].items;
                n = r->stages[j].n;
            }
        }
        /* tasks reading another task's outputs get their calibrations now */
        if (in != r->raw_items && attach_calibrations(r, t, in, n, err, errlen) != 0) {
            return -1;
        }
        double t0 = sal_clock_monotonic();
        int rc = t->kind == PT_TASK_COMBINE ? run_combine(r, t, in, n, st, err, errlen)
                                            : run_per_unit(r, t, in, n, st, err, errlen);
        st->seconds = sal_clock_monotonic() - t0;
        if (rc != 0) {
            return -1;
        }
    }
    return 0;
}

int pt_run(const pt_run_options *o, json_t **metrics, char *err, size_t errlen)
{
    double t0 = sal_clock_monotonic();
    run r = {.o = o};
    json_t *m = json_object();
    json_t *inputs = json_array();
    for (size_t i = 0; i < o->n_inputs; i++) {
        json_array_append_new(inputs, json_string(o->inputs[i]));
    }
    json_object_set_new(m, "status", json_string("failed"));
    json_object_set_new(m, "pipeline", json_string(o->pipeline_name ? o->pipeline_name : o->pipeline->path));
    json_object_set_new(m, "pipeline_path", json_string(o->pipeline->path));
    json_object_set_new(m, "instrument", json_string(o->pipeline->instrument));
    json_object_set_new(m, "inputs", inputs);
    json_object_set_new(m, "output", json_string(o->output ? o->output : ""));
    json_object_set_new(m, "data_query", json_string(o->query ? o->query : ""));
    json_object_set_new(m, "jobs", json_integer(o->jobs));
    json_object_set_new(m, "summary", json_object());
    char msg[2048] = "";
    int rc = -1;
    if (o->n_inputs == 0 || o->n_inputs > PT_MAX_INPUTS) {
        snprintf(msg, sizeof msg, "give 1 to %d input collections (-i)", PT_MAX_INPUTS);
        goto out;
    }
    if (butler_resolve_label(o->repo, r.root, sizeof r.root, msg, sizeof msg) != 0 ||
        butler_open(r.root, &r.repo, msg, sizeof msg) != 0) {
        butler_label_hint(o->repo, msg, sizeof msg);
        goto out;
    }
    snprintf(r.root, sizeof r.root, "%s", butler_root(r.repo));
    json_object_set_new(m, "repo", json_string(r.root));
    if (o->job_id != NULL && o->job_id[0] != '\0') {
        snprintf(r.job_id, sizeof r.job_id, "%s", o->job_id);
    } else {
        const char *slash = strrchr(o->output ? o->output : "", '/');
        snprintf(r.job_id, sizeof r.job_id, "%s", slash ? slash + 1 : (o->output ? o->output : ""));
    }
    if (check_output_names(&r, msg, sizeof msg) != 0 || claim_output_run(&r, msg, sizeof msg) != 0) {
        goto out;
    }
    json_object_set_new(m, "output_run", json_string(r.run_name));
    if (select_raws(&r, msg, sizeof msg) != 0 || find_calibrations(&r, msg, sizeof msg) != 0) {
        goto out;
    }
    if (execute(&r, msg, sizeof msg) == 0 && register_outputs(&r, msg, sizeof msg) == 0) {
        rc = 0;
    }
out:
    if (rc != 0) {
        discard_outputs(&r);
        snprintf(err, errlen, "%s", msg);
        json_object_set_new(m, "error", json_string(msg));
    }
    fill_metrics(&r, m, rc == 0);
    json_object_set_new(m, "status", json_string(rc == 0 ? "succeeded" : "failed"));
    json_t *summary = json_object_get(m, "summary");
    json_object_set_new(summary, "status", json_string(rc == 0 ? "succeeded" : "failed"));
    json_object_set_new(summary, "seconds", json_real(sal_clock_monotonic() - t0));
    json_object_set_new(m, "seconds", json_real(sal_clock_monotonic() - t0));
    for (size_t i = 0; i < PT_MAX_TASKS; i++) {
        free(r.stages[i].items);
        json_decref(r.stages[i].unit_metrics);
    }
    for (int k = 0; k < 3; k++) {
        free(r.calibs[k]);
    }
    free(r.calib_files);
    free(r.raw_items);
    free(r.raws);
    butler_close(r.repo);
    *metrics = m;
    return rc;
}

int pt_write_metrics(const json_t *metrics, const char *path, char *err, size_t errlen)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(metrics, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
