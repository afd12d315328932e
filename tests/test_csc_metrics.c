/*
 * test_csc_metrics: the CSC's optional Prometheus /metrics, with ocps-csc
 * as a separate process (over DDS, or Kafka with OCPS_TEST_TRANSPORT):
 * scraped with curl and parsed by prometheus_client (tests/metrics_parse.py,
 * Debian's python3), the counters move by exactly what a state cycle, a
 * failed command and an execute (fake-pipetask on the local engine) did;
 * the heartbeat keeps its 1 s cadence while /metrics is scraped hard;
 * without --metrics-listen nothing listens; a bad address, or a port in
 * use, stops the start with a clear message; the command line wins over
 * OCPS_METRICS_LISTEN; the backend gauges follow a real ocps-engine
 * (executor uws) and, for index 101, a real redis-server going away and
 * coming back.
 */
#include <dirent.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ocps/sal_csc.h"
#include "ocps_run.h"
#include "ocps_test_iface.h"
#include "sal_fixture.h"
#include "test_util.h"
#include "uws_fixture.h"
#ifdef OCPS_TEST_REDIS
#include "redis_fixture.h"
#endif

typedef struct ctx {
    fx f;
    char *root; /* DM_CONFIG_OCPS_DIR */
    char work[600];
    unsigned port;
} ctx;

/* GET /metrics with curl, parsed by prometheus_client: name{labels} -> value. */
static json_t *scrape(unsigned port)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "curl -sf --max-time 5 http://127.0.0.1:%u/metrics | '%s' '%s'", port,
             DEBIAN_PYTHON3, METRICS_PARSE);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    json_error_t e;
    json_t *m = json_loadf(p, 0, &e);
    int status = pclose(p);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        skip();
    }
    if (m == NULL) {
        fail_msg("scrape of port %u: no parsable metrics (%s; exit status %d)", port, e.text, status);
    }
    return m;
}

/* A sample's value ("name{k=v,...}", labels sorted); 0 when absent. */
static double val(json_t *m, const char *fmt, ...)
{
    char key[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    json_t *v = json_object_get(m, key);
    return v != NULL ? json_number_value(v) : 0;
}

static double delta(json_t *m0, json_t *m1, const char *key)
{
    return val(m1, "%s", key) - val(m0, "%s", key);
}

/* TCP sockets in LISTEN state held by process `pid` (/proc/net/tcp{,6}
 * inodes against the process's socket descriptors). */
static int listening_sockets(int pid)
{
    unsigned long inodes[256];
    size_t n = 0;
    const char *tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(tables[i], "r");
        if (f == NULL) {
            continue;
        }
        char line[512];
        while (fgets(line, sizeof line, f) != NULL && n < 256) {
            char state[8];
            unsigned long inode;
            if (sscanf(line, " %*s %*s %*s %7s %*s %*s %*s %*s %*s %lu", state, &inode) == 2 &&
                strcmp(state, "0A") == 0) {
                inodes[n++] = inode;
            }
        }
        fclose(f);
    }
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char path[400], target[128];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        ssize_t len = readlink(path, target, sizeof target - 1);
        unsigned long inode;
        if (len <= 0) {
            continue;
        }
        target[len] = '\0';
        if (sscanf(target, "socket:[%lu]", &inode) == 1) {
            for (size_t i = 0; i < n; i++) {
                count += inodes[i] == inode;
            }
        }
    }
    closedir(d);
    return count;
}

static void make_config(ctx *c)
{
    c->root = tu_make_ocps_config();
    assert_non_null(c->root);
    snprintf(c->work, sizeof c->work, "%s/jobs", c->root);
    char site[4096];
    snprintf(site, sizeof site,
             "work_root: %s\npipetask: %s\nretrieve_command: []\ninprogress_interval: "
             "1\nmax_concurrent_jobs: 2\nabort_grace: 2\n",
             c->work, FAKE_PIPETASK);
    assert_int_equal(tu_write_ocps_site(c->root, site), 0);
}

/* Start ocps-csc 1 (STANDBY) with `metrics` ("" none) as --metrics-listen. */
static int start(ctx *c, const char *metrics)
{
    char *argv[8];
    int n = 0;
    argv[n++] = OCPS_CSC;
    argv[n++] = "--duplicate-check";
    argv[n++] = "0.2";
    if (metrics[0] != '\0') {
        argv[n++] = "--metrics-listen";
        argv[n++] = (char *)metrics;
    }
    argv[n++] = "1";
    argv[n] = NULL;
    if (fx_start_csc(&c->f, argv) != 0) {
        return -1;
    }
    return fx_wait_event(&c->f, "logevent_summaryState", 0, 15) >= 0 ? 0 : -1;
}

