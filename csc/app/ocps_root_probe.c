/*
 * ocps_root_probe.c - do directories answer? (ocps_root_probe.h)
 */
#include "ocps/ocps_root_probe.h"

#include "ocps/sal_clock.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define OCPS_ROOT_PROBE_MAX 4

struct ocps_root_probe {
    uv_work_t req;
    uv_timer_t timer;
    char *paths[OCPS_ROOT_PROBE_MAX];
    size_t n;
    atomic_size_t at; /* the path being stat'ed (by the worker; read on the loop after a timeout) */
    double started;
    int open;    /* the work and the timer, until each is back or closed */
    bool back;   /* the stats are back from the pool */
    bool called; /* cb called (until rearmed), or the owner let go */
    ocps_root_probe_cb cb;
    void *arg;
};

static void probe_free_if_done(ocps_root_probe *p)
{
    if (p->open > 0) {
        return;
    }
    for (size_t i = 0; i < p->n; i++) {
        free(p->paths[i]);
    }
    free(p);
}

static void probe_timer_closed(uv_handle_t *h)
{
    ocps_root_probe *p = h->data;
    p->open--;
    probe_free_if_done(p);
}

/* Call back once per arming (unless the owner let go). */
static void probe_answer(ocps_root_probe *p, bool answered, const char *path)
{
    if (p->called) {
        return;
    }
    p->called = true;
    uv_timer_stop(&p->timer);
    p->cb(p->arg, answered, path);
}

static void probe_work(uv_work_t *req)
{
    ocps_root_probe *p = req->data;
    for (size_t i = 0; i < p->n; i++) {
        atomic_store_explicit(&p->at, i, memory_order_relaxed);
        struct stat st;
        (void)stat(p->paths[i], &st); /* any answer will do */
    }
}

static void probe_back(uv_work_t *req, int status)
{
    (void)status;
    ocps_root_probe *p = req->data;
    p->back = true;
    p->open++; /* held while the callback runs: it may let go of p */
    probe_answer(p, true, NULL);
    p->open -= 2; /* the hold, and the work */
    probe_free_if_done(p);
}

static void probe_timeout(uv_timer_t *t)
{
    ocps_root_probe *p = t->data;
    size_t at = atomic_load_explicit(&p->at, memory_order_relaxed);
    probe_answer(p, false, p->paths[at < p->n ? at : p->n - 1]); /* frees nothing: the timer is open */
}

int ocps_root_probe_start(ocps_root_probe **out, uv_loop_t *loop, const char *const *paths, size_t n,
                          double timeout, ocps_root_probe_cb cb, void *arg, char *err, size_t errlen)
{
    *out = NULL;
    if (n == 0 || n > OCPS_ROOT_PROBE_MAX) {
        snprintf(err, errlen, "probe: 1 to %d paths", OCPS_ROOT_PROBE_MAX);
        return -1;
    }
    ocps_root_probe *p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((p->paths[i] = strdup(paths[i])) == NULL) {
            probe_free_if_done(p);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        p->n++;
    }
    p->cb = cb;
    p->arg = arg;
    p->started = sal_clock_monotonic();
    p->req.data = p;
    if (uv_queue_work(loop, &p->req, probe_work, probe_back) != 0) {
        probe_free_if_done(p);
        snprintf(err, errlen, "cannot use the thread pool");
        return -1;
    }
    p->open = 2;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, probe_timeout, (uint64_t)(timeout * 1000.0), 0);
    *out = p;
    return 0;
}

bool ocps_root_probe_waiting(const ocps_root_probe *p)
{
    return p != NULL && !p->called;
}

void ocps_root_probe_rearm(ocps_root_probe *p, double timeout, ocps_root_probe_cb cb, void *arg)
{
    p->cb = cb;
    p->arg = arg;
    p->called = false;
    uv_timer_start(&p->timer, probe_timeout, (uint64_t)(timeout * 1000.0), 0);
}

bool ocps_root_probe_busy(const ocps_root_probe *p)
{
    return p != NULL && !p->back;
}

double ocps_root_probe_age(const ocps_root_probe *p)
{
    return sal_clock_monotonic() - p->started;
}

void ocps_root_probe_close(ocps_root_probe *p)
{
    if (p == NULL) {
        return;
    }
    p->called = true;
    uv_close((uv_handle_t *)&p->timer, probe_timer_closed);
}
