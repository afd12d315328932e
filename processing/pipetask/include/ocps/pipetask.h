/*
 * pipetask.h - the OCPS's own `pipetask run` (issue 12): pipelines in the
 * LSST pipeline YAML layout (description, instrument, tasks: label ->
 * class + config) whose tasks are the fitsproc tasks (ISR, calibration
 * combine, quick-look), run on the datasets of a butler-lite repository
 * that a Butler --where query selects, with outputs registered as Butler
 * does: a RUN collection and a CHAINED output collection that chains the
 * run and the inputs. No SAL knowledge; see docs/pipetask.md.
 *
 * Every function returns 0 on success, or -1 with a message in
 * err[0..errlen) naming the pipeline, task, field or dataset at fault.
 */
#ifndef OCPS_PIPETASK_H
#define OCPS_PIPETASK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "ocps/fitsproc.h"

/* Tasks in one pipeline at most. */
#define PT_MAX_TASKS 8
/* Input collections (-i) at most. */
#define PT_MAX_INPUTS 32
/* Dataset type of quick-look previews (PNG files). */
#define PT_PREVIEW_TYPE "quickLookPreview"

/* What a task does, from its class. */
typedef enum pt_task_kind {
    PT_TASK_ISR,      /* lsst.ip.isr.IsrTask: one raw -> one postISRCCD */
    PT_TASK_COMBINE,  /* lsst.cp.pipe.CalibCombineTask: all raws -> one bias/dark/flat */
    PT_TASK_QUICKLOOK /* ocps.QuickLookTask: one processed image -> metrics + PNG preview */
} pt_task_kind;

/* One task of a pipeline with its configuration (defaults, then the
 * pipeline file's config, then -c overrides). */
typedef struct pt_task {
    char label[64];
    char class_name[128];
    pt_task_kind kind;
    char input_type[64];  /* dataset type read (connections.*) */
    char output_type[64]; /* dataset type written */
    bool do_overscan;
    bool do_bias, do_dark, do_flat; /* calibrations looked up in the inputs */
    bool do_saturation;
    fp_isr_config isr;
    fp_combine_config combine;
    fp_quicklook_config quicklook;
} pt_task;

/* A loaded pipeline; tasks are in the order they run (producers first). */
typedef struct pt_pipeline {
    char path[1024];
    char description[512];
    char instrument[128];
    size_t n_tasks;
    pt_task tasks[PT_MAX_TASKS];
} pt_pipeline;

/* Find a pipeline file: `name` itself when it names an existing file;
 * otherwise its base name in the directories of $OCPS_PIPELINE_PATH
 * (colon-separated), then <exe_dir>/pipelines, then
 * <exe_dir>/../share/ocps/pipelines (exe_dir may be NULL). The path found
 * is written to out. An unknown pipeline is an error listing where it was
 * looked for. */
int pt_pipeline_find(const char *name, const char *exe_dir, char *out, size_t outlen, char *err,
                     size_t errlen);

/* Load and check a pipeline file: known task classes, known config
 * fields with values of the right type, every task's input either raw or
 * the output of another task (no cycles). */
int pt_pipeline_load(const char *path, pt_pipeline *p, char *err, size_t errlen);

/* Apply one `-c label:field=value` override; an unknown label or field, or
 * a value of the wrong type, is an error naming it. */
int pt_pipeline_override(pt_pipeline *p, const char *spec, char *err, size_t errlen);

/* The config fields a task kind accepts, space-separated (for messages). */
const char *pt_task_fields(pt_task_kind kind);

/* What to run. */
typedef struct pt_run_options {
    const char *repo; /* repository path or label (butler_resolve_label) */
    const pt_pipeline *pipeline;
    const char *pipeline_name; /* as given with -p (provenance) */
    const char *const *inputs; /* input collections, in search order */
    size_t n_inputs;
    const char *output;     /* the CHAINED output collection (-o) */
    const char *output_run; /* the RUN collection; NULL: <output>/run */
    const char *query;      /* Butler --where expression ("" selects all) */
    int jobs;               /* data units in parallel (-j) */
    const char *job_id;     /* provenance (OCPSJOB); NULL: the output's last component */
} pt_run_options;

/* Run the pipeline: select the raws by the query in the inputs
 * (find-first), find the calibrations the tasks need in the inputs, run
 * the tasks in order (per-data-unit tasks on `jobs` threads), write the
 * outputs under the repository root in the run's directory, then register
 * them all in one transaction and define the output chain. On failure the
 * files written are removed and nothing is registered. *metrics (always
 * set, owned by the caller) describes the run: status, error, timings,
 * per-task metrics, a compact "summary" and the "outputs" list. */
int pt_run(const pt_run_options *o, json_t **metrics, char *err, size_t errlen);

/* Write metrics as JSON to path (through a temporary file and rename). */
int pt_write_metrics(const json_t *metrics, const char *path, char *err, size_t errlen);

#endif
