/*
 * git_repo.h - git in a test's configuration repository, for the cmocka
 * tests that read configuration at a git ref.
 */
#ifndef GIT_REPO_H
#define GIT_REPO_H

/* Run `git -C dir a1 a2 a3` (a2, a3 may be NULL) as a test identity; on a
 * non-zero exit status fail the test with git's output. */
void git_repo_run(const char *dir, const char *a1, const char *a2, const char *a3);

#endif
