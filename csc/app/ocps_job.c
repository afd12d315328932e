/* ocps_job.c - see ocps_job.h. */
#include "ocps/ocps_job.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ocps/ocps_words.h"
#include "ocps/sal_sample.h"
#include "ocps/sal_uri.h"
#include "ocps/sal_utf8.h"

/* --- validation --- */

/* What config and data_query may hold besides text: bash's word
 * separators (and CR), taken as spaces */
#define EXECUTE_BLANKS "\t\n\r"

typedef struct field_rule {
    const char *name;
    size_t max;
} field_rule;

static int check_text(const char *name, const char *value, size_t max, const char *blanks, char *err,
                      size_t errlen)
{
    size_t len = strlen(value);
    if (len > max) {
        snprintf(err, errlen, "execute.%s: %zu bytes is longer than the limit of %zu", name, len, max);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 || c == 0x7f) && (blanks == NULL || strchr(blanks, c) == NULL)) {
            snprintf(err, errlen, "execute.%s: control character 0x%02x at byte %zu is not allowed", name, c,
                     i);
            return -1;
        }
    }
    char why[96];
    if (!sal_text_check(value, max, blanks, why, sizeof why)) {
        snprintf(err, errlen, "execute.%s: %s", name, why);
        return -1;
    }
    return 0;
}

static bool is_job_id(const char *s, size_t len)
{
    if (len != ENGINE_JOB_ID_LEN) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

/* Call fn on each trimmed, non-empty comma-separated item. */
static int for_each_item(const char *list, int (*fn)(const char *item, size_t len, void *arg), void *arg)
{
    const char *p = list;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *s = p;
        while (len > 0 && *s == ' ') {
            s++, len--;
        }
        while (len > 0 && s[len - 1] == ' ') {
            len--;
        }
        if (len > 0) {
            int rc = fn(s, len, arg);
            if (rc != 0) {
                return rc;
            }
        }
        p = comma ? comma + 1 : p + strlen(p);
    }
    return 0;
}

typedef struct id_check {
    char *err;
    size_t errlen;
} id_check;

static int check_id(const char *item, size_t len, void *arg)
{
    id_check *c = arg;
    if (!is_job_id(item, len)) {
        snprintf(c->err, c->errlen, "execute.prereq_jobs: '%.*s' is not a job id (32 lower-case hex digits)",
                 (int)(len > 64 ? 64 : len), item);
        return -1;
    }
    return 0;
}

typedef struct glob_check {
    const char *name;
    char *err;
    size_t errlen;
} glob_check;

/* One output pattern: relative, and no component that can match "..". */
static int check_glob(const char *item, size_t len, void *arg)
{
    glob_check *c = arg;
    int shown = (int)(len > 200 ? 200 : len);
    if (item[0] == '/' || (item[0] == '\\' && len > 1 && item[1] == '/')) {
        snprintf(c->err, c->errlen,
                 "%s: '%.*s' is an absolute path; output patterns are relative to the job's directory",
                 c->name, shown, item);
        return -1;
    }
    const char *end = item + len;
    for (const char *p = item; p < end;) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        size_t clen = slash ? (size_t)(slash - p) : (size_t)(end - p);
        char *comp = strndup(p, clen);
        if (comp == NULL) {
            snprintf(c->err, c->errlen, "out of memory");
            return -1;
        }
        /* glob matches a component as fnmatch does, a leading '.' only
         * explicitly: "..", ".*", ".?" and "\\.\\." all reach the parent */
        int reaches_parent = fnmatch(comp, "..", FNM_PERIOD) == 0;
        if (reaches_parent && strcmp(comp, "..") == 0) {
            snprintf(c->err, c->errlen,
                     "%s: '%.*s' has a '..' component; output patterns must stay inside the job's directory",
                     c->name, shown, item);
        } else if (reaches_parent) {
            snprintf(
                c->err, c->errlen,
                "%s: '%.*s' has a component ('%.*s') that matches '..'; output patterns must stay inside "
                "the job's directory",
                c->name, shown, item, (int)(clen > 200 ? 200 : clen), comp);
        }
        free(comp);
        if (reaches_parent) {
            return -1;
        }
        p = slash ? slash + 1 : end;
    }
    return 0;
}

int ocps_output_globs_check(const char *name, const char *list, char *err, size_t errlen)
{
    glob_check c = {name, err, errlen};
    return for_each_item(list, check_glob, &c);
}

