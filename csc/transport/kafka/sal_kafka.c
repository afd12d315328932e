/* sal_kafka.c - the Kafka transport (ts_salobj 8 wire); see sal_kafka.h. */
#include "sal_kafka.h"
#include "ocps/sal_env.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "sal_kafka_codec.h"
#include "sal_kafka_config.h"
#include "sal_kafka_registry.h"
#include "ocps/sal_sample.h"
#include "ocps/sal_time.h"

#define KAFKA_TIMEOUT_MS 10000     /* metadata, watermarks, topic creation */
#define KAFKA_POLL_MS 20           /* background thread's consumer poll */
#define KAFKA_CLOSE_FLUSH_MS 2000  /* close waits this long for deliveries */
#define KAFKA_DECODE_LOG_EVERY 10  /* undecodable messages: log 1st, then every 10th */
#define KAFKA_MAX_HISTORY_READ 500 /* salobj's LSST_MAX_HISTORY_READ default */
#define KAFKA_MAX_HELD 10000       /* messages of one topic waiting for a writer schema */
#define KAFKA_FETCH_RETRY_S 10.0   /* a failed schema fetch is tried again after this */

/* Newest historical sample of one salIndex (indexed history reads). */
typedef struct history_item {
    int32_t sal_index;
    void *sample;
} history_item;

/* A message waiting for its writer schema to be fetched (poll thread). */
typedef struct held_msg {
    struct held_msg *next;
    int64_t offset;
    size_t len;
    uint8_t data[];
} held_msg;

typedef struct kafka_topic {
    char name[256]; /* lsst.<subname>.<Component>.<sal_name> */
    char key[256];
    int keylen; /* 0: no key (telemetry) */
    int npartitions;
    bool codec_ready;
    sal_kafka_codec codec;
    bool registered; /* schema_id is valid (guarded by lock) */
    int32_t schema_id;
    bool reading;
    bool writing;
    rd_kafka_topic_t *rkt; /* producer topic handle, once writing */
    /* history read (guarded by lock): until offset history_end is seen,
     * keep the newest sample per salIndex instead of delivering. */
    int64_t history_end; /* -1: not reading history */
    history_item *history;
    size_t nhistory;
    /* poll thread only */
    unsigned decode_failures;
    held_msg *held_head; /* in arrival order, behind the first unknown schema */
    held_msg *held_tail;
    size_t nheld;
    unsigned held_dropped;
} kafka_topic;

typedef struct decoder_entry {
    struct decoder_entry *next;
    int topic;
    int32_t schema_id;
    sal_kafka_decoder *decoder;
} decoder_entry;

/* A writer schema to fetch for a topic, and the outcome. */
typedef struct fetch_req {
    struct fetch_req *next;
    int topic;
    int32_t schema_id;
    sal_kafka_decoder *decoder; /* NULL: failed, see err */
    char err[512];
    double failed_at; /* monotonic; kept this long in the failed list */
} fetch_req;

struct sal_transport {
    const sal_component_info *comp;
    int32_t index;
    sal_transport_cbs cbs;
    sal_kafka_env env;
    bool env_read;
    int max_history; /* indexed components' event history depth */
    sal_clock clock;
    sal_kafka_registry *registry;
    rd_kafka_t *producer;
    rd_kafka_t *consumer;
    kafka_topic *topics;
    char create_error[512]; /* why missing topics could not be created */
    pthread_mutex_t lock;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    atomic_bool closing;
    atomic_bool delivery_error_reported;
    atomic_uint delivery_failures;
    decoder_entry *decoders;  /* poll thread only */
    double last_client_error; /* poll thread only: rate limit of client errors */
    /* Writer schemas are fetched on their own thread, so that a slow
     * registry holds up only the messages of the topic that needs one. */
    pthread_t fetch_thread;
    bool fetch_started;
    pthread_mutex_t fetch_lock;
    pthread_cond_t fetch_cond;
    bool fetch_stop;         /* guarded by fetch_lock */
    fetch_req *fetch_todo;   /* guarded by fetch_lock */
    fetch_req *fetch_done;   /* guarded by fetch_lock */
    fetch_req *fetch_asked;  /* poll thread only: asked for, not done */
    fetch_req *fetch_failed; /* poll thread only: failed recently */
};

