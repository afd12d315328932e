/*
 * json_schema.c - JSON Schema draft-7 validation over jansson (see
 * json_schema.h for the scope); this file compiles schemas.
 *
 * Compilation walks every subschema once, checks keyword types, compiles
 * the regular expressions (PCRE2) and resolves every $ref to the subschema it
 * names; the result is a table from schema object to compiled node.
 * Validation (json_schema_validate.c) then walks schema and instance
 * together, reporting the first error; branches that are only probed
 * (anyOf, oneOf, not, if, contains) run "quiet": no message is built and no
 * default is inserted.
 *
 * Files (json_schema__internal.h declares what they share):
 *   json_schema.c           the node table, $id/$ref URIs, compilation
 *   json_schema_validate.c  validation, defaults
 *   json_schema_regex.c     ECMA-262 regular expressions with PCRE2
 *   json_schema_format.c    the "format" checks
 *   json_schema_values.c    strings, repr for messages, JSON equality
 */
#include "json_schema__internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* The node table                                                       */

static size_t ptr_hash(const void *p)
{
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= 0x9E3779B97F4A7C15ull;
    return (size_t)(x ^ (x >> 29));
}

/* The node table maps a schema object (by address) to its compiled node:
 * open addressing, power-of-two capacity, at most half full. */
node *js_lookup(const json_schema *s, const json_t *schema)
{
    if (!s->tcap) {
        return NULL;
    }
    for (size_t h = ptr_hash(schema) & (s->tcap - 1);; h = (h + 1) & (s->tcap - 1)) {
        size_t k = s->table[h];
        if (k == 0) {
            return NULL;
        }
        if (s->nodes[k - 1]->schema == schema) {
            return s->nodes[k - 1];
        }
    }
}

/* Enter nodes[index], growing (and rehashing) the table first if needed. */
static int table_insert(json_schema *s, size_t index)
{
    if ((s->nnodes + 1) * 2 > s->tcap) {
        size_t cap = s->tcap ? s->tcap * 2 : 64;
        size_t *t = calloc(cap, sizeof *t);
        if (!t) {
            return -1;
        }
        free(s->table);
        s->table = t;
        s->tcap = cap;
        for (size_t i = 0; i < s->nnodes; i++) {
            if (i != index) {
                size_t h = ptr_hash(s->nodes[i]->schema) & (cap - 1);
                while (t[h]) {
                    h = (h + 1) & (cap - 1);
                }
                t[h] = i + 1;
            }
        }
    }
    size_t h = ptr_hash(s->nodes[index]->schema) & (s->tcap - 1);
    while (s->table[h]) {
        h = (h + 1) & (s->tcap - 1);
    }
    s->table[h] = index + 1;
    return 0;
}

/* A new, empty node for a schema object not compiled yet. */
static node *node_add(json_schema *s, json_t *schema)
{
    if (s->nnodes == s->capnodes) {
        size_t cap = s->capnodes ? s->capnodes * 2 : 32;
        node **nodes = realloc(s->nodes, cap * sizeof *nodes);
        if (!nodes) {
            return NULL;
        }
        s->nodes = nodes;
        s->capnodes = cap;
    }
    node *n = calloc(1, sizeof *n);
    if (!n) {
        return NULL;
    }
    n->schema = schema;
    s->nodes[s->nnodes] = n;
    if (table_insert(s, s->nnodes) != 0) {
        free(n);
        return NULL;
    }
    s->nnodes++;
    return n;
}

static void node_free(node *n)
{
    js_regex_free(n->pattern);
    for (size_t i = 0; i < n->npats; i++) {
        js_regex_free(n->pats[i].re);
    }
    free(n->pats);
    free(n->base);
    free(n->where);
    free(n);
}

/* ------------------------------------------------------------------ */
/* URIs for $id and $ref                                                */

static size_t scheme_len(const char *u)
{
    size_t i = 0;
    if (!isalpha((unsigned char)u[0])) {
        return 0;
    }
    while (isalnum((unsigned char)u[i]) || (u[i] && strchr("+-.", u[i]))) {
        i++;
    }
    return u[i] == ':' ? i + 1 : 0;
}

static char *cat3(const char *a, size_t na, const char *b, const char *c)
{
    size_t nb = strlen(b), nc = strlen(c);
    char *r = malloc(na + nb + nc + 1);
    if (r) {
        memcpy(r, a, na);
        memcpy(r + na, b, nb);
        memcpy(r + na + nb, c, nc);
        r[na + nb + nc] = '\0';
    }
    return r;
}

