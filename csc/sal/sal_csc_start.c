/* sal_csc_start.c - the start command: reading, validating and applying the
 * configuration, and the configuration events; see sal_csc.h. */
#include "sal_csc__internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A start still in progress tells the commander how long to wait, 200 ms
 * after it began and again every SAL_START_RENEW_MS while it lasts (git
 * may take a while; so may a backend the configuration needs, Slurm's
 * controller or Redis), each time SAL_START_WAIT_S from then (its ack's
 * timeout only what that adds: sal_cmd_in_progress), so that a start
 * longer than one wait is not timed out by the commander. */
#define SAL_START_RENEW_MS 20000u
#define SAL_START_WAIT_S 60.0

static void write_configurations_available(sal_csc *c, const sal_config_available *a)
{
    int t;
    void *s = sal_csc__new_sample(c, "logevent_configurationsAvailable", &t);
    if (s == NULL) {
        return;
    }
    sal_csc__set_str(c, t, s, "overrides", a->overrides);
    sal_csc__set_str(c, t, s, "version", a->version);
    sal_csc__set_str(c, t, s, "url", sal_config_url(c->config));
    sal_csc__set_str(c, t, s, "schemaVersion", sal_config_schema_version(c->config));
    sal_csc__write_and_free(c, "logevent_configurationsAvailable", t, s, 0);
}

static void on_config_scanned(void *arg, const sal_config_available *a)
{
    sal_csc *c = arg;
    if (c->stopping || (c->state != SAL_STATE_STANDBY && !c->start_scan)) {
        return; /* a scan of the STANDBY poll that ended after the CSC left STANDBY (a fault) */
    }
    c->start_scan = false;
    if (a->not_git && !c->warned_not_git) {
        c->warned_not_git = true;
        SAL_LOG(c, SAL_LOG_WARNING, "config dir %s is not a git work tree: configuration version unknown",
                sal_config_dir(c->config));
    }
    if (!c->warned_site) {
        c->warned_site = true;
        if (!sal_config_has_site_file(c->config)) {
            SAL_LOG(c, SAL_LOG_WARNING,
                    "LSST_SITE=%s: no _%s.yaml in %s: _init.yaml alone (and overrides) apply",
                    sal_config_site(c->config), sal_config_site(c->config), sal_config_dir(c->config));
        }
    }
    write_configurations_available(c, a);
}

void sal_csc__config_poll_cb(uv_timer_t *timer)
{
    sal_csc *c = timer->data;
    sal_config_scan(c->config, on_config_scanned, c);
}

static void write_configuration_applied(sal_csc *c, const sal_config_result *r)
{
    int t;
    void *s = sal_csc__new_sample(c, "logevent_configurationApplied", &t);
    if (s == NULL) {
        return;
    }
    sal_csc__set_str(c, t, s, "configurations", r->files);
    sal_csc__set_str(c, t, s, "version", r->version);
    sal_csc__set_str(c, t, s, "url", sal_config_url(c->config));
    sal_csc__set_str(c, t, s, "schemaVersion", sal_config_schema_version(c->config));
    sal_csc__set_str(c, t, s, "otherInfo", c->opts.config_other_info ? c->opts.config_other_info : "");
    sal_csc__write_and_free(c, "logevent_configurationApplied", t, s, SAL_WRITE_FORCE);
}

/* End of a start: ack the command (or go on with the --state chain). */
void sal_csc__start_done(sal_csc *c, const char *failure)
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
        sal_csc__run_chain(c);
    }
}

/* Apply a configuration (the application's hook): 0 applied,
 * SAL_CONFIGURE_PENDING (sal_csc_configure_done follows), -1 failed. */
static int apply_configuration(sal_csc *c, json_t *config, char *err, size_t errlen)
{
    if (c->hooks.configure == NULL) {
        return 0;
    }
    int rc = c->hooks.configure(c->hooks.arg, config, err, errlen);
    return rc == SAL_CONFIGURE_PENDING ? rc : rc != 0 ? -1 : 0;
}

static void clear_pending(sal_csc *c)
{
    c->configure_pending = false;
    free(c->pending);
    c->pending = NULL;
}

/* The configuration is applied: configurationApplied, DISABLED, ack. */
static void finish_start(sal_csc *c, const sal_config_result *r)
{
    if (r != NULL) {
        write_configuration_applied(c, r);
    }
    sal_csc__set_state(c, SAL_STATE_DISABLED);
    sal_csc__start_done(c, NULL);
}