static int setup_ctx(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    *state = c;
    make_config(c);
    fx_env(CYCLONE_CONFIG);
    setenv("DM_CONFIG_OCPS_DIR", c->root, 1);
    return fx_open(&c->f, ocps_test_component(), 1, NULL);
}

static int setup(void **state)
{
    if (setup_ctx(state) != 0) {
        return -1;
    }
    ctx *c = *state;
    c->port = tu_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", c->port);
    setenv("OCPS_METRICS_LISTEN", "not an address", 1); /* the command line wins */
    int rc = start(c, listen);
    unsetenv("OCPS_METRICS_LISTEN");
    return rc;
}

static int setup_off(void **state)
{
    if (setup_ctx(state) != 0) {
        return -1;
    }
    unsetenv("OCPS_METRICS_LISTEN");
    return start(*state, "");
}

static int teardown(void **state)
{
    ctx *c = *state;
    int rc = fx_close(&c->f);
    tu_remove_tree(c->root);
    free(c->root);
    free(c);
    return rc;
}

/* Send a command, adding the INPROGRESS acks it got to *inprogress. */
static int command(ctx *c, const char *name, int *inprogress)
{
    fx_ack acks[32];
    size_t n = 0;
    int ack = fx_command_acks(&c->f, name, NULL, 30, acks, 32, &n);
    for (size_t i = 0; i < n && i < 32; i++) {
        *inprogress += acks[i].ack == SAL_CMD_INPROGRESS;
    }
    return ack;
}

/* The heartbeat counter between two scrapes, the first over [a0, a1]
 * and the second over [b0, b1] (tu_now): one a second, so as many as
 * whole seconds fit between them. (Not their private_seqNum: re-published
 * heartbeats for late-joining readers take seqNums too.) */
static void check_heartbeats(json_t *m0, double a0, double a1, json_t *m1, double b0, double b1)
{
    double d = delta(m0, m1, "ocps_csc_heartbeats_total{}");
    double lo = b0 - a1, hi = b1 - a0;
    printf("# %.0f heartbeats counted in %.3f..%.3f s\n", d, lo, hi);
    if (d < (double)(long)lo - 1e-9 || d > (double)(long)hi + 1) {
        fail_msg("%.0f heartbeats counted between scrapes %.3f..%.3f s apart", d, lo, hi);
    }
}

