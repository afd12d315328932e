/*
 * json_schema_regex.c - ECMA-262 regular expressions ("pattern",
 * "patternProperties", format "regex") matched with PCRE2.
 *
 * JSON Schema patterns are ECMA-262 regular expressions with Unicode
 * semantics (the "u" flag), found anywhere in the string. PCRE2 in UTF mode
 * matches code points and has lookahead, lookbehind (of fixed length
 * only), backreferences and named groups. A short rewriting pass gives the
 * ECMA meaning to what PCRE2 reads differently:
 *
 *   ECMA                        written for PCRE2
 *   .                           [^\n\r\x{2028}\x{2029}]
 *   \s \S                       ECMA's white space and line terminators
 *                               spelled out (PCRE2's \s is ASCII, or with
 *                               PCRE2_UCP lacks U+FEFF)
 *   \d \w \b                    unchanged: ASCII in both (no PCRE2_UCP,
 *                               which would make them Unicode)
 *   \v \0 \cX \xHH \uHHHH \u{H} \x{...}, surrogate pairs joined
 *   \1 (a backreference)        \g{1}, never an octal escape
 *   \p{Letter}, \p{gc=Nd}       \p{L}, \p{Nd}: PCRE2 knows only the short
 *                               General_Category names
 *   [ : . = inside a class      \[ \: \. \= (no POSIX [:alpha:] classes)
 *   { not starting a quantifier \{ (a literal, as Annex B reads it)
 *
 * and refuses, as ECMA-262 does, what PCRE2 would accept with another
 * meaning: escapes such as \a \e \A \Z \z \h \R \Q, groups (?i) (?# (?P<
 * (?> and (*VERB), possessive quantifiers a*+. "$" matches only at the end
 * (PCRE2_DOLLAR_ENDONLY), [] matches nothing and [^] any character
 * (PCRE2_ALLOW_EMPTY_CLASS), a backreference to a group that did not take
 * part matches the empty string (PCRE2_MATCH_UNSET_BACKREF).
 * PCRE2_ALT_BSUX would read \uHHHH but not join surrogate pairs, and would
 * turn off \x{...}, so the rewriting writes every code point as \x{...}.
 *
 * Known differences left: each alternative of a lookbehind must have a
 * fixed length ("(?<=a+)" is a schema error with PCRE2 10.42), repetition
 * counts stop at 65535, group names are ASCII word characters, and PCRE2
 * also accepts a script name alone (\p{Greek}) where ECMA wants
 * \p{Script=Greek}.
 *
 * Every pattern is compiled once, with the schema. Matching runs under a
 * match limit, a depth limit and a heap limit (one match context per
 * pattern), so a pattern that backtracks catastrophically ends in an error
 * instead of hanging the CSC.
 */
#include "json_schema__internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Longest pattern accepted, in bytes, and longest rewritten one. */
#define JS_REGEX_MAX_PATTERN 32768
#define JS_REGEX_MAX_REWRITTEN (256 * 1024)
/* pcre2_match limits: backtracking steps, backtracking depth, heap (KiB). */
#define JS_REGEX_MATCH_LIMIT 1000000
#define JS_REGEX_DEPTH_LIMIT 1000000
#define JS_REGEX_HEAP_LIMIT_KIB 16384

struct js_regex {
    pcre2_code *code;
    pcre2_match_context *mctx; /* the limits */
};

/* ECMA-262 WhiteSpace and LineTerminator, as class members, and their
 * complement (over all code points). */
static const char ecma_space[] = "\\x{9}-\\x{d}\\x{20}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}"
                                 "\\x{202f}\\x{205f}\\x{3000}\\x{feff}";
static const char ecma_nonspace[] =
    "\\x{0}-\\x{8}\\x{e}-\\x{1f}\\x{21}-\\x{9f}\\x{a1}-\\x{167f}\\x{1681}-\\x{1fff}"
    "\\x{200b}-\\x{2027}\\x{202a}-\\x{202e}\\x{2030}-\\x{205e}\\x{2060}-\\x{2fff}"
    "\\x{3001}-\\x{fefe}\\x{ff00}-\\x{10ffff}";

/* General_Category values by every name ECMA-262 accepts (short, long,
 * other alias), written as PCRE2's short name. */
