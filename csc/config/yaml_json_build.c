/*
 * yaml_json_build.c - building jansson values from libyaml's events:
 * scalars (resolved and constructed), anchors and aliases with the node
 * and depth limits, sequences, and mappings with PyYAML's merge keys.
 */
#include "yaml_json__internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- scalars ------------------------------------------------------------- */

static int yj_make_string(yj_ctx *c, const char *s, size_t n, yaml_mark_t mark, yj_node *out)
{
    out->value = json_stringn(s, n);
    if (!out->value) {
        return yj_fail(c, mark, "string is not valid UTF-8");
    }
    return 0;
}

static int yj_make_bool(yj_ctx *c, const char *s, size_t n, yaml_mark_t mark, yj_node *out)
{
    static const char *const yes[] = {"yes", "true", "on", NULL};
    static const char *const no[] = {"no", "false", "off", NULL};
    char low[8];
    size_t i;
    if (n < sizeof low) {
        for (i = 0; i < n; i++) {
            low[i] = yj_lower(s[i]);
        }
        if (yj_is_word(low, n, yes) || yj_is_word(low, n, no)) {
            out->value = json_boolean(yj_is_word(low, n, yes));
            return 0;
        }
    }
    return yj_fail(c, mark, "invalid boolean '%s'", yj_show(s, n).text);
}

static int yj_make_int(yj_ctx *c, const char *s, size_t n, yaml_mark_t mark, yj_node *out)
{
    int64_t v = 0;
    int rc = yj_construct_int(s, n, &v);
    if (rc == -1) {
        return yj_fail(c, mark, "invalid integer '%s'", yj_show(s, n).text);
    }
    if (rc == -2) {
        return yj_fail(c, mark, "integer '%s' does not fit in 64 bits", yj_show(s, n).text);
    }
    if (rc != 0) {
        return yj_oom(c);
    }
    out->value = json_integer((json_int_t)v);
    return out->value ? 0 : yj_oom(c);
}

static int yj_make_float(yj_ctx *c, const char *s, size_t n, yaml_mark_t mark, yj_node *out)
{
    double v = 0.0;
    int rc = yj_construct_float(s, n, &v);
    if (rc == -1) {
        return yj_fail(c, mark, "invalid float '%s'", yj_show(s, n).text);
    }
    if (rc == -2) {
        return yj_fail(c, mark, "float '%s' is not finite: JSON has no infinity or NaN", yj_show(s, n).text);
    }
    if (rc != 0) {
        return yj_oom(c);
    }
    out->value = json_real(v);
    return out->value ? 0 : yj_oom(c);
}

static int yj_make_timestamp(yj_ctx *c, const char *s, size_t n, yaml_mark_t mark, yj_node *out)
{
    yj_stamp t;
    if (!yj_match_timestamp(s, yj_match_len(s, n), 0, &t) || !yj_stamp_valid(&t)) {
        return yj_fail(c, mark, "invalid timestamp '%s'", yj_show(s, n).text);
    }
    if (yj_make_string(c, s, n, mark, out) != 0) {
        return -1;
    }
    return c->stamps == NULL || json_array_append(c->stamps, out->value) == 0 ? 0 : yj_oom(c);
}

static int yj_construct_scalar(yj_ctx *c, enum yj_tag tag, const yaml_event_t *ev, yj_node *out)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    yaml_mark_t mark = ev->start_mark;
    switch (tag) {
    case YJ_T_NULL:
        out->value = json_null();
        return 0;
    case YJ_T_BOOL:
        return yj_make_bool(c, s, n, mark, out);
    case YJ_T_INT:
        return yj_make_int(c, s, n, mark, out);
    case YJ_T_FLOAT:
        return yj_make_float(c, s, n, mark, out);
    case YJ_T_TIMESTAMP:
        return yj_make_timestamp(c, s, n, mark, out);
    case YJ_T_MERGE:
    case YJ_T_VALUE:
        out->kind = tag == YJ_T_MERGE ? YJ_MERGE_KEY : YJ_VALUE_KEY;
        return yj_make_string(c, s, n, mark, out);
    case YJ_T_SEQ:
        return yj_fail(c, mark, "expected a sequence node, but found scalar");
    case YJ_T_MAP:
        return yj_fail(c, mark, "expected a mapping node, but found scalar");
    case YJ_T_NOJSON:
        return yj_fail(c, mark, "the tag '%s' has no JSON equivalent", yj_show_tag(ev->data.scalar.tag).text);
    case YJ_T_UNKNOWN:
        return yj_fail(c, mark, "could not determine a constructor for the tag '%s'",
                       yj_show_tag(ev->data.scalar.tag).text);
    default:
        return yj_make_string(c, s, n, mark, out);
    }
}

