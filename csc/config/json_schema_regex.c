/*
 * json_schema_regex.c - ECMA-262 regular expressions ("pattern",
 * "patternProperties", format "regex") translated to POSIX extended ones
 * for regcomp.
 *
 * Matching is byte-oriented (the C/POSIX LC_CTYPE is assumed): "." and
 * negated classes match one byte, non-ASCII literals are kept as grouped
 * UTF-8 sequences. Strings are matched up to a NUL.
 */
#include "json_schema__internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rough upper bound on the size of a translated regex after expanding
 * bounded repetitions, to keep regcomp fast and small. */
#define REGEX_COST_LIMIT 20000
#define REGEX_MAX_GROUPS 64

/* ------------------------------------------------------------------ */
/* ECMA-262 regular expressions to POSIX ERE                            */

typedef struct rx {
    const char *p;
    size_t n, i;
    dstr out;
    char why[160];
    /* cost accounting per open group */
    long cost[REGEX_MAX_GROUPS + 1];
    long last; /* cost of the last atom, 0 if nothing to quantify */
    int depth;
} rx;

typedef struct charset {
    unsigned char bits[32];
    dstr alts; /* "|seq|seq" for non-ASCII members */
} charset;

static int rx_fail(rx *r, const char *why)
{
    snprintf(r->why, sizeof r->why, "%s at offset %zu", why, r->i);
    return -1;
}

static void cs_add(charset *cs, unsigned c)
{
    cs->bits[c >> 3] |= (unsigned char)(1u << (c & 7));
}

static int cs_has(const charset *cs, unsigned c)
{
    return (cs->bits[c >> 3] >> (c & 7)) & 1;
}

static void cs_add_class(charset *cs, char letter)
{
    int neg = isupper((unsigned char)letter) != 0;
    char l = (char)tolower((unsigned char)letter);
    for (unsigned c = 1; c < 256; c++) {
        int in;
        if (l == 'd') {
            in = c >= '0' && c <= '9';
        } else if (l == 'w') {
            in = c < 128 && (isalnum((int)c) || c == '_');
        } else {
            in = c == ' ' || (c >= '\t' && c <= '\r'); /* ASCII white space */
        }
        if (in != neg) {
            cs_add(cs, c);
        }
    }
}

static int utf8_encode(unsigned long cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decode the UTF-8 sequence at r->i (advancing); invalid bytes are taken
 * one at a time. */
static unsigned long rx_utf8(rx *r)
{
    const unsigned char *s = (const unsigned char *)r->p + r->i;
    size_t left = r->n - r->i;
    int len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 1;
    if ((size_t)len > left) {
        len = 1;
    }
    unsigned long cp = len == 1 ? s[0] : s[0] & (0x3F >> (len - 1));
    for (int k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) {
            r->i++;
            return s[0];
        }
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    r->i += (size_t)len;
    return cp;
}

static long rx_hex(rx *r, int count)
{
    long v = 0;
    if (r->i + (size_t)count > r->n) {
        return -1;
    }
    for (int k = 0; k < count; k++) {
        int h = js_hexval((unsigned char)r->p[r->i + (size_t)k]);
        if (h < 0) {
            return -1;
        }
        v = v * 16 + h;
    }
    r->i += (size_t)count;
    return v;
}

/* \uXXXX (with surrogate pairs); r->i is after the 'u'. */
static long rx_unicode_escape(rx *r)
{
    long v = rx_hex(r, 4);
    if (v >= 0xD800 && v <= 0xDBFF && r->i + 6 <= r->n && r->p[r->i] == '\\' && r->p[r->i + 1] == 'u') {
        size_t save = r->i;
        r->i += 2;
        long lo = rx_hex(r, 4);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            return 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        }
        r->i = save;
    }
    if (v >= 0xD800 && v <= 0xDFFF) {
        return -2;
    }
    return v;
}

enum { ESC_CHAR, ESC_CLASS };

/* Parse the escape after a backslash (r->i is after it). Sets *cp for a
 * character or *cls to the class letter (d, D, w, W, s, S). */