static void test_counts(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    assert_int_equal(listening_sockets(f->csc_pid), 1);
    double a0 = tu_now();
    json_t *m0 = scrape(c->port);
    double a1 = tu_now();
    assert_true(val(m0, "ocps_csc_heartbeats_total{}") >= 1);
    assert_true(val(m0, "ocps_csc_summary_state{state=STANDBY}") == 1);
    assert_true(val(m0, "ocps_csc_summary_state{state=ENABLED}") == 0);
    assert_true(val(m0, "process_start_time_seconds{}") > 1.7e9);
    json_t *info = NULL;
    const char *key;
    json_object_foreach(m0, key, info)
    {
        if (strncmp(key, "ocps_csc_info{", 14) == 0) {
            assert_non_null(strstr(key, "index=1,"));
            assert_non_null(strstr(key, "name=OCPS,"));
            break;
        }
    }
    assert_non_null(info);

    int inprogress = 0;
    char result[256];
    assert_int_equal(command(c, "enable", &inprogress), SAL_CMD_FAILED); /* not in STANDBY */
    assert_int_equal(command(c, "start", &inprogress), SAL_CMD_COMPLETE);
    assert_int_equal(command(c, "enable", &inprogress), SAL_CMD_COMPLETE);
    or_run r;
    char err[256];
    sal_remote_prepare(f->remote, "execute", err, sizeof err);
    or_fields x = {"cpBias.yaml", "", "visit=7", "", ""};
    assert_int_equal(or_execute(f, &r, &x, 60), 0);
    assert_true(fx_run_until(f, or_done, &r, 60));
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    for (size_t i = 0; i < r.nacks && i < OR_MAX_ACKS; i++) {
        inprogress += r.acks[i].ack == SAL_CMD_INPROGRESS;
    }
    /* job_result comes before the final ack: the job is counted ended */
    json_t *mid = scrape(c->port);
    assert_true(val(mid, "ocps_csc_summary_state{state=ENABLED}") == 1);
    assert_non_null(json_object_get(mid, "ocps_csc_jobs{phase=executing}"));
    assert_true(val(mid, "ocps_csc_jobs{phase=executing}") == 0);
    assert_true(val(mid, "ocps_csc_queue_length{}") == 0);
    assert_true(val(mid, "ocps_csc_waiting_jobs{}") == 0);
    assert_true(val(mid, "ocps_csc_max_waiting_jobs{}") == 10000); /* max_waiting_jobs' default */
    assert_true(val(mid, "ocps_csc_jobs_refused_total{}") == 0);
    json_decref(mid);
    assert_int_equal(command(c, "disable", &inprogress), SAL_CMD_COMPLETE);
    assert_int_equal(command(c, "standby", &inprogress), SAL_CMD_COMPLETE);
    (void)result;
    fx_run_for(f, 2.5); /* room for heartbeats between the scrapes */
    double b0 = tu_now();
    json_t *m1 = scrape(c->port);
    double b1 = tu_now();
    check_heartbeats(m0, a0, a1, m1, b0, b1);

    static const struct {
        const char *key;
        double delta;
    } want[] = {
        {"ocps_csc_commands_received_total{command=enable}", 2},
        {"ocps_csc_commands_received_total{command=start}", 1},
        {"ocps_csc_commands_received_total{command=execute}", 1},
        {"ocps_csc_commands_received_total{command=disable}", 1},
        {"ocps_csc_commands_received_total{command=standby}", 1},
        {"ocps_csc_commands_received_total{command=abort_job}", 0},
        {"ocps_csc_commands_total{ack=FAILED,command=enable}", 1},
        {"ocps_csc_commands_total{ack=COMPLETE,command=enable}", 1},
        {"ocps_csc_commands_total{ack=COMPLETE,command=start}", 1},
        {"ocps_csc_commands_total{ack=COMPLETE,command=execute}", 1},
        {"ocps_csc_commands_total{ack=COMPLETE,command=disable}", 1},
        {"ocps_csc_commands_total{ack=COMPLETE,command=standby}", 1},
        {"ocps_csc_acks_sent_total{ack=COMPLETE}", 5},
        {"ocps_csc_acks_sent_total{ack=FAILED}", 1},
        {"ocps_csc_acks_sent_total{ack=NOPERM}", 0},
        {"ocps_csc_jobs_ended_total{phase=completed}", 1},
        {"ocps_csc_jobs_ended_total{phase=error}", 0},
        {"ocps_csc_job_duration_seconds_count{}", 1},
        {"ocps_csc_job_duration_seconds_bucket{le=+Inf}", 1},
        {"ocps_csc_transport_errors_total{kind=write}", 0},
        {"ocps_csc_transport_errors_total{kind=undecodable}", 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        double d = delta(m0, m1, want[i].key);
        if (d != want[i].delta) {
            fail_msg("%s moved by %g, not %g", want[i].key, d, want[i].delta);
        }
    }
    /* INPROGRESS acks: as many as the Remote read; ackcmd samples: every ack */
    assert_true(inprogress >= 1);
    double ip = delta(m0, m1, "ocps_csc_acks_sent_total{ack=INPROGRESS}");
    if (ip != inprogress) {
        fail_msg("INPROGRESS acks: counted %g, read %d", ip, inprogress);
    }
    assert_true(delta(m0, m1, "ocps_csc_samples_written_total{kind=ackcmd}") == 6 + inprogress);
    assert_true(delta(m0, m1, "ocps_csc_samples_written_total{kind=event}") >= 4); /* 4 summaryStates */
    assert_true(val(m1, "ocps_csc_summary_state{state=STANDBY}") == 1);
    double sum = val(m1, "ocps_csc_job_duration_seconds_sum{}");
    assert_true(sum >= 0 && sum < 60);
    /* the engine's gauges stay once it exists */
    assert_non_null(json_object_get(m1, "ocps_csc_jobs{phase=queued}"));
    json_decref(m0);
    json_decref(m1);
}

/* Scrapes as fast as curl goes for `seconds` while the test reads the
 * heartbeats: the CSC's loop keeps its cadence. */
static void test_heartbeat_under_scrapes(void **state)
{
    ctx *c = *state;
    size_t from = c->f.nrecords;
    char script[1024];
    /* four curl loops at once */
    snprintf(script, sizeof script,
             "end=$(($(date +%%s) + 5)); scrape() { n=0; while [ $(date +%%s) -lt $end ]; do "
             "curl -sf -o /dev/null http://127.0.0.1:%u/metrics || exit 1; n=$((n+1)); done; "
             "echo \"# $n scrapes\"; }; scrape & p1=$!; scrape & p2=$!; scrape & p3=$!; scrape & p4=$!; "
             "wait $p1 && wait $p2 && wait $p3 && wait $p4",
             c->port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    fx_run_for(&c->f, 5.5);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    double sent_gap, arrival_gap;
    int n = fx_heartbeat_gaps(&c->f, from, &sent_gap, &arrival_gap);
    printf("# %d heartbeats while scraped; largest gap %.3f s sent, %.3f s read\n", n, sent_gap, arrival_gap);
    assert_true(n >= 4);
    assert_true(sent_gap < 1.25);
}

/* Without --metrics-listen (and OCPS_METRICS_LISTEN) nothing listens. */
static void test_off(void **state)
{
    ctx *c = *state;
    fx_run_for(&c->f, 0.5);
    assert_int_equal(listening_sockets(c->f.csc_pid), 0);
}

/* ocps-csc's exit status and stderr for a metrics address. */
static int run_csc(const char *cli, const char *env, char *out, size_t len)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s%s%s '%s' --duplicate-check -1 %s%s 1 2>&1",
             env ? "OCPS_METRICS_LISTEN='" : "", env ? env : "", env ? "'" : "", OCPS_CSC,
             cli ? "--metrics-listen " : "", cli ? cli : "");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_bad_address(void **state)
{
    (void)state;
    fx_env(CYCLONE_CONFIG);
    char out[4096];
    assert_int_equal(run_csc("127.0.0.1", NULL, out, sizeof out), 64);
    assert_non_null(strstr(out, "--metrics-listen 127.0.0.1: expected ADDR:PORT"));
    assert_int_equal(run_csc("example.org:9100", NULL, out, sizeof out), 64);
    assert_non_null(strstr(out, "--metrics-listen example.org:9100: not an IPv4 address (ADDR is one, "
                                "localhost, or [IPv6]; not a host name)"));
    assert_int_equal(run_csc(NULL, "[::1:9100", out, sizeof out), 64);
    assert_non_null(strstr(out, "OCPS_METRICS_LISTEN [::1:9100"));
    /* a port in use: the start fails, before the transport opens */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s, 1), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &alen), 0);
    char busy[64];
    snprintf(busy, sizeof busy, "127.0.0.1:%u", ntohs(a.sin_port));
    assert_int_equal(run_csc(NULL, busy, out, sizeof out), 1);
    assert_non_null(strstr(out, "cannot listen there"));
    close(s);
}

