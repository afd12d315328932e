/*
 * json_schema_format.c - the "format" keyword: the formats draft 7 names
 * that this validator checks (date-time, date, time, email, ipv4, ipv6,
 * hostname, json-pointer, regex, uri, uri-reference); others pass.
 */
#include "json_schema__internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Formats                                                              */

static int ndigits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int fmt_date(const char *s, size_t n)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n != 10 || s[4] != '-' || s[7] != '-') {
        return 0;
    }
    int y = ndigits(s, 4), m = ndigits(s + 5, 2), d = ndigits(s + 8, 2);
    if (y < 0 || m < 1 || m > 12 || d < 1) {
        return 0;
    }
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

/* RFC 3339 full-time: HH:MM:SS[.frac](Z|+HH:MM), leap second allowed. */
static int fmt_time(const char *s, size_t n)
{
    if (n < 9 || s[2] != ':' || s[5] != ':') {
        return 0;
    }
    int h = ndigits(s, 2), m = ndigits(s + 3, 2), sec = ndigits(s + 6, 2);
    if (h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 60) {
        return 0;
    }
    size_t i = 8;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < n && isdigit((unsigned char)s[i])) {
            i++;
        }
        if (i == start) {
            return 0;
        }
    }
    if (i + 1 == n && (s[i] == 'Z' || s[i] == 'z')) {
        return 1;
    }
    if (i + 6 != n || (s[i] != '+' && s[i] != '-') || s[i + 3] != ':') {
        return 0;
    }
    int oh = ndigits(s + i + 1, 2), om = ndigits(s + i + 4, 2);
    return oh >= 0 && oh <= 23 && om >= 0 && om <= 59;
}

static int fmt_date_time(const char *s, size_t n)
{
    return n > 11 && (s[10] == 'T' || s[10] == 't') && fmt_date(s, 10) && fmt_time(s + 11, n - 11);
}

/* Loose: a non-empty local part, '@', a domain, no spaces. */
static int fmt_email(const char *s, size_t n)
{
    const char *at = strrchr(s, '@');
    if (!at || at == s || (size_t)(at - s) + 1 >= n) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* Dotted quad, no leading zeros. */
static int fmt_ipv4(const char *s, size_t n)
{
    int parts = 0;
    size_t i = 0;
    while (i <= n) {
        size_t start = i;
        int v = 0;
        while (i < n && isdigit((unsigned char)s[i]) && i - start < 3) {
            v = v * 10 + (s[i++] - '0');
        }
        size_t len = i - start;
        if (len == 0 || v > 255 || (len > 1 && s[start] == '0')) {
            return 0;
        }
        parts++;
        if (i == n) {
            break;
        }
        if (s[i] != '.' || parts == 4) {
            return 0;
        }
        i++;
    }
    return parts == 4;
}

static int fmt_ipv6(const char *s, size_t n)
{
    unsigned char buf[16];
    return n <= 45 && inet_pton(AF_INET6, s, buf) == 1;
}

/* RFC 1123: labels of 1-63 letters, digits and inner hyphens, 253 in all. */
static int fmt_hostname(const char *s, size_t n)
{
    if (n > 0 && s[n - 1] == '.') {
        n--;
    }
    if (n == 0 || n > 253) {
        return 0;
    }
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-') {
                return 0;
            }
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)s[i]) && s[i] != '-') {
            return 0;
        }
        if (label == 0 && s[i] == '-') {
            return 0;
        }
        label++;
    }
    return 1;
}

static int fmt_json_pointer(const char *s, size_t n)
{
    if (n > 0 && s[0] != '/') {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '~' && (i + 1 >= n || (s[i + 1] != '0' && s[i + 1] != '1'))) {
            return 0;
        }
    }
    return 1;
}

/* An ECMA-262 regular expression, by the rules "pattern" compiles with. */
static int fmt_regex(const char *s, size_t n)
{
    char why[160];
    js_regex *re = js_regex_compile(s, n, why, sizeof why);
    int ok = re != NULL;
    js_regex_free(re);
    return ok;
}

static int uri_char(int c, const char *extra)
{
    if (c <= 0 || c >= 0x7f) {
        return 0;
    }
    return isalnum(c) || strchr("-._~!$&'()*+,;=", c) || strchr(extra, c);
}

