/* sal_csc.c - generic CSC behaviour; see sal_csc.h. */
#include "sal_csc.h"

#include <errno.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sal_auth.h"
#include "sal_config.h"

#define QUEUE_MAX 100

struct sal_cmd {
    sal_csc *csc;
    int topic;
    void *data;
    int32_t seqnum;
    int32_t origin;
    char identity[129];
    struct sal_cmd *next; /* in its topic's queue */
    bool running;
};

typedef struct command_slot {
    sal_cmd_handler handler; /* NULL: generic or unsupported */
    void *arg;
    unsigned flags;
    sal_cmd *queue_head; /* waiting, FIFO */
    sal_cmd *queue_tail;
    size_t queued;
    bool busy;
} command_slot;

struct sal_csc {
    uv_loop_t *loop;
    const sal_component_info *comp;
    sal *sal;
    sal_csc_options opts;
    sal_csc_hooks hooks;
    command_slot *slots; /* per topic */
    sal_state state;
    int log_level;
    bool faulting;
    bool started;
    bool stopping;
    int exit_code;
    uv_timer_t heartbeat;
    uv_timer_t startup;
    uv_timer_t shutdown;
    int handles_open;
    sal_auth auth;
    bool auth_enabled;
    char override[1024];
    int t_ackcmd;
    int t_heartbeat;
    /* configuration (configurable CSCs) */
    sal_config *config;
    uv_timer_t config_poll; /* scans the config dir while in STANDBY */
    uv_timer_t start_slow;  /* INPROGRESS for a start that takes a while */
    bool start_busy;        /* a start is loading its configuration */
    sal_cmd *start_cmd;     /* the start command waiting for it (NULL: the --state chain) */
    bool warned_not_git;
    /* the --state chain run at start-up */
    const char *const *chain;
    double check_started; /* TAI when the duplicate check began */
};

/* do_transition: the transition continues asynchronously */
#define TRANSITION_PENDING 1

static const char *const state_reprs[] = {
    "<State.UNKNOWN: 0>", "<State.DISABLED: 1>", "<State.ENABLED: 2>",
    "<State.FAULT: 3>",   "<State.OFFLINE: 4>",  "<State.STANDBY: 5>",
};

const char *sal_state_repr(int state)
{
    if (state < 1 || state > 5) {
        return state_reprs[0];
    }
    return state_reprs[state];
}

void sal_csc_options_init(sal_csc_options *o)
{
    memset(o, 0, sizeof *o);
    o->initial_state = SAL_STATE_STANDBY;
    o->override = "";
    o->log_level = SAL_LOG_INFO;
    o->csc_version = "";
    o->subsystem_versions = "";
    o->heartbeat_interval = 1.0;
    o->duplicate_check = 3.0;
    o->shutdown_delay = 1.0;
}

static int topic_of(const sal_csc *c, const char *sal_name)
{
    return sal_component_find_topic(c->comp, sal_name);
}

int sal_csc_write(sal_csc *c, const char *sal_name, void *sample, unsigned flags)
{
    int t = topic_of(c, sal_name);
    if (t < 0 || c->sal == NULL) {
        return -EINVAL;
    }
    char err[256];
    int rc = sal_write(c->sal, t, sample, flags, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "%s: write %s failed: %s\n", sal_identity(c->sal), sal_name, err);
    }
    return rc;
}

/* Write an event whose fields are given as name/value pairs: numbers as
 * "name", (double) and strings as "name", "value". Kept small and explicit
 * for the generic events below. */
static void *new_sample(sal_csc *c, const char *sal_name, int *topic)
{
    *topic = topic_of(c, sal_name);
    if (*topic < 0) {
        return NULL;
    }
    return sal_sample_new(&c->comp->topics[*topic]);
}

static void set_str(sal_csc *c, int topic, void *s, const char *field, const char *value)
{
    char err[256];
    const sal_topic_info *t = &c->comp->topics[topic];
    if (sal_topic_field(t, field) != NULL) {
        sal_sample_set_string(t, s, field, value, err, sizeof err);
    }
}

static void set_num(sal_csc *c, int topic, void *s, const char *field, double value)
{
    char err[256];
    const sal_topic_info *t = &c->comp->topics[topic];
    if (sal_topic_field(t, field) != NULL) {
        sal_sample_set_number(t, s, field, 0, value, err, sizeof err);
    }
}

static void write_and_free(sal_csc *c, const char *sal_name, int topic, void *s, unsigned flags)
{
    if (s == NULL) {
        return;
    }
    sal_csc_write(c, sal_name, s, flags);
    sal_sample_free(&c->comp->topics[topic], s);
}

static void write_summary_state(sal_csc *c)
{
    int t;
    void *s = new_sample(c, "logevent_summaryState", &t);
    if (s != NULL) {
        set_num(c, t, s, "summaryState", c->state);
        write_and_free(c, "logevent_summaryState", t, s, 0);
    }
}

