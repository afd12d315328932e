/*
 * test_uws_hostile.c - malformed and hostile requests to the real
 * ocps-engine: every one gets 400 (or 404/405/431 where the path or the
 * headers are the problem) with a message, nothing is created, the
 * daemon stays up. Also the bearer token and the loopback default.
 */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "test_util.h"
#include "uws_fixture.h"

static uws_fx fx;

static int setup(void **state)
{
    (void)state;
    const char *const extra[] = {"--max-body", "65536", NULL};
    return uws_fx_start(&fx, NULL, extra);
}

static int teardown(void **state)
{
    (void)state;
    uws_fx_stop(&fx);
    return 0;
}

typedef struct bad_body {
    const char *ctype;
    const char *body;
    const char *expect; /* a part of the message */
} bad_body;

static const bad_body corpus[] = {
    {"application/json", "{", "malformed JSON"},
    {"application/json", "", "malformed JSON"},
    {"application/json", "[\"command\"]", "JSON object"},
    {"application/json", "\"echo\"", "malformed JSON"},
    {"application/json", "{\"command\": 42}", "'command'"},
    {"application/json", "{\"command\": null}", "missing argument"},
    {"application/json", "{}", "missing argument"},
    {"application/json", "{\"command\": [\"echo\"]}", "'command'"},
    {"application/json", "{\"command\": \"true\", \"command\": \"false\"}", "malformed JSON"},
    {"application/json", "{\"command\": \"a\\u0000b\"}", "malformed JSON"},
    {"application/json", "{\"command\": \"\xff\xfe\"}", "malformed JSON"},
    {"application/json", "{\"command\": \"true\", \"argv\": [\"true\"]}", "not both"},
    {"application/json", "{\"argv\": []}", "'argv'"},
    {"application/json", "{\"argv\": \"true\"}", "'argv'"},
    {"application/json", "{\"argv\": [\"true\", 1]}", "'argv'"},
    {"application/json", "{\"argv\": [\"\"]}", "'argv'"},
    {"application/json", "{\"command\": \"true\", \"environment\": {\"A\": \"1\"}}", "'environment'"},
    {"application/json", "{\"command\": \"true\", \"environment\": [[\"A\", \"1\"]]}", "'environment'"},
    {"application/json", "{\"command\": \"true\", \"environment\": [{\"value\": \"1\"}]}", "'environment'"},
    {"application/json", "{\"command\": \"true\", \"environment\": [{\"name\": \"A\", \"value\": [1]}]}",
     "'environment'"},
    {"application/json", "{\"command\": \"true\", \"environment\": [{\"name\": \"A\", \"value\": {}}]}",
     "'environment'"},
    {"application/json", "{\"command\": \"true\", \"environment\": [{\"name\": \"A=B\", \"value\": \"1\"}]}",
     "without '='"},
    {"application/json", "{\"command\": \"true\", \"environment\": [{\"name\": \"\", \"value\": \"1\"}]}",
     "without '='"},
    {"application/json", "{\"command\": \"true\", \"replicas\": 2}", "'replicas'"},
    {"application/json", "{\"command\": \"true\", \"replicas\": \"1\"}", "'replicas'"},
    {"application/json", "{\"command\": \"true\", \"run_id\": \"has space\"}", "Invalid run_id"},
    {"application/json", "{\"command\": \"true\", \"run_id\": \"-leading\"}", "Invalid run_id"},
    {"application/json", "{\"command\": \"true\", \"run_id\": \"a/../b\"}", "Invalid run_id"},
    {"application/json",
     "{\"command\": \"true\", \"run_id\": "
     "\"a123456789012345678901234567890123456789012345678901234567890123\"}",
     "Invalid run_id"},
    {"application/json", "{\"command\": \"true\", \"run_id\": 17}", "'run_id'"},
    {"application/json", "{\"command\": \"true\", \"url\": 1}", "'url'"},
    {"application/json; charset=utf-8", "{\"command\": ", "malformed JSON"},
    {"application/x-www-form-urlencoded", "", "missing argument"},
    {"application/x-www-form-urlencoded", "run_id=x", "missing argument"},
    {"application/x-www-form-urlencoded", "command=%zz", "malformed form"},
    {"application/x-www-form-urlencoded", "command=a%00b", "malformed form"},
    {"application/x-www-form-urlencoded", "command=true&run_id=bad%20id", "Invalid run_id"},
    {"application/x-www-form-urlencoded", "command=true&environment=A%3D1", "JSON body"},
    {"application/x-www-form-urlencoded", "command=true&replicas=3", "'replicas'"},
    {"application/x-www-form-urlencoded", "command=%ff", "form field 'command' is not valid UTF-8"},
    {"application/x-www-form-urlencoded", "command=%c3%28", "form field 'command' is not valid UTF-8"},
    {"application/x-www-form-urlencoded", "command=%ed%a0%80", "form field 'command' is not valid UTF-8"},
    {"application/x-www-form-urlencoded", "command=true&url=%ff", "form field 'url' is not valid UTF-8"},
    {"application/x-www-form-urlencoded", "command=true&url=x&commit_ref=%ff",
     "form field 'commit_ref' is not valid UTF-8"},
    {"text/plain", "echo hi", "missing argument"},
};

