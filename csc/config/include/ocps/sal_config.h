/*
 * sal_config.h - configuration of a configurable CSC, as salobj 7/8's
 * ConfigurableCsc does it: a config directory (--configdir, else
 * $<PKG>_DIR/<Name>/<schema version>) holding _init.yaml, optional
 * _<LSST_SITE>.yaml and override files; start(configurationOverride =
 * "[file.yaml][:gitref]") reads them (at a git ref with `git show`),
 * deep-merges, drops `metadata`, and validates against the CSC's JSON
 * schema with defaults applied.
 *
 * File and git work runs on libuv's thread pool; results come back on the
 * loop. Messages match salobj's ("Config file '<path>' does not exist",
 * "Could not parse data in <path> as a dict: ...", ...).
 */
#ifndef SAL_CONFIG_H
#define SAL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <uv.h>

typedef struct sal_config sal_config;

/* Outcome of sal_config_load. */
typedef struct sal_config_result {
    bool ok;
    char message[2048]; /* why it failed (no "Failed: " prefix) */
    json_t *config;     /* the validated configuration (owned by the result) */
    char files[1024];   /* files read, "_init.yaml,_summit.yaml,foo.yaml" */
    char version[256];  /* git describe of the config dir, "" if not git */
} sal_config_result;

/* What the config directory offers (configurationsAvailable). */
typedef struct sal_config_available {
    char overrides[4096]; /* sorted *.yaml not starting with '_', comma-separated */
    char version[256];    /* git describe --all --long --always --dirty, or "" */
    bool not_git;         /* the directory is not in a git work tree */
} sal_config_available;

typedef void (*sal_config_load_cb)(void *arg, sal_config_result *result);
typedef void (*sal_config_scan_cb)(void *arg, const sal_config_available *available);

/* Create: compile the schema (YAML or JSON text; its title must end in
 * " v<N>", the schema version) and resolve the config directory from
 * config_dir, or else from $<PKG>_DIR/<component>/<schema version> where
 * PKG is config_pkg in upper case (dm_config_ocps -> DM_CONFIG_OCPS_DIR).
 * site is LSST_SITE. Fails with a message if anything is missing. */
int sal_config_open(sal_config **out, uv_loop_t *loop, const char *component, const char *schema_text,
                    const char *config_dir, const char *config_pkg, const char *site, char *err,
                    size_t errlen);

/* The schema version ("v4") and the directory as a file:// URL. */
const char *sal_config_schema_version(const sal_config *c);
const char *sal_config_url(const sal_config *c);
const char *sal_config_dir(const sal_config *c);

/* The site (LSST_SITE), and whether its _<site>.yaml overlay exists (a
 * site without one applies _init.yaml alone: a misspelt LSST_SITE). */
const char *sal_config_site(const sal_config *c);
bool sal_config_has_site_file(const sal_config *c);

/* Read and validate the configuration for `override`; cb runs on the loop
 * with the result (freed after cb returns unless cb takes result->config
 * by setting it to NULL). */
int sal_config_load(sal_config *c, const char *override, sal_config_load_cb cb, void *arg);

/* Scan the directory for overrides and its git version; cb on the loop.
 * -EBUSY while the previous scan is still running (a slow git must not fill
 * the thread pool that a start needs). */
int sal_config_scan(sal_config *c, sal_config_scan_cb cb, void *arg);

/* Close; work in flight finishes on the pool and its callback is not run. */
void sal_config_close(sal_config *c);

/* Deep-merge `overlay` into `base` as salobj does: dicts merge
 * recursively, other values replace; a dict meeting a non-dict is an
 * error. Used by the loader; exposed for tests. */
int sal_config_merge(json_t *base, json_t *overlay, char *err, size_t errlen);

#endif
