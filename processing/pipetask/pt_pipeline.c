/*
 * pt_pipeline.c - pipeline files (the LSST pipeline YAML subset), task
 * classes, their config fields, -c overrides and pipeline lookup.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ocps/pipetask.h"
#include "ocps/yaml_json.h"

/* --- task classes --- */

static const struct {
    const char *name;
    pt_task_kind kind;
} classes[] = {
    {"lsst.ip.isr.IsrTask", PT_TASK_ISR},
    {"lsst.ip.isr.isrTask.IsrTask", PT_TASK_ISR},
    {"lsst.cp.pipe.CalibCombineTask", PT_TASK_COMBINE},
    {"lsst.cp.pipe.cpCombine.CalibCombineTask", PT_TASK_COMBINE},
    {"ocps.QuickLookTask", PT_TASK_QUICKLOOK},
};

/* --- config fields --- */

typedef enum field_type { F_BOOL, F_INT, F_FLOAT, F_WORD } field_type;

typedef struct field {
    const char *name;
    field_type type;
} field;

static const field isr_fields[] = {
    {"connections.ccdExposure", F_WORD},
    {"connections.outputExposure", F_WORD},
    {"doOverscan", F_BOOL},
    {"overscan.fitType", F_WORD},
    {"doBias", F_BOOL},
    {"doDark", F_BOOL},
    {"doFlat", F_BOOL},
    {"doSaturation", F_BOOL},
    {"saturation", F_FLOAT},
    {"flatMin", F_FLOAT},
    {"compress", F_BOOL},
    {NULL, F_BOOL},
};

static const field combine_fields[] = {
    {"connections.inputExpHandles", F_WORD},
    {"connections.outputData", F_WORD},
    {"calibrationType", F_WORD},
    {"combine", F_WORD},
    {"clip", F_FLOAT},
    {"nIter", F_INT},
    {"doOverscan", F_BOOL},
    {"overscan.fitType", F_WORD},
    {"doBias", F_BOOL},
    {"doDark", F_BOOL},
    {"stripeRows", F_INT},
    {"compress", F_BOOL},
    {NULL, F_BOOL},
};

static const field quicklook_fields[] = {
    {"connections.exposure", F_WORD},
    {"connections.preview", F_WORD},
    {"thresholdSigma", F_FLOAT},
    {"minPixels", F_INT},
    {"binSize", F_INT},
    {"stretch", F_WORD},
    {"lowPercent", F_FLOAT},
    {"highPercent", F_FLOAT},
    {"saturation", F_FLOAT},
    {NULL, F_BOOL},
};

static const field *fields_of(pt_task_kind kind)
{
    return kind == PT_TASK_ISR ? isr_fields : kind == PT_TASK_COMBINE ? combine_fields : quicklook_fields;
}

const char *pt_task_fields(pt_task_kind kind)
{
    switch (kind) {
    case PT_TASK_ISR:
        return "connections.ccdExposure connections.outputExposure doOverscan overscan.fitType doBias doDark "
               "doFlat doSaturation saturation flatMin compress";
    case PT_TASK_COMBINE:
        return "connections.inputExpHandles connections.outputData calibrationType combine clip nIter "
               "doOverscan overscan.fitType doBias doDark stripeRows compress";
    case PT_TASK_QUICKLOOK:
        return "connections.exposure connections.preview thresholdSigma minPixels binSize stretch lowPercent "
               "highPercent saturation";
    }
    return "";
}

/* A typed value parsed from text (-c) or taken from YAML. */
typedef struct value {
    bool b;
    long long i;
    double f;
    char word[64];
} value;