int ocps_execute_validate(const ocps_execute *x, char *err, size_t errlen)
{
    const struct {
        const char *name;
        const char *value;
        size_t max;
        const char *blanks; /* control characters taken as spaces (ocps_execute_flatten) */
    } fields[] = {
        {"pipeline", x->pipeline, 1024, NULL},
        {"version", x->version, 256, NULL},
        {"config", x->config, 8192, EXECUTE_BLANKS},
        {"data_query", x->data_query, 16384, EXECUTE_BLANKS},
        {"prereq_jobs", x->prereq_jobs, 4096, NULL},
        {"output_dataset_types", x->output_dataset_types, 2048, NULL},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (check_text(fields[i].name, fields[i].value, fields[i].max, fields[i].blanks, err, errlen) != 0) {
            return -1;
        }
    }
    if (x->pipeline[0] == '\0') {
        snprintf(err, errlen, "execute.pipeline: must not be empty");
        return -1;
    }
    if (x->pipeline[0] == '-') { /* after -p, some parsers would read it as an option */
        snprintf(err, errlen, "execute.pipeline: must not start with '-' (a pipeline file, not an option)");
        return -1;
    }
    id_check c = {err, errlen};
    if (for_each_item(x->prereq_jobs, check_id, &c) != 0) {
        return -1;
    }
    return ocps_output_globs_check("execute.output_dataset_types", x->output_dataset_types, err, errlen);
}

/* s, or a copy in buf (len bytes) with each of EXECUTE_BLANKS a space. */
static const char *flatten(const char *s, char *buf, size_t len)
{
    if (strpbrk(s, EXECUTE_BLANKS) == NULL || strlen(s) >= len) {
        return s;
    }
    size_t o = 0;
    for (size_t i = 0; s[i] != '\0'; i++) {
        /* a backslash before a line break joins the lines (a shell's line
         * continuation, YAML's escaped line break) */
        size_t brk = s[i] == '\\' ? (s[i + 1] == '\n' ? 1 : s[i + 1] == '\r' && s[i + 2] == '\n' ? 2 : 0) : 0;
        if (brk > 0) {
            i += brk;
            continue;
        }
        buf[o++] = strchr(EXECUTE_BLANKS, s[i]) != NULL ? ' ' : s[i];
    }
    buf[o] = '\0';
    return buf;
}

void ocps_execute_flatten(ocps_execute *x, char config_buf[8193], char query_buf[16385])
{
    x->config = flatten(x->config, config_buf, 8193);
    x->data_query = flatten(x->data_query, query_buf, 16385);
}

/* --- growing NULL-terminated string lists --- */

typedef struct strv {
    char **v;
    size_t n;
    size_t cap;
    bool failed;
} strv;

static void strv_add(strv *s, const char *text)
{
    if (s->failed) {
        return;
    }
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **bigger = realloc(s->v, cap * sizeof *bigger);
        if (bigger == NULL) {
            s->failed = true;
            return;
        }
        s->v = bigger;
        s->cap = cap;
    }
    s->v[s->n] = strdup(text);
    if (s->v[s->n] == NULL) {
        s->failed = true;
        return;
    }
    s->v[++s->n] = NULL;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
        free(v[i]);
    }
    free(v);
}

/* --- the job's argv and environment --- */

typedef struct plan_ctx {
    const ocps_config *cfg;
    const ocps_execute *x;
    const char *job_id;
    char output_collection[128];
    char output_run[160];
    ocps_words words;
} plan_ctx;

static const char *placeholder(const plan_ctx *p, const char *name, size_t len)
{
    const struct {
        const char *name;
        const char *value;
    } values[] = {
        {"pipetask", p->cfg->pipetask},
        {"pipeline", p->x->pipeline},
        {"version", p->x->version},
        {"butler", p->cfg->butler},
        {"job_id", p->job_id},
        {"output_collection", p->output_collection},
        {"output_run", p->output_run},
        {"data_query", p->x->data_query},
        {"input_collection", p->cfg->input_collection},
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        if (strlen(values[i].name) == len && strncmp(values[i].name, name, len) == 0) {
            return values[i].value;
        }
    }
    return NULL;
}

/* One template element with its {placeholders} filled. */
static int expand_element(const plan_ctx *p, const char *tmpl, strv *out, char *err, size_t errlen)
{
    size_t cap = strlen(tmpl) + 1;
    for (const char *s = strchr(tmpl, '{'); s != NULL; s = strchr(s + 1, '{')) {
        const char *end = strchr(s, '}');
        const char *v = end ? placeholder(p, s + 1, (size_t)(end - s - 1)) : NULL;
        cap += v ? strlen(v) : 0;
    }
    char *buf = malloc(cap);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *o = buf;
    for (const char *s = tmpl; *s != '\0';) {
        const char *end = *s == '{' ? strchr(s, '}') : NULL;
        const char *v = end ? placeholder(p, s + 1, (size_t)(end - s - 1)) : NULL;
        if (v == NULL) {
            *o++ = *s++;
            continue;
        }
        size_t n = strlen(v);
        memcpy(o, v, n);
        o += n;
        s = end + 1;
    }
    *o = '\0';
    strv_add(out, buf);
    free(buf);
    return 0;
}

