/*
 * ocps-csc: the OCPS Commandable SAL Component.
 *
 *   ocps-csc [options] INDEX
 *
 * salobj-style command line: INDEX is the SAL index (1 LATISS, 2 LSSTComCam,
 * 3 LSSTCam, 101 RA, whatever the interface release lists).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "ocps/exe_path.h"
#include "ocps/ocps_app.h"
#include "ocps/ocps_config.h"
#include "ocps/ocps_interface.h"
#include "ocps/ocps_metrics.h"
#include "ocps/sal_csc.h"
#include "ocps/sal_errout.h"
#include "ocps/sal_exit_grace.h"
#include "ocps/sal_logline.h"
#include "ocps/uv_mhd.h"

#include "ocps_version.h" /* OCPS_VERSION, from git describe at build time */

typedef struct app {
    sal_csc *csc;
    ocps_app *ocps;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    uv_timer_t trim;       /* gives freed heap back to the system (glibc) */
    sal_gate *gate;        /* DDS's threads run commands while the loop sleeps (NULL: off) */
    ocps_metrics *metrics; /* --metrics-listen (NULL: off) */
    int exit_code;         /* from the CSC's closed hook */
    bool signalled;        /* a SIGTERM or SIGINT came: the next one exits at once */
    uv_loop_t *loop;
    sal_exit_grace grace; /* once the CSC has closed: how long the rest may take */
} app;

/* Once the CSC has closed (its last summaryState written), how long the
 * application may take to close before the process ends all the same: a
 * job's start or outcome read blocked on a work root that hangs (NFS)
 * cannot be cancelled; the next CSC takes those jobs up from the store. */
#define CLOSE_GRACE_SECONDS 10.0

static void usage(FILE *f)
{
    const sal_interface_set *set = ocps_interfaces();
    size_t n;
    const sal_enum_value *idx = ocps_indices(&n);
    fprintf(f, "usage: ocps-csc [options] INDEX\nRun the OCPS CSC with SAL index INDEX (");
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s%lld %s", i ? ", " : "", (long long)idx[i].value, idx[i].name);
    }
    fprintf(f, ").\nEmbedded ts_xml releases:");
    for (size_t i = 0; i < set->nreleases; i++) {
        fprintf(f, " %s", set->releases[i]->xml_version);
    }
    for (size_t i = 0; i < set->ndefaults; i++) {
        fprintf(f, "%s %s %s", i ? "," : "; defaults:", set->defaults[i].transport,
                set->defaults[i].xml_version);
    }
    fprintf(f,
            ".\n\n"
            "options:\n"
            "  --state STATE         state to reach at start: offline, standby (default), disabled, enabled\n"
            "  --override FILE       configurationOverride for the start of --state disabled/enabled\n"
            "  --configdir DIR       configuration directory (default $DM_CONFIG_OCPS_DIR/OCPS/v4)\n"
            "  --loglevel N          initial log level (Python levels; default 20)\n"
            "  --simulate            simulation mode 1\n"
            "  --transport NAME      SAL transport: %s (default dds; inproc: within this\n"
            "                        process only, for tests)\n"
            "  --xml-version VER     ts_xml release to speak (default: the transport's; see above)\n"
            "  --duplicate-check S   at most S seconds to watch for another instance at start\n"
            "                        (default 3; -1 off; ends as soon as none can exist)\n"
            "  --open-retry S        keep trying for S seconds to reach a transport that cannot be\n"
            "                        reached at start (Kafka broker or registry down; default 600; 0: no)\n"
            "  --no-republish        do not re-publish events to late-joining readers (DDS)\n"
            "  --log-format FORMAT   log lines on stderr: text (default) or json, one object a line\n"
            "  --metrics-listen ADDR:PORT\n"
            "                        serve Prometheus /metrics there (default: off); any address, e.g.\n"
            "                        127.0.0.1:9100, [::1]:9100, 0.0.0.0:9100 for a scraper in the cluster\n"
            "  --version             print the version and exit\n"
            "  -h, --help            this help\n"
            "\nenvironment: LSST_SITE (required), DM_CONFIG_OCPS_DIR, OCPS_TRANSPORT (default transport),\n"
            "OCPS_XML_VERSION (default release), OCPS_LOG_FORMAT (default log format), OCPS_METRICS_LISTEN\n"
            "(--metrics-listen when not given); index 101 (Rapid Analysis): REDIS_HOST and REDIS_PASSWORD\n"
            "(required), REDIS_PORT (default 6379);\n"
            "dds: LSST_DDS_PARTITION_PREFIX (required), LSST_DDS_DOMAIN_ID, LSST_DDS_INTERFACE,\n"
            "LSST_DDS_ENABLE_AUTHLIST, OSPL_RELEASE; kafka: LSST_TOPIC_SUBNAME (required),\n"
            "LSST_KAFKA_BROKER_ADDR, LSST_SCHEMA_REGISTRY_URL, LSST_KAFKA_* as salobj 8\n",
            sal_transport_names());
}

