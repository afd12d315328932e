/* sal_kafka.c - the Kafka transport (ts_salobj 8 wire); see sal_kafka.h. */
#include "sal_kafka.h"
#include "ocps/sal_env.h"
#include "ocps/sal_logline.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <librdkafka/rdkafka.h>

#include "sal_kafka_codec.h"
#include "sal_kafka_config.h"
#include "sal_kafka_registry.h"
#include "ocps/sal_sample.h"
#include "ocps/sal_time.h"
#include "ocps/yaml_json.h"

#include "sal_kafka__internal.h"
static void kafka_close(sal_transport *t);
static int topic_register(sal_transport *t, int topic, long registry_ms, char *err, size_t errlen);

/* ---- helpers ---- */

int kafka__topic_by_name(const sal_transport *t, const char *name)
{
    for (size_t i = 0; i < t->comp->ntopics; i++) {
        if (strcmp(t->topics[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static bool topic_wants_history(const sal_topic_info *ti)
{
    return ti->kind == SAL_TOPIC_EVENT;
}

/* The component's entry in the YAML file LSST_HISTORY_READ_CONFIG names
 * (a mapping of component name to a number of records), as salobj 8's
 * get_max_history_for_indexed_component() reads it: no variable, no file
 * or no entry leaves *depth as it is. A file that is not such a mapping,
 * or an entry that is not a number of records, is an error. */
static int read_history_config(const char *component, long *depth, char *err, size_t errlen)
{
    const char *path = getenv("LSST_HISTORY_READ_CONFIG");
    struct stat st;
    if (path == NULL || path[0] == '\0' || (stat(path, &st) != 0 && (errno == ENOENT || errno == ENOTDIR))) {
        return 0;
    }
    char why[1024];
    json_t *root = yaml_json_load_file(path, why, sizeof why);
    if (root == NULL) {
        snprintf(err, errlen, "LSST_HISTORY_READ_CONFIG: %s", why);
        return -EINVAL;
    }
    int rc = 0;
    json_t *v = json_object_get(root, component);
    if (!json_is_object(root)) {
        snprintf(err, errlen,
                 "LSST_HISTORY_READ_CONFIG: %s: expected a mapping of component name to a number of history "
                 "records",
                 path);
        rc = -EINVAL;
    } else if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 0 ||
                             json_integer_value(v) > KAFKA_MAX_HISTORY_LIMIT)) {
        snprintf(err, errlen, "LSST_HISTORY_READ_CONFIG: %s: %s must be a number of records from 0 to %d",
                 path, component, KAFKA_MAX_HISTORY_LIMIT);
        rc = -EINVAL;
    } else if (v != NULL) {
        *depth = (long)json_integer_value(v);
    }
    json_decref(root);
    return rc;
}

/* salobj 8: LSST_MAX_HISTORY_READ, else 500; then the component's entry in
 * LSST_HISTORY_READ_CONFIG's file. Used by indexed components only. */
static int read_max_history(sal_transport *t, char *err, size_t errlen)
{
    long n;
    int rc = sal_env_int("LSST_MAX_HISTORY_READ", KAFKA_MAX_HISTORY_READ, 0, KAFKA_MAX_HISTORY_LIMIT,
                         "a number of records", &n, err, errlen);
    if (rc == 0) {
        rc = read_history_config(t->comp->name, &n, err, errlen);
    }
    t->max_history = (int)n;
    return rc;
}

/* ---- librdkafka callbacks ---- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    sal_transport *t = opaque;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        atomic_store(&t->delivery_timeout_reported, false);
        atomic_store(&t->delivery_error_reported, false);
        return;
    }
    unsigned n = atomic_fetch_add(&t->delivery_failures, 1) + 1;
    SAL_TRANSPORT_COUNT(t->cbs.stats, delivery_failures);
    /* A message that outlived message.timeout.ms (a broker away longer
     * than a site's setting; ours waits without limit) is lost to an
     * outage, which the CSC survives as salobj's do: a warning. Any other
     * failure (a topic refused, a message too large) is the CSC's to
     * report: FAULT. Each kind is reported once until a delivery succeeds. */
    bool timed_out = m->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT && t->cbs.on_warning != NULL;
    if (atomic_load(&t->closing) ||
        atomic_exchange(timed_out ? &t->delivery_timeout_reported : &t->delivery_error_reported, true)) {
        return;
    }
    char msg[512];
    snprintf(msg, sizeof msg,
             "Kafka: a message to %s was not delivered: %s%s (%u failed so far; further failures of this "
             "kind are not reported until a delivery succeeds)",
             m->rkt ? rd_kafka_topic_name(m->rkt) : "?", rd_kafka_err2str(m->err),
             timed_out ? " (message.timeout.ms passed while the broker was unreachable)" : "", n);
    if (timed_out) {
        t->cbs.on_warning(t->cbs.arg, msg);
    } else {
        t->cbs.on_error(t->cbs.arg, msg);
    }
}

/* Client errors (broker down, ...) are usually transient and librdkafka
 * recovers by itself: log them at most every 10 s, naming the broker
 * address tried when none answers; fatal ones are reported. A refused
 * login is only counted: librdkafka logs it itself (kafka__on_log). */
void kafka__on_client_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    sal_transport *t = opaque;
    SAL_TRANSPORT_COUNT(t->cbs.stats, connection_errors);
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[256], msg[512];
        rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        snprintf(msg, sizeof msg, "Kafka: fatal error: %s", fatal);
        t->cbs.on_error(t->cbs.arg, msg);
        return;
    }
    if (code == RD_KAFKA_RESP_ERR__AUTHENTICATION) {
        return; /* librdkafka's own FAIL line (kafka__on_log) says the same, with nothing to add */
    }
    double now = sal_clock_monotonic();
    if (now - t->last_client_error >= 10.0) {
        t->last_client_error = now;
        /* no broker yet: say which address is tried, and that it goes on trying */
        bool unreachable = code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
                           code == RD_KAFKA_RESP_ERR__RESOLVE || code == RD_KAFKA_RESP_ERR__TRANSPORT;
        sal_log_say(SAL_LOGLINE_WARNING, "sal_kafka", "%s: %s: %s%s%s%s", rd_kafka_name(rk),
                    rd_kafka_err2name((rd_kafka_resp_err_t)code), reason,
                    unreachable ? " (cannot reach the Kafka broker at LSST_KAFKA_BROKER_ADDR=" : "",
                    unreachable && t->env.broker != NULL ? t->env.broker : "",
                    unreachable ? "; still trying)" : "");
    }
}