static bool option_allowed(const ocps_config *cfg, const char *word)
{
    if (json_array_size(cfg->allowed_options) == 0) {
        return true;
    }
    size_t len = strcspn(word, "=");
    size_t i;
    json_t *item;
    json_array_foreach(cfg->allowed_options, i, item)
    {
        const char *opt = json_string_value(item);
        /* --name or --name=value; a short option also with its value attached (-j8) */
        bool short_attached = strlen(opt) == 2 && opt[1] != '-' && strncmp(opt, word, 2) == 0;
        if ((strlen(opt) == len && strncmp(opt, word, len) == 0) || short_attached) {
            return true;
        }
    }
    return false;
}

static bool is_option(const char *w)
{
    return w[0] == '-' && w[1] != '\0' && !(w[1] >= '0' && w[1] <= '9') && w[1] != '.';
}

static int build_argv(const plan_ctx *p, strv *argv, char *err, size_t errlen)
{
    size_t i;
    json_t *item;
    json_array_foreach(p->cfg->command, i, item)
    {
        const char *t = json_string_value(item);
        if (strcmp(t, "{config_words}") == 0) {
            for (size_t k = 0; k < p->words.n; k++) {
                strv_add(argv, p->words.word[k]);
            }
        } else if (strcmp(t, "{input_option}") == 0) {
            if (p->cfg->input_collection[0] != '\0') {
                strv_add(argv, "-i");
                strv_add(argv, p->cfg->input_collection);
            }
        } else if (expand_element(p, t, argv, err, errlen) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Does the job get the retrieval step (retrieve_command)? Not with
 * executor uws on uws-api-server (its job script retrieves them itself;
 * ocps-engine takes the step as its extension then_argv), nor with the
 * embedded ocps-pipetask when no ocps-butler is known to stand for
 * "butler" (its outputs are in metrics.json all the same). */
static bool retrieves(const ocps_config *cfg)
{
    return json_array_size(cfg->retrieve_command) > 0 &&
           (cfg->executor != OCPS_EXECUTOR_UWS || !cfg->uws_reference) &&
           (!cfg->embedded_pipetask || cfg->embedded_butler[0] != '\0');
}

/* Is the retrieval's program `program` to be the embedded ocps-butler? */
static bool cfg_embedded_butler(const ocps_config *cfg, const char *program)
{
    return cfg->embedded_pipetask && cfg->embedded_butler[0] != '\0' && strcmp(program, "butler") == 0;
}

static int add_dataset_type(const char *item, size_t len, void *arg)
{
    char buf[2100];
    snprintf(buf, sizeof buf, "%.*s", (int)(len < 2048 ? len : 2048), item);
    strv_add(arg, "--dataset-type");
    strv_add(arg, buf);
    return 0;
}

/* The retrieval step's argv: retrieve_command with its placeholders
 * filled, {dataset_type_options} one "--dataset-type GLOB" per glob. */
static int build_then_argv(const plan_ctx *p, const char *glob_list, strv *out, char *err, size_t errlen)
{
    size_t i;
    json_t *item;
    json_array_foreach(p->cfg->retrieve_command, i, item)
    {
        const char *t = json_string_value(item);
        if (strcmp(t, "{dataset_type_options}") == 0) {
            for_each_item(glob_list, add_dataset_type, out);
        } else if (i == 0 && cfg_embedded_butler(p->cfg, t)) {
            strv_add(out, p->cfg->embedded_butler); /* the repository of ocps-pipetask is butler-lite */
        } else if (expand_element(p, t, out, err, errlen) != 0) {
            return -1;
        }
    }
    return 0;
}

static void env_add(strv *env, json_t *environment, const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 2;
    char *kv = malloc(len);
    if (kv == NULL) {
        env->failed = true;
        return;
    }
    snprintf(kv, len, "%s=%s", name, value);
    strv_add(env, kv);
    free(kv);
    json_array_append_new(environment, json_pack("{s:s, s:s}", "name", name, "value", value));
}

/* The first character of the valid UTF-8 text s that the reference's job
 * template cannot carry in a YAML double-quoted scalar (PyYAML refuses
 * the control characters but tab, DEL, C1 controls, U+FFFE and U+FFFF,
 * and folds the line breaks U+0085, U+2028 and U+2029 into a blank), or
 * 0 if there is none. */
static uint32_t yaml_unsafe_char(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        uint32_t c;
        size_t n;
        if (*p < 0x80) {
            c = *p;
            n = 1;
        } else if (*p < 0xE0) {
            c = (uint32_t)(*p & 0x1F) << 6 | (p[1] & 0x3Fu);
            n = 2;
        } else if (*p < 0xF0) {
            c = (uint32_t)(*p & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3Fu);
            n = 3;
        } else {
            c = 0x10000; /* above the BMP: all printable */
            n = 4;
        }
        if ((c < 0x20 && c != '\t') || (c >= 0x7F && c <= 0x9F) || c == 0x2028 || c == 0x2029 ||
            c == 0xFFFE || c == 0xFFFF) {
            return c;
        }
        for (size_t i = 0; i < n && *p != '\0'; i++) {
            p++;
        }
    }
    return 0;
}
/* RUN_OPTIONS as the Python OCPS makes it ("-i <input_collection> " or
 * " ", then execute.config); a config with quotes or backslashes goes as
 * its words joined by one blank: what uws_scripts' unquoted $RUN_OPTIONS
 * gives pipetask after bash's word splitting, for words without blanks. The first word that
 * splitting would not keep whole (it holds a blank, or is empty and
 * would vanish) goes to `split` (cut), "" if none. NULL if out of
 * memory. */
static char *run_options(const plan_ctx *p, char *split, size_t splitlen)
{
    const char *config = p->x->config;
    size_t len = strlen(p->cfg->input_collection) + strlen(config) + 8;
    for (size_t k = 0; k < p->words.n; k++) {
        len += strlen(p->words.word[k]) + 1;
    }
    char *out = malloc(len);
    if (out == NULL) {
        return NULL;
    }
    split[0] = '\0';
    if (strpbrk(config, "'\"\\") == NULL) {
        /* no quoting: the config as it came (byte for byte what the Python
         * OCPS sends), which bash splits into the very words checked */
        if (p->cfg->input_collection[0] != '\0') {
            snprintf(out, len, "-i %s %s", p->cfg->input_collection, config);
        } else {
            snprintf(out, len, " %s", config);
        }
        return out;
    }
    size_t n = 0;
    if (p->cfg->input_collection[0] != '\0') {
        n = (size_t)snprintf(out, len, "-i %s ", p->cfg->input_collection);
    } else {
        n = (size_t)snprintf(out, len, " ");
    }
    for (size_t k = 0; k < p->words.n; k++) {
        const char *w = p->words.word[k];
        if (split[0] == '\0' && (w[0] == '\0' || strpbrk(w, " \t\n") != NULL)) {
            size_t wlen = strlen(w);
            int keep =
                (int)(wlen < splitlen - 3 ? wlen : sal_utf8_cut(w, splitlen - 3)); /* whole characters */
            snprintf(split, splitlen, "'%.*s'", keep, w);
        }
        n += (size_t)snprintf(out + n, len - n, "%s%s", k > 0 ? " " : "", w);
    }
    return out;
}

static void build_env(const plan_ctx *p, strv *env, json_t *environment, char *split, size_t splitlen)
{
    const ocps_config *cfg = p->cfg;
    const ocps_execute *x = p->x;
    char *options = run_options(p, split, splitlen);
    if (options == NULL) {
        env->failed = true;
        return;
    }
    env_add(env, environment, "JOB_ID", p->job_id);
    env_add(env, environment, "PIPELINE_URL", x->pipeline);
    env_add(env, environment, "BUTLER_REPO", cfg->butler);
    env_add(env, environment, "RUN_OPTIONS", options);
    env_add(env, environment, "OUTPUT_GLOB",
            x->output_dataset_types[0] ? x->output_dataset_types : cfg->output_glob);
    env_add(env, environment, "DATA_QUERY", x->data_query);
    env_add(env, environment, "OUTPUT_COLLECTION", p->output_collection);
    if (x->version[0] != '\0') {
        env_add(env, environment, "IMAGE_TAG", x->version);
        env_add(env, environment, "EUPS_TAG", x->version);
    }
    free(options);
}

json_t *ocps_job_uws_reference_body(const ocps_job_plan *plan, char *err, size_t errlen)
{
    static const char *const names[] = {"IMAGE_TAG",   "PIPELINE_URL", "BUTLER_REPO",
                                        "RUN_OPTIONS", "OUTPUT_GLOB",  "DATA_QUERY"};
    if (plan->split_word[0] != '\0') {
        snprintf(err, errlen,
                 "execute.config: the word %s cannot be sent to uws-api-server: its job script splits "
                 "RUN_OPTIONS at blanks without quoting, so pipetask would not get it as one word",
                 plan->split_word);
        return NULL;
    }
    json_t *environment = plan->environment;
    json_t *env = json_array();
    for (size_t k = 0; env != NULL && k < sizeof names / sizeof names[0]; k++) {
        const char *value = "";
        size_t i;
        json_t *item;
        json_array_foreach(environment, i, item)
        {
            if (strcmp(json_string_value(json_object_get(item, "name")), names[k]) == 0) {
                value = json_string_value(json_object_get(item, "value"));
            }
        }
        if (strpbrk(value, "\"\\\n\r") != NULL || strstr(value, "{{") != NULL ||
            strstr(value, "{%") != NULL) {
            snprintf(err, errlen,
                     "%s cannot be sent to uws-api-server: its job template does not escape \", \\, line "
                     "breaks, {{ or {%%}",
                     names[k]);
            json_decref(env);
            return NULL;
        }
        uint32_t bad = yaml_unsafe_char(value);
        if (bad != 0) {
            snprintf(err, errlen,
                     "%s cannot be sent to uws-api-server: its job template is read as YAML, which refuses "
                     "or folds the character U+%04X",
                     names[k], (unsigned)bad);
            json_decref(env);
            return NULL;
        }
        json_array_append_new(env, json_pack("{s:s, s:s}", "name", names[k], "value", value));
    }
    json_t *body = env != NULL ? json_pack("{s:s, s:s, s:s, s:o}", "command",
                                           "cd $JOB_SOURCE_DIR && bash bin/pipetask.sh", "url",
                                           "https://github.com/lsst-dm/uws_scripts", "commit_ref", "main",
                                           "environment", env)
                               : NULL;
    if (body == NULL) {
        snprintf(err, errlen, "out of memory");
    }
    return body;
}

static int add_item(const char *item, size_t len, void *arg)
{
    char buf[2100];
    snprintf(buf, sizeof buf, "%.*s", (int)(len < 2048 ? len : 2048), item);
    strv_add(arg, buf);
    return 0;
}

static int check_options(const plan_ctx *p, char *err, size_t errlen)
{
    for (size_t k = 0; k < p->words.n; k++) {
        const char *w = p->words.word[k];
        if (is_option(w) && !option_allowed(p->cfg, w)) {
            snprintf(err, errlen, "execute.config: option %.*s is not allowed", (int)strcspn(w, "="), w);
            return -1;
        }
    }
    return 0;
}

/* N of pipetask's -j N / -jN / --processes N / --processes=N among the
 * config words (the last one wins), or 0. */
static int processes_option(const ocps_words *w)
{
    int n = 0;
    for (size_t k = 0; k < w->n; k++) {
        const char *word = w->word[k];
        const char *value = NULL;
        if (strcmp(word, "-j") == 0 || strcmp(word, "--processes") == 0) {
            value = k + 1 < w->n ? w->word[k + 1] : NULL;
        } else if (strncmp(word, "--processes=", 12) == 0) {
            value = word + 12;
        } else if (strncmp(word, "-j", 2) == 0 && word[2] >= '0' && word[2] <= '9') {
            value = word + 2;
        }
        char *end;
        errno = 0;
        long v = value != NULL ? strtol(value, &end, 10) : 0;
        if (value != NULL && end != value && *end == '\0' && errno == 0 && v > 0 && v <= 4096) {
            n = (int)v;
        }
    }
    return n;
}

int ocps_job_plan_build(const ocps_config *cfg, const ocps_execute *x, const char *job_id,
                        ocps_job_plan *plan, char *err, size_t errlen)
{
    memset(plan, 0, sizeof *plan);
    plan_ctx p = {.cfg = cfg, .x = x, .job_id = job_id};
    ocps_output_collection(job_id, p.output_collection, sizeof p.output_collection);
    snprintf(p.output_run, sizeof p.output_run, "%s/run", p.output_collection);
    char werr[256];
    if (ocps_words_split(x->config, &p.words, werr, sizeof werr) != 0) {
        snprintf(err, errlen, "execute.config: %s", werr);
        return -1;
    }
    strv argv = {0};
    strv env = {0};
    strv globs = {0};
    strv prereqs = {0};
    plan->environment = json_array();
    plan->processes = processes_option(&p.words);
    int rc = check_options(&p, err, errlen);
    if (rc == 0) {
        rc = build_argv(&p, &argv, err, errlen);
    }
    build_env(&p, &env, plan->environment, plan->split_word, sizeof plan->split_word);
    const char *glob_list = x->output_dataset_types[0] ? x->output_dataset_types : cfg->output_glob;
    strv then = {0};
    if (rc == 0 && retrieves(cfg)) {
        /* the globs name dataset types, which the retrieval copies into the
         * job's directory: every file there is a result (as uws-api-server
         * lists its job's output directory), ocps.log too */
        rc = build_then_argv(&p, glob_list, &then, err, errlen);
        strv_add(&globs, "*");
    } else {
        for_each_item(glob_list, add_item, &globs);
    }
    for_each_item(x->prereq_jobs, add_item, &prereqs);
    ocps_words_free(&p.words);
    plan->argv = argv.v;
    plan->env = env.v;
    plan->globs = globs.v;
    plan->then_argv = then.v;
    plan->prereqs = prereqs.v;
    if (rc == 0 && (argv.failed || env.failed || globs.failed || then.failed || prereqs.failed ||
                    plan->environment == NULL)) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    if (rc != 0) {
        ocps_job_plan_free(plan);
    }
    return rc;
}

void ocps_job_plan_free(ocps_job_plan *plan)
{
    strv_free(plan->argv);
    strv_free(plan->env);
    strv_free(plan->globs);
    strv_free(plan->then_argv);
    strv_free(plan->prereqs);
    json_decref(plan->environment);
    memset(plan, 0, sizeof *plan);
}

/* --- results --- */

void ocps_output_collection(const char *job_id, char *out, size_t len)
{
    snprintf(out, len, "u/ocps/%s", job_id);
}

json_t *ocps_job_iso_time(double t)
{
    if (t <= 0) {
        return json_null();
    }
    time_t secs = (time_t)t;
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[64];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)((t - (double)secs) * 1000));
    return json_string(buf);
}

