/* sal_env.c - see sal_env.h. */
#include "ocps/sal_env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int sal_env_int(const char *name, long def, long min, long max, const char *what, long *out, char *err,
                size_t errlen)
{
    const char *v = getenv(name);
    *out = def;
    if (v == NULL || *v == '\0') {
        return 0;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || errno != 0 || n < min || n > max) {
        snprintf(err, errlen, "%s=%s is not %s (%ld-%ld)", name, v, what, min, max);
        return -EINVAL;
    }
    *out = n;
    return 0;
}
