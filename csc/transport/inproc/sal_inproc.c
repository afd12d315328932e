/* sal_inproc.c - the in-process transport; see sal_inproc.h. */
#include "sal_inproc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocps/sal_sample.h"

/* A reader or writer of one transport on a bus topic. */
typedef struct endpoint {
    struct endpoint *next;
    sal_transport *t;
    int topic; /* index into t->comp->topics */
} endpoint;

/* One topic of the bus: what DDS would call <Name>_<sal_name>_<revCode>. */
typedef struct bus_topic {
    struct bus_topic *next;
    char *name;
    size_t sample_size; /* of the first endpoint's type; all must agree */
    size_t nfields;
    endpoint *readers; /* in creation order */
    endpoint *writers;
    int32_t nreaders;
    int32_t nwriters;
} bus_topic;

struct sal_transport {
    struct sal_transport *next; /* on the bus's list of open transports */
    const sal_component_info *comp;
    int32_t index;
    sal_transport_cbs cbs;
    bus_topic **topics; /* per topic of comp: its bus topic, NULL until used */
    endpoint **readers; /* per topic: our reader, or NULL */
    endpoint **writers; /* per topic: our writer, or NULL */
};

/* The bus. One lock guards it all, and is held while a write copies and
 * hands out its samples and while matches are reported, so a transport
 * that close() has removed gets no callback afterwards. */
static pthread_mutex_t bus_lock = PTHREAD_MUTEX_INITIALIZER;
static bus_topic *bus_topics;
static sal_transport *bus_transports;
/* sal_inproc_fail_writes: the next fail_count writes of fail_topic fail */
static char fail_topic[128];
static int fail_count;
static int fail_error;
/* sal_inproc_repeat_writes: the next repeat_count writes of repeat_topic
 * are delivered twice */
static char repeat_topic[128];
static int repeat_count;

static int oom(char *err, size_t errlen)
{
    snprintf(err, errlen, "inproc: out of memory");
    return -ENOMEM;
}

static void append(endpoint **list, endpoint *e)
{
    while (*list != NULL) {
        list = &(*list)->next;
    }
    *list = e;
}

static void unlink_endpoint(endpoint **list, endpoint *e)
{
    for (; *list != NULL; list = &(*list)->next) {
        if (*list == e) {
            *list = e->next;
            return;
        }
    }
}

/* The bus topic of `topic`, created on first use (bus_lock held). */
static int attach_topic(sal_transport *t, int topic, char *err, size_t errlen)
{
    if (t->topics[topic] != NULL) {
        return 0;
    }
    const sal_topic_info *ti = &t->comp->topics[topic];
    size_t len = strlen(t->comp->name) + strlen(ti->sal_name) + strlen(ti->dds_revcode) + 3;
    char *name = malloc(len);
    if (name == NULL) {
        return oom(err, errlen);
    }
    snprintf(name, len, "%s_%s_%s", t->comp->name, ti->sal_name, ti->dds_revcode);
    for (bus_topic *bt = bus_topics; bt != NULL; bt = bt->next) {
        if (strcmp(bt->name, name) != 0) {
            continue;
        }
        free(name);
        if (bt->sample_size != ti->sample_size || bt->nfields != ti->nfields) {
            snprintf(err, errlen, "inproc: topic %s is open with another type of the same name", bt->name);
            return -EINVAL;
        }
        t->topics[topic] = bt;
        return 0;
    }
    bus_topic *bt = calloc(1, sizeof *bt);
    if (bt == NULL) {
        free(name);
        return oom(err, errlen);
    }
    bt->name = name;
    bt->sample_size = ti->sample_size;
    bt->nfields = ti->nfields;
    bt->next = bus_topics;
    bus_topics = bt;
    t->topics[topic] = bt;
    return 0;
}

/* Drop the bus topic of `topic` if no endpoint is left on it (bus_lock held). */
static void detach_topic(sal_transport *t, int topic)
{
    bus_topic *bt = t->topics[topic];
    t->topics[topic] = NULL;
    if (bt == NULL || bt->readers != NULL || bt->writers != NULL) {
        return;
    }
    for (bus_topic **pp = &bus_topics; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == bt) {
            *pp = bt->next;
            break;
        }
    }
    free(bt->name);
    free(bt);
}

