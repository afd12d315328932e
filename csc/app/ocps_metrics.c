/*
 * ocps_metrics.c - the CSC's optional /metrics (see ocps_metrics.h).
 *
 * Requests are answered on the MHD call after the headers (answering on
 * the first call makes MHD 0.9.75 close keep-alive connections), as
 * ocps-engine's service does.
 */
#define _XOPEN_SOURCE 700
#include "ocps/ocps_metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "ocps/sal.h"
#include "ocps/sal_protocol.h"
#include "ocps/prom_text.h"
#include "ocps/uv_mhd.h"

struct ocps_metrics {
    uv_mhd *http;
    double start_time; /* unix seconds */
    sal_csc *csc;
    ocps_app *app;
    const char *version;
};

/* "COMPLETE" for CMD_COMPLETE. */
static const char *ack_label(int slot)
{
    const char *name = sal_ack_name(sal_ack_of_slot(slot));
    return strncmp(name, "CMD_", 4) == 0 ? name + 4 : name;
}

static unsigned long long load(const atomic_ullong *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void render_csc(prom_text *t, const ocps_metrics *m)
{
    const sal_csc *c = m->csc;
    const sal_component_info *comp = sal_csc_component(c);
    sal *rt = sal_csc_sal(m->csc);
    char l1[256], l2[256], l3[256], l4[256];
    prom_text_family(t, "ocps_csc_info", "gauge",
                     "The CSC: SAL component and index, interface (ts_xml) and program version.");
    prom_text_printf(
        t, "ocps_csc_info{name=\"%s\",index=\"%d\",xml_version=\"%s\",transport=\"%s\",version=\"%s\"} 1\n",
        prom_label(comp->name, l1, sizeof l1), (int)sal_csc_index(c),
        prom_label(comp->xml_version, l2, sizeof l2),
        prom_label(rt != NULL ? sal_transport_name(rt) : "", l3, sizeof l3),
        prom_label(m->version, l4, sizeof l4));

    static const struct {
        sal_state state;
        const char *name;
    } states[] = {{SAL_STATE_DISABLED, "DISABLED"},
                  {SAL_STATE_ENABLED, "ENABLED"},
                  {SAL_STATE_FAULT, "FAULT"},
                  {SAL_STATE_OFFLINE, "OFFLINE"},
                  {SAL_STATE_STANDBY, "STANDBY"}};
    prom_text_family(t, "ocps_csc_summary_state", "gauge",
                     "1 for the current summary state, 0 for the others.");
    sal_state now = sal_csc_state(c);
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        prom_text_printf(t, "ocps_csc_summary_state{state=\"%s\"} %d\n", states[i].name,
                         states[i].state == now ? 1 : 0);
    }

    prom_text_family(
        t, "ocps_csc_commands_received_total", "counter",
        "Command samples received for this CSC, by command (also those ignored before the start).");
    for (size_t i = 0; i < comp->ntopics; i++) {
        const sal_csc_cmd_stats *st = sal_csc_command_stats(c, (int)i);
        if (st != NULL) {
            const char *name = comp->topics[i].sal_name;
            name += strncmp(name, "command_", 8) == 0 ? 8 : 0;
            prom_text_printf(t, "ocps_csc_commands_received_total{command=\"%s\"} %llu\n",
                             prom_label(name, l1, sizeof l1), st->received);
        }
    }
    prom_text_family(
        t, "ocps_csc_commands_total", "counter",
        "Commands that ended, by command and final ack (COMPLETE, FAILED, ABORTED, NOPERM, ...).");
    for (size_t i = 0; i < comp->ntopics; i++) {
        const sal_csc_cmd_stats *st = sal_csc_command_stats(c, (int)i);
        if (st == NULL) {
            continue;
        }
        const char *name = comp->topics[i].sal_name;
        name += strncmp(name, "command_", 8) == 0 ? 8 : 0;
        for (int k = 0; k < SAL_ACK_SLOTS; k++) {
            if (st->final[k] > 0) {
                prom_text_printf(t, "ocps_csc_commands_total{command=\"%s\",ack=\"%s\"} %llu\n",
                                 prom_label(name, l1, sizeof l1), ack_label(k), st->final[k]);
            }
        }
    }
    const sal_csc_stats *cs = sal_csc_get_stats(c);
    prom_text_family(t, "ocps_csc_acks_sent_total", "counter",
                     "ackcmd samples written, by ack (INPROGRESS included).");
    for (int k = 0; k < SAL_ACK_SLOTS; k++) {
        prom_text_printf(t, "ocps_csc_acks_sent_total{ack=\"%s\"} %llu\n", ack_label(k), cs->acks[k]);
    }
    prom_text_family(t, "ocps_csc_heartbeats_total", "counter", "heartbeat events written.");
    prom_text_printf(t, "ocps_csc_heartbeats_total %llu\n", cs->heartbeats);
    if (rt == NULL) {
        return;
    }
    const sal_stats *ss = sal_get_stats(rt);
    prom_text_family(t, "ocps_csc_samples_written_total", "counter",
                     "Samples written, by kind of topic (events left out as unchanged are not counted).");
    for (int k = SAL_TOPIC_COMMAND; k <= SAL_TOPIC_ACKCMD; k++) {
        prom_text_printf(t, "ocps_csc_samples_written_total{kind=\"%s\"} %llu\n",
                         sal_topic_kind_name((sal_topic_kind)k), ss->written[k]);
    }
    prom_text_family(
        t, "ocps_csc_transport_errors_total", "counter",
        "Transport errors: write (a sample refused), delivery (lost later), undecodable (a received message "
        "dropped), read (a failed take), connection (client errors such as a broker down).");
    const sal_transport_stats *ts = &ss->transport;
    prom_text_printf(t, "ocps_csc_transport_errors_total{kind=\"write\"} %llu\n", load(&ts->write_failures));
    prom_text_printf(t, "ocps_csc_transport_errors_total{kind=\"delivery\"} %llu\n",
                     load(&ts->delivery_failures));
    prom_text_printf(t, "ocps_csc_transport_errors_total{kind=\"undecodable\"} %llu\n",
                     load(&ts->undecodable));
    prom_text_printf(t, "ocps_csc_transport_errors_total{kind=\"read\"} %llu\n", load(&ts->read_errors));
    prom_text_printf(t, "ocps_csc_transport_errors_total{kind=\"connection\"} %llu\n",
                     load(&ts->connection_errors));
}

