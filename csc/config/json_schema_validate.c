/*
 * json_schema_validate.c - validation of an instance against a compiled
 * schema (json_schema.c), keywords checked in a fixed order so the first
 * error is deterministic; probed branches run quiet; defaults inserted
 * with JSON_SCHEMA_APPLY_DEFAULTS; "format" asserted only with
 * JSON_SCHEMA_CHECK_FORMATS.
 */
#include "json_schema__internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Validation                                                           */

typedef struct vctx {
    const json_schema *s;
    unsigned flags;
    const json_t *stamps; /* YAML timestamps: of no JSON type (NULL: none) */
    json_schema_error *err;
    int quiet;   /* probing a branch: no messages, no defaults */
    int aborted; /* a limit was hit: everything fails, the message stays */
    int depth;
    long steps;
    char path[1024];
    size_t plen;
} vctx;

static int vfail(vctx *v, const char *kw, const char *fmt, ...)
{
    if (v->quiet || v->aborted) {
        return -1;
    }
    va_list ap;
    va_start(ap, fmt);
    js_set_error(v->err, kw, v->path, fmt, ap);
    va_end(ap);
    return -1;
}

/* Stop the whole validation with an error, reported even inside a probe:
 * for a limit reached, where neither "valid" nor "invalid" is the answer
 * (a "not" must not turn it into a success). */
static int vabort(vctx *v, const char *kw, const char *fmt, ...)
{
    if (v->aborted) {
        return -1;
    }
    va_list ap;
    va_start(ap, fmt);
    js_set_error(v->err, kw, v->path, fmt, ap);
    va_end(ap);
    v->aborted = 1;
    return -1;
}

/* 1 if the regex of keyword kw (its text: pattern) matches s[0..n), 0 if
 * not, -1 with the validation aborted if PCRE2 could not finish within
 * its limits (a pattern that backtracks catastrophically). */
static int vmatch(vctx *v, const js_regex *re, const char *kw, const char *pattern, const char *s, size_t n)
{
    char why[160];
    int rc = js_regex_search(re, s, n, why, sizeof why);
    if (rc >= 0) {
        return rc;
    }
    json_t *str = json_stringn(s, n);
    if (str) {
        vabort(v, kw, "%r could not be matched against %S: %s", str, pattern, why);
    } else {
        vabort(v, kw, "regular expression %S could not be matched: %s", pattern, why);
    }
    json_decref(str);
    return -1;
}

/* Append a segment to the instance path (the JSON pointer in errors). */
static size_t vpush(vctx *v, const char *key)
{
    size_t old = v->plen;
    char *p = v->path;
    size_t n = v->plen, cap = sizeof v->path - 1;
    if (n < cap) {
        p[n++] = '/';
    }
    for (const char *k = key; *k && n < cap; k++) {
        if (*k == '~' || *k == '/') {
            if (n + 2 > cap) {
                break;
            }
            p[n++] = '~';
            p[n++] = *k == '~' ? '0' : '1';
        } else {
            p[n++] = *k;
        }
    }
    p[n] = '\0';
    v->plen = n;
    return old;
}

static size_t vpush_index(vctx *v, size_t i)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%zu", i);
    return vpush(v, buf);
}

static void vpop(vctx *v, size_t old)
{
    v->plen = old;
    v->path[old] = '\0';
}

static int validate(vctx *v, json_t *sch, json_t *inst);

static int validate_at(vctx *v, json_t *sch, json_t *inst, const char *key)
{
    size_t old = vpush(v, key);
    int rc = validate(v, sch, inst);
    vpop(v, old);
    return rc;
}

static int validate_at_index(vctx *v, json_t *sch, json_t *inst, size_t i)
{
    size_t old = vpush_index(v, i);
    int rc = validate(v, sch, inst);
    vpop(v, old);
    return rc;
}

/* 1 if inst is valid under sch, probing quietly. */
static int probe(vctx *v, json_t *sch, json_t *inst)
{
    int quiet = v->quiet;
    v->quiet = 1;
    int rc = validate(v, sch, inst);
    v->quiet = quiet;
    return rc == 0;
}

