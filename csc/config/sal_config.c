/* sal_config.c - see sal_config.h. */
#include "ocps/sal_config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ocps/json_schema.h"
#include "ocps/sal_proc.h"
#include "ocps/sal_uri.h"
#include "ocps/yaml_json.h"

#define GIT_TIMEOUT 20.0

struct sal_config {
    uv_loop_t *loop;
    json_schema *schema;
    char schema_version[64];
    char dir[PATH_MAX];
    char url[3 * PATH_MAX + 8]; /* file:// + every byte of dir percent-encoded */
    char site[128];
    int pending;   /* work items in flight */
    bool scanning; /* a scan is in flight: the next waits for it */
    bool closed;
};

typedef struct work {
    uv_work_t req;
    sal_config *c;
    bool is_load;
    char override[1024];
    sal_config_load_cb load_cb;
    sal_config_scan_cb scan_cb;
    void *arg;
    sal_config_result result;
    sal_config_available available;
} work;

/* --- opening --- */

static int schema_version_of(const char *title, char *out, size_t len)
{
    const char *sp = title ? strrchr(title, ' ') : NULL;
    if (sp == NULL || sp[1] != 'v' || !isdigit((unsigned char)sp[2])) {
        return -1;
    }
    snprintf(out, len, "%s", sp + 1);
    return 0;
}

static int resolve_dir(sal_config *c, const char *component, const char *config_dir, const char *config_pkg,
                       char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (config_dir != NULL && *config_dir != '\0') {
        snprintf(path, sizeof path, "%s", config_dir);
    } else {
        char var[128];
        size_t n = 0;
        for (const char *p = config_pkg; *p && n < sizeof var - 5; p++) {
            var[n++] = (char)toupper((unsigned char)*p);
        }
        snprintf(var + n, sizeof var - n, "_DIR");
        const char *root = getenv(var);
        if (root == NULL || *root == '\0') {
            snprintf(err, errlen, "Environment variable %s not defined (or use --configdir)", var);
            return -ENOENT;
        }
        snprintf(path, sizeof path, "%.2000s/%s/%s", root, component, c->schema_version);
    }
    struct stat st;
    if (realpath(path, c->dir) == NULL || stat(c->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "config_dir=%s does not exist or is not a directory", path);
        return -ENOENT;
    }
    sal_file_uri(c->dir, c->url, sizeof c->url);
    return 0;
}

