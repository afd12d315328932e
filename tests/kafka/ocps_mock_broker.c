/*
 * ocps-mock-broker - librdkafka's mock Kafka cluster as a standalone process,
 * for tests (no real Kafka broker is packaged for Debian).
 *
 *   ocps-mock-broker [--brokers N] [--topic NAME]... [--topics-file FILE]
 *
 * Each topic named on the command line or in FILE (one per line; blank lines
 * and lines starting with '#' are skipped) is created with 1 partition: the
 * mock has no CreateTopics API, and auto-created topics get 4 partitions.
 * Then one line "BOOTSTRAP <bootstrap servers>" is written to stdout.
 *
 * Commands are read from stdin, one per line, each answered by one line,
 * "OK" or "ERR <message>":
 *   create TOPIC [PARTITIONS]   create a topic (default 1 partition)
 *   down BROKER_ID              disconnect a broker and refuse connections
 *   up BROKER_ID                accept connections again (the log is kept)
 *   quit                        exit
 * The program also exits on stdin EOF, SIGTERM and SIGINT. Signals are taken
 * through a signalfd (they are blocked before librdkafka starts its threads),
 * so there is no global state.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_BROKERS 16
#define LINE_MAX_LEN 1024
#define TOPIC_MAX_LEN 249

typedef struct options {
    int brokers;
    char **topics; /* borrowed from argv, or owned (see owned_from) */
    int ntopics;
    int owned_from; /* topics[owned_from..] are malloc'd */
} options;

/* Bytes read from stdin not yet consumed as lines. */
typedef struct line_reader {
    char buf[LINE_MAX_LEN + 1];
    size_t len;
    int discarding; /* inside a line longer than LINE_MAX_LEN */
} line_reader;

enum { RUN_CONTINUE, RUN_STOP };

static void usage(void)
{
    fprintf(stderr, "usage: ocps-mock-broker [--brokers N] [--topic NAME]... [--topics-file FILE]\n");
}

static int parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Kafka's rule: 1..249 characters from [A-Za-z0-9._-]. */
static int valid_topic(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > TOPIC_MAX_LEN || strcmp(t, ".") == 0 || strcmp(t, "..") == 0) {
        return 0;
    }
    return strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int add_topic(options *o, char *name)
{
    char **more = realloc(o->topics, (size_t)(o->ntopics + 1) * sizeof *more);
    if (more == NULL) {
        return -1;
    }
    o->topics = more;
    o->topics[o->ntopics++] = name;
    return 0;
}

static void free_options(options *o)
{
    for (int i = o->owned_from; i < o->ntopics; i++) {
        free(o->topics[i]);
    }
    free(o->topics);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && strchr(" \t\r\n", s[n - 1]) != NULL) {
        s[--n] = '\0';
    }
    return s;
}

