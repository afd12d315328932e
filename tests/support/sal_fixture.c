/* sal_fixture.c - see sal_fixture.h. */
#include "sal_fixture.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ocps/sal_csc.h"
#include "test_util.h"

static char *config_root; /* this process's copy of the shipped configuration */

static void remove_config_root(void)
{
    tu_remove_tree(config_root);
    free(config_root);
    config_root = NULL;
}

/* Copy one file of the shipped configuration; the test site's work_root
 * becomes <root>/jobs. 0 or -1. */
static int copy_config_file(const char *name, const char *to_dir)
{
    char from[1024];
    snprintf(from, sizeof from, "%s/OCPS/v4/%s", DEPLOY_CONFIG_ROOT, name);
    char *text = tu_read_file(from, NULL);
    if (text == NULL) {
        return -1;
    }
    size_t cap = strlen(text) + strlen(config_root) + 64;
    char *out = malloc(cap);
    size_t n = 0;
    for (char *line = text, *next; out != NULL && line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        size_t len = next != NULL ? (size_t)(++next - line) : strlen(line);
        if (strcmp(name, "_test.yaml") == 0 && strncmp(line, "work_root:", 10) == 0) {
            n += (size_t)snprintf(out + n, cap - n, "work_root: %s/jobs\n", config_root);
        } else {
            memcpy(out + n, line, len);
            n += len;
        }
    }
    char to[2048];
    snprintf(to, sizeof to, "%s/%s", to_dir, name);
    int rc = out != NULL ? tu_write_file(to, out, n) : -1;
    free(out);
    free(text);
    return rc;
}

/* A copy of the shipped configuration for this process, its test site's
 * jobs (and job store) in a directory of its own: test programs run in
 * parallel (ctest -j) and two engines never share a store. NULL on error. */
static const char *fx_config_root(void)
{
    if (config_root != NULL) {
        return config_root;
    }
    config_root = tu_make_temp_dir();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/OCPS", config_root);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/OCPS/v4", config_root);
    mkdir(dir, 0755);
    char from[1024];
    snprintf(from, sizeof from, "%s/OCPS/v4", DEPLOY_CONFIG_ROOT);
    DIR *d = opendir(from);
    int rc = d != NULL ? 0 : -1;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] != '.') {
            rc |= copy_config_file(e->d_name, dir);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    atexit(remove_config_root);
    return rc == 0 ? config_root : NULL;
}

void fx_env(const char *cyclone_config)
{
    static int calls;
    char uri[600];
    snprintf(uri, sizeof uri, "file://%s", cyclone_config);
    setenv("CYCLONEDDS_URI", uri, 1);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "test%d_%d", (int)getpid(), calls++);
    setenv("LSST_DDS_PARTITION_PREFIX", prefix, 1);
    setenv("LSST_SITE", "test", 1);
    const char *root = fx_config_root();
    setenv("DM_CONFIG_OCPS_DIR", root != NULL ? root : DEPLOY_CONFIG_ROOT, 1);
}

static void record(void *arg, int topic, const void *sample)
{
    fx *f = arg;
    if (f->nrecords == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->records = realloc(f->records, f->cap * sizeof *f->records);
    }
    fx_record *r = &f->records[f->nrecords++];
    r->topic = topic;
    r->sample = sal_sample_dup(&f->comp->topics[topic], sample);
    r->at = tu_now();
}

const char *fx_transport(void)
{
    const char *t = getenv("OCPS_TEST_TRANSPORT");
    return t != NULL && *t != '\0' ? t : "dds";
}

const char *fx_schema_registry_program(void)
{
#ifdef OCPS_SCHEMA_REGISTRY
    return OCPS_SCHEMA_REGISTRY;
#else
    return NULL;
#endif
}

/* Start the mock broker with every topic of comp under the test's subname,
 * and the registry; export their addresses. */