static void on_config_loaded(void *arg, sal_config_result *r)
{
    sal_csc *c = arg;
    if (c->stopping) {
        return;
    }
    char err[2048];
    if (c->state != SAL_STATE_STANDBY) {
        sal_csc__start_done(c, "the summary state changed while the configuration was read");
        return;
    }
    if (!r->ok) {
        sal_csc__start_done(c, r->message);
        return;
    }
    int rc = apply_configuration(c, r->config, err, sizeof err);
    if (rc == SAL_CONFIGURE_PENDING) {
        c->configure_pending = true;
        c->pending = calloc(1, sizeof *c->pending);
        if (c->pending != NULL) {
            c->pending->ok = true;
            memcpy(c->pending->files, r->files, sizeof r->files);
            memcpy(c->pending->version, r->version, sizeof r->version);
        }
        if (c->start_cmd != NULL) {
            sal_cmd_in_progress(c->start_cmd, SAL_START_WAIT_S, "Applying the configuration");
        }
    } else if (rc != 0) {
        sal_csc__start_done(c, err);
    } else {
        finish_start(c, r);
    }
}

void sal_csc_configure_done(sal_csc *c, const char *failure)
{
    if (c == NULL || !c->configure_pending) {
        return;
    }
    if (c->stopping) {
        clear_pending(c);
        return;
    }
    if (failure == NULL && c->state != SAL_STATE_STANDBY) {
        failure = "the summary state changed while the configuration was applied";
    }
    if (failure != NULL) {
        clear_pending(c);
        sal_csc__start_done(c, failure);
        return;
    }
    if (c->pending != NULL && c->config != NULL) {
        write_configuration_applied(c, c->pending);
    }
    clear_pending(c);
    finish_start(c, NULL);
}

/* A start still in progress: the commander is told how long to wait
 * (start_slow_cb). */

static void start_slow_cb(uv_timer_t *timer)
{
    sal_csc *c = timer->data;
    if (c->start_busy && c->start_cmd != NULL) {
        sal_cmd_in_progress(c->start_cmd, SAL_START_WAIT_S,
                            c->configure_pending ? "Applying the configuration"
                                                 : "Reading the configuration");
    }
}

/* Begin STANDBY -> DISABLED; 0 when done now, TRANSITION_PENDING when the
 * configuration is being read, -1 with the ack result in err. */
int sal_csc__begin_start(sal_csc *c, const char *override, sal_cmd *cmd, char *err, size_t errlen)
{
    if (c->config == NULL) {
        if (c->start_busy) {
            snprintf(err, errlen, "Failed: a start is already in progress");
            return -1;
        }
        json_t *empty = json_object();
        char msg[1800] = "";
        int rc = apply_configuration(c, empty, msg, sizeof msg);
        json_decref(empty);
        if (rc == SAL_CONFIGURE_PENDING) {
            c->configure_pending = true;
            c->start_busy = true;
            c->start_cmd = cmd;
            uv_timer_start(&c->start_slow, start_slow_cb, 200, SAL_START_RENEW_MS);
            return TRANSITION_PENDING;
        }
        if (rc != 0) {
            SAL_LOG(c, SAL_LOG_ERROR, "begin_start failed; remaining in state %s: %s",
                    sal_state_repr(c->state), msg);
            snprintf(err, errlen, "Failed: %s", msg);
            return -1;
        }
        sal_csc__set_state(c, SAL_STATE_DISABLED);
        return 0;
    }
    if (c->start_busy) {
        snprintf(err, errlen, "Failed: a start is already in progress");
        return -1;
    }
    /* salobj refreshes configurationsAvailable in start: written whenever
     * this scan (or one of the STANDBY poll already under way, which makes
     * this one wait) ends, also after DISABLED (the two run in parallel) */
    c->start_scan = true;
    sal_config_scan(c->config, on_config_scanned, c);
    if (sal_config_load(c->config, override, on_config_loaded, c) != 0) {
        snprintf(err, errlen, "Failed: could not queue the configuration read");
        return -1;
    }
    c->start_busy = true;
    c->start_cmd = cmd;
    uv_timer_start(&c->start_slow, start_slow_cb, 200, SAL_START_RENEW_MS);
    return TRANSITION_PENDING;
}
