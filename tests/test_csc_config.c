/*
 * test_csc_config: configuring ocps-csc as operators do, over real DDS:
 * a git-managed config directory, start(configurationOverride) with files
 * and git refs, salobj's failure messages (state stays STANDBY), the
 * configurationsAvailable/configurationApplied events, and the deployed
 * dm_config_ocps v4 layout shipped in deploy/config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "git_repo.h"
#include "ocps_test_iface.h"
#include "ocps/sal_csc.h"
#include "sal_fixture.h"
#include "test_util.h"

typedef struct ctx {
    fx f;
    char *top;     /* the test's temporary directory */
    char *root;    /* $DM_CONFIG_OCPS_DIR, in top; its name has a space and a '+' */
    char dir[512]; /* root/OCPS/v4 */
} ctx;

static const char *init_yaml = "instances:\n"
                               "  - sal_index: 1\n"
                               "    instance: LATISS\n"
                               "    url: http://uws-server/api/v1\n"
                               "    poll_interval: 0.5\n"
                               "    butler: LATISS\n"
                               "    input_collection: LATISS/raw/all\n"
                               "    output_glob: \"*\"\n";

static void write_config(ctx *c, const char *name, const char *text)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", c->dir, name);
    assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
}

/* A config dir with _init.yaml, _test.yaml and override files, committed. */
static void make_config_dir(ctx *c, bool with_init)
{
    c->top = tu_make_temp_dir();
    c->root = tu_path_join(c->top, "dm config+1");
    mkdir(c->root, 0755);
    snprintf(c->dir, sizeof c->dir, "%s/OCPS", c->root);
    mkdir(c->dir, 0755);
    snprintf(c->dir, sizeof c->dir, "%s/OCPS/v4", c->root);
    mkdir(c->dir, 0755);
    if (with_init) {
        write_config(c, "_init.yaml", init_yaml);
    }
    char site[1200]; /* its jobs and store in its own directory, not /var/tmp/ocps */
    snprintf(site, sizeof site, "max_concurrent_jobs: 3\nwork_root: %s/jobs\n", c->root);
    write_config(c, "_test.yaml", site);
    write_config(c, "fast.yaml", "max_concurrent_jobs: 8\nmetadata:\n  author: test\n");
    write_config(c, "typo.yaml",
                 "instances:\n  - sal_index: 1\n    instance: LATISS\n    url: http://x/\n"
                 "    pol_interval: 1\n    butler: LATISS\n    output_glob: '*'\n");
    write_config(c, "broken.yaml", "max_concurrent_jobs: [1, 2\n");
    write_config(c, "list.yaml", "- a\n- b\n");
    write_config(c, "other.yaml",
                 "instances:\n  - sal_index: 2\n    instance: LSSTComCam\n    url: http://x/\n"
                 "    poll_interval: 1\n    butler: LSSTComCam\n    output_glob: '*'\n");
    git_repo_run(c->dir, "init", "-q", NULL);
    git_repo_run(c->dir, "add", "-A", NULL);
    git_repo_run(c->dir, "commit", "-qm", "configuration");
}

static int start_csc(ctx *c, const char *site)
{
    fx_env(CYCLONE_CONFIG);
    setenv("DM_CONFIG_OCPS_DIR", c->root, 1);
    setenv("LSST_SITE", site, 1);
    if (fx_open(&c->f, ocps_test_component(), 1, NULL) != 0) {
        return -1;
    }
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0.2", "1", NULL};
    if (fx_start_csc(&c->f, argv) != 0) {
        return -1;
    }
    return fx_wait_event(&c->f, "logevent_summaryState", 0, 15) >= 0 ? 0 : -1;
}

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    make_config_dir(c, true);
    *state = c;
    return start_csc(c, "test");
}

static int setup_no_init(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    make_config_dir(c, false);
    *state = c;
    return start_csc(c, "test");
}

static int setup_unknown_site(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    make_config_dir(c, true);
    *state = c;
    return start_csc(c, "nosuchsite");
}

static int teardown(void **state)
{
    ctx *c = *state;
    int rc = fx_close(&c->f);
    tu_remove_tree(c->top);
    free(c->top);
    free(c->root);
    free(c);
    return rc;
}

static const char *str_field(fx *f, long i, const char *field)
{
    return sal_sample_get_string(&f->comp->topics[f->records[i].topic], f->records[i].sample, field);
}

/* start with `override`; returns the ack and the result text. */
static int start_with(fx *f, const char *override, char *result, size_t len)
{
    return fx_command_str(f, "start", "configurationOverride", override, 30, result, len);
}

