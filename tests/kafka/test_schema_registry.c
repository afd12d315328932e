/*
 * test_schema_registry: the ocps-schema-registry fixture over HTTP (libcurl):
 * registration and global ids, versions, lookup, ids, subjects (including
 * percent-encoded ones), delete, config, the error bodies, and that a schema
 * string comes back byte for byte as it was registered.
 *
 * OCPS_TEST_WRAPPER (e.g. "valgrind --error-exitcode=99 --leak-check=full")
 * is put in front of the registry's command line; a clean exit is status 0.
 */
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "test_util.h"

#ifndef OCPS_SCHEMA_REGISTRY
#define OCPS_SCHEMA_REGISTRY "ocps-schema-registry"
#endif

#define START_TIMEOUT 30.0 /* seconds; generous for valgrind */
#define MAX_ARGS 32
#define CONTENT_TYPE "application/vnd.schemaregistry.v1+json"

/* Odd spacing, escapes and non-ASCII: re-serializing would change it. */
static const char schema_a[] =
    "{\"type\":  \"record\", \"name\": \"A\",\n\t\"doc\": \"caf\xc3\xa9 \\u00e9 \\\"q\\\"\","
    " \"fields\": [{\"name\": \"x\", \"type\": \"long\"}]}";
static const char schema_b[] =
    "{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"x\",\"type\":\"long\"},"
    "{\"name\":\"y\",\"type\":\"double\",\"default\":0.0}]}";

extern char **environ;

typedef struct fixture {
    int pid;
    char base[64]; /* http://127.0.0.1:port */
    CURL *curl;    /* one handle: requests reuse the connection */
} fixture;

typedef struct buffer {
    char *data;
    size_t len;
} buffer;

/* ---- the registry process ---- */

/* The first line of fd's output (malloc'd, without '\n'), or NULL. */
static char *read_first_line(int fd, double timeout)
{
    char buf[256];
    size_t len = 0;
    double end = tu_now() + timeout;
    while (len < sizeof buf - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)((end - tu_now()) * 1000);
        if (left <= 0 || poll(&p, 1, left) <= 0 || read(fd, buf + len, 1) != 1) {
            return NULL;
        }
        if (buf[len] == '\n') {
            return strndup(buf, len);
        }
        len++;
    }
    return NULL;
}

/* Start the registry (after the OCPS_TEST_WRAPPER words) with its stdout on
 * a pipe; returns the pid and the read end in *out. */
static int spawn_registry(int *out)
{
    char *argv[MAX_ARGS];
    int n = 0;
    const char *w = getenv("OCPS_TEST_WRAPPER");
    char *words = strdup(w != NULL ? w : "");
    char *save;
    for (char *t = strtok_r(words, " ", &save); t != NULL && n < MAX_ARGS - 4;
         t = strtok_r(NULL, " ", &save)) {
        argv[n++] = t;
    }
    argv[n++] = OCPS_SCHEMA_REGISTRY;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n] = NULL;
    int p[2];
    assert_int_equal(pipe(p), 0);
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    free(words);
    close(p[1]);
    *out = p[0];
    return rc == 0 ? (int)pid : -1;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    int out;
    f->pid = spawn_registry(&out);
    char *line = f->pid > 0 ? read_first_line(out, START_TIMEOUT) : NULL;
    close(out);
    if (line == NULL || strncmp(line, "LISTENING http://127.0.0.1:", 27) != 0) {
        fprintf(stderr, "registry did not start: %s\n", line != NULL ? line : "(no line)");
        free(line);
        tu_kill(f->pid);
        free(f);
        return -1;
    }
    snprintf(f->base, sizeof f->base, "%s", line + 10);
    free(line);
    f->curl = curl_easy_init();
    *state = f;
    return 0;
}

/* SIGTERM must give a clean exit (status 0, also under valgrind). */
static int teardown(void **state)
{
    fixture *f = *state;
    curl_easy_cleanup(f->curl);
    kill(f->pid, SIGTERM);
    int rc = tu_wait_exit(f->pid, START_TIMEOUT);
    if (rc < 0) {
        tu_kill(f->pid);
    }
    free(f);
    if (rc != 0) {
        fprintf(stderr, "registry exit status %d\n", rc);
    }
    return rc == 0 ? 0 : -1;
}