/* s as a JSON string, at most `max` bytes of it (cut at a character
 * boundary, then "..."), bytes that are not UTF-8 replaced by U+FFFD (a file
 * name or a message need not be UTF-8; JSON strings must). NULL s: null. */
static json_t *text_json(const char *s, size_t max)
{
    if (s == NULL) {
        return json_null();
    }
    size_t len = strlen(s);
    char *buf = malloc(3 * len + 4);
    if (buf == NULL) {
        return NULL;
    }
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        size_t n = sal_utf8_char_len(p);
        const char *c = n ? (const char *)p : "\xEF\xBF\xBD";
        size_t clen = n ? n : 3;
        if (o + clen > max) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, c, clen);
        o += clen;
        p += n ? n : 1;
    }
    json_t *j = json_stringn(buf, o);
    free(buf);
    return j;
}

/* Set key to v (stolen); a value that could not be made becomes null. */
static void put(json_t *o, const char *key, json_t *v)
{
    json_object_set_new(o, key, v != NULL ? v : json_null());
}

/* meta[key] (a new reference), null when meta is NULL or lacks it. */
static json_t *meta_get(const json_t *meta, const char *key)
{
    json_t *v = json_object_get(meta, key);
    return v != NULL ? json_incref(v) : json_null();
}

static json_t *file_uris(json_t *paths, size_t keep)
{
    json_t *out = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(paths, i, item)
    {
        if (i >= keep) {
            break;
        }
        char uri[3200];
        sal_file_uri(json_string_value(item) ? json_string_value(item) : "", uri, sizeof uri);
        json_t *entry = json_object();
        put(entry, "id", json_integer((json_int_t)i)); /* the UWS server's result index */
        put(entry, "uri", text_json(uri, sizeof uri));
        json_array_append_new(out, entry);
    }
    return out;
}