/* Every malformed body: 400 with the expected message, no job created. */
static void test_malformed_bodies(void **state)
{
    (void)state;
    int before = uws_fx_count(&fx);
    assert_true(before >= 0);
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        uws_resp r;
        assert_int_equal(uws_fx_request(&fx, "PUT", "/job", corpus[i].ctype, corpus[i].body,
                                        strlen(corpus[i].body), NULL, &r),
                         0);
        if (r.status != 400 || strstr(r.body, corpus[i].expect) == NULL) {
            print_error("case %zu (%s): %d %s\n", i, corpus[i].body, r.status, r.body);
        }
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, corpus[i].expect));
        uws_resp_clear(&r);
    }
    assert_int_equal(uws_fx_count(&fx), before);
}

/* {"command": "aaa..."} with n a's (malloc'd). */
static char *big_command_body(size_t n)
{
    char *big = malloc(n + 64);
    assert_non_null(big);
    strcpy(big, "{\"command\": \"");
    memset(big + 13, 'a', n);
    strcpy(big + 13 + n, "\"}");
    return big;
}

/* A body over --max-body: 400, nothing created. */
static void test_oversized_body(void **state)
{
    (void)state;
    char *big = big_command_body(200 * 1024);
    uws_resp r;
    assert_int_equal(uws_fx_request(&fx, "PUT", "/job", "application/json", big, strlen(big), NULL, &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "larger than 65536 bytes"));
    uws_resp_clear(&r);
    free(big);
    assert_int_equal(uws_fx_count(&fx), 0);
}

/* The same body sent chunked (no Content-Length: it is refused only as it
 * runs over): the 400 and its message once the body has ended, not a
 * dropped connection; a body that goes on far beyond the limit (over 4
 * times) loses its connection. Neither creates a job. */
static void test_oversized_chunked_body(void **state)
{
    (void)state;
    const char *const chunked[] = {"-H", "Transfer-Encoding: chunked", NULL};
    size_t sizes[] = {200 * 1024, 1024 * 1024};
    for (size_t k = 0; k < 2; k++) {
        char *big = big_command_body(sizes[k]);
        uws_resp r;
        assert_int_equal(
            uws_fx_request(&fx, "PUT", "/job", "application/json", big, strlen(big), chunked, &r), 0);
        if (k == 0) {
            assert_int_equal(r.status, 400);
            assert_non_null(strstr(r.body, "larger than 65536 bytes"));
        } else {
            assert_true(r.status == 0 || r.status == 100); /* no final answer: the connection closed */
        }
        uws_resp_clear(&r);
        free(big);
    }
    assert_int_equal(uws_fx_count(&fx), 0);
}

/* A path whose escapes decode to a line break writes one line to the
 * request log, not a forged second one. */
