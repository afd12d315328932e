/*
 * exe_path.h - where the programs find their helper programs: an
 * environment variable, else paths relative to the running program's own
 * directory (so that a moved install tree, a package root or a container
 * works), in the install tree as in the build tree.
 */
#ifndef OCPS_EXE_PATH_H
#define OCPS_EXE_PATH_H

#include <stddef.h>

/* $<env> when set and not empty, else the first of `places` (NULL-
 * terminated, each relative to this program's directory, found through
 * /proc/self/exe) that is executable, into out; else "". */
void exe_path_find(const char *env, const char *const *places, char *out, size_t len);

/* ocps-job-runner: $OCPS_JOB_RUNNER, next to this program, in the
 * installed libexec directory (bin/../libexec/ocps-c), or in the build
 * tree's processing/ directory; "ocps-job-runner" when none is there (it
 * is then named in the error of the first job). */
void exe_path_runner(char *out, size_t len);

#endif