/* How much of the result is left out to fit the cap, in this order. */
typedef enum trim {
    TRIM_NONE,       /* everything (outputs listed: `keep`) */
    TRIM_PARAMETERS, /* parameters.command and .environment null */
    TRIM_TEXTS,      /* also ownerId, log and errorSummary.message cut to 128 bytes */
    TRIM_ALL,        /* also ownerId and log null, message "": only bounded fields remain */
} trim;

/* The job's largest resident set (kB) as its runner measured it, or null. */
static json_t *max_rss_json(const engine_job *job)
{
    return job->max_rss_kb >= 0 ? json_integer((json_int_t)job->max_rss_kb) : json_null();
}

/* What Slurm adds to a job run by the Slurm executor: its job id, node
 * list, last state, elapsed seconds and max RSS (kB, measured by the
 * runner on the node; Slurm's accounting is not needed). */
static json_t *slurm_json(const engine_job *job, double elapsed)
{
    return json_pack("{s:s, s:s, s:s, s:f, s:o}", "job_id", job->slurm_job_id, "nodes", job->slurm_nodes,
                     "state", job->slurm_state, "elapsed", elapsed, "max_rss_kb", max_rss_json(job));
}

/* --- what the embedded ocps-pipetask reports (<workdir>/metrics.json) --- */

