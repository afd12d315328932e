/*
 * sal_kafka__internal.h - what the parts of the Kafka transport share (not
 * a public header): limits, per-topic state and the transport struct.
 * sal_kafka.c opens and closes the clients, topics and endpoints and
 * writes; sal_kafka_poll.c is the thread that polls the consumer and
 * hands samples to the runtime.
 */
#ifndef SAL_KAFKA__INTERNAL_H
#define SAL_KAFKA__INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "ocps/sal_clock.h"
#include "ocps/sal_time.h"
#include "sal_kafka.h"
#include "sal_kafka_codec.h"
#include "sal_kafka_config.h"
#include "sal_kafka_registry.h"

#define KAFKA_TIMEOUT_MS 10000          /* metadata, watermarks, topic creation */
#define KAFKA_TOPIC_POLL_MS 200         /* metadata read again until created topics are listed */
#define KAFKA_POLL_MS 20                /* background thread's consumer poll */
#define KAFKA_CLOSE_FLUSH_MS 2000       /* close waits this long for deliveries */
#define KAFKA_DECODE_LOG_EVERY 10       /* undecodable messages: log 1st, then every 10th */
#define KAFKA_MAX_HISTORY_READ 500      /* salobj's LSST_MAX_HISTORY_READ default */
#define KAFKA_MAX_HISTORY_LIMIT 1000000 /* the most history records a reader is allowed */
#define KAFKA_MAX_HELD 10000            /* messages of one topic waiting for a writer schema */
#define KAFKA_FETCH_RETRY_S 10.0        /* a failed schema fetch is tried again after this */

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
    bool match_after_history; /* report the reader's match once the history is delivered */
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
    double open_deadline;   /* the opener's bound on kafka_open (sal_clock_monotonic), 0 none */
    pthread_mutex_t lock;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    atomic_bool closing;
    atomic_bool delivery_error_reported;   /* a failure other than a timeout, since the last delivery */
    atomic_bool delivery_timeout_reported; /* a message timed out, since the last delivery */
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

/* Index of the topic whose Kafka name is `name`, or -1. */
int kafka__topic_by_name(const sal_transport *t, const char *name);

/* Client errors (broker down, ...) are usually transient and librdkafka
 * recovers by itself: log them at most every 10 s; fatal ones are reported. */
void kafka__on_client_error(rd_kafka_t *rk, int code, const char *reason, void *opaque);

/* The thread that fetches unknown writer schemas from the registry
 * (sal_kafka_poll.c); arg is the transport. */
void *kafka__fetch_thread(void *arg);

/* The thread that polls the consumer and hands samples to the runtime
 * (sal_kafka_poll.c); arg is the transport. */
void *kafka__poll_thread(void *arg);

#endif