/* librdkafka's own log lines (a failed connection, an authentication
 * refused, a property the broker ignores) go out as this program's log
 * lines, so that stderr stays one format (OCPS_LOG_FORMAT=json: one JSON
 * object a line); librdkafka writes them raw ("%3|...") otherwise. Called
 * on librdkafka's threads: sal_log_say writes each line in one write.
 * Levels are syslog's. */
static void kafka__on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    int py = level <= 3   ? SAL_LOGLINE_ERROR
             : level == 4 ? SAL_LOGLINE_WARNING
             : level <= 6 ? SAL_LOGLINE_INFO
                          : SAL_LOGLINE_DEBUG;
    sal_log_say(py, "rdkafka", "%s: %s: %s", rk != NULL ? rd_kafka_name(rk) : "rdkafka", fac, buf);
}

/* ---- open: clients ---- */

static void make_group_id(const sal_transport *t, char *buf, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, len, "ocps-c-%s-%d-%ld-%lx%lx", t->comp->name, (int)t->index, (long)getpid(),
             (unsigned long)ts.tv_nsec, (unsigned long)(uintptr_t)t);
}

static int new_client(sal_transport *t, sal_kafka_role role, char *err, size_t errlen)
{
    char group[128];
    make_group_id(t, group, sizeof group);
    rd_kafka_conf_t *conf = sal_kafka_client_conf(&t->env, role, group, err, errlen);
    if (conf == NULL) {
        return -EINVAL;
    }
    rd_kafka_conf_set_opaque(conf, t);
    rd_kafka_conf_set_error_cb(conf, kafka__on_client_error);
    rd_kafka_conf_set_log_cb(conf, kafka__on_log);
    if (role == SAL_KAFKA_PRODUCER) {
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    }
    char msg[512];
    rd_kafka_t *rk = rd_kafka_new(role == SAL_KAFKA_PRODUCER ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, conf,
                                  msg, sizeof msg);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "Kafka %s: %s", role == SAL_KAFKA_PRODUCER ? "producer" : "consumer", msg);
        return -EINVAL;
    }
    if (role == SAL_KAFKA_PRODUCER) {
        t->producer = rk;
    } else {
        t->consumer = rk;
        rd_kafka_poll_set_consumer(rk);
    }
    return 0;
}

