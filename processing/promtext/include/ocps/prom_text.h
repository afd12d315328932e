/*
 * prom_text.h - a page of the Prometheus text exposition format (0.0.4)
 * built into a growing buffer: metric families' HELP/TYPE lines, samples
 * written with printf formats, label values escaped. Shared by
 * ocps-engine's /metrics and the CSC's.
 */
#ifndef PROM_TEXT_H
#define PROM_TEXT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct prom_text {
    char *p;     /* the text so far, NUL-terminated */
    size_t len;  /* its length */
    size_t cap;  /* bytes allocated */
    bool failed; /* out of memory: everything after is dropped */
} prom_text;

/* An empty page with `cap` bytes to start with: 0, or -1 out of memory. */
int prom_text_init(prom_text *t, size_t cap);

/* Append printf-formatted text (the buffer grows as needed). */
void prom_text_printf(prom_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append a family's "# HELP name help" and "# TYPE name type" lines. */
void prom_text_family(prom_text *t, const char *name, const char *type, const char *help);

/* The page (malloc'd, the caller's) and its length; NULL if anything
 * failed (then nothing is left to free). */
char *prom_text_finish(prom_text *t, size_t *len);

/* A label value as the format wants it: \\, \" and \n escaped, into out
 * (cut short at its size); returns out. */
const char *prom_label(const char *v, char *out, size_t len);

#endif
