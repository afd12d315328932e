/*
 * sal_user.h - the "user@host" identity salobj gives a Remote and uses to
 * recognise its own user in authorization.
 */
#ifndef SAL_USER_H
#define SAL_USER_H

#include <stddef.h>

/* Write "<user>@<host>" as salobj's get_user_host() makes it (the user as
 * getpass.getuser() finds it, the host as socket.getfqdn(): a reverse
 * lookup, so this may wait for the resolver; call it at open, not on the
 * loop) into out: at most 128 characters, the bound of private_identity. */
void sal_user_at_host(char *out, size_t len);

#endif
