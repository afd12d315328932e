/*
 * ocps-schema-registry - a minimal Confluent-compatible schema registry for
 * tests (none is packaged for Debian), over libmicrohttpd and jansson.
 *
 *   ocps-schema-registry [--port N] [--fetch-delay S] [--post-delay S]
 *
 * --port: 0, the default, picks a free port. --fetch-delay: every
 * GET /schemas/ids/{id} is answered after S seconds (a slow registry), the
 * other requests at once. --post-delay: every POST (a schema registered
 * or looked up) is answered after S seconds.
 *
 * Listens on 127.0.0.1, writes one line "LISTENING http://127.0.0.1:<port>"
 * to stdout and serves until SIGTERM or SIGINT. State is in memory only.
 *
 *   POST   /subjects/{s}/versions      {"schema": str, "schemaType"?} -> {"id"}
 *   POST   /subjects/{s}               lookup -> {"subject","id","version","schema"}
 *   GET    /subjects                   -> [subject...]
 *   GET    /subjects/{s}/versions      -> [version...]
 *   GET    /subjects/{s}/versions/{n}  n = latest, -1 or 1.. -> {"subject","version","id","schema"}
 *   DELETE /subjects/{s}               -> [deleted version...]
 *   GET    /schemas/ids/{id}           -> {"schema"}
 *   GET    /config                     -> {"compatibilityLevel"}
 *   PUT    /config                     {"compatibility"} -> {"compatibility"}
 *
 * Ids are global: one per distinct (schema string, schema type). Schema
 * strings are stored and returned exactly as received (never re-serialized),
 * so identity is byte equality, not Confluent's parsed-schema equality.
 * Path segments are percent-decoded after splitting, so "%2F" may appear in
 * a subject. Errors are {"error_code", "message"} as Confluent sends them.
 *
 * Each connection has its own thread (so that a delayed answer holds up no
 * other request); the store is behind one lock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#define CONTENT_TYPE "application/vnd.schemaregistry.v1+json"
#define MAX_BODY (1024 * 1024)
#define MAX_SEGMENTS 6

typedef struct schema {
    char *text;
    char *type; /* "AVRO", "JSON" or "PROTOBUF" */
} schema;

typedef struct subject {
    char *name;
    int *ids; /* schema id of version i + 1 */
    int nversions;
} subject;

typedef struct registry {
    pthread_mutex_t lock;
    double fetch_delay; /* seconds before answering GET /schemas/ids/{id} */
    double post_delay;  /* seconds before answering a POST */
    schema *schemas;    /* id = index + 1 */
    int nschemas;
    subject *subjects; /* registration order */
    int nsubjects;
    char compat[32];
} registry;

/* Per-connection state: the request body gathered so far. */
typedef struct request {
    char *body;
    size_t len;
    int too_large;
} request;

typedef struct reply {
    unsigned status;
    json_t *body;
} reply;

/* The decoded path. */
typedef struct route {
    char *seg[MAX_SEGMENTS];
    int n;
} route;

static const char *const compat_levels[] = {
    "NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE",
};

/* ---- replies ---- */

static reply ok(json_t *body)
{
    return (reply){200, body};
}

static reply error_reply(unsigned status, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return (reply){status, json_pack("{s:i,s:s}", "error_code", code, "message", msg)};
}

static reply not_found_route(void)
{
    return error_reply(404, 404, "HTTP 404 Not Found");
}

static reply subject_not_found(const char *name)
{
    return error_reply(404, 40401, "Subject '%.200s' not found.", name);
}

static reply schema_not_found(void)
{
    return error_reply(404, 40403, "Schema not found");
}

/* ---- the store ---- */

static subject *find_subject(registry *r, const char *name)
{
    for (int i = 0; i < r->nsubjects; i++) {
        if (strcmp(r->subjects[i].name, name) == 0) {
            return &r->subjects[i];
        }
    }
    return NULL;
}

static int find_schema(const registry *r, const char *text, const char *type)
{
    for (int i = 0; i < r->nschemas; i++) {
        if (strcmp(r->schemas[i].text, text) == 0 && strcmp(r->schemas[i].type, type) == 0) {
            return i + 1;
        }
    }
    return 0;
}

