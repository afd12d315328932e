/* ocps_cmd_session.c - the commander's session: commands, acks, printed
 * samples; see ocps_cmd.h. It reports to whoever drives it (the one-shot
 * main or the interactive reader) through the cmdr callbacks. */
#include "ocps_cmd.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ocps/sal_clock.h"
#include "ocps/sal_json.h"
#include "ocps/sal_protocol.h"
#include "ocps/sal_remote.h"

int cmdr_setup_status(int rc)
{
    if (rc == -EINVAL ||
        rc == -E2BIG) { /* missing settings; an --identity longer than the transport carries */
        return EXIT_USAGE;
    }
    return rc == -ENOMEM ? EXIT_FAILED : EXIT_TIMEOUT;
}

/* Topic index of command `name` ("start"), or -1; needs no transport. */
static int command_topic(const cmdr *c, const char *name)
{
    char sal_name[160];
    snprintf(sal_name, sizeof sal_name, "command_%s", name);
    int t = sal_component_find_topic(c->comp, sal_name);
    return t >= 0 && c->comp->topics[t].kind == SAL_TOPIC_COMMAND ? t : -1;
}

static void free_command(cmdr *c)
{
    if (c->sample != NULL) {
        sal_sample_free(&c->comp->topics[command_topic(c, c->command)], c->sample);
        c->sample = NULL;
    }
    free(c->command);
    c->command = NULL;
}

void cmdr_finish(cmdr *c, int status)
{
    if (c->finished) {
        return;
    }
    c->finished = true;
    c->status = status;
    if (c->on_finish != NULL) {
        void (*finishing)(cmdr *) = c->on_finish;
        c->on_finish = NULL;
        finishing(c);
    }
    free_command(c);
    free(c->show_text);
    c->show_text = NULL;
    uv_timer_stop(&c->poll);
    uv_timer_stop(&c->deadline);
    uv_signal_stop(&c->sigint);
    uv_close((uv_handle_t *)&c->poll, NULL);
    uv_close((uv_handle_t *)&c->deadline, NULL);
    uv_close((uv_handle_t *)&c->sigint, NULL);
    if (c->remote != NULL) {
        sal_remote_close(c->remote, NULL, NULL);
        c->remote = NULL;
    }
}

void cmdr_command_done(cmdr *c, int status)
{
    uv_timer_stop(&c->poll);
    free_command(c);
    if (c->on_command_done != NULL) {
        c->on_command_done(c, status);
    } else {
        cmdr_finish(c, status);
    }
}

static void print_json_line(FILE *out, const sal_topic_info *t, const void *sample, json_t *fields)
{
    json_t *line =
        json_pack("{s:s, s:i, s:f, s:o}", "topic", t->sal_name, "salIndex", sal_sample_index(t, sample),
                  "sndStamp", sal_sample_snd_stamp(t, sample), "fields", fields);
    char *text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
    fprintf(out, "%s\n", text ? text : "{}");
    free(text);
    json_decref(line);
}

/* Seconds since the sample was written (its private_sndStamp, TAI, against
 * the runtime's TAI clock); 0 for one not stamped. */
static double sample_age(const cmdr *c, const sal_topic_info *t, const void *sample)
{
    double sent = sal_sample_snd_stamp(t, sample);
    return sent > 0 ? sal_now_tai(sal_remote_sal(c->remote)) - sent : 0;
}

