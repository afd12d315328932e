/*
 * redis_fixture.h - a real redis-server (Debian's) for a test: started on a
 * free loopback port with a password and no persistence, in a temporary
 * directory, stopped (or killed) by pid; a synchronous hiredis connection
 * to read back what a test's CSC wrote.
 */
#ifndef REDIS_FIXTURE_H
#define REDIS_FIXTURE_H

#include <hiredis/hiredis.h>

typedef struct redis_fx {
    int pid;           /* redis-server, -1 when not running */
    int port;          /* chosen at the first start, kept across restarts */
    char password[64]; /* random per fixture */
    char *dir;         /* its working directory (and log) */
} redis_fx;

/* Start redis-server on a free 127.0.0.1 port (the same port again after
 * rfx_kill / rfx_stop) and wait until it answers AUTH and PING; 0 on
 * success. */
int rfx_start(redis_fx *r);

/* SIGKILL the server and reap it (the port is free again). */
void rfx_kill(redis_fx *r);

/* Stop the server (SIGTERM, SIGKILL after 5 s) and remove its directory. */
void rfx_stop(redis_fx *r);

/* A new synchronous connection, authenticated; NULL on failure. */
redisContext *rfx_connect(const redis_fx *r);

/* Make the server sleep `seconds` (DEBUG SLEEP) from a background
 * redis-cli; returns that process's pid (reap it with tu_wait_exit). */
int rfx_pause(const redis_fx *r, double seconds);

#endif
