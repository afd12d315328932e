/* ocps_redis.c - see ocps_redis.h. */
#include "ocps/ocps_redis.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

/* The addresses of the host tried in turn at each attempt. */
#define OCPS_REDIS_MAX_ADDRESSES 8
/* The longest time between two PINGs of a connection that is up. */
#define OCPS_REDIS_HEALTH_MAX_S 5.0

struct ocps_redis {
    uv_loop_t *loop;
    char host[256];
    int port;
    char password[513];
    char address[300];
    double connect_timeout;
    double command_timeout;
    double backoff_min;
    double backoff_max;
    double backoff;
    redisAsyncContext *ac; /* the current connection (connecting or up) */
    bool up;
    bool resolving;
    bool resolve_abandoned; /* the attempt timed out while resolving */
    bool closing;
    char reason[512];
    uv_getaddrinfo_t gai;
    uv_timer_t retry;    /* the next attempt */
    uv_timer_t attempt;  /* time limit of the current attempt */
    uv_timer_t health;   /* a PING while up, so that a silent peer is noticed */
    bool health_waiting; /* that PING has not been answered yet */
    /* the resolved addresses of the current attempt, tried in turn */
    char ips[OCPS_REDIS_MAX_ADDRESSES][64];
    int ip_count;
    int ip_next;
    int parts; /* handles and requests still closing */
    ocps_redis_state_cb state_cb;
    void *arg;
    ocps_redis_close_cb close_cb;
    void *close_arg;
};

/* A command waiting for its reply. */
typedef struct pending_cmd {
    ocps_redis *r;
    uv_timer_t timer;
    ocps_redis_reply_cb cb;
    void *arg;
    bool answered;     /* cb has run */
    bool hiredis_done; /* hiredis has called back (or never will) */
    bool timer_closing;
} pending_cmd;

static void start_attempt(ocps_redis *r);
static void on_health(uv_timer_t *t);
static void connect_next(ocps_redis *r, const char *last_failure);

static void on_retry(uv_timer_t *t)
{
    start_attempt(t->data);
}

/* --- hiredis on the libuv loop ---
 *
 * Our own event adapter rather than hiredis's adapters/libuv.h: Debian's
 * (hiredis 0.14.1) returns from its poll callback when libuv reports an
 * error on the socket, and libuv has then stopped the poll, so a refused
 * connection was never noticed (the attempt only ended at its time limit).
 * Here an error is handed to hiredis, which reads the socket's error
 * (SO_ERROR, or the failing read) and ends the connection with it. */

typedef struct uv_events {
    redisAsyncContext *ac; /* NULL once hiredis has cleaned up */
    uv_poll_t poll;
    int events;
} uv_events;

static void ev_poll_cb(uv_poll_t *h, int status, int events)
{
    uv_events *e = h->data;
    if (e->ac == NULL) {
        return;
    }
    if (status < 0) {
        if (!(e->ac->c.flags & REDIS_CONNECTED)) {
            redisAsyncHandleWrite(e->ac); /* finds the connect error */
        } else {
            redisAsyncHandleRead(e->ac); /* finds the read error */
        }
        return;
    }
    if (events & UV_READABLE) {
        redisAsyncHandleRead(e->ac);
    }
    if (e->ac != NULL && (events & UV_WRITABLE)) {
        redisAsyncHandleWrite(e->ac);
    }
}

static void ev_update(uv_events *e, int add, int del)
{
    e->events = (e->events | add) & ~del;
    if (e->events != 0) {
        uv_poll_start(&e->poll, e->events, ev_poll_cb);
    } else {
        uv_poll_stop(&e->poll);
    }
}

static void ev_add_read(void *p)
{
    ev_update(p, UV_READABLE, 0);
}

static void ev_del_read(void *p)
{
    ev_update(p, 0, UV_READABLE);
}

static void ev_add_write(void *p)
{
    ev_update(p, UV_WRITABLE, 0);
}

static void ev_del_write(void *p)
{
    ev_update(p, 0, UV_WRITABLE);
}