static bool valid_word(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        char c = *s;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* Parse text as the field's type (as pex_config reads a -c value). */
static int parse_text(const field *f, const char *text, value *v, char *err, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    switch (f->type) {
    case F_BOOL:
        if (strcasecmp(text, "true") == 0 || strcmp(text, "1") == 0) {
            v->b = true;
        } else if (strcasecmp(text, "false") == 0 || strcmp(text, "0") == 0) {
            v->b = false;
        } else {
            snprintf(err, errlen, "%s: '%s' is not a boolean (True or False)", f->name, text);
            return -1;
        }
        return 0;
    case F_INT:
        v->i = strtoll(text, &end, 10);
        if (*text == '\0' || *end != '\0' || errno != 0) {
            snprintf(err, errlen, "%s: '%s' is not an integer", f->name, text);
            return -1;
        }
        return 0;
    case F_FLOAT:
        v->f = strtod(text, &end);
        if (*text == '\0' || *end != '\0' || errno != 0 || !isfinite(v->f)) {
            snprintf(err, errlen, "%s: '%s' is not a number", f->name, text);
            return -1;
        }
        return 0;
    case F_WORD:
        if (strlen(text) >= sizeof v->word || !valid_word(text)) {
            snprintf(err, errlen, "%s: '%.80s' is not a valid name", f->name, text);
            return -1;
        }
        snprintf(v->word, sizeof v->word, "%s", text);
        return 0;
    }
    return -1;
}

/* Take a YAML (JSON) value as the field's type. */
static int parse_json(const field *f, json_t *j, value *v, char *err, size_t errlen)
{
    switch (f->type) {
    case F_BOOL:
        if (!json_is_boolean(j)) {
            snprintf(err, errlen, "%s: expected a boolean", f->name);
            return -1;
        }
        v->b = json_is_true(j);
        return 0;
    case F_INT:
        if (!json_is_integer(j)) {
            snprintf(err, errlen, "%s: expected an integer", f->name);
            return -1;
        }
        v->i = json_integer_value(j);
        return 0;
    case F_FLOAT:
        if (!json_is_number(j)) {
            snprintf(err, errlen, "%s: expected a number", f->name);
            return -1;
        }
        v->f = json_number_value(j);
        return 0;
    case F_WORD:
        if (!json_is_string(j)) {
            snprintf(err, errlen, "%s: expected a string", f->name);
            return -1;
        }
        return parse_text(f, json_string_value(j), v, err, errlen);
    }
    return -1;
}

static int overscan_method(const char *word, fp_overscan_method *m, char *err, size_t errlen)
{
    if (strcmp(word, "MEDIAN_PER_ROW") == 0) {
        *m = FP_OVERSCAN_MEDIAN;
    } else if (strcmp(word, "MEAN_PER_ROW") == 0) {
        *m = FP_OVERSCAN_MEAN;
    } else {
        snprintf(err, errlen, "overscan.fitType: '%s' is not one of MEDIAN_PER_ROW, MEAN_PER_ROW", word);
        return -1;
    }
    return 0;
}

static int positive(const char *name, double x, char *err, size_t errlen)
{
    if (!(x > 0)) {
        snprintf(err, errlen, "%s: must be positive", name);
        return -1;
    }
    return 0;
}

static int set_isr(pt_task *t, const char *name, const value *v, char *err, size_t errlen)
{
    if (strcmp(name, "connections.ccdExposure") == 0) {
        snprintf(t->input_type, sizeof t->input_type, "%s", v->word);
    } else if (strcmp(name, "connections.outputExposure") == 0) {
        snprintf(t->output_type, sizeof t->output_type, "%s", v->word);
    } else if (strcmp(name, "doOverscan") == 0) {
        t->do_overscan = v->b;
    } else if (strcmp(name, "overscan.fitType") == 0) {
        return overscan_method(v->word, &t->isr.overscan, err, errlen);
    } else if (strcmp(name, "doBias") == 0) {
        t->do_bias = v->b;
    } else if (strcmp(name, "doDark") == 0) {
        t->do_dark = v->b;
    } else if (strcmp(name, "doFlat") == 0) {
        t->do_flat = v->b;
    } else if (strcmp(name, "doSaturation") == 0) {
        t->do_saturation = v->b;
    } else if (strcmp(name, "saturation") == 0) {
        t->isr.saturation = v->f;
        return positive(name, v->f, err, errlen);
    } else if (strcmp(name, "flatMin") == 0) {
        t->isr.flat_min = v->f;
    } else if (strcmp(name, "compress") == 0) {
        t->isr.output.compress = v->b;
    }
    return 0;
}

static int set_combine(pt_task *t, const char *name, const value *v, char *err, size_t errlen)
{
    fp_combine_config *c = &t->combine;
    if (strcmp(name, "connections.inputExpHandles") == 0) {
        snprintf(t->input_type, sizeof t->input_type, "%s", v->word);
    } else if (strcmp(name, "connections.outputData") == 0) {
        snprintf(t->output_type, sizeof t->output_type, "%s", v->word);
    } else if (strcmp(name, "calibrationType") == 0) {
        static const char *const names[] = {"bias", "dark", "flat"};
        for (int k = 0; k < 3; k++) {
            if (strcmp(v->word, names[k]) == 0) {
                c->type = (fp_calib_type)k;
                return 0;
            }
        }
        snprintf(err, errlen, "calibrationType: '%s' is not one of bias, dark, flat", v->word);
        return -1;
    } else if (strcmp(name, "combine") == 0) {
        if (strcmp(v->word, "MEDIAN") == 0) {
            c->method = FP_COMBINE_MEDIAN;
        } else if (strcmp(v->word, "MEANCLIP") == 0) {
            c->method = FP_COMBINE_SIGCLIP_MEAN;
        } else {
            snprintf(err, errlen, "combine: '%s' is not one of MEDIAN, MEANCLIP", v->word);
            return -1;
        }
    } else if (strcmp(name, "clip") == 0) {
        c->clip_sigma = v->f;
        return positive(name, v->f, err, errlen);
    } else if (strcmp(name, "nIter") == 0) {
        if (v->i < 1 || v->i > 100) {
            snprintf(err, errlen, "nIter: must be 1..100");
            return -1;
        }
        c->clip_iter = (int)v->i;
    } else if (strcmp(name, "doOverscan") == 0) {
        t->do_overscan = v->b;
    } else if (strcmp(name, "overscan.fitType") == 0) {
        return overscan_method(v->word, &c->overscan, err, errlen);
    } else if (strcmp(name, "doBias") == 0) {
        t->do_bias = v->b;
    } else if (strcmp(name, "doDark") == 0) {
        t->do_dark = v->b;
    } else if (strcmp(name, "stripeRows") == 0) {
        if (v->i < 1 || v->i > 4096) {
            snprintf(err, errlen, "stripeRows: must be 1..4096");
            return -1;
        }
        c->stripe_rows = (int)v->i;
    } else if (strcmp(name, "compress") == 0) {
        c->output.compress = v->b;
    }
    return 0;
}

static int set_quicklook(pt_task *t, const char *name, const value *v, char *err, size_t errlen)
{
    fp_quicklook_config *q = &t->quicklook;
    if (strcmp(name, "connections.exposure") == 0) {
        snprintf(t->input_type, sizeof t->input_type, "%s", v->word);
    } else if (strcmp(name, "connections.preview") == 0) {
        snprintf(t->output_type, sizeof t->output_type, "%s", v->word);
    } else if (strcmp(name, "thresholdSigma") == 0) {
        q->threshold_sigma = v->f;
        return positive(name, v->f, err, errlen);
    } else if (strcmp(name, "minPixels") == 0) {
        if (v->i < 1 || v->i > 1000000) {
            snprintf(err, errlen, "minPixels: must be 1..1000000");
            return -1;
        }
        q->min_pixels = (int)v->i;
    } else if (strcmp(name, "binSize") == 0) {
        if (v->i < 1 || v->i > 256) {
            snprintf(err, errlen, "binSize: must be 1..256");
            return -1;
        }
        q->bin = (int)v->i;
    } else if (strcmp(name, "stretch") == 0) {
        if (strcmp(v->word, "ASINH") == 0) {
            q->stretch = FP_STRETCH_ASINH;
        } else if (strcmp(v->word, "PERCENTILE") == 0) {
            q->stretch = FP_STRETCH_PERCENTILE;
        } else {
            snprintf(err, errlen, "stretch: '%s' is not one of ASINH, PERCENTILE", v->word);
            return -1;
        }
    } else if (strcmp(name, "lowPercent") == 0 || strcmp(name, "highPercent") == 0) {
        if (!(v->f >= 0 && v->f <= 100)) {
            snprintf(err, errlen, "%s: must be 0..100", name);
            return -1;
        }
        *(name[0] == 'l' ? &q->low_pct : &q->high_pct) = v->f;
    } else if (strcmp(name, "saturation") == 0) {
        q->saturation = v->f;
    }
    return 0;
}

static const field *find_field(const pt_task *t, const char *name)
{
    for (const field *f = fields_of(t->kind); f->name != NULL; f++) {
        if (strcmp(f->name, name) == 0) {
            return f;
        }
    }
    return NULL;
}

static int unknown_field(const pt_task *t, const char *name, char *err, size_t errlen)
{
    snprintf(err, errlen, "task %s (%s): unknown config field '%.80s' (known: %s)", t->label, t->class_name,
             name, pt_task_fields(t->kind));
    return -1;
}

static int apply(pt_task *t, const field *f, const value *v, char *err, size_t errlen)
{
    char msg[400];
    int rc = t->kind == PT_TASK_ISR       ? set_isr(t, f->name, v, msg, sizeof msg)
             : t->kind == PT_TASK_COMBINE ? set_combine(t, f->name, v, msg, sizeof msg)
                                          : set_quicklook(t, f->name, v, msg, sizeof msg);
    if (rc != 0) {
        snprintf(err, errlen, "task %s: %s", t->label, msg);
    }
    return rc;
}

/* --- tasks --- */

static void task_defaults(pt_task *t)
{
    t->do_overscan = true;
    t->do_saturation = true;
    fp_isr_config_default(&t->isr);
    fp_combine_config_default(&t->combine, FP_CALIB_BIAS);
    fp_quicklook_config_default(&t->quicklook);
    switch (t->kind) {
    case PT_TASK_ISR:
        snprintf(t->input_type, sizeof t->input_type, "raw");
        snprintf(t->output_type, sizeof t->output_type, "postISRCCD");
        t->do_bias = true;
        break;
    case PT_TASK_COMBINE:
        snprintf(t->input_type, sizeof t->input_type, "raw");
        t->output_type[0] = '\0'; /* the calibration type unless connections.outputData says */
        break;
    case PT_TASK_QUICKLOOK:
        snprintf(t->input_type, sizeof t->input_type, "postISRCCD");
        snprintf(t->output_type, sizeof t->output_type, PT_PREVIEW_TYPE);
        break;
    }
}

static int load_task(pt_task *t, const char *label, json_t *def, char *err, size_t errlen)
{
    if (strlen(label) >= sizeof t->label || !valid_word(label)) {
        snprintf(err, errlen, "task label '%.80s' is not a valid name", label);
        return -1;
    }
    snprintf(t->label, sizeof t->label, "%s", label);
    const char *cls =
        json_is_string(def) ? json_string_value(def) : json_string_value(json_object_get(def, "class"));
    if (cls == NULL) {
        snprintf(err, errlen, "task %s: no class", label);
        return -1;
    }
    size_t k;
    for (k = 0; k < sizeof classes / sizeof classes[0]; k++) {
        if (strcmp(classes[k].name, cls) == 0) {
            break;
        }
    }
    if (k == sizeof classes / sizeof classes[0]) {
        snprintf(err, errlen,
                 "task %s: unknown class '%.120s' (this pipetask runs lsst.ip.isr.IsrTask, "
                 "lsst.cp.pipe.CalibCombineTask and ocps.QuickLookTask)",
                 label, cls);
        return -1;
    }
    snprintf(t->class_name, sizeof t->class_name, "%s", cls);
    t->kind = classes[k].kind;
    task_defaults(t);
    if (json_is_string(def)) {
        return 0;
    }
    const char *key;
    json_t *v;
    json_object_foreach(def, key, v)
    {
        if (strcmp(key, "class") != 0 && strcmp(key, "config") != 0) {
            snprintf(err, errlen, "task %s: unknown key '%.80s' (class, config)", label, key);
            return -1;
        }
    }
    json_t *config = json_object_get(def, "config");
    if (config != NULL && !json_is_object(config)) {
        snprintf(err, errlen, "task %s: config must be a mapping", label);
        return -1;
    }
    json_object_foreach(config, key, v)
    {
        const field *f = find_field(t, key);
        if (f == NULL) {
            return unknown_field(t, key, err, errlen);
        }
        value val;
        char msg[300];
        if (parse_json(f, v, &val, msg, sizeof msg) != 0) {
            snprintf(err, errlen, "task %s: %s", label, msg);
            return -1;
        }
        if (apply(t, f, &val, err, errlen) != 0) {
            return -1;
        }
    }
    return 0;
}

static const char *calib_name(fp_calib_type type)
{
    return type == FP_CALIB_BIAS ? "bias" : type == FP_CALIB_DARK ? "dark" : "flat";
}

/* Order the tasks so that producers run before consumers; every input is
 * raw or produced by another task. */
static int order_tasks(pt_pipeline *p, char *err, size_t errlen)
{
    pt_task sorted[PT_MAX_TASKS];
    bool placed[PT_MAX_TASKS] = {false};
    size_t n = 0;
    for (size_t i = 0; i < p->n_tasks; i++) {
        pt_task *t = &p->tasks[i];
        if (t->kind == PT_TASK_COMBINE && t->output_type[0] == '\0') {
            snprintf(t->output_type, sizeof t->output_type, "%s", calib_name(t->combine.type));
        }
        bool produced = strcmp(t->input_type, "raw") == 0;
        for (size_t j = 0; j < p->n_tasks && !produced; j++) {
            produced = j != i && strcmp(p->tasks[j].output_type, t->input_type) == 0;
        }
        if (!produced) {
            snprintf(err, errlen, "task %s: its input %s is neither raw nor the output of another task",
                     t->label, t->input_type);
            return -1;
        }
    }
    while (n < p->n_tasks) {
        bool progress = false;
        for (size_t i = 0; i < p->n_tasks; i++) {
            if (placed[i]) {
                continue;
            }
            bool ready = strcmp(p->tasks[i].input_type, "raw") == 0;
            for (size_t j = 0; j < n && !ready; j++) {
                ready = strcmp(sorted[j].output_type, p->tasks[i].input_type) == 0;
            }
            if (ready) {
                sorted[n++] = p->tasks[i];
                placed[i] = true;
                progress = true;
            }
        }
        if (!progress) {
            snprintf(err, errlen, "the tasks' inputs and outputs form a cycle");
            return -1;
        }
    }
    memcpy(p->tasks, sorted, n * sizeof sorted[0]);
    return 0;
}

int pt_pipeline_load(const char *path, pt_pipeline *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "%s", path);
    char msg[512];
    json_t *doc = yaml_json_load_file(path, msg, sizeof msg);
    if (doc == NULL) {
        snprintf(err, errlen, "pipeline %s: %s", path, msg);
        return -1;
    }
    int rc = -1;
    json_t *tasks = json_object_get(doc, "tasks");
    const char *key;
    json_t *v;
    if (!json_is_object(doc)) {
        snprintf(msg, sizeof msg, "not a mapping");
        goto out;
    }
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "description") != 0 && strcmp(key, "instrument") != 0 && strcmp(key, "tasks") != 0 &&
            strcmp(key, "parameters") != 0) {
            snprintf(msg, sizeof msg, "unknown key '%.80s' (description, instrument, tasks)", key);
            goto out;
        }
    }
    snprintf(p->description, sizeof p->description, "%s",
             json_is_string(json_object_get(doc, "description"))
                 ? json_string_value(json_object_get(doc, "description"))
                 : "");
    snprintf(p->instrument, sizeof p->instrument, "%s",
             json_is_string(json_object_get(doc, "instrument"))
                 ? json_string_value(json_object_get(doc, "instrument"))
                 : "");
    if (!json_is_object(tasks) || json_object_size(tasks) == 0) {
        snprintf(msg, sizeof msg, "no tasks");
        goto out;
    }
    if (json_object_size(tasks) > PT_MAX_TASKS) {
        snprintf(msg, sizeof msg, "more than %d tasks", PT_MAX_TASKS);
        goto out;
    }
    json_object_foreach(tasks, key, v)
    {
        if (load_task(&p->tasks[p->n_tasks], key, v, msg, sizeof msg) != 0) {
            goto out;
        }
        p->n_tasks++;
    }
    rc = order_tasks(p, msg, sizeof msg);
