/* inproc_csc.c - see inproc_csc.h. */
#include "inproc_csc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include "ocps/ocps_app.h"
#include "ocps/ocps_config.h"
#include "ocps/ocps_interface.h"
#include "inproc/sal_inproc.h"
#include "test_util.h"

struct csc_thread {
    ct_options o;
    pthread_t thread;
    uv_loop_t loop;
    uv_async_t wake; /* ct_call */
    sal_csc *csc;
    ocps_app *app;
    /* shared with the test's thread, under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool started; /* sal_csc_start has run (or the start failed) */
    int start_rc;
    bool closing;  /* the CSC is stopping: ct_call runs nothing more */
    bool finished; /* the loop has ended */
    int exit_code;
    int csc_exit; /* from the CSC's closed hook */
    bool csc_closed;
    void (*req_fn)(void *arg, sal_csc *csc); /* the pending ct_call */
    void *req_arg;
    bool req_running;
    bool req_done;
    int req_rc;
};

void ct_options_init(ct_options *o, const sal_component_info *comp)
{
    memset(o, 0, sizeof *o);
    o->comp = comp;
    sal_csc_options_init(&o->csc);
    o->csc.index = 1;
    o->csc.indices = ocps_indices(&o->csc.nindices);
    o->csc.duplicate_check = 0;
    o->csc.shutdown_delay = 0.05;
}

void ct_options_ocps(ct_options *o, const sal_component_info *comp, const char *runner,
                     const char *config_dir)
{
    ct_options_init(o, comp);
    o->ocps_runner = runner;
    o->csc.config_schema = ocps_config_schema;
    o->csc.config_pkg = OCPS_CONFIG_PKG;
    o->csc.config_dir = config_dir;
    o->csc.csc_version = "0.0.0-inproc";
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char *p = tu_path_join(dir, name);
    if (tu_write_file(p, text, strlen(text)) != 0) {
        fprintf(stderr, "ct: cannot write %s\n", p);
    }
    free(p);
}

char *ct_ocps_config(const char *pipetask, const char *extra)
{
    char *root = tu_make_temp_dir();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/OCPS", root);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/OCPS/v4", root);
    mkdir(dir, 0755);
    write_file(dir, "_init.yaml",
               "instances:\n  - sal_index: 1\n    instance: LATISS\n    url: http://uws-server/api/v1\n"
               "    poll_interval: 0.5\n    butler: LATISS\n    input_collection: LATISS/raw/all\n"
               "    output_glob: '*.fits'\n");
    char site[4096];
    snprintf(site, sizeof site,
             "work_root: %s/jobs\npipetask: %s\ninprogress_interval: 1\nmax_concurrent_jobs: 8\n"
             "abort_grace: 2\nsimulation_duration: 0.2\n%s%s",
             root, pipetask,
             /* fake-pipetask registers nothing to retrieve: no retrieval step unless asked */
             extra != NULL && strstr(extra, "retrieve_command") ? "" : "retrieve_command: []\n",
             extra ? extra : "");
    write_file(dir, "_test.yaml", site);
    return root;
}

static void finish_request(csc_thread *t, int rc)
{
    t->req_fn = NULL;
    t->req_arg = NULL;
    t->req_running = false;
    t->req_done = true;
    t->req_rc = rc;
    pthread_cond_broadcast(&t->cond);
}

static void on_wake(uv_async_t *h)
{
    csc_thread *t = h->data;
    pthread_mutex_lock(&t->lock);
    void (*fn)(void *, sal_csc *) = t->req_fn;
    void *arg = t->req_arg;
    t->req_running = fn != NULL;
    pthread_mutex_unlock(&t->lock);
    if (fn == NULL) {
        return;
    }
    fn(arg, t->csc);
    pthread_mutex_lock(&t->lock);
    finish_request(t, 0);
    pthread_mutex_unlock(&t->lock);
}

static int on_configure(void *arg, json_t *config, char *err, size_t errlen)
{
    csc_thread *t = arg;
    if (t->app != NULL) {
        return ocps_app_configure(t->app, config, err, errlen);
    }
    return t->o.configure != NULL ? t->o.configure(t->o.arg, config, err, errlen) : 0;
}

/* The CSC is stopping (on its loop): release what holds the loop open. */
static void on_closing(void *arg)
{
    csc_thread *t = arg;
    if (t->o.closing != NULL) {
        t->o.closing(t->o.arg);
    }
    ocps_app_close(t->app, NULL, NULL);
    t->app = NULL;
    pthread_mutex_lock(&t->lock);
    t->closing = true;
    if (t->req_fn != NULL && !t->req_running) {
        finish_request(t, -1); /* will never run */
    }
    pthread_mutex_unlock(&t->lock);
    uv_close((uv_handle_t *)&t->wake, NULL);
}

/* The CSC has closed and been freed (on its loop). */
static void on_closed(void *arg, int exit_code)
{
    csc_thread *t = arg;
    t->csc = NULL;
    t->csc_exit = exit_code;
    t->csc_closed = true;
}

static int open_csc(csc_thread *t, char *err, size_t errlen)
{
    const ct_options *o = &t->o;
    sal_csc_hooks hooks = {.configure = on_configure, .closing = on_closing, .closed = on_closed, .arg = t};
    int rc = 0;
    if (o->ocps_runner != NULL) {
        rc = ocps_app_open(&t->app, &t->loop, o->comp, o->csc.index, o->csc.simulation_mode, o->ocps_runner,
                           err, errlen);
    }
    if (rc == 0) {
        rc = sal_csc_open(&t->csc, &t->loop, o->comp, &o->csc, &hooks, err, errlen);
    }
    if (rc == 0 && t->app != NULL) {
        rc = ocps_app_attach(t->app, t->csc, err, errlen);
    }
    if (rc == 0 && o->setup != NULL) {
        o->setup(o->arg, t->csc);
    }
    if (rc == 0) {
        rc = sal_csc_start(t->csc, err, errlen);
    }
    return rc;
}