int sal_config_open(sal_config **out, uv_loop_t *loop, const char *component, const char *schema_text,
                    const char *config_dir, const char *config_pkg, const char *site, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (site == NULL || *site == '\0') {
        snprintf(err, errlen, "LSST_SITE must be set (the site whose _<site>.yaml overlay applies)");
        return -EINVAL;
    }
    sal_config *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->loop = loop;
    snprintf(c->site, sizeof c->site, "%s", site);
    char yerr[512];
    json_t *schema = yaml_json_load(schema_text, strlen(schema_text), yerr, sizeof yerr);
    if (schema == NULL) {
        snprintf(err, errlen, "the CSC's configuration schema does not parse: %s", yerr);
        free(c);
        return -EINVAL;
    }
    json_schema_error serr;
    c->schema = json_schema_compile(schema, &serr);
    json_decref(schema);
    if (c->schema == NULL) {
        snprintf(err, errlen, "the CSC's configuration schema is invalid: %s", serr.message);
        free(c);
        return -EINVAL;
    }
    if (schema_version_of(json_schema_title(c->schema), c->schema_version, sizeof c->schema_version) != 0) {
        snprintf(err, errlen, "the schema title must end in ' v<version>'");
        sal_config_close(c);
        return -EINVAL;
    }
    int rc = resolve_dir(c, component, config_dir, config_pkg, err, errlen);
    if (rc != 0) {
        sal_config_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

const char *sal_config_schema_version(const sal_config *c)
{
    return c->schema_version;
}

const char *sal_config_url(const sal_config *c)
{
    return c->url;
}

const char *sal_config_dir(const sal_config *c)
{
    return c->dir;
}

/* --- work done on the thread pool --- */

static void git_version(const char *dir, char *out, size_t len, bool *not_git)
{
    char *argv[] = {"git", "-C", (char *)dir, "describe", "--all", "--long", "--always", "--dirty", NULL};
    char text[1024];
    int rc = sal_proc_run(argv, text, sizeof text, GIT_TIMEOUT);
    *not_git = rc != 0;
    snprintf(out, len, "%.*s", (int)len - 1, rc == 0 ? text : "");
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void scan_dir(const char *dir, sal_config_available *a)
{
    DIR *d = opendir(dir);
    char *names[512];
    size_t n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL && n < 512) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] != '_' && e->d_name[0] != '.' && len > 5 &&
            strcmp(e->d_name + len - 5, ".yaml") == 0) {
            names[n] = strdup(e->d_name);
            n += names[n] != NULL;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    qsort(names, n, sizeof *names, compare_names);
    size_t used = 0;
    a->overrides[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (used < sizeof a->overrides) {
            used += (size_t)snprintf(a->overrides + used, sizeof a->overrides - used, "%s%s", i ? "," : "",
                                     names[i]);
        }
        free(names[i]);
    }
    git_version(dir, a->version, sizeof a->version, &a->not_git);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

const char *sal_config_site(const sal_config *c)
{
    return c->site;
}

bool sal_config_has_site_file(const sal_config *c)
{
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/_%s.yaml", c->dir, c->site);
    return exists(path);
}

/* The file name at git ref `ref` in dir (git show), as YAML: every byte
 * of it, as the working-tree read takes the file (at most
 * YAML_JSON_MAX_INPUT bytes; NUL bytes refused by the parser). NULL with
 * err (YAML or size) or r->message (git) set. */
static json_t *read_at_ref(const char *dir, const char *name, const char *path, const char *ref,
                           json_t *stamps, sal_config_result *r, char *err, size_t errlen)
{
    char spec[1400];
    snprintf(spec, sizeof spec, "%s:./%s", ref, name);
    char *argv[] = {"git", "-C", (char *)dir, "show", "--end-of-options", spec, NULL};
    char *text;
    size_t len;
    char git_err[1024];
    int rc = sal_proc_capture(argv, YAML_JSON_MAX_INPUT, GIT_TIMEOUT, &text, &len, git_err, sizeof git_err);
    if (rc == SAL_PROC_TOO_LONG) {
        snprintf(err, errlen, "%.900s: larger than the limit of %u bytes", path, YAML_JSON_MAX_INPUT);
        return NULL;
    }
    if (rc != 0) {
        snprintf(r->message, sizeof r->message,
                 "Could not read config file %.900s with git hash %.200s: %.800s", path, ref,
                 rc > 128 ? "git timed out" : git_err);
        free(text);
        return NULL;
    }
    json_t *data = yaml_json_load_named(text, len, path, stamps, err, errlen);
    free(text);
    return data;
}

/* Read one file (at `ref` if not empty) as YAML, its timestamp values
 * appended to stamps; NULL with r->message. As salobj's read_config_files,
 * the file must be in the working tree also when it is read at a ref. */
static json_t *read_file(const char *dir, const char *name, const char *ref, json_t *stamps,
                         sal_config_result *r)
{
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_t *data;
    char err[1024] = "";
    if (!exists(path)) {
        snprintf(r->message, sizeof r->message, "Config file '%.1500s' does not exist", path);
        return NULL;
    }
    if (ref[0] != '\0') {
        data = read_at_ref(dir, name, path, ref, stamps, r, err, sizeof err);
        if (data == NULL && err[0] == '\0') {
            return NULL; /* git failed: r->message says why */
        }
    } else {
        data = yaml_json_load_file_timestamps(path, stamps, err, sizeof err);
    }
    if (data == NULL || !(json_is_object(data) || json_is_null(data))) {
        snprintf(r->message, sizeof r->message, "Could not parse data in %.900s as a dict: %.900s", path,
                 data == NULL ? err : "the document is not a mapping");
        json_decref(data);
        return NULL;
    }
    return data;
}

int sal_config_merge(json_t *base, json_t *overlay, char *err, size_t errlen)
{
    const char *key;
    json_t *value;
    json_object_foreach(overlay, key, value)
    {
        json_t *old = json_object_get(base, key);
        if (old != NULL && json_is_object(old) && json_is_object(value)) {
            if (sal_config_merge(old, value, err, errlen) != 0) {
                return -1;
            }
        } else if (old != NULL && json_is_object(old) != json_is_object(value)) {
            snprintf(err, errlen, "Cannot merge %s: a dict and a non-dict", key);
            return -1;
        } else {
            json_object_set(base, key, value);
        }
    }
    return 0;
}

static void append_file(sal_config_result *r, const char *name)
{
    size_t used = strlen(r->files);
    snprintf(r->files + used, sizeof r->files - used, "%s%s", used ? "," : "", name);
}

/* Read the files names[0..3) (NULL: skipped) and deep-merge them, the
 * YAML timestamps into stamps; NULL with r->message. */
static json_t *read_and_merge(const sal_config *c, const char *const names[3], const char *ref,
                              json_t *stamps, sal_config_result *r)
{
    json_t *config = json_object();
    for (size_t i = 0; i < 3 && config != NULL; i++) {
        if (names[i] == NULL) {
            continue;
        }
        json_t *data = read_file(c->dir, names[i], ref, stamps, r);
        if (data == NULL) {
            json_decref(config);
            return NULL;
        }
        append_file(r, names[i]);
        char err[512];
        int rc = json_is_object(data) ? sal_config_merge(config, data, err, sizeof err) : 0;
        json_decref(data);
        if (rc != 0) {
            snprintf(r->message, sizeof r->message, "%s", err);
            json_decref(config);
            return NULL;
        }
    }
    if (config == NULL) {
        snprintf(r->message, sizeof r->message, "out of memory");
    }
    return config;
}

/* Drop metadata and validate with defaults, an unquoted YAML timestamp
 * being a date, not a string, as salobj's PyYAML reads it; -1 with
 * r->message. */
static int validate_config(const sal_config *c, json_t *config, const json_t *stamps, sal_config_result *r)
{
    json_object_del(config, "metadata");
    json_schema_error verr;
    if (json_schema_validate_timestamps(c->schema, config, JSON_SCHEMA_APPLY_DEFAULTS, stamps, &verr) != 0) {
        snprintf(r->message, sizeof r->message,
                 "Configuration failed validation: <ValidationError: \"%s\"> at %s", verr.message,
                 verr.path[0] ? verr.path : "/");
        return -1;
    }
    return 0;
}

static void load_config(const sal_config *c, const char *override, sal_config_result *r)
{
    char file[1024];
    snprintf(file, sizeof file, "%s", override);
    char *colon = strchr(file, ':');
    const char *ref = "";
    if (colon != NULL) {
        *colon = '\0';
        ref = colon + 1;
    }
    if (ref[0] == '-') { /* never an option of git show */
        snprintf(r->message, sizeof r->message,
                 "configurationOverride git ref '%.200s' must not start with '-'", ref);
        return;
    }
    if (file[0] == '/' || strcmp(file, "..") == 0 || strncmp(file, "../", 3) == 0 ||
        strstr(file, "/../") != NULL || (strlen(file) >= 3 && strcmp(file + strlen(file) - 3, "/..") == 0)) {
        snprintf(r->message, sizeof r->message,
                 "configurationOverride filename='%.300s' must name a file of the configuration directory",
                 file);
        return;
    }
    if (file[0] == '_') {
        snprintf(r->message, sizeof r->message, "configurationOverride filename='%s' must not start with '_'",
                 file);
        return;
    }
    char site_file[200];
    snprintf(site_file, sizeof site_file, "_%s.yaml", c->site);
    char site_path[PATH_MAX + 256];
    snprintf(site_path, sizeof site_path, "%s/%s", c->dir, site_file);
    const char *names[3] = {"_init.yaml", exists(site_path) ? site_file : NULL, file[0] ? file : NULL};
    json_t *stamps = json_array();
    json_t *config = stamps != NULL ? read_and_merge(c, names, ref, stamps, r) : NULL;
    if (stamps == NULL) {
        snprintf(r->message, sizeof r->message, "out of memory");
    }
    if (config != NULL && validate_config(c, config, stamps, r) == 0) {
        bool not_git;
        git_version(c->dir, r->version, sizeof r->version, &not_git);
        r->config = config;
        r->ok = true;
    } else {
        json_decref(config);
    }
    json_decref(stamps);
}

static void do_work(uv_work_t *req)
{
    work *w = req->data;
    if (w->is_load) {
        load_config(w->c, w->override, &w->result);
    } else {
        scan_dir(w->c->dir, &w->available);
    }
}

static void free_config(sal_config *c)
{
    json_schema_free(c->schema);
    free(c);
}

static void after_work(uv_work_t *req, int status)
{
    work *w = req->data;
    sal_config *c = w->c;
    c->pending--;
    if (!w->is_load) {
        c->scanning = false;
    }
    if (!c->closed && status == 0) {
        if (w->is_load) {
            w->load_cb(w->arg, &w->result);
        } else {
            w->scan_cb(w->arg, &w->available);
        }
    }
    json_decref(w->result.config);
    free(w);
    if (c->closed && c->pending == 0) {
        free_config(c);
    }
}

static int queue(sal_config *c, work *w)
{
    w->c = c;
    w->req.data = w;
    int rc = uv_queue_work(c->loop, &w->req, do_work, after_work);
    if (rc != 0) {
        free(w);
        return rc;
    }
    c->pending++;
    return 0;
}

int sal_config_load(sal_config *c, const char *override, sal_config_load_cb cb, void *arg)
{
    work *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return -ENOMEM;
    }
    w->is_load = true;
    snprintf(w->override, sizeof w->override, "%s", override ? override : "");
    w->load_cb = cb;
    w->arg = arg;
    return queue(c, w);
}

int sal_config_scan(sal_config *c, sal_config_scan_cb cb, void *arg)
{
    if (c->scanning) {
        return -EBUSY; /* slow git: never more than one scan on the pool */
    }
    work *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return -ENOMEM;
    }
    w->scan_cb = cb;
    w->arg = arg;
    int rc = queue(c, w);
    c->scanning = rc == 0;
    return rc;
}

void sal_config_close(sal_config *c)
{
    if (c == NULL) {
        return;
    }
    c->closed = true;
    if (c->pending == 0) {
        free_config(c);
    }
}