static void kafka_close(sal_transport *t);
static int topic_register(sal_transport *t, int topic, char *err, size_t errlen);

/* ---- helpers ---- */

static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int topic_by_name(const sal_transport *t, const char *name)
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

static int read_max_history(sal_transport *t, char *err, size_t errlen)
{
    long n;
    int rc = sal_env_int("LSST_MAX_HISTORY_READ", KAFKA_MAX_HISTORY_READ, 0, 1000000, "a number of records",
                         &n, err, errlen);
    t->max_history = (int)n;
    return rc;
}

/* ---- librdkafka callbacks ---- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    sal_transport *t = opaque;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        atomic_store(&t->delivery_error_reported, false);
        return;
    }
    unsigned n = atomic_fetch_add(&t->delivery_failures, 1) + 1;
    if (atomic_load(&t->closing) || atomic_exchange(&t->delivery_error_reported, true)) {
        return;
    }
    char msg[512];
    snprintf(msg, sizeof msg,
             "Kafka: a message to %s was not delivered: %s (%u failed so far; further failures are not "
             "reported until a delivery succeeds)",
             m->rkt ? rd_kafka_topic_name(m->rkt) : "?", rd_kafka_err2str(m->err), n);
    t->cbs.on_error(t->cbs.arg, msg);
}

/* Client errors (broker down, ...) are usually transient and librdkafka
 * recovers by itself: log them at most every 10 s; fatal ones are reported. */
static void on_client_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    sal_transport *t = opaque;
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[256], msg[512];
        rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        snprintf(msg, sizeof msg, "Kafka: fatal error: %s", fatal);
        t->cbs.on_error(t->cbs.arg, msg);
        return;
    }
    double now = monotonic_now();
    if (now - t->last_client_error >= 10.0) {
        t->last_client_error = now;
        fprintf(stderr, "sal_kafka: %s: %s: %s\n", rd_kafka_name(rk),
                rd_kafka_err2name((rd_kafka_resp_err_t)code), reason);
    }
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
    /* key, value pairs; the YAML files and broker-client settings may override them */
    const char *const producer[] = {"acks",
                                    t->env.acks,
                                    "linger.ms",
                                    "0",
                                    "message.timeout.ms",
                                    "300000",
                                    "queue.buffering.max.messages",
                                    "100000",
                                    "allow.auto.create.topics",
                                    "false",
                                    "log.connection.close",
                                    "false",
                                    NULL};
    const char *const consumer[] = {"group.id",
                                    group,
                                    "enable.auto.commit",
                                    "false",
                                    "auto.offset.reset",
                                    "earliest",
                                    "allow.auto.create.topics",
                                    "false",
                                    "fetch.wait.max.ms",
                                    "10",
                                    "enable.partition.eof",
                                    "false",
                                    "log.connection.close",
                                    "false",
                                    NULL};
    rd_kafka_conf_t *conf =
        sal_kafka_conf_new(&t->env, role, role == SAL_KAFKA_PRODUCER ? producer : consumer, err, errlen);
    if (conf == NULL) {
        return -EINVAL;
    }
    rd_kafka_conf_set_opaque(conf, t);
    rd_kafka_conf_set_error_cb(conf, on_client_error);
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
 * asking for one topic would make a broker that allows it create it). */
static int load_metadata(sal_transport *t, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t rc = rd_kafka_metadata(t->producer, 1, NULL, &md, KAFKA_TIMEOUT_MS);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "Kafka broker %s: cannot read metadata: %s", t->env.broker,
                 rd_kafka_err2str(rc));
        return -EIO;
    }
    for (int i = 0; i < md->topic_cnt; i++) {
        int k = topic_by_name(t, md->topics[i].topic);
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

/* Wait for a CreateTopics result; "" in msg if every topic was created or
 * already existed. */
static void create_topics_result(rd_kafka_queue_t *q, char *msg, size_t len)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, KAFKA_TIMEOUT_MS + 5000);
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

