/* sal_csc.c - generic CSC behaviour; see sal_csc.h. */
#include "sal_csc__internal.h"
#include "ocps/sal_logline.h"
#include "ocps/sal_utf8.h"

#include <errno.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    o->open_retry = 600.0;
}

static void retry_due(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static void retry_closed(uv_handle_t *h)
{
    *(bool *)h->data = true;
}

/* Run the loop for `seconds` (what is already on it, e.g. the /metrics
 * server, keeps answering). */
static void run_loop_for(uv_loop_t *loop, double seconds)
{
    bool flag = false;
    uv_timer_t timer;
    uv_timer_init(loop, &timer);
    timer.data = &flag;
    uv_timer_start(&timer, retry_due, (uint64_t)(seconds * 1000), 0);
    while (!flag) {
        uv_run(loop, UV_RUN_ONCE);
    }
    flag = false;
    uv_close((uv_handle_t *)&timer, retry_closed);
    while (!flag) {
        uv_run(loop, UV_RUN_ONCE);
    }
}

/* sal_open, tried again while the transport cannot be reached
 * (-EHOSTUNREACH: a Kafka broker or schema registry down or answering 5xx;
 * no DDS return code is that value) for up to
 * opts->open_retry seconds: a CSC started during a short outage (a
 * rollout) comes up when it ends instead of exiting. The loop runs while
 * it waits (the failed runtime's handles close; /metrics answers); each
 * attempt is logged. */
static int open_with_retry(sal_csc *c, uv_loop_t *loop, const sal_csc_options *opts, char *err, size_t errlen)
{
    uint64_t t0 = uv_hrtime();
    double wait = 1;
    for (;;) {
        int rc = sal_open(&c->sal, loop, c->comp, opts->index, opts->transport, NULL, err, errlen);
        double spent = (double)(uv_hrtime() - t0) / 1e9;
        if (rc != -EHOSTUNREACH || spent + wait > opts->open_retry) {
            return rc;
        }
        char msg[1400];
        snprintf(msg, sizeof msg, "cannot open the transport: %.1000s; trying again in %g s (for up to %g s)",
                 err, wait, opts->open_retry);
        sal_log_line(SAL_LOG_WARNING, c->comp->name, __FILE__, __func__, __LINE__, msg);
        run_loop_for(loop, wait);
        wait = wait * 2 < 15 ? wait * 2 : 15;
    }
}

int sal_csc__topic_of(const sal_csc *c, const char *sal_name)
{
    return sal_component_find_topic(c->comp, sal_name);
}

int sal_csc_write(sal_csc *c, const char *sal_name, void *sample, unsigned flags)
{
    int t = sal_csc__topic_of(c, sal_name);
    return t < 0 ? -EINVAL : sal_csc__write_topic(c, t, sample, flags);
}

int sal_csc__write_topic(sal_csc *c, int t, void *sample, unsigned flags)
{
    if (c->sal == NULL) {
        return -EINVAL;
    }
    const char *sal_name = c->comp->topics[t].sal_name;
    char err[256];
    int rc = sal_write(c->sal, t, sample, flags, err, sizeof err);
    if (rc != 0) {
        if (sal_log_format_get() == SAL_LOG_FORMAT_JSON) {
            char msg[1400];
            snprintf(msg, sizeof msg, "write %s failed: %s", sal_name, err);
            sal_log_line(SAL_LOG_ERROR, sal_identity(c->sal), __FILE__, __func__, __LINE__, msg);
        } else {
            sal_log_say(SAL_LOG_ERROR, sal_identity(c->sal), "write %s failed: %s", sal_name, err);
        }
    }
    return rc;
}

/* Write an event whose fields are given as name/value pairs: numbers as
 * "name", (double) and strings as "name", "value". Kept small and explicit
 * for the generic events below. */
void *sal_csc__new_sample(sal_csc *c, const char *sal_name, int *topic)
{
    *topic = sal_csc__topic_of(c, sal_name);
    if (*topic < 0) {
        return NULL;
    }
    return sal_sample_new(&c->comp->topics[*topic]);
}

void sal_csc__set_str(sal_csc *c, int topic, void *s, const char *field, const char *value)
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

void sal_csc__write_and_free(sal_csc *c, const char *sal_name, int topic, void *s, unsigned flags)
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
    void *s = sal_csc__new_sample(c, "logevent_summaryState", &t);
    if (s != NULL) {
        set_num(c, t, s, "summaryState", c->state);
        sal_csc__write_and_free(c, "logevent_summaryState", t, s, 0);
    }
}

