/*
 * fuzz_ocps_execute: libFuzzer target for the execute command's fields
 * (csc/app/ocps_job.c, ocps_words.c), which any SAL user can send.
 *
 * Input: byte 0 picks the configuration (bit 0: the default allowed
 * options or any option; bit 1: an input collection or none); the rest is
 * the six fields pipeline, version, config, data_query, prereq_jobs,
 * output_dataset_types separated by NUL bytes (missing ones are "").
 * As on_execute does, the fields are validated and, when valid, the job's
 * argv and environment are built. The config field is also split into
 * words on its own, whatever validation says, and the words must survive
 * quoting: each word single-quoted and joined by blanks splits back into
 * the same words. Every failure must explain itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ocps/json_schema.h"
#include "ocps/ocps_config.h"
#include "ocps/ocps_job.h"
#include "ocps/ocps_words.h"
#include "ocps/yaml_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ocps_config configs[4];

/* The default configuration of RA (index 101: no instance block), as the
 * CSC reads it: the embedded schema's defaults. */
static void configs_init(void)
{
    char err[512];
    json_t *schema_json = yaml_json_load(ocps_config_schema, strlen(ocps_config_schema), err, sizeof err);
    json_schema_error serr;
    json_schema *schema = schema_json ? json_schema_compile(schema_json, &serr) : NULL;
    json_decref(schema_json);
    json_t *config = json_pack("{s:[]}", "instances");
    if (schema == NULL || json_schema_validate(schema, config, JSON_SCHEMA_APPLY_DEFAULTS, &serr) != 0) {
        abort();
    }
    for (int i = 0; i < 4; i++) {
        if (ocps_config_from_json(101, config, &configs[i], err, sizeof err) != 0) {
            abort();
        }
        if (i & 1) {
            json_decref(configs[i].allowed_options);
            configs[i].allowed_options = json_array(); /* any option */
        }
        if (i & 2) {
            snprintf(configs[i].input_collection, sizeof configs[i].input_collection, "LATISS/defaults");
        }
    }
    json_decref(config);
    json_schema_free(schema);
}

static void explained(int rc, const char *err)
{
    if (rc != 0 && err[0] == '\0') {
        abort();
    }
}

/* Quote w for a POSIX shell: '...' with each ' as '\''. */
static char *quote_into(char *o, const char *w)
{
    *o++ = '\'';
    for (; *w != '\0'; w++) {
        if (*w == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *w;
        }
    }
    *o++ = '\'';
    return o;
}

static void words_round_trip(const char *text)
{
    ocps_words w;
    char err[256] = "";
    int rc = ocps_words_split(text, &w, err, sizeof err);
    explained(rc, err);
    if (rc != 0) {
        return;
    }
    size_t total = 1;
    for (size_t i = 0; i < w.n; i++) {
        total += 4 * strlen(w.word[i]) + 3;
    }
    char *quoted = malloc(total);
    char *o = quoted;
    for (size_t i = 0; i < w.n; i++) {
        o = quote_into(o, w.word[i]);
        *o++ = ' ';
    }
    *o = '\0';
    ocps_words again;
    if (ocps_words_split(quoted, &again, err, sizeof err) != 0 || again.n != w.n) {
        abort();
    }
    for (size_t i = 0; i < w.n; i++) {
        if (strcmp(w.word[i], again.word[i]) != 0) {
            abort();
        }
    }
    ocps_words_free(&again);
    ocps_words_free(&w);
    free(quoted);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    if (configs[0].command == NULL) {
        configs_init();
    }
    const ocps_config *cfg = &configs[data[0] % 4];
    /* The fields, NUL-terminated in a copy of the input. */
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    const char *field[6];
    const char *p = text;
    const char *end = text + size - 1;
    for (int i = 0; i < 6; i++) {
        field[i] = p <= end ? p : "";
        p += p <= end ? strlen(p) + 1 : 0;
    }
    ocps_execute x = {field[0], field[1], field[2], field[3], field[4], field[5]};

    words_round_trip(x.config);
    char err[1024] = "";
    int rc = ocps_execute_validate(&x, err, sizeof err);
    explained(rc, err);
    if (rc == 0) {
        ocps_job_plan plan;
        rc = ocps_job_plan_build(cfg, &x, "0123456789abcdef0123456789abcdef", &plan, err, sizeof err);
        explained(rc, err);
        if (rc == 0) {
            if (plan.argv == NULL || plan.argv[0] == NULL || plan.env == NULL || plan.environment == NULL) {
                abort();
            }
            ocps_job_plan_free(&plan);
        }
    }
    free(text);
    return 0;
}
