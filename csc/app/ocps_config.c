/* ocps_config.c - see ocps_config.h. */
#include "ocps/ocps_config.h"
#include "ocps/ocps_interface.h"
#include "ocps/ocps_job.h"

#include <stdio.h>
#include <string.h>

/* Indices whose jobs go to the Rapid Analysis backend need no block. */
static bool needs_instance(int32_t index)
{
    return index != 101;
}

/* Copy the string obj[key] (absent: "") into out[0..len), whole: a value
 * that does not fit, or holds a NUL byte, is refused with a message naming
 * where.key and the bound rather than cut. */
static int copy_string(json_t *obj, const char *where, const char *key, char *out, size_t len, char *err,
                       size_t errlen)
{
    json_t *value = json_object_get(obj, key);
    const char *s = json_string_value(value);
    size_t n = json_string_length(value);
    out[0] = '\0';
    if (s == NULL) {
        return 0;
    }
    if (n >= len) {
        snprintf(err, errlen, "%s%s: %zu bytes is longer than the limit of %zu bytes", where, key, n,
                 len - 1);
        return -1;
    }
    if (memchr(s, '\0', n) != NULL) {
        snprintf(err, errlen, "%s%s: a NUL byte (\\0) at byte %zu is not allowed", where, key,
                 (size_t)((const char *)memchr(s, '\0', n) - s));
        return -1;
    }
    memcpy(out, s, n + 1);
    return 0;
}

static int find_instance(json_t *instances, int32_t index, json_t **found, size_t *position, char *err,
                         size_t errlen)
{
    size_t i;
    json_t *item;
    *found = NULL;
    json_array_foreach(instances, i, item)
    {
        if (json_number_value(json_object_get(item, "sal_index")) != (double)index) {
            continue;
        }
        if (*found != NULL) {
            snprintf(err, errlen, "Duplicate configuration for sal_index=%d", index);
            return -1;
        }
        *found = item;
        *position = i;
    }
    if (*found == NULL) {
        snprintf(err, errlen, "No configuration found for sal_index=%d", index);
        return -1;
    }
    return 0;
}

static int read_instance(int32_t index, json_t *block, size_t position, ocps_config *out, char *err,
                         size_t errlen)
{
    char where[48];
    snprintf(where, sizeof where, "instances[%zu].", position);
    if (copy_string(block, where, "instance", out->instance, sizeof out->instance, err, errlen) != 0 ||
        copy_string(block, where, "url", out->url, sizeof out->url, err, errlen) != 0 ||
        copy_string(block, where, "butler", out->butler, sizeof out->butler, err, errlen) != 0 ||
        copy_string(block, where, "input_collection", out->input_collection, sizeof out->input_collection,
                    err, errlen) != 0 ||
        copy_string(block, where, "output_glob", out->output_glob, sizeof out->output_glob, err, errlen) !=
            0) {
        return -1;
    }
    const char *expected = ocps_index_name(index);
    if (expected != NULL && strcmp(expected, out->instance) != 0) {
        snprintf(err, errlen, "instance=%s does not match sal_index=%d (%s)", out->instance, index, expected);
        return -1;
    }
    if (ocps_output_globs_check("output_glob", out->output_glob, err, errlen) != 0) {
        return -1;
    }
    out->poll_interval = json_number_value(json_object_get(block, "poll_interval"));
    out->has_instance = true;
    return 0;
}

static const char *const executor_names[] = {"local", "slurm", "uws"}; /* by ocps_executor_kind */

const char *ocps_executor_name(ocps_executor_kind kind)
{
    return (size_t)kind < sizeof executor_names / sizeof executor_names[0] ? executor_names[kind] : "?";
}

static ocps_executor_kind executor_of(const char *s)
{
    for (size_t k = 0; s != NULL && k < sizeof executor_names / sizeof executor_names[0]; k++) {
        if (strcmp(s, executor_names[k]) == 0) {
            return (ocps_executor_kind)k;
        }
    }
    return OCPS_EXECUTOR_LOCAL;
}

