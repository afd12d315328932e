/* sal.c - the SAL runtime; see sal.h. */
#include "ocps/sal.h"
#include "ocps/sal_gate.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What a transport thread hands to the loop. */
typedef enum inbox_kind { INBOX_SAMPLE, INBOX_MATCHED, INBOX_ERROR, INBOX_WARNING } inbox_kind;

typedef struct inbox_item {
    struct inbox_item *next;
    inbox_kind kind;
    int topic;
    void *sample;
    bool is_writer;
    int32_t current;
    int32_t change;
    char *message;
} inbox_item;

typedef struct topic_state {
    sal_sample_cb cb;           /* reader callback, NULL if not read */
    sal_sample_keep_cb keep_cb; /* or this one, which keeps the sample */
    void *cb_arg;
    bool reading;
    bool writing;
    bool republish_due;     /* a reader matched: re-publish `last` in the next round */
    uint32_t writes;        /* event samples written */
    uint32_t writes_at_ask; /* `writes` when the last reader matched */
    int32_t seqnum;
    int32_t writer_matches; /* remote readers matched with our writer */
    int32_t reader_matches; /* remote writers matched with our reader */
    void *last;             /* last sample written */
    /* writers of other SAL indices heard (sal_count_other_indices) */
    double *own_stamps; /* sal_track_own_writes: send times of the last writes (a ring), or NULL */
    unsigned own_next;
    unsigned own_count;
    bool count_others;
    int nothers;
    int32_t others[SAL_OTHER_WRITERS_MAX][2]; /* origin, index */
} topic_state;

struct sal {
    uv_loop_t *loop;
    const sal_component_info *comp;
    int32_t index;
    const sal_transport_ops *ops;
    sal_transport *transport;
    char identity[SAL_IDENTITY_MAX + 1];
    int32_t origin;
    sal_clock clock;
    topic_state *topics;
    sal_error_cb error_cb;
    void *error_arg;
    sal_error_cb warning_cb;
    void *warning_arg;
    uv_async_t async;
    bool republish;        /* re-publish events to new readers (late joiners) */
    uv_timer_t round;      /* the next re-publication round */
    uint64_t round_asked;  /* uv_now() of the first request of that round */
    int open_handles;      /* freed when both handles have closed */
    sal_close_cb close_cb; /* then this runs */
    void *close_arg;
    pthread_mutex_t lock;
    inbox_item *head;
    inbox_item *tail;
    bool closing;
    sal_gate *gate; /* set under lock (sal_set_gate) */
    sal_stats stats;
};

static void inbox_item_free(sal *s, inbox_item *item)
{
    if (item->sample != NULL) {
        sal_sample_free(&s->comp->topics[item->topic], item->sample);
    }
    free(item->message);
    free(item);
}

static void sal_deliver(sal *s);

static void inbox_push(sal *s, inbox_item *item)
{
    pthread_mutex_lock(&s->lock);
    if (s->closing) {
        pthread_mutex_unlock(&s->lock);
        inbox_item_free(s, item);
        return;
    }
    if (s->tail != NULL) {
        s->tail->next = item;
    } else {
        s->head = item;
    }
    s->tail = item;
    sal_gate *gate = s->gate;
    pthread_mutex_unlock(&s->lock);
    if (gate != NULL && sal_gate_try_enter(gate)) {
        sal_deliver(s); /* the loop sleeps: run its callbacks here */
        sal_gate_leave(gate);
        return;
    }
    uv_async_send(&s->async);
}

static void handle_sample(sal *s, inbox_item *item);