/* Returns the id (existing or new), or 0 when out of memory. */
static int intern_schema(registry *r, const char *text, const char *type)
{
    int id = find_schema(r, text, type);
    if (id != 0) {
        return id;
    }
    schema *more = realloc(r->schemas, (size_t)(r->nschemas + 1) * sizeof *more);
    if (more == NULL) {
        return 0;
    }
    r->schemas = more;
    schema *s = &r->schemas[r->nschemas];
    s->text = strdup(text);
    s->type = strdup(type);
    if (s->text == NULL || s->type == NULL) {
        free(s->text);
        free(s->type);
        return 0;
    }
    return ++r->nschemas;
}

static subject *add_subject(registry *r, const char *name)
{
    subject *more = realloc(r->subjects, (size_t)(r->nsubjects + 1) * sizeof *more);
    if (more == NULL) {
        return NULL;
    }
    r->subjects = more;
    subject *s = &r->subjects[r->nsubjects];
    *s = (subject){.name = strdup(name)};
    if (s->name == NULL) {
        return NULL;
    }
    r->nsubjects++;
    return s;
}

static int add_version(subject *s, int id)
{
    int *more = realloc(s->ids, (size_t)(s->nversions + 1) * sizeof *more);
    if (more == NULL) {
        return -1;
    }
    s->ids = more;
    s->ids[s->nversions++] = id;
    return s->nversions;
}

/* The version of subject s holding schema id, or 0. */
static int version_of(const subject *s, int id)
{
    for (int v = 0; v < s->nversions; v++) {
        if (s->ids[v] == id) {
            return v + 1;
        }
    }
    return 0;
}

static void remove_subject(registry *r, subject *s)
{
    free(s->name);
    free(s->ids);
    int i = (int)(s - r->subjects);
    memmove(s, s + 1, (size_t)(r->nsubjects - i - 1) * sizeof *s);
    r->nsubjects--;
}

static void free_registry(registry *r)
{
    for (int i = 0; i < r->nschemas; i++) {
        free(r->schemas[i].text);
        free(r->schemas[i].type);
    }
    for (int i = 0; i < r->nsubjects; i++) {
        free(r->subjects[i].name);
        free(r->subjects[i].ids);
    }
    free(r->schemas);
    free(r->subjects);
}

/* ---- request bodies ---- */

/* Parse the body as a JSON object; on failure fills *err and returns NULL. */
static json_t *parse_object(const request *req, reply *err)
{
    json_error_t je;
    json_t *root = json_loadb(req->body != NULL ? req->body : "", req->len, 0, &je);
    if (root == NULL) {
        *err = error_reply(422, 42201, "Invalid JSON: %s", je.text);
    } else if (!json_is_object(root)) {
        json_decref(root);
        root = NULL;
        *err = error_reply(422, 42201, "Invalid JSON: expected an object");
    }
    return root;
}

/* The "schema" string and "schemaType" of a body (borrowed from root). */
static int schema_fields(json_t *root, const char **text, const char **type, reply *err)
{
    json_t *js = json_object_get(root, "schema");
    json_t *jt = json_object_get(root, "schemaType");
    if (!json_is_string(js) || json_string_length(js) == 0) {
        *err = error_reply(422, 42201, "Invalid schema: \"schema\" must be a non-empty string");
        return -1;
    }
    *text = json_string_value(js);
    *type = jt == NULL || json_is_null(jt) ? "AVRO" : json_string_value(jt);
    if (*type == NULL ||
        (strcmp(*type, "AVRO") != 0 && strcmp(*type, "JSON") != 0 && strcmp(*type, "PROTOBUF") != 0)) {
        *err = error_reply(422, 42201, "Invalid schema type");
        return -1;
    }
    if (strlen(*text) != json_string_length(js)) {
        *err = error_reply(422, 42201, "Invalid schema: embedded NUL");
        return -1;
    }
    return 0;
}

/* Avro and JSON schemas are JSON documents; check that much. */
static int schema_parses(const char *text, const char *type)
{
    if (strcmp(type, "PROTOBUF") == 0) {
        return 1;
    }
    json_t *doc = json_loads(text, JSON_DECODE_ANY, NULL);
    json_decref(doc);
    return doc != NULL;
}