static void write_error_code(sal_csc *c, int code, const char *report, const char *traceback, unsigned flags)
{
    int t;
    void *s = sal_csc__new_sample(c, "logevent_errorCode", &t);
    if (s != NULL) {
        set_num(c, t, s, "errorCode", code);
        sal_csc__set_str(c, t, s, "errorReport", report);
        sal_csc__set_str(c, t, s, "traceback", traceback);
        sal_csc__write_and_free(c, "logevent_errorCode", t, s, flags);
    }
}

/* Are the user fields of `sample` other than `level` as sal_sample_new
 * leaves them (0, "")? */
static bool only_level_set(const sal_topic_info *t, const sal_field_info *level, const void *sample)
{
    for (size_t i = 0; i < t->nfields; i++) {
        const sal_field_info *f = &t->fields[i];
        if (f == level || (f->flags & SAL_FIELD_PRIVATE)) {
            continue;
        }
        if (f->type == SAL_FIELD_STRING) {
            const char *v = sal_field_get_string(f, sample);
            if (v != NULL && *v != '\0') {
                return false;
            }
            continue;
        }
        for (size_t k = 0; k < f->count; k++) {
            if (sal_field_get_number(f, sample, k) != 0) {
                return false;
            }
        }
    }
    return true;
}

static void write_log_level(sal_csc *c)
{
    if (c->sal == NULL) {
        return;
    }
    const sal_topic_info *t = &c->comp->topics[c->t_log_level];
    /* unchanged (every setLogLevel of the same level): the sample built
     * below would equal the last one written and be dropped by sal_write,
     * so neither build nor compare it */
    const void *last = sal_last_written(c->sal, c->t_log_level);
    if (last != NULL && c->f_level != NULL && sal_field_get_number(c->f_level, last, 0) == c->log_level &&
        only_level_set(t, c->f_level, last)) {
        return;
    }
    void *s = sal_sample_new(t);
    if (s != NULL) {
        char err[256];
        if (c->f_level != NULL) {
            sal_field_set_number(t, c->f_level, s, 0, c->log_level, err, sizeof err);
        }
        sal_csc__write_topic(c, c->t_log_level, s, 0);
        sal_sample_free(t, s);
    }
}

static void write_auth_list(sal_csc *c, unsigned flags)
{
    int t;
    void *s = sal_csc__new_sample(c, "logevent_authList", &t);
    if (s == NULL) {
        return;
    }
    char users[SAL_AUTH_LIST_TEXT_MAX];
    char cscs[SAL_AUTH_LIST_TEXT_MAX];
    sal_auth_format(&c->auth, users, sizeof users, cscs, sizeof cscs);
    sal_csc__set_str(c, t, s, "authorizedUsers", users);
    sal_csc__set_str(c, t, s, "nonAuthorizedCSCs", cscs);
    sal_csc__write_and_free(c, "logevent_authList", t, s, flags);
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
    sal_log_line(level, c->comp->name, file, func, line, message); /* text or JSON (sal_logline.h) */
    if (!c->started || c->stopping) {
        return;
    }
    int t;
    void *s = sal_csc__new_sample(c, "logevent_logMessage", &t);
    if (s == NULL) {
        return;
    }
    if (!sal_text_valid(message, sizeof message, "\n\t")) { /* e.g. a command's bad bytes quoted */
        char clean[sizeof message];
        sal_utf8_sanitize(message, clean, sizeof clean);
        memcpy(message, clean, sizeof message);
    }
    sal_csc__set_str(c, t, s, "name", c->comp->name);
    set_num(c, t, s, "level", level);
    sal_csc__set_str(c, t, s, "message", message);
    sal_csc__set_str(c, t, s, "traceback", "");
    sal_csc__set_str(c, t, s, "filePath", file);
    sal_csc__set_str(c, t, s, "functionName", func);
    set_num(c, t, s, "lineNumber", line);
    set_num(c, t, s, "process", getpid());
    set_num(c, t, s, "timestamp", sal_now_tai(c->sal));
    sal_csc__write_and_free(c, "logevent_logMessage", t, s, 0);
}