static void on_transport_sample(void *arg, int topic, void *sample)
{
    sal *s = arg;
    pthread_mutex_lock(&s->lock);
    sal_gate *gate = s->gate;
    pthread_mutex_unlock(&s->lock);
    if (gate != NULL && sal_gate_try_enter(gate)) {
        /* the loop sleeps: with nothing older in the inbox (nor closing),
         * run the callback here without queueing the sample */
        pthread_mutex_lock(&s->lock);
        bool direct = s->head == NULL && !s->closing;
        pthread_mutex_unlock(&s->lock);
        if (direct) {
            s->stats.read_inline++;
            inbox_item item = {.kind = INBOX_SAMPLE, .topic = topic, .sample = sample};
            handle_sample(s, &item);
            sal_gate_leave(gate);
            return;
        }
        sal_gate_leave(gate);
    }
    inbox_item *item = calloc(1, sizeof *item);
    if (item == NULL) {
        sal_sample_free(&s->comp->topics[topic], sample);
        return;
    }
    item->kind = INBOX_SAMPLE;
    item->topic = topic;
    item->sample = sample;
    inbox_push(s, item);
}

static void on_transport_matched(void *arg, int topic, bool is_writer, int32_t current, int32_t change)
{
    sal *s = arg;
    inbox_item *item = calloc(1, sizeof *item);
    if (item == NULL) {
        return;
    }
    item->kind = INBOX_MATCHED;
    item->topic = topic;
    item->is_writer = is_writer;
    item->current = current;
    item->change = change;
    inbox_push(s, item);
}

static void push_message(sal *s, inbox_kind kind, const char *message)
{
    inbox_item *item = calloc(1, sizeof *item);
    if (item == NULL) {
        return;
    }
    item->kind = kind;
    item->message = strdup(message);
    inbox_push(s, item);
}

static void on_transport_error(void *arg, const char *message)
{
    push_message(arg, INBOX_ERROR, message);
}

static void on_transport_warning(void *arg, const char *message)
{
    push_message(arg, INBOX_WARNING, message);
}

static bool index_accepted(const sal *s, const sal_topic_info *t, const void *sample)
{
    if (s->index == 0 || !s->comp->indexed) {
        return true;
    }
    return sal_sample_index(t, sample) == s->index;
}

/* A sample of another SAL index: remember its writer if asked to. */
static void note_other_index(topic_state *ts, const sal_topic_info *t, const void *sample)
{
    int32_t origin = sal_sample_origin(t, sample);
    int32_t index = sal_sample_index(t, sample);
    for (int i = 0; i < ts->nothers; i++) {
        if (ts->others[i][0] == origin && ts->others[i][1] == index) {
            return;
        }
    }
    if (ts->nothers < SAL_OTHER_WRITERS_MAX) {
        ts->others[ts->nothers][0] = origin;
        ts->others[ts->nothers][1] = index;
        ts->nothers++;
    }
}

static void handle_sample(sal *s, inbox_item *item)
{
    const sal_topic_info *t = &s->comp->topics[item->topic];
    topic_state *ts = &s->topics[item->topic];
    if (!index_accepted(s, t, item->sample)) {
        if (ts->count_others) {
            note_other_index(ts, t, item->sample);
        }
    } else if (ts->cb != NULL || ts->keep_cb != NULL) {
        /* private_rcvStamp is reader-local: the TAI time of reading */
        double now = sal_clock_tai(&s->clock);
        sal_sample_set_rcv_stamp(t, item->sample, now);
        if (ts->keep_cb != NULL) {
            void *sample = item->sample;
            item->sample = NULL; /* the callback's now */
            ts->keep_cb(ts->cb_arg, item->topic, sample);
            return;
        }
        ts->cb(ts->cb_arg, item->topic, item->sample);
    }
    sal_sample_free(t, item->sample);
    item->sample = NULL;
}

/* Late joiners (DDS): Cyclone serves no history for TRANSIENT writers, so
 * when a reader matches an event writer the last sample written to that
 * topic is written again. A new Remote matches every event writer within
 * a few milliseconds, and several Remotes often start together: requests
 * are gathered until none has come for SAL_ROUND_QUIET_MS (at most
 * SAL_ROUND_MAX_MS after the first), then one round writes each requested
 * topic once, unless it was written since its last reader matched (that
 * sample reached the reader). Existing readers see one duplicate per topic
 * per round. */
#define SAL_ROUND_QUIET_MS 100u
#define SAL_ROUND_MAX_MS 500u