/* ---- anchors, counting ------------------------------------------------- */

static int yj_count(yj_ctx *c, size_t nodes, yaml_mark_t mark)
{
    if (nodes > YAML_JSON_MAX_NODES - c->nodes) {
        return yj_fail(c, mark, "more than %u nodes (counting alias expansions)", YAML_JSON_MAX_NODES);
    }
    c->nodes += nodes;
    return 0;
}

/* Reserve the anchor's slot before its node is read (an alias inside it
 * is then recursive). */
static int yj_anchor_open(yj_ctx *c, const yaml_char_t *name, yaml_mark_t mark, size_t *slot)
{
    json_t *index;
    *slot = YJ_NO_SLOT;
    if (!name) {
        return 0;
    }
    if (json_object_get(c->anchor_index, (const char *)name)) {
        return yj_fail(c, mark, "found duplicate anchor '%s'", (const char *)name);
    }
    if (c->nanchors == c->anchor_cap) {
        size_t cap = c->anchor_cap ? 2 * c->anchor_cap : 16;
        yj_anchor *grown = realloc(c->anchors, cap * sizeof *grown);
        if (!grown) {
            return yj_oom(c);
        }
        c->anchors = grown;
        c->anchor_cap = cap;
    }
    index = json_integer((json_int_t)c->nanchors);
    if (!index || json_object_set_new(c->anchor_index, (const char *)name, index) != 0) {
        return yj_fail(c, mark, "invalid anchor name");
    }
    c->anchors[c->nanchors] = (yj_anchor){NULL, 0, 0, YJ_DATA};
    *slot = c->nanchors++;
    return 0;
}

/* The anchored node is complete: keep its value, size and height. */
static void yj_anchor_close(yj_ctx *c, size_t slot, const yj_node *node, size_t nodes_before)
{
    yj_anchor *a;
    if (slot == YJ_NO_SLOT) {
        return;
    }
    a = &c->anchors[slot];
    a->value = json_incref(node->value);
    a->nodes = c->nodes - nodes_before;
    a->height = node->height;
    a->kind = node->kind;
}

/* An alias: the anchored value, counted again toward the node limit. */
static int yj_alias(yj_ctx *c, const yaml_event_t *ev, yj_node *out)
{
    const char *name = (const char *)ev->data.alias.anchor;
    json_t *index = json_object_get(c->anchor_index, name);
    const yj_anchor *a;
    if (!index) {
        return yj_fail(c, ev->start_mark, "found undefined alias '%s'", name);
    }
    a = &c->anchors[json_integer_value(index)];
    if (!a->value) {
        return yj_fail(c, ev->start_mark,
                       "alias '%s' is inside its own anchor: JSON has no recursive structures", name);
    }
    if (yj_count(c, a->nodes, ev->start_mark) != 0) {
        return -1;
    }
    if (c->depth + a->height > YAML_JSON_MAX_DEPTH) {
        return yj_fail(c, ev->start_mark, "nesting deeper than %d levels", YAML_JSON_MAX_DEPTH);
    }
    out->value = json_incref(a->value);
    out->height = a->height;
    out->kind = a->kind;
    return 0;
}