/* --- state machine --- */

void sal_csc__set_state(sal_csc *c, sal_state new_state)
{
    sal_state old = c->state;
    c->state = new_state;
    if (c->config != NULL && !c->stopping) {
        /* configurationsAvailable is kept current while in STANDBY */
        if (new_state == SAL_STATE_STANDBY) {
            uv_timer_start(&c->config_poll, sal_csc__config_poll_cb, 0, 1000);
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
    sal_csc_close(c, 0);
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
        return sal_csc__begin_start(c, override, cmd, err, errlen);
    }
    sal_csc__set_state(c, tr->to);
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
    /* salobj passes the level to Python's logger.setLevel and reports the
     * effective level: 0 (NOTSET) inherits the root logger's, WARNING */
    c->log_level = level == 0 ? SAL_LOG_WARNING : level;
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

void sal_csc__dispatch(sal_csc *c, sal_cmd *cmd)
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

/* --- heartbeat, duplicate check, start-up --- */

static void heartbeat_cb(uv_timer_t *timer)
{
    sal_csc *c = timer->data;
    int t;
    void *s = sal_csc__new_sample(c, "logevent_heartbeat", &t);
    if (s != NULL) {
        if (sal_csc_write(c, "logevent_heartbeat", s, SAL_WRITE_FORCE) == 0) {
            c->stats.heartbeats++;
        }
        sal_sample_free(&c->comp->topics[t], s);
    }
}

/* The duplicate-instance check (salobj 7.4's, which reads heartbeats for
 * a fixed time) ends as soon as the transport shows that no other
 * instance can exist:
 * - DDS (and inproc): the heartbeat reader matches every heartbeat writer
 *   of the component, this process's own and those of CSCs of other SAL
 *   indices included. If after SAL_CSC_DISCOVERY_MS the matched writers
 *   are only this one and those whose heartbeats carried another index,
 *   there is no other.
 * - Kafka (no discovery): the reader counts as matched once the history
 *   read of the heartbeat topic has been delivered. This process's first
 *   heartbeat, written as the check begins (after the reader was
 *   assigned), must also have come back through the reader: everything
 *   written to the topic before the check began has then been read. If the
 *   history held no heartbeat of this index from another process written
 *   in the last three heartbeat intervals, there is no other. If it held
 *   one, that writer is gone once a heartbeat of this process written
 *   three intervals (+0.5 s) after it, or at the end of --duplicate-check,
 *   has come back with no newer one of that writer before it (one
 *   partition: read in the order written). Until the reader has shown
 *   that, the check does not end, even after --duplicate-check seconds: a
 *   reader that has read nothing cannot rule out another instance.
 * Otherwise the check waits, as before, for another process's heartbeat
 * up to --duplicate-check seconds. A heartbeat of another process that
 * comes after start-up but within those seconds (discovery slower than
 * the window) still ends this one with status 2 if that process has
 * written more heartbeats (it is the older one). */
#define SAL_CSC_DISCOVERY_MS 150u
#define SAL_CSC_CHECK_POLL_MS 5u

/* Of two live instances of one index, does this one yield (quit at
 * start-up, FAULT later)? The one with more heartbeats written has run
 * longer and stays. Ties: the lower origin stays; between equal origins
 * (two containers, each CSC pid 1), the one that sent that heartbeat
 * first. */
static bool sal_csc_yields(sal_csc *c, int topic, const void *other)
{
    const sal_topic_info *t = &c->comp->topics[topic];
    const void *own = sal_last_written(c->sal, topic);
    int32_t own_seq = own != NULL ? sal_sample_seqnum(t, own) : 0;
    int32_t other_seq = sal_sample_seqnum(t, other);
    if (other_seq != own_seq || own == NULL) {
        return other_seq > own_seq;
    }
    int32_t other_origin = sal_sample_origin(t, other);
    if (other_origin != sal_origin(c->sal)) {
        return other_origin < sal_origin(c->sal);
    }
    return sal_sample_snd_stamp(t, other) < sal_sample_snd_stamp(t, own);
}

/* After start-up: a heartbeat of this index written by another process
 * since this one started means two live instances (one was frozen or cut
 * off during the other's start-up check, e.g. SIGSTOP, a network
 * partition). Both would run every execute. The newer goes to FAULT
 * (errorCode SAL_CSC_ERROR_DUPLICATE) and so refuses commands but
 * standby/exitControl; the older logs a warning. Once per other origin. */
static void note_namesake(sal_csc *c, int topic, const void *sample)
{
    const sal_topic_info *t = &c->comp->topics[topic];
    int32_t origin = sal_sample_origin(t, sample);
    if (sal_is_own_sample(c->sal, topic, sample) || origin == c->namesake ||
        sal_sample_snd_stamp(t, sample) < c->check_started) {
        return;
    }
    c->namesake = origin;
    char msg[512];
    if (sal_csc_yields(c, topic, sample)) {
        snprintf(msg, sizeof msg,
                 "another live instance of this SAL index (origin=%d) writes heartbeats: two CSCs would run "
                 "every command; this one (origin=%d, the newer) stops accepting them",
                 origin, sal_origin(c->sal));
        sal_csc_fault(c, SAL_CSC_ERROR_DUPLICATE, msg, "");
    } else {
        SAL_LOG(
            c, SAL_LOG_WARNING,
            "another live instance of this SAL index (origin=%d, the newer) writes heartbeats: it should go "
            "to FAULT",
            origin);
    }
}

static void on_heartbeat(void *arg, int topic, const void *sample)
{
    sal_csc *c = arg;
    if (c->stopping) {
        return;
    }
    if (c->started && uv_now(c->loop) >= c->check_until) {
        note_namesake(c, topic, sample); /* the check ran for --duplicate-check seconds from start-up */
        return;
    }
    const sal_topic_info *t = &c->comp->topics[topic];
    int32_t origin = sal_sample_origin(t, sample);
    /* only a heartbeat written since this check began counts: history (a
     * Kafka topic's last record, a dead instance's) is not another CSC */
    double sent = sal_sample_snd_stamp(t, sample);
    if (sal_is_own_sample(c->sal, topic, sample)) {
        if (sent >= c->check_started) { /* not a dead namesake's from the history */
            c->own_read_back = true;
            c->own_read_sent = sent > c->own_read_sent ? sent : c->own_read_sent;
        }
        return;
    }
    /* of two instances, the newer quits: a heartbeat's seqNum counts the
     * writer's heartbeats. That matters when both watch at once, or when
     * this one started early (no other seen) and hears one later. */
    if (!sal_csc_yields(c, topic, sample)) {
        return;
    }
    int32_t other_seq = sal_sample_seqnum(t, sample);
    /* alive: sent after this check began, or a newer heartbeat of a writer
     * already heard (a CSC killed just before this one started left a
     * heartbeat a few tenths of a second old: that alone is no proof; a
     * clock a little behind delays the verdict by one heartbeat) */
    bool newer = c->heard_other_live && origin == c->heard_origin && other_seq > c->heard_seq;
    if (sent >= c->check_started || newer) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s with origin=%d quitting: found another instance with origin=%d.",
                 sal_identity(c->sal), sal_origin(c->sal), origin);
        sal_log_line(SAL_LOG_ERROR, c->comp->name, __FILE__, __func__, __LINE__, msg);
        sal_csc_close(c, 2);
    } else if (sent >= c->check_started - 3 * c->opts.heartbeat_interval - 0.5) {
        c->heard_other_live = true; /* maybe alive: wait for its next heartbeat */
        c->heard_origin = origin;
        c->heard_seq = other_seq;
        c->heard_sent = sent;
    }
}