static void on_round(uv_timer_t *timer)
{
    sal *s = timer->data;
    char err[256];
    for (size_t i = 0; i < s->comp->ntopics && !s->closing; i++) {
        topic_state *ts = &s->topics[i];
        if (!ts->republish_due) {
            continue;
        }
        ts->republish_due = false;
        if (ts->last == NULL || ts->writes != ts->writes_at_ask) {
            continue; /* never written, or written since the reader matched */
        }
        const sal_topic_info *t = &s->comp->topics[i];
        void *copy = sal_sample_dup(t, ts->last);
        if (copy != NULL) {
            sal_write(s, (int)i, copy, SAL_WRITE_FORCE, err, sizeof err);
            sal_sample_free(t, copy);
        }
    }
}

static void ask_republish(sal *s, int topic)
{
    if (!s->republish || s->ops->keeps_history || s->comp->topics[topic].kind != SAL_TOPIC_EVENT) {
        return;
    }
    s->topics[topic].republish_due = true;
    s->topics[topic].writes_at_ask = s->topics[topic].writes;
    uint64_t now = uv_now(s->loop);
    if (!uv_is_active((uv_handle_t *)&s->round)) {
        s->round_asked = now;
    }
    uint64_t due = now + SAL_ROUND_QUIET_MS;
    if (due > s->round_asked + SAL_ROUND_MAX_MS) {
        due = s->round_asked + SAL_ROUND_MAX_MS;
    }
    uv_timer_start(&s->round, on_round, due > now ? due - now : 0, 0);
}

/* Run the callbacks of everything in the inbox, in order (on the loop, or
 * inside its gate). */
static void sal_deliver(sal *s)
{
    pthread_mutex_lock(&s->lock);
    inbox_item *item = s->head;
    s->head = s->tail = NULL;
    pthread_mutex_unlock(&s->lock);
    while (item != NULL) {
        inbox_item *next = item->next;
        if (s->closing) { /* a callback closed the runtime: drop the rest */
            inbox_item_free(s, item);
            item = next;
            continue;
        }
        switch (item->kind) {
        case INBOX_SAMPLE:
            if (sal_gate_inline(s->gate)) {
                s->stats.read_inline++;
            } else {
                s->stats.read_queued++;
            }
            handle_sample(s, item);
            break;
        case INBOX_MATCHED:
            if (item->is_writer) {
                s->topics[item->topic].writer_matches = item->current;
                if (item->change > 0) {
                    ask_republish(s, item->topic);
                }
            } else {
                s->topics[item->topic].reader_matches = item->current;
            }
            break;
        case INBOX_ERROR:
        case INBOX_WARNING: {
            sal_error_cb cb = item->kind == INBOX_ERROR ? s->error_cb : s->warning_cb;
            if (cb != NULL && item->message != NULL) {
                cb(item->kind == INBOX_ERROR ? s->error_arg : s->warning_arg, item->message);
            }
            free(item->message);
            break;
        }
        }
        free(item);
        item = next;
    }
}

static void on_async(uv_async_t *handle)
{
    sal_deliver(handle->data);
}

/* The identity a commander gave, as the transport carries it: whole up to
 * its identity_max (Kafka), else refused; cut to the 128 bytes of the DDS
 * IDL (identity_max 0), as salobj 7's wire type holds. */
static int identity_set(sal *s, const sal_transport_ops *transport, const char *identity, char *err,
                        size_t errlen)
{
    if (identity == NULL) {
        return 0;
    }
    size_t max = transport->identity_max > 0 ? transport->identity_max : SAL_IDENTITY_SIZE - 1;
    if (max > SAL_IDENTITY_MAX) {
        max = SAL_IDENTITY_MAX;
    }
    size_t len = strlen(identity);
    if (len > max && transport->identity_max > 0) {
        snprintf(err, errlen, "the identity is %zu bytes, longer than the %zu the %s transport carries", len,
                 max, transport->name);
        return -E2BIG;
    }
    snprintf(s->identity, max + 1, "%s", identity);
    return 0;
}

