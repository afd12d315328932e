/*
 * test_ocps_ra: index 101 (Rapid Analysis) over real DDS (or Kafka, the
 * _kafka variant) with ocps-csc 101 as a separate process and a real
 * redis-server started by the test (password, free loopback port):
 * execute's config object pushed with LPUSH in the object's order and read
 * back with hiredis; the job id, job_id event and job_result with the list
 * lengths; quotes, commas, UTF-8 and numbers kept; malformed configs
 * refused with nothing pushed; a partial failure naming the pushed keys;
 * abort_job refused clearly; the start failing on a missing variable, a
 * wrong password or no server; Redis killed and restarted while ENABLED
 * (fail fast, one logMessage, recovery, heartbeat kept) and paused with
 * DEBUG SLEEP during a push; the optional completion wait for
 * <INSTRUMENT>_WEP_PROCESSING_RESULT, found and timed out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "ocps/sal_csc.h"
#include "ocps_test_iface.h"
#include "redis_fixture.h"
#include "ocps_run.h"
#include "sal_fixture.h"
#include "test_util.h"

typedef struct ctx {
    fx f;
    redis_fx redis;
    char *root; /* DM_CONFIG_OCPS_DIR */
    redisContext *rc;
} ctx;

typedef or_run run;

/* --- set-up --- */

static int open_ctx(void **state, const char *site, const char *csc_state)
{
    ctx *c = calloc(1, sizeof *c);
    *state = c;
    c->redis.pid = -1;
    if (rfx_start(&c->redis) != 0) {
        fprintf(stderr, "cannot start redis-server\n");
        return -1;
    }
    c->rc = rfx_connect(&c->redis);
    c->root = tu_make_ocps_config();
    if (c->rc == NULL || c->root == NULL || tu_write_ocps_site(c->root, site != NULL ? site : "") != 0) {
        return -1;
    }
    fx_env(CYCLONE_CONFIG);
    setenv("DM_CONFIG_OCPS_DIR", c->root, 1);
    char port[16];
    snprintf(port, sizeof port, "%d", c->redis.port);
    setenv("REDIS_HOST", "127.0.0.1", 1);
    setenv("REDIS_PORT", port, 1);
    setenv("REDIS_PASSWORD", c->redis.password, 1);
    if (fx_open(&c->f, ocps_test_component(), 101, NULL) != 0) {
        return -1;
    }
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0.2", "--state", (char *)csc_state, "101", NULL};
    if (fx_start_csc(&c->f, argv) != 0) {
        return -1;
    }
    sal_state want = strcmp(csc_state, "enabled") == 0 ? SAL_STATE_ENABLED : SAL_STATE_STANDBY;
    size_t from = 0;
    long i;
    while ((i = fx_wait_event(&c->f, "logevent_summaryState", from, 20)) >= 0) {
        if (fx_i32(&c->f, (size_t)i, "summaryState") == (int32_t)want) {
            return 0;
        }
        from = (size_t)i + 1;
    }
    fprintf(stderr, "the CSC did not reach state %s\n", csc_state);
    return -1;
}

static int setup(void **state)
{
    return open_ctx(state, NULL, "enabled");
}

static int setup_standby(void **state)
{
    return open_ctx(state, NULL, "standby");
}

static int setup_wait(void **state)
{
    return open_ctx(state,
                    "rapid_analysis:\n  completion_wait: true\n  completion_timeout: 10\n"
                    "  completion_poll_interval: 0.1\n",
                    "enabled");
}

static int setup_wait_short(void **state)
{
    return open_ctx(state,
                    "rapid_analysis:\n  completion_wait: true\n  completion_timeout: 1\n"
                    "  completion_poll_interval: 0.1\n",
                    "enabled");
}

static int setup_wait_slow_poll(void **state)
{
    return open_ctx(state,
                    "rapid_analysis:\n  completion_wait: true\n  completion_timeout: 1\n"
                    "  completion_poll_interval: 10\n  command_timeout: 1\n",
                    "enabled");
}

static int setup_command_timeout(void **state)
{
    return open_ctx(state, "rapid_analysis:\n  command_timeout: 1\n", "enabled");
}

static int teardown(void **state)
{
    ctx *c = *state;
    int rc = fx_close(&c->f);
    redisFree(c->rc);
    rfx_stop(&c->redis);
    tu_remove_tree(c->root);
    free(c->root);
    free(c);
    unsetenv("REDIS_HOST");
    unsetenv("REDIS_PORT");
    unsetenv("REDIS_PASSWORD");
    return rc;
}

/* --- commanding --- */

static void execute_send(fx *f, run *r, const char *config)
{
    or_fields x = {.config = config};
    assert_int_equal(or_execute(f, r, &x, 60), 0);
}

/* execute(config) and wait for its final ack. */
static void execute(fx *f, run *r, const char *config, double timeout)
{
    execute_send(f, r, config);
    if (!fx_run_until(f, or_done, r, timeout)) {
        fail_msg("execute did not end in %.0f s", timeout);
    }
}

/* --- reading back --- */