int fx_kafka_start(fx *f, const sal_component_info *comp)
{
#if defined(OCPS_MOCK_BROKER) && defined(OCPS_SCHEMA_REGISTRY)
    const char *sub = getenv("LSST_DDS_PARTITION_PREFIX");
    setenv("LSST_TOPIC_SUBNAME", sub, 1);
    char **argv = calloc(2 * comp->ntopics + 2, sizeof *argv);
    char(*names)[256] = calloc(comp->ntopics, sizeof *names);
    size_t n = 0;
    argv[n++] = OCPS_MOCK_BROKER;
    for (size_t i = 0; i < comp->ntopics; i++) {
        snprintf(names[i], sizeof names[i], "lsst.%s.%s.%s", sub, comp->name, comp->topics[i].sal_name);
        argv[n++] = "--topic";
        argv[n++] = names[i];
    }
    argv[n] = NULL;
    f->broker_pid = tu_spawn_piped(argv, &f->broker_in, &f->broker_out);
    free(argv);
    free(names);
    char line[512];
    /* 30 s: under ASan, with the other tests running, the broker was once
     * seen to take more than 10 s to start */
    if (f->broker_pid < 0 || tu_read_line(f->broker_out, line, sizeof line, 30) != 0 ||
        strncmp(line, "BOOTSTRAP ", 10) != 0) {
        fprintf(stderr, "fx: the mock broker did not start\n");
        return -1;
    }
    setenv("LSST_KAFKA_BROKER_ADDR", line + 10, 1);
    setenv("OCPS_TRANSPORT", "kafka", 1); /* for the ocps-csc and ocps-cmd the tests start */
    /* fetch.wait.max.ms 10: the mock holds an empty Fetch that long, even when data arrives */
    setenv("LSST_KAFKA_CONSUMER_CONFIGURATION", OCPS_MOCK_CONSUMER_CONFIG, 1);
    char *rargv[] = {OCPS_SCHEMA_REGISTRY, "--port", "0", NULL};
    int rin;
    int rout;
    f->registry_pid = tu_spawn_piped(rargv, &rin, &rout);
    int rc = f->registry_pid > 0 ? tu_read_line(rout, line, sizeof line, 30) : -1;
    if (f->registry_pid > 0) {
        close(rin);
        close(rout);
    }
    if (rc != 0 || strncmp(line, "LISTENING ", 10) != 0) {
        fprintf(stderr, "fx: the schema registry did not start\n");
        return -1;
    }
    setenv("LSST_SCHEMA_REGISTRY_URL", line + 10, 1);
    setenv("OCPS_TEST_KAFKA_OWNER", sub, 1);
    return 0;
#else
    (void)f;
    (void)comp;
    fprintf(stderr, "fx: built without the Kafka fixtures\n");
    return -1;
#endif
}

void fx_kafka_stop(fx *f)
{
    if (f->broker_pid > 0) {
        if (write(f->broker_in, "quit\n", 5) < 0) {
            kill(f->broker_pid, SIGTERM);
        }
        close(f->broker_in);
        close(f->broker_out);
        if (tu_wait_exit(f->broker_pid, 5) < 0) {
            tu_kill(f->broker_pid);
        }
        unsetenv("OCPS_TEST_KAFKA_OWNER");
    }
    if (f->registry_pid > 0) {
        kill(f->registry_pid, SIGTERM);
        if (tu_wait_exit(f->registry_pid, 5) < 0) {
            tu_kill(f->registry_pid);
        }
    }
}

int fx_broker_command(fx *f, const char *command)
{
    char line[256];
    snprintf(line, sizeof line, "%s\n", command);
    if (f->broker_pid <= 0 || write(f->broker_in, line, strlen(line)) < 0 ||
        tu_read_line(f->broker_out, line, sizeof line, 10) != 0) {
        return -1;
    }
    return strcmp(line, "OK") == 0 ? 0 : -1;
}

static int open_remote(fx *f, const sal_component_info *comp, int32_t index, const char *identity,
                       const sal_transport_ops *ops);

int fx_open(fx *f, const sal_component_info *comp, int32_t index, const char *identity)
{
    memset(f, 0, sizeof *f);
    f->comp = comp;
    f->csc_pid = -1;
    f->broker_pid = f->registry_pid = -1;
    uv_loop_init(&f->loop);
    const char *owner = getenv("OCPS_TEST_KAFKA_OWNER");
    const char *prefix = getenv("LSST_DDS_PARTITION_PREFIX");
    if (strcmp(fx_transport(), "kafka") == 0 &&
        (owner == NULL || prefix == NULL || strcmp(owner, prefix) != 0) && fx_kafka_start(f, comp) != 0) {
        return -1;
    }
    const sal_transport_ops *ops = sal_transport_find(fx_transport());
    if (ops == NULL) {
        fprintf(stderr, "fx_open: no transport %s in this build\n", fx_transport());
        return -1;
    }
    return open_remote(f, comp, index, identity, ops);
}

