/*
 * test_csc_auth: authorization as salobj 7.0-7.6.0 does it, for an
 * interface with setAuthList/authList (ocps-csc built from ts_xml 12) and
 * LSST_DDS_ENABLE_AUTHLIST=1: users must be self or listed, other
 * identities are refused only when listed, with salobj's NOPERM messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ocps_test_iface.h"
#include "ocps/sal_auth.h"
#include "ocps/sal_csc.h"
#include "sal_fixture.h"
#include "test_util.h"

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fx_env(CYCLONE_CONFIG);
    setenv("LSST_DDS_ENABLE_AUTHLIST", "1", 1);
    if (fx_open(f, ocps_test_component(), 1, NULL) != 0) {
        return -1;
    }
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0.2", "1", NULL};
    if (fx_start_csc(f, argv) != 0) {
        return -1;
    }
    unsetenv("LSST_DDS_ENABLE_AUTHLIST");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    int rc = fx_close(*state);
    free(*state);
    return rc;
}

/* Send `cmd` as `identity`; returns the ack, result in result. */
static int command_as(const char *identity, const char *cmd, char *result, size_t len)
{
    fx other;
    assert_int_equal(fx_open(&other, ocps_test_component(), 1, identity), 0);
    int ack = fx_command(&other, cmd, NULL, 10, result, len);
    other.csc_pid = -1;
    fx_close(&other);
    return ack;
}

static void set_auth_list(fx *f, const char *users, const char *cscs)
{
    int t = sal_remote_command_topic(f->remote, "setAuthList");
    void *s = sal_remote_new_command(f->remote, "setAuthList");
    char err[256];
    sal_sample_set_string(&f->comp->topics[t], s, "authorizedUsers", users, err, sizeof err);
    sal_sample_set_string(&f->comp->topics[t], s, "nonAuthorizedCSCs", cscs, err, sizeof err);
    char result[512];
    assert_int_equal(fx_command(f, "setAuthList", s, 10, result, sizeof result), SAL_CMD_COMPLETE);
    sal_sample_free(&f->comp->topics[t], s);
}

static const char *auth_field(fx *f, long i, const char *field)
{
    return sal_sample_get_string(&f->comp->topics[f->records[i].topic], f->records[i].sample, field);
}

typedef struct auth_expect {
    size_t from;
    const char *users;
    const char *cscs;
} auth_expect;

static bool auth_seen(fx *f, void *arg)
{
    auth_expect *e = arg;
    int t = sal_component_find_topic(f->comp, "logevent_authList");
    for (size_t i = e->from; i < f->nrecords; i++) {
        if (f->records[i].topic == t && strcmp(auth_field(f, (long)i, "authorizedUsers"), e->users) == 0 &&
            strcmp(auth_field(f, (long)i, "nonAuthorizedCSCs"), e->cscs) == 0) {
            return true;
        }
    }
    return false;
}

/* Wait for an authList with these fields written after record `from`
 * (late-joiner re-publications of older values may come in between). */
static bool wait_auth_list(fx *f, size_t from, const char *users, const char *cscs)
{
    auth_expect e = {from, users, cscs};
    return fx_run_until(f, auth_seen, &e, 5);
}

static void users_must_be_listed_and_cscs_must_not_be(void **state)
{
    fx *f = *state;
    char result[1024];
    long first = fx_wait_event(f, "logevent_authList", 0, 15);
    assert_true(first >= 0);
    assert_string_equal(auth_field(f, first, "authorizedUsers"), "");
    assert_string_equal(auth_field(f, first, "nonAuthorizedCSCs"), "");
    assert_true(fx_wait_event(f, "logevent_summaryState", 0, 15) >= 0);

    sal_auth me;
    sal_auth_init(&me);
    char expect[1024];
    snprintf(expect, sizeof expect,
             "Not authorized: User identity 'alice@example' not self (%s) and not in set()", me.self);
    assert_int_equal(command_as("alice@example", "start", result, sizeof result), SAL_CMD_NOPERM);
    assert_string_equal(result, expect);

    /* a CSC identity is allowed unless listed */
    assert_int_equal(command_as("Script:5", "start", result, sizeof result), SAL_CMD_COMPLETE);

    size_t mark = f->nrecords;
    set_auth_list(f, " alice@example,bob@example ,, alice@example", "Script:5:0,LOVE");
    assert_true(wait_auth_list(f, mark, "alice@example, bob@example", "LOVE, Script:5"));

    assert_int_equal(command_as("alice@example", "enable", result, sizeof result), SAL_CMD_COMPLETE);
    assert_int_equal(command_as("Script:5", "disable", result, sizeof result), SAL_CMD_NOPERM);
    assert_string_equal(result, "Not authorized: CSC identity 'Script:5' in {'LOVE', 'Script:5'}");
    /* exact match: Script:6 is not Script:5 */
    assert_int_equal(command_as("Script:6", "disable", result, sizeof result), SAL_CMD_COMPLETE);

    /* "-" removes, "+" adds */
    mark = f->nrecords;
    set_auth_list(f, "-alice@example", "+Script:7");
    assert_true(wait_auth_list(f, mark, "bob@example", "LOVE, Script:5, Script:7"));
    assert_int_equal(command_as("alice@example", "standby", result, sizeof result), SAL_CMD_NOPERM);
    /* the CSC's own user is always allowed */
    assert_int_equal(fx_command(f, "standby", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    sal_auth_fini(&me);
}

/* The longest lists (64 entries of 128 characters) are shown whole in
 * authList's text, not cut in the middle of a name. */
static void longest_lists_formatted_whole(void **state)
{
    (void)state;
    sal_auth a;
    sal_auth_init(&a);
    static char users[SAL_AUTH_LIST_TEXT_MAX];
    static char cscs[SAL_AUTH_LIST_TEXT_MAX];
    size_t used = 0;
    for (int i = 0; i < SAL_AUTH_MAX; i++) {
        char entry[SAL_AUTH_ENTRY_MAX + 1];
        int n = snprintf(entry, sizeof entry, "user%02d@", i);
        memset(entry + n, 'h', SAL_AUTH_ENTRY_MAX - (size_t)n);
        entry[SAL_AUTH_ENTRY_MAX] = '\0';
        used += (size_t)snprintf(users + used, sizeof users - used, "%s%s", i ? ", " : "", entry);
    }
    char err[256];
    assert_int_equal(sal_auth_update(&a, users, "", err, sizeof err), 0);
    memset(users, 0, sizeof users);
    sal_auth_format(&a, users, sizeof users, cscs, sizeof cscs);
    assert_int_equal(strlen(users), SAL_AUTH_MAX * SAL_AUTH_ENTRY_MAX + (SAL_AUTH_MAX - 1) * 2);
    assert_non_null(strstr(users, "user63@hhh"));
    assert_string_equal(cscs, "");
    sal_auth_fini(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(users_must_be_listed_and_cscs_must_not_be, setup, teardown),
        cmocka_unit_test(longest_lists_formatted_whole),
    };
    return cmocka_run_group_tests_name("csc_auth", tests, NULL, NULL);
}
