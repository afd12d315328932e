/* ocps_config.c - see ocps_config.h. */
#include "ocps_config.h"

#include <stdio.h>
#include <string.h>

/* Indices whose jobs go to the Rapid Analysis backend need no block. */
static bool needs_instance(int32_t index)
{
    return index != 101;
}

static void copy_string(json_t *obj, const char *key, char *out, size_t len)
{
    const char *s = json_string_value(json_object_get(obj, key));
    snprintf(out, len, "%s", s ? s : "");
}

static int find_instance(json_t *instances, int32_t index, json_t **found, char *err, size_t errlen)
{
    size_t i;
    json_t *item;
    *found = NULL;
    json_array_foreach(instances, i, item)
    {
        if (json_integer_value(json_object_get(item, "sal_index")) != index) {
            continue;
        }
        if (*found != NULL) {
            snprintf(err, errlen, "Duplicate configuration for sal_index=%d", index);
            return -1;
        }
        *found = item;
    }
    if (*found == NULL) {
        snprintf(err, errlen, "No configuration found for sal_index=%d", index);
        return -1;
    }
    return 0;
}

static int read_instance(const sal_component_info *comp, int32_t index, json_t *block, ocps_config *out,
                         char *err, size_t errlen)
{
    copy_string(block, "instance", out->instance, sizeof out->instance);
    const char *expected = sal_component_index_name(comp, index);
    if (expected != NULL && strcmp(expected, out->instance) != 0) {
        snprintf(err, errlen, "instance=%s does not match sal_index=%d (%s)", out->instance, index, expected);
        return -1;
    }
    copy_string(block, "url", out->url, sizeof out->url);
    copy_string(block, "butler", out->butler, sizeof out->butler);
    copy_string(block, "input_collection", out->input_collection, sizeof out->input_collection);
    copy_string(block, "output_glob", out->output_glob, sizeof out->output_glob);
    out->poll_interval = json_number_value(json_object_get(block, "poll_interval"));
    out->has_instance = true;
    return 0;
}

static ocps_executor_kind executor_of(const char *s)
{
    if (s != NULL && strcmp(s, "slurm") == 0) {
        return OCPS_EXECUTOR_SLURM;
    }
    if (s != NULL && strcmp(s, "uws") == 0) {
        return OCPS_EXECUTOR_UWS;
    }
    return OCPS_EXECUTOR_LOCAL;
}

int ocps_config_from_json(const sal_component_info *comp, int32_t index, json_t *config, ocps_config *out,
                          char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (needs_instance(index)) {
        json_t *block;
        if (find_instance(json_object_get(config, "instances"), index, &block, err, errlen) != 0 ||
            read_instance(comp, index, block, out, err, errlen) != 0) {
            return -1;
        }
    }
    out->executor = executor_of(json_string_value(json_object_get(config, "executor")));
    out->max_concurrent_jobs = (int)json_integer_value(json_object_get(config, "max_concurrent_jobs"));
    out->max_job_duration = json_number_value(json_object_get(config, "max_job_duration"));
    out->inprogress_interval = json_number_value(json_object_get(config, "inprogress_interval"));
    copy_string(config, "work_root", out->work_root, sizeof out->work_root);
    copy_string(config, "job_store", out->job_store, sizeof out->job_store);
    out->result_max_bytes = (int)json_integer_value(json_object_get(config, "result_max_bytes"));
    out->max_results = (int)json_integer_value(json_object_get(config, "max_results"));
    copy_string(config, "pipetask", out->pipetask, sizeof out->pipetask);
    out->prereq_must_succeed = json_is_true(json_object_get(config, "prereq_must_succeed"));
    out->abort_grace = json_number_value(json_object_get(config, "abort_grace"));
    return 0;
}
