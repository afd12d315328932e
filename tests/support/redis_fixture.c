/* redis_fixture.c - see redis_fixture.h. */
#include "redis_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_util.h"

redisContext *rfx_connect(const redis_fx *r)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (c == NULL || c->err != 0) {
        redisFree(c);
        return NULL;
    }
    redisReply *rep = redisCommand(c, "AUTH %s", r->password);
    bool ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
    freeReplyObject(rep);
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

int rfx_start(redis_fx *r)
{
    if (r->dir == NULL) {
        r->dir = tu_make_temp_dir();
        r->port = (int)tu_free_port();
        unsigned seed = (unsigned)getpid() ^ (unsigned)(tu_now() * 1e6);
        snprintf(r->password, sizeof r->password, "pw-%08x-\"quoted\"", (unsigned)rand_r(&seed));
    }
    if (r->dir == NULL || r->port <= 0) {
        return -1;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    char log[1024];
    snprintf(log, sizeof log, "%s/redis.log", r->dir);
    char *argv[] = {"redis-server",
                    "--port",
                    port,
                    "--bind",
                    "127.0.0.1",
                    "--requirepass",
                    r->password,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    r->dir,
                    "--enable-debug-command",
                    "yes",
                    "--daemonize",
                    "no",
                    NULL};
    r->pid = tu_spawn(argv, log);
    if (r->pid <= 0) {
        return -1;
    }
    double end = tu_now() + 15;
    while (tu_now() < end) {
        redisContext *c = rfx_connect(r);
        if (c != NULL) {
            redisReply *rep = redisCommand(c, "PING");
            bool ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
            freeReplyObject(rep);
            redisFree(c);
            if (ok) {
                return 0;
            }
        }
        if (tu_wait_exit(r->pid, 0.05) >= 0) {
            fprintf(stderr, "redis-server exited at start (see %s)\n", log);
            r->pid = -1;
            return -1;
        }
    }
    return -1;
}

void rfx_kill(redis_fx *r)
{
    if (r->pid > 0) {
        tu_kill(r->pid);
        r->pid = -1;
    }
}

void rfx_stop(redis_fx *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        if (tu_wait_exit(r->pid, 5) < 0) {
            tu_kill(r->pid);
        }
        r->pid = -1;
    }
    if (r->dir != NULL) {
        tu_remove_tree(r->dir);
        free(r->dir);
        r->dir = NULL;
    }
}

int rfx_pause(const redis_fx *r, double seconds)
{
    char port[16];
    char secs[32];
    snprintf(port, sizeof port, "%d", r->port);
    snprintf(secs, sizeof secs, "%g", seconds);
    char *argv[] = {"redis-cli",         "-h",    "127.0.0.1", "-p", port, "--no-auth-warning", "-a",
                    (char *)r->password, "DEBUG", "SLEEP",     secs, NULL};
    return tu_spawn(argv, NULL);
}