static int yj_scalar(yj_ctx *c, const yaml_event_t *ev, yj_node *out)
{
    size_t before = c->nodes, slot;
    enum yj_tag tag = yj_tag_of(ev->data.scalar.tag);
    if (yj_count(c, 1, ev->start_mark) != 0 ||
        yj_anchor_open(c, ev->data.scalar.anchor, ev->start_mark, &slot)) {
        return -1;
    }
    /* A plain scalar, or any scalar tagged "!", goes through the resolvers
     * (PyYAML's parser; libyaml marks an empty "!" scalar not implicit). */
    if (tag == YJ_T_NONE && (ev->data.scalar.plain_implicit || ev->data.scalar.tag)) {
        tag = yj_resolve((const char *)ev->data.scalar.value, ev->data.scalar.length);
    } else if (tag == YJ_T_NONE) {
        tag = YJ_T_STR;
    }
    if (yj_construct_scalar(c, tag, ev, out) != 0) {
        return -1;
    }
    yj_anchor_close(c, slot, out, before);
    return 0;
}

/* ---- collections ----------------------------------------------------- */

int yj_require_data(yj_ctx *c, const yj_node *node)
{
    if (node->kind == YJ_DATA) {
        return 0;
    }
    return yj_fail(c, node->mark, "could not determine a constructor for the tag 'tag:yaml.org,2002:%s'",
                   node->kind == YJ_MERGE_KEY ? "merge" : "value");
}

/* The explicit tag of a sequence or mapping, if any, must be its own. */
static int yj_check_collection_tag(yj_ctx *c, const yaml_char_t *tag, enum yj_tag want, yaml_mark_t mark)
{
    const char *found = want == YJ_T_SEQ ? "sequence" : "mapping";
    switch (yj_tag_of(tag)) {
    case YJ_T_NONE:
        return 0;
    case YJ_T_SEQ:
    case YJ_T_MAP:
        if (yj_tag_of(tag) == want) {
            return 0;
        }
        return yj_fail(c, mark, "expected a %s node, but found %s", want == YJ_T_SEQ ? "mapping" : "sequence",
                       found);
    case YJ_T_STR:
    case YJ_T_INT:
    case YJ_T_FLOAT:
    case YJ_T_BOOL:
    case YJ_T_NULL:
    case YJ_T_TIMESTAMP:
        return yj_fail(c, mark, "expected a scalar node, but found %s", found);
    case YJ_T_NOJSON:
        return yj_fail(c, mark, "the tag '%s' has no JSON equivalent", yj_show_tag(tag).text);
    default:
        return yj_fail(c, mark, "could not determine a constructor for the tag '%s'", yj_show_tag(tag).text);
    }
}

/* The common start of a collection: tag, count, depth, anchor. */
static int yj_collection_start(yj_ctx *c, const yaml_char_t *tag, const yaml_char_t *anchor, enum yj_tag want,
                               yaml_mark_t mark, size_t *slot)
{
    if (yj_check_collection_tag(c, tag, want, mark) != 0 || yj_count(c, 1, mark) != 0) {
        return -1;
    }
    if (c->depth >= YAML_JSON_MAX_DEPTH) {
        return yj_fail(c, mark, "nesting deeper than %d levels", YAML_JSON_MAX_DEPTH);
    }
    return yj_anchor_open(c, anchor, mark, slot);
}

/* Read the next node of a collection into *child; 1 at the end event. */
static int yj_next_child(yj_ctx *c, yaml_event_type_t end, yj_node *child)
{
    yaml_event_t ev;
    if (yj_next(c, &ev) != 0) {
        return -1;
    }
    if (ev.type == end) {
        yaml_event_delete(&ev);
        return 1;
    }
    return yj_parse_node(c, &ev, child);
}

static int yj_sequence_items(yj_ctx *c, json_t *array, int *height)
{
    for (;;) {
        yj_node child;
        int rc = yj_next_child(c, YAML_SEQUENCE_END_EVENT, &child);
        if (rc != 0) {
            return rc > 0 ? 0 : -1;
        }
        if (yj_require_data(c, &child) != 0) {
            json_decref(child.value);
            return -1;
        }
        if (child.height > *height) {
            *height = child.height;
        }
        if (json_array_append_new(array, child.value) != 0) {
            return yj_oom(c);
        }
    }
}