/* The list at key, newest first (LRANGE 0 -1); n elements in out. */
static size_t lrange(ctx *c, const char *key, char out[][512], size_t max)
{
    redisReply *rep = redisCommand(c->rc, "LRANGE %s 0 -1", key);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    size_t n = 0;
    for (; n < rep->elements && n < max; n++) {
        snprintf(out[n], 512, "%.*s", (int)rep->element[n]->len, rep->element[n]->str);
    }
    freeReplyObject(rep);
    return n;
}

static long long dbsize(ctx *c)
{
    redisReply *rep = redisCommand(c->rc, "DBSIZE");
    assert_non_null(rep);
    long long n = rep->integer;
    freeReplyObject(rep);
    return n;
}

typedef struct result_wait {
    const char *id;
    long index;
} result_wait;

static bool result_seen(fx *f, void *arg)
{
    result_wait *w = arg;
    int t = sal_component_find_topic(f->comp, "logevent_job_result");
    for (size_t i = 0; i < f->nrecords; i++) {
        if (f->records[i].topic == t && strcmp(or_record_string(f, i, "job_id"), w->id) == 0) {
            w->index = (long)i;
            return true;
        }
    }
    return false;
}

/* The job's job_result, parsed. */
static json_t *job_result(fx *f, const char *id, int *exit_code)
{
    result_wait w = {id, -1};
    assert_true(fx_run_until(f, result_seen, &w, 5));
    *exit_code = fx_i32(f, (size_t)w.index, "exit_code");
    json_t *j = json_loads(or_record_string(f, (size_t)w.index, "result"), 0, NULL);
    assert_non_null(j);
    return j;
}

/* logMessage records from `from` on whose message contains `text`. */
static int log_count(fx *f, size_t from, const char *text)
{
    int t = sal_component_find_topic(f->comp, "logevent_logMessage");
    int n = 0;
    for (size_t i = from; i < f->nrecords; i++) {
        if (f->records[i].topic == t && strstr(or_record_string(f, i, "message"), text) != NULL) {
            n++;
        }
    }
    return n;
}

static int summary_changes(fx *f, size_t from)
{
    int t = sal_component_find_topic(f->comp, "logevent_summaryState");
    int n = 0;
    for (size_t i = from; i < f->nrecords; i++) {
        n += f->records[i].topic == t;
    }
    return n;
}

/* --- tests --- */

#define DONUT "LSSTComCam-FROM-OCS_DONUTPAIR"
#define CWFS "LSSTCam-FROM-OCS_CWFS" /* MTAOS's corner-sensor image */
#define SWEEP "LSSTCam-FROM-OCS_FOCUSSWEEP"

/* The three deployed key shapes; LPUSH: the newest is first. */
static void pushes_deployed_key_shapes_in_order(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    size_t mark = f->nrecords;
    run r;
    execute(f, &r,
            "{\"" DONUT "\": \"2025111500227,2025111500228\", \"" CWFS "\": \"2025111500300\", \"" SWEEP
            "\": \"2025111500301,2025111500302,2025111500303\"}",
            10);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    print_message("execute acknowledged in %.1f ms\n", (r.done_at - r.sent_at) * 1e3);
    /* INPROGRESS with the job id, then the job_id event */
    assert_int_equal(r.acks[0].ack, SAL_CMD_INPROGRESS);
    assert_int_equal(strlen(r.job_id), 32);
    long jid = fx_wait_event(f, "logevent_job_id", mark, 5);
    assert_true(jid >= 0);
    assert_string_equal(or_record_string(f, (size_t)jid, "job_id"), r.job_id);
    assert_string_equal(or_record_string(f, (size_t)jid, "event_name"), "cmd_execute");
    /* what Rapid Analysis reads */
    char got[4][512];
    assert_int_equal(lrange(c, DONUT, got, 4), 1);
    assert_string_equal(got[0], "2025111500227,2025111500228");
    assert_int_equal(lrange(c, CWFS, got, 4), 1);
    assert_string_equal(got[0], "2025111500300");
    assert_int_equal(lrange(c, SWEEP, got, 4), 1);
    assert_string_equal(got[0], "2025111500301,2025111500302,2025111500303");
    /* job_result: every key, in the object's order, with its list length */
    int exit_code;
    json_t *res = job_result(f, r.job_id, &exit_code);
    assert_int_equal(exit_code, 0);
    assert_string_equal(json_string_value(json_object_get(res, "jobId")), r.job_id);
    assert_string_equal(json_string_value(json_object_get(res, "phase")), "completed");
    json_t *pushed = json_object_get(res, "pushed");
    assert_int_equal(json_array_size(pushed), 3);
    const char *order[] = {DONUT, CWFS, SWEEP};
    for (size_t i = 0; i < 3; i++) {
        json_t *p = json_array_get(pushed, i);
        assert_string_equal(json_string_value(json_object_get(p, "key")), order[i]);
        assert_int_equal(json_integer_value(json_object_get(p, "list_length")), 1);
    }
    assert_int_equal(json_array_size(json_object_get(res, "not_pushed")), 0);
    json_decref(res);
    /* a second pair goes in front (LPUSH), the list grows */
    execute(f, &r, "{\"" DONUT "\": \"2025111500229,2025111500230\"}", 10);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    assert_int_equal(lrange(c, DONUT, got, 4), 2);
    assert_string_equal(got[0], "2025111500229,2025111500230");
    assert_string_equal(got[1], "2025111500227,2025111500228");
    json_t *summary = json_loads(r.result, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(summary, "job_id")), r.job_id);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(summary, "list_lengths"), 0)), 2);
    json_decref(summary);
    res = job_result(f, r.job_id, &exit_code);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(json_object_get(res, "pushed"), 0), "list_length")),
        2);
    json_decref(res);
}

