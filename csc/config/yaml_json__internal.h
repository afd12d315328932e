/*
 * yaml_json__internal.h - what the files of the YAML loader share (not a
 * public header: yaml_json.h is). See yaml_json.c for the layout.
 */
#ifndef YAML_JSON__INTERNAL_H
#define YAML_JSON__INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <yaml.h>

#include "ocps/yaml_json.h"

#define YJ_TAG_PREFIX "tag:yaml.org,2002:"
#define YJ_DIGITS "0123456789"
#define YJ_DIGITS_U "0123456789_"
#define YJ_NO_SLOT SIZE_MAX

/* A node's tag: unresolved, one SafeConstructor knows, or neither. */
enum yj_tag {
    YJ_T_NONE,
    YJ_T_STR,
    YJ_T_INT,
    YJ_T_FLOAT,
    YJ_T_BOOL,
    YJ_T_NULL,
    YJ_T_TIMESTAMP,
    YJ_T_MERGE,
    YJ_T_VALUE,
    YJ_T_SEQ,
    YJ_T_MAP,
    YJ_T_NOJSON,
    YJ_T_UNKNOWN
};

/* What a node may be used as: data anywhere, or only a mapping key (PyYAML
 * has no constructor for the merge << and value = tags). */
enum yj_kind { YJ_DATA, YJ_MERGE_KEY, YJ_VALUE_KEY };

typedef struct yj_node {
    json_t *value; /* owned reference */
    enum yj_kind kind;
    int height; /* collections nested inside, itself included */
    yaml_mark_t mark;
} yj_node;

typedef struct yj_anchor {
    json_t *value; /* NULL while the anchored node is being read */
    size_t nodes;
    int height;
    enum yj_kind kind;
} yj_anchor;

typedef struct yj_ctx {
    yaml_parser_t parser;
    const char *text;
    size_t len;
    const char *path; /* NULL for text in memory */
    char *err;
    size_t errlen;
    int failed;
    json_t *anchor_index; /* anchor name -> index into anchors */
    yj_anchor *anchors;
    size_t nanchors;
    size_t anchor_cap;
    size_t nodes;
    int depth;
    json_t *stamps; /* NULL, or the array collecting timestamp values */
} yj_ctx;

/* A cursor over text[0..n) for the resolver's regular expressions. */
typedef struct yj_cur {
    const char *s;
    size_t n;
    size_t i;
} yj_cur;

typedef struct yj_stamp {
    long year, month, day, hour, minute, second, tz_hour, tz_minute;
    int has_time;
} yj_stamp;

/* A scalar for messages: at most 60 bytes (cut at a character boundary),
 * control characters shown as '?'. */
typedef struct yj_excerpt {
    char text[68];
} yj_excerpt;

/* ---- yaml_json.c: errors and events ---- */

/* Record the first error, at mark ("line L, column C: ..."); returns -1. */
int yj_fail(yj_ctx *c, yaml_mark_t mark, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same without a position. */
int yj_fail_plain(yj_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int yj_oom(yj_ctx *c);
/* The next libyaml event (0), or -1 with the parser's error recorded. */
int yj_next(yj_ctx *c, yaml_event_t *ev);
yj_excerpt yj_show(const char *s, size_t n);
yj_excerpt yj_show_tag(const yaml_char_t *tag);

/* ---- yaml_json_resolve.c: the resolvers ---- */

int yj_at_end(const yj_cur *k);
int yj_eat(yj_cur *k, char ch);
int yj_in(char ch, const char *set);
int yj_eat_in(yj_cur *k, const char *set);
size_t yj_eat_all(yj_cur *k, const char *set);
/* 1 if s[0..n) is one of the NULL-terminated words. */
int yj_is_word(const char *s, size_t n, const char *const *words);
/* The resolver's timestamp regex (strict) or the constructor's, filling *t. */
int yj_match_timestamp(const char *s, size_t n, int strict, yj_stamp *t);
/* The length a Python re '$' sees (a final newline is ignored). */
size_t yj_match_len(const char *s, size_t n);
/* The tag PyYAML's implicit resolvers give the plain scalar s[0..n). */
enum yj_tag yj_resolve(const char *s, size_t n);
/* The tag an explicit tag names (YJ_T_NONE for none or "!"). */
enum yj_tag yj_tag_of(const yaml_char_t *tag);

/* ---- yaml_json_construct.c: SafeConstructor's conversions ---- */

char yj_lower(char ch);
/* construct_yaml_int / construct_yaml_float: 0, -1 (invalid), -2 (too
 * large / not finite), -3 (out of memory). */
int yj_construct_int(const char *s, size_t n, int64_t *out);
int yj_construct_float(const char *s, size_t n, double *out);
int yj_stamp_valid(const yj_stamp *t);
/* Python's repr(float) of d into buf. */
void yj_float_repr(double d, char *buf, size_t len);

/* ---- yaml_json_build.c: nodes ---- */

/* Build the node that starts with *ev; takes ownership of the event. */
int yj_parse_node(yj_ctx *c, yaml_event_t *ev, yj_node *out);
/* -1 (with an error) if the node is a merge or value key used as data. */
int yj_require_data(yj_ctx *c, const yj_node *node);

#endif
