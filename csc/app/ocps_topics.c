/* ocps_topics.c - resolving the OCPS topics and fields; see ocps_topics.h. */
#include "ocps/ocps_topics.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "ocps/sal_sample.h"

typedef struct field_spec {
    const char *topic;
    const char *field;
    size_t slot; /* offsetof(ocps_topics, <field>) */
    bool required;
} field_spec;

#define SLOT(name) offsetof(ocps_topics, name)

static const field_spec fields[] = {
    {"command_execute", "pipeline", SLOT(ex_pipeline), true},
    {"command_execute", "version", SLOT(ex_version), true},
    {"command_execute", "config", SLOT(ex_config), true},
    {"command_execute", "data_query", SLOT(ex_data_query), true},
    {"command_execute", "prereq_jobs", SLOT(ex_prereq_jobs), false},
    {"command_execute", "output_dataset_types", SLOT(ex_output_dataset_types), false},
    {"command_abort_job", "job_id", SLOT(abort_job_id), true},
    {"logevent_job_result", "job_id", SLOT(result_job_id), true},
    {"logevent_job_result", "exit_code", SLOT(result_exit_code), true},
    {"logevent_job_result", "result", SLOT(result_result), true},
    {"logevent_job_id", "event_name", SLOT(id_event_name), true},
    {"logevent_job_id", "seq_num", SLOT(id_seq_num), true},
    {"logevent_job_id", "job_id", SLOT(id_job_id), true},
};

static int topic(const sal_component_info *comp, const char *name, char *err, size_t errlen)
{
    int t = sal_component_find_topic(comp, name);
    if (t < 0) {
        snprintf(err, errlen, "the %s interface of ts_xml %s has no %s", comp->name, comp->xml_version, name);
    }
    return t;
}

int ocps_topics_resolve(const sal_component_info *comp, ocps_topics *out, char *err, size_t errlen)
{
    if ((out->execute = topic(comp, "command_execute", err, errlen)) < 0 ||
        (out->abort_job = topic(comp, "command_abort_job", err, errlen)) < 0 ||
        (out->job_result = topic(comp, "logevent_job_result", err, errlen)) < 0 ||
        (out->job_id = topic(comp, "logevent_job_id", err, errlen)) < 0) {
        return -EINVAL;
    }
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const field_spec *f = &fields[i];
        const sal_field_info *info =
            sal_topic_field(&comp->topics[sal_component_find_topic(comp, f->topic)], f->field);
        if (info == NULL && f->required) {
            snprintf(err, errlen, "the %s interface of ts_xml %s has no %s.%s", comp->name, comp->xml_version,
                     f->topic, f->field);
            return -EINVAL;
        }
        *(const sal_field_info **)((char *)out + f->slot) = info;
    }
    return 0;
}