/* Does dataset type `type` match one of the comma-separated globs? */
static bool type_wanted(const char *type, const char *globs)
{
    if (globs == NULL || *globs == '\0') {
        return true;
    }
    char buf[2100];
    snprintf(buf, sizeof buf, "%s", globs);
    for (char *save = NULL, *g = strtok_r(buf, ",", &save); g != NULL; g = strtok_r(NULL, ",", &save)) {
        while (*g == ' ') {
            g++;
        }
        if (fnmatch(g, type, 0) == 0) {
            return true;
        }
    }
    return false;
}

/* The execute's output_dataset_types (kept in the job's metadata); NULL
 * or "" reports every output. */
static const char *output_globs(const engine_job *job)
{
    return json_string_value(json_object_get(job->meta, "output_dataset_types"));
}

/* Largest metrics.json read (a run of thousands of data units stays well below). */
#define OCPS_METRICS_MAX_BYTES (16 * 1024 * 1024)

bool ocps_job_metrics_path(const engine_job *job, char *path, size_t len)
{
    if (!engine_phase_final(job->phase) || job->workdir[0] == '\0') {
        return false;
    }
    int n = snprintf(path, len, "%s/metrics.json", job->workdir);
    return n > 0 && (size_t)n < len && access(path, F_OK) == 0;
}