static void render_app(prom_text *t, const ocps_metrics *m)
{
    const engine *e = ocps_app_engine(m->app);
    if (e != NULL) {
        prom_text_family(t, "ocps_csc_jobs", "gauge", "Live jobs of the CSC's engine, by phase.");
        for (int p = ENGINE_PENDING; p <= ENGINE_EXECUTING; p++) {
            prom_text_printf(t, "ocps_csc_jobs{phase=\"%s\"} %zu\n", engine_phase_name((engine_phase)p),
                             engine_count(e, (engine_phase)p));
        }
        prom_text_family(t, "ocps_csc_queue_length", "gauge", "Jobs waiting for a free slot (queued).");
        prom_text_printf(t, "ocps_csc_queue_length %zu\n", engine_count(e, ENGINE_QUEUED));
        engine_waiting_info w = engine_get_waiting(e);
        prom_text_family(
            t, "ocps_csc_waiting_jobs", "gauge",
            "Jobs waiting to run (pending, and queued not handed over), as max_waiting_jobs counts them.");
        prom_text_printf(t, "ocps_csc_waiting_jobs %zu\n", w.waiting);
        prom_text_family(t, "ocps_csc_max_waiting_jobs", "gauge", "max_waiting_jobs (0: no limit).");
        prom_text_printf(t, "ocps_csc_max_waiting_jobs %zu\n", w.max_waiting);
        prom_text_family(t, "ocps_csc_jobs_refused_total", "counter",
                         "executes refused since the start because max_waiting_jobs jobs waited.");
        prom_text_printf(t, "ocps_csc_jobs_refused_total %llu\n", w.refused);
    }
    const ocps_app_job_stats *js = ocps_app_get_job_stats(m->app);
    prom_text_family(t, "ocps_csc_jobs_ended_total", "counter",
                     "Jobs that ended since the start, by final phase.");
    for (int p = ENGINE_COMPLETED; p <= ENGINE_UNKNOWN; p++) {
        prom_text_printf(t, "ocps_csc_jobs_ended_total{phase=\"%s\"} %llu\n",
                         engine_phase_name((engine_phase)p), js->ended[p]);
    }
    prom_text_family(t, "ocps_csc_job_duration_seconds", "histogram",
                     "Run time of the jobs that ended since the start (0 for a job that never ran).");
    for (size_t i = 0; i < OCPS_APP_DURATION_BUCKETS; i++) {
        prom_text_printf(t, "ocps_csc_job_duration_seconds_bucket{le=\"%g\"} %llu\n",
                         ocps_app_duration_buckets[i], js->buckets[i]);
    }
    prom_text_printf(t, "ocps_csc_job_duration_seconds_bucket{le=\"+Inf\"} %llu\n", js->count);
    prom_text_printf(t, "ocps_csc_job_duration_seconds_sum %.6f\n", js->sum);
    prom_text_printf(t, "ocps_csc_job_duration_seconds_count %llu\n", js->count);
    ocps_app_backend b[3];
    size_t nb = ocps_app_backends(m->app, b);
    if (nb > 0) {
        prom_text_family(
            t, "ocps_csc_backend_up", "gauge",
            "1 if the backend answered its latest request (Redis connected, UWS server, Slurm's squeue).");
        for (size_t i = 0; i < nb; i++) {
            prom_text_printf(t, "ocps_csc_backend_up{backend=\"%s\"} %d\n", b[i].name, b[i].up);
        }
    }
}

