/* ocps_words.c - see ocps_words.h. */
#include "ocps/ocps_words.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

int ocps_words_split(const char *text, ocps_words *w, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->buf = malloc(strlen(text) + 1);
    if (w->buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    const char *s = text;
    char *o = w->buf;
    for (;;) {
        while (blank(*s)) {
            s++;
        }
        if (*s == '\0') {
            return 0;
        }
        if (w->n == OCPS_WORDS_MAX) {
            snprintf(err, errlen, "more than %d words", OCPS_WORDS_MAX);
            ocps_words_free(w);
            return -E2BIG;
        }
        w->word[w->n++] = o;
        while (*s != '\0' && !blank(*s)) {
            if (*s == '\'') {
                const char *end = strchr(s + 1, '\'');
                if (end == NULL) {
                    snprintf(err, errlen, "unterminated single quote");
                    ocps_words_free(w);
                    return -EINVAL;
                }
                memcpy(o, s + 1, (size_t)(end - s - 1));
                o += end - s - 1;
                s = end + 1;
            } else if (*s == '"') {
                s++;
                while (*s != '"') {
                    if (*s == '\0') {
                        snprintf(err, errlen, "unterminated double quote");
                        ocps_words_free(w);
                        return -EINVAL;
                    }
                    if (*s == '\\' && s[1] != '\0' && strchr("\\\"$`\n", s[1]) != NULL) {
                        s++;
                    }
                    *o++ = *s++;
                }
                s++;
            } else if (*s == '\\' && s[1] != '\0') {
                *o++ = s[1];
                s += 2;
            } else {
                *o++ = *s++;
            }
        }
        *o++ = '\0';
    }
}

void ocps_words_free(ocps_words *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}
