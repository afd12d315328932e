/* sal_kafka_poll.c - the Kafka transport's poll thread: consume, decode with the
 * writer's schema (fetched once, on its own thread), hand samples to the
 * runtime; see sal_kafka__internal.h. */
#include "sal_kafka__internal.h"
#include "ocps/sal_logline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ocps/sal_sample.h"

/* ---- the poll thread ---- */

static void log_decode_failure(sal_transport *t, int topic, const char *why)
{
    kafka_topic *kt = &t->topics[topic];
    kt->decode_failures++;
    SAL_TRANSPORT_COUNT(t->cbs.stats, undecodable);
    if (kt->decode_failures == 1 || kt->decode_failures % KAFKA_DECODE_LOG_EVERY == 0) {
        sal_log_say(SAL_LOGLINE_WARNING, "sal_kafka", "%s: dropped an undecodable message (%u so far): %s",
                    kt->name, kt->decode_failures, why);
        if (t->cbs.on_warning != NULL) { /* e.g. a command nobody will answer: say so where operators look */
            char msg[1024];
            snprintf(msg, sizeof msg,
                     "Kafka: dropped an undecodable message of %s (%u so far; one in %d is told): %s",
                     kt->name, kt->decode_failures, KAFKA_DECODE_LOG_EVERY, why);
            t->cbs.on_warning(t->cbs.arg, msg);
        }
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
            if (sal_clock_monotonic() - f->failed_at < KAFKA_FETCH_RETRY_S) {
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

void *kafka__fetch_thread(void *arg)
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

/* End the history read of `topic` when `offset` is at or past its last
 * record: hand on the samples kept (the newest per salIndex), then report
 * the reader's match if it waited for them. Whether the message at
 * `offset` was delivered or dropped, nothing before the end is to come. */
static void history_flush(sal_transport *t, int topic, int64_t offset)
{
    kafka_topic *kt = &t->topics[topic];
    pthread_mutex_lock(&t->lock);
    if (kt->history_end < 0 || offset < kt->history_end) {
        pthread_mutex_unlock(&t->lock);
        return;
    }
    history_item *items = kt->history;
    size_t n = kt->nhistory;
    kt->history = NULL;
    kt->nhistory = 0;
    kt->history_end = -1;
    bool matched = kt->match_after_history;
    kt->match_after_history = false;
    pthread_mutex_unlock(&t->lock);
    for (size_t i = 0; i < n; i++) {
        t->cbs.on_sample(t->cbs.arg, topic, items[i].sample);
    }
    free(items);
    if (matched) {
        t->cbs.on_matched(t->cbs.arg, topic, false, 1, 1);
    }
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
    pthread_mutex_unlock(&t->lock);
    history_flush(t, topic, offset);
}

/* Drop the message of `topic` at `offset` as undecodable (logged, counted,
 * told); if it was the last of a history read, the history goes on now. */
static void drop_undecodable(sal_transport *t, int topic, int64_t offset, const char *why)
{
    log_decode_failure(t, topic, why);
    history_flush(t, topic, offset);
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
        drop_undecodable(t, topic, offset, err);
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
        drop_undecodable(t, topic, offset, err);
        return MSG_DONE;
    }
    deliver(t, topic, offset, sample);
    return MSG_DONE;
}

/* Keep a message behind the ones waiting for a writer schema (or drop it
 * when too many wait: a history read it ends goes on). */
static void hold(sal_transport *t, int topic, const rd_kafka_message_t *m)
{
    kafka_topic *kt = &t->topics[topic];
    held_msg *h = kt->nheld < KAFKA_MAX_HELD ? malloc(sizeof *h + m->len) : NULL;
    if (h == NULL) {
        if (kt->held_dropped++ % 1000 == 0) {
            sal_log_say(SAL_LOGLINE_WARNING, "sal_kafka",
                        "%s: dropped a message waiting for a writer schema (%u so far)", kt->name,
                        kt->held_dropped);
        }
        history_flush(t, topic, m->offset);
        return;
    }
    h->next = NULL;
    h->offset = m->offset;
    h->len = m->len;
    if (m->len > 0) { /* a tombstone or empty record has no payload (NULL) */
        memcpy(h->data, m->payload, m->len);
    }
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
    double now = sal_clock_monotonic();
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
            sal_log_say(SAL_LOGLINE_WARNING, "sal_kafka", "%s: cannot get writer schema %d: %s",
                        t->topics[f->topic].name, (int)f->schema_id, f->err);
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
            kafka__on_client_error(t->consumer, m->err, rd_kafka_message_errstr(m), t);
        }
        return;
    }
    int topic = m->rkt ? kafka__topic_by_name(t, rd_kafka_topic_name(m->rkt)) : -1;
    if (topic < 0) {
        return;
    }
    int32_t id;
    if (t->topics[topic].held_head != NULL ||
        process(t, topic, m->payload, m->len, m->offset, &id) == MSG_NEEDS_SCHEMA) {
        hold(t, topic, m); /* in order, behind the others waiting */
    }
}

void *kafka__poll_thread(void *arg)
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
