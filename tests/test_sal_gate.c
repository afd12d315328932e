/*
 * test_sal_gate: the runtime's callbacks on the transport's thread while
 * the loop sleeps (sal_gate.h). A visitor gets the gate only while the
 * owner sleeps in sal_gate_run, and what it starts on the loop (a timer)
 * runs; over DDS, samples written by another process's runtime reach the
 * reader's callbacks on Cyclone's thread, all of them and in order; a
 * runtime closed from such a callback closes (on the loop) instead of
 * deadlocking; and with the gate off every callback runs on the loop's
 * thread.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "ocps_test_iface.h"
#include "ocps/sal.h"
#include "ocps/sal_gate.h"
#include "ocps/sal_sample.h"
#include "sal_fixture.h"
#include "test_util.h"

/* --- the gate alone --- */

typedef struct visit {
    sal_gate *gate;
    atomic_int entered; /* 1 entered, -1 refused */
    uv_timer_t timer;
    bool fired;
} visit;

static void on_fire(uv_timer_t *t)
{
    visit *v = t->data;
    v->fired = true;
    uv_close((uv_handle_t *)t, NULL);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void *visitor(void *arg)
{
    visit *v = arg;
    for (int i = 0; i < 2000 && !sal_gate_try_enter(v->gate); i++) {
        usleep(1000);
    }
    if (!sal_gate_inline(v->gate)) {
        atomic_store(&v->entered, -1);
        return NULL;
    }
    /* the loop's state is ours: start a timer the sleeping loop must run */
    uv_timer_start(&v->timer, on_fire, 20, 0);
    atomic_store(&v->entered, 1);
    sal_gate_leave(v->gate);
    return NULL;
}

static void visitor_gets_the_gate_only_while_the_loop_sleeps(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    visit v = {0};
    char err[128];
    assert_int_equal(sal_gate_open(&v.gate, &loop, err, sizeof err), 0);
    /* held by its owner outside sal_gate_run */
    assert_false(sal_gate_try_enter(v.gate));
    assert_false(sal_gate_inline(v.gate));
    uv_timer_init(&loop, &v.timer);
    v.timer.data = &v;
    uv_timer_t keep; /* keeps the loop sleeping until the visit is over */
    uv_timer_init(&loop, &keep);
    uv_timer_start(&keep, on_fire, 5000, 0);
    visit dummy = {0};
    keep.data = &dummy;
    pthread_t th;
    pthread_create(&th, NULL, visitor, &v);
    double t0 = tu_now();
    while (!v.fired && tu_now() - t0 < 4) {
        sal_gate_run(v.gate, UV_RUN_ONCE);
    }
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&v.entered), 1);
    assert_true(v.fired); /* the timer started by the visitor ran, well before `keep` */
    assert_true(tu_now() - t0 < 4);
    assert_false(sal_gate_inline(v.gate));
    uv_close((uv_handle_t *)&keep, NULL);
    sal_gate_close(v.gate);
    assert_int_equal(sal_gate_run(v.gate, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A wake-up (uv_async_send, as the runtime's inbox sends when the gate is
 * busy) that came while the owner was running: one UV_RUN_ONCE runs its
 * callback and returns, as uv_run does, instead of then sleeping until
 * the next timer. */
static void on_async_ran(uv_async_t *a)
{
    *(int *)a->data += 1;
}

static void once_returns_after_running_what_came_while_busy(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[128];
    sal_gate *gate;
    assert_int_equal(sal_gate_open(&gate, &loop, err, sizeof err), 0);
    uv_async_t async;
    int ran = 0;
    uv_async_init(&loop, &async, on_async_ran);
    async.data = &ran;
    uv_timer_t keep; /* the next timer: 5 s away */
    uv_timer_init(&loop, &keep);
    uv_timer_start(&keep, on_tick, 5000, 0);
    uv_async_send(&async); /* while the owner is busy, i.e. holds the gate */
    double t0 = tu_now();
    assert_int_not_equal(sal_gate_run(gate, UV_RUN_ONCE), 0);
    assert_int_equal(ran, 1);
    assert_true(tu_now() - t0 < 1);
    uv_close((uv_handle_t *)&keep, NULL);
    uv_close((uv_handle_t *)&async, NULL);
    sal_gate_close(gate);
    assert_int_equal(sal_gate_run(gate, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A visit that moves the loop's next timer later leaves the sleeping
 * owner asleep (it wakes at the earlier time anyway, finds nothing due
 * and sleeps on); one that moves it sooner wakes it. */
typedef struct mover {
    sal_gate *gate;
    uv_timer_t *timer;
    uint64_t due_ms; /* from the visit */
    atomic_bool done;
    double at; /* when the visit was made */
} mover;

static void on_moved_fire(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static void *move_timer(void *arg)
{
    mover *m = arg;
    usleep(20 * 1000);
    for (int i = 0; i < 5000 && !sal_gate_try_enter(m->gate); i++) {
        usleep(1000);
    }
    if (sal_gate_inline(m->gate)) {
        uv_update_time(m->timer->loop);
        uv_timer_start(m->timer, on_moved_fire, m->due_ms, 0); /* a restart: same handles */
        m->at = tu_now();
        atomic_store(&m->done, true);
        sal_gate_leave(m->gate);
    }
    return NULL;
}

/* Runs one UV_RUN_ONCE with `timer` first due in first_ms while a visitor
 * moves it to due_ms after its visit; the seconds the run took. */
static double once_while_timer_moves(uint64_t first_ms, uint64_t due_ms, bool *fired)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[128];
    sal_gate *gate;
    assert_int_equal(sal_gate_open(&gate, &loop, err, sizeof err), 0);
    uv_timer_t timer;
    uv_timer_init(&loop, &timer);
    timer.data = fired;
    uv_timer_start(&timer, on_moved_fire, first_ms, 0);
    sal_gate_run(gate, UV_RUN_NOWAIT); /* a first pass: the loop's own watchers set up */
    mover m = {.gate = gate, .timer = &timer, .due_ms = due_ms};
    pthread_t th;
    pthread_create(&th, NULL, move_timer, &m);
    double t0 = tu_now();
    sal_gate_run(gate, UV_RUN_ONCE);
    double took = tu_now() - t0;
    /* a visitor that came only after that run (a very late thread) still
     * gets in: the gate opens while the owner sleeps again */
    while (!atomic_load(&m.done) && tu_now() - t0 < 10) {
        sal_gate_run(gate, UV_RUN_ONCE);
    }
    pthread_join(th, NULL);
    assert_true(atomic_load(&m.done));
    assert_true(m.at - t0 < took); /* the visit was made during that run */
    while (!*fired && tu_now() - t0 < 10) {
        sal_gate_run(gate, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&timer, NULL);
    sal_gate_close(gate);
    assert_int_equal(sal_gate_run(gate, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    return took;
}

static void a_later_timer_leaves_the_loop_asleep_a_sooner_one_wakes_it(void **state)
{
    (void)state;
    bool fired = false;
    /* due at 1 s, moved at about 20 ms to 3 s later: no wake-up at the
     * visit; the run returns when the old time comes */
    double took = once_while_timer_moves(1000, 3000, &fired);
    assert_true(took >= 0.9);
    assert_true(fired); /* at its new time */
    /* due in 5 s, moved at about 20 ms to 100 ms later: woken at the
     * visit, and the timer runs long before its old time */
    fired = false;
    took = once_while_timer_moves(5000, 100, &fired);
    assert_true(took < 2.5);
    assert_true(fired);
}

/* --- over DDS: a writer in a child process, the reader here --- */

#define NSAMPLES 300

typedef struct reader {
    pthread_t owner;
    int topic;
    int seen;
    int in_order;
    int off_owner; /* callbacks not on the loop's thread */
    int close_at;  /* close the runtime from the callback of this sample (0: never) */
    sal *s;
    bool closed;
} reader;

static void on_closed(void *arg)
{
    ((reader *)arg)->closed = true;
}

static void on_sample(void *arg, int topic, const void *sample)
{
    reader *r = arg;
    const sal_topic_info *t = &ocps_test_component()->topics[topic];
    int level = sal_sample_get_i32(t, sample, "level");
    if (level < 1000) {
        return; /* not ours (e.g. an earlier sample re-published) */
    }
    r->in_order += level == 1000 + r->seen;
    r->seen++;
    r->off_owner += !pthread_equal(pthread_self(), r->owner);
    if (r->close_at > 0 && r->seen == r->close_at && r->s != NULL) {
        sal_close(r->s, on_closed, r); /* may be inside Cyclone's delivery */
        r->s = NULL;
    }
}

static int write_samples(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sal *w;
    char err[256];
    const sal_component_info *comp = ocps_test_component();
    int t = sal_component_find_topic(comp, "logevent_logLevel");
    if (sal_open(&w, &loop, comp, 1, sal_transport_find("dds"), "writer", err, sizeof err) != 0 ||
        sal_writer_add(w, t, err, sizeof err) != 0) {
        fprintf(stderr, "writer: %s\n", err);
        return 2;
    }
    /* wait for the reader to match */
    double t0 = tu_now();
    while (sal_matched(w, t, true) < 1 && tu_now() - t0 < 10) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
    usleep(200000);
    for (int i = 0; i < NSAMPLES; i++) {
        void *s = sal_sample_new(&comp->topics[t]);
        sal_sample_set_i32(&comp->topics[t], s, "level", 1000 + i);
        sal_write(w, t, s, SAL_WRITE_FORCE, err, sizeof err);
        sal_sample_free(&comp->topics[t], s);
        if (i % 10 == 0) {
            usleep(1000); /* let the reader's loop fall asleep now and then */
        }
    }
    usleep(500000);
    sal_close(w, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}

static bool done_reading(reader *r, int want)
{
    return r->seen >= want || r->closed;
}

/* Read NSAMPLES from a writer process, with or without a gate. */
static void read_from_writer(reader *r, bool gate_on)
{
    fx_env(CYCLONE_CONFIG);
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    const sal_component_info *comp = ocps_test_component();
    r->owner = pthread_self();
    r->topic = sal_component_find_topic(comp, "logevent_logLevel");
    assert_int_equal(sal_open(&r->s, &loop, comp, 1, sal_transport_find("dds"), "reader", err, sizeof err),
                     0);
    sal_gate *g = NULL;
    if (gate_on) {
        assert_int_equal(sal_gate_open(&g, &loop, err, sizeof err), 0);
        sal_set_gate(r->s, g);
    }
    assert_int_equal(sal_reader_add(r->s, r->topic, on_sample, r, err, sizeof err), 0);
    /* the writer: this program again (Cyclone does not survive a fork) */
    char *argv[] = {"/proc/self/exe", "--writer", NULL};
    int pid = tu_spawn(argv, "/dev/null");
    assert_true(pid > 0);
    uv_timer_t tick; /* at most 50 ms of sleep between looks */
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 50, 50);
    double t0 = tu_now();
    int want = r->close_at > 0 ? r->close_at : NSAMPLES;
    while (!done_reading(r, want) && tu_now() - t0 < 20) {
        if (g != NULL) {
            sal_gate_run(g, UV_RUN_ONCE);
        } else {
            uv_run(&loop, UV_RUN_ONCE);
        }
    }
    assert_int_equal(tu_wait_exit(pid, 10), 0);
    uv_timer_stop(&tick);
    uv_close((uv_handle_t *)&tick, NULL);
    if (r->s != NULL) {
        sal_close(r->s, on_closed, r);
        r->s = NULL;
    }
    sal_gate_close(g);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(r->closed);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void samples_run_on_the_transport_thread_in_order(void **state)
{
    (void)state;
    reader r = {0};
    read_from_writer(&r, true);
    assert_int_equal(r.seen, NSAMPLES);
    assert_int_equal(r.in_order, NSAMPLES);
    assert_true(r.off_owner > 0); /* at least some were delivered inline */
}

static void without_the_gate_every_callback_is_on_the_loop(void **state)
{
    (void)state;
    reader r = {0};
    read_from_writer(&r, false);
    assert_int_equal(r.seen, NSAMPLES);
    assert_int_equal(r.in_order, NSAMPLES);
    assert_int_equal(r.off_owner, 0);
}

static void closing_from_an_inline_callback_does_not_deadlock(void **state)
{
    (void)state;
    reader r = {.close_at = 50};
    read_from_writer(&r, true);
    assert_true(r.closed);
    assert_int_equal(r.seen, 50); /* nothing delivered once closed */
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--writer") == 0) {
        return write_samples();
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(visitor_gets_the_gate_only_while_the_loop_sleeps),
        cmocka_unit_test(once_returns_after_running_what_came_while_busy),
        cmocka_unit_test(a_later_timer_leaves_the_loop_asleep_a_sooner_one_wakes_it),
        cmocka_unit_test(samples_run_on_the_transport_thread_in_order),
        cmocka_unit_test(without_the_gate_every_callback_is_on_the_loop),
        cmocka_unit_test(closing_from_an_inline_callback_does_not_deadlock),
    };
    return cmocka_run_group_tests_name("sal_gate", tests, NULL, NULL);
}