static int yj_sequence(yj_ctx *c, const yaml_event_t *ev, yj_node *out)
{
    size_t before = c->nodes, slot;
    int height = 0, rc;
    json_t *array;
    if (yj_collection_start(c, ev->data.sequence_start.tag, ev->data.sequence_start.anchor, YJ_T_SEQ,
                            ev->start_mark, &slot) != 0) {
        return -1;
    }
    array = json_array();
    if (!array) {
        return yj_oom(c);
    }
    c->depth++;
    rc = yj_sequence_items(c, array, &height);
    c->depth--;
    if (rc != 0) {
        json_decref(array);
        return -1;
    }
    out->value = array;
    out->height = height + 1;
    yj_anchor_close(c, slot, out, before);
    return 0;
}

/* A mapping being read: its own pairs, and the mappings merged into it in
 * PyYAML's order (later ones override earlier ones). */
typedef struct yj_map {
    json_t *own;
    json_t *merges;
    int height;
} yj_map;

static int yj_add_merge(yj_ctx *c, yj_map *m, const yj_node *value)
{
    size_t i, n;
    if (json_is_object(value->value)) {
        /* Its pairs become this mapping's: one level less. */
        if (value->height - 1 > m->height) {
            m->height = value->height - 1;
        }
        return json_array_append(m->merges, value->value) != 0 ? yj_oom(c) : 0;
    }
    if (!json_is_array(value->value)) {
        return yj_fail(c, value->mark,
                       "expected a mapping or list of mappings for merging, but found scalar");
    }
    n = json_array_size(value->value);
    for (i = 0; i < n; i++) {
        json_t *item = json_array_get(value->value, i);
        if (!json_is_object(item)) {
            return yj_fail(c, value->mark, "expected a mapping for merging, but found %s",
                           json_is_array(item) ? "sequence" : "scalar");
        }
    }
    /* The first mapping of the sequence wins: merge it last. */
    for (i = n; i > 0; i--) {
        if (json_array_append(m->merges, json_array_get(value->value, i - 1)) != 0) {
            return yj_oom(c);
        }
    }
    if (value->height - 2 > m->height) {
        m->height = value->height - 2;
    }
    return 0;
}

/* The text of a scalar key as Python's str() prints its value. */
static int yj_key_text(yj_ctx *c, const yj_node *key, char *buf, size_t len, const char **text, size_t *n)
{
    const json_t *v = key->value;
    switch (json_typeof(v)) {
    case JSON_STRING:
        *text = json_string_value(v);
        *n = json_string_length(v);
        return 0;
    case JSON_INTEGER:
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        yj_float_repr(json_real_value(v), buf, len);
        break;
    case JSON_TRUE:
        snprintf(buf, len, "True");
        break;
    case JSON_FALSE:
        snprintf(buf, len, "False");
        break;
    case JSON_NULL:
        snprintf(buf, len, "None");
        break;
    default:
        return yj_fail(c, key->mark, "found unhashable key: a %s cannot be a JSON object key",
                       json_is_array(v) ? "sequence" : "mapping");
    }
    *text = buf;
    *n = strlen(buf);
    return 0;
}

static int yj_add_pair(yj_ctx *c, yj_map *m, const yj_node *key)
{
    char buf[64];
    const char *text = NULL;
    size_t n = 0;
    yj_node value;
    int rc;
    if (yj_key_text(c, key, buf, sizeof buf, &text, &n) != 0) {
        return -1;
    }
    rc = yj_next_child(c, YAML_MAPPING_END_EVENT, &value);
    if (rc != 0) {
        return rc > 0 ? yj_fail(c, key->mark, "mapping key without a value") : -1;
    }
    if (yj_require_data(c, &value) != 0) {
        json_decref(value.value);
        return -1;
    }
    if (value.height > m->height) {
        m->height = value.height;
    }
    return json_object_setn_new(m->own, text, n, value.value) != 0 ? yj_oom(c) : 0;
}

