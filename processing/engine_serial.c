/* engine_serial.c - work for libuv's thread pool done one item at a time,
 * in order (see engine__internal.h): file IO under the work root, which
 * may hang like an NFS mount, holds one thread of the pool at most per
 * queue. */
#include "engine__internal.h"

static void engine_serial_step(uv_work_t *req)
{
    engine_serial_work *w = req->data;
    w->run(w);
}

static void engine_serial_next(engine *e, engine_serial *q);

static void engine_serial_after(uv_work_t *req, int status)
{
    (void)status; /* never cancelled */
    engine_serial_work *w = req->data;
    engine *e = w->e;
    engine_serial *q = w->queue;
    q->running = NULL;
    w->done(w); /* frees w */
    engine_serial_next(e, q);
    engine__handle_closed(e); /* the last one frees a closing engine: nothing of e after this */
}

/* Put the head of q on the pool unless one is there, or the engine closes. */
static void engine_serial_next(engine *e, engine_serial *q)
{
    while (!e->closed && q->running == NULL && q->head != NULL) {
        engine_serial_work *w = q->head;
        q->head = w->next;
        if (q->head == NULL) {
            q->tail = NULL;
        }
        w->next = NULL;
        w->req.data = w;
        if (uv_queue_work(e->loop, &w->req, engine_serial_step, engine_serial_after) == 0) {
            e->open_handles++;
            q->running = w;
            return;
        }
        w->run(w); /* cannot happen (a valid loop and callbacks): done here */
        w->done(w);
    }
}

void engine__serial_push(engine *e, engine_serial *q, engine_serial_work *w)
{
    w->e = e;
    w->queue = q;
    w->next = NULL;
    if (q->tail != NULL) {
        q->tail->next = w;
    } else {
        q->head = w;
    }
    q->tail = w;
    engine_serial_next(e, q);
}

void engine__serial_drop(engine_serial *q)
{
    while (q->head != NULL) {
        engine_serial_work *w = q->head;
        q->head = w->next;
        w->drop(w);
    }
    q->tail = NULL;
}
