/*
 * uws_request.c - routes, PUT /job bodies and filters of the uws-api-server
 * API (see uws_request.h). Everything is bounded and checked before
 * anything is returned; a rejected request allocates nothing.
 */
#include "ocps/uws_request.h"
#include "ocps/sal_pytext.h"
#include "ocps/sal_utf8.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const uws_phase_names[9] = {"pending", "queued", "executing", "completed", "error",
                                        "unknown", "held",   "suspended", "aborted"};

static int uws_fail(char *err, size_t errlen, int status, const char *fmt, const char *arg)
{
    snprintf(err, errlen, fmt, arg);
    return status;
}

bool uws_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        size_t n = sal_utf8_char_len(p);
        if (n == 0) {
            return false;
        }
        p += n;
    }
    return true;
}

/* ---- routes ------------------------------------------------------------ */

/* The next path segment of *p (up to '/' or the end) into out; false if
 * it is longer than outlen - 1. */
static bool uws_segment(const char **p, char *out, size_t outlen)
{
    size_t n = strcspn(*p, "/");
    if (n >= outlen) {
        return false;
    }
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return true;
}

/* A result index as Python's int() reads the reference's: an optional
 * sign and decimal digits (a negative one counts from the end). */
static bool uws_parse_index(const char *s, long *out)
{
    const char *d = *s == '-' || *s == '+' ? s + 1 : s;
    if (*d == '\0' || strlen(d) > 9) {
        return false;
    }
    for (const char *c = d; *c != '\0'; c++) {
        if (!isdigit((unsigned char)*c)) {
            return false;
        }
    }
    *out = strtol(s, NULL, 10);
    return true;
}

int uws_route_parse(const char *base_path, const char *path, uws_route *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t blen = strlen(base_path);
    while (blen > 0 && base_path[blen - 1] == '/') {
        blen--;
    }
    if (strncmp(path, base_path, blen) != 0 || strncmp(path + blen, "/job", 4) != 0) {
        return uws_fail(err, errlen, 404, "%s", "Not Found");
    }
    const char *p = path + blen + 4;
    if (*p == '\0' || strcmp(p, "/") == 0) {
        out->kind = UWS_ROUTE_JOBS;
        return 0;
    }
    if (*p != '/') {
        return uws_fail(err, errlen, 404, "%s", "Not Found");
    }
    p++;
    char first[UWS_MAX_ID + 1];
    if (!uws_segment(&p, first, sizeof first) || first[0] == '\0') {
        return uws_fail(err, errlen, 404, "%s", "Not Found");
    }
    if (*p == '\0' || strcmp(p, "/") == 0) {
        out->kind = UWS_ROUTE_JOB;
        memcpy(out->id, first, sizeof out->id);
        return 0;
    }
    p++; /* the '/' */
    char second[UWS_MAX_ID + 1];
    if (!uws_segment(&p, second, sizeof second)) {
        return uws_fail(err, errlen, 404, "%s", "Not Found");
    }
    if (strcmp(first, "result") == 0 && *p == '/') {
        p++;
        char third[16];
        if (second[0] == '\0' || !uws_segment(&p, third, sizeof third) ||
            (*p != '\0' && strcmp(p, "/") != 0)) {
            return uws_fail(err, errlen, 404, "%s", "Not Found");
        }
        out->kind = UWS_ROUTE_RESULT;
        memcpy(out->id, second, sizeof out->id);
        if (third[0] == '\0') {
            return uws_fail(err, errlen, 400, "%s", "Invalid result ID.");
        }
        if (!uws_parse_index(third, &out->index)) {
            return uws_fail(err, errlen, 404, "%s", "Result file not found."); /* int() failed */
        }
        return 0;
    }
    if (*p != '\0' && strcmp(p, "/") != 0) {
        return uws_fail(err, errlen, 404, "%s", "Not Found");
    }
    out->kind = UWS_ROUTE_PROPERTY;
    memcpy(out->id, first, sizeof out->id);
    /* the reference's three, and ours: metrics, log (docs/uws.md) */
    static const char *const properties[] = {"phase", "results", "parameters", "metrics", "log"};
    size_t k = 0;
    while (k < sizeof properties / sizeof properties[0] && strcmp(second, properties[k]) != 0) {
        k++;
    }
    if (k == sizeof properties / sizeof properties[0]) {
        return uws_fail(
            err, errlen, 400, "%s",
            "Invalid job property requested. Supported properties are phase, results, parameters");
    }
    memcpy(out->property, second, strlen(second) + 1); /* one of the names above */
    return 0;
}