static void values_keep_quotes_commas_utf8_and_numbers(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(
        f, &r,
        "{\"k-quotes\": \"he said \\\"hi\\\", 'twice'\", \"k-utf8\": \"caf\\u00e9 \xe6\x9d\xb1\xe4\xba\xac "
        "\xf0\x9f\x9a\x80, \\\\ back\", \"k-int\": 2025111500227, \"k-real\": 0.1, \"k-r1\": 100.0, "
        "\"k-r2\": 1500.0, \"k-r3\": 1e-05, \"k-r4\": 1e16, \"k-r5\": 123.456, \"k-r6\": 0.0001, "
        "\"k-r7\": -2.5, \"k-r8\": 1e15}",
        10);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    char got[2][512];
    assert_int_equal(lrange(c, "k-quotes", got, 2), 1);
    assert_string_equal(got[0], "he said \"hi\", 'twice'");
    assert_int_equal(lrange(c, "k-utf8", got, 2), 1);
    assert_string_equal(got[0], "caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x9a\x80, \\ back");
    assert_int_equal(lrange(c, "k-int", got, 2), 1);
    assert_string_equal(got[0], "2025111500227");
    assert_int_equal(lrange(c, "k-real", got, 2), 1);
    assert_string_equal(got[0], "0.1");
    /* reals as Python's str() writes them (what the Python OCPS pushed) */
    static const char *const reals[][2] = {
        {"k-r1", "100.0"},   {"k-r2", "1500.0"}, {"k-r3", "1e-05"}, {"k-r4", "1e+16"},
        {"k-r5", "123.456"}, {"k-r6", "0.0001"}, {"k-r7", "-2.5"},  {"k-r8", "1000000000000000.0"}};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        assert_int_equal(lrange(c, reals[i][0], got, 2), 1);
        assert_string_equal(got[0], reals[i][1]);
    }
}