static int yj_add_merge_pair(yj_ctx *c, yj_map *m, const yj_node *key)
{
    yj_node value;
    int rc = yj_next_child(c, YAML_MAPPING_END_EVENT, &value);
    if (rc != 0) {
        return rc > 0 ? yj_fail(c, key->mark, "mapping key without a value") : -1;
    }
    rc = yj_add_merge(c, m, &value);
    json_decref(value.value);
    return rc;
}

static int yj_mapping_pairs(yj_ctx *c, yj_map *m)
{
    for (;;) {
        yj_node key;
        int rc = yj_next_child(c, YAML_MAPPING_END_EVENT, &key);
        if (rc != 0) {
            return rc > 0 ? 0 : -1;
        }
        rc = key.kind == YJ_MERGE_KEY ? yj_add_merge_pair(c, m, &key) : yj_add_pair(c, m, &key);
        json_decref(key.value);
        if (rc != 0) {
            return -1;
        }
    }
}

/* dst.update(src), as Python's dict. */
static int yj_update(json_t *dst, json_t *src)
{
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach(src, key, klen, v)
    {
        if (json_object_setn(dst, key, klen, v) != 0) {
            return -1;
        }
    }
    return 0;
}

/* The mapping's value: merged pairs first, its own pairs override them. */
static json_t *yj_map_finish(yj_ctx *c, yj_map *m)
{
    json_t *result;
    size_t i;
    if (json_array_size(m->merges) == 0) {
        return json_incref(m->own);
    }
    result = json_object();
    if (!result) {
        yj_oom(c);
        return NULL;
    }
    for (i = 0; i < json_array_size(m->merges); i++) {
        if (yj_update(result, json_array_get(m->merges, i)) != 0) {
            break;
        }
    }
    if (i < json_array_size(m->merges) || yj_update(result, m->own) != 0) {
        json_decref(result);
        yj_oom(c);
        return NULL;
    }
    return result;
}

static int yj_mapping(yj_ctx *c, const yaml_event_t *ev, yj_node *out)
{
    size_t before = c->nodes, slot;
    yj_map m = {NULL, NULL, 0};
    int rc = -1;
    if (yj_collection_start(c, ev->data.mapping_start.tag, ev->data.mapping_start.anchor, YJ_T_MAP,
                            ev->start_mark, &slot) != 0) {
        return -1;
    }
    m.own = json_object();
    m.merges = json_array();
    if (!m.own || !m.merges) {
        yj_oom(c);
    } else {
        c->depth++;
        rc = yj_mapping_pairs(c, &m);
        c->depth--;
    }
    if (rc == 0) {
        out->value = yj_map_finish(c, &m);
        out->height = m.height + 1;
        rc = out->value ? 0 : -1;
    }
    json_decref(m.own);
    json_decref(m.merges);
    if (rc == 0) {
        yj_anchor_close(c, slot, out, before);
    }
    return rc;
}

/* Build the node that starts with *ev; takes ownership of the event. */
int yj_parse_node(yj_ctx *c, yaml_event_t *ev, yj_node *out)
{
    int rc;
    memset(out, 0, sizeof *out);
    out->mark = ev->start_mark;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        rc = yj_alias(c, ev, out);
        break;
    case YAML_SCALAR_EVENT:
        rc = yj_scalar(c, ev, out);
        break;
    case YAML_SEQUENCE_START_EVENT:
        rc = yj_sequence(c, ev, out);
        break;
    case YAML_MAPPING_START_EVENT:
        rc = yj_mapping(c, ev, out);
        break;
    default:
        rc = yj_fail(c, ev->start_mark, "unexpected YAML event %d", (int)ev->type);
        break;
    }
    yaml_event_delete(ev);
    if (rc != 0) {
        json_decref(out->value);
        out->value = NULL;
    }
    return rc;
}
