/*
 * test_csc_valgrind: the CSC's main path (start-up, commands through a
 * full state cycle, logLevel, exitControl and shutdown) under valgrind
 * memcheck: no invalid accesses and no definite leaks.
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
#include "ocps/sal_csc.h"
#include "sal_fixture.h"
#include "test_util.h"

static void state_cycle_under_memcheck(void **state)
{
    (void)state;
    fx f;
    fx_env(CYCLONE_CONFIG);
    assert_int_equal(fx_open(&f, ocps_test_component(), 1, NULL), 0);
    char *argv[] = {"valgrind",
                    "--quiet",
                    "--leak-check=full",
                    "--errors-for-leak-kinds=definite",
                    "--show-leak-kinds=definite",
                    "--error-exitcode=99",
                    OCPS_CSC,
                    "--duplicate-check",
                    "0.5",
                    "1",
                    NULL};
    assert_int_equal(fx_start_csc(&f, argv), 0);
    assert_true(fx_wait_event(&f, "logevent_summaryState", 0, 60) >= 0);
    const char *cycle[] = {"start", "enable", "setLogLevel", "disable", "standby", "exitControl"};
    for (size_t i = 0; i < sizeof cycle / sizeof cycle[0]; i++) {
        char result[512];
        int ack = fx_command(&f, cycle[i], NULL, 30, result, sizeof result);
        if (ack != SAL_CMD_COMPLETE) {
            fail_msg("%s: %s %s", cycle[i], sal_ack_name(ack), result);
        }
    }
    int status = tu_wait_exit(f.csc_pid, 60);
    char *log = tu_read_file(f.log_path, NULL);
    if (status != 0) {
        fail_msg("ocps-csc under valgrind exited %d:\n%s", status, log ? log : "");
    }
    free(log);
    f.csc_pid = -1;
    assert_int_equal(fx_close(&f), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(state_cycle_under_memcheck),
    };
    return cmocka_run_group_tests_name("csc_valgrind", tests, NULL, NULL);
}
