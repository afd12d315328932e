/*
 * engine__http.h - a small asynchronous HTTP client for the engine's UWS
 * executor: libcurl's multi interface driven by the engine's libuv loop
 * (its sockets watched by uv_poll, its timeouts by a uv_timer), so that no
 * request ever blocks the loop. Not a public header.
 */
#ifndef ENGINE__HTTP_H
#define ENGINE__HTTP_H

#include <stddef.h>

#include <uv.h>

typedef struct engine_http engine_http;

/* A request's end: HTTP status (0 if none: curl_error says why) and the
 * body (NUL-terminated, valid during the call). An answer larger than
 * ENGINE_HTTP_MAX_BODY ends with status 0 and ENGINE_HTTP_TOO_LARGE. */
#define ENGINE_HTTP_MAX_BODY (16 * 1024 * 1024) /* as a metrics.json the CSC reads */
#define ENGINE_HTTP_TOO_LARGE "answer too large"
typedef void (*engine_http_cb)(void *arg, long status, const char *body, size_t len, const char *curl_error);

/* The client on `loop`; 0 or -1 (out of memory, curl). */
int engine_http_open(engine_http **out, uv_loop_t *loop);

/* Start a request: method, url, optional body with its content type,
 * optional bearer token, optional header line ("Name: value"), a total
 * timeout in seconds. cb runs on the loop once it ends (never from inside
 * this call) with a copy of the arglen bytes at arg (kept by the client,
 * freed with the request). 0 or -1. */
int engine_http_request(engine_http *h, const char *method, const char *url, const char *content_type,
                        const char *body, const char *token, const char *header, double timeout,
                        engine_http_cb cb, const void *arg, size_t arglen);

/* Requests in flight. */
size_t engine_http_pending(const engine_http *h);

/* Drop every request (their callbacks never run) and free the client once
 * its loop handles have closed; then closed(arg) runs. */
void engine_http_close(engine_http *h, void (*closed)(void *arg), void *arg);

#endif