int fx_open_transport(fx *f, const sal_component_info *comp, int32_t index, const char *identity,
                      const sal_transport_ops *ops)
{
    memset(f, 0, sizeof *f);
    f->comp = comp;
    f->csc_pid = -1;
    f->broker_pid = f->registry_pid = -1;
    uv_loop_init(&f->loop);
    return open_remote(f, comp, index, identity, ops);
}

static int open_remote(fx *f, const sal_component_info *comp, int32_t index, const char *identity,
                       const sal_transport_ops *ops)
{
    char err[512];
    if (sal_remote_open(&f->remote, &f->loop, comp, index, ops, identity, err, sizeof err) != 0) {
        fprintf(stderr, "fx_open: %s\n", err);
        return -1;
    }
    /* as ocps-csc does (OCPS_SAL_INLINE=0: off); only for a transport that
     * delivers inline (not the in-process one: two fixtures on one thread
     * would hold each other's gates in both orders) */
    const char *inl = getenv("OCPS_SAL_INLINE");
    if (ops->inline_delivery && (inl == NULL || strcmp(inl, "0") != 0) &&
        sal_gate_open(&f->gate, &f->loop, err, sizeof err) == 0) {
        sal_set_gate(sal_remote_sal(f->remote), f->gate);
    }
    for (size_t i = 0; i < comp->ntopics; i++) {
        if (comp->topics[i].kind == SAL_TOPIC_EVENT &&
            sal_remote_subscribe(f->remote, comp->topics[i].sal_name, record, f, err, sizeof err) != 0) {
            fprintf(stderr, "fx_open: %s\n", err);
            return -1;
        }
    }
    return 0;
}

int fx_start_csc(fx *f, char *const argv_in[])
{
    /* the transport reaches the CSC through OCPS_TRANSPORT (fx_open);
     * OCPS_TEST_CSC_PREFIX (words split at spaces, e.g. "valgrind
     * --tool=massif") runs the CSC under another program */
    char *words[32];
    char prefix[512];
    const char *pre = getenv("OCPS_TEST_CSC_PREFIX");
    size_t n = 0;
    if (pre != NULL && *pre != '\0') {
        snprintf(prefix, sizeof prefix, "%s", pre);
        for (char *w = strtok(prefix, " "); w != NULL && n < 16; w = strtok(NULL, " ")) {
            words[n++] = w;
        }
        for (size_t i = 0; argv_in[i] != NULL && n < 31; i++) {
            words[n++] = argv_in[i];
        }
        words[n] = NULL;
    }
    char *const *argv = n > 0 ? words : argv_in;
    snprintf(f->log_path, sizeof f->log_path, "/tmp/ocps-csc-test-%d-%s.log", (int)getpid(),
             getenv("LSST_DDS_PARTITION_PREFIX"));
    unlink(f->log_path);
    f->csc_pid = tu_spawn(argv, f->log_path);
    return f->csc_pid > 0 ? 0 : -1;
}

static void fx_run_once(fx *f, uv_run_mode mode)
{
    if (f->gate != NULL) {
        sal_gate_run(f->gate, mode);
    } else {
        uv_run(&f->loop, mode);
    }
}

static void wake(uv_timer_t *t)
{
    (void)t;
}