/* Is the sbatch option of "--option=value" on the allow-list? */
static bool slurm_option_allowed(const char *word)
{
    static const char *const allowed[] = {"--constraint",
                                          "--exclude",
                                          "--nodelist",
                                          "--gres",
                                          "--licenses",
                                          "--reservation",
                                          "--nice",
                                          "--mem-per-cpu",
                                          "--tmp",
                                          "--exclusive",
                                          "--hint",
                                          "--wckey",
                                          NULL};
    size_t n = strcspn(word, "=");
    for (size_t i = 0; allowed[i] != NULL; i++) {
        if (strlen(allowed[i]) == n && strncmp(word, allowed[i], n) == 0) {
            return true;
        }
    }
    return false;
}

static int read_slurm(json_t *slurm, ocps_slurm_config *out, char *err, size_t errlen)
{
    if (copy_string(slurm, "slurm.", "partition", out->partition, sizeof out->partition, err, errlen) != 0 ||
        copy_string(slurm, "slurm.", "account", out->account, sizeof out->account, err, errlen) != 0 ||
        copy_string(slurm, "slurm.", "qos", out->qos, sizeof out->qos, err, errlen) != 0 ||
        copy_string(slurm, "slurm.", "memory", out->memory, sizeof out->memory, err, errlen) != 0 ||
        copy_string(slurm, "slurm.", "work_root", out->work_root, sizeof out->work_root, err, errlen) != 0 ||
        copy_string(slurm, "slurm.", "slurm_conf", out->slurm_conf, sizeof out->slurm_conf, err, errlen) !=
            0) {
        return -1;
    }
    out->cpus_per_job = (int)json_number_value(json_object_get(slurm, "cpus_per_job"));
    out->time_limit = json_number_value(json_object_get(slurm, "time_limit"));
    json_t *extra = json_object_get(slurm, "extra_options");
    size_t i;
    json_t *item;
    json_array_foreach(extra, i, item)
    {
        const char *word = json_string_value(item);
        if (i >= OCPS_SLURM_MAX_EXTRA || word == NULL ||
            json_string_length(item) >= sizeof out->extra_options[0]) {
            snprintf(err, errlen, "slurm.extra_options: at most %d words of fewer than %zu characters",
                     OCPS_SLURM_MAX_EXTRA, sizeof out->extra_options[0]);
            return -1;
        }
        if (strlen(word) != json_string_length(item)) {
            snprintf(err, errlen, "slurm.extra_options[%zu]: a NUL byte (\\0) is not allowed", i);
            return -1;
        }
        if (!slurm_option_allowed(word)) {
            snprintf(err, errlen, "slurm.extra_options[%zu]: sbatch option '%.*s' is not allowed", i,
                     (int)strcspn(word, "="), word);
            return -1;
        }
        snprintf(out->extra_options[i], sizeof out->extra_options[i], "%s", word);
        out->n_extra = i + 1;
    }
    return 0;
}

/* The strings of array key are carried whole: none may hold a NUL byte,
 * which a job's argument (a C string) would cut. */
static int check_no_nul(json_t *array, const char *key, char *err, size_t errlen)
{
    size_t i;
    json_t *item;
    json_array_foreach(array, i, item)
    {
        const char *s = json_string_value(item);
        if (s != NULL && strlen(s) != json_string_length(item)) {
            snprintf(err, errlen, "%s[%zu]: a NUL byte (\\0) at byte %zu is not allowed", key, i, strlen(s));
            return -1;
        }
    }
    return 0;
}

/* Every {placeholder} in a command template (`name`: command or
 * retrieve_command) must be one we fill. */
static int check_template(json_t *command, const char *name, char *err, size_t errlen)
{
    static const char *const known[] = {"pipetask",
                                        "pipeline",
                                        "version",
                                        "butler",
                                        "job_id",
                                        "output_collection",
                                        "output_run",
                                        "data_query",
                                        "input_collection",
                                        "config_words",
                                        "input_option",
                                        "dataset_type_options",
                                        NULL};
    size_t i;
    json_t *item;
    json_array_foreach(command, i, item)
    {
        const char *s = json_string_value(item);
        for (const char *p = strchr(s, '{'); p != NULL; p = strchr(p + 1, '{')) {
            const char *end = strchr(p, '}');
            bool ok = false;
            for (size_t k = 0; end != NULL && known[k] != NULL; k++) {
                ok = ok || ((size_t)(end - p - 1) == strlen(known[k]) &&
                            strncmp(p + 1, known[k], end - p - 1) == 0);
            }
            if (!ok) {
                snprintf(err, errlen, "%s[%zu]: unknown placeholder in '%s'", name, i, s);
                return -1;
            }
        }
    }
    return 0;
}

