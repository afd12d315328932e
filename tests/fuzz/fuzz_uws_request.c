/*
 * fuzz_uws_request: libFuzzer target for ocps-engine's request parser
 * (processing/uws/uws_request.c), which anyone who reaches the HTTP port
 * can feed.
 *
 * Input: byte 0 picks the parser (mod 4): 0 a route under "/api/v1" (bit 2:
 * under ""), 1 a PUT /job body as JSON, 2 the same as a form, 3 the phase
 * filter, the URL unescaping and the PHASE=ABORT form; the rest is the
 * text. Checked beyond the sanitizers: every rejection is a 400 or 404
 * with a message; an accepted submission has a non-empty argv of strings
 * (and then_argv, the extension, absent or the same, only without the
 * shell of `command`), a valid or empty run_id and environment names without '='; unescaping
 * never grows a string nor leaves a NUL in it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ocps/uws_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_submit(int rc, const char *err, uws_submit *s)
{
    if (rc != 0) {
        if (rc != 400 || err[0] == '\0') {
            abort();
        }
        return;
    }
    if (!json_is_array(s->argv) || json_array_size(s->argv) == 0) {
        abort();
    }
    for (size_t i = 0; i < json_array_size(s->argv); i++) {
        if (!json_is_string(json_array_get(s->argv, i))) {
            abort();
        }
    }
    if (s->then_argv != NULL) {
        size_t n = json_array_size(s->then_argv);
        if (s->shell || n == 0 || !json_is_string(json_array_get(s->then_argv, 0)) ||
            json_string_length(json_array_get(s->then_argv, 0)) == 0) {
            abort();
        }
        for (size_t i = 0; i < n; i++) {
            if (!json_is_string(json_array_get(s->then_argv, i))) {
                abort();
            }
        }
    }
    if (s->run_id[0] != '\0' && !uws_run_id_valid(s->run_id)) {
        abort();
    }
    for (size_t i = 0; i < json_array_size(s->environment); i++) {
        const char *name = json_string_value(json_object_get(json_array_get(s->environment, i), "name"));
        const char *value = json_string_value(json_object_get(json_array_get(s->environment, i), "value"));
        if (name == NULL || name[0] == '\0' || strchr(name, '=') != NULL || value == NULL) {
            abort(); /* every value is text by now */
        }
    }
    uws_submit_clear(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    int mode = data[0] & 3;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char *str = malloc(len + 1);
    if (str == NULL) {
        return 0;
    }
    memcpy(str, text, len);
    str[len] = '\0';
    char err[1024] = "";
    if (mode == 0) {
        uws_route route;
        int rc = uws_route_parse((data[0] & 4) ? "" : "/api/v1", str, &route, err, sizeof err);
        if (rc != 0 && ((rc != 400 && rc != 404) || err[0] == '\0')) {
            abort();
        }
        if (rc == 0 && route.kind == UWS_ROUTE_RESULT &&
            (route.index < -999999999 || route.index > 999999999)) {
            abort();
        }
    } else if (mode == 1 || mode == 2) {
        uws_submit s;
        /* a form's own text as its query too: fields missing from the body are looked up there */
        int rc = uws_submit_parse(mode == 1 ? "application/json" : "application/x-www-form-urlencoded", text,
                                  len, mode == 2 ? str : NULL, &s, err, sizeof err);
        check_submit(rc, err, &s);
    } else {
        const char *phase = NULL;
        int rc = uws_phase_filter_parse(str, &phase, err, sizeof err);
        if ((rc != 0 && (rc != 400 || err[0] == '\0')) || (rc == 0 && str[0] != '\0' && phase == NULL)) {
            abort();
        }
        size_t before = strlen(str);
        size_t after = uws_unescape(str);
        if (after > before || strlen(str) != after) {
            abort();
        }
        err[0] = '\0';
        if (uws_phase_action_parse(text, len, err, sizeof err) != 0 && err[0] == '\0') {
            abort();
        }
    }
    free(str);
    return 0;
}