static int type_matches(const char *t, const json_t *inst)
{
    switch (t[0]) {
    case 'n':
        return t[1] == 'u' && t[2] == 'l' ? json_is_null(inst) : json_is_number(inst);
    case 'b':
        return json_is_boolean(inst);
    case 'o':
        return json_is_object(inst);
    case 'a':
        return json_is_array(inst);
    case 's':
        return json_is_string(inst);
    case 'i':
        return json_is_number(inst) && js_is_integral(inst);
    default:
        return 0;
    }
}

/* Is inst one of the YAML timestamps (by identity)? salobj's PyYAML reads
 * them as datetime objects, which are of no JSON type. */
static int is_stamp(const vctx *v, const json_t *inst)
{
    if (v->stamps == NULL || !json_is_string(inst)) {
        return 0;
    }
    for (size_t i = 0; i < json_array_size(v->stamps); i++) {
        if (json_array_get(v->stamps, i) == inst) {
            return 1;
        }
    }
    return 0;
}

/* stamp: inst is a YAML timestamp (is_stamp). */
static int check_type(vctx *v, json_t *type, json_t *inst, int stamp)
{
    if (json_is_string(type) && !stamp && type_matches(json_string_value(type), inst)) {
        return 0;
    }
    dstr names = {0};
    if (json_is_string(type)) {
        js_repr_str(&names, json_string_value(type), json_string_length(type));
    }
    for (size_t i = 0; i < json_array_size(type); i++) {
        const char *t = json_string_value(json_array_get(type, i));
        if (!stamp && type_matches(t, inst)) {
            js_ds_free(&names);
            return 0;
        }
        if (i) {
            js_ds_puts(&names, ", ");
        }
        js_repr_str(&names, t, strlen(t));
    }
    int rc = stamp ? vfail(v, "type",
                           "%s is not of type %s: an unquoted YAML date or time is a date, not a string "
                           "(as for salobj); quote it: '%s'",
                           json_string_value(inst), js_ds_str(&names), json_string_value(inst))
                   : vfail(v, "type", "%r is not of type %s", inst, js_ds_str(&names));
    js_ds_free(&names);
    return rc;
}

/* type, enum and const: the keywords for any instance. */
static int check_generic(vctx *v, json_t *sch, json_t *inst, int stamp)
{
    json_t *k; /* a timestamp (stamp) is equal to no JSON value */
    if ((k = json_object_get(sch, "type")) && check_type(v, k, inst, stamp)) {
        return -1;
    }
    if ((k = json_object_get(sch, "enum"))) {
        size_t i;
        for (i = 0; i < json_array_size(k); i++) {
            if (!stamp && js_value_equal(json_array_get(k, i), inst, 0)) {
                break;
            }
        }
        if (i == json_array_size(k)) {
            return vfail(v, "enum", "%r is not one of %r", inst, k);
        }
    }
    if ((k = json_object_get(sch, "const")) && (stamp || !js_value_equal(k, inst, 0))) {
        return vfail(v, "const", "%r was expected", k);
    }
    return 0;
}

/* multipleOf: exact for integers, with a relative tolerance otherwise
 * (0.3 is a multiple of 0.1). */
static int not_multiple(const json_t *inst, const json_t *m)
{
    if (json_is_integer(inst) && json_is_integer(m)) {
        return json_integer_value(inst) % json_integer_value(m) != 0;
    }
    long double q = js_num_value(inst) / js_num_value(m);
    if (!isfinite((double)q)) {
        return 1;
    }
    long double r = q - roundl(q);
    return fabsl(r) > 1e-9L * (fabsl(q) > 1 ? fabsl(q) : 1);
}

static int check_number(vctx *v, json_t *sch, json_t *inst)
{
    json_t *k;
    long double x = js_num_value(inst);
    if ((k = json_object_get(sch, "multipleOf")) && not_multiple(inst, k)) {
        return vfail(v, "multipleOf", "%r is not a multiple of %r", inst, k);
    }
    if ((k = json_object_get(sch, "maximum")) && x > js_num_value(k)) {
        return vfail(v, "maximum", "%r is greater than the maximum of %r", inst, k);
    }
    if ((k = json_object_get(sch, "exclusiveMaximum")) && x >= js_num_value(k)) {
        return vfail(v, "exclusiveMaximum", "%r is greater than or equal to the maximum of %r", inst, k);
    }
    if ((k = json_object_get(sch, "minimum")) && x < js_num_value(k)) {
        return vfail(v, "minimum", "%r is less than the minimum of %r", inst, k);
    }
    if ((k = json_object_get(sch, "exclusiveMinimum")) && x <= js_num_value(k)) {
        return vfail(v, "exclusiveMinimum", "%r is less than or equal to the minimum of %r", inst, k);
    }
    return 0;
}

