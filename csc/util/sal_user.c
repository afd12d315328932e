/* sal_user.c - see sal_user.h. */
#include "ocps/sal_user.h"

#include <pwd.h>
#include <stdio.h>
#include <unistd.h>

void sal_user_at_host(char *out, size_t len)
{
    /* getpwuid_r: Remotes may open on several threads of one process */
    struct passwd entry;
    struct passwd *pw = NULL;
    char buf[2048];
    if (getpwuid_r(getuid(), &entry, buf, sizeof buf, &pw) != 0) {
        pw = NULL;
    }
    char host[65] = "localhost";
    if (gethostname(host, sizeof host) != 0) {
        snprintf(host, sizeof host, "localhost");
    }
    host[sizeof host - 1] = '\0';
    char id[129];
    snprintf(id, sizeof id, "%.63s@%.64s", pw ? pw->pw_name : "unknown", host);
    snprintf(out, len, "%s", id);
}