static int rx_escape(rx *r, int in_class, unsigned long *cp, char *cls)
{
    if (r->i >= r->n) {
        return rx_fail(r, "\\ at end of pattern");
    }
    char c = r->p[r->i];
    if (strchr("dDwWsS", c)) {
        r->i++;
        *cls = c;
        return ESC_CLASS;
    }
    static const char simple[] = "t\tn\nv\vf\fr\r";
    const char *m = strchr(simple, c);
    if (m && (m - simple) % 2 == 0) {
        r->i++;
        *cp = (unsigned char)m[1];
        return ESC_CHAR;
    }
    if (c == 'b' && in_class) {
        r->i++;
        *cp = 8;
        return ESC_CHAR;
    }
    if (c == 'b' || c == 'B') {
        return rx_fail(r, "word boundary assertions (\\b, \\B) are not supported");
    }
    if (c >= '0' && c <= '9') {
        return rx_fail(r, c == '0' ? "NUL characters (\\0) are not supported"
                                   : "backreferences are not supported");
    }
    if (c == 'k') {
        return rx_fail(r, "named backreferences are not supported");
    }
    if (c == 'p' || c == 'P') {
        return rx_fail(r, "Unicode property escapes are not supported");
    }
    if (c == 'c' && r->i + 1 < r->n && isalpha((unsigned char)r->p[r->i + 1])) {
        *cp = (unsigned long)(r->p[r->i + 1] % 32);
        r->i += 2;
        return ESC_CHAR;
    }
    if (c == 'x' || c == 'u') {
        r->i++;
        long v = c == 'x' ? rx_hex(r, 2) : rx_unicode_escape(r);
        if (v == -1) {
            return rx_fail(r, c == 'x' ? "bad \\x escape" : "bad \\u escape");
        }
        if (v == -2) {
            return rx_fail(r, "lone surrogate in \\u escape");
        }
        if (v == 0) {
            return rx_fail(r, "NUL characters are not supported");
        }
        *cp = (unsigned long)v;
        return ESC_CHAR;
    }
    if (isalnum((unsigned char)c)) {
        /* \A, \Z, \z, ... of other dialects (an error in unicode mode) */
        return rx_fail(r, "unknown escape (\\A, \\Z, \\z and the like are not ECMA-262)");
    }
    *cp = rx_utf8(r); /* identity escape */
    return ESC_CHAR;
}

static void rx_literal(dstr *o, unsigned long cp)
{
    char buf[4];
    if (cp < 0x80) {
        if (strchr("^.[$()|*+?{\\", (int)cp)) {
            js_ds_putc(o, '\\');
        }
        js_ds_putc(o, (char)cp);
        return;
    }
    int n = utf8_encode(cp, buf);
    js_ds_putc(o, '(');
    js_ds_putn(o, buf, (size_t)n);
    js_ds_putc(o, ')');
}

/* Emit a bracket expression matching exactly the bytes of the set. */
static void emit_bytes(dstr *o, const charset *cs)
{
    int count = 0;
    unsigned only = 0;
    for (unsigned c = 1; c < 256; c++) {
        if (cs_has(cs, c)) {
            count++;
            only = c;
        }
    }
    if (count == 1) {
        if (only < 0x80) {
            rx_literal(o, only);
        } else {
            js_ds_putc(o, '[');
            js_ds_putc(o, (char)only);
            js_ds_putc(o, ']');
        }
        return;
    }
    js_ds_putc(o, '[');
    size_t start = o->len;
    if (cs_has(cs, ']')) {
        js_ds_putc(o, ']');
    }
    for (unsigned c = 1; c < 256; c++) {
        if (cs_has(cs, c) && !strchr("]^-[", (int)c)) {
            js_ds_putc(o, (char)c);
        }
    }
    int dash_done = 0;
    if (cs_has(cs, '^') && o->len == start) {
        /* '^' must not come first: put '-' (literal when first) before it */
        if (cs_has(cs, '-')) {
            js_ds_putc(o, '-');
            dash_done = 1;
        } else if (cs_has(cs, '[')) {
            js_ds_putc(o, '[');
            js_ds_putc(o, '^');
            js_ds_putc(o, ']');
            return;
        }
    }
    if (cs_has(cs, '^')) {
        js_ds_putc(o, '^');
    }
    if (cs_has(cs, '[')) {
        js_ds_putc(o, '[');
    }
    if (cs_has(cs, '-') && !dash_done) {
        js_ds_putc(o, '-');
    }
    js_ds_putc(o, ']');
}