/* ---- HTTP ---- */

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    buffer *b = arg;
    char *more = realloc(b->data, b->len + size * n + 1);
    if (more == NULL) {
        return 0;
    }
    memcpy(more + b->len, data, size * n);
    b->data = more;
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* One request; returns the parsed JSON reply (any JSON value) and its
 * status in *status. The reply's content type is checked. */
static json_t *http_raw(fixture *f, const char *method, const char *path, const char *body, size_t body_len,
                        long *status)
{
    char url[1024];
    buffer b = {NULL, 0};
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: " CONTENT_TYPE);
    snprintf(url, sizeof url, "%s%s", f->base, path);
    CURL *c = f->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    assert_int_equal(rc, CURLE_OK);
    char *ctype = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype);
    assert_non_null(ctype);
    assert_string_equal(ctype, CONTENT_TYPE);
    json_error_t je;
    json_t *reply = json_loadb(b.data != NULL ? b.data : "", b.len, JSON_DECODE_ANY, &je);
    if (reply == NULL) {
        fail_msg("%s %s: reply is not JSON (%s): %s", method, path, je.text, b.data ? b.data : "");
    }
    free(b.data);
    return reply;
}

static json_t *http(fixture *f, const char *method, const char *path, json_t *body, long *status)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    json_t *reply = http_raw(f, method, path, text, text != NULL ? strlen(text) : 0, status);
    free(text);
    return reply;
}

/* Expect 200; returns the reply. */
static json_t *http_ok(fixture *f, const char *method, const char *path, json_t *body)
{
    long status;
    json_t *reply = http(f, method, path, body, &status);
    if (status != 200) {
        char *t = json_dumps(reply, JSON_ENCODE_ANY);
        fail_msg("%s %s: status %ld, %s", method, path, status, t);
    }
    return reply;
}

/* Expect an error status and error_code. */
static void expect_error(json_t *reply, long status, long want_status, int want_code)
{
    assert_int_equal(status, want_status);
    assert_true(json_is_object(reply));
    assert_int_equal(json_integer_value(json_object_get(reply, "error_code")), want_code);
    assert_true(json_is_string(json_object_get(reply, "message")));
    json_decref(reply);
}

static void expect_http_error(fixture *f, const char *method, const char *path, json_t *body,
                              long want_status, int want_code)
{
    long status;
    json_t *reply = http(f, method, path, body, &status);
    expect_error(reply, status, want_status, want_code);
}

static int register_schema(fixture *f, const char *subject_path, const char *schema)
{
    char path[512];
    snprintf(path, sizeof path, "/subjects/%s/versions", subject_path);
    json_t *reply = http_ok(f, "POST", path, json_pack("{s:s}", "schema", schema));
    int id = (int)json_integer_value(json_object_get(reply, "id"));
    assert_true(id > 0);
    json_decref(reply);
    return id;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    assert_non_null(s);
    return s;
}

static long num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return (long)json_integer_value(v);
}

/* reply must be a JSON array of exactly these integers (n of them). */
static void expect_int_array(json_t *reply, const long *want, size_t n)
{
    assert_true(json_is_array(reply));
    assert_int_equal(json_array_size(reply), n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(json_integer_value(json_array_get(reply, i)), want[i]);
    }
    json_decref(reply);
}

