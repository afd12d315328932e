/* prom_text.c - see prom_text.h. */
#include "ocps/prom_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int prom_text_init(prom_text *t, size_t cap)
{
    t->len = 0;
    t->cap = cap > 0 ? cap : 1;
    t->failed = false;
    t->p = malloc(t->cap);
    if (t->p == NULL) {
        t->failed = true;
        return -1;
    }
    t->p[0] = '\0';
    return 0;
}

void prom_text_printf(prom_text *t, const char *fmt, ...)
{
    if (t->failed) {
        return;
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n + 1;
        char *q = realloc(t->p, cap);
        if (q == NULL) {
            t->failed = true;
            return;
        }
        t->p = q;
        t->cap = cap;
    }
}

void prom_text_family(prom_text *t, const char *name, const char *type, const char *help)
{
    prom_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *prom_text_finish(prom_text *t, size_t *len)
{
    if (t->failed) {
        free(t->p);
        t->p = NULL;
        return NULL;
    }
    *len = t->len;
    return t->p;
}

const char *prom_label(const char *v, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = v != NULL ? v : ""; *p != '\0' && o + 3 < len; p++) {
        if (*p == '\\' || *p == '"') {
            out[o++] = '\\';
            out[o++] = *p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *p;
        }
    }
    if (len > 0) {
        out[o] = '\0';
    }
    return out;
}
