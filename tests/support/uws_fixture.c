/*
 * uws_fixture.c - ocps-engine started for real, spoken to with curl
 * (see uws_fixture.h).
 */
#define _XOPEN_SOURCE 700
#include "uws_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

#ifndef OCPS_ENGINE
#error "OCPS_ENGINE (the path of ocps-engine) must be defined"
#endif

static int uws_fx_launch(uws_fx *fx, const char *const *extra)
{
    char port_file[1100];
    char log[1100];
    snprintf(port_file, sizeof port_file, "%s/port", fx->root);
    snprintf(log, sizeof log, "%s/engine.log", fx->root);
    unlink(port_file);
    /* OCPS_UWS_WRAP: a program that runs ocps-engine (e.g. under valgrind) */
    const char *wrap = getenv("OCPS_UWS_WRAP");
    const char *argv[64];
    size_t n = 0;
    if (wrap != NULL && wrap[0] != '\0') {
        argv[n++] = wrap;
    }
    const char *base[] = {OCPS_ENGINE,   "--listen",    "127.0.0.1:0", "--state-dir", fx->state_dir,
                          "--work-root", fx->work_root, "--port-file", port_file};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
        argv[n++] = base[i];
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 62; i++) {
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    fx->pid = tu_spawn((char *const *)argv, log);
    if (fx->pid < 0) {
        return -1;
    }
    double until = tu_now() + 20;
    while (tu_now() < until) {
        char *text = tu_read_file(port_file, NULL);
        if (text != NULL) {
            fx->port = (unsigned)strtoul(text, NULL, 10);
            free(text);
            snprintf(fx->base, sizeof fx->base, "http://127.0.0.1:%u", fx->port);
            return 0;
        }
        if (tu_wait_exit(fx->pid, 0.05) >= 0) {
            fx->pid = -1;
            return -1;
        }
    }
    uws_fx_kill(fx); /* not listening in time: left running, it would load the machine */
    return -1;
}

int uws_fx_start(uws_fx *fx, const char *root, const char *const *extra)
{
    memset(fx, 0, sizeof *fx);
    snprintf(fx->base_path, sizeof fx->base_path, "/api/v1");
    fx->root = root != NULL ? strdup(root) : tu_make_temp_dir();
    if (fx->root == NULL) {
        return -1;
    }
    fx->state_dir = tu_path_join(fx->root, "state");
    fx->work_root = tu_path_join(fx->root, "work");
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        if (strcmp(extra[i], "--base-path") == 0 && extra[i + 1] != NULL) {
            snprintf(fx->base_path, sizeof fx->base_path, "%s", extra[i + 1]);
        }
    }
    return uws_fx_launch(fx, extra);
}

int uws_fx_restart(uws_fx *fx, const char *const *extra)
{
    return uws_fx_launch(fx, extra);
}

void uws_fx_kill(uws_fx *fx)
{
    if (fx->pid > 0) {
        tu_kill(fx->pid);
        fx->pid = -1;
    }
}

int uws_fx_kill_if_running(uws_fx *fx)
{
    if (fx->pid > 0) {
        uws_fx_kill(fx);
    }
    return 0;
}

void uws_fx_stop(uws_fx *fx)
{
    if (fx->pid > 0) {
        kill(fx->pid, SIGTERM);
        if (tu_wait_exit(fx->pid, 5) < 0) {
            tu_kill(fx->pid);
        }
        fx->pid = -1;
    }
    if (fx->root != NULL) {
        tu_remove_tree(fx->root);
    }
    free(fx->root);
    free(fx->state_dir);
    free(fx->work_root);
    fx->root = fx->state_dir = fx->work_root = NULL;
}

char *uws_seq_text(long n, size_t *len)
{
    size_t cap = (size_t)n * 9 + 1;
    char *text = malloc(cap);
    size_t k = 0;
    for (long i = 1; text != NULL && i <= n; i++) {
        k += (size_t)snprintf(text + k, cap - k, "%ld\n", i);
    }
    *len = k;
    return text;
}