static void matched(endpoint *e, bool is_writer, int32_t current, int32_t change)
{
    e->t->cbs.on_matched(e->t->cbs.arg, e->topic, is_writer, current, change);
}

/* Add our reader (is_writer false) or writer of `topic` and report each
 * new pair to both sides (bus_lock held). */
static int add_endpoint(sal_transport *t, int topic, bool is_writer, char *err, size_t errlen)
{
    endpoint **mine = is_writer ? &t->writers[topic] : &t->readers[topic];
    if (*mine != NULL) {
        return 0;
    }
    int rc = attach_topic(t, topic, err, errlen);
    if (rc != 0) {
        return rc;
    }
    endpoint *e = calloc(1, sizeof *e);
    if (e == NULL) {
        if (t->readers[topic] == NULL && t->writers[topic] == NULL) {
            detach_topic(t, topic);
        }
        return oom(err, errlen);
    }
    e->t = t;
    e->topic = topic;
    bus_topic *bt = t->topics[topic];
    append(is_writer ? &bt->writers : &bt->readers, e);
    *mine = e;
    int32_t *count = is_writer ? &bt->nwriters : &bt->nreaders;
    (*count)++;
    int32_t seen = 0;
    for (endpoint *o = is_writer ? bt->readers : bt->writers; o != NULL; o = o->next) {
        matched(o, !is_writer, *count, 1); /* the other side gains us */
        matched(e, is_writer, ++seen, 1);  /* and we gain it */
    }
    return 0;
}

/* Remove our reader or writer of `topic`, reporting the lost pairs to the
 * other transports (bus_lock held). */
static void remove_endpoint(sal_transport *t, int topic, bool is_writer)
{
    endpoint **mine = is_writer ? &t->writers[topic] : &t->readers[topic];
    endpoint *e = *mine;
    if (e == NULL) {
        return;
    }
    bus_topic *bt = t->topics[topic];
    unlink_endpoint(is_writer ? &bt->writers : &bt->readers, e);
    int32_t *count = is_writer ? &bt->nwriters : &bt->nreaders;
    (*count)--;
    for (endpoint *o = is_writer ? bt->readers : bt->writers; o != NULL; o = o->next) {
        if (o->t != t) {
            matched(o, !is_writer, *count, -1);
        }
    }
    free(e);
    *mine = NULL;
}

static int transport_open(sal_transport **out, const sal_component_info *comp, int32_t index,
                          const sal_transport_cbs *cbs, char *err, size_t errlen)
{
    *out = NULL;
    sal_transport *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return oom(err, errlen);
    }
    t->comp = comp;
    t->index = index;
    t->cbs = *cbs;
    t->topics = calloc(comp->ntopics, sizeof *t->topics);
    t->readers = calloc(comp->ntopics, sizeof *t->readers);
    t->writers = calloc(comp->ntopics, sizeof *t->writers);
    if (t->topics == NULL || t->readers == NULL || t->writers == NULL) {
        free(t->topics);
        free(t->readers);
        free(t->writers);
        free(t);
        return oom(err, errlen);
    }
    pthread_mutex_lock(&bus_lock);
    t->next = bus_transports;
    bus_transports = t;
    pthread_mutex_unlock(&bus_lock);
    *out = t;
    return 0;
}

static int transport_reader_create(sal_transport *t, int topic, char *err, size_t errlen)
{
    pthread_mutex_lock(&bus_lock);
    int rc = add_endpoint(t, topic, false, err, errlen);
    pthread_mutex_unlock(&bus_lock);
    return rc;
}

static int transport_writer_create(sal_transport *t, int topic, char *err, size_t errlen)
{
    pthread_mutex_lock(&bus_lock);
    int rc = add_endpoint(t, topic, true, err, errlen);
    pthread_mutex_unlock(&bus_lock);
    return rc;
}

