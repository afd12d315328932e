/*
 * test_csc_liveness: what observers and scripts rely on between commands,
 * over real DDS with ocps-csc as a separate process: a 1 Hz heartbeat (also while
 * the reader of its stderr stalls), a
 * late-joining Remote that still learns the current summaryState at once,
 * a burst of late joiners causing one re-publication round (DDS),
 * commands for another SAL index or with private_seqNum <= 0 ignored
 * without harm, and a second instance with the same index refusing to run
 * (every time, before it reports a state), while a lone CSC reports its
 * first summaryState quickly despite the duplicate check.
 */
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ocps_test_iface.h"
#include "ocps/sal_csc.h"
#include "ocps/sal_json.h"
#include "sal_fixture.h"
#include "test_util.h"

static int setup_csc(void **state, char *state_arg)
{
    fx *f = calloc(1, sizeof *f);
    fx_env(CYCLONE_CONFIG);
    if (fx_open(f, ocps_test_component(), 1, NULL) != 0) {
        return -1;
    }
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0.2", "--state", state_arg, "1", NULL};
    if (fx_start_csc(f, argv) != 0) {
        return -1;
    }
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_csc(state, "standby");
}

static int setup_disabled(void **state)
{
    return setup_csc(state, "disabled");
}

static int setup_enabled(void **state)
{
    return setup_csc(state, "enabled");
}

static int teardown(void **state)
{
    int rc = fx_close(*state);
    free(*state);
    return rc;
}

static void heartbeat_at_one_hertz(void **state)
{
    fx *f = *state;
    long first = fx_wait_event(f, "logevent_heartbeat", 0, 15);
    assert_true(first >= 0);
    double t0 = f->records[first].at;
    fx_run_for(f, 10.0 - (tu_now() - t0));
    int n = 0;
    int32_t last_seq = 0;
    double worst_gap = 0;
    double prev = 0;
    for (size_t i = (size_t)first; i < f->nrecords; i++) {
        if (strcmp(f->comp->topics[f->records[i].topic].sal_name, "logevent_heartbeat") != 0) {
            continue;
        }
        int32_t seq = fx_i32(f, i, "private_seqNum");
        if (n > 0) {
            assert_int_equal(seq, last_seq + 1);
            worst_gap = f->records[i].at - prev > worst_gap ? f->records[i].at - prev : worst_gap;
        }
        last_seq = seq;
        prev = f->records[i].at;
        n++;
    }
    print_message("%d heartbeats in 10 s, largest gap %.3f s\n", n, worst_gap);
    assert_true(n >= 9);
    assert_true(worst_gap < 1.5);
}

/* stderr on a FIFO whose reader never reads (journald or a log shipper
 * stuck), its buffer one page: the CSC, logging at DEBUG through state
 * cycles, keeps its 1 Hz heartbeat and answers its commands; its log lines
 * are dropped, not waited for. */
static void heartbeat_while_stderr_reader_stalls(void **state)
{
    (void)state;
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    fx_env(CYCLONE_CONFIG);
    assert_int_equal(fx_open(f, ocps_test_component(), 1, NULL), 0);
    char fifo[128];
    snprintf(fifo, sizeof fifo, "/tmp/ocps-csc-stall-%d.fifo", (int)getpid());
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    int reader = open(fifo, O_RDONLY | O_NONBLOCK); /* open, never read */
    assert_true(reader >= 0);
    fcntl(reader, F_SETPIPE_SZ, 4096); /* full sooner; the least Linux gives */
    char *argv[] = {OCPS_CSC,  "--duplicate-check", "0.2", "--loglevel", "10",
                    "--state", "standby",           "1",   NULL};
    f->csc_pid = tu_spawn(argv, fifo); /* stdout and stderr on the FIFO */
    assert_true(f->csc_pid > 0);
    long first = fx_wait_event(f, "logevent_heartbeat", 0, 15);
    assert_true(first >= 0);
    double t0 = tu_now();
    int cycles = 0;
    char failed[1200] = "";
    while (failed[0] == '\0' && tu_now() - t0 < 8) {
        static const char *const cmds[] = {"start", "standby"};
        for (size_t i = 0; i < 2 && failed[0] == '\0'; i++) {
            char result[1024];
            int got = fx_command(f, cmds[i], NULL, 5, result, sizeof result);
            if (got != SAL_CMD_COMPLETE) {
                snprintf(failed, sizeof failed, "%s %d: got %s (%s)", cmds[i], cycles, sal_ack_name(got),
                         result);
            }
        }
        cycles++;
    }
    fx_run_for(f, 10.0 - (tu_now() - t0));
    double sent_gap = 0, arrival_gap = 0;
    int n = fx_heartbeat_gaps(f, (size_t)first, &sent_gap, &arrival_gap);
    print_message("%d state cycles, %d heartbeats, largest gap %.3f s sent, %.3f s arrived\n", cycles, n,
                  sent_gap, arrival_gap);
    int closed = fx_close(f); /* a CSC stuck in write() is killed */
    free(f);
    close(reader);
    unlink(fifo);
    if (failed[0] != '\0') {
        fail_msg("%s", failed);
    }
    assert_true(n >= 9);
    assert_true(sent_gap < 1.5);
    assert_int_equal(closed, 0);
}

