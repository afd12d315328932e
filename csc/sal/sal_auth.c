/* sal_auth.c - see sal_auth.h. */
#include "ocps/sal_auth.h"

#include <errno.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ocps/sal_sample.h"
#include "ocps/sal_user.h"

bool sal_auth_wanted(const sal_component_info *comp)
{
    return sal_component_find_topic(comp, "command_setAuthList") >= 0 &&
           sal_component_find_topic(comp, "logevent_authList") >= 0;
}

bool sal_auth_env_enabled(void)
{
    const char *v = getenv("LSST_DDS_ENABLE_AUTHLIST");
    if (v == NULL || strcmp(v, "0") == 0 || *v == '\0') {
        return false;
    }
    if (strcmp(v, "1") != 0) {
        fprintf(stderr, "WARNING: LSST_DDS_ENABLE_AUTHLIST=%s is not 0 or 1; authorization disabled\n", v);
        return false;
    }
    return true;
}

void sal_auth_init(sal_auth *a)
{
    memset(a, 0, sizeof *a);
    sal_user_at_host(a->self, sizeof a->self);
}

static void free_list(char **list, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        free(list[i]);
    }
    *n = 0;
}

void sal_auth_fini(sal_auth *a)
{
    free_list(a->users, &a->nusers);
    free_list(a->cscs, &a->ncscs);
}

static int cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static bool contains(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i], s) == 0) {
            return true;
        }
    }
    return false;
}

/* Parse "[+|-] a, b, c" into op and trimmed, de-duplicated items. */
static int parse_list(const char *text, char *op, char items[][SAL_AUTH_ENTRY_MAX + 1], size_t *n, bool csc,
                      char *err, size_t errlen)
{
    *n = 0;
    *op = '=';
    if (!sal_text_valid(text, 4 * SAL_AUTH_LIST_TEXT_MAX, NULL)) { /* room for blanks */
        snprintf(err, errlen, "auth list is not valid text");
        return -EINVAL;
    }
    while (*text == ' ') {
        text++;
    }
    if (*text == '+' || *text == '-') {
        *op = *text++;
    }
    const char *p = text;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *s = p;
        while (len > 0 && (*s == ' ' || *s == '\t')) {
            s++, len--;
        }
        while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
            len--;
        }
        if (len > SAL_AUTH_ENTRY_MAX) {
            snprintf(err, errlen, "auth list entry longer than 128 characters");
            return -E2BIG;
        }
        if (len > 0) {
            if (*n >= SAL_AUTH_MAX) {
                snprintf(err, errlen, "auth list has more than %d entries", SAL_AUTH_MAX);
                return -E2BIG;
            }
            memcpy(items[*n], s, len);
            items[*n][len] = '\0';
            if (csc && len > 2 && strcmp(items[*n] + len - 2, ":0") == 0) {
                items[*n][len - 2] = '\0';
            }
            bool dup = false;
            for (size_t i = 0; i < *n; i++) {
                dup = dup || strcmp(items[i], items[*n]) == 0;
            }
            if (!dup) {
                (*n)++;
            }
        }
        p = comma ? comma + 1 : p + strlen(p);
    }
    return 0;
}

/* Apply op to a list into `out` (new strings); 0 or -E2BIG. */
static int apply(char *const *cur, size_t ncur, char op, char items[][SAL_AUTH_ENTRY_MAX + 1], size_t nitems,
                 const char *skip, char **out, size_t *nout)
{
    *nout = 0;
    if (op != '=') {
        for (size_t i = 0; i < ncur; i++) {
            bool removed = false;
            for (size_t k = 0; op == '-' && k < nitems; k++) {
                removed = removed || strcmp(cur[i], items[k]) == 0;
            }
            if (!removed) {
                out[(*nout)++] = strdup(cur[i]);
            }
        }
    }
    if (op != '-') {
        for (size_t k = 0; k < nitems; k++) {
            if ((skip != NULL && strcmp(items[k], skip) == 0) || contains(out, *nout, items[k])) {
                continue;
            }
            if (*nout >= SAL_AUTH_MAX) {
                return -E2BIG;
            }
            out[(*nout)++] = strdup(items[k]);
        }
    }
    qsort(out, *nout, sizeof *out, cmp);
    return 0;
}

