/*
 * ocps-cmd: command and watch a SAL component, like salobj's CscCommander.
 *
 *   ocps-cmd [options] NAME[:INDEX] COMMAND [--FIELD VALUE]...   send a command, wait for its final ack
 *   ocps-cmd [options] NAME[:INDEX] watch [TOPIC...]              print events as they arrive
 *   ocps-cmd [options] NAME[:INDEX] show EVENT                    print the current value of an event
 *   ocps-cmd [options] NAME[:INDEX] topics                        list commands and events
 *
 * Exit status: 0 command complete; 1 failed or aborted; 2 not authorized;
 * 3 no final ack in time (or no CSC found, or the transport not reached:
 * nothing was done); 64 usage or configuration error.
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

#include "ocps/sal_protocol.h"
#include "ocps/sal_json.h"
#include "ocps/sal_remote.h"
#include "ocps/sal_time.h"

#include "ocps_cmd.h"
#include "ocps_cmd_repl.h"
#include "ocps/ocps_interface.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ocps-cmd [options] NAME[:INDEX] COMMAND [--FIELD VALUE]...   (INDEX: number or name, "
            "e.g. RA)\n"
            "       ocps-cmd [options] NAME[:INDEX] watch [TOPIC...] [--duration S] [--json]\n"
            "       ocps-cmd [options] NAME[:INDEX] show EVENT [--timeout S] [--json]\n"
            "       ocps-cmd [options] NAME[:INDEX] topics\n"
            "       ocps-cmd [options] NAME[:INDEX]            (interactive)\n"
            "options (S: seconds, a number greater than 0):\n"
            "  --timeout S      seconds to wait for the final ack (default 60; INPROGRESS acks extend it),\n"
            "                   or for an event with show (default 5)\n"
            "  --duration S     stop watching after S seconds\n"
            "  --discovery S    seconds to wait for the CSC (its reader, a heartbeat) to be discovered "
            "(default 10)\n"
            "  --json           print samples as JSON lines\n"
            "  --transport T    SAL transport: dds or kafka (default $OCPS_TRANSPORT, else dds)\n"
            "  --xml-version V  ts_xml release to speak (default $OCPS_XML_VERSION, else the transport's)\n"
            "  --identity ID    private_identity to command as (default user@host)\n"
            "exit status: 0 complete, 1 failed/aborted, 2 not authorized, 3 timed out or no CSC reached,\n"
            "             64 usage or configuration\n");
}

static void on_deadline(uv_timer_t *t)
{
    cmdr *c = t->data;
    if (c->mode == MODE_SHOW && c->show_text != NULL) {
        /* a sample came, and maybe a newer one would have followed: print
         * the newest read, not "none received" */
        fputs(c->show_text, stdout);
        fflush(stdout);
        cmdr_finish(c, EXIT_OK);
    } else if (c->mode == MODE_SHOW) {
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
        int rc = cmdr_command_prepare(c, verb, argc - 1, argv + 1);
        if (rc != 0) {
            return rc;
        }
    }
    /* an unreachable transport (no Kafka broker) is said within --discovery too */
    int open_rc = sal_remote_open_within(&c->remote, &c->loop, c->comp, index, transport, identity,
                                         c->discovery, err, sizeof err);
    if (open_rc != 0) {
        fprintf(stderr, "ocps-cmd: %s%s\n", err,
                cmdr_setup_status(open_rc) == EXIT_TIMEOUT ? " (nothing was sent)" : "");
        return cmdr_setup_status(open_rc);
    }
    if (verb == NULL) {
        c->mode = MODE_INTERACTIVE;
        int rc = cmdr_subscribe(c, 0, NULL);
        return rc != 0 ? rc : repl_start(c);
    }
    if (strcmp(verb, "watch") == 0 || strcmp(verb, "show") == 0) {
        c->mode = verb[0] == 'w' ? MODE_WATCH : MODE_SHOW;
        if (c->mode == MODE_SHOW && argc != 2) {
            usage(stderr);
            return EXIT_USAGE;
        }
        c->show = c->mode == MODE_SHOW ? argv[1] : NULL;
        int rc = cmdr_subscribe(c, argc - 1, argv + 1);
        if (rc != 0) {
            return rc;
        }
        double limit = c->mode == MODE_SHOW ? c->timeout : c->duration;
        if (limit > 0) {
            uv_timer_start(&c->deadline, on_deadline, sal_seconds_to_ms(limit), 0);
        }
        return -1;
    }
    c->mode = MODE_COMMAND;
    int rc = cmdr_watch_heartbeat(c);
    if (rc == 0) {
        rc = cmdr_command_start(c);
    }
    return rc != 0 ? rc : -1;
}

enum { OPT_TIMEOUT = 1000, OPT_DURATION, OPT_DISCOVERY, OPT_JSON, OPT_TRANSPORT, OPT_IDENTITY, OPT_XMLVER };

/* ocps-cmd's own options (the usage text lists them too) */
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

bool cmdr_is_own_option(const char *name)
{
    for (const struct option *o = longopts; o->name != NULL; o++) {
        if (strcmp(name, o->name) == 0) {
            return true;
        }
    }
    return false;
}

/* A number of seconds: the whole text a finite number greater than 0
 * (for show, a --timeout of 0 would mean no deadline). 0 or -1. */
static int parse_seconds(const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !isfinite(v) || !(v > 0)) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Parse options from argv (getopt_long); stops at the first non-option
 * when `stop_at_operand`. Returns 0, or an exit status. */
static int parse_options(cmdr *c, int argc, char **argv, bool stop_at_operand, const char **transport,
                         const char **identity)
{
    int ch;
    while ((ch = getopt_long(argc, argv, stop_at_operand ? "+h" : "h", longopts, NULL)) != -1) {
        double v = 0;
        if (optarg != NULL && ch != OPT_TRANSPORT && ch != OPT_IDENTITY && ch != OPT_XMLVER &&
            parse_seconds(optarg, &v) != 0) {
            fprintf(stderr, "ocps-cmd: bad number of seconds '%s' (a number greater than 0)\n", optarg);
            return EXIT_USAGE;
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
    bool looks_only = strcmp(verb, "watch") == 0 || strcmp(verb, "show") == 0 || strcmp(verb, "topics") == 0;
    if (c.comp->indexed && index == 0 && !looks_only) {
        /* salobj's Remote with index 0 reads every index but cannot command one */
        char names[256] = "";
        size_t n = 0;
        const sal_enum_value *v = ocps_indices(&n);
        for (size_t i = 0, len = 0; i < n && len < sizeof names; i++) {
            len += (size_t)snprintf(names + len, sizeof names - len, "%s%s:%ld (%s)", i ? ", " : "",
                                    c.comp->name, (long)v[i].value, v[i].name);
        }
        fprintf(stderr,
                "ocps-cmd: %s is an indexed component: commands need its SAL index: %s; watch and show "
                "without one read every index\n",
                c.comp->name, names);
        return EXIT_USAGE;
    }
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
    rc = setup(&c, nargs, args, transport, identity, index);
    if (rc >= 0) {
        cmdr_finish(&c, rc);
    }
    uv_run(&c.loop, UV_RUN_DEFAULT);
    uv_loop_close(&c.loop);
    return c.status;
}
