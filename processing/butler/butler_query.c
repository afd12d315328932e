/*
 * butler_query.c - the Butler `--where` subset: lexer, recursive-descent
 * parser and translation into SQL with bound parameters (butler_query.h).
 */
#include "ocps/butler_query.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- identifiers ---------------------------------------------------- */

typedef enum bq_type { BQ_TYPE_INT, BQ_TYPE_FLOAT, BQ_TYPE_TEXT } bq_type;

typedef struct bq_column {
    const char *name;   /* as written in an expression */
    const char *column; /* dataset table column */
    bq_type type;
} bq_column;

static const bq_column bq_columns[] = {
    {"instrument", "instrument", BQ_TYPE_TEXT},
    {"instrument.name", "instrument", BQ_TYPE_TEXT},
    {"exposure", "exposure", BQ_TYPE_INT},
    {"exposure.id", "exposure", BQ_TYPE_INT},
    {"detector", "detector", BQ_TYPE_INT},
    {"detector.id", "detector", BQ_TYPE_INT},
    {"day_obs", "day_obs", BQ_TYPE_INT},
    {"exposure.day_obs", "day_obs", BQ_TYPE_INT},
    {"seq_num", "seq_num", BQ_TYPE_INT},
    {"exposure.seq_num", "seq_num", BQ_TYPE_INT},
    {"physical_filter", "physical_filter", BQ_TYPE_TEXT},
    {"exposure.physical_filter", "physical_filter", BQ_TYPE_TEXT},
    {"exposure.observation_type", "observation_type", BQ_TYPE_TEXT},
    {"exposure.exposure_time", "exposure_time", BQ_TYPE_FLOAT},
    {"exposure.obs_id", "obs_id", BQ_TYPE_TEXT},
};

static const bq_column *bq_find_column(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof bq_columns / sizeof bq_columns[0]; i++) {
        if (strlen(bq_columns[i].name) == len && memcmp(bq_columns[i].name, name, len) == 0) {
            return &bq_columns[i];
        }
    }
    return NULL;
}

const char *butler_query_column(const char *identifier)
{
    const bq_column *c = identifier ? bq_find_column(identifier, strlen(identifier)) : NULL;
    return c ? c->column : NULL;
}

/* ---- lexer ----------------------------------------------------------- */

typedef enum bq_tok_kind {
    BQ_EOF,
    BQ_IDENT,
    BQ_INT,
    BQ_FLOAT,
    BQ_STRING,
    BQ_EQ,
    BQ_NE,
    BQ_LT,
    BQ_LE,
    BQ_GT,
    BQ_GE,
    BQ_LPAREN,
    BQ_RPAREN,
    BQ_COMMA,
    BQ_DOTDOT,
    BQ_COLON,
    BQ_MINUS,
    BQ_PLUS,
    BQ_AND,
    BQ_OR,
    BQ_NOT,
    BQ_IN,
    BQ_BAD
} bq_tok_kind;

typedef struct bq_token {
    bq_tok_kind kind;
    size_t pos; /* byte offset in the text */
    size_t len;
} bq_token;

typedef struct bq_parser {
    const char *text;
    size_t textlen;
    size_t cursor;
    bq_token tok;  /* current token */
    bq_token prev; /* the one before it */
    int depth;
    char *err;
    size_t errlen;
} bq_parser;

static bool bq_is_ident_start(int c)
{
    return isalpha(c) || c == '_';
}

static bool bq_is_ident_char(int c)
{
    return isalnum(c) || c == '_';
}

static bool bq_keyword(const char *s, size_t len, const char *kw)
{
    if (strlen(kw) != len) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (toupper((unsigned char)s[i]) != kw[i]) {
            return false;
        }
    }
    return true;
}

static size_t bq_lex_ident(const char *s)
{
    size_t n = 0;
    for (;;) {
        while (bq_is_ident_char((unsigned char)s[n])) {
            n++;
        }
        if (s[n] == '.' && bq_is_ident_start((unsigned char)s[n + 1])) {
            n++;
            continue;
        }
        return n;
    }
}

/* A number as Butler's lexer reads one: digits, then a fraction (a '.'
 * not starting "..", with or without digits: "1." and "1.5"), then an
 * exponent; or a fraction alone (".5"). */