static int check_string(vctx *v, const node *n, json_t *inst)
{
    json_t *sch = n->schema, *k;
    size_t len = js_utf8_length(json_string_value(inst), json_string_length(inst));
    if ((k = json_object_get(sch, "maxLength")) && (long double)len > js_num_value(k)) {
        return vfail(v, "maxLength", "%r is too long", inst);
    }
    if ((k = json_object_get(sch, "minLength")) && (long double)len < js_num_value(k)) {
        return vfail(v, "minLength", "%r is too short", inst);
    }
    if (n->pattern) {
        json_t *pattern = json_object_get(sch, "pattern");
        int m = vmatch(v, n->pattern, "pattern", json_string_value(pattern), json_string_value(inst),
                       json_string_length(inst));
        if (m <= 0) {
            return m < 0 ? -1 : vfail(v, "pattern", "%r does not match %r", inst, pattern);
        }
    }
    if ((v->flags & JSON_SCHEMA_CHECK_FORMATS) && (k = json_object_get(sch, "format")) &&
        !js_format_ok(json_string_value(k), inst)) {
        return vfail(v, "format", "%r is not a %r", inst, k);
    }
    return 0;
}

/* items (one schema or a tuple) and additionalItems. */
static int check_items(vctx *v, json_t *sch, json_t *inst)
{
    json_t *items = json_object_get(sch, "items");
    size_t n = json_array_size(inst);
    if (!items) {
        return 0;
    }
    if (!json_is_array(items)) {
        for (size_t i = 0; i < n; i++) {
            if (validate_at_index(v, items, json_array_get(inst, i), i)) {
                return -1;
            }
        }
        return 0;
    }
    size_t ntuple = json_array_size(items);
    for (size_t i = 0; i < n && i < ntuple; i++) {
        if (validate_at_index(v, json_array_get(items, i), json_array_get(inst, i), i)) {
            return -1;
        }
    }
    json_t *add = json_object_get(sch, "additionalItems");
    if (!add || n <= ntuple) {
        return 0;
    }
    if (json_is_false(add)) {
        dstr extra = {0};
        for (size_t i = ntuple; i < n; i++) {
            js_ds_puts(&extra, i > ntuple ? ", " : "");
            js_repr(&extra, json_array_get(inst, i));
        }
        int rc = vfail(v, "additionalItems", "Additional items are not allowed (%s %s unexpected)",
                       js_ds_str(&extra), n - ntuple == 1 ? "was" : "were");
        js_ds_free(&extra);
        return rc;
    }
    for (size_t i = ntuple; i < n; i++) {
        if (validate_at_index(v, add, json_array_get(inst, i), i)) {
            return -1;
        }
    }
    return 0;
}

static int check_array(vctx *v, json_t *sch, json_t *inst)
{
    json_t *k;
    size_t n = json_array_size(inst);
    if (check_items(v, sch, inst)) {
        return -1;
    }
    if ((k = json_object_get(sch, "maxItems")) && (long double)n > js_num_value(k)) {
        return vfail(v, "maxItems", "%r is too long", inst);
    }
    if ((k = json_object_get(sch, "minItems")) && (long double)n < js_num_value(k)) {
        return vfail(v, "minItems", "%r is too short", inst);
    }
    if (json_is_true(json_object_get(sch, "uniqueItems"))) {
        for (size_t i = 0; i < n; i++) {
            for (size_t j = i + 1; j < n; j++) {
                if (js_value_equal(json_array_get(inst, i), json_array_get(inst, j), 0)) {
                    return vfail(v, "uniqueItems", "%r has non-unique elements", inst);
                }
            }
        }
    }
    if ((k = json_object_get(sch, "contains"))) {
        for (size_t i = 0; i < n; i++) {
            if (probe(v, k, json_array_get(inst, i))) {
                return 0;
            }
        }
        return vfail(v, "contains", "%r does not contain items matching the given schema", inst);
    }
    return 0;
}