static void test_log_not_forged(void **state)
{
    (void)state;
    uws_resp r;
    assert_int_equal(uws_fx_request(&fx, "GET", "/job/x%0d%0aFORGED-LINE%0a", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    uws_resp_clear(&r);
    char path[1024];
    snprintf(path, sizeof path, "%s/engine.log", fx.root);
    char *log = NULL;
    double end = tu_now() + 5;
    while (tu_now() < end) { /* the log is written in batches */
        free(log);
        log = tu_read_file(path, NULL);
        if (log != NULL && strstr(log, "FORGED-LINE") != NULL) {
            break;
        }
        usleep(50 * 1000);
    }
    assert_non_null(log);
    const char *at = strstr(log, "FORGED-LINE");
    assert_non_null(at);
    assert_true(at - log >= 2);
    assert_memory_equal(at - 2, "??", 2); /* on the request's own line */
    assert_non_null(strstr(at, "FORGED-LINE? 404 "));
    free(log);
}

/* Paths: traversal, odd ids, long paths, encoded slashes. */
static void test_hostile_paths(void **state)
{
    (void)state;
    static const struct {
        const char *method;
        const char *path;
        int status;
    } cases[] = {
        {"GET", "/job/result/../../../../etc/passwd", 404},
        {"GET", "/job/result/0123456789abcdef0123456789abcdef/0", 404},
        {"GET", "/job/result/0123456789abcdef0123456789abcdef/-1", 404},
        {"GET", "/job/result/0123456789abcdef0123456789abcdef/99999999999", 404},
        {"GET", "/job/result/0123456789abcdef0123456789abcdef/", 400},
        {"GET", "/job/..%2f..%2fetc", 404},
        {"GET", "/job/%00", 404},
        {"DELETE", "/job/..", 404},
        {"DELETE", "/job/0123456789ABCDEF0123456789ABCDEF", 404},
        {"GET", "/job/a/b/c", 404},
        {"GET", "/job//", 404},
        {"GET", "/job?phase=%00", 400},
        {"GET", "/job?phase=pending&phase=bogus", 200},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uws_resp r;
        const char *const raw[] = {"--path-as-is", NULL};
        assert_int_equal(uws_fx_request(&fx, cases[i].method, cases[i].path, NULL, NULL, 0, raw, &r), 0);
        if (r.status != cases[i].status) {
            print_error("%s %s: %d %s\n", cases[i].method, cases[i].path, r.status, r.body);
        }
        assert_int_equal(r.status, cases[i].status);
        uws_resp_clear(&r);
    }
    char *longpath = malloc(20000);
    assert_non_null(longpath);
    strcpy(longpath, "/job/");
    memset(longpath + 5, 'a', 19000);
    longpath[19005] = '\0';
    uws_resp r;
    assert_int_equal(uws_fx_request(&fx, "GET", longpath, NULL, NULL, 0, NULL, &r), 0);
    assert_true(r.status == 404 || r.status == 414 || r.status == 431);
    uws_resp_clear(&r);
    free(longpath);
    assert_int_equal(uws_fx_count(&fx), 0);
}

/* Text that is not valid UTF-8 in a path or in the query: 404 for the
 * job it cannot name, with a message (a JSON string on the API, its bad
 * bytes as '?'), 400 for a form field; never 500, nothing created. */
static void test_not_utf8_in_paths_and_queries(void **state)
{
    (void)state;
    static const struct {
        const char *method;
        const char *path;
        bool json; /* the message is a JSON string */
    } unknown[] = {
        {"GET", "/job/%ff", true},         {"GET", "/job/a%ffb/phase", true},
        {"GET", "/job/%ff/results", true}, {"DELETE", "/job/%ff", true},
        {"GET", "/job/%ff/log", true},     {"GET", "/job/%ff/metrics", true},
        {"GET", "/status/job/%ff", false},
    };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        uws_resp r;
        assert_int_equal(uws_fx_request(&fx, unknown[i].method, unknown[i].path, NULL, NULL, 0, NULL, &r), 0);
        if (r.status != 404) {
            print_error("%s %s: %d %s\n", unknown[i].method, unknown[i].path, r.status, r.body);
        }
        assert_int_equal(r.status, 404);
        const char *msg = unknown[i].json ? json_string_value(r.json) : r.body;
        assert_non_null(msg);
        assert_non_null(strstr(msg, "?"));
        assert_non_null(strstr(msg, " not found"));
        uws_resp_clear(&r);
    }
    uws_resp r;
    const char *abort = "PHASE=ABORT";
    assert_int_equal(uws_fx_request(&fx, "POST", "/job/%ff/phase", "application/x-www-form-urlencoded", abort,
                                    strlen(abort), NULL, &r),
                     0);
    assert_int_equal(r.status, 404);
    assert_string_equal(json_string_value(r.json), "job ? not found");
    uws_resp_clear(&r);
    /* a form field in the query */
    assert_int_equal(uws_fx_request(&fx, "PUT", "/job?command=true&url=%ff",
                                    "application/x-www-form-urlencoded", "", 0, NULL, &r),
                     0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "form field 'url' is not valid UTF-8"));
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_count(&fx), 0);
}

