/*
 * engine_http.c - libcurl's multi interface on a libuv loop (see
 * engine__http.h): the socket callback keeps one uv_poll_t per socket, the
 * timer callback one uv_timer_t; both call curl_multi_socket_action and
 * then deliver the ended transfers.
 */
#include "engine__http.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

typedef struct engine_http_req {
    struct engine_http_req *next;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char *resp;
    size_t len;
    bool too_big;
    engine_http_cb cb;
    void *arg; /* the caller's bytes, copied */
    char error[CURL_ERROR_SIZE];
} engine_http_req;

/* One watched socket. */
typedef struct engine_http_sock {
    uv_poll_t poll; /* first: the handle is the struct */
    engine_http *h;
    curl_socket_t fd;
    struct engine_http_sock *next;
    bool closed; /* uv_close called */
} engine_http_sock;

struct engine_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    engine_http_req *reqs;   /* in flight */
    engine_http_sock *socks; /* watched */
    size_t npending;
    int handles; /* open uv handles (the timer, the polls) */
    bool closing;
    void (*closed)(void *arg);
    void *closed_arg;
};

static void engine_http_maybe_free(engine_http *h)
{
    if (h->closing && h->handles == 0) {
        void (*closed)(void *) = h->closed;
        void *arg = h->closed_arg;
        free(h);
        if (closed != NULL) {
            closed(arg);
        }
    }
}

static void engine_http_on_handle_closed(uv_handle_t *handle)
{
    engine_http *h = handle->data;
    if (handle->type == UV_POLL) {
        free(handle); /* the engine_http_sock */
    }
    h->handles--;
    engine_http_maybe_free(h);
}

/* Stop watching a socket (curl closes it). */
static void engine_http_sock_close(engine_http *h, engine_http_sock *s)
{
    if (s->closed) {
        return;
    }
    s->closed = true;
    for (engine_http_sock **p = &h->socks; *p != NULL; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    uv_poll_stop(&s->poll);
    s->poll.data = h;
    uv_close((uv_handle_t *)&s->poll, engine_http_on_handle_closed);
}

static void engine_http_req_free(engine_http_req *q)
{
    curl_slist_free_all(q->headers);
    free(q->arg);
    free(q->body);
    free(q->resp);
    free(q);
}

static void engine_http_unlink(engine_http *h, engine_http_req *q)
{
    for (engine_http_req **p = &h->reqs; *p != NULL; p = &(*p)->next) {
        if (*p == q) {
            *p = q->next;
            h->npending--;
            return;
        }
    }
}

/* Deliver the transfers that ended. */
static void engine_http_check(engine_http *h)
{
    CURLMsg *m;
    int left;
    while (!h->closing && (m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        CURL *easy = m->easy_handle;
        CURLcode result = m->data.result;
        engine_http_req *q = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&q);
        long status = 0;
        if (result == CURLE_OK) {
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        }
        curl_multi_remove_handle(h->multi, easy);
        curl_easy_cleanup(easy);
        engine_http_unlink(h, q);
        const char *why =
            result == CURLE_OK ? NULL : (q->error[0] != '\0' ? q->error : curl_easy_strerror(result));
        if (q->too_big) {
            status = 0;
            why = ENGINE_HTTP_TOO_LARGE;
        }
        q->cb(q->arg, status, q->resp != NULL ? q->resp : "", q->len, why);
        engine_http_req_free(q);
    }
}

static void engine_http_on_poll(uv_poll_t *p, int status, int events)
{
    engine_http_sock *s = (engine_http_sock *)(void *)p;
    engine_http *h = s->h;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        flags |= (events & UV_READABLE) ? CURL_CSELECT_IN : 0;
        flags |= (events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0;
    }
    int running;
    curl_multi_socket_action(h->multi, s->fd, flags, &running);
    engine_http_check(h);
}

static int engine_http_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    engine_http *h = userp;
    engine_http_sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            engine_http_sock_close(h, s);
            curl_multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL || uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->h = h;
        s->fd = fd;
        s->poll.data = s;
        s->next = h->socks;
        h->socks = s;
        h->handles++;
        curl_multi_assign(h->multi, fd, s);
    }
    int events = 0;
    events |= (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ? UV_READABLE : 0;
    events |= (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ? UV_WRITABLE : 0;
    uv_poll_start(&s->poll, events, engine_http_on_poll);
    return 0;
}

static void engine_http_on_timer(uv_timer_t *t)
{
    engine_http *h = t->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    engine_http_check(h);
}

static int engine_http_on_timeout(CURLM *multi, long ms, void *userp)
{
    (void)multi;
    engine_http *h = userp;
    if (ms < 0) {
        uv_timer_stop(&h->timer);
    } else {
        uv_timer_start(&h->timer, engine_http_on_timer, (uint64_t)ms, 0);
    }
    return 0;
}

int engine_http_open(engine_http **out, uv_loop_t *loop)
{
    *out = NULL;
    static bool global_done; /* curl_global_init is idempotent; this only avoids repeating it */
    if (!global_done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        global_done = true;
    }
    engine_http *h = calloc(1, sizeof *h);
    if (h == NULL || (h->multi = curl_multi_init()) == NULL) {
        free(h);
        return -1;
    }
    h->loop = loop;
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    h->handles = 1;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, engine_http_on_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, engine_http_on_timeout);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    *out = h;
    return 0;
}