/* The "default" of a property subschema, looking through $ref. */
static json_t *default_of(const json_schema *s, json_t *sub)
{
    for (int hops = 0; json_is_object(sub) && hops < 16; hops++) {
        json_t *d = json_object_get(sub, "default");
        if (d) {
            return d;
        }
        const node *n = js_lookup(s, sub);
        sub = n ? n->ref_target : NULL;
    }
    return NULL;
}

/* JSON_SCHEMA_APPLY_DEFAULTS: insert a copy of the default of every
 * property missing from the object. */
static int apply_defaults(vctx *v, json_t *props, json_t *inst)
{
    const char *key;
    json_t *sub;
    json_object_foreach(props, key, sub)
    {
        json_t *d;
        if (json_object_getn(inst, key, js_key_len(key)) || !(d = default_of(v->s, sub))) {
            continue;
        }
        if (json_object_setn_new(inst, key, js_key_len(key), json_deep_copy(d)) != 0) {
            return vfail(v, "default", "cannot insert the default of %S", key);
        }
    }
    return 0;
}

/* 1 if a key matches one of the patternProperties, 0 if none, -1 if a
 * match could not finish (validation aborted). */
static int matches_pattern_prop(vctx *v, const node *n, const char *key)
{
    for (size_t i = 0; i < n->npats; i++) {
        int m = vmatch(v, n->pats[i].re, "patternProperties", n->pats[i].key, key, js_key_len(key));
        if (m != 0) {
            return m;
        }
    }
    return 0;
}

/* 1 if additionalProperties applies to key (neither in properties nor
 * matching patternProperties), 0 if not, -1 if validation aborted. */
static int is_additional(vctx *v, const node *n, json_t *props, const char *key)
{
    if (props && json_object_getn(props, key, js_key_len(key))) {
        return 0;
    }
    int m = matches_pattern_prop(v, n, key);
    return m < 0 ? -1 : !m;
}

/* additionalProperties: false, with Python jsonschema's messages. */
static int additional_false(vctx *v, const node *n, json_t *props, json_t *inst)
{
    const char *key;
    json_t *val;
    dstr extra = {0};
    size_t count = 0;
    json_object_foreach(inst, key, val)
    {
        int a = is_additional(v, n, props, key);
        if (a < 0) {
            js_ds_free(&extra);
            return -1;
        }
        if (a) {
            js_ds_puts(&extra, count++ ? ", " : "");
            js_repr_str(&extra, key, strlen(key));
        }
    }
    int rc = 0;
    if (count && n->npats) {
        dstr pats = {0};
        for (size_t i = 0; i < n->npats; i++) {
            js_ds_puts(&pats, i ? ", " : "");
            js_repr_str(&pats, n->pats[i].key, strlen(n->pats[i].key));
        }
        rc = vfail(v, "additionalProperties", "%s %s not match any of the regexes: %s", js_ds_str(&extra),
                   count == 1 ? "does" : "do", js_ds_str(&pats));
        js_ds_free(&pats);
    } else if (count) {
        rc = vfail(v, "additionalProperties", "Additional properties are not allowed (%s %s unexpected)",
                   js_ds_str(&extra), count == 1 ? "was" : "were");
    }
    js_ds_free(&extra);
    return rc;
}

static int check_additional(vctx *v, const node *n, json_t *inst)
{
    json_t *add = json_object_get(n->schema, "additionalProperties");
    json_t *props = json_object_get(n->schema, "properties");
    const char *key;
    json_t *val;
    if (!add || json_is_true(add)) {
        return 0;
    }
    if (json_is_false(add)) {
        return additional_false(v, n, props, inst);
    }
    json_object_foreach(inst, key, val)
    {
        int a = is_additional(v, n, props, key);
        if (a < 0 || (a && validate_at(v, add, val, key))) {
            return -1;
        }
    }
    return 0;
}

/* properties, then patternProperties (a key may match several). */
static int check_properties(vctx *v, const node *n, json_t *inst)
{
    json_t *props = json_object_get(n->schema, "properties");
    const char *key;
    json_t *sub;
    json_object_foreach(props, key, sub)
    {
        json_t *val = json_object_getn(inst, key, js_key_len(key));
        if (val && validate_at(v, sub, val, key)) {
            return -1;
        }
    }
    for (size_t i = 0; i < n->npats; i++) {
        json_t *val;
        json_object_foreach(inst, key, val)
        {
            int m = vmatch(v, n->pats[i].re, "patternProperties", n->pats[i].key, key, js_key_len(key));
            if (m < 0 || (m && validate_at(v, n->pats[i].schema, val, key))) {
                return -1;
            }
        }
    }
    return 0;
}