static void ev_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ev_cleanup(void *p)
{
    uv_events *e = p;
    e->ac = NULL;
    uv_close((uv_handle_t *)&e->poll, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    uv_events *e = calloc(1, sizeof *e);
    if (e == NULL || ac->ev.data != NULL) {
        free(e);
        return -1;
    }
    if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
        free(e);
        return -1;
    }
    e->ac = ac;
    e->poll.data = e;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

/* --- closing --- */

static void part_closed(ocps_redis *r)
{
    if (--r->parts == 0) {
        ocps_redis_close_cb cb = r->close_cb;
        void *arg = r->close_arg;
        free(r);
        if (cb != NULL) {
            cb(arg);
        }
    }
}

static void timer_closed(uv_handle_t *h)
{
    part_closed(h->data);
}

/* --- connection state --- */

static void schedule_retry(ocps_redis *r)
{
    uv_timer_stop(&r->attempt);
    uv_timer_stop(&r->health);
    if (r->closing) {
        return;
    }
    uv_timer_start(&r->retry, on_retry, (uint64_t)(r->backoff * 1000), 0);
    r->backoff = r->backoff * 2 < r->backoff_max ? r->backoff * 2 : r->backoff_max;
}

/* The attempt failed or the connection was lost: say so, try again later. */
static void went_down(ocps_redis *r, const char *reason)
{
    r->up = false;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    schedule_retry(r);
    if (!r->closing && r->state_cb != NULL) {
        r->state_cb(r->arg, false, r->reason);
    }
}

/* Drop the current connection (its waiting commands end) and go down. */
static void drop(ocps_redis *r, const char *reason)
{
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    if (ac != NULL) {
        redisAsyncFree(ac); /* deferred by hiredis when inside its callback */
    }
    went_down(r, reason);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    ocps_redis *r = ac->data;
    if (status == REDIS_OK || r == NULL || ac != r->ac) {
        return;
    }
    r->ac = NULL; /* hiredis frees it after this call */
    char reason[400];
    snprintf(reason, sizeof reason, "cannot connect to %s: %s", r->ips[r->ip_next],
             ac->errstr[0] ? ac->errstr : "unknown error");
    r->ip_next++;
    connect_next(r, reason); /* the host's next address, as redis-py does */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    ocps_redis *r = ac->data;
    if (r == NULL || ac != r->ac) {
        return; /* a connection this client dropped itself */
    }
    r->ac = NULL;
    char reason[400];
    snprintf(reason, sizeof reason, "connection lost: %s",
             status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "unknown error"));
    went_down(r, reason);
}

static void on_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
    ocps_redis *r = privdata;
    redisReply *rep = reply;
    if (rep == NULL || ac != r->ac) {
        return; /* the connection went: on_disconnect says why */
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        char reason[400];
        snprintf(reason, sizeof reason, "the server refused the password (REDIS_PASSWORD): %.300s", rep->str);
        drop(r, reason);
    }
}