/* The sample as cmdr_print_sample shows it, on out. */
static void format_sample(cmdr *c, FILE *out, int topic, const void *sample)
{
    const sal_topic_info *t = &c->comp->topics[topic];
    json_t *fields = sal_sample_to_json(t, sample, false);
    if (c->json) {
        print_json_line(out, t, sample, fields);
        return;
    }
    /* when the CSC wrote it, not when it was read: show and a late joiner
     * read history */
    double age = sample_age(c, t, sample);
    time_t secs = time(NULL) - (time_t)age;
    struct tm tm;
    localtime_r(&secs, &tm);
    fprintf(out, "%02d:%02d:%02d %s", tm.tm_hour, tm.tm_min, tm.tm_sec, t->sal_name);
    if (c->comp->indexed && c->remote != NULL && sal_index(sal_remote_sal(c->remote)) == 0) {
        fprintf(out, " salIndex=%d", (int)sal_sample_index(t, sample)); /* every index is read */
    }
    const char *key;
    json_t *value;
    json_object_foreach(fields, key, value)
    {
        const char *s = json_string_value(value);
        json_t *parsed = NULL;
        /* job results are JSON: show them pretty-printed */
        if (s != NULL && s[0] == '{' && (parsed = json_loads(s, 0, NULL)) != NULL) {
            char *pretty = json_dumps(parsed, JSON_INDENT(2) | JSON_SORT_KEYS);
            fprintf(out, "\n  %s=%s", key, pretty ? pretty : s);
            free(pretty);
            json_decref(parsed);
            continue;
        }
        char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
        fprintf(out, " %s=%s", key, text ? text : "?");
        free(text);
        if (strcmp(key, "summaryState") == 0) {
            fprintf(out, " %s", sal_state_repr((int)json_integer_value(value)));
        }
    }
    if (c->mode == MODE_SHOW && age >= 2) {
        fprintf(out, " (written %.0f s ago)", age);
    }
    fprintf(out, "\n");
    json_decref(fields);
}

void cmdr_print_sample(cmdr *c, int topic, const void *sample)
{
    format_sample(c, stdout, topic, sample);
    fflush(stdout);
}

/* A heartbeat of the target: alive if recent (not a dead CSC's last one
 * from Kafka's history) or if another one follows. A recent one (any: the
 * first included) also shows its command readers at work: a CSC opens
 * them before its first heartbeat and keeps what they read during its
 * duplicate check for after it, and a salobj CSC writes its first only
 * once that check has passed. */
static void note_heartbeat(cmdr *c, int topic, const void *sample)
{
    const sal_topic_info *t = &c->comp->topics[topic];
    if (strcmp(t->sal_name, "logevent_heartbeat") != 0) {
        return;
    }
    double age = sample_age(c, t, sample);
    c->heartbeats++;
    c->alive = c->alive || age < 5 || c->heartbeats >= 2;
    c->csc_started = c->csc_started || (age > -1 && age < 5);
}

static void on_heartbeat(void *arg, int topic, const void *sample)
{
    note_heartbeat(arg, topic, sample);
}

int cmdr_watch_heartbeat(cmdr *c)
{
    char err[512];
    int rc = sal_remote_subscribe(c->remote, "logevent_heartbeat", on_heartbeat, c, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "ocps-cmd: %s\n", err);
        return cmdr_setup_status(rc);
    }
    return 0;
}

static void on_show_settled(uv_timer_t *t)
{
    cmdr *c = t->data;
    fputs(c->show_text != NULL ? c->show_text : "", stdout);
    fflush(stdout);
    cmdr_finish(c, EXIT_OK);
}

/* show: a late joiner reads the event's history, oldest first over DDS,
 * then the CSC's late-joiner round: keep the sample written last and
 * print it once no more came for SHOW_SETTLE_MS. */
#define SHOW_SETTLE_MS 200
static void keep_newest(cmdr *c, int topic, const void *sample)
{
    const sal_topic_info *t = &c->comp->topics[topic];
    double stamp = sal_sample_snd_stamp(t, sample);
    if (c->show_text == NULL || stamp >= c->show_stamp) {
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        if (m != NULL) {
            format_sample(c, m, topic, sample);
            if (fclose(m) == 0) {
                free(c->show_text);
                c->show_text = text;
                c->show_stamp = stamp;
            } else {
                free(text);
            }
        }
    }
    uv_timer_start(&c->poll, on_show_settled, SHOW_SETTLE_MS, 0);
}