int sal_open(sal **out, uv_loop_t *loop, const sal_component_info *comp, int32_t index,
             const sal_transport_ops *transport, const char *identity, char *err, size_t errlen)
{
    return sal_open_within(out, loop, comp, index, transport, identity, 0, err, errlen);
}

int sal_open_within(sal **out, uv_loop_t *loop, const sal_component_info *comp, int32_t index,
                    const sal_transport_ops *transport, const char *identity, double open_timeout, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (comp->indexed ? index < 0 : index != 0) {
        snprintf(err, errlen, "%d is not a valid SAL index for %s", index, comp->name);
        return -EINVAL;
    }
    sal *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->topics = calloc(comp->ntopics, sizeof *s->topics);
    if (s->topics == NULL) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = identity_set(s, transport, identity, err, errlen);
    if (rc != 0) {
        free(s->topics);
        free(s);
        return rc;
    }
    s->loop = loop;
    s->comp = comp;
    s->index = index;
    s->ops = transport;
    s->origin = (int32_t)getpid();
    if (identity == NULL && comp->indexed) {
        snprintf(s->identity, sizeof s->identity, "%s:%d", comp->name, index);
    } else if (identity == NULL) {
        snprintf(s->identity, sizeof s->identity, "%s", comp->name);
    }
    sal_clock_init(&s->clock, NULL, err, errlen);
    pthread_mutex_init(&s->lock, NULL);
    rc = uv_async_init(loop, &s->async, on_async);
    if (rc != 0) {
        snprintf(err, errlen, "uv_async_init: %s", uv_strerror(rc));
        pthread_mutex_destroy(&s->lock);
        free(s->topics);
        free(s);
        return rc;
    }
    s->async.data = s;
    uv_timer_init(loop, &s->round);
    s->round.data = s;
    s->open_handles = 2;
    sal_transport_cbs cbs = {on_transport_sample, on_transport_matched, on_transport_error, s,
                             &s->stats.transport, on_transport_warning, open_timeout};
    rc = transport->open(&s->transport, comp, index, &cbs, err, errlen);
    if (rc != 0) {
        s->transport = NULL;
        sal_close(s, NULL, NULL);
        return rc;
    }
    *out = s;
    return 0;
}

static int check_topic(const sal *s, int topic, char *err, size_t errlen)
{
    if (topic < 0 || (size_t)topic >= s->comp->ntopics) {
        snprintf(err, errlen, "no topic %d in %s", topic, s->comp->name);
        return -EINVAL;
    }
    return 0;
}

static int reader_add(sal *s, int topic, sal_sample_cb cb, sal_sample_keep_cb keep_cb, void *arg, char *err,
                      size_t errlen)
{
    int rc = check_topic(s, topic, err, errlen);
    if (rc != 0) {
        return rc;
    }
    topic_state *ts = &s->topics[topic];
    ts->cb = cb;
    ts->keep_cb = keep_cb;
    ts->cb_arg = arg;
    if (ts->reading) {
        return 0;
    }
    rc = s->ops->reader_create(s->transport, topic, err, errlen);
    ts->reading = rc == 0;
    return rc;
}

int sal_reader_add(sal *s, int topic, sal_sample_cb cb, void *arg, char *err, size_t errlen)
{
    return reader_add(s, topic, cb, NULL, arg, err, errlen);
}

int sal_reader_add_keeping(sal *s, int topic, sal_sample_keep_cb cb, void *arg, char *err, size_t errlen)
{
    return reader_add(s, topic, NULL, cb, arg, err, errlen);
}

int sal_writer_add(sal *s, int topic, char *err, size_t errlen)
{
    int rc = check_topic(s, topic, err, errlen);
    if (rc != 0 || s->topics[topic].writing) {
        return rc;
    }
    rc = s->ops->writer_create(s->transport, topic, err, errlen);
    s->topics[topic].writing = rc == 0;
    return rc;
}