json_t *ocps_job_metrics_load(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || st.st_size > OCPS_METRICS_MAX_BYTES) {
        return NULL; /* none, or too big to be a summary */
    }
    json_t *m = json_load_file(path, 0, NULL);
    if (!json_is_object(m)) {
        json_decref(m);
        return NULL;
    }
    return m;
}

/* The outputs of metrics.json whose type the execute's output_dataset_types
 * match (all when it is empty), at most keep:
 * [{"type","dataId","collection","path"}]; *total counts all wanted. */
static json_t *output_list(const engine_job *job, const json_t *metrics, size_t keep, size_t *total)
{
    json_t *out = json_array();
    const char *globs = output_globs(job);
    size_t i;
    json_t *item;
    *total = 0;
    json_array_foreach(json_object_get(metrics, "outputs"), i, item)
    {
        const char *type = json_string_value(json_object_get(item, "dataset_type"));
        if (type == NULL || !type_wanted(type, globs)) {
            continue;
        }
        if ((*total)++ < keep) {
            json_t *e = json_object();
            put(e, "type", text_json(type, 64));
            put(e, "dataId", json_deep_copy(json_object_get(item, "data_id")));
            put(e, "collection", text_json(json_string_value(json_object_get(item, "collection")), 256));
            put(e, "path", text_json(json_string_value(json_object_get(item, "path")), 1024));
            json_array_append_new(out, e);
        }
    }
    return out;
}

/* The compact summary: metrics.json's "summary" when it is small. */
static json_t *metrics_summary(const json_t *metrics, bool full)
{
    json_t *s = json_object_get(metrics, "summary");
    if (!json_is_object(s)) {
        return json_null();
    }
    char *text = json_dumps(s, JSON_COMPACT);
    size_t len = text ? strlen(text) : SIZE_MAX;
    free(text);
    if (full && len <= 4096) {
        return json_deep_copy(s);
    }
    json_t *small = json_object();
    put(small, "status", json_deep_copy(json_object_get(s, "status")));
    put(small, "seconds", json_deep_copy(json_object_get(s, "seconds")));
    put(small, "outputs", json_deep_copy(json_object_get(s, "outputs")));
    return small;
}