static void on_event(void *arg, int topic, const void *sample)
{
    cmdr *c = arg;
    note_heartbeat(c, topic, sample);
    if (c->mode == MODE_WATCH || c->mode == MODE_INTERACTIVE) {
        cmdr_print_sample(c, topic, sample);
    } else if (c->mode == MODE_SHOW && !c->finished) {
        keep_newest(c, topic, sample);
    }
}

static int ack_status(int ack)
{
    switch (ack) {
    case SAL_CMD_COMPLETE:
        return EXIT_OK;
    case SAL_CMD_NOPERM:
        return EXIT_NOPERM;
    case SAL_CMD_NOACK:
    case SAL_CMD_TIMEOUT:
        return EXIT_TIMEOUT;
    default:
        return EXIT_FAILED;
    }
}

/* An execute's final CMD_COMPLETE means its job ended (failed_job_ack
 * complete, the Python OCPS's answer): did it complete? Its summary
 * ({"job_id","phase","reason",...}) says; a result with no phase (index
 * 101's) counts as done, one cut short (not JSON) by the phase it names. */
static bool job_completed(const char *result)
{
    json_t *o = json_loads(result, 0, NULL);
    const char *phase = json_string_value(json_object_get(o, "phase"));
    bool completed = phase == NULL || strcmp(phase, "completed") == 0;
    if (o == NULL && strstr(result, "\"phase\":\"") != NULL) {
        completed = strstr(result, "\"phase\":\"completed\"") != NULL;
        phase = completed ? "completed" : "(see the result)";
    }
    if (!completed) {
        const char *reason = json_string_value(json_object_get(o, "reason"));
        const char *message = json_string_value(json_object_get(o, "message"));
        fprintf(stderr, "ocps-cmd: job %s ended %s (%s)%s%s\n",
                json_string_value(json_object_get(o, "job_id"))
                    ? json_string_value(json_object_get(o, "job_id"))
                    : "?",
                phase, reason ? reason : "?", message ? ": " : "", message ? message : "");
    }
    json_decref(o);
    return completed;
}

static void on_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    cmdr *c = arg;
    if (!final) {
        c->answered = true;
        printf("%s %s timeout=%.1f%s%s\n", c->command, sal_ack_name(ack), timeout, *result ? " result=" : "",
               result);
        fflush(stdout);
        return;
    }
    printf("%s %s error=%d result=%s\n", c->command, sal_ack_name(ack), error, result);
    fflush(stdout);
    if (ack == SAL_CMD_COMPLETE && strcmp(c->command, "execute") == 0 && !job_completed(result)) {
        cmdr_command_done(c, EXIT_FAILED); /* said by job_completed */
        return;
    }
    if (ack == SAL_CMD_NOACK && !c->answered) { /* its reader is there: the index is the likely cause */
        fprintf(stderr,
                "ocps-cmd: no ack from %s:%d in %.1f s: no CSC with that SAL index answered (a CSC ignores "
                "commands for another index)%s\n",
                c->comp->name, sal_index(sal_remote_sal(c->remote)), c->timeout,
                c->alive ? "" : "; no heartbeat of it was read either: is it running?");
    }
    cmdr_command_done(c, ack_status(ack));
}

/* No (live) heartbeat of the target within --discovery: the command ends
 * with EXIT_TIMEOUT, not `what` (answered, sent). */
static void no_heartbeat(cmdr *c, const char *what)
{
    fprintf(
        stderr,
        "ocps-cmd: no heartbeat of %s:%d in %.0f s: no CSC with that SAL index is running (or reachable); "
        "%s not %s\n",
        c->comp->name, sal_index(sal_remote_sal(c->remote)), c->discovery, c->command, what);
    cmdr_command_done(c, EXIT_TIMEOUT);
}