static void write_startup_events(sal_csc *c)
{
    int t;
    void *s = sal_csc__new_sample(c, "logevent_simulationMode", &t);
    if (s != NULL) {
        set_num(c, t, s, "mode", c->opts.simulation_mode);
        sal_csc__write_and_free(c, "logevent_simulationMode", t, s, SAL_WRITE_FORCE);
    }
    s = sal_csc__new_sample(c, "logevent_softwareVersions", &t);
    if (s != NULL) {
        if (sal_reports_sal_versions(c->sal)) { /* salobj 8 leaves them empty */
            const char *ospl = getenv("OSPL_RELEASE");
            sal_csc__set_str(c, t, s, "salVersion", c->comp->sal_version);
            sal_csc__set_str(c, t, s, "openSpliceVersion", ospl ? ospl : "?");
        }
        sal_csc__set_str(c, t, s, "xmlVersion", c->comp->xml_version);
        sal_csc__set_str(c, t, s, "cscVersion", c->opts.csc_version);
        sal_csc__set_str(c, t, s, "subsystemVersions", c->opts.subsystem_versions);
        sal_csc__write_and_free(c, "logevent_softwareVersions", t, s, SAL_WRITE_FORCE);
    }
    /* the state as it is: STANDBY, unless a fault came first (kept, with
     * its errorCode, as salobj reports its current state in start_phase2) */
    write_summary_state(c);
    if (c->state != SAL_STATE_FAULT) {
        write_error_code(c, 0, "", "", 0);
    }
    if (c->config != NULL && c->state == SAL_STATE_STANDBY) {
        uv_timer_start(&c->config_poll, sal_csc__config_poll_cb, 0, 1000); /* configurationsAvailable */
    }
    if (c->hooks.state_changed != NULL && c->state == SAL_STATE_STANDBY) {
        c->hooks.state_changed(c->hooks.arg, 0, SAL_STATE_STANDBY); /* (a fault has told its own) */
    }
}