out:
    if (rc != 0) {
        snprintf(err, errlen, "pipeline %s: %s", path, msg);
    }
    json_decref(doc);
    return rc;
}

int pt_pipeline_override(pt_pipeline *p, const char *spec, char *err, size_t errlen)
{
    const char *colon = strchr(spec, ':');
    const char *eq = colon ? strchr(colon, '=') : NULL;
    if (colon == NULL || eq == NULL || colon == spec || eq == colon + 1) {
        snprintf(err, errlen, "-c %.200s: expected label:field=value", spec);
        return -1;
    }
    size_t llen = (size_t)(colon - spec);
    pt_task *t = NULL;
    for (size_t i = 0; i < p->n_tasks; i++) {
        if (strlen(p->tasks[i].label) == llen && strncmp(p->tasks[i].label, spec, llen) == 0) {
            t = &p->tasks[i];
        }
    }
    if (t == NULL) {
        char labels[600] = "";
        for (size_t i = 0; i < p->n_tasks; i++) {
            size_t used = strlen(labels);
            snprintf(labels + used, sizeof labels - used, "%s%s", i ? ", " : "", p->tasks[i].label);
        }
        snprintf(err, errlen, "-c %.200s: no task labelled '%.*s' in the pipeline (tasks: %s)", spec,
                 (int)(llen < 64 ? llen : 64), spec, labels);
        return -1;
    }
    char name[128];
    size_t flen = (size_t)(eq - colon - 1);
    if (flen >= sizeof name) {
        return unknown_field(t, "(too long)", err, errlen);
    }
    memcpy(name, colon + 1, flen);
    name[flen] = '\0';
    const field *f = find_field(t, name);
    if (f == NULL) {
        return unknown_field(t, name, err, errlen);
    }
    if (strncmp(name, "connections.", 12) == 0) {
        snprintf(err, errlen, "-c %.200s: connections cannot be changed on the command line", spec);
        return -1;
    }
    value v;
    char msg[300];
    if (parse_text(f, eq + 1, &v, msg, sizeof msg) != 0) {
        snprintf(err, errlen, "-c: task %s: %s", t->label, msg);
        return -1;
    }
    return apply(t, f, &v, err, errlen);
}