/* ---- forms -------------------------------------------------------------- */

static int uws_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode [s, s + n) into out ('+' is a space); -1 if malformed,
 * too long or it decodes to a NUL. */
static int uws_form_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n) {
                return -1;
            }
            int hi = uws_hex((unsigned char)s[i + 1]);
            int lo = uws_hex((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || k + 1 >= outlen) {
            return -1;
        }
        out[k++] = (char)c;
    }
    out[k] = '\0';
    return 0;
}

size_t uws_unescape(char *s)
{
    size_t k = 0;
    for (size_t i = 0; s[i] != '\0'; i++) {
        int hi = s[i] == '%' ? uws_hex((unsigned char)s[i + 1]) : -1;
        int lo = hi >= 0 ? uws_hex((unsigned char)s[i + 2]) : -1;
        if (lo >= 0 && hi * 16 + lo != 0) {
            s[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            s[k++] = s[i];
        }
    }
    s[k] = '\0';
    return k;
}

int uws_form_get(const char *form, size_t len, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    size_t i = 0;
    int fields = 0;
    size_t value = 0, value_end = 0;
    bool found = false;
    while (i < len) {
        if (++fields > UWS_MAX_FORM_FIELDS) {
            return -1;
        }
        const char *amp = memchr(form + i, '&', len - i);
        size_t end = amp != NULL ? (size_t)(amp - form) : len;
        const char *eq = memchr(form + i, '=', end - i);
        size_t key_end = eq != NULL ? (size_t)(eq - form) : end;
        if (key_end - i == nlen && memcmp(form + i, name, nlen) == 0) {
            value = eq != NULL ? key_end + 1 : end; /* the last one counts, as Tornado's get_argument */
            value_end = end;
            found = true;
        }
        i = end + 1;
    }
    if (!found) {
        return 0;
    }
    return uws_form_decode(form + value, value_end - value, out, outlen) == 0 ? 1 : -1;
}

/* ---- PUT /job ----------------------------------------------------------- */

bool uws_run_id_valid(const char *run_id)
{
    size_t n = strlen(run_id);
    if (n == 0 || n > UWS_RUN_ID_MAX || !isalnum((unsigned char)run_id[0])) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)run_id[i];
        if (!(isalnum(c) || c == '-' || c == '.' || c == '_')) {
            return false;
        }
    }
    return true;
}

static const char uws_run_id_message[] =
    "Invalid run_id. Must be 63 characters or less and begin with alphanumeric character and contain only "
    "dashes (-), underscores (_), dots (.), and alphanumerics between.";

void uws_submit_clear(uws_submit *s)
{
    json_decref(s->argv);
    json_decref(s->then_argv);
    json_decref(s->environment);
    free(s->url);
    free(s->commit_ref);
    memset(s, 0, sizeof *s);
}

static bool uws_is_json(const char *content_type)
{
    if (content_type == NULL) {
        return false;
    }
    size_t n = strcspn(content_type, "; \t");
    return (n == 16 && strncasecmp(content_type, "application/json", 16) == 0) ||
           (n == 22 && strncasecmp(content_type, "application/javascript", 22) == 0);
}

/* A string member (or absent): 0 and *out (NULL if absent), 400 if wrong. */
static int uws_opt_string(json_t *obj, const char *key, const char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) > UWS_MAX_STRING) {
        snprintf(err, errlen, "'%s' must be a string of at most %d bytes", key, UWS_MAX_STRING);
        return 400;
    }
    *out = json_string_value(v);
    return 0;
}