static void emit_charset(dstr *o, const charset *cs)
{
    int empty = 1;
    for (unsigned c = 1; c < 256 && empty; c++) {
        empty = !cs_has(cs, c);
    }
    if (empty && cs->alts.len == 0) {
        /* matches nothing: the complement of every byte */
        charset all = {{0}, {0}};
        for (unsigned c = 1; c < 256; c++) {
            cs_add(&all, c);
        }
        js_ds_puts(o, "[^");
        dstr tmp = {0};
        emit_bytes(&tmp, &all);
        js_ds_putn(o, tmp.p + 1, tmp.len - 1);
        o->oom |= tmp.oom;
        js_ds_free(&tmp);
        return;
    }
    if (cs->alts.len == 0) {
        emit_bytes(o, cs);
        return;
    }
    js_ds_putc(o, '(');
    if (!empty) {
        emit_bytes(o, cs);
        js_ds_puts(o, js_ds_str(&cs->alts));
    } else {
        js_ds_putn(o, cs->alts.p + 1, cs->alts.len - 1);
    }
    js_ds_putc(o, ')');
}

static void cs_add_cp(charset *cs, unsigned long cp)
{
    if (cp < 0x80) {
        cs_add(cs, (unsigned)cp);
        return;
    }
    char buf[4];
    int n = utf8_encode(cp, buf);
    js_ds_putc(&cs->alts, '|');
    js_ds_putn(&cs->alts, buf, (size_t)n);
}

/* One class member: a character (returns ESC_CHAR) or a class escape. */
static int rx_class_atom(rx *r, unsigned long *cp, char *cls)
{
    if (r->p[r->i] == '\\') {
        r->i++;
        return rx_escape(r, 1, cp, cls);
    }
    *cp = rx_utf8(r);
    return ESC_CHAR;
}

static int rx_class_range(rx *r, charset *cs, unsigned long lo, int *neg_ok)
{
    unsigned long hi;
    char cls;
    r->i++; /* '-' */
    int k = rx_class_atom(r, &hi, &cls);
    if (k < 0) {
        return -1;
    }
    if (k == ESC_CLASS) { /* [a-\d]: '-' is literal (Annex B) */
        cs_add_cp(cs, lo);
        cs_add(cs, '-');
        cs_add_class(cs, cls);
        return 0;
    }
    if (lo > hi) {
        return rx_fail(r, "range out of order in character class");
    }
    if (hi >= 0x80) {
        if (lo != hi) {
            return rx_fail(r, "ranges of non-ASCII characters in character classes are not supported");
        }
        *neg_ok = 0;
        cs_add_cp(cs, lo);
        return 0;
    }
    for (unsigned long c = lo; c <= hi; c++) {
        cs_add(cs, (unsigned)c);
    }
    return 0;
}

static int rx_class(rx *r)
{
    charset cs = {{0}, {0}};
    int negate = 0, neg_ok = 1, rc = 0;
    r->i++; /* '[' */
    if (r->i < r->n && r->p[r->i] == '^') {
        negate = 1;
        r->i++;
    }
    while (rc == 0) {
        if (r->i >= r->n) {
            rc = rx_fail(r, "missing ] in character class");
            break;
        }
        if (r->p[r->i] == ']') {
            r->i++;
            break;
        }
        unsigned long cp;
        char cls;
        int k = rx_class_atom(r, &cp, &cls);
        if (k < 0) {
            rc = -1;
        } else if (k == ESC_CLASS) {
            cs_add_class(&cs, cls);
        } else if (r->i + 1 < r->n && r->p[r->i] == '-' && r->p[r->i + 1] != ']') {
            rc = rx_class_range(r, &cs, cp, &neg_ok);
        } else {
            neg_ok &= cp < 0x80;
            cs_add_cp(&cs, cp);
        }
    }
    if (rc == 0 && negate) {
        if (!neg_ok) {
            rc = rx_fail(r, "non-ASCII characters in negated character classes are not supported");
        } else {
            for (unsigned c = 1; c < 256; c++) {
                cs.bits[c >> 3] ^= (unsigned char)(1u << (c & 7));
            }
            cs.bits[0] &= (unsigned char)~1u;
        }
    }
    if (rc == 0) {
        emit_charset(&r->out, &cs);
    }
    js_ds_free(&cs.alts);
    return rc;
}