int sal_auth_update(sal_auth *a, const char *users, const char *cscs, char *err, size_t errlen)
{
    char(*ui)[SAL_AUTH_ENTRY_MAX + 1] = malloc(sizeof(char[SAL_AUTH_MAX][SAL_AUTH_ENTRY_MAX + 1]));
    char(*ci)[SAL_AUTH_ENTRY_MAX + 1] = malloc(sizeof(char[SAL_AUTH_MAX][SAL_AUTH_ENTRY_MAX + 1]));
    char uop;
    char cop;
    size_t nu;
    size_t nc;
    int rc = -ENOMEM;
    char *nusers[SAL_AUTH_MAX];
    char *ncscs[SAL_AUTH_MAX];
    size_t nnu = 0;
    size_t nnc = 0;
    err[0] = '\0';
    if (ui == NULL || ci == NULL) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    rc = parse_list(users, &uop, ui, &nu, false, err, errlen);
    if (rc == 0) {
        rc = parse_list(cscs, &cop, ci, &nc, true, err, errlen);
    }
    if (rc == 0) {
        rc = apply(a->users, a->nusers, uop, ui, nu, a->self, nusers, &nnu);
    }
    if (rc == 0) {
        rc = apply(a->cscs, a->ncscs, cop, ci, nc, NULL, ncscs, &nnc);
    }
    if (rc != 0) {
        if (rc == -E2BIG && err[0] == '\0') {
            snprintf(err, errlen, "auth list would have more than %d entries", SAL_AUTH_MAX);
        }
        free_list(nusers, &nnu);
        free_list(ncscs, &nnc);
        goto done;
    }
    sal_auth_fini(a);
    memcpy(a->users, nusers, nnu * sizeof *nusers);
    a->nusers = nnu;
    memcpy(a->cscs, ncscs, nnc * sizeof *ncscs);
    a->ncscs = nnc;
done:
    free(ui);
    free(ci);
    return rc;
}

/* Python's repr of a set of strings: {'a', 'b'} or set(). */
static void set_repr(char *const *list, size_t n, char *out, size_t len)
{
    if (n == 0) {
        snprintf(out, len, "set()");
        return;
    }
    size_t used = 0;
    used += (size_t)snprintf(out + used, len - used, "{");
    for (size_t i = 0; i < n && used < len; i++) {
        used += (size_t)snprintf(out + used, len - used, "%s'%s'", i ? ", " : "", list[i]);
    }
    if (used < len) {
        snprintf(out + used, len - used, "}");
    }
}

bool sal_auth_allowed(const sal_auth *a, const char *identity, char *why, size_t whylen)
{
    char set[2048];
    if (strchr(identity, '@') != NULL) {
        if (strcmp(identity, a->self) == 0 || contains(a->users, a->nusers, identity)) {
            return true;
        }
        set_repr(a->users, a->nusers, set, sizeof set);
        snprintf(why, whylen, "Not authorized: User identity '%s' not self (%s) and not in %s", identity,
                 a->self, set);
        return false;
    }
    if (!contains(a->cscs, a->ncscs, identity)) {
        return true;
    }
    set_repr(a->cscs, a->ncscs, set, sizeof set);
    snprintf(why, whylen, "Not authorized: CSC identity '%s' in %s", identity, set);
    return false;
}

static void join(char *const *list, size_t n, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        used += (size_t)snprintf(out + used, len - used, "%s%s", i ? ", " : "", list[i]);
    }
}

void sal_auth_format(const sal_auth *a, char *users, size_t ulen, char *cscs, size_t clen)
{
    join(a->users, a->nusers, users, ulen);
    join(a->cscs, a->ncscs, cscs, clen);
}