static int uws_check_environment(json_t *env, char *err, size_t errlen)
{
    if (!json_is_array(env) || json_array_size(env) > UWS_MAX_ARGS) {
        snprintf(err, errlen, "'environment' must be a list of at most %d {\"name\", \"value\"} objects",
                 UWS_MAX_ARGS);
        return 400;
    }
    size_t i;
    json_t *item;
    json_array_foreach(env, i, item)
    {
        json_t *name = json_object_get(item, "name");
        json_t *value = json_object_get(item, "value");
        if (!json_is_object(item) || !json_is_string(name) || json_is_object(value) || json_is_array(value)) {
            snprintf(err, errlen,
                     "'environment' item %zu must be {\"name\": string, \"value\": string (or a number, "
                     "a boolean, null)}",
                     i);
            return 400;
        }
        const char *n = json_string_value(name);
        size_t nlen = json_string_length(name);
        if (nlen == 0 || nlen > 1024 || strchr(n, '=') != NULL || strlen(n) != nlen) {
            snprintf(err, errlen, "'environment' item %zu: a name is 1-1024 bytes without '='", i);
            return 400;
        }
        if (json_is_string(value) && json_string_length(value) > UWS_MAX_STRING) {
            snprintf(err, errlen, "'environment' item %zu: the value is longer than %d bytes", i,
                     UWS_MAX_STRING);
            return 400;
        }
    }
    return 0;
}

/* The value of a checked environment item as the reference's job
 * template writes it ("{{ env.value }}": Python's str(), "" when absent). */
static json_t *uws_env_value_text(json_t *value)
{
    char text[64];
    if (value == NULL) {
        return json_string("");
    }
    if (json_is_string(value)) {
        return json_incref(value);
    }
    if (json_is_integer(value)) {
        snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
    } else if (json_is_real(value)) {
        sal_py_float_text(json_real_value(value), text, sizeof text);
    } else {
        snprintf(text, sizeof text, "%s",
                 json_is_true(value)    ? "True"
                 : json_is_false(value) ? "False"
                                        : "None");
    }
    return json_string(text);
}

/* A checked environment as [{"name", "value"}] of strings: NULL if out of
 * memory. */
