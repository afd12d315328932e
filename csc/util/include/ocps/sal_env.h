/*
 * sal_env.h - reading settings from the environment with clear errors.
 */
#ifndef SAL_ENV_H
#define SAL_ENV_H

#include <stddef.h>

/* The integer in environment variable `name`, or `def` when it is unset or
 * empty. A value that is not an integer in [min, max] fails with
 * "<name>=<value> is not <what> (<min>-<max>)". */
int sal_env_int(const char *name, long def, long min, long max, const char *what, long *out, char *err,
                size_t errlen);

#endif
