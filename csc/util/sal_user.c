/* sal_user.c - see sal_user.h. */
#define _GNU_SOURCE /* gethostbyaddr_r */
#include "ocps/sal_user.h"

#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Python's getpass.getuser(): LOGNAME, USER, LNAME, USERNAME, else the
 * password entry of the real uid. */
static void user_name(char *out, size_t len)
{
    static const char *const vars[] = {"LOGNAME", "USER", "LNAME", "USERNAME"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v != NULL && v[0] != '\0') {
            snprintf(out, len, "%s", v);
            return;
        }
    }
    /* getpwuid_r: Remotes may open on several threads of one process */
    struct passwd entry;
    struct passwd *pw = NULL;
    char buf[2048];
    if (getpwuid_r(getuid(), &entry, buf, sizeof buf, &pw) != 0) {
        pw = NULL;
    }
    snprintf(out, len, "%s", pw ? pw->pw_name : "unknown");
}

/* Python's socket.getfqdn(): the host name's address looked up in
 * reverse; of that name and its aliases the first with a dot, else that
 * name; the host name itself when a lookup fails. */
static void fqdn(char *out, size_t len)
{
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0) {
        snprintf(host, sizeof host, "localhost");
    }
    host[sizeof host - 1] = '\0';
    snprintf(out, len, "%s", host);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL) {
        return;
    }
    const void *addr = NULL;
    socklen_t alen = 0;
    if (res->ai_family == AF_INET) {
        addr = &((const struct sockaddr_in *)(const void *)res->ai_addr)->sin_addr;
        alen = sizeof(struct in_addr);
    } else if (res->ai_family == AF_INET6) {
        addr = &((const struct sockaddr_in6 *)(const void *)res->ai_addr)->sin6_addr;
        alen = sizeof(struct in6_addr);
    }
    struct hostent he;
    struct hostent *hp = NULL;
    char buf[8192];
    int herr = 0;
    if (addr != NULL && gethostbyaddr_r(addr, alen, res->ai_family, &he, buf, sizeof buf, &hp, &herr) == 0 &&
        hp != NULL && hp->h_name != NULL) {
        const char *name = hp->h_name;
        if (strchr(name, '.') == NULL) {
            for (char **a = hp->h_aliases; a != NULL && *a != NULL; a++) {
                if (strchr(*a, '.') != NULL) {
                    name = *a;
                    break;
                }
            }
        }
        snprintf(out, len, "%s", name);
    }
    freeaddrinfo(res);
}

void sal_user_at_host(char *out, size_t len)
{
    char user[256];
    char host[256];
    user_name(user, sizeof user);
    fqdn(host, sizeof host);
    /* private_identity is string<128>: the user at most 63 bytes, the
     * host what is left */
    char id[129];
    int n = snprintf(id, sizeof id, "%.63s@", user);
    int room = (int)sizeof id - 1 - n;
    snprintf(id + n, sizeof id - (size_t)n, "%.*s", room, host);
    snprintf(out, len, "%s", id);
}