/* ---- handlers ---- */

static json_t *schema_record(const registry *r, const char *subj, int version, int id)
{
    const schema *s = &r->schemas[id - 1];
    json_t *o =
        json_pack("{s:s,s:i,s:i,s:s}", "subject", subj, "version", version, "id", id, "schema", s->text);
    if (o != NULL && strcmp(s->type, "AVRO") != 0) {
        json_object_set_new(o, "schemaType", json_string(s->type));
    }
    return o;
}

static reply register_schema(registry *r, const char *name, const request *req)
{
    reply err;
    const char *text;
    const char *type;
    json_t *root = parse_object(req, &err);
    if (root == NULL || schema_fields(root, &text, &type, &err) != 0) {
        json_decref(root);
        return err;
    }
    if (!schema_parses(text, type)) {
        json_decref(root);
        return error_reply(422, 42201, "Invalid schema");
    }
    int id = intern_schema(r, text, type);
    json_decref(root);
    subject *s = find_subject(r, name);
    if (s == NULL && id != 0) {
        s = add_subject(r, name);
    }
    if (s == NULL || id == 0 || (version_of(s, id) == 0 && add_version(s, id) < 0)) {
        return error_reply(500, 50001, "Out of memory");
    }
    return ok(json_pack("{s:i}", "id", id));
}

static reply lookup_schema(registry *r, const char *name, const request *req)
{
    reply err;
    const char *text;
    const char *type;
    json_t *root = parse_object(req, &err);
    if (root == NULL || schema_fields(root, &text, &type, &err) != 0) {
        json_decref(root);
        return err;
    }
    subject *s = find_subject(r, name);
    int id = find_schema(r, text, type);
    json_decref(root);
    if (s == NULL) {
        return subject_not_found(name);
    }
    int version = id == 0 ? 0 : version_of(s, id);
    if (version == 0) {
        return schema_not_found();
    }
    return ok(schema_record(r, name, version, id));
}

static reply list_subjects(const registry *r)
{
    json_t *a = json_array();
    for (int i = 0; i < r->nsubjects; i++) {
        json_array_append_new(a, json_string(r->subjects[i].name));
    }
    return ok(a);
}

static json_t *version_list(const subject *s)
{
    json_t *a = json_array();
    for (int v = 1; v <= s->nversions; v++) {
        json_array_append_new(a, json_integer(v));
    }
    return a;
}

static reply list_versions(registry *r, const char *name)
{
    subject *s = find_subject(r, name);
    return s == NULL ? subject_not_found(name) : ok(version_list(s));
}

static reply delete_subject(registry *r, const char *name)
{
    subject *s = find_subject(r, name);
    if (s == NULL) {
        return subject_not_found(name);
    }
    json_t *a = version_list(s);
    remove_subject(r, s);
    return ok(a);
}

/* "latest", "-1" or 1..INT_MAX; returns 0 when invalid. */
static long parse_version(const char *v, int latest)
{
    if (strcmp(v, "latest") == 0 || strcmp(v, "-1") == 0) {
        return latest;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < 1 || n > INT_MAX) {
        return 0;
    }
    return n;
}

static reply get_version(registry *r, const char *name, const char *v)
{
    subject *s = find_subject(r, name);
    if (s == NULL) {
        return subject_not_found(name);
    }
    long n = parse_version(v, s->nversions);
    if (n == 0) {
        return error_reply(422, 42202,
                           "The specified version '%.64s' is not a valid version id. Allowed values are "
                           "between [1, 2^31-1] and the string \"latest\"",
                           v);
    }
    if (n > s->nversions) {
        return error_reply(404, 40402, "Version %ld not found.", n);
    }
    return ok(schema_record(r, name, (int)n, s->ids[n - 1]));
}

static reply get_schema_by_id(const registry *r, const char *ids)
{
    char *end;
    errno = 0;
    long id = strtol(ids, &end, 10);
    if (errno != 0 || end == ids || *end != '\0' || id < 1 || id > r->nschemas) {
        return schema_not_found();
    }
    const schema *s = &r->schemas[id - 1];
    json_t *o = json_pack("{s:s}", "schema", s->text);
    if (o != NULL && strcmp(s->type, "AVRO") != 0) {
        json_object_set_new(o, "schemaType", json_string(s->type));
    }
    return ok(o);
}

