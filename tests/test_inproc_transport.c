/*
 * test_inproc_transport: the in-process transport on its own, through its
 * operations: readers and writers match as Cyclone reports it, a write
 * hands every reader its own copy before returning, readers get only
 * their SAL index, different components and types never meet, close
 * unmatches and silences a transport, errors reach a component's
 * transports, writers on several threads lose nothing; and, through the
 * runtime, a late-joining reader gets the last event re-published.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "ocps_test_iface.h"
#include "ocps/ocps_interface.h"
#include "ocps/sal.h"
#include "inproc/sal_inproc.h"
#include "ocps/sal_sample.h"

static const sal_transport_ops *ops = &sal_inproc_transport;

static int topic(const char *sal_name)
{
    int t = sal_component_find_topic(ocps_test_component(), sal_name);
    assert_true(t >= 0);
    return t;
}

/* --- a probe: what one transport's callbacks were told --- */

#define MAX_SEEN 64

typedef struct match_call {
    int topic;
    bool is_writer;
    int32_t current;
    int32_t change;
} match_call;

typedef struct probe {
    const sal_component_info *comp;
    pthread_mutex_t lock; /* callbacks may come from any thread */
    void *samples[MAX_SEEN];
    int sample_topics[MAX_SEEN];
    size_t nsamples;
    size_t total; /* samples ever received (kept or not) */
    match_call matches[MAX_SEEN];
    size_t nmatches;
    char error[256];
    int errors;
} probe;