static int parse_state(const char *s, sal_state *out)
{
    static const struct {
        const char *name;
        sal_state state;
    } states[] = {
        {"offline", SAL_STATE_OFFLINE},
        {"standby", SAL_STATE_STANDBY},
        {"disabled", SAL_STATE_DISABLED},
        {"enabled", SAL_STATE_ENABLED},
    };
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        if (strcmp(s, states[i].name) == 0) {
            *out = states[i].state;
            return 0;
        }
    }
    return -1;
}

static int parse_number(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return (end == s || *end != '\0' || errno != 0) ? -1 : 0;
}

/* The first SIGTERM or SIGINT: summaryState OFFLINE, then exit; a second
 * one: exit at once. */
static void on_signal(uv_signal_t *h, int signum)
{
    app *a = h->data;
    SAL_LOG(a->csc, SAL_LOG_INFO, "Received signal %d; shutting down", signum);
    if (a->signalled) {
        uv_signal_stop(&a->sigint);
        uv_signal_stop(&a->sigterm);
        sal_csc_close(a->csc, 0);
        return;
    }
    a->signalled = true;
    sal_csc_exit(a->csc);
}

/* glibc keeps memory freed by other threads in per-thread arenas (Cyclone's
 * and libuv's thread pool threads): a CSC running a job a second for 30
 * minutes grew from 16 to 22 MB RSS while its live heap stayed under 4 MB
 * (massif). At most two arenas, and what is free at their ends returned
 * every minute. */
#define TRIM_PERIOD_MS 60000

static void limit_arenas(void)
{
#ifdef __GLIBC__
    mallopt(M_ARENA_MAX, 2);
#endif
}

static void on_trim(uv_timer_t *t)
{
    (void)t;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static int on_configure(void *arg, json_t *config, char *err, size_t errlen)
{
    app *a = arg;
    return ocps_app_configure(a->ocps, config, err, errlen);
}

/* ocps-pipetask: $OCPS_PIPETASK, next to this program or in the build
 * tree's processing/pipetask/ directory; "" if none is there. */
static void find_pipetask(char *out, size_t len)
{
    static const char *const places[] = {"ocps-pipetask", "../processing/pipetask/ocps-pipetask", NULL};
    exe_path_find("OCPS_PIPETASK", places, out, len);
}

/* ocps-butler: $OCPS_BUTLER, next to this program or in the build
 * tree's processing/butler/ directory; "" if none is there. */
static void find_butler(char *out, size_t len)
{
    static const char *const places[] = {"ocps-butler", "../processing/butler/ocps-butler", NULL};
    exe_path_find("OCPS_BUTLER", places, out, len);
}

/* An error that stops the program, as a log line (text: "ocps-csc: ..."). */
static void report_error(const char *message)
{
    sal_errout_linger(2.0); /* the program stops: its reason may wait for a slow reader */
    sal_log_say(SAL_LOG_ERROR, "ocps-csc", "%s", message); /* text: "ocps-csc: ..." */
}

/* The CSC is closing (every end of the program goes through here). */
static void on_closing(void *arg)
{
    app *a = arg;
    ocps_metrics_close(a->metrics); /* before the CSC and the application go */
    a->metrics = NULL;
    ocps_app_close(a->ocps, NULL, NULL);
    a->ocps = NULL;
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->trim, NULL);
}

