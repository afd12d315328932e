/* sal_csc_cmd.c - CSC commands: objects, per-topic queues, acks; see sal_csc.h. */
#include "sal_csc__internal.h"
#include "ocps/sal_clock.h"
#include "ocps/sal_hash.h"
#include "ocps/sal_logline.h"
#include "ocps/sal_utf8.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void run_next(sal_csc *c, int topic);

/* Integer field f of the ack (ack, error, origin, cmdtype: int32 in every
 * release) without the range checks a double needs. */
static void set_ack_number(const sal_topic_info *t, const sal_field_info *f, void *s, double v)
{
    char err[128];
    if (f == NULL) {
        return;
    }
    if (f->type == SAL_FIELD_LONG && v >= INT32_MIN && v <= INT32_MAX) {
        int32_t i = (int32_t)v;
        memcpy((char *)s + f->offset, &i, sizeof i);
        return;
    }
    sal_field_set_number(t, f, s, 0, v, err, sizeof err);
}

/* Every ack is written from one sample kept by the CSC (it runs on the
 * loop or in its gate, never two at once), its strings lent for the write:
 * nothing is allocated or freed per ack. */
static void write_ack(sal_cmd *cmd, int ack, int error, const char *result, double timeout)
{
    sal_csc *c = cmd->csc;
    if (c->sal == NULL || c->t_ackcmd < 0) {
        return;
    }
    const sal_topic_info *t = &c->comp->topics[c->t_ackcmd];
    if (c->ack_sample == NULL && (c->ack_sample = sal_sample_new_lent(t)) == NULL) {
        return;
    }
    void *s = c->ack_sample;
    char err[256];
    sal_sample_set_seqnum(t, s, cmd->seqnum);
    set_ack_number(t, c->ackf.ack, s, ack);
    set_ack_number(t, c->ackf.error, s, error);
    set_ack_number(t, c->ackf.origin, s, cmd->origin);
    set_ack_number(t, c->ackf.cmdtype, s, cmd->topic);
    set_ack_number(t, c->ackf.timeout, s, timeout);
    char clean[256]; /* ackcmd's result is a string<256> */
    if (c->ackf.result != NULL && sal_field_lend_string(t, c->ackf.result, s, result, err, sizeof err) != 0) {
        /* the reason kept, with what a SAL string cannot hold replaced */
        sal_utf8_sanitize(result, clean, sizeof clean);
        if (sal_field_lend_string(t, c->ackf.result, s, clean, err, sizeof err) != 0) {
            sal_field_lend_string(t, c->ackf.result, s, "(result not valid text)", err, sizeof err);
        }
    }
    if (c->ackf.identity != NULL &&
        sal_field_lend_string(t, c->ackf.identity, s, cmd->identity, err, sizeof err) != 0) {
        sal_field_lend_string(t, c->ackf.identity, s, "", err, sizeof err);
    }
    int rc = sal_write(c->sal, c->t_ackcmd, s, SAL_WRITE_KEEP_SEQNUM, err, sizeof err);
    int slot = sal_ack_slot(ack);
    if (rc == 0 && slot >= 0) {
        c->stats.acks[slot]++;
        bool final = ack != SAL_CMD_ACK && ack != SAL_CMD_INPROGRESS && ack != SAL_CMD_STALLED;
        if (final && cmd->topic >= 0 && (size_t)cmd->topic < c->comp->ntopics) {
            c->slots[cmd->topic].stats.final[slot]++;
        }
    }
    if (rc != 0) {
        if (sal_log_format_get() == SAL_LOG_FORMAT_JSON) {
            char msg[1400];
            snprintf(msg, sizeof msg, "ackcmd write failed: %s", err);
            sal_log_line(SAL_LOG_ERROR, c->comp->name, __FILE__, __func__, __LINE__, msg);
        } else {
            sal_log_say(SAL_LOG_ERROR, c->comp->name, "ackcmd write failed: %s", err);
        }
    }
    /* nothing borrowed outlives the write */
    if (c->ackf.result != NULL) {
        sal_field_lend_string(t, c->ackf.result, s, "", err, sizeof err);
    }
    if (c->ackf.identity != NULL) {
        sal_field_lend_string(t, c->ackf.identity, s, "", err, sizeof err);
    }
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

double sal_ack_lease_extend(sal_ack_lease *lease, double now, double wait)
{
    double until = now + wait;
    if (lease->until == 0) {
        lease->until = until;
        return wait;
    }
    double more = until - lease->until;
    if (more <= 0) {
        return 0;
    }
    lease->until = until;
    return more;
}

void sal_cmd_in_progress(sal_cmd *cmd, double wait, const char *result)
{
    double timeout = sal_ack_lease_extend(&cmd->lease, sal_clock_monotonic(), wait);
    write_ack(cmd, SAL_CMD_INPROGRESS, 0, result ? result : "", timeout);
}

void sal_csc__free_cmd(sal_cmd *cmd)
{
    sal_sample_free(&cmd->csc->comp->topics[cmd->topic], cmd->data);
    free(cmd);
}

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
    sal_csc__free_cmd(cmd);
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
    sal_csc__free_cmd(cmd);
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
    sal_csc__dispatch(c, cmd);
}

