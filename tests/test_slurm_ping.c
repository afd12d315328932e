/*
 * test_slurm_ping: the judgement of `scontrol ping`'s answer (no cluster
 * needed): the primary up, the primary down with a backup up (Slurm runs
 * on its backup: start must be accepted), every controller down.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ocps/slurm_ping.h"

static void primary_up(void **state)
{
    (void)state;
    char msg[512];
    assert_int_equal(slurm_ping_judge(0, false, "Slurmctld(primary) at ctl1 is UP\n", "", msg, sizeof msg),
                     1);
    assert_string_equal(msg, "Slurmctld(primary) at ctl1 is UP");
}

static void primary_down_backup_up(void **state)
{
    (void)state;
    char msg[512];
    const char *out = "Slurmctld(primary) at ctl1 is DOWN\nSlurmctld(backup) at ctl2 is UP\n";
    assert_int_equal(slurm_ping_judge(0, false, out, "", msg, sizeof msg), 1);
    assert_string_equal(msg, "Slurmctld(backup) at ctl2 is UP");
}

static void all_down(void **state)
{
    (void)state;
    char msg[512];
    const char *out = "Slurmctld(primary) at ctl1 is DOWN\nSlurmctld(backup) at ctl2 is DOWN\n";
    assert_int_equal(slurm_ping_judge(1, false, out, "", msg, sizeof msg), 0);
    assert_string_equal(msg, "scontrol ping exited with 1: Slurmctld(primary) at ctl1 is DOWN");
}

/* "is UP" with a failing exit status, or after the timeout, is no answer. */
static void up_needs_exit_zero_in_time(void **state)
{
    (void)state;
    char msg[512];
    const char *out = "Slurmctld(primary) at ctl1 is UP\n";
    assert_int_equal(slurm_ping_judge(1, false, out, "", msg, sizeof msg), 0);
    assert_int_equal(slurm_ping_judge(0, true, out, "", msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "did not answer in time"));
    assert_int_equal(slurm_ping_judge(127, false, "", "", msg, sizeof msg), 0);
    assert_string_equal(msg, "scontrol ping exited with 127: (no output)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(primary_up),
        cmocka_unit_test(primary_down_backup_up),
        cmocka_unit_test(all_down),
        cmocka_unit_test(up_needs_exit_zero_in_time),
    };
    return cmocka_run_group_tests_name("slurm_ping", tests, NULL, NULL);
}