static void write_error_code(sal_csc *c, int code, const char *report, const char *traceback, unsigned flags)
{
    int t;
    void *s = new_sample(c, "logevent_errorCode", &t);
    if (s != NULL) {
        set_num(c, t, s, "errorCode", code);
        set_str(c, t, s, "errorReport", report);
        set_str(c, t, s, "traceback", traceback);
        write_and_free(c, "logevent_errorCode", t, s, flags);
    }
}

static void write_log_level(sal_csc *c)
{
    int t;
    void *s = new_sample(c, "logevent_logLevel", &t);
    if (s != NULL) {
        set_num(c, t, s, "level", c->log_level);
        write_and_free(c, "logevent_logLevel", t, s, 0);
    }
}

static void write_auth_list(sal_csc *c, unsigned flags)
{
    int t;
    void *s = new_sample(c, "logevent_authList", &t);
    if (s == NULL) {
        return;
    }
    char users[4096];
    char cscs[4096];
    sal_auth_format(&c->auth, users, sizeof users, cscs, sizeof cscs);
    set_str(c, t, s, "authorizedUsers", users);
    set_str(c, t, s, "nonAuthorizedCSCs", cscs);
    write_and_free(c, "logevent_authList", t, s, flags);
}

static const char *level_name(int level)
{
    if (level >= SAL_LOG_CRITICAL) {
        return "CRITICAL";
    }
    if (level >= SAL_LOG_ERROR) {
        return "ERROR";
    }
    if (level >= SAL_LOG_WARNING) {
        return "WARNING";
    }
    if (level >= SAL_LOG_INFO) {
        return "INFO";
    }
    return "DEBUG";
}

