/*
 * ocps_words.h - split text into words by POSIX shell quoting rules
 * without any expansion: blanks separate words; '...' quotes literally;
 * "..." quotes with backslash escaping only \ " $ ` and newline; a
 * backslash outside quotes escapes the next character. Nothing is
 * expanded ($VAR, `cmd`, globs, ~ stay literal text) and nothing runs.
 */
#ifndef OCPS_WORDS_H
#define OCPS_WORDS_H

#include <stddef.h>

#define OCPS_WORDS_MAX 512

typedef struct ocps_words {
    char *buf;                  /* one allocation holding every word */
    char *word[OCPS_WORDS_MAX]; /* pointers into buf */
    size_t n;
} ocps_words;

/* Split `text`; fails with a message on an unterminated quote or more than
 * OCPS_WORDS_MAX words. Free with ocps_words_free. */
int ocps_words_split(const char *text, ocps_words *out, char *err, size_t errlen);

/* Release the words. */
void ocps_words_free(ocps_words *w);

#endif
