/*
 * uv_mhd.h - libmicrohttpd driven by a libuv loop, shared by ocps-engine's
 * API (processing/uws) and the CSC's optional /metrics (csc/app).
 *
 * The daemon runs without threads, in epoll mode (MHD_USE_EPOLL): the loop
 * watches its epoll descriptor and a timer for its timeouts, and calls
 * MHD_run, so no call blocks the loop on a client. No SAL knowledge.
 */
#ifndef UV_MHD_H
#define UV_MHD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <uv.h>

struct MHD_Daemon;

/* ADDR:PORT (IPv4 or "localhost") or [IPv6]:PORT into a socket address,
 * port 0 allowed (a free one); *loopback tells whether the address is a
 * loopback one. Messages name `option` (e.g. "--listen"). 0 or -1. */
int uv_mhd_parse_listen(const char *listen, const char *option, struct sockaddr_storage *ss, bool *loopback,
                        char *err, size_t errlen);

/* MHD_start_daemon's flags for an address: MHD_USE_EPOLL, error log, IPv6
 * when the address is one. */
unsigned uv_mhd_flags(const struct sockaddr_storage *ss);

typedef struct uv_mhd uv_mhd;

/* Drive `daemon` (started with uv_mhd_flags) from `loop`: it is owned
 * from then on, also when this fails (-1: no epoll descriptor or out of
 * memory; the daemon is stopped). after_run (may be NULL) is called with
 * arg after every MHD_run (e.g. to write what the requests it answered
 * logged). Nothing is served before uv_mhd_run. */
int uv_mhd_attach(uv_mhd **out, uv_loop_t *loop, struct MHD_Daemon *daemon, void (*after_run)(void *arg),
                  void *arg);

/* Let the daemon work now, then whenever its descriptor or timeout says
 * so: call it once after uv_mhd_attach, when ready to answer requests. */
void uv_mhd_run(uv_mhd *h);

/* The port listened on (0 if unknown). */
unsigned uv_mhd_port(const uv_mhd *h);

/* Stop accepting and watching: nothing more is served, but the daemon
 * and its connections (e.g. suspended ones, to be resumed) stay until
 * uv_mhd_close. */
void uv_mhd_quiesce(uv_mhd *h);

/* Stop accepting, stop watching, and once the loop handles have closed
 * stop the daemon, free `h` and call done(arg) (done may be NULL). NULL
 * does nothing. */
void uv_mhd_close(uv_mhd *h, void (*done)(void *arg), void *arg);

#endif
