/*
 * sal_auth.h - command authorization as salobj 7.0-7.6.0 does it, for
 * interfaces that have setAuthList/authList: users (identities with '@')
 * must be the CSC's own user@host or listed in authorizedUsers; other
 * identities (CSCs, "LOVE", "Script:5") are allowed unless listed in
 * nonAuthorizedCSCs (exact match).
 */
#ifndef SAL_AUTH_H
#define SAL_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "ocps/sal_interface.h"

#define SAL_AUTH_MAX 64
/* The longest entry, and the longest list as authList shows it (every
 * entry joined by ", "): sal_auth_format never cuts a list in buffers of
 * this size. */
#define SAL_AUTH_ENTRY_MAX 128
#define SAL_AUTH_LIST_TEXT_MAX (SAL_AUTH_MAX * (SAL_AUTH_ENTRY_MAX + 2) + 1)

typedef struct sal_auth {
    char self[256];            /* this process's user@host */
    char *users[SAL_AUTH_MAX]; /* authorized users, sorted */
    size_t nusers;
    char *cscs[SAL_AUTH_MAX]; /* non-authorized CSCs, sorted */
    size_t ncscs;
} sal_auth;

/* Does the interface have setAuthList and authList? */
bool sal_auth_wanted(const sal_component_info *comp);

/* Is LSST_DDS_ENABLE_AUTHLIST set to "1"? (Other values except "0" warn.) */
bool sal_auth_env_enabled(void);

/* Empty lists; self = user@host of this process. */
void sal_auth_init(sal_auth *a);

/* Free the lists. */
void sal_auth_fini(sal_auth *a);

/* Apply setAuthList fields: "+a, b" adds, "-a" removes, otherwise replaces.
 * Fails (lists unchanged) on invalid text or too many entries. */
int sal_auth_update(sal_auth *a, const char *users, const char *cscs, char *err, size_t errlen);

/* May `identity` command the CSC? If not, `why` gets salobj's ack result
 * ("Not authorized: ..."). */
bool sal_auth_allowed(const sal_auth *a, const char *identity, char *why, size_t whylen);

/* The authList fields: each list sorted and joined by ", ". */
void sal_auth_format(const sal_auth *a, char *users, size_t ulen, char *cscs, size_t clen);

#endif