static int rx_add_cost(rx *r, long c)
{
    r->cost[r->depth] += c;
    if (r->cost[r->depth] > REGEX_COST_LIMIT) {
        return rx_fail(r, "regular expression too large");
    }
    return 0;
}

/* {n}, {n,}, {n,m}: returns 1 if one was parsed (r->i after it). */
static int rx_braces(rx *r, long *lo, long *hi)
{
    size_t i = r->i + 1;
    long a = 0, b;
    int nd = 0;
    while (i < r->n && isdigit((unsigned char)r->p[i]) && nd < 9) {
        a = a * 10 + (r->p[i++] - '0');
        nd++;
    }
    if (nd == 0 || i >= r->n) {
        return 0;
    }
    b = a;
    if (r->p[i] == ',') {
        i++;
        b = -1;
        nd = 0;
        long v = 0;
        while (i < r->n && isdigit((unsigned char)r->p[i]) && nd < 9) {
            v = v * 10 + (r->p[i++] - '0');
            nd++;
        }
        if (nd) {
            b = v;
        }
    }
    if (i >= r->n || r->p[i] != '}') {
        return 0;
    }
    r->i = i + 1;
    *lo = a;
    *hi = b;
    return 1;
}

static int rx_quantifier(rx *r)
{
    char c = r->p[r->i];
    long lo = 0, hi = -1;
    size_t at = r->i;
    if (c == '{') {
        if (!rx_braces(r, &lo, &hi)) {
            return 1; /* a literal '{' */
        }
    } else {
        r->i++;
    }
    if (r->last == 0) {
        r->i = at;
        return rx_fail(r, "nothing to repeat");
    }
    if (c == '{') {
        if (hi >= 0 && lo > hi) {
            return rx_fail(r, "numbers out of order in {} quantifier");
        }
        if (lo > 255 || hi > 255) {
            return rx_fail(r, "repetition counts above 255 are not supported");
        }
        js_ds_printf(&r->out, "{%ld", lo);
        if (hi != lo) {
            js_ds_putc(&r->out, ',');
            if (hi >= 0) {
                js_ds_printf(&r->out, "%ld", hi);
            }
        }
        js_ds_putc(&r->out, '}');
    } else {
        js_ds_putc(&r->out, c);
    }
    if (r->i < r->n && r->p[r->i] == '?') {
        r->i++; /* lazy: the same language for a search */
    }
    long times = (hi > lo ? hi : lo + 1);
    int rc = rx_add_cost(r, r->last * (times > 1 ? times - 1 : 0));
    r->last = 0;
    return rc;
}

static int rx_group_open(rx *r)
{
    r->i++;
    if (r->i < r->n && r->p[r->i] == '?') {
        const char *q = r->p + r->i;
        size_t left = r->n - r->i;
        if (left >= 2 && q[1] == ':') {
            r->i += 2;
        } else if (left >= 3 && q[1] == '<' && q[2] != '=' && q[2] != '!') {
            size_t k = 2;
            while (k < left && (isalnum((unsigned char)q[k]) || q[k] == '_' || q[k] == '$')) {
                k++;
            }
            if (k == 2 || k >= left || q[k] != '>') {
                return rx_fail(r, "bad group name");
            }
            r->i += k + 1;
        } else {
            return rx_fail(r, "lookahead/lookbehind assertions are not supported");
        }
    }
    if (r->depth >= REGEX_MAX_GROUPS) {
        return rx_fail(r, "groups nested too deeply");
    }
    r->depth++;
    r->cost[r->depth] = 0;
    r->last = 0;
    js_ds_putc(&r->out, '(');
    return 0;
}