/* Headers beyond the connection's memory: refused, the daemon lives on. */
static void test_huge_headers(void **state)
{
    (void)state;
    size_t n = 100 * 1024;
    char *h = malloc(n + 16);
    assert_non_null(h);
    strcpy(h, "X-Big: ");
    memset(h + 7, 'x', n);
    h[7 + n] = '\0';
    const char *const extra[] = {"-H", h, NULL};
    uws_resp r;
    assert_int_equal(uws_fx_request(&fx, "GET", "/job", NULL, NULL, 0, extra, &r), 0);
    assert_int_not_equal(r.status, 200);
    uws_resp_clear(&r);
    free(h);
    assert_int_equal(uws_fx_count(&fx), 0);
}

/* Bytes that are not HTTP, and a connection closed mid-body. */
static void test_garbage_on_the_socket(void **state)
{
    (void)state;
    static const char *const junk[] = {
        "GARBAGE\r\n\r\n",
        ("PUT /api/v1/job HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
         "100\r\n\r\n{\"co"),
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        "GET /api/v1/job HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(s >= 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx.port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof a), 0);
        struct timeval tv = {.tv_sec = 2};
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        assert_true(write(s, junk[i], strlen(junk[i])) > 0);
        shutdown(s, SHUT_WR);
        char buf[512];
        (void)!read(s, buf, sizeof buf);
        close(s);
    }
    assert_int_equal(uws_fx_count(&fx), 0);
}

/* 300 slow clients from one address (each connection sends a partial
 * request and then nothing, or a header line now and then: never idle
 * long enough to be closed) hold at most a quarter of the 256
 * connections: a client from another address is still served at once. */
static void test_slow_clients_leave_room_for_others(void **state)
{
    (void)state;
    enum { SLOW = 300 };
    int socks[SLOW];
    int held = 0;
    for (int i = 0; i < SLOW; i++) {
        socks[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(socks[i] >= 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx.port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(socks[i], (struct sockaddr *)&a, sizeof a) == 0) {
            const char *part = "GET /api/v1/job HTTP/1.1\r\nHost: x\r\n";
            held += write(socks[i], part, strlen(part)) > 0;
        }
    }
    assert_true(held > 64);
    usleep(300 * 1000);
    uws_resp r;
    const char *const other[] = {"--interface", "127.0.0.2", "-m", "5", NULL};
    double t0 = tu_now();
    assert_int_equal(uws_fx_request(&fx, "GET", "/job", NULL, NULL, 0, other, &r), 0);
    assert_int_equal(r.status, 200);
    print_message("  from another address with %d slow connections open: %.3f s\n", held, tu_now() - t0);
    uws_resp_clear(&r);
    for (int i = 0; i < SLOW; i++) {
        close(socks[i]);
    }
}

/* An engine in a new directory, under the base path /uws, whose bearer
 * token ("s3cret-token") is read from a file there. */
static void start_with_token(uws_fx *t)
{
    char *dir = tu_make_temp_dir();
    char *tok = tu_path_join(dir, "token");
    assert_int_equal(tu_write_file(tok, "s3cret-token\n", 13), 0);
    const char *const extra[] = {"--token-file", tok, "--base-path", "/uws", NULL};
    assert_int_equal(uws_fx_start(t, dir, extra), 0);
    free(tok);
    free(dir);
}

/* A bearer token from a file: required for everything but OPTIONS. */
static void test_bearer_token(void **state)
{
    (void)state;
    uws_fx t;
    start_with_token(&t);
    uws_resp r;
    assert_int_equal(uws_fx_request(&t, "GET", "/job", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.headers, "WWW-Authenticate: Bearer"));
    uws_resp_clear(&r);
    const char *const wrong[] = {"-H", "Authorization: Bearer s3cret-tokeN", NULL};
    assert_int_equal(
        uws_fx_request(&t, "PUT", "/job", "application/json", "{\"command\": \"true\"}", 19, wrong, &r), 0);
    assert_int_equal(r.status, 401);
    uws_resp_clear(&r);
    const char *const prefix[] = {"-H", "Authorization: Bearer s3cret", NULL};
    assert_int_equal(uws_fx_request(&t, "GET", "/job", NULL, NULL, 0, prefix, &r), 0);
    assert_int_equal(r.status, 401);
    uws_resp_clear(&r);
    const char *const right[] = {"-H", "Authorization: Bearer s3cret-token", NULL};
    assert_int_equal(uws_fx_request(&t, "GET", "/job", NULL, NULL, 0, right, &r), 0);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&t, "OPTIONS", "/job", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 204);
    uws_resp_clear(&r);
    uws_fx_stop(&t);
}