static void on_ping(redisAsyncContext *ac, void *reply, void *privdata)
{
    ocps_redis *r = privdata;
    redisReply *rep = reply;
    if (rep == NULL || ac != r->ac) {
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR || rep->type != REDIS_REPLY_STATUS) {
        char reason[400];
        snprintf(reason, sizeof reason, "PING failed: %.300s",
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
        drop(r, reason);
        return;
    }
    uv_timer_stop(&r->attempt);
    /* a peer gone without a FIN (its node died, a partition) is found by
     * the kernel's keepalive and by the PING of an idle connection */
    redisEnableKeepAlive(&ac->c);
    r->health_waiting = false;
    double every =
        r->command_timeout < OCPS_REDIS_HEALTH_MAX_S ? r->command_timeout : OCPS_REDIS_HEALTH_MAX_S;
    uv_timer_start(&r->health, on_health, (uint64_t)(every * 1000), (uint64_t)(every * 1000));
    r->up = true;
    r->reason[0] = '\0';
    r->backoff = r->backoff_min;
    if (r->state_cb != NULL) {
        r->state_cb(r->arg, true, "");
    }
}

/* Begin a connection to ip; 0, or -1 with the reason. */
static int connect_to(ocps_redis *r, const char *ip, char *reason, size_t len)
{
    redisAsyncContext *ac = redisAsyncConnect(ip, r->port);
    if (ac == NULL || ac->err != 0) {
        snprintf(reason, len, "cannot connect to %s: %s", ip, ac != NULL ? ac->errstr : "out of memory");
        if (ac != NULL) {
            redisAsyncFree(ac);
        }
        return -1;
    }
    ac->data = r;
    if (ev_attach(ac, r->loop) != 0) {
        redisAsyncFree(ac);
        snprintf(reason, len, "cannot attach the connection to the event loop");
        return -1;
    }
    r->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* queued now, written once the connection is made */
    if (r->password[0] != '\0') {
        const char *argv[] = {"AUTH", r->password};
        redisAsyncCommandArgv(ac, on_auth, r, 2, argv, NULL);
    }
    redisAsyncCommand(ac, on_ping, r, "PING");
    return 0;
}

/* Connect to the next resolved address that takes a connection attempt;
 * when none is left, the attempt has failed with the last reason. */
static void connect_next(ocps_redis *r, const char *last_failure)
{
    char reason[400];
    snprintf(reason, sizeof reason, "%s", last_failure);
    if (r->closing) {
        return;
    }
    for (; r->ip_next < r->ip_count; r->ip_next++) {
        if (connect_to(r, r->ips[r->ip_next], reason, sizeof reason) == 0) {
            return;
        }
    }
    went_down(r, reason);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    ocps_redis *r = req->data;
    r->resolving = false;
    if (r->closing || r->resolve_abandoned) {
        r->resolve_abandoned = false;
        uv_freeaddrinfo(res);
        if (r->closing) {
            part_closed(r);
        }
        return;
    }
    r->ip_count = r->ip_next = 0;
    for (struct addrinfo *a = status == 0 ? res : NULL; a != NULL && r->ip_count < OCPS_REDIS_MAX_ADDRESSES;
         a = a->ai_next) {
        char *ip = r->ips[r->ip_count];
        ip[0] = '\0';
        if (a->ai_family == AF_INET6) {
            uv_ip6_name((const struct sockaddr_in6 *)a->ai_addr, ip, sizeof r->ips[0]);
        } else if (a->ai_family == AF_INET) {
            uv_ip4_name((const struct sockaddr_in *)a->ai_addr, ip, sizeof r->ips[0]);
        }
        if (ip[0] != '\0') {
            r->ip_count++;
        }
    }
    uv_freeaddrinfo(res);
    if (r->ip_count == 0) {
        char reason[400];
        snprintf(reason, sizeof reason, "cannot resolve host %s: %s", r->host,
                 status != 0 ? uv_strerror(status) : "no address");
        went_down(r, reason);
        return;
    }
    connect_next(r, "no address");
}

static void on_attempt_timeout(uv_timer_t *t)
{
    ocps_redis *r = t->data;
    char reason[200];
    snprintf(reason, sizeof reason, "no connection within %.1f s (resolve, connect, AUTH, PING)",
             r->connect_timeout);
    if (r->resolving) {
        r->resolve_abandoned = true;
        uv_cancel((uv_req_t *)&r->gai);
        went_down(r, reason);
    } else if (r->ac != NULL && !r->up) {
        drop(r, reason);
    }
}

static void start_attempt(ocps_redis *r)
{
    if (r->closing || r->ac != NULL) {
        return;
    }
    if (r->resolving) { /* an abandoned lookup still runs: later */
        schedule_retry(r);
        return;
    }
    uv_timer_start(&r->attempt, on_attempt_timeout, (uint64_t)(r->connect_timeout * 1000), 0);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    r->gai.data = r;
    int rc = uv_getaddrinfo(r->loop, &r->gai, on_resolved, r->host, NULL, &hints);
    if (rc != 0) {
        char reason[300];
        snprintf(reason, sizeof reason, "cannot resolve host %s: %s", r->host, uv_strerror(rc));
        went_down(r, reason);
        return;
    }
    r->resolving = true;
}

/* --- public --- */

int ocps_redis_open(ocps_redis **out, uv_loop_t *loop, const ocps_redis_options *o,
                    ocps_redis_state_cb state_cb, void *arg, char *err, size_t errlen)
{
    if (o->host == NULL || o->host[0] == '\0' || strlen(o->host) >= 256) {
        snprintf(err, errlen, "the Redis host must be 1 to 255 characters");
        return -EINVAL;
    }
    if (o->port < 1 || o->port > 65535) {
        snprintf(err, errlen, "the Redis port must be 1 to 65535");
        return -EINVAL;
    }
    if (o->password != NULL && strlen(o->password) >= 513) {
        snprintf(err, errlen, "the Redis password must be at most 512 characters");
        return -EINVAL;
    }
    ocps_redis *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    r->loop = loop;
    snprintf(r->host, sizeof r->host, "%s", o->host);
    r->port = o->port;
    snprintf(r->password, sizeof r->password, "%s", o->password != NULL ? o->password : "");
    snprintf(r->address, sizeof r->address, "%s:%d", r->host, r->port);
    r->connect_timeout = o->connect_timeout > 0 ? o->connect_timeout : 5;
    r->command_timeout = o->command_timeout > 0 ? o->command_timeout : 10;
    r->backoff_min = o->backoff_min > 0 ? o->backoff_min : 0.2;
    r->backoff_max = o->backoff_max >= r->backoff_min ? o->backoff_max : 5;
    r->backoff = r->backoff_min;
    snprintf(r->reason, sizeof r->reason, "not connected yet");
    r->state_cb = state_cb;
    r->arg = arg;
    uv_timer_init(loop, &r->retry);
    uv_timer_init(loop, &r->attempt);
    uv_timer_init(loop, &r->health);
    r->retry.data = r->attempt.data = r->health.data = r;
    *out = r;
    /* the first attempt from the loop: state_cb never runs before this returns */
    uv_timer_start(&r->retry, on_retry, 0, 0);
    return 0;
}

bool ocps_redis_up(const ocps_redis *r)
{
    return r != NULL && r->up;
}

const char *ocps_redis_down_reason(const ocps_redis *r)
{
    return r->up ? "" : r->reason;
}

const char *ocps_redis_address(const ocps_redis *r)
{
    return r->address;
}

static void rcmd_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Free the record once hiredis is done with it and cb has run. */
static void rcmd_maybe_free(pending_cmd *c)
{
    if (c->answered && c->hiredis_done && !c->timer_closing) {
        c->timer_closing = true;
        uv_close((uv_handle_t *)&c->timer, rcmd_timer_closed);
    }
}

static void rcmd_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    pending_cmd *c = privdata;
    redisReply *rep = reply;
    c->hiredis_done = true;
    if (!c->answered) {
        c->answered = true;
        uv_timer_stop(&c->timer);
        if (rep == NULL) {
            char failure[900];
            const char *why =
                c->r->reason[0] ? c->r->reason : (ac->errstr[0] ? ac->errstr : "connection lost");
            snprintf(failure, sizeof failure, "no reply from Redis at %s: %s", c->r->address, why);
            c->cb(c->arg, NULL, failure);
        } else {
            ocps_redis_reply out = {.kind = OCPS_REDIS_OTHER};
            switch (rep->type) {
            case REDIS_REPLY_INTEGER:
                out.kind = OCPS_REDIS_INTEGER;
                out.integer = rep->integer;
                break;
            case REDIS_REPLY_STRING:
            case REDIS_REPLY_STATUS:
                out.kind = OCPS_REDIS_STRING;
                break;
            case REDIS_REPLY_NIL:
                out.kind = OCPS_REDIS_NIL;
                break;
            case REDIS_REPLY_ERROR:
                out.kind = OCPS_REDIS_ERROR;
                break;
            default:
                break;
            }
            if (out.kind == OCPS_REDIS_STRING || out.kind == OCPS_REDIS_ERROR) {
                out.str = rep->str;
                out.len = rep->len;
            }
            c->cb(c->arg, &out, NULL);
        }
    }
    rcmd_maybe_free(c);
}