static void *thread_main(void *arg)
{
    csc_thread *t = arg;
    char err[1024] = "";
    int rc = open_csc(t, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "ct_start: %s\n", err);
        if (t->csc != NULL) {
            sal_csc_close(t->csc, 1); /* runs on_closing */
        } else {
            ocps_app_close(t->app, NULL, NULL);
            t->app = NULL;
            uv_close((uv_handle_t *)&t->wake, NULL);
        }
    }
    pthread_mutex_lock(&t->lock);
    t->started = true;
    t->start_rc = rc;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);

    uv_run(&t->loop, UV_RUN_DEFAULT);
    int code = t->csc_closed ? t->csc_exit : 1; /* everything was freed on the loop */
    if (uv_loop_close(&t->loop) != 0) {
        fprintf(stderr, "ct: the CSC's loop still had handles at its end\n");
        code = -1;
    }
    pthread_mutex_lock(&t->lock);
    t->finished = true;
    t->exit_code = code;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

csc_thread *ct_start(const ct_options *o)
{
    csc_thread *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return NULL;
    }
    t->o = *o;
    t->o.csc.transport = &sal_inproc_transport;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    uv_loop_init(&t->loop);
    uv_async_init(&t->loop, &t->wake, on_wake);
    t->wake.data = t;
    if (pthread_create(&t->thread, NULL, thread_main, t) != 0) {
        fprintf(stderr, "ct_start: pthread_create failed\n");
        uv_close((uv_handle_t *)&t->wake, NULL);
        uv_run(&t->loop, UV_RUN_DEFAULT);
        uv_loop_close(&t->loop);
        free(t);
        return NULL;
    }
    pthread_mutex_lock(&t->lock);
    while (!t->started) {
        pthread_cond_wait(&t->cond, &t->lock);
    }
    int rc = t->start_rc;
    pthread_mutex_unlock(&t->lock);
    if (rc != 0) {
        ct_stop(t);
        return NULL;
    }
    return t;
}

int ct_call(csc_thread *t, void (*fn)(void *arg, sal_csc *csc), void *arg)
{
    pthread_mutex_lock(&t->lock);
    while (t->req_fn != NULL && !t->closing) { /* one call at a time */
        pthread_cond_wait(&t->cond, &t->lock);
    }
    if (t->closing) {
        pthread_mutex_unlock(&t->lock);
        return -1;
    }
    t->req_fn = fn;
    t->req_arg = arg;
    t->req_done = false;
    uv_async_send(&t->wake);
    while (!t->req_done) {
        pthread_cond_wait(&t->cond, &t->lock);
    }
    int rc = t->req_rc;
    pthread_mutex_unlock(&t->lock);
    return rc;
}

static void read_state(void *arg, sal_csc *csc)
{
    *(sal_state *)arg = sal_csc_state(csc);
}

sal_state ct_state(csc_thread *t)
{
    sal_state s = 0;
    return ct_call(t, read_state, &s) == 0 ? s : 0;
}

bool ct_finished(csc_thread *t)
{
    pthread_mutex_lock(&t->lock);
    bool done = t->finished;
    pthread_mutex_unlock(&t->lock);
    return done;
}

static void stop(void *arg, sal_csc *csc)
{
    (void)arg;
    sal_csc_close(csc, 0);
}

void ct_signal(csc_thread *t)
{
    ct_call(t, stop, NULL); /* -1 if it is already stopping */
}

int ct_stop(csc_thread *t)
{
    if (t == NULL) {
        return -1;
    }
    ct_signal(t);
    pthread_join(t->thread, NULL);
    int code = t->exit_code;
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    free(t);
    return code;
}

/* --- holding libuv's thread pool --- */

static void hold_work(uv_work_t *w)
{
    ct_pool_hold *h = w->data;
    pthread_mutex_lock(&h->lock);
    h->running++;
    pthread_cond_broadcast(&h->cond);
    while (!h->release) {
        pthread_cond_wait(&h->cond, &h->lock);
    }
    pthread_mutex_unlock(&h->lock);
}

static void hold_done(uv_work_t *w, int status)
{
    (void)status;
    ((ct_pool_hold *)w->data)->finished++;
}

void ct_pool_fill(ct_pool_hold *h, uv_loop_t *loop)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    for (int i = 0; i < CT_POOL_SIZE; i++) {
        h->work[i].data = h;
        uv_queue_work(loop, &h->work[i], hold_work, hold_done);
    }
    pthread_mutex_lock(&h->lock);
    while (h->running < CT_POOL_SIZE) {
        pthread_cond_wait(&h->cond, &h->lock);
    }
    pthread_mutex_unlock(&h->lock);
}

void ct_pool_release(ct_pool_hold *h)
{
    pthread_mutex_lock(&h->lock);
    h->release = true;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
}

bool ct_pool_empty(fx *f, void *arg)
{
    (void)f;
    return ((ct_pool_hold *)arg)->finished == CT_POOL_SIZE;
}

void ct_pool_fini(ct_pool_hold *h)
{
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cond);
}