/* Does reader `r` take a sample of salIndex `idx`? */
static bool wants(const endpoint *r, int32_t idx)
{
    return r->t->index == 0 || !r->t->comp->indexed || idx == r->t->index;
}

static int transport_write(sal_transport *t, int topic, const void *sample, char *err, size_t errlen)
{
    const sal_topic_info *ti = &t->comp->topics[topic];
    int32_t idx = t->comp->indexed ? sal_sample_index(ti, sample) : 0;
    pthread_mutex_lock(&bus_lock);
    if (fail_count > 0 && strcmp(ti->sal_name, fail_topic) == 0) {
        fail_count--;
        pthread_mutex_unlock(&bus_lock);
        snprintf(err, errlen, "inproc: %s: a write failure for the test", ti->sal_name);
        SAL_TRANSPORT_COUNT(t->cbs.stats, write_failures);
        return fail_error;
    }
    int copies = 1;
    if (repeat_count > 0 && strcmp(ti->sal_name, repeat_topic) == 0) {
        repeat_count--;
        copies = 2;
    }
    int rc = add_endpoint(t, topic, true, err, errlen);
    for (endpoint *r = rc == 0 ? t->topics[topic]->readers : NULL; r != NULL; r = r->next) {
        for (int k = 0; k < copies && wants(r, idx); k++) {
            void *copy = sal_sample_dup(&r->t->comp->topics[r->topic], sample);
            if (copy == NULL) {
                rc = oom(err, errlen); /* the other readers still get theirs */
                continue;
            }
            r->t->cbs.on_sample(r->t->cbs.arg, r->topic, copy);
        }
    }
    pthread_mutex_unlock(&bus_lock);
    if (rc != 0) {
        SAL_TRANSPORT_COUNT(t->cbs.stats, write_failures);
    }
    return rc;
}

static void transport_close(sal_transport *t)
{
    if (t == NULL) {
        return;
    }
    pthread_mutex_lock(&bus_lock);
    for (sal_transport **pp = &bus_transports; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    for (size_t i = 0; i < t->comp->ntopics; i++) {
        remove_endpoint(t, (int)i, false);
        remove_endpoint(t, (int)i, true);
        detach_topic(t, (int)i);
    }
    pthread_mutex_unlock(&bus_lock);
    free(t->topics);
    free(t->readers);
    free(t->writers);
    free(t);
}

int sal_inproc_report_error(const char *name, int32_t index, const char *message)
{
    int n = 0;
    pthread_mutex_lock(&bus_lock);
    for (sal_transport *t = bus_transports; t != NULL; t = t->next) {
        if (strcmp(t->comp->name, name) == 0 && (index < 0 || t->index == index)) {
            t->cbs.on_error(t->cbs.arg, message);
            n++;
        }
    }
    pthread_mutex_unlock(&bus_lock);
    return n;
}

void sal_inproc_fail_writes(const char *sal_name, int count, int error)
{
    pthread_mutex_lock(&bus_lock);
    snprintf(fail_topic, sizeof fail_topic, "%s", sal_name);
    fail_count = count;
    fail_error = error;
    pthread_mutex_unlock(&bus_lock);
}

void sal_inproc_repeat_writes(const char *sal_name, int count)
{
    pthread_mutex_lock(&bus_lock);
    snprintf(repeat_topic, sizeof repeat_topic, "%s", sal_name);
    repeat_count = count;
    pthread_mutex_unlock(&bus_lock);
}

int sal_inproc_endpoints(void)
{
    int n = 0;
    pthread_mutex_lock(&bus_lock);
    for (bus_topic *bt = bus_topics; bt != NULL; bt = bt->next) {
        n += bt->nreaders + bt->nwriters;
    }
    pthread_mutex_unlock(&bus_lock);
    return n;
}

const sal_transport_ops sal_inproc_transport = {
    .name = "inproc",
    .revcode = SAL_REVCODE_DDS,
    .keeps_history = false,
    .exclusive_acks = false,
    .sal_versions = true,
    .open = transport_open,
    .reader_create = transport_reader_create,
    .writer_create = transport_writer_create,
    .write = transport_write,
    .close = transport_close,
};
