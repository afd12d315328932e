/*
 * uws_service.h - the HTTP side of ocps-engine: the uws-api-server API
 * (lsst-dm/uws-api-server, see docs/uws.md) served by libmicrohttpd on a
 * libuv loop (its epoll descriptor is watched by the loop: one thread, no
 * call blocks on a client), backed by the job engine.
 *
 * All routes are dispatched in one place (uws_service.c: uws_routes, and
 * uws_pages for GET /metrics, /status and /status/job/{id}, at the root
 * and under the base path; docs/uws.md).
 */
#ifndef UWS_SERVICE_H
#define UWS_SERVICE_H

#include <stddef.h>

#include <uv.h>

#include "ocps/engine.h"

typedef struct uws_service_options {
    const char *listen;         /* "ADDR:PORT" (IPv4, or [IPv6]:PORT); port 0 picks a free one */
    const char *base_path;      /* e.g. "/api/v1" ("" allowed) */
    const char *token;          /* bearer token required on every request but OPTIONS; NULL: none
                                 * (then only a loopback address is accepted, unless:) */
    bool allow_unauthenticated; /* no token on a non-loopback address either (a trusted network:
                                 * clients of uws-api-server send none); warned at open */
    const char *work_root;      /* the engine's work_root (job directories <work_root>/<id>) */
    size_t max_body;            /* bytes of a request body (0: 1 MiB) */
    unsigned max_connections;   /* 0: 256; one client address at most a quarter */
} uws_service_options;

typedef struct uws_service uws_service;

/* Check what uws_service_open would refuse in o before anything is
 * started (the listen address, a token for a non-loopback one); 0, or -1
 * with a message. */
int uws_service_check_options(const uws_service_options *o, char *err, size_t errlen);

/* Start serving on `loop` with engine `e` (which the service does not
 * own). Jobs whose deletion was asked before a restart are aborted again
 * and deleted once ended. 0, or -1 with a message. */
int uws_service_open(uws_service **out, uv_loop_t *loop, engine *e, const uws_service_options *o, char *err,
                     size_t errlen);

/* The port listened on. */
unsigned uws_service_port(const uws_service *s);

/* The engine's phase change callback must call this (an ended job is
 * marked published, or deleted if its deletion was asked). */
void uws_service_job_changed(uws_service *s, const engine_job *job);

/* Take no new job (a drain before the service stops): from now on PUT
 * /job is answered 503 with Retry-After and creates nothing (the PUTs of
 * this loop turn are still committed); every other request is answered as
 * before, /healthz too (200, its body saying it drains). */
void uws_service_drain(uws_service *s);

/* Stop listening and free the service (its loop handles close
 * asynchronously; the loop must run until they have). */
void uws_service_close(uws_service *s);

#endif