static const char *const gc_names[][3] = {
    {"C", "Other", NULL},
    {"Cc", "Control", "cntrl"},
    {"Cf", "Format", NULL},
    {"Cn", "Unassigned", NULL},
    {"Co", "Private_Use", NULL},
    {"Cs", "Surrogate", NULL},
    {"L", "Letter", NULL},
    {"LC", "Cased_Letter", NULL},
    {"Ll", "Lowercase_Letter", NULL},
    {"Lm", "Modifier_Letter", NULL},
    {"Lo", "Other_Letter", NULL},
    {"Lt", "Titlecase_Letter", NULL},
    {"Lu", "Uppercase_Letter", NULL},
    {"M", "Mark", "Combining_Mark"},
    {"Mc", "Spacing_Mark", NULL},
    {"Me", "Enclosing_Mark", NULL},
    {"Mn", "Nonspacing_Mark", NULL},
    {"N", "Number", NULL},
    {"Nd", "Decimal_Number", "digit"},
    {"Nl", "Letter_Number", NULL},
    {"No", "Other_Number", NULL},
    {"P", "Punctuation", "punct"},
    {"Pc", "Connector_Punctuation", NULL},
    {"Pd", "Dash_Punctuation", NULL},
    {"Pe", "Close_Punctuation", NULL},
    {"Pf", "Final_Punctuation", NULL},
    {"Pi", "Initial_Punctuation", NULL},
    {"Po", "Other_Punctuation", NULL},
    {"Ps", "Open_Punctuation", NULL},
    {"S", "Symbol", NULL},
    {"Sc", "Currency_Symbol", NULL},
    {"Sk", "Modifier_Symbol", NULL},
    {"Sm", "Math_Symbol", NULL},
    {"So", "Other_Symbol", NULL},
    {"Z", "Separator", NULL},
    {"Zl", "Line_Separator", NULL},
    {"Zp", "Paragraph_Separator", NULL},
    {"Zs", "Space_Separator", NULL},
};

/* Where a piece of the rewritten pattern came from, to report PCRE2's
 * error offsets in the schema's pattern. */
typedef struct rw_origin {
    size_t out, in;
} rw_origin;

/* The rewriting pass: the ECMA pattern p[0..n) read at i, written to out. */
typedef struct rw {
    const char *p;
    size_t n, i;
    size_t tok; /* offset in p of the token being written */
    dstr out;
    rw_origin *origins;
    size_t norigins, caporigins;
    int oom;
    char why[160];
} rw;

/* Kinds of a class member, for the range checks. */
enum { RW_CHAR, RW_CLASS };

static int rw_fail(rw *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int rw_fail(rw *r, const char *fmt, ...)
{
    char msg[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->why, sizeof r->why, "%s at offset %zu", msg, r->tok);
    return -1;
}

static void rw_emit(rw *r, const char *s, size_t n)
{
    if (r->norigins == 0 || r->origins[r->norigins - 1].in != r->tok) {
        if (r->norigins == r->caporigins) {
            size_t cap = r->caporigins ? r->caporigins * 2 : 64;
            rw_origin *o = realloc(r->origins, cap * sizeof *o);
            if (!o) {
                r->oom = 1;
                return;
            }
            r->origins = o;
            r->caporigins = cap;
        }
        r->origins[r->norigins++] = (rw_origin){r->out.len, r->tok};
    }
    js_ds_putn(&r->out, s, n);
}

static void rw_puts(rw *r, const char *s)
{
    rw_emit(r, s, strlen(s));
}

/* A code point as \x{...}. */
static void rw_code_point(rw *r, unsigned long cp)
{
    char buf[16];
    int len = snprintf(buf, sizeof buf, "\\x{%lx}", cp);
    rw_emit(r, buf, (size_t)len);
}

/* Copy the character at r->i (a whole UTF-8 sequence) unchanged. */
static void rw_copy_char(rw *r)
{
    size_t len = 1;
    while (r->i + len < r->n && ((unsigned char)r->p[r->i + len] & 0xC0) == 0x80) {
        len++;
    }
    rw_emit(r, r->p + r->i, len);
    r->i += len;
}

/* Exactly count hex digits at r->i; -1 if they are not there. */
static long rw_hex(rw *r, int count)
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

/* After "\u": HHHH (a surrogate pair of two such escapes joined) or {H...}. */
static int rw_unicode_escape(rw *r, unsigned long *cp)
{
    long v;
    if (r->i < r->n && r->p[r->i] == '{') {
        size_t digits = 0;
        v = 0;
        for (r->i++; r->i < r->n && js_hexval((unsigned char)r->p[r->i]) >= 0; r->i++, digits++) {
            v = v * 16 + js_hexval((unsigned char)r->p[r->i]);
            if (v > 0x10FFFF) {
                return rw_fail(r, "\\u{...} beyond U+10FFFF");
            }
        }
        if (digits == 0 || r->i >= r->n || r->p[r->i] != '}') {
            return rw_fail(r, "bad \\u{...} escape");
        }
        r->i++;
    } else {
        v = rw_hex(r, 4);
        if (v < 0) {
            return rw_fail(r, "\\u must be followed by four hexadecimal digits or {...}");
        }
        if (v >= 0xD800 && v <= 0xDBFF && r->i + 6 <= r->n && r->p[r->i] == '\\' && r->p[r->i + 1] == 'u') {
            size_t save = r->i;
            r->i += 2;
            long lo = rw_hex(r, 4);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
            } else {
                r->i = save;
            }
        }
    }
    if (v >= 0xD800 && v <= 0xDFFF) {
        return rw_fail(r, "lone surrogate in \\u escape (never in a UTF-8 string)");
    }
    *cp = (unsigned long)v;
    return 0;
}

