/*
 * sal_pytext.h - numbers as Python's str() writes them, for values that
 * Python peers (the Python OCPS, uws-api-server's job template) turned
 * into text: what they wrote is what we write.
 */
#ifndef SAL_PYTEXT_H
#define SAL_PYTEXT_H

#include <stddef.h>

/* d as Python's str(float) (its repr) into out (len > 0, always
 * terminated): the fewest digits that read back as the same double,
 * positional for 1e-4 <= |d| < 1e16 with ".0" when whole (100.0,
 * 0.0001), else d.ddde+XX (1e-05, 1.5e+16); "inf", "-inf", "nan". */
void sal_py_float_text(double d, char *out, size_t len);

#endif