static void rcmd_timeout(uv_timer_t *t)
{
    pending_cmd *c = t->data;
    ocps_redis *r = c->r;
    char failure[400];
    snprintf(failure, sizeof failure, "no reply from Redis at %.300s within %.1f s", r->address,
             r->command_timeout);
    c->answered = true;
    c->cb(c->arg, NULL, failure);
    /* a server that does not answer: the connection is dropped (every
     * command waiting on it ends) and made again */
    char reason[300];
    snprintf(reason, sizeof reason, "a command got no reply within %.1f s", r->command_timeout);
    if (r->ac != NULL) {
        drop(r, reason);
    }
    rcmd_maybe_free(c);
}

int ocps_redis_command(ocps_redis *r, int argc, const char *const *argv, const size_t *argvlen,
                       ocps_redis_reply_cb cb, void *arg, char *err, size_t errlen)
{
    if (r->closing || !r->up || r->ac == NULL) {
        snprintf(err, errlen, "Redis at %s is not reachable: %s", r->address,
                 r->closing ? "the client is closing" : r->reason);
        return -1;
    }
    pending_cmd *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->r = r;
    c->cb = cb;
    c->arg = arg;
    uv_timer_init(r->loop, &c->timer);
    c->timer.data = c;
    if (redisAsyncCommandArgv(r->ac, rcmd_reply, c, argc, (const char **)argv, argvlen) != REDIS_OK) {
        snprintf(err, errlen, "Redis at %s: cannot send the command: %s", r->address,
                 r->ac->errstr[0] ? r->ac->errstr : "the connection is closing");
        c->answered = c->hiredis_done = true;
        rcmd_maybe_free(c);
        return -1;
    }
    uv_timer_start(&c->timer, rcmd_timeout, (uint64_t)(r->command_timeout * 1000), 0);
    return 0;
}