/* Characters of s[0..n): unreserved, sub-delims, %HH and extra. */
static int uri_chars(const char *s, size_t n, const char *extra)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n || js_hexval((unsigned char)s[i + 1]) < 0 ||
                js_hexval((unsigned char)s[i + 2]) < 0) {
                return 0;
            }
            i += 2;
        } else if (!uri_char((unsigned char)s[i], extra)) {
            return 0;
        }
    }
    return 1;
}

/* host[:port], the host an IP literal in brackets or reg-name chars. */
static int uri_host_port(const char *s, size_t n)
{
    size_t hend = n;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) {
            return 0;
        }
        size_t len = (size_t)(close - s) - 1;
        char ip[64];
        if (len >= sizeof ip) {
            return 0;
        }
        memcpy(ip, s + 1, len);
        ip[len] = '\0';
        if (!(len > 0 && (ip[0] == 'v' || ip[0] == 'V')) && !fmt_ipv6(ip, len)) {
            return 0;
        }
        hend = (size_t)(close - s) + 1;
        if (hend < n && s[hend] != ':') {
            return 0;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon) {
            hend = (size_t)(colon - s);
        }
        if (!uri_chars(s, hend, "")) {
            return 0;
        }
    }
    for (size_t i = hend + 1; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static int uri_authority(const char *s, size_t n)
{
    size_t at = n;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '@') {
            at = i;
        }
    }
    if (at < n) {
        if (!uri_chars(s, at, ":")) {
            return 0;
        }
        return uri_host_port(s + at + 1, n - at - 1);
    }
    return uri_host_port(s, n);
}

/* RFC 3986 URI (scheme required) or URI-reference (relative_ok). */
static int fmt_uri_any(const char *s, size_t n, int relative_ok)
{
    size_t i = 0;
    if (isalpha((unsigned char)s[0])) {
        i = 1;
        while (i < n && (isalnum((unsigned char)s[i]) || strchr("+-.", s[i]))) {
            i++;
        }
    }
    if (i > 0 && i < n && s[i] == ':') {
        i++;
    } else {
        if (!relative_ok) {
            return 0;
        }
        size_t seg = strcspn(s, "/?#");
        if (memchr(s, ':', seg)) {
            return 0;
        }
        i = 0;
    }
    const char *rest = s + i;
    if (rest[0] == '/' && rest[1] == '/') {
        size_t len = strcspn(rest + 2, "/?#");
        if (!uri_authority(rest + 2, len)) {
            return 0;
        }
        rest += 2 + len;
    }
    size_t plen = strcspn(rest, "?#");
    if (!uri_chars(rest, plen, ":@/")) {
        return 0;
    }
    rest += plen;
    if (*rest == '?') {
        size_t qlen = strcspn(rest + 1, "#");
        if (!uri_chars(rest + 1, qlen, ":@/?")) {
            return 0;
        }
        rest += 1 + qlen;
    }
    if (*rest == '#') {
        return uri_chars(rest + 1, strlen(rest + 1), ":@/?");
    }
    return 1;
}

static int fmt_uri(const char *s, size_t n)
{
    return fmt_uri_any(s, n, 0);
}

static int fmt_uri_reference(const char *s, size_t n)
{
    return fmt_uri_any(s, n, 1);
}

static const struct format {
    const char *name;
    int (*check)(const char *s, size_t n);
} formats[] = {
    {"date-time", fmt_date_time},
    {"date", fmt_date},
    {"time", fmt_time},
    {"email", fmt_email},
    {"ipv4", fmt_ipv4},
    {"ipv6", fmt_ipv6},
    {"hostname", fmt_hostname},
    {"json-pointer", fmt_json_pointer},
    {"regex", fmt_regex},
    {"uri", fmt_uri},
    {"uri-reference", fmt_uri_reference},
};

/* 1 if s conforms to the format (or the format is unknown). */
int js_format_ok(const char *format, const json_t *str)
{
    const char *s = json_string_value(str);
    size_t n = json_string_length(str);
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (strcmp(formats[i].name, format) == 0) {
            return strlen(s) == n && formats[i].check(s, n);
        }
    }
    return 1;
}