static bool has_summary(fx *f, void *arg)
{
    (void)arg;
    return sal_remote_last(f->remote, "logevent_summaryState") != NULL;
}

/* A new Remote learns the CSC's current summaryState (`expected`) at once. */
static void late_joiner_sees(fx *f, int expected)
{
    /* wait until the CSC has reached DISABLED */
    long i = -1;
    size_t from = 0;
    while ((i = fx_wait_event(f, "logevent_summaryState", from, 15)) >= 0 &&
           fx_i32(f, (size_t)i, "summaryState") != expected) {
        from = (size_t)i + 1;
    }
    assert_true(i >= 0);
    fx_run_for(f, 0.5);
    /* a new Remote, in a new participant, joins now */
    fx late;
    double t0 = tu_now();
    assert_int_equal(fx_open(&late, ocps_test_component(), 1, NULL), 0);
    bool got = fx_run_until(&late, has_summary, NULL, 5);
    double took = tu_now() - t0;
    print_message("late joiner got summaryState after %.3f s\n", took);
    assert_true(got);
    const void *s = sal_remote_last(late.remote, "logevent_summaryState");
    int t = sal_component_find_topic(late.comp, "logevent_summaryState");
    assert_int_equal(sal_sample_get_i32(&late.comp->topics[t], s, "summaryState"), expected);
    assert_true(took < 2.5); /* about 0.1 s idle; the round waits up to 0.5 s (sal.c) */
    late.csc_pid = -1;
    fx_close(&late);
}

static void late_joiner_reads_summary_state(void **state)
{
    late_joiner_sees(*state, SAL_STATE_DISABLED);
}

static void late_joiner_reads_enabled(void **state)
{
    late_joiner_sees(*state, SAL_STATE_ENABLED);
}

/* A sample other than a heartbeat arrived at or after *from. */
static bool news_seen(fx *f, void *arg)
{
    const size_t *from = arg;
    int hb = sal_component_find_topic(f->comp, "logevent_heartbeat");
    for (size_t i = *from; i < f->nrecords; i++) {
        if (f->records[i].topic != hb) {
            return true;
        }
    }
    return false;
}

/* Wait until nothing but heartbeats has arrived for `quiet` seconds. */
static bool wait_quiet(fx *f, double quiet, double timeout)
{
    double end = tu_now() + timeout;
    while (tu_now() < end) {
        size_t from = f->nrecords;
        if (!fx_run_until(f, news_seen, &from, quiet)) {
            return true;
        }
    }
    return false;
}

#define BURST 5

/* Every late Remote (their loops run here too) has read summaryState. */
static bool burst_informed(fx *f, void *arg)
{
    (void)f;
    fx *late = arg;
    bool all = true;
    for (int k = 0; k < BURST; k++) {
        uv_run(&late[k].loop, UV_RUN_NOWAIT);
        all = all && sal_remote_last(late[k].remote, "logevent_summaryState") != NULL;
    }
    return all;
}

static void burst_of_late_joiners_causes_one_round(void **state)
{
    fx *f = *state;
    long i = -1;
    size_t from = 0;
    while ((i = fx_wait_event(f, "logevent_summaryState", from, 15)) >= 0 &&
           fx_i32(f, (size_t)i, "summaryState") != SAL_STATE_ENABLED) {
        from = (size_t)i + 1;
    }
    assert_true(i >= 0);
    assert_true(wait_quiet(f, 1.0, 15));
    size_t mark = f->nrecords;
    /* BURST Remotes start together (LOVE, a ScriptQueue, the Watcher...) */
    fx late[BURST];
    for (int k = 0; k < BURST; k++) {
        assert_int_equal(fx_open(&late[k], f->comp, 1, NULL), 0);
    }
    bool informed = fx_run_until(f, burst_informed, late, 10);
    /* the round is over when nothing new comes for longer than a round
     * can be delayed (0.5 s) */
    bool quiet = informed && wait_quiet(f, 1.0, 15);
    for (int k = 0; k < BURST; k++) {
        fx_close(&late[k]);
    }
    assert_true(informed);
    assert_true(quiet);
    /* the existing Remote saw each event at most once more */
    int hb = sal_component_find_topic(f->comp, "logevent_heartbeat");
    int *count = calloc(f->comp->ntopics, sizeof *count);
    int total = 0;
    int topics = 0;
    for (size_t k = mark; k < f->nrecords; k++) {
        if (f->records[k].topic != hb) {
            topics += count[f->records[k].topic]++ == 0;
            total++;
        }
    }
    int summary = count[sal_component_find_topic(f->comp, "logevent_summaryState")];
    int most = 0;
    for (size_t t = 0; t < f->comp->ntopics; t++) {
        most = count[t] > most ? count[t] : most;
    }
    free(count);
    print_message("%d late joiners: an existing reader saw %d re-published samples (%d events, at most %d "
                  "each; heartbeats not counted)\n",
                  BURST, total, topics, most);
    if (strcmp(fx_transport(), "kafka") == 0) {
        assert_int_equal(total, 0); /* Kafka keeps history: nothing re-published */
    } else {
        /* one round (two if a slow machine spread the matches beyond a
         * round's 0.5 s), not one per late joiner (5) */
        assert_true(summary >= 1 && summary <= 2);
        assert_true(most >= 1 && most <= 2);
    }
}