void sal_csc_log(sal_csc *c, int level, const char *file, const char *func, int line, const char *fmt, ...)
{
    char message[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (level < c->log_level) {
        return;
    }
    fprintf(stderr, "%s %s: %s\n", level_name(level), c->comp->name, message);
    if (!c->started || c->stopping) {
        return;
    }
    int t;
    void *s = new_sample(c, "logevent_logMessage", &t);
    if (s == NULL) {
        return;
    }
    if (!sal_text_valid(message, sizeof message, "\n\t")) {
        snprintf(message, sizeof message, "(log message with invalid characters dropped)");
    }
    set_str(c, t, s, "name", c->comp->name);
    set_num(c, t, s, "level", level);
    set_str(c, t, s, "message", message);
    set_str(c, t, s, "traceback", "");
    set_str(c, t, s, "filePath", file);
    set_str(c, t, s, "functionName", func);
    set_num(c, t, s, "lineNumber", line);
    set_num(c, t, s, "process", getpid());
    set_num(c, t, s, "timestamp", sal_now_tai(c->sal));
    write_and_free(c, "logevent_logMessage", t, s, 0);
}

/* --- acks --- */

static void write_ack(sal_cmd *cmd, int ack, int error, const char *result, double timeout)
{
    sal_csc *c = cmd->csc;
    if (c->sal == NULL || c->t_ackcmd < 0) {
        return;
    }
    const sal_topic_info *t = &c->comp->topics[c->t_ackcmd];
    void *s = sal_sample_new(t);
    if (s == NULL) {
        return;
    }
    char err[256];
    sal_sample_set_i32(t, s, "private_seqNum", cmd->seqnum);
    sal_sample_set_i32(t, s, "ack", ack);
    sal_sample_set_i32(t, s, "error", error);
    if (sal_sample_set_string(t, s, "result", result, err, sizeof err) != 0) {
        sal_sample_set_string(t, s, "result", "(result not valid text)", err, sizeof err);
    }
    sal_sample_set_string(t, s, "identity", cmd->identity, err, sizeof err);
    sal_sample_set_i32(t, s, "origin", cmd->origin);
    sal_sample_set_i32(t, s, "cmdtype", cmd->topic);
    sal_sample_set_number(t, s, "timeout", 0, timeout, err, sizeof err);
    if (sal_write(c->sal, c->t_ackcmd, s, SAL_WRITE_KEEP_SEQNUM, err, sizeof err) != 0) {
        fprintf(stderr, "%s: ackcmd write failed: %s\n", c->comp->name, err);
    }
    sal_sample_free(t, s);
}

const void *sal_cmd_data(const sal_cmd *cmd)
{
    return cmd->data;
}

int sal_cmd_topic(const sal_cmd *cmd)
{
    return cmd->topic;
}

int32_t sal_cmd_seqnum(const sal_cmd *cmd)
{
    return cmd->seqnum;
}

const char *sal_cmd_identity(const sal_cmd *cmd)
{
    return cmd->identity;
}

int32_t sal_cmd_origin(const sal_cmd *cmd)
{
    return cmd->origin;
}

sal_csc *sal_cmd_csc(const sal_cmd *cmd)
{
    return cmd->csc;
}

void sal_cmd_in_progress(sal_cmd *cmd, double timeout, const char *result)
{
    write_ack(cmd, SAL_CMD_INPROGRESS, 0, result ? result : "", timeout);
}

static void free_cmd(sal_cmd *cmd)
{
    sal_sample_free(&cmd->csc->comp->topics[cmd->topic], cmd->data);
    free(cmd);
}

static void run_next(sal_csc *c, int topic);

static int ack_error(int ack)
{
    return ack == SAL_CMD_COMPLETE || ack == SAL_CMD_INPROGRESS || ack == SAL_CMD_ACK ? 0 : 1;
}

void sal_cmd_finish(sal_cmd *cmd, int ack, const char *result)
{
    sal_csc *c = cmd->csc;
    write_ack(cmd, ack, ack_error(ack), result ? result : "", 0.0);
    int topic = cmd->topic;
    bool serial = !(c->slots[topic].flags & SAL_CMD_CONCURRENT);
    free_cmd(cmd);
    if (serial) {
        c->slots[topic].busy = false;
        run_next(c, topic);
    }
}

void sal_cmd_release(sal_cmd *cmd)
{
    sal_csc *c = cmd->csc;
    int topic = cmd->topic;
    bool serial = !(c->slots[topic].flags & SAL_CMD_CONCURRENT);
    free_cmd(cmd);
    if (serial) {
        c->slots[topic].busy = false;
    }
}

void sal_csc_ack_detached(sal_csc *c, int topic, int32_t seqnum, const char *identity, int32_t origin,
                          int ack, const char *result, double timeout)
{
    sal_cmd cmd = {.csc = c, .topic = topic, .seqnum = seqnum, .origin = origin};
    snprintf(cmd.identity, sizeof cmd.identity, "%s", identity ? identity : "");
    write_ack(&cmd, ack, ack_error(ack), result ? result : "", timeout);
}

void sal_cmd_complete(sal_cmd *cmd)
{
    sal_cmd_finish(cmd, SAL_CMD_COMPLETE, "Done");
}

void sal_cmd_fail(sal_cmd *cmd, const char *fmt, ...)
{
    char msg[2048];
    int n = snprintf(msg, sizeof msg, "Failed: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    sal_cmd_finish(cmd, SAL_CMD_FAILED, msg);
}

/* --- state machine --- */

static void config_poll_cb(uv_timer_t *timer);

static void set_state(sal_csc *c, sal_state new_state)
{
    sal_state old = c->state;
    c->state = new_state;
    if (c->config != NULL && !c->stopping) {
        /* configurationsAvailable is kept current while in STANDBY */
        if (new_state == SAL_STATE_STANDBY) {
            uv_timer_start(&c->config_poll, config_poll_cb, 0, 1000);
        } else {
            uv_timer_stop(&c->config_poll);
        }
    }
    write_summary_state(c);
    if (new_state != SAL_STATE_FAULT) {
        write_error_code(c, 0, "", "", 0);
    }
    if (c->hooks.state_changed != NULL && old != new_state) {
        c->hooks.state_changed(c->hooks.arg, old, new_state);
    }
}

typedef struct transition {
    const char *name;
    unsigned allowed; /* bit per state */
    sal_state to;
} transition;

#define BIT(s) (1u << (s))

static const transition transitions[] = {
    {"start", BIT(SAL_STATE_STANDBY), SAL_STATE_DISABLED},
    {"enable", BIT(SAL_STATE_DISABLED), SAL_STATE_ENABLED},
    {"disable", BIT(SAL_STATE_ENABLED), SAL_STATE_DISABLED},
    {"standby", BIT(SAL_STATE_DISABLED) | BIT(SAL_STATE_FAULT), SAL_STATE_STANDBY},
    {"exitControl", BIT(SAL_STATE_STANDBY), SAL_STATE_OFFLINE},
};

static const transition *find_transition(const char *name)
{
    for (size_t i = 0; i < sizeof transitions / sizeof transitions[0]; i++) {
        if (strcmp(transitions[i].name, name) == 0) {
            return &transitions[i];
        }
    }
    return NULL;
}

static void shutdown_cb(uv_timer_t *timer)
{
    sal_csc *c = timer->data;
    sal_csc_stop(c, 0);
}

/* --- configuration --- */

static void write_configurations_available(sal_csc *c, const sal_config_available *a)
{
    int t;
    void *s = new_sample(c, "logevent_configurationsAvailable", &t);
    if (s == NULL) {
        return;
    }
    set_str(c, t, s, "overrides", a->overrides);
    set_str(c, t, s, "version", a->version);
    set_str(c, t, s, "url", sal_config_url(c->config));
    set_str(c, t, s, "schemaVersion", sal_config_schema_version(c->config));
    write_and_free(c, "logevent_configurationsAvailable", t, s, 0);
}

static void on_config_scanned(void *arg, const sal_config_available *a)
{
    sal_csc *c = arg;
    if (c->stopping) {
        return;
    }
    if (a->not_git && !c->warned_not_git) {
        c->warned_not_git = true;
        SAL_LOG(c, SAL_LOG_WARNING, "config dir %s is not a git work tree: configuration version unknown",
                sal_config_dir(c->config));
    }
    write_configurations_available(c, a);
}

static void config_poll_cb(uv_timer_t *timer)
{
    sal_csc *c = timer->data;
    sal_config_scan(c->config, on_config_scanned, c);
}

static void write_configuration_applied(sal_csc *c, const sal_config_result *r)
{
    int t;
    void *s = new_sample(c, "logevent_configurationApplied", &t);
    if (s == NULL) {
        return;
    }
    set_str(c, t, s, "configurations", r->files);
    set_str(c, t, s, "version", r->version);
    set_str(c, t, s, "url", sal_config_url(c->config));
    set_str(c, t, s, "schemaVersion", sal_config_schema_version(c->config));
    set_str(c, t, s, "otherInfo", c->opts.config_other_info ? c->opts.config_other_info : "");
    write_and_free(c, "logevent_configurationApplied", t, s, SAL_WRITE_FORCE);
}

static void run_chain(sal_csc *c);

/* End of a start: ack the command (or go on with the --state chain). */
static void start_done(sal_csc *c, const char *failure)
{
    sal_cmd *cmd = c->start_cmd;
    c->start_cmd = NULL;
    c->start_busy = false;
    uv_timer_stop(&c->start_slow);
    if (failure != NULL) {
        SAL_LOG(c, SAL_LOG_ERROR, "begin_start failed; remaining in state %s: %s", sal_state_repr(c->state),
                failure);
    }
    if (cmd != NULL) {
        if (failure != NULL) {
            sal_cmd_fail(cmd, "%s", failure);
        } else {
            sal_cmd_complete(cmd);
        }
    } else if (failure == NULL) {
        run_chain(c);
    }
}

/* Apply a configuration (the application's hook), then go to DISABLED. */
static int apply_configuration(sal_csc *c, json_t *config, char *err, size_t errlen)
{
    if (c->hooks.configure != NULL && c->hooks.configure(c->hooks.arg, config, err, errlen) != 0) {
        return -1;
    }
    return 0;
}

static void on_config_loaded(void *arg, sal_config_result *r)
{
    sal_csc *c = arg;
    if (c->stopping) {
        return;
    }
    char err[2048];
    if (c->state != SAL_STATE_STANDBY) {
        start_done(c, "the summary state changed while the configuration was read");
    } else if (!r->ok) {
        start_done(c, r->message);
    } else if (apply_configuration(c, r->config, err, sizeof err) != 0) {
        start_done(c, err);
    } else {
        write_configuration_applied(c, r);
        set_state(c, SAL_STATE_DISABLED);
        start_done(c, NULL);
    }
}

static void start_slow_cb(uv_timer_t *timer)
{
    sal_csc *c = timer->data;
    if (c->start_busy && c->start_cmd != NULL) {
        /* git may take a while: tell the commander how long to wait */
        sal_cmd_in_progress(c->start_cmd, 60.0, "Reading the configuration");
    }
}

/* Begin STANDBY -> DISABLED; 0 when done now, TRANSITION_PENDING when the
 * configuration is being read, -1 with the ack result in err. */
static int begin_start(sal_csc *c, const char *override, sal_cmd *cmd, char *err, size_t errlen)
{
    if (c->config == NULL) {
        json_t *empty = json_object();
        char msg[1800] = "";
        int rc = apply_configuration(c, empty, msg, sizeof msg);
        json_decref(empty);
        if (rc != 0) {
            SAL_LOG(c, SAL_LOG_ERROR, "begin_start failed; remaining in state %s: %s",
                    sal_state_repr(c->state), msg);
            snprintf(err, errlen, "Failed: %s", msg);
            return -1;
        }
        set_state(c, SAL_STATE_DISABLED);
        return 0;
    }
    if (c->start_busy) {
        snprintf(err, errlen, "Failed: a start is already in progress");
        return -1;
    }
    if (sal_config_load(c->config, override, on_config_loaded, c) != 0) {
        snprintf(err, errlen, "Failed: could not queue the configuration read");
        return -1;
    }
    sal_config_scan(c->config, on_config_scanned, c); /* salobj refreshes configurationsAvailable in start */
    c->start_busy = true;
    c->start_cmd = cmd;
    uv_timer_start(&c->start_slow, start_slow_cb, 200, 0);
    return TRANSITION_PENDING;
}

/* Run a state transition; 0 done, TRANSITION_PENDING (cmd is acked
 * later), or -1 with the ack result in err. */
static int do_transition(sal_csc *c, const transition *tr, const char *override, sal_cmd *cmd, char *err,
                         size_t errlen)
{
    if (!(tr->allowed & BIT(c->state))) {
        snprintf(err, errlen, "Failed: %s not allowed in state %s", tr->name, sal_state_repr(c->state));
        return -1;
    }
    if (c->start_busy) {
        snprintf(err, errlen, "Failed: %s not allowed while a start is in progress", tr->name);
        return -1;
    }
    if (tr->to == SAL_STATE_DISABLED && c->state == SAL_STATE_STANDBY) {
        return begin_start(c, override, cmd, err, errlen);
    }
    set_state(c, tr->to);
    if (tr->to == SAL_STATE_OFFLINE) {
        uv_timer_start(&c->shutdown, shutdown_cb, (uint64_t)(c->opts.shutdown_delay * 1000), 0);
    }
    return 0;
}

/* --- generic command handlers --- */

static void handle_transition(sal_csc *c, sal_cmd *cmd, const char *name)
{
    char err[2048];
    const char *override = "";
    if (strcmp(name, "start") == 0) {
        const char *o =
            sal_sample_get_string(&c->comp->topics[cmd->topic], cmd->data, "configurationOverride");
        override = o ? o : "";
    }
    int rc = do_transition(c, find_transition(name), override, cmd, err, sizeof err);
    if (rc == TRANSITION_PENDING) {
        return; /* acked when the configuration has been read */
    }
    if (rc != 0) {
        sal_cmd_finish(cmd, SAL_CMD_FAILED, err);
        return;
    }
    sal_cmd_complete(cmd);
}

static void handle_set_log_level(sal_csc *c, sal_cmd *cmd)
{
    const sal_topic_info *t = &c->comp->topics[cmd->topic];
    int level = sal_sample_get_i32(t, cmd->data, "level");
    c->log_level = level;
    write_log_level(c);
    sal_cmd_complete(cmd);
}

static void handle_set_auth_list(sal_csc *c, sal_cmd *cmd)
{
    const sal_topic_info *t = &c->comp->topics[cmd->topic];
    const char *users = sal_sample_get_string(t, cmd->data, "authorizedUsers");
    const char *cscs = sal_sample_get_string(t, cmd->data, "nonAuthorizedCSCs");
    char err[512];
    if (sal_auth_update(&c->auth, users ? users : "", cscs ? cscs : "", err, sizeof err) != 0) {
        sal_cmd_fail(cmd, "%s", err);
        return;
    }
    write_auth_list(c, SAL_WRITE_FORCE);
    sal_cmd_complete(cmd);
}

static void dispatch(sal_csc *c, sal_cmd *cmd)
{
    command_slot *slot = &c->slots[cmd->topic];
    cmd->running = true;
    if (slot->handler != NULL) {
        slot->handler(slot->arg, cmd);
        return;
    }
    const char *name = c->comp->topics[cmd->topic].sal_name + strlen("command_");
    if (find_transition(name) != NULL) {
        handle_transition(c, cmd, name);
    } else if (strcmp(name, "setLogLevel") == 0) {
        handle_set_log_level(c, cmd);
    } else if (strcmp(name, "setAuthList") == 0) {
        handle_set_auth_list(c, cmd);
    } else {
        sal_cmd_finish(cmd, SAL_CMD_FAILED, "Failed: This command is not supported");
    }
}

static void run_next(sal_csc *c, int topic)
{
    command_slot *slot = &c->slots[topic];
    if (slot->busy || slot->queue_head == NULL || c->stopping) {
        return;
    }
    sal_cmd *cmd = slot->queue_head;
    slot->queue_head = cmd->next;
    if (slot->queue_head == NULL) {
        slot->queue_tail = NULL;
    }
    slot->queued--;
    slot->busy = true;
    dispatch(c, cmd);
}

static void on_command(void *arg, int topic, const void *sample)
{
    sal_csc *c = arg;
    if (c->stopping) {
        return;
    }
    const sal_topic_info *t = &c->comp->topics[topic];
    int32_t seqnum = sal_sample_get_i32(t, sample, "private_seqNum");
    const char *identity = sal_sample_get_string(t, sample, "private_identity");
    if (!c->started) {
        /* salobj assigns command callbacks only once started and flushes
         * what came before, unanswered: acting on it here would be undone
         * by the start-up's summaryState=STANDBY */
        SAL_LOG(c, SAL_LOG_WARNING, "Ignoring %s from %s with private_seqNum=%d: the CSC has not started yet",
                t->sal_name, identity ? identity : "?", seqnum);
        return;
    }
    if (seqnum <= 0) {
        SAL_LOG(c, SAL_LOG_WARNING, "Ignoring %s with private_seqNum=%d from %s: must be > 0", t->sal_name,
                seqnum, identity ? identity : "?");
        return;
    }
    sal_cmd *cmd = calloc(1, sizeof *cmd);
    void *data = sal_sample_dup(t, sample);
    if (cmd == NULL || data == NULL) {
        free(cmd);
        sal_sample_free(t, data);
        return;
    }
    cmd->csc = c;
    cmd->topic = topic;
    cmd->data = data;
    cmd->seqnum = seqnum;
    cmd->origin = sal_sample_get_i32(t, sample, "private_origin");
    snprintf(cmd->identity, sizeof cmd->identity, "%s", identity ? identity : "");

    if (c->auth_enabled) {
        char why[1024];
        if (!sal_auth_allowed(&c->auth, cmd->identity, why, sizeof why)) {
            write_ack(cmd, SAL_CMD_NOPERM, 1, why, 0.0);
            free_cmd(cmd);
            return;
        }
    }
    command_slot *slot = &c->slots[topic];
    if (slot->flags & SAL_CMD_CONCURRENT) {
        dispatch(c, cmd);
        return;
    }
    if (slot->queued >= QUEUE_MAX) {
        write_ack(cmd, SAL_CMD_FAILED, 1, "Failed: too many commands queued", 0.0);
        free_cmd(cmd);
        return;
    }
    if (slot->queue_tail != NULL) {
        slot->queue_tail->next = cmd;
    } else {
        slot->queue_head = cmd;
    }
    slot->queue_tail = cmd;
    slot->queued++;
    run_next(c, topic);
}

int sal_csc_add_command(sal_csc *c, const char *name, sal_cmd_handler handler, void *arg, unsigned flags,
                        char *err, size_t errlen)
{
    char sal_name[128];
    snprintf(sal_name, sizeof sal_name, "command_%s", name);
    int t = topic_of(c, sal_name);
    if (t < 0) {
        snprintf(err, errlen, "%s has no command %s", c->comp->name, name);
        return -EINVAL;
    }
    c->slots[t].handler = handler;
    c->slots[t].arg = arg;
    c->slots[t].flags = flags;
    return 0;
}

/* --- heartbeat, duplicate check, start-up --- */

static void heartbeat_cb(uv_timer_t *timer)
{
    sal_csc *c = timer->data;
    int t;
    void *s = new_sample(c, "logevent_heartbeat", &t);
    write_and_free(c, "logevent_heartbeat", t, s, SAL_WRITE_FORCE);
}

static void on_heartbeat(void *arg, int topic, const void *sample)
{
    sal_csc *c = arg;
    if (c->started || c->stopping) {
        return; /* the check only runs at start-up */
    }
    const sal_topic_info *t = &c->comp->topics[topic];
    int32_t origin = sal_sample_get_i32(t, sample, "private_origin");
    /* only a heartbeat written since this check began counts: history (a
     * Kafka topic's last record, a dead instance's) is not another CSC */
    double sent = sal_sample_get_number(t, sample, "private_sndStamp", 0);
    if (origin != sal_origin(c->sal) && sent >= c->check_started - 0.5) {
        fprintf(stderr, "ERROR %s: %s with origin=%d quitting: found another instance with origin=%d.\n",
                c->comp->name, sal_identity(c->sal), sal_origin(c->sal), origin);
        sal_csc_stop(c, 2);
    }
}

static void write_startup_events(sal_csc *c)
{
    int t;
    void *s = new_sample(c, "logevent_simulationMode", &t);
    if (s != NULL) {
        set_num(c, t, s, "mode", c->opts.simulation_mode);
        write_and_free(c, "logevent_simulationMode", t, s, SAL_WRITE_FORCE);
    }
    s = new_sample(c, "logevent_softwareVersions", &t);
    if (s != NULL) {
        const char *ospl = getenv("OSPL_RELEASE");
        set_str(c, t, s, "salVersion", c->comp->sal_version);
        set_str(c, t, s, "xmlVersion", c->comp->xml_version);
        set_str(c, t, s, "openSpliceVersion", ospl ? ospl : "?");
        set_str(c, t, s, "cscVersion", c->opts.csc_version);
        set_str(c, t, s, "subsystemVersions", c->opts.subsystem_versions);
        write_and_free(c, "logevent_softwareVersions", t, s, SAL_WRITE_FORCE);
    }
    c->state = SAL_STATE_STANDBY;
    write_summary_state(c);
    write_error_code(c, 0, "", "", 0);
    if (c->config != NULL) {
        uv_timer_start(&c->config_poll, config_poll_cb, 0, 1000); /* configurationsAvailable */
    }
    if (c->hooks.state_changed != NULL) {
        c->hooks.state_changed(c->hooks.arg, 0, SAL_STATE_STANDBY);
    }
}

/* Run the rest of the --state chain (start, enable, exitControl). */
static void run_chain(sal_csc *c)
{
    while (c->chain != NULL && *c->chain != NULL && !c->stopping) {
        char err[2048];
        const char *step = *c->chain++;
        int rc = do_transition(c, find_transition(step), c->opts.override, NULL, err, sizeof err);
        if (rc == TRANSITION_PENDING) {
            return; /* continues in start_done */
        }
        if (rc != 0) {
            SAL_LOG(c, SAL_LOG_ERROR, "Could not reach initial state %s: %s",
                    sal_state_repr(c->opts.initial_state), err);
            c->chain = NULL;
            return;
        }
    }
}

/* Reach opts.initial_state from STANDBY with the standard commands. */
static void go_to_initial_state(sal_csc *c)
{
    static const char *const chain_disabled[] = {"start", NULL};
    static const char *const chain_enabled[] = {"start", "enable", NULL};
    static const char *const chain_offline[] = {"exitControl", NULL};
    switch (c->opts.initial_state) {
    case SAL_STATE_DISABLED:
        c->chain = chain_disabled;
        break;
    case SAL_STATE_ENABLED:
        c->chain = chain_enabled;
        break;
    case SAL_STATE_OFFLINE:
        c->chain = chain_offline;
        break;
    default:
        return;
    }
    run_chain(c);
}

static void startup_done_cb(uv_timer_t *timer)
{
    sal_csc *c = timer->data;
    if (c->stopping) {
        return;
    }
    c->started = true;
    write_startup_events(c);
    go_to_initial_state(c);
}

static int open_endpoints(sal_csc *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->comp->ntopics; i++) {
        const sal_topic_info *t = &c->comp->topics[i];
        int rc = 0;
        if (t->kind == SAL_TOPIC_COMMAND) {
            rc = sal_reader_add(c->sal, (int)i, on_command, c, err, errlen);
        } else if (t->kind == SAL_TOPIC_EVENT || t->kind == SAL_TOPIC_ACKCMD) {
            rc = sal_writer_add(c->sal, (int)i, err, errlen);
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (c->opts.duplicate_check >= 0 && c->t_heartbeat >= 0) {
        return sal_reader_add(c->sal, c->t_heartbeat, on_heartbeat, c, err, errlen);
    }
    return 0;
}

static void on_sal_error(void *arg, const char *message)
{
    sal_csc *c = arg;
    SAL_LOG(c, SAL_LOG_ERROR, "transport: %s", message);
    sal_csc_fault(c, 1, message, "");
}

/* The CSC's index: one of the application's indices when it lists them,
 * else one the interface allows. */
static bool index_allowed(const sal_component_info *comp, const sal_csc_options *opts)
{
    if (opts->nindices == 0) {
        return sal_component_index_allowed(comp, opts->index);
    }
    for (size_t i = 0; i < opts->nindices; i++) {
        if (opts->indices[i].value == opts->index) {
            return comp->indexed;
        }
    }
    return false;
}

int sal_csc_open(sal_csc **out, uv_loop_t *loop, const sal_component_info *comp, const sal_csc_options *opts,
                 const sal_csc_hooks *hooks, char *err, size_t errlen)
{
    *out = NULL;
    const sal_transport_ops *ops = opts->transport;
    if (ops == NULL) {
        snprintf(err, errlen, "no SAL transport given");
        return -EINVAL;
    }
    if (!index_allowed(comp, opts)) {
        snprintf(err, errlen, "%d is not a valid SAL index for %s", opts->index, comp->name);
        return -EINVAL;
    }
    sal_csc *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->slots = calloc(comp->ntopics, sizeof *c->slots);
    if (c->slots == NULL) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->loop = loop;
    c->comp = comp;
    c->opts = *opts;
    if (hooks != NULL) {
        c->hooks = *hooks;
    }
    snprintf(c->override, sizeof c->override, "%s", opts->override ? opts->override : "");
    c->opts.override = c->override;
    c->log_level = opts->log_level > SAL_LOG_INFO ? SAL_LOG_INFO : opts->log_level;
    c->state = SAL_STATE_STANDBY;
    c->t_ackcmd = topic_of(c, "ackcmd");
    c->t_heartbeat = topic_of(c, "logevent_heartbeat");

    int rc = sal_open(&c->sal, loop, comp, opts->index, ops, NULL, err, errlen);
    if (rc != 0) {
        free(c->slots);
        free(c);
        return rc;
    }
    sal_set_error_cb(c->sal, on_sal_error, c);
    if (opts->config_schema != NULL && topic_of(c, "logevent_configurationApplied") >= 0) {
        rc = sal_config_open(&c->config, loop, comp->name, opts->config_schema, opts->config_dir,
                             opts->config_pkg, getenv("LSST_SITE"), err, errlen);
        if (rc != 0) {
            sal_close(c->sal);
            free(c->slots);
            free(c);
            return rc;
        }
    }
    c->auth_enabled = sal_auth_wanted(comp) && sal_auth_env_enabled();
    sal_auth_init(&c->auth);
    uv_timer_init(loop, &c->heartbeat);
    uv_timer_init(loop, &c->startup);
    uv_timer_init(loop, &c->shutdown);
    uv_timer_init(loop, &c->config_poll);
    uv_timer_init(loop, &c->start_slow);
    c->heartbeat.data = c->startup.data = c->shutdown.data = c->config_poll.data = c->start_slow.data = c;
    c->handles_open = 5;
    sal_republish_events(c->sal, !opts->no_republish);
    *out = c;
    return 0;
}

int sal_csc_start(sal_csc *c, char *err, size_t errlen)
{
    int rc = open_endpoints(c, err, errlen);
    if (rc != 0) {
        return rc;
    }
    c->log_level = c->opts.log_level;
    write_log_level(c);
    if (c->auth_enabled) {
        write_auth_list(c, SAL_WRITE_FORCE);
    }
    c->check_started = sal_now_tai(c->sal);
    uint64_t hb = (uint64_t)(c->opts.heartbeat_interval * 1000);
    uv_timer_start(&c->heartbeat, heartbeat_cb, hb, hb);
    double wait = c->opts.duplicate_check > 0 ? c->opts.duplicate_check : 0;
    uv_timer_start(&c->startup, startup_done_cb, (uint64_t)(wait * 1000), 0);
    return 0;
}

sal_state sal_csc_state(const sal_csc *c)
{
    return c->state;
}

int sal_csc_check_enabled(const sal_csc *c, char *err, size_t errlen)
{
    if (c->state == SAL_STATE_ENABLED) {
        return 0;
    }
    if (c->state == SAL_STATE_FAULT) {
        const void *last = sal_last_written(c->sal, topic_of(c, "logevent_errorCode"));
        const sal_topic_info *t = &c->comp->topics[topic_of(c, "logevent_errorCode")];
        snprintf(err, errlen, "Not allowed in state=%s in Fault state: errorCode=%d, errorReport=%s",
                 sal_state_repr(c->state), last ? sal_sample_get_i32(t, last, "errorCode") : 0,
                 last ? sal_sample_get_string(t, last, "errorReport") : "");
        return -1;
    }
    snprintf(err, errlen, "Not allowed in state=%s", sal_state_repr(c->state));
    return -1;
}

void sal_csc_fault(sal_csc *c, int code, const char *report, const char *traceback)
{
    if (c->faulting || c->stopping) {
        return;
    }
    c->faulting = true;
    sal_state old = c->state;
    c->state = SAL_STATE_FAULT;
    write_error_code(c, code, report ? report : "", traceback ? traceback : "", SAL_WRITE_FORCE);
    SAL_LOG(c, SAL_LOG_CRITICAL, "Fault! errorCode=%d, errorReport='%s'", code, report ? report : "");
    write_summary_state(c);
    if (c->hooks.state_changed != NULL && old != SAL_STATE_FAULT) {
        c->hooks.state_changed(c->hooks.arg, old, SAL_STATE_FAULT);
    }
    c->faulting = false;
}

sal *sal_csc_sal(sal_csc *c)
{
    return c->sal;
}

static void on_handle_closed(uv_handle_t *h)
{
    sal_csc *c = h->data;
    c->handles_open--;
}

static void drop_queued(sal_csc *c)
{
    for (size_t i = 0; i < c->comp->ntopics; i++) {
        sal_cmd *cmd = c->slots[i].queue_head;
        while (cmd != NULL) {
            sal_cmd *next = cmd->next;
            free_cmd(cmd);
            cmd = next;
        }
        c->slots[i].queue_head = c->slots[i].queue_tail = NULL;
        c->slots[i].queued = 0;
    }
}

void sal_csc_stop(sal_csc *c, int exit_code)
{
    if (c->stopping) {
        return;
    }
    c->stopping = true;
    c->exit_code = exit_code;
    if (c->hooks.closing != NULL) {
        c->hooks.closing(c->hooks.arg);
    }
    uv_close((uv_handle_t *)&c->heartbeat, on_handle_closed);
    uv_close((uv_handle_t *)&c->startup, on_handle_closed);
    uv_close((uv_handle_t *)&c->shutdown, on_handle_closed);
    uv_close((uv_handle_t *)&c->config_poll, on_handle_closed);
    uv_close((uv_handle_t *)&c->start_slow, on_handle_closed);
    if (c->start_cmd != NULL) {
        free_cmd(c->start_cmd);
        c->start_cmd = NULL;
    }
    sal_config_close(c->config);
    c->config = NULL;
    drop_queued(c);
    sal_close(c->sal);
    c->sal = NULL;
}

bool sal_csc_stopped(const sal_csc *c)
{
    return c->stopping;
}

int sal_csc_exit_code(const sal_csc *c)
{
    return c->exit_code;
}

void sal_csc_free(sal_csc *c)
{
    if (c == NULL) {
        return;
    }
    drop_queued(c);
    sal_auth_fini(&c->auth);
    free(c->slots);
    free(c);
}