bool fx_run_until(fx *f, bool (*pred)(fx *f, void *arg), void *arg, double timeout)
{
    uv_timer_t tick;
    uv_timer_init(&f->loop, &tick);
    uv_timer_start(&tick, wake, 5, 5);
    double end = tu_now() + timeout;
    bool ok = false;
    while (!(ok = pred != NULL && pred(f, arg)) && tu_now() < end) {
        fx_run_once(f, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    fx_run_once(f, UV_RUN_NOWAIT);
    return ok;
}

void fx_run_for(fx *f, double seconds)
{
    fx_run_until(f, NULL, NULL, seconds);
}

/* What fx_wait_event and fx_wait_change look for: a record of `topic`
 * from `from` on, whose `field` is not `prior` when have_prior is set. */
typedef struct wait_record {
    int topic;
    const char *field;
    size_t from;
    bool have_prior;
    int32_t prior;
    long found;
} wait_record;

static bool record_seen(fx *f, void *arg)
{
    wait_record *w = arg;
    for (size_t i = w->from; i < f->nrecords; i++) {
        if (f->records[i].topic == w->topic && (!w->have_prior || fx_i32(f, i, w->field) != w->prior)) {
            w->found = (long)i;
            return true;
        }
    }
    return false;
}

long fx_wait_event(fx *f, const char *sal_name, size_t from, double timeout)
{
    wait_record w = {sal_component_find_topic(f->comp, sal_name), NULL, from, false, 0, -1};
    fx_run_until(f, record_seen, &w, timeout);
    return w.found;
}

long fx_wait_csc_event(fx *f, const char *sal_name, size_t from, double timeout)
{
    double end = tu_now() + timeout;
    long i;
    while ((i = fx_wait_event(f, sal_name, from, end - tu_now())) >= 0 &&
           sal_sample_origin(&f->comp->topics[f->records[i].topic], f->records[i].sample) != f->csc_pid) {
        from = (size_t)i + 1;
    }
    return i;
}

long fx_wait_change(fx *f, const char *sal_name, const char *field, size_t from, double timeout)
{
    wait_record w = {sal_component_find_topic(f->comp, sal_name), field, from, false, 0, -1};
    for (size_t i = from < f->nrecords ? from : f->nrecords; i-- > 0;) {
        if (f->records[i].topic == w.topic) {
            w.have_prior = true;
            w.prior = fx_i32(f, i, field);
            break;
        }
    }
    fx_run_until(f, record_seen, &w, timeout);
    return w.found;
}

typedef struct cmd_wait {
    const char *name;
    bool done;
    int ack;
    char result[2048];
    fx_ack *acks;
    size_t max;
    size_t n;
} cmd_wait;

static void on_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    (void)error;
    cmd_wait *w = arg;
    if (w->acks != NULL && w->n < w->max) {
        fx_ack *a = &w->acks[w->n++];
        a->ack = ack;
        snprintf(a->result, sizeof a->result, "%s", result);
        a->timeout = timeout;
        a->at = tu_now();
    }
    if (final) {
        w->done = true;
        w->ack = ack;
        snprintf(w->result, sizeof w->result, "%s", result);
    }
}

static bool cmd_ready(fx *f, void *arg)
{
    return sal_remote_ready(f->remote, ((cmd_wait *)arg)->name);
}

static bool cmd_done(fx *f, void *arg)
{
    (void)f;
    return ((cmd_wait *)arg)->done;
}

static int run_command(fx *f, cmd_wait *w, void *sample, double timeout, char *result, size_t resultlen);

int fx_command(fx *f, const char *name, void *sample, double timeout, char *result, size_t resultlen)
{
    cmd_wait w = {.name = name, .ack = SAL_CMD_NOACK};
    return run_command(f, &w, sample, timeout, result, resultlen);
}

int fx_command_acks(fx *f, const char *name, void *sample, double timeout, fx_ack *acks, size_t max,
                    size_t *nacks)
{
    cmd_wait w = {.name = name, .ack = SAL_CMD_NOACK, .acks = acks, .max = max};
    char result[2048];
    int ack = run_command(f, &w, sample, timeout, result, sizeof result);
    *nacks = w.n;
    return ack;
}

static int run_command(fx *f, cmd_wait *w, void *sample, double timeout, char *result, size_t resultlen)
{
    const char *name = w->name;
    char err[512];
    sal_remote_prepare(f->remote, name, err, sizeof err);
    if (!fx_run_until(f, cmd_ready, w, 10)) {
        snprintf(result, resultlen, "no CSC discovered");
        return SAL_CMD_NOACK;
    }
    void *own = NULL;
    if (sample == NULL) {
        sample = own = sal_remote_new_command(f->remote, name);
    }
    if (sal_remote_command(f->remote, name, sample, timeout, on_ack, w, NULL, err, sizeof err) != 0) {
        snprintf(result, resultlen, "%s", err);
    } else {
        fx_run_until(f, cmd_done, w, timeout + 1);
        snprintf(result, resultlen, "%s", w->result);
    }
    if (own != NULL) {
        sal_sample_free(&f->comp->topics[sal_remote_command_topic(f->remote, name)], own);
    }
    return w->ack;
}

int32_t fx_i32(const fx *f, size_t record, const char *field)
{
    const fx_record *r = &f->records[record];
    return sal_sample_get_i32(&f->comp->topics[r->topic], r->sample, field);
}

int fx_close(fx *f)
{
    int rc = 0;
    if (f->csc_pid > 0) {
        kill(f->csc_pid, SIGTERM);
        if (tu_wait_exit(f->csc_pid, 5) < 0) {
            fprintf(stderr, "fx_close: the CSC did not exit on SIGTERM\n");
            tu_kill(f->csc_pid);
            rc = -1;
        }
    }
    if (f->log_path[0] != '\0') {
        char *log = tu_read_file(f->log_path, NULL);
        if (log != NULL && (strstr(log, "Sanitizer") != NULL || strstr(log, "runtime error:") != NULL)) {
            rc = -1;
        }
        if (rc != 0 && log != NULL) {
            fprintf(stderr, "--- CSC log %s ---\n%s\n---\n", f->log_path, log);
        } else {
            unlink(f->log_path);
        }
        free(log);
    }
    sal_remote_close(f->remote, NULL, NULL);
    sal_gate_close(f->gate);
    f->gate = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    fx_kafka_stop(f);
    for (size_t i = 0; i < f->nrecords; i++) {
        sal_sample_free(&f->comp->topics[f->records[i].topic], f->records[i].sample);
    }
    free(f->records);
    return rc;
}

int fx_command_str(fx *f, const char *name, const char *field, const char *value, double timeout,
                   char *result, size_t resultlen)
{
    int t = sal_remote_command_topic(f->remote, name);
    void *s = sal_remote_new_command(f->remote, name);
    char err[256];
    if (s == NULL || sal_sample_set_string(&f->comp->topics[t], s, field, value, err, sizeof err) != 0) {
        snprintf(result, resultlen, "cannot set %s.%s", name, field);
        sal_sample_free(&f->comp->topics[t], s);
        return SAL_CMD_NOACK;
    }
    int ack = fx_command(f, name, s, timeout, result, resultlen);
    sal_sample_free(&f->comp->topics[t], s);
    return ack;
}

fx *fx_setup_csc(const sal_component_info *comp, const char *csc, const char *cyclone_config)
{
    fx *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return NULL;
    }
    fx_env(cyclone_config);
    char *argv[] = {(char *)csc, "--duplicate-check", "0.2", "1", NULL};
    if (fx_open(f, comp, 1, NULL) != 0 || fx_start_csc(f, argv) != 0 ||
        fx_wait_event(f, "logevent_summaryState", 0, 15) < 0) {
        fx_teardown(f);
        return NULL;
    }
    return f;
}

int fx_teardown(fx *f)
{
    int rc = fx_close(f);
    free(f);
    return rc;
}

int fx_heartbeat_gaps(const fx *f, size_t from, double *sent_gap, double *arrival_gap)
{
    int t = sal_component_find_topic(f->comp, "logevent_heartbeat");
    double prev_sent = 0;
    double prev_at = 0;
    int n = 0;
    *sent_gap = *arrival_gap = 0;
    for (size_t i = from; i < f->nrecords; i++) {
        if (f->records[i].topic != t) {
            continue;
        }
        double sent = sal_sample_snd_stamp(&f->comp->topics[t], f->records[i].sample);
        double at = f->records[i].at;
        if (n > 0 && sent - prev_sent > *sent_gap) {
            *sent_gap = sent - prev_sent;
        }
        if (n > 0 && at - prev_at > *arrival_gap) {
            *arrival_gap = at - prev_at;
        }
        prev_sent = sent;
        prev_at = at;
        n++;
    }
    return n;
}
