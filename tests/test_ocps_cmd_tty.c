/*
 * test_ocps_cmd_tty: the commander's interactive mode on a real terminal
 * (tmux): tab completion of command names and --fields, line editing,
 * commands acknowledged, and the history file written on exit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ocps_test_iface.h"
#include "ocps/sal_csc.h"
#include "sal_fixture.h"
#include "test_util.h"

/* A tmux server of our own (-L), so no other session is touched. */
static char sock[64];

static void tmux(const char *a1, const char *a2, const char *a3, const char *a4, const char *a5)
{
    char *argv[] = {"tmux", "-L", sock, (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5, NULL};
    char *out = NULL;
    tu_run(argv, &out);
    free(out);
}

static char *screen(const char *session)
{
    char *argv[] = {"tmux", "-L", sock, "capture-pane", "-p", "-t", (char *)session, NULL};
    char *out = NULL;
    tu_run(argv, &out);
    return out;
}

/* Wait until the pane shows `text`; the screen (malloc'd) or NULL. */
static char *wait_screen(fx *f, const char *session, const char *text, double timeout)
{
    double end = tu_now() + timeout;
    while (tu_now() < end) {
        char *s = screen(session);
        if (s != NULL && strstr(s, text) != NULL) {
            return s;
        }
        free(s);
        fx_run_for(f, 0.1);
    }
    return NULL;
}

static void completion_history_and_commands(void **state)
{
    (void)state;
    fx *f = fx_setup_csc(ocps_test_component(), OCPS_CSC, CYCLONE_CONFIG);
    assert_non_null(f);
    char *home = tu_make_temp_dir();
    char session[64];
    snprintf(session, sizeof session, "ocps%d", (int)getpid());
    snprintf(sock, sizeof sock, "ocps-test-%d", (int)getpid());
    char command[4096];
    snprintf(command, sizeof command,
             "env HOME=%s CYCLONEDDS_URI=%s LSST_DDS_PARTITION_PREFIX=%s OCPS_TRANSPORT=%s %s OCPS:1", home,
             getenv("CYCLONEDDS_URI"), getenv("LSST_DDS_PARTITION_PREFIX"), fx_transport(), OCPS_CMD);
    char *argv[] = {"tmux", "-L",  sock, "new-session", "-d",    "-s", session,
                    "-x",   "160", "-y", "40",          command, NULL};
    char *out = NULL;
    assert_int_equal(tu_run(argv, &out), 0);
    free(out);
    char *s = wait_screen(f, session, "OCPS:1>", 10);
    assert_non_null(s);
    free(s);
    /* "sta" + Tab is ambiguous (start, standby): typing on to "star" + Tab completes */
    tmux("send-keys", "-t", session, "star", "Tab");
    tmux("send-keys", "-t", session, "Enter", NULL);
    s = wait_screen(f, session, "start CMD_COMPLETE", 10);
    assert_non_null(s);
    free(s);
    /* --fields complete too */
    tmux("send-keys", "-t", session, "setLogLevel --le", "Tab");
    tmux("send-keys", "-t", session, "30", "Enter");
    s = wait_screen(f, session, "setLogLevel CMD_COMPLETE", 10);
    assert_non_null(s);
    assert_non_null(strstr(s, "setLogLevel --level 30"));
    free(s);
    tmux("send-keys", "-t", session, "exit", "Enter");
    fx_run_for(f, 1.0);
    tmux("kill-server", NULL, NULL, NULL, NULL);
    char *hist_path = tu_path_join(home, ".ocps_cmd_history");
    char *hist = tu_read_file(hist_path, NULL);
    assert_non_null(hist);
    assert_non_null(strstr(hist, "start"));
    assert_non_null(strstr(hist, "setLogLevel"));
    free(hist);
    free(hist_path);
    tu_remove_tree(home);
    free(home);
    assert_int_equal(fx_teardown(f), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(completion_history_and_commands),
    };
    return cmocka_run_group_tests_name("ocps_cmd_tty", tests, NULL, NULL);
}
