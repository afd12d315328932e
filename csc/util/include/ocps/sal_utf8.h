/*
 * sal_utf8.h - UTF-8 text: where a character begins and how long a valid
 * one is. SAL strings, log lines and JSON must stay valid UTF-8 when they
 * are checked or shortened.
 */
#ifndef SAL_UTF8_H
#define SAL_UTF8_H

#include <stddef.h>

/* The length (1-4) of the valid UTF-8 character at s, or 0 if none starts
 * there (a stray continuation byte, an overlong form, a surrogate, above
 * U+10FFFF, or a sequence cut by the terminating NUL). */
size_t sal_utf8_char_len(const unsigned char *s);

/* The largest length <= n at which s can be cut without splitting a
 * character: n moved back over continuation bytes. s[n] must be readable
 * (n < the length of s, or s NUL-terminated at n). */
size_t sal_utf8_cut(const char *s, size_t n);

/* s copied into out (outlen > 0 bytes, always NUL-terminated) as text any
 * SAL string field takes: each byte that begins no valid character and
 * each control character but '\n' and '\t' becomes '?', and the copy
 * ends at a character boundary where out is full. Returns its length. */
size_t sal_utf8_sanitize(const char *s, char *out, size_t outlen);

#endif