/* ---- open: topics ---- */

static void init_topic_names(sal_transport *t)
{
    for (size_t i = 0; i < t->comp->ntopics; i++) {
        kafka_topic *kt = &t->topics[i];
        const sal_topic_info *ti = &t->comp->topics[i];
        snprintf(kt->name, sizeof kt->name, "lsst.%s.%s.%s", t->env.subname, t->comp->name, ti->sal_name);
        kt->keylen = sal_kafka_key(t->comp, ti, t->index, kt->key, sizeof kt->key);
        kt->history_end = -1;
    }
}

/* Partition counts of our topics from the cluster's metadata (all topics:
 * asking for one topic would make a broker that allows it create it),
 * waiting at most timeout_ms for the broker. */
static int load_metadata(sal_transport *t, int timeout_ms, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t rc = rd_kafka_metadata(t->producer, 1, NULL, &md, timeout_ms);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "Kafka broker %s: cannot read metadata: %s", t->env.broker,
                 rd_kafka_err2str(rc));
        return -EHOSTUNREACH; /* not reached: may come back */
    }
    for (int i = 0; i < md->topic_cnt; i++) {
        int k = kafka__topic_by_name(t, md->topics[i].topic);
        if (k >= 0 && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            t->topics[k].npartitions = md->topics[i].partition_cnt;
        }
    }
    rd_kafka_metadata_destroy(md);
    return 0;
}

static rd_kafka_NewTopic_t *new_topic_spec(const sal_transport *t, int k, char *err, size_t errlen)
{
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(t->topics[k].name, 1, t->env.replication, err, errlen);
    if (nt != NULL && t->comp->topics[k].kind == SAL_TOPIC_EVENT &&
        rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact") != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_NewTopic_destroy(nt);
        snprintf(err, errlen, "cannot set cleanup.policy");
        return NULL;
    }
    return nt;
}

/* The opener's bound (sal_transport_cbs.open_timeout) on the whole open:
 * its end on sal_clock_monotonic, 0 when it gave none. */
static double opener_deadline(const sal_transport_cbs *cbs)
{
    double s = cbs->open_timeout;
    if (!(s > 0) || s >= INT_MAX / 1000) {
        return 0;
    }
    return sal_clock_monotonic() + s;
}

/* What is left of the opener's bound in ms (1 once it has passed: a
 * request then fails at once, saying what it waited for), 0 when it gave
 * none. */
static int opener_bound_ms(const sal_transport *t)
{
    if (t->open_deadline <= 0) {
        return 0;
    }
    double ms = (t->open_deadline - sal_clock_monotonic()) * 1000.0;
    return ms >= 1 ? (int)ms : 1;
}

/* How long a step of open waits for the broker: what is left of the
 * opener's bound, else KAFKA_TIMEOUT_MS. */
static int open_timeout_ms(const sal_transport *t)
{
    int ms = opener_bound_ms(t);
    return ms > 0 ? ms : KAFKA_TIMEOUT_MS;
}

/* Wait (at most timeout_ms) for a CreateTopics result; "" in msg if every
 * topic was created or already existed. */
static void create_topics_result(rd_kafka_queue_t *q, int timeout_ms, char *msg, size_t len)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms);
    msg[0] = '\0';
    if (ev == NULL) {
        snprintf(msg, len, "CreateTopics timed out");
        return;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR || res == NULL) {
        snprintf(msg, len, "CreateTopics: %s", rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return;
    }
    size_t n;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            const char *why = rd_kafka_topic_result_error_string(tr[i]);
            snprintf(msg, len, "CreateTopics %s: %s", rd_kafka_topic_result_name(tr[i]),
                     why ? why : rd_kafka_err2str(e));
            break;
        }
    }
    rd_kafka_event_destroy(ev);
}

/* Create the component's topics the cluster lacks, as salobj does,
 * waiting at most open's bound (its request and operation timeouts; the
 * result a second later at most). */
