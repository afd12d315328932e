/*
 * ocps_topics.h - the OCPS topics and fields the application uses,
 * resolved once from whichever ts_xml release the CSC speaks.
 */
#ifndef OCPS_TOPICS_H
#define OCPS_TOPICS_H

#include <stddef.h>

#include "ocps/sal_interface.h"

typedef struct ocps_topics {
    int execute; /* topic indices */
    int abort_job;
    int job_result;
    int job_id;
    /* execute; prereq_jobs and output_dataset_types are NULL in releases
     * without them (12.0.0) */
    const sal_field_info *ex_pipeline;
    const sal_field_info *ex_version;
    const sal_field_info *ex_config;
    const sal_field_info *ex_data_query;
    const sal_field_info *ex_prereq_jobs;
    const sal_field_info *ex_output_dataset_types;
    const sal_field_info *abort_job_id;  /* abort_job.job_id */
    const sal_field_info *result_job_id; /* job_result */
    const sal_field_info *result_exit_code;
    const sal_field_info *result_result;
    const sal_field_info *id_event_name; /* job_id */
    const sal_field_info *id_seq_num;
    const sal_field_info *id_job_id;
} ocps_topics;

/* Resolve every topic and field of `comp` the application uses; fails
 * with a message naming the first one the release lacks. */
int ocps_topics_resolve(const sal_component_info *comp, ocps_topics *out, char *err, size_t errlen);

#endif