/* RFC 3986 reference resolution (without dot-segment removal). */
static char *uri_resolve(const char *base, const char *ref)
{
    if (scheme_len(ref) || !base[0]) {
        return strdup(ref);
    }
    size_t nobase = strcspn(base, "#");
    if (ref[0] == '#' || ref[0] == '\0') {
        return cat3(base, nobase, ref, "");
    }
    size_t sl = scheme_len(base);
    if (ref[0] == '/' && ref[1] == '/') {
        return cat3(base, sl, ref, "");
    }
    size_t auth_end = sl;
    if (base[sl] == '/' && base[sl + 1] == '/') {
        auth_end = sl + 2 + strcspn(base + sl + 2, "/?#");
    }
    if (ref[0] == '/') {
        return cat3(base, auth_end, ref, "");
    }
    size_t path_end = auth_end + strcspn(base + auth_end, "?#");
    size_t dir = path_end;
    while (dir > auth_end && base[dir - 1] != '/') {
        dir--;
    }
    if (dir == auth_end && auth_end > sl) {
        return cat3(base, auth_end, "/", ref);
    }
    return cat3(base, dir, ref, "");
}

/* Drop an empty trailing fragment ("x#" is "x"). */
static void strip_empty_fragment(char *u)
{
    size_t n = strlen(u);
    if (n && u[n - 1] == '#') {
        u[n - 1] = '\0';
    }
}

/* $id URIs seen while compiling (the registry lives only until every
 * $ref is resolved). */
static int id_register(json_schema *s, const char *uri, json_t *schema)
{
    if (s->nids == s->capids) {
        size_t cap = s->capids ? s->capids * 2 : 8;
        id_entry *ids = realloc(s->ids, cap * sizeof *ids);
        if (!ids) {
            return -1;
        }
        s->ids = ids;
        s->capids = cap;
    }
    char *u = strdup(uri);
    if (!u) {
        return -1;
    }
    strip_empty_fragment(u);
    s->ids[s->nids].uri = u;
    s->ids[s->nids].schema = schema;
    s->nids++;
    return 0;
}

static json_t *id_lookup(const json_schema *s, const char *uri, size_t n)
{
    for (size_t i = 0; i < s->nids; i++) {
        if (strlen(s->ids[i].uri) == n && memcmp(s->ids[i].uri, uri, n) == 0) {
            return s->ids[i].schema;
        }
    }
    return NULL;
}

static void ids_free(json_schema *s)
{
    for (size_t i = 0; i < s->nids; i++) {
        free(s->ids[i].uri);
    }
    free(s->ids);
    s->ids = NULL;
    s->nids = s->capids = 0;
}

/* Decode %HH in place. */
static void percent_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        int h1, h2;
        if (r[0] == '%' && (h1 = js_hexval((unsigned char)r[1])) >= 0 &&
            (h2 = js_hexval((unsigned char)r[2])) >= 0) {
            *w++ = (char)(h1 * 16 + h2);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* Follow a JSON pointer (already percent-decoded) from doc. */
static json_t *pointer_get(json_t *doc, const char *ptr)
{
    json_t *cur = doc;
    const char *p = ptr;
    char tok[512];
    while (cur && *p == '/') {
        p++;
        size_t n = 0;
        for (; *p && *p != '/'; p++) {
            char c = *p;
            if (c == '~' && (p[1] == '0' || p[1] == '1')) {
                c = p[1] == '0' ? '~' : '/';
                p++;
            } else if (c == '~') {
                return NULL;
            }
            if (n + 1 >= sizeof tok) {
                return NULL;
            }
            tok[n++] = c;
        }
        tok[n] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_getn(cur, tok, n);
        } else if (json_is_array(cur)) {
            char *end;
            if (n == 0 || n > 9 || (n > 1 && tok[0] == '0') || !isdigit((unsigned char)tok[0])) {
                return NULL;
            }
            unsigned long idx = strtoul(tok, &end, 10);
            cur = *end ? NULL : json_array_get(cur, idx);
        } else {
            return NULL;
        }
    }
    return *p ? NULL : cur;
}

/* ------------------------------------------------------------------ */
/* Compilation                                                          */

typedef struct cctx {
    json_schema *s;
    json_schema_error *err;
    dstr path; /* JSON pointer of the current schema location */
} cctx;

/* A schema error at the current schema location (keyword "$schema"). */
static int cfail(cctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    js_set_error(c->err, "$schema", js_ds_str(&c->path), fmt, ap);
    va_end(ap);
    return -1;
}

/* Append one JSON-pointer segment to the schema location (~ and /
 * escaped); returns the old length for cpop. */