static reply put_config(registry *r, const request *req)
{
    reply err;
    json_t *root = parse_object(req, &err);
    if (root == NULL) {
        return err;
    }
    const char *level = json_string_value(json_object_get(root, "compatibility"));
    for (size_t i = 0; level != NULL && i < sizeof compat_levels / sizeof *compat_levels; i++) {
        if (strcmp(level, compat_levels[i]) == 0) {
            snprintf(r->compat, sizeof r->compat, "%s", level);
            json_decref(root);
            return ok(json_pack("{s:s}", "compatibility", r->compat));
        }
    }
    json_decref(root);
    return error_reply(422, 42203, "Invalid compatibility level");
}

/* ---- routing ---- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Percent-decode s in place; -1 on a malformed escape, %00 or bad UTF-8. */
static int percent_decode(char *s)
{
    char *out = s;
    for (const char *in = s; *in != '\0'; in++) {
        if (*in != '%') {
            *out++ = *in;
            continue;
        }
        int hi = hex_value(in[1]);
        int lo = hi < 0 ? -1 : hex_value(in[2]);
        if (lo < 0 || (hi == 0 && lo == 0)) {
            return -1;
        }
        *out++ = (char)(hi * 16 + lo);
        in += 2;
    }
    *out = '\0';
    json_t *check = json_string(s); /* NULL unless valid UTF-8 */
    json_decref(check);
    return check != NULL ? 0 : -1;
}

/* Split the raw path (a malloc'd copy in *copy) into decoded segments. */
static int split_path(const char *url, char **copy, route *rt)
{
    rt->n = 0;
    *copy = NULL;
    if (url[0] != '/') {
        return -1;
    }
    *copy = strdup(url + 1);
    if (*copy == NULL) {
        return -1;
    }
    char *p = *copy;
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash != NULL) {
            *slash = '\0';
        }
        if (*p == '\0' || rt->n == MAX_SEGMENTS || percent_decode(p) != 0) {
            return -1;
        }
        rt->seg[rt->n++] = p;
        if (slash == NULL) {
            return 0;
        }
        p = slash + 1;
    }
}

static int is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static reply route_subjects(registry *r, const route *rt, const char *m, const request *req)
{
    if (rt->n == 1 && is(m, "GET")) {
        return list_subjects(r);
    }
    if (rt->n == 2 && is(m, "POST")) {
        return lookup_schema(r, rt->seg[1], req);
    }
    if (rt->n == 2 && is(m, "DELETE")) {
        return delete_subject(r, rt->seg[1]);
    }
    if (rt->n >= 3 && !is(rt->seg[2], "versions")) {
        return not_found_route();
    }
    if (rt->n == 3 && is(m, "GET")) {
        return list_versions(r, rt->seg[1]);
    }
    if (rt->n == 3 && is(m, "POST")) {
        return register_schema(r, rt->seg[1], req);
    }
    if (rt->n == 4 && is(m, "GET")) {
        return get_version(r, rt->seg[1], rt->seg[3]);
    }
    return not_found_route();
}

static reply dispatch(registry *r, const char *url, const char *m, const request *req)
{
    char *copy = NULL;
    route rt;
    reply rep;
    if (req->too_large) {
        rep = error_reply(413, 413, "Request body larger than %d bytes", MAX_BODY);
    } else if (split_path(url, &copy, &rt) != 0) {
        rep = not_found_route();
    } else if (is(rt.seg[0], "subjects")) {
        rep = route_subjects(r, &rt, m, req);
    } else if (rt.n == 3 && is(rt.seg[0], "schemas") && is(rt.seg[1], "ids") && is(m, "GET")) {
        rep = get_schema_by_id(r, rt.seg[2]);
    } else if (rt.n == 1 && is(rt.seg[0], "config") && is(m, "GET")) {
        rep = ok(json_pack("{s:s}", "compatibilityLevel", r->compat));
    } else if (rt.n == 1 && is(rt.seg[0], "config") && is(m, "PUT")) {
        rep = put_config(r, req);
    } else {
        rep = not_found_route();
    }
    free(copy);
    return rep;
}