char *ocps_metrics_render(const ocps_metrics *m, size_t *len)
{
    prom_text t;
    if (prom_text_init(&t, 8192) != 0) {
        return NULL;
    }
    prom_text_family(&t, "process_start_time_seconds", "gauge",
                     "Start time of the process since the epoch, in seconds.");
    prom_text_printf(&t, "process_start_time_seconds %.3f\n", m->start_time);
    if (m->csc != NULL) {
        render_csc(&t, m);
    }
    if (m->app != NULL) {
        render_app(&t, m);
    }
    return prom_text_finish(&t, len);
}

/* ---- HTTP ------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type, char *body,
                             size_t len, const char *allow)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (allow != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    }
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *msg,
                                  const char *allow)
{
    char *body = strdup(msg);
    return reply(conn, status, "text/plain; charset=utf-8", body, body != NULL ? strlen(body) : 0, allow);
}

static int started_marker;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    (void)upload_data;
    ocps_metrics *m = cls;
    if (*con_cls == NULL) {
        *con_cls = &started_marker; /* answered on the next call */
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* a body is not wanted: dropped */
        return MHD_YES;
    }
    bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (strcmp(url, "/metrics") != 0) {
        return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found: only /metrics is served\n", NULL);
    }
    if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", "GET, HEAD");
    }
    size_t len = 0;
    char *body = ocps_metrics_render(m, &len);
    if (body == NULL) {
        return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
    }
    return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len, NULL);
}

int ocps_metrics_open(ocps_metrics **out, uv_loop_t *loop, const char *listen, const char *option, char *err,
                      size_t errlen)
{
    *out = NULL;
    struct sockaddr_storage ss;
    bool loopback = false;
    if (uv_mhd_parse_listen(listen, option, &ss, &loopback, err, errlen) != 0) {
        return -1;
    }
    ocps_metrics *m = calloc(1, sizeof *m);
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    m->start_time = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    struct MHD_Daemon *daemon = MHD_start_daemon(
        uv_mhd_flags(&ss), 0, NULL, NULL, on_request, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_CONNECTION_LIMIT, 64u,
        MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (uv_mhd_attach(&m->http, loop, daemon, NULL, NULL) != 0) {
        snprintf(err, errlen, "%s %s: cannot listen there (in use, or not an address of this host)", option,
                 listen);
        free(m);
        return -1;
    }
    uv_mhd_run(m->http);
    *out = m;
    return 0;
}

void ocps_metrics_set_sources(ocps_metrics *m, sal_csc *csc, ocps_app *app, const char *version)
{
    m->csc = csc;
    m->app = app;
    m->version = version;
}

unsigned ocps_metrics_port(const ocps_metrics *m)
{
    return uv_mhd_port(m->http);
}

static void on_closed(void *arg)
{
    free(arg);
}

void ocps_metrics_close(ocps_metrics *m)
{
    if (m == NULL) {
        return;
    }
    m->csc = NULL;
    m->app = NULL;
    uv_mhd_close(m->http, on_closed, m);
}