static size_t cpush(cctx *c, const char *seg)
{
    size_t old = c->path.len;
    js_ds_putc(&c->path, '/');
    for (const char *p = seg; *p; p++) {
        if (*p == '~') {
            js_ds_puts(&c->path, "~0");
        } else if (*p == '/') {
            js_ds_puts(&c->path, "~1");
        } else {
            js_ds_putc(&c->path, *p);
        }
    }
    return old;
}

static size_t cpush_index(cctx *c, size_t i)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%zu", i);
    return cpush(c, buf);
}

static void cpop(cctx *c, size_t old)
{
    if (c->path.p && old <= c->path.len) {
        c->path.len = old;
        c->path.p[old] = '\0';
    }
}

static int compile_schema(cctx *c, json_t *sch, const char *base, int depth);

/* The subschemas under a keyword: one, an array, or an object of them. */
static int compile_sub(cctx *c, json_t *sch, const char *seg, const node *n, int depth)
{
    size_t old = cpush(c, seg);
    int rc = compile_schema(c, sch, n->base, depth + 1);
    cpop(c, old);
    return rc;
}

static int compile_array_of_schemas(cctx *c, json_t *arr, const node *n, int depth, int nonempty)
{
    if (!json_is_array(arr) || (nonempty && json_array_size(arr) == 0)) {
        return cfail(c, nonempty ? "must be a non-empty array of schemas" : "must be an array of schemas");
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        size_t old = cpush_index(c, i);
        int rc = compile_schema(c, json_array_get(arr, i), n->base, depth + 1);
        cpop(c, old);
        if (rc) {
            return -1;
        }
    }
    return 0;
}

static int compile_object_of_schemas(cctx *c, json_t *obj, const node *n, int depth)
{
    const char *key;
    json_t *val;
    if (!json_is_object(obj)) {
        return cfail(c, "must be an object of schemas");
    }
    json_object_foreach(obj, key, val)
    {
        if (compile_sub(c, val, key, n, depth)) {
            return -1;
        }
    }
    return 0;
}

static int check_string_array(cctx *c, json_t *arr)
{
    if (!json_is_array(arr)) {
        return cfail(c, "must be an array of strings");
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (!json_is_string(json_array_get(arr, i))) {
            return cfail(c, "must be an array of strings");
        }
    }
    return 0;
}