static size_t bq_lex_number(const char *s, bq_tok_kind *kind)
{
    size_t n = 0;
    *kind = BQ_INT;
    while (isdigit((unsigned char)s[n])) {
        n++;
    }
    if (s[n] == '.' && s[n + 1] != '.') {
        *kind = BQ_FLOAT;
        n++;
        while (isdigit((unsigned char)s[n])) {
            n++;
        }
    }
    if (s[n] == 'e' || s[n] == 'E') {
        size_t m = n + 1;
        if (s[m] == '+' || s[m] == '-') {
            m++;
        }
        if (isdigit((unsigned char)s[m])) {
            *kind = BQ_FLOAT;
            while (isdigit((unsigned char)s[m])) {
                m++;
            }
            n = m;
        }
    }
    return n;
}

static bq_tok_kind bq_lex_operator(const char *s, size_t *len)
{
    *len = 2;
    if (s[0] == '!' && s[1] == '=') {
        return BQ_NE;
    }
    if (s[0] == '<' && s[1] == '=') {
        return BQ_LE;
    }
    if (s[0] == '>' && s[1] == '=') {
        return BQ_GE;
    }
    if (s[0] == '.' && s[1] == '.') {
        return BQ_DOTDOT;
    }
    *len = 1;
    switch (s[0]) {
    case '=':
        return BQ_EQ;
    case '<':
        return BQ_LT;
    case '>':
        return BQ_GT;
    case '(':
        return BQ_LPAREN;
    case ')':
        return BQ_RPAREN;
    case ',':
        return BQ_COMMA;
    case ':':
        return BQ_COLON;
    case '-':
        return BQ_MINUS;
    case '+':
        return BQ_PLUS;
    default:
        return BQ_BAD;
    }
}

static bq_token bq_lex(const char *text, size_t *cursor)
{
    const char *s = text + *cursor;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
        s++;
    }
    bq_token t = {BQ_EOF, (size_t)(s - text), 0};
    if (*s == '\0') {
        *cursor = t.pos;
        return t;
    }
    if (bq_is_ident_start((unsigned char)*s)) {
        t.len = bq_lex_ident(s);
        t.kind = BQ_IDENT;
        if (bq_keyword(s, t.len, "AND")) {
            t.kind = BQ_AND;
        } else if (bq_keyword(s, t.len, "OR")) {
            t.kind = BQ_OR;
        } else if (bq_keyword(s, t.len, "NOT")) {
            t.kind = BQ_NOT;
        } else if (bq_keyword(s, t.len, "IN")) {
            t.kind = BQ_IN;
        }
    } else if (isdigit((unsigned char)*s) || (*s == '.' && isdigit((unsigned char)s[1]))) {
        t.len = bq_lex_number(s, &t.kind);
    } else if (*s == '\'' || *s == '"') {
        const char *end = strchr(s + 1, *s);
        t.kind = end ? BQ_STRING : BQ_BAD;
        t.len = end ? (size_t)(end - s) + 1 : strlen(s);
    } else {
        t.kind = bq_lex_operator(s, &t.len);
    }
    *cursor = t.pos + t.len;
    return t;
}

/* ---- errors ------------------------------------------------------------ */

/* The token as errors show it: quoted, at most 32 bytes, unprintable bytes
 * as '?'; "end of expression" at the end. */
static void bq_describe(const bq_parser *p, const bq_token *t, char *out, size_t outlen)
{
    if (t->kind == BQ_EOF) {
        snprintf(out, outlen, "end of expression");
        return;
    }
    char buf[40];
    size_t n = t->len < 32 ? t->len : 32;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p->text[t->pos + i];
        buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    buf[n] = '\0';
    snprintf(out, outlen, "'%s%s'", buf, t->len > 32 ? "..." : "");
}

