/*
 * ocps-cmd: command and watch a SAL component, like salobj's CscCommander.
 *
 *   ocps-cmd [options] NAME[:INDEX] COMMAND [--FIELD VALUE]...   send a command, wait for its final ack
 *   ocps-cmd [options] NAME[:INDEX] watch [TOPIC...]              print events as they arrive
 *   ocps-cmd [options] NAME[:INDEX] show EVENT                    print the current value of an event
 *   ocps-cmd [options] NAME[:INDEX] topics                        list commands and events
 *
 * Exit status: 0 command complete; 1 failed or aborted; 2 not authorized;
 * 3 no final ack in time (or no CSC found); 64 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <uv.h>

#include "sal_protocol.h"
#include "sal_json.h"
#include "sal_remote.h"

#include "ocps_cmd.h"
#include "ocps_interface.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ocps-cmd [options] NAME[:INDEX] COMMAND [--FIELD VALUE]...   (INDEX: number or name, "
            "e.g. RA)\n"
            "       ocps-cmd [options] NAME[:INDEX] watch [TOPIC...] [--duration S] [--json]\n"
            "       ocps-cmd [options] NAME[:INDEX] show EVENT [--timeout S] [--json]\n"
            "       ocps-cmd [options] NAME[:INDEX] topics\n"
            "       ocps-cmd [options] NAME[:INDEX]            (interactive)\n"
            "options:\n"
            "  --timeout S      seconds to wait for the final ack (default 60; INPROGRESS acks extend it),\n"
            "                   or for an event with show (default 5)\n"
            "  --duration S     stop watching after S seconds\n"
            "  --discovery S    seconds to wait for the CSC to be discovered (default 10)\n"
            "  --json           print samples as JSON lines\n"
            "  --transport T    SAL transport: dds or kafka (default $OCPS_TRANSPORT, else dds)\n"
            "  --xml-version V  ts_xml release to speak (default $OCPS_XML_VERSION, else the transport's)\n"
            "  --identity ID    private_identity to command as (default user@host)\n"
            "exit status: 0 complete, 1 failed/aborted, 2 not authorized, 3 timed out, 64 usage\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
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
    c->status = status;
    if (c->remote == NULL) {
        return;
    }
    repl_stop(c);
    free_command(c);
    uv_timer_stop(&c->poll);
    uv_timer_stop(&c->deadline);
    uv_signal_stop(&c->sigint);
    uv_close((uv_handle_t *)&c->poll, NULL);
    uv_close((uv_handle_t *)&c->deadline, NULL);
    uv_close((uv_handle_t *)&c->sigint, NULL);
    sal_remote_close(c->remote);
    c->remote = NULL;
}

void cmdr_command_done(cmdr *c, int status)
{
    uv_timer_stop(&c->poll);
    free_command(c);
    if (c->mode == MODE_INTERACTIVE) {
        repl_next(c, status);
    } else {
        cmdr_finish(c, status);
    }
}

static void print_json_line(cmdr *c, const sal_topic_info *t, const void *sample, json_t *fields)
{
    json_t *line = json_pack("{s:s, s:i, s:f, s:o}", "topic", t->sal_name, "salIndex",
                             sal_sample_get_i32(t, sample, "salIndex"), "sndStamp",
                             sal_sample_get_number(t, sample, "private_sndStamp", 0), "fields", fields);
    char *text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
    printf("%s\n", text ? text : "{}");
    free(text);
    json_decref(line);
    (void)c;
}

void cmdr_print_sample(cmdr *c, int topic, const void *sample)
{
    const sal_topic_info *t = &c->comp->topics[topic];
    json_t *fields = sal_sample_to_json(t, sample, false);
    if (c->json) {
        print_json_line(c, t, sample, fields);
        fflush(stdout);
        return;
    }
    time_t secs = time(NULL);
    struct tm tm;
    localtime_r(&secs, &tm);
    printf("%02d:%02d:%02d %s", tm.tm_hour, tm.tm_min, tm.tm_sec, t->sal_name);
    const char *key;
    json_t *value;
    json_object_foreach(fields, key, value)
    {
        const char *s = json_string_value(value);
        json_t *parsed = NULL;
        /* job results are JSON: show them pretty-printed */
        if (s != NULL && s[0] == '{' && (parsed = json_loads(s, 0, NULL)) != NULL) {
            char *pretty = json_dumps(parsed, JSON_INDENT(2) | JSON_SORT_KEYS);
            printf("\n  %s=%s", key, pretty ? pretty : s);
            free(pretty);
            json_decref(parsed);
            continue;
        }
        char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
        printf(" %s=%s", key, text ? text : "?");
        free(text);
        if (strcmp(key, "summaryState") == 0) {
            printf(" %s", sal_state_repr((int)json_integer_value(value)));
        }
    }
    printf("\n");
    fflush(stdout);
    json_decref(fields);
}

