/*
 * sal_pytext.c - numbers as Python's str() writes them (sal_pytext.h).
 */
#include "ocps/sal_pytext.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sal_py_float_text(double d, char *out, size_t len)
{
    if (isnan(d) || isinf(d)) {
        snprintf(out, len, "%s", isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
        return;
    }
    char sci[40];
    int prec = 0; /* digits after the first */
    for (; prec < 17; prec++) {
        snprintf(sci, sizeof sci, "%.*e", prec, d);
        if (strtod(sci, NULL) == d) {
            break;
        }
    }
    int exp10 = atoi(strchr(sci, 'e') + 1);
    if (exp10 < -4 || exp10 >= 16) {
        snprintf(out, len, "%s", sci);
        return;
    }
    int decimals = prec - exp10 > 0 ? prec - exp10 : 0;
    snprintf(out, len, "%.*f", decimals, d);
    if (decimals == 0) {
        size_t n = strlen(out);
        if (n + 1 < len) {
            snprintf(out + n, len - n, ".0");
        }
    }
}
