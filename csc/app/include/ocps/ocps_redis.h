/*
 * ocps_redis.h - a Redis client on a libuv loop that never blocks it:
 * hiredis's asynchronous API with its libuv adapter, the host name
 * resolved on libuv's thread pool, AUTH and PING on every connection, a
 * time limit on the connection and on every command, every address of
 * the host tried in turn, TCP keepalive and a PING every
 * min(command_timeout, 5 s) while up (a silent server is dropped), and
 * reconnection with exponential backoff after the connection is lost.
 *
 * Everything runs on the loop given to ocps_redis_open; no call blocks.
 */
#ifndef OCPS_REDIS_H
#define OCPS_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

typedef struct ocps_redis ocps_redis;

/* Where and how to connect. Strings are copied. */
typedef struct ocps_redis_options {
    const char *host;       /* name or address */
    int port;               /* 1..65535 */
    const char *password;   /* AUTH <password>; NULL or "" sends no AUTH */
    double connect_timeout; /* seconds to resolve, connect, AUTH and PING (default 5) */
    double command_timeout; /* seconds a command may wait for its reply (default 10) */
    double backoff_min;     /* first reconnection delay, seconds (default 0.2) */
    double backoff_max;     /* longest reconnection delay, seconds (default 5) */
} ocps_redis_options;

/* Connection news: `up` true once a connection has answered AUTH and
 * PING; false when an attempt failed or a connection was lost, with the
 * reason (e.g. "Connection refused"). Called on every attempt. */
typedef void (*ocps_redis_state_cb)(void *arg, bool up, const char *reason);

/* A reply as the callback sees it (valid during the callback only). */
typedef enum ocps_redis_kind {
    OCPS_REDIS_INTEGER,
    OCPS_REDIS_STRING, /* bulk or status */
    OCPS_REDIS_NIL,
    OCPS_REDIS_ERROR, /* the server's error reply, in str */
    OCPS_REDIS_OTHER  /* arrays and the like */
} ocps_redis_kind;

typedef struct ocps_redis_reply {
    ocps_redis_kind kind;
    long long integer;
    const char *str;
    size_t len;
} ocps_redis_reply;

/* End of a command: `reply` NULL when no reply came (connection lost or
 * closed, time limit), with the reason in `failure`. Called exactly once. */
typedef void (*ocps_redis_reply_cb)(void *arg, const ocps_redis_reply *reply, const char *failure);

/* Create the client and start connecting; state_cb reports each attempt.
 * Fails (with a message) only on bad options or no memory. */
int ocps_redis_open(ocps_redis **out, uv_loop_t *loop, const ocps_redis_options *options,
                    ocps_redis_state_cb state_cb, void *arg, char *err, size_t errlen);

/* Is a connection up (AUTH and PING answered, not lost since)? */
bool ocps_redis_up(const ocps_redis *r);

/* Why the connection is down ("" when it is up). */
const char *ocps_redis_down_reason(const ocps_redis *r);

/* "host:port", for messages. */
const char *ocps_redis_address(const ocps_redis *r);

/* Send a command (argv of argc binary-safe words, copied); cb runs once
 * with its reply. Fails at once (returns -1 with a message, cb not called)
 * when the connection is down. Commands are sent in call order. */
int ocps_redis_command(ocps_redis *r, int argc, const char *const *argv, const size_t *argvlen,
                       ocps_redis_reply_cb cb, void *arg, char *err, size_t errlen);

/* Called once a closed client has been freed. */
typedef void (*ocps_redis_close_cb)(void *arg);

/* Close: commands still waiting end with failure "the Redis client is
 * closing", no state_cb runs any more, and once every handle has closed
 * the client is freed and cb(arg) runs (cb may be NULL). */
void ocps_redis_close(ocps_redis *r, ocps_redis_close_cb cb, void *arg);

#endif