static void assert_still_standby(fx *f, size_t mark)
{
    fx_run_for(f, 0.3);
    for (size_t i = mark; i < f->nrecords; i++) {
        const char *name = f->comp->topics[f->records[i].topic].sal_name;
        assert_string_not_equal(name, "logevent_summaryState");
        assert_string_not_equal(name, "logevent_configurationApplied");
    }
}

static void good_start_writes_configuration_events(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    long avail = fx_wait_event(f, "logevent_configurationsAvailable", 0, 5);
    assert_true(avail >= 0);
    assert_string_equal(str_field(f, avail, "overrides"),
                        "broken.yaml,fast.yaml,list.yaml,other.yaml,typo.yaml");
    assert_string_equal(str_field(f, avail, "schemaVersion"), "v4");
    assert_true(strncmp(str_field(f, avail, "version"), "heads/", 6) == 0);
    /* Path.as_uri() of the directory, as salobj gives it: the root's
     * space and '+' percent-encoded */
    char url[700];
    char *real = realpath(c->top, NULL);
    snprintf(url, sizeof url, "file://%s/dm%%20config%%2B1/OCPS/v4", real);
    free(real);
    assert_string_equal(str_field(f, avail, "url"), url);

    char result[1024];
    size_t mark = f->nrecords;
    assert_int_equal(start_with(f, "fast.yaml", result, sizeof result), SAL_CMD_COMPLETE);
    long applied = fx_wait_event(f, "logevent_configurationApplied", mark, 5);
    long summary = fx_wait_change(f, "logevent_summaryState", "summaryState", mark, 5);
    assert_true(applied >= 0 && summary > applied);
    assert_string_equal(str_field(f, applied, "configurations"), "_init.yaml,_test.yaml,fast.yaml");
    assert_string_equal(str_field(f, applied, "schemaVersion"), "v4");
    assert_string_equal(str_field(f, applied, "url"), url);
    assert_string_equal(str_field(f, applied, "version"), str_field(f, avail, "version"));
    assert_int_equal(fx_i32(f, (size_t)summary, "summaryState"), SAL_STATE_DISABLED);
    /* the CSC logged what it applied: fast.yaml's value won over _test.yaml's */
    char *log = tu_read_file(f->log_path, NULL);
    assert_non_null(strstr(log, "max_concurrent_jobs=8"));
    free(log);
}

/* What the engine was opened with cannot change while the CSC runs: a
 * later start whose configuration changes the executor (or work_root)
 * fails naming it and the CSC stays in STANDBY; the same start as before
 * still succeeds. */