/* Run the rest of the --state chain (start, enable, exitControl). */
void sal_csc__run_chain(sal_csc *c)
{
    while (c->chain != NULL && *c->chain != NULL && !c->stopping) {
        char err[2048];
        const char *step = *c->chain++;
        int rc = do_transition(c, find_transition(step), c->opts.override, NULL, err, sizeof err);
        if (rc == TRANSITION_PENDING) {
            return; /* continues in sal_csc__start_done */
        }
        if (rc != 0) {
            SAL_LOG(c, SAL_LOG_ERROR, "Could not reach initial state %s: %s",
                    sal_state_repr(c->opts.initial_state), err);
            c->chain = NULL;
            return;
        }
    }
}

/* Reach opts.initial_state from STANDBY with the standard commands (not
 * when a command or a fault during the duplicate check came first). */
static void go_to_initial_state(sal_csc *c)
{
    if (c->opts.initial_state != SAL_STATE_STANDBY && (c->state != SAL_STATE_STANDBY || c->start_busy)) {
        SAL_LOG(c, SAL_LOG_WARNING, "Not going to initial state %s: already %s%s",
                sal_state_repr(c->opts.initial_state), sal_state_repr(c->state),
                c->start_busy ? " with a start in progress" : "");
        return;
    }
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
    sal_csc__run_chain(c);
}

/* Can another instance be ruled out already? */
static bool no_other_instance(sal_csc *c, uint64_t now)
{
    int32_t writers = sal_matched(c->sal, c->t_heartbeat, false);
    if (sal_keeps_history(c->sal)) {
        if (writers == 0 || !c->own_read_back) {
            return false; /* the history, or what was written since, not read yet */
        }
        if (!c->heard_other_live) {
            return true;
        }
        /* a recent heartbeat of another writer: gone if none newer came
         * before one of ours written well after it */
        double gone = c->heard_sent + 3 * c->opts.heartbeat_interval + 0.5;
        double bound = c->check_started + (c->opts.duplicate_check > 0 ? c->opts.duplicate_check : 0);
        /* 50 ms: the loop's timers count whole milliseconds */
        return c->own_read_sent >= (gone < bound ? gone : bound) - 0.05;
    }
    /* our own, and CSCs of other SAL indices on the same topic (each one's
     * heartbeat reaches us within a second, or at once when it re-publishes
     * its events to a new reader) */
    return now - c->check_begun >= SAL_CSC_DISCOVERY_MS &&
           writers <= 1 + sal_other_index_writers(c->sal, c->t_heartbeat);
}

