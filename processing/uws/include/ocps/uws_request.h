/*
 * uws_request.h - parsing of the requests of the uws-api-server API
 * (lsst-dm/uws-api-server): routes under a base path, the body of
 * `PUT /job` (JSON or a form), the `phase` filter of `GET /job` and the
 * UWS 1.1 `PHASE=ABORT` form. Pure functions over bytes: no I/O, no
 * engine, no HTTP library (so they can be fuzzed on their own).
 *
 * Errors are returned as an HTTP status (400 or 404) with a message for
 * the client in err.
 */
#ifndef UWS_REQUEST_H
#define UWS_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Bounds of a submission (more is a 400). */
#define UWS_MAX_ARGS 4096    /* argv entries, environment entries */
#define UWS_MAX_STRING 65536 /* bytes of one string (command, argv entry, value) */
#define UWS_MAX_ID 64        /* bytes of a job id in a path */
/* PUT /job's header (an ocps-engine extension; the reference ignores it):
 * the job's id, chosen by the client, so that sending the PUT again (its
 * answer lost) finds the job instead of making a second one. */
#define UWS_IDEMPOTENCY_KEY "Idempotency-Key"
#define UWS_RUN_ID_MAX 63       /* bytes of run_id (a Kubernetes label value) */
#define UWS_MAX_FORM_FIELDS 256 /* fields of a form body */

/* What a path names. */
typedef enum uws_route_kind {
    UWS_ROUTE_JOBS,     /* {base}/job  (and {base}/job/) */
    UWS_ROUTE_JOB,      /* {base}/job/{id} */
    UWS_ROUTE_PROPERTY, /* {base}/job/{id}/{property} */
    UWS_ROUTE_RESULT    /* {base}/job/result/{id}/{index} */
} uws_route_kind;

typedef struct uws_route {
    uws_route_kind kind;
    char id[UWS_MAX_ID + 1]; /* as in the path (not checked against the job id syntax) */
    char property[16];       /* "phase", "results", "parameters", "metrics" or "log" (UWS_ROUTE_PROPERTY) */
    long index;              /* UWS_ROUTE_RESULT: < 0 counts from the end */
    bool under_base;         /* a status page asked for under the base path (not at the root) */
} uws_route;

/* Match `path` (the URL path, without query) under `base_path` ("" or
 * "/api/v1"): 0 and *out, 404 when it names nothing (or a result index
 * that is not an integer), 400 for a known route with a bad part (an
 * unknown property, an empty result index), with the reference's message
 * (its 400 bodies are JSON strings). */
int uws_route_parse(const char *base_path, const char *path, uws_route *out, char *err, size_t errlen);

/* A parsed `PUT /job` request. */
typedef struct uws_submit {
    json_t *argv;      /* array of strings to run: ["/bin/bash", "-c", command] or the argv extension */
    json_t *then_argv; /* NULL, or the extension then_argv: a second step, run once argv exits 0 */
    bool shell;        /* from `command` */
    char run_id[UWS_RUN_ID_MAX + 1]; /* "" when not given */
    json_t *environment;             /* array of {"name", "value"} strings */
    char *url;                       /* NULL or the git repository to clone */
    char *commit_ref;                /* NULL or the reference to check out */
} uws_submit;

/* Parse a `PUT /job` body. A JSON body (content type application/json or
 * application/javascript, parameters allowed) must be an object with
 * `command` (string, run with bash -c) or `argv` (extension: non-empty
 * array of strings, run without a shell), and optionally `then_argv`
 * (extension, only with `argv`: checked as `argv` is; a second step run
 * without a shell once argv has exited 0), `run_id`,
 * `environment` ([{name, value}]: a value that is a number, a boolean or
 * null becomes the text Python's str() gives, an absent one ""),
 * `replicas` (1), `url`, `commit_ref`; an empty run_id is none. Any other
 * body is an application/x-www-form-urlencoded form with the scalar
 * fields (each decoded value valid UTF-8), a field it lacks taken from `query` (the request's query as a
 * form; NULL: none). 0 and *out (release with uws_submit_clear), or 400
 * with a message (nothing allocated). */
int uws_submit_parse(const char *content_type, const char *body, size_t len, const char *query,
                     uws_submit *out, char *err, size_t errlen);

/* Release what uws_submit_parse allocated (idempotent). */
void uws_submit_clear(uws_submit *s);

/* Is `run_id` acceptable as the reference accepts it (1-63 bytes of
 * [-._a-zA-Z0-9], the first alphanumeric)? */
bool uws_run_id_valid(const char *run_id);

/* The nine UWS phases the reference accepts as a filter, lower case. */
extern const char *const uws_phase_names[9];

/* The `phase` query value of GET /job: 0 and *phase (NULL: no filter) or
 * 400 with the reference's message. */
int uws_phase_filter_parse(const char *value, const char **phase, char *err, size_t errlen);

/* The `run_id` query value of GET /job (an ocps-engine extension: only
 * the jobs with that runId; the reference ignores it and lists all): 0 and
 * *run_id (NULL: no filter, also for an empty value), or 400 with a message for one that no job
 * can have (not uws_run_id_valid). */
int uws_run_id_filter_parse(const char *value, const char **run_id, char *err, size_t errlen);

/* One field of an application/x-www-form-urlencoded body (or query),
 * the last one when it is repeated: 1 and the decoded value in out, 0
 * absent, -1 malformed or too long. */
int uws_form_get(const char *form, size_t len, const char *name, char *out, size_t outlen);

/* Is `s` (NUL-terminated) valid UTF-8, as a JSON string must be? */
bool uws_utf8_valid(const char *s);

/* Percent-decode `s` in place (a URL path or query value) and return its
 * new length; "%00" and malformed escapes are kept as they are, so that a
 * decoded string never holds a NUL. */
size_t uws_unescape(char *s);

/* The body of `POST /job/{id}/phase` (UWS 1.1): 0 if it asks PHASE=ABORT,
 * 400 with a message otherwise (PHASE=RUN included: jobs run at once). */
int uws_phase_action_parse(const char *body, size_t len, char *err, size_t errlen);

#endif