static int check_dependencies(vctx *v, json_t *deps, json_t *inst)
{
    const char *key;
    json_t *dep;
    json_object_foreach(deps, key, dep)
    {
        if (!json_object_getn(inst, key, js_key_len(key))) {
            continue;
        }
        if (!json_is_array(dep)) {
            if (validate(v, dep, inst)) {
                return -1;
            }
            continue;
        }
        for (size_t i = 0; i < json_array_size(dep); i++) {
            json_t *name = json_array_get(dep, i);
            if (!json_object_getn(inst, json_string_value(name), json_string_length(name))) {
                return vfail(v, "dependencies", "%r is a dependency of %S", name, key);
            }
        }
    }
    return 0;
}

static int check_property_names(vctx *v, json_t *names, json_t *inst)
{
    const char *key;
    json_t *val;
    json_object_foreach(inst, key, val)
    {
        json_t *str = json_stringn(key, js_key_len(key));
        int rc = str ? validate(v, names, str) : vfail(v, "propertyNames", "out of memory");
        json_decref(str);
        if (rc) {
            return -1;
        }
    }
    return 0;
}

/* The object keywords; defaults first, so required sees them, and
 * additionalProperties before required (the first error jsonschema
 * reports for a typo). */
static int check_object(vctx *v, const node *n, json_t *inst)
{
    json_t *sch = n->schema, *k;
    size_t size;
    json_t *props = json_object_get(sch, "properties");
    if (props && (v->flags & JSON_SCHEMA_APPLY_DEFAULTS) && !v->quiet && apply_defaults(v, props, inst)) {
        return -1;
    }
    size = json_object_size(inst);
    if ((k = json_object_get(sch, "maxProperties")) && (long double)size > js_num_value(k)) {
        return vfail(v, "maxProperties", "%r has too many properties", inst);
    }
    if ((k = json_object_get(sch, "minProperties")) && (long double)size < js_num_value(k)) {
        return vfail(v, "minProperties", "%r does not have enough properties", inst);
    }
    if (check_additional(v, n, inst)) {
        return -1;
    }
    k = json_object_get(sch, "required");
    for (size_t i = 0; i < json_array_size(k); i++) {
        json_t *name = json_array_get(k, i);
        if (!json_object_getn(inst, json_string_value(name), json_string_length(name))) {
            return vfail(v, "required", "%r is a required property", name);
        }
    }
    if (check_properties(v, n, inst)) {
        return -1;
    }
    if ((k = json_object_get(sch, "dependencies")) && check_dependencies(v, k, inst)) {
        return -1;
    }
    if ((k = json_object_get(sch, "propertyNames")) && check_property_names(v, k, inst)) {
        return -1;
    }
    return 0;
}

/* Validate the chosen branch again, for real, when defaults apply. */
static int commit_branch(vctx *v, json_t *sch, json_t *inst)
{
    if (v->quiet || !(v->flags & JSON_SCHEMA_APPLY_DEFAULTS)) {
        return 0;
    }
    return validate(v, sch, inst);
}

/* anyOf and oneOf: branches are probed quietly, then the chosen one is
 * validated for real so that its defaults apply. */
static int check_any_one(vctx *v, json_t *sch, json_t *inst)
{
    json_t *k;
    if ((k = json_object_get(sch, "anyOf"))) {
        size_t i;
        for (i = 0; i < json_array_size(k) && !probe(v, json_array_get(k, i), inst); i++) {
        }
        if (i == json_array_size(k)) {
            return vfail(v, "anyOf", "%r is not valid under any of the given schemas", inst);
        }
        if (commit_branch(v, json_array_get(k, i), inst)) {
            return -1;
        }
    }
    if ((k = json_object_get(sch, "oneOf"))) {
        json_t *first = NULL;
        for (size_t i = 0; i < json_array_size(k); i++) {
            json_t *sub = json_array_get(k, i);
            if (!probe(v, sub, inst)) {
                continue;
            }
            if (first) {
                return vfail(v, "oneOf", "%r is valid under each of %r, %r", inst, first, sub);
            }
            first = sub;
        }
        if (!first) {
            return vfail(v, "oneOf", "%r is not valid under any of the given schemas", inst);
        }
        if (commit_branch(v, first, inst)) {
            return -1;
        }
    }
    return 0;
}