/* --- lookup --- */

static bool is_file(const char *path)
{
    return access(path, R_OK) == 0;
}

int pt_pipeline_find(const char *name, const char *exe_dir, char *out, size_t outlen, char *err,
                     size_t errlen)
{
    if (name == NULL || *name == '\0') {
        snprintf(err, errlen, "no pipeline given (-p)");
        return -1;
    }
    if (is_file(name)) {
        snprintf(out, outlen, "%s", name);
        return 0;
    }
    /* Drop a "#task" subset and any directory: look the base name up. */
    char base[256];
    const char *slash = strrchr(name, '/');
    snprintf(base, sizeof base, "%s", slash ? slash + 1 : name);
    base[strcspn(base, "#")] = '\0';
    if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        snprintf(err, errlen, "unknown pipeline '%.200s'", name);
        return -1;
    }
    char dirs[4096] = "";
    const char *env = getenv("OCPS_PIPELINE_PATH");
    if (env != NULL && *env != '\0') {
        snprintf(dirs, sizeof dirs, "%s", env);
    }
    if (exe_dir != NULL && *exe_dir != '\0') {
        size_t used = strlen(dirs);
        snprintf(dirs + used, sizeof dirs - used, "%s%s/pipelines:%s/../share/ocps-c/pipelines",
                 used ? ":" : "", exe_dir, exe_dir);
    }
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, outlen, "%s/%s", d, base);
        if (is_file(out)) {
            return 0;
        }
    }
    snprintf(err, errlen,
             "unknown pipeline '%.200s': not a file, and no %.100s in $OCPS_PIPELINE_PATH or the shipped "
             "pipelines (cpBias.yaml, cpDark.yaml, cpFlat.yaml, isr.yaml, quickLook.yaml)",
             name, base);
    out[0] = '\0';
    return -1;
}
