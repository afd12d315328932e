/*
 * uv_mhd.c - libmicrohttpd driven by a libuv loop (see uv_mhd.h).
 */
#define _XOPEN_SOURCE 700
#include "ocps/uv_mhd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

struct uv_mhd {
    struct MHD_Daemon *daemon;
    uv_poll_t poll;
    uv_timer_t timer;
    int handles; /* loop handles not yet closed */
    unsigned port;
    bool quiesced;
    void (*after_run)(void *arg);
    void *after_arg;
    void (*done)(void *arg);
    void *done_arg;
};

int uv_mhd_parse_listen(const char *listen, const char *option, struct sockaddr_storage *ss, bool *loopback,
                        char *err, size_t errlen)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    size_t hlen = colon != NULL ? (size_t)(colon - listen) : 0;
    char *end = NULL;
    long port = colon != NULL ? strtol(colon + 1, &end, 10) : -1;
    if (colon == NULL || hlen == 0 || hlen >= sizeof host || end == colon + 1 || *end != '\0' || port < 0 ||
        port > 65535) {
        snprintf(err, errlen, "%s %s: expected ADDR:PORT", option, listen);
        return -1;
    }
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[' && host[hlen - 1] == ']') {
        host[hlen - 1] = '\0';
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1) {
            snprintf(err, errlen, "%s %s: bad IPv6 address", option, listen);
            return -1;
        }
        *loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) {
        snprintf(host, sizeof host, "127.0.0.1");
    }
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) {
        snprintf(err, errlen,
                 "%s %s: not an IPv4 address (ADDR is one, localhost, or [IPv6]; not a host name)", option,
                 listen);
        return -1;
    }
    *loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    return 0;
}

unsigned uv_mhd_flags(const struct sockaddr_storage *ss)
{
    return MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (ss->ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
}

static void uv_mhd_on_timer(uv_timer_t *t);

/* Let MHD work, then arm the timer for its next timeout. */
void uv_mhd_run(uv_mhd *h)
{
    if (h->quiesced) {
        return;
    }
    MHD_run(h->daemon);
    if (h->after_run != NULL) {
        h->after_run(h->after_arg);
    }
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(h->daemon, &ms) == MHD_YES) {
        uv_timer_start(&h->timer, uv_mhd_on_timer, ms, 0);
    } else {
        uv_timer_stop(&h->timer);
    }
}

static void uv_mhd_on_timer(uv_timer_t *t)
{
    uv_mhd_run(t->data);
}

static void uv_mhd_on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    uv_mhd_run(p->data);
}

int uv_mhd_attach(uv_mhd **out, uv_loop_t *loop, struct MHD_Daemon *daemon, void (*after_run)(void *arg),
                  void *arg)
{
    *out = NULL;
    const union MHD_DaemonInfo *fdi =
        daemon != NULL ? MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    uv_mhd *h = fdi != NULL ? calloc(1, sizeof *h) : NULL;
    if (h == NULL) {
        if (daemon != NULL) {
            MHD_stop_daemon(daemon);
        }
        return -1;
    }
    h->daemon = daemon;
    h->after_run = after_run;
    h->after_arg = arg;
    const union MHD_DaemonInfo *pi = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = pi != NULL ? pi->port : 0;
    uv_poll_init(loop, &h->poll, fdi->epoll_fd);
    uv_timer_init(loop, &h->timer);
    h->poll.data = h;
    h->timer.data = h;
    h->handles = 2;
    uv_poll_start(&h->poll, UV_READABLE, uv_mhd_on_poll);
    *out = h;
    return 0;
}

unsigned uv_mhd_port(const uv_mhd *h)
{
    return h->port;
}

static void uv_mhd_on_closed(uv_handle_t *handle)
{
    uv_mhd *h = handle->data;
    if (--h->handles == 0) {
        MHD_stop_daemon(h->daemon); /* its epoll descriptor is no longer watched */
        void (*done)(void *) = h->done;
        void *arg = h->done_arg;
        free(h);
        if (done != NULL) {
            done(arg);
        }
    }
}

void uv_mhd_quiesce(uv_mhd *h)
{
    if (h->quiesced) {
        return;
    }
    h->quiesced = true;
    uv_poll_stop(&h->poll);
    uv_timer_stop(&h->timer);
    MHD_quiesce_daemon(h->daemon);
}

void uv_mhd_close(uv_mhd *h, void (*done)(void *arg), void *arg)
{
    if (h == NULL) {
        return;
    }
    h->done = done;
    h->done_arg = arg;
    uv_mhd_quiesce(h);
    uv_close((uv_handle_t *)&h->poll, uv_mhd_on_closed);
    uv_close((uv_handle_t *)&h->timer, uv_mhd_on_closed);
}
