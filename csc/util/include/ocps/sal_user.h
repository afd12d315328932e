/*
 * sal_user.h - the "user@host" identity salobj gives a Remote and uses to
 * recognise its own user in authorization.
 */
#ifndef SAL_USER_H
#define SAL_USER_H

#include <stddef.h>

/* Write "<user>@<hostname>" (at most 128 characters, the bound of
 * private_identity) into out. */
void sal_user_at_host(char *out, size_t len);

#endif