static void fill_private(sal *s, int topic, void *sample, unsigned flags)
{
    const sal_topic_info *t = &s->comp->topics[topic];
    topic_state *ts = &s->topics[topic];
    sal_stamp st = {
        .rev_code = s->ops->revcode == SAL_REVCODE_AVRO && t->avro_revcode ? t->avro_revcode : t->dds_revcode,
        .identity = s->identity,
        .snd_stamp = sal_clock_tai(&s->clock),
        .origin = s->origin,
        .index = s->index,
    };
    if (!(flags & SAL_WRITE_KEEP_SEQNUM)) {
        ts->seqnum = ts->seqnum >= INT32_MAX ? 1 : ts->seqnum + 1;
        st.seqnum = ts->seqnum;
    }
    sal_sample_stamp(t, sample, &st);
}

int sal_write(sal *s, int topic, void *sample, unsigned flags, char *err, size_t errlen)
{
    int rc = check_topic(s, topic, err, errlen);
    if (rc != 0) {
        return rc;
    }
    topic_state *ts = &s->topics[topic];
    const sal_topic_info *t = &s->comp->topics[topic];
    if (!ts->writing) {
        rc = sal_writer_add(s, topic, err, errlen);
        if (rc != 0) {
            return rc;
        }
    }
    if (t->kind == SAL_TOPIC_EVENT && !(flags & SAL_WRITE_FORCE) && ts->last != NULL &&
        sal_sample_user_equal(t, ts->last, sample)) {
        return 0;
    }
    fill_private(s, topic, sample, flags);
    rc = s->ops->write(s->transport, topic, sample, err, errlen);
    if (rc != 0) {
        return rc;
    }
    if ((int)t->kind >= 0 && t->kind <= SAL_TOPIC_ACKCMD) {
        s->stats.written[t->kind]++;
    }
    if (ts->own_stamps != NULL) {
        ts->own_stamps[ts->own_next] = sal_sample_snd_stamp(t, sample);
        ts->own_next = (ts->own_next + 1) % SAL_OWN_WRITES;
        ts->own_count += ts->own_count < SAL_OWN_WRITES;
    }
    if (t->kind == SAL_TOPIC_EVENT) { /* kept for change detection and late joiners */
        void *copy = sal_sample_dup(t, sample);
        if (copy != NULL) {
            sal_sample_free(t, ts->last);
            ts->last = copy;
        }
        ts->writes++;
    }
    return 0;
}

const sal_stats *sal_get_stats(const sal *s)
{
    return &s->stats;
}

int sal_track_own_writes(sal *s, int topic)
{
    if (topic < 0 || (size_t)topic >= s->comp->ntopics) {
        return -EINVAL;
    }
    topic_state *ts = &s->topics[topic];
    if (ts->own_stamps == NULL) {
        ts->own_stamps = calloc(SAL_OWN_WRITES, sizeof *ts->own_stamps);
        if (ts->own_stamps == NULL) {
            return -ENOMEM;
        }
    }
    return 0;
}

bool sal_is_own_sample(const sal *s, int topic, const void *sample)
{
    const sal_topic_info *t = &s->comp->topics[topic];
    if (sal_sample_origin(t, sample) != s->origin) {
        return false;
    }
    const topic_state *ts = &s->topics[topic];
    if (ts->own_stamps == NULL) {
        return true; /* not tracked: the origin decides */
    }
    double sent = sal_sample_snd_stamp(t, sample);
    /* older than every write kept, with earlier ones dropped (a late read
     * of an early write): cannot tell, taken as this process's */
    bool older = ts->own_count == SAL_OWN_WRITES;
    for (unsigned i = 0; i < ts->own_count; i++) {
        if (ts->own_stamps[i] == sent) {
            return true;
        }
        older = older && sent < ts->own_stamps[i];
    }
    return older; /* else another process with the same origin (two containers, each CSC pid 1) */
}

const void *sal_last_written(const sal *s, int topic)
{
    if (topic < 0 || (size_t)topic >= s->comp->ntopics) {
        return NULL;
    }
    return s->topics[topic].last;
}

void sal_republish_events(sal *s, bool on)
{
    s->republish = on;
}

bool sal_acks_exclusive(const sal *s)
{
    return s->ops->exclusive_acks;
}