static void on_closed(void *arg, int exit_code)
{
    app *a = arg;
    a->csc = NULL;
    a->exit_code = exit_code;
    sal_gate_close(a->gate); /* the CSC's runtime is gone */
    sal_exit_grace_start(&a->grace, a->loop, CLOSE_GRACE_SECONDS, "ocps-csc", &a->exit_code);
}

/* Parse the command line into opts and *xml_version; returns -1 to exit
 * with *status. */
static int parse_args(int argc, char **argv, sal_csc_options *opts, const char **xml_version,
                      const char **metrics_listen, int *status)
{
    enum {
        OPT_STATE = 1000,
        OPT_OVERRIDE,
        OPT_CONFIGDIR,
        OPT_LOGLEVEL,
        OPT_SIMULATE,
        OPT_TRANSPORT,
        OPT_DUP,
        OPT_RETRY,
        OPT_NOREP,
        OPT_VERSION,
        OPT_XMLVER,
        OPT_LOGFMT,
        OPT_METRICS
    };
    static const struct option longopts[] = {
        {"state", required_argument, NULL, OPT_STATE},
        {"override", required_argument, NULL, OPT_OVERRIDE},
        {"configdir", required_argument, NULL, OPT_CONFIGDIR},
        {"loglevel", required_argument, NULL, OPT_LOGLEVEL},
        {"simulate", no_argument, NULL, OPT_SIMULATE},
        {"transport", required_argument, NULL, OPT_TRANSPORT},
        {"duplicate-check", required_argument, NULL, OPT_DUP},
        {"open-retry", required_argument, NULL, OPT_RETRY},
        {"no-republish", no_argument, NULL, OPT_NOREP},
        {"version", no_argument, NULL, OPT_VERSION},
        {"xml-version", required_argument, NULL, OPT_XMLVER},
        {"log-format", required_argument, NULL, OPT_LOGFMT},
        {"metrics-listen", required_argument, NULL, OPT_METRICS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    double v;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_STATE:
            if (parse_state(optarg, &opts->initial_state) != 0) {
                fprintf(stderr, "ocps-csc: --state must be offline, standby, disabled or enabled\n");
                return *status = 64, -1;
            }
            break;
        case OPT_OVERRIDE:
            opts->override = optarg;
            break;
        case OPT_CONFIGDIR:
            opts->config_dir = optarg;
            break;
        case OPT_LOGLEVEL:
            if (parse_number(optarg, &v) != 0 || v < 0 || v > 100) {
                fprintf(stderr, "ocps-csc: --loglevel must be a number from 0 to 100\n");
                return *status = 64, -1;
            }
            opts->log_level = (int)v;
            break;
        case OPT_SIMULATE:
            opts->simulation_mode = 1;
            break;
        case OPT_TRANSPORT:
            opts->transport = sal_transport_find(optarg);
            if (opts->transport == NULL) {
                fprintf(stderr, "ocps-csc: unknown transport %s (have: %s)\n", optarg, sal_transport_names());
                return *status = 64, -1;
            }
            break;
        case OPT_DUP:
            if (parse_number(optarg, &v) != 0 || v > 60) {
                fprintf(stderr, "ocps-csc: --duplicate-check must be seconds (at most 60; negative: off)\n");
                return *status = 64, -1;
            }
            opts->duplicate_check = v;
            break;
        case OPT_RETRY:
            if (parse_number(optarg, &v) != 0 || v < 0 || v > 86400) {
                fprintf(stderr, "ocps-csc: --open-retry must be seconds from 0 to 86400\n");
                return *status = 64, -1;
            }
            opts->open_retry = v;
            break;
        case OPT_NOREP:
            opts->no_republish = true;
            break;
        case OPT_XMLVER:
            *xml_version = optarg;
            break;
        case OPT_METRICS:
            *metrics_listen = optarg;
            break;
        case OPT_LOGFMT: {
            sal_log_format format;
            if (sal_log_format_parse(optarg, &format) != 0) {
                fprintf(stderr, "ocps-csc: --log-format must be text or json\n");
                return *status = 64, -1;
            }
            sal_log_format_set(format);
            break;
        }
        case OPT_VERSION:
            printf("%s\n", OCPS_VERSION);
            return *status = 0, -1;
        case 'h':
            usage(stdout);
            return *status = 0, -1;
        default:
            usage(stderr);
            return *status = 64, -1;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return *status = 64, -1;
    }
    char *end;
    long index = strtol(argv[optind], &end, 10);
    if (*end != '\0' || end == argv[optind] || index > INT32_MAX || index < 0 ||
        ocps_index_name((int32_t)index) == NULL) {
        fprintf(stderr, "ocps-csc: invalid index %s; ", argv[optind]);
        usage(stderr);
        return *status = 64, -1;
    }
    opts->index = (int32_t)index;
    return 0;
}

int main(int argc, char **argv)
{
    sal_csc_options opts;
    sal_csc_options_init(&opts);
    opts.csc_version = OCPS_VERSION;
    /* the transport: --transport, else $OCPS_TRANSPORT, else dds */
    const char *env_transport = getenv("OCPS_TRANSPORT");
    const char *default_transport = env_transport != NULL && *env_transport ? env_transport : "dds";
    opts.transport = sal_transport_find(default_transport);
    opts.config_schema = ocps_config_schema;
    opts.config_pkg = OCPS_CONFIG_PKG;
    opts.indices = ocps_indices(&opts.nindices);
    int status = 0;
    const char *xml_version = NULL;
    /* /metrics: --metrics-listen, else $OCPS_METRICS_LISTEN, else off */
    const char *metrics_listen = NULL;
    /* the log format: --log-format, else $OCPS_LOG_FORMAT */
    sal_log_format log_format;
    const char *env_format = getenv(SAL_LOG_FORMAT_ENV);
    if (sal_log_format_parse(env_format, &log_format) != 0) {
        fprintf(stderr, "ocps-csc: %s=%s is not text or json\n", SAL_LOG_FORMAT_ENV, env_format);
        return 64;
    }
    sal_log_format_set(log_format);
    if (parse_args(argc, argv, &opts, &xml_version, &metrics_listen, &status) != 0) {
        return status;
    }
    const char *metrics_option = "--metrics-listen";
    if (metrics_listen == NULL) {
        metrics_listen = getenv("OCPS_METRICS_LISTEN");
        metrics_option = "OCPS_METRICS_LISTEN";
        if (metrics_listen != NULL && *metrics_listen == '\0') {
            metrics_listen = NULL;
        }
    }
    if (metrics_listen != NULL) {
        struct sockaddr_storage ss;
        bool loopback;
        char perr[512];
        if (uv_mhd_parse_listen(metrics_listen, metrics_option, &ss, &loopback, perr, sizeof perr) != 0) {
            fprintf(stderr, "ocps-csc: %s\n", perr);
            return 64;
        }
    }
    /* job runners inherit the environment: they log as the CSC does */
    setenv(SAL_LOG_FORMAT_ENV, sal_log_format_get() == SAL_LOG_FORMAT_JSON ? "json" : "text", 1);
    if (opts.transport == NULL) {
        fprintf(stderr, "ocps-csc: transport %s%s is not built in (have: %s); choose one with --transport\n",
                default_transport, env_transport != NULL && *env_transport ? " (OCPS_TRANSPORT)" : "",
                sal_transport_names());
        return 64;
    }
    char subsystems[128] = "";
    if (opts.transport->library_version != NULL) {
        opts.transport->library_version(subsystems, sizeof subsystems);
    }
    opts.subsystem_versions = subsystems;
    char err[1024];
    const sal_component_info *comp =
        ocps_interface_select(opts.transport->name, xml_version, err, sizeof err);
    if (comp == NULL) {
        report_error(err);
        return 64;
    }
    signal(SIGPIPE, SIG_IGN);
    limit_arenas(); /* before any thread starts */

    uv_loop_t loop;
    uv_loop_init(&loop);
    app a = {.loop = &loop};
    /* initialised before anything can fail: on_closing closes them on every
     * path that stops the CSC, including a failure right after its open */
    uv_signal_init(&loop, &a.sigint);
    uv_signal_init(&loop, &a.sigterm);
    uv_timer_init(&loop, &a.trim);
    a.sigint.data = a.sigterm.data = &a;
    sal_csc_hooks hooks = {.configure = on_configure, .closing = on_closing, .closed = on_closed, .arg = &a};
    char runner[1024];
    exe_path_runner(runner, sizeof runner);
    if (metrics_listen != NULL &&
        ocps_metrics_open(&a.metrics, &loop, metrics_listen, metrics_option, err, sizeof err) != 0) {
        report_error(err);
        on_closing(&a);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    if (ocps_app_open(&a.ocps, &loop, comp, opts.index, opts.simulation_mode, runner, err, sizeof err) != 0 ||
        sal_csc_open(&a.csc, &loop, comp, &opts, &hooks, err, sizeof err) != 0 ||
        ocps_app_attach(a.ocps, a.csc, err, sizeof err) != 0) {
        report_error(err);
        if (a.csc != NULL) {
            sal_csc_close(a.csc, 1); /* on_closing closes the rest */
        } else {
            on_closing(&a);
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        sal_exit_grace_close(&a.grace, &loop);
        uv_loop_close(&loop);
        return 1;
    }
    /* OCPS_SAL_INLINE=0: every sample crosses to the loop's thread (to
     * compare; see docs/sal-runtime.md) */
    const char *inl = getenv("OCPS_SAL_INLINE");
    if ((inl == NULL || strcmp(inl, "0") != 0) && sal_gate_open(&a.gate, &loop, err, sizeof err) == 0) {
        sal_set_gate(sal_csc_sal(a.csc), a.gate);
    }
    if (a.metrics != NULL) {
        ocps_metrics_set_sources(a.metrics, a.csc, a.ocps, OCPS_VERSION);
        SAL_LOG(a.csc, SAL_LOG_INFO, "Serving Prometheus metrics at http://%s/metrics (port %u)",
                metrics_listen, ocps_metrics_port(a.metrics));
    }
    char pipetask[1024];
    find_pipetask(pipetask, sizeof pipetask);
    ocps_app_set_embedded_pipetask(a.ocps, pipetask);
    char butler[1024];
    find_butler(butler, sizeof butler);
    ocps_app_set_embedded_butler(a.ocps, butler);
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_timer_start(&a.trim, on_trim, TRIM_PERIOD_MS, TRIM_PERIOD_MS);
    uv_unref((uv_handle_t *)&a.trim);
    if (sal_csc_start(a.csc, err, sizeof err) != 0) {
        report_error(err);
        sal_csc_close(a.csc, 1);
    }
    /* ends once the CSC has closed (on_closed) */
    if (a.gate != NULL) {
        sal_gate_run(a.gate, UV_RUN_DEFAULT);
    } else {
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    sal_exit_grace_close(&a.grace, &loop);
    uv_loop_close(&loop);
    return a.exit_code;
}