static int rx_group_close(rx *r)
{
    if (r->depth == 0) {
        return rx_fail(r, "unmatched )");
    }
    long c = r->cost[r->depth] + 1;
    r->depth--;
    r->i++;
    js_ds_putc(&r->out, ')');
    r->last = c;
    return rx_add_cost(r, c);
}

static int rx_atom_done(rx *r, long cost)
{
    r->last = cost;
    return rx_add_cost(r, cost);
}

static int rx_step(rx *r)
{
    char c = r->p[r->i];
    switch (c) {
    case '\\': {
        unsigned long cp;
        char cls;
        r->i++;
        int k = rx_escape(r, 0, &cp, &cls);
        if (k < 0) {
            return -1;
        }
        if (k == ESC_CLASS) {
            charset cs = {{0}, {0}};
            cs_add_class(&cs, cls);
            emit_charset(&r->out, &cs);
        } else {
            rx_literal(&r->out, cp);
        }
        return rx_atom_done(r, 1);
    }
    case '[':
        return rx_class(r) < 0 ? -1 : rx_atom_done(r, 1);
    case '(':
        return rx_group_open(r);
    case ')':
        return rx_group_close(r);
    case '|':
        r->i++;
        r->last = 0;
        js_ds_putc(&r->out, '|');
        return 0;
    case '*':
    case '+':
    case '?':
        return rx_quantifier(r);
    case '{': {
        int k = rx_quantifier(r);
        if (k != 1) {
            return k;
        }
        r->i++; /* not a quantifier: a literal '{' */
        js_ds_puts(&r->out, "\\{");
        return rx_atom_done(r, 1);
    }
    case '.':
        r->i++;
        js_ds_puts(&r->out, "[^\n\r]");
        return rx_atom_done(r, 1);
    case '^':
    case '$':
        r->i++;
        js_ds_putc(&r->out, c);
        r->last = 0;
        return 0;
    default:
        rx_literal(&r->out, rx_utf8(r));
        return rx_atom_done(r, 1);
    }
}

/* Translate; 0 with *out (caller frees) or -1 with why. */
static int ecma_to_ere(const char *pat, size_t n, char **out, char *why, size_t whysz)
{
    rx r;
    memset(&r, 0, sizeof r);
    r.p = pat;
    r.n = n;
    int rc = 0;
    if (memchr(pat, '\0', n)) {
        rc = rx_fail(&r, "NUL characters are not supported");
    }
    while (rc == 0 && r.i < r.n) {
        rc = rx_step(&r);
    }
    if (rc == 0 && r.depth != 0) {
        rc = rx_fail(&r, "missing )");
    }
    if (rc == 0 && r.out.oom) {
        rc = rx_fail(&r, "out of memory");
    }
    if (rc != 0) {
        js_copy_trunc(why, whysz, r.why);
        js_ds_free(&r.out);
        return -1;
    }
    *out = r.out.p ? r.out.p : strdup("");
    return *out ? 0 : -1;
}

/* Translate and compile an ECMA-262 regex; 0 or -1 with why. */
int js_regex_compile(regex_t *re, const char *pat, size_t n, char *why, size_t whysz)
{
    char *ere = NULL;
    if (ecma_to_ere(pat, n, &ere, why, whysz) != 0) {
        return -1;
    }
    int rc = regcomp(re, ere, REG_EXTENDED | REG_NOSUB);
    free(ere);
    if (rc != 0) {
        char buf[128];
        regerror(rc, re, buf, sizeof buf);
        snprintf(why, whysz, "%s", buf);
        return -1;
    }
    return 0;
}

int js_regex_search(const regex_t *re, const char *s)
{
    return regexec(re, s, 0, NULL, 0) == 0;
}