/* Start ocps-csc `index` ENABLED (--state enabled) with /metrics on a free
 * loopback port (c->port); fails the test unless it reports ENABLED. */
static void start_enabled(ctx *c, const char *index)
{
    c->port = tu_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", c->port);
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0.2", "--state", "enabled", "--metrics-listen",
                    listen,   (char *)index,       NULL};
    assert_int_equal(fx_start_csc(&c->f, argv), 0);
    assert_int_equal(or_wait_enabled(&c->f, 0, 20), 0);
}

/* Scrape until `key` has `want` (at most `seconds`); its last value. */
static double wait_value(ctx *c, const char *key, double want, double seconds)
{
    double v = -1;
    for (double end = tu_now() + seconds; tu_now() < end;) {
        json_t *m = scrape(c->port);
        v = json_object_get(m, key) != NULL ? val(m, "%s", key) : -1;
        json_decref(m);
        if (v == want) {
            break;
        }
        fx_run_for(&c->f, 0.2);
    }
    return v;
}

#ifdef OCPS_TEST_REDIS
/* Index 101 (Rapid Analysis): only the Redis backend, up while
 * redis-server runs, down once it is killed, up again after it restarts. */
static void test_redis_backend(void **state)
{
    (void)state;
    ctx c = {0};
    redis_fx r = {.pid = -1};
    assert_int_equal(rfx_start(&r), 0);
    c.root = tu_make_ocps_config();
    assert_non_null(c.root);
    assert_int_equal(tu_write_ocps_site(c.root, ""), 0);
    fx_env(CYCLONE_CONFIG);
    setenv("DM_CONFIG_OCPS_DIR", c.root, 1);
    char port[16];
    snprintf(port, sizeof port, "%d", r.port);
    setenv("REDIS_HOST", "127.0.0.1", 1);
    setenv("REDIS_PORT", port, 1);
    setenv("REDIS_PASSWORD", r.password, 1);
    assert_int_equal(fx_open(&c.f, ocps_test_component(), 101, NULL), 0);
    start_enabled(&c, "101");
    const char *up = "ocps_csc_backend_up{backend=redis}";
    assert_true(wait_value(&c, up, 1, 10) == 1);
    json_t *m = scrape(c.port);
    assert_null(json_object_get(m, "ocps_csc_backend_up{backend=uws}"));
    assert_null(json_object_get(m, "ocps_csc_backend_up{backend=slurm}"));
    assert_null(json_object_get(m, "ocps_csc_queue_length{}")); /* no engine for index 101 */
    const char *key;
    json_t *v;
    bool info = false;
    json_object_foreach(m, key, v)
    {
        info |= strncmp(key, "ocps_csc_info{index=101,", 24) == 0;
    }
    assert_true(info);
    json_decref(m);
    rfx_kill(&r);
    assert_true(wait_value(&c, up, 0, 15) == 0);
    assert_int_equal(rfx_start(&r), 0);
    assert_true(wait_value(&c, up, 1, 30) == 1);
    assert_int_equal(fx_close(&c.f), 0);
    rfx_stop(&r);
    tu_remove_tree(c.root);
    free(c.root);
    unsetenv("REDIS_HOST");
    unsetenv("REDIS_PORT");
    unsetenv("REDIS_PASSWORD");
}
#endif