static void restart_only_settings_fail_a_later_start(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    write_config(c, "to_slurm.yaml", "executor: slurm\n");
    write_config(c, "moved.yaml", "work_root: /nonexistent/ocps-moved\n");
    char result[1024];
    assert_int_equal(start_with(f, "fast.yaml", result, sizeof result), SAL_CMD_COMPLETE);
    assert_int_equal(fx_command(f, "standby", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    size_t mark = f->nrecords;
    assert_int_equal(start_with(f, "to_slurm.yaml", result, sizeof result), SAL_CMD_FAILED);
    assert_non_null(strstr(result, "executor local -> slurm: this setting is fixed while the CSC runs"));
    assert_int_equal(start_with(f, "moved.yaml", result, sizeof result), SAL_CMD_FAILED);
    assert_non_null(strstr(result, "-> /nonexistent/ocps-moved: this setting is fixed"));
    assert_still_standby(f, mark);
    assert_int_equal(start_with(f, "fast.yaml", result, sizeof result), SAL_CMD_COMPLETE);
}

/* With executor uws, the server's url and its API are fixed the same way,
 * and the message names the one that changed. */
static void restart_only_uws_server_is_named(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
#define UWS_INSTANCE(port)                                                                                   \
    "instances:\n  - {sal_index: 1, instance: LATISS, url: \"http://127.0.0.1:" port "/api/v1\", "           \
    "poll_interval: 0.5, butler: LATISS, output_glob: \"*\"}\n"
    write_config(c, "uws.yaml", "executor: uws\n" UWS_INSTANCE("9"));
    write_config(c, "uws_ref.yaml", "executor: uws\nuws_api: uws-api-server\n" UWS_INSTANCE("9"));
    write_config(c, "uws_moved.yaml", "executor: uws\n" UWS_INSTANCE("10"));
#undef UWS_INSTANCE
    char result[1024];
    int rc = start_with(f, "uws.yaml", result, sizeof result);
    print_message("uws.yaml: %s\n", result);
    assert_int_equal(rc, SAL_CMD_COMPLETE);
    assert_int_equal(fx_command(f, "standby", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    size_t mark = f->nrecords;
    assert_int_equal(start_with(f, "uws_ref.yaml", result, sizeof result), SAL_CMD_FAILED);
    assert_non_null(
        strstr(result, "the UWS server's API (uws_api ocps-engine -> uws-api-server): this setting"));
    assert_int_equal(start_with(f, "uws_moved.yaml", result, sizeof result), SAL_CMD_FAILED);
    assert_non_null(
        strstr(result, "(url http://127.0.0.1:9/api/v1 -> http://127.0.0.1:10/api/v1): this setting"));
    assert_still_standby(f, mark);
}

/* An LSST_SITE without its _<site>.yaml (a misspelt site) is said at
 * start-up, as a warning; the CSC still runs on _init.yaml alone. */
static void unknown_site_is_warned(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    char want[1100];
    snprintf(want, sizeof want, "LSST_SITE=nosuchsite: no _nosuchsite.yaml in ");
    char *log = NULL;
    for (double end = tu_now() + 5; tu_now() < end; fx_run_for(f, 0.1)) {
        free(log);
        log = tu_read_file(f->log_path, NULL);
        if (log != NULL && strstr(log, want) != NULL) {
            break;
        }
    }
    assert_non_null(log);
    assert_non_null(strstr(log, want));
    free(log);
    char result[1024];
    assert_int_equal(start_with(f, "", result, sizeof result), SAL_CMD_COMPLETE);
}

static void failures_keep_standby_with_salobj_messages(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    char result[2048];
    char expect[2048];
    size_t mark = f->nrecords;

    assert_int_equal(start_with(f, "nosuch.yaml", result, sizeof result), SAL_CMD_FAILED);
    char *real = realpath(c->dir, NULL);
    snprintf(expect, sizeof expect, "Failed: Config file '%s/nosuch.yaml' does not exist", real);
    assert_string_equal(result, expect);

    assert_int_equal(start_with(f, "broken.yaml", result, sizeof result), SAL_CMD_FAILED);
    snprintf(expect, sizeof expect, "Failed: Could not parse data in %s/broken.yaml as a dict: ", real);
    assert_true(strncmp(result, expect, strlen(expect)) == 0);

    assert_int_equal(start_with(f, "list.yaml", result, sizeof result), SAL_CMD_FAILED);
    snprintf(expect, sizeof expect, "Failed: Could not parse data in %s/list.yaml as a dict: ", real);
    assert_true(strncmp(result, expect, strlen(expect)) == 0);

    assert_int_equal(start_with(f, "typo.yaml", result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(result,
                        "Failed: Configuration failed validation: <ValidationError: \"Additional properties "
                        "are not allowed ('pol_interval' was unexpected)\"> at /instances/0");

    /* a relative work root would depend on the CSC's working directory */
    write_config(c, "relative.yaml", "work_root: relative/dir\n");
    assert_int_equal(start_with(f, "relative.yaml", result, sizeof result), SAL_CMD_FAILED);
    print_message("relative work_root: %s\n", result);
    assert_non_null(strstr(result, "'relative/dir' does not match '^/'"));
    assert_non_null(strstr(result, "at /work_root"));

    /* a final ack held past the first ack's timeout (3 x inprogress_interval,
     * no CMD_INPROGRESS is re-sent meanwhile) would time the client out */
    write_config(c, "longhold.yaml", "inprogress_interval: 1\nfinal_ack_min_delay: 5\n");
    assert_int_equal(start_with(f, "longhold.yaml", result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(result,
                        "Failed: final_ack_min_delay (5 s) must not exceed inprogress_interval (1 s): "
                        "an execute's client waits 3 x inprogress_interval for its next ack");

    /* a pipetask that cannot run here fails the start, not every job */
    write_config(c, "nopipe.yaml", "pipetask: /nonexistent/ocps/pipetask\n");
    assert_int_equal(start_with(f, "nopipe.yaml", result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(
        result, "Failed: pipetask /nonexistent/ocps/pipetask cannot be run: No such file or directory");

    /* valid for the schema, but the application finds no block for index 1 */
    assert_int_equal(start_with(f, "other.yaml", result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(result, "Failed: No configuration found for sal_index=1");

    assert_int_equal(start_with(f, "_init.yaml", result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(result,
                        "Failed: configurationOverride filename='_init.yaml' must not start with '_'");

    assert_int_equal(start_with(f, "fast.yaml:nosuchref", result, sizeof result), SAL_CMD_FAILED);
    snprintf(expect, sizeof expect,
             "Failed: Could not read config file %s/_init.yaml with git hash nosuchref: ", real);
    assert_true(strncmp(result, expect, strlen(expect)) == 0);
    free(real);
    assert_still_standby(f, mark);

    /* and a good start still works afterwards */
    assert_int_equal(start_with(f, "", result, sizeof result), SAL_CMD_COMPLETE);
}

static void missing_init_yaml_fails(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    char result[2048];
    size_t mark = f->nrecords;
    assert_int_equal(start_with(f, "", result, sizeof result), SAL_CMD_FAILED);
    char *real = realpath(c->dir, NULL);
    char expect[1024];
    snprintf(expect, sizeof expect, "Failed: Config file '%s/_init.yaml' does not exist", real);
    free(real);
    assert_string_equal(result, expect);
    assert_still_standby(f, mark);
}

static void override_read_at_a_git_ref(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    /* the working tree changes after the commit: a ref reads the commit */
    write_config(c, "fast.yaml", "max_concurrent_jobs: 0\n");
    char result[2048];
    assert_int_equal(start_with(f, "fast.yaml", result, sizeof result), SAL_CMD_FAILED);
    assert_non_null(strstr(result, "0 is less than the minimum of 1"));
    size_t mark = f->nrecords;
    assert_int_equal(start_with(f, "fast.yaml:HEAD", result, sizeof result), SAL_CMD_COMPLETE);
    long applied = fx_wait_event(f, "logevent_configurationApplied", mark, 5);
    assert_true(applied >= 0);
    assert_string_equal(str_field(f, applied, "configurations"), "_init.yaml,_test.yaml,fast.yaml");
    /* the uncommitted change shows in the version */
    assert_non_null(strstr(str_field(f, applied, "version"), "-dirty"));
    char *log = tu_read_file(f->log_path, NULL);
    assert_non_null(strstr(log, "max_concurrent_jobs=8"));
    free(log);
    /* as salobj's read_config_files: the file must also be in the working
     * tree, whatever the ref holds */
    assert_int_equal(fx_command(f, "standby", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    char path[700];
    snprintf(path, sizeof path, "%s/fast.yaml", c->dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(start_with(f, "fast.yaml:HEAD", result, sizeof result), SAL_CMD_FAILED);
    char want[800];
    snprintf(want, sizeof want, "Failed: Config file '%s' does not exist", path);
    assert_string_equal(result, want);
}

typedef struct avail_wait {
    size_t from;
    const char *overrides;
} avail_wait;

static bool overrides_seen(fx *f, void *arg)
{
    avail_wait *w = arg;
    int t = sal_component_find_topic(f->comp, "logevent_configurationsAvailable");
    for (size_t i = w->from; i < f->nrecords; i++) {
        if (f->records[i].topic == t && strcmp(str_field(f, (long)i, "overrides"), w->overrides) == 0) {
            return true;
        }
    }
    return false;
}

static void configurations_available_follows_the_directory(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    assert_true(fx_wait_event(f, "logevent_configurationsAvailable", 0, 5) >= 0);
    size_t mark = f->nrecords;
    write_config(c, "added.yaml", "max_concurrent_jobs: 2\n");
    avail_wait w = {mark, "added.yaml,broken.yaml,fast.yaml,list.yaml,other.yaml,typo.yaml"};
    assert_true(fx_run_until(f, overrides_seen, &w, 5));
}

/* A git that takes 1.5 s for `describe` and logs when each one begins
 * ("b") and ends ("e"), put first on PATH for the CSC. */
static int setup_slow_git(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    make_config_dir(c, true);
    *state = c;
    char *bin = tu_path_join(c->root, "bin");
    mkdir(bin, 0755);
    char *script = tu_path_join(bin, "git");
    const char *path = getenv("PATH");
    char text[4096];
    snprintf(text, sizeof text,
             "#!/bin/sh\ncase \" $* \" in *\" describe \"*) echo b >> '%s/git.log'; sleep 1.5; "
             "echo e >> '%s/git.log';; esac\nPATH='%s' exec git \"$@\"\n",
             c->root, c->root, path);
    tu_write_file(script, text, strlen(text));
    chmod(script, 0755);
    char newpath[4200];
    snprintf(newpath, sizeof newpath, "%s:%s", bin, path);
    setenv("PATH", newpath, 1);
    int rc = start_csc(c, "test");
    setenv("PATH", newpath + strlen(bin) + 1, 1); /* the test's own git runs stay fast */
    free(script);
    free(bin);
    return rc;
}

/* In STANDBY the CSC refreshes configurationsAvailable every second; with
 * a slow git, scans must not pile up on the thread pool (each waiting
 * for git), and a start must still go through. */
static void slow_git_scans_do_not_pile_up(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    fx_run_for(f, 5.0);
    char result[512];
    double t0 = tu_now();
    assert_int_equal(start_with(f, "", result, sizeof result), SAL_CMD_COMPLETE);
    assert_true(tu_now() - t0 < 6.0);
    char *log_path = tu_path_join(c->root, "git.log");
    char *log = tu_read_file(log_path, NULL);
    assert_non_null(log);
    int running = 0;
    int most = 0;
    int scans = 0;
    for (const char *p = log; *p != '\0'; p++) {
        if (*p == 'b') {
            scans++;
            running++;
            most = running > most ? running : most;
        } else if (*p == 'e') {
            running--;
        }
    }
    print_message("%d git describe runs, at most %d at once\n", scans, most);
    assert_true(scans >= 2);
    assert_true(most <= 2); /* one scan, plus the start's own read */
    free(log);
    free(log_path);
}

static void shipped_deploy_config_validates(void **state)
{
    (void)state;
    /* deploy/config/OCPS/v4 as a site would use it (LSST_SITE=test) */
    fx f;
    fx_env(CYCLONE_CONFIG);
    setenv("LSST_SITE", "test", 1);
    assert_int_equal(fx_open(&f, ocps_test_component(), 3, NULL), 0);
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0.2", "--configdir", DEPLOY_CONFIG_DIR, "3", NULL};
    assert_int_equal(fx_start_csc(&f, argv), 0);
    assert_true(fx_wait_event(&f, "logevent_summaryState", 0, 15) >= 0);
    char result[2048];
    assert_int_equal(start_with(&f, "local.yaml", result, sizeof result), SAL_CMD_COMPLETE);
    char *log = tu_read_file(f.log_path, NULL);
    assert_non_null(strstr(log, "butler=LSSTCam"));
    free(log);
    assert_int_equal(fx_close(&f), 0);
}

static void csc_refuses_to_run_without_site_or_config(void **state)
{
    (void)state;
    char *out = NULL;
    char *no_site[] = {"env", "-u", "LSST_SITE", OCPS_CSC, "1", NULL};
    assert_int_equal(tu_run(no_site, &out), 1);
    assert_non_null(strstr(out, "LSST_SITE must be set"));
    free(out);
    char *no_dir[] = {"env", "-u", "DM_CONFIG_OCPS_DIR", "LSST_SITE=test", OCPS_CSC, "1", NULL};
    assert_int_equal(tu_run(no_dir, &out), 1);
    assert_non_null(strstr(out, "DM_CONFIG_OCPS_DIR not defined"));
    free(out);
    char *bad_dir[] = {"env", "LSST_SITE=test", OCPS_CSC, "--configdir", "/nonexistent/ocps", "1", NULL};
    assert_int_equal(tu_run(bad_dir, &out), 1);
    assert_non_null(strstr(out, "/nonexistent/ocps does not exist"));
    free(out);
}

/* A failure after the CSC is open (here its attach step; an interface
 * lacking a command would do it) exits with status 1 and the message: no
 * crash closing handles that were never started, no sanitizer report. */
static void csc_exits_cleanly_when_attach_fails(void **state)
{
    (void)state;
    fx_env(CYCLONE_CONFIG);
    char *out = NULL;
    char *argv[] = {"env", "LSST_SITE=test", OCPS_CSC_ATTACH_FAILS, "1", NULL};
    int rc = tu_run(argv, &out);
    if (rc != 1 || strstr(out, "ocps-csc: OCPS has no command no_such_command") == NULL ||
        strstr(out, "Sanitizer") != NULL || strstr(out, "runtime error") != NULL) {
        fail_msg("exit status %d, output:\n%s", rc, out ? out : "");
    }
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(good_start_writes_configuration_events, setup, teardown),
        cmocka_unit_test_setup_teardown(failures_keep_standby_with_salobj_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(restart_only_settings_fail_a_later_start, setup, teardown),
        cmocka_unit_test_setup_teardown(restart_only_uws_server_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_site_is_warned, setup_unknown_site, teardown),
        cmocka_unit_test_setup_teardown(missing_init_yaml_fails, setup_no_init, teardown),
        cmocka_unit_test_setup_teardown(override_read_at_a_git_ref, setup, teardown),
        cmocka_unit_test_setup_teardown(configurations_available_follows_the_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(slow_git_scans_do_not_pile_up, setup_slow_git, teardown),
        cmocka_unit_test(shipped_deploy_config_validates),
        cmocka_unit_test(csc_refuses_to_run_without_site_or_config),
        cmocka_unit_test(csc_exits_cleanly_when_attach_fails),
    };
    return cmocka_run_group_tests_name("csc_config", tests, NULL, NULL);
}