static void wrong_index_and_bad_seqnum_are_ignored(void **state)
{
    fx *f = *state;
    char result[1024];
    assert_true(fx_wait_event(f, "logevent_summaryState", 0, 15) >= 0);

    /* a command addressed to OCPS:3 reaches OCPS:1's reader but is not its own */
    fx other;
    assert_int_equal(fx_open(&other, ocps_test_component(), 3, NULL), 0);
    assert_int_equal(fx_command(&other, "start", NULL, 1.5, result, sizeof result), SAL_CMD_NOACK);
    other.csc_pid = -1;
    fx_close(&other);

    /* private_seqNum 0 and -5: dropped with a log line, no ack, no crash */
    sal *s = sal_remote_sal(f->remote);
    int t = sal_remote_command_topic(f->remote, "start");
    char err[256];
    assert_int_equal(sal_writer_add(s, t, err, sizeof err), 0);
    fx_run_for(f, 0.5);
    int32_t bad[] = {0, -5};
    for (size_t k = 0; k < 2; k++) {
        void *cmd = sal_remote_new_command(f->remote, "start");
        sal_sample_set_i32(&f->comp->topics[t], cmd, "private_seqNum", bad[k]);
        assert_int_equal(sal_write(s, t, cmd, SAL_WRITE_KEEP_SEQNUM, err, sizeof err), 0);
        sal_sample_free(&f->comp->topics[t], cmd);
    }
    size_t mark = f->nrecords;
    fx_run_for(f, 1.0);
    for (size_t i = mark; i < f->nrecords; i++) {
        assert_string_not_equal(f->comp->topics[f->records[i].topic].sal_name, "logevent_summaryState");
    }
    /* still alive, still in STANDBY, still obeying */
    assert_int_equal(fx_command(f, "start", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    char *log = tu_read_file(f->log_path, NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, "Ignoring command_start with private_seqNum=0"));
    assert_non_null(strstr(log, "Ignoring command_start with private_seqNum=-5"));
    free(log);
}

static void second_instance_refuses_to_start(void **state)
{
    fx *f = *state;
    /* the first instance has finished its own check (its first heartbeat
     * now comes as the check begins) */
    assert_true(fx_wait_event(f, "logevent_summaryState", 0, 15) >= 0);
    char log[300];
    snprintf(log, sizeof log, "%s.second", f->log_path);
    unlink(log);
    char *argv[] = {OCPS_CSC, "--duplicate-check", "3", "1", NULL};
    int pid = tu_spawn(argv, log);
    /* keep reading so our Remote stays healthy meanwhile */
    int status = -1;
    double end = tu_now() + 10;
    while ((status = tu_wait_exit(pid, 0)) < 0 && tu_now() < end) {
        fx_run_for(f, 0.1);
    }
    if (status < 0) {
        tu_kill(pid);
    }
    assert_int_equal(status, 2);
    char *text = tu_read_file(log, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "quitting: found another instance with origin="));
    free(text);
    unlink(log);
    /* the first instance is unaffected */
    char result[1024];
    assert_int_equal(fx_command(f, "start", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
}

/* Two instances with the same pid, hence the same origin (each the first
 * process of its own PID namespace, as a CSC in a container is): the
 * second is refused all the same, its own heartbeats told from the
 * other's by their send times. Skipped where PID namespaces are not
 * allowed (unshare --pid needs root). */
static void second_instance_with_the_same_pid_is_refused(void **state)
{
    fx *f = *state;
    char *probe[] = {"unshare", "--pid", "--fork", "--kill-child", "true", NULL};
    if (tu_run(probe, NULL) != 0) {
        print_message("no PID namespace here (unshare --pid): skipped\n");
        skip();
    }
    char log1[300];
    char log2[300];
    snprintf(log1, sizeof log1, "/tmp/ocps-csc-test-%d-ns1.log", (int)getpid());
    snprintf(log2, sizeof log2, "/tmp/ocps-csc-test-%d-ns2.log", (int)getpid());
    char *argv[] = {"unshare", "--pid", "--fork", "--kill-child", OCPS_CSC, "--duplicate-check",
                    "3",       "1",     NULL};
    int first = tu_spawn(argv, log1);
    assert_true(first > 0);
    /* up, its check done: a summaryState of origin 1 (not one of an
     * earlier test's CSC from the topic's history) */
    const sal_topic_info *ss = &f->comp->topics[sal_component_find_topic(f->comp, "logevent_summaryState")];
    bool up = false;
    double until = tu_now() + 15;
    for (size_t k = 0; !up && tu_now() < until;) {
        fx_run_for(f, 0.05);
        for (; k < f->nrecords && !up; k++) {
            up = f->records[k].topic == ss - f->comp->topics &&
                 sal_sample_origin(ss, f->records[k].sample) == 1;
        }
    }
    assert_true(up);
    int second = tu_spawn(argv, log2);
    assert_true(second > 0);
    int status = -1;
    double end = tu_now() + 10;
    while ((status = tu_wait_exit(second, 0)) < 0 && tu_now() < end) {
        fx_run_for(f, 0.1);
    }
    bool first_alive = tu_wait_exit(first, 0) < 0;
    tu_kill(second);
    tu_kill(first);
    char *text = tu_read_file(log2, NULL);
    print_message("the second instance's log:\n%s\n", text ? text : "");
    assert_int_equal(status, 2);
    assert_non_null(text);
    assert_non_null(strstr(text, "with origin=1 quitting: found another instance with origin=1."));
    free(text);
    unlink(log1);
    unlink(log2);
    assert_true(first_alive);
}

/* The second instance is refused every time, before it reports a state. */
static void second_instance_refused_every_time(void **state)
{
    fx *f = *state;
    assert_true(fx_wait_event(f, "logevent_summaryState", 0, 15) >= 0);
    const sal_topic_info *ss = &f->comp->topics[sal_component_find_topic(f->comp, "logevent_summaryState")];
    char log[300];
    snprintf(log, sizeof log, "%s.again", f->log_path);
    double took[10];
    for (int run = 0; run < 10; run++) {
        unlink(log);
        char *argv[] = {OCPS_CSC, "1", NULL}; /* the default check (3 s) */
        double t0 = tu_now();
        int pid = tu_spawn(argv, log);
        int status = -1;
        double end = t0 + 10;
        while ((status = tu_wait_exit(pid, 0)) < 0 && tu_now() < end) {
            fx_run_for(f, 0.01);
        }
        took[run] = tu_now() - t0;
        if (status < 0) {
            tu_kill(pid);
        }
        char *text = tu_read_file(log, NULL);
        if (status != 2 && text != NULL) {
            fprintf(stderr, "--- run %d ---\n%s\n", run, text);
        }
        if (status != 2) {
            fail_msg("run %d: the second instance was not refused (status %d)", run, status);
        }
        assert_non_null(text);
        assert_non_null(strstr(text, "quitting: found another instance with origin="));
        free(text);
        /* it never reported a state */
        for (size_t k = 0; k < f->nrecords; k++) {
            if (f->records[k].topic == ss - f->comp->topics) {
                assert_int_not_equal(sal_sample_origin(ss, f->records[k].sample), pid);
            }
        }
    }
    unlink(log);
    double lo = took[0], hi = took[0], sum = 0;
    for (int run = 0; run < 10; run++) {
        lo = took[run] < lo ? took[run] : lo;
        hi = took[run] > hi ? took[run] : hi;
        sum += took[run];
    }
    printf("second instance refused 10/10 (%s): process start to exit min %.3f s, mean %.3f s, max %.3f s\n",
           fx_transport(), lo, sum / 10, hi);
    char result[1024];
    assert_int_equal(fx_command(f, "start", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
}

/* A frozen instance and its replacement: the first CSC is stopped
 * (SIGSTOP) long enough for a second one of the same index to pass its
 * start-up check, then continued. Two live instances would both run every
 * execute: one of them (the newer by heartbeats written) goes to FAULT
 * with errorCode SAL_CSC_ERROR_DUPLICATE within seconds, the other not. */
static void a_frozen_instance_and_its_replacement(void **state)
{
    fx *f = *state;
    assert_true(fx_wait_event(f, "logevent_summaryState", 0, 15) >= 0);
    fx_run_for(f, 3); /* the first has written a few heartbeats */
    assert_int_equal(kill(f->csc_pid, SIGSTOP), 0);
    char log[300];
    snprintf(log, sizeof log, "%s.replacement", f->log_path);
    unlink(log);
    char *argv[] = {OCPS_CSC, "--duplicate-check", "1", "1", NULL};
    int pid = tu_spawn(argv, log);
    assert_true(pid > 0);
    const sal_topic_info *ss = &f->comp->topics[sal_component_find_topic(f->comp, "logevent_summaryState")];
    size_t from = f->nrecords;
    long k = -1;
    double end = tu_now() + 15; /* the replacement reports its state */
    while (tu_now() < end) {
        k = fx_wait_event(f, "logevent_summaryState", from, 1);
        if (k >= 0 && sal_sample_origin(ss, f->records[k].sample) == pid) {
            break;
        }
        from = k >= 0 ? (size_t)k + 1 : from;
        k = -1;
    }
    fx_run_for(f, 2); /* past its start-up check (1 s), which ended early: the frozen one announces nothing */
    kill(f->csc_pid, SIGCONT);
    if (k < 0) {
        char *text = tu_read_file(log, NULL);
        tu_kill(pid);
        fail_msg("the replacement reported no state; its log:\n%s", text ? text : "");
    }
    const sal_topic_info *ec = &f->comp->topics[sal_component_find_topic(f->comp, "logevent_errorCode")];
    from = f->nrecords;
    long e = fx_wait_event(f, "logevent_errorCode", from, 6);
    fx_run_for(f, 2); /* the other would have faulted by now too */
    int faulted = 0;
    for (size_t i = from; i < f->nrecords; i++) {
        if (f->records[i].topic == ec - f->comp->topics) {
            int32_t origin = sal_sample_origin(ec, f->records[i].sample);
            assert_true(origin == pid || origin == f->csc_pid);
            faulted |= origin == pid ? 1 : 2;
        }
    }
    tu_kill(pid);
    char *text = tu_read_file(log, NULL);
    print_message("replacement's log:\n%s\n", text ? text : "");
    free(text);
    unlink(log);
    assert_true(e >= 0);
    assert_true(faulted == 1 || faulted == 2); /* one of them, not both */
    json_t *fields = sal_sample_to_json(ec, f->records[e].sample, false);
    assert_int_equal(json_integer_value(json_object_get(fields, "errorCode")), SAL_CSC_ERROR_DUPLICATE);
    assert_non_null(strstr(json_string_value(json_object_get(fields, "errorReport")),
                           "another live instance of this SAL index"));
    json_decref(fields);
}

/* Kafka: a CSC started while its schema registry cannot be reached (a
 * rollout) keeps trying (--open-retry, backoff from 1 s) and comes up once
 * the registry answers, registering its schemas there, instead of exiting
 * at once. */
static void csc_waits_for_a_registry_that_comes_up(void **state)
{
    fx *f = *state;
    if (strcmp(fx_transport(), "kafka") != 0 || fx_schema_registry_program() == NULL) {
        skip();
    }
    unsigned port = tu_free_port();
    assert_true(port > 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
    char *saved = strdup(getenv("LSST_SCHEMA_REGISTRY_URL"));
    setenv("LSST_SCHEMA_REGISTRY_URL", url, 1);
    char log[300];
    snprintf(log, sizeof log, "%s.retry", f->log_path);
    unlink(log);
    unsigned mport = tu_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", mport);
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0", "--metrics-listen", listen, "2", NULL};
    int csc = tu_spawn(argv, log);
    setenv("LSST_SCHEMA_REGISTRY_URL", saved, 1);
    free(saved);
    assert_true(csc > 0);
    fx_run_for(f, 2.5);                         /* nobody answers at that port meanwhile */
    assert_int_equal(tu_wait_exit(csc, 0), -1); /* still trying, not gone */
    /* its loop runs while it waits: /metrics answers */
    char metrics[96];
    snprintf(metrics, sizeof metrics, "http://%s/metrics", listen);
    char *mcurl[] = {"curl", "-sf", "-m", "2", metrics, NULL};
    char *mout = NULL;
    assert_int_equal(tu_run(mcurl, &mout), 0);
    assert_non_null(strstr(mout, "process_start_time_seconds"));
    free(mout);
    char portarg[16];
    snprintf(portarg, sizeof portarg, "%u", port);
    char *rargv[] = {(char *)fx_schema_registry_program(), "--port", portarg, NULL};
    int registry = tu_spawn(rargv, "/dev/null");
    assert_true(registry > 0);
    /* it registers every schema once the registry answers */
    long n = 0;
    double end = tu_now() + 30;
    while (n < (long)f->comp->ntopics && tu_now() < end) {
        fx_run_for(f, 0.5);
        n = tu_registry_subjects(url);
    }
    bool alive = tu_wait_exit(csc, 0) < 0;
    tu_kill(csc);
    tu_kill(registry);
    char *text = tu_read_file(log, NULL);
    print_message("the CSC's log:\n%s\n", text ? text : "");
    assert_non_null(text);
    assert_non_null(strstr(text, "cannot open the transport: "));
    assert_non_null(strstr(text, "trying again in 1 s"));
    free(text);
    unlink(log);
    assert_true(alive);
    assert_int_equal(n, (long)f->comp->ntopics);
}

/* Kafka: a CSC started while its broker is down (a summit power-up, a
 * Kafka upgrade) keeps trying (--open-retry) and comes up once the broker
 * is back: its summaryState reaches a Remote, and its log says why it
 * waited. */
static void csc_waits_for_a_broker_that_comes_up(void **state)
{
    fx *f = *state;
    if (strcmp(fx_transport(), "kafka") != 0) {
        skip();
    }
    char log[600];
    snprintf(log, sizeof log, "%s.broker", f->log_path[0] ? f->log_path : "/tmp/ocps-liveness");
    unlink(log);
    assert_int_equal(fx_broker_command(f, "down 1"), 0);
    size_t mark = f->nrecords;
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0", "1", NULL};
    int csc = tu_spawn(argv, log);
    assert_true(csc > 0);
    fx_run_for(f, 12);                      /* past a first attempt (its metadata request waits 10 s) */
    bool waited = tu_wait_exit(csc, 0) < 0; /* still trying, not gone */
    assert_int_equal(fx_broker_command(f, "up 1"), 0);
    long i = waited ? fx_wait_event(f, "logevent_summaryState", mark, 90) : -1;
    tu_kill(csc);
    char *text = tu_read_file(log, NULL);
    print_message("the CSC's log:\n%s\n", text ? text : "");
    assert_true(waited);
    assert_true(i >= 0);
    assert_non_null(text);
    assert_non_null(strstr(text, "cannot open the transport: "));
    free(text);
    unlink(log);
}

/* SASL credentials (as the summit's pods set them) in the environment of
 * the processes started until sasl_env_end, and `broker` (NULL: the test's
 * own) as their broker; sasl_env_end puts the test's environment back. */
typedef struct sasl_env {
    char *broker; /* the test's broker while another is set; NULL if none */
} sasl_env;

static void sasl_env_begin(sasl_env *e, const char *broker, const char *password)
{
    e->broker = NULL;
    if (broker != NULL) {
        e->broker = strdup(getenv("LSST_KAFKA_BROKER_ADDR"));
        setenv("LSST_KAFKA_BROKER_ADDR", broker, 1);
    }
    setenv("LSST_KAFKA_SECURITY_USERNAME", "ts-salkafka", 1);
    setenv("LSST_KAFKA_SECURITY_PASSWORD", password, 1);
}

static void sasl_env_end(sasl_env *e)
{
    if (e->broker != NULL) {
        setenv("LSST_KAFKA_BROKER_ADDR", e->broker, 1);
        free(e->broker);
        e->broker = NULL;
    }
    unsetenv("LSST_KAFKA_SECURITY_USERNAME");
    unsetenv("LSST_KAFKA_SECURITY_PASSWORD");
}

/* Kafka with SASL credentials (LSST_KAFKA_SECURITY_USERNAME/_PASSWORD, as
 * the summit's pods set them) against a broker that offers no SASL (the
 * test broker): the CSC keeps trying and says why, and librdkafka's own
 * lines are the CSC's log lines, one JSON object each with
 * OCPS_LOG_FORMAT=json (librdkafka wrote them raw, "%3|...|FAIL|...",
 * between the JSON lines). The mechanism named is salobj's default, so
 * the credentials reached the client. */
static void kafka_authentication_failure_is_logged_as_json(void **state)
{
    fx *f = *state;
    if (strcmp(fx_transport(), "kafka") != 0) {
        skip();
    }
    char log[300];
    snprintf(log, sizeof log, "%s.sasl", f->log_path);
    unlink(log);
    sasl_env env;
    sasl_env_begin(&env, NULL, "not-a-secret");
    setenv("OCPS_LOG_FORMAT", "json", 1);
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0", "2", NULL};
    int csc = tu_spawn(argv, log);
    sasl_env_end(&env);
    unsetenv("OCPS_LOG_FORMAT");
    assert_true(csc > 0);
    /* every line is JSON; wait (up to 15 s) for librdkafka's own line on
     * the refused login, logger rdkafka (the transport's is sal_kafka) */
    int lines = 0, authentication = 0, bad = 0;
    char bad_line[512] = "";
    double end = tu_now() + 15;
    while (authentication == 0 && bad == 0 && tu_now() < end) {
        fx_run_for(f, 0.5);
        char *text = tu_read_file(log, NULL);
        lines = 0;
        for (char *line = text ? strtok(text, "\n") : NULL; line != NULL; line = strtok(NULL, "\n")) {
            json_error_t jerr;
            json_t *obj = json_loads(line, 0, &jerr);
            const char *message = json_string_value(json_object_get(obj, "message"));
            const char *name = json_string_value(json_object_get(obj, "name"));
            if (!json_is_object(obj) || message == NULL || name == NULL) {
                bad++;
                snprintf(bad_line, sizeof bad_line, "%s", line);
            } else {
                authentication += strcmp(name, "rdkafka") == 0 && strstr(message, "SASL") != NULL &&
                                  strstr(message, "SCRAM-SHA-512") != NULL;
            }
            json_decref(obj);
            lines++;
        }
        free(text);
    }
    bool alive = tu_wait_exit(csc, 0) < 0;
    tu_kill(csc);
    char *text = tu_read_file(log, NULL);
    print_message("the CSC's log:\n%s\n", text ? text : "");
    free(text);
    unlink(log);
    if (bad > 0) {
        fail_msg("a log line that is not a JSON object with a name and a message: %s", bad_line);
    }
    assert_true(alive); /* still trying, not gone */
    assert_true(lines > 0);
    assert_true(authentication > 0);
}

#ifdef OCPS_SASL_FRONT
/* Run ocps-cmd on `broker` with these SASL credentials; its exit status,
 * its output in *out. */
static int cmd_through(const char *broker, const char *password, char *const argv[], char **out)
{
    sasl_env env;
    sasl_env_begin(&env, broker, password);
    int rc = tu_run(argv, out);
    sasl_env_end(&env);
    return rc;
}
#endif

/* Kafka with SASL/SCRAM-SHA-512, as at the summit: a CSC and ocps-cmd given
 * LSST_KAFKA_SECURITY_USERNAME/_PASSWORD log in to a broker that requires
 * it (the test broker behind ocps-sasl-front, a SCRAM server) and work;
 * a wrong password is refused and ocps-cmd says so. */
static void kafka_sasl_scram_login(void **state)
{
    fx *f = *state;
#ifdef OCPS_SASL_FRONT
    if (strcmp(fx_transport(), "kafka") != 0) {
        skip();
    }
    char *fargv[] = {OCPS_SASL_FRONT, "--upstream",  getenv("LSST_KAFKA_BROKER_ADDR"),
                     "--user",        "ts-salkafka", "--password",
                     "s3cret-pw",     NULL};
    int to_front, from_front;
    int front = tu_spawn_piped(fargv, &to_front, &from_front);
    assert_true(front > 0);
    char line[128];
    assert_int_equal(tu_read_line(from_front, line, sizeof line, 10), 0);
    assert_int_equal(strncmp(line, "BOOTSTRAP ", 10), 0);
    const char *broker = line + 10;

    char log[300];
    snprintf(log, sizeof log, "%s.scram", f->log_path);
    unlink(log);
    sasl_env env;
    sasl_env_begin(&env, broker, "s3cret-pw");
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0", "3", NULL};
    int csc = tu_spawn(argv, log);
    sasl_env_end(&env);
    assert_true(csc > 0);

    /* through the front with the right password: the CSC answers; with a
     * wrong one, refused and said (checked once both are stopped) */
    char *out = NULL, *wrong_out = NULL;
    char *start[] = {OCPS_CMD, "--discovery", "20", "OCPS:3", "start", NULL};
    int rc = cmd_through(broker, "s3cret-pw", start, &out);
    char *standby[] = {OCPS_CMD, "--discovery", "3", "OCPS:3", "standby", NULL};
    int wrong_rc = cmd_through(broker, "wrong", standby, &wrong_out);
    bool alive = tu_wait_exit(csc, 0) < 0;
    tu_kill(csc);
    close(to_front);
    close(from_front);
    tu_kill(front);
    print_message("ocps-cmd start: %s\nocps-cmd with a wrong password: %s\n", out ? out : "",
                  wrong_out ? wrong_out : "");
    char *text = tu_read_file(log, NULL);
    if (text != NULL && !alive) {
        print_message("the CSC's log:\n%s\n", text);
    }
    free(text);
    unlink(log);
    bool started = rc == 0 && out != NULL && strstr(out, "CMD_COMPLETE") != NULL;
    bool refused = wrong_rc != 0 && wrong_out != NULL &&
                   strstr(wrong_out, "invalid credentials with SASL mechanism SCRAM-SHA-512") != NULL;
    free(out);
    free(wrong_out);
    assert_true(started);
    assert_true(refused);
    assert_true(alive);
#else
    (void)f;
    skip();
#endif
}

/* Commands written the moment the other side is ready are answered, every
 * time (Kafka: nothing written after a reader is declared ready is lost):
 * (a) a CSC started anew is sent `start` as soon as its first summaryState
 * arrives, (b) a Remote opened anew sends a command at once. RUNS of each
 * catch a miss of 1 start in 50 with a chance of 1 - (49/50)^RUNS each. */
static void command_right_after_ready_is_answered(void **state)
{
    enum { RUNS = 40 };
    fx *f = *state;
    char result[1024];
    double worst = 0;
    for (int run = 0; run < RUNS; run++) {
        size_t from = f->nrecords;
        /* no wait for a duplicate: the previous instance's heartbeat is in
         * the history; its command readers are assigned all the same */
        char *argv[] = {OCPS_CSC, "--duplicate-check", "0", "1", NULL};
        assert_int_equal(fx_start_csc(f, argv), 0);
        /* this instance's (the previous one's may still come in) */
        assert_true(fx_wait_csc_event(f, "logevent_summaryState", from, 15) >= 0);
        double t0 = tu_now();
        int ack = fx_command(f, "start", NULL, 5, result, sizeof result);
        if (ack != SAL_CMD_COMPLETE) {
            fail_msg("run %d: start sent right after the CSC's first summaryState: ack %d (%s)", run, ack,
                     result);
        }
        worst = tu_now() - t0 > worst ? tu_now() - t0 : worst;
        if (run < RUNS - 1) {
            kill(f->csc_pid, SIGTERM);
            assert_true(tu_wait_exit(f->csc_pid, 5) == 0);
            f->csc_pid = 0;
        }
    }
    printf("%d new CSCs (%s): start right after the first summaryState answered each time, slowest %.3f s\n",
           RUNS, fx_transport(), worst);
    /* the CSC stays, in DISABLED; new Remotes command it at once */
    worst = 0;
    for (int run = 0; run < RUNS; run++) {
        fx r;
        assert_int_equal(fx_open(&r, f->comp, 1, NULL), 0);
        double t0 = tu_now();
        const char *name = run % 2 == 0 ? "standby" : "start";
        int ack = fx_command(&r, name, NULL, 5, result, sizeof result);
        double took = tu_now() - t0;
        r.csc_pid = -1;
        fx_close(&r);
        if (ack != SAL_CMD_COMPLETE) {
            fail_msg("run %d: %s from a Remote just opened: ack %d (%s)", run, name, ack, result);
        }
        worst = took > worst ? took : worst;
    }
    printf("%d new Remotes (%s): a command sent at once answered each time, slowest %.3f s\n", RUNS,
           fx_transport(), worst);
}

static int setup_no_csc(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fx_env(CYCLONE_CONFIG);
    if (f == NULL || fx_open(f, ocps_test_component(), 1, NULL) != 0) {
        return -1;
    }
    *state = f;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Alone, with the default --duplicate-check (3 s, the upper bound), the
 * CSC reports its first summaryState soon: the check ends as soon as the
 * transport shows that no other instance exists. */
/* Start `ocps-csc 1` `runs` times (stopping it each time) and return the
 * median time from process start to its first summaryState (STANDBY). */
static double median_first_summary_state(fx *f, const char *what)
{
    enum { RUNS = 7 };
    double took[RUNS];
    for (int run = 0; run < RUNS; run++) {
        if (run > 0 && strcmp(fx_transport(), "kafka") == 0) {
            /* the last heartbeat of the instance just stopped is in the
             * topic's history: until it is old, it might be a live one */
            fx_run_for(f, 3.6);
        }
        size_t from = f->nrecords;
        char *argv[] = {OCPS_CSC, "1", NULL};
        double t0 = tu_now();
        assert_int_equal(fx_start_csc(f, argv), 0);
        long i = fx_wait_csc_event(f, "logevent_summaryState", from, 15); /* not the last one's OFFLINE */
        assert_true(i >= 0);
        took[run] = f->records[i].at - t0;
        assert_int_equal(fx_i32(f, (size_t)i, "summaryState"), SAL_STATE_STANDBY);
        kill(f->csc_pid, SIGTERM);
        assert_true(tu_wait_exit(f->csc_pid, 5) == 0);
        f->csc_pid = 0;
    }
    qsort(took, RUNS, sizeof took[0], cmp_double);
    printf(
        "first summaryState after process start (%s, %s, %d runs): min %.3f s, median %.3f s, max %.3f s\n",
        fx_transport(), what, RUNS, took[0], took[RUNS / 2], took[RUNS - 1]);
    return took[RUNS / 2];
}

static void alone_first_summary_state_is_quick(void **state)
{
    /* well inside the 3 s of the bound (the goal, 0.3 s, is what
     * docs/performance.md reports; a loaded CI machine may take longer) */
    assert_true(median_first_summary_state(*state, "alone") < 1.5);
}

/* A CSC of another SAL index of the same component (OCPS:2) runs: its
 * heartbeat writer is matched too, but its heartbeats carry index 2, so
 * OCPS:1 need not wait the whole duplicate-check bound (3 s). */
static void first_summary_state_is_quick_next_to_another_index(void **state)
{
    fx *f = *state;
    char *argv[] = {OCPS_CSC, "2", NULL};
    char log[600];
    snprintf(log, sizeof log, "%s.index2", f->log_path[0] ? f->log_path : "/tmp/ocps-liveness");
    int other = tu_spawn(argv, log);
    assert_true(other > 0);
    fx_run_for(f, 2); /* it is up and heartbeating */
    int st;
    assert_int_equal(waitpid(other, &st, WNOHANG), 0); /* still running */
    double median = median_first_summary_state(f, "next to OCPS:2");
    assert_int_equal(waitpid(other, &st, WNOHANG), 0); /* it ran all along */
    kill(other, SIGTERM);
    assert_true(tu_wait_exit(other, 5) == 0);
    unlink(log);
    assert_true(median < 1.5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(heartbeat_at_one_hertz, setup, teardown),
        cmocka_unit_test(heartbeat_while_stderr_reader_stalls),
        cmocka_unit_test_setup_teardown(late_joiner_reads_summary_state, setup_disabled, teardown),
        cmocka_unit_test_setup_teardown(late_joiner_reads_enabled, setup_enabled, teardown),
        cmocka_unit_test_setup_teardown(burst_of_late_joiners_causes_one_round, setup_enabled, teardown),
        cmocka_unit_test_setup_teardown(wrong_index_and_bad_seqnum_are_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(second_instance_refuses_to_start, setup, teardown),
        cmocka_unit_test_setup_teardown(a_frozen_instance_and_its_replacement, setup, teardown),
        cmocka_unit_test_setup_teardown(csc_waits_for_a_registry_that_comes_up, setup, teardown),
        cmocka_unit_test_setup_teardown(csc_waits_for_a_broker_that_comes_up, setup_no_csc, teardown),
        cmocka_unit_test_setup_teardown(kafka_authentication_failure_is_logged_as_json, setup, teardown),
        cmocka_unit_test_setup_teardown(kafka_sasl_scram_login, setup, teardown),
        cmocka_unit_test_setup_teardown(second_instance_refused_every_time, setup, teardown),
        cmocka_unit_test_setup_teardown(alone_first_summary_state_is_quick, setup_no_csc, teardown),
        cmocka_unit_test_setup_teardown(second_instance_with_the_same_pid_is_refused, setup_no_csc, teardown),
        cmocka_unit_test_setup_teardown(first_summary_state_is_quick_next_to_another_index, setup_no_csc,
                                        teardown),
        cmocka_unit_test_setup_teardown(command_right_after_ready_is_answered, setup_no_csc, teardown),
    };
    /* OCPS_TEST_FILTER=NAME runs only that test (a cmocka pattern) */
    const char *filter = getenv("OCPS_TEST_FILTER");
    if (filter != NULL && *filter != '\0') {
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("csc_liveness", tests, NULL, NULL);
}