/* Create the component's topics the cluster lacks, as salobj does. */
static void create_missing_topics(sal_transport *t)
{
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
        rd_kafka_AdminOptions_set_request_timeout(opts, KAFKA_TIMEOUT_MS, NULL, 0);
        rd_kafka_AdminOptions_set_operation_timeout(opts, KAFKA_TIMEOUT_MS, NULL, 0);
        rd_kafka_queue_t *q = rd_kafka_queue_new(t->producer);
        rd_kafka_CreateTopics(t->producer, specs, n, opts, q);
        create_topics_result(q, msg, sizeof msg);
        rd_kafka_queue_destroy(q);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_NewTopic_destroy_array(specs, n);
    }
    free(specs);
    if (msg[0] != '\0' && n > 0) {
        snprintf(t->create_error, sizeof t->create_error, "%s", msg);
        fprintf(stderr, "sal_kafka: could not create the %s topics (%s); using the existing ones\n",
                t->comp->name, msg);
    }
}

static int setup_topics(sal_transport *t, char *err, size_t errlen)
{
    int rc = load_metadata(t, err, errlen);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < t->comp->ntopics; i++) {
        if (t->topics[i].npartitions == 0) {
            create_missing_topics(t);
            return load_metadata(t, err, errlen);
        }
    }
    return 0;
}

