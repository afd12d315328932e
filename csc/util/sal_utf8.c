/* sal_utf8.c - see ocps/sal_utf8.h. */
#include "ocps/sal_utf8.h"

#include <stdbool.h>
#include <string.h>

size_t sal_utf8_char_len(const unsigned char *s)
{
    if (s[0] < 0x80) {
        return 1;
    }
    size_t n = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0) {
        return 0;
    }
    static const unsigned long least[] = {0, 0, 0x80, 0x800, 0x10000};
    unsigned long cp = s[0] & (0x7Fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) { /* also stops at the terminating NUL */
            return 0;
        }
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    return cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ? 0 : n;
}

size_t sal_utf8_sanitize(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0';) {
        size_t n = sal_utf8_char_len(p);
        bool bad = n == 0 || (*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7F;
        n = bad ? 1 : n; /* a bad byte becomes one '?' */
        if (o + n >= outlen) {
            break;
        }
        memcpy(out + o, bad ? "?" : (const char *)p, n);
        o += n;
        p += n;
    }
    out[o] = '\0';
    return o;
}

size_t sal_utf8_cut(const char *s, size_t n)
{
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) { /* s[n] continues a character */
        n--;
    }
    return n;
}