static void on_sample(void *arg, int t, void *sample)
{
    probe *p = arg;
    pthread_mutex_lock(&p->lock);
    p->total++;
    if (p->nsamples < MAX_SEEN) {
        p->sample_topics[p->nsamples] = t;
        p->samples[p->nsamples++] = sample;
        sample = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    sal_sample_free(&p->comp->topics[t], sample);
}

static void on_matched(void *arg, int t, bool is_writer, int32_t current, int32_t change)
{
    probe *p = arg;
    pthread_mutex_lock(&p->lock);
    if (p->nmatches < MAX_SEEN) {
        p->matches[p->nmatches++] = (match_call){t, is_writer, current, change};
    }
    pthread_mutex_unlock(&p->lock);
}

static void on_error(void *arg, const char *message)
{
    probe *p = arg;
    pthread_mutex_lock(&p->lock);
    snprintf(p->error, sizeof p->error, "%s", message);
    p->errors++;
    pthread_mutex_unlock(&p->lock);
}

static void probe_init(probe *p, const sal_component_info *comp)
{
    memset(p, 0, sizeof *p);
    p->comp = comp;
    pthread_mutex_init(&p->lock, NULL);
}

static void probe_fini(probe *p)
{
    for (size_t i = 0; i < p->nsamples; i++) {
        sal_sample_free(&p->comp->topics[p->sample_topics[i]], p->samples[i]);
    }
    pthread_mutex_destroy(&p->lock);
}

static sal_transport *open_on(probe *p, const sal_component_info *comp, int32_t index)
{
    probe_init(p, comp);
    sal_transport_cbs cbs = {on_sample, on_matched, on_error, p, NULL, NULL, 0};
    sal_transport *t = NULL;
    char err[256];
    if (ops->open(&t, comp, index, &cbs, err, sizeof err) != 0) {
        fail_msg("open: %s", err);
    }
    return t;
}

static void add(sal_transport *t, int tp, bool writer)
{
    char err[256];
    int rc = writer ? ops->writer_create(t, tp, err, sizeof err) : ops->reader_create(t, tp, err, sizeof err);
    if (rc != 0) {
        fail_msg("create: %s", err);
    }
}

static void assert_match(const probe *p, size_t i, int tp, bool is_writer, int32_t current, int32_t change)
{
    assert_true(i < p->nmatches);
    assert_int_equal(p->matches[i].topic, tp);
    assert_int_equal(p->matches[i].is_writer, is_writer);
    assert_int_equal(p->matches[i].current, current);
    assert_int_equal(p->matches[i].change, change);
}

/* A logMessage sample with salIndex and message set. */
static void *log_sample(int32_t index, const char *message)
{
    const sal_topic_info *ti = &ocps_test_component()->topics[topic("logevent_logMessage")];
    void *s = sal_sample_new(ti);
    char err[256];
    sal_sample_set_i32(ti, s, "salIndex", index);
    assert_int_equal(sal_sample_set_string(ti, s, "message", message, err, sizeof err), 0);
    return s;
}

static void write_sample(sal_transport *t, const void *s)
{
    char err[256];
    if (ops->write(t, topic("logevent_logMessage"), s, err, sizeof err) != 0) {
        fail_msg("write: %s", err);
    }
}

static const char *message_of(const probe *p, size_t i)
{
    return sal_sample_get_string(&p->comp->topics[p->sample_topics[i]], p->samples[i], "message");
}

/* --- tests --- */

static void readers_and_writers_match_both_ways(void **state)
{
    (void)state;
    int hb = topic("logevent_heartbeat");
    probe a;
    probe b;
    probe c;
    sal_transport *ta = open_on(&a, ocps_test_component(), 0);
    sal_transport *tb = open_on(&b, ocps_test_component(), 0);
    sal_transport *tc = open_on(&c, ocps_test_component(), 0);
    add(ta, hb, false);
    assert_int_equal(a.nmatches, 0); /* nobody writes yet */
    add(tb, hb, true);
    assert_match(&a, 0, hb, false, 1, 1); /* A's reader gained B's writer */
    assert_match(&b, 0, hb, true, 1, 1);  /* B's writer gained A's reader */
    add(tc, hb, false);
    assert_match(&b, 1, hb, true, 2, 1);
    assert_match(&c, 0, hb, false, 1, 1);
    add(tc, hb, false); /* a second create is the same reader */
    assert_int_equal(b.nmatches, 2);
    assert_int_equal(sal_inproc_endpoints(), 3);
    ops->close(ta);
    assert_match(&b, 2, hb, true, 1, -1);
    ops->close(tb);
    assert_match(&c, 1, hb, false, 0, -1);
    ops->close(tc);
    assert_int_equal(sal_inproc_endpoints(), 0);
    probe_fini(&a);
    probe_fini(&b);
    probe_fini(&c);
}

static void write_gives_each_reader_its_own_copy_at_once(void **state)
{
    (void)state;
    int lm = topic("logevent_logMessage");
    probe r1;
    probe r2;
    probe w;
    sal_transport *t1 = open_on(&r1, ocps_test_component(), 0);
    sal_transport *t2 = open_on(&r2, ocps_test_component(), 0);
    sal_transport *tw = open_on(&w, ocps_test_component(), 0);
    add(t1, lm, false);
    add(t2, lm, false);
    void *s = log_sample(1, "first");
    write_sample(tw, s); /* creates the writer on first use, as DDS does */
    assert_int_equal(r1.nsamples, 1);
    assert_int_equal(r2.nsamples, 1);
    assert_ptr_not_equal(r1.samples[0], s);
    assert_ptr_not_equal(r1.samples[0], r2.samples[0]);
    assert_ptr_not_equal(message_of(&r1, 0), message_of(&r2, 0)); /* deep copies */
    sal_sample_free(&ocps_test_component()->topics[lm], s);
    s = log_sample(1, "second");
    write_sample(tw, s);
    sal_sample_free(&ocps_test_component()->topics[lm], s);
    assert_string_equal(message_of(&r1, 0), "first"); /* survives the writer's sample */
    assert_string_equal(message_of(&r1, 1), "second");
    assert_string_equal(message_of(&r2, 1), "second");
    assert_int_equal(w.nsamples, 0);
    ops->close(t1);
    ops->close(t2);
    ops->close(tw);
    probe_fini(&r1);
    probe_fini(&r2);
    probe_fini(&w);
}

static void own_reader_gets_own_samples(void **state)
{
    (void)state;
    int lm = topic("logevent_logMessage");
    probe p;
    sal_transport *t = open_on(&p, ocps_test_component(), 1);
    add(t, lm, false);
    add(t, lm, true);
    /* as endpoints of one DDS participant: matched with each other */
    assert_int_equal(p.nmatches, 2);
    assert_match(&p, 0, lm, false, 1, 1);
    assert_match(&p, 1, lm, true, 1, 1);
    void *s = log_sample(1, "to myself");
    write_sample(t, s);
    sal_sample_free(&ocps_test_component()->topics[lm], s);
    assert_int_equal(p.nsamples, 1);
    assert_string_equal(message_of(&p, 0), "to myself");
    ops->close(t);
    probe_fini(&p);
}

static void readers_get_only_their_sal_index(void **state)
{
    (void)state;
    int lm = topic("logevent_logMessage");
    probe one;
    probe all;
    probe w;
    sal_transport *t1 = open_on(&one, ocps_test_component(), 1);
    sal_transport *t0 = open_on(&all, ocps_test_component(), 0);
    sal_transport *tw = open_on(&w, ocps_test_component(), 0);
    add(t1, lm, false);
    add(t0, lm, false);
    void *s = log_sample(2, "for 2");
    write_sample(tw, s);
    sal_sample_free(&ocps_test_component()->topics[lm], s);
    s = log_sample(1, "for 1");
    write_sample(tw, s);
    sal_sample_free(&ocps_test_component()->topics[lm], s);
    assert_int_equal(one.nsamples, 1);
    assert_string_equal(message_of(&one, 0), "for 1");
    assert_int_equal(all.nsamples, 2); /* index 0 reads every index */
    assert_string_equal(message_of(&all, 0), "for 2");
    assert_string_equal(message_of(&all, 1), "for 1");
    /* the index filter does not hide the match itself */
    assert_match(&one, 0, lm, false, 1, 1);
    ops->close(t1);
    ops->close(t0);
    ops->close(tw);
    probe_fini(&one);
    probe_fini(&all);
    probe_fini(&w);
}

static void other_components_and_types_never_meet(void **state)
{
    (void)state;
    int hb = topic("logevent_heartbeat");
    /* OCPS with another component's name: a different bus topic */
    sal_component_info other = *ocps_test_component();
    other.name = "NotOCPS";
    probe a;
    probe b;
    sal_transport *ta = open_on(&a, ocps_test_component(), 0);
    sal_transport *tb = open_on(&b, &other, 0);
    add(ta, hb, false);
    add(tb, hb, true);
    assert_int_equal(a.nmatches, 0);
    assert_int_equal(b.nmatches, 0);
    /* the same topic name with another layout is refused, not mixed */
    sal_topic_info *topics = malloc(ocps_test_component()->ntopics * sizeof *topics);
    memcpy(topics, ocps_test_component()->topics, ocps_test_component()->ntopics * sizeof *topics);
    topics[hb].sample_size += 8;
    sal_component_info changed = *ocps_test_component();
    changed.topics = topics;
    probe c;
    sal_transport *tc = open_on(&c, &changed, 0);
    char err[256];
    assert_int_not_equal(ops->writer_create(tc, hb, err, sizeof err), 0);
    assert_non_null(strstr(err, "another type"));
    assert_int_equal(a.nmatches, 0);
    ops->close(ta);
    ops->close(tb);
    ops->close(tc);
    assert_int_equal(sal_inproc_endpoints(), 0);
    free(topics);
    probe_fini(&a);
    probe_fini(&b);
    probe_fini(&c);
}

static void closed_transport_gets_nothing_more(void **state)
{
    (void)state;
    int lm = topic("logevent_logMessage");
    probe r;
    probe w;
    sal_transport *tr = open_on(&r, ocps_test_component(), 0);
    sal_transport *tw = open_on(&w, ocps_test_component(), 0);
    add(tr, lm, false);
    add(tw, lm, true);
    ops->close(tr);
    assert_match(&w, 1, lm, true, 0, -1);
    size_t matches = r.nmatches;
    void *s = log_sample(1, "nobody");
    write_sample(tw, s); /* no reader left: nothing to do */
    sal_sample_free(&ocps_test_component()->topics[lm], s);
    ops->close(tw);
    assert_int_equal(r.nsamples, 0);
    assert_int_equal(r.nmatches, matches); /* not told of the writer's end */
    probe_fini(&r);
    probe_fini(&w);
}

static void errors_reach_the_component_transports(void **state)
{
    (void)state;
    probe one;
    probe two;
    sal_transport *t1 = open_on(&one, ocps_test_component(), 1);
    sal_transport *t2 = open_on(&two, ocps_test_component(), 2);
    assert_int_equal(sal_inproc_report_error("OCPS", 1, "link down"), 1);
    assert_int_equal(one.errors, 1);
    assert_string_equal(one.error, "link down");
    assert_int_equal(two.errors, 0);
    assert_int_equal(sal_inproc_report_error("OCPS", -1, "all down"), 2);
    assert_int_equal(sal_inproc_report_error("Widget", -1, "none"), 0);
    assert_int_equal(two.errors, 1);
    ops->close(t1);
    ops->close(t2);
    assert_int_equal(sal_inproc_report_error("OCPS", -1, "closed"), 0);
    probe_fini(&one);
    probe_fini(&two);
}

/* --- threads: writers on four threads, readers coming and going --- */

#define WRITERS 4
#define PER_WRITER 2000

static void *writer_thread(void *arg)
{
    (void)arg;
    probe p;
    sal_transport *t = open_on(&p, ocps_test_component(), 0);
    int lm = topic("logevent_logMessage");
    void *s = log_sample(1, "load");
    char err[256];
    for (int i = 0; i < PER_WRITER; i++) {
        sal_sample_set_i32(&ocps_test_component()->topics[lm], s, "private_seqNum", i);
        if (ops->write(t, lm, s, err, sizeof err) != 0) {
            break;
        }
    }
    sal_sample_free(&ocps_test_component()->topics[lm], s);
    ops->close(t);
    probe_fini(&p);
    return NULL;
}

static void *churn_thread(void *arg)
{
    volatile int *stop = arg;
    int lm = topic("logevent_logMessage");
    while (!__atomic_load_n(stop, __ATOMIC_ACQUIRE)) {
        probe p;
        sal_transport *t = open_on(&p, ocps_test_component(), 0);
        add(t, lm, false);
        ops->close(t);
        probe_fini(&p);
    }
    return NULL;
}

static void writers_on_several_threads_lose_nothing(void **state)
{
    (void)state;
    int lm = topic("logevent_logMessage");
    probe r;
    sal_transport *tr = open_on(&r, ocps_test_component(), 0);
    add(tr, lm, false);
    int stop = 0;
    pthread_t churn;
    pthread_t writers[WRITERS];
    assert_int_equal(pthread_create(&churn, NULL, churn_thread, &stop), 0);
    for (int i = 0; i < WRITERS; i++) {
        assert_int_equal(pthread_create(&writers[i], NULL, writer_thread, NULL), 0);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(writers[i], NULL);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    pthread_join(churn, NULL);
    pthread_mutex_lock(&r.lock);
    assert_int_equal(r.total, WRITERS * PER_WRITER);
    pthread_mutex_unlock(&r.lock);
    ops->close(tr);
    assert_int_equal(sal_inproc_endpoints(), 0);
    probe_fini(&r);
}

/* --- through the runtime --- */

typedef struct got {
    int n;
    char message[256];
} got;

static void on_read(void *arg, int t, const void *sample)
{
    got *g = arg;
    g->n++;
    snprintf(g->message, sizeof g->message, "%s",
             sal_sample_get_string(&ocps_test_component()->topics[t], sample, "message"));
}

static void late_joiner_gets_the_last_event_again(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    int lm = topic("logevent_logMessage");
    sal *w = NULL;
    assert_int_equal(sal_open(&w, &loop, ocps_test_component(), 1, ops, NULL, err, sizeof err), 0);
    sal_republish_events(w, true);
    void *s = log_sample(1, "said before you came");
    assert_int_equal(sal_write(w, lm, s, 0, err, sizeof err), 0);
    sal_sample_free(&ocps_test_component()->topics[lm], s);
    sal *r = NULL;
    got g = {0};
    assert_int_equal(sal_open(&r, &loop, ocps_test_component(), 1, ops, "late@joiner", err, sizeof err), 0);
    assert_int_equal(sal_reader_add(r, lm, on_read, &g, err, sizeof err), 0);
    /* the writer's runtime learns of the reader and writes the event again */
    uint64_t end = uv_hrtime() + 5000000000u;
    while (g.n == 0 && uv_hrtime() < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(g.n, 1);
    assert_string_equal(g.message, "said before you came");
    assert_int_equal(sal_matched(w, lm, true), 1);
    sal_close(r, NULL, NULL);
    sal_close(w, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(readers_and_writers_match_both_ways),
        cmocka_unit_test(write_gives_each_reader_its_own_copy_at_once),
        cmocka_unit_test(own_reader_gets_own_samples),
        cmocka_unit_test(readers_get_only_their_sal_index),
        cmocka_unit_test(other_components_and_types_never_meet),
        cmocka_unit_test(closed_transport_gets_nothing_more),
        cmocka_unit_test(errors_reach_the_component_transports),
        cmocka_unit_test(writers_on_several_threads_lose_nothing),
        cmocka_unit_test(late_joiner_gets_the_last_event_again),
    };
    return cmocka_run_group_tests_name("inproc_transport", tests, NULL, NULL);
}