static json_t *uws_env_as_text(json_t *env)
{
    json_t *out = json_array();
    if (out == NULL) {
        return NULL;
    }
    size_t i;
    json_t *item;
    json_array_foreach(env, i, item)
    {
        json_t *o = json_pack("{sOso}", "name", json_object_get(item, "name"), "value",
                              uws_env_value_text(json_object_get(item, "value")));
        if (o == NULL || json_array_append_new(out, o) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* `argv` or the extension `then_argv` (name): a non-empty list of strings. */
static int uws_check_argv(json_t *argv, const char *name, char *err, size_t errlen)
{
    if (!json_is_array(argv) || json_array_size(argv) == 0 || json_array_size(argv) > UWS_MAX_ARGS) {
        snprintf(err, errlen, "'%s' must be a non-empty list of at most %d strings", name, UWS_MAX_ARGS);
        return 400;
    }
    size_t i;
    json_t *item;
    json_array_foreach(argv, i, item)
    {
        if (!json_is_string(item) || json_string_length(item) > UWS_MAX_STRING ||
            (i == 0 && json_string_length(item) == 0)) {
            snprintf(err, errlen, "'%s' item %zu must be a string of at most %d bytes (%s[0] not empty)",
                     name, i, UWS_MAX_STRING, name);
            return 400;
        }
    }
    return 0;
}

/* The common part of JSON and form submissions, from strings. */
static int uws_submit_fill(uws_submit *out, const char *command, json_t *argv, json_t *then_argv,
                           const char *run_id, const char *url, const char *commit_ref, char *err,
                           size_t errlen)
{
    if ((command == NULL) == (argv == NULL)) {
        snprintf(err, errlen, "%s",
                 command == NULL ? "missing argument: 'command' (or the extension 'argv')"
                                 : "give either 'command' or 'argv', not both");
        uws_submit_clear(out);
        return 400;
    }
    if (run_id != NULL && run_id[0] != '\0' && !uws_run_id_valid(run_id)) {
        snprintf(err, errlen, "%s", uws_run_id_message);
        uws_submit_clear(out);
        return 400;
    }
    if (command != NULL) {
        out->argv = json_pack("[sss]", "/bin/bash", "-c", command);
        out->shell = true;
    } else {
        out->argv = json_deep_copy(argv);
    }
    out->then_argv = then_argv != NULL ? json_deep_copy(then_argv) : NULL;
    snprintf(out->run_id, sizeof out->run_id, "%s", run_id != NULL ? run_id : "");
    out->url = url != NULL && url[0] != '\0' ? strdup(url) : NULL;
    out->commit_ref = commit_ref != NULL && commit_ref[0] != '\0' ? strdup(commit_ref) : NULL;
    if (out->environment == NULL) {
        out->environment = json_array();
    }
    if (out->argv == NULL || out->environment == NULL || (then_argv != NULL && out->then_argv == NULL) ||
        (url != NULL && url[0] != '\0' && out->url == NULL) ||
        (commit_ref != NULL && commit_ref[0] != '\0' && out->commit_ref == NULL)) {
        uws_submit_clear(out);
        snprintf(err, errlen, "out of memory");
        return 400;
    }
    return 0;
}

static int uws_replicas_ok(json_t *v)
{
    return v == NULL || json_is_null(v) || (json_is_integer(v) && json_integer_value(v) == 1);
}

static int uws_submit_json(const char *body, size_t len, uws_submit *out, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "malformed JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return 400;
    }
    int rc = 400;
    const char *command = NULL, *run_id = NULL, *url = NULL, *commit_ref = NULL;
    json_t *argv = json_object_get(root, "argv");
    json_t *then_argv = json_object_get(root, "then_argv");
    json_t *env = json_object_get(root, "environment");
    if (!json_is_object(root)) {
        snprintf(err, errlen, "the body must be a JSON object");
    } else if ((rc = uws_opt_string(root, "command", &command, err, errlen)) != 0 ||
               (rc = uws_opt_string(root, "run_id", &run_id, err, errlen)) != 0 ||
               (rc = uws_opt_string(root, "url", &url, err, errlen)) != 0 ||
               (rc = uws_opt_string(root, "commit_ref", &commit_ref, err, errlen)) != 0) {
        /* err is set */
    } else if (argv != NULL && (rc = uws_check_argv(argv, "argv", err, errlen)) != 0) {
        /* err is set */
    } else if (then_argv != NULL && argv == NULL) {
        snprintf(err, errlen, "the extension 'then_argv' needs 'argv' (not 'command')");
        rc = 400;
    } else if (then_argv != NULL && (rc = uws_check_argv(then_argv, "then_argv", err, errlen)) != 0) {
        /* err is set */
    } else if (env != NULL && !json_is_null(env) && (rc = uws_check_environment(env, err, errlen)) != 0) {
        /* err is set */
    } else if (!uws_replicas_ok(json_object_get(root, "replicas"))) {
        snprintf(err, errlen, "'replicas' must be 1 (parallel replicas are not supported)");
        rc = 400;
    } else {
        memset(out, 0, sizeof *out);
        out->environment = env != NULL && !json_is_null(env) ? uws_env_as_text(env) : json_array();
        if (out->environment == NULL) {
            snprintf(err, errlen, "out of memory");
            rc = 400;
        } else {
            rc = uws_submit_fill(out, command, argv, then_argv, run_id, url, commit_ref, err, errlen);
        }
    }
    json_decref(root);
    return rc;
}

/* A field of the body's form, else of the query (Tornado's get_argument:
 * the body's arguments come after the query's, the last one counts). */
static int uws_arg_get(const char *body, size_t len, const char *query, const char *name, char *out,
                       size_t outlen)
{
    int got = uws_form_get(body, len, name, out, outlen);
    return got == 0 && query != NULL ? uws_form_get(query, strlen(query), name, out, outlen) : got;
}

static int uws_submit_form(const char *body, size_t len, const char *query, uws_submit *out, char *err,
                           size_t errlen)
{
    static const char *const names[] = {"command", "run_id", "url", "commit_ref", "replicas"};
    char *values[5] = {NULL, NULL, NULL, NULL, NULL};
    int rc = 0;
    for (size_t i = 0; i < 5 && rc == 0; i++) {
        char *v = malloc(UWS_MAX_STRING + 1);
        int got = v != NULL ? uws_arg_get(body, len, query, names[i], v, UWS_MAX_STRING + 1) : -1;
        if (got < 0) {
            snprintf(err, errlen, "malformed form field '%s' (or longer than %d bytes)", names[i],
                     UWS_MAX_STRING);
            rc = 400;
        } else if (got == 1 && !uws_utf8_valid(v)) { /* the job object holds it as a JSON string */
            snprintf(err, errlen, "form field '%s' is not valid UTF-8", names[i]);
            rc = 400;
        }
        if (got == 1) {
            values[i] = v;
        } else {
            free(v);
        }
    }
    char probe[8];
    if (rc == 0 && (uws_arg_get(body, len, query, "environment", probe, sizeof probe) != 0 ||
                    uws_arg_get(body, len, query, "argv", probe, sizeof probe) != 0 ||
                    uws_arg_get(body, len, query, "then_argv", probe, sizeof probe) != 0)) {
        snprintf(err, errlen,
                 "'environment', 'argv' and 'then_argv' need a JSON body (Content-Type: application/json)");
        rc = 400;
    }
    if (rc == 0 && values[4] != NULL && strcmp(values[4], "1") != 0) {
        snprintf(err, errlen, "'replicas' must be 1 (parallel replicas are not supported)");
        rc = 400;
    }
    if (rc == 0 && values[0] == NULL) {
        /* the reference's message; a JSON body sent as a form (curl -d
         * without -H) gets a hint */
        size_t lead = 0;
        while (lead < len &&
               (body[lead] == ' ' || body[lead] == '\t' || body[lead] == '\r' || body[lead] == '\n')) {
            lead++;
        }
        bool json_like = lead < len && (body[lead] == '{' || body[lead] == '[');
        snprintf(err, errlen, "missing argument: 'command'%s",
                 json_like ? " (the body looks like JSON: send it with Content-Type: application/json)" : "");
        rc = 400;
    }
    if (rc == 0 && values[1] != NULL && values[1][0] != '\0' && !uws_run_id_valid(values[1])) {
        snprintf(err, errlen, "%s", uws_run_id_message);
        rc = 400;
    }
    if (rc == 0) {
        memset(out, 0, sizeof *out);
        rc = uws_submit_fill(out, values[0], NULL, NULL, values[1], values[2], values[3], err, errlen);
    }
    for (size_t i = 0; i < 5; i++) {
        free(values[i]);
    }
    return rc;
}

int uws_submit_parse(const char *content_type, const char *body, size_t len, const char *query,
                     uws_submit *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (body == NULL) {
        body = "";
        len = 0;
    }
    return uws_is_json(content_type) ? uws_submit_json(body, len, out, err, errlen)
                                     : uws_submit_form(body, len, query, out, err, errlen);
}

/* ---- filters and actions ------------------------------------------------ */

int uws_phase_filter_parse(const char *value, const char **phase, char *err, size_t errlen)
{
    *phase = NULL;
    if (value == NULL || value[0] == '\0') {
        return 0;
    }
    for (size_t i = 0; i < 9; i++) {
        if (strcmp(value, uws_phase_names[i]) == 0) {
            *phase = uws_phase_names[i];
            return 0;
        }
    }
    snprintf(err, errlen,
             "Valid job categories are: ['pending', 'queued', 'executing', 'completed', 'error', "
             "'unknown', 'held', 'suspended', 'aborted']");
    return 400;
}

int uws_run_id_filter_parse(const char *value, const char **run_id, char *err, size_t errlen)
{
    *run_id = NULL;
    if (value == NULL || value[0] == '\0') {
        return 0; /* as an empty phase filter: none */
    }
    if (!uws_run_id_valid(value)) {
        snprintf(err, errlen, "the run_id filter: %s", uws_run_id_message);
        return 400;
    }
    *run_id = value;
    return 0;
}

int uws_phase_action_parse(const char *body, size_t len, char *err, size_t errlen)
{
    char value[16];
    int got = body != NULL ? uws_form_get(body, len, "PHASE", value, sizeof value) : 0;
    if (got == 1 && strcmp(value, "ABORT") == 0) {
        return 0;
    }
    snprintf(err, errlen, "%s",
             got == 1 && strcmp(value, "RUN") == 0 ? "PHASE=RUN: jobs run as soon as they are created"
                                                   : "the body must be the form PHASE=ABORT");
    return 400;
}