bool sal_reports_sal_versions(const sal *s)
{
    return s->ops->sal_versions;
}

bool sal_keeps_history(const sal *s)
{
    return s->ops->keeps_history;
}

bool sal_match_needs_grace(const sal *s)
{
    return s->ops->match_needs_grace;
}

int32_t sal_matched(const sal *s, int topic, bool writer)
{
    if (topic < 0 || (size_t)topic >= s->comp->ntopics) {
        return 0;
    }
    return writer ? s->topics[topic].writer_matches : s->topics[topic].reader_matches;
}

void sal_set_warning_cb(sal *s, sal_error_cb cb, void *arg)
{
    s->warning_cb = cb;
    s->warning_arg = arg;
}

void sal_set_error_cb(sal *s, sal_error_cb cb, void *arg)
{
    s->error_cb = cb;
    s->error_arg = arg;
}

const sal_component_info *sal_component(const sal *s)
{
    return s->comp;
}

void sal_count_other_indices(sal *s, int topic)
{
    if (topic >= 0 && (size_t)topic < s->comp->ntopics) {
        s->topics[topic].count_others = true;
    }
}

int sal_other_index_writers(const sal *s, int topic)
{
    return topic >= 0 && (size_t)topic < s->comp->ntopics ? s->topics[topic].nothers : 0;
}

int32_t sal_index(const sal *s)
{
    return s->index;
}

const char *sal_identity(const sal *s)
{
    return s->identity;
}

int32_t sal_origin(const sal *s)
{
    return s->origin;
}

const char *sal_transport_name(const sal *s)
{
    return s->ops->name;
}

sal_clock *sal_get_clock(sal *s)
{
    return &s->clock;
}

uv_loop_t *sal_loop(const sal *s)
{
    return s->loop;
}

double sal_now_tai(sal *s)
{
    return sal_clock_tai(&s->clock);
}

static void free_sal(uv_handle_t *handle)
{
    sal *s = handle->data;
    if (--s->open_handles > 0) {
        return;
    }
    inbox_item *item = s->head;
    while (item != NULL) {
        inbox_item *next = item->next;
        inbox_item_free(s, item);
        item = next;
    }
    for (size_t i = 0; i < s->comp->ntopics; i++) {
        sal_sample_free(&s->comp->topics[i], s->topics[i].last);
        free(s->topics[i].own_stamps);
    }
    sal_clock_fini(&s->clock);
    pthread_mutex_destroy(&s->lock);
    sal_close_cb cb = s->close_cb;
    void *arg = s->close_arg;
    free(s->topics);
    free(s);
    if (cb != NULL) {
        cb(arg);
    }
}

static void close_now(sal *s)
{
    if (s->transport != NULL) {
        s->ops->close(s->transport); /* no callbacks after this */
        s->transport = NULL;
    }
    pthread_mutex_lock(&s->lock);
    s->closing = true;
    pthread_mutex_unlock(&s->lock);
    uv_close((uv_handle_t *)&s->round, free_sal);
    uv_close((uv_handle_t *)&s->async, free_sal);
}

static void on_deferred_close(uv_timer_t *timer)
{
    close_now(timer->data);
}

void sal_close(sal *s, sal_close_cb cb, void *arg)
{
    if (s == NULL) {
        if (cb != NULL) {
            cb(arg);
        }
        return;
    }
    s->close_cb = cb;
    s->close_arg = arg;
    if (sal_gate_inline(s->gate)) {
        /* inside the transport's own delivery, which its close waits for:
         * close from the loop, right after */
        pthread_mutex_lock(&s->lock);
        s->closing = true;
        pthread_mutex_unlock(&s->lock);
        uv_timer_start(&s->round, on_deferred_close, 0, 0);
        return;
    }
    close_now(s);
}

void sal_set_gate(sal *s, sal_gate *gate)
{
    pthread_mutex_lock(&s->lock);
    s->gate = s->ops->inline_delivery ? gate : NULL;
    pthread_mutex_unlock(&s->lock);
}