static int type_known(const char *t)
{
    static const char *const names[] = {"null", "boolean", "object", "array", "number", "string", "integer"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(t, names[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int compile_type(cctx *c, json_t *v)
{
    if (json_is_string(v)) {
        return type_known(json_string_value(v)) ? 0
                                                : cfail(c, "%S is not a valid type", json_string_value(v));
    }
    if (!json_is_array(v)) {
        return cfail(c, "must be a type name or an array of type names");
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *t = json_array_get(v, i);
        if (!json_is_string(t) || !type_known(json_string_value(t))) {
            return cfail(c, "%r is not a valid type", t);
        }
    }
    return 0;
}

/* Compile one pattern (once, for every validation to come); a pattern
 * that is not ECMA-262 is a schema error naming it. */
static int compile_regex(cctx *c, js_regex **re, const char *pat, size_t n)
{
    char why[160];
    *re = js_regex_compile(pat, n, why, sizeof why);
    if (!*re) {
        return cfail(c, "invalid regular expression %S: %s", pat, why);
    }
    return 0;
}

/* patternProperties: each key is an ECMA-262 pattern, compiled here. */
static int compile_pattern_props(cctx *c, node *n, json_t *obj, int depth)
{
    const char *key;
    json_t *val;
    if (compile_object_of_schemas(c, obj, n, depth)) {
        return -1;
    }
    n->pats = calloc(json_object_size(obj) + 1, sizeof *n->pats);
    if (!n->pats) {
        return cfail(c, "out of memory");
    }
    json_object_foreach(obj, key, val)
    {
        size_t old = cpush(c, key);
        int rc = compile_regex(c, &n->pats[n->npats].re, key, js_key_len(key));
        cpop(c, old);
        if (rc) {
            return -1;
        }
        n->pats[n->npats].key = key;
        n->pats[n->npats].schema = val;
        n->npats++;
    }
    return 0;
}

/* dependencies: each value an array of property names or a schema. */
static int compile_dependencies(cctx *c, node *n, json_t *obj, int depth)
{
    const char *key;
    json_t *val;
    if (!json_is_object(obj)) {
        return cfail(c, "must be an object");
    }
    json_object_foreach(obj, key, val)
    {
        size_t old = cpush(c, key);
        int rc = json_is_array(val) ? check_string_array(c, val) : compile_schema(c, val, n->base, depth + 1);
        cpop(c, old);
        if (rc) {
            return -1;
        }
    }
    return 0;
}

static int is_nonneg_int(const json_t *v)
{
    return json_is_number(v) && js_is_integral(v) && js_num_value(v) >= 0;
}

/* Check one keyword of node n (the location path already names it). */
static int compile_keyword(cctx *c, node *n, const char *kw, json_t *v, int depth)
{
    static const char *const single[] = {
        "additionalItems", "contains", "additionalProperties", "propertyNames", "if", "then", "else", "not"};
    static const char *const counts[] = {"maxLength", "minLength",     "maxItems",
                                         "minItems",  "maxProperties", "minProperties"};
    static const char *const limits[] = {"maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum"};
    static const char *const strings[] = {"$schema", "$id", "$comment", "title", "description", "format"};
    for (size_t i = 0; i < sizeof single / sizeof single[0]; i++) {
        if (strcmp(kw, single[i]) == 0) {
            return compile_schema(c, v, n->base, depth + 1);
        }
    }
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        if (strcmp(kw, counts[i]) == 0) {
            return is_nonneg_int(v) ? 0 : cfail(c, "%r is not a non-negative integer", v);
        }
    }
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        if (strcmp(kw, limits[i]) == 0) {
            return json_is_number(v) ? 0 : cfail(c, "%r is not of type 'number'", v);
        }
    }
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        if (strcmp(kw, strings[i]) == 0) {
            return json_is_string(v) ? 0 : cfail(c, "%r is not of type 'string'", v);
        }
    }
    if (strcmp(kw, "$ref") == 0) {
        if (!json_is_string(v)) {
            return cfail(c, "%r is not of type 'string'", v);
        }
        n->ref = json_string_value(v);
        return 0;
    }
    if (strcmp(kw, "type") == 0) {
        return compile_type(c, v);
    }
    if (strcmp(kw, "enum") == 0) {
        return json_is_array(v) ? 0 : cfail(c, "%r is not of type 'array'", v);
    }
    if (strcmp(kw, "multipleOf") == 0) {
        return json_is_number(v) && js_num_value(v) > 0 ? 0
                                                        : cfail(c, "%r is not a number greater than 0", v);
    }
    if (strcmp(kw, "pattern") == 0) {
        if (!json_is_string(v)) {
            return cfail(c, "%r is not of type 'string'", v);
        }
        return compile_regex(c, &n->pattern, json_string_value(v), json_string_length(v));
    }
    if (strcmp(kw, "items") == 0) {
        return json_is_array(v) ? compile_array_of_schemas(c, v, n, depth, 0)
                                : compile_schema(c, v, n->base, depth + 1);
    }
    if (strcmp(kw, "required") == 0) {
        return check_string_array(c, v);
    }
    if (strcmp(kw, "properties") == 0 || strcmp(kw, "definitions") == 0) {
        return compile_object_of_schemas(c, v, n, depth);
    }
    if (strcmp(kw, "patternProperties") == 0) {
        return compile_pattern_props(c, n, v, depth);
    }
    if (strcmp(kw, "dependencies") == 0) {
        return compile_dependencies(c, n, v, depth);
    }
    if (strcmp(kw, "allOf") == 0 || strcmp(kw, "anyOf") == 0 || strcmp(kw, "oneOf") == 0) {
        return compile_array_of_schemas(c, v, n, depth, 1);
    }
    return 0; /* const, default, examples, unknown keywords */
}

/* Compile one subschema (a boolean needs nothing; an object once, under
 * the base URI its $id sets). */
static int compile_schema(cctx *c, json_t *sch, const char *base, int depth)
{
    if (json_is_boolean(sch)) {
        return 0;
    }
    if (!json_is_object(sch)) {
        return cfail(c, "%r is not of type 'object', 'boolean'", sch);
    }
    if (depth > MAX_SCHEMA_DEPTH) {
        return cfail(c, "schema nested too deeply (more than %d levels)", MAX_SCHEMA_DEPTH);
    }
    if (js_lookup(c->s, sch)) {
        return 0;
    }
    node *n = node_add(c->s, sch);
    if (!n) {
        return cfail(c, "out of memory");
    }
    json_t *id = json_object_get(sch, "$id");
    n->base = json_is_string(id) ? uri_resolve(base, json_string_value(id)) : strdup(base);
    n->where = strdup(js_ds_str(&c->path));
    if (!n->base || !n->where) {
        return cfail(c, "out of memory");
    }
    if (json_is_string(id) && id_register(c->s, n->base, sch) != 0) {
        return cfail(c, "out of memory");
    }
    const char *key;
    json_t *val;
    json_object_foreach(sch, key, val)
    {
        size_t old = cpush(c, key);
        int rc = compile_keyword(c, n, key, val, depth);
        cpop(c, old);
        if (rc) {
            return -1;
        }
    }
    return 0;
}

/* Resolve one $ref to the subschema it names. */
static int resolve_ref(cctx *c, node *n)
{
    char *abs = uri_resolve(n->base, n->ref);
    if (!abs) {
        return cfail(c, "out of memory");
    }
    strip_empty_fragment(abs);
    json_t *target = id_lookup(c->s, abs, strlen(abs));
    char *hash = strchr(abs, '#');
    size_t doclen = hash ? (size_t)(hash - abs) : strlen(abs);
    json_t *resource = target ? NULL : id_lookup(c->s, abs, doclen);
    int rc = 0;
    if (!target && !resource) {
        rc = cfail(c, "remote $ref not supported: %s", abs);
    } else if (!target && hash && hash[1] != '/') {
        rc = cfail(c, "unresolvable $ref: %S", n->ref);
    } else if (!target) {
        percent_decode(hash + 1);
        target = pointer_get(resource, hash + 1);
        if (!target) {
            rc = cfail(c, "unresolvable $ref: %S", n->ref);
        }
    }
    if (rc == 0 && !js_lookup(c->s, target)) {
        abs[doclen] = '\0';
        rc = compile_schema(c, target, abs, 0);
    }
    if (rc == 0) {
        n->ref_target = target;
    }
    free(abs);
    return rc;
}

static int resolve_refs(cctx *c)
{
    /* resolving may compile more nodes; they are appended and visited too */
    for (size_t i = 0; i < c->s->nnodes; i++) {
        node *n = c->s->nodes[i];
        if (!n->ref) {
            continue;
        }
        cpop(c, 0);
        js_ds_puts(&c->path, n->where);
        size_t old = cpush(c, "$ref");
        int rc = resolve_ref(c, n);
        cpop(c, old);
        if (rc) {
            return -1;
        }
    }
    return 0;
}

/* A chain of schemas that are only $ref, coming back on itself, can never
 * be evaluated. */
static int check_ref_loops(cctx *c)
{
    for (size_t i = 0; i < c->s->nnodes; i++) {
        const node *n = c->s->nodes[i];
        size_t steps = 0;
        while (n && n->ref_target && steps <= c->s->nnodes) {
            n = js_lookup(c->s, n->ref_target);
            steps++;
        }
        if (steps > c->s->nnodes) {
            cpop(c, 0);
            js_ds_puts(&c->path, c->s->nodes[i]->where);
            return cfail(c, "$ref loop: %S refers back to itself", c->s->nodes[i]->ref);
        }
    }
    return 0;
}

json_schema *json_schema_compile(json_t *schema, json_schema_error *err)
{
    json_schema_error local;
    cctx c = {NULL, err ? err : &local, {0}};
    memset(c.err, 0, sizeof *c.err);
    if (!schema) {
        cfail(&c, "no schema");
        return NULL;
    }
    json_schema *s = calloc(1, sizeof *s);
    if (!s) {
        cfail(&c, "out of memory");
        return NULL;
    }
    c.s = s;
    s->root = json_incref(schema);
    json_t *id = json_is_object(schema) ? json_object_get(schema, "$id") : NULL;
    int rc = id_register(s, json_is_string(id) ? json_string_value(id) : "", schema);
    rc = rc ? cfail(&c, "out of memory") : compile_schema(&c, schema, "", 0);
    if (rc == 0) {
        rc = resolve_refs(&c);
    }
    if (rc == 0) {
        rc = check_ref_loops(&c);
    }
    js_ds_free(&c.path);
    ids_free(s);
    if (rc != 0) {
        json_schema_free(s);
        return NULL;
    }
    memset(c.err, 0, sizeof *c.err);
    return s;
}

void json_schema_free(json_schema *s)
{
    if (!s) {
        return;
    }
    for (size_t i = 0; i < s->nnodes; i++) {
        node_free(s->nodes[i]);
    }
    free(s->nodes);
    free(s->table);
    ids_free(s);
    json_decref(s->root);
    free(s);
}

const char *json_schema_title(const json_schema *s)
{
    if (!s || !json_is_object(s->root)) {
        return NULL;
    }
    return json_string_value(json_object_get(s->root, "title"));
}