/* Send `request` on a new connection to port and read the answer into
 * out (NUL-terminated) until the server closes or `seconds` pass without
 * a byte; nothing more is sent (a body the headers announce is held back). */
static void raw_exchange(unsigned port, const char *request, char *out, size_t outlen, int seconds)
{
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(sock >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(sock, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {.tv_sec = seconds};
    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(write(sock, request, strlen(request)), (ssize_t)strlen(request));
    size_t n = 0;
    ssize_t got;
    while (n + 1 < outlen && (got = read(sock, out + n, outlen - 1 - n)) > 0) {
        n += (size_t)got;
    }
    out[n] = '\0';
    close(sock);
}

/* With a token, a request whose headers are enough to refuse it is
 * answered before its body is accepted: no token 401, no route 404, a
 * method its route does not take 405 (and no 100 Continue to a client
 * that waits for one), so that no body is read into memory for it. With
 * the token, a body is read and the job made. */
static void test_refused_before_the_body(void **state)
{
    (void)state;
    uws_fx t;
    start_with_token(&t);
    static const struct {
        const char *head; /* the request's line and headers: a body of 60,000 bytes announced, not sent */
        const char *status;
    } held[] = {
        {"PUT /uws/job HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
         "60000\r\n\r\n",
         "HTTP/1.1 401 "},
        {"PUT /uws/job HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nTransfer-Encoding: "
         "chunked\r\n\r\n",
         "HTTP/1.1 401 "},
        {"POST /uws/job/0123456789abcdef0123456789abcdef/phase HTTP/1.1\r\nHost: x\r\nContent-Length: "
         "60000\r\n\r\n",
         "HTTP/1.1 401 "},
        {"PUT /uws/nothing HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-token\r\nContent-Length: "
         "60000\r\n\r\n",
         "HTTP/1.1 404 "},
        {"PUT /uws/job/0123456789abcdef0123456789abcdef HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
         "s3cret-token\r\nContent-Length: 60000\r\n\r\n",
         "HTTP/1.1 405 "},
    };
    for (size_t i = 0; i < sizeof held / sizeof held[0]; i++) {
        char answer[4096];
        raw_exchange(t.port, held[i].head, answer, sizeof answer, 3);
        if (strncmp(answer, held[i].status, strlen(held[i].status)) != 0) {
            print_error("case %zu: answered \"%.40s\"\n", i, answer);
        }
        assert_memory_equal(answer, held[i].status, strlen(held[i].status));
    }
    /* curl waiting for 100 Continue: none, the 401 at once */
    char body[8192];
    memset(body, ' ', sizeof body);
    memcpy(body, "{\"command\": \"true\"}", 19);
    const char *const expect[] = {"-H", "Expect: 100-continue", NULL};
    uws_resp r;
    assert_int_equal(uws_fx_request(&t, "PUT", "/job", "application/json", body, sizeof body, expect, &r), 0);
    assert_int_equal(r.status, 401);
    assert_null(strstr(r.headers, "100 Continue"));
    uws_resp_clear(&r);
    /* with the token: 100 Continue, the body read, the job made */
    const char *const right[] = {"-H", "Expect: 100-continue", "-H", "Authorization: Bearer s3cret-token",
                                 NULL};
    assert_int_equal(uws_fx_request(&t, "PUT", "/job", "application/json", body, sizeof body, right, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "100 Continue"));
    uws_resp_clear(&r);
    const char *const token[] = {"-H", "Authorization: Bearer s3cret-token", NULL};
    assert_int_equal(uws_fx_request(&t, "GET", "/job", NULL, NULL, 0, token, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 1);
    uws_resp_clear(&r);
    uws_fx_stop(&t);
}

/* IPv6 loopback, and routes right under the root (--base-path ""). */
static void test_ipv6_and_empty_base_path(void **state)
{
    (void)state;
    uws_fx t;
    const char *const extra[] = {"--listen", "[::1]:0", "--base-path", "", NULL};
    assert_int_equal(uws_fx_start(&t, NULL, extra), 0);
    snprintf(t.base, sizeof t.base, "http://[::1]:%u", t.port);
    uws_resp r;
    assert_int_equal(uws_fx_request(&t, "PUT", "/job", "application/json",
                                    "{\"command\": \"true\", \"replicas\": null}",
                                    strlen("{\"command\": \"true\", \"replicas\": null}"), NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_count(&t), 1);
    snprintf(t.base_path, sizeof t.base_path, "/api/v1");
    assert_int_equal(uws_fx_request(&t, "GET", "/job", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    uws_resp_clear(&r);
    uws_fx_stop(&t);
}

/* Not on a loopback address without a token: refused at start. */
static void test_non_loopback_needs_token(void **state)
{
    (void)state;
    char *dir = tu_make_temp_dir();
    char *st = tu_path_join(dir, "state");
    char *wr = tu_path_join(dir, "work");
    char *const argv[] = {OCPS_ENGINE, "--listen", "0.0.0.0:0", "--state-dir", st, "--work-root", wr, NULL};
    char *out = NULL;
    assert_int_equal(tu_run(argv, &out), 2); /* a usage error, */
    assert_non_null(strstr(out, "bearer token"));
    free(out);
    /* unless asked for (clients of uws-api-server send no token): it serves, warned */
    char *port_path = tu_path_join(dir, "port");
    char *const open_argv[] = {
        OCPS_ENGINE,   "--listen", "0.0.0.0:0",   "--state-dir", st,
        "--work-root", wr,         "--port-file", port_path,     "--allow-unauthenticated",
        NULL};
    char *log_path = tu_path_join(dir, "engine.log");
    int pid = tu_spawn(open_argv, log_path);
    assert_true(pid > 0);
    char *port = NULL;
    for (int k = 0; k < 100 && (port = tu_read_file(port_path, NULL)) == NULL; k++) {
        usleep(50000);
    }
    assert_non_null(port);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/job", atoi(port));
    char *const curl[] = {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url, NULL};
    assert_int_equal(tu_run(curl, &out), 0);
    assert_string_equal(out, "200");
    free(out);
    kill(pid, SIGTERM);
    assert_int_equal(tu_wait_exit(pid, 10), 0);
    char *log = tu_read_file(log_path, NULL);
    assert_non_null(strstr(log, "WARNING: --allow-unauthenticated"));
    free(log);
    free(port);
    free(log_path);
    free(port_path);
    tu_remove_tree(st); /* made: the next cases must find it absent */
    char *const bad[] = {OCPS_ENGINE, "--listen", "nonsense", "--state-dir", st, "--work-root", wr, NULL};
    assert_int_equal(tu_run(bad, &out), 2);
    free(out);
    assert_int_equal(access(st, F_OK), -1); /* found before anything was made */
    char *const usage[] = {OCPS_ENGINE, "--bogus", "1", NULL};
    assert_int_equal(tu_run(usage, &out), 2);
    free(out);
    char *const nan_grace[] = {OCPS_ENGINE, "--state-dir",   st,    "--work-root",
                               wr,          "--abort-grace", "nan", NULL};
    assert_int_equal(tu_run(nan_grace, &out), 2);
    assert_non_null(strstr(out, "--abort-grace nan"));
    free(out);
    /* a port file that cannot be written: it stops (whoever waits for it would wait forever) */
    char *const port_file[] = {OCPS_ENGINE,   "--listen", "127.0.0.1:0", "--state-dir",           st,
                               "--work-root", wr,         "--port-file", "/nonexistent-dir/port", NULL};
    assert_int_equal(tu_run(port_file, &out), 1);
    assert_non_null(strstr(out, "--port-file /nonexistent-dir/port"));
    free(out);
    tu_remove_tree(dir);
    free(st);
    free(wr);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_bodies),
        cmocka_unit_test(test_oversized_body),
        cmocka_unit_test(test_oversized_chunked_body),
        cmocka_unit_test(test_log_not_forged),
        cmocka_unit_test(test_hostile_paths),
        cmocka_unit_test(test_not_utf8_in_paths_and_queries),
        cmocka_unit_test(test_huge_headers),
        cmocka_unit_test(test_garbage_on_the_socket),
        cmocka_unit_test(test_slow_clients_leave_room_for_others),
        cmocka_unit_test(test_bearer_token),
        cmocka_unit_test(test_refused_before_the_body),
        cmocka_unit_test(test_ipv6_and_empty_base_path),
        cmocka_unit_test(test_non_loopback_needs_token),
    };
    /* OCPS_TEST_FILTER=NAME runs only that test (a cmocka pattern) */
    const char *filter = getenv("OCPS_TEST_FILTER");
    if (filter != NULL && *filter != '\0') {
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}
