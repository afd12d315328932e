/* exe_path.c - helper programs found from the running program's place. */
#include "ocps/exe_path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The installed libexec directory relative to the installed bin directory
 * (set by the build from the install layout). */
#ifndef OCPS_LIBEXEC_FROM_BIN
#define OCPS_LIBEXEC_FROM_BIN "../libexec/ocps-c"
#endif

void exe_path_find(const char *env, const char *const *places, char *out, size_t len)
{
    const char *value = getenv(env);
    if (value != NULL && *value != '\0') {
        snprintf(out, len, "%s", value);
        return;
    }
    char self[900];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(self, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    for (size_t i = 0; places[i] != NULL; i++) {
        snprintf(out, len, "%s/%s", self, places[i]);
        if (access(out, X_OK) == 0) {
            return;
        }
    }
    out[0] = '\0';
}

void exe_path_runner(char *out, size_t len)
{
    static const char *const places[] = {"ocps-job-runner", OCPS_LIBEXEC_FROM_BIN "/ocps-job-runner",
                                         "../processing/ocps-job-runner", NULL};
    exe_path_find("OCPS_JOB_RUNNER", places, out, len);
    if (out[0] == '\0') {
        snprintf(out, len, "ocps-job-runner");
    }
}
