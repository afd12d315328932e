/* sal_gate.c - transport threads run callbacks while the loop sleeps; see
 * sal_gate.h. */
#include "ocps/sal_gate.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct sal_gate {
    uv_loop_t *loop;
    pthread_mutex_t mutex; /* held by the owner except while it sleeps */
    bool sleeping;         /* the owner waits in sal_gate_run */
    bool inside;           /* a transport thread holds the gate */
    pthread_t inside_thread;
    uv_async_t wake; /* unreferenced: wakes the loop after a visit */
    bool running;    /* in sal_gate_run */
    /* the loop when a visit began: a visit that changed none of these
     * leaves the sleeping loop as it is */
    unsigned before_handles;
    unsigned before_reqs;
    int before_timeout;
    bool closed; /* wake has closed: free when sal_gate_run returns */
};

static void gate_free(sal_gate *g)
{
    pthread_mutex_unlock(&g->mutex);
    pthread_mutex_destroy(&g->mutex);
    free(g);
}

static void on_wake(uv_async_t *handle)
{
    (void)handle; /* uv_run re-reads timers and watchers */
}

int sal_gate_open(sal_gate **out, uv_loop_t *loop, char *err, size_t errlen)
{
    *out = NULL;
    sal_gate *g = calloc(1, sizeof *g);
    if (g == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = uv_async_init(loop, &g->wake, on_wake);
    if (rc != 0) {
        snprintf(err, errlen, "uv_async_init: %s", uv_strerror(rc));
        free(g);
        return rc;
    }
    uv_unref((uv_handle_t *)&g->wake);
    g->wake.data = g;
    g->loop = loop;
    pthread_mutex_init(&g->mutex, NULL);
    pthread_mutex_lock(&g->mutex);
    *out = g;
    return 0;
}

/* Sleep until the loop has something to do (at most timeout ms, -1: no
 * limit), with the gate open. */
static void gate_sleep(sal_gate *g, int timeout)
{
    struct pollfd p = {.fd = uv_backend_fd(g->loop), .events = POLLIN};
    g->sleeping = true;
    pthread_mutex_unlock(&g->mutex);
    (void)poll(&p, 1, timeout); /* EINTR: look again */
    pthread_mutex_lock(&g->mutex);
    g->sleeping = false;
}

int sal_gate_run(sal_gate *g, uv_run_mode mode)
{
    g->running = true;
    /* UV_RUN_ONCE as uv_run has it: wait unless something is ready (the
     * poll returns at once then), then one pass. (A pass first and a
     * sleep after it slept past what that pass had run, e.g. a sample
     * queued while the owner was busy, until the next timer.) */
    if (mode == UV_RUN_ONCE) {
        uv_update_time(g->loop);
        int timeout = uv_backend_timeout(g->loop);
        if (timeout != 0) {
            gate_sleep(g, timeout);
        }
    }
    for (;;) {
        int alive = uv_run(g->loop, UV_RUN_NOWAIT);
        if (g->closed) { /* closed by a callback just now: the rest without it */
            uv_loop_t *loop = g->loop;
            gate_free(g);
            return alive && mode == UV_RUN_DEFAULT ? uv_run(loop, UV_RUN_DEFAULT) : alive;
        }
        if (!alive || mode != UV_RUN_DEFAULT) {
            g->running = false;
            return alive;
        }
        uv_update_time(g->loop); /* the pass took time: the timeout from now */
        int timeout = uv_backend_timeout(g->loop);
        if (timeout != 0) {
            gate_sleep(g, timeout);
        }
    }
}

bool sal_gate_try_enter(sal_gate *g)
{
    if (g == NULL || pthread_mutex_trylock(&g->mutex) != 0) {
        return false;
    }
    if (!g->sleeping) { /* held by the owner outside sal_gate_run */
        pthread_mutex_unlock(&g->mutex);
        return false;
    }
    g->inside = true;
    g->inside_thread = pthread_self();
    uv_update_time(g->loop);
    g->before_handles = g->loop->active_handles;
    g->before_reqs = g->loop->active_reqs.count;
    g->before_timeout = uv_backend_timeout(g->loop);
    return true;
}

/* Is timeout `now` (ms, -1 none) sooner than `before`? A later one needs
 * no wake-up: the sleeping owner wakes at the earlier time, finds nothing
 * due and sleeps again until the new one. */
static bool sooner(int now, int before)
{
    return now >= 0 && (before < 0 || now < before);
}

void sal_gate_leave(sal_gate *g)
{
    g->inside = false;
    /* new or ended handles or requests (watchers join the poll set only
     * when the loop runs; a loop left with nothing may end), or a sooner
     * next timer (or a handle closing: timeout 0): wake the loop, before
     * letting go (the owner may close the gate then) */
    if (g->loop->active_handles != g->before_handles || g->loop->active_reqs.count != g->before_reqs ||
        sooner(uv_backend_timeout(g->loop), g->before_timeout)) {
        uv_async_send(&g->wake);
    }
    pthread_mutex_unlock(&g->mutex);
}

bool sal_gate_inline(const sal_gate *g)
{
    return g != NULL && g->inside && pthread_equal(g->inside_thread, pthread_self());
}

static void on_closed(uv_handle_t *handle)
{
    sal_gate *g = handle->data;
    g->closed = true;
    if (!g->running) {
        gate_free(g);
    }
}

void sal_gate_close(sal_gate *g)
{
    if (g != NULL) {
        uv_close((uv_handle_t *)&g->wake, on_closed);
    }
}
