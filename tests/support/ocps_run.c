/* ocps_run.c - see ocps_run.h. */
#include "ocps_run.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ocps/sal_sample.h"
#include "test_util.h"

void or_on_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    (void)error;
    or_run *r = arg;
    if (r->nacks < OR_MAX_ACKS) {
        fx_ack *a = &r->acks[r->nacks];
        a->ack = ack;
        snprintf(a->result, sizeof a->result, "%s", result);
        a->timeout = timeout;
        a->at = tu_now();
    }
    r->nacks++;
    if (ack == SAL_CMD_INPROGRESS && r->job_id[0] == '\0' && result != NULL) {
        json_t *j = json_loads(result, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "job_id"));
        snprintf(r->job_id, sizeof r->job_id, "%s", id ? id : "");
        json_decref(j);
    }
    if (final) {
        r->done = true;
        r->ack = ack;
        r->done_at = tu_now();
        snprintf(r->result, sizeof r->result, "%s", result);
    }
}

static bool execute_ready(fx *f, void *arg)
{
    (void)arg;
    return sal_remote_ready(f->remote, "execute");
}

/* Everything but acks[] (large; written as acks come). */
static void or_reset(or_run *r)
{
    r->done = false;
    r->ack = 0;
    r->result[0] = '\0';
    r->job_id[0] = '\0';
    r->seqnum = 0;
    r->nacks = 0;
    r->sent_at = r->done_at = 0;
}

int or_execute(fx *f, or_run *r, const or_fields *x, double timeout)
{
    or_reset(r);
    char err[256];
    if (sal_remote_prepare(f->remote, "execute", err, sizeof err) != 0 ||
        !fx_run_until(f, execute_ready, NULL, 10)) {
        fprintf(stderr, "or_execute: the Remote cannot send execute\n");
        return -1;
    }
    int t = sal_remote_command_topic(f->remote, "execute");
    const sal_topic_info *ti = &f->comp->topics[t];
    void *s = sal_remote_new_command(f->remote, "execute");
    const struct {
        const char *name;
        const char *value;
    } fields[] = {{"pipeline", x->pipeline},
                  {"config", x->config},
                  {"data_query", x->data_query},
                  {"prereq_jobs", x->prereq_jobs},
                  {"output_dataset_types", x->output_dataset_types}};
    int rc = 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0] && rc == 0; i++) {
        if (fields[i].value != NULL && sal_topic_field(ti, fields[i].name) != NULL) {
            rc = sal_sample_set_string(ti, s, fields[i].name, fields[i].value, err, sizeof err);
        }
    }
    r->sent_at = tu_now();
    if (rc == 0) {
        rc = sal_remote_command(f->remote, "execute", s, timeout, or_on_ack, r, &r->seqnum, err, sizeof err);
    }
    sal_sample_free(ti, s);
    if (rc != 0) {
        fprintf(stderr, "or_execute: %s\n", err);
        return -1;
    }
    return 0;
}

bool or_done(fx *f, void *arg)
{
    (void)f;
    return ((const or_run *)arg)->done;
}

bool or_job_completed(const or_run *r)
{
    return r->done && r->ack == SAL_CMD_COMPLETE && strstr(r->result, "\"phase\":\"completed\"") != NULL;
}

bool or_has_job_id(fx *f, void *arg)
{
    (void)f;
    const or_run *r = arg;
    return r->job_id[0] != '\0' || r->done;
}

bool or_all_done(fx *f, void *arg)
{
    (void)f;
    or_run *const *runs = arg;
    for (size_t i = 0; runs[i] != NULL; i++) {
        if (!runs[i]->done) {
            return false;
        }
    }
    return true;
}

bool or_wait_done(fx *f, or_run *r, double timeout)
{
    return fx_run_until(f, or_done, r, timeout);
}

const char *or_record_string(const fx *f, size_t i, const char *name)
{
    const char *s = sal_sample_get_string(&f->comp->topics[f->records[i].topic], f->records[i].sample, name);
    return s != NULL ? s : "";
}

int or_job_results(const fx *f, const char *id, long *first)
{
    int n = 0;
    *first = -1;
    int t = sal_component_find_topic(f->comp, "logevent_job_result");
    for (size_t i = 0; i < f->nrecords; i++) {
        if (f->records[i].topic == t && strcmp(or_record_string(f, i, "job_id"), id) == 0 && n++ == 0) {
            *first = (long)i;
        }
    }
    return n;
}

typedef struct or_result_wait {
    const char *id;
    long index;
} or_result_wait;

static bool or_result_seen(fx *f, void *arg)
{
    or_result_wait *w = arg;
    return or_job_results(f, w->id, &w->index) > 0;
}

long or_one_result(fx *f, const char *id, double timeout, double settle)
{
    or_result_wait w = {id, -1};
    if (!fx_run_until(f, or_result_seen, &w, timeout)) {
        return -1;
    }
    fx_run_for(f, settle);
    long first;
    return or_job_results(f, id, &first) == 1 ? first : -2;
}

json_t *or_result_json(const fx *f, long i)
{
    return json_loads(or_record_string(f, (size_t)i, "result"), 0, NULL);
}

bool or_runs_done(fx *f, void *arg)
{
    (void)f;
    const or_run *runs = arg;
    for (size_t i = 0; runs[i].ack != -1; i++) {
        if (!runs[i].done) {
            return false;
        }
    }
    return true;
}

bool or_enabled_ready(fx *f, void *arg)
{
    (void)arg;
    const void *s = sal_remote_last(f->remote, "logevent_summaryState");
    int t = sal_component_find_topic(f->comp, "logevent_summaryState");
    return sal_remote_ready(f->remote, "execute") && s != NULL &&
           sal_sample_get_i32(&f->comp->topics[t], s, "summaryState") == SAL_STATE_ENABLED;
}

int or_wait_enabled(fx *f, size_t from, double timeout)
{
    double end = tu_now() + timeout;
    long i;
    while ((i = fx_wait_event(f, "logevent_summaryState", from, end - tu_now())) >= 0) {
        if (fx_i32(f, (size_t)i, "summaryState") == SAL_STATE_ENABLED) {
            return 0;
        }
        from = (size_t)i + 1;
    }
    return -1;
}

static bool or_commands_can_be_sent(fx *f, void *arg)
{
    (void)arg;
    return sal_remote_ready(f->remote, "execute") && sal_remote_ready(f->remote, "abort_job");
}

bool or_commands_ready(fx *f, double timeout)
{
    char err[256];
    sal_remote_prepare(f->remote, "execute", err, sizeof err);
    sal_remote_prepare(f->remote, "abort_job", err, sizeof err);
    return fx_run_until(f, or_commands_can_be_sent, NULL, timeout);
}

bool or_result_lists(const json_t *res, const char *tail)
{
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(res, "results"), i, item)
    {
        const char *uri = json_string_value(json_object_get(item, "uri"));
        if (uri != NULL && strlen(uri) >= strlen(tail) &&
            strcmp(uri + strlen(uri) - strlen(tail), tail) == 0) {
            return true;
        }
    }
    return false;
}

void or_retrieval_argv(char *buf, size_t len, const char *job_id)
{
    snprintf(buf, len,
             "retrieve-artifacts\n--collections\nu/ocps/%s/run\n--dataset-type\nverify*Stats\n"
             "--dataset-type\nbias\n--transfer\nauto\n--no-preserve-path\nLATISS\n.\n",
             job_id);
}