/* Was this command (its seqNum, origin, identity and send time) taken
 * among the topic's last RECENT_COMMANDS? Kafka delivers a command at
 * least once: a producer that retries after a lost ack (salobj: acks=1,
 * no idempotence) stores it twice, byte for byte. A Remote never sends
 * two commands with one seqNum and send time. Remembers it if not. */
static bool taken_before(command_slot *slot, int32_t seqnum, int32_t origin, const char *identity,
                         double snd_stamp)
{
    uint64_t h = sal_fnv1a64_str(identity);
    for (unsigned i = 0; i < slot->nrecent; i++) {
        const recent_command *r = &slot->recent[i];
        if (r->seqnum == seqnum && r->origin == origin && r->identity_hash == h &&
            memcmp(&r->snd_stamp, &snd_stamp, sizeof snd_stamp) == 0) {
            return true;
        }
    }
    slot->recent[slot->recent_next] =
        (recent_command){.snd_stamp = snd_stamp, .identity_hash = h, .seqnum = seqnum, .origin = origin};
    slot->recent_next = (slot->recent_next + 1) % RECENT_COMMANDS;
    if (slot->nrecent < RECENT_COMMANDS) {
        slot->nrecent++;
    }
    return false;
}

/* A commander's identity longer than the runtime carries is not cut (its
 * acks would never match it, the command would time out there): the
 * command is refused, with its identity's first SAL_IDENTITY_MAX bytes
 * echoed (all that was kept of it) and a WARNING naming its length. True
 * (cmd freed) when so. */
static bool identity_too_long(sal_csc *c, const sal_topic_info *t, sal_cmd *cmd)
{
    size_t len = sal_sample_identity_length(t, cmd->data);
    if (len <= SAL_IDENTITY_MAX) {
        return false;
    }
    char why[128];
    snprintf(why, sizeof why,
             "the commander's identity (private_identity) is %zu bytes, longer than the %d "
             "this CSC accepts",
             len, SAL_IDENTITY_MAX);
    SAL_LOG(c, SAL_LOG_WARNING, "Refusing %s with private_seqNum=%d: %s", t->sal_name, cmd->seqnum, why);
    char result[160];
    snprintf(result, sizeof result, "Failed: %s", why);
    write_ack(cmd, SAL_CMD_FAILED, 1, result, 0.0);
    sal_csc__free_cmd(cmd);
    return true;
}