static json_t *result_object(const engine_job *job, const json_t *metrics, const char *log_uri, size_t keep,
                             trim level)
{
    char coll[128];
    char run[160];
    char log[3200];
    ocps_output_collection(job->id, coll, sizeof coll);
    snprintf(run, sizeof run, "%s/run", coll);
    if (log_uri != NULL) {
        snprintf(log, sizeof log, "%s", log_uri);
    } else {
        sal_file_uri(job->log_path, log, sizeof log);
    }
    size_t text_max = level >= TRIM_TEXTS ? 128 : SIZE_MAX / 4;
    size_t listed = json_array_size(job->results) < keep ? json_array_size(job->results) : keep;
    double duration = job->started > 0 && job->ended > 0 ? job->ended - job->started : 0;
    json_t *o = json_object();
    json_t *params = json_object();
    json_t *error = json_object();
    if (o == NULL || params == NULL || error == NULL) {
        json_decref(o);
        json_decref(params);
        json_decref(error);
        return NULL;
    }
    put(o, "jobId", json_string(ocps_job_shown_id(job)));
    put(o, "job_id", json_string(ocps_job_shown_id(job)));
    json_t *simulated = json_object_get(job->meta, "simulated_result");
    if (json_is_boolean(simulated)) { /* the Python OCPS's simulated result: {"result": true|false} */
        put(o, "result", json_incref(simulated));
    }
    /* the Python OCPS's run_id: str(the command's private_seqNum) */
    json_t *seq = json_object_get(job->meta, "seq_num");
    char run_id[24];
    snprintf(run_id, sizeof run_id, "%" JSON_INTEGER_FORMAT, json_integer_value(seq));
    put(o, "runId", json_is_integer(seq) ? json_string(run_id) : json_null());
    put(o, "ownerId",
        level >= TRIM_ALL ? json_null()
                          : text_json(json_string_value(json_object_get(job->meta, "identity")), text_max));
    put(o, "phase", json_string(engine_phase_name(job->phase)));
    put(o, "reason", json_string(engine_reason_name(job->reason)));
    put(o, "exit_code", json_integer(job->exit_code));
    put(o, "creationTime", ocps_job_iso_time(job->created));
    put(o, "startTime", ocps_job_iso_time(job->started));
    put(o, "endTime", ocps_job_iso_time(job->ended));
    put(o, "executionDuration", json_real(duration));
    put(o, "max_rss_kb", max_rss_json(job));
    put(o, "output_collection", json_string(coll));
    put(o, "output_run", json_string(run));
    bool full = level == TRIM_NONE;
    put(params, "command", full && job->argv != NULL ? json_incref(job->argv) : json_null());
    put(params, "environment", full ? meta_get(job->meta, "environment") : json_null());
    if (json_object_get(job->meta, "retrieve_command") != NULL) { /* the retrieval step, if any */
        put(params, "retrieve_command", full ? meta_get(job->meta, "retrieve_command") : json_null());
    }
    put(o, "parameters", params);
    put(o, "results", file_uris(job->results, full ? keep : 0));
    put(o, "results_count", json_integer((json_int_t)job->results_total));
    put(o, "results_truncated",
        json_boolean(job->results_truncated || !full || listed < json_array_size(job->results)));
    put(o, "log", level >= TRIM_ALL || log[0] == '\0' ? json_null() : text_json(log, text_max));
    if (metrics != NULL) {
        size_t total = 0;
        put(o, "metrics", level >= TRIM_ALL ? json_null() : metrics_summary(metrics, full));
        put(o, "outputs", output_list(job, metrics, full ? keep : 0, &total));
        put(o, "outputs_count", json_integer((json_int_t)total));
        put(o, "outputs_truncated", json_boolean(json_array_size(json_object_get(o, "outputs")) < total));
    }
    const char *why = json_string_value(json_object_get(metrics, "error"));
    char message[2048];
    if (why != NULL && job->phase != ENGINE_COMPLETED) {
        snprintf(message, sizeof message, "%s%s%s", job->message, job->message[0] ? ": " : "", why);
    } else {
        snprintf(message, sizeof message, "%s", job->message);
    }
    put(error, "message", level >= TRIM_ALL ? json_string("") : text_json(message, text_max));
    put(o, "errorSummary", error);
    if (job->slurm_job_id[0] != '\0') {
        put(o, "slurm", slurm_json(job, duration));
    } else if (job->executor_id[0] != '\0') {
        /* executor uws: the server's own id of the job (uws-job-<id> in
         * Kubernetes, {url}/job/<id>), to find it there */
        put(o, "uws", json_pack("{s:s}", "jobId", job->executor_id));
    }
    put(o, "truncated", json_boolean(!full));
    return o;
}

const char *ocps_job_shown_id(const engine_job *job)
{
    const char *shown = json_string_value(json_object_get(job->meta, "shown_id"));
    return shown != NULL ? shown : job->id;
}

char *ocps_job_result_json(const engine_job *job, const json_t *metrics, const char *log_uri,
                           size_t max_bytes)
{
    size_t n_outputs = json_array_size(json_object_get(metrics, "outputs"));
    size_t keep = json_array_size(job->results) > n_outputs ? json_array_size(job->results) : n_outputs;
    trim level = TRIM_NONE;
    for (;;) {
        json_t *o = result_object(job, metrics, log_uri, keep, level);
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (text == NULL || strlen(text) <= max_bytes || level == TRIM_ALL) {
            return text;
        }
        free(text);
        if (level == TRIM_NONE && keep > 0) {
            keep /= 2; /* halve the listed outputs until it fits */
        } else {
            level++;
        }
    }
}

char *ocps_json_fit_message(json_t *o, const char *message, size_t limit, size_t flags)
{
    size_t keep = message != NULL ? strlen(message) : 0;
    for (;;) {
        if (keep > 0) {
            json_object_set_new(o, "message", json_stringn(message, sal_utf8_cut(message, keep)));
        } else {
            json_object_del(o, "message");
        }
        char *text = json_dumps(o, flags);
        size_t n = text != NULL ? strlen(text) : 0;
        if (text == NULL || n <= limit || keep == 0) {
            return text;
        }
        free(text);
        keep = keep > n - limit ? keep - (n - limit) : 0;
    }
}

char *ocps_job_summary_json(const engine_job *job)
{
    char coll[128];
    ocps_output_collection(job->id, coll, sizeof coll);
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s}", "job_id", ocps_job_shown_id(job), "phase",
                          engine_phase_name(job->phase), "reason", engine_reason_name(job->reason),
                          "exit_code", job->exit_code, "output_collection", coll);
    if (o == NULL) {
        return NULL;
    }
    /* the message (why, for the commander) is cut so that the whole text
     * fits an ack's result (OCPS_ACK_TEXT_MAX): a longer one would be cut
     * by the ack, and its JSON broken */
    char *text = ocps_json_fit_message(o, job->phase != ENGINE_COMPLETED ? job->message : "",
                                       OCPS_ACK_TEXT_MAX, JSON_COMPACT);
    json_decref(o);
    return text;
}
