/* sal_user.c - see sal_user.h. */
#include "sal_user.h"

#include <pwd.h>
#include <stdio.h>
#include <unistd.h>

void sal_user_at_host(char *out, size_t len)
{
    struct passwd *pw = getpwuid(getuid());
    char host[65] = "localhost";
    if (gethostname(host, sizeof host) != 0) {
        snprintf(host, sizeof host, "localhost");
    }
    host[sizeof host - 1] = '\0';
    char id[129];
    snprintf(id, sizeof id, "%.63s@%.64s", pw ? pw->pw_name : "unknown", host);
    snprintf(out, len, "%s", id);
}