static void on_health_reply(void *arg, const ocps_redis_reply *reply, const char *failure)
{
    ocps_redis *r = arg;
    (void)reply;
    (void)failure; /* no reply in command_timeout: that command dropped the connection */
    r->health_waiting = false;
}

/* A PING every interval while up: a server that stops answering (a node
 * gone, a partition: no FIN, no RST) is dropped after command_timeout as
 * any command's would be, and reconnected, without waiting for a job's
 * command to find it; and an idle-client timeout of the server never
 * closes the connection. */
static void on_health(uv_timer_t *t)
{
    ocps_redis *r = t->data;
    if (!r->up || r->health_waiting) {
        return;
    }
    const char *argv[] = {"PING"};
    char err[1024]; /* the longest failure text of ocps_redis_command */
    if (ocps_redis_command(r, 1, argv, NULL, on_health_reply, r, err, sizeof err) == 0) {
        r->health_waiting = true;
    }
}

void ocps_redis_close(ocps_redis *r, ocps_redis_close_cb cb, void *arg)
{
    if (r == NULL) {
        if (cb != NULL) {
            cb(arg);
        }
        return;
    }
    if (r->closing) {
        return;
    }
    r->closing = true;
    r->close_cb = cb;
    r->close_arg = arg;
    r->up = false;
    snprintf(r->reason, sizeof r->reason, "the Redis client is closing");
    r->parts = 3;
    if (r->resolving) {
        r->parts++;
        uv_cancel((uv_req_t *)&r->gai);
    }
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    if (ac != NULL) {
        redisAsyncFree(ac); /* waiting commands end with the reason above */
    }
    uv_close((uv_handle_t *)&r->retry, timer_closed);
    uv_close((uv_handle_t *)&r->attempt, timer_closed);
    uv_close((uv_handle_t *)&r->health, timer_closed);
}