static int array_has_string(json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (strcmp(json_string_value(v), s) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ---- tests ---- */

static void test_register_ids_versions(void **state)
{
    fixture *f = *state;
    int a = register_schema(f, "reg-value", schema_a);
    assert_int_equal(register_schema(f, "reg-value", schema_a), a);   /* same string: same id */
    assert_int_equal(register_schema(f, "other-value", schema_a), a); /* global id */
    int b = register_schema(f, "reg-value", schema_b);
    assert_int_not_equal(b, a);

    expect_int_array(http_ok(f, "GET", "/subjects/reg-value/versions", NULL), (long[]){1, 2}, 2);
    expect_int_array(http_ok(f, "GET", "/subjects/other-value/versions", NULL), (long[]){1}, 1);

    json_t *latest = http_ok(f, "GET", "/subjects/reg-value/versions/latest", NULL);
    assert_string_equal(str(latest, "subject"), "reg-value");
    assert_int_equal(num(latest, "version"), 2);
    assert_int_equal(num(latest, "id"), b);
    assert_string_equal(str(latest, "schema"), schema_b);
    json_decref(latest);

    json_t *v1 = http_ok(f, "GET", "/subjects/reg-value/versions/1", NULL);
    assert_int_equal(num(v1, "version"), 1);
    assert_int_equal(num(v1, "id"), a);
    assert_string_equal(str(v1, "schema"), schema_a);
    json_decref(v1);
    json_t *minus1 = http_ok(f, "GET", "/subjects/reg-value/versions/-1", NULL);
    assert_int_equal(num(minus1, "version"), 2);
    json_decref(minus1);

    json_t *subjects = http_ok(f, "GET", "/subjects", NULL);
    assert_true(array_has_string(subjects, "reg-value"));
    assert_true(array_has_string(subjects, "other-value"));
    json_decref(subjects);
}

/* What a client registers comes back byte for byte, by id and by lookup. */
static void test_exact_string(void **state)
{
    fixture *f = *state;
    int a = register_schema(f, "exact-value", schema_a);
    char path[64];
    snprintf(path, sizeof path, "/schemas/ids/%d", a);
    json_t *by_id = http_ok(f, "GET", path, NULL);
    assert_string_equal(str(by_id, "schema"), schema_a);
    assert_int_equal(json_string_length(json_object_get(by_id, "schema")), strlen(schema_a));
    assert_null(json_object_get(by_id, "schemaType"));
    json_decref(by_id);

    json_t *found = http_ok(f, "POST", "/subjects/exact-value", json_pack("{s:s}", "schema", schema_a));
    assert_string_equal(str(found, "subject"), "exact-value");
    assert_int_equal(num(found, "id"), a);
    assert_int_equal(num(found, "version"), 1);
    assert_string_equal(str(found, "schema"), schema_a);
    json_decref(found);
}

/* A JSON-typed schema is a distinct schema and reports its type. */
static void test_schema_type(void **state)
{
    fixture *f = *state;
    int avro = register_schema(f, "typed-value", schema_b);
    json_t *reply = http_ok(f, "POST", "/subjects/typed-json/versions",
                            json_pack("{s:s,s:s}", "schema", schema_b, "schemaType", "JSON"));
    int id = (int)num(reply, "id");
    json_decref(reply);
    assert_int_not_equal(id, avro);
    char path[64];
    snprintf(path, sizeof path, "/schemas/ids/%d", id);
    json_t *by_id = http_ok(f, "GET", path, NULL);
    assert_string_equal(str(by_id, "schemaType"), "JSON");
    json_decref(by_id);
    expect_http_error(f, "POST", "/subjects/typed-json/versions",
                      json_pack("{s:s,s:s}", "schema", schema_b, "schemaType", "XML"), 422, 42201);
}

static void test_not_found(void **state)
{
    fixture *f = *state;
    register_schema(f, "nf-value", schema_a);
    expect_http_error(f, "POST", "/subjects/no-such-subject", json_pack("{s:s}", "schema", schema_a), 404,
                      40401);
    expect_http_error(f, "POST", "/subjects/nf-value", json_pack("{s:s}", "schema", "\"int\""), 404, 40403);
    expect_http_error(f, "GET", "/schemas/ids/99999", NULL, 404, 40403);
    expect_http_error(f, "GET", "/schemas/ids/0", NULL, 404, 40403);
    expect_http_error(f, "GET", "/schemas/ids/abc", NULL, 404, 40403);
    expect_http_error(f, "GET", "/subjects/no-such-subject/versions", NULL, 404, 40401);
    expect_http_error(f, "GET", "/subjects/no-such-subject/versions/latest", NULL, 404, 40401);
    expect_http_error(f, "GET", "/subjects/nf-value/versions/7", NULL, 404, 40402);
    expect_http_error(f, "GET", "/subjects/nf-value/versions/seven", NULL, 422, 42202);
    expect_http_error(f, "DELETE", "/subjects/no-such-subject", NULL, 404, 40401);
    expect_http_error(f, "GET", "/nowhere", NULL, 404, 404);
    expect_http_error(f, "GET", "/", NULL, 404, 404);
    expect_http_error(f, "GET", "/subjects/nf-value", NULL, 404, 404);
    expect_http_error(f, "PUT", "/subjects/nf-value/versions", NULL, 404, 404);
    expect_http_error(f, "GET", "/subjects/nf-value/other", NULL, 404, 404);
    expect_http_error(f, "GET", "/subjects/nf-value/versions/1/schema/x", NULL, 404, 404);
}

static void test_bad_bodies(void **state)
{
    fixture *f = *state;
    long status;
    const char *p = "/subjects/bad-value/versions";
    json_t *r = http_raw(f, "POST", p, "{\"schema\": ", 11, &status);
    expect_error(r, status, 422, 42201);
    r = http_raw(f, "POST", p, "[1, 2]", 6, &status);
    expect_error(r, status, 422, 42201);
    r = http_raw(f, "POST", p, "", 0, &status);
    expect_error(r, status, 422, 42201);
    expect_http_error(f, "POST", p, json_pack("{s:i}", "schema", 5), 422, 42201);
    expect_http_error(f, "POST", p, json_pack("{s:s}", "schema", "{not json"), 422, 42201);
    expect_http_error(f, "POST", "/subjects/bad-value", json_pack("{}"), 422, 42201);

    size_t big = 1024 * 1024 + 16;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    r = http_raw(f, "POST", p, huge, big, &status);
    free(huge);
    expect_error(r, status, 413, 413);
    expect_http_error(f, "GET", "/subjects/bad-value/versions", NULL, 404, 40401); /* nothing stored */
}

/* Subjects in URLs are percent-decoded, per segment, so %2F is allowed. */
static void test_percent_encoded(void **state)
{
    fixture *f = *state;
    const char *name = "lsst/sal.Test odd+name-value";
    int id = register_schema(f, "lsst%2Fsal.Test%20odd%2bname-value", schema_b);
    json_t *subjects = http_ok(f, "GET", "/subjects", NULL);
    assert_true(array_has_string(subjects, name));
    json_decref(subjects);

    json_t *latest =
        http_ok(f, "GET", "/subjects/lsst%2fsal%2ETest%20odd%2Bname-value/versions/latest", NULL);
    assert_string_equal(str(latest, "subject"), name);
    assert_int_equal(num(latest, "id"), id);
    json_decref(latest);

    json_t *found = http_ok(f, "POST", "/subjects/lsst%2Fsal.Test%20odd%2Bname-value",
                            json_pack("{s:s}", "schema", schema_b));
    assert_string_equal(str(found, "subject"), name);
    json_decref(found);

    expect_http_error(f, "GET", "/subjects/lsst/sal.Test/versions", NULL, 404, 404);
    expect_http_error(f, "GET", "/subjects/bad%zzescape/versions", NULL, 404, 404);
    expect_http_error(f, "GET", "/subjects/nul%00byte/versions", NULL, 404, 404);
}

static void test_delete(void **state)
{
    fixture *f = *state;
    int a = register_schema(f, "del-value", schema_a);
    register_schema(f, "del-value", schema_b);
    expect_int_array(http_ok(f, "DELETE", "/subjects/del-value", NULL), (long[]){1, 2}, 2);
    json_t *subjects = http_ok(f, "GET", "/subjects", NULL);
    assert_false(array_has_string(subjects, "del-value"));
    json_decref(subjects);
    expect_http_error(f, "GET", "/subjects/del-value/versions", NULL, 404, 40401);

    char path[64];
    snprintf(path, sizeof path, "/schemas/ids/%d", a);
    json_decref(http_ok(f, "GET", path, NULL)); /* ids outlive their subjects */
    assert_int_equal(register_schema(f, "del-value", schema_a), a);
    expect_int_array(http_ok(f, "GET", "/subjects/del-value/versions", NULL), (long[]){1}, 1);
}

static void test_config(void **state)
{
    fixture *f = *state;
    json_t *c = http_ok(f, "GET", "/config", NULL);
    assert_string_equal(str(c, "compatibilityLevel"), "BACKWARD");
    json_decref(c);
    c = http_ok(f, "PUT", "/config", json_pack("{s:s}", "compatibility", "FORWARD"));
    assert_string_equal(str(c, "compatibility"), "FORWARD");
    json_decref(c);
    c = http_ok(f, "GET", "/config", NULL);
    assert_string_equal(str(c, "compatibilityLevel"), "FORWARD");
    json_decref(c);
    expect_http_error(f, "PUT", "/config", json_pack("{s:s}", "compatibility", "SIDEWAYS"), 422, 42203);
    expect_http_error(f, "POST", "/config", json_pack("{s:s}", "compatibility", "NONE"), 404, 404);
    json_decref(http_ok(f, "PUT", "/config", json_pack("{s:s}", "compatibility", "BACKWARD")));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_ids_versions),
        cmocka_unit_test(test_exact_string),
        cmocka_unit_test(test_schema_type),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_percent_encoded),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_config),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