/* if/then/else, allOf, anyOf, oneOf, not. */
static int check_applicators(vctx *v, json_t *sch, json_t *inst)
{
    json_t *k;
    if ((k = json_object_get(sch, "if"))) {
        json_t *branch = json_object_get(sch, probe(v, k, inst) ? "then" : "else");
        if (branch && validate(v, branch, inst)) {
            return -1;
        }
    }
    if ((k = json_object_get(sch, "allOf"))) {
        for (size_t i = 0; i < json_array_size(k); i++) {
            if (validate(v, json_array_get(k, i), inst)) {
                return -1;
            }
        }
    }
    if (check_any_one(v, sch, inst)) {
        return -1;
    }
    if ((k = json_object_get(sch, "not")) && probe(v, k, inst)) {
        return vfail(v, "not", "%r should not be valid under %r", inst, k);
    }
    return 0;
}

/* All keywords of a compiled schema object, in the fixed order. */
static int validate_node(vctx *v, const node *n, json_t *inst)
{
    if (n->ref_target) {
        return validate(v, n->ref_target, inst); /* draft 7: siblings ignored */
    }
    int stamp = is_stamp(v, inst);
    if (check_generic(v, n->schema, inst, stamp)) {
        return -1;
    }
    if (json_is_number(inst) && check_number(v, n->schema, inst)) {
        return -1;
    }
    if (json_is_string(inst) && !stamp && check_string(v, n, inst)) {
        return -1;
    }
    if (json_is_array(inst) && check_array(v, n->schema, inst)) {
        return -1;
    }
    if (json_is_object(inst) && check_object(v, n, inst)) {
        return -1;
    }
    return check_applicators(v, n->schema, inst);
}

/* Validate inst under sch (a boolean or a compiled object), within the
 * depth and step limits. */
static int validate(vctx *v, json_t *sch, json_t *inst)
{
    if (json_is_true(sch)) {
        return 0;
    }
    if (json_is_false(sch)) {
        return vfail(v, "false", "False schema does not allow %r", inst);
    }
    const node *n = js_lookup(v->s, sch);
    if (!n) {
        return vfail(v, "$ref", "internal error: schema not compiled");
    }
    if (v->aborted) {
        return -1;
    }
    if (v->depth >= MAX_VALIDATE_DEPTH || ++v->steps > MAX_VALIDATE_STEPS) {
        /* a runaway recursion: final, even inside a probe */
        if (v->depth >= MAX_VALIDATE_DEPTH) {
            return vabort(v, "$ref",
                          "maximum validation depth (%d) exceeded (recursive schema or instance too deep)",
                          MAX_VALIDATE_DEPTH);
        }
        return vabort(v, "$ref", "validation too complex (more than %d steps; recursive schema?)",
                      MAX_VALIDATE_STEPS);
    }
    v->depth++;
    int rc = validate_node(v, n, inst);
    v->depth--;
    return rc;
}

int json_schema_validate(const json_schema *s, json_t *instance, unsigned flags, json_schema_error *err)
{
    return json_schema_validate_timestamps(s, instance, flags, NULL, err);
}

int json_schema_validate_timestamps(const json_schema *s, json_t *instance, unsigned flags,
                                    const json_t *timestamps, json_schema_error *err)
{
    json_schema_error local;
    vctx *v = calloc(1, sizeof *v);
    if (!err) {
        err = &local;
    }
    memset(err, 0, sizeof *err);
    if (!v) {
        js_copy_trunc(err->message, sizeof err->message, "out of memory");
        return -1;
    }
    v->s = s;
    v->flags = flags;
    v->stamps = timestamps;
    v->err = err;
    int rc;
    if (!s || !instance) {
        js_copy_trunc(err->message, sizeof err->message, "no schema or no instance");
        rc = -1;
    } else {
        rc = validate(v, s->root, instance);
        rc = v->aborted ? -1 : rc;
    }
    free(v);
    return rc;
}
