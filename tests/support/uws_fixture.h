/*
 * uws_fixture.h - a real ocps-engine process in temporary directories,
 * and requests to it with curl (an independent HTTP client).
 */
#ifndef UWS_FIXTURE_H
#define UWS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct uws_fx {
    char *root; /* temporary directory (state/, work/, engine.log, port) */
    char *state_dir;
    char *work_root;
    char base[128]; /* http://127.0.0.1:PORT */
    char base_path[64];
    char token_file[512]; /* "" for none */
    int pid;
    unsigned port;
} uws_fx;

/* A reply as curl got it. */
typedef struct uws_resp {
    int status; /* HTTP status, 0 if none */
    char *body; /* NUL-terminated (malloc'd) */
    size_t len;
    char *headers; /* raw header block (malloc'd) */
    json_t *json;  /* body parsed (any JSON value), or NULL */
} uws_resp;

/* Make the directories (root NULL: a new temporary one) and start
 * ocps-engine on a free loopback port with `extra` options (NULL-terminated,
 * may be NULL); 0 once it listens. $OCPS_UWS_WRAP, if set, is a program
 * that runs it (its first argument is ocps-engine), e.g. valgrind. */
int uws_fx_start(uws_fx *fx, const char *root, const char *const *extra);

/* Start it again on the same directories (after uws_fx_kill). */
int uws_fx_restart(uws_fx *fx, const char *const *extra);

/* SIGKILL the engine (jobs go on). */
void uws_fx_kill(uws_fx *fx);

/* For a cmocka teardown: SIGKILL the engine if it still runs (a failed
 * assertion left the test before its uws_fx_stop). Returns 0. */
int uws_fx_kill_if_running(uws_fx *fx);

/* Stop it (SIGTERM, then SIGKILL) and remove the directories. */
void uws_fx_stop(uws_fx *fx);

/* curl -X method base+base_path+path, with `body` (NULL: none) of
 * content type `ctype` (NULL: none) and extra curl arguments (NULL-
 * terminated, may be NULL). 0 if curl ran. */
int uws_fx_request(const uws_fx *fx, const char *method, const char *path, const char *ctype,
                   const char *body, size_t len, const char *const *extra, uws_resp *out);

/* PUT /job with a JSON body; the job id (static-free: copied to id) on 200. */
int uws_fx_submit(const uws_fx *fx, const char *json_body, char id[33]);

/* Poll GET /job/{id} until its phase is `phase` (or any final phase if
 * phase is NULL) within timeout seconds; the last job object (owned), or NULL. */
json_t *uws_fx_wait(const uws_fx *fx, const char *id, const char *phase, double timeout);

/* Number of jobs listed by GET /job, -1 on failure. */
int uws_fx_count(const uws_fx *fx);

void uws_resp_clear(uws_resp *r);

/* The text of `seq 1 n` (malloc'd; NULL if out of memory), its length in
 * *len: what a job writing a large result writes. */
char *uws_seq_text(long n, size_t *len);

/* A GET on a socket of its own, read as the test decides (a client that
 * reads slowly, or leaves in the middle of a reply). No token is sent. */
typedef struct uws_raw {
    int fd;     /* -1 once closed */
    char *data; /* what came so far: status line, headers, body */
    size_t len;
    size_t cap;
    bool eof; /* the server closed the connection */
} uws_raw;

/* Connect to fx, with a receive buffer of `rcvbuf` bytes (0: the
 * system's; small, the server cannot send far ahead of what is read),
 * and send GET base_path+path with Connection: close. 0, or -1. */
int uws_raw_get(uws_raw *c, const uws_fx *fx, const char *path, int rcvbuf);

/* Read until `upto` bytes (headers and body) have come, or the server
 * closes, for at most `timeout` s. 0 when either happened, -1 on a
 * timeout or an error. */
int uws_raw_read(uws_raw *c, size_t upto, double timeout);

/* The reply read so far, as uws_fx_request gives it (body and headers
 * copied; json not parsed). 0, or -1 without a whole header block. */
int uws_raw_reply(const uws_raw *c, uws_resp *out);

/* Close the socket (the client leaves) and free what was read. */
void uws_raw_close(uws_raw *c);

#endif