static int read_topics_file(options *o, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "ocps-mock-broker: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        char *t = trim(line);
        if (*t == '\0' || *t == '#') {
            continue;
        }
        char *copy = strdup(t);
        if (copy == NULL || add_topic(o, copy) != 0) {
            free(copy);
            rc = -1;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

/* Returns 0, or -1 after printing why. Topics-file names come after the
 * --topic names (owned_from marks where). */
static int parse_args(int argc, char **argv, options *o)
{
    const char *files[64];
    int nfiles = 0;
    for (int i = 1; i < argc; i += 2) { /* --option value */
        long v;
        if (i + 1 >= argc) {
            usage();
            return -1;
        }
        if (strcmp(argv[i], "--brokers") == 0 && parse_int(argv[i + 1], 1, MAX_BROKERS, &v) == 0) {
            o->brokers = (int)v;
        } else if (strcmp(argv[i], "--topic") == 0) {
            if (add_topic(o, argv[i + 1]) != 0) {
                return -1;
            }
        } else if (strcmp(argv[i], "--topics-file") == 0 && nfiles < 64) {
            files[nfiles++] = argv[i + 1];
        } else {
            usage();
            return -1;
        }
    }
    o->owned_from = o->ntopics;
    for (int i = 0; i < nfiles; i++) {
        if (read_topics_file(o, files[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

/* The handle that hosts the cluster also connects to it as a client; its
 * own connection errors (e.g. after "down") are noise here. */
static void ignore_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)err;
    (void)reason;
    (void)opaque;
}

static rd_kafka_t *start_cluster(int brokers)
{
    char errstr[512];
    char n[16];
    snprintf(n, sizeof n, "%d", brokers);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_error_cb(conf, ignore_error);
    if (rd_kafka_conf_set(conf, "test.mock.num.brokers", n, errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "ocps-mock-broker: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        fprintf(stderr, "ocps-mock-broker: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

static int create_topic(rd_kafka_mock_cluster_t *mc, const char *topic, int partitions, char *err,
                        size_t errlen)
{
    if (!valid_topic(topic)) {
        snprintf(err, errlen, "invalid topic name");
        return -1;
    }
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, topic, partitions, 1);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "%s", rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

static int cmd_create(rd_kafka_mock_cluster_t *mc, char *args, char *err, size_t errlen)
{
    char *save;
    char *topic = strtok_r(args, " \t", &save);
    char *parts = strtok_r(NULL, " \t", &save);
    long n = 1;
    if (topic == NULL || strtok_r(NULL, " \t", &save) != NULL) {
        snprintf(err, errlen, "usage: create TOPIC [PARTITIONS]");
        return -1;
    }
    if (parts != NULL && parse_int(parts, 1, 10000, &n) != 0) {
        snprintf(err, errlen, "invalid partition count");
        return -1;
    }
    return create_topic(mc, topic, (int)n, err, errlen);
}

static int cmd_broker(rd_kafka_mock_cluster_t *mc, int up, char *args, char *err, size_t errlen)
{
    long id;
    if (args == NULL || parse_int(trim(args), 0, INT32_MAX, &id) != 0) {
        snprintf(err, errlen, "usage: %s BROKER_ID", up ? "up" : "down");
        return -1;
    }
    rd_kafka_resp_err_t e =
        up ? rd_kafka_mock_broker_set_up(mc, (int32_t)id) : rd_kafka_mock_broker_set_down(mc, (int32_t)id);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "%s", rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

static void reply(int ok, const char *err)
{
    if (ok) {
        fputs("OK\n", stdout);
    } else {
        printf("ERR %s\n", err);
    }
    fflush(stdout);
}

/* Run one command line; returns RUN_STOP on quit. */
static int run_command(rd_kafka_mock_cluster_t *mc, char *line)
{
    char err[256] = "";
    char *save;
    char *verb = strtok_r(line, " \t\r", &save);
    char *args = strtok_r(NULL, "", &save);
    int rc;
    if (verb == NULL) {
        return RUN_CONTINUE; /* blank line: no reply */
    } else if (strcmp(verb, "quit") == 0) {
        reply(1, NULL);
        return RUN_STOP;
    } else if (strcmp(verb, "create") == 0) {
        rc = cmd_create(mc, args == NULL ? (char[]){""} : args, err, sizeof err);
    } else if (strcmp(verb, "down") == 0 || strcmp(verb, "up") == 0) {
        rc = cmd_broker(mc, verb[0] == 'u', args, err, sizeof err);
    } else {
        snprintf(err, sizeof err, "unknown command '%.64s'", verb);
        rc = -1;
    }
    reply(rc == 0, err);
    return RUN_CONTINUE;
}

/* Split what is buffered into lines and run them. */
static int run_lines(rd_kafka_mock_cluster_t *mc, line_reader *lr)
{
    char *nl;
    while ((nl = memchr(lr->buf, '\n', lr->len)) != NULL) {
        *nl = '\0';
        size_t used = (size_t)(nl - lr->buf) + 1;
        int stop = RUN_CONTINUE;
        if (lr->discarding) {
            lr->discarding = 0;
            reply(0, "line too long");
        } else {
            stop = run_command(mc, lr->buf);
        }
        memmove(lr->buf, lr->buf + used, lr->len - used);
        lr->len -= used;
        if (stop == RUN_STOP) {
            return RUN_STOP;
        }
    }
    if (lr->len == LINE_MAX_LEN) {
        lr->discarding = 1;
        lr->len = 0;
    }
    return RUN_CONTINUE;
}

/* Returns RUN_STOP on EOF, a read error or quit. */
static int read_stdin(rd_kafka_mock_cluster_t *mc, line_reader *lr)
{
    ssize_t got = read(STDIN_FILENO, lr->buf + lr->len, LINE_MAX_LEN - lr->len);
    if (got < 0) {
        return errno == EINTR || errno == EAGAIN ? RUN_CONTINUE : RUN_STOP;
    }
    if (got == 0) {
        if (lr->len > 0 && !lr->discarding) { /* last line without '\n' */
            lr->buf[lr->len] = '\0';
            run_command(mc, lr->buf);
        }
        return RUN_STOP;
    }
    lr->len += (size_t)got;
    return run_lines(mc, lr);
}

static void serve(rd_kafka_mock_cluster_t *mc, int sigfd)
{
    line_reader *lr = calloc(1, sizeof *lr);
    if (lr == NULL) {
        return;
    }
    struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = sigfd, .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (fds[1].revents != 0) {
            break; /* SIGTERM or SIGINT */
        }
        if (fds[0].revents != 0 && read_stdin(mc, lr) == RUN_STOP) {
            break;
        }
    }
    free(lr);
}

static int block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    return sigprocmask(SIG_BLOCK, set, NULL);
}

static int run(const options *o, int sigfd)
{
    rd_kafka_t *rk = start_cluster(o->brokers);
    if (rk == NULL) {
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(rk);
    int rc = mc == NULL ? 1 : 0;
    for (int i = 0; rc == 0 && i < o->ntopics; i++) {
        char err[256];
        if (create_topic(mc, o->topics[i], 1, err, sizeof err) != 0) {
            fprintf(stderr, "ocps-mock-broker: topic %s: %s\n", o->topics[i], err);
            rc = 1;
        }
    }
    if (rc == 0) {
        printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mc));
        fflush(stdout);
        serve(mc, sigfd);
    }
    rd_kafka_destroy(rk); /* also destroys the mock cluster */
    return rc;
}

int main(int argc, char **argv)
{
    options o = {.brokers = 1};
    sigset_t set;
    if (parse_args(argc, argv, &o) != 0) {
        free_options(&o);
        return 2;
    }
    /* Before rd_kafka_new, so that no librdkafka thread takes the signals. */
    int sigfd = block_signals(&set) == 0 ? signalfd(-1, &set, SFD_CLOEXEC) : -1;
    if (sigfd < 0) {
        perror("ocps-mock-broker: signalfd");
        free_options(&o);
        return 1;
    }
    int rc = run(&o, sigfd);
    close(sigfd);
    free_options(&o);
    return rc;
}