static int bq_fail_at(bq_parser *p, const bq_token *t, const char *fmt, ...)
{
    if (p->errlen == 0) {
        return -1;
    }
    int n = snprintf(p->err, p->errlen, "column %zu: ", t->pos + 1);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* "column N: expected WHAT after 'PREV', found TOKEN". */
static int bq_expected(bq_parser *p, const char *what)
{
    char found[48];
    char prev[48];
    bq_describe(p, &p->tok, found, sizeof found);
    if (p->prev.len == 0) {
        return bq_fail_at(p, &p->tok, "expected %s, found %s", what, found);
    }
    bq_describe(p, &p->prev, prev, sizeof prev);
    return bq_fail_at(p, &p->tok, "expected %s after %s, found %s", what, prev, found);
}

static int bq_next(bq_parser *p)
{
    p->prev = p->tok;
    p->tok = bq_lex(p->text, &p->cursor);
    if (p->tok.kind == BQ_BAD) {
        const char *c = p->text + p->tok.pos;
        if (*c == '\'' || *c == '"') {
            return bq_fail_at(p, &p->tok, "unterminated string");
        }
        char found[48];
        bq_describe(p, &p->tok, found, sizeof found);
        return bq_fail_at(p, &p->tok, "unexpected %s", found);
    }
    return 0;
}

/* ---- syntax tree ------------------------------------------------------ */

typedef enum bq_operand_kind {
    BQ_OPERAND_COLUMN,
    BQ_OPERAND_INT,
    BQ_OPERAND_FLOAT,
    BQ_OPERAND_TEXT
} bq_operand_kind;

typedef struct bq_operand {
    bq_operand_kind kind;
    const bq_column *column;
    long long i;
    double f;
    char *text;
    size_t pos;
} bq_operand;

typedef struct bq_item {
    bq_operand value; /* a single value, or the range's start */
    bool range;
    long long hi;
    long long step; /* 1 without ":s" */
} bq_item;

typedef enum bq_node_kind { BQ_NODE_OR, BQ_NODE_AND, BQ_NODE_NOT, BQ_NODE_CMP, BQ_NODE_IN } bq_node_kind;

typedef struct bq_node bq_node;
struct bq_node {
    bq_node_kind kind;
    bq_node **children; /* OR, AND (n-ary), NOT (one) */
    size_t nchildren;
    bq_tok_kind op; /* CMP */
    bq_operand lhs, rhs;
    bool negated; /* NOT IN */
    bq_item *items;
    size_t nitems;
};

struct butler_query {
    bq_node *root; /* NULL: empty query */
};

static void bq_node_free(bq_node *n)
{
    if (n == NULL) {
        return;
    }
    for (size_t i = 0; i < n->nchildren; i++) {
        bq_node_free(n->children[i]);
    }
    free(n->children);
    free(n->lhs.text);
    free(n->rhs.text);
    for (size_t i = 0; i < n->nitems; i++) {
        free(n->items[i].value.text);
    }
    free(n->items);
    free(n);
}

void butler_query_free(butler_query *q)
{
    if (q != NULL) {
        bq_node_free(q->root);
        free(q);
    }
}

static bq_node *bq_node_new(bq_parser *p, bq_node_kind kind)
{
    bq_node *n = calloc(1, sizeof *n);
    if (n == NULL) {
        bq_fail_at(p, &p->tok, "out of memory");
        return NULL;
    }
    n->kind = kind;
    return n;
}

static int bq_add_child(bq_parser *p, bq_node *n, bq_node *child)
{
    bq_node **c = realloc(n->children, (n->nchildren + 1) * sizeof *c);
    if (c == NULL) {
        bq_node_free(child);
        return bq_fail_at(p, &p->tok, "out of memory");
    }
    n->children = c;
    n->children[n->nchildren++] = child;
    return 0;
}

/* ---- parser ------------------------------------------------------------ */

static bq_node *bq_parse_or(bq_parser *p);

/* An integer literal (optionally negated) from the current token: read
 * with its sign, so that the most negative one is in range. */
static int bq_parse_int(bq_parser *p, bool negative, long long *out)
{
    char buf[32] = "-";
    size_t at = negative ? 1 : 0;
    bool fits = p->tok.len < sizeof buf - at;
    if (fits) {
        memcpy(buf + at, p->text + p->tok.pos, p->tok.len);
        buf[at + p->tok.len] = '\0';
        errno = 0;
        *out = strtoll(buf, NULL, 10);
    }
    if (!fits || errno == ERANGE) {
        char found[48];
        bq_describe(p, &p->tok, found, sizeof found);
        return bq_fail_at(p, &p->tok, "integer out of range %s", found);
    }
    return 0;
}

static int bq_parse_literal(bq_parser *p, bq_operand *o, bool negative)
{
    o->pos = p->tok.pos;
    if (p->tok.kind == BQ_INT) {
        o->kind = BQ_OPERAND_INT;
        return bq_parse_int(p, negative, &o->i);
    }
    if (p->tok.kind == BQ_FLOAT) {
        /* the token ends where strtod would stop (no copy to bound) */
        o->kind = BQ_OPERAND_FLOAT;
        o->f = strtod(p->text + p->tok.pos, NULL);
        o->f = negative ? -o->f : o->f;
        return 0;
    }
    o->kind = BQ_OPERAND_TEXT;
    o->text = malloc(p->tok.len - 1);
    if (o->text == NULL) {
        return bq_fail_at(p, &p->tok, "out of memory");
    }
    memcpy(o->text, p->text + p->tok.pos + 1, p->tok.len - 2);
    o->text[p->tok.len - 2] = '\0';
    return 0;
}

/* operand := IDENT | STRING | ['-' | '+'] (INT | FLOAT) */
static int bq_parse_operand(bq_parser *p, bq_operand *o, const char *what)
{
    bool negative = p->tok.kind == BQ_MINUS;
    if (negative || p->tok.kind == BQ_PLUS) {
        if (bq_next(p) != 0) {
            return -1;
        }
        if (p->tok.kind != BQ_INT && p->tok.kind != BQ_FLOAT) {
            return bq_expected(p, "a number");
        }
    }
    if (p->tok.kind == BQ_IDENT) {
        o->kind = BQ_OPERAND_COLUMN;
        o->pos = p->tok.pos;
        o->column = bq_find_column(p->text + p->tok.pos, p->tok.len);
        if (o->column == NULL) {
            char found[48];
            bq_describe(p, &p->tok, found, sizeof found);
            return bq_fail_at(p, &p->tok, "unknown identifier %s", found);
        }
        return bq_next(p);
    }
    if (p->tok.kind != BQ_INT && p->tok.kind != BQ_FLOAT && p->tok.kind != BQ_STRING) {
        return bq_expected(p, what);
    }
    if (bq_parse_literal(p, o, negative) != 0) {
        return -1;
    }
    return bq_next(p);
}

static bq_type bq_operand_type(const bq_operand *o)
{
    switch (o->kind) {
    case BQ_OPERAND_COLUMN:
        return o->column->type;
    case BQ_OPERAND_TEXT:
        return BQ_TYPE_TEXT;
    default:
        return BQ_TYPE_INT;
    }
}

/* A string compared with a number is an error naming both sides. */
static int bq_check_types(bq_parser *p, const bq_operand *a, const bq_operand *b)
{
    bool ta = bq_operand_type(a) == BQ_TYPE_TEXT;
    bool tb = bq_operand_type(b) == BQ_TYPE_TEXT;
    if (ta == tb) {
        return 0;
    }
    const bq_operand *col = a->kind == BQ_OPERAND_COLUMN ? a : b;
    const bq_operand *other = col == a ? b : a;
    bq_token t = {BQ_BAD, other->pos, 0};
    if (col->kind != BQ_OPERAND_COLUMN) {
        return bq_fail_at(p, &t, "a string compared with a number");
    }
    return bq_fail_at(p, &t, "%s is a %s, compared with a %s", col->column->name,
                      bq_operand_type(col) == BQ_TYPE_TEXT ? "string" : "number",
                      bq_operand_type(col) == BQ_TYPE_TEXT ? "number" : "string");
}

static int bq_parse_range_tail(bq_parser *p, bq_item *item)
{
    if (item->value.kind != BQ_OPERAND_INT) {
        return bq_fail_at(p, &p->tok, "a range needs integer bounds");
    }
    item->range = true;
    item->step = 1;
    if (bq_next(p) != 0) {
        return -1;
    }
    bool negative = p->tok.kind == BQ_MINUS;
    if (negative && bq_next(p) != 0) {
        return -1;
    }
    if (p->tok.kind != BQ_INT) {
        return bq_expected(p, "an integer");
    }
    if (bq_parse_int(p, negative, &item->hi) != 0 || bq_next(p) != 0) {
        return -1;
    }
    if (p->tok.kind != BQ_COLON) {
        return 0;
    }
    if (bq_next(p) != 0) {
        return -1;
    }
    if (p->tok.kind != BQ_INT) {
        return bq_expected(p, "a stride");
    }
    if (bq_parse_int(p, false, &item->step) != 0) {
        return -1;
    }
    if (item->step <= 0) {
        char found[48];
        bq_describe(p, &p->tok, found, sizeof found);
        return bq_fail_at(p, &p->tok, "a range's stride must be positive, found %s", found);
    }
    return bq_next(p);
}

/* in_item := literal | ['-'] INT '..' ['-'] INT [':' INT] */
static int bq_parse_item(bq_parser *p, bq_node *n)
{
    bq_item *items = realloc(n->items, (n->nitems + 1) * sizeof *items);
    if (items == NULL) {
        return bq_fail_at(p, &p->tok, "out of memory");
    }
    n->items = items;
    bq_item *item = &items[n->nitems++];
    memset(item, 0, sizeof *item);
    if (p->tok.kind == BQ_IDENT) {
        return bq_expected(p, "a value");
    }
    if (bq_parse_operand(p, &item->value, "a value") != 0) {
        return -1;
    }
    if (p->tok.kind == BQ_DOTDOT && bq_parse_range_tail(p, item) != 0) {
        return -1;
    }
    return bq_check_types(p, &n->lhs, &item->value);
}

/* [NOT] IN '(' in_item {',' in_item} ')' after the left operand. */
static int bq_parse_in(bq_parser *p, bq_node *n)
{
    if (n->negated) {
        if (bq_next(p) != 0) {
            return -1;
        }
        if (p->tok.kind != BQ_IN) {
            return bq_expected(p, "IN");
        }
    }
    if (bq_next(p) != 0) {
        return -1;
    }
    if (p->tok.kind != BQ_LPAREN) {
        return bq_expected(p, "'('");
    }
    do {
        if (bq_next(p) != 0 || bq_parse_item(p, n) != 0) {
            return -1;
        }
    } while (p->tok.kind == BQ_COMMA);
    if (p->tok.kind != BQ_RPAREN) {
        return bq_expected(p, "',' or ')'");
    }
    return bq_next(p);
}

static bool bq_is_comparison(bq_tok_kind k)
{
    return k == BQ_EQ || k == BQ_NE || k == BQ_LT || k == BQ_LE || k == BQ_GT || k == BQ_GE;
}

/* predicate := operand (cmp operand | [NOT] IN (...)) */
static bq_node *bq_parse_predicate(bq_parser *p)
{
    bq_node *n = bq_node_new(p, BQ_NODE_CMP);
    if (n == NULL || bq_parse_operand(p, &n->lhs, "an identifier or a value") != 0) {
        bq_node_free(n);
        return NULL;
    }
    if (p->tok.kind == BQ_IN || p->tok.kind == BQ_NOT) {
        n->kind = BQ_NODE_IN;
        n->negated = p->tok.kind == BQ_NOT;
        if (bq_parse_in(p, n) != 0) {
            bq_node_free(n);
            return NULL;
        }
        return n;
    }
    if (!bq_is_comparison(p->tok.kind)) {
        bq_expected(p, "a comparison operator or IN");
        bq_node_free(n);
        return NULL;
    }
    n->op = p->tok.kind;
    if (bq_next(p) != 0 || bq_parse_operand(p, &n->rhs, "a value") != 0 ||
        bq_check_types(p, &n->lhs, &n->rhs) != 0) {
        bq_node_free(n);
        return NULL;
    }
    return n;
}

static int bq_enter(bq_parser *p)
{
    if (++p->depth > BUTLER_QUERY_MAX_DEPTH) {
        return bq_fail_at(p, &p->tok, "expression nested deeper than %d", BUTLER_QUERY_MAX_DEPTH);
    }
    return 0;
}

/* not_expr := NOT not_expr | '(' or_expr ')' | predicate */
static bq_node *bq_parse_not(bq_parser *p)
{
    if (bq_enter(p) != 0) {
        return NULL;
    }
    bq_node *result = NULL;
    if (p->tok.kind == BQ_NOT) {
        bq_node *n = bq_node_new(p, BQ_NODE_NOT);
        bq_node *child = n && bq_next(p) == 0 ? bq_parse_not(p) : NULL;
        if (child != NULL && bq_add_child(p, n, child) == 0) {
            result = n;
        } else {
            bq_node_free(n);
        }
    } else if (p->tok.kind == BQ_LPAREN) {
        bq_node *inner = bq_next(p) == 0 ? bq_parse_or(p) : NULL;
        if (inner != NULL && p->tok.kind != BQ_RPAREN) {
            bq_expected(p, "')'");
            bq_node_free(inner);
        } else if (inner != NULL && bq_next(p) != 0) {
            bq_node_free(inner);
        } else {
            result = inner;
        }
    } else {
        result = bq_parse_predicate(p);
    }
    p->depth--;
    return result;
}

/* A chain of `sub` joined by `op` (AND or OR), as one n-ary node. */
static bq_node *bq_parse_chain(bq_parser *p, bq_tok_kind op, bq_node_kind kind, bq_node *(*sub)(bq_parser *))
{
    bq_node *first = sub(p);
    if (first == NULL || p->tok.kind != op) {
        return first;
    }
    bq_node *n = bq_node_new(p, kind);
    if (n == NULL || bq_add_child(p, n, first) != 0) {
        if (n == NULL) {
            bq_node_free(first);
        }
        bq_node_free(n);
        return NULL;
    }
    while (p->tok.kind == op) {
        bq_node *next = bq_next(p) == 0 ? sub(p) : NULL;
        if (next == NULL || bq_add_child(p, n, next) != 0) {
            bq_node_free(n);
            return NULL;
        }
    }
    return n;
}

static bq_node *bq_parse_and(bq_parser *p)
{
    return bq_parse_chain(p, BQ_AND, BQ_NODE_AND, bq_parse_not);
}

static bq_node *bq_parse_or(bq_parser *p)
{
    return bq_parse_chain(p, BQ_OR, BQ_NODE_OR, bq_parse_and);
}

int butler_query_parse(const char *text, butler_query **out, char *err, size_t errlen)
{
    if (errlen > 0) {
        err[0] = '\0';
    }
    *out = NULL;
    bq_parser p = {.text = text, .err = err, .errlen = errlen};
    p.textlen = strlen(text);
    if (p.textlen > BUTLER_QUERY_MAX_LEN) {
        snprintf(err, errlen, "expression longer than %d bytes", BUTLER_QUERY_MAX_LEN);
        return -1;
    }
    butler_query *q = calloc(1, sizeof *q);
    if (q == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (bq_next(&p) != 0) {
        free(q);
        return -1;
    }
    p.prev.len = 0;
    if (p.tok.kind != BQ_EOF) {
        q->root = bq_parse_or(&p);
        if (q->root != NULL && p.tok.kind != BQ_EOF) {
            bq_expected(&p, "AND, OR or the end of the expression");
            butler_query_free(q);
            return -1;
        }
        if (q->root == NULL) {
            free(q);
            return -1;
        }
    }
    *out = q;
    return 0;
}

/* ---- translation ------------------------------------------------------- */

typedef struct bq_sql {
    butler_sql *out;
    size_t len, cap;
    size_t pcap;
    bool failed;
} bq_sql;

static void bq_emit(bq_sql *s, const char *text)
{
    size_t n = strlen(text);
    if (s->failed) {
        return;
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = (s->cap + n + 1) * 2;
        char *b = realloc(s->out->sql, cap);
        if (b == NULL) {
            s->failed = true;
            return;
        }
        s->out->sql = b;
        s->cap = cap;
    }
    memcpy(s->out->sql + s->len, text, n + 1);
    s->len += n;
}

static butler_param *bq_push_param(bq_sql *s)
{
    if (s->failed) {
        return NULL;
    }
    if (s->out->nparams == s->pcap) {
        size_t cap = s->pcap ? s->pcap * 2 : 8;
        butler_param *pp = realloc(s->out->params, cap * sizeof *pp);
        if (pp == NULL) {
            s->failed = true;
            return NULL;
        }
        s->out->params = pp;
        s->pcap = cap;
    }
    butler_param *p = &s->out->params[s->out->nparams++];
    memset(p, 0, sizeof *p);
    bq_emit(s, "?");
    return p;
}

static void bq_emit_int(bq_sql *s, long long v)
{
    butler_param *p = bq_push_param(s);
    if (p != NULL) {
        p->kind = BUTLER_PARAM_INT;
        p->i = v;
    }
}

static void bq_emit_operand(bq_sql *s, const bq_operand *o)
{
    if (o->kind == BQ_OPERAND_COLUMN) {
        bq_emit(s, o->column->column);
        return;
    }
    if (o->kind == BQ_OPERAND_INT) {
        bq_emit_int(s, o->i);
        return;
    }
    butler_param *p = bq_push_param(s);
    if (p == NULL) {
        return;
    }
    if (o->kind == BQ_OPERAND_FLOAT) {
        p->kind = BUTLER_PARAM_FLOAT;
        p->f = o->f;
        return;
    }
    p->kind = BUTLER_PARAM_TEXT;
    p->text = strdup(o->text);
    if (p->text == NULL) {
        s->failed = true;
    }
}

static const char *bq_sql_operator(bq_tok_kind op)
{
    switch (op) {
    case BQ_EQ:
        return " = ";
    case BQ_NE:
        return " != ";
    case BQ_LT:
        return " < ";
    case BQ_LE:
        return " <= ";
    case BQ_GT:
        return " > ";
    default:
        return " >= ";
    }
}

/* lhs BETWEEN lo AND hi [AND ((lhs - lo) % step = 0)] */
static void bq_emit_range(bq_sql *s, const bq_operand *lhs, const bq_item *item)
{
    bq_emit(s, "(");
    bq_emit_operand(s, lhs);
    bq_emit(s, " BETWEEN ");
    bq_emit_int(s, item->value.i);
    bq_emit(s, " AND ");
    bq_emit_int(s, item->hi);
    if (item->step > 1) {
        bq_emit(s, " AND ((");
        bq_emit_operand(s, lhs);
        bq_emit(s, " - ");
        bq_emit_int(s, item->value.i);
        bq_emit(s, ") % ");
        bq_emit_int(s, item->step);
        bq_emit(s, " = ");
        bq_emit_int(s, 0);
        bq_emit(s, ")");
    }
    bq_emit(s, ")");
}

/* (lhs IN (v, ...) OR range OR ...), wrapped in NOT for NOT IN. */
static void bq_emit_in(bq_sql *s, const bq_node *n)
{
    bq_emit(s, n->negated ? "(NOT (" : "((");
    bool any = false;
    for (size_t i = 0; i < n->nitems; i++) {
        if (n->items[i].range) {
            continue;
        }
        bq_emit(s, any ? ", " : "");
        if (!any) {
            bq_emit_operand(s, &n->lhs);
            bq_emit(s, " IN (");
        }
        bq_emit_operand(s, &n->items[i].value);
        any = true;
    }
    bq_emit(s, any ? ")" : "");
    for (size_t i = 0; i < n->nitems; i++) {
        if (n->items[i].range) {
            bq_emit(s, any ? " OR " : "");
            bq_emit_range(s, &n->lhs, &n->items[i]);
            any = true;
        }
    }
    bq_emit(s, "))");
}

static void bq_emit_node(bq_sql *s, const bq_node *n)
{
    switch (n->kind) {
    case BQ_NODE_OR:
    case BQ_NODE_AND:
        bq_emit(s, "(");
        for (size_t i = 0; i < n->nchildren; i++) {
            bq_emit(s, i == 0 ? "" : (n->kind == BQ_NODE_OR ? " OR " : " AND "));
            bq_emit_node(s, n->children[i]);
        }
        bq_emit(s, ")");
        break;
    case BQ_NODE_NOT:
        bq_emit(s, "(NOT ");
        bq_emit_node(s, n->children[0]);
        bq_emit(s, ")");
        break;
    case BQ_NODE_CMP:
        bq_emit(s, "(");
        bq_emit_operand(s, &n->lhs);
        bq_emit(s, bq_sql_operator(n->op));
        bq_emit_operand(s, &n->rhs);
        bq_emit(s, ")");
        break;
    case BQ_NODE_IN:
        bq_emit_in(s, n);
        break;
    }
}

int butler_query_to_sql(const butler_query *q, butler_sql *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    bq_sql s = {.out = out};
    bq_emit(&s, "");
    if (q->root != NULL) {
        bq_emit_node(&s, q->root);
    }
    if (s.failed) {
        butler_sql_free(out);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void butler_sql_free(butler_sql *s)
{
    for (size_t i = 0; i < s->nparams; i++) {
        free(s->params[i].text);
    }
    free(s->params);
    free(s->sql);
    memset(s, 0, sizeof *s);
}
