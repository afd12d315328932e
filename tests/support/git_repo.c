/* git_repo.c - see git_repo.h. */
#include "git_repo.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "test_util.h"

void git_repo_run(const char *dir, const char *a1, const char *a2, const char *a3)
{
    char *argv[] = {
        "git",      "-C",       (char *)dir, "-c", "user.email=test@example.org", "-c", "user.name=test",
        (char *)a1, (char *)a2, (char *)a3,  NULL};
    char *out = NULL;
    int rc = tu_run(argv, &out);
    if (rc != 0) {
        fail_msg("git %s: %s", a1, out ? out : "");
    }
    free(out);
}