static void on_poll(uv_timer_t *t)
{
    cmdr *c = t->data;
    if (c->command == NULL) {
        uv_timer_stop(t);
        return;
    }
    if (c->sent) { /* a command alone: ended early when nothing shows a CSC */
        if (c->mode == MODE_COMMAND && !c->answered && !c->alive &&
            sal_clock_monotonic() - c->started > c->discovery) {
            no_heartbeat(c, "answered");
        }
        return;
    }
    if (!sal_remote_ready(c->remote, c->command)) {
        if (sal_clock_monotonic() - c->started > c->discovery) {
            fprintf(stderr, "ocps-cmd: no %s:%d found (no reader of command_%s discovered in %.0f s)\n",
                    c->comp->name, sal_index(sal_remote_sal(c->remote)), c->command, c->discovery);
            cmdr_command_done(c, EXIT_TIMEOUT);
        }
        return;
    }
    /* A transport without discovery (Kafka: it keeps history instead) does
     * not show the CSC's command reader, and a command written before the
     * CSC reads its topic is never read (its reader starts at the end of
     * the log): a command alone waits for a live heartbeat of the CSC,
     * which a running CSC's history read gives at once. */
    if (c->mode == MODE_COMMAND && sal_keeps_history(sal_remote_sal(c->remote)) && !c->csc_started) {
        if (sal_clock_monotonic() - c->started > c->discovery) {
            no_heartbeat(c, "sent");
        }
        return;
    }
    c->sent = true;
    uv_timer_start(&c->poll, on_poll, 100, 100); /* now only the heartbeat watch above */
    char err[512];
    if (sal_remote_command(c->remote, c->command, c->sample, c->timeout, on_ack, c, NULL, err, sizeof err) !=
        0) {
        fprintf(stderr, "ocps-cmd: %s\n", err);
        cmdr_command_done(c, EXIT_FAILED);
    }
}

void cmdr_list_topics(const sal_component_info *comp, FILE *out)
{
    for (size_t i = 0; i < comp->ntopics; i++) {
        const sal_topic_info *t = &comp->topics[i];
        if (t->kind != SAL_TOPIC_COMMAND && t->kind != SAL_TOPIC_EVENT) {
            continue;
        }
        fprintf(out, "%s", t->kind == SAL_TOPIC_COMMAND ? t->sal_name + strlen("command_") : t->sal_name);
        for (size_t f = 0; f < t->nfields; f++) {
            if (!(t->fields[f].flags & SAL_FIELD_PRIVATE)) {
                fprintf(out, " %s%s:%s", t->kind == SAL_TOPIC_COMMAND ? "--" : "", t->fields[f].name,
                        sal_field_type_name(t->fields[f].type));
            }
        }
        fprintf(out, "\n");
    }
}

/* Fill the command sample from --field value pairs. */
static int fill_fields(cmdr *c, int argc, char **argv)
{
    const sal_topic_info *t = &c->comp->topics[command_topic(c, c->command)];
    for (int i = 0; i < argc; i += 2) {
        if (strncmp(argv[i], "--", 2) != 0 || i + 1 >= argc) {
            fprintf(stderr, "ocps-cmd: expected --FIELD VALUE, got %s\n", argv[i]);
            return -1;
        }
        const sal_field_info *f = sal_topic_field(t, argv[i] + 2);
        if (f == NULL || (f->flags & SAL_FIELD_PRIVATE)) {
            /* ocps-cmd's own options go before the target */
            const char *hint = cmdr_is_own_option(argv[i] + 2)
                                   ? " (ocps-cmd's own options go before the target, "
                                     "e.g. ocps-cmd --timeout 5 OCPS:1 enable)"
                                   : "";
            fprintf(stderr, "ocps-cmd: command %s has no field %s%s\n", c->command, argv[i] + 2, hint);
            return -1;
        }
        char err[512];
        if (sal_sample_set_from_text(t, c->sample, f->name, argv[i + 1], err, sizeof err) != 0) {
            fprintf(stderr, "ocps-cmd: %s\n", err);
            return -1;
        }
    }
    return 0;
}