/* Executor uws against a real ocps-engine: the uws backend gauge only,
 * down once a request to the killed server fails, up once one is
 * answered again after its restart. */
static void test_uws_backend(void **state)
{
    (void)state;
    ctx c = {0};
    uws_fx server = {0};
    assert_int_equal(uws_fx_start(&server, NULL, NULL), 0);
    c.root = tu_make_ocps_config();
    assert_non_null(c.root);
    snprintf(c.work, sizeof c.work, "%s/jobs", c.root);
    char site[4096];
    snprintf(
        site, sizeof site,
        "work_root: %s\npipetask: %s\nretrieve_command: []\ninprogress_interval: 1\nmax_concurrent_jobs: 2\n"
        "executor: uws\nuws_api: ocps-engine\n"
        "instances:\n  - sal_index: 1\n    instance: LATISS\n    url: %s/api/v1\n    poll_interval: 0.2\n"
        "    butler: LATISS\n    input_collection: LATISS/raw/all\n    output_glob: '*.fits'\n",
        c.work, FAKE_PIPETASK, server.base);
    assert_int_equal(tu_write_ocps_site(c.root, site), 0);
    fx_env(CYCLONE_CONFIG);
    setenv("DM_CONFIG_OCPS_DIR", c.root, 1);
    assert_int_equal(fx_open(&c.f, ocps_test_component(), 1, NULL), 0);
    start_enabled(&c, "1");
    const char *up = "ocps_csc_backend_up{backend=uws}";
    char err[256];
    sal_remote_prepare(c.f.remote, "execute", err, sizeof err);
    or_run r1, r2;
    or_fields x = {"cpBias.yaml", "", "visit=7", "", ""};
    assert_int_equal(or_execute(&c.f, &r1, &x, 60), 0);
    assert_true(fx_run_until(&c.f, or_done, &r1, 60));
    assert_int_equal(r1.ack, SAL_CMD_COMPLETE);
    json_t *m = scrape(c.port);
    assert_true(val(m, "%s", up) == 1);
    assert_null(json_object_get(m, "ocps_csc_backend_up{backend=redis}"));
    assert_null(json_object_get(m, "ocps_csc_backend_up{backend=slurm}"));
    assert_true(val(m, "ocps_csc_jobs_ended_total{phase=completed}") == 1);
    json_decref(m);
    uws_fx_kill(&server);
    assert_int_equal(or_execute(&c.f, &r2, &x, 120), 0); /* its submission fails and is retried */
    assert_true(wait_value(&c, up, 0, 20) == 0);
    char same[64]; /* the port the CSC is configured with (the fixture picks a new one otherwise) */
    snprintf(same, sizeof same, "127.0.0.1:%u", server.port);
    const char *extra[] = {"--listen", same, NULL};
    assert_int_equal(uws_fx_restart(&server, extra), 0);
    assert_true(wait_value(&c, up, 1, 30) == 1);
    assert_true(fx_run_until(&c.f, or_done, &r2, 60));
    assert_int_equal(fx_close(&c.f), 0);
    uws_fx_stop(&server);
    tu_remove_tree(c.root);
    free(c.root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_under_scrapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_off, setup_off, teardown),
        cmocka_unit_test(test_bad_address),
        cmocka_unit_test(test_uws_backend),
#ifdef OCPS_TEST_REDIS
        cmocka_unit_test(test_redis_backend),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