static void startup_done_cb(uv_timer_t *timer)
{
    sal_csc *c = timer->data;
    if (c->stopping) {
        return;
    }
    uint64_t now = uv_now(c->loop);
    if (now < c->hold_until) {
        return; /* test hook: the start-up lasts at least this long */
    }
    if (now < c->check_until && !no_other_instance(c, now)) {
        return; /* polled again */
    }
    if (now >= c->check_until && c->check_until > c->check_begun && sal_keeps_history(c->sal) &&
        !no_other_instance(c, now)) {
        /* Kafka: the reader has not yet shown what was written during the
         * check; starting now could miss a running instance */
        if (!c->warned_unread) {
            c->warned_unread = true;
            SAL_LOG(c, SAL_LOG_WARNING,
                    "duplicate check: the heartbeat reader has not yet read what was written during the "
                    "%g s check; waiting for it before starting",
                    c->opts.duplicate_check);
        }
        return; /* polled again */
    }
    uv_timer_stop(timer);
    c->started = true;
    write_startup_events(c);
    sal_csc__run_early(c); /* before the --state chain, which they may make moot */
    go_to_initial_state(c);
}

static int open_endpoints(sal_csc *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->comp->ntopics; i++) {
        const sal_topic_info *t = &c->comp->topics[i];
        int rc = 0;
        if (t->kind == SAL_TOPIC_COMMAND) {
            rc = sal_reader_add_keeping(c->sal, (int)i, sal_csc__on_command, c, err, errlen);
        } else if (t->kind == SAL_TOPIC_EVENT || t->kind == SAL_TOPIC_ACKCMD) {
            rc = sal_writer_add(c->sal, (int)i, err, errlen);
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (c->opts.duplicate_check >= 0 && c->t_heartbeat >= 0) {
        sal_count_other_indices(c->sal, c->t_heartbeat);
        /* another instance may have this one's origin (its pid: each in a
         * container as pid 1): this one's heartbeats are told by their send
         * times */
        int rc = sal_track_own_writes(c->sal, c->t_heartbeat);
        if (rc != 0) {
            snprintf(err, errlen, "out of memory");
            return rc;
        }
        return sal_reader_add(c->sal, c->t_heartbeat, on_heartbeat, c, err, errlen);
    }
    return 0;
}

static void on_sal_warning(void *arg, const char *message)
{
    SAL_LOG((sal_csc *)arg, SAL_LOG_WARNING, "transport: %s", message);
}

static void on_sal_error(void *arg, const char *message)
{
    sal_csc *c = arg;
    SAL_LOG(c, SAL_LOG_ERROR, "transport: %s", message);
    sal_csc_fault(c, SAL_CSC_ERROR_TRANSPORT, message, "");
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

/* The generic topics every CSC writes or reads: resolved once, here, so an
 * interface that lacks one fails at open with its name. */
static int resolve_generics(sal_csc *c, char *err, size_t errlen)
{
    static const char *const required[] = {"ackcmd", "logevent_heartbeat", "logevent_summaryState",
                                           "logevent_errorCode", "logevent_logLevel"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (sal_csc__topic_of(c, required[i]) < 0) {
            snprintf(err, errlen, "the %s interface of ts_xml %s has no %s, which a CSC needs", c->comp->name,
                     c->comp->xml_version, required[i]);
            return -EINVAL;
        }
    }
    c->t_ackcmd = sal_csc__topic_of(c, "ackcmd");
    c->t_heartbeat = sal_csc__topic_of(c, "logevent_heartbeat");
    c->t_error_code = sal_csc__topic_of(c, "logevent_errorCode");
    c->t_log_level = sal_csc__topic_of(c, "logevent_logLevel");
    const sal_topic_info *ack = &c->comp->topics[c->t_ackcmd];
    c->ackf.ack = sal_topic_field(ack, "ack");
    c->ackf.error = sal_topic_field(ack, "error");
    c->ackf.result = sal_topic_field(ack, "result");
    c->ackf.identity = sal_topic_field(ack, "identity");
    c->ackf.origin = sal_topic_field(ack, "origin");
    c->ackf.cmdtype = sal_topic_field(ack, "cmdtype");
    c->ackf.timeout = sal_topic_field(ack, "timeout");
    c->f_level = sal_topic_field(&c->comp->topics[c->t_log_level], "level");
    return 0;
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
    int rc = resolve_generics(c, err, errlen);
    if (rc != 0) {
        free(c->slots);
        free(c);
        return rc;
    }
    rc = open_with_retry(c, loop, opts, err, errlen);
    if (rc != 0) {
        free(c->slots);
        free(c);
        return rc;
    }
    sal_set_error_cb(c->sal, on_sal_error, c);
    sal_set_warning_cb(c->sal, on_sal_warning, c);
    if (opts->config_schema != NULL && sal_csc__topic_of(c, "logevent_configurationApplied") >= 0) {
        rc = sal_config_open(&c->config, loop, comp->name, opts->config_schema, opts->config_dir,
                             opts->config_pkg, getenv("LSST_SITE"), err, errlen);
        if (rc != 0) {
            sal_close(c->sal, NULL, NULL);
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
    c->handles_open = 6; /* five timers and the runtime */
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
    if (sal_auth_wanted(c->comp)) { /* as salobj 7's Controller.start, whether or not it is enforced */
        write_auth_list(c, SAL_WRITE_FORCE);
    }
    c->check_started = sal_now_tai(c->sal);
    /* the first heartbeat now, as salobj's heartbeat loop: an instance
     * starting next reads it from the history (Kafka) */
    heartbeat_cb(&c->heartbeat);
    /* the loop's time may be that of before the transport opened: the
     * heartbeats then follow the first by whole intervals (the Kafka check
     * waits for the one written at its end) */
    uv_update_time(c->loop);
    uint64_t hb = (uint64_t)(c->opts.heartbeat_interval * 1000);
    uv_timer_start(&c->heartbeat, heartbeat_cb, hb, hb);
    double wait = c->opts.duplicate_check > 0 ? c->opts.duplicate_check : 0;
    c->check_begun = uv_now(c->loop);
    c->check_until = c->check_begun + (uint64_t)(wait * 1000);
    /* test hook (tests only): OCPS_CSC_TEST_STARTUP_HOLD=<seconds> keeps the
     * start-up going at least that long, so that a test can send a command
     * while it lasts without racing the duplicate check */
    const char *hold = getenv("OCPS_CSC_TEST_STARTUP_HOLD");
    double hold_s = hold != NULL ? strtod(hold, NULL) : 0;
    c->hold_until = hold_s > 0 && hold_s < 60 ? c->check_begun + (uint64_t)(hold_s * 1000) : 0;
    if (wait == 0 && c->hold_until == 0) {
        uv_timer_start(&c->startup, startup_done_cb, 0, 0);
    } else {
        uv_timer_start(&c->startup, startup_done_cb, SAL_CSC_CHECK_POLL_MS, SAL_CSC_CHECK_POLL_MS);
    }
    return 0;
}

sal_state sal_csc_state(const sal_csc *c)
{
    return c->state;
}

/* s as Python's repr() of a str gives it: in single quotes (double ones
 * if s has a ' and no "), with \\, the quote, \n, \r, \t, other control
 * characters (C0, DEL, C1), U+00A0, U+00AD, U+2028 and U+2029 escaped;
 * other characters as they are (Python also escapes the rarer ones it
 * deems not printable, e.g. U+200B). */
static void py_str_repr(const char *s, char *out, size_t outlen)
{
    char q = strchr(s, '\'') != NULL && strchr(s, '"') == NULL ? '"' : '\'';
    size_t o = 0;
    out[o++] = q;
    /* room left for the longest escape (6), the closing quote and the NUL */
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && o + 8 < outlen; p++) {
        const char *esc = *p == '\\'   ? "\\\\"
                          : *p == '\n' ? "\\n"
                          : *p == '\r' ? "\\r"
                          : *p == '\t' ? "\\t"
                                       : NULL;
        if (esc != NULL) {
            o += (size_t)snprintf(out + o, outlen - o, "%s", esc);
        } else if (*p == (unsigned char)q) {
            o += (size_t)snprintf(out + o, outlen - o, "\\%c", q);
        } else if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && sal_utf8_char_len(p) == 0)) {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", *p);
        } else if (p[0] == 0xC2 && (p[1] < 0xA1 || p[1] == 0xAD)) { /* U+0080-00A0, U+00AD: \\x.. */
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", p[1]);
            p++;
        } else if (p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) { /* U+2028, U+2029 */
            o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", 0x2000 + (p[2] & 0x3F));
            p += 2;
        } else {
            size_t n = *p < 0x80 ? 1 : sal_utf8_char_len(p); /* whole characters only */
            if (o + n + 2 > outlen) {
                break;
            }
            memcpy(out + o, p, n);
            o += n;
            p += n - 1;
        }
    }
    out[o++] = q;
    out[o] = '\0';
}

int sal_csc_check_enabled(const sal_csc *c, const char *action, char *err, size_t errlen)
{
    if (c->state == SAL_STATE_ENABLED) {
        return 0;
    }
    char what[128];
    if (action != NULL && *action != '\0') {
        snprintf(what, sizeof what, "%.100s not allowed", action);
    } else {
        snprintf(what, sizeof what, "Not allowed");
    }
    if (c->state == SAL_STATE_FAULT) {
        const void *last = sal_last_written(c->sal, c->t_error_code);
        const sal_topic_info *t = &c->comp->topics[c->t_error_code];
        char report[1024];
        py_str_repr(last ? sal_sample_get_string(t, last, "errorReport") : "", report, sizeof report);
        snprintf(err, errlen, "%s in Fault state: errorCode=%d, errorReport=%s", what,
                 last ? sal_sample_get_i32(t, last, "errorCode") : 0, report);
        return -1;
    }
    snprintf(err, errlen, "%s in state=%s", what, sal_state_repr(c->state));
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
    if (c->config != NULL) {
        uv_timer_stop(&c->config_poll); /* configurationsAvailable is kept current in STANDBY only */
    }
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

/* The last of the CSC's handles (and its runtime) has closed: free it,
 * then tell the application. */
static void handle_gone(sal_csc *c)
{
    if (--c->handles_open > 0) {
        return;
    }
    void (*closed)(void *, int) = c->hooks.closed;
    void *arg = c->hooks.arg;
    int exit_code = c->exit_code;
    sal_csc__drop_queued(c);
    sal_auth_fini(&c->auth);
    free(c->pending);
    free(c->ack_sample);
    free(c->slots);
    free(c);
    if (closed != NULL) {
        closed(arg, exit_code);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    handle_gone(h->data);
}

static void on_sal_closed(void *arg)
{
    handle_gone(arg);
}

void sal_csc_exit(sal_csc *c)
{
    if (c->stopping) {
        return;
    }
    if (!c->started || c->start_busy || c->state == SAL_STATE_OFFLINE) {
        sal_csc_close(c, 0);
        return;
    }
    /* the application's state hook is not run: it is closing anyway */
    c->state = SAL_STATE_OFFLINE;
    write_summary_state(c);
    uv_timer_start(&c->shutdown, shutdown_cb, (uint64_t)(c->opts.shutdown_delay * 1000), 0);
}

void sal_csc_close(sal_csc *c, int exit_code)
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
        sal_csc__free_cmd(c->start_cmd);
        c->start_cmd = NULL;
    }
    sal_config_close(c->config);
    c->config = NULL;
    sal_csc__drop_queued(c);
    sal *s = c->sal;
    c->sal = NULL;
    sal_close(s, on_sal_closed, c);
}