static size_t engine_http_on_data(char *data, size_t size, size_t n, void *arg)
{
    engine_http_req *q = arg;
    size_t bytes = size * n;
    if (q->len + bytes > ENGINE_HTTP_MAX_BODY) {
        q->too_big = true;
        return 0; /* curl stops the transfer */
    }
    char *p = realloc(q->resp, q->len + bytes + 1);
    if (p == NULL) {
        return 0;
    }
    memcpy(p + q->len, data, bytes);
    q->resp = p;
    q->len += bytes;
    q->resp[q->len] = '\0';
    return bytes;
}

int engine_http_request(engine_http *h, const char *method, const char *url, const char *content_type,
                        const char *body, const char *token, const char *header, double timeout,
                        engine_http_cb cb, const void *arg, size_t arglen)
{
    if (h == NULL || h->closing) {
        return -1;
    }
    engine_http_req *q = calloc(1, sizeof *q);
    if (q == NULL || (q->arg = malloc(arglen > 0 ? arglen : 1)) == NULL ||
        (q->easy = curl_easy_init()) == NULL) {
        if (q != NULL) {
            free(q->arg);
        }
        free(q);
        return -1;
    }
    memcpy(q->arg, arg, arglen);
    q->cb = cb;
    char hdr[4200];
    if (content_type != NULL) {
        snprintf(hdr, sizeof hdr, "Content-Type: %s", content_type);
        q->headers = curl_slist_append(q->headers, hdr);
    }
    if (token != NULL && token[0] != '\0') {
        snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", token);
        q->headers = curl_slist_append(q->headers, hdr);
    }
    if (header != NULL) {
        q->headers = curl_slist_append(q->headers, header);
    }
    q->headers = curl_slist_append(q->headers, "Expect:");
    if (body != NULL && (q->body = strdup(body)) == NULL) {
        curl_easy_cleanup(q->easy);
        engine_http_req_free(q);
        return -1;
    }
    CURL *c = q->easy;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, q->headers);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
    /* a request that ends (timed out) while its name is still being
     * resolved leaves the resolver's thread to finish alone: without this,
     * libcurl joins it on the loop, as long as getaddrinfo takes with a
     * silent DNS server */
    curl_easy_setopt(c, CURLOPT_QUICK_EXIT, 1L);
#endif
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout * 1000));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, engine_http_on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, q);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, q->error);
    curl_easy_setopt(c, CURLOPT_PRIVATE, q);
    if (q->body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(q->body));
    }
    if (curl_multi_add_handle(h->multi, c) != CURLM_OK) {
        curl_easy_cleanup(c);
        engine_http_req_free(q);
        return -1;
    }
    q->next = h->reqs;
    h->reqs = q;
    h->npending++;
    return 0;
}

size_t engine_http_pending(const engine_http *h)
{
    return h != NULL ? h->npending : 0;
}

void engine_http_close(engine_http *h, void (*closed)(void *arg), void *arg)
{
    if (h == NULL) {
        if (closed != NULL) {
            closed(arg);
        }
        return;
    }
    h->closing = true;
    h->closed = closed;
    h->closed_arg = arg;
    while (h->reqs != NULL) {
        engine_http_req *q = h->reqs;
        h->reqs = q->next;
        curl_multi_remove_handle(h->multi, q->easy); /* may close sockets (CURL_POLL_REMOVE) */
        curl_easy_cleanup(q->easy);
        engine_http_req_free(q);
    }
    h->npending = 0;
    while (h->socks != NULL) { /* before curl closes the descriptors */
        engine_http_sock_close(h, h->socks);
    }
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, engine_http_on_handle_closed);
}