/* The topic exists (re-reading metadata once if it was missing). */
static int topic_check_exists(sal_transport *t, int topic, char *err, size_t errlen)
{
    kafka_topic *kt = &t->topics[topic];
    if (kt->npartitions == 0) {
        int rc = load_metadata(t, err, errlen);
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

static void *poll_thread(void *arg);
static void *fetch_thread(void *arg);

/* Every existing topic's schema, registered now: reader_create,
 * writer_create and write then never wait on the registry. A topic
 * missing from the cluster is left to its reader_create or writer_create,
 * which fail with why. */
static int register_all(sal_transport *t, char *err, size_t errlen)
{
    for (size_t i = 0; i < t->comp->ntopics; i++) {
        if (t->topics[i].npartitions > 0) {
            int rc = topic_register(t, (int)i, err, errlen);
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
        if (pthread_create(&t->fetch_thread, NULL, fetch_thread, t) != 0) {
            snprintf(err, errlen, "cannot start the Kafka schema fetch thread");
            rc = -EAGAIN;
        } else {
            t->fetch_started = true;
        }
    }
    if (rc == 0 && pthread_create(&t->thread, NULL, poll_thread, t) != 0) {
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
        fprintf(stderr, "sal_kafka: closing with %d Kafka messages or requests not delivered\n", left);
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

/* Register the topic's schema (once) and prepare its encoder. */
static int topic_register(sal_transport *t, int topic, char *err, size_t errlen)
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
        rc = sal_kafka_registry_register(t->registry, subject, ti->avro_schema, &id, err, errlen);
    }
    if (rc == 0) {
        pthread_mutex_lock(&t->lock);
        kt->schema_id = id;
        kt->registered = true;
        pthread_mutex_unlock(&t->lock);
    }
    return rc;
}

/* Where a reader starts in one partition (salobj's on_assign). */
static int64_t start_offset(const sal_transport *t, const sal_topic_info *ti, int64_t lo, int64_t hi)
{
    if (hi <= 0) {
        return RD_KAFKA_OFFSET_BEGINNING;
    }
    if (!topic_wants_history(ti)) {
        return hi;
    }
    int64_t depth = t->comp->indexed ? t->max_history : 1;
    if (depth == 0) {
        return hi;
    }
    int64_t off = hi - depth;
    return off <= lo ? RD_KAFKA_OFFSET_BEGINNING : off;
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
    int rc = topic_register(t, topic, err, errlen);
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
        t->cbs.on_matched(t->cbs.arg, topic, false, 1, 1);
    }
    return rc;
}

static int kafka_writer_create(sal_transport *t, int topic, char *err, size_t errlen)
{
    kafka_topic *kt = &t->topics[topic];
    if (kt->writing) {
        return 0;
    }
    int rc = topic_register(t, topic, err, errlen);
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

static int kafka_write(sal_transport *t, int topic, const void *sample, char *err, size_t errlen)
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

/* ---- the poll thread ---- */

static void log_decode_failure(sal_transport *t, int topic, const char *why)
{
    kafka_topic *kt = &t->topics[topic];
    kt->decode_failures++;
    if (kt->decode_failures == 1 || kt->decode_failures % KAFKA_DECODE_LOG_EVERY == 0) {
        fprintf(stderr, "sal_kafka: %s: dropped an undecodable message (%u so far): %s\n", kt->name,
                kt->decode_failures, why);
    }
}

static sal_kafka_decoder *find_decoder(sal_transport *t, int topic, int32_t id)
{
    for (decoder_entry *e = t->decoders; e != NULL; e = e->next) {
        if (e->topic == topic && e->schema_id == id) {
            return e->decoder;
        }
    }
    return NULL;
}

static void add_decoder(sal_transport *t, int topic, int32_t id, sal_kafka_decoder *d)
{
    decoder_entry *e = calloc(1, sizeof *e);
    if (e == NULL) {
        sal_kafka_decoder_free(d);
        return;
    }
    e->topic = topic;
    e->schema_id = id;
    e->decoder = d;
    e->next = t->decoders;
    t->decoders = e;
}

static fetch_req *find_req(fetch_req *list, int topic, int32_t id)
{
    for (fetch_req *f = list; f != NULL; f = f->next) {
        if (f->topic == topic && f->schema_id == id) {
            return f;
        }
    }
    return NULL;
}

/* The decoder for a writer schema id without waiting: a cached one, or one
 * for our own registered schema. NULL otherwise. */
static sal_kafka_decoder *get_decoder(sal_transport *t, int topic, int32_t id, char *err, size_t errlen)
{
    sal_kafka_decoder *d = find_decoder(t, topic, id);
    if (d != NULL) {
        return d;
    }
    const sal_topic_info *ti = &t->comp->topics[topic];
    pthread_mutex_lock(&t->lock);
    bool own = t->topics[topic].registered && t->topics[topic].schema_id == id;
    pthread_mutex_unlock(&t->lock);
    if (!own || sal_kafka_decoder_new(&d, ti, ti->avro_schema, strlen(ti->avro_schema), err, errlen) != 0) {
        return NULL;
    }
    add_decoder(t, topic, id, d);
    return d;
}

/* The failure of a recent fetch of writer schema `id` of `topic`; NULL if
 * none, or if it is old enough to try again. */
static const fetch_req *failed_recently(sal_transport *t, int topic, int32_t id)
{
    for (fetch_req **pp = &t->fetch_failed; *pp != NULL; pp = &(*pp)->next) {
        fetch_req *f = *pp;
        if (f->topic == topic && f->schema_id == id) {
            if (monotonic_now() - f->failed_at < KAFKA_FETCH_RETRY_S) {
                return f;
            }
            *pp = f->next;
            free(f);
            return NULL;
        }
    }
    return NULL;
}

/* Ask the fetch thread for writer schema `id` of `topic` (once); false if
 * out of memory. */
static bool ask_fetch(sal_transport *t, int topic, int32_t id)
{
    if (find_req(t->fetch_asked, topic, id) != NULL) {
        return true;
    }
    fetch_req *mine = calloc(1, sizeof *mine);
    fetch_req *theirs = calloc(1, sizeof *theirs);
    if (mine == NULL || theirs == NULL) {
        free(mine);
        free(theirs);
        return false;
    }
    mine->topic = theirs->topic = topic;
    mine->schema_id = theirs->schema_id = id;
    mine->next = t->fetch_asked;
    t->fetch_asked = mine;
    pthread_mutex_lock(&t->fetch_lock);
    theirs->next = t->fetch_todo;
    t->fetch_todo = theirs;
    pthread_cond_signal(&t->fetch_cond);
    pthread_mutex_unlock(&t->fetch_lock);
    return true;
}

static void *fetch_thread(void *arg)
{
    sal_transport *t = arg;
    pthread_mutex_lock(&t->fetch_lock);
    for (;;) {
        while (t->fetch_todo == NULL && !t->fetch_stop) {
            pthread_cond_wait(&t->fetch_cond, &t->fetch_lock);
        }
        if (t->fetch_stop) {
            break;
        }
        fetch_req *f = t->fetch_todo;
        t->fetch_todo = f->next;
        pthread_mutex_unlock(&t->fetch_lock);
        const sal_topic_info *ti = &t->comp->topics[f->topic];
        char *schema = NULL;
        if (sal_kafka_registry_fetch(t->registry, f->schema_id, &schema, f->err, sizeof f->err) == 0 &&
            sal_kafka_decoder_new(&f->decoder, ti, schema, strlen(schema), f->err, sizeof f->err) != 0) {
            f->decoder = NULL;
        }
        free(schema);
        pthread_mutex_lock(&t->fetch_lock);
        f->next = t->fetch_done;
        t->fetch_done = f;
    }
    pthread_mutex_unlock(&t->fetch_lock);
    return NULL;
}

/* Keep the newest historical sample per salIndex. Called with lock held. */
static void history_keep(sal_transport *t, int topic, void *sample)
{
    kafka_topic *kt = &t->topics[topic];
    const sal_topic_info *ti = &t->comp->topics[topic];
    int32_t idx = t->comp->indexed ? sal_sample_index(ti, sample) : 0;
    if (t->index != 0 && t->comp->indexed && idx != t->index) {
        sal_sample_free(ti, sample);
        return;
    }
    for (size_t i = 0; i < kt->nhistory; i++) {
        if (kt->history[i].sal_index == idx) {
            sal_sample_free(ti, kt->history[i].sample);
            memmove(&kt->history[i], &kt->history[i + 1], (kt->nhistory - i - 1) * sizeof *kt->history);
            kt->nhistory--;
            break;
        }
    }
    history_item *h = realloc(kt->history, (kt->nhistory + 1) * sizeof *h);
    if (h == NULL) {
        sal_sample_free(ti, sample);
        return;
    }
    kt->history = h;
    kt->history[kt->nhistory++] = (history_item){idx, sample};
}

/* Hand a decoded sample on, going through the history read if one is
 * in progress. */
static void deliver(sal_transport *t, int topic, int64_t offset, void *sample)
{
    kafka_topic *kt = &t->topics[topic];
    pthread_mutex_lock(&t->lock);
    if (kt->history_end < 0) {
        pthread_mutex_unlock(&t->lock);
        t->cbs.on_sample(t->cbs.arg, topic, sample);
        return;
    }
    history_keep(t, topic, sample);
    if (offset < kt->history_end) {
        pthread_mutex_unlock(&t->lock);
        return;
    }
    history_item *items = kt->history;
    size_t n = kt->nhistory;
    kt->history = NULL;
    kt->nhistory = 0;
    kt->history_end = -1;
    pthread_mutex_unlock(&t->lock);
    for (size_t i = 0; i < n; i++) {
        t->cbs.on_sample(t->cbs.arg, topic, items[i].sample);
    }
    free(items);
}

enum { MSG_DONE, MSG_NEEDS_SCHEMA };

/* Decode and deliver one message, or drop it with a log line; or, when its
 * writer schema must first be fetched, ask for it and say so (*id). */
static int process(sal_transport *t, int topic, const void *payload, size_t plen, int64_t offset, int32_t *id)
{
    char err[512];
    const uint8_t *body;
    size_t len;
    void *sample = NULL;
    if (sal_kafka_frame_parse(payload, plen, id, &body, &len, err, sizeof err) != 0) {
        log_decode_failure(t, topic, err);
        return MSG_DONE;
    }
    err[0] = '\0';
    sal_kafka_decoder *d = get_decoder(t, topic, *id, err, sizeof err);
    if (d == NULL && err[0] == '\0') {
        const fetch_req *failed = failed_recently(t, topic, *id);
        if (failed == NULL && ask_fetch(t, topic, *id)) {
            return MSG_NEEDS_SCHEMA;
        }
        snprintf(err, sizeof err, "writer schema %d: %.400s", (int)*id,
                 failed ? failed->err : "out of memory");
    }
    if (d == NULL || sal_kafka_decode(d, body, len, &sample, err, sizeof err) != 0) {
        log_decode_failure(t, topic, err);
        return MSG_DONE;
    }
    deliver(t, topic, offset, sample);
    return MSG_DONE;
}

/* Keep a message behind the ones waiting for a writer schema. */
static void hold(sal_transport *t, int topic, const rd_kafka_message_t *m)
{
    kafka_topic *kt = &t->topics[topic];
    held_msg *h = kt->nheld < KAFKA_MAX_HELD ? malloc(sizeof *h + m->len) : NULL;
    if (h == NULL) {
        if (kt->held_dropped++ % 1000 == 0) {
            fprintf(stderr, "sal_kafka: %s: dropped a message waiting for a writer schema (%u so far)\n",
                    kt->name, kt->held_dropped);
        }
        return;
    }
    h->next = NULL;
    h->offset = m->offset;
    h->len = m->len;
    memcpy(h->data, m->payload, m->len);
    if (kt->held_tail != NULL) {
        kt->held_tail->next = h;
    } else {
        kt->held_head = h;
    }
    kt->held_tail = h;
    kt->nheld++;
}

/* Process a topic's held messages in order, up to the next one whose
 * schema is still to come. */
static void release_held(sal_transport *t, int topic)
{
    kafka_topic *kt = &t->topics[topic];
    while (kt->held_head != NULL) {
        held_msg *h = kt->held_head;
        int32_t id;
        if (process(t, topic, h->data, h->len, h->offset, &id) == MSG_NEEDS_SCHEMA) {
            return;
        }
        kt->held_head = h->next;
        if (kt->held_head == NULL) {
            kt->held_tail = NULL;
        }
        kt->nheld--;
        free(h);
    }
}

/* Take the fetch thread's results: decoders to use, failures to remember
 * (logged once; messages with that schema are dropped for
 * KAFKA_FETCH_RETRY_S); then the held messages go on. */
static void take_fetched(sal_transport *t)
{
    pthread_mutex_lock(&t->fetch_lock);
    fetch_req *done = t->fetch_done;
    t->fetch_done = NULL;
    pthread_mutex_unlock(&t->fetch_lock);
    double now = monotonic_now();
    while (done != NULL) {
        fetch_req *f = done;
        done = f->next;
        for (fetch_req **pp = &t->fetch_asked; *pp != NULL; pp = &(*pp)->next) {
            if ((*pp)->topic == f->topic && (*pp)->schema_id == f->schema_id) {
                fetch_req *asked = *pp;
                *pp = asked->next;
                free(asked);
                break;
            }
        }
        if (f->decoder != NULL) {
            add_decoder(t, f->topic, f->schema_id, f->decoder);
            f->decoder = NULL;
            free(f);
        } else {
            fprintf(stderr, "sal_kafka: %s: cannot get writer schema %d: %s\n", t->topics[f->topic].name,
                    (int)f->schema_id, f->err);
            f->failed_at = now;
            f->next = t->fetch_failed;
            t->fetch_failed = f;
        }
    }
    for (size_t i = 0; i < t->comp->ntopics; i++) {
        release_held(t, (int)i);
    }
}

static void handle_message(sal_transport *t, const rd_kafka_message_t *m)
{
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            on_client_error(t->consumer, m->err, rd_kafka_message_errstr(m), t);
        }
        return;
    }
    int topic = m->rkt ? topic_by_name(t, rd_kafka_topic_name(m->rkt)) : -1;
    if (topic < 0) {
        return;
    }
    int32_t id;
    if (t->topics[topic].held_head != NULL ||
        process(t, topic, m->payload, m->len, m->offset, &id) == MSG_NEEDS_SCHEMA) {
        hold(t, topic, m); /* in order, behind the others waiting */
    }
}

static void *poll_thread(void *arg)
{
    sal_transport *t = arg;
    while (!atomic_load(&t->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(t->consumer, KAFKA_POLL_MS);
        if (m != NULL) {
            handle_message(t, m);
            rd_kafka_message_destroy(m);
        }
        if (t->fetch_asked != NULL) {
            take_fetched(t);
        }
        rd_kafka_poll(t->producer, 0);
    }
    return NULL;
}

const sal_transport_ops sal_kafka_transport = {
    .name = "kafka",
    .revcode = SAL_REVCODE_AVRO,
    .keeps_history = true,
    .open = kafka_open,
    .reader_create = kafka_reader_create,
    .writer_create = kafka_writer_create,
    .write = kafka_write,
    .close = kafka_close,
};