void uws_resp_clear(uws_resp *r)
{
    free(r->body);
    free(r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

int uws_fx_request(const uws_fx *fx, const char *method, const char *path, const char *ctype,
                   const char *body, size_t len, const char *const *extra, uws_resp *out)
{
    memset(out, 0, sizeof *out);
    char url[4096];
    char body_file[1100];
    char out_file[1100];
    char hdr_file[1100];
    char ct[256];
    char data[1200];
    static int seq;
    int k = ++seq;
    snprintf(url, sizeof url, "%s%s%s", fx->base, fx->base_path, path);
    snprintf(body_file, sizeof body_file, "%s/req-%d-%d", fx->root, (int)getpid(), k);
    snprintf(out_file, sizeof out_file, "%s/resp-%d-%d", fx->root, (int)getpid(), k);
    snprintf(hdr_file, sizeof hdr_file, "%s/hdr-%d-%d", fx->root, (int)getpid(), k);
    const char *argv[64] = {"curl", "-s",           "-g", "-o",   out_file,     "-D", hdr_file,
                            "-w",   "%{http_code}", "-X", method, "--max-time", "20"};
    size_t n = 13;
    if (body != NULL) {
        if (tu_write_file(body_file, body, len) != 0) {
            return -1;
        }
        snprintf(data, sizeof data, "@%s", body_file);
        argv[n++] = "--data-binary";
        argv[n++] = data;
    }
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype != NULL ? ctype : "");
    if (ctype != NULL || body != NULL) {
        argv[n++] = "-H";
        argv[n++] = ctype != NULL ? ct : "Content-Type:"; /* curl would add a form type */
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 60; i++) {
        argv[n++] = extra[i];
    }
    argv[n++] = url;
    argv[n] = NULL;
    char *code = NULL;
    int rc = tu_run((char *const *)argv, &code);
    out->status = code != NULL ? atoi(code) : 0;
    free(code);
    out->body = tu_read_file(out_file, &out->len);
    out->headers = tu_read_file(hdr_file, NULL);
    if (out->body == NULL) {
        out->body = strdup("");
        out->len = 0;
    }
    out->json = json_loadb(out->body, out->len, JSON_DECODE_ANY, NULL);
    unlink(body_file);
    unlink(out_file);
    unlink(hdr_file);
    return rc == 0 || rc == 28 || rc == 52 || rc == 55 || rc == 56 ? 0
                                                                   : -1; /* ran; the server may have closed */
}

int uws_fx_submit(const uws_fx *fx, const char *json_body, char id[33])
{
    uws_resp r;
    id[0] = '\0';
    if (uws_fx_request(fx, "PUT", "/job", "application/json", json_body, strlen(json_body), NULL, &r) != 0 ||
        r.status != 200) {
        fprintf(stderr, "submit: %d %s\n", r.status, r.body != NULL ? r.body : "");
        uws_resp_clear(&r);
        return -1;
    }
    const char *s = json_string_value(json_object_get(r.json, "jobId"));
    snprintf(id, 33, "%s", s != NULL ? s : "");
    uws_resp_clear(&r);
    return id[0] != '\0' ? 0 : -1;
}

static bool uws_final(const char *phase)
{
    return strcmp(phase, "completed") == 0 || strcmp(phase, "error") == 0 || strcmp(phase, "aborted") == 0 ||
           strcmp(phase, "unknown") == 0;
}

json_t *uws_fx_wait(const uws_fx *fx, const char *id, const char *phase, double timeout)
{
    char path[128];
    snprintf(path, sizeof path, "/job/%s", id);
    double until = tu_now() + timeout;
    json_t *last = NULL;
    do {
        uws_resp r;
        if (uws_fx_request(fx, "GET", path, NULL, NULL, 0, NULL, &r) == 0 && r.status == 200) {
            json_decref(last);
            last = json_incref(r.json);
            const char *p = json_string_value(json_object_get(last, "phase"));
            if (p != NULL && (phase != NULL ? strcmp(p, phase) == 0 : uws_final(p))) {
                uws_resp_clear(&r);
                return last;
            }
        }
        uws_resp_clear(&r);
        usleep(100 * 1000);
    } while (tu_now() < until);
    return last;
}

int uws_fx_count(const uws_fx *fx)
{
    uws_resp r;
    int n = -1;
    if (uws_fx_request(fx, "GET", "/job", NULL, NULL, 0, NULL, &r) == 0 && r.status == 200 &&
        json_is_array(r.json)) {
        n = (int)json_array_size(r.json);
    }
    uws_resp_clear(&r);
    return n;
}

int uws_raw_get(uws_raw *c, const uws_fx *fx, const char *path, int rcvbuf)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        return -1;
    }
    if (rcvbuf > 0) { /* before connect: the window offered follows it */
        (void)setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                     fx->base_path, path);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0 || n <= 0 || (size_t)n >= sizeof req ||
        write(c->fd, req, (size_t)n) != n) {
        uws_raw_close(c);
        return -1;
    }
    return 0;
}

int uws_raw_read(uws_raw *c, size_t upto, double timeout)
{
    double until = tu_now() + timeout;
    while (c->len < upto && !c->eof) {
        if (c->cap - c->len < 65536) {
            size_t cap = c->cap > 0 ? 2 * c->cap : 131072;
            char *p = realloc(c->data, cap);
            if (p == NULL) {
                return -1;
            }
            c->data = p;
            c->cap = cap;
        }
        double left = until - tu_now();
        struct pollfd p = {c->fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0) {
            return -1;
        }
        size_t room = c->cap - c->len;
        ssize_t got = read(c->fd, c->data + c->len, upto - c->len < room ? upto - c->len : room);
        if (got < 0) {
            return -1;
        }
        c->eof = got == 0;
        c->len += (size_t)got;
    }
    return 0;
}

int uws_raw_reply(const uws_raw *c, uws_resp *out)
{
    memset(out, 0, sizeof *out);
    const char *end = NULL;
    for (size_t i = 0; i + 4 <= c->len && end == NULL; i++) {
        if (memcmp(c->data + i, "\r\n\r\n", 4) == 0) {
            end = c->data + i + 4;
        }
    }
    if (end == NULL || sscanf(c->data, "HTTP/1.%*d %d", &out->status) != 1) {
        return -1;
    }
    size_t hlen = (size_t)(end - c->data);
    out->len = c->len - hlen;
    out->headers = malloc(hlen + 1);
    out->body = malloc(out->len + 1);
    if (out->headers == NULL || out->body == NULL) {
        uws_resp_clear(out);
        return -1;
    }
    memcpy(out->headers, c->data, hlen);
    out->headers[hlen] = '\0';
    memcpy(out->body, end, out->len);
    out->body[out->len] = '\0';
    return 0;
}

void uws_raw_close(uws_raw *c)
{
    if (c->fd >= 0) {
        close(c->fd);
    }
    free(c->data);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}