static void malformed_config_fails_and_pushes_nothing(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    char big[1100];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char oversize[1300];
    snprintf(oversize, sizeof oversize, "{\"ok-key\": \"1\", \"big\": \"%s\"}", big);
    const struct {
        const char *config;
        const char *reason;
    } cases[] = {
        {"{\"" DONUT "\": \"1,2\"", "not valid JSON"},
        {"", "not valid JSON"},
        {"[\"" DONUT "\", \"1,2\"]", "must be a JSON object"},
        {"\"" DONUT "\"", "must be a JSON object"},
        {"{}", "1 to 64 keys"},
        {"{\"ok-key\": \"1\", \"\": \"2\"}", "key 2 is empty"},
        {oversize, "the value of big is longer than 1024 bytes"},
        {"{\"ok-key\": \"1\", \"nested\": {\"a\": 1}}", "the value of nested must be a string or a number"},
        {"{\"ok-key\": \"1\", \"flag\": true}", "must be a string or a number (it is a boolean)"},
        {"{\"ok-key\": \"1\", \"ok-key\": \"2\"}", "duplicate"},
        {"{\"ok-key\": \"a\\u0001b\"}", "control character"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run r;
        execute(f, &r, cases[i].config, 10);
        print_message("%s\n", r.result);
        assert_int_equal(r.ack, SAL_CMD_FAILED);
        assert_int_equal(r.nacks, 1); /* no job, no INPROGRESS */
        if (strstr(r.result, cases[i].reason) == NULL || strstr(r.result, "nothing was pushed") == NULL) {
            fail_msg("case %zu: '%s' does not say '%s' and 'nothing was pushed'", i, r.result,
                     cases[i].reason);
        }
    }
    assert_int_equal(dbsize(c), 0);
}

/* ackcmd.result is a string<256> on DDS: acks about long keys stay within
 * it (cut with "..."), the whole story is in job_result. */
static void long_keys_keep_acks_within_256_bytes(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    char key[257];
    memset(key, 'k', 256);
    key[256] = '\0';
    char config[8192];
    snprintf(config, sizeof config, "{\"%s\": true}", key);
    run r;
    execute(f, &r, config, 10);
    print_message("%zu bytes: %s\n", strlen(r.result), r.result);
    assert_int_equal(r.ack, SAL_CMD_FAILED);
    assert_true(strlen(r.result) <= 255);
    assert_non_null(strstr(r.result, "Failed: execute.config: the value of kkkk"));
    assert_string_equal(r.result + strlen(r.result) - 3, "...");
    /* ten 60-byte keys pushed: the final ack is still JSON with the count */
    size_t used = (size_t)snprintf(config, sizeof config, "{");
    for (int i = 0; i < 10; i++) {
        used += (size_t)snprintf(config + used, sizeof config - used, "%s\"LSSTCam-FROM-OCS_%042d\": \"%d\"",
                                 i ? ", " : "", i, i);
    }
    snprintf(config + used, sizeof config - used, "}");
    execute(f, &r, config, 10);
    print_message("%zu bytes: %s\n", strlen(r.result), r.result);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    assert_true(strlen(r.result) <= 255);
    json_t *summary = json_loads(r.result, 0, NULL);
    assert_non_null(summary);
    assert_int_equal(json_integer_value(json_object_get(summary, "pushed_count")), 10);
    json_decref(summary);
    int exit_code;
    json_t *res = job_result(f, r.job_id, &exit_code);
    assert_int_equal(json_array_size(json_object_get(res, "pushed")), 10);
    json_decref(res);
}

/* One push refused by Redis (the key holds a string): the others are
 * pushed, and the failure names both. */
static void partial_failure_names_pushed_keys(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    redisReply *rep = redisCommand(c->rc, "SET %s %s", "b-string", "not a list");
    freeReplyObject(rep);
    run r;
    execute(f, &r, "{\"a-list\": \"1\", \"b-string\": \"2\", \"c-list\": \"3\"}", 10);
    print_message("%s\n", r.result);
    assert_int_equal(r.ack, SAL_CMD_FAILED);
    assert_non_null(
        strstr(r.result, "pushed 2 of 3 keys; not pushed: b-string: Redis refused it: WRONGTYPE"));
    assert_non_null(strstr(r.result, "; pushed: a-list (list length 1), c-list (list length 1)"));
    char got[2][512];
    assert_int_equal(lrange(c, "a-list", got, 2), 1);
    assert_int_equal(lrange(c, "c-list", got, 2), 1);
    int exit_code;
    json_t *res = job_result(f, r.job_id, &exit_code);
    assert_int_equal(exit_code, 1);
    assert_string_equal(json_string_value(json_object_get(res, "phase")), "error");
    assert_int_equal(json_array_size(json_object_get(res, "pushed")), 2);
    json_t *np = json_array_get(json_object_get(res, "not_pushed"), 0);
    assert_string_equal(json_string_value(json_object_get(np, "key")), "b-string");
    assert_true(json_is_false(json_object_get(np, "may_have_been_pushed"))); /* refused: surely not */
    json_decref(res);
}

static void abort_job_fails_clearly(void **state)
{
    ctx *c = *state;
    char result[2048];
    int ack = fx_command_str(&c->f, "abort_job", "job_id", "0123456789abcdef0123456789abcdef", 10, result,
                             sizeof result);
    assert_int_equal(ack, SAL_CMD_FAILED);
    assert_non_null(strstr(result, "abort_job is not supported by index 101 (Rapid Analysis)"));
    assert_non_null(strstr(result, "nothing to abort"));
}

/* start from STANDBY; returns the ack and its result. */
static int start_command(ctx *c, char *result, size_t len)
{
    return fx_command(&c->f, "start", NULL, 30, result, len);
}

/* Stop the CSC (SIGTERM: it writes OFFLINE on its way out), start a new
 * one (argv) and wait for the new one's first summaryState: the old one's
 * OFFLINE may still come in (Kafka) and is not it. */
static void restart_csc(ctx *c, char *argv[])
{
    kill(c->f.csc_pid, SIGTERM);
    assert_true(tu_wait_exit(c->f.csc_pid, 10) >= 0);
    size_t from = c->f.nrecords;
    assert_int_equal(fx_start_csc(&c->f, argv), 0);
    assert_true(fx_wait_csc_event(&c->f, "logevent_summaryState", from, 20) >= 0);
}

static void start_fails_without_host_or_password(void **state)
{
    ctx *c = *state;
    char result[2048];
    const char *port = getenv("REDIS_PORT");
    char saved_port[16];
    snprintf(saved_port, sizeof saved_port, "%s", port);
    /* the CSC read its environment at exec: start another one per case */
    const char *vars[] = {"REDIS_HOST", "REDIS_PASSWORD"};
    for (size_t v = 0; v < 2; v++) {
        setenv("REDIS_HOST", "127.0.0.1", 1);
        setenv("REDIS_PASSWORD", c->redis.password, 1);
        unsetenv(vars[v]);
        char *argv[] = {OCPS_CSC, "--duplicate-check", "0.2", "101", NULL};
        restart_csc(c, argv);
        int ack = start_command(c, result, sizeof result);
        print_message("%s\n", result);
        assert_int_equal(ack, SAL_CMD_FAILED);
        char expect[64];
        snprintf(expect, sizeof expect, "%s is not set", vars[v]);
        assert_non_null(strstr(result, expect));
    }
    setenv("REDIS_HOST", "127.0.0.1", 1);
    setenv("REDIS_PASSWORD", c->redis.password, 1);
}

static void start_fails_with_wrong_password(void **state)
{
    ctx *c = *state;
    setenv("REDIS_PASSWORD", "not-the-password", 1);
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0.2", "101", NULL};
    restart_csc(c, argv);
    char result[2048];
    int ack = start_command(c, result, sizeof result);
    print_message("%s\n", result);
    assert_int_equal(ack, SAL_CMD_FAILED);
    assert_non_null(strstr(result, "refused the password (REDIS_PASSWORD)"));
    assert_non_null(strstr(result, "WRONGPASS"));
    /* the right one: the same CSC starts */
    setenv("REDIS_PASSWORD", c->redis.password, 1);
}

static void start_fails_when_redis_is_unreachable(void **state)
{
    ctx *c = *state;
    rfx_kill(&c->redis);
    char result[2048];
    double t0 = tu_now();
    int ack = start_command(c, result, sizeof result);
    print_message("%s (after %.2f s)\n", result, tu_now() - t0);
    assert_int_equal(ack, SAL_CMD_FAILED);
    assert_non_null(strstr(result, "did not answer PING"));
    assert_non_null(strstr(result, "Connection refused"));
    /* Redis back: the next start succeeds */
    assert_int_equal(rfx_start(&c->redis), 0);
    ack = start_command(c, result, sizeof result);
    assert_int_equal(ack, SAL_CMD_COMPLETE);
}

/* Redis asleep (DEBUG SLEEP 3) during start: the PING is answered late,
 * the start completes then, and the heartbeat never stops meanwhile (the
 * configure hook answers SAL_CONFIGURE_PENDING). */
static void start_waits_for_a_slow_redis_without_blocking(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    size_t mark = f->nrecords;
    int cli = rfx_pause(&c->redis, 3);
    assert_true(cli > 0);
    fx_run_for(f, 0.3);
    char result[2048];
    double t0 = tu_now();
    int ack = start_command(c, result, sizeof result);
    double took = tu_now() - t0;
    print_message("start during DEBUG SLEEP 3: %s after %.2f s\n", result, took);
    assert_int_equal(ack, SAL_CMD_COMPLETE);
    assert_true(took > 2.0);
    fx_run_for(f, 1.5);
    double sent_gap;
    double arrival_gap;
    int n = fx_heartbeat_gaps(f, mark, &sent_gap, &arrival_gap);
    print_message("%d heartbeats, largest gap %.3f s sent, %.3f s received\n", n, sent_gap, arrival_gap);
    assert_true(n >= 3);
    assert_true(sent_gap <= 1.5);
    assert_true(tu_wait_exit(cli, 5) >= 0);
}

static bool log_seen(fx *f, void *arg)
{
    const char **what = arg;
    return log_count(f, (size_t)(uintptr_t)what[1], what[0]) > 0;
}

/* Redis killed while ENABLED: execute fails fast, the CSC stays ENABLED and
 * says so once; Redis restarted: it reconnects and pushes again; the
 * heartbeat never stops. */
static void redis_killed_and_restarted_while_enabled(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(f, &r, "{\"" CWFS "\": \"1\"}", 10);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    size_t mark = f->nrecords;
    rfx_kill(&c->redis);
    const char *down[] = {"is down", (const char *)(uintptr_t)mark};
    assert_true(fx_run_until(f, log_seen, down, 5));
    for (int k = 0; k < 3; k++) {
        execute(f, &r, "{\"" CWFS "\": \"2\"}", 10);
        print_message("while down: %s after %.1f ms\n", r.result, (r.done_at - r.sent_at) * 1e3);
        assert_int_equal(r.ack, SAL_CMD_FAILED);
        assert_true(r.done_at - r.sent_at < 1.0);
        assert_non_null(strstr(r.result, "is not reachable"));
        assert_non_null(strstr(r.result, "nothing was pushed"));
        assert_non_null(strstr(r.result, "stays ENABLED"));
    }
    fx_run_for(f, 3); /* reconnection attempts with backoff */
    assert_int_equal(log_count(f, mark, "is down"), 1);
    assert_int_equal(summary_changes(f, mark), 0);
    double restarted = tu_now();
    assert_int_equal(rfx_start(&c->redis), 0);
    redisFree(c->rc);
    c->rc = rfx_connect(&c->redis);
    const char *back[] = {"is back; execute works again", (const char *)(uintptr_t)mark};
    assert_true(fx_run_until(f, log_seen, back, 10));
    double reconnected = tu_now() - restarted;
    print_message("reconnected %.2f s after the restart\n", reconnected);
    assert_true(reconnected < 4.0); /* attempts at least every 2 s */
    execute(f, &r, "{\"" CWFS "\": \"3\"}", 10);
    print_message("after the restart: %s\n", r.result);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    char got[2][512];
    assert_int_equal(lrange(c, CWFS, got, 2), 1); /* the server lost its data: no persistence */
    assert_string_equal(got[0], "3");
    fx_run_for(f, 1.5); /* the last heartbeats arrive */
    double span = tu_now() - f->records[mark].at;
    double sent_gap;
    double arrival_gap;
    int n = fx_heartbeat_gaps(f, mark, &sent_gap, &arrival_gap);
    print_message("%d heartbeats in %.1f s, largest gap %.3f s sent, %.3f s received\n", n, span, sent_gap,
                  arrival_gap);
    assert_true(n >= (int)span - 2);
    assert_true(sent_gap <= 1.5);
    assert_int_equal(summary_changes(f, mark), 0);
}

/* Redis asleep (DEBUG SLEEP 3) when the push is sent: the execute ends
 * once Redis answers, the heartbeat goes on meanwhile. */
static void redis_paused_during_push(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    size_t mark = f->nrecords;
    int cli = rfx_pause(&c->redis, 3);
    assert_true(cli > 0);
    fx_run_for(f, 0.3);
    run r;
    execute(f, &r, "{\"" DONUT "\": \"10,11\"}", 15);
    double took = r.done_at - r.sent_at;
    print_message("execute during DEBUG SLEEP 3 ended after %.2f s\n", took);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    assert_true(took > 2.0);
    assert_int_equal(r.acks[0].ack, SAL_CMD_INPROGRESS);
    fx_run_for(f, 1.5);
    double sent_gap;
    double arrival_gap;
    int n = fx_heartbeat_gaps(f, mark, &sent_gap, &arrival_gap);
    print_message("%d heartbeats, largest gap %.3f s sent, %.3f s received\n", n, sent_gap, arrival_gap);
    assert_true(n >= 3);
    assert_true(sent_gap <= 1.5);
    assert_true(tu_wait_exit(cli, 5) >= 0);
    char got[2][512];
    assert_int_equal(lrange(c, DONUT, got, 2), 1);
}

/* command_timeout 1 s, Redis asleep for 3: the execute fails after about
 * 1 s saying nothing was acknowledged; the client reconnects. */
static void push_not_acknowledged_in_time_fails(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    int cli = rfx_pause(&c->redis, 3);
    fx_run_for(f, 0.3);
    run r;
    execute(f, &r, "{\"" DONUT "\": \"12,13\"}", 15);
    print_message("%s after %.2f s\n", r.result, r.done_at - r.sent_at);
    assert_int_equal(r.ack, SAL_CMD_FAILED);
    assert_non_null(
        strstr(r.result, "pushed 0 of 1 keys; unknown whether pushed: " DONUT ": no reply from Redis"));
    assert_non_null(strstr(r.result, "; pushed: none"));
    assert_non_null(strstr(r.result, "within 1.0 s"));
    assert_true(r.done_at - r.sent_at < 2.5);
    int exit_code;
    json_t *res = job_result(f, r.job_id, &exit_code);
    assert_int_equal(exit_code, 1);
    json_t *np = json_array_get(json_object_get(res, "not_pushed"), 0);
    assert_true(json_is_true(json_object_get(np, "may_have_been_pushed")));
    json_decref(res);
    assert_true(tu_wait_exit(cli, 5) >= 0);
    /* and so it was: Redis ran the LPUSH once it woke (a caller that sends
     * it again queues the pair twice) */
    char got[2][512];
    assert_int_equal(lrange(c, DONUT, got, 2), 1);
    assert_string_equal(got[0], "12,13");
    const char *back[] = {"is back; execute works again", (const char *)(uintptr_t)0};
    assert_true(fx_run_until(f, log_seen, back, 10));
    execute(f, &r, "{\"" DONUT "\": \"14,15\"}", 10);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
}

/* Redis stopped (SIGSTOP: the connection stays open, nothing answers, as
 * when its node dies or the network splits) while no job is running: the
 * CSC's PING of the idle connection (every command_timeout, here 1 s)
 * gets no reply, so the CSC says Redis is down within a few seconds and
 * an execute fails at once instead of waiting command_timeout; SIGCONT:
 * back. */
static void silent_redis_noticed_while_idle(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    size_t mark = f->nrecords;
    assert_int_equal(kill(c->redis.pid, SIGSTOP), 0);
    double t0 = tu_now();
    const char *down[] = {"is down", (const char *)(uintptr_t)mark};
    bool seen = fx_run_until(f, log_seen, down, 6);
    double took = tu_now() - t0;
    run r;
    if (seen) {
        execute(f, &r, "{\"" CWFS "\": \"4\"}", 10);
    }
    kill(c->redis.pid, SIGCONT);
    print_message("a silent Redis noticed after %.2f s\n", took);
    assert_true(seen);
    assert_true(took < 4.0); /* a PING within 1 s, its reply awaited 1 s */
    assert_int_equal(r.ack, SAL_CMD_FAILED);
    assert_true(r.done_at - r.sent_at < 1.0);
    assert_non_null(strstr(r.result, "is not reachable"));
    const char *back[] = {"is back; execute works again", (const char *)(uintptr_t)mark};
    assert_true(fx_run_until(f, log_seen, back, 10));
    assert_int_equal(summary_changes(f, mark), 0);
}

/* completion_wait: a stand-in Rapid Analysis worker writes the WEP result
 * for the intra-focal visit 1 s after the push. */
static void completion_wait_reports_the_record(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute_send(f, &r, "{\"LSSTCam-FROM-OCS_DONUTPAIR\": \"2025111500227,2025111500228\"}");
    fx_run_for(f, 1.0);
    assert_false(r.done);
    char got[2][512];
    assert_int_equal(lrange(c, "LSSTCam-FROM-OCS_DONUTPAIR", got, 2), 1);
    redisReply *rep = redisCommand(c->rc, "HSET LSSTCAM_WEP_PROCESSING_RESULT 2025111500227 19");
    freeReplyObject(rep);
    assert_true(fx_run_until(f, or_done, &r, 10));
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    int exit_code;
    json_t *res = job_result(f, r.job_id, &exit_code);
    char *text = json_dumps(res, JSON_COMPACT);
    print_message("%s\n", text);
    free(text);
    assert_int_equal(exit_code, 0);
    json_t *w = json_array_get(json_object_get(res, "completion"), 0);
    assert_string_equal(json_string_value(json_object_get(w, "hash")), "LSSTCAM_WEP_PROCESSING_RESULT");
    assert_string_equal(json_string_value(json_object_get(w, "visit")), "2025111500227");
    assert_true(json_is_true(json_object_get(w, "found")));
    assert_string_equal(json_string_value(json_object_get(w, "zernike_count")), "19");
    double waited = json_number_value(json_object_get(res, "completion_wait_time"));
    assert_true(waited >= 0.5 && waited < 5);
    json_decref(res);
}

static void completion_wait_times_out_with_a_reason(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(f, &r, "{\"LSSTCam-FROM-OCS_DONUTPAIR\": \"2025111500300,2025111500301\"}", 10);
    print_message("%s\n", r.result);
    assert_int_equal(r.ack, SAL_CMD_FAILED);
    assert_non_null(
        strstr(r.result, "no LSSTCAM_WEP_PROCESSING_RESULT record for visit 2025111500300 within 1.0 s"));
    assert_non_null(strstr(r.result, "every key was pushed"));
    int exit_code;
    json_t *res = job_result(f, r.job_id, &exit_code);
    assert_int_equal(exit_code, 1);
    assert_string_equal(json_string_value(json_object_get(res, "reason")), "timeout");
    assert_false(
        json_is_true(json_object_get(json_array_get(json_object_get(res, "completion"), 0), "found")));
    json_decref(res);
    /* keys Rapid Analysis answers with no record do not wait: the focus
     * sweep, MTAOS's single corner-sensor image */
    execute(f, &r, "{\"LSSTCam-FROM-OCS_FOCUSSWEEP\": \"1,2\"}", 10);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    assert_true(r.done_at - r.sent_at < 1.0);
    execute(f, &r, "{\"" CWFS "\": \"2025111500302\"}", 10);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    assert_true(r.done_at - r.sent_at < 1.0);
    /* nor the spec's name for it, which nobody sends (it waited) */
    execute(f, &r, "{\"LSSTCam-FROM-OCS_CWFSIMAGE\": \"2025111500303\"}", 10);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    assert_true(r.done_at - r.sent_at < 1.0);
}

/* Rapid Analysis adds 5000000000000 to LSSTComCamSim's visit ids before
 * it stores the record (rubintv_production _extractExposureIds): the wait
 * reads the shifted id (it read the id as written and timed out). */
static void completion_wait_finds_comcamsim_shifted_record(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    redisReply *rep = redisCommand(c->rc, "HSET LSSTCOMCAMSIM_WEP_PROCESSING_RESULT 7024111500227 9");
    freeReplyObject(rep);
    run r;
    execute(f, &r, "{\"LSSTComCamSim-FROM-OCS_DONUTPAIR\": \"2024111500227,2024111500228\"}", 15);
    print_message("%s\n", r.result);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    assert_true(r.done_at - r.sent_at < 5.0);
    int exit_code;
    json_t *res = job_result(f, r.job_id, &exit_code);
    json_t *w = json_array_get(json_object_get(res, "completion"), 0);
    assert_string_equal(json_string_value(json_object_get(w, "hash")), "LSSTCOMCAMSIM_WEP_PROCESSING_RESULT");
    assert_string_equal(json_string_value(json_object_get(w, "visit")), "7024111500227");
    assert_string_equal(json_string_value(json_object_get(w, "zernike_count")), "9");
    json_decref(res);
}

/* A record that cannot be read (the hash's key holds a string: HGET gets
 * WRONGTYPE) is named in the timeout's reason, not only "no record". */
static void completion_poll_error_is_in_the_reason(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    redisReply *rep = redisCommand(c->rc, "SET LSSTCAM_WEP_PROCESSING_RESULT not-a-hash");
    freeReplyObject(rep);
    run r;
    execute(f, &r, "{\"LSSTCam-FROM-OCS_DONUTPAIR\": \"2025111500400,2025111500401\"}", 10);
    print_message("%s\n", r.result);
    assert_int_equal(r.ack, SAL_CMD_FAILED);
    assert_non_null(strstr(r.result, "within 1.0 s (completion_timeout); the last poll: HGET "
                                     "LSSTCAM_WEP_PROCESSING_RESULT 2025111500400: WRONGTYPE"));
}

/* A poll error naming a long non-ASCII instrument is cut at a character:
 * the reason keeps its end (a byte cut there made the reason end at it,
 * losing the pushed keys). */
static void completion_poll_error_keeps_the_reason_whole(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    char instrument[256] = "x";
    for (int i = 0; i < 100; i++) {
        strcat(instrument, "\xc3\x89"); /* U+00C9, unchanged by toupper */
    }
    char hash[320];
    snprintf(hash, sizeof hash, "%s_WEP_PROCESSING_RESULT", instrument);
    hash[0] = 'X';
    redisReply *rep = redisCommand(c->rc, "SET %s not-a-hash", hash);
    freeReplyObject(rep);
    char config[512];
    snprintf(config, sizeof config, "{\"%s-FROM-OCS_DONUTPAIR\": \"2025111500500,2025111500501\"}",
             instrument);
    run r;
    execute(f, &r, config, 10);
    assert_int_equal(r.ack, SAL_CMD_FAILED);
    int exit_code;
    json_t *res = job_result(f, r.job_id, &exit_code);
    const char *why = json_string_value(json_object_get(json_object_get(res, "errorSummary"), "message"));
    print_message("%s\n", why);
    assert_non_null(strstr(why, "(completion_timeout); the last poll: HGET X"));
    assert_non_null(strstr(why, "; every key was pushed: x"));
    json_decref(res);
}

/* An execute waiting for its completion record while the operator goes
 * to STANDBY and a start fails (Redis down: the CSC is left with no
 * client): the wait goes on without one, the next start's client takes
 * over, and the record then ends the execute (the CSC dereferenced the
 * missing client and died). */
static void completion_wait_survives_a_failed_start(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute_send(f, &r, "{\"LSSTCam-FROM-OCS_DONUTPAIR\": \"2025111500231,2025111500232\"}");
    fx_run_for(f, 0.5);
    assert_false(r.done);
    char result[2048];
    assert_int_equal(fx_command(f, "disable", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    assert_int_equal(fx_command(f, "standby", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    rfx_kill(&c->redis);
    assert_int_equal(start_command(c, result, sizeof result), SAL_CMD_FAILED);
    fx_run_for(f, 1.0); /* polls due meanwhile (every 0.1 s) */
    assert_false(r.done);
    assert_int_equal(rfx_start(&c->redis), 0);
    redisFree(c->rc);
    c->rc = rfx_connect(&c->redis);
    assert_non_null(c->rc);
    assert_int_equal(start_command(c, result, sizeof result), SAL_CMD_COMPLETE);
    redisReply *rep = redisCommand(c->rc, "HSET LSSTCAM_WEP_PROCESSING_RESULT 2025111500231 19");
    freeReplyObject(rep);
    assert_true(fx_run_until(f, or_done, &r, 10));
    print_message("%s\n", r.result);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    int exit_code;
    json_t *res = job_result(f, r.job_id, &exit_code);
    assert_int_equal(exit_code, 0);
    assert_true(strchr(json_string_value(json_object_get(res, "redis")), ':') != NULL); /* where it went */
    json_decref(res);
}

/* A poll interval longer than the completion timeout: the last poll is at
 * the deadline, so the execute ends then, within the timeout its
 * INPROGRESS ack gave (it ended a whole poll interval later, after the
 * Remote had given up). */
static void completion_timeout_kept_with_a_slow_poll(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(f, &r, "{\"LSSTCam-FROM-OCS_DONUTPAIR\": \"2025111500301,2025111500302\"}", 20);
    assert_int_equal(r.acks[0].ack, SAL_CMD_INPROGRESS);
    print_message("%s after %.2f s (INPROGRESS timeout %.1f s)\n", r.result, r.done_at - r.sent_at,
                  r.acks[0].timeout);
    assert_int_equal(r.ack, SAL_CMD_FAILED);
    assert_non_null(strstr(r.result, "within 1.0 s (completion_timeout)"));
    assert_true(r.done_at - r.sent_at < 4.0);
    assert_true(r.done_at - r.sent_at < r.acks[0].timeout);
    /* abort_job says how an execute ends in this mode */
    char result[2048];
    assert_int_equal(fx_command_str(f, "abort_job", "job_id", r.job_id, 10, result, sizeof result),
                     SAL_CMD_FAILED);
    assert_non_null(strstr(result, "ends when the completion record comes or completion_timeout passes"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(pushes_deployed_key_shapes_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(values_keep_quotes_commas_utf8_and_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_config_fails_and_pushes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(long_keys_keep_acks_within_256_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(partial_failure_names_pushed_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_job_fails_clearly, setup, teardown),
        cmocka_unit_test_setup_teardown(start_fails_without_host_or_password, setup_standby, teardown),
        cmocka_unit_test_setup_teardown(start_fails_with_wrong_password, setup_standby, teardown),
        cmocka_unit_test_setup_teardown(start_fails_when_redis_is_unreachable, setup_standby, teardown),
        cmocka_unit_test_setup_teardown(start_waits_for_a_slow_redis_without_blocking, setup_standby,
                                        teardown),
        cmocka_unit_test_setup_teardown(redis_killed_and_restarted_while_enabled, setup, teardown),
        cmocka_unit_test_setup_teardown(redis_paused_during_push, setup, teardown),
        cmocka_unit_test_setup_teardown(push_not_acknowledged_in_time_fails, setup_command_timeout, teardown),
        cmocka_unit_test_setup_teardown(silent_redis_noticed_while_idle, setup_command_timeout, teardown),
        cmocka_unit_test_setup_teardown(completion_wait_reports_the_record, setup_wait, teardown),
        cmocka_unit_test_setup_teardown(completion_wait_survives_a_failed_start, setup_wait, teardown),
        cmocka_unit_test_setup_teardown(completion_wait_times_out_with_a_reason, setup_wait_short, teardown),
        cmocka_unit_test_setup_teardown(completion_wait_finds_comcamsim_shifted_record, setup_wait, teardown),
        cmocka_unit_test_setup_teardown(completion_poll_error_is_in_the_reason, setup_wait_short, teardown),
        cmocka_unit_test_setup_teardown(completion_poll_error_keeps_the_reason_whole, setup_wait_short,
                                        teardown),
        cmocka_unit_test_setup_teardown(completion_timeout_kept_with_a_slow_poll, setup_wait_slow_poll,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
