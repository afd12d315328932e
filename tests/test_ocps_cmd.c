/*
 * test_ocps_cmd: the commander as people and scripts use it, against an
 * ocps-csc process over DDS: exit status and output of commands, salobj's
 * failure text, reading late-joiner state with show, a script on stdin in
 * interactive mode, and clear usage errors.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ocps_test_iface.h"
#include "ocps/sal_csc.h"
#include "sal_fixture.h"
#include "test_util.h"

static int setup(void **state)
{
    *state = fx_setup_csc(ocps_test_component(), OCPS_CSC, CYCLONE_CONFIG);
    return *state != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    return fx_teardown(*state);
}

/* Run ocps-cmd with up to five arguments; on an unexpected exit status
 * fail showing its output. */
#define cmd(out, a1, a2, a3, a4, a5) run_cmd(__LINE__, out, a1, a2, a3, a4, a5)
static int run_cmd(int line, char **out, const char *a1, const char *a2, const char *a3, const char *a4,
                   const char *a5)
{
    char *argv[] = {OCPS_CMD, (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5, NULL};
    int status = tu_run(argv, out);
    if (status != 0 && status != 1 && status != 3 && status != 64) {
        fail_msg("line %d: ocps-cmd exited %d:\n%s", line, status, *out ? *out : "");
    }
    print_message("ocps-cmd %s %s %s -> %d\n%s", a1, a2 ? a2 : "", a3 ? a3 : "", status, *out ? *out : "");
    return status;
}

static void commands_report_acks_and_exit_status(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(cmd(&out, "OCPS:1", "start", NULL, NULL, NULL), 0);
    assert_non_null(strstr(out, "start CMD_COMPLETE error=0 result=Done"));
    free(out);
    assert_int_equal(cmd(&out, "OCPS:1", "start", NULL, NULL, NULL), 1);
    assert_non_null(strstr(
        out, "start CMD_FAILED error=1 result=Failed: start not allowed in state <State.DISABLED: 1>"));
    free(out);
    assert_int_equal(cmd(&out, "OCPS:1", "setLogLevel", "--level", "30", NULL), 0);
    free(out);
}

static void show_reads_current_state_within_a_second(void **state)
{
    fx *f = *state;
    char result[256];
    assert_int_equal(fx_command(f, "start", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    char *out = NULL;
    double t0 = tu_now();
    assert_int_equal(cmd(&out, "OCPS:1", "show", "summaryState", "--timeout", "1"), 0);
    double took = tu_now() - t0;
    print_message("ocps-cmd show summaryState took %.3f s (process start included)\n", took);
    assert_non_null(strstr(out, "logevent_summaryState summaryState=1 <State.DISABLED: 1>"));
    free(out);
    /* a sample read within the last 0.2 s before --timeout (which show
     * waits for a newer one) is printed, not "none received" (status 3):
     * with 0.2 s every sample read comes in them (tried again only when
     * none came in time on a loaded machine) */
    char *quick[] = {OCPS_CMD, "OCPS:1", "show", "summaryState", "--timeout", "0.2", NULL};
    int status = -1;
    out = NULL;
    for (int attempt = 0; attempt < 5 && status != 0; attempt++) {
        free(out);
        double t1 = tu_now();
        status = tu_run(quick, &out);
        print_message("show --timeout 0.2 -> %d after %.3f s:\n%s", status, tu_now() - t1, out);
    }
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "logevent_summaryState summaryState=1 <State.DISABLED: 1>"));
    free(out);
    assert_int_equal(cmd(&out, "OCPS:1", "show", "heartbeat", "--json", NULL), 0);
    assert_non_null(strstr(out, "{\"topic\":\"logevent_heartbeat\",\"salIndex\":1,"));
    free(out);
    /* after several changes in a row a late joiner reads the event's
     * history (over DDS the writer's, oldest first): show prints the
     * newest, not the first read */
    const char *steps[] = {"enable", "disable", "standby", "start", "enable", "disable", "standby"};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        assert_int_equal(fx_command(f, steps[i], NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    }
    assert_int_equal(cmd(&out, "OCPS:1", "show", "summaryState", NULL, NULL), 0);
    assert_non_null(strstr(out, "logevent_summaryState summaryState=5 <State.STANDBY: 5>"));
    free(out);
}

static void no_ack_or_no_csc_means_timeout_status(void **state)
{
    (void)state;
    char *out = NULL;
    if (strcmp(fx_transport(), "kafka") != 0) {
        /* OCPS:1's reader sees a command for OCPS:2 but does not answer it
         * (over Kafka a command waits for a heartbeat of its CSC: below) */
        assert_int_equal(cmd(&out, "--timeout", "1.5", "OCPS:2", "start", NULL), 3);
        assert_non_null(strstr(out, "start CMD_NOACK"));
        assert_non_null(strstr(out, "no ack from OCPS:2 in 1.5 s: no CSC with that SAL index answered"));
        free(out);
    }
    /* no heartbeat of OCPS:2 within --discovery: no CSC runs with that
     * index, said early rather than after the whole --timeout (Kafka has
     * no discovery of readers: this is how it notices) */
    double t0 = tu_now();
    char *no_csc[] = {OCPS_CMD, "--discovery", "2", "--timeout", "30", "OCPS:2", "start", NULL};
    assert_int_equal(tu_run(no_csc, &out), 3);
    double took = tu_now() - t0;
    print_message("no CSC with index 2: ended after %.2f s: %s\n", took, out);
    assert_non_null(strstr(out, "no heartbeat of OCPS:2 in 2 s: no CSC with that SAL index is running"));
    assert_true(took < 15);
    free(out);
    /* a misspelt topic is a usage error, not a silent CSC */
    assert_int_equal(cmd(&out, "OCPS:1", "show", "bogusEvent", NULL, NULL), 64);
    assert_non_null(strstr(out, "OCPS has no topic bogusEvent"));
    free(out);
    assert_int_equal(cmd(&out, "OCPS:1", "watch", "heartbeat", "bogusTopic", NULL), 64);
    assert_non_null(strstr(out, "OCPS has no topic bogusTopic"));
    free(out);
    /* nobody at all in this partition (or Kafka subname) */
    char *argv[] = {"sh", "-c",
                    "LSST_DDS_PARTITION_PREFIX=nobody$$ LSST_TOPIC_SUBNAME=nobody$$ exec " OCPS_CMD
                    " --discovery 1 --timeout 2 OCPS:1 start",
                    NULL};
    int status = tu_run(argv, &out);
    if (strcmp(fx_transport(), "dds") == 0) {
        assert_int_equal(status, 3);
        assert_non_null(strstr(out, "no OCPS:1 found"));
    } else {
        assert_true(status == 1 || status == 3); /* Kafka: no such topics, or no answer */
    }
    free(out);
}

/* Over Kafka (no reader to discover) a command waits for a live heartbeat
 * of its CSC, and the first is enough: a CSC keeps what it reads during
 * its start-up for after it, and a salobj CSC writes its first heartbeat
 * only once its duplicate check has passed. Here a second CSC (index 2,
 * no duplicate check) is commanded as its first heartbeat is read: the
 * command is answered well before the fifth heartbeat (which it waited
 * for until 2026-12-06, about 4 s). */
static void command_goes_with_the_first_live_heartbeat(void **state)
{
    fx *f = *state;
    if (strcmp(fx_transport(), "kafka") != 0) {
        skip(); /* DDS: the command reader is discovered */
    }
    fx g;
    assert_int_equal(fx_open(&g, f->comp, 2, NULL), 0);
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s.index2", f->log_path);
    char *csc[] = {OCPS_CSC, "--duplicate-check", "0", "2", NULL};
    int pid = tu_spawn(csc, log);
    assert_true(pid > 0);
    long i = fx_wait_event(&g, "logevent_heartbeat", 0, 30);
    double t0 = tu_now();
    char *out = NULL;
    char *argv[] = {OCPS_CMD, "--discovery", "20",      "--timeout", "20",
                    "OCPS:2", "setLogLevel", "--level", "20",        NULL};
    int status = i >= 0 ? tu_run(argv, &out) : -1;
    double took = tu_now() - t0;
    int32_t seq = i >= 0 ? sal_sample_seqnum(&f->comp->topics[g.records[i].topic], g.records[i].sample) : -1;
    print_message("heartbeat %d of OCPS:2 read; ocps-cmd ended %.2f s later (%d): %s\n", seq, took, status,
                  out ? out : "");
    free(out);
    tu_kill(pid);
    fx_close(&g);
    unlink(log);
    assert_true(i >= 0);
    assert_int_equal(status, 0);
    assert_int_equal(seq, 1);
    assert_true(took < 3.5); /* the fifth heartbeat comes 4 s after the first */
}

/* No Kafka broker answering: nothing was sent, as when no CSC is found
 * (3), not a command the CSC refused (1), and said within --discovery,
 * not after the transport's own 10 s. Needs no broker: run in every
 * variant of a build with the Kafka transport. */
static void unreachable_broker_ends_within_discovery(void **state)
{
    (void)state;
    char *nobroker[] = {"env",
                        "LSST_KAFKA_BROKER_ADDR=127.0.0.1:1",
                        "LSST_TOPIC_SUBNAME=ocps_cmd_nobroker",
                        OCPS_CMD,
                        "--transport",
                        "kafka",
                        "--discovery",
                        "1",
                        "OCPS:1",
                        "start",
                        NULL};
    char *out = NULL;
    double t0 = tu_now();
    int status = tu_run(nobroker, &out);
    double took = tu_now() - t0;
    if (status == 64 && strstr(out, "unknown transport kafka") != NULL) {
        free(out);
        skip(); /* built without the Kafka transport */
    }
    print_message("no broker: ended %d after %.2f s:\n%s", status, took, out);
    assert_int_equal(status, 3);
    assert_non_null(strstr(out, "(nothing was sent)"));
    assert_true(took < 5);
    free(out);
}

/* A TCP socket on 127.0.0.1 that takes connections (the kernel's backlog)
 * and never answers them; its port in *port. */
static int silent_listener(unsigned *port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_true(s >= 0);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s, 16), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return s;
}

/* A schema registry that takes the connection and never answers (the
 * broker up): registering the schemas while opening is given up within
 * --discovery too, not after the registry's own 10 s per request, with
 * the same status as an unreachable broker and a message naming the
 * registry. */
static void silent_registry_ends_within_discovery(void **state)
{
    (void)state;
    if (strcmp(fx_transport(), "kafka") != 0) {
        skip(); /* only Kafka has a schema registry */
    }
    unsigned port = 0;
    int listener = silent_listener(&port);
    char url[64], env[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
    snprintf(env, sizeof env, "LSST_SCHEMA_REGISTRY_URL=%s", url);
    char *argv[] = {"env", env, OCPS_CMD, "--discovery", "2", "OCPS:1", "start", NULL};
    char *out = NULL;
    double t0 = tu_now();
    int status = tu_run(argv, &out);
    double took = tu_now() - t0;
    close(listener);
    print_message("silent registry: ended %d after %.2f s:\n%s", status, took, out);
    assert_int_equal(status, 3);
    char named[96];
    snprintf(named, sizeof named, "schema registry %s", url);
    assert_non_null(strstr(out, named));
    assert_non_null(strstr(out, "(nothing was sent)"));
    assert_true(took < 6);
    free(out);
}

/* A schema registry that answers, but each registration slowly (0.4 s per
 * POST, one per topic): --discovery bounds the whole open, not each
 * request (about 30 topics: 12 s of answers), with the same status and a
 * message naming the registry. */
static void slow_registry_ends_within_discovery(void **state)
{
    (void)state;
    if (strcmp(fx_transport(), "kafka") != 0) {
        skip(); /* only Kafka has a schema registry */
    }
    char *rargv[] = {(char *)fx_schema_registry_program(), "--port", "0", "--post-delay", "0.4", NULL};
    int rin = -1;
    int rout = -1;
    pid_t registry = tu_spawn_piped(rargv, &rin, &rout);
    char line[256];
    assert_true(registry > 0);
    assert_int_equal(tu_read_line(rout, line, sizeof line, 30), 0);
    assert_int_equal(strncmp(line, "LISTENING ", 10), 0);
    char env[300];
    snprintf(env, sizeof env, "LSST_SCHEMA_REGISTRY_URL=%s", line + 10);
    char *argv[] = {"env", env, OCPS_CMD, "--discovery", "2", "OCPS:1", "start", NULL};
    char *out = NULL;
    double t0 = tu_now();
    int status = tu_run(argv, &out);
    double took = tu_now() - t0;
    kill(registry, SIGTERM);
    waitpid(registry, NULL, 0);
    close(rin);
    close(rout);
    print_message("slow registry: ended %d after %.2f s:\n%s", status, took, out);
    assert_int_equal(status, 3);
    char named[300];
    snprintf(named, sizeof named, "schema registry %s", line + 10);
    assert_non_null(strstr(out, named));
    assert_non_null(strstr(out, "(nothing was sent)"));
    assert_true(took < 6);
    free(out);
}

static void script_on_stdin(void **state)
{
    (void)state;
    char *dir = tu_make_temp_dir();
    char *script = tu_path_join(dir, "script.txt");
    const char *text = "# a comment\nstart\nenable\n\nshow summaryState\ndisable\nstandby\n";
    tu_write_file(script, text, strlen(text));
    char *argv[] = {"sh", "-c", OCPS_CMD " OCPS:1 < \"$0\"", script, NULL};
    char *out = NULL;
    assert_int_equal(tu_run(argv, &out), 0);
    const char *order[] = {"start CMD_COMPLETE", "enable CMD_COMPLETE", "disable CMD_COMPLETE",
                           "standby CMD_COMPLETE"};
    const char *at = out;
    for (size_t i = 0; i < 4; i++) {
        const char *p = strstr(at, order[i]);
        if (p == NULL) {
            fail_msg("missing '%s' in order in:\n%s", order[i], out);
        }
        at = p;
    }
    free(out);
    /* a failing line makes the script's exit status 1, and later lines still run */
    text = "enable\nstart\n";
    tu_write_file(script, text, strlen(text));
    assert_int_equal(tu_run(argv, &out), 1);
    assert_non_null(strstr(out, "enable CMD_FAILED"));
    assert_non_null(strstr(out, "start CMD_COMPLETE"));
    free(out);
    /* a line longer than the reader's buffer is refused whole, never run
     * cut short; the next line runs */
    size_t long_len = 9000;
    char *big = malloc(long_len + 64);
    assert_non_null(big);
    int head = snprintf(big, 64, "enable --ignored ");
    memset(big + head, 'a', long_len);
    snprintf(big + head + long_len, 64 - (size_t)head, "\nstandby\n");
    tu_write_file(script, big, strlen(big));
    free(big);
    assert_int_equal(tu_run(argv, &out), 1);
    assert_non_null(strstr(out, "is longer than 8191 bytes: not run"));
    assert_null(strstr(out, "enable CMD_"));
    assert_non_null(strstr(out, "standby CMD_COMPLETE"));
    free(out);
    /* exit ends the script: nothing after it is sent */
    text = "exit\nstart\n";
    tu_write_file(script, text, strlen(text));
    assert_int_equal(tu_run(argv, &out), 0);
    assert_null(strstr(out, "start CMD_"));
    free(out);
    /* a show the one-shot form refuses (64) is a failed line of a script */
    const char *bad_shows[] = {"show bogusEvent\n", "show\n", "show summaryState heartbeat\n"};
    for (size_t i = 0; i < sizeof bad_shows / sizeof bad_shows[0]; i++) {
        tu_write_file(script, bad_shows[i], strlen(bad_shows[i]));
        int status = tu_run(argv, &out);
        if (status != 1) {
            fail_msg("script %s exited %d, not 1:\n%s", bad_shows[i], status, out);
        }
        free(out);
    }
    tu_remove_tree(dir);
    free(script);
    free(dir);
}

static void usage_errors(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(cmd(&out, "OCPS:1", "nosuch", NULL, NULL, NULL), 64);
    assert_non_null(strstr(out, "OCPS has no command nosuch"));
    free(out);
    /* an option after NAME says where options go */
    assert_int_equal(cmd(&out, "OCPS:1", "--timeout", "15", "disable", NULL), 64);
    assert_non_null(strstr(out,
                           "ocps-cmd: --timeout is an option here, where the command belongs: options go "
                           "before NAME"));
    free(out);
    assert_int_equal(cmd(&out, "OCPS:1", "setLogLevel", "--nosuch", "1", NULL), 64);
    assert_non_null(strstr(out, "command setLogLevel has no field nosuch"));
    free(out);
    assert_int_equal(cmd(&out, "OCPS:1", "setLogLevel", "--level", "ten", NULL), 64);
    free(out);
    assert_int_equal(cmd(&out, "OCPS:1", "enable", "--timeout", "5", NULL), 64);
    assert_non_null(strstr(out, "command enable has no field timeout (ocps-cmd's own options go before"));
    free(out);
    /* a control character is named as such, with where it is */
    assert_int_equal(cmd(&out, "OCPS:1", "execute", "--pipeline", "cp\001Bias.yaml", NULL), 64);
    assert_non_null(
        strstr(out, "ocps-cmd: command_execute.pipeline: contains control character 0x01 at byte 2\n"));
    assert_null(strstr(out, "UTF-8"));
    free(out);
    assert_int_equal(cmd(&out, "OCPS:1", "execute", "--pipeline", "cp\xc3(.yaml", NULL), 64);
    assert_non_null(strstr(out, "ocps-cmd: command_execute.pipeline: is not valid UTF-8 at byte 2\n"));
    free(out);
    assert_int_equal(cmd(&out, "Other:1", "start", NULL, NULL, NULL), 64);
    free(out);
    /* a command needs the index of an indexed component (salobj: index 0 reads all, commands none) */
    assert_int_equal(cmd(&out, "OCPS", "start", NULL, NULL, NULL), 64);
    assert_non_null(
        strstr(out, "OCPS is an indexed component: commands need its SAL index: OCPS:1 (LATISS)"));
    free(out);
    /* a number of seconds is a whole number text greater than 0: for show
     * an empty or 0 --timeout would mean no deadline (`timeout` ends a
     * hang) */
    const char *bad_seconds[] = {"", "0", "-1", "1x", "nan", "inf", " "};
    const char *second_opts[] = {"--timeout", "--discovery", "--duration"};
    for (size_t i = 0; i < sizeof bad_seconds / sizeof bad_seconds[0]; i++) {
        for (size_t k = 0; k < sizeof second_opts / sizeof second_opts[0]; k++) {
            char *argv[] = {"timeout",
                            "10",
                            OCPS_CMD,
                            "OCPS:1",
                            "show",
                            "summaryState",
                            (char *)second_opts[k],
                            (char *)bad_seconds[i],
                            NULL};
            int status = tu_run(argv, &out);
            if (status != 64 || strstr(out, "bad number of seconds") == NULL) {
                fail_msg("show %s '%s' exited %d, not 64:\n%s", second_opts[k], bad_seconds[i], status, out);
            }
            free(out);
        }
    }
    /* missing transport configuration is said as such (64), not as a
     * command the CSC refused (1) */
    char *unset[] = {"env",
                     "-u",
                     "LSST_DDS_PARTITION_PREFIX",
                     "-u",
                     "LSST_TOPIC_SUBNAME",
                     OCPS_CMD,
                     "OCPS:1",
                     "show",
                     "summaryState",
                     NULL};
    assert_int_equal(tu_run(unset, &out), 64);
    assert_non_null(strstr(out, " must be set ("));
    free(out);
    assert_int_equal(cmd(&out, "OCPS:1", "topics", NULL, NULL, NULL), 0);
    assert_non_null(strstr(out, "setLogLevel --level:long --subsystem:string"));
    free(out);
}

/* The acks the test's Remote reads, whoever they answer (its own ack
 * reader replaced). */
typedef struct seen_acks {
    const sal_topic_info *topic;
    int n;
    int ack[16];
    char identity[16][1100];
} seen_acks;

static void record_ack(void *arg, int topic, const void *sample)
{
    (void)topic;
    seen_acks *a = arg;
    if (a->n < 16) {
        a->ack[a->n] = sal_sample_get_i32(a->topic, sample, "ack");
        snprintf(a->identity[a->n], sizeof a->identity[0], "%s",
                 sal_sample_get_string(a->topic, sample, "identity"));
        a->n++;
    }
}

static bool completed(fx *f, void *arg)
{
    (void)f;
    const seen_acks *a = arg;
    return a->n > 0 && a->ack[a->n - 1] == SAL_CMD_COMPLETE;
}

/* A commander whose identity is longer than the DDS IDL's 128 bytes (a
 * long host name, a script's identity set by hand): on Kafka (salobj 8,
 * an unbounded string) it is sent and echoed in every ack whole, so a
 * salobj 8 Remote matches its acks; on DDS it is cut to 128 bytes as
 * before (the wire type of salobj 7). One longer than the 1024 bytes
 * carried is refused on Kafka, and cut on DDS as before. */
static void long_identity_gets_whole_acks(void **state)
{
    fx *f = *state;
    bool kafka = strcmp(fx_transport(), "kafka") == 0;
    char id[201];
    memset(id, 'h', sizeof id - 1);
    memcpy(id, "script-runner@", 14);
    memcpy(id + sizeof id - 13, ".example.org", 13);
    assert_int_equal(strlen(id), 200);
    seen_acks *acks = calloc(1, sizeof *acks);
    acks->topic = &f->comp->topics[sal_component_find_topic(f->comp, "ackcmd")];
    char err[256];
    assert_int_equal(sal_reader_add(sal_remote_sal(f->remote), sal_component_find_topic(f->comp, "ackcmd"),
                                    record_ack, acks, err, sizeof err),
                     0);
    char *out = NULL;
    assert_int_equal(cmd(&out, "--identity", id, "OCPS:1", "start", NULL), 0);
    assert_non_null(strstr(out, "start CMD_COMPLETE error=0 result=Done"));
    free(out);
    assert_true(fx_run_until(f, completed, acks, 5));
    size_t echoed = kafka ? 200 : 128;
    for (int i = 0; i < acks->n; i++) {
        assert_int_equal(strlen(acks->identity[i]), echoed);
        assert_memory_equal(acks->identity[i], id, echoed);
    }
    free(acks);

    char *over = malloc(1101);
    memset(over, 'h', 1100);
    memcpy(over, "user@", 5);
    over[1100] = '\0';
    int status = cmd(&out, "--identity", over, "OCPS:1", "standby", NULL);
    if (kafka) {
        assert_int_equal(status, 64);
        assert_non_null(strstr(
            out, "ocps-cmd: the identity is 1100 bytes, longer than the 1024 the kafka transport carries"));
    } else {
        assert_int_equal(status, 0);
    }
    free(out);
    free(over);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(commands_report_acks_and_exit_status, setup, teardown),
        cmocka_unit_test_setup_teardown(show_reads_current_state_within_a_second, setup, teardown),
        cmocka_unit_test_setup_teardown(no_ack_or_no_csc_means_timeout_status, setup, teardown),
        cmocka_unit_test_setup_teardown(command_goes_with_the_first_live_heartbeat, setup, teardown),
        cmocka_unit_test_setup_teardown(script_on_stdin, setup, teardown),
        cmocka_unit_test(usage_errors),
        cmocka_unit_test(unreachable_broker_ends_within_discovery),
        cmocka_unit_test_setup_teardown(silent_registry_ends_within_discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(slow_registry_ends_within_discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(long_identity_gets_whole_acks, setup, teardown),
    };
    return cmocka_run_group_tests_name("ocps_cmd", tests, NULL, NULL);
}