static const char *gc_short(const char *name)
{
    for (size_t i = 0; i < sizeof gc_names / sizeof gc_names[0]; i++) {
        for (int k = 0; k < 3; k++) {
            if (gc_names[i][k] && strcmp(gc_names[i][k], name) == 0) {
                return gc_names[i][0];
            }
        }
    }
    return NULL;
}

/* After "\p" or "\P": {Name=Value} or {NameOrValue}, written the way PCRE2
 * spells it. */
static int rw_property(rw *r, int negated)
{
    char text[64], out[96];
    size_t len = 0;
    if (r->i >= r->n || r->p[r->i] != '{') {
        return rw_fail(r, "\\p and \\P must be followed by {property}");
    }
    for (r->i++; r->i < r->n && r->p[r->i] != '}'; r->i++) {
        char c = r->p[r->i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                 c == '=';
        if (!ok || len + 1 >= sizeof text) {
            return rw_fail(r, "bad Unicode property escape");
        }
        text[len++] = c;
    }
    if (r->i >= r->n || len == 0) {
        return rw_fail(r, "bad Unicode property escape");
    }
    r->i++;
    text[len] = '\0';
    char *eq = strchr(text, '=');
    const char *sh;
    if (eq) {
        *eq = '\0';
        const char *value = eq + 1;
        if (strcmp(text, "General_Category") == 0 || strcmp(text, "gc") == 0) {
            if (!(sh = gc_short(value))) {
                return rw_fail(r, "unknown General_Category value '%s'", value);
            }
            snprintf(out, sizeof out, "\\%c{%s}", negated ? 'P' : 'p', sh);
        } else if (strcmp(text, "Script") == 0 || strcmp(text, "sc") == 0 ||
                   strcmp(text, "Script_Extensions") == 0 || strcmp(text, "scx") == 0) {
            snprintf(out, sizeof out, "\\%c{%s=%s}", negated ? 'P' : 'p', text, value);
        } else {
            return rw_fail(r, "unknown Unicode property '%s'", text);
        }
    } else if ((sh = gc_short(text))) {
        snprintf(out, sizeof out, "\\%c{%s}", negated ? 'P' : 'p', sh);
    } else if (strcmp(text, "Assigned") == 0) {
        snprintf(out, sizeof out, "\\%c{Cn}", negated ? 'p' : 'P');
    } else {
        snprintf(out, sizeof out, "\\%c{%s}", negated ? 'P' : 'p', text); /* a binary property */
    }
    rw_puts(r, out);
    return 0;
}

/* After "\k": <name>, copied. */
static int rw_named_backref(rw *r)
{
    const char *close = r->i < r->n && r->p[r->i] == '<' ? memchr(r->p + r->i, '>', r->n - r->i) : NULL;
    if (!close || close == r->p + r->i + 1) {
        return rw_fail(r, "\\k must be followed by <group name>");
    }
    size_t len = (size_t)(close - (r->p + r->i)) + 1;
    rw_puts(r, "\\k");
    rw_emit(r, r->p + r->i, len);
    r->i += len;
    return 0;
}

/* The escape at r->i (a backslash); *kind tells a class escape (\d, \s,
 * \p{..}, ...) from one character. */
static int rw_escape(rw *r, int in_class, int *kind)
{
    unsigned long cp = 0;
    *kind = RW_CHAR;
    if (r->i + 1 >= r->n) {
        return rw_fail(r, "\\ at end of pattern");
    }
    char c = r->p[r->i + 1];
    r->i += 2;
    switch (c) {
    case 'd':
    case 'D':
    case 'w':
    case 'W': {
        char esc[3] = {'\\', c, '\0'};
        *kind = RW_CLASS;
        rw_puts(r, esc);
        return 0;
    }
    case 's':
    case 'S':
        *kind = RW_CLASS;
        if (!in_class) {
            rw_puts(r, c == 's' ? "[" : "[^");
        }
        rw_puts(r, in_class && c == 'S' ? ecma_nonspace : ecma_space);
        if (!in_class) {
            rw_puts(r, "]");
        }
        return 0;
    case 'p':
    case 'P':
        *kind = RW_CLASS;
        return rw_property(r, c == 'P');
    case 'b':
    case 'B':
        if (in_class && c == 'B') {
            return rw_fail(r, "\\B in a character class");
        }
        rw_puts(r, in_class ? "\\x{8}" : c == 'b' ? "\\b" : "\\B");
        return 0;
    case 'f':
    case 'n':
    case 'r':
    case 't': {
        char esc[3] = {'\\', c, '\0'};
        rw_puts(r, esc);
        return 0;
    }
    case 'v':
        rw_code_point(r, 0x0B);
        return 0;
    case 'c':
        if (r->i < r->n &&
            ((r->p[r->i] >= 'a' && r->p[r->i] <= 'z') || (r->p[r->i] >= 'A' && r->p[r->i] <= 'Z'))) {
            rw_code_point(r, (unsigned long)(r->p[r->i++] % 32));
            return 0;
        }
        return rw_fail(r, "\\c must be followed by a letter");
    case 'x': {
        long v = rw_hex(r, 2);
        if (v < 0) {
            return rw_fail(r, "\\x must be followed by two hexadecimal digits");
        }
        rw_code_point(r, (unsigned long)v);
        return 0;
    }
    case 'u':
        if (rw_unicode_escape(r, &cp) != 0) {
            return -1;
        }
        rw_code_point(r, cp);
        return 0;
    case 'k':
        if (in_class) {
            return rw_fail(r, "\\k in a character class");
        }
        return rw_named_backref(r);
    case '0':
        if (r->i < r->n && r->p[r->i] >= '0' && r->p[r->i] <= '9') {
            return rw_fail(r, "octal escapes are not ECMA-262");
        }
        rw_code_point(r, 0);
        return 0;
    default:
        break;
    }
    if (c >= '1' && c <= '9') {
        /* a backreference: \g{N} so that PCRE2 never reads an octal escape */
        size_t start = r->i - 1, len;
        char ref[24];
        if (in_class) {
            return rw_fail(r, "backreference in a character class");
        }
        while (r->i < r->n && r->p[r->i] >= '0' && r->p[r->i] <= '9' && r->i - start < 6) {
            r->i++;
        }
        len = r->i - start;
        snprintf(ref, sizeof ref, "\\g{%.*s}", (int)len, r->p + start);
        rw_puts(r, ref);
        return 0;
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return rw_fail(r, "\\%c is not an ECMA-262 escape", c);
    }
    /* an identity escape: a syntax character (or any other symbol) */
    r->i--;
    rw_puts(r, "\\");
    rw_copy_char(r);
    return 0;
}

/* A character class from '[' to ']'. A class escape may not be an end of
 * a range ("[a-\d]", "[\s-z]"): ECMA-262 refuses it, and \s written out as
 * ranges would silently change its meaning. */
static int rw_class(rw *r)
{
    int prev = -1; /* kind of the last member, -1 if none or a range ended */
    int in_range = 0;
    rw_puts(r, "[");
    r->i++;
    if (r->i < r->n && r->p[r->i] == '^') {
        rw_puts(r, "^");
        r->i++;
    }
    for (;;) {
        int kind = RW_CHAR;
        r->tok = r->i;
        if (r->i >= r->n) {
            return rw_fail(r, "missing ] in character class");
        }
        char c = r->p[r->i];
        if (c == ']') {
            rw_puts(r, "]");
            r->i++;
            return 0;
        }
        if (c == '-' && prev >= 0 && r->i + 1 < r->n && r->p[r->i + 1] != ']') {
            if (prev == RW_CLASS) {
                return rw_fail(r, "a character class escape cannot start a range");
            }
            rw_puts(r, "-");
            r->i++;
            in_range = 1;
            prev = -1;
            continue;
        }
        if (c == '\\') {
            if (rw_escape(r, 1, &kind) != 0) {
                return -1;
            }
        } else if (c == '[' || c == ':' || c == '.' || c == '=') {
            char esc[3] = {'\\', c, '\0'}; /* no POSIX [:alpha:], [.a.] or [=a=] */
            rw_puts(r, esc);
            r->i++;
        } else {
            rw_copy_char(r);
        }
        if (in_range && kind == RW_CLASS) {
            return rw_fail(r, "a character class escape cannot end a range");
        }
        prev = in_range ? -1 : kind;
        in_range = 0;
    }
}

/* The length of a quantifier {n}, {n,} or {n,m} at r->i, 0 if there is
 * none (then '{' is a literal). */
static size_t rw_braces(const rw *r)
{
    size_t i = r->i + 1, digits = 0;
    while (i < r->n && r->p[i] >= '0' && r->p[i] <= '9') {
        i++;
        digits++;
    }
    if (digits == 0) {
        return 0;
    }
    if (i < r->n && r->p[i] == ',') {
        for (i++; i < r->n && r->p[i] >= '0' && r->p[i] <= '9'; i++) {
        }
    }
    return i < r->n && r->p[i] == '}' ? i + 1 - r->i : 0;
}

/* A quantifier of len bytes at r->i, its lazy '?', and no quantifier
 * after it (PCRE2 would read "a*+" as possessive; ECMA-262 refuses it). */
static int rw_quantifier(rw *r, size_t len)
{
    rw_emit(r, r->p + r->i, len);
    r->i += len;
    if (r->i < r->n && r->p[r->i] == '?') {
        rw_puts(r, "?");
        r->i++;
    }
    if (r->i < r->n && (strchr("*+?", r->p[r->i]) || (r->p[r->i] == '{' && rw_braces(r)))) {
        r->tok = r->i;
        return rw_fail(r, "nothing to repeat");
    }
    return 0;
}

/* '(' and what follows it: only ECMA-262's group kinds. */
static int rw_group(rw *r)
{
    const char *q = r->p + r->i;
    size_t left = r->n - r->i;
    if (left >= 2 && q[1] == '*') {
        return rw_fail(r, "nothing to repeat ('(*' is not ECMA-262)");
    }
    if (left < 2 || q[1] != '?') {
        rw_puts(r, "(");
        r->i++;
        return 0;
    }
    size_t len = 0;
    if (left >= 3 && (q[2] == ':' || q[2] == '=' || q[2] == '!')) {
        len = 3;
    } else if (left >= 4 && q[2] == '<' && (q[3] == '=' || q[3] == '!')) {
        len = 4;
    } else if (left >= 4 && q[2] == '<') {
        const char *close = memchr(q + 3, '>', left - 3);
        if (!close) {
            return rw_fail(r, "bad group name");
        }
        len = (size_t)(close - q) + 1; /* the name is checked by PCRE2 */
    } else {
        return rw_fail(r, "'(?%.1s' is not ECMA-262 syntax", left >= 3 ? q + 2 : "");
    }
    rw_emit(r, q, len);
    r->i += len;
    return 0;
}

/* One token of the pattern outside classes. */
static int rw_step(rw *r)
{
    int kind;
    size_t len;
    r->tok = r->i;
    switch (r->p[r->i]) {
    case '\\':
        return rw_escape(r, 0, &kind);
    case '[':
        return rw_class(r);
    case '(':
        return rw_group(r);
    case '.':
        rw_puts(r, "[^\\n\\r\\x{2028}\\x{2029}]");
        r->i++;
        return 0;
    case '*':
    case '+':
    case '?':
        return rw_quantifier(r, 1);
    case '{':
        if ((len = rw_braces(r)) > 0) {
            return rw_quantifier(r, len);
        }
        rw_puts(r, "\\{");
        r->i++;
        return 0;
    case '}':
    case ']':
        rw_puts(r, r->p[r->i] == '}' ? "\\}" : "\\]");
        r->i++;
        return 0;
    default:
        rw_copy_char(r);
        return 0;
    }
}

/* The offset in the schema's pattern of offset out in the rewritten one. */
static size_t rw_origin_of(const rw *r, size_t out)
{
    size_t in = r->n;
    for (size_t k = 0; k < r->norigins && r->origins[k].out <= out; k++) {
        in = r->origins[k].in;
    }
    return out >= r->out.len ? r->n : in;
}

static void rw_free(rw *r)
{
    js_ds_free(&r->out);
    free(r->origins);
}

/* PCRE2 compiled with the limits of a match. */
static js_regex *regex_new(pcre2_code *code)
{
    js_regex *re = calloc(1, sizeof *re);
    pcre2_match_context *mctx = pcre2_match_context_create(NULL);
    if (!re || !mctx) {
        free(re);
        pcre2_match_context_free(mctx);
        return NULL;
    }
    pcre2_set_match_limit(mctx, JS_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(mctx, JS_REGEX_DEPTH_LIMIT);
    pcre2_set_heap_limit(mctx, JS_REGEX_HEAP_LIMIT_KIB);
    re->code = code;
    re->mctx = mctx;
    return re;
}

js_regex *js_regex_compile(const char *pat, size_t n, char *why, size_t whysz)
{
    static const uint32_t options = PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALLOW_EMPTY_CLASS |
                                    PCRE2_MATCH_UNSET_BACKREF | PCRE2_NEVER_UCP | PCRE2_NEVER_BACKSLASH_C;
    rw r;
    memset(&r, 0, sizeof r);
    r.p = pat;
    r.n = n;
    int rc = 0;
    if (n > JS_REGEX_MAX_PATTERN) {
        rc = rw_fail(&r, "pattern longer than %d bytes", JS_REGEX_MAX_PATTERN);
    }
    while (rc == 0 && r.i < r.n) {
        rc = rw_step(&r);
        if (rc == 0 && r.out.len > JS_REGEX_MAX_REWRITTEN) {
            rc = rw_fail(&r, "regular expression too large");
        }
    }
    if (rc == 0 && (r.out.oom || r.oom)) {
        rc = rw_fail(&r, "out of memory");
    }
    if (rc != 0) {
        js_copy_trunc(why, whysz, r.why);
        rw_free(&r);
        return NULL;
    }
    int code_err;
    PCRE2_SIZE err_at;
    pcre2_compile_context *cctx = pcre2_compile_context_create(NULL);
    pcre2_code *code = NULL;
    if (cctx) {
        pcre2_set_max_pattern_length(cctx, JS_REGEX_MAX_REWRITTEN);
        code =
            pcre2_compile((PCRE2_SPTR)(r.out.p ? r.out.p : ""), r.out.len, options, &code_err, &err_at, cctx);
        pcre2_compile_context_free(cctx);
    }
    if (!code) {
        PCRE2_UCHAR msg[120] = "out of memory";
        if (cctx) {
            pcre2_get_error_message(code_err, msg, sizeof msg);
        }
        snprintf(why, whysz, "%s at offset %zu", (const char *)msg, cctx ? rw_origin_of(&r, err_at) : 0);
        rw_free(&r);
        return NULL;
    }
    rw_free(&r);
    js_regex *re = regex_new(code);
    if (!re) {
        pcre2_code_free(code);
        snprintf(why, whysz, "out of memory");
    }
    return re;
}

int js_regex_search(const js_regex *re, const char *s, size_t n, char *why, size_t whysz)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) {
        snprintf(why, whysz, "out of memory");
        return -1;
    }
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, 0, 0, md, re->mctx);
    pcre2_match_data_free(md);
    if (rc >= 0) {
        return 1;
    }
    if (rc == PCRE2_ERROR_NOMATCH) {
        return 0;
    }
    PCRE2_UCHAR msg[120];
    pcre2_get_error_message(rc, msg, sizeof msg);
    snprintf(why, whysz, "%s", (const char *)msg);
    return -1;
}

void js_regex_free(js_regex *re)
{
    if (re) {
        pcre2_code_free(re->code);
        pcre2_match_context_free(re->mctx);
        free(re);
    }
}