/* ---- HTTP ---- */

static enum MHD_Result send_reply(struct MHD_Connection *c, reply rep)
{
    char *text = rep.body != NULL ? json_dumps(rep.body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(rep.body);
    if (text == NULL) {
        return MHD_NO;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
    enum MHD_Result rc = MHD_queue_response(c, rep.status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static void append_body(request *req, const char *data, size_t size)
{
    if (req->too_large || size > MAX_BODY - req->len) {
        req->too_large = 1;
        return;
    }
    char *more = realloc(req->body, req->len + size);
    if (more == NULL) {
        req->too_large = 1;
        return;
    }
    memcpy(more + req->len, data, size);
    req->body = more;
    req->len += size;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    request *req = *con_cls;
    if (req == NULL) {
        /* Answer on a later call: answering on the first one (headers only)
         * makes MHD 0.9.75 close the connection. */
        req = calloc(1, sizeof *req);
        *con_cls = req;
        return req != NULL ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size > 0) {
        append_body(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    registry *r = cls;
    if (r->fetch_delay > 0 && strcmp(method, "GET") == 0 && strncmp(url, "/schemas/ids/", 13) == 0) {
        usleep((useconds_t)(r->fetch_delay * 1e6));
    }
    if (r->post_delay > 0 && strcmp(method, "POST") == 0) {
        usleep((useconds_t)(r->post_delay * 1e6));
    }
    pthread_mutex_lock(&r->lock);
    reply rep = dispatch(r, url, method, req);
    pthread_mutex_unlock(&r->lock);
    return send_reply(c, rep);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    request *req = *con_cls;
    if (req != NULL) {
        free(req->body);
        free(req);
        *con_cls = NULL;
    }
}

/* Leave the path escaped: split_path decodes each segment, so that %2F can
 * be part of a subject. */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static struct MHD_Daemon *start_daemon(registry *r, unsigned port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                MHD_USE_ERROR_LOG,
                            (uint16_t)port, NULL, NULL, on_request, r, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                            MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL, MHD_OPTION_END);
}

static int parse_args(int argc, char **argv, unsigned *port, double *fetch_delay, double *post_delay)
{
    *port = 0;
    *fetch_delay = 0;
    *post_delay = 0;
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        char *end;
        errno = 0;
        if (strcmp(argv[i], "--port") == 0) {
            long p = strtol(v, &end, 10);
            if (errno != 0 || end == v || *end != '\0' || p < 0 || p > 65535) {
                goto usage;
            }
            *port = (unsigned)p;
        } else if (strcmp(argv[i], "--fetch-delay") == 0 || strcmp(argv[i], "--post-delay") == 0) {
            double d = strtod(v, &end);
            if (errno != 0 || end == v || *end != '\0' || !(d >= 0 && d <= 600)) {
                goto usage;
            }
            *(argv[i][2] == 'f' ? fetch_delay : post_delay) = d;
        } else {
            goto usage;
        }
    }
    return 0;
usage:
    fprintf(stderr,
            "usage: ocps-schema-registry [--port N] [--fetch-delay SECONDS] [--post-delay SECONDS]\n");
    return -1;
}

int main(int argc, char **argv)
{
    unsigned port;
    double fetch_delay;
    double post_delay;
    if (parse_args(argc, argv, &port, &fetch_delay, &post_delay) != 0) {
        return 2;
    }
    /* Blocked before MHD starts its thread, so that only sigwait sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    registry r = {.compat = "BACKWARD", .fetch_delay = fetch_delay, .post_delay = post_delay};
    pthread_mutex_init(&r.lock, NULL);
    struct MHD_Daemon *d = start_daemon(&r, port);
    if (d == NULL) {
        fprintf(stderr, "ocps-schema-registry: cannot listen on 127.0.0.1:%u\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("LISTENING http://127.0.0.1:%u\n", info != NULL ? (unsigned)info->port : port);
    fflush(stdout);

    int sig;
    while (sigwait(&set, &sig) != 0) {
    }
    MHD_stop_daemon(d);
    free_registry(&r);
    return 0;
}