/* Check the command name and fill its sample; needs no transport, so
 * usage errors are reported before connecting. */
int cmdr_command_prepare(cmdr *c, const char *name, int argc, char **argv)
{
    int t = command_topic(c, name);
    if (t < 0 && name[0] == '-') { /* "ocps-cmd OCPS:1 --timeout 15 disable" */
        fprintf(stderr,
                "ocps-cmd: %s is an option here, where the command belongs: options go before NAME "
                "(ocps-cmd [OPTIONS] NAME COMMAND [--FIELD VALUE ...])\n",
                name);
        return EXIT_USAGE;
    }
    if (t < 0) {
        fprintf(stderr, "ocps-cmd: %s has no command %s (try: ocps-cmd %s topics)\n", c->comp->name, name,
                c->comp->name);
        return EXIT_USAGE;
    }
    c->command = strdup(name);
    c->sample = sal_sample_new(&c->comp->topics[t]);
    if (c->command == NULL || c->sample == NULL || fill_fields(c, argc, argv) != 0) {
        free_command(c);
        return EXIT_USAGE;
    }
    return 0;
}

/* Send the prepared command once the CSC has been discovered. */
int cmdr_command_start(cmdr *c)
{
    char err[512];
    int rc = sal_remote_prepare(c->remote, c->command, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "ocps-cmd: %s\n", err);
        free_command(c);
        return cmdr_setup_status(rc);
    }
    c->sent = false;
    c->answered = false;
    c->started = sal_clock_monotonic(); /* heartbeats count from the session's start: not reset here */
    uv_timer_start(&c->poll, on_poll, 0, 5);
    return 0;
}

int cmdr_command_begin(cmdr *c, const char *name, int argc, char **argv)
{
    int rc = cmdr_command_prepare(c, name, argc, argv);
    return rc != 0 ? rc : cmdr_command_start(c);
}

/* Subscribe for watch/show/interactive; `names` empty means every event
 * (and telemetry for watch). */
/* Is topic t the one `name` means (its SAL name, or an event's name)? */
static bool topic_named(const sal_topic_info *t, const char *name)
{
    const char *evt = "logevent_";
    return strcmp(t->sal_name, name) == 0 ||
           (strncmp(t->sal_name, evt, strlen(evt)) == 0 && strcmp(t->sal_name + strlen(evt), name) == 0);
}

int cmdr_subscribe(cmdr *c, int n, char **names)
{
    char err[512];
    for (int k = 0; k < n; k++) { /* a misspelt name is not a silent CSC */
        bool known = false;
        for (size_t i = 0; i < c->comp->ntopics && !known; i++) {
            known = topic_named(&c->comp->topics[i], names[k]);
        }
        if (!known) {
            fprintf(stderr,
                    "ocps-cmd: %s has no topic %s (`ocps-cmd %s topics` lists its commands and events)\n",
                    c->comp->name, names[k], c->comp->name);
            return EXIT_USAGE;
        }
    }
    for (size_t i = 0; i < c->comp->ntopics; i++) {
        const sal_topic_info *t = &c->comp->topics[i];
        bool wanted = n == 0 && (t->kind == SAL_TOPIC_EVENT ||
                                 (t->kind == SAL_TOPIC_TELEMETRY && c->mode == MODE_WATCH));
        for (int k = 0; k < n; k++) {
            wanted = wanted || topic_named(t, names[k]);
        }
        int rc = wanted ? sal_remote_subscribe(c->remote, t->sal_name, on_event, c, err, sizeof err) : 0;
        if (rc != 0) {
            fprintf(stderr, "ocps-cmd: %s\n", err);
            return cmdr_setup_status(rc);
        }
    }
    return 0;
}