static void create_missing_topics(sal_transport *t)
{
    int bound_ms = open_timeout_ms(t);
    size_t n = 0;
    rd_kafka_NewTopic_t **specs = calloc(t->comp->ntopics, sizeof *specs);
    char msg[256] = "out of memory";
    for (size_t i = 0; specs != NULL && i < t->comp->ntopics; i++) {
        if (t->topics[i].npartitions == 0 &&
            (specs[n] = new_topic_spec(t, (int)i, msg, sizeof msg)) != NULL) {
            n++;
        }
    }
    if (specs != NULL && n > 0) {
        rd_kafka_AdminOptions_t *opts =
            rd_kafka_AdminOptions_new(t->producer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        rd_kafka_AdminOptions_set_request_timeout(opts, bound_ms, NULL, 0);
        rd_kafka_AdminOptions_set_operation_timeout(opts, bound_ms, NULL, 0);
        rd_kafka_queue_t *q = rd_kafka_queue_new(t->producer);
        rd_kafka_CreateTopics(t->producer, specs, n, opts, q);
        create_topics_result(q, bound_ms + 1000, msg, sizeof msg);
        rd_kafka_queue_destroy(q);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_NewTopic_destroy_array(specs, n);
    }
    free(specs);
    if (msg[0] != '\0' && n > 0) {
        snprintf(t->create_error, sizeof t->create_error, "%s", msg);
        sal_log_say(SAL_LOGLINE_WARNING, "sal_kafka",
                    "could not create the %s topics (%s); using the existing ones", t->comp->name, msg);
    }
}

static size_t count_missing_topics(const sal_transport *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->comp->ntopics; i++) {
        n += t->topics[i].npartitions == 0;
    }
    return n;
}

/* After CreateTopics succeeded, the cluster's metadata may list the new
 * topics a moment later (another broker answers): read it again, every
 * KAFKA_TOPIC_POLL_MS, until every topic is listed or open's bound has
 * passed, as salobj polls list_topics after creating. A creation that
 * failed is not waited for (its topics are reported missing by their
 * reader or writer). */