void sal_csc__on_command(void *arg, int topic, void *sample)
{
    sal_csc *c = arg;
    const sal_topic_info *t = &c->comp->topics[topic];
    if (c->stopping) {
        sal_sample_free(t, sample);
        return;
    }
    if (!c->started && c->nearly < SAL_CSC_EARLY_MAX) {
        /* read during the duplicate check: run once it has passed (salobj
         * runs it at once; an instance that then quits as a duplicate
         * would have acted on a command meant for the live one) */
        c->early[c->nearly].topic = topic;
        c->early[c->nearly].sample = sample;
        c->nearly++;
        return;
    }
    c->slots[topic].stats.received++;
    int32_t seqnum = sal_sample_seqnum(t, sample);
    const char *identity = sal_sample_identity(t, sample);
    if (!c->started) {
        SAL_LOG(c, SAL_LOG_WARNING,
                "Ignoring %s from %s with private_seqNum=%d: %d commands already wait for the start-up",
                t->sal_name, identity ? identity : "?", seqnum, SAL_CSC_EARLY_MAX);
        sal_sample_free(t, sample);
        return;
    }
    if (seqnum <= 0) {
        SAL_LOG(c, SAL_LOG_WARNING, "Ignoring %s with private_seqNum=%d from %s: must be > 0", t->sal_name,
                seqnum, identity ? identity : "?");
        sal_sample_free(t, sample);
        return;
    }
    if (taken_before(&c->slots[topic], seqnum, sal_sample_origin(t, sample), identity,
                     sal_sample_snd_stamp(t, sample))) {
        SAL_LOG(c, SAL_LOG_WARNING, "Ignoring %s from %s with private_seqNum=%d: delivered again",
                t->sal_name, identity ? identity : "?", seqnum);
        sal_sample_free(t, sample);
        return;
    }
    sal_cmd *cmd = calloc(1, sizeof *cmd);
    if (cmd == NULL) {
        sal_sample_free(t, sample);
        return;
    }
    cmd->csc = c;
    cmd->topic = topic;
    cmd->data = sample; /* handed over by the runtime: kept without a copy */
    cmd->seqnum = seqnum;
    cmd->origin = sal_sample_origin(t, sample);
    if (identity != NULL) { /* cmd is zeroed: the copy stays terminated */
        memcpy(cmd->identity, identity, strnlen(identity, sizeof cmd->identity - 1));
    }
    if (identity_too_long(c, t, cmd)) {
        return;
    }

    if (c->auth_enabled) {
        char why[1024];
        if (!sal_auth_allowed(&c->auth, cmd->identity, why, sizeof why)) {
            write_ack(cmd, SAL_CMD_NOPERM, 1, why, 0.0);
            sal_csc__free_cmd(cmd);
            return;
        }
    }
    command_slot *slot = &c->slots[topic];
    if (slot->flags & SAL_CMD_CONCURRENT) {
        sal_csc__dispatch(c, cmd);
        return;
    }
    if (slot->queued >= QUEUE_MAX) {
        write_ack(cmd, SAL_CMD_FAILED, 1, "Failed: too many commands queued", 0.0);
        sal_csc__free_cmd(cmd);
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
    int t = sal_csc__topic_of(c, sal_name);
    if (t < 0) {
        snprintf(err, errlen, "%s has no command %s", c->comp->name, name);
        return -EINVAL;
    }
    c->slots[t].handler = handler;
    c->slots[t].arg = arg;
    c->slots[t].flags = flags;
    return 0;
}

void sal_csc__run_early(sal_csc *c)
{
    size_t n = c->nearly;
    c->nearly = 0;
    for (size_t i = 0; i < n; i++) {
        sal_csc__on_command(c, c->early[i].topic, c->early[i].sample);
    }
}

void sal_csc__drop_queued(sal_csc *c)
{
    for (size_t i = 0; i < c->nearly; i++) {
        sal_sample_free(&c->comp->topics[c->early[i].topic], c->early[i].sample);
    }
    c->nearly = 0;
    for (size_t i = 0; i < c->comp->ntopics; i++) {
        sal_cmd *cmd = c->slots[i].queue_head;
        while (cmd != NULL) {
            sal_cmd *next = cmd->next;
            sal_csc__free_cmd(cmd);
            cmd = next;
        }
        c->slots[i].queue_head = c->slots[i].queue_tail = NULL;
        c->slots[i].queued = 0;
    }
}

const sal_csc_stats *sal_csc_get_stats(const sal_csc *c)
{
    return &c->stats;
}

const sal_csc_cmd_stats *sal_csc_command_stats(const sal_csc *c, int topic)
{
    if (topic < 0 || (size_t)topic >= c->comp->ntopics || c->comp->topics[topic].kind != SAL_TOPIC_COMMAND) {
        return NULL;
    }
    return &c->slots[topic].stats;
}

const sal_component_info *sal_csc_component(const sal_csc *c)
{
    return c->comp;
}

int32_t sal_csc_index(const sal_csc *c)
{
    return c->opts.index;
}