int ocps_config_from_json(int32_t index, json_t *config, ocps_config *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (needs_instance(index)) {
        json_t *block;
        size_t position = 0;
        if (find_instance(json_object_get(config, "instances"), index, &block, &position, err, errlen) != 0 ||
            read_instance(index, block, position, out, err, errlen) != 0) {
            return -1;
        }
    }
    out->executor = executor_of(json_string_value(json_object_get(config, "executor")));
    const char *api = json_string_value(json_object_get(config, "uws_api"));
    out->uws_reference = api != NULL && strcmp(api, "uws-api-server") == 0;
    if (out->executor == OCPS_EXECUTOR_UWS && !out->has_instance) {
        snprintf(err, errlen, "executor uws needs an instances[] block with the server's url for index %d",
                 (int)index);
        return -1;
    }
    if (read_slurm(json_object_get(config, "slurm"), &out->slurm, err, errlen) != 0) {
        return -1;
    }
    out->max_concurrent_jobs = (int)json_number_value(json_object_get(config, "max_concurrent_jobs"));
    out->max_waiting_jobs = (int)json_number_value(json_object_get(config, "max_waiting_jobs"));
    out->max_job_duration = json_number_value(json_object_get(config, "max_job_duration"));
    out->inprogress_interval = json_number_value(json_object_get(config, "inprogress_interval"));
    out->final_ack_min_delay = json_number_value(json_object_get(config, "final_ack_min_delay"));
    if (out->final_ack_min_delay > out->inprogress_interval) { /* no CMD_INPROGRESS while held */
        snprintf(err, errlen,
                 "final_ack_min_delay (%g s) must not exceed inprogress_interval (%g s): an execute's "
                 "client waits 3 x inprogress_interval for its next ack",
                 out->final_ack_min_delay, out->inprogress_interval);
        return -1;
    }
    if (copy_string(config, "", "work_root", out->work_root, sizeof out->work_root, err, errlen) != 0 ||
        copy_string(config, "", "job_store", out->job_store, sizeof out->job_store, err, errlen) != 0 ||
        copy_string(config, "", "pipetask", out->pipetask, sizeof out->pipetask, err, errlen) != 0) {
        return -1;
    }
    out->result_max_bytes = (int)json_number_value(json_object_get(config, "result_max_bytes"));
    out->max_results = (int)json_number_value(json_object_get(config, "max_results"));
    out->job_log_max_mb = json_number_value(json_object_get(config, "job_log_max_mb"));
    out->prereq_must_succeed = json_is_true(json_object_get(config, "prereq_must_succeed"));
    const char *failed_ack = json_string_value(json_object_get(config, "failed_job_ack"));
    out->failed_job_ack_failed = failed_ack != NULL && strcmp(failed_ack, "failed") == 0;
    out->abort_grace = json_number_value(json_object_get(config, "abort_grace"));
    out->simulation_duration = json_number_value(json_object_get(config, "simulation_duration"));
    json_t *retention = json_object_get(config, "retention");
    out->retention_max_age_days = json_number_value(json_object_get(retention, "max_age_days"));
    out->retention_max_jobs = (long long)json_number_value(json_object_get(retention, "max_jobs"));
    out->retention_max_gb = json_number_value(json_object_get(retention, "max_gb"));
    out->retention_interval = json_number_value(json_object_get(retention, "interval"));
    out->command = json_incref(json_object_get(config, "command"));
    out->allowed_options = json_incref(json_object_get(config, "allowed_options"));
    out->retrieve_command = json_incref(json_object_get(config, "retrieve_command"));
    if (check_no_nul(out->command, "command", err, errlen) != 0 ||
        check_no_nul(out->allowed_options, "allowed_options", err, errlen) != 0 ||
        check_no_nul(out->retrieve_command, "retrieve_command", err, errlen) != 0 ||
        check_template(out->command, "command", err, errlen) != 0 ||
        check_template(out->retrieve_command, "retrieve_command", err, errlen) != 0) {
        ocps_config_clear(out);
        return -1;
    }
    return 0;
}

void ocps_config_clear(ocps_config *c)
{
    json_decref(c->command);
    json_decref(c->allowed_options);
    json_decref(c->retrieve_command);
    memset(c, 0, sizeof *c);
}