static int await_created_topics(sal_transport *t, char *err, size_t errlen)
{
    double deadline = sal_clock_monotonic() + open_timeout_ms(t) / 1000.0;
    for (;;) {
        double left_ms = (deadline - sal_clock_monotonic()) * 1000.0;
        int rc = load_metadata(t, left_ms > 1 ? (int)left_ms : 1, err, errlen);
        if (rc != 0 || count_missing_topics(t) == 0 || t->create_error[0] != '\0' ||
            sal_clock_monotonic() + KAFKA_TOPIC_POLL_MS / 1000.0 > deadline) {
            return rc;
        }
        struct timespec pause = {0, KAFKA_TOPIC_POLL_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
}

static int setup_topics(sal_transport *t, char *err, size_t errlen)
{
    int rc = load_metadata(t, open_timeout_ms(t), err, errlen);
    if (rc != 0) {
        return rc;
    }
    if (count_missing_topics(t) == 0) {
        return 0;
    }
    create_missing_topics(t);
    return await_created_topics(t, err, errlen);
}

/* The topic exists (re-reading metadata once if it was missing). */
static int topic_check_exists(sal_transport *t, int topic, char *err, size_t errlen)
{
    kafka_topic *kt = &t->topics[topic];
    if (kt->npartitions == 0) {
        int rc = load_metadata(t, KAFKA_TIMEOUT_MS, err, errlen);
        if (rc != 0) {
            return rc;
        }
    }
    if (kt->npartitions == 0) {
        snprintf(err, errlen, "Kafka topic %s does not exist and could not be created%s%s", kt->name,
                 t->create_error[0] ? ": " : "", t->create_error);
        return -ENOENT;
    }
    return 0;
}

/* ---- open / close ---- */

static int kafka_open_clients(sal_transport *t, char *err, size_t errlen)
{
    int rc = sal_kafka_env_read(&t->env, err, errlen);
    if (rc != 0) {
        return rc;
    }
    t->env_read = true;
    rc = read_max_history(t, err, errlen);
    if (rc == 0) {
        rc = sal_kafka_registry_new(&t->registry, t->env.registry_url, err, errlen);
    }
    if (rc == 0) {
        rc = new_client(t, SAL_KAFKA_PRODUCER, err, errlen);
    }
    if (rc == 0) {
        rc = new_client(t, SAL_KAFKA_CONSUMER, err, errlen);
    }
    return rc;
}

/* Every existing topic's schema, registered now: reader_create,
 * writer_create and write then never wait on the registry. A topic
 * missing from the cluster is left to its reader_create or writer_create,
 * which fail with why. The requests wait at most what is left of the
 * opener's bound (else each the registry's own). */
static int register_all(sal_transport *t, char *err, size_t errlen)
{
    for (size_t i = 0; i < t->comp->ntopics; i++) {
        if (t->topics[i].npartitions > 0) {
            int rc = topic_register(t, (int)i, opener_bound_ms(t), err, errlen);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

static int kafka_open(sal_transport **out, const sal_component_info *comp, int32_t index,
                      const sal_transport_cbs *cbs, char *err, size_t errlen)
{
    *out = NULL;
    sal_transport *t = calloc(1, sizeof *t);
    if (t == NULL || (t->topics = calloc(comp->ntopics, sizeof *t->topics)) == NULL) {
        free(t);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    t->comp = comp;
    t->index = index;
    t->cbs = *cbs;
    t->open_deadline = opener_deadline(cbs);
    t->last_client_error = -1e9;
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->fetch_lock, NULL);
    pthread_cond_init(&t->fetch_cond, NULL);
    char note[256];
    sal_clock_init(&t->clock, NULL, note, sizeof note);
    int rc = kafka_open_clients(t, err, errlen);
    if (rc == 0) {
        init_topic_names(t);
        rc = setup_topics(t, err, errlen);
    }
    if (rc == 0) {
        rc = register_all(t, err, errlen);
    }
    if (rc == 0) {
        if (pthread_create(&t->fetch_thread, NULL, kafka__fetch_thread, t) != 0) {
            snprintf(err, errlen, "cannot start the Kafka schema fetch thread");
            rc = -EAGAIN;
        } else {
            t->fetch_started = true;
        }
    }
    if (rc == 0 && pthread_create(&t->thread, NULL, kafka__poll_thread, t) != 0) {
        snprintf(err, errlen, "cannot start the Kafka poll thread");
        rc = -EAGAIN;
    }
    if (rc != 0) {
        kafka_close(t);
        return rc;
    }
    t->thread_started = true;
    *out = t;
    return 0;
}

static void free_history(sal_transport *t, int topic)
{
    kafka_topic *kt = &t->topics[topic];
    for (size_t i = 0; i < kt->nhistory; i++) {
        sal_sample_free(&t->comp->topics[topic], kt->history[i].sample);
    }
    free(kt->history);
    kt->history = NULL;
    kt->nhistory = 0;
}

static void fetch_list_free(fetch_req **list)
{
    while (*list != NULL) {
        fetch_req *f = *list;
        *list = f->next;
        sal_kafka_decoder_free(f->decoder);
        free(f);
    }
}

static void close_producer(sal_transport *t)
{
    atomic_store(&t->closing, true);
    rd_kafka_flush(t->producer, KAFKA_CLOSE_FLUSH_MS);
    int left = rd_kafka_outq_len(t->producer);
    if (left > 0) {
        sal_log_say(SAL_LOGLINE_WARNING, "sal_kafka",
                    "closing with %d Kafka messages or requests not delivered", left);
        rd_kafka_purge(t->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(t->producer, 0);
    }
    for (size_t i = 0; i < t->comp->ntopics; i++) {
        if (t->topics[i].rkt != NULL) {
            rd_kafka_topic_destroy(t->topics[i].rkt);
        }
    }
    rd_kafka_destroy(t->producer);
}

static void kafka_close(sal_transport *t)
{
    if (t == NULL) {
        return;
    }
    if (t->thread_started) {
        atomic_store(&t->stop, true);
        pthread_join(t->thread, NULL);
    }
    if (t->fetch_started) {
        pthread_mutex_lock(&t->fetch_lock);
        t->fetch_stop = true;
        pthread_cond_signal(&t->fetch_cond);
        pthread_mutex_unlock(&t->fetch_lock);
        sal_kafka_registry_cancel(t->registry); /* a fetch in progress ends now */
        pthread_join(t->fetch_thread, NULL);
    }
    fetch_list_free(&t->fetch_todo);
    fetch_list_free(&t->fetch_done);
    fetch_list_free(&t->fetch_asked);
    fetch_list_free(&t->fetch_failed);
    if (t->consumer != NULL) {
        rd_kafka_consumer_close(t->consumer);
        rd_kafka_destroy(t->consumer);
    }
    if (t->producer != NULL) {
        close_producer(t);
    }
    while (t->decoders != NULL) {
        decoder_entry *next = t->decoders->next;
        sal_kafka_decoder_free(t->decoders->decoder);
        free(t->decoders);
        t->decoders = next;
    }
    for (size_t i = 0; t->topics != NULL && i < t->comp->ntopics; i++) {
        sal_kafka_codec_fini(&t->topics[i].codec);
        free_history(t, (int)i);
        while (t->topics[i].held_head != NULL) {
            held_msg *h = t->topics[i].held_head;
            t->topics[i].held_head = h->next;
            free(h);
        }
    }
    sal_kafka_registry_free(t->registry);
    if (t->env_read) {
        sal_kafka_env_fini(&t->env);
    }
    sal_clock_fini(&t->clock);
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->fetch_lock);
    pthread_cond_destroy(&t->fetch_cond);
    free(t->topics);
    free(t);
}

/* ---- endpoints ---- */

/* Register the topic's schema (once) and prepare its encoder, waiting at
 * most registry_ms (0: the registry's own bound) for the registry. */
static int topic_register(sal_transport *t, int topic, long registry_ms, char *err, size_t errlen)
{
    kafka_topic *kt = &t->topics[topic];
    const sal_topic_info *ti = &t->comp->topics[topic];
    if (kt->registered) {
        return 0;
    }
    int rc = topic_check_exists(t, topic, err, errlen);
    if (rc == 0 && !kt->codec_ready) {
        rc = sal_kafka_codec_init(&kt->codec, ti, ti->avro_schema, err, errlen);
        kt->codec_ready = rc == 0;
    }
    char subject[300];
    snprintf(subject, sizeof subject, "%s-value", kt->name);
    int32_t id = 0;
    if (rc == 0) {
        rc =
            sal_kafka_registry_register(t->registry, subject, ti->avro_schema, registry_ms, &id, err, errlen);
    }
    if (rc == 0) {
        pthread_mutex_lock(&t->lock);
        kt->schema_id = id;
        kt->registered = true;
        pthread_mutex_unlock(&t->lock);
    }
    return rc;
}

/* Where a reader starts in one partition (salobj's on_assign), always an
 * absolute offset from the watermarks just read: a logical one
 * (RD_KAFKA_OFFSET_BEGINNING) is resolved by librdkafka later, with its
 * own ListOffsets request (retried every 500 ms while the partition has no
 * leader yet), and the reader would be declared ready before it reads. */
static int64_t start_offset(const sal_transport *t, const sal_topic_info *ti, int64_t lo, int64_t hi)
{
    if (hi <= lo || !topic_wants_history(ti)) {
        return hi; /* empty, or no history: what is written from now on */
    }
    int64_t depth = t->comp->indexed ? t->max_history : 1;
    int64_t off = hi - depth;
    return off <= lo ? lo : off;
}

static int build_assignment(sal_transport *t, int topic, rd_kafka_topic_partition_list_t *list, char *err,
                            size_t errlen)
{
    kafka_topic *kt = &t->topics[topic];
    const sal_topic_info *ti = &t->comp->topics[topic];
    for (int p = 0; p < kt->npartitions; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(t->consumer, kt->name, p, &lo, &hi, KAFKA_TIMEOUT_MS);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "Kafka topic %s [%d]: cannot read offsets: %s", kt->name, p,
                     rd_kafka_err2str(e));
            return -EIO;
        }
        int64_t off = start_offset(t, ti, lo, hi);
        rd_kafka_topic_partition_list_add(list, kt->name, p)->offset = off;
        if (kt->npartitions == 1 && topic_wants_history(ti) && off != hi) {
            pthread_mutex_lock(&t->lock);
            kt->history_end = hi - 1;
            pthread_mutex_unlock(&t->lock);
        }
    }
    return 0;
}

static int kafka_reader_create(sal_transport *t, int topic, char *err, size_t errlen)
{
    kafka_topic *kt = &t->topics[topic];
    if (kt->reading) {
        return 0;
    }
    int rc = topic_register(t, topic, 0, err, errlen);
    if (rc != 0) {
        return rc;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(kt->npartitions);
    rc = build_assignment(t, topic, list, err, errlen);
    if (rc == 0) {
        rd_kafka_error_t *e = rd_kafka_incremental_assign(t->consumer, list);
        if (e != NULL) {
            snprintf(err, errlen, "Kafka topic %s: cannot assign: %s", kt->name, rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            rc = -EIO;
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
    if (rc == 0) {
        kt->reading = true;
        /* a reader is "matched" once it has what a late joiner reads: at
         * once, or when its history read has been delivered (the
         * duplicate-instance check waits for that) */
        pthread_mutex_lock(&t->lock);
        bool later = kt->history_end >= 0;
        kt->match_after_history = later;
        pthread_mutex_unlock(&t->lock);
        if (!later) {
            t->cbs.on_matched(t->cbs.arg, topic, false, 1, 1);
        }
    }
    return rc;
}

static int kafka_writer_create(sal_transport *t, int topic, char *err, size_t errlen)
{
    kafka_topic *kt = &t->topics[topic];
    if (kt->writing) {
        return 0;
    }
    int rc = topic_register(t, topic, 0, err, errlen);
    if (rc != 0) {
        return rc;
    }
    /* A topic handle makes librdkafka fetch the topic's metadata now,
     * instead of delaying the first message. */
    kt->rkt = rd_kafka_topic_new(t->producer, kt->name, NULL);
    if (kt->rkt == NULL) {
        snprintf(err, errlen, "Kafka topic %s: %s", kt->name, rd_kafka_err2str(rd_kafka_last_error()));
        return -EIO;
    }
    kt->writing = true;
    t->cbs.on_matched(t->cbs.arg, topic, true, 1, 1);
    return 0;
}

static int kafka_write_one(sal_transport *t, int topic, const void *sample, char *err, size_t errlen)
{
    kafka_topic *kt = &t->topics[topic];
    if (!kt->writing) {
        /* registered at open, so this does not wait on the registry; a
         * topic that was missing then is not looked for again here */
        if (!kt->registered) {
            snprintf(err, errlen, "Kafka topic %s: not available (it did not exist at open)", kt->name);
            return -ENOENT;
        }
        int rc = kafka_writer_create(t, topic, err, errlen);
        if (rc != 0) {
            return rc;
        }
    }
    sal_kafka_buf buf = {0};
    int rc = sal_kafka_encode(&kt->codec, kt->schema_id, sample, &t->clock, &buf, err, errlen);
    if (rc != 0) {
        sal_kafka_buf_fini(&buf);
        return rc;
    }
    const void *key = kt->keylen > 0 ? kt->key : NULL;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        t->producer, RD_KAFKA_V_RKT(kt->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE(buf.data, buf.len), RD_KAFKA_V_KEY(key, (size_t)kt->keylen), RD_KAFKA_V_END);
    sal_kafka_buf_fini(&buf);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "Kafka topic %s: cannot queue a message: %s%s", kt->name, rd_kafka_err2str(e),
                 e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? " (the broker has not taken earlier messages)" : "");
        return e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? -EAGAIN : -EIO;
    }
    return 0;
}

static int kafka_write(sal_transport *t, int topic, const void *sample, char *err, size_t errlen)
{
    int rc = kafka_write_one(t, topic, sample, err, errlen);
    if (rc != 0) {
        SAL_TRANSPORT_COUNT(t->cbs.stats, write_failures);
    }
    return rc;
}

static void kafka_library_version(char *buf, size_t len)
{
    snprintf(buf, len, "librdkafka=%s", rd_kafka_version_str());
}

const sal_transport_ops sal_kafka_transport = {
    .name = "kafka",
    .library_version = kafka_library_version,
    .revcode = SAL_REVCODE_AVRO,
    .keeps_history = true,
    .identity_max = SAL_IDENTITY_MAX, /* private_identity is an unbounded Avro string */
    .open = kafka_open,
    .reader_create = kafka_reader_create,
    .writer_create = kafka_writer_create,
    .write = kafka_write,
    .close = kafka_close,
};