static void on_event(void *arg, int topic, const void *sample)
{
    cmdr *c = arg;
    if (c->mode == MODE_WATCH || c->mode == MODE_INTERACTIVE) {
        cmdr_print_sample(c, topic, sample);
    } else if (c->mode == MODE_SHOW && c->remote != NULL) {
        cmdr_print_sample(c, topic, sample);
        cmdr_finish(c, EXIT_OK);
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

static void on_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    cmdr *c = arg;
    if (!final) {
        printf("%s %s timeout=%.1f%s%s\n", c->command, sal_ack_name(ack), timeout, *result ? " result=" : "",
               result);
        fflush(stdout);
        return;
    }
    printf("%s %s error=%d result=%s\n", c->command, sal_ack_name(ack), error, result);
    fflush(stdout);
    cmdr_command_done(c, ack_status(ack));
}

static void on_poll(uv_timer_t *t)
{
    cmdr *c = t->data;
    if (c->command == NULL || c->sent) {
        return;
    }
    if (!sal_remote_ready(c->remote, c->command)) {
        if (now_s() - c->started > c->discovery) {
            fprintf(stderr, "ocps-cmd: no %s:%d found (no reader of command_%s discovered in %.0f s)\n",
                    c->comp->name, sal_index(sal_remote_sal(c->remote)), c->command, c->discovery);
            cmdr_command_done(c, EXIT_TIMEOUT);
        }
        return;
    }
    c->sent = true;
    uv_timer_stop(&c->poll);
    char err[512];
    if (sal_remote_command(c->remote, c->command, c->sample, c->timeout, on_ack, c, NULL, err, sizeof err) !=
        0) {
        fprintf(stderr, "ocps-cmd: %s\n", err);
        cmdr_command_done(c, EXIT_FAILED);
    }
}

static void on_deadline(uv_timer_t *t)
{
    cmdr *c = t->data;
    if (c->mode == MODE_SHOW) {
        fprintf(stderr, "ocps-cmd: no %s received in %.1f s\n", c->show, c->timeout);
        cmdr_finish(c, EXIT_TIMEOUT);
    } else {
        cmdr_finish(c, EXIT_OK);
    }
}

static void on_sigint(uv_signal_t *h, int signum)
{
    (void)signum;
    cmdr *c = h->data;
    cmdr_finish(c, c->mode == MODE_WATCH || c->mode == MODE_INTERACTIVE ? EXIT_OK : EXIT_FAILED);
}

static int parse_target(const char *target, const sal_component_info *comp, int32_t *index)
{
    const char *colon = strchr(target, ':');
    size_t len = colon ? (size_t)(colon - target) : strlen(target);
    if (len != strlen(comp->name) || strncmp(target, comp->name, len) != 0) {
        fprintf(stderr, "ocps-cmd: this build knows component %s, not %.*s\n", comp->name, (int)len, target);
        return -1;
    }
    *index = 0;
    if (colon != NULL) {
        char *end;
        long v = strtol(colon + 1, &end, 10);
        if (*end != '\0' || end == colon + 1) {
            v = ocps_index_of(colon + 1); /* a name: OCPS:RA */
        }
        if (v < 0 || v > INT32_MAX) {
            fprintf(stderr, "ocps-cmd: bad index in %s\n", target);
            return -1;
        }
        *index = (int32_t)v;
    }
    return 0;
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
            fprintf(stderr, "ocps-cmd: command %s has no field %s\n", c->command, argv[i] + 2);
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
static int command_prepare(cmdr *c, const char *name, int argc, char **argv)
{
    int t = command_topic(c, name);
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
static int command_start(cmdr *c)
{
    char err[512];
    if (sal_remote_prepare(c->remote, c->command, err, sizeof err) != 0) {
        fprintf(stderr, "ocps-cmd: %s\n", err);
        free_command(c);
        return EXIT_FAILED;
    }
    c->sent = false;
    c->started = now_s();
    uv_timer_start(&c->poll, on_poll, 0, 5);
    return 0;
}

int cmdr_command_begin(cmdr *c, const char *name, int argc, char **argv)
{
    int rc = command_prepare(c, name, argc, argv);
    return rc != 0 ? rc : command_start(c);
}

/* Subscribe for watch/show/interactive; `names` empty means every event
 * (and telemetry for watch). */
static int subscribe(cmdr *c, int n, char **names)
{
    char err[512];
    for (size_t i = 0; i < c->comp->ntopics; i++) {
        const sal_topic_info *t = &c->comp->topics[i];
        bool wanted = n == 0 && (t->kind == SAL_TOPIC_EVENT ||
                                 (t->kind == SAL_TOPIC_TELEMETRY && c->mode == MODE_WATCH));
        for (int k = 0; k < n; k++) {
            char evt[160];
            snprintf(evt, sizeof evt, "logevent_%s", names[k]);
            wanted = wanted || strcmp(t->sal_name, names[k]) == 0 || strcmp(t->sal_name, evt) == 0;
        }
        if (wanted && sal_remote_subscribe(c->remote, t->sal_name, on_event, c, err, sizeof err) != 0) {
            fprintf(stderr, "ocps-cmd: %s\n", err);
            return EXIT_FAILED;
        }
    }
    return 0;
}

static int setup(cmdr *c, int argc, char **argv, const char *transport_name, const char *identity,
                 int32_t index)
{
    char err[512];
    const sal_transport_ops *transport = sal_transport_find(transport_name);
    if (transport == NULL) {
        fprintf(stderr, "ocps-cmd: unknown transport %s (have: %s)\n", transport_name, sal_transport_names());
        return EXIT_USAGE;
    }
    const char *verb = argc > 0 ? argv[0] : NULL;
    bool one_command = verb != NULL && strcmp(verb, "watch") != 0 && strcmp(verb, "show") != 0;
    if (one_command) {
        int rc = command_prepare(c, verb, argc - 1, argv + 1);
        if (rc != 0) {
            return rc;
        }
    }
    if (sal_remote_open(&c->remote, &c->loop, c->comp, index, transport, identity, err, sizeof err) != 0) {
        fprintf(stderr, "ocps-cmd: %s\n", err);
        return EXIT_FAILED;
    }
    if (verb == NULL) {
        c->mode = MODE_INTERACTIVE;
        int rc = subscribe(c, 0, NULL);
        return rc != 0 ? rc : repl_start(c);
    }
    if (strcmp(verb, "watch") == 0 || strcmp(verb, "show") == 0) {
        c->mode = verb[0] == 'w' ? MODE_WATCH : MODE_SHOW;
        if (c->mode == MODE_SHOW && argc != 2) {
            usage(stderr);
            return EXIT_USAGE;
        }
        c->show = c->mode == MODE_SHOW ? argv[1] : NULL;
        int rc = subscribe(c, argc - 1, argv + 1);
        if (rc != 0) {
            return rc;
        }
        double limit = c->mode == MODE_SHOW ? c->timeout : c->duration;
        if (limit > 0) {
            uv_timer_start(&c->deadline, on_deadline, (uint64_t)(limit * 1000), 0);
        }
        return -1;
    }
    c->mode = MODE_COMMAND;
    int rc = command_start(c);
    return rc != 0 ? rc : -1;
}

/* Parse options from argv (getopt_long); stops at the first non-option
 * when `stop_at_operand`. Returns 0, or an exit status. */
static int parse_options(cmdr *c, int argc, char **argv, bool stop_at_operand, const char **transport,
                         const char **identity)
{
    enum {
        OPT_TIMEOUT = 1000,
        OPT_DURATION,
        OPT_DISCOVERY,
        OPT_JSON,
        OPT_TRANSPORT,
        OPT_IDENTITY,
        OPT_XMLVER
    };
    static const struct option longopts[] = {
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"discovery", required_argument, NULL, OPT_DISCOVERY},
        {"json", no_argument, NULL, OPT_JSON},
        {"transport", required_argument, NULL, OPT_TRANSPORT},
        {"identity", required_argument, NULL, OPT_IDENTITY},
        {"xml-version", required_argument, NULL, OPT_XMLVER},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, stop_at_operand ? "+h" : "h", longopts, NULL)) != -1) {
        char *end = NULL;
        double v = 0;
        if (optarg != NULL && ch != OPT_TRANSPORT && ch != OPT_IDENTITY && ch != OPT_XMLVER) {
            v = strtod(optarg, &end);
            if (*end != '\0' || !isfinite(v) || v < 0) {
                fprintf(stderr, "ocps-cmd: bad number %s\n", optarg);
                return EXIT_USAGE;
            }
        }
        switch (ch) {
        case OPT_TIMEOUT:
            c->timeout = v;
            break;
        case OPT_DURATION:
            c->duration = v;
            break;
        case OPT_DISCOVERY:
            c->discovery = v;
            break;
        case OPT_JSON:
            c->json = true;
            break;
        case OPT_TRANSPORT:
            *transport = optarg;
            break;
        case OPT_IDENTITY:
            *identity = optarg;
            break;
        case OPT_XMLVER:
            c->xml_version = optarg;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK + 256;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    cmdr c = {.timeout = -1, .discovery = 10, .status = EXIT_FAILED};
    const char *transport =
        getenv("OCPS_TRANSPORT") != NULL && *getenv("OCPS_TRANSPORT") ? getenv("OCPS_TRANSPORT") : "dds";
    const char *identity = NULL;
    /* options before the target; command fields (--pipeline ...) after the
     * command are not ours, but watch/show take options after the verb */
    int rc = parse_options(&c, argc, argv, true, &transport, &identity);
    if (rc != 0) {
        return rc & 255;
    }
    if (argc - optind < 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    char err[512];
    c.comp = ocps_interface_select(transport, c.xml_version, err, sizeof err);
    if (c.comp == NULL) {
        fprintf(stderr, "ocps-cmd: %s\n", err);
        return EXIT_USAGE;
    }
    int32_t index;
    if (parse_target(argv[optind], c.comp, &index) != 0) {
        return EXIT_USAGE;
    }
    int first = optind + 1;
    const char *verb = first < argc ? argv[first] : "";
    if (strcmp(verb, "topics") == 0) {
        cmdr_list_topics(c.comp, stdout);
        return EXIT_OK;
    }
    int nargs = argc - first;
    char **args = argv + first;
    if (strcmp(verb, "watch") == 0 || strcmp(verb, "show") == 0) {
        optind = 0; /* full reset of GNU getopt */
        rc = parse_options(&c, nargs, args, false, &transport, &identity);
        if (rc != 0) {
            return rc & 255;
        }
        c.comp = ocps_interface_select(transport, c.xml_version, err, sizeof err);
        if (c.comp == NULL) {
            fprintf(stderr, "ocps-cmd: %s\n", err);
            return EXIT_USAGE;
        }
        /* getopt permuted the operands to the front */
        args[optind - 1] = (char *)verb;
        args += optind - 1;
        nargs -= optind - 1;
    }
    if (c.timeout < 0) {
        c.timeout = strcmp(verb, "show") == 0 ? 5 : 60;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&c.loop);
    uv_timer_init(&c.loop, &c.poll);
    uv_timer_init(&c.loop, &c.deadline);
    uv_signal_init(&c.loop, &c.sigint);
    c.poll.data = c.deadline.data = c.sigint.data = &c;
    uv_signal_start(&c.sigint, on_sigint, SIGINT);
    c.started = now_s();
    rc = setup(&c, nargs, args, transport, identity, index);
    if (rc >= 0) {
        if (c.remote != NULL) {
            cmdr_finish(&c, rc);
        } else {
            c.status = rc;
            free_command(&c);
            uv_close((uv_handle_t *)&c.poll, NULL);
            uv_close((uv_handle_t *)&c.deadline, NULL);
            uv_close((uv_handle_t *)&c.sigint, NULL);
        }
    }
    uv_run(&c.loop, UV_RUN_DEFAULT);
    uv_loop_close(&c.loop);
    return c.status;
}
